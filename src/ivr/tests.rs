//! Tests of the IVR engine and its configuration, on a simulated clock.

use super::config::{IvrConfig, RecordingPolicy, TimeSlot, ValidationError, validate};
use super::engine::*;
use super::events::*;
use crate::tickets::Category;
use chrono::{DateTime, TimeZone};
use chrono_tz::{Asia::Shanghai, Tz};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub(crate) const CONFIG: &str = r#"
[leak]
digit = "1"
queue = "emergency"

[recording]
policy = "announce"

[calendar]
holidays = ["2026-10-01"]
make_up_workdays = ["2026-10-10"]

[business_hours]
mon = ["08:00-12:00", "13:00-19:00"]
tue = ["08:00-19:00"]
wed = ["08:00-19:00"]
thu = ["08:00-19:00"]
fri = ["08:00-19:00"]
sat = []
sun = []

[[shifts]]
name = "day"
start = "08:00"
end = "19:00"

[[shifts]]
name = "night"
start = "19:00"
end = "08:00"

[numbers.default]
flow = "main"
after_hours_flow = "night"
holiday_flow = "holiday"

[flows.main]
start = "check"
greeting = ["welcome"]

[flows.main.nodes.check]
kind = "open_ticket_check"
if_open = "status"
otherwise = "news"

[flows.main.nodes.status]
kind = "play"
prompts = ["ticket_status"]
next = "news"

[flows.main.nodes.news]
kind = "announcement"
next = "menu"

[flows.main.nodes.menu]
kind = "menu"
options = [
  { digit = "2", next = "account", label = "label_billing" },
  { digit = "3", next = "repair", label = "label_repair" },
  { digit = "4", next = "submenu", label = "label_consultation" },
  { digit = "0", next = "agent", label = "label_person" },
  { digit = "9", next = "bye", label = "goodbye" },
]
fallback = "agent"

[flows.main.nodes.submenu]
kind = "menu"
prompts = ["main_menu"]
options = [{ digit = "2", next = "agent" }]
fallback = "agent"

[flows.main.nodes.account]
kind = "collect"
prompts = ["enter_account"]
variable = "account"
min_len = 6
max_len = 10
next = "agent_query"
fallback = "agent"

[flows.main.nodes.agent_query]
kind = "queue"
queue = "general"
category = "query"
priority = 3

[flows.main.nodes.repair]
kind = "transfer"
uri = "sip:repair@127.0.0.1"
on_failure = "agent"

[flows.main.nodes.agent]
kind = "queue"
queue = "general"
category = "consultation"

[flows.main.nodes.bye]
kind = "hangup"

[flows.night]
start = "menu"
greeting = ["after_hours"]

[flows.night.nodes.menu]
kind = "menu"
options = [{ digit = "0", next = "agent", label = "label_person" }]
fallback = "agent"

[flows.night.nodes.agent]
kind = "queue"
queue = "general"
category = "consultation"

[flows.holiday]
start = "agent"

[flows.holiday.nodes.agent]
kind = "queue"
queue = "general"
category = "consultation"
"#;

pub(crate) fn prompts() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [
        "welcome",
        "recording_notice",
        "recording_opt_out",
        "recording_opt_in",
        "main_menu",
        "invalid_input",
        "no_input",
        "transfer_agent",
        "leak_safety_advice",
        "leak_connecting",
        "queue_wait",
        "enter_account",
        "ticket_status",
        "outage_generic",
        "goodbye",
        "after_hours",
        "press_key",
        "label_leak",
        "label_repair",
        "label_billing",
        "label_consultation",
        "label_person",
        "entry_done",
        "digit_star",
        "digit_hash",
        "survey_intro",
        "label_satisfied",
        "label_basically_satisfied",
        "label_unsatisfied",
        "survey_thanks",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    names.extend((0..10).map(|d| format!("digit_{d}")));
    names.extend(super::position::announcement_prompts());
    names
}

pub(crate) fn queues() -> BTreeSet<String> {
    ["emergency", "general"]
        .into_iter()
        .map(String::from)
        .collect()
}

pub(crate) fn config() -> IvrConfig {
    toml::from_str(CONFIG).unwrap()
}

/// The menu node `name` of the sample's `main` flow, to change in a test.
fn menu_mut<'c>(config: &'c mut IvrConfig, name: &str) -> &'c mut super::config::Menu {
    match config.flows.get_mut("main").unwrap().nodes.get_mut(name) {
        Some(super::config::Node::Menu(menu)) => menu,
        _ => panic!("no menu node {name}"),
    }
}

/// The sample's key entry (`main` flow, node `account`), to change in a test.
fn account_mut(config: &mut IvrConfig) -> &mut super::config::Collect {
    match config
        .flows
        .get_mut("main")
        .unwrap()
        .nodes
        .get_mut("account")
    {
        Some(super::config::Node::Collect(collect)) => collect,
        _ => panic!("no collect node account"),
    }
}

/// Names keys by their path alone (the config loader adds file lines).
pub(crate) fn locate(key: &str) -> String {
    key.to_owned()
}

/// Only the errors of a validation, warnings left out.
pub(crate) fn errors_of(found: Vec<ValidationError>) -> Vec<ValidationError> {
    found.into_iter().filter(|e| !e.is_warning()).collect()
}

/// What the sample's main menu says: the leak key first, then each option in order.
fn main_menu_spoken() -> Vec<String> {
    names(&[
        "label_leak",
        "press_key",
        "digit_1",
        "label_billing",
        "press_key",
        "digit_2",
        "label_repair",
        "press_key",
        "digit_3",
        "label_consultation",
        "press_key",
        "digit_4",
        "label_person",
        "press_key",
        "digit_0",
        "goodbye",
        "press_key",
        "digit_9",
    ])
}

/// Monday 2026-11-23, 10:00 in Shanghai: business hours, day shift.
fn monday_morning() -> DateTime<Tz> {
    Shanghai.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn info(at: DateTime<Tz>) -> CallInfo {
    CallInfo {
        call_id: "call-1".into(),
        did: "956100".into(),
        caller: "13812341234".into(),
        local_time: at,
        has_open_ticket: false,
        announcements: Vec::new(),
        special_group: None,
    }
}

struct Harness {
    call: CallEngine,
    now: Instant,
}

impl Harness {
    fn new(config: IvrConfig) -> Harness {
        Harness {
            call: CallEngine::new(Arc::new(config)),
            now: Instant::now(),
        }
    }
    fn answer(&mut self, info: CallInfo) -> Vec<Action> {
        self.call.handle(Event::Answered {
            info,
            now: self.now,
        })
    }
    fn key(&mut self, digit: char) -> Vec<Action> {
        self.now += Duration::from_millis(300);
        self.call.handle(Event::Digit {
            digit,
            now: self.now,
        })
    }
    fn keys(&mut self, digits: &str) -> Vec<Action> {
        digits.chars().flat_map(|d| self.key(d)).collect()
    }
    /// Lets the playback in `actions` run to its end.
    fn finish(&mut self, actions: &[Action]) -> Vec<Action> {
        let (id, _) = played(actions).expect("a playback to finish");
        self.now += Duration::from_secs(4);
        self.call
            .handle(Event::PromptFinished { id, now: self.now })
    }
    /// Fires the timer set in `actions`, at its time.
    fn fire(&mut self, actions: &[Action]) -> Vec<Action> {
        let (id, at) = timer_set(actions).expect("a timer to fire");
        self.now = at;
        self.call.handle(Event::TimerFired { id, now: self.now })
    }
    fn event(&mut self, make: impl FnOnce(Instant) -> Event) -> Vec<Action> {
        self.now += Duration::from_secs(1);
        self.call.handle(make(self.now))
    }
    /// Answers on Monday morning and listens to the intro; returns the first menu's actions.
    fn reach_main_menu(&mut self) -> Vec<Action> {
        let intro = self.answer(info(monday_morning()));
        self.finish(&intro)
    }
}

fn played(actions: &[Action]) -> Option<(PlaybackId, Vec<String>)> {
    actions.iter().rev().find_map(|a| match a {
        Action::Play { id, prompts, .. } => Some((*id, prompts.clone())),
        _ => None,
    })
}

fn prompts_of(actions: &[Action]) -> Vec<String> {
    played(actions).map(|(_, p)| p).unwrap_or_default()
}

fn timer_set(actions: &[Action]) -> Option<(TimerId, Instant)> {
    actions.iter().rev().find_map(|a| match a {
        Action::SetTimer { id, at } => Some((*id, *at)),
        _ => None,
    })
}

fn enqueued(actions: &[Action]) -> Option<(String, u8, bool, Category)> {
    actions.iter().find_map(|a| match a {
        Action::Enqueue {
            queue,
            priority,
            leak,
            category,
            ..
        } => Some((queue.clone(), *priority, *leak, *category)),
        _ => None,
    })
}

fn consent(actions: &[Action]) -> Option<(ConsentDecision, ConsentHow)> {
    actions.iter().find_map(|a| match a {
        Action::RecordConsent(r) => Some((r.decision, r.how)),
        _ => None,
    })
}

fn has(actions: &[Action], wanted: &Action) -> bool {
    actions.contains(wanted)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The whole leak reaction, wherever it starts.
fn assert_leak(actions: &[Action]) {
    assert!(has(actions, &Action::PriorityCall), "{actions:?}");
    assert_eq!(
        enqueued(actions),
        Some(("emergency".into(), LEAK_PRIORITY, true, Category::Leak))
    );
    assert!(has(
        actions,
        &Action::Ticket(TicketUpdate::SetCategory {
            category: Category::Leak,
            top_priority: true
        })
    ));
    assert_eq!(
        prompts_of(actions),
        names(&["leak_connecting", "leak_safety_advice"])
    );
    // Queued before anything else is said: the ACD can ring an agent at once.
    let enqueue_at = actions
        .iter()
        .position(|a| matches!(a, Action::Enqueue { .. }));
    let play_at = actions
        .iter()
        .position(|a| matches!(a, Action::Play { .. }));
    assert!(enqueue_at < play_at);
    assert!(!actions.iter().any(|a| matches!(a, Action::HangUp)));
}

#[test]
fn sample_config_is_valid_and_warns_only_about_its_recorded_submenu() {
    let found = validate(&config(), &prompts(), &queues(), &locate);
    let paths: Vec<(&str, bool)> = found
        .iter()
        .map(|e| (e.path.as_str(), e.is_warning()))
        .collect();
    assert_eq!(paths, [("ivr.flows.main.nodes.submenu.prompts", true)]);
    assert!(found[0].message.contains("cannot be checked"));
}

#[test]
fn answer_creates_a_draft_ticket_and_plays_greeting_with_notice() {
    let mut h = Harness::new(config());
    let actions = h.answer(info(monday_morning()));
    assert_eq!(
        actions[0],
        Action::Ticket(TicketUpdate::CreateDraft {
            call_id: "call-1".into(),
            caller: "13812341234".into(),
            called: "956100".into(),
            started_at: monday_morning(),
            flow: "main".into(),
        })
    );
    assert_eq!(
        prompts_of(&actions),
        names(&[
            "welcome",
            "label_leak",
            "press_key",
            "digit_1",
            "recording_notice"
        ])
    );
    assert!(!h.call.is_recording());
}

#[test]
fn leak_digit_in_the_first_frame_of_the_greeting() {
    let mut h = Harness::new(config());
    h.answer(info(monday_morning()));
    // Same instant as the answer: the first syllable of the first prompt.
    let actions = h.call.handle(Event::Digit {
        digit: '1',
        now: h.now,
    });
    assert_eq!(actions[0], Action::StopPlayback);
    assert_leak(&actions);
    assert_eq!(
        consent(&actions),
        Some((ConsentDecision::Given, ConsentHow::LeakDefault))
    );
    assert!(has(&actions, &Action::StartRecording));
    assert!(h.call.is_priority());
}

#[test]
fn leak_digit_during_the_consent_notice() {
    let mut config = config();
    config.flows.get_mut("main").unwrap().greeting.clear();
    config.recording.policy = RecordingPolicy::OptOut;
    let mut h = Harness::new(config);
    let intro = h.answer(info(monday_morning()));
    assert_eq!(
        prompts_of(&intro),
        names(&[
            "recording_notice",
            "recording_opt_out",
            "press_key",
            "digit_9"
        ])
    );
    let actions = h.key('1');
    assert_leak(&actions);
    assert_eq!(
        consent(&actions),
        Some((ConsentDecision::Given, ConsentHow::LeakDefault))
    );
}

#[test]
fn leak_call_not_recorded_when_configured_so() {
    let mut config = config();
    config.recording.record_leak_calls = false;
    let mut h = Harness::new(config);
    h.answer(info(monday_morning()));
    let actions = h.key('1');
    assert_leak(&actions);
    assert_eq!(
        consent(&actions),
        Some((ConsentDecision::NotAsked, ConsentHow::LeakDefault))
    );
    assert!(!has(&actions, &Action::StartRecording));
}

#[test]
fn leak_digit_at_every_menu_level() {
    // Main menu, while it plays and after it (waiting for a key).
    let mut h = Harness::new(config());
    h.reach_main_menu();
    assert_eq!(h.call.current_node(), Some("menu"));
    assert_leak(&h.key('1'));

    let mut h = Harness::new(config());
    let menu = h.reach_main_menu();
    let after_prompt = h.finish(&menu);
    let actions = h.key('1');
    assert!(has(
        &actions,
        &Action::CancelTimer {
            id: timer_set(&after_prompt).unwrap().0
        }
    ));
    assert_leak(&actions);

    // Submenu.
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('4');
    assert_eq!(h.call.current_node(), Some("submenu"));
    assert_leak(&h.key('1'));
}

#[test]
fn leak_digit_while_waiting_in_a_general_queue_moves_the_call() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('0');
    let actions = h.key('1');
    assert_eq!(actions[0], Action::Dequeue);
    assert_leak(&actions);
}

#[test]
fn leak_digit_in_collect_only_alone() {
    // "1#" at the account prompt: the leak.
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('2');
    assert_eq!(h.call.current_node(), Some("account"));
    assert_leak(&h.keys("1#"));

    // "1" then silence: the leak as well.
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('2');
    let one = h.key('1');
    assert!(
        enqueued(&one).is_none(),
        "a lone 1 may still start an account"
    );
    assert_leak(&h.fire(&one));

    // An account that starts with the leak digit is an account.
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('2');
    let actions = h.keys("1234567#");
    assert!(has(
        &actions,
        &Action::Ticket(TicketUpdate::Variable {
            name: "account".into(),
            value: "1234567".into()
        })
    ));
    assert_eq!(
        enqueued(&actions),
        Some(("general".into(), 3, false, Category::Query))
    );
    assert!(!h.call.is_priority());
}

#[test]
fn collect_ends_at_max_length_and_retries_short_entries() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('2');
    let actions = h.keys("9876543210");
    assert!(has(
        &actions,
        &Action::Ticket(TicketUpdate::Variable {
            name: "account".into(),
            value: "9876543210".into()
        })
    ));

    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('2');
    let actions = h.keys("123#");
    assert_eq!(
        prompts_of(&actions),
        names(&[
            "invalid_input",
            "enter_account",
            "entry_done",
            "press_key",
            "digit_hash"
        ])
    );
    assert_eq!(h.call.current_node(), Some("account"));
    // Silence twice more: retries (2) run out, the caller reaches a person.
    let again = h.finish(&actions);
    let again = h.fire(&again);
    assert_eq!(
        prompts_of(&again),
        names(&[
            "no_input",
            "enter_account",
            "entry_done",
            "press_key",
            "digit_hash"
        ])
    );
    let waiting = h.finish(&again);
    let last = h.fire(&waiting);
    assert_eq!(
        enqueued(&last),
        Some(("general".into(), 0, false, Category::Consultation))
    );
}

#[test]
fn menu_timeout_and_wrong_key_repeat_then_fallback_reaches_a_person() {
    let mut h = Harness::new(config());
    let menu = h.reach_main_menu();
    let waiting = h.finish(&menu);
    let (_, at) = timer_set(&waiting).unwrap();
    assert_eq!(at, h.now + Duration::from_secs(5));
    let repeat = h.fire(&waiting);
    assert_eq!(
        prompts_of(&repeat),
        [names(&["no_input"]), main_menu_spoken()].concat()
    );
    let repeat = h.key('7');
    assert!(has(&repeat, &Action::StopPlayback));
    assert_eq!(
        prompts_of(&repeat),
        [names(&["invalid_input"]), main_menu_spoken()].concat()
    );
    let fallback = h.key('8');
    assert!(has(
        &fallback,
        &Action::Ticket(TicketUpdate::PathStep {
            node: "menu".into(),
            input: Some("retries_exhausted".into())
        })
    ));
    assert_eq!(
        enqueued(&fallback),
        Some(("general".into(), 0, false, Category::Consultation))
    );
    assert!(!fallback.iter().any(|a| matches!(a, Action::HangUp)));
}

#[test]
fn stale_prompt_finished_and_timer_are_ignored() {
    let mut h = Harness::new(config());
    let menu = h.reach_main_menu();
    let old = played(&menu).unwrap().0;
    h.key('7'); // invalid: new playback
    let actions = h.event(|now| Event::PromptFinished { id: old, now });
    assert!(actions.is_empty());
    let actions = h.event(|now| Event::TimerFired {
        id: TimerId(9999),
        now,
    });
    assert!(actions.is_empty());
}

#[test]
fn announcements_play_before_the_first_menu() {
    let mut h = Harness::new(config());
    let mut call = info(monday_morning());
    call.announcements = vec!["outage_generic".into()];
    let intro = h.answer(call);
    let news = h.finish(&intro);
    assert_eq!(prompts_of(&news), names(&["outage_generic"]));
    let menu = h.finish(&news);
    assert_eq!(prompts_of(&menu), main_menu_spoken());

    // A flow without an announcement node: injected into the menu's playback.
    let mut config = config();
    config.flows.get_mut("main").unwrap().start = "menu".into();
    let mut h = Harness::new(config);
    let mut call = info(monday_morning());
    call.announcements = vec!["outage_generic".into()];
    let intro = h.answer(call);
    let menu = h.finish(&intro);
    assert_eq!(
        prompts_of(&menu),
        [names(&["outage_generic"]), main_menu_spoken()].concat()
    );
}

#[test]
fn open_ticket_check_branches() {
    let mut h = Harness::new(config());
    let mut call = info(monday_morning());
    call.has_open_ticket = true;
    let intro = h.answer(call);
    let status = h.finish(&intro);
    assert_eq!(prompts_of(&status), names(&["ticket_status"]));
    assert!(has(
        &status,
        &Action::Ticket(TicketUpdate::PathStep {
            node: "check".into(),
            input: Some("open_ticket".into())
        })
    ));
    let menu = h.finish(&status);
    assert_eq!(prompts_of(&menu), main_menu_spoken());

    let mut h = Harness::new(config());
    let menu = h.reach_main_menu();
    assert_eq!(prompts_of(&menu), main_menu_spoken());
}

#[test]
fn queue_node_waits_loops_and_bridges() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let queued = h.key('0');
    assert!(has(
        &queued,
        &Action::Ticket(TicketUpdate::SetCategory {
            category: Category::Consultation,
            top_priority: false
        })
    ));
    assert_eq!(
        prompts_of(&queued),
        names(&["transfer_agent", "queue_wait"])
    );
    let again = h.finish(&queued);
    assert_eq!(prompts_of(&again), names(&["queue_wait"]));
    let offered = h.event(|now| Event::Queue {
        result: QueueResult::Offered {
            agent: "1001".into(),
        },
        now,
    });
    assert!(offered.is_empty());
    let bridged = h.event(|now| Event::AgentAnswered {
        agent: "1001".into(),
        now,
    });
    assert_eq!(
        bridged,
        vec![
            Action::StopPlayback,
            Action::Bridge {
                agent: "1001".into()
            }
        ]
    );
}

#[test]
fn transfer_node_and_its_failure() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let actions = h.key('3');
    assert!(has(
        &actions,
        &Action::Transfer {
            uri: "sip:repair@127.0.0.1".into()
        }
    ));
    let failed = h.event(|now| Event::TransferFailed { now });
    assert_eq!(
        enqueued(&failed),
        Some(("general".into(), 0, false, Category::Consultation))
    );

    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('3');
    assert!(h.event(|now| Event::TransferAnswered { now }).is_empty());
    assert!(!h.call.is_ended());
}

#[test]
fn hangup_node_says_goodbye_then_hangs_up() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let bye = h.key('9');
    assert_eq!(prompts_of(&bye), names(&["goodbye"]));
    assert!(!bye.iter().any(|a| matches!(a, Action::HangUp)));
    let end = h.finish(&bye);
    assert_eq!(end[0], Action::StopRecording);
    assert!(matches!(
        end[1],
        Action::Ticket(TicketUpdate::CallEnded { .. })
    ));
    assert_eq!(end.last(), Some(&Action::HangUp));
    assert!(h.call.is_ended());
}

#[test]
fn leak_path_never_gives_up() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    let leak = h.key('1');
    // Safety advice loops while the queue is tried.
    let advice = h.finish(&leak);
    assert_eq!(prompts_of(&advice), names(&["leak_safety_advice"]));
    let advice = h.finish(&advice);
    assert_eq!(prompts_of(&advice), names(&["leak_safety_advice"]));
    // The ACD overflows to the on-call dispatcher; the advice keeps playing meanwhile.
    let transfer = h.event(|now| Event::Queue {
        result: QueueResult::Overflow {
            uri: "sip:oncall@127.0.0.1".into(),
        },
        now,
    });
    assert_eq!(
        transfer,
        vec![Action::Transfer {
            uri: "sip:oncall@127.0.0.1".into()
        }]
    );
    let advice = h.finish(&advice);
    assert_eq!(prompts_of(&advice), names(&["leak_safety_advice"]));
    // On-call unreachable: back into the emergency queue, never a hang-up.
    let retry = h.event(|now| Event::TransferFailed { now });
    assert_eq!(
        enqueued(&retry),
        Some(("emergency".into(), LEAK_PRIORITY, true, Category::Leak))
    );
    assert!(!retry.iter().any(|a| matches!(a, Action::HangUp)));
    // Other keys do nothing now; the on-call answering connects the caller.
    assert!(h.key('1').is_empty());
    h.event(|now| Event::Queue {
        result: QueueResult::Overflow {
            uri: "sip:oncall@127.0.0.1".into(),
        },
        now,
    });
    let answered = h.event(|now| Event::TransferAnswered { now });
    assert_eq!(answered, vec![Action::StopPlayback]);
}

#[test]
fn caller_hang_up_leaves_the_queue_and_closes_the_ticket() {
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('0');
    let actions = h.event(|now| Event::CallerHungUp { now });
    assert_eq!(actions[0], Action::Dequeue);
    assert!(has(&actions, &Action::StopRecording));
    assert!(matches!(
        actions.last(),
        Some(Action::Ticket(TicketUpdate::CallEnded { .. }))
    ));
    assert!(h.call.is_ended());
}

#[test]
fn consent_announce_is_given_by_staying_on_the_line() {
    let mut h = Harness::new(config());
    let intro = h.answer(info(monday_morning()));
    // Ordinary keys do not skip the notice.
    assert!(h.key('5').is_empty());
    let after = h.finish(&intro);
    assert_eq!(
        consent(&after),
        Some((ConsentDecision::Given, ConsentHow::StayedOnLine))
    );
    assert!(has(&after, &Action::StartRecording));
    let Some(Action::RecordConsent(record)) =
        after.iter().find(|a| matches!(a, Action::RecordConsent(_)))
    else {
        panic!("no consent record")
    };
    // 300 ms key + 4 s playback after answer.
    assert_eq!(
        record.at,
        monday_morning() + chrono::TimeDelta::milliseconds(4300)
    );
}

#[test]
fn consent_opt_out_refused_by_key_or_given_by_silence() {
    let mut config = config();
    config.recording.policy = RecordingPolicy::OptOut;
    let mut h = Harness::new(config.clone());
    let intro = h.answer(info(monday_morning()));
    assert_eq!(
        prompts_of(&intro),
        names(&[
            "welcome",
            "label_leak",
            "press_key",
            "digit_1",
            "recording_notice",
            "recording_opt_out",
            "press_key",
            "digit_9"
        ])
    );
    let refused = h.key('9');
    assert_eq!(
        consent(&refused),
        Some((ConsentDecision::Refused, ConsentHow::PressedDigit))
    );
    assert!(!has(&refused, &Action::StartRecording));
    assert_eq!(prompts_of(&refused), main_menu_spoken());
    // Hanging up later stops no recording that never started.
    let end = h.event(|now| Event::CallerHungUp { now });
    assert!(!has(&end, &Action::StopRecording));

    let mut h = Harness::new(config);
    let intro = h.answer(info(monday_morning()));
    let window = h.finish(&intro);
    assert_eq!(
        timer_set(&window).unwrap().1,
        h.now + Duration::from_secs(3)
    );
    let given = h.fire(&window);
    assert_eq!(
        consent(&given),
        Some((ConsentDecision::Given, ConsentHow::StayedOnLine))
    );
    assert!(has(&given, &Action::StartRecording));
}

#[test]
fn consent_opt_in_needs_a_key() {
    let mut config = config();
    config.recording.policy = RecordingPolicy::OptIn;
    let mut h = Harness::new(config.clone());
    let intro = h.answer(info(monday_morning()));
    assert_eq!(
        prompts_of(&intro),
        names(&[
            "welcome",
            "label_leak",
            "press_key",
            "digit_1",
            "recording_notice",
            "recording_opt_in",
            "press_key",
            "digit_2"
        ])
    );
    let window = h.finish(&intro);
    let given = h.key('2');
    assert!(has(
        &given,
        &Action::CancelTimer {
            id: timer_set(&window).unwrap().0
        }
    ));
    assert_eq!(
        consent(&given),
        Some((ConsentDecision::Given, ConsentHow::PressedDigit))
    );
    assert!(has(&given, &Action::StartRecording));

    let mut h = Harness::new(config);
    let intro = h.answer(info(monday_morning()));
    let window = h.finish(&intro);
    let silent = h.fire(&window);
    assert_eq!(
        consent(&silent),
        Some((ConsentDecision::Refused, ConsentHow::NoResponse))
    );
    assert!(!has(&silent, &Action::StartRecording));
    assert!(!h.call.is_recording());
}

#[test]
fn consent_off_is_not_asked() {
    let mut config = config();
    config.recording.policy = RecordingPolicy::Off;
    let mut h = Harness::new(config);
    let actions = h.answer(info(monday_morning()));
    assert_eq!(
        consent(&actions),
        Some((ConsentDecision::NotAsked, ConsentHow::PolicyOff))
    );
    assert_eq!(
        prompts_of(&actions),
        names(&["welcome", "label_leak", "press_key", "digit_1"])
    );
    let menu = h.finish(&actions);
    assert_eq!(prompts_of(&menu), main_menu_spoken());
    // A leak under `off` is still not recorded.
    let leak = h.key('1');
    assert_leak(&leak);
    assert!(!has(&leak, &Action::StartRecording));
}

fn flow_at(config: &IvrConfig, at: DateTime<Tz>) -> (String, TimeSlot) {
    let choice = config.select_flow("956100", at.naive_local()).unwrap();
    (choice.flow, choice.slot)
}

#[test]
fn flow_selection_by_weekday_weekend_holiday_and_make_up_day() {
    let config = config();
    let at = |m, d, h, min| Shanghai.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap();
    let day = TimeSlot::BusinessHours {
        shift: Some("day".into()),
    };
    assert_eq!(
        flow_at(&config, at(11, 23, 10, 0)),
        ("main".into(), day.clone())
    );
    // Monday's lunch break and the evening are after hours; the line still answers.
    assert_eq!(flow_at(&config, at(11, 23, 12, 30)).0, "night");
    assert_eq!(flow_at(&config, at(11, 23, 19, 0)).0, "night");
    assert_eq!(flow_at(&config, at(11, 23, 7, 59)).0, "night");
    // Saturday has no business hours.
    assert_eq!(
        flow_at(&config, at(11, 28, 10, 0)),
        ("night".into(), TimeSlot::AfterHours)
    );
    // A Thursday holiday.
    assert_eq!(
        flow_at(&config, at(10, 1, 10, 0)),
        ("holiday".into(), TimeSlot::Holiday)
    );
    // A Saturday make-up working day uses Monday's hours.
    assert_eq!(flow_at(&config, at(10, 10, 10, 0)), ("main".into(), day));
    assert_eq!(flow_at(&config, at(10, 10, 12, 30)).0, "night");
}

#[test]
fn flow_selection_by_shift_crossing_midnight() {
    let mut config = config();
    config.business_hours = Default::default(); // staffed around the clock
    let entry = config.numbers.get_mut("default").unwrap();
    entry.shift_flows.insert("night".into(), "night".into());
    let at = |d, h, min| Shanghai.with_ymd_and_hms(2026, 11, d, h, min, 0).unwrap();
    let night = TimeSlot::BusinessHours {
        shift: Some("night".into()),
    };
    assert_eq!(
        flow_at(&config, at(23, 23, 30)),
        ("night".into(), night.clone())
    );
    assert_eq!(
        flow_at(&config, at(24, 2, 0)),
        ("night".into(), night.clone())
    );
    assert_eq!(flow_at(&config, at(24, 7, 59)), ("night".into(), night));
    assert_eq!(flow_at(&config, at(24, 8, 0)).0, "main");
    assert_eq!(flow_at(&config, at(24, 18, 59)).0, "main");
    // The engine uses the same choice.
    let mut h = Harness::new(config);
    let intro = h.answer(info(at(24, 2, 0)));
    assert_eq!(
        prompts_of(&intro),
        names(&[
            "after_hours",
            "label_leak",
            "press_key",
            "digit_1",
            "recording_notice"
        ])
    );
    assert_eq!(h.call.flow().unwrap().flow, "night");
}

#[test]
fn unknown_did_uses_the_default_entry() {
    let mut config = config();
    let special = config.numbers["default"].clone();
    config.numbers.insert("96511".into(), special);
    config.numbers.get_mut("96511").unwrap().flow = "holiday".into();
    let local = monday_morning().naive_local();
    assert_eq!(config.select_flow("96511", local).unwrap().flow, "holiday");
    let other = config.select_flow("12345", local).unwrap();
    assert_eq!(
        (other.number.as_str(), other.flow.as_str()),
        ("default", "main")
    );
}

#[test]
fn reload_never_changes_a_call_in_progress() {
    let live: RwLock<Arc<IvrConfig>> = RwLock::new(Arc::new(config()));
    let now = Instant::now();
    let mut old_call = CallEngine::new(Arc::clone(&live.read().unwrap()));
    let intro = old_call.handle(Event::Answered {
        info: info(monday_morning()),
        now,
    });
    let (id, _) = played(&intro).unwrap();
    old_call.handle(Event::PromptFinished { id, now });

    // Reload: key 0 now hangs up instead of queueing.
    let mut changed = config();
    let Some(super::config::Node::Menu(menu)) =
        changed.flows.get_mut("main").unwrap().nodes.get_mut("menu")
    else {
        panic!("menu node")
    };
    menu.options
        .iter_mut()
        .find(|o| o.digit.as_char() == '0')
        .unwrap()
        .next = "bye".into();
    *live.write().unwrap() = Arc::new(changed);

    let old = old_call.handle(Event::Digit { digit: '0', now });
    assert_eq!(
        enqueued(&old),
        Some(("general".into(), 0, false, Category::Consultation))
    );

    let mut new_call = CallEngine::new(Arc::clone(&live.read().unwrap()));
    let intro = new_call.handle(Event::Answered {
        info: info(monday_morning()),
        now,
    });
    let (id, _) = played(&intro).unwrap();
    new_call.handle(Event::PromptFinished { id, now });
    let new = new_call.handle(Event::Digit { digit: '0', now });
    assert_eq!(prompts_of(&new), names(&["goodbye"]));
    assert!(!Arc::ptr_eq(old_call.config(), new_call.config()));
}

mod validation {
    use super::super::config::{Digit, MenuOption, Node, ValidationError, validate};
    use super::*;

    fn node(toml_text: &str) -> Node {
        toml::from_str(toml_text).unwrap()
    }

    fn errors_for(config: &IvrConfig) -> Vec<ValidationError> {
        errors_of(validate(config, &prompts(), &queues(), &locate))
    }

    fn paths(errors: &[ValidationError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    fn main_menu(config: &mut IvrConfig) -> &mut super::super::config::Menu {
        menu_mut(config, "menu")
    }

    fn option(digit: char, next: &str) -> MenuOption {
        MenuOption {
            digit: Digit::new(digit).unwrap(),
            next: next.into(),
            label: Some("label_person".into()),
        }
    }

    #[test]
    fn unknown_node() {
        let mut config = config();
        main_menu(&mut config).options.push(option('5', "nowhere"));
        let errors = errors_for(&config);
        assert_eq!(paths(&errors), ["ivr.flows.main.nodes.menu.options.5.next"]);
        assert!(errors[0].message.contains("\"nowhere\" does not exist"));
    }

    #[test]
    fn unknown_queue() {
        let mut config = config();
        config.flows.get_mut("holiday").unwrap().nodes.insert(
            "agent".into(),
            node("kind = \"queue\"\nqueue = \"billing\"\ncategory = \"query\""),
        );
        config.leak.queue = "dispatch".into();
        let errors = errors_for(&config);
        assert_eq!(
            paths(&errors),
            ["ivr.leak.queue", "ivr.flows.holiday.nodes.agent.queue"]
        );
    }

    #[test]
    fn unreachable_node() {
        let mut config = config();
        config
            .flows
            .get_mut("night")
            .unwrap()
            .nodes
            .insert("orphan".into(), node("kind = \"hangup\""));
        let errors = errors_for(&config);
        assert_eq!(paths(&errors), ["ivr.flows.night.nodes.orphan"]);
        assert!(errors[0].message.contains("no path from the start node"));
    }

    #[test]
    fn missing_prompt_file() {
        let mut config = config();
        let Some(Node::Menu(submenu)) = config
            .flows
            .get_mut("main")
            .unwrap()
            .nodes
            .get_mut("submenu")
        else {
            panic!("submenu")
        };
        submenu.prompts.push("main_menu_v2".into());
        let mut available = prompts();
        available.remove("leak_safety_advice");
        available.remove("digit_3");
        let errors = errors_of(validate(&config, &available, &queues(), &locate));
        // digit_3 is spoken by counts (queue positions), the survey's third key and a menu
        // option's key: each use is named.
        assert_eq!(
            paths(&errors),
            [
                "ivr",
                "ivr",
                "ivr.survey.unsatisfied.digit",
                "ivr.flows.main.nodes.menu.options.1",
                "ivr.flows.main.nodes.submenu.prompts.1"
            ]
        );
        assert!(
            errors[0]
                .message
                .contains("sounds/zh-CN/leak_safety_advice.wav")
        );
        for error in &errors[1..4] {
            assert!(
                error.message.contains("sounds/zh-CN/digit_3.wav"),
                "{error}"
            );
        }
        assert!(errors[4].message.contains("sounds/zh-CN/main_menu_v2.wav"));
    }

    #[test]
    fn digit_used_twice_in_one_menu() {
        let mut config = config();
        main_menu(&mut config).options.push(option('3', "agent"));
        let errors = errors_for(&config);
        assert_eq!(paths(&errors), ["ivr.flows.main.nodes.menu.options.5"]);
        assert!(
            errors[0]
                .message
                .contains("also a menu option at ivr.flows.main.nodes.menu.options.1"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn leak_digit_reused_in_a_menu() {
        let mut config = config();
        main_menu(&mut config).options.push(option('1', "agent"));
        let errors = errors_for(&config);
        assert_eq!(paths(&errors), ["ivr.flows.main.nodes.menu.options.5"]);
        assert!(
            errors[0]
                .message
                .contains("also the leak key at ivr.leak.digit"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn loop_with_no_way_out() {
        let mut config = config();
        let nodes = &mut config.flows.get_mut("main").unwrap().nodes;
        nodes.insert(
            "a".into(),
            node("kind = \"play\"\nprompts = [\"welcome\"]\nnext = \"b\""),
        );
        nodes.insert("b".into(), node("kind = \"announcement\"\nnext = \"a\""));
        main_menu(&mut config).options.push(option('5', "a"));
        let errors = errors_for(&config);
        assert_eq!(
            paths(&errors),
            ["ivr.flows.main.nodes.a", "ivr.flows.main.nodes.b"]
        );
        assert!(errors[0].message.contains("loop with no way out"));
    }

    #[test]
    fn menu_fallback_must_reach_a_person() {
        let mut config = config();
        main_menu(&mut config).fallback = "bye".into();
        let errors = errors_for(&config);
        assert_eq!(paths(&errors), ["ivr.flows.main.nodes.menu.fallback"]);
    }

    #[test]
    fn number_without_flow() {
        let mut config = config();
        let mut entry = config.numbers.remove("default").unwrap();
        entry.flow = String::new();
        entry.holiday_flow = Some("christmas".into());
        entry.shift_flows.insert("evening".into(), "night".into());
        config.numbers.insert("956100".into(), entry);
        let errors = errors_for(&config);
        assert_eq!(
            paths(&errors),
            [
                "ivr.numbers",
                "ivr.numbers.956100.flow",
                "ivr.numbers.956100.holiday_flow",
                "ivr.numbers.956100.shift_flows.evening",
            ]
        );
        // With no default, no flow at all for an unlisted number.
        assert_eq!(
            config.select_flow("12345", monday_morning().naive_local()),
            None
        );
    }

    #[test]
    fn overlapping_and_ill_formed_hours() {
        let mut config = config();
        let text = |s: &str| toml::Value::String(s.into()).try_into().unwrap();
        config.business_hours.tue = vec![text("08:00-12:00"), text("11:00-19:00")];
        config.business_hours.wed = vec![text("19:00-08:00")];
        config.shifts[1].end = toml::Value::String("09:00".into()).try_into().unwrap();
        config
            .calendar
            .make_up_workdays
            .insert("2026-10-01".parse().unwrap());
        let errors = errors_for(&config);
        assert_eq!(
            paths(&errors),
            [
                "ivr.business_hours.tue.1",
                "ivr.business_hours.wed.0",
                "ivr.calendar.make_up_workdays",
            ]
        );
        // Syntax errors are refused when the file is read, with the key.
        let bad = CONFIG.replace("\"08:00-12:00\"", "\"8am-noon\"");
        let err = toml::from_str::<IvrConfig>(&bad).unwrap_err().to_string();
        assert!(err.contains("not a time of day"), "{err}");
        let bad = CONFIG.replace("digit = \"1\"", "digit = \"12\"");
        let err = toml::from_str::<IvrConfig>(&bad).unwrap_err().to_string();
        assert!(err.contains("not a phone key"), "{err}");
    }

    #[test]
    fn empty_flow_and_missing_start() {
        let mut config = config();
        config.flows.get_mut("holiday").unwrap().nodes.clear();
        config.flows.get_mut("night").unwrap().start = "begin".into();
        let errors = errors_for(&config);
        assert_eq!(
            paths(&errors),
            ["ivr.flows.holiday.nodes", "ivr.flows.night.start"]
        );
    }

    #[test]
    fn collect_and_consent_keys_keep_the_leak_digit_unambiguous() {
        let mut config = config();
        let collect = account_mut(&mut config);
        collect.min_len = 1;
        config.recording.policy = RecordingPolicy::OptOut;
        config.recording.opt_out_digit = Digit::new('1').unwrap();
        let errors = errors_for(&config);
        assert_eq!(
            paths(&errors),
            [
                "ivr.recording.opt_out_digit",
                "ivr.flows.main.nodes.account.min_len"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let bad = CONFIG.replace(
            "variable = \"account\"",
            "variable = \"account\"\nlength = 8",
        );
        let err = toml::from_str::<IvrConfig>(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown field `length`"), "{err}");
        let bad = CONFIG.replace("category = \"query\"", "category = \"gossip\"");
        let err = toml::from_str::<IvrConfig>(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown ticket category \"gossip\""), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut config = config();
        main_menu(&mut config).options.push(option('1', "ghost"));
        main_menu(&mut config).options.push(option('2', "agent"));
        config.flows.get_mut("holiday").unwrap().nodes.clear();
        config.leak.queue = "nobody".into();
        config.flows.get_mut("night").unwrap().nodes.insert(
            "orphan".into(),
            node("kind = \"hangup\"\nprompts = [\"au_revoir\"]"),
        );
        let errors = errors_for(&config);
        assert_eq!(
            paths(&errors),
            [
                "ivr.leak.queue",
                "ivr.flows.main.nodes.menu.options.5",
                "ivr.flows.main.nodes.menu.options.6",
                "ivr.flows.holiday.nodes",
                "ivr.flows.main.nodes.menu.options.5.next",
                "ivr.flows.night.nodes.orphan.prompts.0",
                "ivr.flows.night.nodes.orphan",
            ]
        );
        assert!(errors.iter().all(|e| !e.message.is_empty()));
    }
}

#[test]
fn calendar_dates_may_be_bare_toml_dates() {
    let bare = CONFIG.replace("[\"2026-10-01\"]", "[2026-10-01]");
    let config: IvrConfig = toml::from_str(&bare).unwrap();
    assert!(config.is_holiday("2026-10-01".parse().unwrap()));
    let bad = CONFIG.replace("[\"2026-10-01\"]", "[\"2026-13-01\"]");
    let err = toml::from_str::<IvrConfig>(&bad).unwrap_err().to_string();
    assert!(err.contains("is not a date"), "{err}");
}

mod queue_position;
mod requeue;
mod spoken_keys;
mod survey;

/// 004's three shifts overlap at the handovers; the shift that started last serves them.
#[test]
fn overlapping_shifts_are_allowed_and_the_later_starting_one_wins() {
    let mut config = config();
    let time = |s: &str| toml::Value::String(s.into()).try_into().unwrap();
    config.shifts = [
        ("early", "07:00", "15:00"),
        ("late", "14:30", "22:30"),
        ("night", "22:00", "07:00"),
    ]
    .into_iter()
    .map(|(name, start, end)| super::config::Shift {
        name: name.into(),
        start: time(start),
        end: time(end),
    })
    .collect();
    let mut errors = validate(&config, &prompts(), &queues(), &locate);
    errors.retain(|e| e.path.starts_with("ivr.shifts"));
    assert!(errors.is_empty(), "{errors:?}");
    let cases = [
        ("06:59", "night"),
        ("07:00", "early"),
        ("14:29", "early"),
        ("14:30", "late"), // both: late started last
        ("14:59", "late"),
        ("15:00", "late"),
        ("21:59", "late"),
        ("22:00", "night"), // both: night started last
        ("22:29", "night"),
        ("23:59", "night"),
        ("00:00", "night"),
    ];
    for (at, shift) in cases {
        let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_time(chrono::NaiveTime::parse_from_str(at, "%H:%M").unwrap());
        assert_eq!(
            config.shift_at(local).map(|s| s.name.as_str()),
            Some(shift),
            "{at}"
        );
    }
}

#[test]
fn a_special_group_caller_waits_ahead_but_never_ahead_of_leaks() {
    let special = |group: &str| CallInfo {
        special_group: Some(group.into()),
        ..info(monday_morning())
    };
    // The person option queues at priority 0: an elderly caller living alone gets the boost,
    // and the ticket's path says why.
    let mut h = Harness::new(config());
    let intro = h.answer(special("elderly_alone"));
    assert!(has(
        &intro,
        &Action::Ticket(TicketUpdate::PathStep {
            node: "special_group".into(),
            input: Some("elderly_alone".into())
        })
    ));
    h.finish(&intro);
    let queued = h.key('0');
    assert_eq!(
        enqueued(&queued),
        Some(("general".into(), 3, false, Category::Consultation))
    );
    // The leak key still goes first, at the leak priority.
    assert_leak(&h.key('1'));

    // A flag the configuration does not list, and a boost of 0, change nothing.
    let mut h = Harness::new(config());
    let intro = h.answer(special("other"));
    h.finish(&intro);
    assert_eq!(enqueued(&h.key('0')).map(|q| q.1), Some(0));
    let mut off = config();
    off.special_groups.priority_boost = 0;
    let mut h = Harness::new(off);
    let intro = h.answer(special("disabled"));
    h.finish(&intro);
    assert_eq!(enqueued(&h.key('0')).map(|q| q.1), Some(0));
}
