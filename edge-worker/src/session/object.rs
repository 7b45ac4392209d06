//! The `UploadSession` Durable Object (binding `UPLOADS`): one object per file id, named
//! by it, holding one upload's session and, once completed, its file record.
//!
//! The rules are `protocol::session::Session`'s; this object loads it, feeds it each
//! call and the clock, carries out the storage steps it emits, and persists it. In
//! reading order: the calls, the steps, the alarm, loading and saving.
//!
//! Owner calls cover the upload and, once completed, the file: its record, its
//! deletion and its shares (each share is its own `Share` object; this one keeps the
//! list, so that the file's deletion can purge them all). Deleting ends with a wipe of
//! this object's storage: then nothing is left, and the object answers `410 gone`.
//!
//! Every call first carries out any step left due by an instance that died mid-step
//! ("settle": its errors are not this call's), then makes its own call on the session,
//! then carries out the steps that call made due, answering the first step error. A
//! step is the only thing awaited while the session is mid-change; other calls run in
//! between (that is what lets parts upload in parallel) and find the session busy where
//! that matters: the machine refuses what would interleave. Nothing lives only in
//! memory but the cache of what SQLite holds and the machine's "a step is being carried
//! out here" flag, which eviction drops on purpose.

use std::cell::{Cell, RefCell};

use sealdrop_protocol::api_error::{ApiError, ApiErrorCode};
use sealdrop_protocol::format::{MAX_SEALED_THUMBNAIL, MIN_SEALED_THUMBNAIL};
use sealdrop_protocol::ids::{FileId, decode_random_id};
use sealdrop_protocol::session::{
    CompleteStart, FileTerms, Lifetime, MAX_SHARES_PER_FILE, Reserve, Session, Step, StepOutcome,
    StepTiming, UploadState, quote, too_many_shares,
};
use sealdrop_protocol::share::{CreateShareRequest, ShareView};
use sealdrop_protocol::sweep::Owner;
use sealdrop_protocol::wire::{
    CompleteRequest, FileRecord, MAX_COMPLETE_BODY, MAX_JSON_BODY, PartUrlsRequest,
    PartUrlsResponse, PutPartResponse, parse_json,
};
use serde::de::DeserializeOwned;
use worker::js_sys::{Date as JsDate, Number};
use worker::{
    DurableObject, Env, Request, Response, ScheduledTime, State, console_error, durable_object,
};

use super::calls::{
    BeginPart, CreateSession, Created, FailPart, Fenced, FinishPart, Grant, Op, OwnerQuery,
    ROOM_HEADER, RoomTie, ShareChange,
};
use super::store::{FileMeta, SessionStore};
use super::{room_tie, thumbnail};
use crate::account::AccountStub;
use crate::caller::USER_HEADER;
use crate::config::Config;
use crate::http::{self, OrApiError as _, empty, header, json, respond};
use crate::now_ms;
use crate::room::calls::RoomCall;
use crate::room::client::RoomStub;
use crate::share::{FileInfo, ShareStub};
use crate::storage::{Aborted, CompleteFailure, Provider as _, Storage, UploadFailure};

/// One upload session (and, once completed, one file record).
#[durable_object(alarm)]
pub struct UploadSession {
    state: State,
    env: Env,
    /// The session and file meta as last read from or written to SQLite; `None` until
    /// loaded, and dropped whenever a write fails, so memory never runs ahead of storage.
    cache: RefCell<Option<(Session, FileMeta)>>,
    /// A create is running here (creating the multipart upload): a second waits.
    creating: Cell<bool>,
    /// The alarm time last set by this instance (`Some(None)`: deleted), to skip
    /// setting it again.
    alarm_at: Cell<Option<Option<u64>>>,
    /// How the session paces step retries (`Config::step_timing`), set by every call
    /// and the alarm before the session is loaded.
    timing: Cell<StepTiming>,
}

/// What a change writes through.
#[derive(Clone, Copy)]
enum Save {
    /// One part's rows.
    Part(u32),
    /// The session row (and the share list).
    State,
    /// The share list.
    Shares,
}

impl DurableObject for UploadSession {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            cache: RefCell::new(None),
            creating: Cell::new(false),
            alarm_at: Cell::new(None),
            timing: Cell::new(StepTiming::default()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        respond(self.handle(req).await)
    }

    /// The session's expiry, or a step left due. Errors are logged; the session sets
    /// its own next alarm, so a failed step is retried without the runtime's help.
    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.on_alarm().await {
            console_error!("upload session alarm: {} ({})", e.code, e.message);
        }
        Response::empty()
    }
}

impl UploadSession {
    // -- calls -------------------------------------------------------------------

    /// Routes one internal call.
    async fn handle(&self, mut req: Request) -> Result<Response, ApiError> {
        let Some(op) = Op::parse(&req.method(), &req.path()) else {
            return Err(ApiError::not_found());
        };
        let config = Config::from_env(&self.env)?;
        self.timing.set(config.step_timing);
        let storage = Storage::from_config(&self.env, &config)?;
        match op {
            Op::Create => self.create(&storage, &config, body(&mut req).await?).await,
            Op::BeginPart(n) => self.begin_part(n, body(&mut req).await?, &config),
            Op::RenewPart(n) => self.renew_part(n, body(&mut req).await?, &config),
            Op::FinishPart(n) => self.finish_part(n, body(&mut req).await?),
            Op::FailPart(n) => self.fail_part(&storage, n, body(&mut req).await?).await,
            Op::Owner => self.owner(body(&mut req).await?),
            Op::Room => match room_tie::load(&self.state.storage().sql())? {
                Some(tie) if self.with(|_, _| ()).is_ok() => json(200, &tie),
                _ => Err(ApiError::file_not_found()),
            },
            Op::RoomFile => {
                // The worker has checked the caller is a member of a room holding the
                // file; only a room's file answers here.
                self.settle(&storage).await;
                match room_tie::load(&self.state.storage().sql())? {
                    Some(_) => self.file_record(&storage),
                    None => Err(ApiError::file_not_found()),
                }
            }
            Op::RoomDelete => self.room_delete(&storage).await,
            Op::RoomThumbnail => self.room_thumbnail(),
            _ => {
                // Owner calls: the token first, so nothing else leaks to a stranger.
                // The worker sets the user header itself (a verified JWT's `sub`).
                let auth = header(&req, "authorization");
                let user = header(&req, USER_HEADER);
                self.with(|s, _| s.check_owner(auth.as_deref(), user.as_deref()))??;
                self.settle(&storage).await;
                match op {
                    Op::Status => self.status(&storage).await,
                    Op::PartUrls => {
                        let bytes = req.bytes().await.or_internal("reading part-urls")?;
                        self.part_urls(&storage, parse_json(&bytes, MAX_JSON_BODY)?)
                    }
                    Op::Complete => {
                        let bytes = req.bytes().await.or_internal("reading complete")?;
                        let answer = self
                            .complete(&storage, parse_json(&bytes, MAX_COMPLETE_BODY)?)
                            .await?;
                        self.mark_room(answer)
                    }
                    Op::File => self.file_record(&storage),
                    Op::DeleteFile => {
                        // The room tie goes with the file's records: read it first.
                        let tie = room_tie::load(&self.state.storage().sql())?;
                        let answer = self.delete(&storage).await?;
                        mark_room(answer, tie.as_ref())
                    }
                    Op::Shares => self.list_shares(&config).await,
                    Op::PutThumbnail => {
                        let bytes = req.bytes().await.or_internal("reading a thumbnail")?;
                        self.put_thumbnail(&bytes)
                    }
                    Op::CreateShare => {
                        let bytes = req.bytes().await.or_internal("reading a share")?;
                        self.create_share(&config, parse_json(&bytes, MAX_JSON_BODY)?)
                            .await
                    }
                    Op::UpdateShare | Op::RevokeShare => {
                        self.change_share(&config, body(&mut req).await?).await
                    }
                    _ => {
                        let answer = self.abort(&storage).await?;
                        self.mark_room(answer)
                    }
                }
            }
        }
    }

    /// Marks the answer of a `complete` or `abort` of an upload tied to a room with the
    /// room's id ([`ROOM_HEADER`]), for the worker to tell the room.
    fn mark_room(&self, answer: Response) -> Result<Response, ApiError> {
        let tie = room_tie::load(&self.state.storage().sql())?;
        mark_room(answer, tie.as_ref())
    }

    /// Its room removed the completed file: the owner's deletion (object, shares,
    /// quota, every record), so a room file leaves no more behind than a deleted one.
    /// `204` also when nothing is left.
    async fn room_delete(&self, storage: &Storage) -> Result<Response, ApiError> {
        match self.delete(storage).await {
            Err(e) if e.code == ApiErrorCode::Gone => empty(204),
            answer => answer,
        }
    }

    /// Creates the session: the multipart upload, the expiry alarm, the rows. A
    /// repeated idempotent create with the same request answers the same again; with
    /// another request `409 idempotency_conflict`.
    async fn create(
        &self,
        storage: &Storage,
        config: &Config,
        create: CreateSession,
    ) -> Result<Response, ApiError> {
        match self.with(|s, f| (s.plan().clone(), s.expires_at(), f.digest)) {
            Ok((plan, expires_at, digest)) => {
                return if create.idempotent && digest == create.digest {
                    json(201, &Created { plan, expires_at })
                } else if create.idempotent {
                    Err(ApiError::idempotency_conflict())
                } else {
                    // 128 random bits collided: never overwrite.
                    Err(http::internal("creating a session", "the file id is taken"))
                };
            }
            Err(e) if e.code == ApiErrorCode::Gone => {}
            Err(e) => return Err(e),
        }
        if self.creating.replace(true) {
            return Err(ApiError::busy(
                "the upload is being created; retry shortly",
                1,
            ));
        }
        let created = self.create_new(storage, config, create).await;
        self.creating.set(false);
        created
    }

    /// The part of [`Self::create`] that makes things: the account's reservation
    /// first (`403 quota_exceeded`, `429 rate_limited`), then the multipart upload, the
    /// alarm and the rows, then the reservation's confirmation. If the alarm or the
    /// rows fail, the multipart upload is aborted and the reservation released (best
    /// effort) before answering the error. An instance that dies between storage's
    /// create and the rows leaves an upload no session knows, which R2 drops 7 days
    /// after creation, and a pending reservation, which lapses.
    async fn create_new(
        &self,
        storage: &Storage,
        config: &Config,
        create: CreateSession,
    ) -> Result<Response, ApiError> {
        let file_key = create.file_id.clone();
        let account = AccountStub::get(&self.env, &create.account, &config.signer)?;
        account
            .reserve(&file_key, create.plan.ciphertext_size())
            .await?;
        let upload_id = match storage.create_upload(&create.file_id).await {
            Ok(id) => id,
            Err(e) => {
                let _ = account.release(&file_key).await;
                return Err(e.into());
            }
        };
        let session = Session::new(
            create.file_id,
            create.plan,
            create.owner_token_hash,
            now_ms(),
            config.upload_ttl_ms,
        )
        .with_terms(FileTerms {
            owner: create.owner,
            account: create.account,
            lifetime: create.lifetime_ms.map_or(Lifetime::Never, Lifetime::Ms),
        })
        .with_timing(config.step_timing);
        let file = FileMeta {
            header: create.header,
            metadata: create.metadata,
            upload_id,
            digest: create.digest,
        };
        let stored = match self.set_alarm(session.expires_at()).await {
            Ok(()) => self
                .store()
                .create(&session, &file)
                .and_then(|()| match &create.room {
                    Some(tie) => room_tie::save(&self.state.storage().sql(), tie),
                    None => Ok(()),
                }),
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            self.delete_alarm().await;
            if storage
                .abort(session.file_id(), &file.upload_id)
                .await
                .is_err()
            {
                console_error!("abandoning a failed create: the abort failed too");
            }
            let _ = account.release(&file_key).await;
            return Err(e);
        }
        if let Err(e) = account.confirm(&file_key).await {
            // The reservation lapses: the file is not counted, which errs toward the
            // user rather than locking them out.
            console_error!("confirming a reservation: {}", e.code);
        }
        let created = Created {
            plan: session.plan().clone(),
            expires_at: session.expires_at(),
        };
        self.cache.replace(Some((session, file)));
        json(201, &created)
    }

    /// `GET /api/uploads/{id}`: the state, and (while open) the parts storage holds
    /// (`410 gone` while the file is being deleted). Storage no longer having the
    /// upload is news for the session: a completion may have landed late (the object
    /// is checked), or storage aborted it.
    async fn status(&self, storage: &Storage) -> Result<Response, ApiError> {
        if self.with(|s, _| s.state())? == UploadState::Deleting {
            return Err(ApiError::gone());
        }
        let needs = self.with(|s, _| s.status_needs_listing())?;
        let listed = match needs {
            true => {
                let (file_id, upload_id, recorded) = self.with(|s, f| {
                    (
                        s.file_id().clone(),
                        f.upload_id.clone(),
                        s.recorded_listing(),
                    )
                })?;
                match storage.list_parts(&file_id, &upload_id, recorded).await {
                    Ok(listed) => listed,
                    Err(UploadFailure::Failed) => return Err(ApiError::storage()),
                    Err(UploadFailure::Gone) => {
                        // The session's own state answers (completed, or aborted).
                        let _ = self.upload_gone(storage).await;
                        Vec::new()
                    }
                }
            }
            false => Vec::new(),
        };
        json(200, &self.with(|s, _| s.status(&listed))?)
    }

    /// Storage said it has no such upload: the session learns it and carries out what
    /// that makes due (checking for a completion that landed late, or the abort). What
    /// it says is in its state; errors are logged.
    async fn upload_gone(&self, storage: &Storage) -> Result<(), ApiError> {
        let learned = self.change(Save::State, |s, _| s.upload_gone());
        let driven = self.drive(storage).await;
        learned.and(driven)
    }

    /// Signs the requested part URLs.
    fn part_urls(&self, storage: &Storage, request: PartUrlsRequest) -> Result<Response, ApiError> {
        let now = now_ms();
        let urls = self.with(|s, f| {
            let parts = s.part_urls(&request, now)?;
            Ok::<_, ApiError>(
                parts
                    .into_iter()
                    .map(|(n, size)| storage.part_url(s.file_id(), &f.upload_id, n, size, now))
                    .collect(),
            )
        })??;
        json(200, &PartUrlsResponse { urls })
    }

    /// Completes the upload (or answers the record again for the same parts).
    async fn complete(
        &self,
        storage: &Storage,
        request: CompleteRequest,
    ) -> Result<Response, ApiError> {
        let now = now_ms();
        let start = self.change(Save::State, |s, _| s.request_complete(&request.parts, now))?;
        if start == CompleteStart::Started {
            self.drive(storage).await?;
        }
        self.file_record(storage)
    }

    /// Aborts the upload: `204` once storage confirmed it.
    async fn abort(&self, storage: &Storage) -> Result<Response, ApiError> {
        self.change(Save::State, |s, _| s.request_abort())?;
        self.drive(storage).await?;
        // Another request carries the abort out, or it waits for its backoff: it is
        // committed, retry for 204.
        self.with(|s, _| s.abort_answer(now_ms()))??;
        empty(204)
    }

    /// The record of a completed, live file with a fresh download URL; `404
    /// file_not_found` before completion, `410 gone` once expired or being deleted.
    fn file_record(&self, storage: &Storage) -> Result<Response, ApiError> {
        let now = now_ms();
        let record = self.with(|s, f| {
            s.ensure_file(now)?;
            let id = s.file_id();
            Ok::<_, ApiError>(FileRecord::new(
                id.clone(),
                s.plan(),
                &f.header,
                &f.metadata,
                (s.created_at(), s.file_expires_at()),
                storage.download_url(id, now),
            ))
        })??;
        json(200, &record)
    }

    /// `PUT /api/uploads/{id}/thumbnail`: keeps the sealed thumbnail (FORMAT.md §10), while
    /// the upload is open or the file lives.
    fn put_thumbnail(&self, sealed: &[u8]) -> Result<Response, ApiError> {
        if !(MIN_SEALED_THUMBNAIL..=MAX_SEALED_THUMBNAIL).contains(&sealed.len()) {
            return Err(ApiError::new(
                ApiErrorCode::InvalidThumbnail,
                "a sealed thumbnail is 29 to 65,564 bytes",
            ));
        }
        self.with(|_, _| ())?;
        thumbnail::save(&self.state.storage().sql(), sealed)?;
        empty(204)
    }

    /// A room file's header followed by its sealed thumbnail, for a member (the worker
    /// checked the room lists the file): what opening it needs besides the file key.
    fn room_thumbnail(&self) -> Result<Response, ApiError> {
        let header = self.with(|s, f| {
            s.ensure_file(now_ms())?;
            Ok::<_, ApiError>(f.header.clone())
        })??;
        let sealed = thumbnail::load(&self.state.storage().sql())?.ok_or_else(|| {
            ApiError::new(ApiErrorCode::ThumbnailNotFound, "the file has no thumbnail")
        })?;
        let body = [header.as_slice(), &sealed].concat();
        let response = Response::from_bytes(body).or_internal("answering a thumbnail")?;
        response
            .headers()
            .set("content-type", "application/octet-stream")
            .or_internal("answering a thumbnail")?;
        Ok(response)
    }

    /// `DELETE /api/files/{id}`: the file is deleted at once (committed), then its steps
    /// run; `204` once nothing is left, else the failing step's error (the alarm
    /// retries it).
    async fn delete(&self, storage: &Storage) -> Result<Response, ApiError> {
        self.change(Save::State, |s, _| s.request_delete())?;
        self.drive(storage).await?;
        match self.cache.borrow().is_none() && !self.store().exists()? {
            true => empty(204),
            false => Err(ApiError::busy(
                "the file is being deleted; retry shortly",
                2,
            )),
        }
    }

    // -- shares ------------------------------------------------------------------

    /// `POST /api/files/{id}/shares`: reserves the new share's slot here first (so that
    /// the file's deletion always knows every share object that may exist), then makes
    /// its object, then confirms the slot (`protocol::session::ShareSlots`). If the file
    /// started being deleted meanwhile (its purge of this share may have run before the
    /// create), the new share is purged too and the owner told `410 gone`.
    ///
    /// With an idempotency key the token is derived from the key and this file's id, so
    /// a retry reaches the same share object, which answers it as the same share (or
    /// `409 idempotency_conflict` for another request). A failed create then leaves its
    /// slot pending: its retry finishes it, the list leaves out an object that holds
    /// nothing, deletion purges it, and once the file is at the cap a create checks it
    /// and frees it if its object holds nothing. Purging it here could destroy the share
    /// a racing twin of the request has just made. Without a key, a failed create's
    /// object may still have been made (a lost answer): the slot is dropped only once
    /// the object is purged.
    async fn create_share(
        &self,
        config: &Config,
        request: CreateShareRequest,
    ) -> Result<Response, ApiError> {
        let now = now_ms();
        let info = self.with(|s, f| {
            s.ensure_file(now)?;
            Ok::<_, ApiError>(FileInfo::new(s, f, s.file_expires_at()))
        })??;
        let random = match &request.idempotency_key {
            Some(key) => key.derive_share(config.signer.server_mac(), &info.file_id),
            None => {
                let mut random = [0u8; 16];
                getrandom::fill(&mut random).or_internal("drawing a share token")?;
                random
            }
        };
        let token = config.signer.new_id(random);
        let id = token.random_text();
        let settings = request.settings(&random, info.file_expires_at, now)?;
        let digest = request
            .idempotency_key
            .as_ref()
            .map(|_| request.digest(&settings));
        self.reserve_share(&id).await?;
        let stub = ShareStub::get(&self.env, &token)?;
        match stub.create(info, settings, digest, &token).await {
            Ok(view) => match self.change(Save::Shares, |s, _| s.share_made(&id, now_ms())) {
                Ok(()) => json(201, &view),
                Err(gone) if gone.code == ApiErrorCode::Gone => {
                    stub.purge().await?;
                    Err(gone)
                }
                // The slot stays pending; a check finds the share made.
                Err(e) => Err(e),
            },
            Err(e) if digest.is_some() => Err(e),
            Err(e) => {
                if stub.purge().await.is_ok() {
                    self.change(Save::Shares, |s, _| {
                        s.drop_share(&id);
                        Ok(())
                    })?;
                }
                Err(e)
            }
        }
    }

    /// Reserves share `id`'s slot. At the cap, the slots pending too long are checked
    /// one by one (does the object hold a share?) until one frees or none is left to
    /// check (`409 too_many_shares`).
    async fn reserve_share(&self, id: &str) -> Result<(), ApiError> {
        for _ in 0..=MAX_SHARES_PER_FILE {
            let reserved = self.change(Save::Shares, |s, _| s.add_share(id, now_ms()))?;
            let Reserve::Check { id: old, since } = reserved else {
                return Ok(());
            };
            let made = ShareStub::by_id(&self.env, &old)?.made().await?;
            self.change(Save::Shares, |s, _| {
                s.share_checked(&old, since, made);
                Ok(())
            })?;
        }
        Err(too_many_shares())
    }

    /// `GET /api/files/{id}/shares`: every share's owner view, oldest id first. A
    /// share whose object holds nothing (its creation died half-way) is left out.
    async fn list_shares(&self, config: &Config) -> Result<Response, ApiError> {
        let ids: Vec<String> = self.with(|s, _| {
            s.ensure_file(now_ms())?;
            Ok::<_, ApiError>(s.shares().ids().iter().cloned().collect())
        })??;
        let mut shares: Vec<ShareView> = Vec::new();
        for id in ids {
            let Some(random) = decode_random_id(&id) else {
                continue;
            };
            let token = config.signer.new_id(random);
            match ShareStub::get(&self.env, &token)?.owner_view(&token).await {
                Ok(view) => shares.push(view),
                Err(e) if e.code == ApiErrorCode::Gone => {}
                Err(e) => return Err(e),
            }
        }
        json(200, &serde_json::json!({ "shares": shares }))
    }

    /// `PATCH` / `DELETE /api/files/{id}/shares/{token}`: a share of this file.
    async fn change_share(
        &self,
        config: &Config,
        change: ShareChange,
    ) -> Result<Response, ApiError> {
        let now = now_ms();
        let id = change.token.random_text();
        let file_expires_at = self.with(|s, _| {
            s.ensure_file(now)?;
            match s.shares().ids().contains(&id) && config.signer.signs(&change.token) {
                true => Ok(s.file_expires_at()),
                false => Err(ApiError::share_not_found()),
            }
        })??;
        let stub = ShareStub::get(&self.env, &change.token)?;
        let view = match change.patch {
            Some(patch) => stub.update(&change.token, patch, file_expires_at).await?,
            None => stub.revoke(&change.token).await?,
        };
        json(200, &view)
    }

    /// The worker's `/blob` handler begins a part write (its URL already verified).
    fn begin_part(
        &self,
        part: u32,
        call: BeginPart,
        config: &Config,
    ) -> Result<Response, ApiError> {
        let now = now_ms();
        let grant = self.change(Save::Part(part), |s, f| {
            if f.upload_id != call.upload_id {
                return Err(ApiError::upload_not_open(
                    "this part URL belongs to another upload",
                ));
            }
            s.begin_part(part, call.size, now, config.part_lease_ms)
        })?;
        json(200, &Grant::from(grant))
    }

    /// The writer of a part renews its lease.
    fn renew_part(&self, part: u32, call: Fenced, config: &Config) -> Result<Response, ApiError> {
        let now = now_ms();
        let grant = self.change(Save::Part(part), |s, _| {
            s.renew_part(part, call.fence, now, config.part_lease_ms)
        })?;
        json(200, &Grant::from(grant))
    }

    /// The writer of a part reports that storage accepted it: the client's answer.
    fn finish_part(&self, part: u32, call: FinishPart) -> Result<Response, ApiError> {
        let now = now_ms();
        let etag = quote(&call.etag);
        self.change(Save::Part(part), |s, _| {
            s.finish_part(part, call.fence, call.etag, call.size, now)
        })?;
        json(200, &PutPartResponse { etag })
    }

    /// The writer of a part reports that its write failed; if storage said it has no
    /// such upload, the session learns that too and answers what it makes of it.
    async fn fail_part(
        &self,
        storage: &Storage,
        part: u32,
        call: FailPart,
    ) -> Result<Response, ApiError> {
        let now = now_ms();
        self.change(Save::Part(part), |s, _| s.fail_part(part, call.fence, now))?;
        if call.gone {
            self.upload_gone(storage).await?;
            // A completion that landed late: the upload is completed.
            if self.with(|s, _| s.state())? != UploadState::Open {
                return Err(ApiError::upload_not_open("the upload is no longer open"));
            }
        }
        empty(204)
    }

    /// The sweep asks whether this session may still finish an upload storage lists
    /// under its key; `404 upload_not_found` if there is no session here.
    fn owner(&self, call: OwnerQuery) -> Result<Response, ApiError> {
        let now = now_ms();
        let owner = self
            .with(|s, f| Owner::of(s.state(), s.is_expired(now), f.upload_id == call.upload_id))?;
        json(200, &owner)
    }

    // -- steps -------------------------------------------------------------------

    /// Carries out a step left due (by an instance that died mid-step, or one that
    /// failed), if nobody here is on it. Its errors are not the calling request's.
    async fn settle(&self, storage: &Storage) {
        let now = now_ms();
        if let Ok(true) = self.with(|s, _| s.due_step().is_some() && !s.is_driving(now)) {
            let _ = self.drive(storage).await;
        }
    }

    /// Carries out the steps due, one after the other, until none is, then sets the
    /// alarm the session now wants. Answers the first step error (`503 upload_busy` if
    /// another request is carrying a step out).
    async fn drive(&self, storage: &Storage) -> Result<(), ApiError> {
        let result = self.drive_steps(storage).await;
        self.sync_alarm().await;
        result
    }

    async fn drive_steps(&self, storage: &Storage) -> Result<(), ApiError> {
        loop {
            let Some(step) = self.with(|s, _| s.take_step(now_ms()))?? else {
                return Ok(());
            };
            if step == Step::Wipe {
                self.tell_room_gone().await;
                // The last step: nothing is left to report to.
                let wiped = SessionStore::wipe(&self.state.storage()).await;
                self.cache.replace(None);
                self.alarm_at.set(None);
                return wiped;
            }
            // The backstop first: if this instance dies while storage works, the alarm
            // finds the step due and carries it out.
            self.sync_alarm().await;
            let outcome = self.carry_out(storage, &step).await;
            let now = now_ms();
            self.change(Save::State, |s, _| s.on_step(outcome, now))?;
        }
    }

    /// A room file leaves its room before its records (the room tie among them) are
    /// wiped: this is how the room hears of an expiry, or of a deletion the alarm
    /// finished. Best effort: an owner's `DELETE` tells the room again on its way out,
    /// and the room answers `file_not_found` for a file it no longer lists (an aborted
    /// upload's, or one told twice).
    async fn tell_room_gone(&self) {
        let tie = match room_tie::load(&self.state.storage().sql()) {
            Ok(Some(tie)) => tie,
            Ok(None) => return,
            Err(e) => {
                console_error!("upload session: reading the room tie: {}", e.message);
                return;
            }
        };
        let Ok(file_id) = self.with(|s, _| s.file_id().clone()) else {
            return;
        };
        let told = match RoomStub::get(&self.env, &tie.room_id) {
            Ok(room) => room.file_event(RoomCall::Deleted, &file_id).await,
            Err(e) => Err(e),
        };
        match told {
            Ok(()) => {}
            Err(e) if e.code == ApiErrorCode::FileNotFound => {}
            Err(e) => console_error!(
                "upload session: telling room {} that {file_id} is gone: {}",
                tie.room_id,
                e.message
            ),
        }
    }

    /// Asks storage. Never fails: a storage failure is the step's outcome.
    async fn carry_out(&self, storage: &Storage, step: &Step) -> StepOutcome {
        let Ok((file_id, upload_id, recorded, account)) = self.with(|s, f| {
            (
                s.file_id().clone(),
                f.upload_id.clone(),
                s.recorded_listing(),
                s.terms().account.clone(),
            )
        }) else {
            return StepOutcome::Failed;
        };
        match step {
            Step::ListParts => match storage.list_parts(&file_id, &upload_id, recorded).await {
                Ok(listed) => StepOutcome::Listed(listed),
                Err(UploadFailure::Gone) => StepOutcome::Gone,
                Err(UploadFailure::Failed) => StepOutcome::Failed,
            },
            Step::Complete(parts) => match storage.complete(&file_id, &upload_id, parts).await {
                Ok(()) => StepOutcome::Completed,
                Err(CompleteFailure::Refused) => StepOutcome::Refused,
                Err(CompleteFailure::Gone) => StepOutcome::Gone,
                Err(CompleteFailure::Failed) => StepOutcome::Failed,
            },
            Step::CheckObject => storage
                .object_exists(&file_id)
                .await
                .map_or(StepOutcome::Failed, StepOutcome::Exists),
            Step::Abort => match storage.abort(&file_id, &upload_id).await {
                Ok(Aborted::Now) => StepOutcome::Aborted,
                Ok(Aborted::AlreadyGone) => StepOutcome::Gone,
                Err(_) => StepOutcome::Failed,
            },
            Step::DeleteObject => storage
                .delete_object(&file_id)
                .await
                .map_or(StepOutcome::Failed, |()| StepOutcome::Deleted),
            Step::PurgeShare(id) => self.purge_share(id).await,
            Step::ReleaseQuota => self.release(&file_id, &account).await,
            // Carried out by `drive_steps` itself.
            Step::Wipe => StepOutcome::Failed,
        }
    }

    /// Purges the share object named by `id` (a token's random part).
    async fn purge_share(&self, id: &str) -> StepOutcome {
        let purged = match ShareStub::by_id(&self.env, id) {
            Ok(stub) => stub.purge().await,
            Err(e) => Err(e),
        };
        match purged {
            Ok(()) => StepOutcome::Purged,
            Err(e) => {
                console_error!("purging a share: {}", e.code);
                StepOutcome::Failed
            }
        }
    }

    /// Gives the file's bytes back to its account (none to give without one).
    async fn release(&self, file_id: &FileId, account: &str) -> StepOutcome {
        if account.is_empty() {
            return StepOutcome::Released;
        }
        let stub = Config::from_env(&self.env)
            .and_then(|config| AccountStub::get(&self.env, account, &config.signer));
        let released = match stub {
            Ok(stub) => stub.release(file_id).await,
            Err(e) => Err(e),
        };
        match released {
            Ok(()) => StepOutcome::Released,
            Err(e) => {
                console_error!("releasing a reservation: {}", e.code);
                StepOutcome::Failed
            }
        }
    }

    // -- the alarm ---------------------------------------------------------------

    /// Expires an open session past its expiry and carries out any step due.
    async fn on_alarm(&self) -> Result<(), ApiError> {
        let config = Config::from_env(&self.env)?;
        self.timing.set(config.step_timing);
        let storage = Storage::from_config(&self.env, &config)?;
        let now = now_ms();
        self.alarm_at.set(None); // the alarm that fired is gone
        match self.change(Save::State, |s, _| {
            s.on_alarm(now);
            Ok(())
        }) {
            Err(e) if e.code == ApiErrorCode::Gone => return Ok(()),
            other => other?,
        }
        // A step that fails stays due; the alarm the session asks for retries it.
        let _ = self.drive(&storage).await;
        Ok(())
    }

    /// Sets (or deletes) the alarm to what the session wants now; failures are logged
    /// (the next change tries again).
    async fn sync_alarm(&self) {
        let Ok(wanted) = self.with(|s, _| s.next_alarm(now_ms())) else {
            return;
        };
        if self.alarm_at.get() == Some(wanted) {
            return;
        }
        let result = match wanted {
            Some(at) => self.set_alarm(at).await,
            None => {
                self.delete_alarm().await;
                Ok(())
            }
        };
        if result.is_ok() {
            self.alarm_at.set(Some(wanted));
        }
    }

    async fn set_alarm(&self, at_ms: u64) -> Result<(), ApiError> {
        let at = JsDate::new(&Number::from(at_ms as f64));
        self.state
            .storage()
            .set_alarm(ScheduledTime::new(at))
            .await
            .or_internal("setting the alarm")
    }

    async fn delete_alarm(&self) {
        if let Err(e) = self.state.storage().delete_alarm().await {
            console_error!("deleting the alarm: {e}");
        }
    }

    // -- loading and saving ------------------------------------------------------

    fn store(&self) -> SessionStore {
        SessionStore::new(self.state.storage().sql())
    }

    /// Runs `f` on the session (loaded from SQLite if not cached); `410 gone` if this
    /// object holds none: the worker addresses only validly signed ids, so an empty
    /// object's file was deleted (or expired). `f` cannot await, so the cache is never
    /// borrowed across a suspension point.
    fn with<R>(&self, f: impl FnOnce(&mut Session, &FileMeta) -> R) -> Result<R, ApiError> {
        let mut cache = self.cache.borrow_mut();
        if cache.is_none() {
            let timing = self.timing.get();
            *cache = self
                .store()
                .load()?
                .map(|(session, file)| (session.with_timing(timing), file));
        }
        match cache.as_mut() {
            Some((session, file)) => Ok(f(session, file)),
            None => Err(ApiError::gone()),
        }
    }

    /// Runs a call `f` on the session and writes what it may have changed through
    /// before answering `f`'s answer. If the write fails, the cache is dropped (to be
    /// reloaded from what SQLite really holds) and the call fails.
    fn change<R>(
        &self,
        save: Save,
        f: impl FnOnce(&mut Session, &FileMeta) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let store = self.store();
        let (answer, saved) = self.with(|s, file| {
            let answer = f(s, file);
            let saved = match save {
                Save::Part(n) => store.save_part(s, n),
                Save::State => store.save_state(s, file),
                Save::Shares => store.save_shares(s),
            };
            (answer, saved)
        })?;
        if let Err(e) = saved {
            self.cache.replace(None);
            return Err(e);
        }
        answer
    }
}

/// A call's JSON body (from the worker itself: malformed means a bug, `500`).
async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let bytes = req.bytes().await.or_internal("reading a session call")?;
    serde_json::from_slice(&bytes).or_internal("reading a session call")
}

/// Marks `answer` with the room of `tie` ([`ROOM_HEADER`]), if the file has one.
fn mark_room(answer: Response, tie: Option<&RoomTie>) -> Result<Response, ApiError> {
    if let Some(tie) = tie {
        answer
            .headers()
            .set(ROOM_HEADER, &tie.room_id)
            .or_internal("marking a room file's answer")?;
    }
    Ok(answer)
}
