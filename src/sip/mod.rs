//! SIP signalling (RFC 3261): message parsing and checks, the sans-IO transaction and dialog
//! layers, SDP offer/answer, access control, and the tokio UDP/TCP transport that drives them.
//!
//! Owns everything on the signalling wire; must not touch audio samples, the IVR or the database.

pub mod access;
pub mod config;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod refusals;
pub mod sdp;
pub mod transaction;

pub use config::SipConfig;
pub use endpoint::{CallHandle, Command, Counts, EndReason, Endpoint, Event, OutgoingCall};
pub mod transport;
