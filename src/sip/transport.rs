//! The tokio driver of the sans-IO [`Endpoint`]: one UDP socket and one TCP listener on the
//! same address, TCP framing by Content-Length, responses back over the connection a
//! request came on, timers via `sleep_until(endpoint.poll_timeout())`, and channels to the
//! application (events out, commands in). It seeds the endpoint's RNG from the OS, so the
//! core itself draws no entropy.
//!
//! TCP is guarded against abuse: a connection from outside `sip.allowed_sources`, or beyond
//! the total or per-source cap, is closed at accept; a connection idle for
//! `tcp_idle_timeout_secs` is closed, and so is one whose message does not complete within
//! `tcp_message_timeout_secs` of its first byte (slowloris); a message larger than
//! [`MAX_MESSAGE_BYTES`] closes it too. Refused connections are logged as summaries
//! (with the endpoint's refused requests, see `sip::refusals`), not a line each.
//!
//! Owns sockets and tasks; must not make protocol decisions (the endpoint does).

use super::config::{SipConfig, TcpLimits};
use super::endpoint::{CallHandle, Command, Counts, Endpoint, Event, OutgoingCall};
use super::message::{MAX_MESSAGE_BYTES, StreamFrame, frame_stream, is_keepalive};
use super::stats::SipStats;
use super::transaction::{ConnId, Peer, Transmit};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// What the application sends to the SIP task.
#[derive(Debug)]
pub enum Request {
    Command(Command),
    /// Place a call; the handle comes back on `reply` (events follow on the event channel).
    StartCall {
        call: OutgoingCall,
        reply: oneshot::Sender<CallHandle>,
    },
    /// New INVITEs get 503 from now on; running calls continue.
    BeginShutdown,
}

/// Live counts for tests and metrics: must all be zero when no call is up and timers ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportCounts {
    pub endpoint: Counts,
    pub tcp_connections: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "cannot bind SIP {transport} on {addr}: {source} (is another SIP service using the port? change sip.listen)"
    )]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid SIP configuration: {0}")]
    Config(String),
    #[error("sip.udp and sip.tcp are both off: enable at least one")]
    NoTransport,
}

/// The running SIP service. Dropping `requests` (the whole struct) stops the task.
pub struct SipService {
    /// Events for the application (unbounded so the SIP task never waits on the app).
    pub events: mpsc::UnboundedReceiver<Event>,
    pub requests: mpsc::Sender<Request>,
    /// The address we listen on (the actual port when `listen` had port 0).
    pub local_addr: SocketAddr,
    pub counts: watch::Receiver<TransportCounts>,
    /// The endpoint's running totals (requests, responses, refusals), for metrics.
    pub stats: watch::Receiver<SipStats>,
    pub task: JoinHandle<()>,
}

enum Inbound {
    Message {
        conn: ConnId,
        addr: SocketAddr,
        data: Vec<u8>,
    },
    Closed(ConnId),
}

struct Connection {
    addr: SocketAddr,
    /// Accepted from a peer (counted against the caps), not opened by us.
    accepted: bool,
    writer: mpsc::UnboundedSender<Vec<u8>>,
}

/// Binds UDP and TCP on `config.listen` and starts the SIP task.
pub async fn spawn(config: &SipConfig) -> Result<SipService, TransportError> {
    if !config.udp && !config.tcp {
        return Err(TransportError::NoTransport);
    }
    let mut addr = config.listen;
    let udp = if config.udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| TransportError::Bind {
                transport: "UDP",
                addr,
                source,
            })?;
        // With port 0, TCP takes the port UDP got so both share one address.
        addr = socket.local_addr().map_err(|source| TransportError::Bind {
            transport: "UDP",
            addr,
            source,
        })?;
        Some(socket)
    } else {
        None
    };
    let tcp = if config.tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TransportError::Bind {
                transport: "TCP",
                addr,
                source,
            })?;
        addr = listener
            .local_addr()
            .map_err(|source| TransportError::Bind {
                transport: "TCP",
                addr,
                source,
            })?;
        Some(listener)
    } else {
        None
    };
    let endpoint = Endpoint::new(config, addr, rand::SeedableRng::from_os_rng())
        .map_err(TransportError::Config)?;
    let (event_tx, events) = mpsc::unbounded_channel();
    let (requests, request_rx) = mpsc::channel(256);
    let (counts_tx, counts) = watch::channel(TransportCounts::default());
    let (stats_tx, stats) = watch::channel(SipStats::default());
    let driver = Driver {
        endpoint,
        udp,
        tcp,
        connections: HashMap::new(),
        next_conn: 1,
        limits: config.tcp_limits(),
        inbound: mpsc::unbounded_channel(),
        events: event_tx,
        counts: counts_tx,
        stats: stats_tx,
    };
    let task = tokio::spawn(driver.run(request_rx));
    tracing::info!(%addr, udp = config.udp, tcp = config.tcp, "SIP listening");
    Ok(SipService {
        events,
        requests,
        local_addr: addr,
        counts,
        stats,
        task,
    })
}

struct Driver {
    endpoint: Endpoint,
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
    connections: HashMap<ConnId, Connection>,
    next_conn: ConnId,
    limits: TcpLimits,
    inbound: (
        mpsc::UnboundedSender<Inbound>,
        mpsc::UnboundedReceiver<Inbound>,
    ),
    events: mpsc::UnboundedSender<Event>,
    counts: watch::Sender<TransportCounts>,
    stats: watch::Sender<SipStats>,
}

async fn recv_udp(
    socket: &Option<UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn accept_tcp(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut buf = vec![0u8; MAX_MESSAGE_BYTES + 1];
        loop {
            self.flush().await;
            let deadline = self.endpoint.poll_timeout();
            tokio::select! {
                received = recv_udp(&self.udp, &mut buf) => match received {
                    Ok((n, from)) => self.endpoint.handle_message(Instant::now(), Peer::Udp(from), &buf[..n]),
                    // ICMP port-unreachable from an earlier send surfaces here on Linux.
                    Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                },
                accepted = accept_tcp(&self.tcp) => match accepted {
                    Ok((stream, addr)) => self.accept(stream, addr),
                    Err(e) => tracing::warn!(error = %e, "TCP accept failed"),
                },
                Some(inbound) = self.inbound.1.recv() => match inbound {
                    Inbound::Message { conn, addr, data } => self.endpoint.handle_message(
                        Instant::now(),
                        Peer::Tcp { addr, conn: Some(conn) },
                        &data,
                    ),
                    Inbound::Closed(conn) => {
                        self.connections.remove(&conn);
                    }
                },
                request = requests.recv() => match request {
                    Some(Request::Command(command)) => self.endpoint.handle_command(Instant::now(), command),
                    Some(Request::StartCall { call, reply }) => {
                        let handle = self.endpoint.start_call(Instant::now(), call);
                        let _ = reply.send(handle);
                    }
                    Some(Request::BeginShutdown) => self.endpoint.begin_shutdown(),
                    None => break,
                },
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.endpoint.handle_timeout(now);
                    for summary in self.endpoint.poll_refusal_summaries(now) {
                        tracing::info!("{summary}");
                    }
                }
            }
        }
        tracing::info!("SIP task stopped");
    }

    async fn flush(&mut self) {
        while let Some(transmit) = self.endpoint.poll_transmit() {
            self.send(transmit).await;
        }
        while let Some(event) = self.endpoint.poll_event() {
            // A closed receiver means the application is gone; the endpoint keeps
            // answering the protocol until the request channel closes too.
            let _ = self.events.send(event);
        }
        let counts = TransportCounts {
            endpoint: self.endpoint.counts(),
            tcp_connections: self.connections.len(),
        };
        self.counts.send_if_modified(|c| {
            let changed = *c != counts;
            *c = counts;
            changed
        });
        let stats = self.endpoint.stats();
        self.stats.send_if_modified(|s| {
            let changed = s != stats;
            if changed {
                s.clone_from(stats);
            }
            changed
        });
    }

    async fn send(&mut self, transmit: Transmit) {
        match transmit.peer {
            Peer::Udp(addr) => match &self.udp {
                Some(socket) => {
                    if let Err(e) = socket.send_to(&transmit.data, addr).await {
                        tracing::debug!(%addr, error = %e, "UDP send failed");
                    }
                }
                None => tracing::warn!(%addr, "message for UDP but sip.udp is off: dropped"),
            },
            Peer::Tcp { addr, conn } => {
                let existing = conn
                    .filter(|c| self.connections.contains_key(c))
                    .or_else(|| {
                        self.connections
                            .iter()
                            .find(|(_, c)| c.addr == addr)
                            .map(|(id, _)| *id)
                    });
                let id = match existing {
                    Some(id) => id,
                    None => self.connect(addr),
                };
                if let Some(c) = self.connections.get(&id)
                    && c.writer.send(transmit.data).is_err()
                {
                    self.connections.remove(&id);
                }
            }
        }
    }

    fn register(
        &mut self,
        addr: SocketAddr,
        accepted: bool,
    ) -> (ConnId, mpsc::UnboundedReceiver<Vec<u8>>) {
        let id = self.next_conn;
        self.next_conn += 1;
        let (writer, rx) = mpsc::unbounded_channel();
        self.connections.insert(
            id,
            Connection {
                addr,
                accepted,
                writer,
            },
        );
        (id, rx)
    }

    /// Why a connection from `addr` is refused at accept, if it is.
    fn refusal(&self, addr: SocketAddr) -> Option<&'static str> {
        if !self.endpoint.access().is_allowed_source(addr.ip()) {
            return Some("not in sip.allowed_sources");
        }
        let accepted = self.connections.values().filter(|c| c.accepted);
        let (mut total, mut from_source) = (0, 0);
        for connection in accepted {
            total += 1;
            if connection.addr.ip() == addr.ip() {
                from_source += 1;
            }
        }
        if total >= self.limits.max_connections {
            Some("sip.tcp_max_connections reached")
        } else if from_source >= self.limits.max_per_source {
            Some("sip.tcp_max_connections_per_source reached")
        } else {
            None
        }
    }

    /// Takes a connection a peer opened, or closes it at once (dropping the stream) when
    /// access control or a cap refuses it.
    fn accept(&mut self, stream: TcpStream, addr: SocketAddr) {
        if let Some(reason) = self.refusal(addr) {
            self.endpoint
                .note_refused_connection(addr.ip(), reason, Instant::now());
            return;
        }
        let (id, rx) = self.register(addr, true);
        tokio::spawn(run_connection(
            id,
            addr,
            Ok(stream),
            rx,
            self.inbound.0.clone(),
            self.limits,
        ));
    }

    /// Opens a connection for a request we send over TCP; messages queue until it is up.
    fn connect(&mut self, addr: SocketAddr) -> ConnId {
        let (id, rx) = self.register(addr, false);
        let inbound = self.inbound.0.clone();
        let limits = self.limits;
        tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await;
            run_connection(id, addr, stream, rx, inbound, limits).await;
        });
        id
    }
}

/// Reads framed messages from one TCP connection and writes what the driver queues for it.
/// Ends (and reports `Closed`) on EOF, error, unframeable input, when idle too long, when a
/// message takes too long to arrive, or when the driver is gone.
async fn run_connection(
    id: ConnId,
    addr: SocketAddr,
    stream: std::io::Result<TcpStream>,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::UnboundedSender<Inbound>,
    limits: TcpLimits,
) {
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "TCP connect failed");
            let _ = inbound.send(Inbound::Closed(id));
            return;
        }
    };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    let mut last_activity = Instant::now();
    // When the first byte of the message now in `buf` arrived.
    let mut message_started: Option<Instant> = None;
    'conn: loop {
        let deadline = match message_started {
            Some(started) => started + limits.message_timeout,
            None => last_activity + limits.idle_timeout,
        };
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let now = Instant::now();
                    last_activity = now;
                    buf.extend_from_slice(&chunk[..n]);
                    if is_keepalive(&buf) {
                        buf.clear();
                    }
                    loop {
                        match frame_stream(&buf, MAX_MESSAGE_BYTES) {
                            StreamFrame::Complete(len) => {
                                let data: Vec<u8> = buf.drain(..len).collect();
                                // What is left starts the next message now.
                                message_started = None;
                                if inbound.send(Inbound::Message { conn: id, addr, data }).is_err() {
                                    break 'conn;
                                }
                            }
                            StreamFrame::Incomplete => break,
                            StreamFrame::Invalid(reason) => {
                                tracing::info!(%addr, %reason, "closing TCP connection: cannot frame SIP");
                                break 'conn;
                            }
                        }
                    }
                    if buf.is_empty() {
                        message_started = None;
                    } else {
                        message_started.get_or_insert(now);
                    }
                }
            },
            data = outgoing.recv() => match data {
                Some(data) => {
                    last_activity = Instant::now();
                    if stream.write_all(&data).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                if message_started.is_some() {
                    tracing::debug!(%addr, bytes = buf.len(),
                        "closing TCP connection: a message did not complete within sip.tcp_message_timeout_secs");
                } else {
                    tracing::debug!(%addr, "closing TCP connection: idle for sip.tcp_idle_timeout_secs");
                }
                break;
            }
        }
    }
    let _ = inbound.send(Inbound::Closed(id));
}
