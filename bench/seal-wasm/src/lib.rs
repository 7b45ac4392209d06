//! Bench only: seals records the way the client's uploader does (copy the plaintext
//! into wasm memory, `seal_record_into`, copy the sealed record out to a new JS array),
//! so `npm run bench` can time the format's software AES-GCM in wasm without a bench
//! hook in the product package.

use js_sys::Uint8Array;
use sealdrop_protocol::format::{ContentKey, FileKey, Header, seal_record_into};
use wasm_bindgen::prelude::*;

/// One file's content key and header, and the two buffers records pass through.
#[wasm_bindgen]
pub struct Sealer {
    key: ContentKey,
    header: Header,
    input: Vec<u8>,
    output: Vec<u8>,
}

#[wasm_bindgen]
impl Sealer {
    /// A sealer for a file with key `file_key` (32 bytes), `salt` (32 bytes) and
    /// records of `record_size` plaintext bytes.
    #[wasm_bindgen(constructor)]
    pub fn new(file_key: &[u8], salt: &[u8], record_size: u32) -> Result<Sealer, JsError> {
        let file_key = FileKey::from_bytes(
            file_key
                .try_into()
                .map_err(|_| JsError::new("the file key is 32 bytes"))?,
        );
        let salt = salt
            .try_into()
            .map_err(|_| JsError::new("the salt is 32 bytes"))?;
        let header = Header::new(record_size, salt).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Sealer {
            key: file_key.derive(&header).content,
            header,
            input: Vec::new(),
            output: Vec::new(),
        })
    }

    /// Seals `plaintext` as record `index` (not the last) and returns the sealed record.
    pub fn seal(&mut self, index: u64, plaintext: &Uint8Array) -> Result<Uint8Array, JsError> {
        self.input.resize(plaintext.length() as usize, 0);
        plaintext.copy_to(&mut self.input);
        self.output.clear();
        seal_record_into(
            &self.key,
            &self.header,
            index,
            false,
            &self.input,
            &mut self.output,
        )
        .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Uint8Array::from(&self.output[..]))
    }
}
