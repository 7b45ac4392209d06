//! Which part to transfer next, and when: the loop of an upload's part `PUT`s (and of a
//! download's ranged `GET`s) as a sans-IO state machine.
//!
//! The scheduler performs no I/O and reads no clock. The shell (the wasm client) feeds
//! it events (`on_part_succeeded`, `on_part_failed`, `pause`, `resume`) and asks it
//! what to do with [`PartScheduler::poll`], passing the current time; it carries out
//! the returned [`Action`] and polls again after the next event or at the time it was
//! told to wait until. Because time and randomness come in as arguments, the whole
//! loop (concurrency, retries, backoff, `Retry-After`, pause, resume) is tested here
//! deterministically against a simulated network.
//!
//! Guarantees: never more than `concurrency` parts in flight (a limit that may change
//! while parts run: [`PartScheduler::set_concurrency`]); first attempts start in
//! ascending part order (a ready retry goes before a new part); a failed part is retried
//! after its wait or reported as [`Action::Failed`], never dropped; the transfer is
//! [`Action::Done`] only when every part has succeeded; a part reported by the shell
//! after it stopped being in flight (a late answer after a pause) changes nothing.
//!
//! How a shell drives it:
//!
//! ```
//! use sealdrop_protocol::backoff::Backoff;
//! use sealdrop_protocol::scheduler::{Action, PartScheduler};
//!
//! let mut s = PartScheduler::new(3, 2, Backoff::default(), []).unwrap();
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
//!         Action::Failed { .. } => unreachable!(),
//!     }
//! }
//! ```

use std::collections::BTreeMap;

use crate::backoff::{Attempts, Backoff, GiveUp, Retry};

/// What the shell should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Transfer this part (1-based) now, then report the outcome.
    Start {
        /// The part to transfer.
        part: u32,
    },
    /// Nothing to start before this time (ms): poll again then, or on any event.
    WaitUntil(u64),
    /// Nothing to start until an event: every slot is busy, or the transfer is paused.
    Idle,
    /// Every part succeeded: these are their `(part, etag)`, ascending.
    Done {
        /// One ETag per part, in part order.
        etags: Vec<(u32, String)>,
    },
    /// A part was given up (the lowest such part). The shell stops the parts in
    /// flight with [`PartScheduler::pause`]; after attempts ran out the transfer stays
    /// resumable: [`PartScheduler::resume`] retries the part with fresh attempts.
    Failed {
        /// The part that was given up.
        part: u32,
        /// Why.
        reason: GiveUp,
    },
}

/// A scheduler cannot be built from these arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// There must be at least one part (a plan always has one).
    #[error("a transfer has at least one part")]
    NoParts,
    /// At least one part must be allowed in flight.
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    /// A confirmed part is not in `1..=part_count`.
    #[error("confirmed part {0} is not a part of this transfer")]
    InvalidPart(u32),
}

/// Where one part stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// Never started.
    Fresh,
    /// Being transferred.
    InFlight(Attempts),
    /// To be started again (it is in `waiting`).
    Waiting(Attempts),
    /// Transferred.
    Done { etag: String },
    /// Given up (it is in `failed`).
    Failed,
}

/// The transfer loop's state: see the module documentation.
#[derive(Debug, Clone)]
pub struct PartScheduler {
    backoff: Backoff,
    concurrency: u32,
    /// Index `part - 1`.
    slots: Vec<Slot>,
    /// No part below this one is `Fresh`.
    next_fresh: u32,
    /// Parts to start again, with the earliest time each may start.
    waiting: BTreeMap<u32, u64>,
    /// Parts given up, with why.
    failed: BTreeMap<u32, GiveUp>,
    in_flight: u32,
    done: u32,
    paused: bool,
}

impl PartScheduler {
    /// A scheduler for parts `1..=part_count`, at most `concurrency` at a time, retrying
    /// per `backoff`. `confirmed` are parts already transferred (with their ETags), e.g.
    /// from the session's status when resuming: they are never transferred again.
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
        })
    }

    /// What to do now. Call it after every event and whenever a `WaitUntil` time
    /// passes; when it answers `Start`, the part is counted in flight at once.
    pub fn poll(&mut self, now_ms: u64) -> Action {
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
        // A retry whose wait has passed goes first: it is the oldest work.
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

    /// Part `part` was transferred and storage answered `etag`. Events about a part
    /// that is not in flight (late, duplicated) are ignored; answers whether it was used.
    pub fn on_part_succeeded(&mut self, part: u32, etag: String) -> bool {
        let Some(Slot::InFlight(_)) = self.slot(part) else {
            return false;
        };
        self.set(part, Slot::Done { etag });
        self.in_flight -= 1;
        self.done += 1;
        true
    }

    /// Part `part` failed at `now_ms` in a way that allows `retry`. It is started again
    /// after the wait [`Attempts::on_failure`] decides (drawing jitter from `random`),
    /// or given up, and then `poll` answers `Failed`. Events about a part that is not in
    /// flight are ignored; answers whether it was used.
    pub fn on_part_failed(&mut self, part: u32, now_ms: u64, retry: Retry, random: u32) -> bool {
        let Some(&Slot::InFlight(mut attempts)) = self.slot(part) else {
            return false;
        };
        self.in_flight -= 1;
        match attempts.on_failure(&self.backoff, retry, random) {
            Ok(wait) => {
                self.set(part, Slot::Waiting(attempts));
                self.waiting.insert(part, now_ms.saturating_add(wait));
            }
            Err(reason) => {
                self.set(part, Slot::Failed);
                self.failed.insert(part, reason);
            }
        }
        true
    }

    /// Starts nothing new until [`PartScheduler::resume`], and answers the parts that
    /// were in flight: the shell must stop them and never report them (a part started
    /// again is another attempt). They are queued again, ready at once, and the
    /// interrupted attempts do not count; an answer about one before it starts again is
    /// ignored.
    pub fn pause(&mut self) -> Vec<u32> {
        self.paused = true;
        let stopped: Vec<u32> = (1..)
            .zip(&self.slots)
            .filter_map(|(part, slot)| matches!(slot, Slot::InFlight(_)).then_some(part))
            .collect();
        for &part in &stopped {
            if let Some(&Slot::InFlight(attempts)) = self.slot(part) {
                self.set(part, Slot::Waiting(attempts));
                self.waiting.insert(part, 0);
            }
        }
        self.in_flight = 0;
        stopped
    }

    /// Continues after [`PartScheduler::pause`] or after `Failed`: parts given up are
    /// queued again, ready at once, with a fresh set of attempts.
    pub fn resume(&mut self) {
        self.paused = false;
        for (part, _) in std::mem::take(&mut self.failed) {
            self.set(part, Slot::Waiting(Attempts::default()));
            self.waiting.insert(part, 0);
        }
    }

    /// Storage turned out not to hold these parts as sent (completing answered
    /// `parts_missing` or `etag_mismatch`): each one that was done is queued again,
    /// ready at once, with a fresh set of attempts. Parts not done are left alone.
    pub fn redo(&mut self, parts: impl IntoIterator<Item = u32>) {
        for part in parts {
            if let Some(Slot::Done { .. }) = self.slot(part) {
                self.set(part, Slot::Waiting(Attempts::default()));
                self.waiting.insert(part, 0);
                self.done -= 1;
            }
        }
    }

    /// Allows `concurrency` parts in flight from now on (at least 1): the adaptive
    /// limit of [`ConcurrencyController`](crate::concurrency::ConcurrencyController).
    /// Lowered below the parts in flight, it stops none of them: no part starts until
    /// fewer than `concurrency` are in flight.
    pub fn set_concurrency(&mut self, concurrency: u32) {
        self.concurrency = concurrency.max(1);
    }

    /// Parts allowed in flight.
    pub fn concurrency(&self) -> u32 {
        self.concurrency
    }

    /// Number of parts.
    fn part_count(&self) -> u32 {
        // Built from a u32 part count, so the length fits.
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
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
            Some(Slot::Waiting(attempts)) => *attempts,
            _ => Attempts::default(),
        };
        self.set(part, Slot::InFlight(attempts));
        self.in_flight += 1;
        Action::Start { part }
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

    fn sched(parts: u32, conc: u32) -> PartScheduler {
        PartScheduler::new(parts, conc, Backoff::default(), []).unwrap()
    }

    const LATER: Retry = Retry::Later { after_ms: None };

    fn etag(part: u32) -> String {
        format!("\"e{part}\"")
    }

    #[test]
    fn construction_errors() {
        let b = Backoff::default();
        assert_eq!(
            PartScheduler::new(0, 1, b, []).unwrap_err(),
            SchedulerError::NoParts
        );
        assert_eq!(
            PartScheduler::new(1, 0, b, []).unwrap_err(),
            SchedulerError::ZeroConcurrency
        );
        for bad in [0, 4] {
            assert_eq!(
                PartScheduler::new(3, 1, b, [(bad, etag(bad))]).unwrap_err(),
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
        assert_eq!(s.in_flight, 2);
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
        assert_eq!(s.done, 5);
    }

    #[test]
    fn a_lowered_limit_stops_nothing_and_starts_nothing_until_below_it() {
        let mut s = sched(8, 3);
        for p in 1..=3 {
            assert_eq!(s.poll(0), Action::Start { part: p });
        }
        s.set_concurrency(1);
        assert_eq!(s.concurrency(), 1);
        assert_eq!(s.poll(0), Action::Idle);
        assert!(s.on_part_succeeded(1, etag(1)));
        assert_eq!(s.poll(0), Action::Idle, "2 still in flight, 1 allowed");
        assert!(s.on_part_succeeded(2, etag(2)));
        assert_eq!(s.poll(0), Action::Idle);
        assert!(s.on_part_succeeded(3, etag(3)));
        assert_eq!(s.poll(0), Action::Start { part: 4 });
        assert_eq!(s.poll(0), Action::Idle);
        // Raised: the new slots fill at once; 0 counts as 1.
        s.set_concurrency(3);
        assert_eq!(s.poll(0), Action::Start { part: 5 });
        assert_eq!(s.poll(0), Action::Start { part: 6 });
        assert_eq!(s.poll(0), Action::Idle);
        s.set_concurrency(0);
        assert_eq!(s.concurrency(), 1);
    }

    #[test]
    fn resume_skips_confirmed_parts() {
        let b = Backoff::default();
        let mut s =
            PartScheduler::new(4, 4, b, [(1, etag(1)), (3, etag(3)), (3, etag(3))]).unwrap();
        assert_eq!(s.done, 2);
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
        let mut s = PartScheduler::new(1, 1, b, [(1, etag(1))]).unwrap();
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
        assert!(s.on_part_failed(1, 1_000, LATER, u32::MAX));
        // The slot is free and part 2 is fresh: it goes meanwhile.
        assert_eq!(s.poll(1_000), Action::Start { part: 2 });
        assert!(s.on_part_succeeded(2, etag(2)));
        assert_eq!(s.poll(1_010), Action::Start { part: 3 });
        assert!(s.on_part_succeeded(3, etag(3)));
        assert_eq!(s.poll(1_020), Action::WaitUntil(1_500));
        assert_eq!(s.poll(1_499), Action::WaitUntil(1_500));
        assert_eq!(s.poll(1_500), Action::Start { part: 1 });
        // Second failure: ceiling 1000 ms.
        assert!(s.on_part_failed(1, 2_000, LATER, u32::MAX));
        assert_eq!(s.poll(2_000), Action::WaitUntil(3_000));
        assert_eq!(s.poll(3_000), Action::Start { part: 1 });
        assert!(s.on_part_succeeded(1, etag(1)));
        assert!(matches!(s.poll(3_000), Action::Done { .. }));
    }

    #[test]
    fn a_ready_retry_goes_before_a_new_part() {
        let mut s = sched(3, 1);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        s.on_part_failed(1, 0, LATER, 0); // delay 0
        assert_eq!(s.poll(0), Action::Start { part: 1 });
    }

    #[test]
    fn gives_up_after_max_attempts_then_resumes() {
        let backoff = Backoff {
            base_ms: 10,
            cap_ms: 10,
            max_attempts: 3,
        };
        let mut s = PartScheduler::new(2, 1, backoff, []).unwrap();
        let mut now = 0;
        for attempt in 1..=3 {
            assert_eq!(s.poll(now), Action::Start { part: 1 }, "attempt {attempt}");
            s.on_part_failed(1, now, LATER, u32::MAX);
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
            reason: GiveUp::AttemptsExhausted { attempts: 3 },
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
        s.on_part_failed(2, 0, Retry::Never, 0);
        let failed = Action::Failed {
            part: 2,
            reason: GiveUp::NotRetryable,
        };
        assert_eq!(s.poll(0), failed);
        // Parts in flight still report; their results are kept.
        assert!(s.on_part_succeeded(1, etag(1)));
        s.on_part_failed(3, 0, Retry::Never, 0);
        assert_eq!(s.poll(0), failed); // lowest failed part first
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.done, 1);
    }

    #[test]
    fn stale_and_unknown_events_are_ignored() {
        let mut s = sched(2, 1);
        assert!(!s.on_part_succeeded(1, etag(1))); // not started
        assert!(!s.on_part_failed(0, 0, LATER, 0));
        assert!(!s.on_part_failed(3, 0, LATER, 0));
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        assert!(s.on_part_succeeded(1, etag(1)));
        assert!(!s.on_part_succeeded(1, "\"other\"".into())); // duplicate
        assert!(!s.on_part_failed(1, 0, LATER, 0)); // late failure of a done part
        assert_eq!(s.done, 1);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        assert!(s.on_part_succeeded(2, etag(2)));
        assert_eq!(
            s.poll(0),
            Action::Done {
                etags: vec![(1, etag(1)), (2, etag(2))]
            }
        );
    }

    #[test]
    fn pause_stops_the_parts_in_flight_and_resume_restarts_them() {
        let mut s = sched(3, 2);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        assert_eq!(s.pause(), vec![1, 2]);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.poll(0), Action::Idle);
        // Answers that arrive after the pause (the shell could not stop them in time)
        // change nothing: the part is sent again after resume.
        assert!(!s.on_part_succeeded(1, etag(1)));
        assert!(!s.on_part_failed(2, 0, LATER, 0));
        assert_eq!(s.poll(0), Action::Idle);
        assert_eq!(
            s.pause(),
            Vec::<u32>::new(),
            "pausing twice stops nothing more"
        );
        s.resume();
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        assert_eq!(s.poll(0), Action::Idle);
        for p in [1, 2] {
            assert!(s.on_part_succeeded(p, etag(p)));
        }
        assert_eq!(s.poll(0), Action::Start { part: 3 });
        assert!(s.on_part_succeeded(3, etag(3)));
        assert!(matches!(s.poll(0), Action::Done { .. }));

        // An interrupted attempt does not count: one allowed attempt survives any pause.
        let one = Backoff {
            max_attempts: 1,
            ..Backoff::default()
        };
        let mut s = PartScheduler::new(1, 1, one, []).unwrap();
        for _ in 0..5 {
            assert_eq!(s.poll(0), Action::Start { part: 1 });
            assert_eq!(s.pause(), vec![1]);
            s.resume();
        }
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        s.on_part_failed(1, 0, LATER, 0);
        assert_eq!(
            s.poll(0),
            Action::Failed {
                part: 1,
                reason: GiveUp::AttemptsExhausted { attempts: 1 }
            }
        );
    }

    #[test]
    fn a_paused_retry_keeps_its_failed_attempts() {
        let two = Backoff {
            base_ms: 10,
            cap_ms: 10,
            max_attempts: 2,
        };
        let mut s = PartScheduler::new(1, 1, two, []).unwrap();
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        s.on_part_failed(1, 0, LATER, u32::MAX);
        assert_eq!(s.poll(10), Action::Start { part: 1 });
        assert_eq!(s.pause(), vec![1]);
        s.resume();
        assert_eq!(s.poll(10), Action::Start { part: 1 });
        s.on_part_failed(1, 10, LATER, 0);
        assert_eq!(
            s.poll(10),
            Action::Failed {
                part: 1,
                reason: GiveUp::AttemptsExhausted { attempts: 2 }
            }
        );
    }

    #[test]
    fn parts_storage_lost_are_sent_again() {
        let mut s = PartScheduler::new(3, 3, Backoff::default(), [(1, etag(1))]).unwrap();
        assert_eq!(s.poll(0), Action::Start { part: 2 });
        assert_eq!(s.poll(0), Action::Start { part: 3 });
        s.on_part_succeeded(2, etag(2));
        s.on_part_succeeded(3, etag(3));
        assert!(matches!(s.poll(0), Action::Done { .. }));
        // Completing said storage lacks parts 1 and 3; 4 is no part, 0 neither.
        s.redo([1, 3, 4, 0]);
        assert_eq!(s.done, 1);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        assert_eq!(s.poll(0), Action::Start { part: 3 });
        assert_eq!(s.poll(0), Action::Idle);
        s.on_part_succeeded(1, "\"new1\"".into());
        s.on_part_succeeded(3, etag(3));
        assert_eq!(
            s.poll(0),
            Action::Done {
                etags: vec![(1, "\"new1\"".into()), (2, etag(2)), (3, etag(3))]
            }
        );
        // A part in flight is not done: redo leaves it to finish.
        let mut s = sched(1, 1);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        s.redo([1]);
        assert_eq!(s.in_flight, 1);
        assert!(s.on_part_succeeded(1, etag(1)));
        assert!(matches!(s.poll(0), Action::Done { .. }));
    }

    #[test]
    fn retry_after_and_busy_answers() {
        let mut s = sched(2, 1);
        assert_eq!(s.poll(0), Action::Start { part: 1 });
        // 429 with Retry-After: 5 s, longer than any first jitter (<= 500 ms).
        s.on_part_failed(
            1,
            100,
            Retry::Later {
                after_ms: Some(60_000),
            },
            0,
        );
        assert_eq!(s.poll(100), Action::Start { part: 2 });
        // Part 2 meets a busy session many times: it waits, but keeps its attempts.
        let busy = Retry::Busy {
            after_ms: Some(1_000),
        };
        let mut now = 100;
        for _ in 0..50 {
            assert!(s.on_part_failed(2, now, busy, 0));
            assert_eq!(s.poll(now), Action::WaitUntil(now + 1_000));
            now += 1_000;
            assert_eq!(s.poll(now), Action::Start { part: 2 });
        }
        assert!(s.on_part_succeeded(2, etag(2)));
        assert_eq!(now, 50_100);
        assert_eq!(s.poll(now), Action::WaitUntil(60_100));
        assert_eq!(s.poll(60_100), Action::Start { part: 1 });
        assert!(s.on_part_succeeded(1, etag(1)));
        assert!(matches!(s.poll(now), Action::Done { .. }));
    }

    // ---- simulated network -------------------------------------------------------

    use crate::test_rng::Rng;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Outcome {
        Ok,
        Retryable,
        Busy,
        Fatal,
    }

    /// The simulated network and user, in percent: of part attempts that fail
    /// retryably, meet a busy session or fail fatally; of events after which the user
    /// pauses (and later resumes).
    #[derive(Default)]
    struct Net {
        retryable_pct: u64,
        busy_pct: u64,
        fatal_pct: u64,
        pause_pct: u64,
        /// Whether the shell resumes after attempts ran out, as the client does when
        /// the person presses resume (at most 3 times per run).
        resume_exhausted: bool,
    }

    /// What a simulated transfer ended as.
    #[derive(Debug)]
    enum End {
        Done,
        Failed(u32, GiveUp),
    }

    /// One attempt in flight in the harness. A pause stops it: the shell drops it, so
    /// its answer never reaches the scheduler.
    struct Flight {
        at: u64,
        part: u32,
        outcome: Outcome,
    }

    /// Drives a scheduler to the end against a simulated network and user, checking
    /// every guarantee at every step. The harness owns the clock.
    fn simulate(
        seed: u64,
        parts: u32,
        conc: u32,
        backoff: Backoff,
        net: &Net,
        confirmed: &[u32],
    ) -> End {
        let mut rng = Rng(seed);
        let mut s = PartScheduler::new(
            parts,
            conc,
            backoff,
            confirmed.iter().map(|&p| (p, etag(p))),
        )
        .unwrap();
        let mut now = 0u64;
        let mut flight: Vec<Flight> = Vec::new();
        let mut successes = vec![0u32; parts as usize + 1];
        let mut started = vec![false; parts as usize + 1];
        let mut not_before = vec![0u64; parts as usize + 1];
        let mut last_first_start = 0u32;
        let mut paused_until: Option<u64> = None;
        let mut resumes_left = 3;
        for &p in confirmed {
            successes[p as usize] = 1;
            started[p as usize] = true;
        }
        for _step in 0..1_000_000 {
            let live = flight.len();
            assert!(s.in_flight <= conc);
            assert_eq!(s.in_flight as usize, live);
            if let Some(t) = paused_until.take() {
                // Paused, with nothing in flight: nothing happens until the user resumes.
                assert!(flight.is_empty());
                assert!(!matches!(s.poll(now), Action::Start { .. }));
                now = now.max(t);
                s.resume();
                continue;
            }
            if net.pause_pct > 0 && rng.below(100) < net.pause_pct {
                let stopped = stop_all(&mut s, &mut flight);
                assert_eq!(stopped.len(), live);
                // A stopped part may start again at once after the resume.
                for &p in &stopped {
                    not_before[p as usize] = 0;
                }
                paused_until = Some(now + rng.below(1_000));
                continue;
            }
            match s.poll(now) {
                Action::Start { part } => {
                    let i = part as usize;
                    assert!(successes[i] == 0, "part {part} started after it was done");
                    assert!(
                        !flight.iter().any(|f| f.part == part),
                        "part {part} started twice"
                    );
                    if !started[i] {
                        assert!(part > last_first_start, "first attempts out of order");
                        last_first_start = part;
                        started[i] = true;
                    }
                    assert!(now >= not_before[i], "retry of {part} before its wait");
                    let roll = rng.below(100);
                    let outcome = if roll < net.fatal_pct {
                        Outcome::Fatal
                    } else if roll < net.fatal_pct + net.retryable_pct {
                        Outcome::Retryable
                    } else if roll < net.fatal_pct + net.retryable_pct + net.busy_pct {
                        Outcome::Busy
                    } else {
                        Outcome::Ok
                    };
                    flight.push(Flight {
                        at: now + 1 + rng.below(400),
                        part,
                        outcome,
                    });
                }
                Action::WaitUntil(t) => {
                    assert!(t > now, "WaitUntil({t}) at {now}");
                    match flight.iter().map(|f| f.at).min() {
                        // Either an event comes first, or the wake-up.
                        Some(e) if e <= t => deliver(
                            &mut s,
                            &mut flight,
                            &mut now,
                            &mut rng,
                            &mut successes,
                            &mut not_before,
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
                        &mut not_before,
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
                    if let GiveUp::AttemptsExhausted { attempts } = reason {
                        assert!(attempts >= backoff.max_attempts);
                    }
                    assert_eq!(successes[part as usize], 0);
                    if net.resume_exhausted
                        && resumes_left > 0
                        && matches!(reason, GiveUp::AttemptsExhausted { .. })
                    {
                        // What the client does: pause (stopping the others), and the
                        // person presses resume later.
                        resumes_left -= 1;
                        let stopped = stop_all(&mut s, &mut flight);
                        for &p in &stopped {
                            not_before[p as usize] = 0;
                        }
                        not_before[part as usize] = 0;
                        paused_until = Some(now + 10_000);
                        continue;
                    }
                    return End::Failed(part, reason);
                }
            }
        }
        panic!("no end after a million steps");
    }

    /// Delivers the earliest answer in flight.
    fn deliver(
        s: &mut PartScheduler,
        flight: &mut Vec<Flight>,
        now: &mut u64,
        rng: &mut Rng,
        successes: &mut [u32],
        not_before: &mut [u64],
    ) {
        let (idx, _) = flight.iter().enumerate().min_by_key(|(_, f)| f.at).unwrap();
        let f = flight.swap_remove(idx);
        *now = (*now).max(f.at);
        let i = f.part as usize;
        let used = match f.outcome {
            Outcome::Ok => {
                let used = s.on_part_succeeded(f.part, etag(f.part));
                if used {
                    successes[i] += 1;
                }
                used
            }
            outcome => {
                let random = rng.u32();
                let retry = match outcome {
                    Outcome::Fatal => Retry::Never,
                    Outcome::Busy => Retry::Busy {
                        after_ms: Some(rng.below(3_000)),
                    },
                    _ => Retry::Later {
                        after_ms: (rng.below(4) == 0).then(|| rng.below(5_000)),
                    },
                };
                // The earliest a retry may start: what the server asked for, at least
                // (the jitter may add to it, never take from it).
                let asked = match retry {
                    Retry::Later { after_ms } | Retry::Busy { after_ms } => after_ms.unwrap_or(0),
                    Retry::Never => 0,
                };
                let used = s.on_part_failed(f.part, *now, retry, random);
                not_before[i] = if s.failed.contains_key(&f.part) {
                    // Given up: a resume starts it again at once.
                    0
                } else {
                    *now + asked.min(crate::backoff::MAX_RETRY_AFTER_MS)
                };
                used
            }
        };
        assert!(
            used,
            "part {} answered {:?} while in flight",
            f.part, f.outcome
        );
    }

    /// Pauses, as the shell does: every part in flight is stopped and dropped.
    fn stop_all(s: &mut PartScheduler, flight: &mut Vec<Flight>) -> Vec<u32> {
        let stopped = s.pause();
        for f in flight.drain(..) {
            assert!(
                stopped.contains(&f.part),
                "pause did not stop part {}",
                f.part
            );
        }
        stopped
    }

    #[test]
    fn simulated_network_with_ten_percent_failures() {
        let net = Net {
            retryable_pct: 10,
            ..Net::default()
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
            ..Net::default()
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
    fn simulated_pauses_busy_sessions_and_resumes_after_exhaustion_finish() {
        // The user pauses often, the session is often busy, a third of attempts fail,
        // and attempts run out now and then: every run still finishes with every part
        // sent exactly once successfully.
        let net = Net {
            retryable_pct: 30,
            busy_pct: 20,
            pause_pct: 5,
            resume_exhausted: true,
            ..Net::default()
        };
        let backoff = Backoff {
            base_ms: 100,
            cap_ms: 2_000,
            max_attempts: 4,
        };
        let mut finished = 0;
        for seed in 0..200 {
            match simulate(
                seed,
                1 + (seed as u32 % 25),
                1 + (seed as u32 % 4),
                backoff,
                &net,
                &[],
            ) {
                End::Done => finished += 1,
                // Three resumes may not be enough on a network this bad; it must end
                // in a clean, resumable state.
                End::Failed(_, reason) => {
                    assert!(matches!(reason, GiveUp::AttemptsExhausted { .. }));
                }
            }
        }
        assert!(finished > 150, "{finished} of 200 finished");
    }

    #[test]
    fn simulated_hostile_network_fails_cleanly() {
        // Half the PUTs fail, a few fatally: transfers end Failed, never hang or drop.
        let net = Net {
            retryable_pct: 50,
            fatal_pct: 3,
            ..Net::default()
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
                        GiveUp::AttemptsExhausted { .. } => exhausted += 1,
                        GiveUp::NotRetryable => fatal += 1,
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
            busy_pct in 0u64..30,
            fatal_pct in 0u64..3,
            pause_pct in 0u64..10,
            max_attempts in 1u32..8,
            resume_exhausted: bool,
        ) {
            let net = Net { retryable_pct, busy_pct, fatal_pct, pause_pct, resume_exhausted };
            let backoff = Backoff { base_ms: 50, cap_ms: 5_000, max_attempts };
            // Every guarantee is asserted inside; any end is fine.
            let _ = simulate(seed, parts, conc, backoff, &net, &[]);
        }
    }
}
