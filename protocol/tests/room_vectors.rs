//! Runs every room payload vector of `tests/vectors/room/` (docs/FORMAT.md, Room
//! payloads) against this crate, and checks that the runner can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealdrop_protocol::room::vectors::{CASES, Expect, RoomVector, VectorError, check};

fn files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/room");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_case_has_a_file_and_passes() {
    let files = files();
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut cases = CASES.to_vec();
    names.sort_unstable();
    cases.sort_unstable();
    assert_eq!(names, cases, "one file per case, no more, no less");
    for (name, text) in &files {
        assert_eq!(check(text).unwrap_or_else(|e| panic!("{e}")), *name);
    }
}

#[test]
fn the_runner_fails_every_altered_vector() {
    for (_, text) in files() {
        let v = RoomVector::parse(&text).unwrap();
        // Any flipped byte of a payload that should open makes it fail.
        if let Expect::Success { .. } = v.expect {
            let bytes = URL_SAFE_NO_PAD.decode(&v.sealed).unwrap();
            for i in 0..bytes.len() {
                let mut altered = v.clone();
                let mut b = bytes.clone();
                b[i] ^= 0x80;
                altered.sealed = URL_SAFE_NO_PAD.encode(b);
                assert!(
                    matches!(check(&altered.to_text()), Err(VectorError::Mismatch { .. })),
                    "{} byte {i}",
                    v.name
                );
            }
            let mut wrong_plaintext = v.clone();
            if let Expect::Success { plaintext, .. } = &mut wrong_plaintext.expect {
                plaintext.push(b'!');
            }
            assert!(check(&wrong_plaintext.to_text()).is_err(), "{}", v.name);
        }
        // A failure case that expects another code is a mismatch.
        if let Expect::Failure(code) = &v.expect {
            let mut other = v.clone();
            other.expect = Expect::Failure(format!("{code}_not"));
            assert!(check(&other.to_text()).is_err(), "{}", v.name);
        }
    }
}
