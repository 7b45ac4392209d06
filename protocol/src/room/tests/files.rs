//! Files in a room, through the same harness: uploads admitted by the worker, progress
//! coalesced on the room's clock, pause and multi-device control, completion and
//! cancellation, the file list, sharing, removal, folders, processing status, the
//! audit log and offline members' webhooks.

use serde_json::{Value, json};

use super::super::files::{NotifyKind, SealedFields};
use super::super::limits::{HOUR_MS, RoomLimits};
use super::super::machine::{AdmitUpload, Answered};
use super::super::processing::ProcessingReport;
use super::super::seal::{RoomKey, SealContext};
use super::*;
use crate::jwt::Role;

const MIB: u64 = 1 << 20;

fn seal_as(sender: &str, event: &str, field: &str, text: &str) -> String {
    let ctx = SealContext {
        event,
        sender,
        field,
    };
    RoomKey::from_bytes([5; 32])
        .cipher(ROOM)
        .seal(&ctx, text.as_bytes(), [3; 12])
}

fn fields(user: &str, name: &str) -> SealedFields {
    SealedFields {
        sealed_name: seal_as(user, "file", "name", name),
        sealed_type: Some(seal_as(user, "file", "type", "text/plain")),
        sealed_key: Some(seal_as(user, "file", "key", &"k".repeat(32))),
        sealed_path: None,
    }
}

/// A 22-character file id from a number.
fn fid(n: u32) -> String {
    format!("F{n:0>21}")
}

impl Harness {
    fn answered(&mut self, answered: Answered) -> Result<Value, (String, String)> {
        self.run(answered.actions);
        answered
            .answer
            .map(|json| serde_json::from_str(&json).unwrap())
            .map_err(|e| (e.code.as_str().to_owned(), e.message))
    }

    fn admit_as(
        &mut self,
        user: &str,
        role: Role,
        file_id: &str,
        size: u64,
        parent: Option<&str>,
    ) -> Result<Value, (String, String)> {
        let admit = AdmitUpload {
            file_id: file_id.into(),
            user_id: user.into(),
            user_name: format!("{user} (name)"),
            role,
            size,
            sealed: fields(user, "report.txt"),
            parent_id: parent.map(str::to_owned),
        };
        self.admit_raw(admit)
    }

    fn admit_raw(&mut self, admit: AdmitUpload) -> Result<Value, (String, String)> {
        let now = self.now;
        self.room();
        let answered = self
            .room
            .as_mut()
            .unwrap()
            .admit_upload(now, admit, &self.store);
        self.answered(answered)
    }

    fn admit(&mut self, user: &str, file_id: &str, size: u64) -> Value {
        self.admit_as(user, Role::Member, file_id, size, None)
            .expect("admitted")
    }

    /// Storage completed `file_id`: the room adds it.
    fn completed(&mut self, file_id: &str) -> Result<Value, (String, String)> {
        self.objects.insert(file_id.to_owned());
        let now = self.now;
        self.room();
        let answered = self
            .room
            .as_mut()
            .unwrap()
            .upload_completed(now, file_id, &self.store);
        self.answered(answered)
    }

    fn cancelled(&mut self, file_id: &str) -> Value {
        let now = self.now;
        let answered = self.room().upload_cancelled(now, file_id);
        self.answered(answered).unwrap()
    }

    /// Its owner deleted `file_id` through the file API.
    fn deleted(&mut self, file_id: &str) -> Result<Value, (String, String)> {
        self.objects.remove(file_id);
        let now = self.now;
        self.room();
        let answered = self
            .room
            .as_mut()
            .unwrap()
            .file_deleted(now, file_id, &self.store);
        self.answered(answered)
    }

    fn processing(
        &mut self,
        file_id: &str,
        processor: &str,
        report: Value,
    ) -> Result<Value, (String, String)> {
        let event = serde_json::from_value::<ProcessingReport>(report)
            .unwrap()
            .validate()
            .unwrap();
        let now = self.now;
        self.room();
        let answered =
            self.room
                .as_mut()
                .unwrap()
                .processing(now, file_id, processor, &event, &self.store);
        self.answered(answered)
    }

    fn progress(&mut self, conn: ConnId, file_id: &str, bytes: u64) {
        self.send(
            conn,
            json!({"event": "file-upload-progress", "data": {"fileId": file_id, "bytesUploaded": bytes}}),
        );
    }
}

fn err_code(r: Result<Value, (String, String)>) -> String {
    r.unwrap_err().0
}

// ---------------------------------------------------------------------------------
// Admitting uploads
// ---------------------------------------------------------------------------------

#[test]
fn only_members_whose_role_may_upload_start_uploads_in_an_unlocked_room() {
    let mut h = Harness::new();
    let owner = h.user("olga", Role::Owner, true);
    let _viewer = h.user("vic", Role::Viewer, true);
    let _bob = h.user("bob", Role::Member, true);
    h.take(owner);
    // A viewer, and someone who never joined, are refused.
    assert_eq!(
        err_code(h.admit_as("vic", Role::Viewer, &fid(1), 10, None)),
        "forbidden"
    );
    assert_eq!(
        err_code(h.admit_as("zed", Role::Member, &fid(1), 10, None)),
        "forbidden"
    );
    // A member is admitted, and everyone sees it start.
    let ok = h.admit("bob", &fid(1), 10);
    assert_eq!(ok["fileId"], fid(1));
    assert_eq!(ok["expiresAt"], T0 + RoomLimits::default().upload_ttl_ms);
    let started = h.events(owner, "file-upload-started");
    assert_eq!(started.len(), 1);
    let data = &started[0]["data"];
    assert_eq!(data["userId"], "bob");
    assert_eq!(data["uploadId"], fid(1));
    assert_eq!(data["size"], 10);
    assert!(data["sealedName"].as_str().unwrap().len() > 29);
    assert!(
        started[0]["seq"].as_u64().is_some(),
        "numbered: replayed on reconnect"
    );
    // The same create retried: the same answer, no second event.
    assert_eq!(h.admit("bob", &fid(1), 10), ok);
    assert!(h.events(owner, "file-upload-started").is_empty());
    // A locked room admits no uploads, not even the owner's.
    h.request(owner, "lock-room", json!({}));
    assert_eq!(
        err_code(h.admit_as("olga", Role::Owner, &fid(2), 10, None)),
        "room_locked"
    );
    h.request(owner, "unlock-room", json!({}));
    assert!(h.admit_as("olga", Role::Owner, &fid(2), 10, None).is_ok());
}

#[test]
fn admission_checks_every_field() {
    let mut h = Harness::new();
    h.user("bob", Role::Member, true);
    let admit = AdmitUpload {
        file_id: fid(1),
        user_id: "bob".into(),
        user_name: "bob".into(),
        role: Role::Member,
        size: 1,
        sealed: fields("bob", "a"),
        parent_id: None,
    };
    let cases: Vec<(AdmitUpload, &str, &str)> = vec![
        (
            AdmitUpload {
                file_id: "no/such".into(),
                ..admit.clone()
            },
            "invalid_data",
            "fileId",
        ),
        (
            AdmitUpload {
                sealed: SealedFields {
                    sealed_name: "plain name".into(),
                    ..fields("bob", "a")
                },
                ..admit.clone()
            },
            "invalid_data",
            "sealedName",
        ),
        (
            AdmitUpload {
                sealed: SealedFields {
                    sealed_key: None,
                    ..fields("bob", "a")
                },
                ..admit.clone()
            },
            "invalid_data",
            "sealedKey is required",
        ),
        (
            AdmitUpload {
                parent_id: Some("d99".into()),
                ..admit.clone()
            },
            "file_not_found",
            "parentId",
        ),
    ];
    for (case, code, needle) in cases {
        let (got, message) = h.admit_raw(case).unwrap_err();
        assert_eq!(got, code, "{message}");
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    assert!(h.store.uploads.is_empty(), "nothing refused is stored");
    // The room bounds the uploads in flight.
    let mut h = Harness::with_limits(RoomLimits {
        max_uploads: 2,
        ..RoomLimits::default()
    });
    h.user("bob", Role::Member, true);
    h.admit("bob", &fid(1), 1);
    h.admit("bob", &fid(2), 1);
    assert_eq!(
        err_code(h.admit_as("bob", Role::Member, &fid(3), 1, None)),
        "too_many_uploads"
    );
}

// ---------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------

#[test]
fn a_client_reporting_100_times_a_second_is_broadcast_at_most_4_times_a_second_and_the_final_value_always()
 {
    let mut h = Harness::new();
    let up = h.user("alice", Role::Member, true);
    let watcher = h.user("bob", Role::Member, true);
    let total = 64 * MIB;
    h.admit("alice", &fid(1), total);
    h.take(watcher);
    h.take(up);
    let mut received: Vec<(u64, Value)> = Vec::new();
    let mut bytes = 0;
    // 4 s of reports every 10 ms.
    for _ in 0..400 {
        h.advance(10);
        bytes += total / 500;
        h.progress(up, &fid(1), bytes);
        for f in h.events(watcher, "file-upload-progress") {
            received.push((h.now, f));
        }
        assert!(
            h.events(up, "error").is_empty(),
            "100 a second is not rate limited"
        );
    }
    // The reports stop: the alarm sends the kept value.
    h.advance(1000);
    for f in h.events(watcher, "file-upload-progress") {
        received.push((h.now, f));
    }
    let times: Vec<u64> = received.iter().map(|(t, _)| *t).collect();
    for (i, t) in times.iter().enumerate() {
        let in_second = times[i..].iter().take_while(|u| **u < t + 1000).count();
        assert!(
            in_second <= 4,
            "{in_second} broadcasts in the second from {t}"
        );
    }
    assert!(received.len() >= 15, "{} broadcasts in 4 s", received.len());
    let (_, last) = received.last().unwrap();
    assert_eq!(
        last["data"]["bytesUploaded"], bytes,
        "the final value was sent"
    );
    // Speed and ETA are the room's own: total/500 every 10 ms.
    let (_, mid) = &received[8];
    let speed = mid["data"]["uploadSpeed"].as_u64().unwrap();
    let expected = total / 500 * 100;
    assert!(
        speed.abs_diff(expected) < expected / 50,
        "{speed} vs {expected}"
    );
    let left = total - mid["data"]["bytesUploaded"].as_u64().unwrap();
    assert_eq!(mid["data"]["estimatedTimeRemaining"], left.div_ceil(speed));
    assert_eq!(mid["data"]["totalBytes"], total);
    assert_eq!(mid["data"]["userId"], "alice");
    // Progress frames do not use up the socket's frame allowance.
    let ack = h.request(
        up,
        "send-message",
        json!({"text": sealed("still here", "alice")}),
    );
    assert_eq!(ack["event"], "ack");
}

#[test]
fn backwards_oversized_and_foreign_reports_are_refused() {
    let mut h = Harness::new();
    let up = h.user("alice", Role::Member, true);
    let other = h.user("bob", Role::Member, true);
    h.admit("alice", &fid(1), 100);
    let ok = h.request(
        up,
        "file-upload-progress",
        json!({"fileId": fid(1), "bytesUploaded": 50}),
    );
    assert_eq!(ok["data"]["broadcast"], true);
    let back = h.request(
        up,
        "file-upload-progress",
        json!({"fileId": fid(1), "bytesUploaded": 40}),
    );
    assert_eq!(code(&back), "invalid_progress");
    assert!(
        back["data"]["message"]
            .as_str()
            .unwrap()
            .contains("below the 50")
    );
    let over = h.request(
        up,
        "file-upload-progress",
        json!({"fileId": fid(1), "bytesUploaded": 101}),
    );
    assert_eq!(code(&over), "invalid_progress");
    let foreign = h.request(
        other,
        "file-upload-progress",
        json!({"fileId": fid(1), "bytesUploaded": 60}),
    );
    assert_eq!(code(&foreign), "forbidden");
    let unknown = h.request(
        up,
        "file-upload-progress",
        json!({"fileId": fid(2), "bytesUploaded": 1}),
    );
    assert_eq!(code(&unknown), "file_not_found");
    let wrong_id = h.request(
        up,
        "file-upload-progress",
        json!({"fileId": fid(1), "uploadId": fid(2), "bytesUploaded": 60}),
    );
    assert_eq!(code(&wrong_id), "invalid_data");
    let negative = h.request(
        up,
        "file-upload-progress",
        json!({"fileId": fid(1), "bytesUploaded": -1}),
    );
    assert_eq!(code(&negative), "invalid_data");
    // Nothing refused moved it.
    let late = h.user("carol", Role::Member, false);
    h.send(late, json!({"event": "join-room"}));
    let uploads = h.events(late, "uploads");
    assert_eq!(uploads[0]["data"]["uploads"][0]["bytesUploaded"], 50);
}

#[test]
fn a_late_joiner_gets_a_snapshot_of_the_uploads_in_flight() {
    let mut h = Harness::new();
    let up = h.user("alice", Role::Member, true);
    h.admit("alice", &fid(1), 10 * MIB);
    h.admit("alice", &fid(2), MIB);
    for i in 1..=10 {
        h.advance(100);
        h.progress(up, &fid(1), i * MIB / 2);
    }
    h.request(up, "file-upload-paused", json!({"fileId": fid(2)}));
    h.evict();
    let late = h.user("bob", Role::Member, false);
    h.send(late, json!({"event": "join-room", "id": "j"}));
    let uploads = h.events(late, "uploads");
    let list = uploads[0]["data"]["uploads"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let one = list.iter().find(|u| u["fileId"] == fid(1)).unwrap();
    assert_eq!(one["state"], "uploading");
    assert_eq!(one["userName"], "alice (name)");
    assert_eq!(one["totalBytes"], 10 * MIB);
    let two = list.iter().find(|u| u["fileId"] == fid(2)).unwrap();
    assert_eq!(two["state"], "paused", "the pause survives the eviction");
}

#[test]
fn another_device_of_the_uploader_pauses_resumes_and_cancels_through_the_room() {
    let mut h = Harness::new();
    let laptop = h.user("alice", Role::Member, true);
    let phone = h.user("alice", Role::Member, true);
    let bob = h.user("bob", Role::Member, true);
    h.admit("alice", &fid(1), 100);
    h.progress(laptop, &fid(1), 10);
    for c in [laptop, phone, bob] {
        h.take(c);
    }
    // The phone asks; only the uploader's other devices hear it.
    let ack = h.request(
        phone,
        "control-upload",
        json!({"fileId": fid(1), "action": "pause"}),
    );
    assert_eq!(ack["data"]["delivered"], 1);
    let control = h.events(laptop, "upload-control");
    assert_eq!(control[0]["data"]["action"], "pause");
    assert_eq!(control[0]["data"]["requestedBy"], phone.session_id());
    assert!(h.take(bob).is_empty());
    // The laptop obeys and says so: everyone sees it paused.
    let paused = h.request(laptop, "file-upload-paused", json!({"fileId": fid(1)}));
    assert_eq!(paused["data"]["changed"], true);
    let seen = h.events(bob, "file-upload-paused");
    assert_eq!(seen[0]["data"]["bytesUploaded"], 10);
    assert!(seen[0]["data"]["pausedAt"].is_string());
    assert!(h.store.uploads[&fid(1)].paused);
    // Someone else may not control it.
    let bobs = h.request(
        bob,
        "control-upload",
        json!({"fileId": fid(1), "action": "cancel"}),
    );
    assert_eq!(code(&bobs), "forbidden");
    let bad = h.request(
        phone,
        "control-upload",
        json!({"fileId": fid(1), "action": "explode"}),
    );
    assert_eq!(code(&bad), "invalid_data");
    h.request(
        phone,
        "control-upload",
        json!({"fileId": fid(1), "action": "resume"}),
    );
    h.request(laptop, "file-upload-resumed", json!({"fileId": fid(1)}));
    assert_eq!(h.events(bob, "file-upload-resumed").len(), 1);
    h.request(
        phone,
        "control-upload",
        json!({"fileId": fid(1), "action": "cancel"}),
    );
    assert_eq!(
        h.events(laptop, "upload-control")[0]["data"]["action"],
        "cancel"
    );
    // The laptop aborts the session; the worker tells the room.
    h.cancelled(&fid(1));
    let failed = h.events(bob, "file-upload-failed");
    assert_eq!(failed[0]["data"]["reason"], "cancelled");
    assert!(h.store.uploads.is_empty());
    // Cancelling again changes nothing.
    h.cancelled(&fid(1));
    assert!(h.events(bob, "file-upload-failed").is_empty());
}

// ---------------------------------------------------------------------------------
// Completion, the file list, expiry
// ---------------------------------------------------------------------------------

#[test]
fn completion_sends_the_final_progress_then_completed_then_file_added() {
    let mut h = Harness::new();
    let up = h.user("alice", Role::Member, true);
    let bob = h.user("bob", Role::Member, true);
    h.admit("alice", &fid(1), 100);
    h.progress(up, &fid(1), 10);
    h.progress(up, &fid(1), 100); // kept: within 250 ms of the first
    h.take(bob);
    let done = h.completed(&fid(1)).unwrap();
    let got = h.take(bob);
    let names: Vec<&str> = got.iter().map(|f| f["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "file-upload-progress",
            "file-upload-completed",
            "file-added"
        ]
    );
    assert_eq!(got[0]["data"]["bytesUploaded"], 100);
    assert_eq!(got[1]["data"]["size"], 100);
    let file = &got[2]["data"]["file"];
    assert_eq!(file["id"], fid(1));
    assert_eq!(file["uploadedBy"], "alice");
    assert_eq!(file["isFolder"], false);
    assert!(file["sealedKey"].is_string());
    assert_eq!(done["seq"], got[2]["seq"]);
    // Reported again (a retried complete): the same answer, nothing sent.
    assert_eq!(h.completed(&fid(1)).unwrap(), done);
    assert!(h.take(bob).is_empty());
    assert_eq!(err_code(h.completed(&fid(9))), "file_not_found");
    // The alarm has nothing left to do for it.
    h.advance(HOUR_MS);
    assert!(h.events(bob, "file-upload-progress").is_empty());
}

#[test]
fn an_upload_that_outlives_its_session_expires() {
    let mut h = Harness::with_limits(RoomLimits {
        upload_ttl_ms: 10_000,
        idle_timeout_ms: 0,
        ..RoomLimits::default()
    });
    let bob = h.user("bob", Role::Member, true);
    h.admit("bob", &fid(1), 100);
    h.evict();
    h.advance(10_000);
    let failed = h.events(bob, "file-upload-failed");
    assert_eq!(failed[0]["data"]["reason"], "expired");
    assert!(h.store.uploads.is_empty());
}

#[test]
fn the_file_list_pages_and_a_joiner_gets_the_newest_page() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    for i in 0..70 {
        h.admit("alice", &fid(i), u64::from(i));
        h.completed(&fid(i)).unwrap();
    }
    h.take(a);
    let late = h.user("bob", Role::Member, false);
    h.send(late, json!({"event": "join-room"}));
    let files = h.events(late, "files");
    let page = &files[0]["data"];
    assert_eq!(page["files"].as_array().unwrap().len(), 50);
    assert_eq!(page["hasMore"], true);
    assert_eq!(
        page["files"][49]["id"],
        fid(69),
        "oldest first, ending with the newest"
    );
    let mut seen = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let data = match before {
            None => json!({"limit": 30}),
            Some(b) => json!({"limit": 30, "beforeSeq": b}),
        };
        let ack = h.request(a, "files", data);
        let list = ack["data"]["files"].as_array().unwrap().clone();
        before = list.first().map(|f| f["seq"].as_u64().unwrap());
        for f in list.iter().rev() {
            seen.push(f["id"].as_str().unwrap().to_owned());
        }
        if ack["data"]["hasMore"] == false {
            break;
        }
    }
    let expected: Vec<String> = (0..70).rev().map(fid).collect();
    assert_eq!(seen, expected, "every file once, no gaps");
    assert_eq!(
        code(&h.request(a, "files", json!({"limit": 0}))),
        "invalid_data"
    );
    assert_eq!(
        code(&h.request(a, "files", json!({"limit": 101}))),
        "invalid_data"
    );
}

// ---------------------------------------------------------------------------------
// Sharing, removal, folders
// ---------------------------------------------------------------------------------

#[test]
fn share_file_posts_a_message_with_the_sealed_link() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    let v = h.user("vic", Role::Viewer, true);
    h.admit("alice", &fid(1), 100);
    h.completed(&fid(1)).unwrap();
    h.take(b);
    let link = seal_as("alice", "new-message", "link", "http://h/f/x#k1.key");
    let text = seal_as("alice", "new-message", "text", "look");
    let data = json!({"fileId": fid(1), "link": link, "message": text});
    let ack = h.request(a, "share-file", data.clone());
    assert_eq!(ack["data"]["duplicate"], false);
    let msg = &h.events(b, "new-message")[0];
    assert_eq!(msg["data"]["file"]["fileId"], fid(1));
    assert_eq!(msg["data"]["file"]["link"], link);
    assert_eq!(msg["data"]["text"], text);
    assert_eq!(msg["data"]["senderId"], "alice");
    // It is history like any message.
    let history = h.request(b, "history", json!({}));
    assert_eq!(history["data"]["messages"][0]["file"]["fileId"], fid(1));
    // Without a text, and resent with the same id: one message.
    h.send(
        a,
        json!({"event": "share-file", "data": {"fileId": fid(1), "link": link}, "id": "s1"}),
    );
    h.send(
        a,
        json!({"event": "share-file", "data": {"fileId": fid(1), "link": link}, "id": "s1"}),
    );
    let shared = h.events(b, "new-message");
    assert_eq!(shared.len(), 1);
    assert!(shared[0]["data"].get("text").is_none());
    let refusals = [
        (v, json!({"fileId": fid(1), "link": link}), "forbidden"),
        (a, json!({"fileId": fid(2), "link": link}), "file_not_found"),
        (
            a,
            json!({"fileId": fid(1), "link": "http://h/f/x#k1.key"}),
            "invalid_data",
        ),
        (a, json!({"fileId": fid(1)}), "invalid_data"),
    ];
    for (conn, data, expected) in refusals {
        assert_eq!(
            code(&h.request(conn, "share-file", data.clone())),
            expected,
            "{data}"
        );
    }
}

#[test]
fn the_uploader_or_a_moderator_removes_a_file_and_storage_goes_first() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    let m = h.user("mia", Role::Moderator, true);
    for i in 1..=3 {
        h.admit("alice", &fid(i), 10);
        h.completed(&fid(i)).unwrap();
    }
    h.take(b);
    assert_eq!(
        code(&h.request(b, "remove-file", json!({"fileId": fid(1)}))),
        "forbidden"
    );
    let ack = h.request(a, "remove-file", json!({"fileId": fid(1)}));
    assert_eq!(ack["data"]["removed"], json!([fid(1)]));
    assert!(!h.objects.contains(&fid(1)), "storage deleted");
    assert!(!h.store.files.contains_key(&fid(1)));
    let removed = h.events(b, "file-removed");
    assert_eq!(removed[0]["data"]["removedBy"], "alice");
    assert!(removed[0]["seq"].as_u64().is_some());
    // A moderator removes anyone's file.
    h.request(m, "remove-file", json!({"fileId": fid(2)}));
    assert!(!h.store.files.contains_key(&fid(2)));
    // Storage refuses: nothing is removed, the requester is told, the next try works.
    h.undeletable.insert(fid(3));
    let refused = h.request(a, "remove-file", json!({"fileId": fid(3)}));
    assert_eq!(code(&refused), "internal");
    assert!(h.store.files.contains_key(&fid(3)));
    h.undeletable.clear();
    assert_eq!(
        h.request(a, "remove-file", json!({"fileId": fid(3)}))["event"],
        "ack"
    );
    assert_eq!(
        code(&h.request(a, "remove-file", json!({"fileId": fid(3)}))),
        "file_not_found"
    );
}

#[test]
fn a_file_its_owner_deleted_leaves_the_room_as_a_removal_does() {
    let mut h = Harness::new();
    h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    let m = h.user("mia", Role::Moderator, true);
    h.admit("alice", &fid(1), 10);
    h.completed(&fid(1)).unwrap();
    h.take(b);
    let answer = h.deleted(&fid(1)).unwrap();
    assert_eq!(answer["removed"], true);
    assert!(!h.store.files.contains_key(&fid(1)));
    let removed = h.events(b, "file-removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["data"]["fileId"], fid(1));
    assert_eq!(removed[0]["data"]["removedBy"], "alice");
    assert!(removed[0]["seq"].as_u64().is_some(), "numbered");
    let audit = h.request(m, "audit", json!({}));
    let last = audit["data"]["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["action"].as_str(), last["fileId"].as_str()),
        (Some("removed"), Some(fid(1).as_str()))
    );
    // Told again (a retried DELETE), or of a file the room never had: nothing changes.
    assert_eq!(h.deleted(&fid(1)).unwrap_err().0, "file_not_found");
    assert_eq!(h.deleted(&fid(9)).unwrap_err().0, "file_not_found");
    assert!(h.events(b, "file-removed").is_empty());
}

#[test]
fn a_file_being_removed_is_busy() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    h.admit("alice", &fid(1), 10);
    h.completed(&fid(1)).unwrap();
    h.hold_deletes = true;
    h.send(
        a,
        json!({"event": "remove-file", "data": {"fileId": fid(1)}, "id": "r1"}),
    );
    let link = seal_as("alice", "new-message", "link", "x");
    for (event, data) in [
        ("remove-file", json!({"fileId": fid(1)})),
        ("share-file", json!({"fileId": fid(1), "link": link})),
    ] {
        assert_eq!(code(&h.request(a, event, data)), "file_busy", "{event}");
    }
    h.carry_out_deletes();
    let acks = h.events(a, "ack");
    assert_eq!(acks[0]["data"]["id"], "r1");
}

#[test]
fn a_folder_is_one_entry_its_files_point_at_it_and_it_goes_with_them() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    let folder = h.request(
        a,
        "create-folder",
        json!({"sealedName": seal_as("alice", "file", "name", "photos")}),
    );
    let folder_id = folder["data"]["fileId"].as_str().unwrap().to_owned();
    assert!(folder_id.starts_with('d'));
    let added = h.events(b, "file-added");
    assert_eq!(added[0]["data"]["file"]["isFolder"], true);
    assert_eq!(added[0]["data"]["file"]["id"], folder_id);
    for i in 1..=3 {
        h.admit_as("alice", Role::Member, &fid(i), 10, Some(&folder_id))
            .unwrap();
        h.completed(&fid(i)).unwrap();
    }
    let added = h.events(b, "file-added");
    assert!(
        added
            .iter()
            .all(|f| f["data"]["file"]["parentId"] == folder_id.as_str())
    );
    // A folder cannot be a file's parent's parent: uploads name folders only.
    assert_eq!(
        err_code(h.admit_as("alice", Role::Member, &fid(9), 1, Some(&fid(1)))),
        "file_not_found"
    );
    // Removing the folder removes its files (storage first), then the folder.
    let ack = h.request(a, "remove-file", json!({"fileId": folder_id}));
    let removed: Vec<String> = serde_json::from_value(ack["data"]["removed"].clone()).unwrap();
    assert_eq!(removed.len(), 4);
    assert_eq!(removed.last().unwrap(), &folder_id);
    assert!(h.objects.is_empty());
    assert!(h.store.files.is_empty());
    // A file whose folder went while it uploaded lands at the top.
    let f2 = h.request(
        a,
        "create-folder",
        json!({"sealedName": seal_as("alice", "file", "name", "x")}),
    );
    let f2 = f2["data"]["fileId"].as_str().unwrap().to_owned();
    h.admit_as("alice", Role::Member, &fid(5), 10, Some(&f2))
        .unwrap();
    h.request(a, "remove-file", json!({"fileId": f2}));
    h.completed(&fid(5)).unwrap();
    assert_eq!(h.store.files[&fid(5)].file.parent_id, None);
    // Viewers make no folders; a locked room gets none.
    let v = h.user("vic", Role::Viewer, true);
    let name = seal_as("vic", "file", "name", "x");
    assert_eq!(
        code(&h.request(v, "create-folder", json!({"sealedName": name}))),
        "forbidden"
    );
}

// ---------------------------------------------------------------------------------
// Processing
// ---------------------------------------------------------------------------------

#[test]
fn processing_events_reach_subscribers_in_order_and_out_of_order_ones_are_refused() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let watcher = h.user("bob", Role::Member, true);
    let other = h.user("carol", Role::Member, true);
    h.admit("alice", &fid(1), 10);
    h.completed(&fid(1)).unwrap();
    let sub = h.request(watcher, "subscribe:file", json!({"fileId": fid(1)}));
    assert_eq!(sub["data"]["processing"], Value::Null);
    assert_eq!(sub["data"]["fileId"], fid(1));
    h.send(
        watcher,
        json!({"event": "subscribe:file", "data": {"fileId": fid(1)}}),
    );
    assert_eq!(h.events(watcher, "subscribed")[0]["data"]["fileId"], fid(1));
    assert_eq!(
        code(&h.request(watcher, "subscribe:file", json!({"fileId": fid(7)}))),
        "file_not_found"
    );
    // Out of order before it starts.
    let early = h.processing(
        &fid(1),
        "transcoder",
        json!({"event": "progress", "progress": 5}),
    );
    assert_eq!(err_code(early), "processing_out_of_order");
    assert_eq!(
        err_code(h.processing(&fid(9), "t", json!({"event": "started"}))),
        "file_not_found"
    );
    h.evict(); // subscriptions live in the socket's attachment
    h.processing(
        &fid(1),
        "transcoder",
        json!({"event": "started", "metadata": {"codec": "h264"}}),
    )
    .unwrap();
    h.processing(
        &fid(1),
        "transcoder",
        json!({"event": "progress", "progress": 40, "message": "pass 1"}),
    )
    .unwrap();
    let back = h.processing(
        &fid(1),
        "transcoder",
        json!({"event": "progress", "progress": 30}),
    );
    assert_eq!(err_code(back), "processing_out_of_order");
    let done = h
        .processing(
            &fid(1),
            "transcoder",
            json!({"event": "completed", "result": {"duration": 12.5}}),
        )
        .unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["subscribers"], 1);
    let got: Vec<Value> = h.take(watcher);
    let names: Vec<&str> = got.iter().map(|f| f["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "processing:started",
            "processing:progress",
            "processing:completed"
        ]
    );
    assert_eq!(got[0]["data"]["metadata"]["codec"], "h264");
    assert_eq!(got[1]["data"]["progress"], 40.0);
    assert_eq!(got[1]["data"]["status"], "processing");
    assert_eq!(got[2]["data"]["result"]["duration"], 12.5);
    assert!(got[2]["data"]["timestamp"].is_string());
    assert!(
        h.events(other, "processing:started").is_empty(),
        "only subscribers hear it"
    );
    // The status is part of the file list, and of a new subscription.
    let page = h.request(a, "files", json!({}));
    assert_eq!(
        page["data"]["files"][0]["processing"]["status"],
        "completed"
    );
    let again = h.request(other, "subscribe:file", json!({"fileId": fid(1)}));
    assert_eq!(again["data"]["processing"]["progress"], 100.0);
    // Unsubscribed: nothing more.
    h.request(watcher, "unsubscribe:file", json!({"fileId": fid(1)}));
    h.processing(&fid(1), "transcoder", json!({"event": "started"}))
        .unwrap();
    assert!(h.events(watcher, "processing:started").is_empty());
    assert_eq!(h.events(other, "processing:started").len(), 1);
}

// ---------------------------------------------------------------------------------
// The audit log
// ---------------------------------------------------------------------------------

#[test]
fn every_file_operation_is_in_the_audit_log_which_moderators_read() {
    let mut h = Harness::new();
    let a = h.user("alice", Role::Member, true);
    let m = h.user("mia", Role::Moderator, true);
    h.admit("alice", &fid(1), 10);
    h.completed(&fid(1)).unwrap();
    h.admit("alice", &fid(2), 20);
    h.cancelled(&fid(2));
    let link = seal_as("alice", "new-message", "link", "x");
    h.request(a, "share-file", json!({"fileId": fid(1), "link": link}));
    h.request(m, "file-downloaded", json!({"fileId": fid(1)}));
    h.request(
        a,
        "create-folder",
        json!({"sealedName": seal_as("alice", "file", "name", "f")}),
    );
    h.request(m, "remove-file", json!({"fileId": fid(1)}));
    assert_eq!(code(&h.request(a, "audit", json!({}))), "forbidden");
    let page = h.request(m, "audit", json!({}));
    let entries = page["data"]["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["userId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("upload-started", "alice"),
            ("upload-completed", "alice"),
            ("upload-started", "alice"),
            ("upload-failed", "alice"),
            ("shared", "alice"),
            ("downloaded", "mia"),
            ("folder-created", "alice"),
            ("removed", "mia"),
        ]
    );
    assert_eq!(entries[3]["detail"], "cancelled");
    assert_eq!(entries[1]["size"], 10);
    assert!(entries[0]["at"].is_string());
    let older = h.request(m, "audit", json!({"beforeSeq": 3, "limit": 1}));
    assert_eq!(older["data"]["entries"][0]["seq"], 2);
    assert_eq!(older["data"]["hasMore"], true);
    // Nothing in it is sealed content or a name of a file.
    let text = serde_json::to_string(&h.store.audit).unwrap();
    assert!(!text.contains("sealed"));
}

// ---------------------------------------------------------------------------------
// Offline members
// ---------------------------------------------------------------------------------

#[test]
fn an_offline_member_gets_one_webhook_per_interval_naming_no_content() {
    let interval = 5 * 60_000;
    let mut h = Harness::with_limits(RoomLimits {
        notify_interval_ms: Some(interval),
        idle_timeout_ms: 0,
        ..RoomLimits::default()
    });
    let a = h.user("alice", Role::Member, true);
    let b = h.user("bob", Role::Member, true);
    let _c = h.user("carol", Role::Member, true);
    h.client_close(b); // bob goes offline (still a member)
    h.request(a, "send-message", json!({"text": sealed("one", "alice")}));
    assert_eq!(h.notifications.len(), 1);
    let n = &h.notifications[0];
    assert_eq!(
        (n.user_id.as_str(), n.sender_id.as_str(), n.kind),
        ("bob", "alice", NotifyKind::Message)
    );
    assert_eq!(n.room_id, ROOM);
    // Within the interval, even after an eviction: nothing more.
    h.evict();
    h.advance(interval - 1);
    h.request(a, "send-message", json!({"text": sealed("two", "alice")}));
    h.admit("alice", &fid(1), 10);
    h.completed(&fid(1)).unwrap();
    assert_eq!(h.notifications.len(), 1);
    // After it: one more, about the file.
    h.advance(1);
    h.admit("alice", &fid(2), 10);
    h.completed(&fid(2)).unwrap();
    assert_eq!(h.notifications.len(), 2);
    assert_eq!(h.notifications[1].kind, NotifyKind::File);
    // Bob back online: none.
    h.advance(interval);
    let _b2 = h.user("bob", Role::Member, true);
    h.request(a, "send-message", json!({"text": sealed("three", "alice")}));
    assert_eq!(h.notifications.len(), 2);
    // A delivery that failed for good is in the audit log.
    let now = h.now;
    let answered = h.room().notification_failed(now, "bob", NotifyKind::File);
    h.answered(answered).unwrap();
    let last = h.store.audit.last().unwrap();
    assert_eq!(last.user_id, "bob");
    assert_eq!(last.detail.as_deref(), Some("file"));
    // Without a webhook configured, nothing is asked for.
    let mut quiet = Harness::new();
    let a = quiet.user("alice", Role::Member, true);
    let b = quiet.user("bob", Role::Member, true);
    quiet.client_close(b);
    quiet.request(a, "send-message", json!({"text": sealed("x", "alice")}));
    assert!(quiet.notifications.is_empty());
    assert!(quiet.store.notified.is_empty());
}

// ---------------------------------------------------------------------------------
// Hibernation
// ---------------------------------------------------------------------------------

#[test]
fn files_behave_the_same_when_the_room_is_evicted_before_every_input() {
    fn script(evict_always: bool) -> (Vec<Value>, usize) {
        let mut h = Harness::new();
        h.evict_always = evict_always;
        let a = h.user("alice", Role::Member, true);
        let b = h.user("bob", Role::Moderator, true);
        h.admit("alice", &fid(1), 1000);
        h.request(b, "subscribe:file", json!({"fileId": fid(1)}));
        h.request(a, "file-upload-paused", json!({"fileId": fid(1)}));
        h.request(a, "file-upload-resumed", json!({"fileId": fid(1)}));
        h.completed(&fid(1)).unwrap();
        h.processing(&fid(1), "p", json!({"event": "started"}))
            .unwrap();
        let folder = h.request(
            a,
            "create-folder",
            json!({"sealedName": seal_as("alice", "file", "name", "f")}),
        );
        let folder = folder["data"]["fileId"].as_str().unwrap().to_owned();
        h.admit_as("alice", Role::Member, &fid(2), 5, Some(&folder))
            .unwrap();
        h.completed(&fid(2)).unwrap();
        h.request(b, "remove-file", json!({"fileId": folder}));
        h.request(b, "audit", json!({}));
        (h.take(b), h.wakes)
    }
    let (calm, wakes) = script(false);
    let (evicted, evicted_wakes) = script(true);
    assert_eq!(wakes, 1);
    assert!(evicted_wakes > 10);
    // Progress figures and timestamps aside, the same frames.
    assert_eq!(calm, evicted);
}
