//! Offline members' webhooks, through a Cloudflare Queue (docs/PROTOCOL.md, Offline
//! members), so a slow or failing receiver never delays a room.
//!
//! A room puts one [`Delivery`] per member on the queue ([`enqueue`]); the worker's
//! queue consumer ([`consume`]) POSTs each, signed (`protocol::room::webhook`). A failed
//! attempt is acknowledged and the next attempt is put back on the queue with the
//! backoff delay and its number, so the schedule and the count are ours, not the
//! platform's; after the last attempt the room records the failure in its audit log.
//! Should the queue refuse the next attempt, the platform's own retry re-delivers this
//! one.

use std::time::Duration;

use futures_util::future::{Either, select};
use sealdrop_protocol::room::files::Notification;
use sealdrop_protocol::room::webhook::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use serde::{Deserialize, Serialize};
use worker::{
    Date, Delay, Env, Fetch, Headers, Message, MessageBatch, MessageBuilder, MessageExt as _,
    Method, Request, RequestInit, console_error, console_log,
};

use super::calls::{NotifyFailedCall, RoomCall};
use super::client::RoomStub;
use super::config::WebhookConfig;

/// The `wrangler.toml` binding of the queue (producer and consumer).
pub(crate) const QUEUE_BINDING: &str = "NOTIFY_QUEUE";
/// How long a receiver has to answer one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One attempt to deliver a notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Delivery {
    pub notification: Notification,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// Puts a room's notifications on the queue. A failure is logged, not raised: a lost
/// notification must not fail the room event that caused it.
pub(crate) async fn enqueue(env: &Env, notifications: Vec<Notification>) {
    let queue = match env.queue(QUEUE_BINDING) {
        Ok(queue) => queue,
        Err(e) => {
            console_error!("notify: no queue {QUEUE_BINDING}: {e}");
            return;
        }
    };
    for notification in notifications {
        let delivery = Delivery {
            notification,
            attempt: 1,
        };
        if let Err(e) = queue.send(delivery).await {
            console_error!("notify: could not queue a notification: {e}");
        }
    }
}

/// The queue consumer: one POST per delivery.
pub(crate) async fn consume(batch: MessageBatch<Delivery>, env: &Env) -> worker::Result<()> {
    let config = match WebhookConfig::from_env(env) {
        Ok(Some(config)) => config,
        Ok(None) => {
            // Queued while a webhook was configured, then switched off: drop them.
            batch.ack_all();
            return Ok(());
        }
        Err(_) => {
            // Misconfigured (logged): let the platform retry once it is fixed.
            batch.retry_all();
            return Ok(());
        }
    };
    for message in batch.messages()? {
        deliver(&message, &config, env).await;
    }
    Ok(())
}

async fn deliver(message: &Message<Delivery>, config: &WebhookConfig, env: &Env) {
    let delivery = message.body();
    let n = &delivery.notification;
    match post(config, n).await {
        Ok(()) => {
            console_log!(
                "notify: delivered to {} about room {} (attempt {})",
                n.user_id,
                n.room_id,
                delivery.attempt
            );
            message.ack();
        }
        Err(why) => {
            let next =
                webhook::retry_delay_s(delivery.attempt, config.retry_base_s, config.max_attempts);
            console_log!(
                "notify: attempt {} for {} in room {} failed ({why})",
                delivery.attempt,
                n.user_id,
                n.room_id
            );
            match next {
                Some(delay) => {
                    let again = Delivery {
                        notification: n.clone(),
                        attempt: delivery.attempt + 1,
                    };
                    let queued = match env.queue(QUEUE_BINDING) {
                        Ok(queue) => queue
                            .send(MessageBuilder::new(again).delay_seconds(delay).build())
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match queued {
                        Ok(()) => message.ack(),
                        Err(e) => {
                            console_error!("notify: could not queue the next attempt: {e}");
                            message.retry();
                        }
                    }
                }
                None => {
                    let call = NotifyFailedCall {
                        user_id: n.user_id.clone(),
                        kind: n.kind,
                    };
                    let recorded = match RoomStub::get(env, &n.room_id) {
                        Ok(room) => room
                            .call::<_, serde_json::Value>(RoomCall::NotifyFailed, &call)
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    };
                    match recorded {
                        Ok(()) => message.ack(),
                        Err(e) => {
                            console_error!("notify: recording a failed webhook: {e}");
                            message.retry();
                        }
                    }
                }
            }
        }
    }
}

/// One signed POST; `Err` unless the receiver answered 2xx within the timeout.
async fn post(config: &WebhookConfig, n: &Notification) -> Result<(), String> {
    let body = webhook::body(n);
    let now_s = Date::now().as_millis() / 1000;
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|e| e.to_string());
    set("content-type", "application/json")?;
    set(TIMESTAMP_HEADER, &now_s.to_string())?;
    set(
        SIGNATURE_HEADER,
        &webhook::signature(config.secret.as_bytes(), now_s, &body),
    )?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let request = Request::new_with_init(&config.url, &init).map_err(|e| e.to_string())?;
    let fetch = Fetch::Request(request);
    let send = Box::pin(fetch.send());
    let timeout = Box::pin(Delay::from(ATTEMPT_TIMEOUT));
    match select(send, timeout).await {
        Either::Left((Ok(response), _)) if (200..300).contains(&response.status_code()) => Ok(()),
        Either::Left((Ok(response), _)) => Err(format!("answered {}", response.status_code())),
        Either::Left((Err(e), _)) => Err(e.to_string()),
        Either::Right(_) => Err("no answer within 10 s".into()),
    }
}
