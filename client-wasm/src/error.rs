//! The one error type of the client, with stable codes.
//!
//! Every failure of `Uploader.upload`, `download` and the constructors is a
//! [`ClientError`]; `interop` turns it into a JS `Error` with `.code` (and `.status`,
//! `.record`, `.part`, `.attempts`, `.cause` where they apply) at the boundary, and
//! nowhere else. Messages are for people and may change; codes never change meaning.

use std::borrow::Cow;

use sealdrop_protocol::backoff::should_retry;
use sealdrop_protocol::format::FormatError;
use thiserror::Error;

/// Why an upload or a download failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with the JSON error of docs/API.md: its code is kept as is
    /// (`file_not_found`, `upload_not_open`, ...).
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable code from `{"error":{"code":...}}`.
        code: String,
        /// The server's human text.
        message: String,
    },

    /// A failing HTTP status without the JSON error body (storage, a proxy...):
    /// code `http_<status>`.
    #[error("{what} answered HTTP {status}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// Which request it was, for the message.
        what: &'static str,
    },

    /// No HTTP answer at all: connection refused or reset, DNS, CORS (code `network`).
    #[error("network error during {what}: {detail}")]
    Network {
        /// Which request it was.
        what: &'static str,
        /// What the browser said.
        detail: String,
    },

    /// The format refused something: the header, a record (`.record` names it), the
    /// metadata or the link. Keeps the FormatError's own code (`record_auth_failed`, ...).
    #[error(transparent)]
    Format(#[from] FormatError),

    /// The caller's `AbortSignal` fired (code `cancelled`).
    #[error("the transfer was cancelled")]
    Cancelled,

    /// An option or argument is out of range or of the wrong type (code `invalid_option`).
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// The link is not `<endpoint>/s/<shareToken>#k1.<key>` (code `invalid_link`).
    #[error("invalid link: {0}")]
    InvalidLink(&'static str),

    /// The file could not be read (code `read_failed`): it was deleted, moved or
    /// changed on disk while it was being uploaded.
    #[error("the file could not be read: {0}")]
    ReadFailed(String),

    /// The server answered 2xx with something this client cannot use (code
    /// `invalid_response`).
    #[error("unexpected answer from the server: {0}")]
    InvalidResponse(String),

    /// A part (or download range) kept failing with retryable errors until every
    /// allowed attempt was used (code `part_failed`); `last` is the last failure.
    #[error("part {part} failed after {attempts} attempts: {last}")]
    PartFailed {
        /// The part (1-based) or range that failed.
        part: u32,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<ClientError>,
    },

    /// The JS environment lacks something the client needs (`fetch`, `crypto`, ...),
    /// or a browser API failed in a way no retry can fix (code `unsupported`).
    #[error("the environment cannot run the client: {0}")]
    Unsupported(String),
}

impl ClientError {
    /// The stable code for `.code`.
    pub fn code(&self) -> Cow<'static, str> {
        match self {
            Self::Api { code, .. } => Cow::Owned(code.clone()),
            Self::Http { status, .. } => Cow::Owned(format!("http_{status}")),
            Self::Network { .. } => Cow::Borrowed("network"),
            Self::Format(e) => Cow::Borrowed(e.code()),
            Self::Cancelled => Cow::Borrowed("cancelled"),
            Self::InvalidOption(_) => Cow::Borrowed("invalid_option"),
            Self::InvalidLink(_) => Cow::Borrowed("invalid_link"),
            Self::ReadFailed(_) => Cow::Borrowed("read_failed"),
            Self::InvalidResponse(_) => Cow::Borrowed("invalid_response"),
            Self::PartFailed { .. } => Cow::Borrowed("part_failed"),
            Self::Unsupported(_) => Cow::Borrowed("unsupported"),
        }
    }

    /// The HTTP status, for errors that had one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The record a format error names (`record_auth_failed`, `truncated`,
    /// `trailing_data`).
    pub fn record(&self) -> Option<u64> {
        match self {
            Self::Format(e) => e.record(),
            _ => None,
        }
    }

    /// Whether another attempt may succeed: network errors, 5xx, 408 and 429, as
    /// [`should_retry`] decides. Everything else fails the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network { .. } => should_retry(None),
            Self::Api { status, .. } | Self::Http { status, .. } => should_retry(Some(*status)),
            _ => false,
        }
    }

    /// Whether a signed URL was refused with `403`, so one fresh URL may succeed
    /// where this one failed: the worker's JSON `token_expired`, but also a presigned
    /// S3/R2 URL past its expiry, which answers `403` with an XML body (`AccessDenied`,
    /// "Request has expired"), indistinguishable here from other refusals. The caller
    /// fetches a fresh URL once and fails as usual if that one is refused too.
    pub fn may_need_fresh_url(&self) -> bool {
        self.status() == Some(403)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let api = ClientError::Api {
            status: 404,
            code: "file_not_found".into(),
            message: "no such file".into(),
        };
        assert_eq!(api.code(), "file_not_found");
        assert_eq!(api.status(), Some(404));
        assert!(!api.is_retryable());
        let http = ClientError::Http {
            status: 502,
            what: "PUT part",
        };
        assert_eq!(http.code(), "http_502");
        assert!(http.is_retryable());
        let net = ClientError::Network {
            what: "PUT part",
            detail: "Failed to fetch".into(),
        };
        assert_eq!(net.code(), "network");
        assert!(net.is_retryable());
        let record = ClientError::from(FormatError::RecordAuthFailed { record: 7 });
        assert_eq!(record.code(), "record_auth_failed");
        assert_eq!(record.record(), Some(7));
        assert_eq!(ClientError::Cancelled.code(), "cancelled");
        let failed = ClientError::PartFailed {
            part: 3,
            attempts: 6,
            last: Box::new(net),
        };
        assert_eq!(failed.code(), "part_failed");
        assert!(!failed.is_retryable());
        for (status, retry) in [
            (408, true),
            (429, true),
            (500, true),
            (400, false),
            (403, false),
        ] {
            let e = ClientError::Http { status, what: "x" };
            assert_eq!(e.is_retryable(), retry, "{status}");
        }
        let expired = ClientError::Api {
            status: 403,
            code: "token_expired".into(),
            message: String::new(),
        };
        assert!(expired.may_need_fresh_url());
        // Storage's XML 403 (no JSON error body) asks for a fresh URL as well.
        let storage = ClientError::Http {
            status: 403,
            what: "PUT part",
        };
        assert!(storage.may_need_fresh_url());
        assert!(!storage.is_retryable());
        for other in [
            ClientError::Http {
                status: 404,
                what: "GET range",
            },
            ClientError::Network {
                what: "PUT part",
                detail: String::new(),
            },
            ClientError::Cancelled,
        ] {
            assert!(!other.may_need_fresh_url(), "{other}");
        }
    }
}
