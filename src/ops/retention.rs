//! The recording retention purge: deletes the WAV files of calls older than
//! `retention.recordings_days` and marks their call rows (`recording_purged_at`), so the
//! recording reference stays as evidence that there was one. Tolerates files already gone and
//! never deletes anything outside the recordings folder.

use crate::config::RetentionConfig;
use crate::logging::mask_phone_runs;
use crate::store::{Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use std::path::{Component, Path, PathBuf};

/// Calls handled per query.
const BATCH: i64 = 500;

/// What one purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Files deleted.
    pub deleted: usize,
    /// Recordings whose file was already gone (marked purged all the same).
    pub already_missing: usize,
    /// Recordings left alone: the stored path is outside the recordings folder or the file
    /// could not be deleted (logged; tried again next time).
    pub kept: usize,
}

/// Why a purge did not run to the end; says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// The folder is missing (an unmounted volume?): nothing is marked purged, since the
    /// files may still exist.
    #[error(
        "recordings folder {}: {source}; nothing purged — check that it exists and is mounted",
        path.display()
    )]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Deletes the recordings of calls that arrived more than `keep` before `now`, and marks
/// them purged.
pub async fn purge_expired(
    store: &Store,
    recordings_dir: &Path,
    keep: TimeDelta,
    now: DateTime<Utc>,
) -> Result<PurgeReport, PurgeError> {
    let mut report = PurgeReport::default();
    let folder = recordings_dir
        .canonicalize()
        .map_err(|source| PurgeError::Folder {
            path: recordings_dir.to_path_buf(),
            source,
        })?;
    loop {
        let due = store.expired_recordings(now - keep, BATCH).await?;
        let mut purged = Vec::with_capacity(due.len());
        for recording in &due {
            let Some(path) = inside_folder(recordings_dir, &folder, &recording.recording_file)
            else {
                report.kept += 1;
                tracing::error!(
                    call_id = %mask_phone_runs(&recording.call_id),
                    "recording path is outside the recordings folder; not deleting it — \
                     delete it by hand and fix the call row"
                );
                continue;
            };
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    report.deleted += 1;
                    purged.push(recording.call_id.clone());
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    report.already_missing += 1;
                    purged.push(recording.call_id.clone());
                }
                Err(err) => {
                    report.kept += 1;
                    tracing::error!(
                        file = %path.display(),
                        error = %err,
                        "cannot delete an expired recording; check the folder's permissions"
                    );
                }
            }
        }
        let marked = store.mark_recordings_purged(&purged, now).await?;
        // A full batch with progress may have more behind it; one without progress is all
        // recordings that must stay, and asking again would return them again.
        if (due.len() as i64) < BATCH || marked == 0 {
            return Ok(report);
        }
    }
}

/// The file a stored recording path names, when it is a `.wav` directly in the recordings
/// folder (`folder` is that folder canonicalised).
fn inside_folder(recordings_dir: &Path, folder: &Path, stored: &str) -> Option<PathBuf> {
    let path = Path::new(stored);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        recordings_dir.join(path)
    };
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    if path.extension().and_then(|e| e.to_str()) != Some("wav") {
        return None;
    }
    let name = path.file_name()?;
    let parent = path.parent()?.canonicalize().ok()?;
    (parent == folder).then(|| folder.join(name))
}

/// Runs [`purge_expired`] every `retention.purge_interval_minutes` (the first run at once)
/// until the task is aborted. Returns at once when recordings are kept forever.
pub async fn run_purge_loop(store: Store, recordings_dir: PathBuf, retention: RetentionConfig) {
    let Some(keep) = retention.recordings() else {
        return;
    };
    let mut tick = tokio::time::interval(retention.purge_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match purge_expired(&store, &recordings_dir, keep, Utc::now()).await {
            Ok(report) if report == PurgeReport::default() => {}
            Ok(report) => {
                super::metrics::global().recordings_purged(report.deleted as u64);
                tracing::info!(
                    deleted = report.deleted,
                    already_missing = report.already_missing,
                    kept = report.kept,
                    "purged expired call recordings"
                )
            }
            Err(err) => tracing::warn!(
                error = %err,
                "recording purge failed; trying again at the next interval"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wav_files_directly_in_the_folder_are_deletable() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().canonicalize().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let inside = |stored: &str| inside_folder(dir.path(), &folder, stored);
        assert_eq!(inside("a.wav"), Some(folder.join("a.wav")));
        let absolute = folder.join("b.wav");
        assert_eq!(inside(absolute.to_str().unwrap()), Some(absolute.clone()));
        assert_eq!(inside("../a.wav"), None);
        assert_eq!(inside("sub/../a.wav"), None);
        assert_eq!(inside("sub/a.wav"), None);
        assert_eq!(inside("/etc/passwd"), None);
        assert_eq!(inside("a.txt"), None);
    }
}
