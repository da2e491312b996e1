//! The call journal spool's frame format, sans-IO: `marker, len: u32 LE, crc32c: u32 LE,
//! payload`, and a reader that re-synchronises past damage.
//!
//! A flipped byte or a stray write costs only the frames it hits: the reader skips to the
//! next marker whose frame checks out (length within bounds and what is there, checksum
//! right), and says how many bytes it skipped and where. Frames written before the marker
//! existed (`len, crc, payload`) are still read. What follows the last good frame is a torn
//! or damaged tail, left to the caller.
//!
//! Owns the byte layout only; must not interpret payloads or touch files. Depends on `crc`
//! alone, so the fuzz target includes this file by path.

use std::ops::Range;

/// Starts every frame. 0xFF never occurs in UTF-8, so it cannot appear inside a JSON payload;
/// a re-synchronising reader also checks the frame's checksum after it.
pub const FRAME_MARKER: [u8; 4] = [0xFF, b'H', b'J', 0xFF];
/// Bytes of a frame header: marker, length and checksum.
pub const HEADER: usize = 12;
/// Bytes of a frame header written before the marker existed: length and checksum.
const LEGACY_HEADER: usize = 8;
/// Larger frames are damage, not records (a record is a few hundred bytes).
pub const MAX_PAYLOAD: usize = 1 << 20;
pub const CHECKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Appends one frame holding `payload` (at most [`MAX_PAYLOAD`] bytes) to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&FRAME_MARKER);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&CHECKSUM.checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A good frame as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    pub payload: &'a [u8],
    /// Where the frame ends (offset in the bytes read).
    pub end: usize,
    /// Damaged bytes skipped right before this frame.
    pub skipped_before: usize,
}

/// What [`decode_frames`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    pub frames: Vec<T>,
    /// Where the last good frame ends; what follows it is a torn or damaged tail.
    pub intact: usize,
    /// Damaged bytes skipped between good frames, and in how many places.
    pub skipped_bytes: usize,
    pub damaged_regions: usize,
}

/// Reads the frames of `bytes`, handing each good one to `frame`. Where a frame is damaged
/// it skips to the next marker that starts a good frame.
pub fn decode_frames<'a, T>(
    bytes: &'a [u8],
    mut frame: impl FnMut(RawFrame<'a>) -> T,
) -> Decoded<T> {
    let mut decoded = Decoded {
        frames: Vec::new(),
        intact: 0,
        skipped_bytes: 0,
        damaged_regions: 0,
    };
    let mut at = 0;
    let mut damage_from = None;
    while at < bytes.len() {
        let Some((payload, end)) = frame_at(bytes, at) else {
            damage_from.get_or_insert(at);
            at = next_marker(bytes, at + 1);
            continue;
        };
        let skipped_before = damage_from.take().map_or(0, |from| at - from);
        if skipped_before > 0 {
            decoded.skipped_bytes += skipped_before;
            decoded.damaged_regions += 1;
        }
        decoded.frames.push(frame(RawFrame {
            payload: &bytes[payload],
            end,
            skipped_before,
        }));
        decoded.intact = end;
        at = end;
    }
    decoded
}

/// Where the payload of the good frame starting at `at` is, and where the frame ends.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Range<usize>, usize)> {
    let rest = &bytes[at..];
    let (header, marked) = if rest.starts_with(&FRAME_MARKER) {
        (HEADER, true)
    } else {
        (LEGACY_HEADER, false)
    };
    let fields = rest.get(header - LEGACY_HEADER..header)?;
    let len = u32::from_le_bytes([fields[0], fields[1], fields[2], fields[3]]) as usize;
    let crc = u32::from_le_bytes([fields[4], fields[5], fields[6], fields[7]]);
    // A legacy frame is never empty; without this, a run of zero bytes would read as frames.
    if len > MAX_PAYLOAD || (!marked && len == 0) {
        return None;
    }
    let end = header.checked_add(len)?;
    let payload = rest.get(header..end)?;
    (CHECKSUM.checksum(payload) == crc).then_some((at + header..at + end, at + end))
}

/// The offset of the next frame marker at or after `from`, or the end of `bytes`.
fn next_marker(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| {
            rest.windows(FRAME_MARKER.len())
                .position(|w| w == FRAME_MARKER)
        })
        .map_or(bytes.len(), |offset| from + offset)
}
