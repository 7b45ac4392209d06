//! Quota and rate limit: the rules of one `Account` object, kept per user (a JWT
//! `sub`) or per anonymous client (a network prefix), as a pure machine its Durable
//! Object only persists.
//!
//! **Who.** [`account_name`] names the object: a keyed hash (HMAC under the server's
//! secret) of the user id, or of the client's IPv4 /24 or IPv6 /48 prefix, so neither a
//! user id nor any part of an IP address is ever stored or used as a name. Clients on
//! one /24 share an account: that is what stops one machine from posing as many.
//!
//! **Quota.** Every upload reserves its record section's bytes (under a keyed hash of
//! its file id, [`reservation_key`]) when it is created
//! ([`Account::reserve`], idempotent per file, so a retried create is not counted
//! twice); the bytes are released when the upload is aborted or the file deleted or
//! expired ([`Account::release`], idempotent). A reservation is *pending* until the
//! upload's session exists ([`Account::confirm`]); a pending one lapses after
//! [`PENDING_TTL_MS`], so a create that died between the account and the session
//! leaks nothing for long. (If a confirm is lost, the file is not counted: the failure
//! errs toward the user, never toward locking them out.)
//!
//! **Rate.** Creates are limited by a token bucket holding up to one minute's worth
//! (`CREATE_RATE_PER_MINUTE`), refilled continuously. A retried create of an upload
//! already reserved costs nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::api_error::{ApiError, ApiErrorCode};

/// How long a reservation may stay unconfirmed: 10 minutes, far longer than a create.
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;

/// Millitokens per token: the bucket counts in thousandths so refills stay exact.
const MILLI: u64 = 1000;
/// The create bucket's period: it holds, and refills, a minute's worth.
const MINUTE_MS: u64 = 60 * 1000;

/// Domain separation for [`account_name`].
const NAME_LABEL: &[u8] = b"sealdrop/v1/account\0";
/// Domain separation for [`reservation_key`].
const RESERVATION_LABEL: &[u8] = b"sealdrop/v1/reservation\0";

/// Who an account belongs to, before it is hashed into a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountKey<'a> {
    /// A user: the JWT `sub`.
    User(&'a str),
    /// An anonymous client: its IP address as the platform reports it
    /// (`CF-Connecting-IP`), or `None` where there is none.
    Client(Option<&'a str>),
}

/// The account object's name for `key`: 22 characters of base64url of a keyed hash.
pub fn account_name(server_mac: &Hmac<Sha256>, key: &AccountKey<'_>) -> String {
    let mut mac = server_mac.clone();
    mac.update(NAME_LABEL);
    match key {
        AccountKey::User(sub) => {
            mac.update(b"u");
            mac.update(sub.as_bytes());
        }
        AccountKey::Client(ip) => {
            mac.update(b"n");
            mac.update(&network_prefix(*ip));
        }
    }
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
}

/// What an account calls a file's reservation: a keyed hash of the file id (22
/// characters of base64url), so an account never holds the ids of its files and its
/// storage cannot link a user or a network to them without the server's secret.
pub fn reservation_key(server_mac: &Hmac<Sha256>, file_id: &str) -> String {
    let mut mac = server_mac.clone();
    mac.update(RESERVATION_LABEL);
    mac.update(file_id.as_bytes());
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
}

/// The network an address belongs to: 4 family-tagged bytes of an IPv4 /24, 7 of an
/// IPv6 /48 (an IPv4-mapped IPv6 address counts as its IPv4), one byte for no address
/// or one that does not parse.
pub fn network_prefix(ip: Option<&str>) -> Vec<u8> {
    let parsed = ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok());
    match parsed.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            vec![4, o[0], o[1], o[2]]
        }
        Some(IpAddr::V6(v6)) => {
            let o = v6.octets();
            vec![6, o[0], o[1], o[2], o[3], o[4], o[5]]
        }
        None => vec![0],
    }
}

/// What an account allows (`QUOTA_BYTES`, `CREATE_RATE_PER_MINUTE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// Bytes of record sections an account may hold at once.
    pub quota_bytes: u64,
    /// Uploads an account may create per minute (and at once, from a full bucket).
    pub creates_per_minute: u32,
}

/// A file's bytes held against the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Record-section bytes.
    pub bytes: u64,
    /// Whether the upload's session exists (else it lapses after [`PENDING_TTL_MS`]).
    pub confirmed: bool,
    /// When it was made (ms since epoch).
    pub reserved_at: u64,
}

/// The create-rate token bucket, in thousandths of a create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Millitokens left at `updated_at`.
    pub millitokens: u64,
    /// When it was last refilled (ms since epoch).
    pub updated_at: u64,
}

impl Bucket {
    /// A full bucket of `capacity` tokens.
    pub fn full(capacity: u32, now_ms: u64) -> Self {
        Self {
            millitokens: u64::from(capacity) * MILLI,
            updated_at: now_ms,
        }
    }

    /// Refills `capacity` tokens per `period_ms`, up to `capacity` (a clock that went
    /// back refills nothing).
    pub fn refill(&mut self, capacity: u32, period_ms: u64, now_ms: u64) {
        let cap = u64::from(capacity) * MILLI;
        let elapsed = now_ms.saturating_sub(self.updated_at);
        let refill = elapsed.saturating_mul(cap) / period_ms.max(1);
        self.millitokens = self.millitokens.saturating_add(refill).min(cap);
        self.updated_at = self.updated_at.max(now_ms);
    }

    /// Seconds until a whole token is there (at least 1); `None` if one is there now.
    /// Call [`Bucket::refill`] first.
    pub fn wait_secs(&self, capacity: u32, period_ms: u64) -> Option<u32> {
        if self.millitokens >= MILLI {
            return None;
        }
        let cap = u64::from(capacity) * MILLI;
        let wait_ms = match cap {
            0 => period_ms,
            _ => ((MILLI - self.millitokens) * period_ms).div_ceil(cap),
        };
        Some(u32::try_from(wait_ms.div_ceil(1000).max(1)).unwrap_or(u32::MAX))
    }

    /// Spends a token (no-op on an empty bucket: check [`Bucket::wait_secs`] first).
    pub fn spend(&mut self) {
        self.millitokens = self.millitokens.saturating_sub(MILLI);
    }

    /// Takes one token of `capacity` per `period_ms`: `Err(seconds until one is
    /// there)` when the bucket is empty.
    pub fn take(&mut self, capacity: u32, period_ms: u64, now_ms: u64) -> Result<(), u32> {
        self.refill(capacity, period_ms, now_ms);
        match self.wait_secs(capacity, period_ms) {
            Some(wait) => Err(wait),
            None => {
                self.spend();
                Ok(())
            }
        }
    }
}

/// One account: its reservations and its create bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Per file id (text): the bytes reserved.
    pub reservations: BTreeMap<String, Reservation>,
    /// The create bucket.
    pub bucket: Bucket,
}

impl Account {
    /// A new account, its bucket full.
    pub fn new(limits: &AccountLimits, now_ms: u64) -> Self {
        Self {
            reservations: BTreeMap::new(),
            bucket: Bucket::full(limits.creates_per_minute, now_ms),
        }
    }

    /// Bytes held now (confirmed, and pending that have not lapsed at `now_ms`).
    pub fn stored_bytes(&self, now_ms: u64) -> u64 {
        self.reservations
            .values()
            .filter(|r| !lapsed(r, now_ms))
            .map(|r| r.bytes)
            .sum()
    }

    /// Reserves `bytes` for the upload of `file` (pending until confirmed). A file
    /// already reserved is answered `Ok` again at no cost. Otherwise `403
    /// quota_exceeded` if the bytes do not fit, then `429 rate_limited` (with its wait)
    /// if the bucket is empty; a refusal changes nothing but the bucket's refill.
    pub fn reserve(
        &mut self,
        file: &str,
        bytes: u64,
        limits: &AccountLimits,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        self.settle(now_ms);
        if self.reservations.contains_key(file) {
            return Ok(());
        }
        let stored = self.stored_bytes(now_ms);
        if stored.saturating_add(bytes) > limits.quota_bytes {
            return Err(ApiError::new(
                ApiErrorCode::QuotaExceeded,
                format!(
                    "this upload needs {bytes} bytes; the account holds {stored} of its {} bytes",
                    limits.quota_bytes
                ),
            ));
        }
        self.bucket
            .take(limits.creates_per_minute, MINUTE_MS, now_ms)
            .map_err(|wait| {
                ApiError::too_many(
                    ApiErrorCode::RateLimited,
                    format!(
                        "at most {} uploads a minute; retry in {wait} s",
                        limits.creates_per_minute
                    ),
                    wait,
                )
            })?;
        self.reservations.insert(
            file.to_owned(),
            Reservation {
                bytes,
                confirmed: false,
                reserved_at: now_ms,
            },
        );
        Ok(())
    }

    /// The upload's session exists: its reservation no longer lapses. `false` if
    /// there is none (it lapsed, or was released).
    pub fn confirm(&mut self, file: &str) -> bool {
        match self.reservations.get_mut(file) {
            Some(r) => {
                r.confirmed = true;
                true
            }
            None => false,
        }
    }

    /// Gives the file's bytes back (idempotent): the bytes released, if any.
    pub fn release(&mut self, file: &str) -> Option<u64> {
        self.reservations.remove(file).map(|r| r.bytes)
    }

    /// Drops pending reservations that lapsed.
    pub fn settle(&mut self, now_ms: u64) {
        self.reservations.retain(|_, r| !lapsed(r, now_ms));
    }
}

fn lapsed(r: &Reservation, now_ms: u64) -> bool {
    !r.confirmed && now_ms >= r.reserved_at.saturating_add(PENDING_TTL_MS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hmac::KeyInit;

    const T0: u64 = 1_764_000_000_000;
    const LIMITS: AccountLimits = AccountLimits {
        quota_bytes: 1_000,
        creates_per_minute: 3,
    };

    fn code(r: Result<(), ApiError>) -> (ApiErrorCode, Option<u32>) {
        let e = r.unwrap_err();
        (e.code, e.retry_after)
    }

    #[test]
    fn quota_counts_reservations_until_released() {
        let mut a = Account::new(&LIMITS, T0);
        a.reserve("f1", 600, &LIMITS, T0).unwrap();
        assert!(a.confirm("f1"));
        // The same file again costs nothing (a retried create).
        a.reserve("f1", 600, &LIMITS, T0).unwrap();
        assert_eq!(a.stored_bytes(T0), 600);
        assert_eq!(
            code(a.reserve("f2", 401, &LIMITS, T0)).0,
            ApiErrorCode::QuotaExceeded
        );
        a.reserve("f2", 400, &LIMITS, T0).unwrap();
        assert_eq!(a.stored_bytes(T0), 1_000);
        assert_eq!(a.release("f1"), Some(600));
        assert_eq!(a.release("f1"), None);
        assert_eq!(a.stored_bytes(T0), 400);
        // A refusal for quota cost no create: the third still fits the bucket.
        a.reserve("f3", 600, &LIMITS, T0).unwrap();
        assert_eq!(
            code(a.reserve("f4", 0, &LIMITS, T0)).0,
            ApiErrorCode::RateLimited
        );
    }

    #[test]
    fn pending_reservations_lapse_confirmed_ones_do_not() {
        let mut a = Account::new(&LIMITS, T0);
        a.reserve("pending", 500, &LIMITS, T0).unwrap();
        a.reserve("kept", 500, &LIMITS, T0).unwrap();
        assert!(a.confirm("kept"));
        let later = T0 + PENDING_TTL_MS;
        assert_eq!(a.stored_bytes(later - 1), 1_000);
        assert_eq!(a.stored_bytes(later), 500);
        a.settle(later);
        assert!(!a.confirm("pending"));
        assert_eq!(a.reservations.len(), 1);
    }

    #[test]
    fn creates_are_rate_limited_by_a_bucket_of_one_minute() {
        let mut a = Account::new(&LIMITS, T0);
        for n in 0..3 {
            a.reserve(&format!("f{n}"), 1, &LIMITS, T0).unwrap();
        }
        // Empty: one create comes back every 20 s (3 a minute).
        assert_eq!(
            code(a.reserve("f3", 1, &LIMITS, T0)),
            (ApiErrorCode::RateLimited, Some(20))
        );
        assert_eq!(
            code(a.reserve("f3", 1, &LIMITS, T0 + 19_000)),
            (ApiErrorCode::RateLimited, Some(1))
        );
        a.reserve("f3", 1, &LIMITS, T0 + 20_000).unwrap();
        // A refused create reserves nothing.
        assert_eq!(a.reservations.len(), 4);
        // A long pause refills no more than a minute's worth.
        let later = T0 + 3_600_000;
        for n in 4..7 {
            a.reserve(&format!("f{n}"), 1, &LIMITS, later).unwrap();
        }
        assert_eq!(
            code(a.reserve("f7", 1, &LIMITS, later)).0,
            ApiErrorCode::RateLimited
        );
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing() {
        let mut b = Bucket {
            millitokens: 0,
            updated_at: T0,
        };
        assert_eq!(b.take(3, MINUTE_MS, T0 - 60_000), Err(20));
        assert_eq!(b.updated_at, T0);
        let mut none = Bucket::full(0, T0);
        assert_eq!(none.take(0, MINUTE_MS, T0 + 1_000_000), Err(60));
        // 5 tokens per 15 minutes: one every 3 minutes.
        let mut slow = Bucket::full(5, T0);
        for _ in 0..5 {
            slow.take(5, 15 * MINUTE_MS, T0).unwrap();
        }
        assert_eq!(slow.take(5, 15 * MINUTE_MS, T0), Err(180));
    }

    #[test]
    fn names_hash_users_and_network_prefixes_never_addresses() {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[7; 32]).unwrap();
        let name = |key| account_name(&mac, &key);
        let a = name(AccountKey::Client(Some("203.0.113.7")));
        assert_eq!(a.len(), 22);
        assert!(!a.contains("203"));
        // One /24, one account; the next /24 another.
        assert_eq!(a, name(AccountKey::Client(Some("203.0.113.250"))));
        assert_eq!(a, name(AccountKey::Client(Some("::ffff:203.0.113.9"))));
        assert_ne!(a, name(AccountKey::Client(Some("203.0.114.7"))));
        // One /48 for IPv6.
        let v6 = name(AccountKey::Client(Some("2001:db8:1:2::1")));
        assert_eq!(v6, name(AccountKey::Client(Some("2001:db8:1:ffff::9"))));
        assert_ne!(v6, name(AccountKey::Client(Some("2001:db8:2::1"))));
        // No address, or garbage: one shared account.
        assert_eq!(
            name(AccountKey::Client(None)),
            name(AccountKey::Client(Some("not an ip")))
        );
        // Users and networks never share names.
        assert_ne!(
            name(AccountKey::User("alice")),
            name(AccountKey::User("bob"))
        );
        assert_eq!(network_prefix(Some("10.1.2.3")), vec![4, 10, 1, 2]);
        let key = reservation_key(&mac, "some-file-id");
        assert_eq!(key.len(), 22);
        assert_ne!(key, reservation_key(&mac, "another-file-id"));
        assert_ne!(key, name(AccountKey::User("some-file-id")));
        assert_eq!(network_prefix(Some(" 2001:db8:1:2::1 ")).len(), 7);
    }
}
