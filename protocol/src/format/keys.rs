//! The file key, the keys derived from it, and the key commitment (§4).
//!
//! Key material is wiped when dropped: [`FileKey`] and the HKDF outputs through `zeroize`,
//! the AES key schedules and the HMAC/SHA-256 states through the `zeroize` features of
//! `aes-gcm` and `sha2`/`hmac` (workspace Cargo.toml). What cannot be wiped from here: copies
//! the compiler leaves on the stack or in registers, and copies outside this crate (the
//! link string in JavaScript, the key bytes a caller passed in).

use core::fmt;

use aes_gcm::{Aes256Gcm, Key, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{FormatError, Header, header::COMMITMENT_LEN};

/// Length of the file key.
pub const FILE_KEY_LEN: usize = 32;

/// HKDF `info` of the content key. A key is never used for two purposes: every purpose
/// gets its own `info` string, and later versions add new strings rather than reuse these.
const CONTENT_INFO: &[u8] = b"sealdrop/v2/content";
/// HKDF `info` of the metadata key.
const METADATA_INFO: &[u8] = b"sealdrop/v2/metadata";
/// HKDF `info` of the thumbnail key (§10).
const THUMBNAIL_INFO: &[u8] = b"sealdrop/v2/thumbnail";
/// HKDF `info` of the commit key, the HMAC key of the header's commitment.
const COMMIT_INFO: &[u8] = b"sealdrop/v2/commit";

type HmacSha256 = Hmac<Sha256>;

/// The file key `K`: 32 random bytes that live only in the browser and in the link's
/// fragment.
///
/// A writer draws a fresh `K` (and a fresh salt) for every file: `K` must never seal two
/// files. `Debug` prints no key material, equality is constant-time, and the bytes are
/// wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
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

    /// Checks the header's commitment against this key (constant time), then derives the
    /// file's content and metadata keys with HKDF-SHA256, salted with the header's salt,
    /// and builds their AES key schedules once.
    ///
    /// This is the only way to keys that open records or metadata, so nothing is opened
    /// under a key the header does not commit to (§4). Fails with `key_commitment_failed`:
    /// a wrong key, or a header altered after it was made.
    pub fn derive(&self, header: &Header) -> Result<Keys, FormatError> {
        let hkdf = self.committed_hkdf(header)?;
        Ok(Keys {
            content: ContentKey(cipher(&hkdf, CONTENT_INFO)),
            metadata: MetadataKey(cipher(&hkdf, METADATA_INFO)),
        })
    }

    /// The raw bytes of the content and metadata keys, after the same commitment check as
    /// [`derive`](FileKey::derive), for a backend that holds keys elsewhere (the browser
    /// client imports them into WebCrypto as non-extractable keys). Wiped when dropped;
    /// the caller must not keep other copies.
    pub fn derive_bytes(&self, header: &Header) -> Result<KeyBytes, FormatError> {
        let hkdf = self.committed_hkdf(header)?;
        Ok(KeyBytes {
            content: expand(&hkdf, CONTENT_INFO),
            metadata: expand(&hkdf, METADATA_INFO),
        })
    }

    /// The thumbnail key (§10), after the same commitment check as
    /// [`derive`](FileKey::derive).
    pub(crate) fn thumbnail_key(&self, header: &Header) -> Result<Aes256Gcm, FormatError> {
        Ok(cipher(&self.committed_hkdf(header)?, THUMBNAIL_INFO))
    }

    /// HKDF over this key and `header`'s salt, once the header's commitment has checked
    /// (constant time).
    fn committed_hkdf(&self, header: &Header) -> Result<Hkdf<Sha256>, FormatError> {
        let hkdf = self.hkdf(header);
        commitment_mac(&hkdf, header)
            .verify_slice(header.commitment())
            .map_err(|_| FormatError::KeyCommitmentFailed)?;
        Ok(hkdf)
    }

    /// The commitment of §4 for `header`'s committed bytes under this key.
    pub(crate) fn commitment(&self, header: &Header) -> [u8; COMMITMENT_LEN] {
        commitment_mac(&self.hkdf(header), header)
            .finalize()
            .into_bytes()
            .into()
    }

    fn hkdf(&self, header: &Header) -> Hkdf<Sha256> {
        Hkdf::<Sha256>::new(Some(header.salt()), &self.0)
    }
}

/// HKDF-Expand to the 32 bytes of one key, wiped when dropped.
fn expand(hkdf: &Hkdf<Sha256>, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    // HKDF-Expand fails only for outputs longer than 255 * 32 bytes.
    if hkdf.expand(info, okm.as_mut()).is_err() {
        unreachable!("HKDF-SHA256 can always expand to 32 bytes");
    }
    okm
}

/// An AES-256-GCM key schedule for the key with `info`.
fn cipher(hkdf: &Hkdf<Sha256>, info: &[u8]) -> Aes256Gcm {
    let okm = expand(hkdf, info);
    let key: &Key<Aes256Gcm> = (&*okm).into();
    Aes256Gcm::new(key)
}

/// HMAC-SHA256 under the commit key, fed the header's committed bytes.
fn commitment_mac(hkdf: &Hkdf<Sha256>, header: &Header) -> HmacSha256 {
    let commit_key = expand(hkdf, COMMIT_INFO);
    // HMAC takes a key of any length.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(commit_key.as_ref()) else {
        unreachable!("HMAC accepts a 32-byte key");
    };
    mac.update(&header.committed());
    mac
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

/// The raw key bytes of one file, from [`FileKey::derive_bytes`], wiped when dropped.
pub struct KeyBytes {
    /// The content key's bytes.
    pub content: Zeroizing<[u8; 32]>,
    /// The metadata key's bytes.
    pub metadata: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

/// The content key: AES-256-GCM over the records (§5), its key schedule built once and
/// reused for every record of the file (and wiped on drop).
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

/// The metadata key: AES-256-GCM over the padded metadata JSON (§7), wiped on drop.
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

    type H = Hmac<Sha256>;

    /// RFC 5869 from HMAC alone: for L = 32, OKM = HMAC(HMAC(salt, IKM), info || 0x01).
    fn reference_hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
        let hmac = |key: &[u8], parts: &[&[u8]]| {
            let mut m = <H as KeyInit>::new_from_slice(key).unwrap();
            for part in parts {
                m.update(part);
            }
            m.finalize().into_bytes()
        };
        let prk = hmac(salt, &[ikm]);
        hmac(&prk, &[info, &[1]]).into()
    }

    #[test]
    fn debug_prints_no_key() {
        let key = FileKey::from_bytes([0xab; 32]);
        let keys = key
            .derive(&Header::new(&key, 64, [1; 32]).unwrap())
            .unwrap();
        for text in [format!("{key:?}"), format!("{keys:?}")] {
            assert!(!text.to_lowercase().contains("ab"), "{text}");
            assert!(text.contains("redacted"));
        }
    }

    #[test]
    fn hkdf_and_commitment_match_rfc5869_and_rfc2104() {
        let (k, salt) = ([3u8; 32], [9u8; 32]);
        let key = FileKey::from_bytes(k);
        let header = Header::new(&key, 64, salt).unwrap();

        let commit_key = reference_hkdf(&k, &salt, b"sealdrop/v2/commit");
        let mut m = <H as KeyInit>::new_from_slice(&commit_key).unwrap();
        m.update(&header.encode()[..44]);
        let expected: [u8; 32] = m.finalize().into_bytes().into();
        assert_eq!(header.commitment(), &expected);

        let keys = key.derive(&header).unwrap();
        let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::default();
        use aes_gcm::aead::Aead;
        for (info, ours) in [
            (&b"sealdrop/v2/content"[..], keys.content.cipher()),
            (b"sealdrop/v2/metadata", keys.metadata.cipher()),
        ] {
            let okm = reference_hkdf(&k, &salt, info);
            let theirs = Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm));
            assert_eq!(
                ours.encrypt(&nonce, &b"x"[..]).unwrap(),
                theirs.encrypt(&nonce, &b"x"[..]).unwrap()
            );
        }
    }

    #[test]
    fn key_bytes_are_the_derived_keys() {
        let (k, salt) = ([8u8; 32], [2u8; 32]);
        let key = FileKey::from_bytes(k);
        let header = Header::new(&key, 64, salt).unwrap();
        let bytes = key.derive_bytes(&header).unwrap();
        assert_eq!(
            *bytes.content,
            reference_hkdf(&k, &salt, b"sealdrop/v2/content")
        );
        assert_eq!(
            *bytes.metadata,
            reference_hkdf(&k, &salt, b"sealdrop/v2/metadata")
        );
        assert!(format!("{bytes:?}").contains("redacted"));
        let other = FileKey::from_bytes([9; 32]);
        assert_eq!(
            other.derive_bytes(&header).unwrap_err().code(),
            "key_commitment_failed"
        );
    }

    #[test]
    fn derive_checks_the_commitment() {
        let key = FileKey::from_bytes([5; 32]);
        let header = Header::new(&key, 64, [6; 32]).unwrap();
        assert!(key.derive(&header).is_ok());
        let other = FileKey::from_bytes([7; 32]);
        assert_eq!(
            other.derive(&header).unwrap_err(),
            FormatError::KeyCommitmentFailed
        );
        // Every committed byte and every commitment byte counts.
        let bytes = header.encode();
        for i in (8..76).step_by(5).chain([75]) {
            let mut changed = bytes;
            changed[i] ^= 0x10;
            let Ok(parsed) = Header::parse(&changed) else {
                continue;
            };
            assert_eq!(
                key.derive(&parsed).unwrap_err().code(),
                "key_commitment_failed",
                "byte {i}"
            );
        }
    }

    #[test]
    fn the_file_key_is_wiped() {
        let mut key = FileKey::from_bytes([0x5a; 32]);
        key.zeroize();
        assert_eq!(key.as_bytes(), &[0; 32]);
    }
}
