//! The call journal's records: what the call layer writes about a call ([`CallEntry`], the
//! store's own types), their stable on-disk form in the spool ([`CallWrite`]: UTC times, text
//! codes) and the SQL that applies one to the call row and the draft ticket (工单).
//!
//! Owns the records and their SQL; must not know the IVR's or the call layer's types (the
//! call layer converts to these).

use super::desk::{StateChangeRecord, TicketRef, insert_state_change};
use super::spool::JournalRecord;
use super::tickets::insert_ticket;
use super::transitions::refresh_deadlines_in;
use super::{NewTicket, Store, StoreError};
use crate::tickets::callback::Rating;
use crate::tickets::{Category, Channel, Rules, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who the audit trail names for changes the IVR makes to a draft ticket.
const IVR_ACTOR: &str = "ivr";
/// Priority of a leak draft (the highest the schema allows).
const TOP_PRIORITY: i32 = 9;

/// How a call ended, as the call row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Answered,
    AbandonedInIvr,
    AbandonedInQueue,
    SelfServed,
    Transferred,
    Failed,
    /// Open when the daemon stopped (a crash, `kill -9`): closed at the next start.
    Interrupted,
    /// Hung up by us: nothing (RTP or RTCP) came from the caller for `media.inactivity_secs`.
    MediaTimeout,
    /// Hung up by us: longer than `daemon.max_call_secs`.
    MaxDuration,
    /// Hung up by us: waited in a queue longer than `daemon.max_queue_wait_secs`.
    QueueTimeout,
    /// Hung up by us (RFC 4028): the caller's side was to refresh the SIP session and no
    /// refresh came in time (or ours got no answer before the session expired).
    SessionExpired,
    /// Hung up by us (RFC 4028 §10): our session refresh was answered 408 or 481, or not at
    /// all.
    SessionRefreshFailed,
}

impl Disposition {
    /// The code stored in `calls.disposition`.
    pub fn code(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::AbandonedInIvr => "abandoned_in_ivr",
            Disposition::AbandonedInQueue => "abandoned_in_queue",
            Disposition::SelfServed => "self_served",
            Disposition::Transferred => "transferred",
            Disposition::Failed => "failed",
            Disposition::Interrupted => "interrupted",
            Disposition::MediaTimeout => "media_timeout",
            Disposition::MaxDuration => "max_duration",
            Disposition::QueueTimeout => "queue_timeout",
            Disposition::SessionExpired => "session_expired",
            Disposition::SessionRefreshFailed => "session_refresh_failed",
        }
    }
}

/// The caller's answer to the recording notice, as the call row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    Granted,
    Declined,
    NotAsked,
}

impl ConsentDecision {
    /// The code stored in `calls.consent`.
    pub fn code(self) -> &'static str {
        match self {
            ConsentDecision::Granted => "granted",
            ConsentDecision::Declined => "declined",
            ConsentDecision::NotAsked => "not_asked",
        }
    }
}

/// How the consent decision came about, as the call row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentVia {
    /// Heard the notice and stayed on the line.
    StayedOnLine,
    /// Pressed a key.
    Dtmf,
    /// Skipped the notice with the leak digit.
    LeakDefault,
    /// Opt-in notice, no key pressed.
    NoResponse,
    /// Recording policy `off`.
    PolicyOff,
}

impl ConsentVia {
    /// The code stored in `calls.consent_via`.
    pub fn code(self) -> &'static str {
        match self {
            ConsentVia::StayedOnLine => "stayed_on_line",
            ConsentVia::Dtmf => "dtmf",
            ConsentVia::LeakDefault => "leak_default",
            ConsentVia::NoResponse => "no_response",
            ConsentVia::PolicyOff => "policy_off",
        }
    }
}

/// The household file the caller look-up found, for the draft ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftCustomer {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub area: String,
}

/// One thing that happened to a call, to be written to its call row or draft ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEntry {
    /// The INVITE came in; creates the call row (first entry of every call).
    Arrived {
        caller: String,
        called: String,
        at: DateTime<Utc>,
    },
    Answered {
        at: DateTime<Utc>,
    },
    /// The draft ticket (工单) every call gets, with the household the caller look-up found.
    Draft {
        caller: String,
        called: String,
        flow: String,
        started_at: DateTime<Utc>,
        customer: Option<DraftCustomer>,
    },
    /// The caller moved on from `node` with `input` (the key or entry; `None` when the step
    /// needed none): one step of the draft's IVR path.
    PathStep {
        node: String,
        input: Option<String>,
    },
    /// The draft's category (deadlines are recomputed); `top_priority` for leaks.
    Category {
        category: Category,
        top_priority: bool,
    },
    /// An entry the caller keyed in (e.g. `account`), for the agent.
    Variable {
        name: String,
        value: String,
    },
    /// The call flow finished with the call (the end time; the disposition comes with
    /// [`CallEntry::Ended`]).
    FlowEnded {
        at: DateTime<Utc>,
    },
    /// The caller's answer to the recording notice.
    Consent {
        decision: ConsentDecision,
        via: ConsentVia,
        at: DateTime<Utc>,
    },
    /// The caller's answer to the post-call survey, for the call row and its ticket.
    Survey {
        rating: Rating,
        /// The key pressed.
        key: char,
        at: DateTime<Utc>,
    },
    /// The call entered `queue` at `at` (the first entry is the wait's start).
    Queue {
        queue: String,
        at: DateTime<Utc>,
    },
    /// An agent answered at `at` (the first answer is the call's connect time).
    Agent {
        agent_id: String,
        at: DateTime<Utc>,
    },
    /// The caller pressed the leak digit at `at`.
    Leak {
        at: DateTime<Utc>,
    },
    /// The recording file (as the recorder returned it).
    Recording {
        path: String,
    },
    Ended {
        at: DateTime<Utc>,
        disposition: Disposition,
    },
    /// Not a call's: an agent's state change for `agent_state_changes`, journalled under
    /// [`agent_journal_key`] so that it survives a database outage like the call records.
    AgentState(StateChangeRecord),
}

/// The journal key of an agent's state changes (in place of a call id).
pub fn agent_journal_key(agent_id: &str) -> String {
    format!("agent:{agent_id}")
}

/// The database write a [`CallEntry`] stands for, in the spool's stable on-disk form (UTC
/// times, text codes), independent of the in-memory record types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum CallWrite {
    Arrived {
        caller: String,
        called: String,
        at: DateTime<Utc>,
    },
    Answered {
        at: DateTime<Utc>,
    },
    DraftTicket {
        caller: String,
        called: String,
        flow: String,
        started_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer: Option<DraftCustomer>,
    },
    PathStep {
        step: String,
    },
    Category {
        category: String,
        top_priority: bool,
    },
    Variable {
        name: String,
        value: String,
    },
    Consent {
        decision: String,
        via: String,
        at: DateTime<Utc>,
    },
    Survey {
        rating: String,
        key: String,
        at: DateTime<Utc>,
    },
    Queue {
        queue: String,
        /// Absent in records spooled before the service report (issue 12).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    Agent {
        agent_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    Leak {
        at: DateTime<Utc>,
    },
    Recording {
        path: String,
    },
    Ended {
        at: DateTime<Utc>,
        disposition: Option<String>,
    },
    AgentState(StateChangeRecord),
}

impl From<CallEntry> for CallWrite {
    fn from(entry: CallEntry) -> CallWrite {
        match entry {
            CallEntry::Arrived { caller, called, at } => CallWrite::Arrived { caller, called, at },
            CallEntry::Answered { at } => CallWrite::Answered { at },
            CallEntry::Draft {
                caller,
                called,
                flow,
                started_at,
                customer,
            } => CallWrite::DraftTicket {
                caller,
                called,
                flow,
                started_at,
                customer,
            },
            CallEntry::PathStep { node, input } => CallWrite::PathStep {
                step: match input {
                    Some(input) => format!("{node}:{input}"),
                    None => node,
                },
            },
            CallEntry::Category {
                category,
                top_priority,
            } => CallWrite::Category {
                category: category.code().to_owned(),
                top_priority,
            },
            CallEntry::Variable { name, value } => CallWrite::Variable { name, value },
            CallEntry::FlowEnded { at } => CallWrite::Ended {
                at,
                disposition: None,
            },
            CallEntry::Consent { decision, via, at } => CallWrite::Consent {
                decision: decision.code().to_owned(),
                via: via.code().to_owned(),
                at,
            },
            CallEntry::Survey { rating, key, at } => CallWrite::Survey {
                rating: rating.code().to_owned(),
                key: key.to_string(),
                at,
            },
            CallEntry::Queue { queue, at } => CallWrite::Queue {
                queue,
                at: Some(at),
            },
            CallEntry::Agent { agent_id, at } => CallWrite::Agent {
                agent_id,
                at: Some(at),
            },
            CallEntry::Leak { at } => CallWrite::Leak { at },
            CallEntry::Recording { path } => CallWrite::Recording { path },
            CallEntry::Ended { at, disposition } => CallWrite::Ended {
                at,
                disposition: Some(disposition.code().to_owned()),
            },
            CallEntry::AgentState(change) => CallWrite::AgentState(change),
        }
    }
}

impl Store {
    /// Applies consecutive journal records in one transaction (one commit for all: the
    /// journal keeps up with thousands of calls), each unless its call already has it
    /// (sequence guard). Answers, in order, each record's call id and ticket when the record
    /// changed it (created the draft, its category, an entry on it, the survey rating), for
    /// the agents' desktops. On any error nothing is written.
    pub(super) async fn apply_journal_batch(
        &self,
        records: &[JournalRecord],
        rules: &Rules,
    ) -> Result<Vec<(String, TicketRef)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = Vec::new();
        for record in records {
            if let Some(ticket) = apply_guarded(&mut tx, self.time_zone, record, rules).await? {
                changed.push((record.call_id.clone(), ticket));
            }
        }
        tx.commit().await?;
        Ok(changed)
    }
}

/// One record's call-row and ticket SQL in `tx`, unless its call already has it (sequence
/// guard, updated in the same transaction).
async fn apply_guarded(
    tx: &mut Tx<'_>,
    time_zone: chrono_tz::Tz,
    record: &JournalRecord,
    rules: &Rules,
) -> Result<Option<TicketRef>, StoreError> {
    let call_id = record.call_id.as_str();
    let seq = i64::try_from(record.seq).map_err(|_| StoreError::Invalid {
        field: "seq",
        reason: "out of range".into(),
    })?;
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last_seq FROM call_journal_applied WHERE call_id = $1 FOR UPDATE",
    )
    .bind(call_id)
    .fetch_optional(&mut **tx)
    .await?;
    if last.is_some_and(|last| last >= seq) {
        return Ok(None);
    }
    let changed = apply_call_write(tx, time_zone, call_id, &record.write, rules).await?;
    sqlx::query(
        "INSERT INTO call_journal_applied (call_id, last_seq) VALUES ($1, $2) \
         ON CONFLICT (call_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, \
         applied_at = now()",
    )
    .bind(call_id)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(changed)
}

/// The draft ticket every call gets (deadlines not yet set); `request_id = "call:<id>"` makes
/// its create idempotent.
fn draft_ticket(
    call_id: &str,
    caller: &str,
    called: &str,
    flow: &str,
    started_at: DateTime<Utc>,
    customer: Option<&DraftCustomer>,
) -> NewTicket {
    NewTicket {
        request_id: Some(format!("call:{call_id}")),
        channel: Channel::Hotline,
        // Until the IVR or the agent knows better.
        category: Category::Consultation,
        complaint_level: None,
        status: Status::Draft,
        priority: 0,
        caller_name: customer.map(|c| c.name.clone()).unwrap_or_default(),
        caller_number: caller.to_owned(),
        caller_address: customer.map(|c| c.address.clone()).unwrap_or_default(),
        description: format!("热线来电 {called}，IVR 流程 {flow}"),
        customer_id: customer.map(|c| c.id),
        responsible_unit: None,
        dispatch_due: None,
        contact_due: None,
        finish_due: None,
        callback_due: None,
        investigation_due: None,
        area: customer.map(|c| c.area.clone()).unwrap_or_default(),
        parent_number: None,
        call_id: Some(call_id.to_owned()),
        created_by: IVR_ACTOR.to_owned(),
        created_at: started_at,
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

/// Creates the call's draft ticket in `tx`, or answers the one its `request_id` already
/// made (a record replayed after a crash). Only the journal uses `call:<id>` request ids, so
/// nothing else can create the same draft meanwhile.
async fn create_draft(
    tx: &mut Tx<'_>,
    time_zone: chrono_tz::Tz,
    draft: &NewTicket,
) -> Result<TicketRef, StoreError> {
    let existing: Option<(String, String)> =
        sqlx::query_as("SELECT number, status FROM tickets WHERE request_id = $1")
            .bind(&draft.request_id)
            .fetch_optional(&mut **tx)
            .await?;
    let (number, status) = match existing {
        Some(found) => found,
        None => {
            let id = insert_ticket(tx, time_zone, draft, None)
                .await?
                .ok_or_else(|| StoreError::Conflict("the call's draft ticket exists".into()))?;
            sqlx::query_as("SELECT number, status FROM tickets WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?
        }
    };
    Ok(TicketRef { number, status })
}

/// The call-row and ticket SQL of one journal write (the draft create is done by the caller);
/// answers the ticket when the write changed it.
async fn apply_call_write(
    tx: &mut Tx<'_>,
    time_zone: chrono_tz::Tz,
    call_id: &str,
    write: &CallWrite,
    rules: &Rules,
) -> Result<Option<TicketRef>, StoreError> {
    let update = |sql: &'static str| sqlx::query(sql).bind(call_id);
    let result = match write {
        CallWrite::Arrived { caller, called, at } => {
            return insert_call_row(tx, call_id, caller, called, *at)
                .await
                .map(|()| None);
        }
        CallWrite::DraftTicket {
            caller,
            called,
            flow,
            started_at,
            customer,
        } => {
            let draft = draft_ticket(
                call_id,
                caller,
                called,
                flow,
                *started_at,
                customer.as_ref(),
            );
            return create_draft(tx, time_zone, &draft.due_by_rules(rules))
                .await
                .map(Some);
        }
        CallWrite::AgentState(change) => {
            return insert_state_change(&mut **tx, change).await.map(|()| None);
        }
        CallWrite::Category {
            category,
            top_priority,
        } => return set_draft_category(tx, call_id, category, *top_priority, rules).await,
        CallWrite::Answered { at } => {
            update("UPDATE calls SET answered_at = $2 WHERE call_id = $1")
                .bind(at)
                .execute(&mut **tx)
                .await?
        }
        CallWrite::PathStep { step } => {
            update("UPDATE calls SET ivr_path = array_append(ivr_path, $2) WHERE call_id = $1")
                .bind(step)
                .execute(&mut **tx)
                .await?
        }
        CallWrite::Variable { name, value } => {
            let (calls, draft) = add_variable(tx, call_id, name, value).await?;
            if calls.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("call {call_id}")));
            }
            return Ok(draft);
        }
        CallWrite::Consent { decision, via, at } => {
            update(
                "UPDATE calls SET recording_consent = $2, recording_consent_via = $3, \
             recording_consent_at = $4 WHERE call_id = $1",
            )
            .bind(decision)
            .bind(via)
            .bind(at)
            .execute(&mut **tx)
            .await?
        }
        CallWrite::Survey { rating, key, at } => {
            return record_survey(tx, call_id, rating, key, *at).await;
        }
        CallWrite::Queue { queue, at } => {
            update(
                "UPDATE calls SET queue = $2, queued_at = COALESCE(queued_at, $3) \
             WHERE call_id = $1",
            )
            .bind(queue)
            .bind(at)
            .execute(&mut **tx)
            .await?
        }
        CallWrite::Agent { agent_id, at } => {
            update(
                "UPDATE calls SET agent_id = $2, connected_at = COALESCE(connected_at, $3) \
             WHERE call_id = $1",
            )
            .bind(agent_id)
            .bind(at)
            .execute(&mut **tx)
            .await?
        }
        CallWrite::Leak { at } => {
            update("UPDATE calls SET leak_at = COALESCE(leak_at, $2) WHERE call_id = $1")
                .bind(at)
                .execute(&mut **tx)
                .await?
        }
        CallWrite::Recording { path } => {
            update("UPDATE calls SET recording_file = $2 WHERE call_id = $1")
                .bind(path)
                .execute(&mut **tx)
                .await?
        }
        CallWrite::Ended { at, disposition } => {
            update(
                "UPDATE calls SET ended_at = $2, disposition = COALESCE($3, disposition) \
             WHERE call_id = $1",
            )
            .bind(at)
            .bind(disposition)
            .execute(&mut **tx)
            .await?
        }
    };
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("call {call_id}")));
    }
    Ok(None)
}

/// The survey rating on the call row and on the call's ticket (whatever its status: an agent
/// may have taken it meanwhile), with an audit row on the ticket.
async fn record_survey(
    tx: &mut Tx<'_>,
    call_id: &str,
    rating: &str,
    key: &str,
    at: DateTime<Utc>,
) -> Result<Option<TicketRef>, StoreError> {
    let call = sqlx::query(
        "UPDATE calls SET survey_rating = $2, survey_key = $3, survey_at = $4 WHERE call_id = $1",
    )
    .bind(call_id)
    .bind(rating)
    .bind(key)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    if call.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("call {call_id}")));
    }
    let ticket: Option<(i64, Option<String>, String, String)> = sqlx::query_as(
        "UPDATE tickets t SET call_survey_rating = $2, call_survey_at = $3, updated_at = now(), \
         version = t.version + 1 FROM tickets old \
         WHERE t.id = old.id AND t.request_id = $1 \
         RETURNING t.id, old.call_survey_rating, t.number, t.status",
    )
    .bind(format!("call:{call_id}"))
    .bind(rating)
    .bind(at)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((ticket_id, old, number, status)) = ticket else {
        return Err(StoreError::NotFound(format!("ticket of call {call_id}")));
    };
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, actor, action, field, old_value, new_value) \
         VALUES ($1, $2, 'call_survey', 'call_survey_rating', $3, $4)",
    )
    .bind(ticket_id)
    .bind(IVR_ACTOR)
    .bind(old)
    .bind(rating)
    .execute(&mut **tx)
    .await?;
    Ok(Some(TicketRef { number, status }))
}

/// The call row, created by the first record of the call (a replay leaves it as it is).
async fn insert_call_row(
    tx: &mut Tx<'_>,
    call_id: &str,
    caller: &str,
    called: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO calls (call_id, caller_number, called_number, arrived_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (call_id) DO NOTHING",
    )
    .bind(call_id)
    .bind(caller)
    .bind(called)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An entry the caller keyed in, on the call row and, for the agent, on the draft: the call
/// row's update and the draft it changed.
async fn add_variable(
    tx: &mut Tx<'_>,
    call_id: &str,
    name: &str,
    value: &str,
) -> Result<(sqlx::postgres::PgQueryResult, Option<TicketRef>), StoreError> {
    let draft: Option<(String, String)> = sqlx::query_as(
        "UPDATE tickets SET description = description || E'\\n' || $2, \
         updated_at = now(), version = version + 1 \
         WHERE request_id = $1 AND status = 'draft' RETURNING number, status",
    )
    .bind(format!("call:{call_id}"))
    .bind(format!("{name}: {value}"))
    .fetch_optional(&mut **tx)
    .await?;
    let draft = draft.map(|(number, status)| TicketRef { number, status });
    let calls = sqlx::query(
        "UPDATE calls SET ivr_variables = ivr_variables || jsonb_build_object($2::text, $3::text) \
         WHERE call_id = $1",
    )
    .bind(call_id)
    .bind(name)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok((calls, draft))
}

/// The IVR's category for the call's draft ticket, with one audit row per changed field and
/// the deadlines the rules give the new category. A ticket that is no longer a draft (an
/// agent took it) is left alone.
async fn set_draft_category(
    tx: &mut Tx<'_>,
    call_id: &str,
    category: &str,
    top_priority: bool,
    rules: &Rules,
) -> Result<Option<TicketRef>, StoreError> {
    let category: Category = category.parse().map_err(|err| StoreError::Invalid {
        field: "category",
        reason: format!("{err}"),
    })?;
    let current: Option<(i64, String, String, i32, String)> = sqlx::query_as(
        "SELECT id, number, category, priority, status FROM tickets \
         WHERE request_id = $1 FOR UPDATE",
    )
    .bind(format!("call:{call_id}"))
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id, number, old_category, old_priority, status)) = current else {
        return Err(StoreError::NotFound(format!(
            "draft ticket of call {call_id}"
        )));
    };
    if status != Status::Draft.code() {
        return Ok(None);
    }
    let priority = if top_priority {
        old_priority.max(TOP_PRIORITY)
    } else {
        old_priority
    };
    let changes = [
        ("category", old_category.clone(), category.code().to_owned()),
        ("priority", old_priority.to_string(), priority.to_string()),
    ];
    if changes.iter().all(|(_, old, new)| old == new) {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE tickets SET category = $2, priority = $3, updated_at = now(), \
         version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(category.code())
    .bind(priority)
    .execute(&mut **tx)
    .await?;
    for (field, old, new) in changes.iter().filter(|(_, old, new)| old != new) {
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, actor, action, field, old_value, new_value) \
             VALUES ($1, $2, 'update', $3, $4, $5)",
        )
        .bind(id)
        .bind(IVR_ACTOR)
        .bind(field)
        .bind(old)
        .bind(new)
        .execute(&mut **tx)
        .await?;
    }
    if old_category != category.code() {
        refresh_deadlines_in(tx, &number, rules).await?;
    }
    Ok(Some(TicketRef { number, status }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_spool_writes_with_text_codes() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 25, 12, 0, 0).unwrap();
        let write = CallWrite::from(CallEntry::FlowEnded { at });
        assert_eq!(
            write,
            CallWrite::Ended {
                at,
                disposition: None
            }
        );
        let consent = CallWrite::from(CallEntry::Consent {
            decision: ConsentDecision::Granted,
            via: ConsentVia::Dtmf,
            at,
        });
        let json = serde_json::to_string(&consent).unwrap();
        assert_eq!(serde_json::from_str::<CallWrite>(&json).unwrap(), consent);
        assert!(json.contains("\"decision\":\"granted\""), "{json}");
        assert!(json.contains("\"via\":\"dtmf\""), "{json}");
    }

    #[test]
    fn queue_and_agent_records_spooled_before_their_times_still_read() {
        let old: CallWrite = serde_json::from_str(r#"{"op":"queue","queue":"general"}"#).unwrap();
        assert_eq!(
            old,
            CallWrite::Queue {
                queue: "general".into(),
                at: None
            }
        );
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 8, 0, 0).unwrap();
        let agent = CallWrite::from(CallEntry::Agent {
            agent_id: "1001".into(),
            at,
        });
        let json = serde_json::to_string(&agent).unwrap();
        assert_eq!(serde_json::from_str::<CallWrite>(&json).unwrap(), agent);
    }
}
