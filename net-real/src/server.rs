//! The accept loop and the per-connection task.
//!
//! Each accepted connection gets one task that owns the socket and its connection machine and
//! calls the machine inline (DESIGN.md §5: no channel hop per request). The task follows the
//! contract of [`weaprous_core::node`]: drain `poll_output`, write `transmit`, then wait for
//! whichever of readability (only while the machine `wants_read`), writability (only while
//! bytes wait), its deadline and the drain signal comes first. Reads go into a per-thread
//! scratch buffer, so an idle connection owns no buffer of the driver's.
//!
//! Executor: one shared `smol::Executor` run by `threads` threads (the main thread is one of
//! them). It gave the best throughput and tails in DESIGN.md §5's prototype.

use crate::clock;
use crate::files::Files;
use crate::shutdown::{drain_pair, terminate_signal, DrainSignal};
use async_io::{Async, Timer};
use futures_lite::future::{self, or};
use smol::Executor;
use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use weaprous_core::node::{AccessLog, ConnInput, ConnOutput, Connection, FileReply, FsError, Now};

/// How to run a server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Executor threads (default: one per core).
    pub threads: usize,
    /// How long in-flight exchanges may take to finish after SIGINT/SIGTERM.
    pub grace: Duration,
    /// Print one access-log line per request to stdout.
    pub access_log: bool,
    /// Name printed in the startup line.
    pub name: String,
}

impl ServeOptions {
    pub fn new(name: &str, addr: SocketAddr) -> Self {
        ServeOptions {
            addr,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            grace: Duration::from_secs(30),
            access_log: true,
            name: name.into(),
        }
    }
}

const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
}

/// Runs `f` with this thread's read buffer (what every connection task reads into).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH_BUF.with(|buf| f(&mut buf.borrow_mut()))
}

/// Binds, prints `<name> listening on <addr>`, and serves until SIGINT/SIGTERM; then stops
/// accepting, drains every connection and returns once they are done (or `grace` passed).
pub fn serve<C, F>(opts: ServeOptions, make: F) -> io::Result<()>
where
    C: Connection + Send + 'static,
    F: Fn(Now) -> C + Send + Sync + 'static,
{
    let access_log = opts.access_log;
    serve_tasks(opts, move |stream, peer, drain, alive| {
        let conn = make(clock::now());
        run_connection(stream, peer, conn, drain, access_log, alive)
    })
}

/// [`serve`] for any per-connection task: `task(stream, peer, drain, alive)` runs one accepted
/// connection (it must finish soon after `drain` fires, and drop `alive` when done).
pub fn serve_tasks<G, Fut>(opts: ServeOptions, task: G) -> io::Result<()>
where
    G: Fn(Async<TcpStream>, SocketAddr, DrainSignal, smol::channel::Sender<()>) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = Async::<TcpListener>::bind(opts.addr)?;
    let local = listener.get_ref().local_addr()?;
    println!("{} listening on {}", opts.name, local);
    let _ = io::stdout().flush();

    let ex = Arc::new(Executor::new());
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let workers: Vec<_> = (1..opts.threads.max(1))
        .map(|_| {
            let ex = ex.clone();
            let stop = stop_rx.clone();
            std::thread::spawn(move || {
                async_io::block_on(ex.run(async { while stop.recv().await.is_ok() {} }))
            })
        })
        .collect();

    let result = async_io::block_on(ex.run(accept_loop(ex.clone(), listener, task, opts)));
    drop(stop_tx);
    for w in workers {
        let _ = w.join();
    }
    result
}

async fn accept_loop<G, Fut>(
    ex: Arc<Executor<'static>>,
    listener: Async<TcpListener>,
    task: G,
    opts: ServeOptions,
) -> io::Result<()>
where
    G: Fn(Async<TcpStream>, SocketAddr, DrainSignal, smol::channel::Sender<()>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (mut drain, drain_signal) = drain_pair();
    let (alive_tx, alive_rx) = smol::channel::bounded::<()>(1);
    let stop = async {
        match terminate_signal().await {
            Ok(sig) => eprintln!("{}: signal {sig}, draining connections", opts.name),
            Err(e) => {
                eprintln!(
                    "{}: cannot watch signals ({e}); running until killed",
                    opts.name
                );
                future::pending::<()>().await;
            }
        }
        None
    };
    let stop = std::pin::pin!(stop);
    let mut stop = stop;
    loop {
        let accepted = or(async { Some(listener.accept().await) }, stop.as_mut()).await;
        match accepted {
            Some(Ok((stream, peer))) => {
                let _ = stream.get_ref().set_nodelay(true);
                let t = task(stream, peer, drain_signal.clone(), alive_tx.clone());
                ex.spawn(t).detach();
            }
            Some(Err(e)) => {
                // Out of descriptors and the like: back off instead of spinning.
                eprintln!("{}: accept failed: {e}", opts.name);
                Timer::after(Duration::from_millis(20)).await;
            }
            None => break,
        }
    }
    drop(listener);
    drain.start();
    drop(alive_tx);
    let all_done = async {
        while alive_rx.recv().await.is_ok() {}
        true
    };
    let grace = async {
        Timer::after(opts.grace).await;
        false
    };
    if !or(all_done, grace).await {
        eprintln!(
            "{}: grace period over, closing remaining connections",
            opts.name
        );
    }
    Ok(())
}

/// What one non-blocking write did.
pub(crate) enum Written {
    /// This many bytes went out.
    Some(usize),
    /// The socket is full: wait for writability.
    Blocked,
    /// Interrupted by a signal: try again at once.
    Again,
    /// The peer is gone.
    Broken,
}

/// One non-blocking write of `bytes` to `s`.
pub(crate) fn try_write(s: &Async<TcpStream>, bytes: &[u8]) -> Written {
    match s.get_ref().write(bytes) {
        Ok(n) => Written::Some(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Written::Blocked,
        Err(e) if e.kind() == ErrorKind::Interrupted => Written::Again,
        Err(_) => Written::Broken,
    }
}

enum Wake {
    Read,
    Write,
    Timer,
    Drain,
}

/// Drives one connection machine until it closes. `_alive` is dropped when the task ends.
pub async fn run_connection<C: Connection>(
    stream: Async<TcpStream>,
    peer: SocketAddr,
    mut conn: C,
    drain: DrainSignal,
    access_log: bool,
    _alive: smol::channel::Sender<()>,
) {
    let mut files = Files::default();
    let mut close_after_flush = false;
    let mut drained = false;
    let mut timer = Timer::never();
    let mut armed: Option<weaprous_core::time::Instant> = None;
    if drain.is_draining() {
        drained = true;
        conn.handle(clock::now(), ConnInput::Drain);
    }
    loop {
        let deadline = loop {
            match conn.poll_output() {
                ConnOutput::File(op) => {
                    if let Some(reply) = files.run(op) {
                        conn.handle(clock::now(), ConnInput::File(reply));
                    }
                }
                ConnOutput::Log(l) => {
                    if access_log {
                        log_line(peer, &l);
                    }
                }
                ConnOutput::Close => close_after_flush = true,
                ConnOutput::Abort => {
                    let _ = stream.get_ref().shutdown(Shutdown::Both);
                    return;
                }
                ConnOutput::Wait { deadline } => break deadline,
            }
        };
        let pending = conn.transmit();
        if !pending.is_empty() {
            match try_write(&stream, pending) {
                Written::Some(n) => {
                    conn.handle(clock::now(), ConnInput::Flushed(n));
                    continue;
                }
                Written::Blocked => {}
                Written::Again => continue,
                Written::Broken => return reset(&mut conn, peer, access_log),
            }
        } else if let Some(seg) = conn.transmit_file() {
            match files.send_to(stream.get_ref(), seg.handle, seg.offset, seg.len) {
                Ok(n) if n > 0 => {
                    conn.handle(clock::now(), ConnInput::Flushed(n));
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // The peer is gone: the same as a failed write.
                Err(e)
                    if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) =>
                {
                    return reset(&mut conn, peer, access_log);
                }
                // The file ended early (it shrank) or could not be read: the machine decides.
                _ => {
                    conn.handle(
                        clock::now(),
                        ConnInput::File(FileReply::Read(Err(FsError::Io))),
                    );
                    continue;
                }
            }
        } else if close_after_flush {
            lingering_close(&stream).await;
            return;
        }
        let want_read = conn.wants_read();
        let want_write = !conn.transmit().is_empty() || conn.transmit_file().is_some();
        if !want_read && !want_write && deadline.is_none() && drained {
            // Nothing can wake this machine again.
            let _ = stream.get_ref().shutdown(Shutdown::Both);
            return;
        }
        armed = crate::clock::rearm(&mut timer, armed, deadline);
        let wake = {
            let read = async {
                if want_read {
                    let _ = stream.readable().await;
                    Wake::Read
                } else {
                    future::pending().await
                }
            };
            let write = async {
                if want_write {
                    let _ = stream.writable().await;
                    Wake::Write
                } else {
                    future::pending().await
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
            or(or(read, write), or(tick, drain_wait)).await
        };
        match wake {
            Wake::Read => {
                let got = with_scratch(|buf| match stream.get_ref().read(buf) {
                    Ok(0) => Some(Ok(ConnInputKind::Eof)),
                    Ok(n) => {
                        conn.handle(clock::now(), ConnInput::Data(&buf[..n]));
                        Some(Ok(ConnInputKind::Data))
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) =>
                    {
                        None
                    }
                    Err(e) => Some(Err(e)),
                });
                match got {
                    Some(Ok(ConnInputKind::Eof)) => conn.handle(clock::now(), ConnInput::Eof),
                    Some(Err(_)) => conn.handle(clock::now(), ConnInput::Reset),
                    _ => {}
                }
            }
            Wake::Write => {}
            Wake::Timer => {
                armed = None;
                timer = Timer::never();
                conn.handle(clock::now(), ConnInput::Timeout);
            }
            Wake::Drain => {
                drained = true;
                conn.handle(clock::now(), ConnInput::Drain);
            }
        }
    }
}

/// The connection broke under a write: tell the machine, keep its last log lines, stop.
fn reset<C: Connection>(conn: &mut C, peer: SocketAddr, access_log: bool) {
    conn.handle(clock::now(), ConnInput::Reset);
    while let ConnOutput::Log(l) = conn.poll_output() {
        if access_log {
            log_line(peer, &l);
        }
    }
}

enum ConnInputKind {
    Data,
    Eof,
}

/// Half-closes; then, if the client has sent bytes we will never read, reads and discards them
/// for a short while, so they do not turn our close into a reset that destroys the response the
/// client has not read yet. With nothing unread (the usual `Connection: close` exchange) the
/// socket closes at once, as nginx's `lingering_close on` does.
async fn lingering_close(stream: &Async<TcpStream>) {
    let mut probe = [0u8; 4096];
    match stream.get_ref().read(&mut probe) {
        Ok(n) if n > 0 => {}
        Err(e) if e.kind() == ErrorKind::Interrupted => {}
        // Nothing unread: dropping the socket sends the FIN.
        _ => return,
    }
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    let discard = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read_with(|s| (&*s).read(&mut buf)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    or(discard, async {
        Timer::after(Duration::from_secs(2)).await;
    })
    .await;
}

fn log_line(peer: SocketAddr, l: &AccessLog) {
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{} \"{} {}\" {} {} {:.3}ms{}",
        peer,
        l.method,
        l.target,
        l.status,
        l.bytes,
        l.duration_ns as f64 / 1e6,
        if l.aborted { " aborted" } else { "" }
    );
}
