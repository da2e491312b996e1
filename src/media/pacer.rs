//! The 20 ms send schedule of an outgoing RTP stream, sans-IO: callers pass `Instant`s in.
//!
//! Frame `n` is due at `start + n * 20 ms`; deadlines come from that formula, never from
//! "last send + 20 ms", so a busy process does not make the stream drift.
//!
//! Late policy: when woken late, up to [`MAX_BURST`] due frames are sent back to back (a
//! short scheduling hiccup is invisible to the peer). If more are due, the process stalled:
//! the oldest are skipped — their RTP timestamps are consumed without sending, so timestamps
//! keep matching wall time and the peer plays a gap instead of accumulating delay — and only
//! the newest [`MAX_BURST`] are sent. Playback content is not skipped (callers take one prompt
//! frame per frame actually sent), so no words are lost, they just come a bit later.
//!
//! Owns the schedule; must not sleep or touch sockets.

use std::time::{Duration, Instant};

pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Samples per 20 ms frame at 8 kHz: the RTP timestamp step.
pub const SAMPLES_PER_FRAME: u32 = 160;
/// Most frames sent in one wake-up when late.
pub const MAX_BURST: u64 = 3;

/// Upper bounds (µs) of the [`SendDeviation`] buckets; the last bucket takes the rest.
pub const SEND_DEVIATION_BOUNDS_US: [u64; 8] =
    [500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000];

/// How late frames went out after their deadline, as bucket counts (not cumulative) and a
/// sum: a histogram kept without allocating, summed into metrics by the owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendDeviation {
    /// Frames per bucket of [`SEND_DEVIATION_BOUNDS_US`], the last one beyond them all.
    pub buckets: [u64; SEND_DEVIATION_BOUNDS_US.len() + 1],
    pub sum_us: u64,
}

impl SendDeviation {
    /// Counts one frame sent `late` after its deadline.
    pub fn note(&mut self, late: Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let bucket = SEND_DEVIATION_BOUNDS_US
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(SEND_DEVIATION_BOUNDS_US.len());
        self.buckets[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(micros);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueFrames {
    /// Frame indices to send now, oldest first.
    pub send: std::ops::Range<u64>,
    /// How many frames before `send.start` were skipped in this wake-up.
    pub skipped: u64,
}

#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    next_frame: u64,
}

impl Pacer {
    pub fn new(start: Instant) -> Pacer {
        Pacer {
            start,
            next_frame: 0,
        }
    }

    /// When the next frame is due: sleep until then.
    pub fn next_deadline(&self) -> Instant {
        // u32 frames of 20 ms last 2.7 years: saturating is only a guard.
        self.start + FRAME_DURATION * u32::try_from(self.next_frame).unwrap_or(u32::MAX)
    }

    /// When frame `frame` is (or was) due.
    pub fn deadline_of(&self, frame: u64) -> Instant {
        self.start + FRAME_DURATION * u32::try_from(frame).unwrap_or(u32::MAX)
    }

    /// Index of the next frame to be sent.
    pub fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// The frames due at `now`, applying the late policy. Consumes them.
    pub fn poll(&mut self, now: Instant) -> DueFrames {
        let elapsed = now.saturating_duration_since(self.start);
        // Frames whose deadline is <= now: indices 0 ..= elapsed / 20 ms.
        let due_until = (elapsed.as_micros() / FRAME_DURATION.as_micros()) as u64 + 1;
        if due_until <= self.next_frame {
            return DueFrames {
                send: self.next_frame..self.next_frame,
                skipped: 0,
            };
        }
        let first_sent = self.next_frame.max(due_until.saturating_sub(MAX_BURST));
        let skipped = first_sent - self.next_frame;
        self.next_frame = due_until;
        DueFrames {
            send: first_sent..due_until,
            skipped,
        }
    }

    /// Sample position (8 kHz media clock) of `now` relative to the stream start.
    pub fn media_sample_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        (elapsed.as_micros() * 8 / 1000) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn send_deviation_buckets_each_frame_by_its_lateness() {
        let mut deviation = SendDeviation::default();
        deviation.note(Duration::from_micros(300));
        deviation.note(ms(1));
        deviation.note(ms(15));
        deviation.note(ms(500));
        assert_eq!(deviation.buckets, [1, 1, 0, 0, 0, 1, 0, 0, 1]);
        assert_eq!(deviation.sum_us, 300 + 1_000 + 15_000 + 500_000);
        assert_eq!(deviation.count(), 4);
        let pacer = Pacer::new(Instant::now());
        assert_eq!(pacer.deadline_of(3) - pacer.deadline_of(0), ms(60));
    }

    #[test]
    fn on_time_wakeups_send_one_frame_each() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        assert_eq!(pacer.next_deadline(), t0);
        for n in 0..100u64 {
            let deadline = pacer.next_deadline();
            assert_eq!(deadline, t0 + ms(20 * n));
            let due = pacer.poll(deadline);
            assert_eq!(due.send, n..n + 1);
            assert_eq!(due.skipped, 0);
        }
    }

    #[test]
    fn a_slightly_late_wakeup_does_not_drift_the_schedule() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        pacer.poll(t0);
        // Woken 7 ms late for frame 1: still only frame 1, and frame 2 stays at 40 ms.
        assert_eq!(pacer.poll(t0 + ms(27)).send, 1..2);
        assert_eq!(pacer.next_deadline(), t0 + ms(40));
        // An early spurious wake-up sends nothing.
        assert_eq!(pacer.poll(t0 + ms(39)).send, 2..2);
    }

    #[test]
    fn a_short_hiccup_bursts_the_due_frames() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        pacer.poll(t0);
        let due = pacer.poll(t0 + ms(61));
        assert_eq!(due.send, 1..4);
        assert_eq!(due.skipped, 0);
        assert_eq!(pacer.next_deadline(), t0 + ms(80));
    }

    #[test]
    fn a_long_stall_skips_ahead_keeping_the_newest_frames() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        pacer.poll(t0);
        let due = pacer.poll(t0 + ms(1000));
        // Frames 1..=50 were due; 1..=47 skipped, 48..=50 sent.
        assert_eq!(due.send, 48..51);
        assert_eq!(due.skipped, 47);
        assert_eq!(pacer.next_deadline(), t0 + ms(1020));
    }

    #[test]
    fn media_clock_counts_8khz_samples() {
        let t0 = Instant::now();
        let pacer = Pacer::new(t0);
        assert_eq!(pacer.media_sample_at(t0 + ms(20)), 160);
        assert_eq!(pacer.media_sample_at(t0 + Duration::from_secs(2)), 16000);
    }
}
