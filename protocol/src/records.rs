//! Which records a transfer step covers: runs of whole records, the bytes they span
//! in the plaintext and in the record section, and the layout a file record describes.
//!
//! Every step of a transfer works on whole records, so any piece can be sealed,
//! retried or verified alone: an upload reads and seals a part a few records at a
//! time, a download fetches ranges of records and opens them in groups. This is the
//! arithmetic they share, over a validated [`Layout`], in one place and tested here.

use std::ops::Range;

use crate::format::{Header, Layout};
use crate::plan::MAX_OBJECT_SIZE;
use crate::wire::FileRecord;

/// How many records of `record_bytes` bytes each make about `bytes` bytes: at least one,
/// so a step always moves forward even when one record is larger than `bytes`.
pub fn records_in(bytes: u64, record_bytes: u64) -> u64 {
    (bytes / record_bytes.max(1)).max(1)
}

/// Cuts `records` into consecutive runs of at most `per_run` records (at least one).
pub fn runs(records: Range<u64>, per_run: u64) -> impl Iterator<Item = Range<u64>> {
    let per_run = per_run.max(1);
    let end = records.end;
    (records.start..end)
        .step_by(usize::try_from(per_run).unwrap_or(usize::MAX))
        .map(move |start| start..start.saturating_add(per_run).min(end))
}

/// The plaintext bytes records `records` hold; `None` for an empty range or one that
/// reaches past the last record.
pub fn plaintext_span(layout: &Layout, records: &Range<u64>) -> Option<Range<u64>> {
    let last = records.end.checked_sub(1).filter(|&l| l >= records.start)?;
    Some(layout.plaintext_range(records.start)?.start..layout.plaintext_range(last)?.end)
}

/// The bytes of the record section that records `records` occupy; `None` for an empty
/// range or one that reaches past the last record.
pub fn sealed_span(layout: &Layout, records: &Range<u64>) -> Option<Range<u64>> {
    let last = records.end.checked_sub(1).filter(|&l| l >= records.start)?;
    Some(layout.sealed_range(records.start)?.start..layout.sealed_range(last)?.end)
}

/// The leading records of `records` that lie wholly before section offset `end`: what
/// a body cut short at `end` still holds of them (possibly none).
pub fn records_before(layout: &Layout, records: Range<u64>, end: u64) -> Range<u64> {
    let sealed = u64::from(layout.record_size()) + crate::format::TAG_LEN as u64;
    // Every record but the last is exactly `sealed` bytes; the last ends the section.
    let mut whole = (end / sealed).min(layout.last_index());
    if end >= layout.section_len() {
        whole = layout.record_count();
    }
    records.start..whole.clamp(records.start, records.end)
}

/// Where a download resumes that finds `held` plaintext bytes of the file already
/// written (in order, whole verified records only): the records it keeps, never the
/// last one (verified anew every time, so nothing is complete until it is).
pub fn resume_from(layout: &Layout, held: u64) -> u64 {
    (held / u64::from(layout.record_size())).min(layout.last_index())
}

/// The records that hold plaintext bytes `bytes`; empty for an empty range. Bytes past
/// the end of the file are held by no record.
pub fn records_holding(layout: &Layout, bytes: Range<u64>) -> Range<u64> {
    let size = u64::from(layout.record_size());
    let end = bytes.end.min(layout.plaintext_size());
    if bytes.start >= end {
        return 0..0;
    }
    bytes.start / size..end.div_ceil(size)
}

/// A run of records cut into numbered pieces of `per_run` records, numbered from 1 like
/// parts (the ranged `GET`s of a download).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runs {
    record_count: u64,
    per_run: u64,
}

impl Runs {
    /// Records `0..record_count` in runs of `per_run` (at least one).
    pub fn new(record_count: u64, per_run: u64) -> Self {
        Self {
            record_count,
            per_run: per_run.max(1),
        }
    }

    /// How many runs there are; `None` if more than a `u32` counts (a caller must refuse
    /// such a file, never saturate).
    pub fn count(&self) -> Option<u32> {
        u32::try_from(self.record_count.div_ceil(self.per_run)).ok()
    }

    /// The records of run `n` (1-based); `None` past the end.
    pub fn records(&self, n: u32) -> Option<Range<u64>> {
        let start = u64::from(n.checked_sub(1)?).checked_mul(self.per_run)?;
        (start < self.record_count).then(|| start..(start + self.per_run).min(self.record_count))
    }
}

/// Why a file record cannot describe a file: nothing in it is authenticated, so a lying
/// or broken server is refused before the client plans or allocates anything for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileRecordError {
    /// `recordSize` is not the header's.
    #[error("the file record's record size is not its header's")]
    RecordSizeMismatch,
    /// `ciphertextSize` is larger than one storage object can be.
    #[error("the file record claims {0} bytes of ciphertext, more than storage holds")]
    TooLarge(u64),
    /// `ciphertextSize` is not what `plaintextSize` makes in records of the header's size.
    #[error("the record-section length does not match the plaintext size")]
    SizeMismatch,
}

/// The layout a file record describes, refused unless its sizes are possible and
/// agree: the record section fits in one storage object ([`MAX_OBJECT_SIZE`]) and is
/// exactly what a writer produces for `plaintextSize` in records of the header's size.
pub fn file_layout(header: &Header, record: &FileRecord) -> Result<Layout, FileRecordError> {
    if record.record_size != header.record_size() {
        return Err(FileRecordError::RecordSizeMismatch);
    }
    if record.ciphertext_size > MAX_OBJECT_SIZE {
        return Err(FileRecordError::TooLarge(record.ciphertext_size));
    }
    Layout::for_plaintext(header.record_size(), record.plaintext_size)
        .ok()
        .filter(|layout| layout.section_len() == record.ciphertext_size)
        .ok_or(FileRecordError::SizeMismatch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::format::FileKey;
    use crate::ids::FileId;
    use crate::wire::DownloadUrl;
    use proptest::prelude::*;

    const R: u32 = 64;
    const SEALED: u64 = R as u64 + 16;

    fn layout(plaintext: u64) -> Layout {
        Layout::for_plaintext(R, plaintext).unwrap()
    }

    #[test]
    fn a_resume_keeps_whole_records_but_never_the_last() {
        let l = layout(10 * u64::from(R) + 5); // 11 records, the last of 5 bytes
        assert_eq!(resume_from(&l, 0), 0);
        assert_eq!(
            resume_from(&l, u64::from(R) - 1),
            0,
            "a cut record is not kept"
        );
        assert_eq!(resume_from(&l, 3 * u64::from(R)), 3);
        assert_eq!(resume_from(&l, 3 * u64::from(R) + 7), 3);
        assert_eq!(
            resume_from(&l, 10 * u64::from(R) + 5),
            10,
            "the last is fetched again"
        );
        assert_eq!(
            resume_from(&l, u64::MAX),
            10,
            "more than the file: still not the last"
        );
        assert_eq!(
            resume_from(&layout(0), 0),
            0,
            "an empty file has one (last) record"
        );
        assert_eq!(resume_from(&layout(u64::from(R)), u64::from(R)), 0);
    }

    #[test]
    fn records_holding_a_byte_range() {
        let r = u64::from(R);
        let l = layout(10 * r + 5);
        assert_eq!(records_holding(&l, 0..1), 0..1);
        assert_eq!(records_holding(&l, r - 1..r + 1), 0..2, "across a boundary");
        assert_eq!(records_holding(&l, r..2 * r), 1..2, "exactly one record");
        assert_eq!(records_holding(&l, 10 * r..10 * r + 5), 10..11, "the last");
        assert_eq!(
            records_holding(&l, 10 * r + 2..u64::MAX),
            10..11,
            "clipped to the file"
        );
        assert_eq!(records_holding(&l, 5..5), 0..0);
        assert_eq!(
            records_holding(&l, 10 * r + 5..10 * r + 9),
            0..0,
            "past the end"
        );
    }

    proptest! {
        #[test]
        fn records_holding_cover_exactly_the_bytes(size in 0u64..2_000, a in 0u64..2_100, b in 0u64..2_100) {
            let l = layout(size);
            let (start, end) = (a.min(b), a.max(b));
            let held = records_holding(&l, start..end);
            match plaintext_span(&l, &held) {
                None => prop_assert!(start >= end.min(size)),
                Some(span) => {
                    prop_assert!(span.start <= start && span.end >= end.min(size));
                    // No record more than needed on either side.
                    prop_assert!(start - span.start < u64::from(R));
                    prop_assert!(span.end - end.min(size) < u64::from(R));
                }
            }
        }
    }

    #[test]
    fn records_in_is_at_least_one() {
        assert_eq!(records_in(1 << 20, 1 << 20), 1);
        assert_eq!(records_in(1 << 20, 16 << 20), 1);
        assert_eq!(records_in(4 << 20, 1 << 20), 4);
        assert_eq!(records_in(1 << 20, 16), 65_536);
        assert_eq!(records_in(1 << 20, 3 << 20), 1);
        assert_eq!(records_in(10, 0), 10);
        assert_eq!(records_in(0, 7), 1);
    }

    #[test]
    fn runs_cover_the_range_in_order() {
        let got: Vec<_> = runs(3..10, 3).collect();
        assert_eq!(got, vec![3..6, 6..9, 9..10]);
        assert_eq!(runs(0..1, 5).collect::<Vec<_>>(), vec![0..1]);
        assert_eq!(runs(4..4, 2).count(), 0);
        assert_eq!(runs(0..3, 0).collect::<Vec<_>>(), vec![0..1, 1..2, 2..3]);
        let top = u64::MAX - 3..u64::MAX;
        assert_eq!(
            runs(top.clone(), 2).collect::<Vec<_>>(),
            vec![top.start..top.start + 2, top.start + 2..top.end]
        );
    }

    #[test]
    fn spans_of_runs() {
        // 3 full records and a last one of 5 bytes.
        let l = layout(3 * u64::from(R) + 5);
        assert_eq!(plaintext_span(&l, &(0..4)), Some(0..3 * u64::from(R) + 5));
        assert_eq!(sealed_span(&l, &(0..4)), Some(0..l.section_len()));
        assert_eq!(
            plaintext_span(&l, &(1..3)),
            Some(u64::from(R)..3 * u64::from(R))
        );
        assert_eq!(sealed_span(&l, &(1..3)), Some(SEALED..3 * SEALED));
        assert_eq!(sealed_span(&l, &(3..4)), Some(3 * SEALED..3 * SEALED + 21));
        #[allow(clippy::reversed_empty_ranges)]
        for bad in [2..2, 3..2, 0..5, 4..5] {
            assert_eq!(plaintext_span(&l, &bad), None, "{bad:?}");
            assert_eq!(sealed_span(&l, &bad), None, "{bad:?}");
        }
        let empty = layout(0);
        assert_eq!(plaintext_span(&empty, &(0..1)), Some(0..0));
        assert_eq!(sealed_span(&empty, &(0..1)), Some(0..16));
    }

    #[test]
    fn records_before_a_cut() {
        let l = layout(3 * u64::from(R) + 5);
        let section = l.section_len();
        for (end, want) in [
            (0, 1..1),
            (SEALED - 1, 1..1),
            (SEALED, 1..1),
            (2 * SEALED - 1, 1..1),
            (2 * SEALED, 1..2),
            (3 * SEALED, 1..3),
            (section - 1, 1..3),
            (section, 1..4),
            (u64::MAX, 1..4),
        ] {
            assert_eq!(records_before(&l, 1..4, end), want, "end {end}");
        }
        assert_eq!(records_before(&l, 0..2, section), 0..2);
        assert_eq!(records_before(&l, 2..3, SEALED), 2..2);
    }

    #[test]
    fn numbered_runs() {
        let r = Runs::new(10, 4);
        assert_eq!(r.count(), Some(3));
        assert_eq!(r.records(1), Some(0..4));
        assert_eq!(r.records(3), Some(8..10));
        assert_eq!(r.records(0), None);
        assert_eq!(r.records(4), None);
        assert_eq!(Runs::new(1, 100).count(), Some(1));
        assert_eq!(Runs::new(u64::MAX, 1).count(), None);
        assert_eq!(
            Runs::new(u64::MAX, 1).records(u32::MAX),
            Some(u64::from(u32::MAX) - 1..u64::from(u32::MAX))
        );
    }

    fn record(plaintext_size: u64, ciphertext_size: u64) -> FileRecord {
        FileRecord {
            file_id: FileId::parse(&"A".repeat(32)).unwrap(),
            plaintext_size,
            ciphertext_size,
            record_size: 1 << 20,
            header: String::new(),
            metadata: String::new(),
            part_size: 0,
            part_count: 1,
            created_at: 0,
            expires_at: None,
            download: DownloadUrl {
                url: String::new(),
                expires_at: 0,
            },
        }
    }

    #[test]
    fn a_consistent_file_record_gives_its_layout() {
        let header = Header::new(&FileKey::from_bytes([0; 32]), 1 << 20, [0; 32]).unwrap();
        for (plaintext, records) in [(0, 1), (1, 1), (1 << 20, 1), (3 * (1 << 20) + 5, 4)] {
            let l = file_layout(&header, &record(plaintext, plaintext + 16 * records)).unwrap();
            assert_eq!(l.record_count(), records);
        }
    }

    #[test]
    fn a_file_record_whose_sizes_disagree_is_refused() {
        let header = Header::new(&FileKey::from_bytes([0; 32]), 1 << 20, [0; 32]).unwrap();
        let mut other_record_size = record(10, 26);
        other_record_size.record_size = 1000;
        assert_eq!(
            file_layout(&header, &other_record_size),
            Err(FileRecordError::RecordSizeMismatch)
        );
        for (plaintext, ciphertext) in [(10, 27), (10, 25), (0, 0), (1 << 20, (1 << 20) + 32)] {
            assert_eq!(
                file_layout(&header, &record(plaintext, ciphertext)),
                Err(FileRecordError::SizeMismatch)
            );
        }
        // Huge but self-consistent: refused before any arithmetic on it matters.
        let huge = record(1 << 52, (1 << 52) + 16 * (1 << 32));
        assert!(matches!(
            file_layout(&header, &huge),
            Err(FileRecordError::TooLarge(_))
        ));
        let max = record(u64::MAX, u64::MAX);
        assert!(matches!(
            file_layout(&header, &max),
            Err(FileRecordError::TooLarge(_))
        ));
    }

    #[test]
    fn the_largest_legal_object_cuts_into_a_bounded_number_of_runs() {
        // 16-byte records: the most records (and ranges) a legal object can hold.
        let l = Layout::for_section(16, MAX_OBJECT_SIZE).unwrap();
        let range_bytes = 8 << 20;
        let count = Runs::new(l.record_count(), records_in(range_bytes, 32))
            .count()
            .unwrap();
        assert_eq!(u64::from(count), MAX_OBJECT_SIZE.div_ceil(range_bytes));
        let header = Header::new(&FileKey::from_bytes([0; 32]), 16, [0; 32]).unwrap();
        let mut largest = record(l.plaintext_size(), l.section_len());
        largest.record_size = 16;
        assert_eq!(file_layout(&header, &largest), Ok(l));
    }

    proptest! {
        /// Runs of any size, cut at any offset: the spans tile the section and the
        /// plaintext, and a cut keeps exactly the records that end before it.
        #[test]
        fn runs_tile_the_file(plaintext in 0u64..5_000, per_run in 1u64..10, cut in 0u64..6_000) {
            let l = layout(plaintext);
            let mut sealed_end = 0;
            let mut plain_end = 0;
            for run in runs(0..l.record_count(), per_run) {
                let s = sealed_span(&l, &run).unwrap();
                let p = plaintext_span(&l, &run).unwrap();
                prop_assert_eq!(s.start, sealed_end);
                prop_assert_eq!(p.start, plain_end);
                prop_assert_eq!(s.end - s.start, p.end - p.start + 16 * (run.end - run.start));
                sealed_end = s.end;
                plain_end = p.end;
                let kept = records_before(&l, run.clone(), cut);
                prop_assert_eq!(kept.start, run.start);
                for i in run.clone() {
                    let ends_before = l.sealed_range(i).unwrap().end <= cut;
                    prop_assert_eq!(kept.contains(&i), ends_before && (run.start..=i).all(|j| l.sealed_range(j).unwrap().end <= cut));
                }
            }
            prop_assert_eq!(sealed_end, l.section_len());
            prop_assert_eq!(plain_end, plaintext);
            let numbered = Runs::new(l.record_count(), per_run);
            let all: Vec<_> = (1..=numbered.count().unwrap()).map(|n| numbered.records(n).unwrap()).collect();
            prop_assert_eq!(all, runs(0..l.record_count(), per_run).collect::<Vec<_>>());
        }
    }
}
