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
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::wasm_bindgen::JsValue;
use worker::{Env, Headers, Request, RequestInit, Response, Stub};

use super::calls::{BeginPart, FailPart, Fenced, FinishPart, Grant, Op, OwnerQuery};
use crate::http::{OrApiError as _, header, object_answer};

/// The `wrangler.toml` binding of the namespace.
const BINDING: &str = "UPLOADS";

/// The worker's handle on one file's session object.
pub(crate) struct SessionStub {
    stub: Stub,
}

impl SessionStub {
    /// The session object of `file_id` (addressing it creates nothing).
    pub fn get(env: &Env, file_id: &FileId) -> Result<Self, ApiError> {
        let stub = env
            .durable_object(BINDING)
            .and_then(|ns| ns.id_from_name(file_id.as_str())?.get_stub())
            .or_internal("addressing an upload session")?;
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
        let mut init = RequestInit::new();
        init.with_method(op.method())
            .with_headers(headers)
            .with_body(body);
        let url = format!("https://upload-session{}", op.path());
        let req = Request::new_with_init(&url, &init).or_internal("building a session call")?;
        self.stub
            .fetch_with_request(req)
            .await
            .or_internal("calling an upload session")
    }

    /// Sends `op` with a JSON body and reads a JSON answer, or the object's refusal.
    async fn typed<B: Serialize, T: DeserializeOwned>(
        &self,
        op: Op,
        body: &B,
    ) -> Result<T, ApiError> {
        let json = serde_json::to_string(body).or_internal("building a session call")?;
        let headers = Headers::new();
        headers
            .set("content-type", "application/json")
            .or_internal("building a session call")?;
        let answer = self.call(op, headers, Some(json.into())).await?;
        object_answer(answer, "session").await
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
        self.typed(Op::BeginPart(part), &body).await
    }

    /// Renews the lease of the write of `part` under `fence`: its new end.
    pub async fn renew_part(&self, part: u32, fence: u64) -> Result<u64, ApiError> {
        let grant: Grant = self.typed(Op::RenewPart(part), &Fenced { fence }).await?;
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
        self.typed(Op::FinishPart(part), &body).await
    }

    /// Reports that the write of part `part` failed (`gone`: storage said it has no
    /// such upload); `Err` if the session says the upload is over (the client is told
    /// that instead of the write's own failure).
    pub async fn fail_part(&self, part: u32, fence: u64, gone: bool) -> Result<(), ApiError> {
        self.typed::<_, ()>(Op::FailPart(part), &FailPart { fence, gone })
            .await
    }

    /// The sweep asks who may still finish upload `upload_id` of this file: no session
    /// at all (`404 upload_not_found`), or what the session says.
    pub async fn owner(&self, upload_id: &str) -> Result<Owner, ApiError> {
        let query = OwnerQuery {
            upload_id: upload_id.to_owned(),
        };
        match self.typed(Op::Owner, &query).await {
            Err(e) if e.code == ApiErrorCode::UploadNotFound => Ok(Owner::NoSession),
            other => other,
        }
    }
}

/// Headers for an owner call: the caller's `Authorization`.
pub(crate) fn owner_headers(req: &Request) -> Result<Headers, ApiError> {
    let headers = Headers::new();
    if let Some(auth) = header(req, "authorization") {
        headers
            .set("authorization", &auth)
            .or_internal("building a session call")?;
    }
    Ok(headers)
}
