//! The rules of one room, as a sans-IO machine: events in, actions out, time passed in.
//!
//! The Durable Object that hosts a room feeds it what happens (a socket accepted, a
//! frame, a close, the alarm) with the time, and carries out the [`Action`]s it returns,
//! in order: storage writes, frames to sockets, attachment updates, closes, the alarm.
//! Reads go through [`RoomStore`]. Nothing here performs I/O, so tests drive the same
//! code through every interleaving with a clock and storage of their own.
//!
//! Hibernation: the machine is only a cache. Everything it knows is either in storage
//! (meta, events, members, read marks; the message rate limit is rebuilt from stored
//! send times) or in a socket's attachment ([`ConnState`], saved whenever it changes).
//! [`Room::restore`] rebuilds it whole from those two, so an evicted room wakes up with
//! its members, presence and locks intact. Only the per-connection flood guard and the
//! last time each socket spoke live in memory alone; after a wake both restart (full
//! buckets; "spoke just now"), which can only make the room more lenient, never wrong.

mod files;

use std::collections::{BTreeMap, HashMap};

use super::error::{CloseCode, RoomError, RoomErrorCode};
use super::frame::{
    AuthFailure, AuthSuccess, ClientEvent, EventKind, History, JoinRoom, LockData, LockRoom,
    MarkAsRead, MemberData, MessageData, PresenceData, PresenceUser, ReadData, ResyncData,
    RoomStateData, SendMessage, UnlockData, You, ack_frame, error_frame, frame, frame_raw,
    parse_client_frame, to_json,
};
use super::ids::ConnId;
use super::limits::{HOUR_MS, RoomLimits};
use super::presence::{Change, PresenceBatch, member_change};
use super::rate::{SlidingWindow, TokenBucket};
use super::seal::check_sealed;
use super::store::{
    ConnAuth, ConnState, Member, PruneInfo, RoomMeta, RoomStore, SCHEMA_VERSION, StoreError,
    StoredEvent, StoredLock, StoredRoom, Write,
};
use super::time::iso8601;
use crate::jwt::{JwtVerifier, Role};

use self::files::FileState;
pub use self::files::{AdmitUpload, Answered};
use super::file_frames::MessageFile;
use super::files::{AuditEntry, Notification, NotifyKind, StoredFile};

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Apply a storage write. If it fails, stop: drop the machine (it is ahead of
    /// storage) and carry out nothing after it.
    Store(Write),
    /// Send a text frame to one socket.
    Send {
        /// The socket.
        to: ConnId,
        /// The frame.
        frame: String,
    },
    /// Send one text frame to several sockets.
    Broadcast {
        /// The sockets.
        to: Vec<ConnId>,
        /// The frame.
        frame: String,
    },
    /// Replace a socket's attachment.
    Save(ConnState),
    /// Close a socket. The machine has already forgotten it.
    Close {
        /// The socket.
        conn: ConnId,
        /// The WebSocket close code and reason.
        code: CloseCode,
    },
    /// Set the object's alarm to this time (ms), or delete it (`None`).
    SetAlarm(Option<u64>),
    /// Delete these files from storage (their upload sessions), then report which
    /// went with [`Room::files_deleted`] and this `removal`.
    DeleteFiles {
        /// Which removal, for the report.
        removal: u64,
        /// The files.
        file_ids: Vec<String>,
    },
    /// Send a webhook about a member with no device connected (through the queue).
    Notify(Notification),
    /// Messages are waiting to be written: call [`Room::flush`] when the write window
    /// closes (after the inputs that arrive meanwhile), and carry out what it returns.
    /// Emitted once per batch, by the message that opens it.
    FlushLater,
    /// A presence window opened: call [`Room::flush_presence`] with `batch` when it
    /// closes (after the inputs that arrive meanwhile), and carry out what it returns.
    PresenceLater {
        /// Which window.
        batch: u64,
    },
}

/// A socket the room knows.
#[derive(Debug, Clone)]
struct Conn {
    state: ConnState,
    bucket: TokenBucket,
    /// The flood guard of progress reports, which the room coalesces and which do not
    /// count against `bucket`.
    progress_bucket: TokenBucket,
    /// The last time a frame arrived, ms (memory only; `ping`s are answered by the
    /// platform and reported to the alarm instead).
    last_seen: u64,
}

/// One room.
#[derive(Debug)]
pub struct Room {
    room_id: String,
    limits: RoomLimits,
    verifier: JwtVerifier,
    meta: RoomMeta,
    /// Whether `meta` is in storage yet (a room that never stored an event has no row).
    meta_stored: bool,
    head: u64,
    last_at: u64,
    conns: BTreeMap<ConnId, Conn>,
    /// Joined sockets per user: their device count.
    devices: HashMap<String, usize>,
    /// Authenticated sockets per user (the per-user connection limit).
    authed: HashMap<String, usize>,
    members: HashMap<String, Member>,
    reads: HashMap<String, u64>,
    sends: HashMap<String, SlidingWindow>,
    oldest_prunable_at: Option<u64>,
    /// The alarm as the machine last set it (or found it).
    alarm: Option<u64>,
    idle_check_at: Option<u64>,
    last_prune_at: u64,
    /// Uploads in flight, the audit log's head, notifications, removals.
    files: FileState,
    /// The batch of messages not yet written: their writes and everything that waits
    /// for them (broadcasts, acks, webhooks), in order. See [`Room::flush`].
    pending: Vec<Action>,
    /// The presence changes of the open presence window, not yet told to the room's
    /// sockets. See [`Room::flush_presence`].
    presence: Option<PresenceBatch>,
    /// How many presence windows have opened (names the next).
    presence_windows: u64,
}

/// Collects a handler's actions.
#[derive(Default)]
struct Out(Vec<Action>);

impl Out {
    fn send(&mut self, to: ConnId, frame: String) {
        self.0.push(Action::Send { to, frame });
    }
    fn error(&mut self, to: ConnId, id: Option<&str>, error: &RoomError) {
        self.send(to, error_frame(id, error));
    }
    fn broadcast(&mut self, to: Vec<ConnId>, frame: String) {
        if !to.is_empty() {
            self.0.push(Action::Broadcast { to, frame });
        }
    }
    fn store(&mut self, write: Write) {
        self.0.push(Action::Store(write));
    }
    /// Answers a request with `ack {id, ...body}`, if the frame had an id.
    fn ack(&mut self, req: Req<'_>, body: &impl serde::Serialize) {
        if let Some(id) = req.id {
            self.send(req.conn, ack_frame(id, body));
        }
    }
}

/// Whom a handler answers: the socket, and the request id if the frame had one.
#[derive(Clone, Copy)]
struct Req<'a> {
    conn: ConnId,
    id: Option<&'a str>,
}

impl Room {
    /// Rebuilds the room from storage and its sockets' attachments, at `now`. `alarm` is
    /// the object's alarm as the platform has it.
    pub fn restore(
        room_id: &str,
        limits: RoomLimits,
        verifier: JwtVerifier,
        store: &impl RoomStore,
        conns: Vec<ConnState>,
        alarm: Option<u64>,
        now: u64,
    ) -> Result<Self, StoreError> {
        let mut stored = store.load(now.saturating_sub(limits.message_window_ms))?;
        let files = FileState::restore(&mut stored, now);
        let mut room = Self {
            room_id: room_id.to_owned(),
            meta_stored: stored.meta.is_some(),
            meta: stored.meta.unwrap_or_else(|| RoomMeta::new(now)),
            head: 0,
            last_at: stored.last_at,
            conns: BTreeMap::new(),
            devices: HashMap::new(),
            authed: HashMap::new(),
            members: stored
                .members
                .into_iter()
                .map(|m| (m.user_id.clone(), m))
                .collect(),
            reads: stored.reads.into_iter().collect(),
            sends: HashMap::new(),
            oldest_prunable_at: stored.oldest_prunable_at,
            alarm,
            idle_check_at: None,
            last_prune_at: 0,
            files,
            limits,
            verifier,
            pending: Vec::new(),
            presence: None,
            presence_windows: 0,
        };
        room.head = stored.max_seq.max(room.meta.floor);
        for (sender, at) in stored.recent_sends {
            let limit = room.limits.messages_per_window;
            room.sends.entry(sender).or_default().record(at, limit);
        }
        for state in conns {
            let bucket = TokenBucket::full(room.limits.frame_burst, now);
            let progress_bucket = TokenBucket::full(room.limits.progress_burst, now);
            room.count_in(&state);
            room.conns.insert(
                state.id,
                Conn {
                    state,
                    bucket,
                    progress_bucket,
                    last_seen: now,
                },
            );
        }
        Ok(room)
    }

    /// The actions of an input that is not batched: the batch so far comes first, so
    /// storage holds it before anything the input does is carried out (reads of it
    /// meanwhile go through [`WithPending`]).
    fn begin(&mut self) -> Out {
        Out(self.flush())
    }

    /// Ends a frame's handling: a message (and an answer about one, such as the ack of
    /// a resend) joins the batch when there is something to write or a batch to wait
    /// for; anything else is carried out now, after the batch.
    fn batch(&mut self, mut pending: Vec<Action>, batchable: bool, out: Out) -> Vec<Action> {
        let writes = out.0.iter().any(|a| matches!(a, Action::Store(_)));
        if batchable && (writes || !pending.is_empty()) {
            let opens = pending.is_empty();
            pending.extend(out.0);
            self.pending = pending;
            return if opens {
                vec![Action::FlushLater]
            } else {
                Vec::new()
            };
        }
        pending.extend(out.0);
        pending
    }

    /// The room's id.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// The seq of the last event.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Whether the room knows this socket.
    pub fn has_conn(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    /// How many sockets the room has.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Devices of each online user, sorted by user id.
    pub fn presence(&self) -> Vec<(String, usize)> {
        let mut all: Vec<(String, usize)> =
            self.devices.iter().map(|(u, n)| (u.clone(), *n)).collect();
        all.sort();
        all
    }

    // -----------------------------------------------------------------------------
    // Inputs
    // -----------------------------------------------------------------------------

    /// A socket was accepted. `token` is the JWT from its `Sec-WebSocket-Protocol`
    /// header, if it sent one there.
    pub fn handle_open(&mut self, now: u64, id: ConnId, token: Option<&str>) -> Vec<Action> {
        let mut out = self.begin();
        if self.conns.len() >= self.limits.max_connections || self.conns.contains_key(&id) {
            let error = RoomError::new(
                RoomErrorCode::TooManyConnections,
                format!(
                    "the room has its maximum of {} connections",
                    self.limits.max_connections
                ),
            );
            out.error(id, None, &error);
            out.0.push(Action::Close {
                conn: id,
                code: CloseCode::TooManyConnections,
            });
            return out.0;
        }
        let state = ConnState {
            v: SCHEMA_VERSION,
            id,
            opened_at: now,
            auth: None,
            joined: false,
            subscriptions: Vec::new(),
        };
        self.conns.insert(
            id,
            Conn {
                state: state.clone(),
                bucket: TokenBucket::full(self.limits.frame_burst, now),
                progress_bucket: TokenBucket::full(self.limits.progress_burst, now),
                last_seen: now,
            },
        );
        out.0.push(Action::Save(state));
        if let Some(token) = token {
            self.authenticate(now, Req { conn: id, id: None }, token, &mut out);
        }
        self.reschedule(now, &mut out);
        out.0
    }

    /// A text frame arrived on socket `id`.
    pub fn handle_text(
        &mut self,
        now: u64,
        id: ConnId,
        text: &str,
        store: &impl RoomStore,
    ) -> Vec<Action> {
        let mut out = Out::default();
        let Some(conn) = self.conns.get_mut(&id) else {
            return out.0; // closed by the room a moment ago; nothing to answer
        };
        conn.last_seen = now;
        let unauthenticated = conn.state.auth.is_none();
        let deadline = conn.state.opened_at + self.limits.auth_timeout_ms;
        if unauthenticated && now >= deadline {
            self.close(id, CloseCode::AuthTimeout, &mut out);
            self.reschedule(now, &mut out);
            return out.0;
        }
        let (req_id, parsed) = match parse_client_frame(text, self.limits.max_frame_bytes) {
            Ok(f) => (f.id, Ok(f.event)),
            Err((req_id, error)) => (req_id, Err(error)),
        };
        let req_id = req_id.as_deref();
        // Progress reports have a flood guard of their own: the room coalesces them.
        let limits = &self.limits;
        let limited = match (&parsed, self.conns.get_mut(&id)) {
            (_, None) => Ok(()),
            (Ok(ClientEvent::ReportProgress(_)), Some(conn)) => {
                conn.progress_bucket
                    .take(now, limits.progress_per_second, limits.progress_burst)
            }
            (_, Some(conn)) => conn
                .bucket
                .take(now, limits.frames_per_second, limits.frame_burst),
        };
        if let Err(wait) = limited {
            out.error(id, req_id, &RoomError::rate_limited("frames", wait));
            return out.0;
        }
        let batchable = matches!(parsed, Ok(ClientEvent::SendMessage(_)));
        let pending = std::mem::take(&mut self.pending);
        let store = WithPending {
            store,
            pending: &pending,
        };
        match parsed {
            Err(error) => out.error(id, req_id, &error),
            Ok(event) => self.dispatch(
                now,
                Req {
                    conn: id,
                    id: req_id,
                },
                event,
                &store,
                &mut out,
            ),
        }
        self.reschedule(now, &mut out);
        self.batch(pending, batchable, out)
    }

    /// The batch of messages waiting to be written, now, in one write: their writes,
    /// then what waited for them. The shell calls it when [`Action::FlushLater`]'s
    /// window closes; any other input flushes the batch first by itself.
    ///
    /// Why batches: a room sends nothing until what it stored is durable (the
    /// platform's output gate), and each durable write costs a commit; messages that
    /// arrive within one window share one. Nothing of a batch is sent before its
    /// write, so an eviction or crash before the write loses only messages nobody was
    /// told of (their senders resend them, deduplicated by request id), and one
    /// between the write and the sends loses only frames that replay gives back.
    pub fn flush(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.pending)
    }

    /// Presence window `batch` closed: every joined socket is told what changed in it,
    /// in one `presence-changed` (docs/PROTOCOL.md, Presence). Nothing if that window
    /// was already told (a numbered event closes the window early) or a restored
    /// machine never had it.
    ///
    /// Why windows: joins, leaves and device counts that arrive together (a class
    /// joining a room, a network blip reconnecting many devices) then cost each member
    /// one frame, not one per change, and a device that reconnects within the window
    /// costs nothing at all.
    pub fn flush_presence(&mut self, batch: u64) -> Vec<Action> {
        let mut out = self.begin();
        if self.presence.as_ref().is_some_and(|p| p.id() == batch) {
            self.tell_presence(&mut out);
        }
        out.0
    }

    /// A binary frame arrived on socket `id`: refused, the socket stays.
    pub fn handle_binary(&mut self, now: u64, id: ConnId) -> Vec<Action> {
        let mut out = Out::default();
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.last_seen = now;
            let error = RoomError::new(
                RoomErrorCode::InvalidFrame,
                "binary frames are not supported: send JSON text frames",
            );
            out.error(id, None, &error);
        }
        out.0
    }

    /// Socket `id` closed (or failed).
    pub fn handle_close(&mut self, now: u64, id: ConnId) -> Vec<Action> {
        let mut out = self.begin();
        if let Some(conn) = self.conns.remove(&id) {
            self.forget(&conn.state, &mut out);
            self.reschedule(now, &mut out);
        }
        out.0
    }

    /// The object's alarm fired. `last_ping` gives, per socket, when the platform last
    /// answered its `ping` (ms), if ever.
    pub fn handle_alarm(
        &mut self,
        now: u64,
        last_ping: impl Fn(ConnId) -> Option<u64>,
        store: &impl RoomStore,
    ) -> Vec<Action> {
        let mut out = self.begin();
        self.alarm = None; // the platform clears an alarm that fired
        let timeout = self.limits.auth_timeout_ms;
        let late: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| c.state.auth.is_none() && now >= c.state.opened_at + timeout)
            .map(|c| c.state.id)
            .collect();
        for id in late {
            self.close(id, CloseCode::AuthTimeout, &mut out);
        }
        if let Some(check) = self.idle_check_at
            && now >= check
        {
            let idle = self.limits.idle_timeout_ms;
            let silent: Vec<ConnId> = self
                .conns
                .values()
                .filter(|c| {
                    let last = last_ping(c.state.id).map_or(c.last_seen, |p| p.max(c.last_seen));
                    now.saturating_sub(last) >= idle
                })
                .map(|c| c.state.id)
                .collect();
            for id in silent {
                self.close(id, CloseCode::IdleTimeout, &mut out);
            }
            self.idle_check_at = None; // rescheduled below if sockets remain
        }
        if self.prune_due().is_some_and(|due| now >= due) {
            self.prune(now, store, &mut out);
        }
        if self.files_due().is_some_and(|due| now >= due) {
            self.files_alarm(now, &mut out);
        }
        self.reschedule(now, &mut out);
        out.0
    }

    // -----------------------------------------------------------------------------
    // Events
    // -----------------------------------------------------------------------------

    fn dispatch(
        &mut self,
        now: u64,
        req: Req<'_>,
        event: ClientEvent,
        store: &impl RoomStore,
        out: &mut Out,
    ) {
        if let ClientEvent::Authenticate(a) = &event {
            self.authenticate(now, req, &a.token, out);
            return;
        }
        let Some(auth) = self.auth(req.conn) else {
            let e = RoomError::new(
                RoomErrorCode::NotAuthenticated,
                "authenticate first: {\"event\":\"authenticate\",\"data\":{\"token\":...}}",
            );
            return out.error(req.conn, req.id, &e);
        };
        if let Some(room) = event.room_id()
            && room != self.room_id
        {
            let e = RoomError::new(
                RoomErrorCode::WrongRoom,
                format!(
                    "this socket is connected to room {:?}, not {room:?}",
                    self.room_id
                ),
            );
            return out.error(req.conn, req.id, &e);
        }
        if let Some(user) = event.user_id()
            && user != auth.user_id
        {
            let e = RoomError::new(
                RoomErrorCode::Forbidden,
                "userId is not the authenticated user; it is taken from the token",
            );
            return out.error(req.conn, req.id, &e);
        }
        if let ClientEvent::JoinRoom(join) = event {
            return self.join(now, req, &auth, join, store, out);
        }
        if !self.is_joined(req.conn) {
            let e = RoomError::new(RoomErrorCode::NotJoined, "join the room first (join-room)");
            return out.error(req.conn, req.id, &e);
        }
        let result = match event {
            ClientEvent::LeaveRoom(_) => {
                self.leave(now, req, &auth, out);
                Ok(())
            }
            ClientEvent::SendMessage(m) => self.send_message(now, req, &auth, m, store, out),
            ClientEvent::History(h) => self.history(req, h, store, out),
            ClientEvent::MarkAsRead(m) => self.mark_as_read(now, req, &auth, m, out),
            ClientEvent::LockRoom(l) => self.lock(now, req, &auth, l, out),
            ClientEvent::UnlockRoom(_) => self.unlock(now, req, &auth, out),
            ClientEvent::Authenticate(_) | ClientEvent::JoinRoom(_) => Ok(()),
            files => self.file_event(now, req, &auth, files, store, out),
        };
        if let Err(e) = result {
            out.error(req.conn, req.id, &e);
        }
    }

    fn authenticate(&mut self, now: u64, req: Req<'_>, token: &str, out: &mut Out) {
        if self.auth(req.conn).is_some() {
            let e = RoomError::new(
                RoomErrorCode::AlreadyAuthenticated,
                "this socket is already authenticated",
            );
            return out.error(req.conn, req.id, &e);
        }
        let claims = match self.verifier.verify(token, now / 1000) {
            Ok(claims) => claims,
            Err(e) => {
                let (code, close) = match e.code() {
                    "expired_token" => (RoomErrorCode::ExpiredToken, CloseCode::ExpiredToken),
                    _ => (RoomErrorCode::InvalidToken, CloseCode::InvalidToken),
                };
                return self.refuse_auth(req, code, close, &e.to_string(), out);
            }
        };
        let Some(role) = claims.role_in(&self.room_id) else {
            let why = format!("the token does not grant room {:?}", self.room_id);
            return self.refuse_auth(
                req,
                RoomErrorCode::Unauthorized,
                CloseCode::Unauthorized,
                &why,
                out,
            );
        };
        let max = self.limits.max_devices_per_user;
        if self.authed.get(&claims.sub).copied().unwrap_or(0) >= max {
            let e = RoomError::new(
                RoomErrorCode::TooManyConnections,
                format!("a user may have at most {max} connections to a room"),
            );
            out.error(req.conn, req.id, &e);
            return self.close(req.conn, CloseCode::TooManyConnections, out);
        }
        let auth = ConnAuth {
            user_id: claims.sub.clone(),
            user_name: claims.display_name().to_owned(),
            role,
        };
        let success = AuthSuccess {
            user_id: auth.user_id.clone(),
            user_name: auth.user_name.clone(),
            session_id: req.conn.session_id(),
            role,
        };
        let Some(conn) = self.conns.get_mut(&req.conn) else {
            return;
        };
        conn.state.auth = Some(auth);
        let state = conn.state.clone();
        self.count_in(&state);
        out.0.push(Action::Save(state));
        out.send(req.conn, frame("authentication_successful", &success));
        out.ack(req, &success);
    }

    fn refuse_auth(
        &mut self,
        req: Req<'_>,
        code: RoomErrorCode,
        close: CloseCode,
        reason: &str,
        out: &mut Out,
    ) {
        let failure = AuthFailure {
            reason: reason.to_owned(),
            code: code.as_str().to_owned(),
        };
        out.send(req.conn, frame("authentication_failed", &failure));
        if let Some(id) = req.id {
            out.error(req.conn, Some(id), &RoomError::new(code, reason));
        }
        self.close(req.conn, close, out);
    }

    fn join(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        join: JoinRoom,
        store: &impl RoomStore,
        out: &mut Out,
    ) {
        let is_member = self.members.contains_key(&auth.user_id);
        if !is_member && self.meta.lock.is_some() && !auth.role.can_moderate() {
            let e = RoomError::new(
                RoomErrorCode::RoomLocked,
                "the room is locked: it admits no new members",
            );
            return out.error(req.conn, req.id, &e);
        }
        // Read what the joiner missed before anything new is appended.
        let catch_up = match self.catch_up(join.last_seq, store) {
            Ok(frames) => frames,
            Err(e) => return out.error(req.conn, req.id, &internal(&e)),
        };
        let files = match self.files_page(u64::MAX, self.limits.files_page_default, store) {
            Ok(page) => page,
            Err(e) => return out.error(req.conn, req.id, &internal(&e)),
        };
        let already_joined = self.is_joined(req.conn);
        let mut live = Vec::new();
        if !is_member {
            let member = Member {
                user_id: auth.user_id.clone(),
                user_name: auth.user_name.clone(),
                role: auth.role,
                joined_at: now,
            };
            out.store(Write::Member(member.clone()));
            let data = MemberData {
                room_id: self.room_id.clone(),
                user_id: member.user_id.clone(),
                user_name: member.user_name.clone(),
                joined_at: iso8601(member.joined_at),
                left_at: None,
            };
            self.members.insert(member.user_id.clone(), member);
            let event = self.append(
                now,
                EventKind::UserJoined,
                &auth.user_id,
                None,
                &to_json(&data),
                out,
            );
            self.presence_changed(member_change(false, self.head, data), out);
            live.push(event);
        } else if let Some(member) = self.members.get_mut(&auth.user_id)
            && (member.user_name != auth.user_name || member.role != auth.role)
        {
            member.user_name.clone_from(&auth.user_name);
            member.role = auth.role;
            out.store(Write::Member(member.clone()));
        }
        if !already_joined {
            if let Some(conn) = self.conns.get_mut(&req.conn) {
                conn.state.joined = true;
                out.0.push(Action::Save(conn.state.clone()));
            }
            let devices = self.devices.entry(auth.user_id.clone()).or_insert(0);
            *devices += 1;
            let change = Change::Devices {
                before: *devices - 1,
                now: PresenceUser {
                    room_id: self.room_id.clone(),
                    user_id: auth.user_id.clone(),
                    user_name: auth.user_name.clone(),
                    devices: *devices,
                },
            };
            self.presence_changed(change, out);
        }
        out.send(req.conn, frame("room-state", &self.state_for(auth)));
        out.send(req.conn, frame("presence", &self.presence_data()));
        if let Some(batch) = &mut self.presence {
            batch.snapshot_sent(req.conn);
        }
        out.send(req.conn, self.uploads_frame(now));
        out.send(req.conn, frame_raw("files", None, &files));
        let replayed = catch_up.replayed;
        for f in catch_up.frames.into_iter().chain(live) {
            out.send(req.conn, f);
        }
        let body = serde_json::json!({
            "roomId": self.room_id,
            "head": self.head,
            "replayed": replayed,
            "resync": catch_up.resync,
        });
        out.ack(req, &body);
    }

    /// What a joining socket gets besides the state: the events after `last_seq`, or
    /// (without one, or when they cannot all be replayed) the last messages.
    fn catch_up(
        &self,
        last_seq: Option<u64>,
        store: &impl RoomStore,
    ) -> Result<CatchUp, StoreError> {
        let resync_reason = last_seq.and_then(|last| {
            if last > self.head {
                Some("ahead")
            } else if last < self.meta.floor {
                Some("too_old")
            } else if self.head - last > self.limits.max_replay_events as u64 {
                Some("too_many")
            } else {
                None
            }
        });
        let mut frames = Vec::new();
        match (last_seq, resync_reason) {
            (Some(last), None) => {
                let events = store.events_after(last, self.limits.max_replay_events)?;
                let replayed = events.len();
                frames.extend(events.iter().map(event_frame));
                return Ok(CatchUp {
                    frames,
                    replayed,
                    resync: false,
                });
            }
            (Some(last), Some(reason)) => {
                let data = ResyncData {
                    room_id: self.room_id.clone(),
                    last_seq: last,
                    oldest_seq: self.meta.floor,
                    head: self.head,
                    reason: reason.to_owned(),
                };
                frames.push(frame("resync-required", &data));
            }
            (None, _) => {}
        }
        let limit = self.limits.history_default;
        let page = self.history_page(self.head + 1, limit, store)?;
        frames.push(frame_raw("history", None, &page));
        Ok(CatchUp {
            frames,
            replayed: 0,
            resync: resync_reason.is_some(),
        })
    }

    fn leave(&mut self, now: u64, req: Req<'_>, auth: &ConnAuth, out: &mut Out) {
        let joined_at = self
            .members
            .remove(&auth.user_id)
            .map_or(now, |m| m.joined_at);
        out.store(Write::RemoveMember(auth.user_id.clone()));
        let data = MemberData {
            room_id: self.room_id.clone(),
            user_id: auth.user_id.clone(),
            user_name: auth.user_name.clone(),
            joined_at: iso8601(joined_at),
            left_at: Some(iso8601(now)),
        };
        let event = self.append(
            now,
            EventKind::UserLeft,
            &auth.user_id,
            None,
            &to_json(&data),
            out,
        );
        let seq = self.head;
        // Every device of the user leaves with it: each hears, in seq order, what the
        // open window held for it and then its own `user-left`; the others hear of the
        // leave with the window.
        let devices: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| {
                c.state.joined
                    && c.state
                        .auth
                        .as_ref()
                        .is_some_and(|a| a.user_id == auth.user_id)
            })
            .map(|c| c.state.id)
            .collect();
        for id in &devices {
            if let Some(frame) = self
                .presence
                .as_ref()
                .and_then(|p| p.frame_for(&self.room_id, *id))
            {
                out.send(*id, frame);
            }
            if let Some(conn) = self.conns.get_mut(id) {
                conn.state.joined = false;
                out.0.push(Action::Save(conn.state.clone()));
            }
        }
        out.broadcast(devices, event);
        self.presence_changed(member_change(true, seq, data), out);
        if let Some(before) = self.devices.remove(&auth.user_id) {
            let change = Change::Devices {
                before,
                now: PresenceUser {
                    room_id: self.room_id.clone(),
                    user_id: auth.user_id.clone(),
                    user_name: auth.user_name.clone(),
                    devices: 0,
                },
            };
            self.presence_changed(change, out);
        }
        out.ack(req, &serde_json::json!({ "seq": seq }));
    }

    fn send_message(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        message: SendMessage,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        check_sealed(&message.text, self.limits.max_text_chars)
            .map_err(|why| RoomError::invalid_data(format!("send-message: text {why}")))?;
        if message.attachments.len() > self.limits.max_attachments {
            return Err(RoomError::invalid_data(format!(
                "send-message: at most {} attachments",
                self.limits.max_attachments
            )));
        }
        for (i, a) in message.attachments.iter().enumerate() {
            check_sealed(a, self.limits.max_attachment_chars).map_err(|why| {
                RoomError::invalid_data(format!("send-message: attachments[{i}] {why}"))
            })?;
        }
        let posted = self.post_message(
            now,
            req,
            auth,
            (message.text, message.attachments, None),
            store,
            out,
        )?;
        if let Some(data) = posted {
            self.notify_offline(now, auth, NotifyKind::Message, out);
            out.ack(req, &message_ack(&data, false));
        }
        Ok(())
    }

    /// Appends and broadcasts a chat message (`send-message`, `share-file`) of
    /// `(text, attachments, file)`, counted against the sender's message limit, and
    /// answers it. `None` when the request was sent before: answered with that message.
    fn post_message(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        (text, attachments, file): (String, Vec<String>, Option<MessageFile>),
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<Option<MessageData>, RoomError> {
        if let Some(id) = req.id
            && self.resent_message(req.conn, id, auth, store, out)?
        {
            return Ok(None);
        }
        self.take_message_slot(now, &auth.user_id)?;
        let seq = self.head + 1;
        let data = MessageData {
            room_id: self.room_id.clone(),
            id: message_id(seq),
            seq,
            sender_id: auth.user_id.clone(),
            sender_name: auth.user_name.clone(),
            text,
            attachments,
            file,
            timestamp: iso8601(self.tick(now)),
        };
        let json = to_json(&data);
        self.publish(
            now,
            EventKind::NewMessage,
            &auth.user_id,
            req.id,
            &json,
            out,
        );
        Ok(Some(data))
    }

    /// A request sent again (its ack was lost) gets the same message's ack back:
    /// whether `id` was such a request.
    fn resent_message(
        &self,
        conn: ConnId,
        id: &str,
        auth: &ConnAuth,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<bool, RoomError> {
        let earlier = store
            .message_by_request(&auth.user_id, id)
            .map_err(|e| internal(&e))?;
        let Some(earlier) = earlier else {
            return Ok(false);
        };
        let data: MessageData =
            serde_json::from_str(&earlier.data).map_err(|_| RoomError::internal())?;
        out.send(conn, ack_frame(id, &message_ack(&data, true)));
        Ok(true)
    }

    /// Counts one message of `user` against the message limit, or refuses it.
    fn take_message_slot(&mut self, now: u64, user: &str) -> Result<(), RoomError> {
        let (limit, window) = (
            self.limits.messages_per_window,
            self.limits.message_window_ms,
        );
        let sends = self.sends.entry(user.to_owned()).or_default();
        sends
            .check(now, limit, window)
            .map_err(|wait| RoomError::rate_limited("messages", wait))?;
        sends.record(now, limit);
        Ok(())
    }

    fn history(
        &mut self,
        req: Req<'_>,
        history: History,
        store: &impl RoomStore,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        let max = self.limits.history_max;
        let limit = match history.limit {
            None => self.limits.history_default,
            Some(n) if (1..=max as u64).contains(&n) => n as usize,
            Some(n) => {
                return Err(RoomError::invalid_data(format!(
                    "history: limit must be 1 to {max}, not {n}"
                )));
            }
        };
        let before = history.before_seq.unwrap_or(self.head + 1);
        let page = self
            .history_page(before, limit, store)
            .map_err(|e| internal(&e))?;
        match req.id {
            Some(id) => out.send(req.conn, ack_frame(id, &RawJson(&page))),
            None => out.send(req.conn, frame_raw("history", None, &page)),
        }
        Ok(())
    }

    /// `{"roomId":..,"messages":[..],"hasMore":..}` for up to `limit` messages before
    /// `before`, oldest first.
    fn history_page(
        &self,
        before: u64,
        limit: usize,
        store: &impl RoomStore,
    ) -> Result<String, StoreError> {
        let mut rows = store.messages_before(before, limit + 1)?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        rows.reverse();
        let messages: Vec<&str> = rows.iter().map(|r| r.data.as_str()).collect();
        Ok(format!(
            r#"{{"roomId":{},"messages":[{}],"hasMore":{has_more}}}"#,
            to_json(&self.room_id),
            messages.join(",")
        ))
    }

    fn mark_as_read(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        mark: MarkAsRead,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        if mark.seq > self.head {
            return Err(RoomError::new(
                RoomErrorCode::InvalidSeq,
                format!(
                    "seq {} is beyond the room's last event {}",
                    mark.seq, self.head
                ),
            ));
        }
        let current = self.reads.get(&auth.user_id).copied().unwrap_or(0);
        if mark.seq > current {
            self.reads.insert(auth.user_id.clone(), mark.seq);
            out.store(Write::Read {
                user_id: auth.user_id.clone(),
                seq: mark.seq,
            });
            let data = ReadData {
                room_id: self.room_id.clone(),
                user_id: auth.user_id.clone(),
                seq: mark.seq,
            };
            self.publish(
                now,
                EventKind::MessageRead,
                &auth.user_id,
                None,
                &to_json(&data),
                out,
            );
        }
        out.ack(req, &serde_json::json!({ "seq": mark.seq.max(current) }));
        Ok(())
    }

    fn lock(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        lock: LockRoom,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        require_moderator(auth.role, "lock")?;
        if let Some(reason) = &lock.reason {
            check_sealed(reason, self.limits.max_reason_chars)
                .map_err(|why| RoomError::invalid_data(format!("lock-room: reason {why}")))?;
        }
        let changed = self.meta.lock.is_none();
        if changed {
            let at = self.tick(now);
            let stored = StoredLock {
                by: auth.user_id.clone(),
                by_name: auth.user_name.clone(),
                at,
                reason: lock.reason,
            };
            self.meta.lock = Some(stored);
            out.store(Write::Meta(self.meta.clone()));
            self.meta_stored = true;
            let data = self
                .lock_data()
                .unwrap_or_else(|| unreachable!("just locked"));
            self.publish(
                now,
                EventKind::RoomLocked,
                &auth.user_id,
                None,
                &to_json(&data),
                out,
            );
        }
        self.lock_ack(req, changed, out);
        Ok(())
    }

    fn unlock(
        &mut self,
        now: u64,
        req: Req<'_>,
        auth: &ConnAuth,
        out: &mut Out,
    ) -> Result<(), RoomError> {
        require_moderator(auth.role, "unlock")?;
        let changed = self.meta.lock.is_some();
        if changed {
            self.meta.lock = None;
            out.store(Write::Meta(self.meta.clone()));
            let data = UnlockData {
                room_id: self.room_id.clone(),
                unlocked_by: auth.user_id.clone(),
                unlocked_by_name: auth.user_name.clone(),
                unlocked_at: iso8601(self.tick(now)),
            };
            self.publish(
                now,
                EventKind::RoomUnlocked,
                &auth.user_id,
                None,
                &to_json(&data),
                out,
            );
        }
        self.lock_ack(req, changed, out);
        Ok(())
    }

    /// The `ack` of `lock-room` / `unlock-room`: the lock now, and whether it changed.
    fn lock_ack(&self, req: Req<'_>, changed: bool, out: &mut Out) {
        let locked = self.meta.lock.is_some();
        out.ack(
            req,
            &serde_json::json!({ "locked": locked, "changed": changed, "seq": self.head }),
        );
    }

    // -----------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------

    /// Appends event `kind` and sends it to every joined socket.
    fn publish(
        &mut self,
        now: u64,
        kind: EventKind,
        sender: &str,
        request_id: Option<&str>,
        data: &str,
        out: &mut Out,
    ) {
        // Whoever hears of a numbered event has heard of every presence change before
        // it (a message from someone who just joined comes after their join), in seq
        // order.
        self.tell_presence(out);
        let frame = self.append(now, kind, sender, request_id, data, out);
        out.broadcast(self.joined(None), frame);
    }

    /// Tells every joined socket what the open presence window holds, and closes it.
    fn tell_presence(&mut self, out: &mut Out) {
        if let Some(batch) = self.presence.take() {
            for (to, frame) in batch.frames(&self.room_id, self.joined(None)) {
                out.broadcast(to, frame);
            }
        }
    }

    /// Adds a presence change to the open window, opening one if there is none.
    fn presence_changed(&mut self, change: Change, out: &mut Out) {
        let batch = match &mut self.presence {
            Some(batch) => batch,
            None => {
                self.presence_windows += 1;
                let id = self.presence_windows;
                out.0.push(Action::PresenceLater { batch: id });
                self.presence.insert(PresenceBatch::new(id))
            }
        };
        batch.push(change);
    }

    /// Appends event `kind` with `data` as the next seq and returns its frame.
    fn append(
        &mut self,
        now: u64,
        kind: EventKind,
        sender: &str,
        request_id: Option<&str>,
        data: &str,
        out: &mut Out,
    ) -> String {
        if !self.meta_stored {
            self.meta.created_at = now;
            out.store(Write::Meta(self.meta.clone()));
            self.meta_stored = true;
        }
        let at = self.tick(now);
        self.head += 1;
        if kind != EventKind::NewMessage && self.oldest_prunable_at.is_none() {
            self.oldest_prunable_at = Some(at);
        }
        out.store(Write::Event(StoredEvent {
            seq: self.head,
            at,
            kind,
            sender: sender.to_owned(),
            request_id: request_id.map(str::to_owned),
            data: data.to_owned(),
        }));
        frame_raw(kind.as_str(), Some(self.head), data)
    }

    /// `now`, but never before the last event's time (clocks may step back).
    fn tick(&mut self, now: u64) -> u64 {
        self.last_at = self.last_at.max(now);
        self.last_at
    }

    fn auth(&self, id: ConnId) -> Option<ConnAuth> {
        self.conns.get(&id).and_then(|c| c.state.auth.clone())
    }

    fn is_joined(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.state.joined)
    }

    /// Every joined socket, but `except`.
    fn joined(&self, except: Option<ConnId>) -> Vec<ConnId> {
        self.conns
            .values()
            .filter(|c| c.state.joined && Some(c.state.id) != except)
            .map(|c| c.state.id)
            .collect()
    }

    /// Counts a socket into the per-user tallies.
    fn count_in(&mut self, state: &ConnState) {
        if let Some(auth) = &state.auth {
            *self.authed.entry(auth.user_id.clone()).or_insert(0) += 1;
            if state.joined {
                *self.devices.entry(auth.user_id.clone()).or_insert(0) += 1;
            }
        }
    }

    /// Counts a socket that is gone out of the tallies; its user's device count changes
    /// in the open presence window.
    fn forget(&mut self, state: &ConnState, out: &mut Out) {
        let Some(auth) = &state.auth else { return };
        decrement(&mut self.authed, &auth.user_id);
        if state.joined {
            let left = decrement(&mut self.devices, &auth.user_id);
            let change = Change::Devices {
                before: left + 1,
                now: PresenceUser {
                    room_id: self.room_id.clone(),
                    user_id: auth.user_id.clone(),
                    user_name: auth.user_name.clone(),
                    devices: left,
                },
            };
            self.presence_changed(change, out);
        }
    }

    /// Closes socket `id` and forgets it.
    fn close(&mut self, id: ConnId, code: CloseCode, out: &mut Out) {
        if let Some(conn) = self.conns.remove(&id) {
            self.forget(&conn.state, out);
        }
        out.0.push(Action::Close { conn: id, code });
    }

    fn state_for(&self, auth: &ConnAuth) -> RoomStateData {
        RoomStateData {
            room_id: self.room_id.clone(),
            head: self.head,
            lock: self.lock_data(),
            member_count: self.members.len(),
            reads: self.reads.iter().map(|(u, s)| (u.clone(), *s)).collect(),
            you: You {
                user_id: auth.user_id.clone(),
                user_name: auth.user_name.clone(),
                role: auth.role,
            },
        }
    }

    fn lock_data(&self) -> Option<LockData> {
        self.meta.lock.as_ref().map(|l| LockData {
            room_id: self.room_id.clone(),
            locked_by: l.by.clone(),
            locked_by_name: l.by_name.clone(),
            locked_at: iso8601(l.at),
            reason: l.reason.clone(),
        })
    }

    fn presence_data(&self) -> PresenceData {
        let names: HashMap<&str, &str> = self
            .conns
            .values()
            .filter_map(|c| c.state.auth.as_ref())
            .map(|a| (a.user_id.as_str(), a.user_name.as_str()))
            .collect();
        let users = self
            .presence()
            .into_iter()
            .map(|(user_id, devices)| PresenceUser {
                room_id: self.room_id.clone(),
                user_name: names
                    .get(user_id.as_str())
                    .copied()
                    .unwrap_or(&user_id)
                    .to_owned(),
                user_id,
                devices,
            })
            .collect();
        PresenceData {
            room_id: self.room_id.clone(),
            users,
        }
    }

    /// When pruning is next due, if anything is prunable: the oldest prunable event's
    /// window end, but at most once an hour.
    fn prune_due(&self) -> Option<u64> {
        self.oldest_prunable_at
            .map(|oldest| (oldest + self.limits.replay_window_ms).max(self.last_prune_at + HOUR_MS))
    }

    fn prune(&mut self, now: u64, store: &impl RoomStore, out: &mut Out) {
        let cutoff = now.saturating_sub(self.limits.replay_window_ms);
        let info = match store.prunable(cutoff) {
            Ok(info) => info,
            Err(_) => return, // tried again at the next alarm
        };
        if let Some(through) = info.through_seq {
            out.store(Write::Prune { before_at: cutoff });
            if through > self.meta.floor {
                self.meta.floor = through;
                out.store(Write::Meta(self.meta.clone()));
                self.meta_stored = true;
            }
        }
        self.oldest_prunable_at = info.next_oldest_at;
        self.last_prune_at = now;
        // Rate windows of users who have not sent for a while are empty: drop them.
        let window = self.limits.message_window_ms;
        self.sends.retain(|_, w| !w.is_idle(now, window));
    }

    /// Sets the alarm to the earliest thing that needs it: an authentication deadline,
    /// the idle check, pruning.
    fn reschedule(&mut self, now: u64, out: &mut Out) {
        let mut next: Option<u64> = None;
        let mut consider = |at: u64| next = Some(next.map_or(at, |n: u64| n.min(at)));
        for c in self.conns.values() {
            if c.state.auth.is_none() {
                consider(c.state.opened_at + self.limits.auth_timeout_ms);
            }
        }
        if self.limits.idle_timeout_ms > 0 && !self.conns.is_empty() {
            let check = *self
                .idle_check_at
                .get_or_insert(now + self.limits.idle_timeout_ms);
            consider(check);
        } else {
            self.idle_check_at = None;
        }
        if let Some(due) = self.prune_due() {
            consider(due);
        }
        if let Some(due) = self.files_due() {
            consider(due);
        }
        if next != self.alarm {
            self.alarm = next;
            out.0.push(Action::SetAlarm(next));
        }
    }
}

/// Storage as it will be once the batch of messages waiting to be written is: a frame
/// handled while a batch waits (a join's catch-up, a history page, a resend of a
/// message in the batch) reads both, and what it sends is carried out after the batch
/// is written ([`Room::begin`]), so nothing it reads from the batch is sent early.
struct WithPending<'a, S> {
    store: &'a S,
    pending: &'a [Action],
}

impl<S> WithPending<'_, S> {
    /// The batch's events, ascending (seqs above everything stored).
    fn events(&self) -> impl DoubleEndedIterator<Item = &StoredEvent> {
        self.pending.iter().filter_map(|a| match a {
            Action::Store(Write::Event(e)) => Some(e),
            _ => None,
        })
    }
}

impl<S: RoomStore> RoomStore for WithPending<'_, S> {
    fn load(&self, since: u64) -> Result<StoredRoom, StoreError> {
        self.store.load(since)
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = self.store.events_after(after, limit)?;
        events.extend(self.events().filter(|e| e.seq > after).cloned());
        events.truncate(limit);
        Ok(events)
    }

    fn messages_before(&self, before: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut messages: Vec<StoredEvent> = self
            .events()
            .rev()
            .filter(|e| e.kind == EventKind::NewMessage && e.seq < before)
            .take(limit)
            .cloned()
            .collect();
        let rest = limit - messages.len();
        if rest > 0 {
            messages.extend(self.store.messages_before(before, rest)?);
        }
        Ok(messages)
    }

    fn message_by_request(
        &self,
        sender: &str,
        request_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let waiting = self.events().find(|e| {
            e.kind == EventKind::NewMessage
                && e.sender == sender
                && e.request_id.as_deref() == Some(request_id)
        });
        match waiting {
            Some(e) => Ok(Some(e.clone())),
            None => self.store.message_by_request(sender, request_id),
        }
    }

    fn prunable(&self, cutoff: u64) -> Result<PruneInfo, StoreError> {
        self.store.prunable(cutoff)
    }

    fn file(&self, id: &str) -> Result<Option<StoredFile>, StoreError> {
        self.store.file(id)
    }

    fn files_before(&self, before: u64, limit: usize) -> Result<Vec<StoredFile>, StoreError> {
        self.store.files_before(before, limit)
    }

    fn children(&self, parent: &str) -> Result<Vec<StoredFile>, StoreError> {
        self.store.children(parent)
    }

    fn audit_before(&self, before: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.store.audit_before(before, limit)
    }
}

/// What a joining socket is sent after the room state.
struct CatchUp {
    frames: Vec<String>,
    replayed: usize,
    resync: bool,
}

/// Already-serialized JSON, serialized as itself (to put a history page in an `ack`).
struct RawJson<'a>(&'a str);

impl serde::Serialize for RawJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.0.to_owned()) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// The frame of a stored event.
fn event_frame(e: &StoredEvent) -> String {
    frame_raw(e.kind.as_str(), Some(e.seq), &e.data)
}

/// A message's id: stable, unique in its room.
fn message_id(seq: u64) -> String {
    format!("m{seq}")
}

/// The `ack` body of `send-message`.
fn message_ack(data: &MessageData, duplicate: bool) -> serde_json::Value {
    serde_json::json!({
        "messageId": data.id,
        "seq": data.seq,
        "timestamp": data.timestamp,
        "duplicate": duplicate,
    })
}

fn require_moderator(role: Role, what: &str) -> Result<(), RoomError> {
    if role.can_moderate() {
        Ok(())
    } else {
        Err(RoomError::new(
            RoomErrorCode::Forbidden,
            format!("only a moderator or the owner may {what} the room"),
        ))
    }
}

/// A storage failure as the client sees it (the shell logs the cause).
fn internal(_: &StoreError) -> RoomError {
    RoomError::internal()
}

/// Decrements a tally, removing it at zero; returns what is left.
fn decrement(tally: &mut HashMap<String, usize>, user: &str) -> usize {
    let left = match tally.get_mut(user) {
        Some(n) => {
            *n = n.saturating_sub(1);
            *n
        }
        None => 0,
    };
    if left == 0 {
        tally.remove(user);
    }
    left
}
