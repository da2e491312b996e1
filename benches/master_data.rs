//! Measures the master data at scale, on a private PostgreSQL (the daemon's embedded cluster
//! code, under /tmp):
//!
//! - the caller look-up the daemon does on every call (`Store::caller_facts`: the household
//!   files listing the number, then its open tickets) at 200,000 households and 1,000,000
//!   tickets, one look-up at a time as calls make them — target p99 < 5 ms; the query plans
//!   must use the phone and caller indexes;
//! - `hotlinectl import customers` of a 200,000-household CSV into the real gRPC API (served
//!   in this process on loopback), then the same file again (every row unchanged) — target
//!   < 60 s.
//!
//! Run with `cargo bench --bench master_data`. `cargo test --all-targets` runs this binary
//! without `--bench`: then everything runs at 1 % of the size, as a check that it works.

use hotline::api::{self, AccessList, AdminService, Caller, TicketsService};
use hotline::config::AnnouncementsConfig;
use hotline::ops::Announcer;
use hotline::store::embedded::{Durability, EmbeddedPostgres};
use hotline::store::{Store, StoreOptions};
use rand::Rng;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::error::Error;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const TOKEN: &str = "bench-admin-token-0123456789";

/// `cargo bench` passes `--bench`; without it the sizes shrink to 1 %.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

struct Sizes {
    households: i64,
    tickets: i64,
    lookups: usize,
    import_rows: usize,
}

fn main() -> BenchResult<()> {
    let sizes = if measuring() {
        Sizes {
            households: 200_000,
            tickets: 1_000_000,
            lookups: 20_000,
            import_rows: 200_000,
        }
    } else {
        Sizes {
            households: 2_000,
            tickets: 10_000,
            lookups: 200,
            import_rows: 2_000,
        }
    };
    tokio::runtime::Runtime::new()?.block_on(run(&sizes))
}

async fn run(sizes: &Sizes) -> BenchResult<()> {
    let dir = tempfile::Builder::new()
        .prefix("hotline-bench-")
        .tempdir_in("/tmp")?;
    // The cluster runs as the postgres user, which must reach the folder.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let cluster = EmbeddedPostgres::start(&dir.path().join("pg"), Durability::Throwaway).await?;
    let outcome = async {
        cluster.create_database("lookups").await?;
        cluster.create_database("imports").await?;
        lookups(cluster.connect_options("lookups"), sizes).await?;
        import(cluster.connect_options("imports"), dir.path(), sizes).await
    }
    .await;
    cluster.stop().await?;
    outcome
}

async fn store_on(connect: PgConnectOptions) -> BenchResult<Store> {
    let store = Store::connect(connect, &StoreOptions::default()).await?;
    store.migrate().await?;
    Ok(store)
}

fn phone(i: i64) -> String {
    format!("139{i:08}")
}

/// Households `1..=households` (every third with a second number), and `tickets` tickets
/// spread over them, one in ten still open.
async fn seed(conn: &mut PgConnection, sizes: &Sizes) -> BenchResult<()> {
    sqlx::query(
        "INSERT INTO customers (account_number, name, phone_numbers, address, area, special_group)
         SELECT 'B' || lpad(i::text, 7, '0'), '用户' || i,
                ARRAY['139' || lpad(i::text, 8, '0')]
                    || CASE WHEN i % 3 = 0 THEN ARRAY['029' || lpad(i::text, 8, '0')]
                       ELSE '{}'::text[] END,
                '幸福路' || (i % 500) || '号' || i, '片区' || (i % 40),
                CASE WHEN i % 50 = 0 THEN 'elderly_alone' END
         FROM generate_series(1, $1::bigint) AS i",
    )
    .bind(sizes.households)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO tickets (number, channel, category, status, caller_number, customer_id,
                              created_by, created_at)
         SELECT 'GD' || to_char(date '2025-01-01' + (i / 10000)::int, 'YYYYMMDD') || '-'
                    || lpad((i % 10000 + 1)::text, 6, '0'),
                'hotline', 'repair', CASE WHEN i % 10 = 0 THEN 'draft' ELSE 'closed' END,
                '139' || lpad((i % $2 + 1)::text, 8, '0'), i % $2 + 1, 'bench',
                timestamptz '2025-01-01 00:00:00+08' + i * interval '30 seconds'
         FROM generate_series(0, $1::bigint - 1) AS i",
    )
    .bind(sizes.tickets)
    .bind(sizes.households)
    .execute(&mut *conn)
    .await?;
    // What autovacuum does after bulk inserts on a running system.
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut *conn).await?;
    Ok(())
}

/// The plan of `sql` for `number`, one line.
async fn plan(conn: &mut PgConnection, sql: &str, number: &str) -> BenchResult<String> {
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .bind(number)
        .fetch_all(&mut *conn)
        .await?;
    Ok(lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" / "))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn lookups(connect: PgConnectOptions, sizes: &Sizes) -> BenchResult<()> {
    let store = store_on(connect.clone()).await?;
    let mut conn = PgConnection::connect_with(&connect).await?;
    let started = Instant::now();
    seed(&mut conn, sizes).await?;
    println!(
        "master_data: seeded {} households and {} tickets in {:.1} s",
        sizes.households,
        sizes.tickets,
        started.elapsed().as_secs_f64()
    );
    let known = phone(sizes.households / 2);
    let customers_plan = plan(
        &mut conn,
        "SELECT id FROM customers WHERE phone_numbers @> ARRAY[$1]",
        &known,
    )
    .await?;
    let tickets_plan = plan(
        &mut conn,
        "SELECT number FROM tickets WHERE (caller_number = $1 OR customer_id = ANY('{7}')) \
         AND status <> 'closed' ORDER BY created_at DESC, id DESC LIMIT 20",
        &known,
    )
    .await?;
    println!("master_data: household plan: {customers_plan}");
    println!("master_data: open tickets plan: {tickets_plan}");
    if !customers_plan.contains("customers_by_phone") || !tickets_plan.contains("tickets_open_by_")
    {
        return Err("the caller look-up does not use its indexes".into());
    }
    conn.close().await?;

    // Check once that a look-up finds the household and its open tickets (household 11 has
    // ticket 10, a draft).
    let facts = store.caller_facts(&phone(11)).await?;
    if facts.customer.as_ref().map(|c| c.id) != Some(11) || facts.open_tickets.is_empty() {
        return Err(format!("the look-up of household 11 found {facts:?}").into());
    }
    // Warm the pool and the cache as a running daemon would be.
    for i in 1..=100 {
        store.caller_facts(&phone(i)).await?;
    }
    let mut rng = rand::rng();
    let mut took = Vec::with_capacity(sizes.lookups);
    for _ in 0..sizes.lookups {
        // Nine callers in ten have a household file.
        let number = if rng.random_range(0..10) == 0 {
            format!("186{:08}", rng.random_range(0..100_000_000))
        } else {
            phone(rng.random_range(1..=sizes.households))
        };
        let start = Instant::now();
        std::hint::black_box(store.caller_facts(&number).await?);
        took.push(start.elapsed());
    }
    took.sort();
    // Other work on the machine shows in the tail; say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "master_data: load average while measuring: {}",
        load.split_whitespace().next().unwrap_or("?")
    );
    println!(
        "master_data: caller look-up over {} calls: p50 {}  p90 {}  p99 {}  max {}  (target p99 < 5 ms)",
        took.len(),
        ms(percentile(&took, 0.50)),
        ms(percentile(&took, 0.90)),
        ms(percentile(&took, 0.99)),
        ms(took[took.len() - 1]),
    );
    store.close().await;
    Ok(())
}

/// A household CSV as a billing export would give it.
fn write_csv(path: &Path, rows: usize) -> BenchResult<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "account_number,name,phone_numbers,address,area,special_group"
    )?;
    for i in 1..=rows {
        let special = if i % 50 == 0 { "elderly_alone" } else { "" };
        let second = if i % 3 == 0 {
            format!(";029{i:08}")
        } else {
            String::new()
        };
        writeln!(
            out,
            "GS{i:07},用户{i},138{i:08}{second},\"城东幸福路{}号, {}单元\",片区{},{special}",
            i % 500,
            i % 7,
            i % 40
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Runs `hotlinectl import customers` against `addr`; its time and summary line.
async fn hotlinectl_import(addr: &str, csv: &Path) -> BenchResult<(Duration, String)> {
    let start = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlinectl"))
        .args(["--endpoint", addr, "import", "customers", "--quiet"])
        .arg(csv)
        .env("HOTLINE_TOKEN", TOKEN)
        .env_remove("HOTLINE_TOKEN_FILE")
        .output()
        .await?;
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        return Err(format!(
            "hotlinectl failed ({}): {stdout} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok((took, stdout))
}

async fn import(connect: PgConnectOptions, dir: &Path, sizes: &Sizes) -> BenchResult<()> {
    let store = store_on(connect).await?;
    let csv = dir.join("customers.csv");
    write_csv(&csv, sizes.import_rows)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let access = AccessList::default().with(
        TOKEN,
        Caller::Admin {
            name: "bench".into(),
        },
    );
    let announcer = Announcer::new(
        store.clone(),
        dir.join("announcements"),
        AnnouncementsConfig::default(),
    );
    let admin = AdminService::new(announcer, api::reload_hook(|| async { Ok(String::new()) }));
    let rules = hotline::tickets::Rules::new(Default::default())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(
        TicketsService::new(store.clone(), rules),
        access,
        Some(admin),
        listener,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let outcome = async {
        let rows = sizes.import_rows;
        for (what, expect) in [
            (
                "first import",
                format!("{rows} created, 0 updated, 0 unchanged"),
            ),
            (
                "same file again",
                format!("0 created, 0 updated, {rows} unchanged"),
            ),
        ] {
            let (took, summary) = hotlinectl_import(&addr, &csv).await?;
            if !summary.contains(&expect) {
                return Err(format!("{what}: expected {expect}, got {summary}").into());
            }
            println!(
                "master_data: hotlinectl import customers, {rows} households, {what}: {:.1} s \
                 ({:.0} rows/s; target < 60 s)",
                took.as_secs_f64(),
                rows as f64 / took.as_secs_f64()
            );
        }
        Ok(())
    }
    .await;
    let _ = stop.send(());
    server.await??;
    store.close().await;
    outcome
}
