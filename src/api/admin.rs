//! `hotline.v1.Admin`: outage announcements, configuration reload, agent states and the
//! master data (`master`), for admin tokens (an agent token may set its own state and read
//! household files). Checks every request field (errors name the field) and maps between the
//! wire messages and [`Announcer`]; the reload itself is the daemon's [`ReloadHook`], agent
//! states go to the call handling through [`AgentDesk`].

use super::auth::Caller;
use super::master;
use super::pb;
use super::tickets::{caller, from_timestamp, invalid, timestamp};
use crate::acd::{AgentState, ReportedState};
use crate::call::{AgentDesk, AgentDeskError, AgentView};
use crate::ops::{AnnounceError, Announcer};
use crate::store::{Announcement, NewAnnouncement, Store, StoreError};
use chrono::Utc;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// Re-reads the configuration file and applies what can change while running. `Ok` carries a
/// summary of what changed; `Err` every problem of the file (one per entry, as
/// `FILE:LINE:COL: KEY: what is wrong; what to do`), in which case nothing changed.
pub type ReloadHook = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, Vec<String>>> + Send>> + Send + Sync,
>;

/// Wraps an async closure as a [`ReloadHook`].
pub fn reload_hook<F, Fut>(reload: F) -> ReloadHook
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, Vec<String>>> + Send + 'static,
{
    Arc::new(move || Box::pin(reload()))
}

/// The `Admin` service.
#[derive(Clone)]
pub struct AdminService {
    announcer: Announcer,
    /// The announcer's store, for the master data.
    store: Store,
    reload: ReloadHook,
    agents: Option<AgentDesk>,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService")
            .field("announcer", &self.announcer)
            .finish_non_exhaustive()
    }
}

impl AdminService {
    pub fn new(announcer: Announcer, reload: ReloadHook) -> AdminService {
        AdminService {
            store: announcer.store().clone(),
            announcer,
            reload,
            agents: None,
        }
    }

    /// With the call handling's agents (SetAgentState, ListAgents); without, those answer
    /// UNAVAILABLE.
    pub fn with_agents(mut self, agents: AgentDesk) -> AdminService {
        self.agents = Some(agents);
        self
    }

    fn agent_desk(&self) -> Result<&AgentDesk, Status> {
        self.agents
            .as_ref()
            .ok_or_else(|| Status::unavailable("this hotlined takes no calls, so it has no agents"))
    }
}

fn agent_status(err: AgentDeskError) -> Status {
    match err {
        err @ AgentDeskError::UnknownAgent(_) => Status::not_found(err.to_string()),
        err @ AgentDeskError::Stopped => Status::unavailable(err.to_string()),
    }
}

fn agent_to_proto(agent: AgentView) -> pb::Agent {
    let state = match agent.state {
        AgentState::Available => pb::AgentState::Available,
        AgentState::Ringing => pb::AgentState::Ringing,
        AgentState::Busy => pb::AgentState::Busy,
        AgentState::WrapUp => pb::AgentState::WrapUp,
        AgentState::Offline => pb::AgentState::Offline,
    };
    pb::Agent {
        id: agent.id,
        state: state.into(),
        queues: agent.queues,
    }
}

/// Only admin tokens may administer; returns the caller's audit name.
fn require_admin<T>(request: &Request<T>) -> Result<String, Status> {
    match caller(request)? {
        admin @ Caller::Admin { .. } => Ok(admin.actor()),
        _ => Err(Status::permission_denied(
            "only admin tokens may use hotline.v1.Admin; use a token with role \"admin\"",
        )),
    }
}

fn store_status(err: StoreError) -> Status {
    match err {
        err @ StoreError::NotFound(_) => Status::not_found(err.to_string()),
        StoreError::Invalid { field, reason } => invalid(&format!("announcement.{field}"), reason),
        err @ StoreError::Unavailable(_) => {
            tracing::warn!(error = %err, "store unavailable");
            Status::unavailable(err.to_string())
        }
        err @ (StoreError::Conflict(_) | StoreError::Other(_)) => {
            tracing::error!(error = %err, "announcement store failed");
            Status::internal(format!("{err}; see the hotlined log"))
        }
    }
}

fn announce_status(err: AnnounceError) -> Status {
    match err {
        AnnounceError::Invalid { field, reason } => {
            invalid(&format!("announcement.{field}"), reason)
        }
        AnnounceError::Tts(reason) => {
            tracing::warn!(%reason, "announcement text not rendered");
            Status::failed_precondition(reason)
        }
        AnnounceError::Store(err) => store_status(err),
    }
}

fn to_proto(a: Announcement) -> pb::Announcement {
    pb::Announcement {
        id: a.id,
        text: a.text.unwrap_or_default(),
        prompt: a.prompt.unwrap_or_default(),
        dids: a.dids,
        areas: a.areas,
        starts_at: Some(timestamp(a.starts_at)),
        ends_at: Some(timestamp(a.ends_at)),
        rendered: a.audio_file.is_some(),
        created_by: a.created_by,
        created_at: Some(timestamp(a.created_at)),
    }
}

fn positive_id(id: i64, field: &str) -> Result<i64, Status> {
    if id <= 0 {
        return Err(invalid(field, "must be a positive announcement id"));
    }
    Ok(id)
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn set_announcement(
        &self,
        request: Request<pb::SetAnnouncementRequest>,
    ) -> Result<Response<pb::Announcement>, Status> {
        let actor = require_admin(&request)?;
        let a = request
            .into_inner()
            .announcement
            .ok_or_else(|| invalid("announcement", "required"))?;
        let id = match a.id {
            0 => None,
            id => Some(positive_id(id, "announcement.id")?),
        };
        let starts_at = from_timestamp(a.starts_at, "announcement.starts_at")?
            .ok_or_else(|| invalid("announcement.starts_at", "required"))?;
        let ends_at = from_timestamp(a.ends_at, "announcement.ends_at")?
            .ok_or_else(|| invalid("announcement.ends_at", "required"))?;
        let new = NewAnnouncement {
            text: Some(a.text),
            prompt: Some(a.prompt),
            dids: a.dids,
            areas: a.areas,
            starts_at,
            ends_at,
            created_by: actor,
        };
        let stored = self
            .announcer
            .set(id, new, Utc::now())
            .await
            .map_err(announce_status)?;
        Ok(Response::new(to_proto(stored)))
    }

    async fn list_announcements(
        &self,
        request: Request<pb::ListAnnouncementsRequest>,
    ) -> Result<Response<pb::ListAnnouncementsResponse>, Status> {
        require_admin(&request)?;
        let include_ended = request.into_inner().include_ended;
        let announcements = self
            .announcer
            .list(Utc::now(), include_ended)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListAnnouncementsResponse {
            announcements: announcements.into_iter().map(to_proto).collect(),
        }))
    }

    async fn clear_announcement(
        &self,
        request: Request<pb::ClearAnnouncementRequest>,
    ) -> Result<Response<pb::Announcement>, Status> {
        require_admin(&request)?;
        let id = positive_id(request.into_inner().id, "id")?;
        let gone = self.announcer.clear(id).await.map_err(store_status)?;
        Ok(Response::new(to_proto(gone)))
    }

    async fn set_agent_state(
        &self,
        request: Request<pb::SetAgentStateRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let agent = r.agent_id.trim().to_owned();
        if agent.is_empty() {
            return Err(invalid(
                "agent_id",
                "empty; give the agent id of [acd.agents]",
            ));
        }
        match &who {
            Caller::Admin { .. } => {}
            Caller::Agent { agent_id } if *agent_id == agent => {}
            Caller::Agent { .. } => {
                return Err(Status::permission_denied(
                    "an agent token may set its own state only; use your own agent_id",
                ));
            }
            _ => {
                return Err(Status::permission_denied(
                    "only admin and agent tokens may set agent states",
                ));
            }
        }
        let state = match pb::AgentState::try_from(r.state) {
            Ok(pb::AgentState::Available) => ReportedState::Available,
            Ok(pb::AgentState::Busy) => ReportedState::Busy,
            Ok(pb::AgentState::WrapUp) => ReportedState::WrapUp,
            Ok(pb::AgentState::Offline) => ReportedState::Offline,
            _ => {
                return Err(invalid(
                    "state",
                    "give AGENT_STATE_AVAILABLE, _BUSY, _WRAP_UP or _OFFLINE (ringing is the ACD's)",
                ));
            }
        };
        let view = self
            .agent_desk()?
            .set_state(agent, state)
            .await
            .map_err(agent_status)?;
        tracing::info!(by = %who.actor(), agent = %view.id, state = ?view.state, "agent state set");
        Ok(Response::new(agent_to_proto(view)))
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        require_admin(&request)?;
        let agents = self.agent_desk()?.list().await.map_err(agent_status)?;
        Ok(Response::new(pb::ListAgentsResponse {
            agents: agents.into_iter().map(agent_to_proto).collect(),
        }))
    }

    async fn reload_config(
        &self,
        request: Request<pb::ReloadConfigRequest>,
    ) -> Result<Response<pb::ReloadConfigResponse>, Status> {
        let actor = require_admin(&request)?;
        match (self.reload)().await {
            Ok(summary) => {
                tracing::info!(by = %actor, %summary, "configuration reloaded");
                Ok(Response::new(pb::ReloadConfigResponse { summary }))
            }
            Err(problems) => {
                tracing::warn!(by = %actor, problems = problems.len(), "configuration reload refused");
                Err(Status::failed_precondition(format!(
                    "configuration not reloaded, nothing changed; fix these {} problem(s) and \
                     reload again:\n{}",
                    problems.len(),
                    problems.join("\n")
                )))
            }
        }
    }

    async fn create_unit(
        &self,
        request: Request<pb::CreateUnitRequest>,
    ) -> Result<Response<pb::Unit>, Status> {
        master::create_unit(&self.store, request).await
    }

    async fn update_unit(
        &self,
        request: Request<pb::UpdateUnitRequest>,
    ) -> Result<Response<pb::Unit>, Status> {
        master::update_unit(&self.store, request).await
    }

    async fn list_units(
        &self,
        request: Request<pb::ListUnitsRequest>,
    ) -> Result<Response<pb::ListUnitsResponse>, Status> {
        master::list_units(&self.store, request).await
    }

    async fn delete_unit(
        &self,
        request: Request<pb::DeleteUnitRequest>,
    ) -> Result<Response<pb::Unit>, Status> {
        master::delete_unit(&self.store, request).await
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        master::get_customer(&self.store, request).await
    }

    async fn search_customers(
        &self,
        request: Request<pb::SearchCustomersRequest>,
    ) -> Result<Response<pb::SearchCustomersResponse>, Status> {
        master::search_customers(&self.store, request).await
    }

    async fn upsert_customers(
        &self,
        request: Request<Streaming<pb::UpsertCustomersRequest>>,
    ) -> Result<Response<pb::UpsertCustomersResponse>, Status> {
        master::upsert_customers(&self.store, request).await
    }
}
