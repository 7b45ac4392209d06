//! Every conversion between JS values and this crate's Rust types, in one place: the
//! TypeScript types of the option bags, events and results; reading and checking the
//! option bags; building result and progress objects; and turning errors into JS
//! `Error`s with a stable `.code`. Nothing outside this module (and the thin exports
//! in `lib.rs`) touches an untyped `JsValue`.

use js_sys::{Array, Function, Object, Reflect};
use sealdrop_protocol::concurrency::CONNECTIONS_PER_HOST;
use sealdrop_protocol::format::{FileMetadata, MAX_RECORD_SIZE, MIN_RECORD_SIZE};
use sealdrop_protocol::ids::ShareToken;
use sealdrop_protocol::share::{PublicShare, ShareView, UpdateShareRequest};
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob, File, WritableStream};

#[cfg(feature = "conformance")]
use crate::conformance::VectorError;
use crate::download::{DownloadRequest, Downloaded};
use crate::error::ClientError;
use crate::kept::KeptDownload;
use crate::link;
use crate::offload::{DEFAULT_WORKERS, MAX_WORKERS};
use crate::persist::Entry;
use crate::platform;
use crate::progress::Snapshot;
use crate::room_upload::RoomTie;
use crate::shares::{FileRef, NewShare};
use crate::sink::{FileHandle, SinkChoice};
use crate::stall::DEFAULT_STALL_MS;
use crate::thumbnail;
use crate::upload::{Source, UploadConfig, UploadRequest, Uploaded};

/// Largest `concurrency`. Chromium opens at most 6 connections per host over
/// HTTP/1.1; more helps over HTTP/2 and with presigned URLs on another host.
pub(crate) const MAX_CONCURRENCY: u32 = 16;
/// Largest `maxAttempts`.
pub(crate) const MAX_ATTEMPTS: u32 = 100;
/// Largest `stallTimeoutMs`: one hour.
pub(crate) const MAX_STALL_MS: u64 = 3_600_000;
/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** Options of `new Uploader(options)`. */
export interface UploaderOptions {
  /** Base URL of the sealdrop API (and of the links); default `location.origin`. */
  endpoint?: string;
  /**
   * The most parts uploaded at once, 1 to 16; default 6 (Chromium's connections per
   * host over HTTP/1.1). The number in flight adapts below it: it starts at 2, grows
   * while measured throughput grows, and halves on failures and stalls (docs/API.md,
   * "Adaptive concurrency and part size"); `onProgress` shows it as `concurrency`.
   */
  concurrency?: number;
  /**
   * Preferred part size in ciphertext bytes. The server rounds it down to whole
   * records and into the storage limits (5 MiB to 5 GiB, at most 10,000 parts).
   * Default: chosen from what earlier uploads in this browser measured (smaller after
   * failures, larger on a fast link, 16 MiB without a history); fixed for the upload.
   */
  partSize?: number;
  /** Plaintext bytes per sealed record, 16 to 16 MiB; default 1 MiB (1048576). */
  recordSize?: number;
  /**
   * Attempts per part and per API call, the first included; default 6. When they run
   * out the upload is paused with `upload.error` set, and `resume()` tries again.
   */
  maxAttempts?: number;
  /**
   * A request that makes no progress for this long (ms) is aborted and retried;
   * default 30000. Part uploads report progress as their bytes leave.
   */
  stallTimeoutMs?: number;
  /**
   * Keep each upload in this browser's IndexedDB so it can be resumed after a reload
   * or a crash (`Uploader.pending()`); default true. Where IndexedDB or WebCrypto is
   * missing, uploads run without it (`upload.resumable` is false).
   */
  persist?: boolean;
  /**
   * Dedicated Web Workers that read and seal the parts, 0 to 8; default 2. They keep
   * the page's main thread free during large uploads. 0, or a context without
   * `Worker`, or a worker script that cannot load, seals in the page instead. The
   * worker script is `sealdrop_worker.js` beside `sealdrop_client.js` (see the
   * package README for bundlers and Trusted Types).
   */
  workers?: number;
}

/** What `upload.state` says. */
export type UploadState =
  "starting" | "uploading" | "paused" | "completing" | "done" | "failed" | "cancelled";

/** Called whenever `upload.state` changes, with `upload.error` (or null). */
export type StateChangeCallback = (state: UploadState, error: SealdropError | null) => void;

/** A progress event, in plaintext bytes. `bytesDone` never decreases. */
export interface TransferProgress {
  bytesDone: number;
  bytesTotal: number;
  /** Bytes per second over the last few seconds; 0 while unknown or stalled. */
  speed: number;
  /** Seconds left at the current speed; `null` while unknown. */
  eta: number | null;
  /** Parts (downloads: ranges) done, and in all. */
  partsDone: number;
  partsTotal: number;
  /**
   * Parts (ranges) allowed in flight now: the adaptive limit, between 1 and the
   * `concurrency` option (docs/API.md, "Adaptive concurrency and part size"). A report
   * is made whenever it changes.
   */
  concurrency: number;
  /** Ciphertext bytes of every part (range) but the last. */
  partSize: number;
  /**
   * Which AES-256-GCM seals or opens the file's records: `"webcrypto"`
   * (`crypto.subtle`), or `"aes-gcm"` (software AES in wasm) where the page has no
   * `crypto.subtle` (an insecure origin).
   */
  cipherBackend: CipherBackend;
  /**
   * How many dedicated Web Workers seal or open the records (option `workers`), or 0
   * where the page does it itself (`workers: 0`, no `Worker`, the aes-gcm backend, or
   * a worker that could not start).
   */
  cipherWorkers: number;
}

/** The AES-256-GCM implementation a transfer uses (also `cipherBackend()`). */
export type CipherBackend = "webcrypto" | "aes-gcm";

/** Called at the start, after each part, about once a second, and once at 100%. */
export type ProgressCallback = (progress: TransferProgress) => void;

/** Options of `uploader.upload(file, options)`. */
export interface UploadOptions {
  onProgress?: ProgressCallback;
  onStateChange?: StateChangeCallback;
  /** Aborting it is `upload.cancel()`: the upload rejects with code `cancelled`. */
  signal?: AbortSignal;
  /** The file name sealed into the metadata; default `file.name` (a `Blob`: ""). */
  name?: string;
  /** The MIME type sealed into the metadata; default `file.type`. */
  type?: string;
  /**
   * The `FileSystemFileHandle` the file came from (`showOpenFilePicker`): kept with
   * the upload, so a resume after a reload reads the file through it, without asking
   * the person to pick it again (the page needs read permission then).
   */
  handle?: FileSystemFileHandle;
  /**
   * A connected `RoomClient`: the upload goes into its room (docs/PROTOCOL.md, "Files
   * in a room"). It is created with the room's JWT, members see its name, type, key
   * and `path` sealed under the room key, its progress, pauses and resumes are
   * reported to the room, and the uploader's other devices can pause, resume or
   * cancel it there (this upload obeys). A room upload is not kept for a resume after
   * a reload (`upload.resumable` is false).
   */
  room?: RoomClient;
  /** With `room`: the file's path inside a dropped folder, sealed (`sealedPath`). */
  path?: string;
  /** With `room`: the room folder (`createFolder`'s `fileId`) the file goes into. */
  parentId?: string;
  /**
   * A small preview of the file (at most 65,536 bytes: e.g. a WebP or JPEG of at most
   * 256 px a side, made from an image or a video's first frame). It is sealed here with
   * a key derived from the file key (docs/FORMAT.md §10) and stored beside the file;
   * room members see it through `room.thumbnail(fileId, key)`.
   */
  thumbnail?: Blob;
}

/** Options of `uploader.resume(pending, options)`. */
export interface ResumeOptions {
  /** The file, picked again; default: read through the upload's saved handle. */
  file?: Blob;
  onProgress?: ProgressCallback;
  onStateChange?: StateChangeCallback;
  signal?: AbortSignal;
}

/** An unfinished upload this browser kept (`Uploader.pending()`). */
export interface PendingUpload {
  /** Its local id (also `upload.id`). */
  id: string;
  /** The name and type sealed into its metadata, and the file's size. */
  name: string;
  type: string;
  size: number;
  /** When it began (ms since the epoch). */
  createdAt: number;
  /** Where it is being uploaded. */
  endpoint: string;
  /** The file id, once the server opened the upload; null before. */
  fileId: string | null;
  /** The handle the file was opened from, if any: resume without picking it again. */
  handle: FileSystemFileHandle | null;
}

/**
 * An unfinished download to a file this browser kept (`pendingDownloads()`): resume it
 * with `download(pending.link, { fileHandle: pending.handle })`.
 */
export interface PendingDownload {
  id: string;
  /** The name, type and size sealed in the file. */
  name: string;
  type: string;
  size: number;
  /** When it began (ms since the epoch). */
  createdAt: number;
  /** The share link, its key unwrapped from this browser's storage. */
  link: string;
  /** The file it is written to (ask for write permission again after a reload). */
  handle: FileSystemFileHandle;
}

/** What `upload` resolves to. */
export interface UploadResult {
  /** The file's public id. */
  fileId: string;
  /** `<endpoint>/s/<shareToken>#k1.<key>`: a link to the file's default share (no password, no limit, the file's lifetime); whoever has it can download and decrypt the file. */
  link: string;
  /** The owner token: proves ownership in `createShare`, `listShares`, `updateShare`, `revokeShare` and `deleteFile`. A secret, like the link. */
  ownerToken: string;
  /** Plaintext bytes. */
  size: number;
}

/** The file a share call is about: its id and a `k1.` link to it (an `UploadResult` is one). */
export interface FileRef {
  fileId: string;
  /** A link carrying the file key in the clear (`#k1.`): the endpoint and the key come from it. */
  link: string;
}

/** Options of `createShare`. */
export interface ShareOptions {
  /**
   * A password: the link then carries the key wrapped under it (`#p1.`, Argon2id in this
   * page, about 130 ms) and the server checks a verifier derived from it. Taken as typed
   * (normalized to NFC); not empty.
   */
  password?: string;
  /** Seconds until the share expires; default: with the file. */
  expiresIn?: number;
  /** Counted downloads it allows (1: one-time); default unlimited. */
  downloadLimit?: number;
}

/** What `updateShare` changes: either or both. */
export interface ShareChanges {
  /** A new expiry, in seconds from now (an expired share may be extended). */
  expiresIn?: number;
  /** A new limit; `null`: unlimited. */
  downloadLimit?: number | null;
}

/** One access record of a share: never an address. */
export interface ShareAccess {
  /** When (ms since the epoch). */
  at: number;
  /** `viewed`, `opened`, `completed`, `abandoned`, `lapsed`, or a refusal's code (`wrong_password`, `share_busy`, ...). */
  outcome: string;
  /** The country the platform placed the client in (ISO 3166), if known. */
  country: string | null;
  /** `chrome`, `firefox`, `safari`, `edge`, `opera`, `curl`, `node` or `other`; `null` for a lapse. */
  agent: string | null;
}

/** A share as its owner sees it (docs/API.md, Shares). */
export interface ShareInfo {
  token: string;
  createdAt: number;
  expiresAt: number | null;
  downloadLimit: number | null;
  password: boolean;
  state: "active" | "expired" | "exhausted" | "revoked";
  revokedAt: number | null;
  /** Counted downloads. */
  downloads: number;
  openDownloads: number;
  failedAttempts: number;
  /** Newest first, at most 200. */
  access: ShareAccess[];
}

/** What `shareStatus(link)` resolves to: what the receive page shows before a download. */
export interface ShareStatus {
  /** Whether a password is needed (the link is then a `#p1.` link). */
  password: boolean;
  /** When the share expires (ms since the epoch); `null`: never. */
  expiresAt: number | null;
  /** Downloads left; `null`: unlimited. */
  downloadsLeft: number | null;
}

/** What `createShare` resolves to: the share and its link (built in this page). */
export interface CreatedShare extends ShareInfo {
  /** `<endpoint>/s/<token>#k1.<key>`, or `#p1.<salt>.<wrapped key>` with a password. */
  link: string;
}

/** A file's size and its sealed name and type, known once its metadata has authenticated. */
export interface FileInfo {
  name: string;
  type: string;
  /** Plaintext bytes. */
  size: number;
}

/** Options of `download(link, options)`. */
export interface DownloadOptions {
  onProgress?: ProgressCallback;
  /**
   * Called once the key has opened the file's name and type, before any content is
   * fetched (to show what is coming).
   */
  onMetadata?: (file: FileInfo) => void;
  /**
   * The most ranged requests at once, 1 to 16; default 6. The number in flight adapts
   * below it, as for uploads.
   */
  concurrency?: number;
  /**
   * Dedicated Web Workers that open the records, 0 to 8; default 2 (0: in the page).
   * As `UploaderOptions.workers`.
   */
  workers?: number;
  /** A range that makes no progress for this long (ms) is aborted and retried; default 30000. */
  stallTimeoutMs?: number;
  /**
   * Aborting it stops the download and rejects with code `cancelled`. With a
   * `fileHandle` this is the pause: what was verified stays in the file, and calling
   * `download` again with the same handle resumes after it.
   */
  signal?: AbortSignal;
  /**
   * The password of a `#p1.` link (`linkNeedsPassword(link)`). Without it such a link
   * rejects with `password_required`; a wrong one with `wrong_password` (counted by the
   * share), and after too many with `too_many_attempts` (`retryAfter` seconds).
   */
  password?: string;
   * Write the file to disk through this handle (`showSaveFilePicker`, or the origin
   * private file system), record by record in order. Records the file already holds
   * are kept and not fetched again (resume; never the last record, which is always
   * verified anew). A handle named `<name>.part` is renamed `<name>` once the last
   * record verified. Not with `writable`.
   */
  fileHandle?: FileSystemFileHandle;
  /**
   * Write the plaintext to this stream, in order (chunks are `Uint8Array`s); closed when
   * the last record verified, aborted with the error otherwise. Not with `fileHandle`.
   */
  writable?: WritableStream<Uint8Array>;
}

/** Options of `openFile(link, options)`. */
export interface OpenFileOptions {
  /** The password of a `#p1.` link; rejects like `download` without it or with a wrong one. */
  password?: string;
}

/** What `download` resolves to: the verified plaintext and its sealed name and type. */
export interface DownloadResult extends FileInfo {
  /** The plaintext, without `fileHandle` or `writable`; `null` with either. */
  blob: Blob | null;
  /** Plaintext bytes the `fileHandle`'s file already held and kept (0 otherwise). */
  resumedFrom: number;
}

/**
 * Every rejection and throw of this package. `code` is stable: an API code from the
 * server (`file_not_found`, `upload_not_open`, `wrong_password`, `share_expired`, ...),
 * a format code (`invalid_header`, `key_commitment_failed`, `record_auth_failed`,
 * `truncated`, `wrong_password` for a password link's key that does not open,
 * `invalid_password`, ...), or one of `network`, `stalled`, `http_<status>`,
 * `cancelled`, `invalid_option`, `invalid_link`, `password_required`,
 * `invalid_response`, `read_failed`, `write_failed`, `file_changed`, `part_failed`,
 * `persist_failed`, `unsupported`.
 */
export interface SealdropError extends Error {
  name: "SealdropError";
  code: string;
  /** The HTTP status, for errors that had one. */
  status?: number;
  /** The server's `Retry-After` in seconds, where it sent one (`too_many_attempts`, `share_busy`, ...). */
  retryAfter?: number;
  /** The record (0-based) that failed, for `record_auth_failed`, `truncated`, `trailing_data`. */
  record?: number;
  /** For `part_failed`: the part (1-based) or download range that kept failing... */
  part?: number;
  /** ...how many attempts were made... */
  attempts?: number;
  /** ...and the last attempt's error. */
  cause?: SealdropError;
}
"#;

// ---------------------------------------------------------------------------------
// Option bags
// ---------------------------------------------------------------------------------

/// Reads `new Uploader(options)`.
pub(crate) fn uploader_config(options: &JsValue) -> Result<UploadConfig, ClientError> {
    let bag = Bag::new(options, "Uploader options")?;
    let endpoint = match bag.string("endpoint")? {
        Some(text) => link::endpoint_of(&text).ok_or_else(|| {
            ClientError::InvalidOption(format!("endpoint must be an http(s) URL, got {text:?}"))
        })?,
        None => platform::location_origin()
            .as_deref()
            .and_then(link::endpoint_of)
            .ok_or_else(|| {
                ClientError::InvalidOption("endpoint is required where there is no location".into())
            })?,
    };
    let mut config = UploadConfig::new(endpoint);
    if let Some(n) = bag.integer("concurrency", 1, u64::from(MAX_CONCURRENCY))? {
        config.concurrency = n as u32;
    }
    if let Some(n) = bag.integer("workers", 0, u64::from(MAX_WORKERS))? {
        config.workers = n as u32;
    }
    if let Some(n) = bag.integer("partSize", 1, MAX_SAFE_INTEGER as u64)? {
        config.part_size = Some(n);
    }
    if let Some(n) = bag.integer("recordSize", MIN_RECORD_SIZE.into(), MAX_RECORD_SIZE.into())? {
        config.record_size = n as u32;
    }
    if let Some(n) = bag.integer("maxAttempts", 1, MAX_ATTEMPTS.into())? {
        config.max_attempts = n as u32;
    }
    if let Some(n) = bag.integer("stallTimeoutMs", 1, MAX_STALL_MS)? {
        config.stall_ms = n;
    }
    if let Some(persist) = bag.boolean("persist")? {
        config.persist = persist;
    }
    config.fixed_concurrency = fixed_concurrency(&bag)?;
    #[cfg(feature = "bench")]
    {
        config.plain = bag.boolean("benchPlain")?.unwrap_or(false);
    }
    Ok(config)
}

/// `benchFixedConcurrency`: read only by the bench-only build (src/bench.rs); the
/// published package knows no such option.
fn fixed_concurrency(bag: &Bag) -> Result<bool, ClientError> {
    #[cfg(feature = "bench")]
    return Ok(bag.boolean("benchFixedConcurrency")?.unwrap_or(false));
    #[cfg(not(feature = "bench"))]
    {
        let _ = bag;
        Ok(false)
    }
}

/// Reads `upload(file, options)`.
pub(crate) fn upload_request(
    file: &JsValue,
    options: &JsValue,
) -> Result<UploadRequest, ClientError> {
    let file = blob(file)
        .ok_or_else(|| ClientError::InvalidOption("upload needs a File or a Blob".into()))?;
    let bag = Bag::new(options, "upload options")?;
    let name = match bag.string("name")? {
        Some(name) => name,
        None => file.dyn_ref::<File>().map(File::name).unwrap_or_default(),
    };
    let mime = match bag.string("type")? {
        Some(mime) => mime,
        None => file.type_(),
    };
    let handle = match bag.get("handle")? {
        Some(handle) if handle.is_object() => handle,
        Some(_) => return Err(bag.invalid("handle", "must be a FileSystemFileHandle")),
        None => JsValue::UNDEFINED,
    };
    let mut on_progress = bag.function("onProgress")?;
    let mut on_state_change = bag.function("onStateChange")?;
    let room = match bag.get("room")? {
        Some(room) => {
            let tie = RoomTie::new(&room, bag.string("path")?, bag.string("parentId")?)?;
            on_progress = Some(tie.on_progress(on_progress));
            on_state_change = Some(tie.on_state_change(on_state_change));
            Some(tie)
        }
        None if bag.get("path")?.is_some() || bag.get("parentId")?.is_some() => {
            return Err(bag.invalid("path", "path and parentId need options.room"));
        }
        None => None,
    };
    let thumbnail = match bag.get("thumbnail")? {
        Some(value) => {
            let image = blob(&value).ok_or_else(|| bag.invalid("thumbnail", "must be a Blob"))?;
            thumbnail::check(&image)?;
            Some(image)
        }
        None => None,
    };
    Ok(UploadRequest {
        source: Source::Fresh {
            file,
            name,
            mime,
            handle,
        },
        on_progress,
        on_state_change,
        signal: bag.signal("signal")?,
        room,
        thumbnail,
    })
}

/// Reads `resume(pending, options)`.
pub(crate) fn resume_request(
    pending: &JsValue,
    options: &JsValue,
) -> Result<UploadRequest, ClientError> {
    let id = pending_id(pending)?;
    let bag = Bag::new(options, "resume options")?;
    let file = match bag.get("file")? {
        Some(value) => {
            Some(blob(&value).ok_or_else(|| bag.invalid("file", "must be a File or a Blob"))?)
        }
        None => None,
    };
    Ok(UploadRequest {
        source: Source::Saved { id, file },
        on_progress: bag.function("onProgress")?,
        on_state_change: bag.function("onStateChange")?,
        signal: bag.signal("signal")?,
        room: None,
        thumbnail: None,
    })
}

/// The id of a `PendingUpload` (or the id itself).
pub(crate) fn pending_id(pending: &JsValue) -> Result<String, ClientError> {
    pending
        .as_string()
        .or_else(|| Reflect::get(pending, &"id".into()).ok()?.as_string())
        .ok_or_else(|| {
            ClientError::InvalidOption("pass a PendingUpload from Uploader.pending()".into())
        })
}

fn blob(value: &JsValue) -> Option<Blob> {
    value.dyn_ref::<Blob>().cloned()
}

/// Reads the password of `openFile(link, options)`.
pub(crate) fn open_file_password(options: &JsValue) -> Result<Option<String>, ClientError> {
    Bag::new(options, "openFile options")?.string("password")
}

/// Reads `download(link, options)`.
pub(crate) fn download_request(
    link: &JsValue,
    options: &JsValue,
) -> Result<DownloadRequest, ClientError> {
    let link = link
        .as_string()
        .ok_or(ClientError::InvalidLink("the link must be a string"))?;
    let bag = Bag::new(options, "download options")?;
    Ok(DownloadRequest {
        link,
        on_progress: bag.function("onProgress")?,
        on_metadata: bag.function("onMetadata")?,
        concurrency: bag
            .integer("concurrency", 1, u64::from(MAX_CONCURRENCY))?
            .map_or(CONNECTIONS_PER_HOST, |n| n as u32),
        workers: bag
            .integer("workers", 0, u64::from(MAX_WORKERS))?
            .map_or(DEFAULT_WORKERS, |n| n as u32),
        fixed_concurrency: fixed_concurrency(&bag)?,
        stall_ms: bag
            .integer("stallTimeoutMs", 1, MAX_STALL_MS)?
            .unwrap_or(DEFAULT_STALL_MS),
        signal: bag.signal("signal")?,
        password: bag.string("password")?,
        sink: bag.sink()?,
    })
}

/// Reads the `file` argument of the share calls: `{ fileId, link }` (an
/// `UploadResult` is one).
pub(crate) fn file_ref(file: &JsValue) -> Result<FileRef, ClientError> {
    let bag = Bag::new(file, "file")?;
    let file_id = bag
        .string("fileId")?
        .ok_or_else(|| bag.invalid("fileId", "is required"))?;
    let link = bag
        .string("link")?
        .ok_or_else(|| bag.invalid("link", "is required (a k1. link of the file)"))?;
    FileRef::new(file_id, &link)
}

/// Reads the owner's credential: the owner token or a JWT.
pub(crate) fn owner_auth(auth: &JsValue) -> Result<String, ClientError> {
    auth.as_string()
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ClientError::InvalidOption("ownerAuth must be the owner token or a JWT".into())
        })
}

/// Reads a share token argument.
pub(crate) fn share_token(token: &JsValue) -> Result<ShareToken, ClientError> {
    token
        .as_string()
        .and_then(|t| ShareToken::parse(&t).ok())
        .ok_or_else(|| {
            ClientError::InvalidOption("token must be a share token (32 characters)".into())
        })
}

/// Reads `createShare`'s options.
pub(crate) fn new_share(options: &JsValue) -> Result<NewShare, ClientError> {
    let bag = Bag::new(options, "share options")?;
    let password = bag.string("password")?;
    if password.as_deref() == Some("") {
        return Err(bag.invalid("password", "must not be empty"));
    }
    Ok(NewShare {
        password,
        expires_in: bag.integer("expiresIn", 1, MAX_SAFE_INTEGER as u64 / 1000)?,
        download_limit: bag
            .integer("downloadLimit", 1, u64::from(u32::MAX))?
            .map(|n| n as u32),
    })
}

/// Reads `updateShare`'s changes: `downloadLimit: null` is unlimited.
pub(crate) fn share_changes(changes: &JsValue) -> Result<UpdateShareRequest, ClientError> {
    let bag = Bag::new(changes, "share changes")?;
    let limit = match &bag.object {
        Some(object) => Reflect::get(object, &"downloadLimit".into()).unwrap_or_default(),
        None => JsValue::UNDEFINED,
    };
    let download_limit = if limit.is_undefined() {
        None
    } else if limit.is_null() {
        Some(None)
    } else {
        Some(Some(
            bag.integer("downloadLimit", 1, u64::from(u32::MAX))?
                .map_or(0, |n| n as u32),
        ))
    };
    Ok(UpdateShareRequest {
        expires_in: bag.integer("expiresIn", 1, MAX_SAFE_INTEGER as u64 / 1000)?,
        download_limit,
    })
}

/// A share as its owner sees it (`ShareInfo`), with its `link` when one was made.
pub(crate) fn share_info(view: &ShareView, link: Option<&str>) -> JsValue {
    let text = serde_json::to_string(view).unwrap_or_default();
    let object = js_sys::JSON::parse(&text).unwrap_or_else(|_| Object::new().into());
    if let (Some(link), Some(object)) = (link, object.dyn_ref::<Object>()) {
        set(object, "link", &JsValue::from_str(link));
    }
    object
}

/// The `ShareStatus` of `shareStatus`.
pub(crate) fn share_status(status: &PublicShare) -> JsValue {
    let object = Object::new();
    set(&object, "password", &JsValue::from_bool(status.password));
    let optional = |n: Option<u64>| n.map_or(JsValue::NULL, number);
    set(&object, "expiresAt", &optional(status.expires_at));
    set(&object, "downloadsLeft", &optional(status.downloads_left));
    object.into()
}

/// The `ShareInfo[]` of `listShares`.
pub(crate) fn share_list(views: &[ShareView]) -> JsValue {
    views
        .iter()
        .map(|view| share_info(view, None))
        .collect::<Array>()
        .into()
}

/// An options object: `undefined` and `null` are an empty one.
struct Bag {
    object: Option<Object>,
    what: &'static str,
}

impl Bag {
    fn new(value: &JsValue, what: &'static str) -> Result<Self, ClientError> {
        if value.is_undefined() || value.is_null() {
            return Ok(Self { object: None, what });
        }
        if !value.is_object() {
            return Err(ClientError::InvalidOption(format!(
                "{what} must be an object"
            )));
        }
        Ok(Self {
            object: Some(value.clone().unchecked_into()),
            what,
        })
    }

    /// A field; `undefined` and `null` are absent.
    fn get(&self, name: &str) -> Result<Option<JsValue>, ClientError> {
        let Some(object) = &self.object else {
            return Ok(None);
        };
        let value = Reflect::get(object, &JsValue::from_str(name)).map_err(|e| {
            self.invalid(
                name,
                &format!("cannot be read ({})", platform::describe(&e)),
            )
        })?;
        Ok((!value.is_undefined() && !value.is_null()).then_some(value))
    }

    fn integer(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ClientError> {
        let Some(value) = self.get(name)? else {
            return Ok(None);
        };
        match value.as_f64() {
            Some(n) if n.fract() == 0.0 && n >= min as f64 && n <= max as f64 => Ok(Some(n as u64)),
            _ => Err(self.invalid(
                name,
                &format!(
                    "must be an integer from {min} to {max}, got {}",
                    platform::describe(&value)
                ),
            )),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ClientError> {
        let Some(value) = self.get(name)? else {
            return Ok(None);
        };
        value
            .as_bool()
            .map(Some)
            .ok_or_else(|| self.invalid(name, "must be true or false"))
    }

    fn string(&self, name: &str) -> Result<Option<String>, ClientError> {
        let Some(value) = self.get(name)? else {
            return Ok(None);
        };
        value
            .as_string()
            .map(Some)
            .ok_or_else(|| self.invalid(name, "must be a string"))
    }

    fn function(&self, name: &str) -> Result<Option<Function>, ClientError> {
        let Some(value) = self.get(name)? else {
            return Ok(None);
        };
        value
            .dyn_into::<Function>()
            .map(Some)
            .map_err(|_| self.invalid(name, "must be a function"))
    }

    fn signal(&self, name: &str) -> Result<Option<AbortSignal>, ClientError> {
        let Some(value) = self.get(name)? else {
            return Ok(None);
        };
        value
            .dyn_into::<AbortSignal>()
            .map(Some)
            .map_err(|_| self.invalid(name, "must be an AbortSignal"))
    }

    /// `fileHandle` (a `FileSystemFileHandle`) or `writable` (a `WritableStream`), not
    /// both; a `Blob` without either.
    fn sink(&self) -> Result<SinkChoice, ClientError> {
        match (self.get("fileHandle")?, self.get("writable")?) {
            (Some(_), Some(_)) => Err(self.invalid("writable", "cannot go with `fileHandle`")),
            (Some(handle), None) => handle
                .dyn_into::<FileHandle>()
                .map(SinkChoice::File)
                .map_err(|_| self.invalid("fileHandle", "must be a FileSystemFileHandle")),
            (None, Some(stream)) => stream
                .dyn_into::<WritableStream>()
                .map(SinkChoice::Stream)
                .map_err(|_| self.invalid("writable", "must be a WritableStream")),
            (None, None) => Ok(SinkChoice::Blob),
        }
    }

    fn invalid(&self, name: &str, problem: &str) -> ClientError {
        ClientError::InvalidOption(format!("{} `{name}` {problem}", self.what))
    }
}

// ---------------------------------------------------------------------------------
// Results and events
// ---------------------------------------------------------------------------------

/// `{ fileId, link, size }`.
pub(crate) fn uploaded(result: &Uploaded) -> JsValue {
    let object = Object::new();
    set(&object, "fileId", &JsValue::from_str(&result.file_id));
    set(&object, "link", &JsValue::from_str(&result.link));
    set(
        &object,
        "ownerToken",
        &JsValue::from_str(&result.owner_token),
    );
    set(&object, "size", &number(result.size));
    object.into()
}

/// The `PendingUpload` objects of `Uploader.pending()`.
pub(crate) fn pending_list(entries: &[Entry]) -> JsValue {
    let list = Array::new();
    for Entry { saved, handle } in entries {
        let object = Object::new();
        set(&object, "id", &JsValue::from_str(&saved.id));
        set(&object, "name", &JsValue::from_str(&saved.name));
        set(&object, "type", &JsValue::from_str(&saved.mime));
        set(&object, "size", &number(saved.file.size));
        set(&object, "createdAt", &number(saved.created_at));
        set(&object, "endpoint", &JsValue::from_str(&saved.endpoint));
        let file_id = saved
            .session
            .as_ref()
            .map_or(JsValue::NULL, |s| JsValue::from_str(s.file_id.as_str()));
        set(&object, "fileId", &file_id);
        let handle = if handle.is_object() {
            handle.clone()
        } else {
            JsValue::NULL
        };
        set(&object, "handle", &handle);
        list.push(&object);
    }
    list.into()
}

/// The `PendingDownload` objects of `pendingDownloads()`, with their links.
pub(crate) fn kept_list(kept: &[(KeptDownload, String)]) -> JsValue {
    let list = Array::new();
    for (KeptDownload { saved, handle }, link) in kept {
        let object = Object::new();
        set(&object, "id", &JsValue::from_str(&saved.id));
        set(&object, "name", &JsValue::from_str(&saved.name));
        set(&object, "type", &JsValue::from_str(&saved.mime));
        set(&object, "size", &number(saved.size));
        set(&object, "createdAt", &number(saved.created_at));
        set(&object, "link", &JsValue::from_str(link));
        set(&object, "handle", handle);
        list.push(&object);
    }
    list.into()
}

/// `{ name, type, size, blob, resumedFrom }`.
pub(crate) fn downloaded(result: &Downloaded) -> JsValue {
    let object = file_info(&result.metadata, result.size);
    let blob = result.blob.as_ref().map_or(JsValue::NULL, |b| b.into());
    set(&object, "blob", &blob);
    set(&object, "resumedFrom", &number(result.resumed_from));
    object.into()
}

/// `{ name, type, size }`.
fn file_info(metadata: &FileMetadata, size: u64) -> Object {
    let object = Object::new();
    set(&object, "name", &JsValue::from_str(&metadata.name));
    set(&object, "type", &JsValue::from_str(&metadata.mime));
    set(&object, "size", &number(size));
    object
}

/// Calls `onMetadata` with a `FileInfo`; a callback that throws is logged.
pub(crate) fn call_metadata(callback: &Function, metadata: &FileMetadata, size: u64) {
    if let Err(e) = callback.call1(&JsValue::UNDEFINED, &file_info(metadata, size)) {
        platform::warn("sealdrop: onMetadata threw", &e);
    }
}

#[cfg(feature = "conformance")]
#[wasm_bindgen(typescript_custom_section)]
const CONFORMANCE_TYPES: &str = r#"
/** What `checkVector` returns for a vector that passes. */
export interface VectorResult {
  name: string;
  ok: true;
}
"#;

/// `{ name, ok: true }`.
#[cfg(feature = "conformance")]
pub(crate) fn vector_passed(name: &str) -> JsValue {
    let object = Object::new();
    set(&object, "name", &JsValue::from_str(name));
    set(&object, "ok", &JsValue::TRUE);
    object.into()
}

/// Calls `onProgress` with a `TransferProgress`. A callback that throws is logged and
/// does not stop the transfer.
pub(crate) fn call_progress(callback: &Function, snapshot: &Snapshot) {
    let object = Object::new();
    set(&object, "bytesDone", &number(snapshot.bytes_done));
    set(&object, "bytesTotal", &number(snapshot.bytes_total));
    set(&object, "speed", &number(snapshot.speed));
    let eta = snapshot.eta.map_or(JsValue::NULL, number);
    set(&object, "eta", &eta);
    set(&object, "partsDone", &number(snapshot.parts_done.into()));
    set(&object, "partsTotal", &number(snapshot.parts_total.into()));
    set(&object, "concurrency", &number(snapshot.concurrency.into()));
    set(&object, "partSize", &number(snapshot.part_size));
    let backend = JsValue::from_str(snapshot.backend.name());
    set(&object, "cipherBackend", &backend);
    set(&object, "cipherWorkers", &number(snapshot.workers.into()));
    if let Err(e) = callback.call1(&JsValue::UNDEFINED, &object) {
        platform::warn("sealdrop: onProgress threw", &e);
    }
}

fn number(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

/// The JS `Error` for `error`: `name` "SealdropError", a stable `.code`, and
/// `.status`, `.record`, `.part`, `.attempts`, `.cause` where they apply.
pub(crate) fn error(error: &ClientError) -> JsValue {
    let js = new_error(&error.to_string(), &error.code());
    if let Some(status) = error.status() {
        set(&js, "status", &number(status.into()));
    }
    if let Some(record) = error.record() {
        set(&js, "record", &number(record));
    }
    if let Some(ms) = error.retry_after_ms() {
        set(&js, "retryAfter", &number(ms.div_ceil(1000)));
    }
    if let ClientError::PartFailed {
        part,
        attempts,
        last,
    } = error
    {
        set(&js, "part", &number((*part).into()));
        set(&js, "attempts", &number((*attempts).into()));
        set(&js, "cause", &self::error(last));
    }
    js.into()
}

/// The JS `Error` for a vector that did not pass.
#[cfg(feature = "conformance")]
pub(crate) fn vector_error(error: &VectorError) -> JsValue {
    new_error(&error.to_string(), error.code()).into()
}

pub(crate) fn new_error(message: &str, code: &str) -> Object {
    let js = js_sys::Error::new(message);
    js.set_name("SealdropError");
    let js: Object = js.into();
    set(&js, "code", &JsValue::from_str(code));
    js
}
