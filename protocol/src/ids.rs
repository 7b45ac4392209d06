//! Identifiers and bearer secrets: the public, signed [`FileId`], the secret, signed
//! [`ShareToken`], the secret [`OwnerToken`] and the client's secret [`IdempotencyKey`].
//!
//! **Signed ids.** A file id or share token is 16 random bytes (drawn by the caller, or
//! derived from an idempotency key) followed by the first 8 bytes of
//! `HMAC-SHA256(SIGNING_SECRET, label || those 16 bytes)`, written as 32 characters of
//! base64url. The worker checks the MAC ([`SignedId::is_signed`]) before it addresses
//! any Durable Object, so probing random ids reaches no object and creates no storage,
//! and a validly signed id whose object holds nothing was issued and then deleted
//! (`410 gone`). 64 bits of MAC make a forged id a 2^-64 guess per request.
//!
//! Owner tokens and idempotency keys are 16 random bytes written as 22 characters of
//! base64url. Parsing is strict everywhere (exact length, URL-safe alphabet, canonical
//! trailing bits) so a value that came in through a URL path segment or a header can
//! only ever be one of these, never `..`, `/` or an encoding trick.
//!
//! The server never stores an owner token, only its SHA-256 ([`OwnerTokenHash`]); a
//! presented token is hashed and compared in constant time. A 128-bit random token needs
//! no salt or slow hash: there is nothing to brute-force.
//!
//! A create call that carries an idempotency key gets its file id and owner token
//! derived from the key ([`IdempotencyKey::derive`]) instead of drawn at random, so a
//! retried create reaches the same session and gets the same answer, and no orphan
//! session is left behind by a create whose answer was lost.

use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api_error::ApiError;

/// Length of the text form of an [`OwnerToken`] or an [`IdempotencyKey`].
pub const ID_TEXT_LEN: usize = 22;
/// Length of the text form of a signed id ([`FileId`], [`ShareToken`]).
pub const SIGNED_ID_TEXT_LEN: usize = 32;
/// Bytes of MAC a signed id carries.
const TAG_LEN: usize = 8;

/// Strictly decodes base64url into exactly `N` bytes: the one spelling
/// `URL_SAFE_NO_PAD` writes for them, nothing else.
fn decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != (N * 4).div_ceil(3)
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let mut out = [0u8; N];
    // The engine rejects non-canonical trailing bits, so each id has one spelling.
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(n) if n == N => Some(out),
        _ => None,
    }
}

/// Strictly decodes 22 base64url characters into 16 bytes.
fn decode_id(text: &str) -> Option<[u8; 16]> {
    decode_exact::<16>(text)
}

/// Whether `text` is 16 bytes of base64url in its one canonical 22-character spelling
/// (the shape of every unsigned random id: owner tokens, idempotency keys, download
/// ids).
pub fn is_random_id(text: &str) -> bool {
    decode_id(text).is_some()
}

/// The 16 bytes of a random id's canonical 22-character text.
pub fn decode_random_id(text: &str) -> Option<[u8; 16]> {
    decode_id(text)
}

/// The 22-character text of 16 random bytes.
pub fn random_id_text(bytes: [u8; 16]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A string that is not a valid id or token of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an id of the expected length and base64url alphabet")]
pub struct InvalidId;

// ---------------------------------------------------------------------------------
// Signed ids: FileId, ShareToken
// ---------------------------------------------------------------------------------

/// What kind of signed id a [`SignedId`] is: its MAC label and how it prints.
pub trait IdKind {
    /// Domain separation for the MAC: no other use of the server's secret signs a
    /// message that starts with these bytes.
    const LABEL: &'static [u8];
    /// The type's name in `Debug` output.
    const NAME: &'static str;
    /// Whether the id is a bearer secret (then `Debug` redacts it).
    const SECRET: bool;
}

/// Marks a [`FileId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {}
/// Marks a [`ShareToken`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShareKind {}

impl IdKind for FileKind {
    const LABEL: &'static [u8] = b"sealdrop/v1/file-id\0";
    const NAME: &'static str = "FileId";
    const SECRET: bool = false;
}

impl IdKind for ShareKind {
    const LABEL: &'static [u8] = b"sealdrop/v1/share-token\0";
    const NAME: &'static str = "ShareToken";
    const SECRET: bool = true;
}

/// The public id of a file: it names the file's session object and appears in the
/// owner's API paths.
pub type FileId = SignedId<FileKind>;

/// The bearer secret of a share link (`/s/<token>#...`): it names the share's object.
/// Whoever holds it may open downloads of the share's file (and, with a password share,
/// try passwords); its `Debug` form is redacted.
pub type ShareToken = SignedId<ShareKind>;

/// 16 random bytes and their 8-byte MAC under the server's secret (see the module
/// docs), as 32 characters of base64url.
pub struct SignedId<K> {
    bytes: [u8; 16 + TAG_LEN],
    text: String,
    kind: PhantomData<K>,
}

impl<K: IdKind> SignedId<K> {
    /// The id for `random` (16 random bytes drawn by the caller), signed with the
    /// server's keyed MAC ([`crate::token::BlobSigner::server_mac`]).
    pub fn sign(server_mac: &Hmac<Sha256>, random: [u8; 16]) -> Self {
        let mut bytes = [0u8; 16 + TAG_LEN];
        bytes[..16].copy_from_slice(&random);
        bytes[16..].copy_from_slice(&Self::tag(server_mac, &random));
        Self::from_bytes(bytes)
    }

    /// The id with these 24 bytes, signed or not (tests, and parsing).
    pub fn from_bytes(bytes: [u8; 16 + TAG_LEN]) -> Self {
        Self {
            bytes,
            text: URL_SAFE_NO_PAD.encode(bytes),
            kind: PhantomData,
        }
    }

    /// Parses the text form, accepting only exactly what [`SignedId::from_bytes`]
    /// writes. Says nothing about the MAC: check [`SignedId::is_signed`] before acting
    /// on the id.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        decode_exact(text).map(Self::from_bytes).ok_or(InvalidId)
    }

    /// Whether the id carries this server's MAC (compared in constant time).
    pub fn is_signed(&self, server_mac: &Hmac<Sha256>) -> bool {
        let expected = Self::tag(server_mac, &self.random_part());
        expected.ct_eq(&self.bytes[16..]).into()
    }

    /// The 16 random bytes, without the MAC.
    pub fn random_part(&self) -> [u8; 16] {
        let mut random = [0u8; 16];
        random.copy_from_slice(&self.bytes[..16]);
        random
    }

    /// The random part as 22 characters of base64url: what names a share's object, so
    /// the MAC never leaves the worker.
    pub fn random_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.random_part())
    }

    /// The 32-character text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn tag(server_mac: &Hmac<Sha256>, random: &[u8; 16]) -> [u8; TAG_LEN] {
        let mut mac = server_mac.clone();
        mac.update(K::LABEL);
        mac.update(random);
        let out = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&out[..TAG_LEN]);
        tag
    }
}

impl<K> Clone for SignedId<K> {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes,
            text: self.text.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for SignedId<K> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<K> Eq for SignedId<K> {}

impl<K> PartialOrd for SignedId<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for SignedId<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl<K> std::hash::Hash for SignedId<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl<K> std::fmt::Display for SignedId<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<K: IdKind> std::fmt::Debug for SignedId<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match K::SECRET {
            true => write!(f, "{}(<redacted>)", K::NAME),
            false => write!(f, "{}({})", K::NAME, self.text),
        }
    }
}

impl<K: IdKind> std::str::FromStr for SignedId<K> {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<K> Serialize for SignedId<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, K: IdKind> Deserialize<'de> for SignedId<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------
// OwnerToken
// ---------------------------------------------------------------------------------

/// The secret that proves ownership of an upload. Given to the creator once; its
/// `Debug` form is redacted so it cannot end up in logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerToken {
    bytes: [u8; 16],
    text: String,
}

impl OwnerToken {
    /// The token for 16 random bytes drawn by the caller.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self {
            bytes,
            text: URL_SAFE_NO_PAD.encode(bytes),
        }
    }

    /// Parses the text form strictly.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        decode_id(text).map(Self::from_random).ok_or(InvalidId)
    }

    /// The 22-character text form, to hand to the creator (and nowhere else).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What the server stores: SHA-256 of the token's 16 bytes.
    pub fn hash(&self) -> OwnerTokenHash {
        OwnerTokenHash(Sha256::digest(self.bytes).into())
    }
}

impl std::fmt::Debug for OwnerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerToken(<redacted>)")
    }
}

impl Serialize for OwnerToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for OwnerToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of an owner token: what the session stores (as base64url in JSON).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OwnerTokenHash([u8; 32]);

impl OwnerTokenHash {
    /// Whether `presented` (the token text a request carried) is the token, compared in
    /// constant time. Malformed input is simply not the token.
    pub fn matches(&self, presented: &str) -> bool {
        match OwnerToken::parse(presented) {
            Ok(token) => token.hash().0.ct_eq(&self.0).into(),
            Err(InvalidId) => false,
        }
    }

    /// Checks an `Authorization` header value (`Bearer <ownerToken>`, the scheme in any
    /// case as RFC 7235 says), or its absence, answering `401 unauthorized` for anything
    /// but the right token.
    pub fn check_bearer(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        let token = authorization
            .map(str::trim)
            .and_then(|v| v.split_once([' ', '\t']))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match token {
            Some(t) if self.matches(t) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for OwnerTokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerTokenHash({})", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl Serialize for OwnerTokenHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for OwnerTokenHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(&text, &mut out) {
            Ok(32) => Ok(Self(out)),
            _ => Err(serde::de::Error::custom("not a base64url SHA-256 hash")),
        }
    }
}

// ---------------------------------------------------------------------------------
// IdempotencyKey
// ---------------------------------------------------------------------------------

/// Domain separation for [`IdempotencyKey::derive`]: no other use of the server's
/// secret signs a message that starts with these bytes.
const DERIVE_LABEL: &[u8] = b"sealdrop/v1/idempotent-create\0";
/// Domain separation for [`IdempotencyKey::derive_share`].
const DERIVE_SHARE_LABEL: &[u8] = b"sealdrop/v1/idempotent-share\0";

/// 128 random bits a client draws per upload and sends with `POST /api/uploads`. It is
/// as secret as the owner token (whoever holds it can derive the token through the
/// server), so its `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey([u8; 16]);

impl IdempotencyKey {
    /// The key for 16 random bytes drawn by the caller.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses the 22-character text form strictly.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        decode_id(text).map(Self).ok_or(InvalidId)
    }

    /// The 22-character text form.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The file id and owner token of the upload this key creates:
    /// `HMAC-SHA256(secret, label || key)` under the server's keyed MAC
    /// ([`crate::token::BlobSigner::server_mac`]), the first 16 bytes the file id's
    /// random part (signed like any file id), the last 16 the owner token. The two
    /// halves of a PRF output are independent, so the public file id tells nothing
    /// about the token; without the server's secret neither can be computed from the
    /// key.
    pub fn derive(&self, server_mac: &Hmac<Sha256>) -> (FileId, OwnerToken) {
        let mut mac = server_mac.clone();
        mac.update(DERIVE_LABEL);
        mac.update(&self.0);
        let out = mac.finalize().into_bytes();
        let mut file = [0u8; 16];
        let mut token = [0u8; 16];
        file.copy_from_slice(&out[..16]);
        token.copy_from_slice(&out[16..]);
        (
            FileId::sign(server_mac, file),
            OwnerToken::from_random(token),
        )
    }

    /// The random part of the token of the share this key creates on `file`:
    /// the first 16 bytes of `HMAC-SHA256(secret, label || file id || key)`. The file
    /// id is in it, so one key on two files makes two shares; without the server's
    /// secret the token cannot be computed from the key.
    pub fn derive_share(&self, server_mac: &Hmac<Sha256>, file: &FileId) -> [u8; 16] {
        let mut mac = server_mac.clone();
        mac.update(DERIVE_SHARE_LABEL);
        mac.update(file.as_str().as_bytes());
        mac.update(&self.0);
        let out = mac.finalize().into_bytes();
        let mut random = [0u8; 16];
        random.copy_from_slice(&out[..16]);
        random
    }
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(<redacted>)")
    }
}

impl Serialize for IdempotencyKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::api_error::ApiErrorCode;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn server(secret: &[u8]) -> Hmac<Sha256> {
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret).unwrap()
    }

    #[test]
    fn signed_ids_are_32_url_safe_chars() {
        let id = FileId::from_bytes([0xff; 24]);
        assert_eq!(id.as_str(), "________________________________");
        assert_eq!(FileId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(FileId::from_bytes([0; 24]).as_str(), "A".repeat(32));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<FileId>(&json).unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("FileId({id})"));
        let share = ShareToken::from_bytes([1; 24]);
        assert_eq!(format!("{share:?}"), "ShareToken(<redacted>)");
        assert_eq!(share.random_part(), [1; 16]);
        assert_eq!(share.random_text(), URL_SAFE_NO_PAD.encode([1u8; 16]));
    }

    #[test]
    fn the_mac_is_the_first_8_bytes_of_an_hmac_over_label_and_random_part() {
        let id = FileId::sign(&server(SECRET), [9; 16]);
        let mut mac = server(SECRET);
        mac.update(b"sealdrop/v1/file-id\0");
        mac.update(&[9; 16]);
        let out = mac.finalize().into_bytes();
        let mut expected = [9u8; 24];
        expected[16..].copy_from_slice(&out[..8]);
        assert_eq!(id, FileId::from_bytes(expected));
        assert!(id.is_signed(&server(SECRET)));
        // Another secret, another label, any flipped bit: not signed.
        assert!(!id.is_signed(&server(b"another secret, also 32 bytes ok")));
        let share = ShareToken::sign(&server(SECRET), [9; 16]);
        assert_ne!(share.as_str(), id.as_str());
        assert!(
            !ShareToken::parse(id.as_str())
                .unwrap()
                .is_signed(&server(SECRET))
        );
        assert!(
            !FileId::parse(share.as_str())
                .unwrap()
                .is_signed(&server(SECRET))
        );
        for byte in 0..24 {
            let mut bytes = [9u8; 24];
            bytes[16..].copy_from_slice(&out[..8]);
            bytes[byte] ^= 1;
            assert!(
                !FileId::from_bytes(bytes).is_signed(&server(SECRET)),
                "{byte}"
            );
        }
    }

    #[test]
    fn signed_ids_reject_everything_else() {
        let a32 = "A".repeat(32);
        for bad in [
            String::new(),
            "A".repeat(31),
            "A".repeat(33),
            "A".repeat(22), // an owner token's length
            format!("{}=", &a32[..31]),
            format!("{}+", &a32[..31]),
            format!("{}/", &a32[..31]),
            format!("{}.", &a32[..31]),
            format!("..{}", &a32[..30]),
            format!("{}\u{e9}", &a32[..30]),
            format!("{} A", &a32[..30]),
        ] {
            assert_eq!(FileId::parse(&bad), Err(InvalidId), "{bad:?}");
            assert_eq!(ShareToken::parse(&bad), Err(InvalidId), "{bad:?}");
        }
        assert!(serde_json::from_str::<FileId>("\"../etc/passwd\"").is_err());
        // Owner tokens keep their canonical 22-character form.
        assert_eq!(OwnerToken::parse("AAAAAAAAAAAAAAAAAAAAAB"), Err(InvalidId));
        assert_eq!(OwnerToken::parse(&a32), Err(InvalidId));
    }

    #[test]
    fn owner_token_hash_checks_in_constant_time() {
        let token = OwnerToken::from_random([7; 16]);
        let stored = token.hash();
        assert!(stored.matches(token.as_str()));
        assert!(!stored.matches(OwnerToken::from_random([8; 16]).as_str()));
        assert!(!stored.matches(""));
        assert!(!stored.matches("not a token"));
        assert_eq!(format!("{token:?}"), "OwnerToken(<redacted>)");

        // The scheme is case-insensitive (RFC 7235 section 2.1).
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let bearer = format!("{scheme} {}", token.as_str());
            assert_eq!(stored.check_bearer(Some(&bearer)), Ok(()), "{scheme}");
        }
        let tabbed = format!("Bearer\t {} ", token.as_str());
        assert_eq!(stored.check_bearer(Some(&tabbed)), Ok(()));
        let basic = format!("Basic {}", token.as_str());
        let glued = format!("Bearer{}", token.as_str());
        for bad in [
            None,
            Some(""),
            Some(token.as_str()),
            Some("Bearer "),
            Some("Basic x"),
            Some(basic.as_str()),
            Some(glued.as_str()),
        ] {
            assert_eq!(
                stored.check_bearer(bad).unwrap_err().code,
                ApiErrorCode::Unauthorized
            );
        }
    }

    #[test]
    fn owner_token_hash_is_sha256_of_the_bytes_and_round_trips() {
        let token = OwnerToken::from_random([0; 16]);
        // SHA-256 of 16 zero bytes.
        let expected: [u8; 32] = Sha256::digest([0u8; 16]).into();
        assert_eq!(token.hash().as_bytes(), &expected);
        let json = serde_json::to_string(&token.hash()).unwrap();
        let back: OwnerTokenHash = serde_json::from_str(&json).unwrap();
        assert_eq!(back, token.hash());
        assert!(serde_json::from_str::<OwnerTokenHash>("\"AAAA\"").is_err());
    }

    #[test]
    fn idempotency_keys_derive_stable_independent_ids() {
        use hmac::KeyInit;
        let secret = SECRET;
        let key = IdempotencyKey::from_random([5; 16]);
        let (file, token) = key.derive(&server(secret));
        // Stable: the same key and secret give the same ids.
        assert_eq!(key.derive(&server(secret)), (file.clone(), token.clone()));
        // Pinned against a direct HMAC computation over label || key.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(b"sealdrop/v1/idempotent-create\0");
        mac.update(&[5; 16]);
        let out = mac.finalize().into_bytes();
        assert_eq!(
            file,
            FileId::sign(&server(secret), out[..16].try_into().unwrap())
        );
        assert!(file.is_signed(&server(secret)));
        assert_eq!(
            token.as_str(),
            OwnerToken::from_random(out[16..].try_into().unwrap()).as_str()
        );
        // Another key or another secret: other ids.
        let (other_file, _) = IdempotencyKey::from_random([6; 16]).derive(&server(secret));
        assert_ne!(other_file, file);
        let (file2, token2) = key.derive(&server(b"another secret, also 32 bytes ok"));
        assert_ne!((file2, token2.as_str()), (file.clone(), token.as_str()));
        // Text form: strict, and redacted in Debug.
        let text = key.to_text();
        assert_eq!(IdempotencyKey::parse(&text), Ok(key.clone()));
        assert_eq!(IdempotencyKey::parse("short"), Err(InvalidId));
        assert_eq!(format!("{key:?}"), "IdempotencyKey(<redacted>)");
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<IdempotencyKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<IdempotencyKey>("\"x\"").is_err());
    }

    #[test]
    fn idempotency_keys_derive_one_share_per_file() {
        use hmac::KeyInit;
        let key = IdempotencyKey::from_random([5; 16]);
        let file = FileId::sign(&server(SECRET), [1; 16]);
        let share = key.derive_share(&server(SECRET), &file);
        assert_eq!(key.derive_share(&server(SECRET), &file), share);
        // Pinned against a direct HMAC computation over label || file id || key.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET).unwrap();
        mac.update(b"sealdrop/v1/idempotent-share\0");
        mac.update(file.as_str().as_bytes());
        mac.update(&[5; 16]);
        let out = mac.finalize().into_bytes();
        assert_eq!(share[..], out[..16]);
        // Another file, another key, or the upload derivation: other ids.
        let other_file = FileId::sign(&server(SECRET), [2; 16]);
        assert_ne!(key.derive_share(&server(SECRET), &other_file), share);
        let other_key = IdempotencyKey::from_random([6; 16]);
        assert_ne!(other_key.derive_share(&server(SECRET), &file), share);
        assert_ne!(key.derive(&server(SECRET)).0.random_part(), share);
    }

    proptest! {
        #[test]
        fn every_random_id_round_trips(bytes in any::<[u8; 16]>()) {
            let id = FileId::sign(&server(SECRET), bytes);
            prop_assert_eq!(id.as_str().len(), SIGNED_ID_TEXT_LEN);
            prop_assert_eq!(FileId::parse(id.as_str()), Ok(id.clone()));
            prop_assert!(id.is_signed(&server(SECRET)));
            let token = OwnerToken::from_random(bytes);
            prop_assert_eq!(OwnerToken::parse(token.as_str()), Ok(token.clone()));
            prop_assert!(token.hash().matches(token.as_str()));
        }

        #[test]
        fn parse_never_accepts_a_non_id(text in "\\PC{0,30}") {
            if let Ok(id) = FileId::parse(&text) {
                prop_assert_eq!(id.as_str(), text.as_str());
                prop_assert_eq!(text.len(), SIGNED_ID_TEXT_LEN);
            }
        }
    }
}
