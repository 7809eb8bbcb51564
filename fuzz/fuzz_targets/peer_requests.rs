//! Any sequence of requests to a peer node's API: no panic, one answer each, errors as JSON.
//! The input layout and what must hold: `weaprous_core::p2p::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::p2p::check::check_requests;

fuzz_target!(|data: &[u8]| check_requests(data));
