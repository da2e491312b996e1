//! Outage announcements: checks what an administrator sets, renders a text once to speech
//! with the configured TTS command (`<state_dir>/announcements/<id>.wav`, 8000 Hz mono 16-bit
//! like every prompt), and tells the call path which prompts a call should hear.
//!
//! Owns the rendered audio files; SQL is in `store::announcements`. The TTS command gets the
//! text and the output path as shell variables, never pasted into the command line, so no
//! text can run a command.

use crate::config::{AnnouncementsConfig, TTS_OUT, TTS_TEXT, is_prompt_name};
use crate::store::{Announcement, NewAnnouncement, Store, StoreError};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Longest announcement text, in characters (about a minute of speech).
pub const MAX_TEXT_CHARS: usize = 300;
/// Longest list of called numbers or areas.
const MAX_TARGETS: usize = 100;
/// How long the TTS command may run.
const TTS_TIMEOUT: Duration = Duration::from_secs(30);
/// A rendering whose loudest sample stays below this is silence (a voice that cannot speak
/// the text), not speech.
const SILENCE_PEAK: i16 = 200;

/// Why an announcement was not set; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// An input field is wrong: `field` names it.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The TTS command failed or wrote something that is not a usable prompt.
    #[error("{0}")]
    Tts(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A prompt a call should play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptRef {
    /// A prompt of the prompt library, by name (file stem).
    Prompt(String),
    /// An announcement text rendered to `path` (8000 Hz mono 16-bit WAV).
    Rendered { id: i64, path: PathBuf },
}

/// Sets, lists and clears announcements, and picks a call's prompts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Announcer {
    store: Store,
    dir: PathBuf,
    config: AnnouncementsConfig,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AnnounceError {
    AnnounceError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A called number: optional `+`, then 3 to 20 digits.
fn is_did(did: &str) -> bool {
    let digits = did.strip_prefix('+').unwrap_or(did);
    (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Checks an announcement as given and normalises it (trimmed text, empty text as none).
fn check(new: NewAnnouncement, now: DateTime<Utc>) -> Result<NewAnnouncement, AnnounceError> {
    let text = new
        .text
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let prompt = new.prompt.filter(|p| !p.is_empty());
    check_content(text.as_deref(), prompt.as_deref())?;
    check_targets(&new.dids, &new.areas)?;
    if new.ends_at <= new.starts_at {
        return Err(invalid("ends_at", "must be after starts_at"));
    }
    if new.ends_at <= now {
        return Err(invalid(
            "ends_at",
            "is already past; give when the announcement should stop",
        ));
    }
    Ok(NewAnnouncement {
        text,
        prompt,
        ..new
    })
}

/// Exactly one of a text (plain, not too long) and a prompt name.
fn check_content(text: Option<&str>, prompt: Option<&str>) -> Result<(), AnnounceError> {
    match (text, prompt) {
        (None, None) => {
            return Err(invalid(
                "text",
                "empty and no prompt given; give the text to speak or the name of a prompt",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(invalid("prompt", "give either text or a prompt, not both"));
        }
        _ => {}
    }
    if let Some(text) = text {
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(invalid(
                "text",
                format!(
                    "{chars} characters; keep it to {MAX_TEXT_CHARS} (about a minute of speech)"
                ),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid(
                "text",
                "contains control characters; write plain text",
            ));
        }
    }
    if let Some(prompt) = prompt
        && !is_prompt_name(prompt)
    {
        return Err(invalid(
            "prompt",
            format!(
                "{prompt:?} is not a prompt name; give a file stem of the prompt folder (lowercase letters, digits and _)"
            ),
        ));
    }
    Ok(())
}

/// Called numbers and areas: few, and well-formed.
fn check_targets(dids: &[String], areas: &[String]) -> Result<(), AnnounceError> {
    if dids.len() > MAX_TARGETS {
        return Err(invalid(
            "dids",
            format!("more than {MAX_TARGETS}; leave the list empty to play on every number"),
        ));
    }
    if let Some(bad) = dids.iter().find(|d| !is_did(d)) {
        return Err(invalid(
            "dids",
            format!(
                "{bad:?} is not a called number; give digits only (3 to 20, optional leading +), e.g. \"95158\""
            ),
        ));
    }
    if areas.len() > MAX_TARGETS {
        return Err(invalid(
            "areas",
            format!("more than {MAX_TARGETS}; leave the list empty to play for every caller"),
        ));
    }
    if areas
        .iter()
        .any(|a| a.trim().is_empty() || a.chars().count() > 64 || a.chars().any(char::is_control))
    {
        return Err(invalid(
            "areas",
            "an area is empty, longer than 64 characters or holds control characters; give the area names of the customer files",
        ));
    }
    Ok(())
}

impl Announcer {
    /// `dir` is `<state_dir>/announcements` (created on first render).
    pub fn new(store: Store, dir: PathBuf, config: AnnouncementsConfig) -> Announcer {
        Announcer { store, dir, config }
    }

    /// The store announcements are kept in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates (`id` none) or replaces announcement `id`. A text is rendered first when a TTS
    /// command is configured, so a failing command leaves everything as it was.
    pub async fn set(
        &self,
        id: Option<i64>,
        new: NewAnnouncement,
        now: DateTime<Utc>,
    ) -> Result<Announcement, AnnounceError> {
        let new = check(new, now)?;
        if let Some(id) = id {
            self.store.get_announcement(id).await?;
        }
        let rendered = match (&new.text, &self.config.tts_command) {
            (Some(text), Some(command)) => Some(self.render(command, text).await?),
            _ => None,
        };
        let stored = match id {
            None => self.store.create_announcement(&new).await,
            Some(id) => self.store.replace_announcement(id, &new).await,
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(err) => {
                if let Some(tmp) = rendered {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(err.into());
            }
        };
        let file = audio_file_name(stored.id);
        let path = self.dir.join(&file);
        match rendered {
            Some(tmp) => {
                std::fs::rename(&tmp, &path).map_err(|err| {
                    AnnounceError::Tts(format!(
                        "cannot move the rendered announcement to {}: {err}; check that \
                         daemon.state_dir is writable",
                        path.display()
                    ))
                })?;
                Ok(self.store.set_announcement_audio(stored.id, &file).await?)
            }
            None => {
                // A replaced text may have left audio behind.
                remove_if_present(&path);
                Ok(stored)
            }
        }
    }

    /// Announcements not over at `now` (or all with `include_ended`).
    pub async fn list(
        &self,
        now: DateTime<Utc>,
        include_ended: bool,
    ) -> Result<Vec<Announcement>, StoreError> {
        self.store.list_announcements(now, include_ended).await
    }

    /// Deletes announcement `id` and its audio; returns what it was.
    pub async fn clear(&self, id: i64) -> Result<Announcement, StoreError> {
        let gone = self.store.delete_announcement(id).await?;
        remove_if_present(&self.dir.join(audio_file_name(id)));
        Ok(gone)
    }

    /// What a call to `did` from a caller in `area` (from `Store::caller_facts`; `None` when
    /// unknown) hears before the first menu at `now`, in order: prompts by name, rendered
    /// texts, and the generic outage prompt (once) for texts without audio.
    pub async fn announcement_prompts(
        &self,
        did: &str,
        area: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<PromptRef>, StoreError> {
        let active = self.store.active_announcements(did, area, now).await?;
        let mut prompts = Vec::with_capacity(active.len());
        for announcement in active {
            let next = match (announcement.prompt, announcement.audio_file) {
                (Some(prompt), _) => PromptRef::Prompt(prompt),
                (None, Some(file)) if self.dir.join(&file).is_file() => PromptRef::Rendered {
                    id: announcement.id,
                    path: self.dir.join(file),
                },
                (None, _) => PromptRef::Prompt(self.config.generic_prompt.clone()),
            };
            if !prompts.contains(&next) {
                prompts.push(next);
            }
        }
        Ok(prompts)
    }

    /// Runs the TTS command for `text` into a temporary file in the announcements folder and
    /// checks the result; returns that file.
    async fn render(&self, command: &str, text: &str) -> Result<PathBuf, AnnounceError> {
        std::fs::create_dir_all(&self.dir).map_err(|err| {
            AnnounceError::Tts(format!(
                "cannot create {}: {err}; check that daemon.state_dir is writable",
                self.dir.display()
            ))
        })?;
        // Hidden, but ending in .wav: sox and friends pick the format by the extension.
        let tmp = self
            .dir
            .join(format!(".render-{}.wav", uuid::Uuid::new_v4()));
        let result = run_tts(command, text, &tmp)
            .await
            .and_then(|()| check_prompt_wav(&tmp));
        if result.is_err() {
            remove_if_present(&tmp);
        }
        result.map(|()| tmp)
    }
}

fn audio_file_name(id: i64) -> String {
    format!("{id}.wav")
}

fn remove_if_present(path: &Path) {
    if let Err(err) = std::fs::remove_file(path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %err, "cannot delete announcement audio");
    }
}

async fn run_tts(command: &str, text: &str, out: &Path) -> Result<(), AnnounceError> {
    let script = command
        .replace(TTS_TEXT, "\"$HOTLINE_TTS_TEXT\"")
        .replace(TTS_OUT, "\"$HOTLINE_TTS_OUT\"");
    let mut child = tokio::process::Command::new("/bin/sh");
    child
        .arg("-c")
        .arg(script)
        .env("HOTLINE_TTS_TEXT", text)
        .env("HOTLINE_TTS_OUT", out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(TTS_TIMEOUT, child.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(err)) => {
            return Err(AnnounceError::Tts(format!(
                "cannot run the TTS command with /bin/sh: {err}; check announcements.tts_command"
            )));
        }
        Err(_) => {
            return Err(AnnounceError::Tts(format!(
                "the TTS command did not finish within {} s; check announcements.tts_command",
                TTS_TIMEOUT.as_secs()
            )));
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .trim()
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(AnnounceError::Tts(format!(
            "the TTS command failed ({}): {tail}; check announcements.tts_command (try it in a \
             shell)",
            output.status
        )));
    }
    Ok(())
}

/// The rendered file must be a prompt like every other: 8000 Hz mono 16-bit PCM, and speech,
/// not silence.
fn check_prompt_wav(path: &Path) -> Result<(), AnnounceError> {
    let unusable = |what: String| {
        AnnounceError::Tts(format!(
            "the TTS command wrote {what}; it must write an 8000 Hz mono 16-bit WAV to {TTS_OUT}, \
             e.g. end it with `| sox -t wav - -r 8000 -c 1 -b 16 -e signed-integer {TTS_OUT}`"
        ))
    };
    let reader =
        hound::WavReader::open(path).map_err(|err| unusable(format!("no readable WAV ({err})")))?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(unusable(format!(
            "{} Hz, {} channel(s), {}-bit {:?}",
            spec.sample_rate, spec.channels, spec.bits_per_sample, spec.sample_format
        )));
    }
    let mut peak: i16 = 0;
    for sample in reader.into_samples::<i16>() {
        let sample = sample.map_err(|err| unusable(format!("a damaged WAV ({err})")))?;
        peak = peak.max(sample.saturating_abs());
    }
    if peak < SILENCE_PEAK {
        return Err(unusable(
            "silence (does the voice speak this language? espeak-ng needs -v cmn-latn-pinyin for Chinese)".into(),
        ));
    }
    Ok(())
}
