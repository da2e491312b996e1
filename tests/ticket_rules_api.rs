//! The service rules through the gRPC API end to end: a real tonic client over loopback, the
//! real server on an adjustable clock, a real PostgreSQL database per test. The rules
//! themselves are table-tested in `src/tickets`; these tests check the wiring — the store's
//! one transition path, follow-ups, role checks, error mapping, the work lists and the
//! overdue watcher.

#[allow(dead_code)] // Shared with the other rules tests.
#[path = "support/rules_rig.rs"]
mod rig;
#[allow(dead_code)] // Shared test helpers: this binary seeds no call rows.
mod support;

use chrono::{DateTime, Duration, Utc};
use hotline::api::pb;
use hotline::tickets::RulesConfig;
use hotline::tickets::config::{Notice, Span};
use rig::{Rig, rules_2026_with, sh, status, time, ts};
use support::{
    ADMIN, AGENT, NORTH, SOUTH, TestServer, WECHAT, authed, create, fresh_store, repair,
};
use tokio_stream::StreamExt;
use tonic::Code;

#[tokio::test]
async fn a_repair_goes_from_dispatch_to_a_satisfied_callback() {
    let t0 = sh(2026, 11, 20, 16, 0); // a Friday
    let mut rig = Rig::start(t0).await;
    // The agent already knows the unit; the ticket is still a draft.
    let draft = rig
        .create(pb::Ticket {
            responsible_unit: "north".into(),
            ..repair("13812341234", "灶前阀漏气")
        })
        .await;
    // Deadlines on create: a repair is dispatched within 5 minutes.
    assert_eq!(time(&draft.dispatch_due), sh(2026, 11, 20, 16, 5));
    assert_eq!(draft.finish_due, None);

    // Accepting a draft is refused, naming its state.
    let err = rig.accept(&draft.name, NORTH).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains("cannot accept a ticket that is draft (草稿)"),
        "{}",
        err.message()
    );
    // Bad fields are INVALID_ARGUMENT naming the field.
    let err = rig.dispatch(&draft.name, "", AGENT).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "unit: required")
    );
    let err = rig
        .dispatch(&draft.name, "North!", AGENT)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("unit: "), "{}", err.message());
    let err = rig
        .dispatch("tickets/nope", "north", AGENT)
        .await
        .unwrap_err();
    assert!(err.message().starts_with("name: "), "{}", err.message());
    // Units do not dispatch.
    let err = rig.dispatch(&draft.name, "north", NORTH).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    rig.at(sh(2026, 11, 20, 16, 2));
    let dispatched = rig.dispatch(&draft.name, "north", AGENT).await.unwrap();
    assert_eq!(status(&dispatched), pb::Status::Dispatched);
    assert_eq!(dispatched.responsible_unit, "north");
    assert_eq!(time(&dispatched.contact_due), sh(2026, 11, 20, 18, 2));
    assert_eq!(time(&dispatched.finish_due), sh(2026, 11, 25, 16, 2));

    // Another unit may neither act on nor read it.
    let err = rig.accept(&draft.name, SOUTH).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    let err = rig
        .client
        .get_ticket(authed(
            SOUTH,
            pb::GetTicketRequest {
                name: draft.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let seen = rig
        .client
        .get_ticket(authed(
            NORTH,
            pb::GetTicketRequest {
                name: draft.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.name, draft.name);
    // Unit listings hold their own tickets only.
    let listed = |token| {
        let mut client = rig.client.clone();
        async move {
            client
                .list_tickets(authed(token, pb::ListTicketsRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .tickets
                .len()
        }
    };
    assert_eq!((listed(NORTH).await, listed(SOUTH).await), (1, 0));

    rig.at(sh(2026, 11, 20, 16, 30));
    let accepted = rig.accept(&draft.name, NORTH).await.unwrap();
    assert_eq!(status(&accepted), pb::Status::Accepted);
    // Contacted on accepting: the contact deadline no longer binds, the rest stays.
    assert_eq!(time(&accepted.finish_due), sh(2026, 11, 25, 16, 2));

    rig.at(sh(2026, 11, 23, 10, 0));
    let replied = rig.reply(&draft.name).await;
    assert_eq!(status(&replied), pb::Status::Replied);
    assert_eq!(time(&replied.callback_due), sh(2026, 11, 24, 10, 0));
    assert_eq!(time(&replied.next_callback_time), sh(2026, 11, 23, 10, 0));

    // The callback agents' list has it; units have no such list.
    let due = rig
        .client
        .list_due_callbacks(authed(AGENT, pb::ListDueCallbacksRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(due.tickets.len(), 1);
    assert_eq!(due.tickets[0].name, draft.name);
    let err = rig
        .client
        .list_due_callbacks(authed(NORTH, pb::ListDueCallbacksRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // A reached callback needs both ratings.
    let err = rig
        .callback(
            &draft.name,
            pb::CallbackOutcome::Reached,
            pb::Rating::Unspecified,
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("result: "), "{}", err.message());

    rig.at(sh(2026, 11, 23, 10, 20));
    let done = rig
        .callback(
            &draft.name,
            pb::CallbackOutcome::Reached,
            pb::Rating::Satisfied,
            "",
        )
        .await
        .unwrap();
    let closed = done.ticket.unwrap();
    assert_eq!(status(&closed), pb::Status::Closed);
    assert_eq!(closed.satisfaction_result, pb::Rating::Satisfied as i32);
    assert_eq!(closed.satisfaction_attitude, pb::Rating::Satisfied as i32);
    assert!(done.new_ticket.is_none());
    let attempts = rig
        .server
        .store
        .callback_attempts(&closed.number)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (
            attempts[0].outcome.as_str(),
            attempts[0].attitude.as_deref(),
            attempts[0].result.as_deref()
        ),
        ("reached", Some("satisfied"), Some("satisfied"))
    );
    // Nothing left to call back.
    let due = rig
        .client
        .list_due_callbacks(authed(AGENT, pb::ListDueCallbacksRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(due.tickets.is_empty());
    // Every step is in the audit trail, in order, with its actor.
    assert_eq!(
        rig.actions(&closed.number).await,
        [
            "create",
            "dispatched",
            "accepted",
            "replied",
            "callback_satisfied"
        ]
    );
    let events = rig
        .server
        .store
        .ticket_events(&closed.number)
        .await
        .unwrap();
    assert_eq!(events[1].actor, "agent:1001");
    assert_eq!(events[1].new_value.as_deref(), Some("dispatched"));
    assert_eq!(events[2].actor, "unit:north desk");
    assert_eq!(events[4].at, sh(2026, 11, 23, 10, 20));
    // Closed is closed.
    let err = rig
        .client
        .close_ticket(authed(
            ADMIN,
            pb::CloseTicketRequest {
                name: closed.name.clone(),
                reason: "重复".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("closed (已办结)"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_unit_returns_within_one_working_day_and_not_after() {
    // Dispatched Wednesday Sep 30 15:00: the next working day is Thursday Oct 8.
    let mut rig = Rig::start(sh(2026, 9, 30, 15, 0)).await;
    let late = rig.dispatched_repair(sh(2026, 9, 30, 15, 0)).await;
    rig.at(sh(2026, 10, 8, 15, 1));
    let err = rig.return_(&late.name, NORTH).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // The limit reads in local time.
    assert!(
        err.message().contains("2026-10-08 15:00 (Asia/Shanghai)"),
        "{}",
        err.message()
    );

    let ticket = rig.dispatched_repair(sh(2026, 9, 30, 15, 0)).await;
    rig.at(sh(2026, 10, 8, 14, 0));
    let returned = rig.return_(&ticket.name, NORTH).await.unwrap();
    assert_eq!(status(&returned), pb::Status::Returned);
    // The centre owes a new dispatch, counted from the return.
    assert_eq!(time(&returned.dispatch_due), sh(2026, 10, 8, 14, 5));
    let again = rig.dispatch(&ticket.name, "south", AGENT).await.unwrap();
    assert_eq!(
        (status(&again), again.responsible_unit.as_str()),
        (pb::Status::Dispatched, "south")
    );
    let events = rig
        .server
        .store
        .ticket_events(&ticket.number)
        .await
        .unwrap();
    let returned_event = events
        .iter()
        .find(|e| e.action == "returned_by_unit")
        .unwrap();
    assert_eq!(returned_event.reason.as_deref(), Some("不属于本单位辖区"));
}

#[tokio::test]
async fn the_centre_returns_once_then_adjudication() {
    let mut rig = Rig::start(sh(2026, 11, 20, 16, 0)).await;
    let ticket = rig.dispatched_repair(sh(2026, 11, 20, 16, 0)).await;
    rig.at(sh(2026, 11, 23, 10, 0));
    rig.reply(&ticket.name).await;
    // A unit cannot return a replied ticket.
    let err = rig.return_(&ticket.name, NORTH).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("replied (已回复)"),
        "{}",
        err.message()
    );

    rig.at(sh(2026, 11, 23, 14, 0));
    let first = rig.return_(&ticket.name, AGENT).await.unwrap();
    assert_eq!(status(&first), pb::Status::Reopened);
    assert_eq!(time(&first.finish_due), sh(2026, 11, 26, 14, 0));
    assert_eq!(first.supervisor_reason, "");

    rig.at(sh(2026, 11, 24, 10, 0));
    rig.reply(&ticket.name).await;
    rig.at(sh(2026, 11, 24, 15, 0));
    let second = rig.return_(&ticket.name, AGENT).await.unwrap();
    assert_eq!(status(&second), pb::Status::Adjudication);
    assert!(
        second.supervisor_reason.contains("returned a second time"),
        "{}",
        second.supervisor_reason
    );

    // Only a supervisor dispatches out of adjudication.
    let err = rig
        .dispatch(&ticket.name, "south", AGENT)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let redispatched = rig.dispatch(&ticket.name, "south", ADMIN).await.unwrap();
    assert_eq!(status(&redispatched), pb::Status::Dispatched);
}

#[tokio::test]
async fn extensions_need_a_working_day_of_notice_and_move_the_finish() {
    // Repair dispatched Friday Nov 20 16:00: finish due Wednesday Nov 25 16:00.
    let config = RulesConfig {
        extension_notice: Notice::Before(Span::WorkingDays(1)),
        ..RulesConfig::default()
    };
    let mut rig = Rig::start_with(sh(2026, 11, 20, 16, 0), rules_2026_with(config)).await;
    let ticket = rig.dispatched_repair(sh(2026, 11, 20, 16, 0)).await;
    let ask = |until: Option<DateTime<Utc>>| pb::RequestExtensionRequest {
        name: ticket.name.clone(),
        until: until.map(ts),
        reason: "配件在途".into(),
    };
    let err = rig
        .client
        .request_extension(authed(NORTH, ask(None)))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "until: required")
    );

    rig.at(sh(2026, 11, 24, 16, 1));
    let err = rig
        .client
        .request_extension(authed(NORTH, ask(Some(sh(2026, 11, 27, 16, 0)))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("too late"), "{}", err.message());
    assert!(
        err.message().contains("2026-11-24 16:00 (Asia/Shanghai)"),
        "{}",
        err.message()
    );

    rig.at(sh(2026, 11, 23, 9, 0));
    // Asking for no more time than it has is a bad `until`.
    let err = rig
        .client
        .request_extension(authed(NORTH, ask(Some(sh(2026, 11, 25, 12, 0)))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("until: "), "{}", err.message());
    let asked = rig
        .client
        .request_extension(authed(NORTH, ask(Some(sh(2026, 11, 27, 16, 0)))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&asked), pb::Status::ExtensionRequested);

    let decide = pb::DecideExtensionRequest {
        name: ticket.name.clone(),
        grant: true,
        until: None,
        reason: String::new(),
    };
    let err = rig
        .client
        .decide_extension(authed(NORTH, decide.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    rig.at(sh(2026, 11, 23, 11, 0));
    let granted = rig
        .client
        .decide_extension(authed(AGENT, decide))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&granted), pb::Status::Accepted);
    assert_eq!(time(&granted.finish_due), sh(2026, 11, 27, 16, 0));
    assert!(rig.actions(&ticket.number).await.ends_with(&[
        "extension_requested".to_owned(),
        "extension_granted".to_owned()
    ]));
}

#[tokio::test]
async fn urges_explain_then_dispatch_linked_urge_tickets_then_go_to_the_supervisor() {
    // Repair dispatched Friday 16:00, due Wednesday 16:00: half-way is Monday 04:00.
    let mut rig = Rig::start(sh(2026, 11, 20, 16, 0)).await;
    let ticket = rig.dispatched_repair(sh(2026, 11, 20, 16, 0)).await;

    rig.at(sh(2026, 11, 21, 10, 0));
    let early = rig.urge(&ticket.name).await;
    assert!(
        early.explanation.contains("11月25日16:00"),
        "{}",
        early.explanation
    );
    assert!(early.urge_ticket.is_none());

    for n in 1..=2 {
        let now = sh(2026, 11, 23, 9, n);
        rig.at(now);
        let urged = rig.urge(&ticket.name).await;
        assert_eq!(urged.explanation, "");
        let urge = urged.urge_ticket.expect("an urge ticket");
        assert_eq!(urge.category, pb::Category::Urge as i32);
        assert_eq!(status(&urge), pb::Status::Draft);
        assert_eq!(urge.parent_ticket, ticket.name);
        assert_eq!(urge.responsible_unit, "north");
        assert_eq!(time(&urge.dispatch_due), now + Duration::minutes(10));
        assert_eq!(urge.caller_number, ticket.caller_number);
        // The urged ticket keeps its state.
        assert_eq!(
            status(urged.ticket.as_ref().unwrap()),
            pb::Status::Dispatched
        );
    }

    rig.at(sh(2026, 11, 23, 9, 30));
    let third = rig.urge(&ticket.name).await;
    assert!(third.urge_ticket.is_none());
    assert!(
        third.supervisor_reason.contains("after 2 urges"),
        "{}",
        third.supervisor_reason
    );
    assert_eq!(
        third.ticket.unwrap().supervisor_reason,
        third.supervisor_reason
    );

    let urges = rig
        .client
        .list_tickets(authed(
            AGENT,
            pb::ListTicketsRequest {
                category: pb::Category::Urge as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(urges.tickets.len(), 2);
    let actions = rig.actions(&ticket.number).await;
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(
        (
            count("urge_explained"),
            count("urge_dispatched"),
            count("follow_up"),
            count("urge_to_supervisor")
        ),
        (1, 2, 2, 1)
    );

    // Integrations urge only tickets of their channel.
    let err = rig
        .client
        .urge_ticket(authed(
            WECHAT,
            pb::UrgeTicketRequest {
                name: ticket.name.clone(),
                kind: pb::UrgeKind::Chase as i32,
                note: "催".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = rig
        .client
        .urge_ticket(authed(
            AGENT,
            pb::UrgeTicketRequest {
                name: ticket.name.clone(),
                kind: 0,
                note: "催".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "kind: required")
    );
}

#[tokio::test]
async fn an_unreachable_customer_is_tried_three_times_two_hours_apart_then_closed() {
    let mut rig = Rig::start(sh(2026, 11, 20, 16, 0)).await;
    let ticket = rig.dispatched_repair(sh(2026, 11, 20, 16, 0)).await;
    rig.at(sh(2026, 11, 23, 10, 0));
    rig.reply(&ticket.name).await;

    let unreachable = pb::CallbackOutcome::Unreachable;
    let first = rig
        .callback(&ticket.name, unreachable, pb::Rating::Unspecified, "")
        .await
        .unwrap()
        .ticket
        .unwrap();
    assert_eq!(status(&first), pb::Status::Callback);
    assert!(time(&first.next_callback_time) >= sh(2026, 11, 23, 12, 0));

    rig.at(sh(2026, 11, 23, 11, 0));
    let err = rig
        .callback(&ticket.name, unreachable, pb::Rating::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("2026-11-23 12:00 (Asia/Shanghai)"),
        "{}",
        err.message()
    );

    rig.at(sh(2026, 11, 23, 12, 0));
    let second = rig
        .callback(&ticket.name, unreachable, pb::Rating::Unspecified, "")
        .await
        .unwrap()
        .ticket
        .unwrap();
    assert_eq!(status(&second), pb::Status::Callback);
    rig.at(sh(2026, 11, 23, 14, 30));
    let third = rig
        .callback(&ticket.name, unreachable, pb::Rating::Unspecified, "")
        .await
        .unwrap()
        .ticket
        .unwrap();
    assert_eq!(status(&third), pb::Status::Closed);
    let events = rig
        .server
        .store
        .ticket_events(&ticket.number)
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.action, "callback_unreachable");
    assert_eq!(
        last.reason.as_deref(),
        Some("customer unreachable after 3 callback attempts")
    );
    // Every attempt is on record, the refused one not.
    let attempts = rig
        .server
        .store
        .callback_attempts(&ticket.number)
        .await
        .unwrap();
    let at: Vec<_> = attempts
        .iter()
        .map(|a| (a.at, a.outcome.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (sh(2026, 11, 23, 10, 0), "unreachable"),
            (sh(2026, 11, 23, 12, 0), "unreachable"),
            (sh(2026, 11, 23, 14, 30), "unreachable"),
        ]
    );
    assert!(
        attempts
            .iter()
            .all(|a| a.agent == "agent:1001" && a.result.is_none())
    );
}

#[tokio::test]
async fn unsatisfied_reopens_and_a_new_demand_in_the_callback_is_a_new_ticket() {
    let mut rig = Rig::start(sh(2026, 11, 20, 16, 0)).await;
    let ticket = rig.dispatched_repair(sh(2026, 11, 20, 16, 0)).await;
    rig.at(sh(2026, 11, 23, 10, 0));
    rig.reply(&ticket.name).await;
    let answered = rig
        .callback(
            &ticket.name,
            pb::CallbackOutcome::Reached,
            pb::Rating::Unsatisfied,
            "想把燃气表移到阳台",
        )
        .await
        .unwrap();
    let reopened = answered.ticket.unwrap();
    assert_eq!(status(&reopened), pb::Status::Reopened);
    assert_eq!(reopened.satisfaction_result, pb::Rating::Unsatisfied as i32);
    // A second handling: a fresh finish period from now.
    assert_eq!(time(&reopened.finish_due), sh(2026, 11, 26, 10, 0));
    let new = answered.new_ticket.expect("a ticket for the new demand");
    assert_eq!(status(&new), pb::Status::Draft);
    assert!(
        new.description.contains("想把燃气表移到阳台"),
        "{}",
        new.description
    );
    assert!(
        new.description.contains(&ticket.number),
        "{}",
        new.description
    );
    assert_eq!(new.caller_number, ticket.caller_number);
    assert_eq!(new.parent_ticket, "");
    // The new ticket runs against its own dispatch deadline.
    assert_eq!(time(&new.dispatch_due), sh(2026, 11, 23, 10, 5));
}

#[tokio::test]
async fn complaints_level_themselves_from_related_complaints_and_supervisors_override() {
    let mut rig = Rig::start(sh(2026, 11, 2, 9, 0)).await;
    let complaint = |caller: &str| pb::Ticket {
        category: pb::Category::Complaint as i32,
        responsible_unit: "north".into(),
        area: "幸福小区".into(),
        ..repair(caller, "抄表员态度恶劣")
    };
    let mut last = None;
    for (day, caller) in [
        "13800000001",
        "13800000002",
        "13800000003",
        "13800000004",
        "13800000005",
    ]
    .iter()
    .enumerate()
    {
        rig.at(sh(2026, 11, 2 + day as u32, 9, 0));
        last = Some(rig.create(complaint(caller)).await);
    }
    let fifth = last.unwrap();
    // Five different callers about the same unit and area within 30 days: L2.
    assert_eq!(fifth.complaint_level, pb::ComplaintLevel::L2 as i32);
    let events = rig.server.store.ticket_events(&fifth.number).await.unwrap();
    let levelled = events
        .iter()
        .find(|e| e.action == "complaint_level_changed")
        .unwrap();
    assert_eq!(levelled.actor, "system");
    assert_eq!(
        levelled.reason.as_deref(),
        Some("5 different callers, same complaint")
    );
    // The fourth (like every related open complaint) is raised with it.
    let fourth = rig
        .client
        .list_tickets(authed(
            AGENT,
            pb::ListTicketsRequest {
                caller_number: "13800000004".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fourth.tickets[0].complaint_level,
        pb::ComplaintLevel::L2 as i32
    );

    // Only a supervisor sets a level, with a reason.
    let set = |reason: &str| pb::SetComplaintLevelRequest {
        name: fifth.name.clone(),
        level: pb::ComplaintLevel::L1 as i32,
        reason: reason.into(),
    };
    let err = rig
        .client
        .set_complaint_level(authed(AGENT, set("媒体曝光")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = rig
        .client
        .set_complaint_level(authed(ADMIN, set(" ")))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "reason: required")
    );
    let major = rig
        .client
        .set_complaint_level(authed(ADMIN, set("媒体曝光")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(major.complaint_level, pb::ComplaintLevel::L1 as i32);
    let events = rig.server.store.ticket_events(&fifth.number).await.unwrap();
    let overridden = events.last().unwrap();
    assert_eq!(
        (
            overridden.action.as_str(),
            overridden.actor.as_str(),
            overridden.reason.as_deref()
        ),
        ("complaint_level_changed", "admin:ops", Some("媒体曝光"))
    );
    // The level's limit applies from dispatch: L1 is 48 hours.
    let now = sh(2026, 11, 6, 9, 2);
    rig.at(now);
    let dispatched = rig.dispatch(&fifth.name, "north", AGENT).await.unwrap();
    assert_eq!(time(&dispatched.finish_due), now + Duration::hours(48));
    assert_eq!(time(&dispatched.investigation_due), sh(2026, 11, 10, 9, 2));
}

#[tokio::test]
async fn the_watcher_announces_each_deadline_once_and_list_overdue_pages() {
    let t0 = sh(2026, 11, 20, 16, 0);
    let mut rig = Rig::start(t0).await;
    let mut admin_alerts = rig
        .client
        .watch_ticket_alerts(authed(ADMIN, pb::WatchTicketAlertsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let mut south_alerts = rig
        .client
        .watch_ticket_alerts(authed(SOUTH, pb::WatchTicketAlertsRequest {}))
        .await
        .unwrap()
        .into_inner();
    // Three drafts: dispatch due at 16:05, nearly due from 16:04 (the last fifth).
    let mut drafts = Vec::new();
    for i in 0..3 {
        drafts.push(rig.create(repair("13812341234", &format!("第{i}件"))).await);
    }
    assert!(
        rig.watcher
            .sweep(sh(2026, 11, 20, 16, 2))
            .await
            .unwrap()
            .is_empty()
    );
    let nearly = rig.watcher.sweep(sh(2026, 11, 20, 16, 4)).await.unwrap();
    assert_eq!(nearly.len(), 3);
    assert!(nearly.iter().all(|a| a.timeliness.code() == "nearly_due"));
    // Once only.
    assert!(
        rig.watcher
            .sweep(sh(2026, 11, 20, 16, 4))
            .await
            .unwrap()
            .is_empty()
    );
    let overdue = rig.watcher.sweep(sh(2026, 11, 20, 16, 6)).await.unwrap();
    assert_eq!(overdue.len(), 3);
    assert!(
        rig.watcher
            .sweep(sh(2026, 11, 20, 16, 30))
            .await
            .unwrap()
            .is_empty()
    );
    let actions = rig.actions(&drafts[0].number).await;
    assert_eq!(actions, ["create", "nearly_due", "overdue"]);

    // The admin's stream carries all six, in order.
    for expected in [pb::Timeliness::NearlyDue, pb::Timeliness::Overdue] {
        for _ in 0..3 {
            let alert = admin_alerts.next().await.unwrap().unwrap();
            let deadline = alert.deadline.unwrap();
            assert_eq!(deadline.timeliness, expected as i32);
            assert_eq!(deadline.kind, pb::DeadlineKind::Dispatch as i32);
            assert_eq!(time(&deadline.due), sh(2026, 11, 20, 16, 5));
        }
    }

    // ListOverdue at 16:06, two per page.
    rig.at(sh(2026, 11, 20, 16, 6));
    let list = |token: &'static str, page_token: String, unit: &str| {
        let mut client = rig.client.clone();
        let request = pb::ListOverdueRequest {
            page_size: 2,
            page_token,
            timeliness: pb::Timeliness::Overdue as i32,
            unit: unit.into(),
        };
        async move { client.list_overdue(authed(token, request)).await }
    };
    let first = list(AGENT, String::new(), "").await.unwrap().into_inner();
    assert_eq!(first.tickets.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = list(AGENT, first.next_page_token.clone(), "")
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = first
        .tickets
        .iter()
        .chain(&second.tickets)
        .map(|t| t.ticket.as_ref().unwrap().name.clone())
        .collect();
    let created: Vec<String> = drafts.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, created);
    assert_eq!(second.next_page_token, "");
    assert_eq!(
        first.tickets[0].deadlines[0].timeliness,
        pb::Timeliness::Overdue as i32
    );
    // Not dispatched to anyone: no unit sees them; a unit cannot look at another's.
    assert!(
        list(AGENT, String::new(), "south")
            .await
            .unwrap()
            .into_inner()
            .tickets
            .is_empty()
    );
    assert!(
        list(SOUTH, String::new(), "")
            .await
            .unwrap()
            .into_inner()
            .tickets
            .is_empty()
    );
    assert_eq!(
        list(SOUTH, String::new(), "north")
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    // Dispatched to south at 16:10, its contact deadline (2 h) is nearly due from 17:46.
    rig.at(sh(2026, 11, 20, 16, 10));
    let southern = rig.dispatch(&drafts[1].name, "south", AGENT).await.unwrap();
    let raised = rig.watcher.sweep(sh(2026, 11, 20, 17, 50)).await.unwrap();
    assert_eq!(raised.len(), 1, "{raised:?}");
    // The south desk's stream skipped the six alerts about unassigned drafts.
    let alert = south_alerts.next().await.unwrap().unwrap();
    assert_eq!(alert.ticket, southern.name);
    assert_eq!(alert.responsible_unit, "south");
    let deadline = alert.deadline.unwrap();
    assert_eq!(
        (deadline.kind, deadline.timeliness),
        (
            pb::DeadlineKind::Contact as i32,
            pb::Timeliness::NearlyDue as i32
        )
    );
    rig.at(sh(2026, 11, 20, 17, 50));
    let nearly = pb::ListOverdueRequest {
        timeliness: pb::Timeliness::NearlyDue as i32,
        ..Default::default()
    };
    let south_list = rig
        .client
        .list_overdue(authed(SOUTH, nearly))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(south_list.tickets.len(), 1);
    assert_eq!(
        south_list.tickets[0].ticket.as_ref().unwrap().name,
        southern.name
    );
}

#[tokio::test]
async fn unit_tokens_neither_create_nor_edit_tickets() {
    let server = TestServer::start(fresh_store().await).await;
    let mut client = server.client().await;
    let err = client
        .create_ticket(authed(NORTH, create(repair("13812341234", "漏气"), "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("unit tokens cannot create tickets"),
        "{}",
        err.message()
    );
    let ticket = client
        .create_ticket(authed(AGENT, create(repair("13812341234", "漏气"), "")))
        .await
        .unwrap()
        .into_inner();
    let err = client
        .update_ticket(authed(
            NORTH,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    description: "改".into(),
                    ..ticket
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn edits_keep_deadlines_true_and_leave_the_unit_to_dispatch() {
    let t0 = sh(2026, 11, 20, 16, 0);
    let mut rig = Rig::start(t0).await;
    let consultation = rig
        .create(pb::Ticket {
            category: pb::Category::Consultation as i32,
            ..repair("13812341234", "问问改管道的事")
        })
        .await;
    assert_eq!(time(&consultation.dispatch_due), t0 + Duration::minutes(20));
    let edit = |ticket: &pb::Ticket, paths: &[&str]| pb::UpdateTicketRequest {
        ticket: Some(ticket.clone()),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    // Sorted again as a repair: dispatched within 5 minutes of intake.
    let repair_ticket = pb::Ticket {
        category: pb::Category::Repair as i32,
        ..consultation.clone()
    };
    let edited = rig
        .client
        .update_ticket(authed(AGENT, edit(&repair_ticket, &["category"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(time(&edited.dispatch_due), t0 + Duration::minutes(5));

    let dispatched = rig.dispatch(&edited.name, "north", AGENT).await.unwrap();
    let moved = pb::Ticket {
        responsible_unit: "south".into(),
        ..dispatched
    };
    let err = rig
        .client
        .update_ticket(authed(AGENT, edit(&moved, &["responsible_unit"])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("dispatched (已派单)"),
        "{}",
        err.message()
    );
}
