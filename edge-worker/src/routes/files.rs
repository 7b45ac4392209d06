//! `/api/files/{fileId}`: the record of a completed file, from its session object.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use worker::{Env, Headers, Response};

use crate::session::calls::Op;
use crate::session::client::SessionStub;

/// `GET /api/files/{fileId}`: public (the id is in the link); `404 file_not_found`
/// unless the upload is completed.
pub(crate) async fn get(env: &Env, file_id: &FileId) -> Result<Response, ApiError> {
    SessionStub::get(env, file_id)?
        .call(Op::File, Headers::new(), None)
        .await
}
