//! Call recording: a stereo 8 kHz 16-bit WAV with the caller on the LEFT channel and the
//! other party (prompts now, the agent later) on the RIGHT, both placed on the session's
//! common media clock (8 kHz sample index), so gaps become silence instead of shortening
//! the file and the two sides stay aligned.
//!
//! Files are created with mode 0600 (recordings are personal data). Crash safety: the WAV
//! header is rewritten every second of audio (hound `flush`), so a killed daemon leaves a
//! file that plays up to the last second; [`repair_unfinished`] fixes the sizes of such files
//! at start-up, recovering everything that reached the disk.
//!
//! Owns the WAV files; must not decide whether a call may be recorded (consent is the IVR's).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const SAMPLE_RATE: u32 = 8000;
/// Header refresh interval, in samples per channel (one second).
const FLUSH_EVERY: u64 = SAMPLE_RATE as u64;
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

pub struct CallRecorder {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    /// Media-clock sample where the file starts.
    origin: u64,
    /// Samples per channel written so far.
    written: u64,
    /// Pending samples; index 0 is sample `origin + written`.
    left: VecDeque<i16>,
    right: VecDeque<i16>,
    since_flush: u64,
    late_samples: u64,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl CallRecorder {
    /// Creates the file at `path` (mode 0600; never overwrites: an existing name gets a
    /// `-2`, `-3`, … suffix). `origin` is the media-clock sample at which recording starts.
    pub fn create(path: &Path, origin: u64) -> Result<CallRecorder, RecorderError> {
        let (path, file) = create_unique(path)?;
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::new(BufWriter::new(file), spec).map_err(|error| {
            RecorderError::Write {
                path: path.clone(),
                reason: error.to_string(),
            }
        })?;
        Ok(CallRecorder {
            path,
            writer,
            origin,
            written: 0,
            left: VecDeque::new(),
            right: VecDeque::new(),
            since_flush: 0,
            late_samples: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples that arrived after their place had been written (dropped).
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }

    /// Places `pcm` for `side` at media-clock sample `at`. Overlapping audio replaces what
    /// was there.
    pub fn put(&mut self, side: Side, at: u64, pcm: &[i16]) {
        let written_until = self.origin + self.written;
        let skip = written_until.saturating_sub(at).min(pcm.len() as u64) as usize;
        self.late_samples += skip as u64;
        let pcm = &pcm[skip..];
        if pcm.is_empty() {
            return;
        }
        let offset = (at + skip as u64) - written_until;
        if offset > MAX_AHEAD {
            self.late_samples += pcm.len() as u64;
            return;
        }
        let offset = offset as usize;
        let channel = match side {
            Side::Caller => &mut self.left,
            Side::Other => &mut self.right,
        };
        if channel.len() < offset + pcm.len() {
            channel.resize(offset + pcm.len(), 0);
        }
        overwrite(channel, offset, pcm);
    }

    /// Writes everything before media-clock sample `until`; missing audio is silence. Writes
    /// in blocks (at most up to the next one-second header update, so the header is still
    /// rewritten after every second of audio).
    pub fn advance_to(&mut self, until: u64) -> Result<(), RecorderError> {
        let target = until.saturating_sub(self.origin);
        while self.written < target {
            let block = (target - self.written).min(FLUSH_EVERY - self.since_flush);
            self.write_block(block as usize)?;
            self.written += block;
            self.since_flush += block;
            if self.since_flush >= FLUSH_EVERY {
                self.since_flush = 0;
                self.writer
                    .flush()
                    .map_err(|error| self.write_error(error))?;
            }
        }
        Ok(())
    }

    /// Writes the next `frames` stereo samples (at most [`FLUSH_EVERY`]) from the pending
    /// audio, silence where there is none, in one buffered write.
    fn write_block(&mut self, frames: usize) -> Result<(), RecorderError> {
        // One slice per channel (a no-op unless the ring wrapped), so the common part is a
        // plain zip.
        let left = pending(&mut self.left, frames);
        let right = pending(&mut self.right, frames);
        // frames <= FLUSH_EVERY (8000), so the sample count fits a u32.
        let mut out = self.writer.get_i16_writer((frames * 2) as u32);
        let both = left.len().min(right.len());
        for (&l, &r) in left[..both].iter().zip(&right[..both]) {
            out.write_sample(l);
            out.write_sample(r);
        }
        for i in both..frames {
            out.write_sample(left.get(i).copied().unwrap_or(0));
            out.write_sample(right.get(i).copied().unwrap_or(0));
        }
        let written = out.flush();
        self.left.drain(..frames.min(self.left.len()));
        self.right.drain(..frames.min(self.right.len()));
        written.map_err(|error| self.write_error(error))
    }

    /// Writes all pending audio up to `until` (or further, if audio is queued beyond it),
    /// finalises the header and returns the file path.
    pub fn finish(mut self, until: u64) -> Result<PathBuf, RecorderError> {
        let pending_end = self.origin + self.written + self.left.len().max(self.right.len()) as u64;
        self.advance_to(until.max(pending_end))?;
        let path = self.path.clone();
        self.writer
            .finalize()
            .map_err(|error| RecorderError::Write {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        Ok(path)
    }

    fn write_error(&self, error: hound::Error) -> RecorderError {
        RecorderError::Write {
            path: self.path.clone(),
            reason: error.to_string(),
        }
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
    use std::os::unix::fs::PermissionsExt;

    fn read_stereo(path: &Path) -> (Vec<i16>, Vec<i16>) {
        let reader = hound::WavReader::open(path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.spec().sample_rate, 8000);
        let samples: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
        let left = samples.iter().step_by(2).copied().collect();
        let right = samples.iter().skip(1).step_by(2).copied().collect();
        (left, right)
    }

    #[test]
    fn sides_are_aligned_on_the_media_clock_with_gaps_as_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording_path(dir.path(), "abc@10.0.0.1");
        let mut recorder = CallRecorder::create(&path, 1000).unwrap();
        // Prompt frames at 1000 and 1160; caller audio arrives later for 1080 and, after a
        // 480-sample gap, at 1640 (out of order).
        recorder.put(Side::Other, 1000, &[5; 160]);
        recorder.put(Side::Other, 1160, &[6; 160]);
        recorder.put(Side::Caller, 1640, &[8; 160]);
        recorder.put(Side::Caller, 1080, &[7; 80]);
        recorder.advance_to(1500).unwrap();
        // Too late now: before the written point.
        recorder.put(Side::Caller, 1400, &[9; 50]);
        assert_eq!(recorder.late_samples(), 50);
        let written = recorder.finish(1900).unwrap();
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
    fn files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording_path(dir.path(), "call-1");
        let first = CallRecorder::create(&path, 0).unwrap().finish(8).unwrap();
        let second = CallRecorder::create(&path, 0).unwrap().finish(8).unwrap();
        assert_eq!(first, path);
        assert_eq!(second.file_name().unwrap(), "call-1-2.wav");
        for file in [first, second] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
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
        let mut recorder = CallRecorder::create(&dir.path().join("x.wav"), 0).unwrap();
        recorder.put(Side::Caller, u64::from(u32::MAX), &[1; 160]);
        assert_eq!(recorder.late_samples(), 160);
        let (left, _) = read_stereo(&recorder.finish(160).unwrap());
        assert_eq!(left.len(), 160);
    }

    #[test]
    fn header_is_valid_while_recording_and_a_crash_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crashed.wav");
        let mut recorder = CallRecorder::create(&path, 0).unwrap();
        let ramp: Vec<i16> = (0..20_000).map(|n| (n % 3000) as i16).collect();
        recorder.put(Side::Caller, 0, &ramp);
        recorder.advance_to(12_000).unwrap();
        // Mid-call, after the periodic flush, the file already reads as a valid WAV of >= 1 s.
        let (left, _) = read_stereo(&path);
        assert!(left.len() >= 8000);
        assert_eq!(left[..8000], ramp[..8000]);
        // Crash: no finalize, no drop (the process died); buffered data may be lost.
        recorder.advance_to(20_000).unwrap();
        std::mem::forget(recorder);
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
            assert!(left.len() >= 8000);
            assert_eq!(left[..], ramp[..left.len()]);
            assert!(right.iter().all(|&s| s == 0));
        }
        // Repairing again changes nothing.
        assert!(repair_unfinished(dir.path()).unwrap().repaired.is_empty());
    }
}
