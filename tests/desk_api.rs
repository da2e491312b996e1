//! `hotline.v1.AgentDesk` against a real PostgreSQL and a real tonic client: who may act
//! for which agent, the error codes, the event stream with resume and resync, the slow
//! subscriber, the state timeline and dispositions in the database, and the screen pop
//! built from seeded households, calls and tickets. Call events are fed to the desk the way
//! the call layer feeds them ([`Desktops::feed`]); the daemon end to end is `desk_e2e.rs`.

#[allow(dead_code)] // This binary uses the database and token helpers only.
mod support;

use chrono::{TimeDelta, Utc};
use hotline::api::{self, AccessList, AgentDeskService, pb};
use hotline::call::{DeskOrder, Desktops};
use hotline::desk::{DeskConfig, DeskInput, HungUpBy, Roster};
use hotline::store::{CallEntry, NewCustomer, NewTicket, ScreenPop, Store};
use hotline::tickets::{Category, Status};
use pb::agent_desk_client::AgentDeskClient;
use pb::agent_event::Event;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{ADMIN, AGENT, WECHAT, authed};
use tokio::sync::mpsc;
use tonic::transport::Channel as GrpcChannel;
use tonic::{Code, Streaming};

struct DeskServer {
    client: AgentDeskClient<GrpcChannel>,
    desktops: Desktops,
    orders: mpsc::UnboundedReceiver<DeskOrder>,
    store: Store,
    /// For reading the tables directly.
    pg: PgPool,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(config: DeskConfig) -> DeskServer {
    let (store, pg) = database().await;
    let roster = Roster {
        agents: [("1001", "repair"), ("1002", "billing")]
            .into_iter()
            .map(|(a, q)| (a.to_owned(), vec![q.to_owned()]))
            .collect(),
        queues: vec!["repair".into(), "billing".into()],
    };
    let (desktops, orders, _tasks) =
        Desktops::start(config, chrono_tz::Asia::Shanghai, &roster, store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = serve(&desktops, &store, listener);
    tokio::spawn(async move {
        let _ = stopped.await;
        server.abort();
    });
    let channel = GrpcChannel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    DeskServer {
        client: AgentDeskClient::new(channel),
        desktops,
        orders,
        store,
        pg,
        _stop: stop,
    }
}

/// Serves the desk (and tickets) on `listener` until aborted.
fn serve(
    desktops: &Desktops,
    store: &Store,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    let access = AccessList::from_config(&support::tokens()).unwrap();
    let rules = hotline::tickets::Rules::new(Default::default()).unwrap();
    let served = api::serve_all(
        api::TicketsService::new(store.clone(), rules),
        access,
        None,
        Some(AgentDeskService::new(desktops.clone())),
        listener,
        None,
        std::future::pending(),
    );
    tokio::spawn(async move {
        served.await.unwrap();
    })
}

async fn database() -> (Store, PgPool) {
    let (store, options) = support::fresh_database().await;
    let pg = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    (store, pg)
}

fn set(agent: &str, state: pb::DeskState, reason: &str) -> pb::SetStateRequest {
    pb::SetStateRequest {
        agent_id: agent.into(),
        state: state.into(),
        reason_code: reason.into(),
        expected_version: None,
    }
}

async fn stream(
    client: &mut AgentDeskClient<GrpcChannel>,
    agent: &str,
    resume: Option<(u64, u64)>,
) -> Streaming<pb::AgentEvent> {
    let request = pb::StreamEventsRequest {
        agent_id: agent.into(),
        resume_from: resume.map(|(epoch, seq)| pb::ResumeFrom { epoch, seq }),
    };
    client
        .stream_events(authed(ADMIN, request))
        .await
        .unwrap()
        .into_inner()
}

async fn next(events: &mut Streaming<pb::AgentEvent>) -> pb::AgentEvent {
    tokio::time::timeout(Duration::from_secs(5), events.message())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .expect("the stream goes on")
}

/// The next `n` events that are not heartbeats.
async fn take(events: &mut Streaming<pb::AgentEvent>, n: usize) -> Vec<pb::AgentEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = next(events).await;
        if !matches!(event.event, Some(Event::Heartbeat(_))) {
            out.push(event);
        }
    }
    out
}

fn kind(event: &pb::AgentEvent) -> String {
    match event.event.as_ref().expect("event") {
        Event::StateChanged(s) => format!(
            "state:{}",
            pb::DeskState::try_from(s.to).unwrap().as_str_name()
        ),
        Event::Offered(o) => format!("offered:{}", o.call_id),
        Event::OfferWithdrawn(w) => format!("withdrawn:{}", w.reason),
        Event::Connected(_) => "connected".into(),
        Event::Ended(_) => "ended".into(),
        Event::WrapUpStarted(_) => "wrap_up".into(),
        Event::SurveyResult(s) => format!("survey:{}", s.rating),
        Event::TicketChanged(t) => format!("ticket:{}", t.status),
        Event::Snapshot(_) => "snapshot".into(),
        Event::ResyncRequired(r) => format!(
            "resync:{}",
            pb::ResyncReason::try_from(r.reason).unwrap().as_str_name()
        ),
        Event::Heartbeat(_) => "heartbeat".into(),
    }
}

/// A whole call to `agent`, fed as the call layer feeds it.
fn feed_call(desktops: &Desktops, call: &str, agent: &str) {
    desktops.feed(DeskInput::Queued {
        call: call.into(),
        queue: "repair".into(),
        priority: 0,
        leak: false,
    });
    desktops.feed(DeskInput::Offered {
        call: call.into(),
        agent: agent.into(),
        pop: Arc::new(ScreenPop {
            call_id: call.into(),
            caller_number: "13812341234".into(),
            ..ScreenPop::default()
        }),
        ring_deadline: Instant::now() + Duration::from_secs(15),
    });
    desktops.feed(DeskInput::Answered {
        call: call.into(),
        agent: agent.into(),
    });
    desktops.feed(DeskInput::Ended {
        call: call.into(),
        who: HungUpBy::Caller,
    });
}

#[tokio::test]
async fn tokens_act_only_for_their_own_agent_and_bad_input_gets_its_code() {
    let mut s = start(DeskConfig::default()).await;
    let c = &mut s.client;
    // The agent token of 1001 for 1001: fine; for 1002: denied.
    let own = c
        .set_state(authed(AGENT, set("1001", pb::DeskState::Ready, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((own.state(), own.version), (pb::DeskState::Ready, 1));
    let other = c
        .set_state(authed(AGENT, set("1002", pb::DeskState::Ready, "")))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    let request = pb::StreamEventsRequest {
        agent_id: "1002".into(),
        resume_from: None,
    };
    let err = c.stream_events(authed(AGENT, request)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c
        .set_state(authed(WECHAT, set("1001", pb::DeskState::Ready, "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c
        .list_live_calls(authed(AGENT, pb::ListLiveCallsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Unknown agent: NOT_FOUND, also for the stream.
    let err = c
        .set_state(authed(ADMIN, set("9999", pb::DeskState::Ready, "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let request = pb::StreamEventsRequest {
        agent_id: "9999".into(),
        resume_from: None,
    };
    let err = c.stream_events(authed(ADMIN, request)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Unknown reason code: INVALID_ARGUMENT naming it.
    let err = c
        .set_state(authed(AGENT, set("1001", pb::DeskState::NotReady, "nap")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("reason_code") && err.message().contains("\"nap\""));
    // Stale version: ABORTED.
    let err = c
        .set_state(authed(
            AGENT,
            pb::SetStateRequest {
                expected_version: Some(0),
                ..set("1001", pb::DeskState::LoggedOut, "")
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{}", err.message());
    // A transfer of a call the agent does not hold: FAILED_PRECONDITION.
    let transfer = pb::TransferCallRequest {
        agent_id: "1001".into(),
        call_id: "nobody".into(),
        to: Some(pb::transfer_call_request::To::Queue("billing".into())),
        notes: String::new(),
    };
    let err = c
        .transfer_call(authed(AGENT, transfer.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // A URI the call layer cannot reach (no IP address: hotlined does no DNS).
    let to_a_name = pb::TransferCallRequest {
        to: Some(pb::transfer_call_request::To::Uri(
            "sip:desk@example.com".into(),
        )),
        ..transfer
    };
    let err = c.transfer_call(authed(AGENT, to_a_name)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("uri: "), "{}", err.message());
    let err = c
        .extend_wrap_up(authed(
            AGENT,
            pb::ExtendWrapUpRequest {
                agent_id: "1001".into(),
                seconds: 10,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // The ACD is told the agent is ready.
    assert_eq!(
        s.orders.recv().await,
        Some(DeskOrder::Availability {
            agent: "1001".into(),
            ready: true
        })
    );
}

#[tokio::test]
async fn a_desktop_resumes_with_exactly_the_missed_events_and_resyncs_when_it_cannot() {
    let mut s = start(DeskConfig {
        wrap_up_secs: 0,
        ..DeskConfig::default()
    })
    .await;
    let mut events = stream(&mut s.client, "1001", None).await;
    let first = take(&mut events, 1).await;
    assert_eq!(kind(&first[0]), "snapshot");
    s.client
        .set_state(authed(AGENT, set("1001", pb::DeskState::Ready, "")))
        .await
        .unwrap();
    let ready = take(&mut events, 1).await;
    assert_eq!(kind(&ready[0]), "state:DESK_STATE_READY");
    let (epoch, seq) = (ready[0].epoch, ready[0].seq);
    drop(events);
    // Five calls' worth of events while the desktop is away.
    for i in 0..5 {
        feed_call(&s.desktops, &format!("c{i}"), "1001");
    }
    let mut resumed = stream(&mut s.client, "1001", Some((epoch, seq))).await;
    let missed = take(&mut resumed, 5 * 6).await;
    let seqs: Vec<u64> = missed.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (seq + 1..=seq + 30).collect::<Vec<_>>());
    let kinds: Vec<String> = missed[..6].iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "state:DESK_STATE_RINGING",
            "offered:c0",
            "state:DESK_STATE_ON_CALL",
            "connected",
            "ended",
            "state:DESK_STATE_READY"
        ]
    );
    // Then live events, no duplicates.
    s.client
        .set_state(authed(AGENT, set("1001", pb::DeskState::NotReady, "break")))
        .await
        .unwrap();
    let live = take(&mut resumed, 1).await;
    assert_eq!(live[0].seq, seq + 31);
    // Another epoch (as after a restart): ResyncRequired, then a Snapshot.
    let mut other = stream(&mut s.client, "1001", Some((epoch - 1, seq))).await;
    let resync = take(&mut other, 2).await;
    assert_eq!(
        resync.iter().map(kind).collect::<Vec<_>>(),
        ["resync:RESYNC_REASON_EPOCH_CHANGED", "snapshot"]
    );
    let Some(Event::Snapshot(snapshot)) = &resync[1].event else {
        panic!("snapshot");
    };
    let status = snapshot.status.as_ref().unwrap();
    assert_eq!(
        (status.state(), status.reason_code.as_str()),
        (pb::DeskState::NotReady, "break")
    );
    assert_eq!(resync[1].seq, seq + 31);
}

#[tokio::test]
async fn resuming_past_the_history_resyncs() {
    let mut s = start(DeskConfig {
        history_len: 8,
        wrap_up_secs: 0,
        ..DeskConfig::default()
    })
    .await;
    s.client
        .set_state(authed(AGENT, set("1001", pb::DeskState::Ready, "")))
        .await
        .unwrap();
    let epoch = {
        let mut events = stream(&mut s.client, "1001", None).await;
        take(&mut events, 1).await[0].epoch
    };
    for i in 0..3 {
        feed_call(&s.desktops, &format!("c{i}"), "1001");
    }
    let mut events = stream(&mut s.client, "1001", Some((epoch, 1))).await;
    let resync = take(&mut events, 2).await;
    assert_eq!(
        resync.iter().map(kind).collect::<Vec<_>>(),
        ["resync:RESYNC_REASON_HISTORY_COMPACTED", "snapshot"]
    );
}

#[tokio::test]
async fn a_desktop_that_never_reads_is_told_to_resync_and_closed() {
    let mut s = start(DeskConfig {
        subscriber_queue: 20,
        ..DeskConfig::default()
    })
    .await;
    let mut slow = stream(&mut s.client, "1001", None).await;
    // Thousands of events with big pops: far more than the wire and the outbox hold.
    let big = "广州市天河区".repeat(200);
    for i in 0..300 {
        s.desktops.feed(DeskInput::Queued {
            call: format!("c{i}"),
            queue: "repair".into(),
            priority: 0,
            leak: false,
        });
        s.desktops.feed(DeskInput::Offered {
            call: format!("c{i}"),
            agent: "1001".into(),
            pop: Arc::new(ScreenPop {
                caller_number: big.clone(),
                ..ScreenPop::default()
            }),
            ring_deadline: Instant::now(),
        });
        s.desktops.feed(DeskInput::Abandoned {
            call: format!("c{i}"),
        });
    }
    // The desk's outbox is bounded; the stream then ends with ResyncRequired(TOO_SLOW).
    let view = s.desktops.view("1001").unwrap();
    assert!(view.desktops <= 1);
    let mut last = None;
    let mut count = 0;
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(Duration::from_secs(5), slow.message()).await
    {
        count += 1;
        last = Some(event);
        if count > 2000 {
            panic!("the stream never ended");
        }
    }
    let last = last.expect("events");
    assert_eq!(kind(&last), "resync:RESYNC_REASON_TOO_SLOW");
    assert!(count < 300 * 4, "{count} events: the backlog was cut");
    // The desk forgot the subscriber.
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while s.desktops.view("1001").unwrap().desktops != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok());
}

#[tokio::test]
async fn the_timeline_and_the_disposition_reach_the_database() {
    let mut s = start(DeskConfig {
        disposition_codes: vec!["solved".into()],
        ..DeskConfig::default()
    })
    .await;
    support::journal_calls(
        &s.store,
        vec![(
            "c1",
            vec![
                CallEntry::Arrived {
                    caller: "13812341234".into(),
                    called: "95158".into(),
                    at: Utc::now(),
                },
                CallEntry::Draft {
                    caller: "13812341234".into(),
                    called: "95158".into(),
                    flow: "main".into(),
                    started_at: Utc::now(),
                    customer: None,
                },
            ],
        )],
    )
    .await;
    s.client
        .set_state(authed(AGENT, set("1001", pb::DeskState::Ready, "")))
        .await
        .unwrap();
    feed_call(&s.desktops, "c1", "1001");
    let complete = |code: &str| pb::CompleteWrapUpRequest {
        agent_id: "1001".into(),
        disposition_code: code.into(),
        notes: "valve replaced".into(),
    };
    let err = s
        .client
        .complete_wrap_up(authed(AGENT, complete("nope")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("disposition_code"));
    s.client
        .complete_wrap_up(authed(AGENT, complete("solved")))
        .await
        .unwrap();
    s.client
        .set_state(authed(AGENT, set("1001", pb::DeskState::LoggedOut, "")))
        .await
        .unwrap();
    let timeline = wait_for(|| async {
        let rows = s.store.state_changes("1001").await.unwrap();
        (rows.len() == 6).then_some(rows)
    })
    .await;
    let steps: Vec<(String, String)> = timeline
        .iter()
        .map(|r| (r.from_state.clone(), r.to_state.clone()))
        .collect();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        steps,
        [
            pair("logged_out", "ready"),
            pair("ready", "ringing"),
            pair("ringing", "on_call"),
            pair("on_call", "wrap_up"),
            pair("wrap_up", "ready"),
            pair("ready", "logged_out"),
        ]
    );
    let (code, notes, by, description): (Option<String>, String, Option<String>, String) =
        wait_for(|| async {
            let row: (Option<String>, String, Option<String>, String) = sqlx::query_as(
                "SELECT c.disposition_code, c.agent_notes, c.wrapped_up_by, t.description \
                 FROM calls c JOIN tickets t ON t.call_id = c.call_id WHERE c.call_id = 'c1'",
            )
            .fetch_one(&s.pg)
            .await
            .unwrap();
            row.0.is_some().then_some(row)
        })
        .await;
    assert_eq!(
        (code.as_deref(), notes.as_str(), by.as_deref()),
        (Some("solved"), "valve replaced", Some("1001"))
    );
    assert!(description.contains("disposition (1001): solved; notes: valve replaced"));
}

async fn wait_for<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "not written within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The seeded caller: a household, 3 earlier calls, 2 open tickets (one overdue), a closed
/// one and the drafts of the earlier calls; a leak next door; an outage for the area.
pub async fn seed_caller(store: &Store, pg: &PgPool) -> i64 {
    let household = store
        .create_customer(&NewCustomer {
            account_number: "8800123".into(),
            name: "王秀英".into(),
            phone_numbers: vec!["13812341234".into()],
            address: "幸福路1号".into(),
            area: "天河".into(),
            special_group: Some(hotline::store::SpecialGroup::ElderlyAlone),
        })
        .await
        .unwrap();
    let now = Utc::now();
    let mut calls = Vec::new();
    let ids = ["old1", "old2", "old3"];
    for (i, id) in ids.iter().enumerate() {
        let at = now - TimeDelta::hours(48 * (3 - i as i64)) + TimeDelta::hours(47);
        calls.push((
            *id,
            vec![
                CallEntry::Arrived {
                    caller: "13812341234".into(),
                    called: "95158".into(),
                    at,
                },
                CallEntry::Queue {
                    queue: "repair".into(),
                    at,
                },
                CallEntry::Agent {
                    agent_id: "1002".into(),
                    at,
                },
            ],
        ));
    }
    calls.push((
        "now",
        vec![
            CallEntry::Arrived {
                caller: "13812341234".into(),
                called: "95158".into(),
                at: now,
            },
            CallEntry::Draft {
                caller: "13812341234".into(),
                called: "95158".into(),
                flow: "main".into(),
                started_at: now,
                customer: None,
            },
        ],
    ));
    support::journal_calls(store, calls).await;
    sqlx::query(
        "UPDATE calls SET ivr_path = ARRAY['welcome:1', 'account:8800123', 'repair'], \
         ivr_variables = '{\"account\": \"8800123\"}', recording_consent = 'granted', \
         recording_consent_via = 'dtmf', recording_consent_at = now() WHERE call_id = 'now'",
    )
    .execute(pg)
    .await
    .unwrap();
    let overdue = support::new_ticket("13812341234", None, Status::Dispatched, Category::Repair);
    store
        .create_ticket(&NewTicket {
            finish_due: Some(now - TimeDelta::hours(2)),
            contact_due: Some(now - TimeDelta::hours(30)),
            ..overdue
        })
        .await
        .unwrap();
    let by_household = support::new_ticket(
        "02588880000",
        Some(household.id),
        Status::Accepted,
        Category::Complaint,
    );
    store
        .create_ticket(&NewTicket {
            finish_due: Some(now + TimeDelta::days(3)),
            ..by_household
        })
        .await
        .unwrap();
    store
        .create_ticket(&support::new_ticket(
            "13812341234",
            None,
            Status::Closed,
            Category::Query,
        ))
        .await
        .unwrap();
    let leak = NewTicket {
        caller_address: "幸福路1号".into(),
        area: "天河".into(),
        ..support::new_ticket("13900000000", None, Status::Dispatched, Category::Leak)
    };
    store
        .create_ticket(&NewTicket {
            created_at: now - TimeDelta::days(3),
            ..leak.clone()
        })
        .await
        .unwrap();
    store
        .create_ticket(&NewTicket {
            created_at: now - TimeDelta::days(40),
            ..leak
        })
        .await
        .unwrap();
    household.id
}

#[tokio::test]
async fn the_screen_pop_holds_the_household_earlier_calls_and_open_tickets() {
    let (store, pg) = database().await;
    seed_caller(&store, &pg).await;
    let pop = store
        .screen_pop("now", "13812341234", "95158", Utc::now())
        .await
        .unwrap();
    let household = pop.household.as_ref().expect("household");
    assert_eq!(
        (household.name.as_str(), household.account_number.as_str()),
        ("王秀英", "8800123")
    );
    assert_eq!(household.special_group.as_deref(), Some("elderly_alone"));
    let earlier: Vec<&str> = pop.last_calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(earlier, ["old3", "old2", "old1"]);
    assert_eq!(pop.last_calls[0].agent_id.as_deref(), Some("1002"));
    assert_eq!(pop.open_tickets.len(), 2, "{:?}", pop.open_tickets);
    let overdue: Vec<bool> = pop.open_tickets.iter().map(|t| t.overdue).collect();
    assert_eq!(
        overdue,
        [false, true],
        "newest first: the complaint, then the overdue repair"
    );
    assert!(pop.open_complaint);
    assert_eq!(pop.calls_last_24h, 2, "this call and old3");
    assert!(pop.repeated_within_24h());
    assert!(pop.draft_ticket.is_some());
    let steps: Vec<(&str, &str, &str)> = pop
        .ivr_path
        .iter()
        .map(|s| (s.node.as_str(), s.key.as_str(), s.entry.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("welcome", "1", ""),
            ("account", "8800123", "account"),
            ("repair", "", "")
        ]
    );
    assert_eq!(
        (
            pop.recording_consent.as_deref(),
            pop.recording_consent_via.as_deref()
        ),
        (Some("granted"), Some("dtmf"))
    );
    assert_eq!(pop.nearby_leaks.len(), 1, "the 40-day-old leak is out");
    assert!(pop.nearby_leaks[0].same_address);
    // On the wire.
    let wire = api::pop_to_proto(&pop);
    assert_eq!(wire.last_calls.len(), 3);
    assert_eq!(wire.open_tickets.len(), 2);
    assert!(wire.repeat_caller.unwrap().open_complaint);
}

#[tokio::test]
async fn supervisors_see_the_wallboard_and_live_calls() {
    let mut s = start(DeskConfig::default()).await;
    s.client
        .set_state(authed(AGENT, set("1001", pb::DeskState::Ready, "")))
        .await
        .unwrap();
    let mut board = s
        .client
        .stream_wallboard(authed(ADMIN, pb::StreamWallboardRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = board.message().await.unwrap().unwrap();
    assert!(first.snapshot);
    assert_eq!(first.agents.unwrap().ready, 1);
    s.desktops.feed(DeskInput::Queued {
        call: "w1".into(),
        queue: "repair".into(),
        priority: 3,
        leak: false,
    });
    let live = s
        .client
        .list_live_calls(authed(ADMIN, pb::ListLiveCallsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live.calls.len(), 1);
    assert_eq!(
        (
            live.calls[0].call_id.as_str(),
            live.calls[0].priority,
            live.calls[0].phase()
        ),
        ("w1", 3, pb::LivePhase::Waiting)
    );
    let update = tokio::time::timeout(Duration::from_secs(5), board.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let repair = update.lanes.iter().find(|l| l.lane == "repair").unwrap();
    assert_eq!((repair.waiting, repair.offered), (1, 1));
}

/// Forwards connections to `upstream` until aborted, which drops them all.
async fn forward(listener: tokio::net::TcpListener, upstream: std::net::SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (mut client, _) = listener.accept().await.unwrap();
        connections.spawn(async move {
            let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

/// Lines of `hotlinectl desk`, read as they come.
struct CtlOutput {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: Vec<String>,
}

impl CtlOutput {
    /// Reads until a line containing `needle`; returns the lines read.
    async fn until(&mut self, needle: &str) -> Vec<String> {
        let mut read = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                read.push(line.clone());
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            found,
            Ok(true),
            "no {needle:?} in:\n{}",
            self.seen.join("\n")
        );
        read
    }
}

#[tokio::test]
async fn hotlinectl_desk_shows_events_resumes_after_a_dropped_connection_and_says_when_it_resyncs()
{
    use tokio::io::AsyncBufReadExt;
    let s = start(DeskConfig {
        history_len: 4,
        wrap_up_secs: 0,
        ..DeskConfig::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let _server = serve(&s.desktops, &s.store, listener);
    // The client goes through a proxy: stopping it drops the connection for real.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = tokio::spawn(forward(listener, upstream));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlinectl"))
        .args(["--endpoint", &addr.to_string(), "desk", "1001"])
        .env("HOTLINE_TOKEN", AGENT)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = CtlOutput {
        lines: tokio::io::BufReader::new(child.stdout.take().unwrap()).lines(),
        seen: Vec::new(),
    };
    out.until("snapshot (epoch").await;
    s.desktops
        .set_state("1001", hotline::desk::Requested::Ready, None)
        .unwrap();
    out.until("state LOGGED_OUT -> READY (version 1)").await;
    let (store, pg) = (s.store.clone(), s.pg.clone());
    seed_caller(&store, &pg).await;
    let pop = store
        .screen_pop("now", "13812341234", "95158", Utc::now())
        .await
        .unwrap();
    s.desktops.feed(DeskInput::Queued {
        call: "now".into(),
        queue: "repair".into(),
        priority: 0,
        leak: false,
    });
    s.desktops.feed(DeskInput::Offered {
        call: "now".into(),
        agent: "1001".into(),
        pop: Arc::new(pop),
        ring_deadline: Instant::now() + Duration::from_secs(15),
    });
    let block = out.until("leak nearby").await.join("\n");
    assert!(block.contains("RINGING: call now"), "{block}");
    assert!(block.contains("王秀英 (8800123)"), "{block}");
    assert!(block.contains("OVERDUE"), "{block}");
    s.desktops.feed(DeskInput::Abandoned { call: "now".into() });
    out.until("state RINGING -> READY").await;

    // The connection drops; two events happen meanwhile; the server comes back.
    proxy.abort();
    out.until("-- connection lost").await;
    s.desktops
        .set_state(
            "1001",
            hotline::desk::Requested::NotReady("break".into()),
            None,
        )
        .unwrap();
    s.desktops
        .set_state("1001", hotline::desk::Requested::Ready, None)
        .unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let proxy = tokio::spawn(forward(listener, upstream));
    let resumed = out.until("NOT_READY(break) -> READY").await;
    assert!(
        resumed.iter().any(|l| l.contains("resuming after epoch")),
        "{resumed:?}"
    );
    assert!(!resumed.iter().any(|l| l.contains("RESYNC")), "{resumed:?}");
    assert!(
        resumed
            .iter()
            .any(|l| l.contains("READY -> NOT_READY(break)"))
    );

    // Dropped again, and more happens than the history (4 events) holds: a resync.
    proxy.abort();
    out.until("-- connection lost").await;
    for _ in 0..3 {
        s.desktops
            .set_state(
                "1001",
                hotline::desk::Requested::NotReady("meal".into()),
                None,
            )
            .unwrap();
        s.desktops
            .set_state("1001", hotline::desk::Requested::Ready, None)
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _proxy = tokio::spawn(forward(listener, upstream));
    let resynced = out.until("snapshot (epoch").await;
    assert!(
        resynced
            .iter()
            .any(|l| l.contains("RESYNC: the events missed are no longer kept")),
        "{resynced:?}"
    );
    child.kill().await.unwrap();
}
