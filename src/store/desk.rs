//! Agent desktops' storage: the screen pop, built at ring time in a few indexed queries
//! (`calls` by call id and `tickets_by_call`, `customers_by_phone`, `calls_by_caller`,
//! `tickets_by_caller` / `tickets_by_customer`, the leak indexes, announcements), the agents'
//! state timeline, and the wrap-up disposition on the call and its draft ticket.

use super::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};

/// Earlier calls a pop lists.
const LAST_CALLS: i64 = 10;
/// Open tickets a pop lists.
const OPEN_TICKETS: i64 = 20;
/// Leak reports a pop lists.
const NEARBY_LEAKS: i64 = 20;

/// The caller's last calls ($1 caller, $2 this call, $3 limit): `calls_by_caller`.
const LAST_CALLS_SQL: &str = "SELECT c.call_id, c.arrived_at, c.ivr_path, c.disposition, c.agent_id, \
        (SELECT t.number FROM tickets t WHERE t.call_id = c.call_id ORDER BY t.id LIMIT 1) \
     FROM calls c WHERE c.caller_number = $1 AND c.call_id <> $2 \
     ORDER BY c.arrived_at DESC LIMIT $3";

/// Open tickets of the caller or household ($1 caller, $2 household ids, $3 limit), with the
/// deadline owed next: `tickets_by_caller`, `tickets_by_customer`.
const OPEN_TICKETS_SQL: &str = "SELECT number, category, status, LEAST( \
         CASE WHEN dispatched_at IS NULL THEN dispatch_due END, \
         CASE WHEN contacted_at IS NULL THEN contact_due END, \
         CASE WHEN replied_at IS NULL THEN COALESCE(extended_finish, finish_due) END, \
         CASE WHEN status = 'callback' THEN callback_due END) \
     FROM tickets \
     WHERE (caller_number = $1 OR customer_id = ANY($2)) AND status NOT IN ('closed', 'draft') \
     ORDER BY created_at DESC, id DESC LIMIT $3";

/// One step of the caller's way through the IVR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrStep {
    pub node: String,
    /// The key pressed, or the entry keyed in (an account number).
    pub key: String,
    /// The name of the collected entry (`account`), when this step keyed one.
    pub entry: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopHousehold {
    pub account_number: String,
    pub name: String,
    pub address: String,
    pub area: String,
    pub special_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastCall {
    pub call_id: String,
    pub arrived_at: DateTime<Utc>,
    pub ivr_path: Vec<String>,
    pub disposition: Option<String>,
    pub agent_id: Option<String>,
    pub ticket: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopTicket {
    pub number: String,
    pub category: String,
    pub status: String,
    /// The nearest deadline still owed: dispatch until dispatched, contact until contacted,
    /// finish (or its extension) until replied, callback while in callback.
    pub next_deadline: Option<DateTime<Utc>>,
    pub overdue: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakReport {
    pub ticket: String,
    pub address: String,
    pub area: String,
    pub reported_at: DateTime<Utc>,
    pub same_address: bool,
}

/// The screen pop: the call as the database has it at ring time, and what is known about
/// the caller. `queue`, `priority`, `leak` and `seconds_waited` are the call layer's to fill
/// from the live call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScreenPop {
    pub call_id: String,
    pub caller_number: String,
    pub dialled_number: String,
    pub queue: String,
    pub priority: u8,
    pub leak: bool,
    pub seconds_waited: u32,
    pub ivr_path: Vec<IvrStep>,
    pub recording_consent: Option<String>,
    pub recording_consent_via: Option<String>,
    pub draft_ticket: Option<String>,
    pub household: Option<PopHousehold>,
    pub last_calls: Vec<PastCall>,
    pub open_tickets: Vec<PopTicket>,
    pub nearby_leaks: Vec<LeakReport>,
    pub calls_last_24h: u32,
    pub open_complaint: bool,
    pub outage_announcements: Vec<String>,
}

impl ScreenPop {
    /// Repeat caller: two or more calls in 24 hours, this one included.
    pub fn repeated_within_24h(&self) -> bool {
        self.calls_last_24h >= 2
    }
}

/// An agent's state change for the timeline (also a call journal record: see
/// [`CallEntry::AgentState`](super::CallEntry::AgentState)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateChangeRecord {
    pub agent_id: String,
    pub epoch: i64,
    pub version: i64,
    pub from_state: String,
    pub from_reason: Option<String>,
    pub to_state: String,
    pub reason_code: Option<String>,
    pub at: DateTime<Utc>,
}

/// A ticket a write changed: its number and status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub number: String,
    pub status: String,
}

type CallRow = (
    String,
    String,
    Vec<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Splits the stored `node:input` steps, naming the entries the IVR collected.
fn ivr_steps(path: &[String], variables: &serde_json::Value) -> Vec<IvrStep> {
    path.iter()
        .map(|step| {
            let (node, key) = step.split_once(':').unwrap_or((step.as_str(), ""));
            let entry = variables
                .as_object()
                .and_then(|vars| {
                    vars.iter()
                        .find(|(_, v)| !key.is_empty() && v.as_str() == Some(key))
                })
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            IvrStep {
                node: node.to_owned(),
                key: key.to_owned(),
                entry,
            }
        })
        .collect()
}

/// Appends `change` to the timeline unless it is there already (agent, epoch, version).
pub(super) async fn insert_state_change<'e>(
    db: impl sqlx::PgExecutor<'e>,
    change: &StateChangeRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agent_state_changes \
         (agent_id, epoch, version, from_state, from_reason, to_state, reason_code, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (agent_id, epoch, version) DO NOTHING",
    )
    .bind(&change.agent_id)
    .bind(change.epoch)
    .bind(change.version)
    .bind(&change.from_state)
    .bind(&change.from_reason)
    .bind(&change.to_state)
    .bind(&change.reason_code)
    .bind(change.at)
    .execute(db)
    .await?;
    Ok(())
}

impl Store {
    /// The screen pop of `call_id` from `caller` to `dialled`, at `now`.
    pub async fn screen_pop(
        &self,
        call_id: &str,
        caller: &str,
        dialled: &str,
        now: DateTime<Utc>,
    ) -> Result<ScreenPop, StoreError> {
        let row: Option<CallRow> = sqlx::query_as(
            "SELECT c.caller_number, c.called_number, c.ivr_path, c.ivr_variables::text, \
                    c.recording_consent, c.recording_consent_via, \
                    (SELECT t.number FROM tickets t WHERE t.call_id = c.call_id \
                     ORDER BY t.id LIMIT 1) \
             FROM calls c WHERE c.call_id = $1",
        )
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?;
        let mut pop = ScreenPop {
            call_id: call_id.to_owned(),
            caller_number: caller.to_owned(),
            dialled_number: dialled.to_owned(),
            ..ScreenPop::default()
        };
        if let Some((_, _, path, variables, consent, via, ticket)) = row {
            let variables = serde_json::from_str(&variables).unwrap_or_default();
            pop.ivr_path = ivr_steps(&path, &variables);
            pop.recording_consent = consent;
            pop.recording_consent_via = via;
            pop.draft_ticket = ticket;
        }
        let customers = self.customers_by_phone(caller).await?;
        let customer_ids: Vec<i64> = customers.iter().map(|c| c.id).collect();
        pop.household = customers.into_iter().next().map(|c| PopHousehold {
            special_group: c.special_group.map(|g| g.code().to_owned()),
            account_number: c.account_number,
            name: c.name,
            address: c.address,
            area: c.area,
        });
        self.pop_calls(&mut pop, now).await?;
        self.pop_tickets(&mut pop, &customer_ids, now).await?;
        self.pop_leaks(&mut pop, now).await?;
        let area = pop.household.as_ref().map(|h| h.area.as_str());
        pop.outage_announcements = self
            .active_announcements(dialled, area, now)
            .await?
            .into_iter()
            .filter_map(|a| a.text.or(a.prompt))
            .collect();
        Ok(pop)
    }

    /// The caller's last calls before this one, and the count of the last 24 hours.
    async fn pop_calls(&self, pop: &mut ScreenPop, now: DateTime<Utc>) -> Result<(), StoreError> {
        type Row = (
            String,
            DateTime<Utc>,
            Vec<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(LAST_CALLS_SQL)
            .bind(&pop.caller_number)
            .bind(&pop.call_id)
            .bind(LAST_CALLS)
            .fetch_all(&self.pool)
            .await?;
        pop.last_calls = rows
            .into_iter()
            .map(
                |(call_id, arrived_at, ivr_path, disposition, agent_id, ticket)| PastCall {
                    call_id,
                    arrived_at,
                    ivr_path,
                    disposition,
                    agent_id,
                    ticket,
                },
            )
            .collect();
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM calls WHERE caller_number = $1 AND arrived_at > $2",
        )
        .bind(&pop.caller_number)
        .bind(now - Duration::hours(24))
        .fetch_one(&self.pool)
        .await?;
        pop.calls_last_24h = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(())
    }

    /// Open tickets of the caller or the household (drafts, this call's included, are not
    /// tickets yet), with the deadline owed next.
    async fn pop_tickets(
        &self,
        pop: &mut ScreenPop,
        customer_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        type Row = (String, String, String, Option<DateTime<Utc>>);
        let rows: Vec<Row> = sqlx::query_as(OPEN_TICKETS_SQL)
            .bind(&pop.caller_number)
            .bind(customer_ids)
            .bind(OPEN_TICKETS)
            .fetch_all(&self.pool)
            .await?;
        pop.open_complaint = rows
            .iter()
            .any(|(_, category, _, _)| category == "complaint");
        pop.open_tickets = rows
            .into_iter()
            .map(|(number, category, status, next_deadline)| PopTicket {
                overdue: next_deadline.is_some_and(|due| due < now),
                number,
                category,
                status,
                next_deadline,
            })
            .collect();
        Ok(())
    }

    /// Leak tickets at the household's address or in its area in the last 30 days.
    async fn pop_leaks(&self, pop: &mut ScreenPop, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(household) = &pop.household else {
            return Ok(());
        };
        type Row = (String, String, String, DateTime<Utc>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT number, caller_address, area, created_at FROM tickets \
             WHERE category = 'leak' AND created_at > $3 \
               AND ((caller_address = $1 AND $1 <> '') OR (area = $2 AND $2 <> '')) \
             ORDER BY created_at DESC LIMIT $4",
        )
        .bind(&household.address)
        .bind(&household.area)
        .bind(now - Duration::days(30))
        .bind(NEARBY_LEAKS)
        .fetch_all(&self.pool)
        .await?;
        pop.nearby_leaks = rows
            .into_iter()
            .map(|(ticket, address, area, reported_at)| LeakReport {
                same_address: address == household.address,
                ticket,
                address,
                area,
                reported_at,
            })
            .collect();
        Ok(())
    }

    /// The plans (EXPLAIN ANALYZE) of the pop's two heaviest queries for `caller`, for the
    /// benchmark: (query, plan text).
    pub async fn screen_pop_plans(
        &self,
        caller: &str,
    ) -> Result<Vec<(&'static str, String)>, StoreError> {
        let customer_ids: Vec<i64> = self
            .customers_by_phone(caller)
            .await?
            .iter()
            .map(|c| c.id)
            .collect();
        let explain = |sql: &str| format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
        let last_calls: Vec<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(explain(LAST_CALLS_SQL)))
                .bind(caller)
                .bind("")
                .bind(LAST_CALLS)
                .fetch_all(&self.pool)
                .await?;
        let tickets: Vec<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(explain(OPEN_TICKETS_SQL)))
                .bind(caller)
                .bind(&customer_ids)
                .bind(OPEN_TICKETS)
                .fetch_all(&self.pool)
                .await?;
        let text = |rows: Vec<(String,)>| {
            rows.into_iter()
                .map(|(l,)| l)
                .collect::<Vec<_>>()
                .join("\n")
        };
        Ok(vec![
            ("last calls", text(last_calls)),
            ("open tickets", text(tickets)),
        ])
    }

    /// Appends an agent's state change to the timeline (idempotent per agent, epoch and
    /// version).
    pub async fn record_state_change(&self, change: &StateChangeRecord) -> Result<(), StoreError> {
        insert_state_change(&self.pool, change).await
    }

    /// The agent's timeline, oldest first.
    pub async fn state_changes(
        &self,
        agent_id: &str,
    ) -> Result<Vec<StateChangeRecord>, StoreError> {
        type Row = (
            String,
            i64,
            i64,
            String,
            Option<String>,
            String,
            Option<String>,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT agent_id, epoch, version, from_state, from_reason, to_state, reason_code, at \
             FROM agent_state_changes WHERE agent_id = $1 ORDER BY at, id",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(agent_id, epoch, version, from_state, from_reason, to_state, reason_code, at)| {
                    StateChangeRecord {
                        agent_id,
                        epoch,
                        version,
                        from_state,
                        from_reason,
                        to_state,
                        reason_code,
                        at,
                    }
                },
            )
            .collect())
    }

    /// CompleteWrapUp: the disposition and notes on the call row, and on its draft ticket's
    /// description for whoever handles the ticket. Answers the draft it changed (none when
    /// the call has no draft left).
    pub async fn record_disposition(
        &self,
        call_id: &str,
        agent_id: &str,
        code: &str,
        notes: &str,
    ) -> Result<Option<TicketRef>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE calls SET disposition_code = $2, agent_notes = $3, wrapped_up_by = $4 \
             WHERE call_id = $1",
        )
        .bind(call_id)
        .bind(code)
        .bind(notes)
        .bind(agent_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("call {call_id}")));
        }
        let line = if notes.is_empty() {
            format!("disposition ({agent_id}): {code}")
        } else {
            format!("disposition ({agent_id}): {code}; notes: {notes}")
        };
        let draft: Option<(String, String)> = sqlx::query_as(
            "UPDATE tickets SET description = description || E'\\n' || $2, \
             updated_at = now(), version = version + 1 \
             WHERE call_id = $1 AND status = 'draft' RETURNING number, status",
        )
        .bind(call_id)
        .bind(line)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(draft.map(|(number, status)| TicketRef { number, status }))
    }
}
