//! Each host's own view of time: the simulator's clock with an offset and a drift, and a wall
//! clock that can also jump (TigerBeetle's `TimeSim`, reduced to what our nodes read).
//!
//! * The **monotonic** clock is `sim + sim * drift_ppm / 1e6 + offset`: it never goes back, as
//!   `CLOCK_MONOTONIC` does not, so the node contract's "now never decreases" holds.
//! * The **wall** clock is the monotonic one plus an epoch plus jumps: an NTP step or an operator
//!   can move it either way, and `Date` headers and message timestamps must cope.
//! * Deadlines a node asks for are in its monotonic time; [`Clock::to_sim`] maps one back to the
//!   earliest simulator instant at which the node's clock has reached it.

use weaprous_core::node::Now;
use weaprous_core::time::{Instant, UnixTime};

/// The Unix time of the simulator's instant zero.
pub const WALL_EPOCH: u64 = 1_764_000_000;

/// Drift is kept well inside what real crystals do (±100 ppm) times ten, so that a deadline
/// mapped back to simulator time stays within a millisecond per ten seconds.
pub const MAX_DRIFT_PPM: i64 = 1_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Clock {
    pub offset_ns: u64,
    pub drift_ppm: i64,
    /// Sum of the wall-clock jumps so far, in seconds.
    pub wall_jump_s: i64,
}

impl Clock {
    pub fn mono(&self, sim: Instant) -> Instant {
        let drift = (sim.0 as i128 * self.drift_ppm.clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM) as i128)
            / 1_000_000;
        Instant((sim.0 as i128 + drift).max(0) as u64 + self.offset_ns)
    }
    pub fn now(&self, sim: Instant) -> Now {
        let mono = self.mono(sim);
        let wall = (WALL_EPOCH as i64 + (mono.0 / 1_000_000_000) as i64 + self.wall_jump_s).max(0);
        Now {
            mono,
            wall: UnixTime(wall as u64),
        }
    }
    /// The first simulator instant at which this clock reads at least `deadline`.
    pub fn to_sim(&self, deadline: Instant) -> Instant {
        let local = deadline.0.saturating_sub(self.offset_ns) as i128;
        let ppm = self.drift_ppm.clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM) as i128;
        // local = sim * (1e6 + ppm) / 1e6, so sim = ceil(local * 1e6 / (1e6 + ppm)).
        let den = 1_000_000 + ppm;
        let mut sim = ((local * 1_000_000 + den - 1) / den).max(0) as u64;
        // Integer rounding in `mono` can leave us a step off either way; walk to the exact one.
        while self.mono(Instant(sim)) < deadline && sim < u64::MAX {
            sim += 1;
        }
        while sim > 0 && self.mono(Instant(sim - 1)) >= deadline {
            sim -= 1;
        }
        Instant(sim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_map_back_to_the_first_instant_that_reaches_them() {
        for drift in [-1000, -37, 0, 1, 999] {
            for offset in [0, 5, 1_000_000_007] {
                let c = Clock {
                    offset_ns: offset,
                    drift_ppm: drift,
                    wall_jump_s: 0,
                };
                for d in [0u64, 1, 999, 1_000_000, 3_000_000_017, 86_400_000_000_000] {
                    let d = Instant(d + offset);
                    let s = c.to_sim(d);
                    assert!(
                        c.mono(s) >= d,
                        "drift {drift} offset {offset} deadline {d:?}"
                    );
                    assert!(s.0 == 0 || c.mono(Instant(s.0 - 1)) < d);
                }
            }
        }
    }

    #[test]
    fn monotonic_time_never_goes_back_but_wall_time_jumps() {
        let mut c = Clock {
            offset_ns: 10,
            drift_ppm: -500,
            wall_jump_s: 0,
        };
        let mut last = Instant::ZERO;
        for t in (0..10_000_000_000u64).step_by(333_333_333) {
            let m = c.mono(Instant(t));
            assert!(m >= last);
            last = m;
        }
        let before = c.now(Instant(5_000_000_000)).wall;
        c.wall_jump_s = -3600;
        assert_eq!(c.now(Instant(5_000_000_000)).wall.0, before.0 - 3600);
    }
}
