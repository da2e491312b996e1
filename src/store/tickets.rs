//! Tickets and their audit trail: idempotent create with per-day numbers, get, keyset-paged
//! listing, and field updates that write one `ticket_events` row per changed field in the
//! same transaction.

use super::ticket_row::TicketRow;
use super::{Store, StoreError};
use crate::tickets::deadlines;
use crate::tickets::{Category, Channel, ComplaintLevel, Rules, Status, TicketFacts};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, QueryBuilder, Transaction};

/// Every ticket column, plus the parent's number (urges point at the ticket they chase).
macro_rules! ticket_select {
    ($($rest:literal)?) => {
        concat!(
            "SELECT t.id, t.number, t.channel, t.category, t.complaint_level, t.status, ",
            "t.priority, t.caller_name, t.caller_number, t.caller_address, t.description, ",
            "t.customer_id, t.responsible_unit, t.dispatch_due, t.contact_due, t.finish_due, ",
            "t.callback_due, t.investigation_due, t.on_site_due, t.on_site_at, ",
            "t.reply_to_caller_due, t.referred, t.daily_report_key_item, t.callback_declined, ",
            "t.repeat_demand, t.night_dispatch_insisted, t.agreed_callback_at, t.agreed_visit_at, ",
            "t.area, t.complaint_valid, t.application_refused, ",
            "ARRAY(SELECT a.uri FROM ticket_attachments a WHERE a.ticket_id = t.id ORDER BY a.id) ",
            "AS attachment_uris, ",
            "ARRAY(SELECT a.kind FROM ticket_attachments a WHERE a.ticket_id = t.id ORDER BY a.id) ",
            "AS attachment_kinds, t.next_callback_at, t.supervisor_reason, ",
            "t.satisfaction_attitude, t.satisfaction_result, ",
            "p.number AS parent_number, t.call_id, t.request_id, t.created_by, ",
            "t.created_at, t.updated_at, t.version ",
            "FROM tickets t LEFT JOIN tickets p ON p.id = t.parent_ticket_id "
            $(, $rest)?
        )
    };
}

/// A ticket (工单) as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: i64,
    /// `GD<yyyymmdd>-<seq>`, the intake day in the store's time zone.
    pub number: String,
    pub channel: Channel,
    pub category: Category,
    pub complaint_level: Option<ComplaintLevel>,
    pub status: Status,
    /// 0 (normal) to 9 (most urgent).
    pub priority: i32,
    pub caller_name: String,
    pub caller_number: String,
    pub caller_address: String,
    pub description: String,
    pub customer_id: Option<i64>,
    /// Code of the unit that must handle it.
    pub responsible_unit: Option<String>,
    pub dispatch_due: Option<DateTime<Utc>>,
    pub contact_due: Option<DateTime<Utc>>,
    pub finish_due: Option<DateTime<Utc>>,
    pub callback_due: Option<DateTime<Utc>>,
    pub investigation_due: Option<DateTime<Utc>>,
    /// A leak's: the unit on site by then, and when it reported being there.
    pub on_site_due: Option<DateTime<Utc>>,
    pub on_site_at: Option<DateTime<Utc>>,
    /// Consultations: the centre answers the caller by then.
    pub reply_to_caller_due: Option<DateTime<Utc>>,
    /// A referred item (转办件) and a daily-report key item (日报重点件): human callbacks.
    pub referred: bool,
    pub daily_report_key_item: bool,
    /// The caller declined a callback.
    pub callback_declined: bool,
    /// A repeat of an earlier demand (重复件).
    pub repeat_demand: bool,
    /// The caller insists on handling at night (lifts the heating line's night hold).
    pub night_dispatch_insisted: bool,
    /// Times agreed with the caller: the callback (约时) and a repair visit.
    pub agreed_callback_at: Option<DateTime<Utc>>,
    pub agreed_visit_at: Option<DateTime<Utc>>,
    /// Photos and documents by reference, oldest first.
    pub attachments: Vec<Attachment>,
    /// A complaint's check: valid, invalid, or `None` not yet.
    pub complaint_valid: Option<bool>,
    /// A service application its unit refused (the reply explains why).
    pub application_refused: bool,
    /// The area (district, estate) complaints are grouped by.
    pub area: String,
    /// When the callback agents should try next.
    pub next_callback_at: Option<DateTime<Utc>>,
    /// Why the ticket waits in the supervisor's queue; `None` when it does not.
    pub supervisor_reason: Option<String>,
    /// The latest callback's ratings (codes of `callback::Rating`).
    pub satisfaction_attitude: Option<String>,
    pub satisfaction_result: Option<String>,
    /// Number of the ticket an urge chases.
    pub parent_number: Option<String>,
    /// The call it came from.
    pub call_id: Option<String>,
    pub request_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change.
    pub version: i32,
}

/// What a new ticket holds; the store adds number, timestamps and version.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// Makes the create idempotent: a second create with the same id returns the first ticket.
    pub request_id: Option<String>,
    pub channel: Channel,
    pub category: Category,
    pub complaint_level: Option<ComplaintLevel>,
    pub status: Status,
    pub priority: i32,
    pub caller_name: String,
    pub caller_number: String,
    pub caller_address: String,
    pub description: String,
    pub customer_id: Option<i64>,
    pub responsible_unit: Option<String>,
    pub dispatch_due: Option<DateTime<Utc>>,
    pub contact_due: Option<DateTime<Utc>>,
    pub finish_due: Option<DateTime<Utc>>,
    pub callback_due: Option<DateTime<Utc>>,
    pub investigation_due: Option<DateTime<Utc>>,
    pub area: String,
    pub parent_number: Option<String>,
    pub call_id: Option<String>,
    /// The actor, recorded on the ticket and on its `create` event.
    pub created_by: String,
    /// Intake time: numbers the ticket and starts its dispatch deadline.
    pub created_at: DateTime<Utc>,
}

impl NewTicket {
    /// With the due times the rules give a fresh draft of this ticket taken at `created_at`
    /// (and a complaint without a level made light, L3). Every way a ticket is opened — the
    /// API, follow-ups, the IVR's drafts — goes through this.
    pub fn due_by_rules(mut self, rules: &Rules) -> NewTicket {
        let mut facts = TicketFacts::new_draft(
            uuid::Uuid::nil(),
            self.category,
            self.channel,
            self.created_at,
        );
        if self.complaint_level.is_some() {
            facts.complaint_level = self.complaint_level;
        }
        facts.area = self.area.clone();
        let due = deadlines::compute(&facts, rules);
        let at = |d: Option<deadlines::Deadline>| d.map(|d| d.due);
        self.complaint_level = facts.complaint_level;
        self.dispatch_due = at(due.dispatch);
        self.contact_due = at(due.contact);
        self.finish_due = at(due.finish);
        self.investigation_due = at(due.investigation);
        self.callback_due = at(due.callback);
        // A draft is not dispatched yet, so it has no on-site deadline.
        self
    }
}

/// What intake records about a demand beside its description, which the rules depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntakeFacts {
    /// A referred item (转办件, 003 §11).
    pub referred: bool,
    /// A daily-report key item (日报重点件, 003 §11).
    pub daily_report_key_item: bool,
    /// The caller declined a callback (000 §14.9).
    pub callback_declined: bool,
    /// A repeat of an earlier demand (重复件, 003 §11).
    pub repeat_demand: bool,
    /// The caller insists on handling at night (004 §3).
    pub night_dispatch_insisted: bool,
    /// The time agreed for the callback (约时, 000 §14.9).
    pub agreed_callback_at: Option<DateTime<Utc>>,
    /// The time agreed for a repair visit (000 §14.4).
    pub agreed_visit_at: Option<DateTime<Utc>>,
    /// Photos and documents by reference (000 §15.1.4).
    pub attachments: Vec<Attachment>,
}

/// A photo or document kept elsewhere, by reference.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Attachment {
    pub uri: String,
    /// `photo`, `document`, `audio` or `video`.
    pub kind: String,
}

/// The descriptive fields an update may change; `None` leaves a field alone, and for the
/// nullable ones `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub caller_name: Option<String>,
    pub caller_address: Option<String>,
    pub description: Option<String>,
    /// A change to or from complaint also sets the level to L3 or clears it; the level
    /// itself changes only through the rules (`SetComplaintLevel`, automatic levels).
    pub category: Option<Category>,
    pub priority: Option<i32>,
    pub responsible_unit: Option<Option<String>>,
    pub customer_id: Option<Option<i64>>,
    pub referred: Option<bool>,
    pub daily_report_key_item: Option<bool>,
    pub callback_declined: Option<bool>,
    pub repeat_demand: Option<bool>,
    pub night_dispatch_insisted: Option<bool>,
    pub agreed_callback_at: Option<Option<DateTime<Utc>>>,
    pub agreed_visit_at: Option<Option<DateTime<Utc>>>,
    /// Attachments to add (existing ones stay).
    pub attachments: Vec<Attachment>,
}

impl TicketPatch {
    fn apply(&self, ticket: &Ticket) -> Ticket {
        let mut next = ticket.clone();
        if let Some(v) = &self.caller_name {
            next.caller_name = v.clone();
        }
        if let Some(v) = &self.caller_address {
            next.caller_address = v.clone();
        }
        if let Some(v) = &self.description {
            next.description = v.clone();
        }
        if let Some(v) = self.category
            && v != ticket.category
        {
            next.category = v;
            next.complaint_level = (v == Category::Complaint).then_some(ComplaintLevel::L3);
        }
        if let Some(v) = self.priority {
            next.priority = v;
        }
        if let Some(v) = &self.responsible_unit {
            next.responsible_unit = v.clone();
        }
        if let Some(v) = self.customer_id {
            next.customer_id = v;
        }
        if let Some(v) = self.referred {
            next.referred = v;
        }
        if let Some(v) = self.daily_report_key_item {
            next.daily_report_key_item = v;
        }
        if let Some(v) = self.callback_declined {
            next.callback_declined = v;
        }
        if let Some(v) = self.repeat_demand {
            next.repeat_demand = v;
        }
        if let Some(v) = self.night_dispatch_insisted {
            next.night_dispatch_insisted = v;
        }
        if let Some(v) = self.agreed_callback_at {
            next.agreed_callback_at = v;
        }
        if let Some(v) = self.agreed_visit_at {
            next.agreed_visit_at = v;
        }
        next
    }
}

/// The patchable fields of a ticket as audit text, in a fixed order.
fn audited_fields(t: &Ticket) -> [(&'static str, Option<String>); 15] {
    [
        ("caller_name", Some(t.caller_name.clone())),
        ("caller_address", Some(t.caller_address.clone())),
        ("description", Some(t.description.clone())),
        ("category", Some(t.category.code().to_owned())),
        (
            "complaint_level",
            t.complaint_level.map(|l| l.code().to_owned()),
        ),
        ("priority", Some(t.priority.to_string())),
        ("responsible_unit", t.responsible_unit.clone()),
        ("customer_id", t.customer_id.map(|id| id.to_string())),
        ("referred", Some(t.referred.to_string())),
        (
            "daily_report_key_item",
            Some(t.daily_report_key_item.to_string()),
        ),
        ("callback_declined", Some(t.callback_declined.to_string())),
        ("repeat_demand", Some(t.repeat_demand.to_string())),
        (
            "night_dispatch_insisted",
            Some(t.night_dispatch_insisted.to_string()),
        ),
        (
            "agreed_callback_at",
            t.agreed_callback_at.map(|at| at.to_rfc3339()),
        ),
        (
            "agreed_visit_at",
            t.agreed_visit_at.map(|at| at.to_rfc3339()),
        ),
    ]
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TicketEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `create`, `update`, …
    pub action: String,
    pub field: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
    /// Extra facts of a rule's event (the unit, the new level, the callback plan).
    pub detail: Option<String>,
}

/// List filters; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub caller_number: Option<String>,
    pub customer_id: Option<i64>,
    pub status: Option<Status>,
    pub category: Option<Category>,
    pub channel: Option<Channel>,
    pub responsible_unit: Option<String>,
    /// Inclusive.
    pub created_from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub created_before: Option<DateTime<Utc>>,
}

/// Where a page ended: the last ticket's (sort time, id) — `created_at` for ListTickets and
/// ListOverdue, `next_callback_at` for ListDueCallbacks. Listing orders by this pair, so a
/// cursor never skips or repeats a ticket, whatever is inserted meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    pub at: DateTime<Utc>,
    pub id: i64,
}

impl PageCursor {
    /// An opaque token: hex of `<at µs>:<id>`.
    pub fn to_token(self) -> String {
        format!("{}:{}", self.at.timestamp_micros(), self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `None` when the token was not made by [`PageCursor::to_token`].
    pub fn from_token(token: &str) -> Option<PageCursor> {
        if !token.len().is_multiple_of(2) || !token.is_ascii() {
            return None;
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let text = String::from_utf8(bytes).ok()?;
        let (micros, id) = text.split_once(':')?;
        Some(PageCursor {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// One page of tickets, newest first, and where the next one starts.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    pub next: Option<PageCursor>,
}

impl Store {
    /// Creates a ticket, or returns the one already created with the same `request_id`.
    /// The bool says whether this call created it.
    pub async fn create_ticket(&self, new: &NewTicket) -> Result<(Ticket, bool), StoreError> {
        self.create(new, None).await
    }

    /// Whether `caller_number` filed a ticket of `category` since `since` that is still open:
    /// the caller calls again about a demand not yet settled (a repeat call).
    pub async fn filed_before(
        &self,
        caller_number: &str,
        category: Category,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tickets WHERE caller_number = $1 AND category = $2 \
               AND created_at >= $3 AND status <> 'closed')",
        )
        .bind(caller_number)
        .bind(category.code())
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    /// [`Store::create_ticket`] with the intake facts the rules depend on, and the deadlines
    /// they change by `rules`.
    pub async fn create_ticket_with(
        &self,
        new: &NewTicket,
        intake: &IntakeFacts,
        rules: &Rules,
    ) -> Result<(Ticket, bool), StoreError> {
        self.create(new, Some((intake, rules))).await
    }

    async fn create(
        &self,
        new: &NewTicket,
        intake: Option<(&IntakeFacts, &Rules)>,
    ) -> Result<(Ticket, bool), StoreError> {
        if let Some(existing) = self.ticket_by_request_id(new.request_id.as_deref()).await? {
            return Ok((existing, false));
        }
        let mut tx = self.pool.begin().await?;
        let Some(id) = insert_ticket(&mut tx, self.time_zone, new, None).await? else {
            // A concurrent create with the same request_id committed first: give our number
            // back and answer with its ticket.
            tx.rollback().await?;
            return match self.ticket_by_request_id(new.request_id.as_deref()).await? {
                Some(existing) => Ok((existing, false)),
                None => Err(StoreError::Conflict(
                    "a ticket with this request_id is being created".into(),
                )),
            };
        };
        if let Some((intake, rules)) = intake {
            write_intake(&mut tx, id, intake, &new.created_by, rules).await?;
        }
        let ticket = fetch_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok((ticket, true))
    }

    async fn ticket_by_request_id(
        &self,
        request_id: Option<&str>,
    ) -> Result<Option<Ticket>, StoreError> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        sqlx::query_as::<_, TicketRow>(ticket_select!("WHERE t.request_id = $1"))
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?
            .map(Ticket::try_from)
            .transpose()
    }

    /// The ticket with this number.
    pub async fn get_ticket(&self, number: &str) -> Result<Ticket, StoreError> {
        sqlx::query_as::<_, TicketRow>(ticket_select!("WHERE t.number = $1"))
            .bind(number)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?
            .try_into()
    }

    /// Up to `page_size` tickets matching `filter`, newest first, starting after `after`.
    pub async fn list_tickets(
        &self,
        filter: &TicketFilter,
        page_size: u32,
        after: Option<PageCursor>,
    ) -> Result<TicketPage, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(ticket_select!("WHERE TRUE"));
        if let Some(v) = &filter.caller_number {
            query.push(" AND t.caller_number = ").push_bind(v.clone());
        }
        if let Some(v) = filter.customer_id {
            query.push(" AND t.customer_id = ").push_bind(v);
        }
        if let Some(v) = filter.status {
            query.push(" AND t.status = ").push_bind(v.code());
        }
        if let Some(v) = filter.category {
            query.push(" AND t.category = ").push_bind(v.code());
        }
        if let Some(v) = filter.channel {
            query.push(" AND t.channel = ").push_bind(v.code());
        }
        if let Some(v) = &filter.responsible_unit {
            query
                .push(" AND t.responsible_unit = ")
                .push_bind(v.clone());
        }
        if let Some(v) = filter.created_from {
            query.push(" AND t.created_at >= ").push_bind(v);
        }
        if let Some(v) = filter.created_before {
            query.push(" AND t.created_at < ").push_bind(v);
        }
        if let Some(cursor) = after {
            query
                .push(" AND (t.created_at, t.id) < (")
                .push_bind(cursor.at)
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        query
            .push(" ORDER BY t.created_at DESC, t.id DESC LIMIT ")
            .push_bind(i64::from(page_size) + 1);
        let rows: Vec<TicketRow> = query.build_query_as().fetch_all(&self.pool).await?;
        let mut tickets = rows
            .into_iter()
            .map(Ticket::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if tickets.len() > page_size as usize {
            tickets.truncate(page_size as usize);
            tickets.last().map(|t| PageCursor {
                at: t.created_at,
                id: t.id,
            })
        } else {
            None
        };
        Ok(TicketPage { tickets, next })
    }

    /// Applies `patch` to the ticket `number`, writing one `update` event per changed field
    /// (old → new, by `actor`) in the same transaction. With `expected_version`, refuses with
    /// `Conflict` when someone changed the ticket since the caller read it. A patch that
    /// changes nothing writes nothing and keeps the version.
    pub async fn update_ticket(
        &self,
        number: &str,
        expected_version: Option<i32>,
        patch: &TicketPatch,
        actor: &str,
    ) -> Result<Ticket, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current: Ticket =
            sqlx::query_as::<_, TicketRow>(ticket_select!("WHERE t.number = $1 FOR UPDATE OF t"))
                .bind(number)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?
                .try_into()?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(StoreError::Conflict(format!(
                "ticket {number} changed since it was read (version {} now, {expected} read)",
                current.version
            )));
        }
        let next = patch.apply(&current);
        let (mut fields, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new());
        for ((field, old), (_, new)) in audited_fields(&current)
            .into_iter()
            .zip(audited_fields(&next))
        {
            if old != new {
                fields.push(field);
                olds.push(old);
                news.push(new);
            }
        }
        let attached = add_attachments(&mut tx, current.id, &patch.attachments, actor).await?;
        if fields.is_empty() {
            if attached > 0 {
                sqlx::query(
                    "UPDATE tickets SET version = version + 1, updated_at = now() WHERE id = $1",
                )
                .bind(current.id)
                .execute(&mut *tx)
                .await?;
                let ticket = fetch_by_id(&mut tx, current.id).await?;
                tx.commit().await?;
                return Ok(ticket);
            }
            tx.commit().await?;
            return Ok(current);
        }
        sqlx::query(
            "UPDATE tickets SET caller_name = $2, caller_address = $3, description = $4, \
               category = $5, complaint_level = $6, priority = $7, responsible_unit = $8, \
               customer_id = $9, referred = $10, daily_report_key_item = $11, \
               callback_declined = $12, repeat_demand = $13, night_dispatch_insisted = $14, \
               agreed_callback_at = $15, agreed_visit_at = $16, \
               version = version + 1, updated_at = now() \
             WHERE id = $1",
        )
        .bind(current.id)
        .bind(&next.caller_name)
        .bind(&next.caller_address)
        .bind(&next.description)
        .bind(next.category.code())
        .bind(next.complaint_level.map(ComplaintLevel::code))
        .bind(next.priority)
        .bind(&next.responsible_unit)
        .bind(next.customer_id)
        .bind(next.referred)
        .bind(next.daily_report_key_item)
        .bind(next.callback_declined)
        .bind(next.repeat_demand)
        .bind(next.night_dispatch_insisted)
        .bind(next.agreed_callback_at)
        .bind(next.agreed_visit_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, actor, action, field, old_value, new_value) \
             SELECT $1, $2, 'update', field, old_value, new_value \
             FROM UNNEST($3::text[], $4::text[], $5::text[]) AS c(field, old_value, new_value)",
        )
        .bind(current.id)
        .bind(actor)
        .bind(&fields)
        .bind(&olds)
        .bind(&news)
        .execute(&mut *tx)
        .await?;
        let updated = fetch_by_id(&mut tx, current.id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// The audit trail of ticket `number`, oldest first.
    pub async fn ticket_events(&self, number: &str) -> Result<Vec<TicketEvent>, StoreError> {
        let events: Vec<TicketEvent> = sqlx::query_as(
            "SELECT e.at, e.actor, e.action, e.field, e.old_value, e.new_value, e.reason, e.detail \
             FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
             WHERE t.number = $1 ORDER BY e.id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        if events.is_empty() {
            // Every ticket has its create event: no events means no ticket.
            return Err(StoreError::NotFound(format!("ticket {number}")));
        }
        Ok(events)
    }
}

/// Inserts a ticket and its `create` event in `tx`; `None` when a ticket with the same
/// `request_id` exists already. `parent_id` links it to the ticket it chases when the caller
/// already holds that row (follow-ups); otherwise `new.parent_number` is looked up.
pub(super) async fn insert_ticket(
    tx: &mut Transaction<'_, Postgres>,
    time_zone: chrono_tz::Tz,
    new: &NewTicket,
    parent_id: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    let parent_id = match (parent_id, &new.parent_number) {
        (Some(id), _) => Some(id),
        (None, None) => None,
        (None, Some(number)) => Some(
            sqlx::query_scalar::<_, i64>("SELECT id FROM tickets WHERE number = $1")
                .bind(number)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or_else(|| StoreError::Invalid {
                    field: "parent_ticket",
                    reason: format!("no ticket {number}"),
                })?,
        ),
    };
    let (day, seq): (NaiveDate, i32) = sqlx::query_as(
        "INSERT INTO ticket_day_counters (day, last_seq) \
         VALUES (($2::timestamptz AT TIME ZONE $1)::date, 1) \
         ON CONFLICT (day) DO UPDATE SET last_seq = ticket_day_counters.last_seq + 1 \
         RETURNING day, last_seq",
    )
    .bind(time_zone.name())
    .bind(new.created_at)
    .fetch_one(&mut **tx)
    .await?;
    let number = format!("GD{}-{seq:06}", day.format("%Y%m%d"));
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO tickets (number, channel, category, complaint_level, status, priority, \
           caller_name, caller_number, caller_address, description, customer_id, \
           responsible_unit, dispatch_due, contact_due, finish_due, callback_due, \
           parent_ticket_id, call_id, request_id, created_by, investigation_due, area, \
           created_at, updated_at, awaiting_dispatch_since) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
           $17, $18, $19, $20, $21, $22, $23, $23, $23) \
         ON CONFLICT (request_id) DO NOTHING RETURNING id",
    )
    .bind(&number)
    .bind(new.channel.code())
    .bind(new.category.code())
    .bind(new.complaint_level.map(ComplaintLevel::code))
    .bind(new.status.code())
    .bind(new.priority)
    .bind(&new.caller_name)
    .bind(&new.caller_number)
    .bind(&new.caller_address)
    .bind(&new.description)
    .bind(new.customer_id)
    .bind(&new.responsible_unit)
    .bind(new.dispatch_due)
    .bind(new.contact_due)
    .bind(new.finish_due)
    .bind(new.callback_due)
    .bind(parent_id)
    .bind(&new.call_id)
    .bind(&new.request_id)
    .bind(&new.created_by)
    .bind(new.investigation_due)
    .bind(&new.area)
    .bind(new.created_at)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = inserted else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, at, actor, action, new_value) \
         VALUES ($1, $2, $3, 'create', $4)",
    )
    .bind(id)
    .bind(new.created_at)
    .bind(&new.created_by)
    .bind(new.status.code())
    .execute(&mut **tx)
    .await?;
    Ok(Some(id))
}

/// The tickets with these row ids, in the order of `ids`.
/// Writes a new ticket's intake facts and the deadlines they change (a caller insisting on
/// night handling is dispatched at once).
async fn write_intake(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    intake: &IntakeFacts,
    actor: &str,
    rules: &Rules,
) -> Result<(), StoreError> {
    if *intake == IntakeFacts::default() {
        return Ok(());
    }
    let number: String = sqlx::query_scalar(
        "UPDATE tickets SET referred = $2, daily_report_key_item = $3, callback_declined = $4, \
           repeat_demand = $5, night_dispatch_insisted = $6, agreed_callback_at = $7, \
           agreed_visit_at = $8 WHERE id = $1 RETURNING number",
    )
    .bind(id)
    .bind(intake.referred)
    .bind(intake.daily_report_key_item)
    .bind(intake.callback_declined)
    .bind(intake.repeat_demand)
    .bind(intake.night_dispatch_insisted)
    .bind(intake.agreed_callback_at)
    .bind(intake.agreed_visit_at)
    .fetch_one(&mut **tx)
    .await?;
    add_attachments(tx, id, &intake.attachments, actor).await?;
    super::transitions::refresh_deadlines_in(tx, &number, rules).await?;
    Ok(())
}

/// Adds attachments by reference; one already on the ticket (same URI) is kept as it is.
async fn add_attachments(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    attachments: &[Attachment],
    actor: &str,
) -> Result<u64, StoreError> {
    let mut added_count = 0;
    for attachment in attachments {
        let added = sqlx::query(
            "INSERT INTO ticket_attachments (ticket_id, uri, kind, added_by, added_at) \
             VALUES ($1, $2, $3, $4, now()) ON CONFLICT (ticket_id, uri) DO NOTHING",
        )
        .bind(id)
        .bind(&attachment.uri)
        .bind(&attachment.kind)
        .bind(actor)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if added == 1 {
            sqlx::query(
                "INSERT INTO ticket_events (ticket_id, actor, action, field, new_value) \
                 VALUES ($1, $2, 'update', 'attachments', $3)",
            )
            .bind(id)
            .bind(actor)
            .bind(format!("{} {}", attachment.kind, attachment.uri))
            .execute(&mut **tx)
            .await?;
            added_count += 1;
        }
    }
    Ok(added_count)
}

pub(super) async fn fetch_many(
    pool: &sqlx::PgPool,
    ids: &[i64],
) -> Result<Vec<Ticket>, StoreError> {
    let rows: Vec<TicketRow> = sqlx::query_as(ticket_select!(
        "JOIN UNNEST($1::bigint[]) WITH ORDINALITY AS wanted(id, n) ON wanted.id = t.id ORDER BY wanted.n"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Ticket::try_from).collect()
}

pub(super) async fn fetch_by_id(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
) -> Result<Ticket, StoreError> {
    sqlx::query_as::<_, TicketRow>(ticket_select!("WHERE t.id = $1"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?
        .try_into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let cursor = PageCursor {
            at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: 42,
        };
        assert_eq!(PageCursor::from_token(&cursor.to_token()), Some(cursor));
        for bad in ["", "zz", "abc", "3132", "e4b8ad", "31323a"] {
            assert_eq!(PageCursor::from_token(bad), None, "{bad}");
        }
    }
}
