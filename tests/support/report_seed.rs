//! The service report's seed (`reports_api.rs`): calls, agent state changes, tickets and
//! callback attempts written with SQL at known instants around Monday 2025-11-03 and Tuesday
//! 2025-11-04, Shanghai time. Included with `#[path]`; needs `mod hotlined` in the including
//! test.

use crate::hotlined::Hotlined;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sqlx::PgPool;

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

fn ivr<'a>(id: &'a str, arrived: &'a str, ended: &'a str) -> Call<'a> {
    Call {
        id,
        arrived,
        ended,
        disposition: "abandoned_in_ivr",
        ..Call::default()
    }
}

/// Answered by `agent`: arrived when queued unless the caller says otherwise.
fn answered<'a>(
    id: &'a str,
    queue: &'a str,
    agent: &'a str,
    [queued, connected, ended]: [&'a str; 3],
) -> Call<'a> {
    Call {
        id,
        arrived: queued,
        queue: Some(queue),
        queued: Some(queued),
        connected: Some(connected),
        ended,
        agent: Some(agent),
        disposition: "answered",
        ..Call::default()
    }
}

fn abandoned<'a>(id: &'a str, queue: &'a str, queued: &'a str, ended: &'a str) -> Call<'a> {
    Call {
        id,
        arrived: queued,
        queue: Some(queue),
        queued: Some(queued),
        ended,
        disposition: "abandoned_in_queue",
        ..Call::default()
    }
}

/// The Friday and Sunday before, and Monday until 16:00.
fn calls_until_monday() -> Vec<Call<'static>> {
    vec![
        ivr("cA", "10-31 12:00:00", "10-31 12:00:30"),
        ivr("cB", "11-02 12:00:00", "11-02 12:00:30"),
        ivr("c0", "11-03 01:00:00", "11-03 01:00:30"),
        Call {
            arrived: "11-03 09:00:00",
            survey: Some(("satisfied", "1")),
            ..answered(
                "c1",
                "general",
                "1001",
                ["11-03 09:00:10", "11-03 09:00:20", "11-03 09:05:20"],
            )
        },
        Call {
            arrived: "11-03 10:00:00",
            survey: Some(("unsatisfied", "3")),
            ..answered(
                "c2",
                "general",
                "1001",
                ["11-03 10:00:05", "11-03 10:00:35", "11-03 10:03:35"],
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
                "1002",
                ["11-03 15:00:04", "11-03 15:00:06", "11-03 15:10:00"],
            )
        },
        Call {
            arrived: "11-03 16:00:00",
            leak: Some("11-03 16:00:03"),
            ..answered(
                "c8",
                "leak",
                "1002",
                ["11-03 16:00:03", "11-03 16:00:13", "11-03 16:05:00"],
            )
        },
    ]
}

/// Monday 23:59:59, Tuesday from 00:00:01, and Wednesday: 01:00 (Tuesday 23:00 in Urumqi),
/// and two calls at the thresholds at noon.
fn calls_from_monday_midnight() -> Vec<Call<'static>> {
    vec![
        ivr("c9", "11-03 23:59:59", "11-04 00:00:30"),
        Call {
            arrived: "11-04 00:00:01",
            survey: Some(("basically_satisfied", "2")),
            ..answered(
                "c10",
                "general",
                "1001",
                ["11-04 00:00:05", "11-04 00:00:09", "11-04 00:02:00"],
            )
        },
        Call {
            arrived: "11-04 08:00:00",
            leak: Some("11-04 08:00:05"),
            ..answered(
                "c11",
                "leak",
                "1002",
                ["11-04 08:00:05", "11-04 08:00:35", "11-04 08:10:00"],
            )
        },
        Call {
            arrived: "11-04 09:00:00",
            leak: Some("11-04 09:00:02"),
            ..abandoned("c12", "leak", "11-04 09:00:02", "11-04 09:00:20")
        },
        ivr("c13", "11-05 01:00:00", "11-05 01:00:30"),
        // Wednesday: answered after exactly 15 s, abandoned after exactly 5 s.
        Call {
            arrived: "11-05 11:59:50",
            ..answered(
                "w1",
                "general",
                "1002",
                ["11-05 12:00:00", "11-05 12:00:15", "11-05 12:01:30"],
            )
        },
        abandoned("w2", "general", "11-05 13:00:00", "11-05 13:00:05"),
    ]
}

/// Calls: Monday 11-03 and Tuesday 11-04 (one at 23:59:59, the next at 00:00:01), one on the
/// Friday and one on the Sunday before, one at 01:00 on Wednesday 11-05 (Tuesday 23:00 in
/// Urumqi).
async fn seed_calls(db: &PgPool) {
    for call in calls_until_monday()
        .into_iter()
        .chain(calls_from_monday_midnight())
    {
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
            ("11-05 12:00:15", "on_call"),
            ("11-05 12:02:15", "ready"),
        ],
    )
    .await;
}

/// Tickets created on Monday.
fn monday_tickets() -> Vec<Ticket<'static>> {
    let s = Some;
    vec![
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
    ]
}

/// Tickets created on Tuesday.
fn tuesday_tickets() -> Vec<Ticket<'static>> {
    let s = Some;
    vec![
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
    ]
}

async fn seed_tickets(db: &PgPool) {
    for unit in ["north", "south"] {
        sqlx::query("INSERT INTO units (code, name) VALUES ($1, $1)")
            .bind(unit)
            .execute(db)
            .await
            .unwrap();
    }
    for ticket in monday_tickets().into_iter().chain(tuesday_tickets()) {
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

pub async fn seed(daemon: &Hotlined) {
    let db = PgPool::connect_with(daemon.db.clone()).await.unwrap();
    seed_calls(&db).await;
    seed_agents(&db).await;
    seed_tickets(&db).await;
    db.close().await;
}
