//! The generic simulated host: one [`NodeMachine`] and its connection machines, driven on the
//! engine's streams, disk and timer exactly as the node contract says (`weaprous_core::node`
//! and `node::machine`). A world is then its topology, workload, faults and oracles: it
//! builds `MachineHost`s and watches them through an [`Observer`], and never copies a driver
//! loop.
//!
//! # What the host models
//! * **Listeners**: a [`NodeOutput::Listen`] on `host_addr(this host, port)` accepts streams to
//!   that port (any other address is refused, as binding it would fail).
//! * **Connection machines**: fed bytes only while `wants_read`, written as the stream's window
//!   allows, file segments read from the simulated disk as the real driver sends them; `Close` after the
//!   last byte half-closes, and when the machine says the peer may have sent bytes it will not
//!   read, the host discards input for [`LINGER`] (a lingering close, as `net-real` does),
//!   then resets if the peer has not closed.
//! * **Messages** between connections and the node arrive after a seeded delay of up to
//!   [`MAX_MESSAGE_DELAY`], each pair in order; different pairs interleave as the seed says.
//! * **Connects** with their deadline; `Closed` once for each connection that spoke to the node
//!   or that it opened.
//! * **Log operations** on the host's simulated disk (its faults, and crashes that keep only
//!   synced bytes), answered in the order they were asked.
//! * **Jobs** complete after a seeded delay of up to [`MAX_JOB_DELAY`].
//! * **Entropy** from a seeded stream of the host's own, never the node's RNG, and new in each
//!   life of the host (a restart never lends the same bytes again).
//! * **Drain** ([`MachineHost::drain`]): every connection and the node get `Drain`.

use crate::deadlines::Deadlines;
use crate::engine::{addr_host, host_addr, ConnectError as NetError, Cx, Node, StreamId};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use weaprous_core::buggify::Buggify;
use weaprous_core::node::machine::{
    ConnectError, FromNode, ListenError, NewConn, NodeInput, NodeMachine, NodeOutput,
    SeededEntropy, ToNode, Token,
};
use weaprous_core::node::{
    AccessLog, ConnInput, ConnOutput, Connection, FileOp, FileReply, FsError, LogReply,
};
use weaprous_core::time::{Duration, Instant};

/// Unsent bytes a connection may hold after a node message before it is cut off (as in
/// `net-real`).
pub const OUTBOUND_LIMIT: usize = 4 * 1024 * 1024;
/// How long a draining host waits for its connections before it resets them.
pub const GRACE: Duration = Duration::from_secs(10);
/// How long a closing connection discards unread input before it resets.
pub const LINGER: Duration = Duration::from_secs(2);
/// The most a message between a connection and its node is delayed.
pub const MAX_MESSAGE_DELAY: Duration = Duration::from_micros(500);
/// The most a job takes.
pub const MAX_JOB_DELAY: Duration = Duration::from_millis(50);

/// What a world watches in a host (every method optional).
pub trait Observer<N: NodeMachine> {
    /// A connection machine wrote an access-log record.
    fn access(&mut self, _cx: &mut Cx, _s: StreamId, _log: &AccessLog) {}
    /// The node emitted an event.
    fn event(&mut self, _cx: &mut Cx, _ev: &N::Event) {}
    /// A connection machine was driven (its invariants held).
    fn stepped(&mut self, _cx: &mut Cx, _s: StreamId, _conn: &N::Conn) {}
    /// Safety checks after every event of this host.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// An observer that watches nothing.
pub struct Unobserved;
impl<N: NodeMachine> Observer<N> for Unobserved {}

/// One connection's machine and what the host remembers about it.
struct Side<C> {
    conn: C,
    rx: VecDeque<Vec<u8>>,
    rx_eof: bool,
    close_after_flush: bool,
    /// Discarding input until this instant (a lingering close).
    linger: Option<Instant>,
    /// The peer's FIN arrived (whether or not the machine has read up to it).
    peer_closed: bool,
}

/// An outgoing connect not yet answered.
struct Dialing<S> {
    token: Token,
    spawn: S,
    deadline: Instant,
    addr: std::net::SocketAddr,
}

/// Which way a queued message goes.
enum Mail<N: NodeMachine> {
    ToConn(StreamId, FromNode<N>),
    ToNode(StreamId, ToNode<N>),
    /// The connection has gone (after its last message to the node).
    Closed(StreamId),
}

/// A host running node machine `N` (module docs).
pub struct MachineHost<N: NodeMachine> {
    node: N,
    observer: Box<dyn Observer<N>>,
    entropy: SeededEntropy,
    started: bool,
    /// Draining: the end of the grace period.
    grace_until: Option<Instant>,
    exit: Option<String>,
    listeners: BTreeMap<u16, N::Spawn>,
    /// Boxed: `drive` takes a side out of the map and puts it back on every event, and a
    /// connection machine is large enough that moving it inside the tree's nodes cost a
    /// quarter of the backend world's time.
    sides: BTreeMap<StreamId, Box<Side<N::Conn>>>,
    deadlines: Deadlines,
    node_deadline: Option<Instant>,
    dialing: BTreeMap<StreamId, Dialing<N::Spawn>>,
    /// Connections owed a `Closed` when they go.
    known: BTreeSet<StreamId>,
    /// Messages in flight, by (delivery time, sequence).
    mail: BTreeMap<(Instant, u64), Mail<N>>,
    /// Per connection and direction, the last delivery time (so each pair keeps its order).
    mail_last: BTreeMap<(StreamId, bool), Instant>,
    jobs: BTreeMap<(Instant, u64), (Token, N::Job)>,
    /// Log operations in the order asked: (tag, the node's token); replies by tag.
    log_order: VecDeque<(u64, Token)>,
    log_ready: BTreeMap<u64, LogReply>,
    seq: u64,
    /// Commands a workload scheduled, by (time, sequence).
    commands: BTreeMap<(Instant, u64), N::Command>,
    /// An exit restarts the host, as a service manager would (`Restart=on-failure`).
    supervised: bool,
}

impl<N: NodeMachine + 'static> MachineHost<N> {
    /// A host for `node`; `seed` seeds its entropy stream.
    pub fn new(node: N, seed: u64, observer: Box<dyn Observer<N>>) -> Self {
        MachineHost {
            node,
            observer,
            entropy: SeededEntropy(fastrand::Rng::with_seed(seed ^ 0x0065_6e74_726f_7079)),
            started: false,
            grace_until: None,
            exit: None,
            listeners: BTreeMap::new(),
            sides: BTreeMap::new(),
            deadlines: Deadlines::default(),
            node_deadline: None,
            dialing: BTreeMap::new(),
            known: BTreeSet::new(),
            mail: BTreeMap::new(),
            mail_last: BTreeMap::new(),
            jobs: BTreeMap::new(),
            log_order: VecDeque::new(),
            log_ready: BTreeMap::new(),
            seq: 0,
            commands: BTreeMap::new(),
            supervised: false,
        }
    }

    /// Delivers `cmd` to the node at `at` (a user's action). A host built again after a crash
    /// gets the same plan; those whose time passed while it was down never happen.
    pub fn schedule_command(&mut self, at: Instant, cmd: N::Command) {
        let seq = self.next_seq();
        self.commands.insert((at, seq), cmd);
    }

    /// A node that exits is started again on the same disk, as a service manager does.
    pub fn supervised(mut self) -> Self {
        self.supervised = true;
        self
    }

    /// Commands not yet delivered.
    pub fn commands_left(&self) -> usize {
        self.commands.len()
    }

    pub fn node(&self) -> &N {
        &self.node
    }
    /// Open connections (lingering ones included).
    pub fn connections(&self) -> usize {
        self.sides.len()
    }
    /// Why the node asked to exit, if it did.
    pub fn exited(&self) -> Option<&str> {
        self.exit.as_deref()
    }
    /// Work not yet done: messages, jobs, log operations and connects in flight.
    pub fn pending(&self) -> usize {
        self.mail.len() + self.jobs.len() + self.log_order.len() + self.dialing.len()
    }

    /// The open connections, for failure reports.
    pub fn describe(&self) -> String {
        self.sides
            .iter()
            .map(|(s, side)| {
                format!(
                    "stream {s}: wants_read {} rx {} eof {} close {} linger {:?} deadline {:?} transmit {} file {:?}",
                    side.conn.wants_read(),
                    side.rx.len(),
                    side.rx_eof,
                    side.close_after_flush,
                    side.linger,
                    self.deadlines.get(*s),
                    side.conn.transmit().len(),
                    side.conn.transmit_file()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Graceful shutdown: the listeners close, the node and every connection get `Drain`;
    /// once no connection is left, or [`GRACE`] passed (the rest are reset), the host asks
    /// the engine to restart it.
    pub fn drain(&mut self, cx: &mut Cx) {
        if self.grace_until.is_some() {
            return;
        }
        cx.cover("host.drain");
        self.grace_until = Some(cx.now().mono + GRACE);
        self.node_input(cx, NodeInput::Drain);
        for s in self.sides.keys().copied().collect::<Vec<_>>() {
            if let Some(side) = self.sides.get_mut(&s) {
                if side.linger.is_none() {
                    side.conn.handle(cx.now(), ConnInput::Drain);
                    self.drive(cx, s);
                }
            }
        }
        self.settle(cx);
    }

    /// Delivers a command to the node.
    pub fn command(&mut self, cx: &mut Cx, cmd: N::Command) {
        self.node_input(cx, NodeInput::Command(cmd));
        self.settle(cx);
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn node_input(&mut self, cx: &mut Cx, input: NodeInput<N>) {
        if self.exit.is_some() {
            return;
        }
        self.node.handle(cx.now(), input, &mut self.entropy);
        self.node.check_invariants();
        self.node_outputs(cx);
    }

    /// Carries out the node's outputs until it waits.
    fn node_outputs(&mut self, cx: &mut Cx) {
        loop {
            match self.node.poll_output() {
                NodeOutput::Listen {
                    listener,
                    addr,
                    spawn,
                } => {
                    let result = if addr_host(addr) == Some(cx.host())
                        && !self.listeners.contains_key(&addr.port())
                    {
                        self.listeners.insert(addr.port(), spawn);
                        Ok(addr)
                    } else {
                        Err(ListenError(format!("cannot bind {addr}")))
                    };
                    self.node.handle(
                        cx.now(),
                        NodeInput::Listening { listener, result },
                        &mut self.entropy,
                    );
                }
                NodeOutput::Connect {
                    token,
                    addr,
                    timeout,
                    spawn,
                } => match addr_host(addr) {
                    Some(to) if to < cx.hosts() => {
                        let s = cx.connect_port(to, addr.port());
                        let deadline = cx.now().mono + timeout;
                        self.dialing.insert(
                            s,
                            Dialing {
                                token,
                                spawn,
                                deadline,
                                addr,
                            },
                        );
                    }
                    _ => {
                        cx.cover("host.connect_no_route");
                        let input = NodeInput::ConnectFailed {
                            token,
                            error: ConnectError::Other,
                        };
                        self.node.handle(cx.now(), input, &mut self.entropy);
                    }
                },
                NodeOutput::ToConn { conn, msg } => {
                    if self.sides.contains_key(&conn) {
                        self.post(cx, conn, Mail::ToConn(conn, msg), false);
                    }
                }
                NodeOutput::Log { token, op } => {
                    let tag = self.next_seq();
                    self.log_order.push_back((tag, token));
                    cx.log(tag, op);
                }
                NodeOutput::Job { token, job } => {
                    let delay = cx.rng().u64(1..=MAX_JOB_DELAY.as_micros() as u64);
                    let at = cx.now().mono + Duration::from_micros(delay);
                    let seq = self.next_seq();
                    self.jobs.insert((at, seq), (token, job));
                }
                NodeOutput::Event(ev) => self.observer.event(cx, &ev),
                NodeOutput::Exit { reason } => {
                    self.exit = Some(reason);
                    if self.supervised {
                        cx.cover("host.exit_restarted");
                        cx.restart_host();
                    }
                    return;
                }
                NodeOutput::Wait { deadline } => {
                    self.node_deadline = deadline;
                    return;
                }
            }
            self.node.check_invariants();
        }
    }

    /// Queues a message, after the last one of its pair.
    fn post(&mut self, cx: &mut Cx, s: StreamId, mail: Mail<N>, to_node: bool) {
        let delay = cx.rng().u64(..=MAX_MESSAGE_DELAY.as_micros() as u64);
        let mut at = cx.now().mono + Duration::from_micros(delay);
        if let Some(&last) = self.mail_last.get(&(s, to_node)) {
            at = at.max(last);
        }
        self.mail_last.insert((s, to_node), at);
        let seq = self.next_seq();
        self.mail.insert((at, seq), mail);
    }

    fn make_conn(
        &mut self,
        cx: &mut Cx,
        s: StreamId,
        spawn: &N::Spawn,
        local_port: u16,
    ) -> N::Conn {
        // The far end's ephemeral port: any stable number will do.
        let peer_host = cx.peer(s).unwrap_or(cx.host());
        let peer = host_addr(peer_host, 40_000 + (s % 20_000) as u16);
        // BUGGIFY at the scenario's rates (off when it has none).
        let (activate, fire) = (
            cx.faults().buggify_activate_ppm,
            cx.faults().buggify_fire_ppm,
        );
        let buggify = if activate > 0 {
            let machine_seed = cx.machine_seed();
            Buggify::seeded(cx.run_seed(), machine_seed, activate, fire)
        } else {
            Buggify::off()
        };
        let new = NewConn {
            id: s,
            peer,
            local: host_addr(cx.host(), local_port),
            buggify,
        };
        N::spawn(spawn, cx.now(), new)
    }

    fn open_side(&mut self, s: StreamId, conn: N::Conn) {
        self.sides.insert(
            s,
            Box::new(Side {
                conn,
                rx: VecDeque::new(),
                rx_eof: false,
                close_after_flush: false,
                linger: None,
                peer_closed: false,
            }),
        );
    }

    /// A connection is gone: forget it and tell the node if it knew it.
    fn finish(&mut self, cx: &mut Cx, s: StreamId) {
        self.sides.remove(&s);
        self.deadlines.set(s, None);
        self.mail_last.remove(&(s, false));
        if self.known.remove(&s) {
            self.post(cx, s, Mail::Closed(s), true);
        }
        self.mail_last.remove(&(s, true));
    }

    /// Connection `s` is gone at once (reset by the peer, or by the host at the end of a
    /// drain): its machine hears `Reset`; the files it closes, its last records and messages
    /// still count, nothing else it says does.
    fn kill(&mut self, cx: &mut Cx, s: StreamId) {
        let Some(mut side) = self.sides.remove(&s) else {
            return;
        };
        if side.linger.is_none() {
            side.conn.handle(cx.now(), ConnInput::Reset);
            loop {
                match side.conn.poll_output() {
                    ConnOutput::File(op) => {
                        cx.disk_now(op);
                    }
                    ConnOutput::Log(l) => self.observer.access(cx, s, &l),
                    ConnOutput::ToNode(m) => {
                        self.known.insert(s);
                        self.post(cx, s, Mail::ToNode(s, m), true);
                    }
                    ConnOutput::Wait { .. } => break,
                    ConnOutput::Close | ConnOutput::Abort => {}
                }
            }
        }
        self.finish(cx, s);
    }

    /// Drives connection `s` until it waits on something the host does not have yet.
    fn drive(&mut self, cx: &mut Cx, s: StreamId) {
        let Some(mut side) = self.sides.remove(&s) else {
            return;
        };
        match self.step(cx, s, &mut side) {
            Fate::Open => {
                self.sides.insert(s, side);
            }
            Fate::Gone => self.finish(cx, s),
        }
    }

    /// One round of the connection contract for `side` (detached from `self.sides`).
    fn step(&mut self, cx: &mut Cx, s: StreamId, side: &mut Side<N::Conn>) -> Fate {
        loop {
            let now = cx.now();
            if let Some(until) = side.linger {
                side.rx.clear();
                if side.peer_closed {
                    return Fate::Gone;
                }
                if now.mono >= until {
                    cx.cover("host.linger_expired");
                    cx.reset(s);
                    return Fate::Gone;
                }
                self.deadlines.set(s, Some(until));
                return Fate::Open;
            }
            if side.conn.wants_read() {
                if let Some(bytes) = side.rx.pop_front() {
                    side.conn.handle(now, ConnInput::Data(&bytes));
                    continue;
                }
                if side.rx_eof {
                    side.rx_eof = false;
                    side.conn.handle(now, ConnInput::Eof);
                    continue;
                }
            }
            let deadline = loop {
                match side.conn.poll_output() {
                    ConnOutput::File(op) => cx.disk(s, op),
                    ConnOutput::Log(l) => self.observer.access(cx, s, &l),
                    ConnOutput::Close => side.close_after_flush = true,
                    ConnOutput::Abort => {
                        cx.reset(s);
                        return Fate::Gone;
                    }
                    ConnOutput::ToNode(m) => {
                        cx.cover("host.message_to_node");
                        self.known.insert(s);
                        self.post(cx, s, Mail::ToNode(s, m), true);
                    }
                    ConnOutput::Wait { deadline } => break deadline,
                }
            };
            side.conn.check_invariants();
            self.observer.stepped(cx, s, &side.conn);
            self.deadlines.set(s, deadline);
            let room = cx.room(s);
            let pending = side.conn.transmit().len();
            // File segments go "from the disk" as the real driver sends them: read, then put on the wire.
            let from_file = match side.conn.transmit_file() {
                Some(seg) if pending == 0 && room > 0 => {
                    let len = (seg.len as usize).min(room);
                    let op = FileOp::Read {
                        handle: seg.handle,
                        offset: seg.offset,
                        len,
                    };
                    match cx.disk_now(op) {
                        Some(FileReply::Read(Ok(bytes))) if !bytes.is_empty() => Some(bytes),
                        _ => {
                            cx.cover("host.read_error_after_head");
                            let failed = FileReply::Read(Err(FsError::Io));
                            side.conn.handle(now, ConnInput::File(failed));
                            continue;
                        }
                    }
                }
                _ => None,
            };
            if from_file.is_some() || (pending > 0 && room > 0) {
                let bytes =
                    from_file.unwrap_or_else(|| side.conn.transmit()[..pending.min(room)].to_vec());
                side.conn.handle(now, ConnInput::Flushed(bytes.len()));
                cx.write(s, &bytes);
                continue;
            }
            if pending > 0 || side.conn.transmit_file().is_some() {
                cx.want_writable(s);
            } else if side.close_after_flush {
                cx.fin(s);
                if side.conn.may_leave_unread() && !side.peer_closed {
                    cx.cover("host.linger");
                    side.linger = Some(now.mono + LINGER);
                    continue;
                }
                return Fate::Gone;
            }
            return Fate::Open;
        }
    }

    /// Delivers every message, job and deadline due now.
    fn due(&mut self, cx: &mut Cx) {
        let now = cx.now();
        for s in self.deadlines.due(now.mono) {
            let Some(side) = self.sides.get_mut(&s) else {
                continue;
            };
            if side.linger.is_none() {
                cx.cover("host.deadline_fired");
                side.conn.handle(now, ConnInput::Timeout);
            }
            self.drive(cx, s);
            if let Some(spin) = self.deadlines.still_due(s, now.mono) {
                cx.fail(spin);
            }
        }
        while let Some(entry) = self.commands.first_entry() {
            if entry.key().0 > now.mono || self.exit.is_some() {
                break;
            }
            let cmd = entry.remove();
            self.node_input(cx, NodeInput::Command(cmd));
        }
        if self.node_deadline.is_some_and(|d| d <= now.mono) {
            cx.cover("host.node_timer");
            self.node_input(cx, NodeInput::Timeout);
            if let Some(d) = self.node_deadline.filter(|&d| d <= now.mono) {
                cx.fail(format!(
                    "node deadline {d:?} still due at {:?} after its timeout (a spin)",
                    now.mono
                ));
            }
        }
        let expired: Vec<StreamId> = self
            .dialing
            .iter()
            .filter(|(_, d)| d.deadline <= now.mono)
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            if let Some(d) = self.dialing.remove(&s) {
                cx.cover("host.connect_deadline");
                cx.reset(s);
                let input = NodeInput::ConnectFailed {
                    token: d.token,
                    error: ConnectError::TimedOut,
                };
                self.node_input(cx, input);
            }
        }
        while let Some(entry) = self.mail.first_entry() {
            if entry.key().0 > now.mono {
                break;
            }
            match entry.remove() {
                Mail::ToConn(s, msg) => {
                    if let Some(side) = self.sides.get_mut(&s) {
                        if side.linger.is_none() {
                            cx.cover("host.message_to_conn");
                            side.conn.handle(now, ConnInput::FromNode(msg));
                            if side.conn.transmit().len() > OUTBOUND_LIMIT {
                                // As `net-real` does: a reader this slow is cut off.
                                cx.cover("host.slow_reader_cut_off");
                                cx.reset(s);
                                self.kill(cx, s);
                                continue;
                            }
                            self.drive(cx, s);
                        }
                    }
                }
                Mail::ToNode(conn, msg) => self.node_input(cx, NodeInput::FromConn { conn, msg }),
                Mail::Closed(conn) => self.node_input(cx, NodeInput::Closed { conn }),
            }
        }
        while let Some(entry) = self.jobs.first_entry() {
            if entry.key().0 > now.mono {
                break;
            }
            let (token, job) = entry.remove();
            cx.cover("host.job_done");
            let done = N::run_job(job);
            self.node_input(cx, NodeInput::JobDone { token, done });
        }
    }

    /// Arms the host's one timer for the earliest thing it waits for (and, once a drain is
    /// done, restarts the host).
    fn settle(&mut self, cx: &mut Cx) {
        if let Some(until) = self.grace_until {
            if cx.now().mono >= until {
                cx.cover("host.grace_over");
                for s in self.sides.keys().copied().collect::<Vec<_>>() {
                    cx.reset(s);
                    self.kill(cx, s);
                }
            }
            if self.sides.is_empty() {
                cx.cover("host.drained");
                cx.restart_host();
                return;
            }
        }
        let next = [
            self.grace_until,
            self.deadlines.first(),
            self.node_deadline,
            self.mail.keys().next().map(|k| k.0),
            self.jobs.keys().next().map(|k| k.0),
            self.dialing.values().map(|d| d.deadline).min(),
            self.commands.keys().next().map(|k| k.0),
        ]
        .into_iter()
        .flatten()
        .min();
        cx.set_timer(next);
    }
}

/// What became of a connection after it was driven.
enum Fate {
    Open,
    Gone,
}

impl<N: NodeMachine + 'static> Node for MachineHost<N> {
    fn start(&mut self, cx: &mut Cx) {
        if !self.started {
            self.started = true;
            // The OS's random source never repeats, so a restarted host must not lend the
            // bytes its previous life lent (the session tokens it minted would come again).
            let life = cx.machine_seed();
            self.entropy = SeededEntropy(fastrand::Rng::with_seed(self.entropy.0.u64(..) ^ life));
            let now = cx.now().mono;
            self.commands.retain(|(at, _), _| *at >= now);
            self.node_input(cx, NodeInput::Start);
        }
        self.settle(cx);
    }
    fn accepts_on(&self, port: u16) -> bool {
        self.exit.is_none() && self.grace_until.is_none() && self.listeners.contains_key(&port)
    }
    fn on_drain(&mut self, cx: &mut Cx) {
        self.drain(cx);
    }
    fn on_accept(&mut self, cx: &mut Cx, s: StreamId) {
        let port = cx.port(s);
        if let Some(spawn) = self.listeners.get(&port).cloned() {
            let conn = self.make_conn(cx, s, &spawn, port);
            self.open_side(s, conn);
            self.drive(cx, s);
        }
        self.settle(cx);
    }
    fn on_connected(&mut self, cx: &mut Cx, s: StreamId) {
        if let Some(d) = self.dialing.remove(&s) {
            let local = 40_000 + (s % 20_000) as u16;
            let conn = self.make_conn(cx, s, &d.spawn, local);
            self.open_side(s, conn);
            self.known.insert(s);
            let _ = d.addr;
            self.node_input(
                cx,
                NodeInput::Connected {
                    token: d.token,
                    conn: s,
                },
            );
            self.drive(cx, s);
        }
        self.settle(cx);
    }
    fn on_connect_failed(&mut self, cx: &mut Cx, s: StreamId, e: NetError) {
        if let Some(d) = self.dialing.remove(&s) {
            cx.cover("host.connect_failed");
            let error = match e {
                NetError::Refused => ConnectError::Refused,
                NetError::TimedOut => ConnectError::TimedOut,
            };
            let input = NodeInput::ConnectFailed {
                token: d.token,
                error,
            };
            self.node_input(cx, input);
        }
        self.settle(cx);
    }
    fn on_data(&mut self, cx: &mut Cx, s: StreamId, bytes: Vec<u8>) {
        if let Some(side) = self.sides.get_mut(&s) {
            side.rx.push_back(bytes);
            self.drive(cx, s);
        }
        self.settle(cx);
    }
    fn on_eof(&mut self, cx: &mut Cx, s: StreamId) {
        if let Some(side) = self.sides.get_mut(&s) {
            side.rx_eof = true;
            side.peer_closed = true;
            self.drive(cx, s);
        }
        self.settle(cx);
    }
    fn on_reset(&mut self, cx: &mut Cx, s: StreamId) {
        if self.sides.contains_key(&s) {
            cx.cover("host.peer_reset");
            self.kill(cx, s);
        }
        self.settle(cx);
    }
    fn on_writable(&mut self, cx: &mut Cx, s: StreamId) {
        self.drive(cx, s);
        self.settle(cx);
    }
    fn on_timer(&mut self, cx: &mut Cx) {
        self.due(cx);
        self.settle(cx);
    }
    fn on_disk(&mut self, cx: &mut Cx, tag: u64, reply: FileReply) {
        let s = tag;
        if let Some(side) = self.sides.get_mut(&s) {
            side.conn.handle(cx.now(), ConnInput::File(reply));
            self.drive(cx, s);
        } else if let FileReply::Opened(Ok(meta)) = reply {
            // The connection went away while the open was in flight: close what it opened.
            cx.disk_now(FileOp::Close {
                handle: meta.handle,
            });
        }
        self.settle(cx);
    }
    fn on_log(&mut self, cx: &mut Cx, tag: u64, reply: LogReply) {
        self.log_ready.insert(tag, reply);
        while let Some(&(tag, token)) = self.log_order.front() {
            let Some(reply) = self.log_ready.remove(&tag) else {
                break;
            };
            self.log_order.pop_front();
            self.node_input(cx, NodeInput::Log { token, reply });
        }
        self.settle(cx);
    }
    fn check(&self) -> Result<(), String> {
        self.observer.check()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
