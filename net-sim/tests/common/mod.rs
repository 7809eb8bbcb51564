//! What the simulator's test files share.
#![allow(dead_code)]

/// Seeds `0..N`: `N` from `SIM_SEEDS` (longer local sweeps), else `default`.
pub fn seeds(default: u64) -> std::ops::Range<u64> {
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    0..n
}
