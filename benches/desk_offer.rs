//! Measures the screen pop at ring time, on a private PostgreSQL (the daemon's embedded
//! cluster code, under /tmp) seeded with 200,000 households, 1,000,000 tickets and 2,000,000
//! call rows (a fifth of the calls from 500 heavy callers, about 800 calls each):
//!
//! - the call stack runs in this process with 50 agents, each with a phone (a UDP socket
//!   that answers 180 Ringing) and a desktop subscribed to `hotline.v1.AgentDesk` over
//!   loopback gRPC;
//! - callers (heavy and ordinary numbers in turn) call one after another, press 2 and hang
//!   up once an agent was offered the call;
//! - per call: the time from the INVITE reaching the agent's phone to the `Offered` event
//!   reaching that agent's desktop (negative: the pop was there first, as designed), and from
//!   the key press to the `Offered` event (the pop's queries included).
//!
//! Prints p50 and p99 of both, and the plans of the pop's heaviest queries for the heaviest
//! caller. Target: p99 < 50 ms. Run with `cargo bench --bench desk_offer`; `cargo test
//! --all-targets` runs it without `--bench`, at 1 % of the data and 10 calls, as a check.

#[path = "../tests/support/phone.rs"]
#[allow(dead_code)]
mod phone;

use hotline::api::{self, AccessList, AgentDeskService, pb};
use hotline::call::{CallStack, Reloader};
use hotline::config::{self, BUILTIN_CALL_FLOW, Role, TokenConfig};
use hotline::store::embedded::{Durability, EmbeddedPostgres};
use hotline::store::{Store, StoreOptions};
use phone::{AgentPhone, Phone};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::error::Error;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type BenchResult<T> = Result<T, Box<dyn Error>>;

const TOKEN: &str = "bench-admin-token-0123456789";
const AGENTS: usize = 50;
const HEAVY_CALLERS: i64 = 500;

fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

struct Sizes {
    households: i64,
    tickets: i64,
    calls: i64,
    offers: usize,
}

/// `DESK_BENCH_OFFERS` overrides the number of calls (e.g. a shorter run while investigating).
fn offers_override() -> Option<usize> {
    std::env::var("DESK_BENCH_OFFERS").ok()?.parse().ok()
}

fn main() -> BenchResult<()> {
    let mut sizes = if measuring() {
        Sizes {
            households: 200_000,
            tickets: 1_000_000,
            calls: 2_000_000,
            offers: 200,
        }
    } else {
        Sizes {
            households: 2_000,
            tickets: 10_000,
            calls: 20_000,
            offers: 10,
        }
    };
    if let Some(offers) = offers_override() {
        sizes.offers = offers.max(1);
    }
    tokio::runtime::Runtime::new()?.block_on(run(&sizes))
}

async fn run(sizes: &Sizes) -> BenchResult<()> {
    // RUST_LOG=hotline=debug shows the daemon's log.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let dir = tempfile::Builder::new()
        .prefix("hotline-bench-")
        .tempdir_in("/tmp")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let cluster = EmbeddedPostgres::start(&dir.path().join("pg"), Durability::Throwaway).await?;
    let outcome = async {
        cluster.create_database("desk").await?;
        let options = cluster.connect_options("desk");
        let store = Store::connect(options.clone(), &StoreOptions::default()).await?;
        store.migrate().await?;
        let started = Instant::now();
        seed(options, sizes).await?;
        println!(
            "seeded {} households, {} tickets, {} calls in {:.1} s",
            sizes.households,
            sizes.tickets,
            sizes.calls,
            started.elapsed().as_secs_f64()
        );
        offers(store, dir.path(), sizes).await
    }
    .await;
    cluster.stop().await?;
    outcome
}

fn phone_number(i: i64) -> String {
    format!("139{i:08}")
}

async fn seed(options: PgConnectOptions, sizes: &Sizes) -> BenchResult<()> {
    let mut conn = PgConnection::connect_with(&options).await?;
    sqlx::query(
        "INSERT INTO customers (account_number, name, phone_numbers, address, area) \
         SELECT 'A' || i, '户主' || i, ARRAY['139' || lpad(i::text, 8, '0')], \
                '幸福路' || (i % 5000) || '号', 'area' || (i % 300) \
         FROM generate_series(1, $1) i",
    )
    .bind(sizes.households)
    .execute(&mut conn)
    .await?;
    // A fifth of the calls from the heavy callers (numbers 1..=500), the rest spread. They
    // are history, so they have ended: a call row without `ended_at` is a call in progress,
    // and the journal closes those (as interrupted) when the call stack starts — 2,000,000
    // of them took it 28 s, during which every pop timed out waiting for the journal.
    sqlx::query(
        "INSERT INTO calls (call_id, caller_number, called_number, arrived_at, ended_at, \
                            ivr_path, queue, agent_id, disposition) \
         SELECT 'seed-' || i, \
                '139' || lpad((CASE WHEN i % 5 = 0 THEN i % $2 ELSE i % $3 END + 1)::text, 8, '0'), \
                '96777', now() - (i % 500000) * interval '1 minute', \
                LEAST(now(), now() - (i % 500000) * interval '1 minute' \
                             + (30 + i % 600) * interval '1 second'), \
                ARRAY['menu:2', 'repair'], 'general', 'a' || (i % 50), 'answered' \
         FROM generate_series(1, $1) i",
    )
    .bind(sizes.calls)
    .bind(HEAVY_CALLERS)
    .bind(sizes.households)
    .execute(&mut conn)
    .await?;
    // Tickets: one in five still open; some leaks, some complaints; a third on a household.
    sqlx::query(
        "INSERT INTO tickets (number, channel, category, status, caller_number, customer_id, \
                              caller_address, area, created_by, created_at, finish_due) \
         SELECT 'GD' || to_char(date '2024-01-01' + (i / 900000)::int, 'YYYYMMDD') || '-' \
                     || lpad((i % 900000)::text, 6, '0'), \
                'hotline', \
                (ARRAY['repair', 'query', 'complaint', 'leak', 'consultation'])[i % 5 + 1], \
                CASE WHEN i % 5 = 0 THEN 'dispatched' ELSE 'closed' END, \
                '139' || lpad((CASE WHEN i % 7 = 0 THEN i % $2 ELSE i % $3 END + 1)::text, 8, '0'), \
                CASE WHEN i % 3 = 0 THEN i % $3 + 1 END, \
                '幸福路' || (i % 5000) || '号', 'area' || (i % 300), 'seed', \
                now() - (i % 100000) * interval '10 minutes', now() + interval '1 day' \
         FROM generate_series(1, $1) i",
    )
    .bind(sizes.tickets)
    .bind(HEAVY_CALLERS)
    .bind(sizes.households)
    .execute(&mut conn)
    .await?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

fn config_text(dir: &Path, agents: &[String]) -> String {
    let agents: String = agents
        .iter()
        .enumerate()
        .map(|(i, uri)| format!("[acd.agents.a{i}]\nuri = \"{uri}\"\nqueues = [\"general\"]\n\n"))
        .collect();
    let flow = BUILTIN_CALL_FLOW
        .replace("greeting = [\"welcome\"]", "greeting = [\"digit_1\"]")
        .replace("[ivr.leak]\n", "[ivr.leak]\nspeak_after_greeting = false\n")
        .replace("policy = \"announce\"", "policy = \"off\"")
        .replace("[acd.agents]", &agents);
    format!(
        "[daemon]\nstate_dir = \"{state}\"\nshutdown_grace_secs = 1\n\n\
         [sip]\nlisten = \"127.0.0.1:0\"\n\n\
         [media]\nrtp_port_min = 36000\nrtp_port_max = 36999\nsounds_dir = \"sounds/zh-CN\"\n\
         recordings_dir = \"{rec}\"\n\n{flow}\n[desk]\nwrap_up_secs = 0\n",
        state = dir.join("var").display(),
        rec = dir.join("recordings").display(),
    )
}

fn authed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {TOKEN}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn offers(store: Store, dir: &Path, sizes: &Sizes) -> BenchResult<()> {
    // The agents' phones: each reports the INVITEs it gets, answers 180, and ends on CANCEL.
    let (invites, mut invites_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut uris = Vec::new();
    for i in 0..AGENTS {
        let phone = AgentPhone::bind().await;
        uris.push(phone.uri(&format!("a{i}")));
        let invites = invites.clone();
        tokio::spawn(async move {
            loop {
                let _ringing = phone.ringing(3600).await;
                let _ = invites.send((i, Instant::now()));
                phone.expect_end(3600).await;
            }
        });
    }
    std::fs::write(dir.join("hotline.toml"), config_text(dir, &uris))?;
    let config = config::load(dir.join("hotline.toml")).map_err(|e| e.to_string())?;
    let reloader = Reloader::new(None, config);
    let stack = CallStack::start(reloader.subscribe(), store.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tokens = vec![TokenConfig {
        name: "bench".into(),
        role: Role::Admin,
        token: Some(TOKEN.into()),
        token_env: None,
        agent_id: None,
        channel: None,
        unit: None,
    }];
    let rules = hotline::tickets::Rules::new(Default::default())?;
    tokio::spawn(api::serve_all(
        api::TicketsService::new(store.clone(), rules),
        AccessList::from_config(&tokens)?,
        None,
        Some(AgentDeskService::new(stack.desktops())),
        listener,
        None,
        std::future::pending(),
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    // Every agent ready, every desktop subscribed.
    let (offered, mut offered_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    for i in 0..AGENTS {
        let mut client = pb::agent_desk_client::AgentDeskClient::new(channel.clone());
        client
            .set_state(authed(pb::SetStateRequest {
                agent_id: format!("a{i}"),
                state: pb::DeskState::Ready.into(),
                ..Default::default()
            }))
            .await?;
        let mut stream = client
            .stream_events(authed(pb::StreamEventsRequest {
                agent_id: format!("a{i}"),
                resume_from: None,
            }))
            .await?
            .into_inner();
        let offered = offered.clone();
        tokio::spawn(async move {
            while let Ok(Some(event)) = stream.message().await {
                if matches!(event.event, Some(pb::agent_event::Event::Offered(_))) {
                    let _ = offered.send((i, Instant::now()));
                }
            }
        });
    }
    let greeting = Duration::from_millis(1500);
    let mut invite_to_offered = Vec::new();
    let mut key_to_offered = Vec::new();
    // Per call: (call number, heavy caller, key press -> Offered in ms).
    let mut per_call = Vec::new();
    for n in 0..sizes.offers {
        // Heavy callers and ordinary ones in turn.
        let heavy = n % 2 == 0;
        let caller = if heavy {
            phone_number(n as i64 % HEAVY_CALLERS + 1)
        } else {
            phone_number(HEAVY_CALLERS + 1 + n as i64 * 37 % (sizes.households - HEAVY_CALLERS))
        };
        let mut phone = Phone::new(stack.sip_addr(), &caller, "96777").await;
        if phone.call().await != 200 {
            return Err("the daemon did not answer a call".into());
        }
        tokio::time::sleep(greeting).await;
        let pressed = Instant::now();
        phone.press_inband('2').await;
        let (agent, offered_at) = tokio::time::timeout(Duration::from_secs(10), offered_rx.recv())
            .await?
            .ok_or("desktops gone")?;
        let (rung, invited_at) = tokio::time::timeout(Duration::from_secs(10), invites_rx.recv())
            .await?
            .ok_or("phones gone")?;
        if agent != rung {
            return Err(format!("desktop a{agent} offered, phone a{rung} rung").into());
        }
        let signed_ms = |later: Instant, earlier: Instant| {
            if later >= earlier {
                (later - earlier).as_secs_f64() * 1000.0
            } else {
                -((earlier - later).as_secs_f64() * 1000.0)
            }
        };
        invite_to_offered.push(signed_ms(offered_at, invited_at));
        key_to_offered.push(signed_ms(offered_at, pressed));
        per_call.push((n, heavy, signed_ms(offered_at, pressed)));
        phone.bye().await;
        // The agent is ready again before the next call.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, values) in [
        (
            "INVITE at the agent's phone -> Offered at the desktop",
            &mut invite_to_offered,
        ),
        ("key press -> Offered at the desktop", &mut key_to_offered),
    ] {
        values.sort_by(f64::total_cmp);
        println!(
            "{name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} offers, {AGENTS} desktops subscribed)",
            percentile(values, 0.5),
            percentile(values, 0.99),
            values.last().copied().unwrap_or_default(),
            values.len()
        );
    }
    // The tail, call by call: which calls were slow, and whose.
    per_call.sort_by(|a, b| b.2.total_cmp(&a.2));
    let slowest: Vec<String> = per_call
        .iter()
        .take(5)
        .map(|(n, heavy, ms)| {
            let kind = if *heavy { "heavy" } else { "ordinary" };
            format!("call {n} ({kind}) {ms:.1} ms")
        })
        .collect();
    println!("slowest key press -> Offered: {}", slowest.join(", "));
    for (query, plan) in store.screen_pop_plans(&phone_number(1)).await? {
        println!("plan of the pop's {query} query for the heaviest caller:\n{plan}\n");
    }
    stack.shutdown(Duration::from_millis(200)).await;
    Ok(())
}
