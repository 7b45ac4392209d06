//! Signed, expiring blob URLs for the `r2-binding` provider (docs/API.md, `PUT <part
//! url>`, `GET <download url>`).
//!
//! In that mode the worker hands out URLs that point at itself; whoever holds one may
//! PUT exactly one part (of exactly its planned size) or GET the record section, until
//! it expires. The URL carries `exp` and `sig`, and a part URL also its planned `size`
//! and storage's multipart `upload` id; the purpose, file id and part number the worker
//! re-derives from the method and the path. The signature covers all of them, so a URL
//! cannot be bent to another part, file, size, upload or method.
//!
//! The size and the upload id travel in the part URL (neither is secret: the plan is
//! public to the uploader, and the upload id grants nothing without the worker's R2
//! binding) so that the worker can verify the whole signature statelessly, before it
//! addresses any session, and then write the body straight into storage: a forged URL
//! never reaches a Durable Object, and no part body ever passes through one.
//!
//! The signature is HMAC-SHA256 over a fixed-layout, length-prefixed encoding of the
//! claims under a domain-separation label, written as base64url without padding. The
//! signature is checked (in constant time) before the expiry, so a forged URL learns
//! nothing, not even whether its `exp` is in the past.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::api_error::{ApiError, ApiErrorCode};
use crate::ids::FileId;

/// How long a part URL is valid: 1 hour (docs/API.md, Limits).
pub const PART_URL_TTL_MS: u64 = 60 * 60 * 1000;
/// How long a download URL is valid: 15 minutes (docs/API.md, Limits).
pub const DOWNLOAD_URL_TTL_MS: u64 = 15 * 60 * 1000;
/// The shortest signing secret accepted: 256 bits.
pub const MIN_SECRET_LEN: usize = 32;

/// Domain separation: these bytes start every signed message, so a signature made here
/// can never be valid for anything else signed with the same secret.
const LABEL: &[u8] = b"sealdrop/v2/blob-url\0";

/// What a blob URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobPurpose {
    /// Upload one part, of exactly `size` bytes, into storage's multipart upload
    /// `upload_id`.
    Put {
        /// The part, 1-based.
        part_number: u32,
        /// The part's planned size in bytes.
        size: u64,
        /// Storage's id of the multipart upload the part belongs to.
        upload_id: String,
    },
    /// Download the record section.
    Get,
}

/// Everything a blob URL's signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobClaims {
    /// What the URL allows.
    pub purpose: BlobPurpose,
    /// The file (and upload) it is for.
    pub file_id: FileId,
    /// The first millisecond at which the URL is no longer valid.
    pub expires_at: u64,
}

impl BlobClaims {
    /// Claims for uploading part `part_number` of `size` bytes into the multipart
    /// upload `upload_id`, valid until `expires_at` (by default [`PART_URL_TTL_MS`]
    /// from now).
    pub fn part_upload(
        file_id: FileId,
        upload_id: &str,
        part_number: u32,
        size: u64,
        expires_at: u64,
    ) -> Self {
        Self {
            purpose: BlobPurpose::Put {
                part_number,
                size,
                upload_id: upload_id.to_owned(),
            },
            file_id,
            expires_at,
        }
    }

    /// Claims for downloading a file, valid until `expires_at` (by default
    /// [`DOWNLOAD_URL_TTL_MS`] from now).
    pub fn download(file_id: FileId, expires_at: u64) -> Self {
        Self {
            purpose: BlobPurpose::Get,
            file_id,
            expires_at,
        }
    }

    /// For a part URL: `400 part_size_mismatch` unless the request declares
    /// (`Content-Length`) exactly the signed, planned size. A part PUT must declare
    /// its length, as S3 requires of UploadPart: then HTTP framing bounds the body, and
    /// the worker refuses a wrong size before it reads or forwards a byte.
    pub fn check_declared_size(&self, content_length: Option<u64>) -> Result<(), ApiError> {
        let BlobPurpose::Put {
            part_number, size, ..
        } = self.purpose
        else {
            return Ok(());
        };
        match content_length {
            Some(declared) if declared == size => Ok(()),
            Some(declared) => Err(ApiError::new(
                ApiErrorCode::PartSizeMismatch,
                format!("part {part_number} must be {size} bytes, not {declared}"),
            )),
            None => Err(ApiError::new(
                ApiErrorCode::PartSizeMismatch,
                format!("part {part_number} must be sent with Content-Length: {size}"),
            )),
        }
    }

    /// The canonical message: label, purpose byte, length-prefixed file id, then
    /// fixed-width big-endian part number, size and expiry (zeros where a purpose has
    /// no such field), then the upload id prefixed by its u16 length (empty for a
    /// download). Every field has a fixed position or an explicit length, so no two
    /// claims share bytes.
    fn message(&self) -> Vec<u8> {
        let id = self.file_id.as_str().as_bytes();
        let (tag, part, size, upload) = match &self.purpose {
            BlobPurpose::Put {
                part_number,
                size,
                upload_id,
            } => (b'P', *part_number, *size, upload_id.as_bytes()),
            BlobPurpose::Get => (b'G', 0, 0, &[][..]),
        };
        let mut m = Vec::with_capacity(LABEL.len() + 2 + id.len() + 20 + 2 + upload.len());
        m.extend_from_slice(LABEL);
        m.push(tag);
        // File ids are 22 bytes; the prefix keeps the encoding unambiguous regardless.
        m.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        m.extend_from_slice(id);
        m.extend_from_slice(&part.to_be_bytes());
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&self.expires_at.to_be_bytes());
        // Upload ids longer than a u16 are refused when parsed (MAX_UPLOAD_ID_LEN).
        m.extend_from_slice(
            &u16::try_from(upload.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        m.extend_from_slice(upload);
        m
    }
}

/// Why a blob URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The signature is missing, malformed or wrong (`403 token_invalid`).
    #[error("the URL's signature is not valid")]
    Invalid,
    /// The signature is right but the URL is past its expiry (`403 token_expired`).
    #[error("the URL has expired; ask for a fresh one")]
    Expired,
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let code = match e {
            TokenError::Invalid => ApiErrorCode::TokenInvalid,
            TokenError::Expired => ApiErrorCode::TokenExpired,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The signing secret is shorter than [`MIN_SECRET_LEN`]: a configuration error the
/// worker should refuse to run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the blob URL secret must be at least 32 bytes")]
pub struct WeakSecret;

/// Signs and verifies blob URLs with one secret.
///
/// Built once from the worker's secret; it refuses a short secret, so a missing or
/// placeholder configuration fails loudly instead of signing with a guessable key.
#[derive(Clone)]
pub struct BlobSigner {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for BlobSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobSigner(<secret>)")
    }
}

impl BlobSigner {
    /// A signer for `secret` (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret);
        }
        // HMAC accepts keys of any length; the error arm is unreachable in practice.
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WeakSecret)?;
        Ok(Self { mac })
    }

    /// The signature for `claims`: 43 characters of base64url.
    pub fn sign(&self, claims: &BlobClaims) -> String {
        let mut mac = self.mac.clone();
        mac.update(&claims.message());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks `sig` against `claims`, then the expiry: `Invalid` for any signature
    /// problem (checked in constant time, first), `Expired` once `now_ms >= expires_at`.
    pub fn verify(&self, claims: &BlobClaims, sig: &str, now_ms: u64) -> Result<(), TokenError> {
        let mut tag = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(sig, &mut tag) {
            Ok(32) => {}
            _ => return Err(TokenError::Invalid),
        }
        let mut mac = self.mac.clone();
        mac.update(&claims.message());
        mac.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        if now_ms >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// The query string to append to a blob path (no leading `?`): `exp=<ms>&sig=<sig>`
    /// for a download, `exp=<ms>&size=<bytes>&upload=<id>&sig=<sig>` for a part.
    pub fn query(&self, claims: &BlobClaims) -> String {
        let (size, upload_id) = match &claims.purpose {
            BlobPurpose::Put {
                size, upload_id, ..
            } => (Some(*size), Some(upload_id.clone())),
            BlobPurpose::Get => (None, None),
        };
        BlobQuery {
            expires_at: claims.expires_at,
            size,
            upload_id,
            sig: self.sign(claims),
        }
        .to_query()
    }

    /// The keyed MAC under the server's secret, for the other domain-separated uses of
    /// the same secret (e.g. [`crate::ids::IdempotencyKey::derive`]).
    pub fn server_mac(&self) -> &Hmac<Sha256> {
        &self.mac
    }

    /// Verifies a part URL, `PUT /blob/<file_id>/<part_number>?<query>`, without any
    /// session: the claims it proves (with the planned size), `Invalid` for a missing,
    /// malformed or wrong signature or size, `Expired` past its expiry.
    pub fn verify_part_url(
        &self,
        file_id: FileId,
        part_number: u32,
        query: &str,
        now_ms: u64,
    ) -> Result<BlobClaims, TokenError> {
        let q = BlobQuery::parse(query)?;
        let claims = BlobClaims {
            purpose: BlobPurpose::Put {
                part_number,
                size: q.size.ok_or(TokenError::Invalid)?,
                upload_id: q.upload_id.ok_or(TokenError::Invalid)?,
            },
            file_id,
            expires_at: q.expires_at,
        };
        self.verify(&claims, &q.sig, now_ms)?;
        Ok(claims)
    }

    /// Verifies a download URL, `GET /blob/<file_id>?<query>`, without any session.
    pub fn verify_download_url(
        &self,
        file_id: FileId,
        query: &str,
        now_ms: u64,
    ) -> Result<BlobClaims, TokenError> {
        let q = BlobQuery::parse(query)?;
        if q.size.is_some() || q.upload_id.is_some() {
            return Err(TokenError::Invalid);
        }
        let claims = BlobClaims {
            purpose: BlobPurpose::Get,
            file_id,
            expires_at: q.expires_at,
        };
        self.verify(&claims, &q.sig, now_ms)?;
        Ok(claims)
    }
}

/// The `exp`, `size` and `upload` (part URLs only) and `sig` parameters of a blob URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobQuery {
    /// The `exp` parameter: the claims' `expires_at`.
    pub expires_at: u64,
    /// The `size` parameter of a part URL: the part's planned size.
    pub size: Option<u64>,
    /// The `upload` parameter of a part URL: storage's multipart upload id, carried as
    /// base64url (upload ids are opaque strings of any alphabet).
    pub upload_id: Option<String>,
    /// The `sig` parameter.
    pub sig: String,
}

/// The longest storage upload id a part URL carries (S3 allows ~1 KiB; R2's are short).
pub const MAX_UPLOAD_ID_LEN: usize = 4096;

impl BlobQuery {
    /// `exp=<ms>&sig=<sig>`, or `exp=<ms>&size=<bytes>&upload=<id>&sig=<sig>`. Every
    /// value is URL-safe as it is (the upload id is base64url).
    pub fn to_query(&self) -> String {
        let mut q = format!("exp={}", self.expires_at);
        if let Some(size) = self.size {
            q.push_str(&format!("&size={size}"));
        }
        if let Some(upload) = &self.upload_id {
            q.push_str("&upload=");
            q.push_str(&URL_SAFE_NO_PAD.encode(upload));
        }
        q.push_str("&sig=");
        q.push_str(&self.sig);
        q
    }

    /// Reads `exp`, `size`, `upload` and `sig` from a query string (with or without the
    /// leading `?`). Other parameters are ignored; a missing `exp` or `sig`, or a
    /// repeated or malformed parameter, is `Invalid`. `size` and `upload` are optional
    /// here.
    pub fn parse(query: &str) -> Result<Self, TokenError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let (mut exp, mut size, mut upload, mut sig) = (None, None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "exp" => &mut exp,
                "size" => &mut size,
                "upload" => &mut upload,
                "sig" => &mut sig,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(TokenError::Invalid);
            }
        }
        let expires_at = parse_digits(exp.ok_or(TokenError::Invalid)?)?;
        let size = size.map(parse_digits).transpose()?;
        let upload_id = upload.map(parse_upload_id).transpose()?;
        let sig = sig.ok_or(TokenError::Invalid)?.to_owned();
        Ok(Self {
            expires_at,
            size,
            upload_id,
            sig,
        })
    }
}

/// A non-empty base64url upload id of at most [`MAX_UPLOAD_ID_LEN`] UTF-8 bytes.
fn parse_upload_id(text: &str) -> Result<String, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| TokenError::Invalid)?;
    if bytes.is_empty() || bytes.len() > MAX_UPLOAD_ID_LEN {
        return Err(TokenError::Invalid);
    }
    String::from_utf8(bytes).map_err(|_| TokenError::Invalid)
}

/// A decimal `u64` of ASCII digits only (u64's parser would also take a leading '+').
fn parse_digits(text: &str) -> Result<u64, TokenError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Invalid);
    }
    text.parse().map_err(|_| TokenError::Invalid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn id(n: u8) -> FileId {
        FileId::from_random([n; 16])
    }

    fn signer() -> BlobSigner {
        BlobSigner::new(SECRET).unwrap()
    }

    /// An upload id with characters that are not URL-safe, as some stores write them.
    const UP: &str = "2~abc+/=?&x";

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let s = signer();
        let claims = BlobClaims::part_upload(id(1), UP, 3, 16_777_472, 1_000 + PART_URL_TTL_MS);
        let sig = s.sign(&claims);
        assert_eq!(sig.len(), 43);
        assert_eq!(s.verify(&claims, &sig, 1_000), Ok(()));
        assert_eq!(s.verify(&claims, &sig, claims.expires_at - 1), Ok(()));
        assert_eq!(
            s.verify(&claims, &sig, claims.expires_at),
            Err(TokenError::Expired)
        );
        let get = BlobClaims::download(id(1), DOWNLOAD_URL_TTL_MS);
        assert_eq!(s.verify(&get, &s.sign(&get), 5), Ok(()));
    }

    #[test]
    fn any_change_to_the_claims_invalidates_the_signature() {
        let s = signer();
        let claims = BlobClaims::part_upload(id(1), UP, 3, 100, 10);
        let sig = s.sign(&claims);
        let others = [
            BlobClaims::part_upload(id(2), UP, 3, 100, 10),
            BlobClaims::part_upload(id(1), UP, 4, 100, 10),
            BlobClaims::part_upload(id(1), UP, 3, 101, 10),
            BlobClaims::part_upload(id(1), UP, 3, 100, 11),
            BlobClaims::part_upload(id(1), "another upload", 3, 100, 10),
            BlobClaims {
                purpose: BlobPurpose::Get,
                ..claims.clone()
            },
        ];
        for other in &others {
            assert_eq!(
                s.verify(other, &sig, 0),
                Err(TokenError::Invalid),
                "{other:?}"
            );
            assert_ne!(s.sign(other), sig);
        }
        // Another secret.
        let s2 = BlobSigner::new(b"another secret, also 32 bytes ok").unwrap();
        assert_eq!(s2.verify(&claims, &sig, 0), Err(TokenError::Invalid));
    }

    #[test]
    fn signature_is_checked_before_expiry() {
        let s = signer();
        let claims = BlobClaims::part_upload(id(1), UP, 1, 100, 0);
        // Expired claims with a forged signature: Invalid, not Expired.
        let forged = URL_SAFE_NO_PAD.encode([0u8; 32]);
        assert_eq!(
            s.verify(&claims, &forged, u64::MAX),
            Err(TokenError::Invalid)
        );
        for bad in ["", "AAAA", "!!!", &forged[..42], &format!("{forged}A")] {
            assert_eq!(
                s.verify(&claims, bad, 0),
                Err(TokenError::Invalid),
                "{bad:?}"
            );
        }
        // A flipped character anywhere.
        let sig = s.sign(&claims);
        for i in 0..sig.len() {
            let mut b = sig.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let flipped = String::from_utf8(b).unwrap();
            assert_eq!(s.verify(&claims, &flipped, 0), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn matches_an_independent_hmac_computation() {
        // HMAC-SHA256(key, message) computed with the raw RustCrypto API over a
        // hand-built message, so the canonical layout is pinned.
        let claims = BlobClaims {
            purpose: BlobPurpose::Put {
                part_number: 2,
                size: 5,
                upload_id: "up".into(),
            },
            file_id: id(0),
            expires_at: 7,
        };
        let mut msg = b"sealdrop/v2/blob-url\0P\x16AAAAAAAAAAAAAAAAAAAAAA".to_vec();
        msg.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7]);
        msg.extend_from_slice(&[0, 2, b'u', b'p']);
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(&msg);
        let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(signer().sign(&claims), expected);
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert_eq!(BlobSigner::new(b"").unwrap_err(), WeakSecret);
        assert!(BlobSigner::new(&[1; 31]).is_err());
        assert!(BlobSigner::new(&[1; 32]).is_ok());
        assert_eq!(format!("{:?}", signer()), "BlobSigner(<secret>)");
    }

    #[test]
    fn query_round_trips_and_is_strict() {
        let s = signer();
        let claims = BlobClaims::download(id(9), 1_764_000_900_000);
        let q = s.query(&claims);
        assert!(q.starts_with("exp=1764000900000&sig="));
        let parsed = BlobQuery::parse(&format!("?{q}&x=1")).unwrap();
        assert_eq!(parsed.expires_at, claims.expires_at);
        assert_eq!(s.verify(&claims, &parsed.sig, 0), Ok(()));
        for bad in [
            "",
            "exp=1",
            "sig=abc",
            "exp=&sig=a",
            "exp=+1&sig=a",
            "exp=1&exp=2&sig=a",
            "exp=1&sig=a&sig=b",
            "exp=99999999999999999999999&sig=a",
            "exp=1&size=&sig=a",
            "exp=1&size=x&sig=a",
        ] {
            assert_eq!(BlobQuery::parse(bad), Err(TokenError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn part_urls_carry_size_and_upload_and_verify_without_a_session() {
        let s = signer();
        let claims = BlobClaims::part_upload(id(4), UP, 2, 5_242_880, 1_000 + PART_URL_TTL_MS);
        let q = s.query(&claims);
        let upload = URL_SAFE_NO_PAD.encode(UP);
        assert_eq!(
            q,
            format!(
                "exp={}&size=5242880&upload={upload}&sig={}",
                claims.expires_at,
                s.sign(&claims)
            )
        );
        let parsed = BlobQuery::parse(&q).unwrap();
        assert_eq!(parsed.size, Some(5_242_880));
        assert_eq!(parsed.upload_id.as_deref(), Some(UP));
        assert_eq!(s.verify_part_url(id(4), 2, &q, 1_000), Ok(claims.clone()));
        assert_eq!(
            s.verify_part_url(id(4), 2, &format!("?{q}"), claims.expires_at),
            Err(TokenError::Expired)
        );
        // Another part, file, size or upload, a download path, a missing or doubled
        // size or upload, an upload that is not base64url.
        let exp = claims.expires_at;
        let sig = s.sign(&claims);
        let other = URL_SAFE_NO_PAD.encode("other");
        for (file, part, query) in [
            (id(4), 3, q.clone()),
            (id(5), 2, q.clone()),
            (
                id(4),
                2,
                format!("exp={exp}&size=5242881&upload={upload}&sig={sig}"),
            ),
            (
                id(4),
                2,
                format!("exp={exp}&size=5242880&upload={other}&sig={sig}"),
            ),
            (id(4), 2, format!("exp={exp}&upload={upload}&sig={sig}")),
            (id(4), 2, format!("exp={exp}&size=5242880&sig={sig}")),
            (
                id(4),
                2,
                format!("exp={exp}&size=1&size=5242880&upload={upload}&sig={sig}"),
            ),
            (
                id(4),
                2,
                format!("exp={exp}&size=5242880&upload={upload}&upload={upload}&sig={sig}"),
            ),
            (
                id(4),
                2,
                format!("exp={exp}&size=+5242880&upload={upload}&sig={sig}"),
            ),
            (
                id(4),
                2,
                format!("exp={exp}&size=5242880&upload=%%%&sig={sig}"),
            ),
            (
                id(4),
                2,
                format!("exp={exp}&size=5242880&upload=&sig={sig}"),
            ),
        ] {
            assert_eq!(
                s.verify_part_url(file, part, &query, 0),
                Err(TokenError::Invalid),
                "{query}"
            );
        }
        assert_eq!(
            s.verify_download_url(id(4), &q, 0),
            Err(TokenError::Invalid)
        );
        // Download URLs carry no size or upload and verify the same way.
        let get = BlobClaims::download(id(4), 7 + DOWNLOAD_URL_TTL_MS);
        let gq = s.query(&get);
        assert!(!gq.contains("size=") && !gq.contains("upload="));
        assert_eq!(s.verify_download_url(id(4), &gq, 7), Ok(get.clone()));
        assert_eq!(
            s.verify_download_url(id(5), &gq, 7),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            s.verify_download_url(id(4), &gq, get.expires_at),
            Err(TokenError::Expired)
        );
        assert_eq!(
            s.verify_part_url(id(4), 0, &gq, 7),
            Err(TokenError::Invalid)
        );
        // An oversized upload id is refused before any signature work.
        let huge = URL_SAFE_NO_PAD.encode(vec![b'a'; MAX_UPLOAD_ID_LEN + 1]);
        assert_eq!(
            BlobQuery::parse(&format!("exp=1&upload={huge}&sig=a")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn declared_size_must_be_the_signed_size() {
        let put = BlobClaims::part_upload(id(1), UP, 3, 100, 0);
        assert_eq!(put.check_declared_size(Some(100)), Ok(()));
        for wrong in [None, Some(0), Some(99), Some(101), Some(u64::MAX)] {
            let err = put.check_declared_size(wrong).unwrap_err();
            assert_eq!(err.code, ApiErrorCode::PartSizeMismatch);
            assert_eq!(err.status(), 400);
        }
        // Downloads have no size to check.
        assert_eq!(
            BlobClaims::download(id(1), 0).check_declared_size(Some(5)),
            Ok(())
        );
    }

    #[test]
    fn errors_map_to_api_codes() {
        assert_eq!(
            ApiError::from(TokenError::Invalid).code,
            ApiErrorCode::TokenInvalid
        );
        assert_eq!(ApiError::from(TokenError::Expired).status(), 403);
    }
}
