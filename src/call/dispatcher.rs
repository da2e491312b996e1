//! The dispatcher task: SIP events, media events, look-up results, timers and control
//! requests in; IVR engines and the ACD consulted; SIP commands, media commands and journal
//! entries out. See the module doc of `call` for why it is one task.
//!
//! It only wires. Each input becomes [`Work`] on one explicit queue, and the loop carries the
//! queue out in order after every input: an IVR action that reaches the ACD, or an ACD verdict
//! that reaches another call's IVR, is queued, never handled by recursion. The parts:
//! - [`flow`]: a call's way through SIP, media and its IVR, and the ACD's verdicts;
//! - [`legs`]: outgoing legs (agents' phones, transfer targets) and bridging;
//! - [`shutdown`]: refusing new calls, the grace period, the last hang-ups;
//! - [`desktop`]: the agents' desk's orders (availability, call control) and offers whose
//!   screen pop is ready (`super::desk_link` is what the flow tells the desk);
//! - `super::registry` (the calls), `super::timers`, `super::lookup` and `super::journal`
//!   (what becomes a record).
//!
//! Owns the queue and the loop; must not decide menus, routing or SIP behaviour.

mod desktop;
mod flow;
mod legs;
mod liveness;
mod shutdown;

use super::desk_link::DeskLink;
use super::desktops::{DeskOrder, Desktops};
use super::lookup::{Lookup, Lookups};
use super::media_link::MediaLink;
use super::pops::PopReady;
use super::registry::{Leg, Registry};
use super::survey::SurveyResults;
use super::timers::{CallTimer, TimerKey, Timers};
use super::{AgentDeskError, AgentView, Control, DispatcherCounts};
use crate::acd::{Acd, AcdEvent};
use crate::config::Config;
use crate::ivr::{self, IvrConfig};
use crate::media::g711::G711Codec;
use crate::media::ports::{PortLease, PortPool};
use crate::media::prompts::PromptLibrary;
use crate::media::rtp_session::NegotiatedMedia as MediaParams;
use crate::media::session::{MediaEvent, MediaSession, SessionOptions, SessionStartError};
use crate::sip::sdp::{Codec, NegotiatedMedia};
use crate::sip::transport::Request;
use crate::sip::{CallHandle, Command, EndReason, Event as SipEvent};
use crate::store::{CallJournal, Store};
use shutdown::Shutdown;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

pub(super) struct Parts {
    pub config: watch::Receiver<Arc<Config>>,
    pub sip_events: mpsc::UnboundedReceiver<SipEvent>,
    pub sip_requests: mpsc::Sender<Request>,
    pub pool: PortPool,
    pub prompts: Arc<PromptLibrary>,
    pub store: Store,
    pub journal: CallJournal,
    pub control: mpsc::UnboundedReceiver<Control>,
    pub counts: watch::Sender<DispatcherCounts>,
    pub media_sessions: Arc<AtomicUsize>,
    pub desktops: Desktops,
    pub desk_orders: mpsc::UnboundedReceiver<DeskOrder>,
    pub survey_results: SurveyResults,
}

/// One step for the flow, queued by the handlers of inputs and by earlier steps.
#[derive(Debug)]
enum Work {
    /// Feed a call's IVR engine.
    Ivr(CallHandle, ivr::Event),
    /// Feed the ACD.
    Acd(AcdEvent<CallHandle>),
    /// The caller's call is over (its IVR has been told): forget it.
    Forget(CallHandle, EndReason),
}

/// The dispatcher's inputs other than its own timers.
struct Inputs {
    sip: mpsc::UnboundedReceiver<SipEvent>,
    media: mpsc::UnboundedReceiver<(Leg, Option<MediaEvent>)>,
    lookups: mpsc::UnboundedReceiver<(CallHandle, Lookup)>,
    control: mpsc::UnboundedReceiver<Control>,
    config: watch::Receiver<Arc<Config>>,
    desk_orders: mpsc::UnboundedReceiver<DeskOrder>,
    pops: mpsc::UnboundedReceiver<PopReady>,
}

struct Dispatcher {
    config: watch::Receiver<Arc<Config>>,
    /// The IVR part of the newest configuration, shared by the calls that start on it.
    ivr: Arc<IvrConfig>,
    sip: mpsc::Sender<Request>,
    pool: PortPool,
    prompts: Arc<PromptLibrary>,
    journal: CallJournal,
    acd: Acd<CallHandle>,
    registry: Registry,
    timers: Timers,
    work: VecDeque<Work>,
    media_events: mpsc::UnboundedSender<(Leg, Option<MediaEvent>)>,
    lookups: Lookups,
    media_sessions: Arc<AtomicUsize>,
    survey_results: SurveyResults,
    shutdown: Option<Shutdown>,
    desk: DeskLink,
}

pub(super) async fn run(parts: Parts) {
    let counts = parts.counts.clone();
    let (mut d, mut inputs) = Dispatcher::new(parts);
    loop {
        let next_timer = d.next_deadline();
        tokio::select! {
            event = inputs.sip.recv() => match event {
                Some(event) => d.on_sip(event).await,
                None => {
                    tracing::error!("the SIP service stopped; no more calls are taken");
                    break;
                }
            },
            Some((leg, event)) = inputs.media.recv() => d.on_media(leg, event).await,
            Some((call, lookup)) = inputs.lookups.recv() => d.on_lookup(call, lookup).await,
            Some(request) = inputs.control.recv() => d.on_control(request).await,
            Ok(()) = inputs.config.changed() => d.on_config_change().await,
            Some(order) = inputs.desk_orders.recv() => d.on_desk_order(order).await,
            Some(ready) = inputs.pops.recv() => d.on_pop_ready(ready).await,
            () = sleep_until(next_timer) => d.on_timers(Instant::now()).await,
        }
        d.drain().await;
        d.publish(&counts);
        if d.finished() {
            break;
        }
    }
    d.stop();
    d.publish(&counts);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

fn media_params(media: &NegotiatedMedia) -> MediaParams {
    MediaParams {
        codec: match media.codec {
            Codec::Pcmu => G711Codec::Pcmu,
            Codec::Pcma => G711Codec::Pcma,
        },
        telephone_event_pt: media.telephone_event_pt,
        remote_rtp: media.remote_rtp,
    }
}

impl Dispatcher {
    fn new(parts: Parts) -> (Dispatcher, Inputs) {
        let snapshot = parts.config.borrow().clone();
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let (lookup_tx, lookup_rx) = mpsc::unbounded_channel();
        let (pops_tx, pops_rx) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher {
            desk: DeskLink::new(
                parts.desktops,
                parts.store.clone(),
                parts.journal.clone(),
                pops_tx,
            ),
            config: parts.config.clone(),
            ivr: Arc::new(snapshot.ivr.clone()),
            sip: parts.sip_requests,
            pool: parts.pool,
            lookups: Lookups::new(parts.store, parts.prompts.clone(), lookup_tx),
            prompts: parts.prompts,
            journal: parts.journal,
            acd: Acd::new(Arc::new(snapshot.acd.clone()), Instant::now()),
            registry: Registry::default(),
            timers: Timers::default(),
            work: VecDeque::new(),
            media_events: media_tx,
            media_sessions: parts.media_sessions,
            survey_results: parts.survey_results,
            shutdown: None,
        };
        let inputs = Inputs {
            sip: parts.sip_events,
            media: media_rx,
            lookups: lookup_rx,
            control: parts.control,
            config: parts.config,
            desk_orders: parts.desk_orders,
            pops: pops_rx,
        };
        (dispatcher, inputs)
    }

    /// Carries out the queued work, in order, until none is left.
    async fn drain(&mut self) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Ivr(call, event) => self.feed_ivr(call, event).await,
                Work::Acd(event) => {
                    let actions = self.acd.handle(event);
                    self.carry_out_acd(actions).await;
                }
                Work::Forget(call, reason) => self.forget_call(call, &reason).await,
            }
        }
    }

    fn publish(&self, counts: &watch::Sender<DispatcherCounts>) {
        let _ = counts.send(DispatcherCounts {
            calls: self.registry.calls.len(),
            outgoing_legs: self.registry.legs.len(),
            timers: self.timers.len(),
        });
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.next_deadline();
        let shutdown = self.shutdown.as_ref().map(Shutdown::deadline);
        match (timer, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn sip_command(&self, command: Command) {
        if self.sip.send(Request::Command(command)).await.is_err() {
            tracing::error!("the SIP service stopped; a command was not carried out");
        }
    }

    /// Starts the media session of a leg on its leased ports.
    fn start_media(
        &self,
        lease: PortLease,
        media: &NegotiatedMedia,
        leg: Leg,
        options: SessionOptions,
    ) -> Result<MediaLink, SessionStartError> {
        let session =
            MediaSession::start(lease, self.prompts.clone(), media_params(media), options)?;
        Ok(MediaLink::spawn(
            session,
            leg,
            self.media_events.clone(),
            self.media_sessions.clone(),
        ))
    }

    fn agent_views(&self) -> Vec<AgentView> {
        self.acd
            .agents()
            .map(|(id, state, queues)| AgentView {
                id: id.to_owned(),
                state,
                queues: queues.to_vec(),
            })
            .collect()
    }

    async fn on_config_change(&mut self) {
        let config = self.config.borrow_and_update().clone();
        self.ivr = Arc::new(config.ivr.clone());
        let actions = self
            .acd
            .reconfigure(Arc::new(config.acd.clone()), Instant::now());
        self.carry_out_acd(actions).await;
    }

    async fn on_control(&mut self, request: Control) {
        match request {
            Control::AgentState {
                agent,
                state,
                reply,
            } => {
                if self.acd.agent_state(&agent).is_none() {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(AgentDeskError::UnknownAgent(agent)));
                    }
                    return;
                }
                tracing::info!(agent, ?state, "agent state reported");
                // The desk owns agents' states; the ACD follows it.
                if let Err(err) = self.report_to_desk(&agent, state) {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(err));
                    }
                    return;
                }
                // The answer is the agent after everything the change set off.
                self.drain().await;
                if let Some(reply) = reply {
                    let view = self.agent_views().into_iter().find(|a| a.id == agent);
                    let _ = reply.send(view.ok_or(AgentDeskError::UnknownAgent(agent)));
                }
            }
            Control::ListAgents { reply } => {
                let _ = reply.send(self.agent_views());
            }
            Control::TransferToSurvey {
                call_id,
                agent,
                reply,
            } => {
                let _ = reply.send(self.release_to_survey(&call_id, &agent).await);
            }
            Control::Shutdown { grace, done } => self.begin_shutdown(grace, done).await,
        }
    }

    /// Fires the timers due at `now`, one at a time: what one sets off may cancel the next.
    async fn on_timers(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            let work = match key {
                TimerKey::Call(call, CallTimer::Ivr(id)) => {
                    Work::Ivr(call, ivr::Event::TimerFired { id, now })
                }
                TimerKey::Call(call, timer) => {
                    self.on_liveness_timer(call, timer).await;
                    continue;
                }
                TimerKey::Acd(id) => Work::Acd(AcdEvent::TimerFired { id, now }),
            };
            self.work.push_back(work);
            self.drain().await;
        }
        self.hang_up_if_grace_over(now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_codecs_map_onto_media_codecs() {
        let sdp = NegotiatedMedia {
            codec: Codec::Pcma,
            remote_rtp: "127.0.0.1:4000".parse().unwrap(),
            telephone_event_pt: Some(101),
            direction: crate::sip::sdp::Direction::SendRecv,
            ptime: 20,
        };
        let media = media_params(&sdp);
        assert_eq!(media.codec, G711Codec::Pcma);
        assert_eq!(media.telephone_event_pt, Some(101));
        assert_eq!(media.remote_rtp, sdp.remote_rtp);
    }
}
