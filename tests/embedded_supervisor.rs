//! The private PostgreSQL's supervisor when restarts keep failing: a real cluster whose data
//! folder is made unusable (its `PG_VERSION` moved away) and whose server is then stopped
//! behind the supervisor's back. Each failed restart is logged; from the configured number
//! of failures in a row on, loudly (error level). Put back, the next restart succeeds.

#[allow(dead_code)] // Shared test helpers: this binary uses the temp folder only.
mod support;

use hotline::store::embedded::{Durability, EmbeddedPostgres, SupervisePolicy};
use sqlx::Connection;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Log lines written by the subscriber of this test, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits (up to 60 s) until a line containing `needle` has been logged.
    async fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within 60 s; the log:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const LOUD: &str = "THE PRIVATE POSTGRESQL KEEPS FAILING TO RESTART";
const QUIET: &str = "restarting the private PostgreSQL failed; trying again";
const BACK: &str = "the private PostgreSQL is restarted and accepts connections";

#[tokio::test]
async fn failing_restarts_are_logged_loudly_from_the_configured_count_and_it_recovers() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = support::reachable_temp_dir();
    let root = dir.path().join("pg");
    let cluster = EmbeddedPostgres::start(&root, Durability::Throwaway)
        .await
        .unwrap();
    let connect = cluster.connect_options("postgres");
    let postmaster = i32::try_from(cluster.pid()).unwrap();
    let policy = SupervisePolicy {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        loud_after_failures: 3,
    };
    let supervised = cluster.supervise_with(policy);

    // The data folder becomes unusable for a restart (the running server does not read
    // PG_VERSION again), then the server is stopped as `pg_ctl stop -m fast` would.
    let version = root.join("data/PG_VERSION");
    let moved = root.join("data/PG_VERSION.moved-away");
    std::fs::rename(&version, &moved).unwrap();
    // SAFETY: signalling the server this test started.
    unsafe { libc::kill(postmaster, libc::SIGINT) };

    let text = log.wait_for(LOUD).await;
    let before_loud = &text[..text.find(LOUD).unwrap()];
    assert!(
        before_loud.contains("the private PostgreSQL exited; restarting it"),
        "{text}"
    );
    // Failures 1 and 2 are warnings; the third is the loud one, at error level.
    assert_eq!(before_loud.matches(QUIET).count(), 2, "{text}");
    let loud_line = text.lines().find(|l| l.contains(LOUD)).unwrap();
    assert!(loud_line.contains(" ERROR "), "{loud_line}");
    assert!(loud_line.contains("attempts=3"), "{loud_line}");
    // The server's own complaint (from its log) comes with it.
    let loud_on = &text[text.find(LOUD).unwrap()..];
    assert!(
        loud_on.contains("PG_VERSION"),
        "the cause is named: {loud_on}"
    );
    // It stays loud while the failures go on.
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.text().matches(LOUD).count() < 2 {
        assert!(Instant::now() < deadline, "{}", log.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !log.text().contains(BACK),
        "no restart can succeed meanwhile"
    );

    // The folder is put back: the next restart succeeds and the server takes connections.
    std::fs::rename(&moved, &version).unwrap();
    log.wait_for(BACK).await;
    let mut conn = sqlx::PgConnection::connect_with(&connect).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    supervised.stop().await.unwrap();
    assert!(!support::server_alive(&root));
}
