//! Sealing a part straight from the file: read its plaintext a slice at a time
//! (`Blob.slice`), seal its records through the file's [`FileCipher`] (WebCrypto where
//! the scope has it), and hand back the sealed records as one `Blob` with the part's tag
//! fingerprint. [`seal_records`] is the work itself; it runs in a cipher worker
//! ([`crate::offload`]) where the transfer has one, else in the page.
//!
//! Memory: one read of at most [`READ_BYTES`] of plaintext while a part is sealed, and
//! the part's sealed records as JS arrays; never the whole file. Both are buffers the
//! browser made, which only a full collection would free: each is
//! [released](crate::release) as soon as it is spent (a read once its records are
//! sealed, the records once the part's `Blob` has copied them). The records of one read
//! are sealed side by side (WebCrypto runs them off the wasm thread). A part sealed again
//! (a retry, a resume) is read and sealed again rather than kept while it waits: sealing
//! is deterministic, and the fingerprint proves it ([`sealdrop_protocol::fingerprint`]).

use std::ops::Range;
use std::rc::Rc;

use futures_util::future::join_all;
use futures_util::lock::Mutex;
use js_sys::{Array, ArrayBuffer, Uint8Array};
use sealdrop_protocol::fingerprint::{PartFingerprint, TagDigest};
use sealdrop_protocol::format::{Layout, RecordPosition, TAG_LEN};
use sealdrop_protocol::plan::PartPlan;
use sealdrop_protocol::records::{plaintext_span, records_in, runs};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use crate::cipher::FileCipher;
use crate::error::ClientError;
use crate::offload::Pool;
use crate::platform;
use crate::release::release;

/// Plaintext read from the file per `Blob.slice(...).arrayBuffer()` (whole records,
/// at least one).
pub(crate) const READ_BYTES: u64 = 4 * 1024 * 1024;

/// Everything needed to seal any part of one file, in any order.
pub(crate) struct Sealer {
    /// In this page, one part seals at a time, in the order parts start: the first
    /// part's `PUT` begins as soon as it alone is sealed, while the next one seals,
    /// instead of every part in flight sealing side by side and all finishing together.
    /// (With cipher workers each worker is such a queue.)
    turn: Mutex<()>,
    file: Blob,
    cipher: Rc<FileCipher>,
    layout: Layout,
    plan: PartPlan,
}

impl Sealer {
    pub(crate) fn new(file: Blob, cipher: Rc<FileCipher>, layout: Layout, plan: PartPlan) -> Self {
        Self {
            turn: Mutex::new(()),
            file,
            cipher,
            layout,
            plan,
        }
    }

    /// The file cipher every part is sealed with.
    pub(crate) fn cipher(&self) -> &FileCipher {
        &self.cipher
    }

    /// Seals part `part` ([`seal_records`]) in one of `pool`'s workers, or in this page
    /// without one, and returns the sealed `Blob` with the part's fingerprint, which the
    /// caller checks before the bytes leave the page.
    pub(crate) async fn seal_part(
        &self,
        part: u32,
        pool: Option<&Pool>,
    ) -> Result<(Blob, PartFingerprint), ClientError> {
        let records = self.plan.records_of_part(part).ok_or_else(|| {
            ClientError::InvalidResponse(format!("part {part} is not in the plan"))
        })?;
        let (body, tags) = match pool {
            Some(pool) => {
                let size = self.layout.plaintext_size();
                pool.seal(&self.cipher, &self.file, size, records).await?
            }
            None => {
                let _turn = self.turn.lock().await;
                seal_records(&self.cipher, &self.file, &self.layout, records).await?
            }
        };
        Ok((body, fingerprint(&tags)))
    }
}

/// Reads records `records`' plaintext from `file` in slices of at most
/// [`READ_BYTES`], seals them (global indexes; the file's last record flagged last),
/// and returns them as one `Blob` (`new Blob([records...])`, the body shape Chromium
/// uploads fastest) with their tags, [`TAG_LEN`] bytes each, in order. Runs in the
/// page or in a cipher worker ([`crate::worker`]) alike.
pub(crate) async fn seal_records(
    cipher: &FileCipher,
    file: &Blob,
    layout: &Layout,
    records: Range<u64>,
) -> Result<(Blob, Vec<u8>), ClientError> {
    let record_bytes = u64::from(layout.record_size());
    let pieces = Array::new();
    let mut tags = Vec::new();
    for read in runs(records, records_in(READ_BYTES, record_bytes)) {
        let span = plaintext_of(layout, &read)?;
        let bytes = read_slice(file, span.clone()).await?;
        let sealed =
            join_all(read.map(|index| seal_record(cipher, layout, index, span.start, &bytes)))
                .await;
        // WebCrypto took its own copy of each record's plaintext when it was called.
        release(&bytes.buffer());
        // In record order, so the first failing record is the one reported.
        for record in sealed {
            let record = record?;
            let mut tag = [0u8; TAG_LEN];
            record
                .subarray(record.length() - TAG_LEN as u32, record.length())
                .copy_to(&mut tag);
            tags.extend_from_slice(&tag);
            pieces.push(&record);
        }
    }
    let body = Blob::new_with_u8_array_sequence(&pieces)
        .map_err(|e| ClientError::Unsupported(format!("Blob: {}", platform::describe(&e))))?;
    // The Blob holds its own copy: WebCrypto's outputs are spent.
    for record in pieces {
        release(&record.unchecked_into::<Uint8Array>().buffer());
    }
    Ok((body, tags))
}

/// The fingerprint of a part whose records' tags are `tags`, in order.
fn fingerprint(tags: &[u8]) -> PartFingerprint {
    let mut digest = TagDigest::default();
    for tag in tags.chunks(TAG_LEN) {
        digest.push(tag);
    }
    digest.finish()
}

/// Seals record `index`, whose plaintext is in `read` (the file's bytes from
/// `read_start` on).
async fn seal_record(
    cipher: &FileCipher,
    layout: &Layout,
    index: u64,
    read_start: u64,
    read: &Uint8Array,
) -> Result<Uint8Array, ClientError> {
    let range = plaintext_of(layout, &(index..index + 1))?;
    let (start, end) = (range.start - read_start, range.end - read_start);
    if end > u64::from(read.length()) {
        return Err(ClientError::ReadFailed(
            "the file is shorter than when the upload began".into(),
        ));
    }
    let plaintext = read.subarray(offset_u32(start)?, offset_u32(end)?);
    let position = RecordPosition::new(index, layout.is_last(index));
    cipher.seal(position, &plaintext).await
}

fn plaintext_of(layout: &Layout, records: &Range<u64>) -> Result<Range<u64>, ClientError> {
    plaintext_span(layout, records)
        .ok_or_else(|| ClientError::InvalidResponse("the plan names records past the file".into()))
}

/// Reads bytes `range` of `file` (`Blob.slice(...).arrayBuffer()`).
pub(crate) async fn read_slice(file: &Blob, range: Range<u64>) -> Result<Uint8Array, ClientError> {
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
