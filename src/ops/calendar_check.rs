//! The calendar check: at start and then every day just after local midnight, a warning when
//! `[calendar]` holds no date for the current year, or (from 1 December) for the coming one —
//! without them every weekday counts as a working day for opening hours, holiday flows and
//! ticket deadlines. It reads the newest configuration each time, so a reload that adds the
//! dates silences it.
//!
//! Owns the schedule of the check and its message; the rule is `WorkingCalendar::missing_years`.

use crate::config::{Config, WorkingCalendar};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Checks now and every day until aborted.
pub async fn run_calendar_check(config: watch::Receiver<Arc<Config>>) {
    loop {
        let snapshot = config.borrow().clone();
        let tz = snapshot.daemon.tz().unwrap_or(chrono_tz::Asia::Shanghai);
        let now = Utc::now().with_timezone(&tz);
        for warning in calendar_warnings(&snapshot.calendar, now.date_naive()) {
            tracing::warn!("{warning}");
        }
        tokio::time::sleep(until_next_day(now)).await;
    }
}

/// One message per year that needs dates on `today` and has none.
pub fn calendar_warnings(calendar: &WorkingCalendar, today: NaiveDate) -> Vec<String> {
    calendar
        .missing_years(today)
        .into_iter()
        .map(|year| {
            format!(
                "calendar: no public holidays or make-up working days for {year}, so every \
                 weekday of {year} counts as a working day for opening hours, holiday flows \
                 and ticket deadlines; add the State Council's {year} schedule under [calendar] \
                 (holidays, make_up_working_days) and reload the configuration"
            )
        })
        .collect()
}

/// From `now` to a minute past the next local midnight (24 hours if that cannot be told).
fn until_next_day(now: DateTime<Tz>) -> Duration {
    let next = now
        .date_naive()
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 1, 0))
        .and_then(|at| now.timezone().from_local_datetime(&at).earliest());
    next.and_then(|at| (at - now).to_std().ok())
        .unwrap_or(Duration::from_secs(24 * 60 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_for_each_year_without_dates_naming_the_key() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        let calendar = WorkingCalendar {
            holidays: [day("2026-10-01")].into(),
            ..WorkingCalendar::default()
        };
        assert!(calendar_warnings(&calendar, day("2026-11-30")).is_empty());
        let warnings = calendar_warnings(&calendar, day("2026-12-01"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("for 2027"), "{}", warnings[0]);
        assert!(warnings[0].contains("[calendar]"), "{}", warnings[0]);
    }

    #[test]
    fn the_next_check_is_just_after_local_midnight() {
        let tz = chrono_tz::Asia::Shanghai;
        let now = tz.with_ymd_and_hms(2026, 12, 1, 23, 0, 0).unwrap();
        assert_eq!(until_next_day(now), Duration::from_secs(61 * 60));
    }
}
