//! Tests of the call distributor, on a simulated clock.

use super::config::{AcdConfig, validate};
use super::distributor::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
ring_timeout_secs = 15

[leak]
overflow_after_secs = 30
on_call_uri = "sip:oncall@127.0.0.1"

[queues.emergency]
category = "leak"

[queues.general]
category = "consultation"

[queues.billing]
category = "query"
overflow = { after_secs = 120, uri = "sip:backoffice@127.0.0.1" }

[agents.a1]
uri = "sip:1001@127.0.0.1"
queues = ["emergency", "general"]

[agents.a2]
uri = "sip:1002@127.0.0.1"
queues = ["general", "billing"]

[agents.a3]
uri = "sip:1003@127.0.0.1"
queues = ["general"]
"#;

pub(crate) fn config() -> AcdConfig {
    toml::from_str(CONFIG).unwrap()
}

struct Harness {
    acd: Acd,
    now: Instant,
}

impl Harness {
    fn new(config: AcdConfig) -> Harness {
        let now = Instant::now();
        Harness {
            acd: Acd::new(Arc::new(config), now),
            now,
        }
    }
    fn tick(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
    }
    fn available(&mut self, agent: &str) -> Vec<AcdAction> {
        self.tick(1);
        self.acd.handle(AcdEvent::AgentStateChanged {
            agent: agent.into(),
            state: ReportedState::Available,
            now: self.now,
        })
    }
    fn queue(&mut self, call: &str, queue: &str, priority: u8, leak: bool) -> Vec<AcdAction> {
        self.tick(1);
        self.acd.handle(AcdEvent::CallQueued {
            call: call.into(),
            queue: queue.into(),
            priority,
            leak,
            now: self.now,
        })
    }
    /// Fires the timer `actions` started (the last one when several).
    fn fire(&mut self, actions: &[AcdAction], which: usize) -> Vec<AcdAction> {
        let timers: Vec<(AcdTimerId, Instant)> = actions
            .iter()
            .filter_map(|a| match a {
                AcdAction::StartTimer { id, at } => Some((*id, *at)),
                _ => None,
            })
            .collect();
        let (id, at) = timers[which];
        self.now = at;
        self.acd.handle(AcdEvent::TimerFired { id, now: at })
    }
}

fn offers(actions: &[AcdAction]) -> Vec<(&str, &str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::OfferToAgent { call, agent, .. } => Some((call.as_str(), agent.as_str())),
            _ => None,
        })
        .collect()
}

#[test]
fn sample_config_is_valid() {
    assert_eq!(validate(&config(), "emergency"), Vec::new());
}

#[test]
fn leak_calls_go_ahead_of_every_other_call() {
    let mut h = Harness::new(config());
    h.queue("c1", "general", 9, false);
    h.queue("c2", "general", 0, false);
    h.queue("leak", "emergency", 0, true);
    assert_eq!(h.acd.waiting_calls(), ["leak", "c1", "c2"]);
    let actions = h.available("a1");
    assert_eq!(offers(&actions), [("leak", "a1")]);
}

#[test]
fn priority_then_first_come_first_served() {
    let mut h = Harness::new(config());
    h.queue("first", "general", 0, false);
    h.queue("second", "general", 0, false);
    h.queue("urgent", "general", 5, false);
    assert_eq!(h.acd.waiting_calls(), ["urgent", "first", "second"]);
    assert_eq!(offers(&h.available("a3")), [("urgent", "a3")]);
    assert_eq!(offers(&h.available("a2")), [("first", "a2")]);
}

#[test]
fn longest_idle_agent_is_rung_first() {
    let mut h = Harness::new(config());
    h.available("a3");
    h.available("a2");
    h.available("a1");
    let actions = h.queue("c1", "general", 0, false);
    assert_eq!(
        actions[0],
        AcdAction::OfferToAgent {
            call: "c1".into(),
            agent: "a3".into(),
            uri: "sip:1003@127.0.0.1".into()
        }
    );
    assert_eq!(h.acd.agent_state("a3"), Some(AgentState::Ringing));
    assert_eq!(offers(&h.queue("c2", "general", 0, false)), [("c2", "a2")]);
}

#[test]
fn ring_no_answer_offers_to_the_next_agent() {
    let mut h = Harness::new(config());
    h.available("a3");
    h.available("a2");
    let first = h.queue("c1", "general", 0, false);
    let ring = first
        .iter()
        .find_map(|a| match a {
            AcdAction::StartTimer { at, .. } => Some(*at),
            _ => None,
        })
        .unwrap();
    assert_eq!(ring, h.now + Duration::from_secs(15));
    let next = h.fire(&first, 0);
    assert_eq!(
        next[..2],
        [
            AcdAction::CancelOffer {
                call: "c1".into(),
                agent: "a3".into()
            },
            AcdAction::AgentSetOffline { agent: "a3".into() },
        ]
    );
    assert_eq!(offers(&next), [("c1", "a2")]);
    assert_eq!(h.acd.agent_state("a3"), Some(AgentState::Offline));

    // An explicit refusal does the same.
    h.available("a3");
    h.tick(1);
    let after = h.acd.handle(AcdEvent::OfferRejected {
        call: "c1".into(),
        agent: "a2".into(),
        now: h.now,
    });
    assert_eq!(offers(&after), [("c1", "a3")]);
}

#[test]
fn answered_offer_leaves_the_queue_and_busies_the_agent() {
    let mut h = Harness::new(config());
    h.available("a2");
    let offered = h.queue("c1", "billing", 0, false);
    let answered = h.acd.handle(AcdEvent::OfferAnswered {
        call: "c1".into(),
        agent: "a2".into(),
        now: h.now,
    });
    // The ring, overflow and position-announcement timers are all cancelled.
    let started: Vec<AcdAction> = offered
        .iter()
        .filter_map(|a| match a {
            AcdAction::StartTimer { id, .. } => Some(AcdAction::CancelTimer { id: *id }),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 3);
    for cancel in &started {
        assert!(answered.contains(cancel), "{answered:?}");
    }
    assert!(h.acd.waiting_calls().is_empty());
    assert_eq!(h.acd.agent_state("a2"), Some(AgentState::Busy));
}

#[test]
fn leak_overflows_to_on_call_after_the_configured_wait() {
    let mut h = Harness::new(config());
    let queued = h.queue("leak", "emergency", 255, true);
    let started = h.now;
    assert_eq!(
        queued.last(),
        Some(&AcdAction::Waiting {
            call: "leak".into()
        })
    );
    assert_eq!(
        queued[0],
        AcdAction::StartTimer {
            id: match queued[0] {
                AcdAction::StartTimer { id, .. } => id,
                _ => panic!("overflow timer first"),
            },
            at: started + Duration::from_secs(30)
        }
    );
    let overflow = h.fire(&queued, 0);
    assert_eq!(
        overflow,
        [AcdAction::Overflow {
            call: "leak".into(),
            uri: "sip:oncall@127.0.0.1".into()
        }]
    );
    assert!(h.acd.waiting_calls().is_empty());
    // The IVR re-queues when the on-call does not answer: the timer starts over.
    let again = h.queue("leak", "emergency", 255, true);
    assert_eq!(offers(&again), []);
    assert!(
        matches!(again[0], AcdAction::StartTimer { at, .. } if at == h.now + Duration::from_secs(30))
    );
}

#[test]
fn overflow_while_ringing_cancels_the_ring() {
    let mut h = Harness::new(config());
    h.available("a2");
    let queued = h.queue("c1", "billing", 0, false);
    // The ring timer is the first started, the overflow timer the second.
    h.tick(200);
    let overflow = h.fire(&queued, 1);
    assert!(overflow.contains(&AcdAction::CancelOffer {
        call: "c1".into(),
        agent: "a2".into()
    }));
    assert!(overflow.contains(&AcdAction::Overflow {
        call: "c1".into(),
        uri: "sip:backoffice@127.0.0.1".into()
    }));
    assert_eq!(h.acd.agent_state("a2"), Some(AgentState::Available));
}

#[test]
fn queues_without_overflow_keep_waiting() {
    let mut h = Harness::new(config());
    let queued = h.queue("c1", "general", 0, false);
    assert!(queued.contains(&AcdAction::Waiting { call: "c1".into() }));
    assert!(
        !queued
            .iter()
            .any(|a| matches!(a, AcdAction::Overflow { .. }))
    );
    // The only timer is the next position announcement's.
    let timers: Vec<Instant> = queued
        .iter()
        .filter_map(|a| match a {
            AcdAction::StartTimer { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    assert_eq!(timers, [h.now + Duration::from_secs(30)]);
}

#[test]
fn leak_rings_any_free_agent_when_no_emergency_agent_is_free() {
    let mut h = Harness::new(config());
    h.available("a3");
    assert_eq!(
        offers(&h.queue("leak", "emergency", 255, true)),
        [("leak", "a3")]
    );

    let mut strict = config();
    strict.leak.any_agent = false;
    let mut h = Harness::new(strict);
    h.available("a3");
    assert_eq!(offers(&h.queue("leak", "emergency", 255, true)), []);
}

#[test]
fn caller_hang_up_removes_the_call_and_frees_the_agent() {
    let mut h = Harness::new(config());
    h.available("a3");
    h.queue("c1", "general", 0, false);
    h.queue("c2", "general", 0, false);
    h.tick(1);
    let actions = h.acd.handle(AcdEvent::CallerAbandoned {
        call: "c1".into(),
        now: h.now,
    });
    assert!(actions.contains(&AcdAction::CancelOffer {
        call: "c1".into(),
        agent: "a3".into()
    }));
    // The freed agent gets the next caller.
    assert_eq!(offers(&actions), [("c2", "a3")]);
    assert_eq!(h.acd.waiting_calls(), ["c2"]);
}

#[test]
fn agent_leaving_while_rung_returns_the_call() {
    let mut h = Harness::new(config());
    h.available("a3");
    h.queue("c1", "general", 0, false);
    h.tick(1);
    let actions = h.acd.handle(AcdEvent::AgentStateChanged {
        agent: "a3".into(),
        state: ReportedState::Offline,
        now: h.now,
    });
    assert!(actions.contains(&AcdAction::CancelOffer {
        call: "c1".into(),
        agent: "a3".into()
    }));
    assert_eq!(offers(&h.available("a2")), [("c1", "a2")]);
}

#[test]
fn validation_reports_every_problem() {
    let mut config = config();
    config.leak.on_call_uri = String::new();
    config.queues.get_mut("emergency").unwrap().category = crate::tickets::Category::Repair;
    config
        .agents
        .get_mut("a2")
        .unwrap()
        .queues
        .push("sales".into());
    config.agents.get_mut("a3").unwrap().uri = "1003".into();
    config
        .agents
        .get_mut("a1")
        .unwrap()
        .queues
        .retain(|q| q != "general");
    config
        .agents
        .get_mut("a2")
        .unwrap()
        .queues
        .retain(|q| q != "general");
    config.agents.get_mut("a3").unwrap().queues.clear();
    let paths: Vec<String> = validate(&config, "emergency")
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "acd.leak.on_call_uri",
            "acd.queues.emergency.category",
            "acd.queues.general",
            "acd.agents.a2.queues.1",
            "acd.agents.a3.uri",
        ]
    );
    assert_eq!(validate(&config, "dispatch")[1].path, "acd.queues");
}

#[test]
fn reload_keeps_waiting_calls_and_agent_states() {
    let mut h = Harness::new(config());
    h.available("a3");
    h.available("a2");
    h.queue("c1", "general", 0, false); // rings a3
    h.queue("c2", "billing", 0, false); // rings a2
    let mut reloaded = config();
    reloaded.agents.remove("a3");
    reloaded.agents.get_mut("a2").unwrap().uri = "sip:2002@127.0.0.1".into();
    h.tick(1);
    let actions = h.acd.reconfigure(Arc::new(reloaded), h.now);
    assert!(actions.contains(&AcdAction::CancelOffer {
        call: "c1".into(),
        agent: "a3".into()
    }));
    assert_eq!(h.acd.agent_state("a3"), None);
    assert_eq!(h.acd.agent_state("a2"), Some(AgentState::Ringing));
    assert_eq!(h.acd.waiting_calls(), ["c1", "c2"]);
    // The a2 offer stands; when a2 is free again c1 goes to the new URI.
    h.tick(1);
    let answered = h.acd.handle(AcdEvent::OfferAnswered {
        call: "c2".into(),
        agent: "a2".into(),
        now: h.now,
    });
    assert_eq!(offers(&answered), []);
    let free = h.available("a2");
    assert!(free.contains(&AcdAction::OfferToAgent {
        call: "c1".into(),
        agent: "a2".into(),
        uri: "sip:2002@127.0.0.1".into()
    }));
}

/// The `Position` announcements among `actions`: (call, ahead, wait).
fn positions(actions: &[AcdAction]) -> Vec<(&str, u32, Option<u32>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::Position {
                call,
                ahead,
                wait_minutes,
            } => Some((call.as_str(), *ahead, *wait_minutes)),
            _ => None,
        })
        .collect()
}

/// The announcement timer `actions` started (the last timer they started).
fn announce_timer(actions: &[AcdAction]) -> usize {
    let timers = actions
        .iter()
        .filter(|a| matches!(a, AcdAction::StartTimer { .. }))
        .count();
    timers - 1
}

mod fairness {
    use super::*;

    #[test]
    fn an_agent_takes_the_longest_waiting_caller_of_all_the_queues_they_serve() {
        let mut h = Harness::new(config());
        // a2 serves general and billing: the billing caller has waited longer.
        h.queue("billing-first", "billing", 0, false);
        h.queue("general-later", "general", 0, false);
        assert_eq!(h.acd.waiting_calls(), ["billing-first", "general-later"]);
        assert_eq!(offers(&h.available("a2")), [("billing-first", "a2")]);
        // a3 serves general only: the billing caller is not theirs to take.
        assert_eq!(offers(&h.available("a3")), [("general-later", "a3")]);
    }

    #[test]
    fn leak_first_then_priority_then_wait_across_queues() {
        let mut h = Harness::new(config());
        h.queue("old-billing", "billing", 0, false);
        h.queue("urgent-general", "general", 5, false);
        h.queue("leak", "emergency", 0, true);
        h.queue("new-billing", "billing", 0, false);
        assert_eq!(
            h.acd.waiting_calls(),
            ["leak", "urgent-general", "old-billing", "new-billing"]
        );
        // a2 does not serve the emergency queue, but leaks ring any free agent.
        assert_eq!(offers(&h.available("a2")), [("leak", "a2")]);
    }

    #[test]
    fn a_caller_moved_to_another_queue_keeps_the_time_already_waited() {
        let mut h = Harness::new(config());
        h.queue("c1", "general", 0, false);
        h.queue("c2", "billing", 0, false);
        // c1 moves to billing (e.g. a transfer to a queue): still ahead of c2.
        h.queue("c1", "billing", 0, false);
        assert_eq!(h.acd.waiting_calls(), ["c1", "c2"]);
        assert_eq!(offers(&h.available("a2")), [("c1", "a2")]);
    }

    #[test]
    fn a_failed_overflow_gives_the_caller_their_place_back() {
        let mut h = Harness::new(config());
        let queued = h.queue("c1", "billing", 0, false);
        h.queue("c2", "billing", 0, false);
        // c1's overflow timer (the first timer; no agent was rung).
        let overflow = h.fire(&queued, 0);
        assert!(overflow.contains(&AcdAction::Overflow {
            call: "c1".into(),
            uri: "sip:backoffice@127.0.0.1".into()
        }));
        assert_eq!(h.acd.waiting_calls(), ["c2"]);
        // The back office did not answer: the IVR queues c1 again, ahead of c2.
        h.queue("c1", "billing", 0, false);
        assert_eq!(h.acd.waiting_calls(), ["c1", "c2"]);
        // A caller who hangs up during the overflow is forgotten for good.
        let c3 = h.queue("c3", "billing", 0, false);
        h.fire(&c3, 0);
        h.acd.handle(AcdEvent::CallerAbandoned {
            call: "c3".into(),
            now: h.now,
        });
        h.queue("c3", "billing", 0, false);
        assert_eq!(h.acd.waiting_calls(), ["c1", "c2", "c3"]);
    }
}

mod positions {
    use super::*;

    #[test]
    fn announced_when_queued_then_every_interval() {
        let mut h = Harness::new(config());
        let first = h.queue("c1", "general", 0, false);
        let second = h.queue("c2", "general", 0, false);
        let third = h.queue("c3", "general", 0, false);
        assert_eq!(positions(&first), [("c1", 0, None)]);
        assert_eq!(positions(&second), [("c2", 1, None)]);
        assert_eq!(positions(&third), [("c3", 2, None)]);
        h.acd.handle(AcdEvent::CallerAbandoned {
            call: "c1".into(),
            now: h.now,
        });
        let next = h.fire(&third, announce_timer(&third));
        assert_eq!(positions(&next), [("c3", 1, None)]);
        // And again after the interval, with nothing changed.
        let again = h.fire(&next, 0);
        assert_eq!(positions(&again), [("c3", 1, None)]);
    }

    #[test]
    fn never_worse_than_the_last_announcement() {
        let mut h = Harness::new(config());
        h.queue("c1", "general", 0, false);
        let queued = h.queue("c2", "general", 0, false);
        assert_eq!(positions(&queued), [("c2", 1, None)]);
        // A leak call goes ahead of everyone: c2 is now third, which is not announced.
        h.queue("leak", "emergency", 255, true);
        let worse = h.fire(&queued, announce_timer(&queued));
        assert_eq!(positions(&worse), []);
        // The next timer is set all the same; once the leak is taken, c2 hears 1 again.
        h.acd.handle(AcdEvent::CallerAbandoned {
            call: "leak".into(),
            now: h.now,
        });
        let better = h.fire(&worse, 0);
        assert_eq!(positions(&better), [("c2", 1, None)]);
    }

    #[test]
    fn leak_callers_and_callers_being_rung_hear_no_position() {
        let mut h = Harness::new(config());
        let leak = h.queue("leak", "emergency", 255, true);
        assert_eq!(positions(&leak), []);
        // a3 takes the leak (any free agent does); a2 is free for the next caller.
        assert_eq!(offers(&h.available("a3")), [("leak", "a3")]);
        h.available("a2");
        let rung = h.queue("c1", "general", 0, false);
        assert_eq!(offers(&rung), [("c1", "a2")]);
        assert_eq!(positions(&rung), []);
    }

    #[test]
    fn only_callers_competing_for_the_same_agents_count() {
        let mut config = config();
        config.queues.insert(
            "meters".into(),
            toml::from_str("category = \"query\"").unwrap(),
        );
        config.agents.insert(
            "a4".into(),
            toml::from_str("uri = \"sip:1004@127.0.0.1\"\nqueues = [\"meters\"]").unwrap(),
        );
        let mut h = Harness::new(config);
        h.queue("g1", "general", 0, false);
        h.queue("b1", "billing", 0, false);
        let meters = h.queue("m1", "meters", 0, false);
        // a4 alone serves meters and nothing else: nobody is ahead of m1.
        assert_eq!(positions(&meters), [("m1", 0, None)]);
        // billing shares a2 with general: g1 is ahead of b2, and b1 too.
        let billing = h.queue("b2", "billing", 0, false);
        assert_eq!(positions(&billing), [("b2", 2, None)]);
    }

    #[test]
    fn estimated_wait_shares_the_calls_ahead_among_the_logged_in_agents() {
        let mut config = config();
        config.announce_estimated_wait = true;
        config.assumed_handle_secs = 120;
        let mut h = Harness::new(config);
        for agent in ["a1", "a2", "a3"] {
            h.acd.handle(AcdEvent::AgentStateChanged {
                agent: agent.into(),
                state: ReportedState::Busy,
                now: h.now,
            });
        }
        let mut last = Vec::new();
        for call in ["c1", "c2", "c3", "c4", "c5", "c6"] {
            last = h.queue(call, "general", 0, false);
        }
        // Six calls at 120 s each, three agents: 240 s.
        assert_eq!(positions(&last), [("c6", 5, Some(4))]);
        // Two agents log out: the estimate would grow to 12 minutes, but a caller is never
        // told a longer wait than before.
        for agent in ["a1", "a2"] {
            h.acd.handle(AcdEvent::AgentStateChanged {
                agent: agent.into(),
                state: ReportedState::Offline,
                now: h.now,
            });
        }
        let later = h.fire(&last, announce_timer(&last));
        assert_eq!(positions(&later), [("c6", 5, Some(4))]);
    }

    #[test]
    fn the_estimate_learns_the_handle_time_from_calls_that_ended() {
        let mut config = config();
        config.announce_estimated_wait = true;
        config.assumed_handle_secs = 600;
        let mut h = Harness::new(config);
        h.available("a3");
        h.queue("c1", "general", 0, false);
        h.acd.handle(AcdEvent::OfferAnswered {
            call: "c1".into(),
            agent: "a3".into(),
            now: h.now,
        });
        // A 60 s call.
        h.tick(59);
        h.available("a3");
        h.acd.handle(AcdEvent::AgentStateChanged {
            agent: "a3".into(),
            state: ReportedState::Busy,
            now: h.now,
        });
        h.queue("c2", "general", 0, false);
        let queued = h.queue("c3", "general", 0, false);
        // Two calls at 60 s with one agent logged in: 2 minutes, not 20.
        assert_eq!(positions(&queued), [("c3", 1, Some(2))]);
    }

    #[test]
    fn announcements_can_be_turned_off_and_are_validated() {
        let mut config = config();
        config.announce_every_secs = 0;
        let mut h = Harness::new(config.clone());
        let queued = h.queue("c1", "general", 0, false);
        assert_eq!(positions(&queued), []);
        assert_eq!(queued, [AcdAction::Waiting { call: "c1".into() }]);
        // Turned off by a reload: a waiting caller's next announcement does not come.
        let mut h = Harness::new(super::config());
        let queued = h.queue("c1", "general", 0, false);
        h.acd.reconfigure(Arc::new(config.clone()), h.now);
        assert_eq!(h.fire(&queued, announce_timer(&queued)), []);
        config.announce_every_secs = 3;
        config.assumed_handle_secs = 0;
        let paths: Vec<String> = validate(&config, "emergency")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            ["acd.announce_every_secs", "acd.assumed_handle_secs"]
        );
    }
}

impl Harness {
    /// A desktop transferred `call` (of `queue`) to `agent`.
    fn directed(&mut self, call: &str, agent: &str, queue: &str) -> Vec<AcdAction> {
        self.tick(1);
        self.acd.handle(AcdEvent::CallDirected {
            call: call.into(),
            agent: agent.into(),
            queue: queue.into(),
            priority: 3,
            leak: false,
            now: self.now,
        })
    }
}

#[test]
fn a_call_transferred_to_an_agent_rings_that_agent_alone_even_outside_their_queues() {
    let mut h = Harness::new(config());
    // a3 is idle longest, and billing is not a1's queue: the transfer names a1 all the same.
    h.available("a3");
    h.available("a1");
    assert_eq!(offers(&h.directed("t1", "a1", "billing")), [("t1", "a1")]);
    assert_eq!(h.acd.agent_state("a1"), Some(AgentState::Ringing));
    // a1 is being rung: another call goes to a3, never to a1.
    assert_eq!(offers(&h.queue("c1", "general", 9, false)), [("c1", "a3")]);
    let answered = h.acd.handle(AcdEvent::OfferAnswered {
        call: "t1".into(),
        agent: "a1".into(),
        now: h.now,
    });
    assert!(offers(&answered).is_empty());
    assert_eq!(h.acd.agent_state("a1"), Some(AgentState::Busy));
    assert!(!h.acd.waiting_calls().contains(&&"t1".to_owned()));
}

#[test]
fn a_transferred_call_its_agent_does_not_take_waits_in_its_queue_with_its_priority() {
    let mut h = Harness::new(config());
    h.available("a1");
    let rung = h.directed("t1", "a1", "general");
    assert_eq!(offers(&rung), [("t1", "a1")]);
    h.queue("c1", "general", 0, false);
    // Ring-out: a1 is set offline (the desk decides what next), the call waits for general,
    // ahead of c1 by its priority, and goes to the next free agent of general.
    let rang_out = h.fire(&rung, 0);
    assert!(rang_out.contains(&AcdAction::AgentSetOffline { agent: "a1".into() }));
    assert!(rang_out.contains(&AcdAction::CancelOffer {
        call: "t1".into(),
        agent: "a1".into()
    }));
    assert_eq!(h.acd.waiting_calls(), ["t1", "c1"]);
    assert_eq!(offers(&h.available("a3")), [("t1", "a3")]);
    // a1 back: c1 is theirs, t1 is no longer held for them.
    assert_eq!(offers(&h.available("a1")), [("c1", "a1")]);
}

#[test]
fn a_call_transferred_to_an_agent_who_is_not_free_waits_in_its_queue() {
    let mut h = Harness::new(config());
    // a2 is offline (the desk refuses such transfers; this is the race after its check).
    let actions = h.directed("t1", "a2", "general");
    assert!(offers(&actions).is_empty());
    assert!(actions.contains(&AcdAction::Waiting { call: "t1".into() }));
    // Any agent of general takes it, a2 included.
    assert_eq!(offers(&h.available("a3")), [("t1", "a3")]);
    // A busy phone (the offer rejected) also sends the call to its queue.
    let mut h = Harness::new(config());
    h.available("a1");
    h.directed("t2", "a1", "general");
    let rejected = h.acd.handle(AcdEvent::OfferRejected {
        call: "t2".into(),
        agent: "a1".into(),
        now: h.now,
    });
    assert!(offers(&rejected).is_empty());
    assert_eq!(offers(&h.available("a2")), [("t2", "a2")]);
}
