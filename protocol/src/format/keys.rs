//! The file key and the two keys derived from it (§4).

use core::fmt;

use aes_gcm::{Aes256Gcm, Key, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Header;

/// Length of the file key.
pub const FILE_KEY_LEN: usize = 32;

/// HKDF `info` of the content key. A key is never used for two purposes: every purpose
/// gets its own `info` string, and later versions add new strings rather than reuse these.
const CONTENT_INFO: &[u8] = b"sealdrop/v1/content";
/// HKDF `info` of the metadata key.
const METADATA_INFO: &[u8] = b"sealdrop/v1/metadata";

/// The file key `K`: 32 random bytes that live only in the browser and in the link's
/// fragment.
///
/// A writer draws a fresh `K` (and a fresh salt) for every file: `K` must never seal two
/// files. `Debug` prints no key material, and equality is constant-time.
#[derive(Clone)]
pub struct FileKey([u8; FILE_KEY_LEN]);

impl FileKey {
    /// Wraps 32 bytes drawn by the caller's CSPRNG (or read from a link).
    pub fn from_bytes(bytes: [u8; FILE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key, for the link fragment ([`encode_fragment`](super::encode_fragment)).
    pub fn as_bytes(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }

    /// Derives this file's content and metadata keys with HKDF-SHA256, salted with the
    /// header's salt, and builds their AES key schedules once.
    pub fn derive(&self, header: &Header) -> Keys {
        let hkdf = Hkdf::<Sha256>::new(Some(header.salt()), &self.0);
        let expand = |info: &[u8]| {
            let mut okm = [0u8; 32];
            // HKDF-Expand fails only for outputs longer than 255 * 32 bytes.
            if hkdf.expand(info, &mut okm).is_err() {
                unreachable!("HKDF-SHA256 can always expand to 32 bytes");
            }
            Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm))
        };
        Keys {
            content: ContentKey(expand(CONTENT_INFO)),
            metadata: MetadataKey(expand(METADATA_INFO)),
        }
    }
}

impl PartialEq for FileKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for FileKey {}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

/// The keys of one file, from [`FileKey::derive`].
#[derive(Clone, Debug)]
pub struct Keys {
    /// Seals and opens the records.
    pub content: ContentKey,
    /// Seals and opens the file name and MIME type.
    pub metadata: MetadataKey,
}

/// The content key: AES-256-GCM over the records (§5), its key schedule built once and
/// reused for every record of the file.
#[derive(Clone)]
pub struct ContentKey(Aes256Gcm);

impl ContentKey {
    pub(crate) fn cipher(&self) -> &Aes256Gcm {
        &self.0
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

/// The metadata key: AES-256-GCM over the padded metadata JSON (§7).
#[derive(Clone)]
pub struct MetadataKey(Aes256Gcm);

impl MetadataKey {
    pub(crate) fn cipher(&self) -> &Aes256Gcm {
        &self.0
    }
}

impl fmt::Debug for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetadataKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_prints_no_key() {
        let key = FileKey::from_bytes([0xab; 32]);
        let keys = key.derive(&Header::new(64, [1; 32]).unwrap());
        for text in [format!("{key:?}"), format!("{keys:?}")] {
            assert!(!text.to_lowercase().contains("ab"), "{text}");
            assert!(text.contains("redacted"));
        }
    }

    #[test]
    fn hkdf_matches_rfc5869_construction() {
        // Independent computation: HKDF-Expand for L = 32 is one HMAC block,
        // T(1) = HMAC(PRK, info || 0x01), with PRK = HMAC(salt, IKM).
        use hmac::{KeyInit as _, Mac};
        type H = hmac::Hmac<Sha256>;
        let (k, salt) = ([3u8; 32], [9u8; 32]);
        let mut m = <H as hmac::KeyInit>::new_from_slice(&salt).unwrap();
        m.update(&k);
        let prk = m.finalize().into_bytes();
        let mut m = <H as hmac::KeyInit>::new_from_slice(&prk).unwrap();
        m.update(b"sealdrop/v1/content\x01");
        let okm: [u8; 32] = m.finalize().into_bytes().into();

        let header = Header::new(64, salt).unwrap();
        let ours = FileKey::from_bytes(k).derive(&header).content;
        let theirs = ContentKey(Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm)));
        let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::default();
        use aes_gcm::aead::Aead;
        assert_eq!(
            ours.cipher().encrypt(&nonce, &b"x"[..]).unwrap(),
            theirs.cipher().encrypt(&nonce, &b"x"[..]).unwrap()
        );
    }
}
