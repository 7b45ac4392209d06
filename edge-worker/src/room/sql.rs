//! A room's SQLite storage: the [`RoomStore`] reads the room machine makes, and the
//! [`Write`]s it asks for, applied all together in one transaction.
//!
//! Tables (schema version 1; the meta row and attachments carry their own `v`):
//! - `room`: one row, the meta ([`RoomMeta`]) as JSON;
//! - `events`: every numbered event, `seq` the primary key, its `data` the JSON the
//!   frame carries. Two partial indexes keep the per-message cost to one index entry:
//!   `(sender, request_id)` for resent requests, and the non-message events for pruning.
//!   Scans that need "the newest until" walk the primary key backwards and stop;
//! - `members`, `reads`: one row per user;
//! - `uploads`: the uploads in flight, one JSON row each ([`StoredUpload`]);
//! - `files`: the room's files and folders, `seq` (of their `file-added`) indexed for
//!   paging and `parent_id` for folders, the file as the JSON `file-added` carries and its
//!   processing status;
//! - `audit`: the audit log, one JSON row per entry;
//! - `notified`: when each member was last sent a webhook.
//!
//! What is in here is what PROTOCOL.md says the server sees: user ids and names from
//! tokens, times, sizes, and sealed payloads it cannot open.

use sealdrop_protocol::jwt::Role;
use sealdrop_protocol::room::files::{AuditEntry, RoomFile, StoredFile, StoredUpload};
use sealdrop_protocol::room::frame::EventKind;
use sealdrop_protocol::room::store::{
    Member, PruneInfo, RoomMeta, RoomStore, StoreError, StoredEvent, StoredRoom, Write,
};
use worker::{SqlStorage, SqlStorageValue};

/// The room's tables, created on first use.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS room (id INTEGER PRIMARY KEY CHECK (id = 1), meta TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        sender TEXT NOT NULL,
        request_id TEXT,
        data TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS events_by_request ON events (sender, request_id)
        WHERE request_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_prunable ON events (seq)
        WHERE kind != 'new-message'",
    "CREATE TABLE IF NOT EXISTS members (
        user_id TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        role TEXT NOT NULL,
        joined_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS reads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS uploads (file_id TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        at INTEGER NOT NULL,
        parent_id TEXT,
        file TEXT NOT NULL,
        processing TEXT
    )",
    "CREATE INDEX IF NOT EXISTS files_by_parent ON files (parent_id) WHERE parent_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS notified (user_id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
];

/// The columns of `files`, in the order [`stored_file`] reads them.
const FILE_COLUMNS: &str = "seq, at, file, processing";

/// The columns of `events`, in order.
const EVENT_COLUMNS: &str = "seq, at, kind, sender, request_id, data";

/// A room's SQL storage.
pub(crate) struct SqlStore {
    sql: SqlStorage,
}

type Row = Vec<SqlStorageValue>;

impl SqlStore {
    /// The store, its tables created if this is the room's first use.
    pub fn open(sql: SqlStorage) -> Result<Self, StoreError> {
        let store = Self::wrap(sql);
        for statement in SCHEMA {
            store.exec(statement, vec![])?;
        }
        Ok(store)
    }

    /// The store over tables [`SqlStore::open`] already made.
    pub fn wrap(sql: SqlStorage) -> Self {
        Self { sql }
    }

    /// Applies every write or none (one `transactionSync`, see `super::transaction`).
    pub fn apply_all(&self, writes: &[Write]) -> Result<(), StoreError> {
        for write in writes {
            self.apply(write)?;
        }
        Ok(())
    }

    fn apply(&self, write: &Write) -> Result<(), StoreError> {
        match write {
            Write::Meta(meta) => {
                let json = serde_json::to_string(meta).map_err(|e| StoreError(e.to_string()))?;
                self.exec(
                    "INSERT INTO room (id, meta) VALUES (1, ?)
                     ON CONFLICT (id) DO UPDATE SET meta = excluded.meta",
                    vec![json.into()],
                )
            }
            Write::Event(e) => self.exec(
                "INSERT INTO events (seq, at, kind, sender, request_id, data) VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    int(e.seq)?,
                    int(e.at)?,
                    e.kind.as_str().into(),
                    e.sender.as_str().into(),
                    e.request_id.as_deref().into(),
                    e.data.as_str().into(),
                ],
            ),
            Write::Member(m) => self.exec(
                "INSERT INTO members (user_id, user_name, role, joined_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name,
                    role = excluded.role",
                vec![
                    m.user_id.as_str().into(),
                    m.user_name.as_str().into(),
                    m.role.as_str().into(),
                    int(m.joined_at)?,
                ],
            ),
            Write::RemoveMember(user) => {
                self.exec("DELETE FROM members WHERE user_id = ?", vec![user.as_str().into()])
            }
            Write::Read { user_id, seq } => self.exec(
                "INSERT INTO reads (user_id, seq) VALUES (?, ?)
                 ON CONFLICT (user_id) DO UPDATE SET seq = excluded.seq",
                vec![user_id.as_str().into(), int(*seq)?],
            ),
            Write::Prune { before_at } => self.exec(
                "DELETE FROM events WHERE kind != 'new-message' AND at < ?",
                vec![int(*before_at)?],
            ),
            Write::Upload(upload) => self.exec(
                "INSERT INTO uploads (file_id, data) VALUES (?, ?)
                 ON CONFLICT (file_id) DO UPDATE SET data = excluded.data",
                vec![upload.file_id.as_str().into(), json(upload)?.into()],
            ),
            Write::RemoveUpload(id) => {
                self.exec("DELETE FROM uploads WHERE file_id = ?", vec![id.as_str().into()])
            }
            Write::File(f) => self.exec(
                "INSERT INTO files (id, seq, at, parent_id, file, processing) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET file = excluded.file, processing = excluded.processing",
                vec![
                    f.file.id.as_str().into(),
                    int(f.seq)?,
                    int(f.at)?,
                    f.file.parent_id.as_deref().into(),
                    json(&f.file)?.into(),
                    f.processing.as_deref().into(),
                ],
            ),
            Write::RemoveFile(id) => {
                self.exec("DELETE FROM files WHERE id = ?", vec![id.as_str().into()])
            }
            Write::Audit(entry) => self.exec(
                "INSERT INTO audit (seq, entry) VALUES (?, ?)",
                vec![int(entry.seq)?, json(entry)?.into()],
            ),
            Write::Notified { user_id, at } => self.exec(
                "INSERT INTO notified (user_id, at) VALUES (?, ?)
                 ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
                vec![user_id.as_str().into(), int(*at)?],
            ),
        }
    }

    fn exec(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<(), StoreError> {
        self.sql
            .exec(query, Some(args))
            .map(|_| ())
            .map_err(|e| StoreError(e.to_string()))
    }

    /// Runs a query and reads rows while `keep` says so (the cursor stops there).
    fn rows(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
        mut keep: impl FnMut(&Row) -> bool,
    ) -> Result<Vec<Row>, StoreError> {
        let cursor = self
            .sql
            .exec(query, Some(args))
            .map_err(|e| StoreError(e.to_string()))?;
        let mut out = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(|e| StoreError(e.to_string()))?;
            if !keep(&row) {
                break;
            }
            out.push(row);
        }
        Ok(out)
    }

    fn events(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.rows(query, args, |_| true)?
            .iter()
            .map(event)
            .collect()
    }
}

impl RoomStore for SqlStore {
    fn load(&self, since: u64) -> Result<StoredRoom, StoreError> {
        let meta = match self
            .rows("SELECT meta FROM room", vec![], |_| true)?
            .first()
        {
            Some(row) => Some(
                serde_json::from_str::<RoomMeta>(&text(row, 0)?)
                    .map_err(|e| StoreError(format!("room meta: {e}")))?,
            ),
            None => None,
        };
        // Newest first, until the message window: the head, and recent send times.
        let mut newest = None;
        let mut recent_sends = Vec::new();
        self.rows(
            "SELECT seq, at, kind, sender FROM events ORDER BY seq DESC",
            vec![],
            |row| {
                let (Ok(seq), Ok(at)) = (uint(row, 0), uint(row, 1)) else {
                    return false;
                };
                newest.get_or_insert((seq, at));
                if at < since {
                    return false;
                }
                if text(row, 2).is_ok_and(|k| k == EventKind::NewMessage.as_str())
                    && let Ok(sender) = text(row, 3)
                {
                    recent_sends.push((sender, at));
                }
                true
            },
        )?;
        recent_sends.reverse();
        let members = self
            .rows(
                "SELECT user_id, user_name, role, joined_at FROM members",
                vec![],
                |_| true,
            )?
            .iter()
            .map(|r| {
                Ok(Member {
                    user_id: text(r, 0)?,
                    user_name: text(r, 1)?,
                    role: role(&text(r, 2)?)?,
                    joined_at: uint(r, 3)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let reads = self
            .rows("SELECT user_id, seq FROM reads", vec![], |_| true)?
            .iter()
            .map(|r| Ok((text(r, 0)?, uint(r, 1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let oldest_prunable_at = self
            .rows(
                "SELECT at FROM events WHERE kind != 'new-message' ORDER BY seq LIMIT 1",
                vec![],
                |_| true,
            )?
            .first()
            .map(|r| uint(r, 0))
            .transpose()?;
        let (max_seq, last_at) = newest.unwrap_or((0, 0));
        let uploads = self
            .rows("SELECT data FROM uploads", vec![], |_| true)?
            .iter()
            .map(|r| parse::<StoredUpload>(&text(r, 0)?, "an upload"))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let audit_head = self
            .rows(
                "SELECT seq FROM audit ORDER BY seq DESC LIMIT 1",
                vec![],
                |_| true,
            )?
            .first()
            .map(|r| uint(r, 0))
            .transpose()?
            .unwrap_or(0);
        let notified = self
            .rows("SELECT user_id, at FROM notified", vec![], |_| true)?
            .iter()
            .map(|r| Ok((text(r, 0)?, uint(r, 1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(StoredRoom {
            meta,
            max_seq,
            last_at,
            members,
            reads,
            recent_sends,
            oldest_prunable_at,
            uploads,
            audit_head,
            notified,
        })
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"),
            vec![int(after)?, int(limit as u64)?],
        )
    }

    fn messages_before(&self, before: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq < ? AND kind = 'new-message'
                 ORDER BY seq DESC LIMIT ?"
            ),
            vec![int(before)?, int(limit as u64)?],
        )
    }

    fn message_by_request(
        &self,
        sender: &str,
        request_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .events(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE sender = ? AND request_id = ? AND kind = 'new-message' LIMIT 1"
                ),
                vec![sender.into(), request_id.into()],
            )?
            .into_iter()
            .next())
    }

    fn prunable(&self, cutoff: u64) -> Result<PruneInfo, StoreError> {
        let mut info = PruneInfo::default();
        self.rows(
            "SELECT seq, at FROM events WHERE kind != 'new-message' ORDER BY seq",
            vec![],
            |row| match (uint(row, 0), uint(row, 1)) {
                (Ok(seq), Ok(at)) if at < cutoff => {
                    info.through_seq = Some(seq);
                    true
                }
                (Ok(_), Ok(at)) => {
                    info.next_oldest_at = Some(at);
                    false
                }
                _ => false,
            },
        )?;
        Ok(info)
    }

    fn file(&self, id: &str) -> Result<Option<StoredFile>, StoreError> {
        self.rows(
            &format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?"),
            vec![id.into()],
            |_| true,
        )?
        .first()
        .map(stored_file)
        .transpose()
    }

    fn files_before(&self, before: u64, limit: usize) -> Result<Vec<StoredFile>, StoreError> {
        self.rows(
            &format!("SELECT {FILE_COLUMNS} FROM files WHERE seq < ? ORDER BY seq DESC LIMIT ?"),
            vec![int(before.min(MAX_SEQ))?, int(limit as u64)?],
            |_| true,
        )?
        .iter()
        .map(stored_file)
        .collect()
    }

    fn children(&self, parent: &str) -> Result<Vec<StoredFile>, StoreError> {
        self.rows(
            &format!("SELECT {FILE_COLUMNS} FROM files WHERE parent_id = ? ORDER BY seq"),
            vec![parent.into()],
            |_| true,
        )?
        .iter()
        .map(stored_file)
        .collect()
    }

    fn audit_before(&self, before: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.rows(
            "SELECT entry FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            vec![int(before.min(MAX_SEQ))?, int(limit as u64)?],
            |_| true,
        )?
        .iter()
        .map(|r| parse::<AuditEntry>(&text(r, 0)?, "an audit entry"))
        .collect()
    }
}

fn stored_file(row: &Row) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        seq: uint(row, 0)?,
        at: uint(row, 1)?,
        file: parse::<RoomFile>(&text(row, 2)?, "a file")?,
        processing: match row.get(3) {
            Some(SqlStorageValue::String(s)) => Some(s.clone()),
            _ => None,
        },
    })
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError(format!("{what}: {e}")))
}

fn event(row: &Row) -> Result<StoredEvent, StoreError> {
    let kind = text(row, 2)?;
    Ok(StoredEvent {
        seq: uint(row, 0)?,
        at: uint(row, 1)?,
        kind: EventKind::parse(&kind).ok_or_else(|| StoreError(format!("unknown kind {kind}")))?,
        sender: text(row, 3)?,
        request_id: match row.get(4) {
            Some(SqlStorageValue::String(s)) => Some(s.clone()),
            _ => None,
        },
        data: text(row, 5)?,
    })
}

/// The largest integer SQL parameters carry (JavaScript's safe integers): "before any
/// seq" (`u64::MAX` in the machine) is bound as this, which no seq ever reaches.
const MAX_SEQ: u64 = (1 << 53) - 1;

fn int(value: u64) -> Result<SqlStorageValue, StoreError> {
    let value = i64::try_from(value).map_err(|_| StoreError("integer out of range".into()))?;
    SqlStorageValue::try_from_i64(value).map_err(|e| StoreError(e.to_string()))
}

fn uint(row: &Row, i: usize) -> Result<u64, StoreError> {
    match row.get(i) {
        Some(SqlStorageValue::Integer(n)) if *n >= 0 => Ok(*n as u64),
        Some(SqlStorageValue::Float(f)) if *f >= 0.0 && f.fract() == 0.0 => Ok(*f as u64),
        other => Err(StoreError(format!("column {i}: not a count: {other:?}"))),
    }
}

fn text(row: &Row, i: usize) -> Result<String, StoreError> {
    match row.get(i) {
        Some(SqlStorageValue::String(s)) => Ok(s.clone()),
        other => Err(StoreError(format!("column {i}: not text: {other:?}"))),
    }
}

fn role(name: &str) -> Result<Role, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| StoreError(format!("unknown role {name}")))
}
