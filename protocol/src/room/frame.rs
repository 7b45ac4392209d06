//! The frames of a room socket (docs/PROTOCOL.md): client events parsed strictly, and
//! the server's events built as JSON text.
//!
//! A frame is one WebSocket text message holding a JSON object
//! `{"event": "...", "data": {...}, "id": "..."}`. Server frames of room events (the ones
//! stored and replayed) also carry `"seq"`, the event's place in the room's history, at
//! the top level (so `message-read`'s own `data.seq`, the read mark, stays what seed 003
//! calls it).
//!
//! Parsing refuses anything it does not expect, with the most precise code it can:
//! `invalid_json` (not a JSON object), `invalid_frame` (a bad `id`, a missing `event`, an
//! unknown top-level key), `unknown_event`, `invalid_data` (serde's message names the
//! field: missing, wrong type, unknown). The `id` is read first, so every refusal of a
//! frame that had a usable `id` can be matched to it by the client.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::{RoomError, RoomErrorCode};
use super::file_frames::{
    ControlUpload, CreateFolder, FileRef, MessageFile, Page, ReportProgress, ShareFile,
};
use crate::jwt::Role;

/// Longest request `id`, in characters.
pub const MAX_REQUEST_ID_LEN: usize = 64;

// ---------------------------------------------------------------------------------
// Client events
// ---------------------------------------------------------------------------------

/// One parsed client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// The request id, when the client wants an `ack` or `error` answer matched to it.
    pub id: Option<String>,
    /// The event and its data.
    pub event: ClientEvent,
}

/// The events a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `authenticate {token}`.
    Authenticate(Authenticate),
    /// `join-room {roomId?, userId?, lastSeq?}`.
    JoinRoom(JoinRoom),
    /// `leave-room {roomId?}`.
    LeaveRoom(RoomOnly),
    /// `send-message {roomId?, text, attachments?}`.
    SendMessage(SendMessage),
    /// `history {roomId?, beforeSeq?, limit?}`.
    History(History),
    /// `mark-as-read {roomId?, seq}`.
    MarkAsRead(MarkAsRead),
    /// `lock-room {roomId?, userId?, reason?}`.
    LockRoom(LockRoom),
    /// `unlock-room {roomId?, userId?}`.
    UnlockRoom(UnlockRoom),
    /// `file-upload-progress {roomId?, fileId, uploadId?, bytesUploaded}`.
    ReportProgress(ReportProgress),
    /// `file-upload-paused {roomId?, fileId, uploadId?}`.
    UploadPaused(FileRef),
    /// `file-upload-resumed {roomId?, fileId, uploadId?}`.
    UploadResumed(FileRef),
    /// `control-upload {roomId?, fileId, action}`.
    ControlUpload(ControlUpload),
    /// `share-file {roomId?, fileId, link, message?}`.
    ShareFile(ShareFile),
    /// `files {roomId?, beforeSeq?, limit?}`.
    Files(Page),
    /// `remove-file {roomId?, fileId}`.
    RemoveFile(FileRef),
    /// `create-folder {roomId?, sealedName}`.
    CreateFolder(CreateFolder),
    /// `subscribe:file {roomId?, fileId}`.
    SubscribeFile(FileRef),
    /// `unsubscribe:file {roomId?, fileId}`.
    UnsubscribeFile(FileRef),
    /// `audit {roomId?, beforeSeq?, limit?}`.
    Audit(Page),
    /// `file-downloaded {roomId?, fileId}`.
    FileDownloaded(FileRef),
}

impl ClientEvent {
    /// Every client event name, for docs and tests.
    pub const NAMES: [&'static str; 20] = [
        "authenticate",
        "join-room",
        "leave-room",
        "send-message",
        "history",
        "mark-as-read",
        "lock-room",
        "unlock-room",
        "file-upload-progress",
        "file-upload-paused",
        "file-upload-resumed",
        "control-upload",
        "share-file",
        "files",
        "remove-file",
        "create-folder",
        "subscribe:file",
        "unsubscribe:file",
        "audit",
        "file-downloaded",
    ];

    /// The `roomId` the event names, if it names one.
    pub fn room_id(&self) -> Option<&str> {
        match self {
            Self::Authenticate(_) => None,
            Self::JoinRoom(d) => d.room_id.as_deref(),
            Self::LeaveRoom(d) => d.room_id.as_deref(),
            Self::SendMessage(d) => d.room_id.as_deref(),
            Self::History(d) => d.room_id.as_deref(),
            Self::MarkAsRead(d) => d.room_id.as_deref(),
            Self::LockRoom(d) => d.room_id.as_deref(),
            Self::UnlockRoom(d) => d.room_id.as_deref(),
            Self::ReportProgress(d) => d.room_id.as_deref(),
            Self::UploadPaused(d)
            | Self::UploadResumed(d)
            | Self::RemoveFile(d)
            | Self::SubscribeFile(d)
            | Self::UnsubscribeFile(d)
            | Self::FileDownloaded(d) => d.room_id.as_deref(),
            Self::ControlUpload(d) => d.room_id.as_deref(),
            Self::ShareFile(d) => d.room_id.as_deref(),
            Self::Files(d) | Self::Audit(d) => d.room_id.as_deref(),
            Self::CreateFolder(d) => d.room_id.as_deref(),
        }
    }

    /// The `userId` the event names, if it names one (seed 004 sends it; the room only
    /// checks that it is the token's user).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::JoinRoom(d) => d.user_id.as_deref(),
            Self::LockRoom(d) => d.user_id.as_deref(),
            Self::UnlockRoom(d) => d.user_id.as_deref(),
            _ => None,
        }
    }
}

/// `authenticate` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authenticate {
    /// The JWT.
    pub token: String,
}

/// `join-room` data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRoom {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Must be the token's user, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The last event seq this client saw: replay what came after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

/// Data of events that name only the room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomOnly {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
}

/// `send-message` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessage {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The sealed text (FORMAT.md, Room payloads; field `text`).
    pub text: String,
    /// Sealed attachments (field `attachment:<index>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

/// `history` data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct History {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Messages strictly before this seq; the newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<u64>,
    /// How many, 1 to the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// `mark-as-read` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkAsRead {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Read up to and including this seq.
    pub seq: u64,
}

/// `lock-room` data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockRoom {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Must be the token's user, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The sealed reason (field `reason` of event `room-locked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `unlock-room` data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnlockRoom {
    /// This socket's room, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Must be the token's user, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A refused frame: the error, and the frame's `id` when it had a usable one.
pub type Refusal = (Option<String>, RoomError);

/// Parses one text frame of at most `max_bytes` bytes.
pub fn parse_client_frame(text: &str, max_bytes: usize) -> Result<ClientFrame, Refusal> {
    if text.len() > max_bytes {
        return Err((
            None,
            RoomError::new(
                RoomErrorCode::FrameTooLarge,
                format!(
                    "a frame is at most {max_bytes} bytes, this one is {}",
                    text.len()
                ),
            ),
        ));
    }
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(|e| {
        (
            None,
            RoomError::new(
                RoomErrorCode::InvalidJson,
                format!("a frame is a JSON object {{event, data, id}}: {e}"),
            ),
        )
    })?;
    let id = match fields.get("id") {
        None => None,
        Some(raw) => Some(request_id(raw).map_err(|e| (None, e))?),
    };
    let fail = |code, message: String| Err((id.clone(), RoomError::new(code, message)));
    if let Some(key) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "event" | "data" | "id"))
    {
        return fail(
            RoomErrorCode::InvalidFrame,
            format!("unknown top-level field {key:?}: a frame has event, data and id"),
        );
    }
    let Some(event) = fields.get("event") else {
        return fail(
            RoomErrorCode::InvalidFrame,
            "the frame has no \"event\"".into(),
        );
    };
    let Ok(event) = serde_json::from_str::<String>(event.get()) else {
        return fail(
            RoomErrorCode::InvalidFrame,
            "\"event\" must be a string".into(),
        );
    };
    let data = fields.get("data").map_or("{}", |raw| raw.get());
    let parsed = match event.as_str() {
        "authenticate" => data_as(data).map(ClientEvent::Authenticate),
        "join-room" => data_as(data).map(ClientEvent::JoinRoom),
        "leave-room" => data_as(data).map(ClientEvent::LeaveRoom),
        "send-message" => data_as(data).map(ClientEvent::SendMessage),
        "history" => data_as(data).map(ClientEvent::History),
        "mark-as-read" => data_as(data).map(ClientEvent::MarkAsRead),
        "lock-room" => data_as(data).map(ClientEvent::LockRoom),
        "unlock-room" => data_as(data).map(ClientEvent::UnlockRoom),
        "file-upload-progress" => data_as(data).map(ClientEvent::ReportProgress),
        "file-upload-paused" => data_as(data).map(ClientEvent::UploadPaused),
        "file-upload-resumed" => data_as(data).map(ClientEvent::UploadResumed),
        "control-upload" => data_as(data).map(ClientEvent::ControlUpload),
        "share-file" => data_as(data).map(ClientEvent::ShareFile),
        "files" => data_as(data).map(ClientEvent::Files),
        "remove-file" => data_as(data).map(ClientEvent::RemoveFile),
        "create-folder" => data_as(data).map(ClientEvent::CreateFolder),
        "subscribe:file" => data_as(data).map(ClientEvent::SubscribeFile),
        "unsubscribe:file" => data_as(data).map(ClientEvent::UnsubscribeFile),
        "audit" => data_as(data).map(ClientEvent::Audit),
        "file-downloaded" => data_as(data).map(ClientEvent::FileDownloaded),
        _ => {
            let shown: String = event.chars().take(64).collect();
            return fail(
                RoomErrorCode::UnknownEvent,
                format!("unknown event {shown:?}; see docs/PROTOCOL.md for the events"),
            );
        }
    };
    match parsed {
        Ok(event) => Ok(ClientFrame { id, event }),
        Err(why) => fail(RoomErrorCode::InvalidData, format!("{event}: {why}")),
    }
}

/// A request id: a JSON string of 1 to 64 printable ASCII characters.
fn request_id(raw: &RawValue) -> Result<String, RoomError> {
    let bad = || {
        RoomError::new(
            RoomErrorCode::InvalidFrame,
            "\"id\" must be a string of 1 to 64 printable ASCII characters",
        )
    };
    let id: String = serde_json::from_str(raw.get()).map_err(|_| bad())?;
    let printable = id.bytes().all(|b| (0x20..0x7f).contains(&b));
    if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN || !printable {
        return Err(bad());
    }
    Ok(id)
}

/// `data` as `T`: a JSON object of exactly `T`'s fields (`null` counts as `{}`).
fn data_as<T: DeserializeOwned>(data: &str) -> Result<T, String> {
    let data = if data == "null" { "{}" } else { data };
    if !data.starts_with('{') {
        return Err("data must be a JSON object".into());
    }
    serde_json::from_str(data).map_err(|e| {
        // serde's message names the field; its " at line 1 column N" is noise here.
        let text = e.to_string();
        match text.find(" at line ") {
            Some(i) => text[..i].to_owned(),
            None => text,
        }
    })
}

// ---------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------

/// The room events that are stored, numbered and replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `user-joined`.
    UserJoined,
    /// `user-left`.
    UserLeft,
    /// `new-message` (kept as history; never pruned).
    NewMessage,
    /// `message-read`.
    MessageRead,
    /// `room-locked`.
    RoomLocked,
    /// `room-unlocked`.
    RoomUnlocked,
    /// `file-upload-started`.
    FileUploadStarted,
    /// `file-upload-completed`.
    FileUploadCompleted,
    /// `file-upload-failed`.
    FileUploadFailed,
    /// `file-added`.
    FileAdded,
    /// `file-removed`.
    FileRemoved,
}

impl EventKind {
    /// Every stored kind.
    pub const ALL: [EventKind; 11] = [
        Self::UserJoined,
        Self::UserLeft,
        Self::NewMessage,
        Self::MessageRead,
        Self::RoomLocked,
        Self::RoomUnlocked,
        Self::FileUploadStarted,
        Self::FileUploadCompleted,
        Self::FileUploadFailed,
        Self::FileAdded,
        Self::FileRemoved,
    ];

    /// The event name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserJoined => "user-joined",
            Self::UserLeft => "user-left",
            Self::NewMessage => "new-message",
            Self::MessageRead => "message-read",
            Self::RoomLocked => "room-locked",
            Self::RoomUnlocked => "room-unlocked",
            Self::FileUploadStarted => "file-upload-started",
            Self::FileUploadCompleted => "file-upload-completed",
            Self::FileUploadFailed => "file-upload-failed",
            Self::FileAdded => "file-added",
            Self::FileRemoved => "file-removed",
        }
    }

    /// The kind for a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// `new-message` data (and each entry of a history page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageData {
    /// The room.
    pub room_id: String,
    /// The message id.
    pub id: String,
    /// Its seq (the same as the frame's).
    pub seq: u64,
    /// Who sent it (the token's `sub`).
    pub sender_id: String,
    /// Their display name when they sent it.
    pub sender_name: String,
    /// Sealed text (absent in a `share-file` message without one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Sealed attachments.
    pub attachments: Vec<String>,
    /// The file a `share-file` message carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<MessageFile>,
    /// When the room accepted it (ISO 8601).
    pub timestamp: String,
}

/// `user-joined` / `user-left` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberData {
    /// The room.
    pub room_id: String,
    /// The user.
    pub user_id: String,
    /// Their display name.
    pub user_name: String,
    /// When they joined (ISO 8601).
    pub joined_at: String,
    /// `user-left` only: when they left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<String>,
}

/// `message-read` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadData {
    /// The room.
    pub room_id: String,
    /// Who read.
    pub user_id: String,
    /// Read up to and including this seq.
    pub seq: u64,
}

/// The lock of a locked room: `room-locked` data, and `lock` in `room-state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockData {
    /// The room.
    pub room_id: String,
    /// Who locked it.
    pub locked_by: String,
    /// Their name.
    pub locked_by_name: String,
    /// When (ISO 8601).
    pub locked_at: String,
    /// The sealed reason, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `room-unlocked` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlockData {
    /// The room.
    pub room_id: String,
    /// Who unlocked it.
    pub unlocked_by: String,
    /// Their name.
    pub unlocked_by_name: String,
    /// When (ISO 8601).
    pub unlocked_at: String,
}

/// One online user in `presence`, and one device count in `presence-changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceUser {
    /// The room.
    pub room_id: String,
    /// The user.
    pub user_id: String,
    /// Their display name.
    pub user_name: String,
    /// How many of their devices are in the room now (0 in `offline`).
    pub devices: usize,
}

/// `presence` data: who is online, sent on join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceData {
    /// The room.
    pub room_id: String,
    /// Every user with at least one device in the room.
    pub users: Vec<PresenceUser>,
}

/// `presence-changed` data: what changed in the room's membership and presence during
/// one presence window, for one recipient (see `room::presence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChangedData {
    /// The room.
    pub room_id: String,
    /// Who became a member (the stored `user-joined` events), in seq order.
    pub joined: Vec<MemberChange>,
    /// Whose membership ended (the stored `user-left` events), in seq order.
    pub left: Vec<MemberChange>,
    /// Users whose device count is now at least 1 and differs from before the window.
    pub online: Vec<PresenceUser>,
    /// Users who had devices before the window and have none now (`devices: 0`).
    pub offline: Vec<PresenceUser>,
}

/// One `user-joined` / `user-left` inside `presence-changed`: the stored event's data
/// and its seq.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    /// The stored event's seq.
    pub seq: u64,
    /// Its data.
    #[serde(flatten)]
    pub member: MemberData,
}

/// `you` in `room-state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct You {
    /// Your user id.
    pub user_id: String,
    /// Your name.
    pub user_name: String,
    /// Your role here.
    pub role: Role,
}

/// `room-state` data, sent on join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomStateData {
    /// The room.
    pub room_id: String,
    /// The seq of the room's last event (0 for a new room).
    pub head: u64,
    /// The lock, when the room is locked.
    pub lock: Option<LockData>,
    /// How many members the room has.
    pub member_count: usize,
    /// Read marks: user id to the seq they read up to.
    pub reads: BTreeMap<String, u64>,
    /// Who you are here.
    pub you: You,
}

/// `history` event data and the answer (`ack`) of a `history` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage<M> {
    /// The room.
    pub room_id: String,
    /// Messages, oldest first.
    pub messages: Vec<M>,
    /// Whether older messages exist.
    pub has_more: bool,
}

/// `resync-required` data: the gap since `lastSeq` cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResyncData {
    /// The room.
    pub room_id: String,
    /// The seq the client asked to resume after.
    pub last_seq: u64,
    /// The oldest seq the room can still replay after (its replay floor).
    pub oldest_seq: u64,
    /// The room's last seq.
    pub head: u64,
    /// Why: `too_old`, `too_many` or `ahead`.
    pub reason: String,
}

/// `authentication_successful` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthSuccess {
    /// The token's `sub`.
    pub user_id: String,
    /// The name others see.
    pub user_name: String,
    /// This connection.
    pub session_id: String,
    /// The role the token grants here.
    pub role: Role,
}

/// `authentication_failed` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthFailure {
    /// Human text.
    pub reason: String,
    /// `invalid_token`, `expired_token` or `unauthorized`.
    pub code: String,
}

/// `error` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorData<'a> {
    /// The refused frame's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// The code.
    pub code: RoomErrorCode,
    /// Human text.
    pub message: &'a str,
    /// Seconds to wait (`rate_limited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// `{"event":<event>,"data":<data>}`.
pub fn frame<T: Serialize + ?Sized>(event: &str, data: &T) -> String {
    frame_raw(event, None, &to_json(data))
}

/// `{"event":<event>,"seq":<seq>,"data":<data JSON>}` (`seq` only for room events).
pub fn frame_raw(event: &str, seq: Option<u64>, data_json: &str) -> String {
    match seq {
        Some(seq) => format!(r#"{{"event":"{event}","seq":{seq},"data":{data_json}}}"#),
        None => format!(r#"{{"event":"{event}","data":{data_json}}}"#),
    }
}

/// JSON text of a value built from plain data (cannot fail; `{}` if it somehow did).
pub fn to_json<T: Serialize + ?Sized>(data: &T) -> String {
    serde_json::to_string(data).unwrap_or_else(|_| "{}".into())
}

/// An `error` frame.
pub fn error_frame(id: Option<&str>, error: &RoomError) -> String {
    frame(
        "error",
        &ErrorData {
            id,
            code: error.code,
            message: &error.message,
            retry_after: error.retry_after,
        },
    )
}

/// An `ack` frame: `{"event":"ack","data":{"id":<id>, ...body's fields}}`. `body` must
/// serialize to a JSON object.
pub fn ack_frame<T: Serialize + ?Sized>(id: &str, body: &T) -> String {
    let body = to_json(body);
    let id = to_json(id);
    let rest = body.strip_prefix('{').unwrap_or("}");
    let sep = if rest.starts_with('}') { "" } else { "," };
    format!(r#"{{"event":"ack","data":{{"id":{id}{sep}{rest}}}"#)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(text: &str) -> Result<ClientFrame, Refusal> {
        parse_client_frame(text, 64 * 1024)
    }

    fn refusal(text: &str) -> (Option<String>, RoomErrorCode, String) {
        let (id, e) = parse(text).unwrap_err();
        (id, e.code, e.message)
    }

    #[test]
    fn parses_every_event() {
        let f =
            parse(r#"{"event":"send-message","data":{"text":"AQ","attachments":["x"]},"id":"m1"}"#)
                .unwrap();
        assert_eq!(f.id.as_deref(), Some("m1"));
        assert_eq!(
            f.event,
            ClientEvent::SendMessage(SendMessage {
                room_id: None,
                text: "AQ".into(),
                attachments: vec!["x".into()]
            })
        );
        let j = parse(r#"{"event":"join-room","data":{"roomId":"r1","userId":"u","lastSeq":7}}"#)
            .unwrap();
        assert_eq!(j.event.room_id(), Some("r1"));
        assert_eq!(j.event.user_id(), Some("u"));
        // data may be absent or null where every field is optional.
        assert!(parse(r#"{"event":"leave-room"}"#).is_ok());
        assert!(parse(r#"{"event":"unlock-room","data":null}"#).is_ok());
        for name in ClientEvent::NAMES {
            let (_, code, _) = refusal(&format!(r#"{{"event":"{name}","data":{{"bogus":1}}}}"#));
            assert_eq!(code, RoomErrorCode::InvalidData, "{name}");
        }
    }

    #[test]
    fn refuses_with_precise_codes() {
        use RoomErrorCode::*;
        let cases: &[(&str, RoomErrorCode, Option<&str>, &str)] = &[
            ("not json", InvalidJson, None, "JSON object"),
            ("[1,2]", InvalidJson, None, "JSON object"),
            ("\"x\"", InvalidJson, None, "JSON object"),
            (
                r#"{"event":"history","id":5}"#,
                InvalidFrame,
                None,
                "\"id\"",
            ),
            (
                r#"{"event":"history","id":""}"#,
                InvalidFrame,
                None,
                "\"id\"",
            ),
            (
                r#"{"event":"history","id":"a\u0001"}"#,
                InvalidFrame,
                None,
                "\"id\"",
            ),
            (
                r#"{"data":{},"id":"a"}"#,
                InvalidFrame,
                Some("a"),
                "no \"event\"",
            ),
            (r#"{"event":5,"id":"a"}"#, InvalidFrame, Some("a"), "string"),
            (
                r#"{"event":"history","extra":1,"id":"a"}"#,
                InvalidFrame,
                Some("a"),
                "extra",
            ),
            (
                r#"{"event":"dance","id":"a"}"#,
                UnknownEvent,
                Some("a"),
                "dance",
            ),
            (
                r#"{"event":"send-message","id":"a"}"#,
                InvalidData,
                Some("a"),
                "missing field `text`",
            ),
            (
                r#"{"event":"send-message","data":{"text":5},"id":"a"}"#,
                InvalidData,
                Some("a"),
                "invalid type",
            ),
            (
                r#"{"event":"mark-as-read","data":{"seq":-1}}"#,
                InvalidData,
                None,
                "invalid value",
            ),
            (
                r#"{"event":"mark-as-read","data":{"seq":1.5}}"#,
                InvalidData,
                None,
                "invalid type",
            ),
            (
                r#"{"event":"history","data":[1]}"#,
                InvalidData,
                None,
                "object",
            ),
            (
                r#"{"event":"history","data":{"limit":"5"}}"#,
                InvalidData,
                None,
                "invalid type",
            ),
        ];
        for (text, code, id, needle) in cases {
            let (got_id, got_code, message) = refusal(text);
            assert_eq!(got_code, *code, "{text}: {message}");
            assert_eq!(got_id.as_deref(), *id, "{text}");
            assert!(
                message.contains(needle),
                "{text}: {message:?} lacks {needle:?}"
            );
            if *code == InvalidData {
                assert!(!message.contains("line 1"), "{message}");
            }
        }
        let big = format!(
            r#"{{"event":"history","id":"a","data":{{"x":"{}"}}}}"#,
            "a".repeat(100)
        );
        let (id, e) = parse_client_frame(&big, 64).unwrap_err();
        assert_eq!((id, e.code), (None, FrameTooLarge));
    }

    #[test]
    fn builds_frames() {
        assert_eq!(
            frame_raw("x", Some(3), "{}"),
            r#"{"event":"x","seq":3,"data":{}}"#
        );
        #[derive(Serialize)]
        struct Body {
            seq: u64,
        }
        let ack = ack_frame("q\"1", &Body { seq: 4 });
        assert_eq!(ack, r#"{"event":"ack","data":{"id":"q\"1","seq":4}}"#);
        let v: serde_json::Value = serde_json::from_str(&ack).unwrap();
        assert_eq!(v["data"]["seq"], 4);
        assert_eq!(
            ack_frame("a", &serde_json::json!({})),
            r#"{"event":"ack","data":{"id":"a"}}"#
        );
        let err = error_frame(Some("a"), &RoomError::rate_limited("messages", 1500));
        let v: serde_json::Value = serde_json::from_str(&err).unwrap();
        assert_eq!(v["event"], "error");
        assert_eq!(v["data"]["code"], "rate_limited");
        assert_eq!(v["data"]["retryAfter"], 2);
        assert_eq!(v["data"]["id"], "a");
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }
}
