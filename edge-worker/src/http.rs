//! HTTP plumbing shared by the routes and the Durable Object: JSON and error answers
//! (with `Retry-After`), CORS, `HEAD`, bounded body reads that still drain what they
//! refuse, and turning platform failures into API errors.
//!
//! Every failure a client sees is an [`ApiError`] from `protocol/`: its status,
//! `{"error":{"code","message"}}` and, for a retryable condition with a known wait,
//! `Retry-After`. Platform errors (`worker::Error`, a JS exception) are logged here with
//! what was being done and answered as the fixed-text `500 internal`, so nothing about
//! internals leaks.

use std::fmt::Display;

use sealdrop_protocol::api_error::{ApiError, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{ReadableStream, ReadableStreamDefaultReader, WritableStream};
use worker::{Headers, Request, Response, ResponseBody, console_error, console_warn};

// ---------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------

/// A JSON answer with `status`.
pub(crate) fn json<T: Serialize>(status: u16, body: &T) -> Result<Response, ApiError> {
    Ok(Response::from_json(body)
        .or_internal("serializing a JSON answer")?
        .with_status(status))
}

/// An empty answer with `status` (204).
pub(crate) fn empty(status: u16) -> Result<Response, ApiError> {
    Ok(Response::empty()
        .or_internal("answering")?
        .with_status(status))
}

/// The answer for an API error: its status, `{"error":{"code","message"}}`, and
/// `Retry-After` when it has one.
pub(crate) fn error_response(error: &ApiError) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    if let Some(seconds) = error.retry_after {
        headers.set("retry-after", &seconds.to_string())?;
    }
    Ok(
        Response::from_body(ResponseBody::Body(error.to_json().into_bytes()))?
            .with_status(error.status())
            .with_headers(headers),
    )
}

/// The answer for a handler's result, errors included.
pub(crate) fn respond(result: Result<Response, ApiError>) -> worker::Result<Response> {
    result.or_else(|e| error_response(&e))
}

/// The answer to a `HEAD`: the `GET` answer's status and headers (its
/// `Content-Length` the length the body had), without the body.
pub(crate) async fn head_of(mut get: Response) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in get.headers().entries() {
        headers.append(&name, &value)?;
    }
    if headers.get("content-length")?.is_none() {
        let body = get.bytes().await?;
        headers.set("content-length", &body.len().to_string())?;
    }
    Ok(Response::empty()?
        .with_status(get.status_code())
        .with_headers(headers))
}

// ---------------------------------------------------------------------------------
// CORS: the npm client runs on other origins, so every /api and /blob answer allows any
// origin (no cookies are used: the owner token travels in Authorization).
// ---------------------------------------------------------------------------------

const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Range";
const EXPOSE_HEADERS: &str = "ETag, Content-Range, Content-Length, Retry-After";

/// `204` for a CORS preflight.
pub(crate) fn preflight() -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("access-control-allow-methods", ALLOW_METHODS)?;
    headers.set("access-control-allow-headers", ALLOW_HEADERS)?;
    headers.set("access-control-max-age", "86400")?;
    with_cors(Response::empty()?.with_status(204).with_headers(headers))
}

/// `response` with the CORS headers added. The headers are copied into a fresh set:
/// a response fetched from a Durable Object has immutable headers.
pub(crate) fn with_cors(response: Response) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in response.headers().entries() {
        headers.append(&name, &value)?;
    }
    headers.set("access-control-allow-origin", "*")?;
    headers.set("access-control-expose-headers", EXPOSE_HEADERS)?;
    Ok(response.with_headers(headers))
}

// ---------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------

/// A header's value, if present and readable.
pub(crate) fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The declared `Content-Length`, if present and a number.
pub(crate) fn content_length(req: &Request) -> Option<u64> {
    header(req, "content-length").and_then(|v| parse_length(&v))
}

/// A `Content-Length` value: ASCII digits only.
fn parse_length(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Reads a body of at most `limit` bytes. Over the limit (declared, or found while
/// reading a chunked body) it answers `413 body_too_large` only after draining the rest
/// unread: a server that answers while the client is still sending and then closes gives
/// the client a reset connection instead of the answer. The rest is piped away by the
/// runtime ([`discard`]), never copied into wasm.
pub(crate) async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::body_too_large(limit);
    if content_length(req).is_some_and(|len| len > limit as u64) {
        drain(req).await;
        return Err(too_large());
    }
    let Some(body) = req.inner().body() else {
        return Ok(Vec::new());
    };
    let reader: ReadableStreamDefaultReader = body
        .get_reader()
        .dyn_into()
        .map_err(|_| internal("reading a request body", "no default reader"))?;
    // The client went away or sent a broken body: nothing useful to answer.
    let broken = |e: JsValue| {
        console_error!("reading a request body: {e:?}");
        ApiError::invalid_json("the request body could not be read")
    };
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(broken)?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done")).map_err(broken)?;
        if done.as_bool().unwrap_or(true) {
            return Ok(out);
        }
        let value = Reflect::get(&chunk, &JsValue::from_str("value")).map_err(broken)?;
        let bytes: Uint8Array = value.dyn_into().map_err(broken)?;
        if out.len() + bytes.length() as usize > limit {
            reader.release_lock();
            discard(body).await;
            return Err(too_large());
        }
        let at = out.len();
        out.resize(at + bytes.length() as usize, 0);
        bytes.copy_to(&mut out[at..]);
    }
}

/// Reads a request's body to its end without keeping it, so a client still sending gets
/// the answer (e.g. a refused part PUT). The runtime pipes it; nothing enters wasm.
pub(crate) async fn drain(req: &Request) {
    if let Some(body) = req.inner().body()
        && !body.locked()
    {
        discard(body).await;
    }
}

/// Pipes `body` into a sink that drops everything.
pub(crate) async fn discard(body: ReadableStream) {
    let result = match WritableStream::new() {
        Ok(sink) => JsFuture::from(body.pipe_to(&sink)).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        console_warn!("discarding a body: {e:?}");
    }
}

// ---------------------------------------------------------------------------------
// Platform failures → API errors
// ---------------------------------------------------------------------------------

/// Logs a platform failure and answers `500 internal`.
pub(crate) fn internal(context: &str, error: impl Display) -> ApiError {
    console_error!("internal error while {context}: {error}");
    ApiError::internal()
}

/// `.or_internal("what")?` on platform results.
pub(crate) trait OrApiError<T> {
    /// A failure becomes a logged `500 internal`.
    fn or_internal(self, context: &str) -> Result<T, ApiError>;
}

impl<T, E: Display> OrApiError<T> for Result<T, E> {
    fn or_internal(self, context: &str) -> Result<T, ApiError> {
        self.map_err(|e| internal(context, e))
    }
}

/// The answer of an internal call to another Durable Object (`callee` names it in
/// logs): its JSON body on `2xx` (an empty body reads as `null`), else the refusal it
/// carries, with its `Retry-After`, so the caller answers the client what the object said.
pub(crate) async fn object_answer<T: DeserializeOwned>(
    mut answer: Response,
    callee: &str,
) -> Result<T, ApiError> {
    let status = answer.status_code();
    let text = answer
        .text()
        .await
        .or_internal(&format!("reading a {callee} answer"))?;
    if (200..300).contains(&status) {
        let text = if text.is_empty() { "null" } else { &text };
        return serde_json::from_str(text).or_internal(&format!("reading a {callee} answer"));
    }
    let mut error: ApiError = serde_json::from_str::<ErrorBody>(&text)
        .or_internal(&format!("reading a {callee} refusal"))?
        .into();
    error.retry_after = answer
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok());
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_length("5242880"), Some(5_242_880));
        assert_eq!(parse_length(" 7 "), Some(7));
        for bad in ["", "+5", "-1", "1e3", "5 5", "99999999999999999999999"] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }
}
