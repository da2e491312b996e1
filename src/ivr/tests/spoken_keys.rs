//! Spoken keys: for every recording policy and for a moved leak key, what the media layer is
//! told to play names exactly the configured keys, and a caller who presses a key they were
//! told about gets what they were told.

use super::*;
use crate::ivr::config::{Digit, Node};

/// A key offer as a caller hears it: the phrase before "请按" and the key after it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    phrase: String,
    key: char,
}

/// Reads every "phrase, 请按, digit" triple out of a prompt sequence. A "请按" without a
/// phrase before it and a digit prompt after it is a composition fault.
fn offers(prompts: &[String]) -> Vec<Offer> {
    let mut found = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        if prompt != "press_key" {
            continue;
        }
        assert!(i > 0, "请按 with no phrase before it: {prompts:?}");
        let key = match prompts.get(i + 1).map(String::as_str) {
            Some("digit_star") => '*',
            Some("digit_hash") => '#',
            Some(d) if d.len() == 7 && d.starts_with("digit_") => d.chars().nth(6).unwrap(),
            other => panic!("请按 followed by {other:?}, not a key: {prompts:?}"),
        };
        found.push(Offer {
            phrase: prompts[i - 1].clone(),
            key,
        });
    }
    found
}

fn offer(phrase: &str, key: char) -> Offer {
    Offer {
        phrase: phrase.into(),
        key,
    }
}

fn digit(key: char) -> Digit {
    Digit::new(key).unwrap()
}

/// The sample configuration under `policy`, with the leak key moved to `leak` (and keys that
/// would collide with it moved out of its way, as an administrator must).
fn variant(policy: RecordingPolicy, leak: char) -> IvrConfig {
    let mut config = config();
    config.recording.policy = policy;
    config.leak.digit = digit(leak);
    if leak == '9' {
        config.recording.opt_out_digit = digit('8');
        let menu = menu_mut(&mut config, "menu");
        let bye = menu.options.iter_mut().find(|o| o.next == "bye").unwrap();
        bye.digit = digit('7');
    }
    let errors = errors_of(validate(&config, &prompts(), &queues(), &locate));
    assert_eq!(errors, Vec::new(), "{policy:?} with leak key {leak}");
    config
}

const POLICIES: [RecordingPolicy; 4] = [
    RecordingPolicy::Announce,
    RecordingPolicy::OptOut,
    RecordingPolicy::OptIn,
    RecordingPolicy::Off,
];

/// Every policy with the shipped leak key and with the leak key moved to 9.
fn variants() -> Vec<(RecordingPolicy, char, IvrConfig)> {
    POLICIES
        .iter()
        .flat_map(|&policy| ['1', '9'].map(|leak| (policy, leak, variant(policy, leak))))
        .collect()
}

fn expected_intro_offers(config: &IvrConfig) -> Vec<Offer> {
    let rec = &config.recording;
    let mut expected = vec![offer("label_leak", config.leak.digit.as_char())];
    match rec.policy {
        RecordingPolicy::OptOut => {
            expected.push(offer("recording_opt_out", rec.opt_out_digit.as_char()))
        }
        RecordingPolicy::OptIn => {
            expected.push(offer("recording_opt_in", rec.opt_in_digit.as_char()))
        }
        RecordingPolicy::Announce | RecordingPolicy::Off => {}
    }
    expected
}

#[test]
fn the_intro_names_exactly_the_configured_keys() {
    for (policy, leak, config) in variants() {
        let expected = expected_intro_offers(&config);
        let mut h = Harness::new(config);
        let intro = h.answer(info(monday_morning()));
        let heard = offers(&prompts_of(&intro));
        assert_eq!(heard, expected, "{policy:?}, leak key {leak}");
    }
}

#[test]
fn pressing_a_key_the_intro_offered_does_what_it_said() {
    for (policy, leak, config) in variants() {
        let mut h = Harness::new(config.clone());
        let intro = h.answer(info(monday_morning()));
        for spoken in offers(&prompts_of(&intro)) {
            let mut h = Harness::new(config.clone());
            h.answer(info(monday_morning()));
            let after = h.key(spoken.key);
            let context = format!("{policy:?}, leak key {leak}, pressed {}", spoken.key);
            match spoken.phrase.as_str() {
                "label_leak" => assert_eq!(
                    enqueued(&after),
                    Some(("emergency".into(), LEAK_PRIORITY, true, Category::Leak)),
                    "{context}"
                ),
                "recording_opt_out" => assert_eq!(
                    consent(&after),
                    Some((ConsentDecision::Refused, ConsentHow::PressedDigit)),
                    "{context}"
                ),
                "recording_opt_in" => {
                    assert_eq!(
                        consent(&after),
                        Some((ConsentDecision::Given, ConsentHow::PressedDigit)),
                        "{context}"
                    );
                    assert!(h.call.is_recording(), "{context}");
                }
                other => panic!("the intro offered {other:?}: {context}"),
            }
            if spoken.phrase != "label_leak" {
                assert!(
                    !h.call.is_priority(),
                    "a consent key is not a leak: {context}"
                );
            }
        }
    }
}

/// Listens to the intro (and waits out a consent window) to reach the main menu.
fn main_menu_after_intro(h: &mut Harness) -> Vec<Action> {
    let intro = h.answer(info(monday_morning()));
    let next = h.finish(&intro);
    if played(&next).is_some() {
        next
    } else {
        h.fire(&next)
    }
}

/// What each label promises, judged from what the engine does next.
fn assert_option_effect(label: &str, h: &Harness, after: &[Action], context: &str) {
    let node = h.call.current_node();
    match label {
        "label_billing" => assert_eq!(node, Some("account"), "{context}"),
        "label_consultation" => assert_eq!(node, Some("submenu"), "{context}"),
        "label_repair" => assert!(
            has(
                after,
                &Action::Transfer {
                    uri: "sip:repair@127.0.0.1".into()
                }
            ),
            "{context}"
        ),
        "label_person" => assert_eq!(
            enqueued(after),
            Some(("general".into(), 0, false, Category::Consultation)),
            "{context}"
        ),
        "goodbye" => assert_eq!(prompts_of(after), names(&["goodbye"]), "{context}"),
        "label_leak" => assert_eq!(
            enqueued(after),
            Some(("emergency".into(), LEAK_PRIORITY, true, Category::Leak)),
            "{context}"
        ),
        other => panic!("the menu offered {other:?}: {context}"),
    }
}

#[test]
fn the_menu_speaks_its_configured_keys_leak_first_and_each_does_what_it_said() {
    for (policy, leak, config) in variants() {
        let mut h = Harness::new(config.clone());
        let menu = main_menu_after_intro(&mut h);
        let heard = offers(&prompts_of(&menu));
        let Some(Node::Menu(configured)) = config.flows["main"].nodes.get("menu") else {
            panic!("main menu")
        };
        let mut expected = vec![offer("label_leak", leak)];
        expected.extend(configured.options.iter().map(|o| Offer {
            phrase: o.label.clone().unwrap(),
            key: o.digit.as_char(),
        }));
        assert_eq!(heard, expected, "{policy:?}, leak key {leak}");
        for spoken in heard {
            let mut h = Harness::new(config.clone());
            main_menu_after_intro(&mut h);
            let after = h.key(spoken.key);
            let context = format!("{policy:?}, leak key {leak}, pressed {}", spoken.key);
            assert_option_effect(&spoken.phrase, &h, &after, &context);
        }
    }
}

#[test]
fn swapping_two_options_swaps_what_the_menu_says() {
    let mut config = config();
    let menu = menu_mut(&mut config, "menu");
    let (a, b) = (menu.options[0].digit, menu.options[1].digit);
    menu.options[0].digit = b;
    menu.options[1].digit = a;
    let mut h = Harness::new(config);
    let heard = offers(&prompts_of(&main_menu_after_intro(&mut h)));
    assert_eq!(heard[1], offer("label_billing", '3'));
    assert_eq!(heard[2], offer("label_repair", '2'));
    let after = h.key('2');
    assert_option_effect("label_repair", &h, &after, "repair moved to 2");
}

#[test]
fn a_collect_node_speaks_its_configured_terminator() {
    for terminator in ['#', '*'] {
        let mut config = config();
        let collect = account_mut(&mut config);
        collect.terminator = digit(terminator);
        let mut h = Harness::new(config);
        main_menu_after_intro(&mut h);
        let entry = h.key('2');
        assert_eq!(
            offers(&prompts_of(&entry)),
            [offer("entry_done", terminator)]
        );
        h.keys("123456");
        let done = h.key(terminator);
        assert!(
            has(
                &done,
                &Action::Ticket(TicketUpdate::Variable {
                    name: "account".into(),
                    value: "123456".into()
                })
            ),
            "terminator {terminator}: {done:?}"
        );
    }
}

mod collisions {
    use super::*;

    fn problems(config: &IvrConfig) -> Vec<ValidationError> {
        errors_of(validate(config, &prompts(), &queues(), &locate))
    }

    #[test]
    fn consent_key_on_the_leak_key_names_both() {
        for (policy, key) in [
            (RecordingPolicy::OptIn, "ivr.recording.opt_in_digit"),
            (RecordingPolicy::OptOut, "ivr.recording.opt_out_digit"),
        ] {
            let mut config = config();
            config.recording.policy = policy;
            config.recording.opt_in_digit = digit('1');
            config.recording.opt_out_digit = digit('1');
            let found = problems(&config);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].path, key);
            assert!(
                found[0]
                    .message
                    .contains("also the leak key at ivr.leak.digit"),
                "{}",
                found[0].message
            );
        }
    }

    #[test]
    fn consent_keys_of_another_policy_are_not_live() {
        // opt_in_digit on the leak key does not matter while the policy is opt_out.
        let mut config = config();
        config.recording.policy = RecordingPolicy::OptOut;
        config.recording.opt_in_digit = digit('1');
        assert_eq!(problems(&config), Vec::new());
    }

    #[test]
    fn terminator_on_the_leak_key_or_on_a_digit_is_refused() {
        let mut config = config();
        account_mut(&mut config).terminator = digit('1');
        let found = problems(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "ivr.flows.main.nodes.account.terminator");
        assert!(
            found[0]
                .message
                .contains("the entry's terminator here and also the leak key")
        );
        account_mut(&mut config).terminator = digit('5');
        let found = problems(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("use \"#\" or \"*\""));
    }

    #[test]
    fn a_self_describing_menu_needs_a_label_on_every_option() {
        let mut config = config();
        let menu = menu_mut(&mut config, "menu");
        menu.options[2].label = None;
        let found = problems(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "ivr.flows.main.nodes.menu.options.2.label");
    }

    #[test]
    fn a_recorded_menu_with_labels_is_ambiguous() {
        let mut config = config();
        let menu = menu_mut(&mut config, "menu");
        menu.prompts = vec!["main_menu".into()];
        let found = problems(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "ivr.flows.main.nodes.menu.options.0.label");
    }
}
