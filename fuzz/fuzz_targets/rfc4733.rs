//! Fuzzes RFC 4733 telephone-event handling: any sequence of event payloads, SSRCs and
//! timestamps must give digits without a panic, and each reported digit is a DTMF key.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/media/dtmf.rs"]
mod dtmf;

use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let mut detector = dtmf::DtmfDetector::default();
    // Packets of 8 bytes: SSRC selector, timestamp step, then the 4-byte event payload
    // (a short last chunk is a truncated payload).
    let mut timestamp = 0u32;
    for (n, chunk) in data.chunks(8).enumerate() {
        let ssrc = u32::from(chunk[0] & 3);
        timestamp = timestamp.wrapping_add(u32::from(*chunk.get(1).unwrap_or(&0)) * 40);
        let payload = chunk.get(2..).unwrap_or(&[]);
        let at = Duration::from_millis(20 * n as u64);
        if let Some(digit) = detector.on_event_packet(ssrc, timestamp, payload, at) {
            assert!(
                "0123456789*#ABCD".contains(digit.digit),
                "not a DTMF key: {:?}",
                digit.digit
            );
        }
    }
});
