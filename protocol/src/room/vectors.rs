//! The room payload test vectors of docs/FORMAT.md ("Room payloads") as data: their
//! text form, and the check every implementation must pass.
//!
//! Pure like the rest of the crate: it reads and writes text, never directories. The
//! native test (`protocol/tests/room_vectors.rs`) reads `tests/vectors/room/*.txt` and
//! calls [`check`]; the independent JavaScript implementation
//! (`tests/rooms/webcrypto-room.mjs`) reads the same files in Chromium.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::seal::{NONCE_LEN, RoomKey, SealContext};

/// Every case the document names. A directory must hold `<name>.txt` for each.
pub const CASES: &[&str] = &[
    "text_ascii",
    "text_unicode",
    "text_empty",
    "attachment_first",
    "attachment_second",
    "lock_reason",
    "long_ids",
    "file_name",
    "file_type",
    "file_key",
    "file_path",
    "shared_link",
    "wrong_room",
    "wrong_event",
    "wrong_sender",
    "wrong_field",
    "swapped_attachments",
    "wrong_key",
    "tampered_ciphertext",
    "tampered_tag",
    "tampered_nonce",
    "truncated",
    "bad_version",
    "file_name_as_path",
    "file_name_as_message",
    "padded_base64",
];

/// The keys a vector file may have, in the order they are written.
const KEYS: &[&str] = &[
    "name",
    "expect",
    "error",
    "room_key",
    "room_id",
    "event",
    "sender",
    "field",
    "content_key",
    "aad",
    "nonce",
    "plaintext",
    "sealed",
];

/// One vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomVector {
    /// The case name (the file name without `.txt`).
    pub name: String,
    /// Comment lines, without `# `.
    pub comments: Vec<String>,
    /// The room key.
    pub room_key: [u8; 32],
    /// The room id the reader opens under.
    pub room_id: String,
    /// The event, sender and field the reader opens under.
    pub event: String,
    /// See `event`.
    pub sender: String,
    /// See `event`.
    pub field: String,
    /// What opening must give.
    pub expect: Expect,
    /// The sealed payload's text form.
    pub sealed: String,
}

/// The outcome a vector expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Opens to `plaintext`; and sealing `plaintext` with `nonce` gives `sealed` exactly.
    /// `content_key` and `aad` are the intermediate values, for implementers.
    Success {
        /// The HKDF output.
        content_key: [u8; 32],
        /// The additional data.
        aad: Vec<u8>,
        /// The nonce.
        nonce: [u8; NONCE_LEN],
        /// The plaintext.
        plaintext: Vec<u8>,
    },
    /// Opening fails with this code (`room_auth_failed`, `invalid_sealed_payload`).
    Failure(String),
}

/// A vector file that cannot be read, or an implementation that disagrees with one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorError {
    /// The file is not a well-formed vector.
    #[error("invalid vector: {0}")]
    Invalid(String),
    /// The implementation gave another result.
    #[error("{name}: {what}")]
    Mismatch {
        /// The case.
        name: String,
        /// What disagreed.
        what: String,
    },
}

impl RoomVector {
    /// Parses the text form (FORMAT.md: `key: value` lines, `#` comments, unknown keys
    /// are an error).
    pub fn parse(text: &str) -> Result<Self, VectorError> {
        let bad = |why: String| VectorError::Invalid(why);
        let mut comments = Vec::new();
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for line in text.lines() {
            if let Some(c) = line.strip_prefix('#') {
                comments.push(c.strip_prefix(' ').unwrap_or(c).to_owned());
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
                .ok_or_else(|| bad(format!("not `key: value`: {line:?}")))?;
            if !KEYS.contains(&key) {
                return Err(bad(format!("unknown key {key:?}")));
            }
            if fields.insert(key, value).is_some() {
                return Err(bad(format!("duplicate key {key:?}")));
            }
        }
        let get = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| bad(format!("missing {key}")))
        };
        let expect = match get("expect")? {
            "success" => Expect::Success {
                content_key: hex_array(get("content_key")?)?,
                aad: hex(get("aad")?)?,
                nonce: hex_array(get("nonce")?)?,
                plaintext: hex(get("plaintext")?)?,
            },
            "failure" => Expect::Failure(get("error")?.to_owned()),
            other => {
                return Err(bad(format!(
                    "expect must be success or failure, not {other:?}"
                )));
            }
        };
        Ok(Self {
            name: get("name")?.to_owned(),
            comments,
            room_key: hex_array(get("room_key")?)?,
            room_id: get("room_id")?.to_owned(),
            event: get("event")?.to_owned(),
            sender: get("sender")?.to_owned(),
            field: get("field")?.to_owned(),
            expect,
            sealed: get("sealed")?.to_owned(),
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.comments {
            let _ = writeln!(out, "# {c}");
        }
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(out, "{k}: {v}");
        };
        line("name", &self.name);
        match &self.expect {
            Expect::Success { .. } => line("expect", "success"),
            Expect::Failure(code) => {
                line("expect", "failure");
                line("error", code);
            }
        }
        line("room_key", &to_hex(&self.room_key));
        line("room_id", &self.room_id);
        line("event", &self.event);
        line("sender", &self.sender);
        line("field", &self.field);
        if let Expect::Success {
            content_key,
            aad,
            nonce,
            plaintext,
        } = &self.expect
        {
            line("content_key", &to_hex(content_key));
            line("aad", &to_hex(aad));
            line("nonce", &to_hex(nonce));
            line("plaintext", &to_hex(plaintext));
        }
        line("sealed", &self.sealed);
        out
    }
}

/// Runs one vector file through this crate's implementation: the case's name, or what
/// disagreed.
pub fn check(text: &str) -> Result<String, VectorError> {
    let v = RoomVector::parse(text)?;
    let mismatch = |what: String| VectorError::Mismatch {
        name: v.name.clone(),
        what,
    };
    let cipher = RoomKey::from_bytes(v.room_key).cipher(&v.room_id);
    let ctx = SealContext {
        event: &v.event,
        sender: &v.sender,
        field: &v.field,
    };
    let opened = cipher.open(&ctx, &v.sealed);
    match &v.expect {
        Expect::Success {
            aad,
            nonce,
            plaintext,
            ..
        } => {
            if cipher.aad(&ctx) != *aad {
                return Err(mismatch("the AAD differs".into()));
            }
            match opened {
                Ok(p) if p == *plaintext => {}
                Ok(_) => return Err(mismatch("opened to another plaintext".into())),
                Err(e) => return Err(mismatch(format!("failed to open: {}", e.code()))),
            }
            if cipher.seal(&ctx, plaintext, *nonce) != v.sealed {
                return Err(mismatch("sealing gives other bytes".into()));
            }
        }
        Expect::Failure(code) => match opened {
            Ok(_) => return Err(mismatch(format!("opened, but must fail with {code}"))),
            Err(e) if e.code() == code => {}
            Err(e) => return Err(mismatch(format!("failed with {}, not {code}", e.code()))),
        },
    }
    Ok(v.name)
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn hex(text: &str) -> Result<Vec<u8>, VectorError> {
    if !text.len().is_multiple_of(2) {
        return Err(VectorError::Invalid(format!("odd-length hex {text:.16}")));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .map_err(|_| VectorError::Invalid(format!("not hex: {text:.16}")))
        })
        .collect()
}

fn hex_array<const N: usize>(text: &str) -> Result<[u8; N], VectorError> {
    hex(text)?
        .try_into()
        .map_err(|_| VectorError::Invalid(format!("expected {N} bytes of hex")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_refuses_unknown_and_missing_keys() {
        assert!(matches!(
            RoomVector::parse("name: x\nbogus: 1\n"),
            Err(VectorError::Invalid(_))
        ));
        assert!(matches!(
            RoomVector::parse("name: x\nexpect: failure\n"),
            Err(VectorError::Invalid(_))
        ));
        assert!(matches!(
            RoomVector::parse("name: x\nname: y\n"),
            Err(VectorError::Invalid(_))
        ));
    }
}
