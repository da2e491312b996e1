//! The desk on an injected clock.

use super::*;
use chrono_tz::Asia::Shanghai;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2025-12-01 08:00:00 Asia/Shanghai, in Unix milliseconds.
const WALL: i64 = 1_764_547_200_000;

struct Bench {
    desk: Desk<&'static str>,
    t0: Instant,
    now: Instant,
}

fn roster() -> Roster {
    Roster {
        agents: [("a1", vec!["repair"]), ("a2", vec!["repair", "billing"])]
            .into_iter()
            .map(|(id, qs)| (id.to_owned(), qs.into_iter().map(String::from).collect()))
            .collect(),
        queues: vec!["repair".into(), "billing".into(), "leak".into()],
    }
}

fn bench_with(config: DeskConfig) -> Bench {
    let t0 = Instant::now();
    let desk = Desk::new(Arc::new(config), Shanghai, &roster(), 7, t0, WALL);
    Bench { desk, t0, now: t0 }
}

/// The defaults, with heartbeats out of the way of the event sequences under test.
fn quiet() -> DeskConfig {
    DeskConfig {
        heartbeat_secs: 86_400,
        ..DeskConfig::default()
    }
}

fn bench() -> Bench {
    bench_with(quiet())
}

impl Bench {
    fn advance(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
        self.desk.poll(self.now);
    }

    fn feed(&mut self, input: DeskInput<&'static str>) {
        self.desk.handle(input, self.now);
        self.desk.poll(self.now);
    }

    fn ready(&mut self, agent: &str) {
        self.desk
            .set_state(agent, Requested::Ready, None, self.now)
            .expect("ready");
    }

    fn queue(&mut self, call: &str, queue: &str) {
        self.feed(DeskInput::Queued {
            call: call.into(),
            queue: queue.into(),
            priority: 0,
            leak: queue == "leak",
        });
    }

    fn offer(&mut self, call: &str, agent: &str) {
        let ring_deadline = self.now + Duration::from_secs(15);
        self.feed(DeskInput::Offered {
            call: call.into(),
            agent: agent.into(),
            pop: Arc::new("pop"),
            ring_deadline,
        });
    }

    fn answer(&mut self, call: &str, agent: &str) {
        self.feed(DeskInput::Answered {
            call: call.into(),
            agent: agent.into(),
        });
    }

    fn end(&mut self, call: &str) {
        self.feed(DeskInput::Ended {
            call: call.into(),
            who: HungUpBy::Caller,
        });
    }

    /// Queue, ring, answer after `wait` s, talk `talk` s, hang up.
    fn call(&mut self, call: &str, agent: &str, wait: f64, talk: f64) {
        self.queue(call, "repair");
        self.offer(call, agent);
        self.advance(wait);
        self.answer(call, agent);
        self.advance(talk);
        self.end(call);
    }

    /// The call layer carries out a transfer to a queue or an agent: the agent's leg ends,
    /// the call waits again in `queue` (the ACD rings a transfer's target first).
    fn requeued(&mut self, call: &str, queue: &str, priority: u8) {
        self.feed(DeskInput::Ended {
            call: call.into(),
            who: HungUpBy::Transfer,
        });
        self.feed(DeskInput::Queued {
            call: call.into(),
            queue: queue.into(),
            priority,
            leak: false,
        });
    }

    fn state(&self, agent: &str) -> AgentState {
        self.desk.view(agent).expect("agent").state
    }

    fn events(&mut self, sub: SubId) -> Vec<AgentEvent<&'static str>> {
        self.desk
            .drain(sub)
            .items
            .into_iter()
            .filter_map(|item| match item {
                StreamItem::Agent(e) => Some(e),
                StreamItem::Wallboard(_) => None,
            })
            .collect()
    }

    fn boards(&mut self, sub: SubId) -> Vec<WallboardUpdate> {
        self.desk
            .drain(sub)
            .items
            .into_iter()
            .filter_map(|item| match item {
                StreamItem::Wallboard(w) => Some(w),
                StreamItem::Agent(_) => None,
            })
            .collect()
    }
}

fn names(events: &[AgentEvent<&'static str>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::StateChanged { to, .. } => match to.reason_code() {
                Some(code) => format!("state:not_ready({code})"),
                None => format!("state:{}", to.name()),
            },
            EventKind::Offered(o) => format!("offered:{}", o.call),
            EventKind::OfferWithdrawn { reason, .. } => format!("withdrawn:{reason:?}"),
            EventKind::Connected { .. } => "connected".into(),
            EventKind::Ended { who, .. } => format!("ended:{who:?}"),
            EventKind::WrapUpStarted { .. } => "wrap_up".into(),
            EventKind::SurveyResult { rating, .. } => format!("survey:{rating}"),
            EventKind::TicketChanged { status, .. } => format!("ticket:{status}"),
            EventKind::Snapshot(s) => format!("snapshot:{}", s.state.name()),
            EventKind::ResyncRequired(r) => format!("resync:{r:?}"),
            EventKind::Heartbeat => "heartbeat".into(),
        })
        .collect()
}

#[test]
fn login_changes_state_bumps_version_and_is_recorded() {
    let mut b = bench();
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    let first = b.events(sub);
    assert_eq!(names(&first), ["snapshot:logged_out"]);
    assert_eq!((first[0].epoch, first[0].seq), (7, 0));
    b.desk.take_actions();
    let view = b
        .desk
        .set_state("a1", Requested::Ready, Some(0), b.now)
        .expect("ready");
    assert_eq!((view.state, view.version), (AgentState::Ready, 1));
    let events = b.events(sub);
    assert_eq!(names(&events), ["state:ready"]);
    assert_eq!((events[0].seq, events[0].at_ms), (1, WALL));
    let actions = b.desk.take_actions();
    assert!(actions.contains(&DeskAction::Timeline {
        agent: "a1".into(),
        from: AgentState::LoggedOut,
        to: AgentState::Ready,
        version: 1,
        at_ms: WALL,
    }));
    assert!(actions.contains(&DeskAction::Availability {
        agent: "a1".into(),
        ready: true
    }));
    assert!(actions.contains(&DeskAction::Wake(sub)));
}

#[test]
fn bad_requests_are_refused_with_what_is_wrong() {
    let mut b = bench();
    let now = b.now;
    b.ready("a1");
    assert_eq!(
        b.desk.set_state("a1", Requested::LoggedOut, Some(0), now),
        Err(DeskError::Stale {
            expected: 0,
            current: 1
        })
    );
    assert_eq!(
        b.desk
            .set_state("a1", Requested::NotReady("nap".into()), None, now),
        Err(DeskError::UnknownReason("nap".into()))
    );
    assert_eq!(
        b.desk.set_state(
            "a1",
            Requested::NotReady("ring_no_answer".into()),
            None,
            now
        ),
        Err(DeskError::SystemReason("ring_no_answer".into()))
    );
    assert_eq!(
        b.desk.set_state("zz", Requested::Ready, None, now),
        Err(DeskError::UnknownAgent("zz".into()))
    );
    assert!(matches!(
        b.desk.subscribe_agent("zz", None, now),
        Err(DeskError::UnknownAgent(_))
    ));
    assert_eq!(
        b.desk.complete_wrap_up("a1", "solved", "", now),
        Err(DeskError::NotInWrapUp("a1".into()))
    );
    assert_eq!(b.state("a1"), AgentState::Ready);
}

#[test]
fn a_call_rings_connects_ends_and_wrap_up_expires_into_ready() {
    let mut b = bench();
    b.ready("a1");
    let sub = b
        .desk
        .subscribe_agent("a1", Some((7, 1)), b.now)
        .expect("sub");
    b.call("c1", "a1", 3.0, 60.0);
    assert_eq!(b.state("a1"), AgentState::WrapUp);
    b.advance(29.0);
    assert_eq!(b.state("a1"), AgentState::WrapUp);
    assert_eq!(b.desk.next_deadline(), Some(b.now + Duration::from_secs(1)));
    b.advance(1.0);
    assert_eq!(b.state("a1"), AgentState::Ready);
    let events = b.events(sub);
    assert_eq!(
        names(&events),
        [
            "state:ringing",
            "offered:c1",
            "state:on_call",
            "connected",
            "ended:Caller",
            "state:wrap_up",
            "wrap_up",
            "state:ready"
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (2..=9).collect::<Vec<_>>());
    let EventKind::Offered(offer) = &events[1].kind else {
        panic!("offered first");
    };
    assert_eq!(*offer.pop, "pop");
    assert_eq!(offer.ring_deadline_ms, WALL + 15_000);
    let EventKind::Ended { duration_ms, .. } = events[4].kind else {
        panic!("ended");
    };
    assert_eq!(duration_ms, 60_000);
    let EventKind::WrapUpStarted { deadline_ms, .. } = events[6].kind else {
        panic!("wrap-up");
    };
    assert_eq!(deadline_ms, WALL + 93_000);
}

#[test]
fn not_ready_asked_during_a_call_waits_for_the_end_of_wrap_up() {
    let mut b = bench();
    b.ready("a1");
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    b.answer("c1", "a1");
    let view = b
        .desk
        .set_state("a1", Requested::NotReady("meal".into()), None, b.now)
        .expect("pending");
    assert_eq!(view.state, AgentState::OnCall);
    assert_eq!(view.pending, Some(Requested::NotReady("meal".into())));
    b.end("c1");
    assert_eq!(b.state("a1"), AgentState::WrapUp);
    b.advance(30.0);
    assert_eq!(b.state("a1"), AgentState::NotReady("meal".into()));
    assert_eq!(b.desk.view("a1").expect("a1").pending, None);
}

#[test]
fn ready_during_a_call_cancels_the_pending_request() {
    let mut b = bench();
    b.ready("a1");
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    b.answer("c1", "a1");
    let now = b.now;
    b.desk
        .set_state("a1", Requested::LoggedOut, None, now)
        .expect("pending");
    b.desk
        .set_state("a1", Requested::Ready, None, now)
        .expect("ready");
    b.end("c1");
    b.advance(30.0);
    assert_eq!(b.state("a1"), AgentState::Ready);
}

#[test]
fn wrap_up_extends_up_to_the_maximum_and_completes_early_with_a_disposition() {
    let mut b = bench_with(DeskConfig {
        wrap_up_max_secs: 50,
        disposition_codes: vec!["solved".into()],
        ..quiet()
    });
    b.ready("a1");
    b.call("c1", "a1", 1.0, 10.0);
    let wrap_start = b.desk.wall(b.now);
    let first = b.desk.extend_wrap_up("a1", 15, b.now).expect("extend");
    assert_eq!(first, wrap_start + 45_000);
    let capped = b.desk.extend_wrap_up("a1", 15, b.now).expect("extend");
    assert_eq!(capped, wrap_start + 50_000);
    b.advance(45.0);
    assert_eq!(b.state("a1"), AgentState::WrapUp);
    assert_eq!(
        b.desk.complete_wrap_up("a1", "nope", "", b.now),
        Err(DeskError::UnknownDisposition("nope".into()))
    );
    b.desk.take_actions();
    b.desk
        .complete_wrap_up("a1", "solved", "valve replaced", b.now)
        .expect("complete");
    assert_eq!(b.state("a1"), AgentState::Ready);
    assert!(b.desk.take_actions().contains(&DeskAction::Disposition {
        call: "c1".into(),
        agent: "a1".into(),
        code: "solved".into(),
        notes: "valve replaced".into(),
    }));
}

#[test]
fn queue_without_wrap_up_returns_the_agent_to_ready_at_once() {
    let mut b = bench_with(DeskConfig {
        queue_wrap_up_secs: [("repair".to_owned(), 0)].into(),
        ..quiet()
    });
    b.ready("a1");
    b.call("c1", "a1", 1.0, 10.0);
    assert_eq!(b.state("a1"), AgentState::Ready);
}

#[test]
fn ring_outs_set_not_ready_ring_no_answer_after_n_misses() {
    let mut b = bench_with(DeskConfig {
        ring_no_answer_after: 2,
        ..quiet()
    });
    b.ready("a1");
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    b.events(sub);
    for (call, expect) in [
        ("c1", AgentState::Ready),
        ("c2", AgentState::NotReady("ring_no_answer".into())),
    ] {
        b.queue(call, "repair");
        b.offer(call, "a1");
        b.advance(15.0);
        b.feed(DeskInput::OfferEnded {
            call: call.into(),
            agent: "a1".into(),
            reason: WithdrawReason::RingTimeout,
        });
        assert_eq!(b.state("a1"), expect);
    }
    assert_eq!(
        names(&b.events(sub)),
        [
            "state:ringing",
            "offered:c1",
            "withdrawn:RingTimeout",
            "state:ready",
            "state:ringing",
            "offered:c2",
            "withdrawn:RingTimeout",
            "state:not_ready(ring_no_answer)"
        ]
    );
}

#[test]
fn a_refused_or_rung_out_offer_counts_as_a_miss_without_naming_the_call() {
    let mut b = bench();
    b.ready("a1");
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    b.feed(DeskInput::RangOut { agent: "a1".into() });
    assert_eq!(b.state("a1"), AgentState::NotReady("ring_no_answer".into()));
    // Nothing ringing: nothing to miss.
    b.ready("a1");
    b.feed(DeskInput::RangOut { agent: "a1".into() });
    assert_eq!(b.state("a1"), AgentState::Ready);
    let calls = b.desk.live_calls();
    assert_eq!(
        (calls[0].phase, calls[0].agent.as_deref()),
        (LivePhase::Waiting, None)
    );
}

#[test]
fn an_answer_resets_the_miss_count() {
    let mut b = bench_with(DeskConfig {
        ring_no_answer_after: 2,
        wrap_up_secs: 0,
        ..quiet()
    });
    b.ready("a1");
    for call in ["c1", "c3"] {
        b.queue(call, "repair");
        b.offer(call, "a1");
        b.feed(DeskInput::OfferEnded {
            call: call.into(),
            agent: "a1".into(),
            reason: WithdrawReason::RingTimeout,
        });
        assert_eq!(b.state("a1"), AgentState::Ready);
        b.call(&format!("{call}-next"), "a1", 1.0, 5.0);
        assert_eq!(b.state("a1"), AgentState::Ready);
    }
}

#[test]
fn a_caller_hanging_up_while_ringing_withdraws_the_offer_without_a_miss() {
    let mut b = bench_with(DeskConfig {
        ring_no_answer_after: 1,
        ..quiet()
    });
    b.ready("a1");
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    b.events(sub);
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    b.advance(2.0);
    b.feed(DeskInput::Abandoned { call: "c1".into() });
    assert_eq!(b.state("a1"), AgentState::Ready);
    assert_eq!(
        names(&b.events(sub)),
        [
            "state:ringing",
            "offered:c1",
            "withdrawn:CallerHungUp",
            "state:ready"
        ]
    );
    assert!(b.desk.live_calls().is_empty());
}

#[test]
fn a_caller_gone_while_waiting_or_ringing_is_an_abandon_not_an_end() {
    let mut b = bench();
    b.ready("a1");
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    b.events(sub);
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    // The call layer says both, in this order, whatever the call's stage.
    b.feed(DeskInput::Ended {
        call: "c1".into(),
        who: HungUpBy::Caller,
    });
    b.feed(DeskInput::CallGone { call: "c1".into() });
    assert_eq!(
        names(&b.events(sub)),
        [
            "state:ringing",
            "offered:c1",
            "withdrawn:CallerHungUp",
            "state:ready"
        ]
    );
    let wb = b.desk.subscribe_wallboard(b.now);
    let snap = b.boards(wb);
    let repair = snap[0]
        .lanes
        .iter()
        .find(|l| l.lane == "repair")
        .expect("lane");
    assert_eq!((repair.counters.abandoned, repair.waiting), (1, 0));
}

#[test]
fn an_agent_without_a_desktop_for_the_grace_period_goes_not_ready() {
    let mut b = bench_with(DeskConfig {
        desktop_grace_secs: 20,
        ..quiet()
    });
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    b.ready("a1");
    b.advance(100.0);
    assert_eq!(b.state("a1"), AgentState::Ready, "watched: stays ready");
    b.desk.unsubscribe(sub, b.now);
    b.advance(19.0);
    assert_eq!(b.state("a1"), AgentState::Ready);
    b.advance(1.0);
    assert_eq!(
        b.state("a1"),
        AgentState::NotReady("desktop_disconnected".into())
    );
    // An agent logged in by an admin with no desktop at all gets the same grace.
    b.ready("a2");
    b.advance(20.0);
    assert_eq!(
        b.state("a2"),
        AgentState::NotReady("desktop_disconnected".into())
    );
}

#[test]
fn the_grace_period_is_off_by_default() {
    let mut b = bench();
    b.ready("a1");
    b.advance(3600.0);
    assert_eq!(b.state("a1"), AgentState::Ready);
}

#[test]
fn a_desktop_resuming_gets_exactly_the_missed_events() {
    let mut b = bench_with(DeskConfig {
        wrap_up_secs: 5,
        ..quiet()
    });
    b.ready("a1");
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    let seen = b.events(sub);
    let (epoch, seq) = (seen[0].epoch, seen[0].seq);
    b.desk.unsubscribe(sub, b.now);
    for i in 0..5 {
        b.call(&format!("c{i}"), "a1", 1.0, 10.0);
        b.advance(5.0);
    }
    let again = b
        .desk
        .subscribe_agent("a1", Some((epoch, seq)), b.now)
        .expect("resume");
    let missed = b.events(again);
    assert_eq!(missed.len(), 5 * 8);
    let seqs: Vec<u64> = missed.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (seq + 1..=seq + 40).collect::<Vec<_>>());
    assert!(missed.iter().all(|e| e.epoch == 7));
    // Live events follow.
    b.desk
        .set_state("a1", Requested::NotReady("break".into()), None, b.now)
        .expect("break");
    let live = b.events(again);
    assert_eq!(names(&live), ["state:not_ready(break)"]);
    assert_eq!(live[0].seq, seq + 41);
    // Resuming at the latest seq replays nothing.
    let up_to_date = b
        .desk
        .subscribe_agent("a1", Some((epoch, seq + 41)), b.now)
        .expect("resume");
    assert!(b.events(up_to_date).is_empty());
}

#[test]
fn resuming_past_the_history_or_another_epoch_resyncs_with_a_snapshot() {
    let mut b = bench_with(DeskConfig {
        history_len: 4,
        ..quiet()
    });
    b.ready("a1");
    for _ in 0..3 {
        let now = b.now;
        b.desk
            .set_state("a1", Requested::NotReady("break".into()), None, now)
            .expect("break");
        b.ready("a1");
    }
    // Seq 7 is the latest; the history holds 4..=7, so resuming from 3 still works.
    let ok = b
        .desk
        .subscribe_agent("a1", Some((7, 3)), b.now)
        .expect("sub");
    assert_eq!(b.events(ok).len(), 4);
    for resume in [(7, 2), (7, 99), (6, 7)] {
        let sub = b
            .desk
            .subscribe_agent("a1", Some(resume), b.now)
            .expect("sub");
        let events = b.events(sub);
        let reason = if resume.0 == 7 {
            "resync:HistoryCompacted"
        } else {
            "resync:EpochChanged"
        };
        assert_eq!(names(&events), [reason, "snapshot:ready"], "{resume:?}");
        assert!(events.iter().all(|e| e.seq == 7 && e.epoch == 7));
        let EventKind::Snapshot(s) = &events[1].kind else {
            panic!("snapshot");
        };
        assert_eq!(s.version, 7);
    }
}

#[test]
fn a_snapshot_holds_the_call_being_offered_with_its_pop() {
    let mut b = bench();
    b.ready("a1");
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    let events = b.events(sub);
    let EventKind::Snapshot(s) = &events[0].kind else {
        panic!("snapshot");
    };
    let (offer, phase) = s.call.as_ref().expect("call");
    assert_eq!((offer.call.as_str(), *offer.pop), ("c1", "pop"));
    assert_eq!(*phase, CallPhase::Ringing);
}

#[test]
fn a_subscriber_that_never_reads_is_closed_with_resync_and_bounded_memory() {
    let mut b = bench_with(DeskConfig {
        subscriber_queue: 10,
        ..quiet()
    });
    let slow = b.desk.subscribe_agent("a1", None, b.now).expect("slow");
    let fast = b.desk.subscribe_agent("a1", None, b.now).expect("fast");
    b.events(fast);
    for _ in 0..20 {
        let now = b.now;
        b.desk
            .set_state("a1", Requested::NotReady("break".into()), None, now)
            .expect("break");
        b.ready("a1");
        assert!(b.desk.backlog(slow) <= 10);
        assert_eq!(b.events(fast).len(), 2, "the other desktop keeps up");
    }
    let drained = b.desk.drain(slow);
    assert!(drained.closed);
    let events: Vec<_> = drained
        .items
        .into_iter()
        .filter_map(|i| match i {
            StreamItem::Agent(e) => Some(e),
            StreamItem::Wallboard(_) => None,
        })
        .collect();
    assert_eq!(names(&events), ["resync:TooSlow"]);
    b.desk.unsubscribe(slow, b.now);
    assert_eq!(b.desk.view("a1").expect("a1").desktops, 1);
}

#[test]
fn heartbeats_carry_the_latest_seq() {
    let mut b = bench_with(DeskConfig::default());
    b.ready("a1");
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    b.events(sub);
    assert_eq!(b.desk.next_deadline(), Some(b.t0 + Duration::from_secs(15)));
    b.advance(14.0);
    assert!(b.events(sub).is_empty());
    b.advance(1.0);
    let beats = b.events(sub);
    assert_eq!(names(&beats), ["heartbeat"]);
    assert_eq!(beats[0].seq, 1);
    b.advance(15.0);
    assert_eq!(names(&b.events(sub)), ["heartbeat"]);
}

#[test]
fn control_needs_the_call_the_agent_holds_and_a_queue_transfer_carries_the_notes() {
    let mut b = bench();
    b.ready("a1");
    b.ready("a2");
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    assert_eq!(
        b.desk.control("a1", "c1", CallControl::HangUp),
        Err(DeskError::NotHolding {
            agent: "a1".into(),
            call: "c1".into()
        }),
        "ringing is not holding"
    );
    b.answer("c1", "a1");
    assert!(matches!(
        b.desk.control("a2", "c1", CallControl::HangUp),
        Err(DeskError::NotHolding { .. })
    ));
    assert!(matches!(
        b.desk.control("a1", "c9", CallControl::TransferToSurvey),
        Err(DeskError::NotHolding { .. })
    ));
    b.desk.take_actions();
    let transfer = CallControl::Transfer {
        to: TransferTarget::Queue("billing".into()),
        notes: "wants an installment plan".into(),
    };
    b.desk
        .control("a1", "c1", transfer.clone())
        .expect("transfer");
    assert!(b.desk.take_actions().contains(&DeskAction::Control {
        call: "c1".into(),
        agent: "a1".into(),
        control: transfer
    }));
    b.requeued("c1", "billing", 0);
    let sub = b.desk.subscribe_agent("a2", None, b.now).expect("sub");
    b.events(sub);
    b.offer("c1", "a2");
    let events = b.events(sub);
    let EventKind::Offered(offer) = &events[1].kind else {
        panic!("offered");
    };
    assert_eq!(offer.queue, "billing");
    assert_eq!(
        offer.handover,
        [HandoverNote {
            from_agent: "a1".into(),
            notes: "wants an installment plan".into()
        }]
    );
    assert_eq!(b.state("a1"), AgentState::WrapUp);
}

#[test]
fn survey_results_and_ticket_changes_reach_the_agent_who_had_the_call() {
    let mut b = bench();
    b.ready("a1");
    let sub = b.desk.subscribe_agent("a1", None, b.now).expect("sub");
    b.call("c1", "a1", 1.0, 10.0);
    b.events(sub);
    b.feed(DeskInput::TicketChanged {
        call: "c1".into(),
        name: "GD-1".into(),
        status: "submitted".into(),
    });
    b.feed(DeskInput::SurveyResult {
        call: "c1".into(),
        rating: 3,
    });
    assert_eq!(names(&b.events(sub)), ["ticket:submitted", "survey:3"]);
    b.feed(DeskInput::CallGone { call: "c1".into() });
    assert!(b.desk.live_calls().is_empty());
    // The caller is gone, the agent still wraps the call up: ticket edits reach them.
    b.feed(DeskInput::TicketChanged {
        call: "c1".into(),
        name: "GD-1".into(),
        status: "dispatched".into(),
    });
    assert_eq!(names(&b.events(sub)), ["ticket:dispatched"]);
    // Wrap-up over (the notes are written after it): the agent who had the call still hears.
    b.advance(60.0);
    assert_eq!(names(&b.events(sub)), ["state:ready"]);
    b.feed(DeskInput::TicketChanged {
        call: "c1".into(),
        name: "GD-1".into(),
        status: "draft".into(),
    });
    assert_eq!(names(&b.events(sub)), ["ticket:draft"]);
    // Another agent's or a forgotten call's ticket reaches no one.
    b.feed(DeskInput::TicketChanged {
        call: "c9".into(),
        name: "GD-9".into(),
        status: "draft".into(),
    });
    assert!(b.events(sub).is_empty());
}

#[test]
fn several_desktops_watch_one_agent() {
    let mut b = bench();
    let one = b.desk.subscribe_agent("a1", None, b.now).expect("one");
    let two = b.desk.subscribe_agent("a1", None, b.now).expect("two");
    b.events(one);
    b.events(two);
    b.ready("a1");
    assert_eq!(names(&b.events(one)), ["state:ready"]);
    assert_eq!(names(&b.events(two)), ["state:ready"]);
}

#[test]
fn config_problems_name_their_keys() {
    let config = DeskConfig {
        reason_codes: vec!["Break".into(), "ring_no_answer".into()],
        queue_wrap_up_secs: [("nowhere".to_owned(), 10)].into(),
        heartbeat_secs: 0,
        ..quiet()
    };
    let keys: Vec<String> = config
        .problems(|q| q == "repair")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "desk.reason_codes.0",
            "desk.reason_codes.1",
            "desk.queue_wrap_up_secs.nowhere",
            "desk.heartbeat_secs"
        ]
    );
    assert!(DeskConfig::default().problems(|_| true).is_empty());
}

#[test]
fn a_transfer_names_a_configured_queue_or_agent_or_nothing_happens() {
    let mut b = bench();
    b.ready("a1");
    b.queue("c1", "repair");
    b.offer("c1", "a1");
    b.answer("c1", "a1");
    b.desk.take_actions();
    let transfer = |to| CallControl::Transfer {
        to,
        notes: "gas smell".into(),
    };
    let nowhere = b.desk.control(
        "a1",
        "c1",
        transfer(TransferTarget::Queue("nowhere".into())),
    );
    assert_eq!(
        nowhere,
        Err(DeskError::UnknownTarget {
            field: "queue",
            name: "nowhere".into()
        })
    );
    let nobody = b
        .desk
        .control("a1", "c1", transfer(TransferTarget::Agent("a9".into())));
    assert_eq!(
        nobody,
        Err(DeskError::UnknownTarget {
            field: "agent",
            name: "a9".into()
        })
    );
    assert!(b.desk.take_actions().is_empty(), "refused: nothing to do");
    let billing = TransferTarget::Queue("billing".into());
    assert_eq!(
        b.desk.control("a1", "c1", transfer(billing.clone())),
        Ok(())
    );
    assert_eq!(
        b.desk.take_actions(),
        [DeskAction::Control {
            call: "c1".into(),
            agent: "a1".into(),
            control: transfer(billing),
        }]
    );
}

mod agent_transfer;
mod wallboard;
