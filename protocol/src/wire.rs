//! The JSON bodies of docs/API.md as serde types, and the request limits as pure checks.
//!
//! One definition serves both ends: the worker parses requests and writes responses
//! with these types, and the wasm client writes requests and parses responses with the
//! same ones, so the two cannot drift apart. Field names are camelCase as in API.md.
//!
//! Request types reject unknown fields, so a misspelt optional field (`partsize`) is an
//! `invalid_json` error instead of being silently ignored. Response types accept unknown
//! fields, so a client built before the server added a field keeps working.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api_error::{ApiError, ApiErrorCode};
use crate::format::{
    DEFAULT_RECORD_SIZE, FormatError, Header, MAX_RECORD_SIZE, MAX_SEALED_METADATA,
    MIN_RECORD_SIZE, MIN_SEALED_METADATA,
};
use crate::ids::{FileId, IdempotencyKey, OwnerToken};
use crate::plan::{PartPlan, ProviderLimits};
use crate::room::files::{SealedFields, valid_file_id};
use crate::room::ids::valid_room_id;
use crate::session::UploadState;

/// Largest JSON request body, except `complete` (docs/API.md, Limits): 64 KiB.
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Largest `complete` request body: 2 MiB, room for 10,000 parts with long ETags.
pub const MAX_COMPLETE_BODY: usize = 2 * 1024 * 1024;
/// Most part numbers in one `part-urls` call.
pub const MAX_PART_NUMBERS_PER_REQUEST: usize = 100;

/// Parses a JSON request body of at most `limit` bytes: `413 body_too_large` over the
/// limit, `400 invalid_json` for anything that is not exactly the expected shape.
pub fn parse_json<T: DeserializeOwned>(body: &[u8], limit: usize) -> Result<T, ApiError> {
    if body.len() > limit {
        return Err(ApiError::body_too_large(limit));
    }
    // serde_json's messages name the field and position, never server internals.
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(e.to_string()))
}

/// Feeds an optional number to a request digest at a fixed width: `1` and its 8
/// big-endian bytes, or 9 zero bytes for none.
pub(crate) fn digest_optional(h: &mut Sha256, value: Option<u64>) {
    match value {
        Some(value) => {
            h.update([1]);
            h.update(value.to_be_bytes());
        }
        None => h.update([0; 9]),
    }
}

/// Standard base64 with padding, as API.md's binary fields travel.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------
// POST /api/uploads
// ---------------------------------------------------------------------------------

/// Body of `POST /api/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUploadRequest {
    /// Plaintext bytes of the file.
    pub plaintext_size: u64,
    /// The 76-byte header, standard base64.
    pub header: String,
    /// The sealed metadata, standard base64.
    pub metadata: String,
    /// Preferred part size in ciphertext bytes; the server rounds it into the limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    /// 128 random bits the client chose for this upload: a retried create with the same
    /// key and body answers the same upload (docs/API.md, idempotent create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    /// Ties the upload to a room (docs/API.md, Uploads into a room); the request must
    /// carry the room JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<UploadRoom>,
    /// How long the completed file lives, counted from completion: seconds, or
    /// `"never"` where the deployment allows it. Absent: the deployment's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<ExpiresIn>,
}

/// `room` of `POST /api/uploads`: the room and what its members see of the file, sealed
/// under the room key (docs/FORMAT.md, Room payloads, event `file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRoom {
    /// The room.
    pub room_id: String,
    /// The sealed name, type, key (required) and path.
    #[serde(flatten)]
    pub sealed: SealedFields,
    /// The room folder the file goes into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
}

impl UploadRoom {
    /// Every field's form: `400 invalid_json` naming the field.
    pub fn check(&self) -> Result<(), ApiError> {
        if !valid_room_id(&self.room_id) {
            return Err(ApiError::invalid_json(
                "room.roomId is not a room id (1 to 64 characters of A-Z a-z 0-9 - _)",
            ));
        }
        self.sealed
            .check()
            .map_err(|why| ApiError::invalid_json(format!("room.{why}")))?;
        if self.sealed.sealed_key.is_none() {
            return Err(ApiError::invalid_json(
                "room.sealedKey is required: members open the file with it",
            ));
        }
        if let Some(parent) = &self.parent_id
            && !valid_file_id(parent)
        {
            return Err(ApiError::invalid_json("room.parentId is not a folder id"));
        }
        Ok(())
    }
}

/// A lifetime in a request: a number of seconds, or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpiresIn {
    /// This many seconds.
    Seconds(u64),
    /// No expiry.
    Never(Never),
}

/// The word `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Never {
    /// `"never"`.
    Never,
}

impl ExpiresIn {
    /// `Some(seconds)`, or `None` for "never".
    pub fn seconds(self) -> Option<u64> {
        match self {
            Self::Seconds(s) => Some(s),
            Self::Never(Never::Never) => None,
        }
    }
}

impl CreateUploadRequest {
    /// Every check of API.md on this request, in order: the header (`invalid_header`,
    /// `unsupported_version`), the sealed metadata's size (`invalid_metadata`), then a
    /// part plan for the size within the storage provider's `limits` (`file_too_large`).
    pub fn validate(&self, limits: &ProviderLimits) -> Result<ValidCreateUpload, ApiError> {
        if let Some(room) = &self.room {
            room.check()?;
        }
        let header = self.header()?;
        let metadata = self.metadata_bytes()?;
        let plan = self.plan_with_record_size(header.record_size(), limits)?;
        let digest = self.digest(&header.encode(), &metadata);
        Ok(ValidCreateUpload {
            header,
            metadata,
            plan,
            digest,
        })
    }

    /// SHA-256 over the request's meaning (not its JSON spelling): plaintext size,
    /// preferred part size, header and metadata bytes, each at a fixed position or
    /// length-prefixed. Two creates with one idempotency key are the same request iff
    /// their digests are equal. The key itself is not part of it.
    fn digest(&self, header: &[u8], metadata: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"sealdrop/v1/create-request\0");
        h.update(self.plaintext_size.to_be_bytes());
        for field in [self.part_size, self.expires_in.and_then(ExpiresIn::seconds)] {
            digest_optional(&mut h, field);
        }
        h.update([u8::from(self.expires_in.is_some())]);
        for field in [header, metadata] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        // Only when present, so a create without a room digests as it always did.
        if let Some(room) = &self.room {
            let json = serde_json::to_vec(room).unwrap_or_default();
            h.update(b"room\0");
            h.update((json.len() as u64).to_be_bytes());
            h.update(&json);
        }
        h.finalize().into()
    }

    /// The parsed header: `400 invalid_header` if it is not base64 or not a valid
    /// header, `400 unsupported_version` for another version or suite.
    pub fn header(&self) -> Result<Header, ApiError> {
        Header::parse(&self.header_bytes()?).map_err(|e| match e {
            FormatError::UnsupportedVersion { .. } => {
                ApiError::new(ApiErrorCode::UnsupportedVersion, e.to_string())
            }
            _ => ApiError::new(ApiErrorCode::InvalidHeader, e.to_string()),
        })
    }

    /// The header's bytes; `400 invalid_header` if the field is not standard base64.
    pub fn header_bytes(&self) -> Result<Vec<u8>, ApiError> {
        STANDARD.decode(&self.header).map_err(|_| {
            ApiError::new(ApiErrorCode::InvalidHeader, "header is not standard base64")
        })
    }

    /// The sealed metadata's bytes; `400 invalid_metadata` if the field is not standard
    /// base64 or its length is outside 28..=2,076 bytes.
    pub fn metadata_bytes(&self) -> Result<Vec<u8>, ApiError> {
        let bytes = STANDARD.decode(&self.metadata).map_err(|_| {
            ApiError::new(
                ApiErrorCode::InvalidMetadata,
                "metadata is not standard base64",
            )
        })?;
        if !(MIN_SEALED_METADATA..=MAX_SEALED_METADATA).contains(&bytes.len()) {
            return Err(ApiError::new(
                ApiErrorCode::InvalidMetadata,
                format!(
                    "sealed metadata must be {MIN_SEALED_METADATA} to {MAX_SEALED_METADATA} bytes, not {}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// The part plan for this request within `limits`, given the record size read from
    /// its header: `400 file_too_large` or `400 invalid_header` when none exists.
    pub fn plan_with_record_size(
        &self,
        record_size: u32,
        limits: &ProviderLimits,
    ) -> Result<PartPlan, ApiError> {
        Ok(PartPlan::new(
            self.plaintext_size,
            record_size,
            self.part_size,
            limits,
        )?)
    }
}

/// A [`CreateUploadRequest`] that passed [`CreateUploadRequest::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCreateUpload {
    /// The parsed header (`header.encode()` gives the bytes back exactly).
    pub header: Header,
    /// The sealed metadata's bytes, 28..=2,076 of them.
    pub metadata: Vec<u8>,
    /// The part plan.
    pub plan: PartPlan,
    /// What makes two requests the same request, for an idempotent create.
    pub digest: [u8; 32],
}

/// `201` answer of `POST /api/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUploadResponse {
    /// The new file's public id.
    pub file_id: FileId,
    /// The secret for every later call on the upload (`Authorization: Bearer ...`).
    pub owner_token: OwnerToken,
    /// How to cut the record section into parts.
    pub plan: PartPlan,
    /// When the open upload expires (ms since epoch).
    pub expires_at: u64,
}

// ---------------------------------------------------------------------------------
// POST /api/uploads/{fileId}/part-urls, PUT <part url>
// ---------------------------------------------------------------------------------

/// Body of `POST /api/uploads/{fileId}/part-urls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartUrlsRequest {
    /// The parts to sign URLs for, 1-based.
    pub part_numbers: Vec<u32>,
}

impl PartUrlsRequest {
    /// `400 invalid_part_number` unless there are 1 to 100 numbers, each in
    /// `1..=part_count`, none repeated.
    pub fn validate(&self, part_count: u32) -> Result<(), ApiError> {
        let n = self.part_numbers.len();
        if n == 0 || n > MAX_PART_NUMBERS_PER_REQUEST {
            return Err(ApiError::invalid_part_number(format!(
                "ask for 1 to {MAX_PART_NUMBERS_PER_REQUEST} part numbers, not {n}"
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &part in &self.part_numbers {
            if !(1..=part_count).contains(&part) {
                return Err(ApiError::invalid_part_number(format!(
                    "part {part} is not in 1..={part_count}"
                )));
            }
            if !seen.insert(part) {
                return Err(ApiError::invalid_part_number(format!(
                    "part {part} is listed twice"
                )));
            }
        }
        Ok(())
    }
}

/// One signed part URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartUrl {
    /// The part, 1-based.
    pub part_number: u32,
    /// Where to `PUT` exactly the part's bytes.
    pub url: String,
    /// When the URL stops working (ms since epoch).
    pub expires_at: u64,
}

/// `200` answer of `part-urls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartUrlsResponse {
    /// One URL per requested part, in request order.
    pub urls: Vec<PartUrl>,
}

/// `200` answer of `PUT <part url>` (the same ETag is in the `ETag` header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutPartResponse {
    /// The part's ETag, quoted as S3 sends it.
    pub etag: String,
}

// ---------------------------------------------------------------------------------
// GET /api/uploads/{fileId}
// ---------------------------------------------------------------------------------

/// `200` answer of `GET /api/uploads/{fileId}`: where the upload is, and the parts
/// storage holds (for resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadStatus {
    /// `open`, `completing`, `completed`, `aborting` or `aborted`.
    pub state: UploadState,
    /// The plan given at creation.
    pub plan: PartPlan,
    /// While open, the parts storage holds with their planned size, ascending; once
    /// completed, the parts it was completed with; none otherwise.
    pub parts: Vec<PartRecord>,
    /// When the open upload expires (ms since epoch).
    pub expires_at: u64,
    /// The step due (completing or aborting) has failed so often in a row that only
    /// requests retry it (docs/API.md, "Retrying"). Sent only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stalled: bool,
}

/// A part storage holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartRecord {
    /// The part, 1-based.
    pub part_number: u32,
    /// The ETag storage answered for it.
    pub etag: String,
    /// Its size in bytes (always the planned size).
    pub size: u64,
}

// ---------------------------------------------------------------------------------
// POST /api/uploads/{fileId}/complete
// ---------------------------------------------------------------------------------

/// Body of `POST /api/uploads/{fileId}/complete` (at most [`MAX_COMPLETE_BODY`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteRequest {
    /// Every part, in order, with the ETag its PUT answered.
    pub parts: Vec<CompletedPart>,
}

/// One entry of [`CompleteRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompletedPart {
    /// The part, 1-based.
    pub part_number: u32,
    /// The ETag its PUT answered.
    pub etag: String,
}

// ---------------------------------------------------------------------------------
// GET /api/files/{fileId}
// ---------------------------------------------------------------------------------

/// `200` answer of `GET /api/files/{fileId}`: everything a downloader needs but the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    /// The file's public id.
    pub file_id: FileId,
    /// Plaintext bytes.
    pub plaintext_size: u64,
    /// Bytes of the record section.
    pub ciphertext_size: u64,
    /// Plaintext bytes per record.
    pub record_size: u32,
    /// The 76-byte header, standard base64.
    pub header: String,
    /// The sealed metadata, standard base64.
    pub metadata: String,
    /// Bytes of every part but the last.
    pub part_size: u64,
    /// Number of parts.
    pub part_count: u32,
    /// When the upload was created (ms since epoch).
    pub created_at: u64,
    /// When the file expires and is deleted (ms since epoch); `null`: never.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// A fresh signed URL for the record section.
    pub download: DownloadUrl,
}

impl FileRecord {
    /// The record of a completed upload, from its plan, raw header and metadata bytes.
    pub fn new(
        file_id: FileId,
        plan: &PartPlan,
        header: &[u8],
        metadata: &[u8],
        (created_at, expires_at): (u64, Option<u64>),
        download: DownloadUrl,
    ) -> Self {
        Self {
            file_id,
            plaintext_size: plan.plaintext_size(),
            ciphertext_size: plan.ciphertext_size(),
            record_size: plan.record_size(),
            header: encode_base64(header),
            metadata: encode_base64(metadata),
            part_size: plan.part_size(),
            part_count: plan.part_count(),
            created_at,
            expires_at,
            download,
        }
    }
}

// ---------------------------------------------------------------------------------
// GET /api/limits
// ---------------------------------------------------------------------------------

/// `200` answer of `GET /api/limits`: what the configured storage provider accepts, so a
/// client can refuse a file before it starts and plan its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// `r2-binding` or `s3`.
    pub provider: String,
    /// The smallest part but the last, in bytes.
    pub min_part_size: u64,
    /// The largest part, in bytes.
    pub max_part_size: u64,
    /// The most parts one upload has.
    pub max_parts: u64,
    /// The largest record section (ciphertext: plaintext plus 16 bytes per record).
    pub max_object_size: u64,
    /// The largest plaintext with the default record size.
    pub max_plaintext_size: u64,
    /// The record sizes a header may name.
    pub record_sizes: RecordSizes,
}

/// The `recordSizes` of [`Limits`], in plaintext bytes per record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSizes {
    /// The smallest.
    pub min: u32,
    /// The largest.
    pub max: u32,
    /// What the client uses unless told otherwise.
    pub default: u32,
}

impl Limits {
    /// What the planner applies for `provider`, whose limits are `limits`.
    pub fn new(provider: &str, limits: &ProviderLimits) -> Self {
        Self {
            provider: provider.to_owned(),
            min_part_size: limits.min_part_size(),
            max_part_size: limits.max_part_size(),
            max_parts: u64::from(limits.max_parts()),
            max_object_size: limits.max_object_size(),
            max_plaintext_size: limits.max_plaintext_size(DEFAULT_RECORD_SIZE).unwrap_or(0),
            record_sizes: RecordSizes {
                min: MIN_RECORD_SIZE,
                max: MAX_RECORD_SIZE,
                default: DEFAULT_RECORD_SIZE,
            },
        }
    }
}

/// A signed download URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadUrl {
    /// Where to `GET` (with `Range`) the record section.
    pub url: String,
    /// When the URL stops working (ms since epoch).
    pub expires_at: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::format::FileKey;
    use serde_json::json;

    use crate::plan::DEFAULT_R2_BINDING_MAX_PART_SIZE;

    fn create(metadata_len: usize) -> CreateUploadRequest {
        CreateUploadRequest {
            plaintext_size: 67_108_864,
            header: encode_base64(
                &Header::new(&FileKey::from_bytes([8; 32]), 1 << 20, [9; 32])
                    .unwrap()
                    .encode(),
            ),
            metadata: encode_base64(&vec![1u8; metadata_len]),
            part_size: None,
            idempotency_key: None,
            room: None,
            expires_in: None,
        }
    }

    #[test]
    fn create_request_parses_the_api_md_example() {
        let body = br#"{ "plaintextSize": 67108864, "header": "AAAA", "metadata": "AAAA",
                         "partSize": 16778240 }"#;
        let req: CreateUploadRequest = parse_json(body, MAX_JSON_BODY).unwrap();
        assert_eq!(req.part_size, Some(16_778_240));
        let plan = req
            .plan_with_record_size(1 << 20, &ProviderLimits::S3)
            .unwrap();
        assert_eq!(plan.part_count(), 4);
        // partSize is optional.
        let req: CreateUploadRequest = parse_json(
            br#"{"plaintextSize":0,"header":"","metadata":""}"#,
            MAX_JSON_BODY,
        )
        .unwrap();
        assert_eq!(req.part_size, None);
        assert!(!serde_json::to_string(&req).unwrap().contains("partSize"));
    }

    #[test]
    fn requests_reject_unknown_fields_and_bad_shapes() {
        for body in [
            &br#"{"plaintextSize":1,"header":"","metadata":"","partsize":5}"#[..],
            br#"{"plaintextSize":-1,"header":"","metadata":""}"#,
            br#"{"header":"","metadata":""}"#,
            br#"not json"#,
            br#""#,
        ] {
            let err = parse_json::<CreateUploadRequest>(body, MAX_JSON_BODY).unwrap_err();
            assert_eq!(
                err.code,
                ApiErrorCode::InvalidJson,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let err = parse_json::<PartUrlsRequest>(br#"{"partNumbers":[1],"x":1}"#, MAX_JSON_BODY)
            .unwrap_err();
        assert_eq!(err.code, ApiErrorCode::InvalidJson);
        let err = parse_json::<CompleteRequest>(
            br#"{"parts":[{"partNumber":1,"etag":"a","size":1}]}"#,
            MAX_COMPLETE_BODY,
        )
        .unwrap_err();
        assert_eq!(err.code, ApiErrorCode::InvalidJson);
    }

    #[test]
    fn body_limits() {
        let big = vec![b' '; MAX_JSON_BODY + 1];
        let err = parse_json::<PartUrlsRequest>(&big, MAX_JSON_BODY).unwrap_err();
        assert_eq!(err.code, ApiErrorCode::BodyTooLarge);
        assert_eq!(err.status(), 413);

        // A complete body for 10,000 parts with S3-style quoted MD5 ETags fits in the
        // complete limit, and would not fit in the general one.
        let parts: Vec<CompletedPart> = (1..=10_000)
            .map(|n| CompletedPart {
                part_number: n,
                etag: format!("\"{:032x}\"", u128::from(n) * 0x1234_5678_9abc_def0),
            })
            .collect();
        let body = serde_json::to_vec(&CompleteRequest { parts }).unwrap();
        assert!(body.len() > MAX_JSON_BODY);
        assert!(body.len() < MAX_COMPLETE_BODY / 2);
        let back: CompleteRequest = parse_json(&body, MAX_COMPLETE_BODY).unwrap();
        assert_eq!(back.parts.len(), 10_000);
    }

    #[test]
    fn idempotency_key_is_optional_strict_and_not_part_of_the_digest() {
        let key = IdempotencyKey::from_random([7; 16]).to_text();
        let body =
            format!(r#"{{"plaintextSize":0,"header":"","metadata":"","idempotencyKey":"{key}"}}"#);
        let req: CreateUploadRequest = parse_json(body.as_bytes(), MAX_JSON_BODY).unwrap();
        assert_eq!(
            req.idempotency_key,
            Some(IdempotencyKey::from_random([7; 16]))
        );
        let back = serde_json::to_string(&req).unwrap();
        assert!(
            back.contains(&format!(r#""idempotencyKey":"{key}""#)),
            "{back}"
        );
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "AAAAAAAAAAAAAAAAAAAA+A",
        ] {
            let body = format!(
                r#"{{"plaintextSize":0,"header":"","metadata":"","idempotencyKey":"{bad}"}}"#
            );
            let err =
                parse_json::<CreateUploadRequest>(body.as_bytes(), MAX_JSON_BODY).unwrap_err();
            assert_eq!(err.code, ApiErrorCode::InvalidJson, "{bad:?}");
        }

        // The digest is the request's meaning: every field counts but the key.
        let base = create(28);
        let digest = base.validate(&ProviderLimits::S3).unwrap().digest;
        let keyed = CreateUploadRequest {
            idempotency_key: Some(IdempotencyKey::from_random([1; 16])),
            ..base.clone()
        };
        assert_eq!(keyed.validate(&ProviderLimits::S3).unwrap().digest, digest);
        let others = [
            CreateUploadRequest {
                plaintext_size: base.plaintext_size + 1,
                ..base.clone()
            },
            CreateUploadRequest {
                part_size: Some(16_777_472),
                ..base.clone()
            },
            CreateUploadRequest {
                part_size: Some(0),
                ..base.clone()
            },
            create(29),
            CreateUploadRequest {
                expires_in: Some(ExpiresIn::Seconds(60)),
                ..base.clone()
            },
            CreateUploadRequest {
                expires_in: Some(ExpiresIn::Never(Never::Never)),
                ..base.clone()
            },
            CreateUploadRequest {
                header: encode_base64(
                    &Header::new(&FileKey::from_bytes([8; 32]), 1 << 20, [8; 32])
                        .unwrap()
                        .encode(),
                ),
                ..base.clone()
            },
        ];
        for other in others {
            assert_ne!(
                other.validate(&ProviderLimits::S3).unwrap().digest,
                digest,
                "{other:?}"
            );
        }
    }

    #[test]
    fn limits_answer_what_the_planner_applies() {
        let r2 = ProviderLimits::r2_binding(DEFAULT_R2_BINDING_MAX_PART_SIZE).unwrap();
        for (name, provider) in [("r2-binding", r2), ("s3", ProviderLimits::S3)] {
            let limits = Limits::new(name, &provider);
            let v = serde_json::to_value(&limits).unwrap();
            assert_eq!(v["provider"], json!(name));
            assert_eq!(v["minPartSize"], json!(5 * 1024 * 1024));
            assert_eq!(v["maxPartSize"], json!(provider.max_part_size()));
            assert_eq!(v["maxParts"], json!(10_000));
            assert_eq!(v["maxObjectSize"], json!(provider.max_object_size()));
            assert_eq!(
                v["recordSizes"],
                json!({"min": 16, "max": 16_777_216, "default": 1_048_576})
            );
            // The largest plaintext plans; one byte more does not.
            let max = limits.max_plaintext_size;
            let plan = PartPlan::new(max, DEFAULT_RECORD_SIZE, None, &provider).unwrap();
            assert!(plan.ciphertext_size() <= limits.max_object_size);
            assert!(PartPlan::new(max + 1, DEFAULT_RECORD_SIZE, None, &provider).is_err());
        }
        assert_eq!(
            Limits::new("r2-binding", &r2).max_plaintext_size,
            985_661_440_000
        );
    }

    #[test]
    fn metadata_limits() {
        assert_eq!(create(28).metadata_bytes().unwrap().len(), 28);
        assert_eq!(create(2076).metadata_bytes().unwrap().len(), 2076);
        for len in [0, 27, 2077, 4000] {
            assert_eq!(
                create(len).metadata_bytes().unwrap_err().code,
                ApiErrorCode::InvalidMetadata
            );
        }
        let mut req = create(28);
        req.metadata = "not base64!".into();
        assert_eq!(
            req.metadata_bytes().unwrap_err().code,
            ApiErrorCode::InvalidMetadata
        );
        // Unpadded is not standard base64 with padding.
        req.metadata = encode_base64(&[1u8; 29]).trim_end_matches('=').to_owned();
        assert_eq!(
            req.metadata_bytes().unwrap_err().code,
            ApiErrorCode::InvalidMetadata
        );
    }

    #[test]
    fn header_checks() {
        let req = create(28);
        let valid = req.validate(&ProviderLimits::S3).unwrap();
        assert_eq!(valid.header.record_size(), 1 << 20);
        assert_eq!(encode_base64(&valid.header.encode()), req.header);
        assert_eq!(valid.metadata.len(), 28);
        assert_eq!(valid.plan.part_count(), 4);

        let good = Header::new(&FileKey::from_bytes([8; 32]), 1 << 20, [9; 32])
            .unwrap()
            .encode();
        let with = |bytes: &[u8]| CreateUploadRequest {
            header: encode_base64(bytes),
            ..req.clone()
        };
        let mut version = good;
        version[4] = 3;
        let mut magic = good;
        magic[0] = b'X';
        let mut record_size = good;
        record_size[8..12].copy_from_slice(&15u32.to_be_bytes());
        for (bytes, expected) in [
            (&version[..], ApiErrorCode::UnsupportedVersion),
            (&magic[..], ApiErrorCode::InvalidHeader),
            (&record_size[..], ApiErrorCode::InvalidHeader),
            (&good[..75], ApiErrorCode::InvalidHeader),
            (&[0u8; 76][..], ApiErrorCode::InvalidHeader),
        ] {
            assert_eq!(
                with(bytes).validate(&ProviderLimits::S3).unwrap_err().code,
                expected
            );
        }
        let mut bad = req.clone();
        bad.header = "%%%".into();
        assert_eq!(
            bad.validate(&ProviderLimits::S3).unwrap_err().code,
            ApiErrorCode::InvalidHeader
        );
        // The header is checked before the metadata, the metadata before the plan.
        let mut both = create(3);
        both.header = "%%%".into();
        assert_eq!(
            both.validate(&ProviderLimits::S3).unwrap_err().code,
            ApiErrorCode::InvalidHeader
        );
        let mut huge = create(28);
        huge.plaintext_size = u64::MAX;
        assert_eq!(
            huge.validate(&ProviderLimits::S3).unwrap_err().code,
            ApiErrorCode::FileTooLarge
        );
        huge.metadata = String::new();
        assert_eq!(
            huge.validate(&ProviderLimits::S3).unwrap_err().code,
            ApiErrorCode::InvalidMetadata
        );
        assert_eq!(
            req.plan_with_record_size(15, &ProviderLimits::S3)
                .unwrap_err()
                .code,
            ApiErrorCode::InvalidHeader
        );
    }

    #[test]
    fn part_number_validation() {
        let ok = |v: Vec<u32>, count| PartUrlsRequest { part_numbers: v }.validate(count);
        assert!(ok(vec![1], 1).is_ok());
        assert!(ok(vec![3, 1, 2], 3).is_ok());
        assert!(ok((1..=100).collect(), 10_000).is_ok());
        for (v, count) in [
            (vec![], 5),
            ((1..=101).collect(), 10_000),
            (vec![0], 5),
            (vec![6], 5),
            (vec![1, 2, 1], 5),
            (vec![u32::MAX], 10_000),
        ] {
            assert_eq!(
                ok(v, count).unwrap_err().code,
                ApiErrorCode::InvalidPartNumber
            );
        }
    }

    #[test]
    fn responses_serialize_as_in_api_md() {
        let plan = PartPlan::new(67_108_864, 1 << 20, None, &ProviderLimits::S3).unwrap();
        let file_id = FileId::from_bytes([1; 24]);
        let resp = CreateUploadResponse {
            file_id: file_id.clone(),
            owner_token: OwnerToken::from_random([2; 16]),
            plan: plan.clone(),
            expires_at: 1_764_000_000_000,
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(v["fileId"], json!(file_id.as_str()));
        assert_eq!(v["ownerToken"].as_str().unwrap().len(), 22);
        assert_eq!(v["plan"]["partSize"], json!(16_777_472));
        assert_eq!(v["expiresAt"], json!(1_764_000_000_000u64));
        let back: CreateUploadResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, resp);

        let status = UploadStatus {
            state: UploadState::Open,
            plan: plan.clone(),
            parts: vec![PartRecord {
                part_number: 1,
                etag: "\"e\"".into(),
                size: 16_777_472,
            }],
            expires_at: 5,
            stalled: false,
        };
        let v = serde_json::to_value(&status).unwrap();
        assert!(v.get("stalled").is_none(), "sent only when true");
        assert_eq!(v["state"], json!("open"));
        assert_eq!(
            v["parts"][0],
            json!({"partNumber":1,"etag":"\"e\"","size":16777472})
        );

        let urls = PartUrlsResponse {
            urls: vec![PartUrl {
                part_number: 1,
                url: "http://x/blob".into(),
                expires_at: 9,
            }],
        };
        assert_eq!(
            serde_json::to_value(&urls).unwrap(),
            json!({"urls":[{"partNumber":1,"url":"http://x/blob","expiresAt":9}]})
        );
        assert_eq!(
            serde_json::to_string(&PutPartResponse {
                etag: "\"a\"".into()
            })
            .unwrap(),
            r#"{"etag":"\"a\""}"#
        );

        let record = FileRecord::new(
            file_id,
            &plan,
            &[0u8; 76],
            &[0u8; 28],
            (7, Some(9)),
            DownloadUrl {
                url: "http://x".into(),
                expires_at: 8,
            },
        );
        let v = serde_json::to_value(&record).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "ciphertextSize",
                "createdAt",
                "download",
                "expiresAt",
                "fileId",
                "header",
                "metadata",
                "partCount",
                "partSize",
                "plaintextSize",
                "recordSize"
            ]
        );
        assert_eq!(v["download"], json!({"url":"http://x","expiresAt":8}));
        assert_eq!(v["ciphertextSize"], json!(67_109_888));
    }

    #[test]
    fn expires_in_is_seconds_or_never() {
        let parse = |v: &str| {
            parse_json::<CreateUploadRequest>(
                format!(r#"{{"plaintextSize":0,"header":"","metadata":"","expiresIn":{v}}}"#)
                    .as_bytes(),
                MAX_JSON_BODY,
            )
            .map(|r| r.expires_in.map(ExpiresIn::seconds))
        };
        assert_eq!(parse("60"), Ok(Some(Some(60))));
        assert_eq!(parse("\"never\""), Ok(Some(None)));
        // null is the same as leaving it out: the default.
        assert_eq!(parse("null"), Ok(None));
        for bad in ["-1", "1.5", "\"Never\"", "\"60\"", "{}"] {
            assert_eq!(
                parse(bad).unwrap_err().code,
                ApiErrorCode::InvalidJson,
                "{bad}"
            );
        }
    }

    #[test]
    fn responses_tolerate_new_fields() {
        let v = json!({"etag":"\"a\"","addedLater":true});
        assert!(serde_json::from_value::<PutPartResponse>(v).is_ok());
    }
}
