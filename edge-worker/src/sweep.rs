//! The scheduled sweep (`[triggers] crons` in wrangler.toml; locally, a GET of
//! `/cdn-cgi/handler/scheduled` under `wrangler dev`): aborts multipart uploads in storage
//! that no session will ever finish. The rules are `protocol::sweep`'s; this module lists,
//! asks and aborts, within one invocation's subrequest budget, and logs what it did.
//!
//! In `r2-binding` mode there is nothing to do: the binding cannot list multipart
//! uploads, and R2 aborts every upload left unfinished for 7 days by itself (sessions
//! live 6 days, so that never cuts an open one short).

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::sweep::{
    Budget, MAX_LIST_PAGES, OBJECT_KEY_PREFIX, Triage, rotation, should_abort, triage,
};
use worker::{Env, ScheduleContext, ScheduledEvent, console_error, console_log, event};

use crate::config::{Config, StorageMode};
use crate::now_ms;
use crate::session::client::SessionStub;
use crate::storage::s3::S3Storage;
use crate::storage::{StorageFailure, redact_keys};

/// What one run did, for the log.
#[derive(Default)]
struct Report {
    /// Uploads listed under `files/`.
    listed: usize,
    /// Old uploads whose session was asked about.
    checked: usize,
    /// Aborted: no session owns them.
    aborted: usize,
    /// Old, but a session may still use them.
    kept: usize,
    /// Old, left for the next run (the budget ran out).
    deferred: usize,
    /// Asking or aborting failed (the next run tries again).
    failed: usize,
}

/// Entry point of the cron trigger.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match sweep(&env).await {
        Ok(Some(r)) => console_log!(
            "sweep: {} uploads listed, {} old ones checked: {} aborted, {} kept, {} failed, {} left for the next run",
            r.listed,
            r.checked,
            r.aborted,
            r.kept,
            r.failed,
            r.deferred
        ),
        Ok(None) => console_log!(
            "sweep: nothing to do in r2-binding mode (R2 aborts unfinished uploads after 7 days)"
        ),
        Err(e) => console_error!("sweep failed ({}): {}", e.code, e.message),
    }
}

/// One run: list old uploads under `files/`, ask each one's session, abort the orphans.
/// A failure on one upload is logged and the run goes on; listing failures end it.
async fn sweep(env: &Env) -> Result<Option<Report>, ApiError> {
    let config = Config::from_env(env)?;
    let StorageMode::S3(settings) = &config.storage_mode else {
        return Ok(None);
    };
    let s3 = S3Storage::new(settings, &config)
        .map_err(|e| StorageFailure::logged("setting up the S3 provider", e))?;
    let now = now_ms();
    let (uploads, pages) = s3
        .uploads(OBJECT_KEY_PREFIX, MAX_LIST_PAGES, now)
        .await
        .map_err(|e| StorageFailure::logged("listing multipart uploads", e))?;
    let mut report = Report {
        listed: uploads.len(),
        ..Report::default()
    };
    let old: Vec<_> = uploads
        .into_iter()
        .filter_map(|upload| {
            match triage(&upload.key, upload.initiated_ms, now, config.upload_ttl_ms) {
                Triage::AskSession(file_id) => Some((file_id, upload)),
                Triage::NotOurs | Triage::TooYoung => None,
            }
        })
        .collect();
    let mut budget = Budget::after_listing(pages);
    let start = rotation(old.len(), now);
    for (file_id, upload) in old[start..].iter().chain(&old[..start]) {
        if !budget.can_ask() {
            report.deferred += 1;
            continue;
        }
        report.checked += 1;
        budget.spend();
        let owner = match SessionStub::get(env, file_id)?
            .owner(&upload.upload_id)
            .await
        {
            Ok(owner) => owner,
            Err(e) => {
                console_error!("sweep: asking an upload's session: {}", e.code);
                report.failed += 1;
                continue;
            }
        };
        if !should_abort(owner) {
            report.kept += 1;
            continue;
        }
        budget.spend();
        match s3.abort_upload(&upload.key, &upload.upload_id, now).await {
            Ok(_) => report.aborted += 1,
            Err(e) => {
                console_error!("sweep: aborting an upload: {}", redact_keys(&e.to_string()));
                report.failed += 1;
            }
        }
    }
    Ok(Some(report))
}
