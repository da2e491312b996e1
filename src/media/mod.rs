//! Media: RTP sessions (port pool, pacing, reordering), G.711 codecs, DTMF detection
//! (RFC 4733 and in-band), prompt playback and call recording to WAV.
//!
//! Owns audio and RTP; must not parse SIP or decide routing.

pub mod config;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod pacer;
pub mod ports;
pub mod prompts;
pub mod recorder;
pub mod rtp_session;
pub mod session;
