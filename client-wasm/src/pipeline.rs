//! A download's records, fetched in parallel ranges and written to the sink in order.
//!
//! Ranges go through the shared [`run_parts`] loop (adaptive concurrency up to the
//! `concurrency` option, retries, stall aborts); each one's records are opened as soon
//! as it arrives, then wait in a reorder window until every range before it has been
//! written. A range may start only while it is within `concurrency + 1` ranges of the
//! next one to write (the ceiling, not the adaptive limit, so a limit that grows never
//! waits on the window), so however large the file and however slow one range or the
//! sink, the page holds at most that many ranges of plaintext: memory is bounded by
//! concurrency × range size. The scheduler, the sink's backpressure and this window are
//! the whole of the flow control.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;

use futures_util::future::try_join;
use js_sys::{Array, Function};
use sealdrop_protocol::concurrency::ConcurrencyController;
use sealdrop_protocol::format::{Layout, TAG_LEN};
use sealdrop_protocol::records::{Runs, plaintext_span, records_in};
use sealdrop_protocol::scheduler::PartScheduler;

use crate::control::Notify;
use crate::download::{Opener, RANGE_BYTES, Source};
use crate::error::ClientError;
use crate::offload::Pool;
use crate::platform;
use crate::progress::Reporter;
use crate::sink::Sink;
use crate::transfer::run_parts;

/// Fetches, opens and writes records `from..` of the file to `sink`, in order, as many
/// ranges in flight as `pace` allows (its ceiling sizes the window). Returns once the
/// last record has been written.
pub(crate) async fn run(
    source: &Source,
    opener: &Opener,
    from: u64,
    pace: ConcurrencyController,
    workers: u32,
    on_progress: Option<Function>,
    sink: &mut Sink,
) -> Result<(), ClientError> {
    let layout = opener.layout;
    let pool = Pool::start(workers, &opener.cipher).await;
    let pool = pool.as_ref();
    let sealed_record = u64::from(layout.record_size()) + TAG_LEN as u64;
    let per_range = records_in(RANGE_BYTES, sealed_record);
    let runs = Runs::new(layout.record_count().saturating_sub(from), per_range);
    let range_count = runs
        .count()
        .ok_or_else(|| ClientError::InvalidResponse("the file has too many ranges".into()))?;
    let records = |part| {
        runs.records(part)
            .map_or(0..0, |r| r.start + from..r.end + from)
    };
    let concurrency = pace.ceiling();
    let scheduler = RefCell::new(
        PartScheduler::new(range_count, pace.limit(), source.backoff, [])
            .map_err(|e| ClientError::InvalidOption(e.to_string()))?,
    );
    let mut reporter = Reporter::new(
        on_progress,
        layout.plaintext_size(),
        (range_count, per_range.saturating_mul(sealed_record)),
        pace.limit(),
        opener.cipher.backend(),
    );
    let pace = RefCell::new(pace);
    let before = plaintext_span(&layout, &(0..from)).map_or(0, |r| r.end);
    reporter.set_workers(pool.map_or(0, Pool::size));
    reporter.start(platform::now_ms(), before, 0);
    let reporter = RefCell::new(reporter);
    let window = &Window::new(concurrency + 1);
    let records = &records;

    let fetch = run_parts(
        &scheduler,
        &pace,
        &reporter,
        |part| async move {
            window.admitted(part).await;
            source.attempt_range(opener, records(part), pool).await
        },
        |part, pieces: Array| {
            window.arrived(part, pieces);
            (String::new(), bytes_of(&layout, &records(part)))
        },
    );
    let write = async {
        for part in 1..=range_count {
            let pieces = window.take(part).await;
            sink.write(pieces).await?;
            window.written(part);
        }
        Ok(())
    };
    try_join(fetch, write).await?;
    reporter.borrow_mut().finish(platform::now_ms());
    Ok(())
}

fn bytes_of(layout: &Layout, records: &Range<u64>) -> u64 {
    plaintext_span(layout, records).map_or(0, |r| r.end - r.start)
}

/// The ranges opened but not yet written, and the room for more.
struct Window {
    /// Ranges that may be opened ahead of the next one to write, that one included.
    size: u32,
    /// The next range to write (1-based).
    next: Cell<u32>,
    ready: RefCell<BTreeMap<u32, Array>>,
    notify: Notify,
}

impl Window {
    fn new(size: u32) -> Self {
        Self {
            size,
            next: Cell::new(1),
            ready: RefCell::default(),
            notify: Notify::default(),
        }
    }

    /// Resolves once range `part` is within the window.
    async fn admitted(&self, part: u32) {
        while part >= self.next.get() + self.size {
            self.notify.changed().await;
        }
    }

    /// Range `part` has been opened.
    fn arrived(&self, part: u32, pieces: Array) {
        self.ready.borrow_mut().insert(part, pieces);
        self.notify.notify();
    }

    /// Waits for range `part` (the next to write) and takes it.
    async fn take(&self, part: u32) -> Array {
        loop {
            if let Some(pieces) = self.ready.borrow_mut().remove(&part) {
                return pieces;
            }
            self.notify.changed().await;
        }
    }

    /// Range `part` is in the sink: the window moves on.
    fn written(&self, part: u32) {
        self.next.set(part + 1);
        self.notify.notify();
    }
}
