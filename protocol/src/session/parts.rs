//! Fenced part writes: the rules that keep the session's record of a part equal to what
//! storage holds when part bodies pass through the worker (the `r2-binding` provider).
//!
//! The hazard: two writes of the same part (a client's retry racing its first attempt,
//! or a write whose writer died and one that replaces it) both reach storage, which
//! keeps whichever landed last; the session must never record the ETag of the other.
//! The rules, checked by the harness in `protocol/tests/session_harness`:
//!
//! - one write of a part at a time: [`Session::begin_part`] refuses a second while the
//!   first holds an unexpired lease (`503 upload_busy`), and drops the part's record
//!   (storage is about to change under it);
//! - a writer stops once its lease has run out, but storage may still commit what it
//!   already sent: a write whose lease ran out before it reported is *lapsed*
//!   ([`Session::lapsed_writes`]) until it reports, and may land after a newer write of
//!   the same part;
//! - only the current write of a part records, and only if no stale write of that part
//!   reported while it was in flight: a stale report means storage may hold either write's
//!   bytes, so the record is dropped and the current write is marked overlapped.
//!
//! So a record is what storage holds unless a lapsed write of its part landed after it;
//! a refused completion drops exactly those records (`steps.rs`).

use std::collections::{BTreeMap, BTreeSet};

use crate::api_error::{ApiError, ApiErrorCode};

use super::steps::ListedPart;
use super::{Phase, Session, retry_secs};

/// A part the session recorded: storage accepted it under `fence` with `etag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPart {
    /// The ETag storage answered, verbatim.
    pub etag: String,
    /// The part's size in bytes (always its planned size).
    pub size: u64,
    /// The fence of the write that stored it.
    pub fence: u64,
}

/// A part write in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartWrite {
    /// The write's fence: reports must carry it.
    pub fence: u64,
    /// The first millisecond at which the writer must no longer write.
    pub lease_until: u64,
    /// A stale write of the same part reported while this one was in flight: storage
    /// may hold either's bytes, so this one will not be recorded.
    pub overlapped: bool,
}

/// What a writer may do: write under `fence` until `lease_until` (then renew or stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteGrant {
    /// The fence to report with.
    pub fence: u64,
    /// When the lease runs out (ms since epoch).
    pub lease_until: u64,
}

impl Session {
    /// Begins a write of `part` (`size` bytes) with a lease of `lease_ms`: the session
    /// is open and not expired, the part is planned with that size, and no other write
    /// of it holds a lease. A write whose lease has run out is superseded (and lapsed).
    /// The part's record is dropped: storage is about to change under it.
    pub fn begin_part(
        &mut self,
        part: u32,
        size: u64,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<WriteGrant, ApiError> {
        self.ensure_open(now_ms)?;
        let planned = self.planned_size(part)?;
        if size != planned {
            return Err(ApiError::new(
                ApiErrorCode::PartSizeMismatch,
                format!("part {part} must be {planned} bytes, not {size}"),
            ));
        }
        if let Some(w) = self.writes.get(&part) {
            if now_ms < w.lease_until {
                return Err(ApiError::busy(
                    format!("part {part} is already being written; retry shortly"),
                    retry_secs(w.lease_until - now_ms),
                ));
            }
            // Superseded: its writer stopped, but storage may still commit what it sent.
            self.lapsed.insert((part, w.fence));
        }
        let grant = WriteGrant {
            fence: self.next_fence,
            lease_until: now_ms.saturating_add(lease_ms),
        };
        self.next_fence += 1;
        self.writes.insert(
            part,
            PartWrite {
                fence: grant.fence,
                lease_until: grant.lease_until,
                overlapped: false,
            },
        );
        self.recorded.remove(&part);
        Ok(grant)
    }

    /// Extends the lease of the current write of `part` under `fence` to `lease_ms` from
    /// now. `503 upload_busy` if it is no longer current, its lease already ran out, or
    /// it overlapped another (the writer then stops: its write would not be recorded);
    /// the session's own refusals if it is no longer open.
    pub fn renew_part(
        &mut self,
        part: u32,
        fence: u64,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<WriteGrant, ApiError> {
        self.ensure_open(now_ms)?;
        match self.writes.get_mut(&part) {
            Some(w) if w.fence == fence && now_ms < w.lease_until && !w.overlapped => {
                w.lease_until = now_ms.saturating_add(lease_ms);
                Ok(WriteGrant {
                    fence,
                    lease_until: w.lease_until,
                })
            }
            _ => Err(superseded(part)),
        }
    }

    /// The writer of `part` under `fence` reports that storage accepted `size` bytes
    /// with `etag`. Recorded if that write is current and did not overlap another, and
    /// the session is open; a repeated report of a recorded write is accepted again.
    /// Otherwise nothing is recorded (see the module docs) and the client is told to
    /// send the part again (`503 upload_busy`) or that the upload is over (`409`).
    pub fn finish_part(
        &mut self,
        part: u32,
        fence: u64,
        etag: String,
        size: u64,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        let Some(write) = self.end_write(part, fence) else {
            let repeated = self
                .recorded
                .get(&part)
                .is_some_and(|r| r.fence == fence && r.etag == etag);
            if !repeated {
                self.stale_report(part);
            }
            self.ensure_open(now_ms)?;
            return if repeated {
                Ok(())
            } else {
                Err(superseded(part))
            };
        };
        self.ensure_open(now_ms)?;
        if write.overlapped {
            return Err(superseded(part));
        }
        let planned = self.planned_size(part)?;
        if size != planned {
            // The writer measures exactly the planned size; anything else is a bug
            // upstream, and recording it would poison completion.
            return Err(ApiError::new(
                ApiErrorCode::PartSizeMismatch,
                format!("part {part} must be {planned} bytes, not {size}"),
            ));
        }
        self.recorded
            .insert(part, RecordedPart { etag, size, fence });
        Ok(())
    }

    /// The writer of `part` under `fence` reports that its write failed. Storage may
    /// still hold its bytes (an answer can be lost after storage accepted them), so
    /// whatever the part's record was, it is dropped; a stale report also marks the
    /// current write overlapped. `Ok` if the session is still open (the shell answers
    /// its own, retryable, error), else the session's refusal.
    pub fn fail_part(&mut self, part: u32, fence: u64, now_ms: u64) -> Result<(), ApiError> {
        if self.end_write(part, fence).is_none() {
            self.stale_report(part);
        }
        self.ensure_open(now_ms)?;
        self.recorded.remove(&part);
        Ok(())
    }

    /// The parts recorded from fenced writes.
    pub fn recorded_parts(&self) -> &BTreeMap<u32, RecordedPart> {
        &self.recorded
    }

    /// The part writes in flight (leases not yet superseded; some may have run out).
    pub fn part_writes(&self) -> &BTreeMap<u32, PartWrite> {
        &self.writes
    }

    /// `(part, fence)` of the writes whose lease ran out before they reported: storage
    /// may still commit them.
    pub fn lapsed_writes(&self) -> &BTreeSet<(u32, u64)> {
        &self.lapsed
    }

    /// The [`Step::ListParts`](super::Step::ListParts) answer of a provider whose
    /// storage cannot list parts: what this session recorded.
    pub fn recorded_listing(&self) -> Vec<ListedPart> {
        self.recorded
            .iter()
            .map(|(&part_number, r)| ListedPart {
                part_number,
                etag: r.etag.clone(),
                size: r.size,
            })
            .collect()
    }

    /// A write in flight: one whose lease has not run out, if any.
    pub(super) fn write_in_flight(&self, now_ms: u64) -> Option<(u32, &PartWrite)> {
        self.writes
            .iter()
            .find(|(_, w)| now_ms < w.lease_until)
            .map(|(&part, w)| (part, w))
    }

    /// Ends the write of `part` under `fence`: answers it if it is the current one; a
    /// lapsed write that reports has landed or failed by now, so it is lapsed no more.
    fn end_write(&mut self, part: u32, fence: u64) -> Option<PartWrite> {
        if self.writes.get(&part).is_some_and(|w| w.fence == fence) {
            self.writes.remove(&part)
        } else {
            self.lapsed.remove(&(part, fence));
            None
        }
    }

    /// Every write left has run out its lease (completion is beginning): they are
    /// lapsed, and their later reports stale.
    pub(super) fn lapse_writes(&mut self) {
        for (part, write) in std::mem::take(&mut self.writes) {
            self.lapsed.insert((part, write.fence));
        }
    }

    /// A write that is no longer current reported: storage may hold its bytes or a
    /// newer write's, so the record goes and the newer write in flight will not record.
    /// Also while completing: the completion may fail and the session be open again
    /// with its records (once completed or aborting, records no longer matter).
    fn stale_report(&mut self, part: u32) {
        if !matches!(self.phase, Phase::Open | Phase::Completing { .. }) {
            return;
        }
        self.recorded.remove(&part);
        if let Some(w) = self.writes.get_mut(&part) {
            w.overlapped = true;
        }
    }
}

/// The answer to a write that another write of the same part superseded or overlapped.
fn superseded(part: u32) -> ApiError {
    ApiError::busy(
        format!("another write of part {part} overlapped this one; send the part again"),
        1,
    )
}
