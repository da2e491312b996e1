//! The intake facts of a ticket on the wire (`Ticket.referred` … `Ticket.attachments`):
//! checked on create and in an update mask, mapped to the store's `IntakeFacts` and
//! `TicketPatch`, and back.

use super::pb;
use super::tickets::{from_timestamp, invalid, timestamp};
use crate::store::{Attachment, IntakeFacts, Ticket, TicketPatch};
use crate::tickets::Category;
use chrono::{DateTime, Utc};
use tonic::Status;

const MAX_URI: usize = 2000;
const MAX_ATTACHMENTS: usize = 50;

/// An agreed time: in the future when set.
fn agreed_time(
    at: Option<prost_types::Timestamp>,
    field: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Status> {
    let at = from_timestamp(at, field)?;
    if at.is_some_and(|at| at <= now) {
        return Err(invalid(
            field,
            "must lie in the future: the time agreed with the caller",
        ));
    }
    Ok(at)
}

/// A visit is agreed for repairs and service applications (000 §14.4–5).
fn visit_time(
    at: Option<prost_types::Timestamp>,
    field: &str,
    category: Category,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Status> {
    let at = agreed_time(at, field, now)?;
    if at.is_some() && !matches!(category, Category::Repair | Category::ServiceApplication) {
        return Err(invalid(
            field,
            format!("only repairs and service applications have a visit; this is a {category}"),
        ));
    }
    Ok(at)
}

fn attachments(items: &[pb::Attachment], field: &str) -> Result<Vec<Attachment>, Status> {
    if items.len() > MAX_ATTACHMENTS {
        return Err(invalid(field, format!("at most {MAX_ATTACHMENTS} at once")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |what: &str| format!("{field}[{i}].{what}");
            let well_formed = item.uri.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !rest.is_empty()
            });
            if !well_formed || item.uri.len() > MAX_URI || item.uri.chars().any(char::is_whitespace)
            {
                return Err(invalid(
                    &at("uri"),
                    format!(
                        "write where the file is as scheme://… (https, s3, …), without spaces, up to {MAX_URI} characters"
                    ),
                ));
            }
            let kind = match pb::AttachmentKind::try_from(item.kind) {
                Ok(pb::AttachmentKind::Photo) => "photo",
                Ok(pb::AttachmentKind::Document) => "document",
                Ok(pb::AttachmentKind::Audio) => "audio",
                Ok(pb::AttachmentKind::Video) => "video",
                _ => return Err(invalid(&at("kind"), "required: photo, document, audio or video")),
            };
            Ok(Attachment {
                uri: item.uri.clone(),
                kind: kind.to_owned(),
            })
        })
        .collect()
}

/// The intake facts of a ticket being created.
pub(super) fn intake(
    t: &pb::Ticket,
    category: Category,
    now: DateTime<Utc>,
) -> Result<IntakeFacts, Status> {
    Ok(IntakeFacts {
        referred: t.referred,
        daily_report_key_item: t.daily_report_key_item,
        callback_declined: t.callback_declined,
        repeat_demand: t.repeat_call,
        night_dispatch_insisted: t.caller_insists_night_dispatch,
        agreed_callback_at: agreed_time(
            t.agreed_callback_time,
            "ticket.agreed_callback_time",
            now,
        )?,
        agreed_visit_at: visit_time(
            t.agreed_visit_time,
            "ticket.agreed_visit_time",
            category,
            now,
        )?,
        attachments: attachments(&t.attachments, "ticket.attachments")?,
    })
}

/// Puts the intake field `path` of an update mask into `patch`; false when `path` is not an
/// intake field. `category` is the ticket's category after the update.
pub(super) fn patch_field(
    patch: &mut TicketPatch,
    path: &str,
    t: &pb::Ticket,
    category: Category,
    now: DateTime<Utc>,
) -> Result<bool, Status> {
    let field = format!("ticket.{path}");
    match path {
        "referred" => patch.referred = Some(t.referred),
        "daily_report_key_item" => patch.daily_report_key_item = Some(t.daily_report_key_item),
        "callback_declined" => patch.callback_declined = Some(t.callback_declined),
        "repeat_call" => patch.repeat_demand = Some(t.repeat_call),
        "caller_insists_night_dispatch" => {
            patch.night_dispatch_insisted = Some(t.caller_insists_night_dispatch);
        }
        "agreed_callback_time" => {
            patch.agreed_callback_at = Some(agreed_time(t.agreed_callback_time, &field, now)?);
        }
        "agreed_visit_time" => {
            patch.agreed_visit_at = Some(visit_time(t.agreed_visit_time, &field, category, now)?);
        }
        "attachments" => patch.attachments = attachments(&t.attachments, &field)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Writes the intake facts of `t` into the wire ticket.
pub(super) fn to_proto(t: &Ticket, out: &mut pb::Ticket) {
    out.referred = t.referred;
    out.daily_report_key_item = t.daily_report_key_item;
    out.callback_declined = t.callback_declined;
    out.repeat_call = t.repeat_demand;
    out.caller_insists_night_dispatch = t.night_dispatch_insisted;
    out.agreed_callback_time = t.agreed_callback_at.map(timestamp);
    out.agreed_visit_time = t.agreed_visit_at.map(timestamp);
    out.application_refused = t.application_refused;
    out.complaint_validity = match t.complaint_valid {
        None => pb::ComplaintValidity::Unspecified,
        Some(true) => pb::ComplaintValidity::Valid,
        Some(false) => pb::ComplaintValidity::Invalid,
    } as i32;
    out.attachments = t
        .attachments
        .iter()
        .map(|a| pb::Attachment {
            uri: a.uri.clone(),
            kind: match a.kind.as_str() {
                "photo" => pb::AttachmentKind::Photo,
                "document" => pb::AttachmentKind::Document,
                "audio" => pb::AttachmentKind::Audio,
                "video" => pb::AttachmentKind::Video,
                _ => pb::AttachmentKind::Unspecified,
            } as i32,
        })
        .collect();
}
