//! `/api/files/{fileId}[/shares[/{token}]]`: the owner's calls on a completed file,
//! forwarded to its session object, which checks the owner and keeps the share list.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::{FileId, ShareToken};
use sealdrop_protocol::share::UpdateShareRequest;
use sealdrop_protocol::wire::{MAX_JSON_BODY, parse_json};
use worker::js_sys::Uint8Array;
use worker::{Env, Request, Response};

use crate::http::{OrApiError as _, read_body};
use crate::routes::uploads::after_room_upload;
use crate::session::calls::{Op, ShareChange};
use crate::session::client::{SessionStub, owner_headers};

/// `GET`, `DELETE /api/files/{fileId}`, `GET /api/files/{fileId}/shares`: forwarded
/// with the caller's `Authorization`.
pub(crate) async fn forward(
    req: &Request,
    env: &Env,
    file_id: &FileId,
    op: Op,
) -> Result<Response, ApiError> {
    let answer = SessionStub::get(env, file_id)?
        .call(op, owner_headers(req, env)?, None)
        .await?;
    match op {
        // A deleted room file leaves its room too.
        Op::DeleteFile => after_room_upload(env, file_id, op, answer).await,
        _ => Ok(answer),
    }
}

/// `POST /api/files/{fileId}/shares`: the body is read (and bounded) here.
pub(crate) async fn create_share(
    req: &mut Request,
    env: &Env,
    file_id: &FileId,
) -> Result<Response, ApiError> {
    let body = read_body(req, MAX_JSON_BODY).await?;
    SessionStub::get(env, file_id)?
        .call(
            Op::CreateShare,
            owner_headers(req, env)?,
            Some(Uint8Array::from(body.as_slice()).into()),
        )
        .await
}

/// `PATCH` (body: the change) or `DELETE` (revoke) `/api/files/{fileId}/shares/{token}`.
pub(crate) async fn change_share(
    req: &mut Request,
    env: &Env,
    file_id: &FileId,
    token: ShareToken,
    update: bool,
) -> Result<Response, ApiError> {
    let patch = match update {
        true => Some(parse_json::<UpdateShareRequest>(
            &read_body(req, MAX_JSON_BODY).await?,
            MAX_JSON_BODY,
        )?),
        false => None,
    };
    let change = serde_json::to_string(&ShareChange { token, patch })
        .or_internal("building a share call")?;
    let headers = owner_headers(req, env)?;
    headers
        .set("content-type", "application/json")
        .or_internal("building a share call")?;
    let op = match update {
        true => Op::UpdateShare,
        false => Op::RevokeShare,
    };
    SessionStub::get(env, file_id)?
        .call(op, headers, Some(change.into()))
        .await
}
