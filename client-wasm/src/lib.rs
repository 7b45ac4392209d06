//! sealdrop in the browser: the wasm side of `@sealdrop/client`.
//!
//! Built with `cargo build --target wasm32-unknown-unknown` and
//! `wasm-bindgen --target web` into `client-wasm/pkg` (see `scripts/build.sh`); the
//! npm package `@sealdrop/client` is `client-wasm/package.json` plus that folder.
//!
//! This file is the whole JS surface, kept thin: each export reads its arguments
//! through [`interop`], runs a plain Rust future, and converts the outcome back. The
//! rules (format, part plan, scheduler, backoff, the upload's lifecycle, the
//! fingerprints that keep nonces safe) are the `sealdrop-protocol` crate's; the
//! modules here carry them out with browser APIs:
//!
//! - `upload` / `download`: the two flows; `control`: an upload's state as the
//!   person controls it (pause, resume, cancel); `pipeline`: a download's ranges
//!   written in order within a bounded window; `sink`: where they go (a file on disk,
//!   a stream, a `Blob`); `preview` (`openFile`): random access to a shared file, for
//!   the service worker's previews;
//! - `transfer`: the scheduler loop both share, retries, cancellation;
//! - `http` (`fetch`), `xhr` (part `PUT`s, with upload progress), `stall` (aborting a
//!   request that makes no progress); `part_urls`;
//! - `seal`: sealing a part from the file through the file cipher; `scratch`: the
//!   aes-gcm backend's wasm buffers;
//! - `offload` (the page's side) and `worker` (`runCipherWorker`, the worker's): the
//!   dedicated Web Workers that seal parts and open ranges off the main thread;
//! - `persist` and `idb`: what IndexedDB keeps to resume after a reload or a crash;
//!   `kept`: the same for downloads to a file;
//! - `platform`: the global scope (timers, clock, random bytes, `AbortSignal`);
//! - `cipher`: the async file cipher (records and metadata), WebCrypto or (without
//!   `crypto.subtle`) aes-gcm;
//! - `shares`: share links from the owner's side, and a download's password step;
//! - `progress`, `link`, `error`, `interop`;
//! - `room`: `RoomClient`, a live connection to a room (docs/PROTOCOL.md);
//! - `bench` (`BenchCipher`): the record cipher for `npm run bench`, only in the
//!   bench-only build (`--features bench`, bench/seal-wasm);
//! - `conformance` (`checkVector`): a test hook, only in the conformance build
//!   (`--features conformance`, `tests/pages/conformance/`), never in the published
//!   package.
//!
//! Nothing here touches `window` or `document`: the same build runs in a page and in
//! a dedicated Web Worker (XHR, `fetch`, IndexedDB and `crypto.subtle` exist in both).
//!
//! TypeScript: `pkg/sealdrop_client.d.ts` is generated from these exports and the
//! hand-written types in `interop`'s `typescript_custom_section`.

#[cfg(feature = "bench")]
mod bench;
mod cipher;
#[cfg(feature = "conformance")]
mod conformance;
mod control;
mod download;
mod error;
mod http;
mod idb;
mod interop;
mod kept;
mod link;
mod link_history;
mod offload;
mod part_urls;
mod persist;
mod pipeline;
mod platform;
mod preview;
mod progress;
mod release;
mod room;
mod room_upload;
mod scratch;
mod seal;
mod shares;
mod sink;
mod spare;
mod stall;
mod thumbnail;
mod transfer;
mod upload;
mod worker;
mod xhr;

use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use sealdrop_protocol::format::LinkSecret;
use sealdrop_protocol::lifecycle::State;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

#[cfg(feature = "bench")]
pub use bench::BenchCipher;
#[cfg(feature = "conformance")]
pub use conformance::VectorError;
pub use error::ClientError;
pub use preview::{SealedFile, open_file, previewable};
pub use worker::run_cipher_worker;

use crate::persist::Store;
use crate::upload::{Job, UploadConfig, UploadRequest};

/// The version of this client build, as `sealdrop-client/<crate version>`.
#[wasm_bindgen]
pub fn version() -> String {
    concat!("sealdrop-client/", env!("CARGO_PKG_VERSION")).to_owned()
}

/// Uploads files end-to-end encrypted: each file is sealed in the browser under a
/// fresh key, sent in parts straight to the URLs the server hands out, and becomes a
/// link whose fragment carries the key. Uploads survive failed requests and stalls,
/// can be paused, resumed and cancelled, and (kept in IndexedDB) resumed after a
/// reload or a crash of the browser.
///
/// ```js
/// const uploader = new Uploader({ concurrency: 4 });
/// const upload = uploader.upload(file, { onProgress: (p) => console.log(p.bytesDone) });
/// upload.pause(); upload.resume();
/// const { link } = await upload;
/// ```
#[wasm_bindgen]
pub struct Uploader {
    config: UploadConfig,
}

#[wasm_bindgen]
impl Uploader {
    /// Checks the options; throws a `SealdropError` with code `invalid_option`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "UploaderOptions")] options: JsValue,
    ) -> Result<Uploader, JsValue> {
        let config = interop::uploader_config(&options).map_err(|e| interop::error(&e))?;
        Ok(Uploader { config })
    }

    /// Seals and uploads `file`. The `Upload` is awaitable: it resolves to
    /// `{ fileId, link, size }`, or rejects with a `SealdropError`. Several uploads
    /// may run at once.
    pub fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Blob")] file: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: JsValue,
    ) -> Upload {
        match interop::upload_request(&file, &options) {
            Ok(request) => Upload::start(self.config.clone(), request),
            Err(e) => Upload::refused(&e),
        }
    }

    /// Continues an unfinished upload this browser kept (from `Uploader.pending()`):
    /// asks the server which parts storage holds and sends only the rest. Pass the
    /// file again as `options.file`, unless the upload kept a `FileSystemFileHandle`
    /// (then it is read through the handle). A file that is not the same fails with
    /// `file_changed` before anything is sent.
    pub fn resume(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PendingUpload")] pending: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ResumeOptions")] options: JsValue,
    ) -> Upload {
        match interop::resume_request(&pending, &options) {
            Ok(request) => Upload::start(self.config.clone(), request),
            Err(e) => Upload::refused(&e),
        }
    }

    /// Deletes an unfinished upload on the server and forgets it in this browser.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn discard(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PendingUpload")] pending: JsValue,
    ) -> Promise {
        let id = match interop::pending_id(&pending) {
            Ok(id) => id,
            Err(e) => return Promise::reject(&interop::error(&e)),
        };
        let config = self.config.clone();
        future_to_promise(async move {
            let (store, entry) = Store::load(&id).await.map_err(|e| interop::error(&e))?;
            let saved = entry.saved;
            let known = upload::Known::of_saved(&saved);
            upload::discard(&config, &saved.endpoint, known, Some(store))
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| interop::error(&e))
        })
    }

    /// The unfinished uploads this browser kept (on this origin), oldest first.
    #[wasm_bindgen(unchecked_return_type = "Promise<PendingUpload[]>")]
    pub fn pending() -> Promise {
        future_to_promise(async {
            persist::pending()
                .await
                .map(|entries| interop::pending_list(&entries))
                .map_err(|e| interop::error(&e))
        })
    }
}

/// One upload: awaitable (`await upload` gives `{ fileId, link, size }`), with
/// `pause()`, `resume()`, `cancel()` and its `state`.
#[wasm_bindgen]
pub struct Upload {
    /// `None` for an upload refused before it began (bad arguments)...
    job: Option<Rc<Job>>,
    /// ...and why.
    refused: Option<ClientError>,
    /// Settles when the upload ends.
    promise: Promise,
}

impl Upload {
    fn start(config: UploadConfig, request: UploadRequest) -> Upload {
        let signal = request.signal.clone();
        let room = request.room.clone();
        let job = Rc::new(Job::new(config, request));
        if let Some(room) = room {
            room.attach(&job);
        }
        let running = job.clone();
        let promise = future_to_promise(async move {
            match running.drive(signal).await {
                Ok(done) => Ok(interop::uploaded(&done)),
                Err(e) => Err(interop::error(&e)),
            }
        });
        Upload::quiet(&promise);
        Upload {
            job: Some(job),
            refused: None,
            promise,
        }
    }

    fn refused(error: &ClientError) -> Upload {
        let promise = Promise::reject(&interop::error(error));
        Upload::quiet(&promise);
        Upload {
            job: None,
            refused: Some(error.clone()),
            promise,
        }
    }

    /// An upload nobody awaits (the demo watches `onStateChange` instead) must not
    /// report its rejection as unhandled: the handle's `then` still rejects.
    fn quiet(promise: &Promise) {
        thread_local! {
            static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_| {});
        }
        IGNORE.with(|ignore| {
            let _ = promise.catch(ignore);
        });
    }
}

#[wasm_bindgen]
impl Upload {
    /// `"starting"`, `"uploading"`, `"paused"`, `"completing"`, `"done"`, `"failed"`
    /// or `"cancelled"`.
    #[wasm_bindgen(getter, unchecked_return_type = "UploadState")]
    pub fn state(&self) -> String {
        self.job
            .as_ref()
            .map_or(State::Failed, |job| job.control.state())
            .as_str()
            .to_owned()
    }

    /// Why the upload is paused (its attempts ran out: `resume()` tries again) or
    /// failed; `null` otherwise.
    #[wasm_bindgen(getter, unchecked_return_type = "SealdropError | null")]
    pub fn error(&self) -> JsValue {
        self.job
            .as_ref()
            .and_then(|job| job.control.error())
            .or_else(|| self.refused.clone())
            .map_or(JsValue::NULL, |e| interop::error(&e))
    }

    /// Whether the upload is kept in this browser, so it can be resumed after a
    /// reload or a crash (`Uploader.pending()` lists it).
    #[wasm_bindgen(getter)]
    pub fn resumable(&self) -> bool {
        self.job.as_ref().is_some_and(|job| job.is_kept())
    }

    /// `"webcrypto"` or `"aes-gcm"`: the backend the file is sealed on, once the upload
    /// has started (also in every progress event); `null` before.
    #[wasm_bindgen(getter, js_name = cipherBackend, unchecked_return_type = "CipherBackend | null")]
    pub fn cipher_backend(&self) -> JsValue {
        self.job
            .as_ref()
            .and_then(|job| job.cipher_backend())
            .map_or(JsValue::NULL, |b| JsValue::from_str(b.name()))
    }

    /// The file id, once the server has created the upload (`undefined` before): the
    /// id a room lists the upload under.
    #[wasm_bindgen(getter, js_name = fileId)]
    pub fn file_id(&self) -> Option<String> {
        self.job.as_ref().and_then(|job| job.file_id())
    }

    /// The id `Uploader.pending()` lists a kept upload under; `undefined` otherwise.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> Option<String> {
        self.job.as_ref().and_then(|job| job.kept_id())
    }

    /// Stops sending: no new part starts and the parts in flight are aborted (they
    /// are sent again on resume). Does nothing unless starting or uploading.
    pub fn pause(&self) {
        if let Some(job) = &self.job {
            job.control.pause();
        }
    }

    /// Continues a paused upload, also one paused because its attempts ran out.
    pub fn resume(&self) {
        if let Some(job) = &self.job {
            job.control.resume();
        }
    }

    /// Cancels: aborts the requests in flight, deletes the upload on the server and
    /// forgets it in this browser; the upload rejects with `cancelled`. Resolves once
    /// the server has deleted it. Does nothing to a finished upload.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn cancel(&self) -> Promise {
        let Some(job) = self.job.clone() else {
            return Promise::resolve(&JsValue::UNDEFINED);
        };
        let running = self.promise.clone();
        future_to_promise(async move {
            if job.control.state() == State::Done {
                return Ok(JsValue::UNDEFINED);
            }
            let was_running = !job.control.state().is_final();
            job.control.cancel();
            if was_running {
                // The running upload stops its requests, then deletes the session.
                let _ = JsFuture::from(running).await;
            }
            job.discard()
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| interop::error(&e))
        })
    }

    /// Makes an `Upload` awaitable (`PromiseLike<UploadResult>`).
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn then(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "((result: UploadResult) => any) | null")]
        on_fulfilled: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "((error: SealdropError) => any) | null")]
        on_rejected: JsValue,
    ) -> Result<JsValue, JsValue> {
        let then: Function = Reflect::get(&self.promise, &"then".into())?.dyn_into()?;
        then.call2(&self.promise, &on_fulfilled, &on_rejected)
    }
}

/// Downloads the file a link names, checks every record and writes it in order to a
/// sink: `options.fileHandle` (a file on disk, resumable), `options.writable` (a
/// stream) or, without either, a `Blob`. Resolves to `{ name, type, size, blob,
/// resumedFrom }` once every record, the last included, verified; the sink is complete
/// only then (a stream is aborted, a `.part` file keeps its name otherwise). A password
/// link (`#p1.`) needs `options.password`. Rejects with a `SealdropError`
/// (`invalid_link`, `share_not_found`, `share_exhausted`, `password_required`,
/// `wrong_password`, `too_many_attempts` with `.retryAfter`, `key_commitment_failed`
/// for a wrong key, `record_auth_failed` with `.record`, `write_failed`, ...).
#[wasm_bindgen(unchecked_return_type = "Promise<DownloadResult>")]
pub fn download(
    #[wasm_bindgen(unchecked_param_type = "string")] link: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "DownloadOptions")] options: JsValue,
) -> Promise {
    let request = match interop::download_request(&link, &options) {
        Ok(request) => request,
        Err(e) => return Promise::reject(&interop::error(&e)),
    };
    future_to_promise(async move {
        match download::download(request).await {
            Ok(done) => Ok(interop::downloaded(&done)),
            Err(e) => Err(interop::error(&e)),
        }
    })
}

/// Whether a link is a password link (`#p1.`): `download` then needs `{ password }`.
/// Throws `invalid_link` for anything that is not a link.
#[wasm_bindgen(js_name = linkNeedsPassword)]
pub fn link_needs_password(link: &str) -> Result<bool, JsValue> {
    link::parse(link)
        .map(|link| matches!(link.secret, LinkSecret::Password(_)))
        .map_err(|e| interop::error(&e))
}

/// What a link's share says before any download: `{ password, expiresAt,
/// downloadsLeft }`, or the share's refusal (`share_expired`, `share_exhausted`,
/// `share_revoked`, `gone`, `share_not_found`). Recorded for the owner as a view.
#[wasm_bindgen(js_name = shareStatus, unchecked_return_type = "Promise<ShareStatus>")]
pub fn share_status(link: &str) -> Promise {
    let link = link::parse(link);
    future_to_promise(async move {
        let link = link.map_err(|e| interop::error(&e))?;
        shares::status(&link)
            .await
            .map(|status| interop::share_status(&status))
            .map_err(|e| interop::error(&e))
    })
}

/// Creates a share of a file and builds its link here (`#k1.`, or `#p1.` with a
/// password: the key wrapped under it with Argon2id, about 130 ms on this thread).
/// `file` is `{ fileId, link }` with a `k1.` link of the file (an `UploadResult`);
/// `ownerAuth` the owner token or the owner's JWT.
#[wasm_bindgen(js_name = createShare, unchecked_return_type = "Promise<CreatedShare>")]
pub fn create_share(
    #[wasm_bindgen(unchecked_param_type = "FileRef")] file: JsValue,
    #[wasm_bindgen(js_name = ownerAuth, unchecked_param_type = "string")] owner_auth: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "ShareOptions")] options: JsValue,
) -> Promise {
    owner_call(
        &file,
        &owner_auth,
        interop::new_share(&options),
        async |owner, file, share| {
            let (view, link) = owner.create(&file, share).await?;
            Ok(interop::share_info(&view, Some(&link)))
        },
    )
}

/// Every share of a file (revoked, expired and used-up ones too), with access records.
#[wasm_bindgen(js_name = listShares, unchecked_return_type = "Promise<ShareInfo[]>")]
pub fn list_shares(
    #[wasm_bindgen(unchecked_param_type = "FileRef")] file: JsValue,
    #[wasm_bindgen(js_name = ownerAuth, unchecked_param_type = "string")] owner_auth: JsValue,
) -> Promise {
    owner_call(&file, &owner_auth, Ok(()), async |owner, file, ()| {
        Ok(interop::share_list(&owner.list(&file).await?))
    })
}

/// Changes a share's expiry or download limit.
#[wasm_bindgen(js_name = updateShare, unchecked_return_type = "Promise<ShareInfo>")]
pub fn update_share(
    #[wasm_bindgen(unchecked_param_type = "FileRef")] file: JsValue,
    #[wasm_bindgen(js_name = ownerAuth, unchecked_param_type = "string")] owner_auth: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ShareChanges")] changes: JsValue,
) -> Promise {
    let args = interop::share_token(&token)
        .and_then(|token| Ok((token, interop::share_changes(&changes)?)));
    owner_call(
        &file,
        &owner_auth,
        args,
        async |owner, file, (token, changes)| {
            let view = owner.update(&file, &token, &changes).await?;
            Ok(interop::share_info(&view, None))
        },
    )
}

/// Revokes a share at once and for good.
#[wasm_bindgen(js_name = revokeShare, unchecked_return_type = "Promise<ShareInfo>")]
pub fn revoke_share(
    #[wasm_bindgen(unchecked_param_type = "FileRef")] file: JsValue,
    #[wasm_bindgen(js_name = ownerAuth, unchecked_param_type = "string")] owner_auth: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
) -> Promise {
    let token = interop::share_token(&token);
    owner_call(&file, &owner_auth, token, async |owner, file, token| {
        let view = owner.revoke(&file, &token).await?;
        Ok(interop::share_info(&view, None))
    })
}

/// Deletes a file at once: its stored object, its shares, everything (final).
#[wasm_bindgen(js_name = deleteFile, unchecked_return_type = "Promise<void>")]
pub fn delete_file(
    #[wasm_bindgen(unchecked_param_type = "FileRef")] file: JsValue,
    #[wasm_bindgen(js_name = ownerAuth, unchecked_param_type = "string")] owner_auth: JsValue,
) -> Promise {
    owner_call(&file, &owner_auth, Ok(()), async |owner, file, ()| {
        owner.delete_file(&file).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// One owner call: reads `file` and `owner_auth` (and takes the call's own checked
/// `args`), runs `call`, and turns every error into a `SealdropError` rejection.
fn owner_call<A: 'static>(
    file: &JsValue,
    owner_auth: &JsValue,
    args: Result<A, ClientError>,
    call: impl AsyncFnOnce(shares::Owner, shares::FileRef, A) -> Result<JsValue, ClientError> + 'static,
) -> Promise {
    let parsed = interop::file_ref(file)
        .and_then(|file| Ok((file, interop::owner_auth(owner_auth)?, args?)));
    future_to_promise(async move {
        let (file, auth, args) = parsed.map_err(|e| interop::error(&e))?;
        call(shares::Owner::new(auth), file, args)
            .await
            .map_err(|e| interop::error(&e))
    })
}

/// The unfinished downloads to a file this browser kept (on this origin), oldest first,
/// as `{ id, name, type, size, createdAt, link, handle }`: resume one with
/// `download(pending.link, { fileHandle: pending.handle })`. A download is kept from
/// its start with a `fileHandle` until its last record verified. One whose key no
/// longer unwraps is left out.
#[wasm_bindgen(js_name = pendingDownloads, unchecked_return_type = "Promise<PendingDownload[]>")]
pub fn pending_downloads() -> Promise {
    future_to_promise(async {
        let mut listed = Vec::new();
        for download in kept::pending().await.map_err(|e| interop::error(&e))? {
            if let Ok(link) = download.link().await {
                listed.push((download, link));
            }
        }
        Ok(interop::kept_list(&listed))
    })
}

/// Forgets a kept download (`pendingDownloads()`); its file stays as it is.
#[wasm_bindgen(js_name = forgetDownload, unchecked_return_type = "Promise<void>")]
pub fn forget_download(id: String) -> Promise {
    future_to_promise(async move {
        kept::forget(&id)
            .await
            .map(|()| JsValue::UNDEFINED)
            .map_err(|e| interop::error(&e))
    })
}

/// Conformance hook: runs one test vector file (docs/FORMAT.md §9) through this
/// build's format implementation. Returns `{ name, ok: true }`, or throws a
/// `SealdropError` (`vector_mismatch`, `invalid_vector`) that says what disagreed.
/// Only in the conformance build: the published package has no test hook.
#[cfg(feature = "conformance")]
#[wasm_bindgen(js_name = checkVector, unchecked_return_type = "VectorResult")]
pub fn check_vector(text: &str) -> Result<JsValue, JsValue> {
    conformance::check_vector(text)
        .map(|name| interop::vector_passed(&name))
        .map_err(|e| interop::vector_error(&e))
}

/// Conformance hook: runs one test vector file with the records of a stream vector sealed
/// and opened by the client's file cipher on `backend` (`"webcrypto"` or `"aes-gcm"`).
/// Resolves to `{ name, ok: true }`, or rejects with a `SealdropError`
/// (`vector_mismatch`, `invalid_vector`, `invalid_option` for a backend this scope lacks).
/// Only in the conformance build.
#[cfg(feature = "conformance")]
#[wasm_bindgen(js_name = checkVectorWith, unchecked_return_type = "Promise<VectorResult>")]
pub fn check_vector_with(text: String, backend: String) -> Promise {
    future_to_promise(async move {
        conformance::check_vector_with(&text, &backend)
            .await
            .map(|name| interop::vector_passed(&name))
            .map_err(|e| interop::vector_error(&e))
    })
}

/// The cipher backend this scope would use: `"webcrypto"` where `crypto.subtle`
/// exists, `"aes-gcm"` (software AES in wasm) where it does not (an insecure origin).
#[wasm_bindgen(js_name = cipherBackend, unchecked_return_type = "CipherBackend")]
pub fn cipher_backend() -> String {
    cipher::Backend::detect().name().to_owned()
}
