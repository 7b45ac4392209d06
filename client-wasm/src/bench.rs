//! What `npm run bench` needs beyond the product, so it times the client's own code
//! (the same Rust, the same JS boundary, the same workers) rather than a copy of it:
//!
//! - `BenchCipher`: the file cipher ([`FileCipher`]) on a chosen backend, for the
//!   encrypt-only entries;
//! - `benchPipeline`: the upload's read–seal pipeline with a sink that drops each part
//!   (no network), for the `pipeline` entry;
//! - two switches, read by [`crate::interop`] only in this build:
//!   `benchFixedConcurrency` (uploader and download options: `concurrency` in flight
//!   throughout, so sealdrop runs at the peers' fixed number) and `benchPlain`
//!   (uploader options: records sent unsealed, [`FileCipher::plain_if`]), for the
//!   entries that compare sealdrop with the peers and with itself.
//!
//! Compiled only with the `bench` feature, by the bench-only crate bench/seal-wasm: the
//! published package has none of it (tests/package.test.mjs checks).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Promise, Reflect, Uint8Array};
use sealdrop_protocol::backoff::Backoff;
use sealdrop_protocol::format::{DEFAULT_RECORD_SIZE, FileKey, Header, Layout, RecordPosition};
use sealdrop_protocol::plan::{PartPlan, ProviderLimits};
use sealdrop_protocol::scheduler::PartScheduler;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_sys::Blob;

use crate::cipher::{Backend, FileCipher};
use crate::error::ClientError;
use crate::interop;
use crate::offload::Pool;
use crate::platform;
use crate::progress::Reporter;
use crate::seal::Sealer;
use crate::transfer::{self, run_parts};

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

/// The whole upload pipeline without the network, for `npm run bench`'s `pipeline`
/// entry: a fresh key for `file`, the uploader's part plan (`part_size` sealed bytes per
/// part, S3's limits), its cipher workers (`workers`), scheduler and loop, with
/// `concurrency` parts in flight throughout; each part is read and sealed as an upload
/// seals it, and its sealed `Blob` is then dropped instead of sent. Resolves to
/// `{ parts, workers, backend }` once every part is sealed (the caller times it).
#[wasm_bindgen(js_name = benchPipeline)]
pub async fn bench_pipeline(
    file: Blob,
    part_size: u32,
    concurrency: u32,
    workers: u32,
) -> Result<JsValue, JsValue> {
    pipeline(file, part_size, concurrency, workers)
        .await
        .map_err(|e| interop::error(&e))
}

async fn pipeline(
    file: Blob,
    part_size: u32,
    concurrency: u32,
    workers: u32,
) -> Result<JsValue, ClientError> {
    let size = file.size() as u64;
    let mut key = [0u8; 32];
    let mut salt = [0u8; 32];
    platform::random_bytes(&mut key)?;
    platform::random_bytes(&mut salt)?;
    let key = FileKey::from_bytes(key);
    let header = Header::new(&key, DEFAULT_RECORD_SIZE, salt)?;
    let cipher = Rc::new(FileCipher::new(&key, &header).await?);
    let layout = Layout::for_plaintext(DEFAULT_RECORD_SIZE, size)?;
    let invalid = |e: &dyn std::fmt::Display| ClientError::InvalidOption(e.to_string());
    let plan = PartPlan::new(
        size,
        DEFAULT_RECORD_SIZE,
        Some(part_size.into()),
        &ProviderLimits::S3,
    )
    .map_err(|e| invalid(&e))?;
    let pool = Pool::start(workers, &cipher).await;
    let pool = pool.as_ref();
    let sealer = Sealer::new(file, cipher.clone(), layout, plan.clone());
    let pace = RefCell::new(transfer::pace(concurrency, true));
    let scheduler = PartScheduler::new(plan.part_count(), concurrency, Backoff::default(), [])
        .map_err(|e| invalid(&e))?;
    let scheduler = RefCell::new(scheduler);
    let mut reporter = Reporter::new(
        None,
        size,
        (plan.part_count(), plan.part_size()),
        concurrency,
        cipher.backend(),
    );
    reporter.start(platform::now_ms(), 0, 0);
    let reporter = RefCell::new(reporter);
    let plan = &plan;
    let sealer = &sealer;
    run_parts(
        &scheduler,
        &pace,
        &reporter,
        |part| async move { sealer.seal_part(part, pool).await.map(drop) },
        |part, ()| {
            let bytes = plan
                .plaintext_range_of_part(part)
                .map_or(0, |r| r.end - r.start);
            (String::new(), bytes)
        },
    )
    .await?;
    let done = Object::new();
    for (k, v) in [
        ("parts", plan.part_count().into()),
        ("workers", pool.map_or(0, Pool::size).into()),
        ("backend", cipher.backend().name().into()),
    ] {
        // Defining a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&done, &JsValue::from_str(k), &v);
    }
    Ok(done.into())
}
