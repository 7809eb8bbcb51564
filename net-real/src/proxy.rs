//! Runs the proxy's connection machine ([`ProxyConn`]) on real sockets: one task per client
//! connection owns the client socket, the machine and at most one upstream socket, and calls
//! the machine inline, as [`crate::server`] does for single-socket machines.
//!
//! * `Choose` and `Report` go to the shared [`ProxyNode`] behind a mutex (held for a pick or a
//!   count, never across an await).
//! * `Connect` first tries the [`Pool`] of idle upstream connections (up to 1,024 per
//!   upstream, as many as a busy proxy keeps in use; each closed after 30 s idle), then
//!   connects; `Release { reuse }` gives the socket back to
//!   the pool or drops it.
//! * The connect is raced against the machine's deadline; when the deadline wins, the machine
//!   hears `Timeout` (and fails the attempt) and the connect is abandoned.

use crate::clock;
use crate::server::{try_write, with_scratch, Written};
use crate::shutdown::DrainSignal;
use async_io::{Async, Timer};
use futures_lite::future::{self, or};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weaprous_core::node::ConnInput;
use weaprous_core::proxy::conn::{
    Outcome, ProxyConn, ProxyInput, ProxyLog, ProxyNode, ProxyOutput, ProxyShared, RouteId, UpInput,
};

/// An idle upstream connection and when it became idle.
type Idle = (Async<TcpStream>, Instant);

/// Idle upstream connections by address.
pub struct Pool {
    idle: Mutex<BTreeMap<String, Vec<Idle>>>,
    /// Most idle connections kept per upstream.
    pub per_upstream: usize,
    /// An idle connection older than this is closed instead of reused (shorter than the usual
    /// upstream keep-alive timeout, so the upstream rarely closes one we are about to use).
    pub idle_timeout: Duration,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(BTreeMap::new()),
            per_upstream: 1024,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl Pool {
    /// An idle connection to `addr` that still looks open, if any.
    pub fn take(&self, addr: &str) -> Option<Async<TcpStream>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(addr)?;
        // Most recently used first: the warmest connection, and the least likely to have been
        // closed by the upstream while it idled. No probe read: a connection that turns out
        // closed fails before any response byte, and the machine retries once on a fresh one
        // (a probe would cost a system call on every request to save one in a thousand).
        while let Some((s, since)) = list.pop() {
            if since.elapsed() <= self.idle_timeout {
                return Some(s);
            }
        }
        None
    }
    pub fn put(&self, addr: &str, s: Async<TcpStream>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(addr.to_string()).or_default();
        if list.len() < self.per_upstream {
            list.push((s, Instant::now()));
        }
    }
    /// Idle connections held (for tests).
    pub fn len(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.values().map(Vec::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What every proxy connection task shares.
pub struct ProxyContext {
    pub shared: Arc<ProxyShared>,
    pub node: Mutex<ProxyNode>,
    pub pool: Pool,
    pub access_log: bool,
}

impl ProxyContext {
    /// Carries out a `Report` on the shared node.
    fn report(&self, route: RouteId, upstream: usize, outcome: Outcome) {
        let now = clock::now();
        let mut node = self.node.lock().unwrap_or_else(|p| p.into_inner());
        node.report(route, upstream, outcome, now.mono);
    }
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<Async<TcpStream>>> + Send>>;

async fn connect(addr: String) -> io::Result<Async<TcpStream>> {
    let target: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => {
            let a = addr.clone();
            smol::unblock(move || a.to_socket_addrs())
                .await?
                .next()
                .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "no address"))?
        }
    };
    let s = Async::<TcpStream>::connect(target).await?;
    let _ = s.get_ref().set_nodelay(true);
    Ok(s)
}

enum Wake {
    ClientRead,
    ClientWrite,
    UpRead,
    UpWrite,
    Connected(io::Result<Async<TcpStream>>),
    Timer,
    Drain,
}

/// Reads what is there from `s` into the thread's scratch buffer and hands it to `deliver`;
/// `Some(true)` on EOF, `Some(false)` on an error, `None` when nothing was ready. No buffer
/// belongs to the connection, so an idle one holds none (DESIGN.md §5).
fn read_into(s: &Async<TcpStream>, mut deliver: impl FnMut(&[u8])) -> Option<bool> {
    with_scratch(|buf| match s.get_ref().read(buf) {
        Ok(0) => Some(true),
        Ok(n) => {
            deliver(&buf[..n]);
            None
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => None,
        Err(_) => Some(false),
    })
}

/// Drives one client connection until it closes.
pub async fn run_proxy_connection(
    client: Async<TcpStream>,
    peer: SocketAddr,
    cx: Arc<ProxyContext>,
    drain: DrainSignal,
    conn_id: u64,
    _alive: smol::channel::Sender<()>,
) {
    let mut conn = ProxyConn::new(
        cx.shared.clone(),
        clock::now(),
        &peer.ip().to_string(),
        conn_id,
    );
    let mut up: Option<(String, Async<TcpStream>)> = None;
    let mut connecting: Option<(String, Connecting)> = None;
    let mut close_after_flush = false;
    let mut drained = drain.is_draining();
    if drained {
        conn.handle(clock::now(), ProxyInput::Client(ConnInput::Drain));
    }
    let mut timer = Timer::never();
    let mut armed = None;
    loop {
        let deadline = loop {
            match conn.poll_output() {
                ProxyOutput::Choose {
                    route,
                    tried,
                    client,
                } => {
                    let now = clock::now();
                    let chosen = {
                        let mut node = cx.node.lock().unwrap_or_else(|p| p.into_inner());
                        node.choose(&cx.shared, route, now.mono, &client, &tried)
                    };
                    conn.handle(now, ProxyInput::Chosen(chosen));
                }
                ProxyOutput::Report {
                    route,
                    upstream,
                    outcome,
                } => cx.report(route, upstream, outcome),
                ProxyOutput::Connect { addr } => {
                    if let Some(s) = cx.pool.take(&addr) {
                        up = Some((addr, s));
                        conn.handle(
                            clock::now(),
                            ProxyInput::Up(UpInput::Connected { reused: true }),
                        );
                    } else {
                        connecting = Some((addr.clone(), Box::pin(connect(addr))));
                    }
                }
                ProxyOutput::Release { reuse } => {
                    connecting = None;
                    if let Some((addr, s)) = up.take() {
                        if reuse {
                            cx.pool.put(&addr, s);
                        } else {
                            let _ = s.get_ref().shutdown(Shutdown::Both);
                        }
                    }
                }
                ProxyOutput::Log(l) => {
                    if cx.access_log {
                        log_line(peer, &l);
                    }
                }
                ProxyOutput::CloseClient => close_after_flush = true,
                ProxyOutput::AbortClient => {
                    let _ = client.get_ref().shutdown(Shutdown::Both);
                    return;
                }
                ProxyOutput::Wait { deadline } => break deadline,
            }
        };
        // Write what waits, on both sides, as far as the sockets take it.
        let pending = conn.client_transmit();
        if !pending.is_empty() {
            match try_write(&client, pending) {
                Written::Some(n) => {
                    conn.handle(clock::now(), ProxyInput::Client(ConnInput::Flushed(n)));
                    continue;
                }
                Written::Blocked => {}
                Written::Again => continue,
                Written::Broken => {
                    // The client is gone: tell the machine, carry out what it says last
                    // (reports, releases, its log line), and stop.
                    conn.handle(clock::now(), ProxyInput::Client(ConnInput::Reset));
                    finish_after_client_reset(&mut conn, &cx, &mut up, peer);
                    let _ = client.get_ref().shutdown(Shutdown::Both);
                    return;
                }
            }
        } else if close_after_flush {
            let _ = client.get_ref().shutdown(Shutdown::Write);
            return;
        }
        if let Some((_, s)) = &up {
            let pending = conn.up_transmit();
            if !pending.is_empty() {
                match try_write(s, pending) {
                    Written::Some(n) => {
                        conn.handle(clock::now(), ProxyInput::Up(UpInput::Flushed(n)));
                        continue;
                    }
                    Written::Blocked => {}
                    Written::Again => continue,
                    Written::Broken => {
                        conn.handle(clock::now(), ProxyInput::Up(UpInput::Reset));
                        continue;
                    }
                }
            }
        }
        armed = crate::clock::rearm(&mut timer, armed, deadline);
        let want_client_read = conn.wants_read_client();
        let want_client_write = !conn.client_transmit().is_empty();
        let want_up_read = up.is_some() && conn.wants_read_up();
        let want_up_write = up.is_some() && !conn.up_transmit().is_empty();
        if !want_client_read
            && !want_client_write
            && up.is_none()
            && connecting.is_none()
            && deadline.is_none()
        {
            let _ = client.get_ref().shutdown(Shutdown::Both);
            return;
        }
        let wake = {
            let client_io = async {
                match (want_client_read, want_client_write) {
                    (false, false) => future::pending().await,
                    (true, false) => {
                        let _ = client.readable().await;
                        Wake::ClientRead
                    }
                    (false, true) => {
                        let _ = client.writable().await;
                        Wake::ClientWrite
                    }
                    (true, true) => {
                        or(
                            async {
                                let _ = client.readable().await;
                                Wake::ClientRead
                            },
                            async {
                                let _ = client.writable().await;
                                Wake::ClientWrite
                            },
                        )
                        .await
                    }
                }
            };
            let up_io = async {
                match &up {
                    Some((_, s)) if want_up_read || want_up_write => {
                        or(
                            async {
                                if want_up_read {
                                    let _ = s.readable().await;
                                    Wake::UpRead
                                } else {
                                    future::pending().await
                                }
                            },
                            async {
                                if want_up_write {
                                    let _ = s.writable().await;
                                    Wake::UpWrite
                                } else {
                                    future::pending().await
                                }
                            },
                        )
                        .await
                    }
                    _ => future::pending().await,
                }
            };
            let connect_done = async {
                match &mut connecting {
                    Some((_, f)) => Wake::Connected(f.as_mut().await),
                    None => future::pending().await,
                }
            };
            let tick = async {
                (&mut timer).await;
                Wake::Timer
            };
            let drain_wait = async {
                if drained {
                    future::pending().await
                } else {
                    drain.wait().await;
                    Wake::Drain
                }
            };
            or(or(client_io, up_io), or(connect_done, or(tick, drain_wait))).await
        };
        match wake {
            Wake::ClientRead => {
                let got = read_into(&client, |b| {
                    conn.handle(clock::now(), ProxyInput::Client(ConnInput::Data(b)))
                });
                match got {
                    Some(true) => conn.handle(clock::now(), ProxyInput::Client(ConnInput::Eof)),
                    Some(false) => conn.handle(clock::now(), ProxyInput::Client(ConnInput::Reset)),
                    None => {}
                }
            }
            Wake::UpRead => {
                if let Some((_, s)) = &up {
                    let got = read_into(s, |b| {
                        conn.handle(clock::now(), ProxyInput::Up(UpInput::Data(b)))
                    });
                    match got {
                        Some(true) => conn.handle(clock::now(), ProxyInput::Up(UpInput::Eof)),
                        Some(false) => conn.handle(clock::now(), ProxyInput::Up(UpInput::Reset)),
                        None => {}
                    }
                }
            }
            Wake::ClientWrite | Wake::UpWrite => {}
            Wake::Connected(result) => {
                let addr = connecting.take().map(|(a, _)| a).unwrap_or_default();
                match result {
                    Ok(s) => {
                        up = Some((addr, s));
                        conn.handle(
                            clock::now(),
                            ProxyInput::Up(UpInput::Connected { reused: false }),
                        );
                    }
                    Err(_) => conn.handle(clock::now(), ProxyInput::Up(UpInput::ConnectFailed)),
                }
            }
            Wake::Timer => {
                armed = None;
                timer = Timer::never();
                conn.handle(clock::now(), ProxyInput::Client(ConnInput::Timeout));
            }
            Wake::Drain => {
                drained = true;
                conn.handle(clock::now(), ProxyInput::Client(ConnInput::Drain));
            }
        }
    }
}

/// Drains the machine's last outputs after the client broke: health reports and the upstream's
/// release still matter; new work does not.
fn finish_after_client_reset(
    conn: &mut ProxyConn,
    cx: &ProxyContext,
    up: &mut Option<(String, Async<TcpStream>)>,
    peer: SocketAddr,
) {
    for _ in 0..1000 {
        match conn.poll_output() {
            ProxyOutput::Report {
                route,
                upstream,
                outcome,
            } => cx.report(route, upstream, outcome),
            ProxyOutput::Release { reuse } => {
                if let Some((addr, s)) = up.take() {
                    if reuse {
                        cx.pool.put(&addr, s);
                    }
                }
            }
            ProxyOutput::Log(l) if cx.access_log => log_line(peer, &l),
            // The machine asks for nothing else after a reset; stop at the first wait.
            ProxyOutput::Wait { .. } => return,
            _ => {}
        }
    }
}

fn log_line(peer: SocketAddr, l: &ProxyLog) {
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{} \"{} {}\" host={} {} {} upstream={} tries={} connect={:.3}ms first_byte={:.3}ms total={:.3}ms{}",
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
