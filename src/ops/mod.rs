//! Operations beside the call path: outage announcements (text rendered to speech once, and
//! the prompts a call should hear) and the recording retention purge.
//!
//! Owns the announcement audio files and deleting expired recordings; SQL lives in `store`,
//! playback in `media`. Must not touch calls in progress.

pub mod announce;
pub mod retention;

pub use announce::{AnnounceError, Announcer, PromptRef};
pub use retention::{PurgeError, PurgeReport, purge_expired, run_purge_loop};
