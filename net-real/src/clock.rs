//! The real clocks as core time: monotonic nanoseconds since the process's epoch, and wall
//! seconds since 1970.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use weaprous_core::node::Now;
use weaprous_core::time::{Instant as CoreInstant, UnixTime};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The current time for a machine.
pub fn now() -> Now {
    let mono = CoreInstant(epoch().elapsed().as_nanos() as u64);
    let wall = UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    Now { mono, wall }
}

/// The real instant of a core deadline.
pub fn to_std(t: CoreInstant) -> Instant {
    epoch() + std::time::Duration::from_nanos(t.0)
}
