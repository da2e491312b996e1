//! Complaint levels (hotline-rules §3, 000 §14.6): L3 light by default; L2 general when 5 or
//! more different callers make the same complaint within the window (30 days) or 5 or more
//! people complain collectively; L1 major on a lawsuit, media exposure, or the same caller
//! complaining about the same event 5 or more times. A supervisor may override with a
//! reason. A level change recomputes the deadlines.
//!
//! Pure: the store counts related complaints and passes `RelatedComplaints` in.

use crate::tickets::config::{ComplaintConfig, Rules};
use crate::tickets::lifecycle::{
    Actor, AuditAction, Operation, Refusal, TicketFacts, Transition, illegal, require_admin,
    required_text,
};
use crate::tickets::model::{Category, ComplaintLevel, Status};
use chrono::{DateTime, Utc};

/// What the store knows about complaints related to this one. Counts include this
/// complaint and cover the configured window (`complaint.window_days`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelatedComplaints {
    /// Different callers with the same subject (same unit, category and area, or linked).
    pub distinct_callers_same_subject: u32,
    /// People behind a collective complaint (0 or 1 when individual).
    pub collective_size: u32,
    /// Complaints by this caller about this same event.
    pub same_caller_same_event: u32,
    pub lawsuit: bool,
    /// Exposed, or likely to be exposed, by media, press or websites.
    pub media_exposure: bool,
}

/// Why a level was chosen, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelBasis {
    Default,
    SameSubjectCallers(u32),
    Collective(u32),
    Lawsuit,
    MediaExposure,
    SameCallerRepeats(u32),
}

impl LevelBasis {
    pub fn describe(self) -> String {
        match self {
            LevelBasis::Default => "no aggravating facts".into(),
            LevelBasis::SameSubjectCallers(n) => format!("{n} different callers, same complaint"),
            LevelBasis::Collective(n) => format!("collective complaint by {n}"),
            LevelBasis::Lawsuit => "led to a lawsuit".into(),
            LevelBasis::MediaExposure => "media exposure".into(),
            LevelBasis::SameCallerRepeats(n) => format!("same caller, same event, {n} times"),
        }
    }
}

/// The level the facts call for, and why.
pub fn automatic_level(
    related: &RelatedComplaints,
    config: &ComplaintConfig,
) -> (ComplaintLevel, LevelBasis) {
    if related.lawsuit {
        return (ComplaintLevel::L1, LevelBasis::Lawsuit);
    }
    if related.media_exposure {
        return (ComplaintLevel::L1, LevelBasis::MediaExposure);
    }
    if related.same_caller_same_event >= config.same_caller_repeats {
        let n = related.same_caller_same_event;
        return (ComplaintLevel::L1, LevelBasis::SameCallerRepeats(n));
    }
    if related.distinct_callers_same_subject >= config.same_subject_callers {
        let n = related.distinct_callers_same_subject;
        return (ComplaintLevel::L2, LevelBasis::SameSubjectCallers(n));
    }
    if related.collective_size >= config.collective_size {
        return (
            ComplaintLevel::L2,
            LevelBasis::Collective(related.collective_size),
        );
    }
    (ComplaintLevel::L3, LevelBasis::Default)
}

fn require_open_complaint(facts: &TicketFacts) -> Result<(), Refusal> {
    let op = Operation::SetComplaintLevel;
    if facts.status == Status::Closed {
        return Err(illegal(op, facts.status));
    }
    if facts.category != Category::Complaint {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!("a {} ticket has no complaint level", facts.category),
        });
    }
    Ok(())
}

fn with_level(
    facts: &TicketFacts,
    level: ComplaintLevel,
    overridden: bool,
    actor: &Actor,
    reason: &str,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Transition {
    let mut new = facts.clone();
    new.complaint_level = Some(level);
    new.complaint_level_overridden = overridden;
    let old = facts.complaint_level.unwrap_or(ComplaintLevel::L3);
    let detail = format!("{old} → {level}");
    Transition::new(
        facts,
        new,
        actor,
        AuditAction::ComplaintLevelChanged,
        now,
        rules,
    )
    .because(reason)
    .detail(detail)
}

/// Raises an open complaint's level when the related complaints call for it (as the system
/// actor). Never lowers a level and leaves a supervisor's override alone: `None` when
/// nothing changes.
pub fn apply_automatic_level(
    facts: &TicketFacts,
    related: &RelatedComplaints,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Option<Transition>, Refusal> {
    require_open_complaint(facts)?;
    if facts.complaint_level_overridden || facts.complaint_valid == Some(false) {
        return Ok(None);
    }
    let current = facts.complaint_level.unwrap_or(ComplaintLevel::L3);
    let (level, basis) = automatic_level(related, &rules.config.complaint);
    // ComplaintLevel orders L3 < L2 < L1: higher is graver.
    if level <= current {
        return Ok(None);
    }
    let reason = basis.describe();
    Ok(Some(with_level(
        facts,
        level,
        false,
        &Actor::System,
        &reason,
        now,
        rules,
    )))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelOverride {
    pub level: ComplaintLevel,
    pub reason: String,
}

/// A supervisor sets the level by hand, with a reason; automatic levelling then stops.
pub fn override_level(
    facts: &TicketFacts,
    actor: &Actor,
    request: &LevelOverride,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::SetComplaintLevel;
    require_admin(op, actor)?;
    require_open_complaint(facts)?;
    required_text(op, "a reason for the level", &request.reason)?;
    Ok(with_level(
        facts,
        request.level,
        true,
        actor,
        &request.reason,
        now,
        rules,
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub valid: bool,
    pub reason: String,
}

/// A supervisor classifies a complaint as valid or invalid after checking it (000 §14.6
/// "判断是否属于有效投诉", 001 §8), with a reason; open or closed, and again if the check
/// changes. Invalid complaints stay out of the unit's complaint counts and are not raised.
pub fn classify(
    facts: &TicketFacts,
    actor: &Actor,
    request: &Classification,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::ClassifyComplaint;
    require_admin(op, actor)?;
    if facts.category != Category::Complaint {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!("a {} ticket is not a complaint", facts.category),
        });
    }
    required_text(op, "a reason for the classification", &request.reason)?;
    let mut new = facts.clone();
    new.complaint_valid = Some(request.valid);
    let detail = if request.valid { "valid" } else { "invalid" };
    Ok(Transition::new(
        facts,
        new,
        actor,
        AuditAction::ComplaintClassified,
        now,
        rules,
    )
    .because(&request.reason)
    .detail(detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::calendar::tests::sh;
    use crate::tickets::config::tests::rules_2026;
    use crate::tickets::lifecycle::tests::{admin, agent, dispatched};

    #[test]
    fn automatic_levels_at_their_thresholds() {
        let config = ComplaintConfig::default();
        let related = |callers, collective, same_caller| RelatedComplaints {
            distinct_callers_same_subject: callers,
            collective_size: collective,
            same_caller_same_event: same_caller,
            ..RelatedComplaints::default()
        };
        let cases = [
            (related(1, 0, 1), ComplaintLevel::L3),
            (related(4, 0, 1), ComplaintLevel::L3),
            (related(5, 0, 1), ComplaintLevel::L2),
            (related(1, 4, 1), ComplaintLevel::L3),
            (related(1, 5, 1), ComplaintLevel::L2),
            (related(1, 0, 4), ComplaintLevel::L3),
            (related(1, 0, 5), ComplaintLevel::L1),
            (related(9, 9, 5), ComplaintLevel::L1),
            (
                RelatedComplaints {
                    lawsuit: true,
                    ..related(1, 0, 1)
                },
                ComplaintLevel::L1,
            ),
            (
                RelatedComplaints {
                    media_exposure: true,
                    ..related(1, 0, 1)
                },
                ComplaintLevel::L1,
            ),
        ];
        for (facts, level) in cases {
            assert_eq!(automatic_level(&facts, &config).0, level, "{facts:?}");
        }
    }

    #[test]
    fn the_fifth_caller_raises_the_level_and_the_deadline() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 10, 0);
        let facts = dispatched(Category::Complaint, t0);
        assert_eq!(
            crate::tickets::deadlines::compute(&facts, &rules)
                .finish
                .unwrap()
                .due,
            sh(2026, 11, 20, 13, 0)
        );
        let fourth = RelatedComplaints {
            distinct_callers_same_subject: 4,
            same_caller_same_event: 1,
            ..RelatedComplaints::default()
        };
        assert_eq!(apply_automatic_level(&facts, &fourth, t0, &rules), Ok(None));
        let fifth = RelatedComplaints {
            distinct_callers_same_subject: 5,
            ..fourth
        };
        let raised = apply_automatic_level(&facts, &fifth, t0, &rules)
            .unwrap()
            .unwrap();
        assert_eq!(raised.facts.complaint_level, Some(ComplaintLevel::L2));
        assert_eq!(
            raised.deadlines.finish.unwrap().due,
            sh(2026, 11, 21, 10, 0)
        );
        let event = &raised.events[0];
        assert_eq!(event.actor, Actor::System);
        assert_eq!(event.detail.as_deref(), Some("l3 → l2"));
        assert_eq!(
            event.reason.as_deref(),
            Some("5 different callers, same complaint")
        );
        // Fewer related complaints later never lower it.
        assert_eq!(
            apply_automatic_level(&raised.facts, &fourth, t0, &rules),
            Ok(None)
        );
    }

    #[test]
    fn supervisors_classify_complaints_with_a_reason() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 10, 0);
        let facts = dispatched(Category::Complaint, t0);
        let invalid = Classification {
            valid: false,
            reason: "核实为客户误解计费规则".into(),
        };
        assert!(matches!(
            classify(&facts, &agent(), &invalid, t0, &rules),
            Err(Refusal::WrongActor { .. })
        ));
        let blank = Classification {
            valid: false,
            reason: "  ".into(),
        };
        assert!(matches!(
            classify(&facts, &admin(), &blank, t0, &rules),
            Err(Refusal::Invalid { .. })
        ));
        let repair = dispatched(Category::Repair, t0);
        assert!(matches!(
            classify(&repair, &admin(), &invalid, t0, &rules),
            Err(Refusal::Invalid { .. })
        ));
        let checked = classify(&facts, &admin(), &invalid, t0, &rules).unwrap();
        assert_eq!(checked.facts.complaint_valid, Some(false));
        assert_eq!(checked.facts.status, facts.status);
        assert_eq!(checked.events[0].detail.as_deref(), Some("invalid"));
        // An invalid complaint is not raised, whatever the related complaints.
        let media = RelatedComplaints {
            media_exposure: true,
            ..RelatedComplaints::default()
        };
        assert_eq!(
            apply_automatic_level(&checked.facts, &media, t0, &rules),
            Ok(None)
        );
        // Closed complaints may be classified too.
        let mut closed = facts.clone();
        closed.status = Status::Closed;
        let valid = Classification {
            valid: true,
            reason: "属实".into(),
        };
        assert_eq!(
            classify(&closed, &admin(), &valid, t0, &rules)
                .unwrap()
                .facts
                .complaint_valid,
            Some(true)
        );
    }

    #[test]
    fn supervisors_override_with_a_reason_and_it_sticks() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 10, 0);
        let facts = dispatched(Category::Complaint, t0);
        let request = LevelOverride {
            level: ComplaintLevel::L1,
            reason: "the district government asked".into(),
        };
        assert!(matches!(
            override_level(&facts, &agent(), &request, t0, &rules),
            Err(Refusal::WrongActor { .. })
        ));
        let blank = LevelOverride {
            level: ComplaintLevel::L1,
            reason: " ".into(),
        };
        assert!(matches!(
            override_level(&facts, &admin(), &blank, t0, &rules),
            Err(Refusal::Invalid { .. })
        ));
        let set = override_level(&facts, &admin(), &request, t0, &rules).unwrap();
        assert_eq!(set.deadlines.finish.unwrap().due, sh(2026, 11, 22, 10, 0));
        assert_eq!(set.events[0].actor, admin());
        let lower = LevelOverride {
            level: ComplaintLevel::L3,
            reason: "checked: a single light case".into(),
        };
        let lowered = override_level(&set.facts, &admin(), &lower, t0, &rules).unwrap();
        let media = RelatedComplaints {
            media_exposure: true,
            ..RelatedComplaints::default()
        };
        assert_eq!(
            apply_automatic_level(&lowered.facts, &media, t0, &rules),
            Ok(None)
        );
        let repair = dispatched(Category::Repair, t0);
        assert!(matches!(
            override_level(&repair, &admin(), &request, t0, &rules),
            Err(Refusal::Invalid { .. })
        ));
    }
}
