//! `proxy.conf` parsing never panics, and what parses writes back to text that parses to the
//! same routes (`weaprous_core::proxy::config::assert_round_trip`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::proxy::config::assert_round_trip;

fuzz_target!(|data: &[u8]| {
    assert_round_trip(&String::from_utf8_lossy(data));
});
