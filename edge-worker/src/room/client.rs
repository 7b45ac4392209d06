//! The worker's side of the internal room calls (`calls`): addressing a room's object
//! and calling it, its refusals parsed back into the [`ApiError`]s they are.

use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::ids::FileId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::Env;

use super::BINDING;
use super::calls::{FileCall, RoomCall};
use crate::internal::ObjectStub;

/// The worker's handle on one room's object.
pub(crate) struct RoomStub {
    stub: ObjectStub,
}

impl RoomStub {
    /// The object of room `room_id` (a valid room id: checked by the caller).
    pub fn get(env: &Env, room_id: &str) -> Result<Self, ApiError> {
        Ok(Self {
            stub: ObjectStub::get(env, BINDING, room_id, "room")?,
        })
    }

    /// Makes `call` with a JSON body: its JSON answer, or the room's refusal.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        call: RoomCall,
        body: &B,
    ) -> Result<T, ApiError> {
        self.stub.json(call.path(), body).await
    }

    /// Tells the room what became of one of its files (`Completed`, `Cancelled`,
    /// `Deleted`).
    pub async fn file_event(&self, call: RoomCall, file_id: &FileId) -> Result<(), ApiError> {
        let body = FileCall {
            file_id: file_id.as_str().to_owned(),
        };
        let _: serde_json::Value = self.call(call, &body).await?;
        Ok(())
    }
}
