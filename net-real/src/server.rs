//! Serving: [`serve`] runs a single-socket connection machine (the backend's) on
//! [`crate::evloop`]; [`serve_tasks`] runs any per-connection async task (the proxy's) on smol.
//!
//! In [`serve_tasks`] each accepted connection gets one task that owns its sockets and
//! machine and calls the machine inline (DESIGN.md §5: no channel hop per request). Reads go
//! into a per-thread scratch buffer ([`with_scratch`]), so an idle connection owns no buffer of
//! the driver's. Executor: one shared `smol::Executor` run by `threads` threads (the main
//! thread is one of them).

use crate::shutdown::{drain_pair, terminate_signal, DrainSignal};
use async_io::{Async, Timer};
use futures_lite::future::{self, or};
use smol::Executor;
use std::cell::RefCell;
use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use weaprous_core::node::{AccessLog, Connection, Now};

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
///
/// Runs on [`crate::evloop`]: one epoll loop per thread, each connection's machine called
/// inline.
pub fn serve<C, F>(opts: ServeOptions, make: F) -> io::Result<()>
where
    C: Connection + 'static,
    F: Fn(Now) -> C + Send + Sync + 'static,
{
    crate::evloop::serve(opts, make)
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

pub(crate) fn log_line(peer: SocketAddr, l: &AccessLog) {
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
