//! `hotlinectl`, the real built binary, against the real `hotlined` binary on a throwaway
//! PostgreSQL: every command once — a ticket through its whole life (create, list as table
//! and JSON, get, update, dispatch, return, accept, urge, reply, callback; another closed),
//! agents, announcements, live calls with a caller waiting, the service report as tables and
//! CSV, reload — plus check-config on a good and a bad file, and the exit statuses: 1 with the
//! gRPC code for an API error, 2 for a usage error.

#[path = "support/hotlined.rs"]
#[allow(dead_code)] // Shared test helpers: this binary uses the daemon and its log only.
mod hotlined;
#[path = "support/phone.rs"]
#[allow(dead_code)] // Shared test helpers: this binary uses the caller's phone only.
mod phone;
#[allow(dead_code)] // Shared test helpers: this binary uses the database part only.
mod support;

use hotlined::{ADMIN_TOKEN, Hotlined};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// The unit desk token the test daemon accepts besides the admin token.
const NORTH_TOKEN: &str = "north-desk-token-0123456789";

/// The daemon with agent 1001 (general queue), the unit `north`'s desk token, and callbacks
/// allowed at any hour (the quiet hours would make the test depend on the time of day).
async fn daemon() -> Hotlined {
    Hotlined::start(
        |flow| {
            let flow = flow.replace(
                "[acd.agents]",
                "[acd.agents.1001]\nuri = \"sip:1001@127.0.0.1:9\"\nqueues = [\"general\"]",
            );
            format!(
                "{flow}\n\n[[grpc.tokens]]\nname = \"north desk\"\nrole = \"unit\"\n\
                 unit = \"north\"\ntoken = \"{NORTH_TOKEN}\"\n\n\
                 [tickets.callback]\nquiet_from = \"00:00\"\nquiet_until = \"00:00\"\n"
            )
        },
        "",
    )
    .await
}

/// One run of hotlinectl: exit status, stdout, stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    /// Asserts success and returns stdout.
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.out, self.err);
        self.out
    }

    /// Asserts success and parses stdout as JSON.
    fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

/// Runs hotlinectl against `server` (none: a closed port) with `token` in HOTLINE_TOKEN.
async fn ctl(server: Option<&Hotlined>, token: &str, args: &[&str]) -> Run {
    let server = server.map_or("127.0.0.1:9".to_owned(), |d| d.grpc.to_string());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlinectl"))
        .arg("--server")
        .arg(server)
        .args(args)
        .env("HOTLINE_TOKEN", token)
        .env_remove("HOTLINE_TOKEN_FILE")
        .env_remove("HOTLINE_ENDPOINT")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().expect("an exit status"),
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
    }
}

async fn admin(daemon: &Hotlined, args: &[&str]) -> Run {
    ctl(Some(daemon), ADMIN_TOKEN, args).await
}

/// The value of the labelled line `label:` of a human block.
fn labelled<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let label = format!("{label}:");
    text.lines()
        .find_map(|line| line.strip_prefix(label.as_str()))
        .map(str::trim)
}

fn field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {value}"))
}

#[tokio::test]
async fn a_ticket_goes_through_its_life_with_hotlinectl() {
    let daemon = daemon().await;
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units.csv");
    std::fs::write(&units, "code,name,areas\nnorth,北区燃气所,城北\n").unwrap();
    let units = units.to_str().unwrap();
    let imported = admin(&daemon, &["import", "units", units, "--quiet"]).await;
    assert!(imported.ok().contains("1 created"));

    let created = admin(
        &daemon,
        &[
            "--json",
            "tickets",
            "create",
            "--category",
            "repair",
            "--caller-number",
            "13812340001",
            "--caller-name",
            "王女士",
            "--description",
            "燃气表不走字",
        ],
    )
    .await
    .json();
    let number = field(&created, "number").to_owned();
    assert_eq!(field(&created, "status"), "draft");
    assert_eq!(field(&created, "channel"), "hotline");
    assert_eq!(field(&created, "name"), format!("tickets/{number}"));
    assert!(created["responsible_unit"].is_null(), "{created}");

    // The table: a header row and the ticket's row, the Chinese text lined up.
    let table = admin(&daemon, &["tickets", "list", "--caller", "13812340001"]).await;
    let table = table.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("NUMBER"), "{table}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[2], row[3], row[4]),
        (number.as_str(), "draft", "repair", "hotline", "0"),
        "{table}"
    );
    assert!(lines[1].ends_with("燃气表不走字"), "{table}");
    let listed = admin(&daemon, &["--json", "tickets", "list", "--status", "draft"]).await;
    let listed = listed.json();
    assert_eq!(listed["tickets"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(field(&listed["tickets"][0], "number"), number);
    assert_eq!(field(&listed, "next_page_token"), "");
    let none = admin(&daemon, &["tickets", "list", "--category", "leak"]).await;
    assert_eq!(none.ok(), "no tickets\n");

    let got = admin(&daemon, &["tickets", "get", &number]).await.ok();
    assert_eq!(labelled(&got, "ticket"), Some(number.as_str()), "{got}");
    assert_eq!(
        labelled(&got, "caller"),
        Some("王女士 13812340001"),
        "{got}"
    );
    assert_eq!(labelled(&got, "status"), Some("draft"), "{got}");

    let updated = admin(
        &daemon,
        &[
            "--json",
            "tickets",
            "update",
            &number,
            "--priority",
            "5",
            "--description",
            "燃气表不走字，已停用",
        ],
    )
    .await
    .json();
    assert_eq!(updated["priority"], 5);
    assert_eq!(field(&updated, "description"), "燃气表不走字，已停用");
    assert_eq!(
        field(&updated, "caller_name"),
        "王女士",
        "untouched fields stay"
    );

    lifecycle(&daemon, &number).await;

    // Another ticket closed as a draft, by resource name.
    let other = admin(
        &daemon,
        &[
            "--json",
            "tickets",
            "create",
            "--category",
            "query",
            "--caller-number",
            "13812340002",
            "--description",
            "营业厅几点开门",
        ],
    )
    .await
    .json();
    let name = field(&other, "name");
    let closed = admin(
        &daemon,
        &["--json", "tickets", "close", name, "--reason", "已答复"],
    )
    .await;
    assert_eq!(field(&closed.json(), "status"), "closed");

    // Paging: one ticket a page, the next page's token; --all follows every page.
    let all = admin(&daemon, &["--json", "tickets", "list"]).await.json();
    assert_eq!(all["tickets"].as_array().unwrap().len(), 2, "{all}");
    let paged = ["--json", "tickets", "list", "--all", "--page-size", "1"];
    let paged = admin(&daemon, &paged).await.json();
    assert_eq!(paged["tickets"], all["tickets"]);
    assert_eq!(field(&paged, "next_page_token"), "");
    let first = admin(&daemon, &["tickets", "list", "--page-size", "1"])
        .await
        .ok();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 3, "{first}");
    assert!(lines[2].starts_with("more: --page-token "), "{first}");
}

/// `hotlinectl --json tickets ACTION NUMBER EXTRA…` with `token`: the ticket as JSON.
async fn step(daemon: &Hotlined, token: &str, action: &str, number: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "tickets", action, number];
    args.extend_from_slice(extra);
    ctl(Some(daemon), token, &args).await.json()
}

/// Dispatch, a return by the unit, dispatch again, accept, urge, reply, callback.
async fn lifecycle(daemon: &Hotlined, number: &str) {
    let to_north: &[&str] = &["--unit", "north"];
    let steps = [
        (ADMIN_TOKEN, "dispatch", to_north, "dispatched"),
        (NORTH_TOKEN, "return", &["--reason", "缺少地址"], "returned"),
        (ADMIN_TOKEN, "dispatch", to_north, "dispatched"),
        (NORTH_TOKEN, "accept", &["--contacted-customer"], "accepted"),
    ];
    for (token, action, extra, status) in steps {
        let ticket = step(daemon, token, action, number, extra).await;
        assert_eq!(field(&ticket, "status"), status, "{action}: {ticket}");
        assert_eq!(field(&ticket, "responsible_unit"), "north", "{ticket}");
        assert!(ticket["dispatch_due"].is_string(), "{ticket}");
    }

    let urged = admin(
        daemon,
        &["tickets", "urge", number, "--note", "师傅什么时候到"],
    )
    .await;
    let urged = urged.ok();
    assert_eq!(labelled(&urged, "status"), Some("accepted"), "{urged}");
    assert!(labelled(&urged, "tell the caller").is_some(), "{urged}");

    let summary = ["--summary", "更换点火针，试打火正常"];
    let replied = step(daemon, NORTH_TOKEN, "reply", number, &summary).await;
    assert_eq!(field(&replied, "status"), "replied");

    let ratings = [
        "--outcome",
        "reached",
        "--attitude",
        "satisfied",
        "--result",
        "basically-satisfied",
    ];
    let called = step(daemon, ADMIN_TOKEN, "callback", number, &ratings).await;
    assert_eq!(field(&called["ticket"], "status"), "closed");
    assert_eq!(
        field(&called["ticket"], "satisfaction_result"),
        "basically_satisfied"
    );
    assert!(called["new_ticket"].is_null(), "{called}");
}

#[tokio::test]
async fn agents_announcements_live_calls_and_reload() {
    let daemon = daemon().await;
    let agents = admin(&daemon, &["agents", "list"]).await.ok();
    assert_eq!(agents, "AGENT  STATE    QUEUES\n1001   offline  general\n");
    let set = admin(&daemon, &["--json", "agents", "set", "1001", "available"]).await;
    let set = set.json();
    assert_eq!(set["agents"][0]["state"], "available", "{set}");
    let listed = admin(&daemon, &["--json", "agents", "list"]).await.json();
    assert_eq!(listed["agents"][0]["id"], "1001");
    assert_eq!(listed["agents"][0]["state"], "available");
    admin(&daemon, &["agents", "set", "1001", "offline"])
        .await
        .ok();

    let set = admin(
        &daemon,
        &[
            "--json",
            "announce",
            "set",
            "--text",
            "城北片区今日停气检修",
            "--area",
            "城北",
            "--from",
            "2026-01-01T00:00:00+08:00",
            "--until",
            "2099-01-01T00:00:00+08:00",
        ],
    )
    .await
    .json();
    let id = set["announcements"][0]["id"].as_i64().unwrap();
    assert_eq!(set["announcements"][0]["areas"][0], "城北");
    assert_eq!(set["announcements"][0]["starts_at"], "2025-12-31T16:00:00Z");
    let table = admin(&daemon, &["announce", "list"]).await.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(lines[1].starts_with(&format!("{id} ")), "{table}");
    assert!(
        lines[1].contains("all") && lines[1].contains("城北片区今日停气检修"),
        "{table}"
    );
    admin(&daemon, &["announce", "clear", &id.to_string()])
        .await
        .ok();
    let after = admin(&daemon, &["--json", "announce", "list"]).await.json();
    assert_eq!(after["announcements"], Value::Array(vec![]));

    let none = admin(&daemon, &["calls", "live"]).await.ok();
    assert_eq!(none, "no calls in progress\n");
    let calls = call_waiting(&daemon).await;
    assert_eq!(calls["calls"][0]["queue"], "general", "{calls}");
    assert_eq!(calls["calls"][0]["phase"], "waiting", "{calls}");
    assert!(calls["calls"][0]["agent_id"].is_null(), "{calls}");
    let table = admin(&daemon, &["calls", "live"]).await.ok();
    assert!(table.starts_with("CALL"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().contains(" general  waiting "),
        "{table}"
    );

    let reloaded = admin(&daemon, &["--json", "reload"]).await.json();
    assert_eq!(
        field(&reloaded, "summary"),
        "configuration reloaded: new calls use it; calls in progress keep theirs"
    );
    let reloaded = admin(&daemon, &["reload"]).await.ok();
    assert!(
        reloaded.starts_with("configuration reloaded: "),
        "{reloaded}"
    );
}

/// Calls the daemon and presses 2 (general enquiries) until the call waits in the queue
/// (no agent is ready): the first `calls live --json` that lists it.
async fn call_waiting(daemon: &Hotlined) -> Value {
    let mut phone = phone::Phone::new(daemon.sip, "13812340003", "96777").await;
    assert_eq!(phone.call().await, 200, "{}", daemon.log());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        phone.press_inband('2').await;
        let calls = admin(daemon, &["--json", "calls", "live"]).await.json();
        if !calls["calls"].as_array().unwrap().is_empty() {
            return calls;
        }
        assert!(
            Instant::now() < deadline,
            "the call never waited:\n{}",
            daemon.log()
        );
    }
}

#[tokio::test]
async fn api_errors_exit_1_with_their_code_and_usage_errors_exit_2() {
    let daemon = daemon().await;
    let missing = admin(&daemon, &["tickets", "get", "GD20200101-999999"]).await;
    assert_eq!(missing.code, 1, "{}", missing.err);
    assert!(
        missing.err.starts_with("hotlinectl: NOT_FOUND: "),
        "{}",
        missing.err
    );
    let refused = ctl(Some(&daemon), "wrong-token-0123456789", &["agents", "list"]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.err.starts_with("hotlinectl: UNAUTHENTICATED: "),
        "{}",
        refused.err
    );
    let unit = ctl(Some(&daemon), NORTH_TOKEN, &["reload"]).await;
    assert_eq!(unit.code, 1);
    assert!(
        unit.err.starts_with("hotlinectl: PERMISSION_DENIED: "),
        "{}",
        unit.err
    );
    let bad = admin(
        &daemon,
        &[
            "tickets",
            "create",
            "--category",
            "repair",
            "--caller-number",
            "12",
            "--description",
            "x",
        ],
    )
    .await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.err.contains("INVALID_ARGUMENT") && bad.err.contains("caller_number"),
        "{}",
        bad.err
    );

    let unreachable = ctl(None, ADMIN_TOKEN, &["calls", "live"]).await;
    assert_eq!(unreachable.code, 1);
    assert!(
        unreachable
            .err
            .starts_with("hotlinectl: UNAVAILABLE: cannot reach"),
        "{}",
        unreachable.err
    );

    let usage = admin(&daemon, &["tickets", "list", "--status", "finished"]).await;
    assert_eq!(usage.code, 2);
    assert!(
        usage.err.contains("expected one of: draft, dispatched"),
        "{}",
        usage.err
    );
    let nothing = admin(&daemon, &["tickets", "update", "GD20200101-000001"]).await;
    assert_eq!(nothing.code, 2);
    assert!(nothing.err.contains("nothing to change"), "{}", nothing.err);
    let no_token = ctl(
        Some(&daemon),
        "",
        &["--token-file", "/nonexistent/token", "reload"],
    )
    .await;
    assert_eq!(no_token.code, 2);
    assert!(
        no_token.err.contains("/nonexistent/token"),
        "{}",
        no_token.err
    );
}

#[tokio::test]
async fn check_config_says_ok_or_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[daemon]\ntime_zone = \"Asia/Urumqi\"\n").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[daemon]\nshutdown_grace_secs = 5\ntime_zone = \"Mars/Olympus\"\n",
    )
    .unwrap();
    // No daemon and no token needed.
    let ok = ctl(None, "", &["check-config", good.to_str().unwrap()]).await;
    assert_eq!(ok.ok(), format!("{}: ok\n", good.display()));
    let broken = ctl(None, "", &["check-config", bad.to_str().unwrap()]).await;
    assert_eq!(broken.code, 1, "{}", broken.err);
    assert!(
        broken
            .err
            .starts_with(&format!("{}:3:1: daemon.time_zone: ", bad.display())),
        "{}",
        broken.err
    );
    assert!(broken.err.contains("Mars/Olympus"), "{}", broken.err);
    // The same words as the daemon's own check.
    let daemon = std::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .arg("--check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&daemon.stderr), broken.err);
}

/// Monday 2025-11-03 and Tuesday 2025-11-04, Shanghai time (the daemon's zone): a call
/// answered after 10 s (handled in 320 s), a short abandon (2 s), and one at 00:00:01 on
/// Tuesday abandoned after 20 s; agent 1001 logged in 08:00–12:00 on Monday; one ticket
/// dispatched in time.
async fn seed_report(daemon: &Hotlined) {
    let db = sqlx::PgPool::connect_with(daemon.db.clone()).await.unwrap();
    let calls = [
        "('r1', '2025-11-03 09:00:00', '2025-11-03 09:00:10', '2025-11-03 09:00:20', \
         '2025-11-03 09:05:00', '1001', 'answered')",
        "('r2', '2025-11-03 10:00:00', '2025-11-03 10:00:05', NULL, '2025-11-03 10:00:07', \
         NULL, 'abandoned_in_queue')",
        "('r3', '2025-11-04 00:00:01', '2025-11-04 00:00:04', NULL, '2025-11-04 00:00:24', \
         NULL, 'abandoned_in_queue')",
    ];
    for values in calls {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO calls (call_id, arrived_at, queued_at, connected_at, ended_at, \
             agent_id, disposition, caller_number, called_number, queue) \
             SELECT id, a::timestamp AT TIME ZONE 'Asia/Shanghai', \
             q::timestamp AT TIME ZONE 'Asia/Shanghai', \
             c::timestamp AT TIME ZONE 'Asia/Shanghai', \
             e::timestamp AT TIME ZONE 'Asia/Shanghai', agent, d, '13812340000', '95158', \
             'general' FROM (VALUES {values}) v(id, a, q, c, e, agent, d)"
        )))
        .execute(&db)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO agent_state_changes (agent_id, epoch, version, from_state, to_state, at) \
         SELECT '1001', 1, v, f, t, at::timestamp AT TIME ZONE 'Asia/Shanghai' FROM (VALUES \
         (1, 'logged_out', 'ready', '2025-11-03 08:00:00'), \
         (2, 'ready', 'on_call', '2025-11-03 09:00:20'), \
         (3, 'on_call', 'wrap_up', '2025-11-03 09:05:00'), \
         (4, 'wrap_up', 'ready', '2025-11-03 09:05:40'), \
         (5, 'ready', 'logged_out', '2025-11-03 12:00:00')) s(v, f, t, at)",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tickets (number, category, channel, status, created_at, call_id, \
         dispatch_due, dispatched_at, created_by) VALUES ('GD20251103-000001', 'repair', \
         'hotline', 'dispatched', '2025-11-03 09:01:00+08', 'r1', '2025-11-03 09:31:00+08', \
         '2025-11-03 09:10:00+08', 'seed')",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
}

#[tokio::test]
async fn report_as_tables_and_as_csv() {
    let daemon = daemon().await;
    seed_report(&daemon).await;
    let range = ["report", "--from", "2025-11-03", "--to", "2025-11-04"];
    let table = admin(&daemon, &range).await.ok();
    let expected = [
        "time zone Asia/Shanghai, service level 15 s, short abandon < 5 s",
        "",
        "PERIOD      ARRIVED  OFFERED  ANSWERED  IN_SL  ABAND_IVR  ABAND_Q  SHORT  SL%    SL2%   CONN%  ASA_S  AHT_S  OCC%",
        "2025-11-03  2        1        1         1      0          0        1      100.0  100.0  100.0  10.0   320.0  2.2",
        "2025-11-04  1        1        0         0      0          1        0      -      0.0    0.0    -      -      -",
        "total       3        2        1         1      0          1        1      100.0  50.0   50.0   10.0   320.0  2.2",
        "",
        "PERIOD      LEAKS  LEAK_ANS  P50_S  P90_S  MAX_S  TICKETS  DISPATCH%  CONTACT%  FINISH%  CALLBACK%  CB_DONE%  ATT_SAT%  RES_SAT%  SURVEY_1/2/3",
        "2025-11-03  0      0         -      -      -      1        100.0      -         -        -          -         -         -         0/0/0",
        "2025-11-04  0      0         -      -      -      0        -          -         -        -          -         -         -         0/0/0",
        "total       0      0         -      -      -      1        100.0      -         -        -          -         -         -         0/0/0",
        "",
        "TOTAL BY  KEY      COUNT",
        "category  repair   1",
        "channel   hotline  1",
        "",
    ];
    assert_eq!(table, expected.join("\n"), "{table}");
    let mut csv_args = range.to_vec();
    csv_args.push("--csv");
    let csv = admin(&daemon, &csv_args).await.ok();
    let header = "period,first_day,last_day,arrived,offered,answered,answered_within,\
        abandoned_in_ivr,abandoned_in_queue,abandoned_within,short_abandoned,handled,\
        service_level,service_level2,connection_rate,asa_secs,aht_secs,occupancy,leak_calls,\
        leak_answered,leak_abandoned,leak_answer_p50_secs,leak_answer_p90_secs,\
        leak_answer_max_secs,tickets_by_category,tickets_by_channel,dispatch_met,\
        dispatch_missed,dispatch_on_time_rate,contact_met,contact_missed,contact_on_time_rate,\
        finish_met,finish_missed,finish_on_time_rate,callback_met,callback_missed,\
        callback_on_time_rate,overdue_by_unit,urges_by_unit,complaints_by_level,\
        callbacks_needed,callbacks_completed,callback_completion_rate,callbacks_rated,\
        attitude_satisfied,attitude_basically_satisfied,attitude_unsatisfied,\
        attitude_satisfaction_rate,result_satisfied,result_basically_satisfied,\
        result_unsatisfied,result_satisfaction_rate,survey_1,survey_2,survey_3";
    let expected = [
        header,
        "2025-11-03,2025-11-03,2025-11-03,2,1,1,1,0,0,0,1,1,100.0,100.0,100.0,10.0,320.0,2.2,\
         0,0,0,,,,repair=1,hotline=1,1,0,100.0,0,0,,0,0,,0,0,,,,,0,0,,0,0,0,0,,0,0,0,,0,0,0",
        "2025-11-04,2025-11-04,2025-11-04,1,1,0,0,0,1,0,0,0,,0.0,0.0,,,,0,0,0,,,,,,0,0,,0,0,,\
         0,0,,0,0,,,,,0,0,,0,0,0,0,,0,0,0,,0,0,0",
        "total,2025-11-03,2025-11-04,3,2,1,1,0,1,0,1,1,100.0,50.0,50.0,10.0,320.0,2.2,0,0,0,,,,\
         repair=1,hotline=1,1,0,100.0,0,0,,0,0,,0,0,,,,,0,0,,0,0,0,0,,0,0,0,,0,0,0",
        "",
    ];
    assert_eq!(csv, expected.join("\n"), "{csv}");
    let mut json_args = vec!["--json"];
    json_args.extend(range);
    let json = admin(&daemon, &json_args).await.json();
    assert_eq!(json["time_zone"], "Asia/Shanghai");
    assert_eq!(json["total"]["arrived"], 3, "{json}");
    assert_eq!(json["total"]["service_level2"], 50.0, "{json}");
    assert!(json["periods"][1]["service_level"].is_null(), "{json}");
    assert_eq!(
        json["periods"][0]["deadlines"]["dispatch"]["on_time_rate"],
        100.0
    );
    assert_eq!(json["periods"][0]["tickets_by_category"]["repair"], 1);
    // --csv and --json exclude each other: a usage error.
    csv_args.insert(0, "--json");
    let both = admin(&daemon, &csv_args).await;
    assert_eq!(both.code, 2, "{}", both.err);
    let bad = admin(
        &daemon,
        &["report", "--from", "2025-11-04", "--to", "2025-11-03"],
    )
    .await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.err.starts_with("hotlinectl: INVALID_ARGUMENT: from: "),
        "{}",
        bad.err
    );
}
