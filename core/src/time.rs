//! Time as an input.
//!
//! [`Instant`] is nanoseconds since the node's epoch, chosen by the driver: `net-real` maps the OS
//! monotonic clock onto it, `net-sim` owns it per simulated host (with skew). Nothing in core ever
//! asks what time it is; every `handle_*` call is told. Wall-clock time (for `Date` headers) is a
//! separate input, [`UnixTime`], because it may jump while the monotonic clock may not.

use serde::{Deserialize, Serialize};
pub use std::time::Duration;

/// A point on a node's monotonic clock: nanoseconds since that node's epoch.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Instant(pub u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);
    pub const MAX: Instant = Instant(u64::MAX);

    pub fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    /// `self + d`, saturating at [`Instant::MAX`] ("never").
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

/// Wall-clock time in whole seconds since 1970-01-01T00:00:00Z, as given by the driver.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct UnixTime(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_saturates_instead_of_wrapping() {
        assert_eq!(Instant(u64::MAX - 1) + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant(5).since(Instant(9)), Duration::ZERO);
        assert_eq!(Instant(9).since(Instant(5)), Duration::from_nanos(4));
    }
}
