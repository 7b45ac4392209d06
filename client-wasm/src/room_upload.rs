//! `uploader.upload(file, {room})`: an upload tied to a connected `RoomClient`
//! (docs/PROTOCOL.md, "Files in a room"). The uploader runs as always; this module adds
//! what the room needs around it, so the uploader itself changes at three points only
//! (the sealed `room` fields of the create, the room JWT on it, and the file id once
//! the session exists):
//!
//! - what members see of the file (name, type, key, path), sealed under the room key;
//! - `file-upload-progress` after every progress event of the upload (the room
//!   coalesces and measures speed and ETA itself), `file-upload-paused` / `-resumed`
//!   on the upload's state changes;
//! - `upload-control` from the uploader's other devices obeyed: pause, resume, cancel.
//!
//! A room upload is not kept for a resume after a reload: the room would have to learn
//! that the upload it lists is the one resumed (left to the reworked uploader, issue 14).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, Reflect};
use sealdrop_protocol::format::FileKey;
use sealdrop_protocol::lifecycle::State;
use sealdrop_protocol::room::files::SealedFields;
use sealdrop_protocol::wire::UploadRoom;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::ClientError;
use crate::platform;
use crate::room::RoomLink;
use crate::upload::Job;

/// One upload's tie to its room.
pub(crate) struct RoomTie {
    room: RoomLink,
    /// The path relative to a dropped folder (sealed as `sealedPath`).
    path: Option<String>,
    /// The room folder the file goes into.
    parent_id: Option<String>,
    /// The upload, once it exists (it owns this tie, hence `Weak`).
    job: RefCell<Weak<Job>>,
    /// The session's file id, once the create has answered.
    file_id: RefCell<Option<String>>,
    /// The JWT the create was sent with (a cancel may have to send the create again).
    bearer: RefCell<Option<String>>,
    /// Whether the room was told the upload paused (so a resume is told too).
    paused: Cell<bool>,
}

impl RoomTie {
    /// `options.room` (a connected `RoomClient`), with `options.path` and
    /// `options.parentId`.
    pub(crate) fn new(
        room: &JsValue,
        path: Option<String>,
        parent_id: Option<String>,
    ) -> Result<Rc<Self>, ClientError> {
        let room = RoomLink::of(room).ok_or_else(|| {
            ClientError::InvalidOption("upload options.room must be a connected RoomClient".into())
        })?;
        Ok(Rc::new(Self {
            room,
            path,
            parent_id,
            job: RefCell::new(Weak::new()),
            file_id: RefCell::new(None),
            bearer: RefCell::new(None),
            paused: Cell::new(false),
        }))
    }

    /// The upload this tie reports on and obeys for.
    pub(crate) fn attach(&self, job: &Rc<Job>) {
        *self.job.borrow_mut() = Rc::downgrade(job);
    }

    /// The `room` object of the create: name, type, file key and path sealed under the
    /// room key (FORMAT.md, "Room payloads", event `file`).
    pub(crate) fn fields(
        &self,
        name: &str,
        mime: &str,
        key: &FileKey,
    ) -> Result<UploadRoom, ClientError> {
        let seal = |field: &str, bytes: &[u8]| {
            self.room
                .seal_file_field(field, bytes)
                .map_err(|e| ClientError::InvalidOption(js_text(&e)))
        };
        Ok(UploadRoom {
            room_id: self.room.room_id(),
            sealed: SealedFields {
                sealed_name: seal("name", name.as_bytes())?,
                sealed_type: (!mime.is_empty())
                    .then(|| seal("type", mime.as_bytes()))
                    .transpose()?,
                // The key's 32 bytes (members see them base64url, as in `#k1.` links).
                sealed_key: Some(seal("key", key.as_bytes())?),
                sealed_path: self
                    .path
                    .as_deref()
                    .map(|p| seal("path", p.as_bytes()))
                    .transpose()?,
            },
            parent_id: self.parent_id.clone(),
        })
    }

    /// The room's JWT for the create (`Authorization: Bearer`).
    pub(crate) async fn bearer(&self) -> Result<String, ClientError> {
        let token = self.room.token().await.map_err(|e| ClientError::Api {
            status: 401,
            code: "invalid_token".into(),
            message: format!("the room token could not be obtained: {}", js_text(&e)),
            retry_after_ms: None,
        })?;
        *self.bearer.borrow_mut() = Some(token.clone());
        Ok(token)
    }

    /// The JWT last sent, for a create sent again to learn a session to delete.
    pub(crate) fn last_bearer(&self) -> Option<String> {
        self.bearer.borrow().clone()
    }

    /// The room admitted the upload as `file_id`: from now on it hears the upload's
    /// progress and the uploader's other devices can control it.
    pub(crate) fn opened(&self, file_id: &str) {
        *self.file_id.borrow_mut() = Some(file_id.to_owned());
        let job = self.job.borrow().clone();
        self.room.control(
            file_id,
            Rc::new(move |action: &str| {
                let Some(job) = job.upgrade() else { return };
                match action {
                    "pause" => job.control.pause(),
                    "resume" => job.control.resume(),
                    // The running upload stops, deletes its session, and the room ends
                    // the upload with `file-upload-failed` (reason `cancelled`).
                    "cancel" => {
                        job.control.cancel();
                    }
                    _ => {}
                }
            }),
        );
    }

    /// Wraps the caller's `onProgress` so every progress event is also reported to
    /// the room.
    pub(crate) fn on_progress(self: &Rc<Self>, caller: Option<Function>) -> Function {
        let tie = self.clone();
        let wrapped = Closure::<dyn Fn(JsValue)>::new(move |progress: JsValue| {
            if let Some(f) = &caller
                && let Err(e) = f.call1(&JsValue::UNDEFINED, &progress)
            {
                platform::warn("sealdrop: onProgress threw", &e);
            }
            let done = Reflect::get(&progress, &"bytesDone".into())
                .ok()
                .and_then(|v| v.as_f64());
            if let Some(done) = done {
                tie.progress(done as u64);
            }
        });
        wrapped.into_js_value().unchecked_into()
    }

    /// Wraps the caller's `onStateChange` so a pause and a resume are told to the
    /// room, and an ended upload stops obeying the room.
    pub(crate) fn on_state_change(self: &Rc<Self>, caller: Option<Function>) -> Function {
        let tie = self.clone();
        let wrapped =
            Closure::<dyn Fn(JsValue, JsValue)>::new(move |state: JsValue, error: JsValue| {
                if let Some(f) = &caller
                    && let Err(e) = f.call2(&JsValue::UNDEFINED, &state, &error)
                {
                    platform::warn("sealdrop: onStateChange threw", &e);
                }
                if let Some(state) = state.as_string() {
                    tie.state_changed(&state);
                }
            });
        wrapped.into_js_value().unchecked_into()
    }

    fn progress(&self, bytes_uploaded: u64) {
        let Some(file_id) = self.file_id.borrow().clone() else {
            return;
        };
        // Reports only while parts go: once completing, the room learns the end from
        // storage's answer (the last report is the one after the last part).
        let uploading = self
            .job
            .borrow()
            .upgrade()
            .is_some_and(|job| job.control.state() == State::Uploading);
        if uploading {
            self.room.tell(
                "file-upload-progress",
                &serde_json::json!({ "fileId": file_id, "bytesUploaded": bytes_uploaded }),
            );
        }
    }

    fn state_changed(&self, state: &str) {
        let Some(file_id) = self.file_id.borrow().clone() else {
            return;
        };
        let told = match state {
            "paused" if !self.paused.get() => {
                self.paused.set(true);
                Some("file-upload-paused")
            }
            "uploading" | "completing" if self.paused.get() => {
                self.paused.set(false);
                Some("file-upload-resumed")
            }
            "done" | "failed" | "cancelled" => {
                self.room.release(&file_id);
                None
            }
            _ => None,
        };
        if let Some(event) = told {
            self.room
                .tell(event, &serde_json::json!({ "fileId": file_id }));
        }
    }
}

fn js_text(value: &JsValue) -> String {
    Reflect::get(value, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
