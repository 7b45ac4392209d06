//! The worker's settings: `[vars]` in wrangler.toml and the `SIGNING_SECRET` secret
//! (`.dev.vars` locally, `wrangler secret put` when deployed).
//!
//! Read on every request that needs them (cheap, and a Durable Object may be evicted at
//! any time, so nothing is kept in memory). A missing or weak secret is a configuration
//! error: the request is refused with `500 internal` and the cause is logged. There is
//! no fallback key: a constant would let anyone sign blob URLs.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::session::SESSION_TTL_MS;
use sealdrop_protocol::token::{BlobSigner, DOWNLOAD_URL_TTL_MS, PART_URL_TTL_MS};
use worker::{Env, console_error};

/// Where the record section is stored (`STORAGE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageMode {
    /// `local` / `r2-binding`: part URLs point at this worker, which writes the bytes
    /// into an R2 multipart upload through the `BUCKET` binding.
    R2Binding,
}

/// Everything configurable, parsed and checked.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// How long a part URL is valid (`PART_URL_TTL_SECONDS`, default 1 hour).
    pub part_url_ttl_ms: u64,
    /// How long a download URL is valid (`DOWNLOAD_URL_TTL_SECONDS`, default 15 min).
    pub download_url_ttl_ms: u64,
    /// How long an upload stays open (`UPLOAD_TTL_SECONDS`, default 6 days: keep it
    /// under R2's 7-day automatic multipart abort, see `SESSION_TTL_MS`).
    pub upload_ttl_ms: u64,
    /// Which storage provider serves uploads (`STORAGE_MODE`).
    pub storage_mode: StorageMode,
    /// Signs and verifies blob URLs with `SIGNING_SECRET`.
    pub signer: BlobSigner,
}

impl Config {
    /// Reads and checks the configuration; `500 internal` (cause logged) if it is unusable.
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        Ok(Self {
            part_url_ttl_ms: ttl_ms(env, "PART_URL_TTL_SECONDS", PART_URL_TTL_MS)?,
            download_url_ttl_ms: ttl_ms(env, "DOWNLOAD_URL_TTL_SECONDS", DOWNLOAD_URL_TTL_MS)?,
            upload_ttl_ms: ttl_ms(env, "UPLOAD_TTL_SECONDS", SESSION_TTL_MS)?,
            storage_mode: storage_mode(env)?,
            signer: signer(env)?,
        })
    }
}

/// A string var, or `None` when it is not set.
pub(crate) fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// A positive number of seconds, as milliseconds; `default_ms` when the var is unset.
fn ttl_ms(env: &Env, name: &str, default_ms: u64) -> Result<u64, ApiError> {
    let Some(text) = var(env, name) else {
        return Ok(default_ms);
    };
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => seconds
            .checked_mul(1000)
            .ok_or_else(|| misconfigured(&format!("{name} is too large"))),
        _ => Err(misconfigured(&format!(
            "{name} must be a positive number of seconds, not {text:?}"
        ))),
    }
}

fn storage_mode(env: &Env) -> Result<StorageMode, ApiError> {
    match var(env, "STORAGE_MODE").as_deref().map(str::trim) {
        None | Some("local" | "r2-binding") => Ok(StorageMode::R2Binding),
        Some("s3") => Err(misconfigured(
            "STORAGE_MODE = \"s3\" is not implemented yet; use \"local\"",
        )),
        Some(other) => Err(misconfigured(&format!(
            "unknown STORAGE_MODE {other:?}; use \"local\""
        ))),
    }
}

fn signer(env: &Env) -> Result<BlobSigner, ApiError> {
    // Locally, .dev.vars entries arrive as plain strings; deployed, as secrets. Both
    // read the same way.
    let secret = env.secret("SIGNING_SECRET").ok().map(|s| s.to_string());
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Err(misconfigured(
            "SIGNING_SECRET is not set: run scripts/setup.sh (writes .dev.vars) or \
             `wrangler secret put SIGNING_SECRET`",
        ));
    };
    BlobSigner::new(secret.as_bytes()).map_err(|e| misconfigured(&format!("SIGNING_SECRET: {e}")))
}

/// Logs a configuration problem and answers `500 internal` (the client learns nothing).
pub(crate) fn misconfigured(why: &str) -> ApiError {
    console_error!("configuration error: {why}");
    ApiError::internal()
}
