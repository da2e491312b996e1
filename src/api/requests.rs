//! Reading requests: the checks of the fields the services share (ticket names, phone
//! numbers, texts, priorities, unit codes, idempotency keys, paging) and the conversion of a
//! create request into the store's `NewTicket`. Each refusal is `INVALID_ARGUMENT` naming the
//! field.

use super::auth::Caller;
use super::intake;
use super::pb;
use super::tickets::{
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, NAME_PREFIX, category_from, channel_from, check_channel,
    invalid, level_from, refuse_unit,
};
use crate::store::{IntakeFacts, NewTicket, PageCursor};
use crate::tickets::{Rules, Status as TicketStatus};
use chrono::{DateTime, Utc};
use tonic::Status;

/// `tickets/GD20261122-000123` → `GD20261122-000123`.
pub(super) fn ticket_number<'a>(name: &'a str, field: &str) -> Result<&'a str, Status> {
    if name.is_empty() {
        return Err(invalid(field, "required"));
    }
    let number = name.strip_prefix(NAME_PREFIX).unwrap_or("");
    let bytes = number.as_bytes();
    let well_formed = bytes.len() == 17
        && number.starts_with("GD")
        && bytes[10] == b'-'
        && bytes[2..10].iter().all(u8::is_ascii_digit)
        && bytes[11..].iter().all(u8::is_ascii_digit);
    if !well_formed {
        return Err(invalid(field, "must look like tickets/GD20261122-000123"));
    }
    Ok(number)
}

pub(super) fn phone_number(value: &str, field: &str) -> Result<(), Status> {
    phone_problem(value).map_or(Ok(()), |reason| Err(invalid(field, reason)))
}

/// Why `value` is not a phone number as the API takes them, if it is not.
pub(super) fn phone_problem(value: &str) -> Option<&'static str> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        None
    } else {
        Some("must be 3 to 20 digits, optionally starting with +")
    }
}

pub(super) fn text(
    value: &str,
    field: &str,
    max_chars: usize,
    required: bool,
) -> Result<(), Status> {
    text_problem(value, max_chars, required).map_or(Ok(()), |reason| Err(invalid(field, reason)))
}

/// Why `value` is not a text field of at most `max_chars` characters (not blank when
/// `required`), if it is not.
pub(super) fn text_problem(value: &str, max_chars: usize, required: bool) -> Option<String> {
    if required && value.trim().is_empty() {
        return Some("required".into());
    }
    if value.chars().count() > max_chars {
        return Some(format!("at most {max_chars} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Some("must not contain control characters".into());
    }
    None
}

pub(super) fn priority(value: i32, field: &str) -> Result<(), Status> {
    if (0..=9).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be between 0 (normal) and 9 (most urgent)",
        ))
    }
}

pub(super) fn customer_id(value: Option<i64>, field: &str) -> Result<Option<i64>, Status> {
    match value {
        Some(id) if id <= 0 => Err(invalid(field, "must be a positive customer id")),
        other => Ok(other),
    }
}

pub(super) fn unit_code(value: &str, field: &str) -> Result<Option<String>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    if crate::config::is_unit_code(value) {
        Ok(Some(value.to_owned()))
    } else {
        Err(invalid(
            field,
            "must be a unit code: up to 40 lowercase letters, digits and _",
        ))
    }
}

pub(super) fn request_id(value: &str) -> Result<Option<String>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() <= 100
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        Ok(Some(value.to_owned()))
    } else {
        Err(invalid(
            "request_id",
            "must be up to 100 letters, digits, -, _, . or :",
        ))
    }
}

/// The ticket to create at `now`, its deadlines computed by the rules.
pub(super) fn new_ticket(
    caller: &Caller,
    request: pb::CreateTicketRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<(NewTicket, IntakeFacts), Status> {
    refuse_unit(caller, "create tickets")?;
    let request_id = request_id(&request.request_id)?;
    let t = request
        .ticket
        .ok_or_else(|| invalid("ticket", "required"))?;
    let channel = match (caller, channel_from(t.channel, "ticket.channel")?) {
        // An integration's tickets come from its own channel; it need not say so.
        (Caller::Integration { channel, .. }, None) => *channel,
        (_, None) => return Err(invalid("ticket.channel", "required")),
        (_, Some(channel)) => channel,
    };
    check_channel(caller, channel)?;
    let category = category_from(t.category, "ticket.category")?
        .ok_or_else(|| invalid("ticket.category", "required"))?;
    let complaint_level = level_from(t.complaint_level, "ticket.complaint_level")?;
    priority(t.priority, "ticket.priority")?;
    text(&t.caller_name, "ticket.caller_name", 100, false)?;
    phone_number(&t.caller_number, "ticket.caller_number")?;
    text(&t.caller_address, "ticket.caller_address", 500, false)?;
    text(&t.description, "ticket.description", 4000, true)?;
    text(&t.area, "ticket.area", 100, false)?;
    let parent_number = match t.parent_ticket.as_str() {
        "" => None,
        name => Some(ticket_number(name, "ticket.parent_ticket")?.to_owned()),
    };
    let call_id = match t.call_id.as_str() {
        "" => None,
        id => {
            text(id, "ticket.call_id", 200, true)?;
            Some(id.to_owned())
        }
    };
    let intake = intake::intake(&t, category, now)?;
    let new = NewTicket {
        request_id,
        channel,
        category,
        complaint_level,
        status: TicketStatus::Draft,
        priority: t.priority,
        customer_id: customer_id(t.customer_id, "ticket.customer_id")?,
        responsible_unit: unit_code(&t.responsible_unit, "ticket.responsible_unit")?,
        caller_name: t.caller_name,
        caller_number: t.caller_number,
        caller_address: t.caller_address,
        description: t.description,
        dispatch_due: None,
        contact_due: None,
        finish_due: None,
        callback_due: None,
        investigation_due: None,
        area: t.area,
        parent_number,
        call_id,
        created_by: caller.actor(),
        created_at: now,
    }
    .due_by_rules(rules);
    Ok((new, intake))
}

/// A list request's page size: default 50, at most 500.
pub(super) fn page_size_of(page_size: i32) -> Result<u32, Status> {
    Ok(match page_size {
        n if n < 0 => return Err(invalid("page_size", "must not be negative")),
        0 => DEFAULT_PAGE_SIZE,
        n => u32::try_from(n).map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE)),
    })
}

/// Page size (default 50, at most 500) and where to continue, from a list request.
pub(super) fn paging(
    page_size: i32,
    page_token: &str,
) -> Result<(u32, Option<PageCursor>), Status> {
    let page_size = page_size_of(page_size)?;
    let after = match page_token {
        "" => None,
        token => {
            Some(PageCursor::from_token(token).ok_or_else(|| invalid("page_token", "malformed"))?)
        }
    };
    Ok((page_size, after))
}
