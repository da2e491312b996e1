//! Interop with a real SIP peer: sipp (Debian sip-tester) scenarios in `tests/sipp/` run
//! against the tokio transport with a small application that answers calls to 4008 and
//! only rings on `ring`. sipp exits 0 when every call of the scenario succeeded.

use hotline::sip::config::SipConfig;
use hotline::sip::endpoint::{Command, Event};
use hotline::sip::transport::{Request, SipService, TransportCounts, spawn};
use std::path::Path;
use std::time::Duration;

fn sipp_installed() -> bool {
    Path::new("/usr/bin/sipp").exists()
}

async fn service() -> SipService {
    let config = SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        t1_ms: 50,
        t2_ms: 400,
        t4_ms: 500,
        ..SipConfig::default()
    };
    let mut service = spawn(&config).await.unwrap();
    let mut events = std::mem::replace(
        &mut service.events,
        tokio::sync::mpsc::unbounded_channel().1,
    );
    let requests = service.requests.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::IncomingCall { call, dialled, .. } = event {
                let command = if dialled.as_deref() == Some("ring") {
                    Command::Ring { call }
                } else {
                    Command::Answer {
                        call,
                        local_rtp: "127.0.0.1:30000".parse().unwrap(),
                    }
                };
                if requests.send(Request::Command(command)).await.is_err() {
                    break;
                }
            }
        }
    });
    service
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn run_sipp(
    service: &SipService,
    scenario: &str,
    dialled: &str,
    calls: u32,
    transport: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let port = free_udp_port().to_string();
    let output = tokio::process::Command::new("/usr/bin/sipp")
        .current_dir(dir.path())
        .arg("-sf")
        .arg(&scenario)
        .arg(service.local_addr.to_string())
        .args(["-s", dialled, "-t", transport])
        .args(["-i", "127.0.0.1", "-p", &port, "-mi", "127.0.0.1"])
        .args(["-nostdin", "-timeout", "30", "-timeout_error", "-trace_err"])
        .args(["-m", &calls.to_string(), "-r", "10"])
        .output()
        .await
        .expect("sipp runs");
    let errors: String = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_eq!(
        output.status.code(),
        Some(0),
        "sipp {scenario:?} failed: {errors}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every transaction, call and connection is gone once the timers have run.
    let mut counts = service.counts.clone();
    tokio::time::timeout(
        Duration::from_secs(15),
        counts.wait_for(|c| *c == TransportCounts::default()),
    )
    .await
    .expect("counts back to zero after the sipp run")
    .unwrap();
}

#[tokio::test]
async fn sipp_options() {
    if !sipp_installed() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let service = service().await;
    run_sipp(&service, "options.xml", "4008", 5, "u1").await;
}

#[tokio::test]
async fn sipp_invite_without_common_codec_gets_488() {
    if !sipp_installed() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let service = service().await;
    run_sipp(&service, "invite_488.xml", "4008", 3, "u1").await;
}

#[tokio::test]
async fn sipp_cancel_before_answer() {
    if !sipp_installed() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let service = service().await;
    run_sipp(&service, "cancel.xml", "ring", 3, "u1").await;
}

#[tokio::test]
async fn sipp_whole_call_udp_and_tcp() {
    if !sipp_installed() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let service = service().await;
    run_sipp(&service, "call.xml", "4008", 5, "u1").await;
    run_sipp(&service, "call.xml", "4008", 3, "t1").await;
}
