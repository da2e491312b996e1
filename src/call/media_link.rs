//! A media session driven from the dispatcher: a small task owns the [`MediaSession`],
//! forwards commands to it and its events, tagged with the leg they belong to, onto the
//! dispatcher's one channel; `None` last says the session has ended (closed, or failed on
//! its own). Dropping the [`MediaLink`] closes the session (recording finalised, ports back
//! in the pool).
//!
//! Owns the forwarding only; must not interpret events.

use crate::media::session::{MediaCommand, MediaEvent, MediaSession, MediaStats};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// The dispatcher's handle on one running session.
#[derive(Debug)]
pub(super) struct MediaLink {
    commands: mpsc::UnboundedSender<MediaCommand>,
}

impl MediaLink {
    /// Starts forwarding; `live` counts running sessions (decremented when the session is
    /// closed and its ports are back).
    pub(super) fn spawn<K: Copy + Send + 'static>(
        mut session: MediaSession,
        key: K,
        events: mpsc::UnboundedSender<(K, Option<MediaEvent>)>,
        live: Arc<AtomicUsize>,
    ) -> MediaLink {
        let (commands, mut command_rx) = mpsc::unbounded_channel();
        live.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            // The session's counters as last added to the metrics.
            let mut counted = MediaStats::default();
            let mut count = |event: &MediaEvent| {
                if let MediaEvent::Stats(stats) = event {
                    crate::ops::metrics::global().add_media(&counted, stats);
                    counted = *stats;
                }
            };
            loop {
                tokio::select! {
                    command = command_rx.recv() => match command {
                        Some(command) => {
                            if session.command(command).is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                    event = session.next_event() => match event {
                        Some(event) => {
                            count(&event);
                            let _ = events.send((key, Some(event)));
                        }
                        None => break,
                    },
                }
            }
            for event in session.close().await {
                count(&event);
                let _ = events.send((key, Some(event)));
            }
            live.fetch_sub(1, Ordering::SeqCst);
            let _ = events.send((key, None));
        });
        MediaLink { commands }
    }

    /// Sends a command; a session that already ended ignores it.
    pub(super) fn send(&self, command: MediaCommand) {
        let _ = self.commands.send(command);
    }
}
