//! The response parser (what the proxy reads from upstreams) never panics, and its events do
//! not depend on how the input is split. Same input layout as `request_parser`; the flag byte's
//! bit 0 says the upstream closed (which completes a close-delimited body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::http::parse::Kind;
use weaprous_core::http::split_check::check_fuzz_input;

fuzz_target!(|data: &[u8]| check_fuzz_input(Kind::Response, data));
