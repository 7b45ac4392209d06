//! Where the record section lives: the storage-provider seam.
//!
//! An upload session asks its [`Storage`] for everything that depends on where the
//! bytes go: creating the multipart upload, the URL a client PUTs a part to, completing
//! or aborting it, and the URL a downloader GETs. The client never learns which
//! provider answered; it PUTs to URLs and keeps ETags.
//!
//! Today there is one provider, [`R2Binding`] (`STORAGE_MODE = "local"`): URLs point at
//! this worker (`/blob/...`, signed with [`BlobSigner`]) and the worker itself writes the
//! bytes into an R2 multipart upload through the `BUCKET` binding. The planned `s3`
//! provider (roadmap 02) becomes a second variant that presigns S3 URLs instead and has
//! no blob routes; nothing outside this file needs to change for it.
//!
//! The object key is `files/<fileId>` and the object holds only the record section
//! (ciphertext). Header, sealed metadata and plan live in the session.

// Until the session object takes its parts from ListParts (it lands with the session
// machine's provider seam), only the sweep calls this provider; `expect` fails the
// build as soon as everything is used, so this goes with the wiring.
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "uploads reach the S3 provider once it is wired into the session"
    )
)]
pub(crate) mod s3;

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::range::ByteRange;
use sealdrop_protocol::sweep::object_key;
use sealdrop_protocol::token::{BlobClaims, BlobSigner};
use sealdrop_protocol::wire::{DownloadUrl, PartUrl};
use worker::js_sys::BigInt;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::ReadableStream;
use worker::worker_sys::FixedLengthStream;
use worker::{Bucket, Data, Env, Headers, Range, Response, ResponseBody, UploadedPart};

use crate::config::{Config, StorageMode};
use crate::http::{OrApiError as _, error_response, internal};

/// The `wrangler.toml` binding of the R2 bucket.
const BUCKET_BINDING: &str = "BUCKET";

/// The configured storage provider.
pub(crate) enum Storage {
    /// Local mode: worker-signed URLs, bytes through the R2 binding.
    R2Binding(R2Binding),
}

impl Storage {
    /// The provider `config` names, bound to this environment.
    pub fn from_config(env: &Env, config: &Config) -> Result<Self, ApiError> {
        match &config.storage_mode {
            StorageMode::R2Binding => Ok(Self::R2Binding(R2Binding {
                bucket: env.bucket(BUCKET_BINDING).or_internal("binding BUCKET")?,
                signer: config.signer.clone(),
                part_url_ttl_ms: config.part_url_ttl_ms,
                download_url_ttl_ms: config.download_url_ttl_ms,
            })),
            // The S3 provider (`s3` module) already runs the sweep; uploads need the
            // session to take its parts from ListParts, which lands with the session
            // machine's provider seam.
            StorageMode::S3(_) => Err(internal(
                "choosing a storage provider",
                "STORAGE_MODE = \"s3\" does not serve uploads yet",
            )),
        }
    }

    /// Starts the multipart upload of `file_id`; answers storage's upload id.
    pub async fn create_upload(&self, file_id: &FileId) -> Result<String, ApiError> {
        match self {
            Self::R2Binding(r2) => {
                let upload = r2
                    .bucket
                    .create_multipart_upload(object_key(file_id))
                    .execute()
                    .await
                    .or_storage("creating a multipart upload")?;
                Ok(upload.upload_id().await)
            }
        }
    }

    /// Where to PUT part `part_number` (of `size` bytes) of the upload, and until when.
    /// `origin` is the origin the client reached this worker at.
    pub fn part_url(
        &self,
        origin: &str,
        file_id: &FileId,
        part_number: u32,
        size: u64,
        now_ms: u64,
    ) -> PartUrl {
        match self {
            Self::R2Binding(r2) => {
                let claims = BlobClaims {
                    expires_at: now_ms.saturating_add(r2.part_url_ttl_ms),
                    ..BlobClaims::part_upload(file_id.clone(), part_number, size, now_ms)
                };
                PartUrl {
                    part_number,
                    url: format!(
                        "{origin}/blob/{file_id}/{part_number}?{}",
                        r2.signer.query(&claims)
                    ),
                    expires_at: claims.expires_at,
                }
            }
        }
    }

    /// Where to GET (with `Range`) the record section of a completed file.
    pub fn download_url(&self, origin: &str, file_id: &FileId, now_ms: u64) -> DownloadUrl {
        match self {
            Self::R2Binding(r2) => {
                let claims = BlobClaims {
                    expires_at: now_ms.saturating_add(r2.download_url_ttl_ms),
                    ..BlobClaims::download(file_id.clone(), now_ms)
                };
                DownloadUrl {
                    url: format!("{origin}/blob/{file_id}?{}", r2.signer.query(&claims)),
                    expires_at: claims.expires_at,
                }
            }
        }
    }

    /// Completes the multipart upload with `parts` (`(part, etag)` in order, the ETags
    /// as storage gave them).
    pub async fn complete(
        &self,
        file_id: &FileId,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), ApiError> {
        match self {
            Self::R2Binding(r2) => {
                let upload = r2
                    .bucket
                    .resume_multipart_upload(object_key(file_id), upload_id)
                    .or_storage("resuming a multipart upload")?;
                let parts = parts
                    .iter()
                    .map(|(n, etag)| Ok(UploadedPart::new(r2_part_number(*n)?, etag.clone())))
                    .collect::<Result<Vec<_>, ApiError>>()?;
                upload
                    .complete(parts)
                    .await
                    .or_storage("completing a multipart upload")?;
                Ok(())
            }
        }
    }

    /// Whether the completed object of `file_id` exists.
    pub async fn object_exists(&self, file_id: &FileId) -> Result<bool, ApiError> {
        match self {
            Self::R2Binding(r2) => Ok(r2
                .bucket
                .head(object_key(file_id))
                .await
                .or_storage("looking for an object")?
                .is_some()),
        }
    }

    /// Aborts the multipart upload: storage forgets its parts. An upload storage no
    /// longer knows counts as aborted (it is gone either way), so that an expiry alarm
    /// cannot fail forever on an upload storage already dropped.
    pub async fn abort(&self, file_id: &FileId, upload_id: &str) -> Result<(), ApiError> {
        match self {
            Self::R2Binding(r2) => {
                let result = r2
                    .bucket
                    .resume_multipart_upload(object_key(file_id), upload_id)
                    .or_storage("resuming a multipart upload")?
                    .abort()
                    .await;
                match result {
                    Err(e) if r2_upload_is_gone(&e.to_string()) => {
                        worker::console_warn!("aborting an upload R2 no longer has: {e}");
                        Ok(())
                    }
                    other => other.or_storage("aborting a multipart upload"),
                }
            }
        }
    }

    /// The R2-binding provider, which also serves the `/blob/...` URLs it signs; `None`
    /// for a provider whose URLs point elsewhere.
    pub fn r2_binding(&self) -> Option<&R2Binding> {
        match self {
            Self::R2Binding(r2) => Some(r2),
        }
    }
}

/// Whether an R2 error from `abort()` means the upload is unknown to R2. The binding
/// throws an `Error` whose message ends in R2's code: `... (10024)` (NoSuchUpload: the
/// upload was completed, or dropped by R2's automatic abort 7 days after creation) or,
/// from the local R2, `abortMultipartUpload: We encountered an internal error. Please try
/// again. (10001)` for an upload id it does not know. 10001 is R2's generic internal
/// error, so a real transient failure may be taken for "gone" too: the session is then
/// aborted while R2 still holds the parts, which R2 itself drops within 7 days of
/// creation. That bounded leak beats an alarm that fails forever and a session that
/// stays open.
fn r2_upload_is_gone(message: &str) -> bool {
    let code = message
        .trim_end()
        .strip_suffix(')')
        .and_then(|m| m.rsplit_once('('))
        .map(|(_, code)| code);
    matches!(code, Some("10024" | "10001"))
}

/// R2 numbers parts with a u16; plans never exceed 10,000 parts.
fn r2_part_number(part_number: u32) -> Result<u16, ApiError> {
    u16::try_from(part_number).or_internal("numbering an R2 part")
}

// ---------------------------------------------------------------------------------
// R2 binding: bytes through the worker
// ---------------------------------------------------------------------------------

/// Local mode's provider: the R2 bucket binding plus the key that signs `/blob` URLs.
pub(crate) struct R2Binding {
    bucket: Bucket,
    signer: BlobSigner,
    part_url_ttl_ms: u64,
    download_url_ttl_ms: u64,
}

/// Why a part could not be written.
pub(crate) enum WritePartError {
    /// The body did not have exactly the planned number of bytes.
    SizeMismatch,
    /// Storage refused or failed.
    Storage(ApiError),
}

impl R2Binding {
    /// Streams `body` into part `part_number` of the multipart upload and answers the
    /// part's ETag (as R2 gives it, unquoted).
    ///
    /// The body is never buffered: it is piped (by the runtime, not through wasm) into a
    /// `FixedLengthStream` of exactly `size` bytes, whose readable side goes to
    /// `uploadPart`. R2 needs a stream of known length, which that gives it, and the
    /// stream also counts the bytes that actually arrive. The worker only forwards a
    /// body whose `Content-Length` is `size`, so HTTP framing bounds it; a body that
    /// still comes out short or long (the client went away, a runtime surprise) fails
    /// the pipe and is refused as [`WritePartError::SizeMismatch`], and if only the
    /// upload fails, R2 refused it: `storage_error`. Nothing is recorded either way.
    pub async fn write_part(
        &self,
        file_id: &FileId,
        upload_id: &str,
        part_number: u32,
        body: ReadableStream,
        size: u64,
    ) -> Result<String, WritePartError> {
        let fail = WritePartError::Storage;
        let r2_part = r2_part_number(part_number).map_err(fail)?;
        let upload = self
            .bucket
            .resume_multipart_upload(object_key(file_id), upload_id)
            .or_storage("resuming a multipart upload")
            .map_err(fail)?;
        let counted = match u32::try_from(size) {
            Ok(small) => FixedLengthStream::new(small),
            Err(_) => FixedLengthStream::new_big_int(BigInt::from(size)),
        }
        .map_err(|e| fail(internal("creating a FixedLengthStream", format!("{e:?}"))))?;
        // Start the pipe first (JsFuture subscribes at once, so a rejection is never
        // unhandled), then hand the counted side to R2.
        let piped = JsFuture::from(body.pipe_to(&counted.writable()));
        let uploaded = upload
            .upload_part(r2_part, Data::ReadableStream(counted.readable()))
            .await;
        if let Err(e) = piped.await {
            worker::console_warn!("part {part_number} body refused: {e:?}");
            return Err(WritePartError::SizeMismatch);
        }
        let part = uploaded.or_storage("uploading a part").map_err(fail)?;
        Ok(part.etag())
    }

    /// Answers a `GET` or `HEAD` of the record section of `file_id`, honouring `Range`.
    /// The body is R2's stream, handed to the runtime (never read in wasm).
    pub async fn read(
        &self,
        file_id: &FileId,
        range: Option<&str>,
        head_only: bool,
    ) -> Result<Response, ApiError> {
        let key = object_key(file_id);
        let Some(meta) = self
            .bucket
            .head(&key)
            .await
            .or_storage("reading an object")?
        else {
            return Err(ApiError::file_not_found());
        };
        let size = meta.size();
        let range = match ByteRange::parse(range, size) {
            Ok(range) => range,
            Err(e) if e.code == ApiErrorCode::RangeNotSatisfiable => {
                let response = error_response(&e).or_internal("answering 416")?;
                response
                    .headers()
                    .set("content-range", &ByteRange::unsatisfied_content_range(size))
                    .or_internal("answering 416")?;
                return Ok(response);
            }
            Err(e) => return Err(e),
        };

        let headers = Headers::new();
        let set = |name: &str, value: &str| headers.set(name, value).or_internal("headers");
        set("content-type", "application/octet-stream")?;
        set("accept-ranges", "bytes")?;
        set("etag", &meta.http_etag())?;
        let (status, length) = match &range {
            Some(r) => {
                set("content-range", &r.content_range())?;
                (206, r.len())
            }
            None => (200, size),
        };
        set("content-length", &length.to_string())?;
        if head_only {
            return Ok(Response::empty()
                .or_internal("answering HEAD")?
                .with_status(status)
                .with_headers(headers));
        }

        let mut get = self.bucket.get(&key);
        if let Some(r) = range {
            get = get.range(Range::OffsetWithLength {
                offset: r.start,
                length: r.len(),
            });
        }
        let Some(object) = get.execute().await.or_storage("reading an object")? else {
            return Err(ApiError::file_not_found());
        };
        let body = match object.body() {
            Some(body) => body.response_body().or_storage("streaming an object")?,
            None => ResponseBody::Empty,
        };
        Ok(Response::from_body(body)
            .or_internal("answering GET")?
            .with_status(status)
            .with_headers(headers))
    }
}
