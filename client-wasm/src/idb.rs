//! The few IndexedDB calls the client makes, as futures: open the database, and get,
//! list, put and delete in single-store-or-two transactions.
//!
//! Each request and transaction is awaited through a `Promise` whose `resolve` and
//! `reject` are the request's own event handlers, so no Rust closure outlives its
//! request; the one closure (creating the stores on first open) lives until the open
//! has finished. Hand-written over web-sys rather than a wrapper crate: five calls do
//! not justify another async layer, and this stays usable in a dedicated worker (it
//! reads `indexedDB` from the global scope).
//!
//! The database `sealdrop`, version 2, has four stores (docs in [`crate::persist`]):
//! `keys` (the wrapping key), `uploads` (one record per unfinished upload, key path
//! `id`), `parts` (tag fingerprints, keyed `[uploadId, part]`) and, since version 2,
//! `downloads` (one record per unfinished download to a file, key path `id`,
//! [`crate::kept`]).

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    IdbDatabase, IdbKeyRange, IdbObjectStoreParameters, IdbOpenDbRequest, IdbRequest,
    IdbTransaction,
};

use crate::error::ClientError;
use crate::platform;

const NAME: &str = "sealdrop";
const VERSION: u32 = 2;
/// The wrapping key (one record).
pub(crate) const KEYS: &str = "keys";
/// One record per unfinished upload.
pub(crate) const UPLOADS: &str = "uploads";
/// Tag fingerprints of parts, keyed `[uploadId, part]`.
pub(crate) const PARTS: &str = "parts";
/// One record per unfinished download to a file.
pub(crate) const DOWNLOADS: &str = "downloads";

/// `readonly` or `readwrite`.
#[derive(Clone, Copy)]
enum Mode {
    Read,
    Write,
}

thread_local! {
    /// The connection, opened once per page or worker.
    static DB: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

/// An open connection to the `sealdrop` database.
#[derive(Clone)]
pub(crate) struct Db(IdbDatabase);

impl Db {
    /// Opens the database (once per page), creating its stores the first time.
    pub(crate) async fn open() -> Result<Db, ClientError> {
        if let Some(db) = DB.with(|d| d.borrow().clone()) {
            return Ok(Db(db));
        }
        let request = platform::indexed_db()?
            .open_with_u32(NAME, VERSION)
            .map_err(failed)?;
        let upgrade = {
            let request = request.clone();
            Closure::once(move || create_stores(&request))
        };
        request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let opened = settle(&request).await;
        request.set_onupgradeneeded(None);
        drop(upgrade);
        let db: IdbDatabase = opened?
            .dyn_into()
            .map_err(|_| ClientError::PersistFailed("IndexedDB opened no database".into()))?;
        DB.with(|d| *d.borrow_mut() = Some(db.clone()));
        Ok(Db(db))
    }

    /// The value under `key` in `store`, `undefined` if there is none.
    pub(crate) async fn get(&self, store: &str, key: &JsValue) -> Result<JsValue, ClientError> {
        let tx = self.tx(&[store], Mode::Read, false)?;
        let request = tx
            .object_store(store)
            .map_err(failed)?
            .get(key)
            .map_err(failed)?;
        settle(&request).await
    }

    /// Every value in `store` (within `range`, if given).
    pub(crate) async fn get_all(
        &self,
        store: &str,
        range: Option<&IdbKeyRange>,
    ) -> Result<Array, ClientError> {
        let tx = self.tx(&[store], Mode::Read, false)?;
        let os = tx.object_store(store).map_err(failed)?;
        let request = match range {
            Some(range) => os.get_all_with_key(range),
            None => os.get_all(),
        }
        .map_err(failed)?;
        Ok(settle(&request).await?.unchecked_into())
    }

    /// Writes `value` (under `key` for a store without a key path) and waits until
    /// the transaction committed; `durable` asks the browser to flush it to disk first
    /// (for what must survive a crash of the whole machine).
    pub(crate) async fn put(
        &self,
        store: &str,
        value: &JsValue,
        key: Option<&JsValue>,
        durable: bool,
    ) -> Result<(), ClientError> {
        let tx = self.tx(&[store], Mode::Write, durable)?;
        let os = tx.object_store(store).map_err(failed)?;
        match key {
            Some(key) => os.put_with_key(value, key),
            None => os.put(value),
        }
        .map_err(failed)?;
        committed(&tx).await
    }

    /// Adds `value` under `key` unless the key exists; answers whether it was added.
    pub(crate) async fn add(
        &self,
        store: &str,
        value: &JsValue,
        key: &JsValue,
    ) -> Result<bool, ClientError> {
        let tx = self.tx(&[store], Mode::Write, true)?;
        let request = tx
            .object_store(store)
            .map_err(failed)?
            .add_with_key(value, key)
            .map_err(failed)?;
        let added = settle(&request).await;
        match committed(&tx).await {
            Ok(()) => added.map(|_| true),
            // A ConstraintError aborts the transaction: the key was there already.
            Err(_)
                if request
                    .error()
                    .ok()
                    .flatten()
                    .is_some_and(|e| e.name() == "ConstraintError") =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes `key` (a key or a key range) from each named store, in one transaction.
    pub(crate) async fn delete(&self, deletions: &[(&str, &JsValue)]) -> Result<(), ClientError> {
        let stores: Vec<&str> = deletions.iter().map(|(s, _)| *s).collect();
        let tx = self.tx(&stores, Mode::Write, false)?;
        for (store, key) in deletions {
            tx.object_store(store)
                .map_err(failed)?
                .delete(key)
                .map_err(failed)?;
        }
        committed(&tx).await
    }

    /// `db.transaction(stores, mode, { durability })`, called through `Reflect`:
    /// web-sys has the options only behind its unstable-API flag.
    fn tx(
        &self,
        stores: &[&str],
        mode: Mode,
        durable: bool,
    ) -> Result<IdbTransaction, ClientError> {
        let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        let mode = match mode {
            Mode::Read => "readonly",
            Mode::Write => "readwrite",
        };
        let options = Object::new();
        let durability = if durable { "strict" } else { "default" };
        let _ = Reflect::set(&options, &"durability".into(), &durability.into());
        let transaction: Function = Reflect::get(&self.0, &"transaction".into())
            .and_then(|f| f.dyn_into())
            .map_err(failed)?;
        transaction
            .call3(&self.0, &names, &mode.into(), &options)
            .map_err(failed)?
            .dyn_into()
            .map_err(|_| ClientError::PersistFailed("IndexedDB gave no transaction".into()))
    }
}

/// Creates the stores (in the `upgradeneeded` event of the first open, or of the first
/// open by a newer version: a store that exists already is kept as it is).
fn create_stores(request: &IdbOpenDbRequest) {
    let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) else {
        return;
    };
    let by_id = IdbObjectStoreParameters::new();
    by_id.set_key_path(&JsValue::from_str("id"));
    // `objectStoreNames` (a DOMStringList) as an array: one web-sys feature fewer.
    let names = Reflect::get(&db, &"objectStoreNames".into())
        .map(|names| Array::from(&names))
        .unwrap_or_default();
    let missing = |name: &str| !names.includes(&JsValue::from_str(name), 0);
    // Errors here abort the upgrade, and the open then fails with them.
    if missing(KEYS) {
        let _ = db.create_object_store(KEYS);
    }
    if missing(UPLOADS) {
        let _ = db.create_object_store_with_optional_parameters(UPLOADS, &by_id);
    }
    if missing(PARTS) {
        let _ = db.create_object_store(PARTS);
    }
    if missing(DOWNLOADS) {
        let _ = db.create_object_store_with_optional_parameters(DOWNLOADS, &by_id);
    }
}

/// The result of a request, once it succeeded.
async fn settle(request: &IdbRequest) -> Result<JsValue, ClientError> {
    let promise = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result().map_err(failed),
        Err(_) => Err(request_error(request)),
    }
}

/// Waits until `tx` committed.
async fn committed(tx: &IdbTransaction) -> Result<(), ClientError> {
    let promise = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    let outcome = JsFuture::from(promise).await;
    tx.set_oncomplete(None);
    tx.set_onerror(None);
    tx.set_onabort(None);
    outcome.map(|_| ()).map_err(|_| {
        let detail = tx.error().map_or_else(
            || "the transaction was aborted".into(),
            |e| format!("{}: {}", e.name(), e.message()),
        );
        ClientError::PersistFailed(format!("IndexedDB: {detail}"))
    })
}

fn request_error(request: &IdbRequest) -> ClientError {
    let detail = match request.error() {
        Ok(Some(e)) => format!("{}: {}", e.name(), e.message()),
        _ => "a request failed".into(),
    };
    ClientError::PersistFailed(format!("IndexedDB: {detail}"))
}

fn failed(error: JsValue) -> ClientError {
    ClientError::PersistFailed(format!("IndexedDB: {}", platform::describe(&error)))
}

/// The key range of every `[id, part]` key of one upload.
pub(crate) fn parts_of(id: &str) -> Result<IdbKeyRange, ClientError> {
    let lower: Array = [JsValue::from_str(id), JsValue::from(0)]
        .into_iter()
        .collect();
    let upper: Array = [JsValue::from_str(id), JsValue::from(f64::from(u32::MAX))]
        .into_iter()
        .collect();
    IdbKeyRange::bound(&lower, &upper).map_err(failed)
}

/// The key `[id, part]`.
pub(crate) fn part_key(id: &str, part: u32) -> JsValue {
    let key: Array = [JsValue::from_str(id), JsValue::from(part)]
        .into_iter()
        .collect();
    key.into()
}
