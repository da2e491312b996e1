//! `hotline.v1.Reports`: the service report, for admin tokens. Checks the request (errors name
//! the field), turns local dates into periods of the daemon's time zone, and maps the store's
//! tallies to the wire through the wallboard's formulas (`desk::wallboard::Counters`) and the
//! desk's percentiles and occupancy (`desk::kpi`).

use super::auth::Caller;
use super::pb;
use super::tickets::{caller, invalid};
use crate::config::Config;
use crate::desk::kpi::{self, AgentTime, TimelineChange};
use crate::desk::wallboard::{Counters, percent};
use crate::store::{
    self, Grouping, MAX_REPORT_DAYS, PeriodTally, ReportData, ReportQuery, Store, StoreError,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// The deadline kinds reported, in order.
const DEADLINE_KINDS: [&str; 4] = ["dispatch", "contact", "finish", "callback"];
/// Longest queue name or dialled number a filter may name.
const MAX_FILTER_LEN: usize = 64;

/// The `Reports` service: the store, and the running configuration for the time zone and the
/// thresholds (a reload applies to the next report).
#[derive(Debug, Clone)]
pub struct ReportsService {
    store: Store,
    config: watch::Receiver<Arc<Config>>,
}

impl ReportsService {
    pub fn new(store: Store, config: watch::Receiver<Arc<Config>>) -> ReportsService {
        ReportsService { store, config }
    }
}

fn require_admin<T>(request: &Request<T>) -> Result<(), Status> {
    match caller(request)? {
        Caller::Admin { .. } => Ok(()),
        _ => Err(Status::permission_denied(
            "only admin tokens may read service reports; use a token with role \"admin\"",
        )),
    }
}

fn date(field: &str, value: &str) -> Result<NaiveDate, Status> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| invalid(field, format!("{value:?} is not a date; use YYYY-MM-DD")))
}

fn filter(field: &str, value: String) -> Result<Option<String>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_FILTER_LEN || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("at most {MAX_FILTER_LEN} characters, no control characters"),
        ));
    }
    Ok(Some(value))
}

/// The checked request: dates, grouping, filters.
struct Asked {
    from: NaiveDate,
    to: NaiveDate,
    grouping: Grouping,
    queue: Option<String>,
    number: Option<String>,
}

fn check(request: pb::GetServiceReportRequest) -> Result<Asked, Status> {
    let from = date("from", &request.from)?;
    let to = date("to", &request.to)?;
    if from > to {
        return Err(invalid("from", format!("{from} is after to ({to})")));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_REPORT_DAYS {
        return Err(invalid(
            "to",
            format!("the range is {days} days; at most {MAX_REPORT_DAYS}"),
        ));
    }
    let grouping = match pb::ReportGrouping::try_from(request.group_by) {
        Ok(pb::ReportGrouping::Unspecified | pb::ReportGrouping::Day) => Grouping::Day,
        Ok(pb::ReportGrouping::Week) => Grouping::Week,
        Ok(pb::ReportGrouping::Month) => Grouping::Month,
        Err(_) => {
            return Err(invalid(
                "group_by",
                format!("unknown value {}; use DAY, WEEK or MONTH", request.group_by),
            ));
        }
    };
    Ok(Asked {
        from,
        to,
        grouping,
        queue: filter("queue", request.queue)?,
        number: filter("number", request.number)?,
    })
}

fn report_status(err: StoreError) -> Status {
    match err {
        err @ StoreError::Unavailable(_) => {
            tracing::warn!(error = %err, "store unavailable for a report");
            Status::unavailable(err.to_string())
        }
        err => {
            tracing::error!(error = %err, "service report failed");
            Status::internal(format!("{err}; see the hotlined log"))
        }
    }
}

#[tonic::async_trait]
impl pb::reports_server::Reports for ReportsService {
    async fn get_service_report(
        &self,
        request: Request<pb::GetServiceReportRequest>,
    ) -> Result<Response<pb::ServiceReport>, Status> {
        require_admin(&request)?;
        let asked = check(request.into_inner())?;
        let config = self.config.borrow().clone();
        let zone: chrono_tz::Tz = config.daemon.time_zone.parse().map_err(|_| {
            Status::internal("daemon.time_zone is not a time zone; see hotlined --check-config")
        })?;
        let periods = store::periods(asked.from, asked.to, asked.grouping, zone);
        let query = ReportQuery {
            periods: periods.clone(),
            queue: asked.queue,
            number: asked.number,
            service_level_secs: config.desk.service_level_secs,
            short_abandon_secs: config.desk.short_abandon_secs,
            now: Utc::now(),
        };
        let data = self
            .store
            .service_report(&query)
            .await
            .map_err(report_status)?;
        let mut report = build(&query, data);
        report.time_zone = zone.name().to_owned();
        Ok(Response::new(report))
    }
}

/// The report from the store's tallies.
fn build(query: &ReportQuery, data: ReportData) -> pb::ServiceReport {
    let ms = |at: DateTime<Utc>| at.timestamp_millis();
    let mut bounds: Vec<i64> = query.periods.iter().map(|p| ms(p.start)).collect();
    let end = query.periods.last().map_or(0, |p| ms(p.end));
    bounds.push(end);
    let timeline: Vec<TimelineChange> = data
        .timeline
        .iter()
        .map(|row| TimelineChange {
            agent_id: row.agent_id.clone(),
            at_ms: ms(row.at),
            logged_in: row.to_state != "logged_out",
            busy: matches!(row.to_state.as_str(), "on_call" | "wrap_up"),
        })
        .collect();
    let agent_time = kpi::agent_time(&timeline, &bounds, end.min(ms(query.now)));
    let mut total = PeriodTally::default();
    let mut total_time = AgentTime::default();
    let mut rows = Vec::with_capacity(query.periods.len());
    for (i, (period, tally)) in query.periods.iter().zip(&data.periods).enumerate() {
        total.add(tally);
        let time = agent_time.get(i).copied().unwrap_or_default();
        total_time.add(time);
        let leak = data.leak_answer_ms.iter().filter(|(p, _)| *p == i);
        let mut row = figures(tally, time, leak.map(|(_, v)| *v).collect());
        row.first_day = period.first.to_string();
        row.last_day = period.last.to_string();
        rows.push(row);
    }
    let mut whole = figures(
        &total,
        total_time,
        data.leak_answer_ms.iter().map(|(_, v)| *v).collect(),
    );
    if let (Some(first), Some(last)) = (query.periods.first(), query.periods.last()) {
        whole.first_day = first.first.to_string();
        whole.last_day = last.last.to_string();
    }
    pb::ServiceReport {
        time_zone: String::new(),
        service_level_secs: query.service_level_secs,
        short_abandon_secs: query.short_abandon_secs,
        periods: rows,
        total: Some(whole),
    }
}

/// One row: the wallboard's counters filled from the tally, then their formulas.
fn figures(tally: &PeriodTally, time: AgentTime, mut leak_ms: Vec<u64>) -> pb::ReportPeriod {
    let c = &tally.calls;
    let counters = Counters {
        offered: c.queued - c.short_abandoned.min(c.queued),
        answered: c.answered,
        answered_within: c.answered_within,
        abandoned: c.abandoned,
        abandoned_within: c.abandoned_within,
        short_abandoned: c.short_abandoned,
        answered_wait_ms: c.answered_wait_ms,
        handled: c.handled,
        handle_ms: c.handle_ms,
        ratings: c.survey,
    };
    leak_ms.sort_unstable();
    let secs = |ms: Option<u64>| ms.map(|ms| ms as f64 / 1000.0);
    pb::ReportPeriod {
        first_day: String::new(),
        last_day: String::new(),
        calls: Some(pb::CallFigures {
            arrived: c.arrived,
            offered: counters.offered,
            answered: c.answered,
            answered_within: c.answered_within,
            abandoned_in_ivr: c.abandoned_in_ivr,
            abandoned_in_queue: c.abandoned,
            abandoned_within: c.abandoned_within,
            short_abandoned: c.short_abandoned,
            handled: c.handled,
            service_level: counters.service_level(),
            service_level2: counters.service_level2(),
            connection_rate: counters.connection_rate(),
            average_speed_of_answer: counters.average_speed_of_answer(),
            average_handle_time: counters.average_handle_time(),
            occupancy: time.occupancy(),
            survey_satisfied: c.survey[0],
            survey_basically_satisfied: c.survey[1],
            survey_unsatisfied: c.survey[2],
        }),
        leak: Some(pb::LeakFigures {
            calls: c.leak_calls,
            answered: c.leak_answered,
            abandoned: c.leak_abandoned,
            answer_p50: secs(kpi::percentile(&leak_ms, 50)),
            answer_p90: secs(kpi::percentile(&leak_ms, 90)),
            answer_max: secs(leak_ms.last().copied()),
        }),
        tickets: Some(ticket_figures(tally)),
    }
}

fn counts(map: &BTreeMap<String, u64>) -> Vec<pb::ReportCount> {
    map.iter()
        .map(|(key, count)| pb::ReportCount {
            key: key.clone(),
            count: *count,
        })
        .collect()
}

/// (satisfied + basically satisfied) / all ratings, percent.
fn satisfaction(ratings: &[u64; 3]) -> Option<f64> {
    percent(ratings[0] + ratings[1], ratings.iter().sum())
}

fn ticket_figures(tally: &PeriodTally) -> pb::TicketFigures {
    let t = &tally.tickets;
    let deadlines = DEADLINE_KINDS
        .iter()
        .map(|kind| {
            let d = t.deadlines.get(*kind).copied().unwrap_or_default();
            pb::DeadlineFigures {
                kind: (*kind).to_owned(),
                met: d.met,
                missed: d.missed,
                on_time_rate: percent(d.met, d.met + d.missed),
            }
        })
        .collect();
    pb::TicketFigures {
        by_category: counts(&t.by_category),
        by_channel: counts(&t.by_channel),
        deadlines,
        overdue_by_unit: counts(&t.overdue_by_unit),
        urges_by_unit: counts(&t.urges_by_unit),
        complaints_by_level: counts(&t.complaints_by_level),
        callbacks_needed: t.callbacks_needed,
        callbacks_completed: t.callbacks_completed,
        callback_completion_rate: percent(t.callbacks_completed, t.callbacks_needed),
        callbacks_rated: t.attitude.iter().sum(),
        attitude_ratings: t.attitude.to_vec(),
        result_ratings: t.result.to_vec(),
        attitude_satisfaction_rate: satisfaction(&t.attitude),
        result_satisfaction_rate: satisfaction(&t.result),
    }
}
