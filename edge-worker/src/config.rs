//! The worker's settings: `[vars]` in wrangler.toml and the `SIGNING_SECRET` secret
//! (`.dev.vars` locally, `wrangler secret put` when deployed).
//!
//! Read on every request that needs them (cheap, and a Durable Object may be evicted at
//! any time, so nothing is kept in memory). A missing or weak secret is a configuration
//! error: the request is refused with `500 internal` and the cause is logged. There is
//! no fallback key: a constant would let anyone sign blob URLs.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::plan::{DEFAULT_R2_BINDING_MAX_PART_SIZE, ProviderLimits};
use sealdrop_protocol::session::SESSION_TTL_MS;
use sealdrop_protocol::token::{BlobSigner, DOWNLOAD_URL_TTL_MS, PART_URL_TTL_MS};
use worker::{Env, console_error};

/// Where the record section is stored (`STORAGE_MODE`).
#[derive(Debug, Clone)]
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
    /// What that provider accepts, which every plan satisfies.
    pub limits: ProviderLimits,
    /// Signs and verifies blob URLs with `SIGNING_SECRET`.
    pub signer: BlobSigner,
}

impl Config {
    /// Reads and checks the configuration; `500 internal` (cause logged) if it is unusable.
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let (storage_mode, limits) =
            storage(|name| var(env, name).or_else(|| env.secret(name).ok().map(|s| s.to_string())))
                .map_err(|why| misconfigured(&why))?;
        Ok(Self {
            part_url_ttl_ms: ttl_ms(env, "PART_URL_TTL_SECONDS", PART_URL_TTL_MS)?,
            download_url_ttl_ms: ttl_ms(env, "DOWNLOAD_URL_TTL_SECONDS", DOWNLOAD_URL_TTL_MS)?,
            upload_ttl_ms: ttl_ms(env, "UPLOAD_TTL_SECONDS", SESSION_TTL_MS)?,
            storage_mode,
            limits,
            signer: signer(env)?,
        })
    }
}

/// A string var, or `None` when it is not set.
fn var(env: &Env, name: &str) -> Option<String> {
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
fn misconfigured(why: &str) -> ApiError {
    console_error!("configuration error: {why}");
    ApiError::internal()
}

// ---------------------------------------------------------------------------------
// Storage: the provider and its limits (pure, so every rule is tested natively)
// ---------------------------------------------------------------------------------

/// The provider `STORAGE_MODE` names, with its limits, from the settings `lookup`
/// finds (vars and secrets alike). The error says which setting is wrong and how.
fn storage(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(StorageMode, ProviderLimits), String> {
    let text = |name: &str| lookup(name).map(|v| v.trim().to_owned());
    let bytes = |name: &str| -> Result<Option<u64>, String> {
        text(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{name} must be a number of bytes, not {v:?}"))
            })
            .transpose()
    };
    match text("STORAGE_MODE").as_deref() {
        None | Some("local" | "r2-binding") => {
            let max_part = bytes("R2_MAX_PART_BYTES")?.unwrap_or(DEFAULT_R2_BINDING_MAX_PART_SIZE);
            let limits = ProviderLimits::r2_binding(max_part)
                .map_err(|e| format!("R2_MAX_PART_BYTES: {e}"))?;
            Ok((StorageMode::R2Binding, limits))
        }
        Some("s3") => {
            Err("STORAGE_MODE = \"s3\" is not implemented yet; use \"r2-binding\"".into())
        }
        Some(other) => Err(format!(
            "unknown STORAGE_MODE {other:?}; use \"r2-binding\" (or \"local\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::HashMap;

    use sealdrop_protocol::plan::MIN_MAX_PART_SIZE;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<(StorageMode, ProviderLimits), String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        storage(|name| vars.get(name).cloned())
    }

    #[test]
    fn r2_binding_is_the_default_with_95_mib_parts() {
        for vars in [
            &[][..],
            &[("STORAGE_MODE", "local")],
            &[("STORAGE_MODE", " r2-binding ")],
        ] {
            let (mode, limits) = with(vars).unwrap();
            assert!(matches!(mode, StorageMode::R2Binding));
            assert_eq!(
                limits,
                ProviderLimits::r2_binding(95 * 1024 * 1024).unwrap()
            );
        }
        let (_, limits) = with(&[("R2_MAX_PART_BYTES", "209715200")]).unwrap();
        assert_eq!(limits.max_part_size(), 209_715_200);
        for bad in ["", "95MiB", "-1", "1000"] {
            let error = with(&[("R2_MAX_PART_BYTES", bad)]).unwrap_err();
            assert!(error.starts_with("R2_MAX_PART_BYTES"), "{error}");
        }
        assert!(with(&[("R2_MAX_PART_BYTES", &MIN_MAX_PART_SIZE.to_string())]).is_ok());
    }
}
