//! The `s3` storage provider: any S3-compatible store (AWS S3, R2's S3 API, MinIO,
//! Wasabi).
//!
//! No part byte touches the worker. A client PUTs each part straight to a presigned
//! UploadPart URL (rusty-s3, SigV4 in the query, with the part's `content-length` signed
//! so storage refuses any other size) and GETs the finished object from a presigned
//! GetObject URL. The worker itself only makes the small control calls (create, list
//! parts, complete, abort, head, delete, list uploads), signed in an `Authorization`
//! header ([`sigv4`]) and sent through the Workers `fetch` API.
//!
//! Storage is the truth for parts: a presigned PUT is never reported to the worker, so
//! what the session believes about parts comes from ListParts (every page), and every
//! part's size and ETag is checked against it before CompleteMultipartUpload.
//!
//! In reading order: the provider and the URLs it presigns for clients, its control
//! calls, then the requests those calls send (pure, so they are unit-tested natively) and
//! the transport that sends them. What comes back is read by [`xml`].

pub(crate) mod sigv4;
pub(crate) mod xml;

use std::time::Duration;

use jiff::Timestamp;
use rusty_s3::actions::{CompleteMultipartUpload, GetObject, UploadPart};
use rusty_s3::{Bucket, Credentials, Method, S3Action, UrlStyle};
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::plan::MAX_PARTS;
use sealdrop_protocol::session::ListedPart;
use sealdrop_protocol::wire::{CompletedPart, DownloadUrl, PartUrl};
use url::Url;

pub(crate) use self::xml::{ListedUpload, S3Error};
use super::{Aborted, CompleteFailure, Provider, StorageFailure, UploadFailure, object_key};
use crate::config::Config;
use crate::now_ms;

/// Parts per ListParts page and uploads per ListMultipartUploads page: S3's maximum.
const PAGE_SIZE: u16 = 1000;

/// Where and as whom the provider reaches storage (`S3_*` settings, see config.rs).
#[derive(Debug, Clone)]
pub(crate) struct S3Settings {
    /// `S3_ENDPOINT`, e.g. `https://<account>.r2.cloudflarestorage.com`.
    pub endpoint: Url,
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_REGION` (`auto` for R2).
    pub region: String,
    /// `S3_PATH_STYLE`: `https://host/bucket/key` rather than `https://bucket.host/key`.
    pub path_style: bool,
    /// `S3_ACCESS_KEY_ID` and `S3_SECRET_ACCESS_KEY` (the secret never appears in `Debug`).
    pub credentials: Credentials,
}

// ---------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------

/// The `s3` provider: presigns URLs for clients and makes the control calls through
/// `transport` ([`Fetch`] in the worker; a scripted fake in tests).
#[derive(Debug)]
pub(crate) struct S3Storage<T = Fetch> {
    bucket: Bucket,
    credentials: Credentials,
    part_url_ttl: Duration,
    download_url_ttl: Duration,
    transport: T,
}

/// What an AbortMultipartUpload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbortOutcome {
    /// Storage aborted the upload.
    Aborted,
    /// Storage did not know the upload (`NoSuchUpload`: aborted before, completed, or
    /// dropped by a lifecycle rule).
    NoSuchUpload,
}

impl S3Storage<Fetch> {
    /// The provider for `settings`, presigning part and download URLs valid as long as
    /// `config` says.
    pub fn new(settings: &S3Settings, config: &Config) -> Result<Self, S3Error> {
        Self::with_transport(
            settings,
            config.part_url_ttl_ms,
            config.download_url_ttl_ms,
            Fetch,
        )
    }
}

impl<T: Transport> S3Storage<T> {
    fn with_transport(
        settings: &S3Settings,
        part_url_ttl_ms: u64,
        download_url_ttl_ms: u64,
        transport: T,
    ) -> Result<Self, S3Error> {
        let style = if settings.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            settings.endpoint.clone(),
            style,
            settings.bucket.clone(),
            settings.region.clone(),
        )
        .map_err(|e| S3Error::Invalid(format!("S3_ENDPOINT / S3_BUCKET: {e:?}")))?;
        Ok(Self {
            bucket,
            credentials: settings.credentials.clone(),
            part_url_ttl: presign_ttl(part_url_ttl_ms),
            download_url_ttl: presign_ttl(download_url_ttl_ms),
            transport,
        })
    }

    /// The presigned URL a client PUTs part `part_number` (`size` bytes) of the upload
    /// to. The size is signed as `content-length`, which the browser sends for the body
    /// it has and storage checks, so a body of another size is refused (`403`) before
    /// anything is stored. The session only signs planned parts (1 to 10,000); a larger
    /// number would be signed as 65,535, which S3 refuses, so such a URL stores nothing.
    pub fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        size: u64,
        now_ms: u64,
    ) -> PartUrl {
        let mut action = UploadPart::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            u16::try_from(part_number).unwrap_or(u16::MAX),
            upload_id,
        );
        action
            .headers_mut()
            .insert("content-length", size.to_string());
        PartUrl {
            part_number,
            url: self.presign(&action, self.part_url_ttl, now_ms).into(),
            expires_at: expires_at(now_ms, self.part_url_ttl),
        }
    }

    /// The presigned URL a downloader GETs the object from (with `Range`, which a
    /// presigned GET leaves unsigned, so any range works).
    pub fn presign_download(&self, key: &str, now_ms: u64) -> DownloadUrl {
        let action = GetObject::new(&self.bucket, Some(&self.credentials), key);
        DownloadUrl {
            url: self.presign(&action, self.download_url_ttl, now_ms).into(),
            expires_at: expires_at(now_ms, self.download_url_ttl),
        }
    }

    // -- the worker's own calls --------------------------------------------------------

    /// CreateMultipartUpload: storage's id of the new upload of `key`.
    pub async fn create(&self, key: &str, now_ms: u64) -> Result<String, S3Error> {
        let answer = self
            .transport
            .send(self.create_request(key, now_ms))
            .await?;
        xml::created(answer.status, &answer.body)
    }

    /// ListParts, every page: the parts storage holds, in part-number order. An upload
    /// storage does not know answers `NoSuchUpload` ([`S3Error::is_no_such_upload`]).
    pub async fn parts(
        &self,
        key: &str,
        upload_id: &str,
        now_ms: u64,
    ) -> Result<Vec<ListedPart>, S3Error> {
        let mut parts: Vec<ListedPart> = Vec::new();
        let mut marker = None;
        loop {
            let request = self.list_parts_request(key, upload_id, marker, now_ms);
            let answer = self.transport.send(request).await?;
            let page = xml::parts_page(answer.status, &answer.body)?;
            for part in page.parts {
                let number = u32::from(part.number);
                // Ascending and within the limit: so this loop ends, and a confused
                // server cannot make a part appear twice.
                if parts.last().is_some_and(|last| number <= last.part_number) || number > MAX_PARTS
                {
                    return Err(malformed(&answer, "ListParts listed parts out of order"));
                }
                parts.push(ListedPart {
                    part_number: number,
                    etag: part.etag,
                    size: part.size,
                });
            }
            match page.next_part_number_marker {
                None => return Ok(parts),
                Some(next) if marker.is_none_or(|m| next > m) => marker = Some(next),
                Some(_) => return Err(malformed(&answer, "ListParts did not advance")),
            }
        }
    }

    /// CompleteMultipartUpload with every part of the upload: `etags[i]` is part `i + 1`.
    pub async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
        now_ms: u64,
    ) -> Result<(), S3Error> {
        let request = self.complete_request(key, upload_id, etags, now_ms)?;
        let answer = self.transport.send(request).await?;
        xml::completed(answer.status, &answer.body).map(drop)
    }

    /// AbortMultipartUpload. An upload storage does not know is told apart: the session
    /// must know whether a completion may have landed; the sweep takes both as done.
    pub async fn abort_upload(
        &self,
        key: &str,
        upload_id: &str,
        now_ms: u64,
    ) -> Result<AbortOutcome, S3Error> {
        let answer = self
            .transport
            .send(self.abort_request(key, upload_id, now_ms))
            .await?;
        match xml::empty(answer.status, &answer.body) {
            Ok(()) => Ok(AbortOutcome::Aborted),
            Err(e) if e.is_no_such_upload() => Ok(AbortOutcome::NoSuchUpload),
            Err(e) => Err(e),
        }
    }

    /// HeadObject: whether the object `key` exists. A HEAD answer has no body, so here
    /// (only) the status decides: 404 is "no such key". (Without `s3:ListBucket`, AWS
    /// answers a missing key with 403, which is an error here: see the README's policy.)
    pub async fn exists(&self, key: &str, now_ms: u64) -> Result<bool, S3Error> {
        let request = self.signed(Method::Head, self.bucket.object_url(key), &[], None, now_ms);
        let answer = self.transport.send(request).await?;
        match answer.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => Err(S3Error::Refused { status, code: None }),
        }
    }

    /// DeleteObject of `key`; a missing key is deleted already (S3 answers 204 anyway).
    pub async fn delete(&self, key: &str, now_ms: u64) -> Result<(), S3Error> {
        let request = self.signed(
            Method::Delete,
            self.bucket.object_url(key),
            &[],
            None,
            now_ms,
        );
        let answer = self.transport.send(request).await?;
        match xml::empty(answer.status, &answer.body) {
            Err(e) if e.code() == Some("NoSuchKey") => Ok(()),
            other => other,
        }
    }

    /// ListMultipartUploads under `prefix`, page after page, at most `max_pages` of them
    /// (each is a subrequest, which a Worker has a budget of), and how many pages it read. Uploads of other keys are
    /// dropped here too, for servers that ignore `prefix`.
    pub async fn uploads(
        &self,
        prefix: &str,
        max_pages: usize,
        now_ms: u64,
    ) -> Result<(Vec<ListedUpload>, usize), S3Error> {
        let mut uploads = Vec::new();
        let mut marker: Option<(String, String)> = None;
        for page_number in 1..=max_pages {
            let request = self.list_uploads_request(prefix, marker.as_ref(), now_ms);
            let answer = self.transport.send(request).await?;
            let page = xml::uploads_page(answer.status, &answer.body)?;
            uploads.extend(
                page.uploads
                    .into_iter()
                    .filter(|u| u.key.starts_with(prefix)),
            );
            match page.next {
                None => return Ok((uploads, page_number)),
                Some(next) if marker.as_ref().is_none_or(|m| next > *m) => marker = Some(next),
                Some(_) => return Err(malformed(&answer, "ListMultipartUploads did not advance")),
            }
        }
        Ok((uploads, max_pages))
    }

    // -- requests ------------------------------------------------------------------

    fn presign<'a>(&self, action: &impl S3Action<'a>, ttl: Duration, now_ms: u64) -> Url {
        action.sign_with_time(ttl, &timestamp(now_ms))
    }

    /// A control call to `url` with `query`, signed in its headers at `now_ms`.
    fn signed(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Option<String>,
        now_ms: u64,
    ) -> Request {
        let content_type = [("content-type", "application/xml")];
        let unsigned = sigv4::Unsigned {
            method,
            url,
            query,
            headers: if body.is_some() { &content_type } else { &[] },
            body: body.as_deref().unwrap_or_default().as_bytes(),
        };
        let signed = sigv4::sign(
            &unsigned,
            &self.credentials,
            self.bucket.region(),
            &timestamp(now_ms),
        );
        Request {
            method,
            url: signed.url,
            headers: signed.headers,
            body,
        }
    }

    fn create_request(&self, key: &str, now_ms: u64) -> Request {
        let url = self.bucket.object_url(key);
        self.signed(Method::Post, url, &[("uploads", "")], None, now_ms)
    }

    fn list_parts_request(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<u16>,
        now_ms: u64,
    ) -> Request {
        let page_size = PAGE_SIZE.to_string();
        let marker = marker.map(|m| m.to_string());
        let mut query = vec![("max-parts", page_size.as_str()), ("uploadId", upload_id)];
        if let Some(marker) = &marker {
            query.push(("part-number-marker", marker));
        }
        let url = self.bucket.object_url(key);
        self.signed(Method::Get, url, &query, None, now_ms)
    }

    fn complete_request(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
        now_ms: u64,
    ) -> Result<Request, S3Error> {
        if etags.is_empty() || etags.len() > MAX_PARTS as usize {
            return Err(S3Error::Invalid(format!(
                "cannot complete an upload of {} parts",
                etags.len()
            )));
        }
        // rusty-s3 writes the part list (numbering parts by position); the request is
        // signed here, in headers.
        let body = CompleteMultipartUpload::new(
            &self.bucket,
            None,
            key,
            upload_id,
            etags.iter().map(String::as_str),
        )
        .body();
        let url = self.bucket.object_url(key);
        Ok(self.signed(
            Method::Post,
            url,
            &[("uploadId", upload_id)],
            Some(body),
            now_ms,
        ))
    }

    fn abort_request(&self, key: &str, upload_id: &str, now_ms: u64) -> Request {
        let url = self.bucket.object_url(key);
        self.signed(
            Method::Delete,
            url,
            &[("uploadId", upload_id)],
            None,
            now_ms,
        )
    }

    /// `GET /?uploads`, which rusty-s3 has no action for.
    fn list_uploads_request(
        &self,
        prefix: &str,
        marker: Option<&(String, String)>,
        now_ms: u64,
    ) -> Request {
        let page_size = PAGE_SIZE.to_string();
        let mut query = vec![
            ("max-uploads", page_size.as_str()),
            ("prefix", prefix),
            ("uploads", ""),
        ];
        if let Some((key, upload_id)) = marker {
            query.push(("key-marker", key.as_str()));
            if !upload_id.is_empty() {
                query.push(("upload-id-marker", upload_id.as_str()));
            }
        }
        let url = self.bucket.base_url().clone();
        self.signed(Method::Get, url, &query, None, now_ms)
    }
}

/// A presigned URL's lifetime: whole seconds, 1 s to S3's maximum of 7 days.
fn presign_ttl(ms: u64) -> Duration {
    Duration::from_secs((ms / 1000).clamp(1, 7 * 24 * 60 * 60))
}

/// When a URL presigned at `now_ms` for `ttl` stops working (ms since the epoch): SigV4
/// counts from the signing time in whole seconds ([`timestamp`]), so from the second
/// `now_ms` falls in.
fn expires_at(now_ms: u64, ttl: Duration) -> u64 {
    (now_ms / 1000 * 1000).saturating_add(ttl.as_secs() * 1000)
}

/// `now_ms` as the signing time. SigV4 counts in whole seconds, so the milliseconds are
/// dropped.
fn timestamp(now_ms: u64) -> Timestamp {
    i64::try_from(now_ms / 1000)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn malformed(answer: &Answer, detail: &str) -> S3Error {
    S3Error::Malformed {
        status: answer.status,
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------
// Behind the seam: what the session machine asks of storage
// ---------------------------------------------------------------------------------

impl Provider for S3Storage<Fetch> {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn create_upload(&self, file_id: &FileId) -> Result<String, StorageFailure> {
        self.create(&object_key(file_id), now_ms())
            .await
            .map_err(|e| StorageFailure::logged("creating a multipart upload", e))
    }

    fn part_url(
        &self,
        file_id: &FileId,
        upload_id: &str,
        part: u32,
        size: u64,
        now_ms: u64,
    ) -> PartUrl {
        self.presign_part(&object_key(file_id), upload_id, part, size, now_ms)
    }

    /// Storage is the truth: ListParts, every page. The session's record is empty
    /// here anyway (no part body passes through the worker).
    async fn list_parts(
        &self,
        file_id: &FileId,
        upload_id: &str,
        _recorded: Vec<ListedPart>,
    ) -> Result<Vec<ListedPart>, UploadFailure> {
        self.parts(&object_key(file_id), upload_id, now_ms())
            .await
            .map_err(|e| match e.is_no_such_upload() {
                true => UploadFailure::Gone,
                false => StorageFailure::logged("listing parts", e).into(),
            })
    }

    async fn complete(
        &self,
        file_id: &FileId,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), CompleteFailure> {
        // The session hands every part, in order (rusty-s3 numbers them by position).
        let in_order = parts
            .iter()
            .zip(1u32..)
            .all(|(part, n)| part.part_number == n);
        if !in_order {
            StorageFailure::logged("completing", "the parts are not 1..=n in order");
            return Err(CompleteFailure::Failed);
        }
        let etags: Vec<String> = parts.iter().map(|p| p.etag.clone()).collect();
        self.complete_upload(&object_key(file_id), upload_id, &etags, now_ms())
            .await
            .map_err(|e| {
                let failure = complete_failure(&e);
                StorageFailure::logged("completing a multipart upload", e);
                failure
            })
    }

    async fn object_exists(&self, file_id: &FileId) -> Result<bool, StorageFailure> {
        self.exists(&object_key(file_id), now_ms())
            .await
            .map_err(|e| StorageFailure::logged("looking for an object", e))
    }

    async fn abort(&self, file_id: &FileId, upload_id: &str) -> Result<Aborted, StorageFailure> {
        match self
            .abort_upload(&object_key(file_id), upload_id, now_ms())
            .await
        {
            Ok(AbortOutcome::Aborted) => Ok(Aborted::Now),
            Ok(AbortOutcome::NoSuchUpload) => Ok(Aborted::AlreadyGone),
            Err(e) => Err(StorageFailure::logged("aborting a multipart upload", e)),
        }
    }

    async fn delete_object(&self, file_id: &FileId) -> Result<(), StorageFailure> {
        self.delete(&object_key(file_id), now_ms())
            .await
            .map_err(|e| StorageFailure::logged("deleting an object", e))
    }

    fn download_url(&self, file_id: &FileId, now_ms: u64) -> DownloadUrl {
        self.presign_download(&object_key(file_id), now_ms)
    }
}

/// What a failed CompleteMultipartUpload means to the session: storage refused the
/// part list itself (a part it does not hold with that ETag, out of order, or too
/// small), has no such upload (completed by an earlier try, or aborted), or anything
/// else.
fn complete_failure(error: &S3Error) -> CompleteFailure {
    match error.code() {
        Some("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall") => CompleteFailure::Refused,
        Some("NoSuchUpload") => CompleteFailure::Gone,
        _ => CompleteFailure::Failed,
    }
}

// ---------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------

/// One signed request to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The URL, with its query.
    pub url: Url,
    /// The headers to send (`authorization` among them).
    pub headers: Vec<(String, String)>,
    /// An XML body (CompleteMultipartUpload's part list).
    pub body: Option<String>,
}

/// Storage's answer: its status and body text (empty for `HEAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// Sends a [`Request`]; any failure to get an answer is [`S3Error::Unreachable`].
pub(crate) trait Transport {
    /// Sends `request` and reads the whole answer.
    async fn send(&self, request: Request) -> Result<Answer, S3Error>;
}

/// The Workers `fetch` API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fetch;

impl Transport for Fetch {
    async fn send(&self, request: Request) -> Result<Answer, S3Error> {
        use worker::{Fetch as WorkerFetch, Headers, Method as M, Request as Req, RequestInit};
        // The error text names the URL, and so the key: keep the platform's words out.
        let unreachable =
            |e: worker::Error| S3Error::Unreachable(super::redact_keys(&e.to_string()));
        let method = match request.method {
            Method::Head => M::Head,
            Method::Get => M::Get,
            Method::Post => M::Post,
            Method::Put => M::Put,
            Method::Delete => M::Delete,
        };
        let head = method == M::Head;
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.set(name, value).map_err(unreachable)?;
        }
        let mut init = RequestInit::new();
        init.with_method(method)
            .with_headers(headers)
            .with_body(request.body.map(Into::into));
        let req = Req::new_with_init(request.url.as_str(), &init).map_err(unreachable)?;
        let mut response = WorkerFetch::Request(req)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status_code();
        let body = if head {
            String::new()
        } else {
            response.text().await.map_err(unreachable)?
        };
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    const NOW_MS: u64 = 1_795_909_240_123; // 2026-11-28T23:40:40.123Z
    const KEY: &str = "files/AAAAAAAAAAAAAAAAAAAAAA";

    fn settings(endpoint: &str, path_style: bool) -> S3Settings {
        S3Settings {
            endpoint: endpoint.parse().unwrap(),
            bucket: "sealdrop-files".into(),
            region: "auto".into(),
            path_style,
            credentials: Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
        }
    }

    /// A storage that answers from a script and records every request.
    #[derive(Default)]
    struct Scripted {
        answers: RefCell<VecDeque<Result<Answer, S3Error>>>,
        sent: RefCell<Vec<Request>>,
    }

    impl Transport for &Scripted {
        async fn send(&self, request: Request) -> Result<Answer, S3Error> {
            self.sent.borrow_mut().push(request);
            self.answers
                .borrow_mut()
                .pop_front()
                .expect("the script has no more answers")
        }
    }

    /// A storage that will answer `answers`, in order.
    fn scripted(answers: impl IntoIterator<Item = Result<Answer, S3Error>>) -> Scripted {
        Scripted {
            answers: RefCell::new(answers.into_iter().collect()),
            sent: RefCell::default(),
        }
    }

    fn answer(status: u16, body: &str) -> Result<Answer, S3Error> {
        Ok(Answer {
            status,
            body: body.into(),
        })
    }

    fn s3_at<'a>(
        script: &'a Scripted,
        endpoint: &str,
        path_style: bool,
    ) -> S3Storage<&'a Scripted> {
        S3Storage::with_transport(&settings(endpoint, path_style), 3_600_000, 900_000, script)
            .unwrap()
    }

    fn s3(script: &Scripted) -> S3Storage<&Scripted> {
        s3_at(script, "http://127.0.0.1:9000", true)
    }

    /// Runs a future that never waits (the scripted transport answers at once).
    fn run<F: Future>(future: F) -> F::Output {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the scripted transport never waits"),
        }
    }

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn param(url: &Url, name: &str) -> Option<String> {
        query(url)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn list_parts_page(parts: &[u32], next: Option<u32>) -> String {
        let parts: String = parts
            .iter()
            .map(|n| {
                format!(
                    "<Part><PartNumber>{n}</PartNumber><LastModified>2026-11-28T23:40:40.000Z\
                     </LastModified><ETag>\"etag{n}\"</ETag><Size>{}</Size></Part>",
                    n * 10
                )
            })
            .collect();
        let (truncated, marker) = match next {
            Some(m) => (
                "true",
                format!("<NextPartNumberMarker>{m}</NextPartNumberMarker>"),
            ),
            None => ("false", String::new()),
        };
        format!(
            "<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <MaxParts>1000</MaxParts><IsTruncated>{truncated}</IsTruncated>{marker}{parts}\
             </ListPartsResult>"
        )
    }

    fn uploads_page(keys: &[&str], next: Option<(&str, &str)>) -> String {
        let uploads: String = keys
            .iter()
            .map(|k| {
                format!(
                    "<Upload><Key>{k}</Key><UploadId>id-{k}</UploadId>\
                     <Initiated>2026-11-28T23:40:40.000Z</Initiated></Upload>"
                )
            })
            .collect();
        let (truncated, markers) = match next {
            Some((key, id)) => (
                "true",
                format!(
                    "<NextKeyMarker>{key}</NextKeyMarker><NextUploadIdMarker>{id}</NextUploadIdMarker>"
                ),
            ),
            None => ("false", String::new()),
        };
        format!(
            "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <IsTruncated>{truncated}</IsTruncated>{markers}{uploads}</ListMultipartUploadsResult>"
        )
    }

    #[test]
    fn path_style_and_virtual_host_style_urls() {
        let script = Scripted::default();
        let path = s3_at(&script, "https://acct.r2.cloudflarestorage.com", true);
        let url: Url = path.presign_download(KEY, NOW_MS).url.parse().unwrap();
        assert_eq!(url.host_str(), Some("acct.r2.cloudflarestorage.com"));
        assert_eq!(url.path(), "/sealdrop-files/files/AAAAAAAAAAAAAAAAAAAAAA");

        let vhost = s3_at(&script, "https://s3.eu-west-1.amazonaws.com", false);
        let url: Url = vhost.presign_download(KEY, NOW_MS).url.parse().unwrap();
        assert_eq!(
            url.host_str(),
            Some("sealdrop-files.s3.eu-west-1.amazonaws.com")
        );
        assert_eq!(url.path(), "/files/AAAAAAAAAAAAAAAAAAAAAA");
        let request = vhost.list_uploads_request("files/", None, NOW_MS);
        assert_eq!(
            request.url.host_str(),
            Some("sealdrop-files.s3.eu-west-1.amazonaws.com")
        );
        assert_eq!(request.url.path(), "/");
    }

    /// Whether `request` is signed in its headers (never in its query).
    fn header_signed(request: &Request) -> bool {
        let auth = request
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/auto/s3/aws4_request, ")
            && request
                .headers
                .iter()
                .any(|(k, v)| k == "x-amz-date" && v == "20261128T234040Z")
            && request
                .headers
                .iter()
                .any(|(k, _)| k == "x-amz-content-sha256")
            && !request.url.as_str().contains("X-Amz-")
    }

    #[test]
    fn part_urls_are_presigned_put_urls_for_one_part_of_one_size() {
        let script = Scripted::default();
        let s3 = s3(&script);
        let part = s3.presign_part(KEY, "upload-1", 7, 5_242_880, NOW_MS);
        assert_eq!(part.part_number, 7);
        // Whole seconds: the URL is signed at 23:40:40 (not .123) for 3,600 s, and
        // stops working then.
        assert_eq!(part.expires_at, 1_795_909_240_000 + 3_600_000);
        let url: Url = part.url.parse().unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some("http://127.0.0.1:9000/sealdrop-files/files/AAAAAAAAAAAAAAAAAAAAAA")
        );
        assert_eq!(param(&url, "partNumber").as_deref(), Some("7"));
        assert_eq!(param(&url, "uploadId").as_deref(), Some("upload-1"));
        assert_eq!(param(&url, "X-Amz-Expires").as_deref(), Some("3600"));
        assert_eq!(
            param(&url, "X-Amz-Date").as_deref(),
            Some("20261128T234040Z")
        );
        assert_eq!(
            param(&url, "X-Amz-Credential").as_deref(),
            Some("AKIDEXAMPLE/20261128/auto/s3/aws4_request")
        );
        assert_eq!(param(&url, "X-Amz-Signature").map(|s| s.len()), Some(64));
        // The size is signed: storage refuses a body of another length.
        assert_eq!(
            param(&url, "X-Amz-SignedHeaders").as_deref(),
            Some("content-length;host")
        );
        let other = s3.presign_part(KEY, "upload-1", 7, 5_242_881, NOW_MS);
        assert_ne!(other.url, part.url);
        assert!(
            !url.as_str().contains("wJalrXUtnFEMI"),
            "the secret never leaves"
        );
        // A part number no plan has is signed as one S3 refuses.
        let beyond: Url = s3
            .presign_part(KEY, "upload-1", 70_000, 1, NOW_MS)
            .url
            .parse()
            .unwrap();
        assert_eq!(param(&beyond, "partNumber").as_deref(), Some("65535"));
    }

    #[test]
    fn download_urls_last_fifteen_minutes() {
        let script = Scripted::default();
        let download = s3(&script).presign_download(KEY, NOW_MS);
        assert_eq!(download.expires_at, 1_795_909_240_000 + 900_000);
        let url: Url = download.url.parse().unwrap();
        assert_eq!(param(&url, "X-Amz-Expires").as_deref(), Some("900"));
        assert_eq!(param(&url, "uploadId"), None);
    }

    #[test]
    fn the_workers_own_calls_are_signed_in_headers() {
        let script = Scripted::default();
        let s3 = s3(&script);
        let first = s3.list_uploads_request("files/", None, NOW_MS);
        assert_eq!(first.method, Method::Get);
        assert_eq!(first.url.path(), "/sealdrop-files/");
        assert!(header_signed(&first), "{first:?}");
        assert_eq!(
            first.url.query(),
            Some("max-uploads=1000&prefix=files%2F&uploads=")
        );
        let marker = ("files/B".to_owned(), "id-B".to_owned());
        let next = s3.list_uploads_request("files/", Some(&marker), NOW_MS);
        assert_eq!(param(&next.url, "key-marker").as_deref(), Some("files/B"));
        assert_eq!(
            param(&next.url, "upload-id-marker").as_deref(),
            Some("id-B")
        );
        let etags = ["\"a\"".to_owned()];
        for request in [
            s3.create_request(KEY, NOW_MS),
            s3.list_parts_request(KEY, "upload-1", Some(3), NOW_MS),
            s3.complete_request(KEY, "upload-1", &etags, NOW_MS)
                .unwrap(),
            s3.abort_request(KEY, "upload-1", NOW_MS),
            next,
        ] {
            assert!(header_signed(&request), "{request:?}");
            assert!(!format!("{request:?}").contains("wJalrXUtnFEMI"));
        }
    }

    #[test]
    fn list_parts_reads_every_page() {
        let script = scripted([
            answer(200, &list_parts_page(&[1, 2], Some(2))),
            answer(200, &list_parts_page(&[3, 5], Some(5))),
            answer(200, &list_parts_page(&[6], None)),
        ]);
        let parts = run(s3(&script).parts(KEY, "upload-1", NOW_MS)).unwrap();
        let numbers: Vec<_> = parts.iter().map(|p| p.part_number).collect();
        assert_eq!(numbers, [1, 2, 3, 5, 6]);
        assert_eq!(
            parts[3],
            ListedPart {
                part_number: 5,
                etag: "\"etag5\"".into(),
                size: 50
            }
        );
        let sent = script.sent.borrow();
        let markers: Vec<_> = sent
            .iter()
            .map(|r| param(&r.url, "part-number-marker"))
            .collect();
        assert_eq!(markers, [None, Some("2".into()), Some("5".into())]);
        assert!(sent.iter().all(|r| r.method == Method::Get
            && header_signed(r)
            && param(&r.url, "max-parts").as_deref() == Some("1000")
            && param(&r.url, "uploadId").as_deref() == Some("upload-1")));
    }

    #[test]
    fn a_list_parts_that_repeats_or_goes_back_is_refused() {
        for pages in [
            vec![
                list_parts_page(&[1, 2], Some(2)),
                list_parts_page(&[2], None),
            ],
            vec![list_parts_page(&[3, 1], None)],
            vec![
                list_parts_page(&[1], Some(1)),
                list_parts_page(&[], Some(1)),
            ],
            vec![list_parts_page(&[10_001], None)],
        ] {
            let script = scripted(pages.iter().map(|p| answer(200, p)));
            let result = run(s3(&script).parts(KEY, "upload-1", NOW_MS));
            assert!(
                matches!(result, Err(S3Error::Malformed { .. })),
                "{pages:?}"
            );
        }
    }

    #[test]
    fn list_parts_of_an_unknown_upload_is_no_such_upload() {
        let script = scripted([answer(
            404,
            "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>",
        )]);
        let error = run(s3(&script).parts(KEY, "upload-1", NOW_MS)).unwrap_err();
        assert!(error.is_no_such_upload());
    }

    #[test]
    fn complete_sends_every_part_in_order() {
        let script = scripted([answer(
            200,
            "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <ETag>\"x-3\"</ETag></CompleteMultipartUploadResult>",
        )]);
        let etags = ["\"a\"", "\"b\"", "\"c\""].map(String::from);
        run(s3(&script).complete_upload(KEY, "upload-1", &etags, NOW_MS)).unwrap();
        let sent = script.sent.borrow();
        assert_eq!(sent[0].method, Method::Post);
        assert!(header_signed(&sent[0]));
        assert!(
            sent[0]
                .headers
                .contains(&("content-type".into(), "application/xml".into()))
        );
        assert_eq!(param(&sent[0].url, "uploadId").as_deref(), Some("upload-1"));
        assert_eq!(
            sent[0].body.as_deref(),
            Some(
                "<CompleteMultipartUpload>\
                 <Part><ETag>&quot;a&quot;</ETag><PartNumber>1</PartNumber></Part>\
                 <Part><ETag>&quot;b&quot;</ETag><PartNumber>2</PartNumber></Part>\
                 <Part><ETag>&quot;c&quot;</ETag><PartNumber>3</PartNumber></Part>\
                 </CompleteMultipartUpload>"
            )
        );
    }

    #[test]
    fn complete_fails_on_an_error_even_inside_a_200() {
        let script = scripted([
            answer(200, "<Error><Code>InternalError</Code></Error>"),
            answer(400, "<Error><Code>InvalidPart</Code></Error>"),
        ]);
        let s3 = s3(&script);
        let etags = ["\"a\""].map(String::from);
        let first = run(s3.complete_upload(KEY, "upload-1", &etags, NOW_MS)).unwrap_err();
        assert_eq!(first.code(), Some("InternalError"));
        let second = run(s3.complete_upload(KEY, "upload-1", &etags, NOW_MS)).unwrap_err();
        assert_eq!(second.code(), Some("InvalidPart"));
        // Nothing to complete, or more parts than S3 takes: refused before sending.
        assert!(run(s3.complete_upload(KEY, "upload-1", &[], NOW_MS)).is_err());
        let too_many = vec!["\"e\"".to_owned(); 10_001];
        assert!(run(s3.complete_upload(KEY, "upload-1", &too_many, NOW_MS)).is_err());
        assert_eq!(script.sent.borrow().len(), 2);
    }

    #[test]
    fn a_refused_part_list_is_told_from_any_other_failure() {
        for code in ["InvalidPart", "InvalidPartOrder", "EntityTooSmall"] {
            let error = S3Error::Refused {
                status: 400,
                code: Some(code.into()),
            };
            assert_eq!(complete_failure(&error), CompleteFailure::Refused, "{code}");
        }
        let gone = S3Error::Refused {
            status: 404,
            code: Some("NoSuchUpload".into()),
        };
        assert_eq!(complete_failure(&gone), CompleteFailure::Gone);
        for error in [
            S3Error::Refused {
                status: 200,
                code: Some("InternalError".into()),
            },
            S3Error::Refused {
                status: 400,
                code: None,
            },
            S3Error::Malformed {
                status: 200,
                detail: "InvalidPart".into(),
            },
            S3Error::Unreachable("reset".into()),
        ] {
            assert_eq!(
                complete_failure(&error),
                CompleteFailure::Failed,
                "{error:?}"
            );
        }
    }

    #[test]
    fn abort_tells_no_such_upload_apart_and_anything_else_is_a_failure() {
        let script = scripted([
            answer(204, ""),
            answer(404, "<Error><Code>NoSuchUpload</Code></Error>"),
            answer(404, "<Error><Code>NoSuchBucket</Code></Error>"),
            answer(
                500,
                "<Error><Code>InternalError</Code><Message>NoSuchUpload</Message></Error>",
            ),
            answer(404, ""),
            Err(S3Error::Unreachable("connection refused".into())),
        ]);
        let s3 = s3(&script);
        let abort = || run(s3.abort_upload(KEY, "upload-1", NOW_MS));
        assert_eq!(abort(), Ok(AbortOutcome::Aborted));
        assert_eq!(abort(), Ok(AbortOutcome::NoSuchUpload));
        assert_eq!(abort().unwrap_err().code(), Some("NoSuchBucket"));
        assert_eq!(abort().unwrap_err().code(), Some("InternalError"));
        assert_eq!(
            abort(),
            Err(S3Error::Refused {
                status: 404,
                code: None
            })
        );
        assert!(matches!(abort(), Err(S3Error::Unreachable(_))));
        assert!(
            script
                .sent
                .borrow()
                .iter()
                .all(|r| r.method == Method::Delete && header_signed(r))
        );
    }

    #[test]
    fn create_head_and_delete() {
        let script = scripted([
            answer(
                200,
                "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <UploadId>new-id</UploadId></InitiateMultipartUploadResult>",
            ),
            answer(200, ""),
            answer(404, ""),
            answer(403, ""),
            answer(204, ""),
            answer(404, "<Error><Code>NoSuchKey</Code></Error>"),
            answer(403, "<Error><Code>AccessDenied</Code></Error>"),
        ]);
        let s3 = s3(&script);
        assert_eq!(run(s3.create(KEY, NOW_MS)).unwrap(), "new-id");
        assert_eq!(run(s3.exists(KEY, NOW_MS)), Ok(true));
        assert_eq!(run(s3.exists(KEY, NOW_MS)), Ok(false));
        assert_eq!(
            run(s3.exists(KEY, NOW_MS)),
            Err(S3Error::Refused {
                status: 403,
                code: None
            })
        );
        // Deleting what is not there is done.
        assert_eq!(run(s3.delete(KEY, NOW_MS)), Ok(()));
        assert_eq!(run(s3.delete(KEY, NOW_MS)), Ok(()));
        assert!(run(s3.delete(KEY, NOW_MS)).is_err());
        let sent = script.sent.borrow();
        assert_eq!(sent[0].method, Method::Post);
        assert!(param(&sent[0].url, "uploads").is_some());
        assert!(sent[1..4].iter().all(|r| r.method == Method::Head));
        assert!(sent[4..].iter().all(|r| r.method == Method::Delete
            && r.url.path() == "/sealdrop-files/files/AAAAAAAAAAAAAAAAAAAAAA"
            && r.url.query().is_none()));
        assert!(sent.iter().all(header_signed));
    }

    #[test]
    fn list_uploads_reads_pages_up_to_the_budget_and_keeps_only_the_prefix() {
        let script = scripted([
            answer(
                200,
                &uploads_page(&["files/A", "other/x"], Some(("files/A", "id-files/A"))),
            ),
            answer(
                200,
                &uploads_page(&["files/B"], Some(("files/B", "id-files/B"))),
            ),
            answer(200, &uploads_page(&["files/C"], None)),
        ]);
        let s3 = s3(&script);
        let keys =
            |uploads: Vec<ListedUpload>| uploads.into_iter().map(|u| u.key).collect::<Vec<_>>();
        assert_eq!(
            keys(run(s3.uploads("files/", 10, NOW_MS)).unwrap().0),
            ["files/A", "files/B", "files/C"]
        );
        let sent = script.sent.borrow().clone();
        assert_eq!(
            param(&sent[1].url, "key-marker").as_deref(),
            Some("files/A")
        );
        assert_eq!(
            param(&sent[2].url, "key-marker").as_deref(),
            Some("files/B")
        );

        // With a budget of 1 page, only the first.
        script.answers.borrow_mut().push_back(answer(
            200,
            &uploads_page(&["files/A"], Some(("files/A", "x"))),
        ));
        let (listed, pages) = run(s3.uploads("files/", 1, NOW_MS)).unwrap();
        assert_eq!(keys(listed), ["files/A"]);
        assert_eq!(pages, 1);

        // A marker that does not advance would loop forever.
        script.answers.borrow_mut().extend([
            answer(200, &uploads_page(&["files/B"], Some(("files/B", "y")))),
            answer(200, &uploads_page(&["files/A"], Some(("files/A", "z")))),
        ]);
        assert!(matches!(
            run(s3.uploads("files/", 10, NOW_MS)),
            Err(S3Error::Malformed { .. })
        ));
    }

    #[test]
    fn lifetimes_are_whole_seconds_within_what_s3_accepts() {
        assert_eq!(presign_ttl(0), Duration::from_secs(1));
        assert_eq!(presign_ttl(900_000), Duration::from_secs(900));
        assert_eq!(presign_ttl(u64::MAX), Duration::from_secs(604_800));
        assert_eq!(timestamp(NOW_MS).as_second(), 1_795_909_240);
        assert_eq!(timestamp(u64::MAX), Timestamp::UNIX_EPOCH);
    }
}
