//! Fuzzes the SIP header splitter, parser and stream framer: any input must give a message, a
//! 400 or a drop — never a panic — and what parses must round-trip through `to_bytes`.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/sip/message/mod.rs"]
mod message;

use libfuzzer_sys::fuzz_target;
use message::{Framing, MAX_MESSAGE_BYTES, ParseError, StreamFrame, frame_stream, parse};

fuzz_target!(|data: &[u8]| {
    for framing in [Framing::Datagram, Framing::Stream] {
        match parse(data, framing) {
            Ok(m) => {
                let again = parse(&m.to_bytes(), Framing::Stream);
                assert!(again.is_ok(), "our own serialisation must parse: {again:?}");
            }
            Err(ParseError::Reject { response, .. }) => {
                assert_eq!(response.code(), Some(400));
            }
            Err(ParseError::Drop(_)) => {}
        }
    }
    if let StreamFrame::Complete(len) = frame_stream(data, MAX_MESSAGE_BYTES) {
        assert!(len <= data.len());
    }
});
