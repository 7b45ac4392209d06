//! The worker's settings: `[vars]` in wrangler.toml and the `SIGNING_SECRET` secret
//! (`.dev.vars` locally, `wrangler secret put` when deployed).
//!
//! Read on every request that needs them (cheap, and a Durable Object may be evicted at
//! any time, so nothing is kept in memory). A missing or malformed setting is a
//! configuration error: the request is refused with `500 internal` and the cause is
//! logged. There is no fallback key (a constant would let anyone sign blob URLs) and no
//! fallback origin (URLs built from a request's `Host` would let a client choose where
//! other clients' URLs point).

use sealdrop_protocol::account::AccountLimits;
use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::session::{
    DEFAULT_FILE_TTL_MS, LifetimePolicy, PART_LEASE_MS, SESSION_TTL_MS,
};
use sealdrop_protocol::token::{BlobSigner, DOWNLOAD_URL_TTL_MS, PART_URL_TTL_MS};
use worker::{Env, Url, console_error};

/// Where the record section is stored (`STORAGE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageMode {
    /// `r2-binding`: part URLs point at this worker, which pipes the bytes into an R2
    /// multipart upload through the `BUCKET` binding.
    R2Binding,
}

/// Everything configurable, parsed and checked.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The origin (and optional path prefix) clients reach this worker at
    /// (`PUBLIC_URL`), without a trailing slash: every URL the worker hands out starts
    /// with it.
    pub public_url: String,
    /// How long a part URL is valid (`PART_URL_TTL_SECONDS`, default 1 hour).
    pub part_url_ttl_ms: u64,
    /// How long a download URL is valid (`DOWNLOAD_URL_TTL_SECONDS`, default 15 min).
    pub download_url_ttl_ms: u64,
    /// How long an upload stays open (`UPLOAD_TTL_SECONDS`, default 6 days: keep it
    /// under R2's 7-day automatic multipart abort, see `SESSION_TTL_MS`).
    pub upload_ttl_ms: u64,
    /// A part write's lease (`PART_LEASE_SECONDS`, default 60 s, see `PART_LEASE_MS`).
    pub part_lease_ms: u64,
    /// Which storage provider serves uploads (`STORAGE_MODE`).
    pub storage_mode: StorageMode,
    /// How long files live (`FILE_TTL_SECONDS`, default 7 days; `FILE_MAX_TTL_SECONDS`,
    /// default 30 days; `ALLOW_NO_EXPIRY`, default `false`).
    pub lifetimes: LifetimePolicy,
    /// Quota and create rate per account (`QUOTA_BYTES`, default 1 TiB;
    /// `CREATE_RATE_PER_MINUTE`, default 60).
    pub account_limits: AccountLimits,
    /// Signs and verifies blob URLs with `SIGNING_SECRET` (and derives idempotent ids).
    pub signer: BlobSigner,
}

impl Config {
    /// Reads and checks the configuration; `500 internal` (cause logged) if it is unusable.
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let seconds = |name, default| {
            parse_seconds(var(env, name).as_deref(), default)
                .map_err(|why| misconfigured(&format!("{name}: {why}")))
        };
        Ok(Self {
            public_url: parse_public_url(var(env, "PUBLIC_URL").as_deref())
                .map_err(|why| misconfigured(&format!("PUBLIC_URL: {why}")))?,
            part_url_ttl_ms: seconds("PART_URL_TTL_SECONDS", PART_URL_TTL_MS)?,
            download_url_ttl_ms: seconds("DOWNLOAD_URL_TTL_SECONDS", DOWNLOAD_URL_TTL_MS)?,
            upload_ttl_ms: seconds("UPLOAD_TTL_SECONDS", SESSION_TTL_MS)?,
            part_lease_ms: seconds("PART_LEASE_SECONDS", PART_LEASE_MS)?,
            storage_mode: parse_storage_mode(var(env, "STORAGE_MODE").as_deref())
                .map_err(|why| misconfigured(&format!("STORAGE_MODE: {why}")))?,
            lifetimes: LifetimePolicy {
                default_ms: seconds("FILE_TTL_SECONDS", DEFAULT_FILE_TTL_MS)?,
                max_ms: seconds("FILE_MAX_TTL_SECONDS", DEFAULT_FILE_MAX_TTL_MS)?,
                allow_never: flag(env, "ALLOW_NO_EXPIRY")?,
            },
            account_limits: AccountLimits {
                quota_bytes: number(env, "QUOTA_BYTES", DEFAULT_QUOTA_BYTES)?,
                creates_per_minute: number(env, "CREATE_RATE_PER_MINUTE", 60)?,
            },
            signer: signer(env)?,
        })
    }
}

/// The longest file lifetime unless configured: 30 days.
const DEFAULT_FILE_MAX_TTL_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// Stored bytes per account unless configured: 1 TiB.
const DEFAULT_QUOTA_BYTES: u64 = 1 << 40;

/// A `"true"` / `"false"` var (default `false`).
fn flag(env: &Env, name: &str) -> Result<bool, ApiError> {
    parse_flag(var(env, name).as_deref()).map_err(|why| misconfigured(&format!("{name}: {why}")))
}

fn parse_flag(text: Option<&str>) -> Result<bool, String> {
    match text.map(str::trim) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("must be \"true\" or \"false\", not {other:?}")),
    }
}

/// A non-negative integer var, or `default` when unset.
fn number<T: std::str::FromStr>(env: &Env, name: &str, default: T) -> Result<T, ApiError> {
    parse_number(var(env, name).as_deref(), default)
        .map_err(|why| misconfigured(&format!("{name}: {why}")))
}

fn parse_number<T: std::str::FromStr>(text: Option<&str>, default: T) -> Result<T, String> {
    match text {
        None => Ok(default),
        Some(text)
            if !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is too large"))
        }
        Some(text) => Err(format!("must be a whole number, not {text:?}")),
    }
}

/// A string var, or `None` when it is not set.
fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// `PUBLIC_URL`: an absolute `http` or `https` URL with no query or fragment; answered
/// without a trailing slash. Required.
fn parse_public_url(text: Option<&str>) -> Result<String, String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let Some(text) = text else {
        return Err("not set (e.g. PUBLIC_URL = \"https://sealdrop.example\")".into());
    };
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "{text:?} must have no query, fragment or credentials"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A positive number of seconds, as milliseconds; `default_ms` when unset.
fn parse_seconds(text: Option<&str>, default_ms: u64) -> Result<u64, String> {
    let Some(text) = text else {
        return Ok(default_ms);
    };
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => seconds
            .checked_mul(1000)
            .ok_or_else(|| format!("{text:?} is too large")),
        _ => Err(format!(
            "must be a positive number of seconds, not {text:?}"
        )),
    }
}

/// `STORAGE_MODE`: `r2-binding` (the default when unset).
fn parse_storage_mode(text: Option<&str>) -> Result<StorageMode, String> {
    match text.map(str::trim) {
        None | Some("r2-binding") => Ok(StorageMode::R2Binding),
        Some("s3") => Err("\"s3\" is not implemented yet; use \"r2-binding\"".into()),
        Some(other) => Err(format!("unknown mode {other:?}; use \"r2-binding\"")),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn public_url_is_required_absolute_and_normalised() {
        assert_eq!(
            parse_public_url(Some("http://127.0.0.1:8787")).unwrap(),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            parse_public_url(Some(" https://files.example/sealdrop/ ")).unwrap(),
            "https://files.example/sealdrop"
        );
        for bad in [
            None,
            Some(""),
            Some("127.0.0.1:8787"),
            Some("/relative"),
            Some("ftp://files.example"),
            Some("https://files.example/?x=1"),
            Some("https://files.example/#x"),
            Some("https://user:pw@files.example"),
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seconds_and_modes() {
        assert_eq!(parse_seconds(None, 7), Ok(7));
        assert_eq!(parse_seconds(Some(" 2 "), 7), Ok(2_000));
        for bad in ["0", "-1", "x", "", "18446744073709551615"] {
            assert!(parse_seconds(Some(bad), 7).is_err(), "{bad:?}");
        }
        assert_eq!(parse_storage_mode(None), Ok(StorageMode::R2Binding));
        assert_eq!(
            parse_storage_mode(Some("r2-binding")),
            Ok(StorageMode::R2Binding)
        );
        assert!(parse_storage_mode(Some("s3")).is_err());
        assert!(parse_storage_mode(Some("local")).is_err());
    }

    #[test]
    fn flags_and_numbers() {
        assert_eq!(parse_flag(None), Ok(false));
        assert_eq!(parse_flag(Some("true")), Ok(true));
        assert_eq!(parse_flag(Some(" false ")), Ok(false));
        assert!(parse_flag(Some("yes")).is_err());
        assert_eq!(parse_number(None, 5u64), Ok(5));
        assert_eq!(parse_number(Some("1099511627776"), 5u64), Ok(1 << 40));
        assert_eq!(parse_number(Some("0"), 5u32), Ok(0));
        for bad in ["", "-1", "1e3", "4294967296"] {
            assert!(parse_number(Some(bad), 5u32).is_err(), "{bad:?}");
        }
    }
}
