//! sealdrop in the browser: the wasm side of `@sealdrop/client`.
//!
//! Built with `cargo build --target wasm32-unknown-unknown` and
//! `wasm-bindgen --target web` into `client-wasm/pkg` (see `scripts/build.sh`); the
//! npm package `@sealdrop/client` is `client-wasm/package.json` plus that folder.
//!
//! This file is the whole JS surface, kept thin: each export reads its arguments
//! through [`interop`], runs a plain Rust future, and converts the outcome back. The
//! rules (format, part plan, scheduler, backoff, throughput) are the
//! `sealdrop-protocol` crate's; the modules here carry them out with browser APIs:
//!
//! - `upload` / `download`: the two flows;
//! - `transfer`: the scheduler loop both share, retries, cancellation;
//! - `http`: `fetch` and error classification; `platform`: the global scope (timers,
//!   clock, random bytes, `AbortSignal`);
//! - `scratch`: the wasm buffers records are sealed and opened through;
//! - `fingerprint`: the rule that a retried part is never sent sealed from other bytes;
//! - `progress`, `link`, `error`, `interop`;
//! - `room`: `RoomClient`, a live connection to a room (docs/PROTOCOL.md);
//! - `conformance` (`checkVector`): a test hook, only in the conformance build
//!   (`--features conformance`, `tests/pages/conformance/`), never in the published
//!   package.
//!
//! TypeScript: `pkg/sealdrop_client.d.ts` is generated from these exports and the
//! hand-written types in `interop`'s `typescript_custom_section`.

#[cfg(feature = "conformance")]
mod conformance;
mod download;
mod error;
mod fingerprint;
mod http;
mod interop;
mod link;
mod platform;
mod progress;
mod room;
mod scratch;
mod transfer;
mod upload;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

#[cfg(feature = "conformance")]
pub use conformance::VectorError;
pub use error::ClientError;

/// The version of this client build, as `sealdrop-client/<crate version>`.
#[wasm_bindgen]
pub fn version() -> String {
    concat!("sealdrop-client/", env!("CARGO_PKG_VERSION")).to_owned()
}

/// Uploads files end-to-end encrypted: each file is sealed in the browser under a
/// fresh key, sent in parts straight to the URLs the server hands out, and becomes a
/// link whose fragment carries the key.
///
/// ```js
/// const uploader = new Uploader({ concurrency: 4 });
/// const { link } = await uploader.upload(file, { onProgress: (p) => console.log(p.bytesDone) });
/// ```
#[wasm_bindgen]
pub struct Uploader {
    config: upload::UploadConfig,
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

    /// Seals and uploads `file`; resolves to its `{ fileId, link, size }`. Rejects
    /// with a `SealdropError` (see its `code`). Several uploads may run at once.
    #[wasm_bindgen(unchecked_return_type = "Promise<UploadResult>")]
    pub fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Blob")] file: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: JsValue,
    ) -> Promise {
        let request = match interop::upload_request(&file, &options) {
            Ok(request) => request,
            Err(e) => return Promise::reject(&interop::error(&e)),
        };
        let config = self.config.clone();
        future_to_promise(async move {
            match upload::upload(&config, request).await {
                Ok(done) => Ok(interop::uploaded(&done)),
                Err(e) => Err(interop::error(&e)),
            }
        })
    }
}

/// Downloads the file a link names, checks every record and resolves to its
/// `{ name, type, size, blob }`; no plaintext is released unless the whole file
/// verified. Rejects with a `SealdropError` (`invalid_link`, `share_not_found`,
/// `share_exhausted`, `key_commitment_failed` for a wrong key, `record_auth_failed` with
/// `.record`, ...).
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
