//! The dispatcher task: SIP events, media events, look-up results, timers and control
//! requests in; IVR engines and the ACD consulted; SIP commands, media commands and journal
//! entries out. See the module doc of `call` for why it is one task.
//!
//! Owns per-call state and its clean-up; must not decide menus, routing or SIP behaviour.

use super::media_link::MediaLink;
use super::{Control, DispatcherCounts};
use crate::acd::{self, Acd, AcdAction, AcdEvent, AcdTimerId, ReportedState};
use crate::api::{AgentDeskError, AgentView};
use crate::config::Config;
use crate::ivr::{self, CallEngine, CallInfo, IvrConfig, TimerId};
use crate::logging::Masked;
use crate::media::g711::G711Codec;
use crate::media::ports::{PortLease, PortPool};
use crate::media::prompts::PromptLibrary;
use crate::media::recorder::recording_path;
use crate::media::rtp_session::NegotiatedMedia as MediaParams;
use crate::media::session::{MediaCommand, MediaEvent, MediaSession, SessionOptions};
use crate::ops::{Announcer, PromptRef};
use crate::sip::message::host_port_of;
use crate::sip::sdp::{Codec, NegotiatedMedia};
use crate::sip::transaction::Peer;
use crate::sip::transport::Request;
use crate::sip::{CallHandle, Command, EndReason, Event as SipEvent, OutgoingCall};
use crate::store::{
    CallEntry, CallJournal, CallerCustomer, CallerFacts, Disposition, DraftCustomer, Store,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Longest wait for the caller look-up (customer file, open tickets) before the IVR starts
/// without it: a slow or absent database must not keep the caller in silence.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(400);
/// After the grace period calls are hung up; this long after that the dispatcher stops
/// even if a peer never confirmed.
const HANGUP_WAIT: Duration = Duration::from_secs(5);
/// From-user of calls we place when the caller's number is unknown.
const OUR_USER: &str = "hotline";

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
}

/// Which media session an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    Caller(CallHandle),
    Outgoing(CallHandle),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKey {
    Ivr(CallHandle, u64),
    Acd(u64),
}

/// What the caller look-up found.
#[derive(Debug, Clone, Default)]
struct Lookup {
    has_open_ticket: bool,
    /// The (first) household file listing the calling number.
    customer: Option<CallerCustomer>,
    /// Prompt names of the outage announcements for this call, in order.
    announcements: Vec<String>,
}

/// A call we placed for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LegPurpose {
    Agent(String),
    Transfer,
}

struct OutLeg {
    owner: CallHandle,
    purpose: LegPurpose,
    lease: Option<PortLease>,
    media: Option<MediaLink>,
    answered: bool,
}

/// A playback the IVR asked for, with the prompts still to finish.
struct Playlist {
    id: ivr::PlaybackId,
    remaining: VecDeque<String>,
}

/// How the call ended, for the call row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Ivr,
    Queued,
    WithAgent,
    Transferred,
    SelfServed,
}

impl Stage {
    fn disposition(self) -> Disposition {
        match self {
            Stage::Ivr => Disposition::AbandonedInIvr,
            Stage::Queued => Disposition::AbandonedInQueue,
            Stage::WithAgent => Disposition::Answered,
            Stage::Transferred => Disposition::Transferred,
            Stage::SelfServed => Disposition::SelfServed,
        }
    }
}

struct Call {
    id: String,
    caller: String,
    dialled: String,
    config: Arc<Config>,
    engine: CallEngine,
    lease: Option<PortLease>,
    media: Option<MediaLink>,
    lookup: Option<Lookup>,
    /// `Answered` was fed to the IVR.
    started: bool,
    /// Digits that came before the IVR started.
    early_digits: Vec<char>,
    playlists: VecDeque<Playlist>,
    legs: Vec<CallHandle>,
    stage: Stage,
    hung_up: bool,
}

struct Dispatcher {
    config: watch::Receiver<Arc<Config>>,
    /// The IVR part of the newest configuration, shared by the calls that start on it.
    ivr: Arc<IvrConfig>,
    sip: mpsc::Sender<Request>,
    pool: PortPool,
    prompts: Arc<PromptLibrary>,
    store: Store,
    journal: CallJournal,
    acd: Acd,
    calls: HashMap<CallHandle, Call>,
    by_id: HashMap<String, CallHandle>,
    legs: HashMap<CallHandle, OutLeg>,
    timers: BTreeMap<(Instant, TimerKey), ()>,
    timer_at: HashMap<TimerKey, Instant>,
    media_events: mpsc::UnboundedSender<(Leg, Option<MediaEvent>)>,
    lookups: mpsc::UnboundedSender<(CallHandle, Lookup)>,
    media_sessions: Arc<AtomicUsize>,
    shutdown: Option<Shutdown>,
}

struct Shutdown {
    hang_up_at: Instant,
    give_up_at: Instant,
    hung_up: bool,
    done: Option<oneshot::Sender<()>>,
}

pub(super) async fn run(parts: Parts) {
    let Parts {
        config,
        mut sip_events,
        sip_requests,
        pool,
        prompts,
        store,
        journal,
        mut control,
        counts,
        media_sessions,
    } = parts;
    let snapshot = config.borrow().clone();
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let (lookup_tx, mut lookup_rx) = mpsc::unbounded_channel();
    let mut d = Dispatcher {
        ivr: Arc::new(snapshot.ivr.clone()),
        acd: Acd::new(Arc::new(snapshot.acd.clone()), Instant::now()),
        config,
        sip: sip_requests,
        pool,
        prompts,
        store,
        journal,
        calls: HashMap::new(),
        by_id: HashMap::new(),
        legs: HashMap::new(),
        timers: BTreeMap::new(),
        timer_at: HashMap::new(),
        media_events: media_tx,
        lookups: lookup_tx,
        media_sessions,
        shutdown: None,
    };
    let mut config_changes = d.config.clone();
    loop {
        let next_timer = d.next_deadline();
        tokio::select! {
            event = sip_events.recv() => match event {
                Some(event) => d.on_sip(event).await,
                None => {
                    tracing::error!("the SIP service stopped; no more calls are taken");
                    break;
                }
            },
            Some((leg, event)) = media_rx.recv() => d.on_media(leg, event).await,
            Some((call, lookup)) = lookup_rx.recv() => d.on_lookup(call, lookup).await,
            Some(request) = control.recv() => d.on_control(request).await,
            Ok(()) = config_changes.changed() => d.on_config_change().await,
            () = sleep_until(next_timer) => d.on_timers(Instant::now()).await,
        }
        let _ = counts.send(DispatcherCounts {
            calls: d.calls.len(),
            outgoing_legs: d.legs.len(),
            timers: d.timers.len(),
        });
        if d.finished() {
            break;
        }
    }
    d.stop();
    let _ = counts.send(DispatcherCounts {
        calls: d.calls.len(),
        outgoing_legs: d.legs.len(),
        timers: d.timers.len(),
    });
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

/// The next hop for a `sip:user@IP[:port]` URI (we do no DNS): the IP literal, port 5060
/// unless given.
fn peer_of(uri: &str) -> Option<Peer> {
    let (host, port) = host_port_of(uri)?;
    let ip: IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
    Some(Peer::Udp(SocketAddr::new(ip, port.unwrap_or(5060))))
}

impl Dispatcher {
    fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.keys().next().map(|(at, _)| *at);
        let shutdown = self.shutdown.as_ref().map(|s| {
            if s.hung_up {
                s.give_up_at
            } else {
                s.hang_up_at
            }
        });
        match (timer, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn finished(&self) -> bool {
        match &self.shutdown {
            Some(s) => {
                (self.calls.is_empty() && self.legs.is_empty())
                    || (s.hung_up && Instant::now() >= s.give_up_at)
            }
            None => false,
        }
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

    /// Drops what is left (after a shutdown); media links and leases close on drop.
    fn stop(&mut self) {
        if !self.calls.is_empty() || !self.legs.is_empty() {
            tracing::warn!(
                calls = self.calls.len(),
                legs = self.legs.len(),
                "stopping with calls whose hang-up was not confirmed"
            );
        }
        for (_, call) in self.calls.drain() {
            self.journal.record(
                &call.id,
                CallEntry::Ended {
                    at: chrono::Utc::now(),
                    disposition: call.stage.disposition(),
                },
            );
        }
        self.legs.clear();
        self.by_id.clear();
        self.timers.clear();
        self.timer_at.clear();
        if let Some(done) = self.shutdown.as_mut().and_then(|s| s.done.take()) {
            let _ = done.send(());
        }
    }

    async fn sip_command(&self, command: Command) {
        if self.sip.send(Request::Command(command)).await.is_err() {
            tracing::error!("the SIP service stopped; a command was not carried out");
        }
    }

    fn set_timer(&mut self, key: TimerKey, at: Instant) {
        self.cancel_timer(key);
        self.timers.insert((at, key), ());
        self.timer_at.insert(key, at);
    }

    fn cancel_timer(&mut self, key: TimerKey) {
        if let Some(at) = self.timer_at.remove(&key) {
            self.timers.remove(&(at, key));
        }
    }

    // ----- configuration and control -----

    async fn on_config_change(&mut self) {
        let config = self.config.borrow_and_update().clone();
        self.ivr = Arc::new(config.ivr.clone());
        let actions = self
            .acd
            .reconfigure(Arc::new(config.acd.clone()), Instant::now());
        self.apply_acd(actions).await;
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
                let now = Instant::now();
                let actions = self.acd.handle(AcdEvent::AgentStateChanged {
                    agent: agent.clone(),
                    state,
                    now,
                });
                self.apply_acd(actions).await;
                if let Some(reply) = reply {
                    let view = self.agent_views().into_iter().find(|a| a.id == agent);
                    let _ = reply.send(view.ok_or(AgentDeskError::UnknownAgent(agent)));
                }
            }
            Control::ListAgents { reply } => {
                let _ = reply.send(self.agent_views());
            }
            Control::Shutdown { grace, done } => {
                tracing::info!(
                    calls = self.calls.len(),
                    grace_secs = grace.as_secs(),
                    "shutting down: new calls get 503, calls in progress may finish"
                );
                let _ = self.sip.send(Request::BeginShutdown).await;
                let now = Instant::now();
                self.shutdown = Some(Shutdown {
                    hang_up_at: now + grace,
                    give_up_at: now + grace + HANGUP_WAIT,
                    hung_up: false,
                    done: Some(done),
                });
            }
        }
    }

    async fn on_timers(&mut self, now: Instant) {
        while let Some((&(at, key), ())) = self.timers.iter().next() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key));
            self.timer_at.remove(&key);
            match key {
                TimerKey::Ivr(call, id) => {
                    self.ivr_event(
                        call,
                        ivr::Event::TimerFired {
                            id: TimerId(id),
                            now,
                        },
                    )
                    .await;
                }
                TimerKey::Acd(id) => {
                    let actions = self.acd.handle(AcdEvent::TimerFired {
                        id: AcdTimerId(id),
                        now,
                    });
                    self.apply_acd(actions).await;
                }
            }
        }
        let hang_up_now = self
            .shutdown
            .as_ref()
            .is_some_and(|s| !s.hung_up && now >= s.hang_up_at);
        if hang_up_now {
            if let Some(s) = self.shutdown.as_mut() {
                s.hung_up = true;
            }
            let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
            if !handles.is_empty() {
                tracing::warn!(
                    calls = handles.len(),
                    "shutdown grace period over: hanging up"
                );
            }
            for handle in handles {
                self.sip_command(Command::Hangup { call: handle }).await;
            }
        }
    }

    // ----- SIP -----

    async fn on_sip(&mut self, event: SipEvent) {
        match event {
            SipEvent::IncomingCall {
                call,
                caller,
                dialled,
                source,
                offer: _,
                priority,
            } => {
                self.on_incoming(call, caller, dialled, source, priority)
                    .await
            }
            SipEvent::CallConfirmed { call, media } => self.on_confirmed(call, &media).await,
            SipEvent::MediaUpdated { call, media } => {
                let link = match (self.calls.get(&call), self.legs.get(&call)) {
                    (Some(c), _) => c.media.as_ref(),
                    (None, Some(l)) => l.media.as_ref(),
                    (None, None) => None,
                };
                if let Some(link) = link {
                    link.send(MediaCommand::SetRemote(media.remote_rtp));
                    link.send(MediaCommand::Hold(media.on_hold()));
                }
            }
            SipEvent::Dtmf { call, digit, .. } => self.on_digit(call, digit).await,
            SipEvent::OutgoingProgress { call, code } => {
                if let Some(leg) = self.legs.get(&call) {
                    tracing::debug!(leg = call.0, code, purpose = ?leg.purpose, "outgoing call progress");
                }
            }
            SipEvent::OutgoingAnswered { call, media } => self.on_leg_answered(call, &media).await,
            SipEvent::CallEnded { call, reason } => {
                if self.calls.contains_key(&call) {
                    self.end_call(call, &reason).await;
                } else if self.legs.contains_key(&call) {
                    self.end_leg(call, &reason).await;
                }
            }
        }
    }

    async fn on_incoming(
        &mut self,
        handle: CallHandle,
        caller: Option<String>,
        dialled: Option<String>,
        source: SocketAddr,
        priority: bool,
    ) {
        let caller = caller.unwrap_or_default();
        let dialled = dialled.unwrap_or_default();
        let id = uuid::Uuid::new_v4().to_string();
        if self.shutdown.is_some() {
            self.sip_command(Command::Reject {
                call: handle,
                code: 503,
            })
            .await;
            return;
        }
        let lease = match self.pool.lease() {
            Ok(lease) => lease,
            Err(error) => {
                tracing::error!(call = %id, caller = %Masked(&caller), %error, "no RTP ports free: call refused with 503");
                self.sip_command(Command::Reject {
                    call: handle,
                    code: 503,
                })
                .await;
                return;
            }
        };
        tracing::info!(
            call = %id,
            caller = %Masked(&caller),
            dialled = %Masked(&dialled),
            %source,
            priority,
            "incoming call"
        );
        let config = self.config.borrow().clone();
        self.journal.record(
            &id,
            CallEntry::Arrived {
                caller: caller.clone(),
                called: dialled.clone(),
                at: chrono::Utc::now(),
            },
        );
        self.spawn_lookup(handle, &caller, &dialled, &config);
        self.by_id.insert(id.clone(), handle);
        self.calls.insert(
            handle,
            Call {
                id,
                caller,
                dialled,
                engine: CallEngine::new(self.ivr.clone()),
                config,
                lease: Some(lease),
                media: None,
                lookup: None,
                started: false,
                early_digits: Vec::new(),
                playlists: VecDeque::new(),
                legs: Vec::new(),
                stage: Stage::Ivr,
                hung_up: false,
            },
        );
        // Answered once the look-up is in (at most LOOKUP_TIMEOUT): the greeting then starts
        // with everything the flow needs, and a database outage costs at most that delay.
        self.sip_command(Command::Ring { call: handle }).await;
    }

    /// Looks the caller up in a task of its own; the answer (or "nothing known" after
    /// [`LOOKUP_TIMEOUT`]) comes back on the look-up channel.
    fn spawn_lookup(&self, handle: CallHandle, caller: &str, dialled: &str, config: &Config) {
        let store = self.store.clone();
        let announcer = Announcer::new(
            store.clone(),
            config.daemon.announcements_dir(),
            config.announcements.clone(),
        );
        let prompts = self.prompts.clone();
        let results = self.lookups.clone();
        let caller = caller.to_owned();
        let dialled = dialled.to_owned();
        tokio::spawn(async move {
            let found = tokio::time::timeout(
                LOOKUP_TIMEOUT,
                look_up(&store, &announcer, prompts, &caller, &dialled),
            )
            .await;
            let lookup = match found {
                Ok(Ok(lookup)) => lookup,
                Ok(Err(error)) => {
                    tracing::warn!(caller = %Masked(&caller), %error, "caller look-up failed: going on without it");
                    Lookup::default()
                }
                Err(_) => {
                    tracing::warn!(caller = %Masked(&caller), "caller look-up timed out: going on without it");
                    Lookup::default()
                }
            };
            let _ = results.send((handle, lookup));
        });
    }

    async fn on_confirmed(&mut self, handle: CallHandle, media: &NegotiatedMedia) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(lease) = call.lease.take() else {
            return;
        };
        let options = SessionOptions::from_config(&call.config.media);
        match MediaSession::start(lease, self.prompts.clone(), media_params(media), options) {
            Ok(session) => {
                call.media = Some(MediaLink::spawn(
                    session,
                    Leg::Caller(handle),
                    self.media_events.clone(),
                    self.media_sessions.clone(),
                ));
                if media.on_hold()
                    && let Some(link) = &call.media
                {
                    link.send(MediaCommand::Hold(true));
                }
                self.journal.record(
                    &call.id,
                    CallEntry::Answered {
                        at: chrono::Utc::now(),
                    },
                );
                self.maybe_start_ivr(handle).await;
            }
            Err(error) => {
                tracing::error!(call = %call.id, %error, "media failed to start: hanging up");
                self.sip_command(Command::Hangup { call: handle }).await;
            }
        }
    }

    async fn on_lookup(&mut self, handle: CallHandle, lookup: Lookup) {
        let Some(call) = self.calls.get_mut(&handle) else {
            // Cancelled while we looked.
            return;
        };
        call.lookup = Some(lookup);
        let Some(local_rtp) = call.lease.as_ref().map(PortLease::rtp_addr) else {
            return;
        };
        tracing::debug!(call = %call.id, "answering");
        self.sip_command(Command::Answer {
            call: handle,
            local_rtp,
        })
        .await;
    }

    /// Media running and the look-up answered: the IVR starts.
    async fn maybe_start_ivr(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (Some(lookup), Some(_)) = (&call.lookup, &call.media) else {
            return;
        };
        if call.started {
            return;
        }
        call.started = true;
        let tz = call.config.daemon.tz().unwrap_or(chrono_tz::Asia::Shanghai);
        let info = CallInfo {
            call_id: call.id.clone(),
            did: call.dialled.clone(),
            caller: call.caller.clone(),
            local_time: chrono::Utc::now().with_timezone(&tz),
            has_open_ticket: lookup.has_open_ticket,
            announcements: lookup.announcements.clone(),
        };
        let early = std::mem::take(&mut call.early_digits);
        self.ivr_event(
            handle,
            ivr::Event::Answered {
                info,
                now: Instant::now(),
            },
        )
        .await;
        for digit in early {
            self.on_digit(handle, digit).await;
        }
    }

    async fn on_digit(&mut self, handle: CallHandle, digit: char) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        tracing::debug!(call = %call.id, digit = %digit, "digit");
        if !call.started {
            call.early_digits.push(digit);
            return;
        }
        let now = Instant::now();
        self.ivr_event(handle, ivr::Event::Digit { digit, now })
            .await;
    }

    // ----- media -----

    async fn on_media(&mut self, leg: Leg, event: Option<MediaEvent>) {
        let Some(event) = event else {
            return self.on_media_ended(leg).await;
        };
        let handle = match leg {
            Leg::Caller(handle) => handle,
            Leg::Outgoing(leg) => {
                if let MediaEvent::CommandFailed(why) = event {
                    tracing::warn!(leg = leg.0, why, "agent-leg media command failed");
                }
                return;
            }
        };
        match event {
            MediaEvent::Digit(digit) => self.on_digit(handle, digit.digit).await,
            MediaEvent::PromptFinished(name) => self.on_prompt_finished(handle, &name).await,
            MediaEvent::RecordingStarted(path) => {
                if let Some(call) = self.calls.get(&handle) {
                    tracing::info!(call = %call.id, file = %path.display(), "recording");
                    self.journal.record(
                        &call.id,
                        CallEntry::Recording {
                            path: path.display().to_string(),
                        },
                    );
                }
            }
            MediaEvent::RecordingFinished(path) => {
                tracing::info!(file = %path.display(), "recording complete");
            }
            MediaEvent::CommandFailed(why) => {
                let id = self.calls.get(&handle).map(|c| c.id.clone());
                tracing::warn!(call = ?id, why, "media command failed");
            }
            MediaEvent::RemoteAddressLearned(_) | MediaEvent::Stats(_) => {}
        }
    }

    /// A session ended. Expected once its leg is gone; while the leg is up it means the
    /// media failed, and a call without audio is hung up (the caller can call again).
    async fn on_media_ended(&mut self, leg: Leg) {
        let (handle, id) = match leg {
            Leg::Caller(handle) => match self.calls.get(&handle) {
                Some(call) if !call.hung_up => (handle, call.id.clone()),
                _ => return,
            },
            Leg::Outgoing(handle) => match self.legs.get(&handle) {
                Some(_) => (handle, format!("leg {}", handle.0)),
                None => return,
            },
        };
        tracing::error!(call = %id, "media session ended on its own: hanging up");
        if let Some(call) = self.calls.get_mut(&handle) {
            call.hung_up = true;
        }
        self.sip_command(Command::Hangup { call: handle }).await;
    }

    /// Media reports each prompt by name; the IVR waits for its whole list by id.
    async fn on_prompt_finished(&mut self, handle: CallHandle, name: &str) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(front) = call.playlists.front_mut() else {
            return;
        };
        // A finish of a prompt from a list that was stopped meanwhile does not match.
        if front.remaining.front().map(String::as_str) != Some(name) {
            return;
        }
        front.remaining.pop_front();
        if !front.remaining.is_empty() {
            return;
        }
        let id = front.id;
        call.playlists.pop_front();
        let now = Instant::now();
        self.ivr_event(handle, ivr::Event::PromptFinished { id, now })
            .await;
    }

    // ----- IVR -----

    /// Feeds the call's engine and carries out what it asks, including what the ACD then
    /// asks (which may feed the engine again).
    async fn ivr_event(&mut self, handle: CallHandle, event: ivr::Event) {
        let mut pending = VecDeque::from([event]);
        while let Some(event) = pending.pop_front() {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            let now = Instant::now();
            let actions = call.engine.handle(event);
            let call_id = call.id.clone();
            let acd_actions = acd::link::apply_ivr_actions(&mut self.acd, &call_id, &actions, now);
            for action in actions {
                self.ivr_action(handle, action).await;
            }
            for (target, result) in self.apply_acd_collect(acd_actions).await {
                if target == handle {
                    pending.push_back(ivr::Event::Queue { result, now });
                } else {
                    Box::pin(self.ivr_event(target, ivr::Event::Queue { result, now })).await;
                }
            }
        }
    }

    async fn ivr_action(&mut self, handle: CallHandle, action: ivr::Action) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        match action {
            ivr::Action::Play { id, prompts, .. } => {
                if let Some(link) = &call.media {
                    link.send(MediaCommand::Play(prompts.clone()));
                }
                call.playlists.push_back(Playlist {
                    id,
                    remaining: prompts.into(),
                });
            }
            ivr::Action::StopPlayback => {
                if let Some(link) = &call.media {
                    link.send(MediaCommand::StopPlayback);
                }
                call.playlists.clear();
            }
            ivr::Action::StartRecording => {
                let path = recording_path(&call.config.media.recordings_dir, &call.id);
                if let Some(link) = &call.media {
                    link.send(MediaCommand::StartRecording(path));
                }
            }
            ivr::Action::StopRecording => {
                if let Some(link) = &call.media {
                    link.send(MediaCommand::StopRecording);
                }
            }
            ivr::Action::SetTimer { id, at } => self.set_timer(TimerKey::Ivr(handle, id.0), at),
            ivr::Action::CancelTimer { id } => self.cancel_timer(TimerKey::Ivr(handle, id.0)),
            ivr::Action::PriorityCall => {
                // Admission is the SIP layer's (priority_numbers, reserved_for_leaks) and
                // happened at the INVITE: an answered call is never cut by the limit.
                tracing::warn!(call = %call.id, caller = %Masked(&call.caller), "gas leak reported: emergency queue");
            }
            ivr::Action::Enqueue { queue, .. } => {
                call.stage = Stage::Queued;
                self.journal.record(&call.id, CallEntry::Queue { queue });
            }
            ivr::Action::Dequeue => {}
            ivr::Action::Bridge { agent } => {
                call.stage = Stage::WithAgent;
                tracing::info!(call = %call.id, agent, "agent answered: connected");
                self.journal
                    .record(&call.id, CallEntry::Agent { agent_id: agent });
            }
            ivr::Action::Transfer { uri } => {
                self.start_leg(handle, LegPurpose::Transfer, &uri).await;
            }
            ivr::Action::HangUp => {
                if !matches!(call.stage, Stage::WithAgent | Stage::Transferred) {
                    call.stage = Stage::SelfServed;
                }
                call.hung_up = true;
                self.sip_command(Command::Hangup { call: handle }).await;
            }
            ivr::Action::Ticket(update) => self.ticket_update(handle, update),
            ivr::Action::RecordConsent(record) => {
                self.journal.record(&call.id, CallEntry::Consent(record));
            }
            ivr::Action::SurveyResult(answer) => {
                self.journal.record(&call.id, CallEntry::Survey(answer));
            }
        }
    }

    fn ticket_update(&mut self, handle: CallHandle, update: ivr::TicketUpdate) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let entry = match update {
            ivr::TicketUpdate::CreateDraft {
                call_id: _,
                caller,
                called,
                started_at,
                flow,
            } => CallEntry::Draft {
                caller,
                called,
                flow,
                started_at: started_at.with_timezone(&chrono::Utc),
                customer: call
                    .lookup
                    .as_ref()
                    .and_then(|l| l.customer.as_ref())
                    .map(|c| DraftCustomer {
                        id: c.id,
                        name: c.name.clone(),
                        address: c.address.clone(),
                        area: c.area.clone(),
                    }),
            },
            ivr::TicketUpdate::Variable { ref name, .. } => {
                // The value (an account number) goes on the ticket for the agent, never into
                // logs.
                tracing::debug!(call = %call.id, variable = name, "caller entry collected");
                CallEntry::Ivr(update)
            }
            update => CallEntry::Ivr(update),
        };
        self.journal.record(&call.id, entry);
    }

    // ----- ACD -----

    async fn apply_acd(&mut self, actions: Vec<AcdAction>) {
        let now = Instant::now();
        for (target, result) in self.apply_acd_collect(actions).await {
            self.ivr_event(target, ivr::Event::Queue { result, now })
                .await;
        }
    }

    /// Carries out the ACD's own actions; returns the queue results for calls' IVRs.
    async fn apply_acd_collect(
        &mut self,
        actions: Vec<AcdAction>,
    ) -> Vec<(CallHandle, ivr::QueueResult)> {
        let mut results = Vec::new();
        for action in actions {
            if let Some((call_id, result)) = acd::link::queue_result(&action)
                && let Some(&handle) = self.by_id.get(call_id)
            {
                results.push((handle, result));
            }
            match action {
                AcdAction::OfferToAgent { call, agent, uri } => {
                    if let Some(&handle) = self.by_id.get(&call) {
                        tracing::info!(call = %call, agent, "ringing agent");
                        self.start_leg(handle, LegPurpose::Agent(agent), &uri).await;
                    }
                }
                AcdAction::CancelOffer { call, agent } => {
                    let leg = self.legs.iter().find_map(|(leg_handle, leg)| {
                        let owner_id = self.calls.get(&leg.owner).map(|c| c.id.as_str());
                        (owner_id == Some(call.as_str())
                            && leg.purpose == LegPurpose::Agent(agent.clone())
                            && !leg.answered)
                            .then_some(*leg_handle)
                    });
                    if let Some(leg) = leg {
                        self.sip_command(Command::Hangup { call: leg }).await;
                    }
                }
                AcdAction::AgentSetOffline { agent } => {
                    tracing::warn!(
                        agent,
                        "agent did not answer: set offline until they report available"
                    );
                }
                AcdAction::StartTimer { id, at } => self.set_timer(TimerKey::Acd(id.0), at),
                AcdAction::CancelTimer { id } => self.cancel_timer(TimerKey::Acd(id.0)),
                AcdAction::Waiting { .. }
                | AcdAction::Overflow { .. }
                | AcdAction::Position { .. } => {}
            }
        }
        results
    }

    // ----- outgoing legs -----

    /// Places a call to `uri` for the caller `owner` (an agent's phone, a transfer target).
    async fn start_leg(&mut self, owner: CallHandle, purpose: LegPurpose, uri: &str) {
        let Some(call) = self.calls.get(&owner) else {
            return;
        };
        let call_id = call.id.clone();
        let from_user = if call.caller.is_empty() {
            OUR_USER.to_owned()
        } else {
            call.caller.clone()
        };
        let placed = match (peer_of(uri), self.pool.lease()) {
            (Some(peer), Ok(lease)) => {
                let (reply, handle) = oneshot::channel();
                let request = Request::StartCall {
                    call: OutgoingCall {
                        target: uri.to_owned(),
                        peer,
                        from_user,
                        local_rtp: lease.rtp_addr(),
                    },
                    reply,
                };
                match self.sip.send(request).await {
                    Ok(()) => handle.await.ok().map(|h| (h, lease)),
                    Err(_) => None,
                }
            }
            (None, _) => {
                tracing::error!(call = %call_id, uri, "cannot call this URI: it needs an IP address (we do no DNS); fix the configuration");
                None
            }
            (_, Err(error)) => {
                tracing::error!(call = %call_id, %error, "no RTP ports free for the outgoing call");
                None
            }
        };
        match placed {
            Some((handle, lease)) => {
                tracing::info!(call = %call_id, leg = handle.0, ?purpose, "outgoing call placed");
                self.legs.insert(
                    handle,
                    OutLeg {
                        owner,
                        purpose,
                        lease: Some(lease),
                        media: None,
                        answered: false,
                    },
                );
                if let Some(call) = self.calls.get_mut(&owner) {
                    call.legs.push(handle);
                }
            }
            // Boxed: failing feeds the IVR or ACD, which may place the next call.
            None => Box::pin(self.leg_failed(owner, &purpose)).await,
        }
    }

    /// An outgoing call did not come about: the ACD or the IVR moves on.
    async fn leg_failed(&mut self, owner: CallHandle, purpose: &LegPurpose) {
        let now = Instant::now();
        match purpose {
            LegPurpose::Agent(agent) => {
                let Some(call) = self.calls.get(&owner) else {
                    return;
                };
                let actions = self.acd.handle(AcdEvent::OfferRejected {
                    call: call.id.clone(),
                    agent: agent.clone(),
                    now,
                });
                self.apply_acd(actions).await;
            }
            LegPurpose::Transfer => {
                self.ivr_event(owner, ivr::Event::TransferFailed { now })
                    .await;
            }
        }
    }

    async fn on_leg_answered(&mut self, handle: CallHandle, media: &NegotiatedMedia) {
        let Some(leg) = self.legs.get_mut(&handle) else {
            return;
        };
        leg.answered = true;
        let (owner, purpose) = (leg.owner, leg.purpose.clone());
        if let Some(lease) = leg.lease.take() {
            // The leg's own session, bridged with the caller's below.
            let options = self
                .calls
                .get(&owner)
                .map(|c| SessionOptions::from_config(&c.config.media))
                .unwrap_or_default();
            match MediaSession::start(lease, self.prompts.clone(), media_params(media), options) {
                Ok(session) => {
                    leg.media = Some(MediaLink::spawn(
                        session,
                        Leg::Outgoing(handle),
                        self.media_events.clone(),
                        self.media_sessions.clone(),
                    ));
                }
                Err(error) => {
                    tracing::error!(leg = handle.0, %error, "agent-leg media failed to start")
                }
            }
        }
        let Some(call) = self.calls.get_mut(&owner) else {
            // The caller left meanwhile.
            self.sip_command(Command::Hangup { call: handle }).await;
            return;
        };
        if let (Some(caller_media), Some(leg_media)) = (&call.media, &leg.media) {
            bridge(caller_media, leg_media);
        }
        let now = Instant::now();
        match purpose {
            LegPurpose::Agent(agent) => {
                let actions = self.acd.handle(AcdEvent::OfferAnswered {
                    call: call.id.clone(),
                    agent: agent.clone(),
                    now,
                });
                self.apply_acd(actions).await;
                self.ivr_event(owner, ivr::Event::AgentAnswered { agent, now })
                    .await;
            }
            LegPurpose::Transfer => {
                call.stage = Stage::Transferred;
                tracing::info!(call = %call.id, "transfer target answered: connected");
                self.ivr_event(owner, ivr::Event::TransferAnswered { now })
                    .await;
            }
        }
    }

    async fn end_leg(&mut self, handle: CallHandle, reason: &EndReason) {
        let Some(leg) = self.legs.remove(&handle) else {
            return;
        };
        tracing::info!(leg = handle.0, ?reason, purpose = ?leg.purpose, "outgoing call ended");
        if let (true, LegPurpose::Agent(agent)) = (leg.answered, &leg.purpose) {
            // The ACD marked the agent busy when they answered; the call is over now.
            let actions = self.acd.handle(AcdEvent::AgentStateChanged {
                agent: agent.clone(),
                state: ReportedState::Available,
                now: Instant::now(),
            });
            self.apply_acd(actions).await;
        }
        if let Some(call) = self.calls.get_mut(&leg.owner) {
            call.legs.retain(|l| *l != handle);
            if leg.answered {
                // The agent (or transfer target) hung up: the caller's call is over too.
                if !call.hung_up {
                    call.hung_up = true;
                    self.sip_command(Command::Hangup { call: leg.owner }).await;
                }
            } else {
                self.leg_failed(leg.owner, &leg.purpose).await;
            }
        }
        // Dropping the leg drops its media link and lease: ports return to the pool.
    }

    /// The caller's call is over, however it ended: IVR told, ACD told, timers cancelled,
    /// legs hung up, media closed, ports freed, the call row completed.
    async fn end_call(&mut self, handle: CallHandle, reason: &EndReason) {
        let now = Instant::now();
        if let Some(call) = self.calls.get(&handle)
            && call.started
            && !call.engine.is_ended()
        {
            self.ivr_event(handle, ivr::Event::CallerHungUp { now })
                .await;
        }
        let Some(call) = self.calls.remove(&handle) else {
            return;
        };
        self.by_id.remove(&call.id);
        // The ACD forgets the call (a no-op when it was not waiting).
        let actions = self.acd.handle(AcdEvent::CallerAbandoned {
            call: call.id.clone(),
            now,
        });
        self.apply_acd(actions).await;
        let keys: Vec<TimerKey> = self
            .timer_at
            .keys()
            .filter(|k| matches!(k, TimerKey::Ivr(h, _) if *h == handle))
            .copied()
            .collect();
        for key in keys {
            self.cancel_timer(key);
        }
        for leg in &call.legs {
            self.sip_command(Command::Hangup { call: *leg }).await;
        }
        tracing::info!(
            call = %call.id,
            caller = %Masked(&call.caller),
            ?reason,
            disposition = call.stage.disposition().code(),
            "call ended"
        );
        let disposition = match (call.started, reason) {
            (true, _) => call.stage.disposition(),
            // Hung up while it rang.
            (false, EndReason::Cancelled | EndReason::RemoteHangup) => Stage::Ivr.disposition(),
            (false, _) => Disposition::Failed,
        };
        self.journal.record(
            &call.id,
            CallEntry::Ended {
                at: chrono::Utc::now(),
                disposition,
            },
        );
        // `call` drops here: its media link closes the session, its lease frees the ports.
    }
}

/// Connects two legs' audio: what each receives, the other sends (and the caller's
/// recording gets the other leg on its right channel).
fn bridge(caller: &MediaLink, other: &MediaLink) {
    let (to_other, from_caller) = mpsc::unbounded_channel();
    let (to_caller, from_other) = mpsc::unbounded_channel();
    caller.send(MediaCommand::Bridge {
        to: to_other,
        from: from_other,
    });
    other.send(MediaCommand::Bridge {
        to: to_caller,
        from: from_caller,
    });
}

/// The caller's household file, whether they have a ticket still open, and the outage
/// announcements for the number they called (and their area, when known).
async fn look_up(
    store: &Store,
    announcer: &Announcer,
    prompts: Arc<PromptLibrary>,
    caller: &str,
    dialled: &str,
) -> Result<Lookup, crate::store::StoreError> {
    let facts = if caller.is_empty() {
        CallerFacts::default()
    } else {
        store.caller_facts(caller).await?
    };
    let area = facts.customer.as_ref().map(|c| c.area.as_str());
    let found = announcer
        .announcement_prompts(dialled, area, chrono::Utc::now())
        .await?;
    // Rendered texts are read and encoded off the dispatcher, once per file version.
    let announcements = tokio::task::spawn_blocking(move || {
        found
            .into_iter()
            .filter_map(|prompt| match prompt {
                PromptRef::Prompt(name) => Some(name),
                PromptRef::Rendered { id, path } => match prompts.load_file(&path) {
                    Ok(name) => Some(name),
                    Err(error) => {
                        tracing::warn!(announcement = id, %error, "announcement audio unusable: skipped");
                        None
                    }
                },
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    Ok(Lookup {
        has_open_ticket: facts.has_open_ticket(),
        customer: facts.customer,
        announcements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hop_is_the_uri_ip_literal_with_port_5060_by_default() {
        let addr = |text: &str| Some(Peer::Udp(text.parse().unwrap()));
        assert_eq!(peer_of("sip:1001@127.0.0.1:5070"), addr("127.0.0.1:5070"));
        assert_eq!(peer_of("sip:oncall@127.0.0.1"), addr("127.0.0.1:5060"));
        assert_eq!(peer_of("sip:8001@[::1]:5062"), addr("[::1]:5062"));
        // No DNS: a host name cannot be called.
        assert_eq!(peer_of("sip:1001@pbx.example"), None);
        assert_eq!(peer_of("not a uri"), None);
    }

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
