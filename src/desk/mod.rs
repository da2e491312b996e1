//! The agents' desk, as a sans-IO state machine: agent sessions and states (LOGGED_OUT,
//! READY, NOT_READY(reason), RINGING, ON_CALL, WRAP_UP) with versions, pending requests,
//! wrap-up, ring-no-answer and the desktop grace period; the per-agent event history that
//! desktops resume from by `(epoch, seq)`; per-subscriber bounded outboxes with heartbeats;
//! and the supervisors' wallboard counters. Call events and API requests in, [`DeskAction`]s
//! out, the clock injected (`now: Instant`, with one wall-clock anchor for timestamps).
//!
//! Owns agents' states and what desktops and wallboards are told; must not do SIP, media,
//! SQL or gRPC, nor choose which agent gets a call (the ACD does). The screen pop is a type
//! parameter it carries without looking inside (the store builds it, the API renders it).
//!
//! # The desk and the ACD
//!
//! The desk is the one owner of an agent's state. The ACD (`acd`) keeps queue logic only:
//! waiting calls, their order, who to ring next, ring and overflow timers. It still holds a
//! per-agent "may be rung" mark, but that mark is written only from the desk's decisions:
//! every [`DeskAction::Availability`] is carried to the ACD by the call layer, and the ACD's
//! own marks (ringing while it offers, busy once answered, not free after a ring-out) are
//! reservations between two of the desk's decisions, never a state an agent or an admin
//! sets. When a ring times out the call layer tells the desk ([`DeskInput::OfferEnded`]);
//! the desk decides READY or NOT_READY(ring_no_answer) and the ACD follows. The desk and the
//! ACD do not import each other (cores are independent); the call layer joins them.
//!
//! # Events and resume
//!
//! Every history event of an agent gets the next `seq` (gapless, from 1) and the daemon
//! run's `epoch`. A desktop that resumes from `(epoch, seq)` gets exactly the events after
//! `seq` if the bounded history (`desk.history_len`) still holds them all and the epoch is
//! this run's; otherwise `ResyncRequired` and a fresh `Snapshot`. `Snapshot`,
//! `ResyncRequired` and `Heartbeat` are per subscriber, not in the history, and carry the
//! latest seq. A subscriber whose outbox holds `desk.subscriber_queue` items gets its
//! outbox replaced by `ResyncRequired(TooSlow)` and is closed.

pub mod config;
mod core;
pub mod events;
pub mod kpi;
mod stream;
pub mod wallboard;

pub use config::DeskConfig;
pub use core::{
    AgentView, CallControl, Desk, DeskAction, DeskError, DeskInput, LiveCall, LivePhase, Roster,
    StreamItem, SubId, TransferTarget,
};
pub use events::{
    AgentEvent, AgentState, CallPhase, EventKind, HandoverNote, HungUpBy, Offer, Requested,
    ResyncReason, Snapshot, WithdrawReason,
};
pub use stream::Drained;
pub use wallboard::{AgentsByState, Counters, LEAK_LANE, LaneBoard, WallboardUpdate};

#[cfg(test)]
mod tests;
