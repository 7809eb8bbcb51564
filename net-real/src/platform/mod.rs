//! Every call this crate makes to the operating system beyond `std`'s portable surface, in one
//! place, with two implementations behind the same names:
//!
//! * [`linux`](self) (Linux without the `portable` feature): epoll, eventfd, `sendfile`,
//!   `TCP_DEFER_ACCEPT`, `MSG_MORE` and `TCP_CORK`, `SO_REUSEPORT` groups, `/proc`;
//! * `portable` (every other Unix, and Linux with `--features portable`): the `polling` crate
//!   (the smol project's layer over epoll, kqueue and event ports) and plain POSIX calls:
//!   read + write instead of `sendfile`, no deferred accept, no corking, one listening socket
//!   shared by the workers instead of one per worker, a socket pair instead of an eventfd.
//!
//! The event loop ([`crate::evloop`]) and the handlers name only what this module exports:
//! [`Poller`], [`Events`], [`Readiness`], [`Registration`], [`Notifier`] and the functions.
//! `tests/platform_rule.rs` fails the tests when any other file of the crate names epoll,
//! eventfd, `/proc`, `libc`, `rustix` or a Linux-only socket option.
//!
//! # Contract shared by both implementations
//! * Connections are registered once, edge-triggered, for reading and writing: an event says
//!   readiness *may* have changed, and the loop keeps its own flags until an operation comes up
//!   short ([`crate::evloop::Sock`]). Listeners and notifiers are level-triggered for reading.
//! * A [`Registration`] is released before its socket closes ([`Registration::release`], which
//!   `Sock`'s `Drop` calls): the portable poller keeps per-source state on some systems.
//! * `wait` returns with no events when interrupted by a signal.
//! * Tokens are `u64`; the portable poller's keys are `usize`, so this crate needs 64-bit
//!   pointers there.

#[cfg(all(target_os = "linux", not(feature = "portable")))]
mod linux;
#[cfg(all(target_os = "linux", not(feature = "portable")))]
pub(crate) use linux::*;

#[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
mod portable;
#[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
pub(crate) use portable::*;

/// What an event says about a socket, whichever poller reported it. An error or a hang-up
/// counts as both: the next read or write finds out which.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub readable: bool,
    pub writable: bool,
}

/// Which event loop this build uses, for logs and benchmarks.
pub const BACKEND: &str = NAME;

/// Asks the process `pid` to shut down gracefully (SIGTERM).
pub(crate) fn ask_to_stop(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or(std::io::ErrorKind::InvalidInput)?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).map_err(Into::into)
}

/// Makes this process receive SIGTERM when its parent dies. Linux and FreeBSD; elsewhere
/// nothing is done.
pub(crate) fn stop_with_parent() {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    {
        let parent = rustix::process::getppid();
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
        // The parent may have died before the request: then nobody would send the signal.
        if rustix::process::getppid() != parent {
            let _ = ask_to_stop(std::process::id());
        }
    }
}
