//! Removing a room's files from storage: each file's upload session deletes its object
//! and everything it keeps (`Op::RoomDelete`), one file after the other.

use sealdrop_protocol::api_error::ApiErrorCode;
use sealdrop_protocol::ids::FileId;
use worker::{Env, Headers, console_error};

use crate::session::calls::Op;
use crate::session::client::SessionStub;

/// Deletes `file_ids` through their sessions: the ids storage no longer holds (deleted
/// now, or gone before). The others stay; their failure is logged.
pub(crate) async fn delete_files(env: &Env, file_ids: &[String]) -> Vec<String> {
    let mut deleted = Vec::new();
    for id in file_ids {
        let Ok(file_id) = FileId::parse(id) else {
            // Not a session's id: nothing in storage to delete.
            deleted.push(id.clone());
            continue;
        };
        let gone = match SessionStub::get(env, &file_id) {
            Ok(session) => match session.call(Op::RoomDelete, Headers::new(), None).await {
                Ok(answer) if answer.status_code() == 204 => true,
                Ok(answer) => {
                    console_error!("room: deleting file {id} answered {}", answer.status_code());
                    false
                }
                Err(e) => {
                    console_error!("room: deleting file {id}: {e}");
                    e.code == ApiErrorCode::UploadNotFound
                }
            },
            Err(e) => {
                console_error!("room: addressing file {id}: {e}");
                false
            }
        };
        if gone {
            deleted.push(id.clone());
        }
    }
    deleted
}
