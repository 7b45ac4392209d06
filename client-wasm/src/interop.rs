//! Every conversion between JS values and this crate's Rust types, in one place: the
//! TypeScript types of the option bags, events and results; reading and checking the
//! option bags; building result and progress objects; and turning errors into JS
//! `Error`s with a stable `.code`. Nothing outside this module (and the thin exports
//! in `lib.rs`) touches an untyped `JsValue`.

use js_sys::{Function, Object, Reflect};
use sealdrop_protocol::format::{FileMetadata, MAX_RECORD_SIZE, MIN_RECORD_SIZE};
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob, File};

#[cfg(feature = "conformance")]
use crate::conformance::VectorError;
use crate::download::{DownloadRequest, Downloaded};
use crate::error::ClientError;
use crate::link;
use crate::platform;
use crate::progress::Snapshot;
use crate::upload::{UploadConfig, UploadRequest, Uploaded};

/// Largest `concurrency`. Chromium opens at most 6 connections per host over
/// HTTP/1.1; more helps over HTTP/2 and with presigned URLs on another host.
pub(crate) const MAX_CONCURRENCY: u32 = 16;
/// Largest `maxAttempts`.
pub(crate) const MAX_ATTEMPTS: u32 = 100;
/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** Options of `new Uploader(options)`. */
export interface UploaderOptions {
  /** Base URL of the sealdrop API (and of the links); default `location.origin`. */
  endpoint?: string;
  /** Parts uploaded at once, 1 to 16; default 4. */
  concurrency?: number;
  /**
   * Preferred part size in ciphertext bytes. The server rounds it down to whole
   * records and into the storage limits (5 MiB to 5 GiB, at most 10,000 parts);
   * default about 16 MiB.
   */
  partSize?: number;
  /** Plaintext bytes per sealed record, 16 to 16 MiB; default 1 MiB (1048576). */
  recordSize?: number;
  /** Attempts per part and per API call before giving up, the first included; default 6. */
  maxAttempts?: number;
}

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
}

/** Called at the start, after each part, about once a second, and once at 100%. */
export type ProgressCallback = (progress: TransferProgress) => void;

/** Options of `uploader.upload(file, options)`. */
export interface UploadOptions {
  onProgress?: ProgressCallback;
  /** Aborting it stops the upload, deletes it on the server and rejects with code `cancelled`. */
  signal?: AbortSignal;
  /** The file name sealed into the metadata; default `file.name` (a `Blob`: ""). */
  name?: string;
  /** The MIME type sealed into the metadata; default `file.type`. */
  type?: string;
}

/** What `upload` resolves to. */
export interface UploadResult {
  /** The file's public id. */
  fileId: string;
  /** `<endpoint>/s/<shareToken>#k1.<key>`: a link to the file's default share (no password, no limit, the file's lifetime); whoever has it can download and decrypt the file. */
  link: string;
  /** Plaintext bytes. */
  size: number;
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
  /** Ranged requests at once, 1 to 16; default 4. */
  concurrency?: number;
  /** Aborting it stops the download and rejects with code `cancelled`. */
  signal?: AbortSignal;
}

/** What `download` resolves to: the verified plaintext and its sealed name and type. */
export interface DownloadResult extends FileInfo {
  blob: Blob;
}

/**
 * Every rejection and throw of this package. `code` is stable: an API code from the
 * server (`file_not_found`, `upload_not_open`, ...), a format code (`invalid_header`,
 * `key_commitment_failed`, `record_auth_failed`, `truncated`, ...), or one of
 * `network`, `http_<status>`, `cancelled`, `invalid_option`, `invalid_link`,
 * `invalid_response`, `read_failed`, `part_failed`, `unsupported`.
 */
export interface SealdropError extends Error {
  name: "SealdropError";
  code: string;
  /** The HTTP status, for errors that had one. */
  status?: number;
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
    if let Some(n) = bag.integer("partSize", 1, MAX_SAFE_INTEGER as u64)? {
        config.part_size = Some(n);
    }
    if let Some(n) = bag.integer("recordSize", MIN_RECORD_SIZE.into(), MAX_RECORD_SIZE.into())? {
        config.record_size = n as u32;
    }
    if let Some(n) = bag.integer("maxAttempts", 1, MAX_ATTEMPTS.into())? {
        config.max_attempts = n as u32;
    }
    Ok(config)
}

/// Reads `upload(file, options)`.
pub(crate) fn upload_request(
    file: &JsValue,
    options: &JsValue,
) -> Result<UploadRequest, ClientError> {
    let file: Blob = file
        .dyn_ref::<Blob>()
        .cloned()
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
    Ok(UploadRequest {
        file,
        name,
        mime,
        on_progress: bag.function("onProgress")?,
        signal: bag.signal("signal")?,
    })
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
            .map_or(4, |n| n as u32),
        signal: bag.signal("signal")?,
    })
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
    set(&object, "size", &number(result.size));
    object.into()
}

/// `{ name, type, size, blob }`.
pub(crate) fn downloaded(result: &Downloaded) -> JsValue {
    let object = file_info(&result.metadata, result.size);
    set(&object, "blob", &result.blob);
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
