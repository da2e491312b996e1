//! The configuration sections of the work beside the call path: outage announcements
//! (`[announcements]`: text-to-speech command, generic prompt) and recording retention
//! (`[retention]`), plus where the daemon keeps the call journal spool and rendered
//! announcements under `daemon.state_dir`.
//!
//! Owns these sections' keys and checks; must not run the TTS command or touch files.

use super::{DaemonConfig, Problems};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Placeholder of the TTS command for the text to speak.
pub const TTS_TEXT: &str = "{text}";
/// Placeholder of the TTS command for the WAV file to write.
pub const TTS_OUT: &str = "{out}";
/// Longest retention accepted (100 years): longer is a typo.
const MAX_RETENTION_DAYS: u32 = 36_500;
/// Longest purge interval accepted (one week).
const MAX_PURGE_INTERVAL_MINUTES: u32 = 7 * 24 * 60;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AnnouncementsConfig {
    /// Shell command that speaks `{text}` into `{out}`, an 8000 Hz mono 16-bit WAV. Both
    /// placeholders are passed as shell variables (quoted), never pasted into the command, so
    /// any text is safe. `None`: text announcements play `generic_prompt`.
    pub tts_command: Option<String>,
    /// Prompt (file stem in the prompt folder) played for a text announcement when no TTS
    /// command is set.
    pub generic_prompt: String,
}

impl Default for AnnouncementsConfig {
    fn default() -> Self {
        AnnouncementsConfig {
            tts_command: None,
            generic_prompt: "outage_generic".into(),
        }
    }
}

/// Whether `name` can be a prompt name (file stem): `[a-z0-9_]{1,64}`, as the
/// `announcements.prompt` column demands.
pub fn is_prompt_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl AnnouncementsConfig {
    pub(super) fn validate(&self, problems: &mut Problems<'_>) {
        if let Some(command) = &self.tts_command {
            let missing: Vec<&str> = [TTS_TEXT, TTS_OUT]
                .into_iter()
                .filter(|p| !command.contains(p))
                .collect();
            if command.trim().is_empty() {
                problems.report(
                    "announcements.tts_command",
                    "empty; leave the key out to play announcements.generic_prompt, or give a \
                     command such as \"espeak-ng -v cmn-latn-pinyin -s 140 --stdout {text} | sox \
                     -t wav - -r 8000 -c 1 -b 16 -e signed-integer {out}\"",
                );
            } else if !missing.is_empty() {
                problems.report(
                    "announcements.tts_command",
                    format!(
                        "does not contain {}; the command must speak {TTS_TEXT} into the WAV \
                         file {TTS_OUT}",
                        missing.join(" and ")
                    ),
                );
            }
        }
        if !is_prompt_name(&self.generic_prompt) {
            problems.report(
                "announcements.generic_prompt",
                format!(
                    "{:?} is not a prompt name; give the file stem of a WAV in the prompt \
                     folder (lowercase letters, digits and _), e.g. \"outage_generic\"",
                    self.generic_prompt
                ),
            );
        }
    }
}

/// `[metrics]`: the Prometheus endpoint. Off unless `listen` is set. Read at start only.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the HTTP endpoint serving `/metrics`.
    #[serde(deserialize_with = "metrics_listen")]
    pub listen: Option<SocketAddr>,
    /// Seconds between two counts of the tickets by status (also the database up/down check).
    pub ticket_query_secs: u32,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            ticket_query_secs: 30,
        }
    }
}

/// Longest `metrics.ticket_query_secs` accepted (one hour).
const MAX_TICKET_QUERY_SECS: u32 = 3600;

fn metrics_listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not a socket address; write IP:PORT such as \"127.0.0.1:9464\", or \
             leave the key out to serve no metrics"
        ))
    })
}

impl MetricsConfig {
    /// Seconds between two ticket counts.
    pub fn ticket_query_interval(&self) -> Duration {
        Duration::from_secs(
            self.ticket_query_secs
                .clamp(1, MAX_TICKET_QUERY_SECS)
                .into(),
        )
    }

    /// `taken`: the addresses other listeners use (key, address).
    pub(super) fn validate(&self, taken: &[(&str, SocketAddr)], problems: &mut Problems<'_>) {
        if !(1..=MAX_TICKET_QUERY_SECS).contains(&self.ticket_query_secs) {
            problems.report(
                "metrics.ticket_query_secs",
                format!(
                    "{} is out of range; give 1 to {MAX_TICKET_QUERY_SECS} seconds (default 30)",
                    self.ticket_query_secs
                ),
            );
        }
        let Some(listen) = self.listen else {
            return;
        };
        if listen.port() == 0 {
            problems.report(
                "metrics.listen",
                "port 0 would be a different port at every start; give the port Prometheus \
                 scrapes, such as 9464",
            );
        }
        for (key, address) in taken {
            if address.port() == listen.port()
                && (address.ip() == listen.ip()
                    || address.ip().is_unspecified()
                    || listen.ip().is_unspecified())
            {
                problems.report(
                    "metrics.listen",
                    format!("{listen} is also {key} ({address}); choose another port"),
                );
            }
        }
        if !listen.ip().is_loopback() {
            problems.warn(
                "metrics.listen",
                format!(
                    "{listen} is reachable beyond this host and the metrics are served without \
                     authentication; firewall the port or listen on 127.0.0.1"
                ),
            );
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days a call recording is kept (counted from the call's arrival); `None`: forever.
    pub recordings_days: Option<u32>,
    /// How often the purge runs.
    pub purge_interval_minutes: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            recordings_days: None,
            purge_interval_minutes: 60,
        }
    }
}

impl RetentionConfig {
    /// How long recordings are kept; `None`: forever (no purge).
    pub fn recordings(&self) -> Option<chrono::TimeDelta> {
        self.recordings_days
            .map(|days| chrono::TimeDelta::days(i64::from(days)))
    }

    pub fn purge_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.purge_interval_minutes) * 60)
    }

    pub(super) fn validate(&self, problems: &mut Problems<'_>) {
        match self.recordings_days {
            Some(0) => problems.report(
                "retention.recordings_days",
                "is 0, which would delete every recording; give the days to keep them (e.g. \
                 180), or leave the key out to keep them forever",
            ),
            Some(days) if days > MAX_RETENTION_DAYS => problems.report(
                "retention.recordings_days",
                format!(
                    "{days} days is more than {MAX_RETENTION_DAYS}; leave the key out to keep \
                     recordings forever"
                ),
            ),
            _ => {}
        }
        if self.purge_interval_minutes == 0
            || self.purge_interval_minutes > MAX_PURGE_INTERVAL_MINUTES
        {
            problems.report(
                "retention.purge_interval_minutes",
                format!(
                    "{} is out of range; give 1 to {MAX_PURGE_INTERVAL_MINUTES} minutes \
                     (default 60)",
                    self.purge_interval_minutes
                ),
            );
        }
    }
}

impl DaemonConfig {
    /// Where the call journal spools records while PostgreSQL is unreachable.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }

    /// Where announcement texts are rendered to audio (`<id>.wav`).
    pub fn announcements_dir(&self) -> PathBuf {
        self.state_dir.join("announcements")
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str_with_env;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_keep_recordings_and_play_the_generic_prompt() {
        let config = load_str_with_env("", "t.toml", &no_env).unwrap();
        assert_eq!(config.retention.recordings(), None);
        assert_eq!(config.retention.purge_interval().as_secs(), 3600);
        assert_eq!(config.announcements.tts_command, None);
        assert_eq!(config.announcements.generic_prompt, "outage_generic");
        assert!(config.daemon.spool_dir().ends_with("var/spool"));
    }

    #[test]
    fn bad_values_are_reported_on_their_lines() {
        let text = "[announcements]\n\
                    tts_command = \"espeak-ng -w out.wav {text}\"\n\
                    generic_prompt = \"Outage!\"\n\
                    \n\
                    [retention]\n\
                    recordings_days = 0\n\
                    purge_interval_minutes = 0\n";
        let errors = load_str_with_env(text, "t.toml", &no_env).unwrap_err();
        let line = |key: &str| {
            let e = errors
                .find(key)
                .unwrap_or_else(|| panic!("no problem on {key}: {errors}"));
            (e.position.unwrap().line, e.message.clone())
        };
        let (l, m) = line("announcements.tts_command");
        assert_eq!(l, 2);
        assert!(m.contains("does not contain {out}"), "{m}");
        assert_eq!(line("announcements.generic_prompt").0, 3);
        let (l, m) = line("retention.recordings_days");
        assert_eq!(l, 6);
        assert!(m.contains("would delete every recording"), "{m}");
        assert_eq!(line("retention.purge_interval_minutes").0, 7);
        assert_eq!(errors.len(), 4);
    }

    #[test]
    fn a_full_section_loads() {
        let text = "[announcements]\n\
                    tts_command = \"espeak-ng --stdout {text} | sox -t wav - -r 8000 {out}\"\n\
                    [retention]\n\
                    recordings_days = 180\n\
                    purge_interval_minutes = 30\n";
        let config = load_str_with_env(text, "t.toml", &no_env).unwrap();
        assert_eq!(
            config.retention.recordings(),
            Some(chrono::TimeDelta::days(180))
        );
        assert_eq!(config.retention.purge_interval().as_secs(), 1800);
    }

    #[test]
    fn metrics_are_off_by_default_and_bad_listen_values_name_the_key() {
        let config = load_str_with_env("", "t.toml", &no_env).unwrap();
        assert_eq!(config.metrics.listen, None);
        assert_eq!(config.metrics.ticket_query_interval().as_secs(), 30);
        let on = load_str_with_env(
            "[metrics]\nlisten = \"127.0.0.1:9464\"\nticket_query_secs = 5\n",
            "t.toml",
            &no_env,
        )
        .unwrap();
        assert_eq!(on.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(on.metrics.ticket_query_interval().as_secs(), 5);
        let text = "[grpc]\nlisten = \"127.0.0.1:9464\"\n[metrics]\nlisten = \"127.0.0.1:9464\"\n";
        let errors = load_str_with_env(text, "t.toml", &no_env).unwrap_err();
        let clash = errors
            .find("metrics.listen")
            .expect("the clash is reported");
        assert_eq!(clash.position.unwrap().line, 4);
        assert!(clash.message.contains("grpc.listen"), "{}", clash.message);
        let errors = load_str_with_env("[metrics]\nlisten = \"localhost\"\n", "t.toml", &no_env)
            .unwrap_err();
        let bad = errors
            .find("metrics.listen")
            .expect("the bad value is reported");
        assert_eq!(bad.position.unwrap().line, 2);
        assert!(
            bad.message.contains("not a socket address"),
            "{}",
            bad.message
        );
        let errors =
            load_str_with_env("[metrics]\nticket_query_secs = 0\n", "t.toml", &no_env).unwrap_err();
        assert!(
            errors.find("metrics.ticket_query_secs").is_some(),
            "{errors}"
        );
        let open =
            load_str_with_env("[metrics]\nlisten = \"0.0.0.0:9464\"\n", "t.toml", &no_env).unwrap();
        assert!(open.warnings.iter().any(|w| w.key == "metrics.listen"));
    }
}
