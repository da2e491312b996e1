//! The seam between one call's IVR engine and the ACD: IVR queue actions become ACD events,
//! ACD verdicts become IVR queue results. Pure functions, so the dispatcher and the leak-path
//! benchmark run exactly the same code. It lives in the call layer because it is the only
//! place that knows both cores; neither `ivr` nor `acd` imports the other.
//!
//! Owns the translation only; must not keep state of its own.

use crate::acd::{Acd, AcdAction, AcdEvent, CallKey};
use crate::ivr::{Action, CallEngine, Event, QueueResult};
use std::time::Instant;

/// Feeds the ACD the queue actions (`Enqueue`, `Dequeue`) among `actions` of call `call`;
/// returns what the ACD wants done.
pub fn apply_ivr_actions<C: CallKey>(
    acd: &mut Acd<C>,
    call: &C,
    actions: &[Action],
    now: Instant,
) -> Vec<AcdAction<C>> {
    let mut out = Vec::new();
    for action in actions {
        let event = match action {
            Action::Enqueue {
                queue,
                priority,
                leak,
                agent: None,
                ..
            } => AcdEvent::CallQueued {
                call: call.clone(),
                queue: queue.clone(),
                priority: *priority,
                leak: *leak,
                now,
            },
            // A desktop's transfer to an agent.
            Action::Enqueue {
                queue,
                priority,
                leak,
                agent: Some(agent),
                ..
            } => AcdEvent::CallDirected {
                call: call.clone(),
                agent: agent.clone(),
                queue: queue.clone(),
                priority: *priority,
                leak: *leak,
                now,
            },
            Action::Dequeue => AcdEvent::CallerAbandoned {
                call: call.clone(),
                now,
            },
            _ => continue,
        };
        out.extend(acd.handle(event));
    }
    out
}

/// The IVR event an ACD action means for the call it names, if any.
pub fn queue_result<C: CallKey>(action: &AcdAction<C>) -> Option<(&C, QueueResult)> {
    match action {
        AcdAction::OfferToAgent { call, agent, .. } => Some((
            call,
            QueueResult::Offered {
                agent: agent.clone(),
            },
        )),
        AcdAction::Waiting { call } => Some((call, QueueResult::NoAgent)),
        AcdAction::Overflow { call, uri } => {
            Some((call, QueueResult::Overflow { uri: uri.clone() }))
        }
        AcdAction::Position {
            call,
            ahead,
            wait_minutes,
        } => Some((
            call,
            QueueResult::Position {
                ahead: *ahead,
                wait_minutes: *wait_minutes,
            },
        )),
        AcdAction::CancelOffer { .. }
        | AcdAction::AgentSetOffline { .. }
        | AcdAction::StartTimer { .. }
        | AcdAction::CancelTimer { .. } => None,
    }
}

/// A key press on call `call` carried through the IVR and into the ACD: for the leak digit
/// with an emergency agent free, the ACD actions hold the `OfferToAgent` at once. This is the
/// path `benches/leak_path.rs` measures.
pub fn route_digit<C: CallKey>(
    engine: &mut CallEngine,
    acd: &mut Acd<C>,
    call: &C,
    digit: char,
    now: Instant,
) -> (Vec<Action>, Vec<AcdAction<C>>) {
    let ivr_actions = engine.handle(Event::Digit { digit, now });
    let acd_actions = apply_ivr_actions(acd, call, &ivr_actions, now);
    (ivr_actions, acd_actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::ReportedState;
    use std::sync::Arc;

    #[test]
    fn leak_digit_is_offered_to_a_free_emergency_agent_at_once() {
        let ivr_config = Arc::new(crate::ivr::tests::config());
        let now = Instant::now();
        let mut acd: Acd<String> = Acd::new(Arc::new(crate::acd::tests::config()), now);
        acd.handle(AcdEvent::AgentStateChanged {
            agent: "a1".into(),
            state: ReportedState::Available,
            now,
        });
        let mut engine = CallEngine::new(ivr_config);
        let call = String::from("c-leak");
        let answered = engine.handle(Event::Answered {
            info: crate::ivr::CallInfo {
                call_id: "c-leak".into(),
                did: "956100".into(),
                caller: "13812341234".into(),
                local_time: chrono::TimeZone::with_ymd_and_hms(
                    &chrono_tz::Asia::Shanghai,
                    2026,
                    11,
                    23,
                    3,
                    0,
                    0,
                )
                .unwrap(),
                has_open_ticket: false,
                announcements: Vec::new(),
                special_group: None,
            },
            now,
        });
        assert!(apply_ivr_actions(&mut acd, &call, &answered, now).is_empty());

        let (ivr_actions, acd_actions) = route_digit(&mut engine, &mut acd, &call, '1', now);
        assert!(matches!(ivr_actions[0], Action::StopPlayback));
        assert_eq!(ivr_actions[1], Action::PriorityCall);
        assert!(matches!(ivr_actions[2], Action::Enqueue { leak: true, .. }));
        assert_eq!(
            acd_actions[0],
            AcdAction::OfferToAgent {
                call: "c-leak".into(),
                agent: "a1".into(),
                uri: "sip:1001@127.0.0.1".into()
            }
        );
        // The ACD's word travels back to the IVR as a queue result.
        let (call_id, result) = queue_result(&acd_actions[0]).unwrap();
        assert_eq!(call_id, &call);
        assert_eq!(result, QueueResult::Offered { agent: "a1".into() });
        let bridged = engine.handle(Event::AgentAnswered {
            agent: "a1".into(),
            now,
        });
        assert_eq!(bridged[1], Action::Bridge { agent: "a1".into() });
    }

    #[test]
    fn an_enqueue_naming_an_agent_is_offered_to_that_agent_alone() {
        // A desktop's transfer to a2: a1 has been idle longer and serves general too, yet
        // the call goes to a2, as the ACD's `CallDirected` does.
        let now = Instant::now();
        let mut acd: Acd<String> = Acd::new(Arc::new(crate::acd::tests::config()), now);
        for agent in ["a1", "a2"] {
            acd.handle(AcdEvent::AgentStateChanged {
                agent: agent.into(),
                state: ReportedState::Available,
                now,
            });
        }
        let enqueue = |agent: Option<&str>| Action::Enqueue {
            queue: "general".into(),
            priority: 3,
            leak: false,
            category: crate::tickets::Category::Consultation,
            agent: agent.map(str::to_owned),
        };
        let offered_to = |actions: Vec<AcdAction<String>>| {
            actions.into_iter().find_map(|a| match a {
                AcdAction::OfferToAgent { agent, uri, .. } => Some((agent, uri)),
                _ => None,
            })
        };
        let call = String::from("c-transferred");
        let directed = apply_ivr_actions(&mut acd, &call, &[enqueue(Some("a2"))], now);
        assert_eq!(
            offered_to(directed),
            Some(("a2".into(), "sip:1002@127.0.0.1".into()))
        );
        let other = String::from("c-queued");
        let queued = apply_ivr_actions(&mut acd, &other, &[enqueue(None)], now);
        assert_eq!(
            offered_to(queued).map(|(agent, _)| agent),
            Some("a1".into())
        );
    }
}
