//! Audio for the real-peer tests: 8 kHz mono 16-bit WAV in and out, raw µ-law for sipp's
//! `rtp_stream`, DTMF keys pressed in-band, and a prompt detector that finds a prompt inside
//! a recording by normalised cross-correlation, one second of prompt at a time.
//! Included with `#[path]`; it only reads and writes files the test gives it.

use hotline::media::dtmf::synthesize_digit;
use hotline::media::g711::G711Codec;
use std::path::Path;
use std::time::Duration;

pub const RATE: usize = 8000;
/// The prompt is matched in pieces this long, so a slip of a few samples between pieces
/// (jitter buffer, packet loss) costs only the piece it falls in.
const PIECE: usize = RATE;
/// How far from where the first piece puts it a later piece may be found (25 ms).
const PIECE_SLACK: usize = RATE / 40;
/// A piece quieter than this (mean square, about -70 dBFS) is a pause and is not matched.
const QUIET_MEAN_SQUARE: f64 = 100.0;

pub fn read_wav(path: &Path) -> Vec<i16> {
    let reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{}: not a readable WAV: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (RATE as u32, 1, 16),
        "{}: expected 8 kHz mono 16-bit",
        path.display()
    );
    reader.into_samples::<i16>().map(Result::unwrap).collect()
}

pub fn write_wav(path: &Path, pcm: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for &sample in pcm {
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
}

/// Raw µ-law bytes, the form sipp's `rtp_stream` sends as PT 0.
pub fn pcmu(pcm: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pcm.len());
    G711Codec::Pcmu.encode_into(pcm, &mut out);
    out
}

/// A steady sine, the caller's "voice": one tone never looks like a DTMF pair.
pub fn tone(hz: f64, amplitude: f64, length: Duration) -> Vec<i16> {
    let samples = (length.as_secs_f64() * RATE as f64) as usize;
    (0..samples)
        .map(|n| {
            let t = n as f64 / RATE as f64;
            (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()).round() as i16
        })
        .collect()
}

/// Silence for `lead`, then `keys` as DTMF tones (100 ms on, 150 ms off, each tone at
/// -16 dBFS), then silence up to `length`.
pub fn inband_keys(keys: &str, lead: Duration, length: Duration) -> Vec<i16> {
    let mut pcm = vec![0; (lead.as_secs_f64() * RATE as f64) as usize];
    for key in keys.chars() {
        let pressed = synthesize_digit(key, 5000.0, 100, 150);
        assert!(!pressed.is_empty(), "{key:?} is not a DTMF key");
        pcm.extend(pressed);
    }
    let total = (length.as_secs_f64() * RATE as f64) as usize;
    pcm.resize(total.max(pcm.len()), 0);
    pcm
}

/// Level of `pcm` in dB below full scale (-inf for digital silence).
pub fn level_dbfs(pcm: &[i16]) -> f64 {
    10.0 * (mean_square(pcm) / (32768.0 * 32768.0)).log10()
}

fn mean_square(pcm: &[i16]) -> f64 {
    let sum: i64 = pcm.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
    sum as f64 / pcm.len().max(1) as f64
}

/// Where and how well a prompt was heard inside a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    /// Where the prompt starts in the recording.
    pub offset: Duration,
    /// Mean normalised correlation of the prompt's spoken pieces (1.0 = sample-exact copy).
    pub score: f64,
    /// How much of the prompt was found (spoken pieces scoring at least 0.8, one second
    /// each, plus the pauses between them).
    pub matched: Duration,
}

/// Finds `prompt` in `recording`: the first spoken second is searched for everywhere, the
/// others near where it puts them. `score` is 0.0 when nothing resembles the prompt.
pub fn find_prompt(recording: &[i16], prompt: &[i16]) -> Heard {
    let pieces: Vec<(usize, &[i16])> = prompt
        .chunks_exact(PIECE)
        .enumerate()
        .map(|(i, piece)| (i * PIECE, piece))
        .collect();
    let energy = prefix_energy(recording);
    let coarse_recording = eighth_rate(recording);
    let mut start: Option<usize> = None;
    let (mut scores, mut matched) = (Vec::new(), 0);
    for (at, piece) in pieces {
        if mean_square(piece) < QUIET_MEAN_SQUARE {
            matched += PIECE;
            continue;
        }
        let score = match start {
            None => {
                // Search everywhere at an eighth of the rate (averaging eight samples keeps
                // the voice's strong low band), then refine around the hit at full rate.
                let (coarse, _) = best_match(
                    &coarse_recording,
                    &prefix_energy(&coarse_recording),
                    &eighth_rate(piece),
                    0..coarse_recording.len(),
                );
                let near = (coarse * 8).saturating_sub(16)..coarse * 8 + 17;
                let (offset, score) = best_match(recording, &energy, piece, near);
                start = Some(offset.saturating_sub(at));
                score
            }
            Some(start) => {
                let expected = start + at;
                let near = expected.saturating_sub(PIECE_SLACK)..expected + PIECE_SLACK + 1;
                best_match(recording, &energy, piece, near).1
            }
        };
        if score >= 0.8 {
            matched += PIECE;
        }
        scores.push(score);
    }
    let score = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
    Heard {
        offset: samples(start.unwrap_or(0)),
        score,
        matched: samples(matched.min(prompt.len())),
    }
}

fn eighth_rate(pcm: &[i16]) -> Vec<i16> {
    pcm.chunks_exact(8)
        .map(|eight| (eight.iter().map(|&s| i32::from(s)).sum::<i32>() / 8) as i16)
        .collect()
}

fn samples(count: usize) -> Duration {
    Duration::from_secs_f64(count as f64 / RATE as f64)
}

/// `energy[i]` = sum of squares of `pcm[..i]`, so any window's energy is one subtraction.
fn prefix_energy(pcm: &[i16]) -> Vec<i64> {
    let mut energy = Vec::with_capacity(pcm.len() + 1);
    energy.push(0);
    let mut sum = 0i64;
    for &s in pcm {
        sum += i64::from(s) * i64::from(s);
        energy.push(sum);
    }
    energy
}

/// The offset in `offsets` where `needle` correlates best with
/// `haystack`, and that normalised correlation (0.0 when nothing fits).
fn best_match(
    haystack: &[i16],
    energy: &[i64],
    needle: &[i16],
    offsets: std::ops::Range<usize>,
) -> (usize, f64) {
    let needle_energy = mean_square(needle) * needle.len() as f64;
    let mut best = (offsets.start, 0.0);
    // A recording shorter than the piece holds no match (and no window to index).
    let Some(last) = haystack.len().checked_sub(needle.len()) else {
        return best;
    };
    for offset in offsets.take_while(|&o| o <= last) {
        let window_energy = (energy[offset + needle.len()] - energy[offset]) as f64;
        if window_energy == 0.0 {
            continue;
        }
        let window = &haystack[offset..offset + needle.len()];
        let mut dot = 0i64;
        for (&a, &b) in needle.iter().zip(window) {
            dot += i64::from(i32::from(a) * i32::from(b));
        }
        if dot > 0 {
            let score = dot as f64 / (needle_energy * window_energy).sqrt();
            if score > best.1 {
                best = (offset, score);
            }
        }
    }
    best
}

/// How well `short` (a prompt under one second, such as a digit) matches `recording` near
/// `around`, within `slack` either way: the best normalised correlation, 0.0 when nothing fits.
#[allow(dead_code)] // Each test binary includes this file; not every one uses every helper.
pub fn short_match(recording: &[i16], short: &[i16], around: usize, slack: usize) -> f64 {
    let energy = prefix_energy(recording);
    best_match(
        recording,
        &energy,
        short,
        around.saturating_sub(slack)..around + slack + 1,
    )
    .1
}
