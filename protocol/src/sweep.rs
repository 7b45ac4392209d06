//! The sweep: which multipart uploads in storage nobody will ever finish.
//!
//! Every open session aborts its own upload when it expires (its alarm). What that
//! misses is an upload no session knows: a create whose session never got written, a
//! create retried with the same idempotency key (the session keeps the second upload),
//! an alarm whose abort kept failing. S3 keeps such parts, and bills them, forever unless
//! a lifecycle rule drops them, so a scheduled sweep lists the uploads under
//! [`OBJECT_KEY_PREFIX`] and aborts those that are older than the session lifetime and
//! that no session still owns.
//!
//! Two pure decisions, in the order the shell makes them: [`triage`] (from the listing
//! alone: is the upload ours, and old enough to ask about?), then [`should_abort`]
//! (from what the file's session object says, [`Owner::of`]). The R2 binding cannot list
//! multipart uploads; there R2's own abort of uploads older than 7 days is the backstop.
//!
//! One run is one Worker invocation with a bounded number of subrequests ([`Budget`]):
//! listing pages, one per session asked, one per abort. So that uploads a session keeps
//! can never starve the ones behind them, each run starts asking at another point of
//! the listing ([`rotation`]), and an upload kept costs one subrequest, not two.

use serde::{Deserialize, Serialize};

use crate::ids::FileId;
use crate::session::UploadState;

/// Where every file's record section lives: `files/<fileId>`.
pub const OBJECT_KEY_PREFIX: &str = "files/";
/// ListMultipartUploads pages one sweep reads (1,000 uploads each).
pub const MAX_LIST_PAGES: usize = 10;
/// Subrequests one sweep makes: a scheduled run is one Worker invocation, whose
/// subrequests are limited (50 on the Free plan).
pub const SUBREQUESTS_PER_RUN: usize = 50;

/// What is left of one run's subrequests once the listing is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    left: usize,
}

impl Budget {
    /// The budget after reading `pages` pages of the listing.
    pub fn after_listing(pages: usize) -> Self {
        Self {
            left: SUBREQUESTS_PER_RUN.saturating_sub(pages),
        }
    }
    /// Whether one more upload can be asked about, and aborted if it must be.
    pub fn can_ask(&self) -> bool {
        self.left >= 2
    }
    /// One subrequest made (an ask, or an abort).
    pub fn spend(&mut self) {
        self.left = self.left.saturating_sub(1);
    }
}

/// Where a run that finds `count` old uploads starts asking about them: a different
/// point each hour (a hash of the hour of `now_ms`), going round to the start.
pub fn rotation(count: usize, now_ms: u64) -> usize {
    if count == 0 {
        return 0;
    }
    // SplitMix64's finalizer: consecutive hours land far apart.
    let mut z = (now_ms / (60 * 60 * 1000)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % count as u64) as usize
}

/// The storage key of a file's record section.
pub fn object_key(file_id: &FileId) -> String {
    format!("{OBJECT_KEY_PREFIX}{file_id}")
}

/// What the listing alone says about one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triage {
    /// Not a key sealdrop writes (`files/<fileId>`): never touched.
    NotOurs,
    /// Not older than the session lifetime: a session may still be using it.
    TooYoung,
    /// Old enough that only a session can still claim it: ask this file's session.
    AskSession(FileId),
}

/// Triage of the upload of `key` that storage began at `initiated_ms`, at `now_ms`,
/// for sessions that live `lifetime_ms`. An upload is old once strictly more than the
/// lifetime has passed: its session (created just after it) has expired by then. An
/// upload from the future (storage's clock ahead of ours) is young.
pub fn triage(key: &str, initiated_ms: u64, now_ms: u64, lifetime_ms: u64) -> Triage {
    let Some(file_id) = key
        .strip_prefix(OBJECT_KEY_PREFIX)
        .and_then(|id| FileId::parse(id).ok())
    else {
        return Triage::NotOurs;
    };
    if now_ms.saturating_sub(initiated_ms) <= lifetime_ms {
        return Triage::TooYoung;
    }
    Triage::AskSession(file_id)
}

/// Who may still finish one old upload, by what the file's session object says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The file has no session: nobody will ever complete or abort the upload.
    NoSession,
    /// Nobody will finish this upload: the file's session uses another (this one is
    /// left from a create that was retried), or is done with it (aborted), or wants it
    /// aborted anyway (aborting, or open past its expiry). Aborting it here is what the
    /// session would do, and frees uploads whose session's own abort keeps failing.
    Leftover,
    /// The file's session uses this upload and may still complete it (open and not
    /// expired, or completing), or completed the file with it: the session's business.
    Session,
}

impl Owner {
    /// The owner of an upload, by the state of the file's session, whether it is
    /// expired (open past its expiry) and whether its upload id is the listed one.
    pub fn of(state: UploadState, expired: bool, holds_this_upload: bool) -> Self {
        match (holds_this_upload, state) {
            (false, _) | (true, UploadState::Aborted | UploadState::Aborting) => Owner::Leftover,
            (true, UploadState::Open) if expired => Owner::Leftover,
            (true, _) => Owner::Session,
        }
    }
}

/// Whether the sweep aborts an old upload whose owner is `owner`.
pub fn should_abort(owner: Owner) -> bool {
    owner != Owner::Session
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";
    const DAY: u64 = 24 * 60 * 60 * 1000;
    const LIFETIME: u64 = 6 * DAY;
    const NOW: u64 = 1_795_909_240_000;

    #[test]
    fn object_keys_round_trip() {
        let id = FileId::parse(ID).unwrap();
        assert_eq!(object_key(&id), "files/AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            triage(&object_key(&id), 0, NOW, LIFETIME),
            Triage::AskSession(id)
        );
    }

    #[test]
    fn only_keys_sealdrop_writes_are_ours() {
        for key in [
            "",
            "files/",
            "files",
            "other/AAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAAA/x",
            "files//AAAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAA+",
            "Files/AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(triage(key, 0, NOW, LIFETIME), Triage::NotOurs, "{key:?}");
        }
    }

    #[test]
    fn an_upload_is_old_once_more_than_the_lifetime_has_passed() {
        let key = format!("files/{ID}");
        let id = FileId::parse(ID).unwrap();
        assert_eq!(
            triage(&key, NOW - LIFETIME, NOW, LIFETIME),
            Triage::TooYoung
        );
        assert_eq!(
            triage(&key, NOW - LIFETIME - 1, NOW, LIFETIME),
            Triage::AskSession(id.clone())
        );
        assert_eq!(triage(&key, 0, NOW, LIFETIME), Triage::AskSession(id));
        // Just begun, or "begun" in the future by a clock ahead of ours.
        for initiated in [NOW, NOW - 1, NOW + 1, u64::MAX] {
            assert_eq!(triage(&key, initiated, NOW, LIFETIME), Triage::TooYoung);
        }
    }

    #[test]
    fn only_uploads_no_session_still_uses_are_aborted() {
        use UploadState::*;
        for state in [Open, Completing, Completed] {
            assert_eq!(Owner::of(state, false, true), Owner::Session, "{state:?}");
            assert!(!should_abort(Owner::of(state, false, true)));
        }
        // Storage confirmed the abort, yet lists the upload: abort it again. An aborting
        // session (whose own abort may keep failing) or an expired one would abort it
        // anyway.
        assert_eq!(Owner::of(Aborted, false, true), Owner::Leftover);
        assert_eq!(Owner::of(Aborting, false, true), Owner::Leftover);
        assert_eq!(Owner::of(Open, true, true), Owner::Leftover);
        for state in [Open, Completing, Completed, Aborting, Aborted] {
            assert_eq!(Owner::of(state, false, false), Owner::Leftover, "{state:?}");
        }
        assert!(should_abort(Owner::Leftover));
        assert!(should_abort(Owner::NoSession));
        assert_eq!(
            serde_json::to_string(&Owner::NoSession).unwrap(),
            r#""no_session""#
        );
    }

    #[test]
    fn a_run_spends_its_subrequests_and_kept_uploads_cost_less() {
        let mut budget = Budget::after_listing(10);
        let mut asked = 0;
        // Every upload kept: one subrequest each.
        while budget.can_ask() {
            budget.spend();
            asked += 1;
        }
        assert_eq!(
            asked, 39,
            "40 left after 10 pages; the last one could not be aborted"
        );
        // Every upload aborted: two each.
        let mut budget = Budget::after_listing(10);
        let mut aborted = 0;
        while budget.can_ask() {
            budget.spend();
            budget.spend();
            aborted += 1;
        }
        assert_eq!(aborted, 20);
        assert!(!Budget::after_listing(49).can_ask());
        assert!(!Budget::after_listing(60).can_ask());
    }

    #[test]
    fn runs_start_at_different_points_of_the_listing() {
        const HOUR: u64 = 60 * 60 * 1000;
        assert_eq!(rotation(0, NOW), 0);
        assert_eq!(rotation(1, NOW), 0);
        let starts: std::collections::BTreeSet<usize> =
            (0..24).map(|h| rotation(100, NOW + h * HOUR)).collect();
        assert!(starts.len() > 15, "{starts:?}");
        assert!(starts.iter().all(|&s| s < 100));
        // Within the hour, the same start.
        assert_eq!(rotation(100, NOW), rotation(100, NOW / HOUR * HOUR));
    }
}
