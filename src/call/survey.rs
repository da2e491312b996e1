//! The post-call survey at the call layer's edge, for the agents' desk (issue 9): the ratings
//! callers give, published as [`SurveyRated`] on a broadcast channel
//! ([`super::AgentDesk::survey_results`]), and the desk's `TransferToSurvey`
//! ([`super::AgentDesk::transfer_to_survey`]), which hangs up the agent's leg so that the
//! caller's IVR starts the survey exactly as when the agent hangs up first.
//!
//! Owns these two seams only; must not decide the survey (that is `ivr`).

use crate::tickets::callback::Rating;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

/// Ratings a subscriber may fall behind by before it misses the oldest (it is then told with
/// `RecvError::Lagged`).
const CAPACITY: usize = 256;

/// A caller's answer to the survey, published when the IVR reports it (its write to the call
/// row and the ticket is journaled at the same moment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyRated {
    /// The call's id, as on the call row and the ticket (`tickets.call_id`).
    pub call_id: String,
    /// The agent the caller had talked to.
    pub agent_id: Option<String>,
    pub rating: Rating,
    /// The key pressed (the configured key of that answer).
    pub key: char,
    pub at: DateTime<Utc>,
}

impl SurveyRated {
    /// The rating as `hotline.v1.SurveyResult.rating` numbers it: 1 satisfied, 2 basically
    /// satisfied, 3 unsatisfied — whatever keys the survey is configured with.
    pub fn rating_number(&self) -> u8 {
        match self.rating {
            Rating::Satisfied => 1,
            Rating::BasicallySatisfied => 2,
            Rating::Unsatisfied => 3,
        }
    }
}

/// The publishing side, owned by the dispatcher.
#[derive(Debug, Clone)]
pub(super) struct SurveyResults(broadcast::Sender<SurveyRated>);

impl SurveyResults {
    pub(super) fn new() -> SurveyResults {
        SurveyResults(broadcast::channel(CAPACITY).0)
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<SurveyRated> {
        self.0.subscribe()
    }

    /// Publishes `rated`; nobody listening is fine.
    pub(super) fn publish(&self, rated: SurveyRated) {
        let _ = self.0.send(rated);
    }
}

/// Why `TransferToSurvey` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferToSurveyError {
    /// No call in progress has this id (→ `NOT_FOUND`).
    #[error("no call {0} is in progress")]
    UnknownCall(String),
    /// The call is not talking with this agent right now (→ `FAILED_PRECONDITION`).
    #[error(
        "call {call} is not connected with agent {agent}; only the agent talking with the caller can hand them to the survey"
    )]
    NotWithAgent { call: String, agent: String },
    /// The survey is off, or does not apply to this call (a leak call) (→ `FAILED_PRECONDITION`).
    #[error(
        "call {0} has no survey (ivr.survey.enabled is off, or it is a leak call and ivr.survey.leak_calls is off); hang up instead"
    )]
    NoSurvey(String),
    /// The call handling is shutting down (→ `UNAVAILABLE`).
    #[error("call handling is stopping")]
    Stopped,
}
