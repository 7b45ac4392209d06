//! The v2 encrypted stream format (docs/FORMAT.md, the authoritative text).
//!
//! A file of `L` bytes becomes a 76-byte [`Header`] that commits to the file key, a record
//! section of `N` sealed
//! records (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár: AES-256-GCM
//! with nonces binding each record's index and whether it is the last), and sealed
//! [`FileMetadata`]. The file key `K` travels only in the link's fragment.
//!
//! In reading order:
//! - [`header`](Header): the header, the AAD of everything sealed, and its commitment to
//!   the file key (AES-GCM alone does not commit to its key);
//! - [`FileKey`]: `K`, and the content and metadata keys derived from it with HKDF once
//!   the header's commitment checks ([`FileKey::derive`] is the only way to them);
//! - [`Layout`]: where each record sits, from the plaintext size or the section length;
//! - [`seal_record`] / [`open_record`]: one record, a stateless function of
//!   (key, header, index, last), so records seal and open in parallel and out of order;
//!   [`RecordPosition`] holds every rule of a record but AES itself (nonce, shape checks,
//!   refinement of a failed open), for backends other than this crate's `aes-gcm`;
//! - [`seal_stream`] / [`open_stream`] / [`StreamOpener`]: whole sections;
//! - [`seal_metadata`] / [`open_metadata`]: the file name and MIME type;
//! - [`seal_thumbnail`] / [`open_thumbnail`]: a small preview image (§10);
//! - [`encode_fragment`] / [`parse_fragment`]: the link; [`LinkSecret`] and
//!   [`PasswordKeys`]: password links (`p1.`, Argon2id);
//! - [`FormatError`]: every refusal, with its stable code.
//!
//! Nothing here draws random bytes: the file key, the salt and the metadata nonce are
//! passed in by callers, which must draw them fresh for every file.

mod error;
mod header;
mod keys;
mod layout;
mod link;
mod metadata;
mod password;
mod record;
mod stream;
mod thumbnail;

#[cfg(test)]
mod tests;

pub use error::FormatError;
pub use header::{
    DEFAULT_RECORD_SIZE, HEADER_LEN, Header, MAGIC, MAX_RECORD_SIZE, MIN_RECORD_SIZE, SALT_LEN,
    SUITE, VERSION,
};
pub use keys::{ContentKey, FILE_KEY_LEN, FileKey, KeyBytes, Keys, MetadataKey};
pub use layout::Layout;
pub use link::{FRAGMENT_PREFIX, encode_fragment, parse_fragment};
pub use metadata::{
    FileMetadata, MAX_METADATA_PLAINTEXT, MAX_NAME_LEN, MAX_SEALED_METADATA, MAX_TYPE_LEN,
    METADATA_NONCE_LEN, METADATA_PADDING, MIN_SEALED_METADATA, metadata_plaintext, open_metadata,
    parse_metadata_plaintext, seal_metadata, split_sealed_metadata,
};
pub use password::{
    ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB, LinkSecret, PASSWORD_FRAGMENT_PREFIX,
    PASSWORD_SALT_LEN, PasswordKeys, VERIFIER_LEN, WRAPPED_KEY_LEN, WrappedKey,
};
pub use record::{
    NONCE_LEN, RecordPosition, open_record, open_record_into, seal_record, seal_record_into,
};
pub use stream::{StreamOpener, open_stream, seal_stream};
pub use thumbnail::{
    MAX_SEALED_THUMBNAIL, MAX_THUMBNAIL_LEN, MIN_SEALED_THUMBNAIL, THUMBNAIL_NONCE_LEN,
    open_thumbnail, seal_thumbnail,
};

/// Length of the AES-GCM tag that ends every sealed record and the sealed metadata.
pub const TAG_LEN: usize = 16;
