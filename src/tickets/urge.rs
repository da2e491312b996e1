//! Urges 催办 (hotline-rules §4, 000 §15.4): a caller chasing an open ticket. Before the
//! half-way point of its running deadline the caller gets an explanation; at or past it an
//! urge ticket linked to the original is dispatched within 10 minutes; at most 2 urges per
//! event, then the supervisor. Added information from the caller goes in as an urge ticket,
//! never as a new ticket.
//!
//! Half-way is measured on the wall clock: `start + (due − start) / 2` of the deadline the
//! ticket is running against (dispatch while not yet dispatched, finish while at the unit).
//! Strictly before it → explanation; at it or later → urge ticket.
//!
//! Pure; must not read the clock or touch the database.

use crate::tickets::config::Rules;
use crate::tickets::deadlines::{self, Deadline, limits_for};
use crate::tickets::lifecycle::{
    Actor, AuditAction, FollowUp, Operation, Refusal, TicketFacts, Transition, illegal,
    require_centre_or_own_channel,
};
use crate::tickets::model::{Category, Status};
use chrono::{DateTime, Utc};

/// Why the caller is urging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrgeKind {
    /// Chasing progress.
    Chase,
    /// Adding information to the demand: always an urge ticket, not counted as a chase.
    AddedInformation,
    /// The agent judges the caller strongly dissatisfied or the matter at risk of escalating
    /// (000 §15.4.3): an urge ticket even before half-way.
    EscalationRisk,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrgeRequest {
    pub kind: UrgeKind,
    /// What the caller said (added information, or the chase itself).
    pub note: String,
}

/// What the rules make of an urge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrgeAssessment {
    /// Tell the caller where the ticket stands; nothing is dispatched.
    Explain { message: String },
    /// Dispatch an urge ticket linked to the original by `dispatch_due`.
    Dispatch { dispatch_due: DateTime<Utc> },
    /// The event has had its urges: the supervisor takes over.
    Supervisor,
}

/// The wall-clock half-way point of a deadline.
pub fn halfway(deadline: &Deadline) -> DateTime<Utc> {
    deadline.start + (deadline.due - deadline.start) / 2
}

/// Decides what an urge on this ticket leads to at `now`.
pub fn assess(
    facts: &TicketFacts,
    kind: UrgeKind,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<UrgeAssessment, Refusal> {
    if facts.status == Status::Closed {
        return Err(illegal(Operation::Urge, facts.status));
    }
    let dispatch_due = limits_for(
        &rules.config,
        Category::Urge,
        None,
        facts.channel,
        &facts.area,
    )
    .dispatch
    .map_or(now, |span| span.after(now, &rules.calendar));
    let dispatch = UrgeAssessment::Dispatch { dispatch_due };
    if kind == UrgeKind::AddedInformation {
        return Ok(dispatch);
    }
    if facts.urges >= rules.config.max_urges {
        return Ok(UrgeAssessment::Supervisor);
    }
    if kind == UrgeKind::EscalationRisk {
        return Ok(dispatch);
    }
    let deadlines = deadlines::compute(facts, rules);
    let running = match facts.status {
        Status::Draft | Status::Returned => deadlines.dispatch,
        Status::Replied | Status::Callback => {
            return Ok(UrgeAssessment::Explain {
                message: "您反映的问题责任单位已处理回复，我们将尽快与您回访确认，请保持电话畅通。"
                    .into(),
            });
        }
        Status::Adjudication => {
            return Ok(UrgeAssessment::Explain {
                message: "您的工单正在由热线中心复核研判，我们会尽快给您答复，请耐心等待。".into(),
            });
        }
        _ => deadlines.finish,
    };
    // With no promised time there is nothing to explain against: chase the unit.
    let Some(running) = running else {
        return Ok(dispatch);
    };
    if now < halfway(&running) {
        let due = rules.calendar.local(running.due).format("%-m月%-d日%H:%M");
        return Ok(UrgeAssessment::Explain {
            message: format!("您的工单正在办理中，承诺办结时间为{due}，请您耐心等待。"),
        });
    }
    Ok(dispatch)
}

/// UrgeTicket: records the urge on the original ticket (its state does not change) and
/// returns what to do: explain, dispatch a linked urge ticket, or queue for the supervisor.
pub fn urge(
    facts: &TicketFacts,
    actor: &Actor,
    request: &UrgeRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    require_centre_or_own_channel(Operation::Urge, actor, facts)?;
    let assessment = assess(facts, request.kind, now, rules)?;
    let mut new = facts.clone();
    let (action, follow_up) = match assessment {
        UrgeAssessment::Explain { message } => (
            AuditAction::UrgeExplained,
            FollowUp::ExplainToCaller { message },
        ),
        UrgeAssessment::Supervisor => (
            AuditAction::UrgeToSupervisor,
            FollowUp::SupervisorQueue {
                reason: format!("urged again after {} urges", facts.urges),
            },
        ),
        UrgeAssessment::Dispatch { dispatch_due } => {
            let action = if request.kind == UrgeKind::AddedInformation {
                AuditAction::InformationAdded
            } else {
                new.urges += 1;
                AuditAction::UrgeDispatched
            };
            let follow_up = FollowUp::DispatchUrgeTicket {
                original: facts.id,
                unit: facts.unit.clone(),
                dispatch_due,
                note: request.note.trim().to_owned(),
            };
            (action, follow_up)
        }
    };
    Ok(Transition::new(facts, new, actor, action, now, rules)
        .because(&request.note)
        .with(follow_up))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::calendar::tests::sh;
    use crate::tickets::config::tests::rules_2026;
    use crate::tickets::lifecycle::tests::{agent, dispatched, replied, unit};
    use crate::tickets::model::Channel;
    use uuid::Uuid;

    fn chase(facts: &TicketFacts, now: DateTime<Utc>) -> Result<Transition, Refusal> {
        let request = UrgeRequest {
            kind: UrgeKind::Chase,
            note: "still no heating".into(),
        };
        urge(facts, &agent(), &request, now, &rules_2026())
    }

    #[test]
    fn the_half_way_edge() {
        // Repair dispatched Friday 16:00, due Wednesday 16:00: 120 h, half-way Monday 04:00.
        let facts = dispatched(Category::Repair, sh(2026, 11, 20, 16, 0));
        let before = chase(&facts, sh(2026, 11, 23, 3, 59)).unwrap();
        assert_eq!(before.events[0].action, AuditAction::UrgeExplained);
        assert_eq!(before.facts.urges, 0);
        assert_eq!(
            before.follow_ups,
            vec![FollowUp::ExplainToCaller {
                message: "您的工单正在办理中，承诺办结时间为11月25日16:00，请您耐心等待。".into()
            }]
        );
        for now in [sh(2026, 11, 23, 4, 0), sh(2026, 11, 26, 9, 0)] {
            let at = chase(&facts, now).unwrap();
            assert_eq!(at.events[0].action, AuditAction::UrgeDispatched, "{now}");
            assert_eq!(at.facts.urges, 1);
            assert_eq!(at.facts.status, Status::Dispatched);
            assert_eq!(
                at.follow_ups,
                vec![FollowUp::DispatchUrgeTicket {
                    original: facts.id,
                    unit: Some("north".into()),
                    dispatch_due: now + chrono::Duration::minutes(10),
                    note: "still no heating".into(),
                }]
            );
        }
    }

    #[test]
    fn a_draft_runs_against_its_dispatch_deadline() {
        // Consultation: dispatch within 20 minutes, half-way at 10 minutes.
        let t0 = sh(2026, 11, 20, 10, 0);
        let draft =
            TicketFacts::new_draft(Uuid::nil(), Category::Consultation, Channel::Hotline, t0);
        let explained = chase(&draft, sh(2026, 11, 20, 10, 9)).unwrap();
        assert_eq!(explained.events[0].action, AuditAction::UrgeExplained);
        let urged = chase(&draft, sh(2026, 11, 20, 10, 10)).unwrap();
        assert_eq!(urged.events[0].action, AuditAction::UrgeDispatched);
    }

    #[test]
    fn two_urges_then_the_supervisor() {
        let facts = dispatched(Category::Repair, sh(2026, 11, 20, 16, 0));
        let now = sh(2026, 11, 24, 9, 0);
        let first = chase(&facts, now).unwrap();
        let second = chase(&first.facts, now).unwrap();
        assert_eq!(second.facts.urges, 2);
        let third = chase(&second.facts, now).unwrap();
        assert_eq!(third.events[0].action, AuditAction::UrgeToSupervisor);
        assert_eq!(third.facts.urges, 2);
        assert!(matches!(
            third.follow_ups.as_slice(),
            [FollowUp::SupervisorQueue { .. }]
        ));
        // Added information still goes to the unit as an urge ticket, uncounted.
        let info = UrgeRequest {
            kind: UrgeKind::AddedInformation,
            note: "the leak is at the kitchen valve".into(),
        };
        let added = urge(&second.facts, &agent(), &info, now, &rules_2026()).unwrap();
        assert_eq!(added.events[0].action, AuditAction::InformationAdded);
        assert_eq!(added.facts.urges, 2);
        assert!(matches!(
            added.follow_ups.as_slice(),
            [FollowUp::DispatchUrgeTicket { .. }]
        ));
    }

    #[test]
    fn escalation_risk_replied_and_closed_tickets() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let facts = dispatched(Category::Repair, t0);
        let risk = UrgeRequest {
            kind: UrgeKind::EscalationRisk,
            note: "threatens to call the media".into(),
        };
        let early = urge(&facts, &agent(), &risk, sh(2026, 11, 20, 17, 0), &rules).unwrap();
        assert_eq!(early.events[0].action, AuditAction::UrgeDispatched);

        let answered = replied(&facts, sh(2026, 11, 23, 10, 0));
        let explained = chase(&answered, sh(2026, 11, 23, 12, 0)).unwrap();
        assert!(matches!(
            explained.follow_ups.as_slice(),
            [FollowUp::ExplainToCaller { .. }]
        ));
        let closed = TicketFacts {
            status: Status::Closed,
            ..answered
        };
        assert_eq!(
            chase(&closed, t0),
            Err(illegal(Operation::Urge, Status::Closed))
        );
        assert!(matches!(
            urge(&facts, &unit(), &risk, t0, &rules),
            Err(Refusal::WrongActor { .. })
        ));
    }
}
