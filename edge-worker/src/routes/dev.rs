//! `POST /api/dev/token`: a token for local development, so the demo works without an
//! identity provider. It exists only when `DEV_LOGIN` is `true` (set in `.dev.vars` by
//! `scripts/setup.sh`, never in `wrangler.toml`): otherwise the path is `404 not_found`
//! like any other unknown route. It lets anyone choose any name and any role, which is
//! exactly why it must never be on in a deployment.

use std::collections::BTreeMap;

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::jwt::{Audience, Claims, Role};
use sealdrop_protocol::room::ids::{valid_name, valid_room_id, valid_user_id};
use sealdrop_protocol::wire::{MAX_JSON_BODY, parse_json};
use serde::{Deserialize, Serialize};
use worker::{Date, Env, Request, Response};

use crate::http::{OrApiError as _, json, read_body};
use crate::room::{RoomConfig, dev_login};

/// How long a dev token is valid unless asked otherwise: 12 hours.
const DEFAULT_TTL_SECS: u64 = 12 * 60 * 60;
/// The longest a dev token may be asked to live: 24 hours.
const MAX_TTL_SECS: u64 = 24 * 60 * 60;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DevTokenRequest {
    /// The display name.
    name: String,
    /// Room id (or `*`) to role.
    rooms: BTreeMap<String, Role>,
    /// The user id; a fresh random one when absent (a browser keeps its own to count
    /// its tabs as devices of one user).
    #[serde(default)]
    user_id: Option<String>,
    /// Lifetime in seconds, 1 to 86,400; default 43,200.
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DevTokenResponse {
    token: String,
    user_id: String,
    expires_at: u64,
}

/// Whether the route exists in this deployment.
pub(crate) fn enabled(env: &Env) -> bool {
    dev_login(env)
}

/// Mints a token.
pub(crate) async fn token(req: &mut Request, env: &Env) -> Result<Response, ApiError> {
    let config = RoomConfig::from_env(env)?;
    let body = read_body(req, MAX_JSON_BODY).await?;
    let request: DevTokenRequest = parse_json(&body, MAX_JSON_BODY)?;
    let bad = |why: &str| Err(ApiError::invalid_json(why.to_owned()));
    if !valid_name(&request.name) {
        return bad("name must be 1 to 64 characters, not blank, no control characters");
    }
    if request.rooms.is_empty() || request.rooms.len() > 16 {
        return bad("rooms must name 1 to 16 rooms (or \"*\")");
    }
    if request.rooms.keys().any(|k| k != "*" && !valid_room_id(k)) {
        return bad("a room id is 1 to 64 characters of A-Z a-z 0-9 - _");
    }
    let user_id = match request.user_id {
        Some(id) if valid_user_id(&id) => id,
        Some(_) => return bad("userId must be 1 to 128 bytes with no control characters"),
        None => format!("dev-{}", random_id()?),
    };
    let ttl = request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return bad("ttlSeconds must be 1 to 86400");
    }
    let now = Date::now().as_millis() / 1000;
    let claims = Claims {
        sub: user_id.clone(),
        name: Some(request.name),
        aud: Audience::One(config.verifier.audience().to_owned()),
        exp: now + ttl,
        nbf: None,
        iat: Some(now),
        rooms: request.rooms,
    };
    json(
        200,
        &DevTokenResponse {
            token: config.verifier.mint(&claims),
            user_id,
            expires_at: claims.exp * 1000,
        },
    )
}

/// 64 random bits as 16 hex digits.
fn random_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).or_internal("drawing random bytes")?;
    Ok(format!("{:016x}", u64::from_be_bytes(bytes)))
}
