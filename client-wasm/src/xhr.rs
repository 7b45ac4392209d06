//! A part `PUT` through `XMLHttpRequest`: `fetch` cannot report upload progress, and
//! without progress a stalled upload cannot be told from a slow one. The body is a
//! `Blob` (the shape Chromium uploads fastest, TOOLCHAIN.md), every upload progress
//! event and state change feeds the stall watch ([`crate::stall`]), and dropping the
//! future aborts the request. XHR exists in pages and dedicated workers alike.

use std::rc::Rc;

use js_sys::{Function, Promise};
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, EventTarget, XmlHttpRequest};

use crate::error::ClientError;
use crate::http::status_error;
use crate::platform;
use crate::stall::Watchdog;

const WHAT: &str = "PUT part";

/// `PUT`s `body` to `url` and returns the ETag storage answered: from the `ETag`
/// header (S3, R2), or else from a JSON `{"etag":...}` body (docs/API.md). No
/// progress for `stall_ms` aborts it with `stalled`.
pub(crate) async fn put_blob(url: &str, body: &Blob, stall_ms: u64) -> Result<String, ClientError> {
    let unsupported =
        |e| ClientError::Unsupported(format!("XMLHttpRequest: {}", platform::describe(&e)));
    let xhr = XmlHttpRequest::new().map_err(unsupported)?;
    xhr.open_with_async("PUT", url, true).map_err(unsupported)?;
    let dog = Rc::new(Watchdog::new(stall_ms));
    let request = Request::watch(xhr, &dog)?;
    request
        .xhr
        .send_with_opt_blob(Some(body))
        .map_err(unsupported)?;
    if dog
        .guard(JsFuture::from(request.done.clone()))
        .await
        .is_none()
    {
        return Err(ClientError::Stalled {
            what: WHAT,
            after_ms: dog.limit_ms(),
        });
    }
    request.answer()
}

/// One XHR in flight, with its listeners. Dropping it before `loadend` removes the
/// listeners (so no Rust closure is called after it is freed) and aborts the request.
struct Request {
    xhr: XmlHttpRequest,
    /// Resolves on `loadend` (the listener is the promise's own `resolve`).
    done: Promise,
    on_progress: Closure<dyn FnMut()>,
    /// (target, event) pairs `on_progress` listens to.
    watched: Vec<(EventTarget, &'static str)>,
}

impl Request {
    fn watch(xhr: XmlHttpRequest, dog: &Rc<Watchdog>) -> Result<Self, ClientError> {
        let dog = dog.clone();
        let on_progress = Closure::<dyn FnMut()>::new(move || dog.touch());
        let upload: EventTarget = xhr
            .upload()
            .map_err(|e| {
                ClientError::Unsupported(format!("XHR upload: {}", platform::describe(&e)))
            })?
            .into();
        let target: EventTarget = xhr.clone().into();
        let watched = vec![
            (upload, "progress"),
            (target.clone(), "progress"),
            (target.clone(), "readystatechange"),
        ];
        let listener: &Function = on_progress.as_ref().unchecked_ref();
        for (t, event) in &watched {
            let _ = t.add_event_listener_with_callback(event, listener);
        }
        let done = Promise::new(&mut |resolve, _reject| {
            let _ = target.add_event_listener_with_callback("loadend", &resolve);
        });
        Ok(Self {
            xhr,
            done,
            on_progress,
            watched,
        })
    }

    /// The answer once `loadend` fired: the ETag, or the error the status means.
    fn answer(&self) -> Result<String, ClientError> {
        let status = self.xhr.status().unwrap_or(0);
        if status == 0 {
            // No HTTP answer: refused, reset, DNS, CORS (the browser says no more).
            return Err(ClientError::Network {
                what: WHAT,
                detail: "the connection failed".into(),
            });
        }
        let header = |name: &str| self.xhr.get_response_header(name).ok().flatten();
        let text = self.xhr.response_text().ok().flatten().unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(status_error(
                WHAT,
                status,
                &text,
                header("Retry-After").as_deref(),
            ));
        }
        if let Some(etag) = header("ETag").filter(|e| !e.is_empty()) {
            return Ok(etag);
        }
        #[derive(Deserialize)]
        struct PutAnswer {
            etag: String,
        }
        match serde_json::from_str::<PutAnswer>(&text) {
            Ok(answer) if !answer.etag.is_empty() => Ok(answer.etag),
            _ => Err(ClientError::InvalidResponse(
                "a part PUT answered without an ETag (is it exposed by CORS?)".into(),
            )),
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let listener: &Function = self.on_progress.as_ref().unchecked_ref();
        for (t, event) in &self.watched {
            let _ = t.remove_event_listener_with_callback(event, listener);
        }
        // DONE (4): finished; aborting then would do nothing, but say what we mean.
        if self.xhr.ready_state() != 4 {
            let _ = self.xhr.abort();
        }
    }
}
