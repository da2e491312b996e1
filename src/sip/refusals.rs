//! Rate-limited logging of refused requests and connections: a flood from outside the
//! allow-list must not become a flood of log lines. Refusals are counted per source and
//! reason, and each window ([`SUMMARY_WINDOW`]) ends in one line per pair:
//! "refused 4812 requests from 127.0.0.2 in the last 10 s: not in sip.allowed_sources".
//!
//! Sans-IO: time comes in as `Instant`; the caller logs what [`RefusalLog::poll`] returns.
//! Must not decide what is refused (access control does).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long refusals are counted before they are summarised.
pub const SUMMARY_WINDOW: Duration = Duration::from_secs(10);
/// Most (source, reason) pairs counted in one window; beyond it refusals are counted under
/// "other sources", so a spoofed-source flood cannot grow the table without bound.
const MAX_TRACKED: usize = 1000;

/// What was refused (the noun of the summary line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refused {
    Requests,
    Connections,
}

/// One summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub what: Refused,
    /// `None`: the sources beyond the tracked ones, together.
    pub source: Option<IpAddr>,
    pub count: u64,
    pub window: Duration,
    pub reason: &'static str,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.what, self.count) {
            (Refused::Requests, 1) => "request",
            (Refused::Requests, _) => "requests",
            (Refused::Connections, 1) => "TCP connection",
            (Refused::Connections, _) => "TCP connections",
        };
        write!(f, "refused {} {what} from ", self.count)?;
        match self.source {
            Some(source) => write!(f, "{source}")?,
            None => f.write_str("other sources")?,
        }
        write!(
            f,
            " in the last {} s: {}",
            self.window.as_secs().max(1),
            self.reason
        )
    }
}

type Key = (Refused, Option<IpAddr>, &'static str);

/// Counts refusals and hands out their summaries once per window.
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// Start of the current window (`None` while nothing is counted).
    since: Option<Instant>,
    counts: HashMap<Key, u64>,
}

impl RefusalLog {
    /// Counts one refusal of `what` from `source` because of `reason`.
    pub fn note(&mut self, what: Refused, source: IpAddr, reason: &'static str, now: Instant) {
        self.since.get_or_insert(now);
        let key = (what, Some(source), reason);
        let key = if self.counts.contains_key(&key) || self.counts.len() < MAX_TRACKED {
            key
        } else {
            (what, None, reason)
        };
        *self.counts.entry(key).or_default() += 1;
    }

    /// When the current window ends (`None`: nothing counted).
    pub fn next_summary(&self) -> Option<Instant> {
        self.since.map(|since| since + SUMMARY_WINDOW)
    }

    /// The summaries of a window that has ended by `now` (largest counts first), and a new
    /// window begins.
    pub fn poll(&mut self, now: Instant) -> Vec<Summary> {
        let Some(since) = self.since.filter(|since| now >= *since + SUMMARY_WINDOW) else {
            return Vec::new();
        };
        let window = now.saturating_duration_since(since);
        self.since = None;
        let mut summaries: Vec<Summary> = self
            .counts
            .drain()
            .map(|((what, source, reason), count)| Summary {
                what,
                source,
                count,
                window,
                reason,
            })
            .collect();
        summaries.sort_by(|a, b| b.count.cmp(&a.count).then(a.source.cmp(&b.source)));
        summaries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_becomes_one_line_per_source_and_reason_per_window() {
        let start = Instant::now();
        let mut log = RefusalLog::default();
        assert_eq!(log.next_summary(), None);
        let outsider: IpAddr = "127.0.0.2".parse().unwrap();
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        let acl = "not in sip.allowed_sources";
        for i in 0..4812 {
            log.note(
                Refused::Requests,
                outsider,
                acl,
                start + Duration::from_millis(i),
            );
        }
        log.note(Refused::Connections, other, acl, start);
        assert_eq!(log.next_summary(), Some(start + SUMMARY_WINDOW));
        assert!(log.poll(start + Duration::from_secs(9)).is_empty());
        let lines: Vec<String> = log
            .poll(start + SUMMARY_WINDOW)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "refused 4812 requests from 127.0.0.2 in the last 10 s: not in sip.allowed_sources",
                "refused 1 TCP connection from 127.0.0.3 in the last 10 s: not in sip.allowed_sources",
            ]
        );
        assert_eq!(log.next_summary(), None);
        assert!(log.poll(start + 3 * SUMMARY_WINDOW).is_empty());
    }

    #[test]
    fn spoofed_sources_beyond_the_table_are_counted_together() {
        let start = Instant::now();
        let mut log = RefusalLog::default();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + i));
            log.note(Refused::Requests, source, "rate", start);
        }
        let summaries = log.poll(start + SUMMARY_WINDOW);
        assert_eq!(summaries.len(), MAX_TRACKED + 1);
        assert_eq!(summaries[0].source, None);
        assert_eq!(summaries[0].count, 500);
    }
}
