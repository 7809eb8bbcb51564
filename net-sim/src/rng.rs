//! Independent random streams from one seed.
//!
//! Each concern (network latency, chunking, faults, workload, disk, clocks, each node) draws
//! from its own stream, so a change in how one of them uses randomness does not reshuffle the
//! others: a scenario that shrinks by one fault keeps the same latencies and workload.

/// SplitMix64: a good way to derive unrelated seeds from one.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The stream named `stream` of simulation `seed`.
pub fn stream(seed: u64, stream: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(splitmix(seed ^ splitmix(stream)))
}

pub const NET: u64 = 1;
pub const CHUNKS: u64 = 2;
pub const WORKLOAD: u64 = 3;
pub const DISK: u64 = 4;
pub const FILES: u64 = 5;
pub const FAULTS: u64 = 6;
pub const CLOCKS: u64 = 7;
pub const NODES: u64 = 8;
/// Generating a scenario's fault timeline and rates (swarm testing).
pub const PLAN: u64 = 9;
/// Which requests are POSTs.
pub const POSTS: u64 = 10;
/// Which request families a run's clients send (see `workload::Mix`).
pub const MIX: u64 = 11;
/// Which of a proxy-world client's requests go to the scripted origins.
pub const ORIGINS: u64 = 12;
