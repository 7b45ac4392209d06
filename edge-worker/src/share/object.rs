//! The `Share` Durable Object: one share link. See the module above.
//!
//! Each call loads the share (cached), runs one rule of `protocol::share` with the
//! clock, writes what changed, and answers. Calls are synchronous inside (storage URLs
//! are signed, not fetched), so each is atomic: two parallel downloads of a one-time
//! share are decided one after the other. An object that holds nothing answers `410
//! gone`: the worker only addresses validly signed tokens, so its share was purged
//! with its file.

use std::cell::RefCell;

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::random_id_text;
use sealdrop_protocol::share::{ClientInfo, DownloadOpened, Share as Rules, ShareView};
use sealdrop_protocol::wire::FileRecord;
use serde::Serialize;
use worker::{Date, DurableObject, Env, Request, Response, State, durable_object};

use super::store::{ShareStore, Stored};
use super::{Caller, Made, ShareCall};
use crate::config::Config;
use crate::http::{OrApiError as _, empty, internal, json, respond};
use crate::storage::{Provider as _, Storage};

/// One share link.
#[durable_object]
pub struct Share {
    state: State,
    env: Env,
    /// The share as last read from or written to SQLite.
    cache: RefCell<Option<Stored>>,
}

impl DurableObject for Share {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            cache: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.json::<ShareCall>().await {
            Ok(call) => self.handle(call).await,
            Err(e) => Err(internal("reading a share call", e)),
        };
        respond(result)
    }
}

impl Share {
    async fn handle(&self, call: ShareCall) -> Result<Response, ApiError> {
        let now = Date::now().as_millis();
        let store = ShareStore::new(self.state.storage().sql());
        match call {
            ShareCall::Create {
                file,
                settings,
                request_digest,
                token,
            } => {
                if store.exists()? {
                    // An idempotent create's retry (or its twin, racing): the same
                    // share, or `409 idempotency_conflict` for another request.
                    return self.change(now, |stored| {
                        stored.share.retried(request_digest.as_ref())?;
                        Ok(Created(ShareView::new(token, &stored.share, now)))
                    });
                }
                let mut share = Rules::new(settings, now);
                share.request_digest = request_digest;
                let stored = Stored { file, share };
                store.create(&stored)?;
                let view = ShareView::new(token, &stored.share, now);
                self.cache.replace(Some(stored));
                json(201, &view)
            }
            ShareCall::Purge => {
                self.cache.replace(None);
                let storage = self.state.storage();
                storage
                    .delete_alarm()
                    .await
                    .or_internal("purging a share")?;
                storage.delete_all().await.or_internal("purging a share")?;
                empty(204)
            }
            // One synchronous read: a create either ran before it (made) or runs
            // after it, and then confirms its own slot.
            ShareCall::Made => json(
                200,
                &Made {
                    made: store.exists()?,
                },
            ),
            ShareCall::Owner { token } => self.change(now, |stored| {
                stored.share.settle(now);
                Ok(ShareView::new(token, &stored.share, now))
            }),
            ShareCall::Update {
                token,
                patch,
                file_expires_at,
            } => self.change(now, |stored| {
                let expires_at = patch.expires_at(now);
                stored
                    .share
                    .update(expires_at, patch.download_limit, file_expires_at, now)?;
                Ok(ShareView::new(token, &stored.share, now))
            }),
            ShareCall::Revoke { token } => self.change(now, |stored| {
                stored.share.revoke(now);
                Ok(ShareView::new(token, &stored.share, now))
            }),
            ShareCall::View { caller } => {
                self.change(now, |stored| stored.share.view(now, &client(&caller)))
            }
            ShareCall::Open {
                request,
                share_id,
                caller,
            } => {
                let storage = self.storage()?;
                let download_id = match request.download_id()? {
                    Some(id) => id.to_owned(),
                    None => {
                        let mut random = [0u8; 16];
                        getrandom::fill(&mut random).or_internal("drawing a download id")?;
                        random_id_text(random)
                    }
                };
                let verifier = request.verifier()?;
                self.change(now, |stored| {
                    let url = storage.download_url(&stored.file.file_id, now);
                    let lease_ms = url.expires_at.saturating_sub(now);
                    let lease_until = stored.share.open(
                        &download_id,
                        verifier.as_ref(),
                        &share_id,
                        now,
                        lease_ms,
                        &client(&caller),
                    )?;
                    let f = &stored.file;
                    let file = FileRecord {
                        file_id: f.file_id.clone(),
                        plaintext_size: f.plan.plaintext_size(),
                        ciphertext_size: f.plan.ciphertext_size(),
                        record_size: f.plan.record_size(),
                        header: f.header.clone(),
                        metadata: f.metadata.clone(),
                        part_size: f.plan.part_size(),
                        part_count: f.plan.part_count(),
                        created_at: f.created_at,
                        expires_at: f.file_expires_at,
                        download: url,
                    };
                    Ok(Created(DownloadOpened {
                        download_id: download_id.clone(),
                        lease_until,
                        file,
                    }))
                })
            }
            ShareCall::Url { download_id } => {
                let storage = self.storage()?;
                self.change(now, |stored| {
                    let url = storage.download_url(&stored.file.file_id, now);
                    let lease_ms = url.expires_at.saturating_sub(now);
                    stored.share.reissue(&download_id, now, lease_ms)?;
                    Ok(url)
                })
            }
            ShareCall::Complete {
                download_id,
                caller,
            } => self.change(now, |stored| {
                stored.share.complete(&download_id, now, &client(&caller))?;
                Ok(NoContent)
            }),
            ShareCall::Abandon {
                download_id,
                caller,
            } => self.change(now, |stored| {
                stored.share.abandon(&download_id, now, &client(&caller))?;
                Ok(NoContent)
            }),
        }
    }

    fn storage(&self) -> Result<Storage, ApiError> {
        let config = Config::from_env(&self.env)?;
        Storage::from_config(&self.env, &config)
    }

    /// Runs `f` on the share (loaded if not cached; `410 gone` if there is none), writes
    /// what changed (also after a refusal: it may have recorded the attempt, counted a
    /// wrong password or a lapse), and answers `f`'s answer.
    fn change<T: Answer>(
        &self,
        now: u64,
        f: impl FnOnce(&mut Stored) -> Result<T, ApiError>,
    ) -> Result<Response, ApiError> {
        let store = ShareStore::new(self.state.storage().sql());
        let mut cache = self.cache.borrow_mut();
        if cache.is_none() {
            *cache = store.load()?;
        }
        let Some(stored) = cache.as_mut() else {
            return Err(ApiError::gone());
        };
        stored.share.settle(now);
        let answer = f(stored);
        if let Err(e) = store.save(&mut stored.share) {
            *cache = None;
            return Err(e);
        }
        answer?.respond()
    }
}

fn client(caller: &Caller) -> ClientInfo {
    ClientInfo::new(caller.country.as_deref(), caller.user_agent.as_deref())
}

/// How a call's result is answered.
trait Answer {
    fn respond(self) -> Result<Response, ApiError>;
}

/// `201` with the body.
struct Created<T>(T);
/// `204`.
struct NoContent;

impl<T: Serialize> Answer for Created<T> {
    fn respond(self) -> Result<Response, ApiError> {
        json(201, &self.0)
    }
}

impl Answer for NoContent {
    fn respond(self) -> Result<Response, ApiError> {
        empty(204)
    }
}

macro_rules! answers_200 {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn respond(self) -> Result<Response, ApiError> {
                json(200, &self)
            }
        }
    )*};
}

answers_200!(
    ShareView,
    sealdrop_protocol::share::PublicShare,
    sealdrop_protocol::wire::DownloadUrl
);
