//! The agents' desk: the narrow handle through which the API (and later the agent
//! desktops) reach the call handling. It carries requests to the dispatcher over its control
//! channel and waits for the answer; it exposes nothing of the dispatcher's state.
//!
//! Owns the request/answer shapes; must not decide anything about agents (the ACD does).

use super::Control;
use super::survey::{SurveyRated, SurveyResults, TransferToSurveyError};
use crate::acd::{AgentState, ReportedState};
use tokio::sync::{broadcast, mpsc, oneshot};

/// An agent as the ACD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub id: String,
    pub state: AgentState,
    pub queues: Vec<String>,
}

/// Why an agent request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum AgentDeskError {
    #[error("agent {0} is not in [acd.agents]; check the agent id")]
    UnknownAgent(String),
    #[error("call handling has stopped; try again once hotlined runs")]
    Stopped,
}

/// A cheap, clonable handle on the call handling's agents (SetAgentState, ListAgents,
/// TransferToSurvey, the survey ratings).
#[derive(Debug, Clone)]
pub struct AgentDesk {
    control: mpsc::UnboundedSender<Control>,
    survey_results: SurveyResults,
}

impl AgentDesk {
    pub(super) fn new(
        control: mpsc::UnboundedSender<Control>,
        survey_results: SurveyResults,
    ) -> AgentDesk {
        AgentDesk {
            control,
            survey_results,
        }
    }

    /// Every post-call survey answer from now on, as callers give them: for
    /// `SurveyResult{rating}` to the agent who had the call and to the supervisors.
    pub fn survey_results(&self) -> broadcast::Receiver<SurveyRated> {
        self.survey_results.subscribe()
    }

    /// `TransferToSurvey`: `agent`, talking with the caller of `call_id`, hands them over to
    /// the post-call survey. The agent's phone is hung up and the caller hears the survey, as
    /// when the agent hangs up first.
    pub async fn transfer_to_survey(
        &self,
        call_id: &str,
        agent: &str,
    ) -> Result<(), TransferToSurveyError> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(Control::TransferToSurvey {
                call_id: call_id.to_owned(),
                agent: agent.to_owned(),
                reply,
            })
            .map_err(|_| TransferToSurveyError::Stopped)?;
        answer.await.map_err(|_| TransferToSurveyError::Stopped)?
    }

    /// Sets the agent's state (the ACD rings only available agents); answers the agent as
    /// the ACD sees it afterwards.
    pub async fn set_state(
        &self,
        agent: String,
        state: ReportedState,
    ) -> Result<AgentView, AgentDeskError> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(Control::AgentState {
                agent,
                state,
                reply: Some(reply),
            })
            .map_err(|_| AgentDeskError::Stopped)?;
        answer.await.map_err(|_| AgentDeskError::Stopped)?
    }

    /// Every configured agent with state and queues, by id.
    pub async fn list(&self) -> Result<Vec<AgentView>, AgentDeskError> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(Control::ListAgents { reply })
            .map_err(|_| AgentDeskError::Stopped)?;
        answer.await.map_err(|_| AgentDeskError::Stopped)
    }
}
