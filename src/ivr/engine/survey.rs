//! The engine's survey states: after the agent leaves, the survey prompt, the wait for a key,
//! repeats after a wrong key or silence, and the thanks (with a rating) or goodbye (without).
//! The words and keys come from `[ivr.survey]` (`ivr::survey`).

use super::{Action, CallEngine, Phase, SurveyAnswer, path_step};
use crate::ivr::config::Digit;
use std::time::{Duration, Instant};

/// The ticket's IVR path step of the survey.
const STEP: &str = "survey";

impl CallEngine {
    /// Whether the caller, now with an agent, would be surveyed if the agent left: what the
    /// agent's desk checks before handing a caller over to the survey.
    pub fn survey_available(&self) -> bool {
        matches!(self.phase, Phase::Connected)
            && self.agent.is_some()
            && self.config.survey.applies(self.leak)
    }

    /// The agent the caller is (or was last) connected with.
    pub fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    /// The agent left the caller: survey them, or end the call.
    pub(super) fn on_agent_left(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !matches!(self.phase, Phase::Connected) || self.agent.is_none() {
            return;
        }
        if !self.survey_available() {
            self.finish(now, out);
            out.push(Action::HangUp);
            return;
        }
        out.push(Action::NodeEntered { node: STEP.into() });
        let prompts = self.config.survey.spoken();
        let playback = self.play(prompts, true, out);
        self.phase = Phase::Survey {
            playback: Some(playback),
            timer: None,
            failures: 0,
        };
    }

    /// The survey prompt is over: now the caller's silence counts.
    pub(super) fn survey_listen(&mut self, now: Instant, out: &mut Vec<Action>) {
        let after = Duration::from_secs(self.config.survey.timeout_secs);
        let id = self.timer(after, now, out);
        if let Phase::Survey { timer, .. } = &mut self.phase {
            *timer = Some(id);
        }
    }

    pub(super) fn survey_digit(&mut self, digit: Digit, now: Instant, out: &mut Vec<Action>) {
        self.stop_current(out);
        let Some(rating) = self.config.survey.rating_for(digit) else {
            return self.survey_failed(true, now, out);
        };
        if let Some(at) = self.wall(now) {
            out.push(Action::SurveyResult(SurveyAnswer {
                rating,
                key: digit.as_char(),
                at,
            }));
        }
        path_step(STEP.into(), Some(digit.to_string()), out);
        let thanks = self.config.survey.thanks.clone();
        self.say_goodbye(thanks, now, out);
    }

    /// A wrong key (`invalid`) or silence: the survey again, or after the retries goodbye
    /// without a rating.
    pub(super) fn survey_failed(&mut self, invalid: bool, now: Instant, out: &mut Vec<Action>) {
        let Phase::Survey { failures, .. } = self.phase else {
            return;
        };
        let failures = failures + 1;
        let survey = &self.config.survey;
        if failures > survey.retries {
            path_step(STEP.into(), Some("no_rating".into()), out);
            return self.say_goodbye(vec!["goodbye".into()], now, out);
        }
        let mut prompts = vec![if invalid {
            survey.invalid_prompt.clone()
        } else {
            survey.no_input_prompt.clone()
        }];
        prompts.extend(survey.spoken());
        let playback = self.play(prompts, true, out);
        self.phase = Phase::Survey {
            playback: Some(playback),
            timer: None,
            failures,
        };
    }
}
