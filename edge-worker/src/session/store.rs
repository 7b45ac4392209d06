//! How an upload session is kept in its Durable Object's SQLite storage.
//!
//! Five tables, in this object's own schema (version [`SCHEMA_VERSION`], stored in the
//! session row and checked on every load; the protocol type is mapped onto it here,
//! never serialized as it is): `session`, one row with the session's state, the file's
//! terms and what the file record and storage need (header, sealed metadata, storage's
//! upload id, the create request's digest); `parts`, one row per recorded part;
//! `writes`, one row per part write in flight; `lapsed`, one row per write whose lease
//! ran out before it reported (storage may still commit it); `shares`, one row per
//! share of the file, and `pending_shares`, one row per share whose object is not
//! confirmed made yet, with when it was reserved (made on first use, so stores from
//! before it read as "none pending"). Recording or fencing a part writes only that part's rows, so the
//! 10,000th part of an upload costs what the first did; state changes rewrite the
//! session row. Nothing secret is stored: the owner token only as its SHA-256, the
//! header and metadata are public to whoever has the link anyway and the metadata is
//! sealed.
//!
//! SQLite calls are synchronous in a Durable Object, so a write here and the matching
//! change to the cached session happen with no other request in between.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::{FileId, OwnerTokenHash};
use sealdrop_protocol::plan::PartPlan;
use sealdrop_protocol::session::{
    FileTerms, Lifetime, Owner, PartWrite, RecordedPart, Session, Snapshot, Stage,
};
use sealdrop_protocol::wire::CompletedPart;
use serde::{Deserialize, Serialize};
use worker::{SqlStorage, SqlStorageValue};

use crate::http::{OrApiError as _, internal};
use crate::sql::{blob, int, text, to_i64, to_u64, uint};

/// The pending shares' table, made on first use (stores written before it have none).
const PENDING_SHARES_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS pending_shares (id TEXT PRIMARY KEY, since INTEGER NOT NULL)";

/// The layout of the tables below. A session stored under another version is refused
/// (`500 internal`) rather than misread.
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// What the object keeps beside the session: what the file record and storage need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileMeta {
    /// The header's bytes.
    pub header: Vec<u8>,
    /// The sealed metadata.
    pub metadata: Vec<u8>,
    /// Storage's id for the multipart upload.
    pub upload_id: String,
    /// The create request's digest (an idempotent create compares it).
    pub digest: [u8; 32],
}

/// The session row: the session's own fields in storage types.
#[derive(Debug, Clone, PartialEq)]
struct SessionRow {
    schema_version: i64,
    file_id: String,
    /// The plan as its API JSON (checked again when read).
    plan: String,
    owner_token_hash: String,
    created_at: i64,
    expires_at: i64,
    stage: String,
    /// The completion parts as JSON `[[part, etag], ...]`.
    completion: String,
    next_fence: i64,
    /// The parts of a completion storage may still carry out, as `completion`.
    pending_completion: String,
    step_failures: i64,
    step_failed_at: i64,
    header: Vec<u8>,
    metadata: Vec<u8>,
    upload_id: String,
    digest: Vec<u8>,
    /// The file's terms as JSON ([`TermsRow`]).
    terms: String,
    completion_at: i64,
}

/// The file's terms as stored: its owner, account and lifetime.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TermsRow {
    owner: Owner,
    account: String,
    /// `None`: never expires.
    lifetime_ms: Option<u64>,
}

const SESSION_COLUMNS: &str = "schema_version, file_id, plan, owner_token_hash, created_at, \
     expires_at, stage, completion, next_fence, pending_completion, step_failures, \
     step_failed_at, header, metadata, upload_id, digest, terms, completion_at";

impl SessionRow {
    fn new(snapshot: &Snapshot, file: &FileMeta) -> Result<Self, String> {
        Ok(Self {
            schema_version: SCHEMA_VERSION,
            file_id: snapshot.file_id.to_string(),
            plan: serde_json::to_string(&snapshot.plan).map_err(|e| e.to_string())?,
            owner_token_hash: serde_json::to_value(snapshot.owner_token_hash)
                .map_err(|e| e.to_string())?
                .as_str()
                .ok_or("the owner-token hash is not a string")?
                .to_owned(),
            created_at: to_i64(snapshot.created_at)?,
            expires_at: to_i64(snapshot.expires_at)?,
            stage: snapshot.stage.as_str().to_owned(),
            completion: parts_json(&snapshot.completion)?,
            next_fence: to_i64(snapshot.next_fence)?,
            pending_completion: parts_json(&snapshot.pending_completion)?,
            step_failures: i64::from(snapshot.step_failures),
            step_failed_at: to_i64(snapshot.step_failed_at)?,
            header: file.header.clone(),
            metadata: file.metadata.clone(),
            upload_id: file.upload_id.clone(),
            digest: file.digest.to_vec(),
            terms: serde_json::to_string(&TermsRow {
                owner: snapshot.terms.owner.clone(),
                account: snapshot.terms.account.clone(),
                lifetime_ms: match snapshot.terms.lifetime {
                    Lifetime::Ms(ms) => Some(ms),
                    Lifetime::Never => None,
                },
            })
            .map_err(|e| e.to_string())?,
            completion_at: to_i64(snapshot.completion_at)?,
        })
    }

    fn values(&self) -> Vec<SqlStorageValue> {
        vec![
            self.schema_version.into(),
            self.file_id.clone().into(),
            self.plan.clone().into(),
            self.owner_token_hash.clone().into(),
            self.created_at.into(),
            self.expires_at.into(),
            self.stage.clone().into(),
            self.completion.clone().into(),
            self.next_fence.into(),
            self.pending_completion.clone().into(),
            self.step_failures.into(),
            self.step_failed_at.into(),
            SqlStorageValue::Blob(self.header.clone()),
            SqlStorageValue::Blob(self.metadata.clone()),
            self.upload_id.clone().into(),
            SqlStorageValue::Blob(self.digest.clone()),
            self.terms.clone().into(),
            self.completion_at.into(),
        ]
    }

    fn from_values(values: Vec<SqlStorageValue>) -> Result<Self, String> {
        let mut v = values.into_iter();
        let mut next = || v.next().ok_or_else(|| "a column is missing".to_owned());
        Ok(Self {
            schema_version: int(next()?)?,
            file_id: text(next()?)?,
            plan: text(next()?)?,
            owner_token_hash: text(next()?)?,
            created_at: int(next()?)?,
            expires_at: int(next()?)?,
            stage: text(next()?)?,
            completion: text(next()?)?,
            next_fence: int(next()?)?,
            pending_completion: text(next()?)?,
            step_failures: int(next()?)?,
            step_failed_at: int(next()?)?,
            header: blob(next()?)?,
            metadata: blob(next()?)?,
            upload_id: text(next()?)?,
            digest: blob(next()?)?,
            terms: text(next()?)?,
            completion_at: int(next()?)?,
        })
    }

    /// The snapshot (without parts and writes) and the file's meta this row holds.
    fn read(self) -> Result<(Snapshot, FileMeta), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "stored under schema {}, this build reads {SCHEMA_VERSION}",
                self.schema_version
            ));
        }
        let terms: TermsRow = serde_json::from_str(&self.terms).map_err(|e| e.to_string())?;
        let snapshot = Snapshot {
            file_id: FileId::parse(&self.file_id).map_err(|e| e.to_string())?,
            plan: serde_json::from_str::<PartPlan>(&self.plan).map_err(|e| e.to_string())?,
            owner_token_hash: serde_json::from_value::<OwnerTokenHash>(serde_json::Value::String(
                self.owner_token_hash,
            ))
            .map_err(|e| e.to_string())?,
            terms: FileTerms {
                owner: terms.owner,
                account: terms.account,
                lifetime: terms.lifetime_ms.map_or(Lifetime::Never, Lifetime::Ms),
            },
            completion_at: to_u64(self.completion_at)?,
            shares: Vec::new(),
            pending_shares: Vec::new(),
            created_at: to_u64(self.created_at)?,
            expires_at: to_u64(self.expires_at)?,
            stage: Stage::parse(&self.stage).ok_or("an unknown stage")?,
            completion: parts_from_json(&self.completion)?,
            recorded: Vec::new(),
            writes: Vec::new(),
            lapsed: Vec::new(),
            next_fence: to_u64(self.next_fence)?,
            pending_completion: parts_from_json(&self.pending_completion)?,
            step_failures: u32::try_from(self.step_failures).map_err(|e| e.to_string())?,
            step_failed_at: to_u64(self.step_failed_at)?,
        };
        let file = FileMeta {
            header: self.header,
            metadata: self.metadata,
            upload_id: self.upload_id,
            digest: self
                .digest
                .try_into()
                .map_err(|_| "a digest that is not 32 bytes")?,
        };
        Ok((snapshot, file))
    }
}

/// The session's SQLite storage.
pub(crate) struct SessionStore {
    sql: SqlStorage,
}

impl SessionStore {
    /// The store over a Durable Object's SQL storage.
    pub fn new(sql: SqlStorage) -> Self {
        Self { sql }
    }

    /// Whether a session was ever created here. Reads only: probing an unknown file id
    /// leaves no storage behind.
    pub fn exists(&self) -> Result<bool, ApiError> {
        let tables = self
            .sql
            .exec(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'session'",
                None,
            )
            .or_internal("looking for the session table")?
            .raw()
            .count();
        if tables == 0 {
            return Ok(false);
        }
        let rows = self
            .sql
            .exec("SELECT 1 FROM session", None)
            .or_internal("looking for the session row")?
            .raw()
            .count();
        Ok(rows > 0)
    }

    /// Creates the tables and the row of a new session (which has no parts yet).
    pub fn create(&self, session: &Session, file: &FileMeta) -> Result<(), ApiError> {
        let ctx = "creating the session";
        for table in [
            "CREATE TABLE IF NOT EXISTS session (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                schema_version INTEGER NOT NULL,
                file_id TEXT NOT NULL,
                plan TEXT NOT NULL,
                owner_token_hash TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                stage TEXT NOT NULL,
                completion TEXT NOT NULL,
                next_fence INTEGER NOT NULL,
                pending_completion TEXT NOT NULL,
                step_failures INTEGER NOT NULL,
                step_failed_at INTEGER NOT NULL,
                header BLOB NOT NULL,
                metadata BLOB NOT NULL,
                upload_id TEXT NOT NULL,
                digest BLOB NOT NULL,
                terms TEXT NOT NULL,
                completion_at INTEGER NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS parts (
                part_number INTEGER PRIMARY KEY,
                etag TEXT NOT NULL,
                size INTEGER NOT NULL,
                fence INTEGER NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS writes (
                part_number INTEGER PRIMARY KEY,
                fence INTEGER NOT NULL,
                lease_until INTEGER NOT NULL,
                overlapped INTEGER NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS lapsed (
                part_number INTEGER NOT NULL,
                fence INTEGER NOT NULL,
                PRIMARY KEY (part_number, fence)
            )",
            "CREATE TABLE IF NOT EXISTS shares (id TEXT PRIMARY KEY)",
        ] {
            self.sql.exec(table, None).or_internal(ctx)?;
        }
        let row = SessionRow::new(&session.snapshot(), file).map_err(|e| internal(ctx, e))?;
        self.sql
            .exec(
                &format!(
                    "INSERT INTO session (id, {SESSION_COLUMNS}) \
                     VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                row.values(),
            )
            .or_internal(ctx)?;
        Ok(())
    }

    /// Loads the session with its parts and writes, or `None` if none was created here.
    pub fn load(&self) -> Result<Option<(Session, FileMeta)>, ApiError> {
        if !self.exists()? {
            return Ok(None);
        }
        let ctx = "loading the session";
        let values = self
            .sql
            .exec(&format!("SELECT {SESSION_COLUMNS} FROM session"), None)
            .or_internal(ctx)?
            .raw()
            .next()
            .transpose()
            .or_internal(ctx)?
            .ok_or_else(|| internal(ctx, "no session row"))?;
        let (mut snapshot, file) = SessionRow::from_values(values)
            .and_then(SessionRow::read)
            .map_err(|e| internal(ctx, e))?;
        for row in self.rows::<4>("SELECT part_number, etag, size, fence FROM parts")? {
            let [n, etag, size, fence] = row;
            let part = RecordedPart {
                etag: text(etag).map_err(|e| internal(ctx, e))?,
                size: uint(size).map_err(|e| internal(ctx, e))?,
                fence: uint(fence).map_err(|e| internal(ctx, e))?,
            };
            snapshot.recorded.push((part_number(n, ctx)?, part));
        }
        for row in
            self.rows::<4>("SELECT part_number, fence, lease_until, overlapped FROM writes")?
        {
            let [n, fence, until, overlapped] = row;
            let write = PartWrite {
                fence: uint(fence).map_err(|e| internal(ctx, e))?,
                lease_until: uint(until).map_err(|e| internal(ctx, e))?,
                overlapped: uint(overlapped).map_err(|e| internal(ctx, e))? != 0,
            };
            snapshot.writes.push((part_number(n, ctx)?, write));
        }
        for row in self.rows::<2>("SELECT part_number, fence FROM lapsed")? {
            let [n, fence] = row;
            let fence = uint(fence).map_err(|e| internal(ctx, e))?;
            snapshot.lapsed.push((part_number(n, ctx)?, fence));
        }
        snapshot.shares = self.share_ids()?;
        snapshot.pending_shares = self.pending_shares()?;
        let session = Session::restore(snapshot).map_err(|e| internal(ctx, e))?;
        Ok(Some((session, file)))
    }

    /// Writes part `part`'s rows (its record, its write in flight and its lapsed writes,
    /// or their absence) and the next fence: everything a part call changes.
    pub fn save_part(&self, session: &Session, part: u32) -> Result<(), ApiError> {
        let ctx = "recording a part";
        let n = i64::from(part);
        match session.recorded_parts().get(&part) {
            Some(r) => self.sql.exec(
                "INSERT OR REPLACE INTO parts (part_number, etag, size, fence) VALUES (?, ?, ?, ?)",
                vec![
                    n.into(),
                    r.etag.clone().into(),
                    to_i64(r.size).map_err(|e| internal(ctx, e))?.into(),
                    to_i64(r.fence).map_err(|e| internal(ctx, e))?.into(),
                ],
            ),
            None => self
                .sql
                .exec("DELETE FROM parts WHERE part_number = ?", vec![n.into()]),
        }
        .or_internal(ctx)?;
        match session.part_writes().get(&part) {
            Some(w) => self.sql.exec(
                "INSERT OR REPLACE INTO writes (part_number, fence, lease_until, overlapped) \
                 VALUES (?, ?, ?, ?)",
                vec![
                    n.into(),
                    to_i64(w.fence).map_err(|e| internal(ctx, e))?.into(),
                    to_i64(w.lease_until).map_err(|e| internal(ctx, e))?.into(),
                    i64::from(w.overlapped).into(),
                ],
            ),
            None => self
                .sql
                .exec("DELETE FROM writes WHERE part_number = ?", vec![n.into()]),
        }
        .or_internal(ctx)?;
        self.sql
            .exec("DELETE FROM lapsed WHERE part_number = ?", vec![n.into()])
            .or_internal(ctx)?;
        let lapsed = session.lapsed_writes().range((part, 0)..=(part, u64::MAX));
        self.insert_lapsed(lapsed.copied(), ctx)?;
        let fence = to_i64(session.next_fence()).map_err(|e| internal(ctx, e))?;
        self.sql
            .exec("UPDATE session SET next_fence = ?", vec![fence.into()])
            .or_internal(ctx)?;
        Ok(())
    }

    /// Writes the session row after a state change. State changes only ever clear all
    /// parts or all writes at once (abort, completion's start), or drop records (a
    /// refused completion), so the parts table keeps only what the session records; the
    /// lapsed writes (few) are written again.
    pub fn save_state(&self, session: &Session, file: &FileMeta) -> Result<(), ApiError> {
        let ctx = "updating the session";
        let row = SessionRow::new(&session.snapshot(), file).map_err(|e| internal(ctx, e))?;
        self.sql
            .exec(
                "UPDATE session SET stage = ?, completion = ?, next_fence = ?, \
                 pending_completion = ?, step_failures = ?, step_failed_at = ?, \
                 completion_at = ?",
                vec![
                    row.stage.into(),
                    row.completion.into(),
                    row.next_fence.into(),
                    row.pending_completion.into(),
                    row.step_failures.into(),
                    row.step_failed_at.into(),
                    row.completion_at.into(),
                ],
            )
            .or_internal(ctx)?;
        self.save_shares(session)?;
        match session.recorded_parts().keys().max() {
            None => {
                self.sql.exec("DELETE FROM parts", None).or_internal(ctx)?;
            }
            Some(_) => {
                // A refused completion drops some records: keep only the recorded ones.
                for n in self.part_numbers()? {
                    if !session.recorded_parts().contains_key(&n) {
                        self.sql
                            .exec(
                                "DELETE FROM parts WHERE part_number = ?",
                                vec![i64::from(n).into()],
                            )
                            .or_internal(ctx)?;
                    }
                }
            }
        }
        if session.part_writes().is_empty() {
            self.sql.exec("DELETE FROM writes", None).or_internal(ctx)?;
        }
        self.sql.exec("DELETE FROM lapsed", None).or_internal(ctx)?;
        self.insert_lapsed(session.lapsed_writes().iter().copied(), ctx)?;
        Ok(())
    }

    /// Writes the share list: rows for shares added, none for shares dropped, and the
    /// pending ones afresh (at most [`sealdrop_protocol::session::MAX_SHARES_PER_FILE`]).
    pub fn save_shares(&self, session: &Session) -> Result<(), ApiError> {
        let ctx = "saving the shares";
        let stored = self.share_ids()?;
        let shares = session.shares().ids();
        for gone in stored.iter().filter(|id| !shares.contains(*id)) {
            self.sql
                .exec("DELETE FROM shares WHERE id = ?", vec![gone.clone().into()])
                .or_internal(ctx)?;
        }
        for new in shares.iter().filter(|id| !stored.contains(id)) {
            self.sql
                .exec(
                    "INSERT INTO shares (id) VALUES (?)",
                    vec![new.clone().into()],
                )
                .or_internal(ctx)?;
        }
        self.sql.exec(PENDING_SHARES_TABLE, None).or_internal(ctx)?;
        self.sql
            .exec("DELETE FROM pending_shares", None)
            .or_internal(ctx)?;
        for (id, &since) in session.shares().pending() {
            let since = to_i64(since).map_err(|e| internal(ctx, e))?;
            self.sql
                .exec(
                    "INSERT INTO pending_shares (id, since) VALUES (?, ?)",
                    vec![id.clone().into(), since.into()],
                )
                .or_internal(ctx)?;
        }
        Ok(())
    }

    /// The part numbers the parts table holds.
    fn part_numbers(&self) -> Result<Vec<u32>, ApiError> {
        let ctx = "updating the session";
        self.rows::<1>("SELECT part_number FROM parts")?
            .into_iter()
            .map(|[n]| part_number(n, ctx))
            .collect()
    }

    fn insert_lapsed(
        &self,
        lapsed: impl Iterator<Item = (u32, u64)>,
        ctx: &str,
    ) -> Result<(), ApiError> {
        for (part, fence) in lapsed {
            let fence = to_i64(fence).map_err(|e| internal(ctx, e))?;
            self.sql
                .exec(
                    "INSERT OR REPLACE INTO lapsed (part_number, fence) VALUES (?, ?)",
                    vec![i64::from(part).into(), fence.into()],
                )
                .or_internal(ctx)?;
        }
        Ok(())
    }

    fn pending_shares(&self) -> Result<Vec<(String, u64)>, ApiError> {
        let ctx = "loading the shares";
        self.sql.exec(PENDING_SHARES_TABLE, None).or_internal(ctx)?;
        self.rows::<2>("SELECT id, since FROM pending_shares")?
            .into_iter()
            .map(|[id, since]| {
                let id = text(id).map_err(|e| internal(ctx, e))?;
                Ok((id, uint(since).map_err(|e| internal(ctx, e))?))
            })
            .collect()
    }

    fn share_ids(&self) -> Result<Vec<String>, ApiError> {
        let ctx = "loading the shares";
        self.rows::<1>("SELECT id FROM shares ORDER BY id")?
            .into_iter()
            .map(|[id]| text(id).map_err(|e| internal(ctx, e)))
            .collect()
    }

    /// Deletes everything this object stores: the file is gone.
    pub async fn wipe(storage: &worker::Storage) -> Result<(), ApiError> {
        storage
            .delete_alarm()
            .await
            .or_internal("wiping the alarm")?;
        storage.delete_all().await.or_internal("wiping the session")
    }

    /// The rows of an `N`-column query.
    fn rows<const N: usize>(&self, query: &str) -> Result<Vec<[SqlStorageValue; N]>, ApiError> {
        let ctx = "loading the session";
        self.sql
            .exec(query, None)
            .or_internal(ctx)?
            .raw()
            .map(|row| {
                let row = row.or_internal(ctx)?;
                <[SqlStorageValue; N]>::try_from(row).map_err(|_| internal(ctx, "a row's width"))
            })
            .collect()
    }
}

/// Parts as JSON `[[part, etag], ...]`.
fn parts_json(parts: &[CompletedPart]) -> Result<String, String> {
    let pairs: Vec<(u32, &str)> = parts
        .iter()
        .map(|p| (p.part_number, p.etag.as_str()))
        .collect();
    serde_json::to_string(&pairs).map_err(|e| e.to_string())
}

fn parts_from_json(json: &str) -> Result<Vec<CompletedPart>, String> {
    let pairs: Vec<(u32, String)> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(pairs
        .into_iter()
        .map(|(part_number, etag)| CompletedPart { part_number, etag })
        .collect())
}

fn part_number(v: SqlStorageValue, ctx: &str) -> Result<u32, ApiError> {
    let n = uint(v).map_err(|e| internal(ctx, e))?;
    u32::try_from(n).map_err(|e| internal(ctx, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sealdrop_protocol::ids::OwnerToken;
    use sealdrop_protocol::plan::ProviderLimits;

    fn session() -> (Session, FileMeta) {
        let plan = PartPlan::new(64 << 20, 1 << 20, None, &ProviderLimits::S3).unwrap();
        let mut s = Session::new(
            FileId::from_bytes([1; 24]),
            plan,
            OwnerToken::from_random([2; 16]).hash(),
            1_764_000_000_000,
            1_000,
        )
        .with_terms(FileTerms {
            owner: Owner::User {
                sub: "alice".into(),
            },
            account: "acct".into(),
            lifetime: Lifetime::Never,
        });
        let size = s.plan().part_size();
        let grant = s.begin_part(1, size, 1_764_000_000_001, 60_000).unwrap();
        s.finish_part(1, grant.fence, "\"e1\"".into(), size, 1_764_000_000_002)
            .unwrap();
        let file = FileMeta {
            header: vec![1, 2, 3],
            metadata: vec![4; 28],
            upload_id: "upload-1".into(),
            digest: [9; 32],
        };
        (s, file)
    }

    #[test]
    fn the_row_round_trips_and_names_its_schema() {
        let (s, file) = session();
        let snap = s.snapshot();
        let row = SessionRow::new(&snap, &file).unwrap();
        assert_eq!(row.schema_version, SCHEMA_VERSION);
        assert_eq!(row.stage, "open");
        let back = SessionRow::from_values(row.values()).unwrap();
        assert_eq!(back, row);
        let (read, read_file) = back.read().unwrap();
        assert_eq!(read_file, file);
        // Parts, writes and lapsed writes live in their own tables.
        assert_eq!(
            read,
            Snapshot {
                recorded: Vec::new(),
                writes: Vec::new(),
                lapsed: Vec::new(),
                ..snap
            }
        );
    }

    #[test]
    fn a_row_of_another_schema_or_shape_is_refused() {
        let (s, file) = session();
        let row = SessionRow::new(&s.snapshot(), &file).unwrap();
        let old = SessionRow {
            schema_version: 2,
            ..row.clone()
        };
        assert!(old.read().unwrap_err().contains("schema 2"));
        let bad_stage = SessionRow {
            stage: "paused".into(),
            ..row.clone()
        };
        assert!(bad_stage.read().is_err());
        let mut values = row.values();
        values[0] = SqlStorageValue::String("2".into());
        assert!(SessionRow::from_values(values).is_err());
        assert!(SessionRow::from_values(row.values()[..17].to_vec()).is_err());
        let bad_terms = SessionRow {
            terms: "{}".into(),
            ..row.clone()
        };
        assert!(bad_terms.read().is_err());
    }
}
