//! rtp_probe — how regularly hotlined sends its RTP, seen from the wire (a load-bench tool,
//! not part of the daemon; built as `cargo build --release --example rtp_probe`).
//!
//! usage: rtp_probe MIN_PORT MAX_PORT SOUNDS_DIR
//!        (root; loopback `lo`; stop it with SIGTERM or SIGINT)
//!
//! It watches the G.711 RTP (payload types 0 and 8) leaving the UDP source ports MIN..=MAX
//! (the daemon's `media.rtp_port_min..=rtp_port_max`; odd ports, RTCP, are skipped) and, when
//! stopped, prints one line:
//! `flows= packets= dropped= dev_p50_ms= dev_p99_ms= dev_max_ms= prompt_starts= prompt_late= prompt_worst_ms=`
//!
//! - Send deviation: per flow (source port + SSRC), a packet's offset is its kernel receive
//!   time minus 125 µs per RTP timestamp unit since the flow's first packet. The packet that
//!   left earliest relative to the 20 ms schedule has the smallest offset; every packet's
//!   deviation is its offset minus that minimum. p50 / p99 / max over all packets of all flows.
//!   The schedule is the daemon's own RTP clock, so skipped frames show as late packets.
//! - Prompt start delay: the probe knows the prompts (the daemon's `SOUNDS_DIR`, encoded to
//!   PCMU exactly as the daemon pre-encodes them, padded to whole frames) and indexes every
//!   frame whose payload no other prompt frame has. A packet carrying such a frame tells which
//!   prompt plays and where it started on the wire (its RTP timestamp minus 160 per frame
//!   into the prompt). When a flow's prompt changes (or the same prompt starts again), the
//!   delay is the new prompt's start minus the end of the one before (its start plus its
//!   length): 0 when the daemon plays them back to back, as the built-in flow does (welcome,
//!   recording notice, main menu). Gaps of 1,000 ms or more are deliberate pauses (a menu
//!   waiting for a key) and a negative gap is a prompt cut short (barge-in): neither counts.
//!   `prompt_late` counts starts over 20 ms; PCMA flows are not matched.
//!
//! Why it is cheap enough not to skew the daemon's figure: a classic BPF filter in the kernel
//! passes only the daemon's outgoing UDP (each loopback packet once: the receiving side,
//! PACKET_HOST), timestamps come from the kernel (SO_TIMESTAMPNS, so a late read does not
//! change them), and packets are read up to 64 per `recvmmsg`, waiting a few milliseconds when
//! a batch is not full, into a large socket buffer. Per packet it keeps one i32 (µs); the
//! sorting happens after the stop. `dropped` counts packets the socket buffer lost (a
//! non-zero value means the figures miss packets).

use hotline::media::g711::G711Codec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGTERM / SIGINT; the receive timeout bounds how long it goes unnoticed.
static STOP: AtomicBool = AtomicBool::new(false);

const BATCH: usize = 64;
/// Bytes kept per packet: Ethernet + IPv4 with options + UDP + RTP with CSRCs + 160-byte frame.
const SNAP: usize = 512;
const ETH_HEADER: usize = 14;
/// RTP timestamp units (8 kHz samples) per 20 ms frame.
const FRAME_SAMPLES: i64 = 160;
/// Bytes of one 20 ms G.711 frame.
const FRAME_BYTES: usize = 160;
/// Gaps of this many samples (1,000 ms) or more are deliberate pauses, not prompt start delays.
const DELIBERATE_PAUSE_SAMPLES: i64 = 8000;
const LATE_PROMPT_MS: f64 = 20.0;

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, min, max, sounds] => match (min.parse::<u16>(), max.parse::<u16>()) {
            (Ok(min), Ok(max)) if min <= max => Some((min, max, sounds)),
            _ => None,
        },
        _ => None,
    };
    let Some((min_port, max_port, sounds)) = parsed else {
        eprintln!(
            "usage: rtp_probe MIN_PORT MAX_PORT SOUNDS_DIR  (the daemon's RTP port range, \
             MIN <= MAX, 0-65535, and its media.sounds_dir)"
        );
        std::process::exit(2);
    };
    let prompts = match PromptFrames::load(std::path::Path::new(sounds)) {
        Ok(prompts) => prompts,
        Err(error) => {
            eprintln!("rtp_probe: cannot read the prompts in {sounds}: {error}");
            std::process::exit(2);
        }
    };
    match run(min_port, max_port, &prompts) {
        Ok(line) => println!("{line}"),
        Err(error) => {
            eprintln!("rtp_probe: {error}");
            std::process::exit(1);
        }
    }
}

fn run(min_port: u16, max_port: u16, prompts: &PromptFrames) -> std::io::Result<String> {
    install_stop_handlers()?;
    let socket = PacketSocket::open(min_port, max_port)?;
    let mut flows: HashMap<(u16, u32), Flow> = HashMap::new();
    let mut batch = Batch::new();
    while !STOP.load(Ordering::Relaxed) {
        let received = socket.receive(&mut batch)?;
        for index in 0..received {
            if let (Some(packet), Some(time_ns)) =
                (batch.packet(index), batch.kernel_time_ns(index))
                && let Some(rtp) = RtpPacket::parse(packet)
                && rtp.source_port % 2 == 0
            {
                flows
                    .entry((rtp.source_port, rtp.ssrc))
                    .or_insert_with(|| Flow::new(rtp.timestamp, time_ns))
                    .add(&rtp, time_ns, prompts);
            }
        }
        // A batch that was not full means we are ahead of the traffic: wait, so the next
        // call collects a fuller batch (the kernel timestamps do not depend on when we read).
        if received < BATCH {
            std::thread::sleep(std::time::Duration::from_millis(4));
        }
    }
    Ok(summary(&flows, socket.dropped()?))
}

fn install_stop_handlers() -> std::io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an atomic; no
        // SA_RESTART, so a blocked recvmmsg returns EINTR at once.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = request_stop as *const () as libc::sighandler_t;
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// An AF_PACKET socket on `lo` with the kernel filter and receive timestamps.
struct PacketSocket {
    fd: libc::c_int,
}

impl PacketSocket {
    fn open(min_port: u16, max_port: u16) -> std::io::Result<PacketSocket> {
        // Protocol 0: nothing is queued before the filter is attached and the socket bound.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let error = std::io::Error::last_os_error();
            return Err(std::io::Error::new(
                error.kind(),
                format!("cannot open a packet socket (needs root / CAP_NET_RAW): {error}"),
            ));
        }
        let socket = PacketSocket { fd };
        let mut filter = udp_source_port_filter(min_port, max_port);
        let program = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_mut_ptr(),
        };
        socket.set_option(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &program)?;
        socket.set_option(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1 as &libc::c_int)?;
        // Room for about 100 ms of 150,000 packets/s (a loopback skb takes about 1 KiB).
        socket.set_option(
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &(64 << 20) as &libc::c_int,
        )?;
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        socket.set_option(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout)?;
        let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        if index == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: sockaddr_ll is plain data; zero is a valid value for every field.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as libc::c_ushort;
        address.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        address.sll_ifindex = index as libc::c_int;
        let bound = unsafe {
            libc::bind(
                fd,
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn set_option<T>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: &T,
    ) -> std::io::Result<()> {
        let result = unsafe {
            libc::setsockopt(
                self.fd,
                level,
                name,
                (value as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Fills `batch` with up to [`BATCH`] packets; 0 after the receive timeout or a signal.
    fn receive(&self, batch: &mut Batch) -> std::io::Result<usize> {
        batch.prepare();
        let received = unsafe {
            libc::recvmmsg(
                self.fd,
                batch.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received >= 0 {
            return Ok(received as usize);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(0),
            _ => Err(error),
        }
    }

    /// Packets the kernel dropped because the socket buffer was full.
    fn dropped(&self) -> std::io::Result<u32> {
        // SAFETY: tpacket_stats is two u32 counters.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut length = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        let result = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut length,
            )
        };
        if result == 0 {
            Ok(stats.tp_drops)
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// Classic BPF: the receiving side of loopback (PACKET_HOST), IPv4, UDP, not a fragment,
/// UDP source port within `min..=max`; keeps the first [`SNAP`] bytes.
fn udp_source_port_filter(min: u16, max: u16) -> Vec<libc::sock_filter> {
    fn op(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        }
    }
    use libc::{
        BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K,
    };
    use libc::{BPF_LD, BPF_LDX, BPF_MSH, BPF_RET, BPF_W};
    // Jump offsets count instructions after the jump: instruction 12 drops, 13 keeps.
    vec![
        /* 0 */
        op(
            BPF_LD | BPF_W | BPF_ABS,
            0,
            0,
            (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32,
        ),
        /* 1 */
        op(
            BPF_JMP | BPF_JEQ | BPF_K,
            0,
            10,
            u32::from(libc::PACKET_HOST),
        ),
        /* 2 */ op(BPF_LD | BPF_H | BPF_ABS, 0, 0, 12),
        /* 3 */ op(BPF_JMP | BPF_JEQ | BPF_K, 0, 8, libc::ETH_P_IP as u32),
        /* 4 */ op(BPF_LD | BPF_B | BPF_ABS, 0, 0, ETH_HEADER as u32 + 9),
        /* 5 */ op(BPF_JMP | BPF_JEQ | BPF_K, 0, 6, libc::IPPROTO_UDP as u32),
        /* 6 */ op(BPF_LD | BPF_H | BPF_ABS, 0, 0, ETH_HEADER as u32 + 6),
        // More-fragments flag or a fragment offset: not a whole datagram.
        /* 7 */
        op(BPF_JMP | BPF_JSET | BPF_K, 4, 0, 0x3fff),
        /* 8 */ op(BPF_LDX | BPF_B | BPF_MSH, 0, 0, ETH_HEADER as u32),
        /* 9 */ op(BPF_LD | BPF_H | BPF_IND, 0, 0, ETH_HEADER as u32),
        /* 10 */ op(BPF_JMP | BPF_JGE | BPF_K, 0, 1, u32::from(min)),
        /* 11 */ op(BPF_JMP | BPF_JGT | BPF_K, 0, 1, u32::from(max)),
        /* 12 */ op(BPF_RET | BPF_K, 0, 0, 0),
        /* 13 */ op(BPF_RET | BPF_K, 0, 0, SNAP as u32),
    ]
}

/// Buffers for one `recvmmsg`: packet bytes, a control buffer per message, headers.
struct Batch {
    data: Vec<[u8; SNAP]>,
    /// One SCM_TIMESTAMPNS message (16 + 16 bytes) fits; u64 keeps cmsghdr alignment.
    control: Vec<[u64; 8]>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            data: vec![[0; SNAP]; BATCH],
            control: vec![[0; 8]; BATCH],
            // SAFETY: iovec and mmsghdr are plain data; prepare() fills in the pointers.
            iovecs: vec![unsafe { std::mem::zeroed() }; BATCH],
            headers: vec![unsafe { std::mem::zeroed() }; BATCH],
        }
    }

    /// Points every header at its buffers again (recvmmsg overwrites the lengths).
    fn prepare(&mut self) {
        for index in 0..BATCH {
            self.iovecs[index] = libc::iovec {
                iov_base: self.data[index].as_mut_ptr().cast(),
                iov_len: SNAP,
            };
            let header = &mut self.headers[index].msg_hdr;
            header.msg_name = std::ptr::null_mut();
            header.msg_namelen = 0;
            header.msg_iov = &mut self.iovecs[index];
            header.msg_iovlen = 1;
            header.msg_control = self.control[index].as_mut_ptr().cast();
            header.msg_controllen = std::mem::size_of::<[u64; 8]>();
            header.msg_flags = 0;
            self.headers[index].msg_len = 0;
        }
    }

    fn packet(&self, index: usize) -> Option<&[u8]> {
        let length = self.headers.get(index)?.msg_len as usize;
        self.data.get(index)?.get(..length.min(SNAP))
    }

    /// The kernel's receive time (CLOCK_REALTIME, ns) from the message's control data.
    fn kernel_time_ns(&self, index: usize) -> Option<i64> {
        let header = &self.headers.get(index)?.msg_hdr;
        // SAFETY: the header points at this batch's control buffer, which the kernel filled
        // with msg_controllen bytes; the CMSG macros stay within it.
        unsafe {
            let mut message = libc::CMSG_FIRSTHDR(header);
            while !message.is_null() {
                if (*message).cmsg_level == libc::SOL_SOCKET
                    && (*message).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let time =
                        std::ptr::read_unaligned(libc::CMSG_DATA(message).cast::<libc::timespec>());
                    return Some(time.tv_sec * 1_000_000_000 + time.tv_nsec);
                }
                message = libc::CMSG_NXTHDR(header, message);
            }
        }
        None
    }
}

/// The fields of one captured G.711 RTP packet that the figures need.
struct RtpPacket<'a> {
    source_port: u16,
    ssrc: u32,
    timestamp: u32,
    /// PCMU (payload type 0): only its frames are matched against the prompts.
    pcmu: bool,
    payload: &'a [u8],
}

impl RtpPacket<'_> {
    /// Ethernet + IPv4 + UDP + RTP; `None` for anything but a whole G.711 packet.
    fn parse(frame: &[u8]) -> Option<RtpPacket<'_>> {
        let ip = frame.get(ETH_HEADER..)?;
        let ip_header = usize::from(ip.first()? & 0x0f) * 4;
        if ip.first()? >> 4 != 4 || ip_header < 20 {
            return None;
        }
        let udp = ip.get(ip_header..)?;
        let source_port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
        let udp_length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
        let rtp = udp.get(8..udp_length.max(8))?;
        let first = *rtp.first()?;
        if first >> 6 != 2 {
            return None;
        }
        let second = *rtp.get(1)?;
        let payload_type = second & 0x7f;
        if payload_type != 0 && payload_type != 8 {
            // RFC 4733 events (dynamic types) and anything else: not the audio schedule.
            return None;
        }
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(rtp.get(at..at + 4)?.try_into().ok()?))
        };
        let mut payload_start = 12 + 4 * usize::from(first & 0x0f);
        if first & 0x10 != 0 {
            let extension_words = usize::from(u16::from_be_bytes([
                *rtp.get(payload_start + 2)?,
                *rtp.get(payload_start + 3)?,
            ]));
            payload_start += 4 + 4 * extension_words;
        }
        let padding = if first & 0x20 != 0 {
            usize::from(*rtp.last()?)
        } else {
            0
        };
        let payload = rtp.get(payload_start..rtp.len().checked_sub(padding)?)?;
        Some(RtpPacket {
            source_port,
            ssrc: word(8)?,
            timestamp: word(4)?,
            pcmu: payload_type == 0,
            payload,
        })
    }
}

/// The prompts' PCMU frames that identify them: payload → (prompt, frame index), and each
/// prompt's length in frames.
struct PromptFrames {
    by_payload: HashMap<[u8; FRAME_BYTES], (usize, i64)>,
    lengths: Vec<i64>,
}

impl PromptFrames {
    /// Every `*.wav` in `dir` (8 kHz mono 16-bit, as the daemon requires), encoded as the
    /// daemon does; frames that occur more than once (silence, shared audio) are left out.
    fn load(dir: &std::path::Path) -> Result<PromptFrames, String> {
        let mut by_payload = HashMap::new();
        let mut ambiguous = std::collections::HashSet::new();
        let mut lengths = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|error| error.to_string())?;
        for entry in entries {
            let path = entry.map_err(|error| error.to_string())?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("wav") {
                continue;
            }
            let reader = hound::WavReader::open(&path)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            let pcm = reader
                .into_samples::<i16>()
                .collect::<Result<Vec<i16>, _>>()
                .map_err(|error| format!("{}: {error}", path.display()))?;
            let prompt = lengths.len();
            let mut frames = 0;
            for (index, chunk) in pcm.chunks(FRAME_BYTES).enumerate() {
                let mut padded = [0i16; FRAME_BYTES];
                padded[..chunk.len()].copy_from_slice(chunk);
                let mut encoded = Vec::with_capacity(FRAME_BYTES);
                G711Codec::Pcmu.encode_into(&padded, &mut encoded);
                let Ok(key) = <[u8; FRAME_BYTES]>::try_from(encoded.as_slice()) else {
                    continue;
                };
                if by_payload.insert(key, (prompt, index as i64)).is_some() {
                    ambiguous.insert(key);
                }
                frames += 1;
            }
            lengths.push(frames);
        }
        for key in ambiguous {
            by_payload.remove(&key);
        }
        if by_payload.is_empty() {
            return Err("no prompt frames found (is it the daemon's sounds folder?)".into());
        }
        Ok(PromptFrames {
            by_payload,
            lengths,
        })
    }

    /// The prompt and frame index a PCMU payload is, if it identifies one.
    fn find(&self, payload: &[u8]) -> Option<(usize, i64)> {
        let key = <&[u8; FRAME_BYTES]>::try_from(payload).ok()?;
        self.by_payload.get(key).copied()
    }
}

/// One outgoing stream: its schedule offsets and the prompt it plays.
struct Flow {
    first_time_ns: i64,
    last_timestamp: u32,
    /// RTP timestamp since the first packet, extended past 32-bit wrap.
    elapsed_samples: i64,
    /// Per packet: receive time minus schedule time, µs, relative to the first packet.
    offsets_us: Vec<i32>,
    /// The prompt last seen playing and where it started (`elapsed_samples`).
    playing: Option<(usize, i64)>,
    /// Prompt start delays in samples (gaps under [`DELIBERATE_PAUSE_SAMPLES`]).
    prompt_delays: Vec<i64>,
}

impl Flow {
    fn new(first_timestamp: u32, first_time_ns: i64) -> Flow {
        Flow {
            first_time_ns,
            last_timestamp: first_timestamp,
            elapsed_samples: 0,
            offsets_us: Vec::new(),
            playing: None,
            prompt_delays: Vec::new(),
        }
    }

    fn add(&mut self, rtp: &RtpPacket, time_ns: i64, prompts: &PromptFrames) {
        self.elapsed_samples += i64::from(rtp.timestamp.wrapping_sub(self.last_timestamp) as i32);
        self.last_timestamp = rtp.timestamp;
        let offset_ns = time_ns - self.first_time_ns - self.elapsed_samples * 125_000;
        self.offsets_us
            .push((offset_ns / 1000).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
        let Some((prompt, frame)) = rtp.pcmu.then(|| prompts.find(rtp.payload)).flatten() else {
            return;
        };
        let start = self.elapsed_samples - frame * FRAME_SAMPLES;
        match self.playing {
            // The same playback, a frame further on.
            Some((current, current_start)) if current == prompt && current_start == start => {}
            Some((previous, previous_start)) => {
                let previous_end = previous_start + prompts.lengths[previous] * FRAME_SAMPLES;
                let gap = start - previous_end;
                if (0..DELIBERATE_PAUSE_SAMPLES).contains(&gap) {
                    self.prompt_delays.push(gap);
                }
                self.playing = Some((prompt, start));
            }
            None => self.playing = Some((prompt, start)),
        }
    }
}

fn summary(flows: &HashMap<(u16, u32), Flow>, dropped: u32) -> String {
    let mut deviations_us: Vec<i32> = Vec::new();
    let mut prompt_delays: Vec<i64> = Vec::new();
    for flow in flows.values() {
        let earliest = flow.offsets_us.iter().copied().min().unwrap_or(0);
        deviations_us.extend(flow.offsets_us.iter().map(|offset| offset - earliest));
        prompt_delays.extend(&flow.prompt_delays);
    }
    deviations_us.sort_unstable();
    let percentile_ms = |fraction: f64| -> f64 {
        if deviations_us.is_empty() {
            return 0.0;
        }
        let rank =
            ((deviations_us.len() as f64 * fraction).ceil() as usize).clamp(1, deviations_us.len());
        f64::from(deviations_us[rank - 1]) / 1000.0
    };
    let delay_ms = |samples: i64| samples as f64 / 8.0;
    let worst_delay = prompt_delays.iter().copied().max().map_or(0.0, delay_ms);
    let late = prompt_delays
        .iter()
        .filter(|&&samples| delay_ms(samples) > LATE_PROMPT_MS)
        .count();
    format!(
        "flows={} packets={} dropped={} dev_p50_ms={:.3} dev_p99_ms={:.3} dev_max_ms={:.3} \
         prompt_starts={} prompt_late={} prompt_worst_ms={:.1}",
        flows.len(),
        deviations_us.len(),
        dropped,
        percentile_ms(0.50),
        percentile_ms(0.99),
        percentile_ms(1.0),
        prompt_delays.len(),
        late,
        worst_delay,
    )
}
