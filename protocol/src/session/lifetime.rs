//! A file's life after its upload: who owns it, how long it lives, its shares, and
//! how it is deleted.
//!
//! A completed file lives `lifetime` from the moment its completion was asked for
//! (or forever, where the deployment allows it), and can be deleted by its owner at
//! once. Either way the session moves to `Deleting`, whose steps run in order, each
//! repeated (by the next request and the alarm) until it is confirmed: purge every
//! share object of the file (first, so that no share serves a file being deleted),
//! delete the object from storage, release the file's bytes from the owner's account,
//! wipe this object's storage. After the wipe nothing of the
//! file is left anywhere; the worker answers `410 gone` for its (validly signed) id.

use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ApiErrorCode};
use crate::ids::OwnerTokenHash;

use super::share_slots::{Reserve, ShareSlots};
use super::{Phase, Session};

/// How long a file lives after completion unless its upload asked otherwise: 7 days.
pub const DEFAULT_FILE_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Who owns a file. The upload's owner token always proves ownership (its holder
/// created the upload); a file created with a verified JWT is also its user's, so that
/// user's later tokens prove it too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Owner {
    /// Anonymous: whoever holds the owner token.
    TokenHolder,
    /// A user: the JWT `sub` of the request that created the upload.
    User {
        /// The user id.
        sub: String,
    },
}

impl Owner {
    /// `401 unauthorized` unless `authorization` is `Bearer <the owner token>` (whose
    /// hash is `token_hash`), or `user` (a verified JWT's `sub`) is the owning user.
    pub fn authorize(
        &self,
        token_hash: &OwnerTokenHash,
        authorization: Option<&str>,
        user: Option<&str>,
    ) -> Result<(), ApiError> {
        match (self, user) {
            (Self::User { sub }, Some(user)) if sub == user => Ok(()),
            _ => token_hash.check_bearer(authorization),
        }
    }
}

/// How long a completed file lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// This many milliseconds after completion.
    Ms(u64),
    /// Until its owner deletes it (only where the deployment allows it).
    Never,
}

/// The deployment's rules for lifetimes (`FILE_TTL_SECONDS`, `FILE_MAX_TTL_SECONDS`,
/// `ALLOW_NO_EXPIRY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifetimePolicy {
    /// The lifetime of a file whose upload named none.
    pub default_ms: u64,
    /// The longest lifetime an upload may ask for.
    pub max_ms: u64,
    /// Whether an upload may ask for no expiry at all.
    pub allow_never: bool,
}

impl LifetimePolicy {
    /// The lifetime for an upload that asked for `seconds` (`Some(None)`: never
    /// expire; `None`: nothing asked). `400 invalid_expiry` for zero, more than
    /// `max_ms`, or "never" where it is not allowed.
    pub fn choose(&self, asked: Option<Option<u64>>) -> Result<Lifetime, ApiError> {
        let max_secs = self.max_ms / 1000;
        match asked {
            None => Ok(Lifetime::Ms(self.default_ms.min(self.max_ms))),
            Some(None) if self.allow_never => Ok(Lifetime::Never),
            Some(None) => Err(ApiError::new(
                ApiErrorCode::InvalidExpiry,
                format!("files here must expire, within {max_secs} seconds"),
            )),
            Some(Some(secs)) if secs == 0 || secs > max_secs => Err(ApiError::new(
                ApiErrorCode::InvalidExpiry,
                format!("expiresIn must be 1 to {max_secs} seconds, not {secs}"),
            )),
            Some(Some(secs)) => Ok(Lifetime::Ms(secs * 1000)),
        }
    }
}

/// What a session knows about its file beyond the upload: its owner, the account its
/// bytes count against, and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTerms {
    /// Who owns the file.
    pub owner: Owner,
    /// The name of the `Account` object holding the file's bytes (a keyed hash, never
    /// an IP or a user id in the clear); empty when no account counts them.
    pub account: String,
    /// How long the completed file lives.
    pub lifetime: Lifetime,
}

impl Default for FileTerms {
    fn default() -> Self {
        Self {
            owner: Owner::TokenHolder,
            account: String::new(),
            lifetime: Lifetime::Ms(DEFAULT_FILE_TTL_MS),
        }
    }
}

impl Session {
    /// When the completed file expires (ms since epoch); `None` before completion and
    /// for a file that never expires.
    pub fn file_expires_at(&self) -> Option<u64> {
        match (&self.phase, self.terms.lifetime) {
            (Phase::Completed { completed_at, .. }, Lifetime::Ms(ms)) => {
                Some(completed_at.saturating_add(ms))
            }
            _ => None,
        }
    }

    /// Whether the session holds a completed file that has not expired at `now_ms`:
    /// `404 file_not_found` for an upload that is not completed, `410 gone` for a
    /// file being deleted or past its lifetime (its alarm deletes it).
    pub fn ensure_file(&self, now_ms: u64) -> Result<(), ApiError> {
        match self.phase {
            Phase::Completed { .. } if self.file_expires_at().is_some_and(|at| now_ms >= at) => {
                Err(ApiError::gone())
            }
            Phase::Completed { .. } => Ok(()),
            Phase::Deleting(_) => Err(ApiError::gone()),
            Phase::Aborting(_) | Phase::Aborted { .. } => Err(ApiError::new(
                ApiErrorCode::FileNotFound,
                "the upload was aborted: it never became a file",
            )),
            Phase::Open | Phase::Completing { .. } => Err(ApiError::new(
                ApiErrorCode::FileNotFound,
                "the upload is not completed (abort it with DELETE /api/uploads/{fileId})",
            )),
        }
    }

    /// The owner deletes the completed file: `Deleting` at once, its steps follow.
    /// Idempotent while deleting; `404 file_not_found` for an upload not completed.
    pub fn request_delete(&mut self) -> Result<(), ApiError> {
        match self.phase {
            Phase::Completed { .. } => {
                self.enter(self.purging());
                Ok(())
            }
            Phase::Deleting(_) => Ok(()),
            _ => self.ensure_file(0),
        }
    }

    /// The shares of the file: their slots (tokens' random parts), pending or made.
    pub fn shares(&self) -> &ShareSlots {
        &self.shares
    }

    /// Reserves the slot of a new share of the file (before its object is made, so that
    /// deletion always knows every share object that may exist): [`ShareSlots::reserve`].
    /// The file must be live.
    pub fn add_share(&mut self, random_text: &str, now_ms: u64) -> Result<Reserve, ApiError> {
        self.ensure_file(now_ms)?;
        self.shares.reserve(random_text, now_ms)
    }

    /// The share's object was made: its slot is confirmed ([`ShareSlots::made`]). `410
    /// gone` if the file started being deleted meanwhile (its purge of the share may
    /// have run before the object was made: the shell purges it again).
    pub fn share_made(&mut self, random_text: &str, now_ms: u64) -> Result<(), ApiError> {
        self.ensure_file(now_ms)?;
        self.shares.made(random_text);
        Ok(())
    }

    /// The answer to a [`Reserve::Check`]: [`ShareSlots::checked`].
    pub fn share_checked(&mut self, random_text: &str, since: u64, made: bool) {
        self.shares.checked(random_text, since, made);
    }

    /// Forgets a share whose object holds nothing (purged after its creation failed).
    pub fn drop_share(&mut self, random_text: &str) {
        self.shares.drop(random_text);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ids::OwnerToken;

    #[test]
    fn lifetimes_follow_the_policy() {
        let policy = LifetimePolicy {
            default_ms: 7_000,
            max_ms: 10_000,
            allow_never: false,
        };
        assert_eq!(policy.choose(None), Ok(Lifetime::Ms(7_000)));
        assert_eq!(policy.choose(Some(Some(10))), Ok(Lifetime::Ms(10_000)));
        assert_eq!(policy.choose(Some(Some(1))), Ok(Lifetime::Ms(1_000)));
        for bad in [Some(Some(0)), Some(Some(11)), Some(None)] {
            assert_eq!(
                policy.choose(bad).unwrap_err().code,
                ApiErrorCode::InvalidExpiry,
                "{bad:?}"
            );
        }
        let open = LifetimePolicy {
            allow_never: true,
            ..policy
        };
        assert_eq!(open.choose(Some(None)), Ok(Lifetime::Never));
        // A default above the maximum is held to it.
        let odd = LifetimePolicy {
            default_ms: 20_000,
            ..policy
        };
        assert_eq!(odd.choose(None), Ok(Lifetime::Ms(10_000)));
    }

    #[test]
    fn owners_are_the_token_holder_or_their_user() {
        let token = OwnerToken::from_random([4; 16]);
        let bearer = format!("Bearer {}", token.as_str());
        let hash = token.hash();
        let anon = Owner::TokenHolder;
        assert_eq!(anon.authorize(&hash, Some(&bearer), None), Ok(()));
        assert_eq!(anon.authorize(&hash, Some(&bearer), Some("alice")), Ok(()));
        assert!(anon.authorize(&hash, None, Some("alice")).is_err());
        let alice = Owner::User {
            sub: "alice".into(),
        };
        assert_eq!(alice.authorize(&hash, None, Some("alice")), Ok(()));
        assert_eq!(alice.authorize(&hash, Some(&bearer), Some("bob")), Ok(()));
        let refused = alice.authorize(&hash, None, Some("bob")).unwrap_err();
        assert_eq!(refused.code, ApiErrorCode::Unauthorized);
        assert!(alice.authorize(&hash, Some("Bearer x"), None).is_err());
        let json = serde_json::to_string(&alice).unwrap();
        assert_eq!(json, r#"{"kind":"user","sub":"alice"}"#);
        assert_eq!(serde_json::from_str::<Owner>(&json).unwrap(), alice);
        assert_eq!(
            serde_json::to_string(&anon).unwrap(),
            r#"{"kind":"tokenHolder"}"#
        );
    }
}
