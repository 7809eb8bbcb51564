//! Durable-log framing: intact records read back; torn and corrupt tails found and located.

use proptest::prelude::*;
use weaprous_core::node::record::{crc32c, encode, scan, Tail, HEADER};

#[test]
fn crc32c_check_value() {
    // The CRC catalogue's check value for CRC-32/ISCSI.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
}

fn log_of(payloads: &[&[u8]]) -> Vec<u8> {
    let mut log = Vec::new();
    for p in payloads {
        encode(p, &mut log);
    }
    log
}

#[test]
fn whole_records_read_back_in_order() {
    let log = log_of(&[b"one", b"", b"three"]);
    let s = scan(&log, 1024);
    assert_eq!(s.tail, Tail::Clean);
    assert_eq!(s.valid_len, log.len());
    let got: Vec<&[u8]> = s.records.iter().map(|r| &log[r.clone()]).collect();
    assert_eq!(got, [&b"one"[..], b"", b"three"]);
}

#[test]
fn a_torn_tail_is_found_wherever_the_write_stopped() {
    let log = log_of(&[b"kept", b"torn record"]);
    let first = HEADER + 4;
    for cut in first + 1..log.len() {
        let s = scan(&log[..cut], 1024);
        assert_eq!(
            (s.tail.clone(), s.valid_len, s.records.len()),
            (Tail::Torn, first, 1),
            "cut at {cut}"
        );
        assert_eq!(s.dropped(cut), cut - first);
    }
}

#[test]
fn a_flipped_bit_or_an_oversized_length_is_corrupt() {
    let log = log_of(&[b"kept", b"changed", b"after"]);
    let second = HEADER + 4;
    let mut bad = log.clone();
    bad[second + HEADER + 2] ^= 0x10;
    let s = scan(&bad, 1024);
    assert_eq!(
        (s.tail, s.valid_len, s.records.len()),
        (Tail::Corrupt, second, 1)
    );
    let s = scan(&log, 6);
    assert_eq!(
        (s.tail, s.valid_len),
        (Tail::Corrupt, second),
        "a length over the limit"
    );
    let mut bad_len = log.clone();
    bad_len[second] = 3;
    let s = scan(&bad_len, 1024);
    assert_eq!(
        (s.tail, s.valid_len),
        (Tail::Corrupt, second),
        "a wrong length moves the checksum"
    );
}

proptest! {
    /// Any prefix of a log reads as the records wholly inside it, never more, never a panic.
    #[test]
    fn every_prefix_reads_as_its_whole_records(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let log = log_of(&refs);
        let cut = cut.index(log.len() + 1);
        let s = scan(&log[..cut], 1024);
        let mut ends = vec![0usize];
        for p in &payloads {
            ends.push(ends.last().unwrap() + HEADER + p.len());
        }
        let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
        prop_assert_eq!(s.records.len(), whole);
        prop_assert_eq!(s.valid_len, ends[whole]);
        prop_assert_eq!(s.tail, if cut == ends[whole] { Tail::Clean } else { Tail::Torn });
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let s = scan(&bytes, 64);
        prop_assert!(s.valid_len <= bytes.len());
    }
}
