//! The JSON bodies of the share routes (docs/API.md, Shares), and their checks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::api_error::{ApiError, ApiErrorCode};
use crate::ids::{IdempotencyKey, is_random_id};
use crate::wire::{FileRecord, digest_optional};

use super::{Settings, Share, check_expiry, invalid_limit, verifier_hash};

/// A password verifier: 32 bytes the browser derives from the password (FORMAT.md,
/// password links), sent as 43 characters of base64url. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier([u8; 32]);

impl Verifier {
    /// Parses the base64url text strictly: `400 invalid_verifier` otherwise.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut bytes = [0u8; 32];
        match (text.len(), URL_SAFE_NO_PAD.decode_slice(text, &mut bytes)) {
            (43, Ok(32)) => Ok(Self(bytes)),
            _ => Err(ApiError::new(
                ApiErrorCode::InvalidVerifier,
                "the verifier must be 32 bytes of base64url (43 characters)",
            )),
        }
    }

    /// The verifier's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(<redacted>)")
    }
}

/// Body of `POST /api/files/{fileId}/shares`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateShareRequest {
    /// Seconds until the share expires; absent: with the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// How many downloads it counts (1: one-time); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_limit: Option<u32>,
    /// The password verifier (base64url); absent: no password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// 128 random bits the client drew for this create: a retry with the same key and
    /// request answers the same share (docs/API.md, idempotent create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl CreateShareRequest {
    /// SHA-256 over the request's meaning (not its JSON spelling, not the key): the
    /// relative expiry, the limit and the verifier's stored hash (`settings`', so no
    /// second unsalted image of the verifier is kept). Two creates with one key are
    /// the same request iff their digests are equal.
    pub fn digest(&self, settings: &Settings) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"sealdrop/v1/create-share\0");
        for field in [self.expires_in, self.download_limit.map(u64::from)] {
            digest_optional(&mut h, field);
        }
        match &settings.verifier_hash {
            Some(hash) => {
                h.update([1]);
                h.update(hash);
            }
            None => h.update([0]),
        }
        h.finalize().into()
    }

    /// The share's settings, checked: an expiry after now and no later than the
    /// file's (`400 invalid_expiry`), a positive limit (`400 invalid_limit`), a
    /// well-formed verifier (`400 invalid_verifier`), stored only as its hash salted by
    /// `share_id` (the share token's random part).
    pub fn settings(
        &self,
        share_id: &[u8; 16],
        file_expires_at: Option<u64>,
        now_ms: u64,
    ) -> Result<Settings, ApiError> {
        let expires_at = match self.expires_in {
            Some(secs) => {
                let at = now_ms.saturating_add(secs.saturating_mul(1000));
                check_expiry(at, file_expires_at, now_ms)?;
                Some(at)
            }
            None => file_expires_at,
        };
        if self.download_limit == Some(0) {
            return Err(invalid_limit());
        }
        let verifier_hash = match &self.verifier {
            Some(text) => Some(verifier_hash(share_id, &Verifier::parse(text)?)),
            None => None,
        };
        Ok(Settings {
            expires_at,
            download_limit: self.download_limit,
            verifier_hash,
        })
    }
}

/// Body of `PATCH /api/files/{fileId}/shares/{token}`: what to change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateShareRequest {
    /// A new expiry, in seconds from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// A new limit: a number, or `null` for unlimited; absent: unchanged.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub download_limit: Option<Option<u32>>,
}

impl UpdateShareRequest {
    /// The absolute expiry this asks for, if any.
    pub fn expires_at(&self, now_ms: u64) -> Option<u64> {
        self.expires_in
            .map(|secs| now_ms.saturating_add(secs.saturating_mul(1000)))
    }
}

/// A field that is present (`Some`, its value possibly `null`), as opposed to absent
/// (`None`, through `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `POST /api/shares/{token}/downloads`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenDownloadRequest {
    /// 128 random bits the client chose for this download (22 characters of
    /// base64url): a retried open with it is the same download. Absent: the server
    /// draws one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_id: Option<String>,
    /// The password verifier, for a password share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
}

impl OpenDownloadRequest {
    /// The client's download id, checked (`400 invalid_json` if malformed).
    pub fn download_id(&self) -> Result<Option<&str>, ApiError> {
        match self.download_id.as_deref() {
            Some(id) if !is_random_id(id) => Err(ApiError::invalid_json(
                "downloadId must be 22 characters of base64url (128 random bits)",
            )),
            id => Ok(id),
        }
    }

    /// The verifier, checked (`400 invalid_verifier` if malformed).
    pub fn verifier(&self) -> Result<Option<Verifier>, ApiError> {
        self.verifier.as_deref().map(Verifier::parse).transpose()
    }
}

/// `200` answer of `GET /api/shares/{token}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicShare {
    /// Whether a password (its verifier) is needed to download.
    pub password: bool,
    /// When the share expires; `null`: never.
    pub expires_at: Option<u64>,
    /// Downloads left; `null`: unlimited.
    pub downloads_left: Option<u64>,
}

/// `201` answer of `POST /api/shares/{token}/downloads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOpened {
    /// The download's id, for the `url`, `complete` and `DELETE` calls.
    pub download_id: String,
    /// When the download lapses unless it gets a fresh URL (the URL's expiry).
    pub lease_until: u64,
    /// The file record, with a fresh storage URL.
    pub file: FileRecord,
}

/// A share as its owner sees it (list, create and update answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareView {
    /// The share token (the link is `/s/<token>#<key or password fragment>`).
    pub token: String,
    /// When it was created.
    pub created_at: u64,
    /// When it expires; `null`: never.
    pub expires_at: Option<u64>,
    /// The most downloads it counts; `null`: unlimited.
    pub download_limit: Option<u32>,
    /// Whether it has a password.
    pub password: bool,
    /// `active`, `expired`, `exhausted` or `revoked`.
    pub state: String,
    /// When it was revoked.
    pub revoked_at: Option<u64>,
    /// Downloads counted.
    pub downloads: u64,
    /// Downloads open now.
    pub open_downloads: u64,
    /// Wrong passwords so far.
    pub failed_attempts: u64,
    /// The newest access records of both kinds, merged newest first.
    pub access: Vec<AccessView>,
}

/// One access record as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessView {
    /// When.
    pub at: u64,
    /// `download` (an admitted download's open, completion, abandonment, lapse) or
    /// `visit` (a view, a retried open, or any refusal): the two are capped apart.
    pub kind: String,
    /// `viewed`, `opened`, `completed`, `abandoned`, `lapsed`, or the refusal's code.
    pub outcome: String,
    /// The client's country code, if known.
    pub country: Option<String>,
    /// The client's user-agent family (`null` for a lapse).
    pub agent: Option<String>,
}

impl ShareView {
    /// The owner's view of `share` (settled at `now_ms` by the caller), named `token`.
    pub fn new(token: String, share: &Share, now_ms: u64) -> Self {
        Self {
            token,
            created_at: share.created_at,
            expires_at: share.settings.expires_at,
            download_limit: share.settings.download_limit,
            password: share.settings.verifier_hash.is_some(),
            state: share.state(now_ms).as_str().to_owned(),
            revoked_at: share.revoked_at,
            downloads: share.counted,
            open_downloads: share.holding() as u64,
            failed_attempts: share.failed_attempts,
            access: share
                .log
                .newest_first()
                .into_iter()
                .map(|r| AccessView {
                    at: r.at,
                    kind: r.kind.as_str().to_owned(),
                    outcome: r.outcome.as_str().to_owned(),
                    country: r.client.as_ref().and_then(|c| c.country.clone()),
                    agent: r.client.as_ref().map(|c| c.agent.to_owned()),
                })
                .collect(),
        }
    }
}
