//! The agent-desktop rig shared by `desk_e2e.rs` and `desk_load.rs`: the call stack started
//! in-process on loopback with a fresh PostgreSQL database (the built-in flow with a one-digit
//! greeting and the agents given), the Tickets and AgentDesk APIs in front of it on a real
//! tonic channel, and readers of a desktop's event stream. Included with `#[path]` beside
//! `mod support` and `#[path = "support/phone.rs"] mod phone`.

use crate::phone::{AgentPhone, Phone, Ringing};
use crate::support::{self, ADMIN, authed};
use hotline::api::{self, AccessList, AgentDeskService, pb};
use hotline::call::{CallStack, Reloader};
use hotline::config::{self, BUILTIN_CALL_FLOW};
use hotline::media::prompts::PromptLibrary;
use hotline::store::Store;
use pb::agent_desk_client::AgentDeskClient;
use pb::agent_event::Event;
use pb::tickets_client::TicketsClient;
use sqlx::postgres::PgConnectOptions;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tonic::Streaming;
use tonic::transport::Channel as GrpcChannel;

pub const CALLER: &str = "13812345678";
pub const HOTLINE: &str = "96777";

/// Disjoint RTP port ranges for the tests of this binary, which run in parallel.
static NEXT_PORTS: AtomicU16 = AtomicU16::new(33000);

pub fn prompts() -> &'static PromptLibrary {
    static PROMPTS: OnceLock<PromptLibrary> = OnceLock::new();
    PROMPTS.get_or_init(|| PromptLibrary::load(Path::new("sounds/zh-CN")).unwrap())
}

/// How long the greeting (shortened to one digit prompt) takes, plus a margin.
pub fn after_greeting() -> Duration {
    Duration::from_millis(prompts().get("digit_1").unwrap().frame_count() as u64 * 20 + 500)
}

/// The call stack and the AgentDesk API in front of it.
pub struct Desk {
    pub stack: CallStack,
    pub store: Store,
    pub db: PgConnectOptions,
    pub client: AgentDeskClient<GrpcChannel>,
    pub tickets: TicketsClient<GrpcChannel>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// The built-in flow with a one-digit greeting, no recording notice, the given agents
/// (`id` → (uri, queues)), RTP ports `rtp` (first, last) and `extra` TOML (`[desk]`
/// settings) appended; lines of `extra` that start `daemon.` (`daemon.max_queue_wait_secs =
/// 2`) go to the `[daemon]` table instead.
fn config_text(
    dir: &Path,
    agents: &[(&str, &str, &str)],
    acd: &str,
    extra: &str,
    rtp: (u16, u16),
) -> String {
    let (daemon, extra): (Vec<&str>, Vec<&str>) =
        extra.lines().partition(|l| l.starts_with("daemon."));
    let daemon: String = daemon
        .iter()
        .map(|l| format!("{}\n", l.strip_prefix("daemon.").unwrap_or(l)))
        .collect();
    let extra = extra.join("\n");
    let agents: String = agents
        .iter()
        .map(|(id, uri, queue)| {
            format!("[acd.agents.{id}]\nuri = \"{uri}\"\nqueues = [\"{queue}\"]\n\n")
        })
        .collect();
    let flow = BUILTIN_CALL_FLOW
        .replace("greeting = [\"welcome\"]", "greeting = [\"digit_1\"]")
        .replace("[ivr.leak]\n", "[ivr.leak]\nspeak_after_greeting = false\n")
        .replace(
            "policy = \"announce\"",
            "policy = \"off\"\nresponse_window_secs = 1",
        )
        .replace(
            "[acd]\nring_timeout_secs = 15\n",
            &format!("[acd]\n{acd}\n"),
        )
        .replace("[acd.agents]", &agents);
    format!(
        "[daemon]\nstate_dir = \"{state}\"\nshutdown_grace_secs = 1\n{daemon}\n\
         [sip]\nlisten = \"127.0.0.1:0\"\nt1_ms = 100\nt2_ms = 800\nt4_ms = 1000\n\n\
         [media]\nrtp_port_min = {min}\nrtp_port_max = {max}\nsounds_dir = \"sounds/zh-CN\"\n\
         recordings_dir = \"{rec}\"\n\n{flow}\n{extra}\n",
        state = dir.join("var").display(),
        min = rtp.0,
        max = rtp.1,
        rec = dir.join("recordings").display(),
    )
}

impl Desk {
    pub async fn start(agents: &[(&str, &str, &str)], acd: &str, extra: &str) -> Desk {
        let (store, db) = support::fresh_database().await;
        Desk::start_on(store, db, agents, acd, extra).await
    }

    pub async fn start_on(
        store: Store,
        db: PgConnectOptions,
        agents: &[(&str, &str, &str)],
        acd: &str,
        extra: &str,
    ) -> Desk {
        let ports = NEXT_PORTS.fetch_add(40, Ordering::SeqCst);
        Desk::start_with_rtp(store, db, agents, acd, extra, (ports, ports + 39)).await
    }

    /// [`Desk::start_on`] with the RTP ports `rtp` (first, last).
    pub async fn start_with_rtp(
        store: Store,
        db: PgConnectOptions,
        agents: &[(&str, &str, &str)],
        acd: &str,
        extra: &str,
        rtp: (u16, u16),
    ) -> Desk {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("hotline.toml");
        std::fs::write(
            &config_path,
            config_text(dir.path(), agents, acd, extra, rtp),
        )
        .unwrap();
        let config = config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let reloader = Reloader::new(Some(config_path), config);
        let stack = CallStack::start(reloader.subscribe(), store.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rules = hotline::tickets::Rules::new(Default::default()).unwrap();
        tokio::spawn(api::serve_all(
            api::TicketsService::new(store.clone(), rules)
                .with_ticket_changes(stack.desktops().ticket_changes()),
            AccessList::from_config(&support::tokens()).unwrap(),
            None,
            Some(AgentDeskService::new(stack.desktops())),
            listener,
            None,
            async {
                let _ = stopped.await;
            },
        ));
        let channel = GrpcChannel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Desk {
            stack,
            store,
            db,
            client: AgentDeskClient::new(channel.clone()),
            tickets: TicketsClient::new(channel),
            _stop: stop,
            _dir: dir,
        }
    }

    /// A connection to the database, for reading the tables.
    pub async fn connect(&self) -> sqlx::PgConnection {
        <sqlx::PgConnection as sqlx::Connection>::connect_with(&self.db)
            .await
            .unwrap()
    }

    /// Waits (20 s at most) until no call, leg, media session, port, timer, SIP call or
    /// transaction is left; SIP transactions linger for their timers (64 × T1 at most).
    pub async fn wait_idle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let last = self.stack.counts();
            let sip = last.sip.endpoint;
            let idle = last.calls == 0
                && last.outgoing_legs == 0
                && last.media_sessions == 0
                && last.port_leases == 0
                && last.timers == 0
                && sip.calls == 0
                && sip.session_timers == 0
                && sip.transactions() == 0;
            if idle {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "resources left after the calls ended: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn phone(&self) -> Phone {
        Phone::new(self.stack.sip_addr(), CALLER, HOTLINE).await
    }

    pub async fn set(
        &mut self,
        agent: &str,
        state: pb::DeskState,
        reason: &str,
    ) -> pb::AgentStatus {
        self.client
            .set_state(authed(
                ADMIN,
                pb::SetStateRequest {
                    agent_id: agent.into(),
                    state: state.into(),
                    reason_code: reason.into(),
                    expected_version: None,
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Agent 1001 (an `AgentPhone`, the general queue) READY with its desktop subscribed.
    pub async fn one_agent() -> (Desk, AgentPhone, Events) {
        let agent = AgentPhone::bind().await;
        let uri = agent.uri("1001");
        let mut desk =
            Desk::start(&[("1001", &uri, "general")], "ring_timeout_secs = 15", "").await;
        desk.set("1001", pb::DeskState::Ready, "").await;
        let events = desk.events("1001").await;
        (desk, agent, events)
    }

    /// `agent`'s event stream (admin token), resuming from `(epoch, seq)` when given.
    pub async fn stream(
        &mut self,
        agent: &str,
        resume: Option<(u64, u64)>,
    ) -> Streaming<pb::AgentEvent> {
        let request = pb::StreamEventsRequest {
            agent_id: agent.into(),
            resume_from: resume.map(|(epoch, seq)| pb::ResumeFrom { epoch, seq }),
        };
        self.client
            .stream_events(authed(ADMIN, request))
            .await
            .unwrap()
            .into_inner()
    }

    /// A caller pressing 2 (the general queue), offered to the agent of `phone` and
    /// answered there: the caller's phone, the agent's INVITE, the desktop's `Offered`.
    pub async fn answered_call(
        &mut self,
        phone: &AgentPhone,
        events: &mut Events,
    ) -> (Phone, Ringing, pb::Offered) {
        let mut caller = self.phone().await;
        assert_eq!(caller.call().await, 200);
        tokio::time::sleep(after_greeting()).await;
        caller.press_inband('2').await;
        let ringing = phone.ringing(10).await;
        let (_, offered) = events.offered().await;
        phone.answer(&ringing).await;
        events.state(pb::DeskState::OnCall).await;
        (caller, ringing, offered)
    }

    pub async fn events(&mut self, agent: &str) -> Events {
        let mut stream = self.stream(agent, None).await;
        let first = next_event(&mut stream).await;
        assert!(matches!(first.event, Some(Event::Snapshot(_))));
        Events { stream }
    }
}

pub struct Events {
    pub stream: Streaming<pb::AgentEvent>,
}

pub async fn next_event(stream: &mut Streaming<pb::AgentEvent>) -> pb::AgentEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream goes on");
        if !matches!(event.event, Some(Event::Heartbeat(_))) {
            return event;
        }
    }
}

impl Events {
    /// Skips to the first event `pick` accepts.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&pb::AgentEvent) -> Option<T>) -> T {
        loop {
            let event = next_event(&mut self.stream).await;
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    pub async fn state(&mut self, want: pb::DeskState) -> pb::StateChanged {
        self.until(|e| match &e.event {
            Some(Event::StateChanged(s)) if s.to == want as i32 => Some(s.clone()),
            _ => None,
        })
        .await
    }

    pub async fn offered(&mut self) -> (pb::AgentEvent, pb::Offered) {
        self.until(|e| match &e.event {
            Some(Event::Offered(o)) => Some((e.clone(), o.clone())),
            _ => None,
        })
        .await
    }
}

pub fn unix_ms(at: &prost_types::Timestamp) -> i64 {
    at.seconds * 1000 + i64::from(at.nanos) / 1_000_000
}
