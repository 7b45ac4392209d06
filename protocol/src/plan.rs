//! The part plan: how a file's record section is cut into multipart-upload parts.
//!
//! One plan must satisfy every S3-compatible store at once, so it takes the strictest
//! rule of each:
//!
//! - every part except the last has the same size, and the last is never larger
//!   (R2 rejects anything else);
//! - every part except the last is at least 5 MiB, at most 5 GiB, and there are at most
//!   10,000 parts (S3's limits); the whole object is at most 5 TiB;
//! - a part is a whole number of sealed records (docs/FORMAT.md §5), so any part can be
//!   encrypted, retried or verified on its own without touching its neighbours.
//!
//! Parts default to 16 MiB of plaintext (16 records of the default 1 MiB) because that
//! keeps a retry cheap and memory small; the part size grows with the file only as much
//! as the 10,000-part limit demands, so every file up to 5 TiB of ciphertext fits.
//!
//! The plan is pure arithmetic on (plaintext size, record size, preferred part size).
//! Planning again with the plan's own `partSize` as the preference gives the same plan,
//! which is how a stored or received plan is checked when it is deserialized.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ApiErrorCode};

use crate::format::{MAX_RECORD_SIZE, MIN_RECORD_SIZE, TAG_LEN};

/// Bytes each sealed record adds to its plaintext: the AES-GCM tag (FORMAT.md §5).
const TAG_SIZE: u64 = TAG_LEN as u64;
/// S3's smallest part (all but the last): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest part: 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// S3's largest part count.
pub const MAX_PARTS: u64 = 10_000;
/// S3's largest object: 5 TiB. The record section (ciphertext) must fit.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Plaintext per part when the client states no preference: 16 MiB of whole records.
pub const DEFAULT_PART_PLAINTEXT: u64 = 16 * 1024 * 1024;

/// Why no plan exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The record size is outside `16..=16 MiB`.
    #[error("record size {0} is outside 16..=16777216")]
    InvalidRecordSize(u32),
    /// The ciphertext would exceed 5 TiB.
    #[error("the file is too large: its ciphertext would exceed 5 TiB")]
    FileTooLarge,
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        let code = match e {
            PlanError::InvalidRecordSize(_) => ApiErrorCode::InvalidHeader,
            PlanError::FileTooLarge => ApiErrorCode::FileTooLarge,
        };
        ApiError::new(code, e.to_string())
    }
}

/// How a file's record section is split into parts (the `plan` object of docs/API.md).
///
/// Invariants (checked on construction and on deserialization): `partCount` is
/// `1..=10,000`; `partSize == recordsPerPart * (recordSize + 16)` is at most 5 GiB and,
/// when there is more than one part, at least 5 MiB; `0 < lastPartSize <= partSize`;
/// `(partCount - 1) * partSize + lastPartSize == ciphertextSize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "PlanFields", into = "PlanFields")]
pub struct PartPlan {
    plaintext_size: u64,
    record_size: u32,
    record_count: u64,
    records_per_part: u64,
    part_size: u64,
    part_count: u32,
    last_part_size: u64,
    ciphertext_size: u64,
}

impl PartPlan {
    /// Plans the parts of a file of `plaintext_size` bytes sealed in records of
    /// `record_size` bytes. `preferred_part_size` (ciphertext bytes) is rounded down to
    /// whole records (at least one) and then into the storage limits; `None` means
    /// [`DEFAULT_PART_PLAINTEXT`] of plaintext per part.
    pub fn new(
        plaintext_size: u64,
        record_size: u32,
        preferred_part_size: Option<u64>,
    ) -> Result<PartPlan, PlanError> {
        if !(MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&record_size) {
            return Err(PlanError::InvalidRecordSize(record_size));
        }
        // Checked before any arithmetic so nothing below can overflow.
        if plaintext_size > MAX_OBJECT_SIZE {
            return Err(PlanError::FileTooLarge);
        }
        let r = u64::from(record_size);
        let sealed = r + TAG_SIZE;
        let record_count = plaintext_size.div_ceil(r).max(1);
        let ciphertext_size = plaintext_size + TAG_SIZE * record_count;
        if ciphertext_size > MAX_OBJECT_SIZE {
            return Err(PlanError::FileTooLarge);
        }

        let preferred = match preferred_part_size {
            Some(bytes) => bytes / sealed,
            None => DEFAULT_PART_PLAINTEXT / r,
        }
        .max(1);
        let at_least_min_part = MIN_PART_SIZE.div_ceil(sealed);
        let fits_part_count = record_count.div_ceil(MAX_PARTS);
        let at_most_max_part = MAX_PART_SIZE / sealed;
        let per_part = preferred
            .max(at_least_min_part)
            .max(fits_part_count)
            .min(at_most_max_part)
            // A single part holds the whole file: say so rather than plan a part
            // larger than the file.
            .min(record_count);

        let part_count = record_count.div_ceil(per_part);
        if part_count > MAX_PARTS {
            // Unreachable for ciphertext <= 5 TiB (10,000 parts of 5 GiB hold ~48 TiB);
            // kept so the plan can never be wrong if a limit changes.
            return Err(PlanError::FileTooLarge);
        }
        let part_size = per_part * sealed;
        let last_part_size = ciphertext_size - (part_count - 1) * part_size;
        Ok(PartPlan {
            plaintext_size,
            record_size,
            record_count,
            records_per_part: per_part,
            part_size,
            part_count: u32::try_from(part_count).map_err(|_| PlanError::FileTooLarge)?,
            last_part_size,
            ciphertext_size,
        })
    }

    /// The largest plaintext whose ciphertext fits in 5 TiB with this record size, or
    /// `None` for an invalid record size. Lets a client refuse a file before it starts.
    pub fn max_plaintext_size(record_size: u32) -> Option<u64> {
        if !(MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&record_size) {
            return None;
        }
        let r = u64::from(record_size);
        let sealed = r + TAG_SIZE;
        let full = MAX_OBJECT_SIZE / sealed;
        let rest = MAX_OBJECT_SIZE % sealed;
        // A trailing partial record needs at least 1 plaintext byte plus its tag.
        Some(full * r + rest.saturating_sub(TAG_SIZE))
    }

    /// Plaintext bytes of the file.
    pub fn plaintext_size(&self) -> u64 {
        self.plaintext_size
    }
    /// Plaintext bytes per record (`R`, from the header).
    pub fn record_size(&self) -> u32 {
        self.record_size
    }
    /// Number of sealed records, `max(1, ceil(L / R))`.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }
    /// Records in every part but the last.
    pub fn records_per_part(&self) -> u64 {
        self.records_per_part
    }
    /// Bytes of every part but the last.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }
    /// Number of parts, `1..=10,000`.
    pub fn part_count(&self) -> u32 {
        self.part_count
    }
    /// Bytes of the last part (never more than [`PartPlan::part_size`]).
    pub fn last_part_size(&self) -> u64 {
        self.last_part_size
    }
    /// Bytes of the record section: `L + 16 * recordCount`.
    pub fn ciphertext_size(&self) -> u64 {
        self.ciphertext_size
    }

    /// Whether `part` (1-based) is a part of this plan.
    pub fn contains_part(&self, part: u32) -> bool {
        (1..=self.part_count).contains(&part)
    }

    /// The exact size of part `part` (1-based), or `None` if there is no such part.
    pub fn size_of_part(&self, part: u32) -> Option<u64> {
        if !self.contains_part(part) {
            None
        } else if part == self.part_count {
            Some(self.last_part_size)
        } else {
            Some(self.part_size)
        }
    }

    /// Byte range of part `part` (1-based) within the record section.
    pub fn part_range(&self, part: u32) -> Option<Range<u64>> {
        let size = self.size_of_part(part)?;
        let start = u64::from(part - 1) * self.part_size;
        Some(start..start + size)
    }

    /// Indices (0-based) of the sealed records that make up part `part` (1-based).
    pub fn records_of_part(&self, part: u32) -> Option<Range<u64>> {
        if !self.contains_part(part) {
            return None;
        }
        let start = u64::from(part - 1) * self.records_per_part;
        let end = (start + self.records_per_part).min(self.record_count);
        Some(start..end)
    }

    /// Plaintext byte range that part `part` (1-based) encrypts. Empty only for the
    /// empty file's single part.
    pub fn plaintext_range_of_part(&self, part: u32) -> Option<Range<u64>> {
        let records = self.records_of_part(part)?;
        let r = u64::from(self.record_size);
        let start = records.start * r;
        let end = (records.end * r).min(self.plaintext_size);
        Some(start..end)
    }
}

/// The serialized form of [`PartPlan`]: all fields, re-derived and compared on the way
/// in so no inconsistent plan can be deserialized.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlanFields {
    plaintext_size: u64,
    record_size: u32,
    record_count: u64,
    records_per_part: u64,
    part_size: u64,
    part_count: u32,
    last_part_size: u64,
    ciphertext_size: u64,
}

impl From<PartPlan> for PlanFields {
    fn from(p: PartPlan) -> Self {
        PlanFields {
            plaintext_size: p.plaintext_size,
            record_size: p.record_size,
            record_count: p.record_count,
            records_per_part: p.records_per_part,
            part_size: p.part_size,
            part_count: p.part_count,
            last_part_size: p.last_part_size,
            ciphertext_size: p.ciphertext_size,
        }
    }
}

impl TryFrom<PlanFields> for PartPlan {
    type Error = String;
    fn try_from(f: PlanFields) -> Result<Self, String> {
        let plan = PartPlan::new(f.plaintext_size, f.record_size, Some(f.part_size))
            .map_err(|e| e.to_string())?;
        if PlanFields::from(plan.clone()) == f {
            Ok(plan)
        } else {
            Err("the plan is inconsistent with its plaintextSize, recordSize and partSize".into())
        }
    }
}

impl PartialEq for PlanFields {
    fn eq(&self, o: &Self) -> bool {
        (
            self.plaintext_size,
            self.record_size,
            self.record_count,
            self.records_per_part,
            self.part_size,
            self.part_count,
            self.last_part_size,
            self.ciphertext_size,
        ) == (
            o.plaintext_size,
            o.record_size,
            o.record_count,
            o.records_per_part,
            o.part_size,
            o.part_count,
            o.last_part_size,
            o.ciphertext_size,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    const TIB: u64 = 1024 * GIB;

    /// Checks every invariant of a plan against the record layout of FORMAT.md §5,
    /// walking all parts.
    fn check(plan: &PartPlan, l: u64, r: u32) {
        let r64 = u64::from(r);
        let sealed = r64 + TAG_SIZE;
        let n = l.div_ceil(r64).max(1);
        let c = l + 16 * n;
        assert_eq!(plan.plaintext_size(), l);
        assert_eq!(plan.record_size(), r);
        assert_eq!(plan.record_count(), n);
        assert_eq!(plan.ciphertext_size(), c);
        let parts = plan.part_count();
        assert!((1..=10_000).contains(&parts), "{parts} parts");
        assert_eq!(plan.part_size(), plan.records_per_part() * sealed);
        assert!(plan.part_size() <= MAX_PART_SIZE);
        if parts > 1 {
            assert!(plan.part_size() >= MIN_PART_SIZE, "{plan:?}");
        }
        assert!(plan.last_part_size() > 0 && plan.last_part_size() <= plan.part_size());
        assert_eq!(
            u64::from(parts - 1) * plan.part_size() + plan.last_part_size(),
            c
        );

        // Walk every part: contiguous, whole records, consistent with records_of_part
        // and plaintext_range_of_part.
        let (mut offset, mut record, mut plain, mut sum) = (0u64, 0u64, 0u64, 0u64);
        for part in 1..=parts {
            let range = plan.part_range(part).unwrap();
            let records = plan.records_of_part(part).unwrap();
            let plaintext = plan.plaintext_range_of_part(part).unwrap();
            assert_eq!(range.start, offset);
            assert_eq!(records.start, record);
            assert_eq!(plaintext.start, plain);
            assert_eq!(range.start, records.start * sealed);
            assert!(!records.is_empty());
            // Whole records: the part ends where its last record ends.
            let last_record_end = if records.end == n {
                c
            } else {
                records.end * sealed
            };
            assert_eq!(range.end, last_record_end);
            assert_eq!(
                range.end - range.start,
                (plaintext.end - plaintext.start) + 16 * (records.end - records.start)
            );
            let size = plan.size_of_part(part).unwrap();
            assert_eq!(size, range.end - range.start);
            if part < parts {
                assert_eq!(size, plan.part_size());
            }
            sum += size;
            offset = range.end;
            record = records.end;
            plain = plaintext.end;
        }
        assert_eq!(sum, c);
        assert_eq!(record, n);
        assert_eq!(plain, l);
        assert_eq!(plan.part_range(0), None);
        assert_eq!(plan.part_range(parts + 1), None);
        assert_eq!(plan.records_of_part(parts + 1), None);
    }

    fn plan_ok(l: u64, r: u32, pref: Option<u64>) -> PartPlan {
        let plan = PartPlan::new(l, r, pref).unwrap_or_else(|e| panic!("{l} {r} {pref:?}: {e}"));
        check(&plan, l, r);
        // Re-planning with the plan's own part size gives the same plan.
        assert_eq!(PartPlan::new(l, r, Some(plan.part_size())).unwrap(), plan);
        // And it survives JSON.
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<PartPlan>(&json).unwrap(), plan);
        plan
    }

    #[test]
    fn the_api_md_example() {
        let plan = plan_ok(64 * MIB, 1 << 20, Some(16_778_240));
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "plaintextSize": 67108864, "recordSize": 1048576,
                "recordCount": 64, "recordsPerPart": 16, "partSize": 16777472,
                "partCount": 4, "lastPartSize": 16777472, "ciphertextSize": 67109888 })
        );
        assert_eq!(PartPlan::new(64 * MIB, 1 << 20, None).unwrap(), plan);
    }

    #[test]
    fn empty_file_is_one_part_of_one_empty_record() {
        for r in [16, 1000, 1 << 20, MAX_RECORD_SIZE] {
            let plan = plan_ok(0, r, None);
            assert_eq!(plan.part_count(), 1);
            assert_eq!(plan.record_count(), 1);
            assert_eq!(plan.last_part_size(), 16);
            assert_eq!(plan.ciphertext_size(), 16);
            assert_eq!(plan.part_range(1), Some(0..16));
            assert_eq!(plan.records_of_part(1), Some(0..1));
            assert_eq!(plan.plaintext_range_of_part(1), Some(0..0));
        }
    }

    #[test]
    fn small_files_are_a_single_part() {
        let r = 1u32 << 20;
        for l in [
            1,
            1000,
            MIB - 1,
            MIB,
            MIB + 1,
            5 * MIB,
            16 * MIB - 1,
            16 * MIB,
        ] {
            let plan = plan_ok(l, r, None);
            assert_eq!(plan.part_count(), 1, "{l}");
            assert_eq!(plan.last_part_size(), plan.ciphertext_size());
        }
        let plan = plan_ok(16 * MIB + 1, r, None);
        assert_eq!(plan.part_count(), 2);
        assert_eq!(plan.last_part_size(), 1 + 16);
    }

    #[test]
    fn parts_never_go_below_5_mib() {
        let r = 1u32 << 20;
        // A 1-record preference is raised to 5 records (5 MiB + 80 bytes).
        for l in [
            5 * MIB - 1,
            5 * MIB,
            5 * MIB + 1,
            6 * MIB,
            11 * MIB,
            100 * MIB,
        ] {
            let plan = plan_ok(l, r, Some(1));
            if plan.part_count() > 1 {
                assert_eq!(plan.records_per_part(), 5);
                assert_eq!(plan.part_size(), 5 * (MIB + 16));
            }
        }
        // Sealed records that divide 5 MiB exactly vs. not at all.
        for r in [5 * 1024 * 1024 / 4 - 16, 1000, 16, 4096 - 16u32] {
            for l in [
                0,
                1,
                5 * MIB - 1,
                5 * MIB,
                5 * MIB + 1,
                10 * MIB,
                10 * MIB + 7,
                64 * MIB,
            ] {
                let plan = plan_ok(l, r, Some(0));
                if plan.part_count() > 1 {
                    let sealed = u64::from(r) + 16;
                    assert_eq!(plan.part_size(), MIN_PART_SIZE.next_multiple_of(sealed));
                }
            }
        }
    }

    #[test]
    fn record_boundaries() {
        for r in [
            16u32,
            17,
            1000,
            65_536,
            1 << 20,
            MAX_RECORD_SIZE - 1,
            MAX_RECORD_SIZE,
        ] {
            let r64 = u64::from(r);
            for k in [1u64, 2, 3, 15, 16, 17, 80, 81, 1000] {
                for l in [k * r64 - 1, k * r64, k * r64 + 1] {
                    plan_ok(l, r, None);
                    plan_ok(l, r, Some(0));
                    plan_ok(l, r, Some(7 * MIB + 3));
                }
            }
        }
    }

    #[test]
    fn ten_thousand_parts_boundary() {
        let r = 1u32 << 20;
        let part = 16 * MIB; // plaintext per default part
        let plan = plan_ok(10_000 * part, r, None);
        assert_eq!(plan.part_count(), 10_000);
        assert_eq!(plan.records_per_part(), 16);
        // One byte more: the part grows by a record instead of an 10,001st part.
        let plan = plan_ok(10_000 * part + 1, r, None);
        assert_eq!(plan.records_per_part(), 17);
        assert!(plan.part_count() < 10_000);
        for l in [
            10_000 * part - 1,
            9_999 * part,
            9_999 * part + 1,
            10_001 * part,
        ] {
            plan_ok(l, r, None);
        }
    }

    #[test]
    fn the_largest_file_fits_and_one_byte_more_does_not() {
        for r in [
            16u32,
            17,
            1000,
            4096,
            65_536,
            1 << 20,
            3_000_000,
            MAX_RECORD_SIZE,
        ] {
            let max = PartPlan::max_plaintext_size(r).unwrap();
            for pref in [None, Some(0), Some(MAX_PART_SIZE), Some(u64::MAX)] {
                let plan = plan_ok(max, r, pref);
                assert!(plan.ciphertext_size() <= MAX_OBJECT_SIZE);
                assert!(plan.ciphertext_size() > MAX_OBJECT_SIZE - u64::from(r) - 32);
                plan_ok(max - 1, r, pref);
                assert_eq!(
                    PartPlan::new(max + 1, r, pref),
                    Err(PlanError::FileTooLarge)
                );
            }
        }
        for l in [5 * TIB, 5 * TIB + 1, 6 * TIB, u64::MAX] {
            assert_eq!(
                PartPlan::new(l, 1 << 20, None),
                Err(PlanError::FileTooLarge)
            );
        }
    }

    #[test]
    fn invalid_record_sizes() {
        for r in [0, 1, 15, MAX_RECORD_SIZE + 1, u32::MAX] {
            assert_eq!(
                PartPlan::new(1, r, None),
                Err(PlanError::InvalidRecordSize(r))
            );
            assert_eq!(PartPlan::max_plaintext_size(r), None);
        }
        let api: ApiError = PlanError::InvalidRecordSize(0).into();
        assert_eq!(api.code, ApiErrorCode::InvalidHeader);
        let api: ApiError = PlanError::FileTooLarge.into();
        assert_eq!(api.code, ApiErrorCode::FileTooLarge);
    }

    #[test]
    fn preferences_are_clamped_into_limits() {
        let r = 1u32 << 20;
        let plan = plan_ok(100 * GIB, r, Some(u64::MAX));
        assert!(plan.part_size() <= MAX_PART_SIZE);
        assert_eq!(plan.records_per_part(), MAX_PART_SIZE / (MIB + 16));
        // A preference that is not a record multiple is rounded down.
        let plan = plan_ok(100 * MIB, r, Some(8 * (MIB + 16) + MIB));
        assert_eq!(plan.records_per_part(), 8);
    }

    #[test]
    fn sweep_sizes_zero_to_five_tib() {
        // Geometric sweep plus neighbours, across record sizes and preferences.
        for r in [16u32, 4096, 1 << 20, MAX_RECORD_SIZE] {
            let max = PartPlan::max_plaintext_size(r).unwrap();
            let mut l = 0u64;
            while l <= max {
                for d in [0, 1, 2] {
                    let x = (l + d).min(max);
                    plan_ok(x, r, None);
                    plan_ok(x, r, Some(64 * MIB));
                }
                l = l * 3 / 2 + 1;
            }
        }
    }

    #[test]
    fn deserializing_an_inconsistent_plan_fails() {
        let plan = plan_ok(64 * MIB, 1 << 20, None);
        let mut json = serde_json::to_value(&plan).unwrap();
        json["partCount"] = 5.into();
        assert!(serde_json::from_value::<PartPlan>(json.clone()).is_err());
        json["partCount"] = 4.into();
        json["extra"] = 1.into();
        assert!(serde_json::from_value::<PartPlan>(json).is_err());
    }

    fn any_size() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..=64 * MIB,
            0u64..=200 * GIB,
            0u64..=5 * TIB,
            (1u64..=1_000_000).prop_map(|k| k * 5 * MIB),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn invariants_hold(
            l in any_size(),
            r in prop_oneof![16u32..=4096, 16u32..=MAX_RECORD_SIZE, Just(1u32 << 20)],
            pref in proptest::option::of(prop_oneof![0u64..=64 * MIB, 0u64..=6 * GIB, any::<u64>()]),
        ) {
            match PartPlan::new(l, r, pref) {
                Ok(plan) => { check(&plan, l, r); }
                Err(e) => {
                    prop_assert_eq!(e, PlanError::FileTooLarge);
                    prop_assert!(l > PartPlan::max_plaintext_size(r).unwrap());
                }
            }
        }
    }
}
