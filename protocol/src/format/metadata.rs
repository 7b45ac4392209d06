//! The sealed file name and MIME type (§7).

use aes_gcm::{AeadInOut, Nonce, Tag, aead::consts::U12};
use serde::{Deserialize, Serialize};

use super::{FormatError, Header, MetadataKey, TAG_LEN};

/// Length of the metadata nonce.
pub const METADATA_NONCE_LEN: usize = 12;
/// Longest file name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest MIME type, in bytes.
pub const MAX_TYPE_LEN: usize = 255;
/// The padded JSON is a multiple of this many bytes, so the stored length reveals the
/// name's length only to within this.
pub const METADATA_PADDING: usize = 64;
/// Longest padded JSON plaintext.
pub const MAX_METADATA_PLAINTEXT: usize = 2048;
/// Shortest sealed metadata: nonce and tag around an empty plaintext.
pub const MIN_SEALED_METADATA: usize = METADATA_NONCE_LEN + TAG_LEN;
/// Longest sealed metadata (2,076 bytes).
pub const MAX_SEALED_METADATA: usize = MIN_SEALED_METADATA + MAX_METADATA_PLAINTEXT;

/// What the server must not learn about a file besides its size: its name and MIME type.
///
/// Serialized as exactly `{"name":...,"type":...}`: field order is declaration order, and
/// serde_json escapes strings as JavaScript's `JSON.stringify` does (§7), so both
/// implementations seal the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMetadata {
    /// The file name, at most [`MAX_NAME_LEN`] bytes of UTF-8.
    pub name: String,
    /// The MIME type (`type` in the JSON), at most [`MAX_TYPE_LEN`] bytes.
    #[serde(rename = "type")]
    pub mime: String,
}

/// Seals `metadata` under the metadata key: `nonce || AES-256-GCM(padded JSON)`, with the
/// header as AAD.
///
/// `nonce` must be 12 fresh random bytes. The metadata key is unique to the file (its salt
/// is), so a nonce could only repeat if the same file's metadata were sealed twice. Refuses
/// (`metadata_too_large`) metadata over a limit rather than cutting it.
pub fn seal_metadata(
    key: &MetadataKey,
    header: &Header,
    nonce: [u8; METADATA_NONCE_LEN],
    metadata: &FileMetadata,
) -> Result<Vec<u8>, FormatError> {
    let mut buffer = metadata_plaintext(metadata)?;
    let tag = key
        .cipher()
        .encrypt_inout_detached(
            &Nonce::<U12>::from(nonce),
            &header.encode(),
            buffer.as_mut_slice().into(),
        )
        .map_err(|_| FormatError::MetadataTooLarge("too long for AES-GCM"))?;
    let mut out = Vec::with_capacity(METADATA_NONCE_LEN + buffer.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buffer);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens sealed metadata, checking in the order of §7: `invalid_metadata` for an impossible
/// length, `metadata_auth_failed` for a failed tag, `invalid_metadata` for a plaintext that
/// is not exactly the canonical padded JSON (what [`seal_metadata`] writes for the same
/// name and type) of a name and type within the limits.
///
/// The key must come from [`FileKey::derive`](super::FileKey::derive), which has checked the
/// header's commitment.
pub fn open_metadata(
    key: &MetadataKey,
    header: &Header,
    sealed: &[u8],
) -> Result<FileMetadata, FormatError> {
    let (nonce, rest) = split_sealed_metadata(sealed)?;
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let tag = Tag::try_from(tag).map_err(|_| FormatError::MetadataAuthFailed)?;
    let mut buffer = ciphertext.to_vec();
    key.cipher()
        .decrypt_inout_detached(
            &Nonce::<U12>::from(nonce),
            &header.encode(),
            buffer.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| FormatError::MetadataAuthFailed)?;
    parse_metadata_plaintext(&buffer)
}

/// The first check of [`open_metadata`], for a backend of its own: `invalid_metadata` for
/// an impossible length, else the nonce and the rest (ciphertext then tag, at least 16
/// bytes). If the rest fails to authenticate under the metadata key, the header as AAD
/// and that nonce, the error is `metadata_auth_failed`.
pub fn split_sealed_metadata(
    sealed: &[u8],
) -> Result<([u8; METADATA_NONCE_LEN], &[u8]), FormatError> {
    if !(MIN_SEALED_METADATA..=MAX_SEALED_METADATA).contains(&sealed.len()) {
        return Err(FormatError::InvalidMetadata(
            "sealed metadata is 28 to 2,076 bytes",
        ));
    }
    let (nonce, rest) = sealed.split_at(METADATA_NONCE_LEN);
    let nonce = nonce
        .try_into()
        .map_err(|_| FormatError::InvalidMetadata("no nonce"))?;
    Ok((nonce, rest))
}

/// The last check of [`open_metadata`], on the authenticated plaintext, for a backend of
/// its own: `invalid_metadata` unless it is exactly the canonical padded JSON (what
/// [`metadata_plaintext`] gives for the same name and type) of a name and type within the
/// limits.
pub fn parse_metadata_plaintext(plaintext: &[u8]) -> Result<FileMetadata, FormatError> {
    let metadata: FileMetadata = serde_json::from_slice(plaintext)
        .map_err(|_| FormatError::InvalidMetadata("not a {\"name\",\"type\"} JSON object"))?;
    // A reader enforces the writer's limits too, on the decoded strings' UTF-8 bytes.
    if metadata.name.len() > MAX_NAME_LEN || metadata.mime.len() > MAX_TYPE_LEN {
        return Err(FormatError::InvalidMetadata(
            "the name is over 1,024 bytes or the type over 255",
        ));
    }
    // serde_json accepts any key order, whitespace, escapes and padding; §7 accepts only
    // the exact form a writer seals, so one metadata has exactly one plaintext.
    match metadata_plaintext(&metadata) {
        Ok(canonical) if canonical == plaintext => Ok(metadata),
        _ => Err(FormatError::InvalidMetadata(
            "not in the exact JSON form and minimal padding of §7",
        )),
    }
}

/// `canonical(name, type)` of §7, the plaintext [`seal_metadata`] encrypts: the JSON of
/// `metadata` followed by spaces up to the smallest multiple of 64 bytes that holds it,
/// within the limits (`metadata_too_large`).
pub fn metadata_plaintext(metadata: &FileMetadata) -> Result<Vec<u8>, FormatError> {
    if metadata.name.len() > MAX_NAME_LEN {
        return Err(FormatError::MetadataTooLarge(
            "the name is over 1,024 bytes",
        ));
    }
    if metadata.mime.len() > MAX_TYPE_LEN {
        return Err(FormatError::MetadataTooLarge("the type is over 255 bytes"));
    }
    let mut json = serde_json::to_vec(metadata)
        .map_err(|_| FormatError::InvalidMetadata("not serializable"))?;
    let padded = json.len().next_multiple_of(METADATA_PADDING);
    if padded > MAX_METADATA_PLAINTEXT {
        // Escapes can make the JSON much longer than the name (`\u0000` is six bytes).
        return Err(FormatError::MetadataTooLarge(
            "the padded JSON is over 2,048 bytes",
        ));
    }
    json.resize(padded, b' ');
    Ok(json)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::format::FileKey;

    fn meta(name: &str, mime: &str) -> FileMetadata {
        FileMetadata {
            name: name.into(),
            mime: mime.into(),
        }
    }

    fn setup() -> (MetadataKey, Header) {
        let key = FileKey::from_bytes([1; 32]);
        let header = Header::new(&key, 64, [2; 32]).unwrap();
        (key.derive(&header).unwrap().metadata, header)
    }

    #[test]
    fn exact_json_and_padding() {
        let json = metadata_plaintext(&meta("résumé final.pdf", "application/pdf")).unwrap();
        let text = "{\"name\":\"résumé final.pdf\",\"type\":\"application/pdf\"}";
        assert_eq!(&json[..text.len()], text.as_bytes());
        assert_eq!(json.len(), 64);
        assert!(json[text.len()..].iter().all(|&b| b == b' '));
        // Escapes as JSON.stringify: short forms, \u00xx in lowercase, '/' and DEL literal.
        let json = metadata_plaintext(&meta("a\"b\\c\n\t\u{1}\u{1f}\u{7f}é/😀", "")).unwrap();
        let text = r#"{"name":"a\"b\\c\n\t\u0001\u001f"#.to_owned() + "\u{7f}é/😀\",\"type\":\"\"}";
        assert_eq!(&json[..text.len()], text.as_bytes());
    }

    #[test]
    fn padding_boundaries() {
        // {"name":"","type":""} is 21 bytes; a 43-byte name makes exactly 64.
        for (name_len, padded) in [(0, 64), (43, 64), (44, 128), (107, 128), (108, 192)] {
            let json = metadata_plaintext(&meta(&"n".repeat(name_len), "")).unwrap();
            assert_eq!(json.len(), padded, "name of {name_len} bytes");
        }
    }

    #[test]
    fn limits() {
        let (key, header) = setup();
        let seal = |m: &FileMetadata| seal_metadata(&key, &header, [0; 12], m);
        let max = seal(&meta(&"n".repeat(MAX_NAME_LEN), &"t".repeat(MAX_TYPE_LEN))).unwrap();
        assert_eq!(max.len(), 12 + 1344 + 16);
        for m in [
            meta(&"n".repeat(MAX_NAME_LEN + 1), ""),
            meta("", &"t".repeat(MAX_TYPE_LEN + 1)),
            meta(&"\u{0}".repeat(400), ""),
        ] {
            assert_eq!(seal(&m).unwrap_err().code(), "metadata_too_large");
        }
        // 1,024 bytes of two-byte escapes (\") plus 255 bytes of type: 2,048 + change.
        let big = meta(&"\"".repeat(1024), &"t".repeat(255));
        assert_eq!(seal(&big).unwrap_err().code(), "metadata_too_large");
    }

    #[test]
    fn round_trip_and_failures() {
        let (key, header) = setup();
        let m = meta("📦 archive.tar.gz", "application/gzip");
        let sealed = seal_metadata(&key, &header, [9; 12], &m).unwrap();
        assert_eq!(&sealed[..12], &[9; 12]);
        assert_eq!(sealed.len(), 12 + 64 + 16);
        assert_eq!(open_metadata(&key, &header, &sealed).unwrap(), m);

        let code = |s: &[u8]| open_metadata(&key, &header, s).unwrap_err().code();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(code(&bad), "metadata_auth_failed", "byte {i}");
        }
        let other = Header::new(&FileKey::from_bytes([1; 32]), 65, [2; 32]).unwrap();
        assert_eq!(
            open_metadata(&key, &other, &sealed).unwrap_err().code(),
            "metadata_auth_failed"
        );
        assert_eq!(code(&sealed[..27]), "invalid_metadata");
        assert_eq!(code(&[0; 2077]), "invalid_metadata");
        assert_eq!(code(&[0; 28]), "metadata_auth_failed");
    }

    #[test]
    fn authenticated_but_malformed_json_is_invalid_metadata() {
        let (key, header) = setup();
        let seal_raw = |plaintext: &[u8]| {
            let mut buffer = plaintext.to_vec();
            let tag = key
                .cipher()
                .encrypt_inout_detached(
                    &Nonce::<U12>::from([0; 12]),
                    &header.encode(),
                    buffer.as_mut_slice().into(),
                )
                .unwrap();
            [&[0; 12][..], &buffer, &tag].concat()
        };
        for bad in [
            &b""[..],
            b"[]",
            b"{\"name\":\"a\"}",
            b"{\"name\":\"a\",\"type\":\"b\",\"size\":1}",
            b"{\"name\":1,\"type\":\"b\"}",
            b"{\"name\":\"\xff\",\"type\":\"b\"}",
            b"{\"name\":\"a\",\"type\":\"b\"} x",
        ] {
            let err = open_metadata(&key, &header, &seal_raw(bad)).unwrap_err();
            assert_eq!(
                err.code(),
                "invalid_metadata",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Valid JSON of the right object, but not the canonical padded form: refused.
        let canonical = metadata_plaintext(&meta("a/é", "b")).unwrap();
        let mut too_much_padding = canonical.clone();
        too_much_padding.extend_from_slice(&[b' '; 64]);
        let mut tab_padding = canonical.clone();
        *tab_padding.last_mut().unwrap() = b'\t';
        // Each is 64 bytes of otherwise valid padded JSON, so only its one defect counts.
        let pad = |json: &str| {
            let mut bytes = json.as_bytes().to_vec();
            bytes.resize(64, b' ');
            bytes
        };
        let noncanonical: Vec<Vec<u8>> = vec![
            b"{\"name\":\"a\",\"type\":\"b\"}   ".to_vec(),
            b"{\"name\":\"a\",\"type\":\"b\"}".to_vec(),
            pad("{\"name\": \"a\",\"type\":\"b\"}"),
            pad("{\"type\":\"b\",\"name\":\"a\"}"),
            pad(" {\"name\":\"a\",\"type\":\"b\"}"),
            pad("{\"name\":\"\\u0061\",\"type\":\"b\"}"),
            pad("{\"name\":\"a\\/\",\"type\":\"b\"}"),
            too_much_padding,
            tab_padding,
        ];
        for bad in &noncanonical {
            let err = open_metadata(&key, &header, &seal_raw(bad)).unwrap_err();
            assert_eq!(
                err.code(),
                "invalid_metadata",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = open_metadata(&key, &header, &seal_raw(&canonical));
        assert_eq!(ok.unwrap(), meta("a/é", "b"));

        // Canonical in form but over a limit, counted in UTF-8 bytes of the decoded
        // strings: refused by the reader as by the writer.
        let json = |name: &str, mime: &str| {
            let mut bytes = serde_json::to_vec(&meta(name, mime)).unwrap();
            bytes.resize(bytes.len().next_multiple_of(64), b' ');
            bytes
        };
        let long_name = "n".repeat(1023) + "é";
        assert_eq!(long_name.chars().count(), 1024);
        for (bad, ok) in [
            (json(&long_name, ""), json(&"n".repeat(1024), "")),
            (json("", &"t".repeat(256)), json("", &"t".repeat(255))),
        ] {
            let err = open_metadata(&key, &header, &seal_raw(&bad)).unwrap_err();
            assert_eq!(err.code(), "invalid_metadata");
            assert!(open_metadata(&key, &header, &seal_raw(&ok)).is_ok());
        }
        // The limit is on the name, not on its escaped JSON.
        let quotes = meta(&("\"".repeat(500) + &"é".repeat(262)), "");
        assert_eq!(quotes.name.len(), 1024);
        let sealed = seal_metadata(&key, &header, [0; 12], &quotes).unwrap();
        assert_eq!(open_metadata(&key, &header, &sealed).unwrap(), quotes);
    }
}
