//! Spoken keys: what the caller is told to press is built from the configured keys, and no two
//! keys that are live at the same moment may mean different things.
//!
//! A prompt that names a key is composed as *phrase + "请按" + the digit's own prompt*
//! (`label_leak`, `press_key`, `digit_1`), never taken from a recording with the digit baked
//! in: when an administrator changes a key, what the caller hears changes with it. A menu
//! speaks its options itself from their `label`s, the leak key first.
//!
//! Owns the composition of key prompts and the key-collision checks; must not know which
//! sound files exist (validation gets their names) nor play anything (the engine does).

use super::config::{
    Collect, Digit, Flow, IvrConfig, LeakConfig, Menu, Node, Problems, RecordingConfig,
    RecordingPolicy,
};

/// "请按" (press): spoken between a phrase and the key it offers.
pub const PRESS_KEY: &str = "press_key";

/// The notice every recorded line plays ("为保证服务质量，您的通话可能被录音").
pub const RECORDING_NOTICE: &str = "recording_notice";
/// "如不同意录音", followed by "请按" and the opt-out key.
pub const OPT_OUT_PHRASE: &str = "recording_opt_out";
/// "如同意录音", followed by "请按" and the opt-in key.
pub const OPT_IN_PHRASE: &str = "recording_opt_in";

/// The prompt that speaks one key: `digit_0`…`digit_9`, `digit_star`, `digit_hash`.
pub fn digit_prompt(digit: Digit) -> String {
    match digit.as_char() {
        '*' => "digit_star".into(),
        '#' => "digit_hash".into(),
        d => format!("digit_{d}"),
    }
}

/// "<phrase>, 请按 <digit>".
pub fn key_offer(phrase: &str, digit: Digit) -> [String; 3] {
    [phrase.to_owned(), PRESS_KEY.to_owned(), digit_prompt(digit)]
}

impl LeakConfig {
    /// "燃气泄漏, 请按 <leak digit>".
    pub fn offer(&self) -> [String; 3] {
        key_offer(&self.label, self.digit)
    }
}

impl RecordingConfig {
    /// What the caller hears about recording under this policy, keys included.
    pub fn notice_prompts(&self) -> Vec<String> {
        let mut prompts = Vec::new();
        let offer = match self.policy {
            RecordingPolicy::Off => return prompts,
            RecordingPolicy::Announce => None,
            RecordingPolicy::OptOut => Some(key_offer(OPT_OUT_PHRASE, self.opt_out_digit)),
            RecordingPolicy::OptIn => Some(key_offer(OPT_IN_PHRASE, self.opt_in_digit)),
        };
        prompts.push(RECORDING_NOTICE.to_owned());
        prompts.extend(offer.into_iter().flatten());
        prompts
    }
}

impl IvrConfig {
    /// The greeting of `flow`, the leak key (unless the flow's greeting is empty or the
    /// administrator's recording already says it) and the recording notice: the intro a
    /// call hears before its first node.
    pub fn intro_prompts(&self, flow: Option<&Flow>) -> Vec<String> {
        let mut prompts: Vec<String> = flow.map(|f| f.greeting.clone()).unwrap_or_default();
        if !prompts.is_empty() && self.leak.speak_after_greeting {
            prompts.extend(self.leak.offer());
        }
        prompts.extend(self.recording.notice_prompts());
        prompts
    }
}

impl Menu {
    /// Whether the menu speaks its own options from their labels (no hand-made `prompts`).
    pub fn is_self_describing(&self) -> bool {
        self.prompts.is_empty()
    }

    /// What the menu says: the administrator's own recording, or the leak key followed by
    /// "label, 请按 N" for each option in configured order.
    pub fn spoken(&self, leak: &LeakConfig) -> Vec<String> {
        if !self.is_self_describing() {
            return self.prompts.clone();
        }
        let mut prompts = Vec::with_capacity(3 * (self.options.len() + 1));
        prompts.extend(leak.offer());
        for option in &self.options {
            // Validation refuses a self-describing menu with an unlabelled option.
            if let Some(label) = &option.label {
                prompts.extend(key_offer(label, option.digit));
            }
        }
        prompts
    }
}

impl Collect {
    /// The entry prompts, then "输入完毕, 请按 <terminator>".
    pub fn spoken(&self) -> Vec<String> {
        let mut prompts = self.prompts.clone();
        prompts.extend(key_offer(&self.terminator_prompt, self.terminator));
        prompts
    }
}

impl Node {
    /// Every prompt the node can make the engine play, with the key naming it, composed key
    /// prompts included (their digits' prompts named by the key that sets the digit).
    pub(crate) fn spoken_prompts(&self, leak: &LeakConfig) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut offer = |key: String, phrase: &str, digit: Digit, digit_key: String| {
            out.push((key, phrase.to_owned()));
            out.push((digit_key.clone(), PRESS_KEY.to_owned()));
            out.push((digit_key, digit_prompt(digit)));
        };
        match self {
            Node::Menu(menu) if menu.is_self_describing() => {
                offer(
                    "ivr.leak.label".into(),
                    &leak.label,
                    leak.digit,
                    "ivr.leak.digit".into(),
                );
                for (i, option) in menu.options.iter().enumerate() {
                    if let Some(label) = &option.label {
                        let at = format!("options.{i}");
                        offer(format!("{at}.label"), label, option.digit, at);
                    }
                }
            }
            Node::Collect(c) => offer(
                "terminator_prompt".into(),
                &c.terminator_prompt,
                c.terminator,
                "terminator".into(),
            ),
            _ => {}
        }
        out
    }
}

/// Where a key is configured, for messages: its dotted path and what it does.
pub(super) struct LiveKey {
    pub(super) digit: Digit,
    pub(super) path: String,
    pub(super) meaning: &'static str,
}

/// Checks that every prompt a flow speaks tells the truth about its keys, and that no two
/// keys live at the same moment collide. `locate` names a key with its line in the file.
pub(crate) fn validate_keys(config: &IvrConfig, locate: &dyn Fn(&str) -> String, p: &mut Problems) {
    let leak = LiveKey {
        digit: config.leak.digit,
        path: "ivr.leak.digit".into(),
        meaning: "the leak key",
    };
    // The intro: greeting and recording notice, then the response window.
    let rec = &config.recording;
    let consent = match rec.policy {
        RecordingPolicy::OptOut => Some((rec.opt_out_digit, "ivr.recording.opt_out_digit")),
        RecordingPolicy::OptIn => Some((rec.opt_in_digit, "ivr.recording.opt_in_digit")),
        RecordingPolicy::Announce | RecordingPolicy::Off => None,
    };
    if let Some((digit, path)) = consent {
        let consent = LiveKey {
            digit,
            path: path.into(),
            meaning: "the recording consent key",
        };
        collide(&[&leak, &consent], locate, p);
    }
    for (flow_name, flow) in &config.flows {
        for (node_name, node) in &flow.nodes {
            let at = format!("ivr.flows.{flow_name}.nodes.{node_name}");
            match node {
                Node::Menu(menu) => validate_menu(menu, &at, &leak, locate, p),
                Node::Collect(collect) => validate_collect(collect, &at, &leak, locate, p),
                _ => {}
            }
        }
    }
}

fn validate_menu(
    menu: &Menu,
    at: &str,
    leak: &LiveKey,
    locate: &dyn Fn(&str) -> String,
    p: &mut Problems,
) {
    let options: Vec<LiveKey> = menu
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| LiveKey {
            digit: o.digit,
            path: format!("{at}.options.{i}"),
            meaning: "a menu option",
        })
        .collect();
    let mut live: Vec<&LiveKey> = vec![leak];
    live.extend(&options);
    collide(&live, locate, p);
    if menu.is_self_describing() {
        for (i, option) in menu.options.iter().enumerate() {
            if option.label.is_none() {
                p.add(
                    format!("{at}.options.{i}.label"),
                    format!(
                        "option {} has no label, so the menu cannot tell callers about it: \
                         give it a label prompt (e.g. label = \"label_repair\"), or record the \
                         whole menu and list it in prompts",
                        option.digit
                    ),
                );
            }
        }
    } else if let Some(i) = menu.options.iter().position(|o| o.label.is_some()) {
        p.add(
            format!("{at}.options.{i}.label"),
            "labels are spoken only by menus without prompts: remove prompts to let the menu \
             speak its options, or remove the labels",
        );
    } else {
        p.warn(
            format!("{at}.prompts"),
            "the keys spoken in a recorded menu prompt cannot be checked against options and \
             ivr.leak.digit; give each option a label and remove prompts to have the menu \
             speak its configured keys",
        );
    }
}

fn validate_collect(
    collect: &Collect,
    at: &str,
    leak: &LiveKey,
    locate: &dyn Fn(&str) -> String,
    p: &mut Problems,
) {
    let terminator = LiveKey {
        digit: collect.terminator,
        path: format!("{at}.terminator"),
        meaning: "the entry's terminator",
    };
    collide(&[leak, &terminator], locate, p);
    if collect.terminator.as_char().is_ascii_digit() && collect.terminator != leak.digit {
        p.add(
            terminator.path,
            format!(
                "key {} would end an entry whose digits include it: use \"#\" or \"*\"",
                collect.terminator
            ),
        );
    }
}

/// Reports every pair of `live` keys that share a digit, on the later one.
pub(super) fn collide(live: &[&LiveKey], locate: &dyn Fn(&str) -> String, p: &mut Problems) {
    for (i, later) in live.iter().enumerate() {
        if let Some(earlier) = live[..i].iter().find(|k| k.digit == later.digit) {
            p.add(
                later.path.clone(),
                format!(
                    "key {} is {} here and also {} at {}, and both are live at the same time: \
                     give one of them another key",
                    later.digit,
                    later.meaning,
                    earlier.meaning,
                    locate(&earlier.path)
                ),
            );
        }
    }
}
