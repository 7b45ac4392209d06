//! sealdrop's Cloudflare Worker: the HTTP API (`docs/API.md`) in front of upload
//! sessions kept in Durable Objects and files kept in storage.
//!
//! A thin shell: every rule (validation, plans, the session's state machine, signed
//! URLs, ranges, error codes) is `sealdrop-protocol`'s; this crate routes requests,
//! carries bytes, and keeps state where the platform keeps it.
//!
//! - `routes`: which request is which call; `uploads`, `files`, `blob` handle them.
//! - `session`: the `UploadSession` Durable Object, one per file id, which carries out
//!   the session machine's storage steps (and the file's deletion), and the worker's
//!   calls to it.
//! - `share`: the `Share` Durable Object, one per share link.
//! - `account`: the `Account` Durable Object, one per user or anonymous client: quota
//!   and create rate.
//! - `storage`: the storage-provider seam: `r2-binding` (`storage::r2`) and `s3`
//!   (`storage::s3`: presigned URLs, the worker's own calls through `fetch`).
//! - `sweep`: the cron trigger that aborts multipart uploads no session owns.
//! - `http`: JSON and error answers, CORS, `HEAD`, bounded body reads; `internal`:
//!   calls to objects; `caller`: JWT users; `sql`: SQLite values; `config`: vars,
//!   secret.
//! - `room`: the `Room` Durable Object, one per room, hosting its WebSockets
//!   (`/api/rooms/{roomId}/ws`, `routes::rooms`); `routes::dev`: dev tokens.

mod account;
mod caller;
mod config;
mod http;
mod internal;
// `#[durable_object]` generates undocumented `pub` glue here too.
#[allow(missing_docs)]
mod room;
mod routes;
mod session;
mod share;
mod sql;
mod storage;
mod sweep;

pub use account::object::Account;
pub use room::Room;
pub use session::object::UploadSession;
pub use share::object::Share;

use room::notify::Delivery;

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::wire::Limits;
use serde_json::json;
use worker::{Env, MessageBatch, Method, Request, Response, Result, event};

use crate::config::Config;
use crate::routes::Route;
use crate::session::calls::Op;
use crate::storage::{Provider as _, Storage};

/// Entry point. `wrangler.toml` runs the worker first for `/api/*` and `/blob/*`;
/// any other path that reaches it is handed to the static app (`ASSETS`).
#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: worker::Context) -> Result<Response> {
    let path = req.path();
    if path.starts_with("/r/") {
        // A room link: the room page (the key stays in the fragment, unseen here).
        return env
            .assets("ASSETS")?
            .fetch("http://assets/room", None)
            .await;
    }
    if !(path.starts_with("/api/") || path.starts_with("/blob/")) {
        return env.assets("ASSETS")?.fetch_request(req).await;
    }
    if let Some(room_id) = routes::rooms::ws_path(&path) {
        // Not through `with_cors`: a 101 answer carries the socket and must pass as is.
        let room_id = room_id.to_owned();
        return match routes::rooms::websocket(req, &env, &room_id).await {
            Ok(response) => Ok(response),
            Err(e) => http::with_cors(http::error_response(&e)?),
        };
    }
    if path == "/api/dev/token" && routes::dev::enabled(&env) {
        let response = match req.method() {
            worker::Method::Post => http::respond(routes::dev::token(&mut req, &env).await)?,
            worker::Method::Options => return http::preflight(),
            _ => http::error_response(&ApiError::method_not_allowed())?,
        };
        return http::with_cors(response);
    }
    let method = req.method();
    let route = match Route::parse(&method, &path) {
        Ok(route) => route,
        Err(no_route) => {
            let response = http::error_response(&no_route.error)?;
            if let Some(allow) = no_route.allow {
                response.headers().set("allow", allow)?;
            }
            return http::with_cors(response);
        }
    };
    // The blob route answers HEAD itself (without reading the object); every other GET
    // route's answer loses its body here.
    let strip_body = method == Method::Head && !matches!(route, Route::GetBlob(_));
    let response = match route {
        Route::Preflight => return http::preflight(),
        route => http::respond(handle(route, &mut req, &env).await)?,
    };
    let response = match strip_body {
        true => http::head_of(response).await?,
        false => response,
    };
    http::with_cors(response)
}

/// The queue consumer: offline members' webhooks (`room::notify`).
#[event(queue)]
async fn queue(batch: MessageBatch<Delivery>, env: Env, _ctx: worker::Context) -> Result<()> {
    room::notify::consume(batch, &env).await
}

/// Answers one API call.
async fn handle(
    route: Route,
    req: &mut Request,
    env: &Env,
) -> std::result::Result<Response, ApiError> {
    if route == Route::Health {
        return http::json(200, &json!({ "ok": true }));
    }
    // Every other call needs the configuration: refuse them all when it is unusable.
    let config = Config::from_env(env)?;
    // Ids this server never signed reach no object: no storage is made by probing.
    route.check_signed(&config.signer)?;
    match route {
        // Answered before the configuration is read.
        Route::Preflight | Route::Health => Err(ApiError::not_found()),
        Route::Limits => {
            let provider = Storage::from_config(env, &config)?;
            http::json(200, &Limits::new(provider.name(), &config.limits))
        }
        Route::CreateUpload => routes::uploads::create(req, env, &config).await,
        Route::UploadStatus(id) => routes::uploads::forward(req, env, &id, Op::Status).await,
        Route::PartUrls(id) => routes::uploads::forward(req, env, &id, Op::PartUrls).await,
        Route::Complete(id) => routes::uploads::forward(req, env, &id, Op::Complete).await,
        Route::Abort(id) => routes::uploads::forward(req, env, &id, Op::Abort).await,
        Route::FileRecord(id) => routes::files::forward(req, env, &id, Op::File).await,
        Route::Processing(id) => routes::processing::report(req, env, &id).await,
        Route::RoomFile(room, id) => routes::rooms::file(req, env, &room, &id, Op::RoomFile).await,
        Route::RoomThumbnail(room, id) => {
            routes::rooms::file(req, env, &room, &id, Op::RoomThumbnail).await
        }
        Route::PutThumbnail(id) => routes::uploads::forward(req, env, &id, Op::PutThumbnail).await,
        Route::DeleteFile(id) => routes::files::forward(req, env, &id, Op::DeleteFile).await,
        Route::ListShares(id) => routes::files::forward(req, env, &id, Op::Shares).await,
        Route::CreateShare(id) => routes::files::create_share(req, env, &id).await,
        Route::UpdateShare(id, token) => {
            routes::files::change_share(req, env, &id, token, true).await
        }
        Route::RevokeShare(id, token) => {
            routes::files::change_share(req, env, &id, token, false).await
        }
        Route::ShareInfo(token) => routes::shares::info(req, env, &token).await,
        Route::OpenDownload(token) => routes::shares::open(req, env, &token).await,
        Route::DownloadUrl(token, download) => routes::shares::url(env, &token, download).await,
        Route::CompleteDownload(token, download) => {
            routes::shares::close(req, env, &token, download, true).await
        }
        Route::AbandonDownload(token, download) => {
            routes::shares::close(req, env, &token, download, false).await
        }
        Route::PutPart(id, part) => routes::blob::put_part(req, env, &config, id, part).await,
        Route::GetBlob(id) => routes::blob::get(req, env, &config, id).await,
    }
}

/// The clock: ms since the epoch (the protocol takes time as an argument).
pub(crate) fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}
