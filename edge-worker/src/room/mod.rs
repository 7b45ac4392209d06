//! The `Room` Durable Object (binding `ROOMS`): one object per room id, named by it, the
//! single authority on one room. It hosts the room's WebSockets with the Hibernation
//! API, so a room with nobody talking costs nothing: the platform keeps the sockets
//! open, answers `ping` with `pong` by itself (an auto-response, which does not wake the
//! object), and evicts the object from memory.
//!
//! In reading order: the object's entry points (a socket arrives, a frame, a close, the
//! alarm), then waking up, then carrying out the machine's actions.
//!
//! The rules are `protocol::room::machine::Room`'s; this object only feeds it and does
//! what it says. What survives eviction is exactly what the machine is rebuilt from:
//! each socket's attachment (who it is, whether it joined) and the room's SQLite
//! (`sql`). A woken object calls `Room::wake`, which reads both, and logs one line
//! (`room <id>: woke with N sockets`) so operators (and the hibernation test) see it.
//!
//! Every storage write of one event is applied in one `transactionSync`, before
//! anything is sent; if it fails, the machine (now ahead of storage) is dropped, the
//! sender gets `error {code: internal}`, and the next event rebuilds it from storage.
//! Messages are batched by the machine (`Action::FlushLater`): the event that opens a
//! batch waits out the write window (`ROOM_WRITE_WINDOW_MS`) while the messages that
//! arrive meanwhile join it, then writes them all in one transaction (one commit) and
//! sends what waited for it. A failed batch write answers nobody: the senders' clients
//! time out and resend. Presence is batched the same way (`Action::PresenceLater`): the
//! join, leave or close that opens a presence window waits it out
//! (`ROOM_PRESENCE_WINDOW_MS`), then the room tells everyone what changed in one frame.
//!
//! Besides its sockets the object answers the worker's internal calls (`calls`: admit
//! an upload, storage completed or aborted one, may a member read a file, a processor's
//! report, a webhook that failed for good), and carries out the two actions that leave
//! the object: deleting removed files through their upload sessions, and putting
//! offline members' notifications on the queue (`notify`).

pub(crate) mod calls;
pub(crate) mod client;
mod config;
pub(crate) mod notify;
mod removal;
mod sql;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

pub(crate) use config::{RoomConfig, dev_login};
use sealdrop_protocol::api_error::ApiError;
use sealdrop_protocol::room::error::RoomError;
use sealdrop_protocol::room::files::Notification;
use sealdrop_protocol::room::frame::error_frame;
use sealdrop_protocol::room::ids::{ConnId, valid_room_id};
use sealdrop_protocol::room::machine::{Action, AdmitUpload, Answered, Room as RoomMachine};
use sealdrop_protocol::room::store::{ConnState, StoreError, Write};
use serde::de::DeserializeOwned;
use worker::js_sys::{Date as JsDate, Function, JsString, Number, Reflect};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::prelude::*;
use worker::worker_sys::WebSocketRequestResponsePair;
use worker::{
    Delay, DurableObject, Env, Headers, Request, Response, ScheduledTime, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair, console_error, console_log, durable_object,
};

use self::calls::{AccessCall, AdmitCall, FileCall, NotifyFailedCall, ProcessingCall, RoomCall};
use self::sql::SqlStore;
use crate::http::{self, OrApiError as _, header, json};
use crate::now_ms;

/// The `wrangler.toml` binding of the namespace.
pub(crate) const BINDING: &str = "ROOMS";
/// The subprotocol a client offers (and the room answers with).
pub(crate) const SUBPROTOCOL: &str = "sealdrop.v1";
/// The prefix of the subprotocol that carries a token: `sealdrop.token.<jwt>`.
const TOKEN_SUBPROTOCOL: &str = "sealdrop.token.";
/// What a client sends to keep its socket alive, and what the platform answers.
const PING: &str = "ping";
const PONG: &str = "pong";

/// Calls `target[name](...args)`: for the two platform methods workers-rs 0.8 does not
/// bind, `storage.transactionSync(fn)` (runs `fn`, rolling back every SQL write it made
/// if it throws) and `state.getWebSocketAutoResponseTimestamp(ws)` (when the platform
/// last answered this socket's `ping`, or `null`).
fn call_method(target: &JsValue, name: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let method: Function = Reflect::get(target, &JsValue::from_str(name))?.dyn_into()?;
    match args {
        [a] => method.call1(target, a),
        _ => method.call0(target),
    }
}

/// The room object.
#[durable_object]
pub struct Room {
    state: State,
    env: Env,
    /// The machine and the sockets, while the object is in memory; `None` after a failed
    /// write (memory must never run ahead of storage).
    live: RefCell<Option<Live>>,
}

/// A woken room: its machine, its storage (tables checked once per wake) and its
/// sockets by connection id.
struct Live {
    machine: RoomMachine,
    store: SqlStore,
    sockets: HashMap<ConnId, WebSocket>,
    /// How long a batch of messages waits for more before it is written.
    write_window_ms: u64,
    /// How long a presence window stays open.
    presence_window_ms: u64,
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        // The ping auto-response lives in the platform, not in this instance: set it each
        // time the object is constructed (cheap, and it survives hibernation).
        match WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => console_error!("room: ping auto-response: {e:?}"),
        }
        Self {
            state,
            env,
            live: RefCell::new(None),
        }
    }

    /// The WebSocket upgrade, forwarded by the worker (`GET /api/rooms/{roomId}/ws`),
    /// or one of the worker's internal calls.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        match RoomCall::parse(&req.path()) {
            Some(call) => http::respond(self.call(call, &mut req).await),
            None => http::respond(self.accept(&req).await),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let Some(id) = conn_state(&ws).map(|s| s.id) else {
            close_unknown(&ws);
            return Ok(());
        };
        self.run(&ws, |machine, store, now| match &message {
            WebSocketIncomingMessage::String(text) => machine.handle_text(now, id, text, store),
            WebSocketIncomingMessage::Binary(_) => machine.handle_binary(now, id),
        })
        .await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        // Complete the closing handshake at once (the client waits for it).
        let _ = ws.close(Some(1000), Some("closed"));
        self.closed(&ws).await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> worker::Result<()> {
        console_log!("room: socket error: {error}");
        self.closed(&ws).await;
        Ok(())
    }

    /// Authentication deadlines, the idle check and pruning, whichever came due.
    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.wake(None).await {
            console_error!("room alarm: could not wake ({}); it will be retried", e.0);
            return Err(worker::Error::RustError("room alarm failed".into()));
        }
        let pings = self.ping_times();
        let actions = {
            let mut live = self.live.borrow_mut();
            let Some(live) = live.as_mut() else {
                return Response::empty();
            };
            live.machine
                .handle_alarm(now_ms(), |c| pings.get(&c).copied(), &live.store)
        };
        self.execute(None, actions).await;
        Response::empty()
    }
}

impl Room {
    // -----------------------------------------------------------------------------
    // Entry points
    // -----------------------------------------------------------------------------

    /// Accepts a WebSocket: answers `101` with the client's end, keeps the server's end
    /// in the platform's hibernation set, and tells the machine.
    async fn accept(&self, req: &Request) -> Result<Response, ApiError> {
        let upgrade = header(req, "upgrade").unwrap_or_default();
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return Err(crate::routes::rooms::upgrade_required());
        }
        self.wake(None)
            .await
            .map_err(|e| http::internal("waking a room", e))?;
        let pair = WebSocketPair::new().or_internal("making a WebSocket pair")?;
        let offered = header(req, "sec-websocket-protocol").unwrap_or_default();
        let protocols: Vec<&str> = offered.split(',').map(str::trim).collect();
        let token = protocols
            .iter()
            .find_map(|p| p.strip_prefix(TOKEN_SUBPROTOCOL));
        let actions = {
            let mut live = self.live.borrow_mut();
            let live = live
                .as_mut()
                .ok_or_else(|| http::internal("accepting a socket", "the room is not loaded"))?;
            let id = loop {
                let id = ConnId(random_u64()?);
                if !live.sockets.contains_key(&id) {
                    break id;
                }
            };
            self.state.accept_web_socket(&pair.server);
            live.sockets.insert(id, pair.server.clone());
            live.machine.handle_open(now_ms(), id, token)
        };
        self.execute(Some(&pair.server), actions).await;
        let response = Response::from_websocket(pair.client).or_internal("answering an upgrade")?;
        if protocols.contains(&SUBPROTOCOL) {
            let headers = Headers::new();
            headers
                .set("sec-websocket-protocol", SUBPROTOCOL)
                .or_internal("answering an upgrade")?;
            return Ok(response.with_headers(headers));
        }
        Ok(response)
    }

    /// One of the worker's internal calls: fed to the machine, its actions carried out,
    /// then answered (a refusal as the API error it becomes).
    async fn call(&self, call: RoomCall, req: &mut Request) -> Result<Response, ApiError> {
        if req.method() != worker::Method::Post {
            return Err(ApiError::method_not_allowed());
        }
        self.wake(None)
            .await
            .map_err(|e| http::internal("waking a room", e))?;
        let now = now_ms();
        let answered = match call {
            RoomCall::Admit => {
                let c: AdmitCall = body(req).await?;
                let admit = AdmitUpload {
                    file_id: c.file_id,
                    user_id: c.user_id,
                    user_name: c.user_name,
                    role: c.role,
                    size: c.size,
                    sealed: c.sealed,
                    parent_id: c.parent_id,
                };
                self.with_machine(|m, store| m.admit_upload(now, admit, store))?
            }
            RoomCall::Completed => {
                let c: FileCall = body(req).await?;
                self.with_machine(|m, store| m.upload_completed(now, &c.file_id, store))?
            }
            RoomCall::Cancelled => {
                let c: FileCall = body(req).await?;
                self.with_machine(|m, _| m.upload_cancelled(now, &c.file_id))?
            }
            RoomCall::Deleted => {
                let c: FileCall = body(req).await?;
                self.with_machine(|m, store| m.file_deleted(now, &c.file_id, store))?
            }
            RoomCall::Access => {
                let c: AccessCall = body(req).await?;
                let file = self
                    .with_machine(|m, store| m.file_access(&c.user_id, &c.file_id, store))?
                    .map_err(|e| e.to_api())?;
                return json(200, &file);
            }
            RoomCall::Processing => {
                let c: ProcessingCall = body(req).await?;
                let event = c.report.validate().map_err(ApiError::invalid_json)?;
                self.with_machine(|m, store| {
                    m.processing(now, &c.file_id, &c.processor, &event, store)
                })?
            }
            RoomCall::NotifyFailed => {
                let c: NotifyFailedCall = body(req).await?;
                self.with_machine(|m, _| m.notification_failed(now, &c.user_id, c.kind))?
            }
        };
        let Answered { answer, actions } = answered;
        if !self.execute(None, actions).await {
            return Err(ApiError::internal());
        }
        let text = answer.map_err(|e| e.to_api())?;
        let mut response = Response::ok(text).or_internal("answering a room call")?;
        response
            .headers_mut()
            .set("content-type", "application/json")
            .or_internal("answering a room call")?;
        Ok(response)
    }

    /// Runs `f` on the woken machine and its storage.
    fn with_machine<R>(
        &self,
        f: impl FnOnce(&mut RoomMachine, &SqlStore) -> R,
    ) -> Result<R, ApiError> {
        let mut live = self.live.borrow_mut();
        let live = live
            .as_mut()
            .ok_or_else(|| http::internal("a room call", "the room is not loaded"))?;
        Ok(f(&mut live.machine, &live.store))
    }

    /// A socket closed or failed.
    async fn closed(&self, ws: &WebSocket) {
        let Some(id) = conn_state(ws).map(|s| s.id) else {
            return;
        };
        self.run(ws, |machine, _, now| machine.handle_close(now, id))
            .await;
        if let Some(live) = self.live.borrow_mut().as_mut() {
            live.sockets.remove(&id);
        }
    }

    /// Wakes the room (including `ws`, which may be on its way out), feeds it one input
    /// and carries out what it says.
    async fn run(
        &self,
        ws: &WebSocket,
        input: impl FnOnce(&mut RoomMachine, &SqlStore, u64) -> Vec<Action>,
    ) {
        if let Err(e) = self.wake(Some(ws)).await {
            console_error!("room: could not wake: {}", e.0);
            let _ = ws.send_with_str(error_frame(None, &RoomError::internal()));
            return;
        }
        let actions = {
            let mut live = self.live.borrow_mut();
            let Some(live) = live.as_mut() else { return };
            input(&mut live.machine, &live.store, now_ms())
        };
        self.execute(Some(ws), actions).await;
    }

    // -----------------------------------------------------------------------------
    // Waking up
    // -----------------------------------------------------------------------------

    /// Rebuilds the machine from storage and the sockets' attachments, unless it is in
    /// memory. `extra` is a socket the platform may no longer list (one being closed).
    async fn wake(&self, extra: Option<&WebSocket>) -> Result<(), StoreError> {
        if self.live.borrow().is_some() {
            return Ok(());
        }
        let config = RoomConfig::from_env(&self.env).map_err(|e| StoreError(e.message))?;
        let room_id = self
            .state
            .id()
            .name()
            .filter(|name| valid_room_id(name))
            .ok_or_else(|| StoreError("the room object has no valid room id name".into()))?;
        let alarm = self
            .state
            .storage()
            .get_alarm()
            .await
            .map_err(|e| StoreError(e.to_string()))?
            .and_then(|ms| u64::try_from(ms).ok());
        if self.live.borrow().is_some() {
            return Ok(()); // another event woke it while the alarm was read
        }
        let store = SqlStore::open(self.state.storage().sql())?;
        let mut sockets = HashMap::new();
        let mut states = Vec::new();
        for ws in self
            .state
            .get_websockets()
            .into_iter()
            .chain(extra.cloned())
        {
            match conn_state(&ws) {
                Some(state) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = sockets.entry(state.id)
                    {
                        slot.insert(ws);
                        states.push(state);
                    }
                }
                None => close_unknown(&ws),
            }
        }
        let count = states.len();
        let machine = RoomMachine::restore(
            &room_id,
            config.limits,
            config.verifier,
            &store,
            states,
            alarm,
            now_ms(),
        )?;
        console_log!(
            "room {room_id}: woke with {count} sockets, head {}",
            machine.head()
        );
        *self.live.borrow_mut() = Some(Live {
            machine,
            store,
            sockets,
            write_window_ms: config.write_window_ms,
            presence_window_ms: config.presence_window_ms,
        });
        Ok(())
    }

    /// When the platform last answered each socket's `ping`.
    fn ping_times(&self) -> HashMap<ConnId, u64> {
        let live = self.live.borrow();
        let Some(live) = live.as_ref() else {
            return HashMap::new();
        };
        live.sockets
            .iter()
            .filter_map(|(id, ws)| {
                let state: &JsValue = self.state.as_raw().as_ref();
                let socket: &JsValue = ws.as_ref().as_ref();
                let at = call_method(state, "getWebSocketAutoResponseTimestamp", &[socket]).ok()?;
                let at = at.dyn_into::<JsDate>().ok()?.get_time();
                at.is_finite().then_some((*id, at as u64))
            })
            .collect()
    }

    // -----------------------------------------------------------------------------
    // Carrying out
    // -----------------------------------------------------------------------------

    /// Carries out the machine's actions ([`Self::execute_batch`]), then what leaves
    /// the object: notifications go to the queue, and removed files are deleted through
    /// their upload sessions, whose report is the machine's next input. Whether the
    /// first batch's writes were applied.
    async fn execute(&self, trigger: Option<&WebSocket>, actions: Vec<Action>) -> bool {
        let mut batch = actions;
        let mut trigger = trigger;
        let mut first = true;
        loop {
            let Some(Later {
                deletions,
                notifications,
                flush,
                presence,
            }) = self.execute_batch(trigger, batch).await
            else {
                return !first;
            };
            first = false;
            trigger = None;
            if !notifications.is_empty() {
                notify::enqueue(&self.env, notifications).await;
            }
            let mut next = Vec::new();
            if flush {
                // The messages that arrive meanwhile join the batch (their own events
                // return at once); then one transaction writes them all.
                Delay::from(Duration::from_millis(self.windows().0)).await;
                if let Some(live) = self.live.borrow_mut().as_mut() {
                    next.extend(live.machine.flush());
                }
            }
            if let Some(window) = presence {
                // Joins, leaves and closes that arrive meanwhile join the window.
                let wait = self.windows().1;
                Delay::from(Duration::from_millis(wait)).await;
                if let Some(live) = self.live.borrow_mut().as_mut() {
                    next.extend(live.machine.flush_presence(window));
                }
            }
            if deletions.is_empty() {
                if next.is_empty() {
                    return true;
                }
                batch = next;
                continue;
            }
            for (removal, file_ids) in deletions {
                let deleted = removal::delete_files(&self.env, &file_ids).await;
                let mut live = self.live.borrow_mut();
                if let Some(live) = live.as_mut() {
                    next.extend(live.machine.files_deleted(now_ms(), removal, &deleted));
                }
            }
            batch = next;
        }
    }

    /// The write window (`ROOM_WRITE_WINDOW_MS`) and the presence window
    /// (`ROOM_PRESENCE_WINDOW_MS`) of the loaded room.
    fn windows(&self) -> (u64, u64) {
        self.live.borrow().as_ref().map_or((0, 0), |live| {
            (live.write_window_ms, live.presence_window_ms)
        })
    }

    /// Carries out the machine's actions: every storage write first, in one transaction;
    /// then frames, attachments and closes in order; then the alarm. `trigger` is the
    /// socket whose event it was (told when a write fails). Answers what is left to
    /// do, or `None` when the writes failed.
    async fn execute_batch(
        &self,
        trigger: Option<&WebSocket>,
        actions: Vec<Action>,
    ) -> Option<Later> {
        let (writes, rest): (Vec<Action>, Vec<Action>) = actions
            .into_iter()
            .partition(|a| matches!(a, Action::Store(_)));
        let writes: Vec<Write> = writes
            .into_iter()
            .filter_map(|a| match a {
                Action::Store(w) => Some(w),
                _ => None,
            })
            .collect();
        if !writes.is_empty()
            && let Err(e) = self.write_all(writes)
        {
            console_error!(
                "room: storage write failed, reloading from storage: {}",
                e.0
            );
            // Whoever this batch would have answered (the trigger, and in a flushed
            // batch every sender waiting for an ack) hears of the failure; their
            // requests are resent, deduplicated by request id.
            let frame = error_frame(None, &RoomError::internal());
            if let Some(ws) = trigger {
                let _ = ws.send_with_str(&frame);
            }
            let answered: BTreeSet<ConnId> = rest
                .iter()
                .filter_map(|a| match a {
                    Action::Send { to, .. } => Some(*to),
                    _ => None,
                })
                .collect();
            if let Some(live) = self.live.borrow().as_ref() {
                for id in answered {
                    send(&live.sockets, id, &JsString::from(frame.as_str()));
                }
            }
            *self.live.borrow_mut() = None;
            return None;
        }
        let mut alarm = None;
        let mut later = Later::default();
        {
            let mut live = self.live.borrow_mut();
            let Some(live) = live.as_mut() else {
                return Some(later);
            };
            for action in rest {
                match action {
                    Action::Send { to, frame } => {
                        send(&live.sockets, to, &JsString::from(frame.as_str()));
                    }
                    Action::Broadcast { to, frame } => {
                        // One JS string for every recipient, not one copy each.
                        let frame = JsString::from(frame.as_str());
                        for id in to {
                            send(&live.sockets, id, &frame);
                        }
                    }
                    Action::Save(state) => {
                        if let Some(ws) = live.sockets.get(&state.id) {
                            save(ws, &state);
                        }
                    }
                    Action::Close { conn, code } => {
                        if let Some(ws) = live.sockets.remove(&conn) {
                            let _ = ws.close(Some(code.code()), Some(code.reason()));
                        }
                    }
                    Action::SetAlarm(at) => alarm = Some(at),
                    Action::DeleteFiles { removal, file_ids } => {
                        later.deletions.push((removal, file_ids));
                    }
                    Action::Notify(n) => later.notifications.push(n),
                    Action::FlushLater => later.flush = true,
                    Action::PresenceLater { batch } => later.presence = Some(batch),
                    Action::Store(_) => {}
                }
            }
        }
        if let Some(at) = alarm {
            let storage = self.state.storage();
            let result = match at {
                Some(at) => {
                    let date = JsDate::new(&Number::from(at as f64));
                    storage.set_alarm(ScheduledTime::new(date)).await
                }
                None => storage.delete_alarm().await,
            };
            if let Err(e) = result {
                console_error!("room: setting the alarm: {e}");
            }
        }
        Some(later)
    }

    /// Applies `writes` all together or not at all.
    fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let store = SqlStore::wrap(self.state.storage().sql());
        let body = Closure::once_into_js(move || -> Result<(), JsValue> {
            store
                .apply_all(&writes)
                .map_err(|e| JsValue::from_str(&e.0))
        });
        let storage = self.state.storage();
        call_method(storage.as_raw().as_ref(), "transactionSync", &[&body])
            .map(|_| ())
            .map_err(|e| StoreError(format!("{e:?}")))
    }
}

/// What is left after a batch of actions: what leaves the object, whether the room
/// waits for its write window to close, and which presence window it waits for.
#[derive(Default)]
struct Later {
    deletions: Vec<(u64, Vec<String>)>,
    notifications: Vec<Notification>,
    flush: bool,
    presence: Option<u64>,
}

/// A call's JSON body (from the worker itself: malformed means a bug, `500`).
async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let bytes = req.bytes().await.or_internal("reading a room call")?;
    serde_json::from_slice(&bytes).or_internal("reading a room call")
}

/// A socket's state from its attachment (JSON text).
fn conn_state(ws: &WebSocket) -> Option<ConnState> {
    let text: String = ws.deserialize_attachment().ok().flatten()?;
    serde_json::from_str(&text).ok()
}

/// Saves a socket's state in its attachment (at most 2 KiB; ours is a few hundred bytes).
fn save(ws: &WebSocket, state: &ConnState) {
    let text = serde_json::to_string(state).unwrap_or_default();
    if let Err(e) = ws.serialize_attachment(text) {
        console_error!("room: saving a socket's state: {e}");
    }
}

/// Sends a frame; a socket that is closing may refuse it, which is not an error here.
fn send(sockets: &HashMap<ConnId, WebSocket>, to: ConnId, frame: &JsString) {
    if let Some(ws) = sockets.get(&to) {
        let raw: &RawSocket = ws.as_ref().unchecked_ref();
        let _ = raw.send(frame);
    }
}

#[wasm_bindgen]
extern "C" {
    /// The platform's WebSocket, to send an existing JS string (workers-rs and web-sys
    /// only take `&str`, which copies the frame into a new JS string per recipient).
    type RawSocket;
    #[wasm_bindgen(method, catch)]
    fn send(this: &RawSocket, data: &JsString) -> Result<(), JsValue>;
}

/// A socket without a readable state cannot be served: close it (1011, internal).
fn close_unknown(ws: &WebSocket) {
    console_error!("room: a socket without a readable state; closing it");
    let _ = ws.close(Some(1011), Some("internal"));
}

fn random_u64() -> Result<u64, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).or_internal("drawing random bytes")?;
    Ok(u64::from_be_bytes(bytes))
}
