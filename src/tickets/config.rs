//! The `[tickets]` configuration section (`RulesConfig`): every limit of hotline-rules §2–§4
//! with the values of document 000 as defaults, overridable per deployment, and its
//! validation into `Rules`, the bundle every rule function takes.
//!
//! Owns parsing and validating the rules' settings; must not read files or the clock.

use crate::tickets::calendar::{Calendar, CalendarConfig, CalendarError};
use crate::tickets::model::{Category, Channel, ComplaintLevel};
use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A time limit as the regulations state it: minutes and hours on the wall clock, working
/// days on the calendar. Written in the config as `"20min"`, `"2h"` or `"3wd"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Span {
    Minutes(u32),
    Hours(u32),
    WorkingDays(u32),
}

impl Span {
    /// The instant this span ends when it starts at `start`.
    pub fn after(self, start: DateTime<Utc>, calendar: &Calendar) -> DateTime<Utc> {
        match self {
            Span::Minutes(m) => calendar.add_wall_clock(start, Duration::minutes(m.into())),
            Span::Hours(h) => calendar.add_wall_clock(start, Duration::hours(h.into())),
            Span::WorkingDays(n) => calendar.add_working_days(start, n),
        }
    }
}

impl Span {
    /// The instant this span before `end` begins: the latest start that still ends by `end`.
    pub fn before(self, end: DateTime<Utc>, calendar: &Calendar) -> DateTime<Utc> {
        let back = |d: Duration| {
            end.checked_sub_signed(d)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        match self {
            Span::Minutes(m) => back(Duration::minutes(m.into())),
            Span::Hours(h) => back(Duration::hours(h.into())),
            Span::WorkingDays(n) => calendar.sub_working_days(end, n),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Minutes(m) => write!(f, "{m}min"),
            Span::Hours(h) => write!(f, "{h}h"),
            Span::WorkingDays(n) => write!(f, "{n}wd"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a time limit; write minutes as \"20min\", hours as \"2h\" or working days as \"3wd\""
)]
pub struct BadSpan(String);

impl FromStr for Span {
    type Err = BadSpan;
    fn from_str(text: &str) -> Result<Span, BadSpan> {
        let bad = || BadSpan(text.to_owned());
        let digits_end = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(digits_end);
        let number: u32 = number.parse().map_err(|_| bad())?;
        match unit {
            "min" | "m" => Ok(Span::Minutes(number)),
            "h" => Ok(Span::Hours(number)),
            "wd" => Ok(Span::WorkingDays(number)),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for Span {
    type Error = BadSpan;
    fn try_from(text: String) -> Result<Span, BadSpan> {
        text.parse()
    }
}

/// How long before its finish deadline a unit must ask for an extension: a span before it
/// (`"1wd"`, `"24h"`), or a share of the deadline's whole span (`"50%"`: no later than
/// half-way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Notice {
    Before(Span),
    Share(u8),
}

impl Notice {
    /// The latest instant to ask for an extension of a deadline running from `start` to
    /// `due`.
    pub fn latest(
        self,
        start: DateTime<Utc>,
        due: DateTime<Utc>,
        calendar: &Calendar,
    ) -> DateTime<Utc> {
        match self {
            Notice::Before(span) => span.before(due, calendar),
            Notice::Share(percent) => {
                let span_ms = (due - start).num_milliseconds();
                due - Duration::milliseconds(span_ms * i64::from(percent) / 100)
            }
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Before(span) => span.fmt(f),
            Notice::Share(percent) => write!(f, "{percent}% of the span"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an extension notice; write a share of the span as \"50%\" (0–100) or a span before the deadline as \"24h\", \"30min\" or \"1wd\""
)]
pub struct BadNotice(String);

impl FromStr for Notice {
    type Err = BadNotice;
    fn from_str(text: &str) -> Result<Notice, BadNotice> {
        let bad = || BadNotice(text.to_owned());
        match text.strip_suffix('%') {
            Some(number) => match number.parse::<u8>() {
                Ok(percent) if percent <= 100 && !number.starts_with('+') => {
                    Ok(Notice::Share(percent))
                }
                _ => Err(bad()),
            },
            None => text.parse().map(Notice::Before).map_err(|_| bad()),
        }
    }
}

impl TryFrom<String> for Notice {
    type Error = BadNotice;
    fn try_from(text: String) -> Result<Notice, BadNotice> {
        text.parse()
    }
}

/// A local time-of-day window such as `"09:00-11:00"` (start included, end excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time window; write it as \"09:00-11:00\" with the start before the end")]
pub struct BadWindow(String);

impl FromStr for Window {
    type Err = BadWindow;
    fn from_str(text: &str) -> Result<Window, BadWindow> {
        let bad = || BadWindow(text.to_owned());
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let parse = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let window = Window {
            start: parse(start)?,
            end: parse(end)?,
        };
        if window.start >= window.end {
            return Err(bad());
        }
        Ok(window)
    }
}

impl TryFrom<String> for Window {
    type Error = BadWindow;
    fn try_from(text: String) -> Result<Window, BadWindow> {
        text.parse()
    }
}

/// Whether a local time lies in the daily span [from, until), which may wrap midnight.
pub(crate) fn in_daily_span(time: NaiveTime, from: NaiveTime, until: NaiveTime) -> bool {
    if from > until {
        time >= from || time < until
    } else {
        from <= time && time < until
    }
}

/// Overrides of one category's limits; an absent key keeps the default of 000 §14.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CategoryLimits {
    /// From intake to dispatch to the responsible unit.
    pub dispatch: Option<Span>,
    /// From dispatch until the unit has contacted the customer.
    pub contact: Option<Span>,
    /// From dispatch (or reopening) until the unit's reply.
    pub finish: Option<Span>,
    /// From dispatch until the investigation is closed (complaints).
    pub investigation: Option<Span>,
    /// From dispatch until the unit is on site (leaks: 000 §14 "立即赶赴现场").
    pub on_site: Option<Span>,
    /// How long before the finish deadline an extension must be asked for; replaces
    /// `tickets.extension_notice` for this category (or channel, or rural area).
    pub extension_notice: Option<Notice>,
}

/// Heating-line callback sampling (004 §5): per unit and day, once the day has ended, the
/// tier's percentage of the day's volume (rounded up) is called back. Mandatory human
/// callbacks are never sampled out and not counted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Mixed into the order tickets are drawn in, so that a deployment's sample is stable
    /// and reproducible.
    pub seed: u64,
    /// Volume tiers, ascending by `up_to`; the last may omit `up_to` (no upper bound).
    pub tiers: Vec<SamplingTier>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            seed: 0,
            tiers: vec![
                SamplingTier {
                    up_to: Some(20),
                    percent: 30,
                },
                SamplingTier {
                    up_to: Some(50),
                    percent: 20,
                },
                SamplingTier {
                    up_to: None,
                    percent: 10,
                },
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTier {
    pub up_to: Option<u32>,
    pub percent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    /// From the unit's reply until the callback is due.
    pub within: Span,
    /// Preferred local windows for calling customers back.
    pub windows: Vec<Window>,
    /// No callback from this local time …
    pub quiet_from: String,
    /// … until this one the next morning.
    pub quiet_until: String,
    /// Attempts before an unreachable customer's ticket is closed.
    pub min_attempts: u32,
    /// Minimum minutes between two attempts.
    pub attempt_gap_minutes: u32,
    /// Sampling of non-mandatory callbacks; absent means every such ticket is called back.
    pub sampling: Option<SamplingConfig>,
    /// Categories that get no callback (000 §14.9: queries, consultations, suggestions,
    /// praise; urges are followed up on the ticket they chase).
    pub exempt_categories: Vec<Category>,
    /// Channels whose tickets all get a human callback (001 §7, §35: government channels —
    /// 12345, message boards, letters and visits, group-company referrals — and the online
    /// government platforms).
    pub human_channels: Vec<Channel>,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            within: Span::WorkingDays(1),
            windows: vec![
                Window {
                    start: hm(9, 0),
                    end: hm(11, 0),
                },
                Window {
                    start: hm(14, 30),
                    end: hm(16, 0),
                },
            ],
            quiet_from: "21:00".into(),
            quiet_until: "08:00".into(),
            min_attempts: 3,
            attempt_gap_minutes: 120,
            sampling: None,
            exempt_categories: vec![
                Category::Query,
                Category::Consultation,
                Category::Suggestion,
                Category::Praise,
                Category::Urge,
            ],
            human_channels: vec![
                Channel::Government12345,
                Channel::MessageBoard,
                Channel::LetterVisit,
                Channel::GroupReferral,
                Channel::OnlineGov,
            ],
        }
    }
}

/// The centre's answer to the caller after the unit's reply for demands that get no
/// satisfaction callback (000 §14.2 consultations: "接到回复工单后1个工作日内回复…客户";
/// §14.7 gives suggestions the same, which §14.9 exempts from callbacks: the default follows
/// §14.7, and removing `suggestion` follows §14.9).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyToCallerConfig {
    /// From the unit's reply until the centre has answered the caller.
    pub within: Span,
    /// The categories answered so.
    pub categories: Vec<Category>,
}

impl Default for ReplyToCallerConfig {
    fn default() -> Self {
        ReplyToCallerConfig {
            within: Span::WorkingDays(1),
            categories: vec![Category::Consultation, Category::Suggestion],
        }
    }
}

/// What a unit's reply must say (004 §3: replies state what was done, "严禁回复'已处理'等字
/// 眼"): at least `min_chars` characters, and not only one of `empty_phrases` (compared
/// without spaces and punctuation).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyConfig {
    pub min_chars: u32,
    pub empty_phrases: Vec<String>,
}

impl Default for ReplyConfig {
    fn default() -> Self {
        ReplyConfig {
            min_chars: 5,
            empty_phrases: [
                "已处理",
                "已解决",
                "处理完毕",
                "已办结",
                "已完成",
                "已修好",
                "好了",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Complaint level thresholds (000 §14.6). The store counts different callers within
/// `window_days` ("一个月内") and the same caller's repeats within `same_caller_window_days`,
/// which 000 §14.6 does not limit: `None` (the default) counts them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplaintConfig {
    pub window_days: u32,
    pub same_caller_window_days: Option<u32>,
    /// Different callers with the same complaint that make it L2.
    pub same_subject_callers: u32,
    /// People in a collective complaint that make it L2.
    pub collective_size: u32,
    /// Complaints by the same caller about the same event that make it L1.
    pub same_caller_repeats: u32,
}

impl Default for ComplaintConfig {
    fn default() -> Self {
        ComplaintConfig {
            window_days: 30,
            same_caller_window_days: None,
            same_subject_callers: 5,
            collective_size: 5,
            same_caller_repeats: 5,
        }
    }
}

/// The heating line's night rule (004 §2–3): tickets taken in the night are, unless the
/// caller insists, not dispatched before morning and are finished by `done_by` that morning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NightHoldConfig {
    /// The night starts at this local time …
    pub from: String,
    /// … and ends at this one, when held tickets are dispatched.
    pub until: String,
    /// Held tickets are finished by this local time the morning the night ends.
    pub done_by: String,
}

impl Default for NightHoldConfig {
    fn default() -> Self {
        NightHoldConfig {
            from: "21:00".into(),
            until: "07:00".into(),
            done_by: "11:00".into(),
        }
    }
}

/// `NightHoldConfig` with its times parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NightHold {
    pub from: NaiveTime,
    pub until: NaiveTime,
    pub done_by: NaiveTime,
}

/// When a deadline counts as nearly due: within `minutes_before` of it when set, otherwise
/// once no more than `fraction_remaining` of its span is left.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearlyDueConfig {
    pub fraction_remaining: f64,
    pub minutes_before: Option<u32>,
}

impl Default for NearlyDueConfig {
    fn default() -> Self {
        NearlyDueConfig {
            fraction_remaining: 0.2,
            minutes_before: None,
        }
    }
}

/// The `[tickets]` section of the main configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    pub calendar: CalendarConfig,
    /// Per-category overrides, keyed by category code (`[tickets.limits.repair]`).
    pub limits: BTreeMap<Category, CategoryLimits>,
    /// Per-channel overrides applied after the category's (`[tickets.channel_limits.gov_12345]`).
    pub channel_limits: BTreeMap<Channel, CategoryLimits>,
    /// Areas (as tickets name them in `area`) served under the rural commitments.
    pub rural_areas: Vec<String>,
    /// Per-category overrides for tickets of a rural area, applied after the category's and
    /// before the channel's (`[tickets.rural_limits.leak] on_site = "60min"`).
    pub rural_limits: BTreeMap<Category, CategoryLimits>,
    /// Complaint handling limit per level (`l3 = "3h"`).
    pub complaint_limits: BTreeMap<ComplaintLevel, Span>,
    /// A unit may return a ticket within this span of dispatch.
    pub return_within: Span,
    /// A unit that refuses a service application explains it within this span of dispatch
    /// (000 §14.5).
    pub refusal_within: Span,
    /// An extension must be asked at least this long before the deadline, unless the
    /// category's limits say otherwise. 000 §15.2 sets no notice; the default, half the
    /// span, lets every category ask before half its time is gone.
    pub extension_notice: Notice,
    /// Urges per event before the supervisor takes over.
    pub max_urges: u32,
    /// A new ticket is a repeat (重复件, 003 §11) when the same caller number filed one of
    /// the same category within this many days that is still open; 0 leaves it to the
    /// agent.
    pub repeat_window_days: u32,
    pub complaint: ComplaintConfig,
    pub callback: CallbackConfig,
    pub reply_to_caller: ReplyToCallerConfig,
    pub reply: ReplyConfig,
    pub nearly_due: NearlyDueConfig,
    /// The heating line's night rule; absent (the default of 000) dispatches around the clock.
    pub night_hold: Option<NightHoldConfig>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            calendar: CalendarConfig::default(),
            limits: BTreeMap::new(),
            channel_limits: BTreeMap::new(),
            rural_areas: Vec::new(),
            rural_limits: BTreeMap::new(),
            complaint_limits: BTreeMap::new(),
            return_within: Span::WorkingDays(1),
            refusal_within: Span::WorkingDays(2),
            extension_notice: Notice::Share(50),
            max_urges: 2,
            repeat_window_days: 30,
            complaint: ComplaintConfig::default(),
            callback: CallbackConfig::default(),
            reply_to_caller: ReplyToCallerConfig::default(),
            reply: ReplyConfig::default(),
            nearly_due: NearlyDueConfig::default(),
            night_hold: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesConfigError {
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("tickets.{key} {value:?} is not a time of day; write it as \"21:00\"")]
    BadTime { key: &'static str, value: String },
    #[error("tickets.callback.min_attempts must be at least 1")]
    NoAttempts,
    #[error(
        "tickets.callback.sampling.tiers must ascend by up_to, end with one tier without up_to, and give percents of 0–100"
    )]
    BadTiers,
    #[error("tickets.nearly_due.fraction_remaining {0} must lie between 0 and 1")]
    BadFraction(f64),
    #[error("tickets.{key} must be above zero")]
    ZeroCount { key: &'static str },
}

/// The validated rules: the configuration plus its calendar and parsed quiet hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub config: RulesConfig,
    pub calendar: Calendar,
    pub quiet_from: NaiveTime,
    pub quiet_until: NaiveTime,
    pub night_hold: Option<NightHold>,
}

impl Rules {
    pub fn new(config: RulesConfig) -> Result<Rules, RulesConfigError> {
        let calendar = Calendar::new(&config.calendar)?;
        let time = |key: &'static str, value: &str| {
            NaiveTime::parse_from_str(value, "%H:%M").map_err(|_| RulesConfigError::BadTime {
                key,
                value: value.to_owned(),
            })
        };
        let quiet_from = time("callback.quiet_from", &config.callback.quiet_from)?;
        let quiet_until = time("callback.quiet_until", &config.callback.quiet_until)?;
        let night_hold = match &config.night_hold {
            Some(night) => Some(NightHold {
                from: time("night_hold.from", &night.from)?,
                until: time("night_hold.until", &night.until)?,
                done_by: time("night_hold.done_by", &night.done_by)?,
            }),
            None => None,
        };
        if config.callback.min_attempts == 0 {
            return Err(RulesConfigError::NoAttempts);
        }
        if let Some(sampling) = &config.callback.sampling {
            let bounds: Vec<Option<u32>> = sampling.tiers.iter().map(|t| t.up_to).collect();
            let ascending = bounds.windows(2).all(|pair| match pair {
                [Some(a), Some(b)] => a < b,
                [Some(_), None] => true,
                _ => false,
            });
            let open_ended = matches!(bounds.last(), Some(None));
            if !ascending || !open_ended || sampling.tiers.iter().any(|t| t.percent > 100) {
                return Err(RulesConfigError::BadTiers);
            }
        }
        let fraction = config.nearly_due.fraction_remaining;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(RulesConfigError::BadFraction(fraction));
        }
        for (key, value) in [
            ("max_urges", config.max_urges),
            (
                "complaint.same_subject_callers",
                config.complaint.same_subject_callers,
            ),
            (
                "complaint.collective_size",
                config.complaint.collective_size,
            ),
            (
                "complaint.same_caller_repeats",
                config.complaint.same_caller_repeats,
            ),
        ] {
            if value == 0 {
                return Err(RulesConfigError::ZeroCount { key });
            }
        }
        Ok(Rules {
            config,
            calendar,
            quiet_from,
            quiet_until,
            night_hold,
        })
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tickets::calendar::tests::date;

    /// Default rules over the official 2026 calendar as shipped in the example config.
    pub(crate) fn rules_2026() -> Rules {
        let config = RulesConfig {
            calendar: crate::tickets::calendar::tests::shipped_2026(),
            ..RulesConfig::default()
        };
        Rules::new(config).unwrap()
    }

    #[test]
    fn spans_parse_and_refuse_clearly() {
        let cases = [
            ("20min", Ok(Span::Minutes(20))),
            ("5m", Ok(Span::Minutes(5))),
            ("2h", Ok(Span::Hours(2))),
            ("3wd", Ok(Span::WorkingDays(3))),
            ("3d", Err(BadSpan("3d".into()))),
            ("h", Err(BadSpan("h".into()))),
            ("12", Err(BadSpan("12".into()))),
        ];
        for (text, parsed) in cases {
            assert_eq!(text.parse::<Span>(), parsed, "{text}");
        }
        assert_eq!(Span::WorkingDays(3).to_string(), "3wd");
    }

    #[test]
    fn extension_notices_parse_as_a_share_or_a_span() {
        let cases = [
            ("50%", Ok(Notice::Share(50))),
            ("0%", Ok(Notice::Share(0))),
            ("100%", Ok(Notice::Share(100))),
            ("24h", Ok(Notice::Before(Span::Hours(24)))),
            ("1wd", Ok(Notice::Before(Span::WorkingDays(1)))),
            ("101%", Err(BadNotice("101%".into()))),
            ("+5%", Err(BadNotice("+5%".into()))),
            ("%", Err(BadNotice("%".into()))),
            ("half", Err(BadNotice("half".into()))),
        ];
        for (text, parsed) in cases {
            assert_eq!(text.parse::<Notice>(), parsed, "{text}");
        }
        assert_eq!(RulesConfig::default().extension_notice, Notice::Share(50));
        let config: RulesConfig = toml::from_str(
            "extension_notice = \"1wd\"\n[limits.repair]\nextension_notice = \"24h\"",
        )
        .unwrap();
        assert_eq!(
            config.extension_notice,
            Notice::Before(Span::WorkingDays(1))
        );
        assert_eq!(
            config.limits[&Category::Repair].extension_notice,
            Some(Notice::Before(Span::Hours(24)))
        );
        let bad = toml::from_str::<RulesConfig>("extension_notice = \"150%\"").unwrap_err();
        assert!(bad.to_string().contains("\"50%\""), "{bad}");
    }

    #[test]
    fn the_section_parses_with_overrides_and_rejects_unknown_keys() {
        let text = r#"
            max_urges = 3
            complaint_limits = { l3 = "2h" }
            rural_areas = ["崇明"]
            [complaint]
            same_caller_window_days = 90
            [rural_limits.leak]
            on_site = "60min"
            [reply_to_caller]
            categories = ["consultation"]
            [calendar]
            holidays = ["2026-10-01"]
            make_up_working_days = ["2026-10-10"]
            [limits.repair]
            finish = "2wd"
            [channel_limits.gov_12345]
            finish = "1wd"
            [night_hold]
            from = "21:30"
            [callback]
            windows = ["10:00-12:00"]
            [callback.sampling]
            seed = 7
            tiers = [{ up_to = 10, percent = 50 }, { percent = 5 }]
        "#;
        let config: RulesConfig = toml::from_str(text).unwrap();
        assert_eq!(config.max_urges, 3);
        assert_eq!(config.complaint.same_caller_window_days, Some(90));
        assert_eq!(
            RulesConfig::default().complaint.same_caller_window_days,
            None
        );
        assert_eq!(config.rural_areas, ["崇明"]);
        assert_eq!(config.reply_to_caller.categories, [Category::Consultation]);
        assert_eq!(config.reply_to_caller.within, Span::WorkingDays(1));
        assert_eq!(
            config.rural_limits[&Category::Leak].on_site,
            Some(Span::Minutes(60))
        );
        assert_eq!(
            config.complaint_limits.get(&ComplaintLevel::L3),
            Some(&Span::Hours(2))
        );
        assert_eq!(
            config.limits[&Category::Repair].finish,
            Some(Span::WorkingDays(2))
        );
        assert_eq!(
            config.channel_limits[&Channel::Government12345].finish,
            Some(Span::WorkingDays(1))
        );
        assert_eq!(config.callback.windows[0].start, hm(10, 0));
        let rules = Rules::new(config).unwrap();
        assert_eq!(
            rules.night_hold.map(|n| (n.from, n.until)),
            Some((hm(21, 30), hm(7, 0)))
        );
        assert!(rules.calendar.is_working_day(date(2026, 10, 10)));

        let unknown = toml::from_str::<RulesConfig>("[limits.repair]\nfinsh = \"2wd\"");
        assert!(unknown.unwrap_err().to_string().contains("finsh"));
        let bad_category = toml::from_str::<RulesConfig>("[limits.repairs]\nfinish = \"2wd\"");
        assert!(bad_category.unwrap_err().to_string().contains("repairs"));
        let bad_span = toml::from_str::<RulesConfig>("return_within = \"1 day\"");
        assert!(bad_span.unwrap_err().to_string().contains("3wd"));
    }

    #[test]
    fn invalid_settings_are_refused() {
        let mut config = RulesConfig::default();
        config.callback.quiet_from = "9pm".into();
        assert_eq!(
            Rules::new(config),
            Err(RulesConfigError::BadTime {
                key: "callback.quiet_from",
                value: "9pm".into()
            })
        );
        let mut config = RulesConfig::default();
        config.callback.sampling = Some(SamplingConfig {
            seed: 1,
            tiers: vec![SamplingTier {
                up_to: Some(20),
                percent: 30,
            }],
        });
        assert_eq!(Rules::new(config), Err(RulesConfigError::BadTiers));
        let config = RulesConfig {
            max_urges: 0,
            ..RulesConfig::default()
        };
        assert_eq!(
            Rules::new(config),
            Err(RulesConfigError::ZeroCount { key: "max_urges" })
        );
        assert!("11:00-09:00".parse::<Window>().is_err());
    }
}
