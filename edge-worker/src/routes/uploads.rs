//! `/api/uploads`: creating an upload here (validated before any object exists), every
//! other call forwarded to the upload's session object, which checks the owner token.
//!
//! An upload into a room (`room` in the create body) carries the room JWT; the room
//! admits it before its session is created, and is told when storage completes it or it
//! is aborted, before the client hears so (docs/API.md, Uploads into a room).

use sealdrop_protocol::account::{AccountKey, account_name};
use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::format::MAX_SEALED_THUMBNAIL;
use sealdrop_protocol::ids::{FileId, OwnerToken};
use sealdrop_protocol::jwt::Claims;
use sealdrop_protocol::session::{Lifetime, Owner};
use sealdrop_protocol::wire::{
    CreateUploadRequest, CreateUploadResponse, MAX_COMPLETE_BODY, MAX_JSON_BODY, UploadRoom,
    parse_json,
};
use serde::de::IgnoredAny;
use worker::js_sys::Uint8Array;
use worker::{Env, Headers, Request, Response, console_error};

use crate::caller;
use crate::config::Config;
use crate::http::{OrApiError as _, header, json, read_body};
use crate::room::calls::{AdmitCall, RoomCall};
use crate::room::client::RoomStub;
use crate::routes::rooms::bearer_jwt;
use crate::session::calls::{CreateSession, Created, Op, ROOM_HEADER, RoomTie};
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
    // the owner token's holder does, counted against the client's network. An upload
    // into a room needs the room JWT, so its uploader owns it like any JWT upload.
    let claims = match &request.room {
        Some(_) => Some(bearer_jwt(req, env)?),
        None => None,
    };
    let user = match &claims {
        Some(claims) => Some(claims.sub.clone()),
        None => caller::user(req, env)?,
    };
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
    let room = match (&request.room, claims) {
        (Some(room), Some(claims)) => {
            Some(admit(env, claims, room, &file_id, request.plaintext_size).await?)
        }
        _ => None,
    };
    let create = CreateSession {
        file_id: file_id.clone(),
        owner_token_hash: owner_token.hash(),
        header: valid.header.encode().to_vec(),
        metadata: valid.metadata,
        plan: valid.plan,
        digest: valid.digest,
        idempotent: request.idempotency_key.is_some(),
        room: room.clone(),
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
        if let Some(tie) = &room
            && let Ok(room) = RoomStub::get(env, &tie.room_id)
        {
            room.file_event(RoomCall::Cancelled, &file_id).await.ok();
        }
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
        Op::PutThumbnail => Some(MAX_SEALED_THUMBNAIL),
        _ => None,
    };
    let body = match limit {
        Some(limit) => Some(Uint8Array::from(read_body(req, limit).await?.as_slice()).into()),
        None => None,
    };
    let answer = SessionStub::get(env, file_id)?
        .call(op, owner_headers(req, env)?, body)
        .await?;
    match op {
        Op::Complete | Op::Abort => after_room_upload(env, file_id, op, answer).await,
        _ => Ok(answer),
    }
}

/// Asks the room to admit an upload of the JWT's user: the tie the session records.
async fn admit(
    env: &Env,
    claims: Claims,
    room: &UploadRoom,
    file_id: &FileId,
    size: u64,
) -> Result<RoomTie, ApiError> {
    let role = claims.role_in(&room.room_id).ok_or_else(|| {
        ApiError::new(
            ApiErrorCode::Forbidden,
            format!("the token does not grant room {:?}", room.room_id),
        )
    })?;
    let call = AdmitCall {
        file_id: file_id.as_str().to_owned(),
        user_id: claims.sub.clone(),
        user_name: claims.display_name().to_owned(),
        role,
        size,
        sealed: room.sealed.clone(),
        parent_id: room.parent_id.clone(),
    };
    // The answer (`{fileId, expiresAt}`) says nothing the session needs.
    let _: IgnoredAny = RoomStub::get(env, &room.room_id)?
        .call(RoomCall::Admit, &call)
        .await?;
    Ok(RoomTie {
        room_id: room.room_id.clone(),
        user_id: claims.sub,
    })
}

/// A `complete` or `abort` answer of an upload tied to a room, or a file deletion's
/// (the session marks it): the room is told (completed: the file joins the room;
/// aborted: the upload failed; deleted: the file leaves the room) before the client gets
/// the answer, without the mark. If the room cannot be told,
/// the client gets `503 upload_busy` and its retry, answered the same by the session,
/// tells the room again.
pub(crate) async fn after_room_upload(
    env: &Env,
    file_id: &FileId,
    op: Op,
    mut answer: Response,
) -> Result<Response, ApiError> {
    let room = answer.headers().get(ROOM_HEADER).ok().flatten();
    let Some(room_id) = room else {
        return Ok(answer);
    };
    let status = answer.status_code();
    let call = match (op, status) {
        (Op::Complete, 200) => Some(RoomCall::Completed),
        (Op::Abort, 204) => Some(RoomCall::Cancelled),
        (Op::DeleteFile, 204) => Some(RoomCall::Deleted),
        _ => None,
    };
    if let Some(call) = call {
        let told = match RoomStub::get(env, &room_id) {
            Ok(room) => room.file_event(call, file_id).await,
            Err(e) => Err(e),
        };
        match told {
            Ok(()) => {}
            // The room gave up on the upload (it expired there): the file stands alone.
            Err(e) if e.code == ApiErrorCode::FileNotFound => {}
            Err(e) => {
                console_error!("telling room {room_id} about {file_id}: {e}");
                return Err(ApiError::busy(
                    "storage is done; telling the upload's room failed: retry",
                    1,
                ));
            }
        }
    }
    // The session's answer again, without the mark (fetched headers are immutable).
    let headers = Headers::new();
    for (name, value) in answer.headers().entries() {
        if !name.eq_ignore_ascii_case(ROOM_HEADER) {
            headers
                .set(&name, &value)
                .or_internal("copying an answer")?;
        }
    }
    let body = answer
        .bytes()
        .await
        .or_internal("reading a session answer")?;
    let rebuilt = match body.is_empty() {
        true => Response::empty(),
        false => Response::from_bytes(body),
    };
    Ok(rebuilt
        .or_internal("copying an answer")?
        .with_status(status)
        .with_headers(headers))
}

/// Makes one of the calls that tell a room what became of its upload.
/// 16 random bytes from the platform's CSPRNG.
fn random_16() -> Result<[u8; 16], ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).or_internal("drawing random bytes")?;
    Ok(bytes)
}
