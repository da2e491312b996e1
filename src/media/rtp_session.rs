//! One RTP session's protocol state, sans-IO: building outgoing packets (random initial
//! SSRC/sequence/timestamp, +1 sequence per packet, +160 timestamp per 20 ms frame, marker
//! on the first packet of each talkspurt), classifying incoming datagrams, and deciding which
//! sources are the peer.
//!
//! Source filtering ([`SourceFilter`]): anyone who can reach the port range could otherwise
//! inject audio or take over the stream and hear the agent. By default only packets from the
//! address in the peer's SDP are accepted, and we send there. Behind NAT
//! (`media.latching = "nat"`) the SDP address is a private one, so packets from any port of
//! the host the SIP request came from are accepted, and we send to where the peer's latest
//! stream comes from (symmetric RTP; a PBX that switches streams on a transfer may switch
//! ports with a new SSRC). Everything else is dropped and counted (`wrong_source`).
//! [`RtpSession::set_remote`] (re-INVITE) moves the SDP address.
//!
//! Owns the wire format (via the `rtp` crate) and addressing decisions; must not touch
//! sockets, clocks or payload contents.

use super::g711::G711Codec;
use super::pacer::SAMPLES_PER_FRAME;
use bytes::Bytes;
use rtp::header::Header;
use rtp::packet::Packet;
use std::net::{IpAddr, SocketAddr};
use webrtc_util::marshal::{Marshal, MarshalSize};

/// What the SIP layer negotiated for this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedMedia {
    pub codec: G711Codec,
    /// Payload type of `telephone-event/8000` if the peer offered it (RFC 4733).
    pub telephone_event_pt: Option<u8>,
    /// The peer's RTP address from SDP (`c=` + `m=` port).
    pub remote_rtp: SocketAddr,
}

/// Which sources a session accepts as the peer's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFilter {
    /// Only the address (IP and port) in the peer's SDP.
    SdpAddress,
    /// Any port of this host (the SIP request's source: the peer is behind NAT); we send to
    /// the source of its latest audio or event packet.
    Host(IpAddr),
}

/// Counters for one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpCounters {
    pub packets_sent: u64,
    pub frames_skipped: u64,
    pub packets_received: u64,
    pub audio_packets: u64,
    pub event_packets: u64,
    pub unknown_payload_type: u64,
    pub rtcp_packets: u64,
    pub malformed: u64,
    /// Datagrams (RTP or RTCP) from a source that is not the peer: dropped.
    pub wrong_source: u64,
    /// Times the peer's audio SSRC changed (a new stream: transfer, restart).
    pub ssrc_changes: u64,
}

/// An incoming datagram, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Audio in the negotiated codec.
    Audio(Packet),
    /// An RFC 4733 telephone-event packet.
    Event(Packet),
    /// Dropped: garbage, RTCP, unknown payload type or wrong source (counted).
    Ignored,
}

#[derive(Debug)]
pub struct RtpSession {
    media: NegotiatedMedia,
    ssrc: u32,
    next_sequence: u16,
    initial_timestamp: u32,
    /// Whether the previous frame slot carried a prompt frame (for the marker bit).
    in_talkspurt: bool,
    filter: SourceFilter,
    /// With [`SourceFilter::Host`]: where the peer's packets come from.
    latched: Option<SocketAddr>,
    /// SSRC of the peer's current audio stream.
    audio_ssrc: Option<u32>,
    counters: RtpCounters,
}

impl RtpSession {
    /// A session with random SSRC, initial sequence number and timestamp (RFC 3550 5.1).
    pub fn new(media: NegotiatedMedia, filter: SourceFilter) -> RtpSession {
        RtpSession::with_initial_values(
            media,
            filter,
            rand::random(),
            rand::random(),
            rand::random(),
        )
    }

    pub fn with_initial_values(
        media: NegotiatedMedia,
        filter: SourceFilter,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
    ) -> RtpSession {
        RtpSession {
            media,
            ssrc,
            next_sequence: sequence,
            initial_timestamp: timestamp,
            in_talkspurt: false,
            filter,
            latched: None,
            audio_ssrc: None,
            counters: RtpCounters::default(),
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn media(&self) -> NegotiatedMedia {
        self.media
    }

    pub fn counters(&self) -> RtpCounters {
        self.counters
    }

    /// Where outgoing packets go: behind NAT the latched source address, else the SDP
    /// address.
    pub fn send_address(&self) -> SocketAddr {
        self.latched.unwrap_or(self.media.remote_rtp)
    }

    /// A re-INVITE moved the peer: send there (and behind NAT learn the source anew).
    pub fn set_remote(&mut self, remote: SocketAddr) {
        self.media.remote_rtp = remote;
        self.latched = None;
    }

    /// Frames skipped by the pacer: their timestamps pass without packets.
    pub fn note_skipped(&mut self, frames: u64) {
        self.counters.frames_skipped += frames;
        self.in_talkspurt = false;
    }

    /// A frame slot in which nothing is sent (hold): the next prompt frame starts a talkspurt.
    pub fn note_silent_slot(&mut self) {
        self.in_talkspurt = false;
    }

    /// Builds the packet for frame slot `frame` (pacer index) carrying 160 encoded bytes
    /// into `out` (cleared first; a buffer the caller keeps, so no packet is allocated).
    /// `is_prompt` says whether it carries prompt audio (vs comfort silence): the marker bit
    /// is set on the first prompt frame after silence and on the very first packet.
    pub fn build_frame(&mut self, frame: u64, payload: &[u8], is_prompt: bool, out: &mut Vec<u8>) {
        let marker = (is_prompt && !self.in_talkspurt) || self.counters.packets_sent == 0;
        self.in_talkspurt = is_prompt;
        let timestamp = self
            .initial_timestamp
            .wrapping_add((frame as u32).wrapping_mul(SAMPLES_PER_FRAME));
        let header = Header {
            version: 2,
            marker,
            payload_type: self.media.codec.payload_type(),
            sequence_number: self.next_sequence,
            timestamp,
            ssrc: self.ssrc,
            ..Header::default()
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.counters.packets_sent += 1;
        out.clear();
        out.resize(header.marshal_size(), 0);
        // Marshalling a 12-byte header without extensions into a buffer of its own size
        // cannot fail; an empty datagram would be the visible symptom if it ever did.
        if header.marshal_to(out).is_err() {
            out.clear();
            return;
        }
        out.extend_from_slice(payload);
    }

    /// Whether `source` may be the peer: the SDP address, or any port of the NAT host.
    pub fn accepts(&self, source: SocketAddr) -> bool {
        match self.filter {
            SourceFilter::SdpAddress => source == self.media.remote_rtp,
            SourceFilter::Host(host) => source.ip() == host,
        }
    }

    /// Classifies a datagram that arrived on the RTP socket from `source`. Returns the
    /// classification and, behind NAT, the address just latched when it changed.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        source: SocketAddr,
    ) -> (Incoming, Option<SocketAddr>) {
        self.counters.packets_received += 1;
        if !self.accepts(source) {
            self.counters.wrong_source += 1;
            return (Incoming::Ignored, None);
        }
        if datagram.len() < 12 || datagram[0] >> 6 != 2 {
            self.counters.malformed += 1;
            return (Incoming::Ignored, None);
        }
        // RTCP multiplexed on the RTP port (RFC 5761): packet types 200..=204 sit where
        // marker + payload type are.
        if (200..=204).contains(&datagram[1]) {
            self.counters.rtcp_packets += 1;
            return (Incoming::Ignored, None);
        }
        let Some(packet) = parse_rtp(datagram) else {
            self.counters.malformed += 1;
            return (Incoming::Ignored, None);
        };
        let pt = packet.header.payload_type;
        let is_audio = pt == self.media.codec.payload_type();
        let is_event = Some(pt) == self.media.telephone_event_pt;
        if !is_audio && !is_event {
            self.counters.unknown_payload_type += 1;
            return (Incoming::Ignored, None);
        }
        let learned = match self.filter {
            // Audio moves the latch (a new stream); an event stream alone only sets it.
            SourceFilter::Host(_)
                if self.latched != Some(source) && (is_audio || self.latched.is_none()) =>
            {
                self.latched = Some(source);
                Some(source)
            }
            _ => None,
        };
        if is_audio {
            let ssrc = packet.header.ssrc;
            if self.audio_ssrc.is_some_and(|current| current != ssrc) {
                self.counters.ssrc_changes += 1;
            }
            self.audio_ssrc = Some(ssrc);
            self.counters.audio_packets += 1;
            (Incoming::Audio(packet), learned)
        } else {
            self.counters.event_packets += 1;
            (Incoming::Event(packet), learned)
        }
    }

    /// Counts a datagram from the RTCP socket (content is not used) when it comes from the
    /// peer's host; returns whether it did (RTCP from the peer is a sign of life).
    pub fn note_rtcp(&mut self, source: SocketAddr) -> bool {
        let host = match self.filter {
            SourceFilter::SdpAddress => self.media.remote_rtp.ip(),
            SourceFilter::Host(host) => host,
        };
        if source.ip() != host {
            self.counters.wrong_source += 1;
            return false;
        }
        self.counters.rtcp_packets += 1;
        true
    }
}

/// Parses an RTP datagram (RFC 3550 §5.1): the fixed header, then CSRCs, a header
/// extension and padding skipped by their declared lengths. `None` when any length runs
/// past the datagram or the version is not 2. Written here rather than taken from
/// `rtp::Packet::unmarshal`, which panics on an RFC 8285 extension element longer than the
/// datagram (found by the `rtp` fuzz target); header extensions carry nothing we use.
fn parse_rtp(datagram: &[u8]) -> Option<Packet> {
    let fixed = datagram.get(..12)?;
    if fixed[0] >> 6 != 2 {
        return None;
    }
    let has_padding = fixed[0] & 0x20 != 0;
    let has_extension = fixed[0] & 0x10 != 0;
    let csrc_count = usize::from(fixed[0] & 0x0F);
    let mut payload_start = 12 + 4 * csrc_count;
    if has_extension {
        let words = datagram.get(payload_start + 2..payload_start + 4)?;
        payload_start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut payload_end = datagram.len();
    if has_padding {
        let padding = usize::from(*datagram.last()?);
        payload_end = payload_end.checked_sub(padding)?;
    }
    let payload = datagram.get(payload_start..payload_end)?;
    let u32_at =
        |at: usize| u32::from_be_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
    Some(Packet {
        header: Header {
            version: 2,
            padding: false,
            extension: false,
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7F,
            sequence_number: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32_at(4),
            ssrc: u32_at(8),
            ..Header::default()
        },
        payload: Bytes::copy_from_slice(payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc_util::marshal::Unmarshal;

    fn media() -> NegotiatedMedia {
        NegotiatedMedia {
            codec: G711Codec::Pcmu,
            telephone_event_pt: Some(101),
            remote_rtp: "127.0.0.1:40000".parse().unwrap(),
        }
    }

    fn parse(bytes: &[u8]) -> Packet {
        let mut buf = bytes;
        Packet::unmarshal(&mut buf).unwrap()
    }

    fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
        Packet {
            header: Header {
                version: 2,
                payload_type: pt,
                sequence_number: seq,
                timestamp: 1234,
                ssrc,
                ..Header::default()
            },
            payload: Bytes::from_static(&[0xFF; 160]),
        }
        .marshal()
        .unwrap()
        .to_vec()
    }

    #[test]
    fn outgoing_sequence_timestamp_and_marker() {
        let mut session = RtpSession::with_initial_values(
            media(),
            SourceFilter::SdpAddress,
            0xABCD,
            65534,
            u32::MAX - 200,
        );
        let build = |session: &mut RtpSession, frame: u64, is_prompt: bool| {
            let mut out = vec![0xAA; 3];
            session.build_frame(frame, &[0xFF; 160], is_prompt, &mut out);
            assert_eq!(out.len(), 12 + 160, "the buffer is cleared, then filled");
            parse(&out)
        };
        let first = build(&mut session, 0, false);
        assert_eq!(first.payload, Bytes::from_static(&[0xFF; 160]));
        assert!(first.header.marker, "first packet of the stream");
        assert_eq!(first.header.sequence_number, 65534);
        assert_eq!(first.header.timestamp, u32::MAX - 200);
        assert_eq!(first.header.ssrc, 0xABCD);
        assert_eq!(first.header.payload_type, 0);
        let second = build(&mut session, 1, false);
        assert!(!second.header.marker);
        assert_eq!(second.header.sequence_number, 65535);
        // Timestamp wraps too.
        assert_eq!(second.header.timestamp, (u32::MAX - 200).wrapping_add(160));
        let prompt_start = build(&mut session, 2, true);
        assert!(prompt_start.header.marker, "talkspurt start");
        assert_eq!(prompt_start.header.sequence_number, 0);
        let prompt_next = build(&mut session, 3, true);
        assert!(!prompt_next.header.marker);
        // After a skip the timestamp jumps with the frame index, the sequence does not.
        session.note_skipped(5);
        let after_skip = build(&mut session, 9, true);
        assert_eq!(after_skip.header.sequence_number, 2);
        assert_eq!(
            after_skip.header.timestamp,
            (u32::MAX - 200).wrapping_add(9 * 160)
        );
        assert!(after_skip.header.marker);
        assert_eq!(session.counters().frames_skipped, 5);
    }

    #[test]
    fn random_initial_values_differ_between_sessions() {
        let ssrcs: std::collections::HashSet<u32> = (0..8)
            .map(|_| RtpSession::new(media(), SourceFilter::SdpAddress).ssrc())
            .collect();
        assert!(ssrcs.len() > 1);
    }

    #[test]
    fn only_the_sdp_address_is_accepted_by_default() {
        let mut session = RtpSession::new(media(), SourceFilter::SdpAddress);
        let peer = media().remote_rtp;
        assert!(matches!(
            session.receive(&rtp(0, 1, 7), peer).0,
            Incoming::Audio(_)
        ));
        // Another host, or another port of the peer's host, cannot inject or take over.
        for stranger in ["127.0.0.3:40000", "127.0.0.1:40002"] {
            let stranger: SocketAddr = stranger.parse().unwrap();
            assert_eq!(
                session.receive(&rtp(0, 2, 7), stranger),
                (Incoming::Ignored, None)
            );
            assert_eq!(
                session.receive(&rtp(101, 3, 7), stranger).0,
                Incoming::Ignored
            );
        }
        assert_eq!(session.counters().wrong_source, 4);
        assert_eq!(session.send_address(), peer);
        // RTCP counts from the peer's host only.
        assert!(session.note_rtcp("127.0.0.1:40001".parse().unwrap()));
        assert!(!session.note_rtcp("127.0.0.3:40001".parse().unwrap()));
        assert_eq!(session.counters().wrong_source, 5);
        // re-INVITE: the new SDP address is the peer now, the old one is not.
        let moved: SocketAddr = "127.0.0.1:41000".parse().unwrap();
        session.set_remote(moved);
        assert_eq!(session.send_address(), moved);
        assert!(matches!(
            session.receive(&rtp(0, 4, 7), moved).0,
            Incoming::Audio(_)
        ));
        assert_eq!(session.receive(&rtp(0, 5, 7), peer).0, Incoming::Ignored);
    }

    #[test]
    fn behind_nat_any_port_of_the_sip_host_and_the_stream_is_followed() {
        let sip_host: IpAddr = "127.0.0.2".parse().unwrap();
        let mut session = RtpSession::new(media(), SourceFilter::Host(sip_host));
        assert_eq!(session.send_address(), media().remote_rtp);
        let nat: SocketAddr = "127.0.0.2:5555".parse().unwrap();
        // Unknown payload type does not latch.
        let (incoming, learned) = session.receive(&rtp(97, 1, 7), nat);
        assert_eq!((incoming, learned), (Incoming::Ignored, None));
        let (incoming, learned) = session.receive(&rtp(0, 2, 7), nat);
        assert!(matches!(incoming, Incoming::Audio(_)));
        assert_eq!(learned, Some(nat));
        assert_eq!(session.send_address(), nat);
        // Another host cannot take over.
        let stranger: SocketAddr = "127.0.0.3:6666".parse().unwrap();
        assert_eq!(
            session.receive(&rtp(0, 3, 7), stranger).0,
            Incoming::Ignored
        );
        assert_eq!(session.counters().wrong_source, 1);
        // Events on a second SSRC from another port of the host are accepted, and do not
        // move where we send.
        let events: SocketAddr = "127.0.0.2:5558".parse().unwrap();
        assert_eq!(
            session.receive(&rtp(101, 50, 99), events),
            (Incoming::Event(parse(&rtp(101, 50, 99))), None)
        );
        // The PBX switches streams (transfer): a new SSRC from a new port; we follow it.
        let switched: SocketAddr = "127.0.0.2:6000".parse().unwrap();
        let (incoming, learned) = session.receive(&rtp(0, 30000, 8), switched);
        assert!(matches!(incoming, Incoming::Audio(_)));
        assert_eq!(learned, Some(switched));
        assert_eq!(session.send_address(), switched);
        assert_eq!(session.counters().ssrc_changes, 1);
    }

    #[test]
    fn garbage_and_rtcp_never_panic() {
        let mut session = RtpSession::new(media(), SourceFilter::SdpAddress);
        let source = media().remote_rtp;
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x80],
            vec![0x00; 12],
            vec![0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0],
            // CSRC count 15 with a 12-byte packet: header claims more than is there.
            vec![0x8F, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            // Extension bit without the extension.
            vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            // Padding bit with a padding length larger than the payload.
            vec![0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 200],
        ];
        // Deterministic pseudo-random garbage.
        let mut state = 0x1234_5678u32;
        for len in 0..300 {
            inputs.push(
                (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (state >> 24) as u8
                    })
                    .collect(),
            );
        }
        for input in &inputs {
            let (incoming, _) = session.receive(input, source);
            if let Incoming::Audio(packet) | Incoming::Event(packet) = incoming {
                assert_eq!(packet.header.version, 2);
            }
        }
        let counters = session.counters();
        assert_eq!(counters.packets_received, inputs.len() as u64);
        assert!(counters.malformed >= 6);
        assert!(counters.rtcp_packets >= 1);
    }

    #[test]
    fn an_extension_element_longer_than_the_datagram_is_skipped_not_a_panic() {
        // The fuzz find: a two-byte-header extension (profile 0x1000, one word) whose element
        // claims 36 bytes in a 26-byte datagram; `rtp::Packet::unmarshal` panics on it. The
        // extension's own length fits, and its contents are opaque to us.
        let datagram = [
            0x90, 0xe9, 0x34, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x10, 0, 0, 1, 0, 0x0a, 0x24, 0, 0x29, 0,
            0, 6, 0, 0,
        ];
        let packet = parse_rtp(&datagram).unwrap();
        assert_eq!(packet.header.payload_type, 0x69);
        assert_eq!(&packet.payload[..], &[0x29, 0, 0, 6, 0, 0]);
        let mut session = RtpSession::new(media(), SourceFilter::SdpAddress);
        let (incoming, _) = session.receive(&datagram, media().remote_rtp);
        assert!(matches!(incoming, Incoming::Ignored));
        assert_eq!(session.counters().unknown_payload_type, 1);
    }

    #[test]
    fn csrcs_extensions_and_padding_are_skipped_by_their_lengths() {
        // V=2, P=1, X=1, CC=2; PT 0 with marker; then 2 CSRCs, a one-word RFC 3550 extension,
        // 3 payload bytes and 2 bytes of padding (the last says 2).
        let mut datagram = vec![
            0xB2, 0x80, 0x01, 0x02, 0, 0, 0x03, 0xE8, 0xAA, 0xBB, 0xCC, 0xDD,
        ];
        datagram.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]);
        datagram.extend_from_slice(&[0xAB, 0xCD, 0, 1, 9, 9, 9, 9]);
        datagram.extend_from_slice(&[7, 8, 9, 0, 2]);
        let packet = parse_rtp(&datagram).unwrap();
        assert!(packet.header.marker);
        assert_eq!(packet.header.payload_type, 0);
        assert_eq!(packet.header.sequence_number, 0x0102);
        assert_eq!(packet.header.timestamp, 1000);
        assert_eq!(packet.header.ssrc, 0xAABB_CCDD);
        assert_eq!(&packet.payload[..], &[7, 8, 9]);
        // Every length that runs past the end is refused.
        assert!(parse_rtp(&datagram[..19]).is_none(), "CSRCs cut short");
        assert!(parse_rtp(&datagram[..26]).is_none(), "extension cut short");
        let mut too_much_padding = datagram.clone();
        *too_much_padding.last_mut().unwrap() = 200;
        assert!(parse_rtp(&too_much_padding).is_none());
    }

    #[test]
    fn plain_packets_parse_as_the_rtp_crate_parses_them() {
        for (pt, seq, ssrc) in [(0, 0, 1), (101, 65535, u32::MAX), (8, 42, 7)] {
            let datagram = rtp(pt, seq, ssrc);
            assert_eq!(parse_rtp(&datagram), Some(parse(&datagram)));
        }
    }
}
