//! Unit tests of each rule; `protocol/tests/session_harness` explores interleavings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ids::OwnerToken;
use crate::plan::ProviderLimits;

const T0: u64 = 1_764_000_000_000;
const MIB: u64 = 1 << 20;
const LEASE: u64 = PART_LEASE_MS;
/// When steps are taken and reported in tests that do not look at time.
const NOW: u64 = T0 + 100;
/// The default wait before a step is retried.
const RETRY: u64 = 30_000;
/// 64 MiB + 1 in 1 MiB records: 5 parts, 4 of 16 records, the last 17 bytes.
const FULL: u64 = 16 * (MIB + 16);

fn session(plaintext: u64) -> Session {
    let plan = PartPlan::new(plaintext, 1 << 20, None, &ProviderLimits::S3).unwrap();
    let token = OwnerToken::from_random([3; 16]);
    Session::new(
        FileId::from_bytes([1; 24]),
        plan,
        token.hash(),
        T0,
        SESSION_TTL_MS,
    )
}

fn etag(n: u32) -> String {
    format!("\"etag-{n}\"")
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ApiErrorCode {
    r.unwrap_err().code
}

/// Writes part `n` through the fence and records it.
fn write(s: &mut Session, n: u32, now: u64) -> CompletedPart {
    let size = s.plan().size_of_part(n).unwrap();
    let grant = s.begin_part(n, size, now, LEASE).unwrap();
    s.finish_part(n, grant.fence, etag(n), size, now).unwrap();
    CompletedPart {
        part_number: n,
        etag: etag(n),
    }
}

fn write_all(s: &mut Session) -> Vec<CompletedPart> {
    (1..=s.plan().part_count())
        .map(|n| write(s, n, T0 + 1))
        .collect()
}

/// Carries out every due step at `now` against a storage that lists what the session
/// recorded and answers `complete` with `outcome`; answers the last step's result.
fn drive_at(
    s: &mut Session,
    complete: StepOutcome,
    exists: bool,
    now: u64,
) -> Result<(), ApiError> {
    while let Some(step) = s.take_step(now)? {
        let outcome = match step {
            Step::ListParts => StepOutcome::Listed(s.recorded_listing()),
            Step::Complete(_) => complete.clone(),
            Step::CheckObject => StepOutcome::Exists(exists),
            Step::Abort => StepOutcome::Aborted,
            Step::DeleteObject => StepOutcome::Deleted,
            Step::PurgeShare(_) => StepOutcome::Purged,
            Step::ReleaseQuota => StepOutcome::Released,
            Step::Wipe => return Ok(()),
        };
        s.on_step(outcome, now)?;
    }
    Ok(())
}

fn drive(s: &mut Session, complete: StepOutcome, exists: bool) -> Result<(), ApiError> {
    drive_at(s, complete, exists, NOW)
}

#[test]
fn happy_path_and_idempotent_complete() {
    let mut s = session(64 * MIB + 1);
    assert_eq!(s.plan().part_count(), 5);
    assert_eq!(s.next_alarm(T0), Some(T0 + SESSION_TTL_MS));
    let claimed = write_all(&mut s);
    assert_eq!(
        s.request_complete(&claimed, T0 + 2),
        Ok(CompleteStart::Started)
    );
    assert_eq!(s.state(), UploadState::Completing);
    assert_eq!(s.next_alarm(T0 + 2), Some(T0 + 2 + RETRY));
    assert_eq!(s.take_step(NOW), Ok(Some(Step::ListParts)));
    // A second caller finds the step taken.
    assert_eq!(code(s.take_step(NOW)), ApiErrorCode::UploadBusy);
    s.on_step(StepOutcome::Listed(s.recorded_listing()), NOW)
        .unwrap();
    assert_eq!(s.take_step(NOW), Ok(Some(Step::Complete(claimed.clone()))));
    s.on_step(StepOutcome::Completed, NOW).unwrap();
    assert_eq!(s.state(), UploadState::Completed);
    assert_eq!(s.take_step(NOW), Ok(None));
    // The next alarm is the file's expiry, counted from the completion.
    assert_eq!(s.file_expires_at(), Some(NOW + DEFAULT_FILE_TTL_MS));
    assert_eq!(s.next_alarm(T0), s.file_expires_at());
    assert_eq!(s.completed_parts(), Some(&claimed[..]));
    // A retry after a lost answer gets the record again, even after expiry; quotes
    // do not matter.
    let mut unquoted = claimed.clone();
    unquoted[0].etag = "etag-1".into();
    assert_eq!(
        s.request_complete(&unquoted, T0 + SESSION_TTL_MS * 2),
        Ok(CompleteStart::AlreadyCompleted)
    );
    // Other parts: final.
    let mut other = claimed.clone();
    other[0].etag = "\"x\"".into();
    assert_eq!(
        code(s.request_complete(&other, T0)),
        ApiErrorCode::UploadNotOpen
    );
    // Nothing else is allowed any more.
    assert_eq!(
        code(s.begin_part(1, FULL, T0, LEASE)),
        ApiErrorCode::UploadNotOpen
    );
    assert_eq!(code(s.request_abort()), ApiErrorCode::UploadNotOpen);
    assert!(!s.is_expired(u64::MAX));
    let status = s.status(&[]);
    assert_eq!(status.state, UploadState::Completed);
    assert_eq!(status.parts.len(), 5);
    assert_eq!(status.parts[4].size, 17);
}

#[test]
fn complete_claims_are_checked_for_shape_then_against_the_listing() {
    let mut s = session(64 * MIB);
    let full = write_all(&mut s);
    assert_eq!(full.len(), 4);
    let cp = |n: u32| CompletedPart {
        part_number: n,
        etag: etag(n),
    };
    for (claimed, expected) in [
        (vec![], ApiErrorCode::PartsMissing),
        (full[..3].to_vec(), ApiErrorCode::PartsMissing),
        (vec![cp(1), cp(3), cp(4)], ApiErrorCode::PartsMissing),
        (vec![cp(2), cp(1), cp(3), cp(4)], ApiErrorCode::PartsMissing),
        ([&full[..], &full[3..]].concat(), ApiErrorCode::PartsMissing),
        (
            [&full[..], &[cp(5)][..]].concat(),
            ApiErrorCode::InvalidPartNumber,
        ),
        (vec![cp(0)], ApiErrorCode::InvalidPartNumber),
    ] {
        assert_eq!(
            code(s.request_complete(&claimed, T0)),
            expected,
            "{claimed:?}"
        );
        assert_eq!(s.state(), UploadState::Open);
    }
    // A wrong ETag is found by the listing: back to open, nothing lost.
    let mut wrong = full.clone();
    wrong[2].etag = "\"other\"".into();
    s.request_complete(&wrong, T0).unwrap();
    assert_eq!(
        code(drive(&mut s, StepOutcome::Completed, true)),
        ApiErrorCode::EtagMismatch
    );
    assert_eq!(s.state(), UploadState::Open);
    assert_eq!(s.recorded_parts().len(), 4);
    // A part storage does not hold (or holds with another size) is missing.
    let mut s2 = session(64 * MIB);
    write(&mut s2, 1, T0);
    s2.request_complete(&full, T0).unwrap();
    assert_eq!(s2.take_step(NOW), Ok(Some(Step::ListParts)));
    let mut listed = s2.recorded_listing();
    listed.extend((2..=4).map(|n| ListedPart {
        part_number: n,
        etag: etag(n),
        size: if n == 3 { FULL - 1 } else { FULL },
    }));
    let err = s2.on_step(StepOutcome::Listed(listed), NOW).unwrap_err();
    assert_eq!(err.code, ApiErrorCode::PartsMissing);
    assert!(err.message.contains("part 3"), "{}", err.message);
    // Expired.
    assert_eq!(
        code(s.request_complete(&full, s.expires_at())),
        ApiErrorCode::UploadNotOpen
    );
    // Storage gets the ETags as storage gave them, whatever the claim's quotes.
    let mut unquoted = full.clone();
    unquoted[1].etag = "etag-2".into();
    s.request_complete(&unquoted, T0).unwrap();
    s.take_step(NOW).unwrap();
    s.on_step(StepOutcome::Listed(s.recorded_listing()), NOW)
        .unwrap();
    match s.take_step(NOW).unwrap() {
        Some(Step::Complete(parts)) => assert_eq!(parts[1].etag, etag(2)),
        other => panic!("expected the complete step, got {other:?}"),
    }
}

#[test]
fn completing_makes_everything_else_wait_and_settles_from_storage() {
    let mut s = session(64 * MIB + 1);
    let claimed = write_all(&mut s);
    s.request_complete(&claimed, T0 + 2).unwrap();
    // While completing: parts, part URLs, aborts and completions wait (503, not 409).
    let urls = PartUrlsRequest {
        part_numbers: vec![1],
    };
    for err in [
        s.begin_part(1, FULL, T0, LEASE).unwrap_err(),
        s.part_urls(&urls, T0).unwrap_err(),
        s.request_abort().unwrap_err(),
        s.request_complete(&claimed, T0).unwrap_err(),
    ] {
        assert_eq!(
            (err.code, err.retry_after),
            (ApiErrorCode::UploadBusy, Some(2))
        );
    }
    // Not expirable: the alarm must not abort under storage.
    s.on_alarm(u64::MAX);
    assert_eq!(s.state(), UploadState::Completing);

    // Storage failed and the object does not exist: it may still be assembled, so the
    // object is checked again with backoff (requests meanwhile are told when), then the
    // session is open again, parts kept, the completion remembered.
    let before = s.recorded_parts().clone();
    let parts = drive_to_check(&mut s, StepOutcome::Failed);
    let reopened = checks_until_open(&mut s, NOW);
    assert_eq!(code(reopened), ApiErrorCode::StorageError);
    assert_eq!(s.state(), UploadState::Open);
    assert_eq!(s.recorded_parts(), &before);
    assert_eq!(s.pending_completion(), Some(&parts[..]));

    // Storage failed (or its answer was lost) but the object exists: completed.
    s.request_complete(&claimed, T0 + 3).unwrap();
    drive(&mut s, StepOutcome::Failed, true).unwrap();
    assert_eq!(s.state(), UploadState::Completed);
    assert_eq!(s.pending_completion(), None);
}

/// Lists (from the record) and answers the complete step with `complete`: answers the
/// parts sent to storage. The session is then checking the object.
fn drive_to_check(s: &mut Session, complete: StepOutcome) -> Vec<CompletedPart> {
    assert_eq!(s.take_step(NOW), Ok(Some(Step::ListParts)));
    s.on_step(StepOutcome::Listed(s.recorded_listing()), NOW)
        .unwrap();
    let Ok(Some(Step::Complete(parts))) = s.take_step(NOW) else {
        panic!("the complete step is due");
    };
    s.on_step(complete, NOW).unwrap();
    assert_eq!(s.due_step(), Some(Step::CheckObject));
    parts
}

/// Answers every check "no object" as soon as it may be tried again, from `now`, until
/// the session stops checking; answers the last check's answer. Requests in between are
/// told to wait until the next try, which comes after a doubled backoff.
fn checks_until_open(s: &mut Session, mut now: u64) -> Result<(), ApiError> {
    let mut waits = Vec::new();
    for _ in 0..StepTiming::default().completion_checks {
        assert_eq!(s.take_step(now), Ok(Some(Step::CheckObject)));
        match s.on_step(StepOutcome::Exists(false), now) {
            Err(e) if e.code == ApiErrorCode::UploadBusy => {
                let at = s.retry_at().unwrap();
                waits.push(at - now);
                assert_eq!(s.next_alarm(now), Some(at));
                let early = s.take_step(at - 1).unwrap_err();
                assert_eq!(early.retry_after, Some(1), "{}", early.message);
                now = at;
            }
            done => {
                assert_eq!(
                    waits,
                    [RETRY, 2 * RETRY, 4 * RETRY, 8 * RETRY, 16 * RETRY],
                    "the checks back off"
                );
                return done;
            }
        }
    }
    panic!("still checking after {} checks", waits.len() + 1);
}

#[test]
fn a_check_that_fails_waits_and_a_refusal_drops_the_record() {
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    s.request_complete(&claimed, T0).unwrap();
    drive_to_check(&mut s, StepOutcome::Refused);
    assert_eq!(s.take_step(NOW), Ok(Some(Step::CheckObject)));
    let err = s.on_step(StepOutcome::Failed, NOW).unwrap_err();
    assert_eq!(
        (err.code, err.retry_after),
        (ApiErrorCode::UploadBusy, Some(30))
    );
    assert_eq!(s.due_step(), Some(Step::CheckObject));
    s.take_step(NOW + RETRY).unwrap();
    assert_eq!(
        code(s.on_step(StepOutcome::Exists(false), NOW + RETRY)),
        ApiErrorCode::PartsMissing
    );
    assert_eq!(s.state(), UploadState::Open);
    // No write lapsed: no record can be told right from wrong.
    assert!(s.recorded_parts().is_empty());
    assert_eq!(s.pending_completion(), None);
}

#[test]
fn a_refusal_drops_only_the_records_a_lapsed_write_may_have_overtaken() {
    let mut s = session(64 * MIB);
    let mut claimed = write_all(&mut s);
    // A rewrite of part 2 loses its lease (its writer hung while storage committed),
    // and is superseded by another that records.
    let hung = s.begin_part(2, FULL, T0 + 10, LEASE).unwrap();
    let later = T0 + 10 + LEASE;
    claimed[1] = write(&mut s, 2, later);
    assert_eq!(
        s.lapsed_writes().iter().copied().collect::<Vec<_>>(),
        [(2, hung.fence)]
    );
    s.request_complete(&claimed, later + 1).unwrap();
    drive_to_check(&mut s, StepOutcome::Refused);
    s.take_step(NOW).unwrap();
    assert_eq!(
        code(s.on_step(StepOutcome::Exists(false), NOW)),
        ApiErrorCode::PartsMissing
    );
    let kept: Vec<u32> = s.recorded_parts().keys().copied().collect();
    assert_eq!(kept, [1, 3, 4], "only part 2 is sent again");
    // The hung write reports at last: it can land no more, so it lapses no more.
    s.fail_part(2, hung.fence, later + 2).unwrap();
    assert!(s.lapsed_writes().is_empty());
}

#[test]
fn outcomes_must_answer_the_step_taken() {
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    // No step taken.
    assert_eq!(
        code(s.on_step(StepOutcome::Aborted, NOW)),
        ApiErrorCode::Internal
    );
    s.request_complete(&claimed, T0).unwrap();
    s.take_step(NOW).unwrap();
    // Not an answer to ListParts: nothing changes, the step is due again.
    assert_eq!(
        code(s.on_step(StepOutcome::Completed, NOW)),
        ApiErrorCode::Internal
    );
    assert_eq!(s.due_step(), Some(Step::ListParts));
    assert!(!s.is_driving(NOW));
}

#[test]
fn abort_is_a_committed_intent() {
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    let grant = s.begin_part(2, FULL, T0 + 5, LEASE).unwrap();
    s.request_abort().unwrap();
    assert_eq!(s.state(), UploadState::Aborting);
    assert!(s.recorded_parts().is_empty() && s.part_writes().is_empty());
    // Nothing else is accepted meanwhile, and it is final.
    assert_eq!(
        code(s.request_complete(&claimed, T0)),
        ApiErrorCode::UploadNotOpen
    );
    assert_eq!(
        code(s.begin_part(1, FULL, T0, LEASE)),
        ApiErrorCode::UploadNotOpen
    );
    // The write in flight lands after: not recorded, told it is over.
    assert_eq!(
        code(s.finish_part(2, grant.fence, etag(2), FULL, T0 + 6)),
        ApiErrorCode::UploadNotOpen
    );
    // Storage fails: still aborting, the step is due again (next DELETE or alarm),
    // after its backoff; a DELETE before then is told when.
    assert_eq!(s.take_step(NOW), Ok(Some(Step::Abort)));
    assert_eq!(
        code(s.on_step(StepOutcome::Failed, NOW)),
        ApiErrorCode::StorageError
    );
    assert_eq!(s.state(), UploadState::Aborting);
    assert_eq!(s.next_alarm(NOW + 7), Some(NOW + RETRY));
    s.request_abort().unwrap();
    let wait = s.take_step(NOW + 1_000).unwrap_err();
    assert_eq!(
        (wait.code, wait.retry_after),
        (ApiErrorCode::UploadBusy, Some(29))
    );
    assert_eq!(
        s.abort_answer(NOW + 1_000).unwrap_err().retry_after,
        Some(29)
    );
    drive_at(&mut s, StepOutcome::Completed, false, NOW + RETRY).unwrap();
    assert_eq!(s.state(), UploadState::Aborted);
    assert_eq!(s.abort_answer(NOW + RETRY), Ok(()));
    // The only alarm left wipes the aborted upload's records, long after.
    assert_eq!(
        s.next_alarm(T0),
        Some(T0 + SESSION_TTL_MS + ABORTED_KEEP_MS)
    );
    s.request_abort().unwrap();
    assert!(s.status(&s.recorded_listing()).parts.is_empty());
}

#[test]
fn the_alarm_aborts_an_expired_upload() {
    let mut s = session(64 * MIB);
    write(&mut s, 1, T0);
    let end = s.expires_at();
    s.on_alarm(end - 1);
    assert_eq!(s.state(), UploadState::Open);
    assert_eq!(
        code(s.begin_part(2, FULL, end, LEASE)),
        ApiErrorCode::UploadNotOpen
    );
    s.on_alarm(end);
    assert_eq!(s.state(), UploadState::Aborting);
    assert_eq!(s.take_step(NOW), Ok(Some(Step::Abort)));
}

#[test]
fn one_write_of_a_part_at_a_time_within_its_lease() {
    let mut s = session(64 * MIB + 1);
    let first = s.begin_part(3, FULL, T0, LEASE).unwrap();
    assert_eq!(first.lease_until, T0 + LEASE);
    let err = s.begin_part(3, FULL, T0 + 1_000, LEASE).unwrap_err();
    assert_eq!(
        (err.code, err.retry_after),
        (ApiErrorCode::UploadBusy, Some(5))
    );
    let err = s.begin_part(3, FULL, T0 + LEASE - 1, LEASE).unwrap_err();
    assert_eq!(err.retry_after, Some(1));
    // Other parts are independent; a wrong size or number is refused.
    s.begin_part(4, FULL, T0, LEASE).unwrap();
    assert_eq!(
        code(s.begin_part(5, FULL, T0, LEASE)),
        ApiErrorCode::PartSizeMismatch
    );
    assert_eq!(
        code(s.begin_part(6, 17, T0, LEASE)),
        ApiErrorCode::InvalidPartNumber
    );
    // Renewal keeps the lease alive.
    let renewed = s.renew_part(3, first.fence, T0 + 50_000, LEASE).unwrap();
    assert_eq!(renewed.lease_until, T0 + 50_000 + LEASE);
    assert_eq!(
        code(s.begin_part(3, FULL, T0 + LEASE + 1, LEASE)),
        ApiErrorCode::UploadBusy
    );
    // Completion waits for writes in flight.
    s.finish_part(4, 2, etag(4), FULL, T0 + 1).unwrap();
    let claimed: Vec<_> = (1..=5)
        .map(|n| CompletedPart {
            part_number: n,
            etag: etag(n),
        })
        .collect();
    let err = s.request_complete(&claimed, T0 + 2).unwrap_err();
    assert_eq!(err.code, ApiErrorCode::UploadBusy);
    assert!(err.message.contains("part 3"), "{}", err.message);
    // The writer finishes: recorded.
    s.finish_part(3, first.fence, etag(3), FULL, T0 + 3)
        .unwrap();
    assert_eq!(s.recorded_parts()[&3].fence, first.fence);
    // Its report, repeated (a lost answer), is accepted again; a different one is not.
    s.finish_part(3, first.fence, etag(3), FULL, T0 + 4)
        .unwrap();
    assert_eq!(s.recorded_parts()[&3].etag, etag(3));
}

#[test]
fn a_dead_writer_is_superseded_and_its_late_report_never_records() {
    let mut s = session(64 * MIB + 1);
    let dead = s.begin_part(2, FULL, T0, LEASE).unwrap();
    // Lease over: a new write of the part supersedes it.
    let live = s.begin_part(2, FULL, T0 + LEASE, LEASE).unwrap();
    assert!(live.fence > dead.fence);
    // The dead writer cannot renew.
    assert_eq!(
        code(s.renew_part(2, dead.fence, T0 + LEASE + 1, LEASE)),
        ApiErrorCode::UploadBusy
    );
    // The superseded write reports after all: storage may hold either write, so no
    // record, and the live write is overlapped and will not record either.
    assert_eq!(
        code(s.finish_part(2, dead.fence, "\"old\"".into(), FULL, T0 + LEASE + 2)),
        ApiErrorCode::UploadBusy
    );
    assert!(s.part_writes()[&2].overlapped);
    assert_eq!(
        code(s.renew_part(2, live.fence, T0 + LEASE + 3, LEASE)),
        ApiErrorCode::UploadBusy
    );
    assert_eq!(
        code(s.finish_part(2, live.fence, etag(2), FULL, T0 + LEASE + 4)),
        ApiErrorCode::UploadBusy
    );
    assert!(s.recorded_parts().is_empty() && s.part_writes().is_empty());
    // Sent again, it records.
    let again = s.begin_part(2, FULL, T0 + LEASE + 5, LEASE).unwrap();
    s.finish_part(2, again.fence, etag(2), FULL, T0 + LEASE + 6)
        .unwrap();
    // A superseded write reporting after the newer one recorded drops that record.
    let late = s.begin_part(1, FULL, T0 + LEASE + 7, LEASE).unwrap();
    let newer = s.begin_part(1, FULL, T0 + 2 * LEASE + 7, LEASE).unwrap();
    s.finish_part(1, newer.fence, etag(1), FULL, T0 + 2 * LEASE + 8)
        .unwrap();
    s.fail_part(1, late.fence, T0 + 2 * LEASE + 9).unwrap();
    assert!(!s.recorded_parts().contains_key(&1));
    assert!(s.recorded_parts().contains_key(&2));
}

#[test]
fn a_failed_write_drops_the_record_it_may_have_replaced() {
    let mut s = session(64 * MIB + 1);
    write(&mut s, 1, T0);
    let grant = s.begin_part(1, FULL, T0 + 1, LEASE).unwrap();
    assert!(
        !s.recorded_parts().contains_key(&1),
        "a part being written is not confirmed"
    );
    s.fail_part(1, grant.fence, T0 + 2).unwrap();
    assert!(s.part_writes().is_empty() && s.recorded_parts().is_empty());
    // The writer's report of a size other than planned is refused, not recorded.
    let grant = s.begin_part(1, FULL, T0 + 3, LEASE).unwrap();
    assert_eq!(
        code(s.finish_part(1, grant.fence, etag(1), FULL - 1, T0 + 4)),
        ApiErrorCode::PartSizeMismatch
    );
    assert!(s.recorded_parts().is_empty());
    // An expired session records nothing.
    let grant = s.begin_part(2, FULL, T0 + 5, LEASE).unwrap();
    assert_eq!(
        code(s.finish_part(2, grant.fence, etag(2), FULL, s.expires_at())),
        ApiErrorCode::UploadNotOpen
    );
}

#[test]
fn completion_forgets_writes_whose_lease_ran_out() {
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    let dead = s.begin_part(4, FULL, T0 + 10, LEASE).unwrap();
    let mut claim = claimed.clone();
    claim[3].etag = etag(4);
    // The dead write dropped part 4's record: completion finds it missing.
    s.request_complete(&claim, T0 + 10 + LEASE).unwrap();
    assert!(s.part_writes().is_empty());
    assert_eq!(
        code(drive(&mut s, StepOutcome::Completed, false)),
        ApiErrorCode::PartsMissing
    );
    // Its late report changes nothing and is told to send again.
    assert_eq!(
        code(s.finish_part(4, dead.fence, etag(4), FULL, T0 + 11 + LEASE)),
        ApiErrorCode::UploadBusy
    );
    assert!(!s.recorded_parts().contains_key(&4));
}

#[test]
fn part_urls_status_and_owner_checks() {
    let mut s = session(64 * MIB + 1);
    let req = PartUrlsRequest {
        part_numbers: vec![5, 1],
    };
    assert_eq!(s.part_urls(&req, T0).unwrap(), vec![(5, 17), (1, FULL)]);
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
        s.check_owner(Some(&format!("bearer {}", token.as_str())), None)
            .is_ok()
    );
    assert_eq!(code(s.check_owner(None, None)), ApiErrorCode::Unauthorized);

    // Status lists what storage holds that is usable: planned size, once, ascending.
    write(&mut s, 5, T0);
    let listed = vec![
        ListedPart {
            part_number: 2,
            etag: etag(2),
            size: FULL,
        },
        ListedPart {
            part_number: 1,
            etag: etag(1),
            size: FULL - 1,
        },
        ListedPart {
            part_number: 9,
            etag: etag(9),
            size: FULL,
        },
        ListedPart {
            part_number: 5,
            etag: etag(5),
            size: 17,
        },
    ];
    assert!(s.status_needs_listing());
    let status = serde_json::to_value(s.status(&listed)).unwrap();
    assert_eq!(status["state"], "open");
    let numbers: Vec<u64> = status["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 5]);
    assert_eq!(status["expiresAt"], T0 + SESSION_TTL_MS);
}

#[test]
fn snapshots_round_trip_and_restore_checks_invariants() {
    let mut s = session(64 * MIB + 1);
    let claimed = write_all(&mut s);
    s.begin_part(2, FULL, T0 + 9, LEASE).unwrap();
    let back = Session::restore(s.snapshot()).unwrap();
    assert_eq!(back, s);

    // A completing session whose shell died: the step is due again, not taken.
    let mut completing = session(64 * MIB + 1);
    write_all(&mut completing);
    completing.request_complete(&claimed, T0 + 2).unwrap();
    completing.take_step(NOW).unwrap();
    completing
        .on_step(StepOutcome::Listed(completing.recorded_listing()), NOW)
        .unwrap();
    assert_eq!(
        completing.take_step(NOW),
        Ok(Some(Step::Complete(claimed.clone())))
    );
    let snap = completing.snapshot();
    assert_eq!(snap.stage, Stage::Storing);
    let mut reloaded = Session::restore(snap.clone()).unwrap();
    assert!(!reloaded.is_driving(NOW));
    assert_eq!(
        reloaded.take_step(NOW),
        Ok(Some(Step::Complete(claimed.clone())))
    );
    for stage in Stage::ALL {
        assert_eq!(Stage::parse(stage.as_str()), Some(stage));
    }
    assert_eq!(Stage::parse("nope"), None);

    let good = s.snapshot();
    let broken = [
        (
            Snapshot {
                recorded: vec![(
                    1,
                    RecordedPart {
                        etag: etag(1),
                        size: 17,
                        fence: 1,
                    },
                )],
                ..good.clone()
            },
            RestoreError::PartOutsidePlan(1),
        ),
        (
            Snapshot {
                recorded: vec![(
                    6,
                    RecordedPart {
                        etag: etag(6),
                        size: 17,
                        fence: 1,
                    },
                )],
                ..good.clone()
            },
            RestoreError::PartOutsidePlan(6),
        ),
        (
            Snapshot {
                next_fence: 1,
                ..good.clone()
            },
            RestoreError::FenceNotIssued,
        ),
        (
            Snapshot {
                stage: Stage::Completed,
                ..good.clone()
            },
            RestoreError::Completion,
        ),
        (
            Snapshot {
                completion: claimed.clone(),
                ..good.clone()
            },
            RestoreError::Completion,
        ),
        (
            Snapshot {
                stage: Stage::Storing,
                completion: claimed[1..].to_vec(),
                ..good.clone()
            },
            RestoreError::Completion,
        ),
        (
            Snapshot {
                stage: Stage::Aborted,
                ..good.clone()
            },
            RestoreError::PartsAfterAbort,
        ),
        (
            Snapshot {
                recorded: [good.recorded.clone(), good.recorded[..1].to_vec()].concat(),
                ..good.clone()
            },
            RestoreError::DuplicatePart(1),
        ),
    ];
    for (snap, expected) in broken {
        assert_eq!(Session::restore(snap), Err(expected));
    }
}

#[test]
fn empty_file_has_one_16_byte_part() {
    let mut s = session(0);
    assert_eq!(
        code(s.begin_part(1, 0, T0, LEASE)),
        ApiErrorCode::PartSizeMismatch
    );
    let part = write(&mut s, 1, T0);
    s.request_complete(&[part], T0).unwrap();
    drive(&mut s, StepOutcome::Completed, true).unwrap();
    assert_eq!(s.state(), UploadState::Completed);
}

/// A session whose completion got no clear answer and whose object checks ran out:
/// open again, remembering the parts it asked storage to complete with.
fn with_pending_completion() -> (Session, Vec<CompletedPart>, Vec<CompletedPart>) {
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    s.request_complete(&claimed, T0 + 2).unwrap();
    let sent = drive_to_check(&mut s, StepOutcome::Failed);
    assert_eq!(
        code(checks_until_open(&mut s, NOW)),
        ApiErrorCode::StorageError
    );
    (s, claimed, sent)
}

#[test]
fn a_completion_that_lands_after_the_checks_is_found_when_storage_says_the_upload_is_gone() {
    // The review's bug: storage finished the completion after the session gave up on
    // it; every later complete then failed at ListParts for good.
    let (mut s, claimed, sent) = with_pending_completion();
    let later = NOW + 60 * 60 * 1000;
    s.request_complete(&claimed, later).unwrap();
    assert_eq!(s.take_step(later), Ok(Some(Step::ListParts)));
    // "No such upload": the object is checked, not a 502 forever.
    s.on_step(StepOutcome::Gone, later).unwrap();
    assert_eq!(s.state(), UploadState::Completing);
    assert_eq!(s.take_step(later), Ok(Some(Step::CheckObject)));
    s.on_step(StepOutcome::Exists(true), later).unwrap();
    assert_eq!(s.completed_parts(), Some(&sent[..]));
    assert_eq!(
        s.request_complete(&claimed, later),
        Ok(CompleteStart::AlreadyCompleted)
    );

    // The same news from a status listing or a part write: the same check.
    let (mut s, _, sent) = with_pending_completion();
    s.upload_gone().unwrap();
    assert_eq!(s.due_step(), Some(Step::CheckObject));
    drive_at(&mut s, StepOutcome::Failed, true, later).unwrap();
    assert_eq!(s.completed_parts(), Some(&sent[..]));
}

#[test]
fn an_upload_storage_lost_without_a_completion_is_aborted() {
    // A lifecycle rule or the sweep aborted it: nothing can complete any more.
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    s.request_complete(&claimed, T0 + 2).unwrap();
    s.take_step(NOW).unwrap();
    assert_eq!(
        code(s.on_step(StepOutcome::Gone, NOW)),
        ApiErrorCode::UploadNotOpen
    );
    assert_eq!(s.state(), UploadState::Aborting);
    assert!(s.recorded_parts().is_empty());
    // Aborting what is gone: done, and nothing to delete.
    assert_eq!(s.take_step(NOW), Ok(Some(Step::Abort)));
    s.on_step(StepOutcome::Gone, NOW).unwrap();
    assert_eq!(s.state(), UploadState::Aborted);

    // Gone at completion, and no object either (an abort by storage mid-completion).
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    s.request_complete(&claimed, T0 + 2).unwrap();
    drive_to_check(&mut s, StepOutcome::Gone);
    s.take_step(NOW).unwrap();
    assert_eq!(
        code(s.on_step(StepOutcome::Exists(false), NOW)),
        ApiErrorCode::UploadNotOpen
    );
    assert_eq!(s.due_step(), Some(Step::Abort));

    // A part write hears it first.
    let mut s = session(64 * MIB);
    write_all(&mut s);
    assert_eq!(code(s.upload_gone()), ApiErrorCode::UploadNotOpen);
    assert_eq!(s.state(), UploadState::Aborting);
    // Only an open session listens.
    s.upload_gone().unwrap();
    assert_eq!(s.due_step(), Some(Step::Abort));
}

#[test]
fn aborting_deletes_the_object_a_late_completion_left() {
    let (mut s, _, _) = with_pending_completion();
    // Expiry: the alarm aborts. Storage answers that the upload is gone: the pending
    // completion landed, and its object goes too.
    s.on_alarm(s.expires_at());
    let at = s.expires_at();
    assert_eq!(s.take_step(at), Ok(Some(Step::Abort)));
    s.on_step(StepOutcome::Gone, at).unwrap();
    assert_eq!(s.state(), UploadState::Aborting);
    assert_eq!(s.take_step(at), Ok(Some(Step::DeleteObject)));
    s.on_step(StepOutcome::Failed, at).unwrap_err();
    assert_eq!(s.due_step(), Some(Step::DeleteObject));
    let snap = s.snapshot();
    assert_eq!(snap.stage, Stage::AbortingObject);
    assert_eq!(
        Session::restore(snap).unwrap(),
        s.clone().with_timing(s.timing)
    );
    s.take_step(at + RETRY).unwrap();
    s.on_step(StepOutcome::Deleted, at + RETRY).unwrap();
    assert_eq!(s.state(), UploadState::Aborted);
    assert_eq!(s.pending_completion(), None);

    // Aborted in storage by this very abort: no completion can land afterwards.
    let (mut s, _, _) = with_pending_completion();
    s.request_abort().unwrap();
    drive(&mut s, StepOutcome::Completed, false).unwrap();
    assert_eq!(s.state(), UploadState::Aborted);
}

#[test]
fn failed_steps_back_off_then_stall_and_only_requests_retry() {
    let mut s = session(64 * MIB);
    write_all(&mut s);
    s.request_abort().unwrap();
    let timing = StepTiming::default();
    let mut now = NOW;
    let mut waits = Vec::new();
    for failure in 1..=timing.max_failures {
        assert_eq!(s.take_step(now), Ok(Some(Step::Abort)));
        assert_eq!(
            code(s.on_step(StepOutcome::Failed, now)),
            ApiErrorCode::StorageError
        );
        assert_eq!(s.step_failures(), failure);
        let at = s.retry_at().unwrap();
        waits.push((at - now) / 1000);
        if failure < timing.max_failures {
            assert!(!s.is_stalled());
            assert_eq!(s.next_alarm(now), Some(at), "the alarm retries");
        }
        now = at;
    }
    assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    // Stalled: the alarm stops, the status says so, a request is told when to retry.
    assert!(s.is_stalled());
    assert_eq!(s.next_alarm(now - 1), None);
    let status = serde_json::to_value(s.status(&[])).unwrap();
    assert_eq!(status["stalled"], true);
    let err = s.abort_answer(now - 1_000).unwrap_err();
    assert_eq!(err.retry_after, Some(1));
    assert!(err.message.contains("10 times"), "{}", err.message);
    assert!(s.take_step(now - 1).is_err());
    // Storage works again: a request's retry finishes the abort.
    drive_at(&mut s, StepOutcome::Completed, false, now).unwrap();
    assert_eq!(s.state(), UploadState::Aborted);
    assert!(!s.is_stalled());
    assert_eq!(s.step_failures(), 0);
}

#[test]
fn a_step_whose_shell_hangs_past_its_deadline_can_be_taken_over() {
    let mut s = session(64 * MIB);
    write_all(&mut s);
    s.request_abort().unwrap();
    let deadline = StepTiming::default().deadline_ms;
    assert_eq!(s.take_step(NOW), Ok(Some(Step::Abort)));
    assert!(s.is_driving(NOW + deadline - 1));
    assert_eq!(
        code(s.take_step(NOW + deadline - 1)),
        ApiErrorCode::UploadBusy
    );
    assert!(!s.is_driving(NOW + deadline));
    assert_eq!(s.take_step(NOW + deadline), Ok(Some(Step::Abort)));
    s.on_step(StepOutcome::Aborted, NOW + deadline).unwrap();
    // The hung shell's report comes last: nothing is taken, nothing changes.
    assert_eq!(
        code(s.on_step(StepOutcome::Failed, NOW + deadline)),
        ApiErrorCode::Internal
    );
    assert_eq!(s.state(), UploadState::Aborted);
}

#[test]
fn status_lists_parts_only_while_open_with_quoted_etags() {
    let mut s = session(64 * MIB);
    let claimed = write_all(&mut s);
    let unquoted = vec![ListedPart {
        part_number: 1,
        etag: "abc".into(),
        size: FULL,
    }];
    assert!(s.status_needs_listing());
    assert_eq!(s.status(&unquoted).parts[0].etag, "\"abc\"");
    s.request_complete(&claimed, T0 + 2).unwrap();
    assert!(!s.status_needs_listing());
    assert!(s.status(&unquoted).parts.is_empty());
    drive(&mut s, StepOutcome::Completed, true).unwrap();
    let status = s.status(&[]);
    assert_eq!(status.parts.len(), 4);
    assert!(status.parts.iter().all(|p| p.etag.starts_with('"')));
    assert_eq!(quote("\"x\""), "\"x\"");
    assert_eq!(quote("x"), "\"x\"");
}

#[test]
fn snapshots_keep_lapsed_writes_pending_completions_and_failures() {
    let (mut s, _, sent) = with_pending_completion();
    let hung = s.begin_part(1, FULL, NOW, LEASE).unwrap();
    s.begin_part(1, FULL, NOW + LEASE, LEASE).unwrap();
    let snap = s.snapshot();
    assert_eq!(snap.lapsed, [(1, hung.fence)]);
    assert_eq!(snap.pending_completion, sent);
    assert_eq!(Session::restore(snap.clone()), Ok(s.clone()));
    s.request_abort().unwrap();
    s.take_step(NOW).unwrap();
    s.on_step(StepOutcome::Failed, NOW).unwrap_err();
    let failing = s.snapshot();
    assert_eq!((failing.step_failures, failing.step_failed_at), (1, NOW));
    let back = Session::restore(failing.clone()).unwrap();
    assert_eq!(back.retry_at(), Some(NOW + RETRY));

    let broken = [
        (
            Snapshot {
                stage: Stage::Aborting,
                ..snap.clone()
            },
            RestoreError::PartsAfterAbort,
        ),
        (
            Snapshot {
                pending_completion: sent[1..].to_vec(),
                ..snap.clone()
            },
            RestoreError::PendingCompletion,
        ),
        (
            Snapshot {
                stage: Stage::Aborted,
                ..failing.clone()
            },
            RestoreError::PendingCompletion,
        ),
        (
            Snapshot {
                stage: Stage::AbortingObject,
                pending_completion: Vec::new(),
                ..failing.clone()
            },
            RestoreError::PendingCompletion,
        ),
        (
            Snapshot {
                step_failures: 1,
                ..snap.clone()
            },
            RestoreError::StepFailures,
        ),
        (
            Snapshot {
                lapsed: vec![(9, 1)],
                ..snap.clone()
            },
            RestoreError::PartOutsidePlan(9),
        ),
        (
            Snapshot {
                lapsed: vec![(1, snap.next_fence)],
                ..snap.clone()
            },
            RestoreError::FenceNotIssued,
        ),
    ];
    for (snap, expected) in broken {
        assert_eq!(Session::restore(snap), Err(expected));
    }
}

// ---------------------------------------------------------------------------------
// The file's life after completion
// ---------------------------------------------------------------------------------

/// A completed 1-part file, completed by storage at `NOW`.
fn completed(lifetime: Lifetime) -> Session {
    let mut s = session(MIB).with_terms(FileTerms {
        owner: Owner::TokenHolder,
        account: "acct".into(),
        lifetime,
    });
    let parts = write_all(&mut s);
    s.request_complete(&parts, T0 + 10).unwrap();
    drive(&mut s, StepOutcome::Completed, true).unwrap();
    assert_eq!(s.state(), UploadState::Completed);
    s
}

/// The steps the session asks for, each answered with success, up to the wipe.
fn deletion_steps(s: &mut Session) -> Vec<Step> {
    let mut steps = Vec::new();
    while let Some(step) = s.take_step(NOW).unwrap() {
        steps.push(step.clone());
        let outcome = match step {
            Step::DeleteObject => StepOutcome::Deleted,
            Step::PurgeShare(_) => StepOutcome::Purged,
            Step::ReleaseQuota => StepOutcome::Released,
            Step::Wipe => break,
            other => panic!("unexpected step {other:?}"),
        };
        s.on_step(outcome, NOW).unwrap();
    }
    steps
}

#[test]
fn a_file_lives_its_lifetime_from_completion_then_is_deleted_step_by_step() {
    let mut s = completed(Lifetime::Ms(5_000));
    let end = NOW + 5_000;
    assert_eq!(s.file_expires_at(), Some(end));
    assert_eq!(s.next_alarm(T0 + 20), Some(end));
    assert_eq!(s.ensure_file(end - 1), Ok(()));
    assert_eq!(code(s.ensure_file(end)), ApiErrorCode::Gone);
    assert_eq!(s.add_share("share-b", T0 + 20), Ok(Reserve::Reserved));
    assert_eq!(s.add_share("share-a", T0 + 20), Ok(Reserve::Reserved));
    // An early alarm changes nothing; the one at the expiry starts the deletion.
    s.on_alarm(end - 1);
    assert_eq!(s.state(), UploadState::Completed);
    s.on_alarm(end);
    assert_eq!(s.state(), UploadState::Deleting);
    assert_eq!(code(s.ensure_file(end)), ApiErrorCode::Gone);
    assert_eq!(code(s.request_complete(&[], end)), ApiErrorCode::Gone);
    assert_eq!(
        deletion_steps(&mut s),
        // Shares first: none serves the file while storage is asked to delete it.
        [
            Step::PurgeShare("share-a".into()),
            Step::PurgeShare("share-b".into()),
            Step::DeleteObject,
            Step::ReleaseQuota,
            Step::Wipe,
        ]
    );
}

#[test]
fn a_failed_deletion_step_stays_due_and_survives_a_reload() {
    let mut s = completed(Lifetime::Never);
    assert_eq!(s.file_expires_at(), None);
    assert_eq!(s.next_alarm(T0 + 20), None);
    s.on_alarm(u64::MAX);
    assert_eq!(s.state(), UploadState::Completed);
    assert_eq!(s.add_share("only", T0), Ok(Reserve::Reserved));
    s.request_delete().unwrap();
    s.request_delete().unwrap(); // idempotent
    assert_eq!(
        s.take_step(NOW).unwrap(),
        Some(Step::PurgeShare("only".into()))
    );
    s.on_step(StepOutcome::Purged, NOW).unwrap();
    assert!(
        s.shares().is_empty(),
        "no share serves the file from here on"
    );
    assert_eq!(s.take_step(NOW).unwrap(), Some(Step::DeleteObject));
    assert_eq!(
        code(s.on_step(StepOutcome::Failed, NOW)),
        ApiErrorCode::StorageError
    );
    // It waits for its backoff, then is due again.
    assert_eq!(s.next_alarm(NOW), Some(NOW + RETRY));
    assert_eq!(code(s.take_step(NOW + 1)), ApiErrorCode::UploadBusy);
    // The shell dies here; a reload finds the object still to delete.
    let mut back = Session::restore(s.snapshot()).unwrap();
    assert_eq!(back, s);
    assert_eq!(
        back.take_step(NOW + RETRY).unwrap(),
        Some(Step::DeleteObject)
    );
    back.on_step(StepOutcome::Deleted, NOW + RETRY).unwrap();
    assert_eq!(deletion_steps(&mut back), [Step::ReleaseQuota, Step::Wipe]);
}

#[test]
fn only_a_live_completed_file_takes_shares_and_deletes() {
    let mut open = session(MIB);
    assert_eq!(code(open.request_delete()), ApiErrorCode::FileNotFound);
    assert_eq!(code(open.add_share("x", T0)), ApiErrorCode::FileNotFound);
    let mut s = completed(Lifetime::Ms(1_000));
    for n in 0..MAX_SHARES_PER_FILE {
        assert_eq!(s.add_share(&format!("s{n:03}"), T0), Ok(Reserve::Reserved));
    }
    assert_eq!(
        code(s.add_share("one-more", T0)),
        ApiErrorCode::TooManyShares
    );
    // An idempotent create's retry names a share the file has: no new one, even at
    // the cap.
    assert_eq!(s.add_share("s042", T0), Ok(Reserve::Reserved));
    assert_eq!(s.shares().ids().len(), MAX_SHARES_PER_FILE);
    s.drop_share("s000");
    assert_eq!(s.add_share("one-more", T0), Ok(Reserve::Reserved));
    // Pending slots survive a reload, with their reservation times.
    s.share_made("s001", T0).unwrap();
    let back = Session::restore(s.snapshot()).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.shares().pending().len(), MAX_SHARES_PER_FILE - 1);
    let mut bad = s.snapshot();
    bad.pending_shares.push(("not-a-share".into(), T0));
    assert_eq!(Session::restore(bad), Err(RestoreError::Shares));
    assert_eq!(code(s.add_share("late", NOW + 1_000)), ApiErrorCode::Gone);
    assert_eq!(code(s.share_made("s002", NOW + 1_000)), ApiErrorCode::Gone);
    // A file without shares goes straight from the object to the quota.
    let mut bare = completed(Lifetime::Ms(1_000));
    bare.request_delete().unwrap();
    assert_eq!(
        deletion_steps(&mut bare),
        [Step::DeleteObject, Step::ReleaseQuota, Step::Wipe]
    );
}

#[test]
fn an_aborted_upload_releases_its_bytes() {
    let mut s = session(MIB);
    s.request_abort().unwrap();
    assert_eq!(s.take_step(NOW).unwrap(), Some(Step::Abort));
    s.on_step(StepOutcome::Aborted, NOW).unwrap();
    assert_eq!(s.state(), UploadState::Aborted);
    assert_eq!(s.abort_answer(NOW), Ok(()));
    assert_eq!(s.next_alarm(NOW), Some(NOW + RETRY));
    assert_eq!(s.take_step(NOW).unwrap(), Some(Step::ReleaseQuota));
    assert_eq!(
        code(s.on_step(StepOutcome::Failed, NOW)),
        ApiErrorCode::StorageError
    );
    let mut back = Session::restore(s.snapshot()).unwrap();
    assert_eq!(back, s);
    assert_eq!(code(back.take_step(NOW + 1)), ApiErrorCode::UploadBusy);
    let later = NOW + RETRY;
    assert_eq!(back.take_step(later).unwrap(), Some(Step::ReleaseQuota));
    back.on_step(StepOutcome::Released, later).unwrap();
    assert_eq!(back.take_step(later).unwrap(), None);
    assert_eq!(back.snapshot().stage, Stage::AbortedReleased);
    // Kept, answering `aborted`, until a day after the session would have expired;
    // then its records are wiped.
    let wipe = T0 + SESSION_TTL_MS + ABORTED_KEEP_MS;
    assert_eq!(back.next_alarm(later), Some(wipe));
    back.on_alarm(wipe - 1);
    assert_eq!(back.state(), UploadState::Aborted);
    assert_eq!(back.take_step(wipe - 1).unwrap(), None);
    back.on_alarm(wipe);
    assert_eq!(back.take_step(wipe).unwrap(), Some(Step::Wipe));
}
