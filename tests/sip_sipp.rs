//! Interop with a real SIP peer: sipp (Debian sip-tester) scenarios in `tests/sipp/` run
//! against the tokio transport with a small application that answers calls to 4008 and
//! only rings on `ring`. sipp exits 0 when every call of the scenario succeeded. Without sipp
//! installed these tests fail (naming the Debian package); they never skip.

#[path = "support/sipp.rs"]
mod sipp;
#[path = "support/tools.rs"]
mod tools;

use hotline::sip::config::SipConfig;
use hotline::sip::endpoint::{Command, Event};
use hotline::sip::transport::{Request, SipService, TransportCounts, spawn};
use sipp::Sipp;
use std::time::Duration;

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

/// Runs `sipp`, then waits until every transaction, call and connection is gone.
async fn run_and_settle(service: &SipService, sipp: Sipp<'_>) {
    sipp.run_ok().await;
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
    let service = service().await;
    let sipp = Sipp {
        calls: 5,
        ..Sipp::new("options.xml", service.local_addr)
    };
    run_and_settle(&service, sipp).await;
}

#[tokio::test]
async fn sipp_invite_without_common_codec_gets_488() {
    let service = service().await;
    let sipp = Sipp {
        calls: 3,
        ..Sipp::new("invite_488.xml", service.local_addr)
    };
    run_and_settle(&service, sipp).await;
}

#[tokio::test]
async fn sipp_cancel_before_answer() {
    let service = service().await;
    let sipp = Sipp {
        service: "ring",
        calls: 3,
        ..Sipp::new("cancel.xml", service.local_addr)
    };
    run_and_settle(&service, sipp).await;
}

#[tokio::test]
async fn sipp_whole_call_udp_and_tcp() {
    let service = service().await;
    let udp = Sipp {
        calls: 5,
        ..Sipp::new("call.xml", service.local_addr)
    };
    run_and_settle(&service, udp).await;
    let tcp = Sipp {
        transport: "t1",
        calls: 3,
        ..Sipp::new("call.xml", service.local_addr)
    };
    run_and_settle(&service, tcp).await;
}
