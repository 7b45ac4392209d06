//! What a room keeps about files (docs/PROTOCOL.md, Files in a room): uploads in
//! flight, the room's files and folders, the audit log, and when each offline member was
//! last notified. These are storage rows (each with a schema version) and the pieces of
//! the frames built from them; the rules that change them are the room machine's
//! (`machine/files.rs`).
//!
//! Every name, type, relative path and file key here is **sealed** under the room key by
//! the uploader's browser (docs/FORMAT.md, Room payloads: context event `file`); the room
//! checks their form and length and nothing else.

use serde::{Deserialize, Serialize};

use super::seal::check_sealed;

/// The schema version of [`StoredUpload`], [`StoredFile`] and [`AuditEntry`] rows.
pub const FILES_SCHEMA_VERSION: u8 = 1;

/// Longest sealed file or folder name, in characters (a 1,500-byte name).
pub const MAX_SEALED_NAME_CHARS: usize = 2048;
/// Longest sealed MIME type.
pub const MAX_SEALED_TYPE_CHARS: usize = 512;
/// Longest sealed file key (a 32-byte key seals to 82 characters).
pub const MAX_SEALED_KEY_CHARS: usize = 128;
/// Longest sealed relative path inside a folder (a 6,000-byte path).
pub const MAX_SEALED_PATH_CHARS: usize = 8192;
/// Longest sealed link in a `share-file` message.
pub const MAX_SEALED_LINK_CHARS: usize = 4096;
/// Longest file or folder id.
pub const MAX_FILE_ID_LEN: usize = 64;

/// A file id as the room accepts it: 1 to 64 base64url characters (upload sessions'
/// ids, and the room's own folder ids `d<seq>`).
pub fn valid_file_id(id: &str) -> bool {
    (1..=MAX_FILE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The id of the folder whose `file-added` event has seq `seq`.
pub fn folder_id(seq: u64) -> String {
    format!("d{seq}")
}

/// The sealed fields of a file, as the uploader's browser sealed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedFields {
    /// The file or folder name (field `name`).
    pub sealed_name: String,
    /// The MIME type (field `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_type: Option<String>,
    /// The file key, so members can open the file (field `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_key: Option<String>,
    /// The path relative to the folder it was dropped in (field `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_path: Option<String>,
}

impl SealedFields {
    /// Checks every field's form and length; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        check_sealed(&self.sealed_name, MAX_SEALED_NAME_CHARS)
            .map_err(|why| format!("sealedName {why}"))?;
        let optional = [
            ("sealedType", &self.sealed_type, MAX_SEALED_TYPE_CHARS),
            ("sealedKey", &self.sealed_key, MAX_SEALED_KEY_CHARS),
            ("sealedPath", &self.sealed_path, MAX_SEALED_PATH_CHARS),
        ];
        for (name, value, max) in optional {
            if let Some(value) = value {
                check_sealed(value, max).map_err(|why| format!("{name} {why}"))?;
            }
        }
        Ok(())
    }
}

/// An upload in flight in the room (`uploads` row): admitted when its session was
/// created, gone when storage completes it, it is cancelled, or it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUpload {
    /// Schema version.
    pub v: u8,
    /// The upload session's id, which becomes the file's id.
    pub file_id: String,
    /// The uploader.
    pub user_id: String,
    /// Their name when they started it.
    pub user_name: String,
    /// The file's size (plaintext bytes).
    pub size: u64,
    /// What the uploader sealed.
    pub sealed: SealedFields,
    /// The folder it goes into.
    pub parent_id: Option<String>,
    /// When it was admitted, ms.
    pub started_at: u64,
    /// When the room gives up on it (its session's lifetime and then some), ms.
    pub expires_at: u64,
    /// Whether the uploading device said it paused.
    pub paused: bool,
    /// Bytes uploaded as of the last pause or resume (progress reports themselves are
    /// not stored).
    pub bytes: u64,
}

/// A file or folder of the room: the `file` object of `file-added` and of `files` pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomFile {
    /// The file id (a folder's is `d<seq>`).
    pub id: String,
    /// The sealed fields.
    #[serde(flatten)]
    pub sealed: SealedFields,
    /// Plaintext bytes (0 for a folder).
    pub size: u64,
    /// Who uploaded it (or made the folder).
    pub uploaded_by: String,
    /// Their name then.
    pub uploaded_by_name: String,
    /// When it was added to the room (ISO 8601).
    pub created_at: String,
    /// The folder it is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Whether this is a folder.
    pub is_folder: bool,
}

/// A stored file or folder (`files` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The seq of its `file-added` event (files are listed in this order).
    pub seq: u64,
    /// When it was added, ms.
    pub at: u64,
    /// The file.
    pub file: RoomFile,
    /// Its processing status, if a processor reported one (JSON of
    /// `processing::ProcessingState`).
    pub processing: Option<String>,
}

/// What the audit log records (docs/PROTOCOL.md, Audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuditAction {
    /// An upload was admitted into the room.
    UploadStarted,
    /// Storage completed it: the file is in the room.
    UploadCompleted,
    /// It was cancelled or expired.
    UploadFailed,
    /// A folder was made.
    FolderCreated,
    /// A file was shared into the chat (`share-file`).
    Shared,
    /// A file or folder was removed (storage deleted).
    Removed,
    /// A member reported a completed download.
    Downloaded,
    /// A webhook to an offline member failed after its last retry.
    NotificationFailed,
}

impl AuditAction {
    /// Every action, in the order of the PROTOCOL.md table.
    pub const ALL: [AuditAction; 8] = [
        Self::UploadStarted,
        Self::UploadCompleted,
        Self::UploadFailed,
        Self::FolderCreated,
        Self::Shared,
        Self::Removed,
        Self::Downloaded,
        Self::NotificationFailed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadStarted => "upload-started",
            Self::UploadCompleted => "upload-completed",
            Self::UploadFailed => "upload-failed",
            Self::FolderCreated => "folder-created",
            Self::Shared => "shared",
            Self::Removed => "removed",
            Self::Downloaded => "downloaded",
            Self::NotificationFailed => "notification-failed",
        }
    }
}

/// One audit log entry (`audit` row, and an entry of an `audit` page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Its place in the room's audit log, from 1.
    pub seq: u64,
    /// When (ISO 8601).
    pub at: String,
    /// What happened.
    pub action: AuditAction,
    /// The file or folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// Who did it (for `notification-failed`: the member who was not reached).
    pub user_id: String,
    /// Their name.
    pub user_name: String,
    /// The file's size, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A code adding to the action: an upload's failure reason (`cancelled`,
    /// `expired`), a notification's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why an upload ended without a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailReason {
    /// The uploader (or one of their devices) cancelled it: the session was aborted.
    Cancelled,
    /// Its session's lifetime ran out before it completed.
    Expired,
}

impl FailReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// A chat message (`new-message`, `share-file` included).
    Message,
    /// A file or folder was added.
    File,
}

/// A webhook the room asks for: a member with no device connected missed something.
/// It names the room, the member, the sender and the kind, and never anything sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The room.
    pub room_id: String,
    /// The member to notify.
    pub user_id: String,
    /// What arrived.
    pub kind: NotifyKind,
    /// Who sent it.
    pub sender_id: String,
    /// Their name.
    pub sender_name: String,
    /// The seq of the event that caused it.
    pub seq: u64,
    /// When (ms).
    pub at: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::room::seal::{RoomKey, SealContext};

    fn sealed(field: &str, text: &str) -> String {
        let ctx = SealContext {
            event: "file",
            sender: "alice",
            field,
        };
        RoomKey::from_bytes([1; 32])
            .cipher("r1")
            .seal(&ctx, text.as_bytes(), [2; 12])
    }

    #[test]
    fn sealed_fields_are_checked_by_name() {
        let mut f = SealedFields {
            sealed_name: sealed("name", "a.txt"),
            sealed_type: Some(sealed("type", "text/plain")),
            sealed_key: Some(sealed("key", &"k".repeat(32))),
            sealed_path: None,
        };
        assert_eq!(f.check(), Ok(()));
        assert_eq!(f.sealed_key.as_ref().unwrap().len(), 82);
        f.sealed_path = Some("not sealed!".into());
        assert!(
            f.check()
                .unwrap_err()
                .starts_with("sealedPath is not a sealed payload")
        );
        f.sealed_path = None;
        f.sealed_name = sealed("name", &"n".repeat(2000));
        assert!(
            f.check()
                .unwrap_err()
                .starts_with("sealedName is 2706 characters")
        );
    }

    #[test]
    fn ids_and_names() {
        assert!(valid_file_id("AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(valid_file_id(&folder_id(7)));
        assert!(!valid_file_id(""));
        assert!(!valid_file_id("a/b"));
        assert!(!valid_file_id(&"a".repeat(65)));
        let names: Vec<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        for (action, name) in AuditAction::ALL.iter().zip(&names) {
            assert_eq!(
                serde_json::to_string(action).unwrap(),
                format!("\"{name}\"")
            );
        }
    }
}
