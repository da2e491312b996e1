//! Callbacks 回访 (hotline-rules §4; 000 §14.9, 001 §35, 003 §11, 004 §5): which tickets
//! get one and whether a human must make it, heating-line sampling, when to call (never in
//! the quiet hours, preferably in the configured windows), unreachable customers, ratings,
//! and 'unsatisfied → redo'.
//!
//! Pure functions over facts, `now` and the rules; must not read the clock or dial anyone.

use crate::tickets::config::{Rules, SamplingConfig, in_daily_span};
use crate::tickets::deadlines;
use crate::tickets::lifecycle::Actor;
use crate::tickets::lifecycle::{
    AuditAction, FollowUp, Operation, Refusal, TicketFacts, Transition, illegal,
    require_centre_or_own_channel, wrong_actor,
};
use crate::tickets::model::{Category, Status};
use chrono::{DateTime, Duration, Utc};

/// How a replied ticket is called back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackPlan {
    /// Queries, consultations, suggestions, praise, urges, or the caller declined.
    NotNeeded,
    /// Waits for its unit's day to end, when the heating line's sample is drawn (004 §5).
    SamplePending,
    /// Left out by the heating line's volume sampling.
    SampledOut,
    /// Any callback counts, including a digital satisfaction survey of the ticket's channel.
    Automatic,
    /// An agent must call: government channel, leak, tip-off, complaint, repeat, or an
    /// earlier 'unsatisfied'.
    Human,
}

impl CallbackPlan {
    pub fn code(self) -> &'static str {
        match self {
            CallbackPlan::NotNeeded => "not_needed",
            CallbackPlan::SamplePending => "sample_pending",
            CallbackPlan::SampledOut => "sampled_out",
            CallbackPlan::Automatic => "automatic",
            CallbackPlan::Human => "human",
        }
    }

    /// `Some(human?)` when a callback is due.
    pub fn human(self) -> Option<bool> {
        match self {
            CallbackPlan::NotNeeded | CallbackPlan::SamplePending | CallbackPlan::SampledOut => {
                None
            }
            CallbackPlan::Automatic => Some(false),
            CallbackPlan::Human => Some(true),
        }
    }
}

/// Decides the callback for a ticket being replied. With sampling configured, a ticket that
/// needs no human callback waits for its unit's day sample (`sample_day`).
pub fn plan(facts: &TicketFacts, rules: &Rules) -> CallbackPlan {
    let config = &rules.config.callback;
    if config.exempt_categories.contains(&facts.category) || facts.callback_declined {
        return CallbackPlan::NotNeeded;
    }
    // 003 §11: leaks, tip-offs, complaints, repeats, daily-report key items, 'unsatisfied'
    // and referred items get a human callback straight away.
    let human = config.human_channels.contains(&facts.channel)
        || matches!(
            facts.category,
            Category::Leak | Category::TipOff | Category::Complaint
        )
        || facts.repeat
        || facts.referred
        || facts.daily_report_key_item
        || facts.unsatisfied_callbacks > 0;
    if human {
        return CallbackPlan::Human;
    }
    if rules.config.callback.sampling.is_some() {
        CallbackPlan::SamplePending
    } else {
        CallbackPlan::Automatic
    }
}

/// How many of a day's `volume` tickets are called back: the tier's percentage of the
/// volume, rounded up (004 §5: up to 20 tickets 30%, 21–50 20%, 51 and more 10%).
pub fn sample_size(volume: u32, sampling: &SamplingConfig) -> u32 {
    let percent = sampling
        .tiers
        .iter()
        .find(|tier| tier.up_to.is_none_or(|up_to| volume <= up_to))
        .map_or(100, |tier| u32::from(tier.percent));
    (volume * percent).div_ceil(100)
}

/// Draws one unit's sample of one day (004 §5, "每个单位"): of the tickets still waiting for
/// it, exactly `sample_size` are called back, chosen by a hash of the configured seed and
/// each ticket's id (reproducible, independent of the order they come in); the rest are
/// sampled out. One transition per ticket, as the system. `None` without sampling.
pub fn sample_day(
    pending: &[TicketFacts],
    now: DateTime<Utc>,
    rules: &Rules,
) -> Option<Vec<Transition>> {
    let sampling = rules.config.callback.sampling.as_ref()?;
    let waiting: Vec<&TicketFacts> = pending
        .iter()
        .filter(|f| {
            f.status == Status::Replied && f.callback_plan == Some(CallbackPlan::SamplePending)
        })
        .collect();
    let volume = u32::try_from(waiting.len()).unwrap_or(u32::MAX);
    let size = sample_size(volume, sampling);
    let mut order = waiting.clone();
    order.sort_by_key(|f| (sample_draw(sampling.seed, f), f.id));
    let detail = format!("{size} of {volume} called back");
    let transitions = order
        .into_iter()
        .enumerate()
        .map(|(rank, facts)| {
            let mut new = facts.clone();
            let chosen = u32::try_from(rank).unwrap_or(u32::MAX) < size;
            new.callback_plan = Some(if chosen {
                CallbackPlan::Automatic
            } else {
                CallbackPlan::SampledOut
            });
            if chosen {
                let due = deadlines::compute(&new, rules).callback.map(|d| d.due);
                new.next_callback_at = Some(schedule_attempt(now, due, rules));
            }
            let plan = new.callback_plan.map_or("", CallbackPlan::code);
            Transition::new(
                facts,
                new,
                &Actor::System,
                AuditAction::CallbackSampled,
                now,
                rules,
            )
            .detail(format!("{plan}: {detail}"))
        })
        .collect();
    Some(transitions)
}

/// A number fixed by the seed and the ticket id (FNV-1a, stable across builds), so that the
/// sample is reproducible.
fn sample_draw(seed: u64, facts: &TicketFacts) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.to_le_bytes().iter().chain(facts.id.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Callbacks are never made in the quiet hours (default 21:00 to 08:00 local; 21:00 itself
/// is quiet, 08:00 is not).
pub fn is_callback_time(instant: DateTime<Utc>, rules: &Rules) -> bool {
    let time = rules.calendar.local(instant).time();
    !in_daily_span(time, rules.quiet_from, rules.quiet_until)
}

/// When to try calling back: the first moment at or after `earliest` inside a preferred
/// window; if that misses the callback's `due` time, the first moment outside the quiet
/// hours instead.
pub fn schedule_attempt(
    earliest: DateTime<Utc>,
    due: Option<DateTime<Utc>>,
    rules: &Rules,
) -> DateTime<Utc> {
    let allowed = first_allowed(earliest, rules);
    let Some(preferred) = first_in_window(earliest, rules) else {
        return allowed;
    };
    match due {
        Some(due) if preferred > due && allowed <= due => allowed,
        _ => preferred,
    }
}

/// The first moment at or after `earliest` outside the quiet hours.
pub(crate) fn first_allowed(earliest: DateTime<Utc>, rules: &Rules) -> DateTime<Utc> {
    if is_callback_time(earliest, rules) {
        return earliest;
    }
    let local = rules.calendar.local(earliest);
    let today = local.date_naive();
    let date = if local.time() < rules.quiet_until {
        today
    } else {
        today.succ_opt().unwrap_or(today)
    };
    rules.calendar.at_local(date, rules.quiet_until)
}

fn first_in_window(earliest: DateTime<Utc>, rules: &Rules) -> Option<DateTime<Utc>> {
    let mut windows = rules.config.callback.windows.clone();
    windows.sort_by_key(|w| w.start);
    let mut date = rules.calendar.local(earliest).date_naive();
    for _ in 0..2 {
        for window in &windows {
            let start = rules.calendar.at_local(date, window.start);
            let end = rules.calendar.at_local(date, window.end);
            let candidate = start.max(earliest);
            if candidate < end && is_callback_time(candidate, rules) {
                return Some(candidate);
            }
        }
        date = date.succ_opt()?;
    }
    None
}

/// For `ListDueCallbacks`: the ticket waits for a callback attempt at `now`.
pub fn is_callback_due(facts: &TicketFacts, now: DateTime<Utc>) -> bool {
    matches!(facts.status, Status::Replied | Status::Callback)
        && facts.next_callback_at.is_some_and(|at| at <= now)
}

/// A rating on one aspect (004 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rating {
    Satisfied,
    BasicallySatisfied,
    Unsatisfied,
}

impl Rating {
    pub fn code(self) -> &'static str {
        match self {
            Rating::Satisfied => "satisfied",
            Rating::BasicallySatisfied => "basically_satisfied",
            Rating::Unsatisfied => "unsatisfied",
        }
    }
}

/// What one callback attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Reached {
        attitude: Rating,
        result: Rating,
        /// A new demand the customer raised: it becomes a new ticket.
        new_demand: Option<String>,
    },
    Unreachable,
    /// The customer does not want to be called back.
    Declined,
    /// The customer cannot talk now and agreed a time for the next attempt.
    CallLater {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRequest {
    pub outcome: CallbackOutcome,
}

/// RecordCallback: the centre (or, for automatic callbacks, a survey integration of the
/// ticket's channel) records one attempt. Satisfied → closed; a first 'unsatisfied' (on
/// attitude or result) → reopened for a second handling; a second → the supervisor;
/// unreachable → the next attempt at least the configured gap later, closing after the
/// configured number of attempts.
pub fn record_callback(
    facts: &TicketFacts,
    actor: &Actor,
    request: &CallbackRequest,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Transition, Refusal> {
    let op = Operation::RecordCallback;
    require_centre_or_own_channel(op, actor, facts)?;
    if !matches!(facts.status, Status::Replied | Status::Callback) {
        return Err(illegal(op, facts.status));
    }
    if matches!(actor, Actor::Integration { .. })
        && facts.callback_plan == Some(CallbackPlan::Human)
    {
        return Err(wrong_actor(op, actor, "this ticket needs a human callback"));
    }
    if !is_callback_time(now, rules) {
        return Err(Refusal::Invalid {
            operation: op,
            why: format!(
                "no callbacks between {} and {} local time",
                rules.quiet_from.format("%H:%M"),
                rules.quiet_until.format("%H:%M")
            ),
        });
    }
    let gap = Duration::minutes(rules.config.callback.attempt_gap_minutes.into());
    if let Some(earliest) = facts
        .last_callback_attempt_at
        .map(|last| rules.calendar.add_wall_clock(last, gap))
        && now < earliest
    {
        return Err(Refusal::TooEarly {
            operation: op,
            earliest,
            why: format!(
                "callback attempts are at least {} minutes apart",
                rules.config.callback.attempt_gap_minutes
            ),
        });
    }
    let mut new = facts.clone();
    match &request.outcome {
        CallbackOutcome::Declined => {
            new.status = Status::Closed;
            Ok(
                Transition::new(facts, new, actor, AuditAction::CallbackDeclined, now, rules)
                    .because("the customer declined the callback"),
            )
        }
        CallbackOutcome::CallLater { at } => {
            if *at <= now || !is_callback_time(*at, rules) {
                return Err(Refusal::Invalid {
                    operation: op,
                    why: format!(
                        "the agreed time {at} must lie in the future and outside the quiet hours \
                         {}–{} local time",
                        rules.quiet_from.format("%H:%M"),
                        rules.quiet_until.format("%H:%M")
                    ),
                });
            }
            // Not an unreachable attempt: the customer answered and set the time (约时).
            new.status = Status::Callback;
            new.agreed_callback_at = Some(*at);
            new.next_callback_at = Some(*at);
            let detail = format!("call back at {at}");
            Ok(Transition::new(
                facts,
                new,
                actor,
                AuditAction::CallbackCallLater,
                now,
                rules,
            )
            .because("the customer cannot talk now")
            .detail(detail))
        }
        CallbackOutcome::Unreachable => {
            new.callback_attempts += 1;
            new.last_callback_attempt_at = Some(now);
            let attempts = new.callback_attempts;
            let detail = format!("attempt {attempts}");
            if attempts >= rules.config.callback.min_attempts {
                new.status = Status::Closed;
                let reason = format!("customer unreachable after {attempts} callback attempts");
                return Ok(Transition::new(
                    facts,
                    new,
                    actor,
                    AuditAction::CallbackUnreachable,
                    now,
                    rules,
                )
                .because(&reason)
                .detail(detail));
            }
            new.status = Status::Callback;
            let due = deadlines::compute(&new, rules).callback.map(|d| d.due);
            new.next_callback_at = Some(schedule_attempt(
                rules.calendar.add_wall_clock(now, gap),
                due,
                rules,
            ));
            Ok(Transition::new(
                facts,
                new,
                actor,
                AuditAction::CallbackUnreachable,
                now,
                rules,
            )
            .detail(detail))
        }
        CallbackOutcome::Reached {
            attitude,
            result,
            new_demand,
        } => {
            let detail = format!("attitude {}, result {}", attitude.code(), result.code());
            let unsatisfied = *attitude == Rating::Unsatisfied || *result == Rating::Unsatisfied;
            let mut transition = if !unsatisfied {
                new.status = Status::Closed;
                Transition::new(
                    facts,
                    new,
                    actor,
                    AuditAction::CallbackSatisfied,
                    now,
                    rules,
                )
                .detail(detail)
            } else if facts.unsatisfied_callbacks == 0 {
                new.unsatisfied_callbacks += 1;
                new.restart_handling(now);
                Transition::new(
                    facts,
                    new,
                    actor,
                    AuditAction::CallbackUnsatisfied,
                    now,
                    rules,
                )
                .because("first 'unsatisfied': second handling")
                .detail(detail)
            } else {
                new.unsatisfied_callbacks += 1;
                new.status = Status::Adjudication;
                Transition::new(
                    facts,
                    new,
                    actor,
                    AuditAction::CallbackUnsatisfied,
                    now,
                    rules,
                )
                .because("'unsatisfied' again after the second handling")
                .detail(detail)
                .with(FollowUp::SupervisorQueue {
                    reason: "the customer is unsatisfied after the second handling".into(),
                })
            };
            if let Some(demand) = new_demand.as_ref().filter(|d| !d.trim().is_empty()) {
                transition = transition.with(FollowUp::NewTicketFromCallback {
                    description: demand.trim().to_owned(),
                });
            }
            Ok(transition)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::calendar::tests::sh;
    use crate::tickets::config::tests::rules_2026;
    use crate::tickets::config::{Rules, SamplingConfig};
    use crate::tickets::lifecycle::tests::{agent, dispatched, replied};
    use crate::tickets::model::Channel;
    use uuid::Uuid;

    #[test]
    fn which_tickets_are_called_back_and_by_whom() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 10, 0);
        let base = |category| TicketFacts::new_draft(Uuid::nil(), category, Channel::Hotline, t0);
        let cases = [
            (base(Category::Query), CallbackPlan::NotNeeded),
            (base(Category::Consultation), CallbackPlan::NotNeeded),
            (base(Category::Suggestion), CallbackPlan::NotNeeded),
            (base(Category::Praise), CallbackPlan::NotNeeded),
            (base(Category::Urge), CallbackPlan::NotNeeded),
            (base(Category::Repair), CallbackPlan::Automatic),
            (base(Category::ServiceApplication), CallbackPlan::Automatic),
            (base(Category::Opinion), CallbackPlan::Automatic),
            (base(Category::Leak), CallbackPlan::Human),
            (base(Category::TipOff), CallbackPlan::Human),
            (base(Category::Complaint), CallbackPlan::Human),
            (
                TicketFacts {
                    channel: Channel::Government12345,
                    ..base(Category::Repair)
                },
                CallbackPlan::Human,
            ),
            (
                TicketFacts {
                    repeat: true,
                    ..base(Category::Repair)
                },
                CallbackPlan::Human,
            ),
            (
                TicketFacts {
                    unsatisfied_callbacks: 1,
                    ..base(Category::Repair)
                },
                CallbackPlan::Human,
            ),
            (
                TicketFacts {
                    callback_declined: true,
                    ..base(Category::Complaint)
                },
                CallbackPlan::NotNeeded,
            ),
        ];
        for (facts, expected) in cases {
            assert_eq!(plan(&facts, &rules), expected, "{facts:?}");
        }
    }

    #[test]
    fn channels_and_flags_that_need_a_person_and_configurable_exemptions() {
        let rules = rules_2026();
        let t0 = sh(2026, 11, 20, 10, 0);
        let repair_from =
            |channel| TicketFacts::new_draft(Uuid::nil(), Category::Repair, channel, t0);
        // 001 §7, §35: government and online-government channels, group referrals.
        let cases = [
            (Channel::Hotline, CallbackPlan::Automatic),
            (Channel::Wechat, CallbackPlan::Automatic),
            (Channel::ServiceWindow, CallbackPlan::Automatic),
            (Channel::ComplaintLine, CallbackPlan::Automatic),
            (Channel::Media, CallbackPlan::Automatic),
            (Channel::Government12345, CallbackPlan::Human),
            (Channel::MessageBoard, CallbackPlan::Human),
            (Channel::GroupReferral, CallbackPlan::Human),
            (Channel::LetterVisit, CallbackPlan::Human),
            (Channel::OnlineGov, CallbackPlan::Human),
        ];
        assert_eq!(cases.len(), Channel::ALL.len());
        for (channel, expected) in cases {
            assert_eq!(plan(&repair_from(channel), &rules), expected, "{channel}");
        }
        // 003 §11: referred items and daily-report key items.
        let referred = TicketFacts {
            referred: true,
            ..repair_from(Channel::Hotline)
        };
        let key_item = TicketFacts {
            daily_report_key_item: true,
            ..repair_from(Channel::Hotline)
        };
        assert_eq!(plan(&referred, &rules), CallbackPlan::Human);
        assert_eq!(plan(&key_item, &rules), CallbackPlan::Human);
        // A declined callback wins over the flags; an exempt category too.
        let declined = TicketFacts {
            callback_declined: true,
            ..referred.clone()
        };
        assert_eq!(plan(&declined, &rules), CallbackPlan::NotNeeded);

        // 003 exempts only consultations and praise.
        let mut config = rules.config.clone();
        config.callback.exempt_categories = vec![Category::Consultation, Category::Praise];
        let rules_003 = Rules::new(config).unwrap();
        let base = |category| TicketFacts::new_draft(Uuid::nil(), category, Channel::Hotline, t0);
        let cases = [
            (Category::Query, CallbackPlan::Automatic),
            (Category::Suggestion, CallbackPlan::Automatic),
            (Category::Urge, CallbackPlan::Automatic),
            (Category::Consultation, CallbackPlan::NotNeeded),
            (Category::Praise, CallbackPlan::NotNeeded),
        ];
        for (category, expected) in cases {
            assert_eq!(plan(&base(category), &rules_003), expected, "{category}");
        }
    }

    fn sampling_rules(seed: u64) -> Rules {
        let mut config = rules_2026().config;
        config.callback.sampling = Some(SamplingConfig {
            seed,
            ..SamplingConfig::default()
        });
        Rules::new(config).unwrap()
    }

    #[test]
    fn sample_sizes_are_the_tiers_percentage_rounded_up() {
        let sampling = SamplingConfig::default();
        // (the day's volume, tickets called back)
        let cases = [
            (0, 0),
            (1, 1),
            (3, 1),
            (4, 2),
            (10, 3),
            (20, 6),
            (21, 5),
            (25, 5),
            (26, 6),
            (50, 10),
            (51, 6),
            (60, 6),
            (61, 7),
            (100, 10),
            (1000, 100),
        ];
        for (volume, size) in cases {
            assert_eq!(sample_size(volume, &sampling), size, "volume {volume}");
        }
    }

    /// `volume` replied repairs of one unit and day, ids 1..=volume.
    fn day_of(volume: u32, rules: &Rules) -> Vec<TicketFacts> {
        (1..=volume)
            .map(|i| {
                let at = sh(2026, 11, 20, 9, 0);
                let mut facts = dispatched(Category::Repair, at);
                facts.id = Uuid::from_u128(i.into());
                let replied = replied(&facts, at);
                assert_eq!(plan(&replied, rules), CallbackPlan::SamplePending);
                TicketFacts {
                    callback_plan: Some(CallbackPlan::SamplePending),
                    next_callback_at: None,
                    ..replied
                }
            })
            .collect()
    }

    #[test]
    fn a_days_sample_has_exactly_its_size_and_is_reproducible() {
        let rules = sampling_rules(7);
        let now = sh(2026, 11, 21, 0, 1);
        for (volume, size) in [(1, 1), (20, 6), (21, 5), (50, 10), (51, 6), (60, 6)] {
            let day = day_of(volume, &rules);
            let drawn = sample_day(&day, now, &rules).unwrap();
            assert_eq!(drawn.len(), volume as usize);
            let chosen: Vec<Uuid> = drawn
                .iter()
                .filter(|t| t.facts.callback_plan == Some(CallbackPlan::Automatic))
                .map(|t| t.facts.id)
                .collect();
            assert_eq!(chosen.len(), size, "volume {volume}");
            for t in &drawn {
                let automatic = t.facts.callback_plan == Some(CallbackPlan::Automatic);
                assert_eq!(t.facts.next_callback_at.is_some(), automatic);
                assert_eq!(t.deadlines.callback.is_some(), automatic);
                assert_eq!(t.events[0].actor, Actor::System);
                assert_eq!(t.events[0].action, AuditAction::CallbackSampled);
            }
            // The same day in another order draws the same tickets.
            let mut reversed = day.clone();
            reversed.reverse();
            let again: Vec<Uuid> = sample_day(&reversed, now, &rules)
                .unwrap()
                .iter()
                .filter(|t| t.facts.callback_plan == Some(CallbackPlan::Automatic))
                .map(|t| t.facts.id)
                .collect();
            let (mut a, mut b) = (chosen.clone(), again);
            a.sort();
            b.sort();
            assert_eq!(a, b, "volume {volume}");
        }
        // Another seed draws other tickets (of the same number).
        let day = day_of(60, &rules);
        let pick = |rules: &Rules| -> Vec<Uuid> {
            let mut ids: Vec<Uuid> = sample_day(&day, now, rules)
                .unwrap()
                .iter()
                .filter(|t| t.facts.callback_plan == Some(CallbackPlan::Automatic))
                .map(|t| t.facts.id)
                .collect();
            ids.sort();
            ids
        };
        assert_ne!(pick(&rules), pick(&sampling_rules(8)));
        assert_eq!(pick(&sampling_rules(8)).len(), 6);
    }

    #[test]
    fn mandatory_callbacks_and_drawn_tickets_stay_out_of_the_sample() {
        let rules = sampling_rules(0);
        let now = sh(2026, 11, 21, 0, 1);
        let mut day = day_of(4, &rules);
        // A complaint needs a human: never sampled. A ticket already drawn is left alone.
        let complaint = replied(
            &dispatched(Category::Complaint, sh(2026, 11, 20, 9, 0)),
            sh(2026, 11, 20, 10, 0),
        );
        assert_eq!(complaint.callback_plan, Some(CallbackPlan::Human));
        day.push(complaint);
        day[0].callback_plan = Some(CallbackPlan::SampledOut);
        let drawn = sample_day(&day, now, &rules).unwrap();
        // 3 still pending: 30% of 3 rounded up is 1.
        assert_eq!(drawn.len(), 3);
        let chosen = drawn
            .iter()
            .filter(|t| t.facts.callback_plan == Some(CallbackPlan::Automatic))
            .count();
        assert_eq!(chosen, 1);
        assert_eq!(sample_day(&day, now, &rules_2026()), None, "no sampling");
    }

    #[test]
    fn quiet_hours_edges() {
        let rules = rules_2026();
        let cases = [
            (sh(2026, 11, 20, 20, 59), true),
            (sh(2026, 11, 20, 21, 0), false),
            (sh(2026, 11, 21, 3, 0), false),
            (sh(2026, 11, 21, 7, 59), false),
            (sh(2026, 11, 21, 8, 0), true),
        ];
        for (instant, allowed) in cases {
            assert_eq!(is_callback_time(instant, &rules), allowed, "{instant}");
        }
    }

    #[test]
    fn scheduling_prefers_windows_and_never_calls_at_night() {
        let rules = rules_2026();
        let day_after = |h, m| sh(2026, 11, 21, h, m);
        let cases = [
            // Inside a window: at once.
            (sh(2026, 11, 20, 9, 0), None, sh(2026, 11, 20, 9, 0)),
            (sh(2026, 11, 20, 10, 59), None, sh(2026, 11, 20, 10, 59)),
            // Window ends at 11:00 (excluded): the afternoon window.
            (sh(2026, 11, 20, 11, 0), None, sh(2026, 11, 20, 14, 30)),
            // Early morning: the 09:00 window.
            (sh(2026, 11, 20, 8, 0), None, sh(2026, 11, 20, 9, 0)),
            // Evening: next morning's window.
            (sh(2026, 11, 20, 16, 0), None, day_after(9, 0)),
            (sh(2026, 11, 20, 21, 0), None, day_after(9, 0)),
            // The window would miss the due time: the first allowed moment instead.
            (
                sh(2026, 11, 20, 16, 0),
                Some(sh(2026, 11, 20, 17, 0)),
                sh(2026, 11, 20, 16, 0),
            ),
            (
                sh(2026, 11, 20, 22, 0),
                Some(day_after(8, 30)),
                day_after(8, 0),
            ),
            (
                sh(2026, 11, 21, 7, 59),
                Some(day_after(8, 30)),
                day_after(8, 0),
            ),
            // Nothing fits before due: still the preferred window, never the night.
            (
                sh(2026, 11, 20, 22, 0),
                Some(sh(2026, 11, 20, 23, 0)),
                day_after(9, 0),
            ),
        ];
        for (earliest, due, at) in cases {
            assert_eq!(
                schedule_attempt(earliest, due, &rules),
                at,
                "{earliest} {due:?}"
            );
        }
    }

    fn callback(
        facts: &TicketFacts,
        outcome: CallbackOutcome,
        now: DateTime<Utc>,
    ) -> Result<Transition, Refusal> {
        record_callback(
            facts,
            &agent(),
            &CallbackRequest { outcome },
            now,
            &rules_2026(),
        )
    }

    fn reached(result: Rating) -> CallbackOutcome {
        CallbackOutcome::Reached {
            attitude: Rating::Satisfied,
            result,
            new_demand: None,
        }
    }

    #[test]
    fn unreachable_customers_get_three_attempts_two_hours_apart() {
        let facts = replied(
            &dispatched(Category::Repair, sh(2026, 11, 20, 9, 0)),
            sh(2026, 11, 20, 10, 0),
        );
        let first = callback(
            &facts,
            CallbackOutcome::Unreachable,
            sh(2026, 11, 20, 10, 0),
        )
        .unwrap();
        assert_eq!(first.facts.status, Status::Callback);
        // 12:00 is outside the windows: the afternoon window at 14:30.
        assert_eq!(first.facts.next_callback_at, Some(sh(2026, 11, 20, 14, 30)));
        assert!(!is_callback_due(&first.facts, sh(2026, 11, 20, 14, 29)));
        assert!(is_callback_due(&first.facts, sh(2026, 11, 20, 14, 30)));
        let too_soon = callback(
            &first.facts,
            CallbackOutcome::Unreachable,
            sh(2026, 11, 20, 11, 59),
        );
        assert!(
            matches!(too_soon, Err(Refusal::TooEarly { earliest, .. }) if earliest == sh(2026, 11, 20, 12, 0))
        );
        let second = callback(
            &first.facts,
            CallbackOutcome::Unreachable,
            sh(2026, 11, 20, 14, 30),
        )
        .unwrap();
        // 16:30 misses today's windows; the centre works every day: Saturday 09:00.
        assert_eq!(second.facts.next_callback_at, Some(sh(2026, 11, 21, 9, 0)));
        let third = callback(
            &second.facts,
            CallbackOutcome::Unreachable,
            sh(2026, 11, 21, 9, 0),
        )
        .unwrap();
        assert_eq!(third.facts.status, Status::Closed);
        assert_eq!(
            third.events[0].reason.as_deref(),
            Some("customer unreachable after 3 callback attempts")
        );
        // No calls in the quiet hours.
        assert!(matches!(
            callback(
                &facts,
                CallbackOutcome::Unreachable,
                sh(2026, 11, 20, 21, 0)
            ),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn first_unsatisfied_reopens_second_goes_to_the_supervisor() {
        let facts = replied(
            &dispatched(Category::Repair, sh(2026, 11, 20, 9, 0)),
            sh(2026, 11, 20, 10, 0),
        );
        let first = callback(
            &facts,
            reached(Rating::Unsatisfied),
            sh(2026, 11, 20, 10, 30),
        )
        .unwrap();
        assert_eq!(first.facts.status, Status::Reopened);
        assert_eq!(first.facts.unsatisfied_callbacks, 1);
        assert_eq!(first.events[0].action, AuditAction::CallbackUnsatisfied);
        assert_eq!(
            first.events[0].detail.as_deref(),
            Some("attitude satisfied, result unsatisfied")
        );
        // Second handling: 3 working days again from the reopening.
        assert_eq!(
            first.deadlines.finish.unwrap().due,
            sh(2026, 11, 25, 10, 30)
        );

        let second_reply = replied(&first.facts, sh(2026, 11, 23, 10, 0));
        assert_eq!(second_reply.callback_plan, Some(CallbackPlan::Human));
        let second = callback(
            &second_reply,
            reached(Rating::Unsatisfied),
            sh(2026, 11, 23, 15, 0),
        )
        .unwrap();
        assert_eq!(second.facts.status, Status::Adjudication);
        assert!(matches!(
            second.follow_ups.as_slice(),
            [FollowUp::SupervisorQueue { .. }]
        ));

        let attitude = CallbackOutcome::Reached {
            attitude: Rating::Unsatisfied,
            result: Rating::Satisfied,
            new_demand: None,
        };
        let by_attitude = callback(&facts, attitude, sh(2026, 11, 20, 10, 30)).unwrap();
        assert_eq!(by_attitude.facts.status, Status::Reopened);
    }

    #[test]
    fn satisfied_declined_and_new_demands() {
        let facts = replied(
            &dispatched(Category::Repair, sh(2026, 11, 20, 9, 0)),
            sh(2026, 11, 20, 10, 0),
        );
        let now = sh(2026, 11, 20, 10, 30);
        let outcome = CallbackOutcome::Reached {
            attitude: Rating::Satisfied,
            result: Rating::BasicallySatisfied,
            new_demand: Some("meter reading looks wrong".into()),
        };
        let done = callback(&facts, outcome, now).unwrap();
        assert_eq!(done.facts.status, Status::Closed);
        assert_eq!(
            done.follow_ups,
            vec![FollowUp::NewTicketFromCallback {
                description: "meter reading looks wrong".into()
            }]
        );
        let declined = callback(&facts, CallbackOutcome::Declined, now).unwrap();
        assert_eq!(declined.facts.status, Status::Closed);
        assert_eq!(declined.events[0].action, AuditAction::CallbackDeclined);

        let open = dispatched(Category::Repair, now);
        assert_eq!(
            callback(&open, reached(Rating::Satisfied), now),
            Err(illegal(Operation::RecordCallback, Status::Dispatched))
        );
        // A survey integration may record automatic callbacks of its channel only.
        let survey = Actor::Integration {
            channel: Channel::Hotline,
            id: "survey".into(),
        };
        let request = CallbackRequest {
            outcome: reached(Rating::Satisfied),
        };
        assert!(record_callback(&facts, &survey, &request, now, &rules_2026()).is_ok());
        let human = TicketFacts {
            callback_plan: Some(CallbackPlan::Human),
            ..facts.clone()
        };
        assert!(matches!(
            record_callback(&human, &survey, &request, now, &rules_2026()),
            Err(Refusal::WrongActor { .. })
        ));
        let wechat = Actor::Integration {
            channel: Channel::Wechat,
            id: "wx".into(),
        };
        assert!(matches!(
            record_callback(&facts, &wechat, &request, now, &rules_2026()),
            Err(Refusal::WrongActor { .. })
        ));
    }

    #[test]
    fn a_customer_who_cannot_talk_now_is_called_again_at_the_agreed_time() {
        let repair = dispatched(Category::Repair, sh(2026, 11, 20, 9, 0));
        let answered = replied(&repair, sh(2026, 11, 20, 10, 0));
        let now = sh(2026, 11, 20, 10, 30);
        let cases = [
            (sh(2026, 11, 20, 10, 30), false), // not in the future
            (sh(2026, 11, 20, 10, 31), true),  // sooner than the 2-hour gap: the caller's choice
            (sh(2026, 11, 20, 20, 59), true),
            (sh(2026, 11, 20, 21, 0), false), // quiet hours
            (sh(2026, 11, 21, 7, 59), false),
            (sh(2026, 11, 21, 8, 0), true),
            (sh(2026, 11, 24, 15, 0), true), // past the 1-working-day callback limit
        ];
        for (at, allowed) in cases {
            let result = callback(&answered, CallbackOutcome::CallLater { at }, now);
            if !allowed {
                assert!(
                    matches!(result, Err(Refusal::Invalid { .. })),
                    "{at}: {result:?}"
                );
                continue;
            }
            let t = result.unwrap();
            assert_eq!(t.facts.status, Status::Callback, "{at}");
            assert_eq!(t.facts.next_callback_at, Some(at));
            assert_eq!(t.facts.callback_attempts, 0, "not an unreachable attempt");
            assert_eq!(t.events[0].action, AuditAction::CallbackCallLater);
            // The callback is due no earlier than the agreed time.
            let due = t.deadlines.callback.unwrap().due;
            assert_eq!(due, at.max(sh(2026, 11, 23, 10, 0)), "{at}");
            // And the call at the agreed time may be made.
            let reached = callback(&t.facts, reached(Rating::Satisfied), at).unwrap();
            assert_eq!(reached.facts.status, Status::Closed);
        }
    }

    #[test]
    fn a_callback_time_agreed_at_intake_schedules_the_first_attempt() {
        let rules = rules_2026();
        let mut repair = dispatched(Category::Repair, sh(2026, 11, 20, 9, 0));
        let reply_at = sh(2026, 11, 20, 10, 0);
        // (agreed, first attempt, callback due)
        let cases = [
            (None, sh(2026, 11, 20, 10, 0), sh(2026, 11, 23, 10, 0)),
            (
                Some(sh(2026, 11, 20, 18, 0)),
                sh(2026, 11, 20, 18, 0),
                sh(2026, 11, 23, 10, 0),
            ),
            // Agreed in the quiet hours: the first moment after them.
            (
                Some(sh(2026, 11, 20, 22, 0)),
                sh(2026, 11, 21, 8, 0),
                sh(2026, 11, 23, 10, 0),
            ),
            (
                Some(sh(2026, 11, 25, 15, 0)),
                sh(2026, 11, 25, 15, 0),
                sh(2026, 11, 25, 15, 0),
            ),
            // Already past at the reply: the usual schedule.
            (
                Some(sh(2026, 11, 20, 9, 30)),
                sh(2026, 11, 20, 10, 0),
                sh(2026, 11, 23, 10, 0),
            ),
        ];
        for (agreed, first, due) in cases {
            repair.agreed_callback_at = agreed;
            let answered = replied(&repair, reply_at);
            assert_eq!(answered.next_callback_at, Some(first), "{agreed:?}");
            let d = crate::tickets::deadlines::compute(&answered, &rules);
            assert_eq!(d.callback.map(|d| d.due), Some(due), "{agreed:?}");
        }
    }
}
