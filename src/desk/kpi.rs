//! The service report's arithmetic that is not a wallboard formula: percentiles of a set of
//! durations, and occupancy from the agents' state timeline clipped to report periods.
//!
//! Pure: instants are Unix milliseconds handed in; no clock, no SQL.

/// One change in an agent's state timeline, oldest first per agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineChange {
    pub agent_id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The state entered is anything but logged out.
    pub logged_in: bool,
    /// The state entered is on a call or in wrap-up.
    pub busy: bool,
}

/// Time of all agents in one period, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentTime {
    /// Logged in (any state but logged out).
    pub logged_in_ms: u64,
    /// On a call or in wrap-up.
    pub busy_ms: u64,
}

impl AgentTime {
    /// Occupancy, percent: busy / logged in; absent when no one was logged in.
    pub fn occupancy(&self) -> Option<f64> {
        (self.logged_in_ms > 0).then(|| 100.0 * self.busy_ms as f64 / self.logged_in_ms as f64)
    }

    pub fn add(&mut self, other: AgentTime) {
        self.logged_in_ms += other.logged_in_ms;
        self.busy_ms += other.busy_ms;
    }
}

/// Each agent's time per period. `bounds` are the periods' edges (`n + 1` ascending instants
/// for `n` periods); `changes` are sorted by agent then time and may start before the first
/// edge (the state the agent was in then). A state lasts until the agent's next change, the
/// last one until `until_ms` (now, or the end of the range). Every span is clipped to the
/// periods it overlaps.
pub fn agent_time(changes: &[TimelineChange], bounds: &[i64], until_ms: i64) -> Vec<AgentTime> {
    let mut periods = vec![AgentTime::default(); bounds.len().saturating_sub(1)];
    for (i, change) in changes.iter().enumerate() {
        if !change.logged_in {
            continue;
        }
        let end = match changes.get(i + 1) {
            Some(next) if next.agent_id == change.agent_id => next.at_ms,
            _ => until_ms,
        };
        for (p, period) in periods.iter_mut().enumerate() {
            let overlap = clip(change.at_ms, end, bounds[p], bounds[p + 1]);
            period.logged_in_ms += overlap;
            if change.busy {
                period.busy_ms += overlap;
            }
        }
    }
    periods
}

/// Length of `[from, to)` within `[start, end)`, milliseconds.
fn clip(from: i64, to: i64, start: i64, end: i64) -> u64 {
    u64::try_from(to.min(end) - from.max(start)).unwrap_or(0)
}

/// The `p`-th percentile (0 < p <= 100) by nearest rank: the smallest value with at least p %
/// of the values at or below it. `None` for no values.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    // ceil(p/100 · n), at least 1.
    let rank = (u64::from(p) * n).div_ceil(100).max(1);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(agent: &str, at_ms: i64, state: &str) -> TimelineChange {
        TimelineChange {
            agent_id: agent.into(),
            at_ms,
            logged_in: state != "logged_out",
            busy: matches!(state, "on_call" | "wrap_up"),
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 90), Some(7));
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 100), Some(10));
        let four = [2_000, 4_000, 10_000, 30_000];
        assert_eq!(percentile(&four, 50), Some(4_000));
        assert_eq!(percentile(&four, 90), Some(30_000));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    }

    #[test]
    fn spans_are_clipped_to_the_periods_they_overlap() {
        // Periods [0, 100) and [100, 200); the agent was ready since -50 (before the range),
        // on a call 80..130, wrap-up 130..140, ready, logged out at 170.
        let changes = [
            change("a", -50, "ready"),
            change("a", 80, "on_call"),
            change("a", 130, "wrap_up"),
            change("a", 140, "ready"),
            change("a", 170, "logged_out"),
        ];
        let time = agent_time(&changes, &[0, 100, 200], 200);
        assert_eq!(
            time,
            vec![
                AgentTime {
                    logged_in_ms: 100,
                    busy_ms: 20
                },
                AgentTime {
                    logged_in_ms: 70,
                    busy_ms: 40
                }
            ]
        );
        assert_eq!(time[0].occupancy(), Some(20.0));
    }

    #[test]
    fn the_last_state_lasts_until_the_end_and_agents_do_not_run_into_each_other() {
        let changes = [
            change("a", 10, "on_call"),
            change("b", 50, "ready"),
            change("b", 60, "logged_out"),
        ];
        // a on call from 10 until 150 (now), b ready 50..60.
        let time = agent_time(&changes, &[0, 100, 200], 150);
        assert_eq!(time[0].logged_in_ms, 90 + 10);
        assert_eq!(time[0].busy_ms, 90);
        assert_eq!(time[1].logged_in_ms, 50);
        assert_eq!(time[1].busy_ms, 50);
        assert_eq!(AgentTime::default().occupancy(), None);
    }

    #[test]
    fn spans_wholly_outside_count_nothing() {
        let changes = [change("a", 300, "on_call"), change("a", 400, "ready")];
        let time = agent_time(&changes, &[0, 100], 500);
        assert_eq!(time, vec![AgentTime::default()]);
    }
}
