//! `/api/uploads`: creating an upload here (validated before any object exists), every
//! other call forwarded to the upload's session object, which checks the owner token.
//!
//! An upload into a room (`room` in the create body) carries the room JWT; the room
//! admits it before its session is created, and is told when storage completes it or it
//! is aborted, before the client hears so (docs/API.md, Uploads into a room).

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::{FileId, OwnerToken};
use sealdrop_protocol::wire::{
    CreateUploadRequest, CreateUploadResponse, MAX_COMPLETE_BODY, MAX_JSON_BODY, UploadRoom,
    parse_json,
};
use serde::de::IgnoredAny;
use worker::js_sys::Uint8Array;
use worker::{Env, Headers, Request, Response, console_error};

use crate::config::Config;
use crate::http::{OrApiError as _, json, read_body};
use crate::room::calls::{AdmitCall, FileCall, RoomCall};
use crate::room::client::RoomStub;
use crate::routes::rooms::bearer_jwt;
use crate::session::calls::{CreateSession, Created, Op, ROOM_HEADER, RoomTie};
use crate::session::client::{SessionStub, owner_headers};

/// `POST /api/uploads`: validates the request (header, metadata, a plan within the
/// storage provider's limits), then makes the file id and owner token (derived from
/// the idempotency key when there is one, so a retried create reaches the same
/// session; else random), and creates the session.
/// Only the token's hash leaves here.
pub(crate) async fn create(
    req: &mut Request,
    env: &Env,
    config: &Config,
) -> Result<Response, ApiError> {
    let body = read_body(req, MAX_JSON_BODY).await?;
    let request: CreateUploadRequest = parse_json(&body, MAX_JSON_BODY)?;
    let valid = request.validate(&config.limits)?;
    let (file_id, owner_token) = match &request.idempotency_key {
        Some(key) => key.derive(config.signer.server_mac()),
        None => (
            FileId::from_random(random_16()?),
            OwnerToken::from_random(random_16()?),
        ),
    };
    let room = match &request.room {
        Some(room) => Some(admit(req, env, room, &file_id, request.plaintext_size).await?),
        None => None,
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
        if let Some(tie) = &room {
            tell_room(env, &tie.room_id, RoomCall::Cancelled, &file_id)
                .await
                .ok();
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
        _ => None,
    };
    let body = match limit {
        Some(limit) => Some(Uint8Array::from(read_body(req, limit).await?.as_slice()).into()),
        None => None,
    };
    let answer = SessionStub::get(env, file_id)?
        .call(op, owner_headers(req)?, body)
        .await?;
    match op {
        Op::Complete | Op::Abort => after_room_upload(env, file_id, op, answer).await,
        _ => Ok(answer),
    }
}

/// Asks the room to admit an upload of the JWT's user: the tie the session records.
async fn admit(
    req: &Request,
    env: &Env,
    room: &UploadRoom,
    file_id: &FileId,
    size: u64,
) -> Result<RoomTie, ApiError> {
    let claims = bearer_jwt(req, env)?;
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

/// A `complete` or `abort` answer of an upload tied to a room (the session marks it):
/// the room is told (completed: the file joins the room; aborted: the upload failed)
/// before the client gets the answer, without the mark. If the room cannot be told,
/// the client gets `503 upload_busy` and its retry, answered the same by the session,
/// tells the room again.
async fn after_room_upload(
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
        _ => None,
    };
    if let Some(call) = call {
        match tell_room(env, &room_id, call, file_id).await {
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
async fn tell_room(
    env: &Env,
    room_id: &str,
    call: RoomCall,
    file_id: &FileId,
) -> Result<(), ApiError> {
    let body = FileCall {
        file_id: file_id.as_str().to_owned(),
    };
    let _: serde_json::Value = RoomStub::get(env, room_id)?.call(call, &body).await?;
    Ok(())
}

/// 16 random bytes from the platform's CSPRNG.
fn random_16() -> Result<[u8; 16], ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).or_internal("drawing random bytes")?;
    Ok(bytes)
}
