//! The rules rig shared by the ticket-rules API tests: the real server on an adjustable
//! clock over a fresh PostgreSQL database with units `north` and `south`, a tonic client,
//! and helpers for each transition. Included with `#[path]` beside `mod support`.

use crate::support::{AGENT, NORTH, TestServer, authed, create, fresh_store, repair};
use chrono::{DateTime, TimeZone, Utc};
use hotline::api::{OverdueWatcher, TicketsService, pb};
use hotline::tickets::calendar::CalendarConfig;
use hotline::tickets::{Rules, RulesConfig};
use std::sync::{Arc, Mutex};
use tonic::transport::Channel;

pub type Client = pb::tickets_client::TicketsClient<Channel>;

/// Shanghai local time.
pub fn sh(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

pub fn time(at: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let at = at.as_ref().expect("timestamp set");
    DateTime::from_timestamp(at.seconds, 0).unwrap()
}

/// The official 2026 calendar as the example configuration ships it.
pub fn shipped_calendar() -> CalendarConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/hotline.toml");
    let example: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    example
        .get("calendar")
        .or_else(|| example.get("tickets").and_then(|t| t.get("calendar")))
        .expect("the example configuration has a calendar")
        .clone()
        .try_into()
        .unwrap()
}

/// The default rules over the official 2026 calendar.
pub fn rules_2026() -> Rules {
    rules_2026_with(RulesConfig::default())
}

/// `config` over the official 2026 calendar.
pub fn rules_2026_with(mut config: RulesConfig) -> Rules {
    config.calendar = shipped_calendar();
    Rules::new(config).unwrap()
}

/// A server on an adjustable clock, with units `north` and `south`.
pub struct Rig {
    pub server: TestServer,
    clock: Arc<Mutex<DateTime<Utc>>>,
    pub watcher: OverdueWatcher,
    pub client: Client,
}

impl Rig {
    pub async fn start(at: DateTime<Utc>) -> Rig {
        Rig::start_with(at, rules_2026()).await
    }

    pub async fn start_with(at: DateTime<Utc>, rules: Rules) -> Rig {
        let store = fresh_store().await;
        store.upsert_unit("north", "城北燃气所").await.unwrap();
        store.upsert_unit("south", "城南燃气所").await.unwrap();
        let clock = Arc::new(Mutex::new(at));
        let read = clock.clone();
        let service =
            TicketsService::new(store, rules).with_clock(Arc::new(move || *read.lock().unwrap()));
        let watcher = service.overdue_watcher();
        let server = TestServer::start_service(service, None).await;
        let client = server.client().await;
        Rig {
            server,
            clock,
            watcher,
            client,
        }
    }

    pub fn at(&self, now: DateTime<Utc>) {
        *self.clock.lock().unwrap() = now;
    }

    pub async fn create(&mut self, ticket: pb::Ticket) -> pb::Ticket {
        self.client
            .create_ticket(authed(AGENT, create(ticket, "")))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn dispatch(
        &mut self,
        name: &str,
        unit: &str,
        token: &str,
    ) -> Result<pb::Ticket, tonic::Status> {
        self.client
            .dispatch_ticket(authed(
                token,
                pb::DispatchTicketRequest {
                    name: name.into(),
                    unit: unit.into(),
                },
            ))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn accept(&mut self, name: &str, token: &str) -> Result<pb::Ticket, tonic::Status> {
        self.client
            .accept_ticket(authed(
                token,
                pb::AcceptTicketRequest {
                    name: name.into(),
                    contacted_customer: true,
                },
            ))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn reply(&mut self, name: &str) -> pb::Ticket {
        self.client
            .reply_ticket(authed(
                NORTH,
                pb::ReplyTicketRequest {
                    name: name.into(),
                    summary: "更换了减压阀".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn return_(&mut self, name: &str, token: &str) -> Result<pb::Ticket, tonic::Status> {
        self.client
            .return_ticket(authed(
                token,
                pb::ReturnTicketRequest {
                    name: name.into(),
                    reason: "不属于本单位辖区".into(),
                },
            ))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn callback(
        &mut self,
        name: &str,
        outcome: pb::CallbackOutcome,
        result: pb::Rating,
        new_demand: &str,
    ) -> Result<pb::RecordCallbackResponse, tonic::Status> {
        let reached = outcome == pb::CallbackOutcome::Reached;
        self.client
            .record_callback(authed(
                AGENT,
                pb::RecordCallbackRequest {
                    name: name.into(),
                    outcome: outcome as i32,
                    attitude: if reached {
                        pb::Rating::Satisfied as i32
                    } else {
                        0
                    },
                    result: if reached { result as i32 } else { 0 },
                    new_demand: new_demand.into(),
                    note: String::new(),
                    call_back_time: None,
                },
            ))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn urge(&mut self, name: &str) -> pb::UrgeTicketResponse {
        self.client
            .urge_ticket(authed(
                AGENT,
                pb::UrgeTicketRequest {
                    name: name.into(),
                    kind: pb::UrgeKind::Chase as i32,
                    note: "怎么还没人来修".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// A repair created at `at`, dispatched to north at once.
    pub async fn dispatched_repair(&mut self, at: DateTime<Utc>) -> pb::Ticket {
        self.at(at);
        let ticket = self.create(repair("13812341234", "灶前阀漏气")).await;
        self.dispatch(&ticket.name, "north", AGENT).await.unwrap()
    }

    pub async fn actions(&self, number: &str) -> Vec<String> {
        self.server
            .store
            .ticket_events(number)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

pub fn status(t: &pb::Ticket) -> pb::Status {
    pb::Status::try_from(t.status).unwrap()
}
