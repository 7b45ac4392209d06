//! Where every record sits (§5, §6): pure arithmetic over `u64`, from either the plaintext
//! size (writing) or the record-section length (reading).

use core::ops::Range;

use super::{FormatError, TAG_LEN, header::check_record_size};

const TAG: u64 = TAG_LEN as u64;

/// The shape of one file's record section: `N` records of `R` plaintext bytes each, the
/// last holding `1..=R` bytes (or 0 for an empty file, which has exactly one record).
///
/// Built only through [`for_plaintext`](Layout::for_plaintext) or
/// [`for_section`](Layout::for_section), which validate it, so every accessor is plain
/// arithmetic that cannot overflow for an index below [`record_count`](Layout::record_count);
/// indexes past the end give `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    record_size: u32,
    plaintext_size: u64,
    record_count: u64,
}

impl Layout {
    /// The layout a writer produces for `plaintext_size` bytes:
    /// `N = max(1, ceil(L / R))` records.
    ///
    /// Fails with `invalid_header` for a record size out of range and `invalid_length` if
    /// the section length `L + 16 N` does not fit in a `u64`.
    pub fn for_plaintext(record_size: u32, plaintext_size: u64) -> Result<Self, FormatError> {
        check_record_size(record_size)?;
        let record_count = plaintext_size.div_ceil(u64::from(record_size)).max(1);
        let layout = Self {
            record_size,
            plaintext_size,
            record_count,
        };
        record_count
            .checked_mul(TAG)
            .and_then(|tags| tags.checked_add(plaintext_size))
            .ok_or(FormatError::InvalidLength(
                "the record section would not fit in 64 bits",
            ))?;
        Ok(layout)
    }

    /// The layout a reader derives from the record-section length `C` (§6):
    /// `N = ceil(C / (R + 16))`, refusing (`invalid_length`) a section shorter than one tag,
    /// a last record too short to hold a tag, and an empty last record when `N > 1` (only
    /// an empty file has an empty record).
    pub fn for_section(record_size: u32, section_len: u64) -> Result<Self, FormatError> {
        check_record_size(record_size)?;
        if section_len < TAG {
            return Err(FormatError::InvalidLength(
                "a record section holds at least one tag",
            ));
        }
        let sealed_size = u64::from(record_size) + TAG;
        let record_count = section_len.div_ceil(sealed_size);
        let last_sealed = section_len - (record_count - 1) * sealed_size;
        if last_sealed < TAG {
            return Err(FormatError::InvalidLength(
                "the last record is shorter than a tag",
            ));
        }
        if last_sealed == TAG && record_count > 1 {
            return Err(FormatError::InvalidLength(
                "an empty last record after other records (only an empty file has one)",
            ));
        }
        Ok(Self {
            record_size,
            plaintext_size: section_len - record_count * TAG,
            record_count,
        })
    }

    /// Plaintext bytes per record (`R`).
    pub fn record_size(&self) -> u32 {
        self.record_size
    }

    /// Plaintext bytes in the whole file (`L`).
    pub fn plaintext_size(&self) -> u64 {
        self.plaintext_size
    }

    /// Number of records (`N`, at least 1).
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// Length of the record section: `L + 16 N` (checked at construction).
    pub fn section_len(&self) -> u64 {
        self.plaintext_size + self.record_count * TAG
    }

    /// Index of the last record (`N - 1`).
    pub fn last_index(&self) -> u64 {
        self.record_count - 1
    }

    /// Whether record `index` is the last one, the flag its nonce carries. `false` for an
    /// index past the end.
    pub fn is_last(&self, index: u64) -> bool {
        index == self.last_index()
    }

    /// The plaintext bytes `[i R, min((i + 1) R, L))` that record `index` holds.
    pub fn plaintext_range(&self, index: u64) -> Option<Range<u64>> {
        if index >= self.record_count {
            return None;
        }
        let start = index * u64::from(self.record_size);
        let end = start
            .saturating_add(u64::from(self.record_size))
            .min(self.plaintext_size);
        Some(start..end)
    }

    /// Plaintext length of record `index`.
    pub fn plaintext_len(&self, index: u64) -> Option<u64> {
        self.plaintext_range(index).map(|r| r.end - r.start)
    }

    /// Sealed length of record `index`: its plaintext length plus the tag.
    pub fn sealed_len(&self, index: u64) -> Option<u64> {
        self.plaintext_len(index).map(|len| len + TAG)
    }

    /// Offset of sealed record `index` in the record section: `i (R + 16)`.
    pub fn sealed_offset(&self, index: u64) -> Option<u64> {
        (index < self.record_count).then(|| index * (u64::from(self.record_size) + TAG))
    }

    /// Byte range of sealed record `index` in the record section (one HTTP `Range`).
    pub fn sealed_range(&self, index: u64) -> Option<Range<u64>> {
        let start = self.sealed_offset(index)?;
        Some(start..start + self.sealed_len(index)?)
    }

    /// How the first `available` bytes of this section divide into records (§6): the
    /// number of records that arrived whole, and the error a reader reports once those
    /// have opened: `truncated` naming the first record that did not arrive whole, or
    /// `trailing_data` naming `N` for bytes past the end; `None` when exactly the section
    /// arrived. An error while opening a whole record comes first.
    ///
    /// For a reader that opens a known-length section record by record through a
    /// backend of its own; [`StreamOpener`](super::StreamOpener) applies the same rule to
    /// bytes fed in chunks.
    pub fn arrived(&self, available: u64) -> (u64, Option<FormatError>) {
        let section = self.section_len();
        if available > section {
            let error = FormatError::TrailingData {
                record: self.record_count,
            };
            return (self.record_count, Some(error));
        }
        if available == section {
            return (self.record_count, None);
        }
        // Every record before the last is R + 16 bytes, and `available` ends before the
        // last record does.
        let whole = available / (u64::from(self.record_size) + TAG);
        (whole, Some(FormatError::Truncated { record: whole }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const R: u32 = 64;
    const TIB: u64 = 1 << 40;

    /// Checks every accessor of `layout` against the definitions, and that the reader's
    /// layout of the section length is the same layout.
    fn check(layout: Layout) {
        let n = layout.record_count();
        let r = u64::from(layout.record_size());
        let mut offset = 0;
        let mut plain = 0;
        // Only walk small layouts record by record; spot-check big ones.
        let indexes: Vec<u64> = if n <= 1000 {
            (0..n).collect()
        } else {
            vec![0, 1, n / 2, n - 2, n - 1]
        };
        for i in indexes {
            if n > 1000 {
                offset = i * (r + 16);
                plain = i * r;
            }
            let range = layout.plaintext_range(i).unwrap();
            assert_eq!(range.start, plain);
            let len = layout.plaintext_len(i).unwrap();
            if layout.is_last(i) {
                assert_eq!(range.end, layout.plaintext_size());
                assert!(len >= 1 || layout.plaintext_size() == 0);
            } else {
                assert_eq!(len, r);
            }
            assert_eq!(layout.sealed_offset(i), Some(offset));
            assert_eq!(layout.sealed_range(i), Some(offset..offset + len + 16));
            offset += len + 16;
            plain += len;
        }
        assert_eq!(offset, layout.section_len());
        assert_eq!(plain, layout.plaintext_size());
        assert_eq!(layout.plaintext_range(n), None);
        assert_eq!(layout.sealed_offset(n), None);
        assert!(!layout.is_last(n));
        let read = Layout::for_section(layout.record_size(), layout.section_len()).unwrap();
        assert_eq!(read, layout);
    }

    #[test]
    fn boundaries() {
        let r = u64::from(R);
        for (l, n) in [
            (0, 1),
            (1, 1),
            (r - 1, 1),
            (r, 1),
            (r + 1, 2),
            (2 * r, 2),
            (3 * r, 3),
            (3 * r + 1, 4),
        ] {
            let layout = Layout::for_plaintext(R, l).unwrap();
            assert_eq!(layout.record_count(), n, "L = {l}");
            assert_eq!(layout.section_len(), l + 16 * n);
            check(layout);
        }
        let empty = Layout::for_plaintext(R, 0).unwrap();
        assert_eq!(empty.sealed_len(0), Some(16));
        assert!(empty.is_last(0));
    }

    #[test]
    fn huge_files() {
        for (r, l) in [
            (crate::format::DEFAULT_RECORD_SIZE, 5 * TIB),
            (crate::format::DEFAULT_RECORD_SIZE, 5 * TIB + 1),
            (crate::format::MAX_RECORD_SIZE, 5 * TIB - 1),
            (16, 5 * TIB),
        ] {
            check(Layout::for_plaintext(r, l).unwrap());
        }
        let five = Layout::for_plaintext(crate::format::DEFAULT_RECORD_SIZE, 5 * TIB).unwrap();
        assert_eq!(five.record_count(), 5 * 1024 * 1024);
        assert_eq!(five.section_len(), 5 * TIB + 16 * 5 * 1024 * 1024);
        // The largest section a u64 can describe, and one plaintext byte more than it holds.
        let sealed = u64::from(R) + 16;
        let max = Layout::for_section(R, u64::MAX - u64::MAX % sealed).unwrap();
        check(max);
        let over = Layout::for_plaintext(R, max.plaintext_size() + 1);
        assert_eq!(over.unwrap_err().code(), "invalid_length");
        assert_eq!(
            Layout::for_plaintext(R, u64::MAX).unwrap_err().code(),
            "invalid_length"
        );
        // u64::MAX = 15 (mod 80): its last record could not hold a tag.
        assert_eq!(
            Layout::for_section(R, u64::MAX).unwrap_err().code(),
            "invalid_length"
        );
    }

    #[test]
    fn reader_refuses_impossible_lengths() {
        let code = |c: u64| Layout::for_section(R, c).unwrap_err().code();
        let sealed = u64::from(R) + 16;
        for c in [0, 1, 15] {
            assert_eq!(code(c), "invalid_length", "C = {c}");
        }
        // A last record of 1..=15 bytes cannot hold its tag.
        for c in [sealed + 1, sealed + 15, 3 * sealed + 15] {
            assert_eq!(code(c), "invalid_length", "C = {c}");
        }
        // An empty last record is allowed only alone.
        assert_eq!(Layout::for_section(R, 16).unwrap().plaintext_size(), 0);
        assert_eq!(code(sealed + 16), "invalid_length");
        assert_eq!(code(5 * sealed + 16), "invalid_length");
        assert_eq!(
            Layout::for_section(R, sealed + 17).unwrap().record_count(),
            2
        );
        assert_eq!(
            Layout::for_section(R, 2 * sealed).unwrap().record_count(),
            2
        );
    }

    #[test]
    fn arrived_counts_whole_records_and_names_the_first_missing() {
        let r = u64::from(R);
        // Three records: 80 + 80 + 17 bytes.
        let layout = Layout::for_plaintext(R, 2 * r + 1).unwrap();
        let truncated = |record| Some(FormatError::Truncated { record });
        assert_eq!(layout.arrived(0), (0, truncated(0)));
        assert_eq!(layout.arrived(79), (0, truncated(0)));
        assert_eq!(layout.arrived(80), (1, truncated(1)));
        assert_eq!(layout.arrived(160), (2, truncated(2)));
        assert_eq!(layout.arrived(176), (2, truncated(2)));
        assert_eq!(layout.arrived(177), (3, None));
        assert_eq!(
            layout.arrived(178),
            (3, Some(FormatError::TrailingData { record: 3 }))
        );
        // Whatever arrived, the records counted whole are whole.
        for available in 0..200 {
            let (whole, _) = layout.arrived(available);
            let end = whole
                .checked_sub(1)
                .map_or(0, |i| layout.sealed_range(i).unwrap().end);
            assert!(end <= available, "{available}");
        }
    }

    #[test]
    fn record_size_is_validated() {
        assert_eq!(
            Layout::for_plaintext(15, 1).unwrap_err().code(),
            "invalid_header"
        );
        assert_eq!(
            Layout::for_section(0, 100).unwrap_err().code(),
            "invalid_header"
        );
    }
}
