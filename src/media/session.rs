//! The tokio driver of one call's media: a spawned task bound to a leased port pair that
//! paces outgoing RTP on the 20 ms monotonic schedule (prompt frames, or comfort silence when
//! no prompt plays), receives RTP (and RTCP on the odd port), reorders audio, detects DTMF,
//! records, and talks to its owner only through channels.
//!
//! Comfort silence: while nothing plays we keep sending G.711 digital-silence frames every
//! 20 ms rather than going quiet: PBXs and NATs then see a live stream (no media-timeout
//! hang-ups, pinholes stay open) and prompts need no stream restart. On `Hold(true)` (the
//! peer put the call on hold) we send nothing; the schedule keeps running so timestamps stay
//! right when sending resumes.
//!
//! Barge-in is the owner's decision: digits are reported as events and the IVR sends
//! `StopPlayback` if the menu allows interrupting (safety advice may not).
//!
//! Bridging (caller ↔ agent): after [`MediaCommand::Bridge`] every decoded audio frame this
//! session receives is handed to the other leg's session over a channel, and frames the
//! other leg hands over are sent to this peer in the slots no prompt uses (and recorded on
//! the right channel). Each session stays on its own clock and codec; at most
//! [`MAX_BRIDGE_BACKLOG`] frames wait, older ones are dropped so the delay stays short.
//!
//! Disk writes of the recorder run inline (buffered, one header update a second); RTCP is
//! received and counted but not sent.
//!
//! The task ends on `Close`, when the owner drops the [`MediaSession`], or when the runtime
//! stops; on every path the recording is finalised where possible and the port lease is
//! dropped, which returns the ports to the pool.
//!
//! Owns the sockets of one call; must not know about SIP dialogs or IVR menus.

use super::config::Latching;
use super::config::MediaConfig;
use super::dtmf::{DtmfDetector, DtmfDigit};
use super::g711::G711Codec;
use super::jitter::{ReorderBuffer, ReorderStats};
use super::pacer::{Pacer, SAMPLES_PER_FRAME, SendDeviation};
use super::ports::PortLease;
use super::prompts::{Playback, PromptLibrary};
use super::recorder::{CallRecorder, Side};
use super::rtp_session::{Incoming, NegotiatedMedia, RtpCounters, RtpSession, SourceFilter};
use bytes::Bytes;
use rtp::packet::Packet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// 20 ms of 8 kHz linear PCM handed from one bridged session to the other.
pub type BridgeFrame = Vec<i16>;

/// Frames of the other leg allowed to wait for a slot; more means the legs' clocks drifted
/// or the other side bursts: the oldest are dropped.
pub const MAX_BRIDGE_BACKLOG: usize = 5;

/// What the owner (the call) tells the media task.
#[derive(Debug)]
pub enum MediaCommand {
    /// Queue these prompts (by name) after whatever is playing.
    Play(Vec<String>),
    /// Cut playback now and empty the queue (barge-in).
    StopPlayback,
    /// Start recording into this file (see `recorder::recording_path`).
    StartRecording(PathBuf),
    StopRecording,
    /// The peer's RTP address changed (re-INVITE); learned anew from its packets.
    SetRemote(SocketAddr),
    /// `true`: the peer holds the call, stop sending; `false`: resume.
    Hold(bool),
    /// Connect with another session (see the module doc): received audio goes to `to`,
    /// audio from `from` goes to the peer. Replaces an earlier bridge.
    Bridge {
        to: mpsc::UnboundedSender<BridgeFrame>,
        from: mpsc::UnboundedReceiver<BridgeFrame>,
    },
    Close,
}

/// What the media task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    Digit(DtmfDigit),
    /// A prompt played to its end (not reported for prompts cut by `StopPlayback`).
    PromptFinished(String),
    /// Symmetric RTP: the first valid packet came from here; we now send here.
    RemoteAddressLearned(SocketAddr),
    /// The actual file (a `-2` suffix is added if the name was taken).
    RecordingStarted(PathBuf),
    /// The recording is complete and its header final.
    RecordingFinished(PathBuf),
    /// A command could not be carried out (unknown prompt, recording error), with why.
    CommandFailed(String),
    /// Periodic counters (every `SessionOptions::stats_interval`) and once at close.
    Stats(MediaStats),
    /// Nothing (RTP or RTCP) came from the peer for this long while not on hold: the far end
    /// is probably gone. Reported once per silence.
    Inactive(Duration),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub rtp: RtpCounters,
    pub reorder: ReorderStats,
    pub digits: u64,
    pub prompts_finished: u64,
    /// Datagrams that could not be sent (socket errors).
    pub send_errors: u64,
    /// How late each frame sent went out after its 20 ms deadline.
    pub send_deviation: SendDeviation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// Packets the reorder buffer may hold back.
    pub jitter_depth: usize,
    /// Longest wait for a missing packet before it is declared lost.
    pub jitter_max_wait: Duration,
    pub stats_interval: Duration,
    /// `media.latching`: the SDP address only, or the SIP host behind NAT.
    pub latching: Latching,
    /// The host the call's SIP request came from (with [`Latching::Nat`]). Unknown: the SDP
    /// address's host.
    pub sip_host: Option<IpAddr>,
    /// Report [`MediaEvent::Inactive`] after this long without a packet from the peer (not
    /// counted while on hold); `None`: never.
    pub inactivity: Option<Duration>,
}

impl SessionOptions {
    pub fn from_config(config: &MediaConfig) -> SessionOptions {
        SessionOptions {
            jitter_depth: config.jitter_depth,
            latching: config.latching,
            inactivity: (config.inactivity_secs > 0)
                .then(|| Duration::from_secs(config.inactivity_secs)),
            ..SessionOptions::default()
        }
    }

    /// The same options for a call whose SIP request came from `host`.
    pub fn with_sip_host(self, host: IpAddr) -> SessionOptions {
        SessionOptions {
            sip_host: Some(host),
            ..self
        }
    }

    fn source_filter(&self, media: &NegotiatedMedia) -> SourceFilter {
        match self.latching {
            Latching::Sdp => SourceFilter::SdpAddress,
            Latching::Nat => SourceFilter::Host(self.sip_host.unwrap_or(media.remote_rtp.ip())),
        }
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            jitter_depth: 3,
            jitter_max_wait: Duration::from_millis(60),
            stats_interval: Duration::from_secs(5),
            latching: Latching::Sdp,
            sip_host: None,
            inactivity: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the media session on {local}: {source}")]
pub struct SessionStartError {
    local: SocketAddr,
    source: std::io::Error,
}

/// The media task has ended; commands can no longer be delivered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the media session has ended")]
pub struct SessionEnded;

/// The owner's handle. Dropping it ends the task and frees the ports.
#[derive(Debug)]
pub struct MediaSession {
    commands: mpsc::UnboundedSender<MediaCommand>,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    local_rtp: SocketAddr,
    ssrc: u32,
    task: Option<JoinHandle<()>>,
}

impl MediaSession {
    /// Starts the task on the leased ports. Must run inside a tokio runtime.
    pub fn start(
        lease: PortLease,
        prompts: Arc<PromptLibrary>,
        media: NegotiatedMedia,
        options: SessionOptions,
    ) -> Result<MediaSession, SessionStartError> {
        let local_rtp = lease.rtp_addr();
        let to_tokio = |socket: std::net::UdpSocket| {
            socket.set_nonblocking(true)?;
            UdpSocket::from_std(socket)
        };
        let (rtp_socket, rtcp_socket) = lease
            .try_clone_sockets()
            .and_then(|(rtp, rtcp)| Ok((to_tokio(rtp)?, to_tokio(rtcp)?)))
            .map_err(|source| SessionStartError {
                local: local_rtp,
                source,
            })?;
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let rtp = RtpSession::new(media, options.source_filter(&media));
        let ssrc = rtp.ssrc();
        let driver = Driver {
            pacer: Pacer::new(Instant::now()),
            rtp,
            playback: Playback::new(media.codec),
            prompts,
            dtmf: DtmfDetector::default(),
            audio_stream: None,
            anchors: HashMap::new(),
            recorder: None,
            bridge: None,
            hold: false,
            last_heard: Instant::now(),
            inactive_reported: false,
            stats: MediaStats::default(),
            finished_streams: ReorderStats::default(),
            options,
            events: event_tx,
            rtp_socket,
            rtcp_socket,
            _lease: lease,
        };
        let task = tokio::spawn(driver.run(command_rx));
        Ok(MediaSession {
            commands: command_tx,
            events: event_rx,
            local_rtp,
            ssrc,
            task: Some(task),
        })
    }

    /// The local RTP address (for the SDP answer).
    pub fn local_rtp_addr(&self) -> SocketAddr {
        self.local_rtp
    }

    /// Our outgoing SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sends a command; never blocks.
    pub fn command(&self, command: MediaCommand) -> Result<(), SessionEnded> {
        self.commands.send(command).map_err(|_| SessionEnded)
    }

    /// The next event; `None` once the task has ended and all events were read.
    /// Cancel-safe (usable in `tokio::select!`).
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        self.events.recv().await
    }

    /// Closes the session and waits for the task to finish (recording finalised, ports
    /// freed). Returns the events not yet read, the final `Stats` among them.
    pub async fn close(mut self) -> Vec<MediaEvent> {
        let _ = self.commands.send(MediaCommand::Close);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let mut rest = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            rest.push(event);
        }
        rest
    }
}

/// How far behind "now" the recorder writes, so reordered caller audio still fits.
const RECORD_MARGIN: Duration = Duration::from_millis(300);
/// An RTP timestamp that places audio further than this ahead of its arrival re-anchors the
/// stream on the media clock (a timestamp jump).
const MAX_AHEAD_OF_ARRIVAL: u64 = 2 * 8000;
/// Audio placed further than this behind its arrival would miss the recorder (which writes
/// `RECORD_MARGIN` behind now): the sender's clock lagged (it paused its timestamps during
/// silence, or restarted them), so the stream is re-anchored at the arrival time.
const MAX_BEHIND_ARRIVAL: u64 = 150 * 8;

struct Driver {
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
    rtp_socket: UdpSocket,
    rtcp_socket: UdpSocket,
    /// Held for the lifetime of the task: dropping it returns the ports.
    _lease: PortLease,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<MediaCommand>) {
        let mut rtp_buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        let mut next_stats = Instant::now() + self.options.stats_interval;
        loop {
            let deadline = tokio::time::Instant::from_std(self.pacer.next_deadline());
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    None | Some(MediaCommand::Close) => break,
                    Some(command) => self.on_command(command),
                },
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    self.on_tick(now).await;
                    if now >= next_stats {
                        next_stats = now + self.options.stats_interval;
                        self.emit(MediaEvent::Stats(self.stats()));
                    }
                }
                received = self.rtp_socket.recv_from(&mut rtp_buf) => {
                    if let Ok((len, source)) = received {
                        self.on_datagram(&rtp_buf[..len], source, Instant::now());
                    }
                }
                received = self.rtcp_socket.recv_from(&mut rtcp_buf) => {
                    if let Ok((_, source)) = received
                        && self.rtp.note_rtcp(source)
                    {
                        self.heard(Instant::now());
                    }
                }
            }
        }
        self.shut_down(Instant::now());
    }

    fn emit(&self, event: MediaEvent) {
        // The owner may already be gone (dropped handle): nothing left to tell.
        let _ = self.events.send(event);
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

    fn on_command(&mut self, command: MediaCommand) {
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
                if let Some(recorder) = &self.recorder {
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
                let origin = self
                    .pacer
                    .media_sample_at(Instant::now())
                    .min(next_frame_sample);
                match CallRecorder::create(&path, origin) {
                    Ok(recorder) => {
                        self.emit(MediaEvent::RecordingStarted(recorder.path().to_path_buf()));
                        self.recorder = Some(recorder);
                    }
                    Err(error) => self.emit(MediaEvent::CommandFailed(error.to_string())),
                }
            }
            MediaCommand::StopRecording => self.finish_recording(Instant::now()),
            MediaCommand::SetRemote(remote) => self.rtp.set_remote(remote),
            MediaCommand::Hold(hold) => self.hold = hold,
            MediaCommand::Bridge { to, from } => self.bridge = Some((to, from)),
            MediaCommand::Close => {}
        }
    }

    async fn on_tick(&mut self, now: Instant) {
        self.check_inactivity(now);
        let due = self.pacer.poll(now);
        if due.skipped > 0 {
            self.rtp.note_skipped(due.skipped);
        }
        let codec = self.rtp.media().codec;
        for frame in due.send {
            if self.hold {
                self.rtp.note_silent_slot();
                continue;
            }
            let (payload, is_prompt) = match self.playback.next_frame() {
                Some((played, finished)) => {
                    if let Some(recorder) = &mut self.recorder {
                        recorder.put(
                            Side::Other,
                            frame * u64::from(SAMPLES_PER_FRAME),
                            &played.pcm,
                        );
                    }
                    if let Some(name) = finished {
                        self.stats.prompts_finished += 1;
                        self.emit(MediaEvent::PromptFinished(name));
                    }
                    (played.payload, true)
                }
                None => match self.next_bridged_frame() {
                    Some(pcm) => {
                        if let Some(recorder) = &mut self.recorder {
                            recorder.put(Side::Other, frame * u64::from(SAMPLES_PER_FRAME), &pcm);
                        }
                        let mut payload = Vec::with_capacity(pcm.len());
                        codec.encode_into(&pcm, &mut payload);
                        (Bytes::from(payload), true)
                    }
                    None => (silence_frame(codec), false),
                },
            };
            let datagram = self.rtp.build_frame(frame, payload, is_prompt);
            let late = Instant::now().saturating_duration_since(self.pacer.deadline_of(frame));
            self.stats.send_deviation.note(late);
            if self
                .rtp_socket
                .send_to(&datagram, self.rtp.send_address())
                .await
                .is_err()
            {
                self.stats.send_errors += 1;
            }
        }
        self.release_audio(now, false);
        if let Some(recorder) = &mut self.recorder {
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

    fn on_datagram(&mut self, datagram: &[u8], source: SocketAddr, now: Instant) {
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
        let mut released = Vec::new();
        if let Some((_, stream)) = &mut self.audio_stream {
            if drain {
                released.extend(stream.drain());
            } else {
                released.extend(std::iter::from_fn(|| stream.pop(now)));
            }
        }
        let arrival = self.pacer.media_sample_at(now);
        for packet in released {
            self.on_audio_packet(&packet, arrival);
        }
    }

    fn on_audio_packet(&mut self, packet: &Packet, arrival: u64) {
        let codec = self.rtp.media().codec;
        let mut pcm = Vec::with_capacity(packet.payload.len());
        codec.decode_into(&packet.payload, &mut pcm);
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
    }

    fn report_digit(&mut self, digit: DtmfDigit) {
        self.stats.digits += 1;
        self.emit(MediaEvent::Digit(digit));
    }

    fn finish_recording(&mut self, now: Instant) {
        if let Some(recorder) = self.recorder.take() {
            match recorder.finish(self.pacer.media_sample_at(now)) {
                Ok(path) => self.emit(MediaEvent::RecordingFinished(path)),
                Err(error) => self.emit(MediaEvent::CommandFailed(error.to_string())),
            }
        }
    }

    fn shut_down(&mut self, now: Instant) {
        self.release_audio(now, true);
        self.finish_recording(now);
        self.emit(MediaEvent::Stats(self.stats()));
    }
}

fn silence_frame(codec: G711Codec) -> Bytes {
    Bytes::from(vec![codec.silence_byte(); SAMPLES_PER_FRAME as usize])
}

fn add_reorder(total: &mut ReorderStats, stream: ReorderStats) {
    total.duplicates += stream.duplicates;
    total.late += stream.late;
    total.lost += stream.lost;
    total.restarts += stream.restarts;
}
