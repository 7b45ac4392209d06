//! The HTTP API's error vocabulary (docs/API.md, "Error codes").
//!
//! Every failure the worker answers is one [`ApiErrorCode`] (a stable string that never
//! changes meaning, so clients can branch on it) plus a human message, sent as
//! `{"error":{"code":"...","message":"..."}}` with the code's HTTP status. The rules in
//! this crate return [`ApiError`] directly, so the worker only has to serialize it and
//! the client can parse the same type back.
//!
//! The message is shown to clients: never put storage details, stack traces or secrets
//! in it. [`ApiError::internal`] and [`ApiError::storage`] carry fixed texts for that
//! reason.
//!
//! Whether a client should retry is the status's business, not the code's: `5xx` (with
//! `Retry-After` where the server knows how long to wait) means "the same request may
//! succeed later", every `4xx` means "this request will fail the same way again". That
//! is why a condition that passes by itself (an upload being completed, a part still
//! being written) is `503 upload_busy`, never a final-looking `409`.

use serde::{Deserialize, Serialize};

/// One stable error code of the API, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiErrorCode {
    /// 400: the body is not JSON of the expected shape.
    InvalidJson,
    /// 400: the header is not a valid header.
    InvalidHeader,
    /// 400: the header is valid in form but not version 1 / suite 1.
    UnsupportedVersion,
    /// 400: the sealed metadata has an impossible size.
    InvalidMetadata,
    /// 400: the record section would not fit the storage provider's largest object.
    FileTooLarge,
    /// 400: a part number is 0, above `partCount`, duplicated, or there are too many.
    InvalidPartNumber,
    /// 400: a part body is not the planned size.
    PartSizeMismatch,
    /// 400: an expiry out of range: a file's `expiresIn` (or "never" where not allowed), a share's beyond its file's.
    InvalidExpiry,
    /// 400: a share's download limit is not a positive number.
    InvalidLimit,
    /// 400: a password verifier is not 32 bytes of base64url.
    InvalidVerifier,
    /// 400: a sealed thumbnail is not 29 to 65,564 bytes (docs/FORMAT.md §10).
    InvalidThumbnail,
    /// 401: the owner token is missing or wrong.
    Unauthorized,
    /// 401: a room JWT (`Authorization: Bearer <jwt>`) is malformed, forged, for
    /// another audience or not valid yet; or a processor's secret is wrong.
    InvalidToken,
    /// 401: a room JWT has expired.
    ExpiredToken,
    /// 403: the JWT's user may not do this in the room (not a member, or the role
    /// does not allow it).
    Forbidden,
    /// 403: the room is locked: it accepts no new uploads.
    RoomLocked,
    /// 403: a blob URL's signature is wrong.
    TokenInvalid,
    /// 403: a blob URL is past its expiry.
    TokenExpired,
    /// 403: the upload would take the account over its quota of stored bytes.
    QuotaExceeded,
    /// 403: the share has a password and the request carried no verifier.
    PasswordRequired,
    /// 403: the verifier is not the share's (a failed attempt, counted).
    WrongPassword,
    /// 404: no such upload.
    UploadNotFound,
    /// 404: no such file (or its upload is not completed).
    FileNotFound,
    /// 404: no such share (a token that is malformed or not this server's).
    ShareNotFound,
    /// 404: the file has no thumbnail.
    ThumbnailNotFound,
    /// 404: no such download on this share.
    DownloadNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: the upload is completed, aborted, being aborted, or expired: final.
    UploadNotOpen,
    /// 409: complete named a part storage does not hold, or left one out.
    PartsMissing,
    /// 409: complete named a part with another ETag than the one storage holds.
    EtagMismatch,
    /// 409: an idempotency key already created an upload from another request body.
    IdempotencyConflict,
    /// 409: a processing report that does not follow the file's processing status.
    ProcessingOutOfOrder,
    /// 409: every download the share allows is taken by a download in progress.
    ShareBusy,
    /// 409: the file already has as many shares as a file may have.
    TooManyShares,
    /// 409: the download was completed or abandoned.
    DownloadClosed,
    /// 413: a JSON body over its size limit.
    BodyTooLarge,
    /// 410: the file was deleted or expired (or is being deleted).
    Gone,
    /// 410: the share has expired.
    ShareExpired,
    /// 410: the share's downloads are used up.
    ShareExhausted,
    /// 410: the share was revoked.
    ShareRevoked,
    /// 426: a WebSocket URL (`/api/rooms/{roomId}/ws`) asked without `Upgrade: websocket`.
    UpgradeRequired,
    /// 416: a range outside the object.
    RangeNotSatisfiable,
    /// 429: the room has its maximum of uploads in flight; retry later.
    TooManyUploads,
    /// 429: too many uploads created: retry after `Retry-After` seconds.
    RateLimited,
    /// 429: too many wrong passwords on this share: retry after `Retry-After` seconds.
    TooManyAttempts,
    /// 500: anything that went wrong on the server and is not storage.
    Internal,
    /// 502: storage failed or did not answer; the same request may succeed later.
    StorageError,
    /// 503: the upload is busy (being completed or aborted, or a write of the same part
    /// is in flight); retry after `Retry-After` seconds.
    UploadBusy,
}

impl ApiErrorCode {
    /// Every code, in the order of the API.md table (for exhaustive tests and docs).
    pub const ALL: [ApiErrorCode; 49] = [
        Self::InvalidJson,
        Self::InvalidHeader,
        Self::UnsupportedVersion,
        Self::InvalidMetadata,
        Self::FileTooLarge,
        Self::InvalidPartNumber,
        Self::PartSizeMismatch,
        Self::InvalidExpiry,
        Self::InvalidLimit,
        Self::InvalidVerifier,
        Self::InvalidThumbnail,
        Self::Unauthorized,
        Self::InvalidToken,
        Self::ExpiredToken,
        Self::TokenInvalid,
        Self::TokenExpired,
        Self::Forbidden,
        Self::RoomLocked,
        Self::QuotaExceeded,
        Self::PasswordRequired,
        Self::WrongPassword,
        Self::UploadNotFound,
        Self::FileNotFound,
        Self::ShareNotFound,
        Self::DownloadNotFound,
        Self::NotFound,
        Self::ThumbnailNotFound,
        Self::MethodNotAllowed,
        Self::UploadNotOpen,
        Self::PartsMissing,
        Self::EtagMismatch,
        Self::IdempotencyConflict,
        Self::ProcessingOutOfOrder,
        Self::ShareBusy,
        Self::TooManyShares,
        Self::DownloadClosed,
        Self::Gone,
        Self::ShareExpired,
        Self::ShareExhausted,
        Self::ShareRevoked,
        Self::BodyTooLarge,
        Self::RangeNotSatisfiable,
        Self::UpgradeRequired,
        Self::TooManyUploads,
        Self::RateLimited,
        Self::TooManyAttempts,
        Self::Internal,
        Self::StorageError,
        Self::UploadBusy,
    ];

    /// The HTTP status this code is always answered with.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidJson
            | Self::InvalidHeader
            | Self::UnsupportedVersion
            | Self::InvalidMetadata
            | Self::FileTooLarge
            | Self::InvalidPartNumber
            | Self::PartSizeMismatch
            | Self::InvalidExpiry
            | Self::InvalidLimit
            | Self::InvalidVerifier
            | Self::InvalidThumbnail => 400,
            Self::Unauthorized | Self::InvalidToken | Self::ExpiredToken => 401,
            Self::TokenInvalid
            | Self::TokenExpired
            | Self::Forbidden
            | Self::RoomLocked
            | Self::QuotaExceeded
            | Self::PasswordRequired
            | Self::WrongPassword => 403,
            Self::UploadNotFound
            | Self::FileNotFound
            | Self::ShareNotFound
            | Self::ThumbnailNotFound
            | Self::DownloadNotFound
            | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UploadNotOpen
            | Self::PartsMissing
            | Self::EtagMismatch
            | Self::IdempotencyConflict
            | Self::ProcessingOutOfOrder
            | Self::ShareBusy
            | Self::TooManyShares
            | Self::DownloadClosed => 409,
            Self::Gone | Self::ShareExpired | Self::ShareExhausted | Self::ShareRevoked => 410,
            Self::BodyTooLarge => 413,
            Self::UpgradeRequired => 426,
            Self::RangeNotSatisfiable => 416,
            Self::TooManyUploads | Self::RateLimited | Self::TooManyAttempts => 429,
            Self::Internal => 500,
            Self::StorageError => 502,
            Self::UploadBusy => 503,
        }
    }

    /// The stable wire string, e.g. `"upload_not_open"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidHeader => "invalid_header",
            Self::UnsupportedVersion => "unsupported_version",
            Self::InvalidMetadata => "invalid_metadata",
            Self::FileTooLarge => "file_too_large",
            Self::InvalidPartNumber => "invalid_part_number",
            Self::PartSizeMismatch => "part_size_mismatch",
            Self::InvalidExpiry => "invalid_expiry",
            Self::InvalidLimit => "invalid_limit",
            Self::InvalidVerifier => "invalid_verifier",
            Self::InvalidThumbnail => "invalid_thumbnail",
            Self::Unauthorized => "unauthorized",
            Self::InvalidToken => "invalid_token",
            Self::ExpiredToken => "expired_token",
            Self::Forbidden => "forbidden",
            Self::RoomLocked => "room_locked",
            Self::ProcessingOutOfOrder => "processing_out_of_order",
            Self::TooManyUploads => "too_many_uploads",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::QuotaExceeded => "quota_exceeded",
            Self::PasswordRequired => "password_required",
            Self::WrongPassword => "wrong_password",
            Self::UploadNotFound => "upload_not_found",
            Self::FileNotFound => "file_not_found",
            Self::ShareNotFound => "share_not_found",
            Self::ThumbnailNotFound => "thumbnail_not_found",
            Self::DownloadNotFound => "download_not_found",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UploadNotOpen => "upload_not_open",
            Self::PartsMissing => "parts_missing",
            Self::EtagMismatch => "etag_mismatch",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::ShareBusy => "share_busy",
            Self::TooManyShares => "too_many_shares",
            Self::DownloadClosed => "download_closed",
            Self::BodyTooLarge => "body_too_large",
            Self::Gone => "gone",
            Self::ShareExpired => "share_expired",
            Self::ShareExhausted => "share_exhausted",
            Self::ShareRevoked => "share_revoked",
            Self::UpgradeRequired => "upgrade_required",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::RateLimited => "rate_limited",
            Self::TooManyAttempts => "too_many_attempts",
            Self::Internal => "internal",
            Self::StorageError => "storage_error",
            Self::UploadBusy => "upload_busy",
        }
    }

    /// The code for a wire string, or `None` for a code this build does not know.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API failure: a stable code and a message safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What went wrong, stably.
    pub code: ApiErrorCode,
    /// Human text for the client; never internals.
    pub message: String,
    /// Seconds to wait before retrying, sent as `Retry-After` (not in the JSON body).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a specific message.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 `upload_busy`: retry the same request after `retry_after` seconds.
    pub fn busy(message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(ApiErrorCode::UploadBusy, message)
        }
    }

    /// 409 `idempotency_conflict`.
    pub fn idempotency_conflict() -> Self {
        Self::new(
            ApiErrorCode::IdempotencyConflict,
            "this idempotency key already created an upload from another request body",
        )
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::InvalidJson, message)
    }

    /// 400 `invalid_part_number`.
    pub fn invalid_part_number(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::InvalidPartNumber, message)
    }

    /// 401 `unauthorized`, with a fixed message that does not say which check failed.
    pub fn unauthorized() -> Self {
        Self::new(
            ApiErrorCode::Unauthorized,
            "a valid owner token is required (Authorization: Bearer <ownerToken>)",
        )
    }

    /// 404 `upload_not_found`.
    pub fn upload_not_found() -> Self {
        Self::new(ApiErrorCode::UploadNotFound, "no such upload")
    }

    /// 404 `file_not_found`.
    pub fn file_not_found() -> Self {
        Self::new(ApiErrorCode::FileNotFound, "no such file")
    }

    /// 404 `share_not_found`.
    pub fn share_not_found() -> Self {
        Self::new(ApiErrorCode::ShareNotFound, "no such share")
    }

    /// 410 `gone`: a validly signed id whose object holds nothing any more.
    pub fn gone() -> Self {
        Self::new(ApiErrorCode::Gone, "the file was deleted or has expired")
    }

    /// A `429` (`rate_limited`, `too_many_attempts`) with its wait.
    pub fn too_many(code: ApiErrorCode, message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(code, message)
        }
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::new(ApiErrorCode::NotFound, "no such route")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            ApiErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        )
    }

    /// 409 `upload_not_open`.
    pub fn upload_not_open(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::UploadNotOpen, message)
    }

    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            ApiErrorCode::BodyTooLarge,
            format!("the request body is over {limit} bytes"),
        )
    }

    /// 416 `range_not_satisfiable`.
    pub fn range_not_satisfiable() -> Self {
        Self::new(
            ApiErrorCode::RangeNotSatisfiable,
            "the range is outside the object",
        )
    }

    /// 502 `storage_error`, with a fixed message: storage details stay in the logs.
    pub fn storage() -> Self {
        Self::new(ApiErrorCode::StorageError, "storage failed; try again")
    }

    /// 500 `internal`, with a fixed message: internals stay in the logs.
    pub fn internal() -> Self {
        Self::new(ApiErrorCode::Internal, "internal error")
    }

    /// The JSON body to answer with.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
        }
    }

    /// The JSON body as a string.
    pub fn to_json(&self) -> String {
        // Serializing a struct of an enum and a String cannot fail; fall back to a
        // hand-written body rather than unwrap.
        serde_json::to_string(&self.to_body()).unwrap_or_else(|_| {
            format!(
                r#"{{"error":{{"code":"{}","message":"error"}}}}"#,
                self.code.as_str()
            )
        })
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        Self::new(body.error.code, body.error.message)
    }
}

/// The wire form of every error: `{"error":{"code":"...","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ApiErrorCode,
    /// Human text.
    pub message: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The table in docs/API.md, transcribed: (status, code).
    const TABLE: &[(u16, &str)] = &[
        (400, "invalid_json"),
        (400, "invalid_header"),
        (400, "unsupported_version"),
        (400, "invalid_metadata"),
        (400, "file_too_large"),
        (400, "invalid_part_number"),
        (400, "part_size_mismatch"),
        (400, "invalid_expiry"),
        (400, "invalid_limit"),
        (400, "invalid_verifier"),
        (400, "invalid_thumbnail"),
        (401, "unauthorized"),
        (401, "invalid_token"),
        (401, "expired_token"),
        (403, "token_invalid"),
        (403, "token_expired"),
        (403, "forbidden"),
        (403, "room_locked"),
        (403, "quota_exceeded"),
        (403, "password_required"),
        (403, "wrong_password"),
        (404, "upload_not_found"),
        (404, "file_not_found"),
        (404, "share_not_found"),
        (404, "download_not_found"),
        (404, "not_found"),
        (404, "thumbnail_not_found"),
        (405, "method_not_allowed"),
        (409, "upload_not_open"),
        (409, "parts_missing"),
        (409, "etag_mismatch"),
        (409, "idempotency_conflict"),
        (409, "processing_out_of_order"),
        (409, "share_busy"),
        (409, "too_many_shares"),
        (409, "download_closed"),
        (410, "gone"),
        (410, "share_expired"),
        (410, "share_exhausted"),
        (410, "share_revoked"),
        (413, "body_too_large"),
        (416, "range_not_satisfiable"),
        (426, "upgrade_required"),
        (429, "too_many_uploads"),
        (429, "rate_limited"),
        (429, "too_many_attempts"),
        (500, "internal"),
        (502, "storage_error"),
        (503, "upload_busy"),
    ];

    #[test]
    fn every_code_matches_the_api_table() {
        assert_eq!(TABLE.len(), ApiErrorCode::ALL.len());
        for (code, (status, name)) in ApiErrorCode::ALL.iter().zip(TABLE) {
            assert_eq!(code.as_str(), *name);
            assert_eq!(code.status(), *status, "{name}");
            assert_eq!(ApiErrorCode::parse(name), Some(*code));
            // serde agrees with as_str.
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
        assert_eq!(ApiErrorCode::parse("no_such_code"), None);
    }

    #[test]
    fn the_api_md_table_lists_exactly_these_codes() {
        let doc = include_str!("../../docs/API.md");
        let table = doc.split("## Error codes").nth(1).unwrap();
        let mut in_doc: Vec<(u16, String)> = Vec::new();
        for line in table
            .lines()
            .filter(|l| l.starts_with("| 4") || l.starts_with("| 5"))
        {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let status: u16 = cols[1].parse().unwrap();
            for code in cols[2].split('/') {
                in_doc.push((status, code.trim().trim_matches('`').to_owned()));
            }
        }
        let ours: Vec<(u16, String)> = TABLE.iter().map(|(s, c)| (*s, (*c).to_owned())).collect();
        assert_eq!(in_doc, ours);
    }

    #[test]
    fn body_round_trips() {
        let err = ApiError::upload_not_open("the upload is completed");
        let json = err.to_json();
        assert_eq!(
            json,
            r#"{"error":{"code":"upload_not_open","message":"the upload is completed"}}"#
        );
        let back: ErrorBody = serde_json::from_str(&json).unwrap();
        assert_eq!(ApiError::from(back), err);
        assert_eq!(err.status(), 409);
        assert_eq!(err.to_string(), "upload_not_open: the upload is completed");
    }

    #[test]
    fn fixed_messages_leak_nothing() {
        assert_eq!(ApiError::internal().message, "internal error");
        assert_eq!(ApiError::storage().code.status(), 502);
    }

    #[test]
    fn busy_carries_retry_after_outside_the_body() {
        let err = ApiError::busy("the upload is being completed", 2);
        assert_eq!((err.status(), err.retry_after), (503, Some(2)));
        assert_eq!(
            err.to_json(),
            r#"{"error":{"code":"upload_busy","message":"the upload is being completed"}}"#
        );
        // Parsed back from the wire, the header is not part of the body.
        let back = ApiError::from(serde_json::from_str::<ErrorBody>(&err.to_json()).unwrap());
        assert_eq!(back.retry_after, None);
        assert_eq!(
            ApiError::new(ApiErrorCode::UploadBusy, "x").retry_after,
            None
        );
    }

    #[test]
    fn only_retryable_conditions_are_5xx_or_429() {
        // The client retries every 5xx and 429 and no other 4xx: each code's status
        // says which it is.
        for code in ApiErrorCode::ALL {
            let retryable = matches!(
                code,
                ApiErrorCode::Internal
                    | ApiErrorCode::StorageError
                    | ApiErrorCode::UploadBusy
                    | ApiErrorCode::TooManyUploads
                    | ApiErrorCode::RateLimited
                    | ApiErrorCode::TooManyAttempts
            );
            assert_eq!(
                code.status() >= 500 || code.status() == 429,
                retryable,
                "{code}"
            );
        }
    }
}
