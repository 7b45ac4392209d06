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
//! (from what the file's session object says, [`Owner::of`]). The R2 binding cannot list multipart
//! uploads; there R2's own abort of uploads older than 7 days is the backstop.

use serde::{Deserialize, Serialize};

use crate::ids::FileId;
use crate::session::UploadState;

/// Where every file's record section lives: `files/<fileId>`.
pub const OBJECT_KEY_PREFIX: &str = "files/";
/// ListMultipartUploads pages one sweep reads (1,000 uploads each).
pub const MAX_LIST_PAGES: usize = 10;
/// Uploads one sweep asks about (and may abort). A scheduled run is one Worker
/// invocation, whose subrequests are limited (50 on the Free plan): at most 10 pages
/// plus 2 × 20 calls fit, and the next run picks up where the budget ran out.
pub const MAX_CHECKS_PER_RUN: usize = 20;
const _: () = assert!(MAX_LIST_PAGES + 2 * MAX_CHECKS_PER_RUN <= 50);

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
    /// The file's session uses another upload (this one is left from a create that was
    /// retried), or is aborted: nobody will finish this one.
    Leftover,
    /// The file's session uses this upload and may still complete or abort it (open,
    /// completing or aborting), or completed the file with it: the session's business.
    Session,
}

impl Owner {
    /// The owner of an upload, by the state of the file's session and whether the
    /// session's upload id is the listed one.
    pub fn of(state: UploadState, holds_this_upload: bool) -> Self {
        match (holds_this_upload, state) {
            (false, _) | (true, UploadState::Aborted) => Owner::Leftover,
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

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const DAY: u64 = 24 * 60 * 60 * 1000;
    const LIFETIME: u64 = 6 * DAY;
    const NOW: u64 = 1_795_909_240_000;

    #[test]
    fn object_keys_round_trip() {
        let id = FileId::parse(ID).unwrap();
        assert_eq!(object_key(&id), "files/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
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
            "other/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/x",
            "files//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "files/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
            "Files/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
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
        for state in [Open, Completing, Completed, Aborting] {
            assert_eq!(Owner::of(state, true), Owner::Session, "{state:?}");
            assert!(!should_abort(Owner::of(state, true)));
        }
        // Storage confirmed the abort, yet lists the upload: abort it again.
        assert_eq!(Owner::of(Aborted, true), Owner::Leftover);
        for state in [Open, Completing, Completed, Aborting, Aborted] {
            assert_eq!(Owner::of(state, false), Owner::Leftover, "{state:?}");
        }
        assert!(should_abort(Owner::Leftover));
        assert!(should_abort(Owner::NoSession));
        assert_eq!(
            serde_json::to_string(&Owner::NoSession).unwrap(),
            r#""no_session""#
        );
    }
}
