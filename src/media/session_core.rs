//! One call's media work, sans-IO: everything the media task does per 20 ms frame and per
//! received datagram — pacing, prompt playback or comfort silence, bridging, RTP framing,
//! reordering, DTMF detection, recording — without sockets or clocks. Callers pass the
//! `Instant`s in, hand received datagrams over and send the datagrams it builds. Recording
//! here is the in-memory part; the recorder's own thread does the file work (see
//! [`super::recorder`]).
//!
//! [`super::session`] drives it from a tokio task bound to the call's ports; the
//! `media_path` benchmark drives it with a simulated clock. The behaviour (comfort silence,
//! hold, barge-in, bridging, recording margins) is described in [`super::session`].
//!
//! Owns one call's media state; must not touch sockets, sleep or read the clock.

use super::dtmf::{DtmfDetector, DtmfDigit};
use super::g711::G711Codec;
use super::jitter::{ReorderBuffer, ReorderStats};
use super::pacer::{Pacer, SAMPLES_PER_FRAME};
use super::prompts::{Playback, PromptLibrary};
use super::recorder::{CallRecorder, Side};
use super::rtp_session::{Incoming, RtpSession};
use super::session::{
    BridgeFrame, MAX_BRIDGE_BACKLOG, MediaCommand, MediaEvent, MediaStats, SessionOptions,
};
use rtp::packet::Packet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How far behind "now" the recorder writes, so reordered caller audio still fits.
const RECORD_MARGIN: Duration = Duration::from_millis(300);
/// An RTP timestamp that places audio further than this ahead of its arrival re-anchors the
/// stream on the media clock (a timestamp jump).
const MAX_AHEAD_OF_ARRIVAL: u64 = 2 * 8000;
/// Audio placed further than this behind its arrival would miss the recorder (which writes
/// `RECORD_MARGIN` behind now): the sender's clock lagged (it paused its timestamps during
/// silence, or restarted them), so the stream is re-anchored at the arrival time.
const MAX_BEHIND_ARRIVAL: u64 = 150 * 8;

/// One call's media state (see the module doc).
pub struct SessionCore {
    pacer: Pacer,
    rtp: RtpSession,
    playback: Playback,
    prompts: Arc<PromptLibrary>,
    dtmf: DtmfDetector,
    /// The peer's current audio stream: its SSRC and reorder buffer.
    audio_stream: Option<(u32, ReorderBuffer<Packet>)>,
    /// Per SSRC: (RTP timestamp, media-clock sample) of the anchor packet.
    anchors: HashMap<u32, (u32, u64)>,
    recorder: Option<CallRecorder>,
    bridge: Option<(
        mpsc::UnboundedSender<BridgeFrame>,
        mpsc::UnboundedReceiver<BridgeFrame>,
    )>,
    hold: bool,
    /// When the peer was last heard from (any RTP or RTCP from its address; on hold: now).
    last_heard: Instant,
    /// `Inactive` was reported for the current silence.
    inactive_reported: bool,
    stats: MediaStats,
    /// Reorder counters of the peer's earlier audio streams.
    finished_streams: ReorderStats,
    options: SessionOptions,
    events: mpsc::UnboundedSender<MediaEvent>,
    buffers: Buffers,
}

impl SessionCore {
    /// A session whose 20 ms schedule starts at `start`; events go to `events`.
    pub fn new(
        rtp: RtpSession,
        prompts: Arc<PromptLibrary>,
        options: SessionOptions,
        start: Instant,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> SessionCore {
        let codec = rtp.media().codec;
        SessionCore {
            pacer: Pacer::new(start),
            playback: Playback::new(codec),
            rtp,
            prompts,
            dtmf: DtmfDetector::default(),
            audio_stream: None,
            anchors: HashMap::new(),
            recorder: None,
            bridge: None,
            hold: false,
            last_heard: start,
            inactive_reported: false,
            stats: MediaStats::default(),
            finished_streams: ReorderStats::default(),
            options,
            events,
            buffers: Buffers::new(codec),
        }
    }

    /// When the next frame is due: call [`SessionCore::begin_tick`] then.
    pub fn next_deadline(&self) -> Instant {
        self.pacer.next_deadline()
    }

    /// Where the datagrams of [`SessionCore::frame_datagram`] go.
    pub fn send_address(&self) -> SocketAddr {
        self.rtp.send_address()
    }

    fn emit(&self, event: MediaEvent) {
        // The owner may already be gone (dropped handle): nothing left to tell.
        let _ = self.events.send(event);
    }

    /// How often the owner wants [`SessionCore::report_stats`] called.
    pub fn stats_interval(&self) -> Duration {
        self.options.stats_interval
    }

    /// Reports the counters as a [`MediaEvent::Stats`].
    pub fn report_stats(&self) {
        self.emit(MediaEvent::Stats(self.stats()));
    }

    fn stats(&self) -> MediaStats {
        let mut reorder = self.finished_streams;
        if let Some((_, stream)) = &self.audio_stream {
            add_reorder(&mut reorder, stream.stats());
        }
        MediaStats {
            rtp: self.rtp.counters(),
            reorder,
            ..self.stats
        }
    }

    fn media_time(&self, sample: u64) -> Duration {
        Duration::from_micros(sample * 125)
    }

    pub fn on_command(&mut self, command: MediaCommand, now: Instant) {
        match command {
            MediaCommand::Play(names) => {
                if let Err(error) = self.playback.enqueue(&self.prompts, &names) {
                    self.emit(MediaEvent::CommandFailed(error.to_string()));
                }
            }
            MediaCommand::StopPlayback => {
                self.playback.stop();
            }
            MediaCommand::StartRecording(path) => {
                if let Some(recorder) = &self.recorder
                    && !recorder.failed()
                {
                    let message = format!(
                        "already recording into {}: send StopRecording first",
                        recorder.path().display()
                    );
                    self.emit(MediaEvent::CommandFailed(message));
                    return;
                }
                // Start no later than the next outgoing frame, so a prompt queued right
                // after this command is recorded from its first sample.
                let next_frame_sample = self.pacer.next_frame() * u64::from(SAMPLES_PER_FRAME);
                let origin = self.pacer.media_sample_at(now).min(next_frame_sample);
                // The recorder's thread creates the file and reports RecordingStarted (or
                // CommandFailed); audio is placed from `origin` on meanwhile.
                match CallRecorder::start(&path, origin, self.events.clone()) {
                    Ok(recorder) => self.recorder = Some(recorder),
                    Err(error) => self.emit(MediaEvent::CommandFailed(error.to_string())),
                }
            }
            MediaCommand::StopRecording => self.finish_recording(now),
            MediaCommand::SetRemote(remote) => self.rtp.set_remote(remote),
            MediaCommand::Hold(hold) => self.hold = hold,
            MediaCommand::Bridge { to, from } => self.bridge = Some((to, from)),
            MediaCommand::Close => {}
        }
    }

    /// The pacer woke at `now`: the frame slots to fill now, oldest first. For each, send
    /// [`SessionCore::frame_datagram`] and report it with [`SessionCore::note_sent`]; then
    /// call [`SessionCore::end_tick`].
    pub fn begin_tick(&mut self, now: Instant) -> Range<u64> {
        self.check_inactivity(now);
        let due = self.pacer.poll(now);
        if due.skipped > 0 {
            self.rtp.note_skipped(due.skipped);
        }
        due.send
    }

    /// The datagram for frame slot `frame`: a prompt frame, the other leg's audio or comfort
    /// silence, built into a buffer the session keeps. `None` on hold (nothing is sent).
    pub fn frame_datagram(&mut self, frame: u64) -> Option<&[u8]> {
        if self.hold {
            self.rtp.note_silent_slot();
            return None;
        }
        let at = frame * u64::from(SAMPLES_PER_FRAME);
        match self.playback.next_frame() {
            Some((played, finished)) => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.put(Side::Other, at, played.pcm());
                }
                if let Some(name) = finished {
                    self.stats.prompts_finished += 1;
                    self.emit(MediaEvent::PromptFinished(name));
                }
                let datagram = &mut self.buffers.datagram;
                self.rtp.build_frame(frame, &played.payload, true, datagram);
            }
            None => match self.next_bridged_frame() {
                Some(pcm) => {
                    if let Some(recorder) = &mut self.recorder {
                        recorder.put(Side::Other, at, &pcm);
                    }
                    let encoded = &mut self.buffers.encoded;
                    encoded.clear();
                    self.rtp.media().codec.encode_into(&pcm, encoded);
                    let datagram = &mut self.buffers.datagram;
                    self.rtp.build_frame(frame, encoded, true, datagram);
                }
                None => {
                    let datagram = &mut self.buffers.datagram;
                    self.rtp
                        .build_frame(frame, &self.buffers.silence, false, datagram);
                }
            },
        }
        Some(&self.buffers.datagram)
    }

    /// The datagram of `frame` left at `at` (`sent`: without a socket error).
    pub fn note_sent(&mut self, frame: u64, at: Instant, sent: bool) {
        let late = at.saturating_duration_since(self.pacer.deadline_of(frame));
        self.stats.send_deviation.note(late);
        if !sent {
            self.stats.send_errors += 1;
        }
    }

    /// After the frames of [`SessionCore::begin_tick`]: releases reordered audio and
    /// advances the recording to `RECORD_MARGIN` before `now` (whole seconds go to the
    /// recorder's thread). A recording whose file failed stops (its thread reported why).
    pub fn end_tick(&mut self, now: Instant) {
        self.release_audio(now, false);
        if let Some(recorder) = &mut self.recorder {
            if recorder.failed() {
                self.recorder = None;
                return;
            }
            let until = self
                .pacer
                .media_sample_at(now.checked_sub(RECORD_MARGIN).unwrap_or(now));
            if let Err(error) = recorder.advance_to(until) {
                self.recorder = None;
                self.emit(MediaEvent::CommandFailed(error.to_string()));
            }
        }
    }

    /// The other leg's next frame, padded or cut to one frame; stale backlog dropped.
    fn next_bridged_frame(&mut self) -> Option<BridgeFrame> {
        let (_, from) = self.bridge.as_mut()?;
        while from.len() > MAX_BRIDGE_BACKLOG {
            let _ = from.try_recv();
        }
        let mut pcm = from.try_recv().ok()?;
        pcm.resize(SAMPLES_PER_FRAME as usize, 0);
        Some(pcm)
    }

    /// The peer is alive.
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.inactive_reported = false;
    }

    /// Reports a silence that reached the inactivity limit (once); a call on hold is exempt.
    fn check_inactivity(&mut self, now: Instant) {
        if self.hold {
            self.heard(now);
            return;
        }
        if let Some(limit) = self.options.inactivity
            && !self.inactive_reported
            && now.saturating_duration_since(self.last_heard) >= limit
        {
            self.inactive_reported = true;
            self.emit(MediaEvent::Inactive(limit));
        }
    }

    /// A datagram arrived on the RTCP port from `source`.
    pub fn on_rtcp(&mut self, source: SocketAddr, now: Instant) {
        if self.rtp.note_rtcp(source) {
            self.heard(now);
        }
    }

    /// A datagram arrived on the RTP port from `source`.
    pub fn on_datagram(&mut self, datagram: &[u8], source: SocketAddr, now: Instant) {
        if self.rtp.accepts(source) {
            self.heard(now);
        }
        let (incoming, learned) = self.rtp.receive(datagram, source);
        if let Some(address) = learned {
            self.emit(MediaEvent::RemoteAddressLearned(address));
        }
        match incoming {
            Incoming::Audio(packet) => {
                let ssrc = packet.header.ssrc;
                if self
                    .audio_stream
                    .as_ref()
                    .is_some_and(|(current, _)| *current != ssrc)
                {
                    // A new stream (the PBX switched streams on a transfer): the old one has
                    // ended, so what it holds back waits for nothing; release it now. The new
                    // stream gets its own sequence space and clock anchor.
                    self.release_audio(now, true);
                    if let Some((_, stream)) = self.audio_stream.take() {
                        add_reorder(&mut self.finished_streams, stream.stats());
                    }
                    self.anchors.clear();
                }
                let (depth, max_wait) = (self.options.jitter_depth, self.options.jitter_max_wait);
                self.audio_stream
                    .get_or_insert_with(|| (ssrc, ReorderBuffer::new(depth, max_wait)))
                    .1
                    .push(packet.header.sequence_number, now, packet);
                self.release_audio(now, false);
            }
            Incoming::Event(packet) => {
                let at = self.media_time(self.pacer.media_sample_at(now));
                if let Some(digit) = self.dtmf.on_event_packet(
                    packet.header.ssrc,
                    packet.header.timestamp,
                    &packet.payload,
                    at,
                ) {
                    self.report_digit(digit);
                }
            }
            Incoming::Ignored => {}
        }
    }

    /// Moves released audio packets to DTMF detection and the recorder. `drain` empties
    /// the buffers (end of call).
    fn release_audio(&mut self, now: Instant, drain: bool) {
        let mut released = std::mem::take(&mut self.buffers.released);
        if let Some((_, stream)) = &mut self.audio_stream {
            if drain {
                released.extend(stream.drain());
            } else {
                released.extend(std::iter::from_fn(|| stream.pop(now)));
            }
        }
        let arrival = self.pacer.media_sample_at(now);
        for packet in released.drain(..) {
            self.on_audio_packet(&packet, arrival);
        }
        self.buffers.released = released;
    }

    fn on_audio_packet(&mut self, packet: &Packet, arrival: u64) {
        let mut pcm = std::mem::take(&mut self.buffers.pcm);
        pcm.clear();
        self.rtp
            .media()
            .codec
            .decode_into(&packet.payload, &mut pcm);
        let ssrc = packet.header.ssrc;
        let timestamp = packet.header.timestamp;
        let (anchor_ts, anchor_sample) = *self.anchors.entry(ssrc).or_insert((timestamp, arrival));
        let offset = i64::from(timestamp.wrapping_sub(anchor_ts) as i32);
        let position = anchor_sample as i64 + offset;
        let out_of_line = position < 0
            || position as u64 > arrival + MAX_AHEAD_OF_ARRIVAL
            || (position as u64) + MAX_BEHIND_ARRIVAL < arrival;
        let position = if out_of_line {
            self.anchors.insert(ssrc, (timestamp, arrival));
            arrival
        } else {
            position as u64
        };
        if let Some(recorder) = &mut self.recorder {
            recorder.put(Side::Caller, position, &pcm);
        }
        if let Some((to, _)) = &self.bridge
            && to.send(pcm.clone()).is_err()
        {
            // The other leg is gone: nothing to hand over any more.
            self.bridge = None;
        }
        for digit in self.dtmf.on_audio(&pcm, self.media_time(position)) {
            self.report_digit(digit);
        }
        self.buffers.pcm = pcm;
    }

    fn report_digit(&mut self, digit: DtmfDigit) {
        self.stats.digits += 1;
        self.emit(MediaEvent::Digit(digit));
    }

    /// Hands the rest of the recording over; its thread finalises the file and reports
    /// `RecordingFinished` (holding a clone of the event sender until then).
    fn finish_recording(&mut self, now: Instant) {
        if let Some(recorder) = self.recorder.take()
            && let Err(error) = recorder.finish(self.pacer.media_sample_at(now))
        {
            self.emit(MediaEvent::CommandFailed(error.to_string()));
        }
    }

    /// The end of the call: releases held audio, finalises the recording and reports the
    /// final counters.
    pub fn shut_down(&mut self, now: Instant) {
        self.release_audio(now, true);
        self.finish_recording(now);
        self.report_stats();
    }
}

/// Buffers reused from frame to frame, so the per-frame path allocates nothing.
struct Buffers {
    /// The outgoing datagram being built.
    datagram: Vec<u8>,
    /// The other leg's audio, encoded.
    encoded: Vec<u8>,
    /// One frame of comfort silence in the session's codec.
    silence: [u8; SAMPLES_PER_FRAME as usize],
    /// A received packet, decoded.
    pcm: Vec<i16>,
    /// Packets released by the reorder buffer.
    released: Vec<Packet>,
}

impl Buffers {
    fn new(codec: G711Codec) -> Buffers {
        Buffers {
            datagram: Vec::new(),
            encoded: Vec::new(),
            silence: [codec.silence_byte(); SAMPLES_PER_FRAME as usize],
            pcm: Vec::new(),
            released: Vec::new(),
        }
    }
}

fn add_reorder(total: &mut ReorderStats, stream: ReorderStats) {
    total.duplicates += stream.duplicates;
    total.late += stream.late;
    total.lost += stream.lost;
    total.restarts += stream.restarts;
}
