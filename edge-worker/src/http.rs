//! HTTP plumbing shared by the routes and the Durable Object: JSON and error answers,
//! CORS, capped body reads, and turning platform failures into API errors.
//!
//! Every failure a client sees is an [`ApiError`] from `protocol/`: its status and
//! `{"error":{"code","message"}}`. Platform errors (`worker::Error`, a JS exception)
//! are logged here with what was being done and answered as the fixed-text
//! `500 internal` or `500 storage_error`, so nothing about internals leaks.

use std::fmt::Display;

use futures_util::StreamExt as _;
use sealdrop_protocol::api_error::ApiError;
use serde::Serialize;
use worker::{Headers, Request, Response, ResponseBody, console_error};

// ---------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------

/// A JSON answer with `status`.
pub(crate) fn json<T: Serialize>(status: u16, body: &T) -> Result<Response, ApiError> {
    Ok(Response::from_json(body)
        .or_internal("serializing a JSON answer")?
        .with_status(status))
}

/// The answer for an API error: its status and `{"error":{"code","message"}}`.
pub(crate) fn error_response(error: &ApiError) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
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

// ---------------------------------------------------------------------------------
// CORS: the npm client runs on other origins, so every /api and /blob answer allows any
// origin (no cookies are used: the owner token travels in Authorization).
// ---------------------------------------------------------------------------------

const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Range";
const EXPOSE_HEADERS: &str = "ETag, Content-Range, Content-Length";

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
    header(req, "content-length").and_then(|v| v.trim().parse().ok())
}

/// Reads a body of at most `limit` bytes: `413 body_too_large` as soon as it is known to
/// be over (from `Content-Length`, or while reading), without buffering the rest.
pub(crate) async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::body_too_large(limit);
    if content_length(req).is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream().or_internal("reading a request body")?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            // The client went away or sent a broken body: nothing useful to answer.
            console_error!("reading a request body: {e}");
            ApiError::invalid_json("the request body could not be read")
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------
// Platform failures → API errors
// ---------------------------------------------------------------------------------

/// Logs a platform failure and answers `500 internal`.
pub(crate) fn internal(context: &str, error: impl Display) -> ApiError {
    console_error!("internal error while {context}: {error}");
    ApiError::internal()
}

/// Logs a storage failure and answers `500 storage_error`.
pub(crate) fn storage(context: &str, error: impl Display) -> ApiError {
    console_error!("storage error while {context}: {error}");
    ApiError::storage()
}

/// `.or_internal("what")?` / `.or_storage("what")?` on platform results.
pub(crate) trait OrApiError<T> {
    /// A failure becomes a logged `500 internal`.
    fn or_internal(self, context: &str) -> Result<T, ApiError>;
    /// A failure becomes a logged `500 storage_error`.
    fn or_storage(self, context: &str) -> Result<T, ApiError>;
}

impl<T, E: Display> OrApiError<T> for Result<T, E> {
    fn or_internal(self, context: &str) -> Result<T, ApiError> {
        self.map_err(|e| internal(context, e))
    }
    fn or_storage(self, context: &str) -> Result<T, ApiError> {
        self.map_err(|e| storage(context, e))
    }
}
