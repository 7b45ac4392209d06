//! Runs every test vector of `tests/vectors/` (docs/FORMAT.md §9) against this crate,
//! whole and incrementally, and checks that every single-byte change to a success vector
//! fails.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use sealdrop_protocol::{
    format::{FileKey, FileMetadata, Header, StreamOpener, open_metadata, open_stream},
    testkit::{self, CASES, Expect, Failure, Native, Subject, Vector},
};

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

fn run(subject: &dyn Subject) -> Result<usize, Vec<testkit::Mismatch>> {
    let files = files();
    testkit::check_files(files.iter().map(|(n, t)| (n.as_str(), t.as_str())), subject)
}

#[test]
fn every_vector_passes_natively() {
    match run(&Native) {
        Ok(count) => assert_eq!(count, CASES.len()),
        Err(mismatches) => panic!("{mismatches:#?}"),
    }
}

/// The same format through [`StreamOpener`], fed in awkward chunks: a downloader's view.
struct Incremental {
    chunk: usize,
}

impl Subject for Incremental {
    fn open_stream(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        section: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let header = Header::parse(header)?;
        let key = FileKey::from_bytes(*file_key).derive(&header).content;
        let mut opener = StreamOpener::new(key, header, section.len() as u64)?;
        let mut out = Vec::new();
        for piece in section.chunks(self.chunk) {
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
        Native.seal_stream(file_key, header, plaintext)
    }

    fn open_metadata(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        sealed: &[u8],
    ) -> Result<FileMetadata, Failure> {
        Native.open_metadata(file_key, header, sealed)
    }

    fn seal_metadata(
        &self,
        file_key: &[u8; 32],
        header: &[u8],
        nonce: &[u8; 12],
        metadata: &FileMetadata,
    ) -> Result<Vec<u8>, Failure> {
        Native.seal_metadata(file_key, header, nonce, metadata)
    }
}

#[test]
fn every_vector_passes_incrementally() {
    for chunk in [1, 5, 64, 80, 81, 1 << 20] {
        if let Err(mismatches) = run(&Incremental { chunk }) {
            panic!("chunks of {chunk}: {mismatches:#?}");
        }
    }
}

#[test]
fn the_runner_notices_a_missing_file_and_a_wrong_expectation() {
    let mut files = files();
    files.retain(|(name, _)| name != "dropped_last_record.txt");
    let err = testkit::check_files(files.iter().map(|(n, t)| (n.as_str(), t.as_str())), &Native)
        .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].case, "dropped_last_record");

    let dropped = vectors()
        .into_iter()
        .find(|v| v.name == "dropped_last_record")
        .unwrap();
    for (code, record) in [
        ("truncated", Some(0)),
        ("truncated", None),
        ("record_auth_failed", Some(1)),
    ] {
        let mut v = dropped.clone();
        v.expect = Expect::Failure(Failure {
            code: code.into(),
            record,
        });
        assert!(testkit::check(&v, &Native).is_err(), "{code} {record:?}");
    }

    let mut v = vectors()
        .into_iter()
        .find(|v| v.name == "three_records")
        .unwrap();
    v.ciphertext[0] ^= 1;
    assert!(testkit::check(&v, &Native).is_err());
}

/// RustCrypto style: every single-byte change to a success vector must fail, wherever it
/// lands (header, any record, any tag, the metadata nonce, ciphertext or tag), and so must
/// every cut.
#[test]
fn flipping_any_byte_of_a_success_vector_fails() {
    let mut checked = 0;
    for v in vectors() {
        let Expect::Success { .. } = v.expect else {
            continue;
        };
        let key = FileKey::from_bytes(v.file_key);
        let header = Header::parse(&v.header).unwrap();
        for i in 0..v.ciphertext.len() {
            for flip in [0x01, 0x80] {
                let mut section = v.ciphertext.clone();
                section[i] ^= flip;
                assert!(
                    open_stream(&key, &header, &section).is_err(),
                    "{}: byte {i}",
                    v.name
                );
                checked += 1;
            }
        }
        for len in 0..v.ciphertext.len() {
            let cut = open_stream(&key, &header, &v.ciphertext[..len]);
            assert!(cut.is_err(), "{}: cut at {len}", v.name);
        }
        for i in 0..v.header.len() {
            let mut bytes = v.header.clone();
            bytes[i] ^= 0x01;
            let opened = Header::parse(&bytes).and_then(|h| open_stream(&key, &h, &v.ciphertext));
            assert!(opened.is_err(), "{}: header byte {i}", v.name);
            checked += 1;
        }
        let m = v.metadata.as_ref().unwrap();
        let keys = key.derive(&header);
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
    assert!(checked > 1500, "only {checked} flips");
}
