//! `RoomClient`: a room in the browser (docs/PROTOCOL.md). The connection's rules
//! (join, requests and acks, timeouts, the offline queue, reconnect with backoff and
//! jitter, resume from the last seq, keepalive) are `protocol::room::client`'s; this
//! module carries them out with the browser's WebSocket and timers, and seals and
//! opens the room's payloads (docs/FORMAT.md, Room payloads) with the key from the link.
//!
//! Everything here holds the shell only through `Weak` references from JS callbacks, so
//! a closed, dropped client frees its sockets' handlers and its timer.
//!
//! - `types`: the TypeScript types of the JS surface;
//! - `seal`: opening the sealed fields of incoming frames.

mod seal;
mod types;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use js_sys::{Array, Function, Object, Promise, Reflect};
use sealdrop_protocol::format::FileKey;
use sealdrop_protocol::room::client::{
    ClientAction, ClientConfig, ConnectionState, RoomClient as Machine,
};
use sealdrop_protocol::room::seal::{RoomCipher, RoomKey, SealContext, parse_room_link, room_link};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise, spawn_local};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::http::Http;
use crate::interop::new_error;
use crate::platform;
use crate::stall::DEFAULT_STALL_MS;
use crate::thumbnail;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// A live connection to one room. Made by `RoomClient.connect(link, {token})`.
#[wasm_bindgen]
pub struct RoomClient {
    shell: Rc<Shell>,
}

/// What an upload of this browser does with an `upload-control` action.
pub(crate) type Obey = Rc<dyn Fn(&str)>;

/// How a request's answer is handed back.
#[derive(Clone, Copy)]
enum Answer {
    /// The ack's data as it is.
    Plain,
    /// A history page: its messages opened.
    History,
    /// A page of the room's files: each opened.
    Files,
}

/// The open socket and its handlers (dropping them detaches nothing by itself, so
/// `close_socket` clears the handlers first).
struct Socket {
    number: u64,
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

struct Shell {
    inner: RefCell<Inner>,
}

struct Inner {
    machine: Machine,
    ws_url: String,
    room_id: String,
    link: String,
    cipher: RoomCipher,
    /// A token, or a function that returns one (or a Promise of one).
    token: JsValue,
    user_id: Option<String>,
    socket: Option<Socket>,
    listeners: BTreeMap<String, Vec<Function>>,
    promises: HashMap<String, (Function, Function, Answer)>,
    on_state: Option<Function>,
    /// `connect()`'s promise, settled when the first join succeeds or fails for good.
    connecting: Option<(Function, Function)>,
    timer: Option<(JsValue, Closure<dyn FnMut()>)>,
    me: Weak<Shell>,
    /// This browser's uploads into the room by file id: what obeys `upload-control`.
    controls: HashMap<String, Obey>,
    /// `upload-control` actions for uploads not (yet) registered here: one may come
    /// before this device learned its upload's file id (at most [`EARLY_CONTROLS`]).
    early_controls: HashMap<String, String>,
}

/// Most `upload-control` actions kept for uploads this device does not know (yet).
const EARLY_CONTROLS: usize = 32;

#[wasm_bindgen]
impl RoomClient {
    /// Connects to the room a link names (`<origin>/r/<roomId>#k1.<key>`), with
    /// `options.token` (a JWT, or a function returning one or a Promise of one, called
    /// for every new socket). Listeners in `options.on` hear the join itself. Resolves
    /// once the room is joined; rejects with a `SealdropError` when the link is invalid
    /// or the room refuses the token.
    #[wasm_bindgen(unchecked_return_type = "Promise<RoomClient>")]
    pub fn connect(
        link: &str,
        #[wasm_bindgen(unchecked_param_type = "RoomClientOptions")] options: JsValue,
    ) -> Promise {
        match Self::start(link, &options) {
            Ok(promise) => promise,
            Err(e) => Promise::reject(&e),
        }
    }

    /// Makes a new room in this browser: 128 random bits of room id and a fresh 256-bit
    /// room key, which exists only in the returned link's fragment. `origin` defaults to
    /// `location.origin`.
    #[wasm_bindgen(js_name = createRoomLink, unchecked_return_type = "{ roomId: string, link: string }")]
    pub fn create_room_link(origin: Option<String>) -> Result<JsValue, JsValue> {
        let origin = origin
            .or_else(platform::location_origin)
            .ok_or_else(|| error("invalid_option", "no origin given and no location.origin"))?;
        let mut id = [0u8; 16];
        let mut key = [0u8; 32];
        platform::random_bytes(&mut id).map_err(|e| error("unsupported", &e.to_string()))?;
        platform::random_bytes(&mut key).map_err(|e| error("unsupported", &e.to_string()))?;
        let room_id = sealdrop_protocol::ids::random_id_text(id);
        let out = Object::new();
        set(
            &out,
            "link",
            &room_link(&origin, &room_id, &RoomKey::from_bytes(key)).into(),
        );
        set(&out, "roomId", &room_id.into());
        Ok(out.into())
    }

    /// The room's id.
    #[wasm_bindgen(getter, js_name = roomId)]
    pub fn room_id(&self) -> String {
        self.shell.inner.borrow().room_id.clone()
    }

    /// The room link this client was made from (it holds the key: share it only with
    /// people who may read the room).
    #[wasm_bindgen(getter)]
    pub fn link(&self) -> String {
        self.shell.inner.borrow().link.clone()
    }

    /// The authenticated user's id, once known.
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> Option<String> {
        self.shell.inner.borrow().user_id.clone()
    }

    /// `"connecting" | "open" | "reconnecting" | "closed"`.
    #[wasm_bindgen(getter, unchecked_return_type = "RoomConnectionState")]
    pub fn state(&self) -> String {
        self.shell
            .inner
            .borrow()
            .machine
            .state()
            .as_str()
            .to_owned()
    }

    /// The highest event seq received (what a reconnect resumes after).
    #[wasm_bindgen(getter, js_name = lastSeq)]
    pub fn last_seq(&self) -> Option<f64> {
        self.shell
            .inner
            .borrow()
            .machine
            .last_seq()
            .map(|s| s as f64)
    }

    /// Calls `callback(data)` for every `event` (a room event name, or `"*"` for all,
    /// called as `callback(data, event)`); returns a function that unsubscribes.
    /// Sealed fields arrive opened (`text`, `attachments`, `reason`); a field that does
    /// not open is `null`, with `sealError` set.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof RoomEvents | \"*\"")] event: &str,
        #[wasm_bindgen(unchecked_param_type = "(data: any, event: string) => void")]
        callback: Function,
    ) -> JsValue {
        self.shell
            .inner
            .borrow_mut()
            .listeners
            .entry(event.to_owned())
            .or_default()
            .push(callback.clone());
        let weak = Rc::downgrade(&self.shell);
        let event = event.to_owned();
        Closure::once_into_js(move || {
            if let Some(shell) = weak.upgrade()
                && let Some(list) = shell.inner.borrow_mut().listeners.get_mut(&event)
            {
                list.retain(|f| f != &callback);
            }
        })
    }

    /// Seals `text` (and each attachment) and sends it; resolves with
    /// `{messageId, seq, timestamp, duplicate}`. While the connection is down the
    /// message waits and goes out once, in order, after the reconnect.
    #[wasm_bindgen(js_name = sendMessage, unchecked_return_type = "Promise<MessageAck>")]
    pub fn send_message(&self, text: &str, attachments: Option<Vec<String>>) -> Promise {
        let sealed = (|| {
            let inner = self.shell.inner.borrow();
            let sender = inner
                .user_id
                .clone()
                .ok_or_else(|| error("not_authenticated", "not authenticated yet"))?;
            let seal = |field: &str, plain: &str| {
                inner.seal("new-message", &sender, field, plain.as_bytes())
            };
            let text = seal("text", text)?;
            let attachments = attachments
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, a)| seal(&SealContext::attachment_field(i), a))
                .collect::<Result<Vec<String>, JsValue>>()?;
            Ok::<_, JsValue>(
                serde_json::json!({ "text": text, "attachments": attachments }).to_string(),
            )
        })();
        match sealed {
            Ok(data) => self.shell.request("send-message", &data, Answer::Plain),
            Err(e) => Promise::reject(&e),
        }
    }

    /// One page of history: resolves with `{messages, hasMore}` (oldest first, opened).
    #[wasm_bindgen(unchecked_return_type = "Promise<HistoryPage>")]
    pub fn history(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ beforeSeq?: number, limit?: number }")]
        options: JsValue,
    ) -> Promise {
        self.shell
            .request("history", &page_request(&options), Answer::History)
    }

    /// Marks everything up to `seq` read; resolves with `{seq}` (the mark now).
    #[wasm_bindgen(js_name = markAsRead, unchecked_return_type = "Promise<{ seq: number }>")]
    pub fn mark_as_read(&self, seq: f64) -> Promise {
        self.shell.request(
            "mark-as-read",
            &format!(r#"{{"seq":{}}}"#, seq as u64),
            Answer::Plain,
        )
    }

    /// Locks the room (moderators and owners), with an optional reason, sealed.
    #[wasm_bindgen(
        unchecked_return_type = "Promise<{ locked: boolean, changed: boolean, seq: number }>"
    )]
    pub fn lock(&self, reason: Option<String>) -> Promise {
        let data = match reason {
            None => Ok("{}".to_owned()),
            Some(reason) => {
                let inner = self.shell.inner.borrow();
                match inner.user_id.clone() {
                    Some(me) => inner
                        .seal("room-locked", &me, "reason", reason.as_bytes())
                        .map(|r| serde_json::json!({ "reason": r }).to_string()),
                    None => Err(error("not_authenticated", "not authenticated yet")),
                }
            }
        };
        match data {
            Ok(data) => self.shell.request("lock-room", &data, Answer::Plain),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Unlocks the room (moderators and owners).
    #[wasm_bindgen(
        unchecked_return_type = "Promise<{ locked: boolean, changed: boolean, seq: number }>"
    )]
    pub fn unlock(&self) -> Promise {
        self.shell.request("unlock-room", "{}", Answer::Plain)
    }

    /// Seals what members see of a file this user uploads into the room (docs/FORMAT.md,
    /// context event `file`): `{name, type?, key, path?}` → `{sealedName, sealedType?,
    /// sealedKey, sealedPath?}`, the `room` fields of `POST /api/uploads` (docs/API.md).
    #[wasm_bindgen(
        js_name = sealFile,
        unchecked_return_type = "{ sealedName: string, sealedType?: string, sealedKey: string, sealedPath?: string }"
    )]
    pub fn seal_file(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "{ name: string, type?: string, key: string, path?: string }"
        )]
        fields: JsValue,
    ) -> Result<JsValue, JsValue> {
        let inner = self.shell.inner.borrow();
        let me = inner
            .user_id
            .clone()
            .ok_or_else(|| error("not_authenticated", "not authenticated yet"))?;
        let text = |name: &str| {
            Reflect::get(&fields, &name.into())
                .ok()
                .and_then(|v| v.as_string())
        };
        let mut out = serde_json::Map::new();
        for (field, key, required) in [
            ("name", "sealedName", true),
            ("type", "sealedType", false),
            ("key", "sealedKey", true),
            ("path", "sealedPath", false),
        ] {
            match text(field) {
                Some(plain) => {
                    // The key is the file key's 32 bytes (as in `#k1.` links, base64url).
                    let bytes = match field {
                        "key" => URL_SAFE_NO_PAD
                            .decode(&plain)
                            .ok()
                            .filter(|k| k.len() == 32)
                            .ok_or_else(|| {
                                error("invalid_option", "fields.key is not 32 bytes of base64url")
                            })?,
                        _ => plain.into_bytes(),
                    };
                    let sealed = inner.seal("file", &me, field, &bytes)?;
                    out.insert(key.into(), serde_json::Value::String(sealed));
                }
                None if required => {
                    return Err(error(
                        "invalid_option",
                        &format!("fields.{field} is required (a string)"),
                    ));
                }
                None => {}
            }
        }
        Ok(to_js(&serde_json::Value::Object(out)))
    }

    /// Posts a chat message about one of the room's files: `link` (e.g. the file's
    /// `/f/<id>#k1.<key>` link) and the optional `message` are sealed; resolves like
    /// `sendMessage`.
    #[wasm_bindgen(js_name = shareFile, unchecked_return_type = "Promise<MessageAck>")]
    pub fn share_file(&self, file_id: &str, link: &str, message: Option<String>) -> Promise {
        let sealed = (|| {
            let inner = self.shell.inner.borrow();
            let me = inner
                .user_id
                .clone()
                .ok_or_else(|| error("not_authenticated", "not authenticated yet"))?;
            let mut data = serde_json::json!({
                "fileId": file_id,
                "link": inner.seal("new-message", &me, "link", link.as_bytes())?,
            });
            if let Some(message) = message {
                data["message"] = serde_json::Value::String(inner.seal(
                    "new-message",
                    &me,
                    "text",
                    message.as_bytes(),
                )?);
            }
            Ok::<_, JsValue>(data.to_string())
        })();
        match sealed {
            Ok(data) => self.shell.request("share-file", &data, Answer::Plain),
            Err(e) => Promise::reject(&e),
        }
    }

    /// One page of the room's files and folders: resolves with `{files, hasMore}`
    /// (oldest first, each opened: `name`, `type`, `key`, `path`).
    #[wasm_bindgen(
        unchecked_return_type = "Promise<{ roomId: string, files: RoomFile[], hasMore: boolean }>"
    )]
    pub fn files(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ beforeSeq?: number, limit?: number }")]
        options: JsValue,
    ) -> Promise {
        self.shell
            .request("files", &page_request(&options), Answer::Files)
    }

    /// Makes a folder entry (its name sealed); resolves with `{fileId, seq}`.
    #[wasm_bindgen(js_name = createFolder, unchecked_return_type = "Promise<{ fileId: string, seq: number }>")]
    pub fn create_folder(&self, name: &str) -> Promise {
        let sealed = {
            let inner = self.shell.inner.borrow();
            match inner.user_id.clone() {
                Some(me) => inner
                    .seal("file", &me, "name", name.as_bytes())
                    .map(|n| serde_json::json!({ "sealedName": n }).to_string()),
                None => Err(error("not_authenticated", "not authenticated yet")),
            }
        };
        match sealed {
            Ok(data) => self.shell.request("create-folder", &data, Answer::Plain),
            Err(e) => Promise::reject(&e),
        }
    }

    /// A room file's thumbnail (docs/FORMAT.md §10), fetched with the room's JWT and
    /// opened here with the file's `key` (base64url, as `files` and `file-added` give
    /// it): resolves with a `Blob` of the image, or `null` if the file has none.
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob | null>")]
    pub fn thumbnail(&self, file_id: &str, key: &str) -> Promise {
        let shell = self.shell.clone();
        let file_id = file_id.to_owned();
        let key = URL_SAFE_NO_PAD
            .decode(key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(FileKey::from_bytes);
        future_to_promise(async move {
            let key =
                key.ok_or_else(|| error("invalid_option", "key is not 32 bytes of base64url"))?;
            let (url, token) = {
                let inner = shell.inner.borrow();
                let origin = parse_room_link(&inner.link)
                    .map_err(|e| error(e.code(), &e.to_string()))?
                    .origin;
                let url = format!(
                    "{origin}/api/rooms/{}/files/{file_id}/thumbnail",
                    inner.room_id
                );
                (url, inner.token.clone())
            };
            let jwt = resolve_token(&token).await?;
            let http = Http {
                stall_ms: DEFAULT_STALL_MS,
            };
            match thumbnail::fetch(&http, &url, &jwt, &key).await {
                Ok(Some(blob)) => Ok(blob.into()),
                Ok(None) => Ok(JsValue::NULL),
                Err(e) => Err(crate::interop::error(&e)),
            }
        })
    }

    /// Leaves the room (the membership ends on every device of this user).
    #[wasm_bindgen(unchecked_return_type = "Promise<{ seq: number }>")]
    pub fn leave(&self) -> Promise {
        self.shell.request("leave-room", "{}", Answer::Plain)
    }

    /// Any request: `data` is sent as is (sealed fields must already be sealed);
    /// resolves with the `ack`'s data, rejects with the `error`'s code.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn request(&self, event: &str, data: JsValue) -> Result<Promise, JsValue> {
        let data = js_sys::JSON::stringify(&data)
            .ok()
            .and_then(|s| s.as_string())
            .filter(|s| s.starts_with('{'))
            .ok_or_else(|| error("invalid_option", "data must be a JSON object"))?;
        Ok(self.shell.request(event, &data, Answer::Plain))
    }

    /// Which connection this is, for `uploader.upload(file, {room})` to find it (a
    /// `RoomClient` passed inside an options object cannot be borrowed from JS).
    #[wasm_bindgen(js_name = __sealdropHandle, skip_typescript)]
    pub fn handle(&self) -> f64 {
        Rc::as_ptr(&self.shell) as usize as f64
    }

    /// Closes the connection for good; requests still waiting reject with `closed`.
    pub fn close(&self) {
        self.shell.inner.borrow_mut().machine.close();
        Shell::drive(&self.shell);
    }
}

impl RoomClient {
    fn start(link: &str, options: &JsValue) -> Result<Promise, JsValue> {
        let parsed = parse_room_link(link).map_err(|e| error(e.code(), &e.to_string()))?;
        let token = Reflect::get(options, &"token".into()).unwrap_or(JsValue::UNDEFINED);
        if !(token.is_string() || token.is_function()) {
            return Err(error(
                "invalid_option",
                "options.token must be a JWT or a function returning one",
            ));
        }
        let mut config = ClientConfig {
            refreshable_token: token.is_function(),
            ..ClientConfig::default()
        };
        if let Some(ms) = Reflect::get(options, &"requestTimeoutMs".into())
            .ok()
            .and_then(|v| v.as_f64())
        {
            config.request_timeout_ms = ms.max(1.0) as u64;
        }
        let on_state = Reflect::get(options, &"onStateChange".into())
            .ok()
            .and_then(|v| v.dyn_into::<Function>().ok());
        let mut prefix = [0u8; 6];
        platform::random_bytes(&mut prefix).map_err(|e| error("unsupported", &e.to_string()))?;
        let prefix = format!(
            "{}-",
            prefix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let ws_url = format!(
            "{}/api/rooms/{}/ws",
            parsed.origin.replacen("http", "ws", 1),
            parsed.room_id
        );
        let shell = Rc::new_cyclic(|me| Shell {
            inner: RefCell::new(Inner {
                machine: Machine::new(config, &prefix),
                ws_url,
                room_id: parsed.room_id.clone(),
                link: link.to_owned(),
                cipher: parsed.key.cipher(&parsed.room_id),
                token,
                user_id: None,
                socket: None,
                listeners: BTreeMap::new(),
                promises: HashMap::new(),
                on_state,
                connecting: None,
                timer: None,
                me: me.clone(),
                controls: HashMap::new(),
                early_controls: HashMap::new(),
            }),
        });
        let promise = Promise::new(&mut |resolve, reject| {
            shell.inner.borrow_mut().connecting = Some((resolve, reject));
        });
        // Listeners given up front hear the join itself (room-state, presence, history).
        if let Ok(on) = Reflect::get(options, &"on".into())
            && on.is_object()
        {
            for entry in Object::entries(on.unchecked_ref()).iter() {
                let pair: Array = entry.unchecked_into();
                if let (Some(event), Ok(f)) =
                    (pair.get(0).as_string(), pair.get(1).dyn_into::<Function>())
                {
                    shell
                        .inner
                        .borrow_mut()
                        .listeners
                        .entry(event)
                        .or_default()
                        .push(f);
                }
            }
        }
        let client = RoomClient {
            shell: shell.clone(),
        };
        CONNECTED.with(|rooms| {
            let mut rooms = rooms.borrow_mut();
            rooms.retain(|_, shell| shell.strong_count() > 0);
            rooms.insert(client.handle() as u64, Rc::downgrade(&shell));
        });
        Shell::drive(&shell);
        Ok(future_to_promise(async move {
            JsFuture::from(promise).await?;
            Ok(JsValue::from(client))
        }))
    }
}

thread_local! {
    /// The connected rooms by handle (see [`RoomClient::handle`]).
    static CONNECTED: RefCell<HashMap<u64, Weak<Shell>>> = RefCell::new(HashMap::new());
}

/// A connected room as an upload uses it (client-wasm/src/room_upload.rs): its token,
/// sealing under its key, reports sent without waiting, and `upload-control` routed to
/// the upload it names.
#[derive(Clone)]
pub(crate) struct RoomLink(Rc<Shell>);

impl RoomLink {
    /// The `RoomClient` a JS value is, if it is one of this module's live connections.
    pub(crate) fn of(value: &JsValue) -> Option<RoomLink> {
        let handle: Function = Reflect::get(value, &"__sealdropHandle".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let handle = handle.call0(value).ok()?.as_f64()? as u64;
        CONNECTED
            .with(|rooms| rooms.borrow().get(&handle).and_then(Weak::upgrade))
            .map(RoomLink)
    }

    pub(crate) fn room_id(&self) -> String {
        self.0.inner.borrow().room_id.clone()
    }

    /// Seals one field of this user's file (context event `file`, FORMAT.md).
    pub(crate) fn seal_file_field(&self, field: &str, plaintext: &[u8]) -> Result<String, JsValue> {
        let inner = self.0.inner.borrow();
        let me = inner
            .user_id
            .clone()
            .ok_or_else(|| error("not_authenticated", "the room is not joined yet"))?;
        inner.seal("file", &me, field, plaintext)
    }

    /// The room's JWT now (the API takes the same token as the socket).
    pub(crate) async fn token(&self) -> Result<String, JsValue> {
        let token = self.0.inner.borrow().token.clone();
        resolve_token(&token).await
    }

    /// Sends a request whose answer nobody waits for (a refusal is only logged).
    pub(crate) fn tell(&self, event: &str, data: &serde_json::Value) {
        thread_local! {
            static WARN: Closure<dyn FnMut(JsValue)> =
                Closure::new(|e| platform::warn("sealdrop: the room refused an upload report", &e));
        }
        let promise = self.0.request(event, &data.to_string(), Answer::Plain);
        WARN.with(|warn| {
            let _ = promise.catch(warn);
        });
    }

    /// Routes `upload-control` for `file_id` to `obey` (until [`RoomLink::release`]);
    /// an action that came before is obeyed now.
    pub(crate) fn control(&self, file_id: &str, obey: Obey) {
        let early = {
            let mut inner = self.0.inner.borrow_mut();
            inner.controls.insert(file_id.to_owned(), obey.clone());
            inner.early_controls.remove(file_id)
        };
        if let Some(action) = early {
            spawn_local(async move { obey(&action) });
        }
    }

    pub(crate) fn release(&self, file_id: &str) {
        self.0.inner.borrow_mut().controls.remove(file_id);
    }
}

/// The data of a paged request (`history`, `files`): `beforeSeq` and `limit` from
/// `options`, where given.
fn page_request(options: &JsValue) -> String {
    let mut data = serde_json::Map::new();
    for key in ["beforeSeq", "limit"] {
        if let Some(n) = Reflect::get(options, &key.into())
            .ok()
            .and_then(|v| v.as_f64())
        {
            data.insert(key.into(), serde_json::json!(n as u64));
        }
    }
    serde_json::Value::Object(data).to_string()
}

impl Inner {
    fn seal(
        &self,
        event: &str,
        sender: &str,
        field: &str,
        plaintext: &[u8],
    ) -> Result<String, JsValue> {
        let mut nonce = [0u8; 12];
        platform::random_bytes(&mut nonce).map_err(|e| error("unsupported", &e.to_string()))?;
        Ok(self.cipher.seal(
            &SealContext {
                event,
                sender,
                field,
            },
            plaintext,
            nonce,
        ))
    }
}

impl Shell {
    fn request(self: &Rc<Self>, event: &str, data: &str, answer: Answer) -> Promise {
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
        {
            let mut inner = self.inner.borrow_mut();
            let id = inner.machine.request(platform::now_ms(), event, data);
            if let Some((resolve, reject)) = slot {
                inner.promises.insert(id, (resolve, reject, answer));
            }
        }
        Shell::drive(self);
        promise
    }

    /// Carries out what the machine asks until it asks nothing, then sets the timer.
    fn drive(self: &Rc<Self>) {
        loop {
            let actions = self.inner.borrow_mut().machine.poll();
            if actions.is_empty() {
                break;
            }
            for action in actions {
                self.carry_out(action);
            }
        }
        self.arm_timer();
    }

    fn carry_out(self: &Rc<Self>, action: ClientAction) {
        match action {
            ClientAction::OpenSocket { socket } => self.open_socket(socket),
            ClientAction::Send { socket, text } => {
                let inner = self.inner.borrow();
                if let Some(s) = inner.socket.as_ref().filter(|s| s.number == socket) {
                    let _ = s.ws.send_with_str(&text);
                }
            }
            ClientAction::CloseSocket { socket } => {
                let mut inner = self.inner.borrow_mut();
                if inner.socket.as_ref().is_some_and(|s| s.number == socket) {
                    close_socket(inner.socket.take());
                }
            }
            ClientAction::Deliver { event, frame } => self.deliver(&event, &frame),
            ClientAction::Resolve { id, data } => {
                let entry = self.inner.borrow_mut().promises.remove(&id);
                if let Some((resolve, _, answer)) = entry {
                    let value = {
                        let inner = self.inner.borrow();
                        let mut data: serde_json::Value =
                            serde_json::from_str(&data).unwrap_or_default();
                        match answer {
                            Answer::History => seal::open_history(&inner.cipher, &mut data),
                            Answer::Files => {
                                seal::open_files(&inner.cipher, &mut data, "files", "uploadedBy");
                            }
                            Answer::Plain => {}
                        }
                        to_js(&data)
                    };
                    let _ = resolve.call1(&JsValue::UNDEFINED, &value);
                }
            }
            ClientAction::Reject { id, code, message } => {
                let entry = self.inner.borrow_mut().promises.remove(&id);
                if let Some((_, reject, _)) = entry {
                    let _ = reject.call1(&JsValue::UNDEFINED, &error(&code, &message));
                }
            }
            ClientAction::State(state) => self.state_changed(state),
        }
    }

    fn state_changed(self: &Rc<Self>, state: ConnectionState) {
        let (on_state, settle) = {
            let mut inner = self.inner.borrow_mut();
            let settle = match state {
                ConnectionState::Open | ConnectionState::Closed => inner.connecting.take(),
                _ => None,
            };
            if state == ConnectionState::Closed {
                close_socket(inner.socket.take());
                if let Some((handle, _)) = inner.timer.take() {
                    clear_timeout(&handle);
                }
            }
            (inner.on_state.clone(), settle)
        };
        if let Some(f) = on_state
            && let Err(e) = f.call1(&JsValue::UNDEFINED, &state.as_str().into())
        {
            platform::warn("sealdrop: onStateChange threw", &e);
        }
        if let Some((resolve, reject)) = settle {
            if state == ConnectionState::Open {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            } else {
                let _ = reject.call1(
                    &JsValue::UNDEFINED,
                    &error("closed", "the room refused the connection"),
                );
            }
        }
    }

    /// Opens socket `number`: fetches a token, then connects with the token in the
    /// subprotocol (never in the URL).
    fn open_socket(self: &Rc<Self>, number: u64) {
        let weak = Rc::downgrade(self);
        let token = self.inner.borrow().token.clone();
        spawn_local(async move {
            let token = match resolve_token(&token).await {
                Ok(token) => token,
                Err(e) => {
                    // Most likely the network is down too: try again later, like a drop.
                    platform::warn("sealdrop: the room token could not be obtained", &e);
                    if let Some(shell) = weak.upgrade() {
                        shell.socket_closed(number, 1006);
                    }
                    return;
                }
            };
            let Some(shell) = weak.upgrade() else { return };
            let url = shell.inner.borrow().ws_url.clone();
            let protocols = Array::of2(
                &"sealdrop.v1".into(),
                &format!("sealdrop.token.{token}").into(),
            );
            let ws = match WebSocket::new_with_str_sequence(&url, &protocols) {
                Ok(ws) => ws,
                Err(e) => {
                    platform::warn("sealdrop: opening the room socket failed", &e);
                    shell.socket_closed(number, 1006);
                    return;
                }
            };
            let handler = |f: Box<dyn FnMut(JsValue)>| Closure::wrap(f);
            let w = weak.clone();
            let on_open = handler(Box::new(move |_| {
                if let Some(shell) = w.upgrade() {
                    shell
                        .inner
                        .borrow_mut()
                        .machine
                        .handle_open(platform::now_ms(), number);
                    Shell::drive(&shell);
                }
            }));
            let w = weak.clone();
            let on_message = handler(Box::new(move |e: JsValue| {
                let text = e
                    .dyn_into::<MessageEvent>()
                    .ok()
                    .and_then(|m| m.data().as_string());
                if let (Some(shell), Some(text)) = (w.upgrade(), text) {
                    shell
                        .inner
                        .borrow_mut()
                        .machine
                        .handle_text(platform::now_ms(), number, &text);
                    Shell::drive(&shell);
                }
            }));
            let w = weak.clone();
            let on_close = handler(Box::new(move |e: JsValue| {
                let code = e.dyn_into::<CloseEvent>().map(|c| c.code()).unwrap_or(1006);
                if let Some(shell) = w.upgrade() {
                    shell.socket_closed(number, code);
                }
            }));
            ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            let mut inner = shell.inner.borrow_mut();
            close_socket(inner.socket.take());
            inner.socket = Some(Socket {
                number,
                ws,
                _handlers: vec![on_open, on_message, on_close],
            });
        });
    }

    fn socket_closed(self: &Rc<Self>, number: u64, code: u16) {
        let random = platform::random_u32().unwrap_or(u32::MAX / 2);
        {
            let mut inner = self.inner.borrow_mut();
            if inner.socket.as_ref().is_some_and(|s| s.number == number) {
                close_socket(inner.socket.take());
            }
            inner
                .machine
                .handle_close(platform::now_ms(), number, code, random);
        }
        Shell::drive(self);
    }

    /// Hands an event to its listeners, sealed fields opened.
    fn deliver(self: &Rc<Self>, event: &str, frame: &str) {
        let (data, listeners) = {
            let mut inner = self.inner.borrow_mut();
            let Ok(mut frame) = serde_json::from_str::<serde_json::Value>(frame) else {
                return;
            };
            if event == "upload-control" {
                let data = &frame["data"];
                let obey = data["fileId"]
                    .as_str()
                    .and_then(|id| inner.controls.get(id).cloned());
                match (obey, data["action"].as_str(), data["fileId"].as_str()) {
                    (Some(obey), Some(action), _) => {
                        let action = action.to_owned();
                        // Obeyed once this borrow is released (it reports back to the room).
                        spawn_local(async move { obey(&action) });
                    }
                    (None, Some(action), Some(file_id)) => {
                        if inner.early_controls.len() >= EARLY_CONTROLS {
                            inner.early_controls.clear();
                        }
                        inner
                            .early_controls
                            .insert(file_id.to_owned(), action.to_owned());
                    }
                    _ => {}
                }
            }
            let mut data = frame
                .get_mut("data")
                .map(serde_json::Value::take)
                .unwrap_or_default();
            if event == "authentication_successful" {
                inner.user_id = data["userId"].as_str().map(str::to_owned);
            }
            seal::open_event(&inner.cipher, event, &mut data);
            if let (Some(seq), Some(object)) = (frame.get("seq").cloned(), data.as_object_mut()) {
                object.entry("seq").or_insert(seq);
            }
            let mut listeners: Vec<Function> =
                inner.listeners.get(event).cloned().unwrap_or_default();
            listeners.extend(inner.listeners.get("*").cloned().unwrap_or_default());
            (to_js(&data), listeners)
        };
        for f in listeners {
            if let Err(e) = f.call2(&JsValue::UNDEFINED, &data, &event.into()) {
                platform::warn("sealdrop: a room listener threw", &e);
            }
        }
    }

    /// Sets the one timer to the machine's next deadline.
    fn arm_timer(self: &Rc<Self>) {
        let mut inner = self.inner.borrow_mut();
        if let Some((handle, _)) = inner.timer.take() {
            clear_timeout(&handle);
        }
        let Some(at) = inner.machine.next_timeout() else {
            return;
        };
        let weak = inner.me.clone();
        let tick = Closure::<dyn FnMut()>::new(move || {
            if let Some(shell) = weak.upgrade() {
                shell
                    .inner
                    .borrow_mut()
                    .machine
                    .handle_timeout(platform::now_ms());
                Shell::drive(&shell);
            }
        });
        let delay = at.saturating_sub(platform::now_ms()) as f64;
        let handle = set_timeout(tick.as_ref().unchecked_ref(), delay);
        inner.timer = Some((handle, tick));
    }
}

/// Detaches a socket's handlers and closes it.
fn close_socket(socket: Option<Socket>) {
    if let Some(s) = socket {
        s.ws.set_onopen(None);
        s.ws.set_onmessage(None);
        s.ws.set_onclose(None);
        let _ = s.ws.close_with_code(1000);
    }
}

/// The token: the string itself, or what the function returns (awaited if a Promise).
async fn resolve_token(token: &JsValue) -> Result<String, JsValue> {
    let value = match token.dyn_ref::<Function>() {
        Some(f) => {
            let v = f.call0(&JsValue::UNDEFINED)?;
            match v.dyn_into::<Promise>() {
                Ok(p) => JsFuture::from(p).await?,
                Err(v) => v,
            }
        }
        None => token.clone(),
    };
    value
        .as_string()
        .ok_or_else(|| error("invalid_option", "the token function must return a string"))
}

fn to_js(value: &serde_json::Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &key.into(), value);
}

/// A `SealdropError` with `code`.
fn error(code: &str, message: &str) -> JsValue {
    new_error(message, code).into()
}
