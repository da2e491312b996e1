//! Caller look-ups for the call path: who is calling and which of their tickets are still
//! open, from the screen-pop indexes (`customers_by_phone`, `tickets_by_caller`,
//! `tickets_by_customer`). The call path asks with a short timeout and goes on without.

use super::{SpecialGroup, Store, StoreError};
use crate::tickets::{Category, Status};
use chrono::{DateTime, Utc};

/// Most open tickets a look-up returns (newest first).
const MAX_OPEN_TICKETS: i64 = 20;

/// The household file a caller's number belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerCustomer {
    pub id: i64,
    pub name: String,
    /// Supply area, for area-targeted announcements.
    pub area: String,
    pub special_group: Option<SpecialGroup>,
}

impl CallerCustomer {
    /// Registered for priority handling (hotline-rules §6).
    pub fn is_special(&self) -> bool {
        self.special_group.is_some()
    }
}

/// A ticket of this caller that is not closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTicket {
    pub number: String,
    pub status: Status,
    pub category: Category,
    pub finish_due: Option<DateTime<Utc>>,
}

/// What the store knows about a calling number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerFacts {
    /// The first household file (lowest id) listing the number, if any.
    pub customer: Option<CallerCustomer>,
    /// Not-closed tickets filed from this number or on a household listing it, newest first.
    pub open_tickets: Vec<OpenTicket>,
}

impl CallerFacts {
    /// For the IVR's `open_ticket_check` nodes (`CallInfo::has_open_ticket`).
    pub fn has_open_ticket(&self) -> bool {
        !self.open_tickets.is_empty()
    }
}

impl Store {
    /// Who is calling from `number` and which of their tickets are open.
    pub async fn caller_facts(&self, number: &str) -> Result<CallerFacts, StoreError> {
        let customers = self.customers_by_phone(number).await?;
        let customer_ids: Vec<i64> = customers.iter().map(|c| c.id).collect();
        let rows: Vec<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT number, status, category, finish_due FROM tickets \
             WHERE (caller_number = $1 OR customer_id = ANY($2)) AND status <> 'closed' \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(number)
        .bind(&customer_ids)
        .bind(MAX_OPEN_TICKETS)
        .fetch_all(&self.pool)
        .await?;
        let open_tickets = rows
            .into_iter()
            .map(|(number, status, category, finish_due)| {
                let damaged = |err: crate::tickets::model::UnknownCode| {
                    StoreError::Other(format!("ticket {number} holds an {err}"))
                };
                Ok(OpenTicket {
                    status: status.parse().map_err(damaged)?,
                    category: category.parse().map_err(damaged)?,
                    number,
                    finish_due,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let customer = customers.into_iter().next().map(|c| CallerCustomer {
            id: c.id,
            name: c.name,
            area: c.area,
            special_group: c.special_group,
        });
        Ok(CallerFacts {
            customer,
            open_tickets,
        })
    }
}
