//! The `[ivr]` configuration: numbers (DIDs) → flows chosen by business hours, shifts and the
//! holiday calendar; flows made of nodes; the leak fast track and the recording policy. Its
//! checks (`validate`, every problem with a dotted key path) are in `checks`.
//!
//! Owns the shape and the meaning of the IVR settings; must not read files (the config loader
//! does) nor look at the sounds directory (the caller passes the prompt names it found).

pub use super::checks::validate;
use super::special::SpecialGroupsConfig;
use super::survey::SurveyConfig;
use crate::tickets::Category;
pub(crate) use crate::validation::Problems;
pub use crate::validation::ValidationError;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One DTMF key: `0`–`9`, `*` or `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Digit(pub(super) char);

impl Digit {
    pub fn new(key: char) -> Option<Digit> {
        (key.is_ascii_digit() || key == '*' || key == '#').then_some(Digit(key))
    }
    pub fn as_char(self) -> char {
        self.0
    }
}

impl TryFrom<String> for Digit {
    type Error = String;
    fn try_from(text: String) -> Result<Digit, String> {
        let mut chars = text.chars();
        match (chars.next().and_then(Digit::new), chars.next()) {
            (Some(digit), None) => Ok(digit),
            _ => Err(format!(
                "{text:?} is not a phone key: write one of \"0\"–\"9\", \"*\" or \"#\""
            )),
        }
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A time of day in minutes after midnight; `24:00` is allowed as the end of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ClockTime(u16);

impl ClockTime {
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(text: String) -> Result<ClockTime, String> {
        let parsed = text.split_once(':').and_then(|(h, m)| {
            let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0)) && text.len() == 5).then_some(h * 60 + m)
        });
        parsed
            .map(ClockTime)
            .ok_or_else(|| format!("{text:?} is not a time of day: write HH:MM, e.g. \"08:00\""))
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// Opening hours within one day, `"08:00-19:00"`; the end is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TimeRange {
    pub start: ClockTime,
    pub end: ClockTime,
}

impl TimeRange {
    pub(super) fn contains(self, minute: u16) -> bool {
        self.start.0 <= minute && minute < self.end.0
    }
}

impl TryFrom<String> for TimeRange {
    type Error = String;
    fn try_from(text: String) -> Result<TimeRange, String> {
        let (start, end) = text.split_once('-').ok_or_else(|| {
            format!("{text:?} is not a range of hours: write \"HH:MM-HH:MM\", e.g. \"08:00-19:00\"")
        })?;
        Ok(TimeRange {
            start: ClockTime::try_from(start.trim().to_owned())?,
            end: ClockTime::try_from(end.trim().to_owned())?,
        })
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

fn category_code<'de, D: Deserializer<'de>>(d: D) -> Result<Category, D::Error> {
    let code = String::deserialize(d)?;
    code.parse::<Category>().map_err(|_| {
        let known: Vec<&str> = Category::ALL.iter().map(|c| c.code()).collect();
        serde::de::Error::custom(format!(
            "unknown ticket category {code:?}: use one of {}",
            known.join(", ")
        ))
    })
}

/// The whole `[ivr]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    #[serde(default)]
    pub leak: LeakConfig,
    #[serde(default)]
    pub recording: RecordingConfig,
    /// The post-call satisfaction survey.
    #[serde(default)]
    pub survey: SurveyConfig,
    /// Household flags that raise a caller's queue priority.
    #[serde(default)]
    pub special_groups: SpecialGroupsConfig,
    #[serde(default)]
    pub calendar: Calendar,
    #[serde(default)]
    pub business_hours: BusinessHours,
    /// Staff shifts; a shift may cross midnight (`19:00`–`08:00`). Shifts only pick a menu —
    /// the line never closes.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// Called number (DID) → flows. The entry `default` serves numbers not listed.
    pub numbers: BTreeMap<String, NumberConfig>,
    pub flows: BTreeMap<String, Flow>,
}

/// The gas-leak fast track.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeakConfig {
    /// Works from the first syllable of the first prompt and at every menu.
    pub digit: Digit,
    /// The emergency agent queue (an `[acd.queues]` name).
    pub queue: String,
    /// The phrase spoken before "请按" and the leak digit ("燃气泄漏").
    pub label: String,
    /// Offer the leak key right after each flow's greeting. Turn off only when the greeting
    /// is a recording that already names the key.
    pub speak_after_greeting: bool,
}

impl Default for LeakConfig {
    fn default() -> Self {
        LeakConfig {
            digit: Digit('1'),
            queue: "emergency".into(),
            label: "label_leak".into(),
            speak_after_greeting: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingPolicy {
    /// A notice; staying on the line is consent.
    Announce,
    /// A notice; pressing `opt_out_digit` refuses.
    OptOut,
    /// Recorded only after the caller presses `opt_in_digit`.
    OptIn,
    /// Never recorded, nothing said.
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    pub policy: RecordingPolicy,
    pub opt_out_digit: Digit,
    pub opt_in_digit: Digit,
    /// How long after the notice ends a key press still counts (opt_out / opt_in).
    pub response_window_secs: u64,
    /// A leak caller who skipped the notice is recorded (as under `announce`) unless false.
    pub record_leak_calls: bool,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            policy: RecordingPolicy::Announce,
            opt_out_digit: Digit('9'),
            opt_in_digit: Digit('2'),
            response_window_secs: 3,
            record_leak_calls: true,
        }
    }
}

/// Public holidays and make-up working days (调休), which move every year. In the daemon's
/// file they are written once, under `[calendar]`, for opening hours and ticket deadlines
/// alike; the config loader fills this from there.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    #[serde(deserialize_with = "dates")]
    pub holidays: BTreeSet<NaiveDate>,
    #[serde(deserialize_with = "dates")]
    pub make_up_workdays: BTreeSet<NaiveDate>,
}

/// Dates written either as TOML dates (`2026-10-01`) or as strings (`"2026-10-01"`).
pub fn dates<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<NaiveDate>, D::Error> {
    let bad = |what: String| {
        serde::de::Error::custom(format!(
            "{what} is not a date: write YYYY-MM-DD, e.g. 2026-10-01"
        ))
    };
    let mut out = BTreeSet::new();
    for value in Vec::<toml::Value>::deserialize(d)? {
        let date = match &value {
            toml::Value::String(text) => text.parse::<NaiveDate>().ok(),
            toml::Value::Datetime(dt) => match (dt.date, dt.time) {
                (Some(date), None) => NaiveDate::from_ymd_opt(
                    i32::from(date.year),
                    u32::from(date.month),
                    u32::from(date.day),
                ),
                _ => None,
            },
            _ => None,
        };
        out.insert(date.ok_or_else(|| bad(value.to_string()))?);
    }
    Ok(out)
}

fn all_day() -> Vec<TimeRange> {
    vec![TimeRange {
        start: ClockTime(0),
        end: ClockTime(24 * 60),
    }]
}

/// When agents are staffed for the business flow, per weekday; default: every day, all day.
/// A make-up working day uses `make_up_day`, or Monday's hours when that is not set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    #[serde(default = "all_day")]
    pub mon: Vec<TimeRange>,
    #[serde(default = "all_day")]
    pub tue: Vec<TimeRange>,
    #[serde(default = "all_day")]
    pub wed: Vec<TimeRange>,
    #[serde(default = "all_day")]
    pub thu: Vec<TimeRange>,
    #[serde(default = "all_day")]
    pub fri: Vec<TimeRange>,
    #[serde(default = "all_day")]
    pub sat: Vec<TimeRange>,
    #[serde(default = "all_day")]
    pub sun: Vec<TimeRange>,
    #[serde(default)]
    pub make_up_day: Option<Vec<TimeRange>>,
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            mon: all_day(),
            tue: all_day(),
            wed: all_day(),
            thu: all_day(),
            fri: all_day(),
            sat: all_day(),
            sun: all_day(),
            make_up_day: None,
        }
    }
}

impl BusinessHours {
    pub(super) fn days(&self) -> [(&'static str, &[TimeRange]); 8] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
            ("make_up_day", self.make_up_day.as_deref().unwrap_or(&[])),
        ]
    }

    fn for_weekday(&self, day: Weekday) -> &[TimeRange] {
        match day {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub name: String,
    pub start: ClockTime,
    /// Earlier than `start` means the shift crosses midnight.
    pub end: ClockTime,
}

impl Shift {
    pub(super) fn contains(&self, minute: u16) -> bool {
        let (start, end) = (self.start.0, self.end.0 % (24 * 60));
        if start < end {
            start <= minute && minute < end
        } else {
            minute >= start || minute < end
        }
    }
}

/// Which flow a called number runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    /// In business hours (unless the current shift has its own flow).
    pub flow: String,
    /// Outside business hours; the line still answers. Defaults to `flow`.
    #[serde(default)]
    pub after_hours_flow: Option<String>,
    /// On public holidays; defaults to `after_hours_flow`.
    #[serde(default)]
    pub holiday_flow: Option<String>,
    /// Shift name → flow, used in business hours during that shift.
    #[serde(default)]
    pub shift_flows: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// The node the caller enters after the greeting and the recording notice.
    pub start: String,
    /// Prompts played before the recording notice, in the same barge-in-able playback.
    #[serde(default)]
    pub greeting: Vec<String>,
    pub nodes: BTreeMap<String, Node>,
}

/// Silence allowed at a menu or entry when the node does not say.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_retries() -> u32 {
    2
}
fn invalid_input() -> String {
    "invalid_input".into()
}
fn no_input() -> String {
    "no_input".into()
}
fn hash_key() -> Digit {
    Digit('#')
}
fn entry_done() -> String {
    "entry_done".into()
}
fn goodbye() -> Vec<String> {
    vec!["goodbye".into()]
}
fn transfer_agent() -> Vec<String> {
    vec!["transfer_agent".into()]
}
fn two() -> usize {
    2
}

/// One step of a flow, tagged by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// Play prompts, then go on.
    Play { prompts: Vec<String>, next: String },
    /// Offer choices by key.
    Menu(Menu),
    /// Read a number (account, meter) into a variable.
    Collect(Collect),
    /// Play the outage announcements active at answer time, if any, then go on.
    Announcement { next: String },
    /// Wait for an agent.
    Queue {
        queue: String,
        #[serde(default)]
        priority: u8,
        #[serde(deserialize_with = "category_code")]
        category: Category,
        #[serde(default = "transfer_agent")]
        prompts: Vec<String>,
    },
    /// Hand the call to a SIP URI; `on_failure` (else a goodbye) when it is not answered.
    Transfer {
        uri: String,
        #[serde(default)]
        on_failure: Option<String>,
    },
    /// Say goodbye and hang up.
    Hangup {
        #[serde(default = "goodbye")]
        prompts: Vec<String>,
    },
    /// Branch on whether the caller has an open ticket (the lead looks it up before answer).
    OpenTicketCheck { if_open: String, otherwise: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// A recording of the whole menu, keys included. Empty (the default): the menu speaks
    /// its options itself from their labels, so what it says always matches its keys.
    #[serde(default)]
    pub prompts: Vec<String>,
    pub options: Vec<MenuOption>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How often the menu repeats after a wrong key or silence before `fallback`.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "invalid_input")]
    pub invalid_prompt: String,
    #[serde(default = "no_input")]
    pub no_input_prompt: String,
    /// Where the caller goes when retries run out: must be a queue or transfer node, so
    /// nobody is ever left with a dead end.
    pub fallback: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    pub digit: Digit,
    pub next: String,
    /// The phrase naming this choice ("故障报修"), spoken as "label, 请按 digit".
    #[serde(default)]
    pub label: Option<String>,
}

/// Key entry. The leak digit alone (then `#` or silence) still means "leak": entries have at
/// least two digits, so this never cuts an account number that starts with that digit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    pub prompts: Vec<String>,
    pub variable: String,
    #[serde(default = "two")]
    pub min_len: usize,
    pub max_len: usize,
    #[serde(default = "hash_key")]
    pub terminator: Digit,
    /// The phrase spoken after the prompts, before "请按" and the terminator ("输入完毕").
    #[serde(default = "entry_done")]
    pub terminator_prompt: String,
    /// Silence before the first key and between keys.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "invalid_input")]
    pub invalid_prompt: String,
    #[serde(default = "no_input")]
    pub no_input_prompt: String,
    pub next: String,
    /// As for menus: a queue or transfer node.
    pub fallback: String,
}

impl Node {
    /// Every node this one can lead to, with the key naming the reference.
    pub fn edges(&self) -> Vec<(String, &str)> {
        match self {
            Node::Play { next, .. } | Node::Announcement { next } => vec![("next".into(), next)],
            Node::Menu(menu) => {
                let mut edges: Vec<(String, &str)> = menu
                    .options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| (format!("options.{i}.next"), o.next.as_str()))
                    .collect();
                edges.push(("fallback".into(), &menu.fallback));
                edges
            }
            Node::Collect(c) => vec![("next".into(), &c.next), ("fallback".into(), &c.fallback)],
            Node::Transfer { on_failure, .. } => on_failure
                .iter()
                .map(|n| ("on_failure".into(), n.as_str()))
                .collect(),
            Node::OpenTicketCheck { if_open, otherwise } => {
                vec![("if_open".into(), if_open), ("otherwise".into(), otherwise)]
            }
            Node::Queue { .. } | Node::Hangup { .. } => Vec::new(),
        }
    }

    /// Where the call leaves the menus: a person, another number or a goodbye.
    pub fn is_exit(&self) -> bool {
        matches!(
            self,
            Node::Queue { .. } | Node::Transfer { .. } | Node::Hangup { .. }
        )
    }

    pub(super) fn reaches_person(&self) -> bool {
        matches!(self, Node::Queue { .. } | Node::Transfer { .. })
    }

    pub(super) fn prompts(&self) -> Vec<(String, &str)> {
        fn list<'n>(key: &str, prompts: &'n [String]) -> Vec<(String, &'n str)> {
            let numbered = prompts.iter().enumerate();
            numbered
                .map(|(i, p)| (format!("{key}.{i}"), p.as_str()))
                .collect()
        }
        match self {
            Node::Play { prompts, .. } | Node::Queue { prompts, .. } | Node::Hangup { prompts } => {
                list("prompts", prompts)
            }
            Node::Menu(m) => {
                let mut out = list("prompts", &m.prompts);
                out.push(("invalid_prompt".into(), &m.invalid_prompt));
                out.push(("no_input_prompt".into(), &m.no_input_prompt));
                out
            }
            Node::Collect(c) => {
                let mut out = list("prompts", &c.prompts);
                out.push(("invalid_prompt".into(), &c.invalid_prompt));
                out.push(("no_input_prompt".into(), &c.no_input_prompt));
                out
            }
            Node::Announcement { .. } | Node::Transfer { .. } | Node::OpenTicketCheck { .. } => {
                Vec::new()
            }
        }
    }
}

/// Why a flow was chosen, for the ticket's IVR path and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSlot {
    Holiday,
    BusinessHours { shift: Option<String> },
    AfterHours,
}

/// The flow a call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowChoice {
    /// The `[ivr.numbers]` key used (`default` when the DID is not listed).
    pub number: String,
    pub flow: String,
    pub slot: TimeSlot,
}

/// Name of the number entry that serves DIDs not listed.
pub const DEFAULT_NUMBER: &str = "default";

/// Prompts the engine itself plays, whatever the flows say.
pub const ENGINE_PROMPTS: &[&str] = &[
    "leak_connecting",
    "leak_safety_advice",
    "queue_wait",
    "goodbye",
];

impl IvrConfig {
    /// Whether `date` is a working day: make-up days are, holidays are not, otherwise the
    /// weekday decides by having business hours at all.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.calendar.holidays.contains(&date) && !self.calendar.make_up_workdays.contains(&date)
    }

    /// The shift running at `local`, if shifts are configured. Shifts may overlap (004:
    /// 07–15, 14:30–22:30, 22–07 hand over for half an hour): the one that started last
    /// wins, so the incoming shift's flow serves the handover.
    pub fn shift_at(&self, local: NaiveDateTime) -> Option<&Shift> {
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let day = 24 * 60;
        self.shifts
            .iter()
            .filter(|s| s.contains(minute))
            .min_by_key(|s| (minute + day - s.start.minutes() % day) % day)
    }

    /// Whether `local` falls in business hours (never on a holiday).
    pub fn in_business_hours(&self, local: NaiveDateTime) -> bool {
        let date = local.date();
        if self.is_holiday(date) {
            return false;
        }
        let hours = if self.calendar.make_up_workdays.contains(&date) {
            self.business_hours
                .make_up_day
                .as_deref()
                .unwrap_or(&self.business_hours.mon)
        } else {
            self.business_hours.for_weekday(date.weekday())
        };
        let minute = (local.hour() * 60 + local.minute()) as u16;
        hours.iter().any(|r| r.contains(minute))
    }

    /// Picks the flow for a call to `did` at the caller-independent local time `local`.
    /// `None` only when neither the DID nor `default` is configured (validation forbids it).
    pub fn select_flow(&self, did: &str, local: NaiveDateTime) -> Option<FlowChoice> {
        let (number, entry) = self
            .numbers
            .get_key_value(did)
            .or_else(|| self.numbers.get_key_value(DEFAULT_NUMBER))?;
        let after_hours = entry.after_hours_flow.as_ref().unwrap_or(&entry.flow);
        let (flow, slot) = if self.is_holiday(local.date()) {
            (
                entry.holiday_flow.as_ref().unwrap_or(after_hours),
                TimeSlot::Holiday,
            )
        } else if self.in_business_hours(local) {
            let shift = self.shift_at(local).map(|s| s.name.clone());
            let flow = shift
                .as_ref()
                .and_then(|s| entry.shift_flows.get(s))
                .unwrap_or(&entry.flow);
            (flow, TimeSlot::BusinessHours { shift })
        } else {
            (after_hours, TimeSlot::AfterHours)
        };
        Some(FlowChoice {
            number: number.clone(),
            flow: flow.clone(),
            slot,
        })
    }
}
