//! `download(link)`: fetch a file's record section in ranges, in parallel, open every
//! record, and hand back the plaintext as a `Blob` only once every record, the last
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
use js_sys::{Array, Function, Uint8Array};
use sealdrop_protocol::backoff::Backoff;
use sealdrop_protocol::format::{
    ContentKey, FileMetadata, FormatError, Header, Layout, TAG_LEN, open_metadata, open_record_into,
};
use sealdrop_protocol::ids::random_id_text;
use sealdrop_protocol::plan::MAX_OBJECT_SIZE;
use sealdrop_protocol::scheduler::UploadScheduler;
use sealdrop_protocol::share::{DownloadOpened, OpenDownloadRequest};
use sealdrop_protocol::wire::{DownloadUrl, FileRecord};
use web_sys::{AbortSignal, Blob, BlobPropertyBag};

use crate::error::ClientError;
use crate::http::Http;
use crate::interop;
use crate::link::{self, Link};
use crate::platform::{self, AbortWatch};
use crate::progress::Reporter;
use crate::scratch;
use crate::transfer::{cancellable, retrying, run_parts};

/// Sealed bytes per ranged `GET` (whole records, at least one).
pub(crate) const RANGE_BYTES: u64 = 8 * 1024 * 1024;

/// One call of `download(link, options)`, validated.
pub(crate) struct DownloadRequest {
    pub link: String,
    pub on_progress: Option<Function>,
    pub on_metadata: Option<Function>,
    pub concurrency: u32,
    pub signal: Option<AbortSignal>,
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
    let watch = AbortWatch::new(request.signal.clone());
    let http = Http::new()?;
    let mut id = [0u8; 16];
    platform::random_bytes(&mut id)?;
    let source = Source {
        http: &http,
        backoff: Backoff::default(),
        base: format!("{}/api/shares/{}/downloads", link.endpoint, link.token),
        download_id: random_id_text(id),
        url: RefCell::new(String::new()),
    };
    let outcome = cancellable(&watch, &http, run(&request, &link, &source)).await;
    // Best effort: a download neither completed nor abandoned counts when its lease
    // lapses anyway.
    if let Ok(fresh) = Http::new() {
        let _ = source.close(&fresh, outcome.is_ok()).await;
    }
    outcome
}

async fn run(
    request: &DownloadRequest,
    link: &Link,
    source: &Source<'_>,
) -> Result<Downloaded, ClientError> {
    let backoff = source.backoff;
    let record = source.open().await?;

    let header = Header::parse(&decode(&record.header, "header")?)?;
    // A wrong key stops here (`key_commitment_failed`), before any content is fetched.
    let keys = link.key.derive(&header)?;
    let metadata = open_metadata(
        &keys.metadata,
        &header,
        &decode(&record.metadata, "metadata")?,
    )?;
    let layout = checked_layout(&header, &record)?;

    if let Some(callback) = &request.on_metadata {
        interop::call_metadata(callback, &metadata, layout.plaintext_size());
    }

    let ranges = Ranges::new(&layout);
    let range_count = ranges.count()?;
    let opener = Opener {
        header,
        key: keys.content,
        layout,
    };
    let mut scheduler = UploadScheduler::new(range_count, request.concurrency, backoff, [])
        .map_err(|e| ClientError::InvalidOption(e.to_string()))?;
    let mut reporter = Reporter::new(
        request.on_progress.clone(),
        layout.plaintext_size(),
        range_count,
    );
    reporter.start(platform::now_ms());
    let opened = RefCell::new(vec![None; range_count as usize]);
    run_parts(
        &mut scheduler,
        &mut reporter,
        |part| attempt_range(source, &opener, ranges.records(part)),
        |part, blob: Blob| {
            if let Some(slot) = opened.borrow_mut().get_mut(part as usize - 1) {
                *slot = Some(blob);
            }
            (String::new(), ranges.plaintext_len(&layout, part))
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
    reporter.finish(platform::now_ms());
    Ok(Downloaded {
        metadata,
        size: layout.plaintext_size(),
        blob,
    })
}

/// The layout the file record describes, refused (`invalid_response`) unless its
/// sizes are possible and agree. Nothing in the record is authenticated: a lying
/// server must not make the client plan millions of ranges or allocate for them, so
/// the record section must fit in one storage object ([`MAX_OBJECT_SIZE`]) and be
/// exactly what a writer produces for `plaintextSize` in records of the header's size.
fn checked_layout(header: &Header, record: &FileRecord) -> Result<Layout, ClientError> {
    if record.record_size != header.record_size() {
        return Err(ClientError::InvalidResponse(
            "the file record's record size is not its header's".into(),
        ));
    }
    if record.ciphertext_size > MAX_OBJECT_SIZE {
        return Err(ClientError::InvalidResponse(format!(
            "the file record claims {} bytes of ciphertext, more than storage holds",
            record.ciphertext_size
        )));
    }
    let layout = Layout::for_plaintext(header.record_size(), record.plaintext_size)
        .ok()
        .filter(|layout| layout.section_len() == record.ciphertext_size)
        .ok_or_else(|| {
            ClientError::InvalidResponse(
                "the record-section length does not match the plaintext size".into(),
            )
        })?;
    Ok(layout)
}

/// One attempt at one range of records: `GET` it (with a fresh download URL, once, if
/// the current one is refused with `403`: expired, whatever the body says) and open
/// every record in it.
async fn attempt_range(
    source: &Source<'_>,
    opener: &Opener,
    records: Range<u64>,
) -> Result<Blob, ClientError> {
    let bytes = opener.sealed_range(&records);
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
    opener.open_range(records, bytes.start, &body)
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
    url: RefCell<String>,
}

impl Source<'_> {
    /// Opens the download; keeps its URL and answers the file record.
    async fn open(&self) -> Result<FileRecord, ClientError> {
        let request = OpenDownloadRequest {
            download_id: Some(self.download_id.clone()),
            verifier: None,
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
    /// (abandoned), through `http`, a client the download's cancellation did not abort.
    async fn close(&self, http: &Http, completed: bool) -> Result<(), ClientError> {
        let url = format!("{}/{}", self.base, self.download_id);
        match completed {
            true => {
                let url = format!("{url}/complete");
                http.empty("POST download complete", "POST", &url, None)
                    .await
            }
            false => http.empty("DELETE download", "DELETE", &url, None).await,
        }
    }
}

/// Everything needed to open any record of the file.
struct Opener {
    header: Header,
    key: ContentKey,
    layout: Layout,
}

impl Opener {
    /// The bytes of the record section that records `records` occupy.
    fn sealed_range(&self, records: &Range<u64>) -> Range<u64> {
        let start = self.layout.sealed_offset(records.start).unwrap_or(0);
        let end = self
            .layout
            .sealed_range(records.end - 1)
            .map_or(start, |r| r.end);
        start..end
    }

    /// Opens records `records` from `body`, the section's bytes from `offset` on, into
    /// one `Blob` of plaintext. A body shorter than the records is `truncated` at the
    /// first record it does not hold; no plaintext of a record that fails is kept.
    fn open_range(
        &self,
        records: Range<u64>,
        offset: u64,
        body: &Uint8Array,
    ) -> Result<Blob, ClientError> {
        let expected = self.sealed_range(&records);
        let got = u64::from(body.length());
        if got > expected.end - expected.start {
            return Err(ClientError::InvalidResponse(format!(
                "a range answered {got} bytes, more than the {} asked for",
                expected.end - expected.start
            )));
        }
        let per_group = scratch::records_in(scratch::GROUP_BYTES, self.header.record_size());
        let pieces = Array::new();
        let mut group = records.start;
        while group < records.end {
            let group_end = (group + per_group).min(records.end);
            let sealed = self.sealed_range(&(group..group_end));
            let (start, end) = (sealed.start - offset, sealed.end - offset);
            if end > got {
                // Open what did arrive in this group first: a tampered record before the
                // cut must be reported as such, not as truncation.
                let whole = self.records_within(group..group_end, offset + got);
                if whole.start < whole.end {
                    let sealed = self.sealed_range(&whole);
                    let view =
                        body.subarray((sealed.start - offset) as u32, (sealed.end - offset) as u32);
                    self.open_group(whole.clone(), &view)?;
                }
                return Err(FormatError::Truncated { record: whole.end }.into());
            }
            let view = body.subarray(start as u32, end as u32);
            let opened = self.open_group(group..group_end, &view)?;
            pieces.push(&opened);
            group = group_end;
        }
        Blob::new_with_u8_array_sequence(&pieces)
            .map_err(|e| ClientError::Unsupported(format!("Blob: {}", platform::describe(&e))))
    }

    /// The records of `records` that lie wholly before section offset `end`.
    fn records_within(&self, records: Range<u64>, end: u64) -> Range<u64> {
        let mut last = records.start;
        while last < records.end && self.layout.sealed_range(last).is_some_and(|r| r.end <= end) {
            last += 1;
        }
        records.start..last
    }

    /// Opens records `records`, whose sealed bytes are `sealed`, through the scratch
    /// buffers, into a new JS array of their plaintext.
    fn open_group(
        &self,
        records: Range<u64>,
        sealed: &Uint8Array,
    ) -> Result<Uint8Array, ClientError> {
        scratch::with(|s| {
            s.input.resize(sealed.length() as usize, 0);
            sealed.copy_to(&mut s.input);
            let mut offset = 0;
            for index in records {
                let len = self.layout.sealed_len(index).unwrap_or(0) as usize;
                let record = s
                    .input
                    .get(offset..offset + len)
                    .ok_or(FormatError::Truncated { record: index })?;
                let last = self.layout.is_last(index);
                open_record_into(&self.key, &self.header, index, last, record, &mut s.output)?;
                offset += len;
            }
            Ok(Uint8Array::from(&s.output[..]))
        })
    }
}

/// How the record section is cut into ranged `GET`s: runs of
/// [`RANGE_BYTES`] of whole records, numbered from 1 like parts.
struct Ranges {
    per_range: u64,
    record_count: u64,
}

impl Ranges {
    fn new(layout: &Layout) -> Self {
        let sealed = u64::from(layout.record_size()) + TAG_LEN as u64;
        Self {
            per_range: (RANGE_BYTES / sealed).max(1),
            record_count: layout.record_count(),
        }
    }

    /// Number of ranges (at least 1); more than a `u32` counts is refused, never
    /// saturated (the layout is bounded by [`checked_layout`] before this).
    fn count(&self) -> Result<u32, ClientError> {
        u32::try_from(self.record_count.div_ceil(self.per_range))
            .map_err(|_| ClientError::InvalidResponse("the file has too many ranges".into()))
    }

    /// The records of range `part` (1-based).
    fn records(&self, part: u32) -> Range<u64> {
        let start = u64::from(part - 1) * self.per_range;
        start..(start + self.per_range).min(self.record_count)
    }

    /// Plaintext bytes in range `part`.
    fn plaintext_len(&self, layout: &Layout, part: u32) -> u64 {
        let records = self.records(part);
        let start = layout.plaintext_range(records.start).map_or(0, |r| r.start);
        let end = layout
            .plaintext_range(records.end.saturating_sub(1))
            .map_or(start, |r| r.end);
        end.saturating_sub(start)
    }
}

/// Decodes a standard-base64 field of the file record.
fn decode(field: &str, what: &str) -> Result<Vec<u8>, ClientError> {
    STANDARD
        .decode(field)
        .map_err(|_| ClientError::InvalidResponse(format!("the file's {what} is not base64")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use sealdrop_protocol::format::FileKey;
    use sealdrop_protocol::ids::FileId;
    use sealdrop_protocol::wire::DownloadUrl;

    const R: u32 = 1 << 20;

    fn record(plaintext_size: u64, ciphertext_size: u64) -> FileRecord {
        FileRecord {
            file_id: FileId::parse(&"A".repeat(32)).unwrap(),
            plaintext_size,
            ciphertext_size,
            record_size: R,
            header: String::new(),
            metadata: String::new(),
            part_size: 0,
            part_count: 1,
            created_at: 0,
            expires_at: None,
            download: DownloadUrl {
                url: String::new(),
                expires_at: 0,
            },
        }
    }

    fn refused(record: &FileRecord) -> String {
        let header = Header::new(&FileKey::from_bytes([0; 32]), R, [0; 32]).unwrap();
        checked_layout(&header, record)
            .unwrap_err()
            .code()
            .into_owned()
    }

    #[test]
    fn a_consistent_record_gives_its_layout() {
        let header = Header::new(&FileKey::from_bytes([0; 32]), R, [0; 32]).unwrap();
        for (plaintext, records) in [(0, 1), (1, 1), (u64::from(R), 1), (3 * u64::from(R) + 5, 4)] {
            let layout = checked_layout(&header, &record(plaintext, plaintext + 16 * records))
                .unwrap_or_else(|e| panic!("{plaintext}: {e}"));
            assert_eq!(layout.record_count(), records);
            assert_eq!(Ranges::new(&layout).count(), Ok(1));
        }
    }

    #[test]
    fn sizes_that_disagree_or_cannot_exist_are_invalid_responses() {
        let max = MAX_OBJECT_SIZE;
        for bad in [
            record(100, 117),
            record(100, 115),
            record(100, 0),
            record(0, 0),
            record(u64::MAX, u64::MAX),
            record(max, max + 16 * max.div_ceil(u64::from(R))),
            record((1 << 53) - 1, (1 << 53) - 1),
            record(0, u64::MAX),
        ] {
            assert_eq!(refused(&bad), "invalid_response", "{bad:?}");
        }
        let mut other_record_size = record(100, 116);
        other_record_size.record_size = R / 2;
        assert_eq!(refused(&other_record_size), "invalid_response");
    }

    #[test]
    fn the_largest_legal_object_plans_a_bounded_number_of_ranges() {
        // 16-byte records: the most records (and ranges) a legal object can hold.
        let layout = Layout::for_section(16, MAX_OBJECT_SIZE).unwrap();
        let count = Ranges::new(&layout).count().unwrap();
        assert_eq!(u64::from(count), MAX_OBJECT_SIZE.div_ceil(RANGE_BYTES));
        let too_many = Ranges {
            per_range: 1,
            record_count: u64::from(u32::MAX) + 1,
        };
        assert_eq!(too_many.count().unwrap_err().code(), "invalid_response");
    }
}
