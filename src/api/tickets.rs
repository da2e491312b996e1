//! `hotline.v1.Tickets`: checks every request field (errors name the field), applies the
//! caller's role, and maps between the wire messages and the store. The transition methods
//! live in `transitions`, the alert stream in `alerts`; this file holds the service state,
//! the CRUD methods and the one trait impl that routes to them.

use super::alerts::TicketAlert;
use super::auth::Caller;
use super::intake;
use super::pb;
use super::requests::{
    customer_id, new_ticket, paging, phone_number, priority, text, ticket_number, unit_code,
};
use crate::call::TicketChanges;
use crate::store::{PageCursor, Store, StoreError, Ticket, TicketFilter, TicketPatch};
use crate::tickets::callback::Rating;
use crate::tickets::complaint;
use crate::tickets::{Category, Channel, ComplaintLevel, Rules, Status as TicketStatus};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

pub(super) const DEFAULT_PAGE_SIZE: u32 = 50;
pub(super) const MAX_PAGE_SIZE: u32 = 500;
pub(super) const NAME_PREFIX: &str = "tickets/";
/// Alerts kept for slow stream readers before the oldest are dropped.
const ALERT_BACKLOG: usize = 1024;
/// What `UpdateTicket` may change. The status moves only through the transition methods.
const UPDATABLE: &[&str] = &[
    "caller_name",
    "caller_address",
    "description",
    "category",
    "priority",
    "responsible_unit",
    "customer_id",
    "referred",
    "daily_report_key_item",
    "callback_declined",
    "repeat_call",
    "caller_insists_night_dispatch",
    "agreed_callback_time",
    "agreed_visit_time",
    "attachments",
];

/// The current time. The service reads the clock only through this, so tests can set it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The `Tickets` service over a [`Store`] and the service rules.
#[derive(Clone)]
pub struct TicketsService {
    pub(super) store: Store,
    pub(super) rules: Arc<Rules>,
    pub(super) clock: Clock,
    pub(super) alerts: broadcast::Sender<TicketAlert>,
    /// Told after every committed change of a ticket filed for a call (the agent's desktop).
    pub(super) changes: Option<TicketChanges>,
}

impl TicketsService {
    /// The service on the system clock.
    pub fn new(store: Store, rules: Rules) -> TicketsService {
        TicketsService {
            store,
            rules: Arc::new(rules),
            clock: Arc::new(Utc::now),
            alerts: broadcast::channel(ALERT_BACKLOG).0,
            changes: None,
        }
    }

    /// The same service telling the agents' desktops about changes of their calls' tickets.
    pub fn with_ticket_changes(mut self, changes: TicketChanges) -> TicketsService {
        self.changes = Some(changes);
        self
    }

    /// After a commit: the desktop of the agent with the ticket's call hears of it.
    pub(super) fn committed(&self, ticket: &Ticket) {
        if let (Some(changes), Some(call)) = (&self.changes, &ticket.call_id) {
            changes.changed(call, &ticket.number, ticket.status.code());
        }
    }

    /// The same service on another clock (tests: a fixed or adjustable time).
    pub fn with_clock(mut self, clock: Clock) -> TicketsService {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

pub(super) fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

pub(super) fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::NotFound(what) => Status::not_found(format!("{what} not found")),
        StoreError::Conflict(what) => {
            Status::aborted(format!("{what}; get the ticket again and retry"))
        }
        StoreError::Invalid { field, reason } => invalid(&format!("ticket.{field}"), reason),
        err @ StoreError::Unavailable(_) => {
            tracing::warn!(error = %err, "ticket store unavailable");
            Status::unavailable(err.to_string())
        }
        err @ StoreError::Other(_) => {
            tracing::error!(error = %err, "ticket store failed");
            Status::internal(format!("{err}; see the hotlined log"))
        }
    }
}

pub(super) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no token checked for this call"))
}

/// Integration tokens see only their own channel.
pub(super) fn check_channel(caller: &Caller, channel: Channel) -> Result<(), Status> {
    match caller {
        Caller::Integration { channel: own, .. } if *own != channel => {
            Err(Status::permission_denied(format!(
                "this token may only use tickets of channel {own}, not {channel}"
            )))
        }
        _ => Ok(()),
    }
}

/// Whether `caller` may read `ticket`: integrations their channel's, units those
/// dispatched to them.
pub(super) fn check_access(caller: &Caller, ticket: &Ticket) -> Result<(), Status> {
    check_channel(caller, ticket.channel)?;
    match caller {
        Caller::Unit { unit, .. } if ticket.responsible_unit.as_deref() != Some(unit) => {
            Err(Status::permission_denied(format!(
                "this unit token may only use tickets dispatched to unit {unit}"
            )))
        }
        _ => Ok(()),
    }
}

/// Unit tokens do not create or edit tickets: they act through the transition methods.
pub(super) fn refuse_unit(caller: &Caller, what: &str) -> Result<(), Status> {
    match caller {
        Caller::Unit { .. } => Err(Status::permission_denied(format!(
            "unit tokens cannot {what}; units act through AcceptTicket, ReplyTicket, \
             ReturnTicket and RequestExtension"
        ))),
        _ => Ok(()),
    }
}

/// Maps a proto enum to the model's coded enum through their names
/// (`CHANNEL_GOV_12345` ↔ `gov_12345`), and back.
macro_rules! enum_mapping {
    ($from:ident, $to:ident, $proto:ty, $model:ty, $prefix:literal) => {
        /// `None` for UNSPECIFIED; an unknown number is INVALID_ARGUMENT naming `field`.
        pub(super) fn $from(value: i32, field: &str) -> Result<Option<$model>, Status> {
            let proto = <$proto>::try_from(value)
                .map_err(|_| invalid(field, format!("unknown value {value}")))?;
            if proto as i32 == 0 {
                return Ok(None);
            }
            proto
                .as_str_name()
                .strip_prefix($prefix)
                .and_then(|code| code.to_ascii_lowercase().parse::<$model>().ok())
                .map(Some)
                .ok_or_else(|| invalid(field, format!("unsupported value {value}")))
        }

        pub(super) fn $to(value: $model) -> i32 {
            <$proto>::from_str_name(&format!("{}{}", $prefix, value.code().to_ascii_uppercase()))
                .map_or(0, |proto| proto as i32)
        }
    };
}

enum_mapping!(channel_from, channel_to, pb::Channel, Channel, "CHANNEL_");
enum_mapping!(
    category_from,
    category_to,
    pb::Category,
    Category,
    "CATEGORY_"
);
enum_mapping!(status_from, status_to, pb::Status, TicketStatus, "STATUS_");
enum_mapping!(
    level_from,
    level_to,
    pb::ComplaintLevel,
    ComplaintLevel,
    "COMPLAINT_LEVEL_"
);

pub(super) fn rating_to(rating: Option<&str>) -> i32 {
    let rating = match rating {
        Some(code) if code == Rating::Satisfied.code() => pb::Rating::Satisfied,
        Some(code) if code == Rating::BasicallySatisfied.code() => pb::Rating::BasicallySatisfied,
        Some(code) if code == Rating::Unsatisfied.code() => pb::Rating::Unsatisfied,
        _ => pb::Rating::Unspecified,
    };
    rating as i32
}

pub(super) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(super) fn from_timestamp(
    at: Option<prost_types::Timestamp>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, Status> {
    at.map(|ts| {
        u32::try_from(ts.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos))
            .ok_or_else(|| invalid(field, "not a valid timestamp"))
    })
    .transpose()
}

pub(super) fn to_proto(t: Ticket) -> pb::Ticket {
    let mut out = pb::Ticket::default();
    intake::to_proto(&t, &mut out);
    pb::Ticket {
        name: format!("{NAME_PREFIX}{}", t.number),
        channel: channel_to(t.channel),
        category: category_to(t.category),
        complaint_level: t.complaint_level.map_or(0, level_to),
        status: status_to(t.status),
        priority: t.priority,
        caller_name: t.caller_name,
        caller_number: t.caller_number,
        caller_address: t.caller_address,
        description: t.description,
        customer_id: t.customer_id,
        responsible_unit: t.responsible_unit.unwrap_or_default(),
        dispatch_due: t.dispatch_due.map(timestamp),
        contact_due: t.contact_due.map(timestamp),
        finish_due: t.finish_due.map(timestamp),
        callback_due: t.callback_due.map(timestamp),
        parent_ticket: t
            .parent_number
            .map(|n| format!("{NAME_PREFIX}{n}"))
            .unwrap_or_default(),
        call_id: t.call_id.unwrap_or_default(),
        request_id: t.request_id.unwrap_or_default(),
        created_by: t.created_by,
        create_time: Some(timestamp(t.created_at)),
        update_time: Some(timestamp(t.updated_at)),
        etag: t.version.to_string(),
        investigation_due: t.investigation_due.map(timestamp),
        next_callback_time: t.next_callback_at.map(timestamp),
        area: t.area,
        supervisor_reason: t.supervisor_reason.unwrap_or_default(),
        satisfaction_attitude: rating_to(t.satisfaction_attitude.as_deref()),
        satisfaction_result: rating_to(t.satisfaction_result.as_deref()),
        on_site_due: t.on_site_due.map(timestamp),
        on_site_time: t.on_site_at.map(timestamp),
        reply_to_caller_due: t.reply_to_caller_due.map(timestamp),
        number: t.number,
        ..out
    }
}

/// The ticket as `caller` may see it: on a tip-off (举报), a unit never sees who informed —
/// name, number, address, household file (000 §13.4).
pub(super) fn for_caller(caller: &Caller, mut ticket: pb::Ticket) -> pb::Ticket {
    if matches!(caller, Caller::Unit { .. }) && ticket.category == pb::Category::TipOff as i32 {
        ticket.caller_name.clear();
        ticket.caller_number.clear();
        ticket.caller_address.clear();
        ticket.customer_id = None;
    }
    ticket
}

/// The patch named by `update_mask`, each named field checked; `category` is the ticket's
/// current one.
fn patch(
    mask: Option<prost_types::FieldMask>,
    t: &pb::Ticket,
    category: Category,
    now: DateTime<Utc>,
) -> Result<TicketPatch, Status> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(invalid(
            "update_mask",
            format!(
                "required; name the fields to change: {}",
                UPDATABLE.join(", ")
            ),
        ));
    }
    let mut patch = TicketPatch::default();
    let category = match paths.iter().any(|p| p == "category") {
        true => category_from(t.category, "ticket.category")?.unwrap_or(category),
        false => category,
    };
    for path in &paths {
        let field = format!("ticket.{path}");
        if intake::patch_field(&mut patch, path, t, category, now)? {
            continue;
        }
        match path.as_str() {
            "caller_name" => {
                text(&t.caller_name, &field, 100, false)?;
                patch.caller_name = Some(t.caller_name.clone());
            }
            "caller_address" => {
                text(&t.caller_address, &field, 500, false)?;
                patch.caller_address = Some(t.caller_address.clone());
            }
            "description" => {
                text(&t.description, &field, 4000, true)?;
                patch.description = Some(t.description.clone());
            }
            "category" => {
                patch.category = Some(
                    category_from(t.category, &field)?
                        .ok_or_else(|| invalid(&field, "required"))?,
                );
            }
            "complaint_level" => {
                return Err(invalid(
                    "update_mask",
                    "complaint_level changes only through SetComplaintLevel, which takes a \
                     reason and is audited (automatic levels follow the related complaints); \
                     a category change to or from complaint sets or clears it by itself",
                ));
            }
            "priority" => {
                priority(t.priority, &field)?;
                patch.priority = Some(t.priority);
            }
            "responsible_unit" => {
                patch.responsible_unit = Some(unit_code(&t.responsible_unit, &field)?);
            }
            "customer_id" => {
                patch.customer_id = Some(customer_id(t.customer_id, &field)?);
            }
            "status" => {
                return Err(invalid(
                    "update_mask",
                    "status changes only through the ticket transition methods (dispatch, \
                     accept, return, reply, close), never by UpdateTicket",
                ));
            }
            "name"
            | "number"
            | "channel"
            | "dispatch_due"
            | "contact_due"
            | "finish_due"
            | "callback_due"
            | "parent_ticket"
            | "call_id"
            | "request_id"
            | "created_by"
            | "create_time"
            | "update_time"
            | "etag"
            | "caller_number"
            | "investigation_due"
            | "next_callback_time"
            | "area"
            | "supervisor_reason"
            | "satisfaction_attitude"
            | "satisfaction_result"
            | "on_site_due"
            | "complaint_validity"
            | "application_refused"
            | "on_site_time"
            | "reply_to_caller_due" => {
                return Err(invalid(
                    "update_mask",
                    format!(
                        "field {path:?} cannot be changed; changeable: {}",
                        UPDATABLE.join(", ")
                    ),
                ));
            }
            other => {
                return Err(invalid(
                    "update_mask",
                    format!(
                        "unknown field {other:?}; changeable: {}",
                        UPDATABLE.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(patch)
}

impl TicketsService {
    /// Whether a ticket of `category` from `caller_number` is a repeat call: known from the
    /// caller's history where it can be (003 §11).
    pub(super) async fn is_repeat(
        &self,
        caller_number: &str,
        category: Category,
        now: DateTime<Utc>,
    ) -> Result<bool, Status> {
        let window = self.rules.config.repeat_window_days;
        if window == 0 || caller_number.is_empty() {
            return Ok(false);
        }
        let since = now - chrono::Duration::days(window.into());
        self.store
            .filed_before(caller_number, category, since)
            .await
            .map_err(store_status)
    }

    /// Creates one ticket from a create request: checks, intake facts, a repeat found from
    /// the history unless `known_repeat` says, complaint levels. A retried `request_id`
    /// answers with the first ticket.
    pub(super) async fn create_one(
        &self,
        caller: &Caller,
        request: pb::CreateTicketRequest,
        now: DateTime<Utc>,
        known_repeat: Option<bool>,
    ) -> Result<Ticket, Status> {
        let (new, mut intake) = new_ticket(caller, request, now, &self.rules)?;
        if !intake.repeat_demand {
            intake.repeat_demand = match known_repeat {
                Some(repeat) => repeat,
                None => {
                    self.is_repeat(&new.caller_number, new.category, now)
                        .await?
                }
            };
        }
        let (mut ticket, created) = self
            .store
            .create_ticket_with(&new, &intake, &self.rules)
            .await
            .map_err(store_status)?;
        if created {
            tracing::info!(ticket = %ticket.number, actor = %new.created_by, "ticket created");
            if ticket.category == Category::Complaint {
                ticket = self.level_complaints(&ticket.number, now).await?;
            }
        } else if ticket.created_by != new.created_by {
            // A request_id is a retry key, not a way to read someone else's ticket.
            return Err(Status::already_exists(
                "request_id: already used by another client; use a fresh request_id",
            ));
        }
        Ok(ticket)
    }

    /// Raises a complaint's level when the related complaints call for it (as the system,
    /// audited), recomputing its deadlines.
    async fn level_complaint(&self, number: &str, now: DateTime<Utc>) -> Result<Ticket, Status> {
        let related = self
            .store
            .related_complaints(number, &self.rules.config.complaint, now)
            .await
            .map_err(store_status)?;
        let rules = &self.rules;
        let applied = self
            .store
            .apply(number, now, rules, |facts, now| {
                complaint::apply_automatic_level(facts, &related, now, rules)
            })
            .await
            .map_err(|err| self.transition_status(err, "ticket.complaint_level"))?;
        Ok(applied.ticket)
    }

    /// A new complaint (or a ticket that became one) may reach a threshold for itself and
    /// for every open complaint it is related to: levels them all, itself first.
    async fn level_complaints(&self, number: &str, now: DateTime<Utc>) -> Result<Ticket, Status> {
        let ticket = self.level_complaint(number, now).await?;
        let related = self
            .store
            .related_open_complaints(number)
            .await
            .map_err(store_status)?;
        for other in related {
            self.level_complaint(&other, now).await?;
        }
        Ok(ticket)
    }
}

#[tonic::async_trait]
impl pb::tickets_server::Tickets for TicketsService {
    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let ticket = self
            .create_one(&caller, request.into_inner(), self.now(), None)
            .await?;
        Ok(Response::new(to_proto(ticket)))
    }

    async fn create_tickets(
        &self,
        request: Request<pb::CreateTicketsRequest>,
    ) -> Result<Response<pb::CreateTicketsResponse>, Status> {
        self.create_for_demands(request).await
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let number = ticket_number(&request.get_ref().name, "name")?;
        let ticket = self.store.get_ticket(number).await.map_err(store_status)?;
        check_access(&caller, &ticket)?;
        Ok(Response::new(for_caller(&caller, to_proto(ticket))))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let (page_size, after) = paging(r.page_size, &r.page_token)?;
        let caller_number = match r.caller_number.as_str() {
            "" => None,
            number => {
                phone_number(number, "caller_number")?;
                Some(number.to_owned())
            }
        };
        let mut channel = channel_from(r.channel, "channel")?;
        if let Caller::Integration { channel: own, .. } = &caller {
            check_channel(&caller, channel.unwrap_or(*own))?;
            channel = Some(*own);
        }
        let responsible_unit = match &caller {
            Caller::Unit { unit, .. } => Some(unit.clone()),
            _ => None,
        };
        let filter = TicketFilter {
            responsible_unit,
            caller_number,
            customer_id: customer_id(r.customer_id, "customer_id")?,
            status: status_from(r.status, "status")?,
            category: category_from(r.category, "category")?,
            channel,
            created_from: from_timestamp(r.created_after, "created_after")?,
            created_before: from_timestamp(r.created_before, "created_before")?,
        };
        if let (Some(from), Some(before)) = (filter.created_from, filter.created_before)
            && before <= from
        {
            return Err(invalid(
                "created_before",
                "must be later than created_after",
            ));
        }
        // A unit looking a caller up must not learn that they informed (000 §13.4).
        let hide_tip_offs = matches!(caller, Caller::Unit { .. })
            && (filter.caller_number.is_some() || filter.customer_id.is_some());
        let page = self
            .store
            .list_tickets(&filter, page_size, after)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListTicketsResponse {
            tickets: page
                .tickets
                .into_iter()
                .filter(|t| !(hide_tip_offs && t.category == Category::TipOff))
                .map(|t| for_caller(&caller, to_proto(t)))
                .collect(),
            next_page_token: page.next.map(PageCursor::to_token).unwrap_or_default(),
        }))
    }

    async fn update_ticket(
        &self,
        request: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        refuse_unit(&caller, "edit tickets")?;
        let r = request.into_inner();
        let t = r.ticket.ok_or_else(|| invalid("ticket", "required"))?;
        let number = ticket_number(&t.name, "ticket.name")?;
        let expected_version = match t.etag.as_str() {
            "" => None,
            etag => Some(
                etag.parse::<i32>()
                    .map_err(|_| invalid("ticket.etag", "malformed; use the etag you read"))?,
            ),
        };
        let current = self.store.get_ticket(number).await.map_err(store_status)?;
        check_channel(&caller, current.channel)?;
        let patch = patch(r.update_mask, &t, current.category, self.now())?;
        // Once dispatched, the unit changes only through DispatchTicket (and ReturnTicket).
        if patch.responsible_unit.is_some()
            && !matches!(current.status, TicketStatus::Draft | TicketStatus::Returned)
        {
            return Err(Status::failed_precondition(format!(
                "ticket.responsible_unit: cannot change the unit of a ticket that is {} ({}); \
                 return it and dispatch it again",
                current.status,
                current.status.label()
            )));
        }
        let mut ticket = self
            .store
            .update_ticket(number, expected_version, &patch, &caller.actor())
            .await
            .map_err(store_status)?;
        // The deadlines depend on the category (and with it the complaint level) and on
        // intake facts.
        let rule_facts = |t: &Ticket| {
            (
                t.category,
                t.night_dispatch_insisted,
                t.callback_declined,
                t.agreed_callback_at,
            )
        };
        if rule_facts(&ticket) != rule_facts(&current) {
            ticket = self
                .store
                .refresh_deadlines(number, &self.rules)
                .await
                .map_err(store_status)?;
            if ticket.category == Category::Complaint && current.category != Category::Complaint {
                ticket = self.level_complaints(number, self.now()).await?;
            }
        }
        self.committed(&ticket);
        Ok(Response::new(to_proto(ticket)))
    }

    async fn dispatch_ticket(
        &self,
        request: Request<pb::DispatchTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.dispatch(request).await
    }

    async fn accept_ticket(
        &self,
        request: Request<pb::AcceptTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.accept(request).await
    }

    async fn report_on_site(
        &self,
        request: Request<pb::ReportOnSiteRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.on_site(request).await
    }

    async fn refuse_application(
        &self,
        request: Request<pb::ReplyTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.reply(request, true).await
    }

    async fn reply_ticket(
        &self,
        request: Request<pb::ReplyTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.reply(request, false).await
    }

    async fn return_ticket(
        &self,
        request: Request<pb::ReturnTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.return_(request).await
    }

    async fn request_extension(
        &self,
        request: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.extension_request(request).await
    }

    async fn decide_extension(
        &self,
        request: Request<pb::DecideExtensionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.extension_decision(request).await
    }

    async fn urge_ticket(
        &self,
        request: Request<pb::UrgeTicketRequest>,
    ) -> Result<Response<pb::UrgeTicketResponse>, Status> {
        self.urge(request).await
    }

    async fn record_callback(
        &self,
        request: Request<pb::RecordCallbackRequest>,
    ) -> Result<Response<pb::RecordCallbackResponse>, Status> {
        self.callback(request).await
    }

    async fn close_ticket(
        &self,
        request: Request<pb::CloseTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.close(request).await
    }

    async fn classify_complaint(
        &self,
        request: Request<pb::ClassifyComplaintRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.complaint_validity(request).await
    }

    async fn set_complaint_level(
        &self,
        request: Request<pb::SetComplaintLevelRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.complaint_level(request).await
    }

    async fn list_overdue(
        &self,
        request: Request<pb::ListOverdueRequest>,
    ) -> Result<Response<pb::ListOverdueResponse>, Status> {
        self.overdue(request).await
    }

    async fn list_due_callbacks(
        &self,
        request: Request<pb::ListDueCallbacksRequest>,
    ) -> Result<Response<pb::ListDueCallbacksResponse>, Status> {
        self.due_callbacks(request).await
    }

    type WatchTicketAlertsStream = super::alerts::AlertStream;

    async fn watch_ticket_alerts(
        &self,
        request: Request<pb::WatchTicketAlertsRequest>,
    ) -> Result<Response<Self::WatchTicketAlertsStream>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(super::alerts::stream_for(
            caller,
            self.alerts.subscribe(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_value_has_a_proto_value_and_back() {
        for &c in Channel::ALL {
            assert_eq!(channel_from(channel_to(c), "f").unwrap(), Some(c));
        }
        for &c in Category::ALL {
            assert_eq!(category_from(category_to(c), "f").unwrap(), Some(c));
        }
        for &s in TicketStatus::ALL {
            assert_eq!(status_from(status_to(s), "f").unwrap(), Some(s));
        }
        for &l in ComplaintLevel::ALL {
            assert_eq!(level_from(level_to(l), "f").unwrap(), Some(l));
        }
        assert_eq!(channel_from(0, "f").unwrap(), None);
        let err = channel_from(99, "ticket.channel").unwrap_err();
        assert_eq!(err.message(), "ticket.channel: unknown value 99");
    }

    #[test]
    fn ticket_names_are_checked() {
        assert_eq!(
            ticket_number("tickets/GD20261122-000123", "name").unwrap(),
            "GD20261122-000123"
        );
        for bad in [
            "GD20261122-000123",
            "tickets/GD2026112-000123",
            "tickets/XX20261122-000123",
            "tickets/GD20261122-00012a",
            "tickets/GD20261122_000123",
        ] {
            let err = ticket_number(bad, "name").unwrap_err();
            assert!(err.message().starts_with("name: must look like"), "{bad}");
        }
    }
}
