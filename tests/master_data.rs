//! Master data: responsible units and household files (一户一档) over `hotline.v1.Admin`, and
//! `hotlinectl import` against the real `hotlined` binary and PostgreSQL — exact counts and
//! reasons for a CSV with a duplicate account and a bad phone, a GBK file, dry runs and
//! re-imports that change nothing, a call from an imported number that finds its household
//! and hears its area's outage announcement (then the menu), and units that take dispatched tickets and are
//! not deleted while those are open.

#[path = "support/audio.rs"]
#[allow(dead_code)] // Shared test helpers: this binary uses the WAV and detector part.
mod audio;
#[path = "support/hotlined.rs"]
mod hotlined;
#[path = "support/phone.rs"]
#[allow(dead_code)] // Shared test helpers: this binary uses the caller's phone only.
mod phone;
#[allow(dead_code)] // Shared test helpers: this binary uses the server and tokens only.
mod support;

use hotline::api::pb;
use hotline::api::pb::admin_client::AdminClient;
use hotline::media::g711::G711Codec;
use hotlined::Hotlined;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use support::{ADMIN, AGENT, NORTH, TestServer, WECHAT, authed};
use tonic::Code;
use tonic::transport::Channel;

/// The daemon's Admin API with its admin token.
async fn admin(daemon: &Hotlined) -> AdminClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", daemon.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    AdminClient::new(channel)
}

/// A folder for CSV files and the token file hotlinectl reads.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.token"), hotlined::ADMIN_TOKEN).unwrap();
        Workdir { dir }
    }

    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// Runs the real hotlinectl against `daemon`.
    async fn ctl(&self, daemon: &Hotlined, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlinectl"))
            .arg("--endpoint")
            .arg(daemon.grpc.to_string())
            .arg("--token-file")
            .arg(self.dir.path().join("admin.token"))
            .args(args)
            .env_remove("HOTLINE_TOKEN")
            .env_remove("HOTLINE_ENDPOINT")
            .output()
            .await
            .unwrap()
    }

    /// `hotlinectl import KIND FILE EXTRA…`: its exit code and stdout; stderr on failure.
    async fn import(
        &self,
        daemon: &Hotlined,
        kind: &str,
        file: &Path,
        extra: &[&str],
    ) -> (i32, String) {
        let mut args = vec!["import", kind, file.to_str().unwrap(), "--quiet"];
        args.extend_from_slice(extra);
        let out = self.ctl(daemon, &args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap();
        if code == 2 {
            return (code, stderr.into_owned());
        }
        (code, String::from_utf8(out.stdout).unwrap())
    }
}

async fn get_customer(
    client: &mut AdminClient<Channel>,
    token: &str,
    account: &str,
) -> pb::Customer {
    client
        .get_customer(authed(
            token,
            pb::GetCustomerRequest {
                account_number: account.into(),
            },
        ))
        .await
        .unwrap_or_else(|status| panic!("GetCustomer {account}: {status}"))
        .into_inner()
}

/// (entity, key, action, detail, actor) of every master data event, oldest first.
async fn audit_trail(
    db: &sqlx::postgres::PgConnectOptions,
) -> Vec<(String, String, String, Option<String>, String)> {
    let mut conn = PgConnection::connect_with(db).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT entity, key, action, detail, actor FROM master_data_events ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows
}

const CUSTOMERS_CSV: &str = "\
account_number,name,phone_numbers,address,area,special_group
GS-0001,王秀英,13800000001,城东幸福路12号3单元501,城东,elderly_alone
GS-0002,李建国,13800000002;02988880002,城东和平街5号,城东,
GS-0003,\"张伟, 张丽\",13800000003,\"城西解放路1号, 2单元\",城西,
GS-0001,王秀英,13800000009,城东幸福路12号,城东,
GS-0004,赵敏,1380000x004,城北北大街8号,城北,
";

#[tokio::test]
async fn hotlinectl_imports_with_exact_counts_and_reasons_and_a_reimport_changes_nothing() {
    let daemon = Hotlined::start(|flow| flow, "").await;
    let work = Workdir::new();
    let mut client = admin(&daemon).await;
    let csv = work.file("customers.csv", CUSTOMERS_CSV);

    let (code, out) = work.import(&daemon, "customers", &csv, &[]).await;
    let summary = format!(
        "{}: 5 rows: 3 created, 0 updated, 0 unchanged, 2 rejected\n\
         rejected rows and reasons: {}\n",
        csv.display(),
        work.dir.path().join("customers.rejects.csv").display()
    );
    assert_eq!((code, out.as_str()), (1, summary.as_str()));
    assert_eq!(
        work.read("customers.rejects.csv"),
        "line,key,field,reason\n\
         5,GS-0001,account_number,GS-0001 is also on line 2; give each account once\n\
         6,GS-0004,phone_numbers,\"\"\"1380000x004\"\" must be 3 to 20 digits, optionally \
         starting with +\"\n"
    );
    let zhang = get_customer(&mut client, hotlined::ADMIN_TOKEN, "GS-0003").await;
    assert_eq!(
        (
            zhang.name.as_str(),
            zhang.address.as_str(),
            zhang.area.as_str()
        ),
        ("张伟, 张丽", "城西解放路1号, 2单元", "城西")
    );
    let li = get_customer(&mut client, hotlined::ADMIN_TOKEN, "GS-0002").await;
    assert_eq!(li.phone_numbers, ["13800000002", "02988880002"]);
    let wang = get_customer(&mut client, hotlined::ADMIN_TOKEN, "GS-0001").await;
    assert_eq!(
        (wang.phone_numbers.as_slice(), wang.special_group.as_str()),
        (&["13800000001".to_owned()][..], "elderly_alone")
    );

    // The same file again: nothing changes, not even the audit trail.
    let trail = audit_trail(&daemon.db).await;
    assert_eq!(trail.len(), 3);
    assert!(
        trail
            .iter()
            .all(|e| e.2 == "created" && e.4 == "admin:peers test")
    );
    let (code, out) = work.import(&daemon, "customers", &csv, &[]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("5 rows: 0 created, 0 updated, 3 unchanged, 2 rejected"),
        "{out}"
    );
    assert_eq!(audit_trail(&daemon.db).await, trail);
    assert_eq!(
        get_customer(&mut client, hotlined::ADMIN_TOKEN, "GS-0003").await,
        zhang
    );

    // GBK, with the Chinese column names of a billing export.
    let (gbk, _, _) = encoding_rs::GBK.encode(
        "户号,户名,电话,地址,片区,特殊群体\n\
         GS-0101,陈桂兰,13900000101,城南朝阳路7号,城南,独居老人\n\
         GS-0102,刘洋,13900000102,城南朝阳路9号,城南,\n",
    );
    let gbk_file = work.file("gbk.csv", &gbk);
    let (code, err) = work.import(&daemon, "customers", &gbk_file, &[]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("line 1 is not UTF-8") && err.contains("--encoding gbk"),
        "{err}"
    );
    let (code, out) = work
        .import(&daemon, "customers", &gbk_file, &["--encoding", "gbk"])
        .await;
    assert_eq!(
        (code, out),
        (
            0,
            format!(
                "{}: 2 rows: 2 created, 0 updated, 0 unchanged, 0 rejected\n",
                gbk_file.display()
            )
        )
    );
    let chen = get_customer(&mut client, hotlined::ADMIN_TOKEN, "GS-0101").await;
    assert_eq!(
        (
            chen.name.as_str(),
            chen.address.as_str(),
            chen.special_group.as_str()
        ),
        ("陈桂兰", "城南朝阳路7号", "elderly_alone")
    );

    // A dry run counts and changes nothing; the real run then updates the one field.
    let changes = work.file(
        "changes.csv",
        "account_number,name,phone_numbers,address,area\n\
         GS-0002,李建国,13800000002;02988880002,城东和平街7号,城东\n\
         GS-0005,周杰,13800000005,城北北大街9号,城北\n",
    );
    let (code, out) = work
        .import(&daemon, "customers", &changes, &["--dry-run"])
        .await;
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "2 rows: 1 created, 1 updated, 0 unchanged, 0 rejected (dry run: nothing was changed)"
        ),
        "{out}"
    );
    let before = audit_trail(&daemon.db).await;
    assert_eq!(
        get_customer(&mut client, hotlined::ADMIN_TOKEN, "GS-0002").await,
        li
    );
    let missing = client
        .get_customer(authed(
            hotlined::ADMIN_TOKEN,
            pb::GetCustomerRequest {
                account_number: "GS-0005".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let (code, out) = work.import(&daemon, "customers", &changes, &[]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("2 rows: 1 created, 1 updated, 0 unchanged, 0 rejected"),
        "{out}"
    );
    let trail = audit_trail(&daemon.db).await;
    assert_eq!(trail.len(), before.len() + 2);
    assert!(trail.contains(&(
        "customer".into(),
        "GS-0002".into(),
        "updated".into(),
        Some("address".into()),
        "admin:peers test".into()
    )));

    // Units: two good, one with a bad duty phone; again, and nothing changes.
    let units = work.file(
        "units.csv",
        "code,name,areas,duty_phone,active\n\
         east_gas,城东燃气所,城东;城南,sip:oncall-east@127.0.0.1,true\n\
         west_gas,城西燃气所,城西,02988881234,\n\
         bad_unit,坏单位,城北,not a phone,\n",
    );
    let (code, out) = work.import(&daemon, "units", &units, &[]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("3 rows: 2 created, 0 updated, 0 unchanged, 1 rejected"),
        "{out}"
    );
    let rejects = work.read("units.rejects.csv");
    assert!(
        rejects.starts_with("line,key,field,reason\n4,bad_unit,duty_phone,\"give a sip:"),
        "{rejects}"
    );
    let (code, out) = work.import(&daemon, "units", &units, &[]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("3 rows: 0 created, 0 updated, 2 unchanged, 1 rejected"),
        "{out}"
    );
    let listed = client
        .list_units(authed(hotlined::ADMIN_TOKEN, pb::ListUnitsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .units;
    let east = &listed[0];
    assert_eq!(
        (east.code.as_str(), east.areas.as_slice(), east.active),
        (
            "east_gas",
            &["城东".to_owned(), "城南".to_owned()][..],
            true
        )
    );
    assert_eq!(listed.len(), 2);
}

/// Received µ-law audio as linear samples.
fn heard(phone: &phone::Phone) -> Vec<i16> {
    let mut pcm = Vec::new();
    for frame in phone.rtp.audio() {
        G711Codec::Pcmu.decode_into(&frame, &mut pcm);
    }
    pcm
}

fn prompt(name: &str) -> Vec<i16> {
    audio::read_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sounds/zh-CN")
            .join(format!("{name}.wav")),
    )
}

/// Calls the daemon from `caller` and records what it plays until `seconds` of audio came.
async fn call_and_listen(daemon: &Hotlined, caller: &str, seconds: f64) -> Vec<i16> {
    let mut phone = phone::Phone::new(daemon.sip, caller, "96777").await;
    assert_eq!(phone.call().await, 200, "{}", daemon.log());
    let frames = (seconds / 0.02) as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while phone.rtp.audio().len() < frames {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {frames} audio frames came",
            phone.rtp.audio().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pcm = heard(&phone);
    assert_eq!(phone.bye().await, 200);
    pcm
}

#[tokio::test]
async fn a_call_from_an_imported_number_finds_its_household_and_hears_its_area_outage() {
    let daemon = Hotlined::start(
        |flow| {
            flow.replace("greeting = [\"welcome\"]", "greeting = [\"digit_1\"]")
                .replace("policy = \"announce\"", "policy = \"off\"")
        },
        "",
    )
    .await;
    let work = Workdir::new();
    let csv = work.file(
        "households.csv",
        "account_number,name,phone_numbers,address,area\n\
         GS-0201,孙丽,13700000001,城东幸福路20号,城东\n",
    );
    let (code, out) = work.import(&daemon, "customers", &csv, &[]).await;
    assert_eq!(code, 0, "{out}");
    let mut client = admin(&daemon).await;
    let household = get_customer(&mut client, hotlined::ADMIN_TOKEN, "GS-0201").await;
    let now = chrono::Utc::now();
    let at = |t: chrono::DateTime<chrono::Utc>| {
        Some(prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: 0,
        })
    };
    client
        .set_announcement(authed(
            hotlined::ADMIN_TOKEN,
            pb::SetAnnouncementRequest {
                announcement: Some(pb::Announcement {
                    prompt: "outage_generic".into(),
                    areas: vec!["城东".into()],
                    starts_at: at(now - chrono::Duration::hours(1)),
                    ends_at: at(now + chrono::Duration::hours(1)),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap();

    let outage = prompt("outage_generic");
    // The menu speaks its options, the leak key first ("燃气泄漏，请按一").
    let menu_start = prompt("label_leak");
    let seconds = |samples: usize| samples as f64 / 8000.0;
    // Long enough for the greeting, the leak key's offer, the announcement and the menu's
    // first option, whatever their order.
    let listen = seconds(
        prompt("digit_1").len()
            + menu_start.len()
            + prompt("press_key").len()
            + prompt("digit_1").len()
            + outage.len()
            + menu_start.len(),
    ) + 1.0;
    let pcm = call_and_listen(&daemon, "13700000001", listen).await;
    let announcement = audio::find_prompt(&pcm, &outage);
    assert!(
        announcement.score > 0.9,
        "the area's outage announcement played: {announcement:?}"
    );
    let after = (announcement.offset.as_secs_f64() * 8000.0) as usize + outage.len();
    let menu = audio::find_prompt(&pcm[after..], &menu_start);
    assert!(
        menu.score > 0.9 && menu.offset < Duration::from_millis(500),
        "the menu followed the announcement: {menu:?}"
    );
    // The caller look-up found the household: its draft ticket names it.
    let ticket = daemon.only_ticket("13700000001").await;
    assert_eq!(ticket.customer_id, Some(household.id));
    assert_eq!(ticket.caller_address, "城东幸福路20号");

    // A caller without a household file hears no area announcement.
    let pcm = call_and_listen(&daemon, "13700000999", listen).await;
    let announcement = audio::find_prompt(&pcm, &outage);
    assert!(
        announcement.score < 0.5,
        "no announcement for a caller without a household file: {announcement:?}"
    );
    assert_eq!(daemon.only_ticket("13700000999").await.customer_id, None);
}

fn customer(account: &str, phones: &[&str], address: &str, area: &str) -> pb::Customer {
    pb::Customer {
        account_number: account.into(),
        name: "王女士".into(),
        phone_numbers: phones.iter().map(|p| p.to_string()).collect(),
        address: address.into(),
        area: area.into(),
        ..Default::default()
    }
}

async fn upsert(
    client: &mut AdminClient<Channel>,
    token: &str,
    batches: Vec<pb::UpsertCustomersRequest>,
) -> Result<pb::UpsertCustomersResponse, tonic::Status> {
    client
        .upsert_customers(authed(token, tokio_stream::iter(batches)))
        .await
        .map(|r| r.into_inner())
}

fn batch(customers: Vec<pb::Customer>, dry_run: bool) -> pb::UpsertCustomersRequest {
    pb::UpsertCustomersRequest { customers, dry_run }
}

#[tokio::test]
async fn household_files_are_read_by_admin_and_agent_tokens_only() {
    let server = TestServer::start(support::fresh_store().await).await;
    let mut c = AdminClient::new(server.channel().await);
    let file = customer("A-1", &["13800000001"], "幸福路1号", "城东");
    let denied = upsert(&mut c, AGENT, vec![batch(vec![file.clone()], false)])
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let done = upsert(&mut c, ADMIN, vec![batch(vec![file], false)])
        .await
        .unwrap();
    assert_eq!(done.created, 1);
    let get = |account: &str| pb::GetCustomerRequest {
        account_number: account.into(),
    };
    let search = pb::SearchCustomersRequest {
        phone: "13800000001".into(),
        ..Default::default()
    };
    for token in [ADMIN, AGENT] {
        assert_eq!(
            c.get_customer(authed(token, get("A-1")))
                .await
                .unwrap()
                .into_inner()
                .area,
            "城东"
        );
        let found = c
            .search_customers(authed(token, search.clone()))
            .await
            .unwrap();
        assert_eq!(found.into_inner().customers.len(), 1);
    }
    for token in [WECHAT, NORTH] {
        let codes = [
            c.get_customer(authed(token, get("A-1")))
                .await
                .unwrap_err()
                .code(),
            c.search_customers(authed(token, search.clone()))
                .await
                .unwrap_err()
                .code(),
            upsert(&mut c, token, vec![]).await.unwrap_err().code(),
        ];
        assert_eq!(codes, [Code::PermissionDenied; 3], "token {token}");
    }
    for token in [AGENT, WECHAT, NORTH] {
        let codes = [
            c.list_units(authed(token, pb::ListUnitsRequest {}))
                .await
                .unwrap_err()
                .code(),
            c.create_unit(authed(token, pb::CreateUnitRequest::default()))
                .await
                .unwrap_err()
                .code(),
            c.delete_unit(authed(
                token,
                pb::DeleteUnitRequest {
                    code: "north".into(),
                },
            ))
            .await
            .unwrap_err()
            .code(),
        ];
        assert_eq!(codes, [Code::PermissionDenied; 3], "token {token}");
    }
    let missing = c.get_customer(authed(ADMIN, get("A-2"))).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn upsert_names_each_rejected_field_and_search_pages_through_results() {
    let server = TestServer::start(support::fresh_store().await).await;
    let mut c = AdminClient::new(server.channel().await);
    let good = |account: &str| customer(account, &["13800000001"], "幸福路1号", "城东");
    let rows = vec![
        good("A-1"),
        customer("bad acct", &["13800000001"], "幸福路", "城东"),
        pb::Customer {
            name: " ".into(),
            ..good("A-2")
        },
        customer("A-3", &["12"], "幸福路", "城东"),
        customer("A-4", &["13800000004", "13800000004"], "幸福路", "城东"),
        customer("A-5", &["13800000005"], "", "城东"),
        customer("A-6", &["13800000006"], "幸福路", "城东;城西"),
        pb::Customer {
            special_group: "vip".into(),
            ..good("A-7")
        },
        good("A-1"),
        customer("A-8", &["13800000001"], "幸福路3号", "城东"),
    ];
    let response = upsert(
        &mut c,
        ADMIN,
        vec![
            batch(rows[..5].to_vec(), false),
            batch(rows[5..].to_vec(), false),
        ],
    )
    .await
    .unwrap();
    let rejects: Vec<(u64, &str, &str)> = response
        .rejects
        .iter()
        .map(|r| (r.index, r.account_number.as_str(), r.field.as_str()))
        .collect();
    assert_eq!(
        rejects,
        [
            (1, "bad acct", "account_number"),
            (2, "A-2", "name"),
            (3, "A-3", "phone_numbers"),
            (4, "A-4", "phone_numbers"),
            (5, "A-5", "address"),
            (6, "A-6", "area"),
            (7, "A-7", "special_group"),
            (8, "A-1", "account_number"),
        ]
    );
    assert!(
        response.rejects[7].reason.contains("also in row 0"),
        "{:?}",
        response.rejects[7]
    );
    assert!(
        response.rejects[6].reason.contains("elderly_alone"),
        "{:?}",
        response.rejects[6]
    );
    assert_eq!(
        (
            response.created,
            response.updated,
            response.unchanged,
            response.rejected
        ),
        (2, 0, 0, 8)
    );
    let mixed = upsert(
        &mut c,
        ADMIN,
        vec![batch(vec![good("A-9")], false), batch(vec![], true)],
    )
    .await
    .unwrap_err();
    assert_eq!(mixed.code(), Code::InvalidArgument);
    assert!(
        mixed.message().starts_with("dry_run:"),
        "{}",
        mixed.message()
    );

    // Two households share the phone: one per page.
    let mut search = pb::SearchCustomersRequest {
        phone: "13800000001".into(),
        page_size: 1,
        ..Default::default()
    };
    let mut accounts = Vec::new();
    loop {
        let page = c
            .search_customers(authed(AGENT, search.clone()))
            .await
            .unwrap()
            .into_inner();
        accounts.extend(page.customers.into_iter().map(|c| c.account_number));
        if page.next_page_token.is_empty() {
            break;
        }
        search.page_token = page.next_page_token;
    }
    assert_eq!(accounts, ["A-1", "A-8"]);
    let by_address = c
        .search_customers(authed(
            AGENT,
            pb::SearchCustomersRequest {
                address: "3号".into(),
                area: "城东".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_address.customers.len(), 1);
    assert_eq!(by_address.customers[0].account_number, "A-8");
    let refused = |r: pb::SearchCustomersRequest| {
        let mut c = c.clone();
        async move {
            c.search_customers(authed(AGENT, r))
                .await
                .unwrap_err()
                .message()
                .to_owned()
        }
    };
    let no_area = refused(pb::SearchCustomersRequest {
        address: "幸福路".into(),
        ..Default::default()
    })
    .await;
    assert!(no_area.starts_with("area:"), "{no_area}");
    let two_keys = refused(pb::SearchCustomersRequest {
        phone: "13800000001".into(),
        account_number: "A-1".into(),
        ..Default::default()
    })
    .await;
    assert!(two_keys.contains("exactly one of"), "{two_keys}");
    let bad_token = refused(pb::SearchCustomersRequest {
        phone: "13800000001".into(),
        page_token: "zz".into(),
        ..Default::default()
    })
    .await;
    assert!(bad_token.starts_with("page_token:"), "{bad_token}");
}

#[tokio::test]
async fn a_unit_created_over_the_api_takes_a_dispatched_ticket_and_is_not_deleted_while_it_is_open()
{
    let (store, db) = support::fresh_database().await;
    let server = TestServer::start(store).await;
    let mut c = AdminClient::new(server.channel().await);
    let mut tickets = server.client().await;
    let north = pb::Unit {
        code: "north".into(),
        name: "北区燃气所".into(),
        areas: vec!["城北".into()],
        duty_phone: "sip:oncall-north@127.0.0.1".into(),
        active: true,
        ..Default::default()
    };
    let create = |unit: pb::Unit| pb::CreateUnitRequest {
        unit: Some(unit),
        validate_only: false,
    };
    for (field, unit) in [
        (
            "unit.code",
            pb::Unit {
                code: "North".into(),
                ..north.clone()
            },
        ),
        (
            "unit.name",
            pb::Unit {
                name: "".into(),
                ..north.clone()
            },
        ),
        (
            "unit.areas",
            pb::Unit {
                areas: vec!["".into()],
                ..north.clone()
            },
        ),
        (
            "unit.duty_phone",
            pb::Unit {
                duty_phone: "call me".into(),
                ..north.clone()
            },
        ),
    ] {
        let refused = c
            .create_unit(authed(ADMIN, create(unit)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().starts_with(&format!("{field}:")),
            "{}",
            refused.message()
        );
    }
    let checked = c
        .create_unit(authed(
            ADMIN,
            pb::CreateUnitRequest {
                unit: Some(north.clone()),
                validate_only: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.name, north.name);
    assert!(
        c.list_units(authed(ADMIN, pb::ListUnitsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .units
            .is_empty()
    );
    let created = c
        .create_unit(authed(ADMIN, create(north.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (created.areas.as_slice(), created.duty_phone.as_str()),
        (north.areas.as_slice(), north.duty_phone.as_str())
    );
    let again = c
        .create_unit(authed(ADMIN, create(north.clone())))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);

    // The new unit takes a dispatched ticket, and its desk sees it.
    let ticket = tickets
        .create_ticket(authed(
            AGENT,
            support::create(support::repair("13800000001", "暖气不热"), ""),
        ))
        .await
        .unwrap()
        .into_inner();
    let dispatched = tickets
        .dispatch_ticket(authed(
            ADMIN,
            pb::DispatchTicketRequest {
                name: ticket.name.clone(),
                unit: "north".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dispatched.responsible_unit, "north");
    tickets
        .get_ticket(authed(
            NORTH,
            pb::GetTicketRequest {
                name: ticket.name.clone(),
            },
        ))
        .await
        .unwrap();

    let refused = c
        .delete_unit(authed(
            ADMIN,
            pb::DeleteUnitRequest {
                code: "north".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("1 open ticket(s)"),
        "{}",
        refused.message()
    );

    // Deactivated instead: only the masked field changes.
    let inactive = c
        .update_unit(authed(
            ADMIN,
            pb::UpdateUnitRequest {
                unit: Some(pb::Unit {
                    code: "north".into(),
                    active: false,
                    ..Default::default()
                }),
                update_mask: "active".into(),
                validate_only: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (inactive.active, inactive.name.as_str()),
        (false, "北区燃气所")
    );
    let unknown = c
        .update_unit(authed(
            ADMIN,
            pb::UpdateUnitRequest {
                unit: Some(pb::Unit {
                    code: "nowhere".into(),
                    ..north.clone()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // A unit no ticket names is deleted.
    let spare = pb::Unit {
        code: "spare".into(),
        ..north.clone()
    };
    c.create_unit(authed(ADMIN, create(spare))).await.unwrap();
    let gone = c
        .delete_unit(authed(
            ADMIN,
            pb::DeleteUnitRequest {
                code: "spare".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.code, "spare");
    let codes: Vec<String> = c
        .list_units(authed(ADMIN, pb::ListUnitsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .units
        .into_iter()
        .map(|u| u.code)
        .collect();
    assert_eq!(codes, ["north"]);
    let trail: Vec<(String, String, String, Option<String>, String)> = audit_trail(&db).await;
    let actions: Vec<(&str, &str, Option<&str>)> = trail
        .iter()
        .map(|(_, key, action, detail, _)| (key.as_str(), action.as_str(), detail.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            ("north", "created", None),
            ("north", "updated", Some("active")),
            ("spare", "created", None),
            ("spare", "deleted", None),
        ]
    );
    assert!(trail.iter().all(|e| e.0 == "unit" && e.4 == "admin:ops"));
}
