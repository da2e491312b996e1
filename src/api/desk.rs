//! `hotline.v1.AgentDesk`: agents' desktops (event stream with resume, states, wrap-up, call
//! control) and the supervisors' wallboard and live calls. Checks who may act for which agent
//! and every field, maps desk errors to gRPC codes and desk events to wire messages; the
//! desk itself is reached through the call layer's [`Desktops`] handle.

use super::auth::Caller;
use super::pb;
use super::tickets::{caller, invalid, timestamp};
use crate::call::{Desktops, Subscription};
use crate::desk::{
    AgentEvent, AgentState, AgentView, CallControl, CallPhase, DeskError, EventKind, HungUpBy,
    LivePhase, Offer, Requested, ResyncReason, StreamItem, TransferTarget, WallboardUpdate,
    WithdrawReason,
};
use crate::store::ScreenPop;
use chrono::{DateTime, Utc};
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Messages buffered between a stream's task and the network; past this the desk's own
/// bounded outbox fills, and a desktop that does not read is closed with ResyncRequired.
const WIRE_BUFFER: usize = 16;

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The `AgentDesk` service.
#[derive(Clone, Debug)]
pub struct AgentDeskService {
    desktops: Desktops,
}

impl AgentDeskService {
    pub fn new(desktops: Desktops) -> AgentDeskService {
        AgentDeskService { desktops }
    }
}

/// An agent token may act for its own agent only, an admin token for everyone.
fn check_agent<T>(request: &Request<T>, agent_id: &str) -> Result<(Caller, String), Status> {
    let who = caller(request)?;
    let agent = agent_id.trim().to_owned();
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
                "an agent token may act for its own agent id only; use your own agent_id",
            ));
        }
        _ => {
            return Err(Status::permission_denied(
                "only agent and admin tokens may use hotline.v1.AgentDesk",
            ));
        }
    }
    Ok((who, agent))
}

fn require_admin<T>(request: &Request<T>) -> Result<(), Status> {
    match caller(request)? {
        Caller::Admin { .. } => Ok(()),
        _ => Err(Status::permission_denied(
            "only admin tokens may watch the wallboard and list live calls",
        )),
    }
}

fn desk_status(err: DeskError) -> Status {
    let message = err.to_string();
    match err {
        DeskError::UnknownAgent(_) => Status::not_found(message),
        DeskError::Stale { .. } => Status::aborted(message),
        DeskError::UnknownReason(_) | DeskError::SystemReason(_) => invalid("reason_code", message),
        DeskError::UnknownDisposition(_) => invalid("disposition_code", message),
        DeskError::UnknownTarget { field, .. } => invalid(field, message),
        DeskError::NotInWrapUp(_)
        | DeskError::NotHolding { .. }
        | DeskError::TargetNotReady { .. } => Status::failed_precondition(message),
    }
}

/// `sip:` / `sips:` with an IP literal host: the only targets the call layer can reach.
fn is_ip_sip_uri(uri: &str) -> bool {
    (uri.starts_with("sip:") || uri.starts_with("sips:"))
        && crate::sip::message::host_port_of(uri).is_some_and(|(host, _)| {
            host.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok()
        })
}

fn ms_timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(timestamp)
}

fn state_to_proto(state: &AgentState) -> pb::DeskState {
    match state {
        AgentState::LoggedOut => pb::DeskState::LoggedOut,
        AgentState::Ready => pb::DeskState::Ready,
        AgentState::NotReady(_) => pb::DeskState::NotReady,
        AgentState::Ringing => pb::DeskState::Ringing,
        AgentState::OnCall => pb::DeskState::OnCall,
        AgentState::WrapUp => pb::DeskState::WrapUp,
    }
}

fn status_to_proto(view: &AgentView) -> pb::AgentStatus {
    let pending = view.pending.as_ref().map(Requested::as_state);
    pb::AgentStatus {
        agent_id: view.id.clone(),
        state: state_to_proto(&view.state).into(),
        reason_code: view.state.reason_code().unwrap_or_default().to_owned(),
        version: view.version,
        pending_state: pending
            .as_ref()
            .map_or(pb::DeskState::Unspecified, state_to_proto)
            .into(),
        pending_reason_code: pending
            .as_ref()
            .and_then(|p| p.reason_code())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The screen pop on the wire.
pub fn pop_to_proto(pop: &ScreenPop) -> pb::ScreenPop {
    pb::ScreenPop {
        call_id: pop.call_id.clone(),
        caller_number: pop.caller_number.clone(),
        dialled_number: pop.dialled_number.clone(),
        queue: pop.queue.clone(),
        priority: pop.priority.into(),
        leak: pop.leak,
        seconds_waited: pop.seconds_waited,
        ivr_path: pop
            .ivr_path
            .iter()
            .map(|s| pb::IvrStep {
                node: s.node.clone(),
                key: s.key.clone(),
                entry: s.entry.clone(),
            })
            .collect(),
        recording_consent: pop.recording_consent.clone().unwrap_or_default(),
        recording_consent_via: pop.recording_consent_via.clone().unwrap_or_default(),
        draft_ticket: pop.draft_ticket.clone().unwrap_or_default(),
        household: pop.household.as_ref().map(|h| pb::Household {
            account_number: h.account_number.clone(),
            name: h.name.clone(),
            address: h.address.clone(),
            area: h.area.clone(),
            special_group: h.special_group.clone().unwrap_or_default(),
        }),
        last_calls: pop
            .last_calls
            .iter()
            .map(|c| pb::PastCall {
                call_id: c.call_id.clone(),
                arrived_at: Some(timestamp(c.arrived_at)),
                ivr_path: c.ivr_path.clone(),
                disposition: c.disposition.clone().unwrap_or_default(),
                agent_id: c.agent_id.clone().unwrap_or_default(),
                ticket: c.ticket.clone().unwrap_or_default(),
            })
            .collect(),
        open_tickets: pop
            .open_tickets
            .iter()
            .map(|t| pb::PopTicket {
                number: t.number.clone(),
                category: t.category.clone(),
                status: t.status.clone(),
                next_deadline: t.next_deadline.map(timestamp),
                overdue: t.overdue,
            })
            .collect(),
        nearby_leaks: pop
            .nearby_leaks
            .iter()
            .map(|l| pb::LeakReport {
                ticket: l.ticket.clone(),
                address: l.address.clone(),
                area: l.area.clone(),
                reported_at: Some(timestamp(l.reported_at)),
                same_address: l.same_address,
            })
            .collect(),
        repeat_caller: Some(pb::RepeatCaller {
            calls_last_24h: pop.calls_last_24h,
            repeated_within_24h: pop.repeated_within_24h(),
            open_complaint: pop.open_complaint,
        }),
        outage_announcements: pop.outage_announcements.clone(),
    }
}

fn offer_to_proto(offer: &Offer<ScreenPop>) -> pb::Offered {
    pb::Offered {
        call_id: offer.call.clone(),
        screen_pop: Some(pop_to_proto(&offer.pop)),
        ring_deadline: ms_timestamp(offer.ring_deadline_ms),
        handover: offer
            .handover
            .iter()
            .map(|n| pb::HandoverNote {
                from_agent: n.from_agent.clone(),
                notes: n.notes.clone(),
            })
            .collect(),
    }
}

fn withdraw_to_proto(reason: WithdrawReason) -> pb::WithdrawReason {
    match reason {
        WithdrawReason::AnsweredElsewhere => pb::WithdrawReason::AnsweredElsewhere,
        WithdrawReason::CallerHungUp => pb::WithdrawReason::CallerHungUp,
        WithdrawReason::RingTimeout => pb::WithdrawReason::RingTimeout,
        WithdrawReason::Transferred => pb::WithdrawReason::Transferred,
    }
}

fn hung_up_to_proto(who: HungUpBy) -> pb::HungUpBy {
    match who {
        HungUpBy::Caller => pb::HungUpBy::Caller,
        HungUpBy::Agent => pb::HungUpBy::Agent,
        HungUpBy::System => pb::HungUpBy::System,
        HungUpBy::Transfer => pb::HungUpBy::Transfer,
    }
}

fn resync_to_proto(reason: ResyncReason) -> pb::ResyncReason {
    match reason {
        ResyncReason::EpochChanged => pb::ResyncReason::EpochChanged,
        ResyncReason::HistoryCompacted => pb::ResyncReason::HistoryCompacted,
        ResyncReason::TooSlow => pb::ResyncReason::TooSlow,
    }
}

/// One desk event on the wire.
pub fn event_to_proto(agent: &str, event: &AgentEvent<ScreenPop>) -> pb::AgentEvent {
    use pb::agent_event::Event;
    let message = match &event.kind {
        EventKind::StateChanged { from, to, version } => Event::StateChanged(pb::StateChanged {
            from: state_to_proto(from).into(),
            to: state_to_proto(to).into(),
            reason_code: to.reason_code().unwrap_or_default().to_owned(),
            version: *version,
            from_reason_code: from.reason_code().unwrap_or_default().to_owned(),
        }),
        EventKind::Offered(offer) => Event::Offered(offer_to_proto(offer)),
        EventKind::OfferWithdrawn { call, reason } => Event::OfferWithdrawn(pb::OfferWithdrawn {
            call_id: call.clone(),
            reason: withdraw_to_proto(*reason).into(),
        }),
        EventKind::Connected { call } => Event::Connected(pb::Connected {
            call_id: call.clone(),
        }),
        EventKind::Ended {
            call,
            who,
            duration_ms,
        } => Event::Ended(pb::Ended {
            call_id: call.clone(),
            who_hung_up: hung_up_to_proto(*who).into(),
            duration: Some(prost_types::Duration {
                seconds: duration_ms / 1000,
                nanos: ((duration_ms % 1000) * 1_000_000) as i32,
            }),
        }),
        EventKind::WrapUpStarted { call, deadline_ms } => Event::WrapUpStarted(pb::WrapUpStarted {
            call_id: call.clone(),
            deadline: ms_timestamp(*deadline_ms),
        }),
        EventKind::SurveyResult { call, rating } => Event::SurveyResult(pb::SurveyResult {
            call_id: call.clone(),
            rating: (*rating).into(),
        }),
        EventKind::TicketChanged { call, name, status } => {
            Event::TicketChanged(pb::TicketChanged {
                call_id: call.clone(),
                name: format!("{}{name}", super::tickets::NAME_PREFIX),
                status: status.clone(),
            })
        }
        EventKind::Snapshot(snapshot) => {
            let view = AgentView {
                id: agent.to_owned(),
                state: snapshot.state.clone(),
                version: snapshot.version,
                pending: snapshot.pending.clone(),
                queues: Vec::new(),
                call: None,
                desktops: 0,
            };
            let call = snapshot
                .call
                .as_ref()
                .map(|(offer, phase)| pb::CurrentCall {
                    offer: Some(offer_to_proto(offer)),
                    talking_since: match phase {
                        CallPhase::Talking { since_ms } => ms_timestamp(*since_ms),
                        _ => None,
                    },
                    wrap_up_deadline: match phase {
                        CallPhase::WrapUp { deadline_ms } => ms_timestamp(*deadline_ms),
                        _ => None,
                    },
                });
            Event::Snapshot(pb::Snapshot {
                status: Some(status_to_proto(&view)),
                call,
            })
        }
        EventKind::ResyncRequired(reason) => Event::ResyncRequired(pb::ResyncRequired {
            reason: resync_to_proto(*reason).into(),
        }),
        EventKind::Heartbeat => Event::Heartbeat(pb::Heartbeat {}),
    };
    pb::AgentEvent {
        epoch: event.epoch,
        seq: event.seq,
        at: ms_timestamp(event.at_ms),
        event: Some(message),
    }
}

fn wallboard_to_proto(update: &WallboardUpdate) -> pb::WallboardUpdate {
    let a = &update.agents;
    pb::WallboardUpdate {
        at: ms_timestamp(update.at_ms),
        snapshot: update.snapshot,
        lanes: update
            .lanes
            .iter()
            .map(|l| {
                let c = &l.counters;
                pb::WallboardLane {
                    lane: l.lane.clone(),
                    leak: l.leak,
                    waiting: l.waiting,
                    longest_wait_secs: l.longest_wait_secs,
                    oldest_waiting_since: l.oldest_waiting_since_ms.and_then(ms_timestamp),
                    offered: c.offered,
                    answered: c.answered,
                    answered_within_threshold: c.answered_within,
                    abandoned: c.abandoned,
                    abandoned_within_threshold: c.abandoned_within,
                    short_abandoned: c.short_abandoned,
                    service_level: c.service_level(),
                    service_level2: c.service_level2(),
                    average_speed_of_answer: c.average_speed_of_answer(),
                    average_handle_time: c.average_handle_time(),
                    survey_satisfied: c.ratings[0],
                    survey_basically_satisfied: c.ratings[1],
                    survey_unsatisfied: c.ratings[2],
                }
            })
            .collect(),
        agents: Some(pb::AgentsByState {
            logged_out: a.logged_out,
            ready: a.ready,
            not_ready: a.not_ready,
            ringing: a.ringing,
            on_call: a.on_call,
            wrap_up: a.wrap_up,
        }),
    }
}

/// Pumps a subscription into a bounded channel towards the network, mapping each item; ends
/// when the desk closes the subscription or the client goes away.
fn pump<T: Send + 'static>(
    mut subscription: Subscription,
    map: impl Fn(&StreamItem<ScreenPop>) -> Option<T> + Send + 'static,
) -> EventStream<T> {
    let (tx, rx) = mpsc::channel(WIRE_BUFFER);
    tokio::spawn(async move {
        while let Some(batch) = subscription.next_batch().await {
            for item in &batch {
                if let Some(message) = map(item)
                    && tx.send(Ok(message)).await.is_err()
                {
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

fn requested(state: i32, reason_code: &str) -> Result<Requested, Status> {
    match pb::DeskState::try_from(state) {
        Ok(pb::DeskState::Ready) => Ok(Requested::Ready),
        Ok(pb::DeskState::LoggedOut) => Ok(Requested::LoggedOut),
        Ok(pb::DeskState::NotReady) if reason_code.trim().is_empty() => Err(invalid(
            "reason_code",
            "required for NOT_READY; use one of desk.reason_codes",
        )),
        Ok(pb::DeskState::NotReady) => Ok(Requested::NotReady(reason_code.trim().to_owned())),
        _ => Err(invalid(
            "state",
            "give DESK_STATE_READY, _NOT_READY or _LOGGED_OUT (the others are the system's)",
        )),
    }
}

fn call_id(call_id: &str) -> Result<String, Status> {
    let call = call_id.trim();
    if call.is_empty() {
        return Err(invalid(
            "call_id",
            "empty; give the call id of the Offered event",
        ));
    }
    Ok(call.to_owned())
}

#[tonic::async_trait]
impl pb::agent_desk_server::AgentDesk for AgentDeskService {
    type StreamEventsStream = EventStream<pb::AgentEvent>;
    type StreamWallboardStream = EventStream<pb::WallboardUpdate>;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let (_, agent) = check_agent(&request, &request.get_ref().agent_id)?;
        let resume = request.into_inner().resume_from.map(|r| (r.epoch, r.seq));
        let subscription = self
            .desktops
            .subscribe_agent(&agent, resume)
            .map_err(desk_status)?;
        tracing::info!(%agent, resume = ?resume, "desktop subscribed");
        Ok(Response::new(pump(subscription, move |item| match item {
            StreamItem::Agent(event) => Some(event_to_proto(&agent, event)),
            StreamItem::Wallboard(_) => None,
        })))
    }

    async fn set_state(
        &self,
        request: Request<pb::SetStateRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let (who, agent) = check_agent(&request, &request.get_ref().agent_id)?;
        let r = request.into_inner();
        let requested = requested(r.state, &r.reason_code)?;
        let view = self
            .desktops
            .set_state(&agent, requested, r.expected_version)
            .map_err(desk_status)?;
        tracing::info!(by = %who.actor(), %agent, state = view.state.name(), "agent state set");
        Ok(Response::new(status_to_proto(&view)))
    }

    async fn extend_wrap_up(
        &self,
        request: Request<pb::ExtendWrapUpRequest>,
    ) -> Result<Response<pb::ExtendWrapUpResponse>, Status> {
        let (_, agent) = check_agent(&request, &request.get_ref().agent_id)?;
        let seconds = request.into_inner().seconds;
        if seconds == 0 {
            return Err(invalid("seconds", "must be at least 1"));
        }
        let deadline = self
            .desktops
            .extend_wrap_up(&agent, seconds.into())
            .map_err(desk_status)?;
        Ok(Response::new(pb::ExtendWrapUpResponse {
            deadline: ms_timestamp(deadline),
        }))
    }

    async fn complete_wrap_up(
        &self,
        request: Request<pb::CompleteWrapUpRequest>,
    ) -> Result<Response<pb::CompleteWrapUpResponse>, Status> {
        let (_, agent) = check_agent(&request, &request.get_ref().agent_id)?;
        let r = request.into_inner();
        self.desktops
            .complete_wrap_up(&agent, r.disposition_code.trim(), &r.notes)
            .map_err(desk_status)?;
        Ok(Response::new(pb::CompleteWrapUpResponse {}))
    }

    async fn transfer_call(
        &self,
        request: Request<pb::TransferCallRequest>,
    ) -> Result<Response<pb::CallControlResponse>, Status> {
        use pb::transfer_call_request::To;
        let (_, agent) = check_agent(&request, &request.get_ref().agent_id)?;
        let r = request.into_inner();
        let call = call_id(&r.call_id)?;
        let to = match r.to {
            Some(To::Queue(q)) if !q.trim().is_empty() => TransferTarget::Queue(q.trim().into()),
            Some(To::Agent(a)) if !a.trim().is_empty() => TransferTarget::Agent(a.trim().into()),
            Some(To::Uri(u)) if is_ip_sip_uri(&u) => TransferTarget::Uri(u),
            Some(To::Uri(u)) => {
                return Err(invalid(
                    "uri",
                    format!(
                        "{u:?} is not a SIP URI with an IP address: write sip:user@IP[:port] \
                         (hotlined does no DNS)"
                    ),
                ));
            }
            _ => return Err(invalid("to", "give a queue, an agent or a uri")),
        };
        let control = CallControl::Transfer { to, notes: r.notes };
        self.desktops
            .control(&agent, &call, control)
            .map_err(desk_status)?;
        Ok(Response::new(pb::CallControlResponse {}))
    }

    async fn hang_up(
        &self,
        request: Request<pb::HangUpRequest>,
    ) -> Result<Response<pb::CallControlResponse>, Status> {
        let (_, agent) = check_agent(&request, &request.get_ref().agent_id)?;
        let call = call_id(&request.get_ref().call_id)?;
        self.desktops
            .control(&agent, &call, CallControl::HangUp)
            .map_err(desk_status)?;
        Ok(Response::new(pb::CallControlResponse {}))
    }

    async fn transfer_to_survey(
        &self,
        request: Request<pb::TransferToSurveyRequest>,
    ) -> Result<Response<pb::CallControlResponse>, Status> {
        let (_, agent) = check_agent(&request, &request.get_ref().agent_id)?;
        let call = call_id(&request.get_ref().call_id)?;
        self.desktops
            .control(&agent, &call, CallControl::TransferToSurvey)
            .map_err(desk_status)?;
        Ok(Response::new(pb::CallControlResponse {}))
    }

    async fn stream_wallboard(
        &self,
        request: Request<pb::StreamWallboardRequest>,
    ) -> Result<Response<Self::StreamWallboardStream>, Status> {
        require_admin(&request)?;
        let subscription = self.desktops.subscribe_wallboard();
        Ok(Response::new(pump(subscription, |item| match item {
            StreamItem::Wallboard(update) => Some(wallboard_to_proto(update)),
            StreamItem::Agent(_) => None,
        })))
    }

    async fn list_live_calls(
        &self,
        request: Request<pb::ListLiveCallsRequest>,
    ) -> Result<Response<pb::ListLiveCallsResponse>, Status> {
        require_admin(&request)?;
        let calls = self
            .desktops
            .live_calls()
            .into_iter()
            .map(|c| pb::LiveCall {
                call_id: c.call,
                queue: c.queue,
                priority: c.priority.into(),
                leak: c.leak,
                agent_id: c.agent.unwrap_or_default(),
                phase: match c.phase {
                    LivePhase::Waiting => pb::LivePhase::Waiting,
                    LivePhase::Ringing => pb::LivePhase::Ringing,
                    LivePhase::Talking => pb::LivePhase::Talking,
                    LivePhase::AfterAgent => pb::LivePhase::AfterAgent,
                }
                .into(),
                since: ms_timestamp(c.since_ms),
            })
            .collect();
        Ok(Response::new(pb::ListLiveCallsResponse { calls }))
    }
}
