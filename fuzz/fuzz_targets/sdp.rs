//! Fuzzes the SDP parser and offer/answer negotiation: never a panic, and an answer we
//! write for a negotiated offer must parse and negotiate again.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/sip/sdp.rs"]
mod sdp;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = sdp::parse(data)
        && let Ok(media) = offer.negotiate()
    {
        let local = std::net::SocketAddr::from(([127, 0, 0, 1], 20000));
        let answer = sdp::write(local, 1, 1, Some(&media));
        let back = sdp::parse(&answer).and_then(|s| s.negotiate());
        assert!(back.is_ok(), "our answer must parse: {back:?}");
    }
});
