//! The test vectors of docs/FORMAT.md §9 as data: their text form, and a runner that checks
//! any implementation of the format against them.
//!
//! Only built with the `conformance` feature: it is a test hook, not part of the product.
//! Pure like the rest of the crate: it reads and writes text, never directories. The native
//! test (`protocol/tests/vectors.rs`) reads `tests/vectors/*.txt` and calls
//! [`check_files`]; a shell that wraps the format in another way (the wasm build, a JS
//! bridge) implements [`Subject`] over its own entry points, or runs [`Native`] compiled
//! for its target, and calls the same functions.

use core::fmt;
use std::collections::BTreeMap;

use thiserror::Error;

use crate::format::{
    FileKey, FileMetadata, FormatError, HEADER_LEN, Header, METADATA_NONCE_LEN, SALT_LEN,
    StreamOpener, encode_fragment, open_metadata, open_stream, parse_fragment, seal_metadata,
    seal_stream,
};

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

/// Every case §9 names, in its order. A vector directory must hold a file `<name>.txt` for
/// each, so a deleted file fails [`check_files`] rather than silently shrinking the suite.
pub const CASES: &[&str] = &[
    // Success.
    "empty",
    "one_byte",
    "one_record_exact",
    "one_record_plus_one",
    "three_records",
    "default_record_size_one_byte",
    "metadata_name_at_limit",
    // The header.
    "header_short",
    "header_long",
    "v1_header",
    "bad_magic",
    "unsupported_version",
    "unknown_suite",
    "nonzero_reserved",
    "record_size_too_small",
    "record_size_too_large",
    "header_errors_length_first",
    "header_errors_magic_before_version",
    "header_errors_version_before_rest",
    // The commitment.
    "wrong_commitment",
    "wrong_header_salt",
    "wrong_header_record_size",
    "commitment_fails_records_open",
    // The records.
    "tampered_tag",
    "tampered_ciphertext",
    "swapped_records",
    "dropped_last_record",
    "extra_record",
    "other_header_same_key",
    "other_record_size_same_key",
    // Lengths.
    "empty_record_appended",
    "short_section",
    "short_last_record",
    "known_length_cut_inside_record",
    "known_length_cut_at_boundary",
    "known_length_extra_bytes",
    // The metadata.
    "tampered_metadata",
    "noncanonical_metadata",
    "metadata_too_short",
    "metadata_too_long",
    "metadata_padding_not_minimal",
    "metadata_name_too_long",
    "metadata_type_too_long",
    // The link.
    "link_good",
    "link_good_with_hash",
    "link_wrong_prefix",
    "link_short",
    "link_long",
    "link_noncanonical_last_char",
    "link_bad_alphabet",
];

/// The error codes a vector may expect (§6), and whether each names a record.
const CODES: &[(&str, bool)] = &[
    ("invalid_link", false),
    ("invalid_header", false),
    ("unsupported_version", false),
    ("key_commitment_failed", false),
    ("invalid_length", false),
    ("record_auth_failed", true),
    ("truncated", true),
    ("trailing_data", true),
    ("invalid_metadata", false),
    ("metadata_auth_failed", false),
];

/// One test vector: one file of `tests/vectors/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// The case name, which is also the file name without `.txt`.
    pub name: String,
    /// Comment lines (without their `# `), kept so a written vector explains itself.
    pub comments: Vec<String>,
    /// What the case holds and expects, by kind.
    pub case: Case,
}

/// A vector's kind (`kind:`), with the fields that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Case {
    /// `kind: stream`: a header, a record section and maybe sealed metadata.
    Stream(StreamCase),
    /// `kind: link`: a link fragment.
    Link(LinkCase),
}

/// A `stream` vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCase {
    /// The file key `K`.
    pub file_key: [u8; 32],
    /// The header bytes; not necessarily a valid header (see `bad_magic`).
    pub header: Vec<u8>,
    /// The record section, as it arrives.
    pub ciphertext: Vec<u8>,
    /// What must happen.
    pub expect: StreamExpect,
}

/// The expected outcome of a `stream` vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamExpect {
    /// Everything opens, and sealing gives the same bytes back.
    Success {
        /// The file's plaintext.
        plaintext: Vec<u8>,
        /// The sealed metadata and what it holds.
        metadata: Option<MetadataCase>,
    },
    /// The first check to fail (header, commitment, records, metadata) fails so.
    Failure {
        /// The expected error.
        failure: Failure,
        /// The section length a reader is told before the bytes arrive, if any.
        section_length: Option<u64>,
        /// Sealed metadata, checked after the records.
        metadata: Option<Vec<u8>>,
    },
}

/// The metadata of a `stream` success vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataCase {
    /// The sealed metadata.
    pub sealed: Vec<u8>,
    /// The nonce sealing used.
    pub nonce: [u8; METADATA_NONCE_LEN],
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub mime: String,
}

/// A `link` vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCase {
    /// The fragment (what follows `#` in a link, perhaps with the `#`).
    pub link: String,
    /// The key it holds, or the error it gets.
    pub expect: Result<[u8; 32], Failure>,
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

impl Vector {
    /// The expected error, for a failure case.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.case {
            Case::Stream(StreamCase {
                expect: StreamExpect::Failure { failure, .. },
                ..
            })
            | Case::Link(LinkCase {
                expect: Err(failure),
                ..
            }) => Some(failure),
            _ => None,
        }
    }
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

/// Every key of §9, in the order [`Vector::to_text`] writes them.
const KEYS: &[&str] = &[
    "name",
    "kind",
    "expect",
    "error",
    "record",
    "file_key",
    "header",
    "section_length",
    "plaintext",
    "ciphertext",
    "metadata",
    "metadata_nonce",
    "metadata_name",
    "metadata_type",
    "link",
];

/// The fields of one file, `key -> (line number, value)`, each taken at most once.
struct Fields<'a> {
    map: BTreeMap<&'a str, (usize, &'a str)>,
}

impl<'a> Fields<'a> {
    fn take(&mut self, key: &str) -> Option<(usize, &'a str)> {
        self.map.remove(key)
    }

    fn require(&mut self, key: &str) -> Result<(usize, &'a str), ParseError> {
        self.take(key).ok_or_else(|| ParseError {
            line: 0,
            message: format!("missing {key:?}"),
        })
    }

    /// Refuses whatever was not taken: a key that does not belong to this kind and outcome.
    fn finish(self, what: &str) -> Result<(), ParseError> {
        match self.map.into_iter().min_by_key(|(_, (line, _))| *line) {
            Some((key, (line, _))) => Err(ParseError {
                line,
                message: format!("{key:?} does not belong to {what}"),
            }),
            None => Ok(()),
        }
    }
}

impl Vector {
    /// Reads the text form of §9. Unknown and repeated keys, and keys that do not belong to
    /// the case's kind and outcome, are errors: a typo must not skip a check.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut map = BTreeMap::new();
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
            if map.insert(key, (number, value)).is_some() {
                return Err(err(format!("repeated key {key:?}")));
            }
        }
        let mut fields = Fields { map };

        let name = fields.require("name")?.1.to_owned();
        let kind = fields.require("kind")?;
        let expect = fields.require("expect")?;
        let failure = match expect {
            (_, "success") => None,
            (_, "failure") => Some(failure(&mut fields)?),
            (line, other) => {
                return Err(ParseError {
                    line,
                    message: format!("expect is success or failure, got {other:?}"),
                });
            }
        };
        let case = match kind {
            (_, "stream") => Case::Stream(stream_case(&mut fields, failure)?),
            (_, "link") => {
                let link = fields.require("link")?.1.to_owned();
                let expect = match failure {
                    None => Ok(fixed::<32>(fields.require("file_key")?)?),
                    Some(failure) => Err(failure),
                };
                Case::Link(LinkCase { link, expect })
            }
            (line, other) => {
                return Err(ParseError {
                    line,
                    message: format!("kind is stream or link, got {other:?}"),
                });
            }
        };
        fields.finish(&format!("a {} {} case", kind.1, expect.1))?;
        Ok(Self {
            name,
            comments,
            case,
        })
    }

    /// Writes the text form of §9 (fields in the order §9 lists them), which
    /// [`parse`](Vector::parse) reads back to the same vector.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for comment in &self.comments {
            out.push_str(if comment.is_empty() { "#" } else { "# " });
            out.push_str(comment);
            out.push('\n');
        }
        let mut line = |key: &str, value: &str| {
            out.push_str(key);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        };
        line("name", &self.name);
        let kind = match self.case {
            Case::Stream(_) => "stream",
            Case::Link(_) => "link",
        };
        line("kind", kind);
        match self.failure() {
            None => line("expect", "success"),
            Some(failure) => {
                line("expect", "failure");
                line("error", &failure.code);
                if let Some(record) = failure.record {
                    line("record", &record.to_string());
                }
            }
        }
        match &self.case {
            Case::Stream(s) => {
                line("file_key", &hex(&s.file_key));
                line("header", &hex(&s.header));
                match &s.expect {
                    StreamExpect::Success {
                        plaintext,
                        metadata,
                    } => {
                        line("plaintext", &hex(plaintext));
                        line("ciphertext", &hex(&s.ciphertext));
                        if let Some(m) = metadata {
                            line("metadata", &hex(&m.sealed));
                            line("metadata_nonce", &hex(&m.nonce));
                            line("metadata_name", &json_quote(&m.name));
                            line("metadata_type", &json_quote(&m.mime));
                        }
                    }
                    StreamExpect::Failure {
                        section_length,
                        metadata,
                        ..
                    } => {
                        if let Some(length) = section_length {
                            line("section_length", &length.to_string());
                        }
                        line("ciphertext", &hex(&s.ciphertext));
                        if let Some(sealed) = metadata {
                            line("metadata", &hex(sealed));
                        }
                    }
                }
            }
            Case::Link(l) => {
                if let Ok(key) = &l.expect {
                    line("file_key", &hex(key));
                }
                line("link", &l.link);
            }
        }
        out
    }
}

/// `error` and `record` of a failure case: a known code, and a record exactly when the
/// code names one.
fn failure(fields: &mut Fields) -> Result<Failure, ParseError> {
    let (line, code) = fields.require("error")?;
    let Some(&(code, names_record)) = CODES.iter().find(|(c, _)| *c == code) else {
        return Err(ParseError {
            line,
            message: format!("unknown error code {code:?}"),
        });
    };
    let record = match (fields.take("record"), names_record) {
        (None, false) => None,
        (Some((line, value)), true) => Some(value.parse().map_err(|_| ParseError {
            line,
            message: format!("record must be a decimal index, got {value:?}"),
        })?),
        (None, true) => {
            return Err(ParseError {
                line,
                message: format!("{code} names a record: `record:` is missing"),
            });
        }
        (Some((line, _)), false) => {
            return Err(ParseError {
                line,
                message: format!("{code} names no record"),
            });
        }
    };
    Ok(Failure {
        code: code.to_owned(),
        record,
    })
}

fn stream_case(fields: &mut Fields, failure: Option<Failure>) -> Result<StreamCase, ParseError> {
    let file_key = fixed::<32>(fields.require("file_key")?)?;
    let header = hex_field(fields.require("header")?)?;
    let ciphertext = hex_field(fields.require("ciphertext")?)?;
    let metadata = fields.take("metadata").map(hex_field).transpose()?;
    let expect = match failure {
        None => {
            let plaintext = hex_field(fields.require("plaintext")?)?;
            let metadata = match metadata {
                None => None,
                Some(sealed) => Some(MetadataCase {
                    sealed,
                    nonce: fixed::<METADATA_NONCE_LEN>(fields.require("metadata_nonce")?)?,
                    name: json_string(fields.require("metadata_name")?)?,
                    mime: json_string(fields.require("metadata_type")?)?,
                }),
            };
            StreamExpect::Success {
                plaintext,
                metadata,
            }
        }
        Some(failure) => {
            let section_length = match fields.take("section_length") {
                None => None,
                Some((line, value)) => Some(decimal(line, value)?),
            };
            StreamExpect::Failure {
                failure,
                section_length,
                metadata,
            }
        }
    };
    Ok(StreamCase {
        file_key,
        header,
        ciphertext,
        expect,
    })
}

fn decimal(line: usize, value: &str) -> Result<u64, ParseError> {
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    let canonical = value == "0" || !value.starts_with('0');
    match value.parse() {
        Ok(n) if digits && canonical => Ok(n),
        _ => Err(ParseError {
            line,
            message: format!("expected a decimal number, got {value:?}"),
        }),
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
/// plug in its own entry points. Headers are raw and may be invalid; errors are reported
/// as [`Failure`]s and carry no plaintext.
pub trait Subject {
    /// Makes the header for a new file (§3, §4), commitment included.
    fn make_header(
        &self,
        file_key: &[u8; 32],
        record_size: u32,
        salt: &[u8; SALT_LEN],
    ) -> Result<Vec<u8>, Failure>;
    /// Opens a record section whole, its length being that of `section` (§6).
    fn open_stream(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        section: &[u8],
    ) -> Result<Vec<u8>, Failure>;
    /// Opens a record section whose length `section_length` the reader is told before
    /// `bytes` arrive, which may be fewer or more (§6).
    fn open_known_length(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        section_length: u64,
        bytes: &[u8],
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
    /// Reads the file key from a link fragment (§8).
    fn parse_link(&self, link: &str) -> Result<[u8; 32], Failure>;
    /// The link fragment (without `#`) of a file key (§8).
    fn encode_link(&self, file_key: &[u8; 32]) -> String;
}

/// This crate's implementation, through [`crate::format`].
///
/// [`Native::new`] opens a section whole with [`open_stream`]; [`Native::chunked`] reads
/// every section through [`StreamOpener`] fed a few bytes at a time, as a downloader does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native {
    chunk: Option<usize>,
}

impl Native {
    /// Opens whole sections with [`open_stream`].
    pub const fn new() -> Self {
        Self { chunk: None }
    }

    /// Feeds every section to a [`StreamOpener`] `chunk` bytes at a time (at least one).
    pub const fn chunked(chunk: usize) -> Self {
        Self { chunk: Some(chunk) }
    }
}

impl Subject for Native {
    fn make_header(
        &self,
        file_key: &[u8; 32],
        record_size: u32,
        salt: &[u8; SALT_LEN],
    ) -> Result<Vec<u8>, Failure> {
        let header = Header::new(&FileKey::from_bytes(*file_key), record_size, *salt)?;
        Ok(header.encode().to_vec())
    }

    fn open_stream(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        section: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        if self.chunk.is_some() {
            return self.open_known_length(file_key, header, section.len() as u64, section);
        }
        let header = Header::parse(header)?;
        Ok(open_stream(
            &FileKey::from_bytes(*file_key),
            &header,
            section,
        )?)
    }

    fn open_known_length(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        section_length: u64,
        bytes: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let header = Header::parse(header)?;
        let key = FileKey::from_bytes(*file_key).derive(&header)?.content;
        let mut opener = StreamOpener::new(key, header, section_length)?;
        let mut out = Vec::new();
        for piece in bytes.chunks(self.chunk.unwrap_or(bytes.len()).max(1)) {
            opener.feed(piece, &mut out)?;
        }
        opener.finish()?;
        Ok(out)
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
        let keys = FileKey::from_bytes(*file_key).derive(&header)?;
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
        let keys = FileKey::from_bytes(*file_key).derive(&header)?;
        Ok(seal_metadata(&keys.metadata, &header, *nonce, metadata)?)
    }

    fn parse_link(&self, link: &str) -> Result<[u8; 32], Failure> {
        Ok(*parse_fragment(link)?.as_bytes())
    }

    fn encode_link(&self, file_key: &[u8; 32]) -> String {
        encode_fragment(&FileKey::from_bytes(*file_key))
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
/// Stream success: the header is what the subject makes from its key, record size and
/// salt; the ciphertext opens to exactly the plaintext; the plaintext seals to exactly the
/// ciphertext; the metadata opens to its name and type and seals back to its bytes. Stream
/// failure: the first check to fail, in the order header (commitment included), records,
/// metadata, fails with exactly the expected code and record (the `Result` shape
/// guarantees that no plaintext came back with the error). Link: the fragment gives the
/// key and the key gives the fragment back, or the fragment is refused.
pub fn check(vector: &Vector, subject: &dyn Subject) -> Result<(), Mismatch> {
    let mismatch = |message: String| Mismatch {
        case: vector.name.clone(),
        message,
    };
    match &vector.case {
        Case::Stream(s) => check_stream(s, subject).map_err(mismatch),
        Case::Link(l) => check_link(l, subject).map_err(mismatch),
    }
}

fn check_stream(case: &StreamCase, subject: &dyn Subject) -> Result<(), String> {
    let (key, header) = (&case.file_key, &case.header[..]);
    match &case.expect {
        StreamExpect::Success {
            plaintext,
            metadata,
        } => {
            let (Some(size), Some(salt)) = (header.get(8..12), header.get(12..44)) else {
                return Err("a success case needs a whole header".into());
            };
            let size = u32::from_be_bytes(size.try_into().map_err(|_| "record size")?);
            let salt: [u8; SALT_LEN] = salt.try_into().map_err(|_| "salt")?;
            match subject.make_header(key, size, &salt) {
                Ok(made) if made == header && made.len() == HEADER_LEN => {}
                Ok(_) => return Err("made another header (commitment?)".into()),
                Err(f) => return Err(format!("making the header failed: {f}")),
            }
            match subject.open_stream(key, header, &case.ciphertext) {
                Ok(opened) if opened == *plaintext => {}
                Ok(_) => return Err("opened to another plaintext".into()),
                Err(f) => return Err(format!("open failed: {f}")),
            }
            match subject.seal_stream(key, header, plaintext) {
                Ok(sealed) if sealed == case.ciphertext => {}
                Ok(_) => return Err("sealed to another ciphertext".into()),
                Err(f) => return Err(format!("seal failed: {f}")),
            }
            if let Some(m) = metadata {
                let expected = FileMetadata {
                    name: m.name.clone(),
                    mime: m.mime.clone(),
                };
                match subject.open_metadata(key, header, &m.sealed) {
                    Ok(opened) if opened == expected => {}
                    Ok(opened) => return Err(format!("metadata opened to {opened:?}")),
                    Err(f) => return Err(format!("metadata open failed: {f}")),
                }
                match subject.seal_metadata(key, header, &m.nonce, &expected) {
                    Ok(sealed) if sealed == m.sealed => {}
                    Ok(_) => return Err("metadata sealed to other bytes".into()),
                    Err(f) => return Err(format!("metadata seal failed: {f}")),
                }
            }
            Ok(())
        }
        StreamExpect::Failure {
            failure,
            section_length,
            metadata,
        } => {
            let opened = match section_length {
                None => subject.open_stream(key, header, &case.ciphertext),
                Some(length) => subject.open_known_length(key, header, *length, &case.ciphertext),
            };
            let outcome = opened.and_then(|_| match metadata {
                Some(sealed) => subject.open_metadata(key, header, sealed).map(|_| ()),
                None => Ok(()),
            });
            expect_failure(failure, outcome)
        }
    }
}

fn check_link(case: &LinkCase, subject: &dyn Subject) -> Result<(), String> {
    let parsed = subject.parse_link(&case.link);
    match &case.expect {
        Ok(key) => {
            match parsed {
                Ok(got) if got == *key => {}
                Ok(_) => return Err("the link gave another key".into()),
                Err(f) => return Err(format!("parsing the link failed: {f}")),
            }
            let encoded = subject.encode_link(key);
            let link = case.link.strip_prefix('#').unwrap_or(&case.link);
            if encoded == link {
                Ok(())
            } else {
                Err(format!("the key encodes to another link: {encoded:?}"))
            }
        }
        Err(failure) => expect_failure(failure, parsed.map(|_| ())),
    }
}

fn expect_failure(expected: &Failure, outcome: Result<(), Failure>) -> Result<(), String> {
    match outcome {
        Err(f) if f == *expected => Ok(()),
        Err(f) => Err(format!("expected {expected}, got {f}")),
        Ok(()) => Err(format!("expected {expected}, but everything opened")),
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

    const SAMPLE: &str = "# a comment\n#\nname: x\nkind: stream\nexpect: failure\n\
        error: truncated\nrecord: 1\n\
        file_key: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\
        header: 53445250\nsection_length: 300\nciphertext: \nmetadata: ff\n";

    const SUCCESS: &str = "name: y\nkind: stream\nexpect: success\n\
        file_key: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\
        header: 53445250\nplaintext: 00\nciphertext: 01\nmetadata: ff\n\
        metadata_nonce: 000000000000000000000000\n\
        metadata_name: \"r\\u00e9sum\\u00e9 \\\"q\\\"\"\nmetadata_type: \"\"\n";

    const LINK: &str = "name: z\nkind: link\nexpect: success\n\
        file_key: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\
        link: k1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n";

    #[test]
    fn parse_and_write_round_trip() {
        let v = Vector::parse(SAMPLE).unwrap();
        assert_eq!(v.comments, ["a comment", ""]);
        assert_eq!(
            v.failure(),
            Some(&Failure {
                code: "truncated".into(),
                record: Some(1)
            })
        );
        let Case::Stream(s) = &v.case else {
            panic!("a stream case")
        };
        assert_eq!(s.header, b"SDRP");
        assert!(s.ciphertext.is_empty());
        assert!(matches!(
            s.expect,
            StreamExpect::Failure {
                section_length: Some(300),
                ..
            }
        ));
        for text in [SAMPLE, SUCCESS, LINK] {
            let v = Vector::parse(text).unwrap();
            assert_eq!(Vector::parse(&v.to_text()).unwrap(), v, "{text}");
        }
        let Case::Stream(StreamCase {
            expect: StreamExpect::Success {
                metadata: Some(m), ..
            },
            ..
        }) = Vector::parse(SUCCESS).unwrap().case
        else {
            panic!("a success case with metadata")
        };
        assert_eq!(m.name, "résumé \"q\"");
        // An empty value survives an editor that strips trailing spaces.
        let stripped = v.to_text().replace("ciphertext: \n", "ciphertext:\n");
        assert_eq!(Vector::parse(&stripped).unwrap(), v);
        assert!(LINK.contains(&Native::new().encode_link(&core::array::from_fn(|i| i as u8))));
    }

    #[test]
    fn parse_refuses_what_could_skip_a_check() {
        let bad = |text: &str, from: &str, to: &str| {
            assert!(text.contains(from), "{from}");
            Vector::parse(&text.replacen(from, to, 1)).unwrap_err()
        };
        assert_eq!(
            bad(SAMPLE, "record: 1", "recrod: 1").message,
            "unknown key \"recrod\""
        );
        for (text, from, to) in [
            (SAMPLE, "record: 1", "record: 1\nrecord: 2"),
            (SAMPLE, "record: 1", "plaintext: 00"),
            (SAMPLE, "record: 1", ""),
            (SAMPLE, "record: 1", "record: x"),
            (SAMPLE, "error: truncated", "error: truncted"),
            (
                SAMPLE,
                "error: truncated\nrecord: 1",
                "error: invalid_header\nrecord: 1",
            ),
            (SAMPLE, "error: truncated\n", ""),
            (SAMPLE, "expect: failure", "expect: fail"),
            (SAMPLE, "kind: stream", "kind: streams"),
            (SAMPLE, "kind: stream\n", ""),
            (SAMPLE, "header: 53445250", "header: 5344525"),
            (SAMPLE, "header: 53445250", "header: 534452zz"),
            (SAMPLE, "header: 53445250", "header:53445250"),
            (SAMPLE, "file_key: 00", "file_key: "),
            (SAMPLE, "section_length: 300", "section_length: 0300"),
            (SAMPLE, "section_length: 300", "section_length: -3"),
            (SAMPLE, "section_length: 300", "section_length: "),
            (SAMPLE, "metadata: ff", "metadata: ff\nmetadata_nonce: 00"),
            (SAMPLE, "metadata: ff", "metadata: ff\nlink: k1."),
            (SAMPLE, "name: x\n", ""),
            (SAMPLE, "name: x", "name x"),
            (SUCCESS, "metadata_type: \"\"", "metadata_type: plain"),
            (SUCCESS, "metadata_type: \"\"\n", ""),
            (SUCCESS, "plaintext: 00\n", ""),
            (SUCCESS, "plaintext: 00", "plaintext: 00\nsection_length: 1"),
            (SUCCESS, "plaintext: 00", "plaintext: 00\nerror: truncated"),
            (LINK, "file_key: 00", "header: 00"),
            (LINK, "link: k1.", "ciphertext: 00\nlink: k1."),
            (
                LINK,
                "expect: success",
                "expect: failure\nerror: invalid_link",
            ),
        ] {
            bad(text, from, to);
        }
    }

    #[test]
    fn failure_display() {
        let f = Failure::from(FormatError::TrailingData { record: 4 });
        assert_eq!(f.to_string(), "trailing_data (record 4)");
        assert_eq!(
            Failure::from(FormatError::KeyCommitmentFailed).to_string(),
            "key_commitment_failed"
        );
    }

    #[test]
    fn every_format_code_a_reader_reports_is_a_vector_code() {
        for error in [
            FormatError::InvalidHeader(""),
            FormatError::UnsupportedVersion {
                version: 0,
                suite: 0,
            },
            FormatError::KeyCommitmentFailed,
            FormatError::InvalidLength(""),
            FormatError::RecordAuthFailed { record: 0 },
            FormatError::Truncated { record: 0 },
            FormatError::TrailingData { record: 0 },
            FormatError::MetadataAuthFailed,
            FormatError::InvalidMetadata(""),
            FormatError::InvalidLink(""),
        ] {
            let entry = CODES.iter().find(|(code, _)| *code == error.code());
            assert_eq!(
                entry.map(|(_, names)| *names),
                Some(error.record().is_some())
            );
        }
    }
}
