//! The service report's SQL: per report period, additive tallies of the calls (by arrival),
//! the leak lane, the survey, the tickets (by creation), their deadlines (by due instant)
//! and callbacks, plus the raw leak answer times and the agents' state timeline that the
//! percentiles and occupancy are computed from. Also the periods themselves: local days,
//! weeks or months of a time zone, as UTC instants.
//!
//! Owns the queries and the tallies' meaning; the formulas over them (SL, SL2, ASA, AHT,
//! percentiles, occupancy) are the desk's.

use super::{Store, StoreError};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use std::collections::BTreeMap;

/// Longest report range, in days.
pub const MAX_REPORT_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Day,
    Week,
    Month,
}

/// One report period: local dates `first..=last`, instants `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The instant local `day` starts in `zone` (the first instant after a gap, should midnight
/// fall in one).
fn day_start(zone: chrono_tz::Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    (0..=24 * 60)
        .find_map(|minute| {
            zone.from_local_datetime(&(midnight + chrono::Duration::minutes(minute)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc(), |at| at.with_timezone(&Utc))
}

/// The first day of the period holding `day`: itself, its ISO week's Monday, its month's 1st.
fn period_first(grouping: Grouping, day: NaiveDate) -> NaiveDate {
    match grouping {
        Grouping::Day => day,
        Grouping::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
        Grouping::Month => day.with_day(1).unwrap_or(day),
    }
}

/// The periods covering local dates `from..=to` in `zone`; the first and last are cut to the
/// range (a week grouping starting on a Wednesday has a short first week).
pub fn periods(
    from: NaiveDate,
    to: NaiveDate,
    grouping: Grouping,
    zone: chrono_tz::Tz,
) -> Vec<Period> {
    let mut out = Vec::new();
    let mut first = from;
    while first <= to {
        let start_of_period = period_first(grouping, first);
        let next = match grouping {
            Grouping::Day => start_of_period.checked_add_days(Days::new(1)),
            Grouping::Week => start_of_period.checked_add_days(Days::new(7)),
            Grouping::Month => start_of_period.checked_add_months(Months::new(1)),
        };
        let Some(next) = next else { break };
        let end_day = next.min(to + Days::new(1));
        out.push(Period {
            first,
            last: end_day - Days::new(1),
            start: day_start(zone, first),
            end: day_start(zone, end_day),
        });
        first = end_day;
    }
    out
}

/// What a report is asked for.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub periods: Vec<Period>,
    /// Only calls of this queue (and tickets of such calls).
    pub queue: Option<String>,
    /// Only calls to this dialled number (and tickets of such calls).
    pub number: Option<String>,
    pub service_level_secs: u64,
    pub short_abandon_secs: u64,
    pub now: DateTime<Utc>,
}

/// Call figures of one period that add up across periods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTally {
    pub arrived: u64,
    pub abandoned_in_ivr: u64,
    /// Entered a queue.
    pub queued: u64,
    /// Connected to an agent after queueing.
    pub answered: u64,
    pub answered_within: u64,
    pub answered_wait_ms: u64,
    /// Hung up while queued after at least the short-abandon threshold.
    pub abandoned: u64,
    pub abandoned_within: u64,
    /// Hung up while queued before the short-abandon threshold.
    pub short_abandoned: u64,
    /// Answered calls whose agent's wrap-up ended.
    pub handled: u64,
    pub handle_ms: u64,
    pub leak_calls: u64,
    pub leak_answered: u64,
    pub leak_abandoned: u64,
    /// Post-call survey: satisfied, basically satisfied, unsatisfied.
    pub survey: [u64; 3],
}

/// Deadlines of one kind that fell due in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadlineTally {
    pub met: u64,
    pub missed: u64,
}

/// Ticket figures of one period that add up across periods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketTally {
    pub by_category: BTreeMap<String, u64>,
    pub by_channel: BTreeMap<String, u64>,
    /// Complaint level (`l1`, `l2`, `l3`, or `unset`).
    pub complaints_by_level: BTreeMap<String, u64>,
    /// Urges by the responsible unit of the ticket they chase (`""`: none).
    pub urges_by_unit: BTreeMap<String, u64>,
    /// `dispatch`, `contact`, `finish`, `callback`.
    pub deadlines: BTreeMap<String, DeadlineTally>,
    /// Missed contact and finish deadlines by responsible unit.
    pub overdue_by_unit: BTreeMap<String, u64>,
    /// Replied tickets whose plan calls for a callback.
    pub callbacks_needed: u64,
    /// Of those, reached by a callback.
    pub callbacks_completed: u64,
    /// Ratings of reached callbacks: satisfied, basically satisfied, unsatisfied.
    pub attitude: [u64; 3],
    pub result: [u64; 3],
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodTally {
    pub calls: CallTally,
    pub tickets: TicketTally,
}

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, n) in from {
        *into.entry(key.clone()).or_default() += n;
    }
}

fn add3(into: &mut [u64; 3], from: &[u64; 3]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

impl PeriodTally {
    /// Adds `other` in (for the total row).
    pub fn add(&mut self, other: &PeriodTally) {
        let (c, o) = (&mut self.calls, &other.calls);
        for (a, b) in [
            (&mut c.arrived, o.arrived),
            (&mut c.abandoned_in_ivr, o.abandoned_in_ivr),
            (&mut c.queued, o.queued),
            (&mut c.answered, o.answered),
            (&mut c.answered_within, o.answered_within),
            (&mut c.answered_wait_ms, o.answered_wait_ms),
            (&mut c.abandoned, o.abandoned),
            (&mut c.abandoned_within, o.abandoned_within),
            (&mut c.short_abandoned, o.short_abandoned),
            (&mut c.handled, o.handled),
            (&mut c.handle_ms, o.handle_ms),
            (&mut c.leak_calls, o.leak_calls),
            (&mut c.leak_answered, o.leak_answered),
            (&mut c.leak_abandoned, o.leak_abandoned),
        ] {
            *a += b;
        }
        add3(&mut c.survey, &o.survey);
        let (t, o) = (&mut self.tickets, &other.tickets);
        add_map(&mut t.by_category, &o.by_category);
        add_map(&mut t.by_channel, &o.by_channel);
        add_map(&mut t.complaints_by_level, &o.complaints_by_level);
        add_map(&mut t.urges_by_unit, &o.urges_by_unit);
        add_map(&mut t.overdue_by_unit, &o.overdue_by_unit);
        for (kind, d) in &o.deadlines {
            let into = t.deadlines.entry(kind.clone()).or_default();
            into.met += d.met;
            into.missed += d.missed;
        }
        t.callbacks_needed += o.callbacks_needed;
        t.callbacks_completed += o.callbacks_completed;
        add3(&mut t.attitude, &o.attitude);
        add3(&mut t.result, &o.result);
    }
}

/// One change of an agent's state, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub agent_id: String,
    pub at: DateTime<Utc>,
    pub to_state: String,
}

/// Everything a report is computed from.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    /// One per period, in order.
    pub periods: Vec<PeriodTally>,
    /// (period index, leak digit → agent answer, ms) of answered leak calls.
    pub leak_answer_ms: Vec<(usize, u64)>,
    /// State changes in the range, plus each agent's last change before it; by agent, time.
    pub timeline: Vec<StateRow>,
}

/// Calls per period ($1 bounds, $2 queue, $3 number, $4 service level ms, $5 short abandon
/// ms). The wait is from entering the queue to the agent's answer or the hang-up. A call's
/// handle ends at its agent's first change after the answer into a state that is neither
/// on_call nor wrap_up: found in one pass over the answers and those changes per agent
/// (newest first, the earliest change seen so far), changes up to a day past the range.
const CALLS_SQL: &str = "\
WITH f AS ( \
  SELECT * FROM calls \
  WHERE arrived_at >= $1[1] AND arrived_at < $1[array_length($1, 1)] \
    AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR called_number = $3)), \
ev AS ( \
  SELECT agent_id, connected_at AS at, 0 AS kind, id FROM f \
  WHERE connected_at IS NOT NULL AND agent_id IS NOT NULL \
  UNION ALL \
  SELECT agent_id, at, 1, id FROM agent_state_changes \
  WHERE at > $1[1] AND at < $1[array_length($1, 1)] + interval '1 day' \
    AND to_state NOT IN ('on_call', 'wrap_up')), \
h AS ( \
  SELECT id, kind, min(at) FILTER (WHERE kind = 1) OVER (PARTITION BY agent_id \
    ORDER BY at DESC, kind ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS done \
  FROM ev), \
c AS ( \
  SELECT width_bucket(f.arrived_at, $1::timestamptz[]) AS p, f.disposition, f.survey_rating, \
    f.leak_at IS NOT NULL AS leak, \
    f.queued_at IS NOT NULL AS queued, \
    f.queued_at IS NOT NULL AND f.connected_at IS NOT NULL AS answered, \
    f.queued_at IS NOT NULL AND f.connected_at IS NULL AND f.ended_at IS NOT NULL \
      AND f.disposition = 'abandoned_in_queue' AS abandoned, \
    (EXTRACT(EPOCH FROM f.connected_at - f.queued_at) * 1000)::bigint AS answer_wait, \
    (EXTRACT(EPOCH FROM f.ended_at - f.queued_at) * 1000)::bigint AS abandon_wait, \
    (EXTRACT(EPOCH FROM h.done - f.connected_at) * 1000)::bigint AS handle \
  FROM f LEFT JOIN h ON h.kind = 0 AND h.id = f.id) \
SELECT p, count(*), \
  count(*) FILTER (WHERE disposition = 'abandoned_in_ivr'), \
  count(*) FILTER (WHERE queued), \
  count(*) FILTER (WHERE answered), \
  count(*) FILTER (WHERE answered AND answer_wait <= $4), \
  COALESCE(sum(answer_wait) FILTER (WHERE answered), 0)::bigint, \
  count(*) FILTER (WHERE abandoned AND abandon_wait >= $5), \
  count(*) FILTER (WHERE abandoned AND abandon_wait >= $5 AND abandon_wait <= $4), \
  count(*) FILTER (WHERE abandoned AND abandon_wait < $5), \
  count(*) FILTER (WHERE answered AND handle IS NOT NULL), \
  COALESCE(sum(handle) FILTER (WHERE answered), 0)::bigint, \
  count(*) FILTER (WHERE leak), \
  count(*) FILTER (WHERE leak AND answered), \
  count(*) FILTER (WHERE leak AND disposition IN ('abandoned_in_ivr', 'abandoned_in_queue')), \
  count(*) FILTER (WHERE survey_rating = 'satisfied'), \
  count(*) FILTER (WHERE survey_rating = 'basically_satisfied'), \
  count(*) FILTER (WHERE survey_rating = 'unsatisfied') \
FROM c GROUP BY p";

/// Leak digit → agent answer of answered leak calls ($1 bounds, $2 queue, $3 number).
const LEAK_SQL: &str = "\
SELECT width_bucket(arrived_at, $1::timestamptz[]), \
  (EXTRACT(EPOCH FROM connected_at - leak_at) * 1000)::bigint \
FROM calls \
WHERE arrived_at >= $1[1] AND arrived_at < $1[array_length($1, 1)] \
  AND leak_at IS NOT NULL AND connected_at IS NOT NULL \
  AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR called_number = $3)";

/// A ticket `t` passes the queue and number filters ($2, $3) through its call.
macro_rules! ticket_filter {
    () => {
        "($2::text IS NULL AND $3::text IS NULL OR EXISTS (\
         SELECT 1 FROM calls c WHERE c.call_id = t.call_id \
         AND ($2::text IS NULL OR c.queue = $2) AND ($3::text IS NULL OR c.called_number = $3)))"
    };
}

/// Counts by (period, dimension, key) of tickets created in the range ($1 bounds).
const TICKET_COUNTS_SQL: &str = concat!(
    "SELECT width_bucket(t.created_at, $1::timestamptz[]) AS p, d.dimension, d.key, count(*) \
     FROM tickets t \
     CROSS JOIN LATERAL (VALUES ('category', t.category), ('channel', t.channel), \
       ('complaint', CASE WHEN t.category = 'complaint' \
          THEN COALESCE(t.complaint_level, 'unset') END), \
       ('urge', CASE WHEN t.category = 'urge' THEN COALESCE((SELECT parent.responsible_unit \
          FROM tickets parent WHERE parent.id = t.parent_ticket_id), '') END)) d(dimension, key) \
     WHERE t.created_at >= $1[1] AND t.created_at < $1[array_length($1, 1)] \
       AND d.key IS NOT NULL AND ",
    ticket_filter!(),
    " GROUP BY 1, 2, 3"
);

/// Deadlines that fell due in the range ($1 bounds, $4 now), met or missed, by (period, kind,
/// unit). A deadline without its done instant is missed once due while the ticket is open;
/// a closed ticket's undone deadline no longer binds and is not counted.
const DEADLINES_SQL: &str = concat!(
    "WITH t AS ( \
       SELECT 'dispatch' AS kind, status, responsible_unit, call_id, \
         dispatch_due AS due, dispatched_at AS done FROM tickets \
       WHERE dispatch_due >= $1[1] AND dispatch_due < $1[array_length($1, 1)] \
       UNION ALL \
       SELECT 'contact', status, responsible_unit, call_id, contact_due, contacted_at \
       FROM tickets \
       WHERE contact_due >= $1[1] AND contact_due < $1[array_length($1, 1)] \
       UNION ALL \
       SELECT 'finish', status, responsible_unit, call_id, \
         COALESCE(extended_finish, finish_due), replied_at FROM tickets \
       WHERE COALESCE(extended_finish, finish_due) >= $1[1] \
         AND COALESCE(extended_finish, finish_due) < $1[array_length($1, 1)] \
       UNION ALL \
       SELECT 'callback', status, responsible_unit, call_id, callback_due, \
         (SELECT min(a.at) FROM callback_attempts a \
          WHERE a.ticket_id = tickets.id AND a.outcome IN ('reached', 'declined')) \
       FROM tickets \
       WHERE callback_due >= $1[1] AND callback_due < $1[array_length($1, 1)]) \
     SELECT width_bucket(t.due, $1::timestamptz[]), t.kind, COALESCE(t.responsible_unit, ''), \
       count(*) FILTER (WHERE t.done <= t.due), \
       count(*) FILTER (WHERE t.done > t.due OR t.done IS NULL) \
     FROM t \
     WHERE (t.done IS NOT NULL OR (t.due < $4 AND t.status <> 'closed')) AND ",
    ticket_filter!(),
    " GROUP BY 1, 2, 3"
);

/// Callbacks per period ($1 bounds): needed and completed by the ticket's reply, ratings by
/// the reached attempt.
const CALLBACKS_SQL: &str = concat!(
    "SELECT width_bucket(t.replied_at, $1::timestamptz[]), 'needed', count(*), \
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM callback_attempts a \
             WHERE a.ticket_id = t.id AND a.outcome = 'reached')) \
         FROM tickets t \
         WHERE t.replied_at >= $1[1] AND t.replied_at < $1[array_length($1, 1)] \
           AND t.callback_plan IN ('automatic', 'human') AND ",
    ticket_filter!(),
    " \
         GROUP BY 1 \
         UNION ALL \
         SELECT width_bucket(a.at, $1::timestamptz[]), 'attitude:' || a.attitude, count(*), 0 \
         FROM callback_attempts a JOIN tickets t ON t.id = a.ticket_id \
         WHERE a.at >= $1[1] AND a.at < $1[array_length($1, 1)] AND a.outcome = 'reached' \
           AND ",
    ticket_filter!(),
    " \
         GROUP BY 1, 2 \
         UNION ALL \
         SELECT width_bucket(a.at, $1::timestamptz[]), 'result:' || a.result, count(*), 0 \
         FROM callback_attempts a JOIN tickets t ON t.id = a.ticket_id \
         WHERE a.at >= $1[1] AND a.at < $1[array_length($1, 1)] AND a.outcome = 'reached' \
           AND ",
    ticket_filter!(),
    " \
         GROUP BY 1, 2"
);

/// The agents' changes in the range and each one's last change before it ($1 start, $2 end).
const TIMELINE_SQL: &str = "\
SELECT agent_id, at, to_state FROM ( \
  SELECT id, agent_id, at, to_state FROM agent_state_changes WHERE at >= $1 AND at < $2 \
  UNION ALL \
  (SELECT DISTINCT ON (agent_id) id, agent_id, at, to_state FROM agent_state_changes \
   WHERE at < $1 ORDER BY agent_id, at DESC, id DESC)) s \
ORDER BY agent_id, at, id";

/// 1-based bucket → index into the periods.
fn index(bucket: i32, periods: usize) -> Option<usize> {
    let i = usize::try_from(bucket).ok()?.checked_sub(1)?;
    (i < periods).then_some(i)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn rating_index(rating: &str) -> Option<usize> {
    match rating {
        "satisfied" => Some(0),
        "basically_satisfied" => Some(1),
        "unsatisfied" => Some(2),
        _ => None,
    }
}

type CallRow = (i32, Vec<i64>);

impl Store {
    /// The tallies, leak times and timeline of a report.
    pub async fn service_report(&self, query: &ReportQuery) -> Result<ReportData, StoreError> {
        let n = query.periods.len();
        let Some(last) = query.periods.last() else {
            return Ok(ReportData::default());
        };
        let mut bounds: Vec<DateTime<Utc>> = query.periods.iter().map(|p| p.start).collect();
        bounds.push(last.end);
        let mut data = ReportData {
            periods: vec![PeriodTally::default(); n],
            ..ReportData::default()
        };
        self.tally_calls(query, &bounds, &mut data).await?;
        self.tally_tickets(query, &bounds, &mut data).await?;
        let rows: Vec<(i32, i64)> = sqlx::query_as(LEAK_SQL)
            .bind(&bounds)
            .bind(&query.queue)
            .bind(&query.number)
            .fetch_all(&self.pool)
            .await?;
        data.leak_answer_ms = rows
            .into_iter()
            .filter_map(|(p, ms)| Some((index(p, n)?, count(ms))))
            .collect();
        let rows: Vec<(String, DateTime<Utc>, String)> = sqlx::query_as(TIMELINE_SQL)
            .bind(bounds[0])
            .bind(last.end)
            .fetch_all(&self.pool)
            .await?;
        data.timeline = rows
            .into_iter()
            .map(|(agent_id, at, to_state)| StateRow {
                agent_id,
                at,
                to_state,
            })
            .collect();
        Ok(data)
    }

    async fn tally_calls(
        &self,
        query: &ReportQuery,
        bounds: &[DateTime<Utc>],
        data: &mut ReportData,
    ) -> Result<(), StoreError> {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let rows = sqlx::query(CALLS_SQL)
            .bind(bounds)
            .bind(&query.queue)
            .bind(&query.number)
            .bind(ms(query.service_level_secs))
            .bind(ms(query.short_abandon_secs))
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            use sqlx::Row;
            let (p, values): CallRow = (
                row.try_get(0)?,
                (1..18)
                    .map(|i| row.try_get::<i64, _>(i))
                    .collect::<Result<_, _>>()?,
            );
            let Some(i) = index(p, data.periods.len()) else {
                continue;
            };
            let v: Vec<u64> = values.into_iter().map(count).collect();
            data.periods[i].calls = CallTally {
                arrived: v[0],
                abandoned_in_ivr: v[1],
                queued: v[2],
                answered: v[3],
                answered_within: v[4],
                answered_wait_ms: v[5],
                abandoned: v[6],
                abandoned_within: v[7],
                short_abandoned: v[8],
                handled: v[9],
                handle_ms: v[10],
                leak_calls: v[11],
                leak_answered: v[12],
                leak_abandoned: v[13],
                survey: [v[14], v[15], v[16]],
            };
        }
        Ok(())
    }

    async fn tally_tickets(
        &self,
        query: &ReportQuery,
        bounds: &[DateTime<Utc>],
        data: &mut ReportData,
    ) -> Result<(), StoreError> {
        let n = data.periods.len();
        let rows: Vec<(i32, String, String, i64)> = sqlx::query_as(TICKET_COUNTS_SQL)
            .bind(bounds)
            .bind(&query.queue)
            .bind(&query.number)
            .fetch_all(&self.pool)
            .await?;
        for (p, dimension, key, n_tickets) in rows {
            let Some(i) = index(p, n) else { continue };
            let t = &mut data.periods[i].tickets;
            let map = match dimension.as_str() {
                "category" => &mut t.by_category,
                "channel" => &mut t.by_channel,
                "complaint" => &mut t.complaints_by_level,
                _ => &mut t.urges_by_unit,
            };
            *map.entry(key).or_default() += count(n_tickets);
        }
        let rows: Vec<(i32, String, String, i64, i64)> = sqlx::query_as(DEADLINES_SQL)
            .bind(bounds)
            .bind(&query.queue)
            .bind(&query.number)
            .bind(query.now)
            .fetch_all(&self.pool)
            .await?;
        for (p, kind, unit, met, missed) in rows {
            let Some(i) = index(p, n) else { continue };
            let t = &mut data.periods[i].tickets;
            let tally = t.deadlines.entry(kind.clone()).or_default();
            tally.met += count(met);
            tally.missed += count(missed);
            if matches!(kind.as_str(), "contact" | "finish") && missed > 0 {
                *t.overdue_by_unit.entry(unit).or_default() += count(missed);
            }
        }
        let rows: Vec<(i32, String, i64, i64)> = sqlx::query_as(CALLBACKS_SQL)
            .bind(bounds)
            .bind(&query.queue)
            .bind(&query.number)
            .fetch_all(&self.pool)
            .await?;
        for (p, what, first, second) in rows {
            let Some(i) = index(p, n) else { continue };
            let t = &mut data.periods[i].tickets;
            match what.split_once(':') {
                None => {
                    t.callbacks_needed += count(first);
                    t.callbacks_completed += count(second);
                }
                Some((side, rating)) => {
                    let ratings = if side == "attitude" {
                        &mut t.attitude
                    } else {
                        &mut t.result
                    };
                    if let Some(r) = rating_index(rating) {
                        ratings[r] += count(first);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn days_start_at_local_midnight() {
        let shanghai = periods(
            day(2026, 11, 2),
            day(2026, 11, 3),
            Grouping::Day,
            chrono_tz::Asia::Shanghai,
        );
        assert_eq!(shanghai.len(), 2);
        assert_eq!(shanghai[0].start.to_rfc3339(), "2026-11-01T16:00:00+00:00");
        assert_eq!(shanghai[1].start.to_rfc3339(), "2026-11-02T16:00:00+00:00");
        assert_eq!(shanghai[1].end.to_rfc3339(), "2026-11-03T16:00:00+00:00");
        let urumqi = periods(
            day(2026, 11, 2),
            day(2026, 11, 2),
            Grouping::Day,
            chrono_tz::Asia::Urumqi,
        );
        assert_eq!(urumqi[0].start.to_rfc3339(), "2026-11-01T18:00:00+00:00");
    }

    #[test]
    fn weeks_and_months_are_cut_to_the_range() {
        // 2026-11-04 is a Wednesday.
        let weeks = periods(
            day(2026, 11, 4),
            day(2026, 11, 17),
            Grouping::Week,
            chrono_tz::UTC,
        );
        let spans: Vec<_> = weeks.iter().map(|p| (p.first, p.last)).collect();
        assert_eq!(
            spans,
            vec![
                (day(2026, 11, 4), day(2026, 11, 8)),
                (day(2026, 11, 9), day(2026, 11, 15)),
                (day(2026, 11, 16), day(2026, 11, 17)),
            ]
        );
        let months = periods(
            day(2026, 10, 15),
            day(2026, 12, 1),
            Grouping::Month,
            chrono_tz::UTC,
        );
        let spans: Vec<_> = months.iter().map(|p| (p.first, p.last)).collect();
        assert_eq!(
            spans,
            vec![
                (day(2026, 10, 15), day(2026, 10, 31)),
                (day(2026, 11, 1), day(2026, 11, 30)),
                (day(2026, 12, 1), day(2026, 12, 1)),
            ]
        );
    }

    #[test]
    fn a_day_of_a_dst_zone_is_23_or_25_hours() {
        let spring = periods(
            day(2026, 3, 29),
            day(2026, 3, 29),
            Grouping::Day,
            chrono_tz::Europe::Berlin,
        );
        assert_eq!((spring[0].end - spring[0].start).num_hours(), 23);
    }
}
