//! `download(link)`: fetch a file's record section in ranges, in parallel, open every
//! record through the file's [`FileCipher`] (WebCrypto where the page has it; a range's
//! records side by side), and write the plaintext in order to the caller's sink
//! ([`crate::sink`]: a file on disk, a stream, or a `Blob`), which is complete only once
//! every record, the last included, has authenticated ([`crate::pipeline`]).
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
    FileKey, FileMetadata, FormatError, Header, Layout, LinkSecret, RecordPosition,
};
use sealdrop_protocol::ids::{ShareToken, random_id_text};
use sealdrop_protocol::records::{file_layout, records_before, sealed_span};
use sealdrop_protocol::share::{DownloadOpened, OpenDownloadRequest};
use sealdrop_protocol::wire::{DownloadUrl, FileRecord};
use web_sys::{AbortSignal, Blob};

use crate::cipher::FileCipher;
use crate::error::ClientError;
use crate::http::Http;
use crate::interop;
use crate::kept;
use crate::link::{self, Link};
use crate::offload::Pool;
use crate::pipeline;
use crate::platform::{self, AbortWatch};
use crate::shares::Unlock;
use crate::sink::{FileHandle, Sink, SinkChoice};
use crate::spare;
use crate::transfer::{self, cancellable, retrying};

/// Sealed bytes per ranged `GET` (whole records, at least one).
pub(crate) const RANGE_BYTES: u64 = 8 * 1024 * 1024;

/// One call of `download(link, options)`, validated.
pub(crate) struct DownloadRequest {
    pub link: String,
    pub on_progress: Option<Function>,
    pub on_metadata: Option<Function>,
    pub concurrency: u32,
    /// `workers`: cipher workers that open the records (0: in the page).
    pub workers: u32,
    /// `concurrency` ranges in flight throughout (the bench-only build's
    /// `benchFixedConcurrency`), not adapting up to it.
    pub fixed_concurrency: bool,
    /// `stallTimeoutMs`.
    pub stall_ms: u64,
    pub signal: Option<AbortSignal>,
    /// For a `p1.` link.
    pub password: Option<String>,
    /// `fileHandle` or `writable`; a `Blob` without either.
    pub sink: SinkChoice,
}

/// What `download` resolves to.
pub(crate) struct Downloaded {
    pub metadata: FileMetadata,
    pub size: u64,
    /// The plaintext, for a blob sink.
    pub blob: Option<Blob>,
    /// Plaintext bytes a file sink already held, not fetched again.
    pub resumed_from: u64,
}

/// Downloads and opens the file a link names. See the module documentation.
pub(crate) async fn download(mut request: DownloadRequest) -> Result<Downloaded, ClientError> {
    let link = link::parse(&request.link)?;
    let unlock = Unlock::new(&link, request.password.as_deref())?;
    let watch = AbortWatch::new(request.signal.clone());
    let source = Source::new(&link, request.stall_ms, &unlock)?;
    let outcome = run(&mut request, &link, &unlock, &source, &watch).await;
    // Best effort, and not cancelled with the download: a download neither completed
    // nor abandoned counts when its lease lapses anyway.
    let _ = source.close(outcome.is_ok()).await;
    outcome
}

async fn run(
    request: &mut DownloadRequest,
    link: &Link,
    unlock: &Unlock,
    source: &Source,
    watch: &AbortWatch,
) -> Result<Downloaded, ClientError> {
    let (opener, metadata, key) = cancellable(watch, source.open_file(unlock, &link.token)).await?;
    let layout = opener.layout;

    if let Some(callback) = &request.on_metadata {
        interop::call_metadata(callback, &metadata, layout.plaintext_size());
    }

    let choice = std::mem::replace(&mut request.sink, SinkChoice::Blob);
    // Only a download this browser kept resumes from what its file holds. A password
    // share's is not kept: its share asks for the verifier again, which only the
    // password gives, and a kept `#k1.` link could not answer it.
    let (kept, resume) = match &choice {
        SinkChoice::File(handle) if !matches!(link.secret, LinkSecret::Password(_)) => {
            keep(link, &key, &metadata, layout.plaintext_size(), handle)
                .await
                .map_or((None, false), |(id, resume)| (Some(id), resume))
        }
        _ => (None, false),
    };
    let mut sink = Sink::open(choice, &layout, resume).await?;
    let resumed_from = sink.resumed_from();
    let from = resumed_from / u64::from(layout.record_size());
    // Cancelled, only the pipeline is dropped: the sink still stops (a file keeps what
    // it verified, to resume from).
    let pipeline = pipeline::run(
        source,
        &opener,
        from,
        transfer::pace(request.concurrency, request.fixed_concurrency),
        request.workers,
        request.on_progress.clone(),
        &mut sink,
    );
    if let Err(error) = cancellable(watch, pipeline).await {
        sink.stop(&error).await;
        return Err(error);
    }
    // Every record has authenticated, the last included: only now is there a file.
    let blob = sink.complete(&metadata.mime).await?;
    if let Some(id) = kept
        && let Err(e) = kept::forget(&id).await
    {
        platform::warn(
            "sealdrop: a finished download stays listed",
            &e.to_string().into(),
        );
    }
    Ok(Downloaded {
        metadata,
        size: layout.plaintext_size(),
        blob,
        resumed_from,
    })
}

/// Keeps a download to a file in IndexedDB, to be listed and resumed after a reload:
/// its id, and whether it was kept already (a resume). `None` (and a warning) where
/// the browser refuses: the download itself goes on, from the file's first byte.
async fn keep(
    link: &Link,
    key: &FileKey,
    metadata: &FileMetadata,
    size: u64,
    handle: &FileHandle,
) -> Option<(String, bool)> {
    let share = format!("{}/s/{}", link.endpoint, link.token);
    match kept::keep(&share, key, metadata, size, handle).await {
        Ok(kept) => Some(kept),
        Err(e) => {
            platform::warn(
                "sealdrop: the download is not kept for a reload",
                &e.to_string().into(),
            );
            None
        }
    }
}

/// The download opened on the link's share, and its storage URL, re-issued when it
/// expires.
pub(crate) struct Source {
    http: Http,
    pub(crate) backoff: Backoff,
    /// `<endpoint>/api/shares/<token>/downloads`.
    base: String,
    /// Chosen here, so a retried open is the same download.
    download_id: String,
    /// A password share's verifier (base64url).
    verifier: Option<String>,
    url: RefCell<String>,
}

impl Source {
    /// A download of the file the link's share names, not yet opened (with the
    /// password's verifier, for a `p1.` link).
    pub(crate) fn new(link: &Link, stall_ms: u64, unlock: &Unlock) -> Result<Self, ClientError> {
        let mut id = [0u8; 16];
        platform::random_bytes(&mut id)?;
        Ok(Source {
            http: Http { stall_ms },
            backoff: Backoff::default(),
            base: format!("{}/api/shares/{}/downloads", link.endpoint, link.token),
            download_id: random_id_text(id),
            verifier: unlock.verifier(),
            url: RefCell::new(String::new()),
        })
    }

    /// Opens the download and the file: the key (a password link's opens only once
    /// the share accepted the verifier), the header, the key's commitment (a wrong key
    /// stops here with `key_commitment_failed`, before any content is fetched), the
    /// sealed name and type, and the layout.
    pub(crate) async fn open_file(
        &self,
        unlock: &Unlock,
        token: &ShareToken,
    ) -> Result<(Opener, FileMetadata, FileKey), ClientError> {
        let record = self.open().await?;
        let key = unlock.key(token)?;
        let header = Header::parse(&decode(&record.header, "header")?)?;
        let cipher = FileCipher::new(&key, &header).await?;
        let metadata = cipher
            .open_metadata(&decode(&record.metadata, "metadata")?)
            .await?;
        let layout = file_layout(&header, &record)
            .map_err(|e| ClientError::InvalidResponse(e.to_string()))?;
        Ok((Opener { cipher, layout }, metadata, key))
    }

    /// One attempt at one range of records: `GET` it (with a fresh download URL, once,
    /// if the current one is refused with `403`: expired, whatever the body says) and
    /// open every record in it (in one of `pool`'s cipher workers, if any).
    pub(crate) async fn attempt_range(
        &self,
        opener: &Opener,
        records: Range<u64>,
        pool: Option<&Pool>,
    ) -> Result<Array, ClientError> {
        let bytes = opener.sealed_range(&records)?;
        let url = self.url.borrow().clone();
        let whole = opener.layout.section_len();
        let body = match self
            .http
            .get_range(&url, bytes.start, bytes.end, whole)
            .await
        {
            Err(e) if e.may_need_fresh_url() => {
                self.refresh().await?;
                let url = self.url.borrow().clone();
                self.http
                    .get_range(&url, bytes.start, bytes.end, whole)
                    .await?
            }
            outcome => outcome?,
        };
        opener.open_range(records, bytes.start, body, pool).await
    }

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
    pub(crate) async fn close(&self, completed: bool) -> Result<(), ClientError> {
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
pub(crate) struct Opener {
    pub(crate) cipher: FileCipher,
    pub(crate) layout: Layout,
}

impl Opener {
    /// The bytes of the record section that records `records` occupy.
    fn sealed_range(&self, records: &Range<u64>) -> Result<Range<u64>, ClientError> {
        sealed_span(&self.layout, records)
            .ok_or_else(|| ClientError::Unsupported("internal: a range of no records".into()))
    }

    /// Opens records `records` from `body` (the section's bytes from `offset` on) in
    /// one of `pool`'s workers, which takes `body`'s buffer, or in this page without one.
    /// Either way the buffer goes back to the [spare](crate::spare) ones once opened.
    async fn open_range(
        &self,
        records: Range<u64>,
        offset: u64,
        body: Uint8Array,
        pool: Option<&Pool>,
    ) -> Result<Array, ClientError> {
        match pool {
            Some(pool) => {
                pool.open(&self.cipher, &self.layout, records, offset, body)
                    .await
            }
            None => {
                let pieces = open_records(&self.cipher, &self.layout, records, offset, &body);
                let pieces = pieces.await;
                // The plaintexts are WebCrypto's (or wasm's) copies: the buffer is free.
                spare::give(body.buffer());
                pieces
            }
        }
    }
}

/// Opens records `records` from `body`, the section's bytes from `offset` on, into
/// their plaintexts, in order. A body shorter than the records is `truncated` at the
/// first record it does not hold; no plaintext of a record that fails is kept.
/// (A body longer than the records never gets here: the read stops at the range.)
/// Runs in the page or in a cipher worker ([`crate::worker`]) alike.
pub(crate) async fn open_records(
    cipher: &FileCipher,
    layout: &Layout,
    records: Range<u64>,
    offset: u64,
    body: &Uint8Array,
) -> Result<Array, ClientError> {
    // The records that arrived whole are opened first: a tampered record before a
    // cut must be reported as such, not as truncation.
    let end = offset + u64::from(body.length());
    let whole = records_before(layout, records.clone(), end);
    let opened = join_all(
        whole
            .clone()
            .map(|index| open_record(cipher, layout, index, offset, body)),
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
    Ok(pieces)
}

/// Opens record `index`, which lies wholly in `body` (the section's bytes from
/// `offset` on).
async fn open_record(
    cipher: &FileCipher,
    layout: &Layout,
    index: u64,
    offset: u64,
    body: &Uint8Array,
) -> Result<Uint8Array, ClientError> {
    let sealed = sealed_span(layout, &(index..index + 1))
        .ok_or_else(|| ClientError::Unsupported("internal: a range of no records".into()))?;
    let view = body.subarray((sealed.start - offset) as u32, (sealed.end - offset) as u32);
    let position = RecordPosition::new(index, layout.is_last(index));
    cipher.open(position, &view).await
}

/// Decodes a standard-base64 field of the file record.
fn decode(field: &str, what: &str) -> Result<Vec<u8>, ClientError> {
    STANDARD
        .decode(field)
        .map_err(|_| ClientError::InvalidResponse(format!("the file's {what} is not base64")))
}
