//! The sans-IO SIP endpoint driven with a simulated clock: every UAS/UAC flow, timer and
//! error answer, without sockets.

use hotline::sip::config::{SipConfig, UnauthorisedAction};
use hotline::sip::endpoint::{CallHandle, Command, EndReason, Endpoint, Event, OutgoingCall};
use hotline::sip::message::{Framing, Message, parse};
use hotline::sip::sdp::{Codec, Direction};
use hotline::sip::transaction::{Peer, TIMER_C};
use std::net::SocketAddr;
use std::time::Instant;

#[path = "support/sip_harness.rs"]
mod sip_harness;

use sip_harness::*;

#[test]
fn options_gets_200_with_allow_and_accept() {
    let mut h = harness();
    let out = h.feed(&request("OPTIONS", "o1", "z9hG4bKo1", 1, None, ""));
    assert_eq!(codes(&out), vec![200]);
    assert!(out[0].header("Allow").unwrap().contains("INVITE"));
    assert_eq!(out[0].header("Accept"), Some("application/sdp"));
    assert!(out[0].to_tag().is_some());
    // Timer J then clears the transaction.
    assert_eq!(h.ep.counts().server_transactions, 1);
    h.run_until(32_000);
    assert_eq!(h.ep.counts().transactions(), 0);
}

#[test]
fn full_incoming_call_2xx_retransmitted_until_ack_then_bye() {
    let mut h = harness();
    let invite = request("INVITE", "c1", "z9hG4bKi1", 1, None, OFFER);
    let out = h.feed(&invite);
    assert_eq!(codes(&out), vec![100]);
    let events = h.events();
    let Event::IncomingCall {
        call,
        caller,
        dialled,
        offer,
        priority,
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(caller.as_deref(), Some("13812341234"));
    assert_eq!(dialled.as_deref(), Some("4008"));
    assert!(!priority);
    let offer = offer.clone().unwrap();
    assert_eq!(offer.codec, Codec::Pcma, "offerer's order");
    assert_eq!(offer.telephone_event_pt, Some(96));
    let call = *call;

    // A retransmitted INVITE before the answer gets the 100 again.
    h.at(200);
    assert_eq!(codes(&h.feed(&invite)), vec![100]);

    h.ep.handle_command(h.now, Command::Ring { call });
    assert_eq!(codes(&h.sent()), vec![180]);

    let ok = h.answer(call);
    assert_eq!(ok.code(), Some(200));
    let to_tag = ok.to_tag().unwrap().to_string();
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 20000 RTP/AVP 8 96"), "{body}");
    assert!(ok.header("Contact").is_some());

    // A retransmitted INVITE now gets the 200 again.
    assert_eq!(codes(&h.feed(&invite)), vec![200]);

    let resent = h.run_until(200 + 8_000);
    let times: Vec<u64> = resent.iter().map(|(t, _)| *t - 200).collect();
    assert_eq!(times, vec![500, 1500, 3500, 7500]);
    assert!(resent.iter().all(|(_, m)| m.code() == Some(200)));

    h.at(9_000);
    let ack = request("ACK", "c1", "z9hG4bKack1", 1, Some(&to_tag), "");
    assert!(h.feed(&ack).is_empty());
    match h.events().as_slice() {
        [Event::CallConfirmed { call: c, media }] => {
            assert_eq!(*c, call);
            assert_eq!(
                media.remote_rtp,
                "127.0.0.1:4000".parse::<SocketAddr>().unwrap()
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(h.run_until(20_000).is_empty(), "no 2xx after the ACK");
    // A very late copy of the INVITE (its transaction is gone) starts no second call.
    assert_eq!(h.ep.counts().server_transactions, 0);
    assert!(h.feed(&invite).is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.ep.counts().calls, 1);

    let bye = request("BYE", "c1", "z9hG4bKbye1", 2, Some(&to_tag), "");
    assert_eq!(codes(&h.feed(&bye)), vec![200]);
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::RemoteHangup
        }]
    );
    // Retransmitted BYE is absorbed by its transaction (200 again, no new event).
    assert_eq!(codes(&h.feed(&bye)), vec![200]);
    assert!(h.events().is_empty());
    h.run_until(60_000);
    assert_eq!(h.ep.counts(), Default::default());
}

#[test]
fn timer_h_without_ack_sends_bye_and_reports() {
    let mut h = harness();
    let call = h.incoming("c2", "z9hG4bKi2");
    h.answer(call);
    let sent = h.run_until(40_000);
    let bye: Vec<&(u64, Message)> = sent
        .iter()
        .filter(|(_, m)| m.method() == Some("BYE"))
        .collect();
    assert_eq!(bye[0].0, 32_000, "Timer H = 64*T1");
    let retransmits: Vec<u64> = bye[1..].iter().map(|(t, _)| t - 32_000).collect();
    assert_eq!(
        retransmits,
        vec![500, 1500, 3500, 7500],
        "Timer E on our BYE"
    );
    assert!(bye.iter().all(|(_, m)| m.top_via() == bye[0].1.top_via()));
    assert_eq!(bye[0].1.uri(), Some("sip:caller@127.0.0.1:5070"));
    assert_eq!(bye[0].1.to_tag(), Some("caller1"));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::NoAck
        }]
    );
    // The peer answers the BYE: our client transaction completes (Timer K) and all is gone.
    let ok = Message::response_to(&bye[0].1, 200, "OK", None);
    h.ep.handle_message(h.now, h.pbx, &ok.to_bytes());
    h.run_until(80_000);
    assert_eq!(h.ep.counts(), Default::default());
}

#[test]
fn cancel_before_answer_gives_200_and_487() {
    let mut h = harness();
    let call = h.incoming("c3", "z9hG4bKi3");
    let cancel = request("CANCEL", "c3", "z9hG4bKi3", 1, None, "");
    let out = h.feed(&cancel);
    assert_eq!(codes(&out), vec![200, 487]);
    assert_eq!(out[0].cseq(), Some((1, "CANCEL")));
    assert_eq!(out[1].cseq(), Some((1, "INVITE")));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::Cancelled
        }]
    );
    // 487 is retransmitted (Timer G) until the ACK, which the transaction absorbs.
    let resent = h.run_until(600);
    assert_eq!(
        codes(&resent.into_iter().map(|(_, m)| m).collect::<Vec<_>>()),
        vec![487]
    );
    let tag = out[1].to_tag().unwrap().to_string();
    assert!(
        h.feed(&request("ACK", "c3", "z9hG4bKi3", 1, Some(&tag), ""))
            .is_empty()
    );
    assert!(h.run_until(40_000).is_empty());
    assert_eq!(h.ep.counts(), Default::default());
    // A CANCEL for nothing is 481; answering a cancelled call does nothing.
    let out = h.feed(&request("CANCEL", "c9", "z9hG4bKnone", 1, None, ""));
    assert_eq!(codes(&out), vec![481]);
    h.ep.handle_command(
        h.now,
        Command::Answer {
            call,
            local_rtp: "127.0.0.1:1".parse().unwrap(),
        },
    );
    assert!(h.sent().is_empty());
}

#[test]
fn rejected_call_retransmits_error_until_ack_then_timer_i() {
    let mut h = harness();
    let call = h.incoming("c4", "z9hG4bKi4");
    h.ep.handle_command(h.now, Command::Reject { call, code: 486 });
    assert_eq!(codes(&h.sent()), vec![486]);
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::Rejected(486)
        }]
    );
    let resent: Vec<u64> = h.run_until(4_000).into_iter().map(|(t, _)| t).collect();
    assert_eq!(resent, vec![500, 1500, 3500], "Timer G");
    h.feed(&request("ACK", "c4", "z9hG4bKi4", 1, None, ""));
    assert_eq!(
        h.ep.counts().server_transactions,
        1,
        "Timer I still absorbs ACKs"
    );
    h.run_until(9_001);
    assert_eq!(h.ep.counts(), Default::default());
}

#[test]
fn error_answers_481_405_501_483() {
    let mut h = harness();
    let bye = request("BYE", "nope", "z9hG4bKb", 2, Some("x"), "");
    assert_eq!(codes(&h.feed(&bye)), vec![481]);
    let info = request("INFO", "nope", "z9hG4bKf", 2, Some("x"), "");
    assert_eq!(codes(&h.feed(&info)), vec![481]);
    let register = request("REGISTER", "r", "z9hG4bKr", 1, None, "");
    let out = h.feed(&register);
    assert_eq!(codes(&out), vec![405]);
    assert!(out[0].header("Allow").is_some());
    let unknown = request("FROBNICATE", "u", "z9hG4bKu", 1, None, "");
    assert_eq!(codes(&h.feed(&unknown)), vec![501]);
    let hops = request("OPTIONS", "m", "z9hG4bKm", 1, None, "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(codes(&h.feed(&hops)), vec![483]);
}

#[test]
fn missing_mandatory_headers_get_400_naming_them() {
    for header in ["Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards"] {
        let mut h = harness();
        let full = request("OPTIONS", "m1", "z9hG4bKm1", 1, None, "");
        let without: String = full
            .split("\r\n")
            .filter(|l| !l.starts_with(&format!("{header}:")))
            .collect::<Vec<_>>()
            .join("\r\n");
        h.ep.handle_message(h.now, h.pbx, without.as_bytes());
        // Read raw: a 400 to a request without Via cannot carry a Via either.
        let reply = h.ep.poll_transmit().expect("a 400");
        let status_line = String::from_utf8_lossy(&reply.data)
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(status_line, format!("SIP/2.0 400 Missing {header} header"));
        assert_eq!(reply.peer, h.pbx);
        assert!(h.ep.poll_transmit().is_none());
    }
}

#[test]
fn invite_without_contact_gets_400_naming_it_and_no_call() {
    let mut h = harness();
    let without = request("INVITE", "nc1", "z9hG4bKnc1", 1, None, OFFER)
        .replace("Contact: <sip:caller@127.0.0.1:5070>\r\n", "");
    let reply = h.feed_raw(&without);
    assert_eq!(status_line(&reply), "SIP/2.0 400 Missing Contact header");
    assert_eq!(reply.len(), 1);
    assert_eq!(parse_reply(&reply).call_id(), "nc1");
    // Nothing rings and no timer retransmits anything.
    assert!(h.events().is_empty());
    assert_eq!(h.ep.counts().calls, 0);
    assert!(h.run_until(64_000).is_empty());
}

#[test]
fn foreign_sip_version_gets_505_or_is_dropped_when_unanswerable() {
    let mut h = harness();
    let v3 = request("INVITE", "v1", "z9hG4bKv1", 1, None, OFFER).replacen(
        "SIP/2.0\r\n",
        "SIP/3.0\r\n",
        1,
    );
    let reply = h.feed_raw(&v3);
    assert_eq!(status_line(&reply), "SIP/2.0 505 Version Not Supported");
    assert_eq!(reply.len(), 1);
    let response = parse_reply(&reply);
    assert_eq!(response.call_id(), "v1");
    assert_eq!(response.cseq(), Some((1, "INVITE")));
    assert!(h.events().is_empty());
    assert_eq!(h.ep.counts().calls, 0);
    // Without a Call-ID no response can be built: silence.
    let unanswerable = v3.replace("Call-ID: v1\r\n", "");
    assert!(h.feed(&unanswerable).is_empty());
    // An ACK is never answered, whatever its version.
    let ack =
        request("ACK", "v2", "z9hG4bKv2", 1, None, "").replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    assert!(h.feed(&ack).is_empty());
    // SIP/2.0 still works afterwards.
    let options = request("OPTIONS", "v3", "z9hG4bKv3", 1, None, "");
    assert_eq!(codes(&h.feed(&options)), vec![200]);
}

#[test]
fn no_common_codec_is_488_and_malformed_sdp_400() {
    let mut h = harness();
    let g729 = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let out = h.feed(&request("INVITE", "n1", "z9hG4bKn1", 1, None, g729));
    assert_eq!(codes(&out), vec![488]);
    assert!(out[0].header("Warning").unwrap().starts_with("305"));
    let out = h.feed(&request("INVITE", "n2", "z9hG4bKn2", 1, None, "v=1\r\n"));
    assert_eq!(codes(&out), vec![400]);
    assert!(h.events().is_empty());
    assert_eq!(h.ep.counts().calls, 0);
}

#[test]
fn late_offer_we_offer_in_200_and_take_the_answer_from_ack() {
    let mut h = harness();
    let out = h.feed(&request("INVITE", "l1", "z9hG4bKl1", 1, None, ""));
    assert_eq!(codes(&out), vec![100]);
    let call = match h.events().as_slice() {
        [
            Event::IncomingCall {
                call, offer: None, ..
            },
        ] => *call,
        other => panic!("{other:?}"),
    };
    let ok = h.answer(call);
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 20000 RTP/AVP 0 8 101"), "{body}");
    let tag = ok.to_tag().unwrap().to_string();
    let answer = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4002 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    h.feed(&request("ACK", "l1", "z9hG4bKla", 1, Some(&tag), answer));
    match h.events().as_slice() {
        [Event::CallConfirmed { media, .. }] => {
            assert_eq!(media.codec, Codec::Pcma);
            assert_eq!(media.remote_rtp.port(), 4002);
            assert_eq!(media.telephone_event_pt, Some(101));
        }
        other => panic!("{other:?}"),
    }
    // A late-offer ACK without an answer ends the call with BYE.
    let out = h.feed(&request("INVITE", "l2", "z9hG4bKl2", 1, None, ""));
    assert_eq!(codes(&out), vec![100]);
    let Event::IncomingCall { call, .. } = h.events()[0] else {
        panic!()
    };
    let tag = h.answer(call).to_tag().unwrap().to_string();
    let out = h.feed(&request("ACK", "l2", "z9hG4bKlb", 1, Some(&tag), ""));
    assert_eq!(out[0].method(), Some("BYE"));
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallEnded {
            reason: EndReason::BadAck(_),
            ..
        }]
    ));
}

#[test]
fn reinvite_hold_unhold_and_new_address_are_reported() {
    let mut h = harness();
    let call = h.incoming("h1", "z9hG4bKh1");
    let tag = h.answer(call).to_tag().unwrap().to_string();
    h.feed(&request("ACK", "h1", "z9hG4bKha", 1, Some(&tag), ""));
    h.events();
    let hold = OFFER.to_string() + "a=sendonly\r\n";
    let out = h.feed(&request("INVITE", "h1", "z9hG4bKh2", 2, Some(&tag), &hold));
    assert_eq!(codes(&out), vec![200]);
    assert!(
        String::from_utf8(out[0].body.clone())
            .unwrap()
            .contains("a=recvonly")
    );
    match h.events().as_slice() {
        [Event::MediaUpdated { media, .. }] => {
            assert!(media.on_hold());
            assert_eq!(media.direction, Direction::RecvOnly);
        }
        other => panic!("{other:?}"),
    }
    h.feed(&request("ACK", "h1", "z9hG4bKhb", 2, Some(&tag), ""));
    let moved = OFFER
        .replace("c=IN IP4 127.0.0.1", "c=IN IP6 ::1")
        .replace("4000", "4100");
    let out = h.feed(&request("INVITE", "h1", "z9hG4bKh3", 3, Some(&tag), &moved));
    assert_eq!(codes(&out), vec![200]);
    match h.events().as_slice() {
        [Event::MediaUpdated { media, .. }] => {
            assert!(!media.on_hold());
            assert_eq!(
                media.remote_rtp,
                "[::1]:4100".parse::<SocketAddr>().unwrap()
            );
        }
        other => panic!("{other:?}"),
    }
    // A re-INVITE's 2xx is retransmitted until its ACK, too.
    let resent = h.run_until(600);
    assert_eq!(resent.len(), 1);
    h.feed(&request("ACK", "h1", "z9hG4bKhc", 3, Some(&tag), ""));
    assert!(h.run_until(5_000).is_empty());
}

#[test]
fn info_dtmf_relay_is_reported() {
    let mut h = harness();
    let call = h.incoming("d1", "z9hG4bKd1");
    let tag = h.answer(call).to_tag().unwrap().to_string();
    h.feed(&request("ACK", "d1", "z9hG4bKda", 1, Some(&tag), ""));
    h.events();
    let info = request(
        "INFO",
        "d1",
        "z9hG4bKd2",
        2,
        Some(&tag),
        "Signal=1\r\nDuration=100\r\n",
    )
    .replace("application/sdp", "application/dtmf-relay");
    assert_eq!(codes(&h.feed(&info)), vec![200]);
    assert_eq!(
        h.events(),
        vec![Event::Dtmf {
            call,
            digit: '1',
            duration_ms: Some(100)
        }]
    );
}

#[test]
fn record_route_copied_and_our_bye_follows_the_route_set() {
    let mut h = harness();
    let invite = request("INVITE", "k1", "z9hG4bKk1", 1, None, OFFER).replace(
        "Contact:",
        "Record-Route: <sip:127.0.0.3:5080;lr>\r\nContact:",
    );
    h.feed(&invite);
    let Event::IncomingCall { call, .. } = h.events()[0] else {
        panic!()
    };
    let ok = h.answer(call);
    assert_eq!(
        ok.header_values("Record-Route"),
        vec!["<sip:127.0.0.3:5080;lr>"]
    );
    let tag = ok.to_tag().unwrap().to_string();
    h.feed(&request("ACK", "k1", "z9hG4bKka", 1, Some(&tag), ""));
    h.ep.handle_command(h.now, Command::Hangup { call });
    let mut bye = None;
    while let Some(t) = h.ep.poll_transmit() {
        assert_eq!(t.peer, Peer::Udp("127.0.0.3:5080".parse().unwrap()));
        bye = Some(parse(&t.data, Framing::Datagram).unwrap());
    }
    let bye = bye.unwrap();
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.header("Route"), Some("<sip:127.0.0.3:5080;lr>"));
    assert_eq!(bye.cseq(), Some((1, "BYE")));
}

#[test]
fn access_control_forbidden_ignored_and_flooded() {
    let mut h = harness_with(|c| c.allowed_sources = vec!["10.0.0.0/8".into()]);
    let out = h.feed(&request("INVITE", "a1", "z9hG4bKa1", 1, None, OFFER));
    assert_eq!(codes(&out), vec![403]);
    let mut quiet = harness_with(|c| {
        c.allowed_sources = vec!["10.0.0.0/8".into()];
        c.unauthorised_invite = UnauthorisedAction::Ignore;
    });
    assert!(
        quiet
            .feed(&request("INVITE", "a2", "z9hG4bKa2", 1, None, OFFER))
            .is_empty()
    );

    let mut flood = harness_with(|c| {
        c.rate_limit_per_second = 1.0;
        c.rate_limit_burst = 5.0;
    });
    let answered = (0..50)
        .filter(|i| {
            !flood
                .feed(&request(
                    "OPTIONS",
                    "f",
                    &format!("z9hG4bKf{i}"),
                    1,
                    None,
                    "",
                ))
                .is_empty()
        })
        .count();
    assert_eq!(answered, 5);
    // Another source is unaffected.
    flood.pbx = Peer::Udp("127.0.0.2:5070".parse().unwrap());
    assert_eq!(
        codes(&flood.feed(&request("OPTIONS", "g", "z9hG4bKg", 1, None, ""))),
        vec![200]
    );
}

#[test]
fn capacity_503_with_reserve_for_priority_and_shutdown() {
    let mut h = harness_with(|c| {
        c.max_calls = 2;
        c.reserved_for_leaks = 1;
        c.priority_numbers = vec!["4009".into()];
    });
    h.incoming("p1", "z9hG4bKp1");
    let out = h.feed(&request("INVITE", "p2", "z9hG4bKp2", 1, None, OFFER));
    assert_eq!(codes(&out), vec![503]);
    assert_eq!(out[0].header("Retry-After"), Some("30"));
    let leak = request("INVITE", "p3", "z9hG4bKp3", 1, None, OFFER)
        .replace("sip:4008@127.0.0.1:5060", "sip:4009@127.0.0.1:5060");
    assert_eq!(codes(&h.feed(&leak)), vec![100]);
    assert!(matches!(
        h.events().as_slice(),
        [Event::IncomingCall { priority: true, .. }]
    ));
    let mut s = harness();
    s.ep.begin_shutdown();
    assert_eq!(
        codes(&s.feed(&request("INVITE", "s1", "z9hG4bKs1", 1, None, OFFER))),
        vec![503]
    );
}

fn outgoing(h: &mut Harness) -> (CallHandle, Message) {
    let call = h.ep.start_call(
        h.now,
        OutgoingCall {
            target: "sip:8001@127.0.0.1:5070".into(),
            peer: h.pbx,
            from_user: "hotline".into(),
            local_rtp: "127.0.0.1:20002".parse().unwrap(),
        },
    );
    let mut sent = h.sent();
    assert_eq!(sent.len(), 1);
    let invite = sent.remove(0);
    assert_eq!(invite.method(), Some("INVITE"));
    (call, invite)
}

#[test]
fn outgoing_call_answered_acked_and_hung_up() {
    let mut h = harness();
    let (call, invite) = outgoing(&mut h);
    let times: Vec<u64> = h.run_until(1_600).into_iter().map(|(t, _)| t).collect();
    assert_eq!(times, vec![500, 1500], "Timer A");
    let mut ringing = Message::response_to(&invite, 180, "Ringing", Some("agent"));
    ringing.push_header("Contact", "<sip:8001@127.0.0.1:5070>");
    h.ep.handle_message(h.now, h.pbx, &ringing.to_bytes());
    assert_eq!(
        h.events(),
        vec![Event::OutgoingProgress { call, code: 180 }]
    );
    assert!(h.run_until(5_000).is_empty(), "Timer A stops in Proceeding");
    let mut ok = Message::response_to(&invite, 200, "OK", Some("agent"));
    ok.push_header("Contact", "<sip:8001@127.0.0.1:5072>");
    ok.set_body("application/sdp", OFFER.as_bytes().to_vec());
    h.ep.handle_message(h.now, h.pbx, &ok.to_bytes());
    let ack = h.sent();
    assert_eq!(ack[0].method(), Some("ACK"));
    assert_eq!(ack[0].uri(), Some("sip:8001@127.0.0.1:5072"));
    assert_eq!(ack[0].cseq(), Some((1, "ACK")));
    assert!(
        matches!(h.events().as_slice(), [Event::OutgoingAnswered { media, .. }] if media.codec == Codec::Pcma)
    );
    // A retransmitted 2xx is ACKed again.
    h.ep.handle_message(h.now, h.pbx, &ok.to_bytes());
    assert_eq!(h.sent()[0].method(), Some("ACK"));
    h.ep.handle_command(h.now, Command::Hangup { call });
    let bye = h.sent().remove(0);
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.cseq(), Some((2, "BYE")));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::LocalHangup
        }]
    );
    h.ep.handle_message(
        h.now,
        h.pbx,
        &Message::response_to(&bye, 200, "OK", None).to_bytes(),
    );
    h.run_until(60_000);
    assert_eq!(h.ep.counts(), Default::default());
}

#[test]
fn outgoing_call_timer_b_and_error_response() {
    let mut h = harness();
    let (call, _) = outgoing(&mut h);
    h.run_until(32_000);
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::Timeout
        }]
    );
    assert_eq!(h.ep.counts(), Default::default());

    let (call, invite) = outgoing(&mut h);
    let busy = Message::response_to(&invite, 486, "Busy Here", Some("agent"));
    h.ep.handle_message(h.now, h.pbx, &busy.to_bytes());
    assert_eq!(h.sent()[0].method(), Some("ACK"));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::Failed(486)
        }]
    );
}

#[test]
fn cancelling_our_own_invite() {
    let mut h = harness();
    let (call, invite) = outgoing(&mut h);
    h.ep.handle_message(
        h.now,
        h.pbx,
        &Message::response_to(&invite, 180, "Ringing", Some("a")).to_bytes(),
    );
    h.events();
    h.ep.handle_command(h.now, Command::Hangup { call });
    let cancel = h.sent().remove(0);
    assert_eq!(cancel.method(), Some("CANCEL"));
    assert_eq!(
        cancel.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch()
    );
    assert_eq!(cancel.cseq(), Some((1, "CANCEL")));
    h.ep.handle_message(
        h.now,
        h.pbx,
        &Message::response_to(&cancel, 200, "OK", None).to_bytes(),
    );
    h.ep.handle_message(
        h.now,
        h.pbx,
        &Message::response_to(&invite, 487, "Request Terminated", Some("a")).to_bytes(),
    );
    assert_eq!(h.sent()[0].method(), Some("ACK"));
    h.run_until(60_000);
    assert_eq!(h.ep.counts(), Default::default());
}

#[test]
fn a_ringing_outgoing_call_outlives_timer_b_and_timer_c_cancels_it() {
    let mut h = harness();
    let (call, invite) = outgoing(&mut h);
    h.ep.handle_message(
        h.now,
        h.pbx,
        &Message::response_to(&invite, 180, "Ringing", Some("a")).to_bytes(),
    );
    h.events();
    // An on-call mobile rings for more than 64 × T1: the call stays up, nothing is sent.
    assert!(h.run_until(60_000).is_empty());
    assert!(h.events().is_empty(), "no timeout while it rings");
    // Timer C after the 180: the endpoint cancels the INVITE itself (one CANCEL; its own
    // transaction would retransmit it after T1).
    let sent = h.run_until(TIMER_C.as_millis() as u64 + 100);
    let cancels: Vec<&Message> = sent
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.method() == Some("CANCEL"))
        .collect();
    assert_eq!(cancels.len(), 1, "{sent:?}");
    let cancel = cancels[0].clone();
    assert_eq!(
        cancel.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch()
    );
    h.ep.handle_message(
        h.now,
        h.pbx,
        &Message::response_to(&cancel, 200, "OK", None).to_bytes(),
    );
    h.ep.handle_message(
        h.now,
        h.pbx,
        &Message::response_to(&invite, 487, "Request Terminated", Some("a")).to_bytes(),
    );
    assert_eq!(h.sent()[0].method(), Some("ACK"));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::Failed(487)
        }]
    );
    h.run_until(400_000);
    assert_eq!(h.ep.counts(), Default::default());
}

/// Runs one scripted exchange with an endpoint seeded with `seed` and returns every byte it
/// put on the wire, in order: an incoming call rung, answered, ACKed and hung up by the
/// caller, an OPTIONS ping, and an outgoing call answered and hung up by us, with the timers
/// run out in between. Tags, branches, Call-IDs and SDP session ids all come from the seed.
fn scripted_exchange(seed: u64) -> Vec<Vec<u8>> {
    let config = SipConfig::default();
    let t0 = Instant::now();
    let mut h = Harness {
        ep: Endpoint::with_seed(&config, LOCAL.parse().unwrap(), seed).unwrap(),
        t0,
        now: t0,
        pbx: Peer::Udp(PBX.parse().unwrap()),
    };
    let mut wire = Vec::new();
    let drain = |h: &mut Harness, wire: &mut Vec<Vec<u8>>| {
        wire.extend(std::iter::from_fn(|| h.ep.poll_transmit().map(|t| t.data)));
    };
    h.ep.handle_message(
        h.now,
        h.pbx,
        request("INVITE", "d1", "z9hG4bKd1", 1, None, OFFER).as_bytes(),
    );
    let Some(Event::IncomingCall { call, .. }) = h.ep.poll_event() else {
        panic!("no IncomingCall");
    };
    h.ep.handle_command(h.now, Command::Ring { call });
    let local_rtp = "127.0.0.1:20000".parse().unwrap();
    h.ep.handle_command(h.now, Command::Answer { call, local_rtp });
    drain(&mut h, &mut wire);
    let ok = parse(wire.last().unwrap(), Framing::Datagram).unwrap();
    let tag = ok.to_tag().unwrap().to_string();
    h.at(100);
    h.ep.handle_message(
        h.now,
        h.pbx,
        request("ACK", "d1", "z9hG4bKd1a", 1, Some(&tag), "").as_bytes(),
    );
    h.ep.handle_message(
        h.now,
        h.pbx,
        request("OPTIONS", "d2", "z9hG4bKd2", 1, None, "").as_bytes(),
    );
    h.ep.handle_message(
        h.now,
        h.pbx,
        request("BYE", "d1", "z9hG4bKd1b", 2, Some(&tag), "").as_bytes(),
    );
    drain(&mut h, &mut wire);
    let target = "sip:8001@127.0.0.1:5070".to_string();
    let (peer, from_user) = (h.pbx, "hotline".to_string());
    let local_rtp = "127.0.0.1:20002".parse().unwrap();
    let outgoing = OutgoingCall {
        target,
        peer,
        from_user,
        local_rtp,
    };
    let call = h.ep.start_call(h.now, outgoing);
    drain(&mut h, &mut wire);
    let invite = parse(wire.last().unwrap(), Framing::Datagram).unwrap();
    let mut ok = Message::response_to(&invite, 200, "OK", Some("agent"));
    ok.push_header("Contact", "<sip:8001@127.0.0.1:5072>");
    ok.set_body("application/sdp", OFFER.as_bytes().to_vec());
    h.ep.handle_message(h.now, h.pbx, &ok.to_bytes());
    h.ep.handle_command(h.now, Command::Hangup { call });
    drain(&mut h, &mut wire);
    while let Some(at) = h.ep.poll_timeout() {
        h.ep.handle_timeout(at);
        drain(&mut h, &mut wire);
    }
    wire
}

#[test]
fn the_same_seed_gives_the_same_bytes_on_the_wire() {
    let first = scripted_exchange(42);
    assert!(
        first.len() >= 8,
        "the script exercises both sides: {}",
        first.len()
    );
    assert_eq!(first, scripted_exchange(42), "one seed, one conversation");
    assert_ne!(
        first,
        scripted_exchange(43),
        "the tags and branches do come from the seed"
    );
}

#[test]
fn refused_requests_are_summarised_per_source_not_logged_each() {
    let mut h = harness_with(|c| c.allowed_sources = vec!["10.0.0.0/8".into()]);
    for i in 0..4812 {
        let out = h.feed(&request(
            "OPTIONS",
            &format!("r{i}"),
            &format!("z9hG4bKr{i}"),
            1,
            None,
            "",
        ));
        // Answered (403) while the source's rate allows, dropped beyond it.
        assert!(out.is_empty() || codes(&out) == vec![403]);
    }
    // Nothing before the window ends; then one line per source and reason.
    assert!(h.ep.poll_refusal_summaries(h.now).is_empty());
    let window_end = h.ep.poll_timeout().expect("a summary is due");
    let lines: Vec<String> =
        h.ep.poll_refusal_summaries(window_end)
            .iter()
            .map(ToString::to_string)
            .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let total: u64 = lines
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 4812, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("from 127.0.0.1 in the last 10 s: not in sip.allowed_sources")),
        "{lines:?}"
    );
    assert!(h.ep.poll_refusal_summaries(window_end).is_empty());
}

#[test]
fn a_session_interval_below_90_s_gets_422_with_min_se() {
    let mut h = harness();
    for (i, header) in [
        "Session-Expires: 30;refresher=uac",
        "x: 89",
        "Session-Expires: soon",
    ]
    .iter()
    .enumerate()
    {
        let invite = request(
            "INVITE",
            &format!("se{i}"),
            &format!("z9hG4bKse{i}"),
            1,
            None,
            OFFER,
        )
        .replace(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\n{header}\r\n"),
        );
        let out = h.feed(&invite);
        let expected = if header.ends_with("soon") { 400 } else { 422 };
        assert_eq!(codes(&out), vec![expected], "{header}");
        if expected == 422 {
            assert_eq!(out[0].header("Min-SE"), Some("90"), "{header}");
        }
        assert!(h.ep.poll_event().is_none(), "no call for {header}");
    }
    // 90 s and more: the call goes on.
    let invite = request("INVITE", "se-ok", "z9hG4bKseok", 1, None, OFFER).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSession-Expires: 1800;refresher=uac\r\nMin-SE: 90\r\n",
    );
    assert_eq!(codes(&h.feed(&invite)), vec![100]);
    assert!(matches!(
        h.ep.poll_event(),
        Some(Event::IncomingCall { .. })
    ));
}
