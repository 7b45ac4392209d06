//! The rooms' settings: the `JWT_SECRET` secret, the `JWT_AUDIENCE` var, the
//! `ROOM_*` limits and `DEV_LOGIN` (docs/PROTOCOL.md, Configuration).
//!
//! Read whenever a room object loads and on every dev-token request (a Durable Object
//! may be evicted at any time, so nothing is kept). A missing or short secret is a
//! configuration error answered as `500 internal` (cause logged): there is no fallback
//! key, which would let anyone mint tokens.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::jwt::JwtVerifier;
use sealdrop_protocol::room::limits::RoomLimits;
use worker::Env;

use crate::config::{misconfigured, var};

/// The audience tokens must name unless `JWT_AUDIENCE` says otherwise.
pub(crate) const DEFAULT_AUDIENCE: &str = "sealdrop";

/// Everything a room needs from the configuration.
pub(crate) struct RoomConfig {
    /// Verifies (and for the dev login, mints) tokens.
    pub verifier: JwtVerifier,
    /// The limits, defaults overridden by `ROOM_*` vars.
    pub limits: RoomLimits,
}

impl RoomConfig {
    /// Reads and checks the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let secret = env.secret("JWT_SECRET").ok().map(|s| s.to_string());
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return Err(misconfigured(
                "JWT_SECRET is not set: run scripts/setup.sh (writes .dev.vars) or \
                 `wrangler secret put JWT_SECRET`",
            ));
        };
        let audience = var(env, "JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        let verifier = JwtVerifier::new(secret.as_bytes(), audience)
            .map_err(|e| misconfigured(&format!("JWT_SECRET: {e}")))?;
        let mut limits = RoomLimits::default();
        if let Some(n) = number(env, "ROOM_MESSAGES_PER_MINUTE")? {
            limits.messages_per_window = u32::try_from(n)
                .map_err(|_| misconfigured("ROOM_MESSAGES_PER_MINUTE is too large"))?;
            limits.message_window_ms = 60_000;
        }
        if let Some(n) = number(env, "ROOM_MAX_DEVICES")? {
            limits.max_devices_per_user = n as usize;
        }
        if let Some(n) = number(env, "ROOM_AUTH_TIMEOUT_SECONDS")? {
            limits.auth_timeout_ms = n.saturating_mul(1000);
        }
        if let Some(n) = number(env, "ROOM_IDLE_TIMEOUT_SECONDS")? {
            limits.idle_timeout_ms = n.saturating_mul(1000);
        }
        if let Some(n) = number(env, "ROOM_FRAMES_PER_SECOND")? {
            limits.frames_per_second = u32::try_from(n)
                .map_err(|_| misconfigured("ROOM_FRAMES_PER_SECOND is too large"))?;
            limits.frame_burst = limits.frames_per_second.saturating_mul(3);
        }
        Ok(Self { verifier, limits })
    }
}

/// Whether the dev token route is on: `DEV_LOGIN` is exactly `true` (in `.dev.vars`,
/// written by setup; never in wrangler.toml).
pub(crate) fn dev_login(env: &Env) -> bool {
    var(env, "DEV_LOGIN").as_deref().map(str::trim) == Some("true")
}

/// A whole non-negative number var, or `None` when unset (`ROOM_IDLE_TIMEOUT_SECONDS`
/// may be 0: off).
fn number(env: &Env, name: &str) -> Result<Option<u64>, ApiError> {
    match var(env, name) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| misconfigured(&format!("{name} must be a whole number, not {text:?}"))),
    }
}
