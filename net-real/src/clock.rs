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

/// Points `timer` at `deadline` only when that is earlier than what it is armed for, and
/// returns what it is armed for now. A later or absent deadline leaves the earlier timer in
/// place: it fires early, the machine's `Timeout` is then a harmless no-op (the node contract
/// allows calls before the deadline) and the timer is re-armed from the new deadline. Busy
/// connections push their idle deadline later on every request; re-arming each time cost a
/// timer-wheel update and a reactor wake-up per request (seen as `timerfd_settime` in strace).
pub fn rearm(
    timer: &mut async_io::Timer,
    armed: Option<weaprous_core::time::Instant>,
    deadline: Option<weaprous_core::time::Instant>,
) -> Option<weaprous_core::time::Instant> {
    match (deadline, armed) {
        (Some(d), Some(a)) if d >= a => armed,
        (Some(d), _) => {
            timer.set_at(to_std(d));
            Some(d)
        }
        (None, _) => armed,
    }
}
