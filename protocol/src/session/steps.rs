//! The storage steps a session emits and how their outcomes move it on.
//!
//! The shell's loop, for any request and for the alarm:
//!
//! ```text
//! while let Some(step) = session.take_step()? {   // Err: another instance is on it
//!     let outcome = carry_out(step).await;       // the only await: storage
//!     session.on_step(outcome)?;                 // Err: what the requester is told
//!     persist(&session);
//! }
//! ```
//!
//! Which step is due follows from the persisted state alone, so a shell that dies
//! between `take_step` and `on_step` leaves the same step due for whoever comes next.

use crate::api_error::{ApiError, ApiErrorCode};
use crate::wire::CompletedPart;

use super::{CHECK_RETRY_SECS, Completing, Deleting, Phase, Session, unquote};

/// A storage side effect the shell must carry out, then report with
/// [`Session::on_step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// List the parts of the multipart upload (every page), or, for a provider whose
    /// storage cannot list them, answer [`Session::recorded_listing`]. Answer
    /// [`StepOutcome::Listed`].
    ListParts,
    /// Complete the multipart upload with these parts, in order, ETags as storage gave
    /// them. Answer [`StepOutcome::Completed`], [`StepOutcome::Refused`] (storage named
    /// a part of the list invalid) or [`StepOutcome::Failed`] (anything else, including
    /// "no such upload": the next step checks the object).
    Complete(Vec<CompletedPart>),
    /// Whether the completed object exists. Answer [`StepOutcome::Exists`].
    CheckObject,
    /// Abort the multipart upload; "no such upload" counts as done (it is gone either
    /// way). Answer [`StepOutcome::Aborted`].
    Abort,
    /// Delete the completed object; a missing object counts as deleted. Answer
    /// [`StepOutcome::Deleted`].
    DeleteObject,
    /// Purge the share object named by this random part of its token (it forgets
    /// everything); one that holds nothing counts as purged. Answer
    /// [`StepOutcome::Purged`].
    PurgeShare(String),
    /// Release the file's bytes from the owner's account (idempotent). Answer
    /// [`StepOutcome::Released`].
    ReleaseQuota,
    /// Wipe this object's storage (every row and the alarm) and forget the session:
    /// nothing is reported back, since nothing is left to report to.
    Wipe,
}

/// What carrying out a [`Step`] gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// [`Step::ListParts`]: the parts storage holds.
    Listed(Vec<ListedPart>),
    /// [`Step::Complete`]: the object exists, made of the parts.
    Completed,
    /// [`Step::Complete`]: storage refused the part list (a part it does not hold with
    /// that ETag).
    Refused,
    /// [`Step::CheckObject`]: whether the object exists.
    Exists(bool),
    /// [`Step::Abort`]: storage no longer has the multipart upload.
    Aborted,
    /// [`Step::DeleteObject`]: storage no longer has the object.
    Deleted,
    /// [`Step::PurgeShare`]: the share object holds nothing.
    Purged,
    /// [`Step::ReleaseQuota`]: the account no longer counts the file's bytes.
    Released,
    /// Any step: storage failed, or gave no answer. Nothing is known to have changed.
    Failed,
}

/// A part storage holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    /// The part, 1-based.
    pub part_number: u32,
    /// Its ETag, as storage gives it.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Session {
    /// The step due now, if any, regardless of who carries it out.
    pub fn due_step(&self) -> Option<Step> {
        match &self.phase {
            Phase::Completing { stage, parts, .. } => Some(match stage {
                Completing::Listing => Step::ListParts,
                Completing::Storing => Step::Complete(parts.clone()),
                Completing::Checking { .. } => Step::CheckObject,
            }),
            Phase::Aborting => Some(Step::Abort),
            Phase::Aborted { released: false } => Some(Step::ReleaseQuota),
            Phase::Deleting(stage) => Some(match stage {
                Deleting::Object => Step::DeleteObject,
                // `purging` never leaves this stage with no share to purge.
                Deleting::Shares => Step::PurgeShare(self.shares.first()?.clone()),
                Deleting::Quota => Step::ReleaseQuota,
                Deleting::Wipe => Step::Wipe,
            }),
            Phase::Open | Phase::Completed { .. } | Phase::Aborted { released: true } => None,
        }
    }

    /// Takes the step due, for this caller to carry out: `Ok(None)` when none is due,
    /// `503 upload_busy` when one is due but already being carried out.
    pub fn take_step(&mut self) -> Result<Option<Step>, ApiError> {
        let Some(step) = self.due_step() else {
            return Ok(None);
        };
        if self.driving {
            return Err(self.busy());
        }
        self.driving = true;
        Ok(Some(step))
    }

    /// Whether a step taken with [`Session::take_step`] is being carried out.
    pub fn is_driving(&self) -> bool {
        self.driving
    }

    /// Reports the outcome of the step taken with [`Session::take_step`] and moves on.
    /// `Err` is what the request that carried the step out answers (the state has moved
    /// all the same): a claim storage does not back (`409 parts_missing` /
    /// `etag_mismatch`), a storage failure (`502 storage_error`, the step will be due
    /// again or the session is open again), or an outcome that does not answer the step
    /// due (`500 internal`, nothing changes).
    pub fn on_step(&mut self, outcome: StepOutcome) -> Result<(), ApiError> {
        if !std::mem::replace(&mut self.driving, false) {
            return Err(ApiError::internal());
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Aborted { released: true });
        let (phase, answer) = self.advance(phase, outcome);
        self.phase = phase;
        answer
    }

    /// The transition table.
    fn advance(&mut self, phase: Phase, outcome: StepOutcome) -> (Phase, Result<(), ApiError>) {
        use StepOutcome as O;
        match (phase, outcome) {
            (
                Phase::Completing {
                    stage: Completing::Listing,
                    parts,
                    at,
                },
                O::Listed(listed),
            ) => match self.check_listing(&parts, &listed) {
                Ok(parts) => (
                    Phase::Completing {
                        stage: Completing::Storing,
                        parts,
                        at,
                    },
                    Ok(()),
                ),
                Err(e) => (Phase::Open, Err(e)),
            },
            (
                Phase::Completing {
                    stage: Completing::Listing,
                    ..
                },
                O::Failed,
            ) => (Phase::Open, Err(ApiError::storage())),
            (
                Phase::Completing {
                    stage: Completing::Storing,
                    parts,
                    at,
                },
                outcome @ (O::Completed | O::Refused | O::Failed),
            ) => match outcome {
                O::Completed => (
                    Phase::Completed {
                        parts,
                        completed_at: at,
                    },
                    Ok(()),
                ),
                refused => (
                    Phase::Completing {
                        stage: Completing::Checking {
                            refused: refused == O::Refused,
                        },
                        parts,
                        at,
                    },
                    Ok(()),
                ),
            },
            (
                Phase::Completing {
                    stage: Completing::Checking { refused },
                    parts,
                    at,
                },
                outcome @ (O::Exists(_) | O::Failed),
            ) => match outcome {
                O::Exists(true) => (
                    Phase::Completed {
                        parts,
                        completed_at: at,
                    },
                    Ok(()),
                ),
                O::Exists(false) if refused => {
                    // Storage holds other bytes than recorded for some part, and cannot
                    // say which: nothing recorded can be trusted.
                    self.recorded.clear();
                    (
                        Phase::Open,
                        Err(ApiError::new(
                            ApiErrorCode::PartsMissing,
                            "storage refused the parts; check the upload's parts and send them again",
                        )),
                    )
                }
                O::Exists(false) => (Phase::Open, Err(ApiError::storage())),
                _ => (
                    Phase::Completing {
                        stage: Completing::Checking { refused },
                        parts,
                        at,
                    },
                    Err(ApiError::busy(
                        "the upload is being completed; retry shortly",
                        CHECK_RETRY_SECS,
                    )),
                ),
            },
            (Phase::Aborting, O::Aborted) => (Phase::Aborted { released: false }, Ok(())),
            (Phase::Aborting, O::Failed) => (Phase::Aborting, Err(ApiError::storage())),
            (Phase::Aborted { released: false }, O::Released) => {
                (Phase::Aborted { released: true }, Ok(()))
            }
            (Phase::Deleting(Deleting::Object), O::Deleted) => (self.purging(), Ok(())),
            (Phase::Deleting(Deleting::Shares), O::Purged) => {
                self.shares.pop_first();
                (self.purging(), Ok(()))
            }
            (Phase::Deleting(Deleting::Quota), O::Released) => {
                (Phase::Deleting(Deleting::Wipe), Ok(()))
            }
            (phase @ (Phase::Aborted { released: false } | Phase::Deleting(_)), O::Failed) => {
                (phase, Err(ApiError::storage()))
            }
            (phase, _) => (phase, Err(ApiError::internal())),
        }
    }

    /// The deletion stage after the object is gone: purge the next share, or, with
    /// none left, release the quota.
    fn purging(&self) -> Phase {
        match self.shares.is_empty() {
            true => Phase::Deleting(Deleting::Quota),
            false => Phase::Deleting(Deleting::Shares),
        }
    }

    /// Checks the claim (whose shape `request_complete` checked) against storage's
    /// listing: every part held, with the planned size and the claimed ETag (quotes
    /// aside). Answers the parts with storage's ETags verbatim, for the complete step.
    fn check_listing(
        &self,
        claimed: &[CompletedPart],
        listed: &[ListedPart],
    ) -> Result<Vec<CompletedPart>, ApiError> {
        claimed
            .iter()
            .map(|c| {
                let n = c.part_number;
                let planned = self.planned_size(n)?;
                let held = listed
                    .iter()
                    .find(|p| p.part_number == n && p.size == planned);
                let Some(held) = held else {
                    return Err(ApiError::new(
                        ApiErrorCode::PartsMissing,
                        format!(
                            "storage does not hold part {n} ({planned} bytes); upload it again"
                        ),
                    ));
                };
                if unquote(&held.etag) != unquote(&c.etag) {
                    return Err(ApiError::new(
                        ApiErrorCode::EtagMismatch,
                        format!("storage holds part {n} with another ETag; upload it again"),
                    ));
                }
                Ok(CompletedPart {
                    part_number: n,
                    etag: held.etag.clone(),
                })
            })
            .collect()
    }
}
