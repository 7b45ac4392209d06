//! What a room keeps, and the seam to where it keeps it.
//!
//! The room machine reads through [`RoomStore`] (synchronous, as a Durable Object's
//! SQLite is) and never writes through it: every change is a [`Write`] among its
//! actions, which the shell applies in order before it sends anything that follows
//! them. So the machine can be driven against an in-memory store in tests, and a shell
//! whose write fails can drop the machine and rebuild it from what storage really holds.
//!
//! Kept per room:
//! - one meta row ([`RoomMeta`]): creation time, the lock, the replay floor;
//! - events ([`StoredEvent`]): every numbered room event as the JSON its frame carries.
//!   Messages are history and stay; the others are pruned after the replay window;
//! - members ([`Member`]) and read marks.
//!
//! And per socket, in its hibernation attachment: [`ConnState`].
//!
//! These types are the storage schema: each carries a version (`v`) so a later build can
//! read what an earlier one wrote.

use serde::{Deserialize, Serialize};

use super::files::{AuditEntry, StoredFile, StoredUpload};
use super::frame::EventKind;
use super::ids::ConnId;
use crate::jwt::Role;

/// The schema version of [`RoomMeta`] and [`ConnState`].
pub const SCHEMA_VERSION: u8 = 1;

/// The room's one meta row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMeta {
    /// Schema version.
    pub v: u8,
    /// When the room stored its first event, ms.
    pub created_at: u64,
    /// Events with a seq at or below this may have been pruned: a reconnect from an
    /// older seq cannot be replayed (`resync-required`).
    pub floor: u64,
    /// The lock, when the room is locked.
    pub lock: Option<StoredLock>,
}

impl RoomMeta {
    /// The meta of a room that has stored nothing yet.
    pub fn new(now: u64) -> Self {
        Self {
            v: SCHEMA_VERSION,
            created_at: now,
            floor: 0,
            lock: None,
        }
    }
}

/// Who locked the room, when, and why (sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLock {
    /// User id.
    pub by: String,
    /// Their name.
    pub by_name: String,
    /// When, ms.
    pub at: u64,
    /// The sealed reason.
    pub reason: Option<String>,
}

/// One numbered room event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its place in the room's history, from 1, without gaps when written.
    pub seq: u64,
    /// When the room accepted it, ms; never decreases with `seq`.
    pub at: u64,
    /// Which event.
    pub kind: EventKind,
    /// Who caused it.
    pub sender: String,
    /// The sender's request id (`send-message` only), to answer a re-sent request with
    /// the same message instead of a second one.
    pub request_id: Option<String>,
    /// The event's `data`, as JSON text; the frame is rebuilt around it.
    pub data: String,
}

/// A member of the room: joined once and has not left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// User id.
    pub user_id: String,
    /// Name as last seen.
    pub user_name: String,
    /// Role as last seen.
    pub role: Role,
    /// When they joined, ms.
    pub joined_at: u64,
}

/// Everything the machine holds in memory, as read when the object wakes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRoom {
    /// The meta row, if the room ever stored one.
    pub meta: Option<RoomMeta>,
    /// The highest stored seq (0 when none).
    pub max_seq: u64,
    /// The `at` of that event (0 when none).
    pub last_at: u64,
    /// Every member.
    pub members: Vec<Member>,
    /// Every read mark: (user id, seq).
    pub reads: Vec<(String, u64)>,
    /// (sender, at) of the messages sent since the `since` given to
    /// [`RoomStore::load`], oldest first: rebuilds the message rate limit.
    pub recent_sends: Vec<(String, u64)>,
    /// The `at` of the oldest event that pruning will remove one day.
    pub oldest_prunable_at: Option<u64>,
    /// Every upload in flight.
    pub uploads: Vec<StoredUpload>,
    /// The highest audit seq (0 when none).
    pub audit_head: u64,
    /// When each member was last notified (user id, ms).
    pub notified: Vec<(String, u64)>,
}

/// What [`RoomStore::prunable`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneInfo {
    /// The highest seq among prunable events older than the cutoff (they go).
    pub through_seq: Option<u64>,
    /// The `at` of the oldest prunable event at or after the cutoff (it stays).
    pub next_oldest_at: Option<u64>,
}

/// Storage failed (the shell logs the cause; the machine answers `internal`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("room storage failed: {0}")]
pub struct StoreError(pub String);

/// Reads of a room's storage. Writes are [`Write`] actions.
pub trait RoomStore {
    /// What the machine keeps in memory; `since` bounds `recent_sends`.
    fn load(&self, since: u64) -> Result<StoredRoom, StoreError>;
    /// Events with a seq above `after`, ascending, at most `limit`.
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// Messages with a seq below `before`, newest first, at most `limit`.
    fn messages_before(&self, before: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// The message `sender` sent with request id `request_id`, if any.
    fn message_by_request(
        &self,
        sender: &str,
        request_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError>;
    /// What pruning prunable events older than `cutoff` would remove and keep.
    fn prunable(&self, cutoff: u64) -> Result<PruneInfo, StoreError>;
    /// The file or folder `id`, if the room has it.
    fn file(&self, id: &str) -> Result<Option<StoredFile>, StoreError>;
    /// Files and folders with a seq below `before`, newest first, at most `limit`.
    fn files_before(&self, before: u64, limit: usize) -> Result<Vec<StoredFile>, StoreError>;
    /// Every file in folder `parent`.
    fn children(&self, parent: &str) -> Result<Vec<StoredFile>, StoreError>;
    /// Audit entries with a seq below `before`, newest first, at most `limit`.
    fn audit_before(&self, before: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// One storage change, applied by the shell in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Insert or replace the meta row.
    Meta(RoomMeta),
    /// Append an event.
    Event(StoredEvent),
    /// Insert or replace a member.
    Member(Member),
    /// Remove a member.
    RemoveMember(String),
    /// Set a user's read mark.
    Read {
        /// User id.
        user_id: String,
        /// Read up to this seq.
        seq: u64,
    },
    /// Delete every event that is not a message and is older than `before_at`.
    Prune {
        /// The cutoff, ms.
        before_at: u64,
    },
    /// Insert or replace an upload in flight.
    Upload(StoredUpload),
    /// Forget an upload in flight.
    RemoveUpload(String),
    /// Insert or replace a file or folder.
    File(StoredFile),
    /// Remove a file or folder.
    RemoveFile(String),
    /// Append an audit entry.
    Audit(AuditEntry),
    /// A member was notified.
    Notified {
        /// User id.
        user_id: String,
        /// When, ms.
        at: u64,
    },
}

/// A socket's state, kept in its hibernation attachment so a woken room knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnState {
    /// Schema version.
    pub v: u8,
    /// The connection.
    pub id: ConnId,
    /// When the socket was accepted, ms.
    pub opened_at: u64,
    /// Who it is, once authenticated.
    pub auth: Option<ConnAuth>,
    /// Whether it has joined the room (receives its events).
    pub joined: bool,
    /// The files it subscribed to (`subscribe:file`): it receives their `processing:*`
    /// events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<String>,
}

/// A socket's identity, from its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnAuth {
    /// The token's `sub`.
    pub user_id: String,
    /// The token's `name` (or `sub`).
    pub user_name: String,
    /// The role the token grants in this room.
    pub role: Role,
}
