//! The journal mapping: what happens to a call, in the IVR's and the call layer's terms,
//! becomes the store's own records ([`CallEntry`]). The store knows nothing of the IVR; this
//! is the one place that converts (local times to UTC, IVR consent to the call row's codes).
//!
//! Owns the conversion only; must not write anything itself (the journal does) nor decide
//! call flow.

use crate::ivr::{ConsentDecision, ConsentHow, ConsentRecord, SurveyAnswer, TicketUpdate};
use crate::store::{self, CallEntry, CallerCustomer, Disposition, DraftCustomer};
use chrono::Utc;

/// How far the call got, for the call row's disposition when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Ivr,
    Queued,
    WithAgent,
    Transferred,
    SelfServed,
}

impl Stage {
    pub(super) fn disposition(self) -> Disposition {
        match self {
            Stage::Ivr => Disposition::AbandonedInIvr,
            Stage::Queued => Disposition::AbandonedInQueue,
            Stage::WithAgent => Disposition::Answered,
            Stage::Transferred => Disposition::Transferred,
            Stage::SelfServed => Disposition::SelfServed,
        }
    }
}

/// The record for an IVR ticket update; the draft gets the household the caller look-up
/// found.
pub(super) fn ticket_entry(update: TicketUpdate, customer: Option<&CallerCustomer>) -> CallEntry {
    match update {
        TicketUpdate::CreateDraft {
            call_id: _,
            caller,
            called,
            started_at,
            flow,
        } => CallEntry::Draft {
            caller,
            called,
            flow,
            started_at: started_at.with_timezone(&Utc),
            customer: customer.map(|c| DraftCustomer {
                id: c.id,
                name: c.name.clone(),
                address: c.address.clone(),
                area: c.area.clone(),
            }),
        },
        TicketUpdate::PathStep { node, input } => CallEntry::PathStep { node, input },
        TicketUpdate::SetCategory {
            category,
            top_priority,
        } => CallEntry::Category {
            category,
            top_priority,
        },
        TicketUpdate::Variable { name, value } => CallEntry::Variable { name, value },
        TicketUpdate::CallEnded { at } => CallEntry::FlowEnded {
            at: at.with_timezone(&Utc),
        },
    }
}

/// The record for the IVR's consent decision.
pub(super) fn consent_entry(record: ConsentRecord) -> CallEntry {
    CallEntry::Consent {
        decision: match record.decision {
            ConsentDecision::Given => store::ConsentDecision::Granted,
            ConsentDecision::Refused => store::ConsentDecision::Declined,
            ConsentDecision::NotAsked => store::ConsentDecision::NotAsked,
        },
        via: match record.how {
            ConsentHow::StayedOnLine => store::ConsentVia::StayedOnLine,
            ConsentHow::PressedDigit => store::ConsentVia::Dtmf,
            ConsentHow::LeakDefault => store::ConsentVia::LeakDefault,
            ConsentHow::NoResponse => store::ConsentVia::NoResponse,
            ConsentHow::PolicyOff => store::ConsentVia::PolicyOff,
        },
        at: record.at.with_timezone(&Utc),
    }
}

/// The record for the caller's survey answer.
pub(super) fn survey_entry(answer: SurveyAnswer) -> CallEntry {
    CallEntry::Survey {
        rating: answer.rating,
        key: answer.key,
        at: answer.at.with_timezone(&Utc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ivr_updates_become_records_in_utc() {
        let at = chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 11, 25, 20, 0, 0)
            .unwrap();
        let expected_at = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(
            ticket_entry(TicketUpdate::CallEnded { at }, None),
            CallEntry::FlowEnded { at: expected_at }
        );
        let consent = consent_entry(ConsentRecord {
            decision: ConsentDecision::Given,
            how: ConsentHow::PressedDigit,
            at,
        });
        assert_eq!(
            consent,
            CallEntry::Consent {
                decision: store::ConsentDecision::Granted,
                via: store::ConsentVia::Dtmf,
                at: expected_at,
            }
        );
    }
}
