//! The one error type of the format, with the stable codes of docs/FORMAT.md §3–§8.

use thiserror::Error;

/// Why a header, record, record section, sealed metadata or link was refused.
///
/// Every variant maps to one stable [`code`](FormatError::code) that both implementations
/// and the test vectors use, and record errors carry the index of the failing record
/// ([`record`](FormatError::record)). Messages are for humans and may change; match on the
/// variant or the code, never on the message. No variant carries plaintext or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The header is not a well-formed 76-byte v2 header (length, magic, reserved bytes or
    /// record size).
    #[error("invalid header: {0}")]
    InvalidHeader(&'static str),

    /// The header names a version or suite this implementation does not know.
    #[error("unsupported format: version {version}, suite {suite}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
        /// The suite byte found.
        suite: u8,
    },

    /// The header's commitment does not match the file key (§4): the key is not this
    /// file's, or the header was altered. Checked before anything is opened.
    #[error("the key does not match the header's commitment")]
    KeyCommitmentFailed,

    /// A length no valid stream can have: a record section shorter than one tag, a last
    /// record too short to hold a tag, an empty last record in a non-empty file, or a record
    /// handed to [`seal_record`](super::seal_record) / [`open_record`](super::open_record)
    /// whose length does not fit its position.
    #[error("invalid length: {0}")]
    InvalidLength(&'static str),

    /// A record did not authenticate, under either value of the last flag.
    #[error("record {record} failed to authenticate")]
    RecordAuthFailed {
        /// Index of the record, counting from 0.
        record: u64,
    },

    /// The stream ends early: the record in last position authenticates only as a non-last
    /// record (the stream was cut at a record boundary), or fewer bytes arrived than the
    /// known section length.
    #[error("the stream is truncated at record {record}")]
    Truncated {
        /// The first record the reader could not accept (§6): the record in last position,
        /// or the first that did not arrive whole.
        record: u64,
    },

    /// Something follows the real end of the stream: a record before the last position
    /// authenticates only as the last record, or more bytes arrived than the known
    /// section length.
    #[error("data follows the last record (at record {record})")]
    TrailingData {
        /// The first record the reader could not accept (§6): the real last record, or `N`
        /// for bytes past a known section length.
        record: u64,
    },

    /// The sealed metadata did not authenticate.
    #[error("the metadata failed to authenticate")]
    MetadataAuthFailed,

    /// The sealed metadata has an impossible length, or its plaintext is not exactly the
    /// canonical form of §7 for a name and type within the limits.
    #[error("invalid metadata: {0}")]
    InvalidMetadata(&'static str),

    /// The metadata to seal is over a limit of §7 (it is refused, never cut).
    #[error("metadata too large: {0}")]
    MetadataTooLarge(&'static str),

    /// The sealed thumbnail did not authenticate (§10).
    #[error("the thumbnail failed to authenticate")]
    ThumbnailAuthFailed,

    /// A thumbnail (sealed, or to seal) has an impossible length (§10).
    #[error("invalid thumbnail: {0}")]
    InvalidThumbnail(&'static str),

    /// The link fragment is not `k1.` followed by 43 base64url characters, nor
    /// `p1.<salt>.<wrapped key>` (22 and 64 base64url characters).
    #[error("invalid link: {0}")]
    InvalidLink(&'static str),

    /// A `p1.` link's wrapped key did not open: a wrong password, a link moved to
    /// another share, or an altered fragment (they cannot be told apart).
    #[error("wrong password")]
    WrongPassword,

    /// A password that cannot be used (empty).
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
}

impl FormatError {
    /// The stable error code of docs/FORMAT.md (`invalid_header`, `truncated`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidHeader(_) => "invalid_header",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::KeyCommitmentFailed => "key_commitment_failed",
            Self::InvalidLength(_) => "invalid_length",
            Self::RecordAuthFailed { .. } => "record_auth_failed",
            Self::Truncated { .. } => "truncated",
            Self::TrailingData { .. } => "trailing_data",
            Self::MetadataAuthFailed => "metadata_auth_failed",
            Self::InvalidMetadata(_) => "invalid_metadata",
            Self::MetadataTooLarge(_) => "metadata_too_large",
            Self::ThumbnailAuthFailed => "thumbnail_auth_failed",
            Self::InvalidThumbnail(_) => "invalid_thumbnail",
            Self::InvalidLink(_) => "invalid_link",
            Self::WrongPassword => "wrong_password",
            Self::InvalidPassword(_) => "invalid_password",
        }
    }

    /// The index of the record the error is about, for the three record errors.
    pub fn record(&self) -> Option<u64> {
        match self {
            Self::RecordAuthFailed { record }
            | Self::Truncated { record }
            | Self::TrailingData { record } => Some(*record),
            _ => None,
        }
    }
}
