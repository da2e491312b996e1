//! The call registry: every call the dispatcher tracks, keyed by the one call handle that
//! SIP, the timers and the ACD all use — the caller's calls and the outgoing legs placed for
//! them (agents' phones, transfer targets).
//!
//! Owns per-call state; must not decide what happens to a call (the flow does).

use super::journal::Stage;
use super::lookup::Lookup;
use super::media_link::MediaLink;
use crate::config::Config;
use crate::ivr::{CallEngine, PlaybackId};
use crate::media::ports::PortLease;
use crate::sip::CallHandle;
use crate::store::Disposition;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Which media session an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leg {
    Caller(CallHandle),
    Outgoing(CallHandle),
}

/// What a call we placed for a caller is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LegPurpose {
    Agent(String),
    Transfer,
}

/// A call we placed for a caller.
pub(super) struct OutLeg {
    pub owner: CallHandle,
    pub purpose: LegPurpose,
    pub lease: Option<PortLease>,
    pub media: Option<MediaLink>,
    pub answered: bool,
    /// A desktop transferred the call away from this agent: when the leg ends the caller
    /// stays on the line.
    pub handed_on: bool,
}

/// A playback the IVR asked for, with the prompts still to finish.
pub(super) struct Playlist {
    pub id: PlaybackId,
    pub remaining: VecDeque<String>,
}

/// A caller's call.
pub(super) struct Call {
    /// The call's id in the journal and the logs.
    pub id: String,
    pub caller: String,
    pub dialled: String,
    /// The host the INVITE came from: its RTP is accepted with `media.latching = "nat"`.
    pub sip_host: std::net::IpAddr,
    /// The configuration the call started on (a reload does not change a running call).
    pub config: Arc<Config>,
    pub engine: CallEngine,
    pub lease: Option<PortLease>,
    pub media: Option<MediaLink>,
    pub lookup: Option<Lookup>,
    /// `Answered` was fed to the IVR.
    pub started: bool,
    /// Digits that came before the IVR started.
    pub early_digits: Vec<char>,
    pub playlists: VecDeque<Playlist>,
    pub legs: Vec<CallHandle>,
    pub stage: Stage,
    pub hung_up: bool,
    /// A gas leak (a priority line, or the IVR said so): exempt from the queue-wait limit.
    pub leak: bool,
    /// Why we ended the call ourselves (liveness limits), for its call row.
    pub ended_by: Option<Disposition>,
}

#[derive(Default)]
pub(super) struct Registry {
    pub calls: HashMap<CallHandle, Call>,
    pub legs: HashMap<CallHandle, OutLeg>,
}

impl Registry {
    /// The media session of a caller's call or an outgoing leg.
    pub(super) fn media_of(&self, handle: CallHandle) -> Option<&MediaLink> {
        match (self.calls.get(&handle), self.legs.get(&handle)) {
            (Some(call), _) => call.media.as_ref(),
            (None, Some(leg)) => leg.media.as_ref(),
            (None, None) => None,
        }
    }

    /// The leg still ringing `agent` for `owner`.
    pub(super) fn ringing_agent_leg(&self, owner: CallHandle, agent: &str) -> Option<CallHandle> {
        self.legs.iter().find_map(|(&handle, leg)| {
            (leg.owner == owner
                && !leg.answered
                && matches!(&leg.purpose, LegPurpose::Agent(a) if a == agent))
            .then_some(handle)
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.legs.is_empty()
    }
}
