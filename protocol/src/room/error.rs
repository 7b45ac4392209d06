//! What a room answers when it refuses a frame: an `error` event with a stable code.
//!
//! `error {id?, code, message, retryAfter?}`: `id` when the refused frame carried one,
//! `retryAfter` (seconds) with `rate_limited`. The connection stays open after every one
//! of these; only authentication failures, the authentication timeout, the connection
//! limit and the idle timeout close it, each with its own close code ([`CloseCode`]).

use serde::Serialize;

use crate::api_error::{ApiError, ApiErrorCode};

/// One stable error code of the room protocol (docs/PROTOCOL.md, Errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoomErrorCode {
    /// The frame is not JSON, or not an object `{event, data?, id?}`.
    InvalidJson,
    /// A binary frame, or an `id` that is not 1 to 64 printable ASCII characters.
    InvalidFrame,
    /// The frame is over the size limit.
    FrameTooLarge,
    /// The event name is not one the room knows.
    UnknownEvent,
    /// `data` is missing a field, has a field of the wrong type, an unknown field, or a
    /// value out of range; the message names it.
    InvalidData,
    /// An event other than `authenticate` before authentication.
    NotAuthenticated,
    /// `authenticate` on a socket that already is.
    AlreadyAuthenticated,
    /// A room event before `join-room` (or after `leave-room`).
    NotJoined,
    /// `roomId` names another room than the one this socket is connected to.
    WrongRoom,
    /// The role does not allow it, or `userId` is not the token's user.
    Forbidden,
    /// The room is locked and admits no new members.
    RoomLocked,
    /// Too many frames or messages: wait `retryAfter` seconds.
    RateLimited,
    /// The user has too many connections to this room (the socket is closed).
    TooManyConnections,
    /// `seq` is beyond the room's last event.
    InvalidSeq,
    /// The room failed to do it; nothing was changed. Retry.
    Internal,
    /// `authenticate`: the token is malformed, forged, for another audience or not
    /// valid yet (also in `authentication_failed`; the socket is closed).
    InvalidToken,
    /// `authenticate`: the token has expired (the socket is closed).
    ExpiredToken,
    /// `authenticate`: the token does not grant this room (the socket is closed).
    Unauthorized,
    /// No such file, folder or upload in flight in this room.
    FileNotFound,
    /// A progress report went backwards or past the upload's size.
    InvalidProgress,
    /// The room has its maximum of uploads in flight.
    TooManyUploads,
    /// The file is being removed.
    FileBusy,
    /// A processing report that does not follow the file's processing status.
    ProcessingOutOfOrder,
}

impl RoomErrorCode {
    /// Every code, in the order of the PROTOCOL.md table.
    pub const ALL: [RoomErrorCode; 23] = [
        Self::InvalidJson,
        Self::InvalidFrame,
        Self::FrameTooLarge,
        Self::UnknownEvent,
        Self::InvalidData,
        Self::NotAuthenticated,
        Self::AlreadyAuthenticated,
        Self::NotJoined,
        Self::WrongRoom,
        Self::Forbidden,
        Self::RoomLocked,
        Self::RateLimited,
        Self::TooManyConnections,
        Self::InvalidSeq,
        Self::Internal,
        Self::InvalidToken,
        Self::ExpiredToken,
        Self::Unauthorized,
        Self::FileNotFound,
        Self::InvalidProgress,
        Self::TooManyUploads,
        Self::FileBusy,
        Self::ProcessingOutOfOrder,
    ];

    /// The wire string, e.g. `"rate_limited"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidFrame => "invalid_frame",
            Self::FrameTooLarge => "frame_too_large",
            Self::UnknownEvent => "unknown_event",
            Self::InvalidData => "invalid_data",
            Self::NotAuthenticated => "not_authenticated",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::NotJoined => "not_joined",
            Self::WrongRoom => "wrong_room",
            Self::Forbidden => "forbidden",
            Self::RoomLocked => "room_locked",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::InvalidSeq => "invalid_seq",
            Self::Internal => "internal",
            Self::InvalidToken => "invalid_token",
            Self::ExpiredToken => "expired_token",
            Self::Unauthorized => "unauthorized",
            Self::FileNotFound => "file_not_found",
            Self::InvalidProgress => "invalid_progress",
            Self::TooManyUploads => "too_many_uploads",
            Self::FileBusy => "file_busy",
            Self::ProcessingOutOfOrder => "processing_out_of_order",
        }
    }
}

/// A refusal: its code, a message for people, and for `rate_limited` when to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RoomError {
    /// What went wrong, stably.
    pub code: RoomErrorCode,
    /// Human text; never internals.
    pub message: String,
    /// Whole seconds to wait, for `rate_limited`.
    pub retry_after: Option<u64>,
}

impl RoomError {
    /// An error with a message.
    pub fn new(code: RoomErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `rate_limited`, retry after `ms` (rounded up to whole seconds, at least 1).
    pub fn rate_limited(what: &str, ms: u64) -> Self {
        Self {
            code: RoomErrorCode::RateLimited,
            message: format!("too many {what}; retry later"),
            retry_after: Some(ms.div_ceil(1000).max(1)),
        }
    }

    /// `invalid_data` naming what is wrong.
    pub fn invalid_data(message: impl Into<String>) -> Self {
        Self::new(RoomErrorCode::InvalidData, message)
    }

    /// `internal`, with a fixed message.
    pub fn internal() -> Self {
        Self::new(
            RoomErrorCode::Internal,
            "the room failed; nothing was changed, retry",
        )
    }
}

impl RoomError {
    /// The HTTP API's answer for a refusal of one of the worker's calls to a room
    /// (an upload into the room, a processing report, a room file): docs/API.md.
    pub fn to_api(&self) -> ApiError {
        use RoomErrorCode as R;
        let code = match self.code {
            R::Forbidden | R::NotJoined | R::Unauthorized => ApiErrorCode::Forbidden,
            R::RoomLocked => ApiErrorCode::RoomLocked,
            R::FileNotFound | R::FileBusy => ApiErrorCode::FileNotFound,
            R::TooManyUploads => ApiErrorCode::TooManyUploads,
            R::ProcessingOutOfOrder => ApiErrorCode::ProcessingOutOfOrder,
            R::InvalidToken => ApiErrorCode::InvalidToken,
            R::ExpiredToken => ApiErrorCode::ExpiredToken,
            R::InvalidData
            | R::InvalidJson
            | R::InvalidFrame
            | R::FrameTooLarge
            | R::UnknownEvent
            | R::InvalidProgress
            | R::InvalidSeq
            | R::WrongRoom => ApiErrorCode::InvalidJson,
            R::RateLimited | R::TooManyConnections | R::Internal => ApiErrorCode::Internal,
            R::NotAuthenticated | R::AlreadyAuthenticated => ApiErrorCode::Internal,
        };
        let mut error = match code {
            ApiErrorCode::Internal => ApiError::internal(),
            _ => ApiError::new(code, self.message.clone()),
        };
        if code == ApiErrorCode::TooManyUploads {
            error.retry_after = Some(60);
        }
        error
    }
}

/// Why the room closes a socket: the WebSocket close code and reason it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCode {
    /// 4001: the token is malformed, forged, for another audience or not valid yet.
    InvalidToken,
    /// 4002: the token has expired.
    ExpiredToken,
    /// 4003: the token does not grant this room.
    Unauthorized,
    /// 4008: no successful `authenticate` within the authentication timeout.
    AuthTimeout,
    /// 4009: the user already has the most connections allowed to this room, or the room
    /// has.
    TooManyConnections,
    /// 4010: nothing received (not even a `ping`) within the idle timeout.
    IdleTimeout,
}

impl CloseCode {
    /// Every close code, for the docs table.
    pub const ALL: [CloseCode; 6] = [
        Self::InvalidToken,
        Self::ExpiredToken,
        Self::Unauthorized,
        Self::AuthTimeout,
        Self::TooManyConnections,
        Self::IdleTimeout,
    ];

    /// The numeric WebSocket close code (the 4000-4999 private range).
    pub fn code(self) -> u16 {
        match self {
            Self::InvalidToken => 4001,
            Self::ExpiredToken => 4002,
            Self::Unauthorized => 4003,
            Self::AuthTimeout => 4008,
            Self::TooManyConnections => 4009,
            Self::IdleTimeout => 4010,
        }
    }

    /// The close reason text (also a stable code).
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::ExpiredToken => "expired_token",
            Self::Unauthorized => "unauthorized",
            Self::AuthTimeout => "authentication_timeout",
            Self::TooManyConnections => "too_many_connections",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_serde_agrees() {
        let mut seen = std::collections::HashSet::new();
        for code in RoomErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(
                serde_json::to_string(&code).ok(),
                Some(format!("\"{}\"", code.as_str()))
            );
        }
        let mut closes = std::collections::HashSet::new();
        for close in CloseCode::ALL {
            assert!(closes.insert(close.code()));
            assert!((4000..5000).contains(&close.code()));
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RoomError::rate_limited("messages", 1).retry_after, Some(1));
        assert_eq!(
            RoomError::rate_limited("messages", 1000).retry_after,
            Some(1)
        );
        assert_eq!(
            RoomError::rate_limited("messages", 1001).retry_after,
            Some(2)
        );
        assert_eq!(RoomError::rate_limited("messages", 0).retry_after, Some(1));
    }

    #[test]
    fn protocol_md_lists_exactly_these_codes() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        let section = |title: &str| {
            let start = doc.find(title).unwrap_or_else(|| panic!("{title}"));
            doc[start..]
                .lines()
                .skip_while(|l| !l.starts_with('|'))
                .take_while(|l| l.starts_with('|'))
                .skip(2)
                .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        let errors: Vec<String> = section("## Errors")
            .iter()
            .map(|cols| cols[1].trim_matches('`').to_owned())
            .collect();
        let ours: Vec<&str> = RoomErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(errors, ours);
        let closes: Vec<(u16, String)> = section("### Close codes")
            .iter()
            .map(|cols| {
                (
                    cols[1].parse().unwrap_or(0),
                    cols[2].trim_matches('`').to_owned(),
                )
            })
            .collect();
        let ours: Vec<(u16, String)> = CloseCode::ALL
            .iter()
            .map(|c| (c.code(), c.reason().to_owned()))
            .collect();
        assert_eq!(closes, ours);
    }
}
