//! What a caller waiting in a queue hears about their place: "您前面还有 N 位" (or "您是下一位"),
//! optionally "预计等待 N 分钟", with every number composed from digit prompts (see `numbers`).
//! The ACD decides the numbers and when; this only says them.
//!
//! Owns the words of a position announcement; must not decide positions nor play anything.

use super::numbers::{count_prompts, spoken_count};

/// "您前面还有", followed by the count and [`AHEAD_UNIT`].
pub const AHEAD: &str = "queue_ahead";
/// "位" (the measure word for callers).
pub const AHEAD_UNIT: &str = "queue_ahead_unit";
/// "您是下一位": nobody is ahead.
pub const NEXT: &str = "queue_next";
/// "预计等待", followed by the minutes and [`MINUTES`].
pub const ESTIMATED_WAIT: &str = "queue_estimated_wait";
/// "分钟".
pub const MINUTES: &str = "unit_minutes";

/// The announcement for `ahead` callers ahead and, when known, `wait_minutes`.
pub fn announcement(ahead: u32, wait_minutes: Option<u32>) -> Vec<String> {
    let mut prompts = Vec::new();
    if ahead == 0 {
        prompts.push(NEXT.to_owned());
    } else {
        prompts.push(AHEAD.to_owned());
        prompts.extend(spoken_count(ahead));
        prompts.push(AHEAD_UNIT.to_owned());
    }
    if let Some(minutes) = wait_minutes {
        prompts.push(ESTIMATED_WAIT.to_owned());
        prompts.extend(spoken_count(minutes));
        prompts.push(MINUTES.to_owned());
    }
    prompts
}

/// Every prompt an announcement may use, for validation.
pub fn announcement_prompts() -> Vec<String> {
    let mut prompts: Vec<String> = [AHEAD, AHEAD_UNIT, NEXT, ESTIMATED_WAIT, MINUTES]
        .map(str::to_owned)
        .to_vec();
    prompts.extend(count_prompts());
    prompts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_compose_the_count_between_the_phrases() {
        assert_eq!(
            announcement(3, None),
            ["queue_ahead", "digit_3", "queue_ahead_unit"]
        );
        assert_eq!(
            announcement(12, Some(2)),
            [
                "queue_ahead",
                "number_ten",
                "digit_2",
                "queue_ahead_unit",
                "queue_estimated_wait",
                "number_two_counted",
                "unit_minutes"
            ]
        );
        assert_eq!(announcement(0, None), ["queue_next"]);
        for prompt in announcement(1234, Some(56)) {
            assert!(announcement_prompts().contains(&prompt), "{prompt}");
        }
    }
}
