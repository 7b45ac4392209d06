//! Progress events for the caller's `onProgress`, measured with the protocol's
//! [`ThroughputMeter`] in plaintext bytes.
//!
//! A transfer reports at its start, after every part (or download range), about once
//! a second while parts are in flight (so speed and ETA follow a stall), and once at
//! the end with `bytesDone == bytesTotal`, and whenever the adaptive in-flight limit
//! changes. `bytesDone` never goes back: a part counts only once it has succeeded.

use js_sys::Function;
use sealdrop_protocol::progress::ThroughputMeter;

use crate::cipher::Backend;
use crate::interop;

/// How often to report while nothing finishes, in ms.
const TICK_MS: u64 = 1_000;

/// One progress event (the `TransferProgress` object of the TypeScript types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Bytes per second over the meter's window.
    pub speed: u64,
    /// Seconds left; `None` while the speed is unknown.
    pub eta: Option<u64>,
    pub parts_done: u32,
    pub parts_total: u32,
    /// Parts (ranges) allowed in flight now: the adaptive limit.
    pub concurrency: u32,
    /// Bytes of every part (range) but the last, as sent or fetched.
    pub part_size: u64,
    /// The file cipher's backend (`cipherBackend`): whether WebCrypto does the AES.
    pub backend: Backend,
    /// Cipher workers doing the AES (`cipherWorkers`); 0: the page itself.
    pub workers: u32,
}

/// Tracks one transfer's progress and hands snapshots to the callback.
pub(crate) struct Reporter {
    callback: Option<Function>,
    meter: ThroughputMeter,
    bytes_total: u64,
    bytes_done: u64,
    parts_total: u32,
    parts_done: u32,
    concurrency: u32,
    part_size: u64,
    backend: Backend,
    workers: u32,
    last_report: u64,
}

impl Reporter {
    /// A reporter for `bytes_total` plaintext bytes in `parts_total` parts of
    /// `part_size` bytes, `concurrency` of them in flight at first, sealed or opened on
    /// `backend`.
    pub(crate) fn new(
        callback: Option<Function>,
        bytes_total: u64,
        (parts_total, part_size): (u32, u64),
        concurrency: u32,
        backend: Backend,
    ) -> Self {
        Self {
            callback,
            meter: ThroughputMeter::default(),
            bytes_total,
            bytes_done: 0,
            parts_total,
            parts_done: 0,
            concurrency,
            part_size,
            backend,
            workers: 0,
            last_report: 0,
        }
    }

    /// How many cipher workers seal or open the records from now on (0: the page).
    pub(crate) fn set_workers(&mut self, workers: u32) {
        self.workers = workers;
    }

    /// The first report, before any part is sent; `parts_done` parts of `bytes_done`
    /// plaintext bytes were sent before (a resumed upload).
    pub(crate) fn start(&mut self, now_ms: u64, bytes_done: u64, parts_done: u32) {
        self.bytes_done = bytes_done.min(self.bytes_total);
        self.parts_done = parts_done.min(self.parts_total);
        self.meter.record(now_ms, self.bytes_done);
        self.report(now_ms);
    }

    /// A part of `bytes` plaintext bytes succeeded.
    pub(crate) fn part_done(&mut self, now_ms: u64, bytes: u64) {
        // A part sent again (storage lost it) succeeds twice: never report more than all.
        self.parts_done = (self.parts_done + 1).min(self.parts_total);
        self.bytes_done = (self.bytes_done + bytes).min(self.bytes_total);
        self.meter.record(now_ms, self.bytes_done);
        self.report(now_ms);
    }

    /// The in-flight limit is `concurrency` from now on: reported when it changed.
    pub(crate) fn set_concurrency(&mut self, now_ms: u64, concurrency: u32) {
        if self.concurrency != concurrency {
            self.concurrency = concurrency;
            self.report(now_ms);
        }
    }

    /// When the next periodic report is due, in ms from `now_ms`; `None` without a
    /// callback.
    pub(crate) fn next_tick_in(&self, now_ms: u64) -> Option<u64> {
        self.callback
            .as_ref()
            .map(|_| (self.last_report + TICK_MS).saturating_sub(now_ms))
    }

    /// Reports if a periodic report is due.
    pub(crate) fn tick(&mut self, now_ms: u64) {
        if self.next_tick_in(now_ms) == Some(0) {
            self.report(now_ms);
        }
    }

    /// The transfer is complete: the last report, at 100%.
    pub(crate) fn finish(&mut self, now_ms: u64) {
        self.bytes_done = self.bytes_total;
        self.parts_done = self.parts_total;
        self.meter.record(now_ms, self.bytes_done);
        self.report(now_ms);
    }

    fn snapshot(&self, now_ms: u64) -> Snapshot {
        let p = self.meter.progress(now_ms, self.bytes_total);
        Snapshot {
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            speed: p.speed,
            eta: p.eta,
            parts_done: self.parts_done,
            parts_total: self.parts_total,
            concurrency: self.concurrency,
            part_size: self.part_size,
            backend: self.backend,
            workers: self.workers,
        }
    }

    fn report(&mut self, now_ms: u64) {
        self.last_report = now_ms;
        if let Some(callback) = &self.callback {
            interop::call_progress(callback, &self.snapshot(now_ms));
        }
    }
}
