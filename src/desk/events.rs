//! What desktops receive: agent states, the events of an agent's stream, and the snapshot.
//!
//! Owns the event vocabulary; the wire mapping is the API's.

use std::sync::Arc;

/// An agent's state. RINGING, ON_CALL and WRAP_UP are the system's: only calls move an agent
/// into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    LoggedOut,
    Ready,
    /// With its reason code (configured, or a system code).
    NotReady(String),
    Ringing,
    OnCall,
    WrapUp,
}

impl AgentState {
    /// Ringing, on a call or in wrap-up: a requested NOT_READY or LOGGED_OUT waits.
    pub fn is_call_state(&self) -> bool {
        matches!(
            self,
            AgentState::Ringing | AgentState::OnCall | AgentState::WrapUp
        )
    }

    /// Lowercase name, as the README and logs write it.
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::Ready => "ready",
            AgentState::NotReady(_) => "not_ready",
            AgentState::Ringing => "ringing",
            AgentState::OnCall => "on_call",
            AgentState::WrapUp => "wrap_up",
        }
    }

    pub fn reason_code(&self) -> Option<&str> {
        match self {
            AgentState::NotReady(code) => Some(code),
            _ => None,
        }
    }
}

/// A state an agent (or an admin for them) may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Ready,
    NotReady(String),
    LoggedOut,
}

impl Requested {
    pub fn as_state(&self) -> AgentState {
        match self {
            Requested::Ready => AgentState::Ready,
            Requested::NotReady(code) => AgentState::NotReady(code.clone()),
            Requested::LoggedOut => AgentState::LoggedOut,
        }
    }
}

/// Why an offer stopped ringing the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    AnsweredElsewhere,
    CallerHungUp,
    RingTimeout,
    Transferred,
}

/// Who ended the agent's conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HungUpBy {
    Caller,
    Agent,
    /// The daemon (shutdown, media failure).
    System,
    /// The agent transferred the call away.
    Transfer,
}

/// Notes an agent handed over with a transferred call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverNote {
    pub from_agent: String,
    pub notes: String,
}

/// A call offered to an agent: the screen pop `P` is opaque to the desk (the store builds
/// it, the API renders it).
#[derive(Debug)]
pub struct Offer<P> {
    pub call: String,
    pub queue: String,
    pub pop: Arc<P>,
    /// Unix milliseconds at which the ring times out.
    pub ring_deadline_ms: i64,
    pub handover: Vec<HandoverNote>,
}

/// Where the agent's current call stands, for snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    Ringing,
    Talking { since_ms: i64 },
    WrapUp { deadline_ms: i64 },
}

/// The agent as a desktop needs it after (re)connecting.
#[derive(Debug)]
pub struct Snapshot<P> {
    pub state: AgentState,
    pub version: u64,
    /// A NOT_READY or LOGGED_OUT waiting for the call and its wrap-up to end.
    pub pending: Option<Requested>,
    pub call: Option<(Arc<Offer<P>>, CallPhase)>,
}

/// Why a desktop must start over from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// The daemon restarted: the epoch changed.
    EpochChanged,
    /// The history no longer holds the events after the seq asked for (or never had it).
    HistoryCompacted,
    /// This subscriber fell `subscriber_queue` events behind; it is closed.
    TooSlow,
}

#[derive(Debug)]
pub enum EventKind<P> {
    StateChanged {
        from: AgentState,
        to: AgentState,
        version: u64,
    },
    Offered(Arc<Offer<P>>),
    OfferWithdrawn {
        call: String,
        reason: WithdrawReason,
    },
    Connected {
        call: String,
    },
    Ended {
        call: String,
        who: HungUpBy,
        duration_ms: i64,
    },
    /// Sent again with the new deadline when the wrap-up is extended.
    WrapUpStarted {
        call: String,
        deadline_ms: i64,
    },
    SurveyResult {
        call: String,
        rating: u8,
    },
    TicketChanged {
        call: String,
        name: String,
        status: String,
    },
    Snapshot(Arc<Snapshot<P>>),
    ResyncRequired(ResyncReason),
    Heartbeat,
}

impl<P> Clone for EventKind<P> {
    fn clone(&self) -> Self {
        match self {
            EventKind::StateChanged { from, to, version } => EventKind::StateChanged {
                from: from.clone(),
                to: to.clone(),
                version: *version,
            },
            EventKind::Offered(offer) => EventKind::Offered(offer.clone()),
            EventKind::OfferWithdrawn { call, reason } => EventKind::OfferWithdrawn {
                call: call.clone(),
                reason: *reason,
            },
            EventKind::Connected { call } => EventKind::Connected { call: call.clone() },
            EventKind::Ended {
                call,
                who,
                duration_ms,
            } => EventKind::Ended {
                call: call.clone(),
                who: *who,
                duration_ms: *duration_ms,
            },
            EventKind::WrapUpStarted { call, deadline_ms } => EventKind::WrapUpStarted {
                call: call.clone(),
                deadline_ms: *deadline_ms,
            },
            EventKind::SurveyResult { call, rating } => EventKind::SurveyResult {
                call: call.clone(),
                rating: *rating,
            },
            EventKind::TicketChanged { call, name, status } => EventKind::TicketChanged {
                call: call.clone(),
                name: name.clone(),
                status: status.clone(),
            },
            EventKind::Snapshot(s) => EventKind::Snapshot(s.clone()),
            EventKind::ResyncRequired(r) => EventKind::ResyncRequired(*r),
            EventKind::Heartbeat => EventKind::Heartbeat,
        }
    }
}

/// One event of an agent's stream. History events have gapless seqs per agent; `Snapshot`,
/// `ResyncRequired` and `Heartbeat` are per subscriber and carry the latest seq (resume from
/// it).
#[derive(Debug)]
pub struct AgentEvent<P> {
    pub epoch: u64,
    pub seq: u64,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub kind: EventKind<P>,
}

impl<P> Clone for AgentEvent<P> {
    fn clone(&self) -> Self {
        AgentEvent {
            epoch: self.epoch,
            seq: self.seq,
            at_ms: self.at_ms,
            kind: self.kind.clone(),
        }
    }
}
