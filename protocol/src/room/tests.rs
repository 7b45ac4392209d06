//! The room machine driven through an in-memory harness that owns the clock, the
//! storage and the sockets (as quinn-proto's tests own theirs), including evicting the
//! object between any two inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod files;
mod presence;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::files::{AuditEntry, Notification, StoredFile, StoredUpload};
use super::frame::EventKind;
use super::ids::ConnId;
use super::limits::{HOUR_MS, RoomLimits};
use super::machine::{Action, Room};
use super::seal::{RoomKey, SealContext};
use super::store::{
    ConnState, Member, PruneInfo, RoomMeta, RoomStore, StoreError, StoredEvent, StoredRoom, Write,
};
use crate::jwt::{Audience, Claims, JwtVerifier, Role};

const SECRET: &[u8] = b"room tests secret, 32 bytes long";
const ROOM: &str = "r1";
const T0: u64 = 1_800_000_000_000;

// ---------------------------------------------------------------------------------
// In-memory storage
// ---------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct MemoryStore {
    meta: Option<RoomMeta>,
    events: BTreeMap<u64, StoredEvent>,
    members: BTreeMap<String, Member>,
    reads: BTreeMap<String, u64>,
    uploads: BTreeMap<String, StoredUpload>,
    files: BTreeMap<String, StoredFile>,
    audit: Vec<AuditEntry>,
    notified: BTreeMap<String, u64>,
    fail_reads: Cell<bool>,
    writes: usize,
}

impl MemoryStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.fail_reads.get() {
            Err(StoreError("injected".into()))
        } else {
            Ok(())
        }
    }

    fn apply(&mut self, write: Write) {
        self.writes += 1;
        match write {
            Write::Meta(meta) => self.meta = Some(meta),
            Write::Event(e) => {
                assert!(
                    self.events
                        .keys()
                        .next_back()
                        .is_none_or(|last| *last < e.seq),
                    "events are appended in seq order"
                );
                self.events.insert(e.seq, e);
            }
            Write::Member(m) => {
                self.members.insert(m.user_id.clone(), m);
            }
            Write::RemoveMember(user) => {
                self.members.remove(&user);
            }
            Write::Read { user_id, seq } => {
                self.reads.insert(user_id, seq);
            }
            Write::Prune { before_at } => self
                .events
                .retain(|_, e| e.kind == EventKind::NewMessage || e.at >= before_at),
            Write::Upload(u) => {
                self.uploads.insert(u.file_id.clone(), u);
            }
            Write::RemoveUpload(id) => {
                self.uploads.remove(&id);
            }
            Write::File(f) => {
                self.files.insert(f.file.id.clone(), f);
            }
            Write::RemoveFile(id) => {
                self.files.remove(&id);
            }
            Write::Audit(entry) => {
                assert_eq!(
                    entry.seq,
                    self.audit.len() as u64 + 1,
                    "audit seqs have no gaps"
                );
                self.audit.push(entry);
            }
            Write::Notified { user_id, at } => {
                self.notified.insert(user_id, at);
            }
        }
    }
}

impl RoomStore for MemoryStore {
    fn load(&self, since: u64) -> Result<StoredRoom, StoreError> {
        self.check()?;
        let last = self.events.values().next_back();
        Ok(StoredRoom {
            meta: self.meta.clone(),
            max_seq: last.map_or(0, |e| e.seq),
            last_at: last.map_or(0, |e| e.at),
            members: self.members.values().cloned().collect(),
            reads: self.reads.iter().map(|(u, s)| (u.clone(), *s)).collect(),
            recent_sends: self
                .events
                .values()
                .filter(|e| e.kind == EventKind::NewMessage && e.at >= since)
                .map(|e| (e.sender.clone(), e.at))
                .collect(),
            oldest_prunable_at: self
                .events
                .values()
                .filter(|e| e.kind != EventKind::NewMessage)
                .map(|e| e.at)
                .min(),
            uploads: self.uploads.values().cloned().collect(),
            audit_head: self.audit.len() as u64,
            notified: self.notified.iter().map(|(u, a)| (u.clone(), *a)).collect(),
        })
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.check()?;
        Ok(self
            .events
            .range(after + 1..)
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn messages_before(&self, before: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.check()?;
        Ok(self
            .events
            .range(..before)
            .rev()
            .filter(|(_, e)| e.kind == EventKind::NewMessage)
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn message_by_request(
        &self,
        sender: &str,
        id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        self.check()?;
        Ok(self
            .events
            .values()
            .find(|e| {
                e.kind == EventKind::NewMessage
                    && e.sender == sender
                    && e.request_id.as_deref() == Some(id)
            })
            .cloned())
    }

    fn prunable(&self, cutoff: u64) -> Result<PruneInfo, StoreError> {
        self.check()?;
        let prunable = || {
            self.events
                .values()
                .filter(|e| e.kind != EventKind::NewMessage)
        };
        Ok(PruneInfo {
            through_seq: prunable().filter(|e| e.at < cutoff).map(|e| e.seq).max(),
            next_oldest_at: prunable().filter(|e| e.at >= cutoff).map(|e| e.at).min(),
        })
    }

    fn file(&self, id: &str) -> Result<Option<StoredFile>, StoreError> {
        self.check()?;
        Ok(self.files.get(id).cloned())
    }

    fn files_before(&self, before: u64, limit: usize) -> Result<Vec<StoredFile>, StoreError> {
        self.check()?;
        let mut all: Vec<StoredFile> = self
            .files
            .values()
            .filter(|f| f.seq < before)
            .cloned()
            .collect();
        all.sort_by_key(|f| std::cmp::Reverse(f.seq));
        all.truncate(limit);
        Ok(all)
    }

    fn children(&self, parent: &str) -> Result<Vec<StoredFile>, StoreError> {
        self.check()?;
        Ok(self
            .files
            .values()
            .filter(|f| f.file.parent_id.as_deref() == Some(parent))
            .cloned()
            .collect())
    }

    fn audit_before(&self, before: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.check()?;
        Ok(self
            .audit
            .iter()
            .rev()
            .filter(|a| a.seq < before)
            .take(limit)
            .cloned()
            .collect())
    }
}

// ---------------------------------------------------------------------------------
// The harness: one room object, its storage, its sockets, a clock
// ---------------------------------------------------------------------------------

struct Harness {
    limits: RoomLimits,
    room: Option<Room>,
    store: MemoryStore,
    /// The platform's view of each open socket's attachment.
    sockets: BTreeMap<ConnId, Option<ConnState>>,
    inbox: BTreeMap<ConnId, Vec<Value>>,
    closed: BTreeMap<ConnId, u16>,
    pings: BTreeMap<ConnId, u64>,
    alarm: Option<u64>,
    now: u64,
    next_conn: u64,
    /// Evict the object before every input.
    evict_always: bool,
    wakes: usize,
    requests: u64,
    /// What storage holds (files of the room's uploads); deletions the shell carries
    /// out remove from it.
    objects: BTreeSet<String>,
    /// Deletions storage refuses.
    undeletable: BTreeSet<String>,
    /// Removals asked for and not yet carried out, while `hold_deletes`.
    deletes: Vec<(u64, Vec<String>)>,
    hold_deletes: bool,
    /// Webhooks the room asked for.
    notifications: Vec<Notification>,
    /// Hold batches of messages until [`Harness::flush`] (else they are written at
    /// once, the window closing before the next input).
    hold_flush: bool,
    /// Whether the room asked for a flush that has not happened.
    flush_due: bool,
    /// How many times the shell applied writes (one transaction each).
    transactions: usize,
    /// Hold presence windows open until [`Harness::close_presence`] (else each closes
    /// once the input that opened it is carried out).
    hold_presence: bool,
    /// Presence windows opened and not yet closed.
    presence_due: Vec<u64>,
}

impl Harness {
    fn new() -> Self {
        Self::with_limits(RoomLimits::default())
    }

    fn with_limits(limits: RoomLimits) -> Self {
        Self {
            limits,
            room: None,
            store: MemoryStore::default(),
            sockets: BTreeMap::new(),
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            pings: BTreeMap::new(),
            alarm: None,
            now: T0,
            next_conn: 1,
            evict_always: false,
            wakes: 0,
            requests: 0,
            objects: BTreeSet::new(),
            undeletable: BTreeSet::new(),
            deletes: Vec::new(),
            hold_deletes: false,
            notifications: Vec::new(),
            hold_flush: false,
            flush_due: false,
            transactions: 0,
            hold_presence: false,
            presence_due: Vec::new(),
        }
    }

    /// The live room object, woken from storage and attachments if it was evicted.
    fn room(&mut self) -> &mut Room {
        if self.evict_always {
            self.room = None;
        }
        if self.room.is_none() {
            let conns: Vec<ConnState> = self.sockets.values().flatten().cloned().collect();
            let verifier = JwtVerifier::new(SECRET, "sealdrop").unwrap();
            let room = Room::restore(
                ROOM,
                self.limits.clone(),
                verifier,
                &self.store,
                conns,
                self.alarm,
                self.now,
            )
            .expect("restore");
            self.room = Some(room);
            self.wakes += 1;
        }
        self.room.as_mut().unwrap()
    }

    fn evict(&mut self) {
        self.room = None;
    }

    fn run(&mut self, actions: Vec<Action>) {
        if actions.iter().any(|a| matches!(a, Action::Store(_))) {
            self.transactions += 1;
        }
        for action in actions {
            match action {
                Action::Store(w) => self.store.apply(w),
                Action::Send { to, frame } => self.deliver(to, &frame),
                Action::Broadcast { to, frame } => {
                    for c in to {
                        self.deliver(c, &frame);
                    }
                }
                Action::Save(state) => {
                    let slot = self
                        .sockets
                        .get_mut(&state.id)
                        .expect("save on an open socket");
                    *slot = Some(state);
                }
                Action::Close { conn, code } => {
                    self.sockets.remove(&conn);
                    self.closed.insert(conn, code.code());
                }
                Action::SetAlarm(at) => self.alarm = at,
                Action::DeleteFiles { removal, file_ids } => {
                    self.deletes.push((removal, file_ids));
                    if !self.hold_deletes {
                        self.carry_out_deletes();
                    }
                }
                Action::Notify(n) => self.notifications.push(n),
                Action::FlushLater => {
                    self.flush_due = true;
                    if !self.hold_flush {
                        self.flush();
                    }
                }
                Action::PresenceLater { batch } => self.presence_due.push(batch),
            }
        }
        if !self.hold_presence {
            self.close_presence();
        }
    }

    /// Every open presence window closes (the object is in memory: it is not evicted
    /// while it waits for a window).
    fn close_presence(&mut self) {
        for batch in std::mem::take(&mut self.presence_due) {
            if let Some(room) = self.room.as_mut() {
                let actions = room.flush_presence(batch);
                self.run(actions);
            }
        }
    }

    /// The write window closes: the room's batch is written and sent (the object is
    /// in memory: it is not evicted while it waits for the window).
    fn flush(&mut self) {
        self.flush_due = false;
        if let Some(room) = self.room.as_mut() {
            let actions = room.flush();
            self.run(actions);
        }
    }

    /// Carries out the deletions asked for and reports them to the room.
    fn carry_out_deletes(&mut self) {
        for (removal, ids) in std::mem::take(&mut self.deletes) {
            let deleted: Vec<String> = ids
                .into_iter()
                .filter(|id| !self.undeletable.contains(id))
                .collect();
            for id in &deleted {
                self.objects.remove(id);
            }
            // The report continues the input that asked for it: the object is still
            // in memory (a Durable Object is not evicted while it awaits a call).
            let now = self.now;
            let Some(room) = self.room.as_mut() else {
                continue;
            };
            let actions = room.files_deleted(now, removal, &deleted);
            self.run(actions);
        }
    }

    fn deliver(&mut self, to: ConnId, frame: &str) {
        assert!(
            self.sockets.contains_key(&to),
            "frame to a closed socket: {frame}"
        );
        let value: Value = serde_json::from_str(frame).expect("frames are JSON");
        self.inbox.entry(to).or_default().push(value);
    }

    fn open(&mut self, token: Option<&str>) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.sockets.insert(id, None);
        let now = self.now;
        let actions = self.room().handle_open(now, id, token);
        self.run(actions);
        id
    }

    /// A socket that authenticated as `user` (and joined, if `join`).
    fn user(&mut self, user: &str, role: Role, join: bool) -> ConnId {
        let c = self.open(None);
        let t = token(user, role, self.now);
        self.send(c, json!({"event": "authenticate", "data": {"token": t}}));
        assert_eq!(self.take(c)[0]["event"], "authentication_successful");
        if join {
            self.send(c, json!({"event": "join-room", "id": "j"}));
            let got = self.take(c);
            assert_eq!(got.last().unwrap()["event"], "ack", "{got:?}");
        }
        c
    }

    fn send(&mut self, conn: ConnId, frame: Value) {
        self.send_text(conn, &frame.to_string());
    }

    fn send_text(&mut self, conn: ConnId, text: &str) {
        let now = self.now;
        self.room();
        let room = self.room.as_mut().unwrap();
        let actions = room.handle_text(now, conn, text, &self.store);
        self.run(actions);
    }

    fn binary(&mut self, conn: ConnId) {
        let now = self.now;
        let actions = self.room().handle_binary(now, conn);
        self.run(actions);
    }

    fn client_close(&mut self, conn: ConnId) {
        // The closing socket's attachment is still readable while the room handles it.
        let now = self.now;
        let actions = self.room().handle_close(now, conn);
        self.sockets.remove(&conn);
        self.run(actions);
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        while let Some(at) = self.alarm {
            if at > self.now {
                break;
            }
            self.alarm = None;
            let now = self.now;
            self.room();
            let (room, pings) = (self.room.as_mut().unwrap(), &self.pings);
            let actions = room.handle_alarm(now, |c| pings.get(&c).copied(), &self.store);
            self.run(actions);
        }
    }

    fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// The frames of one event name `conn` received, draining its inbox.
    fn events(&mut self, conn: ConnId, name: &str) -> Vec<Value> {
        self.take(conn)
            .into_iter()
            .filter(|f| f["event"] == name)
            .collect()
    }

    /// Sends a request and returns its answer (`ack` or `error`) for `id`.
    /// Each request gets a fresh id (a repeated `send-message` id is a resend).
    fn request(&mut self, conn: ConnId, event: &str, data: Value) -> Value {
        self.requests += 1;
        let id = format!("q{}", self.requests);
        self.send(conn, json!({"event": event, "data": data, "id": id}));
        let answers: Vec<Value> = self
            .take(conn)
            .into_iter()
            .filter(|f| (f["event"] == "ack" || f["event"] == "error") && f["data"]["id"] == id)
            .collect();
        assert_eq!(answers.len(), 1, "one answer to {event}: {answers:?}");
        answers.into_iter().next().unwrap()
    }
}

fn token(user: &str, role: Role, now_ms: u64) -> String {
    token_with(user, ROOM, role, now_ms / 1000 + 3600)
}

fn token_with(user: &str, room: &str, role: Role, exp: u64) -> String {
    let claims = Claims {
        sub: user.into(),
        name: Some(format!("{user} (name)")),
        aud: Audience::One("sealdrop".into()),
        exp,
        nbf: None,
        iat: None,
        rooms: BTreeMap::from([(room.into(), role)]),
    };
    JwtVerifier::new(SECRET, "sealdrop").unwrap().mint(&claims)
}

fn sealed(text: &str, sender: &str) -> String {
    let ctx = SealContext {
        event: "new-message",
        sender,
        field: "text",
    };
    RoomKey::from_bytes([5; 32])
        .cipher(ROOM)
        .seal(&ctx, text.as_bytes(), [1; 12])
}

fn code(answer: &Value) -> &str {
    answer["data"]["code"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------

#[test]
fn authenticates_by_frame_or_by_protocol_header() {
    let mut h = Harness::new();
    let a = h.open(None);
    let t = token("alice", Role::Member, h.now);
    let ack = h.request(a, "authenticate", json!({"token": t}));
    assert_eq!(ack["event"], "ack");
    assert_eq!(ack["data"]["userId"], "alice");
    assert_eq!(ack["data"]["sessionId"], a.session_id());

    let t = token("bob", Role::Moderator, h.now);
    let b = h.open(Some(&t));
    let got = h.take(b);
    assert_eq!(got[0]["event"], "authentication_successful");
    assert_eq!(got[0]["data"]["role"], "moderator");
    assert_eq!(got[0]["data"]["userName"], "bob (name)");
    // Authenticating twice is refused; the socket stays.
    assert_eq!(
        code(&h.request(b, "authenticate", json!({"token": t}))),
        "already_authenticated"
    );
    assert!(h.sockets.contains_key(&b));
}

#[test]
fn every_bad_token_is_refused_and_closed_with_its_code() {
    let now_s = T0 / 1000;
    let verifier = JwtVerifier::new(SECRET, "sealdrop").unwrap();
    let other = JwtVerifier::new(b"another secret that is 32 bytes!", "sealdrop").unwrap();
    let claims = |aud: &str, exp: u64, nbf: Option<u64>, room: &str| Claims {
        sub: "u".into(),
        name: None,
        aud: Audience::One(aud.into()),
        exp,
        nbf,
        iat: None,
        rooms: BTreeMap::from([(room.into(), Role::Owner)]),
    };
    let cases = [
        ("garbage".to_owned(), "invalid_token", 4001),
        (
            other.mint(&claims("sealdrop", now_s + 99, None, ROOM)),
            "invalid_token",
            4001,
        ),
        (
            verifier.mint(&claims("sealdrop", now_s - 61, None, ROOM)),
            "expired_token",
            4002,
        ),
        (
            verifier.mint(&claims("sealdrop", now_s + 999, Some(now_s + 61), ROOM)),
            "invalid_token",
            4001,
        ),
        (
            verifier.mint(&claims("elsewhere", now_s + 99, None, ROOM)),
            "invalid_token",
            4001,
        ),
        (
            verifier.mint(&claims("sealdrop", now_s + 99, None, "r2")),
            "unauthorized",
            4003,
        ),
    ];
    for (t, expected, close) in cases {
        let mut h = Harness::new();
        let c = h.open(None);
        h.send(
            c,
            json!({"event": "authenticate", "data": {"token": t}, "id": "a"}),
        );
        let got = h.take(c);
        assert_eq!(got[0]["event"], "authentication_failed", "{got:?}");
        assert_eq!(got[0]["data"]["code"], expected);
        assert_eq!(got[1]["event"], "error");
        assert_eq!(got[1]["data"]["id"], "a");
        assert_eq!(h.closed.get(&c), Some(&close), "{expected}");
        assert_eq!(h.room().conn_count(), 0);
    }
}

#[test]
fn events_before_authentication_are_refused_and_the_socket_kept() {
    let mut h = Harness::new();
    let c = h.open(None);
    for (event, data) in [
        ("join-room", json!({})),
        ("send-message", json!({"text": sealed("x", "alice")})),
        ("history", json!({})),
        ("leave-room", json!({})),
    ] {
        assert_eq!(
            code(&h.request(c, event, data)),
            "not_authenticated",
            "{event}"
        );
    }
    // A malformed frame is refused as malformed first.
    assert_eq!(
        code(&h.request(c, "send-message", json!({}))),
        "invalid_data"
    );
    let t = token("alice", Role::Member, h.now);
    assert_eq!(
        h.request(c, "authenticate", json!({"token": t}))["event"],
        "ack"
    );
}

#[test]
fn a_socket_that_never_authenticates_is_closed_after_the_timeout_even_across_eviction() {
    let mut h = Harness::new();
    let c = h.open(None);
    assert_eq!(h.alarm, Some(T0 + 10_000));
    h.evict();
    h.advance(9_999);
    assert!(h.sockets.contains_key(&c));
    h.advance(1);
    assert_eq!(h.closed.get(&c), Some(&4008));
    // An authenticated one is not.
    let a = h.user("alice", Role::Member, false);
    h.advance(60_000);
    assert!(h.sockets.contains_key(&a));
}

#[test]
fn connection_limits() {
    let limits = RoomLimits {
        max_devices_per_user: 2,
        max_connections: 4,
        ..RoomLimits::default()
    };
    let mut h = Harness::with_limits(limits);
    h.user("alice", Role::Member, false);
    h.user("alice", Role::Member, false);
    let third = h.open(None);
    let t = token("alice", Role::Member, h.now);
    h.send(
        third,
        json!({"event": "authenticate", "data": {"token": t}}),
    );
    assert_eq!(code(&h.take(third)[0]), "too_many_connections");
    assert_eq!(h.closed.get(&third), Some(&4009));
    h.user("bob", Role::Member, false);
    h.open(None);
    let over = h.open(None);
    assert_eq!(h.closed.get(&over), Some(&4009));
}

// ---------------------------------------------------------------------------------
// Joining, leaving, presence
// ---------------------------------------------------------------------------------

#[test]
fn join_sends_state_presence_and_history_then_the_ack() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Owner, true);
    h.request(a, "send-message", json!({"text": sealed("hi", "alice")}));
    let b = h.user("bob", Role::Member, false);
    h.send(
        b,
        json!({"event": "join-room", "data": {"roomId": ROOM, "userId": "bob"}, "id": "j"}),
    );
    let got = h.take(b);
    let names: Vec<&str> = got.iter().map(|f| f["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "room-state",
            "presence",
            "uploads",
            "files",
            "history",
            "user-joined",
            "ack"
        ]
    );
    assert_eq!(got[0]["data"]["you"]["userId"], "bob");
    assert_eq!(got[0]["data"]["memberCount"], 2);
    assert_eq!(got[0]["data"]["head"], 3); // alice joined, message, bob joined
    let users = &got[1]["data"]["users"];
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert_eq!(got[2]["data"]["uploads"], json!([]));
    assert_eq!(got[3]["data"]["files"], json!([]));
    assert_eq!(got[4]["data"]["messages"][0]["senderId"], "alice");
    assert_eq!(got[4]["data"]["hasMore"], false);
    assert_eq!(got[5]["seq"], 3);
    assert_eq!(got[6]["data"]["head"], 3);
    // Alice sees bob join, with his device count, in one frame.
    let seen = h.take(a);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["event"], "presence-changed");
    assert_eq!(seen[0]["seq"], 3);
    let joined = &seen[0]["data"]["joined"];
    assert_eq!(joined[0]["userName"], "bob (name)");
    assert_eq!(joined[0]["seq"], 3);
    assert_eq!(seen[0]["data"]["online"][0]["devices"], 1);
}

/// The one `presence-changed` frame `conn` received (its inbox drained).
fn presence_change(h: &mut Harness, conn: ConnId) -> Value {
    let got = h.take(conn);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "presence-changed", "{got:?}");
    got[0]["data"].clone()
}

/// `(userId, seq or devices)` of one list of a `presence-changed`.
fn listed(data: &Value, list: &str) -> Vec<(String, u64)> {
    data[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let n = u.get("seq").unwrap_or(&u["devices"]);
            (
                u["userId"].as_str().unwrap().to_owned(),
                n.as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn presence_counts_devices_and_goes_offline_with_the_last_one() {
    let mut h = Harness::new();
    let watcher = h.user("carol", Role::Member, true);
    let phone = h.user("alice", Role::Member, true);
    assert_eq!(listed(&presence_change(&mut h, watcher), "joined").len(), 1);
    let laptop = h.user("alice", Role::Member, true);
    // The second device is not a new member: no join, only the device count.
    let got = presence_change(&mut h, watcher);
    assert_eq!(listed(&got, "joined"), []);
    assert_eq!(listed(&got, "online"), [("alice".into(), 2)]);
    assert_eq!(
        h.room().presence(),
        [("alice".into(), 2), ("carol".into(), 1)]
    );
    h.client_close(phone);
    let got = presence_change(&mut h, watcher);
    assert_eq!(listed(&got, "online"), [("alice".into(), 1)]);
    h.client_close(laptop);
    let got = presence_change(&mut h, watcher);
    assert_eq!(listed(&got, "offline"), [("alice".into(), 0)]);
    assert_eq!(listed(&got, "online"), []);
    // Still a member: coming back is not a new join.
    h.user("alice", Role::Member, true);
    let got = presence_change(&mut h, watcher);
    assert_eq!(listed(&got, "joined"), []);
    assert_eq!(listed(&got, "online"), [("alice".into(), 1)]);
}

#[test]
fn leave_room_ends_membership_on_every_device() {
    let mut h = Harness::new();
    let watcher = h.user("carol", Role::Member, true);
    let one = h.user("alice", Role::Member, true);
    let two = h.user("alice", Role::Member, true);
    h.take(watcher);
    h.take(one);
    let ack = h.request(one, "leave-room", json!({}));
    assert_eq!(ack["event"], "ack");
    let left = presence_change(&mut h, watcher);
    assert_eq!(
        listed(&left, "left"),
        [("alice".into(), ack["data"]["seq"].as_u64().unwrap())]
    );
    assert!(left["left"][0]["leftAt"].is_string());
    assert_eq!(listed(&left, "offline"), [("alice".into(), 0)]);
    // The user's own devices hear `user-left` itself.
    assert_eq!(h.events(two, "user-left").len(), 1);
    // Both devices are out of the room now.
    assert_eq!(
        code(&h.request(two, "send-message", json!({"text": sealed("x", "alice")}))),
        "not_joined"
    );
    assert_eq!(h.room().presence(), [("carol".into(), 1)]);
    assert!(!h.store.members.contains_key("alice"));
    // Joining again makes a new member.
    h.request(two, "join-room", json!({}));
    assert_eq!(listed(&presence_change(&mut h, watcher), "joined").len(), 1);
}

#[test]
fn the_room_and_user_in_a_frame_must_be_this_socket_s() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Moderator, true);
    assert_eq!(
        code(&h.request(a, "join-room", json!({"roomId": "r2"}))),
        "wrong_room"
    );
    assert_eq!(
        code(&h.request(a, "lock-room", json!({"userId": "bob"}))),
        "forbidden"
    );
    assert_eq!(
        code(&h.request(
            a,
            "send-message",
            json!({"roomId": "other", "text": sealed("x", "alice")})
        )),
        "wrong_room"
    );
    assert_eq!(
        h.request(a, "join-room", json!({"roomId": ROOM, "userId": "alice"}))["event"],
        "ack"
    );
}

// ---------------------------------------------------------------------------------
// Chat
// ---------------------------------------------------------------------------------

#[test]
fn messages_are_numbered_broadcast_to_every_device_and_acked() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let a2 = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    for c in [a, a2, b] {
        h.take(c);
    }
    let text = sealed("hello", "alice");
    let ack = h.request(
        a,
        "send-message",
        json!({"text": text, "attachments": [sealed("a", "alice")]}),
    );
    // alice joined (1), bob joined (2); alice's second device is no new member.
    assert_eq!(ack["data"]["seq"], 3);
    assert_eq!(ack["data"]["messageId"], "m3");
    assert_eq!(ack["data"]["duplicate"], false);
    for c in [a2, b] {
        let got = h.events(c, "new-message");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["seq"], 3);
        assert_eq!(got[0]["data"]["text"], text);
        assert_eq!(got[0]["data"]["senderName"], "alice (name)");
        assert_eq!(got[0]["data"]["attachments"].as_array().unwrap().len(), 1);
    }
    // Order: seqs increase by one, in the order sent, from any sender.
    for i in 0..5 {
        let from = if i % 2 == 0 { a } else { b };
        let sender = if i % 2 == 0 { "alice" } else { "bob" };
        h.request(
            from,
            "send-message",
            json!({"text": sealed(&format!("{i}"), sender)}),
        );
    }
    let seqs: Vec<u64> = h
        .events(a2, "new-message")
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5, 6, 7, 8]);
}

#[test]
fn a_resent_request_gets_the_same_message_not_a_second_one() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    h.take(a);
    h.take(b);
    let frame =
        json!({"event": "send-message", "data": {"text": sealed("once", "alice")}, "id": "msg-1"});
    h.send(a, frame.clone());
    let first = h.take(a).into_iter().find(|f| f["event"] == "ack").unwrap();
    // The connection drops before the ack arrives; the client resends on a new socket.
    h.client_close(a);
    let a = h.user("alice", Role::Member, true);
    h.send(a, frame);
    let again = h.take(a).into_iter().find(|f| f["event"] == "ack").unwrap();
    assert_eq!(again["data"]["seq"], first["data"]["seq"]);
    assert_eq!(again["data"]["duplicate"], true);
    assert_eq!(h.events(b, "new-message").len(), 1);
    // The same id from another user is another message.
    let ack = h.request(b, "send-message", json!({"text": sealed("x", "bob")}));
    assert_eq!(ack["data"]["duplicate"], false);
}

#[test]
fn history_pages_backwards_without_gaps_or_repeats() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    h.limits.messages_per_window = 1000;
    h.evict();
    for i in 0..120 {
        h.now += 100; // within the frame rate
        h.request(
            a,
            "send-message",
            json!({"text": sealed(&i.to_string(), "alice")}),
        );
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let mut data = json!({"limit": 50});
        if let Some(b) = before {
            data["beforeSeq"] = json!(b);
        }
        let page = h.request(a, "history", data);
        let messages = page["data"]["messages"].as_array().unwrap().clone();
        let seqs: Vec<u64> = messages
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
        seen.splice(0..0, seqs.iter().copied());
        before = seqs.first().copied();
        if page["data"]["hasMore"] == false {
            break;
        }
    }
    assert_eq!(
        seen,
        (2..=121).collect::<Vec<u64>>(),
        "every message once (seq 1 is the join)"
    );
    assert_eq!(
        code(&h.request(a, "history", json!({"limit": 0}))),
        "invalid_data"
    );
    assert_eq!(
        code(&h.request(a, "history", json!({"limit": 101}))),
        "invalid_data"
    );
    // Without an id the page comes as a `history` event.
    h.send(a, json!({"event": "history", "data": {"limit": 2}}));
    let got = h.events(a, "history");
    assert_eq!(got[0]["data"]["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn thirty_messages_a_minute_per_user_even_across_eviction() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    for i in 0..30 {
        h.now += 100;
        if i == 15 {
            h.evict(); // the allowance is rebuilt from stored send times
        }
        let ack = h.request(a, "send-message", json!({"text": sealed("x", "alice")}));
        assert_eq!(ack["event"], "ack", "message {i}");
    }
    let refused = h.request(a, "send-message", json!({"text": sealed("x", "alice")}));
    assert_eq!(code(&refused), "rate_limited");
    let retry = refused["data"]["retryAfter"].as_u64().unwrap();
    assert_eq!(retry, 58); // the first left the window 57.1 s from now: whole seconds, rounded up
    // Others are not limited by alice's rate.
    assert_eq!(
        h.request(b, "send-message", json!({"text": sealed("x", "bob")}))["event"],
        "ack"
    );
    h.advance(retry * 1000);
    assert_eq!(
        h.request(a, "send-message", json!({"text": sealed("x", "alice")}))["event"],
        "ack"
    );
}

#[test]
fn a_flood_of_frames_is_rate_limited_per_connection() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let mut limited = 0;
    for _ in 0..100 {
        let answer = h.request(a, "history", json!({"limit": 1}));
        if code(&answer) == "rate_limited" {
            limited += 1;
            assert!(answer["data"]["retryAfter"].as_u64().unwrap() >= 1);
        }
    }
    // Burst 60, minus the two frames the helper used to authenticate and join.
    assert_eq!(limited, 100 - 58);
    h.advance(5_000);
    assert_eq!(h.request(a, "history", json!({"limit": 1}))["event"], "ack");
}

#[test]
fn read_receipts_only_move_forward() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    h.request(a, "send-message", json!({"text": sealed("1", "alice")}));
    h.request(a, "send-message", json!({"text": sealed("2", "alice")}));
    h.take(a);
    h.take(b);
    let ack = h.request(b, "mark-as-read", json!({"seq": 4}));
    assert_eq!(ack["data"]["seq"], 4);
    let read = h.events(a, "message-read");
    assert_eq!(
        read[0]["data"],
        json!({"roomId": ROOM, "userId": "bob", "seq": 4})
    );
    assert_eq!(read[0]["seq"], 5); // the event's own seq
    // Going back changes nothing and tells no one.
    assert_eq!(
        h.request(b, "mark-as-read", json!({"seq": 3}))["data"]["seq"],
        4
    );
    assert!(h.events(a, "message-read").is_empty());
    assert_eq!(
        code(&h.request(b, "mark-as-read", json!({"seq": 99}))),
        "invalid_seq"
    );
    // A later join sees the mark in the state.
    let c = h.user("carol", Role::Member, false);
    h.send(c, json!({"event": "join-room"}));
    let state = h.events(c, "room-state");
    assert_eq!(state[0]["data"]["reads"]["bob"], 4);
}

#[test]
fn sealed_fields_are_checked_for_form_and_size() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Moderator, true);
    let long = "A".repeat(16 * 1024 + 1);
    for (data, needle) in [
        (
            json!({"text": "hello in the clear"}),
            "text is not a sealed payload",
        ),
        (json!({"text": long}), "over the limit"),
        (
            json!({"text": sealed("x", "alice"), "attachments": ["nope"]}),
            "attachments[0]",
        ),
        (
            json!({"text": sealed("x", "alice"), "attachments": vec![sealed("a", "alice"); 9]}),
            "at most 8",
        ),
    ] {
        let answer = h.request(a, "send-message", data);
        assert_eq!(code(&answer), "invalid_data");
        assert!(
            answer["data"]["message"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
    assert_eq!(
        code(&h.request(a, "lock-room", json!({"reason": "in the clear"}))),
        "invalid_data"
    );
    assert_eq!(h.store.events.len(), 1, "nothing refused was stored");
}

// ---------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------

#[test]
fn moderators_lock_and_a_locked_room_admits_no_new_members() {
    let mut h = Harness::new();
    let member = h.user("alice", Role::Member, true);
    let moderator = h.user("mod", Role::Moderator, true);
    h.take(member);
    assert_eq!(
        code(&h.request(member, "lock-room", json!({}))),
        "forbidden"
    );
    let reason = RoomKey::from_bytes([5; 32]).cipher(ROOM).seal(
        &SealContext {
            event: "room-locked",
            sender: "mod",
            field: "reason",
        },
        b"spam",
        [2; 12],
    );
    let ack = h.request(moderator, "lock-room", json!({"reason": reason}));
    assert_eq!(ack["data"]["changed"], true);
    assert_eq!(ack["data"]["seq"], 3);
    let locked = h.events(member, "room-locked");
    assert_eq!(locked[0]["data"]["lockedBy"], "mod");
    assert_eq!(locked[0]["data"]["lockedByName"], "mod (name)");
    assert_eq!(locked[0]["data"]["reason"], reason);
    // Locking again changes nothing.
    assert_eq!(
        h.request(moderator, "lock-room", json!({}))["data"]["changed"],
        false
    );

    let newcomer = h.user("zoe", Role::Member, false);
    let refused = h.request(newcomer, "join-room", json!({}));
    assert_eq!(code(&refused), "room_locked");
    // A member who was already in comes back (a reconnect); so does a moderator.
    h.client_close(member);
    let back = h.user("alice", Role::Member, false);
    assert_eq!(h.request(back, "join-room", json!({}))["event"], "ack");
    let new_mod = h.user("mod2", Role::Moderator, false);
    assert_eq!(h.request(new_mod, "join-room", json!({}))["event"], "ack");
    // The lock survives eviction, and the state shows it.
    h.evict();
    let state = h.request(back, "join-room", json!({}));
    let _ = state;
    let ack = h.request(moderator, "unlock-room", json!({}));
    assert_eq!(ack["data"]["changed"], true);
    assert_eq!(
        h.events(back, "room-unlocked")[0]["data"]["unlockedBy"],
        "mod"
    );
    assert_eq!(h.request(newcomer, "join-room", json!({}))["event"], "ack");
}

// ---------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------

#[test]
fn every_bad_frame_gets_a_precise_error_and_the_room_keeps_working() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    h.take(a);
    let huge = format!(
        r#"{{"event":"send-message","data":{{"text":"{}"}}}}"#,
        "A".repeat(70_000)
    );
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "invalid_json"),
        ("[]".into(), "invalid_json"),
        (r#"{"event":"send-message","id":7}"#.into(), "invalid_frame"),
        (r#"{"id":"x"}"#.into(), "invalid_frame"),
        (
            r#"{"event":"send-message","bogus":1}"#.into(),
            "invalid_frame",
        ),
        (r#"{"event":"teleport"}"#.into(), "unknown_event"),
        (r#"{"event":"send-message"}"#.into(), "invalid_data"),
        (
            r#"{"event":"send-message","data":{"text":1}}"#.into(),
            "invalid_data",
        ),
        (
            r#"{"event":"mark-as-read","data":{"seq":"1"}}"#.into(),
            "invalid_data",
        ),
        (
            r#"{"event":"history","data":{"beforeSeq":-4}}"#.into(),
            "invalid_data",
        ),
        (huge, "frame_too_large"),
    ];
    for (text, expected) in cases {
        h.send_text(a, &text);
        let got = h.take(a);
        assert_eq!(got.len(), 1, "{text:.60}: {got:?}");
        assert_eq!(code(&got[0]), expected, "{text:.60}");
        // The socket and the room still work.
        let ack = h.request(
            a,
            "send-message",
            json!({"text": sealed("still here", "alice")}),
        );
        assert_eq!(ack["event"], "ack", "after {expected}");
        assert_eq!(h.events(b, "new-message").len(), 1);
    }
    h.binary(a);
    assert_eq!(code(&h.take(a)[0]), "invalid_frame");
    assert!(h.sockets.contains_key(&a));
}

#[test]
fn a_storage_failure_changes_nothing_and_answers_internal() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, false);
    h.store.fail_reads.set(true);
    let writes = h.store.writes;
    assert_eq!(code(&h.request(b, "join-room", json!({}))), "internal");
    assert_eq!(code(&h.request(a, "history", json!({}))), "internal");
    assert_eq!(
        code(&h.request(a, "send-message", json!({"text": sealed("x", "alice")}))),
        "internal"
    );
    assert_eq!(h.store.writes, writes);
    h.store.fail_reads.set(false);
    assert_eq!(h.request(b, "join-room", json!({}))["event"], "ack");
}

// ---------------------------------------------------------------------------------
// Reconnection and replay
// ---------------------------------------------------------------------------------

#[test]
fn a_reconnect_with_its_last_seq_gets_exactly_what_it_missed_before_live_events() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    for i in 0..3 {
        h.request(
            a,
            "send-message",
            json!({"text": sealed(&format!("{i}"), "alice")}),
        );
    }
    let last_seen = h
        .take(b)
        .iter()
        .filter_map(|f| f["seq"].as_u64())
        .max()
        .unwrap();
    h.client_close(b);
    h.take(a);
    // Missed while away: two messages, a read mark.
    h.request(
        a,
        "send-message",
        json!({"text": sealed("while away 1", "alice")}),
    );
    h.request(
        a,
        "send-message",
        json!({"text": sealed("while away 2", "alice")}),
    );
    h.request(a, "mark-as-read", json!({"seq": 7}));
    let b = h.user("bob", Role::Member, false);
    h.send(
        b,
        json!({"event": "join-room", "data": {"lastSeq": last_seen}, "id": "j"}),
    );
    let got = h.take(b);
    let names: Vec<&str> = got.iter().map(|f| f["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "room-state",
            "presence",
            "uploads",
            "files",
            "new-message",
            "new-message",
            "message-read",
            "ack"
        ]
    );
    let seqs: Vec<u64> = got.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(seqs, [last_seen + 1, last_seen + 2, last_seen + 3]);
    assert_eq!(got[7]["data"]["replayed"], 3);
    assert_eq!(got[7]["data"]["resync"], false);
}

#[test]
fn replay_holds_for_the_whole_window_and_an_older_gap_asks_for_a_resync() {
    let limits = RoomLimits {
        idle_timeout_ms: 0,
        ..RoomLimits::default()
    };
    let mut h = Harness::with_limits(limits);
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    h.client_close(b); // bob's last seq: 2
    // Events spread over 30 hours; prunable ones older than 24 h go.
    for hour in 0..30 {
        let head = h.room().head();
        h.request(a, "mark-as-read", json!({"seq": head}));
        h.request(
            a,
            "send-message",
            json!({"text": sealed(&format!("h{hour}"), "alice")}),
        );
        h.advance(HOUR_MS);
    }
    assert!(
        h.store.meta.as_ref().unwrap().floor > 2,
        "old events were pruned"
    );
    assert!(
        h.store
            .events
            .values()
            .filter(|e| e.kind == EventKind::NewMessage)
            .count()
            == 30,
        "messages stay"
    );
    let b = h.user("bob", Role::Member, false);
    h.send(
        b,
        json!({"event": "join-room", "data": {"lastSeq": 2}, "id": "j"}),
    );
    let got = h.take(b);
    let names: Vec<&str> = got.iter().map(|f| f["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "room-state",
            "presence",
            "uploads",
            "files",
            "resync-required",
            "history",
            "ack"
        ]
    );
    assert_eq!(got[4]["data"]["reason"], "too_old");
    assert_eq!(got[6]["data"]["resync"], true);
    // A gap inside the last 24 hours still replays.
    let floor = h.store.meta.as_ref().unwrap().floor;
    let recent = h
        .store
        .events
        .values()
        .filter(|e| e.at >= h.now - 23 * HOUR_MS)
        .map(|e| e.seq)
        .min()
        .unwrap();
    assert!(recent > floor);
    let c = h.user("bob", Role::Member, false);
    let ack = h.request(c, "join-room", json!({"lastSeq": recent}));
    assert_eq!(ack["data"]["resync"], false);
    // A seq from the future (the room was reset) resyncs too.
    let d = h.user("bob", Role::Member, false);
    h.send(d, json!({"event": "join-room", "data": {"lastSeq": 9999}}));
    assert_eq!(h.events(d, "resync-required")[0]["data"]["reason"], "ahead");
}

#[test]
fn too_long_a_gap_asks_for_a_resync() {
    let limits = RoomLimits {
        max_replay_events: 5,
        ..RoomLimits::default()
    };
    let mut h = Harness::with_limits(limits);
    let a = h.user("alice", Role::Member, true);
    for _ in 0..6 {
        h.request(a, "send-message", json!({"text": sealed("x", "alice")}));
    }
    let b = h.user("bob", Role::Member, false);
    h.send(b, json!({"event": "join-room", "data": {"lastSeq": 1}}));
    assert_eq!(
        h.events(b, "resync-required")[0]["data"]["reason"],
        "too_many"
    );
}

// ---------------------------------------------------------------------------------
// Hibernation: the room is only a cache of storage and attachments
// ---------------------------------------------------------------------------------

/// A script of everything a room does, run once normally and once with the object
/// evicted before every single input: every socket must receive the same frames.
fn scripted(evict_always: bool) -> (BTreeMap<ConnId, Vec<Value>>, BTreeMap<ConnId, u16>, usize) {
    let limits = RoomLimits {
        idle_timeout_ms: 0,
        ..RoomLimits::default()
    };
    let mut h = Harness::with_limits(limits);
    h.evict_always = evict_always;
    let mut log: BTreeMap<ConnId, Vec<Value>> = BTreeMap::new();
    let mut keep = |h: &mut Harness| {
        for (c, frames) in std::mem::take(&mut h.inbox) {
            log.entry(c).or_default().extend(frames);
        }
    };
    let a = h.user("alice", Role::Owner, true);
    let a2 = h.user("alice", Role::Owner, true);
    let b = h.user("bob", Role::Member, true);
    keep(&mut h);
    let silent = h.open(None);
    for i in 0..4 {
        h.now += 1000;
        h.send(a, json!({"event": "send-message", "data": {"text": sealed(&format!("{i}"), "alice")}, "id": format!("m{i}")}));
        h.send(
            b,
            json!({"event": "mark-as-read", "data": {"seq": h.store.events.len()}, "id": "r"}),
        );
    }
    h.send(
        a,
        json!({"event": "send-message", "data": {"text": sealed("0", "alice")}, "id": "m0"}),
    );
    h.send(a2, json!({"event": "lock-room", "id": "l"}));
    let z = h.user("zoe", Role::Member, false);
    h.send(z, json!({"event": "join-room", "id": "j"}));
    h.client_close(a);
    h.send(
        b,
        json!({"event": "history", "data": {"limit": 3}, "id": "h"}),
    );
    h.send(b, json!({"event": "teleport", "id": "t"}));
    h.advance(10_000); // `silent` never authenticated
    h.send(a2, json!({"event": "unlock-room", "id": "u"}));
    h.send(z, json!({"event": "join-room", "id": "j2"}));
    h.send(a2, json!({"event": "leave-room", "id": "bye"}));
    let _ = silent;
    keep(&mut h);
    let wakes = h.wakes;
    (log, h.closed, wakes)
}

#[test]
fn a_room_evicted_before_every_input_behaves_exactly_like_one_that_never_was() {
    let (steady, steady_closed, steady_wakes) = scripted(false);
    let (evicted, evicted_closed, evicted_wakes) = scripted(true);
    assert_eq!(steady_wakes, 1);
    assert!(evicted_wakes > 20);
    assert_eq!(steady_closed, evicted_closed);
    assert_eq!(steady.len(), evicted.len());
    for (conn, frames) in &steady {
        assert_eq!(Some(frames), evicted.get(conn), "frames of {conn:?}");
    }
    assert!(steady.values().map(Vec::len).sum::<usize>() > 60);
}

#[test]
fn presence_survives_hibernation() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    h.user("alice", Role::Member, true);
    h.user("bob", Role::Member, true);
    h.evict();
    let c = h.user("carol", Role::Member, false);
    h.send(c, json!({"event": "join-room"}));
    let presence = h.events(c, "presence");
    let users = presence[0]["data"]["users"].as_array().unwrap().clone();
    let got: Vec<(String, u64)> = users
        .iter()
        .map(|u| {
            (
                u["userId"].as_str().unwrap().to_owned(),
                u["devices"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("alice".into(), 2), ("bob".into(), 1), ("carol".into(), 1)]
    );
    // And a device closing after the wake is counted from the restored state.
    h.evict();
    h.client_close(a);
    assert_eq!(h.room().presence()[0], ("alice".into(), 1));
}

// ---------------------------------------------------------------------------------
// The alarm
// ---------------------------------------------------------------------------------

#[test]
fn silent_sockets_are_closed_at_the_idle_timeout_and_pinging_ones_are_not() {
    let mut h = Harness::new();
    let watcher = h.user("carol", Role::Member, true);
    let silent = h.user("alice", Role::Member, true);
    h.take(watcher);
    // The watcher pings (answered by the platform, which records when).
    for minute in 1..=10 {
        h.pings.insert(watcher, T0 + minute * 60_000);
        h.advance(60_000);
    }
    assert_eq!(h.closed.get(&silent), Some(&4010));
    assert!(h.sockets.contains_key(&watcher));
    let got = h.events(watcher, "presence-changed");
    assert_eq!(listed(&got[0]["data"], "offline"), [("alice".into(), 0)]);
}

#[test]
fn the_alarm_is_only_set_when_something_needs_it() {
    let limits = RoomLimits {
        idle_timeout_ms: 0,
        ..RoomLimits::default()
    };
    let mut h = Harness::with_limits(limits);
    let a = h.user("alice", Role::Member, false);
    assert_eq!(
        h.alarm, None,
        "no deadline, no idle check, nothing to prune"
    );
    h.request(a, "join-room", json!({}));
    // user-joined is prunable: pruning is due a replay window after it.
    assert_eq!(h.alarm, Some(T0 + 24 * HOUR_MS));
    let writes = h.store.writes;
    for _ in 0..5 {
        h.request(a, "send-message", json!({"text": sealed("x", "alice")}));
    }
    assert_eq!(
        h.store.writes,
        writes + 5,
        "one write per message, no alarm churn"
    );
}

// ---------------------------------------------------------------------------------
// Batched writes: messages within one write window share one write
// ---------------------------------------------------------------------------------

/// `send-message` with request id `id`, unanswered until its batch is written.
fn message(h: &mut Harness, conn: ConnId, id: &str, text: &str) {
    let text = sealed(text, "alice");
    h.send(
        conn,
        json!({"event": "send-message", "data": {"text": text}, "id": id}),
    );
}

fn acks(frames: &[Value]) -> Vec<(String, u64, bool)> {
    frames
        .iter()
        .filter(|f| f["event"] == "ack")
        .map(|f| {
            let d = &f["data"];
            let id = d["id"].as_str().unwrap().to_owned();
            (id, d["seq"].as_u64().unwrap(), d["duplicate"] == true)
        })
        .collect()
}

fn seqs(frames: &[Value], event: &str) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f["event"] == event)
        .map(|f| f["seq"].as_u64().unwrap())
        .collect()
}

/// Alice and Bob joined, their inboxes empty, batches held until `flush`.
fn batching() -> (Harness, ConnId, ConnId) {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    h.take(a);
    h.take(b);
    h.hold_flush = true;
    (h, a, b)
}

#[test]
fn messages_within_one_window_are_written_together_and_sent_only_after() {
    let (mut h, a, b) = batching();
    let (transactions, stored) = (h.transactions, h.store.events.len());
    for i in 0..3 {
        message(&mut h, a, &format!("x{i}"), &format!("{i}"));
    }
    assert!(h.flush_due);
    assert_eq!(h.store.events.len(), stored, "nothing written yet");
    assert!(h.take(a).is_empty() && h.take(b).is_empty(), "nor sent");
    h.flush();
    assert_eq!(h.transactions, transactions + 1, "one write for three");
    assert_eq!(h.store.events.len(), stored + 3);
    let head = h.room().head();
    let first = head - 2;
    let got = h.take(a);
    assert_eq!(
        acks(&got),
        [
            ("x0".to_owned(), first, false),
            ("x1".to_owned(), first + 1, false),
            ("x2".to_owned(), first + 2, false)
        ]
    );
    assert_eq!(seqs(&got, "new-message"), [first, first + 1, first + 2]);
    assert_eq!(
        seqs(&h.take(b), "new-message"),
        [first, first + 1, first + 2]
    );
    // A window with nothing in it writes nothing.
    h.flush();
    assert_eq!(h.transactions, transactions + 1);
}

#[test]
fn a_message_arriving_while_a_batch_is_written_opens_the_next_one_in_seq_order() {
    let (mut h, a, b) = batching();
    message(&mut h, a, "x1", "1");
    // The shell takes the batch and starts writing it; meanwhile another arrives.
    let writing = h.room().flush();
    h.flush_due = false;
    message(&mut h, a, "x2", "2");
    assert!(h.flush_due, "the second message opens a batch of its own");
    h.run(writing);
    let got = h.take(a);
    assert_eq!(acks(&got).len(), 1, "only the first is written: {got:?}");
    h.flush();
    let got = h.take(a);
    assert_eq!(acks(&got).len(), 1);
    let bob = seqs(&h.take(b), "new-message");
    assert_eq!(bob.len(), 2);
    assert!(bob[0] < bob[1], "seq order kept across batches");
}

#[test]
fn any_other_input_writes_the_batch_first_and_reads_through_it() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    h.take(a);
    h.hold_flush = true;
    message(&mut h, a, "x1", "1");
    let head = h.room().head();
    // A resend of a waiting message is answered after the batch, as a duplicate.
    message(&mut h, a, "x1", "1");
    assert!(h.take(a).is_empty());
    // A join reads the waiting message in its catch-up; the batch is written first.
    let c = h.user("carol", Role::Member, false);
    let stored = h.store.events.len();
    h.send(c, json!({"event": "join-room", "id": "j"}));
    assert!(
        h.store.events.len() > stored,
        "the batch went with the join"
    );
    assert_eq!(h.store.events.values().filter(|e| e.seq == head).count(), 1);
    let history = h.events(c, "history");
    let texts = history[0]["data"]["messages"].as_array().unwrap();
    assert_eq!(texts.last().unwrap()["seq"], head);
    assert_eq!(
        acks(&h.take(a)),
        [
            ("x1".to_owned(), head, false),
            ("x1".to_owned(), head, true)
        ]
    );
    // The window closing afterwards finds nothing left.
    let transactions = h.transactions;
    h.flush();
    assert_eq!(h.transactions, transactions);
}

#[test]
fn an_eviction_before_or_after_the_write_loses_nothing_and_duplicates_nothing() {
    let (mut h, a, b) = batching();
    let seen = h.room().head();
    // Evicted after the write, before the broadcast: the frames are lost, not the message.
    message(&mut h, a, "x1", "1");
    let batch = h.room().flush();
    for action in batch {
        if let Action::Store(w) = action {
            h.store.apply(w);
        }
    }
    h.evict();
    // Evicted before the write: the second message never was (nobody was told of it).
    message(&mut h, a, "x2", "2");
    h.evict();
    h.flush_due = false;
    h.hold_flush = false;
    assert!(h.take(a).is_empty() && h.take(b).is_empty());
    // Bob resumes from what he saw: the stored message, replayed exactly once.
    h.send(
        b,
        json!({"event": "join-room", "data": {"lastSeq": seen}, "id": "j"}),
    );
    assert_eq!(seqs(&h.take(b), "new-message"), [seen + 1]);
    // Alice's client resends both: the first is a duplicate, the second is new.
    message(&mut h, a, "x1", "1");
    message(&mut h, a, "x2", "2");
    assert_eq!(
        acks(&h.take(a)),
        [
            ("x1".to_owned(), seen + 1, true),
            ("x2".to_owned(), seen + 2, false)
        ]
    );
    let messages = h
        .store
        .events
        .values()
        .filter(|e| e.kind == EventKind::NewMessage)
        .count();
    assert_eq!(messages, 2);
}
