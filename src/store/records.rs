//! The records around tickets: responsible units, customer files (一户一档) and call rows,
//! with the look-ups a screen pop needs (who is calling, their recent calls).

use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Special groups registered for priority handling (hotline-rules §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialGroup {
    ElderlyAlone,
    Disabled,
    Other,
}

impl SpecialGroup {
    fn code(self) -> &'static str {
        match self {
            SpecialGroup::ElderlyAlone => "elderly_alone",
            SpecialGroup::Disabled => "disabled",
            SpecialGroup::Other => "other",
        }
    }

    fn from_code(code: &str) -> Option<SpecialGroup> {
        [
            SpecialGroup::ElderlyAlone,
            SpecialGroup::Disabled,
            SpecialGroup::Other,
        ]
        .into_iter()
        .find(|g| g.code() == code)
    }
}

/// A household's file.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: i64,
    pub account_number: String,
    pub name: String,
    pub phone_numbers: Vec<String>,
    pub address: String,
    pub area: String,
    pub special_group: Option<SpecialGroup>,
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: i64,
    account_number: String,
    name: String,
    phone_numbers: Vec<String>,
    address: String,
    area: String,
    special_group: Option<String>,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = StoreError;

    fn try_from(row: CustomerRow) -> Result<Customer, StoreError> {
        let special_group = match row.special_group.as_deref() {
            None => None,
            Some(code) => Some(SpecialGroup::from_code(code).ok_or_else(|| {
                StoreError::Other(format!(
                    "customer {} holds an unknown special group {code:?}",
                    row.id
                ))
            })?),
        };
        Ok(Customer {
            id: row.id,
            account_number: row.account_number,
            name: row.name,
            phone_numbers: row.phone_numbers,
            address: row.address,
            area: row.area,
            special_group,
        })
    }
}

/// A new household file.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub account_number: String,
    pub name: String,
    pub phone_numbers: Vec<String>,
    pub address: String,
    pub area: String,
    pub special_group: Option<SpecialGroup>,
}

/// How the caller answered the recording-consent question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    Granted,
    Declined,
}

/// How the consent answer was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentVia {
    Dtmf,
    Voice,
    Agent,
}

/// A call as it arrives from the PBX.
#[derive(Debug, Clone)]
pub struct NewCall {
    /// Derived from the SIP Call-ID; unique.
    pub call_id: String,
    pub caller_number: String,
    pub called_number: String,
    pub arrived_at: DateTime<Utc>,
}

/// What became known about a call later; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct CallUpdate {
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Replaces the whole path (menu choices so far).
    pub ivr_path: Option<Vec<String>>,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub consent: Option<(ConsentDecision, ConsentVia, DateTime<Utc>)>,
    pub recording_file: Option<String>,
    /// `answered`, `abandoned_in_ivr`, `abandoned_in_queue`, `self_served`, `transferred`
    /// or `failed`.
    pub disposition: Option<String>,
}

impl Store {
    /// Creates or renames a responsible unit.
    pub async fn upsert_unit(&self, code: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO units (code, name) VALUES ($1, $2) \
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name",
        )
        .bind(code)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Opens a household file; its account number must be new.
    pub async fn create_customer(&self, new: &NewCustomer) -> Result<Customer, StoreError> {
        sqlx::query_as::<_, CustomerRow>(
            "INSERT INTO customers (account_number, name, phone_numbers, address, area, \
               special_group) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, account_number, name, phone_numbers, address, area, special_group",
        )
        .bind(&new.account_number)
        .bind(&new.name)
        .bind(&new.phone_numbers)
        .bind(&new.address)
        .bind(&new.area)
        .bind(new.special_group.map(SpecialGroup::code))
        .fetch_one(&self.pool)
        .await?
        .try_into()
    }

    /// Screen pop: the households that list this phone number.
    pub async fn customers_by_phone(&self, number: &str) -> Result<Vec<Customer>, StoreError> {
        sqlx::query_as::<_, CustomerRow>(
            "SELECT id, account_number, name, phone_numbers, address, area, special_group \
             FROM customers WHERE phone_numbers @> ARRAY[$1] ORDER BY id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Customer::try_from)
        .collect()
    }

    /// Records a call arriving. Recording it twice (a retransmitted INVITE) is harmless.
    pub async fn record_call(&self, call: &NewCall) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO calls (call_id, caller_number, called_number, arrived_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (call_id) DO NOTHING",
        )
        .bind(&call.call_id)
        .bind(&call.caller_number)
        .bind(&call.called_number)
        .bind(call.arrived_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Fills in what became known about a call.
    pub async fn update_call(&self, call_id: &str, update: &CallUpdate) -> Result<(), StoreError> {
        let (decision, via, decided_at) = match update.consent {
            Some((decision, via, at)) => (
                Some(match decision {
                    ConsentDecision::Granted => "granted",
                    ConsentDecision::Declined => "declined",
                }),
                Some(match via {
                    ConsentVia::Dtmf => "dtmf",
                    ConsentVia::Voice => "voice",
                    ConsentVia::Agent => "agent",
                }),
                Some(at),
            ),
            None => (None, None, None),
        };
        let result = sqlx::query(
            "UPDATE calls SET answered_at = COALESCE($2, answered_at), \
               ended_at = COALESCE($3, ended_at), ivr_path = COALESCE($4, ivr_path), \
               queue = COALESCE($5, queue), agent_id = COALESCE($6, agent_id), \
               recording_consent = COALESCE($7, recording_consent), \
               recording_consent_via = COALESCE($8, recording_consent_via), \
               recording_consent_at = COALESCE($9, recording_consent_at), \
               recording_file = COALESCE($10, recording_file), \
               disposition = COALESCE($11, disposition) \
             WHERE call_id = $1",
        )
        .bind(call_id)
        .bind(update.answered_at)
        .bind(update.ended_at)
        .bind(&update.ivr_path)
        .bind(&update.queue)
        .bind(&update.agent_id)
        .bind(decision)
        .bind(via)
        .bind(decided_at)
        .bind(&update.recording_file)
        .bind(&update.disposition)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("call {call_id}")));
        }
        Ok(())
    }

    /// Screen pop: how many times this number called since `since`.
    pub async fn count_calls_from(
        &self,
        caller_number: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM calls WHERE caller_number = $1 AND arrived_at >= $2",
        )
        .bind(caller_number)
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }
}
