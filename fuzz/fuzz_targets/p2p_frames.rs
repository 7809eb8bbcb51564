//! Any bytes on a P2P link, split anywhere: no panic, the same frames at every split, and
//! every frame read encodes back to itself. Layout and rules: `weaprous_core::p2p::wire::check_frames`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::p2p::wire::check_frames;

fuzz_target!(|data: &[u8]| check_frames(data));
