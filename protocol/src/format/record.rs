//! One record of the STREAM construction (§5): sealing and opening are stateless functions
//! of (content key, header, index, last flag), so any record can be sealed or opened alone,
//! in any order, in parallel.

use aes_gcm::{AeadInOut, Nonce, Tag, aead::consts::U12};

use super::{ContentKey, FormatError, Header, TAG_LEN};

/// Length of a record nonce.
pub const NONCE_LEN: usize = 12;

/// Where a record sits in its stream: its index and whether it is the last, the two
/// things its nonce binds.
///
/// Every rule a record backend must follow besides AES-256-GCM itself lives here, as pure
/// functions, so that the software path ([`seal_record_into`], [`open_record_into`]) and
/// any other backend (the browser client's WebCrypto one) share them: the nonce, the shape
/// checks made before any AES runs, and the refinement of a failed open into the error
/// codes of §6. The AAD is the whole header ([`Header::encode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordPosition {
    /// The record's index, counting from 0.
    pub index: u64,
    /// Whether it is the file's final record.
    pub last: bool,
}

impl RecordPosition {
    /// The position of record `index`.
    pub const fn new(index: u64, last: bool) -> Self {
        Self { index, last }
    }

    /// `nonce(i, last) = i as an 11-byte big-endian integer || (0x01 if last else 0x00)`.
    ///
    /// Binding the index stops reordering, duplication and dropping of records; binding
    /// the last flag stops truncation at a record boundary and appending after the last
    /// record. An index is a `u64`, so its top three bytes are always zero.
    pub fn nonce(self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[3..11].copy_from_slice(&self.index.to_be_bytes());
        nonce[11] = u8::from(self.last);
        nonce
    }

    /// Checks, before sealing, that `plaintext_len` bytes may sit here: every record but
    /// the last holds exactly `R` bytes, the last `1..=R`, and only record 0 (an empty
    /// file) may be empty. Fails with `invalid_length`.
    pub fn check_seal(self, header: &Header, plaintext_len: usize) -> Result<(), FormatError> {
        let record_size = header.record_size() as usize;
        if plaintext_len > record_size {
            Err(FormatError::InvalidLength("a record holds at most R bytes"))
        } else if !self.last && plaintext_len != record_size {
            Err(FormatError::InvalidLength(
                "every record but the last holds exactly R bytes",
            ))
        } else if self.last && plaintext_len == 0 && self.index != 0 {
            Err(FormatError::InvalidLength(
                "only an empty file has an empty record",
            ))
        } else {
            Ok(())
        }
    }

    /// Checks, before opening, that a sealed record of `sealed_len` bytes may sit here (the
    /// same rule on `sealed_len - 16`), and returns its plaintext length. Fails with
    /// `invalid_length`: such a record never reaches AES.
    pub fn check_open(self, header: &Header, sealed_len: usize) -> Result<usize, FormatError> {
        let len = sealed_len
            .checked_sub(TAG_LEN)
            .ok_or(FormatError::InvalidLength(
                "a sealed record holds at least its tag",
            ))?;
        self.check_seal(header, len)?;
        Ok(len)
    }

    /// Where a record that failed to open here is tried again to refine the error (§6):
    /// the same index with the other last flag, if its length can sit there.
    pub fn refinement(self, header: &Header, sealed_len: usize) -> Option<RecordPosition> {
        let other = Self::new(self.index, !self.last);
        other.check_open(header, sealed_len).ok().map(|_| other)
    }

    /// The error for a record that failed to open here, given whether it opened at its
    /// [`refinement`](RecordPosition::refinement): `truncated` if the record in last
    /// position authenticates as a non-last one, `trailing_data` if a record before it
    /// authenticates as the last one, `record_auth_failed` otherwise.
    pub fn open_failure(self, opened_at_refinement: bool) -> FormatError {
        let record = self.index;
        match (opened_at_refinement, self.last) {
            (true, true) => FormatError::Truncated { record },
            (true, false) => FormatError::TrailingData { record },
            (false, _) => FormatError::RecordAuthFailed { record },
        }
    }
}

/// Seals record `index` and appends it (ciphertext then tag, `plaintext.len() + 16` bytes)
/// to `out`, so an uploader can seal records straight into a part buffer.
///
/// `last` must be true exactly for the file's final record
/// ([`Layout::is_last`](super::Layout::is_last)); a plaintext whose length cannot sit at
/// that position is refused with `invalid_length` and `out` is left as it was. The content
/// key must belong to a file key used for this file only (§5).
pub fn seal_record_into(
    key: &ContentKey,
    header: &Header,
    index: u64,
    last: bool,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FormatError> {
    let position = RecordPosition::new(index, last);
    position.check_seal(header, plaintext.len())?;
    let start = out.len();
    out.reserve(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let sealed = key.cipher().encrypt_inout_detached(
        &Nonce::<U12>::from(position.nonce()),
        &header.encode(),
        (&mut out[start..]).into(),
    );
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(())
        }
        Err(_) => {
            // Unreachable for records of at most 16 MiB (AES-GCM's limit is 64 GiB).
            out.truncate(start);
            Err(FormatError::InvalidLength("record too long for AES-GCM"))
        }
    }
}

/// Seals record `index` into a new buffer; see [`seal_record_into`].
pub fn seal_record(
    key: &ContentKey,
    header: &Header,
    index: u64,
    last: bool,
    plaintext: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    seal_record_into(key, header, index, last, plaintext, &mut out)?;
    Ok(out)
}

/// Opens sealed record `index` and appends its plaintext to `out`.
///
/// `last` comes from the reader's layout ([`Layout::for_section`](super::Layout::for_section)).
/// On failure nothing is appended, and the error says which record failed and, as §6
/// refines it, why ([`RecordPosition::open_failure`]). Plaintext is only ever released
/// after its tag checked.
pub fn open_record_into(
    key: &ContentKey,
    header: &Header,
    index: u64,
    last: bool,
    sealed: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FormatError> {
    let position = RecordPosition::new(index, last);
    let len = position.check_open(header, sealed.len())?;
    let start = out.len();
    out.extend_from_slice(&sealed[..len]);
    if decrypt(key, header, position, &mut out[start..], &sealed[len..]) {
        return Ok(());
    }
    // Drop what we copied: aes-gcm checks the tag before decrypting, but we do not rely
    // on it to keep unauthenticated bytes away from the caller.
    out.truncate(start);
    let refined = position
        .refinement(header, sealed.len())
        .is_some_and(|other| {
            let mut scratch = sealed[..len].to_vec();
            decrypt(key, header, other, &mut scratch, &sealed[len..])
        });
    Err(position.open_failure(refined))
}

/// Opens sealed record `index` into a new buffer; see [`open_record_into`].
pub fn open_record(
    key: &ContentKey,
    header: &Header,
    index: u64,
    last: bool,
    sealed: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(sealed.len().saturating_sub(TAG_LEN));
    open_record_into(key, header, index, last, sealed, &mut out)?;
    Ok(out)
}

/// Decrypts `buffer` in place if `tag` authenticates it at `position`; reports whether it
/// did.
fn decrypt(
    key: &ContentKey,
    header: &Header,
    position: RecordPosition,
    buffer: &mut [u8],
    tag: &[u8],
) -> bool {
    let Ok(tag) = Tag::try_from(tag) else {
        return false;
    };
    key.cipher()
        .decrypt_inout_detached(
            &Nonce::<U12>::from(position.nonce()),
            &header.encode(),
            buffer.into(),
            &tag,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::format::FileKey;

    fn setup() -> (ContentKey, Header) {
        let key = FileKey::from_bytes([4; 32]);
        let header = Header::new(&key, 16, [5; 32]).unwrap();
        (key.derive(&header).unwrap().content, header)
    }

    fn nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
        RecordPosition::new(index, last).nonce()
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(nonce(0, false), [0; 12]);
        assert_eq!(nonce(0, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            nonce(0x0102_0304_0506_0708, true),
            [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1]
        );
        assert_eq!(nonce(u64::MAX, false)[3..11], [0xff; 8]);
    }

    #[test]
    fn position_rules_for_another_backend() {
        let (_, header) = setup();
        let at = RecordPosition::new;
        // check_open is check_seal on the length without the tag.
        assert_eq!(at(2, false).check_open(&header, 32), Ok(16));
        assert_eq!(at(2, true).check_open(&header, 17), Ok(1));
        assert_eq!(at(0, true).check_open(&header, 16), Ok(0));
        for (position, len) in [
            (at(0, true), 15),
            (at(2, true), 16),
            (at(2, false), 31),
            (at(2, true), 33),
        ] {
            assert_eq!(
                position.check_open(&header, len).unwrap_err().code(),
                "invalid_length",
                "{position:?} {len}"
            );
        }
        // A full record may be tried at the other flag; a short one only as the last.
        assert_eq!(at(2, true).refinement(&header, 32), Some(at(2, false)));
        assert_eq!(at(2, false).refinement(&header, 32), Some(at(2, true)));
        assert_eq!(at(2, true).refinement(&header, 20), None);
        assert_eq!(at(0, true).refinement(&header, 16), None);
        assert_eq!(
            at(5, true).open_failure(true),
            FormatError::Truncated { record: 5 }
        );
        assert_eq!(
            at(5, false).open_failure(true),
            FormatError::TrailingData { record: 5 }
        );
        for last in [false, true] {
            assert_eq!(
                at(5, last).open_failure(false),
                FormatError::RecordAuthFailed { record: 5 }
            );
        }
    }

    #[test]
    fn seal_refuses_misplaced_lengths() {
        let (key, header) = setup();
        let code = |index, last, len| {
            seal_record(&key, &header, index, last, &vec![0; len])
                .unwrap_err()
                .code()
        };
        assert_eq!(code(0, true, 17), "invalid_length");
        assert_eq!(code(0, false, 15), "invalid_length");
        assert_eq!(code(0, false, 0), "invalid_length");
        assert_eq!(code(1, true, 0), "invalid_length");
        assert!(seal_record(&key, &header, 0, true, &[]).is_ok());
        assert!(seal_record(&key, &header, 7, true, &[1]).is_ok());
        assert!(seal_record(&key, &header, 7, false, &[1; 16]).is_ok());
    }

    #[test]
    fn seal_into_appends_and_leaves_out_alone_on_error() {
        let (key, header) = setup();
        let mut out = b"part:".to_vec();
        seal_record_into(&key, &header, 0, false, &[9; 16], &mut out).unwrap();
        assert_eq!(out.len(), 5 + 32);
        assert_eq!(
            &out[5..],
            seal_record(&key, &header, 0, false, &[9; 16]).unwrap()
        );
        assert!(seal_record_into(&key, &header, 1, false, &[9; 3], &mut out).is_err());
        assert_eq!(out.len(), 37);
    }

    #[test]
    fn open_refines_the_failure() {
        let (key, header) = setup();
        let full = seal_record(&key, &header, 3, false, &[1; 16]).unwrap();
        let final_full = seal_record(&key, &header, 3, true, &[1; 16]).unwrap();
        let final_short = seal_record(&key, &header, 3, true, &[1; 5]).unwrap();
        assert_eq!(
            open_record(&key, &header, 3, false, &full).unwrap(),
            [1; 16]
        );
        assert_eq!(
            open_record(&key, &header, 3, true, &final_short).unwrap(),
            [1; 5]
        );
        let err = |last, sealed: &[u8]| open_record(&key, &header, 3, last, sealed).unwrap_err();
        assert_eq!(err(true, &full), FormatError::Truncated { record: 3 });
        assert_eq!(
            err(false, &final_full),
            FormatError::TrailingData { record: 3 }
        );
        let mut bad = full.clone();
        bad[0] ^= 1;
        assert_eq!(err(true, &bad), FormatError::RecordAuthFailed { record: 3 });
        assert_eq!(
            err(false, &bad),
            FormatError::RecordAuthFailed { record: 3 }
        );
        // Another index is another nonce.
        let other = open_record(&key, &header, 4, false, &full).unwrap_err();
        assert_eq!(other, FormatError::RecordAuthFailed { record: 4 });
        // Lengths that cannot sit at the position never reach AES.
        assert_eq!(err(false, &final_short).code(), "invalid_length");
        assert_eq!(err(true, &full[..15]).code(), "invalid_length");
    }

    #[test]
    fn open_into_appends_nothing_on_failure() {
        let (key, header) = setup();
        let mut sealed = seal_record(&key, &header, 0, true, &[1; 10]).unwrap();
        sealed[3] ^= 0x80;
        let mut out = b"kept".to_vec();
        assert!(open_record_into(&key, &header, 0, true, &sealed, &mut out).is_err());
        assert_eq!(out, b"kept");
    }
}
