//! The calls the endpoint knows, each with its dialog: found by [`CallHandle`] or, for an
//! incoming in-dialog request or a stray 2xx, by Call-ID and our tag.
//!
//! Owns the call records and their index; must not send, time or answer anything (the UAS
//! and UAC sides do).

use super::CallHandle;
use super::session_timer::SessionTimer;
use crate::sip::dialog::Dialog;
use crate::sip::message::Message;
use crate::sip::sdp::NegotiatedMedia;
use crate::sip::transaction::{ClientKey, ServerKey};
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallState {
    /// UAS: INVITE received, waiting for the application.
    Offered,
    /// UAS: 2xx sent, waiting for ACK.
    Answered,
    /// UAC: INVITE sent.
    Calling,
    Confirmed,
}

#[derive(Debug)]
pub(super) struct Call {
    pub state: CallState,
    pub dialog: Dialog,
    /// UAS: the INVITE server transaction (for answering and CANCEL).
    pub invite_key: Option<ServerKey>,
    /// UAS: the INVITE being answered (responses are built from it).
    pub invite: Option<Message>,
    /// UAC: our INVITE's transaction and the ACK we sent for its 2xx (resent on 2xx
    /// repeats).
    pub invite_tx: Option<ClientKey>,
    pub ack_bytes: Option<Vec<u8>>,
    pub local_rtp: Option<SocketAddr>,
    pub media: Option<NegotiatedMedia>,
    pub sdp_session: u64,
    pub sdp_version: u64,
    /// The RFC 4028 session timer agreed with the peer, if any.
    pub session: Option<SessionTimer>,
}

#[derive(Debug, Default)]
pub(super) struct Dialogs {
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, our tag) → call.
    by_id: HashMap<(String, String), CallHandle>,
    next_call: u64,
}

impl Dialogs {
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// A handle no call has had before.
    pub fn new_handle(&mut self) -> CallHandle {
        self.next_call += 1;
        CallHandle(self.next_call)
    }

    /// Adds a call, indexed by its dialog's Call-ID and our tag (which never change).
    pub fn insert(&mut self, handle: CallHandle, call: Call) {
        let id = (call.dialog.call_id.clone(), call.dialog.local_tag.clone());
        self.by_id.insert(id, handle);
        self.calls.insert(handle, call);
    }

    pub fn get(&self, handle: CallHandle) -> Option<&Call> {
        self.calls.get(&handle)
    }

    pub fn get_mut(&mut self, handle: CallHandle) -> Option<&mut Call> {
        self.calls.get_mut(&handle)
    }

    pub fn remove(&mut self, handle: CallHandle) -> Option<Call> {
        let call = self.calls.remove(&handle)?;
        self.by_id
            .remove(&(call.dialog.call_id.clone(), call.dialog.local_tag.clone()));
        Some(call)
    }

    /// The call whose dialog has this Call-ID and our tag.
    pub fn by_local_tag(&self, call_id: &str, local_tag: &str) -> Option<CallHandle> {
        self.by_id
            .get(&(call_id.to_string(), local_tag.to_string()))
            .copied()
    }

    /// The call an incoming in-dialog request belongs to (its To tag is ours).
    pub fn find(&self, request: &Message) -> Option<CallHandle> {
        let handle = self.by_local_tag(request.call_id(), request.to_tag()?)?;
        self.calls
            .get(&handle)
            .filter(|c| c.dialog.matches(request))
            .map(|_| handle)
    }

    /// An INVITE copy arriving after its transaction ended (2xx ACKed) must not start a
    /// second call: same Call-ID, From tag and CSeq as a call we already have.
    pub fn is_late_invite_retransmission(&self, invite: &Message) -> bool {
        let cseq = invite.cseq().map_or(0, |(n, _)| n);
        self.calls.values().any(|c| {
            c.dialog.call_id == invite.call_id()
                && Some(c.dialog.remote_tag.as_str()) == invite.from_tag()
                && c.dialog.remote_cseq >= cseq
        })
    }
}
