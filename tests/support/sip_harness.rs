//! The sans-IO SIP endpoint on a simulated clock, for the endpoint's tests: a harness that
//! feeds requests as the PBX at 127.0.0.1:5070 would send them, runs timers up to a given
//! time and collects what the endpoint sends. Included with `#[path]`.

use hotline::sip::config::SipConfig;
use hotline::sip::endpoint::{CallHandle, Command, Endpoint, Event};
use hotline::sip::message::{Framing, Message, parse};
use hotline::sip::transaction::Peer;
use std::time::{Duration, Instant};

pub const LOCAL: &str = "127.0.0.1:5060";
pub const PBX: &str = "127.0.0.1:5070";

pub const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
    m=audio 4000 RTP/AVP 8 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:96 telephone-event/8000\r\n";

pub struct Harness {
    pub ep: Endpoint,
    pub t0: Instant,
    pub now: Instant,
    pub pbx: Peer,
}

pub fn harness_with(f: impl FnOnce(&mut SipConfig)) -> Harness {
    let mut config = SipConfig::default();
    f(&mut config);
    let now = Instant::now();
    Harness {
        ep: Endpoint::with_seed(&config, LOCAL.parse().unwrap(), 8).unwrap(),
        t0: now,
        now,
        pbx: Peer::Udp(PBX.parse().unwrap()),
    }
}

pub fn harness() -> Harness {
    harness_with(|_| {})
}

pub fn request(
    method: &str,
    call_id: &str,
    branch: &str,
    cseq: u32,
    to_tag: Option<&str>,
    body: &str,
) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         From: \"Caller\" <sip:13812341234@127.0.0.1>;tag=caller1\r\n\
         To: <sip:4008@127.0.0.1>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:caller@127.0.0.1:5070>\r\n\
         Max-Forwards: 70\r\n\
         {ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

impl Harness {
    pub fn feed(&mut self, text: &str) -> Vec<Message> {
        self.ep.handle_message(self.now, self.pbx, text.as_bytes());
        self.sent()
    }

    /// Feeds `text` and returns the datagrams sent, unparsed.
    pub fn feed_raw(&mut self, text: &str) -> Vec<Vec<u8>> {
        self.ep.handle_message(self.now, self.pbx, text.as_bytes());
        std::iter::from_fn(|| self.ep.poll_transmit().map(|t| t.data)).collect()
    }

    pub fn sent(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_transmit() {
            out.push(parse(&t.data, Framing::Datagram).expect("we send parseable messages"));
        }
        out
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Runs all timers until `until` (ms after start); returns (ms, message) sent.
    pub fn run_until(&mut self, until_ms: u64) -> Vec<(u64, Message)> {
        let end = self.t0 + Duration::from_millis(until_ms);
        let mut sent = Vec::new();
        while let Some(at) = self.ep.poll_timeout() {
            if at > end {
                break;
            }
            self.now = at.max(self.now);
            self.ep.handle_timeout(self.now);
            let ms = (self.now - self.t0).as_millis() as u64;
            sent.extend(self.sent().into_iter().map(|m| (ms, m)));
        }
        self.now = end.max(self.now);
        sent
    }

    pub fn at(&mut self, ms: u64) {
        self.now = self.t0 + Duration::from_millis(ms);
    }

    /// INVITE with SDP → 100 and the IncomingCall event.
    pub fn incoming(&mut self, call_id: &str, branch: &str) -> CallHandle {
        let out = self.feed(&request("INVITE", call_id, branch, 1, None, OFFER));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].code(), Some(100));
        match self.events().as_slice() {
            [Event::IncomingCall { call, .. }] => *call,
            other => panic!("expected IncomingCall, got {other:?}"),
        }
    }

    pub fn answer(&mut self, call: CallHandle) -> Message {
        self.ep.handle_command(
            self.now,
            Command::Answer {
                call,
                local_rtp: "127.0.0.1:20000".parse().unwrap(),
            },
        );
        let mut out = self.sent();
        assert_eq!(out.len(), 1);
        out.remove(0)
    }
}

/// First line of the single datagram sent (read raw: our parser normalises reason phrases).
pub fn status_line(sent: &[Vec<u8>]) -> String {
    let first = sent.first().expect("an answer");
    let text = String::from_utf8_lossy(first);
    text.lines().next().unwrap_or_default().to_string()
}

pub fn parse_reply(sent: &[Vec<u8>]) -> Message {
    parse(&sent[0], Framing::Datagram).expect("we send parseable messages")
}

pub fn codes(sent: &[Message]) -> Vec<u16> {
    sent.iter().filter_map(|m| m.code()).collect()
}
