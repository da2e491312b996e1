//! End to end: the daemon's call stack (SIP, media, IVR, ACD, journal) started in-process on
//! loopback with a fresh PostgreSQL database, called by the test telephone of
//! `support/phone.rs`; what the caller hears, what lands in the database and that every call
//! leaves no port, timer, session or transaction behind.

#[path = "support/phone.rs"]
mod phone;
#[allow(dead_code)] // This binary does not use every helper.
#[path = "support/sipp.rs"]
mod sipp;
#[allow(dead_code)] // Shared test helpers: this binary uses the database part only.
mod support;
#[allow(dead_code)]
#[path = "support/tools.rs"]
mod tools;

use hotline::acd::ReportedState;
use hotline::call::{CallStack, LiveCounts, Reloader, TransferToSurveyError};
use hotline::config::{self, BUILTIN_CALL_FLOW};
use hotline::media::g711::G711Codec;
use hotline::media::prompts::PromptLibrary;
use hotline::store::embedded::{Durability, EmbeddedPostgres};
use hotline::store::{
    CallEntry, NewAnnouncement, NewCustomer, NewTicket, SpecialGroup, Store, TicketFilter,
};
use hotline::tickets::{Category, Status};
use phone::{AgentPhone, Phone};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

const CALLER: &str = "13812345678";
const HOTLINE: &str = "96777";

/// A running call stack on a fresh database, its config file in a temp folder.
struct Hotline {
    stack: CallStack,
    store: Store,
    db: PgConnectOptions,
    reloader: Reloader,
    config_path: PathBuf,
    recordings: PathBuf,
    _dir: tempfile::TempDir,
}

/// Disjoint RTP port ranges for the tests of this binary, which run in parallel.
static NEXT_PORTS: AtomicU16 = AtomicU16::new(31000);

fn config_text(dir: &Path, ports: u16, daemon: &str, call_flow: &str) -> String {
    format!(
        "[daemon]\nstate_dir = \"{state}\"\nshutdown_grace_secs = 1\n{daemon}\n\
         [sip]\nlisten = \"127.0.0.1:0\"\nt1_ms = 100\nt2_ms = 800\nt4_ms = 1000\n\n\
         [media]\nrtp_port_min = {ports}\nrtp_port_max = {max}\nsounds_dir = \"sounds/zh-CN\"\n\
         recordings_dir = \"{rec}\"\n\n{call_flow}",
        state = dir.join("var").display(),
        max = ports + 39,
        rec = dir.join("recordings").display(),
    )
}

impl Hotline {
    /// The built-in call flow, changed by `edit`.
    async fn start(edit: impl Fn(String) -> String) -> Hotline {
        Hotline::start_with("", edit).await
    }

    /// [`Hotline::start`] with extra `[daemon]` lines.
    async fn start_with(daemon: &str, edit: impl Fn(String) -> String) -> Hotline {
        let (store, db) = support::fresh_database().await;
        Hotline::start_on_with(store, db, daemon, edit).await
    }

    /// [`Hotline::start`] on a given database.
    async fn start_on(
        store: Store,
        db: PgConnectOptions,
        edit: impl Fn(String) -> String,
    ) -> Hotline {
        Hotline::start_on_with(store, db, "", edit).await
    }

    async fn start_on_with(
        store: Store,
        db: PgConnectOptions,
        daemon: &str,
        edit: impl Fn(String) -> String,
    ) -> Hotline {
        // RUST_LOG=hotline=debug shows the daemon's log lines of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let ports = NEXT_PORTS.fetch_add(40, Ordering::SeqCst);
        let config_path = dir.path().join("hotline.toml");
        let text = config_text(
            dir.path(),
            ports,
            daemon,
            &edit(BUILTIN_CALL_FLOW.to_owned()),
        );
        std::fs::write(&config_path, text).unwrap();
        let config = config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let recordings = config.media.recordings_dir.clone();
        let reloader = Reloader::new(Some(config_path.clone()), config);
        let stack = CallStack::start(reloader.subscribe(), store.clone())
            .await
            .unwrap();
        Hotline {
            stack,
            store,
            db,
            reloader,
            config_path,
            recordings,
            _dir: dir,
        }
    }

    async fn phone(&self) -> Phone {
        Phone::new(self.stack.sip_addr(), CALLER, HOTLINE).await
    }

    /// Waits until no call, leg, session, port, timer, SIP call, SIP session timer or
    /// transaction is left.
    async fn wait_idle(&self) {
        let mut last = LiveCounts::default();
        // SIP transactions linger for their timers (64 × T1 at most).
        for _ in 0..400 {
            last = self.stack.counts();
            let sip = last.sip.endpoint;
            if last.calls == 0
                && last.outgoing_legs == 0
                && last.media_sessions == 0
                && last.port_leases == 0
                && last.timers == 0
                && sip.calls == 0
                && sip.session_timers == 0
                && sip.transactions() == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("resources left after the calls ended: {last:?}");
    }

    async fn ticket(&self) -> hotline::store::Ticket {
        self.stack.journal().flush().await;
        let filter = TicketFilter {
            caller_number: Some(CALLER.into()),
            ..TicketFilter::default()
        };
        let mut page = self.store.list_tickets(&filter, 10, None).await.unwrap();
        assert_eq!(page.tickets.len(), 1, "one draft ticket per call");
        page.tickets.remove(0)
    }

    async fn tickets(&self) -> Vec<hotline::store::Ticket> {
        self.stack.journal().flush().await;
        let filter = TicketFilter {
            caller_number: Some(CALLER.into()),
            ..TicketFilter::default()
        };
        self.store
            .list_tickets(&filter, 10, None)
            .await
            .unwrap()
            .tickets
    }

    async fn call_row(&self, call_id: &str) -> CallRow {
        self.stack.journal().flush().await;
        let mut conn = PgConnection::connect_with(&self.db).await.unwrap();
        let row: CallRow = sqlx::query_as(
            "SELECT ivr_path, queue, agent_id, recording_consent, recording_consent_via, \
             recording_file, disposition, answered_at IS NOT NULL AS answered, \
             ended_at IS NOT NULL AS ended FROM calls WHERE call_id = $1",
        )
        .bind(call_id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        row
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CallRow {
    ivr_path: Vec<String>,
    queue: Option<String>,
    agent_id: Option<String>,
    recording_consent: Option<String>,
    recording_consent_via: Option<String>,
    recording_file: Option<String>,
    disposition: Option<String>,
    answered: bool,
    ended: bool,
}

/// The prompts, loaded once per test binary.
fn prompts() -> &'static PromptLibrary {
    static PROMPTS: OnceLock<PromptLibrary> = OnceLock::new();
    PROMPTS.get_or_init(|| PromptLibrary::load(Path::new("sounds/zh-CN")).unwrap())
}

/// Where the first `count` frames of `prompt` appear, in order, in `audio`.
fn find_prompt(audio: &[Vec<u8>], prompt: &str, count: usize) -> Option<usize> {
    let prompt = prompts().get(prompt).unwrap();
    let count = count.min(prompt.frame_count());
    let frames: Vec<&[u8]> = (0..count)
        .map(|i| &prompt.frame(G711Codec::Pcmu, i).unwrap()[..])
        .collect();
    (0..audio.len().saturating_sub(count - 1))
        .find(|&start| (0..count).all(|i| audio[start + i] == frames[i]))
}

fn frame_count(prompt: &str) -> usize {
    prompts().get(prompt).unwrap().frame_count()
}

fn tone_500hz(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 500.0 / 8000.0).sin() * 8000.0) as i16)
        .collect()
}

/// Received 20 ms frames that carry a loud 500 Hz tone (about 20 zero crossings).
fn tone_frames(audio: &[Vec<u8>]) -> usize {
    audio
        .iter()
        .filter(|frame| {
            let mut pcm = Vec::new();
            G711Codec::Pcmu.decode_into(frame, &mut pcm);
            let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
            pcm.iter().any(|s| s.abs() > 3000) && (17..=23).contains(&crossings)
        })
        .count()
}

/// Shorter greetings for tests that are not about the greeting.
/// A one-syllable greeting not followed by the leak key offer, for tests about the menu.
fn short_greeting(flow: String) -> String {
    flow.replace("greeting = [\"welcome\"]", "greeting = [\"digit_1\"]")
        .replace("[ivr.leak]\n", "[ivr.leak]\nspeak_after_greeting = false\n")
}

fn policy(flow: String, policy: &str) -> String {
    flow.replace(
        "policy = \"announce\"",
        &format!("policy = \"{policy}\"\nresponse_window_secs = 1"),
    )
}

/// The call id of the only call row.
async fn only_call_id(hotline: &Hotline) -> String {
    hotline
        .ticket()
        .await
        .call_id
        .expect("the draft names its call")
}

#[tokio::test]
async fn answered_call_hears_the_whole_welcome_prompt() {
    let hotline = Hotline::start(|flow| flow).await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    // The caller talks too: RTP both ways (recorded later, under the announce policy).
    let tone: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 * 0.3).sin() * 6000.0) as i16)
        .collect();
    phone.send_audio(&tone).await;
    let welcome = frame_count("welcome");
    tokio::time::sleep(Duration::from_millis(welcome as u64 * 20)).await;
    let audio = phone.rtp.audio();
    let start = find_prompt(&audio, "welcome", welcome).expect("every welcome frame, in order");
    // Before the prompt only comfort silence: the IVR started at once.
    assert!(start < 50, "welcome started after {start} frames");
    assert!(
        audio[..start]
            .iter()
            .all(|f| f.iter().all(|b| *b == G711Codec::Pcmu.silence_byte()))
    );
    // The leak key follows the greeting, as configured ("燃气泄漏，请按一"), then the
    // recording notice.
    let offer = start + welcome;
    let leak_offer = ["label_leak", "press_key", "digit_1"];
    let notice_at = offer + leak_offer.iter().map(|p| frame_count(p)).sum::<usize>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while find_prompt(&phone.rtp.audio(), "recording_notice", 5).is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recording notice"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audio = phone.rtp.audio();
    let mut at = offer;
    for prompt in leak_offer {
        assert_eq!(
            find_prompt(&audio[at..], prompt, frame_count(prompt)),
            Some(0),
            "{prompt}"
        );
        at += frame_count(prompt);
    }
    assert_eq!(find_prompt(&audio, "recording_notice", 5), Some(notice_at));
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;

    let ticket = hotline.ticket().await;
    assert_eq!(ticket.status, Status::Draft);
    assert_eq!(ticket.category, Category::Consultation);
    assert_eq!(ticket.caller_number, CALLER);
    let row = hotline.call_row(ticket.call_id.as_deref().unwrap()).await;
    assert!(row.answered && row.ended);
    assert_eq!(row.disposition.as_deref(), Some("abandoned_in_ivr"));
    assert_eq!(row.ivr_path, vec!["flow:main:business_hours"]);
}

#[tokio::test]
async fn menu_key_two_files_a_repair_ticket_with_its_path() {
    let hotline = Hotline::start(|flow| policy(short_greeting(flow), "off")).await;
    let household = hotline
        .store
        .create_customer(&NewCustomer {
            account_number: "RQ-0001".into(),
            name: "王女士".into(),
            phone_numbers: vec![CALLER.into()],
            address: "幸福路12号3单元501".into(),
            area: "城东".into(),
            // An elderly caller living alone: waits ahead of callers of the same priority.
            special_group: Some(SpecialGroup::ElderlyAlone),
        })
        .await
        .unwrap();
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    // Greeting (digit_1), then the main menu: press 2 in-band while it plays.
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 500,
    ))
    .await;
    phone.press_inband('2').await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let audio = phone.rtp.audio();
    let menu = find_prompt(&audio, "label_leak", 10).expect("the menu played");
    assert!(
        find_prompt(&audio[menu..], "transfer_agent", 10).is_some(),
        "the queue announcement followed the key"
    );
    let ticket = hotline.ticket().await;
    assert_eq!(ticket.category, Category::Repair);
    assert_eq!(ticket.priority, 0);
    // The caller look-up found the household file.
    assert_eq!(ticket.customer_id, Some(household.id));
    assert_eq!(ticket.caller_name, "王女士");
    let call_id = ticket.call_id.unwrap();
    let row = hotline.call_row(&call_id).await;
    assert_eq!(
        row.ivr_path,
        vec![
            "flow:main:business_hours",
            "special_group:elderly_alone",
            "menu:2",
            "repair"
        ]
    );
    assert_eq!(row.queue.as_deref(), Some("general"));
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;
    let row = hotline.call_row(&call_id).await;
    assert_eq!(row.disposition.as_deref(), Some("abandoned_in_queue"));
    // Policy off asks nothing, and the row says so.
    assert_eq!(row.recording_consent.as_deref(), Some("not_asked"));
    assert_eq!(row.recording_consent_via.as_deref(), Some("policy_off"));
}

#[tokio::test]
async fn leak_key_in_the_greeting_rings_the_emergency_agent() {
    let mut agent = AgentPhone::bind().await;
    let agent_uri = agent.uri("2001");
    let hotline = Hotline::start(|flow| {
        flow.replace(
            "[acd.agents]",
            &format!("[acd.agents.e1]\nuri = \"{agent_uri}\"\nqueues = [\"emergency\"]"),
        )
    })
    .await;
    hotline
        .stack
        .set_agent_state("e1", ReportedState::Available);
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    // Within the first 200 ms of the greeting.
    tokio::time::sleep(Duration::from_millis(60)).await;
    phone.press_event('1').await;
    let ringing = agent.ringing(5).await;
    assert!(
        ringing.invite.uri().unwrap().starts_with("sip:2001@"),
        "the agent's URI is rung"
    );
    // While the agent's phone rings the caller hears the leak prompts.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let audio = phone.rtp.audio();
    let welcome = find_prompt(&audio, "welcome", 3).expect("the greeting started");
    let leak = find_prompt(&audio, "leak_connecting", 20).expect("leak prompt");
    assert!(
        leak - welcome < 25,
        "greeting cut within 0.5 s of the key, not played on ({} frames)",
        leak - welcome
    );
    let ticket = hotline.ticket().await;
    assert_eq!(ticket.category, Category::Leak);
    assert_eq!(ticket.priority, 9);
    agent.answer(&ringing).await;
    let call_id = ticket.call_id.unwrap();
    // Bridged: each side hears the other's 500 Hz tone.
    let leg_rtp = phone::sdp_rtp_addr(&ringing.invite.body);
    let tone = tone_500hz(8000);
    phone.send_audio(&tone).await;
    agent.rtp.send_audio(leg_rtp, G711Codec::Pcmu, &tone).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent_heard = tone_frames(&agent.rtp.audio());
    assert!(agent_heard >= 30, "agent heard {agent_heard} tone frames");
    let caller_heard = tone_frames(&phone.rtp.audio());
    assert!(
        caller_heard >= 30,
        "caller heard {caller_heard} tone frames"
    );
    let row = hotline.call_row(&call_id).await;
    assert_eq!(row.agent_id.as_deref(), Some("e1"));
    assert_eq!(row.queue.as_deref(), Some("emergency"));
    assert!(
        row.ivr_path.contains(&"leak:1".to_owned()),
        "{:?}",
        row.ivr_path
    );
    // The leak key skipped the notice: recorded by default.
    assert_eq!(row.recording_consent.as_deref(), Some("granted"));
    assert_eq!(phone.bye().await, 200);
    assert_eq!(agent.expect_end(5).await, "BYE");
    hotline.wait_idle().await;
    let row = hotline.call_row(&call_id).await;
    assert_eq!(row.disposition.as_deref(), Some("answered"));
}

#[tokio::test]
async fn unanswered_leak_overflows_to_the_on_call_uri() {
    let on_call = AgentPhone::bind().await;
    let uri = on_call.uri("oncall");
    let hotline = Hotline::start(|flow| {
        short_greeting(flow)
            .replace("overflow_after_secs = 30", "overflow_after_secs = 1")
            .replace("sip:oncall@127.0.0.1:5070", &uri)
    })
    .await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    phone.press_event('1').await;
    let ringing = on_call.ringing(5).await;
    // Waited about overflow_after_secs, hearing the leak prompts.
    let audio = phone.rtp.audio();
    assert!(find_prompt(&audio, "leak_connecting", 20).is_some());
    on_call.answer(&ringing).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ticket = hotline.ticket().await;
    assert_eq!((ticket.category, ticket.priority), (Category::Leak, 9));
    assert_eq!(phone.bye().await, 200);
    assert_eq!(on_call.expect_end(5).await, "BYE");
    hotline.wait_idle().await;
    let row = hotline.call_row(&ticket.call_id.unwrap()).await;
    assert_eq!(row.disposition.as_deref(), Some("transferred"));
}

#[tokio::test]
async fn opt_out_key_refuses_the_recording() {
    let hotline = Hotline::start(|flow| policy(short_greeting(flow), "opt_out")).await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    // During the opt-out notice.
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 600,
    ))
    .await;
    phone.press_inband('9').await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;
    let call_id = only_call_id(&hotline).await;
    let row = hotline.call_row(&call_id).await;
    assert_eq!(row.recording_consent.as_deref(), Some("declined"));
    assert_eq!(row.recording_consent_via.as_deref(), Some("dtmf"));
    assert_eq!(row.recording_file, None);
    let files: Vec<_> = std::fs::read_dir(&hotline.recordings)
        .unwrap()
        .flatten()
        .collect();
    assert!(files.is_empty(), "no recording: {files:?}");
}

#[tokio::test]
async fn staying_on_the_line_under_opt_out_records_the_caller_on_the_left() {
    let hotline = Hotline::start(|flow| policy(short_greeting(flow), "opt_out")).await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    // Greeting, notice and the 1 s response window pass without a key.
    let before = [
        "digit_1",
        "recording_notice",
        "recording_opt_out",
        "press_key",
        "digit_9",
    ]
    .iter()
    .map(|p| frame_count(p))
    .sum::<usize>();
    tokio::time::sleep(Duration::from_millis(before as u64 * 20 + 1300)).await;
    // 1 s of a 500 Hz tone from the caller.
    phone.send_audio(&tone_500hz(8000)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;
    let call_id = only_call_id(&hotline).await;
    let row = hotline.call_row(&call_id).await;
    assert_eq!(row.recording_consent.as_deref(), Some("granted"));
    assert_eq!(row.recording_consent_via.as_deref(), Some("stayed_on_line"));
    let file = PathBuf::from(row.recording_file.expect("recording file stored"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut reader = hound::WavReader::open(&file).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    // The left channel holds the tone: loud, and crossing zero 1000 times a second.
    let loud: Vec<i16> = left.iter().copied().filter(|s| s.abs() > 3000).collect();
    assert!(
        loud.len() > 3000,
        "caller tone on the left ({} loud samples)",
        loud.len()
    );
    let start = left.iter().position(|s| s.abs() > 3000).unwrap();
    let second = &left[start..(start + 8000).min(left.len())];
    let crossings = second
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    assert!(
        (900..=1100).contains(&crossings),
        "500 Hz on the left: {crossings} zero crossings in 1 s"
    );
    // The menu prompt is on the right.
    assert!(right.iter().any(|s| s.abs() > 1000), "prompts on the right");
}

#[tokio::test]
async fn calls_ended_every_way_leave_nothing_behind() {
    let hotline = Hotline::start(|flow| {
        policy(short_greeting(flow), "off")
            .replace(
                "{ digit = \"0\", next = \"person\", label = \"label_person\" },",
                "{ digit = \"0\", next = \"person\", label = \"label_person\" },\n  \
                 { digit = \"9\", next = \"bye\", label = \"goodbye\" },",
            )
            .replace(
                "\n[acd]\n",
                "\n[ivr.flows.main.nodes.bye]\nkind = \"hangup\"\nprompts = [\"goodbye\"]\n\n[acd]\n",
            )
    })
    .await;

    // BYE from the caller.
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;

    // BYE from the hotline: key 9 says goodbye and hangs up.
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 300,
    ))
    .await;
    phone.press_event('9').await;
    phone.expect_bye(10).await;
    // The last frames may still be in the socket.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(find_prompt(&phone.rtp.audio(), "goodbye", frame_count("goodbye")).is_some());
    hotline.wait_idle().await;

    // CANCEL before the answer: the caller look-up is held up by a locked table, so the
    // call rings for the look-up timeout.
    let mut lock = PgConnection::connect_with(&hotline.db).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let mut phone = hotline.phone().await;
    phone.send_invite().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(phone.cancel().await, 487);
    // With the database stuck a call is still answered (after the look-up timeout) and
    // served; its records are written once the database is back.
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 300,
    ))
    .await;
    assert!(find_prompt(&phone.rtp.audio(), "digit_1", frame_count("digit_1")).is_some());
    assert!(find_prompt(&phone.rtp.audio(), "label_leak", 5).is_some());
    assert_eq!(phone.bye().await, 200);
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    hotline.wait_idle().await;

    let dispositions: Vec<Option<String>> = {
        let tickets = hotline.tickets().await;
        assert_eq!(tickets.len(), 3, "the cancelled call never reached the IVR");
        let mut out = Vec::new();
        for ticket in tickets {
            out.push(hotline.call_row(&ticket.call_id.unwrap()).await.disposition);
        }
        out
    };
    assert!(dispositions.contains(&Some("self_served".into())));
    assert!(dispositions.contains(&Some("abandoned_in_ivr".into())));
    let mut conn = PgConnection::connect_with(&hotline.db).await.unwrap();
    let cancelled: Vec<(Option<String>, bool)> = sqlx::query_as(
        "SELECT disposition, answered_at IS NULL FROM calls c WHERE NOT EXISTS \
         (SELECT 1 FROM tickets t WHERE t.call_id = c.call_id)",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(cancelled, vec![(Some("abandoned_in_ivr".into()), true)]);
}

#[tokio::test]
async fn reload_changes_new_calls_only_and_refuses_a_bad_file() {
    let hotline = Hotline::start(|flow| policy(short_greeting(flow), "off")).await;
    let mut first = hotline.phone().await;
    assert_eq!(first.call().await, 200);

    // Keys 2 and 3 swap for new calls: 2 is billing now.
    let text = std::fs::read_to_string(&hotline.config_path).unwrap();
    let changed = text.replace(
        "{ digit = \"2\", next = \"repair\", label = \"label_repair\" },\n  \
         { digit = \"3\", next = \"billing\", label = \"label_billing\" },",
        "{ digit = \"2\", next = \"billing\", label = \"label_billing\" },\n  \
         { digit = \"3\", next = \"repair\", label = \"label_repair\" },",
    );
    assert_ne!(text, changed);
    std::fs::write(&hotline.config_path, &changed).unwrap();
    hotline.reloader.reload().unwrap();

    let menu_at = Duration::from_millis(frame_count("digit_1") as u64 * 20 + 500);
    tokio::time::sleep(menu_at).await;
    first.press_event('2').await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hotline.ticket().await.category, Category::Repair);
    assert_eq!(first.bye().await, 200);

    let mut second = hotline.phone().await;
    assert_eq!(second.call().await, 200);
    tokio::time::sleep(menu_at).await;
    // This caller's phone sends its keys as SIP INFO.
    assert_eq!(second.press_info('2').await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let categories: Vec<Category> = hotline.tickets().await.iter().map(|t| t.category).collect();
    assert!(categories.contains(&Category::Query), "{categories:?}");
    assert_eq!(second.bye().await, 200);

    // A broken file is refused with its line and key; the running one stays.
    std::fs::write(
        &hotline.config_path,
        changed.replace("queue = \"emergency\"", "queue = \"nowhere\""),
    )
    .unwrap();
    let errors = hotline.reloader.reload().unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.key == "ivr.leak.queue" && e.position.is_some()),
        "{errors}"
    );
    assert_eq!(hotline.reloader.current().ivr.leak.queue, "emergency");
    hotline.wait_idle().await;
    hotline.stack.shutdown(Duration::from_secs(1)).await;
}

/// Asks `sip` for OPTIONS until it answers (the daemon is up), for at most 60 s.
async fn wait_for_sip(sip: std::net::SocketAddr, daemon: &mut tokio::process::Child) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    for i in 0..300 {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "hotlined exited early"
        );
        let options = format!(
            "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKup{i};rport\r\n\
             From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:{sip}>\r\nCall-ID: up-{i}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        socket.send_to(options.as_bytes(), sip).await.unwrap();
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await
        {
            return;
        }
    }
    panic!("hotlined did not answer SIP within 60 s");
}

#[tokio::test]
async fn hotlined_without_configuration_answers_with_the_built_in_flow() {
    let dir = support::reachable_temp_dir();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds"),
        dir.path().join("sounds"),
    )
    .unwrap();
    let free_port = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (sip, grpc) = (free_port(), free_port());
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .args(["--listen", &grpc.to_string(), "--log-format", "json"])
        .args(["--sip-listen", &sip.to_string()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_sip(sip, &mut daemon).await;

    let mut phone = Phone::new(sip, CALLER, HOTLINE).await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(find_prompt(&phone.rtp.audio(), "welcome", 50).is_some());
    assert_eq!(phone.bye().await, 200);

    let pid = i32::try_from(daemon.id().unwrap()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let output = daemon.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("138****5678"), "the call is logged: {log}");
    assert!(!log.contains(CALLER), "numbers are masked: {log}");
}

#[tokio::test]
async fn shutdown_refuses_new_calls_and_hangs_up_after_the_grace_period() {
    let hotline = Hotline::start(|flow| policy(short_greeting(flow), "off")).await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    // The IVR starts (and files the draft) once the ACK is in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let call_id = only_call_id(&hotline).await;
    let sip = hotline.stack.sip_addr();
    let stopping = tokio::spawn(hotline.stack.shutdown(Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut late = Phone::new(sip, "13900000000", HOTLINE).await;
    assert_eq!(late.call().await, 503);
    // The call in progress went on through the grace period, then got a BYE.
    phone.expect_bye(5).await;
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("shutdown completes")
        .unwrap();
    // The journal wrote everything before it stopped.
    let mut conn = PgConnection::connect_with(&hotline.db).await.unwrap();
    let (ended, disposition): (bool, Option<String>) =
        sqlx::query_as("SELECT ended_at IS NOT NULL, disposition FROM calls WHERE call_id = $1")
            .bind(&call_id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(ended);
    assert_eq!(disposition.as_deref(), Some("abandoned_in_ivr"));
}

#[tokio::test]
async fn keyed_account_number_lands_on_the_ticket() {
    let hotline = Hotline::start(|flow| {
        policy(short_greeting(flow), "off")
            .replace(
                "{ digit = \"0\", next = \"person\", label = \"label_person\" },",
                "{ digit = \"0\", next = \"person\", label = \"label_person\" },\n  \
                 { digit = \"6\", next = \"account\", label = \"label_billing\" },",
            )
            .replace(
                "\n[acd]\n",
                "\n[ivr.flows.main.nodes.account]\nkind = \"collect\"\nprompts = [\"enter_account\"]\n\
                 variable = \"account\"\nmax_len = 8\nnext = \"billing\"\nfallback = \"person\"\n\n[acd]\n",
            )
    })
    .await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 300,
    ))
    .await;
    phone.press_event('6').await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for digit in "20261125".chars() {
        phone.press_event(digit).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ticket = hotline.ticket().await;
    assert_eq!(ticket.category, Category::Query);
    assert!(
        ticket.description.ends_with("\naccount: 20261125"),
        "{:?}",
        ticket.description
    );
    let row = hotline.call_row(&ticket.call_id.unwrap()).await;
    // The path names the entry; the value itself is on the ticket only.
    assert_eq!(
        row.ivr_path,
        vec![
            "flow:main:business_hours",
            "menu:6",
            "account:<account>",
            "billing"
        ]
    );
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;
}

#[tokio::test]
async fn a_call_goes_on_while_the_database_is_stopped_and_lands_once_when_it_is_back() {
    // A private cluster this test can stop and start.
    let dir = support::reachable_temp_dir();
    let pg_root = dir.path().join("pg");
    let cluster = EmbeddedPostgres::start(&pg_root, Durability::Throwaway)
        .await
        .unwrap();
    cluster.create_database("hotline").await.unwrap();
    let db = cluster.connect_options("hotline");
    let store = support::store_on(db.clone()).await;
    let hotline = Hotline::start_on(store, db, |flow| policy(short_greeting(flow), "off")).await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    cluster.stop().await.unwrap();
    // The greeting and the menu go on; the menu key works.
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 500,
    ))
    .await;
    phone.press_inband('2').await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let audio = phone.rtp.audio();
    let menu = find_prompt(&audio, "label_leak", 10).expect("the menu played");
    assert!(
        find_prompt(&audio[menu..], "transfer_agent", 10).is_some(),
        "the key took the caller on to the queue"
    );
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;

    let cluster = EmbeddedPostgres::start(&pg_root, Durability::Throwaway)
        .await
        .unwrap();
    // `ticket` waits until the journal wrote everything (replaying its spool).
    let ticket = tokio::time::timeout(Duration::from_secs(60), hotline.ticket())
        .await
        .expect("the spooled records reach the database once it is back");
    assert_eq!(ticket.category, Category::Repair);
    assert_eq!(ticket.status, Status::Draft);
    // The deadlines are those of a repair, as the rules give them.
    let rules = config::Config::default().rules().unwrap();
    let expected = NewTicket {
        request_id: None,
        channel: ticket.channel,
        category: Category::Repair,
        complaint_level: None,
        status: Status::Draft,
        priority: 0,
        caller_name: String::new(),
        caller_number: CALLER.into(),
        caller_address: String::new(),
        description: String::new(),
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
        created_by: "ivr".into(),
        created_at: ticket.created_at,
    }
    .due_by_rules(&rules);
    assert!(expected.dispatch_due.is_some());
    let due = |t: &hotline::store::Ticket| {
        (
            t.dispatch_due,
            t.contact_due,
            t.finish_due,
            t.callback_due,
            t.investigation_due,
        )
    };
    assert_eq!(
        due(&ticket),
        (
            expected.dispatch_due,
            expected.contact_due,
            expected.finish_due,
            expected.callback_due,
            expected.investigation_due
        )
    );
    let call_id = ticket.call_id.clone().unwrap();
    let row = hotline.call_row(&call_id).await;
    assert_eq!(
        row.ivr_path,
        vec!["flow:main:business_hours", "menu:2", "repair"]
    );
    assert_eq!(row.disposition.as_deref(), Some("abandoned_in_queue"));
    assert!(row.answered && row.ended);
    // Exactly once: one call row, one draft ticket, one category change in its audit trail.
    let mut conn = PgConnection::connect_with(&hotline.db).await.unwrap();
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(calls, 1);
    let category_changes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
         WHERE t.call_id = $1 AND e.field = 'category'",
    )
    .bind(&call_id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(category_changes, 1);
    conn.close().await.unwrap();
    hotline.stack.shutdown(Duration::from_secs(1)).await;
    hotline.store.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn outage_announcements_play_before_the_menu() {
    let hotline = Hotline::start(|flow| policy(short_greeting(flow), "off")).await;
    let now = chrono::Utc::now();
    let announcement = |text: &str, dids: Vec<String>| NewAnnouncement {
        text: Some(text.into()),
        prompt: None,
        dids,
        areas: Vec::new(),
        starts_at: now - chrono::Duration::hours(1),
        ends_at: now + chrono::Duration::hours(1),
        created_by: "admin".into(),
    };
    // A rendered text for the number called: 1 s of a 500 Hz tone stands in for the speech.
    let rendered = hotline
        .store
        .create_announcement(&announcement("城东停气抢修", vec![HOTLINE.into()]))
        .await
        .unwrap();
    let dir = hotline.reloader.current().daemon.announcements_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("{}.wav", rendered.id);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(dir.join(&file), spec).unwrap();
    for sample in tone_500hz(8000) {
        wav.write_sample(sample).unwrap();
    }
    wav.finalize().unwrap();
    hotline
        .store
        .set_announcement_audio(rendered.id, &file)
        .await
        .unwrap();
    // A text not rendered (no TTS configured) plays the generic outage prompt; another
    // number's announcement is not heard.
    hotline
        .store
        .create_announcement(&announcement("全市停热", vec![HOTLINE.into()]))
        .await
        .unwrap();
    hotline
        .store
        .create_announcement(&announcement("别处", vec!["96999".into()]))
        .await
        .unwrap();

    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(
        (frame_count("digit_1") + 50 + frame_count("outage_generic") + 20) as u64 * 20 + 1000,
    ))
    .await;
    let audio = phone.rtp.audio();
    let menu = find_prompt(&audio, "label_leak", 10).expect("the menu played");
    let generic = find_prompt(&audio[..menu], "outage_generic", 10)
        .expect("the generic outage prompt played before the menu");
    // In the order they were set: the rendered one first, whole.
    assert!(
        tone_frames(&audio[..generic]) >= 45,
        "the rendered announcement played first ({} tone frames)",
        tone_frames(&audio[..generic])
    );
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;
}

#[tokio::test]
async fn agents_report_in_over_the_admin_api_and_get_rung() {
    use hotline::api::{self, AccessList, AdminService, pb};
    let agent_phone = AgentPhone::bind().await;
    let agent_uri = agent_phone.uri("1001");
    let hotline = Hotline::start(|flow| {
        policy(short_greeting(flow), "off").replace(
            "[acd.agents]",
            &format!(
                "[acd.agents.1001]\nuri = \"{agent_uri}\"\nqueues = [\"general\"]\n\n\
                 [acd.agents.1002]\nuri = \"sip:1002@127.0.0.1:9\"\nqueues = [\"general\"]"
            ),
        )
    })
    .await;
    // The daemon's API with the call stack's agents, on loopback.
    let config = hotline.reloader.current();
    let announcer = hotline::ops::Announcer::new(
        hotline.store.clone(),
        config.daemon.announcements_dir(),
        config.announcements.clone(),
    );
    let hook = api::reload_hook(|| async { Ok(String::new()) });
    let admin = AdminService::new(announcer, hook).with_agents(hotline.stack.agent_desk());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rules = hotline::tickets::Rules::new(Default::default()).unwrap();
    tokio::spawn(api::serve(
        api::TicketsService::new(hotline.store.clone(), rules),
        AccessList::from_config(&support::tokens()).unwrap(),
        Some(admin),
        listener,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::admin_client::AdminClient::new(channel);
    let set = |token: &str, agent: &str, state: pb::AgentState| {
        support::authed(
            token,
            pb::SetAgentStateRequest {
                agent_id: agent.into(),
                state: state.into(),
            },
        )
    };
    let states = |list: pb::ListAgentsResponse| -> Vec<(String, pb::AgentState)> {
        list.agents
            .into_iter()
            .map(|a| (a.id.clone(), a.state()))
            .collect()
    };

    let list = client
        .list_agents(support::authed(support::ADMIN, pb::ListAgentsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        states(list),
        vec![
            ("1001".to_owned(), pb::AgentState::Offline),
            ("1002".to_owned(), pb::AgentState::Offline)
        ],
        "agents start offline"
    );
    // An agent token sets its own state, and only its own.
    let me = client
        .set_agent_state(set(support::AGENT, "1001", pb::AgentState::Available))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.state(), pb::AgentState::Available);
    assert_eq!(me.queues, vec!["general"]);
    let other = client
        .set_agent_state(set(support::AGENT, "1002", pb::AgentState::Available))
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::PermissionDenied, "{other:?}");
    let integration = client
        .set_agent_state(set(support::WECHAT, "1001", pb::AgentState::Offline))
        .await
        .unwrap_err();
    assert_eq!(integration.code(), tonic::Code::PermissionDenied);
    let listing = client
        .list_agents(support::authed(support::AGENT, pb::ListAgentsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(listing.code(), tonic::Code::PermissionDenied);
    let unknown = client
        .set_agent_state(set(support::ADMIN, "9999", pb::AgentState::Available))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(unknown.message().contains("9999"), "{}", unknown.message());
    let ringing = client
        .set_agent_state(set(support::ADMIN, "1002", pb::AgentState::Ringing))
        .await
        .unwrap_err();
    assert_eq!(ringing.code(), tonic::Code::InvalidArgument);
    assert!(ringing.message().contains("state"), "{}", ringing.message());

    // The ACD now rings the agent who reported in (1002 stayed offline).
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 500,
    ))
    .await;
    phone.press_inband('2').await;
    let offer = agent_phone.ringing(5).await;
    assert!(offer.invite.uri().unwrap().starts_with("sip:1001@"));
    let list = client
        .list_agents(support::authed(support::ADMIN, pb::ListAgentsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        states(list),
        vec![
            ("1001".to_owned(), pb::AgentState::Ringing),
            ("1002".to_owned(), pb::AgentState::Offline)
        ]
    );
    assert_eq!(phone.bye().await, 200);
}

#[tokio::test]
async fn hotlined_purges_expired_recordings_while_it_runs() {
    let dir = support::reachable_temp_dir();
    let (store, db) = support::fresh_database().await;
    let recordings = dir.path().join("recordings");
    std::fs::create_dir(&recordings).unwrap();
    let expired = recordings.join("old.wav");
    let recent = recordings.join("recent.wav");
    std::fs::write(&expired, b"RIFF").unwrap();
    std::fs::write(&recent, b"RIFF").unwrap();
    let now = chrono::Utc::now();
    let call = |days: i64, file: &str| {
        vec![
            CallEntry::Arrived {
                caller: CALLER.into(),
                called: HOTLINE.into(),
                at: now - chrono::Duration::days(days),
            },
            CallEntry::Recording { path: file.into() },
        ]
    };
    support::journal_calls(
        &store,
        vec![
            ("old", call(30, "old.wav")),
            ("recent", call(0, "recent.wav")),
        ],
    )
    .await;
    let url = format!(
        "postgres://{}@localhost:{}/{}?host={}",
        db.get_username(),
        db.get_port(),
        db.get_database().unwrap(),
        db.get_socket()
            .expect("the test cluster listens on a socket")
            .display()
    );
    let ports = NEXT_PORTS.fetch_add(40, Ordering::SeqCst);
    let mut text = config_text(dir.path(), ports, "", BUILTIN_CALL_FLOW);
    text = text.replace(
        "sounds_dir = \"sounds/zh-CN\"",
        &format!(
            "sounds_dir = \"{}\"",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("sounds/zh-CN")
                .display()
        ),
    );
    text.push_str(&format!(
        "\n[database]\nurl = \"{url}\"\n\n[retention]\nrecordings_days = 7\n"
    ));
    let config_path = dir.path().join("hotline.toml");
    std::fs::write(&config_path, text).unwrap();
    let free_port = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (sip, grpc) = (free_port(), free_port());
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "--listen",
            &grpc.to_string(),
            "--sip-listen",
            &sip.to_string(),
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The first purge runs at start; its log line comes once the files are gone and the
    // call rows are marked, so wait for the line (read as the daemon writes it).
    let stderr = daemon.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = tokio::spawn({
        let log = log.clone();
        async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !log
        .lock()
        .unwrap()
        .contains("purged expired call recordings")
    {
        let text = log.lock().unwrap().clone();
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "hotlined stopped: {text}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "no purge logged: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!expired.exists(), "the expired recording was purged");
    assert!(recent.exists(), "a recent recording is kept");

    let pid = i32::try_from(daemon.id().unwrap()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = daemon.wait().await.unwrap();
    reader.await.unwrap();
    assert!(status.success(), "{}", log.lock().unwrap());
}

#[tokio::test]
async fn a_caller_killed_mid_call_is_hung_up_after_the_silence_and_leaves_nothing_behind() {
    // media.inactivity_secs = 2: the flow text follows the [media] keys.
    let hotline = Hotline::start(|flow| format!("inactivity_secs = 2\n{flow}")).await;
    // A minute of µ-law silence: sipp streams it until it is killed.
    let voice = vec![0xFFu8; 8000 * 60];
    let sipp = sipp::Sipp {
        vars: &[
            ("caller", CALLER),
            ("dtmf", "inband"),
            ("digits", "1"),
            ("wait_ms", "60000"),
            ("hold_ms", "1000"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &voice)],
        service: HOTLINE,
        ..sipp::Sipp::new("uac_media.xml", hotline.stack.sip_addr())
    };
    let (mut caller, _dir) = sipp.spawn();
    for _ in 0..200 {
        if hotline.stack.counts().media_sessions == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hotline.stack.counts().media_sessions, 1, "the call is up");
    // The call runs (RTP flowing) for a while, then the caller's sipp dies: no BYE, no RTP.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hotline.stack.counts().calls, 1, "RTP keeps the call alive");
    caller.start_kill().unwrap();
    caller.wait().await.unwrap();
    // 2 s of silence, then our BYE (unanswered: Timer F, 64 × T1 = 6.4 s here).
    hotline.wait_idle().await;
    let row = hotline.call_row(&only_call_id(&hotline).await).await;
    assert!(row.answered && row.ended, "{row:?}");
    assert_eq!(row.disposition.as_deref(), Some("media_timeout"), "{row:?}");
}

#[tokio::test]
async fn a_call_past_max_call_secs_is_hung_up() {
    let hotline = Hotline::start_with("max_call_secs = 2", |flow| flow).await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    phone.expect_bye(10).await;
    hotline.wait_idle().await;
    let row = hotline.call_row(&only_call_id(&hotline).await).await;
    assert_eq!(row.disposition.as_deref(), Some("max_duration"), "{row:?}");
}

#[tokio::test]
async fn a_queue_wait_past_max_queue_wait_secs_is_hung_up() {
    let hotline = Hotline::start_with("max_queue_wait_secs = 2", |flow| {
        policy(short_greeting(flow), "off")
    })
    .await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(
        frame_count("digit_1") as u64 * 20 + 500,
    ))
    .await;
    // Key 2: a repair, to the general queue, where no agent is.
    phone.press_inband('2').await;
    phone.expect_bye(15).await;
    hotline.wait_idle().await;
    let row = hotline.call_row(&only_call_id(&hotline).await).await;
    assert_eq!(row.queue.as_deref(), Some("general"));
    assert_eq!(row.disposition.as_deref(), Some("queue_timeout"), "{row:?}");
}

#[tokio::test]
async fn a_leak_call_waits_past_max_queue_wait_secs() {
    let hotline = Hotline::start_with("max_queue_wait_secs = 1", |flow| policy(flow, "off")).await;
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(Duration::from_millis(60)).await;
    // The leak key in the greeting: the emergency queue, where no agent is. Leak calls are
    // exempt from the limit (they overflow to the on-call number instead).
    phone.press_event('1').await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hotline.stack.counts().calls, 1, "the leak call is still up");
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;
    let row = hotline.call_row(&only_call_id(&hotline).await).await;
    assert_eq!(row.queue.as_deref(), Some("emergency"));
    assert_eq!(
        row.disposition.as_deref(),
        Some("abandoned_in_queue"),
        "{row:?}"
    );
}

/// Waits (up to `secs`) until the caller has heard the first frames of `prompt` after frame
/// `from`; returns where it starts.
async fn heard(phone: &Phone, prompt: &str, from: usize, secs: u64) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let audio = phone.rtp.audio();
        if let Some(at) = audio.get(from..).and_then(|a| find_prompt(a, prompt, 10)) {
            return from + at;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the caller did not hear {prompt} within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts that `prompts` were heard one right after the other (a few frames apart at most),
/// the first at `start`; returns where the last one ends.
fn heard_in_a_row(audio: &[Vec<u8>], start: usize, prompts: &[&str]) -> usize {
    let mut at = start;
    for prompt in prompts {
        let window = &audio[at..(at + 5 + 10).min(audio.len())];
        let offset = find_prompt(window, prompt, 10)
            .unwrap_or_else(|| panic!("{prompt} did not follow at frame {at} ({prompts:?})"));
        at += offset + frame_count(prompt);
    }
    at
}

/// Agent 1001 at `uri`, serving the general queue.
fn with_agent(flow: String, uri: &str) -> String {
    flow.replace(
        "[acd.agents]",
        &format!("[acd.agents.1001]\nuri = \"{uri}\"\nqueues = [\"general\"]"),
    )
}

/// A caller talking with agent 1001 (general queue), recording off.
struct AgentCall {
    hotline: Hotline,
    agent: AgentPhone,
    phone: Phone,
    ringing: phone::Ringing,
}

/// Calls in, presses 0 ("人工服务") at the menu and lets the agent answer.
async fn agent_call() -> AgentCall {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let hotline =
        Hotline::start(|flow| with_agent(policy(short_greeting(flow), "off"), &uri)).await;
    hotline
        .stack
        .set_agent_state("1001", ReportedState::Available);
    let mut phone = hotline.phone().await;
    assert_eq!(phone.call().await, 200);
    heard(&phone, "label_leak", 0, 5).await;
    phone.press_event('0').await;
    let ringing = agent.ringing(5).await;
    agent.answer(&ringing).await;
    AgentCall {
        hotline,
        agent,
        phone,
        ringing,
    }
}

#[derive(Debug, sqlx::FromRow, PartialEq, Eq)]
struct SurveyRow {
    survey_rating: Option<String>,
    survey_key: Option<String>,
    ticket_rating: Option<String>,
    disposition: Option<String>,
}

async fn survey_row(hotline: &Hotline, call_id: &str) -> SurveyRow {
    hotline.stack.journal().flush().await;
    let mut conn = PgConnection::connect_with(&hotline.db).await.unwrap();
    let row = sqlx::query_as(
        "SELECT c.survey_rating, c.survey_key, t.call_survey_rating AS ticket_rating, \
         c.disposition FROM calls c JOIN tickets t ON t.call_id = c.call_id \
         WHERE c.call_id = $1",
    )
    .bind(call_id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    row
}

#[tokio::test]
async fn after_the_agent_hangs_up_the_callers_key_lands_on_the_call_and_the_ticket() {
    let AgentCall {
        hotline,
        agent,
        mut phone,
        ringing,
    } = agent_call().await;
    let before = phone.rtp.audio().len();
    assert_eq!(agent.hang_up(&ringing).await, 200);
    // The caller stays on the line and hears the survey, its keys composed from the config.
    let intro = heard(&phone, "survey_intro", before, 10).await;
    heard(&phone, "digit_1", intro, 10).await;
    heard_in_a_row(
        &phone.rtp.audio(),
        intro,
        &["survey_intro", "label_satisfied", "press_key", "digit_1"],
    );
    phone.press_event('3').await;
    heard(&phone, "survey_thanks", intro, 10).await;
    phone.expect_bye(10).await;
    hotline.wait_idle().await;
    let call_id = only_call_id(&hotline).await;
    assert_eq!(
        survey_row(&hotline, &call_id).await,
        SurveyRow {
            survey_rating: Some("unsatisfied".into()),
            survey_key: Some("3".into()),
            ticket_rating: Some("unsatisfied".into()),
            disposition: Some("answered".into()),
        }
    );
    let row = hotline.call_row(&call_id).await;
    assert_eq!(row.ivr_path.last().map(String::as_str), Some("survey:3"));
}

#[tokio::test]
async fn a_caller_who_hangs_up_during_the_survey_leaves_no_rating() {
    let AgentCall {
        hotline,
        agent,
        mut phone,
        ringing,
    } = agent_call().await;
    let before = phone.rtp.audio().len();
    assert_eq!(agent.hang_up(&ringing).await, 200);
    heard(&phone, "survey_intro", before, 10).await;
    assert_eq!(phone.bye().await, 200);
    hotline.wait_idle().await;
    let call_id = only_call_id(&hotline).await;
    assert_eq!(
        survey_row(&hotline, &call_id).await,
        SurveyRow {
            survey_rating: None,
            survey_key: None,
            ticket_rating: None,
            disposition: Some("answered".into()),
        }
    );
}

#[tokio::test]
async fn waiting_callers_hear_their_place_move_forward() {
    // No agent: the callers wait in the general queue (it overflows only after 120 s).
    let hotline = Hotline::start(|flow| {
        policy(short_greeting(flow), "off").replace(
            "ring_timeout_secs = 15",
            "ring_timeout_secs = 15\nannounce_every_secs = 10",
        )
    })
    .await;
    let mut phones = Vec::new();
    for _ in 0..3 {
        let mut phone = hotline.phone().await;
        assert_eq!(phone.call().await, 200);
        heard(&phone, "label_leak", 0, 5).await;
        phones.push(phone);
    }
    // One after the other into the queue.
    for phone in &mut phones {
        phone.press_event('0').await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let first = heard(&phones[0], "queue_next", 0, 15).await;
    heard_in_a_row(&phones[0].rtp.audio(), first, &["queue_next"]);
    let two = heard(&phones[2], "queue_ahead", 0, 15).await;
    heard(&phones[2], "queue_ahead_unit", two, 5).await;
    heard_in_a_row(
        &phones[2].rtp.audio(),
        two,
        &["queue_ahead", "number_two_counted", "queue_ahead_unit"],
    );
    // The first caller gives up: later (an announcement may still say two, never more) the
    // third is told one caller is ahead.
    assert_eq!(phones[0].bye().await, 200);
    let third = &phones[2];
    let one = heard(third, "digit_1", two, 30).await;
    heard(third, "queue_ahead_unit", one, 5).await;
    let phrase = one - frame_count("queue_ahead") - 3;
    heard_in_a_row(
        &third.rtp.audio(),
        phrase,
        &["queue_ahead", "digit_1", "queue_ahead_unit"],
    );
    for phone in &mut phones[1..] {
        assert_eq!(phone.bye().await, 200);
    }
    hotline.wait_idle().await;
}

#[tokio::test]
async fn the_desk_hands_the_caller_to_the_survey_and_hears_the_rating() {
    let AgentCall {
        hotline,
        agent,
        mut phone,
        ..
    } = agent_call().await;
    let desk = hotline.stack.agent_desk();
    let mut ratings = desk.survey_results();
    let call_id = only_call_id(&hotline).await;
    // Only the agent on the call may hand it over, and only a call in progress.
    let refused = desk.transfer_to_survey(&call_id, "1002").await;
    assert_eq!(
        refused,
        Err(TransferToSurveyError::NotWithAgent {
            call: call_id.clone(),
            agent: "1002".into()
        })
    );
    let unknown = desk.transfer_to_survey("no-such-call", "1001").await;
    assert!(matches!(
        unknown,
        Err(TransferToSurveyError::UnknownCall(_))
    ));
    let before = phone.rtp.audio().len();
    desk.transfer_to_survey(&call_id, "1001").await.unwrap();
    // The agent's phone is hung up; the caller hears the survey and rates.
    assert_eq!(agent.expect_end(5).await, "BYE");
    heard(&phone, "survey_intro", before, 10).await;
    phone.press_event('1').await;
    let rated = tokio::time::timeout(Duration::from_secs(10), ratings.recv())
        .await
        .expect("a rating within 10 s")
        .unwrap();
    assert_eq!(rated.call_id, call_id);
    assert_eq!(rated.agent_id.as_deref(), Some("1001"));
    assert_eq!(rated.rating_number(), 1);
    assert_eq!(rated.key, '1');
    phone.expect_bye(10).await;
    hotline.wait_idle().await;
    assert_eq!(
        survey_row(&hotline, &call_id)
            .await
            .survey_rating
            .as_deref(),
        Some("satisfied")
    );
}

/// A sipp caller asking for RFC 4028 session timers (`sipp/session_timer.xml`) with
/// `Session-Expires: se`; the call stack has RTP inactivity off (sipp sends no RTP), so only
/// the session timer can end the call.
async fn session_timer_call(se: &str, allow: &str, mode: &str, expect: &str) -> Hotline {
    let hotline = Hotline::start(|flow| format!("inactivity_secs = 0\n{flow}")).await;
    let sipp = sipp::Sipp {
        vars: &[
            ("caller", CALLER),
            ("se", se),
            ("allow", allow),
            ("mode", mode),
            ("expect", expect),
        ],
        service: HOTLINE,
        timeout_secs: 120,
        ..sipp::Sipp::new("session_timer.xml", hotline.stack.sip_addr())
    };
    // sipp's exit status says whether the refresh (or the BYE) came, as it should have.
    sipp.run_ok().await;
    hotline.wait_idle().await;
    hotline
}

/// The refreshed call ended by sipp's BYE: its row closed as any call, not by the timer.
async fn refreshed_call_ended_as_usual(hotline: &Hotline) {
    let row = hotline.call_row(&only_call_id(hotline).await).await;
    assert!(row.answered && row.ended, "{row:?}");
    let disposition = row.disposition.unwrap();
    assert!(!disposition.starts_with("session"), "{disposition}");
}

#[tokio::test]
async fn we_refresh_a_sipp_session_with_update_when_it_allows_update() {
    // refresher=uas: we refresh at 45 s; sipp allows UPDATE, answers it, then hangs up.
    let hotline = session_timer_call(
        "90;refresher=uas",
        "INVITE, ACK, BYE, CANCEL, UPDATE",
        "refresh",
        "UPDATE",
    )
    .await;
    refreshed_call_ended_as_usual(&hotline).await;
}

#[tokio::test]
async fn we_refresh_a_sipp_session_with_a_reinvite_when_it_does_not_allow_update() {
    let hotline = session_timer_call(
        "90;refresher=uas",
        "INVITE, ACK, BYE, CANCEL",
        "refresh",
        "INVITE",
    )
    .await;
    refreshed_call_ended_as_usual(&hotline).await;
}

#[tokio::test]
async fn a_sipp_refresher_that_goes_silent_is_hung_up_and_its_row_says_session_expired() {
    // refresher=uac and no refresh: our BYE at 90 − min(32, 30) = 60 s; sipp answers it.
    let hotline = session_timer_call(
        "90;refresher=uac",
        "INVITE, ACK, BYE, CANCEL, UPDATE",
        "silent",
        "none",
    )
    .await;
    let row = hotline.call_row(&only_call_id(&hotline).await).await;
    assert!(row.answered && row.ended, "{row:?}");
    assert_eq!(
        row.disposition.as_deref(),
        Some("session_expired"),
        "{row:?}"
    );
}
