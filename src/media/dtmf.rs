//! DTMF detection, sans-IO: RFC 4733 telephone-events and in-band tones (Goertzel) in
//! decoded 8 kHz PCM, merged into one stream of [`DtmfDigit`]s.
//!
//! RFC 4733: an event is identified by (SSRC, RTP timestamp) — every packet of one key press
//! carries the timestamp of its start, including the three retransmitted end packets — so a
//! digit is reported once, on the first packet seen of a new key, even if its start packets
//! were lost. Pressing the same digit again starts a new timestamp and counts again.
//!
//! In-band: 160-sample (20 ms) Goertzel blocks over the 8 DTMF frequencies. A block holds a
//! digit when one row and one column tone dominate their groups (6 dB over the runner-up),
//! the twist between them is within 8 dB, the pair carries most of the block's energy (which
//! rejects speech, music and single tones such as 1 kHz) and the level is above -45 dBFS.
//! A digit is reported after 2 consecutive blocks (40 ms) agree, and a new digit needs
//! 2 blocks (40 ms) without that digit first.
//!
//! Double digits: once a telephone-event packet has been seen in a call, the peer sends
//! RFC 4733, and PBXs that do usually also leave the tone in the audio; from then on in-band
//! detections are suppressed.
//!
//! Owns digit recognition; must not touch sockets or decide what a digit means.

use std::time::Duration;

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    Rfc4733,
    Inband,
    /// SIP INFO (reported by the SIP layer; listed so one type serves the IVR).
    SipInfo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// `0-9`, `*`, `#`, `A-D`.
    pub digit: char,
    /// Media time since the session started when the digit was recognised.
    pub at: Duration,
    pub source: DtmfSource,
}

const EVENT_DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The digit for an RFC 4733 event code (0-15); other events (flash, tones) are not digits.
pub fn event_digit(event: u8) -> Option<char> {
    EVENT_DIGITS.get(usize::from(event)).copied()
}

/// How many recent events are remembered to recognise retransmissions.
const REMEMBERED_EVENTS: usize = 16;

#[derive(Debug, Default)]
pub struct Rfc4733Detector {
    recent: std::collections::VecDeque<(u32, u32)>,
}

impl Rfc4733Detector {
    /// Feeds one telephone-event payload (SSRC, RTP timestamp, payload bytes).
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
        at: Duration,
    ) -> Option<DtmfDigit> {
        // Event (8 bits), E/R/volume (8), duration (16): anything shorter is malformed.
        if payload.len() < 4 {
            return None;
        }
        let digit = event_digit(payload[0])?;
        let key = (ssrc, timestamp);
        if self.recent.contains(&key) {
            return None;
        }
        if self.recent.len() == REMEMBERED_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(key);
        Some(DtmfDigit {
            digit,
            at,
            source: DtmfSource::Rfc4733,
        })
    }
}

pub const ROW_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
pub const COLUMN_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// The row and column frequencies of a keypad digit.
pub fn digit_frequencies(digit: char) -> Option<(f64, f64)> {
    KEYPAD.iter().enumerate().find_map(|(row, keys)| {
        keys.iter()
            .position(|&k| k == digit)
            .map(|column| (ROW_HZ[row], COLUMN_HZ[column]))
    })
}

pub const BLOCK_SAMPLES: usize = 160;
const SAMPLE_RATE: f64 = 8000.0;
/// Dominant tone over the runner-up in its group (6 dB in power).
const GROUP_DOMINANCE: f64 = 4.0;
/// Allowed twist between row and column power (8 dB either way).
const MAX_TWIST: f64 = 6.3;
/// Share of block energy the two tones must carry.
const MIN_PAIR_SHARE: f64 = 0.6;
/// Minimum mean-square level of the block: about -45 dBFS.
const MIN_MEAN_SQUARE: f64 = 32768.0 * 32768.0 * 3.2e-5;
const BLOCKS_TO_ACCEPT: u32 = 2;
const BLOCKS_TO_RELEASE: u32 = 2;

/// The Goertzel coefficients `2 cos(2π f / fs)` of the four row then the four column
/// frequencies, computed once.
static COEFFICIENTS: std::sync::LazyLock<[f64; 8]> = std::sync::LazyLock::new(|| {
    let mut frequencies = [0.0; 8];
    frequencies[..4].copy_from_slice(&ROW_HZ);
    frequencies[4..].copy_from_slice(&COLUMN_HZ);
    frequencies.map(|frequency| 2.0 * (2.0 * std::f64::consts::PI * frequency / SAMPLE_RATE).cos())
});

/// Goertzel power at each of the eight frequencies in `block`, normalised so that a
/// full-block sine of amplitude A yields about A²/2 (the sine's mean-square). The eight
/// filters run side by side over one pass of the samples; each one's arithmetic is the
/// textbook recurrence.
fn goertzel_powers(block: &[f64]) -> [f64; 8] {
    let coefficients = &*COEFFICIENTS;
    let (mut s1, mut s2) = ([0.0f64; 8], [0.0f64; 8]);
    for &x in block {
        for k in 0..8 {
            let s0 = x + coefficients[k] * s1[k] - s2[k];
            s2[k] = s1[k];
            s1[k] = s0;
        }
    }
    let n = block.len() as f64;
    std::array::from_fn(|k| {
        let power = s1[k] * s1[k] + s2[k] * s2[k] - coefficients[k] * s1[k] * s2[k];
        2.0 * power / (n * n)
    })
}

/// Which digit, if any, one block holds.
fn classify_block(block: &[f64]) -> Option<char> {
    let mean_square = block.iter().map(|x| x * x).sum::<f64>() / block.len() as f64;
    if mean_square < MIN_MEAN_SQUARE {
        return None;
    }
    let powers = goertzel_powers(block);
    let strongest = |powers: &[f64]| {
        let (best, &best_power) = powers
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        let runner_up = powers
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != best)
            .map(|(_, &p)| p)
            .fold(0.0, f64::max);
        (best_power > runner_up * GROUP_DOMINANCE).then_some((best, best_power))
    };
    let (row, row_power) = strongest(&powers[..4])?;
    let (column, column_power) = strongest(&powers[4..])?;
    let twist = row_power / column_power.max(f64::MIN_POSITIVE);
    if !(1.0 / MAX_TWIST..=MAX_TWIST).contains(&twist) {
        return None;
    }
    if row_power + column_power < MIN_PAIR_SHARE * mean_square {
        return None;
    }
    Some(KEYPAD[row][column])
}

#[derive(Debug, Default)]
pub struct InbandDetector {
    /// Samples of the block being filled; keeps its capacity from block to block.
    pending: Vec<f64>,
    candidate: Option<char>,
    candidate_blocks: u32,
    /// The digit reported and still sounding; cleared after `BLOCKS_TO_RELEASE` other blocks.
    reported: Option<char>,
    release_blocks: u32,
}

impl InbandDetector {
    /// Feeds decoded 8 kHz PCM. `start` is the media time of `pcm[0]`.
    pub fn on_audio(&mut self, pcm: &[i16], start: Duration) -> Vec<DtmfDigit> {
        let mut digits = Vec::new();
        let mut consumed = 0usize;
        for chunk in pcm.chunks(BLOCK_SAMPLES) {
            let take = (BLOCK_SAMPLES - self.pending.len()).min(chunk.len());
            self.pending
                .extend(chunk[..take].iter().map(|&sample| f64::from(sample)));
            consumed += take;
            if self.pending.len() == BLOCK_SAMPLES {
                let found = classify_block(&self.pending);
                self.pending.clear();
                if let Some(digit) = self.on_block(found) {
                    let at = start + Duration::from_micros(consumed as u64 * 125);
                    digits.push(DtmfDigit {
                        digit,
                        at,
                        source: DtmfSource::Inband,
                    });
                }
            }
            // What did not fit this block starts the next one.
            let rest = &chunk[take..];
            self.pending
                .extend(rest.iter().map(|&sample| f64::from(sample)));
            consumed += rest.len();
        }
        digits
    }

    /// Takes the classification of one block; returns a digit once it is accepted.
    fn on_block(&mut self, found: Option<char>) -> Option<char> {
        if self.reported.is_some() {
            if found == self.reported {
                self.release_blocks = 0;
            } else {
                self.release_blocks += 1;
                if self.release_blocks >= BLOCKS_TO_RELEASE {
                    self.reported = None;
                    self.release_blocks = 0;
                }
            }
            // While a digit is held (or just released), candidates start over.
            self.candidate = None;
            self.candidate_blocks = 0;
            if self.reported.is_some() {
                return None;
            }
        }
        match found {
            Some(digit) if self.candidate == Some(digit) => {
                self.candidate_blocks += 1;
            }
            Some(digit) => {
                self.candidate = Some(digit);
                self.candidate_blocks = 1;
            }
            None => {
                self.candidate = None;
                self.candidate_blocks = 0;
            }
        }
        if self.candidate_blocks >= BLOCKS_TO_ACCEPT {
            self.reported = self.candidate.take();
            self.candidate_blocks = 0;
            self.release_blocks = 0;
            return self.reported;
        }
        None
    }
}

/// Both detectors for one call, with in-band suppression once RFC 4733 is seen.
#[derive(Debug, Default)]
pub struct DtmfDetector {
    rfc4733: Rfc4733Detector,
    inband: InbandDetector,
    rfc4733_seen: bool,
}

impl DtmfDetector {
    pub fn on_event_packet(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
        at: Duration,
    ) -> Option<DtmfDigit> {
        self.rfc4733_seen = true;
        self.rfc4733.on_packet(ssrc, timestamp, payload, at)
    }

    /// Feeds decoded PCM to in-band detection, unless RFC 4733 was seen: then its digits
    /// would be suppressed anyway, so the tones are not analysed at all.
    pub fn on_audio(&mut self, pcm: &[i16], start: Duration) -> Vec<DtmfDigit> {
        if self.rfc4733_seen {
            return Vec::new();
        }
        self.inband.on_audio(pcm, start)
    }

    pub fn inband_suppressed(&self) -> bool {
        self.rfc4733_seen
    }
}

/// Synthesises a DTMF digit (each tone at `amplitude`) followed by silence: for tests and for
/// tools that must press keys in-band.
pub fn synthesize_digit(digit: char, amplitude: f64, tone_ms: u32, pause_ms: u32) -> Vec<i16> {
    let Some((low, high)) = digit_frequencies(digit) else {
        return Vec::new();
    };
    let tone = (tone_ms * 8) as usize;
    let pause = (pause_ms * 8) as usize;
    (0..tone + pause)
        .map(|n| {
            if n >= tone {
                return 0;
            }
            let t = n as f64 / SAMPLE_RATE;
            let value = amplitude
                * ((2.0 * std::f64::consts::PI * low * t).sin()
                    + (2.0 * std::f64::consts::PI * high * t).sin());
            value.round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::G711Codec;

    fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
        let [hi, lo] = duration.to_be_bytes();
        [code, if end { 0x80 | 10 } else { 10 }, hi, lo]
    }

    fn rfc_digits(detector: &mut Rfc4733Detector, packets: &[(u32, u32, [u8; 4])]) -> String {
        packets
            .iter()
            .filter_map(|(ssrc, ts, payload)| {
                detector.on_packet(*ssrc, *ts, payload, Duration::ZERO)
            })
            .map(|d| d.digit)
            .collect()
    }

    #[test]
    fn rfc4733_one_digit_per_event_with_end_retransmissions() {
        let mut detector = Rfc4733Detector::default();
        let packets = [
            (9, 1000, event(1, false, 160)),
            (9, 1000, event(1, false, 320)),
            (9, 1000, event(1, true, 480)),
            (9, 1000, event(1, true, 480)),
            (9, 1000, event(1, true, 480)),
        ];
        assert_eq!(rfc_digits(&mut detector, &packets), "1");
    }

    #[test]
    fn rfc4733_same_digit_twice_counts_twice() {
        let mut detector = Rfc4733Detector::default();
        let packets = [
            (9, 1000, event(5, false, 160)),
            (9, 1000, event(5, true, 800)),
            (9, 1000, event(5, true, 800)),
            (9, 3000, event(5, false, 160)),
            (9, 3000, event(5, true, 800)),
        ];
        assert_eq!(rfc_digits(&mut detector, &packets), "55");
    }

    #[test]
    fn rfc4733_all_codes_separate_ssrcs_and_lost_starts() {
        let mut detector = Rfc4733Detector::default();
        let packets: Vec<(u32, u32, [u8; 4])> = (0..17u8)
            .map(|code| (7, u32::from(code) * 1000, event(code, true, 800)))
            .collect();
        // Event 16 (flash) is not a digit; only end packets arrived, each counts once.
        assert_eq!(rfc_digits(&mut detector, &packets), "0123456789*#ABCD");
        // Same timestamp on another SSRC is another event.
        assert_eq!(
            rfc_digits(&mut detector, &[(8, 0, event(0, true, 800))]),
            "0"
        );
        // Short payloads are ignored.
        assert_eq!(detector.on_packet(8, 99, &[1, 2], Duration::ZERO), None);
    }

    fn detect(pcm: &[i16]) -> String {
        let mut detector = InbandDetector::default();
        pcm.chunks(160)
            .flat_map(|chunk| detector.on_audio(chunk, Duration::ZERO))
            .map(|d| d.digit)
            .collect()
    }

    /// Pseudo-random white noise with the given RMS.
    fn add_noise(pcm: &mut [i16], rms: f64, seed: u32) {
        let mut state = seed;
        for sample in pcm {
            // Sum of 4 uniforms ≈ gaussian, variance 4/12.
            let mut sum = 0.0;
            for _ in 0..4 {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                sum += f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5;
            }
            let noise = sum / (4.0f64 / 12.0).sqrt() * rms;
            *sample = (f64::from(*sample) + noise)
                .round()
                .clamp(-32768.0, 32767.0) as i16;
        }
    }

    const ALL: &str = "123A456B789C*0#D";

    #[test]
    fn inband_all_16_digits_at_several_levels() {
        for amplitude in [16000.0, 5000.0, 1000.0, 300.0] {
            let pcm: Vec<i16> = ALL
                .chars()
                .flat_map(|d| synthesize_digit(d, amplitude, 80, 60))
                .collect();
            assert_eq!(detect(&pcm), ALL, "amplitude {amplitude}");
        }
    }

    #[test]
    fn inband_survives_g711_and_noise() {
        for codec in [G711Codec::Pcmu, G711Codec::Pcma] {
            let mut pcm: Vec<i16> = ALL
                .chars()
                .flat_map(|d| synthesize_digit(d, 4000.0, 70, 50))
                .collect();
            add_noise(&mut pcm, 500.0, 7); // ~ 15 dB below each tone
            let mut encoded = Vec::new();
            codec.encode_into(&pcm, &mut encoded);
            let mut decoded = Vec::new();
            codec.decode_into(&encoded, &mut decoded);
            assert_eq!(detect(&decoded), ALL, "{codec:?}");
        }
    }

    #[test]
    fn repeated_digit_with_pause_counts_twice_and_long_press_once() {
        let mut pcm = synthesize_digit('7', 4000.0, 500, 60);
        pcm.extend(synthesize_digit('7', 4000.0, 60, 60));
        assert_eq!(detect(&pcm), "77");
    }

    #[test]
    fn minimum_length_tones_are_found_at_any_block_alignment() {
        for offset in [0usize, 37, 80, 123] {
            let mut pcm = vec![0i16; offset];
            pcm.extend(
                ALL.chars()
                    .flat_map(|d| synthesize_digit(d, 4000.0, 60, 45)),
            );
            assert_eq!(detect(&pcm), ALL, "offset {offset}");
        }
    }

    #[test]
    fn too_short_tones_and_quiet_tones_are_ignored() {
        assert_eq!(detect(&synthesize_digit('5', 4000.0, 15, 100)), "");
        assert_eq!(detect(&synthesize_digit('5', 60.0, 200, 100)), "");
    }

    #[test]
    fn the_1khz_tone_file_yields_no_digit() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sounds/testdata/tone1k_5s.ulaw"
        );
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() >= 40_000, "5 s of µ-law");
        let mut pcm = Vec::new();
        G711Codec::Pcmu.decode_into(&bytes, &mut pcm);
        assert_eq!(detect(&pcm), "");
    }

    #[test]
    fn single_tones_sweeps_and_noise_do_not_talk_off() {
        let tone = |hz: f64| -> Vec<i16> {
            (0..8000)
                .map(|n| {
                    (8000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / 8000.0).sin()) as i16
                })
                .collect()
        };
        for hz in ROW_HZ
            .iter()
            .chain(COLUMN_HZ.iter())
            .chain([1000.0, 440.0, 2000.0].iter())
        {
            assert_eq!(detect(&tone(*hz)), "", "{hz} Hz");
        }
        // Linear sweep 300 -> 3400 Hz over 3 s, and two simultaneous sweeps a fifth apart.
        let sweep = |f0: f64, f1: f64| -> Vec<f64> {
            let seconds = 3.0;
            (0..24000)
                .map(|n| {
                    let t = n as f64 / 8000.0;
                    let phase =
                        2.0 * std::f64::consts::PI * (f0 * t + (f1 - f0) * t * t / (2.0 * seconds));
                    phase.sin()
                })
                .collect()
        };
        let single: Vec<i16> = sweep(300.0, 3400.0)
            .iter()
            .map(|x| (x * 10000.0) as i16)
            .collect();
        assert_eq!(detect(&single), "");
        let a = sweep(300.0, 2000.0);
        let b = sweep(450.0, 3000.0);
        let double: Vec<i16> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| ((x + y) * 6000.0) as i16)
            .collect();
        assert_eq!(detect(&double), "");
        let mut noise = vec![0i16; 16000];
        add_noise(&mut noise, 3000.0, 99);
        assert_eq!(detect(&noise), "");
    }

    #[test]
    fn prompts_speech_does_not_talk_off() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sounds/zh-CN");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let pcm: Vec<i16> = hound::WavReader::open(&path)
                .unwrap()
                .samples::<i16>()
                .map(|s| s.unwrap())
                .collect();
            assert_eq!(detect(&pcm), "", "{}", path.display());
            checked += 1;
        }
        assert!(checked >= 28);
    }

    #[test]
    fn inband_is_suppressed_once_rfc4733_is_seen() {
        let mut detector = DtmfDetector::default();
        let pcm = synthesize_digit('3', 4000.0, 100, 60);
        assert_eq!(detector.on_audio(&pcm, Duration::ZERO).len(), 1);
        let digit =
            detector.on_event_packet(1, 10, &event(3, false, 160), Duration::from_millis(500));
        assert_eq!(
            digit.map(|d| (d.digit, d.source)),
            Some(('3', DtmfSource::Rfc4733))
        );
        assert!(detector.inband_suppressed());
        assert_eq!(detector.on_audio(&pcm, Duration::ZERO), Vec::new());
    }
}
