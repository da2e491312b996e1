//! The Tickets gRPC API end to end: a real tonic client over loopback, the real server, a
//! real PostgreSQL database per test.

mod support;

use hotline::api::pb;
use hotline::store::embedded::{Durability, EmbeddedPostgres};
use hotline::store::{CallEntry, NewCustomer, TicketFilter};
use support::{ADMIN, AGENT, TestServer, WECHAT, authed, create, fresh_store, repair};
use tonic::Code;

fn shanghai_today() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y%m%d")
        .to_string()
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[tokio::test]
async fn create_is_idempotent_on_request_id_even_when_concurrent() {
    let server = TestServer::start(fresh_store().await).await;
    let mut client = server.client().await;

    let first = client
        .create_ticket(authed(
            ADMIN,
            create(repair("13812341234", "灶台漏气"), "req-1"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.name, format!("tickets/GD{}-000001", shanghai_today()));
    assert_eq!(first.status, pb::Status::Draft as i32);
    assert_eq!(first.created_by, "admin:ops");
    assert_eq!(first.request_id, "req-1");
    let again = client
        .create_ticket(authed(
            ADMIN,
            create(repair("13812341234", "灶台漏气"), "req-1"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);

    // Eight clients retrying the same create at once: one ticket.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let mut client = server.client().await;
        racers.push(tokio::spawn(async move {
            client
                .create_ticket(authed(
                    AGENT,
                    create(repair("13900001111", "暖气不热"), "req-race"),
                ))
                .await
                .unwrap()
                .into_inner()
                .name
        }));
    }
    let mut names = Vec::new();
    for racer in racers {
        names.push(racer.await.unwrap());
    }
    names.dedup();
    assert_eq!(names.len(), 1, "{names:?}");
    // The losers gave their number back: the next number follows without a gap.
    assert_eq!(names[0], format!("tickets/GD{}-000002", shanghai_today()));

    let store = &server.store;
    for (number, request_id) in [
        (&first.number, "req-1"),
        (&names[0][8..].to_owned(), "req-race"),
    ] {
        let events = store.ticket_events(number).await.unwrap();
        assert_eq!(events.len(), 1, "{request_id}: {events:?}");
        assert_eq!(events[0].action, "create");
    }
    let all = store
        .list_tickets(&TicketFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(all.tickets.len(), 2);
}

#[tokio::test]
async fn pages_have_no_gaps_or_duplicates_even_with_inserts_between_pages() {
    let server = TestServer::start(fresh_store().await).await;
    let mut client = server.client().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let t = client
            .create_ticket(authed(
                ADMIN,
                create(repair("13812341234", &format!("第{i}件")), ""),
            ))
            .await
            .unwrap()
            .into_inner();
        created.push(t.name);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_tickets(authed(
                AGENT,
                pb::ListTicketsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.tickets.into_iter().map(|t| t.name));
        // New tickets arrive while the client pages: they are newer than the first page
        // and must neither shift nor repeat the later pages.
        client
            .create_ticket(authed(
                ADMIN,
                create(repair("13812341234", "翻页中新建"), ""),
            ))
            .await
            .unwrap();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each exactly once");
    assert_eq!(pages, 3);

    let everything = client
        .list_tickets(authed(ADMIN, pb::ListTicketsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(everything.tickets.len(), 7 + 3);
    assert!(everything.next_page_token.is_empty());
}

#[tokio::test]
async fn list_filters_by_phone_customer_category_status_and_time() {
    let server = TestServer::start(fresh_store().await).await;
    let store = &server.store;
    let customer = store
        .create_customer(&NewCustomer {
            account_number: "8800123".into(),
            name: "李大爷".into(),
            phone_numbers: vec!["13700007777".into()],
            address: "和平里5号".into(),
            area: "东城".into(),
            special_group: Some(hotline::store::SpecialGroup::ElderlyAlone),
        })
        .await
        .unwrap();
    assert_eq!(
        store.customers_by_phone("13700007777").await.unwrap(),
        vec![customer.clone()]
    );
    let mut client = server.client().await;
    let mut complaint = repair("13700007777", "抄表员态度差");
    complaint.category = pb::Category::Complaint as i32;
    complaint.complaint_level = pb::ComplaintLevel::L3 as i32;
    complaint.customer_id = Some(customer.id);
    let complaint = client
        .create_ticket(authed(ADMIN, create(complaint, "")))
        .await
        .unwrap()
        .into_inner();
    client
        .create_ticket(authed(
            ADMIN,
            create(repair("13811112222", "热水器打不着火"), ""),
        ))
        .await
        .unwrap();

    let list = |request: pb::ListTicketsRequest| {
        let mut client = client.clone();
        async move {
            client
                .list_tickets(authed(ADMIN, request))
                .await
                .unwrap()
                .into_inner()
                .tickets
                .into_iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
        }
    };
    let only_complaint = vec![complaint.name.clone()];
    let by_phone = pb::ListTicketsRequest {
        caller_number: "13700007777".into(),
        ..Default::default()
    };
    assert_eq!(list(by_phone).await, only_complaint);
    let by_customer = pb::ListTicketsRequest {
        customer_id: Some(customer.id),
        ..Default::default()
    };
    assert_eq!(list(by_customer).await, only_complaint);
    let by_category = pb::ListTicketsRequest {
        category: pb::Category::Complaint as i32,
        ..Default::default()
    };
    assert_eq!(list(by_category).await, only_complaint);
    let drafts = pb::ListTicketsRequest {
        status: pb::Status::Draft as i32,
        ..Default::default()
    };
    assert_eq!(list(drafts).await.len(), 2);
    let closed = pb::ListTicketsRequest {
        status: pb::Status::Closed as i32,
        ..Default::default()
    };
    assert!(list(closed).await.is_empty());
    let created = complaint.create_time.unwrap();
    let from_complaint_on = pb::ListTicketsRequest {
        created_after: Some(created),
        ..Default::default()
    };
    assert_eq!(list(from_complaint_on).await.len(), 2);
    let before_complaint = pb::ListTicketsRequest {
        created_before: Some(created),
        ..Default::default()
    };
    assert!(list(before_complaint).await.is_empty());
}

#[tokio::test]
async fn field_mask_update_writes_one_audit_event_per_changed_field() {
    let server = TestServer::start(fresh_store().await).await;
    server
        .store
        .upsert_unit("east_branch", "东区分公司")
        .await
        .unwrap();
    let mut client = server.client().await;
    let ticket = client
        .create_ticket(authed(
            ADMIN,
            create(repair("13812341234", "燃气表不走字"), ""),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticket.etag, "1");

    let change = pb::Ticket {
        name: ticket.name.clone(),
        description: "燃气表不走字，表号 0012".into(),
        priority: 5,
        responsible_unit: "east_branch".into(),
        // Not in the mask: must stay as it was.
        caller_name: "不应改变".into(),
        etag: ticket.etag.clone(),
        ..Default::default()
    };
    let updated = client
        .update_ticket(authed(
            AGENT,
            pb::UpdateTicketRequest {
                ticket: Some(change.clone()),
                update_mask: mask(&["description", "priority", "responsible_unit"]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.description, "燃气表不走字，表号 0012");
    assert_eq!(updated.priority, 5);
    assert_eq!(updated.responsible_unit, "east_branch");
    assert_eq!(updated.caller_name, ticket.caller_name);
    assert_eq!(updated.etag, "2");

    let events = server.store.ticket_events(&ticket.number).await.unwrap();
    let changes: Vec<_> = events[1..]
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.field.as_deref(),
                e.old_value.as_deref(),
                e.new_value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                "agent:1001",
                "update",
                Some("description"),
                Some("燃气表不走字"),
                Some("燃气表不走字，表号 0012")
            ),
            (
                "agent:1001",
                "update",
                Some("priority"),
                Some("0"),
                Some("5")
            ),
            (
                "agent:1001",
                "update",
                Some("responsible_unit"),
                None,
                Some("east_branch")
            ),
        ]
    );

    // The same change again with the now stale etag: refused, nothing written.
    let stale = client
        .update_ticket(authed(
            AGENT,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    priority: 9,
                    ..change.clone()
                }),
                update_mask: mask(&["priority"]),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    // Changing nothing writes nothing and keeps the etag.
    let unchanged = client
        .update_ticket(authed(
            AGENT,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    etag: String::new(),
                    ..change
                }),
                update_mask: mask(&["priority"]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.etag, "2");
    assert_eq!(
        server
            .store
            .ticket_events(&ticket.number)
            .await
            .unwrap()
            .len(),
        4
    );

    // The level changes only through SetComplaintLevel; a change to complaint makes it L3.
    let refused = client
        .update_ticket(authed(
            ADMIN,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    name: ticket.name.clone(),
                    category: pb::Category::Complaint as i32,
                    complaint_level: pb::ComplaintLevel::L1 as i32,
                    ..Default::default()
                }),
                update_mask: mask(&["category", "complaint_level"]),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("update_mask: complaint_level changes only through SetComplaintLevel"),
        "{refused:?}"
    );
    let complaint = client
        .update_ticket(authed(
            ADMIN,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    name: ticket.name.clone(),
                    category: pb::Category::Complaint as i32,
                    ..Default::default()
                }),
                update_mask: mask(&["category"]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(complaint.complaint_level, pb::ComplaintLevel::L3 as i32);
    let events = server.store.ticket_events(&ticket.number).await.unwrap();
    assert_eq!(events.len(), 6);
    assert_eq!(
        (events[4].field.as_deref(), events[5].field.as_deref()),
        (Some("category"), Some("complaint_level"))
    );
    assert_eq!(events[5].actor, "admin:ops");
}

#[tokio::test]
async fn each_role_gets_exactly_its_rights() {
    let server = TestServer::start(fresh_store().await).await;
    let mut client = server.client().await;
    let hotline_ticket = client
        .create_ticket(authed(AGENT, create(repair("13812341234", "热线来电"), "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hotline_ticket.created_by, "agent:1001");

    // No token, a malformed header, an unknown token.
    let get = |name: &str| pb::GetTicketRequest { name: name.into() };
    let err = client
        .get_ticket(tonic::Request::new(get(&hotline_ticket.name)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut basic = tonic::Request::new(get(&hotline_ticket.name));
    basic
        .metadata_mut()
        .insert("authorization", "Basic YWRtaW4=".parse().unwrap());
    assert_eq!(
        client.get_ticket(basic).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let err = client
        .get_ticket(authed("admin-token-0123456780", get(&hotline_ticket.name)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // The WeChat integration: creates on its channel (implicitly or explicitly), nowhere else.
    let mut from_wechat = repair("13655556666", "公众号报修");
    from_wechat.channel = pb::Channel::Unspecified as i32;
    let wechat_ticket = client
        .create_ticket(authed(WECHAT, create(from_wechat.clone(), "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wechat_ticket.channel, pb::Channel::Wechat as i32);
    assert_eq!(wechat_ticket.created_by, "integration:wechat");
    from_wechat.channel = pb::Channel::Gov12345 as i32;
    let err = client
        .create_ticket(authed(WECHAT, create(from_wechat, "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // A request_id someone else used neither creates a ticket nor reveals theirs.
    let wechat_repair = pb::Ticket {
        channel: pb::Channel::Unspecified as i32,
        ..repair("13655556666", "重复键")
    };
    client
        .create_ticket(authed(WECHAT, create(wechat_repair, "shared-key")))
        .await
        .unwrap();
    let err = client
        .create_ticket(authed(
            AGENT,
            create(repair("13812341234", "重复键"), "shared-key"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().starts_with("request_id: "), "{err:?}");

    // It reads and edits its own tickets, not the hotline's.
    client
        .get_ticket(authed(WECHAT, get(&wechat_ticket.name)))
        .await
        .unwrap();
    let err = client
        .get_ticket(authed(WECHAT, get(&hotline_ticket.name)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let edit = |name: &str| pb::UpdateTicketRequest {
        ticket: Some(pb::Ticket {
            name: name.into(),
            description: "补充：在厨房".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    };
    client
        .update_ticket(authed(WECHAT, edit(&wechat_ticket.name)))
        .await
        .unwrap();
    let err = client
        .update_ticket(authed(WECHAT, edit(&hotline_ticket.name)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let listed = client
        .list_tickets(authed(WECHAT, pb::ListTicketsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tickets.len(), 2);
    assert!(
        listed
            .tickets
            .iter()
            .all(|t| t.channel == pb::Channel::Wechat as i32)
    );
    let err = client
        .list_tickets(authed(
            WECHAT,
            pb::ListTicketsRequest {
                channel: pb::Channel::Hotline as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Agents and admins see everything.
    for token in [AGENT, ADMIN] {
        let all = client
            .list_tickets(authed(token, pb::ListTicketsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.tickets.len(), 3);
    }
    // The integration's edit is in the audit trail under its name.
    let events = server
        .store
        .ticket_events(&wechat_ticket.number)
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().actor, "integration:wechat");
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let server = TestServer::start(fresh_store().await).await;
    let mut client = server.client().await;
    let existing = client
        .create_ticket(authed(ADMIN, create(repair("13812341234", "已有工单"), "")))
        .await
        .unwrap()
        .into_inner();

    let with = |edit: fn(&mut pb::Ticket)| {
        let mut t = repair("13812341234", "描述");
        edit(&mut t);
        create(t, "")
    };
    let creates: Vec<(pb::CreateTicketRequest, Code, &str)> = vec![
        (
            pb::CreateTicketRequest::default(),
            Code::InvalidArgument,
            "ticket: required",
        ),
        (
            with(|t| t.caller_number = "12".into()),
            Code::InvalidArgument,
            "ticket.caller_number: must be 3 to 20 digits, optionally starting with +",
        ),
        (
            with(|t| t.caller_number = "138-1234".into()),
            Code::InvalidArgument,
            "ticket.caller_number: must be 3 to 20 digits",
        ),
        (
            with(|t| t.channel = 0),
            Code::InvalidArgument,
            "ticket.channel: required",
        ),
        (
            with(|t| t.channel = 42),
            Code::InvalidArgument,
            "ticket.channel: unknown value 42",
        ),
        (
            with(|t| t.category = 0),
            Code::InvalidArgument,
            "ticket.category: required",
        ),
        (
            with(|t| t.description = "  ".into()),
            Code::InvalidArgument,
            "ticket.description: required",
        ),
        (
            with(|t| t.description = "长".repeat(4001)),
            Code::InvalidArgument,
            "ticket.description: at most 4000 characters",
        ),
        (
            with(|t| t.priority = 10),
            Code::InvalidArgument,
            "ticket.priority: must be between 0",
        ),
        (
            with(|t| t.customer_id = Some(-3)),
            Code::InvalidArgument,
            "ticket.customer_id: must be a positive customer id",
        ),
        (
            with(|t| t.customer_id = Some(777)),
            Code::InvalidArgument,
            "ticket.customer_id: no customer with this id",
        ),
        (
            with(|t| t.responsible_unit = "nowhere".into()),
            Code::InvalidArgument,
            "ticket.responsible_unit: no unit with this code",
        ),
        (
            with(|t| t.responsible_unit = "East Branch".into()),
            Code::InvalidArgument,
            "ticket.responsible_unit: must be a unit code",
        ),
        (
            with(|t| t.parent_ticket = "tickets/GD20200101-000001".into()),
            Code::InvalidArgument,
            "ticket.parent_ticket: no ticket GD20200101-000001",
        ),
        (
            with(|t| t.parent_ticket = "GD1".into()),
            Code::InvalidArgument,
            "ticket.parent_ticket: must look like tickets/GD20261122-000123",
        ),
        (
            with(|t| t.call_id = "no-such-call".into()),
            Code::InvalidArgument,
            "ticket.call_id: no call with this id",
        ),
        (
            with(|t| t.complaint_level = pb::ComplaintLevel::L1 as i32),
            Code::InvalidArgument,
            "ticket.complaint_level: only tickets of category complaint",
        ),
        (
            pb::CreateTicketRequest {
                request_id: "has space".into(),
                ..with(|_| {})
            },
            Code::InvalidArgument,
            "request_id: must be up to 100",
        ),
    ];
    for (request, code, message) in creates {
        let err = client
            .create_ticket(authed(ADMIN, request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{message}: {err:?}");
        assert!(err.message().starts_with(message), "{message}: {err:?}");
    }

    let get_err = |name: &'static str| {
        let mut client = client.clone();
        async move {
            client
                .get_ticket(authed(ADMIN, pb::GetTicketRequest { name: name.into() }))
                .await
                .unwrap_err()
        }
    };
    let err = get_err("").await;
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "name: required")
    );
    let err = get_err("tickets/123").await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("name: must look like"), "{err:?}");
    let err = get_err("tickets/GD20200101-000009").await;
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "ticket GD20200101-000009 not found");

    let lists: Vec<(pb::ListTicketsRequest, &str)> = vec![
        (
            pb::ListTicketsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token: malformed",
        ),
        (
            pb::ListTicketsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size: must not be negative",
        ),
        (
            pb::ListTicketsRequest {
                caller_number: "abc".into(),
                ..Default::default()
            },
            "caller_number: must be 3 to 20 digits",
        ),
        (
            pb::ListTicketsRequest {
                status: 99,
                ..Default::default()
            },
            "status: unknown value 99",
        ),
        (
            pb::ListTicketsRequest {
                created_after: Some(prost_types::Timestamp {
                    seconds: 100,
                    nanos: 0,
                }),
                created_before: Some(prost_types::Timestamp {
                    seconds: 50,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "created_before: must be later than created_after",
        ),
        (
            pb::ListTicketsRequest {
                created_after: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -5,
                }),
                ..Default::default()
            },
            "created_after: not a valid timestamp",
        ),
    ];
    for (request, message) in lists {
        let err = client
            .list_tickets(authed(ADMIN, request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{message}: {err:?}");
        assert!(err.message().starts_with(message), "{message}: {err:?}");
    }

    let update = |paths: &[&str], edit: fn(&mut pb::Ticket)| {
        let mut t = pb::Ticket {
            name: existing.name.clone(),
            description: "新描述".into(),
            ..Default::default()
        };
        edit(&mut t);
        pb::UpdateTicketRequest {
            ticket: Some(t),
            update_mask: mask(paths),
        }
    };
    let updates: Vec<(pb::UpdateTicketRequest, Code, &str)> = vec![
        (
            update(&["foo"], |_| {}),
            Code::InvalidArgument,
            "update_mask: unknown field \"foo\"",
        ),
        (
            update(&[], |_| {}),
            Code::InvalidArgument,
            "update_mask: required",
        ),
        (
            update(&["status"], |t| t.status = pb::Status::Closed as i32),
            Code::InvalidArgument,
            "update_mask: status changes only through the ticket transition methods",
        ),
        (
            update(&["channel"], |_| {}),
            Code::InvalidArgument,
            "update_mask: field \"channel\" cannot be changed",
        ),
        (
            update(&["description"], |t| t.name = "tickets/oops".into()),
            Code::InvalidArgument,
            "ticket.name: must look like",
        ),
        (
            update(&["description"], |t| t.etag = "v7".into()),
            Code::InvalidArgument,
            "ticket.etag: malformed",
        ),
        (
            update(&["priority"], |t| t.priority = -1),
            Code::InvalidArgument,
            "ticket.priority: must be between 0",
        ),
        (
            update(&["category"], |_| {}),
            Code::InvalidArgument,
            "ticket.category: required",
        ),
        (
            update(&["description"], |t| {
                t.name = "tickets/GD20200101-000009".into()
            }),
            Code::NotFound,
            "ticket GD20200101-000009 not found",
        ),
    ];
    for (request, code, message) in updates {
        let err = client
            .update_ticket(authed(ADMIN, request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{message}: {err:?}");
        assert!(err.message().starts_with(message), "{message}: {err:?}");
    }
    // None of the refused writes left a trace.
    assert_eq!(
        server
            .store
            .ticket_events(&existing.number)
            .await
            .unwrap()
            .len(),
        1
    );
    let all = server
        .store
        .list_tickets(&TicketFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(all.tickets.len(), 1);
}

#[tokio::test]
async fn tickets_link_calls_and_urges_link_their_ticket() {
    let server = TestServer::start(fresh_store().await).await;
    let store = &server.store;
    let arrived = chrono::Utc::now();
    let call_id = "a84b4c76e66710@pbx";
    let arrived_entry = || CallEntry::Arrived {
        caller: "13812341234".into(),
        called: "96777".into(),
        at: arrived,
    };
    // The second Arrived is a retransmitted INVITE: still one call.
    support::journal_calls(
        store,
        vec![(call_id, vec![arrived_entry(), arrived_entry()])],
    )
    .await;
    assert_eq!(
        store
            .count_calls_from("13812341234", arrived - chrono::Duration::days(30))
            .await
            .unwrap(),
        1
    );
    let mut client = server.client().await;
    let mut from_call = repair("13812341234", "来电报修");
    from_call.call_id = call_id.into();
    let first = client
        .create_ticket(authed(AGENT, create(from_call, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.call_id, call_id);
    let mut urge = repair("13812341234", "催办：还没人来");
    urge.category = pb::Category::Urge as i32;
    urge.parent_ticket = first.name.clone();
    let urge = client
        .create_ticket(authed(AGENT, create(urge, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(urge.parent_ticket, first.name);
}

#[tokio::test]
async fn database_outage_is_unavailable_and_health_says_not_serving_until_it_is_back() {
    let dir = support::reachable_temp_dir();
    let cluster = EmbeddedPostgres::start(&dir.path().join("pg"), Durability::Throwaway)
        .await
        .unwrap();
    cluster.create_database("outage").await.unwrap();
    let store = support::store_on(cluster.connect_options("outage")).await;
    let server = TestServer::start(store).await;
    let mut client = server.client().await;
    let ticket = client
        .create_ticket(authed(ADMIN, create(repair("13812341234", "停库前"), "")))
        .await
        .unwrap()
        .into_inner();

    cluster.stop().await.unwrap();

    let err = client
        .create_ticket(authed(ADMIN, create(repair("13812341234", "停库后"), "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().starts_with("ticket store unavailable: ")
            && err.message().ends_with("; retry later"),
        "{err:?}"
    );
    let err = client
        .get_ticket(authed(ADMIN, pb::GetTicketRequest { name: ticket.name }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    // Health answers, and says the tickets service cannot serve while the database is
    // down, and that it can again once it is back.
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let mut wait_for_status = async |expected: ServingStatus| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "hotline.v1.Tickets".into(),
                })
                .await
                .unwrap()
                .into_inner();
            if answer.status == expected as i32 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "health stayed {} instead of {expected:?}",
                answer.status
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    wait_for_status(ServingStatus::NotServing).await;
    let cluster = EmbeddedPostgres::start(&dir.path().join("pg"), Durability::Throwaway)
        .await
        .unwrap();
    wait_for_status(ServingStatus::Serving).await;
    client
        .create_ticket(authed(ADMIN, create(repair("13812341234", "恢复后"), "")))
        .await
        .unwrap();
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_describes_the_tickets_service_and_well_known_types_without_a_token() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start(fresh_store().await).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("hotline.v1.Tickets".into()),
        MessageRequest::FileByFilename("google/protobuf/field_mask.proto".into()),
    ]
    .map(|message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let services: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(services.contains(&"hotline.v1.Tickets"), "{services:?}");
    assert!(services.contains(&"grpc.health.v1.Health"), "{services:?}");
    for expected in [
        "hotline/v1/tickets.proto",
        "google/protobuf/field_mask.proto",
    ] {
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            answers.message().await.unwrap().unwrap().message_response
        else {
            panic!("expected a file descriptor for {expected}");
        };
        let names: Vec<String> = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                <prost_types::FileDescriptorProto as prost::Message>::decode(bytes.as_slice())
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect();
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
}

#[tokio::test]
async fn the_daemon_runs_without_configuration_and_stops_its_database() {
    let dir = support::reachable_temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    // Without a configuration the prompts are read from ./sounds/zh-CN.
    std::os::unix::fs::symlink(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds"),
        dir.path().join("sounds"),
    )
    .unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .args(["--listen", &listen, "--log-format", "json"])
        .args(["--sip-listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Wait (bounded) until it answers health checks: initdb takes a few seconds.
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{listen}")).unwrap();
    let mut channel = None;
    for _ in 0..600 {
        if let Ok(ch) = endpoint.connect().await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
            if health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .is_ok()
            {
                channel = Some(ch);
                break;
            }
        }
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "hotlined exited early"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let channel = channel.expect("hotlined did not come up within 60 s");

    let token_file = dir.path().join("var/admin.token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // What the daemon keeps about callers is its user's only. As root the server (the
    // postgres user) may pass through the state folder to its cluster, nothing more.
    let mode_of = |path: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(path))
                .unwrap()
                .permissions(),
        ) & 0o777
    };
    // SAFETY: geteuid has no preconditions.
    let state_mode = if unsafe { libc::geteuid() } == 0 {
        0o710
    } else {
        0o700
    };
    assert_eq!(mode_of("var"), state_mode);
    assert_eq!(mode_of("var/recordings"), 0o700);
    assert_eq!(mode_of("var/spool"), 0o700);
    assert_eq!(mode_of("var/spool/journal.spool"), 0o600);
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let mut client = pb::tickets_client::TicketsClient::new(channel);
    let created = client
        .create_ticket(authed(
            &token,
            create(repair("13812341234", "守护进程测试"), "d-1"),
        ))
        .await
        .unwrap()
        .into_inner();
    let got = client
        .get_ticket(authed(
            &token,
            pb::GetTicketRequest {
                name: created.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
    assert_eq!(created.created_by, "admin:admin.token");

    let pg_root = dir.path().join("var/postgres");
    let postmaster: i32 = std::fs::read_to_string(pg_root.join("data/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(support::process_alive(postmaster));

    // The private PostgreSQL is stopped behind the daemon's back (what `pg_ctl stop -m fast`
    // does): the daemon restarts it and tickets work again.
    // SAFETY: signalling the test daemon's server process.
    unsafe { libc::kill(postmaster, libc::SIGINT) };
    let read_pid = || {
        std::fs::read_to_string(pg_root.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse::<i32>()
            .ok()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let restarted = loop {
        if let Some(pid) = read_pid().filter(|&pid| pid != postmaster)
            && support::process_alive(pid)
            && client
                .get_ticket(authed(
                    &token,
                    pb::GetTicketRequest {
                        name: created.name.clone(),
                    },
                ))
                .await
                .is_ok()
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the private PostgreSQL was not restarted within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let postmaster = restarted;

    let pid = i32::try_from(daemon.id().unwrap()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let output = daemon.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(!support::server_alive(&pg_root), "{log}");
    assert!(!support::process_alive(postmaster));
    assert!(
        log.contains("the private PostgreSQL exited; restarting it"),
        "{log}"
    );
    // The token file path is logged, the token never.
    assert!(log.contains("admin.token"), "{log}");
    assert!(!log.contains(&token), "{log}");
    // Phone numbers never appear unmasked.
    assert!(!log.contains("13812341234"), "{log}");
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let missing = hotline::config::TlsConfig {
        cert: dir.path().join("nope.pem"),
        key: key.clone(),
    };
    let err = hotline::api::load_tls(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with("reading certificate ") && err.contains("nope.pem"),
        "{err}"
    );

    let tls = hotline::api::load_tls(&hotline::config::TlsConfig {
        cert: cert.clone(),
        key,
    })
    .unwrap();
    let server = TestServer::start_with_tls(fresh_store().await, Some(tls)).await;
    let client_tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&cert).unwrap(),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://{}", server.addr))
        .unwrap()
        .tls_config(client_tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::tickets_client::TicketsClient::new(channel);
    let created = client
        .create_ticket(authed(ADMIN, create(repair("13812341234", "加密连接"), "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.description, "加密连接");

    // A plaintext client gets no answer from a TLS port.
    let mut plain = server.client().await;
    let err = plain
        .get_ticket(authed(ADMIN, pb::GetTicketRequest { name: created.name }))
        .await
        .unwrap_err();
    // A transport failure, not an answer from the service.
    assert!(
        matches!(
            err.code(),
            Code::Unknown | Code::Unavailable | Code::Internal
        ),
        "{err:?}"
    );
}

/// The schema's CHECK lists name exactly the codes of `tickets::model`: every value stores and
/// reads back.
#[tokio::test]
async fn every_model_code_fits_the_schema() {
    use hotline::tickets::{Category, Channel, ComplaintLevel, Status};
    let store = fresh_store().await;
    let base = hotline::store::NewTicket {
        request_id: None,
        channel: Channel::Hotline,
        category: Category::Query,
        complaint_level: None,
        status: Status::Draft,
        priority: 0,
        caller_name: String::new(),
        caller_number: "13812341234".into(),
        caller_address: String::new(),
        description: "编码检查".into(),
        customer_id: None,
        responsible_unit: None,
        dispatch_due: None,
        contact_due: None,
        finish_due: None,
        callback_due: None,
        investigation_due: None,
        area: String::new(),
        parent_number: None,
        call_id: None,
        created_by: "test".into(),
        created_at: chrono::Utc::now(),
    };
    let mut variants = Vec::new();
    variants.extend(
        Channel::ALL
            .iter()
            .map(|&channel| hotline::store::NewTicket {
                channel,
                ..base.clone()
            }),
    );
    variants.extend(
        Category::ALL
            .iter()
            .map(|&category| hotline::store::NewTicket {
                category,
                ..base.clone()
            }),
    );
    variants.extend(Status::ALL.iter().map(|&status| hotline::store::NewTicket {
        status,
        ..base.clone()
    }));
    variants.extend(
        ComplaintLevel::ALL
            .iter()
            .map(|&level| hotline::store::NewTicket {
                category: Category::Complaint,
                complaint_level: Some(level),
                ..base.clone()
            }),
    );
    for new in variants {
        let (stored, created) = store.create_ticket(&new).await.unwrap();
        assert!(created);
        assert_eq!(
            (
                stored.channel,
                stored.category,
                stored.status,
                stored.complaint_level
            ),
            (new.channel, new.category, new.status, new.complaint_level)
        );
        assert_eq!(store.get_ticket(&stored.number).await.unwrap(), stored);
    }
}
