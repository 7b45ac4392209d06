//! The page's side of the cipher workers: a small pool of dedicated module Workers
//! (`sealdrop_worker.js`, which loads this same wasm package and runs
//! [`crate::worker`]) that seal an upload's parts and open a download's ranges, so the
//! page's main thread keeps only the scheduling, the requests and the sink.
//!
//! Measured before the move (BENCHMARKS.md): a 4 GiB download decrypting in the page
//! spent 60 s of its 96 s in main-thread tasks over 50 ms (the longest 438 ms), and
//! an upload's reads, record copies and `Blob` assembly ran there too. WebCrypto in
//! one context does not get faster with more operations in flight (TOOLCHAIN.md), so
//! more than one worker is what lets AES use more than one core.
//!
//! What crosses: the file's `CryptoKey`s (structured-cloneable though not
//! extractable: no key byte leaves WebCrypto) and header with every job; for a part,
//! the file `Blob` (a handle: the worker reads its own slices) and the records' indexes,
//! answered by the sealed `Blob` and the records' tags; for a range, the fetched bytes,
//! *transferred* (the page's buffer is detached, not copied), answered by the
//! plaintexts, transferred back. The rules stay where they are: the worker runs the
//! same [`seal_records`](crate::seal::seal_records) and
//! [`open_records`](crate::download::open_records) as the page would.
//!
//! The pool lives as long as one run of a transfer (dropped, it terminates its
//! workers). Where `Worker` is missing, the cipher is aes-gcm (its keys live in this
//! wasm instance), or a worker fails to start (its script not served, a policy that
//! refuses it), [`Pool::start`] answers `None` and the page does the work, as before.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Uint8Array};
use sealdrop_protocol::format::{Layout, TAG_LEN};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, ErrorEvent, Event, MessageEvent, Worker};

use crate::cipher::FileCipher;
use crate::error::ClientError;
use crate::platform;
use crate::spare;
use crate::worker::{self, Job};

/// Workers per transfer unless the caller says: two, so AES can use two cores.
pub(crate) const DEFAULT_WORKERS: u32 = 2;
/// Largest `workers`.
pub(crate) const MAX_WORKERS: u32 = 8;

#[wasm_bindgen(module = "/js/spawn.js")]
extern "C" {
    /// `new Worker(new URL("…/sealdrop_worker.js", import.meta.url), { type: "module" })`.
    #[wasm_bindgen(catch, js_name = spawnCipherWorker)]
    fn spawn_cipher_worker() -> Result<Worker, JsValue>;
}

/// The cipher workers of one transfer.
pub(crate) struct Pool {
    slots: Vec<Slot>,
    next_job: Cell<u32>,
}

/// One worker and the jobs it has not answered yet.
struct Slot {
    worker: Worker,
    /// Job id → the `resolve` and `reject` of the promise its caller awaits. Id 0 is
    /// the worker's "ready".
    pending: Rc<RefCell<HashMap<u32, (Function, Function)>>>,
    /// Jobs sent and not yet answered, to pick the least busy worker.
    in_flight: Cell<u32>,
    /// The worker failed (an uncaught error): no more jobs go to it.
    failed: Rc<Cell<bool>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl Pool {
    /// Starts `size` workers for `cipher` and waits until each has loaded the wasm.
    /// `None` (the page seals and opens itself) for a size of 0, the aes-gcm backend,
    /// a scope without `Worker`, or a worker that fails to start (with a warning).
    pub(crate) async fn start(size: u32, cipher: &FileCipher) -> Option<Pool> {
        if size == 0 || cipher.crypto_keys().is_none() || !platform::has_global("Worker") {
            return None;
        }
        let mut slots = Vec::new();
        let mut ready = Vec::new();
        for _ in 0..size {
            match Slot::spawn() {
                Ok((slot, started)) => {
                    slots.push(slot);
                    ready.push(JsFuture::from(started));
                }
                Err(e) => {
                    platform::warn("sealdrop: no cipher worker, sealing in the page", &e);
                    return None;
                }
            }
        }
        let pool = Pool {
            slots,
            next_job: Cell::new(1),
        };
        for started in ready {
            if let Err(e) = started.await {
                platform::warn(
                    "sealdrop: a cipher worker did not start, sealing in the page",
                    &e,
                );
                return None;
            }
        }
        Some(pool)
    }

    /// How many workers the pool has.
    pub(crate) fn size(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Seals records `records` of `file` (`size` plaintext bytes) in a worker: the
    /// sealed `Blob` and the records' tags.
    pub(crate) async fn seal(
        &self,
        cipher: &FileCipher,
        file: &Blob,
        size: u64,
        records: Range<u64>,
    ) -> Result<(Blob, Vec<u8>), ClientError> {
        let count = records.end.saturating_sub(records.start);
        let job = Job::Seal {
            file: file.clone(),
            size,
            records,
        };
        let answer = self.call(cipher, job).await?;
        let body: Blob = worker::field(&answer, "body")?
            .dyn_into()
            .map_err(|_| lost("its answer has no body"))?;
        let tags: Uint8Array = worker::field(&answer, "tags")?
            .dyn_into()
            .map_err(|_| lost("its answer has no tags"))?;
        if u64::from(tags.length()) != count * TAG_LEN as u64 {
            return Err(lost("its answer has the wrong number of tags"));
        }
        Ok((body, tags.to_vec()))
    }

    /// Opens records `records` from `body` (the section's bytes from `offset` on) in a
    /// worker, which takes `body`'s buffer and gives it back with the plaintexts, in
    /// order (the buffer to the [spare](crate::spare) ones).
    pub(crate) async fn open(
        &self,
        cipher: &FileCipher,
        layout: &Layout,
        records: Range<u64>,
        offset: u64,
        body: Uint8Array,
    ) -> Result<Array, ClientError> {
        let job = Job::Open {
            section_len: layout.section_len(),
            records,
            offset,
            body,
        };
        let answer = self.call(cipher, job).await?;
        let spent = worker::field(&answer, "spent").ok();
        if let Some(spent) = spent.and_then(|b| b.dyn_into().ok()) {
            spare::give(spent);
        }
        worker::field(&answer, "pieces")?
            .dyn_into()
            .map_err(|_| lost("its answer has no plaintext"))
    }

    /// Sends `job` to the least busy worker and awaits its answer (an error it
    /// answered comes back as the same [`ClientError`]).
    async fn call(&self, cipher: &FileCipher, job: Job) -> Result<JsValue, ClientError> {
        let slot = self
            .slots
            .iter()
            .filter(|s| !s.failed.get())
            .min_by_key(|s| s.in_flight.get())
            .ok_or_else(|| lost("every cipher worker failed"))?;
        let id = self.next_job.get();
        self.next_job.set(id.wrapping_add(1).max(1));
        let (message, transfer) = job.message(id, cipher)?;
        let (promise, resolve, reject) = deferred()?;
        slot.pending.borrow_mut().insert(id, (resolve, reject));
        if let Err(e) = slot.worker.post_message_with_transfer(&message, &transfer) {
            slot.pending.borrow_mut().remove(&id);
            return Err(lost(&platform::describe(&e)));
        }
        slot.in_flight.set(slot.in_flight.get() + 1);
        let _busy = Busy(&slot.in_flight);
        let answer = JsFuture::from(promise)
            .await
            .map_err(|e| lost(&platform::describe(&e)))?;
        worker::answer_result(answer)
    }
}

/// A slot's worker ends with it: with its pool, or when a later worker of a pool being
/// started fails and the pool is given up.
impl Drop for Slot {
    fn drop(&mut self) {
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}

impl Slot {
    /// Starts a worker: the slot, and a promise that resolves once it has loaded.
    fn spawn() -> Result<(Slot, Promise), JsValue> {
        let worker = spawn_cipher_worker()?;
        let pending: Rc<RefCell<HashMap<u32, (Function, Function)>>> = Rc::default();
        let failed = Rc::new(Cell::new(false));
        let (started, resolve, reject) =
            deferred().map_err(|e| JsValue::from_str(&e.to_string()))?;
        pending
            .borrow_mut()
            .insert(worker::READY, (resolve, reject));

        let answers = pending.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            let Some(id) = worker::job_of(&data) else {
                return;
            };
            if let Some((resolve, _)) = answers.borrow_mut().remove(&id) {
                let _ = resolve.call1(&JsValue::UNDEFINED, &data);
            }
        });
        let answers = pending.clone();
        let broken = failed.clone();
        // A script that fails to load (404, wrong type, refused by the page's policy)
        // fires a plain `Event`, not an `ErrorEvent`: reading its `message` as an
        // `ErrorEvent` would throw before anything waiting is told, and the transfer
        // would wait for ever on a worker that never starts.
        let on_error = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
            event.prevent_default();
            broken.set(true);
            let detail = event
                .dyn_ref::<ErrorEvent>()
                .map(ErrorEvent::message)
                .unwrap_or_else(|| "its script did not load".to_owned());
            let reason = JsValue::from_str(&format!("the cipher worker failed: {detail}"));
            for (_, (_, reject)) in answers.borrow_mut().drain() {
                let _ = reject.call1(&JsValue::UNDEFINED, &reason);
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let slot = Slot {
            worker,
            pending,
            in_flight: Cell::new(0),
            failed,
            _on_message: on_message,
            _on_error: on_error,
        };
        Ok((slot, started))
    }
}

/// Counts a job in flight until dropped (answered, failed or abandoned).
struct Busy<'a>(&'a Cell<u32>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A promise with its `resolve` and `reject`.
fn deferred() -> Result<(Promise, Function, Function), ClientError> {
    let mut parts = None;
    let promise = Promise::new(&mut |resolve, reject| parts = Some((resolve, reject)));
    // The executor runs synchronously, inside `new Promise`.
    let (resolve, reject) = parts.ok_or_else(|| lost("no promise executor"))?;
    Ok((promise, resolve, reject))
}

/// A worker that did not answer as it should (code `unsupported`).
fn lost(detail: &str) -> ClientError {
    ClientError::Unsupported(format!("cipher worker: {detail}"))
}
