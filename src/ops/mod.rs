//! Operations beside the call path: outage announcements (text rendered to speech once, and
//! the prompts a call should hear), the recording retention purge, the daily check that
//! the working-day calendar has this year's (and next year's) dates, and the Prometheus
//! metrics (`metrics`: the registry; `metrics_http`: its endpoint).
//!
//! Owns the announcement audio files and deleting expired recordings; SQL lives in `store`,
//! playback in `media`. Must not touch calls in progress.

pub mod announce;
pub mod calendar_check;
pub mod metrics;
pub mod metrics_http;
pub mod retention;

pub use announce::{AnnounceError, Announcer, PromptRef};
pub use calendar_check::{calendar_warnings, run_calendar_check};
pub use retention::{PurgeError, PurgeReport, purge_expired, run_purge_loop};
