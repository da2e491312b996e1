//! RFC 4028 session timers, as rules: what a request asks (`Session-Expires`, `Min-SE`,
//! `Supported: timer`), what we answer (§9: the interval and who refreshes), when the
//! refresher refreshes (half the interval) and when the other side gives up (§10: the
//! interval less min(32 s, a third of it)); and the calls' session deadlines in deadline
//! order, so the next one is found without visiting any call.
//!
//! Owns the rules and the schedule; must not send anything or build requests (`refresh.rs`
//! does, with the UAS and UAC sides).

use super::CallHandle;
use crate::sip::message::Message;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The smallest session interval we accept (RFC 4028 §4: never below 90 s).
pub const MIN_SESSION_EXPIRES_SECS: u32 = 90;

/// A role in one transaction: the side that sent the request (`uac`) or answers it (`uas`),
/// as the `refresher` parameter names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Uac,
    Uas,
}

impl Role {
    fn parse(value: &str) -> Option<Role> {
        match value.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Role::Uac),
            "uas" => Some(Role::Uas),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Uac => "uac",
            Role::Uas => "uas",
        }
    }
}

/// Who refreshes a dialog's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    Us,
    Peer,
}

/// The `Session-Expires` value: `delta-seconds[;refresher=uac|uas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionExpires {
    pub secs: u32,
    pub refresher: Option<Role>,
}

impl SessionExpires {
    /// The message's `Session-Expires` (or its compact form `x`); `Err` when malformed.
    pub fn of(message: &Message) -> Result<Option<SessionExpires>, ()> {
        let Some(value) = message.header("Session-Expires").or(message.header("x")) else {
            return Ok(None);
        };
        let mut parts = value.split(';');
        let secs = parts.next().unwrap_or("").trim().parse().map_err(|_| ())?;
        let refresher = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("refresher")
                .then(|| Role::parse(v))?
        });
        Ok(Some(SessionExpires { secs, refresher }))
    }

    pub fn header_value(self) -> String {
        match self.refresher {
            Some(role) => format!("{};refresher={}", self.secs, role.name()),
            None => self.secs.to_string(),
        }
    }
}

/// What a request (INVITE, re-INVITE, UPDATE) says about session timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Requested {
    pub expires: Option<SessionExpires>,
    /// Its `Min-SE`, at least ours.
    pub min_se: u32,
    /// `Supported: timer` (or `Require: timer`).
    pub supports_timer: bool,
}

impl Requested {
    /// Reads the request; `Err` is the response to give: 400 for a malformed value, 422
    /// (with our `Min-SE`) for an interval below [`MIN_SESSION_EXPIRES_SECS`].
    pub fn of(request: &Message) -> Result<Requested, (u16, &'static str)> {
        let expires =
            SessionExpires::of(request).map_err(|()| (400, "Bad Session-Expires header"))?;
        if expires.is_some_and(|e| e.secs < MIN_SESSION_EXPIRES_SECS) {
            return Err((422, "Session Interval Too Small"));
        }
        let min_se = match request.header("Min-SE") {
            Some(v) => {
                let delta = v.split(';').next().unwrap_or("").trim();
                delta.parse().map_err(|_| (400, "Bad Min-SE header"))?
            }
            None => 0,
        };
        Ok(Requested {
            expires,
            min_se: MIN_SESSION_EXPIRES_SECS.max(min_se),
            supports_timer: lists_timer(request, "Supported") || lists_timer(request, "Require"),
        })
    }
}

/// Does `header` (a comma list of option tags) name `timer`?
pub(super) fn lists_timer(message: &Message, header: &str) -> bool {
    message
        .header_values(header)
        .iter()
        .any(|t| t.eq_ignore_ascii_case("timer"))
}

/// Does the message's `Allow` list UPDATE?
pub(super) fn allows_update(message: &Message) -> bool {
    message
        .header_values("Allow")
        .iter()
        .any(|m| m.eq_ignore_ascii_case("UPDATE"))
}

/// What the timer is waiting for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// We are the refresher: send a refresh.
    Refresh,
    /// The session ends: the peer did not refresh, or our refreshes did not get through.
    Expire,
}

/// A dialog's session timer, agreed per §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SessionTimer {
    pub interval: u32,
    pub refresher: Refresher,
    /// The peer said `Supported: timer`: our 2xx carries `Require: timer`.
    pub peer_supports_timer: bool,
    /// The peer's `Allow` lists UPDATE: our refreshes are UPDATEs, else re-INVITEs.
    pub peer_allows_update: bool,
    /// The larger of ours and the peer's `Min-SE` (or a 422's).
    pub min_se: u32,
    /// When the session was last refreshed (or set up).
    pub refreshed_at: Option<Instant>,
}

impl SessionTimer {
    /// §9: our answer to a request from the peer (the request's UAC) that asks `requested`;
    /// `current` is the dialog's timer so far (a refresh keeps its refresher when the
    /// request names none), `configured` the interval we ask for when the request asks
    /// none (`sip.session_expires_secs`, 0: none). `None`: no session timer.
    pub fn answer(
        requested: &Requested,
        current: Option<&SessionTimer>,
        configured: u32,
        peer_allows_update: bool,
    ) -> Option<SessionTimer> {
        let interval = match (requested.expires, current) {
            (Some(e), _) => e.secs,
            (None, Some(current)) => current.interval,
            (None, None) if configured > 0 => configured,
            (None, None) => return None,
        }
        .max(requested.min_se);
        let asked = requested.expires.and_then(|e| e.refresher);
        let refresher = match (requested.supports_timer, asked, current) {
            // A UAC without the extension cannot refresh: we do (§9).
            (false, _, _) => Refresher::Us,
            (true, Some(Role::Uac), _) => Refresher::Peer,
            (true, Some(Role::Uas), _) => Refresher::Us,
            (true, None, Some(current)) => current.refresher,
            (true, None, None) => Refresher::Peer,
        };
        Some(SessionTimer {
            interval,
            refresher,
            peer_supports_timer: requested.supports_timer,
            peer_allows_update,
            min_se: requested.min_se.max(current.map_or(0, |c| c.min_se)),
            refreshed_at: None,
        })
    }

    /// The `Session-Expires` of our answer to the peer's request (the peer is its UAC).
    pub fn answer_header(&self) -> SessionExpires {
        SessionExpires {
            secs: self.interval,
            refresher: Some(match self.refresher {
                Refresher::Peer => Role::Uac,
                Refresher::Us => Role::Uas,
            }),
        }
    }

    /// The `Session-Expires` of a refresh we send (we are its UAC and keep refreshing).
    pub fn refresh_header(&self) -> SessionExpires {
        SessionExpires {
            secs: self.interval,
            refresher: Some(Role::Uac),
        }
    }

    /// The 2xx to our refresh said `expires` (`None`: the peer does not do session timers,
    /// we go on refreshing at the interval we asked).
    pub fn on_refresh_answered(&mut self, expires: Option<SessionExpires>) {
        if let Some(e) = expires {
            self.interval = e.secs.max(self.min_se);
            self.refresher = match e.refresher {
                Some(Role::Uas) => Refresher::Peer,
                _ => Refresher::Us,
            };
        }
    }

    /// A 422 to our refresh asked at least `min_se`: whether a retry can ask more than we
    /// did (else retrying would only get the same 422).
    pub fn raise_to(&mut self, min_se: u32) -> bool {
        if min_se <= self.interval {
            return false;
        }
        self.min_se = min_se;
        self.interval = min_se;
        true
    }

    /// The next deadline after a refresh at `at` (§10): the refresher refreshes at half the
    /// interval; the other side ends the session at the interval less min(32 s, a third).
    pub fn next_after_refresh(&self, at: Instant) -> (Instant, Due) {
        let interval = Duration::from_secs(self.interval.into());
        match self.refresher {
            Refresher::Us => (at + interval / 2, Due::Refresh),
            Refresher::Peer => {
                let margin = Duration::from_secs(32).min(interval / 3);
                (at + interval - margin, Due::Expire)
            }
        }
    }

    /// When our refresh, sent now, has failed for good if no 2xx has come: the session
    /// expires at the last refresh plus the interval.
    pub fn expiry(&self, now: Instant) -> Instant {
        self.refreshed_at.unwrap_or(now) + Duration::from_secs(self.interval.into())
    }
}

/// The calls' session deadlines in deadline order; one per call at most.
#[derive(Debug, Default)]
pub(super) struct SessionDeadlines {
    due: BTreeSet<(Instant, CallHandle)>,
    of_call: HashMap<CallHandle, (Instant, Due)>,
}

impl SessionDeadlines {
    /// Sets `call`'s deadline (an earlier one of the call is replaced).
    pub fn set(&mut self, call: CallHandle, at: Instant, due: Due) {
        self.cancel(call);
        self.due.insert((at, call));
        self.of_call.insert(call, (at, due));
    }

    pub fn cancel(&mut self, call: CallHandle) {
        if let Some((at, _)) = self.of_call.remove(&call) {
            self.due.remove(&(at, call));
        }
    }

    pub fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// The calls whose deadline has come at `now`, with what is due, taken off the set.
    pub fn take_due(&mut self, now: Instant) -> Vec<(CallHandle, Due)> {
        let mut fired = Vec::new();
        while let Some(&(at, call)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            if let Some((_, due)) = self.of_call.remove(&call) {
                fired.push((call, due));
            }
        }
        fired
    }

    pub fn len(&self) -> usize {
        self.of_call.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Framing, parse};

    fn invite(extra: &str) -> Message {
        let text = format!(
            "INVITE sip:96777@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bKst\r\n\
             From: <sip:caller@pbx>;tag=a\r\nTo: <sip:96777@127.0.0.1>\r\n\
             Call-ID: st1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
             Contact: <sip:caller@127.0.0.5>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes(), Framing::Datagram).unwrap()
    }

    fn answer(extra: &str, configured: u32) -> Option<SessionTimer> {
        let requested = Requested::of(&invite(extra)).unwrap();
        SessionTimer::answer(&requested, None, configured, false)
    }

    #[test]
    fn refresher_choice_follows_rfc4028_section_9() {
        // The UAC's refresher parameter is honoured.
        let t = answer(
            "Supported: timer\r\nSession-Expires: 120;refresher=uas\r\n",
            0,
        )
        .unwrap();
        assert_eq!((t.interval, t.refresher), (120, Refresher::Us));
        assert_eq!(t.answer_header().header_value(), "120;refresher=uas");
        let t = answer(
            "Supported: timer\r\nSession-Expires: 300;refresher=uac\r\n",
            0,
        )
        .unwrap();
        assert_eq!((t.interval, t.refresher), (300, Refresher::Peer));
        assert_eq!(t.answer_header().header_value(), "300;refresher=uac");
        // No parameter: the UAC refreshes when it supports timers...
        let t = answer("Supported: 100rel, timer\r\nSession-Expires: 200\r\n", 0).unwrap();
        assert_eq!(t.refresher, Refresher::Peer);
        assert!(t.peer_supports_timer);
        // ... we do when it does not (a proxy may have added Session-Expires), whatever
        // the parameter says.
        let t = answer("Session-Expires: 200;refresher=uac\r\n", 0).unwrap();
        assert_eq!(t.refresher, Refresher::Us);
        assert!(!t.peer_supports_timer);
        // No Session-Expires: the configured interval, or none; never below the Min-SE.
        assert_eq!(answer("Supported: timer\r\n", 0), None);
        let t = answer("Supported: timer\r\n", 1800).unwrap();
        assert_eq!((t.interval, t.refresher), (1800, Refresher::Peer));
        let t = answer("Min-SE: 2000\r\n", 1800).unwrap();
        assert_eq!((t.interval, t.refresher), (2000, Refresher::Us));
    }

    #[test]
    fn too_small_or_malformed_intervals_are_refused() {
        assert_eq!(
            Requested::of(&invite("Session-Expires: 60\r\n")),
            Err((422, "Session Interval Too Small"))
        );
        assert_eq!(
            Requested::of(&invite("Session-Expires: soon\r\n"))
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(Requested::of(&invite("Min-SE: x\r\n")).unwrap_err().0, 400);
        let compact = Requested::of(&invite("k: timer\r\nx: 90\r\n")).unwrap();
        assert_eq!(compact.expires.map(|e| e.secs), Some(90));
    }

    #[test]
    fn a_refresh_without_refresher_keeps_the_current_one() {
        let first = answer(
            "Supported: timer\r\nSession-Expires: 120;refresher=uas\r\n",
            0,
        );
        let refresh = Requested::of(&invite("Supported: timer\r\nSession-Expires: 150\r\n"));
        let t = SessionTimer::answer(&refresh.unwrap(), first.as_ref(), 0, true).unwrap();
        assert_eq!((t.interval, t.refresher), (150, Refresher::Us));
        assert!(t.peer_allows_update);
    }

    #[test]
    fn deadlines_are_half_the_interval_or_the_interval_less_the_margin() {
        let now = Instant::now();
        let mut t = answer(
            "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n",
            0,
        )
        .unwrap();
        assert_eq!(
            t.next_after_refresh(now),
            (now + Duration::from_secs(45), Due::Refresh)
        );
        t.refresher = Refresher::Peer;
        // 90 − min(32, 30) = 60; 1800 − min(32, 600) = 1768.
        assert_eq!(
            t.next_after_refresh(now),
            (now + Duration::from_secs(60), Due::Expire)
        );
        t.interval = 1800;
        assert_eq!(t.next_after_refresh(now).0, now + Duration::from_secs(1768));
    }

    #[test]
    fn deadlines_come_in_order_and_once() {
        let now = Instant::now();
        let mut d = SessionDeadlines::default();
        d.set(CallHandle(1), now + Duration::from_secs(5), Due::Refresh);
        d.set(CallHandle(2), now + Duration::from_secs(3), Due::Expire);
        d.set(CallHandle(1), now + Duration::from_secs(2), Due::Expire);
        assert_eq!(d.len(), 2);
        assert_eq!(d.next(), Some(now + Duration::from_secs(2)));
        assert_eq!(
            d.take_due(now + Duration::from_secs(4)),
            vec![(CallHandle(1), Due::Expire), (CallHandle(2), Due::Expire)]
        );
        assert_eq!(d.next(), None);
        d.set(CallHandle(3), now, Due::Refresh);
        d.cancel(CallHandle(3));
        assert!(d.take_due(now).is_empty());
    }
}
