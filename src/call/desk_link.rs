//! The seam between the calls and the agents' desk: the dispatcher tells it what happens to
//! a call (queued, offered, answered, the agent's side ended, abandoned, gone) and it feeds
//! the desk ([`Desktops`]); an offer goes through the screen pop ([`Pops`]) first, so the
//! desktop has the pop before the agent's phone rings. The desk's orders (availability for
//! the ACD, call control from desktops) come back to the dispatcher on a channel.
//!
//! Owns the offers waiting for their pop; must not decide anything about agents (the desk
//! does) or calls (the flow does).

use super::desktops::Desktops;
use super::pops::{PopReady, PopRequest, Pops};
use crate::desk::{DeskInput, HungUpBy, WithdrawReason};
use crate::sip::CallHandle;
use crate::store::{CallJournal, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub(super) struct DeskLink {
    desktops: Desktops,
    pops: Pops,
    /// Offers whose pop is being built, by call: the agent's phone rings once it is ready.
    pending: HashMap<CallHandle, String>,
}

/// An offer to ring now that its pop is with the desk.
pub(super) struct RingNow {
    pub handle: CallHandle,
    pub agent: String,
    pub uri: String,
}

impl DeskLink {
    pub(super) fn new(
        desktops: Desktops,
        store: Store,
        journal: CallJournal,
        pops: mpsc::UnboundedSender<PopReady>,
    ) -> DeskLink {
        DeskLink {
            pops: Pops::new(store, journal, desktops.clone(), pops),
            desktops,
            pending: HashMap::new(),
        }
    }

    pub(super) fn desktops(&self) -> &Desktops {
        &self.desktops
    }

    /// The IVR queued the call (or a desktop transferred it to a queue).
    pub(super) fn queued(&self, call_id: &str, queue: &str, priority: u8, leak: bool) {
        if leak {
            crate::ops::metrics::global().leak_queued(call_id);
        }
        self.desktops.feed(DeskInput::Queued {
            call: call_id.to_owned(),
            queue: queue.to_owned(),
            priority,
            leak,
        });
    }

    /// The ACD offers the call to `agent`: the pop is built first.
    pub(super) fn offer(&mut self, request: PopRequest) {
        self.pending.insert(request.handle, request.agent.clone());
        self.pops.spawn(request);
    }

    /// The pop of an offer is ready: if the offer still stands, the desk gets it and the
    /// agent's phone is to ring now (the ring deadline counts from `offered_at` + `ring`).
    pub(super) fn pop_ready(&mut self, ready: PopReady, ring: Duration) -> Option<RingNow> {
        if self.pending.get(&ready.handle) != Some(&ready.agent) {
            return None;
        }
        self.pending.remove(&ready.handle);
        crate::ops::metrics::global().offered(&ready.pop.call_id);
        self.desktops.feed(DeskInput::Offered {
            call: ready.pop.call_id.clone(),
            agent: ready.agent.clone(),
            pop: Arc::new(ready.pop),
            ring_deadline: Instant::now() + ring,
        });
        Some(RingNow {
            handle: ready.handle,
            agent: ready.agent,
            uri: ready.uri,
        })
    }

    /// The ACD withdrew the offer (the call moved or left, the agent went away). Returns
    /// whether the agent's phone was already ringing (the leg is to be hung up).
    pub(super) fn offer_cancelled(
        &mut self,
        handle: CallHandle,
        call_id: &str,
        agent: &str,
    ) -> bool {
        if self.pending.get(&handle).is_some_and(|a| a == agent) {
            self.pending.remove(&handle);
            return false;
        }
        self.desktops.feed(DeskInput::OfferEnded {
            call: call_id.to_owned(),
            agent: agent.to_owned(),
            reason: WithdrawReason::Transferred,
        });
        true
    }

    /// The agent's phone rang out or refused the offer.
    pub(super) fn rang_out(&mut self, agent: &str) {
        self.pending.retain(|_, a| a != agent);
        self.desktops.feed(DeskInput::RangOut {
            agent: agent.to_owned(),
        });
    }

    pub(super) fn answered(&self, call_id: &str, agent: &str) {
        self.desktops.feed(DeskInput::Answered {
            call: call_id.to_owned(),
            agent: agent.to_owned(),
        });
    }

    /// The agent's side of the call ended.
    pub(super) fn agent_left(&self, call_id: &str, who: HungUpBy) {
        self.desktops.feed(DeskInput::Ended {
            call: call_id.to_owned(),
            who,
        });
    }

    /// The caller answered the post-call survey (1 satisfied … 3 unsatisfied).
    pub(super) fn survey_result(&self, call_id: &str, rating: u8) {
        self.desktops.feed(DeskInput::SurveyResult {
            call: call_id.to_owned(),
            rating,
        });
    }

    /// The call left its queue for a number (overflow) rather than an agent.
    pub(super) fn left_queue(&self, call_id: &str) {
        self.desktops.feed(DeskInput::LeftQueue {
            call: call_id.to_owned(),
        });
    }

    /// The caller's call is over: an agent talking to them sees the caller hang up; a caller
    /// still waiting abandoned.
    pub(super) fn caller_gone(&mut self, handle: CallHandle, call_id: &str) {
        self.pending.remove(&handle);
        let call = call_id.to_owned();
        self.desktops.feed(DeskInput::Ended {
            call: call.clone(),
            who: HungUpBy::Caller,
        });
        self.desktops.feed(DeskInput::CallGone { call });
    }
}
