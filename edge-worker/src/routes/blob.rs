//! `/blob/...`: the signed URLs of local mode (the R2-binding provider).
//!
//! Both verify the URL's signature and expiry statelessly first (`403 token_invalid`,
//! `403 token_expired`): a forged or stale URL never reaches a session object or R2.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use worker::{Date, Env, Method, Request, Response};

use crate::config::Config;
use crate::http::{OrApiError as _, content_length, header};
use crate::storage::Storage;
use crate::upload_session::{Op, SessionStub, put_part_headers};

/// `PUT /blob/{fileId}/{part}?exp&size&sig`: after the signature and the declared
/// `Content-Length`, the body goes to the session, which checks it against the plan,
/// streams it into storage and counts the bytes that actually arrive.
pub(crate) async fn put_part(
    req: &Request,
    env: &Env,
    config: &Config,
    file_id: FileId,
    part: u32,
) -> Result<Response, ApiError> {
    let query = query(req)?;
    let claims = config
        .signer
        .verify_part_url(file_id.clone(), part, &query, now_ms())?;
    // The signed size is the planned one: a missing or wrong declared length is
    // refused here, before a byte is read or forwarded.
    let declared = content_length(req);
    claims.check_declared_size(declared)?;
    let headers = put_part_headers(declared.unwrap_or_default())?;
    let body = req.inner().body().map(Into::into);
    SessionStub::get(env, &file_id)?
        .call(Op::PutPart(part), headers, body)
        .await
}

/// `GET`/`HEAD /blob/{fileId}?exp&sig`: the record section, whole or one `Range`,
/// straight from storage (the object exists only once the upload is completed).
pub(crate) async fn get(
    req: &Request,
    env: &Env,
    config: &Config,
    file_id: FileId,
) -> Result<Response, ApiError> {
    let query = query(req)?;
    config
        .signer
        .verify_download_url(file_id.clone(), &query, now_ms())?;
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

fn now_ms() -> u64 {
    Date::now().as_millis()
}
