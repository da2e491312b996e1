//! RFC 4028 session timers in the sans-IO SIP endpoint, on a simulated clock: who refreshes,
//! when we refresh and how (UPDATE or re-INVITE), what a failed or refused refresh does,
//! that the peer's refreshes restart the timer without touching media, and that a missing
//! refresh ends the call.

#[allow(dead_code)] // Shared with sip_endpoint.rs; this binary uses part of it.
#[path = "support/sip_harness.rs"]
mod sip_harness;

use hotline::sip::endpoint::{CallHandle, EndReason, Event};
use hotline::sip::message::Message;
use sip_harness::*;

/// An INVITE with the caller's `extra` header lines.
fn invite(call_id: &str, extra: &str) -> String {
    request(
        "INVITE",
        call_id,
        &format!("z9hG4bK{call_id}"),
        1,
        None,
        OFFER,
    )
    .replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{extra}"),
    )
}

/// A call set up at t = 0 from an INVITE with `extra` headers: answered and ACKed. Returns
/// the handle, our tag and our 200.
fn established(h: &mut Harness, call_id: &str, extra: &str) -> (CallHandle, String, Message) {
    assert_eq!(codes(&h.feed(&invite(call_id, extra))), vec![100]);
    let call = match h.events().as_slice() {
        [Event::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    let ok = h.answer(call);
    let tag = ok.to_tag().unwrap().to_string();
    let ack = request(
        "ACK",
        call_id,
        &format!("z9hG4bKa{call_id}"),
        1,
        Some(&tag),
        "",
    );
    assert!(h.feed(&ack).is_empty());
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallConfirmed { .. }]
    ));
    (call, tag, ok)
}

/// The peer's response to our in-dialog `req`.
fn response_to(req: &Message, code: u16, extra: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {code} Whatever\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <sip:caller@127.0.0.1:5070>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        req.header("Via").unwrap(),
        req.header("From").unwrap(),
        req.header("To").unwrap(),
        req.call_id(),
        req.header("CSeq").unwrap(),
        body.len()
    )
}

/// The one request sent in (`from_ms`, `to_ms`], at `to_ms` exactly.
fn one_request_at(h: &mut Harness, from_ms: u64, to_ms: u64) -> Message {
    assert!(
        h.run_until(to_ms - 1).is_empty(),
        "nothing before {to_ms} ms"
    );
    let mut sent = h.run_until(to_ms);
    assert_eq!(sent.len(), 1, "one request at {to_ms} ms (after {from_ms})");
    let (at, req) = sent.remove(0);
    assert_eq!(at, to_ms);
    req
}

fn o_line(sdp: &[u8]) -> Vec<String> {
    let text = String::from_utf8(sdp.to_vec()).unwrap();
    let line = text.lines().find(|l| l.starts_with("o=")).unwrap();
    line.split(' ').map(str::to_owned).collect()
}

#[test]
fn our_200_names_the_refresher_rfc4028_section_9_chooses() {
    let mut h = harness();
    // The UAC asks us to refresh.
    let (_, _, ok) = established(
        &mut h,
        "r1",
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n",
    );
    assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uas"));
    assert_eq!(ok.header("Require"), Some("timer"));
    assert!(ok.header_values("Supported").contains(&"timer"));
    // It supports timers and names no refresher: it refreshes.
    let (_, _, ok) = established(&mut h, "r2", "Supported: timer\r\nSession-Expires: 600\r\n");
    assert_eq!(ok.header("Session-Expires"), Some("600;refresher=uac"));
    // It does not support timers: we refresh, and require nothing of it.
    let (_, _, ok) = established(&mut h, "r3", "Session-Expires: 300;refresher=uac\r\n");
    assert_eq!(ok.header("Session-Expires"), Some("300;refresher=uas"));
    assert_eq!(ok.header("Require"), None);
    // No Session-Expires: the configured interval (sip.session_expires_secs, 1800).
    let (_, _, ok) = established(&mut h, "r4", "Supported: timer\r\n");
    assert_eq!(ok.header("Session-Expires"), Some("1800;refresher=uac"));
    let mut none = harness_with(|c| c.session_expires_secs = 0);
    let (_, _, ok) = established(&mut none, "r5", "Supported: timer\r\n");
    assert_eq!(ok.header("Session-Expires"), None);
    assert_eq!(none.ep.counts().session_timers, 0);
    assert_eq!(h.ep.counts().session_timers, 4);
}

#[test]
fn we_refresh_at_half_the_interval_with_update_when_the_peer_allows_it() {
    let mut h = harness();
    let (_, _, ok) = established(
        &mut h,
        "u1",
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n\
         Allow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n",
    );
    let update = one_request_at(&mut h, 0, 45_000);
    assert_eq!(update.method(), Some("UPDATE"));
    assert_eq!(update.uri(), Some("sip:caller@127.0.0.1:5070"));
    assert_eq!(update.cseq(), Some((1, "UPDATE")));
    assert_eq!(update.to_tag(), Some("caller1"));
    assert_eq!(update.from_tag(), ok.to_tag());
    // We are the UAC of the refresh and stay the refresher.
    assert_eq!(update.header("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(update.header("Supported"), Some("timer"));
    assert!(update.body.is_empty(), "a refresh only: no offer");
    h.feed(&response_to(
        &update,
        200,
        "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n",
        "",
    ));
    assert!(
        h.events().is_empty(),
        "a refresh changes nothing for the call"
    );
    // The timer restarted at the 2xx: the next refresh 45 s later.
    let again = one_request_at(&mut h, 45_000, 90_000);
    assert_eq!(again.cseq(), Some((2, "UPDATE")));
}

#[test]
fn without_update_in_allow_we_refresh_with_a_reinvite_of_the_same_sdp() {
    let mut h = harness();
    let (_, tag, ok) = established(
        &mut h,
        "i1",
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\nAllow: INVITE, ACK, BYE\r\n",
    );
    let reinvite = one_request_at(&mut h, 0, 45_000);
    assert_eq!(reinvite.method(), Some("INVITE"));
    assert_eq!(reinvite.to_tag(), Some("caller1"));
    assert_eq!(reinvite.from_tag(), Some(tag.as_str()));
    assert_eq!(reinvite.header("Session-Expires"), Some("90;refresher=uac"));
    // Same SDP: the same o= session id, the version one up (RFC 3264 §8); all else equal.
    let (before, after) = (o_line(&ok.body), o_line(&reinvite.body));
    assert_eq!(before[1], after[1], "same session id");
    let version: u64 = before[2].parse().unwrap();
    assert_eq!(after[2], (version + 1).to_string());
    let rest = |body: &[u8]| {
        let text = String::from_utf8(body.to_vec()).unwrap();
        text.lines()
            .filter(|l| !l.starts_with("o="))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(rest(&ok.body), rest(&reinvite.body));
    // Its 2xx is ACKed (CSeq of the re-INVITE), and ACKed again when it comes again.
    let ok2 = response_to(
        &reinvite,
        200,
        "Session-Expires: 90;refresher=uac\r\n",
        OFFER,
    );
    let out = h.feed(&ok2);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].method(), Some("ACK"));
    assert_eq!(out[0].cseq(), Some((1, "ACK")));
    assert_eq!(h.feed(&ok2)[0].method(), Some("ACK"));
    assert!(h.events().is_empty(), "the same media: nothing to update");
    assert_eq!(
        one_request_at(&mut h, 45_000, 90_000).method(),
        Some("INVITE")
    );
}

#[test]
fn a_refresh_answered_481_or_not_at_all_ends_the_call_with_bye() {
    let mut h = harness();
    let allow = "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n\
                 Allow: INVITE, ACK, BYE, UPDATE\r\n";
    let (gone, _, _) = established(&mut h, "f1", allow);
    let update = one_request_at(&mut h, 0, 45_000);
    let out = h.feed(&response_to(&update, 481, "", ""));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].method(), Some("BYE"));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call: gone,
            reason: EndReason::RefreshFailed(481)
        }]
    );
    // No answer at all: the UPDATE's transaction times out (Timer F, 64 × T1 = 32 s) and
    // counts as 408.
    let mut h = harness();
    let (silent, _, _) = established(&mut h, "f2", allow);
    let mut sent = h.run_until(45_000 + 32_000);
    let (at, bye) = sent.pop().unwrap();
    assert_eq!((at, bye.method()), (77_000, Some("BYE")));
    assert!(sent.iter().all(|(_, m)| m.method() == Some("UPDATE")));
    assert!(sent.len() > 1, "retransmitted over UDP");
    let events = h.events();
    assert_eq!(
        events,
        vec![Event::CallEnded {
            call: silent,
            reason: EndReason::RefreshFailed(408)
        }]
    );
    let counts = h.ep.counts();
    assert_eq!((counts.calls, counts.session_timers), (0, 0));
}

#[test]
fn a_422_to_our_refresh_retries_at_once_with_the_larger_min_se() {
    let mut h = harness();
    established(
        &mut h,
        "m1",
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\nAllow: INVITE, UPDATE\r\n",
    );
    let update = one_request_at(&mut h, 0, 45_000);
    let out = h.feed(&response_to(&update, 422, "Min-SE: 240\r\n", ""));
    assert_eq!(out.len(), 1);
    let retry = &out[0];
    assert_eq!(retry.method(), Some("UPDATE"));
    assert_eq!(retry.cseq(), Some((2, "UPDATE")));
    assert_eq!(retry.header("Session-Expires"), Some("240;refresher=uac"));
    assert_eq!(retry.header("Min-SE"), Some("240"));
    h.feed(&response_to(
        retry,
        200,
        "Session-Expires: 240;refresher=uac\r\n",
        "",
    ));
    // Half of 240 s after the 2xx.
    let next = one_request_at(&mut h, 45_000, 45_000 + 120_000);
    assert_eq!(next.header("Session-Expires"), Some("240;refresher=uac"));
    // A 422 that asks no more than we did is not retried (it would only come again).
    let out = h.feed(&response_to(&next, 422, "Min-SE: 90\r\n", ""));
    assert!(out.is_empty());
}

#[test]
fn a_missing_refresh_from_the_peer_ends_the_call_with_bye() {
    let mut h = harness();
    let (call, _, _) = established(
        &mut h,
        "x1",
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    assert_eq!(h.ep.counts().session_timers, 1);
    // 90 − min(32, 90 / 3) = 60 s.
    let bye = one_request_at(&mut h, 0, 60_000);
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::SessionExpired
        }]
    );
    let counts = h.ep.counts();
    assert_eq!((counts.calls, counts.session_timers), (0, 0));
}

#[test]
fn the_peers_refreshes_restart_the_timer_and_leave_media_alone() {
    let mut h = harness();
    let (_, tag, ok) = established(
        &mut h,
        "p1",
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    // An UPDATE without SDP at 50 s: 200 with the timer's headers, no body, no event.
    h.at(50_000);
    let update = request("UPDATE", "p1", "z9hG4bKpu", 2, Some(&tag), "").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    let out = h.feed(&update);
    assert_eq!(codes(&out), vec![200]);
    assert_eq!(out[0].header("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(out[0].header("Require"), Some("timer"));
    assert!(out[0].body.is_empty());
    assert!(h.events().is_empty());
    // A re-INVITE with the same SDP at 100 s (the old deadline, 60 s, has passed quietly).
    assert!(h.run_until(100_000).is_empty());
    let reinvite = request("INVITE", "p1", "z9hG4bKpi", 3, Some(&tag), OFFER).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: timer\r\nSession-Expires: 90\r\n",
    );
    let out = h.feed(&reinvite);
    assert_eq!(codes(&out), vec![200]);
    // No refresher named: the peer stays the refresher.
    assert_eq!(out[0].header("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(o_line(&out[0].body)[1], o_line(&ok.body)[1]);
    assert!(
        h.events().is_empty(),
        "same media: the call's media is not touched"
    );
    h.feed(&request("ACK", "p1", "z9hG4bKpa", 3, Some(&tag), ""));
    // Now 60 s after the re-INVITE.
    assert_eq!(
        one_request_at(&mut h, 100_000, 160_000).method(),
        Some("BYE")
    );
}

#[test]
fn an_update_outside_a_dialog_gets_481_and_a_short_interval_422() {
    let mut h = harness();
    let out = h.feed(&request("UPDATE", "none", "z9hG4bKnu", 1, Some("x"), ""));
    assert_eq!(codes(&out), vec![481]);
    let (_, tag, _) = established(&mut h, "s1", "Supported: timer\r\n");
    let update = request("UPDATE", "s1", "z9hG4bKsu", 2, Some(&tag), "").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSession-Expires: 30\r\n",
    );
    let out = h.feed(&update);
    assert_eq!(codes(&out), vec![422]);
    assert_eq!(out[0].header("Min-SE"), Some("90"));
}
