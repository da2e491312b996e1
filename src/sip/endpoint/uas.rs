//! The server side (UAS): requests we receive. Absorbs retransmissions through their server
//! transactions, applies access control and Max-Forwards, and answers INVITE (new call or
//! re-INVITE), UPDATE, ACK, CANCEL, BYE, INFO (DTMF), OPTIONS and the methods we refuse (a
//! re-INVITE or UPDATE also refreshes the session timer: `refresh.rs`); carries out
//! the application's answer to an incoming call (ring, answer, reject); hangs up a call whose
//! 2xx was never ACKed (Timer H).
//!
//! Owns the answers we give; must not build requests of our own (the UAC side does) or
//! touch the transaction table's schedule except through its update calls.

use super::dialogs::{Call, CallState};
use super::session_timer::SessionTimer;
use super::{ALLOW, CallHandle, EndReason, Endpoint, Event, KNOWN_NOT_ALLOWED};
use crate::sip::access::{Admission, SourceVerdict};
use crate::sip::dialog::Dialog;
use crate::sip::message::{self, Message, Via};
use crate::sip::refusals::Refused;
use crate::sip::sdp::{self, NegotiatedMedia, SdpError};
use crate::sip::transaction::{
    Peer, ServerInvite, ServerInviteState, ServerInviteTimeout, ServerKey, ServerNonInvite,
    ServerTx,
};
use std::net::SocketAddr;
use std::time::Instant;

/// Where responses to a request go (§18.2.2 with RFC 3581 rport): back over the same TCP
/// connection, or over UDP to the source IP, at the source port when `rport` was asked
/// for, else at the Via port.
pub(super) fn response_peer(source: Peer, via: &Via) -> Peer {
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

/// A request being handled: its transaction key and where its responses go.
struct Incoming {
    key: ServerKey,
    reply_to: Peer,
    request: Message,
}

impl Endpoint {
    pub(super) fn handle_request(&mut self, now: Instant, source: Peer, mut request: Message) {
        request.stamp_top_via(source.addr());
        let Some(via) = request.top_via() else { return };
        let reply_to = response_peer(source, via);
        let key = ServerKey::for_request(&request);
        if self.absorbed_by_transaction(now, &key, &request) {
            return;
        }
        let dialog = self.dialogs.find(&request);
        if request.method() == Some("ACK") {
            if let Some(call) = dialog {
                self.on_ack_for_2xx(now, call, &request);
            }
            return;
        }
        let incoming = Incoming {
            key,
            reply_to,
            request,
        };
        let Some(incoming) = self.admitted(now, source, dialog, incoming) else {
            return;
        };
        if incoming.request.max_forwards() == Some(0) {
            self.reply(now, incoming, 483, "Too Many Hops");
            return;
        }
        self.dispatch_request(now, dialog, incoming);
    }

    /// Retransmissions and non-2xx ACKs are absorbed by their transaction. Returns true
    /// when the request needs nothing more.
    fn absorbed_by_transaction(
        &mut self,
        now: Instant,
        key: &ServerKey,
        request: &Message,
    ) -> bool {
        let is_ack = request.method() == Some("ACK");
        let mut out = Vec::new();
        let absorbed = self
            .transactions
            .update_server(key, |entry| match &mut entry.tx {
                ServerTx::Invite(tx) if is_ack => {
                    let completed = tx.state() == ServerInviteState::Completed;
                    if completed {
                        tx.on_ack(now);
                    }
                    completed
                }
                ServerTx::Invite(tx) => {
                    tx.on_retransmission(&mut out);
                    true
                }
                // (An ACK never matches a non-INVITE transaction: its key names INVITE.)
                ServerTx::NonInvite(tx) => {
                    tx.on_retransmission(&mut out);
                    true
                }
            });
        self.send(out);
        absorbed == Some(true)
    }

    /// Access control for out-of-dialog requests. In-dialog requests and CANCELs of our own
    /// calls are exempt from flood limits: the PBX carries every call, and a busy PBX must
    /// still be able to hang up. Gives the request back when it may go on.
    fn admitted(
        &mut self,
        now: Instant,
        source: Peer,
        dialog: Option<CallHandle>,
        incoming: Incoming,
    ) -> Option<Incoming> {
        let method = incoming.request.method().unwrap_or("");
        let in_dialog = dialog.is_some()
            || (method == "CANCEL" && self.transactions.server(&incoming.key.invite()).is_some());
        if in_dialog {
            return Some(incoming);
        }
        // Refusals are counted and logged as summaries, not a line each: a flood must not
        // become a flood of log lines.
        let ip = source.addr().ip();
        let reason = match self.access.check_request(ip, now) {
            SourceVerdict::Allowed => return Some(incoming),
            SourceVerdict::Silent if self.access.is_allowed_source(ip) => {
                "over sip.rate_limit_per_second, dropped"
            }
            SourceVerdict::Silent => "not in sip.allowed_sources, dropped",
            SourceVerdict::Forbidden => {
                self.reply(now, incoming, 403, "Forbidden");
                "not in sip.allowed_sources, answered 403"
            }
        };
        self.stats.note_refusal(reason);
        self.refusals.note(Refused::Requests, ip, reason, now);
        None
    }

    fn dispatch_request(&mut self, now: Instant, dialog: Option<CallHandle>, incoming: Incoming) {
        let method = incoming.request.method().unwrap_or("").to_string();
        match (method.as_str(), dialog) {
            ("INVITE", _) if incoming.request.to_tag().is_none() => {
                if self
                    .dialogs
                    .is_late_invite_retransmission(&incoming.request)
                {
                    tracing::debug!("INVITE retransmission for an established call: absorbed");
                    return;
                }
                self.on_new_invite(now, incoming)
            }
            ("INVITE", Some(call)) => self.on_reinvite(now, call, incoming),
            ("CANCEL", _) => self.on_cancel(now, incoming),
            ("BYE", Some(call)) => {
                self.reply(now, incoming, 200, "OK");
                self.end_call(call, EndReason::RemoteHangup);
            }
            ("INFO", Some(call)) => self.on_info(now, call, incoming),
            ("UPDATE", Some(call)) => self.on_update(now, call, incoming),
            ("INVITE" | "BYE" | "INFO" | "UPDATE", None) => {
                self.reply(now, incoming, 481, "Call/Transaction Does Not Exist")
            }
            ("OPTIONS", _) => {
                let tag = incoming
                    .request
                    .to_tag()
                    .is_none()
                    .then(|| self.random_token());
                let mut ok = self.response(&incoming.request, 200, "OK", tag.as_deref());
                ok.push_header("Accept", "application/sdp");
                self.respond_new_tx(now, incoming, ok, None);
            }
            (m, _) if KNOWN_NOT_ALLOWED.contains(&m) => {
                self.reply(now, incoming, 405, "Method Not Allowed")
            }
            _ => self.reply(now, incoming, 501, "Not Implemented"),
        }
    }

    /// A response with our standard headers (Allow, Supported, Server).
    pub(super) fn response(
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
        if (200..300).contains(&code) || code == 422 {
            r.push_header("Supported", "timer");
        }
        r.push_header("Server", self.config.user_agent.clone());
        r
    }

    /// Answers a request in a new server transaction (so retransmissions get the same
    /// answer), remembering which call it belongs to.
    fn respond_new_tx(
        &mut self,
        now: Instant,
        incoming: Incoming,
        response: Message,
        call: Option<CallHandle>,
    ) {
        let mut out = Vec::new();
        let tx = if incoming.request.method() == Some("INVITE") {
            let mut tx = ServerInvite::new(incoming.reply_to, self.timers);
            tx.respond(&response, now, &mut out);
            ServerTx::Invite(tx)
        } else {
            let mut tx = ServerNonInvite::new(incoming.reply_to, self.timers);
            tx.respond(&response, now, &mut out);
            ServerTx::NonInvite(tx)
        };
        self.transactions.insert_server(incoming.key, tx, call);
        self.send(out);
    }

    /// Answers with just a status (a fresh To tag on finals to out-of-dialog requests).
    fn reply(&mut self, now: Instant, incoming: Incoming, code: u16, reason: &str) {
        let tag = (code >= 200 && incoming.request.to_tag().is_none()).then(|| self.random_token());
        let mut response = self.response(&incoming.request, code, reason, tag.as_deref());
        if code == 503 {
            response.push_header("Retry-After", self.config.retry_after_secs.to_string());
        }
        self.respond_new_tx(now, incoming, response, None);
    }

    fn on_new_invite(&mut self, now: Instant, incoming: Incoming) {
        let invite = &incoming.request;
        let dialled = message::user_of(invite.uri().unwrap_or("")).map(str::to_string);
        let priority = dialled
            .as_ref()
            .is_some_and(|d| self.config.priority_numbers.iter().any(|p| p == d));
        match self.access.admit_call(self.dialogs.len(), priority) {
            Admission::Admit => {}
            Admission::Busy => {
                tracing::warn!(calls = self.dialogs.len(), "call limit reached: 503");
                return self.reply(now, incoming, 503, "Service Unavailable");
            }
            Admission::ShuttingDown => return self.reply(now, incoming, 503, "Shutting Down"),
        }
        let session = match self.session_answer(invite, None) {
            Ok(session) => session,
            Err((code, reason)) => {
                let r = self.session_refusal(invite, code, reason);
                return self.respond_new_tx(now, incoming, r, None);
            }
        };
        let offer = match offer_in(invite) {
            Ok(offer) => offer,
            Err((code, reason)) => {
                let tag = self.random_token();
                let mut r = self.response(invite, code, &reason, Some(&tag));
                if code == 488 {
                    r.push_header("Warning", "305 hotlined \"Incompatible media format\"");
                }
                if code == 415 {
                    r.push_header("Accept", "application/sdp");
                }
                return self.respond_new_tx(now, incoming, r, None);
            }
        };
        let caller = invite
            .from_uri()
            .and_then(message::user_of)
            .map(str::to_string);
        let source = incoming.reply_to.addr();
        let handle = self.accept_invite(now, incoming, offer.clone(), session);
        self.events.push_back(Event::IncomingCall {
            call: handle,
            caller,
            dialled,
            source,
            offer,
            priority,
        });
    }

    /// Sends 100 Trying in the INVITE's transaction and records the offered call.
    fn accept_invite(
        &mut self,
        now: Instant,
        incoming: Incoming,
        offer: Option<NegotiatedMedia>,
        session: Option<SessionTimer>,
    ) -> CallHandle {
        let handle = self.dialogs.new_handle();
        let local_tag = self.random_token();
        let dialog = Dialog::from_incoming_invite(&incoming.request, &local_tag, incoming.reply_to);
        let trying = self.response(&incoming.request, 100, "Trying", None);
        let key = incoming.key.clone();
        let invite = incoming.request.clone();
        self.respond_new_tx(now, incoming, trying, Some(handle));
        let sdp_session = self.rng_sdp_session();
        self.dialogs.insert(
            handle,
            Call {
                state: CallState::Offered,
                dialog,
                invite_key: Some(key),
                invite: Some(invite),
                invite_tx: None,
                ack_bytes: None,
                local_rtp: None,
                media: offer,
                sdp_session,
                sdp_version: 1,
                session,
            },
        );
        handle
    }

    fn on_reinvite(&mut self, now: Instant, handle: CallHandle, incoming: Incoming) {
        self.answer_in_dialog(now, handle, incoming);
    }

    /// RFC 3311 UPDATE: an offer without SDP is a session refresh only.
    fn on_update(&mut self, now: Instant, handle: CallHandle, incoming: Incoming) {
        self.answer_in_dialog(now, handle, incoming);
    }

    /// Answers a re-INVITE or UPDATE of `handle`: 200 with our SDP (the answer to its offer;
    /// for a re-INVITE without one, our session offered again) and the session timer's
    /// headers, which restart the timer. `MediaUpdated` only when the media changed: a
    /// refresh offering the same SDP leaves media and IVR alone.
    fn answer_in_dialog(&mut self, now: Instant, handle: CallHandle, incoming: Incoming) {
        let request = &incoming.request;
        let is_invite = request.method() == Some("INVITE");
        let session = match self.session_answer(request, Some(handle)) {
            Ok(session) => session,
            Err((code, reason)) => {
                let r = self.session_refusal(request, code, reason);
                return self.respond_new_tx(now, incoming, r, None);
            }
        };
        let offer = match offer_in(request) {
            Ok(offer) => offer,
            Err((code, reason)) => {
                let r = self.response(request, code, &reason, None);
                return self.respond_new_tx(now, incoming, r, None);
            }
        };
        let mut response = self.response(request, 200, "OK", None);
        response.push_header("Contact", self.contact(incoming.reply_to));
        Self::session_headers(&mut response, session.as_ref());
        let local_addr = self.local_addr;
        let Some(call) = self.dialogs.get_mut(handle) else {
            return;
        };
        call.dialog.remote_cseq = request.cseq().map_or(call.dialog.remote_cseq, |(n, _)| n);
        if let Some(contact) = request.contact_uri() {
            call.dialog.remote_target = contact.to_string();
        }
        if is_invite || offer.is_some() {
            call.sdp_version += 1;
            let body = sdp::write(
                call.local_rtp.unwrap_or(local_addr),
                call.sdp_session,
                call.sdp_version,
                offer.as_ref().or(call.media.as_ref()),
            );
            response.set_body("application/sdp", body);
        }
        if let Some(media) = offer.filter(|m| call.media.as_ref() != Some(m)) {
            call.media = Some(media.clone());
            self.events.push_back(Event::MediaUpdated {
                call: handle,
                media,
            });
        }
        if is_invite {
            // The re-INVITE's own transaction; its 2xx is ACKed in-dialog like the first.
            call.invite_key = Some(incoming.key.clone());
        }
        self.respond_new_tx(now, incoming, response, Some(handle));
        self.session_refreshed(handle, session, now);
    }

    fn on_cancel(&mut self, now: Instant, incoming: Incoming) {
        let invite_key = incoming.key.invite();
        let Some(entry) = self.transactions.server(&invite_key) else {
            return self.reply(now, incoming, 481, "Call/Transaction Does Not Exist");
        };
        let call = entry.owner;
        self.reply(now, incoming, 200, "OK");
        let Some(handle) = call else { return };
        let pending = self
            .dialogs
            .get(handle)
            .filter(|c| c.state == CallState::Offered && c.invite_key.as_ref() == Some(&invite_key))
            .and_then(|c| Some((c.invite.clone()?, c.dialog.local_tag.clone())));
        if let Some((invite, tag)) = pending {
            let terminated = self.response(&invite, 487, "Request Terminated", Some(&tag));
            self.respond_on_invite_tx(now, &invite_key, &terminated);
            self.end_call(handle, EndReason::Cancelled);
        }
    }

    fn respond_on_invite_tx(&mut self, now: Instant, key: &ServerKey, response: &Message) {
        let mut out = Vec::new();
        self.transactions.update_server(key, |entry| {
            if let ServerTx::Invite(tx) = &mut entry.tx {
                tx.respond(response, now, &mut out);
            }
        });
        self.send(out);
    }

    fn on_info(&mut self, now: Instant, handle: CallHandle, incoming: Incoming) {
        let info = &incoming.request;
        let content_type = info.content_type().unwrap_or("");
        match parse_dtmf(content_type, &info.body) {
            Some((digit, duration_ms)) => {
                self.reply(now, incoming, 200, "OK");
                self.events.push_back(Event::Dtmf {
                    call: handle,
                    digit,
                    duration_ms,
                });
            }
            // Empty INFO is a keep-alive probe.
            None if info.body.is_empty() => self.reply(now, incoming, 200, "OK"),
            None => {
                let mut r = self.response(info, 415, "Unsupported Media Type", None);
                r.push_header("Accept", "application/dtmf-relay, application/dtmf");
                self.respond_new_tx(now, incoming, r, None);
            }
        }
    }

    fn on_ack_for_2xx(&mut self, now: Instant, handle: CallHandle, ack: &Message) {
        let Some(key) = self.dialogs.get(handle).and_then(|c| c.invite_key.clone()) else {
            return;
        };
        let acked = self
            .transactions
            .update_server(&key, |entry| match &mut entry.tx {
                ServerTx::Invite(tx) => tx.on_ack(now),
                ServerTx::NonInvite(_) => false,
            });
        let Some(call) = self.dialogs.get_mut(handle) else {
            return;
        };
        if acked != Some(true) || call.state != CallState::Answered {
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

    /// The INVITE transaction, the INVITE and our tag of a call still waiting for the
    /// application's answer.
    fn pending_invite(&self, handle: CallHandle) -> Option<(ServerKey, Message, String)> {
        let call = self.dialogs.get(handle)?;
        if call.state != CallState::Offered {
            return None;
        }
        Some((
            call.invite_key.clone()?,
            call.invite.clone()?,
            call.dialog.local_tag.clone(),
        ))
    }

    pub(super) fn provisional(
        &mut self,
        now: Instant,
        handle: CallHandle,
        code: u16,
        reason: &str,
    ) {
        let Some((key, invite, tag)) = self.pending_invite(handle) else {
            return;
        };
        let mut r = self.response(&invite, code, reason, Some(&tag));
        r.push_header("Contact", self.contact(self.server_peer(&key)));
        self.respond_on_invite_tx(now, &key, &r);
    }

    fn server_peer(&self, key: &ServerKey) -> Peer {
        self.transactions
            .server(key)
            .map_or(Peer::Udp(self.local_addr), |e| e.tx.peer())
    }

    pub(super) fn answer(&mut self, now: Instant, handle: CallHandle, local_rtp: SocketAddr) {
        let Some((key, invite, tag)) = self.pending_invite(handle) else {
            return;
        };
        let peer = self.server_peer(&key);
        let mut ok = self.response(&invite, 200, "OK", Some(&tag));
        // Record-Route goes back unchanged so proxies stay on the path (§12.1.1).
        for rr in invite.record_route() {
            ok.push_header("Record-Route", rr.clone());
        }
        ok.push_header("Contact", self.contact(peer));
        let Some(call) = self.dialogs.get_mut(handle) else {
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
        Self::session_headers(&mut ok, call.session.as_ref());
        call.state = CallState::Answered;
        self.respond_on_invite_tx(now, &key, &ok);
        // RFC 4028: the session starts with our 2xx.
        self.session_refreshed(handle, None, now);
    }

    pub(super) fn reject(
        &mut self,
        now: Instant,
        handle: CallHandle,
        code: u16,
        reason: EndReason,
    ) {
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

    /// A server transaction's timer fired; Timer H on an unACKed 2xx ends the call.
    pub(super) fn server_timeout(&mut self, now: Instant, key: &ServerKey) {
        let mut out = Vec::new();
        let fired = self.transactions.update_server(key, |entry| {
            let timeout = match &mut entry.tx {
                ServerTx::Invite(tx) => tx.on_timeout(now, &mut out),
                ServerTx::NonInvite(tx) => {
                    tx.on_timeout(now);
                    None
                }
            };
            (timeout, entry.owner)
        });
        self.send(out);
        if let Some((Some(ServerInviteTimeout::NoAckFor2xx), Some(handle))) = fired
            && self
                .dialogs
                .get(handle)
                .is_some_and(|c| c.state == CallState::Answered)
        {
            tracing::warn!("no ACK for our 200 OK (Timer H): hanging up");
            self.send_bye(now, handle);
            self.end_call(handle, EndReason::NoAck);
        }
    }
}

/// The negotiated SDP offer in an INVITE, `None` for a late offer, or the error response to
/// give.
fn offer_in(invite: &Message) -> Result<Option<NegotiatedMedia>, (u16, String)> {
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
