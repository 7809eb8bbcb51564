//! The portable implementation: the `polling` crate (epoll, kqueue; edge-triggered mode is
//! required, which both have) and POSIX calls only (see the parent module for the contract).
//!
//! What it gives up against the Linux one, each a measured saving there, none a correctness
//! matter: `sendfile` (a file is copied through the worker's scratch buffer), deferred accept
//! (an accepted connection may have nothing to read yet), `MSG_MORE`/`TCP_CORK` (the last
//! packet of a closing exchange goes apart from the FIN), and one listening socket per worker
//! (one socket is shared: `SO_REUSEPORT` balances only on Linux and FreeBSD's `_LB` variant,
//! and on macOS the last socket bound would take every connection).

use super::Readiness;
use polling::{Event, PollMode};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("the portable event loop packs 64-bit tokens into the poller's keys");

pub(crate) const NAME: &str = "polling";

/// A worker's poller, shared with the registrations that must leave it (an `Arc` only so
/// that it can be made before its worker thread starts; one thread uses it).
pub(crate) struct Poller {
    inner: Arc<polling::Poller>,
}

/// What one wait returned.
pub(crate) struct Events {
    inner: polling::Events,
}

impl Events {
    pub fn with_capacity(n: usize) -> Events {
        Events {
            inner: polling::Events::with_capacity(NonZeroUsize::new(n.max(1)).expect("n >= 1")),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (u64, Readiness)> + '_ {
        self.inner.iter().map(|ev| {
            let broken = ev.is_err() == Some(true);
            (
                ev.key as u64,
                Readiness {
                    readable: ev.readable || broken,
                    writable: ev.writable || broken,
                },
            )
        })
    }
}

/// A socket's place in a [`Poller`]: released (deleted from the poller) before the socket
/// closes, as `polling` requires.
pub(crate) struct Registration {
    poller: Arc<polling::Poller>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registration")
    }
}

impl Registration {
    pub fn release(&mut self, fd: BorrowedFd<'_>) {
        let _ = self.poller.delete(fd);
    }
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        let inner = polling::Poller::new()?;
        if !inner.supports_edge() {
            return Err(io::Error::other(
                "this system's poller has no edge-triggered mode, which the event loop needs",
            ));
        }
        Ok(Poller {
            inner: Arc::new(inner),
        })
    }

    fn add(&self, fd: BorrowedFd<'_>, ev: Event, mode: PollMode) -> io::Result<()> {
        // SAFETY: every source added here is deleted before it closes or outlives the poller:
        // connections through `Registration::release` (called by `Sock`'s `Drop`), listeners
        // by `remove_listener` or by the worker dropping its poller first, notifiers by living
        // in `Arc`s that the workers' pollers do not outlive.
        match unsafe { self.inner.add_with_mode(fd.as_raw_fd(), ev, mode) } {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    /// Level-triggered read interest (listeners, which stay readable while connections wait).
    pub fn add_listener(&self, l: &TcpListener, token: u64) -> io::Result<()> {
        self.add(l.as_fd(), Event::readable(token as usize), PollMode::Level)
    }

    pub fn remove_listener(&self, l: &TcpListener) -> io::Result<()> {
        self.inner.delete(l)
    }

    /// Edge-triggered read interest in a [`Notifier`].
    pub fn add_notifier(&self, n: &Notifier, token: u64) -> io::Result<()> {
        self.add(
            n.reader.as_fd(),
            Event::readable(token as usize),
            PollMode::Edge,
        )
    }

    /// Edge-triggered read and write interest in a connection's socket.
    pub fn register(&self, s: &TcpStream, token: u64) -> io::Result<Registration> {
        self.add(s.as_fd(), Event::all(token as usize), PollMode::Edge)?;
        Ok(Registration {
            poller: self.inner.clone(),
        })
    }

    /// Waits for events or until `timeout` passes; an interruption returns no events.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.inner.clear();
        match self.inner.wait(&mut events.inner, timeout) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A wake-up other threads can give a poller: one end of a socket pair, the other in the
/// poller.
pub(crate) struct Notifier {
    reader: UnixStream,
    writer: UnixStream,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(Notifier { reader, writer })
    }
    pub fn notify(&self) {
        // A full pair already holds a wake-up.
        let _ = (&self.writer).write(&[1]);
    }
    /// Consumes the notifications so far (the next one is a new edge).
    pub fn clear(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.reader).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// `n` handles on one listening socket on `local` (already checked free), one per worker:
/// every worker polls it and the first to accept takes the connection.
pub(crate) fn listen_group(local: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    let first = TcpListener::bind(local)?;
    first.set_nonblocking(true)?;
    let mut listeners = Vec::with_capacity(n);
    for _ in 1..n {
        listeners.push(first.try_clone()?);
    }
    listeners.push(first);
    Ok(listeners)
}

/// Takes one connection, non-blocking, with `TCP_NODELAY` (not inherited everywhere).
pub(crate) fn accept(l: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (s, peer) = l.accept()?;
    s.set_nonblocking(true)?;
    s.set_nodelay(true)?;
    Ok((s, peer))
}

/// Nothing to do for a shared socket: every worker stops polling it, and it closes with them.
pub(crate) fn stop_listening(_l: &TcpListener) {}

/// Starts a non-blocking connect to `addr` with `TCP_NODELAY`: the socket becomes writable
/// when it is done, and [`connect_result`] then says how it went.
pub(crate) fn connect_start(addr: SocketAddr) -> io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketType};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket(family, SocketType::STREAM, None)?;
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
    rustix::io::ioctl_fionbio(&fd, true)?;
    rustix::net::sockopt::set_tcp_nodelay(&fd, true)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

/// How a connect started by [`connect_start`] ended, once its socket is writable.
pub(crate) fn connect_result(stream: &TcpStream) -> io::Result<()> {
    match stream.take_error()? {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// A plain write: there is no `MSG_MORE` here.
pub(crate) fn write_more(s: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    (&*s).write(bytes)
}

/// No corking here: the socket never is.
pub(crate) fn set_cork(_s: &TcpStream, _on: bool) -> bool {
    false
}

/// Sends up to `count` bytes of `file` from `offset` into `socket`, copied through `scratch`:
/// one read and one write. Bytes read but not written are read again next time.
pub(crate) fn send_file(
    socket: &TcpStream,
    file: &File,
    offset: u64,
    count: usize,
    scratch: &mut [u8],
) -> io::Result<usize> {
    let want = count.min(scratch.len());
    let got = loop {
        match file.read_at(&mut scratch[..want], offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => break other?,
        }
    };
    if got == 0 {
        return Ok(0);
    }
    (&*socket).write(&scratch[..got])
}

/// The real path of an open file, where the system can tell it (macOS); elsewhere the caller
/// resolves the name and checks that it still names the same file.
pub(crate) fn real_path(file: &File) -> Option<PathBuf> {
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        use std::os::unix::ffi::OsStringExt;
        rustix::fs::getpath(file)
            .ok()
            .map(|c| PathBuf::from(std::ffi::OsString::from_vec(c.into_bytes())))
    }
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    {
        let _ = file;
        None
    }
}

/// Fills `buf` from the system's random device.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // No randomness to be had: nothing safe to fall back to.
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("reading /dev/urandom failed");
}
