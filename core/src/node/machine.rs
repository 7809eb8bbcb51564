//! The node machine: state that many connections share (sessions, channel logs, stream
//! subscribers, a tracker, a peer's links), as one more sans-I/O machine beside the
//! connection machines of [`super::Connection`].
//!
//! # Two levels
//! A process runs **connection machines**, one per TCP connection, and a **node machine**. They
//! never call each other: they exchange messages that the driver carries, by connection id.
//! A connection emits [`ConnOutput::ToNode`](super::ConnOutput::ToNode); the node gets it as
//! [`NodeInput::FromConn`]. The node emits [`NodeOutput::ToConn`]; the connection gets it as
//! [`ConnInput::FromNode`](super::ConnInput::FromNode). Between one connection and its node,
//! messages keep their order in each direction; messages of different pairs may interleave in
//! any order (the simulator shuffles them, keeping each pair's order).
//!
//! [`NodeMachine::SCOPE`] says how many node machines a process runs: one
//! ([`Scope::Process`], for state that must be one: chat channels, the tracker) or one per
//! worker thread ([`Scope::Worker`], for state that can be split, as nginx keeps its balancer
//! per worker: then no request crosses threads). A per-worker node sees only the connections
//! of its worker.
//!
//! # The driver's loop
//! 1. Once, first: [`NodeInput::Start`].
//! 2. Deliver each input with [`NodeMachine::handle`], with the time ([`Now`]) and a source of
//!    secret randomness ([`Entropy`]).
//! 3. Drain [`NodeMachine::poll_output`] until [`NodeOutput::Wait`], carrying out each output
//!    in order. `Wait { deadline }` names when `handle` must be called with
//!    [`NodeInput::Timeout`] if nothing else comes first; early calls are harmless no-ops.
//!    Only `handle` changes what `poll_output` returns.
//!
//! What each input may change:
//! * `Start`: the node asks for its listeners ([`NodeOutput::Listen`]) and reads its logs.
//! * `Listening`: a listener is bound (its address, with the port the system chose), or could
//!   not be; a node that cannot work without it asks to [`NodeOutput::Exit`].
//! * `FromConn`, `Closed`: what connections say, and that one has gone. `Closed` comes once for
//!   each connection that sent the node a message or that the node connected, after its last
//!   message.
//! * `Connected` / `ConnectFailed`: the answer to a [`NodeOutput::Connect`], by its token.
//! * `Log`: the answer to a [`NodeOutput::Log`], by its token, in the order they were asked.
//! * `JobDone`: the result of a [`NodeOutput::Job`], by its token, in any order.
//! * `Timeout`: a deadline passed: the node fires what its [`super::timers::Timers`] hold.
//! * `Command`: an instruction from a workload or a user interface.
//! * `Drain`: the process is shutting down: stop starting work, finish what is pending.
//!
//! # Randomness
//! A node owns a seeded `fastrand::Rng` for choices that need no secrecy (backoff jitter).
//! Secrets (session tokens, peer ids) come from the [`Entropy`] the driver lends with every
//! call: the OS random source in `net-real`, a seeded stream of its own in `net-sim`. It is
//! lent (pulled) rather than pushed as an input so that a request handler can mint a token
//! at once, without waiting a round trip for random bytes.
//!
//! # Work off the loop
//! Work that would stall a loop (a password hash takes tens of milliseconds) is a
//! [`NodeOutput::Job`]: a value the driver hands to [`NodeMachine::run_job`], a pure function,
//! on another thread (`net-real`) or after a seeded delay (`net-sim`), answering
//! [`NodeInput::JobDone`].

use super::{Connection, LogOp, LogReply, Now};
use crate::buggify::Buggify;
use crate::time::Duration;
// `core::net` holds address values only (no sockets): where to listen and to connect.
use core::net::SocketAddr;

/// A connection, as the driver names it to its node: unique for the life of the node.
pub type ConnId = u64;
/// A listener, as the node names it in [`NodeOutput::Listen`].
pub type ListenerId = u32;
/// Matches an answer to the output that asked for it (chosen by the node).
pub type Token = u64;

/// The message a node's connections send it.
pub type ToNode<N> = <<N as NodeMachine>::Conn as Connection>::ToNode;
/// The message a node sends its connections.
pub type FromNode<N> = <<N as NodeMachine>::Conn as Connection>::FromNode;

/// How many node machines a process runs (module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Process,
    Worker,
}

/// A source of secret random bytes, lent by the driver with every call.
pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]);
}

/// Seeded bytes: what a simulator or a test lends as [`Entropy`]. Not secret.
pub struct SeededEntropy(pub fastrand::Rng);

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill(buf);
    }
}

/// What the driver knows of a new connection when it makes its machine.
#[derive(Clone, Debug)]
pub struct NewConn {
    pub id: ConnId,
    /// The far end.
    pub peer: SocketAddr,
    /// The near end.
    pub local: SocketAddr,
    /// Rare paths to force (the simulator's; off on real sockets).
    pub buggify: Buggify,
}

/// Why an outgoing connection failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The peer answered with a reset: nothing listens there.
    Refused,
    /// No answer before the connect's deadline.
    TimedOut,
    /// Anything else (no route, out of descriptors).
    Other,
}

/// Why a listener could not be bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenError(pub String);

/// An input to a node machine (module docs say what each may change).
pub enum NodeInput<N: NodeMachine + ?Sized> {
    Start,
    Listening {
        listener: ListenerId,
        result: Result<SocketAddr, ListenError>,
    },
    FromConn {
        conn: ConnId,
        msg: ToNode<N>,
    },
    Closed {
        conn: ConnId,
    },
    Connected {
        token: Token,
        conn: ConnId,
    },
    ConnectFailed {
        token: Token,
        error: ConnectError,
    },
    Log {
        token: Token,
        reply: LogReply,
    },
    JobDone {
        token: Token,
        done: N::JobDone,
    },
    Timeout,
    Command(N::Command),
    Drain,
}

/// An effect a node machine asks its driver to carry out.
pub enum NodeOutput<N: NodeMachine + ?Sized> {
    /// Accept connections on `addr`, each with a machine made by [`NodeMachine::spawn`] from
    /// `spawn`; answered by [`NodeInput::Listening`].
    Listen {
        listener: ListenerId,
        addr: SocketAddr,
        spawn: N::Spawn,
    },
    /// Open a connection to `addr` within `timeout`, its machine made from `spawn`; answered
    /// by [`NodeInput::Connected`] or [`NodeInput::ConnectFailed`].
    Connect {
        token: Token,
        addr: SocketAddr,
        timeout: Duration,
        spawn: N::Spawn,
    },
    /// A message to connection `conn` (dropped if it has gone: its `Closed` is on the way).
    ToConn { conn: ConnId, msg: FromNode<N> },
    /// A durable-log operation, answered by [`NodeInput::Log`].
    Log { token: Token, op: LogOp },
    /// Run [`NodeMachine::run_job`] off the loop, answered by [`NodeInput::JobDone`].
    Job { token: Token, job: N::Job },
    /// Something observers and oracles see.
    Event(N::Event),
    /// The node cannot go on: the driver stops the process with this reason (after a drain).
    Exit { reason: String },
    /// Nothing more until the next input, or until `deadline`.
    Wait {
        deadline: Option<crate::time::Instant>,
    },
}

/// A node machine. See the module docs for the contract.
pub trait NodeMachine {
    /// The machine of every connection this node's listeners accept and its connects open.
    type Conn: Connection;
    /// How a connection's machine is made: a listener's or a connect's recipe.
    type Spawn: Clone;
    /// Work to run off the loop, and its result.
    type Job;
    type JobDone;
    /// Instructions from a workload or a user interface.
    type Command;
    /// What observers see.
    type Event;

    const SCOPE: Scope;

    /// Makes the machine of a new connection (on whichever worker holds it).
    fn spawn(spawn: &Self::Spawn, now: Now, conn: NewConn) -> Self::Conn;
    /// The off-loop work: pure, so it can run on any thread.
    fn run_job(job: Self::Job) -> Self::JobDone;

    fn handle(&mut self, now: Now, input: NodeInput<Self>, entropy: &mut dyn Entropy);
    fn poll_output(&mut self) -> NodeOutput<Self>;
    /// Cheap internal consistency checks; the simulator calls this after every step.
    fn check_invariants(&self) {}
    /// What an operator should read of `event`, if anything (a default password, a log cut
    /// at start): `net-real` prints it on standard error. Most events are for oracles only.
    fn notice(_event: &Self::Event) -> Option<String> {
        None
    }
}
