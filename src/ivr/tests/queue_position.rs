//! Position announcements while waiting: played between two rounds of the wait prompt,
//! composed from digit prompts; leak callers hear the safety advice instead.

use super::*;

fn position(ahead: u32, wait_minutes: Option<u32>) -> impl FnOnce(Instant) -> Event {
    move |now| Event::Queue {
        result: QueueResult::Position {
            ahead,
            wait_minutes,
        },
        now,
    }
}

#[test]
fn a_position_is_announced_after_the_current_prompt_then_the_wait_prompt_resumes() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let queued = h.key('0');
    // Announced when the prompt playing now ends, not over it.
    assert!(h.event(position(12, None)).is_empty());
    let announced = h.finish(&queued);
    assert_eq!(
        prompts_of(&announced),
        names(&["queue_ahead", "number_ten", "digit_2", "queue_ahead_unit"])
    );
    let resumed = h.finish(&announced);
    assert_eq!(prompts_of(&resumed), names(&["queue_wait"]));
}

#[test]
fn the_estimated_wait_and_the_next_in_line() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let queued = h.key('0');
    h.event(position(0, Some(2)));
    assert_eq!(
        prompts_of(&h.finish(&queued)),
        names(&[
            "queue_next",
            "queue_estimated_wait",
            "number_two_counted",
            "unit_minutes"
        ])
    );
}

#[test]
fn a_newer_position_replaces_one_not_yet_played() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let queued = h.key('0');
    h.event(position(3, None));
    h.event(position(2, None));
    assert_eq!(
        prompts_of(&h.finish(&queued)),
        names(&["queue_ahead", "number_two_counted", "queue_ahead_unit"])
    );
}

#[test]
fn leak_callers_hear_the_safety_advice_not_a_position() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let leak = h.key('1');
    h.event(position(1, Some(1)));
    assert_eq!(prompts_of(&h.finish(&leak)), names(&["leak_safety_advice"]));
}
