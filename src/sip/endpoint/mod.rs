//! The sans-IO SIP user agent: feeds incoming bytes through parsing, access control,
//! transactions and dialogs; answers what the protocol answers by itself (100, OPTIONS,
//! CANCEL, BYE, 4xx/5xx); reports call events to the application and carries out its
//! commands (answer, reject, hang up, place a call). Driven like quinn-proto: the caller
//! passes `now`, asks `poll_timeout`, calls `handle_timeout`, and drains `poll_transmit` and
//! `poll_event`. Randomness (tags, branches, Call-IDs, SDP session ids) comes from the RNG
//! handed to [`Endpoint::new`], so a seeded endpoint says the same bytes on every run.
//!
//! This file holds the application-facing surface and the routing between the parts:
//! - `uas.rs`: requests we receive (the server side: INVITE, re-INVITE, UPDATE, CANCEL, BYE,
//!   INFO, OPTIONS, ACK) and the commands that answer an incoming call;
//! - `uac.rs`: requests we send (our INVITE, BYE, CANCEL) and the responses to them;
//! - `dialogs.rs`: the calls and their dialogs, found by handle or by Call-ID and tag;
//! - `session_timer.rs` (RFC 4028 rules and the session deadlines) and `refresh.rs` (the
//!   refreshes on the wire, ours and the peer's, and the end of an unrefreshed session);
//! - the transaction table with its timers is `sip::transaction::table`.
//!
//! Owns SIP call state; must not open sockets, read clocks, draw entropy itself, or touch
//! audio.

mod dialogs;
mod refresh;
mod session_timer;
mod uac;
mod uas;

use super::access::{AccessControl, SourceVerdict};
use super::config::{SipConfig, TimerConfig};
use super::message::{self, Framing, ParseError};
use super::refusals::{RefusalLog, Refused, Summary};
use super::sdp::NegotiatedMedia;
use super::stats::SipStats;
use super::transaction::{Peer, TransactionTable, Transmit, TxKey};
use dialogs::{CallState, Dialogs};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
pub use session_timer::MIN_SESSION_EXPIRES_SECS;
use session_timer::SessionDeadlines;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Methods we implement.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// Methods we know but refuse with 405 (we are not a registrar, presence server or
/// transfer target).
const KNOWN_NOT_ALLOWED: &[&str] = &[
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
    "PRACK",
];

/// Identifies one call (one INVITE dialog) between the endpoint and the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent CANCEL before we answered (we sent 487).
    Cancelled,
    /// The peer sent BYE.
    RemoteHangup,
    /// The application hung up (we sent BYE or CANCEL).
    LocalHangup,
    /// The application rejected the call with this code.
    Rejected(u16),
    /// Timer H: our 2xx was never ACKed; we sent BYE.
    NoAck,
    /// A late-offer ACK carried no usable SDP answer; we sent BYE.
    BadAck(String),
    /// Our outgoing INVITE got this final error response.
    Failed(u16),
    /// Our outgoing INVITE got no final response (Timer B).
    Timeout,
    /// RFC 4028: the peer was the refresher and no refresh came in time, or ours got no
    /// answer before the session expired; we sent BYE.
    SessionExpired,
    /// RFC 4028 §10: our session refresh failed with this code (408, 481; 408 also when it
    /// got no answer); we sent BYE.
    RefreshFailed(u16),
}

/// What the endpoint tells the application. Every call that was announced
/// (`IncomingCall`, or an `OutgoingCall` handle) ends with exactly one `CallEnded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new INVITE passed access control and capacity. `offer` is the negotiated early
    /// offer (`None`: late offer, we will offer in our 2xx). Answer with
    /// [`Command::Answer`] or [`Command::Reject`].
    IncomingCall {
        call: CallHandle,
        /// Calling number (From user part), unmasked: mask it before logging.
        caller: Option<String>,
        /// Dialled number (Request-URI user part).
        dialled: Option<String>,
        source: SocketAddr,
        offer: Option<NegotiatedMedia>,
        /// Dialled a priority (leak) line: admitted into the reserved capacity.
        priority: bool,
    },
    /// ACK received: media may flow. `media` is what was agreed (for a late offer, from
    /// the answer in the ACK).
    CallConfirmed {
        call: CallHandle,
        media: NegotiatedMedia,
    },
    /// A re-INVITE changed the media (hold, unhold, new address); already answered 200.
    MediaUpdated {
        call: CallHandle,
        media: NegotiatedMedia,
    },
    /// INFO with application/dtmf-relay (or application/dtmf) carrying one digit.
    Dtmf {
        call: CallHandle,
        digit: char,
        duration_ms: Option<u32>,
    },
    /// Our outgoing INVITE got a provisional response (180/183).
    OutgoingProgress {
        call: CallHandle,
        code: u16,
    },
    /// Our outgoing INVITE was answered and ACKed.
    OutgoingAnswered {
        call: CallHandle,
        media: NegotiatedMedia,
    },
    CallEnded {
        call: CallHandle,
        reason: EndReason,
    },
}

/// What the application asks of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send 180 Ringing.
    Ring { call: CallHandle },
    /// Answer 200 with SDP; `local_rtp` is where our media session listens.
    Answer {
        call: CallHandle,
        local_rtp: SocketAddr,
    },
    /// Refuse an unanswered call with a 3xx–6xx code (e.g. 486, 480, 603).
    Reject { call: CallHandle, code: u16 },
    /// End the call: BYE when answered, 480 before answering, CANCEL for our own INVITE.
    Hangup { call: CallHandle },
}

/// A call we place (client INVITE), e.g. to an agent's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    /// Request-URI and To, e.g. `sip:8001@127.0.0.1:5070`.
    pub target: String,
    /// Next hop (the PBX or the phone itself).
    pub peer: Peer,
    /// User part of our From.
    pub from_user: String,
    pub local_rtp: SocketAddr,
}

/// Live object counts, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub server_transactions: usize,
    pub client_transactions: usize,
    pub calls: usize,
    /// Calls with a session timer (RFC 4028) pending.
    pub session_timers: usize,
}

impl Counts {
    pub fn transactions(&self) -> usize {
        self.server_transactions + self.client_transactions
    }
}

/// What a client transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPurpose {
    Invite(CallHandle),
    /// Our session refresh (UPDATE or re-INVITE) of this call.
    Refresh(CallHandle),
    /// BYE, CANCEL: fire and forget, nothing to report.
    Other,
}

/// Server transactions remember the call they belong to; client ones their purpose.
type Transactions = TransactionTable<Option<CallHandle>, ClientPurpose>;

pub struct Endpoint {
    config: SipConfig,
    timers: TimerConfig,
    /// Address we put in Via and Contact.
    local_addr: SocketAddr,
    access: AccessControl,
    transactions: Transactions,
    dialogs: Dialogs,
    /// The calls' session timer deadlines (RFC 4028).
    sessions: SessionDeadlines,
    rng: StdRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Refused requests and connections, summarised per source every few seconds.
    refusals: RefusalLog,
    /// Running totals for metrics.
    stats: SipStats,
}

/// Our Via for a request we send (RFC 3581 rport asked for).
fn via_header(local: SocketAddr, peer: Peer, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {local};branch={branch};rport",
        peer.transport_name()
    )
}

/// Our Contact for requests and responses sent over `peer`'s transport.
fn contact_header(local: SocketAddr, peer: Peer) -> String {
    match peer {
        Peer::Udp(_) => format!("<sip:hotline@{local}>"),
        Peer::Tcp { .. } => format!("<sip:hotline@{local};transport=tcp>"),
    }
}

impl Endpoint {
    /// `local_addr` is the address put in our Via and Contact headers (the bound socket);
    /// `rng` draws every tag, branch, Call-ID and SDP session id (the driver seeds it from
    /// the OS, tests from a fixed seed).
    pub fn new(
        config: &SipConfig,
        local_addr: SocketAddr,
        rng: StdRng,
    ) -> Result<Endpoint, String> {
        Ok(Endpoint {
            timers: config.timers(),
            access: AccessControl::new(config)?,
            config: config.clone(),
            local_addr,
            transactions: Transactions::default(),
            dialogs: Dialogs::default(),
            sessions: SessionDeadlines::default(),
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            refusals: RefusalLog::default(),
            stats: SipStats::default(),
        })
    }

    /// An endpoint whose randomness repeats from `seed` (for tests and reproductions).
    pub fn with_seed(
        config: &SipConfig,
        local_addr: SocketAddr,
        seed: u64,
    ) -> Result<Endpoint, String> {
        Endpoint::new(config, local_addr, StdRng::seed_from_u64(seed))
    }

    pub fn counts(&self) -> Counts {
        Counts {
            server_transactions: self.transactions.server_count(),
            client_transactions: self.transactions.client_count(),
            calls: self.dialogs.len(),
            session_timers: self.sessions.len(),
        }
    }

    /// Requests received, responses sent and refusals so far (for metrics).
    pub fn stats(&self) -> &SipStats {
        &self.stats
    }

    pub fn access(&self) -> &AccessControl {
        &self.access
    }

    /// New INVITEs get 503 from now on; calls in progress continue.
    pub fn begin_shutdown(&mut self) {
        self.access.begin_shutdown();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.transmits.pop_front()?;
        self.stats.note_transmit(&transmit.data);
        Some(transmit)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Earliest instant at which [`Endpoint::handle_timeout`] has work: the first entry of
    /// the transaction table's timer set or of the session deadlines, found without visiting
    /// any transaction or call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.transactions.next_timeout(),
            self.sessions.next(),
            self.refusals.next_summary(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Counts a TCP connection the transport refused (for the summaries).
    pub fn note_refused_connection(&mut self, source: IpAddr, reason: &'static str, now: Instant) {
        self.stats.note_refusal(reason);
        self.refusals
            .note(Refused::Connections, source, reason, now);
    }

    /// The summaries of refused requests and connections whose window has ended, one line
    /// each for the log ("refused 4812 requests from 127.0.0.2 in the last 10 s: …").
    pub fn poll_refusal_summaries(&mut self, now: Instant) -> Vec<Summary> {
        self.refusals.poll(now)
    }

    fn send(&mut self, out: Vec<Transmit>) {
        self.transmits.extend(out);
    }

    /// A fresh tag or Call-ID local part.
    fn random_token(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    /// A fresh SDP session id (`o=` line).
    fn rng_sdp_session(&mut self) -> u64 {
        self.rng.random::<u32>().into()
    }

    fn new_branch(&mut self) -> String {
        format!("z9hG4bK{}", self.random_token())
    }

    fn via(&self, peer: Peer, branch: &str) -> String {
        via_header(self.local_addr, peer, branch)
    }

    fn contact(&self, peer: Peer) -> String {
        contact_header(self.local_addr, peer)
    }

    /// Feeds one datagram or one framed stream message received from `peer`.
    pub fn handle_message(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        if message::is_keepalive(data) {
            return;
        }
        let framing = if peer.is_reliable() {
            Framing::Stream
        } else {
            Framing::Datagram
        };
        match message::parse(data, framing) {
            Ok(msg) if msg.is_request() => {
                self.stats.note_request(msg.method().unwrap_or(""));
                self.handle_request(now, peer, msg)
            }
            Ok(msg) => self.handle_response(now, msg),
            Err(ParseError::Reject { response, reason }) => {
                tracing::debug!(from = %peer.addr(), %reason, "rejecting malformed request");
                // Rejecting malformed requests is also subject to the flood limit.
                if self.access.check_request(peer.addr().ip(), now) == SourceVerdict::Allowed {
                    let to = response
                        .top_via()
                        .map_or(peer, |via| uas::response_peer(peer, via));
                    self.transmits.push_back(Transmit {
                        peer: to,
                        data: response.to_bytes(),
                    });
                }
            }
            Err(ParseError::Drop(reason)) => {
                tracing::debug!(from = %peer.addr(), %reason, "dropping unparseable message");
            }
        }
    }

    /// Carries out an application command. Commands for calls that already ended are
    /// ignored (the application will see, or has seen, `CallEnded`).
    pub fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Ring { call } => self.provisional(now, call, 180, "Ringing"),
            Command::Answer { call, local_rtp } => self.answer(now, call, local_rtp),
            Command::Reject { call, code } => {
                let code = if (300..700).contains(&code) {
                    code
                } else {
                    480
                };
                self.reject(now, call, code, EndReason::Rejected(code));
            }
            Command::Hangup { call } => self.hangup(now, call),
        }
    }

    fn hangup(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.dialogs.get(handle) else {
            return;
        };
        match call.state {
            CallState::Offered => self.reject(now, handle, 480, EndReason::LocalHangup),
            CallState::Answered | CallState::Confirmed => {
                self.send_bye(now, handle);
                self.end_call(handle, EndReason::LocalHangup);
            }
            CallState::Calling => {
                self.send_cancel(now, handle);
                self.end_call(handle, EndReason::LocalHangup);
            }
        }
    }

    fn end_call(&mut self, handle: CallHandle, reason: EndReason) {
        self.sessions.cancel(handle);
        if self.dialogs.remove(handle).is_some() {
            self.events.push_back(Event::CallEnded {
                call: handle,
                reason,
            });
        }
    }

    /// Runs the timers due at `now`: only the transactions the timer set names, each once,
    /// then the session deadlines that have come.
    pub fn handle_timeout(&mut self, now: Instant) {
        for key in self.transactions.due(now) {
            match key {
                TxKey::Server(key) => self.server_timeout(now, &key),
                TxKey::Client(key) => self.client_timeout(now, &key),
            }
        }
        self.session_timeouts(now);
    }
}
