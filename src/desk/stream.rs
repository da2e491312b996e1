//! Per-agent event history (gapless seqs, bounded) and per-subscriber bounded outboxes.
//!
//! Owns replay and overflow rules: resume replays exactly the events after a seq the history
//! still holds, anything else is `ResyncRequired` then a fresh `Snapshot`; a subscriber whose
//! outbox is full is told `ResyncRequired(TooSlow)` and closed. Memory is bounded by
//! `history_len` per agent plus `subscriber_queue` per subscriber.

use super::events::{AgentEvent, EventKind, ResyncReason};
use std::collections::VecDeque;

/// An agent's recent events.
#[derive(Debug)]
pub(super) struct History<P> {
    events: VecDeque<AgentEvent<P>>,
    /// Seq of the newest event (0: none yet).
    latest: u64,
    limit: usize,
}

/// What a resume request gets.
pub(super) enum Resume<P> {
    /// The events after the seq asked for, possibly none.
    Replay(Vec<AgentEvent<P>>),
    Resync(ResyncReason),
}

impl<P> History<P> {
    pub(super) fn new(limit: usize) -> History<P> {
        History {
            events: VecDeque::new(),
            latest: 0,
            limit: limit.max(1),
        }
    }

    pub(super) fn latest(&self) -> u64 {
        self.latest
    }

    /// Numbers and keeps `kind` as the next event; returns it.
    pub(super) fn push(&mut self, epoch: u64, at_ms: i64, kind: EventKind<P>) -> AgentEvent<P> {
        self.latest += 1;
        let event = AgentEvent {
            epoch,
            seq: self.latest,
            at_ms,
            kind,
        };
        if self.events.len() == self.limit {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        event
    }

    /// The events after `seq` of `epoch`, if the history still holds all of them.
    pub(super) fn resume(&self, our_epoch: u64, epoch: u64, seq: u64) -> Resume<P> {
        if epoch != our_epoch {
            return Resume::Resync(ResyncReason::EpochChanged);
        }
        if seq > self.latest {
            return Resume::Resync(ResyncReason::HistoryCompacted);
        }
        let oldest = self.events.front().map_or(self.latest + 1, |e| e.seq);
        if seq + 1 < oldest {
            return Resume::Resync(ResyncReason::HistoryCompacted);
        }
        Resume::Replay(
            self.events
                .iter()
                .filter(|e| e.seq > seq)
                .cloned()
                .collect(),
        )
    }

    pub(super) fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
        while self.events.len() > self.limit {
            self.events.pop_front();
        }
    }
}

/// A subscriber's queue of items not yet taken by its stream.
#[derive(Debug)]
pub(super) struct Outbox<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// What a stream takes from its outbox.
#[derive(Debug)]
pub struct Drained<T> {
    pub items: Vec<T>,
    /// Nothing more will come: end the stream after `items`.
    pub closed: bool,
}

impl<T> Outbox<T> {
    pub(super) fn new(initial: Vec<T>) -> Outbox<T> {
        Outbox {
            items: initial.into(),
            closed: false,
        }
    }

    /// Queues `item` unless `capacity` items already wait; then the queue is replaced by
    /// `overflow()` and closed. Returns false if the outbox was or is now closed.
    pub(super) fn push(&mut self, item: T, capacity: usize, overflow: impl FnOnce() -> T) -> bool {
        if self.closed {
            return false;
        }
        if self.items.len() >= capacity {
            self.items.clear();
            self.items.push_back(overflow());
            self.closed = true;
            return false;
        }
        self.items.push_back(item);
        true
    }

    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn drain(&mut self) -> Drained<T> {
        Drained {
            items: self.items.drain(..).collect(),
            closed: self.closed,
        }
    }
}
