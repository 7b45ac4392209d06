//! HTTP with `fetch`: the JSON calls of docs/API.md, part `PUT`s and ranged `GET`s,
//! every failure classified into a [`ClientError`].
//!
//! One [`Http`] serves one transfer. All its requests carry the transfer's own
//! `AbortSignal`, so cancelling aborts every request in flight at once, and a request
//! that fails because of that is reported as `cancelled`, never as a network error.

use std::ops::Range;

use js_sys::{ArrayBuffer, Uint8Array};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Blob, Headers, RequestInit, Response};

use crate::error::ClientError;
use crate::platform;

/// Issues the requests of one transfer.
pub(crate) struct Http {
    controller: AbortController,
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

impl Http {
    /// A client whose requests can all be aborted with [`Http::abort`].
    pub(crate) fn new() -> Result<Self, ClientError> {
        let controller = AbortController::new().map_err(|e| {
            ClientError::Unsupported(format!("AbortController: {}", platform::describe(&e)))
        })?;
        Ok(Self { controller })
    }

    /// Aborts every request in flight and every later one.
    pub(crate) fn abort(&self) {
        self.controller.abort();
    }

    fn signal(&self) -> AbortSignal {
        self.controller.signal()
    }

    /// Sends one request and returns the response if its status is 2xx; any other
    /// status becomes an `Api` error (JSON error body) or an `Http` error.
    async fn send(
        &self,
        what: &'static str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&JsValue>,
    ) -> Result<Response, ClientError> {
        let init = RequestInit::new();
        init.set_method(method);
        init.set_signal(Some(&self.signal()));
        if !headers.is_empty() {
            let h = Headers::new().map_err(|e| self.unexpected(what, &e))?;
            for (name, value) in headers {
                h.set(name, value).map_err(|e| self.unexpected(what, &e))?;
            }
            init.set_headers(&h);
        }
        if let Some(body) = body {
            init.set_body(body);
        }
        let response = platform::fetch(url, &init)?
            .await
            .map_err(|e| self.failed(what, &e))?;
        let response: Response = response
            .dyn_into()
            .map_err(|_| ClientError::Unsupported("fetch did not give a Response".into()))?;
        if response.ok() {
            return Ok(response);
        }
        let status = response.status();
        // The body of an error is small; if it cannot be read, the status still speaks.
        let text = self.text(what, &response).await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ClientError::Http { status, what },
        })
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
        let response = self
            .send(what, method, url, &headers, body.as_ref())
            .await?;
        let text = self.text(what, &response).await?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::InvalidResponse(format!("{what}: {e}")))
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
        self.send(what, method, url, &headers, None).await?;
        Ok(())
    }

    /// `PUT`s a part's bytes and returns the ETag storage answered: from the `ETag`
    /// header (S3, R2), or else from a JSON `{"etag":...}` body (docs/API.md).
    pub(crate) async fn put_blob(&self, url: &str, body: &Blob) -> Result<String, ClientError> {
        const WHAT: &str = "PUT part";
        let response = self.send(WHAT, "PUT", url, &[], Some(body)).await?;
        if let Ok(Some(etag)) = response.headers().get("ETag")
            && !etag.is_empty()
        {
            return Ok(etag);
        }
        #[derive(Deserialize)]
        struct PutAnswer {
            etag: String,
        }
        let text = self.text(WHAT, &response).await?;
        match serde_json::from_str::<PutAnswer>(&text) {
            Ok(answer) if !answer.etag.is_empty() => Ok(answer.etag),
            _ => Err(ClientError::InvalidResponse(
                "a part PUT answered without an ETag (is it exposed by CORS?)".into(),
            )),
        }
    }

    /// `GET`s bytes `start..end` (end exclusive, `start < end`) of `url` with a `Range`
    /// header. A `200` (whole object) is accepted when the range is the whole object.
    /// A declared `Content-Length` or `Content-Range` that is not the range asked for
    /// is refused before the body is read (a lying server must not make the page buffer
    /// gigabytes); the caller still checks the length of what arrived.
    pub(crate) async fn get_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        whole_len: u64,
    ) -> Result<Uint8Array, ClientError> {
        const WHAT: &str = "GET range";
        let range = format!("bytes={start}-{}", end - 1);
        let response = self
            .send(WHAT, "GET", url, &[("Range", &range)], None)
            .await?;
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
        let buffer = JsFuture::from(response.array_buffer().map_err(|e| self.failed(WHAT, &e))?)
            .await
            .map_err(|e| self.failed(WHAT, &e))?;
        let buffer: ArrayBuffer = buffer
            .dyn_into()
            .map_err(|_| ClientError::Unsupported("arrayBuffer() gave no ArrayBuffer".into()))?;
        Ok(Uint8Array::new(&buffer))
    }

    async fn text(&self, what: &'static str, response: &Response) -> Result<String, ClientError> {
        let promise = response.text().map_err(|e| self.failed(what, &e))?;
        let text = JsFuture::from(promise)
            .await
            .map_err(|e| self.failed(what, &e))?;
        Ok(text.as_string().unwrap_or_default())
    }

    /// A rejected fetch or body read: `cancelled` if this transfer was aborted, else a
    /// network error.
    fn failed(&self, what: &'static str, error: &JsValue) -> ClientError {
        if self.signal().aborted() {
            ClientError::Cancelled
        } else {
            ClientError::Network {
                what,
                detail: platform::describe(error),
            }
        }
    }

    fn unexpected(&self, what: &'static str, error: &JsValue) -> ClientError {
        ClientError::Unsupported(format!("{what}: {}", platform::describe(error)))
    }
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
