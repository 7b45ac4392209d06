//! The file cipher: AES-256-GCM over one file's records and metadata, behind one async
//! seam with two backends.
//!
//! - **WebCrypto** (`crypto.subtle`, through web-sys): the browser's native AES, about
//!   several times faster than software AES in wasm (BENCHMARKS.md). The content and
//!   metadata keys are imported once per file as non-extractable `CryptoKey`s, and record
//!   bytes go from a JS buffer to WebCrypto and back without passing through wasm memory.
//! - **aes-gcm** (the protocol crate's own path): the fallback where the global scope has
//!   no `crypto.subtle`, as on an insecure (non-HTTPS, non-localhost) origin.
//!
//! Everything but AES itself is the protocol's: the nonce, the AAD (the whole header), the
//! shape checks made before any AES runs and the refinement of a failed open into
//! `truncated` / `trailing_data` / `record_auth_failed` ([`RecordPosition`]); the
//! metadata's padded JSON, length and canonical-form checks. So the two
//! backends cannot disagree on a rule, and the format vectors check that they give the
//! same bytes (tests/format-vectors.test.mjs). `crypto` is looked up on the global
//! object, never on `window`, so the same code runs in a dedicated Worker.
//!
//! Records are independent (a stateless function of key, header, index and last flag),
//! so a caller may keep several [`seal`](FileCipher::seal)s or
//! [`open`](FileCipher::open)s of one cipher in flight at once.

use js_sys::{Array, Reflect, Uint8Array};
use sealdrop_protocol::format::{
    self, FileKey, FileMetadata, FormatError, Header, METADATA_NONCE_LEN, RecordPosition, TAG_LEN,
    metadata_plaintext, open_metadata, open_record_into, parse_metadata_plaintext, seal_metadata,
    seal_record_into, split_sealed_metadata,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto};

use crate::error::ClientError;
use crate::platform::{self, describe};
use crate::scratch;

/// Which AES-256-GCM implementation a [`FileCipher`] uses; its
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
        if platform::subtle().is_ok() {
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
    #[cfg(any(feature = "conformance", feature = "bench"))]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::WebCrypto, Self::AesGcm]
            .into_iter()
            .find(|b| b.name() == name)
    }
}

/// Seals and opens the records and the metadata of one file.
pub(crate) struct FileCipher {
    header: Header,
    /// The header's bytes, the AAD of every record and of the metadata, encoded once.
    aad: Uint8Array,
    keys: Keys,
    /// Bench only: records pass through unsealed ([`FileCipher::plain_if`]).
    #[cfg(feature = "bench")]
    plain: bool,
}

enum Keys {
    WebCrypto {
        subtle: SubtleCrypto,
        content: CryptoKey,
        metadata: CryptoKey,
    },
    /// Boxed: the AES key schedules are much larger than three JS handles.
    AesGcm(Box<format::Keys>),
}

impl FileCipher {
    /// The cipher for the file `file_key` seals under `header`, on the
    /// [detected](Backend::detect) backend. Fails with `key_commitment_failed` if the
    /// header does not commit to the key.
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
        let keys = match backend {
            Backend::AesGcm => Keys::AesGcm(Box::new(file_key.derive(header)?)),
            Backend::WebCrypto => {
                let subtle = platform::subtle()
                    .map_err(|_| ClientError::Unsupported("crypto.subtle is missing".to_owned()))?;
                let raw = file_key.derive_bytes(header)?;
                let content = import_key(&subtle, &raw.content[..]).await?;
                let metadata = import_key(&subtle, &raw.metadata[..]).await?;
                Keys::WebCrypto {
                    subtle,
                    content,
                    metadata,
                }
            }
        };
        Ok(Self {
            header: *header,
            aad: Uint8Array::from(&header.encode()[..]),
            keys,
            #[cfg(feature = "bench")]
            plain: false,
        })
    }

    /// The same cipher in another global scope (a cipher worker, [`crate::offload`]),
    /// from what [`crypto_keys`](Self::crypto_keys) handed over: WebCrypto's keys are
    /// structured-cloneable even though they are not extractable, so no key byte
    /// leaves WebCrypto on the way.
    pub(crate) fn from_crypto_keys(
        header: Header,
        content: CryptoKey,
        metadata: CryptoKey,
    ) -> Result<Self, ClientError> {
        let subtle = platform::subtle()
            .map_err(|_| ClientError::Unsupported("crypto.subtle is missing".to_owned()))?;
        Ok(Self {
            header,
            aad: Uint8Array::from(&header.encode()[..]),
            keys: Keys::WebCrypto {
                subtle,
                content,
                metadata,
            },
            #[cfg(feature = "bench")]
            plain: false,
        })
    }

    /// Bench only (the `bench` feature, never in the published package): with `plain`,
    /// [`seal`](Self::seal) passes every record through unsealed, padded with
    /// [`TAG_LEN`] zero bytes so that the part sizes, the plan and the server's rules
    /// stay those of a sealed file: `npm run bench` measures what sealing costs the
    /// same uploader. The metadata is still sealed.
    #[cfg(feature = "bench")]
    pub(crate) fn plain_if(mut self, plain: bool) -> Self {
        self.plain = plain;
        self
    }

    /// Whether records pass through unsealed ([`plain_if`](Self::plain_if)).
    #[cfg(feature = "bench")]
    pub(crate) fn is_plain(&self) -> bool {
        self.plain
    }

    /// The header's bytes and the content and metadata keys, for
    /// [`from_crypto_keys`](Self::from_crypto_keys); `None` on the aes-gcm backend,
    /// whose keys live in this wasm instance only.
    pub(crate) fn crypto_keys(&self) -> Option<(&Uint8Array, &CryptoKey, &CryptoKey)> {
        match &self.keys {
            Keys::WebCrypto {
                content, metadata, ..
            } => Some((&self.aad, content, metadata)),
            Keys::AesGcm(_) => None,
        }
    }

    /// The file's header.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// Which backend this cipher runs on.
    pub(crate) fn backend(&self) -> Backend {
        match self.keys {
            Keys::WebCrypto { .. } => Backend::WebCrypto,
            Keys::AesGcm(_) => Backend::AesGcm,
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
        #[cfg(feature = "bench")]
        if self.plain {
            let record = Uint8Array::new_with_length(plaintext.length() + TAG_LEN as u32);
            record.set(plaintext, 0);
            return Ok(record);
        }
        match &self.keys {
            Keys::AesGcm(keys) => Ok(through_wasm(plaintext, |input, output| {
                let (index, last) = (position.index, position.last);
                seal_record_into(&keys.content, &self.header, index, last, input, output)
            })?),
            Keys::WebCrypto {
                subtle, content, ..
            } => encrypt(subtle, content, &self.params(position.nonce()), plaintext).await,
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
        match &self.keys {
            Keys::AesGcm(keys) => Ok(through_wasm(sealed, |input, output| {
                let (index, last) = (position.index, position.last);
                open_record_into(&keys.content, &self.header, index, last, input, output)
            })?),
            Keys::WebCrypto {
                subtle, content, ..
            } => {
                let at =
                    |p: RecordPosition| decrypt(subtle, content, self.params(p.nonce()), sealed);
                if let Some(plaintext) = at(position).await? {
                    return Ok(plaintext);
                }
                let refined = match position.refinement(&self.header, sealed_len) {
                    Some(other) => at(other).await?.is_some(),
                    None => false,
                };
                Err(position.open_failure(refined).into())
            }
        }
    }

    /// Seals the file's name and type under `nonce` (12 fresh random bytes), as §7 says.
    pub(crate) async fn seal_metadata(
        &self,
        nonce: [u8; METADATA_NONCE_LEN],
        metadata: &FileMetadata,
    ) -> Result<Vec<u8>, ClientError> {
        match &self.keys {
            Keys::AesGcm(keys) => Ok(seal_metadata(
                &keys.metadata,
                &self.header,
                nonce,
                metadata,
            )?),
            Keys::WebCrypto {
                subtle,
                metadata: key,
                ..
            } => {
                let plaintext = Uint8Array::from(&metadata_plaintext(metadata)?[..]);
                let sealed = encrypt(subtle, key, &self.params(nonce), &plaintext).await?;
                let mut out = nonce.to_vec();
                out.extend(sealed.to_vec());
                Ok(out)
            }
        }
    }

    /// Opens sealed metadata, with the checks and errors of §7.
    pub(crate) async fn open_metadata(&self, sealed: &[u8]) -> Result<FileMetadata, ClientError> {
        match &self.keys {
            Keys::AesGcm(keys) => Ok(open_metadata(&keys.metadata, &self.header, sealed)?),
            Keys::WebCrypto {
                subtle,
                metadata: key,
                ..
            } => {
                let (nonce, rest) = split_sealed_metadata(sealed)?;
                let rest = Uint8Array::from(rest);
                match decrypt(subtle, key, self.params(nonce), &rest).await? {
                    Some(plaintext) => Ok(parse_metadata_plaintext(&plaintext.to_vec())?),
                    None => Err(FormatError::MetadataAuthFailed.into()),
                }
            }
        }
    }

    /// `{name: "AES-GCM", iv: nonce, additionalData: header}` (tag 128 bits, WebCrypto's
    /// default and the format's `TAG_LEN`).
    fn params(&self, nonce: [u8; 12]) -> AesGcmParams {
        const _: () = assert!(TAG_LEN == 16);
        let params = AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(&nonce[..]));
        params.set_additional_data_u8_array(&self.aad);
        params
    }
}

/// WebCrypto's encrypt: ciphertext then tag.
async fn encrypt(
    subtle: &SubtleCrypto,
    key: &CryptoKey,
    params: &AesGcmParams,
    plaintext: &Uint8Array,
) -> Result<Uint8Array, ClientError> {
    let promise = subtle
        .encrypt_with_object_and_js_u8_array(params, key, plaintext)
        .map_err(|e| webcrypto_failed("encrypt", &e))?;
    let sealed = JsFuture::from(promise)
        .await
        .map_err(|e| webcrypto_failed("encrypt", &e))?;
    Ok(Uint8Array::new(&sealed))
}

/// WebCrypto's decrypt: `None` if the tag does not check (WebCrypto's `OperationError`).
async fn decrypt(
    subtle: &SubtleCrypto,
    key: &CryptoKey,
    params: AesGcmParams,
    sealed: &Uint8Array,
) -> Result<Option<Uint8Array>, ClientError> {
    let promise = subtle
        .decrypt_with_object_and_js_u8_array(&params, key, sealed)
        .map_err(|e| webcrypto_failed("decrypt", &e))?;
    match JsFuture::from(promise).await {
        Ok(plaintext) => Ok(Some(Uint8Array::new(&plaintext))),
        Err(e) if error_name(&e).as_deref() == Some("OperationError") => Ok(None),
        Err(e) => Err(webcrypto_failed("decrypt", &e)),
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
