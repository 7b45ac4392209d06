//! The `Account` Durable Object: see the module above.

use std::cell::RefCell;
use std::collections::BTreeMap;

use sealdrop_protocol::account::{Account as Rules, Bucket, PENDING_TTL_MS, Reservation};
use sealdrop_protocol::api_error::ApiError;
use worker::{
    Date, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State, durable_object,
};

use super::FileBytes;
use crate::config::Config;
use crate::http::{OrApiError as _, empty, internal, respond};
use crate::sql::{int, text, to_i64, uint};

/// The layout of the tables below.
const SCHEMA_VERSION: i64 = 1;

/// One account.
#[durable_object]
pub struct Account {
    state: State,
    env: Env,
    /// The account as last read from or written to SQLite.
    cache: RefCell<Option<Rules>>,
}

impl DurableObject for Account {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            cache: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.json::<FileBytes>().await {
            Ok(call) => self.handle(&req.path(), call),
            Err(e) => Err(internal("reading an account call", e)),
        };
        respond(result)
    }
}

impl Account {
    /// One call; every call is synchronous here, so each is atomic.
    fn handle(&self, path: &str, call: FileBytes) -> Result<Response, ApiError> {
        let config = Config::from_env(&self.env)?;
        let limits = config.account_limits;
        let now = Date::now().as_millis();
        let store = Store(self.state.storage().sql());
        let mut cache = self.cache.borrow_mut();
        if cache.is_none() {
            *cache = Some(store.load()?.unwrap_or_else(|| Rules::new(&limits, now)));
        }
        let Some(account) = cache.as_mut() else {
            return Err(ApiError::internal());
        };
        let answer = match path {
            "/reserve" => account.reserve(&call.file_id, call.bytes, &limits, now),
            "/confirm" => {
                account.confirm(&call.file_id);
                Ok(())
            }
            "/release" => {
                account.release(&call.file_id);
                Ok(())
            }
            _ => Err(ApiError::not_found()),
        };
        // Every call may have refilled the bucket or dropped lapsed reservations.
        if let Err(e) = store.save(account, &call.file_id, now) {
            *cache = None;
            return Err(e);
        }
        answer?;
        empty(204)
    }
}

/// The account's SQLite tables.
struct Store(SqlStorage);

impl Store {
    fn load(&self) -> Result<Option<Rules>, ApiError> {
        let ctx = "loading an account";
        let tables = self
            .0
            .exec(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'bucket'",
                None,
            )
            .or_internal(ctx)?
            .raw()
            .count();
        if tables == 0 {
            return Ok(None);
        }
        let row = self
            .0
            .exec(
                "SELECT schema_version, millitokens, updated_at FROM bucket",
                None,
            )
            .or_internal(ctx)?
            .raw()
            .next()
            .transpose()
            .or_internal(ctx)?
            .ok_or_else(|| internal(ctx, "no bucket row"))?;
        let [version, millitokens, updated_at] =
            <[SqlStorageValue; 3]>::try_from(row).map_err(|_| internal(ctx, "a row's width"))?;
        if int(version).map_err(|e| internal(ctx, e))? != SCHEMA_VERSION {
            return Err(internal(ctx, "another schema version"));
        }
        let bucket = Bucket {
            millitokens: uint(millitokens).map_err(|e| internal(ctx, e))?,
            updated_at: uint(updated_at).map_err(|e| internal(ctx, e))?,
        };
        let mut reservations = BTreeMap::new();
        let rows = self
            .0
            .exec(
                "SELECT file_id, bytes, confirmed, reserved_at FROM reservations",
                None,
            )
            .or_internal(ctx)?
            .raw();
        for row in rows {
            let row = row.or_internal(ctx)?;
            let [file, bytes, confirmed, at] = <[SqlStorageValue; 4]>::try_from(row)
                .map_err(|_| internal(ctx, "a row's width"))?;
            let reservation = Reservation {
                bytes: uint(bytes).map_err(|e| internal(ctx, e))?,
                confirmed: uint(confirmed).map_err(|e| internal(ctx, e))? != 0,
                reserved_at: uint(at).map_err(|e| internal(ctx, e))?,
            };
            reservations.insert(text(file).map_err(|e| internal(ctx, e))?, reservation);
        }
        Ok(Some(Rules {
            reservations,
            bucket,
        }))
    }

    /// Writes what a call on `file` can change: the bucket, that file's row, and the
    /// pending reservations that lapsed (the rule of `Account::settle`, in SQL).
    fn save(&self, account: &Rules, file: &str, now_ms: u64) -> Result<(), ApiError> {
        let ctx = "saving an account";
        let i = |n: u64| to_i64(n).map_err(|e| internal(ctx, e));
        for sql in [
            "CREATE TABLE IF NOT EXISTS bucket (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                schema_version INTEGER NOT NULL,
                millitokens INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS reservations (
                file_id TEXT PRIMARY KEY,
                bytes INTEGER NOT NULL,
                confirmed INTEGER NOT NULL,
                reserved_at INTEGER NOT NULL
            )",
        ] {
            self.0.exec(sql, None).or_internal(ctx)?;
        }
        self.0
            .exec(
                "INSERT OR REPLACE INTO bucket (id, schema_version, millitokens, updated_at) \
                 VALUES (1, ?, ?, ?)",
                vec![
                    SCHEMA_VERSION.into(),
                    i(account.bucket.millitokens)?.into(),
                    i(account.bucket.updated_at)?.into(),
                ],
            )
            .or_internal(ctx)?;
        let lapsed_before = i(now_ms.saturating_sub(PENDING_TTL_MS))?;
        self.0
            .exec(
                "DELETE FROM reservations WHERE confirmed = 0 AND reserved_at <= ?",
                vec![lapsed_before.into()],
            )
            .or_internal(ctx)?;
        match account.reservations.get(file) {
            Some(r) => self.0.exec(
                "INSERT OR REPLACE INTO reservations (file_id, bytes, confirmed, reserved_at) \
                 VALUES (?, ?, ?, ?)",
                vec![
                    file.to_owned().into(),
                    i(r.bytes)?.into(),
                    i64::from(r.confirmed).into(),
                    i(r.reserved_at)?.into(),
                ],
            ),
            None => self.0.exec(
                "DELETE FROM reservations WHERE file_id = ?",
                vec![file.to_owned().into()],
            ),
        }
        .or_internal(ctx)?;
        Ok(())
    }
}
