//! A real softphone for the tests: baresip (Debian `baresip`) in its own config folder,
//! driven over its `ctrl_tcp` control socket (JSON commands and events in netstrings).
//! It sends a WAV the test gives it (`aufile`), plays nothing (no audio player module, so it
//! idles instead of spinning) and `sndfile` records what it heard into its folder.
//! Included with `#[path]` next to `tools.rs` and `audio.rs`; everything is on loopback.

use crate::{audio, tools};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio::time::Instant;

/// Longest wait for any one step (start, answer, hang-up, quit).
const STEP: Duration = Duration::from_secs(20);

pub struct Baresip {
    child: Child,
    folder: tempfile::TempDir,
    control: Control,
}

/// What happened in one call, as baresip's events tell it.
#[derive(Debug)]
pub struct CallReport {
    /// Event types in order (CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED, ...).
    pub events: Vec<String>,
    /// The far end hung up before we did.
    pub closed_by_peer: bool,
}

impl Baresip {
    /// Starts baresip with a fresh configuration, calling as `caller` (the user part of its
    /// address); `voice` (8 kHz mono) is what it sends in a call, and the call ends when it
    /// runs out, so make it longer than the call.
    pub async fn start(caller: &str, voice: &[i16]) -> Baresip {
        let program = tools::require("baresip", "baresip");
        let folder = tempfile::tempdir().unwrap();
        let dir = folder.path();
        let voice_path = dir.join("voice.wav");
        audio::write_wav(&voice_path, voice);
        std::fs::create_dir(dir.join("heard")).unwrap();
        let control_port = free_tcp_port();
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             net_interface 127.0.0.1\n\
             call_local_timeout 20\n\
             audio_source aufile,{voice}\n\
             audio_level no\n\
             ausrc_format s16\n\
             auplay_format s16\n\
             auenc_format s16\n\
             audec_format s16\n\
             audio_buffer 20-160\n\
             rtcp_mux no\n\
             jitter_buffer_delay 5-10\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module sndfile.so\n\
             snd_path {heard}\n\
             module_tmp account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{control_port}\n",
            sip_port = free_tcp_port(),
            voice = voice_path.display(),
            heard = dir.join("heard").display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!("<sip:{caller}@127.0.0.1>;regint=0;audio_codecs=PCMU,PCMA;answermode=manual\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = tokio::process::Command::new(program)
            .arg("-f")
            .arg(dir)
            // A last resort if the test dies without quitting it.
            .args(["-t", "120"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let control = Control::connect(control_port).await;
        Baresip {
            child,
            folder,
            control,
        }
    }

    /// Dials `uri`; once answered, sends `keys` (RFC 4733) after `keys_after`, then hangs up
    /// `hold` later unless the far end hung up first.
    pub async fn call(
        &mut self,
        uri: &str,
        keys: &str,
        keys_after: Duration,
        hold: Duration,
    ) -> CallReport {
        self.control.send("dial", uri).await;
        let mut events = Vec::new();
        let answered = self
            .control
            .until(&["CALL_ESTABLISHED", "CALL_CLOSED"], STEP, &mut events)
            .await;
        assert_eq!(
            answered.as_deref(),
            Some("CALL_ESTABLISHED"),
            "baresip's call to {uri} was not answered: {events:?}\n{}",
            self.log()
        );
        let mut closed = self
            .control
            .until(&["CALL_CLOSED"], keys_after, &mut events)
            .await;
        if closed.is_none() && !keys.is_empty() {
            self.control.send("sndcode", keys).await;
        }
        if closed.is_none() {
            closed = self
                .control
                .until(&["CALL_CLOSED"], hold, &mut events)
                .await;
        }
        let closed_by_peer = closed.is_some();
        if !closed_by_peer {
            self.control.send("hangup", "").await;
            let hung_up = self
                .control
                .until(&["CALL_CLOSED"], STEP, &mut events)
                .await;
            assert!(
                hung_up.is_some(),
                "baresip's hang-up was not confirmed: {events:?}\n{}",
                self.log()
            );
        }
        CallReport {
            events,
            closed_by_peer,
        }
    }

    /// Quits baresip and returns what it heard in its call (sndfile's `*-dec.wav`).
    pub async fn quit(mut self) -> Vec<i16> {
        self.control.send("quit", "").await;
        let exited = tokio::time::timeout(STEP, self.child.wait()).await;
        assert!(
            exited.is_ok(),
            "baresip did not quit within {STEP:?}\n{}",
            self.log()
        );
        let heard: Vec<PathBuf> = std::fs::read_dir(self.folder.path().join("heard"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        assert_eq!(
            heard.len(),
            1,
            "expected one recording of a received call, found {heard:?}\n{}",
            self.log()
        );
        audio::read_wav(&heard[0])
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.folder.path().join("baresip.log"));
        format!("baresip log:\n{}", log.unwrap_or_default())
    }
}

/// The `ctrl_tcp` connection: requests out, responses and events in, each a netstring
/// (`<length>:<json>,`).
struct Control {
    stream: TcpStream,
    received: Vec<u8>,
}

impl Control {
    async fn connect(port: u16) -> Control {
        let deadline = Instant::now() + STEP;
        loop {
            match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(stream) => {
                    return Control {
                        stream,
                        received: Vec::new(),
                    };
                }
                // baresip is still starting.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => panic!("baresip's control port {port} never opened: {err}"),
            }
        }
    }

    async fn send(&mut self, command: &str, params: &str) {
        let message = json!({"command": command, "params": params, "token": command}).to_string();
        let framed = format!("{}:{message},", message.len());
        self.stream.write_all(framed.as_bytes()).await.unwrap();
    }

    /// Reads messages until an event of one of `types` (returned), or `None` after `within`.
    /// Every event type seen is appended to `seen`.
    async fn until(
        &mut self,
        types: &[&str],
        within: Duration,
        seen: &mut Vec<String>,
    ) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(message) = self.take_message() {
                if message["event"] == json!(true) {
                    let kind = message["type"].as_str().unwrap_or_default().to_string();
                    seen.push(kind.clone());
                    if types.contains(&kind.as_str()) {
                        return Some(kind);
                    }
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Err(_) => return None,
                Ok(Ok(n)) => self.received.extend_from_slice(&chunk[..n]),
                Ok(Err(err)) => panic!("baresip's control connection failed: {err}"),
            }
        }
    }

    fn take_message(&mut self) -> Option<Value> {
        let colon = self.received.iter().position(|&b| b == b':')?;
        let length: usize = std::str::from_utf8(&self.received[..colon])
            .ok()?
            .parse()
            .unwrap_or_else(|_| panic!("baresip sent a bad netstring: {:?}", self.received));
        let end = colon + 1 + length;
        if self.received.len() <= end {
            return None;
        }
        let message = serde_json::from_slice(&self.received[colon + 1..end]).unwrap();
        self.received.drain(..=end);
        Some(message)
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
