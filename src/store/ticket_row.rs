//! The `tickets` row as PostgreSQL returns it, and its checked conversion into a [`Ticket`]:
//! codes the database holds are parsed back into the rules' types, and a row that does not
//! parse is a `StoreError`, never a panic.

use super::StoreError;
use super::tickets::{Attachment, Ticket};
use chrono::{DateTime, Utc};

#[derive(sqlx::FromRow)]
pub(super) struct TicketRow {
    id: i64,
    number: String,
    channel: String,
    category: String,
    complaint_level: Option<String>,
    status: String,
    priority: i32,
    caller_name: String,
    caller_number: String,
    caller_address: String,
    description: String,
    customer_id: Option<i64>,
    responsible_unit: Option<String>,
    dispatch_due: Option<DateTime<Utc>>,
    contact_due: Option<DateTime<Utc>>,
    finish_due: Option<DateTime<Utc>>,
    callback_due: Option<DateTime<Utc>>,
    investigation_due: Option<DateTime<Utc>>,
    on_site_due: Option<DateTime<Utc>>,
    on_site_at: Option<DateTime<Utc>>,
    reply_to_caller_due: Option<DateTime<Utc>>,
    referred: bool,
    daily_report_key_item: bool,
    callback_declined: bool,
    repeat_demand: bool,
    night_dispatch_insisted: bool,
    agreed_callback_at: Option<DateTime<Utc>>,
    agreed_visit_at: Option<DateTime<Utc>>,
    area: String,
    complaint_valid: Option<bool>,
    application_refused: bool,
    attachment_uris: Vec<String>,
    attachment_kinds: Vec<String>,
    next_callback_at: Option<DateTime<Utc>>,
    supervisor_reason: Option<String>,
    satisfaction_attitude: Option<String>,
    satisfaction_result: Option<String>,
    parent_number: Option<String>,
    call_id: Option<String>,
    request_id: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i32,
}

impl TryFrom<TicketRow> for Ticket {
    type Error = StoreError;

    fn try_from(row: TicketRow) -> Result<Ticket, StoreError> {
        let damaged = |err: crate::tickets::model::UnknownCode| {
            StoreError::Other(format!("ticket {} holds an {err}", row.number))
        };
        Ok(Ticket {
            channel: row.channel.parse().map_err(damaged)?,
            category: row.category.parse().map_err(damaged)?,
            complaint_level: row
                .complaint_level
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(damaged)?,
            status: row.status.parse().map_err(damaged)?,
            id: row.id,
            number: row.number,
            priority: row.priority,
            caller_name: row.caller_name,
            caller_number: row.caller_number,
            caller_address: row.caller_address,
            description: row.description,
            customer_id: row.customer_id,
            responsible_unit: row.responsible_unit,
            dispatch_due: row.dispatch_due,
            contact_due: row.contact_due,
            finish_due: row.finish_due,
            callback_due: row.callback_due,
            investigation_due: row.investigation_due,
            on_site_due: row.on_site_due,
            on_site_at: row.on_site_at,
            reply_to_caller_due: row.reply_to_caller_due,
            referred: row.referred,
            daily_report_key_item: row.daily_report_key_item,
            callback_declined: row.callback_declined,
            repeat_demand: row.repeat_demand,
            night_dispatch_insisted: row.night_dispatch_insisted,
            agreed_callback_at: row.agreed_callback_at,
            agreed_visit_at: row.agreed_visit_at,
            attachments: row
                .attachment_uris
                .into_iter()
                .zip(row.attachment_kinds)
                .map(|(uri, kind)| Attachment { uri, kind })
                .collect(),
            complaint_valid: row.complaint_valid,
            application_refused: row.application_refused,
            area: row.area,
            next_callback_at: row.next_callback_at,
            supervisor_reason: row.supervisor_reason,
            satisfaction_attitude: row.satisfaction_attitude,
            satisfaction_result: row.satisfaction_result,
            parent_number: row.parent_number,
            call_id: row.call_id,
            request_id: row.request_id,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}
