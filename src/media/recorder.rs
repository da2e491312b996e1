//! Call recording: a stereo 8 kHz 16-bit WAV with the caller on the LEFT channel and the
//! other party (prompts now, the agent later) on the RIGHT, both placed on the session's
//! common media clock (8 kHz sample index), so gaps become silence instead of shortening
//! the file and the two sides stay aligned.
//!
//! What runs where: [`CallRecorder`] is the media side and runs on the call's media worker;
//! it only works in memory — it places each side's audio at its media-clock sample (late
//! audio dropped, bogus far-ahead audio refused) and, as the session advances the recorded
//! point, hands every finished second of interleaved samples to the recording writer thread
//! (`super::recording_writer`), never waiting for it. All file work — creating the file
//! (mode 0600: recordings are personal data; a `-2`, `-3`, … name if taken), writing the
//! blocks, the header update after every block, finalising, and reporting
//! `RecordingStarted`, `RecordingFinished` and errors on the session's event channel — runs
//! on that thread, because any of it can block on the disk and a media worker that waits
//! stalls every call it drives.
//!
//! Crash safety: the WAV header is rewritten after every block (one second of audio), so a
//! killed daemon leaves a file that plays up to about the last second; [`repair_unfinished`]
//! fixes the sizes of such files at start-up, recovering everything that reached the disk.
//!
//! Owns the recordings (the placement of audio here, the files through `recording_writer`);
//! must not decide whether a call may be recorded (consent is the IVR's).

use super::recording_writer::{self, Job};
use super::session::MediaEvent;
use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use tokio::sync::mpsc::UnboundedSender;

pub const SAMPLE_RATE: u32 = 8000;
/// Samples per channel handed to the writer at a time (one second): large blocks, and the
/// header is updated after each, which bounds what a crash loses.
const BLOCK: u64 = SAMPLE_RATE as u64;
/// Audio placed further ahead than this (10 s) is refused: a bogus RTP timestamp must not
/// make the buffer grow without bound.
const MAX_AHEAD: u64 = 10 * SAMPLE_RATE as u64;

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error(
        "cannot create recording {path}: {source}; check media.recordings_dir exists and is writable"
    )]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write recording {path}: {reason}; check free disk space")]
    Write { path: PathBuf, reason: String },
    #[error("cannot record {path}: the recording writer thread is not running ({reason})")]
    Writer { path: PathBuf, reason: String },
    #[error("cannot read the recordings folder {dir}: {source}")]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Which side of the call a piece of audio belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller: left channel.
    Caller,
    /// Prompts or the agent: right channel.
    Other,
}

/// The file name for a call's recording: the call id with anything but `A-Za-z0-9._-`
/// replaced, so a hostile Call-ID cannot leave the folder.
pub fn recording_path(dir: &Path, call_id: &str) -> PathBuf {
    let safe: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    let stem = if safe.is_empty() { "call" } else { safe };
    dir.join(format!("{stem}.wav"))
}

/// One call's recording, media side (see the module doc). Dropping it finalises the file
/// with what was handed over; [`CallRecorder::finish`] hands over the rest first.
pub struct CallRecorder {
    /// The recording's id at the writer.
    id: u64,
    jobs: &'static mpsc::Sender<Job>,
    /// The path asked for (the writer may add a `-2` suffix).
    path: PathBuf,
    /// Media-clock sample where the file starts.
    origin: u64,
    /// Samples per channel handed to the writer.
    handed_over: u64,
    /// Samples per channel that are final: audio for earlier samples is late (dropped).
    /// Between `handed_over` and here they wait for a whole block.
    committed: u64,
    /// Pending samples; index 0 is sample `origin + handed_over`.
    left: VecDeque<i16>,
    right: VecDeque<i16>,
    late_samples: u64,
    /// Set by the writer when the file could not be created or written.
    failed: Arc<AtomicBool>,
    /// Blocks the writer has written, for reuse.
    spent: mpsc::Receiver<Vec<i16>>,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("path", &self.path)
            .field("handed_over", &self.handed_over)
            .finish_non_exhaustive()
    }
}

impl CallRecorder {
    /// Starts recording into `path` from media-clock sample `origin`. The writer thread
    /// creates the file and reports `RecordingStarted` (with the actual name) or
    /// `CommandFailed` on `events`; only a writer thread that cannot run fails here.
    pub fn start(
        path: &Path,
        origin: u64,
        events: UnboundedSender<MediaEvent>,
    ) -> Result<CallRecorder, RecorderError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let writer_error = |reason: String| RecorderError::Writer {
            path: path.to_path_buf(),
            reason,
        };
        let jobs = recording_writer::jobs().map_err(|error| writer_error(error.to_string()))?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let failed = Arc::new(AtomicBool::new(false));
        let (spent_sender, spent) = mpsc::channel();
        jobs.send(Job::Start {
            id,
            path: path.to_path_buf(),
            events,
            failed: failed.clone(),
            spent: spent_sender,
        })
        .map_err(|_| writer_error("it stopped".into()))?;
        Ok(CallRecorder {
            id,
            jobs,
            path: path.to_path_buf(),
            origin,
            handed_over: 0,
            committed: 0,
            left: VecDeque::new(),
            right: VecDeque::new(),
            late_samples: 0,
            failed,
            spent,
        })
    }

    /// The path asked for (the actual file is reported in `RecordingStarted`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples that arrived after their place had been made final (dropped).
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }

    /// The writer could not create or write the file (and reported it): recording has
    /// stopped, the rest is dropped.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Places `pcm` for `side` at media-clock sample `at`. Overlapping audio replaces what
    /// was there.
    pub fn put(&mut self, side: Side, at: u64, pcm: &[i16]) {
        let committed_until = self.origin + self.committed;
        let skip = committed_until.saturating_sub(at).min(pcm.len() as u64) as usize;
        self.late_samples += skip as u64;
        let pcm = &pcm[skip..];
        if pcm.is_empty() {
            return;
        }
        let at = at + skip as u64;
        if at - committed_until > MAX_AHEAD {
            self.late_samples += pcm.len() as u64;
            return;
        }
        let offset = (at - (self.origin + self.handed_over)) as usize;
        let channel = match side {
            Side::Caller => &mut self.left,
            Side::Other => &mut self.right,
        };
        if channel.len() < offset + pcm.len() {
            channel.resize(offset + pcm.len(), 0);
        }
        overwrite(channel, offset, pcm);
    }

    /// Makes everything before media-clock sample `until` final (missing audio is silence)
    /// and hands every whole second of it to the writer. Fails only if the writer thread
    /// is gone.
    pub fn advance_to(&mut self, until: u64) -> Result<(), RecorderError> {
        self.committed = self.committed.max(until.saturating_sub(self.origin));
        while self.committed - self.handed_over >= BLOCK {
            self.hand_over(BLOCK as usize)?;
        }
        Ok(())
    }

    /// Hands over all pending audio up to `until` (or further, if audio is queued beyond
    /// it); the writer then finalises the file and reports `RecordingFinished`.
    pub fn finish(mut self, until: u64) -> Result<(), RecorderError> {
        let queued = self.left.len().max(self.right.len()) as u64;
        let pending_end = self.origin + self.handed_over + queued;
        self.advance_to(until.max(pending_end))?;
        let rest = self.committed - self.handed_over;
        if rest > 0 {
            self.hand_over(rest as usize)?;
        }
        // Dropping `self` asks the writer to finalise.
        Ok(())
    }

    /// Hands the next `frames` (at most [`BLOCK`]) stereo samples of the pending audio to the
    /// writer, silence where there is none, interleaved in one buffer.
    fn hand_over(&mut self, frames: usize) -> Result<(), RecorderError> {
        let mut block = self.spent.try_recv().unwrap_or_default();
        block.clear();
        block.reserve(frames * 2);
        let left = pending(&mut self.left, frames);
        let right = pending(&mut self.right, frames);
        // Where both sides have audio, then where one has, then silence: each sample is
        // stored once.
        let both = left.len().min(right.len());
        let pairs = left[..both].iter().zip(&right[..both]);
        block.extend(pairs.flat_map(|(&l, &r)| [l, r]));
        block.extend(left[both..].iter().flat_map(|&l| [l, 0]));
        block.extend(right[both..].iter().flat_map(|&r| [0, r]));
        block.resize(frames * 2, 0);
        self.left.drain(..frames.min(self.left.len()));
        self.right.drain(..frames.min(self.right.len()));
        self.handed_over += frames as u64;
        let job = Job::Block {
            id: self.id,
            samples: block,
        };
        self.jobs.send(job).map_err(|_| RecorderError::Writer {
            path: self.path.clone(),
            reason: "it stopped".into(),
        })
    }
}

impl Drop for CallRecorder {
    fn drop(&mut self) {
        // Always finalise, so the writer lets go of the file and of the session's event
        // sender (whose closing tells the owner the session is over). Nobody is left to
        // tell if the writer is gone.
        let _ = self.jobs.send(Job::Finish { id: self.id });
    }
}

/// The first `frames` pending samples of a channel (fewer if it holds fewer), as one slice.
fn pending(channel: &mut VecDeque<i16>, frames: usize) -> &[i16] {
    let all = channel.make_contiguous();
    let n = frames.min(all.len());
    &all[..n]
}

/// Replaces `channel[offset..offset + pcm.len()]` (which must exist) with `pcm`, slice by
/// slice rather than sample by sample.
fn overwrite(channel: &mut VecDeque<i16>, offset: usize, pcm: &[i16]) {
    let (front, back) = channel.as_mut_slices();
    let in_front = front.len().saturating_sub(offset).min(pcm.len());
    if in_front > 0 {
        front[offset..offset + in_front].copy_from_slice(&pcm[..in_front]);
    }
    let rest = &pcm[in_front..];
    if !rest.is_empty() {
        let at = offset + in_front - front.len();
        back[at..at + rest.len()].copy_from_slice(rest);
    }
}

/// What [`repair_unfinished`] did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Files whose header sizes were fixed.
    pub repaired: Vec<PathBuf>,
    /// Files that are not WAVs we can repair, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Fixes the RIFF and data chunk sizes of every `*.wav` in `dir` whose header does not match
/// the file length (left by a crash), dropping a trailing partial frame. Run it at start-up,
/// before any call records.
pub fn repair_unfinished(dir: &Path) -> Result<RepairReport, RecorderError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RecorderError::Folder {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut report = RepairReport::default();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wav") {
            continue;
        }
        match repair_file(&path) {
            Ok(true) => report.repaired.push(path),
            Ok(false) => {}
            Err(reason) => report.skipped.push((path, reason)),
        }
    }
    Ok(report)
}

/// Returns whether the file needed repair.
fn repair_file(path: &Path) -> Result<bool, String> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff)
        .map_err(|_| "shorter than a RIFF header".to_owned())?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut position = 12u64;
    let mut block_align = None;
    loop {
        let mut chunk = [0u8; 8];
        file.seek(SeekFrom::Start(position))
            .map_err(|e| e.to_string())?;
        file.read_exact(&mut chunk)
            .map_err(|_| "no data chunk".to_owned())?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        let body = position + 8;
        if &chunk[0..4] == b"fmt " {
            let mut fmt = [0u8; 14];
            file.read_exact(&mut fmt)
                .map_err(|_| "truncated fmt chunk".to_owned())?;
            block_align = Some(u64::from(u16::from_le_bytes([fmt[12], fmt[13]])).max(1));
        } else if &chunk[0..4] == b"data" {
            let align = block_align.ok_or("data chunk before fmt chunk")?;
            let data_len = (file_len - body) / align * align;
            let riff_size = body + data_len - 8;
            let header_ok = size == data_len
                && u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]])) == riff_size;
            if header_ok && file_len == body + data_len {
                return Ok(false);
            }
            let data_len32 = u32::try_from(data_len).map_err(|_| "larger than 4 GiB")?;
            let riff_size32 = u32::try_from(riff_size).map_err(|_| "larger than 4 GiB")?;
            file.set_len(body + data_len).map_err(|e| e.to_string())?;
            file.seek(SeekFrom::Start(4)).map_err(|e| e.to_string())?;
            file.write_all(&riff_size32.to_le_bytes())
                .map_err(|e| e.to_string())?;
            file.seek(SeekFrom::Start(position + 4))
                .map_err(|e| e.to_string())?;
            file.write_all(&data_len32.to_le_bytes())
                .map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            return Ok(true);
        }
        // Chunks are padded to even sizes.
        position = body + size + (size & 1);
        if position >= file_len {
            return Err("no data chunk".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::recording_writer::WavFile;
    use std::os::unix::fs::PermissionsExt;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    fn read_stereo(path: &Path) -> (Vec<i16>, Vec<i16>) {
        let reader = hound::WavReader::open(path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.spec().sample_rate, 8000);
        let samples: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
        let left = samples.iter().step_by(2).copied().collect();
        let right = samples.iter().skip(1).step_by(2).copied().collect();
        (left, right)
    }

    /// The writer's next report on this recording's events.
    fn next_event(events: &mut UnboundedReceiver<MediaEvent>) -> MediaEvent {
        events
            .blocking_recv()
            .expect("the writer reports before it lets go of the events")
    }

    /// Waits for the writer to start and finish a recording; returns the file.
    fn started_and_finished(events: &mut UnboundedReceiver<MediaEvent>) -> PathBuf {
        let MediaEvent::RecordingStarted(started) = next_event(events) else {
            panic!("expected RecordingStarted");
        };
        assert_eq!(
            next_event(events),
            MediaEvent::RecordingFinished(started.clone())
        );
        started
    }

    #[test]
    fn sides_are_aligned_on_the_media_clock_with_gaps_as_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording_path(dir.path(), "abc@10.0.0.1");
        let (events_tx, mut events) = unbounded_channel();
        let mut recorder = CallRecorder::start(&path, 1000, events_tx).unwrap();
        // Prompt frames at 1000 and 1160; caller audio arrives later for 1080 and, after a
        // 480-sample gap, at 1640 (out of order).
        recorder.put(Side::Other, 1000, &[5; 160]);
        recorder.put(Side::Other, 1160, &[6; 160]);
        recorder.put(Side::Caller, 1640, &[8; 160]);
        recorder.put(Side::Caller, 1080, &[7; 80]);
        recorder.advance_to(1500).unwrap();
        // Too late now: before the recorded point (even though not handed over yet).
        recorder.put(Side::Caller, 1400, &[9; 50]);
        assert_eq!(recorder.late_samples(), 50);
        recorder.finish(1900).unwrap();
        let written = started_and_finished(&mut events);
        assert_eq!(written.file_name().unwrap(), "abc_10.0.0.1.wav");
        let (left, right) = read_stereo(&written);
        assert_eq!(left.len(), 900);
        assert!(left[..80].iter().all(|&s| s == 0));
        assert!(left[80..160].iter().all(|&s| s == 7));
        assert!(
            left[160..640].iter().all(|&s| s == 0),
            "gap kept as silence"
        );
        assert!(left[640..800].iter().all(|&s| s == 8));
        assert!(right[..160].iter().all(|&s| s == 5));
        assert!(right[160..320].iter().all(|&s| s == 6));
        assert!(right[320..].iter().all(|&s| s == 0));
    }

    #[test]
    fn the_writer_thread_finalises_what_was_put_frame_by_frame() {
        let dir = tempfile::tempdir().unwrap();
        let (events_tx, mut events) = unbounded_channel();
        // Like a session: a frame of each side every 20 ms, the recorded point 300 ms
        // behind, over several one-second blocks and a partial last one.
        let origin = 480;
        let mut recorder =
            CallRecorder::start(&dir.path().join("long.wav"), origin, events_tx).unwrap();
        let caller = |n: u64| (n % 7919) as i16;
        let other = |n: u64| -((n % 3001) as i16);
        let frames = 3 * 50 + 17;
        for frame in 0..frames {
            let at = origin + frame * 160;
            let pcm: Vec<i16> = (at..at + 160).map(caller).collect();
            recorder.put(Side::Caller, at, &pcm);
            let pcm: Vec<i16> = (at..at + 160).map(other).collect();
            recorder.put(Side::Other, at, &pcm);
            recorder
                .advance_to((at + 160).saturating_sub(2400))
                .unwrap();
        }
        assert_eq!(recorder.late_samples(), 0);
        recorder.finish(origin + frames * 160).unwrap();
        let (left, right) = read_stereo(&started_and_finished(&mut events));
        let expected = origin..origin + frames * 160;
        assert_eq!(left, expected.clone().map(caller).collect::<Vec<_>>());
        assert_eq!(right, expected.map(other).collect::<Vec<_>>());
        assert_eq!(
            events.blocking_recv(),
            None,
            "the writer let go of the events"
        );
    }

    #[test]
    fn a_file_that_cannot_be_created_is_reported_and_recording_stops() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no such folder").join("call.wav");
        let (events_tx, mut events) = unbounded_channel();
        let mut recorder = CallRecorder::start(&missing, 0, events_tx).unwrap();
        recorder.put(Side::Caller, 0, &[1; 160]);
        let MediaEvent::CommandFailed(why) = next_event(&mut events) else {
            panic!("expected CommandFailed");
        };
        assert!(why.contains("cannot create recording"), "{why}");
        assert!(recorder.failed(), "the media side learns to stop");
        recorder.finish(8000).unwrap();
        assert_eq!(events.blocking_recv(), None, "no RecordingFinished");
        assert!(!missing.exists());
    }

    #[test]
    fn files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording_path(dir.path(), "call-1");
        let (events_tx, mut events) = unbounded_channel();
        let first = CallRecorder::start(&path, 0, events_tx.clone()).unwrap();
        let second = CallRecorder::start(&path, 0, events_tx).unwrap();
        first.finish(8).unwrap();
        second.finish(8).unwrap();
        let mut started = Vec::new();
        while let Some(event) = events.blocking_recv() {
            if let MediaEvent::RecordingStarted(file) = event {
                started.push(file);
            }
        }
        assert_eq!(started, [path.clone(), dir.path().join("call-1-2.wav")]);
        for file in started {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
            assert_eq!(read_stereo(&file).0.len(), 8);
        }
    }

    #[test]
    fn hostile_call_ids_stay_in_the_folder() {
        let dir = Path::new("/rec");
        assert_eq!(
            recording_path(dir, "../../etc/passwd"),
            Path::new("/rec/_.._etc_passwd.wav")
        );
        assert_eq!(recording_path(dir, ".."), Path::new("/rec/call.wav"));
        assert_eq!(recording_path(dir, "a/b c"), Path::new("/rec/a_b_c.wav"));
    }

    #[test]
    fn bogus_far_future_audio_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (events_tx, mut events) = unbounded_channel();
        let mut recorder = CallRecorder::start(&dir.path().join("x.wav"), 0, events_tx).unwrap();
        recorder.put(Side::Caller, u64::from(u32::MAX), &[1; 160]);
        assert_eq!(recorder.late_samples(), 160);
        recorder.finish(160).unwrap();
        let (left, _) = read_stereo(&started_and_finished(&mut events));
        assert_eq!(left.len(), 160);
    }

    #[test]
    fn header_is_valid_while_recording_and_a_crash_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crashed.wav");
        // The writer thread's steps, one block at a time: append, then update the header.
        let mut file = WavFile::create(&path).unwrap();
        let mut bytes = Vec::new();
        let ramp: Vec<i16> = (0..20_000).map(|n| (n % 3000) as i16).collect();
        let stereo = |from: usize, to: usize| -> Vec<i16> {
            ramp[from..to].iter().flat_map(|&s| [s, 0]).collect()
        };
        file.append(&stereo(0, 8000), &mut bytes).unwrap();
        file.update_header().unwrap();
        // Mid-call, after the first block, the file already reads as a valid WAV of 1 s.
        let (left, _) = read_stereo(&path);
        assert_eq!(left[..], ramp[..8000]);
        // Crash: the next block reached the disk, but not its header update.
        file.append(&stereo(8000, 20_000), &mut bytes).unwrap();
        std::mem::forget(file);
        // And a second file that died before its first header update: sizes are zero.
        let zeroed = dir.path().join("zeroed.wav");
        std::fs::copy(&path, &zeroed).unwrap();
        let mut bytes = std::fs::read(&zeroed).unwrap();
        bytes[4..8].copy_from_slice(&[0; 4]);
        bytes[40..44].copy_from_slice(&[0; 4]);
        bytes.push(0x42); // a torn half sample at the end
        std::fs::write(&zeroed, &bytes).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        std::fs::write(dir.path().join("junk.wav"), "not a wav").unwrap();

        let report = repair_unfinished(dir.path()).unwrap();
        assert!(report.repaired.contains(&path));
        assert!(report.repaired.contains(&zeroed));
        assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
        for file in [&path, &zeroed] {
            let (left, right) = read_stereo(file);
            let on_disk = (std::fs::metadata(file).unwrap().len() - 44) / 4;
            assert_eq!(
                left.len() as u64,
                on_disk,
                "all that reached the disk is playable"
            );
            assert_eq!(left[..], ramp[..]);
            assert!(right.iter().all(|&s| s == 0));
        }
        // Repairing again changes nothing.
        assert!(repair_unfinished(dir.path()).unwrap().repaired.is_empty());
    }
}
