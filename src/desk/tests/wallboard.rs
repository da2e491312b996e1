//! The supervisors' view on the injected clock: the wallboard's counters (SL, SL2, ASA, AHT,
//! the leak lane apart), its rate limit per lane, today's counters at local midnight, and the
//! live call list.

use super::*;

#[test]
fn wallboard_counts_sl_sl2_asa_aht_and_keeps_leaks_on_their_own_lane() {
    let mut b = bench_with(DeskConfig {
        wrap_up_secs: 10,
        ..quiet()
    });
    b.ready("a1");
    let wb = b.desk.subscribe_wallboard(b.now);
    let snap = b.boards(wb);
    assert!(snap[0].snapshot);
    let lanes: Vec<&str> = snap[0].lanes.iter().map(|l| l.lane.as_str()).collect();
    assert_eq!(lanes, ["billing", "leak", "repair"]);
    // Answered after 5 s and 20 s; talk 60 s each, wrap-up 10 s.
    b.call("c1", "a1", 5.0, 60.0);
    b.advance(10.0);
    b.call("c2", "a1", 20.0, 60.0);
    b.advance(10.0);
    // Abandoned after 2 s (short), 10 s (within 15 s), 30 s.
    for (call, wait) in [("c3", 2.0), ("c4", 10.0), ("c5", 30.0)] {
        b.queue(call, "repair");
        b.advance(wait);
        b.feed(DeskInput::Abandoned { call: call.into() });
    }
    // A leak call: its own lane.
    b.queue("l1", "leak");
    b.advance(1.0);
    let boards = b.boards(wb);
    let repair = boards
        .iter()
        .rev()
        .flat_map(|u| &u.lanes)
        .find(|l| l.lane == "repair")
        .expect("repair lane");
    let c = &repair.counters;
    assert_eq!(
        (c.offered, c.answered, c.answered_within),
        (5, 2, 1),
        "{c:?}"
    );
    assert_eq!(
        (c.abandoned, c.abandoned_within, c.short_abandoned),
        (3, 2, 1)
    );
    assert_eq!(c.service_level(), Some(50.0));
    assert_eq!(c.service_level2(), Some(60.0));
    assert_eq!(c.average_speed_of_answer(), Some(12.5));
    assert_eq!(c.average_handle_time(), Some(70.0));
    let leak = boards
        .iter()
        .rev()
        .flat_map(|u| &u.lanes)
        .find(|l| l.lane == "leak")
        .expect("leak lane");
    assert!(leak.leak);
    assert_eq!((leak.waiting, leak.counters.offered), (1, 1));
    assert_eq!(boards.last().expect("update").agents.ready, 1);
}

#[test]
fn wallboard_sends_at_most_one_message_per_second_per_lane() {
    let mut b = bench();
    let wb = b.desk.subscribe_wallboard(b.now);
    b.boards(wb);
    for i in 0..10 {
        b.queue(&format!("c{i}"), "repair");
        b.advance(0.09);
    }
    let boards = b.boards(wb);
    let repair_updates: Vec<i64> = boards
        .iter()
        .filter(|u| u.lanes.iter().any(|l| l.lane == "repair"))
        .map(|u| u.at_ms)
        .collect();
    assert_eq!(repair_updates.len(), 1, "{repair_updates:?}");
    // The changes held back go out once the second is over.
    b.advance(0.1);
    let later = b.boards(wb);
    assert_eq!(later.len(), 1);
    let repair = later
        .iter()
        .flat_map(|u| &u.lanes)
        .find(|l| l.lane == "repair")
        .expect("held-back change");
    assert_eq!(repair.waiting, 10);
    assert_eq!(repair.longest_wait_secs, 1);
    assert_eq!(repair.oldest_waiting_since_ms, Some(WALL));
}

#[test]
fn todays_counters_restart_at_local_midnight() {
    let mut b = bench();
    b.ready("a1");
    b.call("c1", "a1", 1.0, 10.0);
    b.advance(30.0);
    // 08:00 Shanghai + 16 h = midnight.
    b.advance(16.0 * 3600.0 - 41.0);
    let wb = b.desk.subscribe_wallboard(b.now);
    let snap = b.boards(wb);
    let repair = snap[0]
        .lanes
        .iter()
        .find(|l| l.lane == "repair")
        .expect("repair");
    assert_eq!(repair.counters, Counters::default());
}

#[test]
fn live_calls_list_waiting_ringing_and_talking_calls() {
    let mut b = bench();
    b.ready("a1");
    b.queue("c1", "repair");
    b.advance(1.0);
    b.queue("c2", "billing");
    b.offer("c1", "a1");
    let calls = b.desk.live_calls();
    let phases: Vec<(&str, LivePhase, Option<&str>)> = calls
        .iter()
        .map(|c| (c.call.as_str(), c.phase, c.agent.as_deref()))
        .collect();
    assert_eq!(
        phases,
        [
            ("c1", LivePhase::Ringing, Some("a1")),
            ("c2", LivePhase::Waiting, None)
        ]
    );
}

#[test]
fn a_caller_hanging_up_while_waiting_after_a_transfer_is_an_abandon_on_the_target_lane() {
    let mut b = bench();
    b.ready("a1");
    let wb = b.desk.subscribe_wallboard(b.now);
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    b.advance(2.0);
    b.answer("c1", "a1");
    b.advance(30.0);
    // What the call layer feeds for a desktop's transfer to billing: a1's side ended, then
    // the call queued again (the IVR's `Enqueue`).
    b.feed(DeskInput::Ended {
        call: "c1".into(),
        who: HungUpBy::Transfer,
    });
    b.queue("c1", "billing");
    b.advance(3.0);
    // The caller hangs up while waiting: what the call layer feeds when the call is gone.
    b.feed(DeskInput::Ended {
        call: "c1".into(),
        who: HungUpBy::Caller,
    });
    b.feed(DeskInput::CallGone { call: "c1".into() });
    b.advance(1.0);
    let boards = b.boards(wb);
    let lane = |name: &str| {
        boards
            .iter()
            .rev()
            .flat_map(|u| &u.lanes)
            .find(|l| l.lane == name)
            .cloned()
            .expect("lane")
    };
    let (repair, billing) = (lane("repair"), lane("billing"));
    let count = |l: &LaneBoard| {
        let c = &l.counters;
        (c.offered, c.answered, c.abandoned, l.waiting)
    };
    assert_eq!(count(&repair), (1, 1, 0, 0), "answered once on repair");
    assert_eq!(count(&billing), (1, 0, 1, 0), "abandoned on billing");
    assert!(
        b.desk.live_calls().is_empty(),
        "the call is not listed live"
    );
}
