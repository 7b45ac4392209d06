//! The rules of one share link, as a sans-IO machine its `Share` Durable Object only
//! persists: who may open a download, how downloads are counted, passwords, and the
//! access records the owner sees.
//!
//! **Counting.** A download counts once, when it is completed
//! ([`Share::complete`], idempotent) or, if it is never completed nor abandoned, when
//! its lease lapses: the lease is the expiry of the last storage URL it was handed, so
//! a lapsed download may have fetched the whole file. A limit of N admits at most N
//! counted downloads: an open download that has not counted yet holds a slot, so while
//! `counted + holding >= N` a new download is refused with `409 share_busy`, and once
//! `counted >= N` with `410 share_exhausted`. Retries, resumes and parallel ranged
//! requests of one download all run under one download id, so they count once: a
//! retried open with the same id is the same download, URLs are re-issued to it
//! ([`Share::reissue`]), and a download that lapsed (counted) may still resume, until
//! [`DOWNLOAD_LIFETIME_MS`] after it was opened.
//! Abandoning ([`Share::abandon`]) frees an uncounted download's slot. Everything is
//! decided by one object, one call at a time, so two parallel attempts on a one-time
//! share get one download and one `share_busy`.
//!
//! **Lifetime.** A revoked share (final) or an expired one refuses everything a
//! downloader asks, open downloads included (their URLs still work until they
//! expire, then they lapse). An exhausted share still serves the downloads it counted.
//!
//! **Passwords.** The browser derives a verifier from the password (Argon2id, then
//! HKDF: FORMAT.md); the share stores only `SHA-256(label || share id || verifier)`
//! and compares in constant time. Wrong verifiers are counted and rate limited per share
//! (a bucket of [`PASSWORD_ATTEMPTS`] per [`PASSWORD_PERIOD_MS`]); while it is empty
//! the verifier is not even checked (`429 too_many_attempts`), so no guess is tested.
//!
//! **Records.** Every attempt (view, open, completion, abandonment, lapse, refusal) is
//! recorded with its time and coarse client info (a country code and a user-agent
//! family: never an address), in two capped lists ([`AccessLog`]): the downloads the
//! share admitted, and visits (views, retried opens and every refusal), so no flood of
//! visits, refused opens of a used-up share included, flushes a download.
//!
//! **Idempotent creation.** A create that carries an idempotency key reaches the same
//! share again (its token is derived from the key); the share keeps the digest of the
//! request that made it ([`CreateShareRequest::digest`]) and answers a retry of that
//! request as the same share, another request with `409 idempotency_conflict`
//! ([`Share::retried`]).
//!
//! Time is passed in (ms since epoch); every call first settles the leases that lapsed.

mod api;
mod client;
mod log;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::account::Bucket;
use crate::api_error::{ApiError, ApiErrorCode};

pub use api::{
    CreateShareRequest, DownloadOpened, OpenDownloadRequest, PublicShare, ShareView,
    UpdateShareRequest, Verifier,
};
pub use client::{ClientInfo, FAMILIES, agent_family};
pub use log::{AccessLog, AccessRecord, MAX_DOWNLOAD_RECORDS, MAX_VISIT_RECORDS, RecordKind};

/// Downloads open and not yet counted at once on one share.
pub const MAX_OPEN_DOWNLOADS: usize = 100;
/// Downloads a share remembers (open, lapsed, recently closed); past it the one
/// settled longest ago is forgotten.
const MAX_KNOWN_DOWNLOADS: usize = MAX_OPEN_DOWNLOADS * 10;
/// How long a download lives from its open: URLs are issued to it (a lapsed one,
/// counted, may resume) until then, never after, so one download id cannot serve a
/// share for ever. Then it is forgotten.
pub const DOWNLOAD_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;
/// The latest expiry a share may have (ms since epoch): the largest integer JSON
/// numbers carry exactly, far beyond any real date.
pub const MAX_EXPIRY_MS: u64 = (1 << 53) - 1;
/// How long a closed download is remembered, so a retried complete or abandon gets
/// the same answer.
pub const CLOSED_KEEP_MS: u64 = 60 * 60 * 1000;
/// Wrong passwords a share takes before it makes the guesser wait...
pub const PASSWORD_ATTEMPTS: u32 = 5;
/// ...and the period in which that many come back: 5 per 15 minutes, 480 a day.
pub const PASSWORD_PERIOD_MS: u64 = 15 * 60 * 1000;

/// Domain separation for the stored verifier hash.
const VERIFIER_LABEL: &[u8] = b"sealdrop/v1/share-verifier\0";

/// Where a share is, as its owner and its downloaders see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareState {
    /// Downloads may be opened.
    Active,
    /// Past its expiry.
    Expired,
    /// Its downloads are used up.
    Exhausted,
    /// Revoked by its owner (final).
    Revoked,
}

impl ShareState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Exhausted => "exhausted",
            Self::Revoked => "revoked",
        }
    }
}

/// Where a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadState {
    /// URLs may be issued to it.
    Active,
    /// Completed (counted), at this time.
    Completed(u64),
    /// Abandoned, at this time (counted only if it had lapsed before).
    Abandoned(u64),
}

/// One download of the share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    // `lease_until <= opened_at + DOWNLOAD_LIFETIME_MS` always.
    /// When it was opened.
    pub opened_at: u64,
    /// When its last URL expires: then it lapses.
    pub lease_until: u64,
    /// Whether it counted (completed, or lapsed).
    pub counted: bool,
    /// Where it is.
    pub state: DownloadState,
}

impl Download {
    /// When it is forgotten: no URL is issued to it from then on.
    pub fn end_of_life(&self) -> u64 {
        self.opened_at.saturating_add(DOWNLOAD_LIFETIME_MS)
    }
}

/// What happened, in an access record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The share's public info was read.
    Viewed,
    /// A download was opened (or a retried open answered again).
    Opened,
    /// A download was completed (and counted).
    Completed,
    /// A download was abandoned.
    Abandoned,
    /// A download's lease lapsed without a completion (and it counted).
    Lapsed,
    /// An attempt was refused with this code.
    Refused(ApiErrorCode),
}

impl Outcome {
    /// The wire name: the event, or the refusal's code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewed => "viewed",
            Self::Opened => "opened",
            Self::Completed => "completed",
            Self::Abandoned => "abandoned",
            Self::Lapsed => "lapsed",
            Self::Refused(code) => code.as_str(),
        }
    }

    /// The outcome for a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Viewed,
            Self::Opened,
            Self::Completed,
            Self::Abandoned,
            Self::Lapsed,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
        .or_else(|| ApiErrorCode::parse(name).map(Self::Refused))
    }
}

/// The owner's settings of a share.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// When it expires (`None`: with its file, which never expires).
    pub expires_at: Option<u64>,
    /// The most downloads it counts (`None`: unlimited).
    pub download_limit: Option<u32>,
    /// The stored hash of its password verifier (`None`: no password).
    pub verifier_hash: Option<[u8; 32]>,
}

/// One share: its settings, downloads, counters and records. Everything is public
/// plain data so the shell can persist it as it likes; the methods keep the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The owner's settings.
    pub settings: Settings,
    /// When it was created.
    pub created_at: u64,
    /// When it was revoked.
    pub revoked_at: Option<u64>,
    /// Downloads counted so far.
    pub counted: u64,
    /// Wrong verifiers so far.
    pub failed_attempts: u64,
    /// The wrong-password bucket.
    pub attempts: Bucket,
    /// Downloads by id: open ones, those that lapsed (resumable for a while) and those
    /// closed recently.
    pub downloads: BTreeMap<String, Download>,
    /// The access records.
    pub log: AccessLog,
    /// The digest of the idempotent request that created it (`None`: made without an
    /// idempotency key).
    pub request_digest: Option<[u8; 32]>,
    /// Downloads changed since the shell last persisted (drained by it).
    pub dirty: BTreeSet<String>,
}

/// SHA-256 over the label, the share's id (its token's random part) and the verifier:
/// what a share stores instead of the verifier.
pub fn verifier_hash(share_id: &[u8; 16], verifier: &Verifier) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(VERIFIER_LABEL);
    h.update(share_id);
    h.update(verifier.as_bytes());
    h.finalize().into()
}

impl Share {
    /// A new share with `settings`, created at `now_ms`.
    pub fn new(settings: Settings, now_ms: u64) -> Self {
        Self {
            settings,
            created_at: now_ms,
            revoked_at: None,
            counted: 0,
            failed_attempts: 0,
            attempts: Bucket::full(PASSWORD_ATTEMPTS, now_ms),
            downloads: BTreeMap::new(),
            log: AccessLog::default(),
            request_digest: None,
            dirty: BTreeSet::new(),
        }
    }

    /// A create reached this share, which exists: the retry of the idempotent request
    /// that made it (the same `digest`) is answered as this share; anything else is
    /// `409 idempotency_conflict` (without a key a token is drawn at random, so a
    /// create never reaches an existing share).
    pub fn retried(&self, digest: Option<&[u8; 32]>) -> Result<(), ApiError> {
        match (digest, &self.request_digest) {
            (Some(digest), Some(made_by)) if digest == made_by => Ok(()),
            _ => Err(ApiError::new(
                ApiErrorCode::IdempotencyConflict,
                "this idempotency key already created a share from another request body",
            )),
        }
    }

    /// Where the share is at `now_ms` (call after [`Share::settle`]).
    pub fn state(&self, now_ms: u64) -> ShareState {
        if self.revoked_at.is_some() {
            ShareState::Revoked
        } else if self.settings.expires_at.is_some_and(|at| now_ms >= at) {
            ShareState::Expired
        } else if self
            .settings
            .download_limit
            .is_some_and(|limit| self.counted >= u64::from(limit))
        {
            ShareState::Exhausted
        } else {
            ShareState::Active
        }
    }

    /// Downloads open and not yet counted: each holds a slot.
    pub fn holding(&self) -> usize {
        self.downloads
            .values()
            .filter(|d| d.state == DownloadState::Active && !d.counted)
            .count()
    }

    /// Counts the downloads whose lease lapsed (recording each at its lapse), and
    /// forgets downloads past their lifetime and closed ones past [`CLOSED_KEEP_MS`].
    pub fn settle(&mut self, now_ms: u64) {
        let mut lapsed = Vec::new();
        let mut forget = Vec::new();
        for (id, d) in &mut self.downloads {
            match d.state {
                DownloadState::Active => {
                    if now_ms >= d.lease_until && !d.counted {
                        d.counted = true;
                        lapsed.push((d.lease_until, id.clone()));
                    }
                    if now_ms >= d.end_of_life() {
                        forget.push(id.clone());
                    }
                }
                DownloadState::Completed(at) | DownloadState::Abandoned(at)
                    if now_ms >= at.saturating_add(CLOSED_KEEP_MS) =>
                {
                    forget.push(id.clone());
                }
                _ => {}
            }
        }
        lapsed.sort();
        for (at, id) in lapsed {
            self.counted += 1;
            self.record(at, RecordKind::Download, Outcome::Lapsed, None);
            self.dirty.insert(id);
        }
        for id in forget {
            self.downloads.remove(&id);
            self.dirty.insert(id);
        }
    }

    /// `GET /api/shares/{token}`: what the receive page needs, or the refusal.
    pub fn view(&mut self, now_ms: u64, client: &ClientInfo) -> Result<PublicShare, ApiError> {
        self.settle(now_ms);
        let answer = self.refusal(now_ms).map_or_else(
            || {
                Ok(PublicShare {
                    password: self.settings.verifier_hash.is_some(),
                    expires_at: self.settings.expires_at,
                    downloads_left: self
                        .settings
                        .download_limit
                        .map(|limit| u64::from(limit).saturating_sub(self.counted)),
                })
            },
            Err,
        );
        let outcome = answer
            .as_ref()
            .map_or_else(|e| Outcome::Refused(e.code), |_| Outcome::Viewed);
        self.record(now_ms, RecordKind::Visit, outcome, Some(client.clone()));
        answer
    }

    /// Opens download `id` (or answers it again, if it is open: a retried open; `409
    /// download_closed` if it was completed or abandoned), its lease running `lease_ms`
    /// from now. Checks, in order: the share is not revoked or
    /// expired, the password (`share_id` salts the verifier hash), then a slot (new
    /// downloads only). Answers the new lease's end.
    pub fn open(
        &mut self,
        id: &str,
        verifier: Option<&Verifier>,
        share_id: &[u8; 16],
        now_ms: u64,
        lease_ms: u64,
        client: &ClientInfo,
    ) -> Result<u64, ApiError> {
        self.settle(now_ms);
        let known = self.downloads.contains_key(id);
        let answer = self.try_open(id, verifier, share_id, now_ms, lease_ms);
        let outcome = answer
            .as_ref()
            .map_or_else(|e| Outcome::Refused(e.code), |_| Outcome::Opened);
        let kind = RecordKind::of_open(answer.is_ok() && !known);
        self.record(now_ms, kind, outcome, Some(client.clone()));
        answer
    }

    fn try_open(
        &mut self,
        id: &str,
        verifier: Option<&Verifier>,
        share_id: &[u8; 16],
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<u64, ApiError> {
        if let Some(refused) = self.refusal(now_ms)
            && refused.code != ApiErrorCode::ShareExhausted
        {
            return Err(refused);
        }
        self.check_password(verifier, share_id, now_ms)?;
        if self.downloads.contains_key(id) {
            // A retried open: the same download, if it is still open.
            return self.extend(id, now_ms, lease_ms);
        }
        if let Some(refused) = self.refusal(now_ms) {
            return Err(refused); // exhausted
        }
        let holding = self.holding();
        let full = self
            .settings
            .download_limit
            .is_some_and(|limit| self.counted + holding as u64 >= u64::from(limit));
        if full || holding >= MAX_OPEN_DOWNLOADS {
            return Err(self.busy(now_ms));
        }
        if self.downloads.len() >= MAX_KNOWN_DOWNLOADS {
            self.forget_oldest_settled();
        }
        let lease_until = now_ms
            .saturating_add(lease_ms)
            .min(now_ms.saturating_add(DOWNLOAD_LIFETIME_MS));
        self.downloads.insert(
            id.to_owned(),
            Download {
                opened_at: now_ms,
                lease_until,
                counted: false,
                state: DownloadState::Active,
            },
        );
        self.dirty.insert(id.to_owned());
        Ok(lease_until)
    }

    /// Issues download `id` a fresh URL: its lease now runs `lease_ms` from now.
    /// `404 download_not_found` for an unknown id, `409 download_closed` for one
    /// completed or abandoned; the share's refusals if it is revoked or expired.
    pub fn reissue(&mut self, id: &str, now_ms: u64, lease_ms: u64) -> Result<u64, ApiError> {
        self.settle(now_ms);
        self.refuse_unless_live(now_ms)?;
        self.extend(id, now_ms, lease_ms)
    }

    /// Extends open download `id`'s lease to `lease_ms` from now, never past its
    /// lifetime (`409 download_closed` once that is over: open a new download).
    fn extend(&mut self, id: &str, now_ms: u64, lease_ms: u64) -> Result<u64, ApiError> {
        let d = self.active(id)?;
        let end = d.end_of_life();
        if now_ms >= end {
            return Err(ApiError::new(
                ApiErrorCode::DownloadClosed,
                "the download is past its lifetime (24 hours from its open); open a new one",
            ));
        }
        d.lease_until = d.lease_until.max(now_ms.saturating_add(lease_ms)).min(end);
        let until = d.lease_until;
        self.dirty.insert(id.to_owned());
        Ok(until)
    }

    /// Download `id` completed: it counts (once; a repeat is answered `Ok`).
    pub fn complete(&mut self, id: &str, now_ms: u64, client: &ClientInfo) -> Result<(), ApiError> {
        let Some(d) = self.close(id, now_ms, Outcome::Completed, client)? else {
            return Ok(());
        };
        d.state = DownloadState::Completed(now_ms);
        let newly = !std::mem::replace(&mut d.counted, true);
        self.counted += u64::from(newly);
        Ok(())
    }

    /// Download `id` is abandoned: its slot is free, and it counts only if it had
    /// lapsed before. A repeat is answered `Ok`; `409 download_closed` once completed.
    /// Allowed whatever the share's state (it never gives anything out).
    pub fn abandon(&mut self, id: &str, now_ms: u64, client: &ClientInfo) -> Result<(), ApiError> {
        if let Some(d) = self.close(id, now_ms, Outcome::Abandoned, client)? {
            d.state = DownloadState::Abandoned(now_ms);
        }
        Ok(())
    }

    /// What closing download `id` as `outcome` (`Completed` or `Abandoned`) shares:
    /// settles; `None` if it is closed that way already (a repeat); else checks the
    /// share (a completion needs it live), records the close and answers the open
    /// download for the caller to close.
    fn close(
        &mut self,
        id: &str,
        now_ms: u64,
        outcome: Outcome,
        client: &ClientInfo,
    ) -> Result<Option<&mut Download>, ApiError> {
        self.settle(now_ms);
        let repeat = match self.downloads.get(id).map(|d| d.state) {
            Some(DownloadState::Completed(_)) => outcome == Outcome::Completed,
            Some(DownloadState::Abandoned(_)) => outcome == Outcome::Abandoned,
            _ => false,
        };
        if repeat {
            return Ok(None);
        }
        if outcome == Outcome::Completed {
            self.refuse_unless_live(now_ms)?;
        }
        self.active(id)?;
        self.dirty.insert(id.to_owned());
        let client = Some(client.clone());
        self.record(now_ms, RecordKind::Download, outcome, client);
        self.active(id).map(Some)
    }

    /// The owner revokes the share, at once and for good (idempotent).
    pub fn revoke(&mut self, now_ms: u64) {
        self.settle(now_ms);
        self.revoked_at.get_or_insert(now_ms);
    }

    /// The owner changes the expiry (`Some(at)`) and/or the limit (`Some(None)`:
    /// unlimited). `410 share_revoked` once revoked; `400 invalid_expiry` for an expiry
    /// not after now or past the file's; `400 invalid_limit` for a limit of 0.
    pub fn update(
        &mut self,
        expires_at: Option<u64>,
        download_limit: Option<Option<u32>>,
        file_expires_at: Option<u64>,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        self.settle(now_ms);
        if self.revoked_at.is_some() {
            return Err(refused(ShareState::Revoked));
        }
        if let Some(at) = expires_at {
            check_expiry(at, file_expires_at, now_ms)?;
        }
        if let Some(Some(0)) = download_limit {
            return Err(invalid_limit());
        }
        if let Some(at) = expires_at {
            self.settings.expires_at = Some(at);
        }
        if let Some(limit) = download_limit {
            self.settings.download_limit = limit;
        }
        Ok(())
    }

    /// The refusal a downloader gets now, if any: revoked, expired, exhausted.
    fn refusal(&self, now_ms: u64) -> Option<ApiError> {
        match self.state(now_ms) {
            ShareState::Active => None,
            state => Some(refused(state)),
        }
    }

    /// Refuses a revoked or expired share (an exhausted one still serves the
    /// downloads it has).
    fn refuse_unless_live(&self, now_ms: u64) -> Result<(), ApiError> {
        match self.state(now_ms) {
            ShareState::Revoked | ShareState::Expired => Err(refused(self.state(now_ms))),
            ShareState::Active | ShareState::Exhausted => Ok(()),
        }
    }

    /// The open download `id`: `404 download_not_found`, `409 download_closed`.
    fn active(&mut self, id: &str) -> Result<&mut Download, ApiError> {
        match self.downloads.get_mut(id) {
            None => Err(ApiError::new(
                ApiErrorCode::DownloadNotFound,
                "no such download on this share (open one)",
            )),
            Some(d) if d.state != DownloadState::Active => Err(ApiError::new(
                ApiErrorCode::DownloadClosed,
                "the download was completed or abandoned",
            )),
            Some(d) => Ok(d),
        }
    }

    /// The password check: none needed, or the right verifier. A wrong one is counted
    /// and spends a token of the bucket; an empty bucket refuses before any check.
    fn check_password(
        &mut self,
        verifier: Option<&Verifier>,
        share_id: &[u8; 16],
        now_ms: u64,
    ) -> Result<(), ApiError> {
        let Some(stored) = self.settings.verifier_hash else {
            return Ok(());
        };
        let Some(verifier) = verifier else {
            return Err(ApiError::new(
                ApiErrorCode::PasswordRequired,
                "this share needs its password (send the verifier)",
            ));
        };
        self.attempts
            .refill(PASSWORD_ATTEMPTS, PASSWORD_PERIOD_MS, now_ms);
        if let Some(wait) = self
            .attempts
            .wait_secs(PASSWORD_ATTEMPTS, PASSWORD_PERIOD_MS)
        {
            return Err(ApiError::too_many(
                ApiErrorCode::TooManyAttempts,
                format!("too many wrong passwords; retry in {wait} s"),
                wait,
            ));
        }
        if bool::from(verifier_hash(share_id, verifier).ct_eq(&stored)) {
            return Ok(());
        }
        self.attempts.spend();
        self.failed_attempts += 1;
        Err(ApiError::new(ApiErrorCode::WrongPassword, "wrong password"))
    }

    /// `409 share_busy`, waiting until the earliest uncounted lease lapses.
    fn busy(&self, now_ms: u64) -> ApiError {
        let earliest = self
            .downloads
            .values()
            .filter(|d| d.state == DownloadState::Active && !d.counted)
            .map(|d| d.lease_until)
            .min()
            .unwrap_or(now_ms);
        let secs = earliest.saturating_sub(now_ms).div_ceil(1000).max(1);
        ApiError {
            retry_after: Some(u32::try_from(secs).unwrap_or(u32::MAX)),
            ..ApiError::new(
                ApiErrorCode::ShareBusy,
                "every download this share allows is in progress; try again later",
            )
        }
    }

    /// Forgets the download settled longest ago: closed, or lapsed (counted) and only
    /// kept so that it may resume. Uncounted ones hold slots and are never forgotten
    /// here ([`MAX_OPEN_DOWNLOADS`] bounds them).
    fn forget_oldest_settled(&mut self) {
        let oldest = self
            .downloads
            .iter()
            .filter_map(|(id, d)| match d.state {
                DownloadState::Completed(at) | DownloadState::Abandoned(at) => Some((at, id)),
                DownloadState::Active if d.counted => Some((d.lease_until, id)),
                DownloadState::Active => None,
            })
            .min()
            .map(|(_, id)| id.clone());
        if let Some(id) = oldest {
            self.downloads.remove(&id);
            self.dirty.insert(id);
        }
    }

    fn record(&mut self, at: u64, kind: RecordKind, outcome: Outcome, client: Option<ClientInfo>) {
        self.log.push(at, kind, outcome, client);
    }
}

/// A share's expiry must be after now, no later than its file's, and no later than
/// [`MAX_EXPIRY_MS`].
pub fn check_expiry(at: u64, file_expires_at: Option<u64>, now_ms: u64) -> Result<(), ApiError> {
    if at <= now_ms || at > MAX_EXPIRY_MS || file_expires_at.is_some_and(|file| at > file) {
        return Err(ApiError::new(
            ApiErrorCode::InvalidExpiry,
            "a share must expire after now and no later than its file",
        ));
    }
    Ok(())
}

fn invalid_limit() -> ApiError {
    ApiError::new(
        ApiErrorCode::InvalidLimit,
        "downloadLimit must be a positive number (or null: unlimited)",
    )
}

/// The refusal for a share in `state` (not active).
fn refused(state: ShareState) -> ApiError {
    match state {
        ShareState::Revoked => ApiError::new(ApiErrorCode::ShareRevoked, "the share was revoked"),
        ShareState::Expired => ApiError::new(ApiErrorCode::ShareExpired, "the share has expired"),
        ShareState::Exhausted | ShareState::Active => ApiError::new(
            ApiErrorCode::ShareExhausted,
            "the share's downloads are used up",
        ),
    }
}
