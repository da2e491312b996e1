//! Malformed and hostile input: every case is answered 400 (505 for a foreign SIP version)
//! or dropped, nothing panics, and a good request is still served afterwards.

use hotline::sip::config::SipConfig;
use hotline::sip::endpoint::Endpoint;
use hotline::sip::message::{Framing, ParseError, parse};
use hotline::sip::sdp;
use hotline::sip::transaction::Peer;
use std::time::Instant;

const GOOD: &str = "OPTIONS sip:4008@127.0.0.1 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKgood\r\n\
    From: <sip:pbx@127.0.0.1>;tag=g\r\n\
    To: <sip:4008@127.0.0.1>\r\n\
    Call-ID: good\r\n\
    CSeq: 1 OPTIONS\r\n\
    Max-Forwards: 70\r\n\
    Content-Length: 0\r\n\r\n";

/// Pseudo-random bytes without a dependency (xorshift), reproducible.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn corpus() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let huge_header = GOOD.replace("Call-ID: good", &format!("Call-ID: {}", "x".repeat(20_000)));
    let many_headers = GOOD.replace("Content-Length: 0", &"X-A: 1\r\n".repeat(150)) + "";
    vec![
        (
            "truncated start line",
            b"OPTIONS sip:4008@127.0".to_vec(),
            Expect::Dropped,
        ),
        (
            "truncated head",
            GOOD.as_bytes()[..90].to_vec(),
            Expect::Dropped,
        ),
        (
            "body shorter than Content-Length",
            GOOD.replace("Content-Length: 0", "Content-Length: 50")
                .into_bytes(),
            Expect::BadRequest("Content-Length"),
        ),
        (
            "Content-Length not a number",
            GOOD.replace("Content-Length: 0", "Content-Length: abc")
                .into_bytes(),
            Expect::BadRequest("Content-Length"),
        ),
        (
            "negative Content-Length",
            GOOD.replace("Content-Length: 0", "Content-Length: -5")
                .into_bytes(),
            Expect::BadRequest("Content-Length"),
        ),
        ("huge header", huge_header.into_bytes(), Expect::Dropped),
        (
            "too many headers",
            many_headers.into_bytes(),
            Expect::Dropped,
        ),
        (
            "missing Via",
            GOOD.replace("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKgood\r\n", "")
                .into_bytes(),
            Expect::BadRequest("Via"),
        ),
        (
            "missing From",
            GOOD.replace("From: <sip:pbx@127.0.0.1>;tag=g\r\n", "")
                .into_bytes(),
            Expect::BadRequest("From"),
        ),
        (
            "missing To",
            GOOD.replace("To: <sip:4008@127.0.0.1>\r\n", "")
                .into_bytes(),
            Expect::BadRequest("To"),
        ),
        (
            "missing Call-ID",
            GOOD.replace("Call-ID: good\r\n", "").into_bytes(),
            Expect::BadRequest("Call-ID"),
        ),
        (
            "missing CSeq",
            GOOD.replace("CSeq: 1 OPTIONS\r\n", "").into_bytes(),
            Expect::BadRequest("CSeq"),
        ),
        (
            "CSeq not a number",
            GOOD.replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")
                .into_bytes(),
            Expect::BadRequest("CSeq"),
        ),
        (
            "CSeq method mismatch",
            GOOD.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")
                .into_bytes(),
            Expect::BadRequest("CSeq"),
        ),
        (
            "bad Via",
            GOOD.replace("SIP/2.0/UDP 127.0.0.1:5070", "garbage")
                .into_bytes(),
            Expect::BadRequest("Via"),
        ),
        (
            "bad Max-Forwards",
            GOOD.replace("Max-Forwards: 70", "Max-Forwards: lots")
                .into_bytes(),
            Expect::BadRequest("Max-Forwards"),
        ),
        (
            "INVITE without Contact",
            GOOD.replace("OPTIONS", "INVITE").into_bytes(),
            Expect::BadRequest("Contact"),
        ),
        (
            "SIP/3.0 request",
            GOOD.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1).into_bytes(),
            Expect::VersionNotSupported,
        ),
        (
            "SIP/3.0 request without Call-ID",
            GOOD.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1)
                .replace("Call-ID: good\r\n", "")
                .into_bytes(),
            Expect::Dropped,
        ),
        ("empty", Vec::new(), Expect::Dropped),
        ("only CRLF", b"\r\n\r\n".to_vec(), Expect::Dropped),
        ("binary noise", noise(7, 1500), Expect::Dropped),
        ("NUL bytes", vec![0u8; 300], Expect::Dropped),
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Expect::Dropped,
        ),
        (
            "header without colon",
            GOOD.replace("Call-ID: good", "Call-ID good").into_bytes(),
            Expect::Dropped,
        ),
        (
            "invalid UTF-8 in head",
            GOOD.replace("tag=g", "tag=\u{0}")
                .into_bytes()
                .into_iter()
                .map(|b| if b == 0 { 0xff } else { b })
                .collect(),
            Expect::Dropped,
        ),
        (
            "response without Via",
            b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n".to_vec(),
            Expect::Dropped,
        ),
        ("oversized datagram", vec![b'A'; 70_000], Expect::Dropped),
    ]
}

#[derive(Debug)]
enum Expect {
    Dropped,
    BadRequest(&'static str),
    VersionNotSupported,
}

#[test]
fn corpus_is_answered_400_or_dropped_never_panics() {
    for (name, bytes, expect) in corpus() {
        let result = parse(&bytes, Framing::Datagram);
        match (&expect, &result) {
            (Expect::Dropped, Err(ParseError::Drop(_))) => {}
            (Expect::BadRequest(header), Err(ParseError::Reject { response, reason })) => {
                assert_eq!(response.code(), Some(400), "{name}");
                assert!(
                    reason.contains(header),
                    "{name}: reason `{reason}` should name {header}"
                );
            }
            (Expect::VersionNotSupported, Err(ParseError::Reject { response, .. })) => {
                assert_eq!(response.code(), Some(505), "{name}");
            }
            _ => panic!("{name}: expected {expect:?}, got {result:?}"),
        }
    }
}

#[test]
fn endpoint_survives_the_corpus_and_then_serves_a_good_request() {
    let config = SipConfig::default();
    let mut ep = Endpoint::with_seed(&config, "127.0.0.1:5060".parse().unwrap(), 8).unwrap();
    let peer = Peer::Udp("127.0.0.1:5070".parse().unwrap());
    let now = Instant::now();
    for (name, bytes, expect) in corpus() {
        ep.handle_message(now, peer, &bytes);
        let answers: Vec<_> = std::iter::from_fn(|| ep.poll_transmit()).collect();
        match expect {
            Expect::Dropped => assert!(answers.is_empty(), "{name}"),
            Expect::BadRequest(_) => {
                assert_eq!(answers.len(), 1, "{name}");
                assert!(answers[0].data.starts_with(b"SIP/2.0 400 "), "{name}");
            }
            Expect::VersionNotSupported => {
                assert_eq!(answers.len(), 1, "{name}");
                assert!(
                    answers[0]
                        .data
                        .starts_with(b"SIP/2.0 505 Version Not Supported\r\n"),
                    "{name}"
                );
            }
        }
        assert!(ep.poll_event().is_none(), "{name}");
    }
    // Noise of many lengths and seeds, fed as datagrams and as stream messages.
    for seed in 1..300u64 {
        let data = noise(seed, (seed as usize * 37) % 2000);
        ep.handle_message(now, peer, &data);
        let mut spliced = GOOD.as_bytes().to_vec();
        let at = (seed as usize) % spliced.len();
        spliced.splice(at..at, noise(seed, 8));
        ep.handle_message(
            now,
            Peer::Tcp {
                addr: peer.addr(),
                conn: Some(1),
            },
            &spliced,
        );
    }
    while ep.poll_transmit().is_some() {}
    ep.handle_message(now, peer, GOOD.as_bytes());
    let reply = ep.poll_transmit().expect("the good request is answered");
    assert!(reply.data.starts_with(b"SIP/2.0 200 OK"));
    assert_eq!(ep.counts().calls, 0);
}

#[test]
fn compact_and_folded_headers_are_accepted() {
    let compact = "OPTIONS sip:4008@127.0.0.1 SIP/2.0\n\
        v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc\n\
        f: <sip:pbx@127.0.0.1>\n ;tag=folded\n\
        t :<sip:4008@127.0.0.1>\n\
        i: compact\n\
        CSeq: 1 OPTIONS\n\
        Max-Forwards: 70\n\
        k: timer\n\
        l: 0\n\n";
    let m = parse(compact.as_bytes(), Framing::Datagram).unwrap();
    assert_eq!(m.call_id(), "compact");
    assert_eq!(m.from_tag(), Some("folded"));
    assert_eq!(m.header("Supported"), Some("timer"));
    assert!(m.header("To").is_some());
}

#[test]
fn sdp_parser_survives_noise() {
    for seed in 1..500u64 {
        let pure_noise = noise(seed, (seed as usize * 13) % 600);
        assert!(sdp::parse(&pure_noise).is_err(), "seed {seed}");
        let mut text = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n".to_vec();
        let at = (seed as usize) % text.len();
        text.splice(at..at, noise(seed, 4));
        if let Ok(s) = sdp::parse(&text) {
            let _ = s.negotiate();
        }
    }
    let intact = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert!(sdp::parse(intact).unwrap().negotiate().is_ok());
}
