//! `hotline.v1.Reports/GetServiceReport` against the real `hotlined` binary on a throwaway
//! PostgreSQL: calls, agent state changes, tickets, deadlines and callbacks seeded with SQL at
//! known instants (Monday 2025-11-03 and Tuesday 2025-11-04, Asia/Shanghai), and every figure
//! of the report checked exactly — per day, per week, per month, filtered by queue and by
//! dialled number, and with the daemon in Asia/Urumqi (two hours behind: the day boundary
//! moves). Also who may ask, and the fields a bad request names.

#[path = "support/hotlined.rs"]
#[allow(dead_code)] // Shared test helpers: this binary uses the daemon and its database.
mod hotlined;
#[path = "support/report_seed.rs"]
mod report_seed;
#[allow(dead_code)] // Shared test helpers: this binary uses the database part only.
mod support;

use hotline::api::pb;
use hotline::api::pb::reports_client::ReportsClient;
use hotlined::{ADMIN_TOKEN, Hotlined};
use report_seed::seed;
use tonic::transport::Channel;

const UNIT_TOKEN: &str = "north-desk-token-0123456789";

/// The daemon in `zone`, with a unit token besides the admin token.
async fn daemon(zone: &str) -> Hotlined {
    Hotlined::start_with_daemon(
        &format!("time_zone = \"{zone}\""),
        |flow| {
            format!(
                "{flow}\n\n[[grpc.tokens]]\nname = \"north desk\"\nrole = \"unit\"\n\
                 unit = \"north\"\ntoken = \"{UNIT_TOKEN}\"\n"
            )
        },
        "",
    )
    .await
}

async fn report(
    daemon: &Hotlined,
    token: &str,
    request: pb::GetServiceReportRequest,
) -> Result<pb::ServiceReport, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{}", daemon.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    ReportsClient::new(channel)
        .get_service_report(request)
        .await
        .map(tonic::Response::into_inner)
}

fn days(from: &str, to: &str, group_by: pb::ReportGrouping) -> pb::GetServiceReportRequest {
    pb::GetServiceReportRequest {
        from: from.into(),
        to: to.into(),
        group_by: group_by.into(),
        ..Default::default()
    }
}

async fn admin_report(
    daemon: &Hotlined,
    request: pb::GetServiceReportRequest,
) -> pb::ServiceReport {
    report(daemon, ADMIN_TOKEN, request)
        .await
        .unwrap_or_else(|status| panic!("GetServiceReport: {status}\n{}", daemon.log()))
}

fn counts(pairs: &[(&str, u64)]) -> Vec<pb::ReportCount> {
    pairs
        .iter()
        .map(|(key, count)| pb::ReportCount {
            key: (*key).into(),
            count: *count,
        })
        .collect()
}

/// dispatch, contact, finish, callback: (met, missed, on-time rate).
fn deadlines(figures: [(u64, u64, Option<f64>); 4]) -> Vec<pb::DeadlineFigures> {
    ["dispatch", "contact", "finish", "callback"]
        .into_iter()
        .zip(figures)
        .map(|(kind, (met, missed, on_time_rate))| pb::DeadlineFigures {
            kind: kind.into(),
            met,
            missed,
            on_time_rate,
        })
        .collect()
}

fn no_tickets() -> pb::TicketFigures {
    pb::TicketFigures {
        deadlines: deadlines([(0, 0, None); 4]),
        attitude_ratings: vec![0, 0, 0],
        result_ratings: vec![0, 0, 0],
        ..Default::default()
    }
}

fn period(
    first: &str,
    last: &str,
    calls: pb::CallFigures,
    leak: pb::LeakFigures,
    tickets: pb::TicketFigures,
) -> pb::ReportPeriod {
    pb::ReportPeriod {
        first_day: first.into(),
        last_day: last.into(),
        calls: Some(calls),
        leak: Some(leak),
        tickets: Some(tickets),
    }
}

/// Monday: 10 calls (3 left in the IVR: 01:00, 14:00, 23:59:59), 7 queued of which one
/// short abandon (3 s) → 6 offered; answered after 10, 30, 2, 10 s (3 within 15 s);
/// abandoned after 12 s (within) and 40 s. Handle times 340, 240, 624, 334 s. Agents logged
/// in 18 h + 8 h, busy 580 + 958 s.
fn monday() -> pb::ReportPeriod {
    let calls = pb::CallFigures {
        arrived: 10,
        offered: 6,
        answered: 4,
        answered_within: 3,
        abandoned_in_ivr: 3,
        abandoned_in_queue: 2,
        abandoned_within: 1,
        short_abandoned: 1,
        handled: 4,
        service_level: Some(75.0),
        service_level2: Some(100.0 * 4.0 / 6.0),
        connection_rate: Some(100.0 * 4.0 / 6.0),
        average_speed_of_answer: Some(13.0),
        average_handle_time: Some(384.5),
        occupancy: Some(100.0 * 1538.0 / 93600.0),
        survey_satisfied: 1,
        survey_basically_satisfied: 0,
        survey_unsatisfied: 1,
    };
    let leak = pb::LeakFigures {
        calls: 2,
        answered: 2,
        abandoned: 0,
        answer_p50: Some(2.0),
        answer_p90: Some(10.0),
        answer_max: Some(10.0),
    };
    let tickets = pb::TicketFigures {
        by_category: counts(&[
            ("complaint", 1),
            ("leak", 1),
            ("query", 1),
            ("repair", 1),
            ("urge", 1),
        ]),
        by_channel: counts(&[("gov_12345", 1), ("hotline", 4)]),
        deadlines: deadlines([
            (2, 1, Some(100.0 * 2.0 / 3.0)),
            (1, 1, Some(50.0)),
            (1, 0, Some(100.0)),
            (0, 0, None),
        ]),
        overdue_by_unit: counts(&[("south", 1)]),
        urges_by_unit: counts(&[("south", 1)]),
        complaints_by_level: counts(&[("l2", 1)]),
        callbacks_needed: 1,
        callbacks_completed: 1,
        callback_completion_rate: Some(100.0),
        ..no_tickets()
    };
    period("2025-11-03", "2025-11-03", calls, leak, tickets)
}

/// Tuesday: 3 calls (00:00:01, 08:00, 09:00), answered after 4 and 30 s, a leak call
/// abandoned after 18 s. Handle times 141 and 590 s; agents logged in 1 h + 17 h.
fn tuesday() -> pb::ReportPeriod {
    let calls = pb::CallFigures {
        arrived: 3,
        offered: 3,
        answered: 2,
        answered_within: 1,
        abandoned_in_ivr: 0,
        abandoned_in_queue: 1,
        abandoned_within: 0,
        short_abandoned: 0,
        handled: 2,
        service_level: Some(50.0),
        service_level2: Some(100.0 * 1.0 / 3.0),
        connection_rate: Some(100.0 * 2.0 / 3.0),
        average_speed_of_answer: Some(17.0),
        average_handle_time: Some(365.5),
        occupancy: Some(100.0 * 731.0 / 64800.0),
        survey_satisfied: 0,
        survey_basically_satisfied: 1,
        survey_unsatisfied: 0,
    };
    let leak = pb::LeakFigures {
        calls: 2,
        answered: 1,
        abandoned: 1,
        answer_p50: Some(30.0),
        answer_p90: Some(30.0),
        answer_max: Some(30.0),
    };
    let tickets = pb::TicketFigures {
        by_category: counts(&[("complaint", 1), ("repair", 1), ("urge", 1)]),
        by_channel: counts(&[("hotline", 1), ("wechat", 2)]),
        deadlines: deadlines([
            (2, 0, Some(100.0)),
            (0, 1, Some(0.0)),
            (1, 2, Some(100.0 * 1.0 / 3.0)),
            (2, 0, Some(100.0)),
        ]),
        overdue_by_unit: counts(&[("north", 2), ("south", 1)]),
        urges_by_unit: counts(&[("north", 1)]),
        complaints_by_level: counts(&[("unset", 1)]),
        callbacks_needed: 2,
        callbacks_completed: 1,
        callback_completion_rate: Some(50.0),
        callbacks_rated: 2,
        attitude_ratings: vec![1, 1, 0],
        result_ratings: vec![1, 0, 1],
        attitude_satisfaction_rate: Some(100.0),
        result_satisfaction_rate: Some(50.0),
    };
    period("2025-11-04", "2025-11-04", calls, leak, tickets)
}

/// Monday and Tuesday together; occupancy over `logged_in_secs` (other days add idle
/// time).
fn both_days(first: &str, last: &str, logged_in_secs: f64) -> pb::ReportPeriod {
    let calls = pb::CallFigures {
        arrived: 13,
        offered: 9,
        answered: 6,
        answered_within: 4,
        abandoned_in_ivr: 3,
        abandoned_in_queue: 3,
        abandoned_within: 1,
        short_abandoned: 1,
        handled: 6,
        service_level: Some(100.0 * 4.0 / 6.0),
        service_level2: Some(100.0 * 5.0 / 9.0),
        connection_rate: Some(100.0 * 6.0 / 9.0),
        average_speed_of_answer: Some(86.0 / 6.0),
        average_handle_time: Some(2269.0 / 6.0),
        occupancy: Some(100.0 * 2269.0 / logged_in_secs),
        survey_satisfied: 1,
        survey_basically_satisfied: 1,
        survey_unsatisfied: 1,
    };
    let leak = pb::LeakFigures {
        calls: 4,
        answered: 3,
        abandoned: 1,
        answer_p50: Some(10.0),
        answer_p90: Some(30.0),
        answer_max: Some(30.0),
    };
    let tickets = pb::TicketFigures {
        by_category: counts(&[
            ("complaint", 2),
            ("leak", 1),
            ("query", 1),
            ("repair", 2),
            ("urge", 2),
        ]),
        by_channel: counts(&[("gov_12345", 1), ("hotline", 5), ("wechat", 2)]),
        deadlines: deadlines([
            (4, 1, Some(80.0)),
            (1, 2, Some(100.0 * 1.0 / 3.0)),
            (2, 2, Some(50.0)),
            (2, 0, Some(100.0)),
        ]),
        overdue_by_unit: counts(&[("north", 2), ("south", 2)]),
        urges_by_unit: counts(&[("north", 1), ("south", 1)]),
        complaints_by_level: counts(&[("l2", 1), ("unset", 1)]),
        callbacks_needed: 3,
        callbacks_completed: 2,
        callback_completion_rate: Some(100.0 * 2.0 / 3.0),
        callbacks_rated: 2,
        attitude_ratings: vec![1, 1, 0],
        result_ratings: vec![1, 0, 1],
        attitude_satisfaction_rate: Some(100.0),
        result_satisfaction_rate: Some(50.0),
    };
    period(first, last, calls, leak, tickets)
}

/// Calls that only arrived (left in the IVR), and the agents' occupancy.
fn ivr_only(arrived: u64, occupancy: Option<f64>) -> pb::CallFigures {
    pb::CallFigures {
        arrived,
        abandoned_in_ivr: arrived,
        occupancy,
        ..Default::default()
    }
}

fn no_leaks() -> pb::LeakFigures {
    pb::LeakFigures::default()
}

#[tokio::test]
async fn every_figure_per_day_week_and_month_in_shanghai() {
    let daemon = daemon("Asia/Shanghai").await;
    seed(&daemon).await;
    let by_day = admin_report(
        &daemon,
        days("2025-11-03", "2025-11-04", pb::ReportGrouping::Day),
    )
    .await;
    assert_eq!(by_day.time_zone, "Asia/Shanghai");
    assert_eq!(
        (by_day.service_level_secs, by_day.short_abandon_secs),
        (15, 5)
    );
    assert_eq!(by_day.periods, vec![monday(), tuesday()]);
    assert_eq!(
        by_day.total,
        Some(both_days("2025-11-03", "2025-11-04", 158400.0))
    );

    // Weeks: Thursday 10-30 to Sunday 11-02 (cut to the range), then Monday and Tuesday.
    // Agent 1001 was logged in (idle) from Sunday 20:00.
    let by_week = admin_report(
        &daemon,
        days("2025-10-30", "2025-11-04", pb::ReportGrouping::Week),
    )
    .await;
    let first_week = period(
        "2025-10-30",
        "2025-11-02",
        ivr_only(2, Some(0.0)),
        no_leaks(),
        no_tickets(),
    );
    assert_eq!(
        by_week.periods,
        vec![first_week, both_days("2025-11-03", "2025-11-04", 158400.0)]
    );
    let total = by_week.total.unwrap().calls.unwrap();
    assert_eq!(
        (total.arrived, total.abandoned_in_ivr, total.answered),
        (15, 5, 6)
    );
    assert_eq!(total.occupancy, Some(100.0 * 2269.0 / 172800.0));

    // Months: October's last two days, then November's first four.
    let by_month = admin_report(
        &daemon,
        days("2025-10-30", "2025-11-04", pb::ReportGrouping::Month),
    )
    .await;
    let october = period(
        "2025-10-30",
        "2025-10-31",
        ivr_only(1, None),
        no_leaks(),
        no_tickets(),
    );
    let mut november = both_days("2025-11-01", "2025-11-04", 172800.0);
    let calls = november.calls.as_mut().unwrap();
    calls.arrived += 1;
    calls.abandoned_in_ivr += 1;
    assert_eq!(by_month.periods, vec![october, november.clone()]);
    let mut month_total = november;
    month_total.first_day = "2025-10-30".into();
    let calls = month_total.calls.as_mut().unwrap();
    calls.arrived += 1;
    calls.abandoned_in_ivr += 1;
    assert_eq!(by_month.total, Some(month_total));
}

/// Monday and Tuesday by day, only `queue` and `number` (empty: all).
fn filtered(queue: &str, number: &str) -> pb::GetServiceReportRequest {
    pb::GetServiceReportRequest {
        queue: queue.into(),
        number: number.into(),
        ..days("2025-11-03", "2025-11-04", pb::ReportGrouping::Day)
    }
}

#[tokio::test]
async fn the_queue_filter_keeps_its_calls_and_their_tickets() {
    let daemon = daemon("Asia/Shanghai").await;
    seed(&daemon).await;
    // The leak queue: c7, c8, c11 answered after 2, 10, 30 s; c12 abandoned after 18 s.
    // Occupancy stays every agent's.
    let leak = admin_report(&daemon, filtered("leak", "")).await;
    let calls = pb::CallFigures {
        arrived: 4,
        offered: 4,
        answered: 3,
        answered_within: 2,
        abandoned_in_queue: 1,
        handled: 3,
        service_level: Some(100.0 * 2.0 / 3.0),
        service_level2: Some(50.0),
        connection_rate: Some(75.0),
        average_speed_of_answer: Some(14.0),
        average_handle_time: Some(516.0),
        occupancy: Some(100.0 * 2269.0 / 158400.0),
        ..Default::default()
    };
    let leaks = pb::LeakFigures {
        calls: 4,
        answered: 3,
        abandoned: 1,
        answer_p50: Some(10.0),
        answer_p90: Some(30.0),
        answer_max: Some(30.0),
    };
    let tickets = pb::TicketFigures {
        by_category: counts(&[("leak", 1)]),
        by_channel: counts(&[("hotline", 1)]),
        deadlines: deadlines([
            (1, 0, Some(100.0)),
            (0, 0, None),
            (1, 0, Some(100.0)),
            (1, 0, Some(100.0)),
        ]),
        callbacks_needed: 1,
        callbacks_completed: 1,
        callback_completion_rate: Some(100.0),
        callbacks_rated: 1,
        attitude_ratings: vec![0, 1, 0],
        result_ratings: vec![1, 0, 0],
        attitude_satisfaction_rate: Some(100.0),
        result_satisfaction_rate: Some(100.0),
        ..no_tickets()
    };
    assert_eq!(
        leak.total,
        Some(period("2025-11-03", "2025-11-04", calls, leaks, tickets))
    );
}

#[tokio::test]
async fn the_number_filter_keeps_its_calls_and_their_tickets() {
    let daemon = daemon("Asia/Shanghai").await;
    seed(&daemon).await;
    // The second hotline number: one call, abandoned after 40 s, and the urge filed from it.
    let other = admin_report(&daemon, filtered("", "96777")).await;
    let calls = pb::CallFigures {
        arrived: 1,
        offered: 1,
        abandoned_in_queue: 1,
        service_level2: Some(0.0),
        connection_rate: Some(0.0),
        occupancy: Some(100.0 * 2269.0 / 158400.0),
        ..Default::default()
    };
    let tickets = pb::TicketFigures {
        by_category: counts(&[("urge", 1)]),
        by_channel: counts(&[("hotline", 1)]),
        urges_by_unit: counts(&[("south", 1)]),
        ..no_tickets()
    };
    assert_eq!(
        other.total,
        Some(period(
            "2025-11-03",
            "2025-11-04",
            calls,
            no_leaks(),
            tickets
        ))
    );
    // Both filters at once: nothing is in the leak queue on that number.
    let none = admin_report(&daemon, filtered("leak", "96777")).await;
    assert_eq!(none.total.unwrap().calls.unwrap().arrived, 0);
}

/// Wednesday: waited exactly `service_level_secs` (15 s) counts as within; hung up after
/// exactly `short_abandon_secs` (5 s) is an abandon (within the service level), not a short
/// one. Agent 1002, ready since Tuesday, talks 12:00:15–12:02:15.
#[tokio::test]
async fn thresholds_count_inclusively_for_the_service_level_and_not_as_short_abandons() {
    let daemon = daemon("Asia/Shanghai").await;
    seed(&daemon).await;
    let report = admin_report(
        &daemon,
        days("2025-11-05", "2025-11-05", pb::ReportGrouping::Day),
    )
    .await;
    let calls = pb::CallFigures {
        arrived: 3,
        offered: 2,
        answered: 1,
        answered_within: 1,
        abandoned_in_ivr: 1,
        abandoned_in_queue: 1,
        abandoned_within: 1,
        short_abandoned: 0,
        handled: 1,
        service_level: Some(100.0),
        service_level2: Some(100.0),
        connection_rate: Some(50.0),
        average_speed_of_answer: Some(15.0),
        average_handle_time: Some(120.0),
        occupancy: Some(100.0 * 120.0 / 86400.0),
        ..Default::default()
    };
    let wednesday = period("2025-11-05", "2025-11-05", calls, no_leaks(), no_tickets());
    assert_eq!(report.periods, vec![wednesday.clone()]);
    assert_eq!(report.total, Some(wednesday));
}

#[tokio::test]
async fn in_urumqi_the_day_boundary_moves_two_hours() {
    let daemon = daemon("Asia/Urumqi").await;
    seed(&daemon).await;
    let report = admin_report(
        &daemon,
        days("2025-11-03", "2025-11-04", pb::ReportGrouping::Day),
    )
    .await;
    assert_eq!(report.time_zone, "Asia/Urumqi");
    let figures: Vec<(String, u64, u64, u64)> = report
        .periods
        .iter()
        .chain(report.total.as_ref())
        .map(|p| {
            let c = p.calls.as_ref().unwrap();
            (
                p.first_day.clone(),
                c.arrived,
                c.abandoned_in_ivr,
                c.answered,
            )
        })
        .collect();
    // Monday in Urumqi is Shanghai's Monday 02:00 to Tuesday 02:00: c0 (01:00) falls on
    // Sunday, c10 (Tuesday 00:00:01 in Shanghai) on Monday; c13 (Wednesday 01:00) on Tuesday.
    assert_eq!(
        figures,
        vec![
            ("2025-11-03".to_owned(), 10, 2, 5),
            ("2025-11-04".to_owned(), 3, 1, 1),
            ("2025-11-03".to_owned(), 13, 3, 6),
        ]
    );
}

#[tokio::test]
async fn only_admins_ask_and_bad_fields_are_named() {
    let daemon = daemon("Asia/Shanghai").await;
    let good = days("2025-11-03", "2025-11-04", pb::ReportGrouping::Day);
    let denied = report(&daemon, UNIT_TOKEN, good.clone()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let cases = [
        (
            pb::GetServiceReportRequest {
                from: "2025-13-01".into(),
                ..good.clone()
            },
            "from: ",
        ),
        (
            pb::GetServiceReportRequest {
                to: "4 Nov".into(),
                ..good.clone()
            },
            "to: ",
        ),
        (
            days("2025-11-05", "2025-11-04", pb::ReportGrouping::Day),
            "from: 2025-11-05 is after to",
        ),
        (
            days("2025-01-01", "2026-01-02", pb::ReportGrouping::Month),
            "to: the range is 367 days",
        ),
        (
            pb::GetServiceReportRequest {
                group_by: 9,
                ..good.clone()
            },
            "group_by: ",
        ),
        (
            pb::GetServiceReportRequest {
                queue: "q".repeat(65),
                ..good.clone()
            },
            "queue: ",
        ),
        (
            pb::GetServiceReportRequest {
                number: "\n".into(),
                ..good.clone()
            },
            "number: ",
        ),
    ];
    for (request, message) in cases {
        let status = report(&daemon, ADMIN_TOKEN, request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().starts_with(message),
            "{status:?}, expected {message}"
        );
    }
    // A year is allowed, and an empty range of days reports zeros.
    let year = admin_report(
        &daemon,
        days("2025-01-01", "2026-01-01", pb::ReportGrouping::Month),
    )
    .await;
    assert_eq!(year.periods.len(), 13);
    assert_eq!(year.total.unwrap().calls.unwrap().arrived, 0);
}
