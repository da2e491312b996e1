//! A test telephone over real loopback sockets: a SIP user agent over UDP (INVITE with an SDP
//! offer of PCMU, PCMA and telephone-event 101, ACK, BYE, CANCEL; answering INVITEs as a fake
//! agent phone) and an RTP endpoint that records every packet it receives and sends G.711
//! audio, RFC 4733 digits and in-band DTMF tones on the 20 ms clock.

use hotline::media::dtmf::synthesize_digit;
use hotline::media::g711::G711Codec;
use hotline::sip::message::{Framing, Message, parse};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// One RTP packet as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub payload_type: u8,
    pub payload: Vec<u8>,
}

/// The RTP side: a socket, a task collecting what arrives, and a sender.
pub struct Rtp {
    socket: Arc<UdpSocket>,
    pub received: Arc<Mutex<Vec<Received>>>,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
}

impl Rtp {
    pub async fn bind() -> Rtp {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let (reader, store) = (socket.clone(), received.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, _)) = reader.recv_from(&mut buf).await {
                if n < 12 {
                    continue;
                }
                store.lock().unwrap().push(Received {
                    payload_type: buf[1] & 0x7f,
                    payload: buf[12..n].to_vec(),
                });
            }
        });
        Rtp {
            socket,
            received,
            seq: 1,
            timestamp: 160,
            ssrc: 0x1234_5678,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn packet(&mut self, pt: u8, marker: bool, timestamp: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        out
    }

    /// Sends `pcm` as 20 ms G.711 frames, paced in real time.
    pub async fn send_audio(&mut self, to: SocketAddr, codec: G711Codec, pcm: &[i16]) {
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        for chunk in pcm.chunks(160) {
            ticker.tick().await;
            let mut payload = Vec::new();
            codec.encode_into(chunk, &mut payload);
            payload.resize(160, codec.silence_byte());
            let ts = self.timestamp;
            let datagram = self.packet(codec.payload_type(), false, ts, &payload);
            self.socket.send_to(&datagram, to).await.unwrap();
            self.timestamp = self.timestamp.wrapping_add(160);
        }
    }

    /// An in-band DTMF key: the two tones for 100 ms, then 100 ms of silence.
    pub async fn send_inband_digit(&mut self, to: SocketAddr, codec: G711Codec, digit: char) {
        let tone = synthesize_digit(digit, 5000.0, 100, 100);
        self.send_audio(to, codec, &tone).await;
    }

    /// An RFC 4733 key press (payload type 101): 100 ms of event packets, three end packets.
    pub async fn send_event_digit(&mut self, to: SocketAddr, digit: char) {
        let event = match digit {
            '0'..='9' => digit as u8 - b'0',
            '*' => 10,
            '#' => 11,
            _ => panic!("not a key: {digit}"),
        };
        let start = self.timestamp;
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        for i in 0..8u16 {
            ticker.tick().await;
            let end = i >= 5;
            let duration = (i.min(5) + 1) * 160;
            let mut payload = vec![event, if end { 0x80 | 10 } else { 10 }];
            payload.extend_from_slice(&duration.to_be_bytes());
            let datagram = self.packet(101, i == 0, start, &payload);
            self.socket.send_to(&datagram, to).await.unwrap();
        }
        self.timestamp = self.timestamp.wrapping_add(160 * 8);
    }

    /// Audio payloads received so far (telephone-event packets left out).
    pub fn audio(&self) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.payload_type == 0 || p.payload_type == 8)
            .map(|p| p.payload.clone())
            .collect()
    }
}

fn sdp(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n",
        rtp.port()
    )
}

/// The RTP address in an SDP body (`c=` address, `m=audio` port).
pub fn sdp_rtp_addr(body: &[u8]) -> SocketAddr {
    let description = hotline::sip::sdp::parse(body).unwrap();
    description.negotiate().unwrap().remote_rtp
}

/// A SIP user agent on one UDP socket.
pub struct Phone {
    pub sip: UdpSocket,
    pub rtp: Rtp,
    server: SocketAddr,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
    invite_branch: String,
    /// Where the daemon wants our RTP (from its SDP answer).
    pub remote_rtp: Option<SocketAddr>,
    caller: String,
    dialled: String,
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Phone {
    pub async fn new(server: SocketAddr, caller: &str, dialled: &str) -> Phone {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Phone {
            sip: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            rtp: Rtp::bind().await,
            server,
            call_id: format!("test-call-{}-{n}", std::process::id()),
            from_tag: format!("ft{n}"),
            to_tag: None,
            cseq: 1,
            invite_branch: format!("z9hG4bKinv{n}"),
            remote_rtp: None,
            caller: caller.into(),
            dialled: dialled.into(),
        }
    }

    fn local(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    fn request(&self, method: &str, branch: &str, cseq: u32, body: &str) -> Vec<u8> {
        self.request_typed(method, branch, cseq, "application/sdp", body)
    }

    fn request_typed(
        &self,
        method: &str,
        branch: &str,
        cseq: u32,
        content_type: &str,
        body: &str,
    ) -> Vec<u8> {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let ct = if body.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {content_type}\r\n")
        };
        format!(
            "{method} sip:{dialled}@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             From: <sip:{caller}@127.0.0.1>;tag={from}\r\n\
             To: <sip:{dialled}@{server}>{to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
             Contact: <sip:{caller}@{local}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            dialled = self.dialled,
            server = self.server,
            local = self.local(),
            caller = self.caller,
            from = self.from_tag,
            call_id = self.call_id,
        )
        .into_bytes()
    }

    /// The next SIP message, within `secs`.
    pub async fn recv(&self, secs: u64) -> Message {
        recv_on(&self.sip, secs).await.0
    }

    /// Sends the INVITE and returns without waiting for an answer.
    pub async fn send_invite(&mut self) {
        let body = sdp(self.rtp.addr());
        let invite = self.request("INVITE", &self.invite_branch.clone(), 1, &body);
        self.sip.send_to(&invite, self.server).await.unwrap();
    }

    /// INVITE, wait for the final response, ACK a 2xx. Returns the final status code.
    pub async fn call(&mut self) -> u16 {
        self.send_invite().await;
        loop {
            let response = self.recv(10).await;
            let Some(code) = response.code() else {
                continue;
            };
            if code < 200 {
                continue;
            }
            if (200..300).contains(&code) {
                self.to_tag = response.to_tag().map(str::to_owned);
                self.remote_rtp = Some(sdp_rtp_addr(&response.body));
                let ack = self.request("ACK", &format!("{}ack", self.invite_branch), 1, "");
                self.sip.send_to(&ack, self.server).await.unwrap();
            }
            return code;
        }
    }

    /// CANCEL of our unanswered INVITE; returns the INVITE's final code (487 expected).
    pub async fn cancel(&mut self) -> u16 {
        let cancel = self.request("CANCEL", &self.invite_branch.clone(), 1, "");
        self.sip.send_to(&cancel, self.server).await.unwrap();
        loop {
            let response = self.recv(10).await;
            if response.cseq().map(|(_, m)| m == "INVITE") == Some(true)
                && response.code().is_some_and(|c| c >= 200)
            {
                let code = response.code().unwrap();
                let ack = self.request("ACK", &self.invite_branch.clone(), 1, "");
                self.sip.send_to(&ack, self.server).await.unwrap();
                return code;
            }
        }
    }

    /// BYE; returns its final status code.
    pub async fn bye(&mut self) -> u16 {
        self.cseq += 1;
        let branch = format!("{}bye{}", self.invite_branch, self.cseq);
        let bye = self.request("BYE", &branch, self.cseq, "");
        self.sip.send_to(&bye, self.server).await.unwrap();
        loop {
            let response = self.recv(10).await;
            if response.cseq().map(|(_, m)| m == "BYE") == Some(true)
                && let Some(code) = response.code()
                && code >= 200
            {
                return code;
            }
        }
    }

    /// A key press as SIP INFO (application/dtmf-relay); returns the INFO's status code.
    pub async fn press_info(&mut self, digit: char) -> u16 {
        self.cseq += 1;
        let branch = format!("{}info{}", self.invite_branch, self.cseq);
        let body = format!("Signal={digit}\r\nDuration=160\r\n");
        let info = self.request_typed("INFO", &branch, self.cseq, "application/dtmf-relay", &body);
        self.sip.send_to(&info, self.server).await.unwrap();
        loop {
            let response = self.recv(10).await;
            if response.cseq().map(|(_, m)| m == "INFO") == Some(true)
                && let Some(code) = response.code()
                && code >= 200
            {
                return code;
            }
        }
    }

    /// Waits (up to `secs`) for the daemon's BYE and answers it 200.
    pub async fn expect_bye(&self, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (message, from) = recv_on(&self.sip, left.as_secs().max(1)).await;
            if message.method() == Some("BYE") {
                let ok = Message::response_to(&message, 200, "OK", None);
                self.sip.send_to(&ok.to_bytes(), from).await.unwrap();
                return;
            }
        }
    }

    /// Sends `pcm` to the daemon's RTP address.
    pub async fn send_audio(&mut self, pcm: &[i16]) {
        let to = self.remote_rtp.expect("answered");
        self.rtp.send_audio(to, G711Codec::Pcmu, pcm).await;
    }

    pub async fn press_event(&mut self, digit: char) {
        let to = self.remote_rtp.expect("answered");
        self.rtp.send_event_digit(to, digit).await;
    }

    pub async fn press_inband(&mut self, digit: char) {
        let to = self.remote_rtp.expect("answered");
        self.rtp.send_inband_digit(to, G711Codec::Pcmu, digit).await;
    }
}

async fn recv_on(socket: &UdpSocket, secs: u64) -> (Message, SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(Duration::from_secs(secs), socket.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("a SIP message within {secs} s"))
        .unwrap();
    (parse(&buf[..n], Framing::Datagram).unwrap(), from)
}

/// A fake agent (or on-call) phone: answers the INVITEs the daemon sends it.
pub struct AgentPhone {
    pub sip: UdpSocket,
    pub rtp: Rtp,
}

/// An INVITE the agent phone received.
pub struct Ringing {
    pub invite: Message,
    pub from: SocketAddr,
}

impl AgentPhone {
    pub async fn bind() -> AgentPhone {
        AgentPhone {
            sip: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            rtp: Rtp::bind().await,
        }
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.sip.local_addr().unwrap())
    }

    /// Waits for an INVITE (other requests, e.g. retransmissions, are skipped) and answers
    /// 180 Ringing, as a phone does.
    pub async fn ringing(&self, secs: u64) -> Ringing {
        loop {
            let (message, from) = recv_on(&self.sip, secs).await;
            if message.method() == Some("INVITE") {
                let ringing = Message::response_to(&message, 180, "Ringing", Some("agenttag"));
                self.sip.send_to(&ringing.to_bytes(), from).await.unwrap();
                return Ringing {
                    invite: message,
                    from,
                };
            }
        }
    }

    /// Answers 200 with our SDP and waits for the ACK.
    pub async fn answer(&self, ringing: &Ringing) {
        let mut ok = Message::response_to(&ringing.invite, 200, "OK", Some("agenttag"));
        ok.push_header(
            "Contact",
            format!("<sip:agent@{}>", self.sip.local_addr().unwrap()),
        );
        ok.set_body("application/sdp", sdp(self.rtp.addr()).into_bytes());
        self.sip
            .send_to(&ok.to_bytes(), ringing.from)
            .await
            .unwrap();
        loop {
            let (message, _) = recv_on(&self.sip, 10).await;
            if message.method() == Some("ACK") {
                return;
            }
        }
    }

    /// Hangs up an answered call (BYE from the agent's side); returns the BYE's final status.
    pub async fn hang_up(&self, ringing: &Ringing) -> u16 {
        let invite = &ringing.invite;
        let target = invite
            .header("Contact")
            .and_then(|c| Some(c.split_once('<')?.1.split_once('>')?.0))
            .unwrap_or_else(|| invite.uri().unwrap())
            .to_owned();
        let mut bye = Message::request("BYE", &target);
        bye.push_header(
            "Via",
            format!(
                "SIP/2.0/UDP {};branch=z9hG4bKagentbye{};rport",
                self.sip.local_addr().unwrap(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        );
        bye.push_header(
            "From",
            format!("{};tag=agenttag", invite.header("To").unwrap()),
        );
        bye.push_header("To", invite.header("From").unwrap());
        bye.push_header("Call-ID", invite.call_id());
        let cseq = invite.cseq().map_or(1, |(n, _)| n + 1);
        bye.push_header("CSeq", format!("{cseq} BYE"));
        bye.push_header("Max-Forwards", "70");
        self.sip
            .send_to(&bye.to_bytes(), ringing.from)
            .await
            .unwrap();
        loop {
            let (response, _) = recv_on(&self.sip, 10).await;
            if response.cseq().map(|(_, m)| m == "BYE") == Some(true)
                && let Some(code) = response.code()
                && code >= 200
            {
                return code;
            }
        }
    }

    /// Waits for a BYE or CANCEL and answers it 200; returns the method.
    pub async fn expect_end(&self, secs: u64) -> String {
        loop {
            let (message, from) = recv_on(&self.sip, secs).await;
            match message.method() {
                Some(method @ ("BYE" | "CANCEL")) => {
                    let method = method.to_owned();
                    let ok = Message::response_to(&message, 200, "OK", None);
                    self.sip.send_to(&ok.to_bytes(), from).await.unwrap();
                    return method;
                }
                _ => continue,
            }
        }
    }
}
