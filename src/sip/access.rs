//! Who may talk to us and how much: source allow-list (CIDRs), per-source token buckets
//! against floods, the concurrent-call limit with capacity reserved for priority (leak)
//! lines, and the graceful-shutdown switch.
//!
//! Sans-IO: time comes in as `Instant`; must not parse SIP or hold calls itself.

use super::config::{SipConfig, UnauthorisedAction};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// An IP network such as `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address (a single host).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| {
            format!("`{text}` is not an IP address or CIDR network (e.g. 10.0.0.0/8)")
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(network: u128, addr: u128, prefix: u8, bits: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = bits - u32::from(prefix);
    (network >> shift) == (addr >> shift)
}

/// What to do with a request from a given source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceVerdict {
    Allowed,
    /// Not on the allow-list: answer 403.
    Forbidden,
    /// Not on the allow-list or over its rate: drop without an answer.
    Silent,
}

/// Whether a new call may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Answer 503 with Retry-After.
    Busy,
    /// Shutting down: answer 503 with Retry-After.
    ShuttingDown,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Most sources tracked at once; beyond it full buckets are forgotten first.
const MAX_TRACKED_SOURCES: usize = 10_000;

#[derive(Debug)]
pub struct AccessControl {
    allowed: Vec<Cidr>,
    unauthorised: UnauthorisedAction,
    rate_per_second: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
    max_calls: usize,
    reserved_for_priority: usize,
    shutting_down: bool,
}

impl AccessControl {
    pub fn new(config: &SipConfig) -> Result<AccessControl, String> {
        let allowed = config
            .allowed_sources
            .iter()
            .map(|s| Cidr::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("sip.allowed_sources: {e}"))?;
        if config.reserved_for_leaks > config.max_calls {
            return Err(format!(
                "sip.reserved_for_leaks ({}) is larger than sip.max_calls ({}); lower it",
                config.reserved_for_leaks, config.max_calls
            ));
        }
        Ok(AccessControl {
            allowed,
            unauthorised: config.unauthorised_invite,
            rate_per_second: config.rate_limit_per_second.max(0.0),
            burst: config.rate_limit_burst.max(1.0),
            buckets: HashMap::new(),
            max_calls: config.max_calls,
            reserved_for_priority: config.reserved_for_leaks,
            shutting_down: false,
        })
    }

    pub fn is_allowed_source(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|c| c.contains(ip))
    }

    /// Checks an out-of-dialog request: allow-list first, then the source's token bucket.
    pub fn check_request(&mut self, ip: IpAddr, now: Instant) -> SourceVerdict {
        if !self.take_token(ip, now) {
            return SourceVerdict::Silent;
        }
        if self.is_allowed_source(ip) {
            SourceVerdict::Allowed
        } else {
            match self.unauthorised {
                UnauthorisedAction::Reject => SourceVerdict::Forbidden,
                UnauthorisedAction::Ignore => SourceVerdict::Silent,
            }
        }
    }

    fn take_token(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_TRACKED_SOURCES && !self.buckets.contains_key(&ip) {
            let (rate, burst) = (self.rate_per_second, self.burst);
            self.buckets
                .retain(|_, b| refill(b, now, rate, burst) < burst);
            if self.buckets.len() >= MAX_TRACKED_SOURCES {
                return false;
            }
        }
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let tokens = refill(bucket, now, self.rate_per_second, self.burst);
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            true
        } else {
            bucket.tokens = tokens;
            false
        }
    }

    /// May a new call start while `active_calls` are up? Priority calls may use the reserve.
    pub fn admit_call(&self, active_calls: usize, priority: bool) -> Admission {
        if self.shutting_down {
            return Admission::ShuttingDown;
        }
        let limit = if priority {
            self.max_calls
        } else {
            self.max_calls - self.reserved_for_priority
        };
        if active_calls < limit {
            Admission::Admit
        } else {
            Admission::Busy
        }
    }

    pub fn max_calls(&self) -> usize {
        self.max_calls
    }

    pub fn reserved_for_priority(&self) -> usize {
        self.reserved_for_priority
    }

    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }
}

fn refill(bucket: &mut Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
    bucket.last = now.max(bucket.last);
    bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
    bucket.tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn access(f: impl FnOnce(&mut SipConfig)) -> AccessControl {
        let mut c = SipConfig::default();
        f(&mut c);
        AccessControl::new(&c).unwrap()
    }

    #[test]
    fn cidrs_match_v4_v6_and_mapped() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            Cidr::parse("::1/128")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("pbx.local").is_err());
    }

    #[test]
    fn unauthorised_sources_rejected_or_ignored() {
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            access(|_| {}).check_request(ip, now),
            SourceVerdict::Forbidden
        );
        let mut quiet = access(|c| c.unauthorised_invite = UnauthorisedAction::Ignore);
        assert_eq!(quiet.check_request(ip, now), SourceVerdict::Silent);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(quiet.check_request(lo, now), SourceVerdict::Allowed);
    }

    #[test]
    fn flood_from_one_source_does_not_starve_another() {
        let mut a = access(|c| {
            c.rate_limit_per_second = 10.0;
            c.rate_limit_burst = 20.0;
            c.allowed_sources = vec!["0.0.0.0/0".into()];
        });
        let now = Instant::now();
        let flooder: IpAddr = "127.0.0.9".parse().unwrap();
        let pbx: IpAddr = "127.0.0.1".parse().unwrap();
        let passed = (0..1000)
            .filter(|_| a.check_request(flooder, now) == SourceVerdict::Allowed)
            .count();
        assert_eq!(passed, 20);
        assert_eq!(a.check_request(pbx, now), SourceVerdict::Allowed);
        // Refills at the configured rate.
        let later = now + Duration::from_millis(500);
        let passed = (0..100)
            .filter(|_| a.check_request(flooder, later) == SourceVerdict::Allowed)
            .count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn capacity_reserve_and_shutdown() {
        let mut a = access(|c| {
            c.max_calls = 3;
            c.reserved_for_leaks = 1;
        });
        assert_eq!(a.admit_call(1, false), Admission::Admit);
        assert_eq!(a.admit_call(2, false), Admission::Busy);
        assert_eq!(a.admit_call(2, true), Admission::Admit);
        assert_eq!(a.admit_call(3, true), Admission::Busy);
        a.begin_shutdown();
        assert_eq!(a.admit_call(0, true), Admission::ShuttingDown);
        let mut bad = SipConfig::default();
        bad.reserved_for_leaks = bad.max_calls + 1;
        assert!(AccessControl::new(&bad).is_err());
    }
}
