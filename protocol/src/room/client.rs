//! One client's connection to a room, as a sans-IO machine: what `RoomClient` in the
//! browser does, without the browser.
//!
//! The shell (client-wasm's `RoomClient`) opens sockets, runs timers and seals; this
//! machine decides everything else, and tests drive it with a clock and sockets of their
//! own:
//!
//! - **Joining**: when a socket opens it sends `join-room` (with `lastSeq` once it has
//!   seen events), and the connection is `Open` when that is acknowledged.
//! - **Requests** get an id and resolve with their `ack` or reject with their `error`,
//!   or with `timeout` when no answer comes within `request_timeout_ms` of being sent.
//! - **Offline queue**: a request made while not open waits, in order, and is sent once
//!   the room is joined; a request sent on a socket that dropped before its answer is
//!   sent again, with the same id, on the next socket. The room answers a repeated
//!   `send-message` id with the first message, so nothing is duplicated. The queue holds
//!   at most `max_queue` requests (`queue_full` beyond).
//! - **Reconnect** with exponential backoff and full jitter (`crate::backoff`), forever,
//!   unless the room refused the token or the room (close 4001, 4003, 4009; 4002 unless
//!   the token can be refreshed) or the caller closed.
//! - **Resume**: events are numbered; the machine keeps the highest `seq` it delivered,
//!   resumes after it, and drops any event it already delivered.
//! - **Keepalive**: a `ping` every `ping_interval_ms`; no `pong` within
//!   `pong_timeout_ms` means the socket is dead: it is closed and replaced.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::backoff::Backoff;

/// The id of the machine's own `join-room` requests.
const JOIN_ID: &str = "join";

/// How the connection behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Reconnect delays (`max_attempts` is ignored: reconnecting goes on until closed).
    pub backoff: Backoff,
    /// How long a sent request waits for its answer.
    pub request_timeout_ms: u64,
    /// How often an open socket sends `ping`.
    pub ping_interval_ms: u64,
    /// How long it waits for the `pong`.
    pub pong_timeout_ms: u64,
    /// Most requests waiting for a connection.
    pub max_queue: usize,
    /// Whether the token can be refreshed (a function, not a string): then an expired
    /// token (4002) is worth a reconnect.
    pub refreshable_token: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            backoff: Backoff {
                base_ms: 500,
                cap_ms: 30_000,
                max_attempts: u32::MAX,
            },
            request_timeout_ms: 10_000,
            ping_interval_ms: 30_000,
            pong_timeout_ms: 10_000,
            max_queue: 100,
            refreshable_token: false,
        }
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first socket is being opened and joined.
    Connecting,
    /// Joined: requests go out at once.
    Open,
    /// The socket dropped; another is coming after a delay.
    Reconnecting,
    /// Closed by the caller, or refused for good.
    Closed,
}

impl ConnectionState {
    /// The name JS sees.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Open => "open",
            Self::Reconnecting => "reconnecting",
            Self::Closed => "closed",
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Open socket number `socket` (get a token, connect, authenticate).
    OpenSocket {
        /// Its number; later inputs name it, so events of a replaced socket are ignored.
        socket: u64,
    },
    /// Send a text frame on `socket`.
    Send {
        /// The socket.
        socket: u64,
        /// The frame.
        text: String,
    },
    /// Close `socket` (it is replaced or the client is closing).
    CloseSocket {
        /// The socket.
        socket: u64,
    },
    /// Hand a room event to the application (the whole frame, as JSON text).
    Deliver {
        /// The event name.
        event: String,
        /// The frame.
        frame: String,
    },
    /// A request succeeded with this `ack` data (JSON text).
    Resolve {
        /// The request id.
        id: String,
        /// The ack's `data`.
        data: String,
    },
    /// A request failed.
    Reject {
        /// The request id.
        id: String,
        /// The error code (the room's, or `timeout`, `queue_full`, `closed`).
        code: String,
        /// Human text.
        message: String,
    },
    /// The connection state changed.
    State(ConnectionState),
}

/// A request the machine has not answered yet.
#[derive(Debug, Clone)]
struct Pending {
    event: String,
    data: String,
    /// When its answer is due, while it is on the wire; `None` while it waits to be sent.
    deadline: Option<u64>,
}

/// One client's connection.
#[derive(Debug)]
pub struct RoomClient {
    config: ClientConfig,
    state: ConnectionState,
    /// The current socket's number, and whether it is open (transport-level).
    socket: u64,
    socket_open: bool,
    /// Whether the current socket has joined.
    joined: bool,
    attempt: u32,
    reconnect_at: Option<u64>,
    ping_at: Option<u64>,
    pong_due: Option<u64>,
    last_seq: Option<u64>,
    /// Requests by id, and the order they were made in.
    pending: BTreeMap<String, Pending>,
    order: VecDeque<String>,
    next_id: u64,
    id_prefix: String,
    out: Vec<ClientAction>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    event: String,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    head: Option<u64>,
}

impl RoomClient {
    /// A client that starts connecting at once. `id_prefix` (random, from the shell)
    /// makes request ids unique across this user's devices and page loads.
    pub fn new(config: ClientConfig, id_prefix: &str) -> Self {
        let mut client = Self {
            config,
            state: ConnectionState::Connecting,
            socket: 0,
            socket_open: false,
            joined: false,
            attempt: 0,
            reconnect_at: None,
            ping_at: None,
            pong_due: None,
            last_seq: None,
            pending: BTreeMap::new(),
            order: VecDeque::new(),
            next_id: 1,
            id_prefix: id_prefix.to_owned(),
            out: Vec::new(),
        };
        client.open_socket();
        client
    }

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The highest event seq delivered.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Takes the actions to carry out, in order.
    #[must_use]
    pub fn poll(&mut self) -> Vec<ClientAction> {
        std::mem::take(&mut self.out)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    pub fn next_timeout(&self) -> Option<u64> {
        let deadlines = self.pending.values().filter_map(|p| p.deadline);
        [self.reconnect_at, self.ping_at, self.pong_due]
            .into_iter()
            .flatten()
            .chain(deadlines)
            .min()
    }

    /// Makes a request: its id. It goes out now if the room is joined, else when it is.
    pub fn request(&mut self, now: u64, event: &str, data_json: &str) -> String {
        let id = format!("{}{}", self.id_prefix, self.next_id);
        self.next_id += 1;
        if self.state == ConnectionState::Closed {
            self.reject(&id, "closed", "the room client is closed");
            return id;
        }
        let waiting = self
            .pending
            .values()
            .filter(|p| p.deadline.is_none())
            .count();
        if !self.joined && waiting >= self.config.max_queue {
            self.reject(
                &id,
                "queue_full",
                "too many requests are waiting for the connection",
            );
            return id;
        }
        self.pending.insert(
            id.clone(),
            Pending {
                event: event.to_owned(),
                data: data_json.to_owned(),
                deadline: None,
            },
        );
        self.order.push_back(id.clone());
        if self.joined {
            self.send_request(now, &id);
        }
        id
    }

    /// Sends a frame without an id (no answer expected); dropped unless joined.
    pub fn send(&mut self, event: &str, data_json: &str) -> bool {
        if !self.joined {
            return false;
        }
        let text = format!(r#"{{"event":{},"data":{data_json}}}"#, json_string(event));
        self.out.push(ClientAction::Send {
            socket: self.socket,
            text,
        });
        true
    }

    /// Socket `socket` opened (the shell authenticated it with the token subprotocol).
    pub fn handle_open(&mut self, now: u64, socket: u64) {
        if socket != self.socket || self.state == ConnectionState::Closed {
            return;
        }
        self.socket_open = true;
        let data = match self.last_seq {
            Some(seq) => format!(r#"{{"lastSeq":{seq}}}"#),
            None => "{}".to_owned(),
        };
        self.out.push(ClientAction::Send {
            socket,
            text: format!(r#"{{"event":"join-room","data":{data},"id":"{JOIN_ID}"}}"#),
        });
        self.ping_at = Some(now + self.config.ping_interval_ms);
    }

    /// A text frame arrived on `socket`.
    pub fn handle_text(&mut self, now: u64, socket: u64, text: &str) {
        if socket != self.socket || self.state == ConnectionState::Closed {
            return;
        }
        if text == "pong" {
            self.pong_due = None;
            return;
        }
        let Ok(frame) = serde_json::from_str::<Envelope<'_>>(text) else {
            return; // not ours to judge: the room only sends JSON
        };
        let answer = frame
            .data
            .and_then(|d| serde_json::from_str::<Answer>(d.get()).ok());
        match frame.event.as_str() {
            "ack" | "error" => {
                let Some(answer) = answer else { return };
                let Some(id) = answer.id.clone() else {
                    // An error without an id answers nothing in particular.
                    self.deliver(&frame.event, text);
                    return;
                };
                if id == JOIN_ID {
                    self.joined_or_refused(now, &frame.event, &answer);
                } else if self.pending.remove(&id).is_some() {
                    self.order.retain(|o| *o != id);
                    if frame.event == "ack" {
                        let data = frame.data.map_or("{}", |d| d.get()).to_owned();
                        self.out.push(ClientAction::Resolve { id, data });
                    } else {
                        let code = answer.code.unwrap_or_else(|| "error".into());
                        let message = answer.message.unwrap_or_default();
                        self.reject(&id, &code, &message);
                    }
                }
            }
            "resync-required" => {
                self.last_seq = answer.and_then(|a| a.head).or(self.last_seq);
                self.deliver(&frame.event, text);
            }
            _ => {
                if let Some(seq) = frame.seq {
                    if self.last_seq.is_some_and(|last| seq <= last) {
                        return; // delivered already
                    }
                    self.last_seq = Some(seq);
                }
                self.deliver(&frame.event, text);
            }
        }
    }

    /// Socket `socket` closed with `code` (1006 when it just dropped). `random` is a
    /// uniformly random `u32` for the reconnect jitter.
    pub fn handle_close(&mut self, now: u64, socket: u64, code: u16, random: u32) {
        if socket != self.socket || self.state == ConnectionState::Closed {
            return;
        }
        self.socket_open = false;
        self.joined = false;
        self.ping_at = None;
        self.pong_due = None;
        // What was on the wire goes out again on the next socket, same ids.
        for p in self.pending.values_mut() {
            p.deadline = None;
        }
        let final_code = match code {
            4001 | 4003 | 4009 => true,
            4002 => !self.config.refreshable_token,
            _ => false,
        };
        if final_code {
            return self.shut(&format!("the room refused the connection (close {code})"));
        }
        let delay = self.config.backoff.delay_ms(self.attempt.min(30), random);
        self.attempt = self.attempt.saturating_add(1);
        self.reconnect_at = Some(now + delay);
        self.set_state(ConnectionState::Reconnecting);
    }

    /// Time passed: reconnects, keepalive, request timeouts.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.state == ConnectionState::Closed {
            return;
        }
        if self.reconnect_at.is_some_and(|at| now >= at) {
            self.reconnect_at = None;
            self.open_socket();
        }
        if self.pong_due.is_some_and(|at| now >= at) {
            // No pong: the socket is dead though nobody told us. Replace it.
            self.pong_due = None;
            let dead = self.socket;
            self.out.push(ClientAction::CloseSocket { socket: dead });
            self.handle_close(now, dead, 1006, 0);
        } else if self.socket_open && self.ping_at.is_some_and(|at| now >= at) {
            self.out.push(ClientAction::Send {
                socket: self.socket,
                text: "ping".into(),
            });
            self.ping_at = Some(now + self.config.ping_interval_ms);
            self.pong_due = Some(now + self.config.pong_timeout_ms);
        }
        let late: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| now >= d))
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            self.pending.remove(&id);
            self.order.retain(|o| *o != id);
            self.reject(&id, "timeout", "no answer from the room in time");
        }
    }

    /// Closes for good: every waiting request is rejected with `closed`.
    pub fn close(&mut self) {
        if self.state != ConnectionState::Closed {
            self.out.push(ClientAction::CloseSocket {
                socket: self.socket,
            });
            self.shut("the room client was closed");
        }
    }

    fn joined_or_refused(&mut self, now: u64, event: &str, answer: &Answer) {
        if event == "ack" {
            self.joined = true;
            self.attempt = 0;
            if let Some(head) = answer.head {
                self.last_seq = Some(self.last_seq.map_or(head, |l| l.max(head)));
            }
            self.set_state(ConnectionState::Open);
            let ids: Vec<String> = self.order.iter().cloned().collect();
            for id in ids {
                if self.pending.get(&id).is_some_and(|p| p.deadline.is_none()) {
                    self.send_request(now, &id);
                }
            }
        } else {
            let code = answer.code.clone().unwrap_or_default();
            // The room refused to let this socket join (locked, ...): that is final.
            self.out.push(ClientAction::CloseSocket {
                socket: self.socket,
            });
            self.shut(&format!("the room refused to join ({code})"));
        }
    }

    fn send_request(&mut self, now: u64, id: &str) {
        let Some(p) = self.pending.get_mut(id) else {
            return;
        };
        p.deadline = Some(now + self.config.request_timeout_ms);
        let text = format!(
            r#"{{"event":{},"data":{},"id":{}}}"#,
            json_string(&p.event),
            p.data,
            json_string(id)
        );
        self.out.push(ClientAction::Send {
            socket: self.socket,
            text,
        });
    }

    fn open_socket(&mut self) {
        self.socket += 1;
        self.socket_open = false;
        self.joined = false;
        self.out.push(ClientAction::OpenSocket {
            socket: self.socket,
        });
    }

    fn shut(&mut self, why: &str) {
        self.reconnect_at = None;
        self.ping_at = None;
        self.pong_due = None;
        let ids: Vec<String> = self.order.drain(..).collect();
        for id in ids {
            if self.pending.remove(&id).is_some() {
                self.reject(&id, "closed", why);
            }
        }
        self.set_state(ConnectionState::Closed);
    }

    fn deliver(&mut self, event: &str, frame: &str) {
        self.out.push(ClientAction::Deliver {
            event: event.to_owned(),
            frame: frame.to_owned(),
        });
    }

    fn reject(&mut self, id: &str, code: &str, message: &str) {
        self.out.push(ClientAction::Reject {
            id: id.to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.out.push(ClientAction::State(state));
        }
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! The client against a simulated room: the harness owns the clock, delivers what
    //! the client sends to a tiny fake room, and drops sockets on command.
    use super::*;

    /// A fake room: numbers messages, answers acks, dedups `send-message` by id, and
    /// remembers every frame the client sent.
    #[derive(Default)]
    struct FakeRoom {
        head: u64,
        by_id: BTreeMap<String, u64>,
        log: Vec<(u64, String)>,
        received: Vec<String>,
    }

    impl FakeRoom {
        /// The room's answer frames to one client frame.
        fn answer(&mut self, text: &str) -> Vec<String> {
            self.received.push(text.to_owned());
            if text == "ping" {
                return vec!["pong".into()];
            }
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            match v["event"].as_str().unwrap() {
                "join-room" => {
                    let mut out = Vec::new();
                    if let Some(last) = v["data"]["lastSeq"].as_u64() {
                        for (seq, frame) in &self.log {
                            if *seq > last {
                                out.push(frame.clone());
                            }
                        }
                    }
                    out.push(format!(
                        r#"{{"event":"ack","data":{{"id":"{id}","head":{}}}}}"#,
                        self.head
                    ));
                    out
                }
                "send-message" => {
                    if let Some(seq) = self.by_id.get(&id) {
                        return vec![format!(
                            r#"{{"event":"ack","data":{{"id":"{id}","seq":{seq},"duplicate":true}}}}"#
                        )];
                    }
                    self.head += 1;
                    self.by_id.insert(id.clone(), self.head);
                    let frame = format!(
                        r#"{{"event":"new-message","seq":{},"data":{{"text":{}}}}}"#,
                        self.head, v["data"]["text"]
                    );
                    self.log.push((self.head, frame.clone()));
                    vec![
                        frame,
                        format!(
                            r#"{{"event":"ack","data":{{"id":"{id}","seq":{}}}}}"#,
                            self.head
                        ),
                    ]
                }
                _ => vec![format!(
                    r#"{{"event":"error","data":{{"id":"{id}","code":"unknown_event","message":"no"}}}}"#
                )],
            }
        }

        /// A message from someone else.
        fn other(&mut self, text: &str) -> String {
            self.head += 1;
            let frame = format!(
                r#"{{"event":"new-message","seq":{},"data":{{"text":"{text}"}}}}"#,
                self.head
            );
            self.log.push((self.head, frame.clone()));
            frame
        }
    }

    struct Sim {
        client: RoomClient,
        room: FakeRoom,
        now: u64,
        /// The socket the shell has open, and whether the network delivers on it.
        open: Option<u64>,
        delivered: Vec<String>,
        resolved: Vec<(String, String)>,
        rejected: Vec<(String, String)>,
        states: Vec<ConnectionState>,
        opened: u64,
        /// Drop the socket right after the room processes the next client frame,
        /// before its answers arrive.
        drop_before_answer: bool,
    }

    impl Sim {
        fn new() -> Self {
            let mut sim = Self {
                client: RoomClient::new(ClientConfig::default(), "c-"),
                room: FakeRoom::default(),
                now: 1_000,
                open: None,
                delivered: Vec::new(),
                resolved: Vec::new(),
                rejected: Vec::new(),
                states: Vec::new(),
                opened: 0,
                drop_before_answer: false,
            };
            sim.pump();
            sim
        }

        /// Carries out the client's actions until it has none.
        fn pump(&mut self) {
            loop {
                let actions = self.client.poll();
                if actions.is_empty() {
                    return;
                }
                for action in actions {
                    match action {
                        ClientAction::OpenSocket { socket } => {
                            self.opened += 1;
                            self.open = Some(socket);
                            self.client.handle_open(self.now, socket);
                        }
                        ClientAction::Send { socket, text } => {
                            if self.open != Some(socket) {
                                continue;
                            }
                            let answers = self.room.answer(&text);
                            if self.drop_before_answer {
                                self.drop_before_answer = false;
                                self.drop_socket();
                                continue;
                            }
                            for a in answers {
                                self.client.handle_text(self.now, socket, &a);
                            }
                        }
                        ClientAction::CloseSocket { socket } => {
                            if self.open == Some(socket) {
                                self.open = None;
                            }
                        }
                        ClientAction::Deliver { frame, .. } => self.delivered.push(frame),
                        ClientAction::Resolve { id, data } => self.resolved.push((id, data)),
                        ClientAction::Reject { id, code, .. } => self.rejected.push((id, code)),
                        ClientAction::State(s) => self.states.push(s),
                    }
                }
            }
        }

        fn drop_socket(&mut self) {
            if let Some(socket) = self.open.take() {
                self.client
                    .handle_close(self.now, socket, 1006, u32::MAX / 2);
            }
        }

        fn advance(&mut self, ms: u64) {
            let end = self.now + ms;
            while let Some(at) = self.client.next_timeout() {
                if at > end {
                    break;
                }
                self.now = self.now.max(at);
                self.client.handle_timeout(self.now);
                self.pump();
            }
            self.now = end;
        }

        fn send(&mut self, text: &str) -> String {
            let id =
                self.client
                    .request(self.now, "send-message", &format!(r#"{{"text":"{text}"}}"#));
            self.pump();
            id
        }

        fn delivered_seqs(&self) -> Vec<u64> {
            self.delivered
                .iter()
                .filter_map(|f| serde_json::from_str::<serde_json::Value>(f).ok()?["seq"].as_u64())
                .collect()
        }
    }

    #[test]
    fn connects_joins_and_resolves_requests() {
        let mut sim = Sim::new();
        assert_eq!(sim.client.state(), ConnectionState::Open);
        let id = sim.send("hi");
        assert_eq!(sim.resolved.len(), 1);
        assert_eq!(sim.resolved[0].0, id);
        assert_eq!(sim.delivered_seqs(), [1]);
        let bad = sim.client.request(sim.now, "dance", "{}");
        sim.pump();
        assert_eq!(sim.rejected, [(bad, "unknown_event".to_owned())]);
    }

    #[test]
    fn the_offline_queue_is_sent_once_in_order_after_reconnect() {
        let mut sim = Sim::new();
        sim.drop_socket();
        assert_eq!(sim.client.state(), ConnectionState::Reconnecting);
        let ids: Vec<String> = (0..5).map(|i| sim.send(&format!("offline {i}"))).collect();
        assert!(sim.resolved.is_empty());
        sim.advance(60_000);
        assert_eq!(sim.client.state(), ConnectionState::Open);
        let resolved: Vec<&String> = sim.resolved.iter().map(|(id, _)| id).collect();
        assert_eq!(
            resolved,
            ids.iter().collect::<Vec<_>>(),
            "in order, each once"
        );
        let sent: Vec<&String> = sim
            .room
            .received
            .iter()
            .filter(|t| t.contains("send-message"))
            .collect();
        assert_eq!(sent.len(), 5, "each sent exactly once");
        assert_eq!(sim.room.head, 5);
    }

    #[test]
    fn a_request_whose_answer_was_lost_is_resent_with_its_id_and_not_duplicated() {
        let mut sim = Sim::new();
        sim.drop_before_answer = true;
        let id = sim.send("lost ack");
        assert_eq!(sim.room.head, 1, "the room stored it");
        assert!(sim.resolved.is_empty());
        sim.advance(60_000);
        assert_eq!(sim.resolved.len(), 1);
        assert_eq!(sim.resolved[0].0, id);
        assert!(sim.resolved[0].1.contains("\"duplicate\":true"));
        assert_eq!(sim.room.head, 1, "not stored twice");
    }

    #[test]
    fn a_reconnect_resumes_after_the_last_seq_and_never_delivers_twice() {
        let mut sim = Sim::new();
        sim.send("1");
        sim.send("2");
        sim.drop_socket();
        let missed = [sim.room.other("a"), sim.room.other("b")];
        let _ = missed;
        sim.advance(60_000);
        assert_eq!(sim.delivered_seqs(), [1, 2, 3, 4]);
        let join = sim
            .room
            .received
            .iter()
            .rev()
            .find(|t| t.contains("join-room"))
            .unwrap();
        assert!(join.contains(r#""lastSeq":2"#), "{join}");
        // A frame seen twice (a replay overlapping a live event) is delivered once.
        let again = sim.room.log[3].1.clone();
        let socket = sim.open.unwrap();
        sim.client.handle_text(sim.now, socket, &again);
        sim.pump();
        assert_eq!(sim.delivered_seqs(), [1, 2, 3, 4]);
    }

    #[test]
    fn backoff_grows_with_jitter_and_resets_after_a_join() {
        let mut c = RoomClient::new(ClientConfig::default(), "x");
        let _ = c.poll();
        let mut delays = Vec::new();
        let mut now = 0;
        for _ in 0..8 {
            let socket = c.socket;
            c.handle_close(now, socket, 1006, u32::MAX);
            let at = c.reconnect_at.unwrap();
            delays.push(at - now);
            now = at;
            c.handle_timeout(now);
            let _ = c.poll();
        }
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]
        );
        // The jitter: a small random number gives a short wait.
        let socket = c.socket;
        c.handle_close(now, socket, 1006, 0);
        assert_eq!(c.reconnect_at, Some(now));
        c.handle_timeout(now);
        let _ = c.poll();
        let socket = c.socket;
        c.handle_open(now, socket);
        c.handle_text(
            now,
            socket,
            r#"{"event":"ack","data":{"id":"join","head":0}}"#,
        );
        assert_eq!(c.attempt, 0);
    }

    #[test]
    fn refusals_are_final_and_reject_what_waits() {
        for (code, reconnects) in [
            (4001, false),
            (4003, false),
            (4009, false),
            (4002, false),
            (4008, true),
            (1006, true),
            (4010, true),
        ] {
            let mut sim = Sim::new();
            sim.drop_socket();
            let id = sim.send("waiting");
            let socket = sim.client.socket + 1;
            sim.advance(60_000);
            // Reopened (socket + 1), then the room closes it with `code`.
            assert_eq!(sim.client.socket, socket);
            sim.client.handle_close(sim.now, socket, code, 0);
            sim.pump();
            let closed = sim.client.state() == ConnectionState::Closed;
            assert_eq!(!closed, reconnects, "close {code}");
            if closed {
                assert!(
                    sim.rejected.iter().any(|(i, c)| *i == id && c == "closed")
                        || sim.resolved.iter().any(|(i, _)| *i == id)
                );
            }
        }
        let mut c = RoomClient::new(
            ClientConfig {
                refreshable_token: true,
                ..ClientConfig::default()
            },
            "x",
        );
        let _ = c.poll();
        c.handle_close(0, 1, 4002, 0);
        assert_eq!(
            c.state(),
            ConnectionState::Reconnecting,
            "a refreshable token is fetched again"
        );
    }

    #[test]
    fn a_silent_dead_socket_is_detected_by_the_missing_pong() {
        let mut sim = Sim::new();
        // The network swallows everything from now on, without a close.
        let dead = sim.open.take().unwrap();
        sim.advance(30_000); // ping goes out, nothing comes back
        assert_eq!(sim.client.state(), ConnectionState::Open);
        sim.advance(10_000); // pong overdue
        assert_ne!(sim.client.socket, dead, "replaced by a new socket");
        assert_eq!(sim.client.state(), ConnectionState::Open);
    }

    #[test]
    fn unanswered_requests_time_out_and_the_queue_is_bounded() {
        let mut sim = Sim::new();
        // A request on a socket that swallows it.
        sim.open = None;
        let id = sim.client.request(sim.now, "history", "{}");
        sim.pump();
        sim.advance(10_000);
        assert!(sim.rejected.contains(&(id, "timeout".to_owned())));
        let mut c = RoomClient::new(
            ClientConfig {
                max_queue: 2,
                ..ClientConfig::default()
            },
            "q",
        );
        let _ = c.poll();
        c.request(0, "send-message", "{}");
        c.request(0, "send-message", "{}");
        let third = c.request(0, "send-message", "{}");
        let rejected: Vec<ClientAction> = c.poll();
        assert!(rejected.contains(&ClientAction::Reject {
            id: third,
            code: "queue_full".into(),
            message: "too many requests are waiting for the connection".into()
        }));
        c.close();
        let closed = c
            .poll()
            .iter()
            .filter(|a| matches!(a, ClientAction::Reject { code, .. } if code == "closed"))
            .count();
        assert_eq!(closed, 2);
    }
}
