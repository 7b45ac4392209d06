//! Batched presence through the harness, with windows held open so that joins, leaves,
//! reconnects and messages race inside one window; then random interleavings of all of
//! them, each socket's view checked against the room's.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::super::limits::RoomLimits;
use super::*;
use crate::jwt::Role;

/// A room with one watcher (carol) joined and presence windows held open.
fn held() -> (Harness, ConnId) {
    let mut h = Harness::new();
    let watcher = h.user("carol", Role::Member, true);
    h.take(watcher);
    h.hold_presence = true;
    (h, watcher)
}

/// Authenticates a socket as `user` and sends `join-room`, keeping what it was sent.
fn join(h: &mut Harness, user: &str) -> ConnId {
    let c = h.user(user, Role::Member, false);
    h.send(c, json!({"event": "join-room", "id": "j"}));
    c
}

fn names(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .map(|f| f["event"].as_str().unwrap())
        .collect()
}

#[test]
fn joins_in_one_window_reach_each_member_as_one_frame_and_each_newcomer_as_one_snapshot() {
    let (mut h, watcher) = held();
    let newcomers: Vec<ConnId> = ["u1", "u2", "u3", "u4", "u5"]
        .into_iter()
        .map(|u| join(&mut h, u))
        .collect();
    assert!(
        h.take(watcher).is_empty(),
        "nothing before the window closes"
    );
    for (i, c) in newcomers.iter().enumerate() {
        let got = h.take(*c);
        let presence: Vec<&Value> = got.iter().filter(|f| f["event"] == "presence").collect();
        assert_eq!(presence.len(), 1, "one snapshot");
        // Carol and everyone before it, and itself.
        assert_eq!(
            presence[0]["data"]["users"].as_array().unwrap().len(),
            i + 2
        );
        assert!(!names(&got).contains(&"presence-changed"));
    }
    assert_eq!(h.presence_due.len(), 1, "one window for all five");
    h.close_presence();
    let got = presence_change(&mut h, watcher);
    let joined: Vec<String> = listed(&got, "joined").into_iter().map(|j| j.0).collect();
    assert_eq!(joined, ["u1", "u2", "u3", "u4", "u5"]);
    assert_eq!(listed(&got, "online").len(), 5);
    // Each newcomer hears of those who came after it, once; the last hears nothing.
    for (i, c) in newcomers.iter().enumerate() {
        let got = h.take(*c);
        if i == 4 {
            assert!(got.is_empty(), "{got:?}");
            continue;
        }
        assert_eq!(names(&got), ["presence-changed"]);
        assert_eq!(
            listed(&got[0]["data"], "joined").len(),
            4 - i,
            "joins after newcomer {i}"
        );
    }
}

#[test]
fn a_join_and_a_leave_in_one_window_are_both_told_in_seq_order() {
    let (mut h, watcher) = held();
    let dave = join(&mut h, "dave");
    h.take(dave);
    h.send(dave, json!({"event": "leave-room", "id": "l"}));
    // dave's own socket hears its user-left directly (its join was in its snapshot).
    let got = h.take(dave);
    assert_eq!(names(&got), ["user-left", "ack"]);
    let left_seq = got[1]["data"]["seq"].as_u64().unwrap();
    assert_eq!(got[0]["seq"], left_seq);
    h.close_presence();
    let got = h.take(watcher);
    assert_eq!(names(&got), ["presence-changed"]);
    assert_eq!(got[0]["seq"], left_seq);
    let data = &got[0]["data"];
    assert_eq!(listed(data, "joined"), [("dave".into(), left_seq - 1)]);
    assert_eq!(listed(data, "left"), [("dave".into(), left_seq)]);
    // Online for a moment and gone again within the window: no device count.
    assert_eq!(listed(data, "online"), []);
    assert_eq!(listed(data, "offline"), []);
}

#[test]
fn a_device_that_reconnects_within_the_window_costs_nothing() {
    let mut h = Harness::new();
    let watcher = h.user("carol", Role::Member, true);
    let phone = h.user("alice", Role::Member, true);
    h.take(watcher);
    h.hold_presence = true;
    h.client_close(phone);
    let again = join(&mut h, "alice");
    h.take(again);
    h.close_presence();
    assert!(h.take(watcher).is_empty());
    assert_eq!(
        h.room().presence(),
        [("alice".into(), 1), ("carol".into(), 1)]
    );
}

#[test]
fn a_message_in_the_window_comes_after_the_join_of_its_sender() {
    let (mut h, watcher) = held();
    let dave = join(&mut h, "dave");
    h.take(dave);
    h.request(dave, "send-message", json!({"text": sealed("hi", "dave")}));
    let got = h.take(watcher);
    assert_eq!(names(&got), ["presence-changed", "new-message"]);
    let joined = listed(&got[0]["data"], "joined");
    assert_eq!(
        joined,
        [("dave".into(), got[1]["seq"].as_u64().unwrap() - 1)]
    );
    // The message closed the window: its timer finds nothing left to tell.
    h.close_presence();
    assert!(h.take(watcher).is_empty());
    // The next change opens a window of its own.
    h.client_close(dave);
    assert_eq!(h.presence_due.len(), 1);
    h.close_presence();
    let got = presence_change(&mut h, watcher);
    assert_eq!(listed(&got, "offline"), [("dave".into(), 0)]);
}

#[test]
fn a_leaving_device_hears_what_the_window_held_for_it_before_its_own_leave() {
    let mut h = Harness::new();
    let watcher = h.user("carol", Role::Member, true);
    let one = h.user("alice", Role::Member, true);
    let two = h.user("alice", Role::Member, true);
    for c in [watcher, one, two] {
        h.take(c);
    }
    h.hold_presence = true;
    let dave = join(&mut h, "dave");
    h.take(dave);
    let ack = h.request(one, "leave-room", json!({}));
    let got = h.take(two);
    assert_eq!(names(&got), ["presence-changed", "user-left"]);
    assert_eq!(listed(&got[0]["data"], "joined")[0].0, "dave");
    assert!(got[0]["seq"].as_u64() < got[1]["seq"].as_u64());
    assert_eq!(got[1]["seq"], ack["data"]["seq"]);
    h.close_presence();
    // Alice's devices are out of the room: only carol and dave hear the window.
    assert!(h.take(two).is_empty());
    let got = presence_change(&mut h, watcher);
    assert_eq!(
        listed(&got, "left"),
        [("alice".into(), ack["data"]["seq"].as_u64().unwrap())]
    );
    assert_eq!(listed(&got, "offline"), [("alice".into(), 0)]);
    let got = presence_change(&mut h, dave);
    assert_eq!(listed(&got, "left").len(), 1);
    assert_eq!(
        listed(&got, "joined"),
        [],
        "dave's own join was in its snapshot"
    );
}

#[test]
fn a_late_timer_of_an_earlier_window_closes_nothing() {
    let (mut h, watcher) = held();
    join(&mut h, "dave");
    let first = h.presence_due.clone();
    h.close_presence();
    h.take(watcher);
    join(&mut h, "erin");
    let actions = h.room().flush_presence(first[0]);
    assert!(actions.is_empty(), "{actions:?}");
    h.close_presence();
    let got = presence_change(&mut h, watcher);
    assert_eq!(listed(&got, "joined")[0].0, "erin");
}

/// What one socket makes of the frames it was sent, as a client would.
#[derive(Default)]
struct View {
    /// The room's head when it joined (from the join's ack), its own join included.
    head: u64,
    online: BTreeMap<String, u64>,
    /// Every seq it heard of, directly or listed in a `presence-changed`.
    heard: BTreeSet<u64>,
    /// The highest top-level seq so far.
    last: u64,
}

impl View {
    /// Applies one frame; `stored` is every seq in storage. Checks that top-level seqs
    /// only grow and that every stored event up to one is heard of by the time it is.
    fn apply(&mut self, f: &Value, stored: &BTreeSet<u64>) {
        match f["event"].as_str().unwrap() {
            "presence" => {
                self.online = f["data"]["users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| {
                        (
                            u["userId"].as_str().unwrap().to_owned(),
                            u["devices"].as_u64().unwrap(),
                        )
                    })
                    .collect();
            }
            "presence-changed" => {
                for list in ["joined", "left"] {
                    self.heard
                        .extend(listed(&f["data"], list).into_iter().map(|e| e.1));
                }
                for (user, devices) in listed(&f["data"], "online") {
                    self.online.insert(user, devices);
                }
                for (user, _) in listed(&f["data"], "offline") {
                    self.online.remove(&user);
                }
            }
            _ => {}
        }
        if let Some(seq) = f["seq"].as_u64() {
            assert!(seq > self.last, "seq {seq} after {}: {f}", self.last);
            self.last = seq;
            self.heard.insert(seq);
            let missed: Vec<&u64> = stored
                .range(self.head + 1..seq.max(self.head) + 1)
                .filter(|s| !self.heard.contains(s))
                .collect();
            assert!(missed.is_empty(), "{f} before hearing of {missed:?}");
        }
    }
}

/// A small deterministic generator (the tests own their randomness).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[test]
fn random_interleavings_leave_every_socket_with_the_room_s_presence_and_every_event() {
    let limits = RoomLimits {
        messages_per_window: 10_000,
        frame_burst: 10_000,
        ..RoomLimits::default()
    };
    for seed in 0..200u64 {
        let mut rng = Lcg(seed);
        let mut h = Harness::with_limits(limits.clone());
        h.hold_presence = true;
        let mut logs: BTreeMap<ConnId, Vec<Value>> = BTreeMap::new();
        // Sockets joined now, by user.
        let mut joined: Vec<(ConnId, String)> = Vec::new();
        let users = ["ann", "ben", "cat", "dan"];
        for _ in 0..40 {
            match rng.below(6) {
                0 | 1 => {
                    let user = users[rng.below(users.len())];
                    let c = join(&mut h, user);
                    joined.push((c, user.to_owned()));
                }
                2 if !joined.is_empty() => {
                    let (c, _) = joined.remove(rng.below(joined.len()));
                    h.client_close(c);
                    logs.remove(&c);
                    h.inbox.remove(&c);
                }
                3 if !joined.is_empty() => {
                    let (c, user) = joined[rng.below(joined.len())].clone();
                    h.send(c, json!({"event": "leave-room", "id": "l"}));
                    // Its devices are out of the room; their views end here.
                    for (gone, _) in joined.iter().filter(|(_, u)| *u == user) {
                        logs.remove(gone);
                        h.inbox.remove(gone);
                    }
                    joined.retain(|(_, u)| *u != user);
                }
                4 if !joined.is_empty() => {
                    let (c, user) = joined[rng.below(joined.len())].clone();
                    let text = sealed("m", &user);
                    h.send(c, json!({"event": "send-message", "data": {"text": text}}));
                }
                _ => h.close_presence(),
            }
            for (c, _) in &joined {
                let got = h.take(*c);
                logs.entry(*c).or_default().extend(got);
            }
        }
        h.close_presence();
        for (c, _) in &joined {
            let got = h.take(*c);
            logs.entry(*c).or_default().extend(got);
        }
        let stored: BTreeSet<u64> = h.store.events.keys().copied().collect();
        let truth: BTreeMap<String, u64> = h
            .room()
            .presence()
            .into_iter()
            .map(|(u, n)| (u, n as u64))
            .collect();
        for (c, user) in &joined {
            let log = &logs[c];
            let ack = log
                .iter()
                .find(|f| f["event"] == "ack" && f["data"]["id"] == "j");
            let mut view = View {
                head: ack.unwrap()["data"]["head"].as_u64().unwrap(),
                ..View::default()
            };
            for f in log {
                view.apply(f, &stored);
            }
            assert_eq!(view.online, truth, "seed {seed}: {user}'s socket {c:?}");
            let expected: BTreeSet<u64> = stored.range(view.head + 1..).copied().collect();
            assert!(
                expected.is_subset(&view.heard),
                "seed {seed}: socket {c:?} missed {:?}",
                expected.difference(&view.heard).collect::<Vec<_>>()
            );
        }
    }
}
