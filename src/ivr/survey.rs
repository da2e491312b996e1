//! The post-call satisfaction survey (seed 003 §10(1), "通话结束前,应引导用户对服务进行评价"):
//! the `[ivr.survey]` settings, what the survey says and their validation. When the agent hangs
//! up first (or the agent's desk hands the caller over), the caller stays on the line and hears
//! "请对本次服务进行评价；满意，请按一；基本满意，请按二；不满意，请按三" — each key offer
//! composed from a label and the configured key, as everywhere (see `keys`). The engine's
//! survey states are in `engine/survey.rs`.
//!
//! Owns the survey's settings and words; must not play anything nor know which sound files
//! exist (validation gets their names).

use super::config::{Digit, Problems};
use super::keys::{LiveKey, collide, key_offer};
use crate::tickets::callback::Rating;
use serde::Deserialize;

/// One answer the caller can give: its key and the phrase naming it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyChoice {
    pub digit: Digit,
    /// "满意": spoken as "label, 请按 digit".
    pub label: String,
}

/// `[ivr.survey]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyConfig {
    /// Survey callers whose agent hung up first, or whom the agent's desk hands over.
    pub enabled: bool,
    /// Survey leak callers too. Off by default: a caller told to evacuate should not be kept
    /// on the line for a rating.
    pub leak_calls: bool,
    /// Said before the choices ("请对本次服务进行评价").
    pub prompts: Vec<String>,
    pub satisfied: SurveyChoice,
    pub basically_satisfied: SurveyChoice,
    pub unsatisfied: SurveyChoice,
    /// Silence after the choices before the survey repeats (or gives up).
    pub timeout_secs: u64,
    /// How often the survey repeats after a wrong key or silence; then the caller hears
    /// goodbye and the call ends without a rating.
    pub retries: u32,
    pub invalid_prompt: String,
    pub no_input_prompt: String,
    /// Said after a rating, before the call ends ("感谢您的评价，再见").
    pub thanks: Vec<String>,
}

impl Default for SurveyConfig {
    fn default() -> Self {
        let choice = |digit, label: &str| SurveyChoice {
            digit: Digit(digit),
            label: label.into(),
        };
        SurveyConfig {
            enabled: true,
            leak_calls: false,
            prompts: vec!["survey_intro".into()],
            satisfied: choice('1', "label_satisfied"),
            basically_satisfied: choice('2', "label_basically_satisfied"),
            unsatisfied: choice('3', "label_unsatisfied"),
            timeout_secs: 6,
            retries: 1,
            invalid_prompt: "invalid_input".into(),
            no_input_prompt: "no_input".into(),
            thanks: vec!["survey_thanks".into()],
        }
    }
}

impl SurveyConfig {
    /// Whether a call (a leak call when `leak`) is surveyed.
    pub fn applies(&self, leak: bool) -> bool {
        self.enabled && (self.leak_calls || !leak)
    }

    /// The answers in the order they are offered, with their config keys.
    pub fn choices(&self) -> [(&'static str, Rating, &SurveyChoice); 3] {
        [
            ("satisfied", Rating::Satisfied, &self.satisfied),
            (
                "basically_satisfied",
                Rating::BasicallySatisfied,
                &self.basically_satisfied,
            ),
            ("unsatisfied", Rating::Unsatisfied, &self.unsatisfied),
        ]
    }

    /// The rating `digit` gives, if it is one of the survey's keys.
    pub fn rating_for(&self, digit: Digit) -> Option<Rating> {
        let choices = self.choices();
        let found = choices.iter().find(|(_, _, c)| c.digit == digit);
        found.map(|(_, rating, _)| *rating)
    }

    /// What the survey says: the prompts, then "label, 请按 N" for each answer.
    pub fn spoken(&self) -> Vec<String> {
        let mut prompts = self.prompts.clone();
        for (_, _, choice) in self.choices() {
            prompts.extend(key_offer(&choice.label, choice.digit));
        }
        prompts
    }

    /// Every prompt the survey can play, with the key (under `ivr.survey`) that names it.
    fn prompts_by_key(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let list = |key: &str, prompts: &[String], out: &mut Vec<(String, String)>| {
            for (i, prompt) in prompts.iter().enumerate() {
                out.push((format!("{key}.{i}"), prompt.clone()));
            }
        };
        list("prompts", &self.prompts, &mut out);
        list("thanks", &self.thanks, &mut out);
        out.push(("invalid_prompt".into(), self.invalid_prompt.clone()));
        out.push(("no_input_prompt".into(), self.no_input_prompt.clone()));
        for (name, _, choice) in self.choices() {
            let [label, press, digit] = key_offer(&choice.label, choice.digit);
            out.push((format!("{name}.label"), label));
            out.push((format!("{name}.digit"), press));
            out.push((format!("{name}.digit"), digit));
        }
        out
    }
}

/// Checks `[ivr.survey]` (when enabled): every prompt has a sound file, the timeout is
/// positive and no two answers share a key.
pub(crate) fn validate_survey(
    survey: &SurveyConfig,
    prompt_exists: &dyn Fn(&str) -> bool,
    locate: &dyn Fn(&str) -> String,
    p: &mut Problems,
) {
    if !survey.enabled {
        return;
    }
    if survey.timeout_secs == 0 {
        p.add("ivr.survey.timeout_secs", "must be at least 1 second");
    }
    for (key, prompt) in survey.prompts_by_key() {
        if !prompt_exists(&prompt) {
            p.add(
                format!("ivr.survey.{key}"),
                format!(
                    "prompt {prompt:?} has no sound file: add sounds/zh-CN/{prompt}.wav or use \
                     another prompt"
                ),
            );
        }
    }
    let keys: Vec<LiveKey> = survey
        .choices()
        .iter()
        .map(|(name, _, choice)| LiveKey {
            digit: choice.digit,
            path: format!("ivr.survey.{name}.digit"),
            meaning: "a survey answer",
        })
        .collect();
    collide(&keys.iter().collect::<Vec<_>>(), locate, p);
}
