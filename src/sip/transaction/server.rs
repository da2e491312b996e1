//! The non-INVITE server transaction (RFC 3261 §17.2.2): we answer at once, so it only
//! resends its final response to retransmitted requests until Timer J.
//!
//! Owns one non-INVITE server transaction's last response and Timer J; must not decide what
//! to answer.

use super::{Peer, Transmit, resend, send_remembered};
use crate::sip::config::TimerConfig;
use crate::sip::message::Message;
use std::time::{Duration, Instant};

/// Non-INVITE server transaction (we always answer at once: Trying → Completed → Timer J).
#[derive(Debug)]
pub struct ServerNonInvite {
    pub peer: Peer,
    timers: TimerConfig,
    last_response: Option<Vec<u8>>,
    end_at: Option<Instant>,
    terminated: bool,
}

impl ServerNonInvite {
    pub fn new(peer: Peer, timers: TimerConfig) -> ServerNonInvite {
        ServerNonInvite {
            peer,
            timers,
            last_response: None,
            end_at: None,
            terminated: false,
        }
    }

    pub fn respond(&mut self, response: &Message, now: Instant, out: &mut Vec<Transmit>) {
        if self.end_at.is_some() {
            return;
        }
        send_remembered(self.peer, response, &mut self.last_response, out);
        if response.code().unwrap_or(500) >= 200 {
            let linger = if self.peer.is_reliable() {
                Duration::ZERO
            } else {
                64 * self.timers.t1
            };
            self.end_at = Some(now + linger);
        }
    }

    pub fn on_retransmission(&mut self, out: &mut Vec<Transmit>) {
        resend(self.peer, &self.last_response, out);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.end_at.filter(|_| !self.terminated)
    }

    pub fn on_timeout(&mut self, now: Instant) {
        if self.end_at.is_some_and(|t| t <= now) {
            self.terminated = true;
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_support::*;

    #[test]
    fn server_non_invite_timer_j() {
        let t0 = Instant::now();
        let mut tx = ServerNonInvite::new(udp(), timers());
        let ok = response(&request("BYE"), 200);
        let mut out = Vec::new();
        tx.respond(&ok, t0, &mut out);
        out.clear();
        tx.on_retransmission(&mut out);
        assert_eq!(out[0].data, ok.to_bytes());
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
        let mut reliable = ServerNonInvite::new(tcp(), timers());
        reliable.respond(&ok, t0, &mut Vec::new());
        assert_eq!(reliable.next_deadline(), Some(t0));
    }
}
