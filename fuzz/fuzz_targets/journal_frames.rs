//! Fuzzes the call journal spool's frame reader: any bytes (a damaged spool) must decode
//! without a panic; good frames lie within the intact prefix in order, the skipped bytes add
//! up, and the payloads found survive re-encoding and a second read unchanged.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/store/frames.rs"]
mod frames;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = frames::decode_frames(data, |raw| (raw.payload.to_vec(), raw.end, raw.skipped_before));
    assert!(decoded.intact <= data.len());
    let mut previous_end = 0;
    let mut skipped = 0;
    for (payload, end, skipped_before) in &decoded.frames {
        assert!(*end > previous_end && *end <= decoded.intact);
        assert!(payload.len() <= frames::MAX_PAYLOAD);
        skipped += skipped_before;
        previous_end = *end;
    }
    assert_eq!(skipped, decoded.skipped_bytes);
    let mut again = Vec::new();
    for (payload, _, _) in &decoded.frames {
        frames::encode_frame(payload, &mut again);
    }
    let reread = frames::decode_frames(&again, |raw| raw.payload.to_vec());
    assert_eq!(reread.skipped_bytes, 0);
    assert_eq!(reread.intact, again.len());
    let payloads: Vec<&Vec<u8>> = decoded.frames.iter().map(|(p, _, _)| p).collect();
    assert_eq!(reread.frames.iter().collect::<Vec<_>>(), payloads);
});
