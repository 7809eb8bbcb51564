//! Runs the proxy's connection machine ([`ProxyConn`]) on [`crate::evloop`]: each worker thread
//! owns its client connections, the machine of each, their upstream sockets and a pool of idle
//! upstream connections, and calls the machines inline.
//!
//! * `Choose` and `Report` go to the shared [`ProxyNode`] behind a mutex (held for a pick or a
//!   count): every worker balances over the same counts.
//! * `Connect` first takes an idle pooled connection to that address (most recently used
//!   first), then connects without blocking; the connect's end is the socket turning
//!   writable. It is raced against the machine's deadline like everything else: when the
//!   deadline comes first the machine hears `Timeout`, fails the attempt and releases the
//!   socket, which is closed.
//! * `Release { reuse }` puts the socket in the worker's pool or closes it. The pool is per
//!   worker (no lock on the data path): up to [`POOL_PER_UPSTREAM`] connections per address,
//!   none reused after [`POOL_IDLE`]. Pooled sockets stay in the epoll set, so one the
//!   upstream closes (or sends anything to while idle) leaves the pool at once instead of
//!   failing the next request; no probe read is made before reuse.
//! * A name that is not an address literal (`localhost:9000`) is resolved on first use and
//!   remembered for [`RESOLVED_FOR`]; the lookup blocks the worker, as nginx resolves
//!   `proxy_pass` names when it loads its configuration.
//! * A new client connection takes the configuration current when it is accepted ([`Current`]);
//!   a SIGHUP reload swaps it for later connections.

use crate::evloop::{self, Handler, Io, Key, Read1, Slab, Sock, Write1};
use crate::platform::Readiness;
use crate::server::ServeOptions;
use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use weaprous_core::node::{ConnInput, Now};
use weaprous_core::proxy::conn::{
    Outcome, ProxyConn, ProxyInput, ProxyLog, ProxyNode, ProxyOutput, ProxyShared, RouteId, UpInput,
};
use weaprous_core::time::{Duration, Instant};

/// Most idle connections a worker keeps per upstream address.
pub const POOL_PER_UPSTREAM: usize = 1024;
/// An idle connection older than this is closed instead of reused (shorter than the usual
/// upstream keep-alive timeout, so the upstream rarely closes one we are about to use).
pub const POOL_IDLE: Duration = Duration::from_secs(30);
/// How long a resolved upstream name is used before it is looked up again.
pub const RESOLVED_FOR: Duration = Duration::from_secs(60);

/// Upstream sockets' keys carry this bit in their index, client sockets' do not.
const UP_BIT: u32 = 1 << 31;

/// What every connection of one configuration generation shares.
pub struct ProxyContext {
    pub shared: Arc<ProxyShared>,
    pub node: Mutex<ProxyNode>,
    pub access_log: bool,
}

impl ProxyContext {
    fn report(&self, route: RouteId, upstream: usize, outcome: Outcome, now: Now) {
        let mut node = self.node.lock().unwrap_or_else(|p| p.into_inner());
        node.report(route, upstream, outcome, now.mono);
    }
    fn choose(
        &self,
        route: RouteId,
        client: &str,
        tried: &[usize],
        now: Now,
    ) -> Option<(usize, String)> {
        let mut node = self.node.lock().unwrap_or_else(|p| p.into_inner());
        node.choose(&self.shared, route, now.mono, client, tried)
    }
}

/// The context new connections take; replaced on reload.
pub type Current = Arc<Mutex<Arc<ProxyContext>>>;

/// Serves the proxy until SIGINT/SIGTERM, then drains (see `evloop::run`).
pub fn serve_proxy(opts: ServeOptions, current: Current) -> io::Result<()> {
    let ids = Arc::new(AtomicU64::new(0));
    let access_log = opts.access_log;
    evloop::run(&opts, move || ProxyHandler {
        current: current.clone(),
        ids: ids.clone(),
        clients: Slab::default(),
        ups: Slab::default(),
        pool: BTreeMap::new(),
        resolved: BTreeMap::new(),
        access_log,
    })
}

/// A client connection and its machine.
struct Client {
    sock: Sock,
    peer: SocketAddr,
    cx: Arc<ProxyContext>,
    conn: ProxyConn,
    /// The upstream socket in use (connecting or connected).
    up: Option<Key>,
    close_after_flush: bool,
    armed: Option<Instant>,
}

/// An upstream socket: a client's, or idle in the pool.
struct Up {
    sock: Sock,
    addr: String,
    connecting: bool,
    /// The client using it; `None` while pooled.
    owner: Option<Key>,
    idle_since: Instant,
}

struct ProxyHandler {
    current: Current,
    ids: Arc<AtomicU64>,
    clients: Slab<Client>,
    ups: Slab<Up>,
    /// Idle upstream connections by address, most recently used last.
    pool: BTreeMap<String, Vec<Key>>,
    resolved: BTreeMap<String, (SocketAddr, Instant)>,
    access_log: bool,
}

fn up_key(k: Key) -> Key {
    Key {
        index: k.index | UP_BIT,
        generation: k.generation,
    }
}
fn slab_key(k: Key) -> Key {
    Key {
        index: k.index & !UP_BIT,
        generation: k.generation,
    }
}

impl Handler for ProxyHandler {
    fn accepted(&mut self, io: &mut Io, _listener: usize, stream: TcpStream, peer: SocketAddr) {
        let cx = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let conn = ProxyConn::new(cx.shared.clone(), io.now, &peer.ip().to_string(), id);
        let key = self.clients.insert(
            io.generation(),
            Client {
                sock: Sock::new(stream, true),
                peer,
                cx,
                conn,
                up: None,
                close_after_flush: false,
                armed: None,
            },
        );
        self.drive(io, key);
    }

    fn ready(&mut self, io: &mut Io, key: Key, flags: Readiness) {
        if key.index & UP_BIT == 0 {
            if let Some(c) = self.clients.get_mut(key) {
                c.sock.mark(flags);
                self.drive(io, key);
            }
            return;
        }
        let uk = slab_key(key);
        let Some(up) = self.ups.get_mut(uk) else {
            return;
        };
        let (r, w) = up.sock.mark(flags);
        match up.owner {
            // The connect ended (the socket turned writable): how, the socket's error says.
            Some(owner) if up.connecting && w => {
                up.connecting = false;
                let ok = evloop::connect_result(&up.sock.stream).is_ok();
                let input = if ok {
                    UpInput::Connected { reused: false }
                } else {
                    UpInput::ConnectFailed
                };
                if let Some(c) = self.clients.get_mut(owner) {
                    c.conn.handle(io.now, ProxyInput::Up(input));
                }
                self.drive(io, owner);
            }
            Some(owner) => self.drive(io, owner),
            // An idle pooled connection has nothing to say: the upstream closed it, or sent
            // something no request asked for. Either way it cannot be reused.
            None if r => {
                if let Some(list) = self.pool.get_mut(&up.addr) {
                    list.retain(|k| *k != uk);
                }
                self.ups.remove(uk);
            }
            None => {}
        }
    }

    fn wanted(&self, key: Key, at: Instant) -> bool {
        self.clients.get(key).is_some_and(|c| c.armed == Some(at))
    }

    fn due(&mut self, io: &mut Io, key: Key, _at: Instant) {
        if let Some(c) = self.clients.get_mut(key) {
            c.armed = None;
            c.conn
                .handle(io.now, ProxyInput::Client(ConnInput::Timeout));
            self.drive(io, key);
        }
    }

    fn drain(&mut self, io: &mut Io) {
        for key in self.clients.keys() {
            if let Some(c) = self.clients.get_mut(key) {
                c.conn.handle(io.now, ProxyInput::Client(ConnInput::Drain));
                self.drive(io, key);
            }
        }
        // Idle pooled connections serve nobody any more.
        for (_, list) in std::mem::take(&mut self.pool) {
            for uk in list {
                self.ups.remove(uk);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// What a pass over a client's machine ended with.
enum Next {
    /// Something changed: go round again.
    Again,
    /// Waiting for an event or the deadline.
    Wait(Option<Instant>),
    /// The client connection is finished.
    Close,
}

impl ProxyHandler {
    /// Carries out what the machine asks until it can do nothing more without a new event.
    fn drive(&mut self, io: &mut Io, key: Key) {
        loop {
            match self.pass(io, key) {
                Next::Again => {}
                Next::Wait(deadline) => {
                    let Some(c) = self.clients.get_mut(key) else {
                        return;
                    };
                    if c.sock.register(io, key).is_err() {
                        self.close_client(key);
                        return;
                    }
                    if let Some(at) = deadline {
                        if !matches!(c.armed, Some(armed) if armed <= at) {
                            c.armed = Some(at);
                            io.arm(key, at);
                        }
                    }
                    return;
                }
                Next::Close => {
                    self.close_client(key);
                    return;
                }
            }
        }
    }

    /// One round: the machine's outputs, then one write or read on either side.
    fn pass(&mut self, io: &mut Io, key: Key) -> Next {
        let deadline = loop {
            let Some(c) = self.clients.get_mut(key) else {
                return Next::Close;
            };
            match c.conn.poll_output() {
                ProxyOutput::Choose {
                    route,
                    tried,
                    client,
                } => {
                    let chosen = c.cx.choose(route, &client, &tried, io.now);
                    c.conn.handle(io.now, ProxyInput::Chosen(chosen));
                }
                ProxyOutput::Report {
                    route,
                    upstream,
                    outcome,
                } => c.cx.report(route, upstream, outcome, io.now),
                ProxyOutput::Connect { addr } => self.connect(io, key, addr),
                ProxyOutput::Release { reuse } => self.release(io, key, reuse),
                ProxyOutput::Log(l) => {
                    if self.access_log {
                        log_line(c.peer, &l);
                    }
                }
                ProxyOutput::CloseClient => c.close_after_flush = true,
                ProxyOutput::AbortClient => {
                    let _ = c.sock.stream.shutdown(Shutdown::Both);
                    return Next::Close;
                }
                ProxyOutput::Wait { deadline } => break deadline,
            }
        };
        let Some(c) = self.clients.get_mut(key) else {
            return Next::Close;
        };
        // The client side: write what waits, else finish a close.
        let pending = c.conn.client_transmit();
        if !pending.is_empty() {
            if c.sock.writable {
                match c.sock.write(pending) {
                    Write1::Wrote(n) => {
                        c.conn
                            .handle(io.now, ProxyInput::Client(ConnInput::Flushed(n)));
                        return Next::Again;
                    }
                    Write1::Blocked => {}
                    Write1::Again => return Next::Again,
                    Write1::Broken => {
                        // The client is gone: tell the machine, carry out what it says last
                        // (reports, releases, its log line), and stop.
                        c.conn.handle(io.now, ProxyInput::Client(ConnInput::Reset));
                        self.finish_after_client_reset(io, key);
                        return Next::Close;
                    }
                }
            }
        } else if c.close_after_flush {
            let _ = c.sock.stream.shutdown(Shutdown::Write);
            return Next::Close;
        }
        // The upstream side: write what waits.
        let up = c.up.and_then(|uk| self.ups.get_mut(uk).map(|u| (uk, u)));
        if let Some((_, u)) = up {
            if !u.connecting {
                let pending = c.conn.up_transmit();
                if !pending.is_empty() && u.sock.writable {
                    match u.sock.write(pending) {
                        Write1::Wrote(n) => {
                            c.conn.handle(io.now, ProxyInput::Up(UpInput::Flushed(n)));
                            return Next::Again;
                        }
                        Write1::Blocked => {}
                        Write1::Again => return Next::Again,
                        Write1::Broken => {
                            c.conn.handle(io.now, ProxyInput::Up(UpInput::Reset));
                            return Next::Again;
                        }
                    }
                }
            }
        }
        // Reads, each only while the machine wants that side.
        if c.conn.wants_read_client() && c.sock.can_read() {
            let input = match c.sock.read(&mut io.scratch) {
                Read1::Data(n) => ConnInput::Data(&io.scratch[..n]),
                Read1::Eof => ConnInput::Eof,
                Read1::Error => ConnInput::Reset,
                Read1::Nothing => return Next::Again,
            };
            c.conn.handle(io.now, ProxyInput::Client(input));
            return Next::Again;
        }
        let up = c.up.and_then(|uk| self.ups.get_mut(uk));
        if let Some(u) = up {
            if !u.connecting && c.conn.wants_read_up() && u.sock.can_read() {
                let input = match u.sock.read(&mut io.scratch) {
                    Read1::Data(n) => UpInput::Data(&io.scratch[..n]),
                    Read1::Eof => UpInput::Eof,
                    Read1::Error => UpInput::Reset,
                    Read1::Nothing => return Next::Again,
                };
                c.conn.handle(io.now, ProxyInput::Up(input));
                return Next::Again;
            }
        }
        let want_client =
            (c.conn.wants_read_client() && !c.sock.eof) || !c.conn.client_transmit().is_empty();
        if !want_client && c.up.is_none() && deadline.is_none() {
            let _ = c.sock.stream.shutdown(Shutdown::Both);
            return Next::Close;
        }
        Next::Wait(deadline)
    }

    /// `Connect`: a pooled connection if one is fresh, else a new non-blocking connect.
    fn connect(&mut self, io: &mut Io, key: Key, addr: String) {
        let now = io.now.mono;
        while let Some(uk) = self.pool.get_mut(&addr).and_then(Vec::pop) {
            let fresh = self
                .ups
                .get(uk)
                .is_some_and(|u| now.since(u.idle_since) < POOL_IDLE);
            if !fresh {
                self.ups.remove(uk);
                continue;
            }
            if let Some(u) = self.ups.get_mut(uk) {
                u.owner = Some(key);
            }
            if let Some(c) = self.clients.get_mut(key) {
                c.up = Some(uk);
                c.conn
                    .handle(io.now, ProxyInput::Up(UpInput::Connected { reused: true }));
            }
            return;
        }
        let started = self
            .resolve(&addr, io.now)
            .and_then(evloop::connect_start)
            .and_then(|stream| {
                let uk = self.ups.insert(
                    io.generation(),
                    Up {
                        // Not ready until the connect ends (the socket turns writable).
                        sock: Sock::new(stream, false),
                        addr,
                        connecting: true,
                        owner: Some(key),
                        idle_since: now,
                    },
                );
                let registered = match self.ups.get_mut(uk) {
                    Some(up) => up.sock.register(io, up_key(uk)),
                    None => Err(ErrorKind::NotFound.into()),
                };
                if let Err(e) = registered {
                    self.ups.remove(uk);
                    return Err(e);
                }
                Ok(uk)
            });
        if let Some(c) = self.clients.get_mut(key) {
            match started {
                Ok(uk) => c.up = Some(uk),
                Err(_) => c
                    .conn
                    .handle(io.now, ProxyInput::Up(UpInput::ConnectFailed)),
            }
        }
    }

    /// `Release`: back to this worker's pool when the machine says it may be reused.
    fn release(&mut self, io: &mut Io, key: Key, reuse: bool) {
        let Some(uk) = self.clients.get_mut(key).and_then(|c| c.up.take()) else {
            return;
        };
        let Some(u) = self.ups.get_mut(uk) else {
            return;
        };
        let room = !matches!(self.pool.get(&u.addr), Some(list) if list.len() >= POOL_PER_UPSTREAM);
        if reuse && !u.connecting && !u.sock.eof && room {
            u.owner = None;
            u.idle_since = io.now.mono;
            match self.pool.get_mut(&u.addr) {
                Some(list) => list.push(uk),
                None => {
                    self.pool.insert(u.addr.clone(), vec![uk]);
                }
            }
        } else {
            let _ = u.sock.stream.shutdown(Shutdown::Both);
            self.ups.remove(uk);
        }
    }

    /// Drains the machine's last outputs after the client broke: health reports and the
    /// upstream's release still matter; new work does not.
    fn finish_after_client_reset(&mut self, io: &mut Io, key: Key) {
        for _ in 0..1000 {
            let Some(c) = self.clients.get_mut(key) else {
                return;
            };
            match c.conn.poll_output() {
                ProxyOutput::Report {
                    route,
                    upstream,
                    outcome,
                } => c.cx.report(route, upstream, outcome, io.now),
                ProxyOutput::Release { reuse } => self.release(io, key, reuse),
                ProxyOutput::Log(l) if self.access_log => log_line(c.peer, &l),
                // The machine asks for nothing else after a reset; stop at the first wait.
                ProxyOutput::Wait { .. } => return,
                _ => {}
            }
        }
    }

    /// Forgets a finished client; an upstream socket it still holds is closed, not pooled.
    fn close_client(&mut self, key: Key) {
        if let Some(c) = self.clients.remove(key) {
            if let Some(uk) = c.up {
                self.ups.remove(uk);
            }
        }
    }

    fn resolve(&mut self, addr: &str, now: Now) -> io::Result<SocketAddr> {
        if let Ok(a) = addr.parse() {
            return Ok(a);
        }
        if let Some((a, at)) = self.resolved.get(addr) {
            if now.mono.since(*at) < RESOLVED_FOR {
                return Ok(*a);
            }
        }
        let a = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "no address"))?;
        self.resolved.insert(addr.to_string(), (a, now.mono));
        Ok(a)
    }
}

/// One access-log line (see `crate::server::timestamp` for its first field): the client, the
/// request, the host, status, body bytes, the upstream and attempts, the timings, and for a
/// failure why (`error="connect refused"`), one line per request in the spirit of nginx's
/// `log_format`, split by spaces for awk.
fn log_line(peer: SocketAddr, l: &ProxyLog) {
    let error = l
        .error
        .as_ref()
        .map(|e| format!(" error=\"{e}\""))
        .unwrap_or_default();
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{} {} \"{} {}\" host={} {} {} upstream={} tries={} connect={:.3}ms first_byte={:.3}ms total={:.3}ms{}{error}",
        crate::server::timestamp(),
        peer,
        l.method,
        l.target,
        l.host,
        l.status,
        l.bytes,
        l.upstream,
        l.attempts,
        l.connect_ns as f64 / 1e6,
        l.first_byte_ns as f64 / 1e6,
        l.duration_ns as f64 / 1e6,
        if l.aborted { " aborted" } else { "" }
    );
}
