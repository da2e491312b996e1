//! One call's walk through the IVR: a sans-IO state machine. The driver feeds `Event`s (each
//! with the current `Instant`) and carries out the returned `Action`s; timers are actions too.
//!
//! Owns the caller's path, the leak fast track, the recording consent, what a waiting caller
//! hears and the post-call survey (`survey` below); must not do I/O, read a clock or decide
//! which agent answers or a caller's queue position (that is the ACD's job).

mod keypad;
mod survey;

use super::config::{
    Collect, DEFAULT_TIMEOUT_SECS, Digit, FlowChoice, IvrConfig, Menu, Node, RecordingPolicy,
    TimeSlot,
};
use super::events::{
    Action, CallInfo, ConsentDecision, ConsentHow, ConsentRecord, Event, HandOver, LEAK_PRIORITY,
    PlaybackId, QueueResult, SurveyAnswer, TicketUpdate, TimerId,
};
use crate::tickets::Category;
use chrono::{DateTime, TimeDelta};
use chrono_tz::Tz;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Phase {
    /// Before `Answered`.
    Ringing,
    /// Greeting and recording notice; then, for opt-out/opt-in, the response window.
    Intro {
        playback: Option<PlaybackId>,
        window: Option<TimerId>,
    },
    /// A play, announcement or hangup node's prompts.
    Playing {
        node: String,
        playback: PlaybackId,
    },
    Menu {
        node: String,
        playback: Option<PlaybackId>,
        timer: Option<TimerId>,
        failures: u32,
    },
    Collect {
        node: String,
        playback: Option<PlaybackId>,
        timer: Option<TimerId>,
        entry: String,
        failures: u32,
    },
    /// Waiting for an agent (or the overflow target), hearing wait or leak-safety prompts.
    Queued {
        queue: String,
        priority: u8,
        category: Category,
        leak: bool,
        playback: PlaybackId,
        transferring: bool,
        /// A position announcement to play when the current prompt ends.
        announcement: Option<Vec<String>>,
    },
    /// A transfer node's target is being called.
    Transferring {
        on_failure: Option<String>,
    },
    /// The goodbye is playing.
    HangingUp {
        playback: Option<PlaybackId>,
    },
    Connected,
    /// The post-call survey: its prompt, then the wait for a key.
    Survey {
        playback: Option<PlaybackId>,
        timer: Option<TimerId>,
        failures: u32,
    },
    Ended,
}

/// Guards against a config with a cycle of silent nodes (validation rejects those).
const MAX_SILENT_STEPS: usize = 64;

/// One call. Holds the configuration snapshot it was answered with: a reload never changes a
/// call in progress.
#[derive(Debug, Clone)]
pub struct CallEngine {
    config: Arc<IvrConfig>,
    phase: Phase,
    next_id: u64,
    answered_at: Option<(Instant, DateTime<Tz>)>,
    choice: Option<FlowChoice>,
    has_open_ticket: bool,
    /// Added to non-leak queue priorities: the caller's household is a special group.
    priority_boost: u8,
    announcements: Vec<String>,
    announcements_played: bool,
    consent_decided: bool,
    recording: bool,
    leak: bool,
    /// The agent the caller is (or was last) connected with.
    agent: Option<String>,
    /// The category the call was last queued with, for a desktop's transfer back to a queue.
    queued_category: Option<Category>,
}

impl CallEngine {
    pub fn new(config: Arc<IvrConfig>) -> CallEngine {
        CallEngine {
            config,
            phase: Phase::Ringing,
            next_id: 0,
            answered_at: None,
            choice: None,
            has_open_ticket: false,
            priority_boost: 0,
            announcements: Vec::new(),
            announcements_played: false,
            consent_decided: false,
            recording: false,
            leak: false,
            agent: None,
            queued_category: None,
        }
    }

    /// The configuration snapshot this call runs on.
    pub fn config(&self) -> &Arc<IvrConfig> {
        &self.config
    }

    /// The flow chosen at answer.
    pub fn flow(&self) -> Option<&FlowChoice> {
        self.choice.as_ref()
    }

    /// A leak call: exempt from the concurrent-call limit, never hung up on.
    pub fn is_priority(&self) -> bool {
        self.leak
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Whether the call is over for the engine (hung up by either side).
    pub fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }

    /// The name of the node the caller is at, if any.
    pub fn current_node(&self) -> Option<&str> {
        match &self.phase {
            Phase::Playing { node, .. }
            | Phase::Menu { node, .. }
            | Phase::Collect { node, .. } => Some(node),
            _ => None,
        }
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Answered { info, now } => self.on_answered(info, now, &mut out),
            Event::Digit { digit, now } => {
                if let Some(digit) = Digit::new(digit) {
                    self.on_digit(digit, now, &mut out)
                }
            }
            Event::PromptFinished { id, now } => self.on_prompt_finished(id, now, &mut out),
            Event::TimerFired { id, now } => self.on_timer(id, now, &mut out),
            Event::Queue { result, now } => self.on_queue(result, now, &mut out),
            Event::AgentAnswered { agent, .. } => {
                // The first agent, or after a desktop's transfer (`Requeued`) the next one.
                if let Phase::Queued { .. } = self.phase {
                    out.push(Action::StopPlayback);
                    out.push(Action::Bridge {
                        agent: agent.clone(),
                    });
                    self.agent = Some(agent);
                    self.phase = Phase::Connected;
                }
            }
            Event::Requeued {
                queue,
                priority,
                leak,
                to,
                ..
            } => self.on_requeued(queue, priority, leak, to, &mut out),
            Event::AgentLeft { now } => self.on_agent_left(now, &mut out),
            Event::TransferAnswered { .. } => match self.phase {
                Phase::Queued {
                    transferring: true, ..
                } => {
                    out.push(Action::StopPlayback);
                    self.phase = Phase::Connected;
                }
                Phase::Transferring { .. } => self.phase = Phase::Connected,
                _ => {}
            },
            Event::TransferFailed { now } => self.on_transfer_failed(now, &mut out),
            Event::CallerHungUp { now } => self.on_hung_up(now, &mut out),
        }
        out
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn play(&mut self, prompts: Vec<String>, barge_in: bool, out: &mut Vec<Action>) -> PlaybackId {
        let id = PlaybackId(self.fresh_id());
        out.push(Action::Play {
            id,
            prompts,
            barge_in,
        });
        id
    }

    fn timer(&mut self, after: Duration, now: Instant, out: &mut Vec<Action>) -> TimerId {
        let id = TimerId(self.fresh_id());
        out.push(Action::SetTimer {
            id,
            at: now + after,
        });
        id
    }

    fn wall(&self, now: Instant) -> Option<DateTime<Tz>> {
        let (at, wall) = self.answered_at?;
        let elapsed = TimeDelta::from_std(now.saturating_duration_since(at)).ok()?;
        Some(wall + elapsed)
    }

    fn consent(
        &mut self,
        decision: ConsentDecision,
        how: ConsentHow,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(at) = self.wall(now) else { return };
        self.consent_decided = true;
        out.push(Action::RecordConsent(ConsentRecord { decision, how, at }));
        if decision == ConsentDecision::Given && !self.recording {
            self.recording = true;
            out.push(Action::StartRecording);
        }
    }

    fn on_answered(&mut self, info: CallInfo, now: Instant, out: &mut Vec<Action>) {
        if !matches!(self.phase, Phase::Ringing) {
            return;
        }
        self.answered_at = Some((now, info.local_time));
        self.has_open_ticket = info.has_open_ticket;
        self.announcements = info.announcements;
        let special = &self.config.special_groups;
        self.priority_boost = special.boost_for(info.special_group.as_deref());
        let choice = self
            .config
            .select_flow(&info.did, info.local_time.naive_local());
        out.push(Action::Ticket(TicketUpdate::CreateDraft {
            call_id: info.call_id,
            caller: info.caller,
            called: info.did,
            started_at: info.local_time,
            flow: choice.as_ref().map(|c| c.flow.clone()).unwrap_or_default(),
        }));
        let flow = choice.as_ref().and_then(|c| self.config.flows.get(&c.flow));
        let prompts = self.config.intro_prompts(flow);
        if let Some(choice) = &choice {
            let slot = match &choice.slot {
                TimeSlot::Holiday => "holiday".to_owned(),
                TimeSlot::AfterHours => "after_hours".to_owned(),
                TimeSlot::BusinessHours { shift: Some(s) } => format!("business_hours:{s}"),
                TimeSlot::BusinessHours { shift: None } => "business_hours".to_owned(),
            };
            out.push(Action::Ticket(TicketUpdate::PathStep {
                node: format!("flow:{}", choice.flow),
                input: Some(slot),
            }));
        }
        self.choice = choice;
        if self.priority_boost > 0 {
            out.push(Action::Ticket(TicketUpdate::PathStep {
                node: "special_group".into(),
                input: info.special_group,
            }));
        }
        let policy = self.config.recording.policy;
        if policy == RecordingPolicy::Off {
            self.consent(ConsentDecision::NotAsked, ConsentHow::PolicyOff, now, out);
        }
        if prompts.is_empty() {
            self.enter_start(now, out);
        } else {
            // The greeting and the notice are not cut by ordinary keys; the leak digit and the
            // consent keys stop them explicitly.
            let playback = self.play(prompts, false, out);
            self.phase = Phase::Intro {
                playback: Some(playback),
                window: None,
            };
        }
    }

    fn enter_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        let start = self
            .choice
            .as_ref()
            .and_then(|c| self.config.flows.get(&c.flow))
            .map(|f| f.start.clone());
        match start {
            Some(start) => self.enter_node(start, now, out),
            // No flow (a config validation would have refused): a person still answers.
            None => self.enter_last_resort(out),
        }
    }

    /// Reaching a person when the configuration leads nowhere: the emergency queue, at the
    /// lowest priority, so real leaks still come first.
    fn enter_last_resort(&mut self, out: &mut Vec<Action>) {
        let queue = self.config.leak.queue.clone();
        self.enqueue(
            queue,
            0,
            Category::Consultation,
            false,
            vec!["transfer_agent".into()],
            out,
        );
    }

    fn enqueue(
        &mut self,
        queue: String,
        priority: u8,
        category: Category,
        leak: bool,
        prompts: Vec<String>,
        out: &mut Vec<Action>,
    ) {
        let priority = if leak {
            priority
        } else {
            super::special::boosted(priority, self.priority_boost)
        };
        out.push(Action::Enqueue {
            queue: queue.clone(),
            priority,
            leak,
            category,
            agent: None,
        });
        self.queued_category = Some(category);
        self.wait(queue, priority, category, leak, prompts, out);
    }

    /// The caller waits in `queue` (the ACD already has the call): `prompts`, then the wait
    /// prompt (for leaks the safety advice) in a loop; see `on_prompt_finished`.
    fn wait(
        &mut self,
        queue: String,
        priority: u8,
        category: Category,
        leak: bool,
        mut prompts: Vec<String>,
        out: &mut Vec<Action>,
    ) {
        prompts.push(wait_prompt(leak).to_owned());
        let playback = self.play(prompts, false, out);
        self.phase = Phase::Queued {
            queue,
            priority,
            category,
            leak,
            playback,
            transferring: false,
            announcement: None,
        };
    }

    /// A desktop's transfer: the connected caller waits again exactly as a caller who just
    /// queued (`Enqueue`, so the driver arms the queue-wait limit and the desk counts the wait
    /// on the target's lane), or, for a URI, as a caller whose overflow target rings.
    fn on_requeued(
        &mut self,
        queue: String,
        priority: u8,
        leak: bool,
        to: HandOver,
        out: &mut Vec<Action>,
    ) {
        if !matches!(self.phase, Phase::Connected) {
            return;
        }
        // A call reaches an agent only through `enqueue`, so the category is known; were it
        // not, the last resort's category is what such a call would have had.
        let category = self.queued_category.unwrap_or(Category::Consultation);
        let leak = leak || self.leak;
        let agent = match to {
            HandOver::Uri(uri) => {
                self.wait(queue, priority, category, leak, Vec::new(), out);
                if let Phase::Queued { transferring, .. } = &mut self.phase {
                    *transferring = true;
                }
                out.push(Action::Transfer { uri });
                return;
            }
            HandOver::Queue => None,
            HandOver::Agent(agent) => Some(agent),
        };
        out.push(Action::Enqueue {
            queue: queue.clone(),
            priority,
            leak,
            category,
            agent,
        });
        self.wait(queue, priority, category, leak, Vec::new(), out);
    }

    fn enter_node(&mut self, mut name: String, now: Instant, out: &mut Vec<Action>) {
        let config = Arc::clone(&self.config);
        let Some(flow) = self.choice.as_ref().and_then(|c| config.flows.get(&c.flow)) else {
            return self.enter_last_resort(out);
        };
        for _ in 0..MAX_SILENT_STEPS {
            let Some(node) = flow.nodes.get(&name) else {
                return self.enter_last_resort(out);
            };
            match self.start_node(&config, node, name, now, out) {
                Some(next) => name = next,
                None => return,
            }
        }
        self.enter_last_resort(out);
    }

    /// Starts `node` (named `name`). A node that needs nothing from the caller answers the
    /// node to go on to.
    fn start_node(
        &mut self,
        config: &IvrConfig,
        node: &Node,
        name: String,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Option<String> {
        out.push(Action::NodeEntered { node: name.clone() });
        match node {
            Node::Play { prompts, .. } => {
                let playback = self.play(prompts.clone(), false, out);
                self.phase = Phase::Playing {
                    node: name,
                    playback,
                };
            }
            Node::Announcement { next } => {
                if self.announcements_played || self.announcements.is_empty() {
                    return Some(next.clone());
                }
                self.announcements_played = true;
                let playback = self.play(self.announcements.clone(), false, out);
                self.phase = Phase::Playing {
                    node: name,
                    playback,
                };
            }
            Node::Menu(menu) => self.start_menu(config, menu, name, out),
            Node::Collect(c) => {
                let playback = self.play(c.spoken(), true, out);
                self.phase = Phase::Collect {
                    node: name,
                    playback: Some(playback),
                    timer: None,
                    entry: String::new(),
                    failures: 0,
                };
            }
            Node::Queue {
                queue,
                priority,
                category,
                prompts,
            } => {
                out.push(Action::Ticket(TicketUpdate::SetCategory {
                    category: *category,
                    top_priority: false,
                }));
                path_step(name, None, out);
                let (queue, prompts) = (queue.clone(), prompts.clone());
                self.enqueue(queue, *priority, *category, false, prompts, out);
            }
            Node::Transfer { uri, on_failure } => {
                path_step(name, None, out);
                out.push(Action::Transfer { uri: uri.clone() });
                self.phase = Phase::Transferring {
                    on_failure: on_failure.clone(),
                };
            }
            Node::Hangup { prompts } => {
                path_step(name, None, out);
                self.say_goodbye(prompts.clone(), now, out);
            }
            Node::OpenTicketCheck { if_open, otherwise } => {
                let open = self.has_open_ticket;
                let input = if open {
                    "open_ticket"
                } else {
                    "no_open_ticket"
                };
                path_step(name, Some(input.into()), out);
                return Some(if open { if_open } else { otherwise }.clone());
            }
        }
        None
    }

    /// A menu: the outage announcements first (once per call), then its spoken options.
    fn start_menu(&mut self, config: &IvrConfig, menu: &Menu, name: String, out: &mut Vec<Action>) {
        let mut prompts = Vec::new();
        if !self.announcements_played {
            self.announcements_played = true;
            prompts.extend(self.announcements.iter().cloned());
        }
        prompts.extend(menu.spoken(&config.leak));
        let playback = self.play(prompts, true, out);
        self.phase = Phase::Menu {
            node: name,
            playback: Some(playback),
            timer: None,
            failures: 0,
        };
    }

    fn say_goodbye(&mut self, prompts: Vec<String>, now: Instant, out: &mut Vec<Action>) {
        if prompts.is_empty() {
            self.finish(now, out);
            out.push(Action::HangUp);
        } else {
            let playback = self.play(prompts, false, out);
            self.phase = Phase::HangingUp {
                playback: Some(playback),
            };
        }
    }

    /// Leaves the call: recording stopped, ticket closed for the IVR's part.
    fn finish(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.recording {
            self.recording = false;
            out.push(Action::StopRecording);
        }
        if let Some(at) = self.wall(now) {
            out.push(Action::Ticket(TicketUpdate::CallEnded { at }));
        }
        self.phase = Phase::Ended;
    }

    /// Timers and playback this phase owns, cancelled when it is left early.
    fn stop_current(&mut self, out: &mut Vec<Action>) {
        let (playing, timer) = match &self.phase {
            Phase::Intro { playback, window } => (playback.is_some(), *window),
            Phase::Playing { .. } | Phase::Queued { .. } => (true, None),
            Phase::Menu {
                playback, timer, ..
            }
            | Phase::Collect {
                playback, timer, ..
            } => (playback.is_some(), *timer),
            Phase::HangingUp { playback } => (playback.is_some(), None),
            Phase::Survey {
                playback, timer, ..
            } => (playback.is_some(), *timer),
            Phase::Ringing | Phase::Transferring { .. } | Phase::Connected | Phase::Ended => {
                (false, None)
            }
        };
        if playing {
            out.push(Action::StopPlayback);
        }
        if let Some(id) = timer {
            out.push(Action::CancelTimer { id });
        }
    }

    /// The gas-leak fast track: queued first (so an agent is rung at once), then the rest.
    fn enter_leak(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.stop_current(out);
        self.leak = true;
        out.push(Action::PriorityCall);
        let queue = self.config.leak.queue.clone();
        self.enqueue(
            queue,
            LEAK_PRIORITY,
            Category::Leak,
            true,
            vec!["leak_connecting".into()],
            out,
        );
        out.push(Action::Ticket(TicketUpdate::SetCategory {
            category: Category::Leak,
            top_priority: true,
        }));
        path_step("leak".into(), Some(self.config.leak.digit.to_string()), out);
        out.push(Action::NodeEntered {
            node: "leak".into(),
        });
        if !self.consent_decided {
            if self.config.recording.record_leak_calls {
                self.consent(ConsentDecision::Given, ConsentHow::LeakDefault, now, out);
            } else {
                self.consent(ConsentDecision::NotAsked, ConsentHow::LeakDefault, now, out);
            }
        }
    }

    fn on_prompt_finished(&mut self, id: PlaybackId, now: Instant, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Intro { playback, .. } if *playback == Some(id) => {
                *playback = None;
                let rec = &self.config.recording;
                match rec.policy {
                    RecordingPolicy::Announce => {
                        self.consent(ConsentDecision::Given, ConsentHow::StayedOnLine, now, out);
                        self.enter_start(now, out);
                    }
                    RecordingPolicy::OptOut | RecordingPolicy::OptIn => {
                        let after = Duration::from_secs(rec.response_window_secs);
                        let timer = self.timer(after, now, out);
                        self.phase = Phase::Intro {
                            playback: None,
                            window: Some(timer),
                        };
                    }
                    RecordingPolicy::Off => self.enter_start(now, out),
                }
            }
            Phase::Playing { node, playback } if *playback == id => {
                let node = node.clone();
                let next = match node_at(&self.config, self.choice.as_ref(), &node) {
                    Some(Node::Play { next, .. } | Node::Announcement { next }) => {
                        Some(next.clone())
                    }
                    _ => None,
                };
                path_step(node, None, out);
                match next {
                    Some(next) => self.enter_node(next, now, out),
                    None => self.enter_last_resort(out),
                }
            }
            Phase::Survey { playback, .. } if *playback == Some(id) => {
                *playback = None;
                self.survey_listen(now, out);
            }
            Phase::Menu { playback, node, .. } | Phase::Collect { playback, node, .. }
                if *playback == Some(id) =>
            {
                // The prompt is over: now the caller's silence counts.
                *playback = None;
                let timeout = match node_at(&self.config, self.choice.as_ref(), node) {
                    Some(Node::Menu(menu)) => menu.timeout_secs,
                    Some(Node::Collect(collect)) => collect.timeout_secs,
                    _ => DEFAULT_TIMEOUT_SECS,
                };
                let new = self.timer(Duration::from_secs(timeout), now, out);
                if let Phase::Menu { timer, .. } | Phase::Collect { timer, .. } = &mut self.phase {
                    *timer = Some(new);
                }
            }
            Phase::Queued {
                leak,
                playback,
                announcement,
                ..
            } if *playback == id => {
                // Loop the wait prompt (for leaks: the safety advice) until someone answers;
                // a position announcement goes between two rounds.
                let prompts = match announcement.take() {
                    Some(prompts) => prompts,
                    None => vec![wait_prompt(*leak).to_owned()],
                };
                let new = self.play(prompts, false, out);
                if let Phase::Queued { playback, .. } = &mut self.phase {
                    *playback = new;
                }
            }
            Phase::HangingUp { playback } if *playback == Some(id) => {
                self.finish(now, out);
                out.push(Action::HangUp);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, now: Instant, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Intro { window, .. } if *window == Some(id) => {
                *window = None;
                match self.config.recording.policy {
                    RecordingPolicy::OptOut => {
                        self.consent(ConsentDecision::Given, ConsentHow::StayedOnLine, now, out)
                    }
                    _ => self.consent(ConsentDecision::Refused, ConsentHow::NoResponse, now, out),
                }
                self.enter_start(now, out);
            }
            Phase::Menu { timer, .. } if *timer == Some(id) => {
                *timer = None;
                self.menu_failed(false, now, out);
            }
            Phase::Collect { timer, .. } if *timer == Some(id) => {
                *timer = None;
                self.finish_entry(now, out);
            }
            Phase::Survey { timer, .. } if *timer == Some(id) => {
                *timer = None;
                self.survey_failed(false, now, out);
            }
            _ => {}
        }
    }

    fn on_queue(&mut self, result: QueueResult, _now: Instant, out: &mut Vec<Action>) {
        let Phase::Queued {
            transferring,
            leak,
            announcement,
            ..
        } = &mut self.phase
        else {
            return;
        };
        match result {
            QueueResult::Offered { .. } | QueueResult::NoAgent => {}
            // Leak callers hear the safety advice, never a place in a line.
            QueueResult::Position {
                ahead,
                wait_minutes,
            } => {
                if !*leak && !*transferring {
                    *announcement = Some(super::position::announcement(ahead, wait_minutes));
                }
            }
            QueueResult::Overflow { uri } => {
                // The caller keeps hearing the wait (or safety) prompts while `uri` rings.
                *transferring = true;
                out.push(Action::Transfer { uri });
            }
        }
    }

    fn on_transfer_failed(&mut self, now: Instant, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Queued {
                transferring,
                queue,
                priority,
                category,
                leak,
                ..
            } if *transferring => {
                // Back in the queue: the ACD will try agents and, after its wait, the overflow
                // target again. A leak caller is never hung up on.
                *transferring = false;
                out.push(Action::Enqueue {
                    queue: queue.clone(),
                    priority: *priority,
                    leak: *leak,
                    category: *category,
                    agent: None,
                });
            }
            Phase::Transferring { on_failure } => match on_failure.take() {
                Some(node) => self.enter_node(node, now, out),
                None => self.say_goodbye(vec!["goodbye".into()], now, out),
            },
            _ => {}
        }
    }

    fn on_hung_up(&mut self, now: Instant, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Ended | Phase::Ringing) {
            self.phase = Phase::Ended;
            return;
        }
        if let Phase::Menu {
            timer: Some(id), ..
        }
        | Phase::Collect {
            timer: Some(id), ..
        }
        | Phase::Intro {
            window: Some(id), ..
        }
        | Phase::Survey {
            timer: Some(id), ..
        } = self.phase
        {
            out.push(Action::CancelTimer { id });
        }
        if let Phase::Queued { .. } = self.phase {
            out.push(Action::Dequeue);
        }
        self.finish(now, out);
    }
}

/// One step of the ticket's IVR path: the caller moved on from `node` with `input`.
fn path_step(node: String, input: Option<String>, out: &mut Vec<Action>) {
    out.push(Action::Ticket(TicketUpdate::PathStep { node, input }));
}

fn wait_prompt(leak: bool) -> &'static str {
    if leak {
        "leak_safety_advice"
    } else {
        "queue_wait"
    }
}

fn node_at<'c>(config: &'c IvrConfig, choice: Option<&FlowChoice>, name: &str) -> Option<&'c Node> {
    config.flows.get(&choice?.flow)?.nodes.get(name)
}

fn menu_at<'c>(config: &'c IvrConfig, choice: Option<&FlowChoice>, name: &str) -> Option<&'c Menu> {
    match node_at(config, choice, name)? {
        Node::Menu(menu) => Some(menu),
        _ => None,
    }
}

fn collect_at<'c>(
    config: &'c IvrConfig,
    choice: Option<&FlowChoice>,
    name: &str,
) -> Option<&'c Collect> {
    match node_at(config, choice, name)? {
        Node::Collect(collect) => Some(collect),
        _ => None,
    }
}
