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
    // Both the ring and the overflow timer are cancelled.
    let started: Vec<AcdAction> = offered
        .iter()
        .filter_map(|a| match a {
            AcdAction::StartTimer { id, .. } => Some(AcdAction::CancelTimer { id: *id }),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 2);
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
    assert_eq!(queued, [AcdAction::Waiting { call: "c1".into() }]);
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
