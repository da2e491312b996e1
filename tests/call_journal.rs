//! The call journal against a real PostgreSQL that is stopped and started mid-stream: records
//! keep coming during the outage, land in the spool, and reach the database exactly once and
//! in order when it is back; a torn spool replays its intact prefix; damage in the middle of
//! the spool costs only the damaged record; a spool replayed twice writes nothing twice; a
//! restart closes the calls the stopped run left open; an agent's state change made during
//! the outage reaches the agents' timeline once the database is back.

#[allow(dead_code)] // This binary uses the cluster helpers only.
mod support;

use chrono::{DateTime, TimeZone, Utc};
use hotline::call::Desktops;
use hotline::desk::{DeskConfig, Requested, Roster};
use hotline::store::embedded::{Durability, EmbeddedPostgres};
use hotline::store::{
    CallEntry, CallJournal, ConsentDecision, ConsentVia, Disposition, JournalOptions,
    JournalWriter, SPOOL_FILE, Store,
};
use hotline::tickets::Category;
use sqlx::postgres::PgConnectOptions;
use std::path::Path;
use std::time::{Duration, Instant};

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, minute, 0).unwrap()
}

/// The default service rules (draft deadlines).
fn rules() -> std::sync::Arc<hotline::tickets::Rules> {
    std::sync::Arc::new(hotline::config::Config::default().rules().unwrap())
}

fn options() -> JournalOptions {
    JournalOptions {
        memory_limit: 1024,
        retry_interval: Duration::from_millis(100),
    }
}

/// Runs the writer until the returned sender is dropped or sent to.
fn spawn_writer(
    writer: JournalWriter,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(writer.run(async {
        let _ = stopped.await;
    }));
    (stop, task)
}

fn draft(caller: &str) -> CallEntry {
    CallEntry::Draft {
        caller: caller.into(),
        called: "95158".into(),
        flow: "day".into(),
        started_at: at(0),
        customer: None,
    }
}

fn step(node: &str, input: &str) -> CallEntry {
    CallEntry::PathStep {
        node: node.into(),
        input: Some(input.into()),
    }
}

/// A private cluster this test can stop and start.
async fn start_cluster(root: &Path) -> EmbeddedPostgres {
    EmbeddedPostgres::start(root, Durability::Throwaway)
        .await
        .unwrap()
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A database on a private cluster that is stopped again at once: everything a journal
/// records goes to its spool until the test starts the cluster again on `pg_root`.
async fn stopped_database(pg_root: &Path) -> (PgConnectOptions, Store) {
    let cluster = start_cluster(pg_root).await;
    cluster.create_database("journal").await.unwrap();
    let db = cluster.connect_options("journal");
    let store = support::store_on(db.clone()).await;
    cluster.stop().await.unwrap();
    (db, store)
}

/// The daemon runs during an outage and stops: `call`'s arrival, a menu step and its end
/// (self-served at minute 4) are all spooled.
async fn spool_one_call(spool_dir: &Path, store: &Store, call: &str) {
    let (journal, writer) =
        CallJournal::open_with(spool_dir, store.clone(), rules(), options()).unwrap();
    let (stop, task) = spawn_writer(writer);
    journal.record(
        call,
        CallEntry::Arrived {
            caller: "13812341234".into(),
            called: "95158".into(),
            at: at(0),
        },
    );
    journal.record(call, step("main", "2"));
    let last = journal.record(
        call,
        CallEntry::Ended {
            at: at(4),
            disposition: Disposition::SelfServed,
        },
    );
    journal.durable(last).await;
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct CallRow {
    ivr_path: Vec<String>,
    answered_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    disposition: Option<String>,
    queue: Option<String>,
    agent_id: Option<String>,
    recording_file: Option<String>,
    recording_consent: Option<String>,
    recording_consent_via: Option<String>,
    queued_at: Option<DateTime<Utc>>,
    connected_at: Option<DateTime<Utc>>,
    leak_at: Option<DateTime<Utc>>,
}

async fn call_row(connect: &PgConnectOptions, call_id: &str) -> Option<CallRow> {
    let pool = sqlx::PgPool::connect_with(connect.clone()).await.ok()?;
    let row = sqlx::query_as(
        "SELECT ivr_path, answered_at, ended_at, disposition, queue, agent_id, recording_file, \
         recording_consent, recording_consent_via, queued_at, connected_at, leak_at \
         FROM calls WHERE call_id = $1",
    )
    .bind(call_id)
    .fetch_optional(&pool)
    .await
    .ok()?;
    pool.close().await;
    row
}

/// (number of tickets of the call, category, priority, events of those tickets).
async fn ticket_state(store_db: &PgConnectOptions, call_id: &str) -> (i64, String, i32, i64) {
    let pool = sqlx::PgPool::connect_with(store_db.clone()).await.unwrap();
    let row = sqlx::query_as(
        "SELECT count(*) OVER (), category, priority, \
           (SELECT count(*) FROM ticket_events e WHERE e.ticket_id = t.id) \
         FROM tickets t WHERE call_id = $1",
    )
    .bind(call_id)
    .fetch_optional(&pool)
    .await
    .unwrap()
    .unwrap_or((0, String::new(), 0, 0));
    pool.close().await;
    row
}

#[tokio::test]
async fn an_outage_loses_nothing_and_writes_everything_once_in_order() {
    let dir = support::reachable_temp_dir();
    let pg_root = dir.path().join("pg");
    let spool_dir = dir.path().join("spool");
    let cluster = start_cluster(&pg_root).await;
    cluster.create_database("journal").await.unwrap();
    let db = cluster.connect_options("journal");
    let store: Store = support::store_on(db.clone()).await;

    let (journal, writer) =
        CallJournal::open_with(&spool_dir, store.clone(), rules(), options()).unwrap();
    let (stop, task) = spawn_writer(writer);

    let a = "call-a@pbx";
    journal.record(
        a,
        CallEntry::Arrived {
            caller: "13812341234".into(),
            called: "95158".into(),
            at: at(0),
        },
    );
    journal.record(a, CallEntry::Answered { at: at(0) });
    journal.record(a, draft("13812341234"));
    let before_outage = journal.record(a, step("main", "1"));
    journal.durable(before_outage).await;
    assert_eq!(
        call_row(&db, a).await.unwrap().ivr_path,
        vec!["main:1".to_owned()]
    );

    cluster.stop().await.unwrap();

    // The call goes on; a second call comes and goes entirely during the outage.
    journal.record(a, step("leak_menu", "1"));
    journal.record(
        a,
        CallEntry::Category {
            category: Category::Leak,
            top_priority: true,
        },
    );
    journal.record(
        a,
        CallEntry::Consent {
            decision: ConsentDecision::Granted,
            via: ConsentVia::LeakDefault,
            at: at(1),
        },
    );
    journal.record(a, CallEntry::Leak { at: at(1) });
    journal.record(
        a,
        CallEntry::Queue {
            queue: "leak".into(),
            at: at(1),
        },
    );
    journal.record(
        a,
        CallEntry::Agent {
            agent_id: "1001".into(),
            at: at(2),
        },
    );
    journal.record(
        a,
        CallEntry::Recording {
            path: "call-a_pbx.wav".into(),
        },
    );
    journal.record(
        a,
        CallEntry::Ended {
            at: at(5),
            disposition: Disposition::Answered,
        },
    );
    let b = "call-b@pbx";
    journal.record(
        b,
        CallEntry::Arrived {
            caller: "13900001111".into(),
            called: "95158".into(),
            at: at(2),
        },
    );
    journal.record(b, draft("13900001111"));
    journal.record(b, step("main", "9"));
    let last = journal.record(
        b,
        CallEntry::Ended {
            at: at(3),
            disposition: Disposition::AbandonedInIvr,
        },
    );
    // Safe on disk while the database is down.
    tokio::time::timeout(Duration::from_secs(30), journal.durable(last))
        .await
        .expect("outage records reach the spool");
    let spool = spool_dir.join(SPOOL_FILE);
    assert!(std::fs::metadata(&spool).unwrap().len() > 0);
    assert!(journal.spooled_bytes() > 0);
    let spooled_copy = dir.path().join("spool-copy");
    std::fs::create_dir(&spooled_copy).unwrap();
    std::fs::copy(&spool, spooled_copy.join(SPOOL_FILE)).unwrap();

    let cluster = start_cluster(&pg_root).await;
    wait_until("the spool is replayed and compacted", || async {
        journal.spooled_bytes() == 0
    })
    .await;

    let row_a = call_row(&db, a).await.unwrap();
    assert_eq!(
        row_a,
        CallRow {
            ivr_path: vec!["main:1".into(), "leak_menu:1".into()],
            answered_at: Some(at(0)),
            ended_at: Some(at(5)),
            disposition: Some("answered".into()),
            queue: Some("leak".into()),
            agent_id: Some("1001".into()),
            recording_file: Some("call-a_pbx.wav".into()),
            recording_consent: Some("granted".into()),
            recording_consent_via: Some("leak_default".into()),
            queued_at: Some(at(1)),
            connected_at: Some(at(2)),
            leak_at: Some(at(1)),
        }
    );
    // One ticket, turned into a top-priority leak draft: create + category + priority events.
    assert_eq!(ticket_state(&db, a).await, (1, "leak".into(), 9, 3));
    let row_b = call_row(&db, b).await.unwrap();
    assert_eq!(row_b.ivr_path, vec!["main:9".to_owned()]);
    assert_eq!(row_b.disposition.as_deref(), Some("abandoned_in_ivr"));
    assert_eq!(ticket_state(&db, b).await, (1, "consultation".into(), 0, 1));
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);

    // The same spool replayed again (a crash before compaction) writes nothing twice.
    let (_again, writer) =
        CallJournal::open_with(&spooled_copy, store.clone(), rules(), options()).unwrap();
    let (stop_again, task_again) = spawn_writer(writer);
    wait_until("the copy is replayed", || async {
        std::fs::metadata(spooled_copy.join(SPOOL_FILE))
            .unwrap()
            .len()
            == 0
    })
    .await;
    stop_again.send(()).unwrap();
    task_again.await.unwrap();
    assert_eq!(call_row(&db, a).await.unwrap(), row_a);
    assert_eq!(call_row(&db, b).await.unwrap(), row_b);
    assert_eq!(ticket_state(&db, a).await, (1, "leak".into(), 9, 3));
    assert_eq!(ticket_state(&db, b).await, (1, "consultation".into(), 0, 1));

    stop.send(()).unwrap();
    task.await.unwrap();
    store.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn a_torn_spool_replays_its_intact_prefix_after_a_restart() {
    let dir = support::reachable_temp_dir();
    let pg_root = dir.path().join("pg");
    let spool_dir = dir.path().join("spool");
    let (db, store) = stopped_database(&pg_root).await;
    // The daemon runs during an outage and stops: its records are all spooled.
    let c = "call-c@pbx";
    spool_one_call(&spool_dir, &store, c).await;

    // A crash tore the last record: cut the file in the middle of it.
    let spool = spool_dir.join(SPOOL_FILE);
    let full = std::fs::metadata(&spool).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&spool)
        .unwrap();
    file.set_len(full - 10).unwrap();
    drop(file);

    let cluster = start_cluster(&pg_root).await;
    let (journal, writer) =
        CallJournal::open_with(&spool_dir, store.clone(), rules(), options()).unwrap();
    let (stop, task) = spawn_writer(writer);
    wait_until("the intact prefix is replayed", || async {
        journal.spooled_bytes() == 0
    })
    .await;
    let row = call_row(&db, c).await.unwrap();
    assert_eq!(row.ivr_path, vec!["main:2".to_owned()]);
    // The torn end is not applied: the restart closes the call as interrupted instead.
    assert_ne!(
        row.ended_at,
        Some(at(4)),
        "the torn record must not be applied"
    );
    assert_eq!(row.disposition.as_deref(), Some("interrupted"));

    // Recording goes on after the restart, with sequence numbers above the spooled ones.
    let more = journal.record(
        c,
        CallEntry::Ended {
            at: at(6),
            disposition: Disposition::SelfServed,
        },
    );
    journal.durable(more).await;
    assert_eq!(call_row(&db, c).await.unwrap().ended_at, Some(at(6)));

    stop.send(()).unwrap();
    task.await.unwrap();
    store.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn damage_in_the_middle_of_the_spool_keeps_the_records_after_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = support::reachable_temp_dir();
    let pg_root = dir.path().join("pg");
    let spool_dir = dir.path().join("spool");
    let (db, store) = stopped_database(&pg_root).await;
    let e = "call-e@pbx";
    spool_one_call(&spool_dir, &store, e).await;

    // The spool holds names, numbers and addresses: only the daemon's user may read it.
    let spool = spool_dir.join(SPOOL_FILE);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spool), 0o600);
    assert_eq!(mode(&spool_dir), 0o700);

    // One byte of the middle record goes bad on disk.
    let mut bytes = std::fs::read(&spool).unwrap();
    let middle = bytes
        .windows(6)
        .position(|w| w == b"main:2")
        .expect("the path step is in the spool");
    bytes[middle] ^= 0x01;
    std::fs::write(&spool, &bytes).unwrap();

    let cluster = start_cluster(&pg_root).await;
    let (journal, writer) =
        CallJournal::open_with(&spool_dir, store.clone(), rules(), options()).unwrap();
    let (stop, task) = spawn_writer(writer);
    wait_until("the spool is replayed", || async {
        journal.spooled_bytes() == 0
    })
    .await;
    let row = call_row(&db, e).await.unwrap();
    assert_eq!(
        row.ivr_path,
        Vec::<String>::new(),
        "the damaged record is skipped"
    );
    assert_eq!(
        row.ended_at,
        Some(at(4)),
        "the record after the damage is kept"
    );
    assert_eq!(row.disposition.as_deref(), Some("self_served"));
    assert!(journal.skipped_bytes() > 0, "the skipped bytes are counted");

    stop.send(()).unwrap();
    task.await.unwrap();
    store.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn a_restart_closes_the_calls_the_stopped_run_left_open_and_prunes_old_guards() {
    let dir = support::reachable_temp_dir();
    let pg_root = dir.path().join("pg");
    let spool_dir = dir.path().join("spool");
    let cluster = start_cluster(&pg_root).await;
    cluster.create_database("journal").await.unwrap();
    let db = cluster.connect_options("journal");
    let store = support::store_on(db.clone()).await;
    let arrived = |caller: &str| CallEntry::Arrived {
        caller: caller.into(),
        called: "95158".into(),
        at: Utc::now() - chrono::Duration::minutes(5),
    };

    // The first run: call f is in progress, call g ended; then the database stops and call h
    // arrives (spooled); then the daemon is killed: nothing ends f or h.
    let (journal, writer) =
        CallJournal::open_with(&spool_dir, store.clone(), rules(), options()).unwrap();
    let (stop, task) = spawn_writer(writer);
    let (f, g, h) = ("call-f@pbx", "call-g@pbx", "call-h@pbx");
    journal.record(f, arrived("13812341234"));
    journal.record(f, draft("13812341234"));
    journal.record(g, arrived("13912345678"));
    journal.record(
        g,
        CallEntry::Ended {
            at: at(9),
            disposition: Disposition::SelfServed,
        },
    );
    journal.flush().await;
    cluster.stop().await.unwrap();
    let last = journal.record(h, arrived("13712345678"));
    journal.durable(last).await;
    task.abort();
    let _ = task.await;
    drop((stop, journal));

    // Guards of calls long finished: old enough to prune.
    let cluster = start_cluster(&pg_root).await;
    let pool = sqlx::PgPool::connect_with(db.clone()).await.unwrap();
    sqlx::query("UPDATE call_journal_applied SET applied_at = now() - interval '2 days'")
        .execute(&pool)
        .await
        .unwrap();

    // The restart: replays h, then closes f and h; g keeps its disposition.
    let restarted = Utc::now();
    let (journal, writer) =
        CallJournal::open_with(&spool_dir, store.clone(), rules(), options()).unwrap();
    let (stop, task) = spawn_writer(writer);
    let i = "call-i@pbx";
    journal.record(
        i,
        CallEntry::Arrived {
            caller: "13612345678".into(),
            called: "95158".into(),
            at: Utc::now(),
        },
    );
    wait_until("the open calls are closed", || async {
        call_row(&db, h)
            .await
            .is_some_and(|row| row.disposition.is_some())
            && journal.spooled_bytes() == 0
    })
    .await;
    journal.flush().await;
    for call in [f, h] {
        let row = call_row(&db, call).await.unwrap();
        assert_eq!(row.disposition.as_deref(), Some("interrupted"), "{call}");
        let ended = row.ended_at.unwrap();
        assert!(
            ended >= restarted - chrono::Duration::seconds(1) && ended <= Utc::now(),
            "{call}: ended_at is when the restart noticed, got {ended}"
        );
    }
    let g_row = call_row(&db, g).await.unwrap();
    assert_eq!(
        (g_row.ended_at, g_row.disposition.as_deref()),
        (Some(at(9)), Some("self_served"))
    );
    let i_row = call_row(&db, i).await.unwrap();
    assert_eq!(i_row.ended_at, None, "a call of this run stays open");
    // f's draft ticket stays a draft.
    let status: String = sqlx::query_scalar("SELECT status FROM tickets WHERE call_id = $1")
        .bind(f)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "draft");
    // Only the guards written since the restart are left.
    let mut guards: Vec<String> =
        sqlx::query_scalar("SELECT call_id FROM call_journal_applied ORDER BY call_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    guards.sort();
    assert_eq!(guards, [h, i]);

    pool.close().await;
    stop.send(()).unwrap();
    task.await.unwrap();
    store.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn records_beyond_the_memory_limit_spill_to_disk_and_keep_their_order() {
    let dir = support::reachable_temp_dir();
    let cluster = start_cluster(&dir.path().join("pg")).await;
    cluster.create_database("journal").await.unwrap();
    let db = cluster.connect_options("journal");
    let store = support::store_on(db.clone()).await;
    let small = JournalOptions {
        memory_limit: 2,
        ..options()
    };
    let (journal, writer) =
        CallJournal::open_with(&dir.path().join("spool"), store.clone(), rules(), small).unwrap();
    let d = "call-d@pbx";
    journal.record(
        d,
        CallEntry::Arrived {
            caller: "13812341234".into(),
            called: "95158".into(),
            at: at(0),
        },
    );
    for i in 0..30 {
        journal.record(d, step(&format!("n{i}"), "1"));
    }
    // No writer yet: all but the last couple already went to disk from the call path.
    assert!(journal.spooled_bytes() > 0);
    let (stop, task) = spawn_writer(writer);
    // More while the writer drains the spool and the memory queue spills again and again.
    for i in 30..60 {
        journal.record(d, step(&format!("n{i}"), "1"));
        if i % 7 == 0 {
            tokio::task::yield_now().await;
        }
    }
    wait_until("every step is written", || async {
        call_row(&db, d)
            .await
            .is_some_and(|row| row.ivr_path.len() >= 60)
            && journal.spooled_bytes() == 0
    })
    .await;
    let expected: Vec<String> = (0..60).map(|i| format!("n{i}:1")).collect();
    assert_eq!(call_row(&db, d).await.unwrap().ivr_path, expected);
    stop.send(()).unwrap();
    task.await.unwrap();
    store.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn an_agent_state_change_during_an_outage_reaches_the_timeline_once_the_database_is_back() {
    let dir = support::reachable_temp_dir();
    let pg_root = dir.path().join("pg");
    let cluster = start_cluster(&pg_root).await;
    cluster.create_database("journal").await.unwrap();
    let store = support::store_on(cluster.connect_options("journal")).await;
    let (journal, writer) =
        CallJournal::open_with(&dir.path().join("spool"), store.clone(), rules(), options())
            .unwrap();
    let (stop, task) = spawn_writer(writer);
    let roster = Roster {
        agents: [("1001".to_owned(), vec!["general".to_owned()])].into(),
        queues: vec!["general".into()],
    };
    let (desktops, _orders, desk_tasks) = Desktops::start_journaled(
        DeskConfig::default(),
        chrono_tz::Asia::Shanghai,
        &roster,
        store.clone(),
        Some(journal.clone()),
    );
    let timeline = || async {
        store
            .state_changes("1001")
            .await
            .map(|changes| {
                changes
                    .into_iter()
                    .map(|c| (c.from_state, c.to_state, c.reason_code, c.version))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    desktops.set_state("1001", Requested::Ready, None).unwrap();
    wait_until("the login is in the timeline", || async {
        timeline().await.len() == 1
    })
    .await;

    cluster.stop().await.unwrap();
    // The agent takes a break while PostgreSQL is down: the change waits in the spool.
    let view = desktops
        .set_state("1001", Requested::NotReady("break".into()), None)
        .unwrap();
    assert_eq!(view.version, 2);
    wait_until("the change is spooled", || async {
        journal.spooled_bytes() > 0
    })
    .await;

    let cluster = start_cluster(&pg_root).await;
    wait_until("the spool is replayed", || async {
        journal.spooled_bytes() == 0
    })
    .await;
    journal.flush().await;
    assert_eq!(
        timeline().await,
        [
            ("logged_out".into(), "ready".into(), None, 1),
            ("ready".into(), "not_ready".into(), Some("break".into()), 2),
        ]
    );

    desk_tasks.abort();
    stop.send(()).unwrap();
    task.await.unwrap();
    store.close().await;
    cluster.stop().await.unwrap();
}

/// Records are written in batches (one transaction each); a record the database refuses
/// (here a NUL byte, which PostgreSQL text cannot hold) must cost only itself: the records
/// before and after it in the same batch are written, in order.
#[tokio::test]
async fn a_refused_record_in_a_batch_costs_only_itself() {
    let dir = support::reachable_temp_dir();
    let cluster = start_cluster(&dir.path().join("pg")).await;
    cluster.create_database("journal").await.unwrap();
    let db = cluster.connect_options("journal");
    let store: Store = support::store_on(db.clone()).await;
    let (journal, writer) =
        CallJournal::open_with(&dir.path().join("spool"), store.clone(), rules(), options())
            .unwrap();

    // Recorded before the writer runs, so they wait together and form one batch.
    let call = "call-nul@pbx";
    journal.record(
        call,
        CallEntry::Arrived {
            caller: "13812341234".into(),
            called: "95158".into(),
            at: at(0),
        },
    );
    journal.record(call, draft("13812341234"));
    journal.record(call, step("main", "1"));
    journal.record(call, step("bad\0node", "2"));
    journal.record(call, step("repair_menu", "3"));
    let (stop, task) = spawn_writer(writer);
    journal.flush().await;

    assert_eq!(
        call_row(&db, call).await.unwrap().ivr_path,
        vec!["main:1".to_owned(), "repair_menu:3".to_owned()]
    );
    assert_eq!(ticket_state(&db, call).await.0, 1, "one draft");

    stop.send(()).unwrap();
    task.await.unwrap();
    store.close().await;
    cluster.stop().await.unwrap();
}
