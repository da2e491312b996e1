//! Client transactions (RFC 3261 §17.1): INVITE (Timers A, B, C, D and the ACK for a non-2xx
//! final response) and non-INVITE (Timers E, F, K).
//!
//! Owns one client transaction's request, retransmissions and timers; must not build dialogs
//! or decide what a response means for a call.

use super::{Backoff, Peer, Transmit, earliest};
use crate::sip::config::TimerConfig;
use crate::sip::message::Message;
use std::time::{Duration, Instant};

/// What a client transaction tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutcome {
    Provisional(Message),
    /// A final response (first copy only; retransmissions are absorbed, except 2xx to
    /// INVITE which the dialog must re-ACK, reported as `Final` again).
    Final(Message),
    /// Timer B or F: no final response in time.
    Timeout,
    /// Timer C: an INVITE rang [`TIMER_C`] after its last provisional response without a
    /// final one; the user should CANCEL it (the 487 then ends the transaction).
    RingTimeout,
}

/// How long an INVITE in Proceeding waits for its final response after the last provisional
/// one (RFC 3261 §16.6 Timer C, "greater than 3 minutes"). Timer B covers Calling only: a
/// phone that rings is not a lost request, and ring limits are the user's (the ACD's ring
/// timeout, IVR transfer limits); this is the backstop.
pub const TIMER_C: Duration = Duration::from_secs(181);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// Client transaction for INVITE (Timers A, B, D) or any other method (Timers E, F, K).
#[derive(Debug)]
pub struct ClientTransaction {
    pub peer: Peer,
    is_invite: bool,
    state: ClientState,
    timers: TimerConfig,
    request: Message,
    request_bytes: Vec<u8>,
    ack_bytes: Option<Vec<u8>>,
    retransmit: Option<Backoff>,
    give_up_at: Option<Instant>,
    /// Timer C (INVITE in Proceeding).
    ring_until: Option<Instant>,
    end_at: Option<Instant>,
}

impl ClientTransaction {
    /// Sends `request` and starts the timers.
    pub fn start(
        request: Message,
        peer: Peer,
        timers: TimerConfig,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> ClientTransaction {
        let is_invite = request.method() == Some("INVITE");
        let request_bytes = request.to_bytes();
        out.push(Transmit {
            peer,
            data: request_bytes.clone(),
        });
        let cap = (!is_invite).then_some(timers.t2);
        ClientTransaction {
            peer,
            is_invite,
            state: ClientState::Calling,
            timers,
            request,
            request_bytes,
            ack_bytes: None,
            retransmit: (!peer.is_reliable()).then(|| Backoff::start(now, timers.t1, cap)),
            give_up_at: Some(now + 64 * timers.t1),
            ring_until: None,
            end_at: None,
        }
    }

    pub fn request(&self) -> &Message {
        &self.request
    }

    /// Feeds a response matched to this transaction.
    pub fn on_response(
        &mut self,
        response: Message,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Option<ClientOutcome> {
        let code = response.code()?;
        match self.state {
            ClientState::Calling | ClientState::Proceeding if code < 200 => {
                let was_calling = self.state == ClientState::Calling;
                self.state = ClientState::Proceeding;
                if self.is_invite {
                    // §17.1.1.2: Timer B runs in Calling only; Timer C from here on,
                    // restarted by every provisional response until it fired (then the
                    // CANCEL is out and only its 487 is awaited).
                    self.retransmit = None;
                    if was_calling || self.ring_until.is_some() {
                        self.give_up_at = None;
                        self.ring_until = Some(now + TIMER_C);
                    }
                } else if let Some(r) = &mut self.retransmit {
                    // Timer E continues at T2 in Proceeding.
                    r.interval = self.timers.t2;
                    r.next = now + self.timers.t2;
                }
                Some(ClientOutcome::Provisional(response))
            }
            ClientState::Calling | ClientState::Proceeding => {
                self.retransmit = None;
                self.give_up_at = None;
                self.ring_until = None;
                if self.is_invite && (200..300).contains(&code) {
                    self.state = ClientState::Terminated;
                } else {
                    if self.is_invite {
                        let ack = self.ack_for(&response).to_bytes();
                        out.push(Transmit {
                            peer: self.peer,
                            data: ack.clone(),
                        });
                        self.ack_bytes = Some(ack);
                    }
                    self.state = ClientState::Completed;
                    let linger = match (self.peer.is_reliable(), self.is_invite) {
                        (true, _) => Duration::ZERO,
                        (false, true) => Duration::from_secs(32), // Timer D
                        (false, false) => self.timers.t4,         // Timer K
                    };
                    self.end_at = Some(now + linger);
                }
                Some(ClientOutcome::Final(response))
            }
            ClientState::Completed => {
                if let Some(ack) = &self.ack_bytes {
                    out.push(Transmit {
                        peer: self.peer,
                        data: ack.clone(),
                    });
                }
                None
            }
            ClientState::Terminated => None,
        }
    }

    /// ACK for a non-2xx final response (§17.1.1.3): same branch, Request-URI and Route.
    fn ack_for(&self, response: &Message) -> Message {
        let uri = self.request.uri().unwrap_or("sip:invalid");
        let mut ack = Message::request("ACK", uri);
        if let Some(via) = self.request.header_values("Via").first() {
            ack.push_header("Via", *via);
        }
        for (name, value) in self.request.headers() {
            if matches!(name.as_str(), "Call-ID" | "From" | "Route" | "Max-Forwards") {
                ack.push_header(name, value.clone());
            }
        }
        if let Some(to) = response.header("To") {
            ack.push_header("To", to);
        }
        let number = self.request.cseq().map_or(1, |(n, _)| n);
        ack.push_header("CSeq", format!("{number} ACK"));
        ack
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state == ClientState::Terminated {
            return None;
        }
        earliest(&[
            self.retransmit.map(|r| r.next),
            self.give_up_at,
            self.ring_until,
            self.end_at,
        ])
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<Transmit>) -> Option<ClientOutcome> {
        if self.give_up_at.is_some_and(|t| t <= now) {
            self.state = ClientState::Terminated;
            return Some(ClientOutcome::Timeout);
        }
        if self.ring_until.is_some_and(|t| t <= now) {
            // Wait for the 487 the CANCEL brings, as long as Timer B would.
            self.ring_until = None;
            self.give_up_at = Some(now + 64 * self.timers.t1);
            return Some(ClientOutcome::RingTimeout);
        }
        if self.end_at.is_some_and(|t| t <= now) {
            self.state = ClientState::Terminated;
            return None;
        }
        if let Some(backoff) = &mut self.retransmit
            && backoff.next <= now
        {
            backoff.advance();
            out.push(Transmit {
                peer: self.peer,
                data: self.request_bytes.clone(),
            });
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_support::*;

    fn drive_client(tx: &mut ClientTransaction, t0: Instant) -> (Vec<u64>, Option<u64>) {
        let mut sent = Vec::new();
        while let Some(at) = tx.next_deadline() {
            let mut out = Vec::new();
            let event = tx.on_timeout(at, &mut out);
            if !out.is_empty() {
                sent.push((at - t0).as_millis() as u64);
            }
            if event == Some(ClientOutcome::Timeout) {
                return (sent, Some((at - t0).as_millis() as u64));
            }
        }
        (sent, None)
    }

    #[test]
    fn client_invite_timer_a_doubles_uncapped_and_timer_b_gives_up() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut tx = ClientTransaction::start(request("INVITE"), udp(), timers(), t0, &mut out);
        assert_eq!(out.len(), 1);
        let (sent, timeout) = drive_client(&mut tx, t0);
        assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(timeout, Some(32_000));
    }

    #[test]
    fn client_invite_non_2xx_is_acked_and_retransmits_reacked() {
        let t0 = Instant::now();
        let req = request("INVITE");
        let mut tx = ClientTransaction::start(req.clone(), udp(), timers(), t0, &mut Vec::new());
        let mut out = Vec::new();
        let outcome = tx.on_response(response(&req, 180), t0, &mut out);
        assert!(matches!(outcome, Some(ClientOutcome::Provisional(_))));
        assert!(out.is_empty());
        // Timer A and Timer B stopped in Proceeding; Timer C runs.
        assert_eq!(tx.next_deadline(), Some(t0 + TIMER_C));
        let busy = response(&req, 486);
        let outcome = tx.on_response(busy.clone(), t0, &mut out);
        assert!(matches!(outcome, Some(ClientOutcome::Final(_))));
        let ack = crate::sip::message::parse(&out[0].data, crate::sip::message::Framing::Datagram)
            .unwrap();
        assert_eq!(ack.method(), Some("ACK"));
        assert_eq!(ack.cseq(), Some((1, "ACK")));
        assert_eq!(ack.to_tag(), Some("theirs"));
        assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKc1"));
        out.clear();
        assert_eq!(tx.on_response(busy, t0, &mut out), None);
        assert_eq!(out.len(), 1, "ACK resent for the retransmitted 486");
        // Timer D.
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
    }

    #[test]
    fn client_invite_ringing_past_timer_b_waits_for_the_final_response() {
        let t0 = Instant::now();
        let req = request("INVITE");
        let mut tx = ClientTransaction::start(req.clone(), udp(), timers(), t0, &mut Vec::new());
        let ringing_at = t0 + Duration::from_millis(300);
        tx.on_response(response(&req, 180), ringing_at, &mut Vec::new());
        // Past 64 × T1 (32 s) the phone still rings: no timeout.
        let (sent, timeout) = {
            let mut sent = Vec::new();
            let mut timeout = None;
            let mut at = t0;
            while at < t0 + Duration::from_secs(40) {
                at += Duration::from_millis(500);
                let mut out = Vec::new();
                if let Some(outcome) = tx.on_timeout(at, &mut out) {
                    timeout = Some(outcome);
                }
                sent.extend(out);
            }
            (sent, timeout)
        };
        assert!(sent.is_empty(), "no INVITE retransmissions after a 1xx");
        assert_eq!(timeout, None);
        assert!(!tx.is_terminated());
        // A 200 after 40 s of ringing is the call.
        let at = t0 + Duration::from_secs(40);
        let outcome = tx.on_response(response(&req, 200), at, &mut Vec::new());
        assert!(matches!(outcome, Some(ClientOutcome::Final(_))));
        assert!(tx.is_terminated());
    }

    #[test]
    fn client_invite_timer_c_asks_for_a_cancel_then_timer_b_ends_it() {
        let t0 = Instant::now();
        let req = request("INVITE");
        let mut tx = ClientTransaction::start(req.clone(), udp(), timers(), t0, &mut Vec::new());
        tx.on_response(response(&req, 180), t0, &mut Vec::new());
        // A later provisional restarts Timer C.
        let later = t0 + Duration::from_secs(60);
        tx.on_response(response(&req, 183), later, &mut Vec::new());
        assert_eq!(tx.next_deadline(), Some(later + TIMER_C));
        assert_eq!(
            tx.on_timeout(later + TIMER_C, &mut Vec::new()),
            Some(ClientOutcome::RingTimeout)
        );
        assert!(!tx.is_terminated(), "waits for the 487 to the CANCEL");
        let gone = later + TIMER_C + Duration::from_secs(32);
        assert_eq!(tx.next_deadline(), Some(gone));
        // A provisional now does not start ringing time again.
        tx.on_response(response(&req, 180), later + TIMER_C, &mut Vec::new());
        assert_eq!(tx.next_deadline(), Some(gone));
        assert_eq!(
            tx.on_timeout(gone, &mut Vec::new()),
            Some(ClientOutcome::Timeout)
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn client_invite_2xx_terminates_and_goes_to_the_dialog() {
        let t0 = Instant::now();
        let req = request("INVITE");
        let mut tx = ClientTransaction::start(req.clone(), udp(), timers(), t0, &mut Vec::new());
        let mut out = Vec::new();
        let outcome = tx.on_response(response(&req, 200), t0, &mut out);
        assert!(matches!(outcome, Some(ClientOutcome::Final(_))));
        assert!(out.is_empty(), "the dialog sends the 2xx ACK");
        assert!(tx.is_terminated());
    }

    #[test]
    fn client_non_invite_timer_e_capped_then_f() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::start(request("BYE"), udp(), timers(), t0, &mut Vec::new());
        let (sent, timeout) = drive_client(&mut tx, t0);
        assert_eq!(&sent[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(timeout, Some(32_000));
    }

    #[test]
    fn client_non_invite_proceeding_and_timer_k() {
        let t0 = Instant::now();
        let req = request("BYE");
        let mut tx = ClientTransaction::start(req.clone(), udp(), timers(), t0, &mut Vec::new());
        let t = t0 + Duration::from_millis(100);
        tx.on_response(response(&req, 100), t, &mut Vec::new());
        assert_eq!(
            tx.next_deadline(),
            Some(t + Duration::from_secs(4)),
            "Timer E at T2"
        );
        let outcome = tx.on_response(response(&req, 200), t, &mut Vec::new());
        assert!(matches!(outcome, Some(ClientOutcome::Final(_))));
        assert_eq!(
            tx.next_deadline(),
            Some(t + Duration::from_secs(5)),
            "Timer K = T4"
        );
        assert_eq!(
            tx.on_timeout(t + Duration::from_secs(5), &mut Vec::new()),
            None
        );
        assert!(tx.is_terminated());
        // Over TCP: no retransmissions, Timer F only.
        let tcp_tx = ClientTransaction::start(req, tcp(), timers(), t0, &mut Vec::new());
        assert_eq!(tcp_tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
    }
}
