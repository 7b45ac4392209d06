//! How an upload session is kept in its Durable Object's SQLite storage.
//!
//! Two tables: `session`, one row holding the session without its parts (the protocol
//! session as JSON, plus the header, the sealed metadata and storage's upload id), and
//! `parts`, one row per confirmed part. Recording a part writes only its own row, so
//! the 10,000th part of an upload costs what the first did; state changes (complete,
//! abort) rewrite the session row. Nothing secret is stored: the owner token only as
//! its SHA-256, the header and metadata are public to whoever has the link anyway and
//! the metadata is sealed.
//!
//! SQLite calls are synchronous in a Durable Object, so a write here and the matching
//! change to the cached session happen with no other request in between.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::session::{StoredPart, UploadSession as Session};
use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use crate::http::OrApiError as _;

/// A session as stored: the protocol session plus what only the file record needs.
#[derive(Debug, Clone)]
pub(crate) struct StoredSession {
    /// The rules' state: plan, parts, state, expiry, owner-token hash.
    pub session: Session,
    /// The 76-byte header.
    pub header: Vec<u8>,
    /// The sealed metadata.
    pub metadata: Vec<u8>,
    /// Storage's id for the multipart upload.
    pub upload_id: String,
}

/// The session's SQLite storage.
pub(crate) struct SessionStore {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct PartRow {
    part_number: u32,
    etag: String,
    size: u64,
}

impl SessionStore {
    /// The store over a Durable Object's SQL storage.
    pub fn new(sql: SqlStorage) -> Self {
        Self { sql }
    }

    /// Whether a session was ever created here. Reads only: probing an unknown file id
    /// leaves no storage behind.
    pub fn exists(&self) -> Result<bool, ApiError> {
        let rows = self
            .sql
            .exec(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'session'",
                None,
            )
            .or_internal("looking for the session table")?
            .raw()
            .count();
        if rows == 0 {
            return Ok(false);
        }
        let count = self
            .sql
            .exec("SELECT 1 FROM session", None)
            .or_internal("looking for the session row")?
            .raw()
            .count();
        Ok(count > 0)
    }

    /// Creates the tables and the session row of a new session.
    pub fn create(&self, stored: &StoredSession) -> Result<(), ApiError> {
        let ctx = "creating the session";
        self.sql
            .exec(
                "CREATE TABLE IF NOT EXISTS session (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    session TEXT NOT NULL,
                    header BLOB NOT NULL,
                    metadata BLOB NOT NULL,
                    upload_id TEXT NOT NULL
                )",
                None,
            )
            .or_internal(ctx)?;
        self.sql
            .exec(
                "CREATE TABLE IF NOT EXISTS parts (
                    part_number INTEGER PRIMARY KEY,
                    etag TEXT NOT NULL,
                    size INTEGER NOT NULL
                )",
                None,
            )
            .or_internal(ctx)?;
        self.sql
            .exec(
                "INSERT INTO session (id, session, header, metadata, upload_id)
                 VALUES (1, ?, ?, ?, ?)",
                vec![
                    session_json(&stored.session)?.into(),
                    SqlStorageValue::Blob(stored.header.clone()),
                    SqlStorageValue::Blob(stored.metadata.clone()),
                    stored.upload_id.clone().into(),
                ],
            )
            .or_internal(ctx)?;
        Ok(())
    }

    /// Loads the session with its parts, or `None` if none was created here.
    pub fn load(&self) -> Result<Option<StoredSession>, ApiError> {
        if !self.exists()? {
            return Ok(None);
        }
        let ctx = "loading the session";
        let row = self
            .sql
            .exec(
                "SELECT session, header, metadata, upload_id FROM session WHERE id = 1",
                None,
            )
            .or_internal(ctx)?
            .raw()
            .next()
            .transpose()
            .or_internal(ctx)?;
        let Some([session, header, metadata, upload_id]) =
            row.and_then(|r| <[SqlStorageValue; 4]>::try_from(r).ok())
        else {
            return Err(crate::http::internal(ctx, "malformed session row"));
        };
        let (
            SqlStorageValue::String(session),
            SqlStorageValue::Blob(header),
            SqlStorageValue::Blob(metadata),
            SqlStorageValue::String(upload_id),
        ) = (session, header, metadata, upload_id)
        else {
            return Err(crate::http::internal(ctx, "session row of the wrong types"));
        };
        let session: Session = serde_json::from_str(&session).or_internal(ctx)?;
        let parts: Vec<PartRow> = self
            .sql
            .exec("SELECT part_number, etag, size FROM parts", None)
            .or_internal(ctx)?
            .to_array()
            .or_internal(ctx)?;
        let session = session
            .with_parts(parts.into_iter().map(|p| {
                let stored = StoredPart {
                    etag: p.etag,
                    size: p.size,
                };
                (p.part_number, stored)
            }))
            .or_internal(ctx)?;
        Ok(Some(StoredSession {
            session,
            header,
            metadata,
            upload_id,
        }))
    }

    /// Writes (or replaces) one part's row.
    pub fn put_part(&self, part_number: u32, part: &StoredPart) -> Result<(), ApiError> {
        let size = i64::try_from(part.size).or_internal("recording a part")?;
        self.sql
            .exec(
                "INSERT OR REPLACE INTO parts (part_number, etag, size) VALUES (?, ?, ?)",
                vec![
                    i64::from(part_number).into(),
                    part.etag.clone().into(),
                    size.into(),
                ],
            )
            .or_internal("recording a part")?;
        Ok(())
    }

    /// Rewrites the session row after a state change; drops the part rows when the
    /// session no longer has parts (aborted).
    pub fn update_session(&self, session: &Session) -> Result<(), ApiError> {
        let ctx = "updating the session";
        self.sql
            .exec(
                "UPDATE session SET session = ? WHERE id = 1",
                vec![session_json(session)?.into()],
            )
            .or_internal(ctx)?;
        if session.parts().is_empty() {
            self.sql.exec("DELETE FROM parts", None).or_internal(ctx)?;
        }
        Ok(())
    }
}

/// The session row's JSON: the protocol session without its parts.
fn session_json(session: &Session) -> Result<String, ApiError> {
    serde_json::to_string(&session.without_parts()).or_internal("serializing the session")
}
