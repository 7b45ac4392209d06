//! Batched presence: the membership and device-count changes of one presence window,
//! told to each joined socket in one `presence-changed` frame (docs/PROTOCOL.md,
//! Presence).
//!
//! Why: telling every member of a room of n about each join, one event at a time, makes
//! n joins cost n² frames (BENCHMARKS.md, Rooms). The room instead collects the
//! changes of a window in a [`PresenceBatch`] and, when the window closes, folds them:
//! per user only the device count at the window's start and at its end matter (a device
//! that reconnects within the window changes nothing), while joins and leaves, which are
//! stored events with seqs, are all listed in seq order.
//!
//! A socket that joins during the window was sent a `presence` snapshot that already
//! holds the changes so far, so it is told only of the changes after its join: the
//! batch remembers where each such socket came in.

use std::collections::{BTreeMap, HashMap};

use super::frame::{
    MemberChange, MemberData, PresenceChangedData, PresenceUser, frame_raw, to_json,
};
use super::ids::ConnId;

/// The event name of a batch's frame.
pub const PRESENCE_CHANGED: &str = "presence-changed";

/// One change a batch holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A stored `user-joined` (`left: false`) or `user-left` (`left: true`) event.
    Member {
        /// Whether the membership ended.
        left: bool,
        /// The change as the frame lists it.
        change: MemberChange,
    },
    /// A user's device count changed from `before` to `now.devices`.
    Devices {
        /// The count before the change.
        before: usize,
        /// The user and their count after it.
        now: PresenceUser,
    },
}

/// The changes of one open presence window.
#[derive(Debug, Clone)]
pub struct PresenceBatch {
    id: u64,
    changes: Vec<Change>,
    /// Sockets that joined while the window was open: how many changes their snapshot
    /// already held.
    starts: HashMap<ConnId, usize>,
}

impl PresenceBatch {
    /// An empty batch, named `id` (the shell hands the id back when the window closes,
    /// so a late timer of an earlier batch closes nothing).
    pub fn new(id: u64) -> Self {
        Self {
            id,
            changes: Vec::new(),
            starts: HashMap::new(),
        }
    }

    /// The batch's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Adds a change.
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Socket `conn` was just sent a snapshot of the room's presence: it is told only
    /// of the changes after this point.
    pub fn snapshot_sent(&mut self, conn: ConnId) {
        self.starts.insert(conn, self.changes.len());
    }

    /// The `presence-changed` frame for socket `conn`, or `None` when nothing changed
    /// for it.
    pub fn frame_for(&self, room_id: &str, conn: ConnId) -> Option<String> {
        fold(room_id, &self.changes[self.start(conn)..])
    }

    /// The frames of the whole batch for `recipients`: one frame per distinct point at
    /// which recipients came in (one for everyone who was there before the window),
    /// with whom to send it.
    pub fn frames(&self, room_id: &str, recipients: Vec<ConnId>) -> Vec<(Vec<ConnId>, String)> {
        let mut by_start: BTreeMap<usize, Vec<ConnId>> = BTreeMap::new();
        for conn in recipients {
            by_start.entry(self.start(conn)).or_default().push(conn);
        }
        by_start
            .into_iter()
            .filter_map(|(start, to)| Some((to, fold(room_id, &self.changes[start..])?)))
            .collect()
    }

    fn start(&self, conn: ConnId) -> usize {
        self.starts.get(&conn).copied().unwrap_or(0)
    }
}

/// Folds `changes` into one `presence-changed` frame, `None` if they cancel out. Its
/// top-level `seq` is the highest seq it lists, so a client's last seq moves past the
/// stored events it heard of (and a resume does not replay them).
fn fold(room_id: &str, changes: &[Change]) -> Option<String> {
    let mut data = PresenceChangedData {
        room_id: room_id.to_owned(),
        joined: Vec::new(),
        left: Vec::new(),
        online: Vec::new(),
        offline: Vec::new(),
    };
    // Per user: the count before the first change, and the user after the last one.
    let mut devices: BTreeMap<&str, (usize, &PresenceUser)> = BTreeMap::new();
    for change in changes {
        match change {
            Change::Member {
                left: false,
                change,
            } => data.joined.push(change.clone()),
            Change::Member { left: true, change } => data.left.push(change.clone()),
            Change::Devices { before, now } => {
                devices
                    .entry(now.user_id.as_str())
                    .and_modify(|(_, last)| *last = now)
                    .or_insert((*before, now));
            }
        }
    }
    for (before, now) in devices.into_values() {
        match now.devices {
            n if n == before => {}
            0 => data.offline.push(now.clone()),
            _ => data.online.push(now.clone()),
        }
    }
    let seq = data.joined.iter().chain(&data.left).map(|c| c.seq).max();
    let empty = seq.is_none() && data.online.is_empty() && data.offline.is_empty();
    (!empty).then(|| frame_raw(PRESENCE_CHANGED, seq, &to_json(&data)))
}

/// A [`Change::Member`] for a stored `user-joined` / `user-left` event.
pub fn member_change(left: bool, seq: u64, member: MemberData) -> Change {
    Change::Member {
        left,
        change: MemberChange { seq, member },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Value;

    use super::*;

    fn user(id: &str, devices: usize) -> PresenceUser {
        PresenceUser {
            room_id: "r".into(),
            user_id: id.into(),
            user_name: id.to_uppercase(),
            devices,
        }
    }

    fn devices(id: &str, before: usize, now: usize) -> Change {
        Change::Devices {
            before,
            now: user(id, now),
        }
    }

    fn member(id: &str, left: bool, seq: u64) -> Change {
        let data = MemberData {
            room_id: "r".into(),
            user_id: id.into(),
            user_name: id.to_uppercase(),
            joined_at: "2026-11-29T00:00:00.000Z".into(),
            left_at: left.then(|| "2026-11-29T00:00:01.000Z".into()),
        };
        member_change(left, seq, data)
    }

    fn parse(frame: &str) -> Value {
        serde_json::from_str(frame).unwrap()
    }

    fn ids(list: &Value) -> Vec<(String, u64)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let n = u.get("seq").or_else(|| u.get("devices")).unwrap();
                (u["userId"].as_str().unwrap().into(), n.as_u64().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_window_of_joins_is_one_frame_with_every_join_and_device_count() {
        let mut b = PresenceBatch::new(1);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            b.push(member(id, false, 10 + i as u64));
            b.push(devices(id, 0, 1));
        }
        let frames = b.frames("r", vec![ConnId(1), ConnId(2)]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, [ConnId(1), ConnId(2)]);
        let f = parse(&frames[0].1);
        assert_eq!(f["event"], PRESENCE_CHANGED);
        assert_eq!(f["seq"], 12);
        assert_eq!(
            ids(&f["data"]["joined"]),
            [("a".into(), 10), ("b".into(), 11), ("c".into(), 12)]
        );
        assert_eq!(
            ids(&f["data"]["online"]),
            [("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]
        );
        assert_eq!(f["data"]["left"], Value::Array(vec![]));
        assert_eq!(f["data"]["offline"], Value::Array(vec![]));
    }

    #[test]
    fn a_device_that_reconnects_within_the_window_changes_nothing() {
        let mut b = PresenceBatch::new(1);
        b.push(devices("a", 1, 0));
        b.push(devices("a", 0, 1));
        assert_eq!(b.frames("r", vec![ConnId(1)]), []);
        // A third device that stays is told as the count at the end.
        b.push(devices("a", 1, 2));
        let f = parse(&b.frame_for("r", ConnId(1)).unwrap());
        assert_eq!(ids(&f["data"]["online"]), [("a".into(), 2)]);
        assert!(f.get("seq").is_none(), "device counts are not numbered");
    }

    #[test]
    fn join_then_leave_in_one_window_lists_both_and_no_device_count() {
        let mut b = PresenceBatch::new(1);
        b.push(member("a", false, 5));
        b.push(devices("a", 0, 1));
        b.push(member("a", true, 6));
        b.push(devices("a", 1, 0));
        let f = parse(&b.frame_for("r", ConnId(9)).unwrap());
        assert_eq!(f["seq"], 6);
        assert_eq!(ids(&f["data"]["joined"]), [("a".into(), 5)]);
        assert_eq!(ids(&f["data"]["left"]), [("a".into(), 6)]);
        assert_eq!(f["data"]["online"], Value::Array(vec![]));
        assert_eq!(f["data"]["offline"], Value::Array(vec![]));
    }

    #[test]
    fn a_socket_that_joined_in_the_window_hears_only_what_came_after() {
        let mut b = PresenceBatch::new(1);
        b.push(member("a", false, 1));
        b.push(devices("a", 0, 1));
        b.snapshot_sent(ConnId(2)); // a's own socket
        b.push(member("b", false, 2));
        b.push(devices("b", 0, 1));
        b.snapshot_sent(ConnId(3)); // b's
        b.push(devices("a", 1, 0));
        let frames = b.frames("r", vec![ConnId(1), ConnId(2), ConnId(3)]);
        let got: Vec<(Vec<ConnId>, Value)> =
            frames.into_iter().map(|(to, f)| (to, parse(&f))).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, [ConnId(1)]);
        assert_eq!(ids(&got[0].1["data"]["joined"]).len(), 2);
        assert_eq!(ids(&got[0].1["data"]["online"]), [("b".into(), 1)]);
        assert_eq!(got[1].0, [ConnId(2)]);
        assert_eq!(ids(&got[1].1["data"]["joined"]), [("b".into(), 2)]);
        assert_eq!(ids(&got[1].1["data"]["offline"]), [("a".into(), 0)]);
        assert_eq!(got[2].0, [ConnId(3)]);
        assert!(got[2].1.get("seq").is_none());
        assert_eq!(ids(&got[2].1["data"]["offline"]), [("a".into(), 0)]);
        assert_eq!(got[2].1["data"]["joined"], Value::Array(vec![]));
    }

    #[test]
    fn the_last_socket_in_hears_nothing_when_nothing_followed_it() {
        let mut b = PresenceBatch::new(1);
        b.push(member("a", false, 1));
        b.push(devices("a", 0, 1));
        b.snapshot_sent(ConnId(2));
        assert_eq!(b.frame_for("r", ConnId(2)), None);
        assert!(b.frame_for("r", ConnId(1)).is_some());
    }
}
