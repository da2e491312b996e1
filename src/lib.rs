//! hotline: the 24/7 customer hotline of a gas or district-heating utility.
//!
//! `hotlined` answers calls the PBX hands it over SIP, speaks Mandarin IVR prompts over G.711
//! RTP, reads DTMF, routes leaks first, records with consent, writes a draft ticket for every
//! call and serves tickets over gRPC. Protocol cores are sans-IO state machines; thin tokio
//! layers drive them.
//!
//! # Architecture
//!
//! Layers, bottom to top; a module may import only modules of lower rows (and, among the
//! cores, the ticket domain). `tests/layering.rs` checks this on every test run and names the
//! file and line of an import that goes the wrong way.
//!
//! | layer | modules | may import |
//! |---|---|---|
//! | leaves | `logging`, `validation`, `files` | nothing of the crate |
//! | protocol cores (sans-IO: events in, actions out, no sockets, clocks or SQL) | `tickets`, `sip`, `media`, `ivr`, `acd`, `desk` | leaves; `ivr` and `acd` also `tickets` (categories) — no core imports another otherwise |
//! | adapters | `store` (PostgreSQL, its own record types), `config` (the file, assembling the cores' sections), `ops` (announcements, retention, metrics) | leaves, cores; `ops` also `store` and `config` |
//! | call layer | `call` | everything above; it only wires: converts between the cores' types and the store's records, carries actions to I/O |
//! | API | `api` | everything above; reaches the call layer only through the handles `call` defines ([`call::AgentDesk`], [`call::Desktops`]) |
//! | API client | `ctl` (`hotlinectl`'s work: a client of the gRPC API, like any other; tables or JSON; imports) | `api`, for its wire types (`api::pb`) only — never the store or the daemon's internals |
//! | binaries | `src/bin/hotlined.rs`, `src/bin/hotlinectl.rs` | everything (`hotlinectl`: `ctl`) |
//!
//! Where a new feature goes:
//! - a new decision (a menu rule, a routing rule, a SIP behaviour, a ticket rule) goes into
//!   its core, as an event and an action, tested without I/O;
//! - a new thing to store gets a record type in `store` and a conversion in the call layer
//!   (`call::journal`) or the API, never a core type inside `store`;
//! - a new per-call reaction (a timer, a media event, an event for agent desktops) goes into
//!   the call layer's flow (`call/dispatcher/flow.rs`), queued as work, never by recursion;
//! - a new gRPC method goes into `api`, reaching the calls through a handle `call` defines.

pub mod acd;
pub mod api;
pub mod call;
pub mod config;
pub mod ctl;
pub mod desk;
pub mod files;
pub mod ivr;
pub mod logging;
pub mod media;
pub mod ops;
pub mod sip;
pub mod store;
pub mod tickets;
pub mod validation;
