//! A deterministic harness for the upload session machine (`protocol::session`), in the
//! manner of quinn-proto's tests: the harness owns the clock, the storage and the Durable
//! Object's memory, and decides the order of every atomic action, so a race is a test
//! that fails the same way every time.
//!
//! - `world`: the fake storage, the shell model and the concurrent processes;
//! - `explore`: every interleaving of small cases, and seeded random long runs;
//! - this file: the scenarios, and one named test per race issue 10 §3 names.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod explore;
mod world;

use explore::{exhaustive, random_run};
use sealdrop_protocol::session::{Stage, UploadState};
use world::{Action, Answer, Call, Choice, LEASE, Proc, Seen, T0, TTL, Truth, UploadLife, World};

/// A world with `parts` parts of which `written` are already uploaded.
fn world(truth: Truth, parts: u32, written: u32) -> World {
    let mut w = World::new(truth, parts);
    for n in 1..=written {
        w.run_to_end(Proc::put(n));
    }
    w
}

fn go(w: &mut World, i: usize) {
    w.apply(Action::Proc(i, Choice::Go));
    w.check().unwrap();
}

fn act(w: &mut World, i: usize, choice: Choice) {
    w.apply(Action::Proc(i, choice));
    w.check().unwrap();
}

fn last(w: &World) -> &Answer {
    w.answers.last().unwrap()
}

fn err(code: &str) -> Result<String, String> {
    Err(code.to_owned())
}

// ---------------------------------------------------------------------------------
// Every interleaving of small cases
// ---------------------------------------------------------------------------------

#[test]
fn complete_racing_delete_and_the_alarm_in_every_order() {
    for truth in [Truth::Session, Truth::Storage] {
        let mut w = world(truth, 2, 2);
        w.spawn(Proc::request(Call::Complete));
        w.spawn(Proc::request(Call::Abort));
        w.evictions_left = 1;
        w.alarms_left = 1;
        w.laters_left = 1;
        w.waits_left = 3;
        let stats = exhaustive(w);
        assert!(
            stats.states > 500 && stats.ends > 100,
            "{truth:?}: {stats:?}"
        );
        // A completion landing late, found by a later step or deleted by the abort.
        let seen = stats.seen;
        assert!(
            seen.late_completions > 0 && seen.gone > 0 && seen.deletions > 0,
            "{truth:?}: {stats:?}"
        );
    }
}

#[test]
fn a_part_write_racing_its_retry_and_complete_in_every_order() {
    let mut w = world(Truth::Session, 2, 1);
    w.spawn(Proc::put(2));
    w.spawn(Proc::put(2));
    w.spawn(Proc::request(Call::Complete));
    w.ticks_left = 2;
    w.evictions_left = 1;
    w.late_lands_left = 1;
    let stats = exhaustive(w);
    assert!(stats.states > 1_000 && stats.ends > 100, "{stats:?}");
    // Writes that land after their lease, some over a newer record that a refused
    // completion then drops.
    assert!(
        stats.seen.late_writes > 0 && stats.seen.refusals > 0,
        "{stats:?}"
    );
}

#[test]
fn completing_with_lost_answers_and_retries_in_every_order() {
    for truth in [Truth::Session, Truth::Storage] {
        let mut w = world(truth, 2, 2);
        w.spawn(Proc::request(Call::Complete));
        w.spawn(Proc::request(Call::Complete));
        w.evictions_left = 2;
        w.alarms_left = 1;
        w.laters_left = 1;
        w.waits_left = 3;
        let stats = exhaustive(w);
        assert!(stats.states > 500, "{truth:?}: {stats:?}");
        assert!(stats.seen.late_completions > 0, "{truth:?}: {stats:?}");
    }
}

#[test]
fn delete_racing_part_writes_and_expiry_in_every_order() {
    let mut w = world(Truth::Session, 2, 1);
    w.now = T0 + TTL - LEASE; // one tick from expiry
    w.spawn(Proc::put(2));
    w.spawn(Proc::request(Call::Abort));
    w.ticks_left = 1;
    w.alarms_left = 1;
    w.evictions_left = 1;
    let stats = exhaustive(w);
    assert!(stats.states > 1_000, "{stats:?}");
}

// ---------------------------------------------------------------------------------
// Seeded random long runs
// ---------------------------------------------------------------------------------

#[test]
fn random_long_runs_keep_every_invariant() {
    for truth in [Truth::Session, Truth::Storage] {
        let mut outcomes = [0usize; 3];
        let mut seen = Vec::new();
        for seed in 0..150 {
            let mut w = World::new(truth, 3);
            w.evictions_left = 4;
            // Most runs stay inside the session's lifetime; every fifth outlives it.
            w.ticks_left = if seed % 5 == 0 { 12 } else { 4 };
            w.alarms_left = 6;
            w.laters_left = 2;
            w.late_lands_left = 3;
            w.waits_left = 6;
            // A third of the runs have an owner who may DELETE; all have clients that
            // write parts (again and again) and complete.
            let deleter = seed % 3 == 0;
            let end = random_run(w, seed, 400, |w, rng| match rng.below(40) {
                // Parts the client has no ETag for yet, and now and then one again.
                0..=3 => {
                    let missing = (1..=3).find(|n| !w.client_etags.contains_key(n));
                    if let Some(part) = missing {
                        w.spawn(Proc::put(part));
                    }
                }
                4 | 5 => {
                    let part = 1 + rng.below(3) as u32;
                    w.spawn(Proc::put(part));
                }
                6 | 7 => {
                    w.spawn(Proc::request(Call::Complete));
                }
                8 if deleter && rng.below(8) == 0 => {
                    w.spawn(Proc::request(Call::Abort));
                }
                _ => {}
            });
            seen.push(end.seen);
            outcomes[match end.shell.persisted.stage {
                Stage::Open => 0,
                Stage::Completed => 1,
                Stage::Aborted => 2,
                other => panic!("seed {seed}: left {other:?} after settling"),
            }] += 1;
        }
        // The runs reach both final ends, or they test less than they claim.
        assert!(
            outcomes[1] > 5 && outcomes[2] > 5,
            "{truth:?}: {outcomes:?}"
        );
        let runs = |f: fn(&Seen) -> u32| seen.iter().filter(|s| f(s) > 0).count();
        let counts = [
            runs(|s| s.late_completions),
            runs(|s| s.gone),
            runs(|s| s.deletions),
            runs(|s| s.late_writes),
            runs(|s| s.refusals),
        ];
        eprintln!(
            "{truth:?}: runs with late completions, gone, deletions, late writes, refusals: {counts:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// The races of issue 10 §3, one named deterministic test each
// ---------------------------------------------------------------------------------

/// The review's race: DELETE answered "being completed" after it had already aborted
/// the upload in storage, leaving the session open over an aborted upload. Now a DELETE
/// during completion changes nothing and says to retry.
#[test]
fn delete_racing_complete_waits_and_never_aborts_under_it() {
    let mut w = world(Truth::Session, 2, 2);
    let complete = w.spawn(Proc::request(Call::Complete));
    go(&mut w, complete); // listing (answered from the record)
    act(&mut w, complete, Choice::Ok);
    go(&mut w, complete); // the complete step is in flight
    let delete = w.spawn(Proc::request(Call::Abort));
    go(&mut w, delete);
    assert_eq!(last(&w), &Answer::Abort(Err("upload_busy".into())));
    assert_eq!(w.storage.life, UploadLife::Open);
    act(&mut w, complete, Choice::Ok);
    go(&mut w, complete);
    assert!(matches!(last(&w), Answer::Complete(Ok(_))));
    // The retried DELETE is told, finally, that the upload is completed.
    let again = w.spawn(Proc::request(Call::Abort));
    go(&mut w, again);
    assert_eq!(last(&w), &Answer::Abort(Err("upload_not_open".into())));
    assert_eq!(w.shell.persisted.stage, Stage::Completed);
}

/// The other order: once DELETE has begun, the upload will be aborted, and a complete
/// arriving meanwhile is told so (final), never answered with a record.
#[test]
fn complete_racing_delete_is_told_the_upload_is_being_aborted() {
    let mut w = world(Truth::Session, 2, 2);
    let delete = w.spawn(Proc::request(Call::Abort));
    go(&mut w, delete); // the abort step is in flight
    let complete = w.spawn(Proc::request(Call::Complete));
    go(&mut w, complete);
    assert_eq!(last(&w), &Answer::Complete(Err("upload_not_open".into())));
    act(&mut w, delete, Choice::Ok);
    go(&mut w, delete);
    assert_eq!(last(&w), &Answer::Abort(Ok(())));
    assert_eq!(w.storage.life, UploadLife::Aborted);
}

/// Completing, and the answer is lost (storage completed, the instance died): the
/// retried complete settles the step left due and answers the record.
#[test]
fn completing_with_a_lost_answer_then_a_retry_answers_the_record() {
    for truth in [Truth::Session, Truth::Storage] {
        let mut w = world(truth, 2, 2);
        let complete = w.spawn(Proc::request(Call::Complete));
        go(&mut w, complete);
        act(&mut w, complete, Choice::Ok);
        go(&mut w, complete);
        act(&mut w, complete, Choice::Ok); // storage completed ...
        w.apply(Action::Evict); // ... and the instance died before hearing it
        assert_eq!(last(&w), &Answer::Lost);
        assert_eq!(w.shell.persisted.stage, Stage::Storing);
        assert_eq!(w.storage.life, UploadLife::Completed);
        let retry = w.spawn(Proc::request(Call::Complete));
        go(&mut w, retry); // settle: complete again → storage says gone
        act(&mut w, retry, Choice::Ok);
        go(&mut w, retry); // → check the object
        act(&mut w, retry, Choice::Ok);
        go(&mut w, retry); // → exists: completed; then the call itself
        assert!(matches!(last(&w), Answer::Complete(Ok(_))), "{truth:?}");
    }
}

/// While completing, a retried complete is told to wait (503), not a final 409 that
/// would make the client delete a file that does complete.
#[test]
fn a_complete_retried_while_completing_is_told_to_wait() {
    let mut w = world(Truth::Storage, 2, 2);
    let first = w.spawn(Proc::request(Call::Complete));
    go(&mut w, first);
    let retry = w.spawn(Proc::request(Call::Complete));
    go(&mut w, retry);
    assert_eq!(last(&w), &Answer::Complete(Err("upload_busy".into())));
    act(&mut w, first, Choice::Ok);
    go(&mut w, first);
    act(&mut w, first, Choice::Ok);
    go(&mut w, first);
    assert!(matches!(last(&w), Answer::Complete(Ok(_))));
}

/// A part PUT that lands after an abort or a completion gets `409 upload_not_open`.
#[test]
fn a_part_put_after_abort_or_completion_is_upload_not_open() {
    let mut w = world(Truth::Session, 2, 2);
    w.run_to_end(Proc::request(Call::Abort));
    let put = w.spawn(Proc::put(1));
    go(&mut w, put);
    assert_eq!(last(&w), &Answer::Put(1, err("upload_not_open")));

    // A slow write superseded by its retry, which the upload then completes with:
    // the slow write's late report is told the upload is over.
    let mut w = world(Truth::Session, 2, 2);
    let slow = w.spawn(Proc::put(1));
    go(&mut w, slow);
    w.apply(Action::Tick(LEASE));
    w.run_to_end(Proc::put(1));
    w.run_to_end(Proc::request(Call::Complete));
    assert_eq!(w.shell.persisted.stage, Stage::Completed);
    act(&mut w, slow, Choice::Fail);
    go(&mut w, slow);
    assert_eq!(last(&w), &Answer::Put(1, err("upload_not_open")));
    // And a PUT that begins after the completion.
    let late = w.spawn(Proc::put(2));
    go(&mut w, late);
    assert_eq!(last(&w), &Answer::Put(2, err("upload_not_open")));
}

/// A write of a part racing its own retry: one write at a time, and a superseded write
/// never leaves its ETag recorded over storage's.
#[test]
fn a_part_write_racing_its_retry() {
    let mut w = world(Truth::Session, 2, 1);
    let first = w.spawn(Proc::put(2));
    go(&mut w, first);
    let retry = w.spawn(Proc::put(2));
    go(&mut w, retry);
    assert_eq!(last(&w), &Answer::Put(2, err("upload_busy")));
    // The first writer's worker dies after its bytes landed; the lease runs out.
    act(&mut w, first, Choice::LandDie);
    w.apply(Action::Tick(LEASE));
    let retry = w.spawn(Proc::put(2));
    go(&mut w, retry);
    act(&mut w, retry, Choice::Ok);
    go(&mut w, retry);
    let Answer::Put(2, Ok(etag)) = last(&w).clone() else {
        panic!("the retry records: {:?}", last(&w));
    };
    assert_eq!(w.storage.parts[&2].0, etag);
    w.run_to_end(Proc::request(Call::Complete));
    assert_eq!(w.shell.persisted.stage, Stage::Completed);
}

/// A stale write that reports after its lease (a slow, not dead, writer) makes the part
/// be sent again instead of recording either ETag.
#[test]
fn a_superseded_write_that_reports_late_makes_the_part_be_sent_again() {
    let mut w = world(Truth::Session, 2, 1);
    let slow = w.spawn(Proc::put(2));
    go(&mut w, slow);
    act(&mut w, slow, Choice::Ok); // landed, report not yet delivered
    w.apply(Action::Tick(LEASE));
    let retry = w.spawn(Proc::put(2));
    go(&mut w, retry); // supersedes the slow write
    go(&mut w, slow); // the slow write reports: stale
    assert_eq!(last(&w), &Answer::Put(2, err("upload_busy")));
    act(&mut w, retry, Choice::Ok);
    go(&mut w, retry);
    assert_eq!(last(&w), &Answer::Put(2, err("upload_busy")));
    assert!(!w.shell.persisted.recorded.iter().any(|(n, _)| *n == 2));
    // Sent again: recorded, and completion works.
    w.run_to_end(Proc::put(2));
    w.run_to_end(Proc::request(Call::Complete));
    assert_eq!(w.shell.persisted.stage, Stage::Completed);
}

/// A write whose lease ran out before completion began is lapsed, not forgotten: it
/// can land after the completion failed and a newer write of its part recorded, and the
/// record is then not what storage holds until a refused completion drops it.
#[test]
fn a_write_lapsed_when_completion_began_can_land_over_a_later_record() {
    let mut w = world(Truth::Session, 2, 2);
    let hung = w.spawn(Proc::put(2));
    go(&mut w, hung); // begins, then its writer hangs while storage commits
    w.apply(Action::Tick(LEASE));
    let complete = w.spawn(Proc::request(Call::Complete));
    go(&mut w, complete);
    act(&mut w, complete, Choice::Fail); // listing fails: open again
    go(&mut w, complete);
    assert_eq!(last(&w), &Answer::Complete(Err("storage_error".into())));
    w.run_to_end(Proc::put(2)); // sent again, recorded
    w.late_lands_left = 1;
    act(&mut w, hung, Choice::LandDie); // the hung write lands after all
    assert_ne!(
        w.storage.parts[&2].0, w.shell.persisted.recorded[1].1.etag,
        "storage holds the lapsed write's bytes"
    );
    // Completion is refused by storage; only part 2's record goes.
    w.run_to_end(Proc::request(Call::Complete));
    assert_eq!(last(&w), &Answer::Complete(Err("parts_missing".into())));
    let kept: Vec<u32> = w.shell.persisted.recorded.iter().map(|(n, _)| *n).collect();
    assert_eq!(kept, [1]);
    w.run_to_end(Proc::put(2));
    w.run_to_end(Proc::request(Call::Complete));
    assert!(matches!(last(&w), Answer::Complete(Ok(_))));
}

/// The alarm checks the object after each backoff until the session gives up: open.
fn give_up_checking(w: &mut World) {
    for _ in 0..10 {
        if w.shell.persisted.stage == Stage::Open {
            return;
        }
        w.apply(Action::Wait);
        w.run_to_end(Proc::request(Call::Alarm));
        w.check().unwrap();
    }
    panic!("still {:?}", w.shell.persisted.stage);
}

/// Storage completes after the shell gave up on the answer and on checking the object:
/// the session is open again but remembers the completion, so the next `complete`
/// (whose ListParts finds no upload) answers the record instead of 502 for ever.
#[test]
fn a_completion_that_lands_after_the_checks_answers_the_next_complete() {
    let mut w = world(Truth::Storage, 2, 2);
    w.laters_left = 1;
    w.waits_left = 10;
    let complete = w.spawn(Proc::request(Call::Complete));
    go(&mut w, complete);
    act(&mut w, complete, Choice::Ok); // listed
    go(&mut w, complete);
    act(&mut w, complete, Choice::Later); // storage has it, the answer times out
    go(&mut w, complete);
    act(&mut w, complete, Choice::Ok); // no object yet
    go(&mut w, complete);
    assert_eq!(last(&w), &Answer::Complete(Err("upload_busy".into())));
    // The alarm checks again after each backoff, then gives up: open, 502.
    give_up_checking(&mut w);
    assert!(!w.shell.persisted.pending_completion.is_empty());
    w.apply(Action::Land(0));
    assert_eq!(w.storage.life, UploadLife::Completed);
    w.check().unwrap();
    let retry = w.spawn(Proc::request(Call::Complete));
    go(&mut w, retry);
    act(&mut w, retry, Choice::Ok); // ListParts: no such upload
    go(&mut w, retry);
    act(&mut w, retry, Choice::Ok); // the object exists
    go(&mut w, retry);
    assert!(
        matches!(last(&w), Answer::Complete(Ok(_))),
        "{:?}",
        last(&w)
    );
    assert_eq!(w.shell.persisted.stage, Stage::Completed);
}

/// The same late completion, but the owner gave up: expiry aborts, storage says the
/// upload is gone, and the object the completion left is deleted.
#[test]
fn expiry_deletes_the_object_a_late_completion_left() {
    let mut w = world(Truth::Storage, 2, 2);
    w.laters_left = 1;
    w.waits_left = 10;
    let complete = w.spawn(Proc::request(Call::Complete));
    go(&mut w, complete);
    act(&mut w, complete, Choice::Ok);
    go(&mut w, complete);
    act(&mut w, complete, Choice::Later);
    go(&mut w, complete);
    act(&mut w, complete, Choice::Ok); // no object yet
    go(&mut w, complete);
    give_up_checking(&mut w);
    w.apply(Action::Land(0));
    w.now = T0 + TTL;
    w.run_to_end(Proc::request(Call::Alarm));
    assert_eq!(w.shell.persisted.stage, Stage::Aborted);
    assert_eq!(w.storage.object, None);
    w.check().unwrap();
}

/// A part write racing a complete: completion waits for the write in flight.
#[test]
fn a_part_write_racing_complete() {
    let mut w = world(Truth::Session, 2, 2);
    let rewrite = w.spawn(Proc::put(2));
    go(&mut w, rewrite);
    let complete = w.spawn(Proc::request(Call::Complete));
    go(&mut w, complete);
    assert_eq!(last(&w), &Answer::Complete(Err("upload_busy".into())));
    act(&mut w, rewrite, Choice::Ok);
    go(&mut w, rewrite);
    assert!(matches!(last(&w), Answer::Put(2, Ok(_))));
    w.run_to_end(Proc::request(Call::Complete));
    assert!(matches!(last(&w), Answer::Complete(Ok(_))));
}

/// A storage failure in the middle of a part is retryable, and records nothing.
#[test]
fn a_storage_failure_mid_part_is_retryable() {
    let mut w = world(Truth::Session, 2, 1);
    let put = w.spawn(Proc::put(2));
    go(&mut w, put);
    act(&mut w, put, Choice::Lost); // storage may even have kept the bytes
    go(&mut w, put);
    assert_eq!(last(&w), &Answer::Put(2, err("storage_error")));
    assert!(!w.shell.persisted.recorded.iter().any(|(n, _)| *n == 2));
    w.run_to_end(Proc::put(2));
    assert!(matches!(last(&w), Answer::Put(2, Ok(_))));
}

/// Aborting is a committed intent: a failed abort leaves the session aborting (nothing
/// else accepted), and the alarm retries, after a backoff, until storage confirms.
#[test]
fn abort_is_retried_by_the_alarm_until_storage_confirms() {
    let mut w = world(Truth::Session, 2, 2);
    let delete = w.spawn(Proc::request(Call::Abort));
    go(&mut w, delete);
    act(&mut w, delete, Choice::Fail);
    go(&mut w, delete);
    assert_eq!(last(&w), &Answer::Abort(Err("storage_error".into())));
    assert_eq!(w.shell.session().state(), UploadState::Aborting);
    let put = w.spawn(Proc::put(1));
    go(&mut w, put);
    assert_eq!(last(&w), &Answer::Put(1, err("upload_not_open")));
    // Retried at once: told to wait for the backoff.
    w.run_to_end(Proc::request(Call::Abort));
    assert_eq!(last(&w), &Answer::Abort(Err("upload_busy".into())));
    w.waits_left = 1;
    w.apply(Action::Wait);
    let alarm = w.spawn(Proc::request(Call::Alarm));
    go(&mut w, alarm);
    act(&mut w, alarm, Choice::Ok);
    go(&mut w, alarm);
    assert_eq!(w.shell.persisted.stage, Stage::Aborted);
    assert_eq!(w.storage.life, UploadLife::Aborted);
    // A DELETE retried now answers 204.
    w.run_to_end(Proc::request(Call::Abort));
    assert_eq!(last(&w), &Answer::Abort(Ok(())));
}

/// Expiry: the alarm aborts an expired upload even with a write in flight, whose late
/// report records nothing.
#[test]
fn expiry_aborts_with_a_write_in_flight() {
    let mut w = world(Truth::Session, 2, 1);
    let put = w.spawn(Proc::put(2));
    go(&mut w, put);
    w.now = T0 + TTL;
    w.run_to_end(Proc::request(Call::Alarm));
    assert_eq!(w.shell.persisted.stage, Stage::Aborted);
    act(&mut w, put, Choice::Fail); // its lease ran out with the session
    go(&mut w, put);
    assert_eq!(last(&w), &Answer::Put(2, err("upload_not_open")));
}
