//! `[calendar]`: the one working-day calendar — public holidays and make-up working days
//! (调休), which the State Council announces every year — used by IVR opening hours, holiday
//! flows and ticket deadlines alike. The loader copies it into the IVR's and the ticket
//! rules' own calendar types, and refuses the old per-section keys (`[ivr.calendar]`,
//! `[tickets.calendar] holidays / make_up_working_days`) naming the key to write instead.
//! [`WorkingCalendar::missing_years`] tells the daemon when the dates run out.
//!
//! Owns this section's keys and checks; must not do date arithmetic (`tickets::calendar`).

use super::Problems;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Keys of the old, per-section calendars → the key that replaces each.
const MOVED_KEYS: [(&str, &str); 4] = [
    ("ivr.calendar.holidays", "holidays"),
    ("ivr.calendar.make_up_workdays", "make_up_working_days"),
    ("tickets.calendar.holidays", "holidays"),
    (
        "tickets.calendar.make_up_working_days",
        "make_up_working_days",
    ),
];

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkingCalendar {
    /// Public holidays: no work even on a weekday. Dates as "YYYY-MM-DD" or bare TOML dates.
    #[serde(deserialize_with = "crate::ivr::config::dates")]
    pub holidays: BTreeSet<NaiveDate>,
    /// Make-up working days (调休): weekend days that are working days.
    #[serde(deserialize_with = "crate::ivr::config::dates")]
    pub make_up_working_days: BTreeSet<NaiveDate>,
}

impl WorkingCalendar {
    /// A date in both lists is refused: the calendar could not say what the day is.
    pub(super) fn validate(&self, problems: &mut Problems<'_>) {
        for date in self.holidays.intersection(&self.make_up_working_days) {
            problems.report(
                "calendar.make_up_working_days",
                format!(
                    "{date} is listed both in holidays and in make_up_working_days; keep it in one list"
                ),
            );
        }
    }

    /// The years that need dates on `today` and have none: the current year, and from
    /// 1 December the coming one too. Without them every weekday counts as a working day.
    pub fn missing_years(&self, today: NaiveDate) -> Vec<i32> {
        let mut needed = vec![today.year()];
        if today.month() == 12 {
            needed.push(today.year() + 1);
        }
        needed.retain(|&year| {
            !self
                .holidays
                .iter()
                .chain(&self.make_up_working_days)
                .any(|date| date.year() == year)
        });
        needed
    }

    /// Copies the dates into the IVR's and the ticket rules' calendars.
    pub(super) fn apply(
        &self,
        ivr: &mut crate::ivr::config::Calendar,
        tickets: &mut crate::tickets::calendar::CalendarConfig,
    ) {
        ivr.holidays = self.holidays.clone();
        ivr.make_up_workdays = self.make_up_working_days.clone();
        tickets.holidays = self.holidays.iter().copied().collect();
        tickets.make_up_working_days = self.make_up_working_days.iter().copied().collect();
    }
}

/// Each old calendar key in the file is an error naming its `[calendar]` key.
pub(super) fn refuse_moved_keys(contains: impl Fn(&str) -> bool, problems: &mut Problems<'_>) {
    for (old, new) in MOVED_KEYS {
        if contains(old) {
            problems.report(
                old,
                format!(
                    "moved: write these dates under [calendar] {new} (calendar.{new}); one \
                     calendar now serves opening hours, holiday flows and ticket deadlines"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_current_year_needs_dates_and_from_december_the_next_one_too() {
        let calendar = WorkingCalendar {
            holidays: [date("2026-10-01")].into(),
            make_up_working_days: [date("2026-10-10")].into(),
        };
        assert!(calendar.missing_years(date("2026-11-30")).is_empty());
        assert_eq!(calendar.missing_years(date("2026-12-01")), [2027]);
        assert_eq!(calendar.missing_years(date("2027-01-01")), [2027]);
        let next = WorkingCalendar {
            make_up_working_days: [date("2027-02-07")].into(),
            ..calendar.clone()
        };
        assert!(next.missing_years(date("2026-12-31")).is_empty());
        assert_eq!(
            WorkingCalendar::default().missing_years(date("2026-12-24")),
            [2026, 2027]
        );
    }
}
