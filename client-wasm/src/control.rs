//! One upload's state as the person controls it: the protocol's [`Lifecycle`] (which
//! `pause()`, `resume()` and `cancel()` are allowed when), the error that paused or
//! failed it, the `onStateChange` callback, and the wake-up that lets the running
//! upload react at once to a call made from JS.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::task::{Poll, Waker};

use js_sys::Function;
use sealdrop_protocol::lifecycle::{Lifecycle, Stage, State};
use wasm_bindgen::JsValue;

use crate::error::ClientError;
use crate::interop;
use crate::platform;

/// The state of one upload, shared by the running upload and its `Upload` handle.
pub(crate) struct Control {
    lifecycle: RefCell<Lifecycle>,
    /// Why the upload is paused (attempts ran out) or failed; `None` otherwise.
    error: RefCell<Option<ClientError>>,
    on_state_change: Option<Function>,
    notify: Notify,
}

impl Control {
    /// A starting upload that tells `on_state_change` about every change.
    pub(crate) fn new(on_state_change: Option<Function>) -> Self {
        Self {
            lifecycle: RefCell::default(),
            error: RefCell::default(),
            on_state_change,
            notify: Notify::default(),
        }
    }

    /// The state now.
    pub(crate) fn state(&self) -> State {
        self.lifecycle.borrow().state()
    }

    /// The error that paused or failed the upload, if that is what happened.
    pub(crate) fn error(&self) -> Option<ClientError> {
        self.error.borrow().clone()
    }

    /// `upload.pause()`: stops new parts and aborts those in flight.
    pub(crate) fn pause(&self) {
        self.change(|l| l.pause(), None);
    }

    /// `upload.resume()`.
    pub(crate) fn resume(&self) {
        self.change(|l| l.resume(), None);
    }

    /// `upload.cancel()` (or the caller's signal): answers whether it was allowed.
    pub(crate) fn cancel(&self) -> bool {
        self.change(|l| l.cancel(), None)
    }

    /// A request ran out of attempts: paused, keeping `error` for `upload.error`.
    pub(crate) fn pause_on_error(&self, error: ClientError) {
        self.change(|l| l.pause_on_error(), Some(error));
    }

    /// The work moved on to `stage`.
    pub(crate) fn advance(&self, stage: Stage) {
        self.change(|l| l.advance(stage), None);
    }

    /// The upload completed.
    pub(crate) fn finish(&self) {
        self.change(|l| l.finish(), None);
    }

    /// An error no retry can fix.
    pub(crate) fn fail(&self, error: ClientError) {
        self.change(|l| l.fail(), Some(error));
    }

    /// Resolves once the upload may work: at once when it is running, after `resume()`
    /// when it is paused; fails with `cancelled` once it is cancelled (or final).
    pub(crate) async fn until_running(&self) -> Result<(), ClientError> {
        loop {
            match self.state() {
                State::Paused => self.notify.changed().await,
                State::Starting | State::Uploading | State::Completing => return Ok(()),
                State::Done | State::Failed | State::Cancelled => {
                    return Err(ClientError::Cancelled);
                }
            }
        }
    }

    /// Resolves when the upload stops running: paused or cancelled.
    pub(crate) async fn interrupted(&self) {
        while matches!(
            self.state(),
            State::Starting | State::Uploading | State::Completing
        ) {
            self.notify.changed().await;
        }
    }

    /// Resolves when the upload is cancelled (or otherwise final).
    pub(crate) async fn cancelled(&self) {
        while !self.state().is_final() {
            self.notify.changed().await;
        }
    }

    /// Applies one lifecycle event; on a change, keeps `error` (cleared otherwise),
    /// wakes the running upload and tells `onStateChange`. The callback runs after
    /// every borrow is released, so it may call `pause()` or `resume()` itself.
    fn change(
        &self,
        event: impl FnOnce(&mut Lifecycle) -> bool,
        error: Option<ClientError>,
    ) -> bool {
        let changed = event(&mut self.lifecycle.borrow_mut());
        if !changed {
            return false;
        }
        *self.error.borrow_mut() = error;
        self.notify.notify();
        if let Some(callback) = &self.on_state_change {
            let state = JsValue::from_str(self.state().as_str());
            let error = self.error().map_or(JsValue::NULL, |e| interop::error(&e));
            if let Err(e) = callback.call2(&JsValue::UNDEFINED, &state, &error) {
                platform::warn("sealdrop: onStateChange threw", &e);
            }
        }
        true
    }
}

/// Wakes every task waiting in [`Notify::changed`] when [`Notify::notify`] is called
/// (also the download's in-order writer and the ranges waiting for room).
#[derive(Default)]
pub(crate) struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    pub(crate) fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves at the next [`Notify::notify`].
    pub(crate) fn changed(&self) -> impl Future<Output = ()> + '_ {
        let start = self.generation.get();
        poll_fn(move |cx| {
            if self.generation.get() != start {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            // Polled again and again by a `select` while parts finish: keep one waker
            // per task, not one per poll.
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}
