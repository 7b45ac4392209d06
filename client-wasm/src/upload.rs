//! `Uploader.upload`: seal a file in the browser and send it, part by part, to the
//! URLs the server hands out.
//!
//! In reading order: the flow ([`upload`]), one part's attempt ([`attempt_part`]),
//! sealing a part straight from the file ([`Sealer`]), and the batches of part URLs
//! ([`PartUrls`]).
//!
//! Memory: only the parts in flight are held, each as one `Blob` of its sealed records
//! (at most the part size, 16 MiB by default), plus one read of at most
//! [`READ_BYTES`] of plaintext while it is being sealed. The file itself is only ever
//! read a slice at a time (`Blob.slice`), and a retried part is read and sealed again
//! (sealing is deterministic) rather than kept while it waits; a re-seal that differs
//! from the first (the file changed) is never sent ([`crate::fingerprint`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared, try_join};
use futures_util::lock::Mutex;
use js_sys::{Array, ArrayBuffer, Function, Uint8Array};
use sealdrop_protocol::backoff::Backoff;
use sealdrop_protocol::format::{
    ContentKey, DEFAULT_RECORD_SIZE, FileKey, FileMetadata, Header, Layout, TAG_LEN, seal_metadata,
    seal_record_into,
};
use sealdrop_protocol::ids::{FileId, OwnerToken, ShareToken};
use sealdrop_protocol::plan::PartPlan;
use sealdrop_protocol::scheduler::UploadScheduler;
use sealdrop_protocol::share::{CreateShareRequest, ShareView};
use sealdrop_protocol::wire::{
    CompleteRequest, CompletedPart, CreateUploadRequest, CreateUploadResponse, FileRecord, PartUrl,
    PartUrlsRequest, PartUrlsResponse, encode_base64,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob};

use crate::error::ClientError;
use crate::fingerprint::{PartFingerprints, TagDigest};
use crate::http::Http;
use crate::link;
use crate::platform::{self, AbortWatch};
use crate::progress::Reporter;
use crate::scratch;
use crate::transfer::{cancellable, retrying, run_parts};

/// Plaintext read from the file per `Blob.slice(...).arrayBuffer()` (whole records,
/// at least one).
pub(crate) const READ_BYTES: u64 = 4 * 1024 * 1024;
/// Part URLs asked for per `part-urls` call (the API's maximum).
const URL_BATCH: usize = 100;
/// A cached part URL this close to its expiry is fetched again before use (ms).
const URL_MARGIN_MS: u64 = 60_000;
/// How long a best-effort `DELETE` of a failed or cancelled upload may take (ms).
const ABORT_TIMEOUT_MS: u64 = 10_000;

/// The validated options of `new Uploader(options)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadConfig {
    /// The API's base URL, without a trailing slash.
    pub endpoint: String,
    /// Parts in flight at once, 1..=16.
    pub concurrency: u32,
    /// Preferred part size in ciphertext bytes, for the server's planner.
    pub part_size: Option<u64>,
    /// Plaintext bytes per record.
    pub record_size: u32,
    /// Attempts per part and per API call, the first included.
    pub max_attempts: u32,
}

impl UploadConfig {
    /// Defaults: 4 parts at once, 1 MiB records, the server's part size, 6 attempts.
    pub(crate) fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            concurrency: 4,
            part_size: None,
            record_size: DEFAULT_RECORD_SIZE,
            max_attempts: Backoff::default().max_attempts,
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            max_attempts: self.max_attempts,
            ..Backoff::default()
        }
    }
}

/// One call of `upload(file, options)`, validated.
pub(crate) struct UploadRequest {
    pub file: Blob,
    pub name: String,
    pub mime: String,
    pub on_progress: Option<Function>,
    pub signal: Option<AbortSignal>,
}

/// What `upload` resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uploaded {
    pub file_id: String,
    pub link: String,
    pub size: u64,
}

/// An upload session the server opened: what is needed to abort it.
struct Session {
    file_id: FileId,
    token: OwnerToken,
}

/// Uploads `request.file`, sealed under a fresh file key, and returns its link.
///
/// If the caller's signal fires, every request in flight is aborted, the upload is
/// deleted on the server (best effort) and the answer is `cancelled`. A failed upload
/// is deleted too: nothing can resume it yet, so its parts would only wait for the
/// session to expire.
pub(crate) async fn upload(
    config: &UploadConfig,
    request: UploadRequest,
) -> Result<Uploaded, ClientError> {
    let watch = AbortWatch::new(request.signal.clone());
    let http = Rc::new(Http::new()?);
    let session = RefCell::new(None);
    let outcome = cancellable(&watch, &http, run(config, &request, &http, &session)).await;
    let open_session = session.borrow_mut().take();
    if outcome.is_err()
        && let Some(session) = open_session
    {
        abort_session(&config.endpoint, &session).await;
    }
    outcome
}

async fn run(
    config: &UploadConfig,
    request: &UploadRequest,
    http: &Rc<Http>,
    session: &RefCell<Option<Session>>,
) -> Result<Uploaded, ClientError> {
    let size = blob_size(&request.file)?;

    // Fresh secrets for this file alone (FORMAT.md §5: a key never seals two files).
    let mut key = [0u8; 32];
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 12];
    for buf in [&mut key[..], &mut salt[..], &mut nonce[..]] {
        platform::random_bytes(buf)?;
    }
    let file_key = FileKey::from_bytes(key);
    let header = Header::new(&file_key, config.record_size, salt)?;
    let keys = file_key.derive(&header)?;
    let metadata = FileMetadata {
        name: request.name.clone(),
        mime: request.mime.clone(),
    };
    let sealed_metadata = seal_metadata(&keys.metadata, &header, nonce, &metadata)?;
    let layout = Layout::for_plaintext(config.record_size, size)?;

    let backoff = config.backoff();
    let create = CreateUploadRequest {
        plaintext_size: size,
        header: encode_base64(&header.encode()),
        metadata: encode_base64(&sealed_metadata),
        part_size: config.part_size,
        // Idempotent create is the client stream's to adopt (issue 10 §4).
        idempotency_key: None,
        // The deployment's default lifetime.
        expires_in: None,
    };
    let uploads_url = format!("{}/api/uploads", config.endpoint);
    let created: CreateUploadResponse = retrying(backoff, || {
        http.json("POST uploads", "POST", &uploads_url, None, Some(&create))
    })
    .await?;
    let CreateUploadResponse {
        file_id,
        owner_token,
        plan,
        ..
    } = created;
    *session.borrow_mut() = Some(Session {
        file_id: file_id.clone(),
        token: owner_token.clone(),
    });
    if plan.plaintext_size() != size || plan.record_size() != config.record_size {
        return Err(ClientError::InvalidResponse(
            "the server planned another file size or record size".into(),
        ));
    }

    let base = format!("{}/api/uploads/{file_id}", config.endpoint);
    let token = owner_token.as_str();
    let sealer = Sealer {
        turn: Mutex::new(()),
        file: request.file.clone(),
        header,
        key: keys.content,
        layout,
        plan: plan.clone(),
        sealed: RefCell::default(),
    };
    let urls = PartUrls::new(Rc::new(UrlSource {
        http: http.clone(),
        url: format!("{base}/part-urls"),
        token: token.to_owned(),
        part_count: plan.part_count(),
    }));

    let mut scheduler = UploadScheduler::new(plan.part_count(), config.concurrency, backoff, [])
        .map_err(|e| ClientError::InvalidOption(e.to_string()))?;
    let mut reporter = Reporter::new(request.on_progress.clone(), size, plan.part_count());
    reporter.start(platform::now_ms());
    let etags = run_parts(
        &mut scheduler,
        &mut reporter,
        |part| attempt_part(&sealer, &urls, http, part),
        |part, etag| (etag, plaintext_len(&plan, part)),
    )
    .await?;

    let complete = CompleteRequest {
        parts: etags
            .into_iter()
            .map(|(part_number, etag)| CompletedPart { part_number, etag })
            .collect(),
    };
    let complete_url = format!("{base}/complete");
    let record: FileRecord = retrying(backoff, || {
        http.json(
            "POST complete",
            "POST",
            &complete_url,
            Some(token),
            Some(&complete),
        )
    })
    .await?;
    if record.file_id != file_id || record.plaintext_size != size {
        return Err(ClientError::InvalidResponse(
            "complete answered another file".into(),
        ));
    }
    // The link names a share, the only way others reach a file: a default one (no
    // password, no limit, the file's lifetime). A retry after a lost answer may make a
    // second share; only the one answered is linked.
    let shares_url = format!("{}/api/files/{file_id}/shares", config.endpoint);
    let default_share = CreateShareRequest::default();
    let share: ShareView = retrying(backoff, || {
        http.json(
            "POST shares",
            "POST",
            &shares_url,
            Some(token),
            Some(&default_share),
        )
    })
    .await?;
    let share_token = ShareToken::parse(&share.token)
        .map_err(|_| ClientError::InvalidResponse("the share token is malformed".into()))?;
    reporter.finish(platform::now_ms());
    Ok(Uploaded {
        link: link::build(&config.endpoint, &share_token, &file_key),
        file_id: file_id.to_string(),
        size,
    })
}

/// One attempt at one part: its URL (fetched while the part is being sealed), the
/// sealed `Blob`, the `PUT`, and its ETag. A URL refused as expired is replaced and
/// the same body sent again, within the attempt: any `403` (the worker's JSON
/// `token_expired`, or a presigned S3/R2 URL's XML `AccessDenied` once it expires) is
/// answered with one fresh URL; a second refusal fails as usual.
async fn attempt_part(
    sealer: &Sealer,
    urls: &PartUrls,
    http: &Http,
    part: u32,
) -> Result<String, ClientError> {
    let (url, body) = try_join(urls.get(part), sealer.seal_part(part)).await?;
    match http.put_blob(&url, &body).await {
        Err(e) if e.may_need_fresh_url() => {
            urls.forget(part);
            let url = urls.get(part).await?;
            http.put_blob(&url, &body).await
        }
        outcome => outcome,
    }
}

/// Plaintext bytes in `part`, for progress.
fn plaintext_len(plan: &PartPlan, part: u32) -> u64 {
    plan.plaintext_range_of_part(part)
        .map_or(0, |r| r.end - r.start)
}

/// `blob.size` as a whole number of bytes.
fn blob_size(blob: &Blob) -> Result<u64, ClientError> {
    let size = blob.size();
    if size.is_finite() && size >= 0.0 && size.fract() == 0.0 {
        Ok(size as u64)
    } else {
        Err(ClientError::InvalidOption(format!(
            "the file's size is {size}"
        )))
    }
}

/// Deletes an upload that will not complete, best effort, waiting at most
/// [`ABORT_TIMEOUT_MS`].
async fn abort_session(endpoint: &str, session: &Session) {
    let Ok(http) = Http::new() else { return };
    let url = format!("{endpoint}/api/uploads/{}", session.file_id);
    let delete = http.empty(
        "DELETE upload",
        "DELETE",
        &url,
        Some(session.token.as_str()),
    );
    let timeout = platform::sleep(ABORT_TIMEOUT_MS);
    let _ = futures_util::future::select(std::pin::pin!(delete), std::pin::pin!(timeout)).await;
    http.abort();
}

// ---------------------------------------------------------------------------------
// Sealing a part
// ---------------------------------------------------------------------------------

/// Everything needed to seal any part of one file, in any order.
struct Sealer {
    /// One part seals at a time, in the order parts start: the first part's `PUT`
    /// begins as soon as it alone is sealed, while the next one seals, instead of
    /// every part in flight sealing side by side and all finishing together.
    turn: Mutex<()>,
    file: Blob,
    header: Header,
    key: ContentKey,
    layout: Layout,
    plan: PartPlan,
    /// What each part sealed to the first time: a re-seal must match before it is sent.
    sealed: RefCell<PartFingerprints>,
}

impl Sealer {
    /// Reads part `part`'s plaintext from the file in slices of at most
    /// [`READ_BYTES`], seals its records (global indexes; the file's last record
    /// flagged last), and returns them as one `Blob`: `new Blob([records...])`, the
    /// body shape Chromium uploads fastest. A re-seal of a part whose records differ
    /// from its first seal (the file changed) fails with `read_failed` instead.
    async fn seal_part(&self, part: u32) -> Result<Blob, ClientError> {
        let _turn = self.turn.lock().await;
        let records = self.plan.records_of_part(part).ok_or_else(|| {
            ClientError::InvalidResponse(format!("part {part} is not in the plan"))
        })?;
        let record_size = self.header.record_size();
        let per_read = scratch::records_in(READ_BYTES, record_size);
        let per_group = scratch::records_in(scratch::GROUP_BYTES, record_size);
        let pieces = Array::new();
        let mut tags = TagDigest::default();
        let mut first = records.start;
        while first < records.end {
            let end = (first + per_read).min(records.end);
            let read = self.plaintext_of(first..end);
            let bytes = read_slice(&self.file, read.clone()).await?;
            let mut group = first;
            while group < end {
                let group_end = (group + per_group).min(end);
                let range = self.plaintext_of(group..group_end);
                let view = bytes.subarray(
                    offset_u32(range.start - read.start)?,
                    offset_u32(range.end - read.start)?,
                );
                let sealed = self.seal_group(group..group_end, &view, &mut tags)?;
                pieces.push(&sealed);
                group = group_end;
            }
            first = end;
        }
        // Checked before the bytes exist as a body: a refused seal is never sent.
        self.sealed.borrow_mut().admit(part, tags.finish())?;
        Blob::new_with_u8_array_sequence(&pieces)
            .map_err(|e| ClientError::Unsupported(format!("Blob: {}", platform::describe(&e))))
    }

    /// Seals records `records`, whose plaintext is `plaintext`, through the scratch
    /// buffers, into a new JS array, adding each record's tag to `tags`.
    fn seal_group(
        &self,
        records: Range<u64>,
        plaintext: &Uint8Array,
        tags: &mut TagDigest,
    ) -> Result<Uint8Array, ClientError> {
        scratch::with(|s| {
            s.input.resize(plaintext.length() as usize, 0);
            plaintext.copy_to(&mut s.input);
            let mut offset = 0;
            for index in records {
                let len = self.layout.plaintext_len(index).unwrap_or(0) as usize;
                let record = s.input.get(offset..offset + len).ok_or_else(|| {
                    ClientError::ReadFailed("the file is shorter than when the upload began".into())
                })?;
                let last = self.layout.is_last(index);
                seal_record_into(&self.key, &self.header, index, last, record, &mut s.output)?;
                tags.push(&s.output[s.output.len() - TAG_LEN..]);
                offset += len;
            }
            Ok(Uint8Array::from(&s.output[..]))
        })
    }

    /// The plaintext bytes of records `records` (a non-empty range).
    fn plaintext_of(&self, records: Range<u64>) -> Range<u64> {
        let start = self
            .layout
            .plaintext_range(records.start)
            .map_or(0, |r| r.start);
        let end = self
            .layout
            .plaintext_range(records.end - 1)
            .map_or(start, |r| r.end);
        start..end
    }
}

/// Reads bytes `range` of `file` (`Blob.slice(...).arrayBuffer()`).
async fn read_slice(file: &Blob, range: Range<u64>) -> Result<Uint8Array, ClientError> {
    let expected = range.end - range.start;
    if expected == 0 {
        return Ok(Uint8Array::new_with_length(0));
    }
    let failed = |e: wasm_bindgen::JsValue| ClientError::ReadFailed(platform::describe(&e));
    let slice = file
        .slice_with_f64_and_f64(range.start as f64, range.end as f64)
        .map_err(failed)?;
    let buffer = JsFuture::from(slice.array_buffer()).await.map_err(failed)?;
    let buffer: ArrayBuffer = buffer
        .dyn_into()
        .map_err(|_| ClientError::ReadFailed("arrayBuffer() gave no ArrayBuffer".into()))?;
    let bytes = Uint8Array::new(&buffer);
    if u64::from(bytes.length()) != expected {
        return Err(ClientError::ReadFailed(
            "the file changed size while it was being uploaded".into(),
        ));
    }
    Ok(bytes)
}

/// An offset within one read (at most [`READ_BYTES`] plus a record) as a `u32`.
fn offset_u32(offset: u64) -> Result<u32, ClientError> {
    u32::try_from(offset).map_err(|_| ClientError::ReadFailed("a read over 4 GiB".into()))
}

// ---------------------------------------------------------------------------------
// Part URLs
// ---------------------------------------------------------------------------------

/// Where part URLs come from: `POST .../part-urls`.
struct UrlSource {
    /// The upload's own client: cancelling the upload aborts these calls too.
    http: Rc<Http>,
    url: String,
    token: String,
    part_count: u32,
}

type Batch = Shared<LocalBoxFuture<'static, Result<(), ClientError>>>;

/// The part URLs of one upload, fetched in batches of up to [`URL_BATCH`] as parts
/// need them, one batch at a time: parts that start together wait for the same call.
struct PartUrls {
    source: Rc<UrlSource>,
    cache: Rc<RefCell<HashMap<u32, PartUrl>>>,
    pending: RefCell<Option<Batch>>,
}

impl PartUrls {
    fn new(source: Rc<UrlSource>) -> Self {
        Self {
            source,
            cache: Rc::default(),
            pending: RefCell::new(None),
        }
    }

    /// The URL to `PUT` part `part` to.
    async fn get(&self, part: u32) -> Result<String, ClientError> {
        loop {
            if let Some(url) = self.cached(part, true) {
                return Ok(url);
            }
            let (batch, mine) = {
                let mut pending = self.pending.borrow_mut();
                match &*pending {
                    Some(batch) if batch.peek().is_none() => (batch.clone(), false),
                    _ => {
                        let batch = self.fetch_batch(part).boxed_local().shared();
                        *pending = Some(batch.clone());
                        (batch, true)
                    }
                }
            };
            batch.await?;
            if mine {
                // Just fetched: use it even if our clock thinks it is about to expire.
                return self.cached(part, false).ok_or_else(|| {
                    ClientError::InvalidResponse(format!("part-urls gave no URL for part {part}"))
                });
            }
        }
    }

    /// Drops part `part`'s URL (refused: expired, or signed wrong).
    fn forget(&self, part: u32) {
        self.cache.borrow_mut().remove(&part);
    }

    fn cached(&self, part: u32, fresh: bool) -> Option<String> {
        let cache = self.cache.borrow();
        let url = cache.get(&part)?;
        let usable = !fresh || url.expires_at > platform::now_ms() + URL_MARGIN_MS;
        usable.then(|| url.url.clone())
    }

    /// Asks for URLs for `first` and the following parts that have none.
    fn fetch_batch(&self, first: u32) -> impl Future<Output = Result<(), ClientError>> + 'static {
        let source = self.source.clone();
        let cache = self.cache.clone();
        let now = platform::now_ms();
        let parts: Vec<u32> = {
            let cache = cache.borrow();
            (first..=source.part_count)
                .filter(|p| {
                    *p == first
                        || cache
                            .get(p)
                            .is_none_or(|u| u.expires_at <= now + URL_MARGIN_MS)
                })
                .take(URL_BATCH)
                .collect()
        };
        async move {
            let body = PartUrlsRequest {
                part_numbers: parts,
            };
            let answer: PartUrlsResponse = source
                .http
                .json(
                    "POST part-urls",
                    "POST",
                    &source.url,
                    Some(&source.token),
                    Some(&body),
                )
                .await?;
            let mut cache = cache.borrow_mut();
            for url in answer.urls {
                cache.insert(url.part_number, url);
            }
            Ok(())
        }
    }
}
