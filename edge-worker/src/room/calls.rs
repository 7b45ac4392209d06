//! The internal calls between the worker and a `Room` object besides its WebSocket:
//! which call is which (path), and their bodies. Pure data, so both ends (and native
//! unit tests) agree on it. Only the worker reaches a Durable Object, so these calls
//! carry what the worker already checked (a verified JWT's user and role, a
//! processor's configured name) and the room trusts it.

use sealdrop_protocol::jwt::Role;
use sealdrop_protocol::room::files::{NotifyKind, SealedFields};
use sealdrop_protocol::room::processing::ProcessingReport;
use serde::{Deserialize, Serialize};

/// What the worker asks a room (every call is a `POST` with a JSON body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoomCall {
    /// `/internal/uploads/admit`, body [`AdmitCall`]: admit an upload before its
    /// session is created. Answer `{fileId, expiresAt}`.
    Admit,
    /// `/internal/uploads/completed`, body [`FileCall`]: storage completed it.
    Completed,
    /// `/internal/uploads/cancelled`, body [`FileCall`]: its session was aborted.
    Cancelled,
    /// `/internal/files/deleted`, body [`FileCall`]: its owner deleted the completed
    /// file (`DELETE /api/files/{id}`).
    Deleted,
    /// `/internal/files/access`, body [`AccessCall`]: may this user read this file?
    /// Answer: the room's file.
    Access,
    /// `/internal/files/processing`, body [`ProcessingCall`]: a processor's report.
    Processing,
    /// `/internal/notify-failed`, body [`NotifyFailedCall`]: a webhook failed for good.
    NotifyFailed,
}

impl RoomCall {
    /// The call's path inside the object.
    pub fn path(self) -> &'static str {
        match self {
            Self::Admit => "/internal/uploads/admit",
            Self::Completed => "/internal/uploads/completed",
            Self::Cancelled => "/internal/uploads/cancelled",
            Self::Deleted => "/internal/files/deleted",
            Self::Access => "/internal/files/access",
            Self::Processing => "/internal/files/processing",
            Self::NotifyFailed => "/internal/notify-failed",
        }
    }

    /// The call a path names, if any.
    pub fn parse(path: &str) -> Option<Self> {
        [
            Self::Admit,
            Self::Completed,
            Self::Cancelled,
            Self::Deleted,
            Self::Access,
            Self::Processing,
            Self::NotifyFailed,
        ]
        .into_iter()
        .find(|c| c.path() == path)
    }
}

/// Body of [`RoomCall::Admit`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AdmitCall {
    pub file_id: String,
    pub user_id: String,
    pub user_name: String,
    pub role: Role,
    pub size: u64,
    #[serde(flatten)]
    pub sealed: SealedFields,
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// Body of [`RoomCall::Completed`], [`RoomCall::Cancelled`] and [`RoomCall::Deleted`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileCall {
    pub file_id: String,
}

/// Body of [`RoomCall::Access`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AccessCall {
    pub file_id: String,
    pub user_id: String,
}

/// Body of [`RoomCall::Processing`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProcessingCall {
    pub file_id: String,
    /// The processor's configured name.
    pub processor: String,
    /// The report as the processor sent it (validated again by the room).
    pub report: ProcessingReport,
}

/// Body of [`RoomCall::NotifyFailed`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NotifyFailedCall {
    pub user_id: String,
    pub kind: NotifyKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_round_trips_through_its_path() {
        for call in [
            RoomCall::Admit,
            RoomCall::Completed,
            RoomCall::Cancelled,
            RoomCall::Deleted,
            RoomCall::Access,
            RoomCall::Processing,
            RoomCall::NotifyFailed,
        ] {
            assert_eq!(RoomCall::parse(call.path()), Some(call));
        }
        for path in [
            "",
            "/",
            "/internal",
            "/internal/uploads",
            "/api/rooms/r1/ws",
        ] {
            assert_eq!(RoomCall::parse(path), None, "{path}");
        }
    }
}
