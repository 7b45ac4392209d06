//! The session as plain data for a store to persist, and back.
//!
//! A [`Snapshot`] is everything the session must not forget, with public fields, so the
//! shell can map it onto whatever schema it keeps (the worker's SQLite rows are its own
//! types, versioned there): the protocol type never becomes a storage schema by
//! accident. [`Session::restore`] checks every invariant the rules rely on, so a damaged
//! or hand-edited store cannot smuggle in a part the session would have refused.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{FileId, OwnerTokenHash};
use crate::plan::PartPlan;
use crate::wire::CompletedPart;

use super::{
    Aborting, Check, Completing, Deleting, FileTerms, PartWrite, Phase, RecordedPart, Session,
    ShareSlots, StepTiming,
};

/// The persisted stage of a session: its [`super::UploadState`] refined by the step
/// due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Open.
    Open,
    /// Completing: listing the parts.
    Listing,
    /// Completing: completing the multipart upload.
    Storing,
    /// Completing: checking whether the object exists.
    Checking,
    /// Completing: checking whether the object exists after storage refused the parts.
    CheckingRefused,
    /// Completing: checking whether the object exists after storage said the upload is
    /// gone.
    CheckingGone,
    /// Completed.
    Completed,
    /// Aborting: aborting the multipart upload.
    Aborting,
    /// Aborting: deleting the object a late completion left.
    AbortingObject,
    /// Aborted; its bytes not yet released from the owner's account.
    Aborted,
    /// Aborted, and its bytes released.
    AbortedReleased,
    /// Deleting: deleting the object.
    DeletingObject,
    /// Deleting: purging the shares.
    DeletingShares,
    /// Deleting: releasing the bytes from the owner's account.
    ReleasingQuota,
    /// Deleting: wiping the object's own storage.
    Wiping,
}

impl Stage {
    /// Every stage (for exhaustive tests).
    pub const ALL: [Stage; 15] = [
        Stage::Open,
        Stage::Listing,
        Stage::Storing,
        Stage::Checking,
        Stage::CheckingRefused,
        Stage::CheckingGone,
        Stage::Completed,
        Stage::Aborting,
        Stage::AbortingObject,
        Stage::Aborted,
        Stage::AbortedReleased,
        Stage::DeletingObject,
        Stage::DeletingShares,
        Stage::ReleasingQuota,
        Stage::Wiping,
    ];

    /// A stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Listing => "listing",
            Stage::Storing => "storing",
            Stage::Checking => "checking",
            Stage::CheckingRefused => "checking-refused",
            Stage::CheckingGone => "checking-gone",
            Stage::Completed => "completed",
            Stage::Aborting => "aborting",
            Stage::AbortingObject => "aborting-object",
            Stage::Aborted => "aborted",
            Stage::AbortedReleased => "aborted-released",
            Stage::DeletingObject => "deleting-object",
            Stage::DeletingShares => "deleting-shares",
            Stage::ReleasingQuota => "releasing-quota",
            Stage::Wiping => "wiping",
        }
    }

    /// The stage for a stored name.
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Everything a session must not forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The file this upload creates.
    pub file_id: FileId,
    /// The part plan.
    pub plan: PartPlan,
    /// SHA-256 of the owner token.
    pub owner_token_hash: OwnerTokenHash,
    /// The file's owner, account and lifetime.
    pub terms: FileTerms,
    /// When storage completed the object (completed; 0 otherwise): the file's lifetime
    /// counts from it.
    pub completion_at: u64,
    /// The shares of the file (their tokens' random parts).
    pub shares: Vec<String>,
    /// Those of them whose object was not confirmed made yet, with when each was
    /// reserved ([`super::ShareSlots`]).
    pub pending_shares: Vec<(String, u64)>,
    /// Creation time (ms since epoch).
    pub created_at: u64,
    /// Expiry of the open session (ms since epoch).
    pub expires_at: u64,
    /// Where it is.
    pub stage: Stage,
    /// While completing: the claim (listing) or the parts with storage's ETags; once
    /// completed: the parts. Empty otherwise.
    pub completion: Vec<CompletedPart>,
    /// The parts recorded from fenced writes.
    pub recorded: Vec<(u32, RecordedPart)>,
    /// The part writes in flight.
    pub writes: Vec<(u32, PartWrite)>,
    /// `(part, fence)` of the lapsed writes.
    pub lapsed: Vec<(u32, u64)>,
    /// The next fence to hand out (greater than every fence used).
    pub next_fence: u64,
    /// The parts of a completion storage may still carry out; empty if none.
    pub pending_completion: Vec<CompletedPart>,
    /// How often the step due has failed in a row (0 if none is due).
    pub step_failures: u32,
    /// When it last failed (ms since epoch; 0 if it has not).
    pub step_failed_at: u64,
}

/// A snapshot that breaks the session's invariants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A recorded part or write outside the plan, or of another size than planned.
    #[error("part {0} does not fit the plan")]
    PartOutsidePlan(u32),
    /// A part listed twice.
    #[error("part {0} is stored twice")]
    DuplicatePart(u32),
    /// A fence at or above `next_fence`.
    #[error("a fence was never handed out")]
    FenceNotIssued,
    /// Completion parts that are not `1..=partCount` in order, or present in a stage
    /// that has none (or missing in one that needs them).
    #[error("the completion parts do not fit the stage")]
    Completion,
    /// Parts or writes kept by an aborting or aborted session.
    #[error("an aborted session keeps no parts")]
    PartsAfterAbort,
    /// A pending completion that is not `1..=partCount` in order, or in a stage that
    /// keeps none (only open, completing and aborting sessions do).
    #[error("the pending completion does not fit the stage")]
    PendingCompletion,
    /// Step failures recorded while no step is due.
    #[error("step failures without a step")]
    StepFailures,
    /// Shares on an upload that never completed, a share stage with none, or a pending
    /// share that is not a share.
    #[error("the shares do not fit the stage")]
    Shares,
}

impl Session {
    /// The session as plain data (without the in-memory `driving` deadline and the
    /// timing).
    pub fn snapshot(&self) -> Snapshot {
        let (stage, completion) = match &self.phase {
            Phase::Open => (Stage::Open, Vec::new()),
            Phase::Completing { stage, parts } => (
                match stage {
                    Completing::Listing => Stage::Listing,
                    Completing::Storing => Stage::Storing,
                    Completing::Checking(Check::Unknown) => Stage::Checking,
                    Completing::Checking(Check::Refused) => Stage::CheckingRefused,
                    Completing::Checking(Check::Gone) => Stage::CheckingGone,
                },
                parts.clone(),
            ),
            Phase::Completed { parts, .. } => (Stage::Completed, parts.clone()),
            Phase::Aborting(Aborting::Upload) => (Stage::Aborting, Vec::new()),
            Phase::Aborting(Aborting::Object) => (Stage::AbortingObject, Vec::new()),
            Phase::Aborted { released: false } => (Stage::Aborted, Vec::new()),
            Phase::Aborted { released: true } => (Stage::AbortedReleased, Vec::new()),
            Phase::Deleting(stage) => (
                match stage {
                    Deleting::Object => Stage::DeletingObject,
                    Deleting::Shares => Stage::DeletingShares,
                    Deleting::Quota => Stage::ReleasingQuota,
                    Deleting::Wipe => Stage::Wiping,
                },
                Vec::new(),
            ),
        };
        let completion_at = match &self.phase {
            Phase::Completed { completed_at, .. } => *completed_at,
            _ => 0,
        };
        Snapshot {
            file_id: self.file_id.clone(),
            plan: self.plan.clone(),
            owner_token_hash: self.owner_token_hash,
            terms: self.terms.clone(),
            completion_at,
            shares: self.shares.ids().iter().cloned().collect(),
            pending_shares: (self.shares.pending().iter())
                .map(|(id, &since)| (id.clone(), since))
                .collect(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            stage,
            completion,
            recorded: self.recorded.iter().map(|(&n, r)| (n, r.clone())).collect(),
            writes: self.writes.iter().map(|(&n, w)| (n, w.clone())).collect(),
            lapsed: self.lapsed.iter().copied().collect(),
            next_fence: self.next_fence,
            pending_completion: self.pending_completion.clone().unwrap_or_default(),
            step_failures: self.failures,
            step_failed_at: self.failed_at,
        }
    }

    /// The session a snapshot describes, if it keeps every invariant. Nothing is being
    /// carried out in a restored session: a step that was due is due again (after its
    /// backoff). It retries with the default [`StepTiming`]; see
    /// [`Session::with_timing`].
    pub fn restore(s: Snapshot) -> Result<Session, RestoreError> {
        let completing = |stage| Phase::Completing {
            stage,
            parts: s.completion.clone(),
        };
        let phase = match s.stage {
            Stage::Open => Phase::Open,
            Stage::Listing => completing(Completing::Listing),
            Stage::Storing => completing(Completing::Storing),
            Stage::Checking => completing(Completing::Checking(Check::Unknown)),
            Stage::CheckingRefused => completing(Completing::Checking(Check::Refused)),
            Stage::CheckingGone => completing(Completing::Checking(Check::Gone)),
            Stage::Completed => Phase::Completed {
                parts: s.completion.clone(),
                completed_at: s.completion_at,
            },
            Stage::Aborting => Phase::Aborting(Aborting::Upload),
            Stage::AbortingObject => Phase::Aborting(Aborting::Object),
            Stage::Aborted => Phase::Aborted { released: false },
            Stage::AbortedReleased => Phase::Aborted { released: true },
            Stage::DeletingObject => Phase::Deleting(Deleting::Object),
            Stage::DeletingShares => Phase::Deleting(Deleting::Shares),
            Stage::ReleasingQuota => Phase::Deleting(Deleting::Quota),
            Stage::Wiping => Phase::Deleting(Deleting::Wipe),
        };
        let needs_parts = matches!(phase, Phase::Completing { .. } | Phase::Completed { .. });
        let whole = |parts: &[CompletedPart]| {
            parts.iter().zip(1..).all(|(p, n)| p.part_number == n)
                && parts.len() == s.plan.part_count() as usize
        };
        if needs_parts == s.completion.is_empty() || (needs_parts && !whole(&s.completion)) {
            return Err(RestoreError::Completion);
        }
        let keeps_pending = matches!(
            phase,
            Phase::Open | Phase::Completing { .. } | Phase::Aborting(_)
        );
        let pending_fits = keeps_pending && whole(&s.pending_completion);
        if !(s.pending_completion.is_empty() || pending_fits) {
            return Err(RestoreError::PendingCompletion);
        }
        if phase == Phase::Aborting(Aborting::Object) && s.pending_completion.is_empty() {
            return Err(RestoreError::PendingCompletion);
        }
        let steps = matches!(
            phase,
            Phase::Completing { .. }
                | Phase::Aborting(_)
                | Phase::Aborted { released: false }
                | Phase::Deleting(_)
        );
        if !steps && (s.step_failures != 0 || s.step_failed_at != 0) {
            return Err(RestoreError::StepFailures);
        }
        let parts_kept = !(s.recorded.is_empty() && s.writes.is_empty() && s.lapsed.is_empty());
        if matches!(phase, Phase::Aborting(_) | Phase::Aborted { .. }) && parts_kept {
            return Err(RestoreError::PartsAfterAbort);
        }
        let may_share = matches!(phase, Phase::Completed { .. } | Phase::Deleting(_));
        if (!may_share && !s.shares.is_empty())
            || (phase == Phase::Deleting(Deleting::Shares) && s.shares.is_empty())
        {
            return Err(RestoreError::Shares);
        }
        let shares = ShareSlots::restore(
            s.shares.into_iter().collect(),
            s.pending_shares.into_iter().collect(),
        )
        .ok_or(RestoreError::Shares)?;
        let mut recorded = BTreeMap::new();
        for (n, r) in s.recorded {
            if s.plan.size_of_part(n) != Some(r.size) {
                return Err(RestoreError::PartOutsidePlan(n));
            }
            if r.fence >= s.next_fence {
                return Err(RestoreError::FenceNotIssued);
            }
            if recorded.insert(n, r).is_some() {
                return Err(RestoreError::DuplicatePart(n));
            }
        }
        let mut writes = BTreeMap::new();
        for (n, w) in s.writes {
            if !s.plan.contains_part(n) {
                return Err(RestoreError::PartOutsidePlan(n));
            }
            if w.fence >= s.next_fence {
                return Err(RestoreError::FenceNotIssued);
            }
            if writes.insert(n, w).is_some() {
                return Err(RestoreError::DuplicatePart(n));
            }
        }
        let mut lapsed = BTreeSet::new();
        for (n, fence) in s.lapsed {
            if !s.plan.contains_part(n) {
                return Err(RestoreError::PartOutsidePlan(n));
            }
            if fence >= s.next_fence {
                return Err(RestoreError::FenceNotIssued);
            }
            lapsed.insert((n, fence));
        }
        Ok(Session {
            file_id: s.file_id,
            plan: s.plan,
            owner_token_hash: s.owner_token_hash,
            terms: s.terms,
            created_at: s.created_at,
            expires_at: s.expires_at,
            phase,
            shares,
            recorded,
            writes,
            lapsed,
            next_fence: s.next_fence,
            pending_completion: (!s.pending_completion.is_empty()).then_some(s.pending_completion),
            failures: s.step_failures,
            failed_at: s.step_failed_at,
            timing: StepTiming::default(),
            driving: None,
        })
    }
}
