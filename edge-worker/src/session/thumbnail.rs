//! A file's sealed thumbnail (docs/FORMAT.md §10), kept in a table of its own beside
//! the session's rows: one row, written by the owner, read by the file's room members,
//! gone with the session's storage when the file is deleted.

use sealdrop_protocol::api_error::ApiError;
use worker::{SqlStorage, SqlStorageValue};

use crate::http::OrApiError as _;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS thumbnail (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL
)";

/// Keeps `sealed` (its length checked by the caller), replacing any earlier one.
pub(crate) fn save(sql: &SqlStorage, sealed: &[u8]) -> Result<(), ApiError> {
    sql.exec(SCHEMA, None)
        .or_internal("making the thumbnail table")?;
    sql.exec(
        "INSERT OR REPLACE INTO thumbnail (id, sealed) VALUES (1, ?)",
        Some(vec![SqlStorageValue::Blob(sealed.to_vec())]),
    )
    .or_internal("saving the thumbnail")?;
    Ok(())
}

/// The sealed thumbnail, if the owner stored one.
pub(crate) fn load(sql: &SqlStorage) -> Result<Option<Vec<u8>>, ApiError> {
    sql.exec(SCHEMA, None)
        .or_internal("making the thumbnail table")?;
    let cursor = sql
        .exec("SELECT sealed FROM thumbnail", None)
        .or_internal("reading the thumbnail")?;
    for row in cursor.raw() {
        let row: Vec<SqlStorageValue> = row.or_internal("reading the thumbnail")?;
        if let [SqlStorageValue::Blob(sealed)] = &row[..] {
            return Ok(Some(sealed.clone()));
        }
    }
    Ok(None)
}
