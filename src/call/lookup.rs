//! The caller look-up: the household file listing the calling number, whether the caller has
//! a ticket still open, and the outage announcements for the number dialled. It runs in a
//! short-lived task with a timeout, so a slow or absent database never holds a call up; the
//! answer comes back to the dispatcher on a channel.
//!
//! Owns the look-up and its timeout; must not decide what the IVR does with it.

use crate::config::Config;
use crate::logging::Masked;
use crate::media::prompts::PromptLibrary;
use crate::ops::{Announcer, PromptRef};
use crate::sip::CallHandle;
use crate::store::{CallerCustomer, CallerFacts, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait for the caller look-up (customer file, open tickets) before the IVR starts
/// without it: a slow or absent database must not keep the caller in silence.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(400);

/// What the caller look-up found.
#[derive(Debug, Clone, Default)]
pub(super) struct Lookup {
    pub has_open_ticket: bool,
    /// The (first) household file listing the calling number.
    pub customer: Option<CallerCustomer>,
    /// Prompt names of the outage announcements for this call, in order.
    pub announcements: Vec<String>,
}

/// Starts look-ups; their answers come back on the channel given to [`Lookups::new`].
pub(super) struct Lookups {
    store: Store,
    prompts: Arc<PromptLibrary>,
    results: mpsc::UnboundedSender<(CallHandle, Lookup)>,
}

impl Lookups {
    pub(super) fn new(
        store: Store,
        prompts: Arc<PromptLibrary>,
        results: mpsc::UnboundedSender<(CallHandle, Lookup)>,
    ) -> Lookups {
        Lookups {
            store,
            prompts,
            results,
        }
    }

    /// Looks the caller up in a task of its own; the answer (or "nothing known" after
    /// [`LOOKUP_TIMEOUT`]) comes back on the look-up channel.
    pub(super) fn spawn(&self, handle: CallHandle, caller: &str, dialled: &str, config: &Config) {
        let store = self.store.clone();
        let announcer = Announcer::new(
            store.clone(),
            config.daemon.announcements_dir(),
            config.announcements.clone(),
        );
        let prompts = self.prompts.clone();
        let results = self.results.clone();
        let caller = caller.to_owned();
        let dialled = dialled.to_owned();
        tokio::spawn(async move {
            let found = tokio::time::timeout(
                LOOKUP_TIMEOUT,
                look_up(&store, &announcer, prompts, &caller, &dialled),
            )
            .await;
            let lookup = match found {
                Ok(Ok(lookup)) => lookup,
                Ok(Err(error)) => {
                    tracing::warn!(caller = %Masked(&caller), %error, "caller look-up failed: going on without it");
                    Lookup::default()
                }
                Err(_) => {
                    tracing::warn!(caller = %Masked(&caller), "caller look-up timed out: going on without it");
                    Lookup::default()
                }
            };
            let _ = results.send((handle, lookup));
        });
    }
}

/// The caller's household file, whether they have a ticket still open, and the outage
/// announcements for the number they called (and their area, when known).
async fn look_up(
    store: &Store,
    announcer: &Announcer,
    prompts: Arc<PromptLibrary>,
    caller: &str,
    dialled: &str,
) -> Result<Lookup, crate::store::StoreError> {
    let facts = if caller.is_empty() {
        CallerFacts::default()
    } else {
        store.caller_facts(caller).await?
    };
    let area = facts.customer.as_ref().map(|c| c.area.as_str());
    let found = announcer
        .announcement_prompts(dialled, area, chrono::Utc::now())
        .await?;
    // Rendered texts are read and encoded off the dispatcher, once per file version.
    let announcements = tokio::task::spawn_blocking(move || {
        found
            .into_iter()
            .filter_map(|prompt| match prompt {
                PromptRef::Prompt(name) => Some(name),
                PromptRef::Rendered { id, path } => match prompts.load_file(&path) {
                    Ok(name) => Some(name),
                    Err(error) => {
                        tracing::warn!(announcement = id, %error, "announcement audio unusable: skipped");
                        None
                    }
                },
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    Ok(Lookup {
        has_open_ticket: facts.has_open_ticket(),
        customer: facts.customer,
        announcements,
    })
}
