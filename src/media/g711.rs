//! G.711 (ITU-T G.711) µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8)
//! encoding and decoding of 16-bit linear PCM, plus the negotiated-codec enum.
//!
//! Pure functions; owns no state and must not know about RTP or sockets.

/// The G.711 variant negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Codec {
    /// µ-law, static RTP payload type 0.
    Pcmu,
    /// A-law, static RTP payload type 8.
    Pcma,
}

impl G711Codec {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            G711Codec::Pcmu => 0,
            G711Codec::Pcma => 8,
        }
    }

    /// The codec for a static payload type, if it is PCMU or PCMA.
    pub fn from_payload_type(pt: u8) -> Option<G711Codec> {
        match pt {
            0 => Some(G711Codec::Pcmu),
            8 => Some(G711Codec::Pcma),
            _ => None,
        }
    }

    /// The encoded byte for digital silence (linear 0).
    pub fn silence_byte(self) -> u8 {
        self.encode(0)
    }

    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711Codec::Pcmu => linear_to_ulaw(sample),
            G711Codec::Pcma => linear_to_alaw(sample),
        }
    }

    /// Decodes one byte by table lookup (the tables are the decoders below, evaluated at
    /// compile time).
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            G711Codec::Pcmu => ULAW_DECODE[usize::from(byte)],
            G711Codec::Pcma => ALAW_DECODE[usize::from(byte)],
        }
    }

    /// Encodes `pcm` into `out` (one byte per sample).
    pub fn encode_into(self, pcm: &[i16], out: &mut Vec<u8>) {
        out.extend(pcm.iter().map(|&s| self.encode(s)));
    }

    /// Decodes `payload` into `out` (one sample per byte).
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        out.extend(payload.iter().map(|&b| self.decode(b)));
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// µ-law encoding of a 16-bit sample (14-bit magnitude range after bias, as in G.711).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut value = i32::from(sample);
    let sign = if value < 0 {
        value = -value;
        0x80
    } else {
        0x00
    };
    value = value.min(ULAW_CLIP) + ULAW_BIAS;
    // Segment = position of the highest set bit above bit 7.
    let exponent = (31 - (value as u32).leading_zeros())
        .saturating_sub(7)
        .min(7) as i32;
    let mantissa = (value >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Every byte's µ-law and A-law decoding, computed at compile time.
static ULAW_DECODE: [i16; 256] = decode_table(false);
static ALAW_DECODE: [i16; 256] = decode_table(true);

const fn decode_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = if alaw {
            alaw_to_linear(byte as u8)
        } else {
            ulaw_to_linear(byte as u8)
        };
        byte += 1;
    }
    table
}

pub const fn ulaw_to_linear(byte: u8) -> i16 {
    let byte = !byte;
    let sign = byte & 0x80;
    let exponent = ((byte >> 4) & 0x07) as i32;
    let mantissa = (byte & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law encoding of a 16-bit sample (13-bit magnitude, even bits inverted with 0x55).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let value = i32::from(sample) >> 3; // 13-bit
    let (sign, magnitude) = if value >= 0 {
        (0x80u8, value)
    } else {
        (0x00u8, -value - 1)
    };
    let magnitude = magnitude.min(0x0FFF);
    let encoded = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let exponent = (31 - (magnitude as u32).leading_zeros()) as i32 - 4; // 1..=7
        let mantissa = (magnitude >> exponent) & 0x0F;
        ((exponent << 4) as u8) | mantissa as u8
    };
    (sign | encoded) ^ 0x55
}

pub const fn alaw_to_linear(byte: u8) -> i16 {
    let byte = byte ^ 0x55;
    let exponent = ((byte >> 4) & 0x07) as i32;
    let mantissa = (byte & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if byte & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // Values from the G.711 tables (and every reference implementation, e.g. Sun g711.c).
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(32767), 0x80);
        assert_eq!(linear_to_ulaw(-32768), 0x00);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(linear_to_ulaw(-1000), 0x4E);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xCE), 988);
        assert_eq!(ulaw_to_linear(0x7F), 0);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-8), 0x55);
        assert_eq!(linear_to_alaw(32767), 0xAA);
        assert_eq!(linear_to_alaw(-32768), 0x2A);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0xFA), 1008);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for byte in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(byte)),
                byte,
                "A-law {byte:#04x}"
            );
            let ulaw = linear_to_ulaw(ulaw_to_linear(byte));
            // 0x7F (-0) decodes to 0, which encodes as +0 (0xFF): the only non-unique code.
            let expected = if byte == 0x7F { 0xFF } else { byte };
            assert_eq!(ulaw, expected, "µ-law {byte:#04x}");
        }
    }

    #[test]
    fn round_trip_error_stays_within_the_segment_step() {
        for sample in (-32768i32..=32767).step_by(7) {
            let sample = sample as i16;
            for codec in [G711Codec::Pcmu, G711Codec::Pcma] {
                let back = i32::from(codec.decode(codec.encode(sample)));
                let error = (back - i32::from(sample)).abs();
                // Quantisation step doubles per segment: the error is at most ~1/16 of the
                // magnitude plus the finest step (and 1/2 step more for the clipped top).
                let bound = (i32::from(sample).abs() / 16).max(16)
                    + 8
                    + 512 * i32::from(i32::from(sample).abs() > 31000);
                assert!(error <= bound, "{codec:?} {sample} -> {back}");
            }
        }
    }

    #[test]
    fn encoding_is_monotonic() {
        for codec in [G711Codec::Pcmu, G711Codec::Pcma] {
            let mut previous = i16::MIN;
            for sample in (-32768i32..=32767).step_by(3) {
                let decoded = codec.decode(codec.encode(sample as i16));
                assert!(decoded >= previous, "{codec:?} at {sample}");
                previous = decoded;
            }
        }
    }

    #[test]
    fn payload_types_and_silence() {
        assert_eq!(G711Codec::Pcmu.payload_type(), 0);
        assert_eq!(G711Codec::from_payload_type(8), Some(G711Codec::Pcma));
        assert_eq!(G711Codec::from_payload_type(18), None);
        assert_eq!(G711Codec::Pcmu.silence_byte(), 0xFF);
        assert_eq!(G711Codec::Pcma.silence_byte(), 0xD5);
    }
}
