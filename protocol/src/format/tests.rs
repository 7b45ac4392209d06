//! Boundary and property tests across the whole format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;

const R: u32 = 64;
const RU: usize = R as usize;

fn key() -> FileKey {
    FileKey::from_bytes(core::array::from_fn(|i| i as u8))
}

fn header(record_size: u32) -> Header {
    Header::new(
        &key(),
        record_size,
        core::array::from_fn(|i| 0x80 + i as u8),
    )
    .unwrap()
}

fn content_key(h: &Header) -> ContentKey {
    key().derive(h).unwrap().content
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Splits a section into its sealed records, by the reader's layout.
fn records(h: &Header, section: &[u8]) -> Vec<Vec<u8>> {
    let layout = Layout::for_section(h.record_size(), section.len() as u64).unwrap();
    (0..layout.record_count())
        .map(|i| {
            let r = layout.sealed_range(i).unwrap();
            section[r.start as usize..r.end as usize].to_vec()
        })
        .collect()
}

#[test]
fn round_trip_at_every_boundary() {
    let h = header(R);
    for len in [
        0,
        1,
        RU - 1,
        RU,
        RU + 1,
        2 * RU - 1,
        2 * RU,
        3 * RU,
        3 * RU + 1,
    ] {
        let pt = plaintext(len);
        let section = seal_stream(&key(), &h, &pt).unwrap();
        let layout = Layout::for_plaintext(R, len as u64).unwrap();
        assert_eq!(section.len() as u64, layout.section_len(), "L = {len}");
        assert_eq!(open_stream(&key(), &h, &section).unwrap(), pt, "L = {len}");
        // Every record opens alone, given only its index and the layout.
        let keys = key().derive(&h).unwrap();
        for (i, sealed) in records(&h, &section).iter().enumerate() {
            let i = i as u64;
            let r = layout.plaintext_range(i).unwrap();
            let opened = open_record(&keys.content, &h, i, layout.is_last(i), sealed).unwrap();
            assert_eq!(opened, &pt[r.start as usize..r.end as usize]);
        }
    }
}

#[test]
fn records_seal_independently_and_in_any_order() {
    let h = header(R);
    let pt = plaintext(3 * RU + 5);
    let layout = Layout::for_plaintext(R, pt.len() as u64).unwrap();
    let keys = key().derive(&h).unwrap();
    let mut section = Vec::new();
    for i in (0..layout.record_count()).rev() {
        let r = layout.plaintext_range(i).unwrap();
        let sealed = seal_record(
            &keys.content,
            &h,
            i,
            layout.is_last(i),
            &pt[r.start as usize..r.end as usize],
        )
        .unwrap();
        section.splice(0..0, sealed);
    }
    assert_eq!(section, seal_stream(&key(), &h, &pt).unwrap());
}

#[test]
fn stream_errors_name_the_record() {
    let h = header(R);
    let section = seal_stream(&key(), &h, &plaintext(3 * RU)).unwrap();
    let recs = records(&h, &section);
    let open = |parts: &[&Vec<u8>]| {
        let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        open_stream(&key(), &h, &bytes)
    };
    let (r0, r1, r2) = (&recs[0], &recs[1], &recs[2]);
    assert_eq!(open(&[r0, r1]), Err(FormatError::Truncated { record: 1 }));
    assert_eq!(open(&[r0]), Err(FormatError::Truncated { record: 0 }));
    assert_eq!(
        open(&[r1, r0, r2]),
        Err(FormatError::RecordAuthFailed { record: 0 })
    );
    assert_eq!(
        open(&[r0, r0, r1, r2]),
        Err(FormatError::RecordAuthFailed { record: 1 })
    );
    assert_eq!(
        open(&[r0, r1, r2, r2]),
        Err(FormatError::TrailingData { record: 2 })
    );
    // The last record alone authenticates only at its own index.
    assert_eq!(
        open(&[r2]),
        Err(FormatError::RecordAuthFailed { record: 0 })
    );
    // An empty file's record is a 16-byte last record; after other records it is refused
    // by length before any decryption.
    let empty = seal_stream(&key(), &h, &[]).unwrap();
    assert_eq!(empty.len(), 16);
    assert_eq!(
        open(&[r0, r1, r2, &empty]).unwrap_err().code(),
        "invalid_length"
    );
    // Two empty records read as one 16-byte record, which does not authenticate.
    assert_eq!(
        open(&[&empty, &empty]),
        Err(FormatError::RecordAuthFailed { record: 0 })
    );
    assert_eq!(open(&[]).unwrap_err().code(), "invalid_length");
}

#[test]
fn another_header_fails_every_record() {
    let h = header(R);
    let section = seal_stream(&key(), &h, &plaintext(2 * RU)).unwrap();
    // Valid headers for the same key (their commitments check): the AAD differs.
    let other_salt = Header::new(&key(), R, [0x81; 32]).unwrap();
    let other_size = header(R + 1);
    for other in [other_salt, other_size] {
        let err = open_stream(&key(), &other, &section).unwrap_err();
        assert_eq!(err, FormatError::RecordAuthFailed { record: 0 });
    }
    // Another key fails the commitment before any record is tried.
    let other_key = FileKey::from_bytes([0; 32]);
    assert_eq!(
        open_stream(&other_key, &h, &section),
        Err(FormatError::KeyCommitmentFailed)
    );
    assert_eq!(
        seal_stream(&other_key, &h, &[1]),
        Err(FormatError::KeyCommitmentFailed)
    );
}

#[test]
fn default_record_size_and_two_full_default_records() {
    let h = header(DEFAULT_RECORD_SIZE);
    let pt = plaintext(2 * DEFAULT_RECORD_SIZE as usize + 1);
    let section = seal_stream(&key(), &h, &pt).unwrap();
    assert_eq!(section.len(), pt.len() + 3 * TAG_LEN);
    assert_eq!(open_stream(&key(), &h, &section).unwrap(), pt);
}

#[test]
fn opener_in_any_chunking_matches_open_stream() {
    let h = header(R);
    let pt = plaintext(3 * RU + 7);
    let section = seal_stream(&key(), &h, &pt).unwrap();
    for chunk in [1, 7, 16, RU, RU + 16, RU + 17, section.len()] {
        let mut opener = StreamOpener::new(content_key(&h), h, section.len() as u64).unwrap();
        let mut out = Vec::new();
        for piece in section.chunks(chunk) {
            opener.feed(piece, &mut out).unwrap();
        }
        assert!(opener.is_complete());
        opener.finish().unwrap();
        assert_eq!(out, pt, "chunks of {chunk}");
    }
}

#[test]
fn opener_releases_only_authenticated_records_and_stays_failed() {
    let h = header(R);
    let pt = plaintext(3 * RU);
    let mut section = seal_stream(&key(), &h, &pt).unwrap();
    section[(RU + 16) + 3] ^= 1; // inside record 1
    let mut opener = StreamOpener::new(content_key(&h), h, section.len() as u64).unwrap();
    let mut out = Vec::new();
    let err = opener.feed(&section, &mut out).unwrap_err();
    assert_eq!(err, FormatError::RecordAuthFailed { record: 1 });
    assert_eq!(out, &pt[..RU], "only record 0 was released");
    assert_eq!(opener.feed(&[], &mut out), Err(err.clone()));
    assert_eq!(opener.push_record(&section[..RU + 16]), Err(err.clone()));
    assert!(!opener.is_complete());
    assert_eq!(opener.finish(), Err(err));
}

#[test]
fn opener_push_record_and_early_end() {
    let h = header(R);
    let pt = plaintext(RU + 3);
    let section = seal_stream(&key(), &h, &pt).unwrap();
    let new = || StreamOpener::new(content_key(&h), h, section.len() as u64).unwrap();

    let mut opener = new();
    assert_eq!(opener.next_record(), Some(0));
    assert_eq!(opener.next_sealed_len(), Some(R as u64 + 16));
    assert_eq!(opener.push_record(&section[..RU + 16]).unwrap(), &pt[..RU]);
    assert_eq!(opener.next_sealed_len(), Some(3 + 16));
    assert_eq!(opener.push_record(&section[RU + 16..]).unwrap(), &pt[RU..]);
    assert_eq!(opener.next_record(), None);
    // Past a known section length, the first record not accepted is N = 2.
    assert_eq!(
        opener.push_record(&[0; 19]),
        Err(FormatError::TrailingData { record: 2 })
    );

    let mut opener = new();
    let mut out = Vec::new();
    opener.feed(&section, &mut out).unwrap();
    assert_eq!(
        opener.feed(&[0], &mut out),
        Err(FormatError::TrailingData { record: 2 })
    );
    let mut opener = new();
    let mut longer = section.clone();
    longer.push(0);
    assert_eq!(
        opener.feed(&longer, &mut Vec::new()),
        Err(FormatError::TrailingData { record: 2 })
    );

    let mut opener = new();
    opener.feed(&section[..RU + 16 + 2], &mut out).unwrap();
    assert_eq!(
        opener.push_record(&section[RU + 16..]).unwrap_err().code(),
        "invalid_length"
    );

    // Short of a known section length: the first record that did not arrive whole.
    let mut opener = new();
    opener.feed(&section[..RU + 20], &mut Vec::new()).unwrap();
    assert_eq!(opener.finish(), Err(FormatError::Truncated { record: 1 }));
    let mut opener = new();
    opener.feed(&section[..RU + 16], &mut Vec::new()).unwrap();
    assert_eq!(opener.finish(), Err(FormatError::Truncated { record: 1 }));
    let mut opener = new();
    opener.feed(&section[..RU + 15], &mut Vec::new()).unwrap();
    assert_eq!(opener.finish(), Err(FormatError::Truncated { record: 0 }));
    let opener = new();
    assert_eq!(opener.finish(), Err(FormatError::Truncated { record: 0 }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_round_trip(record_size in 16u32..200, pt in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let h = header(record_size);
        let section = seal_stream(&key(), &h, &pt).unwrap();
        let layout = Layout::for_plaintext(record_size, pt.len() as u64).unwrap();
        prop_assert_eq!(section.len() as u64, layout.section_len());
        prop_assert_eq!(Layout::for_section(record_size, section.len() as u64).unwrap(), layout);
        prop_assert_eq!(open_stream(&key(), &h, &section).unwrap(), pt);
    }

    #[test]
    fn prop_any_single_byte_corruption_fails(
        record_size in 16u32..100,
        pt in proptest::collection::vec(any::<u8>(), 0..600),
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let h = header(record_size);
        let mut section = seal_stream(&key(), &h, &pt).unwrap();
        let i = at.index(section.len());
        section[i] ^= flip;
        let err = open_stream(&key(), &h, &section).unwrap_err();
        prop_assert_eq!(err.code(), "record_auth_failed");
        prop_assert_eq!(err.record(), Some(i as u64 / (u64::from(record_size) + 16)));
    }

    #[test]
    fn prop_any_header_byte_corruption_fails(
        pt in proptest::collection::vec(any::<u8>(), 0..300),
        at in 0..HEADER_LEN,
        flip in 1u8..,
    ) {
        let h = header(R);
        let section = seal_stream(&key(), &h, &pt).unwrap();
        let mut bytes = h.encode();
        bytes[at] ^= flip;
        let result = Header::parse(&bytes).and_then(|other| open_stream(&key(), &other, &section));
        // Refused by the header checks or the commitment, before any record is tried.
        let code = result.unwrap_err().code();
        prop_assert!(
            ["invalid_header", "unsupported_version", "key_commitment_failed"].contains(&code),
            "byte {}: {}", at, code
        );
    }

    #[test]
    fn prop_reordering_records_fails(
        pt in proptest::collection::vec(any::<u8>(), 2 * RU + 1..6 * RU),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
    ) {
        let h = header(R);
        let section = seal_stream(&key(), &h, &pt).unwrap();
        let mut recs = records(&h, &section);
        let n = recs.len();
        // A permutation that is not the identity: rotate by a non-zero amount, or swap.
        let k = (order % (n as u64 - 1)) as usize + 1;
        if order % 2 == 0 {
            recs.rotate_left(k);
        } else {
            recs.swap(0, k);
        }
        let shuffled: Vec<u8> = recs.concat();
        let err = open_stream(&key(), &h, &shuffled);
        prop_assert!(err.is_err(), "reordering by {} opened", k);
    }

    #[test]
    fn prop_opener_chunking_is_invisible(
        pt in proptest::collection::vec(any::<u8>(), 0..500),
        cuts in proptest::collection::vec(1usize..100, 1..20),
    ) {
        let h = header(R);
        let section = seal_stream(&key(), &h, &pt).unwrap();
        let mut opener = StreamOpener::new(content_key(&h), h, section.len() as u64).unwrap();
        let mut out = Vec::new();
        let mut rest = &section[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let (piece, tail) = rest.split_at((*cut).min(rest.len()));
            opener.feed(piece, &mut out).unwrap();
            rest = tail;
        }
        opener.finish().unwrap();
        prop_assert_eq!(out, pt);
    }

    /// A reader that opens whole records through another backend and reports what
    /// `Layout::arrived` says about the rest agrees with the incremental opener, whatever
    /// number of bytes arrives.
    #[test]
    fn prop_arrived_agrees_with_the_opener(
        len in 0usize..400,
        available in 0usize..500,
    ) {
        let h = header(R);
        let mut bytes = seal_stream(&key(), &h, &plaintext(len)).unwrap();
        let layout = Layout::for_section(R, bytes.len() as u64).unwrap();
        bytes.resize(available, 0xee);
        let mut opener = StreamOpener::new(content_key(&h), h, layout.section_len()).unwrap();
        let mut out = Vec::new();
        let by_opener = opener.feed(&bytes, &mut out).and_then(|()| opener.finish());
        let (whole, error) = layout.arrived(available as u64);
        let records_len = (0..whole).map(|i| layout.plaintext_len(i).unwrap()).sum::<u64>();
        prop_assert_eq!(out.len() as u64, records_len);
        prop_assert_eq!(by_opener.err(), error);
    }
}
