//! Which room an upload belongs to, kept in a table of its own beside the session's
//! rows (the session machine knows nothing of rooms): one row, written at create.

use sealdrop_protocol::api_error::ApiError;
use serde::{Deserialize, Serialize};
use worker::{SqlStorage, SqlStorageValue};

use crate::http::OrApiError as _;

/// The room an upload was created into, and by whom (the JWT's `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RoomTie {
    pub room_id: String,
    pub user_id: String,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS room_tie (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL
)";

/// Records the tie (at create, in the same output gate as the session's rows).
pub(crate) fn save(sql: &SqlStorage, tie: &RoomTie) -> Result<(), ApiError> {
    sql.exec(SCHEMA, None)
        .or_internal("making the room tie table")?;
    sql.exec(
        "INSERT OR REPLACE INTO room_tie (id, room_id, user_id) VALUES (1, ?, ?)",
        Some(vec![
            tie.room_id.as_str().into(),
            tie.user_id.as_str().into(),
        ]),
    )
    .or_internal("saving the room tie")?;
    Ok(())
}

/// The tie, if the upload was created into a room.
pub(crate) fn load(sql: &SqlStorage) -> Result<Option<RoomTie>, ApiError> {
    sql.exec(SCHEMA, None)
        .or_internal("making the room tie table")?;
    let cursor = sql
        .exec("SELECT room_id, user_id FROM room_tie", None)
        .or_internal("reading the room tie")?;
    for row in cursor.raw() {
        let row: Vec<SqlStorageValue> = row.or_internal("reading the room tie")?;
        if let [
            SqlStorageValue::String(room_id),
            SqlStorageValue::String(user_id),
        ] = &row[..]
        {
            return Ok(Some(RoomTie {
                room_id: room_id.clone(),
                user_id: user_id.clone(),
            }));
        }
    }
    Ok(None)
}
