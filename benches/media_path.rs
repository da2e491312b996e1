//! Measures the media path of recorded IVR calls, sans-IO: N calls of S seconds each driven
//! through [`SessionCore`] (the per-frame work of the media task, without its sockets) on a
//! simulated 20 ms clock. Every call records both parties to a WAV in a temporary folder,
//! hears the welcome and the recording notice, and sends PCMU audio every 20 ms (a quiet
//! two-tone hum, loud enough that in-band DTMF detection does its full work); keys are
//! pressed 5 s and 15 s in — in-band on even calls, as RFC 4733 events (with the tone left
//! in the audio, as PBXs do) on odd calls — and each key cuts the prompt and plays another.
//!
//! Wall time on a shared machine varies; instruction counts do not. For a repeatable figure
//! run it under callgrind, counting only the calls (not the set-up):
//!
//! ```text
//! cargo bench --no-run --bench media_path
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*run_calls*' \
//!     target/release/deps/media_path-<hash>
//! ```
//!
//! and divide the total instructions (`Ir`) by the call-seconds it prints. The recordings'
//! file work runs on the recorder's own thread and is not counted (the toggle counts only
//! the thread running `run_calls`); the bench waits for the finished files after the
//! measured part. Set the size with `MEDIA_BENCH_CALLS` (default 20) and
//! `MEDIA_BENCH_SECONDS` (default 20). The digests of the datagrams sent and of the
//! recordings let a change to the path show it kept the output byte for byte.

use hotline::media::g711::G711Codec;
use hotline::media::prompts::PromptLibrary;
use hotline::media::rtp_session::{NegotiatedMedia, RtpSession, SourceFilter};
use hotline::media::session::{MediaCommand, MediaEvent, SessionOptions};
use hotline::media::session_core::SessionCore;
use rtp::header::Header;
use rtp::packet::Packet;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc_util::marshal::Marshal;

const FRAME: Duration = Duration::from_millis(20);
const EVENT_PT: u8 = 101;
/// Keys pressed by every call: (second, digit).
const KEYS: [(u64, char); 2] = [(5, '1'), (15, '2')];
/// How long a key is held (tone or event), in frames.
const KEY_FRAMES: u64 = 5;

struct Call {
    core: SessionCore,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    peer: SocketAddr,
    rfc4733: bool,
    seq: u16,
    ts: u32,
}

#[derive(Default)]
struct Totals {
    frames_sent: u64,
    frames_received: u64,
    digits: u64,
    /// The ended calls' events, still to bring their `RecordingFinished` (the recorder's
    /// thread finalises the files after the calls end).
    ended: Vec<mpsc::UnboundedReceiver<MediaEvent>>,
    /// FNV-1a over every datagram sent.
    sent_digest: u64,
}

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The caller's audio for frame `frame` of a call: a quiet hum, with the key's tone while a
/// key is held.
fn caller_pcm(frame: u64) -> Vec<i16> {
    let key = KEYS
        .iter()
        .find(|(second, _)| (second * 50..second * 50 + KEY_FRAMES).contains(&frame));
    let (low, high, amplitude) = match key {
        Some((_, digit)) => {
            let (low, high) = hotline::media::dtmf::digit_frequencies(*digit).unwrap_or((0., 0.));
            (low, high, 6000.0)
        }
        None => (300.0, 450.0, 1500.0),
    };
    (0..160)
        .map(|n| {
            let t = (frame * 160 + n) as f64 / 8000.0;
            let tau = 2.0 * std::f64::consts::PI;
            (amplitude * ((tau * low * t).sin() + (tau * high * t).sin())) as i16
        })
        .collect()
}

fn rtp_datagram(call: &mut Call, pt: u8, marker: bool, payload: Vec<u8>) -> Vec<u8> {
    let packet = Packet {
        header: Header {
            version: 2,
            marker,
            payload_type: pt,
            sequence_number: call.seq,
            timestamp: call.ts,
            ssrc: 0x5eed_0000,
            ..Header::default()
        },
        payload: payload.into(),
    };
    call.seq = call.seq.wrapping_add(1);
    packet.marshal().map(|b| b.to_vec()).unwrap_or_default()
}

/// What the caller sends in frame slot `frame`: the audio packet and, on RFC 4733 calls
/// while a key is held, a telephone-event packet (its last one marked as the end).
fn caller_datagrams(call: &mut Call, frame: u64, audio: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![rtp_datagram(call, 0, false, audio.to_vec())];
    if call.rfc4733
        && let Some((second, digit)) = KEYS
            .iter()
            .find(|(second, _)| (second * 50..second * 50 + KEY_FRAMES).contains(&frame))
    {
        let event = "0123456789*#".find(*digit).unwrap_or(0) as u8;
        let held = frame - second * 50;
        let end = if held + 1 == KEY_FRAMES { 0x80 } else { 0 };
        let duration = ((held + 1) * 160) as u16;
        let start_ts = call.ts.wrapping_sub((held * 160) as u32);
        let [hi, lo] = duration.to_be_bytes();
        let saved_ts = call.ts;
        call.ts = start_ts;
        out.push(rtp_datagram(
            call,
            EVENT_PT,
            held == 0,
            vec![event, end | 10, hi, lo],
        ));
        call.ts = saved_ts;
    }
    call.ts = call.ts.wrapping_add(160);
    out
}

fn new_call(index: u64, prompts: &Arc<PromptLibrary>, dir: &Path, start: Instant) -> Call {
    let peer: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 20_000 + 2 * index as u16));
    let media = NegotiatedMedia {
        codec: G711Codec::Pcmu,
        telephone_event_pt: Some(EVENT_PT),
        remote_rtp: peer,
    };
    let rtp =
        RtpSession::with_initial_values(media, SourceFilter::SdpAddress, index as u32, 1000, 5000);
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut core = SessionCore::new(
        rtp,
        prompts.clone(),
        SessionOptions::default(),
        start,
        events_tx,
    );
    let path = dir.join(format!("call-{index}.wav"));
    core.on_command(MediaCommand::StartRecording(path), start);
    let greeting = ["welcome", "recording_notice"].map(String::from).to_vec();
    core.on_command(MediaCommand::Play(greeting), start);
    Call {
        core,
        events,
        peer,
        rfc4733: index % 2 == 1,
        seq: 100,
        ts: 80_000,
    }
}

/// The measured part: every call, frame by frame, from the first packet to the recording
/// handed over in full to the recorder's thread (whose file work is off the media path).
#[inline(never)]
fn run_calls(
    calls: u64,
    seconds: u64,
    prompts: &Arc<PromptLibrary>,
    dir: &Path,
    start: Instant,
    audio: &[Vec<u8>],
) -> Totals {
    let mut totals = Totals {
        sent_digest: FNV_START,
        ..Totals::default()
    };
    let mut active: Vec<Call> = (0..calls)
        .map(|i| new_call(i, prompts, dir, start))
        .collect();
    for frame in 0..seconds * 50 {
        let now = start + FRAME * frame as u32;
        for call in &mut active {
            for datagram in caller_datagrams(call, frame, &audio[frame as usize]) {
                call.core.on_datagram(&datagram, call.peer, now);
                totals.frames_received += 1;
            }
            for slot in call.core.begin_tick(now) {
                if let Some(datagram) = call.core.frame_datagram(slot) {
                    totals.sent_digest = fnv(totals.sent_digest, datagram);
                    totals.frames_sent += 1;
                    call.core.note_sent(slot, now, true);
                }
            }
            call.core.end_tick(now);
            while let Ok(event) = call.events.try_recv() {
                if let MediaEvent::Digit(_) = event {
                    totals.digits += 1;
                    call.core.on_command(MediaCommand::StopPlayback, now);
                    let next = vec!["label_billing".to_owned()];
                    call.core.on_command(MediaCommand::Play(next), now);
                }
            }
        }
    }
    let end = start + FRAME * (seconds * 50) as u32;
    for mut call in active {
        call.core.shut_down(end);
        drop(call.core);
        totals.ended.push(call.events);
    }
    black_box(totals)
}

fn main() {
    let calls = env_or("MEDIA_BENCH_CALLS", 20);
    let seconds = env_or("MEDIA_BENCH_SECONDS", 20).max(16);
    let sounds = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds/zh-CN");
    let prompts = Arc::new(PromptLibrary::load(&sounds).expect("the prompts of sounds/zh-CN"));
    let dir = tempfile::tempdir().expect("a temporary folder for the recordings");
    // The caller's audio, encoded once (the load generator's work, not the daemon's).
    let audio: Vec<Vec<u8>> = (0..seconds * 50)
        .map(|frame| {
            let mut payload = Vec::with_capacity(160);
            G711Codec::Pcmu.encode_into(&caller_pcm(frame), &mut payload);
            payload
        })
        .collect();
    let start = Instant::now();
    let wall = Instant::now();
    let totals = run_calls(calls, seconds, &prompts, dir.path(), start, &audio);
    let elapsed = wall.elapsed();

    // Each call's events end once the recorder's thread has finalised its file.
    let mut recordings = Vec::new();
    for mut events in totals.ended {
        while let Some(event) = events.blocking_recv() {
            if let MediaEvent::RecordingFinished(path) = event {
                recordings.push(path);
            }
        }
    }
    let mut recording_digest = FNV_START;
    let mut recorded_bytes = 0u64;
    for path in &recordings {
        let bytes = std::fs::read(path).expect("a finished recording");
        recording_digest = fnv(recording_digest, &bytes);
        recorded_bytes += bytes.len() as u64;
    }
    let call_seconds = calls * seconds;
    println!("media_path: {calls} calls x {seconds} s = {call_seconds} call-seconds");
    println!(
        "  frames sent {}, datagrams received {}, digits {} (expected {})",
        totals.frames_sent,
        totals.frames_received,
        totals.digits,
        calls * KEYS.len() as u64
    );
    println!(
        "  recordings {} of {} ({} bytes)",
        recordings.len(),
        calls,
        recorded_bytes
    );
    println!(
        "  digests: sent {:016x}, recordings {:016x}",
        totals.sent_digest, recording_digest
    );
    println!(
        "  wall {:.3} s, {:.1} µs per call-second (under callgrind: Ir / {call_seconds})",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / call_seconds as f64
    );
}
