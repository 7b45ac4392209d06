//! The frames of files in a room (docs/PROTOCOL.md, Files in a room): the data of the
//! client events that `frame::parse_client_frame` reads, and of the server events the
//! room builds. Parsed as strictly as every other frame (`deny_unknown_fields`).

use serde::{Deserialize, Serialize};

use super::files::{FailReason, RoomFile, SealedFields};
use super::processing::ProcessingState;
use super::progress::ProgressView;

// ---------------------------------------------------------------------------------
// Client events
// ---------------------------------------------------------------------------------

/// `file-upload-progress {roomId?, fileId, uploadId?, bytesUploaded}`: the uploading
/// device's count of bytes sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportProgress {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The upload's file id.
    pub file_id: String,
    /// Must be the file id, if given (seed 002 sends both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Plaintext bytes uploaded so far.
    pub bytes_uploaded: u64,
}

/// Data naming one file: `file-upload-paused`, `file-upload-resumed`, `remove-file`,
/// `subscribe:file`, `unsubscribe:file`, `file-downloaded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileRef {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The file.
    pub file_id: String,
    /// Must be the file id, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// What another device of the uploader asks the uploading device to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadCommand {
    /// Stop sending parts for now.
    Pause,
    /// Go on.
    Resume,
    /// Give up: the uploading device aborts the upload.
    Cancel,
}

/// `control-upload {roomId?, fileId, action}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlUpload {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The upload.
    pub file_id: String,
    /// What to do.
    pub action: UploadCommand,
}

/// `share-file {roomId?, fileId, link, message?}`: a chat message about one of the
/// room's files, carrying its link sealed (field `link`) and an optional sealed text
/// (field `text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareFile {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The file or folder.
    pub file_id: String,
    /// The sealed link.
    pub link: String,
    /// The sealed message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `files {roomId?, beforeSeq?, limit?}` and `audit {roomId?, beforeSeq?, limit?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Page {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Entries strictly before this seq; the newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<u64>,
    /// How many, 1 to the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// `create-folder {roomId?, sealedName}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateFolder {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The folder's sealed name (context event `file`, field `name`).
    pub sealed_name: String,
}

// ---------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------

/// `file-upload-started` data (numbered), and the fields every upload snapshot starts
/// with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadStartedData {
    /// The room.
    pub room_id: String,
    /// The file the upload makes.
    pub file_id: String,
    /// The upload (the same as `fileId`: one upload session makes one file).
    pub upload_id: String,
    /// The uploader.
    pub user_id: String,
    /// Their name.
    pub user_name: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The sealed name, type, key and path.
    #[serde(flatten)]
    pub sealed: SealedFields,
    /// The folder it goes into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// When it started (ISO 8601).
    pub started_at: String,
}

/// `file-upload-progress` data (not numbered; coalesced).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadProgressData<'a> {
    /// The room.
    pub room_id: &'a str,
    /// The file.
    pub file_id: &'a str,
    /// The upload (= `fileId`).
    pub upload_id: &'a str,
    /// The uploader.
    pub user_id: &'a str,
    /// The figures, as the room measured them.
    #[serde(flatten)]
    pub progress: ProgressView,
}

/// `file-upload-paused` / `file-upload-resumed` data (not numbered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadPauseData<'a> {
    /// The room.
    pub room_id: &'a str,
    /// The file.
    pub file_id: &'a str,
    /// The upload (= `fileId`).
    pub upload_id: &'a str,
    /// The uploader.
    pub user_id: &'a str,
    /// Bytes uploaded when it paused or resumed.
    pub bytes_uploaded: u64,
    /// `file-upload-paused`: when (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<String>,
    /// `file-upload-resumed`: when (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_at: Option<String>,
}

/// `file-upload-completed` data (numbered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadCompletedData {
    /// The room.
    pub room_id: String,
    /// The file.
    pub file_id: String,
    /// The upload (= `fileId`).
    pub upload_id: String,
    /// The uploader.
    pub user_id: String,
    /// Their name.
    pub user_name: String,
    /// Its size.
    pub size: u64,
    /// When storage completed it (ISO 8601).
    pub completed_at: String,
}

/// `file-upload-failed` data (numbered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadFailedData {
    /// The room.
    pub room_id: String,
    /// The file it would have made.
    pub file_id: String,
    /// The upload (= `fileId`).
    pub upload_id: String,
    /// The uploader.
    pub user_id: String,
    /// Their name.
    pub user_name: String,
    /// `cancelled` or `expired`.
    pub reason: FailReason,
    /// When (ISO 8601).
    pub failed_at: String,
}

/// `file-added` data (numbered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAddedData {
    /// The room.
    pub room_id: String,
    /// The file or folder.
    pub file: RoomFile,
}

/// `file-removed` data (numbered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRemovedData {
    /// The room.
    pub room_id: String,
    /// The file or folder.
    pub file_id: String,
    /// Who removed it.
    pub removed_by: String,
    /// Their name.
    pub removed_by_name: String,
    /// When (ISO 8601).
    pub removed_at: String,
}

/// `upload-control` data: sent to the uploader's other devices only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadControlData<'a> {
    /// The room.
    pub room_id: &'a str,
    /// The upload.
    pub file_id: &'a str,
    /// What to do.
    pub action: UploadCommand,
    /// The `sessionId` of the device that asked.
    pub requested_by: String,
}

/// One upload in flight in the `uploads` snapshot a joining socket receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadSnapshot {
    /// What `file-upload-started` said.
    #[serde(flatten)]
    pub started: UploadStartedData,
    /// `uploading` or `paused`.
    pub state: &'static str,
    /// The figures now.
    #[serde(flatten)]
    pub progress: ProgressView,
}

/// One entry of a `files` page: the file, and its processing status if it has one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// The file or folder.
    #[serde(flatten)]
    pub file: RoomFile,
    /// The seq of its `file-added` event (page with `beforeSeq`).
    pub seq: u64,
    /// Its processing status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing: Option<ProcessingState>,
}

/// The file a `share-file` message carries (`file` of `new-message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFile {
    /// The file or folder.
    pub file_id: String,
    /// Its link, sealed (field `link`).
    pub link: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn snapshots_flatten_into_one_object() {
        let started = UploadStartedData {
            room_id: "r1".into(),
            file_id: "f".into(),
            upload_id: "f".into(),
            user_id: "alice".into(),
            user_name: "Alice".into(),
            size: 10,
            sealed: SealedFields {
                sealed_name: "AQ".into(),
                ..SealedFields::default()
            },
            parent_id: None,
            started_at: "t".into(),
        };
        let snap = UploadSnapshot {
            started,
            state: "paused",
            progress: ProgressView {
                bytes_uploaded: 5,
                total_bytes: 10,
                percentage: 50.0,
                upload_speed: None,
                estimated_time_remaining: None,
            },
        };
        let v = serde_json::to_value(&snap).unwrap();
        assert_eq!(v["sealedName"], "AQ");
        assert_eq!(v["bytesUploaded"], 5);
        assert_eq!(v["state"], "paused");
        assert!(v["uploadSpeed"].is_null());
        assert!(v.get("sealedType").is_none());
    }
}
