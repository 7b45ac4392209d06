//! One upload's progress as a room shows it (docs/PROTOCOL.md, Uploads in a room).
//!
//! The uploading device may report as often as it likes; what the room sends on is
//! bounded per upload, never per report:
//!
//! - **Coalescing.** A report is broadcast at once if the last broadcast of this upload
//!   is at least [`ProgressRules::min_interval_ms`] old (250 ms: at most 4 a second);
//!   otherwise it is kept, and the newest kept value goes out when the interval has
//!   passed (the room's alarm, [`Progress::due`]), so the last value always wins and the
//!   final value is always sent.
//! - **Speed and ETA are measured here**, from the times the room received the reports,
//!   over a sliding window: the client's own figures are never trusted (and never asked
//!   for). The speed is the bytes gained since the oldest sample in the window, over the
//!   time since then, up to *now*, so an upload that stalls shows its speed falling.
//! - **Reports only move forward**, and never past the size the upload declared when it
//!   started: a backwards or oversized report is refused ([`ProgressError`]) and changes
//!   nothing.
//!
//! Pure: time is passed in, nothing is stored (a woken room restarts from the last
//! persisted byte count, which can only make the next report look faster).

use std::collections::VecDeque;

use serde::Serialize;

/// How progress is coalesced and measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressRules {
    /// Least time between two broadcasts of one upload (250 ms: at most 4 a second).
    pub min_interval_ms: u64,
    /// The sliding window speed is measured over.
    pub window_ms: u64,
    /// Least time between two kept samples: bounds memory whatever the report rate
    /// (at most `window_ms / sample_every_ms + 2` samples).
    pub sample_every_ms: u64,
}

impl Default for ProgressRules {
    fn default() -> Self {
        Self {
            min_interval_ms: 250,
            window_ms: 5_000,
            sample_every_ms: 100,
        }
    }
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProgressError {
    /// Fewer bytes than an earlier report.
    #[error(
        "bytesUploaded {got} is below the {last} already reported: progress only moves forward"
    )]
    Backwards {
        /// The refused value.
        got: u64,
        /// The last accepted value.
        last: u64,
    },
    /// More bytes than the upload's size.
    #[error("bytesUploaded {got} is past the upload's size of {total} bytes")]
    PastTotal {
        /// The refused value.
        got: u64,
        /// The upload's size.
        total: u64,
    },
}

/// What to do with an accepted report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Emit {
    /// Broadcast now (then call [`Progress::sent`]).
    Now,
    /// Keep it: the newest kept value is due at this time (ms).
    Later(u64),
}

/// Progress as a room broadcasts it (the figures of `file-upload-progress`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    /// Bytes of the file uploaded so far (plaintext bytes, as reported).
    pub bytes_uploaded: u64,
    /// The file's size.
    pub total_bytes: u64,
    /// `bytes_uploaded / total_bytes` in percent, two decimals (100 for an empty file).
    pub percentage: f64,
    /// Bytes a second over the window, as the room measured it; `null` until two
    /// reports are far enough apart to tell.
    pub upload_speed: Option<u64>,
    /// Seconds left at that speed (rounded up); `null` when the speed is unknown or 0.
    pub estimated_time_remaining: Option<u64>,
}

/// One upload's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    total: u64,
    bytes: u64,
    /// (received at, bytes) of recent reports, oldest first, at least
    /// `sample_every_ms` apart; the first is the anchor at or before the window start.
    samples: VecDeque<(u64, u64)>,
    last_sent_at: Option<u64>,
    /// A value was accepted that has not been broadcast.
    pending: bool,
}

impl Progress {
    /// The progress of an upload of `total` bytes, `bytes` of them uploaded, at `now`.
    pub fn new(total: u64, bytes: u64, now: u64) -> Self {
        Self {
            total,
            bytes: bytes.min(total),
            samples: VecDeque::from([(now, bytes.min(total))]),
            last_sent_at: None,
            pending: false,
        }
    }

    /// Bytes uploaded, as last reported.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The upload's size.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Takes a report of `bytes` uploaded, received at `now`.
    pub fn report(
        &mut self,
        now: u64,
        bytes: u64,
        rules: &ProgressRules,
    ) -> Result<Emit, ProgressError> {
        if bytes < self.bytes {
            return Err(ProgressError::Backwards {
                got: bytes,
                last: self.bytes,
            });
        }
        if bytes > self.total {
            return Err(ProgressError::PastTotal {
                got: bytes,
                total: self.total,
            });
        }
        self.bytes = bytes;
        self.sample(now, rules);
        self.pending = true;
        let ready = self.ready_at(rules);
        Ok(if now >= ready {
            Emit::Now
        } else {
            Emit::Later(ready)
        })
    }

    /// When the kept value is due to be broadcast, if one is kept.
    pub fn due(&self, rules: &ProgressRules) -> Option<u64> {
        self.pending.then(|| self.ready_at(rules))
    }

    /// Records that the current value was broadcast at `now`.
    pub fn sent(&mut self, now: u64) {
        self.last_sent_at = Some(now);
        self.pending = false;
    }

    /// The upload paused (or resumed) at `now`: the speed measured so far no longer
    /// says anything; measuring starts again from here, and nothing is kept to send.
    pub fn restart(&mut self, now: u64) {
        self.samples.clear();
        self.samples.push_back((now, self.bytes));
        self.pending = false;
    }

    /// The figures at `now`.
    pub fn view(&self, now: u64, rules: &ProgressRules) -> ProgressView {
        let speed = self.speed(now, rules);
        let left = self.total - self.bytes;
        let eta = match speed {
            _ if left == 0 => Some(0),
            Some(s) if s > 0 => Some(left.div_ceil(s)),
            _ => None,
        };
        ProgressView {
            bytes_uploaded: self.bytes,
            total_bytes: self.total,
            percentage: percentage(self.bytes, self.total),
            upload_speed: speed,
            estimated_time_remaining: eta,
        }
    }

    fn ready_at(&self, rules: &ProgressRules) -> u64 {
        self.last_sent_at
            .map_or(0, |at| at.saturating_add(rules.min_interval_ms))
    }

    /// Keeps `(now, bytes)` if the last sample is old enough (else the newest value is
    /// simply the current one), and drops samples that left the window, keeping one
    /// anchor at or before its start.
    fn sample(&mut self, now: u64, rules: &ProgressRules) {
        let keep = self
            .samples
            .back()
            .is_none_or(|&(at, _)| now >= at.saturating_add(rules.sample_every_ms));
        if keep {
            self.samples.push_back((now, self.bytes));
        }
        let start = now.saturating_sub(rules.window_ms);
        while self.samples.len() > 1 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
    }

    /// Bytes a second from the anchor of the window ending at `now` to `now`.
    fn speed(&self, now: u64, rules: &ProgressRules) -> Option<u64> {
        let start = now.saturating_sub(rules.window_ms);
        let anchor = self
            .samples
            .iter()
            .take_while(|(at, _)| *at <= start)
            .last()
            .or_else(|| self.samples.front())?;
        let (t0, b0) = *anchor;
        let elapsed = now.checked_sub(t0).filter(|ms| *ms > 0)?;
        let gained = u128::from(self.bytes.saturating_sub(b0));
        u64::try_from(gained * 1000 / u128::from(elapsed)).ok()
    }
}

/// `part / whole` in percent with two decimals; 100 for an empty whole.
pub fn percentage(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 100.0;
    }
    let hundredths = u128::from(part) * 10_000 / u128::from(whole);
    hundredths as f64 / 100.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_client_reporting_every_10ms_is_broadcast_at_most_4_times_a_second() {
        let rules = ProgressRules::default();
        let total = 1000 * MIB;
        let mut p = Progress::new(total, 0, 0);
        let mut sent = Vec::new();
        let mut now = 0;
        let mut bytes = 0;
        // 10 s of reports every 10 ms (100 a second), with the alarm firing when due.
        while now < 10_000 {
            now += 10;
            bytes += MIB / 10;
            match p.report(now, bytes, &rules).unwrap() {
                Emit::Now => {
                    sent.push((now, p.view(now, &rules)));
                    p.sent(now);
                }
                Emit::Later(at) => assert!(at > now),
            }
        }
        // The reports stop: the kept value goes out when due, and it is the last one.
        let due = p.due(&rules).unwrap();
        assert!(due <= now + rules.min_interval_ms);
        sent.push((due, p.view(due, &rules)));
        p.sent(due);
        assert_eq!(p.due(&rules), None);
        assert_eq!(sent.last().unwrap().1.bytes_uploaded, bytes);
        // At most 4 in any half-open second.
        for (i, (t, _)) in sent.iter().enumerate() {
            let in_second = sent[i..].iter().take_while(|(u, _)| *u < t + 1000).count();
            assert!(
                in_second <= 4,
                "{in_second} broadcasts in the second from {t}"
            );
        }
        assert!(sent.len() >= 40, "{} broadcasts in 10 s", sent.len());
        // Speed: 100 reports of MIB/10 a second = 10 MiB/s, measured by the room.
        let (_, mid) = &sent[20];
        let speed = mid.upload_speed.unwrap();
        assert!(
            (10 * MIB - MIB / 5..=10 * MIB + MIB / 5).contains(&speed),
            "{speed}"
        );
        let eta = mid.estimated_time_remaining.unwrap();
        assert_eq!(eta, (total - mid.bytes_uploaded).div_ceil(speed));
    }

    #[test]
    fn refuses_backwards_and_oversized_reports_and_keeps_its_state() {
        let rules = ProgressRules::default();
        let mut p = Progress::new(100, 0, 0);
        assert_eq!(p.report(10, 50, &rules), Ok(Emit::Now));
        p.sent(10);
        let before = p.clone();
        assert_eq!(
            p.report(20, 49, &rules),
            Err(ProgressError::Backwards { got: 49, last: 50 })
        );
        assert_eq!(
            p.report(20, 101, &rules),
            Err(ProgressError::PastTotal {
                got: 101,
                total: 100
            })
        );
        assert_eq!(p, before);
        // The same value again is fine (a resend), and so is the total.
        assert_eq!(p.report(30, 50, &rules), Ok(Emit::Later(260)));
        assert_eq!(p.report(40, 100, &rules), Ok(Emit::Later(260)));
        let done = p.view(260, &rules);
        assert_eq!(done.percentage, 100.0);
        assert_eq!(done.estimated_time_remaining, Some(0));
    }

    #[test]
    fn speed_falls_when_reports_stop_and_restarts_after_a_pause() {
        let rules = ProgressRules::default();
        let mut p = Progress::new(100 * MIB, 0, 0);
        for i in 1..=10 {
            let _ = p.report(i * 100, i * MIB / 10, &rules).unwrap();
        }
        // 1 MiB in 1 s.
        assert_eq!(p.view(1000, &rules).upload_speed, Some(MIB));
        // 4 s later with nothing new: the same bytes over 5 s.
        assert_eq!(p.view(5000, &rules).upload_speed, Some(MIB / 5));
        // Long after, the window holds only the anchor: nothing gained in it.
        assert_eq!(p.view(60_000, &rules).upload_speed, Some(0));
        assert_eq!(p.view(60_000, &rules).estimated_time_remaining, None);
        p.restart(60_000);
        assert_eq!(p.view(60_000, &rules).upload_speed, None);
        assert_eq!(p.due(&rules), None);
        let _ = p.report(61_000, 2 * MIB, &rules).unwrap();
        assert_eq!(p.view(61_000, &rules).upload_speed, Some(MIB));
    }

    #[test]
    fn samples_stay_bounded_whatever_the_rate() {
        let rules = ProgressRules::default();
        let mut p = Progress::new(u64::MAX, 0, 0);
        for now in 1..=100_000u64 {
            let _ = p.report(now, now, &rules).unwrap();
            assert!(p.samples.len() <= 52, "{} samples", p.samples.len());
        }
        assert_eq!(p.view(100_000, &rules).upload_speed, Some(1000));
    }

    #[test]
    fn percentages() {
        assert_eq!(percentage(0, 0), 100.0);
        assert_eq!(percentage(1, 3), 33.33);
        assert_eq!(percentage(104_857_600, 1_073_741_824), 9.76);
        assert_eq!(percentage(u64::MAX, u64::MAX), 100.0);
    }
}
