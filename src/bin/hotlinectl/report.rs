//! `hotlinectl report`: the service report (`hotline.v1.Reports/GetServiceReport`) as tables,
//! as CSV (a header row, one row per period, then the total) or as JSON.

use clap::Args;
use hotline::api::pb;
use hotline::ctl::output::{Render, Table, parse_enum, print};
use hotline::ctl::{Api, CtlError};
use serde::Serialize;
use std::collections::BTreeMap;

/// The deadline kinds, in the order the report gives them.
const DEADLINE_KINDS: [&str; 4] = ["dispatch", "contact", "finish", "callback"];

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First local date, YYYY-MM-DD (in the daemon's time zone).
    #[arg(long, value_name = "DATE")]
    from: String,
    /// Last local date, YYYY-MM-DD (included).
    #[arg(long, value_name = "DATE")]
    to: String,
    /// One row per day, week (Monday to Sunday) or month.
    #[arg(long, default_value = "day", value_parser = parse_enum::<pb::ReportGrouping>)]
    group_by: pb::ReportGrouping,
    /// Only calls that entered this queue, and tickets filed from them.
    #[arg(long)]
    queue: Option<String>,
    /// Only calls to this dialled number, and tickets filed from them.
    #[arg(long)]
    number: Option<String>,
    /// CSV with a header row instead of tables.
    #[arg(long)]
    csv: bool,
}

pub async fn run(api: &Api, json: bool, args: ReportArgs) -> Result<(), CtlError> {
    if json && args.csv {
        return Err(CtlError::Usage(
            "--json and --csv exclude each other; choose one".into(),
        ));
    }
    let request = pb::GetServiceReportRequest {
        from: args.from,
        to: args.to,
        group_by: args.group_by.into(),
        queue: args.queue.unwrap_or_default(),
        number: args.number.unwrap_or_default(),
    };
    let mut client = api.reports();
    let report = api.call(client.get_service_report(request)).await?;
    let view = ReportView::from(report);
    if args.csv {
        print!("{}", view.csv()?);
        return Ok(());
    }
    print(json, &view)
}

/// A percentage or seconds with one decimal; `-` when absent.
fn one_decimal(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// `key=count;…`, for a CSV cell.
fn pairs(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, n)| format!("{}={n}", if k.is_empty() { "-" } else { k }))
        .collect::<Vec<_>>()
        .join(";")
}

fn map_of(counts: &[pb::ReportCount]) -> BTreeMap<String, u64> {
    counts.iter().map(|c| (c.key.clone(), c.count)).collect()
}

#[derive(Debug, Serialize)]
struct DeadlineView {
    met: u64,
    missed: u64,
    on_time_rate: Option<f64>,
}

/// One period (or the total), every figure under a stable name.
#[derive(Debug, Serialize)]
struct PeriodView {
    first_day: String,
    last_day: String,
    arrived: u64,
    offered: u64,
    answered: u64,
    answered_within: u64,
    abandoned_in_ivr: u64,
    abandoned_in_queue: u64,
    abandoned_within: u64,
    short_abandoned: u64,
    handled: u64,
    service_level: Option<f64>,
    service_level2: Option<f64>,
    connection_rate: Option<f64>,
    average_speed_of_answer: Option<f64>,
    average_handle_time: Option<f64>,
    occupancy: Option<f64>,
    leak_calls: u64,
    leak_answered: u64,
    leak_abandoned: u64,
    leak_answer_p50: Option<f64>,
    leak_answer_p90: Option<f64>,
    leak_answer_max: Option<f64>,
    tickets_by_category: BTreeMap<String, u64>,
    tickets_by_channel: BTreeMap<String, u64>,
    deadlines: BTreeMap<String, DeadlineView>,
    overdue_by_unit: BTreeMap<String, u64>,
    urges_by_unit: BTreeMap<String, u64>,
    complaints_by_level: BTreeMap<String, u64>,
    callbacks_needed: u64,
    callbacks_completed: u64,
    callback_completion_rate: Option<f64>,
    callbacks_rated: u64,
    attitude_ratings: Vec<u64>,
    result_ratings: Vec<u64>,
    attitude_satisfaction_rate: Option<f64>,
    result_satisfaction_rate: Option<f64>,
    survey_ratings: [u64; 3],
}

impl From<pb::ReportPeriod> for PeriodView {
    fn from(p: pb::ReportPeriod) -> PeriodView {
        let c = p.calls.unwrap_or_default();
        let l = p.leak.unwrap_or_default();
        let t = p.tickets.unwrap_or_default();
        PeriodView {
            first_day: p.first_day,
            last_day: p.last_day,
            arrived: c.arrived,
            offered: c.offered,
            answered: c.answered,
            answered_within: c.answered_within,
            abandoned_in_ivr: c.abandoned_in_ivr,
            abandoned_in_queue: c.abandoned_in_queue,
            abandoned_within: c.abandoned_within,
            short_abandoned: c.short_abandoned,
            handled: c.handled,
            service_level: c.service_level,
            service_level2: c.service_level2,
            connection_rate: c.connection_rate,
            average_speed_of_answer: c.average_speed_of_answer,
            average_handle_time: c.average_handle_time,
            occupancy: c.occupancy,
            leak_calls: l.calls,
            leak_answered: l.answered,
            leak_abandoned: l.abandoned,
            leak_answer_p50: l.answer_p50,
            leak_answer_p90: l.answer_p90,
            leak_answer_max: l.answer_max,
            tickets_by_category: map_of(&t.by_category),
            tickets_by_channel: map_of(&t.by_channel),
            deadlines: t
                .deadlines
                .iter()
                .map(|d| {
                    let view = DeadlineView {
                        met: d.met,
                        missed: d.missed,
                        on_time_rate: d.on_time_rate,
                    };
                    (d.kind.clone(), view)
                })
                .collect(),
            overdue_by_unit: map_of(&t.overdue_by_unit),
            urges_by_unit: map_of(&t.urges_by_unit),
            complaints_by_level: map_of(&t.complaints_by_level),
            callbacks_needed: t.callbacks_needed,
            callbacks_completed: t.callbacks_completed,
            callback_completion_rate: t.callback_completion_rate,
            callbacks_rated: t.callbacks_rated,
            attitude_ratings: t.attitude_ratings,
            result_ratings: t.result_ratings,
            attitude_satisfaction_rate: t.attitude_satisfaction_rate,
            result_satisfaction_rate: t.result_satisfaction_rate,
            survey_ratings: [
                c.survey_satisfied,
                c.survey_basically_satisfied,
                c.survey_unsatisfied,
            ],
        }
    }
}

impl PeriodView {
    fn label(&self) -> String {
        if self.first_day == self.last_day {
            self.first_day.clone()
        } else {
            format!("{}..{}", self.first_day, self.last_day)
        }
    }

    fn on_time(&self, kind: &str) -> Option<f64> {
        self.deadlines.get(kind).and_then(|d| d.on_time_rate)
    }

    /// Every scalar figure as (CSV column, cell); maps as `key=count;…`.
    fn columns(&self) -> Vec<(String, String)> {
        let n = |v: u64| v.to_string();
        let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
        let mut cols: Vec<(String, String)> = [
            ("first_day", self.first_day.clone()),
            ("last_day", self.last_day.clone()),
            ("arrived", n(self.arrived)),
            ("offered", n(self.offered)),
            ("answered", n(self.answered)),
            ("answered_within", n(self.answered_within)),
            ("abandoned_in_ivr", n(self.abandoned_in_ivr)),
            ("abandoned_in_queue", n(self.abandoned_in_queue)),
            ("abandoned_within", n(self.abandoned_within)),
            ("short_abandoned", n(self.short_abandoned)),
            ("handled", n(self.handled)),
            ("service_level", f(self.service_level)),
            ("service_level2", f(self.service_level2)),
            ("connection_rate", f(self.connection_rate)),
            ("asa_secs", f(self.average_speed_of_answer)),
            ("aht_secs", f(self.average_handle_time)),
            ("occupancy", f(self.occupancy)),
            ("leak_calls", n(self.leak_calls)),
            ("leak_answered", n(self.leak_answered)),
            ("leak_abandoned", n(self.leak_abandoned)),
            ("leak_answer_p50_secs", f(self.leak_answer_p50)),
            ("leak_answer_p90_secs", f(self.leak_answer_p90)),
            ("leak_answer_max_secs", f(self.leak_answer_max)),
            ("tickets_by_category", pairs(&self.tickets_by_category)),
            ("tickets_by_channel", pairs(&self.tickets_by_channel)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for kind in DEADLINE_KINDS {
            let Some(d) = self.deadlines.get(kind) else {
                continue;
            };
            cols.push((format!("{kind}_met"), n(d.met)));
            cols.push((format!("{kind}_missed"), n(d.missed)));
            cols.push((format!("{kind}_on_time_rate"), f(d.on_time_rate)));
        }
        let rating = |r: &[u64], i: usize| n(r.get(i).copied().unwrap_or(0));
        cols.extend(
            [
                ("overdue_by_unit", pairs(&self.overdue_by_unit)),
                ("urges_by_unit", pairs(&self.urges_by_unit)),
                ("complaints_by_level", pairs(&self.complaints_by_level)),
                ("callbacks_needed", n(self.callbacks_needed)),
                ("callbacks_completed", n(self.callbacks_completed)),
                ("callback_completion_rate", f(self.callback_completion_rate)),
                ("callbacks_rated", n(self.callbacks_rated)),
                ("attitude_satisfied", rating(&self.attitude_ratings, 0)),
                (
                    "attitude_basically_satisfied",
                    rating(&self.attitude_ratings, 1),
                ),
                ("attitude_unsatisfied", rating(&self.attitude_ratings, 2)),
                (
                    "attitude_satisfaction_rate",
                    f(self.attitude_satisfaction_rate),
                ),
                ("result_satisfied", rating(&self.result_ratings, 0)),
                (
                    "result_basically_satisfied",
                    rating(&self.result_ratings, 1),
                ),
                ("result_unsatisfied", rating(&self.result_ratings, 2)),
                ("result_satisfaction_rate", f(self.result_satisfaction_rate)),
                ("survey_1", n(self.survey_ratings[0])),
                ("survey_2", n(self.survey_ratings[1])),
                ("survey_3", n(self.survey_ratings[2])),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        );
        cols
    }
}

#[derive(Debug, Serialize)]
struct ReportView {
    time_zone: String,
    service_level_secs: u64,
    short_abandon_secs: u64,
    periods: Vec<PeriodView>,
    total: PeriodView,
}

impl From<pb::ServiceReport> for ReportView {
    fn from(r: pb::ServiceReport) -> ReportView {
        ReportView {
            time_zone: r.time_zone,
            service_level_secs: r.service_level_secs,
            short_abandon_secs: r.short_abandon_secs,
            periods: r.periods.into_iter().map(PeriodView::from).collect(),
            total: PeriodView::from(r.total.unwrap_or_default()),
        }
    }
}

impl ReportView {
    /// The periods then the total, each labelled (the total as `total`).
    fn rows(&self) -> impl Iterator<Item = (String, &PeriodView)> {
        self.periods
            .iter()
            .map(|p| (p.label(), p))
            .chain(std::iter::once(("total".to_owned(), &self.total)))
    }

    fn csv(&self) -> Result<String, CtlError> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let encode = |err: csv::Error| CtlError::Input(format!("writing CSV: {err}"));
        let header: Vec<String> = std::iter::once("period".to_owned())
            .chain(self.total.columns().into_iter().map(|(k, _)| k))
            .collect();
        out.write_record(&header).map_err(encode)?;
        for (label, period) in self.rows() {
            let cells = std::iter::once(label).chain(period.columns().into_iter().map(|(_, v)| v));
            out.write_record(cells).map_err(encode)?;
        }
        let bytes = out
            .into_inner()
            .map_err(|err| CtlError::Input(format!("writing CSV: {err}")))?;
        String::from_utf8(bytes).map_err(|err| CtlError::Input(format!("writing CSV: {err}")))
    }

    fn calls_table(&self) -> String {
        let mut table = Table::new(&[
            "PERIOD",
            "ARRIVED",
            "OFFERED",
            "ANSWERED",
            "IN_SL",
            "ABAND_IVR",
            "ABAND_Q",
            "SHORT",
            "SL%",
            "SL2%",
            "CONN%",
            "ASA_S",
            "AHT_S",
            "OCC%",
        ]);
        for (label, p) in self.rows() {
            table.row(vec![
                label,
                p.arrived.to_string(),
                p.offered.to_string(),
                p.answered.to_string(),
                p.answered_within.to_string(),
                p.abandoned_in_ivr.to_string(),
                p.abandoned_in_queue.to_string(),
                p.short_abandoned.to_string(),
                one_decimal(p.service_level),
                one_decimal(p.service_level2),
                one_decimal(p.connection_rate),
                one_decimal(p.average_speed_of_answer),
                one_decimal(p.average_handle_time),
                one_decimal(p.occupancy),
            ]);
        }
        table.render("no periods")
    }

    fn leak_and_tickets_table(&self) -> String {
        let mut table = Table::new(&[
            "PERIOD",
            "LEAKS",
            "LEAK_ANS",
            "P50_S",
            "P90_S",
            "MAX_S",
            "TICKETS",
            "DISPATCH%",
            "CONTACT%",
            "FINISH%",
            "CALLBACK%",
            "CB_DONE%",
            "ATT_SAT%",
            "RES_SAT%",
            "SURVEY_1/2/3",
        ]);
        for (label, p) in self.rows() {
            let [s1, s2, s3] = p.survey_ratings;
            table.row(vec![
                label,
                p.leak_calls.to_string(),
                p.leak_answered.to_string(),
                one_decimal(p.leak_answer_p50),
                one_decimal(p.leak_answer_p90),
                one_decimal(p.leak_answer_max),
                p.tickets_by_category.values().sum::<u64>().to_string(),
                one_decimal(p.on_time("dispatch")),
                one_decimal(p.on_time("contact")),
                one_decimal(p.on_time("finish")),
                one_decimal(p.on_time("callback")),
                one_decimal(p.callback_completion_rate),
                one_decimal(p.attitude_satisfaction_rate),
                one_decimal(p.result_satisfaction_rate),
                format!("{s1}/{s2}/{s3}"),
            ]);
        }
        table.render("no periods")
    }

    /// The whole range's breakdowns, one table each.
    fn breakdowns(&self) -> String {
        let t = &self.total;
        let mut table = Table::new(&["TOTAL BY", "KEY", "COUNT"]);
        for (what, map) in [
            ("category", &t.tickets_by_category),
            ("channel", &t.tickets_by_channel),
            ("complaint level", &t.complaints_by_level),
            ("overdue, unit", &t.overdue_by_unit),
            ("urges, unit", &t.urges_by_unit),
        ] {
            for (key, count) in map {
                let key = if key.is_empty() { "-" } else { key };
                table.row(vec![what.to_owned(), key.to_owned(), count.to_string()]);
            }
        }
        table.render("no tickets")
    }
}

impl Render for ReportView {
    fn human(&self) -> String {
        format!(
            "time zone {}, service level {} s, short abandon < {} s\n\n{}\n{}\n{}",
            self.time_zone,
            self.service_level_secs,
            self.short_abandon_secs,
            self.calls_table(),
            self.leak_and_tickets_table(),
            self.breakdowns()
        )
    }
}
