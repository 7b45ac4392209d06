//! Transfer speed and time remaining, from samples of "bytes done so far".
//!
//! Speed is measured over a sliding window (5 s by default) rather than since the
//! start, so it follows the network as it changes and falls to zero during a stall
//! instead of coasting on old numbers. Every query takes `now_ms`: a stall produces no
//! samples at all, so only the current time can reveal it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Default width of the speed window: 5 s.
pub const DEFAULT_WINDOW_MS: u64 = 5_000;

/// Samples kept per window: a sample closer than `window / SAMPLES_PER_WINDOW` to the
/// one before the latest replaces the latest, so memory stays bounded however often
/// [`ThroughputMeter::record`] is called.
const SAMPLES_PER_WINDOW: u64 = 32;

/// Measures throughput from `(time, total bytes done)` samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThroughputMeter {
    window_ms: u64,
    /// `(now_ms, bytes_done_total)`, oldest first, times non-decreasing.
    samples: VecDeque<(u64, u64)>,
}

impl Default for ThroughputMeter {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW_MS)
    }
}

impl ThroughputMeter {
    /// A meter averaging over `window_ms` (at least 1 ms).
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms: window_ms.max(1),
            samples: VecDeque::new(),
        }
    }

    /// Records that `bytes_done_total` bytes are done at `now_ms`.
    ///
    /// A total lower than the last one (a failed part's bytes taken back for its retry)
    /// restarts the measurement from this sample, since the bytes between are unknown.
    /// A time earlier than the last sample is treated as the last sample's time.
    pub fn record(&mut self, now_ms: u64, bytes_done_total: u64) {
        let now = match self.samples.back() {
            Some(&(t, b)) if bytes_done_total < b => {
                self.samples.clear();
                now_ms.max(t)
            }
            Some(&(t, _)) => now_ms.max(t),
            None => now_ms,
        };
        // Coalesce samples that are close together: keep the latest reading exact while
        // bounding how many samples a window holds.
        // The latest sample "floats": it is replaced until it is `min_gap` past the
        // one before it, so settled samples are at least `min_gap` apart.
        let min_gap = self.window_ms / SAMPLES_PER_WINDOW;
        let len = self.samples.len();
        if len >= 2 && self.samples[len - 1].0 - self.samples[len - 2].0 < min_gap {
            self.samples.pop_back();
        }
        self.samples.push_back((now, bytes_done_total));
        self.prune(now);
    }

    /// Drops samples that can no longer matter: everything before the newest sample at
    /// or before the window's start (which anchors the window).
    fn prune(&mut self, now_ms: u64) {
        let start = now_ms.saturating_sub(self.window_ms);
        while self.samples.len() >= 2 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
    }

    /// The latest total recorded (0 before any sample).
    pub fn bytes_done(&self) -> u64 {
        self.samples.back().map_or(0, |&(_, b)| b)
    }

    /// Bytes per second over the window ending at `now_ms`: 0 before two samples span
    /// any time, and falling to 0 when nothing has been recorded for a whole window.
    pub fn speed(&self, now_ms: u64) -> u64 {
        let (Some(&(t_first, b_first)), Some(&(t_last, b_last))) =
            (self.samples.front(), self.samples.back())
        else {
            return 0;
        };
        let now = now_ms.max(t_last);
        let start = now.saturating_sub(self.window_ms);
        // Bytes done at the window's start, interpolated between the samples around it;
        // if the measurement began inside the window, measure from its first sample.
        let (b0, elapsed) = match self.samples.iter().rposition(|&(t, _)| t <= start) {
            Some(i) => {
                let (t0, b0) = self.samples[i];
                let at_start = match self.samples.get(i + 1) {
                    Some(&(t1, b1)) => {
                        let gained = u128::from(b1.saturating_sub(b0));
                        let share = gained * u128::from(start - t0) / u128::from(t1 - t0);
                        b0.saturating_add(u64::try_from(share).unwrap_or(u64::MAX))
                    }
                    None => b0,
                };
                (at_start, now - start)
            }
            None => (b_first, now - t_first),
        };
        if elapsed == 0 {
            return 0;
        }
        let bytes = b_last.saturating_sub(b0);
        u64::try_from(u128::from(bytes) * 1000 / u128::from(elapsed)).unwrap_or(u64::MAX)
    }

    /// Whole seconds until `bytes_total` is done at the current speed (rounded up):
    /// `Some(0)` once done, `None` while the speed is 0 (unknown, or stalled).
    pub fn eta_secs(&self, now_ms: u64, bytes_total: u64) -> Option<u64> {
        let remaining = bytes_total.saturating_sub(self.bytes_done());
        if remaining == 0 {
            return Some(0);
        }
        match self.speed(now_ms) {
            0 => None,
            speed => Some(remaining.div_ceil(speed)),
        }
    }

    /// A snapshot to show (or send to a room) at `now_ms`.
    pub fn progress(&self, now_ms: u64, bytes_total: u64) -> Progress {
        Progress {
            bytes_done: self.bytes_done(),
            bytes_total,
            speed: self.speed(now_ms),
            eta: self.eta_secs(now_ms, bytes_total),
        }
    }
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Bytes done.
    pub bytes_done: u64,
    /// Bytes in all.
    pub bytes_total: u64,
    /// Bytes per second over the recent window.
    pub speed: u64,
    /// Seconds left, `null` while unknown.
    pub eta: Option<u64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn at_start_nothing_is_known() {
        let m = ThroughputMeter::default();
        assert_eq!(m.speed(1_000), 0);
        assert_eq!(m.eta_secs(1_000, 100), None);
        assert_eq!(m.eta_secs(1_000, 0), Some(0));
        let mut m = ThroughputMeter::default();
        m.record(1_000, 0);
        assert_eq!(m.speed(1_000), 0);
        assert_eq!(m.eta_secs(1_000, 100), None);
        let p = m.progress(1_000, 100);
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            serde_json::json!({"bytesDone":0,"bytesTotal":100,"speed":0,"eta":null})
        );
    }

    #[test]
    fn steady_rate() {
        let mut m = ThroughputMeter::default();
        // 1 MB/s, sampled every 100 ms for 20 s.
        for i in 0..=200u64 {
            m.record(i * 100, i * 100_000);
        }
        assert_eq!(m.speed(20_000), 1_000_000);
        assert_eq!(m.eta_secs(20_000, 30_000_000), Some(10));
        assert!(m.samples.len() <= 34, "{}", m.samples.len());
        // Starting inside the window: measured from the first sample.
        let mut m = ThroughputMeter::default();
        m.record(0, 0);
        m.record(1_000, 2_000_000);
        assert_eq!(m.speed(1_000), 2_000_000);
        // Half a second later with no sample: the rate decays.
        assert_eq!(m.speed(1_500), 1_333_333);
    }

    #[test]
    fn stalls_fall_to_zero() {
        let mut m = ThroughputMeter::default();
        for i in 0..=50u64 {
            m.record(i * 100, i * 100_000);
        }
        assert_eq!(m.speed(5_000), 1_000_000);
        // No samples at all during the stall.
        assert_eq!(m.speed(7_500), 500_000);
        assert_eq!(m.speed(10_000), 0);
        assert_eq!(m.eta_secs(10_000, 10_000_000), None);
        // Samples with the same total during the stall.
        m.record(12_000, 5_000_000);
        assert_eq!(m.speed(12_000), 0);
        // Recovery.
        m.record(13_000, 6_000_000);
        assert_eq!(m.speed(13_000), 200_000);
    }

    #[test]
    fn completion_and_regressions() {
        let mut m = ThroughputMeter::default();
        m.record(0, 0);
        m.record(2_000, 100);
        assert_eq!(m.eta_secs(2_000, 100), Some(0));
        assert_eq!(m.progress(9_999, 100).eta, Some(0));
        // A failed part's bytes are taken back: measurement restarts, never negative.
        m.record(3_000, 40);
        assert_eq!(m.bytes_done(), 40);
        assert_eq!(m.speed(3_000), 0);
        m.record(4_000, 90);
        assert_eq!(m.speed(4_000), 50);
        // Time going backwards is clamped.
        m.record(3_500, 95);
        assert_eq!(m.speed(4_000), 55);
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(
            steps in proptest::collection::vec((0u64..2_000, 0u64..10_000_000, any::<bool>()), 1..300)
        ) {
            let mut m = ThroughputMeter::default();
            let (mut now, mut total) = (0u64, 0u64);
            for (dt, db, back) in steps {
                now += dt;
                total = if back { total.saturating_sub(db) } else { total + db };
                m.record(now, total);
                prop_assert!(m.samples.len() <= 40);
                let s = m.speed(now);
                // Never faster than all bytes in 1 ms.
                prop_assert!(s <= total.saturating_mul(1000));
                let _ = m.eta_secs(now, total + 1);
            }
        }
    }
}
