//! The sans-IO SIP user agent: feeds incoming bytes through parsing, access control,
//! transactions and dialogs; answers what the protocol answers by itself (100, OPTIONS,
//! CANCEL, BYE, 4xx/5xx); reports call events to the application and carries out its
//! commands (answer, reject, hang up, place a call). Driven like quinn-proto: the caller
//! passes `now`, asks `poll_timeout`, calls `handle_timeout`, and drains `poll_transmit` and
//! `poll_event`.
//!
//! Owns SIP call state; must not open sockets, read clocks, or touch audio.

use super::access::{AccessControl, Admission, SourceVerdict};
use super::config::{SipConfig, TimerConfig};
use super::dialog::Dialog;
use super::message::{self, Framing, Message, ParseError, Via};
use super::sdp::{self, NegotiatedMedia, SdpError};
use super::transaction::{
    ClientOutcome, ClientTransaction, Peer, ServerInvite, ServerInviteState, ServerInviteTimeout,
    ServerNonInvite, Transmit,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// Methods we implement.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
/// Methods we know but refuse with 405 (we are not a registrar, presence server or
/// transfer target).
const KNOWN_NOT_ALLOWED: &[&str] = &[
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
    "UPDATE",
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
}

impl Counts {
    pub fn transactions(&self) -> usize {
        self.server_transactions + self.client_transactions
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    branch: String,
    /// ACK is folded into INVITE; CANCEL has its own transaction.
    method: String,
}

#[derive(Debug)]
enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

#[derive(Debug)]
struct ServerEntry {
    tx: ServerTx,
    call: Option<CallHandle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPurpose {
    Invite(CallHandle),
    /// BYE, CANCEL: fire and forget, nothing to report.
    Other,
}

#[derive(Debug)]
struct ClientEntry {
    tx: ClientTransaction,
    purpose: ClientPurpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// UAS: INVITE received, waiting for the application.
    Offered,
    /// UAS: 2xx sent, waiting for ACK.
    Answered,
    /// UAC: INVITE sent.
    Calling,
    Confirmed,
}

#[derive(Debug)]
struct Call {
    state: CallState,
    dialog: Dialog,
    /// UAS: the INVITE server transaction (for answering and CANCEL).
    invite_key: Option<ServerKey>,
    /// UAS: the INVITE being answered (responses are built from it).
    invite: Option<Message>,
    /// UAC: branch of our INVITE and the ACK we sent for its 2xx (resent on 2xx repeats).
    invite_branch: Option<String>,
    ack_bytes: Option<Vec<u8>>,
    local_rtp: Option<SocketAddr>,
    media: Option<NegotiatedMedia>,
    sdp_session: u64,
    sdp_version: u64,
}

pub struct Endpoint {
    config: SipConfig,
    timers: TimerConfig,
    /// Address we put in Via and Contact.
    local_addr: SocketAddr,
    access: AccessControl,
    server: HashMap<ServerKey, ServerEntry>,
    client: HashMap<String, ClientEntry>,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, our tag) → call.
    dialogs: HashMap<(String, String), CallHandle>,
    next_call: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn new_branch() -> String {
    format!("z9hG4bK{}", random_token())
}

/// Where responses to a request go (§18.2.2 with RFC 3581 rport): back over the same TCP
/// connection, or over UDP to the source IP, at the source port when `rport` was asked
/// for, else at the Via port.
fn via_header(local: SocketAddr, peer: Peer, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {local};branch={branch};rport",
        peer.transport_name()
    )
}

fn response_peer(source: Peer, via: &Via) -> Peer {
    match source {
        Peer::Tcp { .. } => source,
        Peer::Udp(addr) => {
            if via.param("rport").is_some() {
                Peer::Udp(addr)
            } else {
                Peer::Udp(SocketAddr::new(addr.ip(), via.port.unwrap_or(5060)))
            }
        }
    }
}

/// Adds `received` and fills `rport` on the top Via, so our responses record where the
/// request really came from.
fn stamp_top_via(request: &mut Message, source: SocketAddr) {
    let Some(index) = request.headers.iter().position(|(n, _)| n == "Via") else {
        return;
    };
    let entries = message::split_list(&request.headers[index].1);
    let Some(first) = entries.first() else { return };
    let Some(via) = Via::parse(first) else { return };
    let mut top: Vec<String> = first
        .split(';')
        .map(|part| {
            if part.trim().eq_ignore_ascii_case("rport") {
                format!("rport={}", source.port())
            } else {
                part.to_string()
            }
        })
        .collect();
    if via.host != source.ip().to_string() && via.param("received").is_none() {
        top.push(format!("received={}", source.ip()));
    }
    let mut value = top.join(";");
    for rest in &entries[1..] {
        value.push_str(", ");
        value.push_str(rest);
    }
    request.headers[index].1 = value;
}

/// Parses an INFO dtmf-relay body (`Signal=5\r\nDuration=160`) or application/dtmf (`5`).
fn parse_dtmf(content_type: &str, body: &[u8]) -> Option<(char, Option<u32>)> {
    let text = std::str::from_utf8(body).ok()?;
    let valid = |c: char| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D');
    let ct = content_type.trim().to_ascii_lowercase();
    if ct.starts_with("application/dtmf-relay") {
        let mut digit = None;
        let mut duration = None;
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "signal" => digit = v.trim().chars().next().map(|c| c.to_ascii_uppercase()),
                "duration" => duration = v.trim().parse().ok(),
                _ => {}
            }
        }
        digit.filter(|c| valid(*c)).map(|d| (d, duration))
    } else if ct.starts_with("application/dtmf") {
        let t = text.trim();
        let digit = match t {
            "10" => '*',
            "11" => '#',
            _ if t.len() == 1 => t.chars().next()?.to_ascii_uppercase(),
            _ => return None,
        };
        valid(digit).then_some((digit, None))
    } else {
        None
    }
}

impl Endpoint {
    /// `local_addr` is the address put in our Via and Contact headers (the bound socket).
    pub fn new(config: &SipConfig, local_addr: SocketAddr) -> Result<Endpoint, String> {
        Ok(Endpoint {
            timers: config.timers(),
            access: AccessControl::new(config)?,
            config: config.clone(),
            local_addr,
            server: HashMap::new(),
            client: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            next_call: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    pub fn counts(&self) -> Counts {
        Counts {
            server_transactions: self.server.len(),
            client_transactions: self.client.len(),
            calls: self.calls.len(),
        }
    }

    pub fn access(&self) -> &AccessControl {
        &self.access
    }

    /// New INVITEs get 503 from now on; calls in progress continue.
    pub fn begin_shutdown(&mut self) {
        self.access.begin_shutdown();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Earliest instant at which [`Endpoint::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let server = self.server.values().filter_map(|e| match &e.tx {
            ServerTx::Invite(t) => t.next_deadline(),
            ServerTx::NonInvite(t) => t.next_deadline(),
        });
        let client = self.client.values().filter_map(|e| e.tx.next_deadline());
        server.chain(client).min()
    }

    fn send(&mut self, out: Vec<Transmit>) {
        self.transmits.extend(out);
    }

    fn via(&self, peer: Peer, branch: &str) -> String {
        via_header(self.local_addr, peer, branch)
    }

    fn contact(&self, peer: Peer) -> String {
        match peer {
            Peer::Udp(_) => format!("<sip:hotline@{}>", self.local_addr),
            Peer::Tcp { .. } => format!("<sip:hotline@{};transport=tcp>", self.local_addr),
        }
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
            Ok(msg) if msg.is_request() => self.handle_request(now, peer, msg),
            Ok(msg) => self.handle_response(now, msg),
            Err(ParseError::Reject { response, reason }) => {
                tracing::debug!(from = %peer.addr(), %reason, "rejecting malformed request");
                // Rejecting malformed requests is also subject to the flood limit.
                if self.access.check_request(peer.addr().ip(), now) == SourceVerdict::Allowed {
                    let to = response
                        .top_via()
                        .map_or(peer, |via| response_peer(peer, &via));
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
        self.sweep();
    }

    fn server_key(request: &Message) -> ServerKey {
        let method = match request.method() {
            Some("ACK") | None => "INVITE",
            Some(m) => m,
        };
        let branch = request
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
            .filter(|b| b.starts_with("z9hG4bK"))
            // RFC 2543 peers without a magic-cookie branch: approximate by dialog + CSeq.
            .unwrap_or_else(|| {
                format!(
                    "{}|{}|{}",
                    request.call_id(),
                    request.from_tag().unwrap_or(""),
                    request.cseq().map_or(0, |(n, _)| n)
                )
            });
        ServerKey {
            branch,
            method: method.to_string(),
        }
    }

    fn find_dialog(&self, request: &Message) -> Option<CallHandle> {
        let tag = request.to_tag()?;
        let handle = *self
            .dialogs
            .get(&(request.call_id().to_string(), tag.to_string()))?;
        self.calls
            .get(&handle)
            .filter(|c| c.dialog.matches(request))
            .map(|_| handle)
    }

    fn handle_request(&mut self, now: Instant, source: Peer, mut request: Message) {
        stamp_top_via(&mut request, source.addr());
        let Some(via) = request.top_via() else { return };
        let reply_to = response_peer(source, &via);
        let method = request.method().unwrap_or("").to_string();
        let key = Self::server_key(&request);

        // Retransmissions and non-2xx ACKs are absorbed by their transaction.
        if let Some(entry) = self.server.get_mut(&key) {
            let mut out = Vec::new();
            match (&mut entry.tx, method.as_str()) {
                (ServerTx::Invite(tx), "ACK") => {
                    if tx.state() == ServerInviteState::Completed {
                        tx.on_ack(now);
                        return;
                    }
                }
                (ServerTx::Invite(tx), _) => tx.on_retransmission(&mut out),
                (ServerTx::NonInvite(tx), _) => tx.on_retransmission(&mut out),
            }
            if method != "ACK" {
                self.send(out);
                return;
            }
        }

        let dialog = self.find_dialog(&request);
        if method == "ACK" {
            if let Some(call) = dialog {
                self.on_ack_for_2xx(now, call, &request);
            }
            return;
        }
        // In-dialog requests and CANCELs of our own calls are exempt from flood limits:
        // the PBX carries every call, and a busy PBX must still be able to hang up.
        let in_dialog = dialog.is_some()
            || (method == "CANCEL"
                && self.server.contains_key(&ServerKey {
                    branch: key.branch.clone(),
                    method: "INVITE".into(),
                }));
        if !in_dialog {
            match self.access.check_request(source.addr().ip(), now) {
                SourceVerdict::Allowed => {}
                SourceVerdict::Silent => {
                    tracing::debug!(from = %source.addr(), %method, "request dropped by access control");
                    return;
                }
                SourceVerdict::Forbidden => {
                    tracing::info!(from = %source.addr(), %method, "request from a source not in sip.allowed_sources: 403");
                    self.reply_stateless_tx(now, key, reply_to, &request, 403, "Forbidden", None);
                    return;
                }
            }
        }
        if request.max_forwards() == Some(0) {
            self.reply_stateless_tx(now, key, reply_to, &request, 483, "Too Many Hops", None);
            return;
        }
        match method.as_str() {
            "INVITE" if request.to_tag().is_none() => {
                if self.is_late_invite_retransmission(&request) {
                    tracing::debug!("INVITE retransmission for an established call: absorbed");
                    return;
                }
                self.on_new_invite(now, key, reply_to, request)
            }
            "INVITE" => match dialog {
                Some(call) => self.on_reinvite(now, key, reply_to, call, request),
                None => self.reply_481(now, key, reply_to, &request),
            },
            "CANCEL" => self.on_cancel(now, key, reply_to, request),
            "BYE" => match dialog {
                Some(call) => {
                    self.reply_stateless_tx(now, key, reply_to, &request, 200, "OK", None);
                    self.end_call(call, EndReason::RemoteHangup);
                }
                None => self.reply_481(now, key, reply_to, &request),
            },
            "INFO" => match dialog {
                Some(call) => self.on_info(now, key, reply_to, call, &request),
                None => self.reply_481(now, key, reply_to, &request),
            },
            "OPTIONS" => {
                let tag = request.to_tag().is_none().then(random_token);
                let mut ok = self.response(&request, 200, "OK", tag.as_deref());
                ok.push_header("Accept", "application/sdp");
                self.respond_new_tx(now, key, reply_to, &request, ok, None);
            }
            m if KNOWN_NOT_ALLOWED.contains(&m) => self.reply_stateless_tx(
                now,
                key,
                reply_to,
                &request,
                405,
                "Method Not Allowed",
                None,
            ),
            _ => {
                self.reply_stateless_tx(now, key, reply_to, &request, 501, "Not Implemented", None)
            }
        }
    }

    /// A response with our standard headers (Allow, Supported, User-Agent).
    fn response(
        &self,
        request: &Message,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Message {
        let mut r = Message::response_to(request, code, reason, to_tag);
        if code == 405 || (200..300).contains(&code) || code == 501 {
            r.push_header("Allow", ALLOW);
        }
        r.push_header("Server", self.config.user_agent.clone());
        r
    }

    /// Answers a request in a new server transaction (so retransmissions get the same
    /// answer), remembering which call it belongs to.
    fn respond_new_tx(
        &mut self,
        now: Instant,
        key: ServerKey,
        reply_to: Peer,
        request: &Message,
        response: Message,
        call: Option<CallHandle>,
    ) {
        let mut out = Vec::new();
        let tx = if request.method() == Some("INVITE") {
            let mut tx = ServerInvite::new(reply_to, self.timers);
            tx.respond(&response, now, &mut out);
            ServerTx::Invite(tx)
        } else {
            let mut tx = ServerNonInvite::new(reply_to, self.timers);
            tx.respond(&response, now, &mut out);
            ServerTx::NonInvite(tx)
        };
        self.server.insert(key, ServerEntry { tx, call });
        self.send(out);
    }

    #[allow(clippy::too_many_arguments)]
    fn reply_stateless_tx(
        &mut self,
        now: Instant,
        key: ServerKey,
        reply_to: Peer,
        request: &Message,
        code: u16,
        reason: &str,
        call: Option<CallHandle>,
    ) {
        let tag = (code >= 200 && request.to_tag().is_none()).then(random_token);
        let mut response = self.response(request, code, reason, tag.as_deref());
        if code == 503 {
            response.push_header("Retry-After", self.config.retry_after_secs.to_string());
        }
        self.respond_new_tx(now, key, reply_to, request, response, call);
    }

    fn reply_481(&mut self, now: Instant, key: ServerKey, reply_to: Peer, request: &Message) {
        self.reply_stateless_tx(
            now,
            key,
            reply_to,
            request,
            481,
            "Call/Transaction Does Not Exist",
            None,
        );
    }

    /// An INVITE copy arriving after its transaction ended (2xx ACKed) must not start a
    /// second call: same Call-ID, From tag and CSeq as a call we already have.
    fn is_late_invite_retransmission(&self, invite: &Message) -> bool {
        let cseq = invite.cseq().map_or(0, |(n, _)| n);
        self.calls.values().any(|c| {
            c.dialog.call_id == invite.call_id()
                && Some(c.dialog.remote_tag.as_str()) == invite.from_tag()
                && c.dialog.remote_cseq >= cseq
        })
    }

    fn on_new_invite(&mut self, now: Instant, key: ServerKey, reply_to: Peer, invite: Message) {
        let dialled = message::user_of(invite.uri().unwrap_or("")).map(str::to_string);
        let priority = dialled
            .as_ref()
            .is_some_and(|d| self.config.priority_numbers.iter().any(|p| p == d));
        match self.access.admit_call(self.calls.len(), priority) {
            Admission::Admit => {}
            Admission::Busy => {
                tracing::warn!(calls = self.calls.len(), "call limit reached: 503");
                self.reply_stateless_tx(
                    now,
                    key,
                    reply_to,
                    &invite,
                    503,
                    "Service Unavailable",
                    None,
                );
                return;
            }
            Admission::ShuttingDown => {
                self.reply_stateless_tx(now, key, reply_to, &invite, 503, "Shutting Down", None);
                return;
            }
        }
        let offer = match self.offer_in(&invite) {
            Ok(offer) => offer,
            Err((code, reason)) => {
                let mut r = self.response(&invite, code, &reason, Some(&random_token()));
                if code == 488 {
                    r.push_header("Warning", "305 hotlined \"Incompatible media format\"");
                }
                if code == 415 {
                    r.push_header("Accept", "application/sdp");
                }
                self.respond_new_tx(now, key, reply_to, &invite, r, None);
                return;
            }
        };
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        let local_tag = random_token();
        let dialog = Dialog::from_incoming_invite(&invite, &local_tag, reply_to);
        let trying = self.response(&invite, 100, "Trying", None);
        self.respond_new_tx(now, key.clone(), reply_to, &invite, trying, Some(handle));
        self.dialogs
            .insert((dialog.call_id.clone(), local_tag), handle);
        let caller = invite
            .header("From")
            .and_then(|f| message::user_of(message::uri_of(f)))
            .map(str::to_string);
        self.calls.insert(
            handle,
            Call {
                state: CallState::Offered,
                dialog,
                invite_key: Some(key),
                invite: Some(invite),
                invite_branch: None,
                ack_bytes: None,
                local_rtp: None,
                media: offer.clone(),
                sdp_session: rand::random::<u32>().into(),
                sdp_version: 1,
            },
        );
        self.events.push_back(Event::IncomingCall {
            call: handle,
            caller,
            dialled,
            source: reply_to.addr(),
            offer,
            priority,
        });
    }

    /// The negotiated SDP offer in an INVITE, `None` for a late offer, or the error
    /// response to give.
    fn offer_in(&self, invite: &Message) -> Result<Option<NegotiatedMedia>, (u16, String)> {
        if invite.body.is_empty() {
            return Ok(None);
        }
        let is_sdp = invite.content_type().is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/sdp")
        });
        if !is_sdp {
            return Err((415, "Unsupported Media Type".into()));
        }
        match sdp::parse(&invite.body).and_then(|s| s.negotiate()) {
            Ok(media) => Ok(Some(media)),
            Err(SdpError::NoCommonCodec) => Err((488, "Not Acceptable Here".into())),
            Err(e @ SdpError::NoAudio) => Err((488, e.to_string())),
            Err(e) => Err((400, format!("Bad SDP: {e}"))),
        }
    }

    fn on_reinvite(
        &mut self,
        now: Instant,
        key: ServerKey,
        reply_to: Peer,
        handle: CallHandle,
        invite: Message,
    ) {
        let offer = self.offer_in(&invite);
        let contact = self.contact(reply_to);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (code, reason, media) = match offer {
            Ok(Some(media)) => (200, "OK".to_string(), Some(media)),
            // A re-INVITE without SDP asks for our offer; we re-offer our current session.
            Ok(None) => (200, "OK".to_string(), None),
            Err((code, reason)) => (code, reason, None),
        };
        call.dialog.remote_cseq = invite.cseq().map_or(call.dialog.remote_cseq, |(n, _)| n);
        if let Some(contact) = invite.header("Contact") {
            call.dialog.remote_target = message::uri_of(contact).to_string();
        }
        let mut response = Message::response_to(&invite, code, &reason, None);
        response.push_header("Server", self.config.user_agent.clone());
        if code == 200 {
            call.sdp_version += 1;
            let local = call.local_rtp.unwrap_or(self.local_addr);
            let body = sdp::write(
                local,
                call.sdp_session,
                call.sdp_version,
                media.as_ref().or(call.media.as_ref()),
            );
            response.push_header("Contact", contact);
            response.push_header("Allow", ALLOW);
            response.set_body("application/sdp", body);
            if let Some(media) = media {
                call.media = Some(media.clone());
                self.events.push_back(Event::MediaUpdated {
                    call: handle,
                    media,
                });
            }
        }
        // The re-INVITE's own transaction; its 2xx is ACKed in-dialog like the first one.
        call.invite_key = Some(key.clone());
        self.respond_new_tx(now, key, reply_to, &invite, response, Some(handle));
    }

    fn on_cancel(&mut self, now: Instant, key: ServerKey, reply_to: Peer, cancel: Message) {
        let invite_key = ServerKey {
            branch: key.branch.clone(),
            method: "INVITE".into(),
        };
        let Some(entry) = self.server.get(&invite_key) else {
            self.reply_481(now, key, reply_to, &cancel);
            return;
        };
        let call = entry.call;
        self.reply_stateless_tx(now, key, reply_to, &cancel, 200, "OK", None);
        let Some(handle) = call else { return };
        let pending = self
            .calls
            .get(&handle)
            .filter(|c| c.state == CallState::Offered && c.invite_key.as_ref() == Some(&invite_key))
            .and_then(|c| c.invite.clone());
        if let Some(invite) = pending {
            let tag = self.calls.get(&handle).map(|c| c.dialog.local_tag.clone());
            let terminated = self.response(&invite, 487, "Request Terminated", tag.as_deref());
            self.respond_on_invite_tx(now, &invite_key, &terminated);
            self.end_call(handle, EndReason::Cancelled);
        }
    }

    fn respond_on_invite_tx(&mut self, now: Instant, key: &ServerKey, response: &Message) {
        let mut out = Vec::new();
        if let Some(ServerEntry {
            tx: ServerTx::Invite(tx),
            ..
        }) = self.server.get_mut(key)
        {
            tx.respond(response, now, &mut out);
        }
        self.send(out);
    }

    fn on_info(
        &mut self,
        now: Instant,
        key: ServerKey,
        reply_to: Peer,
        handle: CallHandle,
        info: &Message,
    ) {
        let content_type = info.content_type().unwrap_or("");
        match parse_dtmf(content_type, &info.body) {
            Some((digit, duration_ms)) => {
                self.reply_stateless_tx(now, key, reply_to, info, 200, "OK", None);
                self.events.push_back(Event::Dtmf {
                    call: handle,
                    digit,
                    duration_ms,
                });
            }
            None if info.body.is_empty() => {
                // Empty INFO is a keep-alive probe.
                self.reply_stateless_tx(now, key, reply_to, info, 200, "OK", None)
            }
            None => {
                let mut r = self.response(info, 415, "Unsupported Media Type", None);
                r.push_header("Accept", "application/dtmf-relay, application/dtmf");
                self.respond_new_tx(now, key, reply_to, info, r, None);
            }
        }
    }

    fn on_ack_for_2xx(&mut self, now: Instant, handle: CallHandle, ack: &Message) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(key) = call.invite_key.clone() else {
            return;
        };
        let acked = match self.server.get_mut(&key) {
            Some(ServerEntry {
                tx: ServerTx::Invite(tx),
                ..
            }) => tx.on_ack(now),
            _ => false,
        };
        if !acked || call.state != CallState::Answered {
            return;
        }
        call.state = CallState::Confirmed;
        call.invite = None;
        let media = match call.media.clone() {
            Some(media) => Ok(media),
            // Late offer: the answer rides on the ACK.
            None => sdp::parse(&ack.body)
                .and_then(|s| s.negotiate())
                .map_err(|e| e.to_string()),
        };
        match media {
            Ok(media) => {
                call.media = Some(media.clone());
                self.events.push_back(Event::CallConfirmed {
                    call: handle,
                    media,
                });
            }
            Err(reason) => {
                tracing::warn!(%reason, "ACK without a usable SDP answer to our offer: hanging up");
                self.send_bye(now, handle);
                self.end_call(handle, EndReason::BadAck(reason));
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
        self.sweep();
    }

    fn pending_invite(&self, handle: CallHandle) -> Option<(ServerKey, Message, String)> {
        let call = self.calls.get(&handle)?;
        if call.state != CallState::Offered {
            return None;
        }
        Some((
            call.invite_key.clone()?,
            call.invite.clone()?,
            call.dialog.local_tag.clone(),
        ))
    }

    fn provisional(&mut self, now: Instant, handle: CallHandle, code: u16, reason: &str) {
        let Some((key, invite, tag)) = self.pending_invite(handle) else {
            return;
        };
        let mut r = self.response(&invite, code, reason, Some(&tag));
        r.push_header(
            "Contact",
            self.contact(self.server_peer(&key).unwrap_or(Peer::Udp(self.local_addr))),
        );
        self.respond_on_invite_tx(now, &key, &r);
    }

    fn server_peer(&self, key: &ServerKey) -> Option<Peer> {
        match &self.server.get(key)?.tx {
            ServerTx::Invite(tx) => Some(tx.peer),
            ServerTx::NonInvite(tx) => Some(tx.peer),
        }
    }

    fn answer(&mut self, now: Instant, handle: CallHandle, local_rtp: SocketAddr) {
        let Some((key, invite, tag)) = self.pending_invite(handle) else {
            return;
        };
        let peer = self.server_peer(&key).unwrap_or(Peer::Udp(self.local_addr));
        let mut ok = self.response(&invite, 200, "OK", Some(&tag));
        // Record-Route goes back unchanged so proxies stay on the path (§12.1.1).
        for rr in invite.header_values("Record-Route") {
            ok.push_header("Record-Route", rr);
        }
        ok.push_header("Contact", self.contact(peer));
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.local_rtp = Some(local_rtp);
        let body = sdp::write(
            local_rtp,
            call.sdp_session,
            call.sdp_version,
            call.media.as_ref(),
        );
        ok.set_body("application/sdp", body);
        call.state = CallState::Answered;
        self.respond_on_invite_tx(now, &key, &ok);
    }

    fn reject(&mut self, now: Instant, handle: CallHandle, code: u16, reason: EndReason) {
        let Some((key, invite, tag)) = self.pending_invite(handle) else {
            return;
        };
        let phrase = match code {
            480 => "Temporarily Unavailable",
            486 => "Busy Here",
            503 => "Service Unavailable",
            603 => "Decline",
            _ => "Rejected",
        };
        let r = self.response(&invite, code, phrase, Some(&tag));
        self.respond_on_invite_tx(now, &key, &r);
        self.end_call(handle, reason);
    }

    fn hangup(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get(&handle) else {
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

    fn send_bye(&mut self, now: Instant, handle: CallHandle) {
        let branch = new_branch();
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let peer = call.dialog.next_hop();
        let via = via_header(self.local_addr, peer, &branch);
        let mut bye = call.dialog.request("BYE", via, None);
        bye.push_header("User-Agent", self.config.user_agent.clone());
        self.start_client(now, branch, bye, peer, ClientPurpose::Other);
    }

    fn send_cancel(&mut self, now: Instant, handle: CallHandle) {
        let Some(branch) = self
            .calls
            .get(&handle)
            .and_then(|c| c.invite_branch.clone())
        else {
            return;
        };
        let Some(entry) = self.client.get(&branch) else {
            return;
        };
        let invite = entry.tx.request().clone();
        let peer = entry.tx.peer;
        let mut cancel = Message::request("CANCEL", invite.uri().unwrap_or("sip:invalid"));
        for (name, value) in &invite.headers {
            if matches!(
                name.as_str(),
                "Via" | "Route" | "From" | "To" | "Call-ID" | "Max-Forwards"
            ) {
                cancel.push_header(name, value.clone());
            }
        }
        let number = invite.cseq().map_or(1, |(n, _)| n);
        cancel.push_header("CSeq", format!("{number} CANCEL"));
        // The CANCEL's transaction has the INVITE's branch but its own method.
        self.start_client(
            now,
            format!("{branch}|CANCEL"),
            cancel,
            peer,
            ClientPurpose::Other,
        );
    }

    fn start_client(
        &mut self,
        now: Instant,
        key: String,
        request: Message,
        peer: Peer,
        purpose: ClientPurpose,
    ) {
        let mut out = Vec::new();
        let tx = ClientTransaction::start(request, peer, self.timers, now, &mut out);
        self.client.insert(key, ClientEntry { tx, purpose });
        self.send(out);
    }

    /// Places a call (client INVITE with our SDP offer). Progress arrives as events.
    pub fn start_call(&mut self, now: Instant, outgoing: OutgoingCall) -> CallHandle {
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        let branch = new_branch();
        let local_tag = random_token();
        let call_id = format!("{}@{}", random_token(), self.local_addr.ip());
        let sdp_session: u64 = rand::random::<u32>().into();
        let mut invite = Message::request("INVITE", &outgoing.target);
        invite.push_header("Via", self.via(outgoing.peer, &branch));
        invite.push_header("Max-Forwards", "70");
        invite.push_header(
            "From",
            format!(
                "<sip:{}@{}>;tag={local_tag}",
                outgoing.from_user, self.local_addr
            ),
        );
        invite.push_header("To", format!("<{}>", outgoing.target));
        invite.push_header("Call-ID", call_id.clone());
        invite.push_header("CSeq", "1 INVITE");
        invite.push_header("Contact", self.contact(outgoing.peer));
        invite.push_header("Allow", ALLOW);
        invite.push_header("User-Agent", self.config.user_agent.clone());
        invite.set_body(
            "application/sdp",
            sdp::write(outgoing.local_rtp, sdp_session, 1, None),
        );
        // Provisional dialog state until the 2xx names the far end (its tag, Contact and
        // Record-Route replace these then); it lets CANCEL and the dialog map work meanwhile.
        let mut dialog = Dialog::from_answered_invite(&invite, &invite, outgoing.peer);
        dialog.remote_tag.clear();
        self.dialogs.insert((call_id, local_tag), handle);
        self.calls.insert(
            handle,
            Call {
                state: CallState::Calling,
                dialog,
                invite_key: None,
                invite: None,
                invite_branch: Some(branch.clone()),
                ack_bytes: None,
                local_rtp: Some(outgoing.local_rtp),
                media: None,
                sdp_session,
                sdp_version: 1,
            },
        );
        self.start_client(
            now,
            branch,
            invite,
            outgoing.peer,
            ClientPurpose::Invite(handle),
        );
        handle
    }

    fn handle_response(&mut self, now: Instant, response: Message) {
        let Some(branch) = response
            .top_via()
            .and_then(|v| v.branch().map(str::to_string))
        else {
            return;
        };
        let key = match response.cseq() {
            Some((_, "CANCEL")) => format!("{branch}|CANCEL"),
            _ => branch,
        };
        let mut out = Vec::new();
        let Some(entry) = self.client.get_mut(&key) else {
            self.on_stray_response(response);
            return;
        };
        let outcome = entry.tx.on_response(response, now, &mut out);
        let purpose = entry.purpose;
        let invite = entry.tx.request().clone();
        let peer = entry.tx.peer;
        self.send(out);
        if let (Some(outcome), ClientPurpose::Invite(handle)) = (outcome, purpose) {
            self.on_invite_outcome(now, handle, &invite, peer, outcome);
        }
    }

    /// A 2xx to our INVITE repeated after its transaction ended: resend our ACK.
    fn on_stray_response(&mut self, response: Message) {
        if !matches!(response.code(), Some(200..=299))
            || response.cseq().map(|c| c.1) != Some("INVITE")
        {
            return;
        }
        let Some(tag) = response.from_tag() else {
            return;
        };
        let Some(handle) = self
            .dialogs
            .get(&(response.call_id().to_string(), tag.to_string()))
        else {
            return;
        };
        if let Some(call) = self.calls.get(handle)
            && let Some(ack) = &call.ack_bytes
        {
            self.transmits.push_back(Transmit {
                peer: call.dialog.next_hop(),
                data: ack.clone(),
            });
        }
    }

    fn on_invite_outcome(
        &mut self,
        now: Instant,
        handle: CallHandle,
        invite: &Message,
        peer: Peer,
        outcome: ClientOutcome,
    ) {
        let local_addr = self.local_addr;
        let Some(call) = self.calls.get_mut(&handle) else {
            // We hung up meanwhile; a late 2xx still needs ACK + BYE to stop the far end.
            if let ClientOutcome::Final(ok) = outcome
                && matches!(ok.code(), Some(200..=299))
            {
                let mut dialog = Dialog::from_answered_invite(invite, &ok, peer);
                let hop = dialog.next_hop();
                let ack = dialog.request("ACK", self.via(hop, &new_branch()), Some(1));
                self.transmits.push_back(Transmit {
                    peer: hop,
                    data: ack.to_bytes(),
                });
                let branch = new_branch();
                let bye = dialog.request("BYE", self.via(hop, &branch), None);
                self.start_client(now, branch, bye, hop, ClientPurpose::Other);
            }
            return;
        };
        match outcome {
            ClientOutcome::Provisional(r) => {
                let code = r.code().unwrap_or(100);
                if code > 100 {
                    self.events
                        .push_back(Event::OutgoingProgress { call: handle, code });
                }
            }
            ClientOutcome::Final(r) => match r.code() {
                Some(200..=299) => {
                    let mut dialog = Dialog::from_answered_invite(invite, &r, peer);
                    let hop = dialog.next_hop();
                    let ack_cseq = Some(dialog.local_cseq);
                    let ack =
                        dialog.request("ACK", via_header(local_addr, hop, &new_branch()), ack_cseq);
                    let ack_bytes = ack.to_bytes();
                    self.transmits.push_back(Transmit {
                        peer: hop,
                        data: ack_bytes.clone(),
                    });
                    call.dialog = dialog;
                    call.ack_bytes = Some(ack_bytes);
                    call.state = CallState::Confirmed;
                    match sdp::parse(&r.body).and_then(|s| s.negotiate()) {
                        Ok(media) => {
                            call.media = Some(media.clone());
                            self.events.push_back(Event::OutgoingAnswered {
                                call: handle,
                                media,
                            });
                        }
                        Err(e) => {
                            self.send_bye(now, handle);
                            self.end_call(handle, EndReason::BadAck(e.to_string()));
                        }
                    }
                }
                code => self.end_call(handle, EndReason::Failed(code.unwrap_or(500))),
            },
            ClientOutcome::Timeout => self.end_call(handle, EndReason::Timeout),
            // Only timers give this (see `handle_timeout`).
            ClientOutcome::RingTimeout => {}
        }
    }

    fn end_call(&mut self, handle: CallHandle, reason: EndReason) {
        if let Some(call) = self.calls.remove(&handle) {
            self.dialogs
                .remove(&(call.dialog.call_id.clone(), call.dialog.local_tag.clone()));
            self.events.push_back(Event::CallEnded {
                call: handle,
                reason,
            });
        }
    }

    /// Forgets transactions that ended without a timer (2xx ACKed, client INVITE answered).
    fn sweep(&mut self) {
        self.server.retain(|_, e| match &e.tx {
            ServerTx::Invite(t) => !t.is_terminated(),
            ServerTx::NonInvite(t) => !t.is_terminated(),
        });
        self.client.retain(|_, e| !e.tx.is_terminated());
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due_server: Vec<ServerKey> = Vec::new();
        for (key, entry) in &self.server {
            let deadline = match &entry.tx {
                ServerTx::Invite(t) => t.next_deadline(),
                ServerTx::NonInvite(t) => t.next_deadline(),
            };
            if deadline.is_some_and(|d| d <= now) {
                due_server.push(key.clone());
            }
        }
        for key in due_server {
            let mut out = Vec::new();
            let Some(entry) = self.server.get_mut(&key) else {
                continue;
            };
            let call = entry.call;
            let (timeout, done) = match &mut entry.tx {
                ServerTx::Invite(tx) => (tx.on_timeout(now, &mut out), tx.is_terminated()),
                ServerTx::NonInvite(tx) => {
                    tx.on_timeout(now);
                    (None, tx.is_terminated())
                }
            };
            self.send(out);
            if done {
                self.server.remove(&key);
            }
            if timeout == Some(ServerInviteTimeout::NoAckFor2xx)
                && let Some(handle) = call
                && self
                    .calls
                    .get(&handle)
                    .is_some_and(|c| c.state == CallState::Answered)
            {
                tracing::warn!("no ACK for our 200 OK (Timer H): hanging up");
                self.send_bye(now, handle);
                self.end_call(handle, EndReason::NoAck);
            }
        }
        let due_client: Vec<String> = self
            .client
            .iter()
            .filter(|(_, e)| e.tx.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due_client {
            let mut out = Vec::new();
            let Some(entry) = self.client.get_mut(&key) else {
                continue;
            };
            let outcome = entry.tx.on_timeout(now, &mut out);
            let purpose = entry.purpose;
            let done = entry.tx.is_terminated();
            self.send(out);
            if done {
                self.client.remove(&key);
            }
            match (outcome, purpose) {
                (Some(ClientOutcome::Timeout), ClientPurpose::Invite(handle)) => {
                    self.end_call(handle, EndReason::Timeout);
                }
                (Some(ClientOutcome::RingTimeout), ClientPurpose::Invite(handle)) => {
                    tracing::info!("rang past Timer C without an answer: cancelling");
                    self.send_cancel(now, handle);
                }
                _ => {}
            }
        }
        self.sweep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_bodies() {
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', Some(160)))
        );
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=#\r\n"),
            Some(('#', None))
        );
        assert_eq!(parse_dtmf("application/dtmf", b"11"), Some(('#', None)));
        assert_eq!(parse_dtmf("application/dtmf-relay", b"Signal=x"), None);
        assert_eq!(parse_dtmf("text/plain", b"5"), None);
    }

    #[test]
    fn top_via_gets_received_and_rport() {
        let mut m = Message::request("OPTIONS", "sip:a@b");
        m.push_header(
            "Via",
            "SIP/2.0/UDP pbx.local:5070;branch=z9hG4bKa;rport, SIP/2.0/UDP 10.0.0.1",
        );
        stamp_top_via(&mut m, "127.0.0.7:40000".parse().unwrap());
        assert_eq!(
            m.header("Via"),
            Some(
                "SIP/2.0/UDP pbx.local:5070;branch=z9hG4bKa;rport=40000;received=127.0.0.7, SIP/2.0/UDP 10.0.0.1"
            )
        );
    }

    #[test]
    fn response_peer_follows_rport() {
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let with = Via::parse("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;rport").unwrap();
        let without = Via::parse("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa").unwrap();
        assert_eq!(response_peer(Peer::Udp(src), &with), Peer::Udp(src));
        assert_eq!(
            response_peer(Peer::Udp(src), &without),
            Peer::Udp("127.0.0.1:5070".parse().unwrap())
        );
    }
}
