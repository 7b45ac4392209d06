//! The 76-byte header (§3): what a reader needs before the first record, the commitment to
//! the file key, and the additional authenticated data of every record and of the metadata.

use super::{FileKey, FormatError};

/// Length of an encoded header.
pub const HEADER_LEN: usize = 76;
/// Length of the per-file salt.
pub const SALT_LEN: usize = 32;
/// Length of the key commitment that ends the header.
pub(crate) const COMMITMENT_LEN: usize = 32;
/// The header bytes the commitment covers: everything before it.
pub(crate) const COMMITTED_LEN: usize = HEADER_LEN - COMMITMENT_LEN;
/// The magic bytes every header starts with: ASCII `SDRP`.
pub const MAGIC: [u8; 4] = *b"SDRP";
/// The only format version this crate reads and writes.
pub const VERSION: u8 = 2;
/// The only suite of version 2: AES-256-GCM records, HKDF-SHA256, an HMAC-SHA256 key
/// commitment, STREAM nonces.
pub const SUITE: u8 = 1;
/// Smallest record size a header may declare.
pub const MIN_RECORD_SIZE: u32 = 16;
/// Largest record size a header may declare (16 MiB). It keeps every record far below
/// AES-GCM's per-message limit and bounds what a reader must buffer.
pub const MAX_RECORD_SIZE: u32 = 16 * 1024 * 1024;
/// The record size writers use unless told otherwise (1 MiB).
pub const DEFAULT_RECORD_SIZE: u32 = 1024 * 1024;

/// A well-formed v2 header: the record size, the file's salt and the key commitment.
///
/// A `Header` can only hold a record size in range, and [`encode`](Header::encode) /
/// [`parse`](Header::parse) are exact inverses: since every header byte is the AAD of
/// every record, two headers that print the same must encode the same. A parsed header's
/// commitment is not yet checked: that needs the file key, and happens in
/// [`FileKey::derive`], the only way to the keys that open anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    record_size: u32,
    salt: [u8; SALT_LEN],
    commitment: [u8; COMMITMENT_LEN],
}

impl Header {
    /// The header of a new file sealed under `file_key`, with its commitment (§4). `salt`
    /// must be 32 fresh random bytes: the salt is what makes the keys unique to this file.
    pub fn new(
        file_key: &FileKey,
        record_size: u32,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, FormatError> {
        check_record_size(record_size)?;
        let mut header = Self {
            record_size,
            salt,
            commitment: [0; COMMITMENT_LEN],
        };
        header.commitment = file_key.commitment(&header);
        Ok(header)
    }

    /// Plaintext bytes per record (`R`).
    pub fn record_size(&self) -> u32 {
        self.record_size
    }

    /// The file's salt (HKDF salt of every key).
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// The commitment to the file key the header claims.
    pub(crate) fn commitment(&self) -> &[u8; COMMITMENT_LEN] {
        &self.commitment
    }

    /// The 76 bytes of §3.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..COMMITTED_LEN].copy_from_slice(&self.committed());
        out[COMMITTED_LEN..].copy_from_slice(&self.commitment);
        out
    }

    /// The 44 bytes the commitment covers (everything but the commitment).
    pub(crate) fn committed(&self) -> [u8; COMMITTED_LEN] {
        let mut out = [0u8; COMMITTED_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = SUITE;
        // out[6..8]: reserved, zero.
        out[8..12].copy_from_slice(&self.record_size.to_be_bytes());
        out[12..].copy_from_slice(&self.salt);
        out
    }

    /// Reads a header, checking (in the order of §3) its length, magic, version, suite,
    /// reserved bytes and record size. The commitment is checked later, with the key.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let bytes: &[u8; HEADER_LEN] = bytes
            .try_into()
            .map_err(|_| FormatError::InvalidHeader("a header is exactly 76 bytes"))?;
        if bytes[0..4] != MAGIC {
            return Err(FormatError::InvalidHeader("bad magic"));
        }
        // Version before everything else that follows the magic: a later version may give
        // the reserved bytes or the record size another meaning.
        let (version, suite) = (bytes[4], bytes[5]);
        if version != VERSION || suite != SUITE {
            return Err(FormatError::UnsupportedVersion { version, suite });
        }
        if bytes[6..8] != [0, 0] {
            return Err(FormatError::InvalidHeader("reserved bytes are not zero"));
        }
        let record_size = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        check_record_size(record_size)?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[12..COMMITTED_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&bytes[COMMITTED_LEN..]);
        Ok(Self {
            record_size,
            salt,
            commitment,
        })
    }
}

/// Refuses a record size outside `16..=16 MiB` (§3).
pub(crate) fn check_record_size(record_size: u32) -> Result<(), FormatError> {
    if (MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&record_size) {
        Ok(())
    } else {
        Err(FormatError::InvalidHeader(
            "record size outside 16..=16777216",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> FileKey {
        FileKey::from_bytes([3; 32])
    }

    fn valid() -> [u8; HEADER_LEN] {
        Header::new(&key(), 64, [7; 32]).unwrap().encode()
    }

    #[test]
    fn encode_layout_and_round_trip() {
        let salt = core::array::from_fn(|i| i as u8);
        let h = Header::new(&key(), DEFAULT_RECORD_SIZE, salt).unwrap();
        let bytes = h.encode();
        assert_eq!(&bytes[..12], b"SDRP\x02\x01\x00\x00\x00\x10\x00\x00");
        assert_eq!(bytes[12..44], salt);
        assert_eq!(&bytes[44..], h.commitment());
        assert_eq!(Header::parse(&bytes).unwrap(), h);
        // The commitment depends on the key and on every committed byte.
        let other_key = Header::new(&FileKey::from_bytes([4; 32]), DEFAULT_RECORD_SIZE, salt);
        let other_size = Header::new(&key(), DEFAULT_RECORD_SIZE + 1, salt);
        let other_salt = Header::new(&key(), DEFAULT_RECORD_SIZE, [9; 32]);
        for other in [other_key, other_size, other_salt] {
            assert_ne!(other.unwrap().commitment(), h.commitment());
        }
    }

    #[test]
    fn record_size_bounds() {
        for ok in [16, 17, DEFAULT_RECORD_SIZE, MAX_RECORD_SIZE] {
            assert!(Header::new(&key(), ok, [0; 32]).is_ok(), "{ok}");
        }
        for bad in [0, 15, MAX_RECORD_SIZE + 1, u32::MAX] {
            assert_eq!(
                Header::new(&key(), bad, [0; 32]).unwrap_err().code(),
                "invalid_header"
            );
            let mut bytes = valid();
            bytes[8..12].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(Header::parse(&bytes).unwrap_err().code(), "invalid_header");
        }
    }

    #[test]
    fn rejects_each_malformation_with_its_code() {
        let code = |b: &[u8]| Header::parse(b).unwrap_err().code();
        let v = valid();
        assert_eq!(code(&v[..75]), "invalid_header");
        assert_eq!(code(&v[..44]), "invalid_header");
        assert_eq!(code(&[&v[..], &[0]].concat()), "invalid_header");
        assert_eq!(code(&[]), "invalid_header");
        for (i, expected) in [
            (0, "invalid_header"),
            (3, "invalid_header"),
            (4, "unsupported_version"),
            (5, "unsupported_version"),
            (6, "invalid_header"),
            (7, "invalid_header"),
        ] {
            let mut b = v;
            b[i] ^= 0x04;
            assert_eq!(code(&b), expected, "byte {i}");
        }
        // The salt and the commitment are not checked without the key.
        let mut b = v;
        b[12] ^= 1;
        b[75] ^= 1;
        assert!(Header::parse(&b).is_ok());
    }

    #[test]
    fn several_bad_fields_report_the_first_in_order() {
        let mut b = valid();
        b[4] = 3;
        b[6] = 1;
        b[8..12].copy_from_slice(&[0xff; 4]);
        // Version before the reserved bytes and the record size...
        assert_eq!(
            Header::parse(&b).unwrap_err(),
            FormatError::UnsupportedVersion {
                version: 3,
                suite: 1
            }
        );
        // ...the magic before the version...
        b[0] = b'X';
        assert_eq!(Header::parse(&b).unwrap_err().code(), "invalid_header");
        // ...and the length before everything.
        b[0] = b'S';
        assert_eq!(
            Header::parse(&[&b[..], &[0]].concat()).unwrap_err().code(),
            "invalid_header"
        );
    }
}
