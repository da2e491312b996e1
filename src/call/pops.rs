//! The screen pop at ring time. When the ACD offers a call to an agent, the pop is built from
//! the database in a task of its own, with a timeout, once the call journal has written what
//! was recorded of the call so far (its IVR path up to the key just pressed); the answer comes back to the
//! dispatcher, which then hands the offer to the desk (the desktop gets `Offered` with the
//! pop) and only then rings the agent's phone — so the pop is on its way to the desktop
//! before the agent can answer. A slow or absent database costs at most [`POP_TIMEOUT`] of
//! ringing and gives a pop with what the call itself knows.
//!
//! Owns the pop's look-up and its timeout; must not decide who is rung.

use super::desktops::Desktops;
use crate::logging::Masked;
use crate::sip::CallHandle;
use crate::store::{CallJournal, ScreenPop, Store};
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait for the pop's queries before the agent is rung with a pop of the call alone.
pub(super) const POP_TIMEOUT: Duration = Duration::from_millis(300);

/// An offer whose pop is ready: ring `uri` for `agent`.
#[derive(Debug)]
pub(super) struct PopReady {
    pub handle: CallHandle,
    pub agent: String,
    pub uri: String,
    pub pop: ScreenPop,
}

/// What the pop needs to know of the call.
pub(super) struct PopRequest {
    pub handle: CallHandle,
    pub call_id: String,
    pub caller: String,
    pub dialled: String,
    pub agent: String,
    pub uri: String,
}

/// Starts pop look-ups; their answers come back on the channel given to [`Pops::new`].
pub(super) struct Pops {
    store: Store,
    journal: CallJournal,
    desktops: Desktops,
    results: mpsc::UnboundedSender<PopReady>,
}

impl Pops {
    pub(super) fn new(
        store: Store,
        journal: CallJournal,
        desktops: Desktops,
        results: mpsc::UnboundedSender<PopReady>,
    ) -> Pops {
        Pops {
            store,
            journal,
            desktops,
            results,
        }
    }

    pub(super) fn spawn(&self, request: PopRequest) {
        let store = self.store.clone();
        let journal = self.journal.clone();
        let desktops = self.desktops.clone();
        let results = self.results.clone();
        tokio::spawn(async move {
            let PopRequest {
                handle,
                call_id,
                caller,
                dialled,
                agent,
                uri,
            } = request;
            let now = chrono::Utc::now();
            let started = std::time::Instant::now();
            // How long the journal took to write the call's records, once it has.
            let mut flushed: Option<Duration> = None;
            // The call's own records (its IVR path up to the key just pressed) first.
            let found = tokio::time::timeout(POP_TIMEOUT, async {
                journal.flush().await;
                flushed = Some(started.elapsed());
                store.screen_pop(&call_id, &caller, &dialled, now).await
            })
            .await;
            tracing::debug!(
                caller = %Masked(&caller),
                flush_ms = flushed.map(|d| d.as_secs_f64() * 1000.0),
                total_ms = started.elapsed().as_secs_f64() * 1000.0,
                "screen pop looked up"
            );
            let mut pop = match found {
                Ok(Ok(pop)) => pop,
                Ok(Err(error)) => {
                    tracing::warn!(caller = %Masked(&caller), %error, "screen pop look-up failed: ringing with the call alone");
                    ScreenPop::default()
                }
                Err(_) => {
                    let waiting_for = if flushed.is_some() {
                        "its queries"
                    } else {
                        "the call journal"
                    };
                    tracing::warn!(caller = %Masked(&caller), waiting_for, "screen pop look-up timed out: ringing with the call alone");
                    ScreenPop::default()
                }
            };
            pop.call_id = call_id.clone();
            pop.caller_number = caller;
            pop.dialled_number = dialled;
            if let Some((live, waited)) = desktops.live_call(&call_id) {
                pop.queue = live.queue;
                pop.priority = live.priority;
                pop.leak = live.leak;
                pop.seconds_waited = u32::try_from(waited.as_secs()).unwrap_or(u32::MAX);
            }
            let _ = results.send(PopReady {
                handle,
                agent,
                uri,
                pop,
            });
        });
    }
}
