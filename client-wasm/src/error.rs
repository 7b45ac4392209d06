//! The one error type of the client, with stable codes.
//!
//! Every failure of `Uploader.upload`, `download` and the constructors is a
//! [`ClientError`]; `interop` turns it into a JS `Error` with `.code` (and `.status`,
//! `.record`, `.part`, `.attempts`, `.cause` where they apply) at the boundary, and
//! nowhere else. Messages are for people and may change; codes never change meaning.

use std::borrow::Cow;

use sealdrop_protocol::backoff::Retry;
use sealdrop_protocol::fingerprint::FileChanged;
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
        /// The answer's `Retry-After`, in ms from when it arrived.
        retry_after_ms: Option<u64>,
    },

    /// A failing HTTP status without the JSON error body (storage, a proxy...):
    /// code `http_<status>`.
    #[error("{what} answered HTTP {status}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// Which request it was, for the message.
        what: &'static str,
        /// The answer's `Retry-After`, in ms from when it arrived.
        retry_after_ms: Option<u64>,
    },

    /// No HTTP answer at all: connection refused or reset, DNS, CORS (code `network`).
    #[error("network error during {what}: {detail}")]
    Network {
        /// Which request it was.
        what: &'static str,
        /// What the browser said.
        detail: String,
    },

    /// A request made no progress for `stallTimeoutMs` and was aborted (code `stalled`).
    #[error("{what} made no progress for {after_ms} ms")]
    Stalled {
        /// Which request it was.
        what: &'static str,
        /// How long it went without progress.
        after_ms: u64,
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

    /// The link is not `<endpoint>/s/<shareToken>#k1.<key>` nor `...#p1.<salt>.<wrapped>`
    /// (code `invalid_link`).
    #[error("invalid link: {0}")]
    InvalidLink(&'static str),

    /// The link is a password link (`p1.`) and no password was given (code
    /// `password_required`, as the server's refusal without a verifier).
    #[error("this link needs a password")]
    PasswordRequired,

    /// The file could not be read (code `read_failed`): it was deleted or moved, or
    /// the page lost its permission to read it.
    #[error("the file could not be read: {0}")]
    ReadFailed(String),

    /// The download's sink refused the plaintext (code `write_failed`): the disk is full,
    /// the page lost its permission to write the file, or the stream was closed.
    #[error("the download could not be written: {0}")]
    WriteFailed(String),

    /// The file is not the one the upload began with, or changed on disk since (code
    /// `file_changed`). Nothing sealed from it is sent: a part sealed again under the
    /// same nonces from other bytes would leak both plaintexts.
    #[error("the file changed: {0}")]
    FileChanged(String),

    /// The browser's storage (IndexedDB, WebCrypto) refused to keep the upload's state
    /// (code `persist_failed`): nothing that would need it is sent.
    #[error("the upload's state could not be kept in this browser: {0}")]
    PersistFailed(String),

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

impl From<FileChanged> for ClientError {
    fn from(e: FileChanged) -> Self {
        ClientError::FileChanged(e.0)
    }
}

impl ClientError {
    /// The stable code for `.code`.
    pub fn code(&self) -> Cow<'static, str> {
        match self {
            Self::Api { code, .. } => Cow::Owned(code.clone()),
            Self::Http { status, .. } => Cow::Owned(format!("http_{status}")),
            Self::Network { .. } => Cow::Borrowed("network"),
            Self::Stalled { .. } => Cow::Borrowed("stalled"),
            Self::Format(e) => Cow::Borrowed(e.code()),
            Self::Cancelled => Cow::Borrowed("cancelled"),
            Self::InvalidOption(_) => Cow::Borrowed("invalid_option"),
            Self::InvalidLink(_) => Cow::Borrowed("invalid_link"),
            Self::PasswordRequired => Cow::Borrowed("password_required"),
            Self::ReadFailed(_) => Cow::Borrowed("read_failed"),
            Self::WriteFailed(_) => Cow::Borrowed("write_failed"),
            Self::FileChanged(_) => Cow::Borrowed("file_changed"),
            Self::PersistFailed(_) => Cow::Borrowed("persist_failed"),
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

    /// The server's `Retry-After`, in ms, for errors that had one.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::Api { retry_after_ms, .. } | Self::Http { retry_after_ms, .. } => *retry_after_ms,
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

    /// What another attempt may do: network errors and stalls, 5xx, 408 and 429 may
    /// succeed (after the server's `Retry-After`); `503 upload_busy` is waited out
    /// without using an attempt. Everything else fails the same way again, and so does
    /// `429 too_many_attempts`: a password guess is the person's to repeat, after the
    /// wait the error's `retryAfter` says.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Network { .. } | Self::Stalled { .. } => Retry::Later { after_ms: None },
            Self::Api { code, .. } if code == "too_many_attempts" => Retry::Never,
            Self::Api {
                status,
                code,
                retry_after_ms,
                ..
            } => Retry::for_status(*status, code == "upload_busy", *retry_after_ms),
            Self::Http {
                status,
                retry_after_ms,
                ..
            } => Retry::for_status(*status, false, *retry_after_ms),
            _ => Retry::Never,
        }
    }

    /// Whether an upload that met this error pauses (and `resume()` may finish it)
    /// rather than fails: retryable errors whose attempts ran out, and a browser
    /// storage that refused to write (space may be freed).
    pub fn is_resumable(&self) -> bool {
        match self {
            Self::PartFailed { .. } | Self::PersistFailed(_) => true,
            other => other.retry() != Retry::Never,
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

    fn api(status: u16, code: &str, retry_after_ms: Option<u64>) -> ClientError {
        ClientError::Api {
            status,
            code: code.into(),
            message: "text".into(),
            retry_after_ms,
        }
    }

    fn http(status: u16) -> ClientError {
        ClientError::Http {
            status,
            what: "PUT part",
            retry_after_ms: None,
        }
    }

    #[test]
    fn codes_are_stable() {
        let not_found = api(404, "file_not_found", None);
        assert_eq!(not_found.code(), "file_not_found");
        assert_eq!(not_found.status(), Some(404));
        assert_eq!(http(502).code(), "http_502");
        let net = ClientError::Network {
            what: "PUT part",
            detail: "Failed to fetch".into(),
        };
        assert_eq!(net.code(), "network");
        let stalled = ClientError::Stalled {
            what: "PUT part",
            after_ms: 30_000,
        };
        assert_eq!(stalled.code(), "stalled");
        let record = ClientError::from(FormatError::RecordAuthFailed { record: 7 });
        assert_eq!(record.code(), "record_auth_failed");
        assert_eq!(record.record(), Some(7));
        assert_eq!(ClientError::Cancelled.code(), "cancelled");
        assert_eq!(ClientError::FileChanged("x".into()).code(), "file_changed");
        assert_eq!(ClientError::WriteFailed("x".into()).code(), "write_failed");
        assert_eq!(
            ClientError::PersistFailed("x".into()).code(),
            "persist_failed"
        );
        let failed = ClientError::PartFailed {
            part: 3,
            attempts: 6,
            last: Box::new(net),
        };
        assert_eq!(failed.code(), "part_failed");
    }

    #[test]
    fn what_is_retried_and_what_pauses() {
        let later = Retry::Later { after_ms: None };
        for (error, retry) in [
            (http(408), later),
            (http(429), later),
            (http(500), later),
            (http(503), later),
            (http(400), Retry::Never),
            (api(429, "too_many_attempts", Some(60_000)), Retry::Never),
            (http(403), Retry::Never),
            (http(404), Retry::Never),
            (
                ClientError::Stalled {
                    what: "GET range",
                    after_ms: 1,
                },
                later,
            ),
            (
                api(503, "upload_busy", Some(2_000)),
                Retry::Busy {
                    after_ms: Some(2_000),
                },
            ),
            (
                api(502, "storage_error", Some(1_000)),
                Retry::Later {
                    after_ms: Some(1_000),
                },
            ),
            // upload_busy is a wait only on a 503.
            (api(409, "upload_busy", None), Retry::Never),
            (api(409, "upload_not_open", None), Retry::Never),
            (ClientError::FileChanged(String::new()), Retry::Never),
            (ClientError::Cancelled, Retry::Never),
        ] {
            assert_eq!(error.retry(), retry, "{error}");
            // Retryable errors whose attempts ran out pause the upload; others fail it.
            assert_eq!(error.is_resumable(), retry != Retry::Never, "{error}");
        }
        let exhausted = ClientError::PartFailed {
            part: 1,
            attempts: 6,
            last: Box::new(http(500)),
        };
        assert_eq!(exhausted.retry(), Retry::Never, "never retried as such");
        assert!(exhausted.is_resumable());
        assert!(ClientError::PersistFailed(String::new()).is_resumable());
        assert!(!ClientError::ReadFailed(String::new()).is_resumable());
    }

    #[test]
    fn any_403_may_need_a_fresh_url() {
        assert!(api(403, "token_expired", None).may_need_fresh_url());
        // Storage's XML 403 (no JSON error body) asks for a fresh URL as well.
        assert!(http(403).may_need_fresh_url());
        for other in [
            http(404),
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
