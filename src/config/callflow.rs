//! The built-in call flow (`deploy/callflow.toml`, compiled in): the `[ivr]` and `[acd]`
//! sections a configuration without them runs on, and the cross-section checks of the call
//! sections (`[sip]`, `[media]`, `[ivr]`, `[acd]`), which need each other's values (prompt
//! names from `media.sounds_dir`, queue names from `[acd]`).
//!
//! Owns the defaults of those sections and the mapping of their validators' findings onto
//! file positions; must not change what the sections mean (their own modules do).

use super::Problems;
use crate::acd::AcdConfig;
use crate::ivr::IvrConfig;
use crate::media::config::MediaConfig;
use crate::sip::SipConfig;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// The text of `deploy/callflow.toml`.
pub const BUILTIN_CALL_FLOW: &str = include_str!("../../deploy/callflow.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallFlow {
    ivr: IvrConfig,
    acd: AcdConfig,
}

/// Parses the compiled-in file. It is part of the binary and covered by a unit test, so a
/// failure here is a build defect, not an input error.
fn builtin() -> CallFlow {
    toml::from_str(BUILTIN_CALL_FLOW).expect("deploy/callflow.toml is valid (unit-tested)")
}

impl Default for IvrConfig {
    fn default() -> Self {
        builtin().ivr
    }
}

impl Default for AcdConfig {
    fn default() -> Self {
        builtin().acd
    }
}

/// The prompt names (`*.wav` file stems) in `dir`, or why the folder cannot be read.
pub fn prompt_names(dir: &Path) -> Result<BTreeSet<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read the prompt folder {}: {e}; give the folder holding the prompt WAVs \
             (relative paths start from the directory hotlined runs in)",
            dir.display()
        )
    })?;
    Ok(entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let is_wav = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"));
            is_wav
                .then(|| path.file_stem()?.to_str().map(str::to_owned))
                .flatten()
        })
        .collect())
}

/// A validator message that starts with its own key (`sip.allowed_sources: …`): split it
/// into key and message; otherwise report it on `section`.
fn report_keyed(problems: &mut Problems<'_>, section: &str, message: &str) {
    let prefix = format!("{section}.");
    if let Some((key, rest)) = message.split_once(": ")
        && key.starts_with(&prefix)
        && !key.contains(' ')
    {
        problems.report(key, rest);
        return;
    }
    if let Some((key, rest)) = message.split_once(" = ")
        && key.starts_with(&prefix)
        && !key.contains(' ')
    {
        problems.report(key, format!("{key} = {rest}"));
        return;
    }
    problems.report(section, message);
}

/// Checks `[sip]`, `[media]`, `[ivr]` and `[acd]` together.
pub(super) fn validate(
    sip: &SipConfig,
    media: &MediaConfig,
    ivr: &IvrConfig,
    acd: &AcdConfig,
    problems: &mut Problems<'_>,
) {
    if let Err(message) = sip.validate() {
        report_keyed(problems, "sip", &message);
    }
    if let Err(error) = media.validate() {
        report_keyed(problems, "media", &error.to_string());
    }
    let queues = acd.queue_names();
    match prompt_names(&media.sounds_dir) {
        Ok(prompts) => {
            let locate = |key: &str| problems.locate(key);
            let found = crate::ivr::validate(ivr, &prompts, &queues, &locate);
            for problem in found {
                if problem.is_warning() {
                    problems.warn(&problem.path, problem.message);
                } else {
                    problems.report(&problem.path, problem.message);
                }
            }
        }
        Err(message) => problems.report("media.sounds_dir", message),
    }
    for problem in crate::acd::validate(acd, &ivr.leak.queue) {
        problems.report(&problem.path, problem.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_call_flow_parses_and_is_valid_with_the_shipped_prompts() {
        let flow = builtin();
        let prompts = prompt_names(Path::new("sounds/zh-CN")).unwrap();
        let queues = flow.acd.queue_names();
        let locate = |key: &str| key.to_owned();
        assert_eq!(
            crate::ivr::validate(&flow.ivr, &prompts, &queues, &locate),
            vec![]
        );
        assert_eq!(
            crate::acd::validate(&flow.acd, &flow.ivr.leak.queue),
            vec![]
        );
        assert!(flow.acd.agents.is_empty());
        assert!(queues.contains("emergency") && queues.contains("general"));
    }
}
