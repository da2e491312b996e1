//! Loopback integration test of `MediaSession` with real UDP sockets: a test peer receives a
//! prompt (checking SSRC, sequence, timestamp, marker and content), sends audio with in-band
//! DTMF, RFC 4733 digits on a second SSRC among unknown-PT fillers, RTCP and garbage, and
//! the session reports the digits, learns the peer's address and records what the peer sent;
//! audio from anyone but the peer is dropped, and a new stream from the peer is followed.

use bytes::Bytes;
use hotline::media::config::Latching;
use hotline::media::dtmf::{DtmfSource, InbandDetector, synthesize_digit};
use hotline::media::g711::G711Codec;
use hotline::media::ports::PortPool;
use hotline::media::prompts::PromptLibrary;
use hotline::media::recorder::recording_path;
use hotline::media::rtp_session::NegotiatedMedia;
use hotline::media::session::{MediaCommand, MediaEvent, MediaSession, MediaStats, SessionOptions};
use rtp::header::Header;
use rtp::packet::Packet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use webrtc_util::marshal::{Marshal, Unmarshal};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const EVENT_PT: u8 = 101;

/// A pool over a free even range found by probing.
fn free_pool(pairs: u16) -> PortPool {
    for _ in 0..50 {
        let probe = std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap();
        let port = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        if (1024..60000).contains(&port) {
            let max = port + 2 * pairs - 1;
            if (port..=max).all(|p| std::net::UdpSocket::bind((LOOPBACK, p)).is_ok()) {
                return PortPool::new(LOOPBACK, port, max).unwrap();
            }
        }
    }
    panic!("no free port range on loopback");
}

fn prompts() -> Arc<PromptLibrary> {
    Arc::new(
        PromptLibrary::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds/zh-CN")).unwrap(),
    )
}

struct PeerStream {
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl PeerStream {
    fn packet(&mut self, pt: u8, marker: bool, payload: Vec<u8>, advance_ts: bool) -> Vec<u8> {
        let packet = Packet {
            header: Header {
                version: 2,
                marker,
                payload_type: pt,
                sequence_number: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                ..Header::default()
            },
            payload: Bytes::from(payload),
        };
        self.seq = self.seq.wrapping_add(1);
        if advance_ts {
            self.ts = self.ts.wrapping_add(160);
        }
        packet.marshal().unwrap().to_vec()
    }
}

/// Sends linear audio as paced 20 ms PCMU packets.
async fn send_audio(socket: &UdpSocket, to: SocketAddr, stream: &mut PeerStream, pcm: &[i16]) {
    for chunk in pcm.chunks(160) {
        let mut payload = Vec::new();
        G711Codec::Pcmu.encode_into(chunk, &mut payload);
        payload.resize(160, 0xFF);
        socket
            .send_to(&stream.packet(0, false, payload, true), to)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends one RFC 4733 key press the way sipp does: start, updates, three end packets, with
/// PT 97 filler packets in between.
async fn send_event(
    socket: &UdpSocket,
    to: SocketAddr,
    stream: &mut PeerStream,
    event: u8,
    filler: &mut PeerStream,
) {
    for (n, end) in [
        (1u16, false),
        (2, false),
        (3, false),
        (4, true),
        (4, true),
        (4, true),
    ] {
        let [hi, lo] = (n * 160).to_be_bytes();
        let flags = if end { 0x80 | 10 } else { 10 };
        let datagram = stream.packet(EVENT_PT, n == 1 && !end, vec![event, flags, hi, lo], false);
        socket.send_to(&datagram, to).await.unwrap();
        socket
            .send_to(&filler.packet(97, false, vec![0; 4], true), to)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next key press has a new timestamp.
    stream.ts = stream.ts.wrapping_add(2000);
}

async fn wait_for(
    session: &mut MediaSession,
    seen: &mut Vec<MediaEvent>,
    what: impl Fn(&MediaEvent) -> bool,
) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), session.next_event())
            .await
            .expect("event in time")
            .expect("session alive");
        let done = what(&event);
        seen.push(event);
        if done {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_out_digits_in_recording_and_ports_freed() {
    let pool = free_pool(2);
    let library = prompts();
    let prompt = library.get("digit_1").unwrap();
    let recordings = tempfile::tempdir().unwrap();

    let peer = Arc::new(UdpSocket::bind((LOOPBACK, 0)).await.unwrap());
    let peer_addr = peer.local_addr().unwrap();
    // SDP says another address (a NAT in between): packets must follow the peer's real source.
    let sdp_target = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let media = NegotiatedMedia {
        codec: G711Codec::Pcmu,
        telephone_event_pt: Some(EVENT_PT),
        remote_rtp: sdp_target.local_addr().unwrap(),
    };
    let lease = pool.lease().unwrap();
    let options = SessionOptions {
        latching: Latching::Nat,
        ..SessionOptions::default()
    }
    .with_sip_host(LOOPBACK);
    let mut session = MediaSession::start(lease, library.clone(), media, options).unwrap();
    let local = session.local_rtp_addr();
    assert_eq!(pool.live_count(), 1);

    let received: Arc<Mutex<Vec<Packet>>> = Arc::default();
    let receiver = {
        let (peer, received) = (peer.clone(), received.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let (len, _) = peer.recv_from(&mut buf).await.unwrap();
                let mut slice = &buf[..len];
                received
                    .lock()
                    .unwrap()
                    .push(Packet::unmarshal(&mut slice).unwrap());
            }
        })
    };

    let mut events = Vec::new();
    let mut audio = PeerStream {
        ssrc: 0xA0A0,
        seq: 65530,
        ts: 4_000_000_000,
    };
    send_audio(&peer, local, &mut audio, &[0; 800]).await;
    wait_for(&mut session, &mut events, |e| {
        matches!(e, MediaEvent::RemoteAddressLearned(_))
    })
    .await;
    assert!(events.contains(&MediaEvent::RemoteAddressLearned(peer_addr)));

    session
        .command(MediaCommand::StartRecording(recording_path(
            recordings.path(),
            "call-1@pbx",
        )))
        .unwrap();
    session
        .command(MediaCommand::Play(vec!["digit_1".into()]))
        .unwrap();
    // In-band '5' while the prompt plays, with a little low-level background.
    let mut tone: Vec<i16> = vec![30; 400];
    tone.extend(synthesize_digit('5', 5000.0, 100, 100));
    send_audio(&peer, local, &mut audio, &tone).await;
    wait_for(&mut session, &mut events, |e| {
        *e == MediaEvent::PromptFinished("digit_1".into())
    })
    .await;

    // RFC 4733 on its own SSRC: 1, 1, # (sipp style), RTCP and garbage around it.
    let mut dtmf = PeerStream {
        ssrc: 0xD7F0,
        seq: 100,
        ts: 50_000,
    };
    let mut filler = PeerStream {
        ssrc: 0xD7F0,
        seq: 5000,
        ts: 0,
    };
    let rtcp_port = SocketAddr::new(LOOPBACK, local.port() + 1);
    peer.send_to(&[0x81, 201, 0, 1, 0, 0, 0, 1], rtcp_port)
        .await
        .unwrap();
    peer.send_to(b"\xff\x00garbage", local).await.unwrap();
    for event in [1u8, 1, 11] {
        send_event(&peer, local, &mut dtmf, event, &mut filler).await;
    }
    // In-band '9' now: RFC 4733 was seen, so it is recorded but not reported.
    send_audio(
        &peer,
        local,
        &mut audio,
        &synthesize_digit('9', 5000.0, 100, 100),
    )
    .await;
    send_audio(&peer, local, &mut audio, &[0; 2400]).await;

    session.command(MediaCommand::StopRecording).unwrap();
    wait_for(&mut session, &mut events, |e| {
        matches!(e, MediaEvent::RecordingFinished(_))
    })
    .await;
    events.extend(session.close().await);
    receiver.abort();
    assert_eq!(pool.live_count(), 0, "ports back in the pool after close");

    // Digits: in-band 5, then RFC 4733 1 1 # once each; the in-band 9 was suppressed.
    let digits: Vec<(char, DtmfSource)> = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Digit(d) => Some((d.digit, d.source)),
            _ => None,
        })
        .collect();
    assert_eq!(
        digits,
        vec![
            ('5', DtmfSource::Inband),
            ('1', DtmfSource::Rfc4733),
            ('1', DtmfSource::Rfc4733),
            ('#', DtmfSource::Rfc4733)
        ]
    );

    // Outgoing stream as the peer saw it.
    let packets = received.lock().unwrap().clone();
    let ssrc = session_ssrc(&packets);
    for pair in packets.windows(2) {
        let (a, b) = (&pair[0].header, &pair[1].header);
        assert_eq!(b.ssrc, ssrc);
        assert_eq!(b.payload_type, 0);
        assert_eq!(
            b.sequence_number,
            a.sequence_number.wrapping_add(1),
            "no gaps, in order"
        );
        let step = b.timestamp.wrapping_sub(a.timestamp);
        assert!(
            step >= 160 && step % 160 == 0,
            "20 ms frames: timestamp step {step}"
        );
        if b.marker {
            // A marker starts a talkspurt: the prompt, or a frame after a skipped stretch.
            assert!(step > 160 || pair[1].payload == *prompt.frame(G711Codec::Pcmu, 0).unwrap());
        }
        assert_eq!(pair[1].payload.len(), 160);
    }
    let start = packets
        .iter()
        .position(|p| p.header.marker && p.payload == *prompt.frame(G711Codec::Pcmu, 0).unwrap())
        .expect("prompt start with marker");
    let frames = prompt.frame_count();
    assert!(packets.len() > start + frames, "silence follows the prompt");
    for (k, packet) in packets[start..start + frames].iter().enumerate() {
        assert_eq!(
            packet.payload,
            *prompt.frame(G711Codec::Pcmu, k).unwrap(),
            "prompt frame {k}"
        );
    }
    assert!(
        packets[start + frames..]
            .iter()
            .all(|p| p.payload.iter().all(|&b| b == 0xFF)),
        "comfort silence after the prompt"
    );

    // The recording: caller LEFT holds the peer's audio (both in-band digits are in it),
    // prompt RIGHT holds the whole prompt exactly once.
    let path = events
        .iter()
        .find_map(|e| match e {
            MediaEvent::RecordingFinished(path) => Some(path.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(path.file_name().unwrap(), "call-1_pbx.wav");
    let reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 8000)
    );
    let samples: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let mut detector = InbandDetector::default();
    let recorded_digits: String = left
        .chunks(160)
        .flat_map(|c| detector.on_audio(c, Duration::ZERO))
        .map(|d| d.digit)
        .collect();
    assert_eq!(recorded_digits, "59");
    let energy = |pcm: &[i16]| {
        pcm.iter()
            .map(|&s| i64::from(s) * i64::from(s))
            .sum::<i64>()
    };
    let prompt_pcm: Vec<i16> = (0..frames)
        .flat_map(|k| prompt.pcm_frame(k).unwrap().to_vec())
        .collect();
    assert_eq!(energy(&right), energy(&prompt_pcm));

    let stats = last_stats(&events);
    assert!(stats.rtp.rtcp_packets >= 1);
    assert!(stats.rtp.malformed >= 1);
    assert_eq!(stats.rtp.unknown_payload_type, 18, "PT 97 fillers ignored");
    assert_eq!(stats.rtp.event_packets, 18);
    assert_eq!(stats.digits, 4);
    assert_eq!(stats.prompts_finished, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_dropped_and_a_new_stream_from_the_peer_is_followed() {
    let pool = free_pool(1);
    let peer = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let stranger = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let media = NegotiatedMedia {
        codec: G711Codec::Pcmu,
        telephone_event_pt: Some(EVENT_PT),
        remote_rtp: peer.local_addr().unwrap(),
    };
    let session = MediaSession::start(
        pool.lease().unwrap(),
        prompts(),
        media,
        SessionOptions::default(),
    )
    .unwrap();
    let local = session.local_rtp_addr();
    let digit = |key| synthesize_digit(key, 5000.0, 100, 100);

    // Someone else who found the port speaks first: nothing of it is heard or latched.
    let mut injected = PeerStream {
        ssrc: 0xBAD,
        seq: 1,
        ts: 0,
    };
    send_audio(&stranger, local, &mut injected, &digit('7')).await;
    // The peer, then the peer's new stream (a transfer at the PBX): new SSRC, sequence and
    // timestamps, with packets of the old stream still held back for a gap.
    let mut first = PeerStream {
        ssrc: 0xA1,
        seq: 100,
        ts: 8000,
    };
    send_audio(&peer, local, &mut first, &digit('3')).await;
    first.seq = first.seq.wrapping_add(1); // a lost packet: the rest waits behind the gap
    send_audio(&peer, local, &mut first, &[0; 320]).await;
    let mut second = PeerStream {
        ssrc: 0xB2,
        seq: 40000,
        ts: 3_000_000_000,
    };
    send_audio(&peer, local, &mut second, &digit('4')).await;
    send_audio(&peer, local, &mut second, &[0; 800]).await;

    let events = session.close().await;
    let digits: String = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Digit(d) => Some(d.digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "34", "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, MediaEvent::RemoteAddressLearned(_))),
        "{events:?}"
    );
    let stats = last_stats(&events);
    assert_eq!(
        stats.rtp.wrong_source, 10,
        "every injected packet dropped and counted"
    );
    assert_eq!(stats.rtp.ssrc_changes, 1);
}

#[tokio::test]
async fn closing_while_recording_ends_the_events_only_after_the_file_is_final() {
    let pool = free_pool(1);
    let library = prompts();
    let recordings = tempfile::tempdir().unwrap();
    let peer = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let media = NegotiatedMedia {
        codec: G711Codec::Pcmu,
        telephone_event_pt: None,
        remote_rtp: peer.local_addr().unwrap(),
    };
    let mut session = MediaSession::start(
        pool.lease().unwrap(),
        library.clone(),
        media,
        SessionOptions::default(),
    )
    .unwrap();
    let mut events = Vec::new();

    // A folder that does not exist: reported, and the session is not left "recording".
    let missing = recordings.path().join("missing").join("call.wav");
    session
        .command(MediaCommand::StartRecording(missing))
        .unwrap();
    wait_for(&mut session, &mut events, |e| {
        matches!(e, MediaEvent::CommandFailed(_))
    })
    .await;
    let MediaEvent::CommandFailed(why) = events.last().unwrap() else {
        unreachable!()
    };
    assert!(why.contains("cannot create recording"), "{why}");

    let path = recording_path(recordings.path(), "call-2");
    session
        .command(MediaCommand::StartRecording(path.clone()))
        .unwrap();
    session
        .command(MediaCommand::Play(vec!["digit_1".into()]))
        .unwrap();
    wait_for(&mut session, &mut events, |e| {
        *e == MediaEvent::PromptFinished("digit_1".into())
    })
    .await;
    assert!(events.contains(&MediaEvent::RecordingStarted(path.clone())));

    // No StopRecording: closing finalises the recording before the events end.
    let rest = session.close().await;
    assert!(
        rest.contains(&MediaEvent::RecordingFinished(path.clone())),
        "{rest:?}"
    );
    assert_eq!(pool.live_count(), 0, "ports back in the pool after close");
    let reader = hound::WavReader::open(&path).unwrap();
    let samples = u64::from(reader.len());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        44 + 2 * samples,
        "the header covers the whole file"
    );
    let prompt = library.get("digit_1").unwrap();
    let right: Vec<i16> = reader
        .into_samples::<i16>()
        .skip(1)
        .step_by(2)
        .map(|s| s.unwrap())
        .collect();
    assert!(right.len() >= prompt.frame_count() * 160);
    assert!(right.iter().any(|&s| s != 0), "the prompt is recorded");
}

/// The session's final counters (its last `Stats` event).
fn last_stats(events: &[MediaEvent]) -> MediaStats {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            MediaEvent::Stats(s) => Some(*s),
            _ => None,
        })
        .expect("a Stats event")
}

fn session_ssrc(packets: &[Packet]) -> u32 {
    packets.first().expect("the peer received RTP").header.ssrc
}

#[tokio::test]
async fn dropping_the_handle_frees_the_ports_and_bad_commands_are_answered() {
    let pool = free_pool(1);
    let peer = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let media = NegotiatedMedia {
        codec: G711Codec::Pcma,
        telephone_event_pt: None,
        remote_rtp: peer.local_addr().unwrap(),
    };
    let mut session = MediaSession::start(
        pool.lease().unwrap(),
        prompts(),
        media,
        SessionOptions::default(),
    )
    .unwrap();
    assert!(pool.lease().is_err(), "the only pair is in use");
    session
        .command(MediaCommand::Play(vec!["no_such_prompt".into()]))
        .unwrap();
    let mut events = Vec::new();
    wait_for(&mut session, &mut events, |e| {
        matches!(e, MediaEvent::CommandFailed(_))
    })
    .await;
    let MediaEvent::CommandFailed(message) = events.last().unwrap() else {
        unreachable!()
    };
    assert!(message.contains("no_such_prompt"), "{message}");
    // PCMA silence reaches the SDP address (no symmetric latch without incoming packets).
    let mut buf = [0u8; 1500];
    let (len, _) = tokio::time::timeout(Duration::from_secs(10), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let mut slice = &buf[..len];
    let packet = Packet::unmarshal(&mut slice).unwrap();
    assert_eq!(packet.header.payload_type, 8);
    assert!(packet.payload.iter().all(|&b| b == 0xD5));

    // re-INVITE to a new address, then hold with a prompt queued, then resume.
    let moved = Arc::new(UdpSocket::bind((LOOPBACK, 0)).await.unwrap());
    let received: Arc<Mutex<Vec<Packet>>> = Arc::default();
    let receiver = {
        let (moved, received) = (moved.clone(), received.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let (len, _) = moved.recv_from(&mut buf).await.unwrap();
                let mut slice = &buf[..len];
                received
                    .lock()
                    .unwrap()
                    .push(Packet::unmarshal(&mut slice).unwrap());
            }
        })
    };
    session
        .command(MediaCommand::SetRemote(moved.local_addr().unwrap()))
        .unwrap();
    while received.lock().unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    session.command(MediaCommand::Hold(true)).unwrap();
    session
        .command(MediaCommand::Play(vec!["digit_2".into()]))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    session.command(MediaCommand::Hold(false)).unwrap();
    wait_for(&mut session, &mut events, |e| {
        *e == MediaEvent::PromptFinished("digit_2".into())
    })
    .await;
    receiver.abort();
    let packets = received.lock().unwrap().clone();
    assert_eq!(
        packets[0].header.ssrc, packet.header.ssrc,
        "same stream after the move"
    );
    let resumed = packets
        .iter()
        .position(|p| p.header.marker)
        .expect("prompt after hold has a marker");
    let (before, after) = (&packets[resumed - 1].header, &packets[resumed].header);
    assert_eq!(
        after.sequence_number,
        before.sequence_number.wrapping_add(1),
        "nothing sent on hold"
    );
    // 300 ms on hold: timestamps moved on with the clock (at least 15 frames).
    assert!(after.timestamp.wrapping_sub(before.timestamp) >= 15 * 160);

    drop(session);
    for _ in 0..200 {
        if pool.live_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.live_count(), 0, "ports back in the pool after drop");
    assert!(pool.lease().is_ok());
}

#[tokio::test]
async fn silence_from_the_peer_is_reported_but_not_on_hold_and_rtcp_counts() {
    let pool = free_pool(3);
    let peer = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let media = NegotiatedMedia {
        codec: G711Codec::Pcmu,
        telephone_event_pt: None,
        remote_rtp: peer.local_addr().unwrap(),
    };
    let options = SessionOptions {
        inactivity: Some(Duration::from_millis(400)),
        ..SessionOptions::default()
    };
    let start = |options: SessionOptions| {
        MediaSession::start(pool.lease().unwrap(), prompts(), media, options).unwrap()
    };
    let inactive =
        |events: &[MediaEvent]| events.iter().any(|e| matches!(e, MediaEvent::Inactive(_)));

    // Nothing from the peer: reported once the limit passes.
    let mut silent = start(options.clone());
    let mut events = Vec::new();
    wait_for(&mut silent, &mut events, |e| {
        *e == MediaEvent::Inactive(Duration::from_millis(400))
    })
    .await;

    // On hold: exempt. RTCP alone (from the peer's host) keeps a session alive.
    let held = start(options.clone());
    held.command(MediaCommand::Hold(true)).unwrap();
    let rtcp_only = start(options);
    let rtcp_port = SocketAddr::new(LOOPBACK, rtcp_only.local_rtp_addr().port() + 1);
    for _ in 0..10 {
        peer.send_to(&[0x81, 201, 0, 1, 0, 0, 0, 1], rtcp_port)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!inactive(&held.close().await), "a call on hold is exempt");
    assert!(
        !inactive(&rtcp_only.close().await),
        "RTCP is a sign of life"
    );
    drop(silent);
}
