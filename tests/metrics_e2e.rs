//! The metrics endpoint of the real `hotlined` (`[metrics] listen`), scraped over HTTP while
//! sipp calls: the call in progress, RTP and the INVITE counted during the call; after a
//! leak-key call the IVR node, the leak → offer latency and the disposition. The Grafana
//! dashboard in `deploy/grafana/` uses only names a real scrape has. Without `[metrics]` no
//! port is opened; a bad `listen` is a configuration error naming the key. Every wait polls
//! the scrape (or the process) with a deadline.

#[allow(dead_code)] // The daemon helpers: this binary reads no tickets or tables itself.
#[path = "support/hotlined.rs"]
mod hotlined;
#[path = "support/sipp.rs"]
mod sipp;
#[allow(dead_code)] // Shared test helpers: this binary uses the database part only.
mod support;
#[path = "support/tools.rs"]
mod tools;

use hotline::api::pb;
use hotlined::{ADMIN_TOKEN, Hotlined};
use sipp::Sipp;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A loopback TCP port free when we looked.
fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The samples of one scrape: `name{labels}` → value, and the metric families' types.
struct Scrape {
    samples: HashMap<String, f64>,
    /// Family name → type (`counter`, `gauge`, `histogram`).
    types: HashMap<String, String>,
}

impl Scrape {
    fn value(&self, sample: &str) -> f64 {
        self.samples.get(sample).copied().unwrap_or(0.0)
    }

    /// The sum over every sample of `name` (any labels).
    fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .map(|(_, v)| v)
            .sum()
    }

    /// Every sample name a query may use: gauges as they are, counters with `_total`,
    /// histograms with `_bucket`, `_sum` and `_count`.
    fn names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (family, kind) in &self.types {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        }
        names
    }
}

/// One HTTP/1.1 request to the endpoint: (status line, headers and body as text). What the
/// server sent before it closed counts, also when it reset the connection (a refused
/// request it did not read to the end).
async fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("metrics endpoint {addr}: {e}"));
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            response.extend_from_slice(&chunk[..n]);
        }
    });
    read.await
        .expect("the endpoint answers and closes within 10 s");
    let text = String::from_utf8(response).unwrap();
    let status = text.lines().next().unwrap_or_default().to_owned();
    (status, text)
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, text) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: hotline\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header and a body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "a whole exposition: {body}");
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    for line in body.lines() {
        if let Some(kind) = line.strip_prefix("# TYPE ") {
            let (name, kind) = kind.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') {
            let (sample, value) = line.rsplit_once(' ').unwrap();
            samples.insert(sample.to_owned(), value.parse().unwrap());
        }
    }
    Scrape { samples, types }
}

/// Scrapes until `ready` holds, for up to `secs`; returns that scrape.
async fn scrape_until(
    daemon: &Hotlined,
    addr: SocketAddr,
    secs: u64,
    what: &str,
    ready: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let scrape = scrape(addr).await;
        if ready(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {secs} s; last scrape: {:#?}\n{}",
            scrape.samples,
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The built-in flow without the recording notice, agent 1001 on a phone nobody answers
/// (a closed loopback port), and the metrics section.
fn flow_with_metrics(metrics: u16, agent_port: u16) -> impl Fn(String) -> String {
    move |flow| {
        let flow = flow
            .replace("policy = \"announce\"", "policy = \"off\"")
            .replace("sip:oncall@127.0.0.1:5070", "sip:oncall@127.0.0.1:9")
            .replace(
                "[acd.agents]",
                &format!(
                    "[acd.agents.1001]\nuri = \"sip:1001@127.0.0.1:{agent_port}\"\n\
                     queues = [\"emergency\", \"general\"]"
                ),
            );
        format!("{flow}\n\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\nticket_query_secs = 1\n")
    }
}

async fn agent_ready(daemon: &Hotlined) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", daemon.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::SetAgentStateRequest {
        agent_id: "1001".into(),
        state: pb::AgentState::Available.into(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    pb::admin_client::AdminClient::new(channel)
        .set_agent_state(request)
        .await
        .unwrap_or_else(|status| panic!("SetAgentState: {status}\n{}", daemon.log()));
}

/// Every `hotline_…` name in the dashboard's queries.
fn dashboard_metric_names() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/hotline.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("an expr").to_owned());
        }
    }
    assert!(exprs.len() >= 10, "a dashboard with its queries: {exprs:?}");
    let mut names = BTreeSet::new();
    for expr in exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("hotline_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

#[tokio::test]
async fn a_leak_call_shows_in_the_scrape_during_and_after_and_the_dashboard_matches() {
    let metrics_port = free_tcp_port();
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    // A tight rate limit, so a burst of OPTIONS is refused (in-dialog requests are exempt).
    let daemon = Hotlined::start(
        flow_with_metrics(metrics_port, free_tcp_port()),
        "rate_limit_per_second = 1.0\nrate_limit_burst = 5.0",
    )
    .await;
    let idle = scrape(metrics).await;
    assert_eq!(idle.value("hotline_calls_in_progress"), 0.0);
    agent_ready(&daemon).await;
    scrape_until(&daemon, metrics, 10, "agent ready", |s| {
        s.value("hotline_agents{state=\"ready\"}") == 1.0
    })
    .await;

    // The caller presses the leak key 1.5 s after the answer and stays 10 s more (media
    // sessions report their counters every 5 s).
    let voice = hotline::media::g711::G711Codec::Pcmu;
    let mut tone = Vec::new();
    voice.encode_into(&vec![3000i16; 8 * 8000], &mut tone);
    let sipp = Sipp {
        vars: &[
            ("caller", "13800000077"),
            ("dtmf", "rfc4733"),
            ("digits", "1"),
            ("wait_ms", "1500"),
            ("hold_ms", "10000"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &tone)],
        ..Sipp::new("uac_media.xml", daemon.sip)
    };
    let ((), during) = tokio::join!(
        sipp.run_ok(),
        scrape_until(
            &daemon,
            metrics,
            20,
            "call in progress with RTP both ways",
            |s| {
                s.value("hotline_calls_in_progress") == 1.0
                    && s.value("hotline_rtp_packets_total{direction=\"out\"}") > 0.0
                    && s.value("hotline_rtp_packets_total{direction=\"in\"}") > 0.0
            }
        )
    );
    assert!(
        during.value("hotline_sip_requests_total{method=\"INVITE\"}") >= 1.0,
        "{:#?}",
        during.samples
    );
    assert!(during.value("hotline_sip_responses_total{method=\"INVITE\",class=\"2xx\"}") >= 1.0);
    assert_eq!(during.value("hotline_call_setup_seconds_count"), 1.0);
    assert!(during.value("hotline_rtp_send_deviation_seconds_count") > 0.0);
    assert_eq!(during.value("hotline_live_objects{kind=\"calls\"}"), 1.0);
    assert!(during.value("hotline_live_objects{kind=\"media_sessions\"}") >= 1.0);
    assert!(during.value("hotline_live_objects{kind=\"rtp_port_pairs\"}") >= 1.0);
    assert!(during.value("hotline_live_objects{kind=\"sip_dialogs\"}") >= 1.0);

    let after = scrape_until(&daemon, metrics, 15, "the call ended and counted", |s| {
        s.value("hotline_calls_in_progress") == 0.0
            && s.sum("hotline_calls_ended_total") == 1.0
            && s.value("hotline_ivr_node_entries_total{node=\"leak\"}") == 1.0
            && s.value("hotline_leak_offer_seconds_count") == 1.0
            && s.value("hotline_tickets{status=\"draft\"}") == 1.0
            // Nothing held for the call any more.
            && s.value("hotline_live_objects{kind=\"calls\"}") == 0.0
            && s.value("hotline_live_objects{kind=\"media_sessions\"}") == 0.0
            && s.value("hotline_live_objects{kind=\"rtp_port_pairs\"}") == 0.0
    })
    .await;
    // Hung up while waiting for the agent.
    assert_eq!(
        after.value("hotline_calls_ended_total{disposition=\"abandoned_in_queue\"}"),
        1.0,
        "{:#?}",
        after.samples
    );
    assert!(after.value("hotline_leak_offer_seconds_sum") < 5.0);
    assert_eq!(after.value("hotline_database_up"), 1.0);
    assert!(after.value("hotline_sip_requests_total{method=\"BYE\"}") >= 1.0);
    // No call ids or phone numbers as labels.
    assert!(
        after.samples.keys().all(|k| !k.contains("13800000077")),
        "{:#?}",
        after.samples
    );

    // A burst of 20 OPTIONS: counted by method, most refused by the rate limit.
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = sender.local_addr().unwrap();
    for n in 0..20 {
        let options = format!(
            "OPTIONS sip:4008@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKm{n}\r\n\
             From: <sip:probe@{local}>;tag=m{n}\r\nTo: <sip:4008@{sip}>\r\n\
             Call-ID: metrics-{n}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            sip = daemon.sip
        );
        sender.send_to(options.as_bytes(), daemon.sip).unwrap();
    }
    let after = scrape_until(&daemon, metrics, 10, "the OPTIONS burst counted", |s| {
        s.value("hotline_sip_requests_total{method=\"OPTIONS\"}") == 20.0
    })
    .await;
    let refused = after.value("hotline_sip_refused_total{reason=\"rate_limit\"}");
    assert!((10.0..=20.0).contains(&refused), "{refused} refused");
    assert_eq!(
        after.value("hotline_sip_refused_total{reason=\"acl\"}"),
        0.0
    );

    // Every name the dashboard queries is in a real scrape.
    let exported = after.names();
    let missing: Vec<String> = dashboard_metric_names()
        .into_iter()
        .filter(|name| !exported.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses names the daemon does not export: {missing:?}\nexported: {exported:?}"
    );

    // Only /metrics is served.
    let (status, _) = http(
        metrics,
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let post =
        "POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (status, _) = http(metrics, post).await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    // A head past the size limit is refused; one that never ends is cut off.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let (status, _) = http(metrics, &huge).await;
    assert!(!status.contains("200"), "{status}");
    let started = Instant::now();
    let (status, _) = http(metrics, "GET /metrics HTTP/1.1\r\nHost: h\r\n").await;
    assert!(!status.contains("200"), "{status}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "cut off at the header timeout"
    );
}

/// The TCP ports the process `pid` listens on (its sockets in LISTEN state).
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A: LISTEN), …, inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                let port = fields[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

#[tokio::test]
async fn without_a_metrics_section_no_port_is_opened() {
    let daemon = Hotlined::start(|flow| flow, "").await;
    let pid = daemon.pid().expect("running");
    let ports = listening_ports(pid);
    let expected: BTreeSet<u16> = [daemon.grpc.port(), daemon.sip.port()].into();
    assert_eq!(
        ports,
        expected,
        "only gRPC and SIP listen\n{}",
        daemon.log()
    );
    assert!(!daemon.log().contains("metrics serving"));
}

/// Runs `hotlined OPTION FILE` to its end: its exit code and all it printed.
async fn hotlined_with(option: &str, file: &Path) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .arg(option)
        .arg(file)
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), printed)
}

#[tokio::test]
async fn a_bad_metrics_listen_is_a_configuration_error_naming_the_key() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("hotline.toml");
    std::fs::write(&path, "[metrics]\nlisten = \"localhost:9464\"\n").unwrap();
    let (code, printed) = hotlined_with("--check-config", &path).await;
    assert_eq!(code, Some(2), "{printed}");
    let expected = format!("{}:2:", path.display());
    assert!(
        printed.contains(&expected) && printed.contains("metrics.listen"),
        "{printed}"
    );
    assert!(printed.contains("not a socket address"), "{printed}");
    // The daemon refuses to start on it, naming the key too.
    let (code, printed) = hotlined_with("--config", &path).await;
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("metrics.listen"), "{printed}");
}
