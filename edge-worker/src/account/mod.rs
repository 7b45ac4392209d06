//! Accounts: the `Account` Durable Object (binding `ACCOUNTS`), one per user or
//! anonymous client, holding its quota reservations and create bucket; and the calls
//! to it. The rules are `protocol::account`'s; the object loads, feeds the clock,
//! persists.
//!
//! Storage: `bucket`, one row (schema version, millitokens, refill time);
//! `reservations`, one row per file (a keyed hash of its id, bytes, whether confirmed,
//! when). No user id, no address, no file id: the object's name and the reservation
//! keys are keyed hashes (`account_name`, `reservation_key`).

// `#[durable_object]` generates undocumented `pub` wasm-bindgen glue.
#[allow(missing_docs)]
pub(crate) mod object;

use sealdrop_protocol::account::reservation_key;
use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::token::BlobSigner;
use serde::{Deserialize, Serialize};
use worker::Env;

use crate::internal::ObjectStub;

/// The `wrangler.toml` binding of the namespace.
const BINDING: &str = "ACCOUNTS";

/// Body of every account call: the file's reservation key and, for a reservation,
/// its bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileBytes {
    pub file_id: String,
    #[serde(default)]
    pub bytes: u64,
}

/// The session's handle on one account.
pub(crate) struct AccountStub {
    stub: ObjectStub,
    signer: BlobSigner,
}

impl AccountStub {
    /// The account named `name` (an `account_name`); `signer` keys the reservations.
    pub fn get(env: &Env, name: &str, signer: &BlobSigner) -> Result<Self, ApiError> {
        let stub = ObjectStub::get(env, BINDING, name, "calling an account")?;
        Ok(Self {
            stub,
            signer: signer.clone(),
        })
    }

    /// Reserves `bytes` for `file_id` (`403 quota_exceeded`, `429 rate_limited`).
    pub async fn reserve(&self, file_id: &FileId, bytes: u64) -> Result<(), ApiError> {
        self.call("/reserve", file_id, bytes).await
    }

    /// Confirms the reservation of `file_id`: its session exists.
    pub async fn confirm(&self, file_id: &FileId) -> Result<(), ApiError> {
        self.call("/confirm", file_id, 0).await
    }

    /// Releases the bytes of `file_id` (idempotent).
    pub async fn release(&self, file_id: &FileId) -> Result<(), ApiError> {
        self.call("/release", file_id, 0).await
    }

    async fn call(&self, path: &str, file_id: &FileId, bytes: u64) -> Result<(), ApiError> {
        let body = FileBytes {
            file_id: reservation_key(self.signer.server_mac(), file_id.as_str()),
            bytes,
        };
        self.stub.json::<_, ()>(path, &body).await
    }
}
