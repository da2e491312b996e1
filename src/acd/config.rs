//! The `[acd]` configuration: agent queues, agents and their skills, ring timeout and the leak
//! overflow to the on-call dispatcher — and its validation.
//!
//! Owns the shape of queue settings; must not read files.

use crate::tickets::Category;
use crate::validation::{Problems, ValidationError};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};

fn category_code<'de, D: Deserializer<'de>>(d: D) -> Result<Category, D::Error> {
    let code = String::deserialize(d)?;
    code.parse::<Category>().map_err(|e| {
        serde::de::Error::custom(format!(
            "{e}: use a ticket category code such as \"repair\""
        ))
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcdConfig {
    /// How long an agent's phone rings before the call is offered to the next agent.
    #[serde(default = "ring_timeout")]
    pub ring_timeout_secs: u64,
    /// Callers waiting in a non-leak queue hear "您前面还有 N 位" when they start waiting and
    /// then every this many seconds; 0 turns the announcements off.
    #[serde(default = "announce_every")]
    pub announce_every_secs: u64,
    /// Add "预计等待 N 分钟" to each position announcement.
    #[serde(default)]
    pub announce_estimated_wait: bool,
    /// The handle time assumed for the estimated wait until the ACD has seen calls end.
    #[serde(default = "assumed_handle")]
    pub assumed_handle_secs: u64,
    #[serde(default)]
    pub leak: LeakRouting,
    pub queues: BTreeMap<String, QueueConfig>,
    /// Agent id → agent.
    pub agents: BTreeMap<String, AgentConfig>,
}

fn ring_timeout() -> u64 {
    15
}

fn announce_every() -> u64 {
    30
}

fn assumed_handle() -> u64 {
    180
}

/// Announcements closer together than this would leave the caller no quiet between them.
pub const MIN_ANNOUNCE_EVERY_SECS: u64 = 10;

/// Where leak calls go when no emergency agent answers in time. Never voicemail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeakRouting {
    /// Waiting longer than this sends the call to `on_call_uri` (and again after each failure).
    pub overflow_after_secs: u64,
    /// The on-call dispatcher's mobile through the PBX, e.g. `sip:8001@127.0.0.1`.
    pub on_call_uri: String,
    /// When no agent of the leak's queue is free, ring any free agent.
    pub any_agent: bool,
}

impl Default for LeakRouting {
    fn default() -> Self {
        LeakRouting {
            overflow_after_secs: 30,
            on_call_uri: String::new(),
            any_agent: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The kind of demand this queue handles (the leak queue must say `leak`).
    #[serde(deserialize_with = "category_code")]
    pub category: Category,
    /// Non-leak callers waiting this long go to `uri`; without it they keep waiting.
    #[serde(default)]
    pub overflow: Option<Overflow>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overflow {
    pub after_secs: u64,
    pub uri: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Where the agent's phone is rung, e.g. `sip:1001@127.0.0.1`.
    pub uri: String,
    /// The queues (skills) this agent serves.
    pub queues: Vec<String>,
}

impl AcdConfig {
    /// Queue names, for the IVR validation.
    pub fn queue_names(&self) -> BTreeSet<String> {
        self.queues.keys().cloned().collect()
    }
}

fn sip_uri_problem(uri: &str) -> Option<String> {
    (!(uri.starts_with("sip:") || uri.starts_with("sips:")))
        .then(|| format!("{uri:?} is not a SIP URI: write sip:user@host"))
}

/// Checks `[acd]`; `leak_queue` is the IVR's `ivr.leak.queue`. Returns every problem.
pub fn validate(config: &AcdConfig, leak_queue: &str) -> Vec<ValidationError> {
    let mut p = Problems(Vec::new());
    if config.ring_timeout_secs == 0 {
        p.add("acd.ring_timeout_secs", "must be at least 1 second");
    }
    if config.announce_every_secs != 0 && config.announce_every_secs < MIN_ANNOUNCE_EVERY_SECS {
        p.add(
            "acd.announce_every_secs",
            format!(
                "{} seconds would announce the position without a pause: use 0 (off) or at \
                 least {MIN_ANNOUNCE_EVERY_SECS}",
                config.announce_every_secs
            ),
        );
    }
    if config.assumed_handle_secs == 0 {
        p.add("acd.assumed_handle_secs", "must be at least 1 second");
    }
    if config.leak.overflow_after_secs == 0 {
        p.add("acd.leak.overflow_after_secs", "must be at least 1 second");
    }
    if config.leak.on_call_uri.is_empty() {
        p.add(
            "acd.leak.on_call_uri",
            "no on-call number: leak callers nobody answers must reach the dispatcher; set sip:…",
        );
    } else if let Some(problem) = sip_uri_problem(&config.leak.on_call_uri) {
        p.add("acd.leak.on_call_uri", problem);
    }
    match config.queues.get(leak_queue) {
        None => p.add(
            "acd.queues",
            format!("no queue {leak_queue:?} for leak calls (ivr.leak.queue): add [acd.queues.{leak_queue}]"),
        ),
        Some(q) if q.category != Category::Leak => p.add(
            format!("acd.queues.{leak_queue}.category"),
            format!("the leak queue must have category \"leak\", not {:?}", q.category.code()),
        ),
        Some(_) => {}
    }
    for (name, queue) in &config.queues {
        if let Some(overflow) = &queue.overflow {
            if overflow.after_secs == 0 {
                p.add(
                    format!("acd.queues.{name}.overflow.after_secs"),
                    "must be at least 1 second",
                );
            }
            if let Some(problem) = sip_uri_problem(&overflow.uri) {
                p.add(format!("acd.queues.{name}.overflow.uri"), problem);
            }
        }
        let served = config.agents.values().any(|a| a.queues.contains(name));
        if !served && queue.overflow.is_none() && name != leak_queue {
            p.add(
                format!("acd.queues.{name}"),
                "no agent serves this queue and it has no overflow: callers would wait forever",
            );
        }
    }
    for (id, agent) in &config.agents {
        if let Some(problem) = sip_uri_problem(&agent.uri) {
            p.add(format!("acd.agents.{id}.uri"), problem);
        }
        for (i, queue) in agent.queues.iter().enumerate() {
            if !config.queues.contains_key(queue) {
                p.add(
                    format!("acd.agents.{id}.queues.{i}"),
                    format!("queue {queue:?} is not an [acd.queues] entry"),
                );
            }
        }
    }
    p.0
}
