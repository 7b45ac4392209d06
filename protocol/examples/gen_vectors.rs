//! Writes the test vectors of docs/FORMAT.md §9 to `tests/vectors/*.txt`.
//!
//! ```text
//! cargo run -p sealdrop-protocol --example gen_vectors            # (re)write the files
//! cargo run -p sealdrop-protocol --example gen_vectors -- --check  # compare, write nothing
//! ```
//!
//! Deterministic: nothing is random, so re-running it writes identical files. Every fixed
//! input is `SHA-256("sealdrop v1 test vector: " || label)` (truncated to 12 bytes for a
//! metadata nonce), with labels `<case> file_key`, `<case> salt` and
//! `<case> metadata_nonce`; plaintext byte `i` is `i mod 251`; the record size is 64 except
//! in `default_record_size_one_byte` (1 MiB).
//!
//! Every failure case is a real manipulation of a success case (mostly `three_records`,
//! three full records), and before writing anything the generator checks every case
//! against this crate (`testkit::check`), so each `error`/`record` written is both what the
//! spec requires and what the implementation reports. Success cases are also re-sealed by
//! an independent few lines of HKDF + AES-GCM below, straight from the spec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use aes_gcm::{AeadInOut, Aes256Gcm, Key, KeyInit, Nonce, aead::consts::U12};
use hkdf::Hkdf;
use sealdrop_protocol::{
    format::{
        DEFAULT_RECORD_SIZE, FileKey, FileMetadata, Header, TAG_LEN, seal_metadata, seal_record,
        seal_stream,
    },
    testkit::{self, CASES, Expect, Failure, MetadataCase, Native, Vector},
};
use sha2::{Digest, Sha256};

const R: u32 = 64;
const RU: usize = R as usize;
const SEALED: usize = RU + TAG_LEN;

fn fixed(label: &str) -> [u8; 32] {
    Sha256::digest(format!("sealdrop v1 test vector: {label}")).into()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A success case: its key, header, plaintext and sealed section and metadata.
fn success(name: &str, record_size: u32, len: usize, meta: (&str, &str), about: &str) -> Vector {
    let file_key = fixed(&format!("{name} file_key"));
    let header = Header::new(record_size, fixed(&format!("{name} salt"))).unwrap();
    let plaintext = plaintext(len);
    let ciphertext = seal_stream(&FileKey::from_bytes(file_key), &header, &plaintext).unwrap();
    assert_eq!(
        ciphertext,
        reference_seal(&file_key, &header.encode(), &plaintext)
    );
    let nonce: [u8; 12] = fixed(&format!("{name} metadata_nonce"))[..12]
        .try_into()
        .unwrap();
    let metadata = FileMetadata {
        name: meta.0.into(),
        mime: meta.1.into(),
    };
    let keys = FileKey::from_bytes(file_key).derive(&header);
    let sealed = seal_metadata(&keys.metadata, &header, nonce, &metadata).unwrap();
    Vector {
        name: name.into(),
        comments: vec![about.into()],
        file_key,
        header: header.encode().to_vec(),
        ciphertext,
        expect: Expect::Success { plaintext },
        metadata: Some(MetadataCase {
            nonce,
            name: metadata.name,
            mime: metadata.mime,
            sealed,
        }),
    }
}

/// A failure case made from `base` by `manipulate`, expected to fail with `code`/`record`.
fn failure(
    base: &Vector,
    name: &str,
    code: &str,
    record: Option<u64>,
    about: &str,
    manipulate: impl FnOnce(&mut Vector),
) -> Vector {
    let mut v = base.clone();
    v.name = name.into();
    v.comments = vec![about.into()];
    v.expect = Expect::Failure(Failure {
        code: code.into(),
        record,
    });
    v.metadata = None;
    manipulate(&mut v);
    v
}

/// The sealed records of a section of full records plus a last one.
fn split(section: &[u8]) -> Vec<Vec<u8>> {
    section.chunks(SEALED).map(<[u8]>::to_vec).collect()
}

/// The spec's §4-§5, written again from scratch: HKDF-SHA256 then AES-256-GCM per record.
fn reference_cipher(file_key: &[u8; 32], header: &[u8; 44]) -> Aes256Gcm {
    reference_key(file_key, header, b"sealdrop/v1/content")
}

/// The key of §4 with `info`, as an AES-256-GCM cipher.
fn reference_key(file_key: &[u8; 32], header: &[u8; 44], info: &[u8]) -> Aes256Gcm {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&header[12..]), file_key)
        .expand(info, &mut okm)
        .unwrap();
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm))
}

/// §7 from scratch: `nonce || AES-256-GCM(metadata key, plaintext, AAD = header)`, for any
/// plaintext (so a vector can seal one no writer would).
fn reference_seal_metadata(
    file_key: &[u8; 32],
    header: &[u8; 44],
    nonce: [u8; 12],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = reference_key(file_key, header, b"sealdrop/v1/metadata");
    [
        &nonce[..],
        &reference_gcm(&cipher, nonce, header, plaintext),
    ]
    .concat()
}

/// One AES-256-GCM seal with the header as AAD: ciphertext || 16-byte tag.
fn reference_gcm(cipher: &Aes256Gcm, nonce: [u8; 12], header: &[u8; 44], pt: &[u8]) -> Vec<u8> {
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

fn reference_record(
    cipher: &Aes256Gcm,
    header: &[u8; 44],
    i: u64,
    last: bool,
    pt: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&i.to_be_bytes());
    nonce[11] = u8::from(last);
    reference_gcm(cipher, nonce, header, pt)
}

fn reference_seal(file_key: &[u8; 32], header: &[u8; 44], plaintext: &[u8]) -> Vec<u8> {
    let cipher = reference_cipher(file_key, header);
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

fn vectors() -> Vec<Vector> {
    let empty = success(
        "empty",
        R,
        0,
        ("notes.txt", ""),
        "The empty file: one empty record (only its tag), sealed as the last. A browser gives an unknown MIME type as \"\".",
    );
    let one_byte = success(
        "one_byte",
        R,
        1,
        ("résumé final.pdf", "application/pdf"),
        "One byte: one record, the last, shorter than R. A non-ASCII name.",
    );
    let exact = success(
        "one_record_exact",
        R,
        RU,
        (
            "say \"hi\"\tback\\slash\u{1}.txt",
            "text/plain; charset=utf-8",
        ),
        "Exactly R bytes: one full record, the last. The name needs JSON escapes (as JSON.stringify writes them).",
    );
    let plus_one = success(
        "one_record_plus_one",
        R,
        RU + 1,
        ("📦 archive.tar.gz", "application/gzip"),
        "R + 1 bytes: a full record then a last record of one byte. A name outside the BMP.",
    );
    let three = success(
        "three_records",
        R,
        3 * RU,
        ("exactly-64-bytes-of-json-name.txt", "text/plain"),
        "3R bytes: three full records, the third the last. The metadata JSON is exactly 64 bytes, so it has no padding.",
    );
    let default = success(
        "default_record_size_one_byte",
        DEFAULT_RECORD_SIZE,
        1,
        (
            "Quarterly report — 2026 Q4 (final, reviewed by legal & finance).docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        "One byte with the default record size (1 MiB). Metadata padded to 192 bytes.",
    );
    let Some(m) = &three.metadata else {
        unreachable!()
    };
    assert_eq!(
        m.sealed.len(),
        12 + 64 + 16,
        "three_records' JSON must be exactly 64 bytes"
    );

    let records = split(&three.ciphertext);
    let header: [u8; 44] = three.header.clone().try_into().unwrap();
    let mut out = vec![
        failure(
            &three,
            "tampered_tag",
            "record_auth_failed",
            Some(2),
            "three_records with the last byte of record 2's tag flipped.",
            |v| *v.ciphertext.last_mut().unwrap() ^= 0x01,
        ),
        failure(
            &three,
            "tampered_ciphertext",
            "record_auth_failed",
            Some(1),
            "three_records with the first ciphertext byte of record 1 flipped.",
            |v| v.ciphertext[SEALED] ^= 0x80,
        ),
        failure(
            &three,
            "swapped_records",
            "record_auth_failed",
            Some(0),
            "three_records with records 0 and 1 swapped.",
            |v| v.ciphertext = [&records[1][..], &records[0], &records[2]].concat(),
        ),
        failure(
            &three,
            "dropped_last_record",
            "truncated",
            Some(1),
            "three_records without its last record: record 1 now sits in last position but was sealed as not the last.",
            |v| v.ciphertext.truncate(2 * SEALED),
        ),
        failure(
            &three,
            "extra_record",
            "trailing_data",
            Some(2),
            "three_records followed by a genuine record 3 (10 bytes, sealed as the last) under the same key and header: record 2 authenticates only as the last.",
            |v| {
                let h = Header::parse(&v.header).unwrap();
                let keys = FileKey::from_bytes(v.file_key).derive(&h);
                let extra = seal_record(&keys.content, &h, 3, true, &plaintext(10)).unwrap();
                v.ciphertext.extend_from_slice(&extra);
            },
        ),
        failure(
            &three,
            "wrong_header_salt",
            "record_auth_failed",
            Some(0),
            "three_records with salt byte 0 of the header flipped (other keys and other AAD).",
            |v| v.header[12] ^= 0x01,
        ),
        failure(
            &three,
            "wrong_header_record_size",
            "record_auth_failed",
            Some(0),
            "three_records with the header's record size changed from 64 to 65 (same section length: records 0-1 of 81 bytes, a last of 78).",
            |v| v.header[8..12].copy_from_slice(&65u32.to_be_bytes()),
        ),
        failure(
            &three,
            "bad_magic",
            "invalid_header",
            None,
            "three_records with the magic changed from SDRP to SDRQ.",
            |v| v.header[3] = b'Q',
        ),
        failure(
            &three,
            "unsupported_version",
            "unsupported_version",
            None,
            "three_records with the version byte changed from 1 to 2.",
            |v| v.header[4] = 2,
        ),
        failure(
            &three,
            "empty_record_appended",
            "invalid_length",
            None,
            "The 3R plaintext sealed as three non-last records followed by an empty record 3 sealed as the last: every tag is genuine, but only an empty file may end in an empty record.",
            |v| {
                let cipher = reference_cipher(&v.file_key, &header);
                let pt = plaintext(3 * RU);
                v.ciphertext = (0..3u64)
                    .flat_map(|i| {
                        reference_record(&cipher, &header, i, false, &pt[i as usize * RU..][..RU])
                    })
                    .chain(reference_record(&cipher, &header, 3, true, &[]))
                    .collect();
            },
        ),
        failure(
            &three,
            "short_last_record",
            "invalid_length",
            None,
            "three_records cut 15 bytes into record 2: a last record too short to hold its tag.",
            |v| v.ciphertext.truncate(2 * SEALED + 15),
        ),
        failure(
            &empty,
            "short_section",
            "invalid_length",
            None,
            "The empty file's section cut to 15 bytes: shorter than one tag.",
            |v| v.ciphertext.truncate(15),
        ),
        failure(
            &one_byte,
            "tampered_metadata",
            "metadata_auth_failed",
            None,
            "one_byte (its records intact) with the first ciphertext byte of its sealed metadata flipped.",
            |v| {
                v.metadata = one_byte.metadata.clone();
                if let Some(m) = &mut v.metadata {
                    m.sealed[12] ^= 0x01;
                }
            },
        ),
        failure(
            &one_byte,
            "noncanonical_metadata",
            "invalid_metadata",
            None,
            "one_byte (its records intact) with metadata sealed correctly (right key and header, its own nonce), but its plaintext has a space after the first colon (still 64 bytes, padded): valid JSON of the right name and type, yet not the one canonical form.",
            |v| {
                let h: [u8; 44] = v.header.clone().try_into().unwrap();
                let nonce: [u8; 12] = fixed("noncanonical_metadata metadata_nonce")[..12]
                    .try_into()
                    .unwrap();
                let Some(base) = &one_byte.metadata else {
                    unreachable!()
                };
                let json = format!(
                    "{{\"name\": {},\"type\":{}}}",
                    serde_json::to_string(&base.name).unwrap(),
                    serde_json::to_string(&base.mime).unwrap()
                );
                let mut plaintext = json.into_bytes();
                assert!(plaintext.len() <= 64);
                plaintext.resize(64, b' ');
                v.metadata = Some(MetadataCase {
                    nonce,
                    name: base.name.clone(),
                    mime: base.mime.clone(),
                    sealed: reference_seal_metadata(&v.file_key, &h, nonce, &plaintext),
                });
            },
        ),
    ];
    // empty_record_appended's hand-sealed non-last records are what this crate seals too.
    let h = Header::parse(&header).unwrap();
    let keys = FileKey::from_bytes(three.file_key).derive(&h);
    let appended = &out
        .iter()
        .find(|v| v.name == "empty_record_appended")
        .unwrap()
        .ciphertext;
    for i in 0..3 {
        let pt = plaintext(3 * RU);
        let ours = seal_record(&keys.content, &h, i as u64, false, &pt[i * RU..][..RU]).unwrap();
        assert_eq!(appended[i * SEALED..][..SEALED], ours);
    }
    out.splice(0..0, [empty, one_byte, exact, plus_one, three, default]);
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

    // Every case of §9, once, and each one behaving as it claims in this implementation.
    let mut names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = CASES.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "the generator and testkit::CASES disagree");
    for v in &vectors {
        testkit::check(v, &Native).unwrap_or_else(|m| panic!("{m}"));
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
