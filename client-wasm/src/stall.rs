//! Stall detection: a request that makes no progress for `stallTimeoutMs` is aborted
//! and retried, however long it may take in all.
//!
//! A deadline for the whole request cannot tell a slow link from a dead one (a 5 GiB
//! part on a slow link takes hours); the absence of progress can. Progress is what the
//! platform reports: for a part `PUT` (XHR) every upload progress event and every
//! state change, for a ranged `GET` the response headers and every chunk of the body,
//! for the JSON calls the answer.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;

use futures_util::future::{Either, select};

use crate::platform;

/// Default `stallTimeoutMs`: 30 s without progress.
pub(crate) const DEFAULT_STALL_MS: u64 = 30_000;

/// When a request last made progress.
pub(crate) struct Watchdog {
    last: Cell<u64>,
    limit_ms: u64,
}

impl Watchdog {
    /// A watchdog that fires `limit_ms` after the last progress, starting now.
    pub(crate) fn new(limit_ms: u64) -> Self {
        Self {
            last: Cell::new(platform::now_ms()),
            limit_ms,
        }
    }

    /// The request made progress.
    pub(crate) fn touch(&self) {
        self.last.set(platform::now_ms());
    }

    /// The limit, for the error.
    pub(crate) fn limit_ms(&self) -> u64 {
        self.limit_ms
    }

    /// Resolves once `limit_ms` have passed without progress.
    async fn expired(&self) {
        loop {
            let due = self.last.get().saturating_add(self.limit_ms);
            let now = platform::now_ms();
            if now >= due {
                return;
            }
            platform::sleep(due - now).await;
        }
    }

    /// Runs `work` until it finishes (`Some`) or stalls (`None`; `work` is dropped,
    /// which aborts its request).
    pub(crate) async fn guard<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        match select(pin!(work), pin!(self.expired())).await {
            Either::Left((done, _)) => Some(done),
            Either::Right(((), _)) => None,
        }
    }
}
