//! The test vectors of docs/FORMAT.md §9 as data: their text form, and a runner that checks
//! any implementation of the format against them.
//!
//! Pure like the rest of the crate: it reads and writes text, never directories. The native
//! test (`protocol/tests/vectors.rs`) reads `tests/vectors/*.txt` and calls
//! [`check_files`]; a shell that wraps the format in another way (the wasm build, a JS
//! bridge) implements [`Subject`] over its own entry points and calls the same function,
//! for example with the files embedded by `include_str!`.

use core::fmt;
use std::collections::BTreeMap;

use thiserror::Error;

use crate::format::{
    FileKey, FileMetadata, FormatError, Header, METADATA_NONCE_LEN, open_metadata, open_stream,
    seal_metadata, seal_stream,
};

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

/// Every case §9 names. A vector directory must hold a file `<name>.txt` for each, so a
/// deleted file fails [`check_files`] rather than silently shrinking the suite.
pub const CASES: &[&str] = &[
    "empty",
    "one_byte",
    "one_record_exact",
    "one_record_plus_one",
    "three_records",
    "default_record_size_one_byte",
    "tampered_tag",
    "tampered_ciphertext",
    "swapped_records",
    "dropped_last_record",
    "extra_record",
    "wrong_header_salt",
    "wrong_header_record_size",
    "bad_magic",
    "unsupported_version",
    "empty_record_appended",
    "short_section",
    "short_last_record",
    "tampered_metadata",
    "noncanonical_metadata",
];

/// The error codes a vector may expect (§6, §7).
const CODES: &[&str] = &[
    "invalid_header",
    "unsupported_version",
    "invalid_length",
    "record_auth_failed",
    "truncated",
    "trailing_data",
    "metadata_auth_failed",
    "invalid_metadata",
];

/// One test vector: one file of `tests/vectors/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// The case name, which is also the file name without `.txt`.
    pub name: String,
    /// Comment lines (without their `# `), kept so a written vector explains itself.
    pub comments: Vec<String>,
    /// The file key `K`.
    pub file_key: [u8; 32],
    /// The header bytes; not necessarily a valid header (see `bad_magic`).
    pub header: Vec<u8>,
    /// The record section.
    pub ciphertext: Vec<u8>,
    /// What opening must give.
    pub expect: Expect,
    /// The optional metadata fields.
    pub metadata: Option<MetadataCase>,
}

/// The expected outcome of a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Everything opens; the plaintext is this, and sealing it gives the ciphertext back.
    Success {
        /// The file's plaintext.
        plaintext: Vec<u8>,
    },
    /// The first check to fail (header, then records, then metadata) fails with this.
    Failure(Failure),
}

/// An error as vectors name it: a code and, for record errors, the record index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stable code (`record_auth_failed`, ...).
    pub code: String,
    /// The failing record, where the error names one.
    pub record: Option<u64>,
}

impl From<FormatError> for Failure {
    fn from(error: FormatError) -> Self {
        Self {
            code: error.code().to_owned(),
            record: error.record(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record {
            Some(record) => write!(f, "{} (record {record})", self.code),
            None => f.write_str(&self.code),
        }
    }
}

/// The metadata fields of a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataCase {
    /// The nonce sealing used.
    pub nonce: [u8; METADATA_NONCE_LEN],
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub mime: String,
    /// The sealed metadata.
    pub sealed: Vec<u8>,
}

// ---------------------------------------------------------------------------------------
// The text form
// ---------------------------------------------------------------------------------------

/// Why a vector file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

const KEYS: &[&str] = &[
    "name",
    "expect",
    "error",
    "record",
    "file_key",
    "header",
    "plaintext",
    "ciphertext",
    "metadata_nonce",
    "metadata_name",
    "metadata_type",
    "metadata",
];

impl Vector {
    /// Reads the text form of §9. Unknown and repeated keys, and fields that do not belong
    /// to the expected outcome, are errors: a typo must not skip a check.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        // key -> (line number, value)
        let mut fields: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        let mut comments = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let number = number + 1;
            let err = |message: String| ParseError {
                line: number,
                message,
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(comment) = line.strip_prefix('#') {
                comments.push(comment.strip_prefix(' ').unwrap_or(comment).to_owned());
                continue;
            }
            if line.is_empty() {
                continue;
            }
            // `key: value`, or `key:` / `key: ` for an empty value.
            let (key, value) = match line.split_once(':') {
                Some((key, value)) if value.is_empty() => (key, value),
                Some((key, value)) => match value.strip_prefix(' ') {
                    Some(value) => (key, value),
                    None => return Err(err(format!("expected `{key}: value`"))),
                },
                None => return Err(err(format!("expected `key: value`, got {line:?}"))),
            };
            if !KEYS.contains(&key) {
                return Err(err(format!("unknown key {key:?}")));
            }
            if fields.insert(key, (number, value)).is_some() {
                return Err(err(format!("repeated key {key:?}")));
            }
        }

        let get = |key: &str| fields.get(key).copied();
        let missing = |key: &str| ParseError {
            line: 0,
            message: format!("missing {key:?}"),
        };
        let require = |key: &str| get(key).ok_or_else(|| missing(key));
        let forbid = |key: &str, why: &str| match get(key) {
            Some((line, _)) => Err(ParseError {
                line,
                message: format!("{key:?} {why}"),
            }),
            None => Ok(()),
        };

        let name = require("name")?.1.to_owned();
        let file_key = fixed::<32>(require("file_key")?)?;
        let header = hex_field(require("header")?)?;
        let ciphertext = hex_field(require("ciphertext")?)?;
        let expect = match require("expect")? {
            (_, "success") => {
                forbid("error", "is only for failures")?;
                forbid("record", "is only for failures")?;
                Expect::Success {
                    plaintext: hex_field(require("plaintext")?)?,
                }
            }
            (_, "failure") => {
                forbid("plaintext", "is only for successes")?;
                let (line, code) = require("error")?;
                if !CODES.contains(&code) {
                    return Err(ParseError {
                        line,
                        message: format!("unknown error code {code:?}"),
                    });
                }
                let record = match get("record") {
                    None => None,
                    Some((line, value)) => Some(value.parse().map_err(|_| ParseError {
                        line,
                        message: format!("record must be a decimal index, got {value:?}"),
                    })?),
                };
                Expect::Failure(Failure {
                    code: code.to_owned(),
                    record,
                })
            }
            (line, other) => {
                return Err(ParseError {
                    line,
                    message: format!("expect is success or failure, got {other:?}"),
                });
            }
        };
        let metadata_keys = [
            "metadata_nonce",
            "metadata_name",
            "metadata_type",
            "metadata",
        ];
        let metadata = match metadata_keys.map(get) {
            [None, None, None, None] => None,
            [Some(nonce), Some(name), Some(mime), Some(sealed)] => Some(MetadataCase {
                nonce: fixed::<METADATA_NONCE_LEN>(nonce)?,
                name: json_string(name)?,
                mime: json_string(mime)?,
                sealed: hex_field(sealed)?,
            }),
            _ => {
                return Err(ParseError {
                    line: 0,
                    message: "the four metadata fields go together".into(),
                });
            }
        };
        Ok(Self {
            name,
            comments,
            file_key,
            header,
            ciphertext,
            expect,
            metadata,
        })
    }

    /// Writes the text form of §9 (fields in the order §9 lists them), which
    /// [`parse`](Vector::parse) reads back to the same vector.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: &str| {
            out.push_str(key);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        };
        let mut comments = String::new();
        for comment in &self.comments {
            comments.push_str(if comment.is_empty() { "#" } else { "# " });
            comments.push_str(comment);
            comments.push('\n');
        }
        line("name", &self.name);
        match &self.expect {
            Expect::Success { .. } => line("expect", "success"),
            Expect::Failure(failure) => {
                line("expect", "failure");
                line("error", &failure.code);
                if let Some(record) = failure.record {
                    line("record", &record.to_string());
                }
            }
        }
        line("file_key", &hex(&self.file_key));
        line("header", &hex(&self.header));
        if let Expect::Success { plaintext } = &self.expect {
            line("plaintext", &hex(plaintext));
        }
        line("ciphertext", &hex(&self.ciphertext));
        if let Some(m) = &self.metadata {
            line("metadata_nonce", &hex(&m.nonce));
            line("metadata_name", &json_quote(&m.name));
            line("metadata_type", &json_quote(&m.mime));
            line("metadata", &hex(&m.sealed));
        }
        comments + &out
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn hex_field((line, value): (usize, &str)) -> Result<Vec<u8>, ParseError> {
    let err = |message: &str| ParseError {
        line,
        message: message.to_owned(),
    };
    if value.len() % 2 != 0 {
        return Err(err("odd number of hex digits"));
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .ok_or_else(|| err("not a hex digit"))
    };
    value
        .as_bytes()
        .chunks(2)
        .map(|pair| Ok((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

fn fixed<const N: usize>(field: (usize, &str)) -> Result<[u8; N], ParseError> {
    hex_field(field)?.try_into().map_err(|_| ParseError {
        line: field.0,
        message: format!("expected {N} bytes of hex"),
    })
}

fn json_string((line, value): (usize, &str)) -> Result<String, ParseError> {
    serde_json::from_str(value).map_err(|e| ParseError {
        line,
        message: format!("not a JSON string: {e}"),
    })
}

fn json_quote(value: &str) -> String {
    // Serializing a str cannot fail; fall back to something that fails to parse.
    serde_json::to_string(value).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------

/// An implementation of the format under test, through plain bytes, so that a shell can
/// plug in its own entry points. Errors are reported as [`Failure`]s and carry no
/// plaintext.
pub trait Subject {
    /// Opens a record section whole (§6); the header is raw and may be invalid.
    fn open_stream(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        section: &[u8],
    ) -> Result<Vec<u8>, Failure>;
    /// Seals a plaintext whole (§5).
    fn seal_stream(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Failure>;
    /// Opens sealed metadata (§7).
    fn open_metadata(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        sealed: &[u8],
    ) -> Result<FileMetadata, Failure>;
    /// Seals metadata under the given nonce (§7).
    fn seal_metadata(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        nonce: &[u8; METADATA_NONCE_LEN],
        metadata: &FileMetadata,
    ) -> Result<Vec<u8>, Failure>;
}

/// This crate's implementation, through [`crate::format`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl Subject for Native {
    fn open_stream(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        section: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let header = Header::parse(header)?;
        Ok(open_stream(
            &FileKey::from_bytes(*file_key),
            &header,
            section,
        )?)
    }

    fn seal_stream(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let header = Header::parse(header)?;
        Ok(seal_stream(
            &FileKey::from_bytes(*file_key),
            &header,
            plaintext,
        )?)
    }

    fn open_metadata(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        sealed: &[u8],
    ) -> Result<FileMetadata, Failure> {
        let header = Header::parse(header)?;
        let keys = FileKey::from_bytes(*file_key).derive(&header);
        Ok(open_metadata(&keys.metadata, &header, sealed)?)
    }

    fn seal_metadata(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        nonce: &[u8; METADATA_NONCE_LEN],
        metadata: &FileMetadata,
    ) -> Result<Vec<u8>, Failure> {
        let header = Header::parse(header)?;
        let keys = FileKey::from_bytes(*file_key).derive(&header);
        Ok(seal_metadata(&keys.metadata, &header, *nonce, metadata)?)
    }
}

/// A way in which a subject disagreed with a vector.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{case}: {message}")]
pub struct Mismatch {
    /// The case (or file) concerned.
    pub case: String,
    /// What went wrong.
    pub message: String,
}

/// Checks `subject` against one vector, as §9 requires.
///
/// Success: the ciphertext opens to exactly the plaintext, the plaintext seals to exactly
/// the ciphertext, and the metadata opens to its name and type and seals back to its bytes.
/// Failure: the first check to fail, in the order header, records, metadata, fails with
/// exactly the expected code and record (the `Result` shape guarantees that no plaintext
/// came back with the error).
pub fn check(vector: &Vector, subject: &dyn Subject) -> Result<(), Mismatch> {
    let mismatch = |message: String| Mismatch {
        case: vector.name.clone(),
        message,
    };
    let (key, header) = (&vector.file_key, &vector.header[..]);
    match &vector.expect {
        Expect::Success { plaintext } => {
            match subject.open_stream(key, header, &vector.ciphertext) {
                Ok(opened) if opened == *plaintext => {}
                Ok(_) => return Err(mismatch("opened to another plaintext".into())),
                Err(f) => return Err(mismatch(format!("open failed: {f}"))),
            }
            match subject.seal_stream(key, header, plaintext) {
                Ok(sealed) if sealed == vector.ciphertext => {}
                Ok(_) => return Err(mismatch("sealed to another ciphertext".into())),
                Err(f) => return Err(mismatch(format!("seal failed: {f}"))),
            }
            if let Some(m) = &vector.metadata {
                let expected = FileMetadata {
                    name: m.name.clone(),
                    mime: m.mime.clone(),
                };
                match subject.open_metadata(key, header, &m.sealed) {
                    Ok(opened) if opened == expected => {}
                    Ok(opened) => return Err(mismatch(format!("metadata opened to {opened:?}"))),
                    Err(f) => return Err(mismatch(format!("metadata open failed: {f}"))),
                }
                match subject.seal_metadata(key, header, &m.nonce, &expected) {
                    Ok(sealed) if sealed == m.sealed => {}
                    Ok(_) => return Err(mismatch("metadata sealed to other bytes".into())),
                    Err(f) => return Err(mismatch(format!("metadata seal failed: {f}"))),
                }
            }
            Ok(())
        }
        Expect::Failure(expected) => {
            let outcome = match (
                subject.open_stream(key, header, &vector.ciphertext),
                &vector.metadata,
            ) {
                (Err(f), _) => Err(f),
                (Ok(_), Some(m)) => subject.open_metadata(key, header, &m.sealed).map(|_| ()),
                (Ok(_), None) => Ok(()),
            };
            match outcome {
                Err(f) if f == *expected => Ok(()),
                Err(f) => Err(mismatch(format!("expected {expected}, got {f}"))),
                Ok(()) => Err(mismatch(format!(
                    "expected {expected}, but everything opened"
                ))),
            }
        }
    }
}

/// Checks `subject` against a whole vector directory given as `(file name, contents)`
/// pairs: every file parses, is named after its case, and passes [`check`], and every case
/// of [`CASES`] is present. Returns the number of cases checked, or every mismatch found.
pub fn check_files<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
    subject: &dyn Subject,
) -> Result<usize, Vec<Mismatch>> {
    let mut mismatches = Vec::new();
    let mut seen = Vec::new();
    for (file_name, text) in files {
        let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
        let vector = match Vector::parse(text) {
            Ok(vector) => vector,
            Err(e) => {
                mismatches.push(Mismatch {
                    case: base.into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        if base.strip_suffix(".txt") != Some(vector.name.as_str()) {
            let message = format!("holds case {:?}", vector.name);
            mismatches.push(Mismatch {
                case: base.into(),
                message,
            });
        }
        if let Err(m) = check(&vector, subject) {
            mismatches.push(m);
        }
        seen.push(vector.name);
    }
    for case in CASES {
        if !seen.iter().any(|name| name == case) {
            let message = "no vector file for this case".into();
            mismatches.push(Mismatch {
                case: (*case).into(),
                message,
            });
        }
    }
    if mismatches.is_empty() {
        Ok(seen.len())
    } else {
        Err(mismatches)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SAMPLE: &str = "# a comment\n#\nname: x\nexpect: failure\nerror: truncated\nrecord: 1\n\
        file_key: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\
        header: 53445250\nciphertext: \nmetadata_nonce: 000000000000000000000000\n\
        metadata_name: \"r\\u00e9sum\\u00e9 \\\"q\\\"\"\nmetadata_type: \"\"\nmetadata: ff\n";

    #[test]
    fn parse_and_write_round_trip() {
        let v = Vector::parse(SAMPLE).unwrap();
        assert_eq!(v.comments, ["a comment", ""]);
        assert_eq!(
            v.expect,
            Expect::Failure(Failure {
                code: "truncated".into(),
                record: Some(1)
            })
        );
        assert_eq!(v.header, b"SDRP");
        assert!(v.ciphertext.is_empty());
        assert_eq!(v.metadata.as_ref().unwrap().name, "résumé \"q\"");
        assert_eq!(Vector::parse(&v.to_text()).unwrap(), v);
        // An empty value survives an editor that strips trailing spaces.
        let stripped = v.to_text().replace("ciphertext: \n", "ciphertext:\n");
        assert_eq!(Vector::parse(&stripped).unwrap(), v);
    }

    #[test]
    fn parse_refuses_what_could_skip_a_check() {
        let bad = |from: &str, to: &str| {
            assert!(SAMPLE.contains(from));
            Vector::parse(&SAMPLE.replacen(from, to, 1)).unwrap_err()
        };
        assert_eq!(
            bad("record: 1", "recrod: 1").message,
            "unknown key \"recrod\""
        );
        bad("record: 1", "record: 1\nrecord: 2");
        bad("record: 1", "plaintext: 00");
        bad("error: truncated", "error: truncted");
        bad("error: truncated\n", "");
        bad("expect: failure", "expect: fail");
        bad("header: 53445250", "header: 5344525");
        bad("header: 53445250", "header: 534452zz");
        bad("header: 53445250", "header:53445250");
        bad("file_key: 00", "file_key: ");
        bad("metadata: ff\n", "");
        bad("metadata_type: \"\"", "metadata_type: plain");
        bad("name: x\n", "");
        bad("name: x", "name x");
    }

    #[test]
    fn failure_display() {
        let f = Failure::from(FormatError::TrailingData { record: 4 });
        assert_eq!(f.to_string(), "trailing_data (record 4)");
        assert_eq!(
            Failure::from(FormatError::MetadataAuthFailed).to_string(),
            "metadata_auth_failed"
        );
    }
}
