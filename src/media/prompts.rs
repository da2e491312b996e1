//! The prompt library and prompt playback, sans-IO.
//!
//! [`PromptLibrary::load`] reads every `*.wav` of the prompt folder once at start (8 kHz,
//! mono, 16-bit PCM — anything else is refused with the file named) and pre-encodes each
//! prompt once per codec into 160-byte (20 ms) frames, the last one padded with silence.
//! Calls share the library through an `Arc`; nothing is encoded per call.
//! [`PromptLibrary::load_file`] adds a one-off WAV (a rendered announcement) the same way,
//! once per file version, under a name the IVR can play.
//!
//! [`Playback`] is one call's queue of prompts: it hands out one frame per 20 ms slot,
//! reports each prompt that played to its end, and [`Playback::stop`] cuts it at once
//! (barge-in on a digit).
//!
//! Owns prompt audio; must not touch sockets or decide which prompt to play.

use super::g711::G711Codec;
use super::pacer::SAMPLES_PER_FRAME;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

const FRAME: usize = SAMPLES_PER_FRAME as usize;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot read the prompt folder {dir}: {source}; check media.sounds_dir")]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read prompt {file}: {reason}; regenerate it with sounds/make-prompts.sh")]
    Unreadable { file: PathBuf, reason: String },
    #[error(
        "prompt {file} is {found}, but prompts must be 8000 Hz mono 16-bit PCM WAV; convert it with `sox in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav`"
    )]
    Format { file: PathBuf, found: String },
    #[error("prompt {file} holds no audio; regenerate it with sounds/make-prompts.sh")]
    Empty { file: PathBuf },
    #[error("the prompt folder {dir} holds no .wav files; check media.sounds_dir")]
    NoPrompts { dir: PathBuf },
    #[error("unknown prompt \"{0}\": it is not a WAV in the prompt folder (see sounds/README.md)")]
    Unknown(String),
}

/// One prompt, decoded and pre-encoded.
#[derive(Debug)]
pub struct Prompt {
    name: String,
    /// Linear PCM, padded to whole frames (what the recorder writes for it).
    pcm: Vec<i16>,
    pcmu: Vec<Bytes>,
    pcma: Vec<Bytes>,
}

impl Prompt {
    fn new(name: String, mut pcm: Vec<i16>) -> Prompt {
        pcm.resize(pcm.len().div_ceil(FRAME) * FRAME, 0);
        let encode = |codec: G711Codec| -> Vec<Bytes> {
            pcm.chunks(FRAME)
                .map(|chunk| {
                    let mut frame = Vec::with_capacity(FRAME);
                    codec.encode_into(chunk, &mut frame);
                    Bytes::from(frame)
                })
                .collect()
        };
        let pcmu = encode(G711Codec::Pcmu);
        let pcma = encode(G711Codec::Pcma);
        Prompt {
            name,
            pcm,
            pcmu,
            pcma,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn frame_count(&self) -> usize {
        self.pcmu.len()
    }

    /// Encoded frame `index` (160 bytes). The `Bytes` are shared, not copied.
    pub fn frame(&self, codec: G711Codec, index: usize) -> Option<&Bytes> {
        match codec {
            G711Codec::Pcmu => self.pcmu.get(index),
            G711Codec::Pcma => self.pcma.get(index),
        }
    }

    /// Linear samples of frame `index`.
    pub fn pcm_frame(&self, index: usize) -> Option<&[i16]> {
        self.pcm.get(index * FRAME..(index + 1) * FRAME)
    }
}

#[derive(Debug, Default)]
pub struct PromptLibrary {
    prompts: BTreeMap<String, Arc<Prompt>>,
    /// One-off files by prompt name (`file:<path>`), with the modification time they were
    /// read at: a file rewritten in place (a replaced announcement text) is read again.
    files: Mutex<HashMap<String, (SystemTime, Arc<Prompt>)>>,
}

/// Prefix of the names of one-off files; no prompt file stem has a `:`.
const FILE_PREFIX: &str = "file:";

impl PromptLibrary {
    /// Loads every `*.wav` in `dir`; the prompt name is the file stem.
    pub fn load(dir: &Path) -> Result<PromptLibrary, PromptError> {
        let entries = std::fs::read_dir(dir).map_err(|source| PromptError::Folder {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut library = PromptLibrary::default();
        for entry in entries {
            let path = entry
                .map_err(|source| PromptError::Folder {
                    dir: dir.to_path_buf(),
                    source,
                })?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("wav") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let pcm = read_prompt_wav(&path)?;
            library
                .prompts
                .insert(name.to_owned(), Arc::new(Prompt::new(name.to_owned(), pcm)));
        }
        if library.prompts.is_empty() {
            return Err(PromptError::NoPrompts {
                dir: dir.to_path_buf(),
            });
        }
        Ok(library)
    }

    pub fn get(&self, name: &str) -> Result<Arc<Prompt>, PromptError> {
        let file = || {
            self.lock_files()
                .get(name)
                .map(|(_, prompt)| prompt.clone())
        };
        self.prompts
            .get(name)
            .cloned()
            .or_else(file)
            .ok_or_else(|| PromptError::Unknown(name.to_owned()))
    }

    /// Makes the WAV at `path` (8 kHz mono 16-bit, checked like every prompt) playable and
    /// returns its prompt name. Encoded once per codec and kept until the file changes.
    /// Reads the file: call it off the call dispatcher (the caller look-up does).
    pub fn load_file(&self, path: &Path) -> Result<String, PromptError> {
        let name = format!("{FILE_PREFIX}{}", path.display());
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|err| PromptError::Unreadable {
                file: path.to_path_buf(),
                reason: err.to_string(),
            })?;
        if self
            .lock_files()
            .get(&name)
            .is_some_and(|(at, _)| *at == modified)
        {
            return Ok(name);
        }
        let prompt = Arc::new(Prompt::new(name.clone(), read_prompt_wav(path)?));
        self.lock_files().insert(name.clone(), (modified, prompt));
        Ok(name)
    }

    fn lock_files(&self) -> std::sync::MutexGuard<'_, HashMap<String, (SystemTime, Arc<Prompt>)>> {
        // Every change to the map is a single insert: a panic elsewhere leaves it whole.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

fn read_prompt_wav(path: &Path) -> Result<Vec<i16>, PromptError> {
    let unreadable = |error: hound::Error| PromptError::Unreadable {
        file: path.to_path_buf(),
        reason: error.to_string(),
    };
    let reader = hound::WavReader::open(path).map_err(unreadable)?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(PromptError::Format {
            file: path.to_path_buf(),
            found: format!(
                "{} Hz, {} channel(s), {}-bit {:?}",
                spec.sample_rate, spec.channels, spec.bits_per_sample, spec.sample_format
            ),
        });
    }
    let pcm = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(unreadable)?;
    if pcm.is_empty() {
        return Err(PromptError::Empty {
            file: path.to_path_buf(),
        });
    }
    Ok(pcm)
}

/// What to send in one 20 ms slot.
#[derive(Debug, Clone)]
pub struct PlaybackFrame {
    pub payload: Bytes,
    /// The prompt and frame index the linear samples are read from (shared, not copied).
    prompt: Arc<Prompt>,
    index: usize,
}

impl PlaybackFrame {
    /// The frame's linear samples (what the recorder writes for it).
    pub fn pcm(&self) -> &[i16] {
        self.prompt.pcm_frame(self.index).unwrap_or(&[])
    }
}

/// One call's prompt queue.
#[derive(Debug)]
pub struct Playback {
    codec: G711Codec,
    queue: VecDeque<Arc<Prompt>>,
    /// Next frame of `queue[0]`.
    position: usize,
}

impl Playback {
    pub fn new(codec: G711Codec) -> Playback {
        Playback {
            codec,
            queue: VecDeque::new(),
            position: 0,
        }
    }

    /// Appends prompts to the queue, all or none (an unknown name rejects the whole list).
    pub fn enqueue(
        &mut self,
        library: &PromptLibrary,
        names: &[String],
    ) -> Result<(), PromptError> {
        let prompts = names
            .iter()
            .map(|name| library.get(name))
            .collect::<Result<Vec<_>, _>>()?;
        self.queue.extend(prompts);
        Ok(())
    }

    /// Cuts playback at once and empties the queue. Returns the prompt that was cut, if any.
    pub fn stop(&mut self) -> Option<String> {
        let current = self.queue.front().map(|p| p.name.clone());
        self.queue.clear();
        self.position = 0;
        current
    }

    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The frame for the next slot, or `None` when nothing is queued. When the frame is the
    /// last of a prompt, that prompt's name comes back as finished.
    pub fn next_frame(&mut self) -> Option<(PlaybackFrame, Option<String>)> {
        let prompt = self.queue.front()?.clone();
        let payload = prompt.frame(self.codec, self.position)?.clone();
        prompt.pcm_frame(self.position)?;
        let index = self.position;
        self.position += 1;
        let finished = if self.position >= prompt.frame_count() {
            self.queue.pop_front();
            self.position = 0;
            Some(prompt.name.clone())
        } else {
            None
        };
        let frame = PlaybackFrame {
            payload,
            prompt,
            index,
        };
        Some((frame, finished))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, spec: hound::WavSpec, samples: usize) {
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for n in 0..samples * usize::from(spec.channels) {
            writer.write_sample((n % 1000) as i16).unwrap();
        }
        writer.finalize().unwrap();
    }

    fn mono_8k() -> hound::WavSpec {
        hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn a_one_off_file_plays_once_loaded_and_is_read_again_when_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        write_wav(&dir.path().join("welcome.wav"), mono_8k(), 160);
        let library = PromptLibrary::load(dir.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let path = outside.path().join("7.wav");
        write_wav(&path, mono_8k(), 400);
        let name = library.load_file(&path).unwrap();
        let first = library.get(&name).unwrap();
        assert_eq!(first.frame_count(), 3);
        // Unchanged: the encoded prompt is reused.
        assert_eq!(library.load_file(&path).unwrap(), name);
        assert!(Arc::ptr_eq(&first, &library.get(&name).unwrap()));
        let mut playback = Playback::new(G711Codec::Pcma);
        playback
            .enqueue(&library, std::slice::from_ref(&name))
            .unwrap();
        let (frame, _) = playback.next_frame().unwrap();
        assert_eq!(
            frame.payload,
            first.frame(G711Codec::Pcma, 0).unwrap().clone()
        );
        // Rewritten in place (a replaced text): read again.
        write_wav(&path, mono_8k(), 800);
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        library.load_file(&path).unwrap();
        assert_eq!(library.get(&name).unwrap().frame_count(), 5);
        // A file in another format is refused and never playable.
        let stereo = outside.path().join("8.wav");
        write_wav(
            &stereo,
            hound::WavSpec {
                channels: 2,
                ..mono_8k()
            },
            160,
        );
        assert!(matches!(
            library.load_file(&stereo),
            Err(PromptError::Format { .. })
        ));
        assert!(matches!(
            library.load_file(&outside.path().join("gone.wav")),
            Err(PromptError::Unreadable { .. })
        ));
    }

    #[test]
    fn loads_and_pre_encodes_whole_frames() {
        let dir = tempfile::tempdir().unwrap();
        write_wav(&dir.path().join("short.wav"), mono_8k(), 330);
        std::fs::write(dir.path().join("README.txt"), "not a prompt").unwrap();
        let library = PromptLibrary::load(dir.path()).unwrap();
        assert_eq!(library.names().collect::<Vec<_>>(), vec!["short"]);
        let prompt = library.get("short").unwrap();
        assert_eq!(prompt.frame_count(), 3, "330 samples pad to 3 frames");
        assert_eq!(prompt.frame(G711Codec::Pcma, 2).unwrap().len(), 160);
        let pcm = prompt.pcm_frame(0).unwrap();
        let expected: Vec<u8> = pcm.iter().map(|&s| G711Codec::Pcmu.encode(s)).collect();
        assert_eq!(
            prompt.frame(G711Codec::Pcmu, 0).unwrap().as_ref(),
            expected.as_slice()
        );
        // Padding is silence.
        assert_eq!(prompt.frame(G711Codec::Pcmu, 2).unwrap()[159], 0xFF);
        assert!(matches!(library.get("nope"), Err(PromptError::Unknown(_))));
    }

    #[test]
    fn the_shipped_prompt_set_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds/zh-CN");
        let library = PromptLibrary::load(&dir).unwrap();
        for name in [
            "welcome",
            "recording_notice",
            "recording_opt_out",
            "recording_opt_in",
            "press_key",
            "label_leak",
            "label_repair",
            "label_billing",
            "label_consultation",
            "label_complaint",
            "label_person",
            "entry_done",
            "invalid_input",
            "no_input",
            "transfer_agent",
            "leak_safety_advice",
            "leak_connecting",
            "queue_wait",
            "enter_account",
            "ticket_status",
            "outage_generic",
            "goodbye",
            "after_hours",
            "digit_star",
            "digit_hash",
        ] {
            let prompt = library.get(name).unwrap();
            // Every prompt speaks for at least half a second and at most half a minute.
            assert!(
                (25..1500).contains(&prompt.frame_count()),
                "{name}: {}",
                prompt.frame_count()
            );
        }
        for digit in 0..10 {
            assert!(library.get(&format!("digit_{digit}")).is_ok());
        }
    }

    #[test]
    fn a_wrong_format_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        write_wav(&dir.path().join("good.wav"), mono_8k(), 160);
        let stereo = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            ..mono_8k()
        };
        write_wav(&dir.path().join("wideband.wav"), stereo, 160);
        let error = PromptLibrary::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("wideband.wav"), "{error}");
        assert!(error.contains("16000 Hz, 2 channel(s)"), "{error}");
        assert!(error.contains("sox"), "{error}");
    }

    #[test]
    fn garbage_and_empty_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("broken.wav"),
            b"RIFF\x10\x00\x00\x00garbage",
        )
        .unwrap();
        let error = PromptLibrary::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("broken.wav") && error.contains("make-prompts.sh"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        write_wav(&dir.path().join("silent.wav"), mono_8k(), 0);
        let error = PromptLibrary::load(dir.path()).unwrap_err();
        assert!(matches!(error, PromptError::Empty { .. }), "{error}");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            PromptLibrary::load(empty.path()),
            Err(PromptError::NoPrompts { .. })
        ));
        let missing = PromptLibrary::load(Path::new("/nonexistent/prompts")).unwrap_err();
        assert!(missing.to_string().contains("media.sounds_dir"));
    }

    #[test]
    fn playback_queues_reports_finished_and_stops_at_once() {
        let dir = tempfile::tempdir().unwrap();
        write_wav(&dir.path().join("a.wav"), mono_8k(), 320);
        write_wav(&dir.path().join("b.wav"), mono_8k(), 160);
        let library = PromptLibrary::load(dir.path()).unwrap();
        let mut playback = Playback::new(G711Codec::Pcma);
        assert!(playback.next_frame().is_none());
        playback
            .enqueue(&library, &["a".into(), "b".into()])
            .unwrap();
        let finished: Vec<Option<String>> = std::iter::from_fn(|| playback.next_frame())
            .map(|(_, done)| done)
            .collect();
        assert_eq!(finished, vec![None, Some("a".into()), Some("b".into())]);
        assert!(!playback.is_playing());
        // Unknown names reject the whole list.
        assert!(
            playback
                .enqueue(&library, &["a".into(), "zz".into()])
                .is_err()
        );
        assert!(!playback.is_playing());
        playback
            .enqueue(&library, &["a".into(), "b".into()])
            .unwrap();
        assert!(playback.next_frame().is_some());
        assert_eq!(playback.stop(), Some("a".into()));
        assert!(playback.next_frame().is_none());
    }
}
