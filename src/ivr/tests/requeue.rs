//! A desktop's transfer (to a queue, another agent or a URI) on the simulated clock: the
//! connected caller is `Requeued` and waits again as any caller who queues (an `Enqueue`, so
//! the ACD, the desk and the queue-wait limit see it), hearing the wait prompt in a loop,
//! position announcements (a leak caller the safety advice), until the next agent answers; a
//! URI rings meanwhile as the IVR's own overflow target does.

use super::survey::{agent_leaves, connected, survey_spoken};
use super::*;

fn requeued(queue: &str, priority: u8, leak: bool) -> impl FnOnce(Instant) -> Event {
    let queue = queue.to_owned();
    move |now| Event::Requeued {
        queue,
        priority,
        leak,
        to: HandOver::Queue,
        now,
    }
}

fn handed(queue: &str, to: HandOver) -> impl FnOnce(Instant) -> Event {
    let queue = queue.to_owned();
    move |now| Event::Requeued {
        queue,
        priority: 5,
        leak: false,
        to,
        now,
    }
}

fn enqueued_for(actions: &[Action]) -> Option<Option<String>> {
    actions.iter().find_map(|a| match a {
        Action::Enqueue { agent, .. } => Some(agent.clone()),
        _ => None,
    })
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
fn a_transferred_caller_is_queued_again_like_any_caller_and_hears_the_wait_prompt_in_a_loop() {
    let mut h = connected(config());
    let waiting = h.event(requeued("general", 0, false));
    // The same `Enqueue` an IVR queue node asks: the driver arms the queue-wait limit and
    // the desk counts the wait on the target's lane from it.
    assert_eq!(
        enqueued(&waiting),
        Some(("general".into(), 0, false, Category::Consultation))
    );
    assert_eq!(enqueued_for(&waiting), Some(None), "not directed");
    assert!(
        matches!(
            &waiting[..],
            [
                Action::Enqueue { .. },
                Action::Play {
                    barge_in: false,
                    ..
                }
            ]
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
    assert_eq!(
        enqueued(&waiting),
        Some(("emergency".into(), LEAK_PRIORITY, true, Category::Leak))
    );
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

#[test]
fn a_transfer_to_an_agent_is_queued_directed_to_them_with_its_priority() {
    let mut h = connected(config());
    let waiting = h.event(handed("general", HandOver::Agent("1002".into())));
    assert_eq!(enqueued_for(&waiting), Some(Some("1002".into())));
    assert_eq!(
        enqueued(&waiting),
        Some(("general".into(), 5, false, Category::Consultation))
    );
    assert_eq!(prompts_of(&waiting), names(&["queue_wait"]));
}

#[test]
fn a_transfer_to_a_uri_plays_the_wait_prompt_while_it_rings_and_connects_when_answered() {
    let mut h = connected(config());
    let uri = "sip:8001@127.0.0.1:5070".to_owned();
    let ringing = h.event(handed("general", HandOver::Uri(uri.clone())));
    assert_eq!(
        enqueued(&ringing),
        None,
        "not in a queue while the URI rings"
    );
    assert!(has(&ringing, &Action::Transfer { uri }), "{ringing:?}");
    assert_eq!(prompts_of(&ringing), names(&["queue_wait"]));
    // The prompt loops, with no position (the call is not in a line).
    assert!(h.event(position(1)).is_empty());
    let again = h.finish(&ringing);
    assert_eq!(prompts_of(&again), names(&["queue_wait"]));
    assert_eq!(
        h.event(|now| Event::TransferAnswered { now }),
        [Action::StopPlayback]
    );
    // Connected with the target: the agent is no longer the caller's.
    assert!(h.event(answered("1002")).is_empty());
}

#[test]
fn a_uri_that_fails_sends_the_caller_back_to_their_queue_with_their_priority() {
    let mut h = connected(config());
    let uri = "sip:8001@127.0.0.1:5070".to_owned();
    h.event(handed("general", HandOver::Uri(uri)));
    let failed = h.event(|now| Event::TransferFailed { now });
    assert_eq!(
        enqueued(&failed),
        Some(("general".into(), 5, false, Category::Consultation))
    );
    assert_eq!(enqueued_for(&failed), Some(None));
    // Still hearing the wait prompt, now told their position; the next agent answers.
    h.event(position(0));
    assert!(has(
        &h.event(answered("1002")),
        &Action::Bridge {
            agent: "1002".into()
        }
    ));
}
