//! `uploader.upload(file)` and `uploader.resume(pending)`: seal a file in the browser
//! and send it, part by part, to the URLs the server hands out, under the person's
//! control (pause, resume, cancel), surviving failed requests, stalls, a reload and a
//! crash of the browser.
//!
//! In reading order: the options; the [`Job`] an `Upload` handle and its running
//! future share; the flow ([`Job::run`]: start, open the session, send the parts,
//! complete), each step retried or paused by [`Job::step`]; one part's attempt; and
//! cancelling (the `DELETE`).
//!
//! What happens when something fails:
//! - a request that fails retryably is retried with backoff (the protocol's
//!   [`Attempts`](sealdrop_protocol::backoff::Attempts)); when its attempts run out the
//!   upload is **paused** with that error (`upload.error`), never dropped, and
//!   `resume()` tries again with fresh attempts;
//! - an error no retry can fix (a `file_changed`, a session that is gone) **fails** the
//!   upload; nothing is deleted on the server, and a kept upload stays in `pending()`
//!   until it is discarded (or, when the session is gone, is forgotten);
//! - `cancel()` or the caller's `signal` aborts the requests in flight, deletes the
//!   session (`DELETE`) and forgets what the browser kept.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::FutureExt;
use futures_util::future::{Either, LocalBoxFuture, Shared, select, try_join};
use js_sys::{Function, Promise, Reflect};
use sealdrop_protocol::backoff::Backoff;
use sealdrop_protocol::concurrency::{CONNECTIONS_PER_HOST, ConcurrencyController};
use sealdrop_protocol::fingerprint::{FileFacts, PartFingerprint, PartFingerprints, Seal};
use sealdrop_protocol::format::{DEFAULT_RECORD_SIZE, FileKey, FileMetadata, Header, Layout};
use sealdrop_protocol::ids::{FileId, IdempotencyKey, OwnerToken, ShareToken};
use sealdrop_protocol::lifecycle::Stage;
use sealdrop_protocol::plan::PartPlan;
use sealdrop_protocol::scheduler::PartScheduler;
use sealdrop_protocol::session::UploadState;
use sealdrop_protocol::share::{CreateShareRequest, ShareView};
use sealdrop_protocol::wire::{
    CompleteRequest, CompletedPart, CreateUploadRequest, CreateUploadResponse, FileRecord,
    UploadRoom, UploadStatus, encode_base64,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, File};

use crate::cipher::{Backend, FileCipher};
use crate::control::Control;
use crate::error::ClientError;
use crate::http::Http;
use crate::link;
use crate::link_history;
use crate::offload::{DEFAULT_WORKERS, Pool};
use crate::part_urls::{PartUrls, UrlSource};
use crate::persist::{self, Saved, SavedSession, Store};
use crate::platform::{self, AbortWatch};
use crate::progress::Reporter;
use crate::room_upload::RoomTie;
use crate::seal::{Sealer, read_slice};
use crate::stall::DEFAULT_STALL_MS;
use crate::thumbnail;
use crate::transfer::{self, retrying, run_parts};
use crate::xhr;

/// How long a `DELETE` of a cancelled upload may take in all (ms).
const DISCARD_TIMEOUT_MS: u64 = 30_000;

/// The validated options of `new Uploader(options)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadConfig {
    /// The API's base URL, without a trailing slash.
    pub endpoint: String,
    /// The most parts in flight at once, 1..=16: the ceiling of the adaptive limit.
    pub concurrency: u32,
    /// Preferred part size in ciphertext bytes, for the server's planner; `None`: chosen
    /// from this browser's link history.
    pub part_size: Option<u64>,
    /// Plaintext bytes per record.
    pub record_size: u32,
    /// Attempts per part and per API call, the first included.
    pub max_attempts: u32,
    /// A request without progress for this long is aborted and retried (ms).
    pub stall_ms: u64,
    /// Whether uploads are kept in IndexedDB, to resume after a reload or a crash.
    pub persist: bool,
    /// Cipher workers that read and seal the parts (0: the page does).
    pub workers: u32,
    /// `concurrency` in flight throughout instead of adapting up to it: set only by the
    /// bench-only build's `benchFixedConcurrency` (src/bench.rs).
    pub fixed_concurrency: bool,
    /// Records sent unsealed: the bench-only build's `benchPlain` (src/bench.rs).
    #[cfg(feature = "bench")]
    pub plain: bool,
}

impl UploadConfig {
    /// Defaults: up to 6 parts at once (Chromium's connections per host), 1 MiB
    /// records, a part size from the link history, 6 attempts, 30 s stall timeout, kept
    /// in IndexedDB, two cipher workers.
    pub(crate) fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            concurrency: CONNECTIONS_PER_HOST,
            part_size: None,
            record_size: DEFAULT_RECORD_SIZE,
            max_attempts: Backoff::default().max_attempts,
            stall_ms: DEFAULT_STALL_MS,
            persist: true,
            workers: DEFAULT_WORKERS,
            fixed_concurrency: false,
            #[cfg(feature = "bench")]
            plain: false,
        }
    }

    pub(crate) fn backoff(&self) -> Backoff {
        Backoff {
            max_attempts: self.max_attempts,
            ..Backoff::default()
        }
    }

    pub(crate) fn http(&self) -> Http {
        Http {
            stall_ms: self.stall_ms,
        }
    }
}

/// What to upload.
pub(crate) enum Source {
    /// A new upload of `file`, sealed under `name` and `mime`; `handle` is the
    /// `FileSystemFileHandle` it came from, kept for a resume (or `undefined`).
    Fresh {
        file: Blob,
        name: String,
        mime: String,
        handle: JsValue,
    },
    /// An unfinished upload this browser kept, with the file picked again (or `None`:
    /// read it through the saved handle).
    Saved { id: String, file: Option<Blob> },
}

/// One call of `upload` or `resume`, validated.
pub(crate) struct UploadRequest {
    pub source: Source,
    pub on_progress: Option<Function>,
    pub on_state_change: Option<Function>,
    pub signal: Option<AbortSignal>,
    /// The room the upload goes into (`options.room`), if any.
    pub room: Option<Rc<RoomTie>>,
    /// A thumbnail image to seal and store beside the file (`options.thumbnail`).
    pub thumbnail: Option<Blob>,
}

/// What an upload resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uploaded {
    pub file_id: String,
    /// The owner token: the page's proof of ownership for share and delete calls.
    pub owner_token: String,
    pub link: String,
    pub size: u64,
}

// ---------------------------------------------------------------------------------
// The job
// ---------------------------------------------------------------------------------

/// One upload: shared by its `Upload` handle (pause, resume, cancel, state) and the
/// future that runs it. Each step's result is kept, so a step that is stopped and run
/// again (after a pause) picks up where the upload is.
pub(crate) struct Job {
    pub(crate) control: Control,
    config: UploadConfig,
    source: RefCell<Option<Source>>,
    on_progress: Option<Function>,
    room: Option<Rc<RoomTie>>,
    /// The thumbnail still to send (sent once, when the session is open).
    thumbnail: RefCell<Option<Blob>>,
    started: OnceCell<Rc<Started>>,
    session: OnceCell<Rc<Session>>,
    scheduler: OnceCell<RefCell<PartScheduler>>,
    /// The in-flight limit, kept across pauses (a run after one measures afresh).
    pace: OnceCell<RefCell<ConcurrencyController>>,
    reporter: OnceCell<RefCell<Reporter>>,
    /// The record in IndexedDB, while the upload is kept there.
    kept: RefCell<Option<Kept>>,
    /// A create was sent (its answer may be lost): a cancel asks again to learn the
    /// session it made, and deletes it.
    create_sent: Cell<bool>,
    /// The `DELETE` and forgetting of a cancelled upload, run once.
    discarded: RefCell<Option<Discard>>,
}

/// Deleting a cancelled upload, awaited by whoever asks.
type Discard = Shared<LocalBoxFuture<'static, Result<(), ClientError>>>;

/// The upload's record in IndexedDB, as last written.
struct Kept {
    store: Store,
    saved: Saved,
}

/// What starting an upload established: the file, its key, header and sealed metadata.
struct Started {
    file: Blob,
    size: u64,
    key: FileKey,
    header: Header,
    /// The file's one cipher: its metadata and every record of every part.
    cipher: Rc<FileCipher>,
    metadata: Vec<u8>,
    layout: Layout,
    /// Where the session lives (the uploader's endpoint, or the saved one on resume).
    endpoint: String,
    /// Sent with the create: a create retried (its answer lost) reaches the same session.
    idempotency_key: IdempotencyKey,
    /// The preferred part size the create asks for (a retried create asks the same).
    part_size: Option<u64>,
    /// Every part's first seal (persisted first when the upload is kept).
    fingerprints: RefCell<PartFingerprints>,
    /// The sealed `room` fields of the create, for an upload into a room.
    room: Option<UploadRoom>,
}

impl Started {
    /// The create for this upload: the same body, key included, every time it is sent.
    fn create_request(&self) -> CreateUploadRequest {
        CreateUploadRequest {
            plaintext_size: self.size,
            header: encode_base64(&self.header.encode()),
            metadata: encode_base64(&self.metadata),
            part_size: self.part_size,
            idempotency_key: Some(self.idempotency_key.clone()),
            room: self.room.clone(),
            // The deployment's default lifetime.
            expires_in: None,
        }
    }
}

/// The server's session, once open.
struct Session {
    file_id: FileId,
    token: OwnerToken,
    plan: PartPlan,
    /// Parts storage already holds (a resumed upload), with their ETags.
    confirmed: Vec<(u32, String)>,
    urls: PartUrls,
    sealer: Sealer,
}

/// What opening the session found.
enum Opened {
    Open(Rc<Session>),
    /// The upload was completed before (its answer was lost to a reload or a crash).
    Completed(Box<FileRecord>, FileId, OwnerToken),
}

impl Job {
    pub(crate) fn new(config: UploadConfig, request: UploadRequest) -> Self {
        Self {
            control: Control::new(request.on_state_change),
            config,
            source: RefCell::new(Some(request.source)),
            on_progress: request.on_progress,
            room: request.room,
            thumbnail: RefCell::new(request.thumbnail),
            started: OnceCell::new(),
            session: OnceCell::new(),
            scheduler: OnceCell::new(),
            pace: OnceCell::new(),
            reporter: OnceCell::new(),
            kept: RefCell::new(None),
            create_sent: Cell::new(false),
            discarded: RefCell::new(None),
        }
    }

    /// The backend the file's records are sealed on, once the upload has started.
    pub(crate) fn cipher_backend(&self) -> Option<Backend> {
        self.started.get().map(|s| s.cipher.backend())
    }

    /// The session's file id, once the server has created it.
    pub(crate) fn file_id(&self) -> Option<String> {
        self.session.get().map(|s| s.file_id.to_string())
    }

    /// Whether the upload is kept in IndexedDB (so it survives a reload).
    pub(crate) fn is_kept(&self) -> bool {
        self.kept.borrow().is_some()
    }

    /// The local id of a kept upload.
    pub(crate) fn kept_id(&self) -> Option<String> {
        self.kept.borrow().as_ref().map(|k| k.saved.id.clone())
    }

    /// Runs the upload to its end, under `signal`. On `cancelled`, deletes the session
    /// and forgets what the browser kept (see [`Job::discard`]).
    pub(crate) async fn drive(
        self: Rc<Self>,
        signal: Option<AbortSignal>,
    ) -> Result<Uploaded, ClientError> {
        let watch = AbortWatch::new(signal);
        let outcome = if watch.is_aborted() {
            Err(ClientError::Cancelled)
        } else {
            match select(pin!(self.run()), watch.aborted()).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(_) => Err(ClientError::Cancelled),
            }
        };
        match outcome {
            Ok(done) => Ok(done),
            Err(ClientError::Cancelled) => {
                self.control.cancel();
                if let Err(e) = self.discard().await {
                    platform::warn(
                        "sealdrop: the cancelled upload could not be deleted",
                        &JsValue::from_str(&e.to_string()),
                    );
                }
                Err(ClientError::Cancelled)
            }
            Err(error) => {
                if session_gone(&error) {
                    // Nothing left to resume: forget it here too.
                    self.forget().await;
                }
                self.control.fail(error.clone());
                Err(error)
            }
        }
    }

    /// Deletes the session on the server (if one was opened) and forgets what the
    /// browser kept; once, however often it is asked (by the running upload on cancel,
    /// by `cancel()` on an upload that already failed).
    pub(crate) fn discard(
        self: &Rc<Self>,
    ) -> Shared<LocalBoxFuture<'static, Result<(), ClientError>>> {
        let mut slot = self.discarded.borrow_mut();
        if let Some(running) = &*slot {
            return running.clone();
        }
        let job = self.clone();
        let running = async move {
            let kept = job
                .kept
                .borrow()
                .as_ref()
                .map(|k| (k.store.clone(), k.saved.clone()));
            let known = match (job.session.get(), job.started.get(), &kept) {
                (Some(s), _, _) => Known::Session(s.file_id.clone(), s.token.clone()),
                (None, _, Some((_, saved))) => Known::of_saved(saved),
                (None, Some(started), None) if job.create_sent.get() => Known::Unanswered(
                    started.create_request(),
                    job.room.as_ref().and_then(|r| r.last_bearer()),
                ),
                (None, _, None) => Known::Nothing,
            };
            let endpoint = match (job.started.get(), &kept) {
                (Some(s), _) => s.endpoint.clone(),
                (None, Some((_, saved))) => saved.endpoint.clone(),
                (None, None) => job.config.endpoint.clone(),
            };
            discard(&job.config, &endpoint, known, kept.map(|(store, _)| store)).await
        }
        .boxed_local()
        .shared();
        *slot = Some(running.clone());
        running
    }

    // -----------------------------------------------------------------------------
    // The flow
    // -----------------------------------------------------------------------------

    async fn run(&self) -> Result<Uploaded, ClientError> {
        // Starting is not stopped half-way by a pause (it writes the record that a
        // reload finds); a pause takes effect at the next step.
        let started = self.start().await?;
        let opened = self
            .step(false, || self.open_session(&started), || ())
            .await?;
        let (record, file_id, token) = match opened {
            Opened::Completed(record, file_id, token) => (*record, file_id, token),
            Opened::Open(session) => {
                self.send_thumbnail(&started, &session).await;
                self.control.advance(Stage::Uploading);
                let mut etags = self
                    .step(
                        true,
                        || self.send_parts(&started, &session),
                        || self.stop_parts(),
                    )
                    .await?;
                self.control.advance(Stage::Completing);
                let mut redone = 0;
                let record = loop {
                    match self
                        .step(true, || self.complete(&started, &session, &etags), || ())
                        .await
                    {
                        // Storage lacks a part as it was sent: send those again (the
                        // fingerprints make sure they are the same bytes).
                        Err(e) if lacks_parts(&e) && redone < MAX_REDO => {
                            redone += 1;
                            self.step(
                                false,
                                || self.redo_lost_parts(&started, &session, &etags),
                                || (),
                            )
                            .await?;
                            etags = self
                                .step(
                                    true,
                                    || self.send_parts(&started, &session),
                                    || self.stop_parts(),
                                )
                                .await?;
                        }
                        outcome => break outcome?,
                    }
                };
                (record, session.file_id.clone(), session.token.clone())
            }
        };
        if record.file_id != file_id || record.plaintext_size != started.size {
            return Err(ClientError::InvalidResponse(
                "complete answered another file".into(),
            ));
        }
        // The link names a share, the only way others reach a file: a default one (no
        // password, no limit, the file's lifetime), made before the kept record is
        // forgotten so a resume after a crash here makes it. A retry after a lost
        // answer may make a second share; only the one answered is linked.
        let share = self
            .step(
                false,
                || self.default_share(&started, &file_id, &token),
                || (),
            )
            .await?;
        self.forget().await;
        if let Some(reporter) = self.reporter.get() {
            reporter.borrow_mut().finish(platform::now_ms());
        }
        self.control.advance(Stage::Completing);
        self.control.finish();
        Ok(Uploaded {
            link: link::build(&started.endpoint, &share, &started.key),
            file_id: file_id.to_string(),
            owner_token: token.as_str().to_owned(),
            size: started.size,
        })
    }

    /// Runs one step until it succeeds. While the upload is paused it waits; a pause
    /// (when `pause_stops`) or a cancel drops the step, aborting its requests, and
    /// `stopped` tells the scheduler. A step that fails with a resumable error (its
    /// attempts ran out) pauses the upload with that error and runs again on resume;
    /// any other error ends the upload.
    async fn step<T, Fut>(
        &self,
        pause_stops: bool,
        mut step: impl FnMut() -> Fut,
        mut stopped: impl FnMut(),
    ) -> Result<T, ClientError>
    where
        Fut: Future<Output = Result<T, ClientError>>,
    {
        loop {
            self.control.until_running().await?;
            let interrupted = if pause_stops {
                Either::Left(self.control.interrupted())
            } else {
                Either::Right(self.control.cancelled())
            };
            let outcome = match select(pin!(step()), pin!(interrupted)).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(((), _)) => {
                    stopped();
                    continue;
                }
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(error) if error.is_resumable() => {
                    stopped();
                    self.control.pause_on_error(error);
                }
                Err(error) => {
                    stopped();
                    return Err(error);
                }
            }
        }
    }

    /// Establishes the file, its key, header and sealed metadata: fresh ones for a new
    /// upload (kept in IndexedDB first, when it persists), the saved ones on resume
    /// (after checking that the file is the same).
    async fn start(&self) -> Result<Rc<Started>, ClientError> {
        if let Some(started) = self.started.get() {
            return Ok(started.clone());
        }
        let source =
            self.source.borrow_mut().take().ok_or_else(|| {
                ClientError::Unsupported("internal: the upload started twice".into())
            })?;
        let started = match source {
            Source::Fresh {
                file,
                name,
                mime,
                handle,
            } => self.start_fresh(file, name, mime, handle).await?,
            Source::Saved { id, file } => self.start_saved(&id, file).await?,
        };
        let started = Rc::new(started);
        let _ = self.started.set(started.clone());
        Ok(started)
    }

    async fn start_fresh(
        &self,
        file: Blob,
        name: String,
        mime: String,
        handle: JsValue,
    ) -> Result<Started, ClientError> {
        let size = blob_size(&file)?;
        // Fresh secrets for this file alone (FORMAT.md §5: a key never seals two files).
        let mut key = [0u8; 32];
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 12];
        let mut idempotency_key = [0u8; 16];
        for buf in [
            &mut key[..],
            &mut salt[..],
            &mut nonce[..],
            &mut idempotency_key[..],
        ] {
            platform::random_bytes(buf)?;
        }
        let key = FileKey::from_bytes(key);
        let header = Header::new(&key, self.config.record_size, salt)?;
        let cipher = FileCipher::new(&key, &header).await?;
        #[cfg(feature = "bench")]
        let cipher = cipher.plain_if(self.config.plain);
        let metadata = FileMetadata {
            name: name.clone(),
            mime: mime.clone(),
        };
        let metadata = cipher.seal_metadata(nonce, &metadata).await?;
        let room = self
            .room
            .as_ref()
            .map(|r| r.fields(&name, &mime, &key))
            .transpose()?;
        let layout = Layout::for_plaintext(self.config.record_size, size)?;
        // Fixed for this upload from here on (a resume sends the same create).
        let part_size = self
            .config
            .part_size
            .or_else(|| link_history::part_size(size, self.config.record_size));
        let started = Started {
            file,
            size,
            key,
            header,
            cipher: Rc::new(cipher),
            metadata,
            layout,
            endpoint: self.config.endpoint.clone(),
            idempotency_key: IdempotencyKey::from_random(idempotency_key),
            part_size,
            fingerprints: RefCell::default(),
            room,
        };
        if self.config.persist && self.room.is_none() {
            let facts = file_facts(&started.file, &started.header, size).await?;
            let kept = async {
                let id = persist::random_id()?;
                let store = Store::open(id.clone(), handle).await?;
                let saved = Saved::new(
                    id,
                    started.endpoint.clone(),
                    facts,
                    name,
                    mime,
                    &started.header.encode(),
                    &started.metadata,
                    started.part_size,
                    &started.key,
                    started.idempotency_key.clone(),
                )
                .await?;
                store.save(&saved).await?;
                Ok::<_, ClientError>(Kept { store, saved })
            };
            match kept.await {
                Ok(kept) => *self.kept.borrow_mut() = Some(kept),
                // The upload still runs; it just cannot resume after a reload
                // (`upload.resumable` is false).
                Err(e) => platform::warn(
                    "sealdrop: this upload cannot be resumed after a reload",
                    &JsValue::from_str(&e.to_string()),
                ),
            }
        }
        Ok(started)
    }

    async fn start_saved(&self, id: &str, file: Option<Blob>) -> Result<Started, ClientError> {
        let (store, entry) = Store::load(id).await?;
        let saved = entry.saved;
        let file = match file {
            Some(file) => file,
            None => file_from_handle(&entry.handle).await?,
        };
        let header = Header::parse(&decode(&saved.header, "header")?)?;
        let size = blob_size(&file)?;
        // Nothing is sealed, let alone sent, from a file that is not the same.
        saved
            .file
            .check_same(&file_facts(&file, &header, size).await?)?;
        let key = saved.key().await?;
        let cipher = FileCipher::new(&key, &header).await?;
        let layout = Layout::for_plaintext(header.record_size(), size)?;
        let fingerprints = PartFingerprints::from_saved(store.fingerprints().await?);
        let started = Started {
            file,
            size,
            key,
            header,
            cipher: Rc::new(cipher),
            metadata: decode(&saved.metadata, "metadata")?,
            layout,
            endpoint: saved.endpoint.clone(),
            idempotency_key: saved.idempotency_key.clone(),
            part_size: saved.part_size,
            fingerprints: RefCell::new(fingerprints),
            room: None,
        };
        *self.kept.borrow_mut() = Some(Kept { store, saved });
        Ok(started)
    }

    /// Opens the session: creates it, or, for a resumed upload that has one, asks the
    /// server which parts storage holds. The session is kept in IndexedDB before any
    /// part is sent.
    async fn open_session(&self, started: &Started) -> Result<Opened, ClientError> {
        if let Some(session) = self.session.get() {
            self.keep_session(session).await?;
            return Ok(Opened::Open(session.clone()));
        }
        let http = self.config.http();
        let backoff = self.config.backoff();
        let saved = self
            .kept
            .borrow()
            .as_ref()
            .and_then(|k| k.saved.session.clone());
        let (file_id, token, plan, confirmed) = match saved {
            Some(saved) => {
                let url = format!("{}/api/uploads/{}", started.endpoint, saved.file_id);
                let token = saved.owner_token.as_str().to_owned();
                let status: UploadStatus = retrying(backoff, || {
                    http.json("GET upload", "GET", &url, Some(&token), None::<&()>)
                })
                .await?;
                match status.state {
                    UploadState::Open | UploadState::Completing => {}
                    UploadState::Completed => {
                        let record = self
                            .file_record(started, &saved.file_id, &saved.owner_token)
                            .await?;
                        return Ok(Opened::Completed(
                            Box::new(record),
                            saved.file_id,
                            saved.owner_token,
                        ));
                    }
                    _ => {
                        return Err(ClientError::Api {
                            status: 409,
                            code: "upload_not_open".into(),
                            message: "the upload was aborted on the server".into(),
                            retry_after_ms: None,
                        });
                    }
                }
                if status.plan != saved.plan {
                    return Err(ClientError::InvalidResponse(
                        "the session has another plan than the one saved".into(),
                    ));
                }
                // Only parts of exactly their planned size count as held.
                let confirmed = status
                    .parts
                    .into_iter()
                    .filter(|p| saved.plan.size_of_part(p.part_number) == Some(p.size))
                    .map(|p| (p.part_number, p.etag))
                    .collect();
                (saved.file_id, saved.owner_token, saved.plan, confirmed)
            }
            None => {
                let bearer = match &self.room {
                    Some(room) => Some(room.bearer().await?),
                    None => None,
                };
                self.create_sent.set(true);
                let created = create(
                    &self.config,
                    &started.endpoint,
                    &started.create_request(),
                    bearer.as_deref(),
                )
                .await?;
                if let Some(room) = &self.room {
                    room.opened(created.file_id.as_str());
                }
                let plan = created.plan;
                if plan.plaintext_size() != started.size
                    || plan.record_size() != started.header.record_size()
                {
                    return Err(ClientError::InvalidResponse(
                        "the server planned another file size or record size".into(),
                    ));
                }
                (created.file_id, created.owner_token, plan, Vec::new())
            }
        };
        let base = format!("{}/api/uploads/{file_id}", started.endpoint);
        let session = Rc::new(Session {
            urls: PartUrls::new(UrlSource {
                http,
                url: format!("{base}/part-urls"),
                token: token.as_str().to_owned(),
                part_count: plan.part_count(),
            }),
            sealer: Sealer::new(
                started.file.clone(),
                started.cipher.clone(),
                started.layout,
                plan.clone(),
            ),
            file_id,
            token,
            plan,
            confirmed,
        });
        let _ = self.session.set(session.clone());
        self.keep_session(&session).await?;
        Ok(Opened::Open(session))
    }

    /// Seals and stores the thumbnail, once. A thumbnail that cannot be stored costs
    /// the preview only: it is logged, and the upload goes on.
    async fn send_thumbnail(&self, started: &Started, session: &Session) {
        let Some(image) = self.thumbnail.borrow_mut().take() else {
            return;
        };
        let url = format!(
            "{}/api/uploads/{}/thumbnail",
            started.endpoint, session.file_id
        );
        let http = self.config.http();
        let token = session.token.as_str();
        let sent = retrying(self.config.backoff(), || {
            thumbnail::send(&http, &url, token, &started.key, &started.header, &image)
        })
        .await;
        if let Err(e) = sent {
            platform::warn(
                "sealdrop: the thumbnail could not be stored",
                &JsValue::from_str(&e.to_string()),
            );
        }
    }

    /// Writes the session into the kept record, unless it is there already.
    async fn keep_session(&self, session: &Session) -> Result<(), ClientError> {
        let update = {
            let mut kept = self.kept.borrow_mut();
            match kept.as_mut() {
                Some(kept) if kept.saved.session.is_none() => {
                    kept.saved.session = Some(SavedSession {
                        file_id: session.file_id.clone(),
                        owner_token: session.token.clone(),
                        plan: session.plan.clone(),
                    });
                    Some((kept.store.clone(), kept.saved.clone()))
                }
                _ => None,
            }
        };
        if let Some((store, saved)) = update
            && let Err(e) = store.save(&saved).await
        {
            // Not on disk: write it again before any part goes.
            if let Some(kept) = self.kept.borrow_mut().as_mut() {
                kept.saved.session = None;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Sends every part storage does not hold yet; answers every part's ETag.
    async fn send_parts(
        &self,
        started: &Started,
        session: &Session,
    ) -> Result<Vec<(u32, String)>, ClientError> {
        let plan = &session.plan;
        let pace = self.pace.get_or_init(|| {
            RefCell::new(transfer::pace(
                self.config.concurrency,
                self.config.fixed_concurrency,
            ))
        });
        let scheduler = match self.scheduler.get() {
            Some(scheduler) => scheduler,
            None => {
                let scheduler = PartScheduler::new(
                    plan.part_count(),
                    pace.borrow().limit(),
                    self.config.backoff(),
                    session.confirmed.iter().cloned(),
                )
                .map_err(|e| ClientError::InvalidResponse(e.to_string()))?;
                let _ = self.scheduler.set(RefCell::new(scheduler));
                self.scheduler
                    .get()
                    .ok_or_else(|| ClientError::Unsupported("internal: no scheduler".into()))?
            }
        };
        // After a pause (or attempts ran out): continue, with fresh attempts.
        scheduler.borrow_mut().resume();
        // Started for this run of the parts and stopped with it (a pause, the end), so
        // an upload that waits holds no workers.
        let pool = Pool::start(self.config.workers, session.sealer.cipher()).await;
        let pool = pool.as_ref();
        let reporter = self.reporter.get_or_init(|| {
            let mut reporter = Reporter::new(
                self.on_progress.clone(),
                started.size,
                (plan.part_count(), plan.part_size()),
                pace.borrow().limit(),
                started.cipher.backend(),
            );
            let held: u64 = session
                .confirmed
                .iter()
                .map(|(p, _)| plaintext_len(plan, *p))
                .sum();
            let held_parts = u32::try_from(session.confirmed.len()).unwrap_or(u32::MAX);
            reporter.set_workers(pool.map_or(0, Pool::size));
            reporter.start(platform::now_ms(), held, held_parts);
            RefCell::new(reporter)
        });
        let workers = pool.map_or(0, Pool::size);
        reporter.borrow_mut().set_workers(workers);
        let sent = run_parts(
            scheduler,
            pace,
            reporter,
            |part| self.attempt_part(started, session, part, pool),
            |part, etag| (etag, plaintext_len(plan, part)),
        )
        .await;
        // What this run saw of the link, for the next upload's part size (a run stopped
        // by a pause leaves its outcomes to the next run's sample).
        link_history::record(pace.borrow_mut().take_sample());
        sent
    }

    /// Tells the scheduler that the parts in flight were stopped.
    fn stop_parts(&self) {
        if let Some(scheduler) = self.scheduler.get() {
            let _ = scheduler.borrow_mut().pause();
        }
    }

    /// One attempt at one part: its URL (fetched while the part is being sealed), the
    /// sealed `Blob`, the check of its fingerprint, the `PUT`, and its ETag. A URL
    /// refused with any `403` (the worker's JSON `token_expired`, or a presigned URL's
    /// XML `AccessDenied` once it expires) is replaced once and the same body sent again.
    async fn attempt_part(
        &self,
        started: &Started,
        session: &Session,
        part: u32,
        pool: Option<&Pool>,
    ) -> Result<String, ClientError> {
        let sealed = session.sealer.seal_part(part, pool);
        let (url, (body, fingerprint)) = try_join(session.urls.get(part), sealed).await?;
        self.admit(started, part, fingerprint).await?;
        let stall_ms = self.config.stall_ms;
        match xhr::put_blob(&url, &body, stall_ms).await {
            Err(e) if e.may_need_fresh_url() => {
                session.urls.forget(part);
                let url = session.urls.get(part).await?;
                xhr::put_blob(&url, &body, stall_ms).await
            }
            outcome => outcome,
        }
    }

    /// Lets a sealed part be sent: a first seal is kept (in IndexedDB first, durably,
    /// when the upload is kept, so a resume after a crash can compare against it); a
    /// later seal must be identical to the first (`file_changed` otherwise).
    async fn admit(
        &self,
        started: &Started,
        part: u32,
        fingerprint: PartFingerprint,
    ) -> Result<(), ClientError> {
        if started.fingerprints.borrow().check(part, fingerprint)? == Seal::Same {
            return Ok(());
        }
        let store = self.kept.borrow().as_ref().map(|k| k.store.clone());
        if let Some(store) = store {
            store.save_fingerprint(part, fingerprint).await?;
        }
        started
            .fingerprints
            .borrow_mut()
            .remember(part, fingerprint);
        Ok(())
    }

    /// Completes the upload; a completion already done answers the record again.
    async fn complete(
        &self,
        started: &Started,
        session: &Session,
        etags: &[(u32, String)],
    ) -> Result<FileRecord, ClientError> {
        let body = CompleteRequest {
            parts: etags
                .iter()
                .map(|(part_number, etag)| CompletedPart {
                    part_number: *part_number,
                    etag: etag.clone(),
                })
                .collect(),
        };
        let url = format!(
            "{}/api/uploads/{}/complete",
            started.endpoint, session.file_id
        );
        let http = self.config.http();
        let token = session.token.as_str();
        retrying(self.config.backoff(), || {
            http.json("POST complete", "POST", &url, Some(token), Some(&body))
        })
        .await
    }

    /// Asks the session which parts storage holds, and queues again every part it does
    /// not hold with the ETag this upload got for it.
    async fn redo_lost_parts(
        &self,
        started: &Started,
        session: &Session,
        etags: &[(u32, String)],
    ) -> Result<(), ClientError> {
        let url = format!("{}/api/uploads/{}", started.endpoint, session.file_id);
        let http = self.config.http();
        let token = session.token.as_str();
        let status: UploadStatus = retrying(self.config.backoff(), || {
            http.json("GET upload", "GET", &url, Some(token), None::<&()>)
        })
        .await?;
        let held: HashMap<u32, String> = status
            .parts
            .into_iter()
            .map(|p| (p.part_number, p.etag))
            .collect();
        let lost = etags
            .iter()
            .filter(|(part, etag)| held.get(part).is_none_or(|h| !same_etag(h, etag)))
            .map(|(part, _)| *part);
        if let Some(scheduler) = self.scheduler.get() {
            scheduler.borrow_mut().redo(lost);
        }
        Ok(())
    }

    /// `GET /api/files/{id}` (the owner's): the record of a completed upload.
    async fn file_record(
        &self,
        started: &Started,
        file_id: &FileId,
        token: &OwnerToken,
    ) -> Result<FileRecord, ClientError> {
        let url = format!("{}/api/files/{file_id}", started.endpoint);
        let http = self.config.http();
        let token = token.as_str();
        retrying(self.config.backoff(), || {
            http.json("GET file", "GET", &url, Some(token), None::<&()>)
        })
        .await
    }

    /// `POST /api/files/{id}/shares`: the file's default share, whose token the link
    /// names.
    async fn default_share(
        &self,
        started: &Started,
        file_id: &FileId,
        token: &OwnerToken,
    ) -> Result<ShareToken, ClientError> {
        let url = format!("{}/api/files/{file_id}/shares", started.endpoint);
        let http = self.config.http();
        let token = token.as_str();
        let body = CreateShareRequest::default();
        let share: ShareView = retrying(self.config.backoff(), || {
            http.json("POST shares", "POST", &url, Some(token), Some(&body))
        })
        .await?;
        ShareToken::parse(&share.token)
            .map_err(|_| ClientError::InvalidResponse("the share token is malformed".into()))
    }

    /// Forgets what the browser kept (best effort: a record left behind is listed by
    /// `pending()`, whose resume finds the session gone or completed).
    async fn forget(&self) {
        let store = self.kept.borrow_mut().take().map(|k| k.store);
        if let Some(store) = store
            && let Err(e) = store.forget().await
        {
            platform::warn(
                "sealdrop: a finished upload could not be forgotten",
                &JsValue::from_str(&e.to_string()),
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Cancelling and discarding
// ---------------------------------------------------------------------------------

/// What is known of an upload's session when it is discarded.
pub(crate) enum Known {
    /// The session: it is deleted.
    Session(FileId, OwnerToken),
    /// A create may have reached the server, but its answer never came back: the same
    /// create again (the same idempotency key) answers the session it made, which is
    /// then deleted, so no orphan is left behind.
    /// (For an upload into a room, with the room JWT it was sent with.)
    Unanswered(CreateUploadRequest, Option<String>),
    /// Nothing was sent.
    Nothing,
}

impl Known {
    /// What a kept record knows: its session, or the create that may have made one.
    pub(crate) fn of_saved(saved: &Saved) -> Known {
        match &saved.session {
            Some(s) => Known::Session(s.file_id.clone(), s.owner_token.clone()),
            None => Known::Unanswered(
                CreateUploadRequest {
                    plaintext_size: saved.file.size,
                    header: saved.header.clone(),
                    metadata: saved.metadata.clone(),
                    part_size: saved.part_size,
                    idempotency_key: Some(saved.idempotency_key.clone()),
                    room: None,
                    expires_in: None,
                },
                None,
            ),
        }
    }
}

/// `POST /api/uploads`, retried (the idempotency key makes a retry safe), with the
/// answer checked against the request.
async fn create(
    config: &UploadConfig,
    endpoint: &str,
    request: &CreateUploadRequest,
    bearer: Option<&str>,
) -> Result<CreateUploadResponse, ClientError> {
    let http = config.http();
    let url = format!("{endpoint}/api/uploads");
    retrying(config.backoff(), || {
        http.json("POST uploads", "POST", &url, bearer, Some(request))
    })
    .await
}

/// Deletes a session (`DELETE`, waiting out a busy one) and forgets what the browser
/// kept. A session that is already gone (404) or no longer open (409: aborted, or
/// completed) counts as deleted. At most [`DISCARD_TIMEOUT_MS`].
pub(crate) async fn discard(
    config: &UploadConfig,
    endpoint: &str,
    known: Known,
    store: Option<Store>,
) -> Result<(), ClientError> {
    let work = async {
        let (file_id, token) = match known {
            Known::Session(file_id, token) => (file_id, token),
            Known::Unanswered(request, bearer) => {
                let created = create(config, endpoint, &request, bearer.as_deref()).await?;
                (created.file_id, created.owner_token)
            }
            Known::Nothing => return Ok(()),
        };
        let http = config.http();
        let url = format!("{endpoint}/api/uploads/{file_id}");
        retrying(config.backoff(), || {
            http.empty("DELETE upload", "DELETE", &url, Some(token.as_str()))
        })
        .await
    };
    let outcome = match select(pin!(work), pin!(platform::sleep(DISCARD_TIMEOUT_MS))).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err(ClientError::Stalled {
            what: "DELETE upload",
            after_ms: DISCARD_TIMEOUT_MS,
        }),
    };
    match outcome {
        Ok(()) => {}
        Err(e) if session_gone(&e) => {}
        Err(e) => return Err(e),
    }
    if let Some(store) = store {
        store.forget().await?;
    }
    Ok(())
}

/// Whether `error` says the session is gone for good: unknown (expired), aborted or
/// otherwise no longer open.
fn session_gone(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { code, .. } if code == "upload_not_found" || code == "upload_not_open")
}

/// How often one upload sends again the parts completing found missing.
const MAX_REDO: u32 = 3;

/// Whether completing refused because storage does not hold a part as it was sent
/// (docs/API.md: "send it again").
fn lacks_parts(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { code, .. } if code == "parts_missing" || code == "etag_mismatch")
}

/// ETags compared as the API does: without surrounding quotes.
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// Plaintext bytes in `part`, for progress.
fn plaintext_len(plan: &PartPlan, part: u32) -> u64 {
    plan.plaintext_range_of_part(part)
        .map_or(0, |r| r.end - r.start)
}

/// `blob.size` as a whole number of bytes.
fn blob_size(blob: &Blob) -> Result<u64, ClientError> {
    let size = blob.size();
    if size.is_finite() && size >= 0.0 && size.fract() == 0.0 {
        Ok(size as u64)
    } else {
        Err(ClientError::InvalidOption(format!(
            "the file's size is {size}"
        )))
    }
}

/// The facts that recognise `file` again: its name and modification time (a `File`),
/// its size, and the SHA-256 of its first record's plaintext.
async fn file_facts(file: &Blob, header: &Header, size: u64) -> Result<FileFacts, ClientError> {
    let first = read_slice(file, 0..size.min(u64::from(header.record_size()))).await?;
    let (name, last_modified) = match file.dyn_ref::<File>() {
        Some(f) => (
            f.name(),
            Some(f.last_modified())
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(|t| t as u64),
        ),
        None => (String::new(), None),
    };
    Ok(FileFacts::new(name, size, last_modified, &first.to_vec()))
}

/// Reads the file through a saved `FileSystemFileHandle` (`handle.getFile()`); the
/// page must have read permission (the demo asks with `requestPermission` on a click).
async fn file_from_handle(handle: &JsValue) -> Result<Blob, ClientError> {
    let get_file = Reflect::get(handle, &"getFile".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| {
            ClientError::InvalidOption(
                "pass the file again: this upload kept no file handle".into(),
            )
        })?;
    let promise: Promise = get_file
        .call0(handle)
        .map_err(|e| ClientError::ReadFailed(platform::describe(&e)))?
        .dyn_into()
        .map_err(|_| ClientError::ReadFailed("getFile() gave no promise".into()))?;
    JsFuture::from(promise)
        .await
        .map_err(|e| ClientError::ReadFailed(platform::describe(&e)))?
        .dyn_into()
        .map_err(|_| ClientError::ReadFailed("getFile() gave no file".into()))
}

fn decode(field: &str, what: &str) -> Result<Vec<u8>, ClientError> {
    STANDARD
        .decode(field)
        .map_err(|_| ClientError::PersistFailed(format!("the saved {what} is damaged")))
}
