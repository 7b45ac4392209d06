//! Where the record section lives: the storage-provider seam.
//!
//! A [`Provider`] carries out, for one configured store, everything the session machine
//! (`protocol::session`) asks of storage, plus the URLs clients use: create the
//! multipart upload, sign a part URL, list the parts (the [`Step::ListParts`] answer:
//! storage's own listing where it has one, else the session's record), complete, check
//! the object, abort, delete the object, sign a download URL. [`Storage`] is the
//! configured one: [`r2::R2Binding`] (`r2-binding`) or [`s3::S3Storage`] (`s3`); another
//! provider is a new variant and a new module implementing [`Provider`], and nothing
//! outside this folder changes. [`Storage`] bounds every call it makes for the session
//! by `STORAGE_TIMEOUT_SECONDS`: a call that never settles would otherwise hold the
//! session's step for good.
//!
//! Failures are typed by what the session needs to know, never by message text:
//! [`StorageFailure`] (anything; the step fails and is retried), [`UploadFailure::Gone`]
//! when storage says the multipart upload does not exist (completed or aborted), and for
//! completion [`CompleteFailure::Refused`] when storage names a part of the list invalid.
//!
//! The object key is `files/<fileId>` (`protocol::sweep::object_key`, which the sweep
//! reads back) and the object holds only the record section (ciphertext). Header,
//! sealed metadata and plan live in the session. Logs never name a key: a file id in a
//! storage error text is replaced by `files/…` ([`StorageFailure::logged`]).
//!
//! [`Step::ListParts`]: sealdrop_protocol::session::Step::ListParts

pub(crate) mod r2;
pub(crate) mod s3;

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use futures_util::future::{Either, select};
use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use sealdrop_protocol::session::ListedPart;
use sealdrop_protocol::wire::{CompletedPart, DownloadUrl, PartUrl};
use worker::{Delay, Env, console_error};

use crate::config::{Config, StorageMode};
use r2::R2Binding;
use s3::S3Storage;

pub(crate) use sealdrop_protocol::sweep::object_key;

/// Storage failed or gave no answer. The cause is logged where it happened; the
/// session only needs to know that nothing is known to have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StorageFailure;

impl StorageFailure {
    /// Logs `error` with what was being done (any object key in it redacted).
    pub fn logged(context: &str, error: impl Display) -> Self {
        console_error!(
            "storage error while {context}: {}",
            redact_keys(&error.to_string())
        );
        StorageFailure
    }
}

/// `text` with every `files/<id>` key shortened to `files/…`: storage's error texts
/// name the keys they failed on, and logs keep no file id.
pub(crate) fn redact_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(object_key_prefix()) {
        let (before, after) = rest.split_at(at + object_key_prefix().len());
        out.push_str(before);
        let id_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        if id_len > 0 {
            out.push('…');
        }
        rest = &after[id_len..];
    }
    out.push_str(rest);
    out
}

fn object_key_prefix() -> &'static str {
    sealdrop_protocol::sweep::OBJECT_KEY_PREFIX
}

/// Why a call on the multipart upload did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UploadFailure {
    /// Storage has no such multipart upload: it was completed or aborted.
    Gone,
    /// Anything else (logged where it happened).
    Failed,
}

impl From<StorageFailure> for UploadFailure {
    fn from(_: StorageFailure) -> Self {
        UploadFailure::Failed
    }
}

/// What an abort found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aborted {
    /// Storage aborted the upload now: no completion of it can land any more.
    Now,
    /// Storage no longer had the upload (completed, or aborted before).
    AlreadyGone,
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
    /// Storage has no such upload (an earlier try completed it, or it was aborted).
    Gone,
    /// Anything else, no answer included (it may complete later still).
    Failed,
}

impl From<StorageFailure> for CompleteFailure {
    fn from(_: StorageFailure) -> Self {
        CompleteFailure::Failed
    }
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
    ) -> Result<Vec<ListedPart>, UploadFailure>;
    /// Completes the upload with `parts`, in order, ETags as storage gave them.
    async fn complete(
        &self,
        file_id: &FileId,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), CompleteFailure>;
    /// Whether the completed object of `file_id` exists.
    async fn object_exists(&self, file_id: &FileId) -> Result<bool, StorageFailure>;
    /// Aborts the upload, or finds it gone.
    async fn abort(&self, file_id: &FileId, upload_id: &str) -> Result<Aborted, StorageFailure>;
    /// Deletes the object of `file_id`; a missing object counts as deleted.
    async fn delete_object(&self, file_id: &FileId) -> Result<(), StorageFailure>;
    /// Where to GET (with `Range`) the record section of a completed file.
    fn download_url(&self, file_id: &FileId, now_ms: u64) -> DownloadUrl;
}

/// The configured provider, with the timeout that bounds each of its calls.
pub(crate) struct Storage {
    provider: Configured,
    timeout_ms: u64,
}

enum Configured {
    /// `r2-binding`: worker-signed URLs, part bodies piped by the worker into R2.
    R2Binding(R2Binding),
    /// `s3`: presigned URLs, part bodies straight from the client into the bucket.
    S3(S3Storage),
}

/// Calls the configured provider's `$method` with `$args` (`async`: a future of its
/// answer).
macro_rules! each {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match &$self.provider {
            Configured::R2Binding(p) => p.$method($($arg),*),
            Configured::S3(p) => p.$method($($arg),*),
        }
    };
    (async $self:ident.$method:ident($($arg:expr),*)) => {
        async {
            match &$self.provider {
                Configured::R2Binding(p) => p.$method($($arg),*).await,
                Configured::S3(p) => p.$method($($arg),*).await,
            }
        }
    };
}

impl Storage {
    /// The provider `config` names, bound to this environment.
    pub fn from_config(env: &Env, config: &Config) -> Result<Self, ApiError> {
        let provider = match &config.storage_mode {
            StorageMode::R2Binding => Configured::R2Binding(R2Binding::new(env, config)?),
            StorageMode::S3(settings) => S3Storage::new(settings, config)
                .map(Configured::S3)
                .map_err(|e| crate::http::internal("setting up the S3 provider", e))?,
        };
        Ok(Self {
            provider,
            timeout_ms: config.storage_timeout_ms,
        })
    }

    /// The R2-binding provider, which also serves the `/blob/...` URLs it signs; `None`
    /// for a provider whose URLs point elsewhere.
    pub fn r2_binding(&self) -> Option<&R2Binding> {
        match &self.provider {
            Configured::R2Binding(r2) => Some(r2),
            Configured::S3(_) => None,
        }
    }

    /// `call`, or a logged failure once it has taken longer than the timeout.
    async fn bounded<T, E: From<StorageFailure>>(
        &self,
        context: &str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        with_timeout(self.timeout_ms, call)
            .await
            .unwrap_or_else(|| Err(StorageFailure::logged(context, "no answer in time").into()))
    }
}

/// `future`'s output, or `None` once `ms` have passed first.
pub(crate) async fn with_timeout<T>(ms: u64, future: impl Future<Output = T>) -> Option<T> {
    let timer = Delay::from(Duration::from_millis(ms));
    match select(Box::pin(future), Box::pin(timer)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

impl Provider for Storage {
    fn name(&self) -> &'static str {
        each!(self.name())
    }
    async fn create_upload(&self, file_id: &FileId) -> Result<String, StorageFailure> {
        self.bounded(
            "creating a multipart upload",
            each!(async self.create_upload(file_id)),
        )
        .await
    }
    fn part_url(
        &self,
        file_id: &FileId,
        upload_id: &str,
        part: u32,
        size: u64,
        now_ms: u64,
    ) -> PartUrl {
        each!(self.part_url(file_id, upload_id, part, size, now_ms))
    }
    async fn list_parts(
        &self,
        file_id: &FileId,
        upload_id: &str,
        recorded: Vec<ListedPart>,
    ) -> Result<Vec<ListedPart>, UploadFailure> {
        let call = each!(async self.list_parts(file_id, upload_id, recorded));
        self.bounded("listing parts", call).await
    }
    async fn complete(
        &self,
        file_id: &FileId,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), CompleteFailure> {
        let call = each!(async self.complete(file_id, upload_id, parts));
        self.bounded("completing a multipart upload", call).await
    }
    async fn object_exists(&self, file_id: &FileId) -> Result<bool, StorageFailure> {
        self.bounded(
            "looking for an object",
            each!(async self.object_exists(file_id)),
        )
        .await
    }
    async fn abort(&self, file_id: &FileId, upload_id: &str) -> Result<Aborted, StorageFailure> {
        let call = each!(async self.abort(file_id, upload_id));
        self.bounded("aborting a multipart upload", call).await
    }
    async fn delete_object(&self, file_id: &FileId) -> Result<(), StorageFailure> {
        self.bounded(
            "deleting an object",
            each!(async self.delete_object(file_id)),
        )
        .await
    }
    fn download_url(&self, file_id: &FileId, now_ms: u64) -> DownloadUrl {
        each!(self.download_url(file_id, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_name_no_key() {
        assert_eq!(
            redact_keys("no such key files/AAAAAAAAAAAAAAAAAAAAAA in bucket b"),
            "no such key files/… in bucket b"
        );
        assert_eq!(
            redact_keys("files/A-_b, files/B and files/"),
            "files/…, files/… and files/"
        );
        assert_eq!(redact_keys("nothing to hide"), "nothing to hide");
    }
}
