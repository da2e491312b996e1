//! The scale-out path of `deploy/kamailio/`: sipp callers → Kamailio (the shipped
//! `kamailio.cfg`, unchanged but for its `-A` defines) → two `hotlined` daemons. Calls are
//! spread over both, keys reach the IVR through the proxy, and a daemon that stops answering
//! OPTIONS probes is taken out of the rotation. Missing Kamailio fails (naming the Debian
//! package); nothing here skips.

#[allow(dead_code)] // Shared with peers_e2e: this binary reads tickets, not tables.
#[path = "support/hotlined.rs"]
mod hotlined;
#[path = "support/sipp.rs"]
mod sipp;
#[allow(dead_code)] // Shared test helpers: this binary uses the database part only.
mod support;
#[path = "support/tools.rs"]
mod tools;

use hotline::api::pb;
use hotlined::Hotlined;
use sipp::Sipp;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kamailio running the shipped configuration in the foreground, logging to a file. Stopped
/// with SIGTERM (so it takes its worker processes with it) when dropped.
struct Kamailio {
    child: Child,
    sip: SocketAddr,
    folder: tempfile::TempDir,
}

impl Kamailio {
    fn start(daemons: &[SocketAddr]) -> Kamailio {
        let kamailio = tools::require("kamailio", "kamailio");
        let folder = tempfile::tempdir().unwrap();
        let list = folder.path().join("dispatcher.list");
        let lines: String = daemons.iter().map(|d| format!("1 sip:{d}\n")).collect();
        std::fs::write(&list, lines).unwrap();
        let run = folder.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let port = sipp::free_udp_port(1);
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kamailio/kamailio.cfg");
        let log = std::fs::File::create(folder.path().join("kamailio.log")).unwrap();
        let child = Command::new(kamailio)
            .arg("-f")
            .arg(&config)
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
            .arg(&run)
            .arg("-A")
            .arg(format!("LISTEN=udp:127.0.0.1:{port}"))
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .args(["-A", "PROBE_INTERVAL=1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let kamailio = Kamailio {
            child,
            sip: SocketAddr::from(([127, 0, 0, 1], port)),
            folder,
        };
        // Printed once its socket is bound: requests sent from now on are read.
        kamailio.wait_for_log("Listening on", Duration::from_secs(10));
        kamailio
    }

    fn log_path(&self) -> PathBuf {
        self.folder.path().join("kamailio.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits until `needle` appears in the log, for up to `within`.
    fn wait_for_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in Kamailio's log after {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait();
    }
}

/// The built-in flow without the recording notice and with a one-syllable greeting, so a
/// key 1.5 s into the call lands in the main menu.
fn quick_menu(flow: String) -> String {
    flow.replace("policy = \"announce\"", "policy = \"off\"")
        .replace("sip:oncall@127.0.0.1:5070", "sip:oncall@127.0.0.1:9")
        .replace("greeting = [\"welcome\"]", "greeting = [\"digit_1\"]")
        .replace("[ivr.leak]\n", "[ivr.leak]\nspeak_after_greeting = false\n")
}

/// `calls` sipp calls through `proxy`, each pressing 2 (repair) with RFC 4733.
async fn repair_calls(proxy: SocketAddr, caller: &str, calls: u32) {
    let voice = vec![0xffu8; 8000 * 5];
    Sipp {
        calls,
        rate: 2,
        vars: &[
            ("caller", caller),
            ("dtmf", "rfc4733"),
            ("digits", "2"),
            ("wait_ms", "1500"),
            ("hold_ms", "1500"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &voice)],
        ..Sipp::new("uac_media.xml", proxy)
    }
    .run_ok()
    .await;
}

/// The repair drafts `daemon` filed for `caller`, waiting up to 10 s for `expected`.
async fn repair_drafts(daemon: &Hotlined, caller: &str, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tickets = daemon.tickets(caller).await;
        let repairs = tickets
            .iter()
            .filter(|t| t.category == pb::Category::Repair as i32)
            .count();
        if repairs >= expected || Instant::now() >= deadline {
            assert_eq!(repairs, tickets.len(), "only repair drafts: {tickets:?}");
            return repairs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn kamailio_spreads_calls_over_two_daemons_and_probes_a_stopped_one_out() {
    let first = Hotlined::start(quick_menu, "").await;
    let second = Hotlined::start(quick_menu, "").await;
    let kamailio = Kamailio::start(&[first.sip, second.sip]);

    // Round robin: two calls each, the key reaching each daemon's IVR through the proxy
    // (in-dialog ACK and BYE follow Kamailio's Record-Route).
    repair_calls(kamailio.sip, "13900000001", 4).await;
    assert_eq!(
        repair_drafts(&first, "13900000001", 2).await,
        2,
        "{}",
        first.log()
    );
    assert_eq!(
        repair_drafts(&second, "13900000001", 2).await,
        2,
        "{}",
        second.log()
    );

    // The second daemon stops: its OPTIONS probes go unanswered, Kamailio marks it down and
    // every new call goes to the first.
    drop(second);
    kamailio.wait_for_log("hotline: daemon down", Duration::from_secs(20));
    repair_calls(kamailio.sip, "13900000002", 2).await;
    assert_eq!(
        repair_drafts(&first, "13900000002", 2).await,
        2,
        "{}",
        first.log()
    );
    assert!(
        kamailio.log().contains("-> sip:127.0.0.1:"),
        "Kamailio logged its routing:\n{}",
        kamailio.log()
    );
}
