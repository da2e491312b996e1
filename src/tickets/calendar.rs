//! The working-day calendar (hotline-rules §7): a time zone, weekends, configured public
//! holidays and make-up working days (调休), and deadline arithmetic over them.
//!
//! Owns date arithmetic only; must not read the clock — every instant is passed in.
//!
//! "Within n working days" follows hotline practice: the deadline is the same local time of
//! day on the n-th working day after the start date, skipping non-working days. A ticket
//! dispatched on Friday 16:00 with 3 working days is due Wednesday 16:00; dispatched on a
//! Saturday at 10:00 with 1 working day, it is due Monday 10:00.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime};
use chrono::{TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::BTreeSet;

/// The ticket rules' calendar: holidays and make-up days move every year, so both are plain
/// lists of dates. In the daemon's file they are written once, under `[calendar]`, and the
/// config loader fills them (and the time zone, `daemon.time_zone`) in here.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// IANA time zone in which working days and times of day are counted.
    pub time_zone: String,
    /// Public holidays: no work even on a weekday.
    pub holidays: Vec<NaiveDate>,
    /// Make-up working days (调休): weekend days that are working days.
    pub make_up_working_days: Vec<NaiveDate>,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            time_zone: "Asia/Shanghai".into(),
            holidays: Vec::new(),
            make_up_working_days: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "tickets.calendar.time_zone {0:?} is not an IANA time zone name; write one such as \"Asia/Shanghai\""
    )]
    UnknownTimeZone(String),
    #[error(
        "tickets.calendar: {0} is listed both in holidays and in make_up_working_days; keep it in one list"
    )]
    HolidayAndWorkingDay(NaiveDate),
}

/// A validated calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    tz: Tz,
    holidays: BTreeSet<NaiveDate>,
    make_up_working_days: BTreeSet<NaiveDate>,
}

impl Calendar {
    pub fn new(config: &CalendarConfig) -> Result<Calendar, CalendarError> {
        let tz: Tz = config
            .time_zone
            .parse()
            .map_err(|_| CalendarError::UnknownTimeZone(config.time_zone.clone()))?;
        let holidays: BTreeSet<NaiveDate> = config.holidays.iter().copied().collect();
        let make_up_working_days: BTreeSet<NaiveDate> =
            config.make_up_working_days.iter().copied().collect();
        if let Some(both) = holidays.intersection(&make_up_working_days).next() {
            return Err(CalendarError::HolidayAndWorkingDay(*both));
        }
        Ok(Calendar {
            tz,
            holidays,
            make_up_working_days,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The instant in the calendar's local time.
    pub fn local(&self, instant: DateTime<Utc>) -> DateTime<Tz> {
        instant.with_timezone(&self.tz)
    }

    /// A make-up day works even on a weekend; a holiday rests even on a weekday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.make_up_working_days.contains(&date) {
            return true;
        }
        if self.holidays.contains(&date) {
            return false;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The instant at the same local time of day on the `n`-th working day after the start's
    /// local date (the start itself when `n` is 0).
    pub fn add_working_days(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        self.step_working_days(start, n, NaiveDate::succ_opt)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The inverse: the same local time on the `n`-th working day before `end`'s local date.
    /// "At least one working day before a deadline" means no later than this with `n` = 1.
    pub fn sub_working_days(&self, end: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        self.step_working_days(end, n, NaiveDate::pred_opt)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn step_working_days(
        &self,
        from: DateTime<Utc>,
        n: u32,
        step: fn(&NaiveDate) -> Option<NaiveDate>,
    ) -> Option<DateTime<Utc>> {
        if n == 0 {
            return Some(from);
        }
        let local = self.local(from).naive_local();
        let mut date = local.date();
        let mut counted = 0;
        while counted < n {
            date = step(&date)?;
            if self.is_working_day(date) {
                counted += 1;
            }
        }
        Some(self.at_local(date, local.time()))
    }

    /// Minutes and hours run on the wall clock, weekends and nights included.
    pub fn add_wall_clock(&self, start: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
        start
            .checked_add_signed(duration)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// How many working days lie after `from`'s local date up to and including `to`'s local
    /// date; 0 when `to` is not after `from`.
    pub fn working_days_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
        let end = self.local(to).date_naive();
        let mut date = self.local(from).date_naive();
        let mut count = 0;
        while date < end {
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
            if self.is_working_day(date) {
                count += 1;
            }
        }
        count
    }

    /// The instant of a local date and time. A time skipped by a daylight-saving jump moves
    /// forward to the first valid time; a repeated one takes its first occurrence.
    pub fn at_local(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let naive = NaiveDateTime::new(date, time);
        for quarter_hours in 0..16 {
            let candidate = naive + Duration::minutes(15 * quarter_hours);
            match self.tz.from_local_datetime(&candidate) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    return t.with_timezone(&Utc);
                }
                LocalResult::None => {}
            }
        }
        // No zone has a gap of four hours; reading the time as UTC is the sane last resort.
        Utc.from_utc_datetime(&naive)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The 2026 calendar shipped in the example configuration (`deploy/hotline.toml`),
    /// which follows the State Council's official 2026 arrangement.
    pub(crate) fn shipped_2026() -> CalendarConfig {
        let example: toml::Value =
            toml::from_str(include_str!("../../deploy/hotline.toml")).unwrap();
        // The calendar section, wherever the example keeps it.
        let section = example
            .get("calendar")
            .or_else(|| example.get("tickets").and_then(|t| t.get("calendar")))
            .expect("the example configuration has a calendar")
            .clone();
        section.try_into().unwrap()
    }

    pub(crate) fn calendar_2026() -> Calendar {
        Calendar::new(&shipped_2026()).unwrap()
    }

    pub(crate) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// An instant given as Asia/Shanghai wall time.
    pub(crate) fn sh(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_shipped_calendar_is_the_official_2026_arrangement() {
        let cal = calendar_2026();
        // Every holiday span; in 2026 each is bordered by working days (make-up days
        // included: Sunday Jan 4 after New Year, Saturday Feb 14 before Spring Festival).
        let spans = [
            (date(2026, 1, 1), date(2026, 1, 3)),   // New Year
            (date(2026, 2, 15), date(2026, 2, 23)), // Spring Festival
            (date(2026, 4, 4), date(2026, 4, 6)),   // Qingming
            (date(2026, 5, 1), date(2026, 5, 5)),   // Labour Day
            (date(2026, 6, 19), date(2026, 6, 21)), // Dragon Boat
            (date(2026, 9, 25), date(2026, 9, 27)), // Mid-Autumn
            (date(2026, 10, 1), date(2026, 10, 7)), // National Day
        ];
        let mut off = 0;
        for (first, last) in spans {
            let mut day = first;
            while day <= last {
                assert!(!cal.is_working_day(day), "{day} is a holiday");
                off += 1;
                day = day.succ_opt().unwrap();
            }
            assert!(
                cal.is_working_day(first.pred_opt().unwrap()),
                "before {first}"
            );
            assert!(cal.is_working_day(last.succ_opt().unwrap()), "after {last}");
        }
        assert_eq!(off, 33);
        // Every make-up working day is a weekend day that is worked.
        let make_up = [
            date(2026, 1, 4),   // Sunday
            date(2026, 2, 14),  // Saturday
            date(2026, 2, 28),  // Saturday
            date(2026, 5, 9),   // Saturday
            date(2026, 9, 20),  // Sunday
            date(2026, 10, 10), // Saturday
        ];
        for day in make_up {
            assert!(
                day.weekday().number_from_monday() >= 6,
                "{day} is a weekend day"
            );
            assert!(cal.is_working_day(day), "{day} is worked");
        }
        let config = shipped_2026();
        assert_eq!(config.holidays.len(), off);
        assert_eq!(config.make_up_working_days, make_up);
        // The weekend beside a make-up day stays off.
        assert!(!cal.is_working_day(date(2026, 9, 19)));
        assert!(!cal.is_working_day(date(2026, 10, 11)));
    }

    #[test]
    fn add_working_days_keeps_the_time_of_day_and_skips_rest_days() {
        let cal = calendar_2026();
        let cases = [
            // Friday 16:00 + 3 → Wednesday 16:00 (an ordinary weekend).
            (sh(2026, 11, 20, 16, 0), 3, sh(2026, 11, 25, 16, 0)),
            // Friday + 1 → Monday.
            (sh(2026, 11, 20, 9, 30), 1, sh(2026, 11, 23, 9, 30)),
            // Saturday + 1 → Monday, same time.
            (sh(2026, 11, 21, 10, 0), 1, sh(2026, 11, 23, 10, 0)),
            // Friday Sep 18 + 1 → the make-up Sunday Sep 20.
            (sh(2026, 9, 18, 17, 0), 1, sh(2026, 9, 20, 17, 0)),
            // Thursday Sep 24 + 1 → Monday Sep 28, over the Mid-Autumn holiday.
            (sh(2026, 9, 24, 17, 0), 1, sh(2026, 9, 28, 17, 0)),
            // Wednesday Sep 30 + 1 → Thursday Oct 8, over the whole National Day holiday.
            (sh(2026, 9, 30, 15, 0), 1, sh(2026, 10, 8, 15, 0)),
            // Sep 30 + 3 → Oct 8, Oct 9, the make-up Saturday Oct 10.
            (sh(2026, 9, 30, 15, 0), 3, sh(2026, 10, 10, 15, 0)),
            // During the holiday + 1 → the first day back.
            (sh(2026, 10, 3, 11, 0), 1, sh(2026, 10, 8, 11, 0)),
            // Spring Festival: Friday Feb 13 + 2 → the make-up Saturday Feb 14, then Feb 24.
            (sh(2026, 2, 13, 10, 0), 2, sh(2026, 2, 24, 10, 0)),
            // Zero days is the start itself.
            (sh(2026, 10, 3, 11, 0), 0, sh(2026, 10, 3, 11, 0)),
            // Local midnight crossing: 23:30 local is still the local date.
            (sh(2026, 11, 20, 23, 30), 1, sh(2026, 11, 23, 23, 30)),
        ];
        for (start, n, due) in cases {
            assert_eq!(cal.add_working_days(start, n), due, "{start} + {n}");
        }
    }

    #[test]
    fn sub_working_days_steps_back_over_rest_days() {
        let cal = calendar_2026();
        let cases = [
            (sh(2026, 11, 23, 10, 0), 1, sh(2026, 11, 20, 10, 0)), // Monday → Friday
            (sh(2026, 11, 22, 10, 0), 1, sh(2026, 11, 20, 10, 0)), // Sunday → Friday
            (sh(2026, 10, 8, 15, 0), 1, sh(2026, 9, 30, 15, 0)),   // over the holiday
            (sh(2026, 9, 28, 15, 0), 1, sh(2026, 9, 24, 15, 0)),   // over Mid-Autumn
            (sh(2026, 9, 21, 15, 0), 1, sh(2026, 9, 20, 15, 0)),   // the make-up Sunday
            (sh(2026, 9, 28, 15, 0), 0, sh(2026, 9, 28, 15, 0)),
        ];
        for (end, n, start) in cases {
            assert_eq!(cal.sub_working_days(end, n), start, "{end} - {n}");
        }
    }

    #[test]
    fn wall_clock_ignores_the_calendar() {
        let cal = calendar_2026();
        assert_eq!(
            cal.add_wall_clock(sh(2026, 9, 30, 22, 0), Duration::hours(3)),
            sh(2026, 10, 1, 1, 0)
        );
        assert_eq!(
            cal.add_wall_clock(DateTime::<Utc>::MAX_UTC, Duration::hours(1)),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn working_days_between_counts_days_after_the_start() {
        let cal = calendar_2026();
        let cases = [
            (sh(2026, 9, 30, 9, 0), sh(2026, 10, 8, 9, 0), 1),
            (sh(2026, 9, 18, 9, 0), sh(2026, 9, 21, 9, 0), 2), // make-up Sunday + Monday
            (sh(2026, 9, 24, 9, 0), sh(2026, 9, 28, 9, 0), 1), // over Mid-Autumn
            (sh(2026, 11, 20, 9, 0), sh(2026, 11, 20, 18, 0), 0),
            (sh(2026, 11, 23, 9, 0), sh(2026, 11, 20, 9, 0), 0),
            (sh(2026, 10, 1, 9, 0), sh(2026, 10, 11, 9, 0), 3), // Oct 8, 9, 10
        ];
        for (from, to, n) in cases {
            assert_eq!(cal.working_days_between(from, to), n, "{from} → {to}");
        }
    }

    #[test]
    fn bad_calendars_are_refused_with_the_key() {
        let bad_zone = CalendarConfig {
            time_zone: "Asia/Beijing".into(),
            ..CalendarConfig::default()
        };
        let err = Calendar::new(&bad_zone).unwrap_err();
        assert_eq!(err, CalendarError::UnknownTimeZone("Asia/Beijing".into()));
        assert!(err.to_string().contains("tickets.calendar.time_zone"));

        let both = CalendarConfig {
            holidays: vec![date(2026, 10, 10)],
            make_up_working_days: vec![date(2026, 10, 10)],
            ..CalendarConfig::default()
        };
        assert_eq!(
            Calendar::new(&both),
            Err(CalendarError::HolidayAndWorkingDay(date(2026, 10, 10)))
        );
    }

    #[test]
    fn daylight_saving_gaps_move_forward() {
        let cal = Calendar::new(&CalendarConfig {
            time_zone: "Europe/Berlin".into(),
            ..CalendarConfig::default()
        })
        .unwrap();
        // 2026-03-29 02:30 does not exist in Berlin; 03:00 CEST is 01:00 UTC.
        let t = cal.at_local(
            date(2026, 3, 29),
            NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        );
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
    }
}
