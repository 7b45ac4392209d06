//! The link fragment that carries the file key (§8).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{FILE_KEY_LEN, FileKey, FormatError};

/// Prefix of the fragment form that carries the file key in the clear. Other prefixes are
/// reserved for later forms (a password-wrapped key, ...).
pub const FRAGMENT_PREFIX: &str = "k1.";

/// Length of the base64url (no padding) encoding of a file key.
const ENCODED_KEY_LEN: usize = 43;

/// The fragment of a download link, without its `#`: `k1.` and the key in base64url with
/// no padding. Browsers never send the fragment to a server.
pub fn encode_fragment(key: &FileKey) -> String {
    let mut out = String::with_capacity(FRAGMENT_PREFIX.len() + ENCODED_KEY_LEN);
    out.push_str(FRAGMENT_PREFIX);
    URL_SAFE_NO_PAD.encode_string(key.as_bytes(), &mut out);
    out
}

/// Reads the file key from a link fragment, with or without its leading `#`.
///
/// Only the canonical encoding is accepted (no padding, no standard-alphabet characters,
/// zero trailing bits), so one key has exactly one link.
pub fn parse_fragment(fragment: &str) -> Result<FileKey, FormatError> {
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    let encoded = fragment
        .strip_prefix(FRAGMENT_PREFIX)
        .ok_or(FormatError::InvalidLink(
            "the fragment does not start with k1.",
        ))?;
    if encoded.len() != ENCODED_KEY_LEN {
        return Err(FormatError::InvalidLink(
            "a k1 key is 43 base64url characters",
        ));
    }
    let mut key = [0u8; FILE_KEY_LEN];
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut key) {
        Ok(FILE_KEY_LEN) => Ok(FileKey::from_bytes(key)),
        _ => Err(FormatError::InvalidLink(
            "the key is not canonical base64url",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_with_and_without_hash() {
        let key = FileKey::from_bytes(core::array::from_fn(|i| (i * 8 + 3) as u8));
        let fragment = encode_fragment(&key);
        assert_eq!(fragment.len(), 46);
        assert!(fragment.starts_with("k1."));
        assert_eq!(parse_fragment(&fragment).unwrap(), key);
        assert_eq!(parse_fragment(&format!("#{fragment}")).unwrap(), key);
        let all_ones = FileKey::from_bytes([0xff; 32]);
        assert_eq!(
            encode_fragment(&all_ones),
            format!("k1.{}8", "_".repeat(42))
        );
    }

    #[test]
    fn rejects_everything_else() {
        let good = encode_fragment(&FileKey::from_bytes([0xfb; 32]));
        let body = &good[3..];
        for bad in [
            String::new(),
            "#".into(),
            "k1.".into(),
            format!("k2.{body}"),
            format!("K1.{body}"),
            format!("##{good}"),
            format!("{good}="),
            format!("{good}A"),
            good[..45].to_string(),
            format!("k1.{}", body.replace('-', "+").replace('_', "/")),
            format!(" {good}"),
            // Same 32 bytes but non-zero trailing bits: not canonical.
            format!("k1.{}9", "_".repeat(42)),
            format!("k1.{}", "!".repeat(43)),
        ] {
            assert_eq!(
                parse_fragment(&bad).unwrap_err().code(),
                "invalid_link",
                "{bad:?}"
            );
        }
    }
}
