//! Reorder and de-duplicate buffer for one incoming RTP stream (one SSRC), keyed by
//! sequence number with 16-bit wrap-around, sans-IO.
//!
//! Packets are released in sequence order. A gap is waited for while at most `depth` packets
//! are held and the oldest held packet is younger than `max_wait`; then the gap is declared
//! lost and release goes on. Duplicates and packets older than the last release are dropped
//! (counted). A jump of more than [`RESTART_JUMP`] sequence numbers is taken as the sender
//! restarting its stream: the buffer is flushed and resynchronised.
//!
//! Owns ordering only; must not decode payloads or look at clocks itself.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A sequence jump larger than this (either way) restarts the stream.
pub const RESTART_JUMP: i32 = 3000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderStats {
    pub duplicates: u64,
    pub late: u64,
    pub lost: u64,
    pub restarts: u64,
}

#[derive(Debug)]
pub struct ReorderBuffer<T> {
    depth: usize,
    max_wait: Duration,
    /// Extended (wrap-free) sequence number of the next packet to release.
    next_release: Option<u64>,
    /// Highest extended sequence number seen, used to extend new 16-bit numbers.
    highest: Option<u64>,
    held: BTreeMap<u64, (Instant, T)>,
    stats: ReorderStats,
}

/// Extended sequence numbers start high so that packets slightly older than the first one
/// still get a positive index.
const EXTENDED_BASE: u64 = 1 << 32;

impl<T> ReorderBuffer<T> {
    pub fn new(depth: usize, max_wait: Duration) -> ReorderBuffer<T> {
        ReorderBuffer {
            depth: depth.max(1),
            max_wait,
            next_release: None,
            highest: None,
            held: BTreeMap::new(),
            stats: ReorderStats::default(),
        }
    }

    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    fn extend(&mut self, seq: u16) -> u64 {
        match self.highest {
            None => EXTENDED_BASE + u64::from(seq),
            Some(highest) => {
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(delta)
            }
        }
    }

    /// Offers a packet that arrived at `now`. Then call [`ReorderBuffer::pop`].
    pub fn push(&mut self, seq: u16, now: Instant, item: T) {
        if let Some(highest) = self.highest {
            let jump = i32::from(seq.wrapping_sub(highest as u16) as i16);
            if jump.abs() > RESTART_JUMP {
                self.stats.restarts += 1;
                self.stats.lost += self.held.len() as u64;
                self.held.clear();
                self.highest = None;
                self.next_release = None;
            }
        }
        let extended = self.extend(seq);
        if self.next_release.is_some_and(|next| extended < next) {
            self.stats.late += 1;
            return;
        }
        if self.held.contains_key(&extended) {
            self.stats.duplicates += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        if self.next_release.is_none() {
            self.next_release = Some(extended);
        }
        if self.next_release.is_some_and(|next| extended < next) {
            self.next_release = Some(extended);
        }
        self.held.insert(extended, (now, item));
    }

    /// Releases the next packet in order, if it is there or if waiting for a gap has ended.
    pub fn pop(&mut self, now: Instant) -> Option<T> {
        let (&oldest, &(arrived, _)) = self.held.first_key_value()?;
        let next = self.next_release.unwrap_or(oldest);
        let give_up_gap =
            self.held.len() > self.depth || now.saturating_duration_since(arrived) >= self.max_wait;
        if oldest != next && !give_up_gap {
            return None;
        }
        self.stats.lost += oldest.saturating_sub(next);
        self.next_release = Some(oldest + 1);
        self.held.pop_first().map(|(_, (_, item))| item)
    }

    /// Releases everything held, in order (end of call).
    pub fn drain(&mut self) -> Vec<T> {
        let items = std::mem::take(&mut self.held);
        if let Some((&last, _)) = items.last_key_value() {
            self.next_release = Some(last + 1);
        }
        items.into_values().map(|(_, item)| item).collect()
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_ready(buffer: &mut ReorderBuffer<u16>, now: Instant) -> Vec<u16> {
        std::iter::from_fn(|| buffer.pop(now)).collect()
    }

    const WAIT: Duration = Duration::from_millis(60);

    #[test]
    fn in_order_packets_pass_straight_through() {
        let now = Instant::now();
        let mut buffer = ReorderBuffer::new(3, WAIT);
        for seq in 10..20u16 {
            buffer.push(seq, now, seq);
            assert_eq!(buffer.pop(now), Some(seq));
        }
        assert_eq!(buffer.stats(), ReorderStats::default());
    }

    #[test]
    fn swapped_packets_come_out_in_order() {
        let now = Instant::now();
        let mut buffer = ReorderBuffer::new(3, WAIT);
        buffer.push(1, now, 1);
        assert_eq!(drain_ready(&mut buffer, now), vec![1]);
        buffer.push(3, now, 3);
        assert_eq!(drain_ready(&mut buffer, now), Vec::<u16>::new());
        buffer.push(2, now, 2);
        assert_eq!(drain_ready(&mut buffer, now), vec![2, 3]);
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let now = Instant::now();
        let mut buffer = ReorderBuffer::new(3, WAIT);
        buffer.push(5, now, 5);
        buffer.push(5, now, 5);
        assert_eq!(drain_ready(&mut buffer, now), vec![5]);
        buffer.push(5, now, 5);
        buffer.push(4, now, 4);
        assert_eq!(drain_ready(&mut buffer, now), Vec::<u16>::new());
        let stats = buffer.stats();
        assert_eq!((stats.duplicates, stats.late), (1, 2));
    }

    #[test]
    fn wraps_around_65535() {
        let now = Instant::now();
        let mut buffer = ReorderBuffer::new(3, WAIT);
        let mut out = Vec::new();
        for seq in [65533u16, 65535, 65534, 1, 0, 2] {
            buffer.push(seq, now, seq);
            out.extend(drain_ready(&mut buffer, now));
        }
        assert_eq!(out, vec![65533, 65534, 65535, 0, 1, 2]);
        // A retransmission of 65535 after the wrap is late, not new.
        buffer.push(65535, now, 65535);
        assert_eq!(buffer.pop(now), None);
        assert_eq!(buffer.stats().late, 1);
    }

    #[test]
    fn a_gap_is_given_up_when_depth_is_exceeded() {
        let now = Instant::now();
        let mut buffer = ReorderBuffer::new(3, WAIT);
        buffer.push(1, now, 1);
        assert_eq!(drain_ready(&mut buffer, now), vec![1]);
        for seq in [3u16, 4, 5] {
            buffer.push(seq, now, seq);
            assert_eq!(drain_ready(&mut buffer, now), Vec::<u16>::new());
        }
        buffer.push(6, now, 6);
        assert_eq!(drain_ready(&mut buffer, now), vec![3, 4, 5, 6]);
        assert_eq!(buffer.stats().lost, 1);
    }

    #[test]
    fn a_gap_is_given_up_after_max_wait() {
        let t0 = Instant::now();
        let mut buffer = ReorderBuffer::new(3, WAIT);
        buffer.push(1, t0, 1);
        buffer.push(3, t0, 3);
        assert_eq!(drain_ready(&mut buffer, t0), vec![1]);
        assert_eq!(
            drain_ready(&mut buffer, t0 + Duration::from_millis(59)),
            Vec::<u16>::new()
        );
        assert_eq!(drain_ready(&mut buffer, t0 + WAIT), vec![3]);
    }

    #[test]
    fn a_large_jump_restarts_the_stream() {
        let now = Instant::now();
        let mut buffer = ReorderBuffer::new(3, WAIT);
        buffer.push(100, now, 100);
        assert_eq!(buffer.pop(now), Some(100));
        buffer.push(40000, now, 40000);
        assert_eq!(buffer.pop(now), Some(40000));
        buffer.push(40001, now, 40001);
        assert_eq!(buffer.pop(now), Some(40001));
        assert_eq!(buffer.stats().restarts, 1);
    }

    #[test]
    fn drain_releases_everything_in_order() {
        let now = Instant::now();
        let mut buffer = ReorderBuffer::new(5, WAIT);
        for seq in [7u16, 9, 8, 11] {
            buffer.push(seq, now, seq);
        }
        assert_eq!(buffer.pop(now), Some(7));
        assert_eq!(buffer.drain(), vec![8, 9, 11]);
        assert_eq!(buffer.held(), 0);
    }
}
