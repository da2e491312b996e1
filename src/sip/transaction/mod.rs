//! RFC 3261 §17 transaction state machines (with the RFC 6026 "Accepted" state for 2xx to
//! INVITE): retransmissions and Timers A/B/D/E/F/G/H/I/J/K, plus the 2xx retransmission the
//! UAS core owes until ACK. Sans-IO: time is passed in, bytes to send are pushed to an outbox.
//!
//! Owns per-transaction timing and the last message to resend; must not decide what to
//! answer (the endpoint does) or know about dialogs.

mod client;
pub mod key;
mod server;
mod server_invite;
pub mod table;

pub use client::{ClientOutcome, ClientTransaction, TIMER_C};
pub use key::{ClientKey, ServerKey};
pub use server::ServerNonInvite;
pub use server_invite::{ServerInvite, ServerInviteState, ServerInviteTimeout};
pub use table::{ServerTx, TransactionTable, TxKey};

use super::message::Message;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Identifies one TCP connection of the transport.
pub type ConnId = u64;

/// Where a message goes or came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    Udp(SocketAddr),
    /// `conn` is the connection a request came on (responses reuse it); `None` asks the
    /// transport to use any open connection to `addr` or to open one.
    Tcp {
        addr: SocketAddr,
        conn: Option<ConnId>,
    },
}

impl Peer {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Peer::Udp(addr) | Peer::Tcp { addr, .. } => *addr,
        }
    }

    /// Reliable transports need no retransmissions and no lingering timers.
    pub fn is_reliable(&self) -> bool {
        matches!(self, Peer::Tcp { .. })
    }

    pub fn transport_name(&self) -> &'static str {
        match self {
            Peer::Udp(_) => "UDP",
            Peer::Tcp { .. } => "TCP",
        }
    }
}

/// Bytes to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub data: Vec<u8>,
}

/// Sends `response` to `peer` and keeps its bytes, so that a retransmitted request (or a
/// retransmission timer) can be answered with exactly what was said.
fn send_remembered(
    peer: Peer,
    response: &Message,
    last: &mut Option<Vec<u8>>,
    out: &mut Vec<Transmit>,
) {
    let data = response.to_bytes();
    out.push(Transmit {
        peer,
        data: data.clone(),
    });
    *last = Some(data);
}

/// Resends the response kept by [`send_remembered`], if there is one yet.
fn resend(peer: Peer, last: &Option<Vec<u8>>, out: &mut Vec<Transmit>) {
    if let Some(data) = last {
        out.push(Transmit {
            peer,
            data: data.clone(),
        });
    }
}

/// A retransmission schedule: first after T1, doubling, optionally capped (at T2).
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next: Instant,
    interval: Duration,
    cap: Option<Duration>,
}

impl Backoff {
    fn start(now: Instant, first: Duration, cap: Option<Duration>) -> Backoff {
        Backoff {
            next: now + first,
            interval: first,
            cap,
        }
    }

    fn advance(&mut self) {
        let doubled = self.interval * 2;
        self.interval = self.cap.map_or(doubled, |cap| doubled.min(cap));
        self.next += self.interval;
    }
}

fn earliest(times: &[Option<Instant>]) -> Option<Instant> {
    times.iter().flatten().min().copied()
}
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::sip::config::TimerConfig;

    pub fn timers() -> TimerConfig {
        TimerConfig::default()
    }

    pub fn udp() -> Peer {
        Peer::Udp("127.0.0.1:5070".parse().unwrap())
    }

    pub fn tcp() -> Peer {
        Peer::Tcp {
            addr: "127.0.0.1:5070".parse().unwrap(),
            conn: Some(1),
        }
    }

    pub fn request(method: &str) -> Message {
        let mut m = Message::request(method, "sip:agent@127.0.0.1:5070");
        m.push_header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc1");
        m.push_header("From", "<sip:hotline@127.0.0.1>;tag=ours");
        m.push_header("To", "<sip:agent@127.0.0.1>");
        m.push_header("Call-ID", "cid");
        m.push_header("CSeq", format!("1 {method}"));
        m.push_header("Max-Forwards", "70");
        m
    }

    pub fn response(req: &Message, code: u16) -> Message {
        Message::response_to(req, code, "X", Some("theirs"))
    }
}
