//! The worker's side of the internal room calls (`calls`): addressing a room's object
//! and calling it, its refusals parsed back into the [`ApiError`]s they are.

use sealdrop_protocol::api_error::ApiError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::{Env, Headers, Method, Request, RequestInit, Stub};

use super::BINDING;
use super::calls::RoomCall;
use crate::http::{OrApiError as _, object_answer};

/// The worker's handle on one room's object.
pub(crate) struct RoomStub {
    stub: Stub,
}

impl RoomStub {
    /// The object of room `room_id` (a valid room id: checked by the caller).
    pub fn get(env: &Env, room_id: &str) -> Result<Self, ApiError> {
        let stub = env
            .durable_object(BINDING)
            .and_then(|ns| ns.id_from_name(room_id)?.get_stub())
            .or_internal("addressing a room")?;
        Ok(Self { stub })
    }

    /// Makes `call` with a JSON body: its JSON answer, or the room's refusal.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        call: RoomCall,
        body: &B,
    ) -> Result<T, ApiError> {
        let json = serde_json::to_string(body).or_internal("building a room call")?;
        let headers = Headers::new();
        headers
            .set("content-type", "application/json")
            .or_internal("building a room call")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(json.into()));
        let url = format!("https://room{}", call.path());
        let req = Request::new_with_init(&url, &init).or_internal("building a room call")?;
        let answer = self
            .stub
            .fetch_with_request(req)
            .await
            .or_internal("calling a room")?;
        object_answer(answer, "room").await
    }
}
