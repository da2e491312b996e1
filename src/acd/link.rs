//! The seam between one call's IVR engine and the ACD: IVR queue actions become ACD events,
//! ACD verdicts become IVR queue results. Pure functions, so the driver and the leak-path
//! benchmark run exactly the same code.
//!
//! Owns the translation only; must not keep state of its own.

use super::distributor::{Acd, AcdAction, AcdEvent};
use crate::ivr::{Action, CallEngine, Event, QueueResult};
use std::time::Instant;

/// Feeds the ACD the queue actions (`Enqueue`, `Dequeue`) among `actions` of call `call_id`;
/// returns what the ACD wants done.
pub fn apply_ivr_actions(
    acd: &mut Acd,
    call_id: &str,
    actions: &[Action],
    now: Instant,
) -> Vec<AcdAction> {
    let mut out = Vec::new();
    for action in actions {
        let event = match action {
            Action::Enqueue {
                queue,
                priority,
                leak,
                ..
            } => AcdEvent::CallQueued {
                call: call_id.to_owned(),
                queue: queue.clone(),
                priority: *priority,
                leak: *leak,
                now,
            },
            Action::Dequeue => AcdEvent::CallerAbandoned {
                call: call_id.to_owned(),
                now,
            },
            _ => continue,
        };
        out.extend(acd.handle(event));
    }
    out
}

/// The IVR event an ACD action means for the call it names, if any.
pub fn queue_result(action: &AcdAction) -> Option<(&str, QueueResult)> {
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

/// A key press on call `call_id` carried through the IVR and into the ACD: for the leak digit
/// with an emergency agent free, the ACD actions hold the `OfferToAgent` at once. This is the
/// path `benches/leak_path.rs` measures.
pub fn route_digit(
    call: &mut CallEngine,
    acd: &mut Acd,
    call_id: &str,
    digit: char,
    now: Instant,
) -> (Vec<Action>, Vec<AcdAction>) {
    let ivr_actions = call.handle(Event::Digit { digit, now });
    let acd_actions = apply_ivr_actions(acd, call_id, &ivr_actions, now);
    (ivr_actions, acd_actions)
}
