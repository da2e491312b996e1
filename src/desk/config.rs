//! The `[desk]` configuration: reason codes, wrap-up per queue, ring-no-answer, the desktop
//! grace period, the event history and subscriber bounds, and the wallboard thresholds.
//!
//! Owns the shape of agent-desk settings; must not read files. Problems are returned as
//! (key, message) pairs for the configuration layer to place in the file.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The system reason code set when an agent let offers ring out.
pub const RING_NO_ANSWER: &str = "ring_no_answer";
/// The system reason code set when no desktop watched the agent for `desktop_grace_secs`.
pub const DESKTOP_DISCONNECTED: &str = "desktop_disconnected";
/// Reason codes only the daemon sets.
pub const SYSTEM_REASON_CODES: [&str; 2] = [RING_NO_ANSWER, DESKTOP_DISCONNECTED];

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// Not-ready reason codes an agent may choose (lowercase letters, digits and _).
    pub reason_codes: Vec<String>,
    /// Disposition codes `CompleteWrapUp` accepts; empty: any non-empty code.
    pub disposition_codes: Vec<String>,
    /// Wrap-up after a call, unless the queue has its own in `queue_wrap_up_secs` (0: none).
    pub wrap_up_secs: u64,
    /// Queue name → wrap-up seconds for calls of that queue.
    pub queue_wrap_up_secs: BTreeMap<String, u64>,
    /// `ExtendWrapUp` never takes a wrap-up past this long after it started.
    pub wrap_up_max_secs: u64,
    /// Missed offers in a row after which an agent goes NOT_READY(ring_no_answer).
    pub ring_no_answer_after: u32,
    /// An agent no desktop watched this long goes NOT_READY(desktop_disconnected); 0: off.
    pub desktop_grace_secs: u64,
    /// A Heartbeat with the latest seq goes to every desktop this often.
    pub heartbeat_secs: u64,
    /// Events kept per agent for resuming desktops.
    pub history_len: usize,
    /// Events queued per subscriber; a subscriber that falls this far behind is closed.
    pub subscriber_queue: usize,
    /// Answered within this many seconds of queueing counts towards the service level.
    pub service_level_secs: u64,
    /// Callers hanging up sooner than this are also counted as short abandons.
    pub short_abandon_secs: u64,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            reason_codes: ["break", "meal", "training", "meeting"]
                .map(String::from)
                .to_vec(),
            disposition_codes: Vec::new(),
            wrap_up_secs: 30,
            queue_wrap_up_secs: BTreeMap::new(),
            wrap_up_max_secs: 300,
            ring_no_answer_after: 1,
            desktop_grace_secs: 0,
            heartbeat_secs: 15,
            history_len: 512,
            subscriber_queue: 256,
            service_level_secs: 15,
            short_abandon_secs: 5,
        }
    }
}

fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl DeskConfig {
    /// Wrap-up seconds for a call of `queue`.
    pub fn wrap_up_for(&self, queue: &str) -> u64 {
        self.queue_wrap_up_secs
            .get(queue)
            .copied()
            .unwrap_or(self.wrap_up_secs)
    }

    /// Whether an agent may choose `code` (system codes are the daemon's).
    pub fn is_reason_code(&self, code: &str) -> bool {
        self.reason_codes.iter().any(|c| c == code)
    }

    /// Every problem as (key, what is wrong; what to do). `queues` are the ACD's queue names.
    pub fn problems<'a>(&self, queues: impl Fn(&str) -> bool + 'a) -> Vec<(String, String)> {
        let mut p = Vec::new();
        for (i, code) in self.reason_codes.iter().enumerate() {
            if !is_code(code) {
                p.push((
                    format!("desk.reason_codes.{i}"),
                    format!("{code:?}: use lowercase letters, digits and _"),
                ));
            } else if SYSTEM_REASON_CODES.contains(&code.as_str()) {
                p.push((
                    format!("desk.reason_codes.{i}"),
                    format!("{code:?} is a built-in system code; remove it from the list"),
                ));
            }
        }
        for (i, code) in self.disposition_codes.iter().enumerate() {
            if !is_code(code) {
                p.push((
                    format!("desk.disposition_codes.{i}"),
                    format!("{code:?}: use lowercase letters, digits and _"),
                ));
            }
        }
        for (queue, secs) in &self.queue_wrap_up_secs {
            if !queues(queue) {
                p.push((
                    format!("desk.queue_wrap_up_secs.{queue}"),
                    format!("queue {queue:?} is not an [acd.queues] entry"),
                ));
            }
            if *secs > self.wrap_up_max_secs {
                p.push((
                    format!("desk.queue_wrap_up_secs.{queue}"),
                    "longer than desk.wrap_up_max_secs; raise the maximum or shorten it".into(),
                ));
            }
        }
        if self.wrap_up_secs > self.wrap_up_max_secs {
            p.push((
                "desk.wrap_up_secs".into(),
                "longer than desk.wrap_up_max_secs; raise the maximum or shorten it".into(),
            ));
        }
        let at_least_one = [
            (
                "desk.ring_no_answer_after",
                self.ring_no_answer_after as u64,
            ),
            ("desk.heartbeat_secs", self.heartbeat_secs),
            ("desk.history_len", self.history_len as u64),
            ("desk.subscriber_queue", self.subscriber_queue as u64),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                p.push((key.into(), "must be at least 1".into()));
            }
        }
        p
    }
}
