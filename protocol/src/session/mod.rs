//! The rules of one upload session, as a sans-IO state machine its Durable Object only
//! carries out.
//!
//! ```text
//!                 begin/finish part (fenced)
//!                    ┌──────┐
//!                    ▼      │
//!   new ──────────▶ Open ───┘ ──complete──▶ Completing ──storage completed──▶ Completed
//!                   │  ▲                      │ (list parts → complete → check object)
//!                   │  └──storage did not ────┘
//!                   │     complete / parts wrong
//!                   └──abort (owner, or expiry)──▶ Aborting ──storage aborted──▶ Aborted
//!                      or storage lost the upload   (abort → delete a late object)
//!
//!   Completed ──delete (owner, or the file's expiry)──▶ Deleting ──▶ (wiped: nothing left)
//! ```
//!
//! After completion the file lives until its owner deletes it or its lifetime (counted
//! from completion) runs out; deleting is a run of steps (`lifetime`): purge every
//! share of the file, delete the object, release its bytes from the owner's account,
//! and finally wipe the object's own storage. Aborted uploads release their bytes too.
//!
//! **Steps.** Every storage side effect is a [`Step`] the machine emits and the shell
//! carries out and reports back ([`Session::take_step`], [`Session::on_step`]): list the
//! parts storage holds, complete the multipart upload, check whether the object exists,
//! abort, delete an object a late completion left. The step due is a function of the
//! persisted state, so a step is a committed intent: if the shell dies in the middle (or
//! its answer is lost), the next request or the alarm finds the same step due and
//! carries it out again. Each step is safe to repeat: completing twice with the same
//! parts builds the same object (a repeat that storage refuses because the upload is
//! gone is settled by checking the object), and aborting what is already aborted is a
//! no-op. Only one shell instance carries out a step at a time (`take_step` refuses a
//! second until the first reports or its deadline passes), and while one runs, nothing
//! else that could change what it acts on is accepted: the session answers `503
//! upload_busy`.
//!
//! **Retries are bounded.** A step that fails stays due, but is not tried again before
//! its backoff has passed (doubling from [`StepTiming::retry_ms`] up to
//! [`StepTiming::retry_cap_ms`]), by the alarm or by a request alike: a request that
//! comes earlier is told when to retry. After [`StepTiming::max_failures`] failures in a
//! row the session is *stalled* ([`Session::is_stalled`], `"stalled": true` in its
//! status): the alarm stops retrying, and only a request (at most once per backoff)
//! tries again. Completion never stalls: each of its steps falls back to `open`.
//!
//! **Completions that land late.** Storage may carry out a CompleteMultipartUpload whose
//! answer the shell never got, minutes later. So when completing fails without a clear
//! answer, the object is checked again with backoff ([`StepTiming::completion_checks`]
//! times) before the session is open again; and even then the session keeps the parts
//! of that completion ([`Session::pending_completion`]): storage saying later that the
//! upload is gone (ListParts, a part write, the abort) means that completion may have
//! landed, and the object is checked (and, when aborting, deleted) rather than lost.
//!
//! **Which parts exist.** Completion always lists the parts first and checks the
//! client's claim (every part, in order, each with its ETag) against that listing. The
//! storage provider decides what the listing is: a provider whose storage can list parts
//! (S3's ListParts) answers from storage, which is then the truth; one that cannot (the
//! R2 binding) answers with what this session recorded from the part writes it fenced
//! ([`Session::recorded_listing`]).
//!
//! **Fenced part writes** (providers whose part bodies pass through the worker). A
//! write begins with [`Session::begin_part`], which hands out a fence (a number never
//! used before in this session) and a lease; at most one write of a part is in flight at
//! a time. The writer reports with [`Session::finish_part`] or [`Session::fail_part`]
//! and keeps its lease alive with [`Session::renew_part`]; it stops writing once its
//! lease runs out. Stopping cannot undo a write storage is already committing, so a
//! write whose lease ran out before it reported is *lapsed*: it may still land, over a
//! newer write of the same part. A report with a fence that is no longer current never
//! records anything: storage may hold that write's bytes or the newer one's, so the
//! part's record is dropped and the newer write, if still in flight, is marked
//! overlapped and will not be recorded either: the client sends the part again. A record
//! is therefore right unless a lapsed write of its part landed after it; when storage
//! refuses a completion, exactly those records are dropped. Completion refuses to begin
//! while any write is in flight.
//!
//! Time is passed in (ms since epoch). An open session stops accepting anything at
//! `expires_at`; the alarm then moves it to `Aborting`.

mod lifetime;
mod parts;
mod share_slots;
mod snapshot;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ApiErrorCode};
use crate::ids::{FileId, OwnerTokenHash};
use crate::plan::PartPlan;
use crate::wire::{CompletedPart, PartRecord, PartUrlsRequest, UploadStatus};

pub use lifetime::{DEFAULT_FILE_TTL_MS, FileTerms, Lifetime, LifetimePolicy, Owner};
pub use parts::{PartWrite, RecordedPart, WriteGrant};
pub use share_slots::{
    MAX_SHARES_PER_FILE, PENDING_SHARE_MS, Reserve, ShareSlots, too_many_shares,
};
pub use snapshot::{RestoreError, Snapshot, Stage};
pub use steps::{ListedPart, Step, StepOutcome};

/// How long an upload stays open by default, and at most: 6 days (docs/API.md, Limits).
///
/// Deliberately shorter than the 7 days after which R2 (like S3 lifecycle rules commonly
/// do) aborts an unfinished multipart upload by itself: with equal lifetimes storage could
/// drop the parts while the session still accepts them and a completion, which would then
/// fail. The day between leaves the expiry alarm room to abort the upload (and retry)
/// while storage still knows it. A configured lifetime may be shorter, never longer.
pub const SESSION_TTL_MS: u64 = 6 * 24 * 60 * 60 * 1000;

/// How long a part write's lease lasts unless renewed: one minute. The writer renews it
/// while it streams (every third of it) and stops writing when it cannot, so a part
/// whose writer died is writable again at most this long after its last renewal.
pub const PART_LEASE_MS: u64 = 60 * 1000;
/// How long an aborted upload's records outlive the session's expiry.
pub const ABORTED_KEEP_MS: u64 = 24 * 60 * 60 * 1000;

/// `Retry-After` for a request refused because the session is busy with a step.
const BUSY_RETRY_SECS: u32 = 2;

/// How a session paces the retries of a step that failed (see the module docs). The
/// defaults are what the worker runs with; tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTiming {
    /// The wait before the first retry (and the alarm's backstop for a step whose shell
    /// died): 30 s. Each further failure doubles it.
    pub retry_ms: u64,
    /// The longest wait between two tries: 1 hour.
    pub retry_cap_ms: u64,
    /// Failures in a row after which the session is stalled: 10 (about 4 hours of
    /// retries with the defaults).
    pub max_failures: u32,
    /// Checks of the object after a completion got no clear answer, before the session
    /// is open again: 6 (about 15 minutes with the defaults), since storage may still be
    /// assembling the object. Fewer than `max_failures`, so completion never stalls.
    pub completion_checks: u32,
    /// How long a shell may take to report a step before another may take it over:
    /// 15 minutes. The worker's storage calls time out long before; this only frees a
    /// session whose shell hung.
    pub deadline_ms: u64,
}

impl Default for StepTiming {
    fn default() -> Self {
        Self {
            retry_ms: 30 * 1000,
            retry_cap_ms: 60 * 60 * 1000,
            max_failures: 10,
            completion_checks: 6,
            deadline_ms: 15 * 60 * 1000,
        }
    }
}

impl StepTiming {
    /// The wait after the `failures`-th failure in a row (1-based): `retry_ms`
    /// doubled per earlier failure, at most `retry_cap_ms`.
    pub fn backoff(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(63);
        self.retry_ms
            .saturating_mul(1u64 << doublings)
            .min(self.retry_cap_ms)
    }
}

/// Where an upload is in its life (the `state` of `GET /api/uploads/{fileId}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Parts may be uploaded; the upload may be completed or aborted.
    Open,
    /// Storage is completing the object: retry anything else shortly.
    Completing,
    /// The object exists; nothing changes any more.
    Completed,
    /// The owner (or expiry) aborted the upload, or storage lost it; storage has not
    /// confirmed yet. It will end `aborted`, never anything else.
    Aborting,
    /// The multipart upload is aborted and its parts are gone.
    Aborted,
    /// The completed file is being deleted (owner, or its expiry): every call but the
    /// owner's `DELETE` answers `410 gone`.
    Deleting,
}

/// What [`Session::request_complete`] started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteStart {
    /// The session is `completing`: carry out the steps it now has due.
    Started,
    /// Already completed with exactly these parts: answer the file record again.
    AlreadyCompleted,
}

/// The session's life, with what each stage needs to carry out its step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Open,
    /// `parts`: the client's claim while listing, then the parts with storage's ETags.
    Completing {
        stage: Completing,
        parts: Vec<CompletedPart>,
    },
    Completed {
        parts: Vec<CompletedPart>,
        /// When storage completed the object: the file's lifetime counts from it.
        completed_at: u64,
    },
    Aborting(Aborting),
    /// `released`: the bytes went back to the owner's account.
    Aborted {
        released: bool,
    },
    Deleting(Deleting),
}

/// The steps of a deletion, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deleting {
    /// Delete the object from storage.
    Object,
    /// Purge every share object of the file, one at a time.
    Shares,
    /// Release the file's bytes from the owner's account.
    Quota,
    /// Wipe this object's storage: afterwards nothing of the file remains.
    Wipe,
}

/// The steps of a completion, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completing {
    /// List the parts storage holds and check the claim against them.
    Listing,
    /// Complete the multipart upload.
    Storing,
    /// Does the object exist? Asked because of what came before.
    Checking(Check),
}

/// Why a completion checks the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Completing failed or got no answer: storage may have completed, or may still.
    Unknown,
    /// Storage refused the part list: its parts are not the recorded ones (unless this
    /// is the repeat of a completion that landed).
    Refused,
    /// Storage no longer has the upload: completed by an earlier try, or aborted.
    Gone,
}

/// The steps of an abort, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aborting {
    /// Abort the multipart upload.
    Upload,
    /// The upload was already gone and a completion may have landed: delete its object.
    Object,
}

/// One upload: its plan, the parts recorded so far, the part writes in flight and its
/// state. Build it with [`Session::new`], persist it with [`Session::snapshot`] and
/// reload it with [`Session::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    file_id: FileId,
    plan: PartPlan,
    owner_token_hash: OwnerTokenHash,
    terms: FileTerms,
    created_at: u64,
    expires_at: u64,
    phase: Phase,
    /// The shares of the file (their tokens' random parts), purged when it goes.
    shares: ShareSlots,
    recorded: BTreeMap<u32, RecordedPart>,
    writes: BTreeMap<u32, PartWrite>,
    /// `(part, fence)` of the writes whose lease ran out before they reported.
    lapsed: BTreeSet<(u32, u64)>,
    next_fence: u64,
    /// The parts of the last completion storage may still carry out (its answer was
    /// not clear and the object was not found), while the session is open or aborting.
    pending_completion: Option<Vec<CompletedPart>>,
    /// How often the step now due has failed in a row, and when it last did.
    failures: u32,
    failed_at: u64,
    timing: StepTiming,
    /// Until when a step taken by a shell is its own. Memory only, on purpose: a shell
    /// that reloads the session (after eviction) finds it free, which is how a step
    /// whose shell died is recognised as due again.
    driving: Option<u64>,
}

impl Session {
    /// A new open session, expiring `ttl_ms` after `now_ms` (see [`SESSION_TTL_MS`]).
    pub fn new(
        file_id: FileId,
        plan: PartPlan,
        owner_token_hash: OwnerTokenHash,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Self {
        Self {
            file_id,
            plan,
            owner_token_hash,
            terms: FileTerms::default(),
            created_at: now_ms,
            expires_at: now_ms.saturating_add(ttl_ms),
            phase: Phase::Open,
            shares: ShareSlots::default(),
            recorded: BTreeMap::new(),
            writes: BTreeMap::new(),
            lapsed: BTreeSet::new(),
            next_fence: 1,
            pending_completion: None,
            failures: 0,
            failed_at: 0,
            timing: StepTiming::default(),
            driving: None,
        }
    }

    /// The session retrying its steps with `timing` (not persisted: the shell sets it
    /// on every session it builds or restores).
    pub fn with_timing(mut self, timing: StepTiming) -> Self {
        self.timing = timing;
        self
    }

    /// The session with the file's owner, account and lifetime (the default terms are
    /// an anonymous owner, no account, [`DEFAULT_FILE_TTL_MS`]).
    pub fn with_terms(mut self, terms: FileTerms) -> Self {
        self.terms = terms;
        self
    }

    /// Who owns the file, whose account holds its bytes, and how long it lives.
    pub fn terms(&self) -> &FileTerms {
        &self.terms
    }

    /// The file this upload creates.
    pub fn file_id(&self) -> &FileId {
        &self.file_id
    }
    /// The part plan fixed at creation.
    pub fn plan(&self) -> &PartPlan {
        &self.plan
    }
    /// When the session was created (ms since epoch).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
    /// When an open session expires (ms since epoch).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
    /// SHA-256 of the owner token.
    pub fn owner_token_hash(&self) -> &OwnerTokenHash {
        &self.owner_token_hash
    }
    /// The next fence a part write will get.
    pub fn next_fence(&self) -> u64 {
        self.next_fence
    }

    /// Where the upload is in its life.
    pub fn state(&self) -> UploadState {
        match self.phase {
            Phase::Open => UploadState::Open,
            Phase::Completing { .. } => UploadState::Completing,
            Phase::Completed { .. } => UploadState::Completed,
            Phase::Aborting(_) => UploadState::Aborting,
            Phase::Aborted { .. } => UploadState::Aborted,
            Phase::Deleting(_) => UploadState::Deleting,
        }
    }

    /// The parts of a completed upload, in order, with storage's ETags.
    pub fn completed_parts(&self) -> Option<&[CompletedPart]> {
        match &self.phase {
            Phase::Completed { parts, .. } => Some(parts),
            _ => None,
        }
    }

    /// The parts of a completion storage may still carry out (see the module docs).
    pub fn pending_completion(&self) -> Option<&[CompletedPart]> {
        self.pending_completion.as_deref()
    }

    /// `401 unauthorized` unless the caller owns the file: `authorization` is `Bearer
    /// <the owner token>`, or `user` (a verified JWT's `sub`) is the owning user.
    pub fn check_owner(
        &self,
        authorization: Option<&str>,
        user: Option<&str>,
    ) -> Result<(), ApiError> {
        self.terms
            .owner
            .authorize(&self.owner_token_hash, authorization, user)
    }

    /// Whether the session is open but past its expiry: the alarm should abort it.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.phase == Phase::Open && now_ms >= self.expires_at
    }

    /// Refuses anything but waiting unless the session is open and not expired: `503
    /// upload_busy` while completing (it may be open again), `409 upload_not_open` for
    /// every final state (aborting ends aborted).
    fn ensure_open(&self, now_ms: u64) -> Result<(), ApiError> {
        match self.phase {
            Phase::Open if self.is_expired(now_ms) => {
                Err(ApiError::upload_not_open("the upload has expired"))
            }
            Phase::Open => Ok(()),
            Phase::Completing { .. } => Err(self.busy()),
            Phase::Completed { .. } => Err(ApiError::upload_not_open("the upload is completed")),
            Phase::Aborting(_) => Err(ApiError::upload_not_open("the upload is being aborted")),
            Phase::Aborted { .. } => Err(ApiError::upload_not_open("the upload is aborted")),
            Phase::Deleting(_) => Err(ApiError::gone()),
        }
    }

    /// The answer for a request that must wait for the step in progress.
    fn busy(&self) -> ApiError {
        match self.phase {
            Phase::Aborting(_) => ApiError::busy(
                "the upload is being aborted; retry shortly",
                BUSY_RETRY_SECS,
            ),
            Phase::Deleting(_) => ApiError::gone(),
            _ => ApiError::busy(
                "the upload is being completed; retry shortly",
                BUSY_RETRY_SECS,
            ),
        }
    }

    /// Validates a `part-urls` request against this session and answers the
    /// `(part, planned size)` pairs to sign, in request order.
    pub fn part_urls(
        &self,
        request: &PartUrlsRequest,
        now_ms: u64,
    ) -> Result<Vec<(u32, u64)>, ApiError> {
        self.ensure_open(now_ms)?;
        request.validate(self.plan.part_count())?;
        request
            .part_numbers
            .iter()
            .map(|&part| Ok((part, self.planned_size(part)?)))
            .collect()
    }

    /// Starts completing the upload with `claimed` (every part `1..=partCount` exactly
    /// once, in order: `409 parts_missing` otherwise, `400 invalid_part_number` for a
    /// number outside the plan). An open upload becomes `completing` (its steps then
    /// check the claim against storage's listing) unless a part write is in flight
    /// (`503 upload_busy`); a completed upload answers [`CompleteStart::AlreadyCompleted`]
    /// for the same parts (a retry after a lost answer) and `409 upload_not_open` for
    /// others. A refused request changes nothing.
    pub fn request_complete(
        &mut self,
        claimed: &[CompletedPart],
        now_ms: u64,
    ) -> Result<CompleteStart, ApiError> {
        match &self.phase {
            Phase::Open => {
                self.ensure_open(now_ms)?;
                self.check_claim(claimed)?;
                if let Some((part, write)) = self.write_in_flight(now_ms) {
                    return Err(ApiError::busy(
                        format!("part {part} is still being written; complete when it is done"),
                        retry_secs(write.lease_until.saturating_sub(now_ms)),
                    ));
                }
                // Every write left has outlived its lease: its writer stopped, but what
                // storage was already committing may still land. Their later reports
                // are stale.
                self.lapse_writes();
                self.enter(Phase::Completing {
                    stage: Completing::Listing,
                    parts: claimed.to_vec(),
                });
                Ok(CompleteStart::Started)
            }
            Phase::Completing { .. } => Err(self.busy()),
            Phase::Completed { parts, .. } => {
                if same_parts(parts, claimed) {
                    Ok(CompleteStart::AlreadyCompleted)
                } else {
                    Err(ApiError::upload_not_open(
                        "the upload is already completed with other parts",
                    ))
                }
            }
            Phase::Aborting(_) => Err(ApiError::upload_not_open("the upload is being aborted")),
            Phase::Aborted { .. } => Err(ApiError::upload_not_open("the upload is aborted")),
            Phase::Deleting(_) => Err(ApiError::gone()),
        }
    }

    /// The owner aborts the upload: an open one (expired or not) becomes `aborting` and
    /// forgets its parts and writes at once, and from then on the abort steps are due
    /// until storage confirms. Idempotent for an upload aborting or aborted; `503
    /// upload_busy` while completing, `409 upload_not_open` once completed.
    pub fn request_abort(&mut self) -> Result<(), ApiError> {
        match self.phase {
            Phase::Open => {
                self.commit_abort();
                Ok(())
            }
            Phase::Aborting(_) | Phase::Aborted { .. } => Ok(()),
            Phase::Completing { .. } => Err(self.busy()),
            Phase::Completed { .. } => Err(ApiError::upload_not_open("the upload is completed")),
            Phase::Deleting(_) => Err(ApiError::gone()),
        }
    }

    /// The answer to a `DELETE` once its steps ran: `Ok` (204) once aborted, else
    /// retry (another request carries the abort out, or it waits for its backoff).
    /// Releasing the bytes afterwards is the session's own business.
    pub fn abort_answer(&self, now_ms: u64) -> Result<(), ApiError> {
        match self.phase {
            Phase::Aborted { .. } => Ok(()),
            _ => Err(self.wait(now_ms)),
        }
    }

    /// Storage says it no longer has this session's multipart upload (ListParts or a
    /// part write answered "no such upload"). For an open session, a completion that got
    /// no clear answer may have landed after all: the session is completing again, with
    /// the object check due (`Ok`: the caller carries it out); without one, storage
    /// aborted the upload (a lifecycle rule, the sweep) and the session is aborted too
    /// (`409 upload_not_open`). Nothing changes in any other state.
    pub fn upload_gone(&mut self) -> Result<(), ApiError> {
        if self.phase != Phase::Open {
            return Ok(());
        }
        match self.pending_completion.clone() {
            Some(parts) => {
                self.enter(Phase::Completing {
                    stage: Completing::Checking(Check::Gone),
                    parts,
                });
                Ok(())
            }
            None => {
                self.commit_abort();
                Err(ApiError::upload_not_open(
                    "storage no longer has this upload: it is aborted",
                ))
            }
        }
    }

    /// The alarm fired: an open session past its expiry is aborted, a completed file
    /// past its lifetime is deleted (the steps follow), an aborted upload past its
    /// keeping time is wiped. Anything else is the steps' business, which the shell
    /// carries out next.
    pub fn on_alarm(&mut self, now_ms: u64) {
        if self.is_expired(now_ms) {
            self.commit_abort();
        }
        if self.file_expires_at().is_some_and(|at| now_ms >= at) {
            self.enter(self.purging());
        }
        if self.phase == (Phase::Aborted { released: true }) && now_ms >= self.wipe_aborted_at() {
            self.enter(Phase::Deleting(Deleting::Wipe));
        }
    }

    /// When an aborted upload's records are wiped: a day after the session would have
    /// expired, so that a client that comes back to it while it could still have
    /// resumed learns it was aborted (`GET` answers `aborted`), and no header, sealed
    /// metadata or owner-token hash is kept for ever.
    fn wipe_aborted_at(&self) -> u64 {
        self.expires_at.saturating_add(ABORTED_KEEP_MS)
    }

    /// When the alarm should fire next: at the expiry of an open session; while a step
    /// is due, when it may be retried (or soon, to carry out a step whose shell died),
    /// never once it is stalled; at a completed file's expiry; when an aborted upload
    /// is to be wiped.
    pub fn next_alarm(&self, now_ms: u64) -> Option<u64> {
        match self.phase {
            Phase::Open => Some(self.expires_at),
            _ if self.is_stalled() => None,
            Phase::Completing { .. }
            | Phase::Aborting(_)
            | Phase::Aborted { released: false }
            | Phase::Deleting(_) => Some(match self.retry_at() {
                Some(at) => at.max(now_ms),
                None => now_ms.saturating_add(self.timing.retry_ms),
            }),
            Phase::Completed { .. } => self.file_expires_at(),
            Phase::Aborted { released: true } => Some(self.wipe_aborted_at()),
        }
    }

    /// Whether the step due has failed [`StepTiming::max_failures`] times in a row: the
    /// alarm no longer retries it, only requests do (at most once per backoff).
    pub fn is_stalled(&self) -> bool {
        self.failures >= self.timing.max_failures && self.due_step().is_some()
    }

    /// Whether `GET /api/uploads/{fileId}` needs the parts storage holds (the
    /// [`Step::ListParts`] answer) to answer: only while open (while completing, the
    /// completion's own steps are storage's business, and their answers race it).
    pub fn status_needs_listing(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The `GET /api/uploads/{fileId}` answer, given what storage lists (ignored unless
    /// [`Session::status_needs_listing`]). Only parts usable for completion are listed:
    /// in the plan, of the planned size, once each, ascending; a part storage holds with
    /// another size is as good as missing, and sending it again replaces it. While
    /// completing, aborting or aborted nothing is listed; once completed, the parts it
    /// was completed with. ETags are quoted, whatever storage gave.
    pub fn status(&self, listed: &[ListedPart]) -> UploadStatus {
        let record = |part_number: u32, etag: &str, size: u64| PartRecord {
            part_number,
            etag: quote(etag),
            size,
        };
        let parts = match &self.phase {
            Phase::Open => {
                let mut usable: BTreeMap<u32, &ListedPart> = BTreeMap::new();
                for p in listed {
                    if self.plan.size_of_part(p.part_number) == Some(p.size) {
                        usable.insert(p.part_number, p);
                    }
                }
                usable
                    .into_values()
                    .map(|p| record(p.part_number, &p.etag, p.size))
                    .collect()
            }
            Phase::Completed { parts, .. } => parts
                .iter()
                .map(|p| {
                    let size = self.plan.size_of_part(p.part_number).unwrap_or(0);
                    record(p.part_number, &p.etag, size)
                })
                .collect(),
            Phase::Completing { .. }
            | Phase::Aborting(_)
            | Phase::Aborted { .. }
            | Phase::Deleting(_) => Vec::new(),
        };
        UploadStatus {
            state: self.state(),
            plan: self.plan.clone(),
            parts,
            expires_at: self.expires_at,
            stalled: self.is_stalled(),
        }
    }

    /// Moves to `phase`, a stage whose step (if any) has not failed yet.
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.failures = 0;
        self.failed_at = 0;
    }

    /// Open (or expired) → `Aborting`: parts and writes are forgotten at once, since
    /// nothing will ever complete with them. A pending completion is kept: if storage
    /// no longer has the upload, its object is deleted.
    fn commit_abort(&mut self) {
        self.enter(Phase::Aborting(Aborting::Upload));
        self.recorded.clear();
        self.writes.clear();
        self.lapsed.clear();
    }

    /// The planned size of `part`, or `400 invalid_part_number`.
    fn planned_size(&self, part: u32) -> Result<u64, ApiError> {
        self.plan.size_of_part(part).ok_or_else(|| {
            ApiError::invalid_part_number(format!(
                "part {part} is not in 1..={}",
                self.plan.part_count()
            ))
        })
    }

    /// The shape of a `complete` claim: every part `1..=partCount` exactly once, in
    /// order. ETags are checked against storage's listing later.
    fn check_claim(&self, claimed: &[CompletedPart]) -> Result<(), ApiError> {
        for (i, c) in claimed.iter().enumerate() {
            self.planned_size(c.part_number)?;
            let expected = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if c.part_number != expected {
                return Err(ApiError::new(
                    ApiErrorCode::PartsMissing,
                    format!(
                        "parts must be listed in order 1..={} once each; found {} at position {expected}",
                        self.plan.part_count(),
                        c.part_number
                    ),
                ));
            }
        }
        let count = self.plan.part_count();
        if claimed.len() != count as usize {
            return Err(ApiError::new(
                ApiErrorCode::PartsMissing,
                format!(
                    "part {} is missing: list all {count} parts",
                    claimed.len() + 1
                ),
            ));
        }
        Ok(())
    }
}

/// Whether two part lists name the same parts with the same ETags (quotes aside).
fn same_parts(a: &[CompletedPart], b: &[CompletedPart]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.part_number == y.part_number && unquote(&x.etag) == unquote(&y.etag))
}

/// An ETag without one pair of surrounding double quotes: some storage APIs drop them.
pub fn unquote(etag: &str) -> &str {
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

/// An ETag in double quotes, as S3 sends it and the API answers it everywhere.
pub fn quote(etag: &str) -> String {
    format!("\"{}\"", unquote(etag))
}

/// A wait of `ms` as a `Retry-After` in whole seconds, between 1 and 5: long enough not
/// to hammer, short enough that a write that ends early is not waited out in full.
fn retry_secs(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(1000).clamp(1, 5)).unwrap_or(5)
}
