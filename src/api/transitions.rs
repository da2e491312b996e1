//! The transition methods of `hotline.v1.Tickets` (DispatchTicket … SetComplaintLevel) and
//! the work lists (ListOverdue, ListDueCallbacks): each checks its fields, names the rule
//! function, and hands both to the store's one transition path. Refusals become gRPC
//! statuses here, with times shown in the configured local time zone.
//!
//! Owns the wire side of the rules; the rules decide, the store stores.

use super::auth::Caller;
use super::pb;
use super::requests::{paging, text, ticket_number, unit_code};
use super::tickets::{
    TicketsService, caller, check_access, for_caller, from_timestamp, invalid, level_from,
    store_status, timestamp, to_proto,
};
use crate::store::{Applied, CallbackAttempt, PageCursor, TransitionError};
use crate::tickets::callback::{self, CallbackOutcome, CallbackRequest, Rating};
use crate::tickets::complaint::{self, LevelOverride};
use crate::tickets::deadlines::{self, DeadlineKind};
use crate::tickets::extension::{self, ExtensionDecision, ExtensionRequest};
use crate::tickets::lifecycle::{
    self, AcceptRequest, CloseRequest, DispatchRequest, ReplyRequest, ReturnRequest,
};
use crate::tickets::overdue::{self, DeadlineState, Timeliness};
use crate::tickets::urge::{self, UrgeKind, UrgeRequest};
use crate::tickets::{Actor, Refusal, Rules, TicketFacts, Transition};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use tonic::{Request, Response, Status};

/// Open tickets read per round while filling a ListOverdue page.
const OVERDUE_BATCH: u32 = 200;

/// `message` with every `YYYY-MM-DD HH:MM:SS[.f] UTC` time shown in `tz` instead, so people
/// read refusals in their own clock.
pub(super) fn local_times(message: &str, tz: Tz) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" UTC") {
        let before = &rest[..at];
        let mut parts = before.rsplitn(3, ' ');
        let (time, date) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let stamp = format!("{date} {time}");
        match NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M:%S%.f") {
            Ok(naive) => {
                let head = &before[..before.len() - stamp.len()];
                let local = naive.and_utc().with_timezone(&tz);
                out.push_str(head);
                out.push_str(&local.format("%Y-%m-%d %H:%M").to_string());
                out.push_str(&format!(" ({tz})"));
            }
            Err(_) => out.push_str(&rest[..at + 4]),
        }
        rest = &rest[at + 4..];
    }
    out.push_str(rest);
    out
}

/// A refusal of the rules as a gRPC status; `field` is the request field an `Invalid`
/// refusal is about.
pub(super) fn refusal_status(refusal: &Refusal, field: &str, tz: Tz) -> Status {
    let message = local_times(&refusal.to_string(), tz);
    match refusal {
        Refusal::WrongActor { .. } => Status::permission_denied(message),
        Refusal::Invalid { .. } => invalid(field, message),
        Refusal::IllegalTransition { .. } | Refusal::TooLate { .. } | Refusal::TooEarly { .. } => {
            Status::failed_precondition(message)
        }
    }
}

/// One rule, as the API calls it: facts, the acting caller, now, the rules.
type RuleFn<'a> = Box<
    dyn FnOnce(&TicketFacts, &Actor, DateTime<Utc>, &Rules) -> Result<Transition, Refusal>
        + Send
        + 'a,
>;

impl TicketsService {
    pub(super) fn transition_status(&self, err: TransitionError, field: &str) -> Status {
        match err {
            TransitionError::Refused(refusal) => {
                refusal_status(&refusal, field, self.rules.calendar.time_zone())
            }
            TransitionError::Store(err) => store_status(err),
        }
    }

    /// The one way every transition method runs: the caller as actor, the clock's now, the
    /// rule, the store's transaction. `field` names the request field for `Invalid`.
    async fn run(
        &self,
        caller: &Caller,
        name: &str,
        field: &str,
        attempt: Option<&CallbackAttempt>,
        rule: RuleFn<'_>,
    ) -> Result<Applied, Status> {
        let number = ticket_number(name, "name")?;
        let actor = caller.rules_actor();
        let rules = &self.rules;
        let now = self.now();
        let apply = |facts: &TicketFacts, now| rule(facts, &actor, now, rules).map(Some);
        let applied = match attempt {
            None => self.store.apply(number, now, rules, apply).await,
            Some(attempt) => {
                self.store
                    .apply_callback(number, now, rules, attempt, apply)
                    .await
            }
        }
        .map_err(|err| self.transition_status(err, field))?;
        self.committed(&applied.ticket);
        if let Some(event) = applied.events.last() {
            tracing::info!(
                ticket = %applied.ticket.number,
                actor = %caller.actor(),
                action = event.action.code(),
                status = %applied.ticket.status,
                "ticket transition"
            );
        }
        Ok(applied)
    }

    async fn plain(
        &self,
        caller: &Caller,
        name: &str,
        field: &str,
        rule: RuleFn<'_>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let applied = self.run(caller, name, field, None, rule).await?;
        Ok(Response::new(for_caller(caller, to_proto(applied.ticket))))
    }

    pub(super) async fn dispatch(
        &self,
        request: Request<pb::DispatchTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let unit = unit_code(&r.unit, "unit")?.ok_or_else(|| invalid("unit", "required"))?;
        let request = DispatchRequest { unit };
        self.plain(
            &caller,
            &r.name,
            "unit",
            Box::new(move |f, a, now, rules| lifecycle::dispatch(f, a, &request, now, rules)),
        )
        .await
    }

    pub(super) async fn accept(
        &self,
        request: Request<pb::AcceptTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let request = AcceptRequest {
            contacted_customer: r.contacted_customer,
        };
        self.plain(
            &caller,
            &r.name,
            "name",
            Box::new(move |f, a, now, rules| lifecycle::accept(f, a, &request, now, rules)),
        )
        .await
    }

    pub(super) async fn on_site(
        &self,
        request: Request<pb::ReportOnSiteRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.plain(
            &caller,
            &r.name,
            "name",
            Box::new(lifecycle::report_on_site),
        )
        .await
    }

    /// ReplyTicket, or with `refusal` RefuseApplication.
    pub(super) async fn reply(
        &self,
        request: Request<pb::ReplyTicketRequest>,
        refusal: bool,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        text(&r.summary, "summary", 4000, true)?;
        let request = ReplyRequest { summary: r.summary };
        self.plain(
            &caller,
            &r.name,
            "summary",
            Box::new(move |f, a, now, rules| match refusal {
                true => lifecycle::refuse_application(f, a, &request, now, rules),
                false => lifecycle::reply(f, a, &request, now, rules),
            }),
        )
        .await
    }

    pub(super) async fn return_(
        &self,
        request: Request<pb::ReturnTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        text(&r.reason, "reason", 2000, true)?;
        let request = ReturnRequest { reason: r.reason };
        self.plain(
            &caller,
            &r.name,
            "reason",
            Box::new(move |f, a, now, rules| lifecycle::return_ticket(f, a, &request, now, rules)),
        )
        .await
    }

    pub(super) async fn extension_request(
        &self,
        request: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let until =
            from_timestamp(r.until, "until")?.ok_or_else(|| invalid("until", "required"))?;
        text(&r.reason, "reason", 2000, true)?;
        let request = ExtensionRequest {
            until,
            reason: r.reason,
        };
        self.plain(
            &caller,
            &r.name,
            "until",
            Box::new(move |f, a, now, rules| {
                extension::request_extension(f, a, &request, now, rules)
            }),
        )
        .await
    }

    pub(super) async fn extension_decision(
        &self,
        request: Request<pb::DecideExtensionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        text(&r.reason, "reason", 2000, !r.grant)?;
        let decision = ExtensionDecision {
            grant: r.grant,
            until: from_timestamp(r.until, "until")?,
            reason: r.reason,
        };
        self.plain(
            &caller,
            &r.name,
            "until",
            Box::new(move |f, a, now, rules| {
                extension::decide_extension(f, a, &decision, now, rules)
            }),
        )
        .await
    }

    pub(super) async fn urge(
        &self,
        request: Request<pb::UrgeTicketRequest>,
    ) -> Result<Response<pb::UrgeTicketResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let kind = match pb::UrgeKind::try_from(r.kind) {
            Ok(pb::UrgeKind::Chase) => UrgeKind::Chase,
            Ok(pb::UrgeKind::AddedInformation) => UrgeKind::AddedInformation,
            Ok(pb::UrgeKind::EscalationRisk) => UrgeKind::EscalationRisk,
            Ok(pb::UrgeKind::Unspecified) => return Err(invalid("kind", "required")),
            Err(_) => return Err(invalid("kind", format!("unknown value {}", r.kind))),
        };
        text(&r.note, "note", 4000, true)?;
        let request = UrgeRequest { kind, note: r.note };
        let applied = self
            .run(
                &caller,
                &r.name,
                "note",
                None,
                Box::new(move |f, a, now, rules| urge::urge(f, a, &request, now, rules)),
            )
            .await?;
        Ok(Response::new(pb::UrgeTicketResponse {
            explanation: applied.explanation.unwrap_or_default(),
            urge_ticket: applied.created.into_iter().next().map(to_proto),
            supervisor_reason: applied.supervisor_reason.unwrap_or_default(),
            ticket: Some(to_proto(applied.ticket)),
        }))
    }

    pub(super) async fn callback(
        &self,
        request: Request<pb::RecordCallbackRequest>,
    ) -> Result<Response<pb::RecordCallbackResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let rating = |value: i32, field: &str| match pb::Rating::try_from(value) {
            Ok(pb::Rating::Satisfied) => Ok(Rating::Satisfied),
            Ok(pb::Rating::BasicallySatisfied) => Ok(Rating::BasicallySatisfied),
            Ok(pb::Rating::Unsatisfied) => Ok(Rating::Unsatisfied),
            Ok(pb::Rating::Unspecified) => {
                Err(invalid(field, "required when the customer was reached"))
            }
            Err(_) => Err(invalid(field, format!("unknown value {value}"))),
        };
        text(&r.new_demand, "new_demand", 4000, false)?;
        text(&r.note, "note", 2000, false)?;
        let outcome = match pb::CallbackOutcome::try_from(r.outcome) {
            Ok(pb::CallbackOutcome::Reached) => CallbackOutcome::Reached {
                attitude: rating(r.attitude, "attitude")?,
                result: rating(r.result, "result")?,
                new_demand: Some(r.new_demand).filter(|d| !d.trim().is_empty()),
            },
            Ok(pb::CallbackOutcome::Unreachable) => CallbackOutcome::Unreachable,
            Ok(pb::CallbackOutcome::Declined) => CallbackOutcome::Declined,
            Ok(pb::CallbackOutcome::CallLater) => CallbackOutcome::CallLater {
                at: from_timestamp(r.call_back_time, "call_back_time")?.ok_or_else(|| {
                    invalid(
                        "call_back_time",
                        "required when the customer cannot talk now",
                    )
                })?,
            },
            Ok(pb::CallbackOutcome::Unspecified) => return Err(invalid("outcome", "required")),
            Err(_) => return Err(invalid("outcome", format!("unknown value {}", r.outcome))),
        };
        let attempt = CallbackAttempt {
            outcome: outcome.clone(),
            note: r.note,
        };
        let request = CallbackRequest { outcome };
        let applied = self
            .run(
                &caller,
                &r.name,
                "outcome",
                Some(&attempt),
                Box::new(move |f, a, now, rules| {
                    callback::record_callback(f, a, &request, now, rules)
                }),
            )
            .await?;
        Ok(Response::new(pb::RecordCallbackResponse {
            new_ticket: applied.created.into_iter().next().map(to_proto),
            ticket: Some(to_proto(applied.ticket)),
        }))
    }

    pub(super) async fn close(
        &self,
        request: Request<pb::CloseTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        text(&r.reason, "reason", 2000, true)?;
        let request = CloseRequest { reason: r.reason };
        self.plain(
            &caller,
            &r.name,
            "reason",
            Box::new(move |f, a, now, rules| lifecycle::close(f, a, &request, now, rules)),
        )
        .await
    }

    pub(super) async fn complaint_validity(
        &self,
        request: Request<pb::ClassifyComplaintRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        text(&r.reason, "reason", 2000, true)?;
        let request = complaint::Classification {
            valid: r.valid,
            reason: r.reason,
        };
        self.plain(
            &caller,
            &r.name,
            "reason",
            Box::new(move |f, a, now, rules| complaint::classify(f, a, &request, now, rules)),
        )
        .await
    }

    pub(super) async fn complaint_level(
        &self,
        request: Request<pb::SetComplaintLevelRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let level = level_from(r.level, "level")?.ok_or_else(|| invalid("level", "required"))?;
        text(&r.reason, "reason", 2000, true)?;
        let request = LevelOverride {
            level,
            reason: r.reason,
        };
        self.plain(
            &caller,
            &r.name,
            "name",
            Box::new(move |f, a, now, rules| complaint::override_level(f, a, &request, now, rules)),
        )
        .await
    }

    pub(super) async fn overdue(
        &self,
        request: Request<pb::ListOverdueRequest>,
    ) -> Result<Response<pb::ListOverdueResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let (page_size, mut after) = paging(r.page_size, &r.page_token)?;
        let wanted = match pb::Timeliness::try_from(r.timeliness) {
            Ok(pb::Timeliness::Unspecified) => None,
            Ok(pb::Timeliness::NearlyDue) => Some(Timeliness::NearlyDue),
            Ok(pb::Timeliness::Overdue) => Some(Timeliness::Overdue),
            Err(_) => {
                return Err(invalid(
                    "timeliness",
                    format!("unknown value {}", r.timeliness),
                ));
            }
        };
        let requested_unit = unit_code(&r.unit, "unit")?;
        let unit = match (&caller, requested_unit) {
            (Caller::Unit { unit, .. }, Some(asked)) if asked != *unit => {
                return Err(Status::permission_denied(format!(
                    "this unit token may only list tickets of unit {unit}"
                )));
            }
            (Caller::Unit { unit, .. }, _) => Some(unit.clone()),
            (_, asked) => asked,
        };
        let now = self.now();
        let prefilter = (wanted == Some(Timeliness::Overdue)).then_some(now);
        let mut found = Vec::new();
        let next = loop {
            let batch = self
                .store
                .open_tickets(unit.as_deref(), prefilter, after, OVERDUE_BATCH)
                .await
                .map_err(store_status)?;
            let exhausted = batch.len() < OVERDUE_BATCH as usize;
            let mut full = false;
            for (ticket, stored) in batch {
                after = Some(PageCursor {
                    at: ticket.created_at,
                    id: ticket.id,
                });
                if check_access(&caller, &ticket).is_err() {
                    continue;
                }
                let deadlines = deadlines::compute(&stored.facts, &self.rules);
                let states: Vec<DeadlineState> =
                    overdue::classify(&stored.facts, &deadlines, now, &self.rules)
                        .into_iter()
                        .filter(|s| match wanted {
                            Some(wanted) => s.timeliness == wanted,
                            None => s.timeliness != Timeliness::OnTime,
                        })
                        .collect();
                if states.is_empty() {
                    continue;
                }
                found.push(pb::OverdueTicket {
                    ticket: Some(for_caller(&caller, to_proto(ticket))),
                    deadlines: states.iter().map(deadline_state).collect(),
                });
                if found.len() == page_size as usize {
                    full = true;
                    break;
                }
            }
            if full {
                break after;
            }
            if exhausted {
                break None;
            }
        };
        Ok(Response::new(pb::ListOverdueResponse {
            tickets: found,
            next_page_token: next.map(PageCursor::to_token).unwrap_or_default(),
        }))
    }

    pub(super) async fn due_callbacks(
        &self,
        request: Request<pb::ListDueCallbacksRequest>,
    ) -> Result<Response<pb::ListDueCallbacksResponse>, Status> {
        let caller = caller(&request)?;
        if !matches!(caller, Caller::Admin { .. } | Caller::Agent { .. }) {
            return Err(Status::permission_denied(
                "callbacks are made by the centre: use an agent or admin token",
            ));
        }
        let r = request.into_inner();
        let (page_size, after) = paging(r.page_size, &r.page_token)?;
        let mut tickets = self
            .store
            .due_callbacks(self.now(), after, page_size + 1)
            .await
            .map_err(store_status)?;
        let next = if tickets.len() > page_size as usize {
            tickets.truncate(page_size as usize);
            tickets.last().and_then(|t| {
                Some(PageCursor {
                    at: t.next_callback_at?,
                    id: t.id,
                })
            })
        } else {
            None
        };
        Ok(Response::new(pb::ListDueCallbacksResponse {
            tickets: tickets.into_iter().map(to_proto).collect(),
            next_page_token: next.map(PageCursor::to_token).unwrap_or_default(),
        }))
    }
}

pub(super) fn deadline_kind_to(kind: DeadlineKind) -> i32 {
    (match kind {
        DeadlineKind::Dispatch => pb::DeadlineKind::Dispatch,
        DeadlineKind::Contact => pb::DeadlineKind::Contact,
        DeadlineKind::Finish => pb::DeadlineKind::Finish,
        DeadlineKind::Investigation => pb::DeadlineKind::Investigation,
        DeadlineKind::Callback => pb::DeadlineKind::Callback,
        DeadlineKind::OnSite => pb::DeadlineKind::OnSite,
        DeadlineKind::ReplyToCaller => pb::DeadlineKind::ReplyToCaller,
    }) as i32
}

pub(super) fn timeliness_to(timeliness: Timeliness) -> i32 {
    (match timeliness {
        Timeliness::OnTime => pb::Timeliness::Unspecified,
        Timeliness::NearlyDue => pb::Timeliness::NearlyDue,
        Timeliness::Overdue => pb::Timeliness::Overdue,
    }) as i32
}

fn deadline_state(state: &DeadlineState) -> pb::DeadlineState {
    pb::DeadlineState {
        kind: deadline_kind_to(state.deadline.kind),
        due: Some(timestamp(state.deadline.due)),
        timeliness: timeliness_to(state.timeliness),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_times_read_in_local_time() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(
            local_times("the limit was 2026-10-08 07:00:00 UTC; a unit returns", tz),
            "the limit was 2026-10-08 15:00 (Asia/Shanghai); a unit returns"
        );
        assert_eq!(
            local_times(
                "from 2026-11-24 16:30:00.250 UTC to 2026-11-25 08:00:00 UTC",
                tz
            ),
            "from 2026-11-25 00:30 (Asia/Shanghai) to 2026-11-25 16:00 (Asia/Shanghai)"
        );
        assert_eq!(local_times("no time UTC here", tz), "no time UTC here");
    }
}
