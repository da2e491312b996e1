//! The agents' desk's side of the dispatcher: its orders (the ACD follows the desk's
//! availability; call control from desktops), offers whose screen pop is ready (the agent's
//! phone rings now), and the admin API's legacy agent reports, which go to the desk.
//!
//! Owns carrying those out; must not decide agents' states (the desk does).

use super::{Dispatcher, Work};
use crate::acd::{AcdEvent, ReportedState};
use crate::call::AgentDeskError;
use crate::call::desktops::DeskOrder;
use crate::call::pops::PopReady;
use crate::call::registry::LegPurpose;
use crate::desk::{AgentState, CallControl, DeskError, HungUpBy, Requested, TransferTarget};
use crate::ivr;
use crate::sip::{CallHandle, Command};
use std::time::{Duration, Instant};

impl Dispatcher {
    pub(super) async fn on_desk_order(&mut self, order: DeskOrder) {
        match order {
            DeskOrder::Availability { agent, ready } => {
                self.work.push_back(Work::Acd(AcdEvent::AgentStateChanged {
                    agent,
                    state: if ready {
                        ReportedState::Available
                    } else {
                        ReportedState::Offline
                    },
                    now: Instant::now(),
                }));
            }
            DeskOrder::Control {
                call,
                agent,
                control,
            } => self.desk_control(&call, &agent, control).await,
        }
    }

    /// The pop is with the desk: ring the agent, if the ACD still offers the call to them.
    pub(super) async fn on_pop_ready(&mut self, ready: PopReady) {
        let ring = Duration::from_secs(self.config.borrow().acd.ring_timeout_secs);
        if let Some(now) = self.desk.pop_ready(ready, ring) {
            tracing::info!(leg_owner = now.handle.0, agent = now.agent, "ringing agent");
            self.start_leg(now.handle, LegPurpose::Agent(now.agent), &now.uri)
                .await;
        }
    }

    /// The admin API's `SetAgentState`: available is READY, offline LOGGED_OUT; the ACD
    /// follows the desk at once.
    pub(super) fn report_to_desk(
        &mut self,
        agent: &str,
        state: ReportedState,
    ) -> Result<(), AgentDeskError> {
        let requested = match state {
            ReportedState::Available => Requested::Ready,
            ReportedState::Offline => Requested::LoggedOut,
            ReportedState::Busy | ReportedState::WrapUp => {
                return Err(AgentDeskError::Refused(
                    "busy and wrap-up are the calls' states now; use hotline.v1.AgentDesk \
                     SetState NOT_READY with a reason code"
                        .into(),
                ));
            }
        };
        let view = self
            .desk
            .desktops()
            .set_state(agent, requested, None)
            .map_err(|err| match err {
                DeskError::UnknownAgent(agent) => AgentDeskError::UnknownAgent(agent),
                other => AgentDeskError::Refused(other.to_string()),
            })?;
        let follow = match view.state {
            AgentState::Ready => Some(ReportedState::Available),
            AgentState::LoggedOut | AgentState::NotReady(_) => Some(ReportedState::Offline),
            _ => None,
        };
        if let Some(state) = follow {
            self.work.push_back(Work::Acd(AcdEvent::AgentStateChanged {
                agent: agent.to_owned(),
                state,
                now: Instant::now(),
            }));
        }
        Ok(())
    }

    /// Call control a desktop asked for (the desk checked the agent holds the call).
    async fn desk_control(&mut self, call_id: &str, agent: &str, control: CallControl) {
        let Some((handle, leg)) = self.agent_leg(call_id, agent) else {
            return;
        };
        match control {
            CallControl::HangUp | CallControl::TransferToSurvey => {
                self.desk.agent_left(call_id, HungUpBy::Agent);
                self.sip_command(Command::Hangup { call: leg }).await;
            }
            CallControl::Transfer { to, .. } => {
                self.desk.agent_left(call_id, HungUpBy::Transfer);
                if let Some(l) = self.registry.legs.get_mut(&leg) {
                    // The caller stays on the line for the next agent or the target.
                    l.handed_on = true;
                }
                self.sip_command(Command::Hangup { call: leg }).await;
                self.transfer(handle, call_id, to);
            }
        }
    }

    /// The transferred caller's IVR takes over, with the call's priority and leak flag as the
    /// desk has them: it queues the call again (in the target queue, or in its own directed
    /// to the agent) as any caller who queues, or calls the URI with the wait prompts playing
    /// (see `ivr::Event::Requeued`).
    fn transfer(&mut self, handle: CallHandle, call_id: &str, to: TransferTarget) {
        let live = self
            .desk
            .desktops()
            .live_call(call_id)
            .map(|(live, _)| live);
        let (priority, leak) = live.as_ref().map_or((0, false), |l| (l.priority, l.leak));
        let (queue, to) = match to {
            TransferTarget::Queue(queue) => (Some(queue), ivr::HandOver::Queue),
            TransferTarget::Agent(agent) => (None, ivr::HandOver::Agent(agent)),
            TransferTarget::Uri(uri) => (None, ivr::HandOver::Uri(uri)),
        };
        // The desk knows every call an agent holds, so its queue is known.
        let queue = queue.or_else(|| live.map(|l| l.queue)).unwrap_or_default();
        let now = Instant::now();
        let requeued = ivr::Event::Requeued {
            queue,
            priority,
            leak,
            to,
            now,
        };
        self.work.push_back(Work::Ivr(handle, requeued));
    }

    /// The caller's call `call_id` and its answered leg to `agent`.
    fn agent_leg(&self, call_id: &str, agent: &str) -> Option<(CallHandle, CallHandle)> {
        let (&handle, _) = self
            .registry
            .calls
            .iter()
            .find(|(_, call)| call.id == call_id)?;
        let leg = self.registry.legs.iter().find_map(|(&leg, l)| {
            (l.owner == handle
                && l.answered
                && matches!(&l.purpose, LegPurpose::Agent(a) if a == agent))
            .then_some(leg)
        })?;
        Some((handle, leg))
    }
}
