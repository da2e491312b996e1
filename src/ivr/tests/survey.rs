//! The post-call survey on the simulated clock: the agent hangs up, the caller hears the
//! survey with the configured keys, and a key gives a rating; silence, a wrong key past the
//! retries or the caller hanging up give none.

use super::*;
use crate::ivr::config::Digit;
use crate::tickets::callback::Rating;

/// What the default survey says: the intro, then "label, 请按 key" for each answer.
pub(super) fn survey_spoken() -> Vec<String> {
    names(&[
        "survey_intro",
        "label_satisfied",
        "press_key",
        "digit_1",
        "label_basically_satisfied",
        "press_key",
        "digit_2",
        "label_unsatisfied",
        "press_key",
        "digit_3",
    ])
}

fn rating(actions: &[Action]) -> Option<(Rating, char)> {
    actions.iter().find_map(|a| match a {
        Action::SurveyResult(answer) => Some((answer.rating, answer.key)),
        _ => None,
    })
}

/// A caller connected with agent 1001 from the main menu's "0".
pub(super) fn connected(config: IvrConfig) -> Harness {
    let mut h = Harness::new(config);
    h.reach_main_menu();
    h.key('0');
    h.event(|now| Event::AgentAnswered {
        agent: "1001".into(),
        now,
    });
    h
}

pub(super) fn agent_leaves(h: &mut Harness) -> Vec<Action> {
    h.event(|now| Event::AgentLeft { now })
}

#[test]
fn agent_hangs_up_first_and_the_caller_rates_the_service() {
    let mut h = connected(config());
    assert!(h.call.survey_available());
    let survey = agent_leaves(&mut h);
    assert_eq!(prompts_of(&survey), survey_spoken());
    assert!(
        !survey.contains(&Action::HangUp),
        "the caller stays on the line"
    );
    let listening = h.finish(&survey);
    assert!(
        timer_set(&listening).is_some(),
        "silence counts after the prompt"
    );
    // Barge-in: the key may come while the survey is still speaking.
    let rated = h.key('3');
    assert_eq!(rating(&rated), Some((Rating::Unsatisfied, '3')));
    assert!(has(
        &rated,
        &Action::Ticket(TicketUpdate::PathStep {
            node: "survey".into(),
            input: Some("3".into())
        })
    ));
    assert_eq!(prompts_of(&rated), names(&["survey_thanks"]));
    let end = h.finish(&rated);
    assert_eq!(end.last(), Some(&Action::HangUp));
    assert!(h.call.is_ended());
}

#[test]
fn the_survey_speaks_and_takes_the_configured_keys() {
    let mut config = config();
    config.survey.satisfied.digit = Digit::new('7').unwrap();
    config.survey.unsatisfied.digit = Digit::new('9').unwrap();
    let mut h = connected(config);
    let survey = agent_leaves(&mut h);
    let spoken = prompts_of(&survey);
    assert_eq!(
        &spoken[1..4],
        names(&["label_satisfied", "press_key", "digit_7"])
    );
    assert_eq!(
        &spoken[7..],
        names(&["label_unsatisfied", "press_key", "digit_9"])
    );
    // "1" is no longer an answer (nor the leak key here: the call with the agent is over).
    let wrong = h.key('1');
    assert_eq!(rating(&wrong), None);
    assert!(!wrong.iter().any(|a| matches!(a, Action::Enqueue { .. })));
    let rated = h.key('7');
    assert_eq!(rating(&rated), Some((Rating::Satisfied, '7')));
}

#[test]
fn wrong_key_repeats_the_survey_then_gives_up_without_a_rating() {
    let mut h = connected(config());
    agent_leaves(&mut h);
    let wrong = h.key('5');
    assert_eq!(rating(&wrong), None);
    let mut expected = names(&["invalid_input"]);
    expected.extend(survey_spoken());
    assert_eq!(prompts_of(&wrong), expected);
    // retries = 1: the second wrong key ends the survey.
    let given_up = h.key('6');
    assert_eq!(rating(&given_up), None);
    assert!(has(
        &given_up,
        &Action::Ticket(TicketUpdate::PathStep {
            node: "survey".into(),
            input: Some("no_rating".into())
        })
    ));
    assert_eq!(prompts_of(&given_up), names(&["goodbye"]));
    assert_eq!(h.finish(&given_up).last(), Some(&Action::HangUp));
}

#[test]
fn silence_repeats_once_then_ends_the_call_without_a_rating() {
    let mut h = connected(config());
    let survey = agent_leaves(&mut h);
    let listening = h.finish(&survey);
    let (_, at) = timer_set(&listening).unwrap();
    assert_eq!(at, h.now + Duration::from_secs(6));
    let repeated = h.fire(&listening);
    assert_eq!(prompts_of(&repeated)[0], "no_input");
    let listening = h.finish(&repeated);
    let given_up = h.fire(&listening);
    assert_eq!(rating(&given_up), None);
    assert_eq!(prompts_of(&given_up), names(&["goodbye"]));
    let end = h.finish(&given_up);
    assert_eq!(end.last(), Some(&Action::HangUp));
}

#[test]
fn caller_hanging_up_during_the_survey_gives_no_rating() {
    let mut h = connected(config());
    let survey = agent_leaves(&mut h);
    let listening = h.finish(&survey);
    let (timer, _) = timer_set(&listening).unwrap();
    let gone = h.event(|now| Event::CallerHungUp { now });
    assert_eq!(rating(&gone), None);
    assert!(gone.contains(&Action::CancelTimer { id: timer }));
    assert!(
        gone.iter()
            .any(|a| matches!(a, Action::Ticket(TicketUpdate::CallEnded { .. })))
    );
    assert!(!gone.contains(&Action::HangUp), "the caller already left");
    assert!(h.call.is_ended());
}

#[test]
fn without_the_survey_the_agent_hanging_up_ends_the_call() {
    let mut config = config();
    config.survey.enabled = false;
    let mut h = connected(config);
    assert!(!h.call.survey_available());
    let ended = agent_leaves(&mut h);
    assert_eq!(ended.last(), Some(&Action::HangUp));
    assert_eq!(played(&ended), None);
    assert!(h.call.is_ended());
}

#[test]
fn leak_callers_are_not_surveyed_unless_configured() {
    let leak_call = |config: IvrConfig| {
        let mut h = Harness::new(config);
        h.reach_main_menu();
        h.key('1');
        h.event(|now| Event::AgentAnswered {
            agent: "e1".into(),
            now,
        });
        h
    };
    let mut h = leak_call(config());
    assert!(!h.call.survey_available());
    assert_eq!(agent_leaves(&mut h).last(), Some(&Action::HangUp));
    let mut config = config();
    config.survey.leak_calls = true;
    let mut h = leak_call(config);
    assert!(h.call.survey_available());
    assert_eq!(prompts_of(&agent_leaves(&mut h)), survey_spoken());
}

#[test]
fn no_survey_for_a_caller_not_with_an_agent() {
    // Transferred to an outside number: that party is not our agent.
    let mut h = Harness::new(config());
    h.reach_main_menu();
    h.key('3');
    h.event(|now| Event::TransferAnswered { now });
    assert!(!h.call.survey_available());
    assert!(agent_leaves(&mut h).is_empty());
    // Still in the menus.
    let mut h = Harness::new(config());
    h.reach_main_menu();
    assert!(!h.call.survey_available());
    assert!(agent_leaves(&mut h).is_empty());
}

mod validation {
    use super::*;

    fn survey_errors(config: &IvrConfig) -> Vec<ValidationError> {
        errors_of(validate(config, &prompts(), &queues(), &locate))
    }

    #[test]
    fn answers_sharing_a_key_name_both() {
        let mut config = config();
        config.survey.unsatisfied.digit = Digit::new('1').unwrap();
        let errors = survey_errors(&config);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "ivr.survey.unsatisfied.digit");
        assert!(
            errors[0].message.contains("ivr.survey.satisfied.digit"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn missing_prompts_and_a_zero_timeout_are_reported_on_their_keys() {
        let mut config = config();
        config.survey.timeout_secs = 0;
        config.survey.basically_satisfied.label = "label_meh".into();
        config.survey.thanks = vec!["survey_thanks".into(), "bye_bye".into()];
        let paths: Vec<String> = survey_errors(&config).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "ivr.survey.timeout_secs",
                "ivr.survey.thanks.1",
                "ivr.survey.basically_satisfied.label"
            ]
        );
        // A survey turned off is not checked.
        config.survey.enabled = false;
        assert_eq!(survey_errors(&config), []);
    }

    #[test]
    fn the_survey_table_parses_with_defaults_and_refuses_unknown_keys() {
        let config: IvrConfig = toml::from_str(&format!(
            "{CONFIG}\n[survey]\ntimeout_secs = 9\nunsatisfied = {{ digit = \"0\", label = \"label_unsatisfied\" }}\n"
        ))
        .unwrap();
        assert_eq!(config.survey.timeout_secs, 9);
        assert_eq!(config.survey.unsatisfied.digit, Digit::new('0').unwrap());
        assert_eq!(config.survey.satisfied.digit, Digit::new('1').unwrap());
        assert!(config.survey.enabled);
        let wrong = toml::from_str::<IvrConfig>(&format!("{CONFIG}\n[survey]\ntimeout = 9\n"));
        assert!(wrong.unwrap_err().to_string().contains("timeout"));
    }
}
