//! The recording writer: one thread for the process (named `recorder`, started on first use)
//! that does all the file work of call recordings — creating the file (mode 0600, never
//! overwriting a name), appending the blocks of interleaved samples the media workers hand
//! over, rewriting the WAV header after every block and finalising the file — and reports the
//! outcome on the recorded session's own event channel.
//!
//! Why a thread of its own: creating a file (inode allocation), writing and rewriting the
//! header can block on the disk, and on a media worker that stalls every call the worker
//! drives (late prompts, keys misrouted). The media side ([`super::recorder::CallRecorder`])
//! only places audio in memory and hands over one block per second of audio through an
//! unbounded channel, so it never waits for the disk; each block is written with one
//! `write`, not sample by sample.
//!
//! Crash safety: a block is at most one second of audio and the header is rewritten after
//! each, so a killed daemon leaves a file that plays up to about the last second handed over;
//! [`super::recorder::repair_unfinished`] fixes the rest at start-up.
//!
//! Events: `RecordingStarted` (with the actual file name), `RecordingFinished` and
//! `CommandFailed` (create, write or finalise errors) are sent by this thread on a clone of
//! the session's event sender, which it keeps until the file is finalised (or has failed):
//! the session's event channel therefore closes only after its recording is complete, which
//! is what `MediaSession::close` promises its owner. After an error the recording's later
//! blocks are dropped and its `failed` flag tells the media side to stop recording.
//!
//! Owns the recording files while they are written; must not decide what goes into them
//! (the placement of audio on the media clock is the media side's).

use super::recorder::{RecorderError, SAMPLE_RATE};
use super::session::MediaEvent;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use tokio::sync::mpsc::UnboundedSender;

const CHANNELS: u16 = 2;
const BYTES_PER_FRAME: u32 = 2 * CHANNELS as u32;
/// A PCM WAV header (RIFF, a 16-byte fmt chunk, the data chunk's header).
const HEADER_LEN: u64 = 44;
/// Where the RIFF size and the data size sit in the header.
const RIFF_SIZE_AT: u64 = 4;
const DATA_SIZE_AT: u64 = 40;

/// What the media side asks of the writer, per recording (told apart by `id`).
pub(super) enum Job {
    /// Create the file for `path` (or a `-2`, `-3`, … variant) and report on `events`.
    Start {
        id: u64,
        path: PathBuf,
        events: UnboundedSender<MediaEvent>,
        /// Set by the writer when the recording failed (the media side stops recording).
        failed: Arc<AtomicBool>,
        /// Written blocks go back here for reuse.
        spent: mpsc::Sender<Vec<i16>>,
    },
    /// Append these interleaved stereo samples (left, right, left, …), then update the header.
    Block { id: u64, samples: Vec<i16> },
    /// Finalise the file and report it finished.
    Finish { id: u64 },
}

/// The writer's job queue, its thread started on the first call.
pub(super) fn jobs() -> std::io::Result<&'static mpsc::Sender<Job>> {
    static JOBS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(jobs) = JOBS.get() {
        return Ok(jobs);
    }
    // Only one caller starts the thread; the others wait and take its queue.
    let _starting = START.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(jobs) = JOBS.get() {
        return Ok(jobs);
    }
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || {
            // Started from a media worker, it would inherit its real-time priority: disk
            // work must not take the CPU from the media (nor from the signalling).
            super::workers::set_normal_scheduling();
            run(receiver)
        })?;
    Ok(JOBS.get_or_init(|| sender))
}

/// A recording being written.
struct Open {
    file: WavFile,
    events: UnboundedSender<MediaEvent>,
    failed: Arc<AtomicBool>,
    spent: mpsc::Sender<Vec<i16>>,
}

/// Tells the media side to stop recording and the owner why.
fn report_failure(failed: &AtomicBool, events: &UnboundedSender<MediaEvent>, error: RecorderError) {
    failed.store(true, Ordering::Relaxed);
    // The owner may already be gone: nothing left to tell.
    let _ = events.send(MediaEvent::CommandFailed(error.to_string()));
}

fn run(jobs: mpsc::Receiver<Job>) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    let mut bytes = Vec::new();
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Start {
                id,
                path,
                events,
                failed,
                spent,
            } => match WavFile::create(&path) {
                Ok(file) => {
                    let _ = events.send(MediaEvent::RecordingStarted(file.path.clone()));
                    open.insert(
                        id,
                        Open {
                            file,
                            events,
                            failed,
                            spent,
                        },
                    );
                }
                Err(error) => report_failure(&failed, &events, error),
            },
            Job::Block { id, samples } => {
                // A recording that failed is no longer open: its blocks are dropped.
                let Some(recording) = open.get_mut(&id) else {
                    continue;
                };
                let written = recording
                    .file
                    .append(&samples, &mut bytes)
                    .and_then(|()| recording.file.update_header());
                // The media side may have stopped (or failed): then the buffer is just freed.
                let _ = recording.spent.send(samples);
                if let Err(error) = written
                    && let Some(recording) = open.remove(&id)
                {
                    report_failure(&recording.failed, &recording.events, error);
                }
            }
            Job::Finish { id } => {
                if let Some(Open {
                    file,
                    events,
                    failed,
                    ..
                }) = open.remove(&id)
                {
                    match file.finalize() {
                        Ok(path) => {
                            let _ = events.send(MediaEvent::RecordingFinished(path));
                        }
                        Err(error) => report_failure(&failed, &events, error),
                    }
                }
            }
        }
    }
}

/// A stereo 8 kHz 16-bit PCM WAV file being written (sync; the writer thread's file work).
pub(super) struct WavFile {
    path: PathBuf,
    file: File,
    /// Bytes of samples written after the header.
    data_len: u32,
}

impl WavFile {
    /// Creates the file at `path` (mode 0600; never overwrites: an existing name gets a
    /// `-2`, `-3`, … suffix) with the header of an empty recording.
    pub(super) fn create(path: &Path) -> Result<WavFile, RecorderError> {
        let (path, mut file) = create_unique(path)?;
        if let Err(error) = file.write_all(&empty_header()) {
            return Err(write_error(&path, &error));
        }
        Ok(WavFile {
            path,
            file,
            data_len: 0,
        })
    }

    /// Appends interleaved stereo samples in one write (`bytes` is a reusable buffer).
    pub(super) fn append(
        &mut self,
        samples: &[i16],
        bytes: &mut Vec<u8>,
    ) -> Result<(), RecorderError> {
        let data_len = u32::try_from(samples.len() * 2)
            .ok()
            .and_then(|len| self.data_len.checked_add(len))
            .filter(|&len| u64::from(len) + HEADER_LEN - 8 <= u64::from(u32::MAX));
        let Some(data_len) = data_len else {
            return Err(RecorderError::Write {
                path: self.path.clone(),
                reason: "a WAV file cannot hold more than 4 GiB".into(),
            });
        };
        bytes.clear();
        bytes.extend(samples.iter().flat_map(|sample| sample.to_le_bytes()));
        self.file
            .write_all(bytes)
            .map_err(|error| write_error(&self.path, &error))?;
        self.data_len = data_len;
        Ok(())
    }

    /// Rewrites the header's sizes to cover everything appended so far, so the file plays
    /// to here even if the process dies now.
    pub(super) fn update_header(&self) -> Result<(), RecorderError> {
        let riff_size = self.data_len + (HEADER_LEN - 8) as u32;
        self.file
            .write_all_at(&riff_size.to_le_bytes(), RIFF_SIZE_AT)
            .and_then(|()| {
                self.file
                    .write_all_at(&self.data_len.to_le_bytes(), DATA_SIZE_AT)
            })
            .map_err(|error| write_error(&self.path, &error))
    }

    /// Writes the final header and closes the file; returns its path.
    pub(super) fn finalize(self) -> Result<PathBuf, RecorderError> {
        self.update_header()?;
        Ok(self.path)
    }
}

/// The header of a file without samples (the sizes are updated as blocks are appended).
fn empty_header() -> [u8; HEADER_LEN as usize] {
    let mut header = [0u8; HEADER_LEN as usize];
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &((HEADER_LEN - 8) as u32).to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(),
        // PCM
        &1u16.to_le_bytes(),
        &CHANNELS.to_le_bytes(),
        &SAMPLE_RATE.to_le_bytes(),
        &(SAMPLE_RATE * BYTES_PER_FRAME).to_le_bytes(),
        &(BYTES_PER_FRAME as u16).to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &0u32.to_le_bytes(),
    ];
    let mut at = 0;
    for field in fields {
        header[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    header
}

fn write_error(path: &Path, error: &std::io::Error) -> RecorderError {
    RecorderError::Write {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

fn create_unique(path: &Path) -> Result<(PathBuf, File), RecorderError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("call")
        .to_owned();
    let mut candidate = path.to_path_buf();
    for attempt in 2..=100 {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(file) => return Ok((candidate, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                candidate = path.with_file_name(format!("{stem}-{attempt}.wav"));
            }
            Err(source) => {
                return Err(RecorderError::Create {
                    path: candidate,
                    source,
                });
            }
        }
    }
    Err(RecorderError::Create {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "99 recordings with this name exist",
        ),
    })
}
