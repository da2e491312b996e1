//! What goes in and out of a call's IVR engine: the events the driver feeds it and the
//! actions it returns (prompts, recording, timers, queueing, transfer, hang-up, ticket
//! updates, consent).
//!
//! Owns the vocabulary between the engine and its driver; must not hold behaviour.

use crate::tickets::Category;
use crate::tickets::callback::Rating;
use chrono::DateTime;
use chrono_tz::Tz;
use std::time::Instant;

/// Identifies one playback, so a late "finished" for an old prompt is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaybackId(pub u64);

/// Identifies one timer of this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(pub u64);

/// Queue priority of leak calls; the ACD also puts every leak call ahead of every other call.
pub const LEAK_PRIORITY: u8 = u8::MAX;

/// What the driver knows when the call is answered.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The SIP Call-ID (or any id the driver uses for this call).
    pub call_id: String,
    /// Called number (DID).
    pub did: String,
    /// Caller number, unmasked: only goes into the ticket, never into logs.
    pub caller: String,
    /// Wall-clock time of the answer in the hotline's time zone; picks the flow.
    pub local_time: DateTime<Tz>,
    /// Whether this caller already has an open ticket (for `open_ticket_check` nodes).
    pub has_open_ticket: bool,
    /// Prompt names of the outage announcements active for this caller, played before the
    /// first menu.
    pub announcements: Vec<String>,
    /// The special-group flag of the caller's household file (`elderly_alone`, …), if any.
    pub special_group: Option<String>,
}

/// What the ACD said about this call, as the driver relays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueResult {
    /// An agent is being rung.
    Offered { agent: String },
    /// Nobody free yet; the caller waits.
    NoAgent,
    /// Waited long enough: hand the call to `uri`.
    Overflow { uri: String },
    /// Tell the caller their place: `ahead` callers before them, about `wait_minutes`.
    Position {
        ahead: u32,
        wait_minutes: Option<u32>,
    },
}

#[derive(Debug, Clone)]
pub enum Event {
    Answered {
        info: CallInfo,
        now: Instant,
    },
    Digit {
        digit: char,
        now: Instant,
    },
    PromptFinished {
        id: PlaybackId,
        now: Instant,
    },
    TimerFired {
        id: TimerId,
        now: Instant,
    },
    Queue {
        result: QueueResult,
        now: Instant,
    },
    /// The agent rung by the ACD picked up.
    AgentAnswered {
        agent: String,
        now: Instant,
    },
    /// The agent's leg ended while the caller was with them: the agent hung up first, or the
    /// agent's desk handed the caller over to the survey (the driver then hung the agent up).
    /// The caller hears the survey when it applies, else the call ends.
    AgentLeft {
        now: Instant,
    },
    /// An agent's desktop transferred the caller (`to`): the driver hung the agent's leg up.
    /// `queue`, `priority` and `leak` are the call's as the desk has them (`queue` the target
    /// queue for a transfer to a queue, else the call's own). The caller waits again as any
    /// waiting caller, hearing the wait prompt (a leak caller the safety advice): to a queue or
    /// an agent, the engine asks an `Enqueue` (the agent's named), so the ACD, the desk and the
    /// queue-wait limit treat it as a call that just queued, until the next `AgentAnswered`;
    /// to a URI, a `Transfer` (the IVR's overflow path: the prompts go on while it rings,
    /// `TransferAnswered` connects, `TransferFailed` puts the call back in `queue` with its
    /// priority). Only a connected caller is requeued.
    Requeued {
        queue: String,
        priority: u8,
        leak: bool,
        to: HandOver,
        now: Instant,
    },
    /// The transfer target picked up (the driver has bridged the call).
    TransferAnswered {
        now: Instant,
    },
    /// The transfer target did not answer or refused.
    TransferFailed {
        now: Instant,
    },
    CallerHungUp {
        now: Instant,
    },
}

/// Where a desktop's transfer sends a connected caller (see `Event::Requeued`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOver {
    /// To wait in the event's `queue`.
    Queue,
    /// Offered to this agent alone first; untaken, it waits in the event's `queue`.
    Agent(String),
    /// Called; the caller hears the wait prompts meanwhile.
    Uri(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    Given,
    Refused,
    NotAsked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentHow {
    /// Heard the notice and stayed on the line.
    StayedOnLine,
    PressedDigit,
    /// Skipped the notice with the leak digit.
    LeakDefault,
    /// Opt-in notice, no key pressed.
    NoResponse,
    /// Policy `off`.
    PolicyOff,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub decision: ConsentDecision,
    pub how: ConsentHow,
    pub at: DateTime<Tz>,
}

/// Changes to the call's draft ticket (工单).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketUpdate {
    /// At answer: every call gets a draft ticket.
    CreateDraft {
        call_id: String,
        caller: String,
        called: String,
        started_at: DateTime<Tz>,
        flow: String,
    },
    /// The caller moved on from `node`, with the key or entry that made it (`None` when the
    /// step needed none), for the ticket's IVR path.
    PathStep {
        node: String,
        input: Option<String>,
    },
    SetCategory {
        category: Category,
        /// Leak calls: dispatch before everything else.
        top_priority: bool,
    },
    /// A collected entry, e.g. `account`.
    Variable {
        name: String,
        value: String,
    },
    CallEnded {
        at: DateTime<Tz>,
    },
}

/// The caller's answer to the post-call survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurveyAnswer {
    pub rating: Rating,
    /// The key pressed (`ivr.survey.<rating>.digit` when it was answered).
    pub key: char,
    pub at: DateTime<Tz>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play the prompts (`sounds/zh-CN/<name>.wav`) in order. With `barge_in` the media layer
    /// may cut the playback at any key; otherwise the engine sends `StopPlayback` when a key
    /// matters (the leak digit always does).
    Play {
        id: PlaybackId,
        prompts: Vec<String>,
        barge_in: bool,
    },
    StopPlayback,
    StartRecording,
    StopRecording,
    SetTimer {
        id: TimerId,
        at: Instant,
    },
    CancelTimer {
        id: TimerId,
    },
    /// This call is a leak: the SIP layer exempts it from the concurrent-call limit.
    PriorityCall,
    /// Put the call in an ACD queue (again: a call already queued moves). `agent`: a desktop's
    /// transfer to that agent, offered to them alone first (the ACD's `CallDirected`).
    Enqueue {
        queue: String,
        priority: u8,
        leak: bool,
        category: Category,
        agent: Option<String>,
    },
    /// The caller left the queue (hung up): tell the ACD.
    Dequeue,
    /// Connect the caller with the agent who answered.
    Bridge {
        agent: String,
    },
    /// Call `uri` and bridge the caller when it answers; report `TransferAnswered` or
    /// `TransferFailed`. The caller stays with the engine (and keeps hearing prompts) meanwhile.
    Transfer {
        uri: String,
    },
    /// End the call (the goodbye prompt, if any, has finished).
    HangUp,
    Ticket(TicketUpdate),
    RecordConsent(ConsentRecord),
    /// The caller rated the service: for the call row, its ticket and the agent's desk.
    SurveyResult(SurveyAnswer),
    /// The call entered a node: a configured node id, or the built-in `leak` fast track and
    /// `survey` (for metrics; changes nothing).
    NodeEntered {
        node: String,
    },
}
