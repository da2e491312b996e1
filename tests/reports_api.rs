//! `hotline.v1.Reports/GetServiceReport` against the real `hotlined` binary on a throwaway
//! PostgreSQL: calls, agent state changes, tickets, deadlines and callbacks seeded with SQL at
//! known instants (Monday 2025-11-03 and Tuesday 2025-11-04, Asia/Shanghai), and every figure
//! of the report checked exactly — per day, per week, per month, filtered by queue and by
//! dialled number, and with the daemon in Asia/Urumqi (two hours behind: the day boundary
//! moves). Also who may ask, and the fields a bad request names.

#[path = "support/hotlined.rs"]
#[allow(dead_code)] // Shared test helpers: this binary uses the daemon and its database.
mod hotlined;
#[allow(dead_code)] // Shared test helpers: this binary uses the database part only.
mod support;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use hotline::api::pb;
use hotline::api::pb::reports_client::ReportsClient;
use hotlined::{ADMIN_TOKEN, Hotlined};
use sqlx::PgPool;
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

/// `MM-DD HH:MM:SS` of 2025, Shanghai time.
fn at(local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(&format!("2025-{local}"), "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{local}: {e}"));
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&naive)
        .unwrap()
        .with_timezone(&Utc)
}

fn opt(local: Option<&str>) -> Option<DateTime<Utc>> {
    local.map(at)
}

/// A call row as the journal leaves it.
#[derive(Default)]
struct Call<'a> {
    id: &'a str,
    /// Default 95158.
    number: Option<&'a str>,
    arrived: &'a str,
    queue: Option<&'a str>,
    queued: Option<&'a str>,
    connected: Option<&'a str>,
    ended: &'a str,
    agent: Option<&'a str>,
    leak: Option<&'a str>,
    disposition: &'a str,
    /// Rating and key.
    survey: Option<(&'a str, &'a str)>,
}

async fn insert_call(db: &PgPool, c: Call<'_>) {
    sqlx::query(
        "INSERT INTO calls (call_id, caller_number, called_number, arrived_at, queue, queued_at, \
         connected_at, ended_at, agent_id, leak_at, disposition, survey_rating, survey_key, \
         survey_at) VALUES ($1, '13812340000', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         CASE WHEN $11::text IS NULL THEN NULL ELSE $7 END)",
    )
    .bind(c.id)
    .bind(c.number.unwrap_or("95158"))
    .bind(at(c.arrived))
    .bind(c.queue)
    .bind(opt(c.queued))
    .bind(opt(c.connected))
    .bind(at(c.ended))
    .bind(c.agent)
    .bind(opt(c.leak))
    .bind(c.disposition)
    .bind(c.survey.map(|s| s.0))
    .bind(c.survey.map(|s| s.1))
    .execute(db)
    .await
    .unwrap_or_else(|e| panic!("call {}: {e}", c.id));
}

/// A ticket row with its deadlines: (due, done) pairs.
#[derive(Default)]
struct Ticket<'a> {
    number: &'a str,
    category: &'a str,
    channel: &'a str,
    status: &'a str,
    created: &'a str,
    call: Option<&'a str>,
    unit: Option<&'a str>,
    parent: Option<&'a str>,
    level: Option<&'a str>,
    dispatch: (Option<&'a str>, Option<&'a str>),
    contact: (Option<&'a str>, Option<&'a str>),
    finish: (Option<&'a str>, Option<&'a str>),
    callback_due: Option<&'a str>,
    plan: Option<&'a str>,
}

async fn insert_ticket(db: &PgPool, t: Ticket<'_>) {
    sqlx::query(
        "INSERT INTO tickets (number, category, channel, status, created_at, call_id, \
         responsible_unit, parent_ticket_id, complaint_level, dispatch_due, dispatched_at, \
         contact_due, contacted_at, finish_due, replied_at, callback_due, callback_plan, \
         created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, \
         (SELECT id FROM tickets WHERE number = $8), $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, 'seed')",
    )
    .bind(t.number)
    .bind(t.category)
    .bind(t.channel)
    .bind(t.status)
    .bind(at(t.created))
    .bind(t.call)
    .bind(t.unit)
    .bind(t.parent)
    .bind(t.level)
    .bind(opt(t.dispatch.0))
    .bind(opt(t.dispatch.1))
    .bind(opt(t.contact.0))
    .bind(opt(t.contact.1))
    .bind(opt(t.finish.0))
    .bind(opt(t.finish.1))
    .bind(opt(t.callback_due))
    .bind(t.plan)
    .execute(db)
    .await
    .unwrap_or_else(|e| panic!("ticket {}: {e}", t.number));
}

async fn insert_callback(
    db: &PgPool,
    ticket: &str,
    when: &str,
    outcome: &str,
    ratings: Option<(&str, &str)>,
) {
    sqlx::query(
        "INSERT INTO callback_attempts (ticket_id, at, outcome, attitude, result, agent) \
         VALUES ((SELECT id FROM tickets WHERE number = $1), $2, $3, $4, $5, 'seed')",
    )
    .bind(ticket)
    .bind(at(when))
    .bind(outcome)
    .bind(ratings.map(|r| r.0))
    .bind(ratings.map(|r| r.1))
    .execute(db)
    .await
    .unwrap();
}

/// An agent's timeline: (local time, state entered), from logged out.
async fn insert_timeline(db: &PgPool, agent: &str, changes: &[(&str, &str)]) {
    let mut from = "logged_out";
    for (version, (when, to)) in changes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO agent_state_changes (agent_id, epoch, version, from_state, to_state, at) \
             VALUES ($1, 1, $2, $3, $4, $5)",
        )
        .bind(agent)
        .bind(version as i64 + 1)
        .bind(from)
        .bind(*to)
        .bind(at(when))
        .execute(db)
        .await
        .unwrap();
        from = to;
    }
}

/// Calls: Monday 11-03 and Tuesday 11-04 (one at 23:59:59, the next at 00:00:01), one on the
/// Friday and one on the Sunday before, one at 01:00 on Wednesday 11-05 (Tuesday 23:00 in
/// Urumqi).
async fn seed_calls(db: &PgPool) {
    let ivr = |id, arrived, ended| Call {
        id,
        arrived,
        ended,
        disposition: "abandoned_in_ivr",
        ..Call::default()
    };
    let answered = |id, queue, queued, connected, ended, agent| Call {
        id,
        arrived: queued,
        queue: Some(queue),
        queued: Some(queued),
        connected: Some(connected),
        ended,
        agent: Some(agent),
        disposition: "answered",
        ..Call::default()
    };
    let abandoned = |id, queue, queued, ended| Call {
        id,
        arrived: queued,
        queue: Some(queue),
        queued: Some(queued),
        ended,
        disposition: "abandoned_in_queue",
        ..Call::default()
    };
    let calls = [
        ivr("cA", "10-31 12:00:00", "10-31 12:00:30"),
        ivr("cB", "11-02 12:00:00", "11-02 12:00:30"),
        ivr("c0", "11-03 01:00:00", "11-03 01:00:30"),
        Call {
            arrived: "11-03 09:00:00",
            survey: Some(("satisfied", "1")),
            ..answered(
                "c1",
                "general",
                "11-03 09:00:10",
                "11-03 09:00:20",
                "11-03 09:05:20",
                "1001",
            )
        },
        Call {
            arrived: "11-03 10:00:00",
            survey: Some(("unsatisfied", "3")),
            ..answered(
                "c2",
                "general",
                "11-03 10:00:05",
                "11-03 10:00:35",
                "11-03 10:03:35",
                "1001",
            )
        },
        // Hung up after 3 s in the queue: a short abandon.
        abandoned("c3", "general", "11-03 11:00:10", "11-03 11:00:13"),
        // 12 s: abandoned within the service level.
        abandoned("c4", "general", "11-03 12:00:10", "11-03 12:00:22"),
        Call {
            number: Some("96777"),
            ..abandoned("c5", "general", "11-03 13:00:05", "11-03 13:00:45")
        },
        ivr("c6", "11-03 14:00:00", "11-03 14:00:30"),
        Call {
            arrived: "11-03 15:00:00",
            leak: Some("11-03 15:00:04"),
            ..answered(
                "c7",
                "leak",
                "11-03 15:00:04",
                "11-03 15:00:06",
                "11-03 15:10:00",
                "1002",
            )
        },
        Call {
            arrived: "11-03 16:00:00",
            leak: Some("11-03 16:00:03"),
            ..answered(
                "c8",
                "leak",
                "11-03 16:00:03",
                "11-03 16:00:13",
                "11-03 16:05:00",
                "1002",
            )
        },
        ivr("c9", "11-03 23:59:59", "11-04 00:00:30"),
        Call {
            arrived: "11-04 00:00:01",
            survey: Some(("basically_satisfied", "2")),
            ..answered(
                "c10",
                "general",
                "11-04 00:00:05",
                "11-04 00:00:09",
                "11-04 00:02:00",
                "1001",
            )
        },
        Call {
            arrived: "11-04 08:00:00",
            leak: Some("11-04 08:00:05"),
            ..answered(
                "c11",
                "leak",
                "11-04 08:00:05",
                "11-04 08:00:35",
                "11-04 08:10:00",
                "1002",
            )
        },
        Call {
            arrived: "11-04 09:00:00",
            leak: Some("11-04 09:00:02"),
            ..abandoned("c12", "leak", "11-04 09:00:02", "11-04 09:00:20")
        },
        ivr("c13", "11-05 01:00:00", "11-05 01:00:30"),
    ];
    for call in calls {
        insert_call(db, call).await;
    }
}

/// Agent 1001 (logged in since Sunday evening) and 1002: on_call from each answer, wrap-up,
/// ready again.
async fn seed_agents(db: &PgPool) {
    insert_timeline(
        db,
        "1001",
        &[
            ("11-02 20:00:00", "ready"),
            ("11-03 09:00:20", "on_call"),
            ("11-03 09:05:20", "wrap_up"),
            ("11-03 09:06:00", "ready"),
            ("11-03 10:00:35", "on_call"),
            ("11-03 10:03:35", "wrap_up"),
            ("11-03 10:04:35", "ready"),
            ("11-03 18:00:00", "logged_out"),
            ("11-04 00:00:00", "ready"),
            ("11-04 00:00:09", "on_call"),
            ("11-04 00:02:00", "wrap_up"),
            ("11-04 00:02:30", "ready"),
            ("11-04 01:00:00", "logged_out"),
        ],
    )
    .await;
    insert_timeline(
        db,
        "1002",
        &[
            ("11-03 14:00:00", "ready"),
            ("11-03 15:00:06", "on_call"),
            ("11-03 15:10:00", "wrap_up"),
            ("11-03 15:10:30", "ready"),
            ("11-03 16:00:13", "on_call"),
            ("11-03 16:05:00", "wrap_up"),
            ("11-03 16:05:47", "ready"),
            ("11-03 22:00:00", "logged_out"),
            ("11-04 07:00:00", "ready"),
            ("11-04 08:00:35", "on_call"),
            ("11-04 08:10:00", "wrap_up"),
            ("11-04 08:10:25", "ready"),
        ],
    )
    .await;
}

async fn seed_tickets(db: &PgPool) {
    for unit in ["north", "south"] {
        sqlx::query("INSERT INTO units (code, name) VALUES ($1, $1)")
            .bind(unit)
            .execute(db)
            .await
            .unwrap();
    }
    let s = Some;
    let tickets = [
        // Dispatched and contacted in time, finished late, called back in time.
        Ticket {
            number: "GD20251103-000001",
            category: "repair",
            channel: "hotline",
            status: "closed",
            created: "11-03 09:01:00",
            call: s("c1"),
            unit: s("north"),
            dispatch: (s("11-03 09:31:00"), s("11-03 09:20:00")),
            contact: (s("11-03 11:00:00"), s("11-03 10:30:00")),
            finish: (s("11-04 12:00:00"), s("11-04 13:00:00")),
            callback_due: s("11-04 18:00:00"),
            plan: s("human"),
            ..Ticket::default()
        },
        // Dispatched late, never contacted, never finished: still open.
        Ticket {
            number: "GD20251103-000002",
            category: "complaint",
            channel: "gov_12345",
            status: "dispatched",
            created: "11-03 10:00:00",
            unit: s("south"),
            level: s("l2"),
            dispatch: (s("11-03 10:30:00"), s("11-03 10:45:00")),
            contact: (s("11-03 12:00:00"), None),
            finish: (s("11-04 20:00:00"), None),
            ..Ticket::default()
        },
        // A draft closed without dispatch: its dispatch deadline no longer binds.
        Ticket {
            number: "GD20251103-000003",
            category: "query",
            channel: "hotline",
            status: "closed",
            created: "11-03 14:00:00",
            call: s("c6"),
            dispatch: (s("11-03 14:30:00"), None),
            ..Ticket::default()
        },
        Ticket {
            number: "GD20251103-000004",
            category: "urge",
            channel: "hotline",
            status: "draft",
            created: "11-03 16:30:00",
            call: s("c5"),
            parent: s("GD20251103-000002"),
            ..Ticket::default()
        },
        Ticket {
            number: "GD20251103-000005",
            category: "leak",
            channel: "hotline",
            status: "closed",
            created: "11-03 15:01:00",
            call: s("c7"),
            unit: s("north"),
            dispatch: (s("11-03 15:06:00"), s("11-03 15:05:00")),
            finish: (s("11-03 23:00:00"), s("11-03 20:00:00")),
            callback_due: s("11-04 20:00:00"),
            plan: s("automatic"),
            ..Ticket::default()
        },
        Ticket {
            number: "GD20251104-000001",
            category: "complaint",
            channel: "wechat",
            status: "accepted",
            created: "11-04 09:00:00",
            unit: s("north"),
            dispatch: (s("11-04 09:30:00"), s("11-04 09:10:00")),
            contact: (s("11-04 10:00:00"), s("11-04 10:30:00")),
            finish: (s("11-10 09:00:00"), None),
            ..Ticket::default()
        },
        // Replied, its callback not done yet (due on Thursday).
        Ticket {
            number: "GD20251104-000002",
            category: "repair",
            channel: "hotline",
            status: "replied",
            created: "11-04 00:01:00",
            call: s("c10"),
            unit: s("north"),
            dispatch: (s("11-04 00:31:00"), s("11-04 00:20:00")),
            finish: (s("11-04 12:00:00"), s("11-04 08:00:00")),
            callback_due: s("11-06 12:00:00"),
            plan: s("human"),
            ..Ticket::default()
        },
        Ticket {
            number: "GD20251104-000003",
            category: "urge",
            channel: "wechat",
            status: "draft",
            created: "11-04 10:00:00",
            parent: s("GD20251103-000001"),
            ..Ticket::default()
        },
    ];
    for ticket in tickets {
        insert_ticket(db, ticket).await;
    }
    let first = "GD20251103-000001";
    let leak = "GD20251103-000005";
    insert_callback(
        db,
        first,
        "11-04 17:00:00",
        "reached",
        Some(("satisfied", "unsatisfied")),
    )
    .await;
    insert_callback(db, leak, "11-04 10:00:00", "unreachable", None).await;
    insert_callback(
        db,
        leak,
        "11-04 11:00:00",
        "reached",
        Some(("basically_satisfied", "satisfied")),
    )
    .await;
}

async fn seed(daemon: &Hotlined) {
    let db = PgPool::connect_with(daemon.db.clone()).await.unwrap();
    seed_calls(&db).await;
    seed_agents(&db).await;
    seed_tickets(&db).await;
    db.close().await;
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

#[tokio::test]
async fn queue_and_number_filters_narrow_calls_and_their_tickets() {
    let daemon = daemon("Asia/Shanghai").await;
    seed(&daemon).await;
    let ask = |queue: &str, number: &str| pb::GetServiceReportRequest {
        queue: queue.into(),
        number: number.into(),
        ..days("2025-11-03", "2025-11-04", pb::ReportGrouping::Day)
    };
    // The leak queue: c7, c8, c11 answered after 2, 10, 30 s; c12 abandoned after 18 s.
    // Occupancy stays every agent's.
    let leak = admin_report(&daemon, ask("leak", "")).await;
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

    // The second hotline number: one call, abandoned after 40 s, and the urge filed from it.
    let other = admin_report(&daemon, ask("", "96777")).await;
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
    let none = admin_report(&daemon, ask("leak", "96777")).await;
    assert_eq!(none.total.unwrap().calls.unwrap().arrived, 0);
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
