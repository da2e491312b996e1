//! `[media]` configuration: the RTP port range, bind address, prompt and recording folders
//! and the reorder depth. The lead embeds [`MediaConfig`] into the daemon's `Config`.
//!
//! Owns parsing and validating these values; must not open sockets or read files.

use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// First RTP port (even). RTP uses even ports, RTCP the odd port above.
    pub rtp_port_min: u16,
    /// Last port of the range (inclusive; the highest usable pair is the even port below it
    /// with its odd RTCP port).
    pub rtp_port_max: u16,
    /// Local address the RTP/RTCP sockets bind to (and that SDP announces).
    pub bind_address: IpAddr,
    /// Folder with the prompt WAVs (8 kHz, mono, 16-bit), e.g. `sounds/zh-CN`.
    pub sounds_dir: PathBuf,
    /// Folder where call recordings are written (mode 0600).
    pub recordings_dir: PathBuf,
    /// How many packets the reorder buffer may hold back waiting for a missing one.
    pub jitter_depth: usize,
    /// Whose packets are the caller's media: see [`Latching`].
    pub latching: Latching,
    /// Seconds without RTP or RTCP from the caller (not on hold) after which the call is
    /// hung up; 0: never.
    pub inactivity_secs: u64,
    /// Real-time priority (SCHED_RR, 1-99) of the media worker threads, so a busy database,
    /// log or other process on the machine cannot make prompts and RTP late; 0: normal
    /// scheduling. Needs CAP_SYS_NICE or an RTPRIO limit (systemd `LimitRTPRIO=`); without
    /// them the threads run at normal priority and say so in the log.
    pub realtime_priority: u8,
}

/// Which sources a call's RTP is accepted from (`media.latching`); anything else is dropped
/// and counted.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Latching {
    /// Only the address in the peer's SDP (the PBX sits on our network).
    #[default]
    Sdp,
    /// Any port of the host the SIP request came from, following the peer's stream: the
    /// PBX is behind NAT and its SDP names a private address.
    Nat,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_port_min: 20000,
            rtp_port_max: 20999,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            sounds_dir: PathBuf::from("sounds/zh-CN"),
            recordings_dir: PathBuf::from("var/recordings"),
            jitter_depth: 3,
            latching: Latching::Sdp,
            inactivity_secs: 60,
            realtime_priority: 10,
        }
    }
}

/// A `[media]` value that cannot work, with what to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaConfigError {
    #[error(
        "media.rtp_port_min = {0} is odd: RTP needs even ports (RTCP takes the odd one above); use {even}",
        even = .0.saturating_sub(1)
    )]
    OddMinPort(u16),
    #[error(
        "media.rtp_port_min = {min} .. rtp_port_max = {max} holds no RTP/RTCP pair: the range needs at least two ports, min even and below max"
    )]
    EmptyRange { min: u16, max: u16 },
    #[error("media.rtp_port_min = {0} is a privileged port: use 1024 or above")]
    PrivilegedPort(u16),
    #[error("media.jitter_depth = {0} is out of range: use 1 to 50 packets (3 is a good default)")]
    JitterDepth(usize),
    #[error(
        "media.realtime_priority = {0} is out of range: use 1 to 99 for real-time media threads (10 is a good default), or 0 for normal scheduling"
    )]
    RealtimePriority(u8),
}

impl MediaConfig {
    pub fn validate(&self) -> Result<(), MediaConfigError> {
        if self.rtp_port_min % 2 == 1 {
            return Err(MediaConfigError::OddMinPort(self.rtp_port_min));
        }
        if self.rtp_port_min < 1024 {
            return Err(MediaConfigError::PrivilegedPort(self.rtp_port_min));
        }
        if self.rtp_port_max <= self.rtp_port_min {
            return Err(MediaConfigError::EmptyRange {
                min: self.rtp_port_min,
                max: self.rtp_port_max,
            });
        }
        if !(1..=50).contains(&self.jitter_depth) {
            return Err(MediaConfigError::JitterDepth(self.jitter_depth));
        }
        if self.realtime_priority > 99 {
            return Err(MediaConfigError::RealtimePriority(self.realtime_priority));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let config: MediaConfig = toml::from_str(
            "rtp_port_min = 30000\nrtp_port_max = 30100\nbind_address = \"127.0.0.1\"\njitter_depth = 4\nlatching = \"nat\"",
        )
        .unwrap();
        assert_eq!(config.rtp_port_min, 30000);
        assert_eq!(config.jitter_depth, 4);
        assert_eq!(config.latching, Latching::Nat);
        assert!(toml::from_str::<MediaConfig>("latching = \"any\"").is_err());
        assert_eq!(config.validate(), Ok(()));
        let error = toml::from_str::<MediaConfig>("rtp_port = 1").unwrap_err();
        assert!(error.to_string().contains("rtp_port"), "{error}");
    }

    #[test]
    fn validation_names_the_fix() {
        let odd = MediaConfig {
            rtp_port_min: 30001,
            ..MediaConfig::default()
        };
        assert_eq!(odd.validate(), Err(MediaConfigError::OddMinPort(30001)));
        assert!(
            odd.validate()
                .unwrap_err()
                .to_string()
                .contains("use 30000")
        );
        let empty = MediaConfig {
            rtp_port_min: 30000,
            rtp_port_max: 30000,
            ..MediaConfig::default()
        };
        assert!(matches!(
            empty.validate(),
            Err(MediaConfigError::EmptyRange { .. })
        ));
        let depth = MediaConfig {
            jitter_depth: 0,
            ..MediaConfig::default()
        };
        assert_eq!(depth.validate(), Err(MediaConfigError::JitterDepth(0)));
    }
}
