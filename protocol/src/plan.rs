//! The part plan: how a file's record section is cut into multipart-upload parts, within
//! the limits of the storage provider that will hold it.
//!
//! Every plan follows the strictest rules any supported store has:
//!
//! - every part except the last has the same size, and the last is never larger
//!   (R2 rejects anything else);
//! - a part is a whole number of sealed records (docs/FORMAT.md §5), so any part can be
//!   encrypted, retried or verified on its own without touching its neighbours.
//!
//! Then each provider states its own [`ProviderLimits`]: the smallest and largest part
//! (all but the last), the most parts, the largest object. S3 allows 5 MiB..5 GiB parts,
//! 10,000 of them, so objects up to 10,000 × 5 GiB (48.8 TiB). The R2 binding carries
//! every part through a Worker request, so its parts stay under the Workers request-body
//! limit (95 MiB by default, `R2_MAX_PART_BYTES`), which caps a file at about 0.9 TiB.
//!
//! Parts default to 16 MiB of plaintext (16 records of the default 1 MiB) because that
//! keeps a retry cheap and memory small; the part size grows with the file only as much
//! as the part-count limit demands, up to the provider's largest part.
//!
//! The plan is pure arithmetic on (plaintext size, record size, preferred part size,
//! limits). Every provider's limits lie inside S3's, and planning again under S3's limits
//! with the plan's own `partSize` as the preference gives the same plan: that is how a
//! stored or received plan is checked when it is deserialized, without knowing which
//! provider made it.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ApiErrorCode};

use crate::format::{MAX_RECORD_SIZE, MIN_RECORD_SIZE, TAG_LEN};

/// Bytes each sealed record adds to its plaintext: the AES-GCM tag (FORMAT.md §5).
const TAG_SIZE: u64 = TAG_LEN as u64;
/// The largest sealed record (16 MiB of plaintext and its tag).
const MAX_SEALED_RECORD: u64 = MAX_RECORD_SIZE as u64 + TAG_SIZE;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// S3's smallest part (all but the last): 5 MiB. No provider allows smaller.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part: 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// S3's largest part count (part numbers 1..=10,000).
pub const MAX_PARTS: u32 = 10_000;
/// S3's largest object: 10,000 parts of 5 GiB, 48.8 TiB. No provider stores more, so no
/// record section (ciphertext) is ever larger.
pub const MAX_OBJECT_SIZE: u64 = MAX_PARTS as u64 * MAX_PART_SIZE;
/// R2's largest part: 5 GiB less 5 MiB.
pub const R2_MAX_PART_SIZE: u64 = 5 * GIB - 5 * MIB;
/// R2's largest object: 5 TiB less 5 GiB (4.995 TiB).
pub const R2_MAX_OBJECT_SIZE: u64 = 5 * TIB - 5 * GIB;
/// The default largest part through the R2 binding: 95 MiB, under the 100 MB request
/// body a Worker accepts on the Free and Pro plans (a part travels in one request).
pub const DEFAULT_R2_BINDING_MAX_PART_SIZE: u64 = 95 * MIB;
/// The largest part through the R2 binding on any plan: 500 MB, the largest request
/// body Cloudflare passes to a Worker (Enterprise; 200 MB on Business). A larger body is
/// refused before the worker runs, with a `413` that is not the API's JSON.
pub const R2_BINDING_MAX_PART_SIZE: u64 = 500_000_000;
/// The smallest "largest part" a provider may declare: 5 MiB plus one largest sealed
/// record less a byte. Below it, some record size would have no whole-record part size
/// between the smallest and the largest part.
pub const MIN_MAX_PART_SIZE: u64 = MIN_PART_SIZE + MAX_SEALED_RECORD - 1;
/// Plaintext per part when the client states no preference: 16 MiB of whole records.
pub const DEFAULT_PART_PLAINTEXT: u64 = 16 * MIB;

// ---------------------------------------------------------------------------------
// Provider limits
// ---------------------------------------------------------------------------------

/// What one storage provider accepts: the bounds every plan for it satisfies.
///
/// Invariants (checked by every constructor): the limits lie inside S3's (parts of at
/// least 5 MiB and at most 5 GiB, at most 10,000 of them, objects of at most 48.8 TiB),
/// and the largest part is at least [`MIN_MAX_PART_SIZE`], so a whole number of records
/// of any size fits between the smallest and the largest part. The planner relies on
/// both; the first is also what lets a plan be checked without knowing its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderLimits {
    min_part_size: u64,
    max_part_size: u64,
    max_parts: u32,
    max_object_size: u64,
}

/// Why a provider's limits are unusable (a configuration error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// The largest part is outside [`MIN_MAX_PART_SIZE`]..=the provider's own maximum.
    #[error("the largest part must be {min} to {max} bytes, not {value}")]
    MaxPartSize {
        /// The value given.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The largest object is outside (largest part)..=the provider's own maximum.
    #[error("the largest object must be {min} to {max} bytes, not {value}")]
    MaxObjectSize {
        /// The value given.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
}

impl ProviderLimits {
    /// S3 (and what S3-compatible stores promise): 5 MiB..5 GiB parts, 10,000 parts,
    /// objects up to 48.8 TiB.
    pub const S3: ProviderLimits = ProviderLimits {
        min_part_size: MIN_PART_SIZE,
        max_part_size: MAX_PART_SIZE,
        max_parts: MAX_PARTS,
        max_object_size: MAX_OBJECT_SIZE,
    };

    /// The R2 binding with parts of at most `max_part_size` bytes (`R2_MAX_PART_BYTES`:
    /// the Workers request-body limit of the account's plan, less room for nothing else,
    /// since a part is the whole body; at most [`R2_BINDING_MAX_PART_SIZE`]). Objects
    /// stop at 10,000 such parts or R2's 4.995 TiB, whichever is smaller.
    pub fn r2_binding(max_part_size: u64) -> Result<ProviderLimits, LimitsError> {
        if !(MIN_MAX_PART_SIZE..=R2_BINDING_MAX_PART_SIZE).contains(&max_part_size) {
            return Err(LimitsError::MaxPartSize {
                value: max_part_size,
                min: MIN_MAX_PART_SIZE,
                max: R2_BINDING_MAX_PART_SIZE,
            });
        }
        Ok(ProviderLimits {
            min_part_size: MIN_PART_SIZE,
            max_part_size,
            max_parts: MAX_PARTS,
            max_object_size: (u64::from(MAX_PARTS) * max_part_size).min(R2_MAX_OBJECT_SIZE),
        })
    }

    /// These limits with objects of at most `max_object_size` bytes, for a store that
    /// holds less than S3 (R2's S3 API: [`R2_MAX_OBJECT_SIZE`]). It may only shrink.
    pub fn with_max_object_size(self, max_object_size: u64) -> Result<ProviderLimits, LimitsError> {
        if !(self.max_part_size..=self.max_object_size).contains(&max_object_size) {
            return Err(LimitsError::MaxObjectSize {
                value: max_object_size,
                min: self.max_part_size,
                max: self.max_object_size,
            });
        }
        Ok(ProviderLimits {
            max_object_size,
            ..self
        })
    }

    /// The smallest part (all but the last one).
    pub fn min_part_size(&self) -> u64 {
        self.min_part_size
    }
    /// The largest part.
    pub fn max_part_size(&self) -> u64 {
        self.max_part_size
    }
    /// The most parts in one upload.
    pub fn max_parts(&self) -> u32 {
        self.max_parts
    }
    /// The largest object (record section), in bytes.
    pub fn max_object_size(&self) -> u64 {
        self.max_object_size
    }

    /// The largest plaintext that plans under these limits in records of `record_size`
    /// bytes, or `None` for an invalid record size. Every smaller size plans too. Lets a
    /// client refuse a file before it starts.
    pub fn max_plaintext_size(&self, record_size: u32) -> Option<u64> {
        if !(MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&record_size) {
            return None;
        }
        let r = u64::from(record_size);
        let sealed = r + TAG_SIZE;
        // The object limit: whole sealed records, then a trailing partial record that
        // needs at least 1 plaintext byte besides its tag.
        let full = self.max_object_size / sealed;
        let rest = self.max_object_size % sealed;
        let by_object = full * r + rest.saturating_sub(TAG_SIZE);
        // The part limits: at most `max_parts` parts of the most records a part holds.
        let by_parts = u64::from(self.max_parts) * (self.max_part_size / sealed) * r;
        Some(by_object.min(by_parts))
    }
}

// ---------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------

/// Why no plan exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The record size is outside `16..=16 MiB`.
    #[error("record size {0} is outside 16..=16777216")]
    InvalidRecordSize(u32),
    /// No plan within the provider's limits holds the file.
    #[error(
        "the file is too large for this storage: it takes at most {max_plaintext_size} bytes \
         in records of this size ({} parts of at most {} bytes, objects of at most {} bytes)",
        limits.max_parts, limits.max_part_size, limits.max_object_size
    )]
    FileTooLarge {
        /// The largest plaintext that plans with this record size.
        max_plaintext_size: u64,
        /// The provider's limits.
        limits: ProviderLimits,
    },
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        let code = match e {
            PlanError::InvalidRecordSize(_) => ApiErrorCode::InvalidHeader,
            PlanError::FileTooLarge { .. } => ApiErrorCode::FileTooLarge,
        };
        ApiError::new(code, e.to_string())
    }
}

/// How a file's record section is split into parts (the `plan` object of docs/API.md).
///
/// Invariants (checked on construction and on deserialization): `partCount` is
/// `1..=10,000`; `partSize == recordsPerPart * (recordSize + 16)` is at most 5 GiB and,
/// when there is more than one part, at least 5 MiB; `0 < lastPartSize <= partSize`;
/// `(partCount - 1) * partSize + lastPartSize == ciphertextSize`. Planned for a provider,
/// it also keeps that provider's (tighter) limits.
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
    /// `record_size` bytes, for a provider with `limits`. `preferred_part_size`
    /// (ciphertext bytes) is rounded down to whole records (at least one) and then into
    /// the limits; `None` means [`DEFAULT_PART_PLAINTEXT`] of plaintext per part.
    pub fn new(
        plaintext_size: u64,
        record_size: u32,
        preferred_part_size: Option<u64>,
        limits: &ProviderLimits,
    ) -> Result<PartPlan, PlanError> {
        let Some(max_plaintext_size) = limits.max_plaintext_size(record_size) else {
            return Err(PlanError::InvalidRecordSize(record_size));
        };
        // Checked before any arithmetic, so nothing below can overflow and every bound
        // below is met (see `max_plaintext_size`).
        if plaintext_size > max_plaintext_size {
            return Err(PlanError::FileTooLarge {
                max_plaintext_size,
                limits: *limits,
            });
        }
        let r = u64::from(record_size);
        let sealed = r + TAG_SIZE;
        let record_count = plaintext_size.div_ceil(r).max(1);
        let ciphertext_size = plaintext_size + TAG_SIZE * record_count;

        let preferred = match preferred_part_size {
            Some(bytes) => bytes / sealed,
            None => DEFAULT_PART_PLAINTEXT / r,
        }
        .max(1);
        let at_least_min_part = limits.min_part_size.div_ceil(sealed);
        let fits_part_count = record_count.div_ceil(u64::from(limits.max_parts));
        // At least 1 and at least `at_least_min_part` (the limits' invariant), and at
        // least `fits_part_count` (the file is at most `max_plaintext_size`).
        let at_most_max_part = limits.max_part_size / sealed;
        let per_part = preferred
            .max(at_least_min_part)
            .max(fits_part_count)
            .min(at_most_max_part)
            // A single part holds the whole file: say so rather than plan a part
            // larger than the file.
            .min(record_count);

        let part_count = record_count.div_ceil(per_part);
        let part_size = per_part * sealed;
        let last_part_size = ciphertext_size - (part_count - 1) * part_size;
        Ok(PartPlan {
            plaintext_size,
            record_size,
            record_count,
            records_per_part: per_part,
            part_size,
            // At most `max_parts` (a u32), by `fits_part_count`.
            part_count: u32::try_from(part_count).map_err(|_| PlanError::FileTooLarge {
                max_plaintext_size,
                limits: *limits,
            })?,
            last_part_size,
            ciphertext_size,
        })
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
        // Every provider's limits lie inside S3's, so any provider's plan re-plans to
        // itself under S3's limits.
        let plan = PartPlan::new(
            f.plaintext_size,
            f.record_size,
            Some(f.part_size),
            &ProviderLimits::S3,
        )
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

    const S3: ProviderLimits = ProviderLimits::S3;

    fn r2() -> ProviderLimits {
        ProviderLimits::r2_binding(DEFAULT_R2_BINDING_MAX_PART_SIZE).unwrap()
    }

    /// Both providers as configured by default, plus the tightest and widest R2 binding
    /// and R2's S3 API (S3 limits with R2's object cap).
    fn providers() -> Vec<ProviderLimits> {
        vec![
            S3,
            r2(),
            ProviderLimits::r2_binding(MIN_MAX_PART_SIZE).unwrap(),
            ProviderLimits::r2_binding(R2_BINDING_MAX_PART_SIZE).unwrap(),
            S3.with_max_object_size(R2_MAX_OBJECT_SIZE).unwrap(),
        ]
    }

    /// Record sizes at and around every boundary, 16 B to 16 MiB.
    const RECORD_SIZES: [u32; 10] = [
        16,
        17,
        1000,
        4096 - 16,
        65_536,
        5 * 1024 * 1024 / 4 - 16,
        1 << 20,
        3_000_000,
        MAX_RECORD_SIZE - 1,
        MAX_RECORD_SIZE,
    ];

    /// Checks every invariant of a plan against the record layout of FORMAT.md §5 and
    /// the provider's limits, walking all parts.
    fn check(plan: &PartPlan, l: u64, r: u32, limits: &ProviderLimits) {
        let r64 = u64::from(r);
        let sealed = r64 + TAG_SIZE;
        let n = l.div_ceil(r64).max(1);
        let c = l + 16 * n;
        assert_eq!(plan.plaintext_size(), l);
        assert_eq!(plan.record_size(), r);
        assert_eq!(plan.record_count(), n);
        assert_eq!(plan.ciphertext_size(), c);
        assert!(c <= limits.max_object_size(), "{plan:?}");
        let parts = plan.part_count();
        assert!((1..=limits.max_parts()).contains(&parts), "{parts} parts");
        assert_eq!(plan.part_size(), plan.records_per_part() * sealed);
        assert!(plan.part_size() <= limits.max_part_size(), "{plan:?}");
        if parts > 1 {
            assert!(plan.part_size() >= limits.min_part_size(), "{plan:?}");
        }
        assert!(plan.last_part_size() > 0 && plan.last_part_size() <= plan.part_size());
        assert_eq!(
            u64::from(parts - 1) * plan.part_size() + plan.last_part_size(),
            c
        );
        // The size of each of the (up to 10,000) parts, from its records.
        let (mut offset, mut record, mut plain) = (0u64, 0u64, 0u64);
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
            offset = range.end;
            record = records.end;
            plain = plaintext.end;
        }
        assert_eq!(offset, c);
        assert_eq!(record, n);
        assert_eq!(plain, l);
        assert_eq!(plan.part_range(0), None);
        assert_eq!(plan.part_range(parts + 1), None);
        assert_eq!(plan.records_of_part(parts + 1), None);
    }

    fn plan_ok(l: u64, r: u32, pref: Option<u64>, limits: &ProviderLimits) -> PartPlan {
        let plan = PartPlan::new(l, r, pref, limits)
            .unwrap_or_else(|e| panic!("{l} {r} {pref:?} {limits:?}: {e}"));
        check(&plan, l, r, limits);
        // Re-planning with the plan's own part size gives the same plan, under its own
        // limits and under S3's (which is how deserialization checks it).
        assert_eq!(
            PartPlan::new(l, r, Some(plan.part_size()), limits).unwrap(),
            plan
        );
        assert_eq!(
            PartPlan::new(l, r, Some(plan.part_size()), &S3).unwrap(),
            plan
        );
        // And it survives JSON.
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<PartPlan>(&json).unwrap(), plan);
        plan
    }

    fn too_large(l: u64, r: u32, pref: Option<u64>, limits: &ProviderLimits) {
        let max = limits.max_plaintext_size(r).unwrap();
        assert_eq!(
            PartPlan::new(l, r, pref, limits),
            Err(PlanError::FileTooLarge {
                max_plaintext_size: max,
                limits: *limits
            }),
            "{l} {r} {limits:?}"
        );
    }

    #[test]
    fn the_limits_of_each_provider() {
        assert_eq!(S3.min_part_size(), 5 * MIB);
        assert_eq!(S3.max_part_size(), 5 * GIB);
        assert_eq!(S3.max_parts(), 10_000);
        assert_eq!(S3.max_object_size(), 53_687_091_200_000); // 48.8 TiB
        let r2 = r2();
        assert_eq!(r2.min_part_size(), 5 * MIB);
        assert_eq!(r2.max_part_size(), 99_614_720);
        assert_eq!(r2.max_parts(), 10_000);
        assert_eq!(r2.max_object_size(), 996_147_200_000); // 0.906 TiB
        // The largest R2_MAX_PART_BYTES a Worker can receive: 10,000 such parts.
        assert_eq!(
            ProviderLimits::r2_binding(R2_BINDING_MAX_PART_SIZE)
                .unwrap()
                .max_object_size(),
            5_000_000_000_000
        );
        // The largest files with the default 1 MiB records, as the README states them.
        let mib_records = 1 << 20;
        assert_eq!(
            S3.max_plaintext_size(mib_records),
            Some(10_000 * 5119 * MIB) // 48.82 TiB: 5,119 records per 5 GiB part
        );
        assert_eq!(
            r2.max_plaintext_size(mib_records),
            Some(10_000 * 94 * MIB) // 0.896 TiB: 94 records per 95 MiB part
        );
    }

    #[test]
    fn limits_outside_the_allowed_ranges_are_refused() {
        for bad in [
            0,
            MIN_PART_SIZE,
            MIN_MAX_PART_SIZE - 1,
            R2_BINDING_MAX_PART_SIZE + 1,
            R2_MAX_PART_SIZE,
            u64::MAX,
        ] {
            assert_eq!(
                ProviderLimits::r2_binding(bad),
                Err(LimitsError::MaxPartSize {
                    value: bad,
                    min: MIN_MAX_PART_SIZE,
                    max: R2_BINDING_MAX_PART_SIZE
                })
            );
        }
        for good in [MIN_MAX_PART_SIZE, 100_000_000, R2_BINDING_MAX_PART_SIZE] {
            assert_eq!(
                ProviderLimits::r2_binding(good).unwrap().max_part_size(),
                good
            );
        }
        for bad in [0, MAX_PART_SIZE - 1, MAX_OBJECT_SIZE + 1] {
            assert!(matches!(
                S3.with_max_object_size(bad),
                Err(LimitsError::MaxObjectSize { value, .. }) if value == bad
            ));
        }
        // Only ever shrinks.
        let r2 = r2();
        assert!(r2.with_max_object_size(r2.max_object_size() + 1).is_err());
        assert_eq!(
            r2.with_max_object_size(r2.max_part_size())
                .unwrap()
                .max_object_size(),
            r2.max_part_size()
        );
    }

    #[test]
    fn the_api_md_example() {
        for limits in providers() {
            let plan = plan_ok(64 * MIB, 1 << 20, Some(16_778_240), &limits);
            let json = serde_json::to_value(&plan).unwrap();
            assert_eq!(
                json,
                serde_json::json!({ "plaintextSize": 67108864, "recordSize": 1048576,
                    "recordCount": 64, "recordsPerPart": 16, "partSize": 16777472,
                    "partCount": 4, "lastPartSize": 16777472, "ciphertextSize": 67109888 })
            );
            assert_eq!(
                PartPlan::new(64 * MIB, 1 << 20, None, &limits).unwrap(),
                plan
            );
        }
    }

    #[test]
    fn empty_file_is_one_part_of_one_empty_record() {
        for limits in providers() {
            for r in RECORD_SIZES {
                let plan = plan_ok(0, r, None, &limits);
                assert_eq!(plan.part_count(), 1);
                assert_eq!(plan.record_count(), 1);
                assert_eq!(plan.last_part_size(), 16);
                assert_eq!(plan.ciphertext_size(), 16);
                assert_eq!(plan.part_range(1), Some(0..16));
                assert_eq!(plan.records_of_part(1), Some(0..1));
                assert_eq!(plan.plaintext_range_of_part(1), Some(0..0));
            }
        }
    }

    #[test]
    fn small_files_are_a_single_part() {
        let r = 1u32 << 20;
        for limits in providers() {
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
                let plan = plan_ok(l, r, None, &limits);
                assert_eq!(plan.part_count(), 1, "{l}");
                assert_eq!(plan.last_part_size(), plan.ciphertext_size());
            }
            let plan = plan_ok(16 * MIB + 1, r, None, &limits);
            assert_eq!(plan.part_count(), 2);
            assert_eq!(plan.last_part_size(), 1 + 16);
        }
    }

    #[test]
    fn parts_never_go_below_the_smallest_part() {
        let r = 1u32 << 20;
        for limits in providers() {
            // A 1-record preference is raised to 5 records (5 MiB + 80 bytes).
            for l in [
                5 * MIB - 1,
                5 * MIB,
                5 * MIB + 1,
                6 * MIB,
                11 * MIB,
                100 * MIB,
            ] {
                let plan = plan_ok(l, r, Some(1), &limits);
                if plan.part_count() > 1 {
                    assert_eq!(plan.records_per_part(), 5);
                    assert_eq!(plan.part_size(), 5 * (MIB + 16));
                }
            }
            // Sealed records that divide 5 MiB exactly vs. not at all.
            for r in RECORD_SIZES {
                let r64 = u64::from(r);
                for l in [
                    0,
                    1,
                    5 * MIB - 1,
                    5 * MIB,
                    5 * MIB + 1,
                    10 * MIB + 7,
                    64 * MIB,
                    40 * r64 + 1,
                ] {
                    let plan = plan_ok(l, r, Some(0), &limits);
                    if plan.part_count() > 1 {
                        let sealed = r64 + 16;
                        assert_eq!(plan.part_size(), MIN_PART_SIZE.next_multiple_of(sealed));
                    }
                }
            }
        }
    }

    #[test]
    fn last_part_sizes_at_record_and_part_boundaries() {
        for limits in providers() {
            for r in RECORD_SIZES {
                let r64 = u64::from(r);
                let sealed = r64 + 16;
                // Preferring the smallest part: each part holds the fewest whole records
                // that reach 5 MiB.
                let per_part = MIN_PART_SIZE.div_ceil(sealed);
                let pref = Some(0);
                // Exactly k parts, one byte more, one record more, one byte less.
                for k in [1u64, 2, 3] {
                    let full = k * per_part * r64;
                    let plan = plan_ok(full, r, pref, &limits);
                    assert_eq!(u64::from(plan.part_count()), k);
                    assert_eq!(plan.records_per_part(), per_part);
                    assert_eq!(plan.last_part_size(), plan.part_size());
                    let plan = plan_ok(full + 1, r, pref, &limits);
                    assert_eq!(u64::from(plan.part_count()), k + 1);
                    assert_eq!(plan.last_part_size(), 1 + 16);
                    let plan = plan_ok(full + r64, r, pref, &limits);
                    assert_eq!(u64::from(plan.part_count()), k + 1);
                    assert_eq!(plan.last_part_size(), sealed);
                    let plan = plan_ok(full - 1, r, pref, &limits);
                    assert_eq!(u64::from(plan.part_count()), k);
                    assert_eq!(plan.last_part_size(), plan.part_size() - 1);
                }
            }
        }
    }

    #[test]
    fn record_boundaries() {
        for limits in providers() {
            for r in RECORD_SIZES {
                let r64 = u64::from(r);
                for k in [1u64, 2, 3, 15, 16, 17, 80, 81, 1000] {
                    for l in [k * r64 - 1, k * r64, k * r64 + 1] {
                        plan_ok(l, r, None, &limits);
                        plan_ok(l, r, Some(0), &limits);
                        plan_ok(l, r, Some(7 * MIB + 3), &limits);
                    }
                }
            }
        }
    }

    #[test]
    fn ten_thousand_parts_then_the_part_grows_by_a_record() {
        let r = 1u32 << 20;
        let part = 16 * MIB; // plaintext per default part
        for limits in providers() {
            let plan = plan_ok(10_000 * part, r, None, &limits);
            assert_eq!(plan.part_count(), 10_000);
            assert_eq!(plan.records_per_part(), 16);
            // One byte more: the part grows by a record instead of a 10,001st part.
            let plan = plan_ok(10_000 * part + 1, r, None, &limits);
            assert_eq!(plan.records_per_part(), 17);
            assert_eq!(plan.part_count(), 9_412); // ceil(160,001 / 17)
            // One whole record more: the same.
            let plan = plan_ok(10_000 * part + u64::from(r), r, None, &limits);
            assert_eq!(plan.records_per_part(), 17);
            for l in [
                10_000 * part - 1,
                9_999 * part,
                9_999 * part + 1,
                10_001 * part,
            ] {
                plan_ok(l, r, None, &limits);
            }
        }
    }

    #[test]
    fn the_largest_file_fits_and_one_byte_more_does_not() {
        for limits in providers() {
            for r in RECORD_SIZES {
                let max = limits.max_plaintext_size(r).unwrap();
                let sealed = u64::from(r) + 16;
                for pref in [None, Some(0), Some(MAX_PART_SIZE), Some(u64::MAX)] {
                    let plan = plan_ok(max, r, pref, &limits);
                    // Tight: either the object or the part count is full.
                    let object_full =
                        plan.ciphertext_size() > limits.max_object_size() - sealed - 16;
                    let parts_full = plan.part_count() == limits.max_parts()
                        && plan.records_per_part() == limits.max_part_size() / sealed
                        && plan.last_part_size() == plan.part_size();
                    assert!(object_full || parts_full, "{plan:?} {limits:?}");
                    plan_ok(max - 1, r, pref, &limits);
                    too_large(max + 1, r, pref, &limits);
                }
            }
            for l in [MAX_OBJECT_SIZE, MAX_OBJECT_SIZE + 1, u64::MAX] {
                too_large(l, 1 << 20, None, &limits);
            }
        }
    }

    #[test]
    fn s3_plans_48_8_tib_and_r2_binding_refuses_it_naming_the_limit() {
        let r = 1u32 << 20;
        let l = 48 * TIB + 8 * TIB / 10; // 48.8 TiB
        let plan = plan_ok(l, r, None, &S3);
        // Parts grow only as far as 10,000 parts demand: 51,170,509 records in parts of
        // 5,118 (5,119 would be the largest that fits in 5 GiB).
        assert_eq!(plan.record_count(), 51_170_509);
        assert_eq!(plan.records_per_part(), 5_118);
        assert_eq!(plan.part_count(), 9_999);
        // One byte past 0.9 TiB in 95 MiB parts.
        let r2 = r2();
        too_large(l, r, None, &r2);
        let max = r2.max_plaintext_size(r).unwrap();
        let err = ApiError::from(PartPlan::new(max + 1, r, None, &r2).unwrap_err());
        assert_eq!(err.code, ApiErrorCode::FileTooLarge);
        assert_eq!(
            err.message,
            "the file is too large for this storage: it takes at most 985661440000 bytes in \
             records of this size (10000 parts of at most 99614720 bytes, objects of at most \
             996147200000 bytes)"
        );
        // R2's S3 API holds less than AWS.
        too_large(
            l,
            r,
            None,
            &S3.with_max_object_size(R2_MAX_OBJECT_SIZE).unwrap(),
        );
    }

    #[test]
    fn invalid_record_sizes() {
        for limits in providers() {
            for r in [0, 1, 15, MAX_RECORD_SIZE + 1, u32::MAX] {
                assert_eq!(
                    PartPlan::new(1, r, None, &limits),
                    Err(PlanError::InvalidRecordSize(r))
                );
                assert_eq!(limits.max_plaintext_size(r), None);
            }
        }
        let api: ApiError = PlanError::InvalidRecordSize(0).into();
        assert_eq!(api.code, ApiErrorCode::InvalidHeader);
    }

    #[test]
    fn preferences_are_clamped_into_limits() {
        let r = 1u32 << 20;
        for limits in providers() {
            let plan = plan_ok(100 * GIB, r, Some(u64::MAX), &limits);
            assert_eq!(
                plan.records_per_part(),
                (limits.max_part_size() / (MIB + 16)).min(100 * 1024)
            );
            // A preference that is not a record multiple is rounded down.
            let plan = plan_ok(100 * MIB, r, Some(8 * (MIB + 16) + MIB), &limits);
            assert_eq!(plan.records_per_part(), 8);
        }
    }

    #[test]
    fn sweep_sizes_zero_to_the_largest() {
        // Geometric sweep plus neighbours, across record sizes and preferences.
        for limits in providers() {
            for r in [16u32, 4096, 1 << 20, MAX_RECORD_SIZE] {
                let max = limits.max_plaintext_size(r).unwrap();
                let mut l = 0u64;
                while l <= max {
                    for d in [0, 1, 2] {
                        let x = (l + d).min(max);
                        plan_ok(x, r, None, &limits);
                        plan_ok(x, r, Some(64 * MIB), &limits);
                    }
                    l = l * 3 / 2 + 1;
                }
            }
        }
    }

    #[test]
    fn deserializing_an_inconsistent_plan_fails() {
        let plan = plan_ok(64 * MIB, 1 << 20, None, &S3);
        let mut json = serde_json::to_value(&plan).unwrap();
        json["partCount"] = 5.into();
        assert!(serde_json::from_value::<PartPlan>(json.clone()).is_err());
        json["partCount"] = 4.into();
        json["extra"] = 1.into();
        assert!(serde_json::from_value::<PartPlan>(json).is_err());
        // A part size no provider allows.
        let mut json = serde_json::to_value(&plan).unwrap();
        json["partSize"] = (MIB + 16).into();
        json["recordsPerPart"] = 1.into();
        json["partCount"] = 64.into();
        json["lastPartSize"] = (MIB + 16).into();
        assert!(serde_json::from_value::<PartPlan>(json).is_err());
    }

    fn any_size() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..=64 * MIB,
            0u64..=200 * GIB,
            0u64..=2 * TIB,
            0u64..=MAX_OBJECT_SIZE + GIB,
            (1u64..=1_000_000).prop_map(|k| k * 5 * MIB),
        ]
    }

    fn any_limits() -> impl Strategy<Value = ProviderLimits> {
        prop_oneof![
            Just(S3),
            Just(r2()),
            (MIN_MAX_PART_SIZE..=R2_BINDING_MAX_PART_SIZE)
                .prop_map(|max| ProviderLimits::r2_binding(max).unwrap()),
            (MAX_PART_SIZE..=MAX_OBJECT_SIZE).prop_map(|max| S3.with_max_object_size(max).unwrap()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn invariants_hold(
            l in any_size(),
            r in prop_oneof![16u32..=4096, 16u32..=MAX_RECORD_SIZE, Just(1u32 << 20)],
            pref in proptest::option::of(prop_oneof![0u64..=64 * MIB, 0u64..=6 * GIB, any::<u64>()]),
            limits in any_limits(),
        ) {
            let max = limits.max_plaintext_size(r).unwrap();
            match PartPlan::new(l, r, pref, &limits) {
                Ok(plan) => {
                    prop_assert!(l <= max);
                    check(&plan, l, r, &limits);
                    let again = PartPlan::new(l, r, Some(plan.part_size()), &S3).unwrap();
                    prop_assert_eq!(again, plan);
                }
                Err(e) => {
                    prop_assert_eq!(e, PlanError::FileTooLarge { max_plaintext_size: max, limits });
                    prop_assert!(l > max);
                }
            }
        }
    }
}
