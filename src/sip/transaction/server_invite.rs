//! The INVITE server transaction (RFC 3261 §17.2.1 with RFC 6026 Accepted): the 2xx and
//! non-2xx retransmissions (Timer G), Timer H for a missing ACK, Timer I after it.
//!
//! Owns one INVITE server transaction's timing and last response; must not decide what to
//! answer or know about dialogs.

use super::{Backoff, Peer, Transmit, earliest, resend, send_remembered};
use crate::sip::config::TimerConfig;
use crate::sip::message::Message;
use std::time::{Duration, Instant};

/// INVITE server transaction states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    /// 2xx sent, retransmitted until the ACK arrives (RFC 6026 Accepted).
    Accepted,
    /// Non-2xx final sent, retransmitted (Timer G) until ACK.
    Completed,
    /// ACK for the non-2xx received; absorbing ACK retransmissions until Timer I.
    Confirmed,
    Terminated,
}

/// What an INVITE server transaction timeout means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteTimeout {
    /// Timer H fired in Accepted: the 2xx was never ACKed; tear the call down.
    NoAckFor2xx,
    /// Timer H fired in Completed: the error response was never ACKed.
    NoAckForError,
}

#[derive(Debug)]
pub struct ServerInvite {
    pub peer: Peer,
    state: ServerInviteState,
    timers: TimerConfig,
    last_response: Option<Vec<u8>>,
    retransmit: Option<Backoff>,
    give_up_at: Option<Instant>,
    end_at: Option<Instant>,
}

impl ServerInvite {
    pub fn new(peer: Peer, timers: TimerConfig) -> ServerInvite {
        ServerInvite {
            peer,
            state: ServerInviteState::Proceeding,
            timers,
            last_response: None,
            retransmit: None,
            give_up_at: None,
            end_at: None,
        }
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Sends a response; 1xx keeps Proceeding, 2xx enters Accepted, others Completed.
    pub fn respond(&mut self, response: &Message, now: Instant, out: &mut Vec<Transmit>) {
        let code = response.code().unwrap_or(500);
        if self.state != ServerInviteState::Proceeding {
            return;
        }
        send_remembered(self.peer, response, &mut self.last_response, out);
        if code < 200 {
            return;
        }
        let t1 = self.timers.t1;
        self.give_up_at = Some(now + 64 * t1);
        if (200..300).contains(&code) {
            // The UAS core retransmits 2xx on every transport (§13.3.1.4).
            self.state = ServerInviteState::Accepted;
            self.retransmit = Some(Backoff::start(now, t1, Some(self.timers.t2)));
        } else {
            self.state = ServerInviteState::Completed;
            self.retransmit =
                (!self.peer.is_reliable()).then(|| Backoff::start(now, t1, Some(self.timers.t2)));
        }
    }

    /// The INVITE came again: resend whatever we last said.
    pub fn on_retransmission(&mut self, out: &mut Vec<Transmit>) {
        resend(self.peer, &self.last_response, out);
    }

    /// An ACK matched this transaction. Returns true when it confirmed a 2xx.
    pub fn on_ack(&mut self, now: Instant) -> bool {
        match self.state {
            ServerInviteState::Accepted => {
                self.state = ServerInviteState::Terminated;
                true
            }
            ServerInviteState::Completed => {
                self.state = ServerInviteState::Confirmed;
                self.retransmit = None;
                self.give_up_at = None;
                let linger = if self.peer.is_reliable() {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.end_at = Some(now + linger);
                false
            }
            _ => false,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state == ServerInviteState::Terminated {
            return None;
        }
        earliest(&[
            self.retransmit.map(|r| r.next),
            self.give_up_at,
            self.end_at,
        ])
    }

    pub fn on_timeout(
        &mut self,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Option<ServerInviteTimeout> {
        if self.give_up_at.is_some_and(|t| t <= now) {
            let timeout = match self.state {
                ServerInviteState::Accepted => ServerInviteTimeout::NoAckFor2xx,
                _ => ServerInviteTimeout::NoAckForError,
            };
            self.state = ServerInviteState::Terminated;
            return Some(timeout);
        }
        if self.end_at.is_some_and(|t| t <= now) {
            self.state = ServerInviteState::Terminated;
            return None;
        }
        if let Some(backoff) = &mut self.retransmit
            && backoff.next <= now
        {
            backoff.advance();
            resend(self.peer, &self.last_response, out);
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_support::*;

    /// Fires every deadline of `tx` in order; returns the times (offset from `t0`) at which
    /// something was transmitted, and the time of the first timeout event.
    fn drive_server_invite(
        tx: &mut ServerInvite,
        t0: Instant,
    ) -> (Vec<u64>, Option<(u64, ServerInviteTimeout)>) {
        let mut sent = Vec::new();
        while let Some(at) = tx.next_deadline() {
            let mut out = Vec::new();
            let event = tx.on_timeout(at, &mut out);
            if !out.is_empty() {
                sent.push((at - t0).as_millis() as u64);
            }
            if let Some(e) = event {
                return (sent, Some(((at - t0).as_millis() as u64, e)));
            }
        }
        (sent, None)
    }

    #[test]
    fn two_xx_retransmitted_with_doubling_capped_at_t2_until_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(udp(), timers());
        let mut out = Vec::new();
        tx.respond(&response(&request("INVITE"), 200), t0, &mut out);
        assert_eq!(out.len(), 1);
        let (sent, timeout) = drive_server_invite(&mut tx, t0);
        assert_eq!(
            &sent[..6],
            &[500, 1500, 3500, 7500, 11500, 15500],
            "T1, 2T1, 4T1, then every T2"
        );
        assert!(sent.iter().all(|t| *t < 32_000));
        assert_eq!(timeout, Some((32_000, ServerInviteTimeout::NoAckFor2xx)));
        assert!(tx.is_terminated());
    }

    #[test]
    fn ack_stops_2xx_retransmission() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(udp(), timers());
        let mut out = Vec::new();
        tx.respond(&response(&request("INVITE"), 200), t0, &mut out);
        let mut out = Vec::new();
        tx.on_timeout(t0 + Duration::from_millis(500), &mut out);
        assert_eq!(out.len(), 1);
        assert!(tx.on_ack(t0 + Duration::from_millis(600)));
        assert!(tx.is_terminated());
        assert_eq!(tx.next_deadline(), None);
    }

    #[test]
    fn non_2xx_timer_g_then_ack_then_timer_i() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(udp(), timers());
        let mut out = Vec::new();
        tx.respond(&response(&request("INVITE"), 486), t0, &mut out);
        assert_eq!(tx.state(), ServerInviteState::Completed);
        // Timer G retransmissions.
        let mut sent = Vec::new();
        for _ in 0..3 {
            let at = tx.next_deadline().unwrap();
            let mut out = Vec::new();
            tx.on_timeout(at, &mut out);
            assert_eq!(out.len(), 1);
            sent.push((at - t0).as_millis());
        }
        assert_eq!(sent, vec![500, 1500, 3500]);
        let ack_at = t0 + Duration::from_secs(4);
        assert!(!tx.on_ack(ack_at));
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        // Timer I = T4 absorbs ACK retransmissions, then ends silently.
        assert_eq!(tx.next_deadline(), Some(ack_at + Duration::from_secs(5)));
        let mut out = Vec::new();
        assert_eq!(
            tx.on_timeout(ack_at + Duration::from_secs(5), &mut out),
            None
        );
        assert!(out.is_empty());
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_2xx_without_ack_hits_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(udp(), timers());
        tx.respond(&response(&request("INVITE"), 488), t0, &mut Vec::new());
        let (sent, timeout) = drive_server_invite(&mut tx, t0);
        assert_eq!(sent[..4], [500, 1500, 3500, 7500]);
        assert_eq!(timeout, Some((32_000, ServerInviteTimeout::NoAckForError)));
    }

    #[test]
    fn non_2xx_over_tcp_is_not_retransmitted_and_timer_i_is_zero() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(tcp(), timers());
        tx.respond(&response(&request("INVITE"), 486), t0, &mut Vec::new());
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        tx.on_ack(t0 + Duration::from_millis(10));
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_millis(10)));
    }

    #[test]
    fn retransmitted_invite_gets_last_response() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(udp(), timers());
        let mut out = Vec::new();
        tx.on_retransmission(&mut out);
        assert!(out.is_empty(), "nothing said yet");
        let trying = response(&request("INVITE"), 100);
        tx.respond(&trying, t0, &mut out);
        out.clear();
        tx.on_retransmission(&mut out);
        assert_eq!(out[0].data, trying.to_bytes());
    }
}
