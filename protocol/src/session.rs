//! The rules of one upload session, as a pure state machine the Durable Object persists.
//!
//! The session is the single authority on which parts exist: a part counts only once
//! storage has accepted it *and* the session has recorded its ETag, and completion is
//! allowed only when the client's list matches that record exactly. That is what lets
//! a client lose any response, retry anything, reload the page and resume, and still
//! never complete an object with a missing, stale or wrongly sized part.
//!
//! ```text
//!            record_part (replaces)
//!              ┌──────┐
//!              ▼      │
//!   new ──▶  Open ────┘ ──begin_complete──▶ Completing ──mark_completed──▶ Completed
//!              │  ▲                             │               (complete again: same answer)
//!              │  └───────cancel_completing─────┘  (storage did not complete)
//!              └──abort (or expiry + abort)──▶ Aborted (parts forgotten)
//! ```
//!
//! `Completing` covers the storage call that completes the object, which the session
//! cannot hold other requests across: while in it, parts, aborts and another complete
//! are refused (`409 upload_not_open`, retry), so the parts storage is completing with
//! are the parts the session has recorded. A holder that restarts and finds the session
//! `Completing` with no completion of its own running settles it from storage: the object
//! exists ([`UploadSession::mark_completed`]) or it does not
//! ([`UploadSession::cancel_completing`], back to `Open`).
//!
//! Time is passed in (ms since epoch); an open session stops accepting anything at
//! `expires_at`, and the object's alarm then calls [`UploadSession::abort`] to clean up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ApiErrorCode};
use crate::ids::{FileId, OwnerTokenHash};
use crate::plan::PartPlan;
use crate::wire::{CompletedPart, PartRecord, PartUrlsRequest, UploadStatus};

/// How long an upload stays open: 6 days (docs/API.md, Limits).
///
/// Deliberately shorter than the 7 days after which R2 (like S3 lifecycle rules commonly
/// do) aborts an unfinished multipart upload by itself: with equal lifetimes storage could
/// drop the parts while the session still accepts them and a completion, which would then
/// fail. The day between leaves the expiry alarm room to abort the upload (and retry)
/// while storage still knows it.
pub const SESSION_TTL_MS: u64 = 6 * 24 * 60 * 60 * 1000;

/// Where an upload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Parts may be uploaded; the upload may be completed or aborted.
    Open,
    /// Storage is completing the object: nothing else may change until it answers.
    Completing,
    /// The object exists; nothing changes any more.
    Completed,
    /// The multipart upload was aborted (by its owner or on expiry).
    Aborted,
}

/// What [`UploadSession::begin_complete`] asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteStep {
    /// Complete the object in storage with these `(part, etag)` pairs (in order, ETags
    /// as storage gave them), then call [`UploadSession::mark_completed`], or
    /// [`UploadSession::cancel_completing`] if storage did not complete it.
    Store(Vec<(u32, String)>),
    /// Already completed with exactly these parts: answer the record again.
    Done,
}

/// A part storage accepted, as the session recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPart {
    /// The ETag storage answered, verbatim.
    pub etag: String,
    /// The part's size in bytes.
    pub size: u64,
}

/// One upload: its plan, the parts confirmed so far and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadSession {
    file_id: FileId,
    plan: PartPlan,
    state: UploadState,
    parts: BTreeMap<u32, StoredPart>,
    created_at: u64,
    expires_at: u64,
    owner_token_hash: OwnerTokenHash,
}

impl UploadSession {
    /// A new open session, expiring [`SESSION_TTL_MS`] after `now_ms`.
    pub fn new(
        file_id: FileId,
        plan: PartPlan,
        owner_token_hash: OwnerTokenHash,
        now_ms: u64,
    ) -> Self {
        Self::new_with_ttl(file_id, plan, owner_token_hash, now_ms, SESSION_TTL_MS)
    }

    /// A new open session, expiring `ttl_ms` after `now_ms` (a deployment may shorten
    /// [`SESSION_TTL_MS`], e.g. to stay inside its storage's own multipart expiry).
    pub fn new_with_ttl(
        file_id: FileId,
        plan: PartPlan,
        owner_token_hash: OwnerTokenHash,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Self {
        Self {
            file_id,
            plan,
            state: UploadState::Open,
            parts: BTreeMap::new(),
            created_at: now_ms,
            expires_at: now_ms.saturating_add(ttl_ms),
            owner_token_hash,
        }
    }

    /// The session without its parts. A store that keeps one row per part (so that
    /// recording a part writes one row, not the whole session) persists this as the
    /// session's own row and the parts beside it, and rebuilds the session with
    /// [`UploadSession::with_parts`].
    pub fn without_parts(&self) -> Self {
        Self {
            file_id: self.file_id.clone(),
            plan: self.plan.clone(),
            state: self.state,
            parts: BTreeMap::new(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            owner_token_hash: self.owner_token_hash,
        }
    }

    /// Rebuilds a session from its stored row (see [`UploadSession::without_parts`])
    /// and its stored part rows. Each part must fit the plan (`invalid_part_number`,
    /// `part_size_mismatch`), so a damaged store cannot smuggle in a part
    /// [`UploadSession::record_part`] would have refused; an aborted session has none.
    pub fn with_parts(
        mut self,
        parts: impl IntoIterator<Item = (u32, StoredPart)>,
    ) -> Result<Self, ApiError> {
        for (part, stored) in parts {
            let planned = self.planned_size(part)?;
            if stored.size != planned || self.state == UploadState::Aborted {
                return Err(ApiError::new(
                    ApiErrorCode::PartSizeMismatch,
                    format!("stored part {part} does not fit the session"),
                ));
            }
            self.parts.insert(part, stored);
        }
        Ok(self)
    }

    /// The file this upload creates.
    pub fn file_id(&self) -> &FileId {
        &self.file_id
    }
    /// The part plan fixed at creation.
    pub fn plan(&self) -> &PartPlan {
        &self.plan
    }
    /// Open, completed or aborted.
    pub fn state(&self) -> UploadState {
        self.state
    }
    /// The confirmed parts, by part number.
    pub fn parts(&self) -> &BTreeMap<u32, StoredPart> {
        &self.parts
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

    /// `401 unauthorized` unless `authorization` is `Bearer <the owner token>`.
    pub fn check_owner(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        self.owner_token_hash.check_bearer(authorization)
    }

    /// Whether the session is open but past its expiry: the alarm should abort it.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.state == UploadState::Open && now_ms >= self.expires_at
    }

    /// `409 upload_not_open` unless the session is open and not expired.
    pub fn ensure_open(&self, now_ms: u64) -> Result<(), ApiError> {
        match self.state {
            UploadState::Open if self.is_expired(now_ms) => {
                Err(ApiError::upload_not_open("the upload has expired"))
            }
            UploadState::Open => Ok(()),
            UploadState::Completing => Err(completing()),
            UploadState::Completed => Err(ApiError::upload_not_open("the upload is completed")),
            UploadState::Aborted => Err(ApiError::upload_not_open("the upload is aborted")),
        }
    }

    /// Checks that part `part` of `size` bytes may be uploaded now: the session is open,
    /// the part exists and `size` is its planned size. The worker calls this before it
    /// streams a body to storage, then [`UploadSession::record_part`] after.
    pub fn check_part(&self, part: u32, size: u64, now_ms: u64) -> Result<(), ApiError> {
        self.ensure_open(now_ms)?;
        let planned = self.planned_size(part)?;
        if size != planned {
            return Err(ApiError::new(
                ApiErrorCode::PartSizeMismatch,
                format!("part {part} must be {planned} bytes, not {size}"),
            ));
        }
        Ok(())
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

    /// Records that storage accepted part `part` with `etag`. Checks as
    /// [`UploadSession::check_part`]; a part sent again replaces the earlier record.
    pub fn record_part(
        &mut self,
        part: u32,
        etag: String,
        size: u64,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        self.check_part(part, size, now_ms)?;
        self.parts.insert(part, StoredPart { etag, size });
        Ok(())
    }

    /// Checks a `complete` request and, for an open upload, moves it to `Completing`.
    ///
    /// `claimed` must list every part `1..=partCount` exactly once, in order
    /// (`409 parts_missing` otherwise, `400 invalid_part_number` for a number outside
    /// the plan), each confirmed with the same ETag (`409 etag_mismatch`). ETags are
    /// compared without their surrounding quotes, since some storage APIs drop them.
    /// An open upload answers [`CompleteStep::Store`]; an already completed upload
    /// answers [`CompleteStep::Done`] for the same parts (a retry after a lost response)
    /// and `409 upload_not_open` for others; an upload being completed answers
    /// `409 upload_not_open` (the client retries), and so does an aborted or expired one.
    /// A failed check changes nothing.
    pub fn begin_complete(
        &mut self,
        claimed: &[CompletedPart],
        now_ms: u64,
    ) -> Result<CompleteStep, ApiError> {
        match self.state {
            UploadState::Open => {
                self.ensure_open(now_ms)?;
                let etags = self.check_claimed(claimed)?;
                self.state = UploadState::Completing;
                Ok(CompleteStep::Store(etags))
            }
            UploadState::Completing => Err(completing()),
            UploadState::Completed => self
                .check_claimed(claimed)
                .map(|_| CompleteStep::Done)
                .map_err(|_| {
                    ApiError::upload_not_open("the upload is already completed with other parts")
                }),
            UploadState::Aborted => Err(ApiError::upload_not_open("the upload is aborted")),
        }
    }

    /// Marks the upload completed once storage has completed the object. Idempotent;
    /// `409 upload_not_open` unless it is being completed (or already is).
    pub fn mark_completed(&mut self) -> Result<(), ApiError> {
        match self.state {
            UploadState::Completing | UploadState::Completed => {
                self.state = UploadState::Completed;
                Ok(())
            }
            UploadState::Open => Err(ApiError::upload_not_open(
                "the upload is not being completed",
            )),
            UploadState::Aborted => Err(ApiError::upload_not_open("the upload is aborted")),
        }
    }

    /// Storage did not complete the object: a session being completed is open again
    /// (with its parts, and its expiry as before). Any other state is left alone.
    pub fn cancel_completing(&mut self) {
        if self.state == UploadState::Completing {
            self.state = UploadState::Open;
        }
    }

    /// Aborts the upload and forgets its parts (the caller aborts the multipart upload
    /// in storage). Idempotent; `409 upload_not_open` for an upload that is completed or
    /// being completed.
    pub fn abort(&mut self) -> Result<(), ApiError> {
        match self.state {
            UploadState::Open | UploadState::Aborted => {
                self.state = UploadState::Aborted;
                self.parts.clear();
                Ok(())
            }
            UploadState::Completing => Err(completing()),
            UploadState::Completed => Err(ApiError::upload_not_open("the upload is completed")),
        }
    }

    /// The `GET /api/uploads/{fileId}` answer.
    pub fn status(&self) -> UploadStatus {
        UploadStatus {
            state: self.state,
            plan: self.plan.clone(),
            parts: self
                .parts
                .iter()
                .map(|(&part_number, p)| PartRecord {
                    part_number,
                    etag: p.etag.clone(),
                    size: p.size,
                })
                .collect(),
            expires_at: self.expires_at,
        }
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

    /// The completion check proper, independent of state.
    fn check_claimed(&self, claimed: &[CompletedPart]) -> Result<Vec<(u32, String)>, ApiError> {
        let mut out = Vec::with_capacity(claimed.len());
        for (expected, c) in (1u32..).zip(claimed) {
            let planned = self.planned_size(c.part_number)?;
            if c.part_number != expected {
                return Err(ApiError::new(
                    ApiErrorCode::PartsMissing,
                    format!(
                        "parts must be listed once each, in order: expected part {expected}, got {}",
                        c.part_number
                    ),
                ));
            }
            let Some(stored) = self.parts.get(&expected) else {
                return Err(ApiError::new(
                    ApiErrorCode::PartsMissing,
                    format!("part {expected} has not been confirmed; upload it again"),
                ));
            };
            if unquote(&stored.etag) != unquote(&c.etag) {
                return Err(ApiError::new(
                    ApiErrorCode::EtagMismatch,
                    format!("part {expected} was confirmed with another ETag; upload it again"),
                ));
            }
            if stored.size != planned {
                // Unreachable through record_part; guards a hand-edited store.
                return Err(ApiError::new(
                    ApiErrorCode::PartSizeMismatch,
                    format!(
                        "part {expected} has {} bytes, planned {planned}",
                        stored.size
                    ),
                ));
            }
            out.push((expected, stored.etag.clone()));
        }
        let count = self.plan.part_count();
        if out.len() != count as usize {
            return Err(ApiError::new(
                ApiErrorCode::PartsMissing,
                format!("part {} is missing: list all {count} parts", out.len() + 1),
            ));
        }
        Ok(out)
    }
}

/// The refusal of anything but waiting while storage completes the object.
fn completing() -> ApiError {
    ApiError::upload_not_open("the upload is being completed; retry shortly")
}

/// An ETag without one pair of surrounding double quotes.
fn unquote(etag: &str) -> &str {
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ids::OwnerToken;
    use crate::plan::ProviderLimits;

    const T0: u64 = 1_764_000_000_000;
    const MIB: u64 = 1 << 20;

    /// 64 MiB in 1 MiB records: 4 parts of 16 records, the last full size.
    /// 64 MiB + 1: 5 parts, the last 17 bytes.
    fn session(plaintext: u64) -> UploadSession {
        let plan = PartPlan::new(plaintext, 1 << 20, None, &ProviderLimits::S3).unwrap();
        let token = OwnerToken::from_random([3; 16]);
        UploadSession::new(FileId::from_random([1; 16]), plan, token.hash(), T0)
    }

    fn etag(n: u32) -> String {
        format!("\"etag-{n}\"")
    }

    fn upload_all(s: &mut UploadSession) -> Vec<CompletedPart> {
        let plan = s.plan().clone();
        (1..=plan.part_count())
            .map(|n| {
                s.record_part(n, etag(n), plan.size_of_part(n).unwrap(), T0 + 1)
                    .unwrap();
                CompletedPart {
                    part_number: n,
                    etag: etag(n),
                }
            })
            .collect()
    }

    fn code(r: Result<impl std::fmt::Debug, ApiError>) -> ApiErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn happy_path_and_idempotent_complete() {
        let mut s = session(64 * MIB + 1);
        assert_eq!(s.plan().part_count(), 5);
        assert_eq!(s.expires_at(), T0 + SESSION_TTL_MS);
        let claimed = upload_all(&mut s);
        // Not being completed yet: nothing to mark.
        assert_eq!(code(s.mark_completed()), ApiErrorCode::UploadNotOpen);
        let step = s.begin_complete(&claimed, T0 + 2).unwrap();
        let etags = (1..=5).map(|n| (n, etag(n))).collect::<Vec<_>>();
        assert_eq!(step, CompleteStep::Store(etags));
        assert_eq!(s.state(), UploadState::Completing);
        s.mark_completed().unwrap();
        assert_eq!(s.state(), UploadState::Completed);
        // A retry after a lost response answers the same, even after expiry.
        assert_eq!(
            s.begin_complete(&claimed, T0 + SESSION_TTL_MS * 2).unwrap(),
            CompleteStep::Done
        );
        s.mark_completed().unwrap();
        assert_eq!(s.state(), UploadState::Completed);
        // Other parts on a completed upload: not open.
        let mut other = claimed.clone();
        other[0].etag = "\"x\"".into();
        assert_eq!(
            code(s.begin_complete(&other, T0)),
            ApiErrorCode::UploadNotOpen
        );
        assert_eq!(
            code(s.begin_complete(&claimed[..4], T0)),
            ApiErrorCode::UploadNotOpen
        );
        s.cancel_completing();
        assert_eq!(s.state(), UploadState::Completed);
        // Nothing else is allowed any more.
        assert_eq!(
            code(s.record_part(1, etag(1), 16 * (MIB + 16), T0)),
            ApiErrorCode::UploadNotOpen
        );
        assert_eq!(code(s.abort()), ApiErrorCode::UploadNotOpen);
        assert!(!s.is_expired(u64::MAX));
    }

    #[test]
    fn record_part_checks_number_size_and_state() {
        let mut s = session(64 * MIB + 1);
        let full = 16 * (MIB + 16);
        assert_eq!(
            code(s.record_part(0, etag(0), full, T0)),
            ApiErrorCode::InvalidPartNumber
        );
        assert_eq!(
            code(s.record_part(6, etag(6), full, T0)),
            ApiErrorCode::InvalidPartNumber
        );
        assert_eq!(
            code(s.record_part(1, etag(1), full - 1, T0)),
            ApiErrorCode::PartSizeMismatch
        );
        assert_eq!(
            code(s.record_part(5, etag(5), full, T0)),
            ApiErrorCode::PartSizeMismatch
        );
        s.record_part(5, etag(5), 17, T0).unwrap();
        // Re-sending replaces.
        s.record_part(1, "\"old\"".into(), full, T0).unwrap();
        s.record_part(1, etag(1), full, T0).unwrap();
        assert_eq!(s.parts()[&1].etag, etag(1));
        assert_eq!(s.parts().len(), 2);
        // Expired: refused, and the alarm sees it.
        let end = s.expires_at();
        assert!(s.record_part(2, etag(2), full, end - 1).is_ok());
        assert_eq!(
            code(s.record_part(2, etag(2), full, end)),
            ApiErrorCode::UploadNotOpen
        );
        assert!(s.is_expired(end) && !s.is_expired(end - 1));
        assert_eq!(
            code(s.check_part(3, full, end)),
            ApiErrorCode::UploadNotOpen
        );
    }

    #[test]
    fn complete_reports_what_is_wrong() {
        let mut s = session(64 * MIB);
        let full = upload_all(&mut s);
        assert_eq!(full.len(), 4);
        let cases: Vec<(Vec<CompletedPart>, ApiErrorCode)> = vec![
            (vec![], ApiErrorCode::PartsMissing),
            (full[..3].to_vec(), ApiErrorCode::PartsMissing),
            (
                vec![full[0].clone(), full[2].clone(), full[3].clone()],
                ApiErrorCode::PartsMissing,
            ),
            (
                vec![
                    full[1].clone(),
                    full[0].clone(),
                    full[2].clone(),
                    full[3].clone(),
                ],
                ApiErrorCode::PartsMissing,
            ),
            ([&full[..], &full[3..]].concat(), ApiErrorCode::PartsMissing),
            (
                [
                    &full[..],
                    &[CompletedPart {
                        part_number: 5,
                        etag: etag(5),
                    }][..],
                ]
                .concat(),
                ApiErrorCode::InvalidPartNumber,
            ),
            (
                vec![CompletedPart {
                    part_number: 0,
                    etag: etag(0),
                }],
                ApiErrorCode::InvalidPartNumber,
            ),
        ];
        for (claimed, expected) in cases {
            assert_eq!(
                code(s.begin_complete(&claimed, T0)),
                expected,
                "{claimed:?}"
            );
            assert_eq!(s.state(), UploadState::Open);
        }
        let mut wrong = full.clone();
        wrong[2].etag = "\"other\"".into();
        assert_eq!(
            code(s.begin_complete(&wrong, T0)),
            ApiErrorCode::EtagMismatch
        );
        // A part never confirmed.
        let mut s2 = session(64 * MIB);
        s2.record_part(1, etag(1), 16 * (MIB + 16), T0).unwrap();
        assert_eq!(
            code(s2.begin_complete(&full, T0)),
            ApiErrorCode::PartsMissing
        );
        // Expired.
        assert_eq!(
            code(s.begin_complete(&full, s.expires_at())),
            ApiErrorCode::UploadNotOpen
        );
        assert_eq!(s.state(), UploadState::Open);
        // Quotes do not matter; storage gets the ETags as it gave them.
        let mut unquoted = full.clone();
        unquoted[1].etag = "etag-2".into();
        match s.begin_complete(&unquoted, T0).unwrap() {
            CompleteStep::Store(etags) => assert_eq!(etags[1], (2, etag(2))),
            CompleteStep::Done => panic!("not completed yet"),
        }
    }

    #[test]
    fn abort_forgets_parts_and_is_idempotent() {
        let mut s = session(64 * MIB);
        let claimed = upload_all(&mut s);
        s.abort().unwrap();
        assert_eq!(s.state(), UploadState::Aborted);
        assert!(s.parts().is_empty());
        s.abort().unwrap();
        assert_eq!(
            code(s.begin_complete(&claimed, T0)),
            ApiErrorCode::UploadNotOpen
        );
        assert_eq!(code(s.mark_completed()), ApiErrorCode::UploadNotOpen);
        s.cancel_completing();
        assert_eq!(s.state(), UploadState::Aborted);
        assert_eq!(
            code(s.record_part(1, etag(1), 16 * (MIB + 16), T0)),
            ApiErrorCode::UploadNotOpen
        );
        assert!(!s.is_expired(u64::MAX));
    }

    #[test]
    fn empty_file_has_one_16_byte_part() {
        let mut s = session(0);
        assert_eq!(
            code(s.record_part(1, etag(1), 0, T0)),
            ApiErrorCode::PartSizeMismatch
        );
        s.record_part(1, etag(1), 16, T0).unwrap();
        let done = s
            .begin_complete(
                &[CompletedPart {
                    part_number: 1,
                    etag: etag(1),
                }],
                T0,
            )
            .unwrap();
        assert_eq!(done, CompleteStep::Store(vec![(1, etag(1))]));
    }

    #[test]
    fn part_urls_and_owner_checks() {
        let s = session(64 * MIB + 1);
        let req = PartUrlsRequest {
            part_numbers: vec![5, 1],
        };
        assert_eq!(
            s.part_urls(&req, T0).unwrap(),
            vec![(5, 17), (1, 16 * (MIB + 16))]
        );
        let bad = PartUrlsRequest {
            part_numbers: vec![6],
        };
        assert_eq!(code(s.part_urls(&bad, T0)), ApiErrorCode::InvalidPartNumber);
        assert_eq!(
            code(s.part_urls(&req, s.expires_at())),
            ApiErrorCode::UploadNotOpen
        );

        let token = OwnerToken::from_random([3; 16]);
        assert!(
            s.check_owner(Some(&format!("Bearer {}", token.as_str())))
                .is_ok()
        );
        assert_eq!(code(s.check_owner(None)), ApiErrorCode::Unauthorized);
    }

    #[test]
    fn custom_ttl_and_row_per_part_storage() {
        let plan = PartPlan::new(64 * MIB + 1, 1 << 20, None, &ProviderLimits::S3).unwrap();
        let token = OwnerToken::from_random([3; 16]);
        let mut s = UploadSession::new_with_ttl(
            FileId::from_random([1; 16]),
            plan,
            token.hash(),
            T0,
            2_000,
        );
        assert_eq!(s.expires_at(), T0 + 2_000);
        assert!(s.is_expired(T0 + 2_000) && !s.is_expired(T0 + 1_999));
        s.record_part(2, etag(2), 16 * (MIB + 16), T0).unwrap();
        s.record_part(5, etag(5), 17, T0).unwrap();

        let row = s.without_parts();
        assert!(row.parts().is_empty());
        assert_eq!(row.expires_at(), s.expires_at());
        let rows: Vec<(u32, StoredPart)> = s.parts().iter().map(|(&n, p)| (n, p.clone())).collect();
        assert_eq!(row.clone().with_parts(rows).unwrap(), s);

        let wrong_size = StoredPart {
            etag: etag(1),
            size: 17,
        };
        assert_eq!(
            code(row.clone().with_parts([(1, wrong_size)])),
            ApiErrorCode::PartSizeMismatch
        );
        let beyond = StoredPart {
            etag: etag(6),
            size: 17,
        };
        assert_eq!(
            code(row.clone().with_parts([(6, beyond)])),
            ApiErrorCode::InvalidPartNumber
        );
        let mut aborted = row.clone();
        aborted.abort().unwrap();
        let part = StoredPart {
            etag: etag(5),
            size: 17,
        };
        assert_eq!(
            code(aborted.with_parts([(5, part)])),
            ApiErrorCode::PartSizeMismatch
        );
    }

    #[test]
    fn completing_freezes_the_session_until_storage_answers() {
        let mut s = session(64 * MIB + 1);
        let claimed = upload_all(&mut s);
        let before = s.clone();
        let CompleteStep::Store(etags) = s.begin_complete(&claimed, T0 + 2).unwrap() else {
            panic!("an open upload is completed in storage");
        };
        assert_eq!(s.state(), UploadState::Completing);
        assert_eq!(s.status().state, UploadState::Completing);
        // While storage completes: no part, no abort, no second completion.
        let full = 16 * (MIB + 16);
        assert_eq!(
            code(s.record_part(1, "\"new\"".into(), full, T0 + 3)),
            ApiErrorCode::UploadNotOpen
        );
        assert_eq!(
            code(s.check_part(1, full, T0 + 3)),
            ApiErrorCode::UploadNotOpen
        );
        let urls = PartUrlsRequest {
            part_numbers: vec![1],
        };
        assert_eq!(
            code(s.part_urls(&urls, T0 + 3)),
            ApiErrorCode::UploadNotOpen
        );
        assert_eq!(code(s.abort()), ApiErrorCode::UploadNotOpen);
        assert_eq!(
            code(s.begin_complete(&claimed, T0 + 3)),
            ApiErrorCode::UploadNotOpen
        );
        // Not expirable while completing: the alarm must not abort under storage.
        assert!(!s.is_expired(u64::MAX));
        assert_eq!(s.parts(), before.parts());

        // Storage failed: open again, exactly as before, and the retry completes.
        s.cancel_completing();
        assert_eq!(s, before);
        assert_eq!(
            s.begin_complete(&claimed, T0 + 4).unwrap(),
            CompleteStep::Store(etags)
        );
        s.mark_completed().unwrap();
        assert_eq!(s.state(), UploadState::Completed);
        assert_eq!(code(s.abort()), ApiErrorCode::UploadNotOpen);
    }

    #[test]
    fn completing_survives_storage() {
        // A holder that restarts finds `completing` with all its parts, and can settle
        // it either way.
        let mut s = session(64 * MIB + 1);
        let claimed = upload_all(&mut s);
        s.begin_complete(&claimed, T0).unwrap();
        let row = s.without_parts();
        let json = serde_json::to_string(&row).unwrap();
        assert!(json.contains("\"state\":\"completing\""), "{json}");
        let rows = s.parts().iter().map(|(&n, p)| (n, p.clone()));
        let back = serde_json::from_str::<UploadSession>(&json)
            .unwrap()
            .with_parts(rows)
            .unwrap();
        assert_eq!(back, s);
        let mut done = back.clone();
        done.mark_completed().unwrap();
        assert_eq!(
            done.begin_complete(&claimed, T0).unwrap(),
            CompleteStep::Done
        );
        let mut reopened = back;
        reopened.cancel_completing();
        assert_eq!(reopened.state(), UploadState::Open);
        assert!(matches!(
            reopened.begin_complete(&claimed, T0).unwrap(),
            CompleteStep::Store(_)
        ));
    }

    #[test]
    fn default_ttl_is_inside_storages_multipart_lifetime() {
        const R2_MULTIPART_LIFETIME_MS: u64 = 7 * 24 * 60 * 60 * 1000;
        assert_eq!(SESSION_TTL_MS, 6 * 24 * 60 * 60 * 1000);
        const { assert!(SESSION_TTL_MS < R2_MULTIPART_LIFETIME_MS) };
    }

    #[test]
    fn survives_storage_and_reports_status() {
        let mut s = session(64 * MIB + 1);
        s.record_part(2, etag(2), 16 * (MIB + 16), T0).unwrap();
        s.record_part(5, etag(5), 17, T0).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: UploadSession = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let status = serde_json::to_value(back.status()).unwrap();
        assert_eq!(status["state"], "open");
        assert_eq!(status["parts"][1]["partNumber"], 5);
        assert_eq!(status["parts"][1]["size"], 17);
        assert_eq!(status["expiresAt"], T0 + SESSION_TTL_MS);
    }
}
