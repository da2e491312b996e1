//! The client side (UAC): requests we send — our INVITE (placing a call), BYE, CANCEL and
//! the ACK for a 2xx — and the responses and timeouts of their client transactions: ringing,
//! answer, failure, Timer B and Timer C.
//!
//! Owns what we ask of the far end; must not answer incoming requests (the UAS side does) or
//! touch the transaction table's schedule except through its update calls.

use super::dialogs::{Call, CallState};
use super::{ALLOW, CallHandle, ClientPurpose, EndReason, Endpoint, Event, OutgoingCall};
use crate::sip::dialog::Dialog;
use crate::sip::message::Message;
use crate::sip::sdp;
use crate::sip::transaction::{ClientKey, ClientOutcome, ClientTransaction, Peer, Transmit};
use std::time::Instant;

impl Endpoint {
    pub(super) fn send_bye(&mut self, now: Instant, handle: CallHandle) {
        let branch = self.new_branch();
        let local_addr = self.local_addr;
        let user_agent = self.config.user_agent.clone();
        let Some(call) = self.dialogs.get_mut(handle) else {
            return;
        };
        let peer = call.dialog.next_hop();
        let via = super::via_header(local_addr, peer, &branch);
        let mut bye = call.dialog.request("BYE", via, None);
        bye.push_header("User-Agent", user_agent);
        self.start_client(now, ClientKey::new(branch), bye, peer, ClientPurpose::Other);
    }

    pub(super) fn send_cancel(&mut self, now: Instant, handle: CallHandle) {
        let Some(key) = self.dialogs.get(handle).and_then(|c| c.invite_tx.clone()) else {
            return;
        };
        let Some(entry) = self.transactions.client(&key) else {
            return;
        };
        let invite = entry.tx.request();
        let peer = entry.tx.peer;
        let mut cancel = Message::request("CANCEL", invite.uri().unwrap_or("sip:invalid"));
        for (name, value) in invite.headers() {
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
        self.start_client(now, key.cancel(), cancel, peer, ClientPurpose::Other);
    }

    pub(super) fn start_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        request: Message,
        peer: Peer,
        purpose: ClientPurpose,
    ) {
        let mut out = Vec::new();
        let tx = ClientTransaction::start(request, peer, self.timers, now, &mut out);
        self.transactions.insert_client(key, tx, purpose);
        self.send(out);
    }

    /// Places a call (client INVITE with our SDP offer). Progress arrives as events.
    pub fn start_call(&mut self, now: Instant, outgoing: OutgoingCall) -> CallHandle {
        let handle = self.dialogs.new_handle();
        let branch = self.new_branch();
        let local_tag = self.random_token();
        let call_id = format!("{}@{}", self.random_token(), self.local_addr.ip());
        let sdp_session = self.rng_sdp_session();
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
        invite.push_header("Call-ID", call_id);
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
        let key = ClientKey::new(branch);
        self.dialogs.insert(
            handle,
            Call {
                state: CallState::Calling,
                dialog,
                invite_key: None,
                invite: None,
                invite_tx: Some(key.clone()),
                ack_bytes: None,
                local_rtp: Some(outgoing.local_rtp),
                media: None,
                sdp_session,
                sdp_version: 1,
                session: None,
            },
        );
        self.start_client(
            now,
            key,
            invite,
            outgoing.peer,
            ClientPurpose::Invite(handle),
        );
        handle
    }

    pub(super) fn handle_response(&mut self, now: Instant, response: Message) {
        let Some(key) = ClientKey::for_response(&response) else {
            return;
        };
        if self.transactions.client(&key).is_none() {
            return self.on_stray_response(&response);
        }
        let mut out = Vec::new();
        let reported = self.transactions.update_client(&key, |entry| {
            let outcome = entry.tx.on_response(response, now, &mut out)?;
            (entry.owner != ClientPurpose::Other).then(|| {
                let request = entry.tx.request().clone();
                (entry.owner, request, entry.tx.peer, outcome)
            })
        });
        self.send(out);
        match reported {
            Some(Some((ClientPurpose::Invite(handle), invite, peer, outcome))) => {
                self.on_invite_outcome(now, handle, &invite, peer, outcome)
            }
            Some(Some((ClientPurpose::Refresh(handle), request, _, outcome))) => {
                self.on_refresh_outcome(now, handle, &request, outcome)
            }
            _ => {}
        }
    }

    /// A 2xx to our INVITE repeated after its transaction ended: resend our ACK.
    fn on_stray_response(&mut self, response: &Message) {
        if !matches!(response.code(), Some(200..=299))
            || response.cseq().map(|c| c.1) != Some("INVITE")
        {
            return;
        }
        let Some(tag) = response.from_tag() else {
            return;
        };
        let Some(handle) = self.dialogs.by_local_tag(response.call_id(), tag) else {
            return;
        };
        if let Some(call) = self.dialogs.get(handle)
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
        if self.dialogs.get(handle).is_none() {
            // We hung up meanwhile; a late 2xx still needs ACK + BYE to stop the far end.
            if let ClientOutcome::Final(ok) = outcome
                && matches!(ok.code(), Some(200..=299))
            {
                self.ack_and_bye_late_answer(now, invite, &ok, peer);
            }
            return;
        }
        match outcome {
            ClientOutcome::Provisional(r) => {
                let code = r.code().unwrap_or(100);
                if code > 100 {
                    self.events
                        .push_back(Event::OutgoingProgress { call: handle, code });
                }
            }
            ClientOutcome::Final(ok) if matches!(ok.code(), Some(200..=299)) => {
                self.on_answered(now, handle, invite, &ok, peer)
            }
            ClientOutcome::Final(r) => {
                self.end_call(handle, EndReason::Failed(r.code().unwrap_or(500)))
            }
            ClientOutcome::Timeout => self.end_call(handle, EndReason::Timeout),
            // Only timers give this (see `client_timeout`).
            ClientOutcome::RingTimeout => {}
        }
    }

    /// Sends the ACK for a 2xx to our INVITE (a new transaction of its own, §13.2.2.4) and
    /// returns its bytes, for resending when the 2xx comes again.
    pub(super) fn send_ack_for_2xx(&mut self, dialog: &mut Dialog, invite_cseq: u32) -> Vec<u8> {
        let hop = dialog.next_hop();
        let branch = self.new_branch();
        let ack = dialog.request("ACK", self.via(hop, &branch), Some(invite_cseq));
        let data = ack.to_bytes();
        self.transmits.push_back(Transmit {
            peer: hop,
            data: data.clone(),
        });
        data
    }

    fn ack_and_bye_late_answer(
        &mut self,
        now: Instant,
        invite: &Message,
        ok: &Message,
        peer: Peer,
    ) {
        let mut dialog = Dialog::from_answered_invite(invite, ok, peer);
        self.send_ack_for_2xx(&mut dialog, 1);
        let hop = dialog.next_hop();
        let branch = self.new_branch();
        let bye = dialog.request("BYE", self.via(hop, &branch), None);
        self.start_client(now, ClientKey::new(branch), bye, hop, ClientPurpose::Other);
    }

    /// Our INVITE was answered: ACK the 2xx, take the far end's dialog and media.
    fn on_answered(
        &mut self,
        now: Instant,
        handle: CallHandle,
        invite: &Message,
        ok: &Message,
        peer: Peer,
    ) {
        let mut dialog = Dialog::from_answered_invite(invite, ok, peer);
        let ack_cseq = dialog.local_cseq;
        let ack_bytes = self.send_ack_for_2xx(&mut dialog, ack_cseq);
        let Some(call) = self.dialogs.get_mut(handle) else {
            return;
        };
        call.dialog = dialog;
        call.ack_bytes = Some(ack_bytes);
        call.state = CallState::Confirmed;
        match sdp::parse(&ok.body).and_then(|s| s.negotiate()) {
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

    /// A client transaction's timer fired: Timer B ends our call, Timer C cancels it, a
    /// refresh that got no answer fails.
    pub(super) fn client_timeout(&mut self, now: Instant, key: &ClientKey) {
        let mut out = Vec::new();
        let fired = self.transactions.update_client(key, |entry| {
            let request = matches!(entry.owner, ClientPurpose::Refresh(_))
                .then(|| entry.tx.request().clone());
            (entry.tx.on_timeout(now, &mut out), entry.owner, request)
        });
        self.send(out);
        match fired {
            Some((Some(ClientOutcome::Timeout), ClientPurpose::Invite(handle), _)) => {
                self.end_call(handle, EndReason::Timeout);
            }
            Some((Some(ClientOutcome::RingTimeout), ClientPurpose::Invite(handle), _)) => {
                tracing::info!("rang past Timer C without an answer: cancelling");
                self.send_cancel(now, handle);
            }
            Some((Some(outcome), ClientPurpose::Refresh(handle), Some(request))) => {
                self.on_refresh_outcome(now, handle, &request, outcome);
            }
            _ => {}
        }
    }
}
