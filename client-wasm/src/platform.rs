//! What the client takes from the JS global scope: `fetch`, timers, the clock, random
//! bytes, `location`, `indexedDB`, `crypto.subtle`, and `AbortSignal`s.
//!
//! Everything is looked up on the global object rather than on `window`, so the same
//! build runs in a page and, later, in a dedicated Web Worker (roadmap: throughput).
//! `fetch` is resolved at each call, so a page that wraps `globalThis.fetch` (a test
//! counting requests, a proxy for auth) sees every request.

use std::future::Future;

use futures_util::FutureExt;
use futures_util::future::{Either, pending};
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, AddEventListenerOptions, RequestInit};

use crate::error::ClientError;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, looked up when called.
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(input: &str, init: &RequestInit) -> Result<Promise, JsValue>;

    /// The global `setTimeout`.
    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn set_timeout(handler: &Function, ms: f64) -> Result<JsValue, JsValue>;
}

/// Starts `fetch(url, init)`; fails only if there is no `fetch` to call.
pub(crate) fn fetch(url: &str, init: &RequestInit) -> Result<JsFuture, ClientError> {
    global_fetch(url, init)
        .map(JsFuture::from)
        .map_err(|e| ClientError::Unsupported(format!("fetch: {}", describe(&e))))
}

/// Milliseconds since the Unix epoch, for the scheduler and the throughput meter.
pub(crate) fn now_ms() -> u64 {
    // Date.now() is a whole, non-negative number of ms.
    js_sys::Date::now() as u64
}

/// Resolves after `ms` milliseconds. Dropping the future leaves a harmless timer
/// behind: it resolves a promise nobody awaits, and no Rust closure is involved.
pub(crate) async fn sleep(ms: u64) {
    let ms = ms.min(i32::MAX as u64) as f64;
    let mut scheduled = true;
    let promise = Promise::new(&mut |resolve, _reject| {
        scheduled = set_timeout(&resolve, ms).is_ok();
    });
    if scheduled {
        // The promise only ever resolves.
        let _ = JsFuture::from(promise).await;
    }
}

/// Fills `out` from the platform's CSPRNG (`crypto.getRandomValues`).
pub(crate) fn random_bytes(out: &mut [u8]) -> Result<(), ClientError> {
    getrandom::fill(out).map_err(|e| ClientError::Unsupported(format!("crypto random: {e}")))
}

/// A uniformly random `u32` for backoff jitter.
pub(crate) fn random_u32() -> Result<u32, ClientError> {
    getrandom::u32().map_err(|e| ClientError::Unsupported(format!("crypto random: {e}")))
}

/// `globalThis[name]`, unless it is missing (`undefined` or `null`).
/// Whether the global scope has `name` (`Worker`, ...).
pub(crate) fn has_global(name: &str) -> bool {
    global_property(name).is_some()
}

fn global_property(name: &str) -> Option<JsValue> {
    Reflect::get(&js_sys::global(), &name.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

/// The global `indexedDB` (pages and workers have it; an opaque origin may not).
pub(crate) fn indexed_db() -> Result<web_sys::IdbFactory, ClientError> {
    global_property("indexedDB")
        .and_then(|v| v.dyn_into().ok())
        .ok_or_else(|| ClientError::PersistFailed("this browser context has no IndexedDB".into()))
}

/// `crypto.subtle` (only in secure contexts: https, or http on localhost).
pub(crate) fn subtle() -> Result<web_sys::SubtleCrypto, ClientError> {
    global_property("crypto")
        .and_then(|c| Reflect::get(&c, &"subtle".into()).ok())
        .filter(|s| !s.is_undefined() && !s.is_null())
        .and_then(|s| s.dyn_into().ok())
        .ok_or_else(|| {
            ClientError::PersistFailed("crypto.subtle is missing (not a secure context)".into())
        })
}

/// `location.origin` of the page or worker, if it has one.
pub(crate) fn location_origin() -> Option<String> {
    let location = global_property("location")?;
    Reflect::get(&location, &"origin".into()).ok()?.as_string()
}

/// A readable description of a thrown JS value (an `Error`'s message, or its text).
pub(crate) fn describe(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// Logs a problem that must not fail the transfer (e.g. a throwing progress callback).
pub(crate) fn warn(message: &str, value: &JsValue) {
    web_sys::console::warn_2(&JsValue::from_str(message), value);
}

/// Watches a caller's `AbortSignal`: [`aborted`](AbortWatch::aborted) resolves when it
/// fires. The listener is the promise's own `resolve` function, so no Rust closure can
/// be called after it is dropped. Dropping the watch removes the listener and settles
/// the promise, so nothing waits on it forever.
pub(crate) struct AbortWatch {
    /// The signal, the listener and the promise it resolves; `None` without a signal.
    watched: Option<(AbortSignal, Option<Function>, Promise)>,
}

impl AbortWatch {
    /// Watches `signal`; `None` gives a watch that never fires.
    pub(crate) fn new(signal: Option<AbortSignal>) -> Self {
        let watched = signal.map(|signal| {
            let mut listener = None;
            let promise = Promise::new(&mut |resolve, _reject| {
                if signal.aborted() {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                } else {
                    let options = AddEventListenerOptions::new();
                    options.set_once(true);
                    let _ = signal.add_event_listener_with_callback_and_add_event_listener_options(
                        "abort", &resolve, &options,
                    );
                }
                listener = Some(resolve);
            });
            // `Promise::new` runs its executor at once: the listener is set by now.
            (signal, listener, promise)
        });
        Self { watched }
    }

    /// Whether the signal has fired.
    pub(crate) fn is_aborted(&self) -> bool {
        self.watched.as_ref().is_some_and(|(s, _, _)| s.aborted())
    }

    /// Resolves when the signal fires (at once if it already has); never without one.
    pub(crate) fn aborted(&self) -> impl Future<Output = ()> + Unpin + use<> {
        match &self.watched {
            Some((_, _, promise)) => Either::Left(JsFuture::from(promise.clone()).map(|_| ())),
            None => Either::Right(pending()),
        }
    }
}

impl Drop for AbortWatch {
    fn drop(&mut self) {
        if let Some((signal, Some(listener), _)) = self.watched.take() {
            let _ = signal.remove_event_listener_with_callback("abort", &listener);
            // Settle the promise: whatever awaited it is gone, and its callbacks free
            // themselves once it settles.
            let _ = listener.call0(&JsValue::UNDEFINED);
        }
    }
}
