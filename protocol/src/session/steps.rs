//! The storage steps a session emits and how their outcomes move it on.
//!
//! The shell's loop, for any request and for the alarm:
//!
//! ```text
//! while let Some(step) = session.take_step(now)? {   // Err: another instance is on it,
//!                                                    // or the step waits for its backoff
//!     let outcome = carry_out(step).await;           // the only await: storage
//!     session.on_step(outcome, now)?;                // Err: what the requester is told
//!     persist(&session);
//! }
//! ```
//!
//! Which step is due follows from the persisted state alone, so a shell that dies
//! between `take_step` and `on_step` leaves the same step due for whoever comes next.
//! A step that fails stays due (or, for completion, falls back to `open`), with a
//! backoff before the next try (see the module docs of `session`).

use std::collections::BTreeMap;

use crate::api_error::{ApiError, ApiErrorCode};
use crate::wire::CompletedPart;

use super::{Aborting, Check, Completing, Deleting, Phase, Session, unquote};

/// A storage side effect the shell must carry out, then report with
/// [`Session::on_step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// List the parts of the multipart upload (every page), or, for a provider whose
    /// storage cannot list them, answer [`Session::recorded_listing`]. Answer
    /// [`StepOutcome::Listed`], or [`StepOutcome::Gone`] if storage has no such upload.
    ListParts,
    /// Complete the multipart upload with these parts, in order, ETags as storage gave
    /// them. Answer [`StepOutcome::Completed`], [`StepOutcome::Refused`] (storage named
    /// a part of the list invalid), [`StepOutcome::Gone`] (no such upload: the next step
    /// checks the object) or [`StepOutcome::Failed`] (anything else, no answer included).
    Complete(Vec<CompletedPart>),
    /// Whether the completed object exists. Answer [`StepOutcome::Exists`].
    CheckObject,
    /// Abort the multipart upload. Answer [`StepOutcome::Aborted`], or
    /// [`StepOutcome::Gone`] if storage no longer has it.
    Abort,
    /// Delete the object of the file (the file is being deleted, or a completion that
    /// landed late left it); a missing object counts as deleted. Answer
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
    /// [`Step::Abort`]: storage aborted the multipart upload.
    Aborted,
    /// [`Step::DeleteObject`]: the object is gone.
    Deleted,
    /// [`Step::PurgeShare`]: the share object holds nothing.
    Purged,
    /// [`Step::ReleaseQuota`]: the account no longer counts the file's bytes.
    Released,
    /// [`Step::ListParts`], [`Step::Complete`], [`Step::Abort`]: storage has no such
    /// multipart upload (it was completed, or aborted).
    Gone,
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
    /// The step due now, if any, regardless of who carries it out or when.
    pub fn due_step(&self) -> Option<Step> {
        match &self.phase {
            Phase::Completing { stage, parts } => Some(match stage {
                Completing::Listing => Step::ListParts,
                Completing::Storing => Step::Complete(parts.clone()),
                Completing::Checking(_) => Step::CheckObject,
            }),
            Phase::Aborting(Aborting::Upload) => Some(Step::Abort),
            Phase::Aborting(Aborting::Object) => Some(Step::DeleteObject),
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

    /// Takes the step due, for this caller to carry out: `Ok(None)` when none is due;
    /// `503 upload_busy` when one is due but being carried out by another caller (whose
    /// deadline has not passed), or has failed and waits for its backoff (with the
    /// `Retry-After` until then).
    pub fn take_step(&mut self, now_ms: u64) -> Result<Option<Step>, ApiError> {
        let Some(step) = self.due_step() else {
            return Ok(None);
        };
        if self.is_driving(now_ms) {
            return Err(self.busy());
        }
        if self.retry_at().is_some_and(|at| now_ms < at) {
            return Err(self.wait(now_ms));
        }
        self.driving = Some(now_ms.saturating_add(self.timing.deadline_ms));
        Ok(Some(step))
    }

    /// Whether a step taken with [`Session::take_step`] is being carried out, and its
    /// deadline has not passed.
    pub fn is_driving(&self, now_ms: u64) -> bool {
        self.driving.is_some_and(|until| now_ms < until)
    }

    /// How often the step due has failed in a row.
    pub fn step_failures(&self) -> u32 {
        self.failures
    }

    /// When the step due may be tried again, if it has failed.
    pub fn retry_at(&self) -> Option<u64> {
        (self.failures > 0 && self.due_step().is_some())
            .then(|| self.failed_at + self.timing.backoff(self.failures))
    }

    /// Reports the outcome of the step taken with [`Session::take_step`] and moves on.
    /// `Err` is what the request that carried the step out answers (the state has moved
    /// all the same): a claim storage does not back (`409 parts_missing` /
    /// `etag_mismatch`), storage that lost the upload (`409 upload_not_open`), a storage
    /// failure (`502 storage_error`: the step waits for its backoff or the session is
    /// open again), a completion still being checked (`503 upload_busy`), or an outcome
    /// that does not answer the step due (`500 internal`, nothing changes).
    pub fn on_step(&mut self, outcome: StepOutcome, now_ms: u64) -> Result<(), ApiError> {
        if self.driving.take().is_none() {
            return Err(ApiError::internal());
        }
        self.advance(outcome, now_ms)
    }

    /// The transition table: moves with [`Session::enter`] (a new stage) or
    /// [`Session::retry`] (the same step, failed once more); an outcome that fits
    /// nothing changes nothing.
    fn advance(&mut self, outcome: StepOutcome, now: u64) -> Result<(), ApiError> {
        use StepOutcome as O;
        let Phase::Completing { stage, parts } = self.phase.clone() else {
            return match (self.phase.clone(), outcome) {
                (Phase::Aborting(Aborting::Upload), O::Aborted) => self.aborted(),
                // Gone before this abort: a completion that landed late may have left
                // its object.
                (Phase::Aborting(Aborting::Upload), O::Gone) => {
                    if self.pending_completion.is_some() {
                        self.enter(Phase::Aborting(Aborting::Object));
                        Ok(())
                    } else {
                        self.aborted()
                    }
                }
                (Phase::Aborting(Aborting::Object), O::Deleted) => self.aborted(),
                (Phase::Aborted { released: false }, O::Released) => {
                    self.enter(Phase::Aborted { released: true });
                    Ok(())
                }
                (Phase::Deleting(Deleting::Object), O::Deleted) => {
                    self.enter(Phase::Deleting(Deleting::Quota));
                    Ok(())
                }
                (Phase::Deleting(Deleting::Shares), O::Purged) => {
                    self.shares.pop_first();
                    self.enter(self.purging());
                    Ok(())
                }
                (Phase::Deleting(Deleting::Quota), O::Released) => {
                    self.enter(Phase::Deleting(Deleting::Wipe));
                    Ok(())
                }
                (
                    phase @ (Phase::Aborting(_)
                    | Phase::Aborted { released: false }
                    | Phase::Deleting(_)),
                    O::Failed,
                ) => {
                    self.retry(phase, now);
                    Err(ApiError::storage())
                }
                _ => Err(ApiError::internal()),
            };
        };
        let completing = |stage| Phase::Completing {
            stage,
            parts: parts.clone(),
        };
        match (stage, outcome) {
            (Completing::Listing, O::Listed(listed)) => {
                let stored = match self.check_listing(&parts, &listed) {
                    Ok(stored) => stored,
                    Err(e) => return self.reopen(e),
                };
                self.enter(Phase::Completing {
                    stage: Completing::Storing,
                    parts: stored,
                });
                Ok(())
            }
            (Completing::Listing, O::Failed) => self.reopen(ApiError::storage()),
            (Completing::Listing, O::Gone) => {
                self.enter(Phase::Open);
                self.upload_gone()
            }
            (Completing::Storing, O::Completed) => self.completed(parts, now),
            (Completing::Storing, O::Refused) => {
                // This try did not complete, and no earlier one can any more: storage
                // holds other parts than it had.
                self.pending_completion = None;
                self.enter(completing(Completing::Checking(Check::Refused)));
                Ok(())
            }
            (Completing::Storing, O::Gone) => {
                self.enter(completing(Completing::Checking(Check::Gone)));
                Ok(())
            }
            (Completing::Storing, O::Failed) => {
                self.enter(completing(Completing::Checking(Check::Unknown)));
                Ok(())
            }
            (Completing::Checking(_), O::Exists(true)) => self.completed(parts, now),
            (Completing::Checking(Check::Refused), O::Exists(false)) => self.refused(),
            (Completing::Checking(Check::Gone), O::Exists(false)) => {
                // No upload, no object: storage aborted it.
                self.pending_completion = None;
                self.commit_abort();
                Err(ApiError::upload_not_open(
                    "storage no longer has this upload: it is aborted",
                ))
            }
            // Not there (yet), or storage could not say: storage may still be assembling
            // the object, so check again after a backoff, up to a bound.
            (Completing::Checking(check), O::Exists(false) | O::Failed) => {
                if self.failures + 1 < self.timing.completion_checks {
                    self.retry(completing(Completing::Checking(check)), now);
                    return Err(self.wait(now));
                }
                match check {
                    Check::Refused => self.refused(),
                    // It may land later still: remember it.
                    Check::Unknown | Check::Gone => {
                        self.pending_completion = Some(parts);
                        self.reopen(ApiError::storage())
                    }
                }
            }
            _ => Err(ApiError::internal()),
        }
    }

    /// The step due failed once more: it stays due, after a backoff.
    fn retry(&mut self, phase: Phase, now: u64) {
        self.phase = phase;
        self.failures = self.failures.saturating_add(1);
        self.failed_at = now;
    }

    /// Completion did not happen: open again, answering `error`.
    fn reopen(&mut self, error: ApiError) -> Result<(), ApiError> {
        self.enter(Phase::Open);
        Err(error)
    }

    /// Storage completed the object at `now`: the file's lifetime counts from it.
    fn completed(&mut self, parts: Vec<CompletedPart>, now: u64) -> Result<(), ApiError> {
        self.pending_completion = None;
        self.lapsed.clear();
        self.enter(Phase::Completed {
            parts,
            completed_at: now,
        });
        Ok(())
    }

    /// Storage aborted the upload; its bytes are released next.
    fn aborted(&mut self) -> Result<(), ApiError> {
        self.pending_completion = None;
        self.enter(Phase::Aborted { released: false });
        Ok(())
    }

    /// The deletion stage while shares are left: purge the next one, or, with none
    /// left, delete the object. Shares go first so that none serves a file being
    /// deleted, even while storage refuses to delete the object.
    pub(super) fn purging(&self) -> Phase {
        match self.shares.is_empty() {
            true => Phase::Deleting(Deleting::Object),
            false => Phase::Deleting(Deleting::Shares),
        }
    }

    /// Storage refused the part list and did not complete: some recorded part is not
    /// what storage holds. A record can only be wrong if a lapsed write of its part
    /// landed after it, so those records are dropped (all of them if no write lapsed:
    /// then nothing recorded can be trusted), and the client sends those parts again.
    fn refused(&mut self) -> Result<(), ApiError> {
        let suspect: Vec<u32> = self.lapsed.iter().map(|&(part, _)| part).collect();
        if suspect.is_empty() {
            self.recorded.clear();
        } else {
            for part in suspect {
                self.recorded.remove(&part);
            }
        }
        self.reopen(ApiError::new(
            ApiErrorCode::PartsMissing,
            "storage refused the parts; check the upload's parts and send the missing ones again",
        ))
    }

    /// The answer for a request that finds the step due waiting for its backoff (or
    /// taken by another caller): `503 upload_busy` with the seconds until the next try.
    pub(super) fn wait(&self, now_ms: u64) -> ApiError {
        let Some(at) = self.retry_at().filter(|&at| now_ms < at) else {
            return self.busy();
        };
        let secs =
            u32::try_from(at.saturating_sub(now_ms).div_ceil(1000).max(1)).unwrap_or(u32::MAX);
        let doing = match self.phase {
            Phase::Aborting(_) => "abort",
            Phase::Aborted { .. } => "release the bytes of",
            Phase::Deleting(_) => "delete",
            _ => "complete",
        };
        let message = if self.is_stalled() {
            format!(
                "storage has failed to {doing} this upload {} times in a row; it is retried \
                 only when asked, next in {secs} s",
                self.failures
            )
        } else {
            format!("storage could not {doing} the upload yet; retry in {secs} s")
        };
        ApiError::busy(message, secs)
    }

    /// Checks the claim (whose shape `request_complete` checked) against storage's
    /// listing: every part held, with the planned size and the claimed ETag (quotes
    /// aside). Answers the parts with storage's ETags verbatim, for the complete step.
    fn check_listing(
        &self,
        claimed: &[CompletedPart],
        listed: &[super::ListedPart],
    ) -> Result<Vec<CompletedPart>, ApiError> {
        let mut held: BTreeMap<u32, Vec<&super::ListedPart>> = BTreeMap::new();
        for p in listed {
            held.entry(p.part_number).or_default().push(p);
        }
        claimed
            .iter()
            .map(|c| {
                let n = c.part_number;
                let planned = self.planned_size(n)?;
                let found = held
                    .get(&n)
                    .and_then(|ps| ps.iter().find(|p| p.size == planned));
                let Some(found) = found else {
                    return Err(ApiError::new(
                        ApiErrorCode::PartsMissing,
                        format!(
                            "storage does not hold part {n} ({planned} bytes); upload it again"
                        ),
                    ));
                };
                if unquote(&found.etag) != unquote(&c.etag) {
                    return Err(ApiError::new(
                        ApiErrorCode::EtagMismatch,
                        format!("storage holds part {n} with another ETag; upload it again"),
                    ));
                }
                Ok(CompletedPart {
                    part_number: n,
                    etag: found.etag.clone(),
                })
            })
            .collect()
    }
}
