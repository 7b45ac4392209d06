//! The loop both transfers share: the protocol's sans-IO [`PartScheduler`] decides which
//! part goes next and when a failed one is retried, its [`ConcurrencyController`] how
//! many may be in flight (fed every attempt's outcome, with its times); this module
//! only carries their actions out with futures and timers. Also: retrying one API call
//! by the same rules, and racing a transfer against its `AbortSignal`.
//!
//! Downloads use the same scheduler with "parts" that are ranges of records: the rules
//! (bounded concurrency, retry with full-jitter backoff and `Retry-After`, give up
//! after N attempts) are the same, so they live in one place.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::pin;

use futures_util::StreamExt;
use futures_util::future::{Either, select};
use futures_util::stream::FuturesUnordered;
use sealdrop_protocol::backoff::{Attempts, Backoff, GiveUp, Retry};
use sealdrop_protocol::concurrency::{ConcurrencyController, PartOutcome};
use sealdrop_protocol::scheduler::{Action, PartScheduler};

use crate::error::ClientError;
use crate::platform::{self, AbortWatch};
use crate::progress::Reporter;

/// Runs parts through `scheduler` until all have succeeded, and returns the
/// `(part, etag)` list of [`Action::Done`]. `pace` sets the scheduler's in-flight limit
/// as outcomes come in (a run after a pause measures afresh); the reporter shows it.
///
/// `attempt(part)` makes one attempt at a part; `keep(part, value)` takes a
/// successful attempt's value and returns the ETag to record (empty for downloads) and
/// the plaintext bytes the part holds, for progress. A part that fails with a
/// retryable error is retried after its wait; one that is given up ends the run with
/// its own error (not retryable) or `part_failed` (attempts exhausted). Dropping the
/// returned future drops every attempt in flight, which aborts their requests; the
/// caller then tells the scheduler with [`PartScheduler::pause`].
pub(crate) async fn run_parts<T, F, Fut, K>(
    scheduler: &RefCell<PartScheduler>,
    pace: &RefCell<ConcurrencyController>,
    reporter: &RefCell<Reporter>,
    mut attempt: F,
    mut keep: K,
) -> Result<Vec<(u32, String)>, ClientError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
    K: FnMut(u32, T) -> (String, u64),
{
    let mut running = FuturesUnordered::new();
    let mut last_errors: BTreeMap<u32, ClientError> = BTreeMap::new();
    // When each part in flight started, and how many were in flight then.
    let mut started: HashMap<u32, (u64, u32)> = HashMap::new();
    let now = platform::now_ms();
    pace.borrow_mut().restart(now);
    let limit = pace.borrow().limit();
    scheduler.borrow_mut().set_concurrency(limit);
    reporter.borrow_mut().set_concurrency(now, limit);
    loop {
        let now = platform::now_ms();
        reporter.borrow_mut().tick(now);
        let action = scheduler.borrow_mut().poll(now);
        let wait = match action {
            Action::Start { part } => {
                let future = attempt(part);
                running.push(async move { (part, future.await) });
                let concurrent = u32::try_from(running.len()).unwrap_or(u32::MAX);
                started.insert(part, (now, concurrent));
                continue;
            }
            Action::Done { etags } => return Ok(etags),
            Action::Failed { part, reason } => {
                let last = last_errors.remove(&part).unwrap_or_else(|| {
                    ClientError::Unsupported(format!("part {part} failed without an error"))
                });
                return Err(match reason {
                    GiveUp::NotRetryable => last,
                    GiveUp::AttemptsExhausted { attempts } => ClientError::PartFailed {
                        part,
                        attempts,
                        last: Box::new(last),
                    },
                });
            }
            Action::WaitUntil(t) => Some(t.saturating_sub(now)),
            Action::Idle => None,
        };
        // Wake for the first of: a part finishing, a retry falling due, a progress tick.
        let timeout = match (wait, reporter.borrow().next_tick_in(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let event = match timeout {
            _ if running.is_empty() && timeout.is_none() => {
                return Err(ClientError::Unsupported(
                    "internal: the scheduler is idle with nothing in flight".into(),
                ));
            }
            None => running.next().await,
            Some(ms) => match select(running.next(), pin!(platform::sleep(ms))).await {
                Either::Left((event, _)) => event,
                Either::Right(((), _)) => None,
            },
        };
        let Some((part, result)) = event else {
            continue;
        };
        let now = platform::now_ms();
        let (started_ms, concurrent) = started.remove(&part).unwrap_or((now, 1));
        let outcome = match result {
            Ok(value) => {
                let (etag, bytes) = keep(part, value);
                if scheduler.borrow_mut().on_part_succeeded(part, etag) {
                    reporter.borrow_mut().part_done(now, bytes);
                }
                Some(PartOutcome::Succeeded {
                    bytes,
                    concurrent,
                    started_ms,
                    ended_ms: now,
                })
            }
            Err(error) => {
                let random = platform::random_u32()?;
                let retry = error.retry();
                scheduler
                    .borrow_mut()
                    .on_part_failed(part, now, retry, random);
                let outcome = link_trouble(&error, retry, started_ms, now);
                last_errors.insert(part, error);
                outcome
            }
        };
        if let Some(outcome) = outcome {
            let limit = pace.borrow_mut().on_outcome(outcome);
            scheduler.borrow_mut().set_concurrency(limit);
            reporter.borrow_mut().set_concurrency(now, limit);
        }
    }
}

/// The in-flight limit of one transfer: adapting up to `ceiling`, or (the bench-only
/// build's `benchFixedConcurrency`, src/bench.rs) `ceiling` throughout.
pub(crate) fn pace(ceiling: u32, fixed: bool) -> ConcurrencyController {
    if fixed {
        ConcurrencyController::fixed(ceiling, platform::now_ms())
    } else {
        ConcurrencyController::new(ceiling, platform::now_ms())
    }
}

/// What a failed attempt says about the link: a stall or a retryable failure does; a
/// busy session (`upload_busy`) and an error no retry fixes do not.
fn link_trouble(
    error: &ClientError,
    retry: Retry,
    started_ms: u64,
    ended_ms: u64,
) -> Option<PartOutcome> {
    match (error, retry) {
        (ClientError::Stalled { .. }, _) => Some(PartOutcome::Stalled {
            started_ms,
            ended_ms,
        }),
        (_, Retry::Later { .. }) => Some(PartOutcome::Failed {
            started_ms,
            ended_ms,
        }),
        (_, Retry::Busy { .. } | Retry::Never) => None,
    }
}

/// Makes `call` until it succeeds or [`Attempts`] gives it up: a failure that is not
/// retryable, or `backoff.max_attempts` failures (busy answers are waited out apart).
/// Answers the last error then. For the JSON calls, which are idempotent or harmless to
/// repeat.
pub(crate) async fn retrying<T, F, Fut>(backoff: Backoff, mut call: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut attempts = Attempts::default();
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        match attempts.on_failure(&backoff, error.retry(), platform::random_u32()?) {
            Ok(wait) => platform::sleep(wait).await,
            Err(_) => return Err(error),
        }
    }
}

/// Runs `operation` unless the caller's signal fires first; then drops the operation
/// (and with it every request and buffer it held) and answers `cancelled`.
pub(crate) async fn cancellable<T>(
    watch: &AbortWatch,
    operation: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    if watch.is_aborted() {
        return Err(ClientError::Cancelled);
    }
    match select(pin!(operation), watch.aborted()).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err(ClientError::Cancelled),
    }
}
