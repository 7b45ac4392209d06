//! Opening the sealed fields of incoming frames, in place, before the application sees
//! them: message `text`, `attachments` and a shared file's `link`, a lock's `reason`,
//! and a room file's `sealedName` / `sealedType` / `sealedKey` / `sealedPath` (opened
//! beside them as `name`, `type`, `key`, `path`; docs/FORMAT.md, context event `file`).
//! A field that does not open
//! becomes `null` and the object gets `sealError` (the code), so one bad payload never
//! hides the others or throws in a listener.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealdrop_protocol::room::seal::{RoomCipher, SealContext};
use serde_json::Value;

/// Opens the sealed fields of event `event`'s `data`.
pub(super) fn open_event(cipher: &RoomCipher, event: &str, data: &mut Value) {
    match event {
        "new-message" => open_message(cipher, data),
        "history" => open_history(cipher, data),
        "room-locked" => open_lock(cipher, data),
        "file-upload-started" => open_file(cipher, data, "userId"),
        "file-added" => {
            if let Some(file) = data.get_mut("file") {
                open_file(cipher, file, "uploadedBy");
            }
        }
        "uploads" => open_files(cipher, data, "uploads", "userId"),
        "files" => open_files(cipher, data, "files", "uploadedBy"),
        "room-state" => {
            if let Some(lock) = data.get_mut("lock").filter(|l| l.is_object()) {
                open_lock(cipher, lock);
            }
        }
        _ => {}
    }
}

/// Opens every message of a history page (`{messages: [...]}`).
pub(super) fn open_history(cipher: &RoomCipher, page: &mut Value) {
    if let Some(messages) = page.get_mut("messages").and_then(Value::as_array_mut) {
        for m in messages {
            open_message(cipher, m);
        }
    }
}

/// Opens every entry of the list `key` of a snapshot or page (`uploads`, `files`).
pub(super) fn open_files(cipher: &RoomCipher, data: &mut Value, key: &str, sender_key: &str) {
    if let Some(list) = data.get_mut(key).and_then(Value::as_array_mut) {
        for entry in list {
            open_file(cipher, entry, sender_key);
        }
    }
}

/// Opens a room file's sealed fields, sealed by the user named in `sender_key`.
fn open_file(cipher: &RoomCipher, file: &mut Value, sender_key: &str) {
    let sender = file[sender_key].as_str().unwrap_or_default().to_owned();
    let mut failure = None;
    for (sealed, open) in [
        ("sealedName", "name"),
        ("sealedType", "type"),
        ("sealedKey", "key"),
        ("sealedPath", "path"),
    ] {
        let Some(text) = file.get(sealed).and_then(Value::as_str) else {
            continue;
        };
        let ctx = SealContext {
            event: "file",
            sender: &sender,
            field: open,
        };
        file[open] = match cipher.open(&ctx, text) {
            // The key is 32 raw bytes: given as in `#k1.` links.
            Ok(bytes) if open == "key" => Value::String(URL_SAFE_NO_PAD.encode(bytes)),
            Ok(bytes) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => {
                failure = Some(e.code());
                Value::Null
            }
        };
    }
    if let Some(code) = failure {
        file["sealError"] = Value::String(code.to_owned());
    }
}

fn open_message(cipher: &RoomCipher, m: &mut Value) {
    let sender = m["senderId"].as_str().unwrap_or_default().to_owned();
    let mut failure = None;
    let mut open = |field: &str, value: &mut Value| {
        let opened = value.as_str().map(|sealed| {
            let ctx = SealContext {
                event: "new-message",
                sender: &sender,
                field,
            };
            cipher.open(&ctx, sealed)
        });
        *value = match opened {
            Some(Ok(bytes)) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            Some(Err(e)) => {
                failure = Some(e.code());
                Value::Null
            }
            None => Value::Null,
        };
    };
    if let Some(text) = m.get_mut("text") {
        open("text", text);
    }
    if let Some(list) = m.get_mut("attachments").and_then(Value::as_array_mut) {
        for (i, a) in list.iter_mut().enumerate() {
            open(&SealContext::attachment_field(i), a);
        }
    }
    if let Some(link) = m.get_mut("file").and_then(|f| f.get_mut("link")) {
        open("link", link);
    }
    if let Some(code) = failure {
        m["sealError"] = Value::String(code.to_owned());
    }
}

fn open_lock(cipher: &RoomCipher, lock: &mut Value) {
    let by = lock["lockedBy"].as_str().unwrap_or_default().to_owned();
    let Some(sealed) = lock
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let ctx = SealContext {
        event: "room-locked",
        sender: &by,
        field: "reason",
    };
    match cipher.open(&ctx, &sealed) {
        Ok(bytes) => lock["reason"] = Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            lock["reason"] = Value::Null;
            lock["sealError"] = Value::String(e.code().to_owned());
        }
    }
}
