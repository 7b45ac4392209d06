//! The share's rules, and its races explored deterministically: every interleaving of
//! a few downloaders' calls with the clock, the owner's revoke and the expiry, each
//! checked against the counting invariants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::explore::{Interleaving, explore};

const T0: u64 = 1_764_000_000_000;
const LEASE: u64 = 15 * 60 * 1000;
const SID: [u8; 16] = [7; 16];

fn client() -> ClientInfo {
    ClientInfo::new(Some("DE"), Some("curl/8"))
}

fn share(limit: Option<u32>, expires_at: Option<u64>) -> Share {
    Share::new(
        Settings {
            expires_at,
            download_limit: limit,
            verifier_hash: None,
        },
        T0,
    )
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ApiErrorCode {
    r.unwrap_err().code
}

fn open(s: &mut Share, id: &str, now: u64) -> Result<u64, ApiError> {
    s.open(id, None, &SID, now, LEASE, &client())
}

/// The counter equals the downloads that counted, and no more than the limit counted.
fn consistent(s: &Share) {
    let flagged = s.downloads.values().filter(|d| d.counted).count() as u64;
    assert!(s.counted >= flagged, "{s:?}");
    if let Some(limit) = s.settings.download_limit {
        assert!(s.counted <= u64::from(limit), "{s:?}");
    }
}

// ---------------------------------------------------------------------------------
// The named races
// ---------------------------------------------------------------------------------

#[test]
fn two_parallel_one_time_downloads_get_one_download_and_one_busy() {
    let mut s = share(Some(1), None);
    assert_eq!(open(&mut s, "a", T0), Ok(T0 + LEASE));
    let busy = open(&mut s, "b", T0).unwrap_err();
    assert_eq!(
        (busy.code, busy.retry_after),
        (ApiErrorCode::ShareBusy, Some(900))
    );
    // The first one's retry is the same download, not a second one.
    assert_eq!(open(&mut s, "a", T0 + 1), Ok(T0 + 1 + LEASE));
    s.complete("a", T0 + 2, &client()).unwrap();
    s.complete("a", T0 + 3, &client()).unwrap(); // idempotent
    assert_eq!(s.counted, 1);
    assert_eq!(
        code(open(&mut s, "b", T0 + 4)),
        ApiErrorCode::ShareExhausted
    );
    assert_eq!(s.state(T0 + 4), ShareState::Exhausted);
    consistent(&s);
}

#[test]
fn complete_versus_lease_lapse_counts_once_either_way() {
    // The lease lapses first: counted then. A lapsed download may still resume (it
    // counted already), and its late complete counts nothing more.
    let mut s = share(Some(2), None);
    open(&mut s, "a", T0).unwrap();
    s.settle(T0 + LEASE);
    assert_eq!(s.counted, 1);
    assert!(s.reissue("a", T0 + LEASE + 1, LEASE).is_ok());
    s.complete("a", T0 + LEASE + 1, &client()).unwrap();
    assert_eq!(s.counted, 1);
    // Completed just before the lapse: counted once, and the lapse adds nothing.
    open(&mut s, "b", T0).unwrap();
    s.complete("b", T0 + LEASE - 1, &client()).unwrap();
    s.settle(T0 + 2 * LEASE);
    assert_eq!(s.counted, 2);
    let lapsed = s
        .log
        .of(RecordKind::Download)
        .iter()
        .filter(|r| r.outcome == Outcome::Lapsed)
        .count();
    assert_eq!(lapsed, 1);
    // Even on a used-up share, a download that counted may resume.
    let mut one = share(Some(1), None);
    open(&mut one, "c", T0).unwrap();
    one.settle(T0 + LEASE);
    assert_eq!(one.state(T0 + LEASE), ShareState::Exhausted);
    assert!(one.reissue("c", T0 + LEASE + 2, LEASE).is_ok());
    assert!(open(&mut one, "c", T0 + LEASE + 3).is_ok());
    assert_eq!(
        code(open(&mut one, "d", T0 + LEASE + 3)),
        ApiErrorCode::ShareExhausted
    );
    consistent(&s);
    consistent(&one);
}

#[test]
fn an_abandoned_download_frees_its_slot_and_does_not_count() {
    let mut s = share(Some(1), None);
    open(&mut s, "a", T0).unwrap();
    s.abandon("a", T0 + 1, &client()).unwrap();
    s.abandon("a", T0 + 2, &client()).unwrap(); // idempotent
    assert_eq!(
        code(s.complete("a", T0 + 3, &client())),
        ApiErrorCode::DownloadClosed
    );
    assert_eq!(
        code(s.reissue("a", T0 + 3, LEASE)),
        ApiErrorCode::DownloadClosed
    );
    open(&mut s, "b", T0 + 4).unwrap();
    s.settle(T0 + 4 + LEASE);
    assert_eq!(s.counted, 1);
    assert_eq!(
        code(
            s.abandon("b", T0 + 5 + LEASE, &client())
                .and(Err::<(), _>(ApiError::internal()))
        ),
        ApiErrorCode::Internal
    );
    // Abandoning after the lapse keeps the count.
    assert_eq!(s.counted, 1);
    assert_eq!(
        code(s.abandon("nope", T0, &client())),
        ApiErrorCode::DownloadNotFound
    );
    consistent(&s);
}

#[test]
fn a_download_lives_a_day_from_its_open_however_often_it_is_reissued() {
    // Reissued every 14 minutes, the download never lapses, but its lease never runs
    // past its lifetime: then it lapses, counts, and no URL is issued to it again.
    let mut s = share(None, None);
    open(&mut s, "a", T0).unwrap();
    let end = T0 + DOWNLOAD_LIFETIME_MS;
    let mut now = T0;
    while now + 14 * 60 * 1000 < end {
        now += 14 * 60 * 1000;
        let until = s.reissue("a", now, LEASE).unwrap();
        assert!(until <= end, "{until} past {end}");
        assert_eq!(s.counted, 0);
    }
    assert_eq!(s.reissue("a", end - 1, LEASE), Ok(end));
    assert_eq!(
        code(s.reissue("a", end, LEASE)),
        ApiErrorCode::DownloadNotFound
    );
    assert_eq!(
        s.counted, 1,
        "it lapsed at the end of its life, and counted"
    );
    // A retried open with the same id past that is a new download.
    assert_eq!(open(&mut s, "a", end + 1), Ok(end + 1 + LEASE));
    consistent(&s);

    // A lapsed download resumes only within its lifetime, too.
    let mut one = share(Some(1), None);
    open(&mut one, "b", T0).unwrap();
    one.settle(T0 + LEASE);
    assert!(one.reissue("b", end - 1, LEASE).is_ok());
    assert_eq!(one.downloads["b"].lease_until, end);
    assert_eq!(
        code(one.reissue("b", end + 1, LEASE)),
        ApiErrorCode::DownloadNotFound
    );
    assert_eq!(one.counted, 1);
}

#[test]
fn a_retried_open_at_the_end_of_its_life_is_refused_not_extended() {
    let mut s = share(None, None);
    open(&mut s, "a", T0).unwrap();
    // The entry still exists at the exact instant (settle forgets it at that time).
    let mut d = s.downloads["a"].clone();
    d.lease_until = T0 + DOWNLOAD_LIFETIME_MS;
    s.downloads.insert("a".into(), d);
    assert_eq!(
        code(s.extend("a", T0 + DOWNLOAD_LIFETIME_MS, LEASE)),
        ApiErrorCode::DownloadClosed
    );
}

#[test]
fn lapsed_downloads_do_not_make_an_unlimited_share_busy() {
    // A hundred opens that never fetch anything lapse after their lease: they counted
    // and hold no slot, so the next open is admitted (not 409 for a day).
    let mut s = share(None, None);
    for i in 0..MAX_OPEN_DOWNLOADS {
        open(&mut s, &format!("x{i}"), T0).unwrap();
    }
    let busy = open(&mut s, "late", T0 + 1).unwrap_err();
    assert_eq!(
        (busy.code, busy.retry_after),
        (ApiErrorCode::ShareBusy, Some(900))
    );
    assert!(open(&mut s, "late", T0 + LEASE).is_ok());
    assert_eq!(s.counted, MAX_OPEN_DOWNLOADS as u64);
    // Opens well past what the share remembers keep working: it forgets the
    // downloads settled longest ago, never one that holds a slot.
    let mut now = T0 + LEASE;
    for i in 0..MAX_KNOWN_DOWNLOADS {
        now += 1;
        open(&mut s, &format!("y{i}"), now).unwrap();
        if i % 90 == 89 {
            now += LEASE;
        }
    }
    assert!(s.downloads.len() <= MAX_KNOWN_DOWNLOADS);
    assert!(s.holding() <= MAX_OPEN_DOWNLOADS);
    consistent(&s);
}

#[test]
fn expiries_past_what_json_carries_are_refused_not_stored() {
    let req = CreateShareRequest {
        expires_in: Some(u64::MAX / 1000),
        ..CreateShareRequest::default()
    };
    assert_eq!(
        code(req.settings(&SID, None, T0)),
        ApiErrorCode::InvalidExpiry
    );
    let mut s = share(None, None);
    let at = UpdateShareRequest {
        expires_in: Some(u64::MAX),
        ..UpdateShareRequest::default()
    }
    .expires_at(T0);
    assert_eq!(
        code(s.update(at, None, None, T0)),
        ApiErrorCode::InvalidExpiry
    );
    assert!(s.update(Some(MAX_EXPIRY_MS), None, None, T0).is_ok());
}

#[test]
fn revoke_during_a_download_stops_it_at_once() {
    let mut s = share(None, None);
    open(&mut s, "a", T0).unwrap();
    s.revoke(T0 + 1);
    s.revoke(T0 + 2); // idempotent
    assert_eq!(s.revoked_at, Some(T0 + 1));
    assert_eq!(
        code(s.reissue("a", T0 + 2, LEASE)),
        ApiErrorCode::ShareRevoked
    );
    assert_eq!(
        code(s.complete("a", T0 + 2, &client())),
        ApiErrorCode::ShareRevoked
    );
    assert_eq!(code(open(&mut s, "a", T0 + 2)), ApiErrorCode::ShareRevoked);
    assert_eq!(code(s.view(T0 + 2, &client())), ApiErrorCode::ShareRevoked);
    assert_eq!(
        code(s.update(Some(T0 + 10), None, None, T0 + 2)),
        ApiErrorCode::ShareRevoked
    );
    // Its URL ran until its lease: then it lapses and counts.
    s.settle(T0 + LEASE);
    assert_eq!(s.counted, 1);
    consistent(&s);
}

#[test]
fn expiry_during_a_download_refuses_new_urls() {
    let end = T0 + 1_000;
    let mut s = share(None, Some(end));
    open(&mut s, "a", T0).unwrap();
    assert!(s.reissue("a", end - 1, LEASE).is_ok());
    assert_eq!(code(s.reissue("a", end, LEASE)), ApiErrorCode::ShareExpired);
    assert_eq!(code(open(&mut s, "b", end)), ApiErrorCode::ShareExpired);
    assert_eq!(
        code(s.complete("a", end, &client())),
        ApiErrorCode::ShareExpired
    );
    // The owner may extend it (within the file's life): it is active again.
    s.update(Some(end + 5_000), None, Some(end + 5_000), end)
        .unwrap();
    assert!(s.reissue("a", end + 1, LEASE).is_ok());
    assert_eq!(
        code(s.update(Some(end + 5_001), None, Some(end + 5_000), end)),
        ApiErrorCode::InvalidExpiry
    );
    consistent(&s);
}

#[test]
fn passwords_are_checked_counted_and_rate_limited() {
    let right = Verifier::parse(URL_SAFE_NO_PAD_43_A).unwrap();
    let wrong = Verifier::parse(&format!("{}E", "B".repeat(42))).unwrap();
    let mut s = Share::new(
        Settings {
            expires_at: None,
            download_limit: None,
            verifier_hash: Some(verifier_hash(&SID, &right)),
        },
        T0,
    );
    let try_open =
        |s: &mut Share, v: Option<&Verifier>, now| s.open("a", v, &SID, now, LEASE, &client());
    assert_eq!(
        code(try_open(&mut s, None, T0)),
        ApiErrorCode::PasswordRequired
    );
    for _ in 0..PASSWORD_ATTEMPTS {
        assert_eq!(
            code(try_open(&mut s, Some(&wrong), T0)),
            ApiErrorCode::WrongPassword
        );
    }
    // The bucket is empty: even the right password waits (nothing is checked).
    let waiting = try_open(&mut s, Some(&right), T0).unwrap_err();
    assert_eq!(
        (waiting.code, waiting.retry_after),
        (ApiErrorCode::TooManyAttempts, Some(180))
    );
    assert_eq!(s.failed_attempts, u64::from(PASSWORD_ATTEMPTS));
    // Another share id salts another hash: the right verifier for another share fails.
    let other = verifier_hash(&[8; 16], &right);
    assert_ne!(Some(other), s.settings.verifier_hash);
    assert!(try_open(&mut s, Some(&right), T0 + 180_000).is_ok());
    let outcomes: Vec<&str> = s
        .log
        .newest_first()
        .iter()
        .rev()
        .map(|r| r.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes,
        [
            "password_required",
            "wrong_password",
            "wrong_password",
            "wrong_password",
            "wrong_password",
            "wrong_password",
            "too_many_attempts",
            "opened"
        ]
    );
    assert_eq!(format!("{right:?}"), "Verifier(<redacted>)");
    for bad in [
        "",
        "A",
        &"A".repeat(42),
        &"A".repeat(44),
        &format!("{}=", "A".repeat(42)),
    ] {
        assert_eq!(
            code(Verifier::parse(bad)),
            ApiErrorCode::InvalidVerifier,
            "{bad}"
        );
    }
}

#[test]
fn probing_a_used_up_share_never_flushes_its_download() {
    let right = Verifier::parse(URL_SAFE_NO_PAD_43_A).unwrap();
    let mut s = share(Some(1), None);
    s.settings.verifier_hash = Some(verifier_hash(&SID, &right));
    s.open("a", Some(&right), &SID, T0, LEASE, &client())
        .unwrap();
    s.complete("a", T0 + 1, &client()).unwrap();
    let wrong = Verifier::parse(&format!("B{}", &URL_SAFE_NO_PAD_43_A[1..])).unwrap();
    for n in 0..MAX_VISIT_RECORDS as u64 {
        // Views of the used-up share are refused `share_exhausted`, as an open would be,
        // yet they are visits; so are wrong, missing and rate-limited passwords.
        assert_eq!(
            code(s.view(T0 + 2 + n, &client())),
            ApiErrorCode::ShareExhausted
        );
        let _ = s.open("b", Some(&wrong), &SID, T0 + 2 + n, LEASE, &client());
        let _ = s.open("b", None, &SID, T0 + 2 + n, LEASE, &client());
    }
    let view = ShareView::new("tok".into(), &s, T0 + 1_000);
    let downloads: Vec<&str> = view
        .access
        .iter()
        .filter(|a| a.kind == "download")
        .map(|a| a.outcome.as_str())
        .collect();
    assert_eq!(downloads, ["completed", "opened"]);
    assert_eq!(view.access.len(), MAX_VISIT_RECORDS + 2);
    // Someone with the link and the password opens the used-up share again and again
    // (refused `share_exhausted`), and a downloader retries an open of a download that
    // lapsed (counted, so still open): visits, never a download's record.
    let later = T0 + PASSWORD_PERIOD_MS * 2;
    let mut lapsed = share(Some(1), None);
    lapsed.settings.verifier_hash = s.settings.verifier_hash;
    lapsed
        .open("a", Some(&right), &SID, T0, LEASE, &client())
        .unwrap();
    for s in [&mut s, &mut lapsed] {
        for n in 0..MAX_DOWNLOAD_RECORDS as u64 * 2 {
            let at = later + n;
            let refused = s.open(&format!("c{n}"), Some(&right), &SID, at, LEASE, &client());
            assert_eq!(code(refused), ApiErrorCode::ShareExhausted);
            let _ = s.open("a", Some(&right), &SID, at, LEASE, &client());
        }
    }
    let downloads = |s: &Share| -> Vec<Outcome> {
        let log = s.log.of(RecordKind::Download);
        log.iter().map(|r| r.outcome).collect()
    };
    assert_eq!(downloads(&s), [Outcome::Opened, Outcome::Completed]);
    assert_eq!(downloads(&lapsed), [Outcome::Opened, Outcome::Lapsed]);
    let newest = &lapsed.log.newest_first()[0];
    assert_eq!(
        (newest.kind, newest.outcome),
        (RecordKind::Visit, Outcome::Opened)
    );
    assert!(
        lapsed
            .log
            .of(RecordKind::Visit)
            .iter()
            .any(|r| r.outcome == Outcome::Refused(ApiErrorCode::ShareExhausted))
    );
}

#[test]
fn an_idempotent_create_answers_its_retry_and_refuses_another_request() {
    let request = CreateShareRequest {
        expires_in: Some(3600),
        download_limit: Some(1),
        verifier: Some(URL_SAFE_NO_PAD_43_A.into()),
        idempotency_key: None,
    };
    let settings = request.settings(&SID, None, T0).unwrap();
    let digest = request.digest(&settings);
    let mut s = Share::new(settings, T0);
    s.request_digest = Some(digest);
    // The retry, later: the same request (its relative expiry too), the same share.
    let later = request.settings(&SID, None, T0 + 5_000).unwrap();
    assert_eq!(request.digest(&later), digest);
    assert_eq!(s.retried(Some(&digest)), Ok(()));
    // The key does not take part: the same request with it digests the same.
    let keyed = CreateShareRequest {
        idempotency_key: Some(crate::ids::IdempotencyKey::from_random([1; 16])),
        ..request.clone()
    };
    assert_eq!(keyed.digest(&later), digest);
    // Any other field, another verifier, or no digest at all: a conflict.
    let mut others = vec![
        CreateShareRequest {
            expires_in: Some(3601),
            ..request.clone()
        },
        CreateShareRequest {
            expires_in: None,
            ..request.clone()
        },
        CreateShareRequest {
            download_limit: Some(2),
            ..request.clone()
        },
        CreateShareRequest {
            download_limit: None,
            ..request.clone()
        },
        CreateShareRequest {
            verifier: None,
            ..request.clone()
        },
    ];
    let mut other_verifier = URL_SAFE_NO_PAD_43_A.to_owned();
    other_verifier.replace_range(0..1, "B");
    others.push(CreateShareRequest {
        verifier: Some(other_verifier),
        ..request.clone()
    });
    for other in others {
        let d = other.digest(&other.settings(&SID, None, T0).unwrap());
        assert_ne!(d, digest, "{other:?}");
        assert_eq!(
            code(s.retried(Some(&d))),
            ApiErrorCode::IdempotencyConflict,
            "{other:?}"
        );
    }
    assert_eq!(code(s.retried(None)), ApiErrorCode::IdempotencyConflict);
    // A share made without a key answers no create.
    let plain = share(None, None);
    assert_eq!(
        code(plain.retried(Some(&digest))),
        ApiErrorCode::IdempotencyConflict
    );
}

const URL_SAFE_NO_PAD_43_A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[test]
fn views_records_and_bounds() {
    let mut s = share(Some(3), Some(T0 + 10 * LEASE));
    let public = s.view(T0, &client()).unwrap();
    assert_eq!(
        public,
        PublicShare {
            password: false,
            expires_at: Some(T0 + 10 * LEASE),
            downloads_left: Some(3)
        }
    );
    open(&mut s, "a", T0).unwrap();
    s.complete("a", T0 + 1, &client()).unwrap();
    let view = ShareView::new("tok".into(), &s, T0 + 2);
    assert_eq!(view.state, "active");
    assert_eq!(view.downloads, 1);
    let outcomes: Vec<&str> = view.access.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["completed", "opened", "viewed"]);
    assert_eq!(view.access[0].country.as_deref(), Some("DE"));
    assert_eq!(view.access[0].agent.as_deref(), Some("curl"));
    let kinds: Vec<&str> = view.access.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["download", "download", "visit"]);
    // Records are bounded: the newest visits are kept, and a flood of them (views,
    // wrong guesses) never pushes the downloads out.
    for n in 0..MAX_VISIT_RECORDS + 5 {
        let _ = s.view(T0 + 3 + n as u64, &client());
    }
    let visits = s.log.of(RecordKind::Visit);
    assert_eq!(visits.len(), MAX_VISIT_RECORDS);
    assert_eq!(
        visits.back().unwrap().at,
        T0 + 3 + MAX_VISIT_RECORDS as u64 + 4
    );
    let view = ShareView::new("tok".into(), &s, T0 + 2);
    assert_eq!(view.access.len(), MAX_VISIT_RECORDS + 2);
    let last: Vec<&str> = view
        .access
        .iter()
        .rev()
        .take(2)
        .map(|a| a.outcome.as_str())
        .collect();
    assert_eq!(last, ["opened", "completed"]);
    // Closed downloads are forgotten after a while; open ones are bounded.
    s.settle(T0 + 1 + CLOSED_KEEP_MS);
    assert!(!s.downloads.contains_key("a"));
    let mut many = share(None, None);
    for n in 0..MAX_OPEN_DOWNLOADS {
        open(&mut many, &format!("d{n}"), T0).unwrap();
    }
    assert_eq!(
        code(open(&mut many, "one-more", T0)),
        ApiErrorCode::ShareBusy
    );
    assert_eq!(many.dirty.len(), MAX_OPEN_DOWNLOADS);
    // Limits: 0 is refused, null is unlimited.
    assert_eq!(
        code(s.update(None, Some(Some(0)), None, T0)),
        ApiErrorCode::InvalidLimit
    );
    s.update(None, Some(None), None, T0 + LEASE).unwrap();
    assert_eq!(s.settings.download_limit, None);
    for outcome in ["viewed", "lapsed", "share_busy", "wrong_password"] {
        assert_eq!(Outcome::parse(outcome).unwrap().as_str(), outcome);
    }
    assert_eq!(Outcome::parse("nonsense"), None);
}

#[test]
fn create_requests_are_checked() {
    let file_end = Some(T0 + 60_000);
    let ok = CreateShareRequest {
        expires_in: Some(60),
        download_limit: Some(1),
        verifier: Some(URL_SAFE_NO_PAD_43_A.into()),
        idempotency_key: None,
    };
    let settings = ok.settings(&SID, file_end, T0).unwrap();
    assert_eq!(settings.expires_at, Some(T0 + 60_000));
    assert_eq!(settings.download_limit, Some(1));
    let v = Verifier::parse(URL_SAFE_NO_PAD_43_A).unwrap();
    assert_eq!(settings.verifier_hash, Some(verifier_hash(&SID, &v)));
    // Defaults: the file's expiry, unlimited, no password.
    let default = CreateShareRequest::default()
        .settings(&SID, file_end, T0)
        .unwrap();
    assert_eq!(
        default,
        Settings {
            expires_at: file_end,
            download_limit: None,
            verifier_hash: None
        }
    );
    for (bad, expected) in [
        (
            CreateShareRequest {
                expires_in: Some(61),
                ..ok.clone()
            },
            ApiErrorCode::InvalidExpiry,
        ),
        (
            CreateShareRequest {
                expires_in: Some(0),
                ..ok.clone()
            },
            ApiErrorCode::InvalidExpiry,
        ),
        (
            CreateShareRequest {
                download_limit: Some(0),
                ..ok.clone()
            },
            ApiErrorCode::InvalidLimit,
        ),
        (
            CreateShareRequest {
                verifier: Some("short".into()),
                ..ok.clone()
            },
            ApiErrorCode::InvalidVerifier,
        ),
    ] {
        assert_eq!(code(bad.settings(&SID, file_end, T0)), expected, "{bad:?}");
    }
    // PATCH tells an absent limit from a null one.
    let patch: UpdateShareRequest = serde_json::from_str(r#"{"downloadLimit":null}"#).unwrap();
    assert_eq!(patch.download_limit, Some(None));
    let patch: UpdateShareRequest = serde_json::from_str(r#"{"expiresIn":5}"#).unwrap();
    assert_eq!(
        (patch.download_limit, patch.expires_at(T0)),
        (None, Some(T0 + 5_000))
    );
    assert!(serde_json::from_str::<UpdateShareRequest>(r#"{"limit":1}"#).is_err());
    let open: OpenDownloadRequest = serde_json::from_str(r#"{"downloadId":"x"}"#).unwrap();
    assert_eq!(code(open.download_id()), ApiErrorCode::InvalidJson);
}

// ---------------------------------------------------------------------------------
// Every interleaving
// ---------------------------------------------------------------------------------

/// One downloader's script: it opens, re-issues its URL, then completes or abandons
/// (or walks away, leaving the lease to lapse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Open,
    Reissue,
    Complete,
    Abandon,
}

/// What can happen next in the world.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// Downloader `i` makes its next call.
    Call(usize),
    /// The clock jumps past every lease.
    Lapse,
    /// The owner revokes the share.
    Revoke,
    /// The clock reaches the share's expiry.
    Expire,
}

#[derive(Clone)]
struct World {
    share: Share,
    now: u64,
    scripts: Vec<Vec<Op>>,
    next: Vec<usize>,
    /// Per downloader, its downloads (a new one after each abandon, under a new id),
    /// each `(opened, completed, abandoned before it counted)`.
    downloads: Vec<Vec<(bool, bool, bool)>>,
    lapses_left: u32,
    revoke_left: bool,
    expire_left: bool,
    revoked: bool,
    expired: bool,
    limit: u32,
}

const EXPIRY: u64 = T0 + 100 * LEASE;

impl World {
    fn new(limit: u32, scripts: Vec<Vec<Op>>) -> Self {
        let n = scripts.len();
        Self {
            share: share(Some(limit), Some(EXPIRY)),
            now: T0,
            next: vec![0; n],
            downloads: vec![vec![(false, false, false)]; n],
            scripts,
            lapses_left: 1,
            revoke_left: true,
            expire_left: true,
            revoked: false,
            expired: false,
            limit,
        }
    }

    fn events(&self) -> Vec<Event> {
        let mut events: Vec<Event> = (0..self.scripts.len())
            .filter(|&i| self.next[i] < self.scripts[i].len())
            .map(Event::Call)
            .collect();
        if self.lapses_left > 0 {
            events.push(Event::Lapse);
        }
        if self.revoke_left {
            events.push(Event::Revoke);
        }
        if self.expire_left {
            events.push(Event::Expire);
        }
        events
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Lapse => {
                self.lapses_left -= 1;
                self.now += LEASE + 1;
                self.share.settle(self.now);
            }
            Event::Revoke => {
                self.revoke_left = false;
                self.revoked = true;
                self.share.revoke(self.now);
            }
            Event::Expire => {
                self.expire_left = false;
                self.expired = true;
                self.now = self.now.max(EXPIRY);
                self.share.settle(self.now);
            }
            Event::Call(i) => {
                let op = self.scripts[i][self.next[i]];
                self.next[i] += 1;
                self.now += 1;
                let generation = self.downloads[i].len() - 1;
                let id = format!("d{i}-{generation}");
                let c = client();
                let (now, lease) = (self.now, LEASE);
                let mine = &mut self.downloads[i][generation];
                let ok = match op {
                    Op::Open => {
                        let r = self.share.open(&id, None, &SID, now, lease, &c);
                        mine.0 |= r.is_ok();
                        r.map(|_| ())
                    }
                    Op::Reissue => self.share.reissue(&id, now, lease).map(|_| ()),
                    Op::Complete => {
                        let r = self.share.complete(&id, now, &c);
                        mine.1 |= r.is_ok();
                        r
                    }
                    Op::Abandon => {
                        let counted = self.share.downloads.get(&id).is_some_and(|d| d.counted);
                        let r = self.share.abandon(&id, now, &c);
                        if r.is_ok() {
                            mine.2 = !counted;
                            // The next open is another download.
                            self.downloads[i].push((false, false, false));
                        }
                        r
                    }
                }
                .is_ok();
                // Nothing is given out after a revoke or past the expiry.
                if (self.revoked || self.expired) && matches!(op, Op::Open | Op::Reissue) {
                    assert!(!ok, "{op:?} succeeded on a dead share");
                }
            }
        }
        self.check();
    }

    fn check(&self) {
        consistent(&self.share);
        assert!(self.share.counted <= u64::from(self.limit));
        for (i, mine) in self.downloads.iter().enumerate() {
            for (generation, &(_, completed, _)) in mine.iter().enumerate() {
                // A completed download counted (while the share remembers it).
                let id = format!("d{i}-{generation}");
                if completed && let Some(d) = self.share.downloads.get(&id) {
                    assert!(d.counted, "{id}: {d:?}");
                }
            }
        }
    }

    /// At the end, far in the future: every opened download counted unless abandoned
    /// before its lapse, and the counter says exactly that.
    fn finish(mut self) {
        self.now += DOWNLOAD_LIFETIME_MS / 2;
        self.share.settle(self.now);
        let expected = self
            .downloads
            .iter()
            .flatten()
            .filter(|&&(opened, _, abandoned_early)| opened && !abandoned_early)
            .count() as u64;
        assert_eq!(self.share.counted, expected, "{:?}", self.share);
        assert!(expected <= u64::from(self.limit));
    }
}

impl Interleaving for World {
    type Step = Event;
    fn next_steps(&self) -> Vec<Event> {
        self.events()
    }
    fn take(&mut self, event: Event) {
        self.apply(event);
    }
    fn finish(self) {
        World::finish(self);
    }
}

#[test]
fn every_interleaving_of_two_one_time_downloaders_keeps_the_count() {
    use Op::*;
    let scripts = vec![
        vec![Open, Reissue, Complete],
        vec![Open, Open, Abandon, Open, Complete],
    ];
    let runs = explore(World::new(1, scripts));
    println!("{runs} complete runs");
    assert!(runs > 50_000, "{runs}");
}

#[test]
fn every_interleaving_of_three_downloaders_on_a_limit_of_two() {
    use Op::*;
    let scripts = vec![vec![Open, Complete], vec![Open], vec![Open, Abandon, Open]];
    let runs = explore(World::new(2, scripts));
    println!("{runs} complete runs");
    assert!(runs > 20_000, "{runs}");
}
