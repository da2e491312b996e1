//! Tickets (工单): the vocabulary and the service rules of `hotline-rules.md` — life cycle,
//! deadlines in working days, complaint levels, urges, callbacks — as pure functions and state
//! machines over a clock and a calendar passed in.
//!
//! Owns the rules; must not touch the database or the network.

pub mod model;

pub use model::{Category, Channel, ComplaintLevel, Status};
