//! Automatic call distribution: agent queues, priorities (leaks first), agent selection and
//! overflow, as a sans-IO state machine.
//!
//! Owns who gets which call next; must not do SIP or media.

pub mod config;
pub mod distributor;

pub use config::{AcdConfig, validate};
pub use distributor::{Acd, AcdAction, AcdEvent, AcdTimerId, AgentState, CallKey, ReportedState};

#[cfg(test)]
pub(crate) mod tests;
