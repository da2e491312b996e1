//! `[sip]` section of the configuration: listen address, who may call us, flood and capacity
//! limits, RFC 3261 timer values and our User-Agent string.
//!
//! Owns the shape and defaults only; must not open sockets (the transport does).

use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// What to do with an INVITE (or any request) from a source outside `allowed_sources`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnauthorisedAction {
    /// Answer 403 Forbidden.
    #[default]
    Reject,
    /// Stay silent, so scanners learn nothing.
    Ignore,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address for both the UDP socket and the TCP listener.
    pub listen: SocketAddr,
    pub udp: bool,
    pub tcp: bool,
    /// PBX/proxy addresses or networks (CIDR, e.g. `10.1.2.0/24`, `::1/128`) that may send
    /// requests.
    pub allowed_sources: Vec<String>,
    pub unauthorised_invite: UnauthorisedAction,
    /// Out-of-dialog requests per second allowed from one source address; more are dropped.
    pub rate_limit_per_second: f64,
    /// How many requests a source may send in a burst above the steady rate.
    pub rate_limit_burst: f64,
    /// Concurrent calls (ringing or answered) we accept in total.
    pub max_calls: usize,
    /// Part of `max_calls` kept free for priority (gas leak) lines: normal calls are limited
    /// to `max_calls - reserved_for_leaks`.
    pub reserved_for_leaks: usize,
    /// Request-URI user parts (dialled numbers) that are priority lines and may use the
    /// reserved capacity.
    pub priority_numbers: Vec<String>,
    /// Seconds suggested in Retry-After when we are full or shutting down.
    pub retry_after_secs: u32,
    /// RFC 3261 T1 (round-trip estimate), in milliseconds.
    pub t1_ms: u64,
    /// RFC 3261 T2 (retransmit cap), in milliseconds.
    pub t2_ms: u64,
    /// RFC 3261 T4 (network lifetime of a message), in milliseconds.
    pub t4_ms: u64,
    pub user_agent: String,
    /// TCP connections accepted at once, from all sources together.
    pub tcp_max_connections: usize,
    /// TCP connections accepted at once from one source address.
    pub tcp_max_connections_per_source: usize,
    /// A TCP connection that carries nothing for this long is closed.
    pub tcp_idle_timeout_secs: u64,
    /// A message begun on a TCP connection must be complete within this long (slowloris).
    pub tcp_message_timeout_secs: u64,
    /// RFC 4028 session interval we ask for in our 2xx when an INVITE asks none; 0: ask
    /// none (an INVITE's own `Session-Expires` is honoured either way). At least 90.
    pub session_expires_secs: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            udp: true,
            tcp: true,
            allowed_sources: vec!["127.0.0.0/8".into(), "::1/128".into()],
            unauthorised_invite: UnauthorisedAction::Reject,
            rate_limit_per_second: 50.0,
            rate_limit_burst: 100.0,
            max_calls: 60,
            reserved_for_leaks: 10,
            priority_numbers: Vec::new(),
            retry_after_secs: 30,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            user_agent: concat!("hotlined/", env!("CARGO_PKG_VERSION")).into(),
            tcp_max_connections: 256,
            tcp_max_connections_per_source: 32,
            tcp_idle_timeout_secs: 600,
            tcp_message_timeout_secs: 10,
            session_expires_secs: 1800,
        }
    }
}

/// Limits on SIP over TCP (see the `tcp_*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_per_source: usize,
    pub idle_timeout: Duration,
    pub message_timeout: Duration,
}

/// The three base timers, as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl SipConfig {
    /// Checks what serde cannot (CIDR syntax, reserve within the limit); the message names
    /// the key to fix.
    pub fn validate(&self) -> Result<(), String> {
        super::access::AccessControl::new(self)?;
        for (key, value) in [
            ("tcp_max_connections", self.tcp_max_connections as u64),
            (
                "tcp_max_connections_per_source",
                self.tcp_max_connections_per_source as u64,
            ),
            ("tcp_idle_timeout_secs", self.tcp_idle_timeout_secs),
            ("tcp_message_timeout_secs", self.tcp_message_timeout_secs),
        ] {
            if value == 0 {
                return Err(format!(
                    "sip.{key} = 0 would refuse or cut every TCP connection; use at least 1 \
                     (see deploy/hotline.toml for the defaults)"
                ));
            }
        }
        let min = crate::sip::endpoint::MIN_SESSION_EXPIRES_SECS;
        if self.session_expires_secs != 0 && self.session_expires_secs < min {
            return Err(format!(
                "sip.session_expires_secs = {} is below the RFC 4028 minimum of {min} s; use \
                 {min} or more (default 1800), or 0 to ask for no session timer",
                self.session_expires_secs
            ));
        }
        if self.tcp_max_connections_per_source > self.tcp_max_connections {
            return Err(format!(
                "sip.tcp_max_connections_per_source ({}) is larger than sip.tcp_max_connections \
                 ({}); lower it",
                self.tcp_max_connections_per_source, self.tcp_max_connections
            ));
        }
        Ok(())
    }

    /// The TCP limits, as the transport uses them.
    pub fn tcp_limits(&self) -> TcpLimits {
        TcpLimits {
            max_connections: self.tcp_max_connections,
            max_per_source: self.tcp_max_connections_per_source,
            idle_timeout: Duration::from_secs(self.tcp_idle_timeout_secs),
            message_timeout: Duration::from_secs(self.tcp_message_timeout_secs),
        }
    }

    pub fn timers(&self) -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(self.t1_ms.max(1)),
            t2: Duration::from_millis(self.t2_ms.max(self.t1_ms).max(1)),
            t4: Duration::from_millis(self.t4_ms.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_and_rejects_unknown_keys() {
        let c: SipConfig = toml::from_str(
            "listen = \"127.0.0.1:5070\"\nunauthorised_invite = \"ignore\"\nmax_calls = 5\nreserved_for_leaks = 1\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 5070);
        assert_eq!(c.unauthorised_invite, UnauthorisedAction::Ignore);
        assert_eq!(c.max_calls, 5);
        assert_eq!(c.t1_ms, 500);
        assert!(c.validate().is_ok());
        let bad: SipConfig = toml::from_str("allowed_sources = [\"10.0.0.0/40\"]").unwrap();
        assert!(bad.validate().unwrap_err().contains("sip.allowed_sources"));
        let short: SipConfig = toml::from_str("session_expires_secs = 60").unwrap();
        let err = short.validate().unwrap_err();
        assert!(err.starts_with("sip.session_expires_secs = 60 "), "{err}");
        let none: SipConfig = toml::from_str("session_expires_secs = 0").unwrap();
        assert!(none.validate().is_ok());
        assert_eq!(SipConfig::default().session_expires_secs, 1800);
        let err = toml::from_str::<SipConfig>("lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
