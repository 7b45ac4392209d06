//! Files in a room: the machine's handlers for uploads in flight, the room's files and
//! folders, processing status, the audit log and offline members' notifications
//! (docs/PROTOCOL.md, Files in a room). A child of `machine`, so it shares the room's
//! state and helpers; everything it adds to that state is [`FileState`].
//!
//! Two kinds of input reach it:
//!
//! - socket events, through [`Room::file_event`] (progress reports, pause and resume,
//!   control requests, `share-file`, `files`, `remove-file`, `create-folder`,
//!   subscriptions, `audit`, `file-downloaded`);
//! - calls of the worker on behalf of the HTTP API ([`Room::admit_upload`],
//!   [`Room::upload_completed`], [`Room::upload_cancelled`], [`Room::processing`],
//!   [`Room::file_access`], [`Room::notification_failed`]), which answer JSON for the
//!   HTTP response besides their actions ([`Answered`]).
//!
//! Removing a file needs storage: the machine asks for it ([`Action::DeleteFiles`]) and
//! finishes when the shell reports back ([`Room::files_deleted`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;

use super::super::error::{RoomError, RoomErrorCode};
use super::super::file_frames::{
    ControlUpload, CreateFolder, FileAddedData, FileEntry, FileRef, FileRemovedData, MessageFile,
    Page, ReportProgress, ShareFile, UploadCompletedData, UploadControlData, UploadFailedData,
    UploadPauseData, UploadProgressData, UploadSnapshot, UploadStartedData,
};
use super::super::files::{
    AuditAction, AuditEntry, FILES_SCHEMA_VERSION, FailReason, MAX_SEALED_LINK_CHARS, Notification,
    NotifyKind, RoomFile, SealedFields, StoredFile, StoredUpload, folder_id, valid_file_id,
};
use super::super::frame::{ClientEvent, EventKind, ack_frame, frame, frame_raw, to_json};
use super::super::ids::ConnId;
use super::super::processing::{self, ProcessingEvent, ProcessingState};
use super::super::progress::{Emit, Progress};
use super::super::seal::check_sealed;
use super::super::store::{ConnAuth, RoomStore, StoreError, StoredRoom, Write};
use super::super::time::iso8601;
use super::{Action, Out, RawJson, Req, Room, internal, message_ack};
use crate::jwt::Role;

/// What the machine keeps about files in memory (rebuilt from storage on wake).
#[derive(Debug, Default)]
pub(super) struct FileState {
    /// Uploads in flight, by file id.
    uploads: BTreeMap<String, Upload>,
    /// The highest audit seq.
    audit_head: u64,
    /// When each member was last notified, ms.
    notified: HashMap<String, u64>,
    /// Removals waiting for storage, by their number.
    removals: BTreeMap<u64, Removal>,
    next_removal: u64,
    /// Files and folders being removed.
    removing: BTreeSet<String>,
}

impl FileState {
    /// The state a woken room starts from.
    pub(super) fn restore(stored: &mut StoredRoom, now: u64) -> Self {
        let uploads = std::mem::take(&mut stored.uploads)
            .into_iter()
            .map(|row| {
                let progress = Progress::new(row.size, row.bytes, now);
                (row.file_id.clone(), Upload { row, progress })
            })
            .collect();
        Self {
            uploads,
            audit_head: stored.audit_head,
            notified: std::mem::take(&mut stored.notified).into_iter().collect(),
            ..Self::default()
        }
    }
}

/// An upload in flight: its row and its progress (memory only).
#[derive(Debug)]
struct Upload {
    row: StoredUpload,
    progress: Progress,
}

/// A `remove-file` waiting for storage.
#[derive(Debug)]
struct Removal {
    conn: ConnId,
    request_id: Option<String>,
    by: ConnAuth,
    /// The file or folder asked for.
    target: String,
    /// Whether it is a folder (the last entry, which storage does not hold).
    folder: bool,
    /// Everything that goes: a folder's files, then the folder.
    entries: Vec<String>,
}

/// An upload the worker asks the room to admit (`POST /api/uploads` with `room`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmitUpload {
    /// The upload's file id.
    pub file_id: String,
    /// The uploader (the JWT's `sub`).
    pub user_id: String,
    /// Their name (the JWT's `name`).
    pub user_name: String,
    /// Their role in this room (from the JWT).
    pub role: Role,
    /// The file's plaintext size.
    pub size: u64,
    /// What the browser sealed under the room key.
    pub sealed: SealedFields,
    /// The folder it goes into.
    pub parent_id: Option<String>,
}

/// The answer to one of the worker's calls (the JSON of a `200`, or the refusal), and
/// what the shell must do, in order, before answering.
#[derive(Debug)]
#[must_use]
pub struct Answered {
    /// JSON text, or why not.
    pub answer: Result<String, RoomError>,
    /// Storage writes, frames, the alarm.
    pub actions: Vec<Action>,
}

impl Room {
    // -----------------------------------------------------------------------------
    // Socket events
    // -----------------------------------------------------------------------------

    /// Handles a file event of a joined socket.
    pub(super) fn file_event(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        event: ClientEvent,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        match event {
            ClientEvent::ReportProgress(r) => self.report_progress(now, req, auth, r, out),
            ClientEvent::UploadPaused(f) => self.pause_upload(now, req, auth, f, true, out),
            ClientEvent::UploadResumed(f) => self.pause_upload(now, req, auth, f, false, out),
            ClientEvent::ControlUpload(c) => self.control_upload(req, auth, c, out),
            ClientEvent::ShareFile(s) => self.share_file(now, req, auth, s, store, out),
            ClientEvent::Files(p) => self.files_request(req, p, store, out),
            ClientEvent::RemoveFile(f) => self.remove_file(now, req, auth, f, store, out),
            ClientEvent::CreateFolder(c) => self.create_folder(now, req, auth, c, out),
            ClientEvent::SubscribeFile(f) => self.subscribe(req, f, true, store, out),
            ClientEvent::UnsubscribeFile(f) => self.subscribe(req, f, false, store, out),
            ClientEvent::Audit(p) => self.audit_request(req, auth, p, store, out),
            ClientEvent::FileDownloaded(f) => self.downloaded(now, req, auth, f, store, out),
            _ => Ok(()),
        }
    }

    /// `file-upload-progress`: the uploader's count, coalesced (`progress.rs`).
    fn report_progress(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        report: ReportProgress,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        check_upload_id(&report.file_id, report.upload_id.as_deref())?;
        let rules = self.limits.progress.clone();
        let upload = self.uploader_upload(&report.file_id, auth, "report its progress")?;
        let emit = upload
            .progress
            .report(now, report.bytes_uploaded, &rules)
            .map_err(|e| RoomError::new(RoomErrorCode::InvalidProgress, e.to_string()))?;
        let broadcast = emit == Emit::Now;
        if broadcast {
            self.broadcast_progress(now, &report.file_id, out);
        }
        let body = json!({
            "fileId": report.file_id,
            "bytesUploaded": report.bytes_uploaded,
            "broadcast": broadcast,
        });
        out.ack(req, &body);
        Ok(())
    }

    /// `file-upload-paused` / `file-upload-resumed`: the uploading device says so.
    fn pause_upload(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        file: FileRef,
        pause: bool,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        check_upload_id(&file.file_id, file.upload_id.as_deref())?;
        let what = if pause { "pause it" } else { "resume it" };
        let upload = self.uploader_upload(&file.file_id, auth, what)?;
        let changed = upload.row.paused != pause;
        if changed {
            upload.row.paused = pause;
            upload.row.bytes = upload.progress.bytes();
            upload.progress.restart(now);
            let row = upload.row.clone();
            out.store(Write::Upload(row.clone()));
            let at = Some(iso8601(now));
            let data = UploadPauseData {
                room_id: &self.room_id,
                file_id: &row.file_id,
                upload_id: &row.file_id,
                user_id: &row.user_id,
                bytes_uploaded: row.bytes,
                paused_at: at.clone().filter(|_| pause),
                resumed_at: at.filter(|_| !pause),
            };
            let event = if pause {
                "file-upload-paused"
            } else {
                "file-upload-resumed"
            };
            out.broadcast(self.joined(None), frame(event, &data));
        }
        let state = if pause { "paused" } else { "uploading" };
        out.ack(
            req,
            &json!({ "fileId": file.file_id, "state": state, "changed": changed }),
        );
        Ok(())
    }

    /// `control-upload`: another device of the uploader asks the uploading device to
    /// pause, resume or cancel; the room relays it to the uploader's other devices.
    fn control_upload(
        &mut self,
        req: Req<'_>,
        auth: &ConnAuth,
        control: ControlUpload,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        self.uploader_upload(&control.file_id, auth, "control it")?;
        let devices: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| {
                c.state.joined
                    && c.state.id != req.conn
                    && c.state
                        .auth
                        .as_ref()
                        .is_some_and(|a| a.user_id == auth.user_id)
            })
            .map(|c| c.state.id)
            .collect();
        let delivered = devices.len();
        let data = UploadControlData {
            room_id: &self.room_id,
            file_id: &control.file_id,
            action: control.action,
            requested_by: req.conn.session_id(),
        };
        out.broadcast(devices, frame("upload-control", &data));
        let body = json!({
            "fileId": control.file_id,
            "action": control.action,
            "delivered": delivered,
        });
        out.ack(req, &body);
        Ok(())
    }

    /// `share-file`: a chat message carrying a room file's sealed link.
    fn share_file(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        share: ShareFile,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        require_upload_role(auth.role, "share files")?;
        check_sealed(&share.link, MAX_SEALED_LINK_CHARS)
            .map_err(|why| RoomError::invalid_data(format!("share-file: link {why}")))?;
        if let Some(message) = &share.message {
            check_sealed(message, self.limits.max_text_chars)
                .map_err(|why| RoomError::invalid_data(format!("share-file: message {why}")))?;
        }
        let file = self.room_file(&share.file_id, store)?;
        let message = (
            share.message.unwrap_or_default(),
            Vec::new(),
            Some(MessageFile {
                file_id: share.file_id.clone(),
                link: share.link,
            }),
        );
        let Some(data) = self.post_message(now, req, auth, message, store, out)? else {
            return Ok(());
        };
        let size = (!file.file.is_folder).then_some(file.file.size);
        self.audit(
            now,
            AuditAction::Shared,
            Some(&share.file_id),
            auth,
            size,
            None,
            out,
        );
        self.notify_offline(now, auth, NotifyKind::Message, out);
        out.ack(req, &message_ack(&data, false));
        Ok(())
    }

    /// `files`: a page of the room's files and folders, oldest first.
    fn files_request(
        &mut self,
        req: Req<'_>,
        page: Page,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        let limit = self.page_limit("files", page.limit)?;
        let json = self
            .files_page(page.before_seq.unwrap_or(u64::MAX), limit, store)
            .map_err(|e| internal(&e))?;
        match req.id {
            Some(id) => out.send(req.conn, ack_frame(id, &RawJson(&json))),
            None => out.send(req.conn, frame_raw("files", None, &json)),
        }
        Ok(())
    }

    /// `remove-file`: the uploader or a moderator removes a file (or a folder and every
    /// file in it); storage is deleted first, then the room forgets it.
    fn remove_file(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        file: FileRef,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        let target = self.room_file(&file.file_id, store)?;
        if target.file.uploaded_by != auth.user_id && !auth.role.can_moderate() {
            return Err(RoomError::new(
                RoomErrorCode::Forbidden,
                "only its uploader or a moderator may remove a file",
            ));
        }
        let mut entries = Vec::new();
        if target.file.is_folder {
            let children = store.children(&file.file_id).map_err(|e| internal(&e))?;
            entries.extend(children.into_iter().map(|c| c.file.id));
        }
        if entries.iter().any(|id| self.files.removing.contains(id)) {
            return Err(file_busy());
        }
        entries.push(file.file_id.clone());
        let in_storage: Vec<String> = match target.file.is_folder {
            true => entries[..entries.len() - 1].to_vec(),
            false => entries.clone(),
        };
        self.files.removing.extend(entries.iter().cloned());
        let removal = self.files.next_removal;
        self.files.next_removal += 1;
        self.files.removals.insert(
            removal,
            Removal {
                conn: req.conn,
                request_id: req.id.map(str::to_owned),
                by: auth.clone(),
                target: file.file_id,
                folder: target.file.is_folder,
                entries,
            },
        );
        if in_storage.is_empty() {
            // An empty folder has nothing in storage.
            self.finish_removal(now, removal, &[], out);
        } else {
            out.0.push(Action::DeleteFiles {
                removal,
                file_ids: in_storage,
            });
        }
        Ok(())
    }

    /// `create-folder`: a folder entry, which uploads name as their `parentId`.
    fn create_folder(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        folder: CreateFolder,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        require_upload_role(auth.role, "make folders")?;
        self.require_unlocked()?;
        let sealed = SealedFields {
            sealed_name: folder.sealed_name,
            ..SealedFields::default()
        };
        sealed
            .check()
            .map_err(|why| RoomError::invalid_data(format!("create-folder: {why}")))?;
        let seq = self.head + 1;
        let file = RoomFile {
            id: folder_id(seq),
            sealed,
            size: 0,
            uploaded_by: auth.user_id.clone(),
            uploaded_by_name: auth.user_name.clone(),
            created_at: iso8601(self.tick(now)),
            parent_id: None,
            is_folder: true,
        };
        self.add_file(now, file.clone(), out);
        self.audit(
            now,
            AuditAction::FolderCreated,
            Some(&file.id),
            auth,
            None,
            None,
            out,
        );
        self.notify_offline(now, auth, NotifyKind::File, out);
        out.ack(req, &json!({ "fileId": file.id, "seq": seq }));
        Ok(())
    }

    /// `subscribe:file` / `unsubscribe:file`: the socket receives (or stops receiving)
    /// the file's `processing:*` events.
    fn subscribe(
        &mut self,
        req: Req<'_>,
        file: FileRef,
        on: bool,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        check_upload_id(&file.file_id, file.upload_id.as_deref())?;
        let max = self.limits.max_subscriptions;
        let (event, body) = if on {
            let processing = match self.files.uploads.contains_key(&file.file_id) {
                true => None,
                false => self.room_file(&file.file_id, store)?.processing,
            };
            let Some(conn) = self.conns.get_mut(&req.conn) else {
                return Ok(());
            };
            let subs = &mut conn.state.subscriptions;
            if !subs.contains(&file.file_id) {
                if subs.len() >= max {
                    return Err(RoomError::invalid_data(format!(
                        "subscribe:file: a socket may subscribe to at most {max} files"
                    )));
                }
                subs.push(file.file_id.clone());
                out.0.push(Action::Save(conn.state.clone()));
            }
            let processing = processing
                .as_deref()
                .and_then(|p| serde_json::from_str::<ProcessingState>(p).ok());
            let body = json!({
                "roomId": self.room_id,
                "fileId": file.file_id,
                "processing": processing,
            });
            ("subscribed", body)
        } else {
            if let Some(conn) = self.conns.get_mut(&req.conn) {
                let before = conn.state.subscriptions.len();
                conn.state.subscriptions.retain(|f| f != &file.file_id);
                if conn.state.subscriptions.len() != before {
                    out.0.push(Action::Save(conn.state.clone()));
                }
            }
            let body = json!({ "roomId": self.room_id, "fileId": file.file_id });
            ("unsubscribed", body)
        };
        out.send(req.conn, frame(event, &body));
        out.ack(req, &body);
        Ok(())
    }

    /// `audit`: a page of the audit log, oldest first (moderators and owners).
    fn audit_request(
        &mut self,
        req: Req<'_>,
        auth: &ConnAuth,
        page: Page,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        if !auth.role.can_moderate() {
            return Err(RoomError::new(
                RoomErrorCode::Forbidden,
                "only a moderator or the owner may read the audit log",
            ));
        }
        let limit = self.page_limit("audit", page.limit)?;
        let before = page.before_seq.unwrap_or(u64::MAX);
        let mut rows = store
            .audit_before(before, limit + 1)
            .map_err(|e| internal(&e))?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        rows.reverse();
        let body = json!({ "roomId": self.room_id, "entries": rows, "hasMore": has_more });
        match req.id {
            Some(id) => out.send(req.conn, ack_frame(id, &body)),
            None => out.send(req.conn, frame("audit", &body)),
        }
        Ok(())
    }

    /// `file-downloaded`: a member reports a completed download, for the audit log.
    fn downloaded(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        file: FileRef,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        let stored = self.room_file(&file.file_id, store)?;
        let size = (!stored.file.is_folder).then_some(stored.file.size);
        self.audit(
            now,
            AuditAction::Downloaded,
            Some(&file.file_id),
            auth,
            size,
            None,
            out,
        );
        out.ack(req, &json!({ "fileId": file.file_id }));
        Ok(())
    }

    // -----------------------------------------------------------------------------
    // The worker's calls
    // -----------------------------------------------------------------------------

    /// Admits an upload into the room, before its session is created: the uploader
    /// must be a member whose role may upload, the room unlocked. Answers `{fileId,
    /// expiresAt}`; admitting the same upload again answers the same.
    pub fn admit_upload(
        &mut self,
        now: u64,
        admit: AdmitUpload,
        store: &impl RoomStore,
    ) -> Answered {
        let mut out = self.begin();
        let answer = self.admit(now, admit, store, &mut out);
        self.reschedule(now, &mut out);
        Answered {
            answer,
            actions: out.0,
        }
    }

    fn admit(
        &mut self,
        now: u64,
        admit: AdmitUpload,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<String, RoomError> {
        if !valid_file_id(&admit.file_id) {
            return Err(RoomError::invalid_data("fileId is not a file id"));
        }
        admit
            .sealed
            .check()
            .map_err(|why| RoomError::invalid_data(format!("room: {why}")))?;
        if admit.sealed.sealed_key.is_none() {
            return Err(RoomError::invalid_data(
                "room: sealedKey is required (members open the file with it)",
            ));
        }
        let answer =
            |expires_at: u64| to_json(&json!({ "fileId": admit.file_id, "expiresAt": expires_at }));
        if let Some(upload) = self.files.uploads.get(&admit.file_id) {
            // The same create again (a retried request): the same answer.
            let same = upload.row.user_id == admit.user_id
                && upload.row.size == admit.size
                && upload.row.sealed == admit.sealed
                && upload.row.parent_id == admit.parent_id;
            return match same {
                true => Ok(answer(upload.row.expires_at)),
                false => Err(RoomError::invalid_data(
                    "another upload of this room has this file id",
                )),
            };
        }
        if !self.members.contains_key(&admit.user_id) {
            return Err(RoomError::new(
                RoomErrorCode::Forbidden,
                "only members upload into a room: join it first",
            ));
        }
        require_upload_role(admit.role, "upload")?;
        self.require_unlocked()?;
        if store
            .file(&admit.file_id)
            .map_err(|e| internal(&e))?
            .is_some()
        {
            return Err(RoomError::invalid_data(
                "the room already has a file with this id",
            ));
        }
        if let Some(parent) = &admit.parent_id {
            let folder = store.file(parent).map_err(|e| internal(&e))?;
            if !folder.is_some_and(|f| f.file.is_folder) || self.files.removing.contains(parent) {
                return Err(RoomError::new(
                    RoomErrorCode::FileNotFound,
                    format!("room: parentId {parent:?} is not a folder of this room"),
                ));
            }
        }
        let max = self.limits.max_uploads;
        if self.files.uploads.len() >= max {
            return Err(RoomError::new(
                RoomErrorCode::TooManyUploads,
                format!("the room has its maximum of {max} uploads in flight; retry later"),
            ));
        }
        let row = StoredUpload {
            v: FILES_SCHEMA_VERSION,
            file_id: admit.file_id.clone(),
            user_id: admit.user_id.clone(),
            user_name: admit.user_name.clone(),
            size: admit.size,
            sealed: admit.sealed,
            parent_id: admit.parent_id,
            started_at: now,
            expires_at: now.saturating_add(self.limits.upload_ttl_ms),
            paused: false,
            bytes: 0,
        };
        out.store(Write::Upload(row.clone()));
        let data = UploadStartedData {
            room_id: self.room_id.clone(),
            file_id: row.file_id.clone(),
            upload_id: row.file_id.clone(),
            user_id: row.user_id.clone(),
            user_name: row.user_name.clone(),
            size: row.size,
            sealed: row.sealed.clone(),
            parent_id: row.parent_id.clone(),
            started_at: iso8601(self.tick(now)),
        };
        self.publish(
            now,
            EventKind::FileUploadStarted,
            &row.user_id,
            None,
            &to_json(&data),
            out,
        );
        let who = ConnAuth {
            user_id: row.user_id.clone(),
            user_name: row.user_name.clone(),
            role: admit.role,
        };
        self.audit(
            now,
            AuditAction::UploadStarted,
            Some(&row.file_id),
            &who,
            Some(row.size),
            None,
            out,
        );
        let expires_at = row.expires_at;
        self.files.uploads.insert(
            row.file_id.clone(),
            Upload {
                progress: Progress::new(row.size, 0, now),
                row,
            },
        );
        Ok(answer(expires_at))
    }

    /// Storage completed an upload of this room: `file-upload-completed`, then
    /// `file-added`. Answers `{fileId, seq}` (the `file-added` seq); a completion
    /// reported again answers the same. `file_not_found` if the room never admitted it
    /// (or gave up on it).
    pub fn upload_completed(
        &mut self,
        now: u64,
        file_id: &str,
        store: &impl RoomStore,
    ) -> Answered {
        let mut out = self.begin();
        let answer = self.complete_upload(now, file_id, store, &mut out);
        self.reschedule(now, &mut out);
        Answered {
            answer,
            actions: out.0,
        }
    }

    fn complete_upload(
        &mut self,
        now: u64,
        file_id: &str,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<String, RoomError> {
        let answer = |seq: u64| to_json(&json!({ "fileId": file_id, "seq": seq }));
        if !self.files.uploads.contains_key(file_id) {
            return match store.file(file_id).map_err(|e| internal(&e))? {
                Some(done) => Ok(answer(done.seq)),
                None => Err(not_in_room(file_id)),
            };
        }
        // The final value always goes out: whatever was kept, then completion.
        if self.files.uploads[file_id]
            .progress
            .due(&self.limits.progress)
            .is_some()
        {
            self.broadcast_progress(now, file_id, out);
        }
        let Some(Upload { row, .. }) = self.files.uploads.remove(file_id) else {
            return Err(not_in_room(file_id));
        };
        out.store(Write::RemoveUpload(row.file_id.clone()));
        let at = iso8601(self.tick(now));
        let data = UploadCompletedData {
            room_id: self.room_id.clone(),
            file_id: row.file_id.clone(),
            upload_id: row.file_id.clone(),
            user_id: row.user_id.clone(),
            user_name: row.user_name.clone(),
            size: row.size,
            completed_at: at.clone(),
        };
        self.publish(
            now,
            EventKind::FileUploadCompleted,
            &row.user_id,
            None,
            &to_json(&data),
            out,
        );
        // A folder removed while its file was uploading: the file lands at the top.
        let parent_id = match row.parent_id {
            Some(parent)
                if !self.files.removing.contains(&parent)
                    && store.file(&parent).map_err(|e| internal(&e))?.is_some() =>
            {
                Some(parent)
            }
            _ => None,
        };
        let file = RoomFile {
            id: row.file_id.clone(),
            sealed: row.sealed,
            size: row.size,
            uploaded_by: row.user_id.clone(),
            uploaded_by_name: row.user_name.clone(),
            created_at: at,
            parent_id,
            is_folder: false,
        };
        let seq = self.add_file(now, file, out);
        let who = self.member_auth(&row.user_id, &row.user_name);
        self.audit(
            now,
            AuditAction::UploadCompleted,
            Some(&row.file_id),
            &who,
            Some(row.size),
            None,
            out,
        );
        self.notify_offline(now, &who, NotifyKind::File, out);
        Ok(answer(seq))
    }

    /// An upload of this room ended without a file (its session was aborted):
    /// `file-upload-failed`. Answers `{fileId}`, also when the room had already
    /// forgotten it.
    pub fn upload_cancelled(&mut self, now: u64, file_id: &str) -> Answered {
        let mut out = self.begin();
        self.end_upload(now, file_id, FailReason::Cancelled, &mut out);
        self.reschedule(now, &mut out);
        Answered {
            answer: Ok(to_json(&json!({ "fileId": file_id }))),
            actions: out.0,
        }
    }

    /// The file's owner deleted it (`DELETE /api/files/{id}`): storage holds nothing
    /// more, so it leaves the room as a removal does (`file-removed`, by its uploader,
    /// audited). A file the room does not list, a folder, or one a removal is deleting
    /// already (that removal finishes it) changes nothing.
    pub fn file_deleted(&mut self, now: u64, file_id: &str, store: &impl RoomStore) -> Answered {
        let mut out = Out::default();
        let answer = match self.room_file(file_id, store) {
            Ok(stored) if !stored.file.is_folder => {
                let by = self.member_auth(&stored.file.uploaded_by, &stored.file.uploaded_by_name);
                self.file_gone(now, file_id, &by, &mut out);
                Ok(to_json(&json!({ "fileId": file_id, "removed": true })))
            }
            Ok(_) => Err(RoomError::invalid_data(
                "a folder is not deleted through the file API",
            )),
            Err(e) if e.code == RoomErrorCode::FileBusy => {
                Ok(to_json(&json!({ "fileId": file_id, "removed": false })))
            }
            Err(e) => Err(e),
        };
        self.reschedule(now, &mut out);
        Answered {
            answer,
            actions: out.0,
        }
    }

    /// `file_id` left storage: the room forgets it, says `file-removed` and audits it.
    fn file_gone(&mut self, now: u64, file_id: &str, by: &ConnAuth, out: &mut Out) {
        out.store(Write::RemoveFile(file_id.to_owned()));
        let data = FileRemovedData {
            room_id: self.room_id.clone(),
            file_id: file_id.to_owned(),
            removed_by: by.user_id.clone(),
            removed_by_name: by.user_name.clone(),
            removed_at: iso8601(self.tick(now)),
        };
        self.publish(
            now,
            EventKind::FileRemoved,
            &by.user_id,
            None,
            &to_json(&data),
            out,
        );
        self.audit(
            now,
            AuditAction::Removed,
            Some(file_id),
            by,
            None,
            None,
            out,
        );
    }

    fn end_upload(&mut self, now: u64, file_id: &str, reason: FailReason, out: &mut Out) {
        let Some(Upload { row, .. }) = self.files.uploads.remove(file_id) else {
            return;
        };
        out.store(Write::RemoveUpload(row.file_id.clone()));
        let data = UploadFailedData {
            room_id: self.room_id.clone(),
            file_id: row.file_id.clone(),
            upload_id: row.file_id.clone(),
            user_id: row.user_id.clone(),
            user_name: row.user_name.clone(),
            reason,
            failed_at: iso8601(self.tick(now)),
        };
        self.publish(
            now,
            EventKind::FileUploadFailed,
            &row.user_id,
            None,
            &to_json(&data),
            out,
        );
        let who = self.member_auth(&row.user_id, &row.user_name);
        let detail = Some(reason.as_str());
        self.audit(
            now,
            AuditAction::UploadFailed,
            Some(&row.file_id),
            &who,
            Some(row.size),
            detail,
            out,
        );
    }

    /// A processor's report on one of the room's files: validated against the file's
    /// status, stored, and sent to the sockets subscribed to the file. Answers the new
    /// status and how many sockets it reached.
    pub fn processing(
        &mut self,
        now: u64,
        file_id: &str,
        processor: &str,
        event: &ProcessingEvent,
        store: &impl RoomStore,
    ) -> Answered {
        let mut out = self.begin();
        let answer = self.process(now, file_id, processor, event, store, &mut out);
        Answered {
            answer,
            actions: out.0,
        }
    }

    fn process(
        &mut self,
        now: u64,
        file_id: &str,
        processor: &str,
        event: &ProcessingEvent,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<String, RoomError> {
        let mut stored = self.room_file(file_id, store)?;
        if stored.file.is_folder {
            return Err(RoomError::new(
                RoomErrorCode::FileNotFound,
                "a folder has no processing status: report on its files",
            ));
        }
        let current = stored
            .processing
            .as_deref()
            .and_then(|p| serde_json::from_str::<ProcessingState>(p).ok());
        let at = iso8601(now);
        let state = processing::apply(current.as_ref(), processor, event, &at)
            .map_err(|e| RoomError::new(RoomErrorCode::ProcessingOutOfOrder, e.0))?;
        stored.processing = Some(to_json(&state));
        out.store(Write::File(stored));
        let raw = |json: &Option<String>| {
            json.as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        };
        let mut data = json!({
            "roomId": self.room_id,
            "fileId": file_id,
            "processor": processor,
        });
        let fields = match event {
            ProcessingEvent::Started { message, metadata } => {
                json!({ "message": message, "metadata": raw(metadata) })
            }
            ProcessingEvent::Progress {
                progress,
                message,
                metadata,
            } => json!({
                "progress": progress,
                "status": "processing",
                "message": message,
                "metadata": raw(metadata),
            }),
            ProcessingEvent::Completed { message, result } => {
                json!({ "message": message, "result": raw(result) })
            }
            ProcessingEvent::Failed { error, message } => {
                json!({ "error": error, "message": message })
            }
        };
        if let (Some(data), serde_json::Value::Object(fields)) = (data.as_object_mut(), fields) {
            data.extend(fields.into_iter().filter(|(_, v)| !v.is_null()));
            data.insert("timestamp".into(), at.into());
        }
        let subscribers: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| c.state.joined && c.state.subscriptions.iter().any(|f| f == file_id))
            .map(|c| c.state.id)
            .collect();
        let reached = subscribers.len();
        out.broadcast(subscribers, frame(event.room_event(), &data));
        Ok(to_json(&json!({
            "fileId": file_id,
            "status": state.status,
            "progress": state.progress,
            "subscribers": reached,
        })))
    }

    /// Whether `user_id` may read file `file_id` of this room (a member, and the file a
    /// file of the room): the room's file, or why not. Changes nothing.
    pub fn file_access(
        &self,
        user_id: &str,
        file_id: &str,
        store: &impl RoomStore,
    ) -> Result<RoomFile, RoomError> {
        if !self.members.contains_key(user_id) {
            return Err(RoomError::new(
                RoomErrorCode::Forbidden,
                "only members read a room's files: join it first",
            ));
        }
        let stored = self.room_file(file_id, store)?;
        if stored.file.is_folder {
            return Err(RoomError::new(
                RoomErrorCode::FileNotFound,
                "this is a folder: read its files",
            ));
        }
        Ok(stored.file)
    }

    /// A webhook to `user_id` failed after its last retry: recorded in the audit log.
    pub fn notification_failed(&mut self, now: u64, user_id: &str, kind: NotifyKind) -> Answered {
        let mut out = self.begin();
        let name = self
            .members
            .get(user_id)
            .map_or(user_id, |m| m.user_name.as_str())
            .to_owned();
        let who = self.member_auth(user_id, &name);
        let detail = match kind {
            NotifyKind::Message => "message",
            NotifyKind::File => "file",
        };
        self.audit(
            now,
            AuditAction::NotificationFailed,
            None,
            &who,
            None,
            Some(detail),
            &mut out,
        );
        Answered {
            answer: Ok("{}".into()),
            actions: out.0,
        }
    }

    /// Storage reports on removal `removal`: `deleted` are the files it deleted (a file
    /// that was already gone counts as deleted). What was deleted leaves the room
    /// (`file-removed` each, the folder last once all its files went); the requester
    /// is answered.
    pub fn files_deleted(&mut self, now: u64, removal: u64, deleted: &[String]) -> Vec<Action> {
        let mut out = self.begin();
        self.finish_removal(now, removal, deleted, &mut out);
        self.reschedule(now, &mut out);
        out.0
    }

    fn finish_removal(&mut self, now: u64, removal: u64, deleted: &[String], out: &mut Out) {
        let Some(r) = self.files.removals.remove(&removal) else {
            return;
        };
        for id in &r.entries {
            self.files.removing.remove(id);
        }
        let folder = r.entries.last().filter(|_| r.folder);
        let mut removed = Vec::new();
        for id in &r.entries {
            // A folder goes once every file in it went.
            let all_children_gone = removed.len() == r.entries.len() - 1;
            let gone = deleted.contains(id) || (Some(id) == folder && all_children_gone);
            if !gone {
                continue;
            }
            self.file_gone(now, id, &r.by, out);
            removed.push(id.clone());
        }
        if !self.conns.contains_key(&r.conn) {
            return;
        }
        let id = r.request_id.as_deref();
        if removed.contains(&r.target) {
            if let Some(id) = id {
                let body = json!({ "fileId": r.target, "removed": removed });
                out.send(r.conn, ack_frame(id, &body));
            }
        } else {
            let e = RoomError::new(
                RoomErrorCode::Internal,
                format!(
                    "storage did not delete every file ({} of {} removed); retry",
                    removed.len(),
                    r.entries.len()
                ),
            );
            out.error(r.conn, id, &e);
        }
    }

    // -----------------------------------------------------------------------------
    // The alarm, join snapshots
    // -----------------------------------------------------------------------------

    /// The earliest time a kept progress value is due or an upload expires.
    pub(super) fn files_due(&self) -> Option<u64> {
        let rules = &self.limits.progress;
        self.files
            .uploads
            .values()
            .flat_map(|u| [u.progress.due(rules), Some(u.row.expires_at)])
            .flatten()
            .min()
    }

    /// Sends the kept progress values that are due, and gives up on expired uploads.
    pub(super) fn files_alarm(&mut self, now: u64, out: &mut Out) {
        let rules = self.limits.progress.clone();
        let due: Vec<String> = self
            .files
            .uploads
            .iter()
            .filter(|(_, u)| u.progress.due(&rules).is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.broadcast_progress(now, &id, out);
        }
        let expired: Vec<String> = self
            .files
            .uploads
            .iter()
            .filter(|(_, u)| u.row.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.end_upload(now, &id, FailReason::Expired, out);
        }
    }

    /// The `uploads` frame a joining socket gets: every upload in flight, with its
    /// figures now.
    pub(super) fn uploads_frame(&self, now: u64) -> String {
        let rules = &self.limits.progress;
        let uploads: Vec<UploadSnapshot> = self
            .files
            .uploads
            .values()
            .map(|u| UploadSnapshot {
                started: UploadStartedData {
                    room_id: self.room_id.clone(),
                    file_id: u.row.file_id.clone(),
                    upload_id: u.row.file_id.clone(),
                    user_id: u.row.user_id.clone(),
                    user_name: u.row.user_name.clone(),
                    size: u.row.size,
                    sealed: u.row.sealed.clone(),
                    parent_id: u.row.parent_id.clone(),
                    started_at: iso8601(u.row.started_at),
                },
                state: if u.row.paused { "paused" } else { "uploading" },
                progress: u.progress.view(now, rules),
            })
            .collect();
        frame(
            "uploads",
            &json!({ "roomId": self.room_id, "uploads": uploads }),
        )
    }

    /// `{"roomId", "files": [...], "hasMore"}`: up to `limit` files and folders with a
    /// seq below `before`, oldest first.
    pub(super) fn files_page(
        &self,
        before: u64,
        limit: usize,
        store: &impl RoomStore,
    ) -> Result<String, StoreError> {
        let mut rows = store.files_before(before, limit + 1)?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        rows.reverse();
        let files: Vec<FileEntry> = rows
            .into_iter()
            .map(|r| FileEntry {
                processing: r
                    .processing
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok()),
                seq: r.seq,
                file: r.file,
            })
            .collect();
        Ok(to_json(&json!({
            "roomId": self.room_id,
            "files": files,
            "hasMore": has_more,
        })))
    }

    // -----------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------

    /// The upload in flight `file_id`, if `auth` is its uploader.
    fn uploader_upload(
        &mut self,
        file_id: &str,
        auth: &ConnAuth,
        what: &str,
    ) -> Result<&mut Upload, RoomError> {
        let upload = self.files.uploads.get_mut(file_id).ok_or_else(|| {
            RoomError::new(
                RoomErrorCode::FileNotFound,
                format!("no upload {file_id:?} is in flight in this room"),
            )
        })?;
        if upload.row.user_id != auth.user_id {
            return Err(RoomError::new(
                RoomErrorCode::Forbidden,
                format!("only the uploader (on any of their devices) may {what}"),
            ));
        }
        Ok(upload)
    }

    /// Broadcasts upload `file_id`'s progress now.
    fn broadcast_progress(&mut self, now: u64, file_id: &str, out: &mut Out) {
        let rules = self.limits.progress.clone();
        let everyone = self.joined(None);
        let Some(upload) = self.files.uploads.get_mut(file_id) else {
            return;
        };
        let data = UploadProgressData {
            room_id: &self.room_id,
            file_id,
            upload_id: file_id,
            user_id: &upload.row.user_id,
            progress: upload.progress.view(now, &rules),
        };
        out.broadcast(everyone, frame("file-upload-progress", &data));
        upload.progress.sent(now);
    }

    /// A file or folder of the room that is not being removed.
    fn room_file(&self, file_id: &str, store: &impl RoomStore) -> Result<StoredFile, RoomError> {
        if self.files.removing.contains(file_id) {
            return Err(file_busy());
        }
        store
            .file(file_id)
            .map_err(|e| internal(&e))?
            .ok_or_else(|| not_in_room(file_id))
    }

    /// Stores `file` and publishes `file-added`; returns its seq.
    fn add_file(&mut self, now: u64, file: RoomFile, out: &mut Out) -> u64 {
        let data = FileAddedData {
            room_id: self.room_id.clone(),
            file: file.clone(),
        };
        let sender = file.uploaded_by.clone();
        self.publish(
            now,
            EventKind::FileAdded,
            &sender,
            None,
            &to_json(&data),
            out,
        );
        out.store(Write::File(StoredFile {
            seq: self.head,
            at: self.last_at,
            file,
            processing: None,
        }));
        self.head
    }

    /// Appends an audit entry.
    #[allow(clippy::too_many_arguments)]
    fn audit(
        &mut self,
        now: u64,
        action: AuditAction,
        file_id: Option<&str>,
        who: &ConnAuth,
        size: Option<u64>,
        detail: Option<&str>,
        out: &mut Out,
    ) {
        self.files.audit_head += 1;
        out.store(Write::Audit(AuditEntry {
            seq: self.files.audit_head,
            at: iso8601(self.tick(now)),
            action,
            file_id: file_id.map(str::to_owned),
            user_id: who.user_id.clone(),
            user_name: who.user_name.clone(),
            size,
            detail: detail.map(str::to_owned),
        }));
    }

    /// Asks for a webhook to every member with no device connected (the sender aside)
    /// who was not notified within the interval.
    pub(super) fn notify_offline(
        &mut self,
        now: u64,
        sender: &ConnAuth,
        kind: NotifyKind,
        out: &mut Out,
    ) {
        let Some(interval) = self.limits.notify_interval_ms else {
            return;
        };
        let due: Vec<String> = self
            .members
            .keys()
            .filter(|m| **m != sender.user_id && !self.devices.contains_key(*m))
            .filter(|m| {
                self.files
                    .notified
                    .get(*m)
                    .is_none_or(|last| now >= last.saturating_add(interval))
            })
            .cloned()
            .collect();
        for user_id in due {
            self.files.notified.insert(user_id.clone(), now);
            out.store(Write::Notified {
                user_id: user_id.clone(),
                at: now,
            });
            out.0.push(Action::Notify(Notification {
                room_id: self.room_id.clone(),
                user_id,
                kind,
                sender_id: sender.user_id.clone(),
                sender_name: sender.user_name.clone(),
                seq: self.head,
                at: now,
            }));
        }
    }

    /// `files` / `audit` `limit`: 1 to the maximum, the default when absent.
    fn page_limit(&self, what: &str, limit: Option<u64>) -> Result<usize, RoomError> {
        let max = self.limits.files_page_max;
        match limit {
            None => Ok(self.limits.files_page_default),
            Some(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
            Some(n) => Err(RoomError::invalid_data(format!(
                "{what}: limit must be 1 to {max}, not {n}"
            ))),
        }
    }

    fn require_unlocked(&self) -> Result<(), RoomError> {
        match self.meta.lock {
            Some(_) => Err(RoomError::new(
                RoomErrorCode::RoomLocked,
                "the room is locked: it accepts no new uploads or folders",
            )),
            None => Ok(()),
        }
    }

    /// Who a user is, for events the room makes on their behalf.
    fn member_auth(&self, user_id: &str, fallback_name: &str) -> ConnAuth {
        match self.members.get(user_id) {
            Some(m) => ConnAuth {
                user_id: m.user_id.clone(),
                user_name: m.user_name.clone(),
                role: m.role,
            },
            None => ConnAuth {
                user_id: user_id.to_owned(),
                user_name: fallback_name.to_owned(),
                role: Role::Member,
            },
        }
    }
}

fn require_upload_role(role: Role, what: &str) -> Result<(), RoomError> {
    if role.can_upload() {
        Ok(())
    } else {
        Err(RoomError::new(
            RoomErrorCode::Forbidden,
            format!("a viewer may not {what}: the role must be member, moderator or owner"),
        ))
    }
}

/// `uploadId`, when given, must be the file id.
fn check_upload_id(file_id: &str, upload_id: Option<&str>) -> Result<(), RoomError> {
    match upload_id {
        Some(u) if u != file_id => Err(RoomError::invalid_data(
            "uploadId must be the upload's fileId",
        )),
        _ => Ok(()),
    }
}

fn not_in_room(file_id: &str) -> RoomError {
    RoomError::new(
        RoomErrorCode::FileNotFound,
        format!("the room has no file {file_id:?}"),
    )
}

fn file_busy() -> RoomError {
    RoomError::new(RoomErrorCode::FileBusy, "the file is being removed")
}
