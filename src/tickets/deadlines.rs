//! Deadlines (hotline-rules §2): what each category and complaint level demands, by when,
//! computed from a ticket's facts, the calendar and the configured limits.
//!
//! Owns the limit table and deadline computation; must not read the clock or the database.

use crate::tickets::callback::CallbackPlan;
use crate::tickets::config::{CategoryLimits, Rules, RulesConfig, Span, in_daily_span};
use crate::tickets::lifecycle::TicketFacts;
use crate::tickets::model::{Category, Channel, ComplaintLevel};
use chrono::{DateTime, Utc};

/// The kinds of deadline a ticket runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadlineKind {
    /// From intake until the centre dispatches it to the responsible unit.
    Dispatch,
    /// From dispatch until the unit has contacted the customer.
    Contact,
    /// From dispatch (or reopening) until the unit's reply; extensions move it.
    Finish,
    /// From dispatch until a complaint's investigation is closed.
    Investigation,
    /// From the unit's reply until the centre has called the customer back.
    Callback,
    /// From dispatch until the unit is on site (leaks).
    OnSite,
    /// From the unit's reply until the centre has answered the caller (consultations).
    ReplyToCaller,
}

impl DeadlineKind {
    pub fn code(self) -> &'static str {
        match self {
            DeadlineKind::Dispatch => "dispatch",
            DeadlineKind::Contact => "contact",
            DeadlineKind::Finish => "finish",
            DeadlineKind::Investigation => "investigation",
            DeadlineKind::Callback => "callback",
            DeadlineKind::OnSite => "on_site",
            DeadlineKind::ReplyToCaller => "reply_to_caller",
        }
    }
}

/// One deadline: when its span started and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub kind: DeadlineKind,
    pub start: DateTime<Utc>,
    pub due: DateTime<Utc>,
}

/// All deadlines a ticket has had so far; which of them still bind depends on its status
/// (see `overdue::active_deadlines`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadlines {
    pub dispatch: Option<Deadline>,
    pub contact: Option<Deadline>,
    pub finish: Option<Deadline>,
    pub investigation: Option<Deadline>,
    pub callback: Option<Deadline>,
    pub on_site: Option<Deadline>,
    pub reply_to_caller: Option<Deadline>,
}

impl Deadlines {
    pub fn iter(&self) -> impl Iterator<Item = Deadline> {
        [
            self.dispatch,
            self.contact,
            self.finish,
            self.investigation,
            self.callback,
            self.on_site,
            self.reply_to_caller,
        ]
        .into_iter()
        .flatten()
    }
}

/// The limits of 000 §14. Leaks are phoned to the unit at once ("第一时间", 000 §14, 002
/// §18) and the ticket filed afterwards: a leak ticket nobody has dispatched is overdue after
/// 5 minutes, and the unit must be on site within 30 minutes (the gas companies' public
/// urban commitment; rural areas are configured). Queries are answered at once.
pub fn default_limits(category: Category) -> CategoryLimits {
    let limits = |dispatch, contact, finish, investigation| CategoryLimits {
        dispatch,
        contact,
        finish,
        investigation,
        on_site: None,
        extension_notice: None,
    };
    use Span::{Hours, Minutes, WorkingDays};
    match category {
        Category::Query => limits(None, None, None, None),
        Category::Leak => CategoryLimits {
            on_site: Some(Minutes(30)),
            ..limits(Some(Minutes(5)), None, None, None)
        },
        Category::Consultation => limits(Some(Minutes(20)), None, Some(WorkingDays(1)), None),
        Category::Repair => limits(Some(Minutes(5)), Some(Hours(2)), Some(WorkingDays(3)), None),
        Category::ServiceApplication => limits(
            Some(Minutes(20)),
            Some(WorkingDays(1)),
            Some(WorkingDays(7)),
            None,
        ),
        // The finish limit of a complaint comes from its level.
        Category::Complaint => limits(Some(Minutes(5)), None, None, Some(WorkingDays(2))),
        Category::TipOff | Category::Opinion | Category::Suggestion => {
            limits(Some(Minutes(20)), None, Some(WorkingDays(5)), None)
        }
        Category::Praise => limits(Some(Minutes(20)), None, None, None),
        Category::Urge => limits(Some(Minutes(10)), None, None, None),
    }
}

/// Complaint handling limits by level (000 §14.6): L3 3 h, L2 24 h, L1 48 h.
pub fn default_complaint_limit(level: ComplaintLevel) -> Span {
    match level {
        ComplaintLevel::L3 => Span::Hours(3),
        ComplaintLevel::L2 => Span::Hours(24),
        ComplaintLevel::L1 => Span::Hours(48),
    }
}

/// The limits in force for a category (and a complaint's level) from a channel and an area:
/// the defaults, then the category's overrides, then a rural area's, then the channel's (a
/// channel's own promise, such as the heating line's 1 working day for government
/// referrals, wins).
pub fn limits_for(
    config: &RulesConfig,
    category: Category,
    level: Option<ComplaintLevel>,
    channel: Channel,
    area: &str,
) -> CategoryLimits {
    let mut limits = default_limits(category);
    if category == Category::Complaint {
        let level = level.unwrap_or(ComplaintLevel::L3);
        limits.finish = Some(
            config
                .complaint_limits
                .get(&level)
                .copied()
                .unwrap_or_else(|| default_complaint_limit(level)),
        );
    }
    let rural = config.rural_areas.iter().any(|a| a == area);
    for overrides in [
        config.limits.get(&category),
        config
            .rural_limits
            .get(&category)
            .filter(|_| rural && !area.is_empty()),
        config.channel_limits.get(&channel),
    ]
    .into_iter()
    .flatten()
    {
        limits.dispatch = overrides.dispatch.or(limits.dispatch);
        limits.contact = overrides.contact.or(limits.contact);
        limits.finish = overrides.finish.or(limits.finish);
        limits.investigation = overrides.investigation.or(limits.investigation);
        limits.on_site = overrides.on_site.or(limits.on_site);
        limits.extension_notice = overrides.extension_notice.or(limits.extension_notice);
    }
    limits
}

/// When the configured night hold applies to a ticket taken (or returned) at `since`: the
/// end of that night, when it is dispatched, and the time it must be finished by.
pub fn night_hold(facts: &TicketFacts, rules: &Rules) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let night = rules.night_hold?;
    // A leak is never held: it goes out at once, day or night.
    if facts.night_dispatch_insisted || facts.category == Category::Leak {
        return None;
    }
    let local = rules.calendar.local(facts.awaiting_dispatch_since);
    let time = local.time();
    if !in_daily_span(time, night.from, night.until) {
        return None;
    }
    let date = local.date_naive();
    let morning = if night.from > night.until && time >= night.from {
        date.succ_opt()?
    } else {
        date
    };
    Some((
        rules.calendar.at_local(morning, night.until),
        rules.calendar.at_local(morning, night.done_by),
    ))
}

/// Whether the centre answers the caller after the unit's reply (reply-to-caller): the
/// configured categories, unless the caller declined being called back.
pub fn answered_by_the_centre(facts: &TicketFacts, rules: &Rules) -> bool {
    !facts.callback_declined
        && rules
            .config
            .reply_to_caller
            .categories
            .contains(&facts.category)
}

/// The deadlines of a ticket as its facts stand: dispatch counts from intake (or the unit's
/// return); contact,
/// finish and investigation from the latest dispatch or reopening; the callback from the
/// unit's reply. A ticket held over the night (heating line) is dispatched from the night's
/// end and finished by the configured morning time. A granted extension replaces the
/// finish due time.
pub fn compute(facts: &TicketFacts, rules: &Rules) -> Deadlines {
    let limits = limits_for(
        &rules.config,
        facts.category,
        facts.complaint_level,
        facts.channel,
        &facts.area,
    );
    let deadline = |kind, span: Option<Span>, start: Option<DateTime<Utc>>| {
        let (span, start) = (span?, start?);
        Some(Deadline {
            kind,
            start,
            due: span.after(start, &rules.calendar),
        })
    };
    let handling = facts.handling_started_at;
    let held = night_hold(facts, rules);
    let mut dispatch = deadline(
        DeadlineKind::Dispatch,
        limits.dispatch,
        Some(facts.awaiting_dispatch_since),
    );
    let mut finish = deadline(DeadlineKind::Finish, limits.finish, handling);
    if let (Some(dispatch), Some(span), Some((night_end, _))) =
        (dispatch.as_mut(), limits.dispatch, held)
    {
        dispatch.due = span.after(night_end, &rules.calendar);
    }
    if let (Some(finish), Some((_, done_by))) = (finish.as_mut(), held) {
        finish.due = done_by;
    }
    if let (Some(finish), Some(extended)) = (finish.as_mut(), facts.extended_finish) {
        finish.due = extended;
    }
    let mut callback = deadline(
        DeadlineKind::Callback,
        matches!(
            facts.callback_plan,
            Some(CallbackPlan::Automatic | CallbackPlan::Human)
        )
        .then_some(rules.config.callback.within),
        facts.replied_at,
    );
    let mut reply_to_caller = deadline(
        DeadlineKind::ReplyToCaller,
        answered_by_the_centre(facts, rules).then_some(rules.config.reply_to_caller.within),
        facts.replied_at,
    );
    // A time agreed with the caller (约时) is kept even past the usual span.
    for call in [callback.as_mut(), reply_to_caller.as_mut()]
        .into_iter()
        .flatten()
    {
        if let Some(agreed) = facts.agreed_callback_at {
            call.due = call.due.max(agreed);
        }
    }
    Deadlines {
        dispatch,
        contact: deadline(DeadlineKind::Contact, limits.contact, handling),
        finish,
        investigation: deadline(DeadlineKind::Investigation, limits.investigation, handling),
        callback,
        on_site: deadline(DeadlineKind::OnSite, limits.on_site, handling),
        reply_to_caller,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::calendar::tests::sh;
    use crate::tickets::config::tests::rules_2026;
    use uuid::Uuid;

    fn dispatched(category: Category, at: DateTime<Utc>) -> TicketFacts {
        let mut facts = TicketFacts::new_draft(Uuid::nil(), category, Channel::Hotline, at);
        facts.handling_started_at = Some(at);
        facts.dispatched_at = Some(at);
        facts
    }

    #[test]
    fn category_table_of_000() {
        let rules = rules_2026();
        // Wednesday Sep 23 16:00: the Mid-Autumn (Sep 25–27) and National Day (Oct 1–7)
        // holidays do not count, the make-up Saturday Oct 10 does.
        let t0 = sh(2026, 9, 23, 16, 0);
        let cases: [(Category, Option<_>, Option<_>, Option<_>); 8] = [
            (Category::Query, None, None, None),
            (Category::Leak, Some(sh(2026, 9, 23, 16, 5)), None, None),
            (
                Category::Consultation,
                Some(sh(2026, 9, 23, 16, 20)),
                None,
                Some(sh(2026, 9, 24, 16, 0)),
            ),
            (
                Category::Repair,
                Some(sh(2026, 9, 23, 16, 5)),
                Some(sh(2026, 9, 23, 18, 0)),
                // Sep 24, 28, 29.
                Some(sh(2026, 9, 29, 16, 0)),
            ),
            (
                Category::ServiceApplication,
                Some(sh(2026, 9, 23, 16, 20)),
                Some(sh(2026, 9, 24, 16, 0)),
                // Sep 24, 28, 29, 30, Oct 8, 9, 10.
                Some(sh(2026, 10, 10, 16, 0)),
            ),
            (
                Category::TipOff,
                Some(sh(2026, 9, 23, 16, 20)),
                None,
                Some(sh(2026, 10, 8, 16, 0)),
            ),
            (Category::Praise, Some(sh(2026, 9, 23, 16, 20)), None, None),
            (Category::Urge, Some(sh(2026, 9, 23, 16, 10)), None, None),
        ];
        for (category, dispatch, contact, finish) in cases {
            let d = compute(&dispatched(category, t0), &rules);
            assert_eq!(d.dispatch.map(|d| d.due), dispatch, "{category} dispatch");
            assert_eq!(d.contact.map(|d| d.due), contact, "{category} contact");
            assert_eq!(d.finish.map(|d| d.due), finish, "{category} finish");
            assert_eq!(d.callback, None);
        }
    }

    #[test]
    fn complaint_limits_follow_the_level_on_the_wall_clock() {
        let rules = rules_2026();
        let t0 = sh(2026, 9, 30, 22, 0);
        let cases = [
            (None, sh(2026, 10, 1, 1, 0)),
            (Some(ComplaintLevel::L3), sh(2026, 10, 1, 1, 0)),
            (Some(ComplaintLevel::L2), sh(2026, 10, 1, 22, 0)),
            (Some(ComplaintLevel::L1), sh(2026, 10, 2, 22, 0)),
        ];
        for (level, due) in cases {
            let mut facts = dispatched(Category::Complaint, t0);
            facts.complaint_level = level;
            let d = compute(&facts, &rules);
            assert_eq!(d.finish.map(|d| d.due), Some(due), "{level:?}");
            assert_eq!(d.dispatch.map(|d| d.due), Some(sh(2026, 9, 30, 22, 5)));
            // Investigation: 2 working days, over the holiday → Oct 9.
            assert_eq!(d.investigation.map(|d| d.due), Some(sh(2026, 10, 9, 22, 0)));
        }
    }

    #[test]
    fn overrides_extensions_and_the_callback() {
        let mut config = rules_2026().config;
        config
            .complaint_limits
            .insert(ComplaintLevel::L3, Span::Hours(1));
        config.limits.insert(
            Category::Repair,
            CategoryLimits {
                finish: Some(Span::WorkingDays(2)),
                ..CategoryLimits::default()
            },
        );
        config.channel_limits.insert(
            Channel::Government12345,
            CategoryLimits {
                finish: Some(Span::WorkingDays(1)),
                ..CategoryLimits::default()
            },
        );
        let rules = Rules::new(config).unwrap();
        let t0 = sh(2026, 11, 20, 16, 0);
        let referral = TicketFacts {
            channel: Channel::Government12345,
            ..dispatched(Category::Repair, t0)
        };
        let d = compute(&referral, &rules);
        assert_eq!(
            d.finish.unwrap().due,
            sh(2026, 11, 23, 16, 0),
            "channel wins"
        );
        assert_eq!(d.contact.unwrap().due, sh(2026, 11, 20, 18, 0));
        let complaint = compute(&dispatched(Category::Complaint, t0), &rules);
        assert_eq!(complaint.finish.unwrap().due, sh(2026, 11, 20, 17, 0));

        let mut repair = dispatched(Category::Repair, t0);
        let d = compute(&repair, &rules);
        assert_eq!(d.finish.unwrap().due, sh(2026, 11, 24, 16, 0));
        assert_eq!(
            d.contact.unwrap().due,
            sh(2026, 11, 20, 18, 0),
            "default kept"
        );

        repair.extended_finish = Some(sh(2026, 11, 27, 12, 0));
        repair.replied_at = Some(sh(2026, 11, 26, 10, 0));
        repair.callback_plan = Some(CallbackPlan::Automatic);
        let d = compute(&repair, &rules);
        assert_eq!(d.finish.unwrap().due, sh(2026, 11, 27, 12, 0));
        assert_eq!(d.callback.unwrap().due, sh(2026, 11, 27, 10, 0));
        repair.callback_plan = Some(CallbackPlan::NotNeeded);
        assert_eq!(compute(&repair, &rules).callback, None);
    }

    #[test]
    fn leaks_run_on_a_dispatch_and_an_on_site_clock() {
        let mut config = rules_2026().config;
        config.rural_areas = vec!["崇明".into()];
        config.rural_limits.insert(
            Category::Leak,
            CategoryLimits {
                on_site: Some(Span::Minutes(60)),
                ..CategoryLimits::default()
            },
        );
        let rules = Rules::new(config).unwrap();
        let t0 = sh(2026, 10, 3, 2, 0);
        // (area, on-site due of a leak dispatched at t0)
        let cases = [
            ("", sh(2026, 10, 3, 2, 30)),
            ("浦东", sh(2026, 10, 3, 2, 30)),
            ("崇明", sh(2026, 10, 3, 3, 0)),
        ];
        for (area, on_site) in cases {
            let mut draft =
                TicketFacts::new_draft(Uuid::nil(), Category::Leak, Channel::Hotline, t0);
            draft.area = area.into();
            let d = compute(&draft, &rules);
            // Holiday night or not, 5 minutes to dispatch.
            assert_eq!(
                d.dispatch.map(|d| d.due),
                Some(sh(2026, 10, 3, 2, 5)),
                "{area}"
            );
            assert_eq!(d.on_site, None, "not dispatched yet");
            let mut sent = draft.clone();
            sent.handling_started_at = Some(t0);
            let d = compute(&sent, &rules);
            assert_eq!(d.on_site.map(|d| d.due), Some(on_site), "{area}");
            assert_eq!((d.contact, d.finish, d.investigation), (None, None, None));
        }
        // Other categories have no on-site deadline unless configured.
        assert_eq!(
            compute(&dispatched(Category::Repair, t0), &rules).on_site,
            None
        );
    }

    #[test]
    fn the_centre_answers_consultations_and_suggestions_within_a_working_day_of_the_reply() {
        let rules = rules_2026();
        // Replied Friday Nov 20 16:00: the caller is answered by Monday 16:00.
        let replied_at = sh(2026, 11, 20, 16, 0);
        let replied = |category, declined| {
            let mut facts = dispatched(category, sh(2026, 11, 20, 9, 0));
            facts.replied_at = Some(replied_at);
            facts.callback_declined = declined;
            facts
        };
        let monday = Some(sh(2026, 11, 23, 16, 0));
        let cases = [
            (Category::Consultation, false, monday),
            (Category::Suggestion, false, monday),
            (Category::Consultation, true, None),
            (Category::Opinion, false, None),
            (Category::Repair, false, None),
            (Category::Praise, false, None),
        ];
        for (category, declined, due) in cases {
            let d = compute(&replied(category, declined), &rules);
            assert_eq!(
                d.reply_to_caller.map(|d| d.due),
                due,
                "{category} {declined}"
            );
        }
        // Not before the unit has replied.
        let unreplied = dispatched(Category::Consultation, replied_at);
        assert_eq!(compute(&unreplied, &rules).reply_to_caller, None);
        // §14.9 instead of §14.7: suggestions left out; another span.
        let mut config = rules.config.clone();
        config.reply_to_caller.categories = vec![Category::Consultation];
        config.reply_to_caller.within = Span::Hours(4);
        let rules = Rules::new(config).unwrap();
        let d = compute(&replied(Category::Suggestion, false), &rules);
        assert_eq!(d.reply_to_caller, None);
        let d = compute(&replied(Category::Consultation, false), &rules);
        assert_eq!(
            d.reply_to_caller.map(|d| d.due),
            Some(sh(2026, 11, 20, 20, 0))
        );
    }

    #[test]
    fn a_leak_is_never_held_over_the_night() {
        let mut config = rules_2026().config;
        config.night_hold = Some(crate::tickets::config::NightHoldConfig::default());
        let rules = Rules::new(config).unwrap();
        let t0 = sh(2026, 11, 20, 23, 0);
        let leak = TicketFacts::new_draft(Uuid::nil(), Category::Leak, Channel::Hotline, t0);
        assert_eq!(night_hold(&leak, &rules), None);
        assert_eq!(
            compute(&leak, &rules).dispatch.unwrap().due,
            sh(2026, 11, 20, 23, 5)
        );
        let repair = TicketFacts::new_draft(Uuid::nil(), Category::Repair, Channel::Hotline, t0);
        assert!(night_hold(&repair, &rules).is_some());
    }

    #[test]
    fn the_heating_night_hold_when_configured() {
        let mut config = rules_2026().config;
        config.night_hold = Some(crate::tickets::config::NightHoldConfig::default());
        config.limits.insert(
            Category::Repair,
            CategoryLimits {
                finish: Some(Span::Hours(4)),
                ..CategoryLimits::default()
            },
        );
        let rules = Rules::new(config).unwrap();
        let draft =
            |at| TicketFacts::new_draft(Uuid::nil(), Category::Repair, Channel::Hotline, at);
        let cases = [
            // (intake, dispatch due, finish due of a held ticket dispatched at 07:00)
            (sh(2026, 11, 20, 20, 59), sh(2026, 11, 20, 21, 4), None),
            (
                sh(2026, 11, 20, 21, 0),
                sh(2026, 11, 21, 7, 5),
                Some(sh(2026, 11, 21, 11, 0)),
            ),
            (
                sh(2026, 11, 21, 2, 0),
                sh(2026, 11, 21, 7, 5),
                Some(sh(2026, 11, 21, 11, 0)),
            ),
            (sh(2026, 11, 21, 7, 30), sh(2026, 11, 21, 7, 35), None),
        ];
        for (intake, dispatch_due, held_finish) in cases {
            let mut facts = draft(intake);
            assert_eq!(
                compute(&facts, &rules).dispatch.unwrap().due,
                dispatch_due,
                "{intake}"
            );
            let handling = match held_finish {
                Some(_) => sh(2026, 11, 21, 7, 0),
                None => intake,
            };
            facts.handling_started_at = Some(handling);
            let finish = compute(&facts, &rules).finish.unwrap().due;
            assert_eq!(
                finish,
                held_finish.unwrap_or(intake + chrono::Duration::hours(4)),
                "{intake}"
            );
        }
        // The caller insisted: dispatched at once, the category's limits apply.
        let mut insisted = draft(sh(2026, 11, 20, 22, 0));
        insisted.night_dispatch_insisted = true;
        assert_eq!(
            compute(&insisted, &rules).dispatch.unwrap().due,
            sh(2026, 11, 20, 22, 5)
        );
    }
}
