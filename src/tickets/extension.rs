//! Extensions (hotline-rules §4, 001 §30): a unit asks for more time before the finish
//! deadline, within the notice its category allows, and the centre grants (moving the
//! deadline) or refuses. Pure functions like the rest of the life cycle.

use super::lifecycle::{
    Actor, AuditAction, Operation, PendingExtension, Refusal, TicketFacts, Transition, illegal,
    require_assigned_unit, require_centre, required_text,
};
use crate::tickets::config::Rules;
use crate::tickets::deadlines;
use crate::tickets::model::Status;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionRequest {
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// RequestExtension: the unit asks for more time, at least the configured notice before the
/// finish deadline (000 §15.2 sets none, 001 §30 one calendar day; the default is half the
/// span, per category configurable), for a later time than it has.
pub fn request_extension(
    facts: &TicketFacts,
    actor: &Actor,
    request: &ExtensionRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::RequestExtension;
    require_assigned_unit(op, actor, facts)?;
    if !matches!(
        facts.status,
        Status::Dispatched | Status::Accepted | Status::Reopened
    ) {
        return Err(illegal(op, facts.status));
    }
    let Some(finish) = deadlines::compute(facts, rules).finish else {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!(
                "a {} ticket has no finish deadline to extend",
                facts.category
            ),
        });
    };
    let notice = deadlines::limits_for(
        &rules.config,
        facts.category,
        facts.complaint_level,
        facts.channel,
        &facts.area,
    )
    .extension_notice
    .unwrap_or(rules.config.extension_notice);
    let latest = notice.latest(finish.start, finish.due, &rules.calendar);
    if now > latest {
        return Err(Refusal::TooLate {
            operation: op,
            limit: latest,
            why: format!(
                "an extension must be asked at least {notice} before the deadline {}",
                finish.due
            ),
        });
    }
    if request.until <= finish.due {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!(
                "the requested time {} is not after the current deadline {}",
                request.until, finish.due
            ),
        });
    }
    required_text(op, "a reason for the extension", &request.reason)?;
    let mut new = facts.clone();
    new.status = Status::ExtensionRequested;
    new.accepted_at.get_or_insert(now);
    new.pending_extension = Some(PendingExtension {
        requested_at: now,
        until: request.until,
        reason: request.reason.clone(),
        resume: match facts.status {
            Status::Reopened => Status::Reopened,
            _ => Status::Accepted,
        },
    });
    let detail = format!("until {}", request.until);
    Ok(Transition::new(
        facts,
        new,
        actor,
        AuditAction::ExtensionRequested,
        now,
        rules,
    )
    .because(&request.reason)
    .detail(detail))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionDecision {
    pub grant: bool,
    /// A different new deadline than asked for; `None` grants what was asked.
    pub until: Option<DateTime<Utc>>,
    pub reason: String,
}

/// DecideExtension: the centre grants (moving the finish deadline) or denies.
pub fn decide_extension(
    facts: &TicketFacts,
    actor: &Actor,
    decision: &ExtensionDecision,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::DecideExtension;
    require_centre(op, actor)?;
    let (Status::ExtensionRequested, Some(pending)) = (facts.status, &facts.pending_extension)
    else {
        return Err(illegal(op, facts.status));
    };
    let mut new = facts.clone();
    new.status = pending.resume;
    new.pending_extension = None;
    if !decision.grant {
        required_text(op, "a reason for the denial", &decision.reason)?;
        return Ok(
            Transition::new(facts, new, actor, AuditAction::ExtensionDenied, now, rules)
                .because(&decision.reason),
        );
    }
    let until = decision.until.unwrap_or(pending.until);
    let current = deadlines::compute(facts, rules).finish.map(|d| d.due);
    if until <= now || current.is_some_and(|due| until <= due) {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!(
                "the new deadline {until} must lie in the future and after the current one"
            ),
        });
    }
    new.extended_finish = Some(until);
    Ok(
        Transition::new(facts, new, actor, AuditAction::ExtensionGranted, now, rules)
            .because(&decision.reason)
            .detail(format!("until {until}")),
    )
}
