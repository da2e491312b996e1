//! Test support: one throwaway PostgreSQL cluster per test binary (the daemon's own
//! embedded-cluster code, started under /tmp), a fresh migrated database per test, and the
//! real gRPC server (`Tickets` and `Admin`) on a loopback port with a fixed set of tokens.

use hotline::api::{self, AccessList, TicketsService, pb};
use hotline::config::{Role, TokenConfig};
use hotline::store::embedded::{Durability, EmbeddedPostgres};
use hotline::store::{Store, StoreOptions};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use tonic::Request;
use tonic::transport::Channel;

pub const ADMIN: &str = "admin-token-0123456789";
pub const AGENT: &str = "agent-token-0123456789";
pub const WECHAT: &str = "wechat-token-0123456789";
/// Unit `north`'s desk.
pub const NORTH: &str = "north-unit-token-0123456789";
/// Unit `south`'s desk.
pub const SOUTH: &str = "south-unit-token-0123456789";
const TEMP_PREFIX: &str = "hotline-pgtest-";

/// The tokens every test server accepts.
pub fn tokens() -> Vec<TokenConfig> {
    let token = |name: &str, role, secret: &str| TokenConfig {
        name: name.into(),
        role,
        token: Some(secret.into()),
        token_env: None,
        agent_id: None,
        channel: None,
        unit: None,
    };
    vec![
        token("ops", Role::Admin, ADMIN),
        TokenConfig {
            agent_id: Some("1001".into()),
            ..token("agent 1001", Role::Agent, AGENT)
        },
        TokenConfig {
            channel: Some("wechat".into()),
            ..token("wechat", Role::Integration, WECHAT)
        },
        TokenConfig {
            unit: Some("north".into()),
            ..token("north desk", Role::Unit, NORTH)
        },
        TokenConfig {
            unit: Some("south".into()),
            ..token("south desk", Role::Unit, SOUTH)
        },
    ]
}

/// A folder under /tmp the postgres user can reach (not under /root).
pub fn reachable_temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Removes clusters of earlier runs whose server is gone (their process could not).
fn sweep_stale_clusters() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if old && !server_alive(&path.join("pg")) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Whether the cluster in `root` has a live server (per its `postmaster.pid`).
pub fn server_alive(root: &Path) -> bool {
    std::fs::read_to_string(root.join("data/postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
        .is_some_and(process_alive)
}

pub fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// The shared cluster's `postgres` database. The cluster is started by a thread that never
/// ends, so it lives exactly as long as this test process (parent-death signal).
fn cluster() -> &'static PgConnectOptions {
    static CLUSTER: OnceLock<PgConnectOptions> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        sweep_stale_clusters();
        let root: PathBuf = reachable_temp_dir().keep().join("pg");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            match runtime.block_on(EmbeddedPostgres::start(&root, Durability::Throwaway)) {
                Ok(cluster) => {
                    tx.send(Ok(cluster.connect_options("postgres"))).unwrap();
                    let _keep_running = cluster;
                    loop {
                        std::thread::park();
                    }
                }
                Err(err) => tx.send(Err(err.to_string())).unwrap(),
            }
        });
        rx.recv().unwrap().unwrap()
    })
}

/// A store on a freshly created, migrated database of its own.
pub async fn fresh_store() -> Store {
    fresh_database().await.0
}

/// [`fresh_store`] plus the database's connect options, for tests that read tables directly.
pub async fn fresh_database() -> (Store, PgConnectOptions) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = cluster();
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = PgConnection::connect_with(base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let options = base.clone().database(&name);
    (store_on(options.clone()).await, options)
}

pub async fn store_on(connect: PgConnectOptions) -> Store {
    let options = StoreOptions {
        max_connections: 5,
        acquire_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let store = Store::connect(connect, &options).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// The real gRPC server on a loopback port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(store: Store) -> TestServer {
        TestServer::start_with_tls(store, None).await
    }

    pub async fn start_with_tls(
        store: Store,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> TestServer {
        let rules = hotline::tickets::Rules::new(Default::default()).unwrap();
        TestServer::start_service(TicketsService::new(store, rules), tls).await
    }

    /// Serves `service` (its own rules and clock) over plaintext loopback.
    pub async fn start_service(
        service: TicketsService,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> TestServer {
        let store = service.store().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let access = AccessList::from_config(&tokens()).unwrap();
        // hotline.v1.Admin too, as the daemon serves it (no TTS, a reload that changes
        // nothing, no call handling).
        let announcer = hotline::ops::Announcer::new(
            store.clone(),
            std::env::temp_dir().join("hotline-test-announcements"),
            hotline::config::AnnouncementsConfig::default(),
        );
        let reload = api::reload_hook(|| async { Ok(String::new()) });
        let admin = api::AdminService::new(announcer, reload);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(api::serve(
            service,
            access,
            Some(admin),
            listener,
            tls,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            store,
            stop: Some(stop),
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> pb::tickets_client::TicketsClient<Channel> {
        pb::tickets_client::TicketsClient::new(self.channel().await)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `message` with `authorization: Bearer <token>`.
/// Writes call rows the way the daemon does, through the call journal: each call's entries
/// in order, and returns once they are all in PostgreSQL.
pub async fn journal_calls(store: &Store, calls: Vec<(&str, Vec<hotline::store::CallEntry>)>) {
    let spool = tempfile::tempdir().unwrap();
    let rules = std::sync::Arc::new(hotline::config::Config::default().rules().unwrap());
    let (journal, writer) =
        hotline::store::CallJournal::open(spool.path(), store.clone(), rules).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(writer.run(async {
        let _ = stopped.await;
    }));
    for (call_id, entries) in calls {
        for entry in entries {
            journal.record(call_id, entry);
        }
    }
    journal.flush().await;
    let _ = stop.send(());
    writer.await.unwrap();
}

pub fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A valid hotline repair ticket to create.
pub fn repair(caller_number: &str, description: &str) -> pb::Ticket {
    pb::Ticket {
        channel: pb::Channel::Hotline as i32,
        category: pb::Category::Repair as i32,
        caller_name: "王女士".into(),
        caller_number: caller_number.into(),
        caller_address: "幸福路12号3单元501".into(),
        description: description.into(),
        ..Default::default()
    }
}

pub fn create(ticket: pb::Ticket, request_id: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        ticket: Some(ticket),
        request_id: request_id.into(),
    }
}
