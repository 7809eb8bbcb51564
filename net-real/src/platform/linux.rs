//! The Linux implementation: epoll, eventfd and the Linux-only socket options (see the
//! parent module for the contract, and `crate::evloop` for why each option is used).

use super::Readiness;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags};
use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const NAME: &str = "epoll";

/// Connections the kernel queues per listener before accepting.
const BACKLOG: i32 = 1024;

/// A worker's epoll instance.
pub(crate) struct Poller {
    ep: OwnedFd,
}

/// What one wait returned.
pub(crate) struct Events {
    list: Vec<epoll::Event>,
}

impl Events {
    pub fn with_capacity(n: usize) -> Events {
        Events {
            list: Vec::with_capacity(n),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (u64, Readiness)> + '_ {
        self.list
            .iter()
            .map(|ev| (ev.data.u64(), readiness(ev.flags)))
    }
}

fn readiness(flags: EventFlags) -> Readiness {
    let broken = EventFlags::ERR | EventFlags::HUP;
    Readiness {
        readable: flags.intersects(EventFlags::IN | EventFlags::RDHUP | broken),
        writable: flags.intersects(EventFlags::OUT | broken),
    }
}

/// A socket's place in a [`Poller`]. Closing a descriptor takes it out of every epoll set, so
/// there is nothing to release.
#[derive(Debug, Default)]
pub(crate) struct Registration;

impl Registration {
    pub fn release(&mut self, _fd: BorrowedFd<'_>) {}
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            ep: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        })
    }

    /// Level-triggered read interest (listeners, which stay readable while connections wait).
    pub fn add_listener(&self, l: &TcpListener, token: u64) -> io::Result<()> {
        match epoll::add(&self.ep, l, EventData::new_u64(token), EventFlags::IN) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn remove_listener(&self, l: &TcpListener) -> io::Result<()> {
        Ok(epoll::delete(&self.ep, l)?)
    }

    /// Edge-triggered read interest in a [`Notifier`].
    pub fn add_notifier(&self, n: &Notifier, token: u64) -> io::Result<()> {
        epoll::add(
            &self.ep,
            &n.fd,
            EventData::new_u64(token),
            EventFlags::IN | EventFlags::ET,
        )?;
        Ok(())
    }

    /// Edge-triggered read and write interest in a connection's socket. Adding reports
    /// readiness that is already there, so nothing is lost by adding late.
    pub fn register(&self, s: &TcpStream, token: u64) -> io::Result<Registration> {
        epoll::add(
            &self.ep,
            s,
            EventData::new_u64(token),
            EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET,
        )?;
        Ok(Registration)
    }

    /// Waits for events or until `timeout` passes; an interruption returns no events.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.list.clear();
        let timeout = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        match epoll::wait(
            &self.ep,
            rustix::buffer::spare_capacity(&mut events.list),
            timeout.as_ref(),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A wake-up other threads can give a poller (an eventfd).
pub(crate) struct Notifier {
    fd: OwnedFd,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        Ok(Notifier {
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
        })
    }
    pub fn notify(&self) {
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }
    /// Consumes the notifications so far (the next one is a new edge).
    pub fn clear(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
    }
}

/// A non-blocking, close-on-exec TCP socket of `addr`'s family.
fn tcp_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    Ok(rustix::net::socket_with(
        family,
        SocketType::STREAM,
        flags,
        None,
    )?)
}

/// `n` listening sockets on `local` (already checked free), one per worker, bound with
/// `SO_REUSEPORT` so the kernel spreads new connections over them.
pub(crate) fn listen_group(local: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let fd = tcp_socket(local)?;
        sockopt::set_socket_reuseaddr(&fd, true)?;
        sockopt::set_socket_reuseport(&fd, true)?;
        // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt
        // here instead of one per connection. Without it the tail of a file sent after its
        // head waits for the client's delayed ACK.
        sockopt::set_tcp_nodelay(&fd, true)?;
        defer_accept(&fd)?;
        rustix::net::bind(&fd, &local)?;
        rustix::net::listen(&fd, BACKLOG)?;
        listeners.push(TcpListener::from(fd));
    }
    Ok(listeners)
}

/// `TCP_DEFER_ACCEPT` (nginx's `listen ... deferred`): the kernel hands a connection to
/// `accept` only once its first bytes have arrived, or after about a second without them. An
/// HTTP client always speaks first, so the worker takes a connection with its request already
/// there and serves it at once. Without it, half the connections of a `Connection: close` run
/// came before their requests: a `read` that found nothing, an `epoll_ctl` and a trip through
/// `epoll_wait` each (strace, 1 MiB files at 50 connections: 8.9 system calls a request, 7.2
/// with it). A silent client costs a request socket in the kernel rather than a connection in
/// the worker; once accepted, the machine's header-read deadline applies as before.
fn defer_accept(fd: &OwnedFd) -> io::Result<()> {
    // The same one second nginx uses: how long a connection waits is not what matters, only
    // that the wait is bounded (the kernel counts it in SYN-ACK retransmissions).
    let secs: libc::c_int = 1;
    // SAFETY: `fd` is an open socket for the duration of the call, and the option value is a
    // live `c_int` whose size is the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes one connection: non-blocking, close-on-exec, `TCP_NODELAY` inherited.
pub(crate) fn accept(l: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (fd, addr) = rustix::net::acceptfrom_with(l, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
    let peer = addr
        .and_then(|a| SocketAddr::try_from(a).ok())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Ok((TcpStream::from(fd), peer))
}

/// Stops a listener's accepting for good (the kernel sends new connections to the group's
/// other sockets while they still listen).
pub(crate) fn stop_listening(l: &TcpListener) {
    let _ = rustix::net::shutdown(l, rustix::net::Shutdown::Read);
}

/// Starts a non-blocking connect to `addr` with `TCP_NODELAY`: the socket becomes writable
/// when it is done, and [`connect_result`] then says how it went.
pub(crate) fn connect_start(addr: SocketAddr) -> io::Result<TcpStream> {
    let fd = tcp_socket(addr)?;
    sockopt::set_tcp_nodelay(&fd, true)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

/// How a connect started by [`connect_start`] ended, once its socket is writable.
pub(crate) fn connect_result(stream: &TcpStream) -> io::Result<()> {
    match sockopt::socket_error(stream)? {
        Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One write with `MSG_MORE`: a short last packet waits for more bytes, an uncork or the FIN.
pub(crate) fn write_more(s: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    Ok(rustix::net::send(s, bytes, rustix::net::SendFlags::MORE)?)
}

/// Sets or clears `TCP_CORK`; whether the socket is now corked.
pub(crate) fn set_cork(s: &TcpStream, on: bool) -> bool {
    sockopt::set_tcp_cork(s, on).is_ok() && on
}

/// Sends up to `count` bytes of `file` from `offset` into `socket` without copying them
/// through user space (`sendfile`); `scratch` is unused here.
pub(crate) fn send_file(
    socket: &TcpStream,
    file: &File,
    offset: u64,
    count: usize,
    _scratch: &mut [u8],
) -> io::Result<usize> {
    let mut off = offset;
    Ok(rustix::fs::sendfile(socket, file, Some(&mut off), count)?)
}

/// The real path of an open file, asked of the kernel (`/proc/self/fd/N`).
pub(crate) fn real_path(file: &File) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_fd().as_raw_fd())).ok()
}

/// Fills `buf` from the kernel's random source.
pub(crate) fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            // No kernel randomness (a kernel older than 3.17): nothing safe to fall back to.
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
}
