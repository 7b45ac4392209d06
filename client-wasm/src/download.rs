//! `download(link)`: fetch a file's record section in ranges, in parallel, open every
//! record through the file's [`FileCipher`] (WebCrypto where the page has it; a range's
//! records side by side), and hand back the plaintext as a `Blob` only once every record, the last
//! included, has authenticated.
//!
//! The file key never leaves the page: it comes from the link's fragment, which
//! browsers do not send. The link names a share: the download is opened on it (one
//! download id, drawn here, for every retry), which answers the file record (header,
//! sealed metadata, record-section length, from which the layout and so which record
//! is the last are fixed before any byte is read, FORMAT.md §6) and a short-lived
//! storage URL, re-issued to the same download when it expires. A verified download
//! is reported complete (it counts once); one that fails is abandoned (it does not).

use std::cell::RefCell;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::join_all;
use js_sys::{Array, Function, Uint8Array};
use sealdrop_protocol::backoff::Backoff;
use sealdrop_protocol::format::{
    FileMetadata, FormatError, Header, Layout, RecordPosition, TAG_LEN,
};
use sealdrop_protocol::ids::random_id_text;
use sealdrop_protocol::records::{
    Runs, file_layout, plaintext_span, records_before, records_in, sealed_span,
};
use sealdrop_protocol::scheduler::PartScheduler;
use sealdrop_protocol::share::{DownloadOpened, OpenDownloadRequest};
use sealdrop_protocol::wire::{DownloadUrl, FileRecord};
use web_sys::{AbortSignal, Blob, BlobPropertyBag};

use crate::cipher::FileCipher;
use crate::error::ClientError;
use crate::http::Http;
use crate::interop;
use crate::link::{self, Link};
use crate::platform::{self, AbortWatch};
use crate::progress::Reporter;
use crate::shares::Unlock;
use crate::transfer::{cancellable, retrying, run_parts};

/// Sealed bytes per ranged `GET` (whole records, at least one).
pub(crate) const RANGE_BYTES: u64 = 8 * 1024 * 1024;

/// One call of `download(link, options)`, validated.
pub(crate) struct DownloadRequest {
    pub link: String,
    pub on_progress: Option<Function>,
    pub on_metadata: Option<Function>,
    pub concurrency: u32,
    /// `stallTimeoutMs`.
    pub stall_ms: u64,
    pub signal: Option<AbortSignal>,
    /// For a `p1.` link.
    pub password: Option<String>,
}

/// What `download` resolves to.
pub(crate) struct Downloaded {
    pub metadata: FileMetadata,
    pub size: u64,
    pub blob: Blob,
}

/// Downloads and opens the file a link names. See the module documentation.
pub(crate) async fn download(request: DownloadRequest) -> Result<Downloaded, ClientError> {
    let link = link::parse(&request.link)?;
    let unlock = Unlock::new(&link, request.password.as_deref())?;
    let watch = AbortWatch::new(request.signal.clone());
    let http = Http {
        stall_ms: request.stall_ms,
    };
    let mut id = [0u8; 16];
    platform::random_bytes(&mut id)?;
    let source = Source {
        http: &http,
        backoff: Backoff::default(),
        base: format!("{}/api/shares/{}/downloads", link.endpoint, link.token),
        download_id: random_id_text(id),
        verifier: unlock.verifier(),
        url: RefCell::new(String::new()),
    };
    let outcome = cancellable(&watch, run(&request, &link, &unlock, &source)).await;
    // Best effort, and not cancelled with the download: a download neither completed
    // nor abandoned counts when its lease lapses anyway.
    let _ = source.close(outcome.is_ok()).await;
    outcome
}

async fn run(
    request: &DownloadRequest,
    link: &Link,
    unlock: &Unlock,
    source: &Source<'_>,
) -> Result<Downloaded, ClientError> {
    let record = source.open().await?;
    // A password link's key opens only now: the share accepted the verifier.
    let key = unlock.key(&link.token)?;

    let header = Header::parse(&decode(&record.header, "header")?)?;
    // A wrong key stops here (`key_commitment_failed`), before any content is fetched.
    let cipher = FileCipher::new(&key, &header).await?;
    let metadata = cipher
        .open_metadata(&decode(&record.metadata, "metadata")?)
        .await?;
    let layout =
        file_layout(&header, &record).map_err(|e| ClientError::InvalidResponse(e.to_string()))?;

    if let Some(callback) = &request.on_metadata {
        interop::call_metadata(callback, &metadata, layout.plaintext_size());
    }

    // Ranges of about RANGE_BYTES of whole records, numbered from 1 like parts.
    let sealed_record = u64::from(layout.record_size()) + TAG_LEN as u64;
    let ranges = Runs::new(
        layout.record_count(),
        records_in(RANGE_BYTES, sealed_record),
    );
    let range_count = ranges
        .count()
        .ok_or_else(|| ClientError::InvalidResponse("the file has too many ranges".into()))?;
    let backend = cipher.backend();
    let opener = Opener { cipher, layout };
    let scheduler = RefCell::new(
        PartScheduler::new(range_count, request.concurrency, source.backoff, [])
            .map_err(|e| ClientError::InvalidOption(e.to_string()))?,
    );
    let mut reporter = Reporter::new(
        request.on_progress.clone(),
        layout.plaintext_size(),
        range_count,
        backend,
    );
    reporter.start(platform::now_ms(), 0, 0);
    let reporter = RefCell::new(reporter);
    let records = |part| ranges.records(part).unwrap_or(0..0);
    let opened = RefCell::new(vec![None; range_count as usize]);
    run_parts(
        &scheduler,
        &reporter,
        |part| attempt_range(source, &opener, records(part)),
        |part, blob: Blob| {
            if let Some(slot) = opened.borrow_mut().get_mut(part as usize - 1) {
                *slot = Some(blob);
            }
            let bytes = plaintext_span(&layout, &records(part)).map_or(0, |r| r.end - r.start);
            (String::new(), bytes)
        },
    )
    .await?;

    // Every record has authenticated, the last included: only now is there a file.
    let pieces = Array::new();
    for blob in opened.into_inner() {
        let blob =
            blob.ok_or_else(|| ClientError::Unsupported("internal: a range is missing".into()))?;
        pieces.push(&blob);
    }
    let options = BlobPropertyBag::new();
    options.set_type(&metadata.mime);
    let blob = Blob::new_with_blob_sequence_and_options(&pieces, &options)
        .map_err(|e| ClientError::Unsupported(format!("Blob: {}", platform::describe(&e))))?;
    reporter.borrow_mut().finish(platform::now_ms());
    Ok(Downloaded {
        metadata,
        size: layout.plaintext_size(),
        blob,
    })
}

/// One attempt at one range of records: `GET` it (with a fresh download URL, once, if
/// the current one is refused with `403`: expired, whatever the body says) and open
/// every record in it.
async fn attempt_range(
    source: &Source<'_>,
    opener: &Opener,
    records: Range<u64>,
) -> Result<Blob, ClientError> {
    let bytes = opener.sealed_range(&records)?;
    let url = source.url.borrow().clone();
    let whole = opener.layout.section_len();
    let body = match source
        .http
        .get_range(&url, bytes.start, bytes.end, whole)
        .await
    {
        Err(e) if e.may_need_fresh_url() => {
            source.refresh().await?;
            let url = source.url.borrow().clone();
            source
                .http
                .get_range(&url, bytes.start, bytes.end, whole)
                .await?
        }
        outcome => outcome?,
    };
    opener.open_range(records, bytes.start, &body).await
}

/// The download opened on the link's share, and its storage URL, re-issued when it
/// expires.
struct Source<'a> {
    http: &'a Http,
    backoff: Backoff,
    /// `<endpoint>/api/shares/<token>/downloads`.
    base: String,
    /// Chosen here, so a retried open is the same download.
    download_id: String,
    /// A password share's verifier (base64url).
    verifier: Option<String>,
    url: RefCell<String>,
}

impl Source<'_> {
    /// Opens the download; keeps its URL and answers the file record.
    async fn open(&self) -> Result<FileRecord, ClientError> {
        let request = OpenDownloadRequest {
            download_id: Some(self.download_id.clone()),
            verifier: self.verifier.clone(),
        };
        let opened: DownloadOpened = retrying(self.backoff, || {
            self.http
                .json("POST downloads", "POST", &self.base, None, Some(&request))
        })
        .await?;
        if opened.download_id != self.download_id {
            return Err(ClientError::InvalidResponse(
                "the share opened another download".into(),
            ));
        }
        *self.url.borrow_mut() = opened.file.download.url.clone();
        Ok(opened.file)
    }

    /// A fresh storage URL for the download.
    async fn refresh(&self) -> Result<(), ClientError> {
        let url = format!("{}/{}/url", self.base, self.download_id);
        let fresh: DownloadUrl = retrying(self.backoff, || {
            self.http
                .json("POST download url", "POST", &url, None, None::<&()>)
        })
        .await?;
        *self.url.borrow_mut() = fresh.url;
        Ok(())
    }

    /// Tells the share how the download ended: `complete` (it counts) or `DELETE`
    /// (abandoned).
    async fn close(&self, completed: bool) -> Result<(), ClientError> {
        let url = format!("{}/{}", self.base, self.download_id);
        match completed {
            true => {
                let url = format!("{url}/complete");
                self.http
                    .empty("POST download complete", "POST", &url, None)
                    .await
            }
            false => {
                self.http
                    .empty("DELETE download", "DELETE", &url, None)
                    .await
            }
        }
    }
}

/// Everything needed to open any record of the file.
struct Opener {
    cipher: FileCipher,
    layout: Layout,
}

impl Opener {
    /// The bytes of the record section that records `records` occupy.
    fn sealed_range(&self, records: &Range<u64>) -> Result<Range<u64>, ClientError> {
        sealed_span(&self.layout, records)
            .ok_or_else(|| ClientError::Unsupported("internal: a range of no records".into()))
    }

    /// Opens records `records` from `body`, the section's bytes from `offset` on, into
    /// one `Blob` of plaintext. A body shorter than the records is `truncated` at the
    /// first record it does not hold; no plaintext of a record that fails is kept.
    /// (A body longer than the records never gets here: the read stops at the range.)
    async fn open_range(
        &self,
        records: Range<u64>,
        offset: u64,
        body: &Uint8Array,
    ) -> Result<Blob, ClientError> {
        // The records that arrived whole are opened first: a tampered record before a
        // cut must be reported as such, not as truncation.
        let end = offset + u64::from(body.length());
        let whole = records_before(&self.layout, records.clone(), end);
        let opened = join_all(
            whole
                .clone()
                .map(|index| self.open_record(index, offset, body)),
        );
        let pieces = Array::new();
        // In record order, so the first failing record is the one reported.
        for plaintext in opened.await {
            let plaintext = plaintext?;
            pieces.push(&plaintext);
        }
        if whole.end < records.end {
            return Err(FormatError::Truncated { record: whole.end }.into());
        }
        Blob::new_with_u8_array_sequence(&pieces)
            .map_err(|e| ClientError::Unsupported(format!("Blob: {}", platform::describe(&e))))
    }

    /// Opens record `index`, which lies wholly in `body` (the section's bytes from
    /// `offset` on).
    async fn open_record(
        &self,
        index: u64,
        offset: u64,
        body: &Uint8Array,
    ) -> Result<Uint8Array, ClientError> {
        let sealed = self.sealed_range(&(index..index + 1))?;
        let view = body.subarray((sealed.start - offset) as u32, (sealed.end - offset) as u32);
        let position = RecordPosition::new(index, self.layout.is_last(index));
        self.cipher.open(position, &view).await
    }
}

/// Decodes a standard-base64 field of the file record.
fn decode(field: &str, what: &str) -> Result<Vec<u8>, ClientError> {
    STANDARD
        .decode(field)
        .map_err(|_| ClientError::InvalidResponse(format!("the file's {what} is not base64")))
}
