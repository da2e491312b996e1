//! Measures the SIP core's per-message CPU: parsing one INVITE with SDP, and the whole
//! receive path (parse, transaction match, answer, `poll_timeout`, drain) for a retransmitted
//! OPTIONS while the endpoint holds few or many live transactions — the case where a scan
//! over every transaction per message would show. No I/O. Run with
//! `cargo bench --bench sip_message`.

use hotline::sip::config::SipConfig;
use hotline::sip::endpoint::Endpoint;
use hotline::sip::message::{Framing, parse};
use hotline::sip::transaction::Peer;
use std::hint::black_box;
use std::time::Instant;

const ITERATIONS: u32 = 100_000;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
    m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// An INVITE as a PBX sends it, with an SDP offer.
fn invite() -> String {
    format!(
        "INVITE sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbench1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:13812341234@127.0.0.1>;tag=caller1\r\n\
         To: <sip:4008@127.0.0.1>\r\n\
         Call-ID: bench-call@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@127.0.0.1:5070>\r\n\
         Record-Route: <sip:127.0.0.5;lr>\r\n\
         User-Agent: bench\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn options(branch: u32) -> String {
    format!(
        "OPTIONS sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@127.0.0.1>;tag=p{branch}\r\n\
         To: <sip:4008@127.0.0.1>\r\n\
         Call-ID: ping{branch}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, and
/// then only the correctness checks run, not the timing loops.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// An endpoint holding `live` answered OPTIONS transactions (each lingering in Timer J).
fn endpoint_with(live: u32, now: Instant, pbx: Peer) -> Endpoint {
    let config = SipConfig {
        rate_limit_per_second: 1e9,
        rate_limit_burst: 1e9,
        ..SipConfig::default()
    };
    let local = "127.0.0.1:5060".parse().expect("an address");
    let mut ep = Endpoint::with_seed(&config, local, 1).expect("a valid config");
    for branch in 0..live {
        ep.handle_message(now, pbx, options(branch).as_bytes());
        while ep.poll_transmit().is_some() {}
    }
    ep
}

/// Time per retransmitted OPTIONS (absorbed by its transaction, answered again), as the
/// transport drives it: handle, ask for the next timeout, drain what to send.
fn retransmission_ns(live: u32) -> Result<u128, String> {
    let now = Instant::now();
    let pbx = Peer::Udp("127.0.0.1:5070".parse().expect("an address"));
    let mut ep = endpoint_with(live, now, pbx);
    if ep.counts().server_transactions != live as usize {
        return Err(format!("expected {live} transactions: {:?}", ep.counts()));
    }
    let again = options(0);
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        ep.handle_message(now, pbx, again.as_bytes());
        black_box(ep.poll_timeout());
        while let Some(t) = ep.poll_transmit() {
            black_box(t);
        }
    }
    Ok(start.elapsed().as_nanos() / u128::from(ITERATIONS))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Check once that the inputs are what they claim to be.
    let raw_invite = invite();
    let parsed = parse(raw_invite.as_bytes(), Framing::Datagram).map_err(|e| format!("{e:?}"))?;
    if parsed.cseq() != Some((1, "INVITE")) || parsed.body != SDP.as_bytes() {
        return Err("the bench INVITE does not parse as one".into());
    }
    let now = Instant::now();
    let pbx = Peer::Udp("127.0.0.1:5070".parse()?);
    let mut ep = endpoint_with(3, now, pbx);
    ep.handle_message(now, pbx, options(0).as_bytes());
    if ep.poll_transmit().is_none() {
        return Err("a retransmitted OPTIONS got no answer".into());
    }
    if !measuring() {
        println!("sip_message: inputs parse and are answered (run `cargo bench` to time them)");
        return Ok(());
    }

    let start = Instant::now();
    for _ in 0..ITERATIONS {
        black_box(parse(black_box(raw_invite.as_bytes()), Framing::Datagram).ok());
    }
    let parse_ns = start.elapsed().as_nanos() / u128::from(ITERATIONS);
    println!("sip_message: parse INVITE with SDP                  {parse_ns:>7} ns/msg");
    for live in [10, 1_000, 10_000] {
        let ns = retransmission_ns(live)?;
        println!("sip_message: receive path, {live:>6} live transactions {ns:>7} ns/msg");
    }
    Ok(())
}
