//! The ticket life cycle (hotline-rules §4): who may move a ticket from which state to which,
//! and within which limits — dispatch, accept, reply, returns ("first time return, second
//! time adjudicate"), extensions and closing. Urges, callbacks and complaint levels have
//! their own modules but share the types here.
//!
//! Every operation is a pure function: (facts, actor, request, now, rules) → either a
//! `Refusal` or a `Transition` (new facts, new deadlines, audit events, follow-ups for the
//! caller to carry out). Must not touch the database, the clock or the network.
//!
//! States: draft → dispatched → accepted → replied → callback → closed, with
//! dispatched → returned (unit return) → dispatched again; replied/callback → reopened
//! (first centre return or first 'unsatisfied') → replied again; a second centre return or a
//! second 'unsatisfied' → adjudication (supervisor), who dispatches again or closes;
//! accepted/reopened ⇄ extension_requested.

use crate::tickets::callback::{self, CallbackPlan};
use crate::tickets::config::Rules;
use crate::tickets::deadlines::{self, Deadlines};
use crate::tickets::model::{Category, Channel, ComplaintLevel, Status};
use chrono::{DateTime, Utc};
use std::fmt;
use uuid::Uuid;

/// What the rules need to know about a ticket; the store keeps these columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub id: Uuid,
    pub status: Status,
    pub category: Category,
    pub channel: Channel,
    /// Only for complaints; `None` reads as L3.
    pub complaint_level: Option<ComplaintLevel>,
    /// A supervisor set the level by hand; automatic levelling leaves it alone.
    pub complaint_level_overridden: bool,
    /// A supervisor's check of a complaint (000 §14.6, 001 §8): `None` unchecked. Invalid
    /// complaints do not count against the unit.
    pub complaint_valid: Option<bool>,
    /// A service application the unit refused, with its explanation as the reply.
    pub application_refused: bool,
    /// The responsible unit it is (or was last) dispatched to.
    pub unit: Option<String>,
    /// The area (district, estate) it is in; rural areas may have their own limits.
    pub area: String,
    pub created_at: DateTime<Utc>,
    /// Since when the centre owes a dispatch: intake, or the unit's return.
    pub awaiting_dispatch_since: DateTime<Utc>,
    /// The latest dispatch.
    pub dispatched_at: Option<DateTime<Utc>>,
    /// The latest dispatch or reopening: contact, finish and investigation count from here.
    pub handling_started_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub contacted_at: Option<DateTime<Utc>>,
    /// When the unit reported being on site (leaks).
    pub on_site_at: Option<DateTime<Utc>>,
    pub replied_at: Option<DateTime<Utc>>,
    /// A granted extension's new finish time.
    pub extended_finish: Option<DateTime<Utc>>,
    pub pending_extension: Option<PendingExtension>,
    /// Centre returns so far: the second goes to adjudication.
    pub centre_returns: u32,
    /// 'Unsatisfied' callbacks so far: the second goes to the supervisor.
    pub unsatisfied_callbacks: u32,
    /// Urge tickets dispatched for this ticket so far.
    pub urges: u32,
    /// Decided when the unit replies; `None` before that.
    pub callback_plan: Option<CallbackPlan>,
    /// Failed callback attempts (unreachable) since the latest reply.
    pub callback_attempts: u32,
    pub last_callback_attempt_at: Option<DateTime<Utc>>,
    /// When to try the next callback (set on reply and after an unreachable attempt).
    pub next_callback_at: Option<DateTime<Utc>>,
    /// The caller said at intake they want no callback.
    pub callback_declined: bool,
    /// A repeat of an earlier demand (重复件): always a human callback.
    pub repeat: bool,
    /// A referred item (转办件, 003 §11): always a human callback.
    pub referred: bool,
    /// A daily-report key item (日报重点件, 003 §11): always a human callback.
    pub daily_report_key_item: bool,
    /// The caller insisted on handling at night, lifting the configured night hold.
    pub night_dispatch_insisted: bool,
    /// The time agreed with the caller for the callback (约时, 000 §14.9).
    pub agreed_callback_at: Option<DateTime<Utc>>,
}

impl TicketFacts {
    /// A fresh draft, as every call leaves one.
    pub fn new_draft(
        id: Uuid,
        category: Category,
        channel: Channel,
        created_at: DateTime<Utc>,
    ) -> TicketFacts {
        TicketFacts {
            id,
            status: Status::Draft,
            category,
            channel,
            complaint_level: (category == Category::Complaint).then_some(ComplaintLevel::L3),
            complaint_level_overridden: false,
            complaint_valid: None,
            application_refused: false,
            unit: None,
            area: String::new(),
            created_at,
            awaiting_dispatch_since: created_at,
            dispatched_at: None,
            handling_started_at: None,
            accepted_at: None,
            contacted_at: None,
            on_site_at: None,
            replied_at: None,
            extended_finish: None,
            pending_extension: None,
            centre_returns: 0,
            unsatisfied_callbacks: 0,
            urges: 0,
            callback_plan: None,
            callback_attempts: 0,
            last_callback_attempt_at: None,
            next_callback_at: None,
            callback_declined: false,
            repeat: false,
            referred: false,
            daily_report_key_item: false,
            night_dispatch_insisted: false,
            agreed_callback_at: None,
        }
    }

    /// Back to the unit for another handling: the clocks restart and the reply is void.
    pub(crate) fn restart_handling(&mut self, now: DateTime<Utc>) {
        self.status = Status::Reopened;
        self.handling_started_at = Some(now);
        self.replied_at = None;
        self.extended_finish = None;
        self.pending_extension = None;
        self.callback_plan = None;
        self.callback_attempts = 0;
        self.last_callback_attempt_at = None;
        self.next_callback_at = None;
    }
}

/// An extension a unit asked for and the centre has not yet decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingExtension {
    pub requested_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
    /// The state the ticket returns to once decided.
    pub resume: Status,
}

/// Who acts. Units act only on tickets dispatched to them; integrations only on tickets of
/// their own channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The daemon itself (automatic complaint levels).
    System,
    CentreAgent {
        id: String,
    },
    /// A centre supervisor: adjudication, overrides, closing anything.
    CentreAdmin {
        id: String,
    },
    Unit {
        unit: String,
        user: String,
    },
    Integration {
        channel: Channel,
        id: String,
    },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("the system"),
            Actor::CentreAgent { id } => write!(f, "centre agent {id}"),
            Actor::CentreAdmin { id } => write!(f, "centre supervisor {id}"),
            Actor::Unit { unit, user } => write!(f, "unit {unit} (user {user})"),
            Actor::Integration { channel, id } => write!(f, "integration {id} ({channel})"),
        }
    }
}

/// The operations, named as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Dispatch,
    Accept,
    Reply,
    Return,
    RequestExtension,
    DecideExtension,
    Urge,
    RecordCallback,
    Close,
    SetComplaintLevel,
    ReportOnSite,
    ClassifyComplaint,
    RefuseApplication,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Dispatch => "dispatch",
            Operation::Accept => "accept",
            Operation::Reply => "reply to",
            Operation::Return => "return",
            Operation::RequestExtension => "request an extension for",
            Operation::DecideExtension => "decide the extension of",
            Operation::Urge => "urge",
            Operation::RecordCallback => "record a callback for",
            Operation::Close => "close",
            Operation::SetComplaintLevel => "set the complaint level of",
            Operation::ReportOnSite => "report arrival on site for",
            Operation::ClassifyComplaint => "classify the complaint of",
            Operation::RefuseApplication => "refuse the service application of",
        })
    }
}

/// Why an operation was refused; the API maps `IllegalTransition` to FAILED_PRECONDITION,
/// `WrongActor` to PERMISSION_DENIED, the rest to FAILED_PRECONDITION or INVALID_ARGUMENT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("cannot {operation} a ticket that is {status} ({}); check its state first", .status.label())]
    IllegalTransition {
        operation: Operation,
        status: Status,
    },
    #[error("{actor} may not {operation} this ticket: {why}")]
    WrongActor {
        operation: Operation,
        actor: String,
        why: &'static str,
    },
    #[error("too late to {operation} this ticket: the limit was {limit}; {why}")]
    TooLate {
        operation: Operation,
        limit: DateTime<Utc>,
        why: String,
    },
    #[error("too early to {operation} this ticket: not before {earliest}; {why}")]
    TooEarly {
        operation: Operation,
        earliest: DateTime<Utc>,
        why: String,
    },
    #[error("cannot {operation} this ticket: {why}")]
    Invalid { operation: Operation, why: String },
}

/// What happened, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Dispatched,
    Accepted,
    Replied,
    ReturnedByUnit,
    ReturnedByCentre,
    SentToAdjudication,
    ExtensionRequested,
    ExtensionGranted,
    ExtensionDenied,
    UrgeExplained,
    UrgeDispatched,
    InformationAdded,
    UrgeToSupervisor,
    CallbackUnreachable,
    CallbackDeclined,
    CallbackCallLater,
    CallbackSampled,
    CallbackSatisfied,
    CallbackUnsatisfied,
    Closed,
    ComplaintLevelChanged,
    ComplaintClassified,
    ApplicationRefused,
    OnSite,
}

impl AuditAction {
    pub fn code(self) -> &'static str {
        match self {
            AuditAction::Dispatched => "dispatched",
            AuditAction::Accepted => "accepted",
            AuditAction::Replied => "replied",
            AuditAction::ReturnedByUnit => "returned_by_unit",
            AuditAction::ReturnedByCentre => "returned_by_centre",
            AuditAction::SentToAdjudication => "sent_to_adjudication",
            AuditAction::ExtensionRequested => "extension_requested",
            AuditAction::ExtensionGranted => "extension_granted",
            AuditAction::ExtensionDenied => "extension_denied",
            AuditAction::UrgeExplained => "urge_explained",
            AuditAction::UrgeDispatched => "urge_dispatched",
            AuditAction::InformationAdded => "information_added",
            AuditAction::UrgeToSupervisor => "urge_to_supervisor",
            AuditAction::CallbackUnreachable => "callback_unreachable",
            AuditAction::CallbackDeclined => "callback_declined",
            AuditAction::CallbackSampled => "callback_sampled",
            AuditAction::CallbackCallLater => "callback_call_later",
            AuditAction::CallbackSatisfied => "callback_satisfied",
            AuditAction::CallbackUnsatisfied => "callback_unsatisfied",
            AuditAction::Closed => "closed",
            AuditAction::ComplaintLevelChanged => "complaint_level_changed",
            AuditAction::OnSite => "on_site",
            AuditAction::ComplaintClassified => "complaint_classified",
            AuditAction::ApplicationRefused => "application_refused",
        }
    }
}

/// One audit record: who, when, what, old → new state, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: AuditAction,
    pub from: Status,
    pub to: Status,
    pub reason: Option<String>,
    /// Extra facts: the unit, the new level, the new deadline, the ratings.
    pub detail: Option<String>,
}

/// Work the caller must do after storing a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Create an urge ticket linked to `original` and dispatch it by `dispatch_due`.
    DispatchUrgeTicket {
        original: Uuid,
        unit: Option<String>,
        dispatch_due: DateTime<Utc>,
        note: String,
    },
    /// What the IVR or the agent tells the caller (Mandarin).
    ExplainToCaller { message: String },
    /// Put the ticket in the supervisor's queue.
    SupervisorQueue { reason: String },
    /// A new demand raised in a callback: open a new ticket for it.
    NewTicketFromCallback { description: String },
}

/// An accepted operation's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub facts: TicketFacts,
    pub deadlines: Deadlines,
    pub events: Vec<AuditEvent>,
    pub follow_ups: Vec<FollowUp>,
}

impl Transition {
    /// A transition with one audit event from `old`'s state to `new`'s.
    pub(crate) fn new(
        old: &TicketFacts,
        new: TicketFacts,
        actor: &Actor,
        action: AuditAction,
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> Transition {
        let event = AuditEvent {
            at: now,
            actor: actor.clone(),
            action,
            from: old.status,
            to: new.status,
            reason: None,
            detail: None,
        };
        Transition {
            deadlines: deadlines::compute(&new, rules),
            facts: new,
            events: vec![event],
            follow_ups: Vec::new(),
        }
    }

    /// Records why on the audit event; a blank reason records none.
    pub(crate) fn because(mut self, reason: &str) -> Transition {
        let reason = reason.trim();
        if let Some(event) = self.events.last_mut()
            && !reason.is_empty()
        {
            event.reason = Some(reason.to_owned());
        }
        self
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Transition {
        if let Some(event) = self.events.last_mut() {
            event.detail = Some(detail.into());
        }
        self
    }

    pub(crate) fn with(mut self, follow_up: FollowUp) -> Transition {
        self.follow_ups.push(follow_up);
        self
    }
}

pub(crate) fn illegal(operation: Operation, status: Status) -> Refusal {
    Refusal::IllegalTransition { operation, status }
}

pub(crate) fn wrong_actor(operation: Operation, actor: &Actor, why: &'static str) -> Refusal {
    Refusal::WrongActor {
        operation,
        actor: actor.to_string(),
        why,
    }
}

/// A non-empty reason, or a refusal saying one is needed.
pub(crate) fn required_text(operation: Operation, what: &str, text: &str) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::Invalid {
            operation,
            why: format!("{what} is required"),
        });
    }
    Ok(())
}

pub(crate) fn require_centre(operation: Operation, actor: &Actor) -> Result<(), Refusal> {
    match actor {
        Actor::CentreAgent { .. } | Actor::CentreAdmin { .. } => Ok(()),
        _ => Err(wrong_actor(operation, actor, "only the centre does this")),
    }
}

pub(crate) fn require_admin(operation: Operation, actor: &Actor) -> Result<(), Refusal> {
    match actor {
        Actor::CentreAdmin { .. } => Ok(()),
        _ => Err(wrong_actor(
            operation,
            actor,
            "only a centre supervisor does this",
        )),
    }
}

/// The centre, or an integration acting on a ticket of its own channel.
pub(crate) fn require_centre_or_own_channel(
    operation: Operation,
    actor: &Actor,
    facts: &TicketFacts,
) -> Result<(), Refusal> {
    match actor {
        Actor::Integration { channel, .. } if *channel == facts.channel => Ok(()),
        Actor::Integration { .. } => Err(wrong_actor(
            operation,
            actor,
            "integrations act only on tickets of their own channel",
        )),
        _ => require_centre(operation, actor),
    }
}

pub(crate) fn require_assigned_unit(
    operation: Operation,
    actor: &Actor,
    facts: &TicketFacts,
) -> Result<(), Refusal> {
    match actor {
        Actor::Unit { unit, .. } if facts.unit.as_deref() == Some(unit.as_str()) => Ok(()),
        Actor::Unit { .. } => Err(wrong_actor(
            operation,
            actor,
            "the ticket is not dispatched to this unit",
        )),
        _ => Err(wrong_actor(
            operation,
            actor,
            "only the responsible unit does this",
        )),
    }
}

/// Until when a unit may still return a ticket dispatched at `dispatched_at`.
pub fn return_limit(dispatched_at: DateTime<Utc>, rules: &Rules) -> DateTime<Utc> {
    rules
        .config
        .return_within
        .after(dispatched_at, &rules.calendar)
}

/// A dispatched ticket the unit has not returned in time counts as accepted (000 §15.3).
pub fn counts_as_accepted(facts: &TicketFacts, now: DateTime<Utc>, rules: &Rules) -> bool {
    match (facts.status, facts.dispatched_at) {
        (Status::Accepted, _) => true,
        (Status::Dispatched, Some(at)) => now > return_limit(at, rules),
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRequest {
    pub unit: String,
}

/// DispatchTicket: the centre sends a draft (or a returned ticket) to a unit; from
/// adjudication only a supervisor may.
pub fn dispatch(
    facts: &TicketFacts,
    actor: &Actor,
    request: &DispatchRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::Dispatch;
    match facts.status {
        Status::Draft | Status::Returned => require_centre(op, actor)?,
        Status::Adjudication => require_admin(op, actor)?,
        status => return Err(illegal(op, status)),
    }
    required_text(op, "the responsible unit", &request.unit)?;
    let mut new = facts.clone();
    new.status = Status::Dispatched;
    new.unit = Some(request.unit.trim().to_owned());
    new.dispatched_at = Some(now);
    new.handling_started_at = Some(now);
    new.accepted_at = None;
    new.contacted_at = None;
    new.on_site_at = None;
    new.replied_at = None;
    new.extended_finish = None;
    new.pending_extension = None;
    new.callback_plan = None;
    new.next_callback_at = None;
    let detail = format!("to unit {}", request.unit.trim());
    Ok(Transition::new(facts, new, actor, AuditAction::Dispatched, now, rules).detail(detail))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptRequest {
    /// The unit has already been in touch with the customer (meets the contact limit).
    pub contacted_customer: bool,
}

/// AcceptTicket: the responsible unit confirms it handles the ticket.
pub fn accept(
    facts: &TicketFacts,
    actor: &Actor,
    request: &AcceptRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::Accept;
    require_assigned_unit(op, actor, facts)?;
    if facts.status != Status::Dispatched {
        return Err(illegal(op, facts.status));
    }
    let mut new = facts.clone();
    new.status = Status::Accepted;
    new.accepted_at = Some(now);
    if request.contacted_customer {
        new.contacted_at.get_or_insert(now);
    }
    Ok(Transition::new(
        facts,
        new,
        actor,
        AuditAction::Accepted,
        now,
        rules,
    ))
}

/// ReportOnSite: the responsible unit reports that its crew is on site (a leak's on-site
/// deadline stops). Being on site means the customer has been contacted and the ticket
/// accepted.
pub fn report_on_site(
    facts: &TicketFacts,
    actor: &Actor,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::ReportOnSite;
    require_assigned_unit(op, actor, facts)?;
    if !matches!(
        facts.status,
        Status::Dispatched | Status::Accepted | Status::ExtensionRequested | Status::Reopened
    ) {
        return Err(illegal(op, facts.status));
    }
    if let Some(at) = facts.on_site_at {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!("the unit already reported being on site at {at}"),
        });
    }
    let mut new = facts.clone();
    if new.status == Status::Dispatched {
        new.status = Status::Accepted;
    }
    new.on_site_at = Some(now);
    new.accepted_at.get_or_insert(now);
    new.contacted_at.get_or_insert(now);
    Ok(Transition::new(
        facts,
        new,
        actor,
        AuditAction::OnSite,
        now,
        rules,
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRequest {
    pub summary: String,
}

/// ReplyTicket: the unit reports its result; replying implies it accepted and contacted the
/// customer. A pending extension lapses. Decides whether and how the customer is called
/// back and schedules the first attempt.
pub fn reply(
    facts: &TicketFacts,
    actor: &Actor,
    request: &ReplyRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::Reply;
    require_assigned_unit(op, actor, facts)?;
    match facts.status {
        Status::Dispatched | Status::Accepted | Status::Reopened | Status::ExtensionRequested => {}
        status => return Err(illegal(op, status)),
    }
    required_text(op, "a reply summary", &request.summary)?;
    check_reply_says_what_was_done(&request.summary, rules)?;
    let mut new = facts.clone();
    new.status = Status::Replied;
    new.replied_at = Some(now);
    new.accepted_at.get_or_insert(now);
    new.contacted_at.get_or_insert(now);
    new.pending_extension = None;
    new.callback_attempts = 0;
    new.last_callback_attempt_at = None;
    let plan = callback::plan(&new, rules);
    new.callback_plan = Some(plan);
    // A callback, or the centre's answer to the caller, goes on the callback agents' list.
    // At the time agreed with the caller (约时) when there is one.
    let due = deadlines::compute(&new, rules);
    let call_due = match plan.human() {
        Some(_) => due.callback,
        None => due.reply_to_caller,
    };
    new.next_callback_at = call_due.map(|d| match new.agreed_callback_at {
        Some(agreed) if agreed > now => callback::first_allowed(agreed, rules),
        _ => callback::schedule_attempt(now, Some(d.due), rules),
    });
    Ok(
        Transition::new(facts, new, actor, AuditAction::Replied, now, rules)
            .detail(format!("callback {}", plan.code())),
    )
}

/// RefuseApplication: the unit does not take on a service application and explains why to
/// the customer within `refusal_within` (2 working days) of dispatch (000 §14.5 "不予受理的
/// 向客户说明理由，在2个工作日内反馈结果"). The explanation is the unit's reply: the centre
/// calls back as after any reply.
pub fn refuse_application(
    facts: &TicketFacts,
    actor: &Actor,
    request: &ReplyRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::RefuseApplication;
    require_assigned_unit(op, actor, facts)?;
    if facts.category != Category::ServiceApplication {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!(
                "only service applications are refused; a {} ticket is replied to",
                facts.category
            ),
        });
    }
    let Some(dispatched_at) = facts.dispatched_at else {
        return Err(illegal(op, facts.status));
    };
    let limit = rules
        .config
        .refusal_within
        .after(dispatched_at, &rules.calendar);
    if now > limit {
        return Err(Refusal::TooLate {
            operation: op,
            limit,
            why: format!(
                "a refusal is explained within {} of dispatch; handle the application",
                rules.config.refusal_within
            ),
        });
    }
    let mut transition = reply(facts, actor, request, now, rules)?;
    transition.facts.application_refused = true;
    if let Some(event) = transition.events.last_mut() {
        event.action = AuditAction::ApplicationRefused;
        event.reason = Some(request.summary.trim().to_owned());
    }
    Ok(transition)
}

/// A reply states what was done (004 §3): long enough, and more than an empty phrase such as
/// "已处理".
fn check_reply_says_what_was_done(summary: &str, rules: &Rules) -> Result<(), Refusal> {
    let config = &rules.config.reply;
    let bare = |text: &str| -> String {
        text.chars()
            .filter(|c| {
                !c.is_whitespace()
                    && !c.is_ascii_punctuation()
                    && !"。，、！？；：…～·".contains(*c)
            })
            .collect::<String>()
            .to_lowercase()
    };
    let said = bare(summary);
    let refuse = |why: String| Refusal::Invalid {
        operation: Operation::Reply,
        why,
    };
    if let Some(phrase) = config.empty_phrases.iter().find(|p| bare(p) == said) {
        return Err(refuse(format!(
            "a reply of only {phrase:?} does not say what was done; state the work and its result"
        )));
    }
    let chars = u32::try_from(summary.trim().chars().count()).unwrap_or(u32::MAX);
    if chars < config.min_chars {
        return Err(refuse(format!(
            "a reply needs at least {} characters saying what was done and its result",
            config.min_chars
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRequest {
    pub reason: String,
}

/// ReturnTicket. By the unit: not its job or information missing, only while dispatched and
/// within the return limit (1 working day), else it counts as accepted. By the centre: the
/// reply misses demands or the callback contradicts it — the first time back to the unit,
/// the second time to adjudication ("first time return, second time adjudicate").
pub fn return_ticket(
    facts: &TicketFacts,
    actor: &Actor,
    request: &ReturnRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::Return;
    match actor {
        Actor::Unit { .. } => {
            require_assigned_unit(op, actor, facts)?;
            let dispatched_at = match (facts.status, facts.dispatched_at) {
                (Status::Dispatched, Some(at)) => at,
                (status, _) => return Err(illegal(op, status)),
            };
            let limit = return_limit(dispatched_at, rules);
            if now > limit {
                return Err(Refusal::TooLate {
                    operation: op,
                    limit,
                    why: format!(
                        "a unit returns a ticket within {} of dispatch; it now counts as accepted",
                        rules.config.return_within
                    ),
                });
            }
            required_text(op, "a return reason", &request.reason)?;
            let mut new = facts.clone();
            new.status = Status::Returned;
            new.awaiting_dispatch_since = now;
            Ok(
                Transition::new(facts, new, actor, AuditAction::ReturnedByUnit, now, rules)
                    .because(&request.reason),
            )
        }
        Actor::CentreAgent { .. } | Actor::CentreAdmin { .. } => {
            if !matches!(facts.status, Status::Replied | Status::Callback) {
                return Err(illegal(op, facts.status));
            }
            required_text(op, "a return reason", &request.reason)?;
            let mut new = facts.clone();
            new.centre_returns += 1;
            if facts.centre_returns == 0 {
                new.restart_handling(now);
                return Ok(Transition::new(
                    facts,
                    new,
                    actor,
                    AuditAction::ReturnedByCentre,
                    now,
                    rules,
                )
                .because(&request.reason)
                .detail("first centre return: back to the unit"));
            }
            new.status = Status::Adjudication;
            let detail = format!("centre return no. {}: adjudication", new.centre_returns);
            Ok(Transition::new(
                facts,
                new,
                actor,
                AuditAction::SentToAdjudication,
                now,
                rules,
            )
            .because(&request.reason)
            .detail(detail)
            .with(FollowUp::SupervisorQueue {
                reason: format!("returned a second time: {}", request.reason.trim()),
            }))
        }
        _ => Err(wrong_actor(
            op,
            actor,
            "only the responsible unit or the centre returns tickets",
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    pub reason: String,
}

/// CloseTicket: agents close drafts answered at once, returned tickets the centre drops,
/// and replied tickets that need no callback; a supervisor may close any open ticket
/// (adjudication, duplicates, withdrawn demands). Callbacks close through `RecordCallback`.
pub fn close(
    facts: &TicketFacts,
    actor: &Actor,
    request: &CloseRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::Close;
    match facts.status {
        Status::Closed => return Err(illegal(op, facts.status)),
        Status::Draft | Status::Returned => require_centre(op, actor)?,
        Status::Replied => {
            require_centre(op, actor)?;
            let admin = matches!(actor, Actor::CentreAdmin { .. });
            if let Some(human) = facts.callback_plan.and_then(CallbackPlan::human)
                && !admin
            {
                return Err(Refusal::Invalid {
                    operation: op,
                    why: format!(
                        "the ticket needs a {}callback first; record it with RecordCallback",
                        if human { "human " } else { "" }
                    ),
                });
            }
        }
        _ => require_admin(op, actor)?,
    }
    required_text(op, "a closing reason", &request.reason)?;
    let mut new = facts.clone();
    new.status = Status::Closed;
    Ok(
        Transition::new(facts, new, actor, AuditAction::Closed, now, rules)
            .because(&request.reason),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tickets::calendar::tests::sh;
    use crate::tickets::config::tests::rules_2026;
    use crate::tickets::extension::{
        ExtensionDecision, ExtensionRequest, decide_extension, request_extension,
    };

    pub(crate) fn agent() -> Actor {
        Actor::CentreAgent { id: "a1".into() }
    }
    pub(crate) fn admin() -> Actor {
        Actor::CentreAdmin { id: "s1".into() }
    }
    pub(crate) fn unit() -> Actor {
        Actor::Unit {
            unit: "north".into(),
            user: "u1".into(),
        }
    }

    /// A ticket of `category` dispatched to unit "north" at `at`.
    pub(crate) fn dispatched(category: Category, at: DateTime<Utc>) -> TicketFacts {
        let rules = rules_2026();
        let draft = TicketFacts::new_draft(Uuid::nil(), category, Channel::Hotline, at);
        dispatch(
            &draft,
            &agent(),
            &DispatchRequest {
                unit: "north".into(),
            },
            at,
            &rules,
        )
        .unwrap()
        .facts
    }

    /// The same ticket replied by its unit at `at`.
    pub(crate) fn replied(facts: &TicketFacts, at: DateTime<Utc>) -> TicketFacts {
        reply(
            facts,
            &unit(),
            &ReplyRequest {
                summary: "fixed".into(),
            },
            at,
            &rules_2026(),
        )
        .unwrap()
        .facts
    }

    fn unit_return(facts: &TicketFacts, now: DateTime<Utc>) -> Result<Transition, Refusal> {
        let request = ReturnRequest {
            reason: "not our street".into(),
        };
        return_ticket(facts, &unit(), &request, now, &rules_2026())
    }

    #[test]
    fn the_happy_path_audits_every_step() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let facts = dispatched(Category::Repair, t0);
        assert_eq!(facts.status, Status::Dispatched);
        let accepted = accept(
            &facts,
            &unit(),
            &AcceptRequest {
                contacted_customer: true,
            },
            sh(2026, 11, 20, 16, 30),
            &rules,
        )
        .unwrap();
        assert_eq!(accepted.facts.status, Status::Accepted);
        let event = &accepted.events[0];
        assert_eq!(
            (event.action, event.from, event.to, event.at),
            (
                AuditAction::Accepted,
                Status::Dispatched,
                Status::Accepted,
                sh(2026, 11, 20, 16, 30)
            )
        );
        assert_eq!(event.actor, unit());
        assert_eq!(
            accepted.deadlines.finish.unwrap().due,
            sh(2026, 11, 25, 16, 0)
        );

        let replied = reply(
            &accepted.facts,
            &unit(),
            &ReplyRequest {
                summary: "valve replaced".into(),
            },
            sh(2026, 11, 23, 10, 0),
            &rules,
        )
        .unwrap();
        assert_eq!(replied.facts.status, Status::Replied);
        assert_eq!(replied.facts.callback_plan, Some(CallbackPlan::Automatic));
        assert_eq!(
            replied.deadlines.callback.unwrap().due,
            sh(2026, 11, 24, 10, 0)
        );
        // Replied at 10:00 inside the 09:00–11:00 window: call back at once.
        assert_eq!(
            replied.facts.next_callback_at,
            Some(sh(2026, 11, 23, 10, 0))
        );
        assert!(replied.follow_ups.is_empty());
    }

    #[test]
    fn illegal_transitions_name_the_current_state() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let facts = dispatched(Category::Repair, t0);
        let err = dispatch(
            &facts,
            &agent(),
            &DispatchRequest {
                unit: "south".into(),
            },
            t0,
            &rules,
        )
        .unwrap_err();
        assert_eq!(
            err,
            Refusal::IllegalTransition {
                operation: Operation::Dispatch,
                status: Status::Dispatched
            }
        );
        assert!(err.to_string().contains("dispatched (已派单)"), "{err}");

        let draft = TicketFacts::new_draft(Uuid::nil(), Category::Repair, Channel::Hotline, t0);
        let err = accept(
            &TicketFacts {
                unit: Some("north".into()),
                ..draft.clone()
            },
            &unit(),
            &AcceptRequest {
                contacted_customer: false,
            },
            t0,
            &rules,
        )
        .unwrap_err();
        assert_eq!(err, illegal(Operation::Accept, Status::Draft));
        let closed = close(
            &draft,
            &agent(),
            &CloseRequest {
                reason: "answered at once".into(),
            },
            t0,
            &rules,
        )
        .unwrap()
        .facts;
        let err = close(
            &closed,
            &admin(),
            &CloseRequest { reason: "x".into() },
            t0,
            &rules,
        );
        assert_eq!(err, Err(illegal(Operation::Close, Status::Closed)));
    }

    #[test]
    fn only_the_right_actors_act() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let facts = dispatched(Category::Repair, t0);
        let other_unit = Actor::Unit {
            unit: "south".into(),
            user: "u2".into(),
        };
        let accept_request = AcceptRequest {
            contacted_customer: false,
        };
        let cases = [
            (other_unit, "not dispatched to this unit"),
            (agent(), "only the responsible unit"),
            (
                Actor::Integration {
                    channel: Channel::Hotline,
                    id: "i".into(),
                },
                "only the responsible unit",
            ),
        ];
        for (actor, why) in cases {
            match accept(&facts, &actor, &accept_request, t0, &rules) {
                Err(Refusal::WrongActor { why: got, .. }) => assert!(got.contains(why), "{got}"),
                other => panic!("{actor}: {other:?}"),
            }
        }
        let draft = TicketFacts::new_draft(Uuid::nil(), Category::Repair, Channel::Hotline, t0);
        let to_north = DispatchRequest {
            unit: "north".into(),
        };
        assert!(matches!(
            dispatch(&draft, &unit(), &to_north, t0, &rules),
            Err(Refusal::WrongActor { .. })
        ));
        let blank = DispatchRequest { unit: "  ".into() };
        assert!(matches!(
            dispatch(&draft, &agent(), &blank, t0, &rules),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn a_unit_returns_within_one_working_day_or_it_counts_as_accepted() {
        let rules = rules_2026();
        // Dispatched Wednesday Sep 30 15:00: the next working day is Thursday Oct 8.
        let t0 = sh(2026, 9, 30, 15, 0);
        let facts = dispatched(Category::Repair, t0);
        let cases = [
            (sh(2026, 10, 3, 12, 0), true),  // during the holiday
            (sh(2026, 10, 8, 15, 0), true),  // the last moment
            (sh(2026, 10, 8, 15, 1), false), // one minute late
            (sh(2026, 10, 9, 9, 0), false),  // the day after
        ];
        for (now, allowed) in cases {
            let result = unit_return(&facts, now);
            if allowed {
                let t = result.unwrap();
                assert_eq!(t.facts.status, Status::Returned, "{now}");
                assert_eq!(t.events[0].reason.as_deref(), Some("not our street"));
                assert!(!counts_as_accepted(&facts, now, &rules));
            } else {
                assert_eq!(
                    result.unwrap_err(),
                    Refusal::TooLate {
                        operation: Operation::Return,
                        limit: sh(2026, 10, 8, 15, 0),
                        why: "a unit returns a ticket within 1wd of dispatch; it now counts as accepted"
                            .into(),
                    },
                    "{now}"
                );
                assert!(counts_as_accepted(&facts, now, &rules));
            }
        }
        // The centre fixes and redispatches the returned ticket.
        let returned = unit_return(&facts, sh(2026, 10, 8, 9, 0)).unwrap();
        // The centre owes a new dispatch from the return, not from intake.
        assert_eq!(
            returned.deadlines.dispatch.unwrap().start,
            sh(2026, 10, 8, 9, 0)
        );
        let returned = returned.facts;
        let again = dispatch(
            &returned,
            &agent(),
            &DispatchRequest {
                unit: "south".into(),
            },
            sh(2026, 10, 8, 9, 30),
            &rules,
        )
        .unwrap();
        assert_eq!(again.facts.unit.as_deref(), Some("south"));
        assert_eq!(
            again.deadlines.finish.unwrap().start,
            sh(2026, 10, 8, 9, 30)
        );
        // An accepted ticket is no longer returned by the unit.
        let mut accepted = facts.clone();
        accepted.status = Status::Accepted;
        assert_eq!(
            unit_return(&accepted, t0).unwrap_err(),
            illegal(Operation::Return, Status::Accepted)
        );
    }

    #[test]
    fn first_centre_return_goes_back_second_goes_to_adjudication() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let first_reply = replied(&dispatched(Category::Repair, t0), sh(2026, 11, 23, 10, 0));
        let request = ReturnRequest {
            reason: "the second demand is not answered".into(),
        };
        let first = return_ticket(
            &first_reply,
            &agent(),
            &request,
            sh(2026, 11, 23, 14, 0),
            &rules,
        )
        .unwrap();
        assert_eq!(first.facts.status, Status::Reopened);
        assert_eq!(first.facts.centre_returns, 1);
        assert_eq!(first.events[0].action, AuditAction::ReturnedByCentre);
        // The second handling gets a fresh finish period and no callback yet.
        assert_eq!(first.deadlines.finish.unwrap().due, sh(2026, 11, 26, 14, 0));
        assert_eq!(first.deadlines.callback, None);
        assert!(first.follow_ups.is_empty());

        let second_reply = replied(&first.facts, sh(2026, 11, 24, 10, 0));
        let second = return_ticket(
            &second_reply,
            &agent(),
            &request,
            sh(2026, 11, 24, 15, 0),
            &rules,
        )
        .unwrap();
        assert_eq!(second.facts.status, Status::Adjudication);
        assert_eq!(second.facts.centre_returns, 2);
        assert_eq!(second.events[0].action, AuditAction::SentToAdjudication);
        assert!(matches!(
            second.follow_ups.as_slice(),
            [FollowUp::SupervisorQueue { .. }]
        ));
        // Only a supervisor dispatches out of adjudication.
        let to_south = DispatchRequest {
            unit: "south".into(),
        };
        let now = sh(2026, 11, 24, 16, 0);
        assert!(matches!(
            dispatch(&second.facts, &agent(), &to_south, now, &rules),
            Err(Refusal::WrongActor { .. })
        ));
        let redispatched = dispatch(&second.facts, &admin(), &to_south, now, &rules).unwrap();
        assert_eq!(redispatched.facts.status, Status::Dispatched);
        // A centre return before any reply is illegal.
        let err = return_ticket(
            &dispatched(Category::Repair, t0),
            &agent(),
            &request,
            t0,
            &rules,
        );
        assert_eq!(err, Err(illegal(Operation::Return, Status::Dispatched)));
    }

    #[test]
    fn a_service_application_is_refused_with_an_explanation_within_two_working_days() {
        let rules = rules_2026();
        // Dispatched Friday Nov 20 10:00: refused by Tuesday Nov 24 10:00.
        let application = dispatched(Category::ServiceApplication, sh(2026, 11, 20, 10, 0));
        let request = ReplyRequest {
            summary: "该地址不在管网覆盖范围内，暂不具备通气条件".into(),
        };
        let cases = [
            (sh(2026, 11, 20, 11, 0), true),
            (sh(2026, 11, 24, 10, 0), true),
            (sh(2026, 11, 24, 10, 1), false),
        ];
        for (now, allowed) in cases {
            let result = refuse_application(&application, &unit(), &request, now, &rules);
            if allowed {
                let t = result.unwrap();
                assert!(t.facts.application_refused);
                assert_eq!(t.facts.status, Status::Replied);
                assert_eq!(t.events[0].action, AuditAction::ApplicationRefused);
                assert_eq!(
                    t.events[0].reason.as_deref(),
                    Some(request.summary.as_str())
                );
                // The centre calls back as after any reply.
                assert_eq!(t.facts.callback_plan, Some(CallbackPlan::Automatic));
            } else {
                assert!(
                    matches!(result, Err(Refusal::TooLate { limit, .. }) if limit == sh(2026, 11, 24, 10, 0)),
                    "{now}"
                );
            }
        }
        let empty = ReplyRequest {
            summary: "不予受理".into(),
        };
        assert!(matches!(
            refuse_application(
                &application,
                &unit(),
                &empty,
                sh(2026, 11, 20, 11, 0),
                &rules
            ),
            Err(Refusal::Invalid { .. })
        ));
        let repair = dispatched(Category::Repair, sh(2026, 11, 20, 10, 0));
        assert!(matches!(
            refuse_application(&repair, &unit(), &request, sh(2026, 11, 20, 11, 0), &rules),
            Err(Refusal::Invalid { .. })
        ));
        assert!(matches!(
            refuse_application(
                &application,
                &agent(),
                &request,
                sh(2026, 11, 20, 11, 0),
                &rules
            ),
            Err(Refusal::WrongActor { .. })
        ));
    }

    #[test]
    fn replies_must_say_what_was_done() {
        let rules = rules_2026();
        let facts = dispatched(Category::Repair, sh(2026, 11, 20, 9, 0));
        let cases = [
            ("已处理", false),
            (" 已处理。", false),
            ("已处理!", false),
            ("已 解 决", false),
            ("好了", false),
            ("ok", false),       // shorter than 5
            ("修好了吗", false), // 4 characters
            ("fixed", true),     // exactly 5
            ("已处理：更换了减压阀", true),
            ("更换了减压阀", true),
        ];
        for (summary, allowed) in cases {
            let request = ReplyRequest {
                summary: summary.into(),
            };
            let result = reply(&facts, &unit(), &request, sh(2026, 11, 20, 10, 0), &rules);
            assert_eq!(result.is_ok(), allowed, "{summary:?}: {result:?}");
            if !allowed {
                assert!(
                    matches!(result, Err(Refusal::Invalid { .. })),
                    "{summary:?}"
                );
            }
        }
        // Configurable: a longer minimum and the deployment's own phrases.
        let mut config = rules.config.clone();
        config.reply.min_chars = 8;
        config.reply.empty_phrases = vec!["done".into()];
        let rules = Rules::new(config).unwrap();
        let at = |summary: &str| {
            let request = ReplyRequest {
                summary: summary.into(),
            };
            reply(&facts, &unit(), &request, sh(2026, 11, 20, 10, 0), &rules).is_ok()
        };
        assert!(!at("Done."));
        assert!(!at("更换了减压阀"));
        assert!(at("更换了减压阀并试压"));
    }

    #[test]
    fn every_category_may_ask_for_an_extension_until_half_its_span_is_gone() {
        use crate::tickets::model::ComplaintLevel;
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        // (category, level, half-way point of the finish span from t0)
        let cases = [
            (Category::Consultation, None, sh(2026, 11, 22, 4, 0)), // due Mon 16:00
            (Category::Repair, None, sh(2026, 11, 23, 4, 0)),       // due Wed 16:00
            (Category::ServiceApplication, None, sh(2026, 11, 26, 4, 0)), // due Tue Dec 1
            (Category::TipOff, None, sh(2026, 11, 24, 4, 0)),       // due Fri Nov 27
            (Category::Opinion, None, sh(2026, 11, 24, 4, 0)),
            (Category::Suggestion, None, sh(2026, 11, 24, 4, 0)),
            (
                Category::Complaint,
                Some(ComplaintLevel::L3),
                sh(2026, 11, 20, 17, 30),
            ),
            (
                Category::Complaint,
                Some(ComplaintLevel::L2),
                sh(2026, 11, 21, 4, 0),
            ),
            (
                Category::Complaint,
                Some(ComplaintLevel::L1),
                sh(2026, 11, 21, 16, 0),
            ),
        ];
        for (category, level, half) in cases {
            let mut facts = dispatched(category, t0);
            facts.complaint_level = level;
            let request = ExtensionRequest {
                until: sh(2026, 12, 31, 16, 0),
                reason: "需要协调".into(),
            };
            let at = |now| request_extension(&facts, &unit(), &request, now, &rules);
            assert!(at(t0).is_ok(), "{category} {level:?} at dispatch");
            assert!(at(half).is_ok(), "{category} {level:?} at half-way");
            assert!(
                matches!(
                    at(half + chrono::Duration::minutes(1)),
                    Err(Refusal::TooLate { limit, .. }) if limit == half
                ),
                "{category} {level:?} after half-way"
            );
        }
    }

    #[test]
    fn the_notice_is_configurable_per_category() {
        use crate::tickets::config::{CategoryLimits, Notice, Span};
        let mut config = rules_2026().config;
        // 001 §30: one (calendar) day ahead for repairs; a quarter of the span for complaints.
        config.limits.insert(
            Category::Repair,
            CategoryLimits {
                extension_notice: Some(Notice::Before(Span::Hours(24))),
                ..CategoryLimits::default()
            },
        );
        config.limits.insert(
            Category::Complaint,
            CategoryLimits {
                extension_notice: Some(Notice::Share(25)),
                ..CategoryLimits::default()
            },
        );
        let rules = Rules::new(config).unwrap();
        let t0 = sh(2026, 11, 20, 16, 0);
        let request = ExtensionRequest {
            until: sh(2026, 12, 31, 16, 0),
            reason: "需要协调".into(),
        };
        let cases = [
            // Repair due Wed Nov 25 16:00: until Tue 16:00.
            (Category::Repair, sh(2026, 11, 24, 16, 0), true),
            (Category::Repair, sh(2026, 11, 24, 16, 1), false),
            // L3 complaint due 19:00: a quarter of 3 h before is 18:15.
            (Category::Complaint, sh(2026, 11, 20, 18, 15), true),
            (Category::Complaint, sh(2026, 11, 20, 18, 16), false),
            // Others keep the default half.
            (Category::Consultation, sh(2026, 11, 22, 4, 0), true),
            (Category::Consultation, sh(2026, 11, 22, 4, 1), false),
        ];
        for (category, now, allowed) in cases {
            let facts = dispatched(category, t0);
            let result = request_extension(&facts, &unit(), &request, now, &rules);
            assert_eq!(result.is_ok(), allowed, "{category} at {now}: {result:?}");
        }
    }

    #[test]
    fn a_notice_of_one_working_day_when_configured() {
        let mut config = rules_2026().config;
        config.extension_notice =
            crate::tickets::config::Notice::Before(crate::tickets::config::Span::WorkingDays(1));
        let rules = Rules::new(config).unwrap();
        // Repair dispatched Friday Nov 20 16:00 → finish due Wednesday Nov 25 16:00.
        let facts = dispatched(Category::Repair, sh(2026, 11, 20, 16, 0));
        let request = ExtensionRequest {
            until: sh(2026, 11, 27, 16, 0),
            reason: "parts on order".into(),
        };
        let cases = [
            (sh(2026, 11, 23, 9, 0), true),   // Monday: due Wednesday
            (sh(2026, 11, 24, 16, 0), true),  // exactly 1 working day before
            (sh(2026, 11, 24, 16, 1), false), // less than 1 working day before
            (sh(2026, 11, 25, 10, 0), false), // the last day
        ];
        for (now, allowed) in cases {
            let result = request_extension(&facts, &unit(), &request, now, &rules);
            if allowed {
                let t = result.unwrap();
                assert_eq!(t.facts.status, Status::ExtensionRequested, "{now}");
                assert_eq!(t.facts.pending_extension.unwrap().resume, Status::Accepted);
            } else {
                assert!(
                    matches!(result, Err(Refusal::TooLate { limit, .. }) if limit == sh(2026, 11, 24, 16, 0)),
                    "{now}"
                );
            }
        }
        // Over a weekend: due Monday 10:00 needs asking by Friday 10:00; Saturday is too late.
        let facts = dispatched(Category::Consultation, sh(2026, 11, 20, 10, 0));
        let until = ExtensionRequest {
            until: sh(2026, 11, 25, 10, 0),
            reason: "needs a site visit".into(),
        };
        assert!(
            request_extension(&facts, &unit(), &until, sh(2026, 11, 20, 10, 0), &rules).is_ok()
        );
        assert!(
            request_extension(&facts, &unit(), &until, sh(2026, 11, 21, 9, 0), &rules).is_err()
        );

        let short = ExtensionRequest {
            until: sh(2026, 11, 23, 9, 0),
            reason: "x".into(),
        };
        assert!(matches!(
            request_extension(&facts, &unit(), &short, sh(2026, 11, 20, 10, 0), &rules),
            Err(Refusal::Invalid { .. })
        ));
        let praise = dispatched(Category::Praise, sh(2026, 11, 20, 10, 0));
        assert!(matches!(
            request_extension(&praise, &unit(), &until, sh(2026, 11, 20, 11, 0), &rules),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn extension_decisions_move_or_keep_the_deadline() {
        let rules = rules_2026();
        let facts = dispatched(Category::Repair, sh(2026, 11, 20, 16, 0));
        let asked = request_extension(
            &facts,
            &unit(),
            &ExtensionRequest {
                until: sh(2026, 11, 27, 16, 0),
                reason: "parts on order".into(),
            },
            sh(2026, 11, 23, 3, 0),
            &rules,
        )
        .unwrap()
        .facts;
        let now = sh(2026, 11, 23, 11, 0);
        let grant = ExtensionDecision {
            grant: true,
            until: None,
            reason: String::new(),
        };
        assert!(matches!(
            decide_extension(&asked, &unit(), &grant, now, &rules),
            Err(Refusal::WrongActor { .. })
        ));
        let shorter = ExtensionDecision {
            grant: true,
            until: Some(sh(2026, 11, 25, 16, 0)),
            reason: "no more than asked".into(),
        };
        assert!(matches!(
            decide_extension(&asked, &agent(), &shorter, now, &rules),
            Err(Refusal::Invalid { .. })
        ));
        let granted = decide_extension(&asked, &agent(), &grant, now, &rules).unwrap();
        assert_eq!(granted.facts.status, Status::Accepted);
        assert_eq!(
            granted.deadlines.finish.unwrap().due,
            sh(2026, 11, 27, 16, 0)
        );
        assert_eq!(granted.events[0].action, AuditAction::ExtensionGranted);

        let deny = ExtensionDecision {
            grant: false,
            until: None,
            reason: "a valve swap takes an hour".into(),
        };
        let denied = decide_extension(&asked, &agent(), &deny, now, &rules).unwrap();
        assert_eq!(denied.facts.status, Status::Accepted);
        assert_eq!(
            denied.deadlines.finish.unwrap().due,
            sh(2026, 11, 25, 16, 0)
        );
        assert_eq!(
            decide_extension(&granted.facts, &agent(), &grant, now, &rules),
            Err(illegal(Operation::DecideExtension, Status::Accepted))
        );
    }

    #[test]
    fn closing_respects_the_callback() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 16, 0);
        let reason = CloseRequest {
            reason: "done".into(),
        };
        let repair = replied(&dispatched(Category::Repair, t0), sh(2026, 11, 23, 10, 0));
        assert!(matches!(
            close(&repair, &agent(), &reason, t0, &rules),
            Err(Refusal::Invalid { .. })
        ));
        assert!(close(&repair, &admin(), &reason, t0, &rules).is_ok());
        let consultation = replied(
            &dispatched(Category::Consultation, t0),
            sh(2026, 11, 23, 10, 0),
        );
        let closed = close(&consultation, &agent(), &reason, t0, &rules).unwrap();
        assert_eq!(closed.facts.status, Status::Closed);
        assert_eq!(closed.deadlines.callback, None);
        let open = dispatched(Category::Repair, t0);
        assert!(matches!(
            close(&open, &agent(), &reason, t0, &rules),
            Err(Refusal::WrongActor { .. })
        ));
    }
}
