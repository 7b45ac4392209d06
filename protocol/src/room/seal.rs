//! Sealed room content (docs/FORMAT.md, "Room payloads"): what keeps chat text,
//! attachments and lock reasons unreadable to the server that stores and relays them.
//!
//! A room has a 256-bit room key made by its creator's browser and carried only in the
//! room link's fragment (`/r/<roomId>#k1.<key>`), which browsers never send to a server.
//! Each payload is sealed with AES-256-GCM under a key derived from it with HKDF-SHA256
//! (salt: the room id, so one key never serves two rooms), with a fresh random 96-bit
//! nonce, and with additional data that binds it to its room, the event that carries it,
//! its sender and its field: the server cannot move a sealed text to another room, make
//! it a lock reason, or attribute it to another member, without opening failing.
//!
//! Random nonces are safe here because payloads are small and few: the NIST bound of
//! 2^32 messages per key under random 96-bit nonces is far above what a room carries
//! (at the default rate limit, one member would need 270 years to send that many).
//!
//! Text form: base64url without padding of `version (0x01) || nonce (12) || ciphertext ||
//! tag (16)`. The server checks only that form and the length ([`check_sealed`]).

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;

use super::ids::valid_room_id;
use crate::format::{FileKey, encode_fragment, parse_fragment};

/// The version byte every sealed payload starts with.
pub const SEALED_VERSION: u8 = 0x01;
/// Nonce length.
pub const NONCE_LEN: usize = 12;
/// Tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed payload adds to its plaintext: version, nonce, tag.
pub const SEALED_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// HKDF `info` of the content key.
const CONTENT_INFO: &[u8] = b"sealdrop/room/v1/content";
/// The label every AAD starts with (domain separation from every other use of AES-GCM
/// in sealdrop).
const AAD_LABEL: &[u8] = b"sealdrop/room/v1\0";

/// The room key: 32 random bytes that live only in browsers and in room links.
/// `Debug` prints no key material.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomKey([u8; 32]);

impl std::fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomKey(..)")
    }
}

impl RoomKey {
    /// Wraps 32 bytes from the caller's CSPRNG (or from a link).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The cipher for `room_id`'s payloads.
    pub fn cipher(&self, room_id: &str) -> RoomCipher {
        let hkdf = Hkdf::<Sha256>::new(Some(room_id.as_bytes()), &self.0);
        let mut okm = [0u8; 32];
        if hkdf.expand(CONTENT_INFO, &mut okm).is_err() {
            unreachable!("HKDF-SHA256 can always expand to 32 bytes");
        }
        RoomCipher {
            aead: Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm)),
            room_id: room_id.to_owned(),
        }
    }
}

/// Where a payload belongs; all of it goes into the AAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    /// The event the payload travels in, as receivers see it: `new-message`,
    /// `room-locked`.
    pub event: &'a str,
    /// The sender's user id (the token's `sub`), as the server reports it.
    pub sender: &'a str,
    /// Which field: `text`, `attachment:<index>`, `reason`.
    pub field: &'a str,
}

impl SealContext<'_> {
    /// The field name of attachment `index` (0-based): binding the position means
    /// attachments cannot be reordered.
    pub fn attachment_field(index: usize) -> String {
        format!("attachment:{index}")
    }
}

/// Why a sealed payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Not base64url, shorter than the overhead, or an unknown version byte.
    #[error("not a sealed payload: {0}")]
    Malformed(&'static str),
    /// The tag did not verify: another key, room, event, sender or field, or altered.
    #[error("the sealed payload did not authenticate")]
    AuthFailed,
    /// The room link is not `<origin>/r/<roomId>#k1.<key>`.
    #[error("invalid room link: {0}")]
    InvalidLink(&'static str),
}

impl SealError {
    /// The stable code (docs/FORMAT.md, Room payloads).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "invalid_sealed_payload",
            Self::AuthFailed => "room_auth_failed",
            Self::InvalidLink(_) => "invalid_link",
        }
    }
}

/// A room's content key, ready to seal and open.
#[derive(Clone)]
pub struct RoomCipher {
    aead: Aes256Gcm,
    room_id: String,
}

impl std::fmt::Debug for RoomCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomCipher")
            .field("room_id", &self.room_id)
            .finish_non_exhaustive()
    }
}

impl RoomCipher {
    /// The additional data: the label, then the room id, event, sender and field, each
    /// as a 2-byte big-endian length and its UTF-8 bytes (unambiguous: no two different
    /// contexts give the same bytes).
    pub fn aad(&self, ctx: &SealContext<'_>) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        for part in [self.room_id.as_str(), ctx.event, ctx.sender, ctx.field] {
            // Every part is bounded far below 64 KiB by the protocol's limits.
            let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    /// Seals `plaintext` with `nonce` (12 fresh random bytes: never reuse one) into its
    /// text form.
    pub fn seal(&self, ctx: &SealContext<'_>, plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> String {
        let aad = self.aad(ctx);
        let payload = Payload {
            msg: plaintext,
            aad: &aad,
        };
        // AES-GCM fails only for plaintexts over 64 GiB.
        let sealed = match self.aead.encrypt(&Nonce::from(nonce), payload) {
            Ok(sealed) => sealed,
            Err(_) => unreachable!("a room payload is far below AES-GCM's size limit"),
        };
        let mut bytes = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
        bytes.push(SEALED_VERSION);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Opens a sealed payload; no plaintext unless the tag verifies.
    pub fn open(&self, ctx: &SealContext<'_>, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = decode_sealed(sealed)?;
        let aad = self.aad(ctx);
        let (nonce, body) = bytes[1..].split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| SealError::Malformed("shorter than a nonce"))?;
        self.aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::AuthFailed)
    }
}

/// The bytes of a sealed payload's text form, checked for form (not authenticity).
fn decode_sealed(sealed: &str) -> Result<Vec<u8>, SealError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| SealError::Malformed("not base64url without padding"))?;
    if bytes.len() < SEALED_OVERHEAD {
        return Err(SealError::Malformed("shorter than version, nonce and tag"));
    }
    if bytes[0] != SEALED_VERSION {
        return Err(SealError::Malformed("unknown version byte"));
    }
    Ok(bytes)
}

/// The server's check of a sealed field: the text form is well made and at most
/// `max_chars` long. It cannot check more: it has no key.
pub fn check_sealed(sealed: &str, max_chars: usize) -> Result<(), String> {
    if sealed.len() > max_chars {
        return Err(format!(
            "is {} characters, over the limit of {max_chars}",
            sealed.len()
        ));
    }
    decode_sealed(sealed).map(|_| ()).map_err(|e| match e {
        SealError::Malformed(why) => format!("is not a sealed payload ({why})"),
        other => other.to_string(),
    })
}

/// A parsed room link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLink {
    /// `scheme://host[:port]`, where the room's API is.
    pub origin: String,
    /// The room id.
    pub room_id: String,
    /// The room key from the fragment.
    pub key: RoomKey,
}

/// `<origin>/r/<roomId>#k1.<key>`.
pub fn room_link(origin: &str, room_id: &str, key: &RoomKey) -> String {
    let fragment = encode_fragment(&FileKey::from_bytes(*key.as_bytes()));
    format!("{}/r/{room_id}#{fragment}", origin.trim_end_matches('/'))
}

/// Parses `<origin>/r/<roomId>#k1.<key>`: an `http`/`https` origin, the path exactly
/// `/r/<roomId>` (a trailing `/` allowed), no query, and the key in the same canonical
/// `k1.` form as file links (FORMAT.md §8).
pub fn parse_room_link(link: &str) -> Result<RoomLink, SealError> {
    let (url, fragment) = link
        .split_once('#')
        .ok_or(SealError::InvalidLink("no #k1. fragment with the room key"))?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(SealError::InvalidLink("not an http or https URL"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or(SealError::InvalidLink("no /r/<roomId> path"))?;
    if host.is_empty() {
        return Err(SealError::InvalidLink("no host"));
    }
    if path.contains('?') {
        return Err(SealError::InvalidLink("a room link has no query"));
    }
    let room_id = path
        .strip_prefix("r/")
        .map(|id| id.strip_suffix('/').unwrap_or(id))
        .ok_or(SealError::InvalidLink("the path is not /r/<roomId>"))?;
    if !valid_room_id(room_id) {
        return Err(SealError::InvalidLink(
            "the room id is not 1 to 64 base64url characters",
        ));
    }
    let key = parse_fragment(fragment).map_err(|_| {
        SealError::InvalidLink("the fragment is not k1. and a canonical 32-byte key")
    })?;
    Ok(RoomLink {
        origin: url[..url.len() - path.len() - 1].to_owned(),
        room_id: room_id.to_owned(),
        key: RoomKey::from_bytes(*key.as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> RoomKey {
        RoomKey::from_bytes(core::array::from_fn(|i| i as u8))
    }

    const CTX: SealContext<'static> = SealContext {
        event: "new-message",
        sender: "alice",
        field: "text",
    };

    #[test]
    fn seal_open_round_trip_and_form() {
        let cipher = key().cipher("r1");
        let sealed = cipher.seal(&CTX, b"hello", [7; 12]);
        // 1 + 12 + 5 + 16 = 34 bytes -> 46 base64url characters.
        assert_eq!(sealed.len(), 46);
        assert_eq!(cipher.open(&CTX, &sealed).unwrap(), b"hello");
        assert!(check_sealed(&sealed, 46).is_ok());
        assert!(
            check_sealed(&sealed, 45)
                .unwrap_err()
                .contains("over the limit")
        );
        let empty = cipher.seal(&CTX, b"", [0; 12]);
        assert_eq!(cipher.open(&CTX, &empty).unwrap(), b"");
    }

    #[test]
    fn every_context_part_is_bound() {
        let sealed = key().cipher("r1").seal(&CTX, b"hello", [7; 12]);
        let other_room = key().cipher("r2");
        assert_eq!(other_room.open(&CTX, &sealed), Err(SealError::AuthFailed));
        let cipher = key().cipher("r1");
        for ctx in [
            SealContext {
                event: "room-locked",
                ..CTX
            },
            SealContext {
                sender: "mallory",
                ..CTX
            },
            SealContext {
                field: "reason",
                ..CTX
            },
        ] {
            assert_eq!(
                cipher.open(&ctx, &sealed),
                Err(SealError::AuthFailed),
                "{ctx:?}"
            );
        }
        let other_key = RoomKey::from_bytes([9; 32]).cipher("r1");
        assert_eq!(other_key.open(&CTX, &sealed), Err(SealError::AuthFailed));
    }

    #[test]
    fn the_aad_is_unambiguous() {
        let cipher = key().cipher("r1");
        let a = cipher.aad(&SealContext {
            event: "ab",
            sender: "c",
            field: "text",
        });
        let b = cipher.aad(&SealContext {
            event: "a",
            sender: "bc",
            field: "text",
        });
        assert_ne!(a, b);
    }

    #[test]
    fn every_flipped_byte_fails() {
        let cipher = key().cipher("r1");
        let sealed = cipher.seal(&CTX, b"hello world", [3; 12]);
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            let text = URL_SAFE_NO_PAD.encode(&b);
            let err = cipher.open(&CTX, &text).unwrap_err();
            let expected = if i == 0 {
                "invalid_sealed_payload"
            } else {
                "room_auth_failed"
            };
            assert_eq!(err.code(), expected, "byte {i}");
        }
    }

    #[test]
    fn malformed_payloads() {
        let cipher = key().cipher("r1");
        for bad in [
            "",
            "!!!!",
            "AQ",
            &URL_SAFE_NO_PAD.encode([1u8; 28]),
            "AAAA=",
        ] {
            assert!(
                matches!(cipher.open(&CTX, bad), Err(SealError::Malformed(_))),
                "{bad}"
            );
            assert!(check_sealed(bad, 1000).is_err());
        }
    }

    #[test]
    fn links() {
        let link = room_link("http://127.0.0.1:8787/", "r1", &key());
        assert!(link.starts_with("http://127.0.0.1:8787/r/r1#k1."));
        let parsed = parse_room_link(&link).unwrap();
        assert_eq!(parsed.origin, "http://127.0.0.1:8787");
        assert_eq!(parsed.room_id, "r1");
        assert_eq!(parsed.key, key());
        let with_slash = link.replace("/r/r1#", "/r/r1/#");
        assert_eq!(parse_room_link(&with_slash).unwrap().room_id, "r1");
        let fragment = link.split_once('#').unwrap().1;
        for bad in [
            "http://h/r/r1".to_owned(),
            format!("ftp://h/r/r1#{fragment}"),
            format!("http:///r/r1#{fragment}"),
            format!("http://h/f/r1#{fragment}"),
            format!("http://h/r/r1?x=1#{fragment}"),
            format!("http://h/r/a.b#{fragment}"),
            format!("http://h/r/#{fragment}"),
            format!("http://h/x/r/r1#{fragment}"),
            "http://h/r/r1#k1.short".to_owned(),
            format!("http://h/r/r1#k2.{}", &fragment[3..]),
        ] {
            assert_eq!(
                parse_room_link(&bad).unwrap_err().code(),
                "invalid_link",
                "{bad}"
            );
        }
    }
}
