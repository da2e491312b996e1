//! The tokio transport over real loopback sockets: UDP and TCP clients talk to a running
//! SIP service whose small test application answers every call.

use hotline::sip::config::SipConfig;
use hotline::sip::endpoint::{Command, EndReason, Event, OutgoingCall};
use hotline::sip::message::{Framing, Message, StreamFrame, frame_stream, parse};
use hotline::sip::transaction::Peer;
use hotline::sip::transport::{Request, SipService, TransportCounts, spawn};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
    m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn test_config() -> SipConfig {
    SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        // Short T1 so Timer J/H/I/K end within the test.
        t1_ms: 20,
        t2_ms: 160,
        t4_ms: 200,
        ..SipConfig::default()
    }
}

/// Answers every incoming call; forwards all events to the test.
fn answering_app(service: &mut SipService) -> mpsc::UnboundedReceiver<Event> {
    let mut events = std::mem::replace(&mut service.events, mpsc::unbounded_channel().1);
    let requests = service.requests.clone();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::IncomingCall { call, .. } = &event {
                let answer = Command::Answer {
                    call: *call,
                    local_rtp: "127.0.0.1:30000".parse().unwrap(),
                };
                if requests.send(Request::Command(answer)).await.is_err() {
                    break;
                }
            }
            if seen_tx.send(event).is_err() {
                break;
            }
        }
    });
    seen
}

fn request(
    method: &str,
    (transport, local): (&str, SocketAddr),
    call_id: &str,
    branch: &str,
    cseq: u32,
    to_tag: &str,
    body: &str,
) -> Vec<u8> {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:4008@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch={branch};rport\r\n\
         From: <sip:caller@127.0.0.1>;tag=ct1\r\n\
         To: <sip:4008@127.0.0.1>{to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
         Contact: <sip:caller@{local}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn recv_udp(socket: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("a SIP message within 5 s")
        .unwrap();
    parse(&buf[..n], Framing::Datagram).unwrap()
}

async fn wait_for_zero(service: &SipService) {
    let mut counts = service.counts.clone();
    tokio::time::timeout(
        Duration::from_secs(10),
        counts.wait_for(|c| *c == TransportCounts::default()),
    )
    .await
    .expect("transactions, calls and connections back to zero")
    .unwrap();
}

#[tokio::test]
async fn udp_options_invite_retransmitted_200_ack_bye() {
    let mut service = spawn(&test_config()).await.unwrap();
    let mut seen = answering_app(&mut service);
    let server = service.local_addr;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = client.local_addr().unwrap();

    client
        .send_to(
            &request("OPTIONS", ("UDP", local), "o1", "z9hG4bKo1", 1, "", ""),
            server,
        )
        .await
        .unwrap();
    let ok = recv_udp(&client).await;
    assert_eq!(ok.code(), Some(200));
    let via = ok.top_via().unwrap();
    assert_eq!(
        via.param("rport"),
        Some(Some(local.port().to_string().as_str()))
    );

    client
        .send_to(
            &request("INVITE", ("UDP", local), "i1", "z9hG4bKi1", 1, "", OFFER),
            server,
        )
        .await
        .unwrap();
    assert_eq!(recv_udp(&client).await.code(), Some(100));
    let first = recv_udp(&client).await;
    assert_eq!(first.code(), Some(200));
    // No ACK yet: the 200 comes again.
    let again = recv_udp(&client).await;
    assert_eq!(again.code(), Some(200));
    assert_eq!(again.to_tag(), first.to_tag());
    let tag = format!(";tag={}", first.to_tag().unwrap());
    client
        .send_to(
            &request("ACK", ("UDP", local), "i1", "z9hG4bKa1", 1, &tag, ""),
            server,
        )
        .await
        .unwrap();
    client
        .send_to(
            &request("BYE", ("UDP", local), "i1", "z9hG4bKb1", 2, &tag, ""),
            server,
        )
        .await
        .unwrap();
    // Drain any 200 retransmission that crossed our ACK, then expect the BYE's 200.
    let bye_ok = loop {
        let m = recv_udp(&client).await;
        if m.cseq().map(|c| c.1) == Some("BYE") {
            break m;
        }
    };
    assert_eq!(bye_ok.code(), Some(200));
    let mut kinds = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), seen.recv()).await {
        kinds.push(e);
    }
    assert!(matches!(kinds[0], Event::IncomingCall { .. }));
    assert!(matches!(kinds[1], Event::CallConfirmed { .. }));
    assert!(matches!(
        kinds[2],
        Event::CallEnded {
            reason: EndReason::RemoteHangup,
            ..
        }
    ));
    wait_for_zero(&service).await;
}

async fn read_tcp(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Message {
    let mut chunk = [0u8; 4096];
    loop {
        if let StreamFrame::Complete(len) = frame_stream(buf, 65535) {
            let data: Vec<u8> = buf.drain(..len).collect();
            return parse(&data, Framing::Stream).unwrap();
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("data within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn tcp_call_reuses_the_connection_for_responses() {
    let mut service = spawn(&test_config()).await.unwrap();
    let _seen = answering_app(&mut service);
    let mut stream = TcpStream::connect(service.local_addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let mut buf = Vec::new();
    // Two messages in one write, the second split: framing must cope.
    let mut bytes = b"\r\n\r\n".to_vec();
    bytes.extend(request(
        "OPTIONS",
        ("TCP", local),
        "t0",
        "z9hG4bKt0",
        1,
        "",
        "",
    ));
    bytes.extend(request(
        "INVITE",
        ("TCP", local),
        "t1",
        "z9hG4bKt1",
        1,
        "",
        OFFER,
    ));
    let split = bytes.len() - 30;
    stream.write_all(&bytes[..split]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&bytes[split..]).await.unwrap();
    assert_eq!(read_tcp(&mut stream, &mut buf).await.code(), Some(200));
    assert_eq!(read_tcp(&mut stream, &mut buf).await.code(), Some(100));
    let ok = read_tcp(&mut stream, &mut buf).await;
    assert_eq!(ok.code(), Some(200));
    assert!(ok.header("Contact").unwrap().contains("transport=tcp"));
    let tag = format!(";tag={}", ok.to_tag().unwrap());
    stream
        .write_all(&request(
            "ACK",
            ("TCP", local),
            "t1",
            "z9hG4bKta",
            1,
            &tag,
            "",
        ))
        .await
        .unwrap();
    stream
        .write_all(&request(
            "BYE",
            ("TCP", local),
            "t1",
            "z9hG4bKtb",
            2,
            &tag,
            "",
        ))
        .await
        .unwrap();
    let bye_ok = loop {
        let m = read_tcp(&mut stream, &mut buf).await;
        if m.cseq().map(|c| c.1) == Some("BYE") {
            break m;
        }
    };
    assert_eq!(bye_ok.code(), Some(200));
    drop(stream);
    wait_for_zero(&service).await;
}

#[tokio::test]
async fn garbage_on_tcp_closes_only_that_connection() {
    let service = spawn(&test_config()).await.unwrap();
    let mut bad = TcpStream::connect(service.local_addr).await.unwrap();
    bad.write_all(b"INVITE sip:x SIP/2.0\r\nContent-Length: nope\r\n\r\n")
        .await
        .unwrap();
    let mut chunk = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut chunk))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "server closed the unframeable connection");
    let mut good = TcpStream::connect(service.local_addr).await.unwrap();
    let local = good.local_addr().unwrap();
    good.write_all(&request(
        "OPTIONS",
        ("TCP", local),
        "g",
        "z9hG4bKg",
        1,
        "",
        "",
    ))
    .await
    .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_tcp(&mut good, &mut buf).await.code(), Some(200));
}

#[tokio::test]
async fn outgoing_call_over_udp_to_an_agent_phone() {
    let mut service = spawn(&test_config()).await.unwrap();
    let mut events = std::mem::replace(&mut service.events, mpsc::unbounded_channel().1);
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let agent_addr = agent.local_addr().unwrap();
    let (reply, handle) = tokio::sync::oneshot::channel();
    let call = OutgoingCall {
        target: format!("sip:8001@{agent_addr}"),
        peer: Peer::Udp(agent_addr),
        from_user: "hotline".into(),
        local_rtp: "127.0.0.1:30002".parse().unwrap(),
    };
    service
        .requests
        .send(Request::StartCall { call, reply })
        .await
        .unwrap();
    let handle = handle.await.unwrap();

    let invite = recv_udp(&agent).await;
    assert_eq!(invite.method(), Some("INVITE"));
    let mut ok = Message::response_to(&invite, 200, "OK", Some("agent1"));
    ok.push_header("Contact", format!("<sip:8001@{agent_addr}>"));
    ok.set_body("application/sdp", OFFER.as_bytes().to_vec());
    agent
        .send_to(&ok.to_bytes(), service.local_addr)
        .await
        .unwrap();
    let ack = recv_udp(&agent).await;
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(ack.to_tag(), Some("agent1"));
    match events.recv().await.unwrap() {
        Event::OutgoingAnswered { call, media } => {
            assert_eq!(call, handle);
            assert_eq!(media.telephone_event_pt, Some(101));
        }
        other => panic!("{other:?}"),
    }
    service
        .requests
        .send(Request::Command(Command::Hangup { call: handle }))
        .await
        .unwrap();
    let bye = recv_udp(&agent).await;
    assert_eq!(bye.method(), Some("BYE"));
    let bye_ok = Message::response_to(&bye, 200, "OK", None);
    agent
        .send_to(&bye_ok.to_bytes(), service.local_addr)
        .await
        .unwrap();
    assert_eq!(
        events.recv().await.unwrap(),
        Event::CallEnded {
            call: handle,
            reason: EndReason::LocalHangup
        }
    );
    wait_for_zero(&service).await;
}

#[tokio::test]
async fn ipv6_loopback_options() {
    let Ok(probe) = UdpSocket::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let config = SipConfig {
        listen: "[::1]:0".parse().unwrap(),
        ..test_config()
    };
    let service = spawn(&config).await.unwrap();
    let local = probe.local_addr().unwrap();
    probe
        .send_to(
            &request("OPTIONS", ("UDP", local), "v6", "z9hG4bKv6", 1, "", ""),
            service.local_addr,
        )
        .await
        .unwrap();
    let ok = recv_udp(&probe).await;
    assert_eq!(ok.code(), Some(200));
}

/// A TCP connection to `server` from the loopback address `source`.
async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// Waits (bounded) until the server closes `stream`; how long that took.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    let mut chunk = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut chunk)).await {
            Err(_) => panic!("the server kept the connection open for {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn tcp_refuses_outsiders_and_extra_connections_at_accept() {
    let config = SipConfig {
        allowed_sources: vec!["127.0.0.1/32".into(), "127.0.0.2/32".into()],
        tcp_max_connections: 3,
        tcp_max_connections_per_source: 2,
        ..test_config()
    };
    let service = spawn(&config).await.unwrap();
    let server = service.local_addr;
    // Not in sip.allowed_sources: closed at once, without sending a byte.
    let mut outsider = connect_from("127.0.0.9", server).await;
    closed_by_server(&mut outsider, Duration::from_secs(5)).await;
    // Two from one source are fine, the third is refused; another source still gets in,
    // up to the total.
    let mut first = connect_from("127.0.0.1", server).await;
    let _second = connect_from("127.0.0.1", server).await;
    let mut third = connect_from("127.0.0.1", server).await;
    closed_by_server(&mut third, Duration::from_secs(5)).await;
    let _other = connect_from("127.0.0.2", server).await;
    let mut over_total = connect_from("127.0.0.2", server).await;
    closed_by_server(&mut over_total, Duration::from_secs(5)).await;
    // The connections taken work.
    let local = first.local_addr().unwrap();
    first
        .write_all(&request(
            "OPTIONS",
            ("TCP", local),
            "cap",
            "z9hG4bKcap",
            1,
            "",
            "",
        ))
        .await
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_tcp(&mut first, &mut buf).await.code(), Some(200));
    let counts = *service.counts.borrow();
    assert_eq!(counts.tcp_connections, 3);
}

#[tokio::test]
async fn tcp_closes_slow_and_idle_connections() {
    let config = SipConfig {
        tcp_message_timeout_secs: 1,
        tcp_idle_timeout_secs: 2,
        ..test_config()
    };
    let service = spawn(&config).await.unwrap();
    // Slowloris: half a request, then nothing. Closed after the message timeout.
    let mut slow = TcpStream::connect(service.local_addr).await.unwrap();
    slow.write_all(b"OPTIONS sip:4008@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;bra")
        .await
        .unwrap();
    let took = closed_by_server(&mut slow, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    // Trickling a byte at a time does not keep a message alive either.
    let mut trickle = TcpStream::connect(service.local_addr).await.unwrap();
    let trickled = tokio::spawn(async move {
        for byte in b"OPTIONS sip:4008@127.0.0.1 SIP/2.0\r\n".iter().cycle() {
            if trickle.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    tokio::time::timeout(Duration::from_secs(10), trickled)
        .await
        .expect("the trickling connection is closed")
        .unwrap();
    // Idle: a connection that carries nothing is closed after the idle timeout; one that
    // completes messages stays until it goes idle too.
    let mut idle = TcpStream::connect(service.local_addr).await.unwrap();
    let took = closed_by_server(&mut idle, Duration::from_secs(10)).await;
    assert!(took >= Duration::from_millis(1500), "closed after {took:?}");
    wait_for_zero(&service).await;
}

#[tokio::test]
async fn the_same_branch_from_another_sender_is_a_new_transaction() {
    let service = spawn(&test_config()).await.unwrap();
    let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for socket in [&first, &second] {
        let local = socket.local_addr().unwrap();
        // Same branch, another sent-by (RFC 3261 §17.2.3): not a retransmission.
        let options = request(
            "OPTIONS",
            ("UDP", local),
            &format!("dup-{}", local.port()),
            "z9hG4bKshared",
            1,
            "",
            "",
        );
        socket.send_to(&options, service.local_addr).await.unwrap();
        assert_eq!(recv_udp(socket).await.code(), Some(200), "{local}");
    }
    wait_for_zero(&service).await;
}
