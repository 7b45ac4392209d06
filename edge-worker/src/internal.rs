//! Calls between the worker and its Durable Objects, and between objects: a JSON body
//! to a path, a JSON answer or the object's own API error back (with `Retry-After`).
//!
//! Every object answers its calls with what the client will see, so a refusal
//! travels back as the `ApiError` it was, unchanged. Objects are addressed by name;
//! addressing one creates nothing until it writes storage.

use sealdrop_protocol::api_error::{ApiError, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::wasm_bindgen::JsValue;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

use crate::http::OrApiError as _;

/// A handle on one Durable Object.
pub(crate) struct ObjectStub {
    stub: Stub,
    /// What the object is, for logs.
    what: &'static str,
}

impl ObjectStub {
    /// The object named `name` in the namespace bound as `binding`.
    pub fn get(env: &Env, binding: &str, name: &str, what: &'static str) -> Result<Self, ApiError> {
        let stub = env
            .durable_object(binding)
            .and_then(|ns| ns.id_from_name(name)?.get_stub())
            .or_internal(what)?;
        Ok(Self { stub, what })
    }

    /// Sends `method path` with `headers` and `body`; answers the object's response
    /// as it is (it is already an API answer, errors included).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: Headers,
        body: Option<JsValue>,
    ) -> Result<Response, ApiError> {
        let mut init = RequestInit::new();
        init.with_method(method)
            .with_headers(headers)
            .with_body(body);
        let url = format!("https://object{path}");
        let req = Request::new_with_init(&url, &init).or_internal(self.what)?;
        self.stub
            .fetch_with_request(req)
            .await
            .or_internal(self.what)
    }

    /// `POST path` with a JSON body; a JSON answer (`null` for an empty one), or the
    /// object's refusal as the `ApiError` it sent.
    pub async fn json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let json = serde_json::to_string(body).or_internal(self.what)?;
        let headers = Headers::new();
        headers
            .set("content-type", "application/json")
            .or_internal(self.what)?;
        let answer = self
            .call(Method::Post, path, headers, Some(json.into()))
            .await?;
        read_answer(answer, self.what).await
    }
}

/// A JSON answer, or the API error an object answered.
pub(crate) async fn read_answer<T: DeserializeOwned>(
    mut answer: Response,
    what: &str,
) -> Result<T, ApiError> {
    let status = answer.status_code();
    let text = answer.text().await.or_internal(what)?;
    if (200..300).contains(&status) {
        let text = if text.is_empty() { "null" } else { &text };
        return serde_json::from_str(text).or_internal(what);
    }
    let mut error: ApiError = serde_json::from_str::<ErrorBody>(&text)
        .or_internal(what)?
        .into();
    error.retry_after = answer
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok());
    Err(error)
}
