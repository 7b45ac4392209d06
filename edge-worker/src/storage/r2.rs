//! The `r2-binding` provider: the `BUCKET` binding, with part and download URLs that
//! point at this worker (`/blob/...`, signed with [`BlobSigner`]).
//!
//! The binding cannot list the parts of a multipart upload, so the session's record of
//! the writes it fenced is the listing ([`Provider::list_parts`] answers it back). Part
//! bodies go from the worker's fetch handler straight into `uploadPart`
//! ([`R2Binding::write_part`]); no byte passes through a Durable Object.
//!
//! R2 failures are told apart by the numeric `code` the binding's `R2Error` carries
//! (10024 no such upload, 10025 invalid part), never by their message text; where there
//! is no code (a stream error), the state of the request body says whose fault it was.
//! Whatever failed, a body the client is still sending is drained, so it reads the
//! answer rather than a reset connection.

use std::future::Future;
use std::time::Duration;

use futures_util::future::{Either, select};
use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::range::ByteRange;
use sealdrop_protocol::session::ListedPart;
use sealdrop_protocol::token::{BlobClaims, BlobSigner};
use sealdrop_protocol::wire::{CompletedPart, DownloadUrl, PartUrl};
use worker::js_sys::{BigInt, Reflect};
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{AbortController, ReadableStream, ReadableStreamDefaultReader};
use worker::worker_sys::FixedLengthStream;
use worker::{
    Bucket, Data, Delay, Env, Headers, Range, Response, ResponseBody, UploadedPart, console_warn,
};

use super::{
    Aborted, CompleteFailure, Provider, StorageFailure, UploadFailure, object_key, with_timeout,
};
use crate::config::Config;
use crate::http::{OrApiError as _, discard, error_response};
use crate::now_ms;

/// The `wrangler.toml` binding of the R2 bucket.
const BUCKET_BINDING: &str = "BUCKET";

/// R2's code for "no such upload" (completed, aborted, or dropped after 7 days).
const R2_NO_SUCH_UPLOAD: u32 = 10024;
/// R2's code for "a part of the list is not held with that ETag".
const R2_INVALID_PART: u32 = 10025;

/// The R2 bucket binding plus what signs and addresses `/blob` URLs.
pub(crate) struct R2Binding {
    bucket: Bucket,
    signer: BlobSigner,
    public_url: String,
    part_url_ttl_ms: u64,
    download_url_ttl_ms: u64,
}

impl R2Binding {
    /// The provider over the `BUCKET` binding.
    pub fn new(env: &Env, config: &Config) -> Result<Self, ApiError> {
        Ok(Self {
            bucket: env.bucket(BUCKET_BINDING).or_internal("binding BUCKET")?,
            signer: config.signer.clone(),
            public_url: config.public_url.clone(),
            part_url_ttl_ms: config.part_url_ttl_ms,
            download_url_ttl_ms: config.download_url_ttl_ms,
        })
    }
}

impl Provider for R2Binding {
    fn name(&self) -> &'static str {
        "r2-binding"
    }

    async fn create_upload(&self, file_id: &FileId) -> Result<String, StorageFailure> {
        let upload = self
            .bucket
            .create_multipart_upload(object_key(file_id))
            .execute()
            .await
            .map_err(|e| StorageFailure::logged("creating a multipart upload", e))?;
        Ok(upload.upload_id().await)
    }

    fn part_url(
        &self,
        file_id: &FileId,
        upload_id: &str,
        part: u32,
        size: u64,
        now_ms: u64,
    ) -> PartUrl {
        let expires_at = now_ms.saturating_add(self.part_url_ttl_ms);
        let claims = BlobClaims::part_upload(file_id.clone(), upload_id, part, size, expires_at);
        PartUrl {
            part_number: part,
            url: format!(
                "{}/blob/{file_id}/{part}?{}",
                self.public_url,
                self.signer.query(&claims)
            ),
            expires_at: claims.expires_at,
        }
    }

    /// The binding cannot list parts: the session's record is the listing.
    async fn list_parts(
        &self,
        _file_id: &FileId,
        _upload_id: &str,
        recorded: Vec<ListedPart>,
    ) -> Result<Vec<ListedPart>, UploadFailure> {
        Ok(recorded)
    }

    async fn complete(
        &self,
        file_id: &FileId,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), CompleteFailure> {
        let upload = self
            .bucket
            .resume_multipart_upload(object_key(file_id), upload_id)
            .map_err(|e| StorageFailure::logged("resuming a multipart upload", e))?;
        let parts = parts
            .iter()
            .map(|p| {
                let n = r2_part_number(p.part_number).ok_or(CompleteFailure::Failed)?;
                Ok(UploadedPart::new(n, p.etag.clone()))
            })
            .collect::<Result<Vec<_>, CompleteFailure>>()?;
        match upload.complete(parts).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = r2_error_code(&e);
                StorageFailure::logged("completing a multipart upload", &e);
                Err(complete_failure(code))
            }
        }
    }

    async fn object_exists(&self, file_id: &FileId) -> Result<bool, StorageFailure> {
        let head = self.bucket.head(object_key(file_id)).await;
        head.map(|meta| meta.is_some())
            .map_err(|e| StorageFailure::logged("looking for an object", e))
    }

    async fn abort(&self, file_id: &FileId, upload_id: &str) -> Result<Aborted, StorageFailure> {
        let upload = self
            .bucket
            .resume_multipart_upload(object_key(file_id), upload_id)
            .map_err(|e| StorageFailure::logged("resuming a multipart upload", e))?;
        match upload.abort().await {
            Ok(()) => Ok(Aborted::Now),
            Err(e) if is_no_such_upload(r2_error_code(&e)) => Ok(Aborted::AlreadyGone),
            Err(e) => Err(StorageFailure::logged("aborting a multipart upload", e)),
        }
    }

    /// R2's delete of a missing key succeeds: deleting twice is deleting once.
    async fn delete_object(&self, file_id: &FileId) -> Result<(), StorageFailure> {
        self.bucket
            .delete(object_key(file_id))
            .await
            .map_err(|e| StorageFailure::logged("deleting an object", e))
    }

    fn download_url(&self, file_id: &FileId, now_ms: u64) -> DownloadUrl {
        let expires_at = now_ms.saturating_add(self.download_url_ttl_ms);
        let claims = BlobClaims::download(file_id.clone(), expires_at);
        DownloadUrl {
            url: format!(
                "{}/blob/{file_id}?{}",
                self.public_url,
                self.signer.query(&claims)
            ),
            expires_at: claims.expires_at,
        }
    }
}

// ---------------------------------------------------------------------------------
// Part bodies: straight from the request into R2
// ---------------------------------------------------------------------------------

/// Why a part body did not land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteFailure {
    /// The request body broke off before its declared length (the client went away).
    Body,
    /// Storage failed or refused; `gone` when it said it no longer has the upload
    /// (the session then learns it: a completion may have landed, or R2 aborted it).
    Storage {
        /// R2 answered "no such upload".
        gone: bool,
    },
    /// The write's lease could not be kept: it was stopped before it could land.
    LeaseLost,
}

/// How a writer keeps its lease: when it runs out, and how to renew it (answering the
/// new end, or the session's refusal).
pub(crate) struct Lease<F> {
    /// When the lease runs out (ms since epoch).
    pub until: u64,
    /// Renews it.
    pub renew: F,
    /// Its length, which paces renewals.
    pub length_ms: u64,
}

impl R2Binding {
    /// Pipes `body` into part `part` of the upload and answers the part's ETag (as R2
    /// gives it, unquoted), keeping the write's lease alive meanwhile.
    ///
    /// The body is never read in wasm: the runtime pipes it into a `FixedLengthStream`
    /// of exactly `size` bytes (R2 needs a known length; the stream also checks that
    /// exactly that many arrive), whose readable side goes to `uploadPart`. Every third
    /// of the lease the writer renews it, each renewal raced against the stop margin
    /// before the lease's end; if the session refuses (the write was superseded or the
    /// upload is over), or no renewal answered in time, the pipe is aborted, so no more
    /// bytes go to storage. That cannot undo what R2 is already committing (a pipe that
    /// has finished): the session counts with such writes landing late (lapsed writes).
    ///
    /// When `uploadPart` fails, its R2 code says what happened; without one, the request
    /// body is asked: if it errored, the client broke off ([`WriteFailure::Body`]).
    /// Otherwise the rest of the body is drained, so the client gets the answer.
    pub async fn write_part<F, Fut>(
        &self,
        file_id: &FileId,
        upload_id: &str,
        part: u32,
        body: ReadableStream,
        size: u64,
        mut lease: Lease<F>,
    ) -> Result<String, WriteFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<u64, ApiError>>,
    {
        let storage = |context: &str, e: &dyn std::fmt::Display| {
            StorageFailure::logged(context, e);
            WriteFailure::Storage { gone: false }
        };
        let r2_part = r2_part_number(part).ok_or(WriteFailure::Storage { gone: false })?;
        let upload = self
            .bucket
            .resume_multipart_upload(object_key(file_id), upload_id)
            .map_err(|e| storage("resuming a multipart upload", &e))?;
        let counted = match u32::try_from(size) {
            Ok(small) => FixedLengthStream::new(small),
            Err(_) => FixedLengthStream::new_big_int(BigInt::from(size)),
        }
        .map_err(|e| storage("creating a FixedLengthStream", &format!("{e:?}")))?;
        let stop = AbortController::new()
            .map_err(|e| storage("creating an AbortController", &format!("{e:?}")))?;
        let options = worker::web_sys::StreamPipeOptions::new();
        // Keep the body readable if storage fails, to drain it and answer.
        options.set_prevent_cancel(true);
        options.set_signal(&stop.signal());
        // Start the pipe first (JsFuture subscribes at once, so a rejection is never
        // unhandled), then hand the counted side to R2.
        let piped = JsFuture::from(body.pipe_to_with_options(&counted.writable(), &options));
        let mut uploading =
            Box::pin(upload.upload_part(r2_part, Data::ReadableStream(counted.readable())));
        let mut stopped = false;
        let uploaded = loop {
            let wait = renewal_wait(now_ms(), lease.until, lease.length_ms);
            let tick = Box::pin(Delay::from(Duration::from_millis(wait)));
            uploading = match select(uploading, tick).await {
                Either::Left((result, _)) => break result,
                Either::Right(((), still)) => still,
            };
            // Renew, but never past the stop margin: a session call that hangs must not
            // let the body stream on after the lease.
            let deadline = stop_deadline(lease.until, lease.length_ms);
            let renewal = with_timeout(deadline.saturating_sub(now_ms()), (lease.renew)()).await;
            match renewal {
                Some(Ok(until)) => lease.until = until,
                Some(Err(e)) if !should_stop(&e, now_ms(), lease.until, lease.length_ms) => {
                    console_warn!("part {part}: renewing the lease: {}", e.code);
                }
                refused_or_late => {
                    let why = refused_or_late.map_or("no answer in time", |_| "refused");
                    console_warn!("part {part}: stopping the write ({why})");
                    stop.abort();
                    stopped = true;
                    // Nothing more to renew: wait for R2 to settle the write.
                    break uploading.await;
                }
            }
        };
        let _ = piped.await;
        match uploaded {
            Ok(uploaded) => Ok(uploaded.etag()),
            Err(_) if stopped => {
                // The pipe stopped, the body did not (it was kept readable): drain it so
                // a client still sending reads the answer.
                discard(body).await;
                Err(WriteFailure::LeaseLost)
            }
            Err(e) => {
                let code = r2_error_code(&e);
                let broken = match code {
                    // Storage's failure: the client may still be sending.
                    Some(_) => {
                        discard(body).await;
                        false
                    }
                    None => body_broke(&body).await,
                };
                if !broken {
                    StorageFailure::logged("uploading a part", &e);
                }
                Err(classify_write(code, broken))
            }
        }
    }

    /// Answers a `GET` or `HEAD` of the record section of `file_id`, honouring `Range`.
    /// The body is R2's stream, handed to the runtime (never read in wasm).
    pub async fn read(
        &self,
        file_id: &FileId,
        range: Option<&str>,
        head_only: bool,
    ) -> Result<Response, ApiError> {
        let key = object_key(file_id);
        let meta = self
            .bucket
            .head(&key)
            .await
            .map_err(|e| StorageFailure::logged("reading an object", e))?;
        let Some(meta) = meta else {
            return Err(ApiError::file_not_found());
        };
        let size = meta.size();
        let range = match ByteRange::parse(range, size) {
            Ok(range) => range,
            Err(e) if e.code == ApiErrorCode::RangeNotSatisfiable => {
                let response = error_response(&e).or_internal("answering 416")?;
                response
                    .headers()
                    .set("content-range", &ByteRange::unsatisfied_content_range(size))
                    .or_internal("answering 416")?;
                return Ok(response);
            }
            Err(e) => return Err(e),
        };

        let headers = Headers::new();
        let set = |name: &str, value: &str| headers.set(name, value).or_internal("headers");
        set("content-type", "application/octet-stream")?;
        set("accept-ranges", "bytes")?;
        set("etag", &meta.http_etag())?;
        let (status, length) = match &range {
            Some(r) => {
                set("content-range", &r.content_range())?;
                (206, r.len())
            }
            None => (200, size),
        };
        set("content-length", &length.to_string())?;
        if head_only {
            return Ok(Response::empty()
                .or_internal("answering HEAD")?
                .with_status(status)
                .with_headers(headers));
        }

        let mut get = self.bucket.get(&key);
        if let Some(r) = range {
            get = get.range(Range::OffsetWithLength {
                offset: r.start,
                length: r.len(),
            });
        }
        let object = get
            .execute()
            .await
            .map_err(|e| StorageFailure::logged("reading an object", e))?;
        let Some(object) = object else {
            return Err(ApiError::file_not_found());
        };
        let body = match object.body() {
            Some(body) => body
                .response_body()
                .map_err(|e| StorageFailure::logged("streaming an object", e))?,
            None => ResponseBody::Empty,
        };
        Ok(Response::from_body(body)
            .or_internal("answering GET")?
            .with_status(status)
            .with_headers(headers))
    }
}

/// Whether the request body errored (the client broke off), asked by reading it once
/// after the pipe let go of it; a body still readable is drained instead, so the client
/// that is still sending gets the answer.
async fn body_broke(body: &ReadableStream) -> bool {
    let Ok(reader) = body.get_reader().dyn_into::<ReadableStreamDefaultReader>() else {
        return false;
    };
    let read = JsFuture::from(reader.read()).await;
    reader.release_lock();
    match read {
        Err(_) => true,
        Ok(_) => {
            discard(body.clone()).await;
            false
        }
    }
}

// ---------------------------------------------------------------------------------
// Pure rules (unit-tested natively)
// ---------------------------------------------------------------------------------

/// The numeric code of an `R2Error` (its `code` property), `None` for any other error.
fn r2_error_code(error: &worker::Error) -> Option<u32> {
    let worker::Error::UnknownJsError { original, .. } = error else {
        return None;
    };
    let code: JsValue = Reflect::get(original, &JsValue::from_str("code")).ok()?;
    code.as_f64()
        .filter(|c| c.fract() == 0.0 && *c >= 0.0 && *c <= f64::from(u32::MAX))
        .map(|c| c as u32)
}

/// Whether R2 said it no longer has the upload (completed, aborted already, or dropped
/// by its own 7-day rule).
fn is_no_such_upload(code: Option<u32>) -> bool {
    code == Some(R2_NO_SUCH_UPLOAD)
}

/// What a failed completion means for the session: refused parts, no such upload, or
/// anything else.
fn complete_failure(code: Option<u32>) -> CompleteFailure {
    match code {
        Some(R2_INVALID_PART) => CompleteFailure::Refused,
        Some(R2_NO_SUCH_UPLOAD) => CompleteFailure::Gone,
        _ => CompleteFailure::Failed,
    }
}

/// What a failed `uploadPart` was: R2's own failure when it gave a code, else the
/// body's if the body errored, else storage's.
fn classify_write(code: Option<u32>, body_broke: bool) -> WriteFailure {
    match code {
        Some(code) => WriteFailure::Storage {
            gone: code == R2_NO_SUCH_UPLOAD,
        },
        None if body_broke => WriteFailure::Body,
        None => WriteFailure::Storage { gone: false },
    }
}

/// How long to wait before renewing a lease that runs out at `until`: a third of its
/// length, but never later than the stop margin before its end (at least 1 ms).
fn renewal_wait(now: u64, until: u64, length_ms: u64) -> u64 {
    (length_ms / 3)
        .min(stop_deadline(until, length_ms).saturating_sub(now))
        .max(1)
}

/// When a writer whose lease runs out at `until` must have stopped unless renewed.
fn stop_deadline(until: u64, length_ms: u64) -> u64 {
    until.saturating_sub(stop_margin(length_ms))
}

/// How long before a lease runs out a writer that cannot renew it stops.
fn stop_margin(length_ms: u64) -> u64 {
    length_ms / 6
}

/// Whether a refused renewal stops the write: the session said no (the write was
/// superseded or overlapped, or the upload is over: any 4xx or `upload_busy`), or the
/// lease is about to run out with no renewal.
fn should_stop(error: &ApiError, now: u64, until: u64, length_ms: u64) -> bool {
    let refused = error.status() < 500 || error.code == ApiErrorCode::UploadBusy;
    refused || now.saturating_add(stop_margin(length_ms)) >= until
}

/// R2 numbers parts with a u16; plans never exceed 10,000 parts.
fn r2_part_number(part_number: u32) -> Option<u16> {
    u16::try_from(part_number).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn r2_codes_decide_what_a_failure_means() {
        assert!(is_no_such_upload(Some(10024)));
        // 10001 is R2's generic internal error: a real failure, retried.
        for code in [None, Some(10001), Some(10025)] {
            assert!(!is_no_such_upload(code), "{code:?}");
        }
        assert_eq!(complete_failure(Some(10025)), CompleteFailure::Refused);
        assert_eq!(complete_failure(Some(10024)), CompleteFailure::Gone);
        for code in [None, Some(10001)] {
            assert_eq!(complete_failure(code), CompleteFailure::Failed);
        }
    }

    #[test]
    fn a_failed_part_is_storage_unless_only_the_body_broke() {
        // The bug: a storage failure mid-part was called a size mismatch. With
        // an R2 code it is storage's, whatever the body did.
        assert_eq!(
            classify_write(Some(10001), true),
            WriteFailure::Storage { gone: false }
        );
        assert_eq!(
            classify_write(Some(10024), false),
            WriteFailure::Storage { gone: true }
        );
        assert_eq!(classify_write(None, true), WriteFailure::Body);
        assert_eq!(
            classify_write(None, false),
            WriteFailure::Storage { gone: false }
        );
    }

    #[test]
    fn leases_are_renewed_early_and_given_up_before_they_run_out() {
        let len = 60_000;
        assert_eq!(renewal_wait(0, len, len), 20_000);
        // Close to the end: wake in time to stop before the margin.
        assert_eq!(renewal_wait(45_000, len, len), 5_000);
        assert_eq!(renewal_wait(55_000, len, len), 1);
        // A renewal may take until the stop margin, no longer.
        assert_eq!(stop_deadline(len, len), 50_000);
        let busy = ApiError::busy("superseded", 1);
        let gone = ApiError::upload_not_open("aborted");
        let flaky = ApiError::internal();
        assert!(should_stop(&busy, 0, len, len));
        assert!(should_stop(&gone, 0, len, len));
        assert!(!should_stop(&flaky, 0, len, len));
        assert!(!should_stop(&flaky, 49_999, len, len));
        assert!(should_stop(&flaky, 50_000, len, len));
    }

    #[test]
    fn part_numbers_fit_r2() {
        assert_eq!(r2_part_number(10_000), Some(10_000));
        assert_eq!(r2_part_number(70_000), None);
    }
}
