//! The second pass of the service rules (issue 13) through the gRPC API end to end: a real
//! tonic client over loopback, the real server on an adjustable clock, a real PostgreSQL
//! database per test. The rules' edges are table-tested in `src/tickets`; these tests check
//! that each one reaches the API, the store and the overdue watcher.

#[allow(dead_code)] // Shared with the other rules tests.
#[path = "support/rules_rig.rs"]
mod rig;
#[allow(dead_code)] // Shared test helpers: this binary seeds no call rows.
mod support;

use hotline::api::pb;
use hotline::tickets::config::{CategoryLimits, Span};
use hotline::tickets::{Category, RulesConfig};
use rig::{Rig, rules_2026_with, sh, status, time};
use support::{AGENT, NORTH, SOUTH, authed};
use tonic::Code;

fn leak(area: &str) -> pb::Ticket {
    pb::Ticket {
        channel: pb::Channel::Hotline as i32,
        category: pb::Category::Leak as i32,
        priority: 9,
        caller_name: "李先生".into(),
        caller_number: "13912345678".into(),
        caller_address: "幸福路12号".into(),
        description: "厨房有很重的燃气味".into(),
        area: area.into(),
        ..Default::default()
    }
}

/// The overdue tickets at the rig's clock, as (number, [deadline kinds]).
async fn overdue(rig: &mut Rig) -> Vec<(String, Vec<i32>)> {
    let request = pb::ListOverdueRequest {
        page_size: 50,
        page_token: String::new(),
        timeliness: pb::Timeliness::Overdue as i32,
        unit: String::new(),
    };
    rig.client
        .list_overdue(authed(AGENT, request))
        .await
        .unwrap()
        .into_inner()
        .tickets
        .into_iter()
        .map(|t| {
            let kinds = t.deadlines.iter().map(|d| d.kind).collect();
            (t.ticket.unwrap().number, kinds)
        })
        .collect()
}

async fn report_on_site(
    rig: &mut Rig,
    name: &str,
    token: &str,
) -> Result<pb::Ticket, tonic::Status> {
    rig.client
        .report_on_site(authed(token, pb::ReportOnSiteRequest { name: name.into() }))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_leak_nobody_dispatches_is_overdue_in_minutes_and_the_crew_has_an_on_site_clock() {
    let mut config = RulesConfig {
        rural_areas: vec!["崇明".into()],
        ..RulesConfig::default()
    };
    config.rural_limits.insert(
        Category::Leak,
        CategoryLimits {
            on_site: Some(Span::Minutes(60)),
            ..CategoryLimits::default()
        },
    );
    // A Saturday night in the National Day holiday: leaks know no working days.
    let t0 = sh(2026, 10, 3, 23, 0);
    let mut rig = Rig::start_with(t0, rules_2026_with(config)).await;
    let urban = rig.create(leak("浦东")).await;
    let rural = rig.create(leak("崇明")).await;
    for ticket in [&urban, &rural] {
        assert_eq!(time(&ticket.dispatch_due), sh(2026, 10, 3, 23, 5));
        assert_eq!(ticket.on_site_due, None);
    }

    rig.at(sh(2026, 10, 3, 23, 5));
    assert!(overdue(&mut rig).await.is_empty(), "due, not yet overdue");
    rig.at(sh(2026, 10, 3, 23, 6));
    let dispatch = pb::DeadlineKind::Dispatch as i32;
    assert_eq!(
        overdue(&mut rig).await,
        vec![
            (urban.number.clone(), vec![dispatch]),
            (rural.number.clone(), vec![dispatch])
        ]
    );
    let alerts = rig.watcher.sweep(sh(2026, 10, 3, 23, 6)).await.unwrap();
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a.timeliness.code() == "overdue"));

    // Phoned to the unit, then dispatched in the system at 23:06.
    let urban = rig.dispatch(&urban.name, "north", AGENT).await.unwrap();
    let rural = rig.dispatch(&rural.name, "north", AGENT).await.unwrap();
    assert_eq!(time(&urban.on_site_due), sh(2026, 10, 3, 23, 36));
    assert_eq!(time(&rural.on_site_due), sh(2026, 10, 4, 0, 6));
    assert_eq!(urban.finish_due, None);

    rig.at(sh(2026, 10, 3, 23, 37));
    let on_site = pb::DeadlineKind::OnSite as i32;
    assert_eq!(
        overdue(&mut rig).await,
        vec![(urban.number.clone(), vec![on_site])]
    );
    let alerts = rig.watcher.sweep(sh(2026, 10, 3, 23, 37)).await.unwrap();
    // The urban crew's on-site deadline is overdue; the rural one has 29 of its 60 minutes.
    let raised: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a.number.as_str(),
                a.deadline.kind.code(),
                a.timeliness.code(),
            )
        })
        .collect();
    assert_eq!(raised, [(urban.number.as_str(), "on_site", "overdue")]);

    // Only the responsible unit reports, once.
    let denied = report_on_site(&mut rig, &urban.name, SOUTH)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    rig.at(sh(2026, 10, 3, 23, 40));
    let arrived = report_on_site(&mut rig, &urban.name, NORTH).await.unwrap();
    assert_eq!(status(&arrived), pb::Status::Accepted);
    assert_eq!(time(&arrived.on_site_time), sh(2026, 10, 3, 23, 40));
    let again = report_on_site(&mut rig, &urban.name, NORTH)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::InvalidArgument, "{again:?}");
    assert!(again.message().contains("already reported"), "{again:?}");
    assert!(overdue(&mut rig).await.is_empty());
    assert_eq!(
        rig.actions(&urban.number).await,
        ["create", "overdue", "dispatched", "overdue", "on_site"]
    );
}

fn complaint(caller: &str, area: &str) -> pb::Ticket {
    pb::Ticket {
        channel: pb::Channel::Hotline as i32,
        category: pb::Category::Complaint as i32,
        caller_name: "赵女士".into(),
        caller_number: caller.into(),
        caller_address: "幸福路12号".into(),
        description: "抄表员态度恶劣".into(),
        responsible_unit: "north".into(),
        area: area.into(),
        ..Default::default()
    }
}

async fn level(rig: &mut Rig, name: &str) -> pb::ComplaintLevel {
    let ticket = rig
        .client
        .get_ticket(authed(AGENT, pb::GetTicketRequest { name: name.into() }))
        .await
        .unwrap()
        .into_inner();
    pb::ComplaintLevel::try_from(ticket.complaint_level).unwrap()
}

#[tokio::test]
async fn complaint_levels_change_only_with_a_reason_and_raise_every_related_open_complaint() {
    let mut rig = Rig::start_with(
        sh(2026, 11, 2, 9, 0),
        rules_2026_with(RulesConfig::default()),
    )
    .await;
    // A closed complaint counts among the callers but is not raised.
    let closed = rig.create(complaint("13800000009", "幸福小区")).await;
    rig.client
        .close_ticket(authed(
            AGENT,
            pb::CloseTicketRequest {
                name: closed.name.clone(),
                reason: "当场解释清楚".into(),
            },
        ))
        .await
        .unwrap();
    let mut open = Vec::new();
    for (i, caller) in ["13800000001", "13800000002", "13800000003"]
        .iter()
        .enumerate()
    {
        rig.at(sh(2026, 11, 3 + i as u32, 9, 0));
        open.push(rig.create(complaint(caller, "幸福小区")).await);
    }
    // Another area is another subject.
    let elsewhere = rig.create(complaint("13800000008", "阳光花园")).await;
    for ticket in open.iter().chain([&elsewhere]) {
        assert_eq!(level(&mut rig, &ticket.name).await, pb::ComplaintLevel::L3);
    }
    // Four different callers: still light. The fifth makes every open one L2 (000 §14.6).
    rig.at(sh(2026, 11, 10, 9, 0));
    let fifth = rig.create(complaint("13800000004", "幸福小区")).await;
    assert_eq!(fifth.complaint_level, pb::ComplaintLevel::L2 as i32);
    for ticket in &open {
        assert_eq!(
            level(&mut rig, &ticket.name).await,
            pb::ComplaintLevel::L2,
            "{}",
            ticket.number
        );
        let events = rig
            .server
            .store
            .ticket_events(&ticket.number)
            .await
            .unwrap();
        let raised = events.last().unwrap();
        assert_eq!(
            (
                raised.action.as_str(),
                raised.actor.as_str(),
                raised.detail.as_deref()
            ),
            ("complaint_level_changed", "system", Some("l3 → l2"))
        );
    }
    assert_eq!(level(&mut rig, &closed.name).await, pb::ComplaintLevel::L3);
    assert_eq!(
        level(&mut rig, &elsewhere.name).await,
        pb::ComplaintLevel::L3
    );

    // UpdateTicket cannot set it: INVALID_ARGUMENT pointing to SetComplaintLevel.
    let refused = rig
        .client
        .update_ticket(authed(
            AGENT,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    name: elsewhere.name.clone(),
                    complaint_level: pb::ComplaintLevel::L1 as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["complaint_level".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("complaint_level"), "{refused:?}");
    assert!(
        refused.message().contains("SetComplaintLevel"),
        "{refused:?}"
    );
    assert_eq!(
        level(&mut rig, &elsewhere.name).await,
        pb::ComplaintLevel::L3
    );
}

/// Five complaints by one caller about one event, the first `first_days_ago` days before the
/// fifth; the levels of the first and the fifth afterwards.
async fn same_caller_repeats(
    config: RulesConfig,
    first_days_ago: u32,
) -> (pb::ComplaintLevel, pb::ComplaintLevel) {
    let fifth_at = sh(2026, 12, 20, 9, 0);
    let mut rig = Rig::start_with(fifth_at, rules_2026_with(config)).await;
    let mut names = Vec::new();
    for days_ago in [first_days_ago, 4, 3, 2, 0] {
        rig.at(fifth_at - chrono::Duration::days(days_ago.into()));
        names.push(rig.create(complaint("13900000001", "幸福小区")).await.name);
    }
    (
        level(&mut rig, &names[0]).await,
        level(&mut rig, &names[4]).await,
    )
}

#[tokio::test]
async fn the_same_callers_fifth_complaint_is_major_with_no_window_unless_one_is_configured() {
    use pb::ComplaintLevel::{L1, L3};
    // 000 §14.6 sets no window for the same caller: 90 days apart still counts.
    assert_eq!(
        same_caller_repeats(RulesConfig::default(), 90).await,
        (L1, L1)
    );
    // A configured window of 30 days: the first is out at 31 days, in at 30.
    let windowed = || {
        let mut config = RulesConfig::default();
        config.complaint.same_caller_window_days = Some(30);
        config
    };
    assert_eq!(same_caller_repeats(windowed(), 31).await, (L3, L3));
    assert_eq!(same_caller_repeats(windowed(), 30).await, (L1, L1));
}

async fn ask_extension(
    rig: &mut Rig,
    name: &str,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<pb::Ticket, tonic::Status> {
    rig.client
        .request_extension(authed(
            NORTH,
            pb::RequestExtensionRequest {
                name: name.into(),
                until: Some(rig::ts(until)),
                reason: "需要第三方鉴定".into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_light_complaint_can_ask_for_an_extension_until_half_its_three_hours() {
    // An L3 complaint dispatched at 10:00 is due at 13:00; with the default notice (half the
    // span) its unit may ask until 11:30 — under the old 1-working-day notice, never.
    let t0 = sh(2026, 11, 20, 10, 0);
    let mut rig = Rig::start_with(t0, rules_2026_with(RulesConfig::default())).await;
    let created = rig.create(complaint("13800000001", "")).await;
    let ticket = rig.dispatch(&created.name, "north", AGENT).await.unwrap();
    assert_eq!(time(&ticket.finish_due), sh(2026, 11, 20, 13, 0));

    rig.at(sh(2026, 11, 20, 11, 31));
    let late = ask_extension(&mut rig, &ticket.name, sh(2026, 11, 20, 16, 0))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(
        late.message().contains("2026-11-20 11:30 (Asia/Shanghai)"),
        "{late:?}"
    );
    assert!(late.message().contains("50% of the span"), "{late:?}");

    rig.at(sh(2026, 11, 20, 11, 30));
    let asked = ask_extension(&mut rig, &ticket.name, sh(2026, 11, 20, 16, 0))
        .await
        .unwrap();
    assert_eq!(status(&asked), pb::Status::ExtensionRequested);
}

/// Replies `count` repairs of `unit` at `at`, each from another caller (no repeats); their
/// names.
async fn replied_repairs(
    rig: &mut Rig,
    unit: &str,
    token: &str,
    count: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    rig.at(at);
    let mut names = Vec::new();
    for i in 0..count {
        let caller = format!(
            "13{}{:08}",
            unit.as_bytes()[0] % 10,
            at.timestamp() % 100_000 * 100 + i as i64
        );
        let created = rig
            .create(support::repair(&caller, &format!("第{i}件")))
            .await;
        rig.dispatch(&created.name, unit, AGENT).await.unwrap();
        let replied = rig
            .client
            .reply_ticket(authed(
                token,
                pb::ReplyTicketRequest {
                    name: created.name.clone(),
                    summary: "更换了减压阀".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        // Waits for the day's sample: no callback yet.
        assert_eq!(
            (replied.callback_due, replied.next_callback_time),
            (None, None)
        );
        names.push(created.name);
    }
    names
}

/// How many of `names` have a callback due.
async fn called_back(rig: &mut Rig, names: &[String]) -> usize {
    let mut count = 0;
    for name in names {
        let ticket = rig
            .client
            .get_ticket(authed(AGENT, pb::GetTicketRequest { name: name.clone() }))
            .await
            .unwrap()
            .into_inner();
        if ticket.callback_due.is_some() {
            assert!(ticket.next_callback_time.is_some());
            count += 1;
        }
    }
    count
}

#[tokio::test]
async fn callback_sampling_calls_back_the_tiers_exact_share_of_each_units_day() {
    let mut config = RulesConfig::default();
    config.callback.sampling = Some(hotline::tickets::config::SamplingConfig {
        seed: 7,
        ..Default::default()
    });
    let monday = sh(2026, 11, 23, 10, 0);
    let mut rig = Rig::start_with(monday, rules_2026_with(config)).await;
    // North replies 21 repairs on Monday (tier 21–50: 20%, 4.2 → 5), south 3 (30%, 0.9 → 1).
    let north = replied_repairs(&mut rig, "north", NORTH, 21, monday).await;
    let south = replied_repairs(&mut rig, "south", SOUTH, 3, monday).await;
    // A complaint needs a human callback at once and is no part of the sample.
    let created = rig.create(complaint("13800000001", "")).await;
    rig.dispatch(&created.name, "north", AGENT).await.unwrap();
    let complaint = rig
        .client
        .reply_ticket(authed(
            NORTH,
            pb::ReplyTicketRequest {
                name: created.name.clone(),
                summary: "已上门向客户道歉并更换抄表员，客户表示认可".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(complaint.callback_due.is_some());

    // Not drawn while the day lasts.
    rig.watcher.sweep(sh(2026, 11, 23, 23, 59)).await.unwrap();
    assert_eq!(called_back(&mut rig, &north).await, 0);
    // Tuesday's first reply waits for Tuesday's sample.
    let tuesday = replied_repairs(&mut rig, "north", NORTH, 1, sh(2026, 11, 24, 0, 3)).await;
    rig.watcher.sweep(sh(2026, 11, 24, 0, 5)).await.unwrap();
    assert_eq!(called_back(&mut rig, &north).await, 5);
    assert_eq!(called_back(&mut rig, &south).await, 1);
    assert_eq!(called_back(&mut rig, &tuesday).await, 0);
    // Drawn once: a later sweep changes nothing.
    rig.watcher.sweep(sh(2026, 11, 24, 1, 0)).await.unwrap();
    assert_eq!(called_back(&mut rig, &north).await, 5);
    let number = north[0].trim_start_matches("tickets/");
    let events = rig.server.store.ticket_events(number).await.unwrap();
    let drawn = events
        .iter()
        .find(|e| e.action == "callback_sampled")
        .unwrap();
    assert_eq!(drawn.actor, "system");
    assert!(
        drawn
            .detail
            .as_deref()
            .unwrap()
            .ends_with("5 of 21 called back"),
        "{drawn:?}"
    );
    // Wednesday: Tuesday's single reply is called back (30% of 1, rounded up).
    rig.watcher.sweep(sh(2026, 11, 25, 0, 1)).await.unwrap();
    assert_eq!(called_back(&mut rig, &tuesday).await, 1);
}

#[tokio::test]
async fn a_consultation_is_answered_to_the_caller_within_a_working_day_of_the_units_reply() {
    let friday = sh(2026, 11, 20, 16, 0);
    let mut rig = Rig::start_with(friday, rules_2026_with(RulesConfig::default())).await;
    let created = rig
        .create(pb::Ticket {
            category: pb::Category::Consultation as i32,
            ..support::repair("13812341234", "阶梯气价怎么计算")
        })
        .await;
    rig.dispatch(&created.name, "north", AGENT).await.unwrap();
    let replied = rig.reply(&created.name).await;
    // No satisfaction callback (000 §14.9), but the centre answers the caller (§14.2).
    assert_eq!(replied.callback_due, None);
    assert_eq!(time(&replied.reply_to_caller_due), sh(2026, 11, 23, 16, 0));
    assert_eq!(time(&replied.next_callback_time), sh(2026, 11, 21, 9, 0));
    rig.at(sh(2026, 11, 21, 9, 0));
    let due = rig
        .client
        .list_due_callbacks(authed(AGENT, pb::ListDueCallbacksRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(due.tickets.len(), 1);

    // Not answered by Monday 16:00: overdue, alerted once.
    rig.at(sh(2026, 11, 23, 16, 1));
    let reply_to_caller = pb::DeadlineKind::ReplyToCaller as i32;
    assert_eq!(
        overdue(&mut rig).await,
        vec![(created.number.clone(), vec![reply_to_caller])]
    );
    let alerts = rig.watcher.sweep(sh(2026, 11, 23, 16, 1)).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].deadline.kind.code(), "reply_to_caller");

    // The agent answers and closes: nothing binds any more.
    rig.client
        .close_ticket(authed(
            AGENT,
            pb::CloseTicketRequest {
                name: created.name.clone(),
                reason: "已电话答复客户".into(),
            },
        ))
        .await
        .unwrap();
    assert!(overdue(&mut rig).await.is_empty());
}

/// The callback plan the unit's reply gave ticket `number` (from its audit trail).
async fn callback_plan(rig: &Rig, number: &str) -> String {
    let events = rig.server.store.ticket_events(number).await.unwrap();
    let replied = events.iter().rev().find(|e| e.action == "replied").unwrap();
    replied.detail.clone().unwrap()
}

#[tokio::test]
async fn online_government_referred_and_key_items_get_a_human_callback() {
    let t0 = sh(2026, 11, 20, 10, 0);
    let mut rig = Rig::start_with(t0, rules_2026_with(RulesConfig::default())).await;
    // Four callers: none of them is a repeat.
    let from = |caller: &str, channel: pb::Channel, referred: bool| pb::Ticket {
        channel: channel as i32,
        referred,
        ..support::repair(caller, "表后阀漏气")
    };
    let online = rig
        .create(from("13800000001", pb::Channel::OnlineGov, false))
        .await;
    assert_eq!(online.channel, pb::Channel::OnlineGov as i32);
    let referred = rig
        .create(from("13800000002", pb::Channel::Hotline, true))
        .await;
    assert!(referred.referred);
    let plain = rig
        .create(from("13800000003", pb::Channel::Hotline, false))
        .await;
    let key_item = rig
        .create(from("13800000004", pb::Channel::Hotline, false))
        .await;
    // A key item flagged after intake, audited like any edit.
    let flagged = rig
        .client
        .update_ticket(authed(
            AGENT,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    name: key_item.name.clone(),
                    daily_report_key_item: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["daily_report_key_item".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(flagged.daily_report_key_item);
    let events = rig
        .server
        .store
        .ticket_events(&key_item.number)
        .await
        .unwrap();
    let edit = events.last().unwrap();
    assert_eq!(
        (
            edit.field.as_deref(),
            edit.old_value.as_deref(),
            edit.new_value.as_deref()
        ),
        (Some("daily_report_key_item"), Some("false"), Some("true"))
    );

    for (ticket, plan) in [
        (&online, "callback human"),
        (&referred, "callback human"),
        (&key_item, "callback human"),
        (&plain, "callback automatic"),
    ] {
        rig.dispatch(&ticket.name, "north", AGENT).await.unwrap();
        rig.reply(&ticket.name).await;
        assert_eq!(
            callback_plan(&rig, &ticket.number).await,
            plan,
            "{}",
            ticket.number
        );
    }
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[tokio::test]
async fn intake_facts_are_set_checked_audited_and_drive_the_rules() {
    let mut config = RulesConfig::default();
    config.night_hold = Some(hotline::tickets::config::NightHoldConfig::default());
    let night = sh(2026, 11, 20, 22, 0);
    let mut rig = Rig::start_with(night, rules_2026_with(config)).await;
    let photo = |uri: &str| pb::Attachment {
        uri: uri.into(),
        kind: pb::AttachmentKind::Photo as i32,
    };

    // Bad facts are refused naming the field.
    let bad = [
        (
            pb::Ticket {
                agreed_visit_time: Some(rig::ts(sh(2026, 11, 21, 9, 0))),
                category: pb::Category::Consultation as i32,
                ..support::repair("13800000001", "问价")
            },
            "ticket.agreed_visit_time: only repairs and service applications have a visit",
        ),
        (
            pb::Ticket {
                agreed_callback_time: Some(rig::ts(sh(2026, 11, 20, 21, 0))),
                ..support::repair("13800000001", "漏水")
            },
            "ticket.agreed_callback_time: must lie in the future",
        ),
        (
            pb::Ticket {
                attachments: vec![photo("C:\\photos\\1.jpg")],
                ..support::repair("13800000001", "漏水")
            },
            "ticket.attachments[0].uri: write where the file is",
        ),
        (
            pb::Ticket {
                attachments: vec![pb::Attachment {
                    uri: "https://files.example/1.jpg".into(),
                    kind: 0,
                }],
                ..support::repair("13800000001", "漏水")
            },
            "ticket.attachments[0].kind: required",
        ),
    ];
    for (ticket, message) in bad {
        let err = rig
            .client
            .create_ticket(authed(AGENT, support::create(ticket, "")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().starts_with(message), "{err:?}");
    }

    // A caller who insists is dispatched tonight; one who does not waits for 07:00.
    let insists = rig
        .create(pb::Ticket {
            caller_insists_night_dispatch: true,
            callback_declined: true,
            agreed_visit_time: Some(rig::ts(sh(2026, 11, 20, 23, 0))),
            attachments: vec![photo("https://files.example/meter.jpg")],
            ..support::repair("13800000001", "暖气不热")
        })
        .await;
    assert!(insists.caller_insists_night_dispatch && insists.callback_declined);
    assert_eq!(time(&insists.dispatch_due), sh(2026, 11, 20, 22, 5));
    assert_eq!(time(&insists.agreed_visit_time), sh(2026, 11, 20, 23, 0));
    assert_eq!(
        insists.attachments,
        [photo("https://files.example/meter.jpg")]
    );
    let waits = rig.create(support::repair("13800000002", "暖气不热")).await;
    assert_eq!(time(&waits.dispatch_due), sh(2026, 11, 21, 7, 5));
    assert!(!waits.repeat_call);
    // The same caller again while the first is open: a repeat, found from the history.
    let again = rig.create(support::repair("13800000002", "还是不热")).await;
    assert!(again.repeat_call);

    // Set later by update, audited; the deadlines follow.
    let updated = rig
        .client
        .update_ticket(authed(
            AGENT,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    name: waits.name.clone(),
                    caller_insists_night_dispatch: true,
                    agreed_callback_time: Some(rig::ts(sh(2026, 11, 21, 15, 0))),
                    attachments: vec![pb::Attachment {
                        uri: "s3://tickets/contract.pdf".into(),
                        kind: pb::AttachmentKind::Document as i32,
                    }],
                    ..Default::default()
                }),
                update_mask: mask(&[
                    "caller_insists_night_dispatch",
                    "agreed_callback_time",
                    "attachments",
                ]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(time(&updated.dispatch_due), sh(2026, 11, 20, 22, 5));
    assert_eq!(updated.attachments.len(), 1);
    let events = rig.server.store.ticket_events(&waits.number).await.unwrap();
    let fields: Vec<_> = events.iter().filter_map(|e| e.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            "attachments",
            "night_dispatch_insisted",
            "agreed_callback_at"
        ]
    );

    // The declined callback holds at the reply; the agreed time schedules the callback.
    for ticket in [&insists, &waits] {
        rig.dispatch(&ticket.name, "north", AGENT).await.unwrap();
    }
    rig.at(sh(2026, 11, 21, 9, 0));
    let declined = rig.reply(&insists.name).await;
    assert_eq!(
        (declined.callback_due, declined.next_callback_time),
        (None, None)
    );
    let agreed = rig.reply(&waits.name).await;
    assert_eq!(time(&agreed.next_callback_time), sh(2026, 11, 21, 15, 0));

    // "Can't talk now": the next attempt at the time agreed on the phone.
    rig.at(sh(2026, 11, 21, 15, 0));
    let later = rig
        .client
        .record_callback(authed(
            AGENT,
            pb::RecordCallbackRequest {
                name: waits.name.clone(),
                outcome: pb::CallbackOutcome::CallLater as i32,
                call_back_time: Some(rig::ts(sh(2026, 11, 24, 19, 30))),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(status(&later), pb::Status::Callback);
    assert_eq!(time(&later.next_callback_time), sh(2026, 11, 24, 19, 30));
    assert_eq!(time(&later.callback_due), sh(2026, 11, 24, 19, 30));
    let attempts = rig
        .server
        .store
        .callback_attempts(&waits.number)
        .await
        .unwrap();
    assert_eq!(attempts.last().unwrap().outcome, "call_later");
    let missing = rig
        .client
        .record_callback(authed(
            AGENT,
            pb::RecordCallbackRequest {
                name: waits.name.clone(),
                outcome: pb::CallbackOutcome::CallLater as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (
            Code::InvalidArgument,
            "call_back_time: required when the customer cannot talk now"
        )
    );
}

#[tokio::test]
async fn a_unit_never_sees_who_tipped_off_and_replies_must_say_what_was_done() {
    let t0 = sh(2026, 11, 20, 10, 0);
    let mut rig = Rig::start_with(t0, rules_2026_with(RulesConfig::default())).await;
    let informant = "13900001111";
    let tip_off = rig
        .create(pb::Ticket {
            category: pb::Category::TipOff as i32,
            ..support::repair(informant, "有人私接燃气管道")
        })
        .await;
    let repair = rig.create(support::repair(informant, "灶具打不着火")).await;
    for ticket in [&tip_off, &repair] {
        rig.dispatch(&ticket.name, "north", AGENT).await.unwrap();
    }
    let get = |token: &'static str, name: String| {
        let mut client = rig.client.clone();
        async move {
            client
                .get_ticket(authed(token, pb::GetTicketRequest { name }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let seen_by_centre = get(AGENT, tip_off.name.clone()).await;
    assert_eq!(seen_by_centre.caller_number, informant);
    let seen_by_unit = get(NORTH, tip_off.name.clone()).await;
    assert_eq!(
        (
            seen_by_unit.caller_name.as_str(),
            seen_by_unit.caller_number.as_str(),
            seen_by_unit.caller_address.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(seen_by_unit.description, "有人私接燃气管道");
    // Other tickets of the same caller keep their contact details for the unit.
    assert_eq!(
        get(NORTH, repair.name.clone()).await.caller_number,
        informant
    );
    // Nor through a transition's answer, the unit's list, or a look-up by number.
    let accepted = rig.accept(&tip_off.name, NORTH).await.unwrap();
    assert_eq!(accepted.caller_number, "");
    let list = |caller_number: &str| pb::ListTicketsRequest {
        caller_number: caller_number.into(),
        ..Default::default()
    };
    let all = rig
        .client
        .list_tickets(authed(NORTH, list("")))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(all.len(), 2);
    let listed = all.iter().find(|t| t.name == tip_off.name).unwrap();
    assert_eq!(listed.caller_number, "");
    let by_number = rig
        .client
        .list_tickets(authed(NORTH, list(informant)))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let names: Vec<_> = by_number.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, [repair.name.as_str()]);

    // 004 §3: "已处理" is no reply.
    let reply = |summary: &str| pb::ReplyTicketRequest {
        name: repair.name.clone(),
        summary: summary.into(),
    };
    let empty = rig
        .client
        .reply_ticket(authed(NORTH, reply("已处理。")))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().starts_with("summary: "), "{empty:?}");
    assert!(empty.message().contains("已处理"), "{empty:?}");
    let short = rig
        .client
        .reply_ticket(authed(NORTH, reply("修了")))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument, "{short:?}");
    let replied = rig
        .client
        .reply_ticket(authed(NORTH, reply("更换点火针，试打火正常")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&replied), pb::Status::Replied);
}

#[tokio::test]
async fn one_call_with_demands_for_two_units_files_one_ticket_per_unit() {
    let t0 = sh(2026, 11, 20, 10, 0);
    let mut rig = Rig::start_with(t0, rules_2026_with(RulesConfig::default())).await;
    let demand = |unit: &str, category: pb::Category, text: &str| pb::Demand {
        responsible_unit: unit.into(),
        category: category as i32,
        description: text.into(),
    };
    let request = |demands: Vec<pb::Demand>| pb::CreateTicketsRequest {
        caller: Some(pb::Ticket {
            area: "幸福小区".into(),
            ..support::repair("13800000007", "")
        }),
        demands,
        request_id: "call-42".into(),
    };
    let demands = vec![
        demand("north", pb::Category::Repair, "表后阀漏气"),
        demand("south", pb::Category::Consultation, "过户要带什么材料"),
        demand("north", pb::Category::Complaint, "维修工上次爽约"),
    ];
    let filed = rig
        .client
        .create_tickets(authed(AGENT, request(demands.clone())))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let shape: Vec<_> = filed
        .iter()
        .map(|t| {
            (
                t.responsible_unit.as_str(),
                t.category,
                t.caller_number.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("north", pb::Category::Complaint as i32, "13800000007"),
            ("south", pb::Category::Consultation as i32, "13800000007"),
        ]
    );
    assert_eq!(
        filed[0].description,
        "【故障报修】表后阀漏气\n【投诉】维修工上次爽约"
    );
    assert_eq!(filed[0].complaint_level, pb::ComplaintLevel::L3 as i32);
    // The complaint's 5-minute dispatch limit, not the repair's.
    assert_eq!(time(&filed[0].dispatch_due), sh(2026, 11, 20, 10, 5));
    // Neither is a repeat of the other.
    assert!(filed.iter().all(|t| !t.repeat_call));
    // A retry with the same request_id answers with the same tickets.
    let again = rig
        .client
        .create_tickets(authed(AGENT, request(demands)))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let names = |ts: &[pb::Ticket]| ts.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&again), names(&filed));

    // Bad demands are refused naming the demand.
    let cases = [
        (vec![], "demands: required"),
        (
            vec![demand("", pb::Category::Repair, "漏气")],
            "demands[0].responsible_unit: required",
        ),
        (
            vec![
                demand("north", pb::Category::Repair, "漏气"),
                demand("north", pb::Category::Urge, "快点"),
            ],
            "demands[1].category: demand 1 is an urge",
        ),
    ];
    for (demands, message) in cases {
        let err = rig
            .client
            .create_tickets(authed(AGENT, request(demands)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().starts_with(message), "{err:?}");
    }
    let unit_token = rig
        .client
        .create_tickets(authed(
            NORTH,
            request(vec![demand("north", pb::Category::Repair, "漏气")]),
        ))
        .await
        .unwrap_err();
    assert_eq!(unit_token.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_invalid_complaint_does_not_count_against_the_unit() {
    let mut rig = Rig::start_with(
        sh(2026, 11, 2, 9, 0),
        rules_2026_with(RulesConfig::default()),
    )
    .await;
    let classify = |name: &str, valid: bool, reason: &str| pb::ClassifyComplaintRequest {
        name: name.into(),
        valid,
        reason: reason.into(),
    };
    let mut filed = Vec::new();
    for caller in ["13800000001", "13800000002", "13800000003", "13800000004"] {
        filed.push(rig.create(complaint(caller, "幸福小区")).await);
    }
    // Checked: the first was a misunderstanding of the tariff.
    let denied = rig
        .client
        .classify_complaint(authed(
            AGENT,
            classify(&filed[0].name, false, "误解计费规则"),
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let blank = rig
        .client
        .classify_complaint(authed(support::ADMIN, classify(&filed[0].name, false, "")))
        .await
        .unwrap_err();
    assert_eq!(
        (blank.code(), blank.message()),
        (Code::InvalidArgument, "reason: required")
    );
    let invalid = rig
        .client
        .classify_complaint(authed(
            support::ADMIN,
            classify(&filed[0].name, false, "误解计费规则"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        invalid.complaint_validity,
        pb::ComplaintValidity::Invalid as i32
    );
    let events = rig
        .server
        .store
        .ticket_events(&filed[0].number)
        .await
        .unwrap();
    let checked = events.last().unwrap();
    assert_eq!(
        (
            checked.action.as_str(),
            checked.reason.as_deref(),
            checked.detail.as_deref()
        ),
        (
            "complaint_classified",
            Some("误解计费规则"),
            Some("invalid")
        )
    );
    // The fifth caller makes only four valid ones: still light.
    let fifth = rig.create(complaint("13800000005", "幸福小区")).await;
    assert_eq!(fifth.complaint_level, pb::ComplaintLevel::L3 as i32);
    // A sixth reaches five valid callers: the valid open ones are raised, the invalid not.
    let sixth = rig.create(complaint("13800000006", "幸福小区")).await;
    assert_eq!(sixth.complaint_level, pb::ComplaintLevel::L2 as i32);
    assert_eq!(
        level(&mut rig, &filed[1].name).await,
        pb::ComplaintLevel::L2
    );
    assert_eq!(
        level(&mut rig, &filed[0].name).await,
        pb::ComplaintLevel::L3
    );
    // Only complaints are classified.
    let repair = rig.create(support::repair("13800000009", "漏气")).await;
    let err = rig
        .client
        .classify_complaint(authed(support::ADMIN, classify(&repair.name, true, "属实")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

#[tokio::test]
async fn a_unit_refuses_a_service_application_with_its_reason_within_two_working_days() {
    let friday = sh(2026, 11, 20, 10, 0);
    let mut rig = Rig::start_with(friday, rules_2026_with(RulesConfig::default())).await;
    let application = |caller: &str| pb::Ticket {
        category: pb::Category::ServiceApplication as i32,
        ..support::repair(caller, "申请开通燃气")
    };
    let early = rig.create(application("13800000001")).await;
    let late = rig.create(application("13800000002")).await;
    for ticket in [&early, &late] {
        rig.dispatch(&ticket.name, "north", AGENT).await.unwrap();
    }
    let refuse = |name: &str| pb::ReplyTicketRequest {
        name: name.into(),
        summary: "该地址不在管网覆盖范围内，暂不具备通气条件".into(),
    };
    rig.at(sh(2026, 11, 24, 10, 0));
    let refused = rig
        .client
        .refuse_application(authed(NORTH, refuse(&early.name)))
        .await
        .unwrap()
        .into_inner();
    assert!(refused.application_refused);
    assert_eq!(status(&refused), pb::Status::Replied);
    assert!(refused.callback_due.is_some());
    assert!(
        rig.actions(&early.number)
            .await
            .ends_with(&["application_refused".to_owned()])
    );
    rig.at(sh(2026, 11, 24, 10, 1));
    let too_late = rig
        .client
        .refuse_application(authed(NORTH, refuse(&late.name)))
        .await
        .unwrap_err();
    assert_eq!(too_late.code(), Code::FailedPrecondition);
    assert!(
        too_late
            .message()
            .contains("2026-11-24 10:00 (Asia/Shanghai)"),
        "{too_late:?}"
    );
}
