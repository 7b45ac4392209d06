//! When to retry a failed request, and how long to wait first.
//!
//! Exponential backoff with *full jitter* (the delay is uniform between zero and the
//! exponential ceiling): when many parts or many clients fail at once, e.g. storage
//! answering 503 for a moment, their retries spread out instead of arriving together
//! again. A server that says how long to wait (`Retry-After`) is believed, up to
//! [`MAX_RETRY_AFTER_MS`], so a confused or hostile one cannot park an upload for a day.
//! The random number and the clock are passed in, so the schedule is deterministic in
//! tests.
//!
//! Two kinds of failure are retried: a request that *failed* (network error, stall,
//! 5xx, 408, 429) uses one of `max_attempts`; a request the server refused because it
//! is *busy with this very upload* (`503 upload_busy`: completing, aborting, or a
//! write of the same part still in flight) uses none, since nothing failed, and is
//! waited out up to [`MAX_BUSY_WAITS`] times. [`Attempts`] keeps both counts for one
//! request (or one part) and decides each time.

use std::time::{Duration, UNIX_EPOCH};

/// Longest wait a `Retry-After` can impose, in ms: one minute.
pub const MAX_RETRY_AFTER_MS: u64 = 60_000;

/// How many times one request waits out `503 upload_busy` before it is given up as
/// attempts exhausted (with `Retry-After` of a few seconds: several minutes, enough for
/// storage to complete a very large object).
pub const MAX_BUSY_WAITS: u32 = 100;

/// A retry policy: delays grow as `base * 2^attempt` up to `cap`, at most
/// `max_attempts` attempts per request in total (the first try included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry's delay, in ms.
    pub base_ms: u64,
    /// Largest ceiling of any delay, in ms.
    pub cap_ms: u64,
    /// Attempts per request before giving up, the first one included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 500 ms doubling up to 30 s, 6 attempts (about a minute of retrying at most).
    fn default() -> Self {
        Self {
            base_ms: 500,
            cap_ms: 30_000,
            max_attempts: 6,
        }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry number `attempt + 1`:
    /// `min(cap, base * 2^attempt)`. `attempt` counts failures so far minus one, so the
    /// first retry uses `attempt = 0`.
    pub fn ceiling_ms(&self, attempt: u32) -> u64 {
        let factor = 1u64.checked_shl(attempt).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// The delay before retry number `attempt + 1`, uniform in `[0, ceiling_ms(attempt)]`
    /// (both ends included) for a uniformly random `random`.
    pub fn delay_ms(&self, attempt: u32, random: u32) -> u64 {
        let span = u128::from(self.ceiling_ms(attempt)) + 1;
        // (span * random) / 2^32 maps u32 onto 0..span without modulo's bias pattern.
        let delay = (span * u128::from(random)) >> 32;
        u64::try_from(delay).unwrap_or(u64::MAX)
    }

    /// The wait before retry number `attempt + 1`: the full-jitter delay, or the
    /// server's `Retry-After` (capped at [`MAX_RETRY_AFTER_MS`]) when that is longer.
    pub fn wait_ms(&self, attempt: u32, random: u32, retry_after_ms: Option<u64>) -> u64 {
        let asked = retry_after_ms.map_or(0, |ms| ms.min(MAX_RETRY_AFTER_MS));
        self.delay_ms(attempt, random).max(asked)
    }

    /// Whether another attempt is allowed after `attempts` attempts have failed.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

/// Whether a failed request is worth retrying: `None` (a network error: no status at
/// all), any 5xx, `408 Request Timeout` and `429 Too Many Requests` are; every other
/// status is not (other 4xx will fail the same way again; 1xx-3xx are not failures).
pub fn should_retry(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(408 | 429) => true,
        Some(s) => (500..=599).contains(&s),
    }
}

/// What a failed attempt allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// It will fail the same way again (a 4xx other than 408/429, a refused file...).
    Never,
    /// Another attempt may succeed: a network error, a stall, 5xx, 408 or 429; not
    /// before `after_ms` when the server said so (`Retry-After`).
    Later {
        /// The server's `Retry-After`, in ms from now.
        after_ms: Option<u64>,
    },
    /// The server is busy with this upload (`503 upload_busy`): wait, then try again;
    /// the attempt does not count.
    Busy {
        /// The server's `Retry-After`, in ms from now.
        after_ms: Option<u64>,
    },
}

impl Retry {
    /// The retry a response status allows (with the response's `Retry-After`, if any).
    /// `busy` says the body was the API's `upload_busy` error.
    pub fn for_status(status: u16, busy: bool, after_ms: Option<u64>) -> Self {
        if busy && status == 503 {
            Retry::Busy { after_ms }
        } else if should_retry(Some(status)) {
            Retry::Later { after_ms }
        } else {
            Retry::Never
        }
    }
}

/// Why a request or a part was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The failure was not retryable.
    NotRetryable,
    /// Every allowed attempt failed (or the server stayed busy [`MAX_BUSY_WAITS`] times).
    AttemptsExhausted {
        /// How many attempts failed.
        attempts: u32,
    },
}

/// The failed attempts at one request (or one part) so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    failed: u32,
    busy: u32,
}

impl Attempts {
    /// Attempts that failed (busy answers not counted).
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// Counts a failure of kind `retry` and answers how long to wait before the next
    /// attempt (`Ok`, in ms), or why there is none (`Err`). `random` draws the jitter.
    pub fn on_failure(
        &mut self,
        backoff: &Backoff,
        retry: Retry,
        random: u32,
    ) -> Result<u64, GiveUp> {
        match retry {
            Retry::Never => Err(GiveUp::NotRetryable),
            Retry::Later { after_ms } => {
                self.failed += 1;
                if !backoff.allows_another(self.failed) {
                    return Err(GiveUp::AttemptsExhausted {
                        attempts: self.failed,
                    });
                }
                Ok(backoff.wait_ms(self.failed - 1, random, after_ms))
            }
            Retry::Busy { after_ms } => {
                self.busy += 1;
                if self.busy > MAX_BUSY_WAITS {
                    return Err(GiveUp::AttemptsExhausted {
                        attempts: self.failed + self.busy,
                    });
                }
                Ok(backoff.wait_ms(self.busy.saturating_sub(1).min(8), random, after_ms))
            }
        }
    }

    /// Starts over, as after a resume: a part given up gets a fresh set of attempts.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Reads a `Retry-After` header (RFC 9110 §10.2.3) received at `now_ms` (ms since the
/// Unix epoch): either a number of seconds or an HTTP date. Answers the wait in ms
/// from now (0 for a date in the past), or `None` if the value is neither.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A huge number of seconds is still a (capped) wait, not an error.
        return Some(
            value
                .parse::<u64>()
                .map_or(u64::MAX, |s| s.saturating_mul(1000)),
        );
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    let at_ms = u64::try_from(at_ms).unwrap_or(u64::MAX);
    Some(at_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults() {
        let b = Backoff::default();
        assert_eq!((b.base_ms, b.cap_ms, b.max_attempts), (500, 30_000, 6));
        let ceilings: Vec<u64> = (0..8).map(|a| b.ceiling_ms(a)).collect();
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]
        );
        assert_eq!(b.ceiling_ms(63), 30_000);
        assert_eq!(b.ceiling_ms(64), 30_000);
        assert_eq!(b.ceiling_ms(u32::MAX), 30_000);
        assert!(b.allows_another(5));
        assert!(!b.allows_another(6));
    }

    #[test]
    fn delay_covers_zero_to_ceiling() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(0, 0), 0);
        assert_eq!(b.delay_ms(0, u32::MAX), 500);
        assert_eq!(b.delay_ms(10, u32::MAX), 30_000);
        assert_eq!(b.delay_ms(1, u32::MAX / 2), 500);
        let huge = Backoff {
            base_ms: u64::MAX,
            cap_ms: u64::MAX,
            max_attempts: 1,
        };
        // Near-astronomical ceilings stay in range (the very top is not reachable).
        assert!(huge.delay_ms(3, u32::MAX) >= u64::MAX - (1 << 32));
        let zero = Backoff {
            base_ms: 0,
            cap_ms: 0,
            max_attempts: 1,
        };
        assert_eq!(zero.delay_ms(3, u32::MAX), 0);
    }

    #[test]
    fn delay_is_roughly_uniform() {
        let b = Backoff {
            base_ms: 9,
            cap_ms: 9,
            max_attempts: 1,
        };
        let mut buckets = [0u32; 10];
        let step = u32::MAX / 10_000;
        for i in 0..10_000u32 {
            buckets[b.delay_ms(0, i * step) as usize] += 1;
        }
        for count in buckets {
            assert!((990..=1010).contains(&count), "{buckets:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let b = Backoff::default();
        // The server's wait wins when longer than the jitter, never when shorter.
        assert_eq!(b.wait_ms(0, 0, Some(2_000)), 2_000);
        assert_eq!(b.wait_ms(0, u32::MAX, Some(100)), 500);
        assert_eq!(b.wait_ms(0, u32::MAX, None), 500);
        assert_eq!(b.wait_ms(0, 0, Some(u64::MAX)), MAX_RETRY_AFTER_MS);
        assert_eq!(b.wait_ms(9, u32::MAX, Some(3_600_000)), MAX_RETRY_AFTER_MS);
    }

    #[test]
    fn retry_classification() {
        for s in [
            None,
            Some(408),
            Some(429),
            Some(500),
            Some(502),
            Some(503),
            Some(504),
            Some(599),
        ] {
            assert!(should_retry(s), "{s:?}");
        }
        for s in [100, 200, 204, 304, 400, 401, 403, 404, 409, 413, 416, 600] {
            assert!(!should_retry(Some(s)), "{s}");
        }
        let after = Some(1_000);
        assert_eq!(
            Retry::for_status(503, true, after),
            Retry::Busy { after_ms: after }
        );
        // `upload_busy` is only a wait on a 503; another 503 is a failure like any 5xx.
        assert_eq!(
            Retry::for_status(503, false, after),
            Retry::Later { after_ms: after }
        );
        assert_eq!(Retry::for_status(409, true, None), Retry::Never);
        assert_eq!(
            Retry::for_status(429, false, None),
            Retry::Later { after_ms: None }
        );
        assert_eq!(Retry::for_status(404, false, after), Retry::Never);
    }

    #[test]
    fn attempts_count_failures_but_not_busy_answers() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 1_000,
            max_attempts: 3,
        };
        let mut a = Attempts::default();
        let later = Retry::Later { after_ms: None };
        assert_eq!(a.on_failure(&b, later, u32::MAX), Ok(100));
        // Busy answers in between use no attempt, and follow Retry-After.
        for _ in 0..10 {
            assert_eq!(
                a.on_failure(
                    &b,
                    Retry::Busy {
                        after_ms: Some(5_000)
                    },
                    0
                ),
                Ok(5_000)
            );
        }
        assert_eq!(a.failed(), 1);
        assert_eq!(a.on_failure(&b, later, u32::MAX), Ok(200));
        assert_eq!(
            a.on_failure(&b, later, 0),
            Err(GiveUp::AttemptsExhausted { attempts: 3 })
        );
        a.reset();
        assert_eq!(a.failed(), 0);
        assert_eq!(a.on_failure(&b, Retry::Never, 0), Err(GiveUp::NotRetryable));
        // A server that stays busy is given up after MAX_BUSY_WAITS waits.
        let mut a = Attempts::default();
        for _ in 0..MAX_BUSY_WAITS {
            assert!(
                a.on_failure(&b, Retry::Busy { after_ms: None }, u32::MAX)
                    .is_ok()
            );
        }
        assert_eq!(
            a.on_failure(&b, Retry::Busy { after_ms: None }, 0),
            Err(GiveUp::AttemptsExhausted {
                attempts: MAX_BUSY_WAITS + 1
            })
        );
        // Busy waits without Retry-After back off too, within the cap.
        let mut a = Attempts::default();
        let waits: Vec<u64> = (0..12)
            .map(|_| {
                a.on_failure(&b, Retry::Busy { after_ms: None }, u32::MAX)
                    .unwrap()
            })
            .collect();
        assert_eq!(&waits[..5], &[100, 200, 400, 800, 1_000]);
        assert!(waits.iter().all(|&w| w <= b.cap_ms));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s after the epoch.
        let date = 784_111_777_000;
        assert_eq!(parse_retry_after("2", date), Some(2_000));
        assert_eq!(parse_retry_after(" 0 ", date), Some(0));
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        assert_eq!(
            parse_retry_after("99999999999999999999999", 0),
            Some(u64::MAX)
        );
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_retry_after(form, date - 3_000), Some(3_000), "{form}");
            // A date in the past means: now.
            assert_eq!(parse_retry_after(form, date + 10_000), Some(0), "{form}");
        }
        for bad in ["", "soon", "-1", "1.5", "2 s", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, date), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_ceiling(attempt in 0u32..100, random: u32, base in 0u64..100_000, cap in 0u64..1_000_000) {
            let b = Backoff { base_ms: base, cap_ms: cap, max_attempts: 6 };
            let d = b.delay_ms(attempt, random);
            prop_assert!(d <= b.ceiling_ms(attempt));
            prop_assert!(b.ceiling_ms(attempt) <= cap);
            prop_assert!(b.delay_ms(attempt, random.saturating_add(1)) >= d);
        }

        #[test]
        fn waits_are_bounded(after in proptest::option::of(any::<u64>()), attempt in 0u32..100, random: u32) {
            let b = Backoff::default();
            let w = b.wait_ms(attempt, random, after);
            prop_assert!(w <= b.cap_ms.max(MAX_RETRY_AFTER_MS));
            prop_assert!(w >= after.unwrap_or(0).min(MAX_RETRY_AFTER_MS));
        }
    }
}
