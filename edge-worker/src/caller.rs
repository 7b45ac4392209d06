//! Who a request is: a JWT user (the rooms' HS256 tokens, `JWT_SECRET` and
//! `JWT_AUDIENCE`, docs/PROTOCOL.md) or the holder of whatever other bearer token it
//! carries (an owner token, which the file's session checks itself).
//!
//! The same `Authorization: Bearer` header carries either: a JWT is three dot-separated
//! parts, an owner token has no dot. A JWT is verified here, in the worker, and only the
//! verified `sub` travels on to an object (as [`USER_HEADER`], which the worker sets
//! itself on every call it makes, so a client cannot). A JWT that does not verify is
//! `401 unauthorized`, never an anonymous call.

use sealdrop_protocol::api_error::ApiError;
use worker::{Date, Env, Request};

use crate::http::header;
use crate::room::RoomConfig;

/// The header the worker puts the verified JWT user in, on calls to objects.
pub(crate) const USER_HEADER: &str = "x-sealdrop-user";

/// The bearer token of `req`, if it has one (the scheme in any case).
pub(crate) fn bearer(req: &Request) -> Option<String> {
    let value = header(req, "authorization")?;
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The JWT user `req` speaks for: `Ok(None)` without a JWT (anonymous, or an owner
/// token), `Ok(Some(sub))` for a JWT this deployment signed, `401` for any other JWT.
pub(crate) fn user(req: &Request, env: &Env) -> Result<Option<String>, ApiError> {
    let Some(token) = bearer(req).filter(|t| t.contains('.')) else {
        return Ok(None);
    };
    let config = RoomConfig::from_env(env)?;
    let now_secs = Date::now().as_millis() / 1000;
    match config.verifier.verify(&token, now_secs) {
        Ok(claims) => Ok(Some(claims.sub)),
        Err(_) => Err(ApiError::unauthorized()),
    }
}
