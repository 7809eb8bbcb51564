//! The request parser never panics, and its events do not depend on how the input is split.
//!
//! Input layout: byte 0 = how many cut points (0..=7), then two bytes per cut point (position,
//! little-endian, clamped to the payload), then one flag byte (bit 0: the peer closed), then the
//! payload. The same layout is replayed by `core/tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::http::parse::Kind;
use weaprous_core::http::split_check::check_fuzz_input;

fuzz_target!(|data: &[u8]| check_fuzz_input(Kind::Request, data));
