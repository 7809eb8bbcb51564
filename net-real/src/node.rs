//! Node machines on real sockets ([`serve_node`]): the node contract of
//! `weaprous_core::node::machine` carried out on the per-worker event loops of
//! [`crate::evloop`].
//!
//! # Where things run
//! * A node of [`Scope::Worker`] runs on every worker, beside the connections that worker
//!   accepted: nothing crosses threads. A node of [`Scope::Process`] runs on worker 0;
//!   connections on the other workers reach it through its mailbox, and it reaches them
//!   through theirs.
//! * A **mailbox** is a locked queue of letters and a [`Wake`] (the worker's wake-up handle,
//!   owned by the event loop's platform code) signalled once per burst: the first letter after the worker last looked wakes
//!   it; the rest of the burst costs no system call. Letters between a worker and the node are
//!   queued in order, so each connection's messages keep their order both ways.
//! * Listeners are bound at start, from the `Listen` outputs that answer `Start` (each a group
//!   of `SO_REUSEPORT` sockets, one per worker); a later `Listen` is refused.
//! * Outgoing connects are non-blocking on the node's worker, with their deadline on its timer
//!   heap; the new connection's machine lives on that worker.
//! * Jobs run on smol's blocking pool; their results come back as letters.
//! * Log operations go to one log thread per process, in order, which answers each as it is
//!   done: a sync covers every append issued before it, which is what the node's group commit
//!   (`weaprous_core::node::commit`) relies on.
//! * A connection whose unsent bytes pass [`OUTBOUND_LIMIT`] after a node message is closed:
//!   the node never waits on a slow reader.
//!
//! Connection ids name the worker, the slot and its generation, so a letter for a connection
//! that has since closed (its slot reused) is recognised and dropped.

use crate::clock;
use crate::evloop::{
    bind_group, connect_result, connect_start, linger_read, run_groups, step, Fate, Handler, Io,
    Key, OsEntropy, Slab, Slot, Sock, Wake, GENERATION_MASK,
};
use crate::logs::LogStore;
use crate::platform::Readiness;
use crate::server::ServeOptions;
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weaprous_core::buggify::Buggify;
use weaprous_core::node::machine::{
    ConnId, ConnectError, FromNode, ListenError, NewConn, NodeInput, NodeMachine, NodeOutput,
    Scope, ToNode, Token,
};
use weaprous_core::node::{ConnInput, Connection, FsError, LogOp, LogReply};

use weaprous_core::time::Instant;

/// Unsent bytes a connection may hold after a node message before it is closed.
pub const OUTBOUND_LIMIT: usize = 4 * 1024 * 1024;
/// The key of the node's own timer on its worker's heap.
const NODE_KEY: Key = Key {
    index: u32::MAX,
    generation: 0,
};

/// A node machine whose parts may cross threads: what [`serve_node`] runs.
pub trait RealNode:
    NodeMachine<
        Conn: Connection<ToNode: Send, FromNode: Send>,
        Spawn: Send + Sync,
        Job: Send + 'static,
        JobDone: Send + 'static,
        Command: Send,
        Event: Send,
    > + Send
    + 'static
{
}

impl<N> RealNode for N where
    N: NodeMachine<
            Conn: Connection<ToNode: Send, FromNode: Send>,
            Spawn: Send + Sync,
            Job: Send + 'static,
            JobDone: Send + 'static,
            Command: Send,
            Event: Send,
        > + Send
        + 'static
{
}

/// What a worker's mailbox carries.
enum Letter<N: NodeMachine> {
    /// An input for the node (on the node's worker).
    Node(NodeInput<N>),
    /// A message for a connection (on the connection's worker).
    ToConn(ConnId, FromNode<N>),
}

struct Mailbox<N: NodeMachine> {
    letters: Mutex<Vec<Letter<N>>>,
    wake: Arc<Wake>,
}

impl<N: NodeMachine> Mailbox<N> {
    fn post(&self, letter: Letter<N>) {
        self.letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(letter);
        self.wake.notify();
    }
    fn take(&self) -> Vec<Letter<N>> {
        std::mem::take(&mut *self.letters.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A log operation for the log thread: its token, the operation, and who gets the answer.
type LogJob = (Token, LogOp, usize);

fn conn_id(worker: usize, key: Key) -> ConnId {
    ((worker as u64) << 56)
        | (u64::from(key.generation & GENERATION_MASK) << 32)
        | u64::from(key.index)
}

fn id_worker(id: ConnId) -> usize {
    (id >> 56) as usize
}

fn id_key(id: ConnId) -> Key {
    Key {
        index: id as u32,
        generation: ((id >> 32) as u32) & GENERATION_MASK,
    }
}

/// Runs node machines made by `make(worker)` (one for a [`Scope::Process`] node, one per
/// worker for [`Scope::Worker`]) until SIGINT/SIGTERM, or until a node asks to exit (then the
/// result is an error with its reason). `data_dir` holds the nodes' durable logs; without
/// one, log operations fail with `PermissionDenied`. `opts.addr` is not used: the nodes say
/// where they listen.
pub fn serve_node<N, M>(opts: ServeOptions, data_dir: Option<PathBuf>, make: M) -> io::Result<()>
where
    N: RealNode,
    M: Fn(usize) -> N,
{
    let threads = opts.threads.max(1);
    let node_count = match N::SCOPE {
        Scope::Process => 1,
        Scope::Worker => threads,
    };
    let mut entropy = OsEntropy;
    let now = clock::now();
    let mut nodes: Vec<N> = (0..node_count).map(&make).collect();
    let mut early: Vec<Vec<NodeOutput<N>>> = (0..node_count).map(|_| Vec::new()).collect();
    // Start every node; the first one's listeners are bound (the others, the same node on
    // other workers, are told the same result).
    let mut listens: Vec<(u32, SocketAddr, N::Spawn)> = Vec::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        node.handle(now, NodeInput::Start, &mut entropy);
        collect_start(node, &mut early[i], |l, a, s| {
            if i == 0 {
                listens.push((l, a, s))
            }
        });
    }
    let mut groups = Vec::new();
    let mut spawns = Vec::new();
    let mut results = Vec::new();
    for (listener, addr, spawn) in listens {
        match bind_group(addr, threads) {
            Ok((local, socks)) => {
                groups.push((local, socks));
                spawns.push(spawn);
                results.push((listener, Ok(local)));
            }
            Err(e) => results.push((listener, Err(ListenError(e.to_string())))),
        }
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        for (listener, result) in &results {
            let input = NodeInput::Listening {
                listener: *listener,
                result: result.clone(),
            };
            node.handle(now, input, &mut entropy);
            collect_start(node, &mut early[i], |_, _, _| {});
        }
    }
    for outs in &early {
        for o in outs {
            if let NodeOutput::Exit { reason } = o {
                return Err(io::Error::other(reason.clone()));
            }
        }
    }
    let wakes: Vec<Arc<Wake>> = (0..threads)
        .map(|_| Wake::new().map(Arc::new))
        .collect::<io::Result<_>>()?;
    let mailboxes: Arc<Vec<Mailbox<N>>> = Arc::new(
        wakes
            .iter()
            .map(|w| Mailbox {
                letters: Mutex::new(Vec::new()),
                wake: w.clone(),
            })
            .collect(),
    );
    let logs = match data_dir {
        Some(dir) => Some(log_thread(LogStore::open(dir)?, mailboxes.clone())),
        None => None,
    };
    let exit: Arc<Mutex<Option<String>>> = Arc::default();
    let handed: Mutex<Vec<Option<Started<N>>>> =
        Mutex::new(nodes.into_iter().zip(early).map(Some).collect());
    let spawns = Arc::new(spawns);
    let node_worker_of = |w: usize| match N::SCOPE {
        Scope::Process => 0,
        Scope::Worker => w,
    };
    let access_log = opts.access_log;
    let name = opts.name.clone();
    let exit2 = exit.clone();
    let make_handler = move |w: usize| {
        let mine = if node_worker_of(w) == w {
            let slot = if N::SCOPE == Scope::Process { 0 } else { w };
            handed.lock().unwrap_or_else(|p| p.into_inner())[slot].take()
        } else {
            None
        };
        let (node, early) = match mine {
            Some((n, e)) => (Some(n), e),
            None => (None, Vec::new()),
        };
        NodeHandler {
            worker: w,
            node_worker: node_worker_of(w),
            node,
            early,
            spawns: spawns.clone(),
            slots: Slab::default(),
            local: VecDeque::new(),
            mailboxes: mailboxes.clone(),
            logs: logs.clone(),
            entropy: OsEntropy,
            node_armed: None,
            access_log,
            name: name.clone(),
            exit: exit2.clone(),
        }
    };
    // `make_handler` holds the nodes until each worker takes its own: it must be Sync.
    let make_handler = SyncCell(Mutex::new(make_handler));
    run_groups(
        &opts,
        groups,
        wakes.into_iter().map(Some).collect(),
        move |w| (make_handler.0.lock().unwrap_or_else(|p| p.into_inner()))(w),
    )?;
    let reason = exit.lock().unwrap_or_else(|p| p.into_inner()).take();
    match reason {
        Some(r) => Err(io::Error::other(r)),
        None => Ok(()),
    }
}

/// A started node and the outputs it gave while starting, waiting for its worker.
type Started<N> = (N, Vec<NodeOutput<N>>);

/// A value that crosses to the worker threads once, behind a lock.
struct SyncCell<T>(Mutex<T>);

/// Drains a starting node's outputs: listeners to `listen`, the rest kept for its worker.
fn collect_start<N: NodeMachine>(
    node: &mut N,
    early: &mut Vec<NodeOutput<N>>,
    mut listen: impl FnMut(u32, SocketAddr, N::Spawn),
) {
    loop {
        match node.poll_output() {
            NodeOutput::Listen {
                listener,
                addr,
                spawn,
            } => listen(listener, addr, spawn),
            NodeOutput::Wait { .. } => return,
            other => early.push(other),
        }
    }
}

/// The log thread: carries out each operation in order and posts the answer to the
/// mailbox of the worker that asked.
fn log_thread<N: RealNode>(
    store: LogStore,
    mailboxes: Arc<Vec<Mailbox<N>>>,
) -> mpsc::Sender<LogJob> {
    let (tx, rx) = mpsc::channel::<LogJob>();
    std::thread::spawn(move || {
        for (token, op, worker) in rx {
            let reply = store.run(op);
            mailboxes[worker].post(Letter::Node(NodeInput::Log { token, reply }));
        }
    });
    tx
}

/// An outgoing connect in progress.
struct Dial<S> {
    sock: Sock,
    addr: SocketAddr,
    token: Token,
    spawn: S,
    deadline: Instant,
    armed: bool,
}

/// A connection's slot: connecting, or open with its machine.
enum Entry<N: NodeMachine> {
    Dial(Dial<N::Spawn>),
    Open {
        slot: Slot<N::Conn>,
        /// It spoke to the node, or the node opened it: the node hears of its end.
        known: bool,
    },
}

struct NodeHandler<N: NodeMachine> {
    worker: usize,
    node_worker: usize,
    node: Option<N>,
    /// Outputs the node gave while starting, carried out when the worker starts.
    early: Vec<NodeOutput<N>>,
    spawns: Arc<Vec<N::Spawn>>,
    slots: Slab<Entry<N>>,
    /// Letters for this worker from this worker, carried out in order after each event.
    local: VecDeque<Letter<N>>,
    mailboxes: Arc<Vec<Mailbox<N>>>,
    logs: Option<mpsc::Sender<LogJob>>,
    entropy: OsEntropy,
    node_armed: Option<Instant>,
    access_log: bool,
    name: String,
    exit: Arc<Mutex<Option<String>>>,
}

impl<N: RealNode> NodeHandler<N> {
    /// Sends `letter` to worker `w`: queued here, or posted to its mailbox.
    fn send(&mut self, w: usize, letter: Letter<N>) {
        if w == self.worker {
            self.local.push_back(letter);
        } else if let Some(mb) = self.mailboxes.get(w) {
            mb.post(letter);
        }
    }

    /// Carries out one output of the node.
    fn carry(&mut self, io: &mut Io, out: NodeOutput<N>) {
        match out {
            NodeOutput::Listen { listener, .. } => {
                let result = Err(ListenError("listeners are bound at start".into()));
                let input = NodeInput::Listening { listener, result };
                self.local.push_back(Letter::Node(input));
            }
            NodeOutput::Connect {
                token,
                addr,
                timeout,
                spawn,
            } => self.dial(io, token, addr, timeout, spawn),
            NodeOutput::ToConn { conn, msg } => {
                self.send(id_worker(conn), Letter::ToConn(conn, msg))
            }
            NodeOutput::Log { token, op } => match &self.logs {
                Some(tx) => {
                    let _ = tx.send((token, op, self.worker));
                }
                None => {
                    let reply = match op {
                        LogOp::Append { .. } => LogReply::Appended(Err(FsError::PermissionDenied)),
                        LogOp::Sync { .. } => LogReply::Synced(Err(FsError::PermissionDenied)),
                        LogOp::Read { .. } => LogReply::Contents(Err(FsError::PermissionDenied)),
                        LogOp::Truncate { .. } => {
                            LogReply::Truncated(Err(FsError::PermissionDenied))
                        }
                    };
                    self.local
                        .push_back(Letter::Node(NodeInput::Log { token, reply }));
                }
            },
            NodeOutput::Job { token, job } => {
                let mailboxes = self.mailboxes.clone();
                let w = self.worker;
                smol::unblock(move || {
                    let done = N::run_job(job);
                    mailboxes[w].post(Letter::Node(NodeInput::JobDone { token, done }));
                })
                .detach();
            }
            NodeOutput::Event(e) => {
                if let Some(text) = N::notice(&e) {
                    eprintln!("{}: {text}", self.name);
                }
            }
            NodeOutput::Exit { reason } => {
                eprintln!("{}: {reason}", self.name);
                *self.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                io.stop_all();
            }
            NodeOutput::Wait { deadline } => {
                if let Some(at) = deadline {
                    if !matches!(self.node_armed, Some(armed) if armed <= at) {
                        self.node_armed = Some(at);
                        io.arm(NODE_KEY, at);
                    }
                }
            }
        }
    }

    /// Gives the node an input and carries out what it asks, until it waits.
    fn node_input(&mut self, io: &mut Io, input: NodeInput<N>) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        node.handle(io.now, input, &mut self.entropy);
        loop {
            let Some(node) = self.node.as_mut() else {
                return;
            };
            let out = node.poll_output();
            let waiting = matches!(out, NodeOutput::Wait { .. });
            self.carry(io, out);
            if waiting {
                return;
            }
        }
    }

    /// Carries out the letters queued on this worker, in order, until none is left.
    fn pump(&mut self, io: &mut Io) {
        while let Some(letter) = self.local.pop_front() {
            match letter {
                Letter::Node(input) => self.node_input(io, input),
                Letter::ToConn(id, msg) => {
                    let key = id_key(id);
                    let Some(Entry::Open { slot, .. }) = self.slots.get_mut(key) else {
                        continue;
                    };
                    if slot.linger.is_some() {
                        continue;
                    }
                    slot.conn.handle(io.now, ConnInput::FromNode(msg));
                    if slot.conn.transmit().len() > OUTBOUND_LIMIT {
                        // A reader this slow would hold the node's messages without bound.
                        let _ = slot.sock.stream.shutdown(std::net::Shutdown::Both);
                        self.close(key);
                        continue;
                    }
                    self.drive(io, key);
                }
            }
        }
    }

    fn dial(
        &mut self,
        io: &mut Io,
        token: Token,
        addr: SocketAddr,
        timeout: Duration,
        spawn: N::Spawn,
    ) {
        let failed = |error| Letter::Node(NodeInput::ConnectFailed { token, error });
        let stream = match connect_start(addr) {
            Ok(s) => s,
            Err(e) => {
                let error = if e.kind() == io::ErrorKind::ConnectionRefused {
                    ConnectError::Refused
                } else {
                    ConnectError::Other
                };
                self.local.push_back(failed(error));
                return;
            }
        };
        let deadline = io.now.mono + timeout;
        let generation = io.generation();
        let key = self.slots.insert(
            generation,
            Entry::Dial(Dial {
                sock: Sock::new(stream, false),
                addr,
                token,
                spawn,
                deadline,
                armed: true,
            }),
        );
        let registered = match self.slots.get_mut(key) {
            Some(Entry::Dial(d)) => d.sock.register(io, key).is_ok(),
            _ => false,
        };
        if !registered {
            self.slots.remove(key);
            self.local.push_back(failed(ConnectError::Other));
            return;
        }
        io.arm(key, deadline);
    }

    /// A connect finished (its socket became writable or failed).
    fn dialed(&mut self, io: &mut Io, key: Key) {
        let d = match self.slots.remove(key) {
            Some(Entry::Dial(d)) => d,
            Some(other) => {
                self.slots.reinsert(key, other);
                return;
            }
            None => return,
        };
        let token = d.token;
        if let Err(e) = connect_result(&d.sock.stream) {
            let error = if e.kind() == io::ErrorKind::ConnectionRefused {
                ConnectError::Refused
            } else {
                ConnectError::Other
            };
            self.node_input(io, NodeInput::ConnectFailed { token, error });
            return;
        }
        let id = conn_id(self.worker, key);
        let new = NewConn {
            id,
            peer: d.addr,
            local: d
                .sock
                .stream
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            buggify: Buggify::off(),
        };
        let conn = N::spawn(&d.spawn, io.now, new);
        let mut sock = d.sock;
        // The connect's end was its first event: the socket is ready both ways until a read or
        // write comes up short.
        sock.readable = true;
        sock.writable = true;
        self.slots.reinsert(
            key,
            Entry::Open {
                slot: Slot::new(sock, d.addr, conn),
                known: true,
            },
        );
        self.node_to(NodeInput::Connected { token, conn: id });
        self.drive(io, key);
    }

    /// Sends an input to the node, wherever it runs.
    fn node_to(&mut self, input: NodeInput<N>) {
        let w = self.node_worker;
        self.send(w, Letter::Node(input));
    }

    /// Forgets a closed connection, telling the node if it knew it.
    fn close(&mut self, key: Key) {
        if let Some(Entry::Open { known: true, .. }) = self.slots.remove(key) {
            let id = conn_id(self.worker, key);
            let w = self.node_worker;
            self.send(w, Letter::Node(NodeInput::Closed { conn: id }));
        }
    }

    /// Carries out what a connection's machine asks until it waits on a new event.
    fn drive(&mut self, io: &mut Io, key: Key) {
        let id = conn_id(self.worker, key);
        let node_worker = self.node_worker;
        let worker = self.worker;
        let mut said: Vec<ToNode<N>> = Vec::new();
        let fate = {
            let Some(Entry::Open { slot, .. }) = self.slots.get_mut(key) else {
                return;
            };
            if slot.linger.is_some() {
                linger_read(slot, &mut io.scratch)
            } else {
                step(slot, &mut io.scratch, self.access_log, io.now, &mut |m| {
                    said.push(m)
                })
            }
        };
        if !said.is_empty() {
            if let Some(Entry::Open { known, .. }) = self.slots.get_mut(key) {
                *known = true;
            }
            for msg in said {
                let letter = Letter::Node(NodeInput::FromConn { conn: id, msg });
                if node_worker == worker {
                    self.local.push_back(letter);
                } else {
                    self.mailboxes[node_worker].post(letter);
                }
            }
        }
        let Fate::Open { deadline } = fate else {
            self.close(key);
            return;
        };
        let Some(Entry::Open { slot, .. }) = self.slots.get_mut(key) else {
            return;
        };
        if slot.sock.register(io, key).is_err() {
            self.close(key);
            return;
        }
        if let Some(at) = slot.linger.or(deadline) {
            if !matches!(slot.armed, Some(armed) if armed <= at) {
                slot.armed = Some(at);
                io.arm(key, at);
            }
        }
    }
}

impl<N: RealNode> Handler for NodeHandler<N> {
    fn started(&mut self, io: &mut Io) {
        for out in std::mem::take(&mut self.early) {
            self.carry(io, out);
        }
        if let Some(node) = self.node.as_mut() {
            // What the node names in its wait after starting.
            if let NodeOutput::Wait { deadline } = node.poll_output() {
                self.carry(io, NodeOutput::Wait { deadline });
            }
        }
        self.pump(io);
    }

    fn accepted(&mut self, io: &mut Io, listener: usize, stream: TcpStream, peer: SocketAddr) {
        let Some(spawn) = self.spawns.get(listener) else {
            return;
        };
        let generation = io.generation();
        let key = Key {
            index: self.slots.next_index(),
            generation,
        };
        let new = NewConn {
            id: conn_id(self.worker, key),
            peer,
            local: stream
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            buggify: Buggify::off(),
        };
        let conn = N::spawn(spawn, io.now, new);
        // Readable: the listener defers a connection until its first bytes arrive
        // (`TCP_DEFER_ACCEPT`), and serving it now saves a trip through epoll; a
        // `Connection: close` exchange served at once is closed without ever joining the set.
        let entry = Entry::Open {
            slot: Slot::new(Sock::new(stream, true), peer, conn),
            known: false,
        };
        let key = self.slots.insert(generation, entry);
        self.drive(io, key);
        self.pump(io);
    }

    fn ready(&mut self, io: &mut Io, key: Key, flags: Readiness) {
        match self.slots.get_mut(key) {
            Some(Entry::Dial(_)) => self.dialed(io, key),
            Some(Entry::Open { slot, .. }) => {
                slot.sock.mark(flags);
                self.drive(io, key);
            }
            None => {}
        }
        self.pump(io);
    }

    fn wanted(&self, key: Key, at: Instant) -> bool {
        if key == NODE_KEY {
            return self.node_armed == Some(at);
        }
        match self.slots.get(key) {
            Some(Entry::Open { slot, .. }) => slot.armed == Some(at),
            Some(Entry::Dial(d)) => d.armed && d.deadline == at,
            None => false,
        }
    }

    fn due(&mut self, io: &mut Io, key: Key, _at: Instant) {
        if key == NODE_KEY {
            self.node_armed = None;
            self.node_input(io, NodeInput::Timeout);
            self.pump(io);
            return;
        }
        match self.slots.get_mut(key) {
            Some(Entry::Dial(_)) => {
                if let Some(Entry::Dial(d)) = self.slots.remove(key) {
                    let input = NodeInput::ConnectFailed {
                        token: d.token,
                        error: ConnectError::TimedOut,
                    };
                    self.node_input(io, input);
                }
            }
            Some(Entry::Open { slot, .. }) => {
                slot.armed = None;
                if slot.linger.is_some_and(|until| until <= io.now.mono) {
                    self.close(key);
                } else {
                    slot.conn.handle(io.now, ConnInput::Timeout);
                    self.drive(io, key);
                }
            }
            None => {}
        }
        self.pump(io);
    }

    fn mail(&mut self, io: &mut Io) {
        if let Some(mb) = self.mailboxes.get(self.worker) {
            let letters = mb.take();
            self.local.extend(letters);
        }
        self.pump(io);
    }

    fn drain(&mut self, io: &mut Io) {
        self.node_input(io, NodeInput::Drain);
        for key in self.slots.keys() {
            if let Some(Entry::Open { slot, .. }) = self.slots.get_mut(key) {
                if slot.linger.is_none() {
                    slot.drained = true;
                    slot.conn.handle(io.now, ConnInput::Drain);
                    self.drive(io, key);
                }
            }
        }
        self.pump(io);
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
