//! `GET /api/rooms/{roomId}/ws`: the WebSocket of one room, handed to its `Room` object.
//!
//! Checked here, before any object is addressed: the room id (`404 not_found`
//! otherwise), that this is a WebSocket upgrade (`426 upgrade_required`), and that the
//! rooms are configured (`500 internal`). Authentication happens on the socket
//! (docs/PROTOCOL.md): a browser cannot read the status of a refused upgrade, but it can
//! read an `authentication_failed` frame and the close code that follows.

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::room::ids::valid_room_id;
use worker::{Env, Request, Response};

use crate::http::{OrApiError as _, header};
use crate::room::{BINDING, RoomConfig};

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

/// `426 upgrade_required`: the room URL only speaks WebSocket.
pub(crate) fn upgrade_required() -> ApiError {
    ApiError::new(
        ApiErrorCode::UpgradeRequired,
        "this URL is a WebSocket: connect with Upgrade: websocket",
    )
}
