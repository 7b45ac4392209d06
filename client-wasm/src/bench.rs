//! `BenchCipher`: the file cipher ([`FileCipher`]) exposed to `npm run bench`'s
//! encrypt-only entries, so they time the client's own WebCrypto and aes-gcm paths (the
//! same Rust, the same JS boundary) rather than a copy of them.
//!
//! Compiled only with the `bench` feature, by the bench-only crate bench/seal-wasm: the
//! published package has no bench hook.

use std::rc::Rc;

use js_sys::{Promise, Uint8Array};
use sealdrop_protocol::format::{FileKey, Header, RecordPosition};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::cipher::{Backend, FileCipher};
use crate::error::ClientError;
use crate::interop;

/// One file's cipher on a chosen backend.
#[wasm_bindgen]
pub struct BenchCipher {
    cipher: Rc<FileCipher>,
}

#[wasm_bindgen]
impl BenchCipher {
    /// Resolves to a cipher for a file with key `file_key` (32 bytes), `salt` (32 bytes)
    /// and records of `record_size` bytes, on `backend` (`"webcrypto"` or `"aes-gcm"`).
    pub async fn create(
        file_key: Vec<u8>,
        salt: Vec<u8>,
        record_size: u32,
        backend: String,
    ) -> Result<BenchCipher, JsValue> {
        let made = async {
            let bad = |what: &str| ClientError::InvalidOption(format!("{what} is 32 bytes"));
            let file_key = FileKey::from_bytes(file_key.try_into().map_err(|_| bad("the key"))?);
            let salt = salt.try_into().map_err(|_| bad("the salt"))?;
            let backend = Backend::from_name(&backend)
                .ok_or_else(|| ClientError::InvalidOption(format!("backend {backend:?}")))?;
            let header = Header::new(&file_key, record_size, salt)?;
            FileCipher::with_backend(&file_key, &header, backend).await
        };
        match made.await {
            Ok(cipher) => Ok(BenchCipher {
                cipher: Rc::new(cipher),
            }),
            Err(e) => Err(interop::error(&e)),
        }
    }

    /// The backend's name.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.cipher.backend().name().to_owned()
    }

    /// Seals `plaintext` (one whole record) as record `index`, not the last; resolves to
    /// the sealed record.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn seal(&self, index: u64, plaintext: Uint8Array) -> Promise {
        let cipher = Rc::clone(&self.cipher);
        future_to_promise(async move {
            match cipher
                .seal(RecordPosition::new(index, false), &plaintext)
                .await
            {
                Ok(sealed) => Ok(sealed.into()),
                Err(e) => Err(interop::error(&e)),
            }
        })
    }
}
