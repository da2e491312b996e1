//! hotline: the 24/7 customer hotline of a gas or district-heating utility.
//!
//! `hotlined` answers calls the PBX hands it over SIP, speaks Mandarin IVR prompts over G.711
//! RTP, reads DTMF, routes leaks first, records with consent, writes a draft ticket for every
//! call and serves tickets over gRPC. Protocol cores are sans-IO state machines; thin tokio
//! layers drive them.

pub mod acd;
pub mod api;
pub mod call;
pub mod config;
pub mod files;
pub mod ivr;
pub mod logging;
pub mod media;
pub mod ops;
pub mod sip;
pub mod store;
pub mod tickets;
