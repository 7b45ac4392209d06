//! Runs every test vector of `tests/vectors/` (docs/FORMAT.md §9) against this crate,
//! whole and incrementally; checks that the runner can fail (negative controls), that the
//! vectors hold what their comments claim, and that every single-byte change to a success
//! vector fails.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce, aead::Aead, aead::Payload, aead::consts::U12};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sealdrop_protocol::{
    format::{FileKey, Header, open_metadata, open_stream},
    testkit::{self, CASES, Case, Failure, LinkCase, Native, StreamExpect, Subject, Vector},
};
use sha2::Sha256;

/// `(file name, contents)` of every `.txt` file in the vector directory.
fn files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn vectors() -> Vec<Vector> {
    files()
        .iter()
        .map(|(_, text)| Vector::parse(text).unwrap())
        .collect()
}

fn vector(name: &str) -> Vector {
    vectors().into_iter().find(|v| v.name == name).unwrap()
}

fn run(subject: &dyn Subject) -> Result<usize, Vec<testkit::Mismatch>> {
    let files = files();
    testkit::check_files(files.iter().map(|(n, t)| (n.as_str(), t.as_str())), subject)
}

#[test]
fn every_vector_passes_natively() {
    match run(&Native::new()) {
        Ok(count) => assert_eq!(count, CASES.len()),
        Err(mismatches) => panic!("{mismatches:#?}"),
    }
}

#[test]
fn every_vector_passes_incrementally() {
    // Through StreamOpener, fed in awkward chunks: a downloader's view.
    for chunk in [1, 5, 64, 80, 81, 1 << 20] {
        if let Err(mismatches) = run(&Native::chunked(chunk)) {
            panic!("chunks of {chunk}: {mismatches:#?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Negative controls: a runner that passed anything would prove nothing.
// ---------------------------------------------------------------------------------------

/// Sets the expected failure of a failure vector.
fn expecting(mut v: Vector, code: &str, record: Option<u64>) -> Vector {
    let expected = Failure {
        code: code.into(),
        record,
    };
    match &mut v.case {
        Case::Stream(s) => match &mut s.expect {
            StreamExpect::Failure { failure, .. } => *failure = expected,
            StreamExpect::Success { .. } => panic!("{}: not a failure case", v.name),
        },
        Case::Link(l) => l.expect = Err(expected),
    }
    v
}

fn stream(v: &mut Vector) -> &mut testkit::StreamCase {
    match &mut v.case {
        Case::Stream(s) => s,
        Case::Link(_) => panic!("{}: not a stream case", v.name),
    }
}

#[test]
fn the_runner_notices_a_missing_file_and_a_wrong_expectation() {
    let mut files = files();
    files.retain(|(name, _)| name != "dropped_last_record.txt");
    let err = testkit::check_files(
        files.iter().map(|(n, t)| (n.as_str(), t.as_str())),
        &Native::new(),
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].case, "dropped_last_record");

    for (name, code, record) in [
        ("dropped_last_record", "truncated", Some(0)),
        ("dropped_last_record", "truncated", Some(2)),
        ("dropped_last_record", "record_auth_failed", Some(1)),
        ("extra_record", "trailing_data", Some(3)),
        ("known_length_cut_at_boundary", "truncated", Some(1)),
        ("known_length_extra_bytes", "trailing_data", Some(2)),
        (
            "commitment_fails_records_open",
            "record_auth_failed",
            Some(0),
        ),
        ("wrong_commitment", "invalid_header", None),
        ("header_errors_version_before_rest", "invalid_header", None),
        (
            "header_errors_magic_before_version",
            "unsupported_version",
            None,
        ),
        ("metadata_too_long", "metadata_auth_failed", None),
        ("link_short", "invalid_header", None),
    ] {
        let v = expecting(vector(name), code, record);
        assert!(
            testkit::check(&v, &Native::new()).is_err(),
            "{name}: {code}"
        );
    }

    // A success vector with one byte changed anywhere that is checked.
    let mut v = vector("three_records");
    stream(&mut v).ciphertext[0] ^= 1;
    assert!(testkit::check(&v, &Native::new()).is_err());
    let mut v = vector("three_records");
    stream(&mut v).header[75] ^= 1;
    let err = testkit::check(&v, &Native::new()).unwrap_err();
    assert!(err.message.contains("commitment"), "{err}");
    let mut v = vector("one_byte");
    if let StreamExpect::Success {
        metadata: Some(m), ..
    } = &mut stream(&mut v).expect
    {
        m.name.push('x');
    }
    assert!(testkit::check(&v, &Native::new()).is_err());

    // A link vector whose key or fragment is off by one character.
    let mut v = vector("link_good");
    if let Case::Link(LinkCase {
        expect: Ok(key), ..
    }) = &mut v.case
    {
        key[0] ^= 1;
    }
    assert!(testkit::check(&v, &Native::new()).is_err());
    let mut v = vector("link_good_with_hash");
    if let Case::Link(LinkCase { link, .. }) = &mut v.case {
        link.insert(0, '#');
    }
    assert!(testkit::check(&v, &Native::new()).is_err());
    // Without the known section length, the cut looks like a last record cut short.
    let mut v = vector("known_length_cut_inside_record");
    if let StreamExpect::Failure { section_length, .. } = &mut stream(&mut v).expect {
        *section_length = None;
    }
    assert!(testkit::check(&v, &Native::new()).is_err());
}

// ---------------------------------------------------------------------------------------
// The vectors hold what their comments claim, checked with raw HKDF, HMAC and AES-GCM.
// ---------------------------------------------------------------------------------------

fn okm(file_key: &[u8; 32], header: &[u8], info: &[u8]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&header[12..44]), file_key)
        .expand(info, &mut okm)
        .unwrap();
    okm
}

fn commitment_holds(file_key: &[u8; 32], header: &[u8]) -> bool {
    let key = okm(file_key, header, b"sealdrop/v2/commit");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(&header[..44]);
    mac.verify_slice(&header[44..76]).is_ok()
}

/// A reader with no checks but the tags: records by position under the header's `R`.
fn lenient_open(file_key: &[u8; 32], header: &[u8], section: &[u8]) -> Option<Vec<u8>> {
    let info: &[u8] = b"sealdrop/v2/content";
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm(file_key, header, info)));
    let r = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    let records: Vec<&[u8]> = section.chunks(r + 16).collect();
    let mut out = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        nonce[11] = u8::from(i == records.len() - 1);
        let payload = Payload {
            msg: record,
            aad: header,
        };
        out.extend(cipher.decrypt(&Nonce::<U12>::from(nonce), payload).ok()?);
    }
    Some(out)
}

fn lenient_open_metadata(file_key: &[u8; 32], header: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let info: &[u8] = b"sealdrop/v2/metadata";
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm(file_key, header, info)));
    let nonce = Nonce::<U12>::try_from(&sealed[..12]).ok()?;
    let payload = Payload {
        msg: &sealed[12..],
        aad: header,
    };
    cipher.decrypt(&nonce, payload).ok()
}

fn three_records_plaintext() -> Vec<u8> {
    (0..192).map(|i| (i % 251) as u8).collect()
}

#[test]
fn each_header_field_case_has_that_field_as_its_only_defect() {
    for name in [
        "bad_magic",
        "unsupported_version",
        "unknown_suite",
        "nonzero_reserved",
        "record_size_too_small",
        "record_size_too_large",
        "header_errors_magic_before_version",
        "header_errors_version_before_rest",
    ] {
        let mut v = vector(name);
        let s = stream(&mut v);
        assert_eq!(s.header.len(), 76, "{name}");
        assert!(commitment_holds(&s.file_key, &s.header), "{name}");
        let opened = lenient_open(&s.file_key, &s.header, &s.ciphertext);
        assert_eq!(opened, Some(three_records_plaintext()), "{name}");
    }
}

#[test]
fn commitment_cases_fail_only_the_commitment() {
    // The key opens every record and the metadata; only the commitment is not its own.
    let mut v = vector("commitment_fails_records_open");
    let s = stream(&mut v);
    assert!(!commitment_holds(&s.file_key, &s.header));
    assert!(Header::parse(&s.header).is_ok());
    let opened = lenient_open(&s.file_key, &s.header, &s.ciphertext);
    assert_eq!(opened, Some(three_records_plaintext()));
    let StreamExpect::Failure {
        metadata: Some(sealed),
        ..
    } = &s.expect
    else {
        panic!("commitment_fails_records_open carries metadata");
    };
    let json = lenient_open_metadata(&s.file_key, &s.header, sealed).unwrap();
    assert!(json.starts_with(b"{\"name\":\"exactly-64-bytes"));

    for name in [
        "wrong_commitment",
        "wrong_header_salt",
        "wrong_header_record_size",
    ] {
        let mut v = vector(name);
        let s = stream(&mut v);
        assert!(Header::parse(&s.header).is_ok(), "{name}");
        assert!(!commitment_holds(&s.file_key, &s.header), "{name}");
    }
    // And the records-only cases have a good commitment.
    for name in ["other_header_same_key", "other_record_size_same_key"] {
        let mut v = vector(name);
        let s = stream(&mut v);
        assert!(commitment_holds(&s.file_key, &s.header), "{name}");
    }
}

/// RustCrypto style: every single-byte change to a success vector must fail, wherever it
/// lands (header, any record, any tag, the metadata nonce, ciphertext or tag), and so must
/// every cut.
#[test]
fn flipping_any_byte_of_a_success_vector_fails() {
    let mut checked = 0;
    for mut v in vectors() {
        let Case::Stream(s) = &mut v.case else {
            continue;
        };
        let StreamExpect::Success { metadata, .. } = &s.expect else {
            continue;
        };
        let key = FileKey::from_bytes(s.file_key);
        let header = Header::parse(&s.header).unwrap();
        for i in 0..s.ciphertext.len() {
            for flip in [0x01, 0x80] {
                let mut section = s.ciphertext.clone();
                section[i] ^= flip;
                assert!(
                    open_stream(&key, &header, &section).is_err(),
                    "{}: byte {i}",
                    v.name
                );
                checked += 1;
            }
        }
        for len in 0..s.ciphertext.len() {
            let cut = open_stream(&key, &header, &s.ciphertext[..len]);
            assert!(cut.is_err(), "{}: cut at {len}", v.name);
        }
        for i in 0..s.header.len() {
            let mut bytes = s.header.clone();
            bytes[i] ^= 0x01;
            let err = Header::parse(&bytes)
                .and_then(|h| open_stream(&key, &h, &s.ciphertext))
                .unwrap_err();
            assert!(
                [
                    "invalid_header",
                    "unsupported_version",
                    "key_commitment_failed"
                ]
                .contains(&err.code()),
                "{}: header byte {i}: {err}",
                v.name
            );
            checked += 1;
        }
        let m = metadata.as_ref().unwrap();
        let keys = key.derive(&header).unwrap();
        for i in 0..m.sealed.len() {
            let mut sealed = m.sealed.clone();
            sealed[i] ^= 0x01;
            let err = open_metadata(&keys.metadata, &header, &sealed).unwrap_err();
            assert_eq!(
                err.code(),
                "metadata_auth_failed",
                "{}: metadata byte {i}",
                v.name
            );
            checked += 1;
        }
    }
    assert!(checked > 2000, "only {checked} flips");
}
