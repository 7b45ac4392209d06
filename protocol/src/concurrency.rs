//! How many parts (or download ranges) to keep in flight: a sans-IO controller fed the
//! outcome of every part, answering the in-flight limit the [`PartScheduler`] obeys.
//!
//! A fixed number is wrong somewhere: on a fast link with high latency, more requests in
//! flight fill the pipe; on a link that is already full, more only add memory and
//! contention; on a flaky link, every failed part costs a retry, and fewer in flight
//! means less to resend. So the limit is measured, not configured: the caller's number
//! (`concurrency`) is only the ceiling, and it should not exceed the browser's
//! connections per host (Chromium: 6 over HTTP/1.1; requests beyond that queue inside
//! the browser, where they look like stalls).
//!
//! The rule (a throughput gradient with multiplicative decrease):
//!
//! - Time is cut into **epochs**. An epoch starts when the limit changes and ends once
//!   `limit` parts started in it have ended: every slot has been measured once. Its
//!   **rate** follows Little's law from the parts started in it: each part moved its
//!   bytes in its own time while `concurrent` parts were in flight, so the link moved
//!   `Σ concurrent × bytes / Σ time`. Parts that ran across a change of the limit are
//!   left out, and a slot the shell did not fill (nothing ready to send) is not
//!   counted as a gain.
//! - A **retryable failure or a stall** of a part started in the current epoch halves
//!   the limit at once (rounded up, at least 1) and starts a new epoch. Failures of
//!   parts started before the last change are the same trouble already answered, so a
//!   burst of failures halves the limit once, not once per part. Busy answers (the
//!   session's `503 upload_busy`) and failures no retry fixes say nothing of the link
//!   and are not fed in.
//! - A clean epoch measures the rate at the current limit. After a **probe** (the limit
//!   was raised by one), the probe is kept when the rate grew by at least half of what
//!   one more connection would add on a link that scales linearly (from `n - 1` to `n`:
//!   by `1 / (2 (n - 1))`), and the next probe follows. A probe that did not pay is
//!   undone, and the limit **holds** for 4 clean epochs before probing again, twice as
//!   long after each further failed probe in a row (up to 32 epochs): that hysteresis
//!   keeps a saturated link at its knee instead of see-sawing across it.
//! - The limit starts at [`START`] (or the ceiling, if lower) and always stays within
//!   `1..=ceiling`.
//!
//! [`ConcurrencyController::fixed`] is the other mode: one limit throughout, for the
//! benchmark, which compares uploaders at the same number in flight.
//!
//! The controller reads no clock: every outcome carries its start and end time, and
//! [`ConcurrencyController::restart`] tells it when a paused transfer goes on, so the
//! pause is not measured as a slow link.
//!
//! [`PartScheduler`]: crate::scheduler::PartScheduler

/// The limit a transfer starts with (unless the ceiling is lower): two in flight
/// already overlap one part's latency with another's transfer, and growth from there
/// is measured.
pub const START: u32 = 2;

/// Chromium's connections per host over HTTP/1.1: the default ceiling.
pub const CONNECTIONS_PER_HOST: u32 = 6;

/// What one upload measured (the [`ConcurrencyController`] adds every outcome up; the
/// link history ([`crate::link_history`]) keeps it across uploads).
/// The throughput follows Little's law, as the controller's does: each part moved its
/// bytes in its own time while `concurrent` parts were in flight, so the link moved
/// `weighted_bytes / busy_ms`, pauses and idle time excluded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkSample {
    /// `Σ concurrent × bytes` of the part attempts that succeeded.
    pub weighted_bytes: u64,
    /// `Σ` their times, in ms.
    pub busy_ms: u64,
    /// Part attempts that succeeded.
    pub succeeded: u32,
    /// Part attempts that failed retryably or stalled.
    pub failed: u32,
}

/// Clean epochs to hold after the first failed probe in a row.
const HOLD_EPOCHS: u32 = 4;
/// The hold doubles with each further failed probe in a row, up to `HOLD_EPOCHS << 3`.
const MAX_HOLD_SHIFT: u32 = 3;

/// How one part's attempt ended, as the controller sees it. Times are ms on any one
/// clock (the caller's), `started_ms <= ended_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartOutcome {
    /// The part was transferred: `bytes` between `started_ms` and `ended_ms`.
    Succeeded {
        /// Bytes the part moved.
        bytes: u64,
        /// Parts in flight when it started, itself included.
        concurrent: u32,
        /// When its attempt started.
        started_ms: u64,
        /// When it succeeded.
        ended_ms: u64,
    },
    /// A failure another attempt may fix: a network error, a reset, 5xx, 408, 429.
    Failed {
        /// When its attempt started.
        started_ms: u64,
        /// When it failed.
        ended_ms: u64,
    },
    /// No progress for the stall timeout: the attempt was aborted.
    Stalled {
        /// When its attempt started.
        started_ms: u64,
        /// When it was aborted.
        ended_ms: u64,
    },
}

impl PartOutcome {
    fn started_ms(&self) -> u64 {
        match *self {
            Self::Succeeded { started_ms, .. }
            | Self::Failed { started_ms, .. }
            | Self::Stalled { started_ms, .. } => started_ms,
        }
    }

    fn ended_ms(&self) -> u64 {
        match *self {
            Self::Succeeded {
                started_ms,
                ended_ms,
                ..
            }
            | Self::Failed {
                started_ms,
                ended_ms,
            }
            | Self::Stalled {
                started_ms,
                ended_ms,
            } => ended_ms.max(started_ms),
        }
    }
}

/// What the controller is doing with the current limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Measuring the rate at the limit; after `epochs_left` more clean epochs it probes.
    Measure { epochs_left: u32 },
    /// The limit was raised by one from a level that moved `rate` bytes/s.
    Probe { rate: u64 },
}

/// The current epoch's measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Epoch {
    start_ms: u64,
    /// Parts started in this epoch that have ended.
    ended: u32,
    /// `Σ concurrent × bytes` of the parts started in it that succeeded.
    weighted_bytes: u128,
    /// `Σ` their times, in ms.
    busy_ms: u128,
    /// The latest end of a part counted.
    end_ms: u64,
}

impl Epoch {
    fn new(start_ms: u64) -> Self {
        Self {
            start_ms,
            ended: 0,
            weighted_bytes: 0,
            busy_ms: 0,
            end_ms: start_ms,
        }
    }

    /// Bytes per second the link moved in this epoch.
    fn rate(&self) -> u64 {
        let rate = self.weighted_bytes.saturating_mul(1000) / self.busy_ms.max(1);
        u64::try_from(rate).unwrap_or(u64::MAX)
    }
}

/// The in-flight limit of one transfer: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyController {
    ceiling: u32,
    limit: u32,
    phase: Phase,
    epoch: Epoch,
    /// Failed probes in a row (reset by a probe that paid).
    failed_probes: u32,
    /// Every outcome since the last [`ConcurrencyController::take_sample`].
    sample: LinkSample,
    /// `false` for a [fixed](ConcurrencyController::fixed) limit.
    adaptive: bool,
}

impl ConcurrencyController {
    /// A controller for a transfer starting at `now_ms`, never above `ceiling` (taken as
    /// at least 1). It starts at [`START`] or the ceiling, whichever is lower.
    pub fn new(ceiling: u32, now_ms: u64) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            ceiling,
            limit: START.min(ceiling),
            phase: Phase::Measure { epochs_left: 0 },
            epoch: Epoch::new(now_ms),
            failed_probes: 0,
            sample: LinkSample::default(),
            adaptive: true,
        }
    }

    /// A controller that keeps `limit` (taken as at least 1) in flight whatever the
    /// outcomes, which it still adds to the sample: for a measurement that must compare
    /// uploaders at one concurrency (the benchmark), not for a transfer on a real link.
    pub fn fixed(limit: u32, now_ms: u64) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            adaptive: false,
            ..Self::new(limit, now_ms)
        }
    }

    /// What the outcomes fed in since the last call measured of the link (for the
    /// browser's [`LinkHistory`](crate::link_history::LinkHistory)); starts a new one.
    pub fn take_sample(&mut self) -> LinkSample {
        std::mem::take(&mut self.sample)
    }

    /// Parts that may be in flight now, `1..=ceiling`.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The most it will ever allow.
    pub fn ceiling(&self) -> u32 {
        self.ceiling
    }

    /// The transfer goes on at `now_ms` after a pause: what it measured before the
    /// pause is dropped (the pause is not a slow link) and the current limit is measured
    /// afresh.
    pub fn restart(&mut self, now_ms: u64) {
        self.epoch = Epoch::new(now_ms);
        self.phase = Phase::Measure { epochs_left: 0 };
    }

    /// Feeds the outcome of one attempt; answers the limit from now on.
    pub fn on_outcome(&mut self, outcome: PartOutcome) -> u32 {
        let started = outcome.started_ms();
        let ended = outcome.ended_ms();
        let in_epoch = started >= self.epoch.start_ms;
        match outcome {
            PartOutcome::Failed { .. } | PartOutcome::Stalled { .. } => {
                self.sample.failed = self.sample.failed.saturating_add(1);
                if in_epoch && self.adaptive {
                    self.set_limit(self.limit.div_ceil(2), ended);
                    self.phase = Phase::Measure { epochs_left: 0 };
                }
                return self.limit;
            }
            PartOutcome::Succeeded {
                bytes, concurrent, ..
            } => {
                let weighted = u128::from(bytes) * u128::from(concurrent.max(1));
                let took = (ended - started).max(1);
                let sample = &mut self.sample;
                sample.succeeded = sample.succeeded.saturating_add(1);
                sample.weighted_bytes = sample
                    .weighted_bytes
                    .saturating_add(u64::try_from(weighted).unwrap_or(u64::MAX));
                sample.busy_ms = sample.busy_ms.saturating_add(took);
                if in_epoch && self.adaptive {
                    let epoch = &mut self.epoch;
                    epoch.weighted_bytes = epoch.weighted_bytes.saturating_add(weighted);
                    epoch.busy_ms += u128::from(took);
                    epoch.end_ms = epoch.end_ms.max(ended);
                }
            }
        }
        if !self.adaptive {
            return self.limit;
        }
        if in_epoch {
            self.epoch.ended += 1;
            self.epoch.end_ms = self.epoch.end_ms.max(ended);
        }
        if self.epoch.ended >= self.limit {
            self.end_epoch();
        }
        self.limit
    }

    /// A clean epoch is over: keep, undo or start a probe.
    fn end_epoch(&mut self) {
        let rate = self.epoch.rate();
        let now = self.epoch.end_ms;
        match self.phase {
            Phase::Probe { rate: before } if !paid(before, rate, self.limit) => {
                self.failed_probes = self.failed_probes.saturating_add(1);
                let shift = (self.failed_probes - 1).min(MAX_HOLD_SHIFT);
                self.set_limit(self.limit - 1, now);
                self.phase = Phase::Measure {
                    epochs_left: HOLD_EPOCHS << shift,
                };
            }
            Phase::Probe { .. } => {
                self.failed_probes = 0;
                self.probe(rate, now);
            }
            Phase::Measure { epochs_left: 0 } => self.probe(rate, now),
            Phase::Measure { epochs_left } => {
                self.epoch = Epoch::new(now);
                self.phase = Phase::Measure {
                    epochs_left: epochs_left - 1,
                };
            }
        }
    }

    /// Raises the limit by one from a level that moved `rate`, or, at the ceiling, goes
    /// on measuring there.
    fn probe(&mut self, rate: u64, now_ms: u64) {
        if self.limit < self.ceiling {
            self.set_limit(self.limit + 1, now_ms);
            self.phase = Phase::Probe { rate };
        } else {
            self.epoch = Epoch::new(now_ms);
            self.phase = Phase::Measure { epochs_left: 0 };
        }
    }

    fn set_limit(&mut self, limit: u32, now_ms: u64) {
        self.limit = limit.clamp(1, self.ceiling);
        self.epoch = Epoch::new(now_ms);
    }
}

/// Whether going from `limit - 1` to `limit` in flight paid: the rate grew from
/// `before` to `after` by at least half of the linear gain, `1 / (2 (limit - 1))`.
fn paid(before: u64, after: u64, limit: u32) -> bool {
    let n = u128::from(limit.saturating_sub(1).max(1));
    u128::from(after) * 2 * n >= u128::from(before) * (2 * n + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::backoff::Backoff;
    use crate::scheduler::{Action, PartScheduler};
    use proptest::prelude::*;

    const MB: u64 = 1_000_000;

    fn ok(concurrent: u32, bytes: u64, started_ms: u64, ended_ms: u64) -> PartOutcome {
        PartOutcome::Succeeded {
            bytes,
            concurrent,
            started_ms,
            ended_ms,
        }
    }

    #[test]
    fn starts_at_two_within_the_ceiling() {
        assert_eq!(ConcurrencyController::new(6, 0).limit(), START);
        assert_eq!(ConcurrencyController::new(1, 0).limit(), 1);
        let c = ConcurrencyController::new(0, 0);
        assert_eq!((c.limit(), c.ceiling()), (1, 1));
    }

    #[test]
    fn a_probe_is_kept_when_the_rate_grows_and_undone_when_it_does_not() {
        let mut c = ConcurrencyController::new(6, 0);
        // Epoch at 2: two parts of 10 MB in 1 s each, side by side: 20 MB/s.
        assert_eq!(c.on_outcome(ok(2, 10 * MB, 0, 1_000)), 2);
        assert_eq!(c.on_outcome(ok(2, 10 * MB, 0, 1_000)), 3, "probe 3");
        // At 3: 30 MB/s, +50% (at least +25% needed): kept, probe 4.
        for _ in 0..2 {
            assert_eq!(c.on_outcome(ok(3, 10 * MB, 1_000, 2_000)), 3);
        }
        assert_eq!(c.on_outcome(ok(3, 10 * MB, 1_000, 2_000)), 4);
        // At 4: the same 30 MB/s (the link is full): undone, and held at 3.
        for _ in 0..3 {
            assert_eq!(c.on_outcome(ok(4, 7_500_000, 2_000, 3_000)), 4);
        }
        assert_eq!(c.on_outcome(ok(4, 7_500_000, 2_000, 3_000)), 3);
        assert_eq!(c.phase, Phase::Measure { epochs_left: 4 });
        // Four held epochs, then a fifth measures the probe's base, then it probes.
        let mut t = 3_000;
        for epoch in 0..5 {
            for i in 0..3 {
                let want = if (epoch, i) == (4, 2) { 4 } else { 3 };
                assert_eq!(
                    c.on_outcome(ok(3, 10 * MB, t, t + 1_000)),
                    want,
                    "epoch {epoch}"
                );
            }
            t += 1_000;
        }
        // That probe fails too: the hold doubles.
        for _ in 0..4 {
            c.on_outcome(ok(4, 7_500_000, t, t + 1_000));
        }
        assert_eq!(c.limit(), 3);
        assert_eq!(c.phase, Phase::Measure { epochs_left: 8 });
    }

    #[test]
    fn a_fixed_limit_holds_through_gains_failures_and_stalls_and_still_samples() {
        let mut c = ConcurrencyController::fixed(4, 0);
        assert_eq!((c.limit(), c.ceiling()), (4, 4));
        let mut t = 0;
        for round in 0..20 {
            // A rate that doubles every round would make an adaptive one probe up.
            assert_eq!(c.on_outcome(ok(4, MB << round.min(10), t, t + 1_000)), 4);
            t += 1_000;
        }
        let failed = PartOutcome::Failed {
            started_ms: t,
            ended_ms: t + 10,
        };
        let stalled = PartOutcome::Stalled {
            started_ms: t,
            ended_ms: t + 30_000,
        };
        assert_eq!(c.on_outcome(failed), 4);
        assert_eq!(c.on_outcome(stalled), 4);
        c.restart(t + 40_000);
        assert_eq!(c.limit(), 4);
        let sample = c.take_sample();
        assert_eq!((sample.succeeded, sample.failed), (20, 2));
        assert_eq!(ConcurrencyController::fixed(0, 0).limit(), 1);
        // The same outcomes move an adaptive controller off 4.
        let mut adaptive = ConcurrencyController::new(4, 0);
        adaptive.limit = 4;
        assert_eq!(adaptive.on_outcome(failed), 2);
    }

    #[test]
    fn failures_halve_once_per_epoch() {
        let mut c = ConcurrencyController::new(6, 0);
        c.limit = 6;
        let failed = |started_ms, ended_ms| PartOutcome::Failed {
            started_ms,
            ended_ms,
        };
        assert_eq!(c.on_outcome(failed(0, 100)), 3);
        // Parts started before that change failing too: the same trouble.
        assert_eq!(c.on_outcome(failed(50, 120)), 3);
        assert_eq!(
            c.on_outcome(PartOutcome::Stalled {
                started_ms: 0,
                ended_ms: 130
            }),
            3
        );
        // A part started after it: halved again, and again, never below 1.
        assert_eq!(c.on_outcome(failed(101, 200)), 2);
        assert_eq!(c.on_outcome(failed(201, 300)), 1);
        assert_eq!(c.on_outcome(failed(301, 400)), 1);
        // Clean again: it measures, then probes up.
        assert_eq!(c.on_outcome(ok(1, MB, 400, 500)), 2);
    }

    #[test]
    fn every_outcome_adds_to_the_sample() {
        let mut c = ConcurrencyController::new(6, 0);
        c.on_outcome(ok(2, 10 * MB, 0, 1_000));
        c.on_outcome(PartOutcome::Stalled {
            started_ms: 0,
            ended_ms: 30_000,
        });
        c.on_outcome(ok(1, 5 * MB, 30_000, 30_500));
        let sample = c.take_sample();
        assert_eq!(
            sample,
            LinkSample {
                weighted_bytes: 25 * MB,
                busy_ms: 1_500,
                succeeded: 2,
                failed: 1
            }
        );
        assert_eq!(c.take_sample(), LinkSample::default());
    }

    #[test]
    fn a_pause_is_not_measured() {
        let mut c = ConcurrencyController::new(6, 0);
        c.on_outcome(ok(2, 10 * MB, 0, 1_000));
        // A long pause, then the transfer goes on: the epoch starts again there.
        c.restart(1_000_000);
        assert_eq!(c.on_outcome(ok(2, 10 * MB, 1_000_000, 1_001_000)), 2);
        assert_eq!(c.on_outcome(ok(2, 10 * MB, 1_000_000, 1_001_000)), 3);
        assert_eq!(c.phase, Phase::Probe { rate: 20 * MB });
    }

    #[test]
    fn gain_threshold() {
        // From 1 to 2 the rate must grow by half; from 5 to 6, by a tenth.
        assert!(paid(100, 150, 2));
        assert!(!paid(100, 149, 2));
        assert!(paid(100, 110, 6));
        assert!(!paid(100, 109, 6));
        assert!(paid(u64::MAX / 4, u64::MAX / 2, 2) && !paid(1, 0, 2));
    }

    // ---- a simulated link -----------------------------------------------------------

    use crate::test_rng::Rng;

    /// A link in 1 ms steps: each request waits `latency_ms` (the round trip, the
    /// server's work), then moves its bytes at up to `per_conn` bytes/ms, the requests
    /// in flight sharing `capacity` bytes/ms. `loss_pct` of attempts fail part-way.
    #[derive(Clone, Copy)]
    struct Link {
        latency_ms: u64,
        per_conn: u64,
        capacity: u64,
        loss_pct: u64,
        /// Extra random delay of each request, up to this (ms): the noise of a real link.
        jitter_ms: u64,
    }

    struct Flight {
        part: u32,
        concurrent: u32,
        started: u64,
        wait_until: u64,
        left: u64,
        bytes: u64,
        /// Fails when `left` reaches this.
        fail_at: Option<u64>,
    }

    /// Runs `parts` parts of `part_bytes` through a scheduler whose limit the controller
    /// sets, over the link `link_at(now)`. Answers the limit after every outcome, with
    /// the time. Checks the invariants at every step.
    fn run(
        parts: u32,
        part_bytes: u64,
        ceiling: u32,
        seed: u64,
        link_at: impl Fn(u64) -> Link,
    ) -> Vec<(u64, u32)> {
        let mut rng = Rng(seed);
        let backoff = Backoff {
            base_ms: 10,
            cap_ms: 100,
            max_attempts: 1_000,
        };
        let mut s = PartScheduler::new(parts, START.min(ceiling), backoff, []).unwrap();
        let mut c = ConcurrencyController::new(ceiling, 0);
        let mut flight: Vec<Flight> = Vec::new();
        let mut limits = vec![(0, c.limit())];
        for now in 0..50_000_000u64 {
            let link = link_at(now);
            loop {
                match s.poll(now) {
                    Action::Start { part } => {
                        assert!(flight.len() < c.limit() as usize, "over the limit");
                        let fail_at =
                            (rng.below(100) < link.loss_pct).then(|| rng.below(part_bytes.max(1)));
                        let jitter = if link.jitter_ms > 0 {
                            rng.below(link.jitter_ms + 1)
                        } else {
                            0
                        };
                        flight.push(Flight {
                            part,
                            concurrent: flight.len() as u32 + 1,
                            started: now,
                            wait_until: now + link.latency_ms + jitter,
                            left: part_bytes,
                            bytes: part_bytes,
                            fail_at,
                        });
                    }
                    Action::Done { .. } => return limits,
                    Action::Failed { part, .. } => panic!("part {part} given up"),
                    Action::Idle | Action::WaitUntil(_) => break,
                }
            }
            let moving = flight.iter().filter(|f| f.wait_until <= now).count() as u64;
            let each = link
                .capacity
                .checked_div(moving)
                .map_or(0, |share| link.per_conn.min(share).max(1));
            let mut i = 0;
            while i < flight.len() {
                let f = &mut flight[i];
                if f.wait_until <= now {
                    f.left = f.left.saturating_sub(each);
                }
                let failed = f.fail_at.is_some_and(|at| f.left <= at);
                if f.left == 0 || failed {
                    let f = flight.swap_remove(i);
                    let limit = if failed {
                        assert!(s.on_part_failed(
                            f.part,
                            now,
                            crate::backoff::Retry::Later { after_ms: None },
                            0
                        ));
                        c.on_outcome(PartOutcome::Failed {
                            started_ms: f.started,
                            ended_ms: now,
                        })
                    } else {
                        assert!(s.on_part_succeeded(f.part, String::new()));
                        c.on_outcome(ok(f.concurrent, f.bytes, f.started, now))
                    };
                    assert!((1..=ceiling.max(1)).contains(&limit));
                    s.set_concurrency(limit);
                    limits.push((now, limit));
                } else {
                    i += 1;
                }
            }
        }
        panic!("no end");
    }

    /// The limit's time-weighted mean over `from..to` (ms).
    fn mean(limits: &[(u64, u32)], from: u64, to: u64) -> f64 {
        let mut sum = 0.0;
        for (i, &(t, l)) in limits.iter().enumerate() {
            let end = limits.get(i + 1).map_or(to, |&(t1, _)| t1).min(to);
            let start = t.max(from);
            if end > start {
                sum += (end - start) as f64 * f64::from(l);
            }
        }
        sum / (to - from) as f64
    }

    fn end_of(limits: &[(u64, u32)]) -> u64 {
        limits.last().unwrap().0
    }

    /// 10 MB/s per connection, nothing else in the way: latency-bound.
    const FAST: Link = Link {
        latency_ms: 200,
        per_conn: 10_000,
        capacity: 1_000_000,
        loss_pct: 0,
        jitter_ms: 0,
    };

    #[test]
    fn a_fast_link_grows_to_the_ceiling_and_stays() {
        for ceiling in [1, 3, 6, 16] {
            let limits = run(800, 8 * MB, ceiling, 1, |_| FAST);
            let reached = limits.iter().position(|&(_, l)| l == ceiling).unwrap();
            // Once there, it never leaves.
            assert!(
                limits[reached..].iter().all(|&(_, l)| l == ceiling),
                "{ceiling}"
            );
            // And it got there early: one probe per epoch, within the first third.
            assert!(limits[reached].0 < end_of(&limits) / 3, "{ceiling}");
        }
    }

    #[test]
    fn a_link_that_saturates_settles_at_its_knee() {
        // Each connection takes at most 10 MB/s, the link 30 MB/s: 3 fill it.
        for (seed, jitter_ms) in [(1, 0), (2, 50), (3, 200)] {
            let link = Link {
                capacity: 30_000,
                jitter_ms,
                ..FAST
            };
            let limits = run(600, 8 * MB, 6, seed, |_| link);
            let end = end_of(&limits);
            let m = mean(&limits, end / 4, end);
            assert!((2.9..=3.6).contains(&m), "jitter {jitter_ms}: mean {m}");
            // Never anywhere near the ceiling after the first probes.
            let late = limits.iter().filter(|&&(t, _)| t > end / 4);
            assert!(late.clone().all(|&(_, l)| (2..=4).contains(&l)));
        }
    }

    #[test]
    fn a_lossy_link_shrinks_and_a_clean_one_recovers() {
        // Clean for the first 60 s, 25% of attempts failing for the next 120 s, then
        // clean again.
        let link_at = |now: u64| Link {
            loss_pct: if (60_000..180_000).contains(&now) {
                25
            } else {
                0
            },
            ..FAST
        };
        let limits = run(1_200, 8 * MB, 6, 7, link_at);
        let end = end_of(&limits);
        assert!(
            end > 240_000,
            "the run outlasts the lossy period ({end} ms)"
        );
        let before = mean(&limits, 30_000, 60_000);
        let lossy = mean(&limits, 70_000, 180_000);
        let after = mean(&limits, 200_000, end);
        assert!(before > 5.9, "clean: {before}");
        assert!(lossy < 2.5, "lossy: {lossy}");
        assert!(after > 5.0, "recovered: {after}");
        assert_eq!(limits.last().unwrap().1, 6);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whatever it is fed, in whatever order: the limit stays within 1..=ceiling.
        #[test]
        fn the_limit_stays_within_bounds(
            ceiling in 0u32..20,
            outcomes in proptest::collection::vec(
                (0u8..8, 0u64..50_000_000, 0u64..100_000, 0u64..100_000), 0..300),
        ) {
            let mut c = ConcurrencyController::new(ceiling, 0);
            let mut now = 0u64;
            for (kind, bytes, took, gap) in outcomes {
                now += gap;
                let started_ms = now.saturating_sub(took);
                let limit = match kind {
                    0 => c.on_outcome(PartOutcome::Failed { started_ms, ended_ms: now }),
                    1 => c.on_outcome(PartOutcome::Stalled { started_ms, ended_ms: now }),
                    2 => { c.restart(now); c.limit() }
                    // Time may even go backwards between outcomes.
                    k => c.on_outcome(ok(u32::from(k), bytes, started_ms, now.saturating_sub(gap / 2))),
                };
                prop_assert_eq!(limit, c.limit());
                prop_assert!((1..=ceiling.max(1)).contains(&limit));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Over any link, with any loss, the scheduler never has more parts in flight
        /// than the controller allows when it starts one, and every transfer finishes.
        #[test]
        fn never_more_in_flight_than_allowed(
            seed: u64,
            ceiling in 1u32..10,
            parts in 1u32..40,
            latency_ms in 0u64..500,
            per_conn in 1_000u64..20_000,
            capacity in 1_000u64..100_000,
            loss_pct in 0u64..40,
            jitter_ms in 0u64..300,
        ) {
            let link = Link { latency_ms, per_conn, capacity, loss_pct, jitter_ms };
            // The invariants are asserted inside.
            let limits = run(parts, 2 * MB, ceiling, seed, |_| link);
            prop_assert!(limits.iter().all(|&(_, l)| (1..=ceiling).contains(&l)));
        }
    }
}
