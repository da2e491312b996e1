//! A desktop's blind transfer to another agent, on the injected clock: refused unless the
//! target is READY (the caller stays with the first agent); accepted, the target is offered
//! the call like any offer — RINGING with the pop and the notes, then ON_CALL and wrap-up, or
//! a ring-out by the usual rules — while the first agent ends with TRANSFER and wraps up.

use super::*;

fn to_agent(agent: &str) -> CallControl {
    CallControl::Transfer {
        to: TransferTarget::Agent(agent.into()),
        notes: "meter reading disputed".into(),
    }
}

/// a1 talks on c1 (repair, priority 4); a2 is READY; both desktops subscribed and drained.
fn talking() -> (Bench, SubId, SubId) {
    let mut b = bench();
    b.ready("a1");
    b.ready("a2");
    b.feed(DeskInput::Queued {
        call: "c1".into(),
        queue: "repair".into(),
        priority: 4,
        leak: false,
    });
    b.offer("c1", "a1");
    b.advance(2.0);
    b.answer("c1", "a1");
    let sub1 = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    let sub2 = b.desk.subscribe_agent("a2", None, b.now).expect("sub");
    b.events(sub1);
    b.events(sub2);
    b.desk.take_actions();
    (b, sub1, sub2)
}

#[test]
fn a_transfer_to_an_agent_who_is_not_ready_is_refused_and_the_caller_stays() {
    let (mut b, sub1, _) = talking();
    let refused = |b: &mut Bench, target: &str, state: &str| {
        assert_eq!(
            b.desk.control("a1", "c1", to_agent(target)),
            Err(DeskError::TargetNotReady {
                agent: target.into(),
                state: state.into()
            })
        );
    };
    // Talking to themselves is ON_CALL.
    refused(&mut b, "a1", "on_call");
    b.desk
        .set_state("a2", Requested::NotReady("break".into()), None, b.now)
        .expect("break");
    refused(&mut b, "a2", "not_ready(break)");
    b.desk
        .set_state("a2", Requested::LoggedOut, None, b.now)
        .expect("logout");
    refused(&mut b, "a2", "logged_out");
    b.ready("a2");
    b.queue("c2", "repair");
    b.offer("c2", "a2");
    refused(&mut b, "a2", "ringing");
    // Nothing was asked of the call layer, no note was kept, and a1 still holds the call.
    assert!(
        !b.desk
            .take_actions()
            .iter()
            .any(|a| matches!(a, DeskAction::Control { .. }))
    );
    assert_eq!(names(&b.events(sub1)), Vec::<String>::new());
    assert_eq!(b.state("a1"), AgentState::OnCall);
    assert_eq!(b.desk.control("a1", "c1", CallControl::HangUp), Ok(()));
    b.feed(DeskInput::CallGone { call: "c2".into() });
    let message = DeskError::TargetNotReady {
        agent: "a2".into(),
        state: "on_call".into(),
    }
    .to_string();
    assert!(
        message.contains("READY") && message.contains("queue"),
        "{message}"
    );
}

#[test]
fn the_target_agent_rings_with_the_pop_and_the_notes_then_talks_and_wraps_up() {
    let (mut b, sub1, sub2) = talking();
    assert_eq!(b.desk.control("a1", "c1", to_agent("a2")), Ok(()));
    assert!(b.desk.take_actions().contains(&DeskAction::Control {
        call: "c1".into(),
        agent: "a1".into(),
        control: to_agent("a2"),
    }));
    b.requeued("c1", "repair", 4);
    assert_eq!(
        names(&b.events(sub1)),
        ["ended:Transfer", "state:wrap_up", "wrap_up"]
    );
    b.offer("c1", "a2");
    let events = b.events(sub2);
    assert_eq!(names(&events), ["state:ringing", "offered:c1"]);
    let EventKind::Offered(offer) = &events[1].kind else {
        panic!("offered");
    };
    assert_eq!((offer.queue.as_str(), *offer.pop), ("repair", "pop"));
    assert_eq!(
        offer.handover,
        [HandoverNote {
            from_agent: "a1".into(),
            notes: "meter reading disputed".into()
        }]
    );
    let live = b.desk.live_calls();
    assert_eq!(
        (live[0].agent.as_deref(), live[0].phase, live[0].priority),
        (Some("a2"), LivePhase::Ringing, 4)
    );
    b.advance(3.0);
    b.answer("c1", "a2");
    b.advance(60.0);
    b.end("c1");
    assert_eq!(
        names(&b.events(sub2)),
        [
            "state:on_call",
            "connected",
            "ended:Caller",
            "state:wrap_up",
            "wrap_up"
        ]
    );
    // Every change of a2 reaches the timeline.
    let timeline: Vec<(String, String)> = b
        .desk
        .take_actions()
        .into_iter()
        .filter_map(|a| match a {
            DeskAction::Timeline {
                agent, from, to, ..
            } if agent == "a2" => Some((from.name().to_owned(), to.name().to_owned())),
            _ => None,
        })
        .collect();
    let pairs: Vec<(&str, &str)> = timeline
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("ready", "ringing"),
            ("ringing", "on_call"),
            ("on_call", "wrap_up")
        ]
    );
    // a1's wrap-up (30 s) ran out meanwhile; a2's runs out 30 s after the call.
    assert_eq!(b.state("a1"), AgentState::Ready);
    b.advance(30.0);
    assert_eq!(b.state("a2"), AgentState::Ready);
}

#[test]
fn a_transfer_the_target_lets_ring_out_is_withdrawn_and_the_call_waits_in_its_queue() {
    let (mut b, _, sub2) = talking();
    b.desk
        .control("a1", "c1", to_agent("a2"))
        .expect("transfer");
    b.requeued("c1", "repair", 4);
    b.offer("c1", "a2");
    b.advance(15.0);
    b.feed(DeskInput::RangOut { agent: "a2".into() });
    assert_eq!(
        names(&b.events(sub2)),
        [
            "state:ringing",
            "offered:c1",
            "withdrawn:RingTimeout",
            "state:not_ready(ring_no_answer)"
        ]
    );
    let live = b.desk.live_calls();
    assert_eq!(
        (
            live[0].queue.as_str(),
            live[0].priority,
            live[0].phase,
            live[0].agent.as_deref()
        ),
        ("repair", 4, LivePhase::Waiting, None)
    );
}
