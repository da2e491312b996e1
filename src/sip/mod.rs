//! SIP signalling (RFC 3261): message parsing and checks, the sans-IO transaction and dialog
//! layers, SDP offer/answer, access control, and the tokio UDP/TCP transport that drives them.
//!
//! Where things are, bottom up (each file's first comment says what it owns):
//! - `message/`: bytes <-> [`message::Message`], parsed once; the typed headers every other
//!   layer reads.
//! - `transaction/`: one file per transaction kind (`server_invite`, `server`, `client`),
//!   matching in `key.rs`, and `table.rs`, which holds them with their timers in deadline
//!   order.
//! - `dialog.rs`: one dialog's identifiers, CSeq and route set.
//! - `endpoint/`: the user agent — `uas.rs` answers what we receive, `uac.rs` sends what we
//!   ask, `dialogs.rs` holds the calls; `mod.rs` is the application's surface (events,
//!   commands, `poll_*`, `handle_*`).
//! - `sdp.rs`, `access.rs`, `config.rs`: offer/answer, who may call, the `[sip]` section.
//! - `transport.rs`: the tokio driver — sockets, clock and the endpoint's seeded RNG.
//!
//! Owns everything on the signalling wire; must not touch audio samples, the IVR or the database.

pub mod access;
pub mod config;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod refusals;
pub mod sdp;
pub mod stats;
pub mod transaction;

pub use config::SipConfig;
pub use endpoint::{CallHandle, Command, Counts, EndReason, Endpoint, Event, OutgoingCall};
pub mod transport;
