//! Media: RTP sessions (port pool, pacing, reordering), G.711 codecs, DTMF detection
//! (RFC 4733 and in-band), prompt playback and call recording to WAV.
//!
//! Owns audio and RTP; must not parse SIP or decide routing.
//!
//! Wiring, per daemon: validate [`config::MediaConfig`], build one [`ports::PortPool`] and one
//! `Arc<`[`prompts::PromptLibrary`]`>` (loaded once), and run
//! [`recorder::repair_unfinished`] on the recordings folder before taking calls.
//! Per call: lease a port pair (its `rtp_addr()` goes into the SDP answer), then after SDP
//! negotiation start a [`session::MediaSession`] with the lease and the
//! [`rtp_session::NegotiatedMedia`] (codec, telephone-event PT, remote address); drive it
//! with [`session::MediaCommand`]s and read [`session::MediaEvent`]s; close or drop it when
//! the dialog ends — the ports return to the pool either way.
//!
//! Sans-IO cores (no sockets, no clocks): `g711`, `pacer`, `jitter`, `rtp_session`, `dtmf`,
//! the `prompts::Playback` queue, and `session_core`, which combines them into one call's
//! per-frame work. `session` is the owner's handle and `workers` the threads that drive
//! `session_core`s (one per core); `ports`, `prompts` loading and `recording_writer` (the
//! recorder's own thread) do the file and socket work.

pub mod config;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod pacer;
pub mod ports;
pub mod prompts;
pub mod recorder;
mod recording_writer;
pub mod rtp_session;
pub mod session;
pub mod session_core;
pub mod workers;
