//! HS256 JSON Web Tokens: who a room connection (and, with issue 12, an API call) is.
//!
//! The embedding application's backend mints tokens with the shared secret
//! (`JWT_SECRET`); sealdrop only verifies them. Built on the RustCrypto HMAC and SHA-256
//! the crate already uses (about 6.5 KB of wasm, against 42-154 KB for the JWT crates
//! measured in TOOLCHAIN.md), because HS256 verification is three small, well-specified
//! steps and every one of them is a place where JWT libraries have had bugs; doing them
//! here keeps each rule visible and tested:
//!
//! 1. The header must say `alg: HS256` and nothing the verifier does not understand
//!    (`crit`). `none` and every other algorithm are refused *before* any signature is
//!    looked at, so an attacker never chooses how a token is checked.
//! 2. The signature is HMAC-SHA256 over `header.payload`, compared in constant time
//!    (`Mac::verify_slice`). The claims are not even parsed until it matches.
//! 3. The claims: `exp` is required and `nbf` honoured, each with [`LEEWAY_SECS`] of
//!    clock skew allowed; `aud` must name this deployment; `sub` is the user id;
//!    `rooms` says which rooms the user may join and with which role.
//!
//! Time is passed in (seconds since the epoch), as everywhere in this crate.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::room::ids::{valid_name, valid_room_id, valid_user_id};

/// Clock skew allowed on `exp` and `nbf`: 60 seconds.
pub const LEEWAY_SECS: u64 = 60;
/// The shortest secret accepted: 256 bits, the HMAC-SHA256 output size (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest token accepted, in bytes. Real tokens are a few hundred bytes; the bound
/// keeps a hostile frame from making the verifier decode megabytes.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Most entries in the `rooms` claim.
pub const MAX_ROOMS_CLAIM: usize = 256;
/// The `rooms` key that grants its role in every room (dev tokens use it).
pub const ANY_ROOM: &str = "*";

/// What a user may do in a room, from the token's `rooms` claim. Ordered: each role can
/// do everything the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Join, chat, read and download the room's files; no uploads, no sharing.
    Viewer,
    /// A viewer who may also upload files into the room, share them, make folders, and
    /// remove what they uploaded.
    Member,
    /// A member who may also lock and unlock the room, remove anyone's files and read
    /// the room's audit log.
    Moderator,
    /// The room's owner: everything a moderator may do.
    Owner,
}

impl Role {
    /// The wire name (`"member"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Owner => "owner",
        }
    }

    /// Whether this role may lock and unlock a room, remove anyone's files and read the
    /// audit log.
    pub fn can_moderate(self) -> bool {
        self >= Self::Moderator
    }

    /// Whether this role may upload files into a room, share them and make folders.
    pub fn can_upload(self) -> bool {
        self >= Self::Member
    }
}

/// The claims sealdrop reads. Other claims (`jti`, `iss`, ...) are allowed and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id: who this is, in every room.
    pub sub: String,
    /// The display name shown to others; `sub` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The audience: must be (or contain) the deployment's audience.
    pub aud: Audience,
    /// Expiry, seconds since the epoch. Required: a token without one would be valid
    /// forever.
    pub exp: u64,
    /// Not valid before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Room id (or [`ANY_ROOM`]) to role.
    #[serde(default)]
    pub rooms: BTreeMap<String, Role>,
}

impl Claims {
    /// The user's role in `room_id`: its own entry, else the `*` entry, else none.
    pub fn role_in(&self, room_id: &str) -> Option<Role> {
        self.rooms
            .get(room_id)
            .or_else(|| self.rooms.get(ANY_ROOM))
            .copied()
    }

    /// The name to show: `name`, or `sub` when there is none.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.sub)
    }
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several; the token is for each of them.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is among these.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// Why a token was refused. [`JwtError::code`] is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts of JSON, or too long.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// `alg` is not HS256 (`none` included), or the header has `crit`.
    #[error("the token's algorithm {0:?} is not accepted (only HS256)")]
    Algorithm(String),
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    Signature,
    /// The claims are not the expected shape (checked after the signature).
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
    /// `exp` is more than the leeway in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is more than the leeway in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` does not name this deployment.
    #[error("the token is for another audience")]
    Audience,
}

impl JwtError {
    /// The stable code: `expired_token` for an expired token, `invalid_token` for every
    /// other refusal (docs/PROTOCOL.md, Authentication).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired => "expired_token",
            _ => "invalid_token",
        }
    }
}

/// A secret that is too short to sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_SECRET_LEN} bytes")]
pub struct WeakSecret;

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Verifies (and, for the dev login, mints) HS256 tokens for one audience.
#[derive(Clone)]
pub struct JwtVerifier {
    mac: Hmac<Sha256>,
    audience: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("JwtVerifier")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for tokens signed with `secret` for `audience`.
    pub fn new(secret: &[u8], audience: impl Into<String>) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret);
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|_| WeakSecret)?;
        Ok(Self {
            mac,
            audience: audience.into(),
        })
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks `token` at `now_secs` and returns its claims, or why it is refused. The
    /// order is fixed: shape, algorithm, signature, then claims, expiry, not-before,
    /// audience and the claims' own limits.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed("longer than 4096 bytes"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("not three dot-separated parts"));
        };
        let header: Header = serde_json::from_slice(&decode(header)?)
            .map_err(|_| JwtError::Malformed("the header is not a JSON object with alg"))?;
        if header.alg != "HS256" {
            return Err(JwtError::Algorithm(header.alg));
        }
        if header.crit.is_some() {
            return Err(JwtError::Algorithm("HS256 with crit".into()));
        }
        let signature = decode(signature)?;
        let signed_len = token.len() - signature_text_len(token);
        let mut mac = self.mac.clone();
        mac.update(&token.as_bytes()[..signed_len]);
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::Signature)?;

        let claims: Claims = serde_json::from_slice(&decode(payload)?)
            .map_err(|e| JwtError::Claims(e.to_string()))?;
        if now_secs > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(JwtError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now_secs.saturating_add(LEEWAY_SECS))
        {
            return Err(JwtError::NotYetValid);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(JwtError::Audience);
        }
        check_limits(&claims)?;
        Ok(claims)
    }

    /// Signs `claims` (the dev login route, and tests). The header is always
    /// `{"alg":"HS256","typ":"JWT"}`.
    pub fn mint(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Claims are plain strings, numbers and a map: serializing cannot fail.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }
}

/// The text length of the token's last part, plus its dot.
fn signature_text_len(token: &str) -> usize {
    token.rsplit('.').next().map_or(0, |s| s.len() + 1)
}

/// Strict base64url without padding (canonical trailing bits only).
fn decode(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("a part is not base64url without padding"))
}

/// The limits on claim values (user id, name, rooms) that storage and frames rely on.
fn check_limits(claims: &Claims) -> Result<(), JwtError> {
    let bad = |why: &str| Err(JwtError::Claims(why.to_owned()));
    if !valid_user_id(&claims.sub) {
        return bad("sub must be 1 to 128 bytes with no control characters");
    }
    if let Some(name) = &claims.name
        && !valid_name(name)
    {
        return bad("name must be 1 to 64 characters with no control characters");
    }
    if claims.rooms.len() > MAX_ROOMS_CLAIM {
        return bad("rooms has more than 256 entries");
    }
    if let Some(key) = claims
        .rooms
        .keys()
        .find(|k| *k != ANY_ROOM && !valid_room_id(k))
    {
        return Err(JwtError::Claims(format!(
            "rooms has an invalid room id {key:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(SECRET, "sealdrop").unwrap()
    }

    fn claims() -> Claims {
        Claims {
            sub: "alice".into(),
            name: Some("Alice".into()),
            aud: Audience::One("sealdrop".into()),
            exp: NOW + 3600,
            nbf: None,
            iat: Some(NOW),
            rooms: BTreeMap::from([("r1".into(), Role::Owner)]),
        }
    }

    /// Signs an arbitrary header and payload, to build tokens `mint` never would.
    fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn payload(exp: u64) -> String {
        format!(r#"{{"sub":"alice","aud":"sealdrop","exp":{exp},"rooms":{{"r1":"member"}}}}"#)
    }

    #[test]
    fn a_minted_token_verifies_and_round_trips() {
        let token = verifier().mint(&claims());
        assert_eq!(verifier().verify(&token, NOW).unwrap(), claims());
        assert_eq!(claims().role_in("r1"), Some(Role::Owner));
        assert_eq!(claims().role_in("r2"), None);
        assert_eq!(claims().display_name(), "Alice");
    }

    #[test]
    fn refuses_other_algorithms_before_the_signature() {
        for alg in [
            "none", "None", "HS384", "HS512", "RS256", "ES256", "hs256", "",
        ] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let token = sign_raw(&header, &payload(NOW + 10), SECRET);
            assert_eq!(
                verifier().verify(&token, NOW),
                Err(JwtError::Algorithm(alg.into())),
                "{alg}"
            );
        }
        // alg none with an empty signature, the classic.
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(payload(NOW + 10))
        );
        assert_eq!(
            verifier().verify(&unsigned, NOW).unwrap_err().code(),
            "invalid_token"
        );
        let crit = sign_raw(
            r#"{"alg":"HS256","crit":["b64"]}"#,
            &payload(NOW + 10),
            SECRET,
        );
        assert!(matches!(
            verifier().verify(&crit, NOW),
            Err(JwtError::Algorithm(_))
        ));
        let no_alg = sign_raw(r#"{"typ":"JWT"}"#, &payload(NOW + 10), SECRET);
        assert!(matches!(
            verifier().verify(&no_alg, NOW),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_a_wrong_signature() {
        let other = sign_raw(
            r#"{"alg":"HS256"}"#,
            &payload(NOW + 10),
            b"another secret of at least 32 bytes!",
        );
        assert_eq!(verifier().verify(&other, NOW), Err(JwtError::Signature));
        // A payload swapped under a valid signature.
        let good = verifier().mint(&claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(payload(NOW + 99_999));
        parts[1] = &forged;
        assert_eq!(
            verifier().verify(&parts.join("."), NOW),
            Err(JwtError::Signature)
        );
        // Every single-character change of the signature is refused.
        let sig_start = good.rfind('.').unwrap() + 1;
        for i in sig_start..good.len() {
            let mut bytes = good.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(verifier().verify(&tampered, NOW).is_err(), "byte {i}");
        }
    }

    #[test]
    fn expiry_and_not_before_have_sixty_seconds_of_leeway() {
        let v = verifier();
        let exp = sign_raw(r#"{"alg":"HS256"}"#, &payload(NOW), SECRET);
        assert!(v.verify(&exp, NOW).is_ok());
        assert!(v.verify(&exp, NOW + LEEWAY_SECS).is_ok());
        assert_eq!(
            v.verify(&exp, NOW + LEEWAY_SECS + 1),
            Err(JwtError::Expired)
        );
        assert_eq!(JwtError::Expired.code(), "expired_token");

        let nbf = |at: u64| {
            sign_raw(
                r#"{"alg":"HS256"}"#,
                &format!(
                    r#"{{"sub":"a","aud":"sealdrop","exp":{},"nbf":{at}}}"#,
                    NOW + 9999
                ),
                SECRET,
            )
        };
        assert!(v.verify(&nbf(NOW + LEEWAY_SECS), NOW).is_ok());
        assert_eq!(
            v.verify(&nbf(NOW + LEEWAY_SECS + 1), NOW),
            Err(JwtError::NotYetValid)
        );
        assert_eq!(JwtError::NotYetValid.code(), "invalid_token");
    }

    #[test]
    fn refuses_another_audience_and_a_missing_exp() {
        let v = verifier();
        let other = sign_raw(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"sub":"a","aud":"other","exp":{}}}"#, NOW + 10),
            SECRET,
        );
        assert_eq!(v.verify(&other, NOW), Err(JwtError::Audience));
        let many = sign_raw(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"sub":"a","aud":["x","sealdrop"],"exp":{}}}"#, NOW + 10),
            SECRET,
        );
        assert!(v.verify(&many, NOW).is_ok());
        let no_exp = sign_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"a","aud":"sealdrop"}"#,
            SECRET,
        );
        assert!(matches!(v.verify(&no_exp, NOW), Err(JwtError::Claims(_))));
        let no_aud = sign_raw(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"sub":"a","exp":{}}}"#, NOW + 10),
            SECRET,
        );
        assert!(matches!(v.verify(&no_aud, NOW), Err(JwtError::Claims(_))));
    }

    #[test]
    fn refuses_bad_claim_values() {
        let v = verifier();
        for (payload, what) in [
            (r#""sub":"""#, "empty sub"),
            (r#""sub":"a\u0000b""#, "control character in sub"),
            (r#""sub":"a","name":"  ""#, "blank name"),
            (r#""sub":"a","rooms":{"../x":"member"}"#, "bad room id"),
            (r#""sub":"a","rooms":{"r1":"admin"}"#, "unknown role"),
            (r#""sub":17"#, "sub not a string"),
        ] {
            let token = sign_raw(
                r#"{"alg":"HS256"}"#,
                &format!(r#"{{{payload},"aud":"sealdrop","exp":{}}}"#, NOW + 10),
                SECRET,
            );
            assert!(
                matches!(v.verify(&token, NOW), Err(JwtError::Claims(_))),
                "{what}"
            );
        }
        let long = "a".repeat(crate::room::ids::MAX_USER_ID_LEN + 1);
        let token = sign_raw(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"sub":"{long}","aud":"sealdrop","exp":{}}}"#, NOW + 10),
            SECRET,
        );
        assert!(matches!(v.verify(&token, NOW), Err(JwtError::Claims(_))));
    }

    #[test]
    fn refuses_malformed_tokens() {
        let v = verifier();
        let good = v.mint(&claims());
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{good}.x"),
            good.replacen('.', "=.", 1),
            "!!!.???.***".into(),
            "a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(
                matches!(v.verify(&bad, NOW), Err(JwtError::Malformed(_))),
                "{bad:.40}"
            );
        }
    }

    #[test]
    fn weak_secrets_are_refused_and_debug_hides_the_key() {
        assert_eq!(JwtVerifier::new(b"short", "x").unwrap_err(), WeakSecret);
        let printed = format!("{:?}", verifier());
        assert!(!printed.contains("0123456789abcdef"));
    }

    #[test]
    fn the_wildcard_room_grants_its_role_everywhere_but_an_own_entry_wins() {
        let mut c = claims();
        c.rooms = BTreeMap::from([
            (ANY_ROOM.into(), Role::Member),
            ("r9".into(), Role::Moderator),
        ]);
        assert_eq!(c.role_in("anything"), Some(Role::Member));
        assert_eq!(c.role_in("r9"), Some(Role::Moderator));
        assert!(Role::Owner.can_moderate() && Role::Moderator.can_moderate());
        assert!(!Role::Member.can_moderate());
        assert!(Role::Member.can_upload() && !Role::Viewer.can_upload());
        assert!(!Role::Viewer.can_moderate());
    }
}
