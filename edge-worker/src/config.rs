//! The worker's settings: `[vars]` in wrangler.toml and the secrets `SIGNING_SECRET`
//! (and in `s3` mode `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`), from `.dev.vars`
//! locally and `wrangler secret put` when deployed.
//!
//! Read on every request that needs them (cheap, and a Durable Object may be evicted at
//! any time, so nothing is kept in memory). A missing or malformed setting is a
//! configuration error: the request is refused with `500 internal` and the cause is
//! logged. There is no fallback key (a constant would let anyone sign blob URLs) and no
//! fallback origin (URLs built from a request's `Host` would let a client choose where
//! other clients' URLs point).

use rusty_s3::Credentials;
use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::plan::{DEFAULT_R2_BINDING_MAX_PART_SIZE, ProviderLimits};
use sealdrop_protocol::session::{PART_LEASE_MS, SESSION_TTL_MS, StepTiming};
use sealdrop_protocol::token::{BlobSigner, DOWNLOAD_URL_TTL_MS, PART_URL_TTL_MS};
use worker::{Env, Url, console_error};

use crate::storage::s3::S3Settings;

/// Where the record section is stored (`STORAGE_MODE`).
#[derive(Debug, Clone)]
pub(crate) enum StorageMode {
    /// `r2-binding`: part URLs point at this worker, which pipes the bytes into an R2
    /// multipart upload through the `BUCKET` binding.
    R2Binding,
    /// `s3`: part and download URLs are presigned for an S3-compatible endpoint.
    S3(Box<S3Settings>),
}

/// Everything configurable, parsed and checked.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The origin clients reach this worker at (`PUBLIC_URL`), without a trailing
    /// slash: every URL the worker hands out starts with it. No path: the worker
    /// answers `/api/` and `/blob/` at the root of its origin.
    pub public_url: String,
    /// How long a part URL is valid (`PART_URL_TTL_SECONDS`, default 1 hour).
    pub part_url_ttl_ms: u64,
    /// How long a download URL is valid (`DOWNLOAD_URL_TTL_SECONDS`, default 15 min).
    pub download_url_ttl_ms: u64,
    /// How long an upload stays open (`UPLOAD_TTL_SECONDS`, default and at most 6 days:
    /// under R2's 7-day automatic multipart abort, see `SESSION_TTL_MS`).
    pub upload_ttl_ms: u64,
    /// A part write's lease (`PART_LEASE_SECONDS`, default 60 s, see `PART_LEASE_MS`).
    pub part_lease_ms: u64,
    /// How long one storage call may take before it counts as failed
    /// (`STORAGE_TIMEOUT_SECONDS`, default 30 s).
    pub storage_timeout_ms: u64,
    /// How the session retries a storage step that failed (`STEP_RETRY_SECONDS`, the
    /// first wait, default 30 s; the rest is `StepTiming`'s defaults).
    pub step_timing: StepTiming,
    /// Which storage provider serves uploads (`STORAGE_MODE`).
    pub storage_mode: StorageMode,
    /// What that provider accepts, which every plan satisfies.
    pub limits: ProviderLimits,
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
        let (storage_mode, limits) =
            storage(|name| var(env, name).or_else(|| env.secret(name).ok().map(|s| s.to_string())))
                .map_err(|why| misconfigured(&why))?;
        let upload_ttl_ms = seconds("UPLOAD_TTL_SECONDS", SESSION_TTL_MS).and_then(|ms| {
            at_most(ms, SESSION_TTL_MS, "UPLOAD_TTL_SECONDS").map_err(|why| misconfigured(&why))
        })?;
        let step_timing = StepTiming {
            retry_ms: seconds("STEP_RETRY_SECONDS", StepTiming::default().retry_ms)?,
            ..StepTiming::default()
        };
        Ok(Self {
            public_url: parse_public_url(var(env, "PUBLIC_URL").as_deref())
                .map_err(|why| misconfigured(&format!("PUBLIC_URL: {why}")))?,
            part_url_ttl_ms: seconds("PART_URL_TTL_SECONDS", PART_URL_TTL_MS)?,
            download_url_ttl_ms: seconds("DOWNLOAD_URL_TTL_SECONDS", DOWNLOAD_URL_TTL_MS)?,
            upload_ttl_ms,
            part_lease_ms: seconds("PART_LEASE_SECONDS", PART_LEASE_MS)?,
            storage_timeout_ms: seconds("STORAGE_TIMEOUT_SECONDS", 30 * 1000)?,
            step_timing,
            storage_mode,
            limits,
            signer: signer(env)?,
        })
    }
}

/// A string var, or `None` when it is not set.
pub(crate) fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// `PUBLIC_URL`: an absolute `http` or `https` origin (no path, query, fragment or
/// credentials); answered without a trailing slash. Required.
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
    if url.path() != "/" {
        return Err(format!(
            "{text:?} must be an origin without a path: the worker answers /api/ and \
             /blob/ at the root of its origin"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `ms`, unless it is over `max_ms`: then the error names `name` and the limit.
fn at_most(ms: u64, max_ms: u64, name: &str) -> Result<u64, String> {
    if ms > max_ms {
        return Err(format!(
            "{name}: at most {} seconds, not {}",
            max_ms / 1000,
            ms / 1000
        ));
    }
    Ok(ms)
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
        None | Some("r2-binding") => {
            let max_part = bytes("R2_MAX_PART_BYTES")?.unwrap_or(DEFAULT_R2_BINDING_MAX_PART_SIZE);
            let limits = ProviderLimits::r2_binding(max_part)
                .map_err(|e| format!("R2_MAX_PART_BYTES: {e}"))?;
            Ok((StorageMode::R2Binding, limits))
        }
        Some("s3") => {
            let limits = match bytes("S3_MAX_OBJECT_BYTES")? {
                None => ProviderLimits::S3,
                Some(max) => ProviderLimits::S3
                    .with_max_object_size(max)
                    .map_err(|e| format!("S3_MAX_OBJECT_BYTES: {e}"))?,
            };
            Ok((StorageMode::S3(Box::new(s3_settings(&text)?)), limits))
        }
        Some(other) => Err(format!(
            "unknown STORAGE_MODE {other:?}; use \"r2-binding\" or \"s3\""
        )),
    }
}

/// The `S3_*` settings, every one checked.
fn s3_settings(text: &impl Fn(&str) -> Option<String>) -> Result<S3Settings, String> {
    let required = |name: &str| {
        text(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("STORAGE_MODE = \"s3\" needs {name}"))
    };
    let endpoint_text = required("S3_ENDPOINT")?;
    let endpoint = Url::parse(&endpoint_text)
        .ok()
        .filter(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none()
                && url.query().is_none()
                && url.fragment().is_none()
        })
        .ok_or_else(|| {
            format!("S3_ENDPOINT must be an http(s) URL with a host and nothing else, not {endpoint_text:?}")
        })?;
    let bucket = required("S3_BUCKET")?;
    if bucket.contains('/') {
        return Err(format!("S3_BUCKET must be a bucket name, not {bucket:?}"));
    }
    let path_style = match text("S3_PATH_STYLE").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(format!(
                "S3_PATH_STYLE must be true or false, not {other:?}"
            ));
        }
    };
    Ok(S3Settings {
        endpoint,
        bucket,
        region: required("S3_REGION")?,
        path_style,
        credentials: Credentials::new(
            required("S3_ACCESS_KEY_ID")?,
            required("S3_SECRET_ACCESS_KEY")?,
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::HashMap;

    use sealdrop_protocol::plan::{MIN_MAX_PART_SIZE, R2_MAX_OBJECT_SIZE};

    use super::*;

    #[test]
    fn public_url_is_required_absolute_and_normalised() {
        assert_eq!(
            parse_public_url(Some("http://127.0.0.1:8787")).unwrap(),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            parse_public_url(Some(" https://files.example/ ")).unwrap(),
            "https://files.example"
        );
        for bad in [
            // A path prefix: routing answers only at the root.
            Some("https://files.example/sealdrop"),
            Some("https://files.example/sealdrop/"),
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
    fn seconds() {
        assert_eq!(parse_seconds(None, 7), Ok(7));
        assert_eq!(parse_seconds(Some(" 2 "), 7), Ok(2_000));
        for bad in ["0", "-1", "x", "", "18446744073709551615"] {
            assert!(parse_seconds(Some(bad), 7).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_upload_lifetime_past_storages_own_abort_is_refused() {
        // The override, not the default, is what could outlive R2's 7-day abort.
        let six_days = parse_seconds(Some("518400"), 1).unwrap();
        assert_eq!(
            at_most(six_days, SESSION_TTL_MS, "UPLOAD_TTL_SECONDS"),
            Ok(six_days)
        );
        let seven_days = parse_seconds(Some("604800"), 1).unwrap();
        assert!(at_most(seven_days, SESSION_TTL_MS, "UPLOAD_TTL_SECONDS").is_err());
        assert_eq!(
            at_most(2_000, SESSION_TTL_MS, "UPLOAD_TTL_SECONDS"),
            Ok(2_000)
        );
    }

    const S3_VARS: [(&str, &str); 6] = [
        ("STORAGE_MODE", "s3"),
        ("S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("S3_BUCKET", "sealdrop-files"),
        ("S3_REGION", "us-east-1"),
        ("S3_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("S3_SECRET_ACCESS_KEY", "secret"),
    ];

    fn with(vars: &[(&str, &str)]) -> Result<(StorageMode, ProviderLimits), String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        storage(|name| vars.get(name).cloned())
    }

    fn s3_with(changes: &[(&str, Option<&str>)]) -> Result<S3Settings, String> {
        let mut vars: Vec<(&str, &str)> = S3_VARS.to_vec();
        for (name, value) in changes {
            vars.retain(|(k, _)| k != name);
            if let Some(value) = value {
                vars.push((name, value));
            }
        }
        match with(&vars)? {
            (StorageMode::S3(settings), _) => Ok(*settings),
            other => panic!("not s3: {other:?}"),
        }
    }

    #[test]
    fn r2_binding_is_the_default_with_95_mib_parts() {
        for vars in [&[][..], &[("STORAGE_MODE", " r2-binding ")]] {
            let (mode, limits) = with(vars).unwrap();
            assert!(matches!(mode, StorageMode::R2Binding));
            assert_eq!(
                limits,
                ProviderLimits::r2_binding(95 * 1024 * 1024).unwrap()
            );
        }
        let (_, limits) = with(&[("R2_MAX_PART_BYTES", "209715200")]).unwrap();
        assert_eq!(limits.max_part_size(), 209_715_200);
        let (_, limits) = with(&[("R2_MAX_PART_BYTES", "500000000")]).unwrap();
        assert_eq!(limits.max_part_size(), 500_000_000);
        // Past the largest body Cloudflare hands a Worker: refused at once, not by a
        // non-JSON 413 in front of the worker later.
        for bad in ["", "95MiB", "-1", "1000", "500000001", "5363466240"] {
            let error = with(&[("R2_MAX_PART_BYTES", bad)]).unwrap_err();
            assert!(error.starts_with("R2_MAX_PART_BYTES"), "{error}");
        }
        assert!(with(&[("R2_MAX_PART_BYTES", &MIN_MAX_PART_SIZE.to_string())]).is_ok());
    }

    #[test]
    fn s3_mode_reads_every_setting() {
        let settings = s3_with(&[]).unwrap();
        assert_eq!(settings.endpoint.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(settings.bucket, "sealdrop-files");
        assert_eq!(settings.region, "us-east-1");
        assert!(settings.path_style);
        assert_eq!(settings.credentials.key(), "AKIDEXAMPLE");
        assert_eq!(settings.credentials.secret(), "secret");
        assert!(
            !format!("{settings:?}").contains("secret\""),
            "Debug hides the secret"
        );
        assert!(
            !s3_with(&[("S3_PATH_STYLE", Some("false"))])
                .unwrap()
                .path_style
        );
        let (_, limits) = with(&S3_VARS).unwrap();
        assert_eq!(limits, ProviderLimits::S3);
        let mut r2_s3 = S3_VARS.to_vec();
        let cap = R2_MAX_OBJECT_SIZE.to_string();
        r2_s3.push(("S3_MAX_OBJECT_BYTES", &cap));
        assert_eq!(
            with(&r2_s3).unwrap().1.max_object_size(),
            R2_MAX_OBJECT_SIZE
        );
    }

    #[test]
    fn s3_mode_refuses_missing_or_bad_settings_naming_them() {
        for name in [
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_REGION",
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
        ] {
            let error = s3_with(&[(name, None)]).unwrap_err();
            assert!(error.contains(name), "{error}");
            let error = s3_with(&[(name, Some("  "))]).unwrap_err();
            assert!(error.contains(name), "{error}");
        }
        for endpoint in [
            "127.0.0.1:9000",
            "ftp://host",
            "http://user:pw@host",
            "https://host/?x=1",
            "https://host/#f",
            "not a url",
        ] {
            let error = s3_with(&[("S3_ENDPOINT", Some(endpoint))]).unwrap_err();
            assert!(error.starts_with("S3_ENDPOINT"), "{endpoint}: {error}");
        }
        assert!(
            s3_with(&[("S3_BUCKET", Some("a/b"))])
                .unwrap_err()
                .starts_with("S3_BUCKET")
        );
        assert!(
            s3_with(&[("S3_PATH_STYLE", Some("yes"))])
                .unwrap_err()
                .starts_with("S3_PATH_STYLE")
        );
        let mut vars = S3_VARS.to_vec();
        vars.push(("S3_MAX_OBJECT_BYTES", "1"));
        assert!(with(&vars).unwrap_err().starts_with("S3_MAX_OBJECT_BYTES"));
        assert!(
            with(&[("STORAGE_MODE", "r2")])
                .unwrap_err()
                .contains("unknown STORAGE_MODE")
        );
    }
}
