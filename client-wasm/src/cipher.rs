//! The record cipher: AES-256-GCM over one file's records, behind one async seam with two
//! backends.
//!
//! - **WebCrypto** (`crypto.subtle`, through web-sys): the browser's native AES, about
//!   eight times faster than software AES in wasm (BENCHMARKS.md). The content key is
//!   imported once per file as a non-extractable `CryptoKey`, and bytes go from a JS
//!   buffer to WebCrypto and back without passing through wasm memory.
//! - **aes-gcm** (the protocol crate's own path): the fallback where the global scope has
//!   no `crypto.subtle`, as on an insecure (non-HTTPS, non-localhost) origin.
//!
//! Everything but AES itself is the protocol's ([`RecordPosition`]): the nonce, the AAD
//! (the whole header), the shape checks made before any AES runs, and the refinement of
//! a failed open into `truncated` / `trailing_data` / `record_auth_failed`. So the two
//! backends cannot disagree on a rule, and the format vectors check that they give the
//! same bytes (tests/format-vectors.test.mjs). `crypto` is looked up on the global
//! object, never on `window`, so the same code runs in a dedicated Worker.
//!
//! Records are independent (a stateless function of key, header, index and last flag),
//! so a caller may keep several [`seal`](RecordCipher::seal)s or
//! [`open`](RecordCipher::open)s of one cipher in flight at once.

use js_sys::{Array, Reflect, Uint8Array};
use sealdrop_protocol::format::{
    ContentKey, FileKey, FormatError, Header, RecordPosition, TAG_LEN, open_record_into,
    seal_record_into,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto};

use crate::error::ClientError;
use crate::platform::describe;
use crate::scratch;

/// Which AES-256-GCM implementation a [`RecordCipher`] uses; its
/// [`name`](Backend::name) is what stats show as `cipherBackend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `crypto.subtle`.
    WebCrypto,
    /// The `aes-gcm` crate compiled into this wasm.
    AesGcm,
}

impl Backend {
    /// The backend this global scope supports best: WebCrypto wherever `crypto.subtle`
    /// exists.
    pub(crate) fn detect() -> Self {
        if subtle().is_some() {
            Self::WebCrypto
        } else {
            Self::AesGcm
        }
    }

    /// `"webcrypto"` or `"aes-gcm"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::WebCrypto => "webcrypto",
            Self::AesGcm => "aes-gcm",
        }
    }

    /// The backend called `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::WebCrypto, Self::AesGcm]
            .into_iter()
            .find(|b| b.name() == name)
    }
}

/// Seals and opens the records of one file.
pub(crate) struct RecordCipher {
    header: Header,
    /// The header's bytes, the AAD of every record, encoded once.
    aad: Uint8Array,
    key: Key,
}

enum Key {
    WebCrypto {
        subtle: SubtleCrypto,
        key: CryptoKey,
    },
    /// Boxed: the AES key schedule is much larger than two JS handles.
    AesGcm(Box<ContentKey>),
}

impl RecordCipher {
    /// The cipher for the file `file_key` seals under `header`, on the
    /// [detected](Backend::detect) backend. Fails with `key_commitment_failed` if the
    /// header does not commit to the key.
    // The uploader's and downloader's way in, once they move onto this seam.
    #[cfg_attr(feature = "conformance", allow(dead_code))]
    pub(crate) async fn new(file_key: &FileKey, header: &Header) -> Result<Self, ClientError> {
        Self::with_backend(file_key, header, Backend::detect()).await
    }

    /// The same on a chosen backend (the conformance build and the bench run both);
    /// `unsupported` if this scope lacks it.
    pub(crate) async fn with_backend(
        file_key: &FileKey,
        header: &Header,
        backend: Backend,
    ) -> Result<Self, ClientError> {
        let key = match backend {
            Backend::AesGcm => Key::AesGcm(Box::new(file_key.derive(header)?.content)),
            Backend::WebCrypto => {
                let subtle = subtle().ok_or_else(|| {
                    ClientError::Unsupported("crypto.subtle is missing".to_owned())
                })?;
                let raw = file_key.derive_content_bytes(header)?;
                let key = import_key(&subtle, &raw[..]).await?;
                Key::WebCrypto { subtle, key }
            }
        };
        Ok(Self {
            header: *header,
            aad: Uint8Array::from(&header.encode()[..]),
            key,
        })
    }

    /// Which backend this cipher runs on.
    pub(crate) fn backend(&self) -> Backend {
        match self.key {
            Key::WebCrypto { .. } => Backend::WebCrypto,
            Key::AesGcm(_) => Backend::AesGcm,
        }
    }

    /// Seals the record at `position` (ciphertext then tag, 16 bytes longer). A plaintext
    /// whose length cannot sit there is refused with `invalid_length` before any AES.
    pub(crate) async fn seal(
        &self,
        position: RecordPosition,
        plaintext: &Uint8Array,
    ) -> Result<Uint8Array, ClientError> {
        position.check_seal(&self.header, plaintext.length() as usize)?;
        match &self.key {
            Key::AesGcm(key) => Ok(through_wasm(plaintext, |input, output| {
                seal_record_into(
                    key,
                    &self.header,
                    position.index,
                    position.last,
                    input,
                    output,
                )
            })?),
            Key::WebCrypto { subtle, key } => {
                let params = self.params(position);
                let promise = subtle
                    .encrypt_with_object_and_js_u8_array(&params, key, plaintext)
                    .map_err(|e| webcrypto_failed("encrypt", &e))?;
                let sealed = JsFuture::from(promise)
                    .await
                    .map_err(|e| webcrypto_failed("encrypt", &e))?;
                Ok(Uint8Array::new(&sealed))
            }
        }
    }

    /// Opens the sealed record at `position`. On failure the error names the record and,
    /// as §6 refines it, why; no plaintext is released unless its tag checked.
    pub(crate) async fn open(
        &self,
        position: RecordPosition,
        sealed: &Uint8Array,
    ) -> Result<Uint8Array, ClientError> {
        let sealed_len = sealed.length() as usize;
        position.check_open(&self.header, sealed_len)?;
        match &self.key {
            Key::AesGcm(key) => Ok(through_wasm(sealed, |input, output| {
                open_record_into(
                    key,
                    &self.header,
                    position.index,
                    position.last,
                    input,
                    output,
                )
            })?),
            Key::WebCrypto { .. } => {
                if let Some(plaintext) = self.decrypt(position, sealed).await? {
                    return Ok(plaintext);
                }
                let refined = match position.refinement(&self.header, sealed_len) {
                    Some(other) => self.decrypt(other, sealed).await?.is_some(),
                    None => false,
                };
                Err(position.open_failure(refined).into())
            }
        }
    }

    /// WebCrypto's decrypt of `sealed` at `position`: `None` if the tag does not check
    /// (WebCrypto's `OperationError`).
    async fn decrypt(
        &self,
        position: RecordPosition,
        sealed: &Uint8Array,
    ) -> Result<Option<Uint8Array>, ClientError> {
        let Key::WebCrypto { subtle, key } = &self.key else {
            unreachable!("decrypt is WebCrypto's");
        };
        let promise = subtle
            .decrypt_with_object_and_js_u8_array(&self.params(position), key, sealed)
            .map_err(|e| webcrypto_failed("decrypt", &e))?;
        match JsFuture::from(promise).await {
            Ok(plaintext) => Ok(Some(Uint8Array::new(&plaintext))),
            Err(e) if error_name(&e).as_deref() == Some("OperationError") => Ok(None),
            Err(e) => Err(webcrypto_failed("decrypt", &e)),
        }
    }

    /// `{name: "AES-GCM", iv: nonce(position), additionalData: header}` (tag 128 bits,
    /// WebCrypto's default and the format's `TAG_LEN`).
    fn params(&self, position: RecordPosition) -> AesGcmParams {
        const _: () = assert!(TAG_LEN == 16);
        let params =
            AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(&position.nonce()[..]));
        params.set_additional_data_u8_array(&self.aad);
        params
    }
}

/// The aes-gcm backend's step: copies `bytes` into the wasm scratch buffers, runs `f` from
/// the input to the output, and copies the output back out to a new JS array.
fn through_wasm(
    bytes: &Uint8Array,
    f: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<(), FormatError>,
) -> Result<Uint8Array, FormatError> {
    scratch::with(|s| {
        s.input.resize(bytes.length() as usize, 0);
        bytes.copy_to(&mut s.input);
        f(&s.input, &mut s.output)?;
        Ok(Uint8Array::from(&s.output[..]))
    })
}

/// `crypto.subtle` of the global scope (a page or a Worker), if it has one: browsers
/// leave it out on insecure origins.
fn subtle() -> Option<SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    if crypto.is_undefined() || crypto.is_null() {
        return None;
    }
    let subtle = Reflect::get(&crypto, &"subtle".into()).ok()?;
    (!subtle.is_undefined() && !subtle.is_null()).then(|| subtle.unchecked_into())
}

/// Imports `raw` as a non-extractable AES-GCM key for encrypt and decrypt. The JS copy of
/// the bytes is zeroed once WebCrypto has taken its own.
async fn import_key(subtle: &SubtleCrypto, raw: &[u8]) -> Result<CryptoKey, ClientError> {
    let bytes = Uint8Array::from(raw);
    let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
    let imported = subtle
        .import_key_with_str("raw", &bytes, "AES-GCM", false, &usages)
        .map(JsFuture::from);
    let key = match imported {
        Ok(future) => future.await,
        Err(e) => Err(e),
    };
    bytes.fill(0, 0, bytes.length());
    key.map(JsCast::unchecked_into)
        .map_err(|e| webcrypto_failed("importKey", &e))
}

fn webcrypto_failed(what: &str, error: &JsValue) -> ClientError {
    ClientError::Unsupported(format!("WebCrypto {what}: {}", describe(error)))
}

/// The `name` of a thrown `DOMException` or `Error`.
fn error_name(error: &JsValue) -> Option<String> {
    Reflect::get(error, &"name".into()).ok()?.as_string()
}
