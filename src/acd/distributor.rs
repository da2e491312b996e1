//! The call distributor: waiting calls ordered leaks first, then by priority, then by how long
//! they have waited, across every queue (see the fairness rule in the module doc of `acd`);
//! free agents chosen longest-idle first; ring-no-answer re-offers; overflow after a wait;
//! queue positions announced to waiting callers, never worse than the last one.
//! Sans-IO: events in with `now`, actions out, timers as actions.
//!
//! Owns who gets which call next; must not do SIP, media or ticket work.

use super::config::AcdConfig;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Identifies one ACD timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcdTimerId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Available,
    /// An offer is ringing the agent's phone.
    Ringing,
    Busy,
    WrapUp,
    Offline,
}

/// States an agent (or the driver on the agent's behalf) may report; `Ringing` is the ACD's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedState {
    Available,
    Busy,
    WrapUp,
    Offline,
}

#[derive(Debug, Clone)]
pub enum AcdEvent<C = String> {
    /// The IVR asked to queue the call. A call already waiting is moved (its offer cancelled).
    CallQueued {
        call: C,
        queue: String,
        priority: u8,
        leak: bool,
        now: Instant,
    },
    /// A desktop's blind transfer to `agent`: the call is offered to that agent alone, at
    /// once, if they are free; otherwise, or if the offer is not taken (ring-out, busy phone,
    /// the agent leaves), it waits in `queue` with its priority like any call.
    CallDirected {
        call: C,
        agent: String,
        queue: String,
        priority: u8,
        leak: bool,
        now: Instant,
    },
    AgentStateChanged {
        agent: String,
        state: ReportedState,
        now: Instant,
    },
    OfferAnswered {
        call: C,
        agent: String,
        now: Instant,
    },
    /// The agent declined, was busy or unreachable.
    OfferRejected {
        call: C,
        agent: String,
        now: Instant,
    },
    TimerFired {
        id: AcdTimerId,
        now: Instant,
    },
    CallerAbandoned {
        call: C,
        now: Instant,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdAction<C = String> {
    /// Ring `uri` (the agent's phone) for `call`.
    OfferToAgent {
        call: C,
        agent: String,
        uri: String,
    },
    /// Stop ringing the agent (the call left, or moved on).
    CancelOffer {
        call: C,
        agent: String,
    },
    /// Nobody free for `call` now; it waits.
    Waiting {
        call: C,
    },
    /// The agent did not take the offer and is now offline until they report available again.
    AgentSetOffline {
        agent: String,
    },
    StartTimer {
        id: AcdTimerId,
        at: Instant,
    },
    CancelTimer {
        id: AcdTimerId,
    },
    /// The call waited too long: send it to `uri` (leaks: the on-call dispatcher). It has left
    /// the queue; the IVR re-queues it if that fails, and it gets its place back.
    Overflow {
        call: C,
        uri: String,
    },
    /// Tell the (non-leak) caller how many callers are ahead of them and, when configured,
    /// about how many minutes they will wait. Never more than the last time.
    Position {
        call: C,
        ahead: u32,
        wait_minutes: Option<u32>,
    },
}

#[derive(Debug, Clone)]
struct Agent {
    uri: String,
    queues: Vec<String>,
    state: AgentState,
    /// When the agent last became available; longest idle is rung first.
    idle_since: Instant,
    /// When the agent took their current call, for the handle time.
    busy_since: Option<Instant>,
}

/// A caller's place in the queues: kept when the call moves to another queue or comes back
/// after a failed overflow, so a caller never starts over.
#[derive(Debug, Clone, Copy)]
struct Standing {
    /// When the caller first queued.
    arrived: Instant,
    /// Tie-breaker for calls arriving at the same instant.
    seq: u64,
    /// The last position announced to the caller.
    announced: Option<Announced>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announced {
    ahead: u32,
    wait_minutes: Option<u32>,
}

#[derive(Debug, Clone)]
struct WaitingCall<C> {
    call: C,
    queue: String,
    priority: u8,
    leak: bool,
    standing: Standing,
    offer: Option<(String, AcdTimerId)>,
    /// The one agent the call is for (a desktop's transfer), while that agent is rung;
    /// cleared when the offer ends untaken, and the call waits for its queue.
    directed: Option<String>,
    overflow_timer: Option<AcdTimerId>,
    announce_timer: Option<AcdTimerId>,
}

impl<C> WaitingCall<C> {
    /// Smaller goes first: leaks, then higher priority, then the longest wait.
    fn order_key(&self) -> (bool, std::cmp::Reverse<u8>, Instant, u64) {
        (
            !self.leak,
            std::cmp::Reverse(self.priority),
            self.standing.arrived,
            self.standing.seq,
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum TimerKind {
    Ring,
    Overflow,
    Announce,
}

/// Weight of the newest call in the running average of handle times.
const HANDLE_TIME_WEIGHT: f64 = 0.2;

/// What the ACD needs of a call's name: the driver's own call handle (the call layer's
/// registry key), so that no translation map stands between the two.
pub trait CallKey: Clone + Eq + fmt::Debug {}

impl<T: Clone + Eq + fmt::Debug> CallKey for T {}

/// The ACD, naming calls by the driver's key `C`. Agents start offline until they report
/// available.
#[derive(Debug, Clone)]
pub struct Acd<C = String> {
    config: Arc<AcdConfig>,
    agents: BTreeMap<String, Agent>,
    waiting: Vec<WaitingCall<C>>,
    /// Calls sent to their overflow target, with the place they get back if it fails.
    overflowed: Vec<(C, Standing)>,
    timers: HashMap<AcdTimerId, (C, TimerKind)>,
    next_id: u64,
    /// Running average of how long agents spend on a call, for the estimated wait.
    handle_time: Option<Duration>,
}

impl<C: CallKey> Acd<C> {
    pub fn new(config: Arc<AcdConfig>, now: Instant) -> Acd<C> {
        let agents = config
            .agents
            .iter()
            .map(|(id, a)| {
                let agent = Agent {
                    uri: a.uri.clone(),
                    queues: a.queues.clone(),
                    state: AgentState::Offline,
                    idle_since: now,
                    busy_since: None,
                };
                (id.clone(), agent)
            })
            .collect();
        Acd {
            config,
            agents,
            waiting: Vec::new(),
            overflowed: Vec::new(),
            timers: HashMap::new(),
            next_id: 0,
            handle_time: None,
        }
    }

    /// Applies a reloaded `[acd]`: agents still listed keep their state and idle time, new
    /// ones start offline, removed ones stop being rung; waiting calls keep their place.
    pub fn reconfigure(&mut self, config: Arc<AcdConfig>, now: Instant) -> Vec<AcdAction<C>> {
        let mut out = Vec::new();
        let removed: Vec<String> = self
            .agents
            .keys()
            .filter(|id| !config.agents.contains_key(*id))
            .cloned()
            .collect();
        for agent in &removed {
            self.withdraw_offer_of(agent, &mut out);
            self.agents.remove(agent);
        }
        for (id, agent) in &config.agents {
            let slot = self.agents.entry(id.clone()).or_insert_with(|| Agent {
                uri: agent.uri.clone(),
                queues: Vec::new(),
                state: AgentState::Offline,
                idle_since: now,
                busy_since: None,
            });
            slot.uri = agent.uri.clone();
            slot.queues = agent.queues.clone();
        }
        self.config = config;
        self.dispatch(now, &mut out);
        out
    }

    pub fn agent_state(&self, agent: &str) -> Option<AgentState> {
        self.agents.get(agent).map(|a| a.state)
    }

    /// Every configured agent with its state and queues, by id.
    pub fn agents(&self) -> impl Iterator<Item = (&str, AgentState, &[String])> {
        self.agents
            .iter()
            .map(|(id, a)| (id.as_str(), a.state, a.queues.as_slice()))
    }

    /// Waiting calls in the order they will be served.
    pub fn waiting_calls(&self) -> Vec<&C> {
        let mut calls: Vec<&WaitingCall<C>> = self.waiting.iter().collect();
        calls.sort_by_key(|c| c.order_key());
        calls.into_iter().map(|c| &c.call).collect()
    }

    pub fn handle(&mut self, event: AcdEvent<C>) -> Vec<AcdAction<C>> {
        let mut out = Vec::new();
        match event {
            AcdEvent::CallQueued {
                call,
                queue,
                priority,
                leak,
                now,
            } => {
                let waiting = self.waiting_call(call, queue, priority, leak, now, &mut out);
                self.queue_call(waiting, now, &mut out)
            }
            AcdEvent::CallDirected {
                call,
                agent,
                queue,
                priority,
                leak,
                now,
            } => {
                let mut waiting = self.waiting_call(call, queue, priority, leak, now, &mut out);
                waiting.directed = Some(agent);
                self.queue_call(waiting, now, &mut out)
            }
            AcdEvent::AgentStateChanged { agent, state, now } => {
                self.agent_state_changed(&agent, state, now, &mut out)
            }
            AcdEvent::OfferAnswered { call, agent, now } => {
                let offered = self
                    .find(&call)
                    .and_then(|c| c.offer.as_ref())
                    .is_some_and(|(a, _)| *a == agent);
                if offered {
                    if let Some(waiting) = self.waiting.iter_mut().find(|c| c.call == call)
                        && let Some((_, ring)) = waiting.offer.take()
                    {
                        self.cancel_timer(ring, &mut out);
                    }
                    if let Some(slot) = self.agents.get_mut(&agent) {
                        slot.state = AgentState::Busy;
                        slot.busy_since = Some(now);
                    }
                    self.remove_call(&call, &mut out);
                }
            }
            AcdEvent::OfferRejected { call, agent, now } => {
                let offered = self
                    .find(&call)
                    .and_then(|c| c.offer.as_ref())
                    .is_some_and(|(a, _)| *a == agent);
                if offered {
                    self.no_answer(&call, now, &mut out);
                }
            }
            AcdEvent::TimerFired { id, now } => {
                let Some((call, kind)) = self.timers.remove(&id) else {
                    return out;
                };
                match kind {
                    TimerKind::Ring => {
                        if let Some((agent, _)) = self.find(&call).and_then(|c| c.offer.clone()) {
                            out.push(AcdAction::CancelOffer {
                                call: call.clone(),
                                agent,
                            });
                        }
                        self.no_answer(&call, now, &mut out);
                    }
                    TimerKind::Overflow => self.overflow(&call, now, &mut out),
                    TimerKind::Announce => {
                        if let Some(waiting) = self.waiting.iter_mut().find(|c| c.call == call) {
                            waiting.announce_timer = None;
                        }
                        self.announce(&call, now, &mut out);
                    }
                }
            }
            AcdEvent::CallerAbandoned { call, now } => {
                self.overflowed.retain(|(c, _)| *c != call);
                self.remove_call(&call, &mut out);
                self.dispatch(now, &mut out);
            }
        }
        out
    }

    /// The call as it starts waiting, with its place (a call already waiting moves: it is
    /// taken out of the line, keeping its place).
    fn waiting_call(
        &mut self,
        call: C,
        queue: String,
        priority: u8,
        leak: bool,
        now: Instant,
        out: &mut Vec<AcdAction<C>>,
    ) -> WaitingCall<C> {
        let standing = self.standing_of(&call, now);
        self.remove_call(&call, out);
        WaitingCall {
            call,
            queue,
            priority,
            leak,
            standing,
            offer: None,
            directed: None,
            overflow_timer: None,
            announce_timer: None,
        }
    }

    /// The IVR (or a desktop's transfer) asked to queue the call.
    fn queue_call(&mut self, waiting: WaitingCall<C>, now: Instant, out: &mut Vec<AcdAction<C>>) {
        let (call, leak) = (waiting.call.clone(), waiting.leak);
        let overflow_after = if leak {
            Some(self.config.leak.overflow_after_secs)
        } else {
            let queue = self.config.queues.get(&waiting.queue);
            queue
                .and_then(|q| q.overflow.as_ref())
                .map(|o| o.after_secs)
        };
        self.waiting.push(waiting);
        // Ring first: the overflow timer can wait a few microseconds.
        self.dispatch(now, out);
        if let Some(secs) = overflow_after {
            let id = self.start_timer(&call, TimerKind::Overflow, now, secs, out);
            if let Some(waiting) = self.waiting.iter_mut().find(|c| c.call == call) {
                waiting.overflow_timer = Some(id);
            }
        }
        if self.find(&call).is_some_and(|c| c.offer.is_none()) {
            out.push(AcdAction::Waiting { call: call.clone() });
        }
        if !leak && self.config.announce_every_secs > 0 {
            self.announce(&call, now, out);
        }
    }

    fn agent_state_changed(
        &mut self,
        agent: &str,
        state: ReportedState,
        now: Instant,
        out: &mut Vec<AcdAction<C>>,
    ) {
        let Some(slot) = self.agents.get_mut(agent) else {
            return;
        };
        let was = slot.state;
        slot.state = match state {
            ReportedState::Available => AgentState::Available,
            ReportedState::Busy => AgentState::Busy,
            ReportedState::WrapUp => AgentState::WrapUp,
            ReportedState::Offline => AgentState::Offline,
        };
        if state == ReportedState::Available && was != AgentState::Available {
            slot.idle_since = now;
        }
        if was == AgentState::Busy
            && state != ReportedState::Busy
            && let Some(since) = slot.busy_since.take()
        {
            self.handle_time_sample(now.saturating_duration_since(since));
        }
        if was == AgentState::Ringing {
            // The agent left while being rung: the call goes back to waiting.
            self.withdraw_offer_of(agent, out);
        }
        self.dispatch(now, out);
    }

    fn find(&self, call: &C) -> Option<&WaitingCall<C>> {
        self.waiting.iter().find(|c| c.call == *call)
    }

    fn start_timer(
        &mut self,
        call: &C,
        kind: TimerKind,
        now: Instant,
        secs: u64,
        out: &mut Vec<AcdAction<C>>,
    ) -> AcdTimerId {
        self.next_id += 1;
        let id = AcdTimerId(self.next_id);
        self.timers.insert(id, (call.clone(), kind));
        out.push(AcdAction::StartTimer {
            id,
            at: now + Duration::from_secs(secs),
        });
        id
    }

    fn cancel_timer(&mut self, id: AcdTimerId, out: &mut Vec<AcdAction<C>>) {
        if self.timers.remove(&id).is_some() {
            out.push(AcdAction::CancelTimer { id });
        }
    }

    /// Takes the call out of the queue with its timers; a ringing agent is freed (keeping its
    /// place in the idle order) and the ring stopped.
    fn remove_call(&mut self, call: &C, out: &mut Vec<AcdAction<C>>) {
        let Some(index) = self.waiting.iter().position(|c| c.call == *call) else {
            return;
        };
        let removed = self.waiting.swap_remove(index);
        for id in [removed.overflow_timer, removed.announce_timer]
            .into_iter()
            .flatten()
        {
            self.cancel_timer(id, out);
        }
        if let Some((agent, ring)) = removed.offer {
            self.cancel_timer(ring, out);
            if let Some(slot) = self.agents.get_mut(&agent)
                && slot.state == AgentState::Ringing
            {
                slot.state = AgentState::Available;
                out.push(AcdAction::CancelOffer {
                    call: removed.call.clone(),
                    agent,
                });
            }
        }
    }

    /// The rung agent did not take the call: they go offline and the next agent is tried.
    fn no_answer(&mut self, call: &C, now: Instant, out: &mut Vec<AcdAction<C>>) {
        let Some(waiting) = self.waiting.iter_mut().find(|c| c.call == *call) else {
            return;
        };
        let Some((agent, ring)) = waiting.offer.take() else {
            return;
        };
        // A transferred call not taken by its agent waits for its queue now.
        waiting.directed = None;
        self.cancel_timer(ring, out);
        if let Some(slot) = self.agents.get_mut(&agent) {
            slot.state = AgentState::Offline;
            out.push(AcdAction::AgentSetOffline { agent });
        }
        self.dispatch(now, out);
    }

    /// The agent's ring ended without an answer from our side (agent logged off).
    fn withdraw_offer_of(&mut self, agent: &str, out: &mut Vec<AcdAction<C>>) {
        let offered = self
            .waiting
            .iter_mut()
            .find(|c| c.offer.as_ref().is_some_and(|(a, _)| a == agent));
        if let Some(waiting) = offered
            && let Some((agent, ring)) = waiting.offer.take()
        {
            let call = waiting.call.clone();
            waiting.directed = None;
            self.cancel_timer(ring, out);
            out.push(AcdAction::CancelOffer { call, agent });
        }
    }

    fn overflow(&mut self, call: &C, now: Instant, out: &mut Vec<AcdAction<C>>) {
        let Some(waiting) = self.find(call) else {
            return;
        };
        let uri = if waiting.leak {
            Some(self.config.leak.on_call_uri.clone())
        } else {
            let queue = self.config.queues.get(&waiting.queue);
            queue
                .and_then(|q| q.overflow.as_ref())
                .map(|o| o.uri.clone())
        };
        let Some(uri) = uri.filter(|u| !u.is_empty()) else {
            return;
        };
        self.overflowed.push((call.clone(), waiting.standing));
        self.remove_call(call, out);
        out.push(AcdAction::Overflow {
            call: call.clone(),
            uri,
        });
        self.dispatch(now, out);
    }

    /// The place of a call being queued: the one it holds when it moves from another queue
    /// or comes back from a failed overflow, else a new one at the back.
    fn standing_of(&mut self, call: &C, now: Instant) -> Standing {
        if let Some(standing) = self.find(call).map(|c| c.standing) {
            return standing;
        }
        if let Some(index) = self.overflowed.iter().position(|(c, _)| c == call) {
            return self.overflowed.swap_remove(index).1;
        }
        self.next_id += 1;
        Standing {
            arrived: now,
            seq: self.next_id,
            announced: None,
        }
    }

    /// Agents who may take a call of `queue` (leaks: every agent when `leak.any_agent`).
    fn eligible_agents(&self, queue: &str, leak: bool) -> BTreeSet<&str> {
        let any = leak && self.config.leak.any_agent;
        self.agents
            .iter()
            .filter(|(_, a)| any || a.queues.iter().any(|q| q == queue))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// How many waiting calls will be served before `call` by the agents who could take it:
    /// calls ordered ahead of it in the same queue, or in a queue sharing an agent with it.
    fn calls_ahead(&self, call: &WaitingCall<C>) -> u32 {
        let mine = self.eligible_agents(&call.queue, call.leak);
        let key = call.order_key();
        let ahead = self.waiting.iter().filter(|other| {
            other.call != call.call
                && other.order_key() < key
                && (other.queue == call.queue
                    || !mine.is_disjoint(&self.eligible_agents(&other.queue, other.leak)))
        });
        u32::try_from(ahead.count()).unwrap_or(u32::MAX)
    }

    /// About how long until an agent takes `call`, in whole minutes (at least 1): the calls
    /// ahead and this one, at the average handle time, shared by the agents of its queue who
    /// are logged in.
    fn estimated_wait_minutes(&self, call: &WaitingCall<C>, ahead: u32) -> u32 {
        let staffed = self
            .eligible_agents(&call.queue, call.leak)
            .iter()
            .filter(|id| {
                self.agents
                    .get(**id)
                    .is_some_and(|a| a.state != AgentState::Offline)
            })
            .count()
            .max(1);
        let handle = self
            .handle_time
            .unwrap_or(Duration::from_secs(self.config.assumed_handle_secs));
        let secs = handle.as_secs_f64() * f64::from(ahead.saturating_add(1)) / staffed as f64;
        // A float of at most a few days' seconds: the cast cannot overflow.
        ((secs / 60.0).ceil() as u32).max(1)
    }

    /// Announces the position of `call` (unless an agent is being rung for it, or it would
    /// be worse than the last one) and sets the timer for the next announcement.
    fn announce(&mut self, call: &C, now: Instant, out: &mut Vec<AcdAction<C>>) {
        let every = self.config.announce_every_secs;
        // Turned off by a reload while the call waited.
        let Some(waiting) = self.find(call).filter(|_| every > 0) else {
            return;
        };
        if waiting.offer.is_none() {
            let ahead = self.calls_ahead(waiting);
            let last = waiting.standing.announced;
            if last.is_none_or(|last| ahead <= last.ahead) {
                let wait_minutes = self.config.announce_estimated_wait.then(|| {
                    let estimate = self.estimated_wait_minutes(waiting, ahead);
                    match last.and_then(|l| l.wait_minutes) {
                        Some(before) => estimate.min(before),
                        None => estimate,
                    }
                });
                out.push(AcdAction::Position {
                    call: call.clone(),
                    ahead,
                    wait_minutes,
                });
                if let Some(waiting) = self.waiting.iter_mut().find(|c| c.call == *call) {
                    waiting.standing.announced = Some(Announced {
                        ahead,
                        wait_minutes,
                    });
                }
            }
        }
        let id = self.start_timer(call, TimerKind::Announce, now, every, out);
        if let Some(waiting) = self.waiting.iter_mut().find(|c| c.call == *call) {
            waiting.announce_timer = Some(id);
        }
    }

    fn handle_time_sample(&mut self, sample: Duration) {
        self.handle_time = Some(match self.handle_time {
            Some(average) => {
                average.mul_f64(1.0 - HANDLE_TIME_WEIGHT) + sample.mul_f64(HANDLE_TIME_WEIGHT)
            }
            None => sample,
        });
    }

    fn is_free(&self, agent: &str) -> bool {
        self.agents
            .get(agent)
            .is_some_and(|a| a.state == AgentState::Available)
    }

    /// The free agent who has waited longest among those who may take `call` (a transferred
    /// call: its agent, if free).
    fn pick_agent(&self, call: &WaitingCall<C>) -> Option<String> {
        if let Some(agent) = &call.directed {
            return self.is_free(agent).then(|| agent.clone());
        }
        let free = || {
            self.agents
                .iter()
                .filter(|(_, a)| a.state == AgentState::Available)
        };
        let longest_idle = |agents: &mut dyn Iterator<Item = (&String, &Agent)>| {
            agents
                .min_by_key(|(id, a)| (a.idle_since, (*id).clone()))
                .map(|(id, _)| id.clone())
        };
        let skilled = longest_idle(&mut free().filter(|(_, a)| a.queues.contains(&call.queue)));
        if skilled.is_some() || !(call.leak && self.config.leak.any_agent) {
            return skilled;
        }
        longest_idle(&mut free())
    }

    /// Offers waiting calls, best first, to free agents until one side runs out. Calls
    /// transferred to an agent go before the line: that agent is theirs alone.
    fn dispatch(&mut self, now: Instant, out: &mut Vec<AcdAction<C>>) {
        self.waiting
            .sort_by_key(|c| (c.directed.is_none(), c.order_key()));
        for index in 0..self.waiting.len() {
            if self.waiting[index].offer.is_some() {
                continue;
            }
            // Directed only while its agent may be rung: else it waits in its queue.
            let waiting = &self.waiting[index];
            if waiting.directed.as_ref().is_some_and(|a| !self.is_free(a)) {
                self.waiting[index].directed = None;
            }
            let Some(agent) = self.pick_agent(&self.waiting[index]) else {
                continue;
            };
            let Some(slot) = self.agents.get_mut(&agent) else {
                continue;
            };
            slot.state = AgentState::Ringing;
            let call = self.waiting[index].call.clone();
            out.push(AcdAction::OfferToAgent {
                call: call.clone(),
                agent: agent.clone(),
                uri: slot.uri.clone(),
            });
            let ring_secs = self.config.ring_timeout_secs;
            let ring = self.start_timer(&call, TimerKind::Ring, now, ring_secs, out);
            self.waiting[index].offer = Some((agent, ring));
        }
    }
}
