//! When to retry a failed request, and how long to wait first.
//!
//! Exponential backoff with *full jitter* (the delay is uniform between zero and the
//! exponential ceiling): when many parts or many clients fail at once, e.g. storage
//! answering 503 for a moment, their retries spread out instead of arriving together
//! again. The random number is passed in, so the schedule is deterministic in tests.

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
    }
}
