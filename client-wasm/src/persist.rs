//! What the browser keeps of each unfinished upload, so it can resume after a reload or
//! a crash of the browser: one record in IndexedDB (database `sealdrop`, see
//! [`crate::idb`]), written before the upload is created on the server and deleted when
//! it is done, cancelled or discarded.
//!
//! The record holds: the endpoint; the session (file id, owner token, plan) once the
//! server opened it; the idempotency key that finds the same session again if the
//! create's answer was lost; the header and the sealed metadata; the name and type (for
//! the list of unfinished uploads: this never leaves the browser); the [`FileFacts`]
//! that recognise the file; the `FileSystemFileHandle` it was opened from, when there
//! is one (so a resume needs no re-picking); and the file key, **wrapped**: sealed with
//! AES-256-GCM under a non-extractable `CryptoKey` that is itself kept in IndexedDB,
//! so the key's bytes are never stored in the clear and no script can export the
//! wrapping key (it can only use it, on this origin). The tag fingerprint of every part
//! is kept beside the record, written (durably) before the part is first sent.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use js_sys::{Array, Object, Reflect, Uint8Array};
use sealdrop_protocol::fingerprint::{FileFacts, PartFingerprint};
use sealdrop_protocol::format::FileKey;
use sealdrop_protocol::ids::{FileId, IdempotencyKey, OwnerToken};
use sealdrop_protocol::plan::PartPlan;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, AesKeyGenParams, CryptoKey};

use crate::error::ClientError;
use crate::idb::{self, Db};
use crate::platform;

/// Version of [`Saved`]'s shape; a record of another version is listed but not resumed.
const RECORD_VERSION: u32 = 1;
/// The key of the wrapping key in the `keys` store.
const WRAP_KEY_ID: &str = "upload-key-wrap/v1";

/// One unfinished upload, as IndexedDB keeps it (the `record` field, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Saved {
    pub version: u32,
    /// The local id: 128 random bits, base64url; the key of the record.
    pub id: String,
    /// When the upload began (ms since epoch).
    pub created_at: u64,
    pub endpoint: String,
    /// Sent with the create, so that a create retried after a reload or a crash (its
    /// answer lost) finds the same session instead of leaving an orphan.
    pub idempotency_key: IdempotencyKey,
    /// The file it was made from.
    pub file: FileFacts,
    /// The name and type sealed into the metadata.
    pub name: String,
    pub mime: String,
    /// The header and the sealed metadata, standard base64.
    pub header: String,
    pub metadata: String,
    /// The preferred part size it was created with.
    pub part_size: Option<u64>,
    /// The file key sealed under the wrapping key: base64 of `iv (12) || sealed (48)`.
    pub wrapped_key: String,
    /// The server's session, once it answered the create.
    pub session: Option<SavedSession>,
}

/// The server's session of a [`Saved`] upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SavedSession {
    pub file_id: FileId,
    pub owner_token: OwnerToken,
    pub plan: PartPlan,
}

/// A saved upload and the file handle kept with it, as `pending()` lists them.
pub(crate) struct Entry {
    pub saved: Saved,
    /// A `FileSystemFileHandle`, or `undefined`.
    pub handle: JsValue,
}

/// 128 random bits, base64url: a local id.
pub(crate) fn random_id() -> Result<String, ClientError> {
    let mut bytes = [0u8; 16];
    platform::random_bytes(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The record of one upload in IndexedDB, while it lasts.
#[derive(Clone)]
pub(crate) struct Store {
    db: Db,
    id: String,
    handle: JsValue,
}

impl Store {
    /// Opens the database.
    pub(crate) async fn open(id: String, handle: JsValue) -> Result<Self, ClientError> {
        Ok(Self {
            db: Db::open().await?,
            id,
            handle,
        })
    }

    /// Writes `saved` (and the handle) as the record, durably.
    pub(crate) async fn save(&self, saved: &Saved) -> Result<(), ClientError> {
        let json = serde_json::to_string(saved)
            .map_err(|e| ClientError::PersistFailed(format!("JSON: {e}")))?;
        let value = Object::new();
        set(&value, "id", &JsValue::from_str(&self.id));
        set(&value, "record", &JsValue::from_str(&json));
        if !self.handle.is_undefined() && !self.handle.is_null() {
            set(&value, "handle", &self.handle);
        }
        self.db.put(idb::UPLOADS, &value, None, true).await
    }

    /// Keeps part `part`'s fingerprint, durably: it must be on disk before the part is
    /// first sent.
    pub(crate) async fn save_fingerprint(
        &self,
        part: u32,
        fingerprint: PartFingerprint,
    ) -> Result<(), ClientError> {
        let value = Object::new();
        set(&value, "part", &JsValue::from(part));
        set(&value, "fingerprint", &Uint8Array::from(&fingerprint.0[..]));
        self.db
            .put(
                idb::PARTS,
                &value,
                Some(&idb::part_key(&self.id, part)),
                true,
            )
            .await
    }

    /// Every fingerprint kept for this upload.
    pub(crate) async fn fingerprints(&self) -> Result<Vec<(u32, PartFingerprint)>, ClientError> {
        let all = self
            .db
            .get_all(idb::PARTS, Some(&idb::parts_of(&self.id)?))
            .await?;
        let mut out = Vec::with_capacity(all.length() as usize);
        for value in all.iter() {
            let part = Reflect::get(&value, &"part".into())
                .ok()
                .and_then(|p| p.as_f64());
            let bytes = Reflect::get(&value, &"fingerprint".into())
                .ok()
                .and_then(|b| b.dyn_into::<Uint8Array>().ok())
                .map(|b| b.to_vec());
            match (part, bytes.and_then(|b| <[u8; 32]>::try_from(b).ok())) {
                (Some(part), Some(bytes))
                    if part.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&part) =>
                {
                    out.push((part as u32, PartFingerprint(bytes)));
                }
                _ => {
                    return Err(ClientError::PersistFailed(
                        "a saved part fingerprint is damaged".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Deletes the record and its fingerprints.
    pub(crate) async fn forget(&self) -> Result<(), ClientError> {
        let parts: JsValue = idb::parts_of(&self.id)?.into();
        self.db
            .delete(&[
                (idb::UPLOADS, &JsValue::from_str(&self.id)),
                (idb::PARTS, &parts),
            ])
            .await
    }

    /// Loads the saved upload `id`.
    pub(crate) async fn load(id: &str) -> Result<(Store, Entry), ClientError> {
        let db = Db::open().await?;
        let value = db.get(idb::UPLOADS, &JsValue::from_str(id)).await?;
        if value.is_undefined() {
            return Err(ClientError::InvalidOption(format!(
                "there is no unfinished upload {id:?} in this browser"
            )));
        }
        let entry = entry(&value)?;
        if entry.saved.version != RECORD_VERSION {
            return Err(ClientError::PersistFailed(format!(
                "the upload was saved by another client version ({})",
                entry.saved.version
            )));
        }
        let store = Store {
            db,
            id: id.to_owned(),
            handle: entry.handle.clone(),
        };
        Ok((store, entry))
    }
}

/// Every unfinished upload this origin keeps, oldest first.
pub(crate) async fn pending() -> Result<Vec<Entry>, ClientError> {
    let db = Db::open().await?;
    let all = db.get_all(idb::UPLOADS, None).await?;
    let mut entries: Vec<Entry> = all.iter().filter_map(|v| entry(&v).ok()).collect();
    entries.sort_by_key(|e| e.saved.created_at);
    Ok(entries)
}

fn entry(value: &JsValue) -> Result<Entry, ClientError> {
    let damaged = || ClientError::PersistFailed("a saved upload is damaged".into());
    let json = Reflect::get(value, &"record".into())
        .ok()
        .and_then(|r| r.as_string())
        .ok_or_else(damaged)?;
    let saved: Saved = serde_json::from_str(&json).map_err(|_| damaged())?;
    let handle = Reflect::get(value, &"handle".into()).unwrap_or(JsValue::UNDEFINED);
    Ok(Entry { saved, handle })
}

impl Saved {
    /// A fresh record (without a session yet), the file key wrapped for `id`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn new(
        id: String,
        endpoint: String,
        file: FileFacts,
        name: String,
        mime: String,
        header: &[u8],
        metadata: &[u8],
        part_size: Option<u64>,
        key: &FileKey,
        idempotency_key: IdempotencyKey,
    ) -> Result<Self, ClientError> {
        let wrapped_key = STANDARD.encode(wrap(UPLOAD_KEY, &id, key).await?);
        Ok(Self {
            version: RECORD_VERSION,
            created_at: platform::now_ms(),
            idempotency_key,
            id,
            endpoint,
            file,
            name,
            mime,
            header: STANDARD.encode(header),
            metadata: STANDARD.encode(metadata),
            part_size,
            wrapped_key,
            session: None,
        })
    }

    /// The file key, unwrapped.
    pub(crate) async fn key(&self) -> Result<FileKey, ClientError> {
        let wrapped = STANDARD
            .decode(&self.wrapped_key)
            .map_err(|_| ClientError::PersistFailed("the saved key is damaged".into()))?;
        unwrap(UPLOAD_KEY, &self.id, &wrapped).await
    }
}

// ---------------------------------------------------------------------------------
// The wrapping key
// ---------------------------------------------------------------------------------

/// The origin's wrapping key: AES-256-GCM, non-extractable, made on first use. Two tabs
/// making it at once both `add` it; the one that loses reads the winner's.
async fn wrapping_key() -> Result<CryptoKey, ClientError> {
    let db = Db::open().await?;
    let id = JsValue::from_str(WRAP_KEY_ID);
    let existing = db.get(idb::KEYS, &id).await?;
    if let Ok(key) = existing.dyn_into::<CryptoKey>() {
        return Ok(key);
    }
    let subtle = platform::subtle()?;
    let params = AesKeyGenParams::new("AES-GCM", 256);
    let usages: Array = ["encrypt", "decrypt"]
        .into_iter()
        .map(JsValue::from_str)
        .collect();
    let made = subtle
        .generate_key_with_object(&params, false, &usages)
        .map_err(crypto_failed)?;
    let key: CryptoKey = JsFuture::from(made)
        .await
        .map_err(crypto_failed)?
        .dyn_into()
        .map_err(|_| ClientError::PersistFailed("generateKey gave no CryptoKey".into()))?;
    if db.add(idb::KEYS, &key, &id).await? {
        return Ok(key);
    }
    db.get(idb::KEYS, &id)
        .await?
        .dyn_into()
        .map_err(|_| ClientError::PersistFailed("the wrapping key is damaged".into()))
}

/// What a wrapped key is for, bound into its AAD: an upload's (`persist`) or a kept
/// download's (`crate::kept`).
pub(crate) const UPLOAD_KEY: &str = "upload-key";

/// The associated data binding a wrapped key to its record and purpose: a key copied
/// into another record, or from an upload's record to a download's, does not unwrap.
fn wrap_params(purpose: &str, id: &str, iv: &[u8]) -> AesGcmParams {
    let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(iv));
    let aad = format!("sealdrop/{purpose}/v1/{id}");
    params.set_additional_data(&Uint8Array::from(aad.as_bytes()));
    params
}

/// `iv || AES-GCM(wrapping key, iv, key, aad = the purpose and the record's id)`.
pub(crate) async fn wrap(purpose: &str, id: &str, key: &FileKey) -> Result<Vec<u8>, ClientError> {
    let wrapping = wrapping_key().await?;
    let mut iv = [0u8; 12];
    platform::random_bytes(&mut iv)?;
    let sealed = platform::subtle()?
        .encrypt_with_object_and_u8_array(&wrap_params(purpose, id, &iv), &wrapping, key.as_bytes())
        .map_err(crypto_failed)?;
    let sealed = JsFuture::from(sealed).await.map_err(crypto_failed)?;
    let mut out = iv.to_vec();
    out.extend(Uint8Array::new(&sealed).to_vec());
    Ok(out)
}

pub(crate) async fn unwrap(
    purpose: &str,
    id: &str,
    wrapped: &[u8],
) -> Result<FileKey, ClientError> {
    let damaged = || ClientError::PersistFailed("the saved key does not unwrap".into());
    let (iv, sealed) = wrapped.split_at_checked(12).ok_or_else(damaged)?;
    let wrapping = wrapping_key().await?;
    let opened = platform::subtle()?
        .decrypt_with_object_and_u8_array(&wrap_params(purpose, id, iv), &wrapping, sealed)
        .map_err(crypto_failed)?;
    let opened = JsFuture::from(opened).await.map_err(|_| damaged())?;
    let bytes: [u8; 32] = Uint8Array::new(&opened)
        .to_vec()
        .try_into()
        .map_err(|_| damaged())?;
    Ok(FileKey::from_bytes(bytes))
}

fn crypto_failed(e: JsValue) -> ClientError {
    ClientError::PersistFailed(format!("WebCrypto: {}", platform::describe(&e)))
}

pub(crate) fn set(object: &Object, key: &str, value: &JsValue) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}
