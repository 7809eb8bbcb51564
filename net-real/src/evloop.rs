//! The data path: one edge-triggered event loop per thread (epoll on Linux, the `polling`
//! crate elsewhere: [`crate::platform`]), each connection's machine called inline from it.
//!
//! # Why not the smol executor here
//! The design left the executor a choice to measure. Under `bench/load.sh` the shared
//! `smol::Executor` spent most of its time in the kernel: async-io re-arms a one-shot epoll
//! registration before every wait (`epoll_ctl` per read), one thread at a time owns the
//! reactor, and every other wake-up crosses threads through a futex. That is the overhead that
//! kept the backend behind nginx. This loop is what nginx does:
//!
//! * each worker thread owns a poller and the connections it accepted; nothing about a
//!   connection is shared between threads, so there are no locks or wake-ups on the data path;
//! * a connection is registered once, edge-triggered, for reading and writing, and only when it
//!   first has to wait; the loop records readiness and clears it only when a read or write
//!   comes up short, so a request costs a `read`, a `write` (or `sendfile`) and its share of
//!   one `epoll_wait`, and a `Connection: close` exchange whose request arrived with the
//!   connection costs `accept`, `read`, `write` and `close`;
//! * each worker has a listening socket of its own on the same address (`SO_REUSEPORT`), and
//!   the kernel spreads new connections over them by their addresses. A shared listener with
//!   `EPOLLEXCLUSIVE` let one worker take most of a burst of connections (wrk opening 50 at
//!   once) and serve them alone while the other idled, which showed as tail latency. Before
//!   the group is bound, a plain bind of the address checks that nothing else holds it, so a
//!   second server on the same port fails as it always did instead of silently sharing it;
//! * the listeners defer a connection until its request has arrived (`TCP_DEFER_ACCEPT`, as
//!   nginx's `deferred`), so a worker never takes one only to find nothing to read;
//! * deadlines live in a per-thread heap, re-armed only when a machine asks for an earlier one
//!   (a later deadline fires early and the machine's `Timeout` is then a no-op, as the node
//!   contract allows);
//! * the time is read once per wake-up of the loop, not once per input (as nginx does);
//! * the last response on a connection ([`Connection::closes_after_flush`]) is held back with
//!   `MSG_MORE`, or `TCP_CORK` when a file follows its head, so that its short last packet
//!   leaves with the FIN: a `Connection: close` exchange then takes as many packets as
//!   nginx's (`tcp_nopush`), one fewer than a pushed write and a separate FIN;
//! * SIGINT/SIGTERM (watched by the calling thread) write an eventfd every worker polls: each
//!   stops accepting, tells its connections to drain, and returns when they are done or the
//!   grace period ends.
//!
//! `run` is the loop; a `Handler` is what a kind of server does with its connections. The node
//! machines' handler is in [`crate::node`]: it drives each single-socket machine
//! ([`weaprous_core::node::Connection`]) with `step`, the connection contract carried out
//! exactly as the machine docs say: drain `poll_output`, write `transmit` (then
//! `transmit_file`), feed reads only while `wants_read`, and pass `Timeout`, `Eof`, `Reset` and
//! `Drain` through. The proxy's handler is in [`crate::proxy`].

use crate::clock;
use crate::files::Files;
use crate::platform::{self, Events, Notifier, Poller, Readiness, Registration};
use crate::server::{log_line, ServeOptions};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weaprous_core::node::{ConnInput, ConnOutput, Connection, FileReply, FsError, Now};
use weaprous_core::time::Instant;

const WAKE: u64 = 0;
/// The worker's mailbox ([`Wake`]), when it has one.
const MAIL: u64 = 1;
/// Listener `i` of a worker has token `FIRST_LISTENER + i`.
const FIRST_LISTENER: u64 = 2;
/// Generations are 24 bits ([`Io::generation`]).
pub(crate) const GENERATION_MASK: u32 = 0xFF_FFFF;
/// Listeners a process may have.
pub(crate) const MAX_LISTENERS: usize = 16;
/// Handler tokens start here.
const FIRST_TOKEN: u64 = FIRST_LISTENER + MAX_LISTENERS as u64;
const SCRATCH: usize = 64 * 1024;
/// Connections taken per wake-up of a worker's own listener (it stays readable while more wait).
const ACCEPT_BATCH: usize = 16;
/// How long accepting pauses after it failed (out of descriptors and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// How long a closing connection keeps discarding bytes the client sent and we will never read.
const LINGER: Duration = Duration::from_secs(2);

/// What every worker shares: the drain signal.
pub(crate) struct Shared {
    wake: Notifier,
    draining: AtomicBool,
}

impl Shared {
    /// Starts the graceful shutdown of every worker (as SIGTERM does).
    pub fn stop(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.wake.notify();
    }
}

/// A wake-up another thread can give a worker: a [`Notifier`] in the worker's poller, written
/// at most once per burst (the first letter after the worker last looked sets `pending`; the
/// rest find it set and write nothing).
pub(crate) struct Wake {
    fd: Notifier,
    pending: AtomicBool,
}

impl Wake {
    pub fn new() -> io::Result<Wake> {
        Ok(Wake {
            fd: Notifier::new()?,
            pending: AtomicBool::new(false),
        })
    }
    /// Wakes the worker unless a wake-up is already pending.
    pub fn notify(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.fd.notify();
        }
    }
    /// The worker is about to look at what was sent: later senders wake it again.
    fn clear(&self) {
        self.fd.clear();
        self.pending.store(false, Ordering::Release);
    }
}

/// The OS's random source, lent to node machines as their [`Entropy`].
pub(crate) struct OsEntropy;

impl weaprous_core::node::machine::Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        platform::fill_random(buf)
    }
}

pub(crate) use crate::platform::{connect_result, connect_start};

/// A key for a connection's socket or timer: its slot index and the slot's generation (so an
/// event or timer for a connection that has since closed, its slot reused, is recognised).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub index: u32,
    pub generation: u32,
}

impl Key {
    fn token(self) -> u64 {
        ((u64::from(self.generation)) << 32 | u64::from(self.index)) + FIRST_TOKEN
    }
    fn from_token(t: u64) -> Key {
        let t = t - FIRST_TOKEN;
        Key {
            index: t as u32,
            generation: (t >> 32) as u32,
        }
    }
}

/// What a worker thread owns besides its connections, lent to the handler with every event.
pub(crate) struct Io {
    poller: Poller,
    shared: Arc<Shared>,
    timers: BinaryHeap<Reverse<(Instant, Key)>>,
    /// Read once per wake-up of the loop: everything handled in one batch sees this instant.
    pub now: Now,
    /// The thread's read buffer: a connection owns no buffer of the driver's while idle.
    pub scratch: Vec<u8>,
    next_generation: u32,
}

impl Io {
    /// A fresh generation for a new connection's [`Key`]: 24 bits, so that a key fits in a
    /// node's connection id beside the worker's number (see `crate::node`).
    pub fn generation(&mut self) -> u32 {
        self.next_generation = (self.next_generation + 1) & GENERATION_MASK;
        self.next_generation
    }
    /// Adds `stream` to the poller, edge-triggered for reading and writing, under `key`.
    /// Adding reports readiness that is already there, so nothing is lost by adding late.
    fn register(&self, stream: &TcpStream, key: Key) -> io::Result<Registration> {
        self.poller.register(stream, key.token())
    }
    /// Calls [`Handler::due`] for `key` at `at` (or soon after).
    pub fn arm(&mut self, key: Key, at: Instant) {
        self.timers.push(Reverse((at, key)));
    }
    /// Starts the graceful shutdown of the whole process.
    pub fn stop_all(&self) {
        self.shared.stop();
    }
}

/// What a kind of server does with its connections; [`run`] does the rest.
pub(crate) trait Handler {
    /// A connection was accepted on listener `listener` (the index of its group in
    /// [`run_groups`]; non-blocking, `TCP_NODELAY` inherited from the listener).
    fn accepted(&mut self, io: &mut Io, listener: usize, stream: TcpStream, peer: SocketAddr);
    /// The worker's mailbox was written to (see [`Wake`]).
    fn mail(&mut self, _io: &mut Io) {}
    /// The worker starts, before its first wait.
    fn started(&mut self, _io: &mut Io) {}
    /// A socket registered under `key` may have become ready (as `flags` say).
    fn ready(&mut self, io: &mut Io, key: Key, flags: Readiness);
    /// Whether a timer armed for `key` at `at` still matters (stale ones are dropped unfired).
    fn wanted(&self, key: Key, at: Instant) -> bool;
    /// A wanted timer is due.
    fn due(&mut self, io: &mut Io, key: Key, at: Instant);
    /// Shutdown began: no new connections come; finish what is in progress.
    fn drain(&mut self, io: &mut Io);
    /// No connection is left.
    fn is_empty(&self) -> bool;
}

/// Binds, prints `<name> listening on <addr>`, and runs `make()`'s handler on each of
/// `opts.threads` worker threads until SIGINT/SIGTERM; then stops accepting, drains every
/// connection and returns once they are done (or `grace` passed).
pub(crate) fn run<H, M>(opts: &ServeOptions, make: M) -> io::Result<()>
where
    H: Handler,
    M: Fn() -> H + Send + Sync + 'static,
{
    let threads = opts.threads.max(1);
    let group = bind_group(opts.addr, threads)?;
    run_groups(
        opts,
        vec![group],
        (0..threads).map(|_| None).collect(),
        move |_| make(),
    )
}

/// The shared part of [`run`]: runs `make(i)`'s handler on worker `i`, which accepts on its
/// own socket of each of `groups` (from [`bind_group`], `opts.threads` sockets each; at most
/// [`MAX_LISTENERS`] groups) and is woken by `mail[i]` when other threads have letters for it.
/// Prints `<name> listening on <addr>` for each group once every worker runs.
pub(crate) fn run_groups<H, M>(
    opts: &ServeOptions,
    groups: Vec<(SocketAddr, Vec<TcpListener>)>,
    mail: Vec<Option<Arc<Wake>>>,
    make: M,
) -> io::Result<()>
where
    H: Handler,
    M: Fn(usize) -> H + Send + Sync + 'static,
{
    let threads = opts.threads.max(1);
    if groups.len() > MAX_LISTENERS {
        return Err(io::Error::other(format!(
            "at most {MAX_LISTENERS} listeners per process"
        )));
    }
    // Before the workers start and before "listening": see `crate::shutdown`.
    let terminate = crate::shutdown::terminate_signal();
    let shared = Arc::new(Shared {
        wake: Notifier::new()?,
        draining: AtomicBool::new(false),
    });
    let locals: Vec<SocketAddr> = groups.iter().map(|(a, _)| *a).collect();
    let mut per_worker: Vec<Vec<TcpListener>> = (0..threads).map(|_| Vec::new()).collect();
    for (_, listeners) in groups {
        for (w, l) in listeners.into_iter().enumerate().take(threads) {
            per_worker[w].push(l);
        }
    }
    let make = Arc::new(make);
    let mut workers = Vec::new();
    for ((i, listeners), wake) in per_worker.into_iter().enumerate().zip(mail) {
        let poller = worker_poller(&listeners, wake.as_deref(), &shared)?;
        let (shared, make, grace) = (shared.clone(), make.clone(), opts.grace);
        workers.push(std::thread::spawn(move || {
            Worker::new(poller, listeners, wake, shared, grace).run(&mut make(i))
        }));
    }
    for local in locals {
        println!("{} listening on {}", opts.name, local);
    }
    let _ = io::stdout().flush();

    let signal = match terminate {
        Ok(t) => async_io::block_on(t.recv()),
        Err(e) => Err(e),
    };
    match signal {
        Ok(sig) => {
            eprintln!("{}: signal {sig}, draining connections", opts.name);
            shared.stop();
        }
        Err(e) => eprintln!(
            "{}: cannot watch signals ({e}); running until killed",
            opts.name
        ),
    }
    let mut late = false;
    for w in workers {
        late |= w.join().unwrap_or(true);
    }
    if late {
        eprintln!(
            "{}: grace period over, closing remaining connections",
            opts.name
        );
    }
    Ok(())
}

/// `n` listening sockets on `addr`, one per worker (see the module docs; the portable path
/// shares one socket), and the address they listen on (the port the system chose when `addr`
/// asked for port 0).
pub(crate) fn bind_group(addr: SocketAddr, n: usize) -> io::Result<(SocketAddr, Vec<TcpListener>)> {
    // Fails, as any bind would, when something already holds the address; only then is the
    // address taken by the group (the probe is not listening, so it leaves nothing behind).
    let local = TcpListener::bind(addr)?.local_addr()?;
    Ok((local, platform::listen_group(local, n)?))
}

/// A worker's poller: its listeners, its mailbox's wake-up if any, and the drain notifier
/// (every worker woken once).
fn worker_poller(
    listeners: &[TcpListener],
    mail: Option<&Wake>,
    shared: &Shared,
) -> io::Result<Poller> {
    let poller = Poller::new()?;
    for (i, l) in listeners.iter().enumerate() {
        poller.add_listener(l, FIRST_LISTENER + i as u64)?;
    }
    if let Some(w) = mail {
        poller.add_notifier(&w.fd, MAIL)?;
    }
    poller.add_notifier(&shared.wake, WAKE)?;
    Ok(poller)
}

/// One worker thread's loop state.
struct Worker {
    /// Declared first so that its poller goes before the listeners it watches.
    io: Io,
    listeners: Vec<TcpListener>,
    mail: Option<Arc<Wake>>,
    shared: Arc<Shared>,
    grace: Duration,
    accepting: bool,
    accept_resume: Option<Instant>,
    draining_until: Option<Instant>,
}

impl Worker {
    fn new(
        poller: Poller,
        listeners: Vec<TcpListener>,
        mail: Option<Arc<Wake>>,
        shared: Arc<Shared>,
        grace: Duration,
    ) -> Self {
        Worker {
            listeners,
            mail,
            io: Io {
                poller,
                shared: shared.clone(),
                timers: BinaryHeap::new(),
                now: clock::now(),
                scratch: vec![0u8; SCRATCH],
                next_generation: 0,
            },
            shared,
            grace,
            accepting: true,
            accept_resume: None,
            draining_until: None,
        }
    }

    /// Runs until drained; `true` when the grace period ended with connections still open.
    fn run(&mut self, handler: &mut impl Handler) -> bool {
        let mut events = Events::with_capacity(256);
        handler.started(&mut self.io);
        loop {
            self.io.now = clock::now();
            if let Some(at) = self.accept_resume {
                if self.io.now.mono >= at && self.resume_accepting().is_ok() {
                    self.accept_resume = None;
                }
            }
            self.fire_timers(handler);
            if let Some(until) = self.draining_until {
                if handler.is_empty() {
                    return false;
                }
                if self.io.now.mono >= until {
                    return true;
                }
            }
            let now = self.io.now.mono;
            let timeout = self
                .next_wake(handler)
                .map(|at| Duration::from_nanos(at.0.saturating_sub(now.0)));
            if let Err(e) = self.io.poller.wait(&mut events, timeout) {
                eprintln!("waiting for events failed: {e}");
                return true;
            }
            self.io.now = clock::now();
            for (token, flags) in events.iter() {
                match token {
                    WAKE => self.start_drain(handler),
                    MAIL => {
                        if let Some(w) = &self.mail {
                            w.clear();
                        }
                        handler.mail(&mut self.io);
                    }
                    t if t < FIRST_TOKEN => self.accept(handler, (t - FIRST_LISTENER) as usize),
                    t => handler.ready(&mut self.io, Key::from_token(t), flags),
                }
            }
        }
    }

    /// The earliest instant the loop must wake without an event.
    fn next_wake(&mut self, handler: &impl Handler) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.io.timers.peek().copied() {
            if handler.wanted(key, at) {
                break;
            }
            self.io.timers.pop();
        }
        let timer = self.io.timers.peek().map(|Reverse((at, _))| *at);
        [timer, self.accept_resume, self.draining_until]
            .into_iter()
            .flatten()
            .min()
    }

    fn fire_timers(&mut self, handler: &mut impl Handler) {
        while let Some(Reverse((at, key))) = self.io.timers.peek().copied() {
            if at > self.io.now.mono {
                break;
            }
            self.io.timers.pop();
            if handler.wanted(key, at) {
                handler.due(&mut self.io, key, at);
            }
        }
    }

    fn accept(&mut self, handler: &mut impl Handler, listener: usize) {
        if !self.accepting || listener >= self.listeners.len() {
            return;
        }
        for _ in 0..ACCEPT_BATCH {
            match platform::accept(&self.listeners[listener]) {
                Ok((stream, peer)) => handler.accepted(&mut self.io, listener, stream, peer),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // The client gave up before we took it.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    // Pause instead of spinning on a listener that stays readable.
                    if self
                        .io
                        .poller
                        .remove_listener(&self.listeners[listener])
                        .is_ok()
                    {
                        self.accept_resume = Some(self.io.now.mono + ACCEPT_BACKOFF);
                    }
                    return;
                }
            }
        }
    }

    fn resume_accepting(&mut self) -> io::Result<()> {
        if !self.accepting {
            return Ok(());
        }
        for (i, l) in self.listeners.iter().enumerate() {
            // Those that were never taken out are there already, which is not an error.
            self.io.poller.add_listener(l, FIRST_LISTENER + i as u64)?;
        }
        Ok(())
    }

    fn start_drain(&mut self, handler: &mut impl Handler) {
        if !self.shared.draining.load(Ordering::SeqCst) || self.draining_until.is_some() {
            return;
        }
        self.accepting = false;
        // Closing this worker's listener: the kernel sends new connections to the others
        // while they still listen; all stop together here.
        for l in &self.listeners {
            let _ = self.io.poller.remove_listener(l);
            platform::stop_listening(l);
        }
        self.accept_resume = None;
        self.draining_until = Some(Instant(self.io.now.mono.0 + self.grace.as_nanos() as u64));
        handler.drain(&mut self.io);
    }
}

/// Slots for a worker's connections, with the free list and generations behind [`Key`]s.
pub(crate) struct Slab<T> {
    slots: Vec<Option<(u32, T)>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, generation: u32, value: T) -> Key {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            (self.slots.len() - 1) as u32
        });
        self.slots[index as usize] = Some((generation, value));
        self.len += 1;
        Key { index, generation }
    }
    pub fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(Some((g, v))) if *g == key.generation => Some(v),
            _ => None,
        }
    }
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize) {
            Some(Some((g, v))) if *g == key.generation => Some(v),
            _ => None,
        }
    }
    pub fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        match slot {
            Some((g, _)) if *g == key.generation => {
                let (_, v) = slot.take()?;
                self.free.push(key.index);
                self.len -= 1;
                Some(v)
            }
            _ => None,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The index the next [`Slab::insert`] will use.
    pub fn next_index(&self) -> u32 {
        self.free.last().copied().unwrap_or(self.slots.len() as u32)
    }
    /// Puts back a value just taken out with [`Slab::remove`], under the same key.
    pub fn reinsert(&mut self, key: Key, value: T) {
        if let Some(pos) = self.free.iter().rposition(|&i| i == key.index) {
            self.free.remove(pos);
            self.slots[key.index as usize] = Some((key.generation, value));
            self.len += 1;
        }
    }
    pub fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref().map(|(g, _)| Key {
                    index: i as u32,
                    generation: *g,
                })
            })
            .collect()
    }
}

/// A connection's socket and its readiness as the poller last reported it.
pub(crate) struct Sock {
    pub stream: TcpStream,
    /// In the poller: a socket joins it only when it first has to wait.
    reg: Option<Registration>,
    /// Readiness, cleared when an operation comes up short (edge-triggered: the next edge
    /// sets it again).
    pub readable: bool,
    pub writable: bool,
    /// The peer's FIN was read: nothing more will be.
    pub eof: bool,
    /// The last bytes may be held back for the FIN (`TCP_CORK` set, or the last write sent
    /// with `MSG_MORE`); uncorking pushes them if the connection stays open after all.
    pub corked: bool,
}

/// What one non-blocking read gave.
pub(crate) enum Read1 {
    Data(usize),
    Eof,
    Error,
    /// Nothing there (readiness cleared), or interrupted: go round again.
    Nothing,
}

/// What one non-blocking write did.
pub(crate) enum Write1 {
    /// This many bytes went out.
    Wrote(usize),
    /// The socket is full (writability cleared).
    Blocked,
    /// Interrupted by a signal: try again.
    Again,
    /// The peer is gone.
    Broken,
}

impl Sock {
    /// A socket not yet in the poller; `ready` assumes it readable and writable until an
    /// operation says otherwise (an accepted connection's request has usually arrived).
    pub fn new(stream: TcpStream, ready: bool) -> Sock {
        Sock {
            stream,
            readable: ready,
            writable: ready,
            eof: false,
            reg: None,
            corked: false,
        }
    }

    /// Records an event's readiness; returns it as (readable, writable).
    pub fn mark(&mut self, flags: Readiness) -> (bool, bool) {
        let (r, w) = (flags.readable, flags.writable);
        self.readable |= r;
        self.writable |= w;
        (r, w)
    }

    /// Whether a read could give something now.
    pub fn can_read(&self) -> bool {
        self.readable && !self.eof
    }

    /// Adds the socket to the poller under `key` unless it is there already.
    pub fn register(&mut self, io: &Io, key: Key) -> io::Result<()> {
        if self.reg.is_none() {
            self.reg = Some(io.register(&self.stream, key)?);
        }
        Ok(())
    }

    /// One read into `buf`. A short read means the socket was emptied: the next bytes bring
    /// a new edge.
    pub fn read(&mut self, buf: &mut [u8]) -> Read1 {
        match (&self.stream).read(buf) {
            Ok(0) => {
                self.eof = true;
                Read1::Eof
            }
            Ok(n) => {
                if n < buf.len() {
                    self.readable = false;
                }
                Read1::Data(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.readable = false;
                Read1::Nothing
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Read1::Nothing,
            Err(_) => Read1::Error,
        }
    }

    /// One write of `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Write1 {
        let result = (&self.stream).write(bytes);
        self.written(result, bytes.len())
    }

    /// [`Sock::write`] for bytes that a file segment follows at once (a head before its
    /// body): `MSG_MORE` lets the kernel fill the last packet with the file's first bytes
    /// instead of sending it short; the sendfile behind it pushes.
    ///
    /// `last` says the connection closes once the file is sent. The socket is then corked
    /// (`TCP_CORK`, as nginx's `tcp_nopush`), so the file's short last packet waits for the
    /// close and leaves with the FIN: one packet fewer for both ends. Measured on 1 MiB
    /// `Connection: close` exchanges, that took the client's CPU per request from 4% above
    /// nginx's to level and requests/s with it. It is not done for keep-alive: uncorking
    /// after each file cost 10-25% more server CPU on 100 KiB files.
    pub fn write_before_file(&mut self, bytes: &[u8], last: bool) -> Write1 {
        if last && !self.corked {
            self.corked = platform::set_cork(&self.stream, true);
        }
        self.write_more(bytes)
    }

    /// [`Sock::write`] for the last bytes before the connection closes: `MSG_MORE` holds a
    /// short last packet back so that the close sends it with the FIN (one packet fewer for
    /// both ends, as a corked socket gives nginx). The socket counts as corked until then.
    pub fn write_last(&mut self, bytes: &[u8]) -> Write1 {
        self.corked = true;
        self.write_more(bytes)
    }

    /// One write of `bytes` with `MSG_MORE`: a short last packet is not sent until more
    /// bytes, an uncork or the FIN push it.
    fn write_more(&mut self, bytes: &[u8]) -> Write1 {
        let result = platform::write_more(&self.stream, bytes);
        self.written(result, bytes.len())
    }

    fn written(&mut self, result: io::Result<usize>, len: usize) -> Write1 {
        match result {
            Ok(n) => {
                if n < len {
                    self.writable = false;
                }
                Write1::Wrote(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.writable = false;
                Write1::Blocked
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Write1::Again,
            Err(_) => Write1::Broken,
        }
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        if let Some(reg) = &mut self.reg {
            reg.release(self.stream.as_fd());
        }
    }
}

/// One accepted connection and everything its driver remembers about it.
pub(crate) struct Slot<C> {
    pub sock: Sock,
    pub peer: SocketAddr,
    pub conn: C,
    pub files: Files,
    pub close_after_flush: bool,
    pub drained: bool,
    /// The deadline the heap holds for this slot (an earlier one replaces it; see module docs).
    pub armed: Option<Instant>,
    /// Set while discarding unread bytes before the close, until this instant.
    pub linger: Option<Instant>,
}

impl<C> Slot<C> {
    pub fn new(sock: Sock, peer: SocketAddr, conn: C) -> Self {
        Slot {
            sock,
            peer,
            conn,
            files: Files::default(),
            close_after_flush: false,
            drained: false,
            armed: None,
            linger: None,
        }
    }
}

/// What became of a connection after it was driven.
pub(crate) enum Fate {
    /// Still open, waiting for an event or until the machine's deadline.
    Open {
        deadline: Option<Instant>,
    },
    Closed,
}

/// One round of the node contract for `slot`: outputs, writes, reads, until the machine waits
/// on something the loop does not have yet.
pub(crate) fn step<C: Connection>(
    slot: &mut Slot<C>,
    scratch: &mut [u8],
    access_log: bool,
    now: Now,
    to_node: &mut impl FnMut(C::ToNode),
) -> Fate {
    loop {
        let deadline = loop {
            match slot.conn.poll_output() {
                ConnOutput::File(op) => {
                    if let Some(reply) = slot.files.run(op) {
                        slot.conn.handle(now, ConnInput::File(reply));
                    }
                }
                ConnOutput::Log(l) => {
                    if access_log {
                        log_line(slot.peer, &l);
                    }
                }
                ConnOutput::Close => slot.close_after_flush = true,
                ConnOutput::Abort => {
                    let _ = slot.sock.stream.shutdown(Shutdown::Both);
                    return Fate::Closed;
                }
                ConnOutput::ToNode(m) => to_node(m),
                ConnOutput::Wait { deadline } => break deadline,
            }
        };
        let pending = slot.conn.transmit();
        if !pending.is_empty() {
            if slot.sock.writable {
                let last = slot.close_after_flush || slot.conn.closes_after_flush();
                let wrote = if slot.conn.file_follows() {
                    slot.sock.write_before_file(pending, last)
                } else if last {
                    slot.sock.write_last(pending)
                } else {
                    slot.sock.write(pending)
                };
                match wrote {
                    Write1::Wrote(n) => {
                        slot.conn.handle(now, ConnInput::Flushed(n));
                        continue;
                    }
                    Write1::Blocked => {}
                    Write1::Again => continue,
                    Write1::Broken => return reset(slot, access_log, now, to_node),
                }
            }
        } else if let Some(seg) = slot.conn.transmit_file() {
            if slot.sock.writable {
                match slot.files.send_to(
                    &slot.sock.stream,
                    seg.handle,
                    seg.offset,
                    seg.len,
                    scratch,
                ) {
                    Ok(n) if n > 0 => {
                        slot.conn.handle(now, ConnInput::Flushed(n));
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => slot.sock.writable = false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                        ) =>
                    {
                        return reset(slot, access_log, now, to_node);
                    }
                    // The file ended early (it shrank) or could not be read: the machine decides.
                    _ => {
                        slot.conn
                            .handle(now, ConnInput::File(FileReply::Read(Err(FsError::Io))));
                        continue;
                    }
                }
            }
        } else if slot.close_after_flush {
            if !slot.conn.may_leave_unread() {
                return Fate::Closed;
            }
            return start_linger(slot, scratch, now);
        } else if slot.sock.corked {
            // The machine said it would close and did not (the hint is only a hint): push.
            slot.sock.corked = platform::set_cork(&slot.sock.stream, false);
        }
        if slot.conn.wants_read() && slot.sock.can_read() {
            let input = match slot.sock.read(scratch) {
                Read1::Data(n) => ConnInput::Data(&scratch[..n]),
                Read1::Eof => ConnInput::Eof,
                Read1::Error => ConnInput::Reset,
                Read1::Nothing => continue,
            };
            slot.conn.handle(now, input);
            continue;
        }
        let want_read = slot.conn.wants_read() && !slot.sock.eof;
        let want_write = !slot.conn.transmit().is_empty() || slot.conn.transmit_file().is_some();
        if !want_read && !want_write && deadline.is_none() && slot.drained {
            // Nothing can wake this machine again.
            let _ = slot.sock.stream.shutdown(Shutdown::Both);
            return Fate::Closed;
        }
        return Fate::Open { deadline };
    }
}

/// The connection broke under a write: tell the machine, keep its last log lines, close.
pub(crate) fn reset<C: Connection>(
    slot: &mut Slot<C>,
    access_log: bool,
    now: Now,
    to_node: &mut impl FnMut(C::ToNode),
) -> Fate {
    slot.conn.handle(now, ConnInput::Reset);
    loop {
        match slot.conn.poll_output() {
            ConnOutput::Log(l) => {
                if access_log {
                    log_line(slot.peer, &l);
                }
            }
            ConnOutput::ToNode(m) => to_node(m),
            _ => break,
        }
    }
    Fate::Closed
}

/// Closes after the last byte went out, when the machine says the client may have sent bytes
/// it will never read: half-closes, then discards what arrives until the client closes too or
/// [`LINGER`] passes, so those bytes do not turn our close into a reset that destroys the
/// response the client has not read yet (nginx's `lingering_close`). No probe decides it: the
/// bytes may still be on their way.
pub(crate) fn start_linger<C>(slot: &mut Slot<C>, scratch: &mut [u8], now: Now) -> Fate {
    let _ = slot.sock.stream.shutdown(Shutdown::Write);
    slot.linger = Some(now.mono + LINGER);
    linger_read(slot, scratch)
}

pub(crate) fn linger_read<C>(slot: &mut Slot<C>, scratch: &mut [u8]) -> Fate {
    loop {
        match (&slot.sock.stream).read(scratch) {
            Ok(0) => return Fate::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                slot.sock.readable = false;
                return Fate::Open { deadline: None };
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Fate::Closed,
        }
    }
}

#[cfg(all(test, target_os = "linux", not(feature = "portable")))]
mod tests {
    use super::*;

    /// A connection whose client has sent nothing is not handed to the server; once its first
    /// bytes arrive it is, with them ready to read (Linux's deferred accept).
    #[test]
    fn a_connection_is_accepted_only_once_its_request_arrives() {
        let (addr, listeners) = bind_group("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let listener = &listeners[0];
        let mut client = TcpStream::connect(addr).unwrap();
        match listener.accept() {
            Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
            Ok(_) => panic!("a silent connection was accepted before it sent anything"),
        }
        client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        listener.set_nonblocking(false).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut got = [0u8; 16];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n");
    }
}
