//! The two rate limits of a room.
//!
//! - [`SlidingWindow`], per user: at most N messages in any window of W ms (seed 003's
//!   "30 messages per minute", kept exactly: a log of the last N send times). It needs no
//!   storage of its own: after an eviction the room rebuilds it from the send times of
//!   the messages it stored, so restarting the object never resets anyone's allowance.
//! - [`TokenBucket`], per connection: a flood guard on every frame, kept in memory only
//!   (a connection that outlives an eviction starts with a full bucket, which is harmless).

use std::collections::VecDeque;

/// At most `limit` events in any `window_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Times of the most recent events, oldest first; never more than `limit`.
    times: VecDeque<u64>,
}

impl SlidingWindow {
    /// Whether one more event is allowed at `now`: `Ok`, or `Err(ms to wait)`.
    pub fn check(&self, now: u64, limit: u32, window_ms: u64) -> Result<(), u64> {
        if limit == 0 {
            return Err(window_ms);
        }
        if self.times.len() < limit as usize {
            return Ok(());
        }
        // The oldest of the last `limit` events must have left the window.
        let oldest = self.times.front().copied().unwrap_or(0);
        let frees_at = oldest.saturating_add(window_ms);
        if now >= frees_at {
            Ok(())
        } else {
            Err(frees_at - now)
        }
    }

    /// Records an event at `now` (after a successful [`check`](Self::check)).
    pub fn record(&mut self, now: u64, limit: u32) {
        self.times.push_back(now);
        while self.times.len() > limit as usize {
            self.times.pop_front();
        }
    }

    /// Whether the window holds nothing newer than `now - window_ms` (it can be dropped).
    pub fn is_idle(&self, now: u64, window_ms: u64) -> bool {
        self.times
            .back()
            .is_none_or(|last| last.saturating_add(window_ms) <= now)
    }
}

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    at: u64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(burst: u32, now: u64) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Takes one token at `now`: `Ok`, or `Err(ms until one is available)`.
    pub fn take(&mut self, now: u64, per_second: u32, burst: u32) -> Result<(), u64> {
        let elapsed = now.saturating_sub(self.at) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * f64::from(per_second)).min(f64::from(burst));
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if per_second == 0 {
            Err(1000)
        } else {
            let wait = (1.0 - self.tokens) / f64::from(per_second) * 1000.0;
            Err(wait.ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn thirty_a_minute_exactly() {
        let mut w = SlidingWindow::default();
        for i in 0..30 {
            assert_eq!(w.check(1000 + i, 30, 60_000), Ok(()), "message {i}");
            w.record(1000 + i, 30);
        }
        // The 31st waits until the first leaves the window.
        assert_eq!(w.check(1030, 30, 60_000), Err(60_000 - 30));
        assert_eq!(w.check(61_000, 30, 60_000), Ok(()));
        w.record(61_000, 30);
        assert_eq!(w.check(61_000, 30, 60_000), Err(1));
        assert!(!w.is_idle(61_000, 60_000));
        assert!(w.is_idle(121_000, 60_000));
        assert_eq!(SlidingWindow::default().check(0, 0, 5), Err(5));
    }

    #[test]
    fn bucket_refills() {
        let mut b = TokenBucket::full(3, 0);
        for _ in 0..3 {
            assert_eq!(b.take(0, 10, 3), Ok(()));
        }
        assert_eq!(b.take(0, 10, 3), Err(100));
        assert_eq!(b.take(100, 10, 3), Ok(()));
        // Never more than the burst, however long it rested.
        let _ = b.take(1_000_000, 10, 3);
        assert_eq!(b.take(1_000_000, 10, 3), Ok(()));
        assert_eq!(b.take(1_000_000, 10, 3), Ok(()));
        assert!(b.take(1_000_000, 10, 3).is_err());
        // A clock that steps back does not mint tokens.
        assert!(b.take(5, 10, 3).is_err());
    }
}
