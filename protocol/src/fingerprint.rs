//! The rule that keeps a part sealed again (a retry, or a resume after a reload) from
//! reusing AES-GCM nonces on other plaintext.
//!
//! A record's nonce is fixed by its index and whether it is the last (FORMAT.md §5), so
//! when a part is retried it is read from the file again and sealed again under the
//! *same* (key, nonce) pairs. That is harmless only if the plaintext is the same. If
//! the file changed between the attempts (same size, other bytes), sending the second
//! ciphertext would put two plaintexts under one GCM nonce: their XOR leaks, and the
//! GHASH key can be recovered, which lets anyone forge records. The first ciphertext
//! may already have reached storage (a `PUT` can fail after the server took it), so
//! the second one must never leave the page.
//!
//! Hence: the first time a part is sealed, a [`PartFingerprint`] of it is kept,
//! SHA-256 over its records' 16-byte tags in order (32 bytes per part, whatever the
//! part size), and every later seal of that part is compared before its `PUT`; a
//! difference fails the upload with `file_changed`. Tags suffice: under one key and
//! nonce the tag is a MAC of the ciphertext, and the ciphertext differs exactly where
//! the plaintext does, so a changed record gives another tag except with probability
//! about 2^-128 per record (nobody changing the file knows the key).
//!
//! Across a reload or a crash the same holds: an upload that persists its state keeps
//! each part's fingerprint in IndexedDB *before* the part is first sent, so a resumed
//! upload compares against them too. And before anything is sealed on resume, the
//! file itself is checked against the [`FileFacts`] kept when the upload began (name,
//! size, last modification, SHA-256 of the first record's plaintext): a file that is
//! not the same fails with `file_changed` and nothing is sent.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file is not what it was when the upload began (code `file_changed`); the text
/// says what differs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileChanged(pub String);

/// SHA-256 over one part's record tags, in record order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartFingerprint(pub [u8; 32]);

/// Builds a [`PartFingerprint`] while a part's records are sealed.
#[derive(Default)]
pub struct TagDigest(Sha256);

impl TagDigest {
    /// Adds the next record's tag.
    pub fn push(&mut self, tag: &[u8]) {
        self.0.update(tag);
    }

    /// The fingerprint of the tags pushed so far.
    pub fn finish(self) -> PartFingerprint {
        PartFingerprint(self.0.finalize().into())
    }
}

/// What a seal of a part is, against the first seal of that part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// The part's first seal: keep (and persist) its fingerprint before sending it.
    First,
    /// Identical to the first seal: safe to send again.
    Same,
}

/// The fingerprint of every part sealed so far in one upload, by part number.
#[derive(Debug, Default)]
pub struct PartFingerprints(HashMap<u32, PartFingerprint>);

impl PartFingerprints {
    /// The fingerprints an upload persisted before a reload.
    pub fn from_saved(saved: impl IntoIterator<Item = (u32, PartFingerprint)>) -> Self {
        Self(saved.into_iter().collect())
    }

    /// Compares a seal of `part` with its first seal. A seal that differs means the
    /// file changed since that part was first sealed: `file_changed`, and the caller
    /// must drop the sealed bytes unsent.
    pub fn check(&self, part: u32, seal: PartFingerprint) -> Result<Seal, FileChanged> {
        match self.0.get(&part) {
            None => Ok(Seal::First),
            Some(first) if *first == seal => Ok(Seal::Same),
            Some(_) => Err(FileChanged(format!(
                "part {part} reads differently than when it was first sealed; nothing of it \
                 is sent again"
            ))),
        }
    }

    /// Keeps the first seal of `part` (once persisted, when the upload persists).
    pub fn remember(&mut self, part: u32, seal: PartFingerprint) {
        self.0.entry(part).or_insert(seal);
    }
}

/// What identifies the file an upload was made from, kept to recognise it on resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileFacts {
    /// `file.name` (empty for a plain `Blob`).
    pub name: String,
    /// `file.size`.
    pub size: u64,
    /// `file.lastModified` in ms (`None` for a plain `Blob`).
    pub last_modified: Option<u64>,
    /// SHA-256 of the first record's plaintext, hex.
    pub first_record_sha256: String,
}

impl FileFacts {
    /// The facts of a file of `size` bytes whose first record's plaintext is `first`.
    pub fn new(name: String, size: u64, last_modified: Option<u64>, first: &[u8]) -> Self {
        let digest: [u8; 32] = Sha256::digest(first).into();
        let first_record_sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            name,
            size,
            last_modified,
            first_record_sha256,
        }
    }

    /// `Ok` if `now` is the same file as when the upload began; `file_changed` naming
    /// what differs otherwise.
    pub fn check_same(&self, now: &FileFacts) -> Result<(), FileChanged> {
        let differs = if self.name != now.name {
            format!("its name is {:?}, not {:?}", now.name, self.name)
        } else if self.size != now.size {
            format!("it has {} bytes, not {}", now.size, self.size)
        } else if self.last_modified != now.last_modified {
            "it was modified since the upload began".to_owned()
        } else if self.first_record_sha256 != now.first_record_sha256 {
            "its first bytes differ".to_owned()
        } else {
            return Ok(());
        };
        Err(FileChanged(format!(
            "this is not the file the upload began with: {differs}"
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fingerprint(tags: &[[u8; 16]]) -> PartFingerprint {
        let mut digest = TagDigest::default();
        for tag in tags {
            digest.push(tag);
        }
        digest.finish()
    }

    #[test]
    fn the_first_seal_is_kept_and_the_same_seal_is_admitted_again() {
        let mut parts = PartFingerprints::default();
        let seal = fingerprint(&[[1; 16], [2; 16]]);
        assert_eq!(parts.check(4, seal), Ok(Seal::First));
        parts.remember(4, seal);
        for _ in 0..3 {
            assert_eq!(parts.check(4, seal), Ok(Seal::Same));
        }
    }

    #[test]
    fn a_changed_part_is_refused_as_file_changed() {
        let mut parts = PartFingerprints::default();
        parts.remember(2, fingerprint(&[[1; 16], [2; 16]]));
        for changed in [
            fingerprint(&[[1; 16], [3; 16]]),
            fingerprint(&[[2; 16], [1; 16]]),
            fingerprint(&[[1; 16]]),
        ] {
            let refused = parts.check(2, changed).unwrap_err();
            assert!(refused.to_string().contains("part 2 reads differently"));
            // The first seal stays the reference: a refused one never replaces it.
            parts.remember(2, changed);
        }
        assert_eq!(
            parts.check(2, fingerprint(&[[1; 16], [2; 16]])),
            Ok(Seal::Same)
        );
    }

    #[test]
    fn persisted_fingerprints_bind_a_resumed_upload() {
        let parts = PartFingerprints::from_saved([
            (1, fingerprint(&[[1; 16]])),
            (2, fingerprint(&[[9; 16]])),
        ]);
        assert_eq!(parts.check(1, fingerprint(&[[1; 16]])), Ok(Seal::Same));
        assert!(parts.check(2, fingerprint(&[[1; 16]])).is_err());
        assert_eq!(parts.check(3, fingerprint(&[[1; 16]])), Ok(Seal::First));
    }

    #[test]
    fn a_file_is_recognised_by_its_facts() {
        let facts = FileFacts::new("a.bin".into(), 10, Some(5), b"first");
        assert_eq!(facts.first_record_sha256.len(), 64);
        assert_eq!(facts.check_same(&facts.clone()), Ok(()));
        for (other, says) in [
            (
                FileFacts::new("b.bin".into(), 10, Some(5), b"first"),
                "its name is",
            ),
            (
                FileFacts::new("a.bin".into(), 11, Some(5), b"first"),
                "it has 11 bytes",
            ),
            (
                FileFacts::new("a.bin".into(), 10, Some(6), b"first"),
                "modified",
            ),
            (
                FileFacts::new("a.bin".into(), 10, None, b"first"),
                "modified",
            ),
            (
                FileFacts::new("a.bin".into(), 10, Some(5), b"First"),
                "first bytes",
            ),
        ] {
            let e = facts.check_same(&other).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
