//! How a share is kept in its object's SQLite storage (schema [`SCHEMA_VERSION`]):
//!
//! - `share`: one row: the file's public record (JSON), the settings (the password
//!   only as its salted hash), the counters, the wrong-password bucket, the digest of
//!   the idempotent create that made it;
//! - `downloads`: one row per download the share remembers;
//! - `records`: the access records, by sequence number, each of a kind (`download`,
//!   `visit`); the newest of each kind are kept (`RecordKind::cap`), trimmed by
//!   sequence here, so a flood of visits never deletes a download's record. A record
//!   holds a time, an outcome, a country code and a user-agent family: never an
//!   address, a user-agent string, a verifier or a key.
//!
//! A call writes the share row, the downloads it changed and the records it added.

use std::collections::BTreeMap;

use sealdrop_protocol::account::Bucket;
use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::share::{
    AccessLog, AccessRecord, ClientInfo, Download, DownloadState, Outcome, RecordKind, Settings,
    Share,
};
use worker::{SqlStorage, SqlStorageValue};

use super::FileInfo;
use crate::http::{OrApiError as _, internal};
use crate::sql::{blob, int, nullable, opt_text, opt_uint, text, to_i64, uint};

/// The layout of the tables below.
const SCHEMA_VERSION: i64 = 2;

/// A share and what it keeps of its file.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub file: FileInfo,
    pub share: Share,
}

/// The share's SQLite storage.
pub(crate) struct ShareStore {
    sql: SqlStorage,
}

const CTX: &str = "share storage";

fn err(e: impl std::fmt::Display) -> ApiError {
    internal(CTX, e)
}

/// A 32-byte hash (a verifier's, a request's digest) or NULL.
fn hash(v: SqlStorageValue) -> Result<Option<[u8; 32]>, ApiError> {
    match v {
        SqlStorageValue::Null => Ok(None),
        v => <[u8; 32]>::try_from(blob(v).map_err(err)?)
            .map(Some)
            .map_err(|_| err("a hash that is not 32 bytes")),
    }
}

impl ShareStore {
    pub fn new(sql: SqlStorage) -> Self {
        Self { sql }
    }

    fn exec(
        &self,
        query: &str,
        values: Vec<SqlStorageValue>,
    ) -> Result<Vec<Vec<SqlStorageValue>>, ApiError> {
        let values = (!values.is_empty()).then_some(values);
        self.sql
            .exec(query, values)
            .or_internal(CTX)?
            .raw()
            .map(|row| row.or_internal(CTX))
            .collect()
    }

    /// Whether a share was made here (reads only).
    pub fn exists(&self) -> Result<bool, ApiError> {
        let tables = self.exec(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'share'",
            vec![],
        )?;
        Ok(!tables.is_empty())
    }

    /// Makes the tables and the share row.
    pub fn create(&self, stored: &Stored) -> Result<(), ApiError> {
        // Every value is converted before anything is written, so a value storage
        // cannot hold leaves no half-made share behind.
        let file = serde_json::to_string(&stored.file).map_err(err)?;
        let s = &stored.share;
        let optional_blob = |b: Option<[u8; 32]>| match b {
            Some(b) => SqlStorageValue::Blob(b.to_vec()),
            None => SqlStorageValue::Null,
        };
        let values = vec![
            SCHEMA_VERSION.into(),
            file.into(),
            to_i64(s.created_at).map_err(err)?.into(),
            nullable(s.settings.expires_at).map_err(err)?,
            nullable(s.settings.download_limit.map(u64::from)).map_err(err)?,
            optional_blob(s.settings.verifier_hash),
            to_i64(s.attempts.millitokens).map_err(err)?.into(),
            to_i64(s.attempts.updated_at).map_err(err)?.into(),
            optional_blob(s.request_digest),
        ];
        for table in [
            "CREATE TABLE share (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                schema_version INTEGER NOT NULL,
                file TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER,
                download_limit INTEGER,
                verifier_hash BLOB,
                revoked_at INTEGER,
                counted INTEGER NOT NULL,
                failed_attempts INTEGER NOT NULL,
                bucket_millitokens INTEGER NOT NULL,
                bucket_updated_at INTEGER NOT NULL,
                request_digest BLOB
            )",
            "CREATE TABLE downloads (
                id TEXT PRIMARY KEY,
                opened_at INTEGER NOT NULL,
                lease_until INTEGER NOT NULL,
                counted INTEGER NOT NULL,
                state TEXT NOT NULL,
                closed_at INTEGER
            )",
            "CREATE TABLE records (
                seq INTEGER PRIMARY KEY,
                kind TEXT NOT NULL,
                at INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                country TEXT,
                agent TEXT
            )",
            "CREATE INDEX records_by_kind ON records (kind, seq)",
        ] {
            self.exec(table, vec![])?;
        }
        self.exec(
            "INSERT INTO share (id, schema_version, file, created_at, expires_at, download_limit, \
             verifier_hash, revoked_at, counted, failed_attempts, bucket_millitokens, \
             bucket_updated_at, request_digest) VALUES (1, ?, ?, ?, ?, ?, ?, NULL, 0, 0, ?, ?, ?)",
            values,
        )?;
        Ok(())
    }

    /// The share, or `None` if none was made here (or it was purged).
    pub fn load(&self) -> Result<Option<Stored>, ApiError> {
        if !self.exists()? {
            return Ok(None);
        }
        // The version first, alone: another layout's columns differ, and its share
        // must get this precise refusal, not whatever SQLite says of a missing column.
        // (Layout 1, before access records had kinds and creations had keys, was never
        // deployed; only local development state can hold it.)
        let version = self
            .exec("SELECT schema_version FROM share", vec![])?
            .pop()
            .and_then(|row| row.into_iter().next())
            .ok_or_else(|| err("no share row"))?;
        let version = int(version).map_err(err)?;
        if version != SCHEMA_VERSION {
            return Err(err(format!(
                "schema version {version}, not {SCHEMA_VERSION}: a share stored by an older \
                 development build (delete the local state, .wrangler/state)"
            )));
        }
        let mut rows = self.exec(
            "SELECT file, created_at, expires_at, download_limit, verifier_hash, revoked_at, \
             counted, failed_attempts, bucket_millitokens, bucket_updated_at, request_digest \
             FROM share",
            vec![],
        )?;
        let row = rows.pop().ok_or_else(|| err("no share row"))?;
        let mut v = row.into_iter();
        let mut next = || v.next().ok_or_else(|| err("a column is missing"));
        let file: FileInfo = serde_json::from_str(&text(next()?).map_err(err)?).map_err(err)?;
        let created_at = uint(next()?).map_err(err)?;
        let expires_at = opt_uint(next()?).map_err(err)?;
        let download_limit = opt_uint(next()?)
            .map_err(err)?
            .map(u32::try_from)
            .transpose()
            .map_err(err)?;
        let verifier_hash = hash(next()?)?;
        let mut share = Share::new(
            Settings {
                expires_at,
                download_limit,
                verifier_hash,
            },
            created_at,
        );
        share.revoked_at = opt_uint(next()?).map_err(err)?;
        share.counted = uint(next()?).map_err(err)?;
        share.failed_attempts = uint(next()?).map_err(err)?;
        share.attempts = Bucket {
            millitokens: uint(next()?).map_err(err)?,
            updated_at: uint(next()?).map_err(err)?,
        };
        share.request_digest = hash(next()?)?;
        share.downloads = self.downloads()?;
        share.log = self.records()?;
        Ok(Some(Stored { file, share }))
    }

    fn downloads(&self) -> Result<BTreeMap<String, Download>, ApiError> {
        let rows = self.exec(
            "SELECT id, opened_at, lease_until, counted, state, closed_at FROM downloads",
            vec![],
        )?;
        let mut downloads = BTreeMap::new();
        for row in rows {
            let [id, opened, lease, counted, state, closed] =
                <[SqlStorageValue; 6]>::try_from(row).map_err(|_| err("a row's width"))?;
            let closed_at = opt_uint(closed).map_err(err)?.unwrap_or(0);
            let state = match text(state).map_err(err)?.as_str() {
                "active" => DownloadState::Active,
                "completed" => DownloadState::Completed(closed_at),
                "abandoned" => DownloadState::Abandoned(closed_at),
                other => return Err(err(format!("a download state {other:?}"))),
            };
            let download = Download {
                opened_at: uint(opened).map_err(err)?,
                lease_until: uint(lease).map_err(err)?,
                counted: uint(counted).map_err(err)? != 0,
                state,
            };
            downloads.insert(text(id).map_err(err)?, download);
        }
        Ok(downloads)
    }

    fn records(&self) -> Result<AccessLog, ApiError> {
        let rows = self.exec(
            "SELECT seq, kind, at, outcome, country, agent FROM records ORDER BY seq",
            vec![],
        )?;
        let records = rows
            .into_iter()
            .map(|row| {
                let [seq, kind, at, outcome, country, agent] =
                    <[SqlStorageValue; 6]>::try_from(row).map_err(|_| err("a row's width"))?;
                let kind = text(kind).map_err(err)?;
                let outcome = text(outcome).map_err(err)?;
                let client = opt_text(agent).map_err(err)?.map(|agent| {
                    ClientInfo::stored(opt_text(country.clone()).ok().flatten(), &agent)
                });
                Ok(AccessRecord {
                    seq: uint(seq).map_err(err)?,
                    kind: RecordKind::parse(&kind)
                        .ok_or_else(|| err(format!("a record kind {kind:?}")))?,
                    at: uint(at).map_err(err)?,
                    outcome: Outcome::parse(&outcome)
                        .ok_or_else(|| err(format!("an outcome {outcome:?}")))?,
                    client,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(AccessLog::restore(records))
    }

    /// Writes what changed: the share row, the downloads marked dirty, the records
    /// added (then drops the records of their kinds past the newest each keeps).
    pub fn save(&self, share: &mut Share) -> Result<(), ApiError> {
        self.exec(
            "UPDATE share SET expires_at = ?, download_limit = ?, revoked_at = ?, counted = ?, \
             failed_attempts = ?, bucket_millitokens = ?, bucket_updated_at = ?",
            vec![
                nullable(share.settings.expires_at).map_err(err)?,
                nullable(share.settings.download_limit.map(u64::from)).map_err(err)?,
                nullable(share.revoked_at).map_err(err)?,
                to_i64(share.counted).map_err(err)?.into(),
                to_i64(share.failed_attempts).map_err(err)?.into(),
                to_i64(share.attempts.millitokens).map_err(err)?.into(),
                to_i64(share.attempts.updated_at).map_err(err)?.into(),
            ],
        )?;
        for id in std::mem::take(&mut share.dirty) {
            match share.downloads.get(&id) {
                Some(d) => {
                    let (state, closed_at) = match d.state {
                        DownloadState::Active => ("active", None),
                        DownloadState::Completed(at) => ("completed", Some(at)),
                        DownloadState::Abandoned(at) => ("abandoned", Some(at)),
                    };
                    self.exec(
                        "INSERT OR REPLACE INTO downloads \
                         (id, opened_at, lease_until, counted, state, closed_at) \
                         VALUES (?, ?, ?, ?, ?, ?)",
                        vec![
                            id.into(),
                            to_i64(d.opened_at).map_err(err)?.into(),
                            to_i64(d.lease_until).map_err(err)?.into(),
                            i64::from(d.counted).into(),
                            state.into(),
                            nullable(closed_at).map_err(err)?,
                        ],
                    )?;
                }
                None => {
                    self.exec("DELETE FROM downloads WHERE id = ?", vec![id.into()])?;
                }
            }
        }
        let mut added: Vec<RecordKind> = Vec::new();
        for r in share.log.unsaved() {
            let (country, agent) = match &r.client {
                Some(c) => (
                    c.country.clone().map_or(SqlStorageValue::Null, Into::into),
                    c.agent.into(),
                ),
                None => (SqlStorageValue::Null, SqlStorageValue::Null),
            };
            let kind = r.kind;
            if !added.contains(&kind) {
                added.push(kind);
            }
            self.exec(
                "INSERT INTO records (seq, kind, at, outcome, country, agent) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    to_i64(r.seq).map_err(err)?.into(),
                    kind.as_str().into(),
                    to_i64(r.at).map_err(err)?.into(),
                    r.outcome.as_str().into(),
                    country,
                    agent,
                ],
            )?;
        }
        share.log.saved();
        for kind in added {
            // Everything at or below the newest `cap + 1`th of the kind goes (nothing
            // when there are no more than `cap`: the subquery is NULL).
            let cap = i64::try_from(kind.cap()).map_err(err)?;
            self.exec(
                "DELETE FROM records WHERE kind = ? AND seq <= \
                 (SELECT seq FROM records WHERE kind = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                vec![kind.as_str().into(), kind.as_str().into(), cap.into()],
            )?;
        }
        Ok(())
    }
}
