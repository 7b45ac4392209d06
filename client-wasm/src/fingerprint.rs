//! The rule that keeps a retried part from reusing AES-GCM nonces on other plaintext.
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
//! Hence: the first time a part seals successfully, a [`PartFingerprint`] of it is
//! kept, SHA-256 over its records' 16-byte tags in order (32 bytes per part, whatever
//! the part size). Every later seal of that part is compared before its `PUT`; a
//! difference fails the upload with `read_failed`. Tags suffice: under one key and
//! nonce the tag is a MAC of the ciphertext, and the ciphertext differs exactly where
//! the plaintext does, so a changed record gives another tag except with probability
//! about 2^-128 per record (nobody changing the file knows the key).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::error::ClientError;

/// SHA-256 over one part's record tags, in record order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartFingerprint([u8; 32]);

/// Builds a [`PartFingerprint`] while a part's records are sealed.
#[derive(Default)]
pub(crate) struct TagDigest(Sha256);

impl TagDigest {
    /// Adds the next record's tag.
    pub(crate) fn push(&mut self, tag: &[u8]) {
        self.0.update(tag);
    }

    pub(crate) fn finish(self) -> PartFingerprint {
        PartFingerprint(self.0.finalize().into())
    }
}

/// The fingerprint of every part sealed so far in one upload, by part number.
#[derive(Debug, Default)]
pub(crate) struct PartFingerprints(HashMap<u32, PartFingerprint>);

impl PartFingerprints {
    /// Admits a seal of `part` for sending: its first seal is remembered and admitted;
    /// a later one is admitted only if it is identical to the first. Otherwise the
    /// file changed since that part was first sealed: `read_failed`, and the caller
    /// must drop the sealed bytes unsent.
    pub(crate) fn admit(&mut self, part: u32, seal: PartFingerprint) -> Result<(), ClientError> {
        match self.0.get(&part) {
            None => {
                self.0.insert(part, seal);
                Ok(())
            }
            Some(first) if *first == seal => Ok(()),
            Some(_) => Err(ClientError::ReadFailed(format!(
                "the file changed during the upload (part {part} reads differently than \
                 when it was first sent)"
            ))),
        }
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
    fn the_same_seal_is_admitted_again_and_again() {
        let mut parts = PartFingerprints::default();
        let seal = fingerprint(&[[1; 16], [2; 16]]);
        for _ in 0..3 {
            assert_eq!(parts.admit(4, seal), Ok(()));
        }
    }

    #[test]
    fn a_changed_part_is_refused_as_read_failed() {
        let mut parts = PartFingerprints::default();
        assert_eq!(parts.admit(2, fingerprint(&[[1; 16], [2; 16]])), Ok(()));
        for changed in [
            fingerprint(&[[1; 16], [3; 16]]),
            fingerprint(&[[2; 16], [1; 16]]),
            fingerprint(&[[1; 16]]),
        ] {
            let refused = parts.admit(2, changed).unwrap_err();
            assert_eq!(refused.code(), "read_failed");
            assert!(refused.to_string().contains("changed during the upload"));
        }
        // The first seal stays the reference: a refused one never replaces it.
        assert_eq!(parts.admit(2, fingerprint(&[[1; 16], [2; 16]])), Ok(()));
    }

    #[test]
    fn parts_are_compared_only_with_themselves() {
        let mut parts = PartFingerprints::default();
        assert_eq!(parts.admit(1, fingerprint(&[[1; 16]])), Ok(()));
        assert_eq!(parts.admit(2, fingerprint(&[[9; 16]])), Ok(()));
        assert_eq!(parts.admit(1, fingerprint(&[[1; 16]])), Ok(()));
        assert!(parts.admit(2, fingerprint(&[[1; 16]])).is_err());
    }
}
