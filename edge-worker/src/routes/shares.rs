//! `/api/shares/{token}...`: a share link's public calls, each answered by the share's
//! object (the token's MAC is already checked). The caller's country and user agent
//! go along, reduced there to coarse access records; the address never does.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::ShareToken;
use sealdrop_protocol::share::OpenDownloadRequest;
use sealdrop_protocol::wire::{MAX_JSON_BODY, parse_json};
use worker::{Env, Request, Response};

use crate::http::{empty, json, read_body};
use crate::share::{Caller, ShareStub};

/// `GET /api/shares/{token}`: whether it needs a password, its expiry, what is left.
pub(crate) async fn info(
    req: &Request,
    env: &Env,
    token: &ShareToken,
) -> Result<Response, ApiError> {
    let view = ShareStub::get(env, token)?.view(Caller::of(req)).await?;
    json(200, &view)
}

/// `POST /api/shares/{token}/downloads`: opens a download; `201` with its id, the file
/// record and a storage URL. An empty body is `{}`.
pub(crate) async fn open(
    req: &mut Request,
    env: &Env,
    token: &ShareToken,
) -> Result<Response, ApiError> {
    let body = read_body(req, MAX_JSON_BODY).await?;
    let request: OpenDownloadRequest = match body.is_empty() {
        true => OpenDownloadRequest::default(),
        false => parse_json(&body, MAX_JSON_BODY)?,
    };
    let opened = ShareStub::get(env, token)?
        .open(token, request, Caller::of(req))
        .await?;
    json(201, &opened)
}

/// `POST .../downloads/{downloadId}/url`: a fresh storage URL for a running download.
pub(crate) async fn url(
    env: &Env,
    token: &ShareToken,
    download: String,
) -> Result<Response, ApiError> {
    let url = ShareStub::get(env, token)?.url(download).await?;
    json(200, &url)
}

/// `POST .../downloads/{downloadId}/complete` (`204`, idempotent), or `DELETE
/// .../downloads/{downloadId}` (abandon, `204`).
pub(crate) async fn close(
    req: &Request,
    env: &Env,
    token: &ShareToken,
    download: String,
    completed: bool,
) -> Result<Response, ApiError> {
    let share = ShareStub::get(env, token)?;
    match completed {
        true => share.complete(download, Caller::of(req)).await?,
        false => share.abandon(download, Caller::of(req)).await?,
    }
    empty(204)
}
