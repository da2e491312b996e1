//! The supervisors' wallboard: per lane (each queue, and the leak lane on its own) the waiting
//! calls and today's counters; the formulas of SL, SL2, ASA and AHT.
//!
//! Owns the counting; the desk decides when a lane changed and when a message may go out
//! (at most one per second per lane).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The lane leak calls are counted in, whatever queue they wait in.
pub const LEAK_LANE: &str = "leak";

/// Today's counters of one lane (reset at local midnight in the daemon's time zone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls that entered the lane's queue.
    pub offered: u64,
    pub answered: u64,
    /// Answered after waiting at most `service_level_secs`.
    pub answered_within: u64,
    /// Callers who hung up while waiting (short abandons included).
    pub abandoned: u64,
    /// Abandoned after waiting at most `service_level_secs` (Asterisk's callsabandonedinsl).
    pub abandoned_within: u64,
    /// Abandoned after waiting less than `short_abandon_secs`.
    pub short_abandoned: u64,
    /// Sum of the waits of answered calls, milliseconds.
    pub answered_wait_ms: u64,
    /// Calls whose handling (talk and wrap-up) ended.
    pub handled: u64,
    /// Sum of talk plus wrap-up of handled calls, milliseconds.
    pub handle_ms: u64,
    /// Survey ratings 1, 2, 3.
    pub ratings: [u64; 3],
}

impl Counters {
    /// SL, percent: answered within the threshold / answered.
    pub fn service_level(&self) -> Option<f64> {
        percent(self.answered_within, self.answered)
    }

    /// SL2, percent: (answered within + abandoned within the threshold) / (answered +
    /// abandoned).
    pub fn service_level2(&self) -> Option<f64> {
        percent(
            self.answered_within + self.abandoned_within,
            self.answered + self.abandoned,
        )
    }

    /// ASA, seconds: total wait of answered calls / answered.
    pub fn average_speed_of_answer(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.answered_wait_ms as f64 / 1000.0 / self.answered as f64)
    }

    /// Connection rate, percent: answered / offered (GB/T 33358 asks >= 95 % over 24 h).
    pub fn connection_rate(&self) -> Option<f64> {
        percent(self.answered, self.offered)
    }

    /// AHT, seconds: total talk and wrap-up of handled calls / handled.
    pub fn average_handle_time(&self) -> Option<f64> {
        (self.handled > 0).then(|| self.handle_ms as f64 / 1000.0 / self.handled as f64)
    }
}

/// `part` / `whole` in percent; absent when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

/// One lane as a wallboard message shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneBoard {
    pub lane: String,
    pub leak: bool,
    pub waiting: u32,
    /// Longest current wait, whole seconds.
    pub longest_wait_secs: u64,
    /// Unix milliseconds since which the longest waiting caller waits (to tick on screen).
    pub oldest_waiting_since_ms: Option<i64>,
    pub counters: Counters,
}

/// Agents per state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentsByState {
    pub logged_out: u32,
    pub ready: u32,
    pub not_ready: u32,
    pub ringing: u32,
    pub on_call: u32,
    pub wrap_up: u32,
}

/// A wallboard message: the lanes that changed (all of them in a snapshot) and the agents.
#[derive(Debug, Clone, PartialEq)]
pub struct WallboardUpdate {
    pub at_ms: i64,
    pub snapshot: bool,
    pub lanes: Vec<LaneBoard>,
    pub agents: AgentsByState,
}

#[derive(Debug, Default)]
pub(super) struct Lane {
    /// Calls waiting, with when they started waiting.
    pub waiting: BTreeMap<String, Instant>,
    pub counters: Counters,
    pub dirty: bool,
    pub last_sent: Option<Instant>,
}

impl Lane {
    pub(super) fn board(
        &self,
        name: &str,
        now: Instant,
        wall: impl Fn(Instant) -> i64,
    ) -> LaneBoard {
        let oldest = self.waiting.values().min().copied();
        LaneBoard {
            lane: name.to_owned(),
            leak: name == LEAK_LANE,
            waiting: self.waiting.len() as u32,
            longest_wait_secs: oldest
                .map_or(0, |since| now.saturating_duration_since(since).as_secs()),
            oldest_waiting_since_ms: oldest.map(wall),
            counters: self.counters.clone(),
        }
    }

    /// Whether a message for this lane may go out at `now`.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.dirty
            && self
                .last_sent
                .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1))
    }

    /// When a pending change may go out.
    pub(super) fn due_at(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        self.last_sent.map(|at| at + Duration::from_secs(1))
    }
}
