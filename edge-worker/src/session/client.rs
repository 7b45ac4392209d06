//! The worker's side of the session calls: addressing a file's object and calling it.
//!
//! Owner calls ([`SessionStub::call`]) answer the object's response as it is, since it
//! is already the final API answer. The part-write calls the `/blob` handler makes in
//! the middle of its own work ([`SessionStub::begin_part`] and the rest) answer typed
//! values, the object's refusals parsed back into [`ApiError`]s (with `Retry-After`).

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::sweep::Owner;
use sealdrop_protocol::wire::PutPartResponse;
use worker::wasm_bindgen::JsValue;
use worker::{Env, Headers, Request, Response};

use super::calls::{BeginPart, FailPart, Fenced, FinishPart, Grant, Op, OwnerQuery};
use crate::caller::{self, USER_HEADER};
use crate::http::{OrApiError as _, header};
use crate::internal::ObjectStub;

/// The `wrangler.toml` binding of the namespace.
const BINDING: &str = "UPLOADS";

/// The worker's handle on one file's session object.
pub(crate) struct SessionStub {
    stub: ObjectStub,
}

impl SessionStub {
    /// The session object of `file_id` (addressing it creates nothing).
    pub fn get(env: &Env, file_id: &FileId) -> Result<Self, ApiError> {
        let stub = ObjectStub::get(env, BINDING, file_id.as_str(), "calling an upload session")?;
        Ok(Self { stub })
    }

    /// Sends `op` with the given headers and body; answers the object's response,
    /// which is already the final API answer (errors included).
    pub async fn call(
        &self,
        op: Op,
        headers: Headers,
        body: Option<JsValue>,
    ) -> Result<Response, ApiError> {
        self.stub.call(op.method(), &op.path(), headers, body).await
    }

    /// Asks to begin writing part `part` (`size` bytes, into upload `upload_id`).
    pub async fn begin_part(
        &self,
        part: u32,
        size: u64,
        upload_id: &str,
    ) -> Result<Grant, ApiError> {
        let body = BeginPart {
            size,
            upload_id: upload_id.to_owned(),
        };
        self.stub.json(&Op::BeginPart(part).path(), &body).await
    }

    /// Renews the lease of the write of `part` under `fence`: its new end.
    pub async fn renew_part(&self, part: u32, fence: u64) -> Result<u64, ApiError> {
        let path = Op::RenewPart(part).path();
        let grant: Grant = self.stub.json(&path, &Fenced { fence }).await?;
        Ok(grant.lease_until)
    }

    /// Reports that storage accepted part `part`: the answer for the client.
    pub async fn finish_part(
        &self,
        part: u32,
        fence: u64,
        etag: String,
        size: u64,
    ) -> Result<PutPartResponse, ApiError> {
        let body = FinishPart { fence, etag, size };
        self.stub.json(&Op::FinishPart(part).path(), &body).await
    }

    /// Reports that the write of part `part` failed (`gone`: storage said it has no
    /// such upload); `Err` if the session says the upload is over (the client is told
    /// that instead of the write's own failure).
    pub async fn fail_part(&self, part: u32, fence: u64, gone: bool) -> Result<(), ApiError> {
        self.stub
            .json::<_, ()>(&Op::FailPart(part).path(), &FailPart { fence, gone })
            .await
    }

    /// The sweep asks who may still finish upload `upload_id` of this file: no session
    /// at all (the object holds nothing: `410 gone`), or what the session says.
    pub async fn owner(&self, upload_id: &str) -> Result<Owner, ApiError> {
        let query = OwnerQuery {
            upload_id: upload_id.to_owned(),
        };
        match self.stub.json(&Op::Owner.path(), &query).await {
            Err(e) if e.code == ApiErrorCode::Gone => Ok(Owner::NoSession),
            other => other,
        }
    }
}

/// Headers for an owner call: the caller's `Authorization` and, when it is a JWT
/// this deployment signed, the verified user ([`USER_HEADER`]); `401` for a JWT that
/// does not verify.
pub(crate) fn owner_headers(req: &Request, env: &Env) -> Result<Headers, ApiError> {
    let headers = Headers::new();
    let ctx = "building a session call";
    match caller::user(req, env)? {
        Some(sub) => headers.set(USER_HEADER, &sub).or_internal(ctx)?,
        None => {
            if let Some(auth) = header(req, "authorization") {
                headers.set("authorization", &auth).or_internal(ctx)?;
            }
        }
    }
    Ok(headers)
}
