//! The IVR engine: a sans-IO state machine walking the configured menu flows — events in (call
//! answered, digit, prompt finished, timer), actions out (play, record, enqueue, transfer,
//! hang up, write ticket).
//!
//! Owns the caller's path through menus; must not open sockets, read clocks or touch the database.

mod checks;
pub mod config;
pub mod engine;
pub mod events;
pub mod keys;
pub mod numbers;
pub mod position;
pub mod special;
pub mod survey;

pub use config::{IvrConfig, ValidationError, validate};
pub use engine::CallEngine;
pub use events::{
    Action, CallInfo, ConsentDecision, ConsentHow, ConsentRecord, Event, HandOver, LEAK_PRIORITY,
    PlaybackId, QueueResult, SurveyAnswer, TicketUpdate, TimerId,
};

#[cfg(test)]
pub(crate) mod tests;
