//! Tickets (工单): the vocabulary and the service rules of `hotline-rules.md` — life cycle,
//! deadlines in working days, complaint levels, urges, callbacks — as pure functions and state
//! machines over a clock and a calendar passed in.
//!
//! Owns the rules; must not touch the database or the network.

pub mod calendar;
pub mod callback;
pub mod complaint;
pub mod config;
pub mod deadlines;
pub mod extension;
pub mod lifecycle;
pub mod model;
pub mod overdue;
pub mod split;
pub mod urge;

pub use config::{Rules, RulesConfig};
pub use lifecycle::{Actor, AuditEvent, FollowUp, Refusal, TicketFacts, Transition};
pub use model::{Category, Channel, ComplaintLevel, Status};
