//! Media: RTP sessions (port pool, pacing, reordering), G.711 codecs, DTMF detection
//! (RFC 4733 and in-band), prompt playback and call recording to WAV.
//!
//! Owns audio and RTP; must not parse SIP or decide routing.
