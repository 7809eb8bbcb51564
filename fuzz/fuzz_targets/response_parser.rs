//! The response parser (what the proxy reads from upstreams) never panics, and its events do
//! not depend on how the input is split. Same input layout as `request_parser`; the flag byte's
//! bit 0 says the upstream closed (which completes a close-delimited body).
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
    assert_split_invariant(Kind::Response, &rest[2 * n + 1..], &cuts, eof);
});
