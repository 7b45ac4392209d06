//! The `UploadSession` Durable Object (binding `UPLOADS`): one object per file id,
//! named by it, the single authority on one upload's plan, confirmed parts and state,
//! and afterwards the keeper of the file record.
//!
//! In reading order: the internal calls the worker makes ([`Op`], [`SessionStub`]),
//! then the object: loading, the calls, the expiry alarm.
//!
//! The rules are `protocol::session::UploadSession`'s; this object only loads it, feeds
//! it the request and the clock, carries out storage calls and persists the result.
//!
//! Hibernation and eviction: the object may be dropped from memory between any two
//! requests. Nothing lives only in memory: the session is cached as read from SQLite
//! and every change is written to SQLite synchronously, before the answer; a fresh
//! instance reloads it on its first request. While a part streams into storage other
//! requests may run (that is what lets parts upload in parallel), so no borrow of the
//! cache is held across an `await`, and recording re-checks the state afterwards
//! (a part that lands after an abort is refused, never recorded).
//!
//! Completion is the one storage call the session must not interleave with: from the
//! moment it starts until storage answers, the session is `completing` (persisted), which
//! refuses parts, aborts and other completions. Whether *this* instance is the one
//! running the completion lives only in memory (`completing`); an instance that finds
//! the session `completing` without running it itself knows the earlier instance died
//! mid-call, and settles the session from storage (the object exists: completed; it does
//! not: open again, so the next `complete` retries) before doing anything else.

use std::cell::{Cell, RefCell};

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::ids::{FileId, OwnerTokenHash};
use sealdrop_protocol::plan::PartPlan;
use sealdrop_protocol::session::{CompleteStep, UploadSession as Session, UploadState};
use sealdrop_protocol::wire::{
    CompleteRequest, FileRecord, MAX_COMPLETE_BODY, MAX_JSON_BODY, PartUrlsRequest,
    PartUrlsResponse, PutPartResponse, parse_json,
};
use serde::{Deserialize, Serialize};
use worker::js_sys::{Date as JsDate, Number};
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{
    Date, DurableObject, Env, Headers, Method, Request, RequestInit, Response, ScheduledTime,
    State, Stub, console_error, durable_object,
};

use crate::config::Config;
use crate::http::{self, OrApiError as _, header, json, respond};
use crate::session_store::{SessionStore, StoredSession};
use crate::storage::{Storage, WritePartError};

/// The `wrangler.toml` binding of the namespace.
const BINDING: &str = "UPLOADS";
/// Carries the origin the client reached the worker at (for the URLs the session signs).
const ORIGIN_HEADER: &str = "x-sealdrop-origin";
/// Carries a part PUT's declared `Content-Length`.
const LENGTH_HEADER: &str = "x-sealdrop-length";
/// How soon an expiry alarm that fires while a completion runs looks again.
const ALARM_RETRY_MS: u64 = 60_000;

// ---------------------------------------------------------------------------------
// The worker's side: internal calls
// ---------------------------------------------------------------------------------

/// What the worker asks a session to do. Authorization (owner token) and body checks
/// happen in the object, where the owner-token hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `POST /create`, body [`CreateSession`].
    Create,
    /// `GET /status` (owner).
    Status,
    /// `POST /part-urls` (owner), body [`PartUrlsRequest`].
    PartUrls,
    /// `POST /complete` (owner), body [`CompleteRequest`].
    Complete,
    /// `POST /abort` (owner).
    Abort,
    /// `GET /file`: the record of a completed file.
    File,
    /// `PUT /parts/{n}`: a part's bytes, after the worker verified its signed URL.
    PutPart(u32),
}

impl Op {
    fn path(self) -> String {
        match self {
            Self::Create => "/create".into(),
            Self::Status => "/status".into(),
            Self::PartUrls => "/part-urls".into(),
            Self::Complete => "/complete".into(),
            Self::Abort => "/abort".into(),
            Self::File => "/file".into(),
            Self::PutPart(n) => format!("/parts/{n}"),
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Status | Self::File => Method::Get,
            Self::PutPart(_) => Method::Put,
            _ => Method::Post,
        }
    }

    fn parse(method: &Method, path: &str) -> Option<Self> {
        let op = match path {
            "/create" => Self::Create,
            "/status" => Self::Status,
            "/part-urls" => Self::PartUrls,
            "/complete" => Self::Complete,
            "/abort" => Self::Abort,
            "/file" => Self::File,
            _ => Self::PutPart(path.strip_prefix("/parts/")?.parse().ok()?),
        };
        (op.method() == *method).then_some(op)
    }
}

/// Body of [`Op::Create`]: an upload the worker already validated. The owner token
/// itself never reaches the object, only its hash.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateSession {
    pub file_id: FileId,
    pub owner_token_hash: OwnerTokenHash,
    /// The header's 76 bytes.
    pub header: Vec<u8>,
    /// The sealed metadata's bytes.
    pub metadata: Vec<u8>,
    pub plan: PartPlan,
}

/// Answer of [`Op::Create`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Created {
    pub expires_at: u64,
}

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
}

/// Headers for a session call: the caller's `Authorization`, and its origin.
pub(crate) fn call_headers(req: &Request, origin: &str) -> Result<Headers, ApiError> {
    let headers = Headers::new();
    if let Some(auth) = header(req, "authorization") {
        headers
            .set("authorization", &auth)
            .or_internal("building a session call")?;
    }
    headers
        .set(ORIGIN_HEADER, origin)
        .or_internal("building a session call")?;
    Ok(headers)
}

/// Headers for a part PUT: the length the client declared.
pub(crate) fn put_part_headers(content_length: u64) -> Result<Headers, ApiError> {
    let headers = Headers::new();
    headers
        .set(LENGTH_HEADER, &content_length.to_string())
        .or_internal("building a session call")?;
    Ok(headers)
}

// ---------------------------------------------------------------------------------
// The object
// ---------------------------------------------------------------------------------

/// One upload session (and, once completed, one file record).
#[durable_object(alarm)]
pub struct UploadSession {
    state: State,
    env: Env,
    /// The session as last read from or written to SQLite; `None` until loaded, and
    /// reset whenever a write fails, so memory never runs ahead of storage.
    cache: RefCell<Option<StoredSession>>,
    /// Whether this instance is running the storage completion of a `completing`
    /// session. Memory only, on purpose: after eviction it is false, which is how a
    /// `completing` left behind by a dead instance is recognised.
    completing: Cell<bool>,
}

impl DurableObject for UploadSession {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            cache: RefCell::new(None),
            completing: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        respond(self.handle(req).await)
    }

    /// At the session's expiry: abort a still-open upload in storage and forget its
    /// parts. Returning an error makes the runtime retry the alarm.
    async fn alarm(&self) -> worker::Result<Response> {
        match self.expire().await {
            Ok(()) => Response::empty(),
            Err(e) => {
                console_error!("expiry alarm failed ({}); it will be retried", e.code);
                Err(worker::Error::RustError("expiry alarm failed".into()))
            }
        }
    }
}

impl UploadSession {
    /// Routes one internal call.
    async fn handle(&self, mut req: Request) -> Result<Response, ApiError> {
        let Some(op) = Op::parse(&req.method(), &req.path()) else {
            return Err(ApiError::not_found());
        };
        match op {
            Op::Create => {
                let body = req.bytes().await.or_internal("reading a create call")?;
                let create = serde_json::from_slice(&body).or_internal("reading a create call")?;
                self.create(create).await
            }
            Op::File => {
                self.settle_interrupted_completion().await?;
                self.file_record(&req)
            }
            Op::PutPart(n) => {
                if let Err(e) = self.settle_interrupted_completion().await {
                    return self.refuse_part(&req, e).await;
                }
                self.put_part(&req, n).await
            }
            Op::Status | Op::PartUrls | Op::Complete | Op::Abort => {
                // Owner calls: the token first, so nothing else leaks to a stranger.
                let auth = header(&req, "authorization");
                self.with_session(|s| s.session.check_owner(auth.as_deref()))??;
                self.settle_interrupted_completion().await?;
                match op {
                    Op::Status => self.with_session(|s| json(200, &s.session.status()))?,
                    Op::PartUrls => {
                        let body = req.bytes().await.or_internal("reading part-urls")?;
                        self.part_urls(&req, parse_json(&body, MAX_JSON_BODY)?)
                    }
                    Op::Complete => {
                        let body = req.bytes().await.or_internal("reading complete")?;
                        self.complete(&req, parse_json(&body, MAX_COMPLETE_BODY)?)
                            .await
                    }
                    _ => self.abort().await,
                }
            }
        }
    }

    // -- loading -----------------------------------------------------------------

    fn store(&self) -> SessionStore {
        SessionStore::new(self.state.storage().sql())
    }

    fn config(&self) -> Result<Config, ApiError> {
        Config::from_env(&self.env)
    }

    fn storage(&self, config: &Config) -> Result<Storage, ApiError> {
        Storage::from_config(&self.env, config)
    }

    /// Runs `f` on the session (loaded from SQLite if not cached); `404
    /// upload_not_found` if none was ever created here. `f` cannot await, so the cache
    /// is never borrowed across a suspension point.
    fn with_session<R>(&self, f: impl FnOnce(&mut StoredSession) -> R) -> Result<R, ApiError> {
        let mut cache = self.cache.borrow_mut();
        if cache.is_none() {
            *cache = self.store().load()?;
        }
        match cache.as_mut() {
            Some(stored) => Ok(f(stored)),
            None => Err(ApiError::upload_not_found()),
        }
    }

    /// Like [`Self::with_session`] for a change that `f` also persists: if `f` fails
    /// after changing the session in memory, the cache is dropped and reloaded later.
    fn change_session<R>(
        &self,
        f: impl FnOnce(&mut StoredSession, &SessionStore) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let store = self.store();
        let result = self.with_session(|s| f(s, &store))?;
        if result.is_err() {
            self.cache.replace(None);
        }
        result
    }

    // -- calls -------------------------------------------------------------------

    /// Creates the session: the multipart upload in storage, the expiry alarm, the rows.
    /// If the alarm or the rows fail, the multipart upload is aborted (best effort)
    /// before answering the error, so a failed create leaves nothing behind.
    async fn create(&self, create: CreateSession) -> Result<Response, ApiError> {
        let config = self.config()?;
        let storage = self.storage(&config)?;
        let store = self.store();
        if store.exists()? {
            // 128 random bits collided, or the worker retried: never overwrite.
            return Err(http::internal("creating a session", "the file id is taken"));
        }
        let file_id = create.file_id.clone();
        let upload_id = storage.create_upload(&file_id).await?;
        if let Err(e) = self
            .create_session(create, &store, &config, &upload_id)
            .await
        {
            if let Err(abort) = storage.abort(&file_id, &upload_id).await {
                console_error!("abandoning a failed create: abort failed ({})", abort.code);
            }
            return Err(e);
        }
        let expires_at = self.with_session(|s| s.session.expires_at())?;
        json(201, &Created { expires_at })
    }

    /// The part of [`Self::create`] after storage has the multipart upload: the alarm
    /// first (an alarm without a session does nothing), then the rows.
    async fn create_session(
        &self,
        create: CreateSession,
        store: &SessionStore,
        config: &Config,
        upload_id: &str,
    ) -> Result<(), ApiError> {
        let session = Session::new_with_ttl(
            create.file_id,
            create.plan,
            create.owner_token_hash,
            now_ms(),
            config.upload_ttl_ms,
        );
        let stored = StoredSession {
            session,
            header: create.header,
            metadata: create.metadata,
            upload_id: upload_id.to_owned(),
        };
        self.set_alarm(stored.session.expires_at()).await?;
        if let Err(e) = store.create(&stored) {
            self.delete_alarm().await;
            return Err(e);
        }
        self.cache.replace(Some(stored));
        Ok(())
    }

    /// Signs the requested part URLs.
    fn part_urls(&self, req: &Request, request: PartUrlsRequest) -> Result<Response, ApiError> {
        let config = self.config()?;
        let storage = self.storage(&config)?;
        let origin = origin(req)?;
        let now = now_ms();
        let urls = self.with_session(|s| {
            let parts = s.session.part_urls(&request, now)?;
            let id = s.session.file_id();
            Ok::<_, ApiError>(
                parts
                    .into_iter()
                    .map(|(n, size)| storage.part_url(&origin, id, n, size, now))
                    .collect(),
            )
        })??;
        json(200, &PartUrlsResponse { urls })
    }

    /// Receives one part's bytes (its URL already verified by the worker), streams them
    /// into storage and records the part.
    async fn put_part(&self, req: &Request, part: u32) -> Result<Response, ApiError> {
        match self.receive_part(req, part).await {
            Ok(response) => Ok(response),
            Err(e) => self.refuse_part(req, e).await,
        }
    }

    /// Answers `error` to a part PUT; refused before any byte moved, the body is read
    /// anyway (see `discard`).
    async fn refuse_part(&self, req: &Request, error: ApiError) -> Result<Response, ApiError> {
        if let Some(body) = req.inner().body()
            && !body.locked()
        {
            discard(body).await;
        }
        Err(error)
    }

    async fn receive_part(&self, req: &Request, part: u32) -> Result<Response, ApiError> {
        let config = self.config()?;
        let storage = self.storage(&config)?;
        let Some(r2) = storage.r2_binding() else {
            return Err(ApiError::not_found());
        };
        let now = now_ms();
        // The worker only forwards a PUT that declared its length.
        let declared = header(req, LENGTH_HEADER).and_then(|v| v.parse::<u64>().ok());
        // Checks before any byte moves: open, a planned part, the declared size.
        let (file_id, upload_id, size) = self.with_session(|s| {
            let planned = s.session.plan().size_of_part(part).unwrap_or(0);
            s.session.check_part(part, declared.unwrap_or(0), now)?;
            Ok::<_, ApiError>((s.session.file_id().clone(), s.upload_id.clone(), planned))
        })??;
        let Some(body) = req.inner().body() else {
            // check_part saw a declared length equal to the planned size, which is never 0.
            return Err(size_mismatch(part, size));
        };
        let etag = match r2.write_part(&file_id, &upload_id, part, body, size).await {
            Ok(etag) => etag,
            Err(WritePartError::SizeMismatch) => return Err(size_mismatch(part, size)),
            Err(WritePartError::Storage(e)) => return Err(e),
        };
        // Record, re-checking the state: the upload may have been aborted meanwhile.
        self.change_session(|s, store| {
            s.session.record_part(part, etag.clone(), size, now_ms())?;
            match s.session.parts().get(&part) {
                Some(stored) => store.put_part(part, stored),
                None => Err(http::internal("recording a part", "part not in session")),
            }
        })?;
        let quoted = quote_etag(&etag);
        let response = json(
            200,
            &PutPartResponse {
                etag: quoted.clone(),
            },
        )?;
        response
            .headers()
            .set("etag", &quoted)
            .or_internal("answering a part")?;
        Ok(response)
    }

    /// Completes the upload (or answers the record again for the same parts).
    ///
    /// The session is `completing` (persisted) while storage completes the object, so a
    /// part, an abort or another complete arriving meanwhile is refused rather than
    /// interleaved; if storage fails, the session is open again and the client retries.
    async fn complete(
        &self,
        req: &Request,
        request: CompleteRequest,
    ) -> Result<Response, ApiError> {
        let config = self.config()?;
        let storage = self.storage(&config)?;
        let origin = origin(req)?;
        let (step, file_id, upload_id) = self.change_session(|s, store| {
            let step = s.session.begin_complete(&request.parts, now_ms())?;
            if matches!(step, CompleteStep::Store(_)) {
                store.update_session(&s.session)?;
            }
            Ok((step, s.session.file_id().clone(), s.upload_id.clone()))
        })?;
        if let CompleteStep::Store(etags) = step {
            // Set in the same turn as the state above: no other request ran in between.
            self.completing.set(true);
            let stored = match storage.complete(&file_id, &upload_id, &etags).await {
                Ok(()) => Ok(()),
                // Storage may already hold the object: an earlier attempt completed
                // storage and then failed to record it. Then the upload is complete.
                Err(e) => match storage.object_exists(&file_id).await {
                    Ok(true) => Ok(()),
                    Ok(false) | Err(_) => Err(e),
                },
            };
            let recorded = self.change_session(|s, store| {
                match stored {
                    Ok(()) => s.session.mark_completed()?,
                    Err(_) => s.session.cancel_completing(),
                }
                store.update_session(&s.session)
            });
            // Whatever SQLite now says, this instance no longer runs a completion; a
            // `completing` left by a failed write is settled by the next request.
            self.completing.set(false);
            stored?;
            recorded?;
            self.delete_alarm().await;
        }
        self.with_session(|s| record(s, &storage, &origin))?
    }

    /// Settles a session left `completing` by an instance that died while storage
    /// completed it (see the module docs); does nothing otherwise, or while this
    /// instance runs the completion itself.
    async fn settle_interrupted_completion(&self) -> Result<(), ApiError> {
        if self.completing.get() {
            return Ok(());
        }
        let interrupted = match self.with_session(|s| {
            (s.session.state() == UploadState::Completing).then(|| s.session.file_id().clone())
        }) {
            Ok(interrupted) => interrupted,
            Err(e) if e.code == ApiErrorCode::UploadNotFound => None,
            Err(e) => return Err(e),
        };
        let Some(file_id) = interrupted else {
            return Ok(());
        };
        let config = self.config()?;
        let exists = self.storage(&config)?.object_exists(&file_id).await?;
        if self.completing.get() {
            // Another request settled it and began a completion of its own meanwhile.
            return Ok(());
        }
        self.change_session(|s, store| {
            if s.session.state() != UploadState::Completing {
                return Ok(()); // settled by another request meanwhile
            }
            if exists {
                s.session.mark_completed()?;
            } else {
                s.session.cancel_completing();
            }
            store.update_session(&s.session)
        })?;
        if exists {
            self.delete_alarm().await;
        }
        Ok(())
    }

    /// Aborts the upload: storage forgets the parts, then the session does.
    async fn abort(&self) -> Result<Response, ApiError> {
        let config = self.config()?;
        let storage = self.storage(&config)?;
        let (state, file_id, upload_id) = self.with_session(|s| {
            (
                s.session.state(),
                s.session.file_id().clone(),
                s.upload_id.clone(),
            )
        })?;
        match state {
            UploadState::Completed => {
                return Err(ApiError::upload_not_open("the upload is completed"));
            }
            UploadState::Completing => {
                return Err(ApiError::upload_not_open(
                    "the upload is being completed; retry shortly",
                ));
            }
            UploadState::Aborted => {}
            UploadState::Open => {
                storage.abort(&file_id, &upload_id).await?;
                self.change_session(|s, store| {
                    s.session.abort()?;
                    store.update_session(&s.session)
                })?;
                self.delete_alarm().await;
            }
        }
        Response::empty()
            .map(|r| r.with_status(204))
            .or_internal("answering abort")
    }

    /// The record of a completed file; `404 file_not_found` otherwise.
    fn file_record(&self, req: &Request) -> Result<Response, ApiError> {
        let config = self.config()?;
        let storage = self.storage(&config)?;
        let origin = origin(req)?;
        match self.with_session(|s| {
            if s.session.state() == UploadState::Completed {
                record(s, &storage, &origin)
            } else {
                Err(ApiError::file_not_found())
            }
        }) {
            Ok(answer) => answer,
            Err(e) if e.code == ApiErrorCode::UploadNotFound => Err(ApiError::file_not_found()),
            Err(e) => Err(e),
        }
    }

    // -- expiry ------------------------------------------------------------------

    /// The alarm's work: abort an open session past its expiry. An alarm that fires
    /// early (clock skew) is set again for the expiry, and one that fires while a
    /// completion runs is set again shortly (the completion may fail and leave the
    /// session open). A session a dead instance left `completing` is settled first.
    async fn expire(&self) -> Result<(), ApiError> {
        self.settle_interrupted_completion().await?;
        let now = now_ms();
        let found = match self.with_session(|s| {
            (
                s.session.state(),
                s.session.is_expired(now),
                s.session.expires_at(),
                s.session.file_id().clone(),
                s.upload_id.clone(),
            )
        }) {
            Ok(found) => found,
            // No session here: nothing to clean up.
            Err(e) if e.code == ApiErrorCode::UploadNotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let (state, expired, expires_at, file_id, upload_id) = found;
        if state == UploadState::Completing {
            return self.set_alarm(now.saturating_add(ALARM_RETRY_MS)).await;
        }
        if state != UploadState::Open {
            return Ok(());
        }
        if !expired {
            return self.set_alarm(expires_at).await;
        }
        let config = self.config()?;
        self.storage(&config)?.abort(&file_id, &upload_id).await?;
        self.change_session(|s, store| {
            s.session.abort()?;
            store.update_session(&s.session)
        })
    }

    async fn set_alarm(&self, at_ms: u64) -> Result<(), ApiError> {
        let at = JsDate::new(&Number::from(at_ms as f64));
        self.state
            .storage()
            .set_alarm(ScheduledTime::new(at))
            .await
            .or_internal("setting the expiry alarm")
    }

    /// Drops the expiry alarm; a failure is only logged (the alarm then finds the
    /// session closed and does nothing).
    async fn delete_alarm(&self) {
        if let Err(e) = self.state.storage().delete_alarm().await {
            console_error!("deleting the expiry alarm: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// The file record of a completed session, with a fresh download URL.
fn record(s: &StoredSession, storage: &Storage, origin: &str) -> Result<Response, ApiError> {
    let now = now_ms();
    let id = s.session.file_id();
    let record = FileRecord::new(
        id.clone(),
        s.session.plan(),
        &s.header,
        &s.metadata,
        s.session.created_at(),
        storage.download_url(origin, id, now),
    );
    json(200, &record)
}

fn origin(req: &Request) -> Result<String, ApiError> {
    header(req, ORIGIN_HEADER).ok_or_else(|| http::internal("signing URLs", "no origin"))
}

fn size_mismatch(part: u32, planned: u64) -> ApiError {
    ApiError::new(
        ApiErrorCode::PartSizeMismatch,
        format!("part {part} must be exactly {planned} bytes"),
    )
}

/// Reads a refused body to its end so the client, still sending, gets the answer.
async fn discard(body: worker::web_sys::ReadableStream) {
    let result = match worker::web_sys::WritableStream::new() {
        Ok(sink) => JsFuture::from(body.pipe_to(&sink)).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        worker::console_warn!("discarding a refused body: {e:?}");
    }
}

/// An ETag as S3 sends it: in double quotes.
fn quote_etag(etag: &str) -> String {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}
