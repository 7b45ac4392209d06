//! The internal calls between the worker and an `UploadSession` object: which call is
//! which (method + path), and their bodies. Pure data, so both ends (and native unit
//! tests) agree on it.
//!
//! Owner calls carry the caller's `Authorization`; the object checks it, where the
//! owner-token hash is. Part-write calls come from the worker's own `/blob` handler
//! after it verified the URL's signature, so they carry no token.

use sealdrop_protocol::ids::{FileId, OwnerTokenHash, ShareToken};
use sealdrop_protocol::plan::PartPlan;
use sealdrop_protocol::session::{Owner, WriteGrant};
use sealdrop_protocol::share::UpdateShareRequest;
use serde::{Deserialize, Serialize};
use worker::Method;

pub(crate) use super::room_tie::RoomTie;

/// The header with which the object marks a `complete` or `abort` answer of an upload
/// tied to a room: the room's id. The worker tells the room and strips the header.
pub(crate) const ROOM_HEADER: &str = "x-sealdrop-room";

/// What the worker asks a session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `POST /create`, body [`CreateSession`], answer [`Created`].
    Create,
    /// `GET /status` (owner).
    Status,
    /// `POST /part-urls` (owner), body `PartUrlsRequest`.
    PartUrls,
    /// `POST /complete` (owner), body `CompleteRequest`.
    Complete,
    /// `POST /abort` (owner).
    Abort,
    /// `GET /file` (owner): the record of a completed file.
    File,
    /// `GET /room`: the room the upload belongs to ([`RoomTie`]), or `404
    /// file_not_found`.
    Room,
    /// `GET /room-file`: the record of a room's completed file, for a member (the
    /// worker has checked membership with the room), without the owner's credentials.
    RoomFile,
    /// `POST /room-delete`: its room removed the completed file: delete the object and
    /// everything the session keeps. `204`, also when nothing is left.
    RoomDelete,
    /// `POST /delete` (owner): delete the file.
    DeleteFile,
    /// `POST /thumbnail` (owner), body the sealed thumbnail: keep it (replacing one).
    PutThumbnail,
    /// `GET /room-thumbnail`: the header and sealed thumbnail of a room's file, for a
    /// member (the worker has checked membership), or `404 thumbnail_not_found`.
    RoomThumbnail,
    /// `GET /shares` (owner): every share of the file, with its access records.
    Shares,
    /// `POST /shares` (owner), body `CreateShareRequest`: a new share.
    CreateShare,
    /// `POST /shares/update` (owner), body [`ShareChange`]: change a share.
    UpdateShare,
    /// `POST /shares/revoke` (owner), body [`ShareChange`] (no patch): revoke it.
    RevokeShare,
    /// `POST /parts/{n}/begin`, body [`BeginPart`], answer [`Grant`].
    BeginPart(u32),
    /// `POST /parts/{n}/renew`, body [`Fenced`], answer [`Grant`].
    RenewPart(u32),
    /// `POST /parts/{n}/finish`, body [`FinishPart`], answer `PutPartResponse`.
    FinishPart(u32),
    /// `POST /parts/{n}/fail`, body [`FailPart`], answer 204.
    FailPart(u32),
    /// `POST /owner`, body [`OwnerQuery`], answer `protocol::sweep::Owner`: the
    /// scheduled sweep asks whether the session still uses an upload storage lists.
    Owner,
}

impl Op {
    /// The call's path inside the object.
    pub fn path(self) -> String {
        match self {
            Self::Create => "/create".into(),
            Self::Status => "/status".into(),
            Self::PartUrls => "/part-urls".into(),
            Self::Complete => "/complete".into(),
            Self::Abort => "/abort".into(),
            Self::File => "/file".into(),
            Self::Room => "/room".into(),
            Self::RoomFile => "/room-file".into(),
            Self::RoomDelete => "/room-delete".into(),
            Self::DeleteFile => "/delete".into(),
            Self::PutThumbnail => "/thumbnail".into(),
            Self::RoomThumbnail => "/room-thumbnail".into(),
            Self::Shares | Self::CreateShare => "/shares".into(),
            Self::UpdateShare => "/shares/update".into(),
            Self::RevokeShare => "/shares/revoke".into(),
            Self::BeginPart(n) => format!("/parts/{n}/begin"),
            Self::RenewPart(n) => format!("/parts/{n}/renew"),
            Self::FinishPart(n) => format!("/parts/{n}/finish"),
            Self::FailPart(n) => format!("/parts/{n}/fail"),
            Self::Owner => "/owner".into(),
        }
    }

    /// The call's method.
    pub fn method(self) -> Method {
        match self {
            Self::Status
            | Self::File
            | Self::Room
            | Self::RoomFile
            | Self::RoomThumbnail
            | Self::Shares => Method::Get,
            _ => Method::Post,
        }
    }

    /// The call a request to the object is, if any.
    pub fn parse(method: &Method, path: &str) -> Option<Self> {
        let op = match path {
            "/create" => Self::Create,
            "/status" => Self::Status,
            "/part-urls" => Self::PartUrls,
            "/complete" => Self::Complete,
            "/abort" => Self::Abort,
            "/file" => Self::File,
            "/room" => Self::Room,
            "/room-file" => Self::RoomFile,
            "/room-delete" => Self::RoomDelete,
            "/delete" => Self::DeleteFile,
            "/thumbnail" => Self::PutThumbnail,
            "/room-thumbnail" => Self::RoomThumbnail,
            "/shares" if *method == Method::Get => Self::Shares,
            "/shares" => Self::CreateShare,
            "/shares/update" => Self::UpdateShare,
            "/shares/revoke" => Self::RevokeShare,
            "/owner" => Self::Owner,
            _ => {
                let (n, action) = path.strip_prefix("/parts/")?.split_once('/')?;
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let n = n.parse().ok()?;
                match action {
                    "begin" => Self::BeginPart(n),
                    "renew" => Self::RenewPart(n),
                    "finish" => Self::FinishPart(n),
                    "fail" => Self::FailPart(n),
                    _ => return None,
                }
            }
        };
        (op.method() == *method).then_some(op)
    }
}

/// Body of [`Op::Create`]: an upload the worker already validated. The owner token
/// itself never reaches the object, only its hash.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateSession {
    pub file_id: FileId,
    pub owner_token_hash: OwnerTokenHash,
    /// The header's bytes.
    pub header: Vec<u8>,
    /// The sealed metadata's bytes.
    pub metadata: Vec<u8>,
    pub plan: PartPlan,
    /// What makes a repeated create the same request (`ValidCreateUpload::digest`).
    pub digest: [u8; 32],
    /// Whether the ids were derived from an idempotency key: then an existing session
    /// with the same digest is this very request, retried.
    pub idempotent: bool,
    /// The room the upload goes into (already admitted by it).
    #[serde(default)]
    pub room: Option<RoomTie>,
    /// Who owns the file.
    pub owner: Owner,
    /// The `Account` object its bytes count against.
    pub account: String,
    /// How long the completed file lives (`None`: never expires).
    pub lifetime_ms: Option<u64>,
}

/// Body of [`Op::UpdateShare`] and [`Op::RevokeShare`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ShareChange {
    /// The share (already checked to carry this server's MAC).
    pub token: ShareToken,
    /// What to change (updates only).
    #[serde(default)]
    pub patch: Option<UpdateShareRequest>,
}

/// Answer of [`Op::Create`] (201, also for a retried idempotent create).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Created {
    pub plan: PartPlan,
    pub expires_at: u64,
}

/// Body of [`Op::BeginPart`]: the part's signed size and upload id.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BeginPart {
    pub size: u64,
    pub upload_id: String,
}

/// A lease on a part write (answer of [`Op::BeginPart`] and [`Op::RenewPart`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Grant {
    pub fence: u64,
    pub lease_until: u64,
}

impl From<WriteGrant> for Grant {
    fn from(g: WriteGrant) -> Self {
        Grant {
            fence: g.fence,
            lease_until: g.lease_until,
        }
    }
}

/// Body of [`Op::RenewPart`] and [`Op::FailPart`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Fenced {
    pub fence: u64,
}

/// Body of [`Op::FailPart`]: the write's fence, and whether storage said it no longer
/// has the upload (the session then learns that: a completion may have landed late, or
/// storage aborted the upload).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FailPart {
    pub fence: u64,
    pub gone: bool,
}

/// Body of [`Op::Owner`]: an upload of the file's key that storage lists.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OwnerQuery {
    pub upload_id: String,
}

/// Body of [`Op::FinishPart`]: storage accepted the part.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FinishPart {
    pub fence: u64,
    /// The ETag R2 answered.
    pub etag: String,
    /// The bytes that went in (the `FixedLengthStream`'s length).
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips_through_its_path() {
        let ops = [
            Op::Create,
            Op::Status,
            Op::PartUrls,
            Op::Complete,
            Op::Abort,
            Op::File,
            Op::Room,
            Op::RoomFile,
            Op::RoomDelete,
            Op::DeleteFile,
            Op::PutThumbnail,
            Op::RoomThumbnail,
            Op::Shares,
            Op::CreateShare,
            Op::UpdateShare,
            Op::RevokeShare,
            Op::BeginPart(1),
            Op::RenewPart(10_000),
            Op::FinishPart(7),
            Op::FailPart(3),
            Op::Owner,
        ];
        for op in ops {
            assert_eq!(Op::parse(&op.method(), &op.path()), Some(op), "{op:?}");
            let other = if op.method() == Method::Get {
                Method::Post
            } else {
                Method::Get
            };
            assert_ne!(Op::parse(&other, &op.path()), Some(op), "{op:?}");
        }
    }

    #[test]
    fn anything_else_is_no_call() {
        for path in [
            "",
            "/",
            "/nope",
            "/parts/1",
            "/parts//begin",
            "/parts/x/begin",
            "/parts/+1/begin",
            "/parts/1/begin/x",
            "/parts/1/stop",
            "/parts/99999999999/begin",
        ] {
            assert_eq!(Op::parse(&Method::Post, path), None, "{path:?}");
        }
    }
}
