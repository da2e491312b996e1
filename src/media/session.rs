//! One call's media as its owner sees it: a session on a leased port pair, driven by a media
//! worker thread (`super::workers`), that paces outgoing RTP on the 20 ms monotonic schedule
//! (prompt frames, or comfort silence when no prompt plays), receives RTP (and RTCP on the
//! odd port), reorders audio, detects DTMF, records, and talks to its owner only through
//! channels.
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
//! The recorder's disk work (creating, writing, the header update every second, finalising)
//! runs on its own thread, never on the media worker, which only hands over one block per
//! second of audio (see `super::recorder`); RTCP is received and counted but not sent.
//!
//! The session ends on `Close` or when the owner drops the [`MediaSession`]; on both paths the
//! recording is finalised where possible and the port lease is dropped, which returns the
//! ports to the pool, before the event channel closes (the recorder's thread holds a sender of
//! that channel until it has finalised the file).
//!
//! The per-frame work itself is the sans-IO [`super::session_core::SessionCore`]; the worker
//! only feeds it the clock, the commands and the datagrams, and sends what it builds.
//!
//! Owns the handle of one call's media; must not know about SIP dialogs or IVR menus.

use super::config::Latching;
use super::config::MediaConfig;
use super::dtmf::DtmfDigit;
use super::jitter::ReorderStats;
use super::pacer::SendDeviation;
use super::ports::PortLease;
use super::prompts::PromptLibrary;
use super::rtp_session::{NegotiatedMedia, RtpCounters, RtpSession, SourceFilter};
use super::session_core::SessionCore;
use super::workers::{self, NewSession};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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
}

impl MediaSession {
    /// Hands the session on the leased ports to a media worker (see `super::workers`).
    pub fn start(
        mut lease: PortLease,
        prompts: Arc<PromptLibrary>,
        media: NegotiatedMedia,
        options: SessionOptions,
    ) -> Result<MediaSession, SessionStartError> {
        let local_rtp = lease.rtp_addr();
        let fail = |source| SessionStartError {
            local: local_rtp,
            source,
        };
        let (rtp_socket, rtcp_socket) = lease.take_sockets().ok_or_else(|| {
            fail(std::io::Error::other(
                "the port lease's sockets were already taken by another session",
            ))
        })?;
        let workers = workers::global().map_err(fail)?;
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let rtp = RtpSession::new(media, options.source_filter(&media));
        let ssrc = rtp.ssrc();
        workers
            .add(NewSession {
                core: SessionCore::new(rtp, prompts, options, Instant::now(), event_tx),
                rtp: rtp_socket,
                rtcp: rtcp_socket,
                commands: command_rx,
                lease,
            })
            .map_err(fail)?;
        Ok(MediaSession {
            commands: command_tx,
            events: event_rx,
            local_rtp,
            ssrc,
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

    /// The next event; `None` once the session has ended and all events were read.
    /// Cancel-safe (usable in `tokio::select!`).
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        self.events.recv().await
    }

    /// Closes the session and waits until it has ended (recording finalised, ports freed).
    /// Returns the events not yet read, the final `Stats` among them.
    pub async fn close(mut self) -> Vec<MediaEvent> {
        let _ = self.commands.send(MediaCommand::Close);
        let mut rest = Vec::new();
        // The event channel closes only after the worker has freed the ports and the
        // recorder's thread has finalised the file: both hold a sender until then.
        while let Some(event) = self.events.recv().await {
            rest.push(event);
        }
        rest
    }
}
