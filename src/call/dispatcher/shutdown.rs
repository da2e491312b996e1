//! Shutdown: new calls get 503 at once; calls in progress may go on for the grace period,
//! then are hung up; the dispatcher stops when the last call is gone, or [`HANGUP_WAIT`]
//! after the hang-ups if a peer never confirmed.
//!
//! Owns the shutdown's deadlines; must not end calls any other way than the flow does.

use super::Dispatcher;
use crate::sip::transport::Request;
use crate::sip::{CallHandle, Command};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// After the grace period calls are hung up; this long after that the dispatcher stops
/// even if a peer never confirmed.
const HANGUP_WAIT: Duration = Duration::from_secs(5);

pub(super) struct Shutdown {
    hang_up_at: Instant,
    give_up_at: Instant,
    hung_up: bool,
    done: Option<oneshot::Sender<()>>,
}

impl Shutdown {
    /// When the shutdown next needs the dispatcher.
    pub(super) fn deadline(&self) -> Instant {
        if self.hung_up {
            self.give_up_at
        } else {
            self.hang_up_at
        }
    }
}

impl Dispatcher {
    pub(super) async fn begin_shutdown(&mut self, grace: Duration, done: oneshot::Sender<()>) {
        tracing::info!(
            calls = self.registry.calls.len(),
            grace_secs = grace.as_secs(),
            "shutting down: new calls get 503, calls in progress may finish"
        );
        let _ = self.sip.send(Request::BeginShutdown).await;
        let now = Instant::now();
        self.shutdown = Some(Shutdown {
            hang_up_at: now + grace,
            give_up_at: now + grace + HANGUP_WAIT,
            hung_up: false,
            done: Some(done),
        });
    }

    pub(super) async fn hang_up_if_grace_over(&mut self, now: Instant) {
        let Some(shutdown) = self.shutdown.as_mut() else {
            return;
        };
        if shutdown.hung_up || now < shutdown.hang_up_at {
            return;
        }
        shutdown.hung_up = true;
        let handles: Vec<CallHandle> = self.registry.calls.keys().copied().collect();
        if !handles.is_empty() {
            tracing::warn!(
                calls = handles.len(),
                "shutdown grace period over: hanging up"
            );
        }
        for handle in handles {
            self.sip_command(Command::Hangup { call: handle }).await;
        }
    }

    pub(super) fn finished(&self) -> bool {
        match &self.shutdown {
            Some(s) => self.registry.is_empty() || (s.hung_up && Instant::now() >= s.give_up_at),
            None => false,
        }
    }

    /// Drops what is left (after a shutdown); media links and leases close on drop.
    pub(super) fn stop(&mut self) {
        if !self.registry.is_empty() {
            tracing::warn!(
                calls = self.registry.calls.len(),
                legs = self.registry.legs.len(),
                "stopping with calls whose hang-up was not confirmed"
            );
        }
        for (_, call) in self.registry.calls.drain() {
            self.journal.record(
                &call.id,
                crate::store::CallEntry::Ended {
                    at: chrono::Utc::now(),
                    disposition: call.stage.disposition(),
                },
            );
        }
        self.registry.legs.clear();
        self.timers.clear();
        if let Some(done) = self.shutdown.as_mut().and_then(|s| s.done.take()) {
            let _ = done.send(());
        }
    }
}
