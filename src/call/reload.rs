//! Configuration reload: re-read the file with the validating loader and, when it is valid,
//! publish it for new calls. Calls in progress keep the snapshot they were answered with.
//! SIGHUP calls [`Reloader::reload`]; so can the admin API's `ReloadConfig`.
//!
//! Owns the current configuration snapshot; must not start or stop anything. Sections bound
//! at start (`sip`, `media` ports and folders, `database`, `grpc`, `log`) take effect at the
//! next restart; a reload that changes them says so in the log.

use crate::config::{self, Config, ConfigErrors};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Holds the file path and the published configuration.
#[derive(Debug)]
pub struct Reloader {
    /// `None`: the daemon runs on the built-in defaults; a reload re-validates those.
    path: Option<PathBuf>,
    current: watch::Sender<Arc<Config>>,
}

impl Reloader {
    pub fn new(path: Option<PathBuf>, initial: Config) -> Reloader {
        let (current, _) = watch::channel(Arc::new(initial));
        Reloader { path, current }
    }

    /// A receiver that always sees the newest valid configuration.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.current.subscribe()
    }

    pub fn current(&self) -> Arc<Config> {
        self.current.borrow().clone()
    }

    /// Re-reads and validates the file. Valid: published for new calls and returned.
    /// Invalid: every problem is logged and returned; the running configuration stays.
    pub fn reload(&self) -> Result<Arc<Config>, ConfigErrors> {
        match config::load_or_default(self.path.as_deref()) {
            Ok(new) => {
                let old = self.current();
                warn_restart_only_changes(&old, &new);
                for warning in &new.warnings {
                    tracing::warn!("configuration: {warning}");
                }
                let new = Arc::new(new);
                self.current.send_replace(new.clone());
                tracing::info!("configuration reloaded: new calls use it");
                Ok(new)
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!("configuration reload refused: {error}");
                }
                tracing::warn!("the configuration in use before the reload stays in force");
                Err(errors)
            }
        }
    }
}

fn warn_restart_only_changes(old: &Config, new: &Config) {
    let changed = [
        ("sip", old.sip != new.sip),
        ("media", old.media != new.media),
        ("grpc.listen", old.grpc.listen != new.grpc.listen),
        ("database.url", old.database.url != new.database.url),
        ("metrics", old.metrics != new.metrics),
    ];
    for (section, differs) in changed {
        if differs {
            tracing::warn!(
                section,
                "changed in the reloaded configuration: takes effect at the next restart"
            );
        }
    }
}
