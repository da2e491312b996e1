//! The checks of the `[ivr]` configuration: every problem (and warning) with a dotted key
//! path — numbers and flows that must exist, node graphs, prompts, queues, keys, hours.
//!
//! Owns what makes an IVR configuration valid; must not read files or the sounds directory
//! (the caller passes the prompt names it found).

use super::config::*;
use crate::validation::{Problems, ValidationError};
use std::collections::{BTreeSet, VecDeque};

/// Checks the whole `[ivr]` table and returns every problem found (empty when it is fine),
/// warnings included ([`ValidationError::is_warning`]). `available_prompts` are the prompt
/// names found in the sounds directory; `known_queues` are the `[acd.queues]` names; `locate`
/// names another key in a message, with its line in the file when the caller knows it.
pub fn validate(
    config: &IvrConfig,
    available_prompts: &BTreeSet<String>,
    known_queues: &BTreeSet<String>,
    locate: &dyn Fn(&str) -> String,
) -> Vec<ValidationError> {
    let mut problems = Problems(Vec::new());
    let p = &mut problems;
    let prompts = PromptCheck(available_prompts);

    // Leak fast track and recording.
    if !known_queues.contains(&config.leak.queue) {
        p.add(
            "ivr.leak.queue",
            format!(
                "leak queue {:?} is not an [acd.queues] entry: leak callers would reach nobody",
                config.leak.queue
            ),
        );
    }
    for name in ENGINE_PROMPTS {
        prompts.check(p, "ivr".into(), name);
    }
    for name in super::position::announcement_prompts() {
        prompts.check(p, "ivr".into(), &name);
    }
    for prompt in config.recording.notice_prompts() {
        prompts.check(p, "ivr.recording.policy".into(), &prompt);
    }
    if config.leak.speak_after_greeting {
        let keys = ["ivr.leak.label", "ivr.leak.digit", "ivr.leak.digit"];
        for (key, prompt) in keys.iter().zip(config.leak.offer()) {
            prompts.check(p, (*key).into(), &prompt);
        }
    }
    super::keys::validate_keys(config, locate, p);
    let prompt_exists = |name: &str| available_prompts.contains(name);
    super::survey::validate_survey(&config.survey, &prompt_exists, locate, p);
    super::special::validate_special_groups(&config.special_groups, p);

    validate_hours(config, p);
    validate_numbers(config, p);
    for (flow_name, flow) in &config.flows {
        validate_flow(config, flow_name, flow, &prompts, known_queues, p);
    }
    problems.0
}

/// Prompt names must have a sound file.
struct PromptCheck<'a>(&'a BTreeSet<String>);

impl PromptCheck<'_> {
    fn check(&self, p: &mut Problems, path: String, name: &str) {
        if !self.0.contains(name) {
            p.add(
                path,
                format!("prompt {name:?} has no sound file: add sounds/zh-CN/{name}.wav or use another prompt"),
            );
        }
    }
}

/// Every number names flows that exist, and shifts that exist.
fn validate_numbers(config: &IvrConfig, p: &mut Problems) {
    if !config.numbers.contains_key(DEFAULT_NUMBER) {
        p.add(
            "ivr.numbers",
            "no [ivr.numbers.default] entry: calls to a number not listed would have no flow; add one",
        );
    }
    for (did, entry) in &config.numbers {
        let base = format!("ivr.numbers.{did}");
        let mut check_flow = |key: &str, flow: &str| {
            if flow.is_empty() {
                p.add(
                    format!("{base}.{key}"),
                    "no flow given: name an [ivr.flows] entry",
                );
            } else if !config.flows.contains_key(flow) {
                p.add(
                    format!("{base}.{key}"),
                    format!("flow {flow:?} does not exist in [ivr.flows]"),
                );
            }
        };
        check_flow("flow", &entry.flow);
        if let Some(f) = &entry.after_hours_flow {
            check_flow("after_hours_flow", f);
        }
        if let Some(f) = &entry.holiday_flow {
            check_flow("holiday_flow", f);
        }
        for (shift, flow) in &entry.shift_flows {
            check_flow(&format!("shift_flows.{shift}"), flow);
        }
        for shift in entry.shift_flows.keys() {
            if !config.shifts.iter().any(|s| &s.name == shift) {
                p.add(
                    format!("{base}.shift_flows.{shift}"),
                    format!("no shift named {shift:?} in [[ivr.shifts]]"),
                );
            }
        }
    }
}

/// One flow: greeting prompts, a start node, edges and prompts of every node, the nodes
/// themselves and the graph.
fn validate_flow(
    config: &IvrConfig,
    flow_name: &str,
    flow: &Flow,
    prompts: &PromptCheck,
    known_queues: &BTreeSet<String>,
    p: &mut Problems,
) {
    let base = format!("ivr.flows.{flow_name}");
    for (i, g) in flow.greeting.iter().enumerate() {
        prompts.check(p, format!("{base}.greeting.{i}"), g);
    }
    if flow.nodes.is_empty() {
        p.add(
            format!("{base}.nodes"),
            "the flow has no nodes: add at least a queue node",
        );
        return;
    }
    if !flow.nodes.contains_key(&flow.start) {
        p.add(
            format!("{base}.start"),
            format!("start node {:?} does not exist in this flow", flow.start),
        );
    }
    for (node_name, node) in &flow.nodes {
        let at = format!("{base}.nodes.{node_name}");
        for (key, target) in node.edges() {
            if !flow.nodes.contains_key(target) {
                p.add(
                    format!("{at}.{key}"),
                    format!("node {target:?} does not exist in flow {flow_name:?}"),
                );
            }
        }
        for (key, prompt) in node.prompts() {
            prompts.check(p, format!("{at}.{key}"), prompt);
        }
        for (key, prompt) in node.spoken_prompts(&config.leak) {
            let path = if key.starts_with("ivr.") {
                key
            } else {
                format!("{at}.{key}")
            };
            prompts.check(p, path, &prompt);
        }
        validate_node(node, &at, flow, known_queues, p);
    }
    validate_graph(flow, &base, p);
}

fn validate_node(
    node: &Node,
    at: &str,
    flow: &Flow,
    known_queues: &BTreeSet<String>,
    p: &mut Problems,
) {
    let fallback_check = |p: &mut Problems, fallback: &str| {
        if let Some(target) = flow.nodes.get(fallback)
            && !target.reaches_person()
        {
            p.add(
                format!("{at}.fallback"),
                format!("fallback {fallback:?} must be a queue or transfer node, so a caller who cannot use the keypad still reaches a person"),
            );
        }
    };
    match node {
        Node::Menu(menu) => {
            if menu.timeout_secs == 0 {
                p.add(format!("{at}.timeout_secs"), "must be at least 1 second");
            }
            fallback_check(p, &menu.fallback);
        }
        Node::Collect(c) => {
            if c.min_len < 2 {
                p.add(
                    format!("{at}.min_len"),
                    "must be at least 2: a lone leak digit in an entry means a gas leak",
                );
            }
            if c.max_len < c.min_len || c.max_len > 32 {
                p.add(
                    format!("{at}.max_len"),
                    format!("must be between min_len ({}) and 32", c.min_len),
                );
            }
            if c.timeout_secs == 0 {
                p.add(format!("{at}.timeout_secs"), "must be at least 1 second");
            }
            if c.variable.is_empty() {
                p.add(
                    format!("{at}.variable"),
                    "name the variable the entry is stored under, e.g. account",
                );
            }
            fallback_check(p, &c.fallback);
        }
        Node::Queue { queue, .. } => {
            if !known_queues.contains(queue) {
                p.add(
                    format!("{at}.queue"),
                    format!("queue {queue:?} is not an [acd.queues] entry"),
                );
            }
        }
        Node::Transfer { uri, .. } => {
            if !(uri.starts_with("sip:") || uri.starts_with("sips:")) {
                p.add(
                    format!("{at}.uri"),
                    format!("{uri:?} is not a SIP URI: write sip:user@host"),
                );
            }
        }
        Node::Play { .. }
        | Node::Announcement { .. }
        | Node::Hangup { .. }
        | Node::OpenTicketCheck { .. } => {}
    }
}

/// Unreachable nodes, and nodes from which no exit (queue, transfer, hangup) can be reached —
/// which, as every node but the exits leads on, means they go round in a loop.
fn validate_graph(flow: &Flow, base: &str, p: &mut Problems) {
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut todo: VecDeque<&str> = VecDeque::new();
    if flow.nodes.contains_key(&flow.start) {
        todo.push_back(&flow.start);
    }
    while let Some(name) = todo.pop_front() {
        if !reached.insert(name) {
            continue;
        }
        if let Some(node) = flow.nodes.get(name) {
            todo.extend(
                node.edges()
                    .into_iter()
                    .map(|(_, t)| t)
                    .filter(|t| flow.nodes.contains_key(*t)),
            );
        }
    }
    for name in flow.nodes.keys() {
        if !reached.contains(name.as_str()) && flow.nodes.contains_key(&flow.start) {
            p.add(
                format!("{base}.nodes.{name}"),
                format!(
                    "no path from the start node {:?} leads here: link it or remove it",
                    flow.start
                ),
            );
        }
    }
    // Backwards fixed point: a node escapes when it is an exit or leads to a node that escapes.
    let mut escapes: BTreeSet<&str> = flow
        .nodes
        .iter()
        .filter(|(_, n)| n.is_exit())
        .map(|(k, _)| k.as_str())
        .collect();
    loop {
        let before = escapes.len();
        for (name, node) in &flow.nodes {
            if !escapes.contains(name.as_str())
                && node.edges().iter().any(|(_, t)| escapes.contains(t))
            {
                escapes.insert(name);
            }
        }
        if escapes.len() == before {
            break;
        }
    }
    for (name, node) in &flow.nodes {
        // Nodes with a broken reference are reported above; only judge complete ones.
        let complete = node
            .edges()
            .iter()
            .all(|(_, t)| flow.nodes.contains_key(*t));
        if complete && !escapes.contains(name.as_str()) {
            p.add(
                format!("{base}.nodes.{name}"),
                "loop with no way out: from here no queue, transfer or hangup node can be reached",
            );
        }
    }
}

fn validate_hours(config: &IvrConfig, p: &mut Problems) {
    for (day, ranges) in config.business_hours.days() {
        let path = format!("ivr.business_hours.{day}");
        for (i, r) in ranges.iter().enumerate() {
            if r.start >= r.end {
                p.add(
                    format!("{path}.{i}"),
                    format!("{r} ends before it starts: business hours stay within one day; split a range over midnight into two days"),
                );
            }
        }
        for (i, a) in ranges.iter().enumerate() {
            for (j, b) in ranges.iter().enumerate().skip(i + 1) {
                if a.start < b.end && b.start < a.end {
                    p.add(
                        format!("{path}.{j}"),
                        format!("{b} overlaps {a} (entry {i}): merge them"),
                    );
                }
            }
        }
    }
    for date in config
        .calendar
        .holidays
        .intersection(&config.calendar.make_up_workdays)
    {
        p.add(
            "ivr.calendar.make_up_workdays",
            format!("{date} is listed both as a holiday and as a make-up working day: keep one"),
        );
    }
    for (i, s) in config.shifts.iter().enumerate() {
        if s.start.minutes() % (24 * 60) == s.end.minutes() % (24 * 60) {
            p.add(
                format!("ivr.shifts.{i}"),
                format!(
                    "shift {:?} starts and ends at {}: give it a length",
                    s.name, s.start
                ),
            );
            continue;
        }
        for (j, other) in config.shifts.iter().enumerate().take(i) {
            if other.name == s.name {
                p.add(
                    format!("ivr.shifts.{i}.name"),
                    format!("shift name {:?} is already used by ivr.shifts.{j}", s.name),
                );
            }
            // Overlapping shifts are allowed: `shift_at` picks the one that started last.
        }
    }
}
