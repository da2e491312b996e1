//! The desk state machine: agents' states and versions, offers, wrap-up, ring-no-answer, the
//! desktop grace period, subscriptions with resume, heartbeats and the wallboard counters.
//! Calls feed it [`DeskInput`]s, the API its requests; both then take its [`DeskAction`]s.

use super::config::{DESKTOP_DISCONNECTED, DeskConfig, RING_NO_ANSWER, SYSTEM_REASON_CODES};
use super::events::{
    AgentEvent, AgentState, CallPhase, EventKind, HandoverNote, HungUpBy, Offer, Requested,
    ResyncReason, Snapshot, WithdrawReason,
};
use super::stream::{Drained, History, Outbox, Resume};
use super::wallboard::{AgentsByState, LEAK_LANE, Lane, WallboardUpdate};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the call layer tells the desk about calls.
#[derive(Debug)]
pub enum DeskInput<P> {
    /// The call entered (or, after a transfer, re-entered) a queue.
    Queued {
        call: String,
        queue: String,
        priority: u8,
        leak: bool,
    },
    /// The agent's phone starts ringing for the call.
    Offered {
        call: String,
        agent: String,
        pop: Arc<P>,
        ring_deadline: Instant,
    },
    /// The offer stopped ringing without being answered by this agent.
    OfferEnded {
        call: String,
        agent: String,
        reason: WithdrawReason,
    },
    /// Whatever the agent's phone was ringing for rang out or was refused (the ACD's
    /// ring timer, a busy or unreachable phone): a miss.
    RangOut {
        agent: String,
    },
    Answered {
        call: String,
        agent: String,
    },
    /// The agent's conversation ended.
    Ended {
        call: String,
        who: HungUpBy,
    },
    /// The caller hung up before an agent answered.
    Abandoned {
        call: String,
    },
    /// The call left its queue unanswered for another reason (overflow to a number).
    LeftQueue {
        call: String,
    },
    SurveyResult {
        call: String,
        rating: u8,
    },
    /// The call's ticket changed (a commit of the Tickets API, the wrap-up's notes): `name`
    /// is the ticket number, `status` its status code.
    TicketChanged {
        call: String,
        name: String,
        status: String,
    },
    /// The caller's call is over; the desk forgets it.
    CallGone {
        call: String,
    },
}

/// Where a desktop sends a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    Queue(String),
    Agent(String),
    Uri(String),
}

/// Call control asked for from a desktop, for the call layer to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallControl {
    Transfer { to: TransferTarget, notes: String },
    HangUp,
    TransferToSurvey,
}

/// Identifies one subscriber (a desktop's or a wallboard's stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubId(pub u64);

/// What the desk asks of the I/O around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskAction {
    /// Tell the ACD whether the agent may be offered calls.
    Availability { agent: String, ready: bool },
    /// Store the state change in the agents' timeline.
    Timeline {
        agent: String,
        from: AgentState,
        to: AgentState,
        version: u64,
        at_ms: i64,
    },
    /// Store the disposition and notes on the call and its draft ticket.
    Disposition {
        call: String,
        agent: String,
        code: String,
        notes: String,
    },
    Control {
        call: String,
        agent: String,
        control: CallControl,
    },
    /// The subscriber has items to drain.
    Wake(SubId),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    #[error("agent {0:?} is not in [acd.agents]; check the agent id")]
    UnknownAgent(String),
    #[error(
        "expected_version {expected} is stale: the agent is at version {current}; re-read the state and retry"
    )]
    Stale { expected: u64, current: u64 },
    #[error("reason_code {0:?} is not configured; use one of desk.reason_codes")]
    UnknownReason(String),
    #[error("reason_code {0:?} is a system code the daemon sets; choose one of desk.reason_codes")]
    SystemReason(String),
    #[error("disposition_code {0:?} is not configured; use one of desk.disposition_codes")]
    UnknownDisposition(String),
    #[error("agent {0:?} is not in wrap-up")]
    NotInWrapUp(String),
    #[error(
        "agent {agent:?} does not hold call {call:?}; only the agent talking on a call may control it"
    )]
    NotHolding { agent: String, call: String },
    /// A transfer to a queue or agent that is not configured (`field`: which).
    #[error("{field} {name:?} is not in [acd.{field}s]; transfer to a configured one")]
    UnknownTarget { field: &'static str, name: String },
    /// A blind transfer to an agent who is not READY: refused, the caller stays.
    #[error(
        "agent {agent:?} is {state}, not ready: a blind transfer goes only to a READY agent; \
         the caller stays with you: transfer to a queue, or try again once they are READY"
    )]
    TargetNotReady { agent: String, state: String },
}

/// An item of a subscriber's stream.
#[derive(Debug)]
pub enum StreamItem<P> {
    Agent(AgentEvent<P>),
    Wallboard(WallboardUpdate),
}

/// An agent as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub id: String,
    pub state: AgentState,
    pub version: u64,
    pub pending: Option<Requested>,
    pub queues: Vec<String>,
    pub call: Option<String>,
    pub desktops: usize,
}

/// A call in progress as supervisors list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub call: String,
    pub queue: String,
    pub priority: u8,
    pub leak: bool,
    pub agent: Option<String>,
    pub phase: LivePhase,
    /// Unix milliseconds of the phase's start.
    pub since_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivePhase {
    Waiting,
    Ringing,
    Talking,
    /// The agent has left; the caller is still on the line (the survey).
    AfterAgent,
}

/// The agents and queues the desk knows (from `[acd]`).
#[derive(Debug, Clone, Default)]
pub struct Roster {
    /// Agent id → the queues the agent serves.
    pub agents: BTreeMap<String, Vec<String>>,
    pub queues: Vec<String>,
}

enum Phase {
    Ringing,
    Talking {
        since: Instant,
    },
    WrapUp {
        started: Instant,
        deadline: Instant,
        talk: Duration,
    },
}

struct Current<P> {
    offer: Arc<Offer<P>>,
    lane: String,
    phase: Phase,
}

struct Agent<P> {
    queues: Vec<String>,
    state: AgentState,
    version: u64,
    pending: Option<Requested>,
    current: Option<Current<P>>,
    misses: u32,
    history: History<P>,
    desktops: BTreeSet<SubId>,
    unwatched_since: Option<Instant>,
    /// The call the agent handled last (wrap-up over): its ticket's changes still reach them
    /// until they handle another.
    last_call: Option<String>,
}

struct Call {
    queue: String,
    lane: String,
    priority: u8,
    leak: bool,
    agent: Option<String>,
    /// The agent the survey result and ticket changes go to.
    last_agent: Option<String>,
    phase: LivePhase,
    since: Instant,
    waiting_since: Option<Instant>,
    handover: Vec<HandoverNote>,
}

enum Topic {
    Agent(String),
    Wallboard,
}

struct Subscriber<P> {
    topic: Topic,
    outbox: Outbox<StreamItem<P>>,
}

/// The agents' desk. `P` is the screen pop, opaque here.
pub struct Desk<P> {
    config: Arc<DeskConfig>,
    tz: Tz,
    epoch: u64,
    anchor: (Instant, i64),
    agents: BTreeMap<String, Agent<P>>,
    calls: HashMap<String, Call>,
    lanes: BTreeMap<String, Lane>,
    day: NaiveDate,
    agents_dirty: bool,
    subscribers: BTreeMap<SubId, Subscriber<P>>,
    next_sub: u64,
    next_heartbeat: Instant,
    actions: Vec<DeskAction>,
    woken: BTreeSet<SubId>,
    /// The queues of `[acd]`, for transfers.
    queues: BTreeSet<String>,
}

mod requests;
mod subscribers;
mod views;

impl<P> Desk<P> {
    /// A desk for a daemon run: `epoch` must differ from any earlier run's (desktops resync
    /// when it changes); `wall_ms` is the Unix time in milliseconds at `now`.
    pub fn new(
        config: Arc<DeskConfig>,
        tz: Tz,
        roster: &Roster,
        epoch: u64,
        now: Instant,
        wall_ms: i64,
    ) -> Desk<P> {
        let mut desk = Desk {
            next_heartbeat: now + Duration::from_secs(config.heartbeat_secs.max(1)),
            config,
            tz,
            epoch,
            anchor: (now, wall_ms),
            agents: BTreeMap::new(),
            calls: HashMap::new(),
            lanes: BTreeMap::new(),
            day: NaiveDate::MIN,
            agents_dirty: true,
            subscribers: BTreeMap::new(),
            next_sub: 0,
            actions: Vec::new(),
            woken: BTreeSet::new(),
            queues: BTreeSet::new(),
        };
        desk.day = desk.local_day(now);
        desk.reconfigure(desk.config.clone(), roster, now);
        desk
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn config(&self) -> &DeskConfig {
        &self.config
    }

    /// Applies a reloaded configuration: new agents start logged out; removed agents are
    /// logged out and their desktops closed.
    pub fn reconfigure(&mut self, config: Arc<DeskConfig>, roster: &Roster, now: Instant) {
        let removed: Vec<String> = self
            .agents
            .keys()
            .filter(|id| !roster.agents.contains_key(*id))
            .cloned()
            .collect();
        for id in removed {
            self.change_state(&id, AgentState::LoggedOut, now);
            if let Some(agent) = self.agents.remove(&id) {
                for sub in agent.desktops {
                    if let Some(s) = self.subscribers.get_mut(&sub) {
                        s.outbox.close();
                        self.woken.insert(sub);
                    }
                }
            }
        }
        for (id, queues) in &roster.agents {
            let agent = self.agents.entry(id.clone()).or_insert_with(|| Agent {
                queues: Vec::new(),
                state: AgentState::LoggedOut,
                version: 0,
                pending: None,
                current: None,
                misses: 0,
                history: History::new(config.history_len),
                desktops: BTreeSet::new(),
                unwatched_since: None,
                last_call: None,
            });
            agent.queues = queues.clone();
            agent.history.set_limit(config.history_len);
        }
        for queue in roster.queues.iter().map(String::as_str).chain([LEAK_LANE]) {
            self.lanes.entry(queue.to_owned()).or_default();
        }
        self.queues = roster.queues.iter().cloned().collect();
        self.config = config;
        self.agents_dirty = true;
    }

    /// Everything the desk asked for since the last call.
    pub fn take_actions(&mut self) -> Vec<DeskAction> {
        let mut actions = std::mem::take(&mut self.actions);
        actions.extend(
            std::mem::take(&mut self.woken)
                .into_iter()
                .map(DeskAction::Wake),
        );
        actions
    }

    /// Unix milliseconds of `t` on the desk's clock.
    pub fn wall(&self, t: Instant) -> i64 {
        let (anchor, wall) = self.anchor;
        if t >= anchor {
            wall + (t - anchor).as_millis() as i64
        } else {
            wall - (anchor - t).as_millis() as i64
        }
    }

    fn local_day(&self, now: Instant) -> NaiveDate {
        DateTime::from_timestamp_millis(self.wall(now))
            .map(|t| t.with_timezone(&self.tz).date_naive())
            .unwrap_or(NaiveDate::MIN)
    }

    /// Feeds a call event.
    pub fn handle(&mut self, input: DeskInput<P>, now: Instant) {
        self.roll_day(now);
        match input {
            DeskInput::Queued {
                call,
                queue,
                priority,
                leak,
            } => self.queued(call, queue, priority, leak, now),
            DeskInput::Offered {
                call,
                agent,
                pop,
                ring_deadline,
            } => self.offered(call, agent, pop, ring_deadline, now),
            DeskInput::OfferEnded {
                call,
                agent,
                reason,
            } => self.offer_ended(&call, &agent, reason, now),
            DeskInput::RangOut { agent } => {
                let ringing = self
                    .agents
                    .get(&agent)
                    .and_then(|a| a.current.as_ref())
                    .filter(|c| matches!(c.phase, Phase::Ringing))
                    .map(|c| c.offer.call.clone());
                if let Some(call) = ringing {
                    self.offer_ended(&call, &agent, WithdrawReason::RingTimeout, now);
                }
            }
            DeskInput::Answered { call, agent } => self.answered(&call, &agent, now),
            DeskInput::Ended { call, who } => self.ended(&call, who, now),
            DeskInput::Abandoned { call } => self.left_queue(&call, true, now),
            DeskInput::LeftQueue { call } => self.left_queue(&call, false, now),
            DeskInput::SurveyResult { call, rating } => {
                if let Some(c) = self.calls.get(&call)
                    && (1..=3).contains(&rating)
                {
                    let lane = c.lane.clone();
                    if let Some(l) = self.lanes.get_mut(&lane) {
                        l.counters.ratings[rating as usize - 1] += 1;
                        l.dirty = true;
                    }
                }
                self.publish_to_call_agent(
                    &call,
                    EventKind::SurveyResult {
                        call: call.clone(),
                        rating,
                    },
                    now,
                );
            }
            DeskInput::TicketChanged { call, name, status } => {
                let kind = EventKind::TicketChanged {
                    call: call.clone(),
                    name,
                    status,
                };
                self.publish_to_call_agent(&call, kind, now);
            }
            DeskInput::CallGone { call } => {
                if let Some(c) = self.calls.get(&call)
                    && c.waiting_since.is_some()
                {
                    self.left_queue(&call, true, now);
                }
                self.calls.remove(&call);
            }
        }
    }

    fn queued(&mut self, call: String, queue: String, priority: u8, leak: bool, now: Instant) {
        let lane = if leak {
            LEAK_LANE.to_owned()
        } else {
            queue.clone()
        };
        let l = self.lanes.entry(lane.clone()).or_default();
        l.counters.offered += 1;
        l.waiting.insert(call.clone(), now);
        l.dirty = true;
        let entry = self.calls.entry(call).or_insert_with(|| Call {
            queue: queue.clone(),
            lane: lane.clone(),
            priority,
            leak,
            agent: None,
            last_agent: None,
            phase: LivePhase::Waiting,
            since: now,
            waiting_since: None,
            handover: Vec::new(),
        });
        entry.queue = queue;
        entry.lane = lane;
        entry.priority = priority;
        entry.leak = leak;
        entry.agent = None;
        entry.phase = LivePhase::Waiting;
        entry.since = now;
        entry.waiting_since = Some(now);
    }

    fn offered(
        &mut self,
        call: String,
        agent: String,
        pop: Arc<P>,
        deadline: Instant,
        now: Instant,
    ) {
        let (queue, lane, handover) = match self.calls.get_mut(&call) {
            Some(c) => {
                c.agent = Some(agent.clone());
                c.phase = LivePhase::Ringing;
                c.since = now;
                (c.queue.clone(), c.lane.clone(), c.handover.clone())
            }
            None => (String::new(), String::new(), Vec::new()),
        };
        if !self.agents.contains_key(&agent) {
            return;
        }
        let offer = Arc::new(Offer {
            call,
            queue,
            pop,
            ring_deadline_ms: self.wall(deadline),
            handover,
        });
        if let Some(a) = self.agents.get_mut(&agent) {
            a.current = Some(Current {
                offer: offer.clone(),
                lane,
                phase: Phase::Ringing,
            });
        }
        self.change_state(&agent, AgentState::Ringing, now);
        self.publish(&agent, EventKind::Offered(offer), now);
    }

    /// The agent's current call, if it is `call`.
    fn holds(&self, agent: &str, call: &str) -> Option<&Current<P>> {
        self.agents
            .get(agent)?
            .current
            .as_ref()
            .filter(|c| c.offer.call == call)
    }

    fn offer_ended(&mut self, call: &str, agent: &str, reason: WithdrawReason, now: Instant) {
        if !self
            .holds(agent, call)
            .is_some_and(|c| matches!(c.phase, Phase::Ringing))
        {
            return;
        }
        if let Some(c) = self.calls.get_mut(call) {
            c.agent = None;
            if c.waiting_since.is_some() {
                c.phase = LivePhase::Waiting;
            }
        }
        let kind = EventKind::OfferWithdrawn {
            call: call.to_owned(),
            reason,
        };
        self.publish(agent, kind, now);
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        a.current = None;
        let mut next = None;
        if reason == WithdrawReason::RingTimeout {
            a.misses += 1;
            if a.misses >= self.config.ring_no_answer_after {
                a.misses = 0;
                next = Some(AgentState::NotReady(RING_NO_ANSWER.to_owned()));
            }
        }
        let next = match (a.pending.take(), next) {
            (Some(pending), _) => pending.as_state(),
            (None, Some(not_ready)) => not_ready,
            (None, None) => AgentState::Ready,
        };
        self.change_state(agent, next, now);
    }

    fn answered(&mut self, call: &str, agent: &str, now: Instant) {
        if let Some(c) = self.calls.get_mut(call) {
            if let Some(since) = c.waiting_since.take() {
                let wait = now.saturating_duration_since(since);
                let within = wait <= Duration::from_secs(self.config.service_level_secs);
                if let Some(l) = self.lanes.get_mut(&c.lane) {
                    l.waiting.remove(call);
                    l.counters.answered += 1;
                    l.counters.answered_within += u64::from(within);
                    l.counters.answered_wait_ms += wait.as_millis() as u64;
                    l.dirty = true;
                }
            }
            c.agent = Some(agent.to_owned());
            c.last_agent = Some(agent.to_owned());
            c.phase = LivePhase::Talking;
            c.since = now;
        }
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(current) = a.current.as_mut().filter(|c| c.offer.call == call) else {
            return;
        };
        current.phase = Phase::Talking { since: now };
        a.misses = 0;
        self.change_state(agent, AgentState::OnCall, now);
        self.publish(
            agent,
            EventKind::Connected {
                call: call.to_owned(),
            },
            now,
        );
    }

    fn ended(&mut self, call: &str, who: HungUpBy, now: Instant) {
        let Some(agent) = self
            .calls
            .get_mut(call)
            .filter(|c| c.phase == LivePhase::Talking)
            .and_then(|c| {
                c.phase = LivePhase::AfterAgent;
                c.since = now;
                c.agent.take()
            })
        else {
            return;
        };
        let Some(current) = self.agents.get_mut(&agent).and_then(|a| a.current.as_mut()) else {
            return;
        };
        let Phase::Talking { since } = current.phase else {
            return;
        };
        let talk = now.saturating_duration_since(since);
        let wrap = self.config.wrap_up_for(&current.offer.queue);
        let kind = EventKind::Ended {
            call: call.to_owned(),
            who,
            duration_ms: talk.as_millis() as i64,
        };
        if wrap == 0 {
            let lane = current.lane.clone();
            self.publish(&agent, kind, now);
            self.handled(&lane, talk);
            self.after_call(&agent, now);
            return;
        }
        let deadline = now + Duration::from_secs(wrap);
        current.phase = Phase::WrapUp {
            started: now,
            deadline,
            talk,
        };
        self.publish(&agent, kind, now);
        self.change_state(&agent, AgentState::WrapUp, now);
        let kind = EventKind::WrapUpStarted {
            call: call.to_owned(),
            deadline_ms: self.wall(deadline),
        };
        self.publish(&agent, kind, now);
    }

    fn handled(&mut self, lane: &str, took: Duration) {
        if let Some(l) = self.lanes.get_mut(lane) {
            l.counters.handled += 1;
            l.counters.handle_ms += took.as_millis() as u64;
            l.dirty = true;
        }
    }

    /// The call and its wrap-up are over: the pending request, else READY.
    fn after_call(&mut self, agent: &str, now: Instant) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if let Some(current) = a.current.take() {
            a.last_call = Some(current.offer.call.clone());
        }
        let next = a.pending.take().map_or(AgentState::Ready, |p| p.as_state());
        self.change_state(agent, next, now);
    }

    /// The call stopped waiting: abandoned by the caller, or moved on.
    fn left_queue(&mut self, call: &str, abandoned: bool, now: Instant) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let ringing = c.agent.take().filter(|_| c.phase == LivePhase::Ringing);
        if let Some(since) = c.waiting_since.take()
            && let Some(l) = self.lanes.get_mut(&c.lane)
        {
            l.waiting.remove(call);
            if abandoned {
                let wait = now.saturating_duration_since(since);
                l.counters.abandoned += 1;
                l.counters.abandoned_within +=
                    u64::from(wait <= Duration::from_secs(self.config.service_level_secs));
                l.counters.short_abandoned +=
                    u64::from(wait < Duration::from_secs(self.config.short_abandon_secs));
            }
            l.dirty = true;
        }
        if abandoned {
            self.calls.remove(call);
        }
        if let Some(agent) = ringing {
            let reason = if abandoned {
                WithdrawReason::CallerHungUp
            } else {
                WithdrawReason::Transferred
            };
            self.offer_ended(call, &agent, reason, now);
        }
    }

    /// Publishes to the agent the call is (or was last) with; once the caller's call is gone,
    /// to the agent still wrapping it up or who wrapped it up last (a ticket edited during or
    /// right after wrap-up, the wrap-up's own notes).
    fn publish_to_call_agent(&mut self, call: &str, kind: EventKind<P>, now: Instant) {
        let agent = match self.calls.get(call) {
            Some(c) => c.agent.clone().or_else(|| c.last_agent.clone()),
            None => self
                .agents
                .iter()
                .find(|(_, a)| {
                    a.current.as_ref().is_some_and(|c| c.offer.call == call)
                        || a.last_call.as_deref() == Some(call)
                })
                .map(|(id, _)| id.clone()),
        };
        if let Some(agent) = agent {
            self.publish(&agent, kind, now);
        }
    }

    /// Moves the agent to `to` (no-op when already there), recording and announcing it.
    fn change_state(&mut self, agent: &str, to: AgentState, now: Instant) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.state == to {
            return;
        }
        let from = std::mem::replace(&mut a.state, to.clone());
        a.version += 1;
        let version = a.version;
        if from == AgentState::LoggedOut && a.desktops.is_empty() {
            a.unwatched_since = Some(now);
        }
        self.agents_dirty = true;
        let at_ms = self.wall(now);
        self.actions.push(DeskAction::Timeline {
            agent: agent.to_owned(),
            from: from.clone(),
            to: to.clone(),
            version,
            at_ms,
        });
        if !matches!(to, AgentState::Ringing | AgentState::OnCall) {
            self.actions.push(DeskAction::Availability {
                agent: agent.to_owned(),
                ready: to == AgentState::Ready,
            });
        }
        self.publish(agent, EventKind::StateChanged { from, to, version }, now);
    }

    /// Appends an event to the agent's history and queues it for the agent's desktops.
    fn publish(&mut self, agent: &str, kind: EventKind<P>, now: Instant) {
        let at_ms = self.wall(now);
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let event = a.history.push(self.epoch, at_ms, kind);
        let desktops: Vec<SubId> = a.desktops.iter().copied().collect();
        for sub in desktops {
            self.deliver(sub, StreamItem::Agent(event.clone()), now);
        }
    }

    fn agent(&self, agent: &str) -> Result<&Agent<P>, DeskError> {
        self.agents
            .get(agent)
            .ok_or_else(|| DeskError::UnknownAgent(agent.to_owned()))
    }

    /// Runs what is due at `now`: wrap-up expiries, the desktop grace period, heartbeats and
    /// wallboard messages.
    pub fn poll(&mut self, now: Instant) {
        self.roll_day(now);
        let expired: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| {
                matches!(&a.current, Some(Current { phase: Phase::WrapUp { deadline, .. }, .. }) if *deadline <= now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for agent in expired {
            self.end_wrap_up(&agent, now);
        }
        self.check_grace(now);
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + Duration::from_secs(self.config.heartbeat_secs.max(1));
            let subs: Vec<(SubId, String)> = self
                .subscribers
                .iter()
                .filter_map(|(id, s)| match &s.topic {
                    Topic::Agent(agent) => Some((*id, agent.clone())),
                    Topic::Wallboard => None,
                })
                .collect();
            for (sub, agent) in subs {
                let beat = self.meta(&agent, now, EventKind::Heartbeat);
                self.deliver(sub, StreamItem::Agent(beat), now);
            }
        }
        self.flush_wallboard(now);
    }

    fn check_grace(&mut self, now: Instant) {
        let grace = self.config.desktop_grace_secs;
        if grace == 0 {
            return;
        }
        let lost: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| {
                a.unwatched_since
                    .is_some_and(|since| now >= since + Duration::from_secs(grace))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in lost {
            let disconnected = AgentState::NotReady(DESKTOP_DISCONNECTED.to_owned());
            let Some(a) = self.agents.get_mut(&id) else {
                continue;
            };
            a.unwatched_since = None;
            match &a.state {
                AgentState::Ready => self.change_state(&id, disconnected, now),
                s if s.is_call_state() && a.pending.is_none() => {
                    a.pending = Some(Requested::NotReady(DESKTOP_DISCONNECTED.to_owned()));
                }
                _ => {}
            }
        }
    }

    fn roll_day(&mut self, now: Instant) {
        let today = self.local_day(now);
        if today != self.day {
            self.day = today;
            for lane in self.lanes.values_mut() {
                lane.counters = Default::default();
                lane.dirty = true;
            }
        }
    }

    /// When `poll` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let wrap_ups = self.agents.values().filter_map(|a| match &a.current {
            Some(Current {
                phase: Phase::WrapUp { deadline, .. },
                ..
            }) => Some(*deadline),
            _ => None,
        });
        let grace = Duration::from_secs(self.config.desktop_grace_secs);
        let graces = self
            .agents
            .values()
            .filter(|_| !grace.is_zero())
            .filter_map(|a| a.unwatched_since.map(|t| t + grace));
        let lanes = self.lanes.values().filter_map(Lane::due_at);
        let heartbeat = (!self.subscribers.is_empty()).then_some(self.next_heartbeat);
        wrap_ups.chain(graces).chain(lanes).chain(heartbeat).min()
    }
}
