//! `/api/files/{fileId}`: the record of a completed file, from its session object.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use worker::{Env, Request, Response};

use crate::upload_session::{Op, SessionStub, call_headers};

/// `GET /api/files/{fileId}`: public (the id is in the link); `404 file_not_found`
/// unless the upload is completed.
pub(crate) async fn get(
    req: &Request,
    env: &Env,
    file_id: &FileId,
    origin: &str,
) -> Result<Response, ApiError> {
    let headers = call_headers(req, origin)?;
    SessionStub::get(env, file_id)?
        .call(Op::File, headers, None)
        .await
}
