//! A desktop's transfer (to a queue or to another agent) on the simulated clock: the connected
//! caller is `Requeued` and waits again, hearing the wait prompt in a loop, position
//! announcements (a leak caller the safety advice), until the next agent answers.

use super::survey::{agent_leaves, connected, survey_spoken};
use super::*;

fn requeued(queue: &str, priority: u8, leak: bool) -> impl FnOnce(Instant) -> Event {
    let queue = queue.to_owned();
    move |now| Event::Requeued {
        queue,
        priority,
        leak,
        now,
    }
}

fn position(ahead: u32) -> impl FnOnce(Instant) -> Event {
    move |now| Event::Queue {
        result: QueueResult::Position {
            ahead,
            wait_minutes: None,
        },
        now,
    }
}

fn answered(agent: &str) -> impl FnOnce(Instant) -> Event {
    let agent = agent.to_owned();
    move |now| Event::AgentAnswered { agent, now }
}

#[test]
fn a_transferred_caller_hears_the_wait_prompt_in_a_loop_and_is_not_queued_twice() {
    let mut h = connected(config());
    let waiting = h.event(requeued("general", 0, false));
    assert_eq!(enqueued(&waiting), None, "the driver already told the ACD");
    assert!(
        matches!(
            &waiting[..],
            [Action::Play {
                barge_in: false,
                ..
            }]
        ),
        "{waiting:?}"
    );
    assert_eq!(prompts_of(&waiting), names(&["queue_wait"]));
    let mut round = waiting;
    for _ in 0..3 {
        round = h.finish(&round);
        assert_eq!(prompts_of(&round), names(&["queue_wait"]));
    }
    // Requeued once: a second one (or one outside a talk) changes nothing.
    assert!(h.event(requeued("general", 0, false)).is_empty());
    let mut h = Harness::new(config());
    h.reach_main_menu();
    assert!(h.event(requeued("general", 0, false)).is_empty());
}

#[test]
fn a_transferred_caller_is_told_their_position_between_two_rounds() {
    let mut h = connected(config());
    let waiting = h.event(requeued("emergency", 0, false));
    assert!(h.event(position(2)).is_empty(), "not over the prompt");
    let announced = h.finish(&waiting);
    assert_eq!(
        prompts_of(&announced),
        names(&["queue_ahead", "number_two_counted", "queue_ahead_unit"])
    );
    assert_eq!(prompts_of(&h.finish(&announced)), names(&["queue_wait"]));
}

#[test]
fn a_transferred_leak_caller_hears_the_safety_advice_not_a_position() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('1');
    h.event(answered("e1"));
    let waiting = h.event(requeued("emergency", LEAK_PRIORITY, true));
    assert_eq!(enqueued(&waiting), None);
    assert_eq!(prompts_of(&waiting), names(&["leak_safety_advice"]));
    h.event(position(1));
    let again = h.finish(&waiting);
    assert_eq!(prompts_of(&again), names(&["leak_safety_advice"]));
    // The engine knows it is a leak call even if the transfer did not say so.
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('1');
    h.event(answered("e1"));
    let waiting = h.event(requeued("general", 0, false));
    assert_eq!(prompts_of(&waiting), names(&["leak_safety_advice"]));
}

#[test]
fn the_next_agent_answering_stops_the_prompt_and_holds_the_call() {
    let mut h = connected(config());
    assert_eq!(h.call.agent(), Some("1001"));
    let waiting = h.event(requeued("general", 0, false));
    h.finish(&waiting);
    assert_eq!(
        h.event(answered("1002")),
        [
            Action::StopPlayback,
            Action::Bridge {
                agent: "1002".into()
            }
        ]
    );
    assert_eq!(h.call.agent(), Some("1002"));
    assert!(h.event(answered("1002")).is_empty(), "bridged once");
    // 1002 hangs up first: the caller is surveyed.
    assert_eq!(prompts_of(&agent_leaves(&mut h)), survey_spoken());
}

#[test]
fn a_transferred_caller_who_overflows_and_fails_goes_back_with_the_transfers_queue() {
    // The caller came in through "0" (consultation); the desktop sent them to `emergency`
    // at priority 5. The overflow target refuses: the queue takes them back as it had them.
    let mut h = connected(config());
    h.event(requeued("emergency", 5, false));
    let overflow = h.event(|now| Event::Queue {
        result: QueueResult::Overflow {
            uri: "sip:oncall@127.0.0.1".into(),
        },
        now,
    });
    assert_eq!(
        overflow,
        [Action::Transfer {
            uri: "sip:oncall@127.0.0.1".into()
        }]
    );
    let failed = h.event(|now| Event::TransferFailed { now });
    assert_eq!(
        enqueued(&failed),
        Some(("emergency".into(), 5, false, Category::Consultation))
    );
    // The caller hanging up while waiting leaves the queue.
    let gone = h.event(|now| Event::CallerHungUp { now });
    assert!(has(&gone, &Action::Dequeue), "{gone:?}");
}
