//! Writes the test vectors of docs/FORMAT.md §9 to `tests/vectors/*.txt`.
//!
//! ```text
//! cargo run -p sealdrop-protocol --example gen_vectors            # (re)write the files
//! cargo run -p sealdrop-protocol --example gen_vectors -- --check  # compare, write nothing
//! ```
//!
//! Deterministic: nothing is random, so re-running it writes identical files. Every fixed
//! input is `SHA-256("sealdrop v2 test vector: " || label)` (truncated to 12 bytes for a
//! metadata nonce), with labels `<case> file_key`, `<case> salt` and
//! `<case> metadata_nonce`; plaintext byte `i` is `i mod 251`; the record size is 64 except
//! in `default_record_size_one_byte` (1 MiB) and the record-size cases.
//!
//! Every failure case is a real manipulation of a success case (mostly `three_records`,
//! three full records), made with an independent few lines of HKDF, HMAC and AES-GCM below,
//! straight from the spec, so a case can hold what no writer of this crate would make. A
//! case about one header field recomputes the commitment and re-seals the records under
//! the changed header, so that field is the case's only defect: a reader that skipped its
//! check would open everything. Before writing anything the generator checks every case
//! against this crate (`testkit::check`), so each `error`/`record` written is both what
//! the spec requires and what the implementation reports; success cases are also sealed by
//! the reference code and must agree byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use aes_gcm::{AeadInOut, Aes256Gcm, Key, KeyInit, Nonce, aead::consts::U12};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sealdrop_protocol::{
    format::{
        DEFAULT_RECORD_SIZE, FileKey, FileMetadata, HEADER_LEN, Header, MAX_RECORD_SIZE, TAG_LEN,
        encode_fragment, seal_metadata, seal_stream,
    },
    testkit::{
        self, CASES, Case, Failure, LinkCase, MetadataCase, Native, StreamCase, StreamExpect,
        Vector,
    },
};
use sha2::{Digest, Sha256};

const R: u32 = 64;
const RU: usize = R as usize;
const SEALED: usize = RU + TAG_LEN;

fn fixed(label: &str) -> [u8; 32] {
    Sha256::digest(format!("sealdrop v2 test vector: {label}")).into()
}

fn nonce_for(label: &str) -> [u8; 12] {
    fixed(label)[..12].try_into().unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------
// §3-§7 again, from scratch, over raw bytes (so a header may be anything)
// ---------------------------------------------------------------------------------------

/// The key of §4 with `info`, from the salt at `header[12..44]`.
fn reference_okm(file_key: &[u8; 32], header: &[u8], info: &[u8]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&header[12..44]), file_key)
        .expand(info, &mut okm)
        .unwrap();
    okm
}

fn reference_cipher(file_key: &[u8; 32], header: &[u8], info: &[u8]) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(reference_okm(
        file_key, header, info,
    )))
}

/// `HMAC-SHA256(commit key, header[0..44])`.
fn reference_commitment(file_key: &[u8; 32], header: &[u8]) -> [u8; 32] {
    let key = reference_okm(file_key, header, b"sealdrop/v2/commit");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(&header[..44]);
    mac.finalize().into_bytes().into()
}

/// Sets `header[44..76]` to the commitment of `file_key` over `header[0..44]`.
fn recommit(file_key: &[u8; 32], header: &mut [u8]) {
    let commitment = reference_commitment(file_key, header);
    header[44..76].copy_from_slice(&commitment);
}

/// A v2 header from its fields.
fn reference_header(file_key: &[u8; 32], record_size: u32, salt: &[u8; 32]) -> Vec<u8> {
    let mut header = [0u8; HEADER_LEN];
    header[..6].copy_from_slice(b"SDRP\x02\x01");
    header[8..12].copy_from_slice(&record_size.to_be_bytes());
    header[12..44].copy_from_slice(salt);
    recommit(file_key, &mut header);
    header.to_vec()
}

/// One AES-256-GCM seal with the header as AAD: ciphertext || 16-byte tag.
fn reference_gcm(cipher: &Aes256Gcm, nonce: [u8; 12], header: &[u8], pt: &[u8]) -> Vec<u8> {
    let mut buffer = pt.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::<U12>::from(nonce),
            header,
            buffer.as_mut_slice().into(),
        )
        .unwrap();
    buffer.extend_from_slice(&tag);
    buffer
}

fn reference_record(cipher: &Aes256Gcm, header: &[u8], i: u64, last: bool, pt: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&i.to_be_bytes());
    nonce[11] = u8::from(last);
    reference_gcm(cipher, nonce, header, pt)
}

/// §5: the record section of `plaintext` under `header` (its record size at `[8..12]`).
fn reference_seal(file_key: &[u8; 32], header: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = reference_cipher(file_key, header, b"sealdrop/v2/content");
    let r = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    let n = plaintext.len().div_ceil(r).max(1);
    (0..n)
        .flat_map(|i| {
            let chunk =
                &plaintext[(i * r).min(plaintext.len())..((i + 1) * r).min(plaintext.len())];
            reference_record(&cipher, header, i as u64, i == n - 1, chunk)
        })
        .collect()
}

/// §7: `nonce || AES-256-GCM(metadata key, plaintext, AAD = header)`, for any plaintext.
fn reference_seal_metadata(
    file_key: &[u8; 32],
    header: &[u8],
    nonce: [u8; 12],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = reference_cipher(file_key, header, b"sealdrop/v2/metadata");
    [
        &nonce[..],
        &reference_gcm(&cipher, nonce, header, plaintext),
    ]
    .concat()
}

/// `canonical(name, type)` of §7 without its limits: serde_json escapes as
/// `JSON.stringify` does, then minimal padding.
fn canonical_json(name: &str, mime: &str) -> Vec<u8> {
    let mut json = format!(
        "{{\"name\":{},\"type\":{}}}",
        serde_json::to_string(name).unwrap(),
        serde_json::to_string(mime).unwrap()
    )
    .into_bytes();
    json.resize(json.len().next_multiple_of(64), b' ');
    json
}

// ---------------------------------------------------------------------------------------
// Building cases
// ---------------------------------------------------------------------------------------

/// A success case made by this crate and by the reference code, which must agree.
struct Base {
    name: &'static str,
    file_key: [u8; 32],
    header: Vec<u8>,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
    metadata: MetadataCase,
    about: &'static str,
}

impl Base {
    fn new(
        name: &'static str,
        record_size: u32,
        len: usize,
        meta: (&str, &str),
        about: &'static str,
    ) -> Self {
        let file_key = fixed(&format!("{name} file_key"));
        let key = FileKey::from_bytes(file_key);
        let salt = fixed(&format!("{name} salt"));
        let header = Header::new(&key, record_size, salt).unwrap();
        assert_eq!(
            header.encode().to_vec(),
            reference_header(&file_key, record_size, &salt)
        );
        let plaintext = plaintext(len);
        let ciphertext = seal_stream(&key, &header, &plaintext).unwrap();
        let bytes = header.encode();
        assert_eq!(ciphertext, reference_seal(&file_key, &bytes, &plaintext));
        let nonce = nonce_for(&format!("{name} metadata_nonce"));
        let metadata = FileMetadata {
            name: meta.0.into(),
            mime: meta.1.into(),
        };
        let keys = key.derive(&header).unwrap();
        let sealed = seal_metadata(&keys.metadata, &header, nonce, &metadata).unwrap();
        let json = canonical_json(meta.0, meta.1);
        assert_eq!(
            sealed,
            reference_seal_metadata(&file_key, &bytes, nonce, &json)
        );
        Self {
            name,
            file_key,
            header: bytes.to_vec(),
            plaintext,
            ciphertext,
            metadata: MetadataCase {
                sealed,
                nonce,
                name: metadata.name,
                mime: metadata.mime,
            },
            about,
        }
    }

    fn vector(&self) -> Vector {
        Vector {
            name: self.name.into(),
            comments: vec![self.about.into()],
            case: Case::Stream(StreamCase {
                file_key: self.file_key,
                header: self.header.clone(),
                ciphertext: self.ciphertext.clone(),
                expect: StreamExpect::Success {
                    plaintext: self.plaintext.clone(),
                    metadata: Some(self.metadata.clone()),
                },
            }),
        }
    }

    /// The sealed records of its section, which holds full records plus a last one.
    fn records(&self) -> Vec<Vec<u8>> {
        self.ciphertext.chunks(SEALED).map(<[u8]>::to_vec).collect()
    }
}

/// What a failure case holds, starting as a copy of a base case without its metadata.
#[derive(Clone)]
struct Draft {
    file_key: [u8; 32],
    header: Vec<u8>,
    ciphertext: Vec<u8>,
    section_length: Option<u64>,
    metadata: Option<Vec<u8>>,
}

/// A failure case made from `base` by `manipulate`, expected to fail with `code`/`record`.
fn failure(
    base: &Base,
    name: &str,
    code: &str,
    record: Option<u64>,
    about: &str,
    manipulate: impl FnOnce(&mut Draft),
) -> Vector {
    let mut d = Draft {
        file_key: base.file_key,
        header: base.header.clone(),
        ciphertext: base.ciphertext.clone(),
        section_length: None,
        metadata: None,
    };
    manipulate(&mut d);
    Vector {
        name: name.into(),
        comments: vec![about.into()],
        case: Case::Stream(StreamCase {
            file_key: d.file_key,
            header: d.header,
            ciphertext: d.ciphertext,
            expect: StreamExpect::Failure {
                failure: Failure {
                    code: code.into(),
                    record,
                },
                section_length: d.section_length,
                metadata: d.metadata,
            },
        }),
    }
}

/// A failure case where `edit` changes header fields, then the commitment is recomputed and
/// the records re-sealed under the changed header: the field is the only defect.
fn bad_field(
    base: &Base,
    name: &str,
    code: &str,
    about: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> Vector {
    failure(base, name, code, None, about, |d| {
        edit(&mut d.header);
        recommit(&d.file_key, &mut d.header);
        d.ciphertext = reference_seal(&d.file_key, &d.header, &base.plaintext);
    })
}

/// A failure case whose metadata is `json` sealed correctly under `base`'s key and header.
fn bad_metadata(base: &Base, name: &str, about: &str, json: &[u8]) -> Vector {
    failure(base, name, "invalid_metadata", None, about, |d| {
        let nonce = nonce_for(&format!("{name} metadata_nonce"));
        d.metadata = Some(reference_seal_metadata(&d.file_key, &d.header, nonce, json));
    })
}

fn link(name: &str, expect: Result<[u8; 32], &str>, link: String, about: &str) -> Vector {
    Vector {
        name: name.into(),
        comments: vec![about.into()],
        case: Case::Link(LinkCase {
            link,
            expect: expect.map_err(|code| Failure {
                code: code.into(),
                record: None,
            }),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// The cases, in the order of §9
// ---------------------------------------------------------------------------------------

fn vectors() -> Vec<Vector> {
    let empty = Base::new(
        "empty",
        R,
        0,
        ("notes.txt", ""),
        "The empty file: one empty record (only its tag), sealed as the last. A browser gives an unknown MIME type as \"\".",
    );
    let one_byte = Base::new(
        "one_byte",
        R,
        1,
        ("résumé final.pdf", "application/pdf"),
        "One byte: one record, the last, shorter than R. A non-ASCII name.",
    );
    let exact = Base::new(
        "one_record_exact",
        R,
        RU,
        (
            "say \"hi\"\tback\\slash\u{1}.txt",
            "text/plain; charset=utf-8",
        ),
        "Exactly R bytes: one full record, the last. The name needs JSON escapes (as JSON.stringify writes them).",
    );
    let plus_one = Base::new(
        "one_record_plus_one",
        R,
        RU + 1,
        ("📦 archive.tar.gz", "application/gzip"),
        "R + 1 bytes: a full record then a last record of one byte. A name outside the BMP.",
    );
    let three = Base::new(
        "three_records",
        R,
        3 * RU,
        ("exactly-64-bytes-of-json-name.txt", "text/plain"),
        "3R bytes: three full records, the third the last. The metadata JSON is exactly 64 bytes, so it has no padding.",
    );
    let default = Base::new(
        "default_record_size_one_byte",
        DEFAULT_RECORD_SIZE,
        1,
        (
            "Quarterly report — 2026 Q4 (final, reviewed by legal & finance).docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        "One byte with the default record size (1 MiB). Metadata padded to 192 bytes.",
    );
    let at_limit_name = "\"".repeat(500) + &"é".repeat(262);
    assert_eq!(at_limit_name.len(), 1024);
    let at_limit = Base::new(
        "metadata_name_at_limit",
        R,
        10,
        (&at_limit_name, "text/plain"),
        "A name of exactly 1,024 bytes of UTF-8 (500 '\"' and 262 'é', 762 characters): within the limit, which counts the string's UTF-8 bytes, although its JSON string is 1,526 bytes long. The metadata is padded to 1,600 bytes.",
    );
    assert_eq!(
        three.metadata.sealed.len(),
        12 + 64 + 16,
        "three_records' JSON is 64 bytes"
    );
    assert_eq!(at_limit.metadata.sealed.len(), 12 + 1600 + 16);

    let records = three.records();
    let mut out: Vec<Vector> = [
        &empty, &one_byte, &exact, &plus_one, &three, &default, &at_limit,
    ]
    .iter()
    .map(|b| b.vector())
    .collect();

    // The header.
    out.extend([
        failure(&three, "header_short", "invalid_header", None,
            "three_records with the header's last byte removed (75 bytes).",
            |d| d.header.truncate(HEADER_LEN - 1)),
        failure(&three, "header_long", "invalid_header", None,
            "three_records with a zero byte appended to the header (77 bytes).",
            |d| d.header.push(0)),
        failure(&three, "v1_header", "invalid_header", None,
            "A version 1 header (44 bytes: three_records' header without its commitment, version byte 1). The length is checked first, so it is invalid_header, not unsupported_version.",
            |d| {
                d.header.truncate(44);
                d.header[4] = 1;
            }),
        bad_field(&three, "bad_magic", "invalid_header",
            "three_records with the magic changed from SDRP to SDRQ (commitment and records redone under the changed header).",
            |h| h[3] = b'Q'),
        bad_field(&three, "unsupported_version", "unsupported_version",
            "three_records with the version byte changed from 2 to 3 (commitment and records redone under the changed header).",
            |h| h[4] = 3),
        bad_field(&three, "unknown_suite", "unsupported_version",
            "three_records with the suite byte changed from 1 to 2 (commitment and records redone under the changed header).",
            |h| h[5] = 2),
        bad_field(&three, "nonzero_reserved", "invalid_header",
            "three_records with reserved byte 7 set to 1 (commitment and records redone under the changed header).",
            |h| h[7] = 1),
        bad_field(&three, "record_size_too_small", "invalid_header",
            "The 3R plaintext with a record size of 15, one below the minimum (commitment and records redone).",
            |h| h[8..12].copy_from_slice(&15u32.to_be_bytes())),
        bad_field(&three, "record_size_too_large", "invalid_header",
            "The 3R plaintext with a record size of 16 MiB + 1, one above the maximum (commitment and the single record redone).",
            |h| h[8..12].copy_from_slice(&(MAX_RECORD_SIZE + 1).to_be_bytes())),
        failure(&three, "header_errors_length_first", "invalid_header", None,
            "A 77-byte header whose version byte is also 3: the length is checked before the version.",
            |d| {
                d.header[4] = 3;
                d.header.push(0);
            }),
        bad_field(&three, "header_errors_magic_before_version", "invalid_header",
            "Magic SDRX, version 3 and reserved byte 6 set: the magic is checked before the version (commitment and records redone).",
            |h| {
                h[3] = b'X';
                h[4] = 3;
                h[6] = 1;
            }),
        bad_field(&three, "header_errors_version_before_rest", "unsupported_version",
            "Version 3, reserved byte 6 set and record size 4,294,967,295: the version is checked before the reserved bytes and the record size (commitment and records redone).",
            |h| {
                h[4] = 3;
                h[6] = 1;
                h[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
            }),
    ]);

    // The commitment.
    let other_key = fixed("commitment_fails_records_open file_key");
    out.extend([
        failure(&three, "wrong_commitment", "key_commitment_failed", None,
            "three_records with the last byte of the header's commitment flipped.",
            |d| d.header[75] ^= 0x01),
        failure(&three, "wrong_header_salt", "key_commitment_failed", None,
            "three_records with salt byte 0 of the header flipped, the commitment left as it was.",
            |d| d.header[12] ^= 0x01),
        failure(&three, "wrong_header_record_size", "key_commitment_failed", None,
            "three_records with the header's record size changed from 64 to 65, the commitment left as it was.",
            |d| d.header[8..12].copy_from_slice(&65u32.to_be_bytes())),
        failure(&three, "commitment_fails_records_open", "key_commitment_failed", None,
            "three_records' header (its commitment made with three_records' key), but file_key is another key, under which the 3R plaintext and the metadata were sealed with that header as AAD: every record and the metadata open under file_key, yet the header does not commit to it. A reader that skipped the commitment would open everything.",
            |d| {
                d.file_key = other_key;
                d.ciphertext = reference_seal(&other_key, &d.header, &three.plaintext);
                let json = canonical_json(&three.metadata.name, &three.metadata.mime);
                let nonce = nonce_for("commitment_fails_records_open metadata_nonce");
                d.metadata = Some(reference_seal_metadata(&other_key, &d.header, nonce, &json));
            }),
    ]);

    // The records.
    let three_key = FileKey::from_bytes(three.file_key);
    let salt: [u8; 32] = three.header[12..44].try_into().unwrap();
    out.extend([
        failure(&three, "tampered_tag", "record_auth_failed", Some(2),
            "three_records with the last byte of record 2's tag flipped.",
            |d| *d.ciphertext.last_mut().unwrap() ^= 0x01),
        failure(&three, "tampered_ciphertext", "record_auth_failed", Some(1),
            "three_records with the first ciphertext byte of record 1 flipped.",
            |d| d.ciphertext[SEALED] ^= 0x80),
        failure(&three, "swapped_records", "record_auth_failed", Some(0),
            "three_records with records 0 and 1 swapped.",
            |d| d.ciphertext = [&records[1][..], &records[0], &records[2]].concat()),
        failure(&three, "dropped_last_record", "truncated", Some(1),
            "three_records without its last record: record 1 now sits in last position but was sealed as not the last, so it is the first record the reader cannot accept.",
            |d| d.ciphertext.truncate(2 * SEALED)),
        failure(&three, "extra_record", "trailing_data", Some(2),
            "three_records followed by a genuine record 3 (10 bytes, sealed as the last) under the same key and header: record 2 authenticates only as the last, so it is the first record the reader cannot accept.",
            |d| {
                let cipher = reference_cipher(&d.file_key, &d.header, b"sealdrop/v2/content");
                let extra = reference_record(&cipher, &d.header, 3, true, &plaintext(10));
                d.ciphertext.extend_from_slice(&extra);
            }),
        failure(&three, "other_header_same_key", "record_auth_failed", Some(0),
            "three_records' section with another valid header for the same key (another salt, its commitment correct): the records were sealed with another header as AAD.",
            |d| {
                let header = Header::new(&three_key, R, fixed("other_header_same_key salt"));
                d.header = header.unwrap().encode().to_vec();
            }),
        failure(&three, "other_record_size_same_key", "record_auth_failed", Some(0),
            "three_records' section with a valid header for the same key and salt but record size 65 (its commitment correct; same section length: records 0-1 of 81 bytes, a last of 78).",
            |d| d.header = Header::new(&three_key, 65, salt).unwrap().encode().to_vec()),
    ]);

    // Lengths.
    let section = three.ciphertext.len() as u64;
    out.extend([
        failure(&three, "empty_record_appended", "invalid_length", None,
            "The 3R plaintext sealed as three non-last records followed by an empty record 3 sealed as the last: every tag is genuine, but only an empty file may end in an empty record.",
            |d| {
                let cipher = reference_cipher(&d.file_key, &d.header, b"sealdrop/v2/content");
                let pt = &three.plaintext;
                d.ciphertext = (0..3u64)
                    .flat_map(|i| {
                        reference_record(&cipher, &d.header, i, false, &pt[i as usize * RU..][..RU])
                    })
                    .chain(reference_record(&cipher, &d.header, 3, true, &[]))
                    .collect();
            }),
        failure(&empty, "short_section", "invalid_length", None,
            "The empty file's section cut to 15 bytes: shorter than one tag.",
            |d| d.ciphertext.truncate(15)),
        failure(&three, "short_last_record", "invalid_length", None,
            "three_records cut 15 bytes into record 2: a last record too short to hold its tag.",
            |d| d.ciphertext.truncate(2 * SEALED + 15)),
        failure(&three, "known_length_cut_inside_record", "truncated", Some(2),
            "A reader told the section is 240 bytes (three_records) receives only the first 200: records 0 and 1 open, and the input ends inside record 2.",
            |d| {
                d.section_length = Some(section);
                d.ciphertext.truncate(2 * SEALED + 40);
            }),
        failure(&three, "known_length_cut_at_boundary", "truncated", Some(2),
            "A reader told the section is 240 bytes receives only records 0 and 1 (160 bytes): the input ends at a record boundary, so the first record that did not arrive whole is record 2.",
            |d| {
                d.section_length = Some(section);
                d.ciphertext.truncate(2 * SEALED);
            }),
        failure(&three, "known_length_extra_bytes", "trailing_data", Some(3),
            "A reader told the section is 240 bytes receives three_records and one more byte: all three records open, then the extra byte is data past the end, at index N = 3.",
            |d| {
                d.section_length = Some(section);
                d.ciphertext.push(0);
            }),
    ]);

    // The metadata.
    let sealed = &one_byte.metadata.sealed;
    let noncanonical = format!(
        "{{\"name\": {},\"type\":{}}}",
        serde_json::to_string(&one_byte.metadata.name).unwrap(),
        serde_json::to_string(&one_byte.metadata.mime).unwrap()
    );
    let mut noncanonical = noncanonical.into_bytes();
    assert!(noncanonical.len() <= 64);
    noncanonical.resize(64, b' ');
    let mut not_minimal = canonical_json(&one_byte.metadata.name, &one_byte.metadata.mime);
    not_minimal.extend_from_slice(&[b' '; 64]);
    let long_name = "n".repeat(1023) + "é";
    assert_eq!((long_name.len(), long_name.chars().count()), (1025, 1024));
    out.extend([
        failure(&one_byte, "tampered_metadata", "metadata_auth_failed", None,
            "one_byte (its header and records intact) with the first ciphertext byte of its sealed metadata flipped.",
            |d| {
                let mut m = sealed.clone();
                m[12] ^= 0x01;
                d.metadata = Some(m);
            }),
        bad_metadata(&one_byte, "noncanonical_metadata",
            "one_byte with metadata sealed correctly (right key and header, its own nonce), but its plaintext has a space after the first colon (still 64 bytes, padded): valid JSON of the right name and type, yet not the one canonical form.",
            &noncanonical),
        failure(&one_byte, "metadata_too_short", "invalid_metadata", None,
            "one_byte with its sealed metadata cut to 27 bytes: shorter than a nonce and a tag.",
            |d| d.metadata = Some(sealed[..27].to_vec())),
        failure(&one_byte, "metadata_too_long", "invalid_metadata", None,
            "one_byte with its sealed metadata followed by zeros up to 2,077 bytes: longer than any sealed metadata (refused by length, before the tag is tried).",
            |d| {
                let mut m = sealed.clone();
                m.resize(2077, 0);
                d.metadata = Some(m);
            }),
        bad_metadata(&one_byte, "metadata_padding_not_minimal",
            "one_byte with metadata sealed correctly whose plaintext is the canonical JSON padded to 128 bytes instead of 64: the padding must be minimal.",
            &not_minimal),
        bad_metadata(&one_byte, "metadata_name_too_long",
            "one_byte with metadata sealed correctly in canonical form, but the name is 1,023 'n' and one 'é': 1,024 characters, 1,025 bytes of UTF-8, over the limit.",
            &canonical_json(&long_name, "")),
        bad_metadata(&one_byte, "metadata_type_too_long",
            "one_byte with metadata sealed correctly in canonical form, but the type is 256 't': over the 255-byte limit.",
            &canonical_json("a.txt", &"t".repeat(256))),
    ]);

    // The link.
    let key = fixed("link_good file_key");
    let good = encode_fragment(&FileKey::from_bytes(key));
    let body = &good[3..];
    let hash_key = fixed("link_good_with_hash file_key");
    let mut noncanonical_last = good.clone();
    let last = noncanonical_last.pop().unwrap();
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = ALPHABET.find(last).unwrap();
    assert_eq!(
        index % 4,
        0,
        "a canonical last character has zero spare bits"
    );
    noncanonical_last.push(ALPHABET.as_bytes()[index + 1].into());
    let mut bad_alphabet = good.clone();
    bad_alphabet.replace_range(13..14, "+");
    out.extend([
        link("link_good", Ok(key), good.clone(),
            "A link fragment: k1. and the file key in 43 base64url characters."),
        link("link_good_with_hash", Ok(hash_key),
            format!("#{}", encode_fragment(&FileKey::from_bytes(hash_key))),
            "A link fragment with its leading '#', which a reader drops."),
        link("link_wrong_prefix", Err("invalid_link"), format!("k2.{body}"),
            "link_good with the prefix k2. (reserved for another form)."),
        link("link_short", Err("invalid_link"), good[..good.len() - 1].to_string(),
            "link_good without its last character: 42 characters after k1."),
        link("link_long", Err("invalid_link"), format!("{good}A"),
            "link_good with one more character: 44 characters after k1."),
        link("link_noncanonical_last_char", Err("invalid_link"), noncanonical_last,
            "link_good with its last character moved one up the alphabet: the same 32 bytes, but a spare bit set, so not canonical."),
        link("link_bad_alphabet", Err("invalid_link"), bad_alphabet,
            "link_good with its 11th key character replaced by '+', which is standard base64, not base64url."),
    ]);

    for v in &mut out {
        v.comments.insert(
            0,
            "Generated by protocol/examples/gen_vectors.rs: do not edit by hand.".into(),
        );
    }
    out
}

fn main() -> ExitCode {
    let check_only = std::env::args().any(|a| a == "--check");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("protocol/ is in the workspace");
    let dir = workspace.join("tests/vectors");
    let vectors = vectors();

    // Every case of §9, once, in its order, and each one behaving as it claims in this
    // implementation.
    let names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, CASES, "the generator and testkit::CASES disagree");
    for v in &vectors {
        testkit::check(v, &Native::new()).unwrap_or_else(|m| panic!("{m}"));
        assert_eq!(
            Vector::parse(&v.to_text()).unwrap(),
            *v,
            "{} does not round-trip",
            v.name
        );
    }

    let files: BTreeMap<PathBuf, String> = vectors
        .iter()
        .map(|v| (dir.join(format!("{}.txt", v.name)), v.to_text()))
        .collect();
    let mut stale = 0;
    for (path, text) in &files {
        let current = std::fs::read_to_string(path).ok();
        if current.as_deref() == Some(text.as_str()) {
            continue;
        }
        stale += 1;
        if check_only {
            eprintln!("differs: {}", path.display());
        } else {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(path, text).unwrap();
            println!("wrote {}", path.display());
        }
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "txt") && !files.contains_key(&path) {
            eprintln!(
                "not generated (delete it or add it here): {}",
                path.display()
            );
            stale += 1;
        }
    }
    println!("{} vectors, {stale} changed or unknown", files.len());
    if check_only && stale > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
