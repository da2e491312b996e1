//! The call distributor: waiting calls ordered leaks first, then by priority, then by arrival;
//! free agents chosen longest-idle first; ring-no-answer re-offers; overflow after a wait.
//! Sans-IO: events in with `now`, actions out, timers as actions.
//!
//! Owns who gets which call next; must not do SIP, media or ticket work.

use super::config::AcdConfig;
use std::collections::{BTreeMap, HashMap};
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
    /// the queue; the IVR re-queues it if that fails.
    Overflow {
        call: C,
        uri: String,
    },
}

#[derive(Debug, Clone)]
struct Agent {
    uri: String,
    queues: Vec<String>,
    state: AgentState,
    /// When the agent last became available; longest idle is rung first.
    idle_since: Instant,
}

#[derive(Debug, Clone)]
struct WaitingCall<C> {
    call: C,
    queue: String,
    priority: u8,
    leak: bool,
    arrived: Instant,
    /// Tie-breaker for calls arriving at the same instant.
    seq: u64,
    offer: Option<(String, AcdTimerId)>,
    overflow_timer: Option<AcdTimerId>,
}

impl<C> WaitingCall<C> {
    /// Smaller goes first: leaks, then higher priority, then earlier arrival.
    fn order_key(&self) -> (bool, std::cmp::Reverse<u8>, Instant, u64) {
        (
            !self.leak,
            std::cmp::Reverse(self.priority),
            self.arrived,
            self.seq,
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum TimerKind {
    Ring,
    Overflow,
}

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
    timers: HashMap<AcdTimerId, (C, TimerKind)>,
    next_id: u64,
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
                };
                (id.clone(), agent)
            })
            .collect();
        Acd {
            config,
            agents,
            waiting: Vec::new(),
            timers: HashMap::new(),
            next_id: 0,
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
            } => self.queue_call(call, queue, priority, leak, now, &mut out),
            AcdEvent::AgentStateChanged { agent, state, now } => {
                self.agent_state_changed(&agent, state, now, &mut out)
            }
            AcdEvent::OfferAnswered { call, agent, .. } => {
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
                }
            }
            AcdEvent::CallerAbandoned { call, now } => {
                self.remove_call(&call, &mut out);
                self.dispatch(now, &mut out);
            }
        }
        out
    }

    /// The IVR asked to queue the call (a call already waiting moves).
    fn queue_call(
        &mut self,
        call: C,
        queue: String,
        priority: u8,
        leak: bool,
        now: Instant,
        out: &mut Vec<AcdAction<C>>,
    ) {
        self.remove_call(&call, out);
        self.next_id += 1;
        let waiting = WaitingCall {
            call: call.clone(),
            queue,
            priority,
            leak,
            arrived: now,
            seq: self.next_id,
            offer: None,
            overflow_timer: None,
        };
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
            out.push(AcdAction::Waiting { call });
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
        if let Some(id) = removed.overflow_timer {
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
        self.remove_call(call, out);
        out.push(AcdAction::Overflow {
            call: call.clone(),
            uri,
        });
        self.dispatch(now, out);
    }

    /// The free agent who has waited longest among those who may take `call`.
    fn pick_agent(&self, call: &WaitingCall<C>) -> Option<String> {
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

    /// Offers waiting calls, best first, to free agents until one side runs out.
    fn dispatch(&mut self, now: Instant, out: &mut Vec<AcdAction<C>>) {
        self.waiting.sort_by_key(|c| c.order_key());
        for index in 0..self.waiting.len() {
            if self.waiting[index].offer.is_some() {
                continue;
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
