//! The names a room deals in: room ids, user ids and names (from tokens), and the
//! connection ids the room gives its sockets.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Longest room id, in bytes.
pub const MAX_ROOM_ID_LEN: usize = 64;
/// Longest user id (`sub`), in bytes.
pub const MAX_USER_ID_LEN: usize = 128;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A room id: 1 to 64 characters of the base64url alphabet (`A-Z a-z 0-9 - _`), so it is
/// safe in a URL path and as a Durable Object name. Rooms made by the web app use 22
/// characters (128 random bits); tokens may name shorter ones (`r1`).
pub fn valid_room_id(id: &str) -> bool {
    (1..=MAX_ROOM_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A user id: 1 to [`MAX_USER_ID_LEN`] bytes, no control characters.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_USER_ID_LEN && !id.chars().any(char::is_control)
}

/// A display name: 1 to [`MAX_NAME_CHARS`] characters, not blank, no control characters.
pub fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && !name.trim().is_empty()
        && !name.chars().any(char::is_control)
}

/// One socket of a room. 64 random bits drawn by the shell when the socket is accepted;
/// it is the `sessionId` clients are told, and the key the shell finds the socket by.
/// Unique within a room (the shell redraws on the astronomically unlikely collision).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnId(pub u64);

impl ConnId {
    /// The `sessionId` text: the 8 bytes in base64url (11 characters).
    pub fn session_id(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_be_bytes())
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({})", self.session_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        assert!(valid_room_id("r1"));
        assert!(valid_room_id(&"a".repeat(64)));
        for bad in ["", "a/b", "a.b", "é", "a b", &"a".repeat(65)] {
            assert!(!valid_room_id(bad), "{bad}");
        }
        assert!(valid_user_id("alice@example.com"));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("a\nb"));
        assert!(!valid_user_id(&"a".repeat(129)));
        assert!(valid_name("Ünïcødé Ålice"));
        assert!(valid_name(&"é".repeat(64)));
        assert!(!valid_name(&"é".repeat(65)));
        assert!(!valid_name("   "));
        assert!(!valid_name("a\u{7}"));
        assert_eq!(ConnId(1).session_id(), "AAAAAAAAAAE");
    }
}
