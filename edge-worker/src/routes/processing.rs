//! `POST /api/files/{fileId}/processing`: a processor reports on a file of a room
//! (docs/API.md, Processing). The processor is known by its bearer secret
//! (`PROCESSORS`); the report is validated here, before anything is addressed; the
//! file's session says which room it is in; the room checks the report against the
//! file's status and tells the sockets subscribed to the file.

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::room::processing::ProcessingReport;
use sealdrop_protocol::wire::{MAX_JSON_BODY, parse_json};
use serde::Serialize;
use serde_json::value::RawValue;
use subtle::ConstantTimeEq as _;
use worker::{Env, Headers, Request, Response};

use crate::config::{misconfigured, var};
use crate::http::{OrApiError as _, header, json, read_body};
use crate::room::calls::RoomCall;
use crate::room::client::RoomStub;
use crate::session::calls::{Op, RoomTie};
use crate::session::client::SessionStub;

/// The shortest processor secret accepted.
const MIN_PROCESSOR_SECRET_LEN: usize = 32;

/// What the worker sends the room: the report as the processor wrote it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessingCallOut<'a> {
    file_id: &'a str,
    processor: &'a str,
    report: &'a RawValue,
}

/// Handles one report.
pub(crate) async fn report(
    req: &mut Request,
    env: &Env,
    file_id: &FileId,
) -> Result<Response, ApiError> {
    let processor = processor(req, env)?;
    let body = read_body(req, MAX_JSON_BODY).await?;
    let raw: Box<RawValue> = parse_json(&body, MAX_JSON_BODY)?;
    let report: ProcessingReport = parse_json(raw.get().as_bytes(), MAX_JSON_BODY)?;
    report.validate().map_err(ApiError::invalid_json)?;
    let mut answer = SessionStub::get(env, file_id)?
        .call(Op::Room, Headers::new(), None)
        .await?;
    if answer.status_code() != 200 {
        return Err(ApiError::new(
            ApiErrorCode::FileNotFound,
            "no file of a room has this id",
        ));
    }
    let tie: RoomTie = answer.json().await.or_internal("reading a room tie")?;
    let call = ProcessingCallOut {
        file_id: file_id.as_str(),
        processor: &processor,
        report: &raw,
    };
    let status: serde_json::Value = RoomStub::get(env, &tie.room_id)?
        .call(RoomCall::Processing, &call)
        .await?;
    json(200, &status)
}

/// The processor whose secret the request carries (`Authorization: Bearer <secret>`),
/// compared in constant time with each configured one: `401 invalid_token` otherwise.
fn processor(req: &Request, env: &Env) -> Result<String, ApiError> {
    let refused = || {
        ApiError::new(
            ApiErrorCode::InvalidToken,
            "a processor's secret is required: Authorization: Bearer <secret>",
        )
    };
    let given = header(req, "authorization")
        .and_then(|v| {
            let (scheme, secret) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| secret.trim().to_owned())
        })
        .ok_or_else(refused)?;
    let configured = env
        .secret("PROCESSORS")
        .ok()
        .map(|s| s.to_string())
        .or_else(|| var(env, "PROCESSORS"))
        .unwrap_or_default();
    let processors = parse_processors(&configured).map_err(|why| misconfigured(&why))?;
    let mut found = None;
    for (name, secret) in processors {
        // Every entry is compared, so timing says nothing about which one matched.
        if bool::from(secret.as_bytes().ct_eq(given.as_bytes())) {
            found = Some(name);
        }
    }
    found.ok_or_else(refused)
}

/// `PROCESSORS`: `name:secret` entries separated by commas (names of 1 to 64
/// characters of `A-Z a-z 0-9 - _`, secrets of at least 32 characters). Empty: none.
fn parse_processors(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, secret) = entry
                .split_once(':')
                .ok_or("PROCESSORS: each entry is name:secret")?;
            let name_ok = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(format!("PROCESSORS: {name:?} is not a processor name"));
            }
            if secret.len() < MIN_PROCESSOR_SECRET_LEN {
                return Err(format!(
                    "PROCESSORS: the secret of {name} is under {MIN_PROCESSOR_SECRET_LEN} characters"
                ));
            }
            Ok((name.to_owned(), secret.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn processors_parse_strictly() {
        let secret = "s".repeat(32);
        let parsed = parse_processors(&format!("transcoder:{secret}, scan-1:{secret}x")).unwrap();
        assert_eq!(parsed[0], ("transcoder".into(), secret.clone()));
        assert_eq!(parsed[1].0, "scan-1");
        assert!(parse_processors("").unwrap().is_empty());
        assert!(parse_processors("nosecret").is_err());
        assert!(parse_processors("t:short").is_err());
        assert!(parse_processors(&format!("bad name:{secret}")).is_err());
    }
}
