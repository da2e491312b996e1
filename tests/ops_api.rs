//! The work beside the call path against a real PostgreSQL and a real tonic client:
//! `hotline.v1.Admin` (admin only, field-named errors, announcements, reload hook), text
//! announcements rendered by espeak-ng + sox, the prompts a call hears, caller look-ups and
//! the recording retention purge.

#[allow(dead_code)] // This binary uses the database and token helpers only.
mod support;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use hotline::api::{self, AccessList, AdminService, ReloadHook, pb};
use hotline::config::AnnouncementsConfig;
use hotline::ops::{Announcer, PromptRef, PurgeReport, purge_expired};
use hotline::store::{CallEntry, NewCustomer, NewTicket, SpecialGroup, Store};
use hotline::tickets::{Category, Status};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{ADMIN, AGENT, WECHAT, authed};
use tonic::Code;
use tonic::transport::Channel as GrpcChannel;

const TTS: &str = "espeak-ng -v cmn-latn-pinyin -s 140 --stdout {text} | \
                   sox -t wav - -r 8000 -c 1 -b 16 -e signed-integer {out}";

struct AdminServer {
    client: pb::admin_client::AdminClient<GrpcChannel>,
    announcer: Announcer,
    audio_dir: PathBuf,
    reloads: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The real gRPC server with the Admin service; the reload hook counts its calls and fails
/// with two problems when `reload_fails`.
async fn admin_server(tts_command: Option<&str>, reload_fails: bool) -> AdminServer {
    let store = support::fresh_store().await;
    let dir = tempfile::tempdir().unwrap();
    let audio_dir = dir.path().join("announcements");
    let announcer = Announcer::new(
        store.clone(),
        audio_dir.clone(),
        AnnouncementsConfig {
            tts_command: tts_command.map(str::to_owned),
            ..AnnouncementsConfig::default()
        },
    );
    let reloads = Arc::new(AtomicUsize::new(0));
    let counter = reloads.clone();
    let hook: ReloadHook = api::reload_hook(move || {
        let calls = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if reload_fails {
                Err(vec![
                    "hotline.toml:3:1: ivr.menus[0].digit: \"x\" is not a key; use 0-9, * or #"
                        .to_owned(),
                    "hotline.toml:9:1: retention.recordings_days: is 0; give days".to_owned(),
                ])
            } else {
                Ok(format!("reload {calls}: acd.queues changed"))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let access = AccessList::from_config(&support::tokens()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = AdminService::new(announcer.clone(), hook);
    let rules = hotline::tickets::Rules::new(Default::default()).unwrap();
    tokio::spawn(api::serve(
        api::TicketsService::new(store, rules),
        access,
        Some(admin),
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
    AdminServer {
        client: pb::admin_client::AdminClient::new(channel),
        announcer,
        audio_dir,
        reloads,
        _dir: dir,
        _stop: stop,
    }
}

fn ts(at: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    })
}

fn announcement(text: &str, prompt: &str, from: TimeDelta, to: TimeDelta) -> pb::Announcement {
    let now = Utc::now();
    pb::Announcement {
        text: text.into(),
        prompt: prompt.into(),
        starts_at: ts(now + from),
        ends_at: ts(now + to),
        ..Default::default()
    }
}

fn set(a: pb::Announcement) -> pb::SetAnnouncementRequest {
    pb::SetAnnouncementRequest {
        announcement: Some(a),
    }
}

fn hours(h: i64) -> TimeDelta {
    TimeDelta::hours(h)
}

#[tokio::test]
async fn only_admin_tokens_may_administer() {
    let mut server = admin_server(None, false).await;
    let c = &mut server.client;
    for token in [AGENT, WECHAT] {
        let running = announcement("", "outage_east", hours(-1), hours(1));
        let codes = [
            c.set_announcement(authed(token, set(running)))
                .await
                .unwrap_err()
                .code(),
            c.list_announcements(authed(token, pb::ListAnnouncementsRequest::default()))
                .await
                .unwrap_err()
                .code(),
            c.clear_announcement(authed(token, pb::ClearAnnouncementRequest { id: 1 }))
                .await
                .unwrap_err()
                .code(),
            c.reload_config(authed(token, pb::ReloadConfigRequest {}))
                .await
                .unwrap_err()
                .code(),
        ];
        assert_eq!(codes, [Code::PermissionDenied; 4], "token {token}");
    }
    let anonymous = c
        .reload_config(pb::ReloadConfigRequest {})
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(server.reloads.load(Ordering::SeqCst), 0);
    let listed = c
        .list_announcements(authed(ADMIN, pb::ListAnnouncementsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.announcements.is_empty());
}

#[tokio::test]
async fn bad_announcements_are_refused_naming_the_field() {
    let mut server = admin_server(None, false).await;
    let c = &mut server.client;
    let mut refused = Vec::new();
    let cases = [
        (
            "announcement.text",
            set(announcement("  ", "", hours(-1), hours(1))),
        ),
        (
            "announcement.prompt",
            set(announcement("停气", "outage_east", hours(-1), hours(1))),
        ),
        (
            "announcement.prompt",
            set(announcement("", "Outage East", hours(-1), hours(1))),
        ),
        (
            "announcement.ends_at",
            set(announcement("停气", "", hours(2), hours(1))),
        ),
        (
            "announcement.ends_at",
            set(announcement("停气", "", hours(-3), hours(-1))),
        ),
        (
            "announcement.dids",
            set(pb::Announcement {
                dids: vec!["95158".into(), "sip:95158@pbx".into()],
                ..announcement("停气", "", hours(-1), hours(1))
            }),
        ),
        (
            "announcement.areas",
            set(pb::Announcement {
                areas: vec!["".into()],
                ..announcement("停气", "", hours(-1), hours(1))
            }),
        ),
        (
            "announcement.text",
            set(announcement(&"停".repeat(301), "", hours(-1), hours(1))),
        ),
        (
            "announcement.starts_at",
            set(pb::Announcement {
                starts_at: None,
                ..announcement("停气", "", hours(-1), hours(1))
            }),
        ),
        (
            "announcement.id",
            set(pb::Announcement {
                id: -4,
                ..announcement("停气", "", hours(-1), hours(1))
            }),
        ),
        (
            "announcement",
            pb::SetAnnouncementRequest { announcement: None },
        ),
    ];
    for (field, request) in cases {
        let status = c
            .set_announcement(authed(ADMIN, request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "{field}: {}",
            status.message()
        );
        refused.push(status.message().to_owned());
    }
    let status = c
        .clear_announcement(authed(ADMIN, pb::ClearAnnouncementRequest { id: 0 }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("id: "));
    let status = c
        .clear_announcement(authed(ADMIN, pb::ClearAnnouncementRequest { id: 77 }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let replace_missing = set(pb::Announcement {
        id: 77,
        ..announcement("停气", "", hours(-1), hours(1))
    });
    let status = c
        .set_announcement(authed(ADMIN, replace_missing))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    // Nothing was stored by any refused request.
    let listed = c
        .list_announcements(authed(
            ADMIN,
            pb::ListAnnouncementsRequest {
                include_ended: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.announcements.is_empty(), "{refused:?}");
}

#[tokio::test]
async fn announcements_are_set_listed_replaced_cleared_and_picked_per_call() {
    let mut server = admin_server(None, false).await;
    let c = &mut server.client;
    let east = c
        .set_announcement(authed(
            ADMIN,
            set(pb::Announcement {
                dids: vec!["95158".into()],
                ..announcement("", "outage_east", hours(-1), hours(2))
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(east.id > 0);
    assert_eq!(east.created_by, "admin:ops");
    assert!(!east.rendered);
    let text = c
        .set_announcement(authed(
            ADMIN,
            set(pb::Announcement {
                areas: vec!["东区".into()],
                ..announcement("东区今晚停气检修", "", hours(-2), hours(3))
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    let later = c
        .set_announcement(authed(
            ADMIN,
            set(announcement("", "outage_tomorrow", hours(20), hours(30))),
        ))
        .await
        .unwrap()
        .into_inner();
    let listed = c
        .list_announcements(authed(ADMIN, pb::ListAnnouncementsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = listed.announcements.iter().map(|a| a.id).collect();
    // By start: text (-2 h), east (-1 h), later (+20 h).
    assert_eq!(ids, vec![text.id, east.id, later.id]);

    let now = Utc::now();
    let a = &server.announcer;
    // East caller on 95158 hears the east prompt and, for the text without TTS, the generic
    // outage prompt.
    assert_eq!(
        a.announcement_prompts("95158", Some("东区"), now)
            .await
            .unwrap(),
        vec![
            PromptRef::Prompt("outage_generic".into()),
            PromptRef::Prompt("outage_east".into())
        ]
    );
    // Unknown caller on 95158: only the DID-wide one; other DID, west caller: nothing.
    assert_eq!(
        a.announcement_prompts("95158", None, now).await.unwrap(),
        vec![PromptRef::Prompt("outage_east".into())]
    );
    assert_eq!(
        a.announcement_prompts("95159", Some("西区"), now)
            .await
            .unwrap(),
        vec![]
    );
    // Tomorrow's plays tomorrow.
    assert_eq!(
        a.announcement_prompts("95159", Some("西区"), now + hours(21))
            .await
            .unwrap(),
        vec![PromptRef::Prompt("outage_tomorrow".into())]
    );

    // Replace: the east one now plays on every number.
    let replaced = c
        .set_announcement(authed(
            ADMIN,
            set(pb::Announcement {
                id: east.id,
                ..announcement("", "outage_east_v2", hours(-1), hours(2))
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replaced.id, east.id);
    assert!(replaced.dids.is_empty());
    assert_eq!(
        a.announcement_prompts("95159", None, Utc::now())
            .await
            .unwrap(),
        vec![PromptRef::Prompt("outage_east_v2".into())]
    );

    let cleared = c
        .clear_announcement(authed(ADMIN, pb::ClearAnnouncementRequest { id: east.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.prompt, "outage_east_v2");
    assert_eq!(
        a.announcement_prompts("95159", None, Utc::now())
            .await
            .unwrap(),
        vec![]
    );
    let listed = c
        .list_announcements(authed(ADMIN, pb::ListAnnouncementsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.announcements.len(), 2);
}

/// Format and loudness of a WAV file.
fn wav_facts(path: &Path) -> (hound::WavSpec, usize, i16) {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    let peak = samples
        .iter()
        .map(|s| s.saturating_abs())
        .max()
        .unwrap_or(0);
    (spec, samples.len(), peak)
}

#[tokio::test]
async fn text_announcements_are_rendered_once_with_the_tts_command() {
    let mut server = admin_server(Some(TTS), false).await;
    let marker = server.audio_dir.with_file_name("injected");
    // Shell syntax in the text is spoken, never run.
    let text = format!(
        "燃气管道检修，今晚停气。$(touch {m}); touch {m}",
        m = marker.display()
    );
    let set_reply = server
        .client
        .set_announcement(authed(
            ADMIN,
            set(announcement(&text, "", hours(-1), hours(1))),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(set_reply.rendered);
    assert!(!marker.exists(), "the text ran as a command");
    let path = server.audio_dir.join(format!("{}.wav", set_reply.id));
    let (spec, samples, peak) = wav_facts(&path);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    assert!(
        samples > 8000,
        "{samples} samples: less than a second of speech"
    );
    assert!(peak > 1000, "peak {peak}: silence");
    // Only the final file is left in the folder.
    let names: Vec<String> = std::fs::read_dir(&server.audio_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![format!("{}.wav", set_reply.id)]);
    assert_eq!(
        server
            .announcer
            .announcement_prompts("95158", None, Utc::now())
            .await
            .unwrap(),
        vec![PromptRef::Rendered {
            id: set_reply.id,
            path: path.clone()
        }]
    );
    // Replaced by a prompt: the audio goes.
    server
        .client
        .set_announcement(authed(
            ADMIN,
            set(pb::Announcement {
                id: set_reply.id,
                ..announcement("", "outage_generic", hours(-1), hours(1))
            }),
        ))
        .await
        .unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn a_failing_or_wrong_tts_command_changes_nothing() {
    for (command, expected) in [
        (
            "echo 'no voice here' >&2; exit 3 # {text} {out}",
            "no voice here",
        ),
        ("espeak-ng -v cmn-latn-pinyin -w {out} {text}", "22050 Hz"),
        (
            "sox -n -r 8000 -c 1 -b 16 -e signed-integer {out} trim 0 1 # {text}",
            "silence",
        ),
    ] {
        let mut server = admin_server(Some(command), false).await;
        let status = server
            .client
            .set_announcement(authed(
                ADMIN,
                set(announcement("今晚停气", "", hours(-1), hours(1))),
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{command}");
        assert!(
            status.message().contains(expected),
            "{command}: {}",
            status.message()
        );
        let listed = server
            .client
            .list_announcements(authed(ADMIN, pb::ListAnnouncementsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(listed.announcements.is_empty());
        let left = std::fs::read_dir(&server.audio_dir)
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "{command} left files behind");
    }
}

#[tokio::test]
async fn reload_config_calls_the_hook_and_reports_every_problem() {
    let mut ok = admin_server(None, false).await;
    let reply = ok
        .client
        .reload_config(authed(ADMIN, pb::ReloadConfigRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.summary, "reload 1: acd.queues changed");
    assert_eq!(ok.reloads.load(Ordering::SeqCst), 1);

    let mut failing = admin_server(None, true).await;
    let status = failing
        .client
        .reload_config(authed(ADMIN, pb::ReloadConfigRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("nothing changed"));
    assert!(
        status
            .message()
            .contains("hotline.toml:3:1: ivr.menus[0].digit")
    );
    assert!(
        status
            .message()
            .contains("hotline.toml:9:1: retention.recordings_days")
    );
    assert_eq!(failing.reloads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn caller_facts_name_the_household_and_its_open_tickets() {
    let store = support::fresh_store().await;
    let number = "13812341234";
    let customer = store
        .create_customer(&NewCustomer {
            account_number: "A-1001".into(),
            name: "李大爷".into(),
            phone_numbers: vec!["02588880000".into(), number.into()],
            address: "幸福路12号".into(),
            area: "东区".into(),
            special_group: Some(SpecialGroup::ElderlyAlone),
        })
        .await
        .unwrap();
    let (by_number, _) = store
        .create_ticket(&support::new_ticket(
            number,
            None,
            Status::Draft,
            Category::Consultation,
        ))
        .await
        .unwrap();
    let due = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
    let (by_household, _) = store
        .create_ticket(&NewTicket {
            finish_due: Some(due),
            ..support::new_ticket(
                "02588880000",
                Some(customer.id),
                Status::Dispatched,
                Category::Repair,
            )
        })
        .await
        .unwrap();
    store
        .create_ticket(&support::new_ticket(
            number,
            None,
            Status::Closed,
            Category::Query,
        ))
        .await
        .unwrap();
    store
        .create_ticket(&support::new_ticket(
            "13900001111",
            None,
            Status::Draft,
            Category::Repair,
        ))
        .await
        .unwrap();

    let facts = store.caller_facts(number).await.unwrap();
    let household = facts.customer.clone().unwrap();
    assert_eq!(
        (
            household.id,
            household.name.as_str(),
            household.area.as_str()
        ),
        (customer.id, "李大爷", "东区")
    );
    assert!(household.is_special());
    assert!(facts.has_open_ticket());
    let open: Vec<(&str, Status, Category, Option<DateTime<Utc>>)> = facts
        .open_tickets
        .iter()
        .map(|t| (t.number.as_str(), t.status, t.category, t.finish_due))
        .collect();
    assert_eq!(
        open,
        vec![
            (
                by_household.number.as_str(),
                Status::Dispatched,
                Category::Repair,
                Some(due)
            ),
            (
                by_number.number.as_str(),
                Status::Draft,
                Category::Consultation,
                None
            ),
        ]
    );

    let stranger = store.caller_facts("13700002222").await.unwrap();
    assert_eq!(stranger.customer, None);
    assert!(!stranger.has_open_ticket());
}

async fn call_with_recording(store: &Store, call_id: &str, arrived_at: DateTime<Utc>, file: &str) {
    let entries = vec![
        CallEntry::Arrived {
            caller: "13812341234".into(),
            called: "95158".into(),
            at: arrived_at,
        },
        CallEntry::Recording { path: file.into() },
    ];
    support::journal_calls(store, vec![(call_id, entries)]).await;
}

#[tokio::test]
async fn the_purge_deletes_expired_recordings_once_and_nothing_else() {
    let store = support::fresh_store().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("recordings");
    std::fs::create_dir(&dir).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap();
    let keep = TimeDelta::days(180);
    let old = now - TimeDelta::days(200);
    let write = |name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, b"RIFF").unwrap();
        path
    };
    let expired = write("old.wav");
    let expired_absolute = write("old-absolute.wav");
    let recent = write("recent.wav");
    let outside = root.path().join("outside.wav");
    std::fs::write(&outside, b"RIFF").unwrap();
    call_with_recording(&store, "old", old, "old.wav").await;
    call_with_recording(&store, "old-abs", old, expired_absolute.to_str().unwrap()).await;
    call_with_recording(&store, "gone", old, "gone.wav").await;
    call_with_recording(&store, "outside", old, "../outside.wav").await;
    call_with_recording(&store, "recent", now - TimeDelta::days(10), "recent.wav").await;

    let report = purge_expired(&store, &dir, keep, now).await.unwrap();
    assert_eq!(
        report,
        PurgeReport {
            deleted: 2,
            already_missing: 1,
            kept: 1
        }
    );
    assert!(!expired.exists());
    assert!(!expired_absolute.exists());
    assert!(recent.exists());
    assert!(outside.exists());

    // Purged calls are marked: a second run finds only the one it must leave alone.
    let again = purge_expired(&store, &dir, keep, now).await.unwrap();
    assert_eq!(
        again,
        PurgeReport {
            deleted: 0,
            already_missing: 0,
            kept: 1
        }
    );
    // Time passes: the recent one expires too.
    let later = purge_expired(&store, &dir, keep, now + TimeDelta::days(171))
        .await
        .unwrap();
    assert_eq!(later.deleted, 1);
    assert!(!recent.exists());

    // A missing folder (unmounted volume) purges nothing and marks nothing.
    call_with_recording(&store, "unmounted", old, "unmounted.wav").await;
    let missing = root.path().join("not-mounted");
    let err = purge_expired(&store, &missing, keep, now)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("check that it exists and is mounted"),
        "{err}"
    );
    let unmounted = write("unmounted.wav");
    let after_mount = purge_expired(&store, &dir, keep, now).await.unwrap();
    assert_eq!((after_mount.deleted, after_mount.kept), (1, 1));
    assert!(!unmounted.exists());
}
