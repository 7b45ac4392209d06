//! The rooms' settings: the `JWT_SECRET` secret, the `JWT_AUDIENCE` var, the
//! `ROOM_*` limits, `UPLOAD_TTL_SECONDS`, the webhook settings and `DEV_LOGIN`
//! (docs/PROTOCOL.md, Configuration).
//!
//! Read whenever a room object loads and on every dev-token request (a Durable Object
//! may be evicted at any time, so nothing is kept). A missing or short secret is a
//! configuration error answered as `500 internal` (cause logged): there is no fallback
//! key, which would let anyone mint tokens.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::jwt::JwtVerifier;
use sealdrop_protocol::room::limits::{HOUR_MS, RoomLimits};
use sealdrop_protocol::room::webhook::MIN_SECRET_LEN;
use sealdrop_protocol::session::SESSION_TTL_MS;
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
    /// `ROOM_WRITE_WINDOW_MS`: how long the first message of a batch waits for others
    /// before the batch is written (one commit for all of them).
    pub write_window_ms: u64,
    /// `ROOM_PRESENCE_WINDOW_MS`: how long the presence change that opens a window waits
    /// for others before the room tells everyone about all of them in one frame.
    pub presence_window_ms: u64,
}

/// The write window unless `ROOM_WRITE_WINDOW_MS` says otherwise: short beside the
/// 100 ms a message may take, long enough to gather what arrives during a commit.
pub(crate) const DEFAULT_WRITE_WINDOW_MS: u64 = 4;

/// The presence window unless `ROOM_PRESENCE_WINDOW_MS` says otherwise: too short for a
/// person to notice a late "online", long enough to gather the joins of a burst.
pub(crate) const DEFAULT_PRESENCE_WINDOW_MS: u64 = 100;

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
        if let Some(n) = number(env, "ROOM_MAX_UPLOADS")? {
            limits.max_uploads = n as usize;
        }
        // The room gives up on an upload an hour after its session would have expired.
        let session_ttl =
            number(env, "UPLOAD_TTL_SECONDS")?.map_or(SESSION_TTL_MS, |s| s.saturating_mul(1000));
        limits.upload_ttl_ms = session_ttl.saturating_add(HOUR_MS);
        if let Some(webhook) = WebhookConfig::from_env(env)? {
            limits.notify_interval_ms = Some(webhook.interval_s.saturating_mul(1000));
        }
        let write_window_ms =
            number(env, "ROOM_WRITE_WINDOW_MS")?.unwrap_or(DEFAULT_WRITE_WINDOW_MS);
        let presence_window_ms =
            number(env, "ROOM_PRESENCE_WINDOW_MS")?.unwrap_or(DEFAULT_PRESENCE_WINDOW_MS);
        Ok(Self {
            verifier,
            limits,
            write_window_ms,
            presence_window_ms,
        })
    }
}

/// Where offline members' notifications go, and how (docs/PROTOCOL.md, Offline members).
pub(crate) struct WebhookConfig {
    /// `WEBHOOK_URL`: where they are POSTed.
    pub url: String,
    /// `WEBHOOK_SECRET`: the signing key.
    pub secret: String,
    /// `NOTIFY_INTERVAL_SECONDS` (300): at most one per member per room in this long.
    pub interval_s: u64,
    /// `NOTIFY_MAX_ATTEMPTS` (5): delivery attempts before the failure is recorded.
    pub max_attempts: u32,
    /// `NOTIFY_RETRY_BASE_SECONDS` (10): the first retry's delay, doubling after.
    pub retry_base_s: u32,
}

impl WebhookConfig {
    /// The webhook settings, or `None` when `WEBHOOK_URL` is not set (no webhooks).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ApiError> {
        let Some(url) = var(env, "WEBHOOK_URL").filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let url = url.trim().to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(misconfigured("WEBHOOK_URL must be an http(s) URL"));
        }
        let secret = env
            .secret("WEBHOOK_SECRET")
            .ok()
            .map(|s| s.to_string())
            .or_else(|| var(env, "WEBHOOK_SECRET"))
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .ok_or_else(|| {
                misconfigured("WEBHOOK_URL is set but WEBHOOK_SECRET is missing or under 32 bytes")
            })?;
        let small = |name: &str, default: u32| -> Result<u32, ApiError> {
            match number(env, name)? {
                None => Ok(default),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| misconfigured(&format!("{name} must be 1 or more"))),
            }
        };
        Ok(Some(Self {
            url,
            secret,
            interval_s: number(env, "NOTIFY_INTERVAL_SECONDS")?.unwrap_or(300),
            max_attempts: small("NOTIFY_MAX_ATTEMPTS", 5)?,
            retry_base_s: small("NOTIFY_RETRY_BASE_SECONDS", 10)?,
        }))
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
