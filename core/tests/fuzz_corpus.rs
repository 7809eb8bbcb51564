//! Replays the fuzz corpus (`fuzz/corpus/request_parser/`) as an ordinary test, with the
#![allow(clippy::disallowed_methods)] // tests read their fixtures from disk
//! fuzz target's input layout, so every input the fuzzer kept stays checked without nightly.

use std::path::Path;
use weaprous_core::http::parse::Kind;
use weaprous_core::http::split_check::assert_split_invariant;

fn replay(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n % 8) as usize;
    if rest.len() < 2 * n + 1 {
        return;
    }
    let cuts: Vec<usize> = rest[..2 * n]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize)
        .collect();
    let eof = rest[2 * n] & 1 == 1;
    assert_split_invariant(Kind::Request, &rest[2 * n + 1..], &cuts, eof);
}

#[test]
fn request_parser_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_parser");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is checked in") {
        let path = entry.unwrap().path();
        replay(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count >= 20, "corpus has {count} inputs");
}
