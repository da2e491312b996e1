//! The real `hotlined` binary for the real-peer tests: one daemon per test, on free loopback
//! ports, with a config file written from the built-in call flow (changed as the test says),
//! on a fresh database of the test cluster (`support::fresh_database`), so a test can read
//! and lock tables. Its log goes to a file that failures print. Killed when dropped.
//! Included with `#[path]`; needs `mod support` in the including test.

use hotline::api::pb;
use hotline::api::pb::tickets_client::TicketsClient;
use sqlx::postgres::PgConnectOptions;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::process::Child;
use tokio::time::Instant;
use tonic::transport::Channel;

/// The admin token of every test daemon.
pub const ADMIN_TOKEN: &str = "peers-admin-token-0123456789";
/// Disjoint RTP port ranges for the daemons of one test binary (tests run in parallel).
static NEXT_RTP_PORTS: AtomicU16 = AtomicU16::new(42000);
const RTP_PORTS_PER_DAEMON: u16 = 40;

pub struct Hotlined {
    child: Child,
    pub sip: SocketAddr,
    /// The gRPC API.
    pub grpc: SocketAddr,
    /// The daemon's database, for reading and locking tables directly.
    pub db: PgConnectOptions,
    folder: tempfile::TempDir,
}

impl Hotlined {
    /// Starts the daemon with the built-in call flow passed through `flow`, and `sip` as
    /// extra `[sip]` lines. Returns once it serves calls and the API.
    pub async fn start(flow: impl Fn(String) -> String, sip: &str) -> Hotlined {
        Hotlined::start_with_daemon("", flow, sip).await
    }

    /// [`Hotlined::start`] with `daemon` as extra `[daemon]` lines (e.g. `time_zone`).
    pub async fn start_with_daemon(
        daemon: &str,
        flow: impl Fn(String) -> String,
        sip: &str,
    ) -> Hotlined {
        let mut folder = tempfile::tempdir().unwrap();
        let (_store, mut db) = crate::support::fresh_database().await;
        // A free port found by binding and letting go can be taken by a parallel test before
        // the daemon binds it: then start again on other ports.
        for attempt in 1.. {
            let sip_port = free_port_for_udp_and_tcp();
            let grpc_port = free_port_for_udp_and_tcp();
            let rtp = NEXT_RTP_PORTS.fetch_add(RTP_PORTS_PER_DAEMON, Ordering::SeqCst);
            let config = format!(
                "[daemon]\nstate_dir = \"{state}\"\nshutdown_grace_secs = 1\n{daemon}\n\n\
                 [log]\nfilter = \"hotline=debug,info\"\n\n\
                 [database]\nurl = \"{url}\"\nmax_connections = 5\n\n\
                 [grpc]\nlisten = \"127.0.0.1:{grpc_port}\"\n\n\
                 [[grpc.tokens]]\nname = \"peers test\"\nrole = \"admin\"\ntoken = \"{ADMIN_TOKEN}\"\n\n\
                 [sip]\nlisten = \"127.0.0.1:{sip_port}\"\n{sip}\n\n\
                 [media]\nrtp_port_min = {rtp}\nrtp_port_max = {rtp_max}\n\
                 sounds_dir = \"{sounds}\"\nrecordings_dir = \"{recordings}\"\n\n{flow}",
                state = folder.path().join("var").display(),
                url = database_url(&db),
                rtp_max = rtp + RTP_PORTS_PER_DAEMON - 1,
                sounds = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("sounds/zh-CN")
                    .display(),
                recordings = folder.path().join("recordings").display(),
                flow = flow(hotline::config::BUILTIN_CALL_FLOW.to_owned()),
            );
            let config_path = folder.path().join("hotline.toml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(folder.path().join("hotlined.log")).unwrap();
            let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
                .arg("--config")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut daemon = Hotlined {
                child,
                sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
                grpc: SocketAddr::from(([127, 0, 0, 1], grpc_port)),
                db,
                folder,
            };
            if attempt < 3
                && !daemon.serving().await
                && daemon.log().contains("Address already in use")
            {
                let Hotlined {
                    db: same_db,
                    folder: same_folder,
                    ..
                } = daemon;
                (db, folder) = (same_db, same_folder);
                continue;
            }
            daemon.wait_until_serving().await;
            return daemon;
        }
        unreachable!("the loop returns")
    }

    /// Waits until the daemon serves (`true`), or has exited or not served in 30 s.
    async fn serving(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains("gRPC API serving") {
            if !self.running() || Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains("gRPC API serving") {
            assert!(self.running(), "hotlined exited at start:\n{}", self.log());
            assert!(
                Instant::now() < deadline,
                "hotlined not serving after 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The daemon's process id (while it runs).
    #[allow(dead_code)] // Only some of the binaries that include this file look at it.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the daemon process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("hotlined.log")).unwrap_or_default()
    }

    /// Tickets of `caller_number` (every ticket when empty), over the daemon's gRPC API.
    pub async fn tickets(&self, caller_number: &str) -> Vec<pb::Ticket> {
        let channel = Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut request = tonic::Request::new(pb::ListTicketsRequest {
            caller_number: caller_number.into(),
            page_size: 100,
            ..Default::default()
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
        );
        TicketsClient::new(channel)
            .list_tickets(request)
            .await
            .unwrap_or_else(|status| panic!("ListTickets: {status}\n{}", self.log()))
            .into_inner()
            .tickets
    }

    /// The draft ticket of `caller_number`'s one call: it is written a moment after the IVR
    /// decides, so this waits for it (up to 10 s).
    pub async fn only_ticket(&self, caller_number: &str) -> pb::Ticket {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut tickets = self.tickets(caller_number).await;
            match tickets.len() {
                0 if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                1 => return tickets.remove(0),
                n => panic!(
                    "{n} tickets for {caller_number}, expected one: {tickets:#?}\n{}",
                    self.log()
                ),
            }
        }
    }
}

/// `postgres://` URL of a unix-socket database of the test cluster.
fn database_url(db: &PgConnectOptions) -> String {
    let socket = db
        .get_socket()
        .expect("the test cluster listens on a socket");
    format!(
        "postgres://{user}@localhost:{port}/{name}?host={socket}",
        user = db.get_username(),
        port = db.get_port(),
        name = db.get_database().expect("a database name"),
        socket = socket.display(),
    )
}

/// A loopback port free for both UDP and TCP (the daemon's SIP listens on both).
fn free_port_for_udp_and_tcp() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
