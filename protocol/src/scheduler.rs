//! Which part to upload next, and when: the client's upload loop as a sans-IO state
//! machine.
//!
//! The scheduler performs no I/O and reads no clock. The shell (the wasm client) feeds
//! it events (`on_part_succeeded`, `on_part_failed`, `pause`, ...) and asks it what to
//! do with [`UploadScheduler::poll`], passing the current time; it carries out the
//! returned [`Action`] and polls again after the next event or at the time it was told
//! to wait until. Because time and randomness come in as arguments, the whole upload
//! loop (concurrency, retries, backoff, pause, resume) is tested here deterministically
//! against a simulated network.
//!
//! Guarantees: never more than `concurrency` parts in flight; first attempts start in
//! ascending part order (a ready retry goes before a new part); a failed part is retried
//! after its backoff delay or reported as [`Action::Failed`], never dropped; the upload
//! is [`Action::Done`] only when every part has an ETag.
//!
//! How a shell drives it:
//!
//! ```
//! use sealdrop_protocol::backoff::Backoff;
//! use sealdrop_protocol::scheduler::{Action, UploadScheduler};
//!
//! let mut s = UploadScheduler::new(3, 2, Backoff::default(), []).unwrap();
//! let mut now = 0;
//! loop {
//!     match s.poll(now) {
//!         // Start the PUT; report its outcome later with on_part_succeeded/failed.
//!         Action::Start { part } => {
//!             let _ = s.on_part_succeeded(part, format!("\"etag-{part}\""));
//!         }
//!         Action::WaitUntil(t) => now = t, // sleep until t, or until an event
//!         Action::Idle => unreachable!("this example finishes every PUT at once"),
//!         Action::Done { etags } => {
//!             assert_eq!(etags.len(), 3);
//!             break;
//!         }
//!         Action::Failed { .. } | Action::Cancelled => unreachable!(),
//!     }
//! }
//! ```

use std::collections::BTreeMap;

use crate::backoff::Backoff;

/// What the shell should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Upload this part (1-based) now, then report the outcome.
    Start {
        /// The part to upload.
        part: u32,
    },
    /// Nothing to start before this time (ms): poll again then, or on any event.
    WaitUntil(u64),
    /// Nothing to start until an event: every slot is busy, or the upload is paused.
    Idle,
    /// Every part is uploaded: complete the upload with these `(part, etag)`, ascending.
    Done {
        /// One ETag per part, in part order.
        etags: Vec<(u32, String)>,
    },
    /// A part failed for good (the lowest such part). The upload stays resumable:
    /// [`UploadScheduler::resume`] retries it with fresh attempts.
    Failed {
        /// The part that failed.
        part: u32,
        /// Why it was given up.
        reason: FailReason,
    },
    /// The upload was cancelled; the shell aborts it on the server.
    Cancelled,
}

/// Why a part was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The failure was not retryable (e.g. a 4xx other than 408/429).
    NotRetryable,
    /// Every allowed attempt failed.
    AttemptsExhausted {
        /// How many attempts were made.
        attempts: u32,
    },
}

/// A scheduler cannot be built from these arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// There must be at least one part (a plan always has one).
    #[error("an upload has at least one part")]
    NoParts,
    /// At least one part must be allowed in flight.
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    /// A confirmed part is not in `1..=part_count`.
    #[error("confirmed part {0} is not a part of this upload")]
    InvalidPart(u32),
}

/// Where one part stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// Never started.
    Fresh,
    /// Being uploaded; `attempts` includes this one.
    InFlight { attempts: u32 },
    /// Failed `attempts` times; to be retried (it is in `waiting`).
    Waiting { attempts: u32 },
    /// Uploaded.
    Done { etag: String },
    /// Given up (it is in `failed`).
    Failed { attempts: u32 },
}

/// The upload loop's state: see the module documentation.
#[derive(Debug, Clone)]
pub struct UploadScheduler {
    backoff: Backoff,
    concurrency: u32,
    /// Index `part - 1`.
    slots: Vec<Slot>,
    /// No part below this one is `Fresh`.
    next_fresh: u32,
    /// Parts to retry, with the earliest time each may start.
    waiting: BTreeMap<u32, u64>,
    /// Parts given up, with why.
    failed: BTreeMap<u32, FailReason>,
    in_flight: u32,
    done: u32,
    paused: bool,
    cancelled: bool,
}

impl UploadScheduler {
    /// A scheduler for parts `1..=part_count`, at most `concurrency` at a time, retrying
    /// per `backoff`. `confirmed` are parts already uploaded (with their ETags), e.g.
    /// from the session's status when resuming: they are never uploaded again.
    pub fn new(
        part_count: u32,
        concurrency: u32,
        backoff: Backoff,
        confirmed: impl IntoIterator<Item = (u32, String)>,
    ) -> Result<Self, SchedulerError> {
        if part_count == 0 {
            return Err(SchedulerError::NoParts);
        }
        if concurrency == 0 {
            return Err(SchedulerError::ZeroConcurrency);
        }
        let mut slots = vec![Slot::Fresh; part_count as usize];
        let mut done = 0;
        for (part, etag) in confirmed {
            let slot = part
                .checked_sub(1)
                .and_then(|i| slots.get_mut(i as usize))
                .ok_or(SchedulerError::InvalidPart(part))?;
            if !matches!(slot, Slot::Done { .. }) {
                done += 1;
            }
            *slot = Slot::Done { etag };
        }
        Ok(Self {
            backoff,
            concurrency,
            slots,
            next_fresh: 1,
            waiting: BTreeMap::new(),
            failed: BTreeMap::new(),
            in_flight: 0,
            done,
            paused: false,
            cancelled: false,
        })
    }

    /// What to do now. Call it after every event and whenever a `WaitUntil` time
    /// passes; when it answers `Start`, the part is counted in flight at once.
    pub fn poll(&mut self, now_ms: u64) -> Action {
        if self.cancelled {
            return Action::Cancelled;
        }
        if let Some((&part, &reason)) = self.failed.first_key_value() {
            return Action::Failed { part, reason };
        }
        if self.done == self.part_count() {
            return Action::Done {
                etags: self.etags(),
            };
        }
        if self.paused || self.in_flight >= self.concurrency {
            return Action::Idle;
        }
        // A retry whose delay has passed goes first: it is the oldest work.
        let ready = self
            .waiting
            .iter()
            .find(|&(_, &not_before)| not_before <= now_ms)
            .map(|(&part, _)| part);
        if let Some(part) = ready {
            self.waiting.remove(&part);
            return self.start(part);
        }
        if let Some(part) = self.next_fresh_part() {
            return self.start(part);
        }
        match self.waiting.values().min() {
            Some(&t) => Action::WaitUntil(t),
            None => Action::Idle,
        }
    }

    /// Part `part` was uploaded and storage answered `etag`. Events about a part that
    /// is not in flight (late, duplicated) are ignored; answers whether it was used.
    pub fn on_part_succeeded(&mut self, part: u32, etag: String) -> bool {
        let Some(Slot::InFlight { .. }) = self.slot(part) else {
            return false;
        };
        self.set(part, Slot::Done { etag });
        self.in_flight -= 1;
        self.done += 1;
        true
    }

    /// Part `part` failed at `now_ms`. A retryable failure (see
    /// [`crate::backoff::should_retry`]) is retried after a backoff delay drawn with
    /// `random`, until the part has had `max_attempts` attempts; then, or at once for a
    /// failure that is not retryable, the part is given up and `poll` answers `Failed`.
    /// Events about a part that is not in flight are ignored; answers whether it was
    /// used.
    pub fn on_part_failed(&mut self, part: u32, now_ms: u64, retryable: bool, random: u32) -> bool {
        let Some(&Slot::InFlight { attempts }) = self.slot(part) else {
            return false;
        };
        self.in_flight -= 1;
        if !retryable {
            self.give_up(part, attempts, FailReason::NotRetryable);
        } else if !self.backoff.allows_another(attempts) {
            self.give_up(part, attempts, FailReason::AttemptsExhausted { attempts });
        } else {
            let delay = self.backoff.delay_ms(attempts - 1, random);
            self.set(part, Slot::Waiting { attempts });
            self.waiting.insert(part, now_ms.saturating_add(delay));
        }
        true
    }

    /// The shell stopped part `part` itself (on pause, or closing the page): it goes
    /// back to the queue, ready at once, and the attempt does not count.
    pub fn on_part_aborted(&mut self, part: u32) -> bool {
        let Some(&Slot::InFlight { attempts }) = self.slot(part) else {
            return false;
        };
        self.in_flight -= 1;
        self.set(
            part,
            Slot::Waiting {
                attempts: attempts - 1,
            },
        );
        self.waiting.insert(part, 0);
        true
    }

    /// Starts nothing new until [`UploadScheduler::resume`]; parts in flight finish
    /// (or the shell aborts them and reports [`UploadScheduler::on_part_aborted`]).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Continues after [`UploadScheduler::pause`] or after `Failed`: parts given up are
    /// queued again, ready at once, with a fresh set of attempts.
    pub fn resume(&mut self) {
        self.paused = false;
        for (part, _) in std::mem::take(&mut self.failed) {
            self.set(part, Slot::Waiting { attempts: 0 });
            self.waiting.insert(part, 0);
        }
    }

    /// Stops for good: `poll` answers `Cancelled` from now on.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// Parts in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Parts uploaded (including those confirmed at construction).
    pub fn done_count(&self) -> u32 {
        self.done
    }

    /// Number of parts.
    pub fn part_count(&self) -> u32 {
        // Built from a u32 part count, so the length fits.
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Whether [`UploadScheduler::pause`] is in effect.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The ETag of part `part`, once uploaded (to persist for resume).
    pub fn etag(&self, part: u32) -> Option<&str> {
        match self.slot(part) {
            Some(Slot::Done { etag }) => Some(etag),
            _ => None,
        }
    }

    // -- internals ---------------------------------------------------------------

    fn slot(&self, part: u32) -> Option<&Slot> {
        part.checked_sub(1).and_then(|i| self.slots.get(i as usize))
    }

    fn set(&mut self, part: u32, slot: Slot) {
        if let Some(s) = part
            .checked_sub(1)
            .and_then(|i| self.slots.get_mut(i as usize))
        {
            *s = slot;
        }
    }

    fn start(&mut self, part: u32) -> Action {
        let attempts = match self.slot(part) {
            Some(Slot::Waiting { attempts }) => attempts + 1,
            _ => 1,
        };
        self.set(part, Slot::InFlight { attempts });
        self.in_flight += 1;
        Action::Start { part }
    }

    fn give_up(&mut self, part: u32, attempts: u32, reason: FailReason) {
        self.set(part, Slot::Failed { attempts });
        self.failed.insert(part, reason);
    }

    /// The lowest never-started part, moving the cursor past everything else.
    fn next_fresh_part(&mut self) -> Option<u32> {
        while let Some(slot) = self.slot(self.next_fresh) {
            if *slot == Slot::Fresh {
                return Some(self.next_fresh);
            }
            self.next_fresh += 1;
        }
        None
    }

    fn etags(&self) -> Vec<(u32, String)> {
        (1..)
            .zip(&self.slots)
            .filter_map(|(part, slot)| match slot {
                Slot::Done { etag } => Some((part, etag.clone())),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn sched(parts: u32, conc: u32) -> UploadScheduler {
        UploadScheduler::new(parts, conc, Backoff::default(), []).unwrap()
    }

    fn etag(part: u32) -> String {
        format!("\"e{part}\"")
    }

    #[test]
    fn construction_errors() {
        let b = Backoff::default();
        assert_eq!(
            UploadScheduler::new(0, 1, b, []).unwrap_err(),
            SchedulerError::NoParts
        );
        assert_eq!(
            UploadScheduler::new(1, 0, b, []).unwrap_err(),
            SchedulerError::ZeroConcurrency
        );
        for bad in [0, 4] {
            assert_eq!(
                UploadScheduler::new(3, 1, b, [(bad, etag(bad))]).unwrap_err(),
                SchedulerError::InvalidPart(bad)
            );
        }
    }

    #[test]
    fn starts_in_order_up_to_concurrency() {
        let mut s = sched(5, 2);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        assert_eq!(s.poll(0), Action::Idle);
        assert_eq!(s.in_flight(), 2);
        assert!(s.on_part_succeeded(2, etag(2)));
        assert_eq!(s.poll(0), Action::Start { part: 3 });
        assert_eq!(s.poll(0), Action::Idle);
        for p in [1, 3] {
            assert!(s.on_part_succeeded(p, etag(p)));
        }
        assert_eq!(s.poll(0), Action::Start { part: 4 });
        assert_eq!(s.poll(0), Action::Start { part: 5 });
        assert!(s.on_part_succeeded(5, etag(5)));
        assert_eq!(s.poll(0), Action::Idle);
        assert!(s.on_part_succeeded(4, etag(4)));
        let done = Action::Done {
            etags: (1..=5).map(|p| (p, etag(p))).collect(),
        };
        assert_eq!(s.poll(0), done);
        assert_eq!(s.poll(99), done);
        assert_eq!(s.done_count(), 5);
    }

    #[test]
    fn resume_skips_confirmed_parts() {
        let b = Backoff::default();
        let mut s =
            UploadScheduler::new(4, 4, b, [(1, etag(1)), (3, etag(3)), (3, etag(3))]).unwrap();
        assert_eq!(s.done_count(), 2);
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        assert_eq!(s.poll(0), Action::Start { part: 4 });
        assert_eq!(s.poll(0), Action::Idle);
        s.on_part_succeeded(2, etag(2));
        s.on_part_succeeded(4, etag(4));
        assert_eq!(
            s.poll(0),
            Action::Done {
                etags: (1..=4).map(|p| (p, etag(p))).collect()
            }
        );
        // Everything confirmed: done at once.
        let mut s = UploadScheduler::new(1, 1, b, [(1, etag(1))]).unwrap();
        assert_eq!(
            s.poll(0),
            Action::Done {
                etags: vec![(1, etag(1))]
            }
        );
    }

    #[test]
    fn retries_wait_for_their_backoff() {
        let mut s = sched(3, 1);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        // random = u32::MAX: the full ceiling, 500 ms for the first retry.
        assert!(s.on_part_failed(1, 1_000, true, u32::MAX));
        // The slot is free and part 2 is fresh: it goes meanwhile.
        assert_eq!(s.poll(1_000), Action::Start { part: 2 });
        assert!(s.on_part_succeeded(2, etag(2)));
        assert_eq!(s.poll(1_010), Action::Start { part: 3 });
        assert!(s.on_part_succeeded(3, etag(3)));
        assert_eq!(s.poll(1_020), Action::WaitUntil(1_500));
        assert_eq!(s.poll(1_499), Action::WaitUntil(1_500));
        assert_eq!(s.poll(1_500), Action::Start { part: 1 });
        // Second failure: ceiling 1000 ms.
        assert!(s.on_part_failed(1, 2_000, true, u32::MAX));
        assert_eq!(s.poll(2_000), Action::WaitUntil(3_000));
        assert_eq!(s.poll(3_000), Action::Start { part: 1 });
        assert!(s.on_part_succeeded(1, etag(1)));
        assert!(matches!(s.poll(3_000), Action::Done { .. }));
    }

    #[test]
    fn a_ready_retry_goes_before_a_new_part() {
        let mut s = sched(3, 1);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        s.on_part_failed(1, 0, true, 0); // delay 0
        assert_eq!(s.poll(0), Action::Start { part: 1 });
    }

    #[test]
    fn gives_up_after_max_attempts_then_resumes() {
        let backoff = Backoff {
            base_ms: 10,
            cap_ms: 10,
            max_attempts: 3,
        };
        let mut s = UploadScheduler::new(2, 1, backoff, []).unwrap();
        let mut now = 0;
        for attempt in 1..=3 {
            assert_eq!(s.poll(now), Action::Start { part: 1 }, "attempt {attempt}");
            s.on_part_failed(1, now, true, u32::MAX);
            now += 10;
            if attempt < 3 {
                // Part 2 ran meanwhile on the first failure; afterwards we wait.
                if attempt == 1 {
                    assert_eq!(s.poll(now - 10), Action::Start { part: 2 });
                    s.on_part_succeeded(2, etag(2));
                }
                assert_eq!(s.poll(now - 1), Action::WaitUntil(now));
            }
        }
        let failed = Action::Failed {
            part: 1,
            reason: FailReason::AttemptsExhausted { attempts: 3 },
        };
        assert_eq!(s.poll(now), failed);
        assert_eq!(s.poll(now + 1_000_000), failed);
        s.resume();
        assert_eq!(s.poll(now), Action::Start { part: 1 });
        s.on_part_succeeded(1, etag(1));
        assert!(matches!(s.poll(now), Action::Done { .. }));
    }

    #[test]
    fn not_retryable_fails_at_once() {
        let mut s = sched(3, 3);
        for p in 1..=3 {
            assert_eq!(s.poll(0), Action::Start { part: p });
        }
        s.on_part_failed(2, 0, false, 0);
        let failed = Action::Failed {
            part: 2,
            reason: FailReason::NotRetryable,
        };
        assert_eq!(s.poll(0), failed);
        // Parts in flight still report; their results are kept.
        assert!(s.on_part_succeeded(1, etag(1)));
        s.on_part_failed(3, 0, false, 0);
        assert_eq!(s.poll(0), failed); // lowest failed part first
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.done_count(), 1);
    }

    #[test]
    fn stale_and_unknown_events_are_ignored() {
        let mut s = sched(2, 1);
        assert!(!s.on_part_succeeded(1, etag(1))); // not started
        assert!(!s.on_part_failed(0, 0, true, 0));
        assert!(!s.on_part_failed(3, 0, true, 0));
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        assert!(s.on_part_succeeded(1, etag(1)));
        assert!(!s.on_part_succeeded(1, "\"other\"".into())); // duplicate
        assert!(!s.on_part_failed(1, 0, true, 0)); // late failure of a done part
        assert_eq!(s.etag(1), Some(etag(1).as_str()));
        assert_eq!(s.done_count(), 1);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn pause_resume_and_abort() {
        let mut s = sched(3, 2);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        s.pause();
        assert!(s.is_paused());
        assert!(s.on_part_succeeded(1, etag(1)));
        assert_eq!(s.poll(0), Action::Idle);
        // The shell aborts part 2 while paused: it is not an attempt.
        assert!(s.on_part_aborted(2));
        assert_eq!(s.poll(0), Action::Idle);
        assert_eq!(s.in_flight(), 0);
        s.resume();
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        assert_eq!(s.poll(0), Action::Start { part: 3 });
        for p in [2, 3] {
            s.on_part_succeeded(p, etag(p));
        }
        assert!(matches!(s.poll(0), Action::Done { .. }));
        // Aborting doesn't consume attempts: 1 allowed attempt survives any aborts.
        let one = Backoff {
            max_attempts: 1,
            ..Backoff::default()
        };
        let mut s = UploadScheduler::new(1, 1, one, []).unwrap();
        for _ in 0..5 {
            assert_eq!(s.poll(0), Action::Start { part: 1 });
            s.on_part_aborted(1);
        }
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        s.on_part_failed(1, 0, true, 0);
        assert_eq!(
            s.poll(0),
            Action::Failed {
                part: 1,
                reason: FailReason::AttemptsExhausted { attempts: 1 }
            }
        );
    }

    #[test]
    fn cancel_is_final() {
        let mut s = sched(2, 2);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        s.cancel();
        assert_eq!(s.poll(0), Action::Cancelled);
        s.on_part_succeeded(1, etag(1));
        s.resume();
        assert_eq!(s.poll(0), Action::Cancelled);
        assert_eq!(s.in_flight(), 0);
    }

    // ---- simulated network -------------------------------------------------------

    /// SplitMix64: a tiny deterministic PRNG for the simulation.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn u32(&mut self) -> u32 {
            (self.next() >> 32) as u32
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Outcome {
        Ok,
        Retryable,
        Fatal,
    }

    struct Net {
        /// Percent of PUTs that fail retryably / fatally.
        retryable_pct: u64,
        fatal_pct: u64,
    }

    /// What a simulated upload ended as.
    #[derive(Debug)]
    enum End {
        Done,
        Failed(u32, FailReason),
    }

    /// Drives a scheduler to the end against a simulated network, checking every
    /// guarantee at every step. The harness owns the clock.
    fn simulate(
        seed: u64,
        parts: u32,
        conc: u32,
        backoff: Backoff,
        net: &Net,
        confirmed: &[u32],
    ) -> End {
        let mut rng = Rng(seed);
        let mut s = UploadScheduler::new(
            parts,
            conc,
            backoff,
            confirmed.iter().map(|&p| (p, etag(p))),
        )
        .unwrap();
        let mut now = 0u64;
        // In flight: (finish time, part, outcome).
        let mut flight: Vec<(u64, u32, Outcome)> = Vec::new();
        let mut successes = vec![0u32; parts as usize + 1];
        let mut failures = vec![0u32; parts as usize + 1];
        let mut earliest_retry = vec![0u64; parts as usize + 1];
        let mut started = vec![false; parts as usize + 1];
        let mut last_first_start = 0u32;
        for &p in confirmed {
            successes[p as usize] = 1;
            started[p as usize] = true;
        }
        for _step in 0..1_000_000 {
            assert!(s.in_flight() <= conc);
            assert_eq!(s.in_flight() as usize, flight.len());
            match s.poll(now) {
                Action::Start { part } => {
                    let i = part as usize;
                    assert!(successes[i] == 0, "part {part} started after it was done");
                    assert!(
                        !flight.iter().any(|f| f.1 == part),
                        "part {part} started twice"
                    );
                    if !started[i] {
                        assert!(part > last_first_start, "first attempts out of order");
                        last_first_start = part;
                        started[i] = true;
                    }
                    assert!(
                        now >= earliest_retry[i],
                        "retry of {part} before its backoff"
                    );
                    let roll = rng.below(100);
                    let outcome = if roll < net.fatal_pct {
                        Outcome::Fatal
                    } else if roll < net.fatal_pct + net.retryable_pct {
                        Outcome::Retryable
                    } else {
                        Outcome::Ok
                    };
                    flight.push((now + 1 + rng.below(400), part, outcome));
                }
                Action::WaitUntil(t) => {
                    assert!(t > now, "WaitUntil({t}) at {now}");
                    let next_event = flight.iter().map(|f| f.0).min();
                    // Either the event comes first, or the wake-up.
                    match next_event {
                        Some(e) if e <= t => deliver(
                            &mut s,
                            &mut flight,
                            &mut now,
                            &mut rng,
                            &mut successes,
                            &mut failures,
                            &mut earliest_retry,
                            backoff,
                        ),
                        _ => now = t,
                    }
                }
                Action::Idle => {
                    assert!(!flight.is_empty(), "Idle with nothing in flight: deadlock");
                    deliver(
                        &mut s,
                        &mut flight,
                        &mut now,
                        &mut rng,
                        &mut successes,
                        &mut failures,
                        &mut earliest_retry,
                        backoff,
                    );
                }
                Action::Done { etags } => {
                    assert!(flight.is_empty());
                    assert_eq!(etags, (1..=parts).map(|p| (p, etag(p))).collect::<Vec<_>>());
                    assert!(
                        successes[1..].iter().all(|&n| n == 1),
                        "every part done exactly once"
                    );
                    return End::Done;
                }
                Action::Failed { part, reason } => {
                    if let FailReason::AttemptsExhausted { attempts } = reason {
                        assert_eq!(attempts, backoff.max_attempts);
                        assert!(failures[part as usize] >= backoff.max_attempts);
                    }
                    assert_eq!(successes[part as usize], 0);
                    return End::Failed(part, reason);
                }
                Action::Cancelled => unreachable!(),
            }
        }
        panic!("no end after a million steps");
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        s: &mut UploadScheduler,
        flight: &mut Vec<(u64, u32, Outcome)>,
        now: &mut u64,
        rng: &mut Rng,
        successes: &mut [u32],
        failures: &mut [u32],
        earliest_retry: &mut [u64],
        backoff: Backoff,
    ) {
        let (idx, _) = flight.iter().enumerate().min_by_key(|(_, f)| f.0).unwrap();
        let (t, part, outcome) = flight.swap_remove(idx);
        *now = (*now).max(t);
        let i = part as usize;
        match outcome {
            Outcome::Ok => {
                assert!(s.on_part_succeeded(part, etag(part)));
                successes[i] += 1;
            }
            Outcome::Retryable | Outcome::Fatal => {
                failures[i] += 1;
                let random = rng.u32();
                // Attempts this part has had, counting this one: failures so far
                // (the harness never reports a part done before it succeeds).
                let attempt = failures[i];
                earliest_retry[i] = *now + backoff.delay_ms(attempt - 1, random);
                assert!(s.on_part_failed(
                    part,
                    *now,
                    matches!(outcome, Outcome::Retryable),
                    random
                ));
            }
        }
    }

    #[test]
    fn simulated_network_with_ten_percent_failures() {
        let net = Net {
            retryable_pct: 10,
            fatal_pct: 0,
        };
        for seed in 0..200 {
            let parts = 1 + (seed as u32 * 7) % 60;
            let conc = 1 + (seed as u32) % 6;
            match simulate(seed, parts, conc, Backoff::default(), &net, &[]) {
                End::Done => {}
                end => panic!("seed {seed}: {end:?}"),
            }
        }
    }

    #[test]
    fn simulated_resume_uploads_only_missing_parts() {
        let net = Net {
            retryable_pct: 20,
            fatal_pct: 0,
        };
        for seed in 0..50 {
            let confirmed: Vec<u32> = (1..=40).filter(|p| (p * 7 + seed) % 3 == 0).collect();
            assert!(matches!(
                simulate(seed as u64, 40, 4, Backoff::default(), &net, &confirmed),
                End::Done
            ));
        }
    }

    #[test]
    fn simulated_hostile_network_fails_cleanly() {
        // Half the PUTs fail, a few fatally: uploads end Failed, never hang or drop.
        let net = Net {
            retryable_pct: 50,
            fatal_pct: 3,
        };
        let backoff = Backoff {
            base_ms: 100,
            cap_ms: 2_000,
            max_attempts: 3,
        };
        let (mut done, mut exhausted, mut fatal) = (0, 0, 0);
        for seed in 0..300 {
            match simulate(seed, 30, 3, backoff, &net, &[]) {
                End::Done => done += 1,
                End::Failed(part, reason) => {
                    assert!((1..=30).contains(&part));
                    match reason {
                        FailReason::AttemptsExhausted { .. } => exhausted += 1,
                        FailReason::NotRetryable => fatal += 1,
                    }
                }
            }
        }
        assert!(exhausted > 0 && fatal > 0, "{done} {exhausted} {fatal}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn simulated_network_any_shape(
            seed: u64,
            parts in 1u32..200,
            conc in 1u32..10,
            retryable_pct in 0u64..40,
            fatal_pct in 0u64..3,
            max_attempts in 1u32..8,
        ) {
            let net = Net { retryable_pct, fatal_pct };
            let backoff = Backoff { base_ms: 50, cap_ms: 5_000, max_attempts };
            // Every guarantee is asserted inside; any end is fine.
            let _ = simulate(seed, parts, conc, backoff, &net, &[]);
        }
    }
}
