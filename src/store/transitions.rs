//! The one path by which the service rules change a ticket: lock the row, rebuild its
//! `TicketFacts`, run the pure rule, write the new facts and deadlines, every audit event and
//! the follow-ups (urge tickets, the supervisor queue, tickets for new demands) in ONE
//! transaction. Also the reads the rules' callers need: related complaints, open tickets for
//! the overdue watcher and ListOverdue, due callbacks, and alerts raised once.
//!
//! Owns SQL; the rule functions decide, this module only stores what they decided.

use super::tickets::{NewTicket, PageCursor, Ticket, fetch_by_id, fetch_many, insert_ticket};
use super::{Store, StoreError};
use crate::tickets::callback::{self, CallbackOutcome, CallbackPlan};
use crate::tickets::complaint::RelatedComplaints;
use crate::tickets::config::ComplaintConfig;
use crate::tickets::deadlines::{self, DeadlineKind, Deadlines};
use crate::tickets::lifecycle::{AuditEvent, FollowUp, PendingExtension};
use crate::tickets::overdue::Timeliness;
use crate::tickets::{
    Actor, Category, ComplaintLevel, Refusal, Rules, Status, TicketFacts, Transition,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use sqlx::{Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

/// Why a transition did not happen: the rules refused it, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an applied transition left behind.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The ticket as it is now.
    pub ticket: Ticket,
    /// The audit events written (empty when the rule changed nothing).
    pub events: Vec<AuditEvent>,
    /// What to tell the caller (urge before half-way).
    pub explanation: Option<String>,
    /// Tickets created by follow-ups: the urge ticket or the ticket for a new demand.
    pub created: Vec<Ticket>,
    /// The ticket went to the supervisor's queue, and why.
    pub supervisor_reason: Option<String>,
}

/// A callback attempt to record beside its transition (`RecordCallback`).
#[derive(Debug, Clone)]
pub struct CallbackAttempt {
    pub outcome: CallbackOutcome,
    pub note: String,
}

/// One stored callback attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackRecord {
    pub at: DateTime<Utc>,
    /// `reached`, `unreachable` or `declined`.
    pub outcome: String,
    /// Rating codes when reached.
    pub attitude: Option<String>,
    pub result: Option<String>,
    /// Audit name of who called.
    pub agent: String,
    pub note: String,
}

/// How the audit trail names an actor; matches `api::Caller::actor`.
pub fn audit_name(actor: &Actor) -> String {
    match actor {
        Actor::System => "system".into(),
        Actor::CentreAgent { id } => format!("agent:{id}"),
        Actor::CentreAdmin { id } => format!("admin:{id}"),
        Actor::Unit { user, .. } => format!("unit:{user}"),
        Actor::Integration { id, .. } => format!("integration:{id}"),
    }
}

/// The facts columns, in `FactsRow` order.
const FACTS_COLUMNS: &str = "id, uid, number, status, category, channel, complaint_level, \
    complaint_level_overridden, responsible_unit, created_at, awaiting_dispatch_since, \
    dispatched_at, handling_started_at, accepted_at, contacted_at, replied_at, \
    extended_finish, extension_requested_at, extension_until, extension_reason, \
    extension_resume, centre_returns, unsatisfied_callbacks, urges, callback_plan, \
    callback_attempts, last_callback_attempt_at, next_callback_at, callback_declined, \
    repeat_demand, night_dispatch_insisted, area, on_site_at, referred, daily_report_key_item, \
    agreed_callback_at, complaint_valid, application_refused";

#[derive(sqlx::FromRow)]
struct FactsRow {
    id: i64,
    uid: Uuid,
    number: String,
    status: String,
    category: String,
    channel: String,
    complaint_level: Option<String>,
    complaint_level_overridden: bool,
    responsible_unit: Option<String>,
    created_at: DateTime<Utc>,
    awaiting_dispatch_since: DateTime<Utc>,
    dispatched_at: Option<DateTime<Utc>>,
    handling_started_at: Option<DateTime<Utc>>,
    accepted_at: Option<DateTime<Utc>>,
    contacted_at: Option<DateTime<Utc>>,
    replied_at: Option<DateTime<Utc>>,
    extended_finish: Option<DateTime<Utc>>,
    extension_requested_at: Option<DateTime<Utc>>,
    extension_until: Option<DateTime<Utc>>,
    extension_reason: Option<String>,
    extension_resume: Option<String>,
    centre_returns: i32,
    unsatisfied_callbacks: i32,
    urges: i32,
    callback_plan: Option<String>,
    callback_attempts: i32,
    last_callback_attempt_at: Option<DateTime<Utc>>,
    next_callback_at: Option<DateTime<Utc>>,
    callback_declined: bool,
    repeat_demand: bool,
    night_dispatch_insisted: bool,
    area: String,
    on_site_at: Option<DateTime<Utc>>,
    referred: bool,
    daily_report_key_item: bool,
    agreed_callback_at: Option<DateTime<Utc>>,
    complaint_valid: Option<bool>,
    application_refused: bool,
}

/// A ticket's row id, number and rule facts.
#[derive(Debug, Clone)]
pub struct StoredFacts {
    pub id: i64,
    pub number: String,
    pub facts: TicketFacts,
}

fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn stored(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn callback_plan_from(code: &str) -> Option<CallbackPlan> {
    [
        CallbackPlan::NotNeeded,
        CallbackPlan::SamplePending,
        CallbackPlan::SampledOut,
        CallbackPlan::Automatic,
        CallbackPlan::Human,
    ]
    .into_iter()
    .find(|plan| plan.code() == code)
}

impl TryFrom<FactsRow> for StoredFacts {
    type Error = StoreError;

    fn try_from(row: FactsRow) -> Result<StoredFacts, StoreError> {
        let damaged =
            |what: String| StoreError::Other(format!("ticket {} holds {what}", row.number));
        let code = |err: crate::tickets::model::UnknownCode| damaged(format!("an {err}"));
        let pending_extension = match (
            row.extension_requested_at,
            row.extension_until,
            &row.extension_reason,
            row.extension_resume.as_deref(),
        ) {
            (Some(requested_at), Some(until), Some(reason), Some(resume)) => {
                Some(PendingExtension {
                    requested_at,
                    until,
                    reason: reason.clone(),
                    resume: resume.parse().map_err(code)?,
                })
            }
            _ => None,
        };
        let callback_plan = match row.callback_plan.as_deref() {
            None => None,
            Some(plan) => Some(
                callback_plan_from(plan)
                    .ok_or_else(|| damaged(format!("an unknown callback plan {plan:?}")))?,
            ),
        };
        let facts = TicketFacts {
            id: row.uid,
            status: row.status.parse().map_err(code)?,
            category: row.category.parse().map_err(code)?,
            channel: row.channel.parse().map_err(code)?,
            complaint_level: row
                .complaint_level
                .as_deref()
                .map(str::parse::<ComplaintLevel>)
                .transpose()
                .map_err(code)?,
            complaint_level_overridden: row.complaint_level_overridden,
            complaint_valid: row.complaint_valid,
            application_refused: row.application_refused,
            unit: row.responsible_unit,
            area: row.area,
            created_at: row.created_at,
            awaiting_dispatch_since: row.awaiting_dispatch_since,
            dispatched_at: row.dispatched_at,
            handling_started_at: row.handling_started_at,
            accepted_at: row.accepted_at,
            contacted_at: row.contacted_at,
            on_site_at: row.on_site_at,
            replied_at: row.replied_at,
            extended_finish: row.extended_finish,
            pending_extension,
            centre_returns: count(row.centre_returns),
            unsatisfied_callbacks: count(row.unsatisfied_callbacks),
            urges: count(row.urges),
            callback_plan,
            callback_attempts: count(row.callback_attempts),
            last_callback_attempt_at: row.last_callback_attempt_at,
            next_callback_at: row.next_callback_at,
            callback_declined: row.callback_declined,
            repeat: row.repeat_demand,
            referred: row.referred,
            daily_report_key_item: row.daily_report_key_item,
            night_dispatch_insisted: row.night_dispatch_insisted,
            agreed_callback_at: row.agreed_callback_at,
        };
        Ok(StoredFacts {
            id: row.id,
            number: row.number,
            facts,
        })
    }
}

/// Writes a transition's facts and deadlines over the ticket row.
async fn write_facts(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    facts: &TicketFacts,
    deadlines: &Deadlines,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let due = |d: Option<crate::tickets::deadlines::Deadline>| d.map(|d| d.due);
    let pending = facts.pending_extension.as_ref();
    sqlx::query(
        "UPDATE tickets SET status = $2, complaint_level = $3, complaint_level_overridden = $4, \
           responsible_unit = $5, awaiting_dispatch_since = $6, dispatched_at = $7, \
           handling_started_at = $8, accepted_at = $9, contacted_at = $10, replied_at = $11, \
           extended_finish = $12, extension_requested_at = $13, extension_until = $14, \
           extension_reason = $15, extension_resume = $16, centre_returns = $17, \
           unsatisfied_callbacks = $18, urges = $19, callback_plan = $20, \
           callback_attempts = $21, last_callback_attempt_at = $22, next_callback_at = $23, \
           callback_declined = $24, repeat_demand = $25, night_dispatch_insisted = $26, \
           dispatch_due = $27, contact_due = $28, finish_due = $29, investigation_due = $30, \
           callback_due = $31, version = version + 1, updated_at = $32, on_site_due = $33, \
           on_site_at = $34, reply_to_caller_due = $35, complaint_valid = $36, \
           application_refused = $37 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(facts.status.code())
    .bind(facts.complaint_level.map(ComplaintLevel::code))
    .bind(facts.complaint_level_overridden)
    .bind(&facts.unit)
    .bind(facts.awaiting_dispatch_since)
    .bind(facts.dispatched_at)
    .bind(facts.handling_started_at)
    .bind(facts.accepted_at)
    .bind(facts.contacted_at)
    .bind(facts.replied_at)
    .bind(facts.extended_finish)
    .bind(pending.map(|p| p.requested_at))
    .bind(pending.map(|p| p.until))
    .bind(pending.map(|p| p.reason.clone()))
    .bind(pending.map(|p| p.resume.code()))
    .bind(stored(facts.centre_returns))
    .bind(stored(facts.unsatisfied_callbacks))
    .bind(stored(facts.urges))
    .bind(facts.callback_plan.map(CallbackPlan::code))
    .bind(stored(facts.callback_attempts))
    .bind(facts.last_callback_attempt_at)
    .bind(facts.next_callback_at)
    .bind(facts.callback_declined)
    .bind(facts.repeat)
    .bind(facts.night_dispatch_insisted)
    .bind(due(deadlines.dispatch))
    .bind(due(deadlines.contact))
    .bind(due(deadlines.finish))
    .bind(due(deadlines.investigation))
    .bind(due(deadlines.callback))
    .bind(now)
    .bind(due(deadlines.on_site))
    .bind(facts.on_site_at)
    .bind(due(deadlines.reply_to_caller))
    .bind(facts.complaint_valid)
    .bind(facts.application_refused)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_event(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, at, actor, action, field, old_value, new_value, \
           reason, detail) VALUES ($1, $2, $3, $4, 'status', $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(event.at)
    .bind(audit_name(&event.actor))
    .bind(event.action.code())
    .bind(event.from.code())
    .bind(event.to.code())
    .bind(&event.reason)
    .bind(&event.detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks ticket `number`'s row for the transaction and reads its facts.
async fn lock_facts(
    tx: &mut Transaction<'_, Postgres>,
    number: &str,
) -> Result<StoredFacts, StoreError> {
    sqlx::query_as::<_, FactsRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {FACTS_COLUMNS} FROM tickets WHERE number = $1 FOR UPDATE"
    )))
    .bind(number)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?
    .try_into()
}

/// Recomputes ticket `number`'s deadlines from its current facts inside `tx` (after a change
/// of category or complaint level); returns the ticket's id. Shared by the API's update and
/// the call journal's category write.
pub(super) async fn refresh_deadlines_in(
    tx: &mut Transaction<'_, Postgres>,
    number: &str,
    rules: &Rules,
) -> Result<i64, StoreError> {
    let current = lock_facts(tx, number).await?;
    let due = deadlines::compute(&current.facts, rules);
    let at = |d: Option<crate::tickets::deadlines::Deadline>| d.map(|d| d.due);
    sqlx::query(
        "UPDATE tickets SET dispatch_due = $2, contact_due = $3, finish_due = $4, \
           investigation_due = $5, callback_due = $6, on_site_due = $7, \
           reply_to_caller_due = $8 WHERE id = $1",
    )
    .bind(current.id)
    .bind(at(due.dispatch))
    .bind(at(due.contact))
    .bind(at(due.finish))
    .bind(at(due.investigation))
    .bind(at(due.callback))
    .bind(at(due.on_site))
    .bind(at(due.reply_to_caller))
    .execute(&mut **tx)
    .await?;
    Ok(current.id)
}

/// The audit name of who acted in `events` (the last event's actor).
fn acting(events: &[AuditEvent]) -> String {
    events
        .last()
        .map_or_else(|| audit_name(&Actor::System), |e| audit_name(&e.actor))
}

impl Store {
    /// Applies one rule to ticket `number` at `now` in one transaction: locks the row,
    /// builds its facts, runs `rule`, and stores what it decided — facts, deadlines, audit
    /// events, follow-ups. A rule answering `Ok(None)` changes nothing.
    /// `rules` gives the deadlines of tickets that follow-ups create.
    pub async fn apply<F>(
        &self,
        number: &str,
        now: DateTime<Utc>,
        rules: &Rules,
        rule: F,
    ) -> Result<Applied, TransitionError>
    where
        F: FnOnce(&TicketFacts, DateTime<Utc>) -> Result<Option<Transition>, Refusal>,
    {
        self.apply_recording(number, now, rules, None, rule).await
    }

    /// [`Store::apply`] for `RecordCallback`: also records the attempt and the ratings.
    pub async fn apply_callback<F>(
        &self,
        number: &str,
        now: DateTime<Utc>,
        rules: &Rules,
        attempt: &CallbackAttempt,
        rule: F,
    ) -> Result<Applied, TransitionError>
    where
        F: FnOnce(&TicketFacts, DateTime<Utc>) -> Result<Option<Transition>, Refusal>,
    {
        self.apply_recording(number, now, rules, Some(attempt), rule)
            .await
    }

    async fn apply_recording<F>(
        &self,
        number: &str,
        now: DateTime<Utc>,
        rules: &Rules,
        attempt: Option<&CallbackAttempt>,
        rule: F,
    ) -> Result<Applied, TransitionError>
    where
        F: FnOnce(&TicketFacts, DateTime<Utc>) -> Result<Option<Transition>, Refusal>,
    {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let current = lock_facts(&mut tx, number).await?;
        let Some(transition) = rule(&current.facts, now).map_err(TransitionError::Refused)? else {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(Applied {
                ticket: self.get_ticket(number).await?,
                events: Vec::new(),
                explanation: None,
                created: Vec::new(),
                supervisor_reason: None,
            });
        };
        let id = current.id;
        write_facts(&mut tx, id, &transition.facts, &transition.deadlines, now).await?;
        for event in &transition.events {
            write_event(&mut tx, id, event).await?;
        }
        if let Some(attempt) = attempt {
            let actor = acting(&transition.events);
            self.record_attempt(&mut tx, id, &actor, attempt, now)
                .await?;
        }
        let mut applied = Applied {
            ticket: fetch_by_id(&mut tx, id).await?,
            events: transition.events.clone(),
            explanation: None,
            created: Vec::new(),
            supervisor_reason: None,
        };
        for follow_up in &transition.follow_ups {
            self.carry_out(&mut tx, follow_up, now, rules, &mut applied)
                .await?;
        }
        applied.ticket = fetch_by_id(&mut tx, id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(applied)
    }

    async fn record_attempt(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        id: i64,
        actor: &str,
        attempt: &CallbackAttempt,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (outcome, ratings) = match &attempt.outcome {
            CallbackOutcome::Reached {
                attitude, result, ..
            } => ("reached", Some((attitude.code(), result.code()))),
            CallbackOutcome::Unreachable => ("unreachable", None),
            CallbackOutcome::Declined => ("declined", None),
            CallbackOutcome::CallLater { .. } => ("call_later", None),
        };
        sqlx::query(
            "INSERT INTO callback_attempts (ticket_id, at, outcome, attitude, result, agent, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(now)
        .bind(outcome)
        .bind(ratings.map(|r| r.0))
        .bind(ratings.map(|r| r.1))
        .bind(actor)
        .bind(&attempt.note)
        .execute(&mut **tx)
        .await?;
        if let Some((attitude, result)) = ratings {
            sqlx::query(
                "UPDATE tickets SET satisfaction_attitude = $2, satisfaction_result = $3 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(attitude)
            .bind(result)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Carries out one follow-up of a transition inside its transaction, on behalf of the
    /// actor of its last event.
    async fn carry_out(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        follow_up: &FollowUp,
        now: DateTime<Utc>,
        rules: &Rules,
        applied: &mut Applied,
    ) -> Result<(), StoreError> {
        let ticket = &applied.ticket.clone();
        let actor = &acting(&applied.events);
        let derived = |category: Category, description: String| NewTicket {
            request_id: None,
            channel: ticket.channel,
            category,
            complaint_level: None,
            status: Status::Draft,
            priority: ticket.priority,
            caller_name: ticket.caller_name.clone(),
            caller_number: ticket.caller_number.clone(),
            caller_address: ticket.caller_address.clone(),
            description,
            customer_id: ticket.customer_id,
            responsible_unit: None,
            dispatch_due: None,
            contact_due: None,
            finish_due: None,
            callback_due: None,
            investigation_due: None,
            area: ticket.area.clone(),
            parent_number: None,
            call_id: None,
            created_by: actor.to_owned(),
            created_at: now,
        };
        let (new, parent, detail) = match follow_up {
            FollowUp::ExplainToCaller { message } => {
                applied.explanation = Some(message.clone());
                return Ok(());
            }
            FollowUp::SupervisorQueue { reason } => {
                sqlx::query("UPDATE tickets SET supervisor_reason = $2 WHERE id = $1")
                    .bind(ticket.id)
                    .bind(reason)
                    .execute(&mut **tx)
                    .await?;
                applied.supervisor_reason = Some(reason.clone());
                return Ok(());
            }
            FollowUp::DispatchUrgeTicket {
                unit,
                dispatch_due,
                note,
                ..
            } => {
                let description = format!("催办 {}：{}", ticket.number, note);
                let new = NewTicket {
                    responsible_unit: unit.clone(),
                    dispatch_due: Some(*dispatch_due),
                    ..derived(Category::Urge, description)
                };
                (new, Some(ticket.id), "urge ticket")
            }
            FollowUp::NewTicketFromCallback { description } => {
                let description = format!("回访 {} 时提出的新诉求：{description}", ticket.number);
                // Same category as the ticket called back until the agent sorts it; its
                // deadlines run from now like any intake's.
                let new = derived(ticket.category, description).due_by_rules(rules);
                (new, None, "new ticket from the callback")
            }
        };
        let created_id = insert_ticket(tx, self.time_zone, &new, parent)
            .await?
            .ok_or_else(|| StoreError::Other("a follow-up ticket collided".into()))?;
        let created = fetch_by_id(tx, created_id).await?;
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, at, actor, action, detail) \
             VALUES ($1, $2, $3, 'follow_up', $4)",
        )
        .bind(ticket.id)
        .bind(now)
        .bind(actor)
        .bind(format!("{detail} {}", created.number))
        .execute(&mut **tx)
        .await?;
        applied.created.push(created);
        Ok(())
    }

    /// Recomputes ticket `number`'s due times from its facts, after an edit changed what
    /// they depend on (category, complaint level). The edit itself is audited already.
    pub async fn refresh_deadlines(
        &self,
        number: &str,
        rules: &Rules,
    ) -> Result<Ticket, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = refresh_deadlines_in(&mut tx, number, rules).await?;
        let ticket = fetch_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(ticket)
    }

    /// The units and local days (in the rules' calendar) before `today` whose tickets still
    /// wait for the heating line's callback sample, oldest first.
    pub async fn pending_sample_days(
        &self,
        today: NaiveDate,
        rules: &Rules,
    ) -> Result<Vec<(String, NaiveDate)>, StoreError> {
        let start = rules.calendar.at_local(today, NaiveTime::MIN);
        Ok(sqlx::query_as(
            "SELECT DISTINCT responsible_unit, (replied_at AT TIME ZONE $2)::date AS day \
             FROM tickets WHERE callback_plan = 'sample_pending' AND status = 'replied' \
               AND responsible_unit IS NOT NULL AND replied_at < $1 \
             ORDER BY day, responsible_unit",
        )
        .bind(start)
        .bind(rules.calendar.time_zone().name())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Draws `unit`'s callback sample of local day `day` (`callback::sample_day`) over every
    /// ticket still waiting for it, in one transaction; returns how many were called back
    /// and the day's volume.
    pub async fn draw_day_sample(
        &self,
        unit: &str,
        day: NaiveDate,
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> Result<(u32, u32), StoreError> {
        let from = rules.calendar.at_local(day, NaiveTime::MIN);
        let until = day
            .succ_opt()
            .map_or(from, |next| rules.calendar.at_local(next, NaiveTime::MIN));
        let mut tx = self.pool.begin().await?;
        let rows: Vec<FactsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FACTS_COLUMNS} FROM tickets WHERE responsible_unit = $1 \
               AND callback_plan = 'sample_pending' AND status = 'replied' \
               AND replied_at >= $2 AND replied_at < $3 ORDER BY id FOR UPDATE"
        )))
        .bind(unit)
        .bind(from)
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        let stored = rows
            .into_iter()
            .map(StoredFacts::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let facts: Vec<TicketFacts> = stored.iter().map(|s| s.facts.clone()).collect();
        let transitions = callback::sample_day(&facts, now, rules).unwrap_or_default();
        let mut chosen = 0;
        for transition in &transitions {
            let Some(row) = stored.iter().find(|s| s.facts.id == transition.facts.id) else {
                continue;
            };
            write_facts(
                &mut tx,
                row.id,
                &transition.facts,
                &transition.deadlines,
                now,
            )
            .await?;
            for event in &transition.events {
                write_event(&mut tx, row.id, event).await?;
            }
            if transition.facts.callback_plan == Some(CallbackPlan::Automatic) {
                chosen += 1;
            }
        }
        tx.commit().await?;
        Ok((chosen, u32::try_from(transitions.len()).unwrap_or(u32::MAX)))
    }

    /// The callback attempts of ticket `number`, oldest first.
    pub async fn callback_attempts(&self, number: &str) -> Result<Vec<CallbackRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.at, a.outcome, a.attitude, a.result, a.agent, a.note \
             FROM callback_attempts a JOIN tickets t ON t.id = a.ticket_id \
             WHERE t.number = $1 ORDER BY a.id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counts the complaints related to ticket `number` (including itself): different callers
    /// on the same unit and area within the last `window_days`, and this caller's
    /// complaints about the same unit and area (the same event) within the last
    /// `same_caller_window_days`, or ever when that is `None` (000 §14.6 sets no window).
    pub async fn related_complaints(
        &self,
        number: &str,
        config: &ComplaintConfig,
        now: DateTime<Utc>,
    ) -> Result<RelatedComplaints, StoreError> {
        let since = |days: u32| now - Duration::days(days.into());
        let (callers, same_caller): (i64, i64) = sqlx::query_as(
            "SELECT count(DISTINCT o.caller_number) FILTER (WHERE o.created_at >= $2), \
               count(*) FILTER (WHERE o.caller_number = t.caller_number \
                 AND ($4::timestamptz IS NULL OR o.created_at >= $4)) \
             FROM tickets t JOIN tickets o ON o.category = 'complaint' \
               AND o.responsible_unit IS NOT DISTINCT FROM t.responsible_unit \
               AND o.area = t.area AND o.created_at <= $3 \
               AND (o.id = t.id OR t.area <> '') AND o.complaint_valid IS NOT FALSE \
             WHERE t.number = $1",
        )
        .bind(number)
        .bind(since(config.window_days))
        .bind(now)
        .bind(config.same_caller_window_days.map(since))
        .fetch_one(&self.pool)
        .await?;
        let clamp = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(RelatedComplaints {
            distinct_callers_same_subject: clamp(callers),
            same_caller_same_event: clamp(same_caller),
            ..RelatedComplaints::default()
        })
    }

    /// The numbers of the other open complaints on the same unit and area as ticket
    /// `number`, oldest first: a new complaint may raise their level too.
    pub async fn related_open_complaints(&self, number: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT o.number FROM tickets t JOIN tickets o ON o.category = 'complaint' \
               AND o.responsible_unit IS NOT DISTINCT FROM t.responsible_unit \
               AND o.area = t.area AND t.area <> '' AND o.id <> t.id AND o.status <> 'closed' \
               AND o.complaint_valid IS NOT FALSE \
             WHERE t.number = $1 ORDER BY o.created_at, o.id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Open tickets oldest first after `after`, with their facts: what the overdue watcher
    /// and ListOverdue classify. `unit` keeps only tickets of that unit; `overdue_at` keeps
    /// only tickets with some due time before it (a cheap pre-filter on the due indexes).
    pub async fn open_tickets(
        &self,
        unit: Option<&str>,
        overdue_at: Option<DateTime<Utc>>,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<Vec<(Ticket, StoredFacts)>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {FACTS_COLUMNS} FROM tickets WHERE status <> 'closed'"
        ));
        if let Some(unit) = unit {
            query
                .push(" AND responsible_unit = ")
                .push_bind(unit.to_owned());
        }
        if let Some(at) = overdue_at {
            query.push(" AND (");
            let mut separated = query.separated(" OR ");
            for column in [
                "dispatch_due",
                "contact_due",
                "finish_due",
                "investigation_due",
                "callback_due",
                "on_site_due",
                "reply_to_caller_due",
            ] {
                separated
                    .push(format!("{column} < "))
                    .push_bind_unseparated(at);
            }
            query.push(")");
        }
        if let Some(cursor) = after {
            query
                .push(" AND (created_at, id) > (")
                .push_bind(cursor.at)
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        query
            .push(" ORDER BY created_at, id LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<FactsRow> = query.build_query_as().fetch_all(&self.pool).await?;
        let facts = rows
            .into_iter()
            .map(StoredFacts::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<i64> = facts.iter().map(|f| f.id).collect();
        let tickets = fetch_many(&self.pool, &ids).await?;
        Ok(tickets.into_iter().zip(facts).collect())
    }

    /// Tickets waiting for a callback attempt at `now`, earliest first after `after`.
    pub async fn due_callbacks(
        &self,
        now: DateTime<Utc>,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<Vec<Ticket>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT id FROM tickets WHERE status IN ('replied', 'callback') \
             AND next_callback_at <= ",
        );
        query.push_bind(now);
        if let Some(cursor) = after {
            query
                .push(" AND (next_callback_at, id) > (")
                .push_bind(cursor.at)
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        query
            .push(" ORDER BY next_callback_at, id LIMIT ")
            .push_bind(i64::from(limit));
        let ids: Vec<i64> = query.build_query_scalar().fetch_all(&self.pool).await?;
        fetch_many(&self.pool, &ids).await
    }

    /// Records that ticket `id`'s deadline became nearly due or overdue, once: true when
    /// this is the first time (an audit event is written with it), false when it was
    /// recorded before.
    pub async fn record_alert(
        &self,
        id: i64,
        kind: DeadlineKind,
        due: DateTime<Utc>,
        timeliness: Timeliness,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO ticket_alerts (ticket_id, deadline, due, timeliness, raised_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(kind.code())
        .bind(due)
        .bind(timeliness.code())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            sqlx::query(
                "INSERT INTO ticket_events (ticket_id, at, actor, action, field, new_value) \
                 VALUES ($1, $2, 'system', $3, $4, $5)",
            )
            .bind(id)
            .bind(now)
            .bind(timeliness.code())
            .bind(format!("{}_due", kind.code()))
            .bind(due.to_rfc3339())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }
}
