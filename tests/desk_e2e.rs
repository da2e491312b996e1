//! Agent desktops end to end: the call stack started in-process on loopback with a fresh
//! PostgreSQL database, called by the test telephone of `support/phone.rs`, agents' phones
//! answering as `AgentPhone`s, and desktops on `hotline.v1.AgentDesk` over a real tonic
//! client: the pop before the answer, ring-out to the next agent, pending NOT_READY after
//! wrap-up, wrap-up expiry, transfer to a queue with notes, wallboard counters, and resync
//! after a restart.

#[path = "support/phone.rs"]
#[allow(dead_code)] // The phones' audio helpers are for other binaries.
mod phone;
#[allow(dead_code)] // Shared test helpers: this binary uses the database and token part.
mod support;

use chrono::{TimeDelta, Utc};
use hotline::api::{self, AccessList, AgentDeskService, pb};
use hotline::call::{CallStack, Reloader};
use hotline::config::{self, BUILTIN_CALL_FLOW};
use hotline::media::prompts::PromptLibrary;
use hotline::store::{CallEntry, NewCustomer, Store};
use hotline::tickets::{Category, Status};
use pb::agent_desk_client::AgentDeskClient;
use pb::agent_event::Event;
use phone::{AgentPhone, Phone};
use sqlx::postgres::PgConnectOptions;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use support::{ADMIN, authed};
use tonic::transport::Channel as GrpcChannel;
use tonic::{Code, Streaming};

const CALLER: &str = "13812345678";
const HOTLINE: &str = "96777";

/// Disjoint RTP port ranges for the tests of this binary, which run in parallel.
static NEXT_PORTS: AtomicU16 = AtomicU16::new(33000);

fn prompts() -> &'static PromptLibrary {
    static PROMPTS: OnceLock<PromptLibrary> = OnceLock::new();
    PROMPTS.get_or_init(|| PromptLibrary::load(Path::new("sounds/zh-CN")).unwrap())
}

/// How long the greeting (shortened to one digit prompt) takes, plus a margin.
fn after_greeting() -> Duration {
    Duration::from_millis(prompts().get("digit_1").unwrap().frame_count() as u64 * 20 + 500)
}

/// The call stack and the AgentDesk API in front of it.
struct Desk {
    stack: CallStack,
    store: Store,
    db: PgConnectOptions,
    client: AgentDeskClient<GrpcChannel>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// The built-in flow with a one-digit greeting, no recording notice, the given agents
/// (`id` → (uri, queues)), and `extra` TOML (`[desk]` settings) appended.
fn config_text(dir: &Path, agents: &[(&str, &str, &str)], acd: &str, extra: &str) -> String {
    let ports = NEXT_PORTS.fetch_add(40, Ordering::SeqCst);
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
        "[daemon]\nstate_dir = \"{state}\"\nshutdown_grace_secs = 1\n\n\
         [sip]\nlisten = \"127.0.0.1:0\"\nt1_ms = 100\nt2_ms = 800\nt4_ms = 1000\n\n\
         [media]\nrtp_port_min = {ports}\nrtp_port_max = {max}\nsounds_dir = \"sounds/zh-CN\"\n\
         recordings_dir = \"{rec}\"\n\n{flow}\n{extra}\n",
        state = dir.join("var").display(),
        max = ports + 39,
        rec = dir.join("recordings").display(),
    )
}

impl Desk {
    async fn start(agents: &[(&str, &str, &str)], acd: &str, extra: &str) -> Desk {
        let (store, db) = support::fresh_database().await;
        Desk::start_on(store, db, agents, acd, extra).await
    }

    async fn start_on(
        store: Store,
        db: PgConnectOptions,
        agents: &[(&str, &str, &str)],
        acd: &str,
        extra: &str,
    ) -> Desk {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("hotline.toml");
        std::fs::write(&config_path, config_text(dir.path(), agents, acd, extra)).unwrap();
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
            api::TicketsService::new(store.clone(), rules),
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
            client: AgentDeskClient::new(channel),
            _stop: stop,
            _dir: dir,
        }
    }

    async fn phone(&self) -> Phone {
        Phone::new(self.stack.sip_addr(), CALLER, HOTLINE).await
    }

    async fn set(&mut self, agent: &str, state: pb::DeskState, reason: &str) -> pb::AgentStatus {
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

    async fn events(&mut self, agent: &str) -> Events {
        let request = pb::StreamEventsRequest {
            agent_id: agent.into(),
            resume_from: None,
        };
        let mut stream = self
            .client
            .stream_events(authed(ADMIN, request))
            .await
            .unwrap()
            .into_inner();
        let first = next_event(&mut stream).await;
        assert!(matches!(first.event, Some(Event::Snapshot(_))));
        Events { stream }
    }
}

struct Events {
    stream: Streaming<pb::AgentEvent>,
}

async fn next_event(stream: &mut Streaming<pb::AgentEvent>) -> pb::AgentEvent {
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
    async fn until<T>(&mut self, mut pick: impl FnMut(&pb::AgentEvent) -> Option<T>) -> T {
        loop {
            let event = next_event(&mut self.stream).await;
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    async fn state(&mut self, want: pb::DeskState) -> pb::StateChanged {
        self.until(|e| match &e.event {
            Some(Event::StateChanged(s)) if s.to == want as i32 => Some(s.clone()),
            _ => None,
        })
        .await
    }

    async fn offered(&mut self) -> (pb::AgentEvent, pb::Offered) {
        self.until(|e| match &e.event {
            Some(Event::Offered(o)) => Some((e.clone(), o.clone())),
            _ => None,
        })
        .await
    }
}

fn unix_ms(at: &prost_types::Timestamp) -> i64 {
    at.seconds * 1000 + i64::from(at.nanos) / 1_000_000
}

/// The caller's household, 3 earlier calls and 2 open tickets (plus a closed one).
async fn seed_caller(store: &Store) {
    let household = store
        .create_customer(&NewCustomer {
            account_number: "8800123".into(),
            name: "王秀英".into(),
            phone_numbers: vec![CALLER.into()],
            address: "幸福路1号".into(),
            area: "天河".into(),
            special_group: None,
        })
        .await
        .unwrap();
    let calls = (1..=3)
        .map(|i| {
            let id: &'static str = ["e1", "e2", "e3"][i - 1];
            (
                id,
                vec![CallEntry::Arrived {
                    caller: CALLER.into(),
                    called: HOTLINE.into(),
                    at: Utc::now() - TimeDelta::days(i as i64),
                }],
            )
        })
        .collect();
    support::journal_calls(store, calls).await;
    for (caller, customer) in [(CALLER, None), ("02588880000", Some(household.id))] {
        store
            .create_ticket(&support::new_ticket(
                caller,
                customer,
                Status::Dispatched,
                Category::Repair,
            ))
            .await
            .unwrap();
    }
    store
        .create_ticket(&support::new_ticket(
            CALLER,
            None,
            Status::Closed,
            Category::Query,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_pop_reaches_the_desktop_before_the_agent_answers() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let mut desk = Desk::start(&[("1001", &uri, "general")], "ring_timeout_secs = 15", "").await;
    seed_caller(&desk.store).await;
    desk.set("1001", pb::DeskState::Ready, "").await;
    let mut events = desk.events("1001").await;
    let mut phone = desk.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(after_greeting()).await;
    phone.press_inband('2').await;
    let ringing = agent.ringing(10).await;
    let invite_at = Utc::now().timestamp_millis();
    let (event, offered) = events.offered().await;
    assert!(
        unix_ms(event.at.as_ref().unwrap()) <= invite_at,
        "Offered at {:?}, INVITE received at {invite_at}",
        event.at
    );
    let pop = offered.screen_pop.expect("pop");
    assert_eq!(pop.caller_number, CALLER);
    assert_eq!(pop.dialled_number, HOTLINE);
    assert_eq!(pop.queue, "general");
    assert_eq!(
        pop.household.as_ref().map(|h| h.name.as_str()),
        Some("王秀英")
    );
    let earlier: Vec<&str> = pop.last_calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(earlier, ["e1", "e2", "e3"]);
    assert_eq!(pop.open_tickets.len(), 2, "{:?}", pop.open_tickets);
    assert!(!pop.draft_ticket.is_empty(), "the call's draft is named");
    assert!(
        pop.ivr_path
            .iter()
            .any(|s| s.node == "menu" && s.key == "2"),
        "{:?}",
        pop.ivr_path
    );
    agent.answer(&ringing).await;
    events.state(pb::DeskState::OnCall).await;
    events
        .until(|e| matches!(e.event, Some(Event::Connected(_))).then_some(()))
        .await;
    assert_eq!(phone.bye().await, 200);
    assert_eq!(agent.expect_end(5).await, "BYE");
    events
        .until(|e| matches!(e.event, Some(Event::Ended(_))).then_some(()))
        .await;
    events.state(pb::DeskState::WrapUp).await;
}

#[tokio::test]
async fn an_offer_that_rings_out_goes_to_the_next_agent() {
    let first = AgentPhone::bind().await;
    let second = AgentPhone::bind().await;
    let (uri1, uri2) = (first.uri("1001"), second.uri("1002"));
    let mut desk = Desk::start(
        &[("1001", &uri1, "general"), ("1002", &uri2, "general")],
        "ring_timeout_secs = 1",
        "",
    )
    .await;
    // 1001 is ready first: idle longest, rung first.
    desk.set("1001", pb::DeskState::Ready, "").await;
    desk.set("1002", pb::DeskState::Ready, "").await;
    let mut events1 = desk.events("1001").await;
    let mut events2 = desk.events("1002").await;
    let mut phone = desk.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(after_greeting()).await;
    phone.press_inband('2').await;
    let _ignored = first.ringing(10).await;
    events1.offered().await;
    let withdrawn = events1
        .until(|e| match &e.event {
            Some(Event::OfferWithdrawn(w)) => Some(w.reason()),
            _ => None,
        })
        .await;
    assert_eq!(withdrawn, pb::WithdrawReason::RingTimeout);
    let not_ready = events1.state(pb::DeskState::NotReady).await;
    assert_eq!(not_ready.reason_code, "ring_no_answer");
    let ringing = second.ringing(10).await;
    let (_, offered) = events2.offered().await;
    assert_eq!(offered.screen_pop.unwrap().caller_number, CALLER);
    second.answer(&ringing).await;
    events2.state(pb::DeskState::OnCall).await;
    assert_eq!(phone.bye().await, 200);
}

#[tokio::test]
async fn not_ready_asked_during_a_call_applies_after_wrap_up_and_wrap_up_expires() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let mut desk = Desk::start(
        &[("1001", &uri, "general")],
        "ring_timeout_secs = 15",
        "[desk]\nwrap_up_secs = 1\n",
    )
    .await;
    let ready = desk.set("1001", pb::DeskState::Ready, "").await;
    let mut events = desk.events("1001").await;
    for round in 0..2 {
        let mut phone = desk.phone().await;
        assert_eq!(phone.call().await, 200);
        tokio::time::sleep(after_greeting()).await;
        phone.press_inband('2').await;
        let ringing = agent.ringing(10).await;
        agent.answer(&ringing).await;
        events.state(pb::DeskState::OnCall).await;
        if round == 0 {
            // A stale version is refused; the current one makes NOT_READY pending.
            let stale = desk
                .client
                .set_state(authed(
                    ADMIN,
                    pb::SetStateRequest {
                        agent_id: "1001".into(),
                        state: pb::DeskState::NotReady.into(),
                        reason_code: "break".into(),
                        expected_version: Some(ready.version),
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(stale.code(), Code::Aborted);
            let pending = desk.set("1001", pb::DeskState::NotReady, "break").await;
            assert_eq!(pending.state(), pb::DeskState::OnCall);
            assert_eq!(pending.pending_state(), pb::DeskState::NotReady);
        }
        assert_eq!(phone.bye().await, 200);
        assert_eq!(agent.expect_end(5).await, "BYE");
        events.state(pb::DeskState::WrapUp).await;
        let after = events
            .until(|e| match &e.event {
                Some(Event::StateChanged(s)) if s.from == pb::DeskState::WrapUp as i32 => {
                    Some(s.clone())
                }
                _ => None,
            })
            .await;
        if round == 0 {
            assert_eq!(
                (after.to(), after.reason_code.as_str()),
                (pb::DeskState::NotReady, "break")
            );
            desk.set("1001", pb::DeskState::Ready, "").await;
        } else {
            assert_eq!(
                after.to(),
                pb::DeskState::Ready,
                "wrap-up expired into READY"
            );
        }
    }
}

#[tokio::test]
async fn a_transfer_to_another_queue_carries_the_notes_to_the_next_agent() {
    let first = AgentPhone::bind().await;
    let second = AgentPhone::bind().await;
    let (uri1, uri2) = (first.uri("1001"), second.uri("1002"));
    let mut desk = Desk::start(
        &[("1001", &uri1, "general"), ("1002", &uri2, "emergency")],
        "ring_timeout_secs = 15",
        "",
    )
    .await;
    desk.set("1001", pb::DeskState::Ready, "").await;
    desk.set("1002", pb::DeskState::Ready, "").await;
    let mut events1 = desk.events("1001").await;
    let mut events2 = desk.events("1002").await;
    let mut phone = desk.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(after_greeting()).await;
    phone.press_inband('2').await;
    let ringing = first.ringing(10).await;
    let (_, offered) = events1.offered().await;
    first.answer(&ringing).await;
    events1.state(pb::DeskState::OnCall).await;
    desk.client
        .transfer_call(authed(
            ADMIN,
            pb::TransferCallRequest {
                agent_id: "1001".into(),
                call_id: offered.call_id.clone(),
                to: Some(pb::transfer_call_request::To::Queue("emergency".into())),
                notes: "smells gas in the kitchen".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(first.expect_end(5).await, "BYE");
    let ringing = second.ringing(10).await;
    let (_, handed) = events2.offered().await;
    assert_eq!(handed.call_id, offered.call_id);
    assert_eq!(handed.handover.len(), 1);
    assert_eq!(handed.handover[0].notes, "smells gas in the kitchen");
    assert_eq!(handed.handover[0].from_agent, "1001");
    second.answer(&ringing).await;
    events2.state(pb::DeskState::OnCall).await;
    events1.state(pb::DeskState::WrapUp).await;
    assert_eq!(phone.bye().await, 200);
}

#[tokio::test]
async fn the_wallboard_counts_the_calls_placed() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let mut desk = Desk::start(
        &[("1001", &uri, "general")],
        "ring_timeout_secs = 15",
        "[desk]\nwrap_up_secs = 0\nshort_abandon_secs = 1\n",
    )
    .await;
    desk.set("1001", pb::DeskState::Ready, "").await;
    let mut board = desk
        .client
        .stream_wallboard(authed(ADMIN, pb::StreamWallboardRequest {}))
        .await
        .unwrap()
        .into_inner();
    // 2 answered at once, then (the agent not ready) 1 hang-up within 1 s and 1 after 2 s.
    for _ in 0..2 {
        let mut phone = desk.phone().await;
        assert_eq!(phone.call().await, 200);
        tokio::time::sleep(after_greeting()).await;
        phone.press_inband('2').await;
        let ringing = agent.ringing(10).await;
        agent.answer(&ringing).await;
        assert_eq!(phone.bye().await, 200);
        assert_eq!(agent.expect_end(5).await, "BYE");
    }
    desk.set("1001", pb::DeskState::NotReady, "break").await;
    for wait in [Duration::from_millis(200), Duration::from_millis(2000)] {
        let mut phone = desk.phone().await;
        assert_eq!(phone.call().await, 200);
        tokio::time::sleep(after_greeting()).await;
        phone.press_inband('2').await;
        tokio::time::sleep(wait).await;
        assert_eq!(phone.bye().await, 200);
    }
    let lane = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let update = board.message().await.unwrap().unwrap();
            if let Some(lane) = update.lanes.into_iter().find(|l| l.lane == "general")
                && lane.abandoned == 2
            {
                return lane;
            }
        }
    })
    .await
    .expect("the wallboard counted both abandons");
    assert_eq!((lane.offered, lane.answered), (4, 2));
    assert_eq!(lane.answered_within_threshold, 2);
    assert_eq!((lane.abandoned, lane.short_abandoned), (2, 1));
    assert_eq!(lane.service_level, Some(100.0));
    assert_eq!(lane.service_level2, Some(100.0));
    assert_eq!(lane.waiting, 0);
}

#[tokio::test]
async fn a_desktop_resuming_after_a_restart_is_told_to_resync() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let agents = [("1001", uri.as_str(), "general")];
    let mut desk = Desk::start(&agents, "ring_timeout_secs = 15", "").await;
    let ready = desk.set("1001", pb::DeskState::Ready, "").await;
    assert_eq!(ready.version, 1);
    let position = {
        let request = pb::StreamEventsRequest {
            agent_id: "1001".into(),
            resume_from: None,
        };
        let mut stream = desk
            .client
            .stream_events(authed(ADMIN, request))
            .await
            .unwrap()
            .into_inner();
        let snapshot = next_event(&mut stream).await;
        (snapshot.epoch, snapshot.seq)
    };
    let Desk {
        stack, store, db, ..
    } = desk;
    stack.shutdown(Duration::from_millis(100)).await;
    let mut desk = Desk::start_on(store, db, &agents, "ring_timeout_secs = 15", "").await;
    let request = pb::StreamEventsRequest {
        agent_id: "1001".into(),
        resume_from: Some(pb::ResumeFrom {
            epoch: position.0,
            seq: position.1,
        }),
    };
    let mut stream = desk
        .client
        .stream_events(authed(ADMIN, request))
        .await
        .unwrap()
        .into_inner();
    let resync = next_event(&mut stream).await;
    let Some(Event::ResyncRequired(r)) = resync.event else {
        panic!("{resync:?}");
    };
    assert_eq!(r.reason(), pb::ResyncReason::EpochChanged);
    let snapshot = next_event(&mut stream).await;
    let Some(Event::Snapshot(s)) = snapshot.event else {
        panic!("{snapshot:?}");
    };
    assert_ne!(snapshot.epoch, position.0);
    assert_eq!(
        s.status.unwrap().state(),
        pb::DeskState::LoggedOut,
        "agents start logged out"
    );
}
