//! Downloads to a file on disk that this browser keeps until they complete, so a page
//! reloaded (or a browser restarted) can list them and resume: one record per download
//! in IndexedDB's `downloads` store ([`crate::idb`]), written before the first record is
//! fetched and deleted once the last one verified.
//!
//! The record holds the share link without its key (`<endpoint>/s/<token>`), the key
//! **wrapped** under the origin's non-extractable wrapping key exactly as an unfinished
//! upload's is ([`crate::persist`]), the name, type and size (for the list), and the
//! `FileSystemFileHandle`. What was downloaded is not recorded: the file itself holds
//! it ([`crate::sink`]: whole verified records, in order), so there is nothing to keep in
//! step. Downloading the same share to the same file again finds the same record.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use js_sys::{Object, Promise, Reflect};
use sealdrop_protocol::format::{FileKey, FileMetadata, encode_fragment};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::ClientError;
use crate::idb::{self, Db};
use crate::persist::{self, random_id, set};
use crate::platform;
use crate::sink::FileHandle;

/// Version of [`SavedDownload`]'s shape.
const RECORD_VERSION: u32 = 1;
/// The purpose bound into a kept download's wrapped key.
const DOWNLOAD_KEY: &str = "download-key";

#[wasm_bindgen]
extern "C" {
    /// `FileSystemHandle.isSameEntry` (web-sys has it behind its unstable-API flag).
    #[wasm_bindgen(method, catch, js_name = isSameEntry)]
    fn is_same_entry(this: &FileHandle, other: &JsValue) -> Result<Promise, JsValue>;
}

/// One kept download (the `record` field, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SavedDownload {
    pub version: u32,
    /// 128 random bits, base64url; the key of the record.
    pub id: String,
    /// When the download began (ms since epoch).
    pub created_at: u64,
    /// The link without its key: `<endpoint>/s/<token>`.
    pub share: String,
    pub name: String,
    pub mime: String,
    /// Plaintext bytes.
    pub size: u64,
    /// The file key sealed under the wrapping key: base64 of `iv (12) || sealed (48)`.
    pub wrapped_key: String,
}

/// A kept download and its file handle, as `pendingDownloads()` lists them.
pub(crate) struct KeptDownload {
    pub saved: SavedDownload,
    pub handle: JsValue,
}

impl KeptDownload {
    /// The whole link again, the key unwrapped into its fragment.
    pub(crate) async fn link(&self) -> Result<String, ClientError> {
        let wrapped = STANDARD
            .decode(&self.saved.wrapped_key)
            .map_err(|_| ClientError::PersistFailed("the saved key is damaged".into()))?;
        let key = persist::unwrap(DOWNLOAD_KEY, &self.saved.id, &wrapped).await?;
        Ok(format!("{}#{}", self.saved.share, encode_fragment(&key)))
    }
}

/// Keeps the download of `share` into `handle`; answers its id and whether it was kept
/// already (the same share to the same file: a resume, so what the file holds is this
/// download's; a file that is not is started from its first byte).
pub(crate) async fn keep(
    share: &str,
    key: &FileKey,
    metadata: &FileMetadata,
    size: u64,
    handle: &FileHandle,
) -> Result<(String, bool), ClientError> {
    for kept in pending().await? {
        if kept.saved.share == share && same_entry(handle, &kept.handle).await {
            return Ok((kept.saved.id, true));
        }
    }
    let id = random_id()?;
    let saved = SavedDownload {
        version: RECORD_VERSION,
        wrapped_key: STANDARD.encode(persist::wrap(DOWNLOAD_KEY, &id, key).await?),
        id: id.clone(),
        created_at: platform::now_ms(),
        share: share.to_owned(),
        name: metadata.name.clone(),
        mime: metadata.mime.clone(),
        size,
    };
    let json = serde_json::to_string(&saved)
        .map_err(|e| ClientError::PersistFailed(format!("JSON: {e}")))?;
    let value = Object::new();
    set(&value, "id", &JsValue::from_str(&id));
    set(&value, "record", &JsValue::from_str(&json));
    set(&value, "handle", handle);
    Db::open()
        .await?
        .put(idb::DOWNLOADS, &value, None, true)
        .await?;
    Ok((id, false))
}

/// Forgets the kept download `id` (done, or given up by the page).
pub(crate) async fn forget(id: &str) -> Result<(), ClientError> {
    Db::open()
        .await?
        .delete(&[(idb::DOWNLOADS, &JsValue::from_str(id))])
        .await
}

/// Every kept download of this origin, oldest first (damaged or older records are
/// skipped).
pub(crate) async fn pending() -> Result<Vec<KeptDownload>, ClientError> {
    let all = Db::open().await?.get_all(idb::DOWNLOADS, None).await?;
    let mut kept: Vec<KeptDownload> = all.iter().filter_map(|v| entry(&v)).collect();
    kept.sort_by_key(|k| k.saved.created_at);
    Ok(kept)
}

fn entry(value: &JsValue) -> Option<KeptDownload> {
    let json = Reflect::get(value, &"record".into()).ok()?.as_string()?;
    let saved: SavedDownload = serde_json::from_str(&json).ok()?;
    let handle = Reflect::get(value, &"handle".into()).ok()?;
    (saved.version == RECORD_VERSION).then_some(KeptDownload { saved, handle })
}

async fn same_entry(handle: &FileHandle, other: &JsValue) -> bool {
    let Ok(promise) = handle.is_same_entry(other) else {
        return false;
    };
    JsFuture::from(promise)
        .await
        .ok()
        .and_then(|same| same.as_bool())
        .unwrap_or(false)
}
