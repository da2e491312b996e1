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
