//! `/api/uploads`: creating an upload here (validated before any object exists), every
//! other call forwarded to the upload's session object, which checks the owner token.

use sealdrop_protocol::account::{AccountKey, account_name};
use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::{FileId, OwnerToken};
use sealdrop_protocol::session::{Lifetime, Owner};
use sealdrop_protocol::wire::{
    CreateUploadRequest, CreateUploadResponse, MAX_COMPLETE_BODY, MAX_JSON_BODY, parse_json,
};
use worker::js_sys::Uint8Array;
use worker::{Env, Headers, Request, Response};

use crate::caller;
use crate::config::Config;
use crate::http::{OrApiError as _, header, json, read_body};
use crate::session::calls::{CreateSession, Created, Op};
use crate::session::client::{SessionStub, owner_headers};

/// `POST /api/uploads`: validates the request (header, metadata, plan, lifetime), then
/// makes the file id and owner token (derived from the idempotency key when there is
/// one, so a retried create reaches the same session; else random), and creates the
/// session, which reserves the bytes at the caller's account. Only the token's hash
/// leaves here, and of the caller's address only a keyed hash of its network.
pub(crate) async fn create(
    req: &mut Request,
    env: &Env,
    config: &Config,
) -> Result<Response, ApiError> {
    let body = read_body(req, MAX_JSON_BODY).await?;
    let request: CreateUploadRequest = parse_json(&body, MAX_JSON_BODY)?;
    let valid = request.validate(&config.limits)?;
    let lifetime = config
        .lifetimes
        .choose(request.expires_in.map(|e| e.seconds()))?;
    // A JWT user owns the file and its bytes count against the user's account; else
    // the owner token's holder does, counted against the client's network.
    let user = caller::user(req, env)?;
    let ip = header(req, "cf-connecting-ip");
    let key = match &user {
        Some(sub) => AccountKey::User(sub),
        None => AccountKey::Client(ip.as_deref()),
    };
    let account = account_name(config.signer.server_mac(), &key);
    let owner = match user {
        Some(sub) => Owner::User { sub },
        None => Owner::TokenHolder,
    };
    let (file_id, owner_token) = match &request.idempotency_key {
        Some(key) => key.derive(config.signer.server_mac()),
        None => (
            config.signer.new_id(random_16()?),
            OwnerToken::from_random(random_16()?),
        ),
    };
    let create = CreateSession {
        file_id: file_id.clone(),
        owner_token_hash: owner_token.hash(),
        header: valid.header.encode().to_vec(),
        metadata: valid.metadata,
        plan: valid.plan,
        digest: valid.digest,
        idempotent: request.idempotency_key.is_some(),
        owner,
        account,
        lifetime_ms: match lifetime {
            Lifetime::Ms(ms) => Some(ms),
            Lifetime::Never => None,
        },
    };
    let call = serde_json::to_string(&create).or_internal("building a create call")?;
    let headers = Headers::new();
    headers
        .set("content-type", "application/json")
        .or_internal("building a create call")?;
    let mut answer = SessionStub::get(env, &file_id)?
        .call(Op::Create, headers, Some(call.into()))
        .await?;
    if answer.status_code() != 201 {
        return Ok(answer); // the session's own error answer
    }
    let created: Created = answer.json().await.or_internal("reading a create answer")?;
    json(
        201,
        &CreateUploadResponse {
            file_id,
            owner_token,
            plan: created.plan,
            expires_at: created.expires_at,
        },
    )
}

/// `GET`, `DELETE /api/uploads/{fileId}`, `POST .../part-urls`, `POST .../complete`:
/// forwarded to the session with the caller's `Authorization`. JSON bodies are read
/// here, up to their limit (`413` before anything is addressed).
pub(crate) async fn forward(
    req: &mut Request,
    env: &Env,
    file_id: &FileId,
    op: Op,
) -> Result<Response, ApiError> {
    let limit = match op {
        Op::Complete => Some(MAX_COMPLETE_BODY),
        Op::PartUrls => Some(MAX_JSON_BODY),
        _ => None,
    };
    let body = match limit {
        Some(limit) => Some(Uint8Array::from(read_body(req, limit).await?.as_slice()).into()),
        None => None,
    };
    SessionStub::get(env, file_id)?
        .call(op, owner_headers(req, env)?, body)
        .await
}

/// 16 random bytes from the platform's CSPRNG.
fn random_16() -> Result<[u8; 16], ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).or_internal("drawing random bytes")?;
    Ok(bytes)
}
