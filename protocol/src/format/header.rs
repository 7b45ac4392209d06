//! The 44-byte header (§3): what a reader needs before the first record, and the
//! additional authenticated data of every record and of the metadata.

use super::FormatError;

/// Length of an encoded header.
pub const HEADER_LEN: usize = 44;
/// Length of the per-file salt.
pub const SALT_LEN: usize = 32;
/// The magic bytes every header starts with: ASCII `SDRP`.
pub const MAGIC: [u8; 4] = *b"SDRP";
/// The only format version this crate reads and writes.
pub const VERSION: u8 = 1;
/// The only suite of version 1: AES-256-GCM records, HKDF-SHA256, STREAM nonces.
pub const SUITE: u8 = 1;
/// Smallest record size a header may declare.
pub const MIN_RECORD_SIZE: u32 = 16;
/// Largest record size a header may declare (16 MiB). It keeps every record far below
/// AES-GCM's per-message limit and bounds what a reader must buffer.
pub const MAX_RECORD_SIZE: u32 = 16 * 1024 * 1024;
/// The record size writers use unless told otherwise (1 MiB).
pub const DEFAULT_RECORD_SIZE: u32 = 1024 * 1024;

/// A validated v1 header: the record size and the file's salt.
///
/// A `Header` can only hold a record size in range, and [`encode`](Header::encode) /
/// [`parse`](Header::parse) are exact inverses: since every header byte is the AAD of
/// every record, two headers that print the same must encode the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    record_size: u32,
    salt: [u8; SALT_LEN],
}

impl Header {
    /// A header for a new file. `salt` must be 32 fresh random bytes: the salt is what makes
    /// the content key unique to this file (§4).
    pub fn new(record_size: u32, salt: [u8; SALT_LEN]) -> Result<Self, FormatError> {
        check_record_size(record_size)?;
        Ok(Self { record_size, salt })
    }

    /// Plaintext bytes per record (`R`).
    pub fn record_size(&self) -> u32 {
        self.record_size
    }

    /// The file's salt (HKDF salt of both keys).
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// The 44 bytes of §3.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = SUITE;
        // out[6..8]: reserved, zero.
        out[8..12].copy_from_slice(&self.record_size.to_be_bytes());
        out[12..].copy_from_slice(&self.salt);
        out
    }

    /// Reads a header, checking (in this order, see §3) its length, magic, version and
    /// suite, reserved bytes and record size.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let bytes: &[u8; HEADER_LEN] = bytes
            .try_into()
            .map_err(|_| FormatError::InvalidHeader("a header is exactly 44 bytes"))?;
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
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[12..]);
        Self::new(record_size, salt)
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

    fn valid() -> [u8; HEADER_LEN] {
        Header::new(64, [7; 32]).unwrap().encode()
    }

    #[test]
    fn encode_layout_and_round_trip() {
        let h = Header::new(DEFAULT_RECORD_SIZE, core::array::from_fn(|i| i as u8)).unwrap();
        let bytes = h.encode();
        assert_eq!(&bytes[..12], b"SDRP\x01\x01\x00\x00\x00\x10\x00\x00");
        assert_eq!(bytes[12], 0);
        assert_eq!(bytes[43], 31);
        assert_eq!(Header::parse(&bytes).unwrap(), h);
    }

    #[test]
    fn record_size_bounds() {
        for ok in [16, 17, DEFAULT_RECORD_SIZE, MAX_RECORD_SIZE] {
            assert!(Header::new(ok, [0; 32]).is_ok(), "{ok}");
        }
        for bad in [0, 15, MAX_RECORD_SIZE + 1, u32::MAX] {
            assert_eq!(
                Header::new(bad, [0; 32]).unwrap_err().code(),
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
        assert_eq!(code(&v[..43]), "invalid_header");
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
            b[i] ^= 0x02;
            assert_eq!(code(&b), expected, "byte {i}");
        }
        // Version is checked before the reserved bytes and the record size.
        let mut b = v;
        b[4] = 2;
        b[6] = 1;
        b[8..12].copy_from_slice(&[0xff; 4]);
        assert_eq!(
            Header::parse(&b).unwrap_err(),
            FormatError::UnsupportedVersion {
                version: 2,
                suite: 1
            }
        );
    }
}
