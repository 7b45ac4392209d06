//! `GET /api/rooms/{roomId}/ws`: the WebSocket of one room, handed to its `Room` object;
//! `GET /api/rooms/{roomId}/files/{fileId}[/thumbnail]`: a room file's record (or its
//! sealed thumbnail), for its members; and
//! the room JWT on HTTP calls.
//!
//! Checked here, before any object is addressed: the room id (`404 not_found`
//! otherwise), that this is a WebSocket upgrade (`426 upgrade_required`), and that the
//! rooms are configured (`500 internal`). Authentication happens on the socket
//! (docs/PROTOCOL.md): a browser cannot read the status of a refused upgrade, but it can
//! read an `authentication_failed` frame and the close code that follows.

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::jwt::Claims;
use sealdrop_protocol::room::files::RoomFile;
use sealdrop_protocol::room::ids::valid_room_id;
use worker::{Date, Env, Headers, Request, Response};

use crate::http::{OrApiError as _, header};
use crate::room::calls::{AccessCall, RoomCall};
use crate::room::client::RoomStub;
use crate::room::{BINDING, RoomConfig};
use crate::session::calls::Op;
use crate::session::client::SessionStub;

/// The room id of a `/api/rooms/{roomId}/ws` path, or `None` for any other path.
pub(crate) fn ws_path(path: &str) -> Option<&str> {
    path.strip_prefix("/api/rooms/")?.strip_suffix("/ws")
}

/// Forwards the upgrade to the room's object.
pub(crate) async fn websocket(
    req: Request,
    env: &Env,
    room_id: &str,
) -> Result<Response, ApiError> {
    if !valid_room_id(room_id) {
        return Err(ApiError::new(
            ApiErrorCode::NotFound,
            "no such room: a room id is 1 to 64 characters of A-Z a-z 0-9 - _",
        ));
    }
    if req.method() != worker::Method::Get {
        return Err(ApiError::method_not_allowed());
    }
    let upgrade = header(&req, "upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(upgrade_required());
    }
    RoomConfig::from_env(env)?;
    let stub = env
        .durable_object(BINDING)
        .and_then(|ns| ns.id_from_name(room_id)?.get_stub())
        .or_internal("addressing a room")?;
    stub.fetch_with_request(req)
        .await
        .or_internal("calling a room")
}

/// `GET /api/rooms/{roomId}/files/{fileId}` (`Op::RoomFile`): the file record (with a
/// fresh download URL) of one of the room's files, for a member with the room JWT; and
/// `.../thumbnail` (`Op::RoomThumbnail`): its header and sealed thumbnail.
pub(crate) async fn file(
    req: &Request,
    env: &Env,
    room_id: &str,
    file_id: &FileId,
    op: Op,
) -> Result<Response, ApiError> {
    member_file(req, env, room_id, file_id).await?;
    SessionStub::get(env, file_id)?
        .call(op, Headers::new(), None)
        .await
}

/// The room's file `file_id`, if the JWT's user is a member of the room (`403
/// forbidden` otherwise) and the room has the file (`404 file_not_found`).
pub(crate) async fn member_file(
    req: &Request,
    env: &Env,
    room_id: &str,
    file_id: &FileId,
) -> Result<RoomFile, ApiError> {
    let claims = bearer_jwt(req, env)?;
    if claims.role_in(room_id).is_none() {
        return Err(ApiError::new(
            ApiErrorCode::Forbidden,
            format!("the token does not grant room {room_id:?}"),
        ));
    }
    let call = AccessCall {
        file_id: file_id.as_str().to_owned(),
        user_id: claims.sub,
    };
    RoomStub::get(env, room_id)?
        .call(RoomCall::Access, &call)
        .await
}

/// The room JWT of an HTTP call (`Authorization: Bearer <jwt>`, the scheme in any
/// case), verified as a room socket verifies it: `401 invalid_token` (missing,
/// malformed, forged, another audience, not valid yet) or `401 expired_token`.
pub(crate) fn bearer_jwt(req: &Request, env: &Env) -> Result<Claims, ApiError> {
    let config = RoomConfig::from_env(env)?;
    let token = header(req, "authorization").and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
    });
    let Some(token) = token else {
        return Err(ApiError::new(
            ApiErrorCode::InvalidToken,
            "this call needs the room JWT: Authorization: Bearer <jwt>",
        ));
    };
    let now_s = Date::now().as_millis() / 1000;
    config.verifier.verify(&token, now_s).map_err(|e| {
        let code = match e.code() {
            "expired_token" => ApiErrorCode::ExpiredToken,
            _ => ApiErrorCode::InvalidToken,
        };
        ApiError::new(code, e.to_string())
    })
}

/// `426 upgrade_required`: the room URL only speaks WebSocket.
pub(crate) fn upgrade_required() -> ApiError {
    ApiError::new(
        ApiErrorCode::UpgradeRequired,
        "this URL is a WebSocket: connect with Upgrade: websocket",
    )
}
