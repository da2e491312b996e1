//! Call liveness: no call holds a slot, its ports and its timers forever. A caller whose far
//! end vanished (no RTP or RTCP for `media.inactivity_secs`, the media session reports it),
//! a call past `daemon.max_call_secs`, or a caller waiting in a queue past
//! `daemon.max_queue_wait_secs` is hung up with a BYE, and its call row says why. Leak calls
//! are exempt from the queue-wait limit: the ACD overflows them instead. A SIP session nobody
//! refreshed (RFC 4028) is ended by the SIP endpoint itself (its BYE, then `CallEnded`); the
//! flow closes its row as `session_expired` or `session_refresh_failed`.
//!
//! Owns these limits' timers and verdicts; must not end calls any other way than the flow
//! does (a BYE, then the SIP layer's end of the call).

use super::Dispatcher;
use crate::call::timers::{CallTimer, TimerKey};
use crate::sip::{CallHandle, Command};
use crate::store::Disposition;
use std::time::{Duration, Instant};

impl Dispatcher {
    /// The call is answered: its duration limit starts.
    pub(super) fn start_duration_limit(&mut self, handle: CallHandle, now: Instant) {
        let Some(call) = self.registry.calls.get(&handle) else {
            return;
        };
        if let Some(limit) = limit(call.config.daemon.max_call_secs) {
            self.timers
                .set(TimerKey::Call(handle, CallTimer::MaxDuration), now + limit);
        }
    }

    /// The caller joined a queue (or left it: `queued = false`): the IVR's `Enqueue`, for a
    /// queue node as for a desktop's transfer, which starts the limit again.
    pub(super) fn queue_wait_limit(&mut self, handle: CallHandle, queued: bool, now: Instant) {
        let key = TimerKey::Call(handle, CallTimer::QueueWait);
        let Some(call) = self.registry.calls.get(&handle) else {
            return;
        };
        match limit(call.config.daemon.max_queue_wait_secs) {
            Some(limit) if queued && !call.leak => self.timers.set(key, now + limit),
            _ => self.timers.cancel(key),
        }
    }

    /// A liveness timer of `handle` fired.
    pub(super) async fn on_liveness_timer(&mut self, handle: CallHandle, timer: CallTimer) {
        let (disposition, why) = match timer {
            CallTimer::MaxDuration => (
                Disposition::MaxDuration,
                "the call reached daemon.max_call_secs",
            ),
            CallTimer::QueueWait => (
                Disposition::QueueTimeout,
                "the caller waited in the queue for daemon.max_queue_wait_secs",
            ),
            CallTimer::Ivr(_) => return,
        };
        self.end_call(handle, disposition, why).await;
    }

    /// Nothing came from the caller for `silence`: the far end is gone.
    pub(super) async fn on_media_inactive(&mut self, handle: CallHandle, silence: Duration) {
        let why = format!(
            "no RTP or RTCP from the caller for {} s (media.inactivity_secs)",
            silence.as_secs()
        );
        self.end_call(handle, Disposition::MediaTimeout, &why).await;
    }

    /// Hangs up the caller's call (a BYE) for a liveness reason; its call row will record
    /// `disposition`.
    async fn end_call(&mut self, handle: CallHandle, disposition: Disposition, why: &str) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            return;
        };
        if call.hung_up {
            return;
        }
        call.hung_up = true;
        call.ended_by = Some(disposition);
        tracing::warn!(call = %call.id, disposition = disposition.code(), "{why}: hanging up");
        self.sip_command(Command::Hangup { call: handle }).await;
    }
}

/// A limit in seconds, 0 meaning none.
fn limit(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}
