//! `/blob/...`: the signed URLs of the `r2-binding` provider.
//!
//! Both verify the URL's signature and expiry statelessly first (`403 token_invalid`,
//! `403 token_expired`): a forged or stale URL never reaches a session object or R2.
//!
//! A part PUT is the worker's own work, not the session object's: it asks the session to
//! begin the write (a fence and a lease), pipes the body straight into R2, and tells the
//! session the outcome ("part N has ETag E and size S under fence F", or that it failed).
//! The session's answer to that report is the client's answer. A refusal before any
//! byte moved still drains the body, so a client that is still sending reads it.

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::token::{BlobClaims, BlobPurpose};
use worker::{Env, Method, Request, Response};

use crate::config::Config;
use crate::http::{OrApiError as _, content_length, drain, header, json};
use crate::now_ms;
use crate::session::client::SessionStub;
use crate::storage::Storage;
use crate::storage::r2::{Lease, WriteFailure};

/// `PUT /blob/{fileId}/{part}?exp&size&upload&sig`.
pub(crate) async fn put_part(
    req: &Request,
    env: &Env,
    config: &Config,
    file_id: FileId,
    part: u32,
) -> Result<Response, ApiError> {
    let checked = check_part_url(req, config, &file_id, part);
    let (size, upload_id) = match checked {
        Ok(claims) => claims,
        Err(e) => {
            drain(req).await;
            return Err(e);
        }
    };
    let storage = Storage::from_config(env, config)?;
    let (Some(r2), Some(body)) = (storage.r2_binding(), req.inner().body()) else {
        drain(req).await;
        return Err(ApiError::not_found());
    };
    let session = SessionStub::get(env, &file_id)?;
    let grant = match session.begin_part(part, size, &upload_id).await {
        Ok(grant) => grant,
        Err(e) => {
            drain(req).await;
            return Err(e);
        }
    };
    let lease = Lease {
        until: grant.lease_until,
        renew: || session.renew_part(part, grant.fence),
        length_ms: config.part_lease_ms,
    };
    let written = r2
        .write_part(&file_id, &upload_id, part, body, size, lease)
        .await;
    let failure = match written {
        Ok(etag) => {
            let answer = session.finish_part(part, grant.fence, etag, size).await?;
            let response = json(200, &answer)?;
            response
                .headers()
                .set("etag", &answer.etag)
                .or_internal("answering a part")?;
            return Ok(response);
        }
        Err(failure) => failure,
    };
    // The session's refusal (the upload is over, the write was superseded) is the
    // client's answer; else the write's own failure.
    let gone = failure == WriteFailure::Storage { gone: true };
    session.fail_part(part, grant.fence, gone).await?;
    Err(match failure {
        WriteFailure::Body => ApiError::new(
            ApiErrorCode::PartSizeMismatch,
            format!("part {part}'s body ended before its {size} bytes"),
        ),
        WriteFailure::Storage { .. } => ApiError::storage(),
        WriteFailure::LeaseLost => ApiError::busy(
            format!("the write of part {part} was stopped; send the part again"),
            1,
        ),
    })
}

/// The part URL's claims, checked: the signature, the expiry, and a declared
/// `Content-Length` equal to the signed size (`400 part_size_mismatch` otherwise: a part
/// must declare its length, as S3 requires, so HTTP framing bounds the body). Answers
/// the size and the upload id.
fn check_part_url(
    req: &Request,
    config: &Config,
    file_id: &FileId,
    part: u32,
) -> Result<(u64, String), ApiError> {
    let claims = config
        .signer
        .verify_part_url(file_id.clone(), part, &query(req)?, now_ms())?;
    claims.check_declared_size(content_length(req))?;
    match claims {
        BlobClaims {
            purpose: BlobPurpose::Put {
                size, upload_id, ..
            },
            ..
        } => Ok((size, upload_id)),
        BlobClaims { .. } => Err(ApiError::not_found()),
    }
}

/// `GET`/`HEAD /blob/{fileId}?exp&sig`: the record section, whole or one `Range`,
/// straight from storage (the object exists only once the upload is completed).
pub(crate) async fn get(
    req: &Request,
    env: &Env,
    config: &Config,
    file_id: FileId,
) -> Result<Response, ApiError> {
    config
        .signer
        .verify_download_url(file_id.clone(), &query(req)?, now_ms())?;
    let storage = Storage::from_config(env, config)?;
    let Some(r2) = storage.r2_binding() else {
        return Err(ApiError::not_found());
    };
    let range = header(req, "range");
    r2.read(&file_id, range.as_deref(), req.method() == Method::Head)
        .await
}

fn query(req: &Request) -> Result<String, ApiError> {
    Ok(req
        .url()
        .or_internal("reading the request URL")?
        .query()
        .unwrap_or_default()
        .to_owned())
}
