//! The media workers: a fixed set of threads, one per core, each driving its share of the
//! calls' media sessions from one loop — a deadline heap for their 20 ms frames and one
//! `epoll` (through `mio`) over their sockets.
//!
//! Why threads of our own rather than a tokio task per session: a task per session costs a
//! timer re-armed every 20 ms, a task wake-up per packet and per frame, and a `select!` over
//! four futures per wake; at thousands of calls that overhead was larger than the media work
//! itself, and the media shared its runtime with the database and the dispatcher, so a
//! burst of either delayed prompts. A worker instead sleeps until its next frame is due, at
//! least [`TICK`] (1 ms), then reads every socket that became readable meanwhile and sends
//! every frame that is due: one wake-up serves many sessions, so it wakes at most 1,000
//! times a second instead of once per packet. Frames leave at most about a tick late, and a
//! caller's key is recognised within a tick of its packet's arrival.
//!
//! Commands from the owner are taken at the session's next frame (at most 20 ms later): every
//! command acts on what is sent from the next frame on (playback, recording origin, hold,
//! bridging), so taking them then changes nothing the peer can hear. A new session wakes
//! its worker at once, so its first frame is on time.
//!
//! Owns the threads, the sockets' readiness and the frame schedule of every session; must
//! not know what the media means (that is `session_core`).

use super::ports::PortLease;
use super::session::MediaCommand;
use super::session_core::SessionCore;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, error::TryRecvError};

/// The token of a worker's waker (new sessions), on its own `Poll`; session sockets use
/// `2 * slot` (RTP) and `2 * slot + 1` (RTCP) on the sockets' `Poll`.
const WAKER: Token = Token(0);
/// The shortest sleep between two wake-ups: frames go out at most this late (plus the
/// kernel's timer slack), and a worker wakes at most 1,000 times a second however many
/// sessions it drives, instead of once per packet.
const TICK: Duration = Duration::from_millis(1);
/// Readiness events taken from the kernel per call.
const READY_BATCH: usize = 1024;
/// Shortest time between two returns of free memory to the system (see `release_free_memory`).
const TRIM_SPACING: Duration = Duration::from_secs(10);

/// One session as handed to a worker.
pub(super) struct NewSession {
    pub core: SessionCore,
    pub rtp: std::net::UdpSocket,
    pub rtcp: std::net::UdpSocket,
    pub commands: mpsc::UnboundedReceiver<MediaCommand>,
    pub lease: PortLease,
}

/// The process's media workers.
pub(super) struct MediaWorkers {
    workers: Vec<WorkerHandle>,
}

struct WorkerHandle {
    inbox: Arc<Mutex<Vec<NewSession>>>,
    waker: Waker,
    /// Sessions the worker drives (for placing new ones on the least busy worker).
    load: Arc<AtomicUsize>,
}

static WORKERS: OnceLock<MediaWorkers> = OnceLock::new();

/// Starts the workers, one per core the process may use, their threads at real-time
/// `priority` (SCHED_RR; 0: normal scheduling; see `media.realtime_priority`). The daemon
/// calls it at start; sessions started before that (tests) start the workers at normal
/// priority. Workers already running are kept as they are.
pub fn start(priority: u8) -> std::io::Result<()> {
    start_once(priority).map(|_| ())
}

/// The workers; started at normal priority if nobody started them yet.
pub(super) fn global() -> std::io::Result<&'static MediaWorkers> {
    match WORKERS.get() {
        Some(workers) => Ok(workers),
        None => start_once(0),
    }
}

fn start_once(priority: u8) -> std::io::Result<&'static MediaWorkers> {
    static START: Mutex<()> = Mutex::new(());
    // Only one caller starts threads; the others wait and take its workers.
    let _starting = START.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(workers) = WORKERS.get() {
        return Ok(workers);
    }
    let count = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = MediaWorkers::start(count, priority)?;
    Ok(WORKERS.get_or_init(|| workers))
}

/// Puts the calling thread on SCHED_RR at `priority`.
fn set_realtime(priority: u8) -> std::io::Result<()> {
    set_scheduling(libc::SCHED_RR, priority)
}

/// Puts the calling thread back on normal scheduling (threads inherit their creator's).
pub(super) fn set_normal_scheduling() {
    // Lowering one's own priority is always allowed.
    let _ = set_scheduling(libc::SCHED_OTHER, 0);
}

fn set_scheduling(policy: libc::c_int, priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: pthread_self() is the calling thread; param is a valid sched_param.
    let result = unsafe { libc::pthread_setschedparam(libc::pthread_self(), policy, &param) };
    match result {
        0 => Ok(()),
        error => Err(std::io::Error::from_raw_os_error(error)),
    }
}

impl MediaWorkers {
    fn start(count: usize, priority: u8) -> std::io::Result<MediaWorkers> {
        let workers = (0..count)
            .map(|index| {
                let wake = Poll::new()?;
                let waker = Waker::new(wake.registry(), WAKER)?;
                let inbox = Arc::new(Mutex::new(Vec::new()));
                let load = Arc::new(AtomicUsize::new(0));
                let worker = Worker {
                    wake,
                    sockets: Poll::new()?,
                    inbox: inbox.clone(),
                    load: load.clone(),
                    slots: Vec::new(),
                    free: Vec::new(),
                    due: BinaryHeap::new(),
                    buffer: vec![0u8; 2048],
                    trim_pending: false,
                    last_trim: Instant::now(),
                };
                std::thread::Builder::new()
                    .name(format!("media-{index}"))
                    .spawn(move || {
                        if priority > 0 {
                            match set_realtime(priority) {
                                Ok(()) if index == 0 => tracing::info!(
                                    workers = count,
                                    priority,
                                    "media worker threads run at real-time priority (SCHED_RR)"
                                ),
                                Ok(()) => {}
                                Err(error) if index == 0 => tracing::warn!(
                                    %error,
                                    priority,
                                    "media worker threads run at normal priority: real-time \
                                     scheduling was refused (grant CAP_SYS_NICE or set \
                                     LimitRTPRIO= in the service unit, or set \
                                     media.realtime_priority = 0 to silence this); prompts \
                                     may run late when the machine is busy"
                                ),
                                Err(_) => {}
                            }
                        }
                        worker.run()
                    })?;
                Ok(WorkerHandle { inbox, waker, load })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(MediaWorkers { workers })
    }

    /// Hands a session to the least busy worker.
    pub(super) fn add(&self, session: NewSession) -> std::io::Result<()> {
        let Some(worker) = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
        else {
            return Err(std::io::Error::other("no media worker is running"));
        };
        worker.load.fetch_add(1, Ordering::Relaxed);
        worker
            .inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
        worker.waker.wake()
    }
}

/// A session a worker drives.
struct Slot {
    core: SessionCore,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    next_stats: Instant,
    /// Told apart from a later session in the same slot (stale heap entries).
    generation: u64,
    lease: PortLease,
}

struct Worker {
    /// Where the worker sleeps: its waker only.
    wake: Poll,
    /// Readiness of its sessions' sockets, collected without blocking at each wake-up.
    sockets: Poll,
    inbox: Arc<Mutex<Vec<NewSession>>>,
    load: Arc<AtomicUsize>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Next frame deadline per session: (when, slot, generation).
    due: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    buffer: Vec<u8>,
    /// The worker's last session ended since memory was last returned to the system.
    trim_pending: bool,
    last_trim: Instant,
}

impl Worker {
    fn run(mut self) {
        let mut woken = Events::with_capacity(4);
        let mut ready = Events::with_capacity(READY_BATCH);
        let mut generation = 0u64;
        let mut last_wake = Instant::now();
        loop {
            // Sleep until the next frame is due, but at least one tick: packets that arrive
            // meanwhile wait in their sockets and are read together at the wake-up.
            let timeout = self.due.peek().map(|Reverse((at, _, _))| {
                (*at)
                    .max(last_wake + TICK)
                    .saturating_duration_since(Instant::now())
            });
            if let Err(error) = self.wake.poll(&mut woken, timeout)
                && error.kind() != ErrorKind::Interrupted
            {
                tracing::error!(%error, "a media worker cannot wait; retrying");
            }
            last_wake = Instant::now();
            if !woken.is_empty() {
                let new =
                    std::mem::take(&mut *self.inbox.lock().unwrap_or_else(|p| p.into_inner()));
                for session in new {
                    generation += 1;
                    self.admit(session, generation);
                }
            }
            self.read_ready_sockets(&mut ready);
            self.run_due_frames();
            if self.trim_pending && self.due.is_empty() && self.last_trim.elapsed() >= TRIM_SPACING
            {
                release_free_memory();
                self.trim_pending = false;
                self.last_trim = Instant::now();
            }
        }
    }

    /// Reads every socket that became readable since the last wake-up.
    fn read_ready_sockets(&mut self, ready: &mut Events) {
        loop {
            if let Err(error) = self.sockets.poll(ready, Some(Duration::ZERO))
                && error.kind() != ErrorKind::Interrupted
            {
                tracing::error!(%error, "a media worker cannot poll its sockets; retrying");
                return;
            }
            for event in ready.iter() {
                let Token(token) = event.token();
                self.receive(token / 2, token % 2 == 1);
            }
            // A full batch: more sockets may be ready.
            if ready.iter().count() < READY_BATCH {
                return;
            }
        }
    }

    fn admit(&mut self, session: NewSession, generation: u64) {
        let index = self.free.pop().unwrap_or(self.slots.len());
        let registered = (|| {
            session.rtp.set_nonblocking(true)?;
            session.rtcp.set_nonblocking(true)?;
            let mut rtp = UdpSocket::from_std(session.rtp);
            let mut rtcp = UdpSocket::from_std(session.rtcp);
            let registry = self.sockets.registry();
            registry.register(&mut rtp, Token(2 * index), Interest::READABLE)?;
            registry.register(&mut rtcp, Token(2 * index + 1), Interest::READABLE)?;
            Ok::<_, std::io::Error>((rtp, rtcp))
        })();
        let (rtp, rtcp) = match registered {
            Ok(sockets) => sockets,
            Err(error) => {
                // The owner sees its events end at once: the session never ran.
                tracing::error!(%error, port = session.lease.rtp_port(),
                    "cannot watch a call's RTP sockets; its media does not run");
                self.free.push(index);
                self.load.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        };
        let next_stats = Instant::now() + session.core.stats_interval();
        self.due
            .push(Reverse((session.core.next_deadline(), index, generation)));
        let slot = Slot {
            core: session.core,
            rtp,
            rtcp,
            commands: session.commands,
            next_stats,
            generation,
            lease: session.lease,
        };
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[index] = Some(slot);
        }
    }

    /// Reads everything waiting on one of a session's sockets (edge-triggered: to the end).
    fn receive(&mut self, index: usize, rtcp: bool) {
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        let socket = if rtcp { &slot.rtcp } else { &slot.rtp };
        loop {
            match socket.recv_from(&mut self.buffer) {
                Ok((len, source)) => {
                    let now = Instant::now();
                    if rtcp {
                        slot.core.on_rtcp(source, now);
                    } else {
                        slot.core.on_datagram(&self.buffer[..len], source, now);
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                // An ICMP error from an earlier send, or a signal: read on.
                Err(error) if error.kind() != ErrorKind::Interrupted => {
                    tracing::debug!(%error, "RTP receive error");
                }
                Err(_) => {}
            }
        }
    }

    /// Sends the frames of every session whose deadline has come, and takes its commands.
    fn run_due_frames(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, index, generation))) = self.due.peek().copied() {
            if at > now {
                break;
            }
            self.due.pop();
            let live =
                matches!(self.slots.get(index), Some(Some(slot)) if slot.generation == generation);
            if live && let Some(next) = self.frame(index, now) {
                self.due.push(Reverse((next, index, generation)));
            }
        }
    }

    /// One session's turn: commands, due frames, stats. Returns its next deadline, or `None`
    /// when it ended (and was removed).
    fn frame(&mut self, index: usize, now: Instant) -> Option<Instant> {
        let slot = self.slots.get_mut(index)?.as_mut()?;
        loop {
            match slot.commands.try_recv() {
                Ok(MediaCommand::Close) | Err(TryRecvError::Disconnected) => {
                    self.remove(index, now);
                    return None;
                }
                Ok(command) => slot.core.on_command(command, now),
                Err(TryRecvError::Empty) => break,
            }
        }
        for frame in slot.core.begin_tick(now) {
            let to = slot.core.send_address();
            let Some(datagram) = slot.core.frame_datagram(frame) else {
                continue;
            };
            let at = Instant::now();
            let sent = slot.rtp.send_to(datagram, to).is_ok();
            slot.core.note_sent(frame, at, sent);
        }
        slot.core.end_tick(now);
        if now >= slot.next_stats {
            slot.next_stats = now + slot.core.stats_interval();
            slot.core.report_stats();
        }
        Some(slot.core.next_deadline())
    }

    /// Ends a session: recording handed over for finalising, ports returned, and only then
    /// its event sender dropped; the channel closes (which tells the owner the session is
    /// over) once the recorder's thread, which holds the other sender, has finalised the
    /// file.
    fn remove(&mut self, index: usize, now: Instant) {
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return;
        };
        slot.core.shut_down(now);
        let registry = self.sockets.registry();
        let _ = registry.deregister(&mut slot.rtp);
        let _ = registry.deregister(&mut slot.rtcp);
        drop((slot.rtp, slot.rtcp, slot.lease));
        drop(slot.core);
        self.free.push(index);
        if self.load.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.trim_pending = true;
        }
    }
}

/// Hands the allocator's free memory back to the system. glibc keeps what a busy hour
/// freed (per-thread arenas), so without this the daemon's RSS stays at its peak after
/// the calls end, which hides a real leak behind the allocator's. Called when a worker has
/// had no call for a moment, at most every [`TRIM_SPACING`]: nothing waits on it then.
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
