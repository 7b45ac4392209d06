//! Shares: the `Share` Durable Object (binding `SHARES`), one per share link, named by
//! its token's random part (the MAC never leaves the worker), and the calls to it.
//!
//! The rules are `protocol::share`'s. The object keeps what a download needs of the
//! file (header, sealed metadata, plan: the public record, copied when the share is
//! made, so a download never has to reach the file's session) and signs storage URLs
//! through the `Provider` seam; the file's session keeps the list of its shares and
//! purges them when the file goes.

// `#[durable_object]` generates undocumented `pub` wasm-bindgen glue.
#[allow(missing_docs)]
pub(crate) mod object;
mod store;

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::{FileId, ShareToken};
use sealdrop_protocol::plan::PartPlan;
use sealdrop_protocol::session::Session;
use sealdrop_protocol::share::{
    DownloadOpened, OpenDownloadRequest, PublicShare, Settings, ShareView, UpdateShareRequest,
};
use sealdrop_protocol::wire::{DownloadUrl, encode_base64};
use serde::{Deserialize, Serialize};
use worker::{Env, Request};

use crate::http::header;
use crate::internal::ObjectStub;
use crate::session::store::FileMeta;

/// The `wrangler.toml` binding of the namespace.
const BINDING: &str = "SHARES";

/// What a share keeps of its file: the public part of the file record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileInfo {
    pub file_id: FileId,
    pub plan: PartPlan,
    /// The header, standard base64.
    pub header: String,
    /// The sealed metadata, standard base64.
    pub metadata: String,
    pub created_at: u64,
    /// `None`: the file never expires.
    pub file_expires_at: Option<u64>,
}

impl FileInfo {
    /// The info of a completed session's file.
    pub fn new(session: &Session, meta: &FileMeta, file_expires_at: Option<u64>) -> Self {
        Self {
            file_id: session.file_id().clone(),
            plan: session.plan().clone(),
            header: encode_base64(&meta.header),
            metadata: encode_base64(&meta.metadata),
            created_at: session.created_at(),
            file_expires_at,
        }
    }
}

/// What a downloader's request says about it (reduced to coarse info in the object,
/// which stores nothing else of it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Caller {
    pub country: Option<String>,
    pub user_agent: Option<String>,
}

impl Caller {
    /// The caller of `req`: the platform's geolocation, and the `User-Agent`.
    pub fn of(req: &Request) -> Self {
        Self {
            country: req.cf().and_then(|cf| cf.country()),
            user_agent: header(req, "user-agent"),
        }
    }
}

/// Every call a share object takes (`POST /`, tagged by `call`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase", deny_unknown_fields)]
pub(crate) enum ShareCall {
    /// Make the share (from the file's session); with the digest of an idempotent
    /// create, answer its retry.
    #[serde(rename_all = "camelCase")]
    Create {
        file: FileInfo,
        settings: Settings,
        request_digest: Option<[u8; 32]>,
        token: String,
    },
    /// The owner's view.
    Owner { token: String },
    /// The owner changes it.
    #[serde(rename_all = "camelCase")]
    Update {
        token: String,
        patch: UpdateShareRequest,
        file_expires_at: Option<u64>,
    },
    /// The owner revokes it.
    Revoke { token: String },
    /// The file is gone: forget everything.
    Purge,
    /// Whether the object holds a share (a create reached it), as [`Made`]: the file's
    /// session asks it of a share slot pending too long. Changes nothing.
    Made,
    /// `GET /api/shares/{token}`.
    View { caller: Caller },
    /// `POST /api/shares/{token}/downloads`.
    #[serde(rename_all = "camelCase")]
    Open {
        request: OpenDownloadRequest,
        share_id: [u8; 16],
        caller: Caller,
    },
    /// `POST .../downloads/{id}/url`.
    #[serde(rename_all = "camelCase")]
    Url { download_id: String },
    /// `POST .../downloads/{id}/complete`.
    #[serde(rename_all = "camelCase")]
    Complete { download_id: String, caller: Caller },
    /// `DELETE .../downloads/{id}`.
    #[serde(rename_all = "camelCase")]
    Abandon { download_id: String, caller: Caller },
}

/// The answer to [`ShareCall::Made`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Made {
    pub made: bool,
}

/// A handle on one share object.
pub(crate) struct ShareStub {
    stub: ObjectStub,
}

impl ShareStub {
    /// The object of `token` (which the caller checked carries this server's MAC).
    pub fn get(env: &Env, token: &ShareToken) -> Result<Self, ApiError> {
        Self::by_id(env, &token.random_text())
    }

    /// The object named `id`, a token's random part.
    pub fn by_id(env: &Env, id: &str) -> Result<Self, ApiError> {
        let stub = ObjectStub::get(env, BINDING, id, "calling a share")?;
        Ok(Self { stub })
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, call: &ShareCall) -> Result<T, ApiError> {
        self.stub.json("/", call).await
    }

    pub async fn create(
        &self,
        file: FileInfo,
        settings: Settings,
        request_digest: Option<[u8; 32]>,
        token: &ShareToken,
    ) -> Result<ShareView, ApiError> {
        let token = token.as_str().to_owned();
        self.call(&ShareCall::Create {
            file,
            settings,
            request_digest,
            token,
        })
        .await
    }

    pub async fn owner_view(&self, token: &ShareToken) -> Result<ShareView, ApiError> {
        let token = token.as_str().to_owned();
        self.call(&ShareCall::Owner { token }).await
    }

    pub async fn update(
        &self,
        token: &ShareToken,
        patch: UpdateShareRequest,
        file_expires_at: Option<u64>,
    ) -> Result<ShareView, ApiError> {
        let token = token.as_str().to_owned();
        self.call(&ShareCall::Update {
            token,
            patch,
            file_expires_at,
        })
        .await
    }

    pub async fn revoke(&self, token: &ShareToken) -> Result<ShareView, ApiError> {
        let token = token.as_str().to_owned();
        self.call(&ShareCall::Revoke { token }).await
    }

    pub async fn purge(&self) -> Result<(), ApiError> {
        self.call(&ShareCall::Purge).await
    }

    /// Whether the object holds a share.
    pub async fn made(&self) -> Result<bool, ApiError> {
        let made: Made = self.call(&ShareCall::Made).await?;
        Ok(made.made)
    }

    pub async fn view(&self, caller: Caller) -> Result<PublicShare, ApiError> {
        self.call(&ShareCall::View { caller }).await
    }

    pub async fn open(
        &self,
        token: &ShareToken,
        request: OpenDownloadRequest,
        caller: Caller,
    ) -> Result<DownloadOpened, ApiError> {
        let share_id = token.random_part();
        self.call(&ShareCall::Open {
            request,
            share_id,
            caller,
        })
        .await
    }

    pub async fn url(&self, download_id: String) -> Result<DownloadUrl, ApiError> {
        self.call(&ShareCall::Url { download_id }).await
    }

    pub async fn complete(&self, download_id: String, caller: Caller) -> Result<(), ApiError> {
        self.call(&ShareCall::Complete {
            download_id,
            caller,
        })
        .await
    }

    pub async fn abandon(&self, download_id: String, caller: Caller) -> Result<(), ApiError> {
        self.call(&ShareCall::Abandon {
            download_id,
            caller,
        })
        .await
    }
}
