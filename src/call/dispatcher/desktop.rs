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
                self.transfer(handle, call_id, to).await;
            }
        }
    }

    async fn transfer(&mut self, handle: CallHandle, call_id: &str, to: TransferTarget) {
        match to {
            TransferTarget::Queue(queue) => self.requeue(handle, call_id, Some(queue), None),
            // Offered to the agent through the ACD and the desk, as any offer (the pop and
            // the notes first); untaken, it waits in its own queue.
            TransferTarget::Agent(agent) => self.requeue(handle, call_id, None, Some(agent)),
            TransferTarget::Uri(uri) => {
                self.start_leg(handle, LegPurpose::Transfer, &uri).await;
            }
        }
    }

    /// The transferred call waits again with its priority: in `queue`, or in its own queue
    /// directed to `agent` first. Its IVR plays the wait prompts meanwhile.
    fn requeue(
        &mut self,
        handle: CallHandle,
        call_id: &str,
        queue: Option<String>,
        agent: Option<String>,
    ) {
        let live = self
            .desk
            .desktops()
            .live_call(call_id)
            .map(|(live, _)| live);
        let (priority, leak) = live.as_ref().map_or((0, false), |l| (l.priority, l.leak));
        // The desk knows every call an agent holds, so its queue is known.
        let queue = queue.or_else(|| live.map(|l| l.queue)).unwrap_or_default();
        self.desk.queued(call_id, &queue, priority, leak);
        let now = Instant::now();
        // The caller's IVR first: waiting again (the wait prompts) before the ACD's verdicts
        // (a position, an offer) come back to it.
        let requeued = ivr::Event::Requeued {
            queue: queue.clone(),
            priority,
            leak,
            now,
        };
        self.work.push_back(Work::Ivr(handle, requeued));
        self.work.push_back(Work::Acd(match agent {
            None => AcdEvent::CallQueued {
                call: handle,
                queue,
                priority,
                leak,
                now,
            },
            Some(agent) => AcdEvent::CallDirected {
                call: handle,
                agent,
                queue,
                priority,
                leak,
                now,
            },
        }));
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
