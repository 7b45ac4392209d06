//! Where the record section lives: the storage-provider seam.
//!
//! A [`Provider`] carries out, for one configured store, everything the session machine
//! (`protocol::session`) asks of storage, plus the URLs clients use: create the
//! multipart upload, sign a part URL, list the parts (the [`Step::ListParts`] answer:
//! storage's own listing where it has one, else the session's record), complete, check
//! the object, abort, delete the object, sign a download URL. [`Storage`] is the
//! configured one: [`r2::R2Binding`] (`r2-binding`) or [`s3::S3Storage`] (`s3`); another
//! provider is a new variant and a new module implementing [`Provider`], and nothing
//! outside this folder changes.
//!
//! Failures are typed by what the session needs to know, never by message text:
//! [`StorageFailure`] (anything; the step fails and is retried), and for completion
//! [`CompleteFailure::Refused`] when storage names a part of the list invalid.
//!
//! The object key is `files/<fileId>` (`protocol::sweep::object_key`, which the sweep
//! reads back) and the object holds only the record section (ciphertext). Header,
//! sealed metadata and plan live in the session.
//!
//! [`Step::ListParts`]: sealdrop_protocol::session::Step::ListParts

pub(crate) mod r2;
pub(crate) mod s3;

use std::fmt::Display;

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::session::ListedPart;
use sealdrop_protocol::wire::{CompletedPart, DownloadUrl, PartUrl};
use worker::{Env, console_error};

use crate::config::{Config, StorageMode};
use r2::R2Binding;
use s3::S3Storage;

pub(crate) use sealdrop_protocol::sweep::object_key;

/// Storage failed or gave no answer. The cause is logged where it happened; the
/// session only needs to know that nothing is known to have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StorageFailure;

impl StorageFailure {
    /// Logs `error` with what was being done.
    pub fn logged(context: &str, error: impl Display) -> Self {
        console_error!("storage error while {context}: {error}");
        StorageFailure
    }
}

impl From<StorageFailure> for ApiError {
    fn from(_: StorageFailure) -> Self {
        ApiError::storage()
    }
}

/// Why a completion did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompleteFailure {
    /// Storage refused the part list: it does not hold one of the parts with that ETag.
    Refused,
    /// Anything else, "no such upload" included (it may have completed already).
    Failed,
}

/// One storage provider (the seam; see the module docs).
pub(crate) trait Provider {
    /// The name clients see in `GET /api/limits` (its limits are `Config::limits`).
    fn name(&self) -> &'static str;
    /// Starts the multipart upload of `file_id`; answers storage's upload id.
    async fn create_upload(&self, file_id: &FileId) -> Result<String, StorageFailure>;
    /// Where to PUT part `part` (of `size` bytes) of the upload, and until when.
    fn part_url(
        &self,
        file_id: &FileId,
        upload_id: &str,
        part: u32,
        size: u64,
        now_ms: u64,
    ) -> PartUrl;
    /// The parts the upload holds: from storage where it can list them (every page),
    /// else `recorded`, the session's record of the part writes it fenced.
    async fn list_parts(
        &self,
        file_id: &FileId,
        upload_id: &str,
        recorded: Vec<ListedPart>,
    ) -> Result<Vec<ListedPart>, StorageFailure>;
    /// Completes the upload with `parts`, in order, ETags as storage gave them.
    async fn complete(
        &self,
        file_id: &FileId,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), CompleteFailure>;
    /// Whether the completed object of `file_id` exists.
    async fn object_exists(&self, file_id: &FileId) -> Result<bool, StorageFailure>;
    /// Aborts the upload; an upload storage no longer knows counts as aborted.
    async fn abort(&self, file_id: &FileId, upload_id: &str) -> Result<(), StorageFailure>;
    /// Deletes the completed object of `file_id`; a missing object counts as deleted.
    async fn delete_object(&self, file_id: &FileId) -> Result<(), StorageFailure>;
    /// Where to GET (with `Range`) the record section of a completed file.
    fn download_url(&self, file_id: &FileId, now_ms: u64) -> DownloadUrl;
}

/// The configured provider.
pub(crate) enum Storage {
    /// `r2-binding`: worker-signed URLs, part bodies piped by the worker into R2.
    R2Binding(R2Binding),
    /// `s3`: presigned URLs, part bodies straight from the client into the bucket.
    S3(S3Storage),
}

impl Storage {
    /// The provider `config` names, bound to this environment.
    pub fn from_config(env: &Env, config: &Config) -> Result<Self, ApiError> {
        match &config.storage_mode {
            StorageMode::R2Binding => Ok(Self::R2Binding(R2Binding::new(env, config)?)),
            StorageMode::S3(settings) => S3Storage::new(settings, config)
                .map(Self::S3)
                .map_err(|e| crate::http::internal("setting up the S3 provider", e)),
        }
    }

    /// The R2-binding provider, which also serves the `/blob/...` URLs it signs; `None`
    /// for a provider whose URLs point elsewhere.
    pub fn r2_binding(&self) -> Option<&R2Binding> {
        match self {
            Self::R2Binding(r2) => Some(r2),
            Self::S3(_) => None,
        }
    }
}

impl Provider for Storage {
    fn name(&self) -> &'static str {
        match self {
            Self::R2Binding(p) => p.name(),
            Self::S3(p) => p.name(),
        }
    }
    async fn create_upload(&self, file_id: &FileId) -> Result<String, StorageFailure> {
        match self {
            Self::R2Binding(p) => p.create_upload(file_id).await,
            Self::S3(p) => p.create_upload(file_id).await,
        }
    }
    fn part_url(
        &self,
        file_id: &FileId,
        upload_id: &str,
        part: u32,
        size: u64,
        now_ms: u64,
    ) -> PartUrl {
        match self {
            Self::R2Binding(p) => p.part_url(file_id, upload_id, part, size, now_ms),
            Self::S3(p) => p.part_url(file_id, upload_id, part, size, now_ms),
        }
    }
    async fn list_parts(
        &self,
        file_id: &FileId,
        upload_id: &str,
        recorded: Vec<ListedPart>,
    ) -> Result<Vec<ListedPart>, StorageFailure> {
        match self {
            Self::R2Binding(p) => p.list_parts(file_id, upload_id, recorded).await,
            Self::S3(p) => p.list_parts(file_id, upload_id, recorded).await,
        }
    }
    async fn complete(
        &self,
        file_id: &FileId,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), CompleteFailure> {
        match self {
            Self::R2Binding(p) => p.complete(file_id, upload_id, parts).await,
            Self::S3(p) => p.complete(file_id, upload_id, parts).await,
        }
    }
    async fn object_exists(&self, file_id: &FileId) -> Result<bool, StorageFailure> {
        match self {
            Self::R2Binding(p) => p.object_exists(file_id).await,
            Self::S3(p) => p.object_exists(file_id).await,
        }
    }
    async fn abort(&self, file_id: &FileId, upload_id: &str) -> Result<(), StorageFailure> {
        match self {
            Self::R2Binding(p) => p.abort(file_id, upload_id).await,
            Self::S3(p) => p.abort(file_id, upload_id).await,
        }
    }
    async fn delete_object(&self, file_id: &FileId) -> Result<(), StorageFailure> {
        match self {
            Self::R2Binding(p) => p.delete_object(file_id).await,
            Self::S3(p) => p.delete_object(file_id).await,
        }
    }
    fn download_url(&self, file_id: &FileId, now_ms: u64) -> DownloadUrl {
        match self {
            Self::R2Binding(p) => p.download_url(file_id, now_ms),
            Self::S3(p) => p.download_url(file_id, now_ms),
        }
    }
}
