//! The call journal: every write the call path makes (call rows, the draft ticket, IVR path and
//! category, consent, recording, call end) goes through [`CallJournal::record`], which never
//! waits on the database. A [`JournalWriter`] task writes the records to PostgreSQL in order;
//! while PostgreSQL is unreachable it keeps them in a durable spool file under
//! `<state_dir>/spool/` and replays that file, in order, before anything newer once the
//! database answers again.
//!
//! Owns the spool file format and the writer (the records and their SQL are in
//! `call_records`); must not decide call flow or ticket rules.
//!
//! Spool format: append-only `journal.spool`, one frame per record (see [`frames`]): a
//! marker, `len: u32 LE`, `crc32c(payload): u32 LE`, `payload` (JSON). A crash can
//! leave a torn last frame; opening the spool cuts it off, so a torn record is dropped, never
//! misread. Damage in the middle (a bad sector, a stray write) costs only the frames it hits:
//! the reader re-synchronises on the next marker whose frame checks out, counts and logs the
//! bytes it skipped, and keeps every good record after them. Frames without the marker
//! (spools written before it existed) are still read. The spool holds names, numbers and
//! addresses: the file is mode 0600 in a 0700 folder.
//!
//! Durability trade-off: no fsync per record, group fsyncs instead. While PostgreSQL is
//! healthy a record waits in memory only until the writer's next insert (a daemon crash then
//! loses at most those few, which belong to calls the crash drops anyway). The first failed
//! write moves everything waiting to disk (one `fdatasync` per batch); while the database is
//! down, the writer spills on every wake-up — also while a reconnect probe waits for the
//! store's acquire timeout — and [`CallJournal::record`] spills itself once
//! [`JournalOptions::memory_limit`] records wait. An fsync per record from the call path would
//! put disk latency into every call event for no gain. [`CallJournal::durable`] tells the call
//! layer when a record is in PostgreSQL or fsynced in the spool.
//!
//! Exactly once: every record carries a journal-wide increasing sequence number; applying it
//! stores the number per call (`call_journal_applied`) in the same transaction, so a record
//! replayed again (after a crash during replay, or a spool replayed twice) is skipped. The
//! draft ticket is created with `request_id = "call:<id>"`, which makes that create
//! idempotent on its own. Once the spool is empty nothing older can be replayed, so guards
//! older than [`GUARD_RETENTION`] are pruned then.
//!
//! Crash recovery: call rows a stopped daemon left open (no `ended_at`) are closed as
//! `interrupted`, with `ended_at` = when this run started, once the spool the earlier run
//! left has been replayed (its records may end some of those calls properly). Their draft
//! tickets stay. A category change recomputes the draft's deadlines in the same
//! transaction as its sequence number.

use super::call_records::{CallEntry, CallWrite, Disposition};
use super::desk::TicketRef;
use super::frames::{self, Decoded};
use super::{Store, StoreError};
use crate::logging::mask_phone_runs;
use crate::tickets::Rules;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// File name of the spool inside the spool folder.
pub const SPOOL_FILE: &str = "journal.spool";
/// Replay guards untouched this long are pruned when the spool is empty.
pub const GUARD_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// One journal record as spooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct JournalRecord {
    pub(super) seq: u64,
    pub(super) call_id: String,
    pub(super) write: CallWrite,
}

fn encode_frame(record: &JournalRecord, out: &mut Vec<u8>) {
    // Serialising plain strings, numbers and timestamps cannot fail.
    let payload = serde_json::to_vec(record).unwrap_or_default();
    frames::encode_frame(&payload, out);
}

/// A frame read back: the record (`None` when the checksum holds but the payload is not a
/// record this version understands) and where the frame ends.
struct Frame {
    record: Option<JournalRecord>,
    end: u64,
    /// Damaged bytes skipped right before this frame.
    skipped_before: usize,
}

/// Reads the records of `bytes` (which start at file offset `base`), past damage; see
/// [`frames::decode_frames`].
fn decode_frames(bytes: &[u8], base: u64) -> Decoded<Frame> {
    frames::decode_frames(bytes, |raw| Frame {
        record: serde_json::from_slice(raw.payload).ok(),
        end: base + raw.end as u64,
        skipped_before: raw.skipped_before,
    })
}

/// Why the journal could not open its spool; says what to do.
#[derive(Debug, thiserror::Error)]
#[error("call journal spool {path}: {source}; check that daemon.state_dir is writable")]
pub struct JournalError {
    path: PathBuf,
    source: std::io::Error,
}

/// The append-only spool file.
struct SpoolFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl SpoolFile {
    /// Opens (creating) the spool and cuts off a torn tail. Returns the file, how many bytes
    /// were cut and the highest sequence number spooled (0 when empty).
    fn open(dir: &Path) -> Result<(SpoolFile, u64, u64), JournalError> {
        let path = dir.join(SPOOL_FILE);
        let fail = |source| JournalError {
            path: path.clone(),
            source,
        };
        crate::files::create_private_dir(dir).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(fail)?;
        // A file made by an earlier version may be wider: narrow it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(fail)?;
        let decoded = decode_frames(&bytes, 0);
        let intact = decoded.intact;
        if decoded.skipped_bytes > 0 {
            tracing::warn!(
                spool = %path.display(),
                bytes = decoded.skipped_bytes,
                places = decoded.damaged_regions,
                records_kept = decoded.frames.len(),
                "the call journal spool is damaged in the middle; the damaged records will be \
                 skipped and every good record replayed"
            );
        }
        let last_seq = decoded
            .frames
            .iter()
            .filter_map(|f| f.record.as_ref().map(|r| r.seq))
            .max()
            .unwrap_or(0);
        let cut = (bytes.len() - intact) as u64;
        if cut > 0 {
            file.set_len(intact as u64).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        Ok((
            SpoolFile {
                path,
                file,
                len: intact as u64,
            },
            cut,
            last_seq,
        ))
    }

    /// Appends whole frames and fsyncs. On failure the file is cut back to where it was, so a
    /// half-written frame never sits before later ones.
    fn append(&mut self, frames: &[u8]) -> std::io::Result<()> {
        let result = self
            .file
            .write_all_at(frames, self.len)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += frames.len() as u64;
                Ok(())
            }
            Err(err) => {
                let _ = self.file.set_len(self.len);
                Err(err)
            }
        }
    }

    fn read_range(&self, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0; usize::try_from(to - from).unwrap_or(0)];
        self.file.read_exact_at(&mut bytes, from)?;
        Ok(bytes)
    }

    /// Compaction: every record is in the database, start the file over.
    fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }
}

/// Tuning of the journal.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Records waiting in memory beyond which [`CallJournal::record`] spills them to disk
    /// itself.
    pub memory_limit: usize,
    /// How long the writer waits before trying an unreachable database again.
    pub retry_interval: Duration,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            memory_limit: 1024,
            retry_interval: Duration::from_secs(2),
        }
    }
}

struct Inner {
    queue: VecDeque<JournalRecord>,
    spool: SpoolFile,
    next_seq: u64,
}

impl Inner {
    /// Moves every record waiting in memory to the spool (one fsync). Returns the highest
    /// sequence number now on disk. On failure the records stay in memory.
    fn spill(&mut self) -> std::io::Result<Option<u64>> {
        let Some(last) = self.queue.back().map(|r| r.seq) else {
            return Ok(None);
        };
        let mut frames = Vec::new();
        for record in &self.queue {
            encode_frame(record, &mut frames);
        }
        self.spool.append(&frames)?;
        self.queue.clear();
        Ok(Some(last))
    }
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    /// Highest sequence number that is in PostgreSQL or fsynced in the spool (records are
    /// handled in order, so every lower one is too).
    durable: watch::Sender<u64>,
    /// Highest sequence number written to PostgreSQL (or refused by it and logged).
    applied: watch::Sender<u64>,
    /// Damaged spool bytes skipped at replay since the journal opened.
    skipped_bytes: AtomicU64,
    options: JournalOptions,
    /// Told of every entry as it is recorded (metrics); set once.
    observer: OnceLock<JournalObserver>,
}

/// Sees each entry as [`CallJournal::record`] takes it, with its call id, on the call path:
/// must be quick and must not block.
pub type JournalObserver = Box<dyn Fn(&str, &CallEntry) + Send + Sync>;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data: every change to
        // `Inner` completes before anything that can panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark_durable(&self, seq: u64) {
        raise(&self.durable, seq);
    }

    /// `seq` is in PostgreSQL, so it is durable too.
    fn mark_applied(&self, seq: u64) {
        raise(&self.applied, seq);
        raise(&self.durable, seq);
    }

    /// Moves every record waiting in memory to the spool (at shutdown: the next start
    /// replays it).
    fn spill_all(&self) {
        let mut inner = self.lock();
        self.spill(&mut inner);
    }

    fn spill(&self, inner: &mut Inner) {
        match inner.spill() {
            Ok(Some(seq)) => self.mark_durable(seq),
            Ok(None) => {}
            Err(err) => tracing::error!(
                spool = %inner.spool.path.display(),
                error = %err,
                "cannot write the call journal spool; call records stay in memory only until \
                 it works again: check free disk space and permissions"
            ),
        }
    }
}

/// Raises a watermark; never lowers it.
fn raise(mark: &watch::Sender<u64>, seq: u64) {
    mark.send_if_modified(|current| {
        let newer = seq > *current;
        if newer {
            *current = seq;
        }
        newer
    });
}

/// Most records written in one transaction.
const MAX_BATCH: usize = 256;

/// The records to write next: the oldest, at most [`MAX_BATCH`]. One commit per batch
/// instead of one per record is what lets the journal keep up with thousands of calls.
fn next_batch(queue: &VecDeque<JournalRecord>) -> Vec<JournalRecord> {
    queue.iter().take(MAX_BATCH).cloned().collect()
}

/// The call path's handle on the journal. Cheap to clone; never waits on the database.
#[derive(Clone)]
pub struct CallJournal {
    shared: Arc<Shared>,
}

/// Told, with the call id, after a journal record changed the call's ticket (created the
/// draft, its category, an entry on it, the survey rating): the agents' desktops hear of it.
pub type TicketWritten = Arc<dyn Fn(&str, &TicketRef) + Send + Sync>;

/// The task that writes journal records to PostgreSQL or the spool; run it with
/// `tokio::spawn(writer.run(shutdown))`.
pub struct JournalWriter {
    shared: Arc<Shared>,
    store: Store,
    /// The deadlines of draft tickets.
    rules: Arc<Rules>,
    /// End of the spool prefix already written to the database.
    replayed: u64,
    down: bool,
    /// When this run started, until the call rows an earlier run left open are closed.
    close_open_calls: Option<DateTime<Utc>>,
    ticket_written: Option<TicketWritten>,
}

impl CallJournal {
    /// Opens the journal on the spool folder (`<state_dir>/spool`), cutting off a torn tail a
    /// crash may have left; records spooled by an earlier run are replayed first. `rules`
    /// give draft tickets their deadlines.
    pub fn open(
        spool_dir: &Path,
        store: Store,
        rules: Arc<Rules>,
    ) -> Result<(CallJournal, JournalWriter), JournalError> {
        CallJournal::open_with(spool_dir, store, rules, JournalOptions::default())
    }

    /// [`CallJournal::open`] with explicit options.
    pub fn open_with(
        spool_dir: &Path,
        store: Store,
        rules: Arc<Rules>,
        options: JournalOptions,
    ) -> Result<(CallJournal, JournalWriter), JournalError> {
        let (spool, cut, last_spooled) = SpoolFile::open(spool_dir)?;
        if cut > 0 {
            tracing::warn!(
                spool = %spool.path.display(),
                bytes = cut,
                "the call journal spool ended in a torn record (a crash while writing it); \
                 dropped the torn tail, replaying the intact records"
            );
        }
        // Sequence numbers must grow across restarts too, so start above both the clock and
        // whatever is still spooled.
        let clock = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        let next_seq = clock.max(last_spooled + 1);
        let (durable, _) = watch::channel(next_seq - 1);
        let (applied, _) = watch::channel(next_seq - 1);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                spool,
                next_seq,
            }),
            wake: Notify::new(),
            durable,
            applied,
            skipped_bytes: AtomicU64::new(0),
            options,
            observer: OnceLock::new(),
        });
        let writer = JournalWriter {
            shared: shared.clone(),
            store,
            rules,
            replayed: 0,
            down: false,
            close_open_calls: Some(Utc::now()),
            ticket_written: None,
        };
        Ok((CallJournal { shared }, writer))
    }

    /// Records `entry` for `call_id` and returns its sequence number. Never waits on the
    /// database; when too many records wait in memory it writes them to the spool (disk only).
    pub fn record(&self, call_id: &str, entry: CallEntry) -> u64 {
        if let Some(observe) = self.shared.observer.get() {
            observe(call_id, &entry);
        }
        let write = CallWrite::from(entry);
        let mut inner = self.shared.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.queue.push_back(JournalRecord {
            seq,
            call_id: call_id.to_owned(),
            write,
        });
        if inner.queue.len() > self.shared.options.memory_limit {
            self.shared.spill(&mut inner);
        }
        drop(inner);
        self.shared.wake.notify_one();
        seq
    }

    /// Waits until the record `seq` (and every earlier one) is in PostgreSQL or fsynced in the
    /// spool. Returns at once for a record already safe.
    pub async fn durable(&self, seq: u64) {
        let mut durable = self.shared.durable.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = durable.wait_for(|done| *done >= seq).await;
    }

    /// Waits until every record made so far is written to PostgreSQL (or refused by it and
    /// logged). Waits through an outage: for tests and an orderly shutdown (with a timeout).
    pub async fn flush(&self) {
        let last = self.shared.lock().next_seq - 1;
        let mut applied = self.shared.applied.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = applied.wait_for(|done| *done >= last).await;
    }

    /// Damaged spool bytes skipped at replay since the journal opened (each skip is logged).
    pub fn skipped_bytes(&self) -> u64 {
        self.shared.skipped_bytes.load(Ordering::Relaxed)
    }

    /// Has `observer` told of every entry from now on. Only the first observer set counts;
    /// returns whether this one was.
    pub fn observe(&self, observer: JournalObserver) -> bool {
        self.shared.observer.set(observer).is_ok()
    }

    /// Records waiting in memory for the writer (not yet in PostgreSQL nor the spool).
    pub fn queued_records(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Bytes in the spool file (records waiting for the database), for health reporting.
    pub fn spooled_bytes(&self) -> u64 {
        self.shared.lock().spool.len
    }
}

/// What one step of the writer came to.
enum Step {
    /// Wrote something; look again at once.
    Progress,
    /// Nothing waits.
    Idle,
    /// The database is unreachable; everything waiting is spooled.
    Down,
}

impl JournalWriter {
    /// Calls `hook` after each record that changed a call's ticket.
    pub fn on_ticket_written(mut self, hook: TicketWritten) -> JournalWriter {
        self.ticket_written = Some(hook);
        self
    }

    /// Writes records until `shutdown` completes, then moves whatever still waits in memory
    /// to the spool, so the next start replays it.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let shared = self.shared.clone();
        loop {
            // While the database is down, a probe may take the store's acquire timeout; new
            // records go to disk meanwhile instead of waiting for it. Spilling under a running
            // step is safe: a spilled record the step writes too is skipped at replay.
            let spill_on_wake = self.down;
            let step = {
                let step = self.step();
                tokio::pin!(step);
                loop {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => {
                            shared.spill_all();
                            return;
                        }
                        step = &mut step => break step,
                        () = shared.wake.notified(), if spill_on_wake => shared.spill_all(),
                    }
                }
            };
            match step {
                Step::Progress => {}
                Step::Idle => {
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = shared.wake.notified() => {}
                    }
                }
                Step::Down => {
                    if !self.down {
                        self.down = true;
                        tracing::warn!(
                            spool = %shared.lock().spool.path.display(),
                            "PostgreSQL is unreachable; calls go on and their records are \
                             spooled to disk until it answers again"
                        );
                    }
                    let retry = tokio::time::sleep(shared.options.retry_interval);
                    tokio::pin!(retry);
                    loop {
                        tokio::select! {
                            () = &mut shutdown => {
                                shared.spill_all();
                                return;
                            }
                            () = &mut retry => break,
                            // New records while down go to disk at once.
                            () = shared.wake.notified() => shared.spill_all(),
                        }
                    }
                }
            }
        }
        shared.spill_all();
    }

    async fn step(&mut self) -> Step {
        let (spool_len, batch) = {
            let inner = self.shared.lock();
            (inner.spool.len, next_batch(&inner.queue))
        };
        if spool_len > self.replayed {
            return self.replay_spool(spool_len).await;
        }
        if let Some(started) = self.close_open_calls {
            return self.close_interrupted_calls(started).await;
        }
        if spool_len > 0 {
            // Everything spooled is in the database: compact.
            let compacted = {
                let mut inner = self.shared.lock();
                inner.spool.len == self.replayed
                    && match inner.spool.clear() {
                        Ok(()) => true,
                        Err(err) => {
                            tracing::error!(spool = %inner.spool.path.display(), error = %err,
                                "cannot truncate the replayed call journal spool; it will be \
                                 replayed again (harmless) after a restart: check the disk");
                            false
                        }
                    }
            };
            if compacted {
                self.replayed = 0;
                self.prune_guards().await;
            }
            return Step::Progress;
        }
        let Some(last) = batch.last().map(|record| record.seq) else {
            return Step::Idle;
        };
        match self.apply_batch(&batch).await {
            Ok(()) => {
                let mut inner = self.shared.lock();
                // The records may have been spilled meanwhile; their spooled copies are
                // skipped at replay (sequence guard).
                while inner.queue.front().is_some_and(|r| r.seq <= last) {
                    inner.queue.pop_front();
                }
                drop(inner);
                self.shared.mark_applied(last);
                Step::Progress
            }
            Err(()) => {
                self.shared.spill_all();
                Step::Down
            }
        }
    }

    /// Writes records taken by [`next_batch`] in one transaction. A batch the database
    /// refuses is written again record by record, so that only the refused record is skipped
    /// (and logged).
    async fn apply_batch(&mut self, batch: &[JournalRecord]) -> Result<(), ()> {
        if let [record] = batch {
            return self.apply(record).await;
        }
        match self.store.apply_journal_batch(batch, &self.rules).await {
            Ok(changed) => {
                self.tell_ticket_written(&changed);
                Ok(())
            }
            Err(StoreError::Unavailable(_)) => Err(()),
            Err(_) => {
                for record in batch {
                    self.apply(record).await?;
                }
                Ok(())
            }
        }
    }

    /// Writes the spooled records after `self.replayed` up to `to`, in file order.
    async fn replay_spool(&mut self, to: u64) -> Step {
        let bytes = {
            let inner = self.shared.lock();
            inner.spool.read_range(self.replayed, to)
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the call journal spool; retrying");
                return Step::Down;
            }
        };
        let decoded = decode_frames(&bytes, self.replayed);
        let count = decoded.frames.len();
        // Written in batches like the records in memory: one commit per record could not
        // keep up with the calls still recording, and the spool would only grow.
        let mut batch = Vec::new();
        let mut batch_end = self.replayed;
        for frame in decoded.frames {
            if frame.skipped_before > 0 {
                if self.replay_batch(&mut batch, batch_end).await.is_err() {
                    return Step::Down;
                }
                self.skip_damage(frame.skipped_before);
            }
            match frame.record {
                Some(record) => batch.push(record),
                None => tracing::error!(
                    offset = batch_end,
                    "skipping a call journal record this version cannot read"
                ),
            }
            batch_end = frame.end;
            if batch.len() >= MAX_BATCH && self.replay_batch(&mut batch, batch_end).await.is_err() {
                return Step::Down;
            }
        }
        if self.replay_batch(&mut batch, batch_end).await.is_err() {
            return Step::Down;
        }
        // Damage after the last good frame of the range (opening cuts a torn tail, so this
        // is damage that happened while the spool was open).
        if self.replayed < to {
            self.skip_damage(usize::try_from(to - self.replayed).unwrap_or(usize::MAX));
            self.replayed = to;
        }
        if self.down {
            self.down = false;
            tracing::info!(
                records = count,
                "PostgreSQL is back; replayed the call journal spool"
            );
        }
        Step::Progress
    }

    /// Writes spooled records (taken from the spool up to `end`) and moves the replay mark
    /// to `end`; `Err` when the database is unreachable (nothing is marked).
    async fn replay_batch(&mut self, batch: &mut Vec<JournalRecord>, end: u64) -> Result<(), ()> {
        if !batch.is_empty() {
            self.apply_batch(batch).await?;
            if let Some(last) = batch.iter().map(|record| record.seq).max() {
                self.shared.mark_applied(last);
            }
            batch.clear();
        }
        self.replayed = end;
        Ok(())
    }

    /// Closes the call rows an earlier run left open (arrived before `started`).
    async fn close_interrupted_calls(&mut self, started: DateTime<Utc>) -> Step {
        let began = std::time::Instant::now();
        match self.store.close_interrupted_calls(started).await {
            Ok(closed) => {
                if closed > 0 {
                    tracing::warn!(
                        calls = closed,
                        took_ms = began.elapsed().as_millis() as u64,
                        "closed the call records the previous run left open (it stopped \
                         without ending them): disposition interrupted; their draft tickets \
                         stay"
                    );
                }
            }
            Err(StoreError::Unavailable(_)) => return Step::Down,
            Err(err) => tracing::error!(
                error = %err,
                "cannot close the call records the previous run left open; they stay open"
            ),
        }
        self.close_open_calls = None;
        Step::Progress
    }

    /// Drops replay guards nothing can need any more (the spool is empty).
    async fn prune_guards(&self) {
        match self.store.prune_journal_guards(GUARD_RETENTION).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned call journal replay guards"),
            // Harmless: tried again at the next compaction.
            Err(err) => tracing::warn!(error = %err, "cannot prune call journal replay guards"),
        }
    }

    /// Counts and logs `bytes` of damaged spool skipped just before `self.replayed`.
    fn skip_damage(&self, bytes: usize) {
        let total = self
            .shared
            .skipped_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed)
            + bytes as u64;
        tracing::error!(
            spool = %self.shared.lock().spool.path.display(),
            offset = self.replayed,
            bytes,
            total_skipped_bytes = total,
            "the call journal spool is damaged here: skipped the damaged bytes, going on with \
             the next good record; the calls written there may miss some details"
        );
    }

    /// Tells the desktops of the tickets a written batch changed, in order.
    fn tell_ticket_written(&self, changed: &[(String, TicketRef)]) {
        if let Some(written) = &self.ticket_written {
            for (call_id, ticket) in changed {
                written(call_id, ticket);
            }
        }
    }

    /// Writes one record. `Err` only when the database is unreachable (try again later); a
    /// record the database refuses is logged and skipped, so that it cannot block the rest.
    async fn apply(&mut self, record: &JournalRecord) -> Result<(), ()> {
        match self
            .store
            .apply_journal_batch(std::slice::from_ref(record), &self.rules)
            .await
        {
            Ok(changed) => {
                self.tell_ticket_written(&changed);
                Ok(())
            }
            Err(StoreError::Unavailable(_)) => Err(()),
            Err(err) => {
                tracing::error!(
                    call_id = %mask_phone_runs(&record.call_id),
                    seq = record.seq,
                    error = %mask_phone_runs(&err.to_string()),
                    "the database refused a call journal record; skipped it"
                );
                Ok(())
            }
        }
    }
}

impl Store {
    /// Closes every call row that arrived before `started` and has not ended: `ended_at` =
    /// `started`, disposition `interrupted`. Returns how many.
    pub async fn close_interrupted_calls(&self, started: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE calls SET ended_at = $1, disposition = $2 \
             WHERE ended_at IS NULL AND arrived_at < $1",
        )
        .bind(started)
        .bind(Disposition::Interrupted.code())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Deletes call journal replay guards untouched for `age`. Only when no spooled record
    /// can still be replayed. Returns how many.
    pub async fn prune_journal_guards(&self, age: Duration) -> Result<u64, StoreError> {
        let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        let result = sqlx::query("DELETE FROM call_journal_applied WHERE applied_at < $1")
            .bind(Utc::now() - age)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, step: &str) -> JournalRecord {
        JournalRecord {
            seq,
            call_id: "c1@pbx".into(),
            write: CallWrite::PathStep { step: step.into() },
        }
    }

    #[test]
    fn a_torn_tail_is_dropped_at_every_cut_and_never_misread() {
        let records: Vec<JournalRecord> =
            (1..=4).map(|i| record(i, &format!("menu_{i}:1"))).collect();
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for r in &records {
            encode_frame(r, &mut bytes);
            ends.push(bytes.len());
        }
        for cut in 0..=bytes.len() {
            let Decoded { frames, intact, .. } = decode_frames(&bytes[..cut], 0);
            let whole = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(frames.len(), whole, "cut at {cut}");
            assert_eq!(intact, if whole == 0 { 0 } else { ends[whole - 1] });
            for (frame, expected) in frames.iter().zip(&records) {
                assert_eq!(frame.record.as_ref(), Some(expected));
            }
        }
    }

    #[test]
    fn damage_in_the_middle_costs_only_the_frames_it_hits() {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for seq in 1..=4 {
            encode_frame(&record(seq, &format!("step_{seq}")), &mut bytes);
            ends.push(bytes.len());
        }
        // Every single flipped byte of frame 2 (marker, length, checksum or payload): frames
        // 1, 3 and 4 are kept and exactly frame 2's bytes are skipped.
        for at in ends[0]..ends[1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            let decoded = decode_frames(&damaged, 0);
            let seqs: Vec<u64> = decoded
                .frames
                .iter()
                .filter_map(|f| f.record.as_ref().map(|r| r.seq))
                .collect();
            assert_eq!(seqs, [1, 3, 4], "byte {at} flipped");
            assert_eq!(
                decoded.skipped_bytes,
                ends[1] - ends[0],
                "byte {at} flipped"
            );
            assert_eq!(decoded.damaged_regions, 1);
            assert_eq!(decoded.frames[1].skipped_before, ends[1] - ends[0]);
            assert_eq!(decoded.intact, bytes.len());
        }
        // Garbage inserted between frames is skipped too.
        let mut inserted = bytes[..ends[0]].to_vec();
        inserted.extend_from_slice(b"\0\0\0\0garbage\xFFHJ\xFF\x01");
        inserted.extend_from_slice(&bytes[ends[0]..]);
        let decoded = decode_frames(&inserted, 0);
        assert_eq!(decoded.frames.len(), 4);
        assert_eq!(decoded.skipped_bytes, 16);
    }

    #[test]
    fn frames_without_the_marker_are_still_read() {
        // A spool written before frames carried the marker, with newer frames after it.
        let mut bytes = Vec::new();
        for seq in 1..=2 {
            let payload = serde_json::to_vec(&record(seq, "old")).unwrap();
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&frames::CHECKSUM.checksum(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        encode_frame(&record(3, "new"), &mut bytes);
        let decoded = decode_frames(&bytes, 0);
        assert_eq!(decoded.frames.len(), 3);
        assert_eq!(decoded.skipped_bytes, 0);
        assert!(decoded.frames.iter().all(|f| f.record.is_some()));
        // Zero bytes (a filesystem's hole after a crash) are damage, not empty frames.
        let decoded = decode_frames(&[0; 64], 0);
        assert!(decoded.frames.is_empty());
        assert_eq!(decoded.intact, 0);
    }
}
