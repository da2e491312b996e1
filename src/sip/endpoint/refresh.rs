//! RFC 4028 session timers on the wire: the headers of our 2xx (`Session-Expires`,
//! `Require: timer`), the peer's refreshes (re-INVITE, UPDATE: the timer restarts), our own
//! refreshes when we are the refresher (UPDATE when the peer allows it, else a re-INVITE
//! with the same SDP, version incremented) and their outcomes (2xx: the timer restarts; 422:
//! again with the larger Min-SE; 408, 481 or no answer: BYE), and the end of a session
//! nobody refreshed (BYE).
//!
//! Owns when a dialog's session is refreshed or ends; must not decide the rules (that is
//! `session_timer.rs`) or answer other requests.

use super::dialogs::CallState;
use super::session_timer::{
    Due, MIN_SESSION_EXPIRES_SECS, Refresher, Requested, SessionExpires, SessionTimer,
    allows_update,
};
use super::{ALLOW, CallHandle, ClientPurpose, EndReason, Endpoint, Event};
use crate::sip::message::Message;
use crate::sip::sdp;
use crate::sip::transaction::{ClientKey, ClientOutcome};
use std::time::{Duration, Instant};

/// How long a refresh that is due waits when the dialog is not confirmed yet (our 2xx not
/// ACKed: Timer H ends the call if the ACK never comes).
const NOT_CONFIRMED_RETRY: Duration = Duration::from_secs(1);

impl Endpoint {
    /// The session timer we agree to for `request` from the peer (a new INVITE, a
    /// re-INVITE or an UPDATE of `handle`'s dialog), or the error response to give.
    pub(super) fn session_answer(
        &self,
        request: &Message,
        handle: Option<CallHandle>,
    ) -> Result<Option<SessionTimer>, (u16, &'static str)> {
        let requested = Requested::of(request)?;
        let current = handle
            .and_then(|h| self.dialogs.get(h))
            .and_then(|c| c.session.as_ref());
        let allows = allows_update(request) || current.is_some_and(|c| c.peer_allows_update);
        Ok(SessionTimer::answer(
            &requested,
            current,
            self.config.session_expires_secs,
            allows,
        ))
    }

    /// The error response to a request whose session interval we refuse (422 names our
    /// `Min-SE`).
    pub(super) fn session_refusal(
        &mut self,
        request: &Message,
        code: u16,
        reason: &str,
    ) -> Message {
        let tag = request.to_tag().is_none().then(|| self.random_token());
        let mut r = self.response(request, code, reason, tag.as_deref());
        if code == 422 {
            r.push_header("Min-SE", MIN_SESSION_EXPIRES_SECS.to_string());
        }
        r
    }

    /// Puts `timer`'s headers on our 2xx to the peer's request.
    pub(super) fn session_headers(response: &mut Message, timer: Option<&SessionTimer>) {
        let Some(timer) = timer else { return };
        response.push_header("Session-Expires", timer.answer_header().header_value());
        if timer.peer_supports_timer {
            response.push_header("Require", "timer");
        }
    }

    /// The session of `handle` was set up or refreshed at `now` with `timer`: its next
    /// deadline follows.
    pub(super) fn session_refreshed(
        &mut self,
        handle: CallHandle,
        timer: Option<SessionTimer>,
        now: Instant,
    ) {
        let Some(call) = self.dialogs.get_mut(handle) else {
            return;
        };
        let Some(mut timer) = timer.or_else(|| call.session.take()) else {
            return;
        };
        timer.refreshed_at = Some(now);
        let (at, due) = timer.next_after_refresh(now);
        tracing::debug!(
            call = handle.0,
            interval = timer.interval,
            refresher = ?timer.refresher,
            "session timer (re)started"
        );
        call.session = Some(timer);
        self.sessions.set(handle, at, due);
    }

    /// Session deadlines due at `now`: refresh, or end the session.
    pub(super) fn session_timeouts(&mut self, now: Instant) {
        for (handle, due) in self.sessions.take_due(now) {
            match due {
                Due::Refresh => self.send_refresh(now, handle),
                Due::Expire => {
                    let peer_refreshes = self
                        .dialogs
                        .get(handle)
                        .and_then(|c| c.session.as_ref())
                        .is_some_and(|t| t.refresher == Refresher::Peer);
                    if peer_refreshes {
                        tracing::warn!(
                            call = handle.0,
                            "no session refresh from the peer in time (RFC 4028): hanging up"
                        );
                    } else {
                        tracing::warn!(
                            call = handle.0,
                            "our session refreshes got no answer before the session expired: \
                             hanging up"
                        );
                    }
                    self.send_bye(now, handle);
                    self.end_call(handle, EndReason::SessionExpired);
                }
            }
        }
    }

    /// We are the refresher: UPDATE when the peer allows it, else a re-INVITE offering
    /// our current SDP again (same session id, version incremented).
    fn send_refresh(&mut self, now: Instant, handle: CallHandle) {
        let branch = self.new_branch();
        let local_addr = self.local_addr;
        let user_agent = self.config.user_agent.clone();
        let Some(call) = self.dialogs.get_mut(handle) else {
            return;
        };
        let Some(timer) = call.session.clone() else {
            return;
        };
        if call.state != CallState::Confirmed {
            self.sessions
                .set(handle, now + NOT_CONFIRMED_RETRY, Due::Refresh);
            return;
        }
        let method = if timer.peer_allows_update {
            "UPDATE"
        } else {
            "INVITE"
        };
        let peer = call.dialog.next_hop();
        let via = super::via_header(local_addr, peer, &branch);
        let mut request = call.dialog.request(method, via, None);
        request.push_header("Contact", super::contact_header(local_addr, peer));
        request.push_header("Session-Expires", timer.refresh_header().header_value());
        request.push_header("Min-SE", timer.min_se.to_string());
        request.push_header("Supported", "timer");
        request.push_header("Allow", ALLOW);
        request.push_header("User-Agent", user_agent);
        if method == "INVITE" {
            call.sdp_version += 1;
            let body = sdp::write(
                call.local_rtp.unwrap_or(local_addr),
                call.sdp_session,
                call.sdp_version,
                call.media.as_ref(),
            );
            request.set_body("application/sdp", body);
        }
        tracing::debug!(call = handle.0, method, "sending a session refresh");
        self.sessions.set(handle, timer.expiry(now), Due::Expire);
        self.start_client(
            now,
            ClientKey::new(branch),
            request,
            peer,
            ClientPurpose::Refresh(handle),
        );
    }

    /// What became of our refresh of `handle` (sent as `request`).
    pub(super) fn on_refresh_outcome(
        &mut self,
        now: Instant,
        handle: CallHandle,
        request: &Message,
        outcome: ClientOutcome,
    ) {
        let code = match &outcome {
            ClientOutcome::Provisional(_) | ClientOutcome::RingTimeout => return,
            ClientOutcome::Timeout => 408,
            ClientOutcome::Final(r) => r.code().unwrap_or(500),
        };
        if self.dialogs.get(handle).is_none() {
            return;
        }
        match (code, outcome) {
            (200..=299, ClientOutcome::Final(ok)) => {
                self.refresh_answered(now, handle, request, &ok)
            }
            (422, ClientOutcome::Final(r)) => {
                let min_se = r
                    .header("Min-SE")
                    .and_then(|v| v.split(';').next()?.trim().parse().ok())
                    .unwrap_or(0);
                let raised = self
                    .dialogs
                    .get_mut(handle)
                    .and_then(|c| c.session.as_mut())
                    .is_some_and(|t| t.raise_to(min_se));
                if raised {
                    tracing::info!(
                        call = handle.0,
                        min_se,
                        "422 to our refresh: again with the larger Min-SE"
                    );
                    self.send_refresh(now, handle);
                } else {
                    tracing::warn!(
                        call = handle.0,
                        min_se,
                        "422 to our refresh without a larger Min-SE"
                    );
                }
            }
            (408 | 481, _) => {
                tracing::warn!(
                    call = handle.0,
                    code,
                    "session refresh failed (RFC 4028 §10): hanging up"
                );
                self.send_bye(now, handle);
                self.end_call(handle, EndReason::RefreshFailed(code));
            }
            // The session goes on until it expires (the deadline set when we sent it).
            _ => tracing::warn!(
                call = handle.0,
                code,
                "session refresh refused; the session expires unless a refresh succeeds"
            ),
        }
    }

    /// A 2xx to our refresh: ACK it when it answers a re-INVITE, take the interval it
    /// names, restart the timer.
    fn refresh_answered(
        &mut self,
        now: Instant,
        handle: CallHandle,
        request: &Message,
        ok: &Message,
    ) {
        let expires = SessionExpires::of(ok).ok().flatten();
        let is_invite = request.method() == Some("INVITE");
        let Some(call) = self.dialogs.get_mut(handle) else {
            return;
        };
        let mut dialog = call.dialog.clone();
        if let Some(timer) = call.session.as_mut() {
            timer.on_refresh_answered(expires);
        }
        let changed = sdp::parse(&ok.body)
            .and_then(|s| s.negotiate())
            .ok()
            .filter(|m| call.media.as_ref() != Some(m));
        if let Some(media) = changed {
            call.media = Some(media.clone());
            self.events.push_back(Event::MediaUpdated {
                call: handle,
                media,
            });
        }
        if is_invite {
            let cseq = request.cseq().map_or(dialog.local_cseq, |(n, _)| n);
            let ack = self.send_ack_for_2xx(&mut dialog, cseq);
            if let Some(call) = self.dialogs.get_mut(handle) {
                call.ack_bytes = Some(ack);
            }
        }
        self.session_refreshed(handle, None, now);
    }
}
