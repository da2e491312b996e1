//! Fuzzes incoming RTP/RTCP classification (both source filters) and the reorder buffer:
//! any datagram must be classified without a panic, what is accepted is version 2 with a
//! negotiated payload type, and the counters add up.
#![no_main]

// At the crate root, so that `super::g711` in `rtp_session.rs` resolves as in the daemon.
#[allow(dead_code)]
#[path = "../../src/media/g711.rs"]
mod g711;
#[allow(dead_code)]
#[path = "../../src/media/jitter.rs"]
mod jitter;
#[allow(dead_code)]
#[path = "../../src/media/pacer.rs"]
mod pacer;
#[allow(dead_code)]
#[path = "../../src/media/rtp_session.rs"]
mod rtp_session;

use libfuzzer_sys::fuzz_target;
use g711::G711Codec;
use jitter::ReorderBuffer;
use rtp_session::{Incoming, NegotiatedMedia, RtpSession, SourceFilter};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let media = NegotiatedMedia {
        codec: G711Codec::Pcmu,
        telephone_event_pt: Some(101),
        remote_rtp: peer,
    };
    let now = Instant::now();
    for filter in [SourceFilter::SdpAddress, SourceFilter::Host(peer.ip())] {
        let mut session = RtpSession::new(media, filter);
        let mut reorder = ReorderBuffer::new(3, Duration::from_millis(60));
        // The input as a run of datagrams: each starts with its length byte.
        let mut rest = data;
        let mut sent = 0u64;
        while let Some((&len, tail)) = rest.split_first() {
            let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            sent += 1;
            match session.receive(datagram, peer).0 {
                Incoming::Audio(packet) => {
                    assert_eq!(packet.header.version, 2);
                    assert_eq!(packet.header.payload_type, 0);
                    reorder.push(packet.header.sequence_number, now, packet);
                    while reorder.pop(now + Duration::from_secs(1)).is_some() {}
                }
                Incoming::Event(packet) => assert_eq!(packet.header.payload_type, 101),
                Incoming::Ignored => {}
            }
            session.note_rtcp(peer);
        }
        let counters = session.counters();
        assert_eq!(counters.packets_received, sent);
        assert!(counters.audio_packets + counters.event_packets <= sent);
    }
});
