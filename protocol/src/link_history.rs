//! What this browser last measured of its link, and the part size that suggests for the
//! next upload.
//!
//! The part size cannot adapt during an upload: R2 wants every part but the last the
//! same size, so it is fixed when the upload is planned (and a resume reuses the plan).
//! What can adapt is the choice, from what earlier uploads in this browser saw:
//!
//! - **a flaky link** (at least [`FLAKY_PERMILLE`] of attempts failed or stalled): the
//!   smallest parts storage takes (5 MiB), so each failure resends the least;
//! - **a lossy one** (at least [`LOSSY_PERMILLE`]): 8 MiB parts;
//! - **a clean one**: parts that take about [`TARGET_PART_MS`] each at the measured
//!   throughput shared by [`crate::concurrency::CONNECTIONS_PER_HOST`] connections,
//!   never below the default 16 MiB and never above [`MAX_ADAPTIVE_PART`] (64 MiB: a
//!   part is held in memory while it is in flight), and small enough that the file
//!   still has four parts per connection to keep them all busy;
//! - **no history**: the planner's default (16 MiB).
//!
//! Whatever it picks is then planned under the provider's limits, so it is a whole
//! number of records and a valid part size for the storage (the server plans it again
//! under its own, possibly tighter, limits). An explicit `partSize` option bypasses all
//! of this.
//!
//! The history itself is a small record (throughput, failure rate, how many uploads it
//! sums up) that the client keeps in `localStorage`; it never leaves the browser.

use serde::{Deserialize, Serialize};

use crate::concurrency::{CONNECTIONS_PER_HOST, LinkSample};
use crate::plan::{DEFAULT_PART_PLAINTEXT, PartPlan, PlanError, ProviderLimits};

const MIB: u64 = 1024 * 1024;

/// At least this many per mille of attempts failed or stalled: the smallest parts.
pub const FLAKY_PERMILLE: u32 = 100;
/// At least this many per mille: [`LOSSY_PART_PLAINTEXT`] parts.
pub const LOSSY_PERMILLE: u32 = 20;
/// Plaintext per part on a lossy link: 8 MiB.
pub const LOSSY_PART_PLAINTEXT: u64 = 8 * MIB;
/// How long one part should take on a clean link, in ms.
pub const TARGET_PART_MS: u64 = 4_000;
/// The largest part the history picks: 64 MiB of plaintext.
pub const MAX_ADAPTIVE_PART: u64 = 64 * MIB;
/// Attempts an upload must have made to say anything about the link.
const MIN_ATTEMPTS: u32 = 4;

/// The link as this browser last saw it (the `localStorage` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkHistory {
    /// Bytes per second all parts in flight moved together.
    pub throughput: u64,
    /// Part attempts that failed or stalled, per mille of all attempts.
    pub failure_permille: u32,
    /// How many uploads this sums up (their weight against the next one).
    pub uploads: u32,
}

impl LinkHistory {
    /// The history after `sample`: a running mean over the last few uploads (the
    /// newest weighs as much as all before it together, at most 1:3). A sample with
    /// fewer than 4 attempts, or that took no time, says too little and changes nothing.
    pub fn observe(previous: Option<LinkHistory>, sample: LinkSample) -> Option<LinkHistory> {
        let attempts = sample.succeeded.saturating_add(sample.failed);
        if attempts < MIN_ATTEMPTS || sample.busy_ms == 0 {
            return previous;
        }
        let throughput =
            u64::try_from(u128::from(sample.weighted_bytes) * 1000 / u128::from(sample.busy_ms))
                .unwrap_or(u64::MAX);
        let failure_permille =
            u32::try_from(u64::from(sample.failed) * 1000 / u64::from(attempts)).unwrap_or(1000);
        let Some(old) = previous else {
            return Some(LinkHistory {
                throughput,
                failure_permille,
                uploads: 1,
            });
        };
        let weight = u128::from(old.uploads.clamp(1, 3));
        let mean = |old: u64, new: u64| {
            u64::try_from((u128::from(old) * weight + u128::from(new)) / (weight + 1))
                .unwrap_or(u64::MAX)
        };
        Some(LinkHistory {
            throughput: mean(old.throughput, throughput),
            failure_permille: u32::try_from(mean(
                old.failure_permille.into(),
                failure_permille.into(),
            ))
            .unwrap_or(1000)
            .min(1000),
            uploads: old.uploads.saturating_add(1),
        })
    }
}

/// The part size (ciphertext bytes, whole records, within `limits`) to ask the server
/// for when uploading `plaintext_size` bytes in records of `record_size` bytes after
/// `history`; `None` without a history (the server's default). See the module
/// documentation for the rule.
pub fn preferred_part_size(
    plaintext_size: u64,
    record_size: u32,
    history: Option<&LinkHistory>,
    limits: &ProviderLimits,
) -> Result<Option<u64>, PlanError> {
    let Some(history) = history else {
        return Ok(None);
    };
    let plaintext = if history.failure_permille >= FLAKY_PERMILLE {
        // Rounded up into the limits by the planner.
        0
    } else if history.failure_permille >= LOSSY_PERMILLE {
        LOSSY_PART_PLAINTEXT
    } else {
        let per_connection = history.throughput / u64::from(CONNECTIONS_PER_HOST);
        let timed = per_connection.saturating_mul(TARGET_PART_MS) / 1000;
        let busy = plaintext_size / (4 * u64::from(CONNECTIONS_PER_HOST));
        timed
            .min(busy)
            .clamp(DEFAULT_PART_PLAINTEXT, MAX_ADAPTIVE_PART)
    };
    let r = u64::from(record_size);
    // Whole records of plaintext, sealed: the planner takes ciphertext bytes.
    let records = (plaintext / r.max(1)).max(1);
    let preferred = records.saturating_mul(r + crate::format::TAG_LEN as u64);
    let plan = PartPlan::new(plaintext_size, record_size, Some(preferred), limits)?;
    Ok(Some(plan.part_size()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::format::{DEFAULT_RECORD_SIZE, MAX_RECORD_SIZE, MIN_RECORD_SIZE};
    use crate::plan::{DEFAULT_R2_BINDING_MAX_PART_SIZE, MIN_PART_SIZE};
    use proptest::prelude::*;

    const GIB: u64 = 1024 * MIB;
    const R: u32 = DEFAULT_RECORD_SIZE;
    const SEALED: u64 = R as u64 + 16;
    const S3: ProviderLimits = ProviderLimits::S3;

    fn clean(throughput: u64) -> LinkHistory {
        LinkHistory {
            throughput,
            failure_permille: 0,
            uploads: 3,
        }
    }

    fn pick(size: u64, history: LinkHistory) -> u64 {
        preferred_part_size(size, R, Some(&history), &S3)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn no_history_leaves_it_to_the_server() {
        assert_eq!(preferred_part_size(10 * GIB, R, None, &S3), Ok(None));
    }

    #[test]
    fn a_flaky_history_picks_small_parts() {
        let flaky = LinkHistory {
            failure_permille: 150,
            ..clean(200_000_000)
        };
        // The smallest part storage takes, in whole records: 5 records of 1 MiB (their
        // tags make them just over 5 MiB).
        assert_eq!(
            pick(10 * GIB, flaky),
            MIN_PART_SIZE.div_ceil(SEALED) * SEALED
        );
        let lossy = LinkHistory {
            failure_permille: 50,
            ..flaky
        };
        assert_eq!(pick(10 * GIB, lossy), 8 * SEALED);
    }

    #[test]
    fn a_clean_history_picks_parts_by_speed_and_file_size() {
        // 12 MB/s in all, 2 MB/s a connection: 8 MB in 4 s, below the default.
        assert_eq!(pick(10 * GIB, clean(12_000_000)), 16 * SEALED);
        // 90 MB/s: 60 MB in 4 s, 57 records.
        assert_eq!(pick(10 * GIB, clean(90_000_000)), 57 * SEALED);
        // 1 GB/s: capped at 64 MiB.
        assert_eq!(pick(10 * GIB, clean(1_000_000_000)), 64 * SEALED);
        // A 1 GiB file keeps 4 parts a connection: 1 GiB / 24 is 42 records.
        assert_eq!(pick(GIB, clean(1_000_000_000)), 42 * SEALED);
        // A small file: never below the default.
        assert_eq!(pick(100 * MIB, clean(1_000_000_000)), 16 * SEALED);
        // Smaller than one part: the planner makes it one part.
        assert_eq!(pick(3 * MIB, clean(1_000_000_000)), 3 * SEALED);
    }

    #[test]
    fn the_plan_keeps_its_limits() {
        // A file that needs larger parts than the history wants to fit 10,000 parts.
        let r2 = ProviderLimits::r2_binding(DEFAULT_R2_BINDING_MAX_PART_SIZE).unwrap();
        let flaky = LinkHistory {
            failure_permille: 1000,
            ..clean(1)
        };
        let size = 500 * GIB;
        let part = preferred_part_size(size, R, Some(&flaky), &r2)
            .unwrap()
            .unwrap();
        assert_eq!(part, (size / u64::from(R)).div_ceil(10_000) * SEALED);
        // Too large for the provider at all: the planner's error.
        assert!(matches!(
            preferred_part_size(2 * 1024 * GIB, R, Some(&flaky), &r2),
            Err(PlanError::FileTooLarge { .. })
        ));
    }

    #[test]
    fn history_is_a_running_mean_that_ignores_tiny_samples() {
        let sample = |weighted_bytes, busy_ms, succeeded, failed| LinkSample {
            weighted_bytes,
            busy_ms,
            succeeded,
            failed,
        };
        assert_eq!(LinkHistory::observe(None, sample(100, 1, 3, 0)), None);
        assert_eq!(LinkHistory::observe(None, sample(100, 0, 30, 0)), None);
        let first = LinkHistory::observe(None, sample(100_000_000, 1_000, 9, 1)).unwrap();
        assert_eq!(
            first,
            LinkHistory {
                throughput: 100_000_000,
                failure_permille: 100,
                uploads: 1
            }
        );
        let second = LinkHistory::observe(Some(first), sample(50_000_000, 1_000, 10, 0)).unwrap();
        assert_eq!(
            second,
            LinkHistory {
                throughput: 75_000_000,
                failure_permille: 50,
                uploads: 2
            }
        );
        // From the fourth on, the newest weighs a quarter: the old fades.
        let mut h = second;
        for _ in 0..10 {
            h = LinkHistory::observe(Some(h), sample(10_000_000, 1_000, 10, 0)).unwrap();
        }
        assert!(
            h.throughput < 15_000_000 && h.failure_permille <= 3,
            "{h:?}"
        );
        assert_eq!(h.uploads, 12);
        assert_eq!(
            serde_json::to_value(h).unwrap(),
            serde_json::json!({"throughput": h.throughput, "failurePermille": h.failure_permille, "uploads": 12})
        );
        assert!(serde_json::from_str::<LinkHistory>(r#"{"throughput":1}"#).is_err());
    }

    proptest! {
        /// Whatever the history: a whole number of records, within the provider's
        /// limits (or the file is too large for it anyway), and the plan it makes is
        /// the plan the server makes from it.
        #[test]
        fn always_a_valid_part_size(
            size in 0u64..(60 * 1024 * GIB),
            record in MIN_RECORD_SIZE..=MAX_RECORD_SIZE,
            throughput: u64,
            failure_permille in 0u32..=1000,
            r2 in any::<bool>(),
        ) {
            let limits = if r2 {
                ProviderLimits::r2_binding(DEFAULT_R2_BINDING_MAX_PART_SIZE).unwrap()
            } else {
                S3
            };
            let history = LinkHistory { throughput, failure_permille, uploads: 1 };
            match preferred_part_size(size, record, Some(&history), &limits) {
                Ok(Some(part)) => {
                    let sealed = u64::from(record) + 16;
                    prop_assert_eq!(part % sealed, 0);
                    prop_assert!(part <= limits.max_part_size());
                    let plan = PartPlan::new(size, record, Some(part), &limits).unwrap();
                    prop_assert_eq!(plan.part_size(), part);
                    if plan.part_count() > 1 {
                        prop_assert!(part >= limits.min_part_size());
                    }
                }
                Ok(None) => prop_assert!(false, "a history always picks"),
                Err(e) => {
                    let too_large = matches!(e, PlanError::FileTooLarge { .. });
                    prop_assert!(too_large, "{}", e);
                }
            }
        }
    }
}
