//! The processes' entry points as library functions, so `stack` can run each of them as a
//! child of its own executable (`stack child backend ...`): `cargo run --bin stack` then works
//! on a fresh checkout without building the other binaries first.

pub mod backend;
pub mod proxy;
pub mod sampleapp;
