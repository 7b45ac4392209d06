//! Random access to a shared file's plaintext: `openFile(link)` opens a download on the
//! share once, then `read(start, end)` fetches and opens only the records that hold
//! those bytes. The service worker (web/sw.js) answers `Range` requests of
//! `/preview/<id>` with it, so a browser's own viewer can open an image, a PDF or a
//! multi-gigabyte video and seek in it without the file being downloaded.
//!
//! Only types a browser renders without running the file's content are previewed
//! ([`previewable`]): never HTML, SVG or XML, which would run script at the page's
//! origin.

use std::rc::Rc;

use js_sys::{Array, Promise, Uint8Array};
use sealdrop_protocol::format::FileMetadata;
use sealdrop_protocol::records::{plaintext_span, records_holding};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::download::{Opener, Source};
use crate::error::ClientError;
use crate::interop;
use crate::link;
use crate::shares::Unlock;
use crate::stall::DEFAULT_STALL_MS;
use crate::transfer::retrying;

/// The most plaintext one `read` answers: a longer request is answered short (a `206`
/// may be), so a viewer asking for `bytes=0-` gets a first piece, not the whole file.
pub(crate) const MAX_READ: u64 = 8 * 1024 * 1024;

/// Whether a file of type `mime` may be shown in the browser's own viewer: images
/// (not SVG), PDF, audio and video. Parameters (`; charset=...`) are ignored.
#[wasm_bindgen]
pub fn previewable(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').unwrap_or((&essence, ""));
    if subtype.is_empty() || subtype.contains("svg") || subtype.contains("xml") {
        return false;
    }
    matches!(kind, "image" | "audio" | "video") || essence == "application/pdf"
}

/// A shared file opened for random access: see the module documentation.
#[wasm_bindgen]
pub struct SealedFile {
    inner: Rc<Inner>,
}

struct Inner {
    source: Source,
    opener: Opener,
    metadata: FileMetadata,
}

/// Opens the file a link names for [`SealedFile::read`]s: a download on its share (closed
/// by `close()`, or counted when its lease lapses), its header, key and metadata checked.
/// A `#p1.` link opens with `options.password`: a receive page learns the name and size
/// (to offer a place to save it) before the download that counts.
#[wasm_bindgen(js_name = openFile, unchecked_return_type = "Promise<SealedFile>")]
pub fn open_file(
    link: String,
    #[wasm_bindgen(unchecked_optional_param_type = "OpenFileOptions")] options: JsValue,
) -> Promise {
    future_to_promise(async move {
        let opened = async {
            let password = interop::open_file_password(&options)?;
            let link = link::parse(&link)?;
            let unlock = Unlock::new(&link, password.as_deref())?;
            let source = Source::new(&link, DEFAULT_STALL_MS, &unlock)?;
            let (opener, metadata, _) = source.open_file(&unlock, &link.token).await?;
            Ok::<_, ClientError>(Inner {
                source,
                opener,
                metadata,
            })
        };
        match opened.await {
            Ok(inner) => Ok(SealedFile {
                inner: Rc::new(inner),
            }
            .into()),
            Err(e) => Err(interop::error(&e)),
        }
    })
}

#[wasm_bindgen]
impl SealedFile {
    /// The sealed name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.metadata.name.clone()
    }

    /// The sealed type.
    #[wasm_bindgen(getter, js_name = type)]
    pub fn mime(&self) -> String {
        self.inner.metadata.mime.clone()
    }

    /// Plaintext bytes.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> f64 {
        self.inner.opener.layout.plaintext_size() as f64
    }

    /// Plaintext bytes `start..end` (end exclusive, clipped to the file and to 8 MiB from
    /// `start`), fetched and opened record by record: only the records that hold them
    /// are fetched. Rejects like `download` (`record_auth_failed` with `.record`, ...).
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn read(&self, start: f64, end: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner
                .read(start as u64, end as u64)
                .await
                .map(JsValue::from)
                .map_err(|e| interop::error(&e))
        })
    }

    /// Abandons the download on the share (it does not count). Best effort.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let _ = inner.source.close(false).await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

impl Inner {
    async fn read(&self, start: u64, end: u64) -> Result<Uint8Array, ClientError> {
        let layout = &self.opener.layout;
        let size = layout.plaintext_size();
        let end = end.min(size).min(start.saturating_add(MAX_READ));
        if start >= end {
            return Ok(Uint8Array::new_with_length(0));
        }
        let records = records_holding(layout, start..end);
        let first = plaintext_span(layout, &records).map_or(start, |span| span.start);
        let pieces: Array = retrying(self.source.backoff, || {
            self.source
                .attempt_range(&self.opener, records.clone(), None)
        })
        .await?;
        let out = Uint8Array::new_with_length((end - start) as u32);
        let mut at = first;
        for piece in pieces {
            let piece: Uint8Array = piece.unchecked_into();
            let len = u64::from(piece.length());
            // The part of this record inside start..end.
            let (from, to) = (start.max(at), end.min(at + len));
            if from < to {
                let part = piece.subarray((from - at) as u32, (to - at) as u32);
                out.set(&part, (from - start) as u32);
            }
            at += len;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_types_are_previewable() {
        for safe in [
            "image/png",
            "image/jpeg",
            "IMAGE/WEBP",
            "video/mp4",
            "video/webm; codecs=vp9",
            "audio/mpeg",
            "application/pdf",
        ] {
            assert!(previewable(safe), "{safe}");
        }
        for unsafe_ in [
            "",
            "text/html",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "image/",
            "image",
            "application/octet-stream",
            "text/plain",
            "application/javascript",
        ] {
            assert!(!previewable(unsafe_), "{unsafe_}");
        }
    }
}
