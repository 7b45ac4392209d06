//! Identifiers and bearer secrets: the public [`FileId`], the secret [`OwnerToken`] and
//! the client's secret [`IdempotencyKey`].
//!
//! All are 16 random bytes (128 bits, drawn by the caller) written as 22 characters of
//! base64url without padding. Parsing is strict (exact length, URL-safe alphabet,
//! canonical trailing bits) so a value that came in through a URL path segment or a
//! header can only ever be one of these, never `..`, `/` or an encoding trick.
//!
//! The server never stores an owner token, only its SHA-256 ([`OwnerTokenHash`]); a
//! presented token is hashed and compared in constant time. A 128-bit random token needs
//! no salt or slow hash: there is nothing to brute-force.
//!
//! A create call that carries an idempotency key gets its file id and owner token
//! derived from the key ([`IdempotencyKey::derive`]) instead of drawn at random, so a
//! retried create reaches the same session and gets the same answer, and no orphan
//! session is left behind by a create whose answer was lost.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api_error::ApiError;

/// Length of the text form of a [`FileId`] or an [`OwnerToken`].
pub const ID_TEXT_LEN: usize = 22;

/// Strictly decodes 22 base64url characters into 16 bytes.
fn decode_id(text: &str) -> Option<[u8; 16]> {
    if text.len() != ID_TEXT_LEN
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let mut out = [0u8; 16];
    // The engine rejects non-canonical trailing bits, so each id has one spelling.
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(16) => Some(out),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// FileId
// ---------------------------------------------------------------------------------

/// The public id of a file: it appears in links and URL paths.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(String);

/// A string that is not a valid [`FileId`] or [`OwnerToken`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a 22-character base64url id")]
pub struct InvalidId;

impl FileId {
    /// The id for 16 random bytes drawn by the caller.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses the text form, accepting only exactly what [`FileId::from_random`] writes.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        decode_id(text).map(Self::from_random).ok_or(InvalidId)
    }

    /// The 22-character text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileId({})", self.0)
    }
}

impl std::str::FromStr for FileId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for FileId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FileId {
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
    /// ([`crate::token::BlobSigner::server_mac`]), the first 16 bytes the file id, the
    /// last 16 the owner token. The two halves of a PRF output are independent, so the
    /// public file id tells nothing about the token; without the server's secret
    /// neither can be computed from the key.
    pub fn derive(&self, server_mac: &Hmac<Sha256>) -> (FileId, OwnerToken) {
        let mut mac = server_mac.clone();
        mac.update(DERIVE_LABEL);
        mac.update(&self.0);
        let out = mac.finalize().into_bytes();
        let mut file = [0u8; 16];
        let mut token = [0u8; 16];
        file.copy_from_slice(&out[..16]);
        token.copy_from_slice(&out[16..]);
        (FileId::from_random(file), OwnerToken::from_random(token))
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

    #[test]
    fn file_id_is_22_url_safe_chars() {
        let id = FileId::from_random([0xff; 16]);
        assert_eq!(id.as_str(), "_____________________w");
        assert_eq!(FileId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(
            FileId::from_random([0; 16]).as_str(),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<FileId>(&json).unwrap(), id);
    }

    #[test]
    fn file_id_rejects_everything_else() {
        for bad in [
            "",
            "AAAAAAAAAAAAAAAAAAAAA",   // 21
            "AAAAAAAAAAAAAAAAAAAAAAA", // 23
            "AAAAAAAAAAAAAAAAAAAAA=",  // padding
            "AAAAAAAAAAAAAAAAAAAA+A",  // standard alphabet
            "AAAAAAAAAAAAAAAAAAAA/A",
            "AAAAAAAAAAAAAAAAAAAAA.",
            "..AAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAB",      // non-canonical trailing bits
            "AAAAAAAAAAAAAAAAAAAAA\u{e9}", // non-ASCII
            "AAAAAAAAAAAAAAAAAAAA A",
        ] {
            assert_eq!(FileId::parse(bad), Err(InvalidId), "{bad:?}");
        }
        assert!(serde_json::from_str::<FileId>("\"../etc/passwd\"").is_err());
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
        let secret = b"0123456789abcdef0123456789abcdef";
        let server = |secret: &[u8]| <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        let key = IdempotencyKey::from_random([5; 16]);
        let (file, token) = key.derive(&server(secret));
        // Stable: the same key and secret give the same ids.
        assert_eq!(key.derive(&server(secret)), (file.clone(), token.clone()));
        // Pinned against a direct HMAC computation over label || key.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(b"sealdrop/v1/idempotent-create\0");
        mac.update(&[5; 16]);
        let out = mac.finalize().into_bytes();
        assert_eq!(file, FileId::from_random(out[..16].try_into().unwrap()));
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

    proptest! {
        #[test]
        fn every_random_id_round_trips(bytes in any::<[u8; 16]>()) {
            let id = FileId::from_random(bytes);
            prop_assert_eq!(id.as_str().len(), ID_TEXT_LEN);
            prop_assert_eq!(FileId::parse(id.as_str()), Ok(id.clone()));
            let token = OwnerToken::from_random(bytes);
            prop_assert_eq!(OwnerToken::parse(token.as_str()), Ok(token.clone()));
            prop_assert!(token.hash().matches(token.as_str()));
        }

        #[test]
        fn parse_never_accepts_a_non_id(text in "\\PC{0,30}") {
            if let Ok(id) = FileId::parse(&text) {
                prop_assert_eq!(id.as_str(), text.as_str());
                prop_assert_eq!(text.len(), ID_TEXT_LEN);
            }
        }
    }
}
