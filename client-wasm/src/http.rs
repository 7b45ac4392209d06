//! HTTP: the JSON calls of docs/API.md and ranged `GET`s with `fetch`, every failure
//! classified into a [`ClientError`]. Part `PUT`s go through XHR ([`crate::xhr`]),
//! the one API with upload progress.
//!
//! Every request is owned by its future: dropping the future (a pause, a cancel, a
//! stall, a failed sibling part) aborts the request at once through its own
//! `AbortController`. Every request is also watched for stalls ([`crate::stall`]): no
//! answer, or no body bytes, for `stallTimeoutMs` aborts it with `stalled`, which is
//! retried like a network error.

use std::ops::Range;

use js_sys::{Object, Reflect, Uint8Array};
use sealdrop_protocol::backoff::parse_retry_after;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Headers, ReadableStream, ReadableStreamByobReader,
    ReadableStreamDefaultReader, RequestCache, RequestInit, Response,
};

use crate::error::ClientError;
use crate::platform;
use crate::spare;
use crate::stall::Watchdog;

/// Issues requests, each with its own abort and stall watch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Http {
    /// `stallTimeoutMs`.
    pub stall_ms: u64,
}

/// The lenient shape of an error body: any code string is kept, so codes added by a
/// newer server still reach the caller.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    message: String,
}

/// The error for a failing status: the API's JSON error when the body is one,
/// `http_<status>` otherwise, with the `Retry-After` the answer carried.
pub(crate) fn status_error(
    what: &'static str,
    status: u16,
    body: &str,
    retry_after: Option<&str>,
) -> ClientError {
    let retry_after_ms = retry_after.and_then(|v| parse_retry_after(v, platform::now_ms()));
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(body) => ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
            retry_after_ms,
        },
        Err(_) => ClientError::Http {
            status,
            what,
            retry_after_ms,
        },
    }
}

/// Aborts its request when dropped (after the request finished, that does nothing).
struct AbortOnDrop(AbortController);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Http {
    /// Runs one request: `fetch` with its own abort, the failing statuses turned into
    /// errors, `read` applied to a 2xx answer, all under the stall watch.
    async fn request<T>(
        &self,
        what: &'static str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&JsValue>,
        read: impl AsyncFnOnce(Response, &Watchdog) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let controller = AbortController::new().map_err(|e| {
            ClientError::Unsupported(format!("AbortController: {}", platform::describe(&e)))
        })?;
        let init = RequestInit::new();
        init.set_method(method);
        init.set_signal(Some(&controller.signal()));
        // Nothing of a transfer belongs in the HTTP cache: not owner tokens, not
        // gigabytes of ciphertext ranges (which would evict everything else), and a
        // retried range must be asked of storage, not half-answered from a cut entry.
        init.set_cache(RequestCache::NoStore);
        if !headers.is_empty() {
            let h = Headers::new().map_err(|e| unexpected(what, &e))?;
            for (name, value) in headers {
                h.set(name, value).map_err(|e| unexpected(what, &e))?;
            }
            init.set_headers(&h);
        }
        if let Some(body) = body {
            init.set_body(body);
        }
        let _abort = AbortOnDrop(controller);
        let dog = Watchdog::new(self.stall_ms);
        let work = async {
            let response = platform::fetch(url, &init)?
                .await
                .map_err(|e| network(what, &e))?;
            let response: Response = response
                .dyn_into()
                .map_err(|_| ClientError::Unsupported("fetch did not give a Response".into()))?;
            dog.touch();
            if !response.ok() {
                let status = response.status();
                // The body of an error is small; if it cannot be read, the status speaks.
                let text = text(what, &response).await.unwrap_or_default();
                let retry_after = response.headers().get("Retry-After").ok().flatten();
                return Err(status_error(what, status, &text, retry_after.as_deref()));
            }
            read(response, &dog).await
        };
        dog.guard(work).await.unwrap_or(Err(ClientError::Stalled {
            what,
            after_ms: dog.limit_ms(),
        }))
    }

    /// A JSON call of docs/API.md: `body` serialized as JSON, `Authorization: Bearer`
    /// when a token is given, the 2xx answer parsed as `T`.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Accept", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        let body = match body {
            Some(body) => {
                headers.push(("Content-Type", "application/json"));
                let text = serde_json::to_string(body)
                    .map_err(|e| ClientError::Unsupported(format!("JSON: {e}")))?;
                Some(JsValue::from_str(&text))
            }
            None => None,
        };
        self.request(
            what,
            method,
            url,
            &headers,
            body.as_ref(),
            async |response, _| {
                let text = text(what, &response).await?;
                serde_json::from_str(&text)
                    .map_err(|e| ClientError::InvalidResponse(format!("{what}: {e}")))
            },
        )
        .await
    }

    /// A call whose answer has no body to read (`DELETE`).
    pub(crate) async fn empty(
        &self,
        what: &'static str,
        method: &str,
        url: &str,
        token: Option<&str>,
    ) -> Result<(), ClientError> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        self.request(what, method, url, &headers, None, async |_, _| Ok(()))
            .await
    }

    /// A small binary call (a thumbnail, FORMAT.md §10): `body` sent as
    /// `application/octet-stream` if given, the answer's body (at most `limit` bytes)
    /// returned.
    pub(crate) async fn bytes(
        &self,
        what: &'static str,
        method: &str,
        url: &str,
        token: &str,
        body: Option<&[u8]>,
        limit: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("Authorization", bearer.as_str())];
        let body = body.map(|b| {
            headers.push(("Content-Type", "application/octet-stream"));
            JsValue::from(Uint8Array::from(b))
        });
        self.request(
            what,
            method,
            url,
            &headers,
            body.as_ref(),
            async |response, dog| read_body(&response, limit, dog).await.map(|b| b.to_vec()),
        )
        .await
    }

    /// `GET`s bytes `start..end` (end exclusive, `start < end`) of `url` with a `Range`
    /// header. A `200` (whole object) is accepted when the range is the whole object.
    /// A declared `Content-Length` or `Content-Range` that is not the range asked for
    /// is refused before the body is read, and the body is read chunk by chunk (each
    /// one progress for the stall watch) and refused as soon as it runs past the range:
    /// a lying server must not make the page buffer gigabytes. A shorter body is
    /// returned as it is; the caller reports what it lacks.
    pub(crate) async fn get_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        whole_len: u64,
    ) -> Result<Uint8Array, ClientError> {
        const WHAT: &str = "GET range";
        let range = format!("bytes={start}-{}", end - 1);
        let asked = end - start;
        self.request(
            WHAT,
            "GET",
            url,
            &[("Range", &range)],
            None,
            async |response, dog| {
                let headers = response.headers();
                let header = |name: &str| headers.get(name).ok().flatten();
                check_range_answer(
                    response.status(),
                    RangeHeaders {
                        content_length: header("Content-Length").as_deref(),
                        content_range: header("Content-Range").as_deref(),
                        content_encoding: header("Content-Encoding").as_deref(),
                    },
                    start..end,
                    whole_len,
                )
                .map_err(ClientError::InvalidResponse)?;
                read_body(&response, asked, dog).await
            },
        )
        .await
    }
}

/// Reads a body of at most `limit` bytes into one array (a [spare](crate::spare) buffer),
/// touching `dog` per chunk. Where the body is a byte stream (Chromium's and Firefox's
/// `fetch`) the network writes straight into that buffer (a BYOB reader), so a range
/// leaves no chunk arrays behind; elsewhere each chunk is copied in.
async fn read_body(
    response: &Response,
    limit: u64,
    dog: &Watchdog,
) -> Result<Uint8Array, ClientError> {
    let limit =
        u32::try_from(limit).map_err(|_| ClientError::Unsupported("a range over 4 GiB".into()))?;
    let out = spare::take(limit);
    let Some(body) = response.body() else {
        return Ok(out.subarray(0, 0));
    };
    match ReadableStreamByobReader::new(&body) {
        Ok(reader) => read_into(&reader, out, limit, dog).await,
        Err(_) => read_chunks(&body, out, limit, dog).await,
    }
}

/// [`read_body`] with a BYOB reader: each read fills the buffer from where the last
/// stopped (a read takes the buffer and hands it back in its answer).
async fn read_into(
    reader: &ReadableStreamByobReader,
    out: Uint8Array,
    limit: u32,
    dog: &Watchdog,
) -> Result<Uint8Array, ClientError> {
    let mut buffer = out.buffer();
    let mut got: u32 = 0;
    loop {
        // Once full, a 1-byte read tells the end from more than was asked for.
        let full = got == limit;
        let view = match full {
            false => Uint8Array::new_with_byte_offset_and_length(&buffer, got, limit - got),
            true => Uint8Array::new_with_length(1),
        };
        let (value, done) =
            next_chunk(JsFuture::from(reader.read_with_array_buffer_view(&view))).await?;
        // The read took the buffer; its answer (even the last, empty) hands it back.
        let len = match value {
            Some(value) if !full => {
                buffer = value.buffer();
                value.length()
            }
            Some(value) => value.length(),
            None => 0,
        };
        if full && len > 0 {
            return Err(too_long(limit));
        }
        got += len;
        if done {
            return Ok(Uint8Array::new_with_byte_offset_and_length(&buffer, 0, got));
        }
        dog.touch();
    }
}

/// [`read_body`] with the default reader: each chunk copied into `out`.
async fn read_chunks(
    body: &ReadableStream,
    out: Uint8Array,
    limit: u32,
    dog: &Watchdog,
) -> Result<Uint8Array, ClientError> {
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut got: u32 = 0;
    loop {
        let (value, done) = next_chunk(JsFuture::from(reader.read())).await?;
        if done {
            return Ok(out.subarray(0, got));
        }
        let Some(value) = value else {
            return Err(ClientError::Unsupported("a body chunk is not bytes".into()));
        };
        let len = value.length();
        if len > limit - got {
            return Err(too_long(limit));
        }
        out.set(&value, got);
        got += len;
        dog.touch();
    }
}

/// One read of a body: its bytes (a done read may carry an empty view) and whether
/// the body has ended.
async fn next_chunk(read: JsFuture) -> Result<(Option<Uint8Array>, bool), ClientError> {
    const WHAT: &str = "GET range";
    let chunk: Object = read.await.map_err(|e| network(WHAT, &e))?.unchecked_into();
    let done = Reflect::get(&chunk, &"done".into())
        .ok()
        .and_then(|d| d.as_bool())
        == Some(true);
    let value = Reflect::get(&chunk, &"value".into())
        .ok()
        .and_then(|v| v.dyn_into().ok());
    Ok((value, done))
}

fn too_long(limit: u32) -> ClientError {
    ClientError::InvalidResponse(format!(
        "a range answered more than the {limit} bytes asked for"
    ))
}

async fn text(what: &'static str, response: &Response) -> Result<String, ClientError> {
    let promise = response.text().map_err(|e| network(what, &e))?;
    let text = JsFuture::from(promise)
        .await
        .map_err(|e| network(what, &e))?;
    Ok(text.as_string().unwrap_or_default())
}

/// A rejected fetch or body read: a network error (a request aborted on purpose is
/// dropped with its future and never reports).
fn network(what: &'static str, error: &JsValue) -> ClientError {
    ClientError::Network {
        what,
        detail: platform::describe(error),
    }
}

fn unexpected(what: &'static str, error: &JsValue) -> ClientError {
    ClientError::Unsupported(format!("{what}: {}", platform::describe(error)))
}

/// The headers of a ranged `GET`'s answer that say how much body follows (absent ones
/// are `None`: `Content-Range` is readable only if CORS exposes it).
#[derive(Clone, Copy, Default)]
struct RangeHeaders<'a> {
    content_length: Option<&'a str>,
    content_range: Option<&'a str>,
    content_encoding: Option<&'a str>,
}

/// Whether an answer to `Range: bytes=<asked>` may be read: `206` (or `200` when the
/// range is the whole object of `whole_len` bytes), a `Content-Range` of exactly the
/// asked bytes (total `whole_len` or `*`), and a `Content-Length` of exactly its
/// length. `Content-Length` counts encoded bytes, so it is only checked when the body
/// is not content-encoded.
fn check_range_answer(
    status: u16,
    headers: RangeHeaders<'_>,
    asked: Range<u64>,
    whole_len: u64,
) -> Result<(), String> {
    let whole = asked.start == 0 && asked.end == whole_len;
    if !(status == 206 || (status == 200 && whole)) {
        return Err(format!("a range request answered HTTP {status}"));
    }
    let len = asked.end - asked.start;
    let identity = headers
        .content_encoding
        .is_none_or(|e| e.trim().is_empty() || e.trim().eq_ignore_ascii_case("identity"));
    if identity
        && let Some(declared) = headers.content_length
        && declared.trim().parse::<u64>().ok() != Some(len)
    {
        return Err(format!(
            "a range of {len} bytes answered with Content-Length {declared}"
        ));
    }
    if status == 206
        && let Some(declared) = headers.content_range
    {
        let (first, last) = (asked.start, asked.end - 1);
        let matches = declared.trim().strip_prefix("bytes ").is_some_and(|rest| {
            rest == format!("{first}-{last}/{whole_len}") || rest == format!("{first}-{last}/*")
        });
        if !matches {
            return Err(format!(
                "bytes {first}-{last} of {whole_len} answered with Content-Range {declared}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, length: Option<&str>, range: Option<&str>) -> Result<(), String> {
        let headers = RangeHeaders {
            content_length: length,
            content_range: range,
            content_encoding: None,
        };
        check_range_answer(status, headers, 100..200, 1000)
    }

    #[test]
    fn the_asked_range_is_accepted_with_or_without_its_headers() {
        assert_eq!(check(206, None, None), Ok(()));
        assert_eq!(check(206, Some("100"), Some("bytes 100-199/1000")), Ok(()));
        assert_eq!(check(206, Some(" 100 "), Some("bytes 100-199/*")), Ok(()));
        let whole = RangeHeaders {
            content_length: Some("1000"),
            ..RangeHeaders::default()
        };
        assert_eq!(check_range_answer(200, whole, 0..1000, 1000), Ok(()));
    }

    #[test]
    fn another_length_or_range_is_refused_before_the_body() {
        for (status, length, range) in [
            (200, None, None),
            (204, None, None),
            (206, Some("101"), None),
            (206, Some("99"), None),
            (206, Some("18446744073709551616"), None),
            (206, Some("-1"), None),
            (206, Some("many"), None),
            (206, None, Some("bytes 100-299/1000")),
            (206, None, Some("bytes 0-99/1000")),
            (206, None, Some("bytes 100-199/2000")),
            (206, None, Some("bytes */1000")),
            (206, None, Some("items 100-199/1000")),
        ] {
            assert!(
                check(status, length, range).is_err(),
                "{status} {length:?} {range:?}"
            );
        }
        let whole = RangeHeaders {
            content_length: Some("999"),
            ..RangeHeaders::default()
        };
        assert!(check_range_answer(200, whole, 0..1000, 1000).is_err());
    }

    #[test]
    fn an_encoded_body_is_not_measured_by_its_content_length() {
        let gzip = RangeHeaders {
            content_length: Some("37"),
            content_encoding: Some("gzip"),
            content_range: None,
        };
        assert_eq!(check_range_answer(206, gzip, 100..200, 1000), Ok(()));
    }
}
