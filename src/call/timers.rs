//! The dispatcher's timers, deadline-ordered: the next one is found without scanning, and
//! each call's timers form a set that is dropped whole when the call ends. IVR timers belong
//! to a call; ACD timers to the ACD. Per-call limits (duration, queue wait) join
//! [`CallTimer`]; RTP inactivity is the media session's, SIP session timers (RFC 4028) are
//! the SIP endpoint's own.
//!
//! Owns when things are due; must not decide what a timer means.

use crate::acd::AcdTimerId;
use crate::ivr::TimerId;
use crate::sip::CallHandle;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// A timer that belongs to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum CallTimer {
    Ivr(TimerId),
    /// `daemon.max_call_secs` after the answer.
    MaxDuration,
    /// `daemon.max_queue_wait_secs` after the call joined a queue.
    QueueWait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum TimerKey {
    Call(CallHandle, CallTimer),
    Acd(AcdTimerId),
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    /// (deadline, insertion number) → timer; the number keeps equal deadlines apart.
    due: BTreeMap<(Instant, u64), TimerKey>,
    slot: HashMap<TimerKey, (Instant, u64)>,
    per_call: HashMap<CallHandle, HashSet<CallTimer>>,
    next: u64,
}

impl Timers {
    /// Sets `key` to fire at `at` (a timer already set moves).
    pub(super) fn set(&mut self, key: TimerKey, at: Instant) {
        self.cancel(key);
        self.next += 1;
        self.due.insert((at, self.next), key);
        self.slot.insert(key, (at, self.next));
        if let TimerKey::Call(call, timer) = key {
            self.per_call.entry(call).or_default().insert(timer);
        }
    }

    pub(super) fn cancel(&mut self, key: TimerKey) {
        if let Some(slot) = self.slot.remove(&key) {
            self.due.remove(&slot);
        }
        if let TimerKey::Call(call, timer) = key
            && let Some(set) = self.per_call.get_mut(&call)
        {
            set.remove(&timer);
            if set.is_empty() {
                self.per_call.remove(&call);
            }
        }
    }

    /// Drops every timer of `call`.
    pub(super) fn cancel_call(&mut self, call: CallHandle) {
        for timer in self.per_call.remove(&call).unwrap_or_default() {
            if let Some(slot) = self.slot.remove(&TimerKey::Call(call, timer)) {
                self.due.remove(&slot);
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// The earliest timer due at `now`, removed.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let (&(at, _), &key) = self.due.iter().next()?;
        if at > now {
            return None;
        }
        self.cancel(key);
        Some(key)
    }

    pub(super) fn len(&self) -> usize {
        self.due.len()
    }

    pub(super) fn clear(&mut self) {
        self.due.clear();
        self.slot.clear();
        self.per_call.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_fire_in_deadline_order_and_a_call_drops_its_whole_set() {
        let now = Instant::now();
        let (a, b) = (CallHandle(1), CallHandle(2));
        let mut timers = Timers::default();
        timers.set(
            TimerKey::Call(a, CallTimer::Ivr(TimerId(1))),
            now + Duration::from_secs(3),
        );
        timers.set(
            TimerKey::Call(a, CallTimer::Ivr(TimerId(2))),
            now + Duration::from_secs(1),
        );
        timers.set(
            TimerKey::Call(b, CallTimer::Ivr(TimerId(1))),
            now + Duration::from_secs(2),
        );
        timers.set(TimerKey::Acd(AcdTimerId(7)), now + Duration::from_secs(2));
        // Setting again moves the timer.
        timers.set(TimerKey::Acd(AcdTimerId(7)), now + Duration::from_secs(4));
        assert_eq!(timers.len(), 4);
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(now), None);
        let later = now + Duration::from_secs(2);
        assert_eq!(
            timers.pop_due(later),
            Some(TimerKey::Call(a, CallTimer::Ivr(TimerId(2))))
        );
        timers.cancel_call(b);
        assert_eq!(timers.pop_due(later), None);
        timers.cancel_call(a);
        assert_eq!(timers.len(), 1);
        assert_eq!(
            timers.pop_due(now + Duration::from_secs(9)),
            Some(TimerKey::Acd(AcdTimerId(7)))
        );
        assert_eq!(timers.len(), 0);
        assert!(timers.per_call.is_empty() && timers.slot.is_empty());
    }
}
