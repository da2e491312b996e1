//! Runs one sipp (Debian `sip-tester`) scenario from `tests/sipp/` against a SIP address on
//! loopback and fails the test with sipp's error log unless every call succeeded (exit 0).
//! Included with `#[path]` next to `tools.rs`.

use crate::tools;
use std::net::SocketAddr;
use std::path::Path;

/// One sipp run: `Sipp { calls: 3, ..Sipp::new("call.xml", addr) }.run_ok().await`.
pub struct Sipp<'a> {
    /// File name under `tests/sipp/`.
    pub scenario: &'a str,
    pub target: SocketAddr,
    /// The user part dialled (`-s`).
    pub service: &'a str,
    /// `u1` (UDP, one socket) or `t1` (TCP, one connection).
    pub transport: &'a str,
    pub calls: u32,
    /// New calls per second.
    pub rate: u32,
    /// Scenario variables (`-set NAME VALUE`).
    pub vars: &'a [(&'a str, &'a str)],
    /// Files written into sipp's working folder first (e.g. the raw µ-law `rtp_stream`).
    pub files: &'a [(&'a str, &'a [u8])],
    /// sipp's RTP port (`-mp`); it also binds the port two above.
    pub media_port: u16,
    /// sipp's whole run may take this long (`-timeout`), then it fails.
    pub timeout_secs: u32,
}

impl<'a> Sipp<'a> {
    pub fn new(scenario: &'a str, target: SocketAddr) -> Sipp<'a> {
        Sipp {
            scenario,
            target,
            service: "4008",
            transport: "u1",
            calls: 1,
            rate: 10,
            vars: &[],
            files: &[],
            media_port: free_udp_port(3),
            timeout_secs: 40,
        }
    }

    /// The sipp command for this run, in `dir` (the scenario's files written there).
    fn command(&self, dir: &Path) -> tokio::process::Command {
        let sipp = tools::require("sipp", "sip-tester");
        for (name, bytes) in self.files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(self.scenario);
        let mut command = tokio::process::Command::new(sipp);
        command
            .current_dir(dir)
            .arg("-sf")
            .arg(&scenario)
            .arg(self.target.to_string())
            .args(["-s", self.service, "-t", self.transport])
            .args(["-i", "127.0.0.1", "-p", &free_udp_port(1).to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &self.media_port.to_string()])
            .args(["-nostdin", "-timeout", &self.timeout_secs.to_string()])
            .args(["-timeout_error", "-trace_err"])
            .args(["-m", &self.calls.to_string(), "-r", &self.rate.to_string()]);
        for (name, value) in self.vars {
            command.args(["-set", name, value]);
        }
        command.kill_on_drop(true);
        command
    }

    /// Starts the scenario and returns the running sipp (killed when dropped) with its
    /// working folder, for tests that kill it mid-call.
    #[allow(dead_code)] // Only the binaries that kill sipp mid-call use it.
    pub fn spawn(&self) -> (tokio::process::Child, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let child = self
            .command(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (child, dir)
    }

    /// Runs the scenario to its end; panics with sipp's own account unless all calls passed.
    pub async fn run_ok(&self) {
        let dir = tempfile::tempdir().unwrap();
        let mut command = self.command(dir.path());
        let output = command.output().await.unwrap();
        let errors: String = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        assert_eq!(
            output.status.code(),
            Some(0),
            "sipp {} ({} calls to {}) failed: {errors}\n{}",
            self.scenario,
            self.calls,
            self.target,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A loopback UDP port whose next `span - 1` ports were free too when we looked.
pub fn free_udp_port(span: u16) -> u16 {
    loop {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let rest_free = (1..span).all(|k| {
            port.checked_add(k)
                .is_some_and(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
        });
        if rest_free {
            return port;
        }
    }
}
