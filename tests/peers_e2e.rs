//! hotlined against real, independent peers on loopback: sipp callers with RTP and DTMF
//! (RFC 4733 and in-band), baresip as a softphone recording what it hears, and a barrage of
//! malformed datagrams. Missing sipp or baresip fails these tests (naming the Debian
//! package); nothing here skips.

#[path = "support/audio.rs"]
mod audio;
#[path = "support/baresip.rs"]
mod baresip;
#[path = "support/hotlined.rs"]
mod hotlined;
#[path = "support/sipp.rs"]
mod sipp;
#[allow(dead_code)] // Shared test helpers: this binary uses the database part only.
mod support;
#[path = "support/tools.rs"]
mod tools;

use hotline::api::pb;
use hotline::media::dtmf::InbandDetector;
use hotline::media::g711::G711Codec;
use hotlined::Hotlined;
use sipp::Sipp;
use sqlx::Connection;
use std::path::Path;
use std::time::Duration;

fn prompt(name: &str) -> Vec<i16> {
    audio::read_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sounds/zh-CN")
            .join(format!("{name}.wav")),
    )
}

/// What a G.711 µ-law link does to audio.
fn through_pcmu(pcm: &[i16]) -> Vec<i16> {
    let mut out = Vec::new();
    G711Codec::Pcmu.decode_into(&audio::pcmu(pcm), &mut out);
    out
}

#[test]
fn prompt_detector_finds_the_welcome_prompt_and_only_it() {
    let welcome = prompt("welcome");
    // 1.234 s of a quiet hum, the prompt through µ-law, then another prompt.
    let mut recording = audio::tone(150.0, 300.0, Duration::from_millis(1234));
    recording.extend(through_pcmu(&welcome));
    recording.extend(prompt("goodbye"));
    let heard = audio::find_prompt(&recording, &welcome);
    assert!(heard.score > 0.99, "{heard:?}");
    assert_eq!(heard.offset.as_millis(), 1234, "{heard:?}");
    assert!(heard.matched >= Duration::from_secs(4), "{heard:?}");

    let other = [prompt("goodbye"), prompt("recording_notice")].concat();
    let not_heard = audio::find_prompt(&other, &welcome);
    assert!(not_heard.score < 0.5, "{not_heard:?}");
    assert!(not_heard.matched < Duration::from_secs(2), "{not_heard:?}");
    let silence = vec![0i16; 10 * audio::RATE];
    assert_eq!(audio::find_prompt(&silence, &welcome).score, 0.0);
    // A recording shorter than one piece of the prompt: nothing heard, no panic.
    let short = through_pcmu(&welcome[..audio::RATE / 2]);
    assert_eq!(audio::find_prompt(&short, &welcome).score, 0.0);
}

#[test]
fn inband_key_audio_survives_pcmu_and_our_detector_reads_it() {
    let keys = audio::inband_keys("2*#9", Duration::from_millis(500), Duration::from_secs(3));
    assert_eq!(keys.len(), 3 * audio::RATE);
    let heard: String = InbandDetector::default()
        .on_audio(&through_pcmu(&keys), Duration::ZERO)
        .iter()
        .map(|d| d.digit)
        .collect();
    assert_eq!(heard, "2*#9");
    assert!(audio::level_dbfs(&keys) > -30.0);
}

/// The built-in flow without the recording notice (the menu follows the greeting), and with
/// the on-call overflow pointed at a loopback port nobody answers.
fn no_notice(flow: String) -> String {
    flow.replace("policy = \"announce\"", "policy = \"off\"")
        .replace("sip:oncall@127.0.0.1:5070", "sip:oncall@127.0.0.1:9")
}

/// [`no_notice`] with a one-syllable greeting not followed by the leak key offer, for tests
/// that are about the menu.
fn quick_menu(flow: String) -> String {
    no_notice(flow)
        .replace("greeting = [\"welcome\"]", "greeting = [\"digit_1\"]")
        .replace("[ivr.leak]\n", "[ivr.leak]\nspeak_after_greeting = false\n")
}

/// [`quick_menu`] where key 9 says goodbye and hangs up.
fn nine_hangs_up(flow: String) -> String {
    quick_menu(flow)
        .replace(
            "{ digit = \"0\", next = \"person\", label = \"label_person\" },",
            "{ digit = \"0\", next = \"person\", label = \"label_person\" },\n  \
             { digit = \"9\", next = \"bye\", label = \"goodbye\" },",
        )
        .replace(
            "\n[acd]\n",
            "\n[ivr.flows.main.nodes.bye]\nkind = \"hangup\"\nprompts = [\"goodbye\"]\n\n[acd]\n",
        )
}

/// 8 s of the caller speaking (a steady 1 kHz tone: no DTMF pair), as raw µ-law.
fn caller_voice() -> Vec<u8> {
    audio::pcmu(&audio::tone(1000.0, 3000.0, Duration::from_secs(8)))
}

/// What the kernel holds for the loopback UDP socket on `port`: (bytes queued, datagrams
/// dropped because the queue was full). sipp never reads its RTP socket, so everything the
/// daemon sends it piles up here.
fn udp_backlog(port: u16) -> (u64, u64) {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let local = format!("0100007F:{port:04X}");
    let line = table
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some(local.as_str()))
        .unwrap_or_else(|| panic!("no UDP socket on 127.0.0.1:{port}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let queued = fields[4].split(':').nth(1).unwrap();
    (
        u64::from_str_radix(queued, 16).unwrap(),
        fields[fields.len() - 1].parse().unwrap(),
    )
}

/// Holds the daemon's answers back: it rings at once but answers only after its caller
/// look-up, which gives up after 400 ms; a locked tickets table makes it take that long.
async fn hold_answers_back(daemon: &Hotlined) -> sqlx::PgConnection {
    let mut lock = sqlx::PgConnection::connect_with(&daemon.db).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    lock
}

async fn release(mut lock: sqlx::PgConnection) {
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
}

fn category(ticket: &pb::Ticket) -> pb::Category {
    pb::Category::try_from(ticket.category).unwrap()
}

#[tokio::test]
async fn sipp_rfc4733_leak_key_files_a_leak_ticket_with_rtp_both_ways() {
    let daemon = Hotlined::start(no_notice, "").await;
    let voice = caller_voice();
    let sipp = Sipp {
        vars: &[
            ("caller", "13800000001"),
            ("dtmf", "rfc4733"),
            ("digits", "1"),
            ("wait_ms", "1500"),
            ("hold_ms", "2500"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &voice)],
        ..Sipp::new("uac_media.xml", daemon.sip)
    };
    let media_port = sipp.media_port;
    let ((), (early, late)) = tokio::join!(sipp.run_ok(), async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let early = udp_backlog(media_port);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (early, udp_backlog(media_port))
    });
    // The daemon's RTP reached sipp, and kept coming.
    assert!(early.0 > 0, "no RTP from the daemon after 1.5 s: {early:?}");
    assert!(
        late.0 > early.0 || late.1 > 0,
        "the daemon's RTP stopped: {early:?} then {late:?}"
    );
    // sipp's key (RFC 4733 on its own SSRC, amid sipp's filler packets) reached the IVR.
    let ticket = daemon.only_ticket("13800000001").await;
    assert_eq!(category(&ticket), pb::Category::Leak, "{ticket:?}");
    assert_eq!(ticket.status, pb::Status::Draft as i32);
    assert_eq!(ticket.priority, 9);
    // The daemon logs at debug here: that a key came, never which (keyed entries are
    // account numbers).
    let log = daemon.log();
    assert!(log.contains("digit received"), "{log}");
    assert!(!log.contains("digit=") && !log.contains("digit: "), "{log}");
    // The service report's instants: the leak digit, then the leak queue, within the call.
    let (arrived, leak, queued) = leak_instants(&daemon).await;
    assert!(
        arrived <= leak && leak <= queued,
        "{arrived} {leak} {queued}"
    );
}

type LeakInstants = (
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
);

/// The one call's arrival, leak digit and queue entry, once the journal wrote them (10 s).
async fn leak_instants(daemon: &Hotlined) -> LeakInstants {
    let mut db = sqlx::PgConnection::connect_with(&daemon.db).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row: Option<LeakInstants> = sqlx::query_as(
            "SELECT arrived_at, leak_at, queued_at FROM calls \
             WHERE leak_at IS NOT NULL AND queued_at IS NOT NULL",
        )
        .fetch_optional(&mut db)
        .await
        .unwrap();
        if let Some(row) = row {
            return row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leak_at and queued_at on the call row after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sipp_inband_key_in_the_caller_audio_reaches_the_menu() {
    let daemon = Hotlined::start(quick_menu, "").await;
    // The greeting is 0.73 s; press 2 while the menu plays.
    let keys = audio::pcmu(&audio::inband_keys(
        "2",
        Duration::from_millis(2000),
        Duration::from_secs(4),
    ));
    Sipp {
        vars: &[
            ("caller", "13800000002"),
            ("dtmf", "inband"),
            ("digits", ""),
            ("wait_ms", "0"),
            ("hold_ms", "3500"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &keys)],
        ..Sipp::new("uac_media.xml", daemon.sip)
    }
    .run_ok()
    .await;
    let ticket = daemon.only_ticket("13800000002").await;
    assert_eq!(category(&ticket), pb::Category::Repair, "{ticket:?}");
}

#[tokio::test]
async fn daemon_says_goodbye_and_sends_bye_to_sipp() {
    let daemon = Hotlined::start(nine_hangs_up, "").await;
    let voice = caller_voice();
    // sipp presses 9 in the menu, then waits for the daemon's BYE and answers it: its exit
    // status says the BYE came.
    Sipp {
        vars: &[
            ("caller", "13800000003"),
            ("dtmf", "rfc4733"),
            ("digits", "9"),
            ("wait_ms", "1500"),
            ("hold_ms", "0"),
            ("ends", "daemon"),
        ],
        files: &[("caller.ulaw", &voice)],
        ..Sipp::new("uac_media.xml", daemon.sip)
    }
    .run_ok()
    .await;
    let ticket = daemon.only_ticket("13800000003").await;
    assert_eq!(category(&ticket), pb::Category::Consultation, "{ticket:?}");
}

#[tokio::test]
async fn sipp_cancel_before_the_answer_leaves_no_ticket() {
    let daemon = Hotlined::start(no_notice, "").await;
    let lock = hold_answers_back(&daemon).await;
    Sipp {
        calls: 3,
        ..Sipp::new("cancel.xml", daemon.sip)
    }
    .run_ok()
    .await;
    release(lock).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        daemon.tickets("").await,
        vec![],
        "a cancelled call files nothing"
    );
}

#[tokio::test]
async fn retransmitted_invite_is_one_call_and_one_ticket() {
    let daemon = Hotlined::start(no_notice, "").await;
    let lock = hold_answers_back(&daemon).await;
    let sipp = Sipp {
        vars: &[("caller", "13800000004")],
        ..Sipp::new("invite_retransmitted.xml", daemon.sip)
    };
    // The answer waits for the look-up (and so for the lock) for at most 400 ms.
    let ((), ()) = tokio::join!(sipp.run_ok(), async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        release(lock).await;
    });
    daemon.only_ticket("13800000004").await;
    // Nothing else turns up later either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(daemon.tickets("").await.len(), 1);
    let mut conn = sqlx::PgConnection::connect_with(&daemon.db).await.unwrap();
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(calls, 1, "one call row for the two INVITE copies");
}

#[tokio::test]
async fn sipp_options_and_unsupported_codec_488() {
    let daemon = Hotlined::start(no_notice, "").await;
    Sipp {
        calls: 3,
        ..Sipp::new("options.xml", daemon.sip)
    }
    .run_ok()
    .await;
    Sipp {
        calls: 3,
        ..Sipp::new("invite_488.xml", daemon.sip)
    }
    .run_ok()
    .await;
    assert_eq!(
        daemon.tickets("").await,
        vec![],
        "refused calls file nothing"
    );
}

#[tokio::test]
async fn baresip_hears_the_whole_welcome_prompt_and_its_key_files_a_ticket() {
    let daemon = Hotlined::start(no_notice, "").await;
    let voice = audio::tone(440.0, 2000.0, Duration::from_secs(30));
    let mut phone = baresip::Baresip::start("13800000005", &voice).await;
    // The welcome prompt (4.8 s) and the leak key offer (3.7 s), then the menu: press 3
    // (billing) in the menu.
    let report = phone
        .call(
            &format!("sip:4008@{}", daemon.sip),
            "3",
            Duration::from_millis(10500),
            Duration::from_millis(1500),
        )
        .await;
    assert!(!report.closed_by_peer, "the daemon hung up: {report:?}");
    assert!(
        report.events.iter().any(|e| e == "CALL_RTPESTAB"),
        "baresip got no RTP: {report:?}"
    );
    let heard = phone.quit().await;
    let welcome = prompt("welcome");
    let found = audio::find_prompt(&heard, &welcome);
    eprintln!(
        "baresip heard {:.1} s; welcome: {found:?}",
        heard.len() as f64 / audio::RATE as f64
    );
    // Whole seconds of the prompt: the detector compares one-second pieces.
    let whole_seconds = Duration::from_secs((welcome.len() / audio::RATE) as u64);
    assert!(
        found.score > 0.95 && found.matched >= whole_seconds,
        "the welcome prompt is not all there: {found:?}"
    );
    assert!(found.offset < Duration::from_secs(1), "{found:?}");
    let start = found.offset.as_millis() as usize * audio::RATE / 1000;
    let level = audio::level_dbfs(&heard[start..start + welcome.len()]);
    assert!(level > -30.0, "the prompt was heard at {level:.1} dBFS");
    // Right after it, the leak key as configured: "燃气泄漏，请按一".
    let end = start + welcome.len();
    assert_eq!(spoken_key(&heard[end..], "label_leak"), Some('1'));
    let ticket = daemon.only_ticket("13800000005").await;
    assert_eq!(category(&ticket), pb::Category::Query, "{ticket:?}");
}

/// The key that `heard` offers after `phrase` ("phrase, 请按, digit"), if the offer is there:
/// the phrase and "请按" are found as one prompt, then each digit's prompt is compared with
/// the audio right after them (digits are shorter than the detector's one-second pieces).
fn spoken_key(heard: &[i16], phrase: &str) -> Option<char> {
    let lead = [prompt(phrase), prompt("press_key")].concat();
    let found = audio::find_prompt(heard, &lead);
    if found.score < 0.95 {
        eprintln!("{phrase}, 请按: not heard ({found:?})");
        return None;
    }
    let digit_at = found.offset.as_millis() as usize * audio::RATE / 1000 + lead.len();
    // Prompts are played whole 20 ms frames apart: allow a frame and a little either way.
    let slack = audio::RATE / 40;
    let scores: Vec<(char, f64)> = "0123456789"
        .chars()
        .map(|key| {
            let digit = prompt(&format!("digit_{key}"));
            (key, audio::short_match(heard, &digit, digit_at, slack))
        })
        .collect();
    eprintln!("{phrase}, 请按, then: {scores:?}");
    let (key, score) = scores.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    (score > 0.9).then_some(key)
}

#[tokio::test]
async fn baresip_presses_the_consent_key_the_opt_in_notice_names_and_is_recorded_not_as_a_leak() {
    // opt_in, with time to answer; the leak key stays 1 and the opt-in key is 2.
    let daemon = Hotlined::start(
        |flow| {
            quick_menu(flow).replace(
                "policy = \"off\"",
                "policy = \"opt_in\"\nresponse_window_secs = 15",
            )
        },
        "",
    )
    .await;
    let voice = audio::tone(440.0, 2000.0, Duration::from_secs(40));
    let mut phone = baresip::Baresip::start("13800000006", &voice).await;
    // Greeting (0.7 s), the recording notice (5.8 s) and the opt-in offer (4.1 s): the key
    // goes in after the whole notice was heard, inside the response window.
    let report = phone
        .call(
            &format!("sip:4008@{}", daemon.sip),
            "2",
            Duration::from_millis(12500),
            Duration::from_millis(2000),
        )
        .await;
    assert!(!report.closed_by_peer, "the daemon hung up: {report:?}");
    let heard = phone.quit().await;
    assert_eq!(
        spoken_key(&heard, "recording_opt_in"),
        Some('2'),
        "the notice must name the key that records"
    );
    let ticket = daemon.only_ticket("13800000006").await;
    assert_ne!(category(&ticket), pb::Category::Leak, "{ticket:?}");
    let mut conn = sqlx::PgConnection::connect_with(&daemon.db).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let consent = loop {
        let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT recording_consent, recording_consent_via, recording_file FROM calls \
             WHERE ended_at IS NOT NULL",
        )
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        match row {
            Some(row) => break row,
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            None => panic!("no ended call row\n{}", daemon.log()),
        }
    };
    assert_eq!(consent.0.as_deref(), Some("granted"), "{consent:?}");
    assert_eq!(consent.1.as_deref(), Some("dtmf"), "{consent:?}");
    let file = consent.2.expect("the call was recorded");
    assert!(Path::new(&file).exists(), "{file}");
}

/// A good INVITE from `from` (our barrage socket, so answers come back to it).
fn good_invite(from: std::net::SocketAddr, to: std::net::SocketAddr, n: usize) -> String {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        port = from.port()
    );
    format!(
        "INVITE sip:4008@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bKbarrage{n}\r\n\
         From: <sip:13800000099@127.0.0.1>;tag=b{n}\r\n\
         To: <sip:4008@{to}>\r\n\
         Call-ID: barrage-{n}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:barrage@{from}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        len = sdp.len()
    )
}

/// Datagrams a confused or hostile peer might send: cut, mangled and oversized messages,
/// bad SDP, strangers' responses and requests for dialogs that do not exist, and noise.
/// Every address in them is ours, on loopback.
fn barrage(from: std::net::SocketAddr, to: std::net::SocketAddr) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let invite = good_invite(from, to, 0);
    // Cut anywhere.
    for cut in (1..invite.len()).step_by(17) {
        out.push(invite.as_bytes()[..cut].to_vec());
    }
    // One header line dropped at a time, then each mangled.
    let lines: Vec<&str> = invite.split("\r\n").collect();
    for skip in 1..10 {
        let mut kept = lines.clone();
        kept.remove(skip);
        out.push(kept.join("\r\n").into_bytes());
    }
    let mangle = [
        ("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"),
        ("INVITE sip:4008@", "INVITE  sip:4008@"),
        ("INVITE sip:", "INV\0ITE sip:"),
        ("CSeq: 1 INVITE", "CSeq: 99999999999999999999 INVITE"),
        ("CSeq: 1 INVITE", "CSeq: 1 BYE"),
        ("Content-Length: ", "Content-Length: -"),
        ("Content-Length: ", "Content-Length: 9"),
        ("Content-Type: application/sdp", "Content-Type: text/plain"),
        ("Max-Forwards: 70", "Max-Forwards: 0"),
        ("From: <", "From: \u{feff}\u{202e}<"),
        ("To: <sip:4008@", "To: <sip:\u{ff}\u{fe}@"),
        ("m=audio ", "m=audio 99999"),
        ("m=audio ", "m=video "),
        ("c=IN IP4 127.0.0.1", "c=IN IP4 999.1.1.1"),
        ("c=IN IP4 127.0.0.1\r\n", ""),
        ("RTP/AVP 0 101", &format!("RTP/AVP{}", " 96".repeat(3000))),
        (
            "a=rtpmap:101 telephone-event/8000",
            "a=rtpmap:101 telephone-event/0",
        ),
        ("branch=z9hG4bKbarrage0", "branch="),
        (
            "Call-ID: barrage-0",
            &format!("Call-ID: {}", "x".repeat(30_000)),
        ),
    ];
    for (n, (from_text, to_text)) in mangle.iter().enumerate() {
        let changed = invite
            .replace("barrage-0", &format!("barrage-m{n}"))
            .replace("barrage0", &format!("barrage{}", n + 1000))
            .replacen(from_text, to_text, 1);
        out.push(changed.into_bytes());
    }
    out.push(
        invite
            .replace("Max-Forwards: 70\r\n", &"X-Pad: 1\r\n".repeat(500))
            .into_bytes(),
    );
    out.push(invite.replace("\r\n", "\n").into_bytes());
    out.push(invite.replace("\r\n", "\r\n ").into_bytes());
    // Responses nobody asked for, requests for dialogs that do not exist.
    for first in [
        "SIP/2.0 200 OK",
        "SIP/2.0 99999 Odd",
        "SIP/2.0 180",
        "BYE sip:4008@127.0.0.1 SIP/2.0",
        "ACK sip:4008@127.0.0.1 SIP/2.0",
        "CANCEL sip:4008@127.0.0.1 SIP/2.0",
        "INFO sip:4008@127.0.0.1 SIP/2.0",
    ] {
        let rest = invite.split_once("\r\n").unwrap().1;
        out.push(format!("{first}\r\n{rest}").into_bytes());
    }
    // Noise of every size, up to the largest UDP datagram.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1, 2, 7, 100, 500, 1400, 4000, 65_000] {
        out.push(
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect(),
        );
    }
    out
}

#[tokio::test]
async fn daemon_answers_a_good_call_after_a_barrage_of_malformed_datagrams() {
    // No rate limit: every datagram reaches the parser.
    let daemon = Hotlined::start(
        no_notice,
        "rate_limit_per_second = 100000.0\nrate_limit_burst = 100000.0",
    )
    .await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let datagrams = barrage(local, daemon.sip);
    for (n, datagram) in datagrams.iter().enumerate() {
        socket.send_to(datagram, daemon.sip).await.unwrap();
        // Paced, so the daemon's socket buffer never overflows.
        if n % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // It answered (400s and the like), so the datagrams reached it.
    let mut answers = 0;
    let mut buffer = vec![0u8; 65_536];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buffer)).await
    {
        answers += usize::from(buffer[..n].starts_with(b"SIP/2.0 "));
    }
    eprintln!("{answers} answers to {} datagrams", datagrams.len());
    assert!(
        answers > 10,
        "only {answers} answers to {} datagrams",
        datagrams.len()
    );
    let mut daemon = daemon;
    assert!(daemon.running(), "hotlined died:\n{}", daemon.log());

    let voice = caller_voice();
    Sipp {
        vars: &[
            ("caller", "13800000006"),
            ("dtmf", "rfc4733"),
            ("digits", "1"),
            ("wait_ms", "1000"),
            ("hold_ms", "2000"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &voice)],
        ..Sipp::new("uac_media.xml", daemon.sip)
    }
    .run_ok()
    .await;
    let ticket = daemon.only_ticket("13800000006").await;
    assert_eq!(category(&ticket), pb::Category::Leak, "{ticket:?}");
    assert!(daemon.running(), "hotlined died:\n{}", daemon.log());
}
