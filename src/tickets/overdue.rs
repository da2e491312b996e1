//! Overdue classification: for a ticket at `now`, each deadline that still binds is on
//! time, nearly due or overdue. Used by the background sweeper and `ListOverdue`.
//!
//! Pure; must not read the clock or touch the database.

use crate::tickets::callback::CallbackPlan;
use crate::tickets::config::Rules;
use crate::tickets::deadlines::{Deadline, DeadlineKind, Deadlines};
use crate::tickets::lifecycle::TicketFacts;
use crate::tickets::model::Status;
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timeliness {
    OnTime,
    NearlyDue,
    Overdue,
}

impl Timeliness {
    pub fn code(self) -> &'static str {
        match self {
            Timeliness::OnTime => "on_time",
            Timeliness::NearlyDue => "nearly_due",
            Timeliness::Overdue => "overdue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineState {
    pub deadline: Deadline,
    pub timeliness: Timeliness,
}

/// The deadlines that still bind in the ticket's state: dispatch until dispatched; contact
/// until the customer is contacted; on site until the unit reports it; finish and investigation while the unit handles it; the
/// callback while one is due.
pub fn active_deadlines(facts: &TicketFacts, deadlines: &Deadlines) -> Vec<Deadline> {
    let at_unit = matches!(
        facts.status,
        Status::Dispatched | Status::Accepted | Status::ExtensionRequested | Status::Reopened
    );
    deadlines
        .iter()
        .filter(|d| match d.kind {
            DeadlineKind::Dispatch => matches!(facts.status, Status::Draft | Status::Returned),
            DeadlineKind::Contact => at_unit && facts.contacted_at.is_none(),
            DeadlineKind::Finish | DeadlineKind::Investigation => at_unit,
            DeadlineKind::OnSite => at_unit && facts.on_site_at.is_none(),
            DeadlineKind::ReplyToCaller => {
                matches!(facts.status, Status::Replied | Status::Callback)
            }
            DeadlineKind::Callback => {
                matches!(facts.status, Status::Replied | Status::Callback)
                    && matches!(
                        facts.callback_plan,
                        Some(CallbackPlan::Automatic | CallbackPlan::Human)
                    )
            }
        })
        .collect()
}

/// Overdue strictly after the due instant; nearly due within `nearly_due.minutes_before`
/// of it when configured, otherwise once at most `fraction_remaining` of the span is left.
pub fn timeliness(deadline: &Deadline, now: DateTime<Utc>, rules: &Rules) -> Timeliness {
    if now > deadline.due {
        return Timeliness::Overdue;
    }
    let remaining = deadline.due - now;
    let config = rules.config.nearly_due;
    let threshold = match config.minutes_before {
        Some(minutes) => Duration::minutes(minutes.into()),
        None => {
            let span_ms = (deadline.due - deadline.start).num_milliseconds() as f64;
            Duration::milliseconds((span_ms * config.fraction_remaining) as i64)
        }
    };
    if remaining <= threshold {
        Timeliness::NearlyDue
    } else {
        Timeliness::OnTime
    }
}

/// Every binding deadline of the ticket with its timeliness at `now`.
pub fn classify(
    facts: &TicketFacts,
    deadlines: &Deadlines,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Vec<DeadlineState> {
    active_deadlines(facts, deadlines)
        .into_iter()
        .map(|deadline| DeadlineState {
            deadline,
            timeliness: timeliness(&deadline, now, rules),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::calendar::tests::sh;
    use crate::tickets::config::Rules;
    use crate::tickets::config::tests::rules_2026;
    use crate::tickets::deadlines::compute;
    use crate::tickets::lifecycle::tests::{dispatched, replied};
    use crate::tickets::model::{Category, Channel};
    use uuid::Uuid;

    fn kinds(states: &[DeadlineState]) -> Vec<(DeadlineKind, Timeliness)> {
        states
            .iter()
            .map(|s| (s.deadline.kind, s.timeliness))
            .collect()
    }

    #[test]
    fn each_state_binds_its_own_deadlines() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let draft = TicketFacts::new_draft(Uuid::nil(), Category::Repair, Channel::Hotline, t0);
        let at = |facts: &TicketFacts, now| classify(facts, &compute(facts, &rules), now, &rules);
        use DeadlineKind::*;
        use Timeliness::*;
        // Dispatch within 5 minutes: nearly due in the last minute, overdue after.
        assert_eq!(
            kinds(&at(&draft, sh(2026, 11, 20, 16, 3))),
            vec![(Dispatch, OnTime)]
        );
        assert_eq!(
            kinds(&at(&draft, sh(2026, 11, 20, 16, 4))),
            vec![(Dispatch, NearlyDue)]
        );
        assert_eq!(
            kinds(&at(&draft, sh(2026, 11, 20, 16, 5))),
            vec![(Dispatch, NearlyDue)]
        );
        assert_eq!(
            kinds(&at(&draft, sh(2026, 11, 20, 16, 6))),
            vec![(Dispatch, Overdue)]
        );

        let repair = dispatched(Category::Repair, t0);
        assert_eq!(
            kinds(&at(&repair, sh(2026, 11, 20, 18, 30))),
            vec![(Contact, Overdue), (Finish, OnTime)]
        );
        // Wednesday 16:00 due; 20% of 120 h = 24 h before.
        assert_eq!(
            kinds(&at(&repair, sh(2026, 11, 24, 16, 0))),
            vec![(Contact, Overdue), (Finish, NearlyDue)]
        );
        let answered = replied(&repair, sh(2026, 11, 25, 17, 0));
        assert_eq!(
            kinds(&at(&answered, sh(2026, 11, 26, 17, 1))),
            vec![(Callback, Overdue)]
        );
    }

    #[test]
    fn an_undispatched_leak_is_overdue_within_minutes_and_so_is_a_late_crew() {
        use crate::tickets::lifecycle::report_on_site;
        use crate::tickets::lifecycle::tests::unit;
        use DeadlineKind::*;
        use Timeliness::*;
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let draft = TicketFacts::new_draft(Uuid::nil(), Category::Leak, Channel::Hotline, t0);
        let at = |facts: &TicketFacts, now| {
            kinds(&classify(facts, &compute(facts, &rules), now, &rules))
        };
        let cases = [
            (sh(2026, 11, 20, 16, 3), OnTime),
            (sh(2026, 11, 20, 16, 4), NearlyDue),
            (sh(2026, 11, 20, 16, 5), NearlyDue),
            (sh(2026, 11, 20, 16, 6), Overdue),
        ];
        for (now, timeliness) in cases {
            assert_eq!(at(&draft, now), vec![(Dispatch, timeliness)], "{now}");
        }
        // Dispatched (phoned) at 16:02: on site by 16:32, nearly due from 16:26.
        let sent = dispatched(Category::Leak, sh(2026, 11, 20, 16, 2));
        let cases = [
            (sh(2026, 11, 20, 16, 25), OnTime),
            (sh(2026, 11, 20, 16, 26), NearlyDue),
            (sh(2026, 11, 20, 16, 32), NearlyDue),
            (sh(2026, 11, 20, 16, 33), Overdue),
        ];
        for (now, timeliness) in cases {
            assert_eq!(at(&sent, now), vec![(OnSite, timeliness)], "{now}");
        }
        let arrived = report_on_site(&sent, &unit(), sh(2026, 11, 20, 16, 31), &rules).unwrap();
        assert_eq!(arrived.facts.status, Status::Accepted);
        assert_eq!(at(&arrived.facts, sh(2026, 11, 20, 17, 0)), vec![]);
        assert!(
            report_on_site(&arrived.facts, &unit(), sh(2026, 11, 20, 16, 40), &rules).is_err(),
            "reported once"
        );
    }

    #[test]
    fn the_answer_to_the_caller_binds_until_the_ticket_is_closed() {
        use crate::tickets::lifecycle::tests::agent;
        use crate::tickets::lifecycle::{CloseRequest, close};
        use DeadlineKind::*;
        use Timeliness::*;
        let rules = rules_2026();
        let consultation = dispatched(Category::Consultation, sh(2026, 11, 20, 9, 0));
        let answered = replied(&consultation, sh(2026, 11, 20, 16, 0));
        // Scheduled for the callback agents: the next morning window.
        assert_eq!(answered.next_callback_at, Some(sh(2026, 11, 21, 9, 0)));
        let at = |facts: &TicketFacts, now| {
            kinds(&classify(facts, &compute(facts, &rules), now, &rules))
        };
        let cases = [
            (sh(2026, 11, 23, 1, 0), OnTime),
            (sh(2026, 11, 23, 16, 0), NearlyDue),
            (sh(2026, 11, 23, 16, 1), Overdue),
        ];
        for (now, timeliness) in cases {
            assert_eq!(
                at(&answered, now),
                vec![(ReplyToCaller, timeliness)],
                "{now}"
            );
        }
        let request = CloseRequest {
            reason: "已电话答复客户".into(),
        };
        let closed = close(
            &answered,
            &agent(),
            &request,
            sh(2026, 11, 21, 9, 5),
            &rules,
        )
        .unwrap();
        assert_eq!(at(&closed.facts, sh(2026, 11, 23, 16, 1)), vec![]);
    }

    #[test]
    fn minutes_before_replaces_the_fraction() {
        let mut config = rules_2026().config;
        config.nearly_due.minutes_before = Some(60);
        let rules = Rules::new(config).unwrap();
        let deadline = Deadline {
            kind: DeadlineKind::Finish,
            start: sh(2026, 11, 20, 8, 0),
            due: sh(2026, 11, 20, 18, 0),
        };
        assert_eq!(
            timeliness(&deadline, sh(2026, 11, 20, 16, 59), &rules),
            Timeliness::OnTime
        );
        assert_eq!(
            timeliness(&deadline, sh(2026, 11, 20, 17, 0), &rules),
            Timeliness::NearlyDue
        );
        assert_eq!(
            timeliness(&deadline, sh(2026, 11, 20, 18, 0), &rules),
            Timeliness::NearlyDue
        );
        assert_eq!(
            timeliness(&deadline, sh(2026, 11, 20, 18, 1), &rules),
            Timeliness::Overdue
        );
    }
}
