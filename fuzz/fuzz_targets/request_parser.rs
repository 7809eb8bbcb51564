//! The request parser never panics, and its events do not depend on how the input is split.
//!
//! Input layout: byte 0 = how many cut points (0..=7), then two bytes per cut point (position,
//! little-endian, clamped to the payload), then one flag byte (bit 0: the peer closed), then the
//! payload. The same layout is replayed by `core/tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::http::parse::Kind;
use weaprous_core::http::split_check::assert_split_invariant;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n % 8) as usize;
    if rest.len() < 2 * n + 1 {
        return;
    }
    let cuts: Vec<usize> = rest[..2 * n].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as usize).collect();
    let eof = rest[2 * n] & 1 == 1;
    let payload = &rest[2 * n + 1..];
    assert_split_invariant(Kind::Request, payload, &cuts, eof);
});
