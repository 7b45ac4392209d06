//! Offline members' webhooks (docs/PROTOCOL.md, Offline members): the body a receiver
//! gets, how it is signed, and when a failed delivery is tried again.
//!
//! The body names the room, the member, the sender and the kind, never anything a
//! member sealed (message text, file names). It is signed like Stripe's and GitHub's
//! webhooks: HMAC-SHA256 under the shared secret over `<unix seconds>.<body bytes>`, so
//! a receiver can check both that the body is ours and that it is fresh (a captured
//! delivery replayed later carries an old timestamp, and changing it breaks the
//! signature).

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::files::{Notification, NotifyKind};
use super::time::iso8601;
use crate::backoff::Backoff;

/// The header with the signature: `v1=<64 hex digits>`.
pub const SIGNATURE_HEADER: &str = "x-sealdrop-signature";
/// The header with the signing time, unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-sealdrop-timestamp";
/// How far from its clock a receiver should accept a timestamp.
pub const TOLERANCE_SECS: u64 = 300;
/// The shortest webhook secret accepted (as for `JWT_SECRET`).
pub const MIN_SECRET_LEN: usize = 32;

/// The JSON a receiver gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(rename = "type")]
    kind_of_body: &'static str,
    room_id: &'a str,
    user_id: &'a str,
    kind: NotifyKind,
    sender_id: &'a str,
    sender_name: &'a str,
    seq: u64,
    at: String,
}

/// The body of the webhook about `n`.
pub fn body(n: &Notification) -> String {
    let body = Body {
        kind_of_body: "room.notification",
        room_id: &n.room_id,
        user_id: &n.user_id,
        kind: n.kind,
        sender_id: &n.sender_id,
        sender_name: &n.sender_name,
        seq: n.seq,
        at: iso8601(n.at),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// `v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &[u8], timestamp_s: u64, body: &str) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// What a receiver checks: the signature (in constant time) and that the timestamp is
/// within [`TOLERANCE_SECS`] of its clock `now_s`.
pub fn verify(secret: &[u8], timestamp_s: u64, body: &str, header: &str, now_s: u64) -> bool {
    if timestamp_s.abs_diff(now_s) > TOLERANCE_SECS {
        return false;
    }
    let Some(hex) = header.strip_prefix("v1=") else {
        return false;
    };
    let Some(claimed) = decode_hex(hex) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.verify_slice(&claimed).is_ok()
}

/// The retry schedule: after failed attempt `n` (1-based) wait `base_s * 2^(n-1)`
/// seconds, at most 10 minutes; `None` once `max_attempts` attempts have failed.
pub fn retry_delay_s(failed_attempts: u32, base_s: u32, max_attempts: u32) -> Option<u32> {
    let schedule = Backoff {
        base_ms: u64::from(base_s) * 1000,
        cap_ms: 600_000,
        max_attempts,
    };
    if !schedule.allows_another(failed_attempts) {
        return None;
    }
    let ms = schedule.ceiling_ms(failed_attempts.saturating_sub(1));
    Some(u32::try_from(ms / 1000).unwrap_or(u32::MAX))
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes a key of any length"),
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &[u8] = b"webhook test secret, 32 bytes long!";

    fn notification() -> Notification {
        Notification {
            room_id: "r1".into(),
            user_id: "bob".into(),
            kind: NotifyKind::Message,
            sender_id: "alice".into(),
            sender_name: "Alice".into(),
            seq: 42,
            at: 1_796_032_920_000,
        }
    }

    #[test]
    fn the_body_and_its_signature_match_an_independent_implementation() {
        let body = body(&notification());
        assert_eq!(
            body,
            r#"{"type":"room.notification","roomId":"r1","userId":"bob","kind":"message","senderId":"alice","senderName":"Alice","seq":42,"at":"2026-11-30T10:02:00.000Z"}"#
        );
        // Node: crypto.createHmac("sha256", secret).update("1795999320." + body).digest("hex")
        assert_eq!(
            signature(SECRET, 1_795_999_320, &body),
            "v1=e04455090bfb74cf87c4f3273b5d8ac2028554909e0193ddce98293c7a917fc8"
        );
    }

    #[test]
    fn receivers_refuse_forgeries_and_stale_deliveries() {
        let body = body(&notification());
        let sig = signature(SECRET, 1000, &body);
        assert!(verify(SECRET, 1000, &body, &sig, 1000 + TOLERANCE_SECS));
        assert!(!verify(SECRET, 1000, &body, &sig, 1001 + TOLERANCE_SECS));
        assert!(!verify(SECRET, 1001, &body, &sig, 1001));
        assert!(!verify(
            b"another secret of 32 bytes or more",
            1000,
            &body,
            &sig,
            1000
        ));
        assert!(!verify(
            SECRET,
            1000,
            &body.replace("bob", "eve"),
            &sig,
            1000
        ));
        assert!(!verify(
            SECRET,
            1000,
            &body,
            &sig.replace("v1=", "v2="),
            1000
        ));
        assert!(!verify(SECRET, 1000, &body, "v1=zz", 1000));
    }

    #[test]
    fn retries_back_off_and_stop() {
        let delays: Vec<Option<u32>> = (1..=6).map(|n| retry_delay_s(n, 10, 5)).collect();
        assert_eq!(delays, [Some(10), Some(20), Some(40), Some(80), None, None]);
        assert_eq!(retry_delay_s(10, 10, 20), Some(600), "at most 10 minutes");
    }
}
