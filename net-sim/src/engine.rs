//! The simulation engine: virtual time, hosts running [`Node`]s, simulated TCP streams between
//! them, a disk per host, and the fault model. Worlds (the backend world, later the proxy and
//! chat worlds) are built on it by implementing [`Node`] for each kind of host.
//!
//! # Event loop
//! Events sit in a heap ordered by (simulated time, insertion sequence): time jumps straight to
//! the next event (idle hosts cost nothing) and equal times never race. Each event goes to one
//! host; the host sees its own [`Clock`] (offset, drift, wall-clock jumps) and draws from its
//! own seeded RNG. The engine's randomness comes from separate streams (network latency,
//! chunking, faults, disk) so that changing one fault does not reshuffle the others.
//! After every event the host's [`Node::check`] runs (safety oracles and the machines'
//! `check_invariants`).
//!
//! # Streams (what a node sees)
//! A stream is a TCP connection: [`Cx::connect`], then `on_connected` or `on_connect_failed`;
//! the acceptor gets `on_accept`. Bytes written are cut into segments of 1..=`max_chunk` bytes
//! that arrive in order after sampled latencies. At most `window` bytes are in flight per
//! direction: a sender asks [`Cx::room`], writes at most that, and calls [`Cx::want_writable`]
//! to hear `on_writable` when an acknowledgement frees room. `fin` half-closes; `reset` aborts.
//!
//! # Fault model
//! * **Latency**: per segment, with a heavy tail, plus a stable per-link extra ([`Latency`](crate::scenario::Latency)).
//! * **Chunking**: arbitrary segment sizes down to one byte.
//! * **Connect**: refused (RST at once) or timed out (no answer until `syn_timeout_ms`) at
//!   random; refused when the peer does not accept; timed out when the peer is down or
//!   partitioned away.
//! * **Resets**: a random segment resets its stream (both ends get RST); `ResetAll` resets every
//!   stream of a host.
//! * **Partitions** (one-way too, and isolating one host) and **clogs** hold segments on the link;
//!   they are released in order when the partition heals or the clog ends (TCP retransmits).
//! * **Crash**: the node is dropped, its disk loses unsynced writes, its timers and disk replies
//!   are void (epoch), and its peers hear nothing: their streams are half-open. Segments that
//!   reach a crashed host vanish; after a restart they are answered with RST.
//! * **Pause**: the host processes nothing; its events wait and are delivered in order on resume.
//! * **Heal**: partitions and clogs lifted, crashed hosts restarted, paused hosts resumed,
//!   random faults off.

use crate::clock::Clock;
use crate::coverage::Coverage;
use crate::disk::Disk;
use crate::rng;
use crate::scenario::{FaultAction, HostId, NetConfig, Phases, RandomFaults, Timed};
use crate::trace::{fnv, Keep, Trace};
use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use weaprous_core::node::{FileOp, FileReply, LogOp, LogReply, Now};
use weaprous_core::time::{Duration, Instant};

pub type StreamId = u64;

/// The port of [`Cx::connect`]: a world whose hosts listen on one port each needs no other.
pub const DEFAULT_PORT: u16 = 80;

/// The address by which other hosts reach `port` of `host` (10.x.y.z, one per host).
pub fn host_addr(host: HostId, port: u16) -> std::net::SocketAddr {
    let h = host as u32 + 1;
    std::net::SocketAddr::from(([10, (h >> 16) as u8, (h >> 8) as u8, h as u8], port))
}

/// The host of an address made by [`host_addr`].
pub fn addr_host(addr: std::net::SocketAddr) -> Option<HostId> {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            let h = u32::from_be_bytes([0, b, c, d]);
            (a == 10 && h > 0).then(|| (h - 1) as HostId)
        }
        std::net::IpAddr::V6(_) => None,
    }
}

/// Why a connect failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    Refused,
    TimedOut,
}

/// A simulated host's behaviour. Every method gets a [`Cx`], through which the node acts.
/// Defaults ignore the input, so a node implements what it uses.
pub trait Node: Any {
    /// The host started (first boot or restart).
    fn start(&mut self, _cx: &mut Cx) {}
    /// Whether connects to this host are accepted (else refused).
    fn accepts(&self) -> bool {
        false
    }
    /// Whether connects to `port` of this host are accepted (else refused); by default,
    /// [`Node::accepts`] for every port.
    fn accepts_on(&self, _port: u16) -> bool {
        self.accepts()
    }
    fn on_accept(&mut self, _cx: &mut Cx, _s: StreamId) {}
    fn on_connected(&mut self, _cx: &mut Cx, _s: StreamId) {}
    fn on_connect_failed(&mut self, _cx: &mut Cx, _s: StreamId, _e: ConnectError) {}
    fn on_data(&mut self, _cx: &mut Cx, _s: StreamId, _bytes: Vec<u8>) {}
    fn on_eof(&mut self, _cx: &mut Cx, _s: StreamId) {}
    fn on_reset(&mut self, _cx: &mut Cx, _s: StreamId) {}
    fn on_writable(&mut self, _cx: &mut Cx, _s: StreamId) {}
    fn on_timer(&mut self, _cx: &mut Cx) {}
    fn on_disk(&mut self, _cx: &mut Cx, _tag: u64, _reply: FileReply) {}
    fn on_log(&mut self, _cx: &mut Cx, _tag: u64, _reply: LogReply) {}
    /// A graceful shutdown began ([`FaultAction::Drain`]); the node calls
    /// [`Cx::restart_host`] once it is done.
    fn on_drain(&mut self, _cx: &mut Cx) {}
    /// Safety oracles and invariants, after every event this node handled.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    fn as_any(&self) -> &dyn Any;
}

/// Builds the node of a host (at boot and after each crash).
pub type Factory = Box<dyn FnMut(HostId, &Disk) -> Box<dyn Node>>;

#[derive(Debug)]
enum Seg {
    Syn,
    SynAck,
    Data(Vec<u8>),
    Fin,
    Rst,
}

#[derive(Debug)]
enum Ev {
    Start {
        host: HostId,
        epoch: u32,
    },
    /// A segment sent by end `from` of `stream`, arriving at the other end.
    Seg {
        stream: StreamId,
        from: usize,
        seg: Seg,
    },
    /// The head of the segments in flight from end `from` of `stream` (see `Core::in_flight`):
    /// only the queue holds this, and `run_until` turns it into that head's `Seg`.
    SegHead {
        stream: StreamId,
        from: usize,
    },
    ConnectFailed {
        stream: StreamId,
        err: ConnectError,
    },
    Timer {
        host: HostId,
        epoch: u32,
        gen: u64,
    },
    Disk {
        host: HostId,
        epoch: u32,
        tag: u64,
        reply: FileReply,
    },
    Log {
        host: HostId,
        epoch: u32,
        tag: u64,
        /// The answer, or the sync still to carry out when the event comes (a sync takes
        /// effect when it completes, so a crash before then loses what it would have saved).
        reply: Result<LogReply, LogOp>,
    },
    Writable {
        stream: StreamId,
        end: usize,
    },
    Fault(FaultAction),
    Unclog {
        from: HostId,
        to: HostId,
    },
    Resume {
        host: HostId,
    },
    Heal,
}

/// A segment waiting on a partitioned or clogged link: (stream, sending end, segment).
type HeldSeg = (StreamId, usize, Seg);

struct Queued {
    at: Instant,
    seq: u64,
    ev: Ev,
}
/// A segment on its way: when it arrives, its place in the order of events, and itself.
type InFlight = (Instant, u64, Seg);

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct HostState {
    up: bool,
    epoch: u32,
    paused: bool,
    deferred: VecDeque<Ev>,
    clock: Clock,
    rng: fastrand::Rng,
    timer_gen: u64,
    timer_at: Option<Instant>,
    disk: Disk,
}

#[derive(Clone, Debug)]
struct End {
    host: HostId,
    epoch: u32,
    /// The application may use this end (accepted or connecting, not reset or aborted).
    open: bool,
    connected: bool,
    in_flight: usize,
    last_arrival: Instant,
    want_writable: bool,
}

/// Everything but the nodes: what a [`Cx`] gives a node access to.
pub struct Core {
    now: Instant,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    /// Segments in flight, per stream direction, in arrival order, each with its `(at, seq)`.
    /// A direction's segments arrive in the order sent (`send_seg`), so only its head needs a
    /// place in `queue` (an `Ev::SegHead`): a byte-by-byte network once kept 700,000 segments
    /// in the heap, and its pops took half the simulator's time. The order of events is the
    /// same `(at, seq)` order as if every segment were queued.
    in_flight: BTreeMap<(StreamId, usize), VecDeque<InFlight>>,
    net: fastrand::Rng,
    chunks: fastrand::Rng,
    faults: fastrand::Rng,
    disk_rng: fastrand::Rng,
    hosts: Vec<HostState>,
    streams: BTreeMap<StreamId, [End; 2]>,
    /// Set by [`Cx::restart_host`] during a callback.
    restart_requested: bool,
    /// The port each stream was opened to, when not [`DEFAULT_PORT`].
    ports: BTreeMap<StreamId, u16>,
    blocked: BTreeSet<(HostId, HostId)>,
    clogged: BTreeMap<(HostId, HostId), Instant>,
    held: BTreeMap<(HostId, HostId), VecDeque<HeldSeg>>,
    link_extra: BTreeMap<(HostId, HostId), u64>,
    cfg: NetConfig,
    random: RandomFaults,
    faults_on: bool,
    next_stream: StreamId,
    pub coverage: Coverage,
    pub trace: Trace,
    failure: Option<String>,
    seed: u64,
}

/// A node's handle on the world during one callback.
pub struct Cx<'a> {
    core: &'a mut Core,
    host: HostId,
}

impl Cx<'_> {
    /// This host's clocks.
    pub fn now(&self) -> Now {
        self.core.hosts[self.host].clock.now(self.core.now)
    }
    pub fn host(&self) -> HostId {
        self.host
    }
    /// How many hosts the world has.
    pub fn hosts(&self) -> usize {
        self.core.hosts.len()
    }
    /// This host's own seeded RNG.
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.core.hosts[self.host].rng
    }
    /// A seed for a machine's own RNG or BUGGIFY, drawn from this host's RNG.
    pub fn machine_seed(&mut self) -> u64 {
        self.core.hosts[self.host].rng.u64(..)
    }
    /// The run's seed (BUGGIFY activation is per run).
    pub fn run_seed(&self) -> u64 {
        self.core.seed
    }
    pub fn faults(&self) -> &RandomFaults {
        &self.core.random
    }
    /// Whether the fault window is still open.
    pub fn faults_on(&self) -> bool {
        self.core.faults_on
    }
    pub fn cover(&mut self, name: &'static str) {
        self.core.coverage.hit(name);
    }
    /// Records a line in the trace (hashed; kept readable when the tail is kept).
    pub fn trace(&mut self, kind: u8, a: u64, b: u64, line: impl FnOnce() -> String) {
        let t = self.core.now.0;
        let host = self.host;
        self.core
            .trace
            .record(t, kind, a, b, || format!("h{host} {}", line()));
    }
    /// A safety oracle failed: the run stops with this message.
    pub fn fail(&mut self, msg: String) {
        if self.core.failure.is_none() {
            self.core.failure = Some(msg);
        }
    }
    /// Connects to host `to` on [`DEFAULT_PORT`].
    pub fn connect(&mut self, to: HostId) -> StreamId {
        self.core.connect(self.host, to, DEFAULT_PORT)
    }
    /// Connects to `port` of host `to`.
    pub fn connect_port(&mut self, to: HostId, port: u16) -> StreamId {
        self.core.connect(self.host, to, port)
    }
    /// The port that stream `s` was opened to.
    pub fn port(&self, s: StreamId) -> u16 {
        self.core.ports.get(&s).copied().unwrap_or(DEFAULT_PORT)
    }
    /// The host at the other end of `s`.
    pub fn peer(&self, s: StreamId) -> Option<HostId> {
        let (i, ends) = self.core.end_of(s, self.host)?;
        Some(ends[1 - i].host)
    }
    /// Bytes this host may write on `s` now (0 when the stream is not writable).
    pub fn room(&self, s: StreamId) -> usize {
        match self.core.end_of(s, self.host) {
            Some((i, ends)) if ends[i].open && ends[i].connected => {
                self.core.cfg.window.saturating_sub(ends[i].in_flight)
            }
            _ => 0,
        }
    }
    /// Asks for `on_writable` once an acknowledgement frees room on `s`.
    pub fn want_writable(&mut self, s: StreamId) {
        let host = self.host;
        if let Some((i, ends)) = self.core.end_of_mut(s, host) {
            ends[i].want_writable = true;
        }
    }
    /// Sends `bytes` (at most [`Cx::room`]); returns the number of segments they became.
    pub fn write(&mut self, s: StreamId, bytes: &[u8]) -> usize {
        let room = self.room(s);
        if bytes.len() > room {
            self.fail(format!(
                "h{} wrote {} bytes on stream {s} with room for {room}",
                self.host,
                bytes.len()
            ));
            return 0;
        }
        self.core.write(self.host, s, bytes)
    }
    /// Half-closes `s` (FIN after the bytes already written).
    pub fn fin(&mut self, s: StreamId) {
        self.core.send_seg_from_host(self.host, s, Seg::Fin);
    }
    /// Aborts `s`: the peer gets RST; this end is closed at once.
    pub fn reset(&mut self, s: StreamId) {
        let host = self.host;
        if let Some((i, ends)) = self.core.end_of_mut(s, host) {
            if ends[i].open {
                ends[i].open = false;
                self.core.send_seg(s, i, Seg::Rst);
            }
        }
    }
    /// Asks for `on_timer` when this host's monotonic clock reaches `deadline` (`None`: no
    /// timer). The latest call wins.
    pub fn set_timer(&mut self, deadline: Option<Instant>) {
        self.core.set_timer(self.host, deadline);
    }
    /// Starts a disk operation; its reply arrives later through `on_disk` with `tag`.
    pub fn disk(&mut self, tag: u64, op: FileOp) {
        let h = self.host;
        let core = &mut *self.core;
        if let Some(reply) = core.hosts[h].disk.run(&op, &mut core.disk_rng) {
            let lat = Duration::from_micros(core.disk_rng.u64(1..=200));
            let epoch = core.hosts[h].epoch;
            core.at(
                core.now + lat,
                Ev::Disk {
                    host: h,
                    epoch,
                    tag,
                    reply,
                },
            );
        }
    }
    /// Starts a durable-log operation; its reply arrives later through `on_log` with `tag`.
    /// An append or a read changes or reads the disk now (a crash before the reply still finds
    /// an append there, unsynced, as a write the kernel accepted would be); a sync takes effect
    /// only when it completes, just before its reply, so a crash in between loses it.
    pub fn log(&mut self, tag: u64, op: LogOp) {
        let h = self.host;
        let core = &mut *self.core;
        let reply = match op {
            LogOp::Sync { .. } => Err(op),
            op => Ok(core.hosts[h].disk.run_log(&op, &mut core.disk_rng)),
        };
        let lat = Duration::from_micros(core.disk_rng.u64(1..=2_000));
        let epoch = core.hosts[h].epoch;
        core.at(
            core.now + lat,
            Ev::Log {
                host: h,
                epoch,
                tag,
                reply,
            },
        );
    }
    /// This host finished a graceful shutdown: it restarts (new epoch, a new node from the
    /// factory) with its disk as it is, once the current callback returns. Its streams
    /// should all be closed by now; any left are half-open to their peers.
    pub fn restart_host(&mut self) {
        self.core.restart_requested = true;
    }
    /// A disk operation carried out now (a `sendfile` read, say).
    pub fn disk_now(&mut self, op: FileOp) -> Option<FileReply> {
        let h = self.host;
        let core = &mut *self.core;
        core.hosts[h].disk.run(&op, &mut core.disk_rng)
    }
    pub fn disk_state(&mut self) -> &mut Disk {
        &mut self.core.hosts[self.host].disk
    }
}

impl Core {
    fn at(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        }));
    }

    fn hit(&mut self, ppm: u32) -> bool {
        self.faults_on && ppm > 0 && self.faults.u32(..1_000_000) < ppm
    }

    fn latency(&mut self, from: HostId, to: HostId) -> Duration {
        let l = self.cfg.latency.clone();
        let extra = *self
            .link_extra
            .entry((from, to))
            .or_insert_with(|| self.net.u64(..=l.mean_us));
        let mut us = l.min_us + extra + self.net.u64(..=2 * l.mean_us);
        if l.tail_ppm > 0 && self.net.u32(..1_000_000) < l.tail_ppm {
            us <<= self.net.u32(1..=l.tail_doublings.clamp(1, 30));
        }
        Duration::from_micros(us.min(l.max_us.max(l.min_us)))
    }

    fn end_of(&self, s: StreamId, host: HostId) -> Option<(usize, &[End; 2])> {
        let ends = self.streams.get(&s)?;
        let epoch = self.hosts[host].epoch;
        let i = (0..2).find(|&i| ends[i].host == host && ends[i].epoch == epoch)?;
        Some((i, ends))
    }
    fn end_of_mut(&mut self, s: StreamId, host: HostId) -> Option<(usize, &mut [End; 2])> {
        let epoch = self.hosts[host].epoch;
        let ends = self.streams.get_mut(&s)?;
        let i = (0..2).find(|&i| ends[i].host == host && ends[i].epoch == epoch)?;
        Some((i, ends))
    }

    fn connect(&mut self, from: HostId, to: HostId, port: u16) -> StreamId {
        self.next_stream += 1;
        let s = self.next_stream;
        if port != DEFAULT_PORT {
            self.ports.insert(s, port);
        }
        let end = |host, epoch| End {
            host,
            epoch,
            open: true,
            connected: false,
            in_flight: 0,
            last_arrival: self.now,
            want_writable: false,
        };
        let mut acceptor = end(to, self.hosts[to].epoch);
        acceptor.open = false;
        self.streams
            .insert(s, [end(from, self.hosts[from].epoch), acceptor]);
        self.trace.record(self.now.0, 1, s, to as u64, || {
            format!("h{from} connects to h{to} (stream {s})")
        });
        let refuse = self.random.refuse_ppm;
        let hang = self.random.connect_timeout_ppm;
        if self.hit(refuse) {
            self.coverage.hit("net.connect_refused");
            let lat = self.latency(from, to);
            self.at(
                self.now + lat,
                Ev::ConnectFailed {
                    stream: s,
                    err: ConnectError::Refused,
                },
            );
        } else if self.hit(hang) || !self.hosts[to].up || self.blocked.contains(&(from, to)) {
            self.coverage.hit("net.connect_timed_out");
            let t = Duration::from_millis(self.cfg.syn_timeout_ms);
            self.at(
                self.now + t,
                Ev::ConnectFailed {
                    stream: s,
                    err: ConnectError::TimedOut,
                },
            );
        } else {
            self.send_seg(s, 0, Seg::Syn);
        }
        s
    }

    /// Schedules `seg` from end `from` of `s`, in order behind what that end sent before.
    fn send_seg(&mut self, s: StreamId, from: usize, seg: Seg) {
        let Some(ends) = self.streams.get(&s) else {
            return;
        };
        let (src, dst) = (ends[from].host, ends[1 - from].host);
        let lat = self.latency(src, dst);
        let ends = self.streams.get_mut(&s).expect("stream");
        let arrive = (self.now + lat).max(ends[from].last_arrival);
        ends[from].last_arrival = arrive;
        self.seq += 1;
        let fifo = self.in_flight.entry((s, from)).or_default();
        if fifo.is_empty() {
            self.queue.push(Reverse(Queued {
                at: arrive,
                seq: self.seq,
                ev: Ev::SegHead { stream: s, from },
            }));
        }
        fifo.push_back((arrive, self.seq, seg));
    }

    /// Takes the event a popped queue entry stands for: a `SegHead` becomes its direction's
    /// first segment, and the next one, if any, takes its place in the queue.
    fn take_event(&mut self, q: Queued) -> Ev {
        let Ev::SegHead { stream, from } = q.ev else {
            return q.ev;
        };
        let key = (stream, from);
        let fifo = self
            .in_flight
            .get_mut(&key)
            .expect("a queued head has segments");
        let (at, seq, seg) = fifo.pop_front().expect("a queued head has segments");
        debug_assert_eq!((at, seq), (q.at, q.seq));
        match fifo.front() {
            Some(&(at, seq, _)) => self.queue.push(Reverse(Queued {
                at,
                seq,
                ev: Ev::SegHead { stream, from },
            })),
            None => {
                self.in_flight.remove(&key);
            }
        }
        Ev::Seg { stream, from, seg }
    }
    fn send_seg_from_host(&mut self, host: HostId, s: StreamId, seg: Seg) {
        if let Some((i, ends)) = self.end_of(s, host) {
            if ends[i].open {
                self.send_seg(s, i, seg);
            }
        }
    }

    fn write(&mut self, host: HostId, s: StreamId, bytes: &[u8]) -> usize {
        let Some((i, ends)) = self.end_of(s, host) else {
            return 0;
        };
        let dst = ends[1 - i].host;
        let reset = self.random.reset_ppm;
        if self.hit(reset) {
            // A middlebox or the peer's kernel resets the connection: both ends hear RST (the
            // writer too: its end stays open until the RST reaches it, as a socket does
            // until the kernel reports the reset; closing it here once left the writer
            // waiting forever on a stream it was never told had died).
            self.coverage.hit("net.random_reset");
            self.send_seg(s, i, Seg::Rst);
            self.send_seg(s, 1 - i, Seg::Rst);
            return 0;
        }
        let clog = self.random.clog_ppm;
        if self.hit(clog) {
            self.coverage.hit("net.random_clog");
            let ms = self.faults.u64(1..=self.random.clog_ms.max(1));
            let until = self.now + Duration::from_millis(ms);
            self.clogged.insert((host, dst), until);
            self.at(
                until,
                Ev::Unclog {
                    from: host,
                    to: dst,
                },
            );
        }
        if let Some(ends) = self.streams.get_mut(&s) {
            ends[i].in_flight += bytes.len();
        }
        self.trace.record(self.now.0, 2, s, fnv(bytes), || {
            format!("h{host} writes {} bytes on stream {s}", bytes.len())
        });
        let mut rest = bytes;
        let mut segments = 0;
        while !rest.is_empty() {
            let n = self
                .chunks
                .usize(1..=self.cfg.max_chunk.max(1))
                .min(rest.len());
            self.send_seg(s, i, Seg::Data(rest[..n].to_vec()));
            rest = &rest[n..];
            segments += 1;
        }
        segments
    }

    fn set_timer(&mut self, host: HostId, deadline: Option<Instant>) {
        let h = &mut self.hosts[host];
        let at = deadline.map(|d| h.clock.to_sim(d).max(self.now));
        if at == h.timer_at {
            return;
        }
        h.timer_at = at;
        h.timer_gen += 1;
        let (gen, epoch) = (h.timer_gen, h.epoch);
        if let Some(at) = at {
            self.at(at, Ev::Timer { host, epoch, gen });
        }
    }

    fn link_open(&self, from: HostId, to: HostId) -> bool {
        !self.blocked.contains(&(from, to))
            && self.clogged.get(&(from, to)).is_none_or(|&t| t <= self.now)
    }
}

/// The simulator: a [`Core`] and the hosts' nodes.
pub struct Sim {
    core: Core,
    nodes: Vec<Option<Box<dyn Node>>>,
    factory: Factory,
    /// Events handled at the current instant (a spin shows up as thousands of them).
    same_instant: u64,
    /// Events this instant may hold beyond [`SPIN_LIMIT`]: a paused host's backlog, all
    /// delivered at the instant it resumes (a byte-by-byte network under a long pause holds
    /// millions), is work, not spinning.
    spin_allowance: u64,
    idle: usize,
}

/// Most events one instant may hold before the run counts as spinning.
const SPIN_LIMIT: u64 = 1_000_000;

impl Sim {
    /// `hosts` hosts with the given disks; `factory` builds each host's node.
    pub fn new(
        seed: u64,
        cfg: NetConfig,
        random: RandomFaults,
        disks: Vec<Disk>,
        keep: Keep,
        mut factory: Factory,
    ) -> Sim {
        let mut clocks = rng::stream(seed, rng::CLOCKS);
        let hosts: Vec<HostState> = disks
            .into_iter()
            .enumerate()
            .map(|(i, mut disk)| {
                disk.read_error_ppm = random.disk_read_error_ppm;
                disk.write_error_ppm = random.disk_write_error_ppm;
                let drift = random.max_drift_ppm.abs();
                HostState {
                    up: true,
                    epoch: 0,
                    paused: false,
                    deferred: VecDeque::new(),
                    clock: Clock {
                        offset_ns: clocks.u64(..1_000_000_000),
                        drift_ppm: if drift > 0 {
                            clocks.i64(-drift..=drift)
                        } else {
                            0
                        },
                        wall_jump_s: 0,
                    },
                    rng: rng::stream(seed ^ ((i as u64) << 40), rng::NODES),
                    timer_gen: 0,
                    timer_at: None,
                    disk,
                }
            })
            .collect();
        let nodes = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| Some(factory(i, &h.disk)))
            .collect();
        let mut core = Core {
            now: Instant::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            in_flight: BTreeMap::new(),
            net: rng::stream(seed, rng::NET),
            chunks: rng::stream(seed, rng::CHUNKS),
            faults: rng::stream(seed, rng::FAULTS),
            disk_rng: rng::stream(seed, rng::DISK),
            hosts,
            streams: BTreeMap::new(),
            ports: BTreeMap::new(),
            restart_requested: false,
            blocked: BTreeSet::new(),
            clogged: BTreeMap::new(),
            held: BTreeMap::new(),
            link_extra: BTreeMap::new(),
            cfg,
            random,
            faults_on: true,
            next_stream: 0,
            coverage: Coverage::default(),
            trace: Trace::new(keep),
            failure: None,
            seed,
        };
        for h in 0..core.hosts.len() {
            core.at(Instant::ZERO, Ev::Start { host: h, epoch: 0 });
        }
        Sim {
            core,
            nodes,
            factory,
            same_instant: 0,
            spin_allowance: 0,
            idle: 0,
        }
    }

    pub fn now(&self) -> Instant {
        self.core.now
    }
    /// The node of `host`, if it is up (for end-of-run oracles).
    pub fn node(&self, host: HostId) -> Option<&dyn Node> {
        self.nodes[host].as_deref()
    }
    pub fn disk(&self, host: HostId) -> &Disk {
        &self.core.hosts[host].disk
    }
    pub fn host_up(&self, host: HostId) -> bool {
        self.core.hosts[host].up
    }
    pub fn hosts(&self) -> usize {
        self.nodes.len()
    }
    /// Hosts declared idle by the world (the last ones); set with [`Sim::set_idle_hosts`].
    pub fn idle_hosts(&self) -> usize {
        self.idle
    }
    pub fn set_idle_hosts(&mut self, n: usize) {
        self.idle = n;
    }

    /// Schedules a fault.
    pub fn fault_at(&mut self, at: Instant, action: FaultAction) {
        self.core.at(at, Ev::Fault(action));
    }
    /// Schedules a scenario's timeline: its timed faults, then the heal.
    pub fn schedule(&mut self, faults: &[Timed], phases: &Phases) {
        for t in faults {
            self.fault_at(
                Instant::ZERO + Duration::from_millis(t.at_ms),
                t.action.clone(),
            );
        }
        self.heal_at(Instant::ZERO + Duration::from_millis(phases.heal_at_ms));
    }
    /// Schedules the heal (see the module docs).
    pub fn heal_at(&mut self, at: Instant) {
        self.core.at(at, Ev::Heal);
    }

    /// Runs events up to `until`, stopping early once `done` holds (checked after each event).
    /// `Err` is the first failed oracle or engine check.
    pub fn run_until(
        &mut self,
        until: Instant,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Result<(), String> {
        loop {
            if let Some(f) = self.core.failure.take() {
                return Err(f);
            }
            if done(self) {
                return Ok(());
            }
            let Some(Reverse(q)) = self.core.queue.peek() else {
                return Ok(());
            };
            if q.at > until {
                self.core.now = until;
                return Ok(());
            }
            let Some(Reverse(q)) = self.core.queue.pop() else {
                return Ok(());
            };
            if q.at == self.core.now {
                self.same_instant += 1;
                if self.same_instant > SPIN_LIMIT + self.spin_allowance {
                    return Err(format!(
                        "more than {SPIN_LIMIT} events at {:?}: a busy loop",
                        self.core.now
                    ));
                }
            } else {
                self.same_instant = 0;
                self.spin_allowance = 0;
            }
            self.core.now = q.at;
            let ev = self.core.take_event(q);
            self.step(ev);
        }
    }

    fn call(&mut self, host: HostId, f: impl FnOnce(&mut dyn Node, &mut Cx)) {
        let Some(mut node) = self.nodes[host].take() else {
            return;
        };
        let mut cx = Cx {
            core: &mut self.core,
            host,
        };
        f(node.as_mut(), &mut cx);
        if let Err(e) = node.check() {
            cx.fail(format!("h{host}: {e}"));
        }
        self.nodes[host] = Some(node);
        if std::mem::take(&mut self.core.restart_requested) {
            self.core.coverage.hit("node.graceful_restart");
            let h = &mut self.core.hosts[host];
            h.paused = false;
            h.deferred.clear();
            h.epoch += 1;
            h.timer_at = None;
            h.timer_gen += 1;
            h.up = false;
            h.disk.close_all();
            self.restart(host);
        }
    }

    /// The host an event is for, if it is one a paused host must not see yet.
    fn target(&self, ev: &Ev) -> Option<HostId> {
        match ev {
            Ev::Start { host, .. }
            | Ev::Timer { host, .. }
            | Ev::Disk { host, .. }
            | Ev::Log { host, .. }
            | Ev::Resume { host } => Some(*host),
            Ev::Seg { stream, from, .. } => self.core.streams.get(stream).map(|e| e[1 - from].host),
            Ev::ConnectFailed { stream, .. } => self.core.streams.get(stream).map(|e| e[0].host),
            Ev::Writable { stream, end } => self.core.streams.get(stream).map(|e| e[*end].host),
            Ev::Fault(_) | Ev::Unclog { .. } | Ev::Heal | Ev::SegHead { .. } => None,
        }
    }

    fn step(&mut self, ev: Ev) {
        if let Some(h) = self.target(&ev) {
            if self.core.hosts[h].paused && !matches!(ev, Ev::Resume { .. }) {
                self.core.hosts[h].deferred.push_back(ev);
                return;
            }
        }
        let now = self.core.now.0;
        match ev {
            Ev::Start { host, epoch } => {
                if self.core.hosts[host].epoch == epoch && self.core.hosts[host].up {
                    self.core
                        .trace
                        .record(now, 10, host as u64, epoch as u64, || {
                            format!("h{host} starts (epoch {epoch})")
                        });
                    self.call(host, |n, cx| n.start(cx));
                }
            }
            Ev::Seg { stream, from, seg } => self.deliver(stream, from, seg),
            // `run_until` hands `step` the segment a head stands for, never the head.
            Ev::SegHead { .. } => debug_assert!(false, "a segment head reached step"),
            Ev::ConnectFailed { stream, err } => {
                let Some(ends) = self.core.streams.get_mut(&stream) else {
                    return;
                };
                let host = ends[0].host;
                if ends[0].epoch != self.core.hosts[host].epoch || !ends[0].open {
                    return;
                }
                ends[0].open = false;
                self.core.trace.record(now, 3, stream, 0, || {
                    format!("h{host} connect on stream {stream} failed: {err:?}")
                });
                self.call(host, |n, cx| n.on_connect_failed(cx, stream, err));
            }
            Ev::Timer { host, epoch, gen } => {
                let h = &mut self.core.hosts[host];
                if h.epoch != epoch {
                    self.core.coverage.hit("node.stale_timer_ignored");
                    return;
                }
                if h.timer_gen != gen || !h.up {
                    return;
                }
                h.timer_at = None;
                self.core
                    .trace
                    .record(now, 4, host as u64, 0, || format!("h{host} timer"));
                self.call(host, |n, cx| n.on_timer(cx));
            }
            Ev::Disk {
                host,
                epoch,
                tag,
                reply,
            } => {
                if self.core.hosts[host].epoch != epoch {
                    return;
                }
                self.core.trace.record(now, 5, host as u64, tag, || {
                    format!("h{host} disk reply {tag}")
                });
                self.call(host, |n, cx| n.on_disk(cx, tag, reply));
            }
            Ev::Log {
                host,
                epoch,
                tag,
                reply,
            } => {
                if self.core.hosts[host].epoch != epoch {
                    return;
                }
                self.core.trace.record(now, 15, host as u64, tag, || {
                    format!("h{host} log reply {tag}")
                });
                let reply = reply.unwrap_or_else(|sync| {
                    let core = &mut self.core;
                    core.hosts[host].disk.run_log(&sync, &mut core.disk_rng)
                });
                self.call(host, |n, cx| n.on_log(cx, tag, reply));
            }
            Ev::Writable { stream, end } => {
                let Some(ends) = self.core.streams.get(&stream) else {
                    return;
                };
                let host = ends[end].host;
                if ends[end].epoch != self.core.hosts[host].epoch || !ends[end].open {
                    return;
                }
                self.call(host, |n, cx| n.on_writable(cx, stream));
            }
            Ev::Fault(action) => self.fault(action),
            Ev::Unclog { from, to } => {
                if self
                    .core
                    .clogged
                    .get(&(from, to))
                    .is_some_and(|&t| t <= self.core.now)
                {
                    self.core.clogged.remove(&(from, to));
                    self.release(from, to);
                }
            }
            Ev::Resume { host } => {
                let h = &mut self.core.hosts[host];
                if !h.paused {
                    return;
                }
                h.paused = false;
                let deferred: Vec<Ev> = h.deferred.drain(..).collect();
                if !deferred.is_empty() {
                    self.core.coverage.hit("node.resumed_with_backlog");
                }
                self.core
                    .trace
                    .record(now, 11, host as u64, deferred.len() as u64, || {
                        format!("h{host} resumes with {} events waiting", deferred.len())
                    });
                self.spin_allowance += deferred.len() as u64;
                for ev in deferred {
                    self.core.at(self.core.now, ev);
                }
            }
            Ev::Heal => self.heal(),
        }
    }

    fn deliver(&mut self, stream: StreamId, from: usize, seg: Seg) {
        let core = &mut self.core;
        let Some(ends) = core.streams.get(&stream) else {
            return;
        };
        let to = 1 - from;
        let (src, dst) = (ends[from].host, ends[to].host);
        let link_busy = core.held.get(&(src, dst)).is_some_and(|q| !q.is_empty());
        if !core.link_open(src, dst) || link_busy {
            core.coverage.hit("net.segment_held");
            core.held
                .entry((src, dst))
                .or_default()
                .push_back((stream, from, seg));
            return;
        }
        let now = core.now.0;
        let host = &core.hosts[dst];
        if !host.up {
            // Half-open: the peer is gone and says nothing.
            core.coverage.hit("net.segment_to_crashed_host");
            return;
        }
        let is_syn = matches!(seg, Seg::Syn);
        let stale = !is_syn && ends[to].epoch != host.epoch;
        if stale || (!is_syn && !ends[to].open) {
            // The end is gone (restarted host, or closed by its application): RST the sender.
            if !matches!(seg, Seg::Rst) && ends[from].open {
                if stale {
                    core.coverage.hit("net.rst_after_restart");
                }
                core.send_seg(stream, to, Seg::Rst);
            }
            return;
        }
        match seg {
            Seg::Syn => {
                let port = self
                    .core
                    .ports
                    .get(&stream)
                    .copied()
                    .unwrap_or(DEFAULT_PORT);
                let accepts = self.nodes[dst].as_ref().is_some_and(|n| n.accepts_on(port));
                let ends = self.core.streams.get_mut(&stream).expect("stream");
                ends[to].epoch = self.core.hosts[dst].epoch;
                if !accepts {
                    self.core.send_seg(stream, to, Seg::Rst);
                    return;
                }
                ends[to].open = true;
                ends[to].connected = true;
                ends[to].last_arrival = self.core.now;
                self.core.trace.record(now, 6, stream, dst as u64, || {
                    format!("h{dst} accepts stream {stream} from h{src}")
                });
                self.core.send_seg(stream, to, Seg::SynAck);
                self.call(dst, |n, cx| n.on_accept(cx, stream));
            }
            Seg::SynAck => {
                self.core.streams.get_mut(&stream).expect("stream")[to].connected = true;
                self.core.trace.record(now, 7, stream, 0, || {
                    format!("h{dst} connected on stream {stream}")
                });
                self.call(dst, |n, cx| n.on_connected(cx, stream));
            }
            Seg::Data(bytes) => {
                let ends = self.core.streams.get_mut(&stream).expect("stream");
                ends[from].in_flight -= bytes.len();
                if std::mem::take(&mut ends[from].want_writable) && ends[from].open {
                    // The acknowledgement travels back before the sender hears of the room.
                    let lat = self.core.latency(dst, src);
                    self.core
                        .at(self.core.now + lat, Ev::Writable { stream, end: from });
                }
                self.core.trace.record(now, 8, stream, fnv(&bytes), || {
                    format!("h{dst} reads {} bytes on stream {stream}", bytes.len())
                });
                self.call(dst, |n, cx| n.on_data(cx, stream, bytes));
            }
            Seg::Fin => {
                self.core.trace.record(now, 9, stream, 0, || {
                    format!("h{dst} gets FIN on stream {stream}")
                });
                self.call(dst, |n, cx| n.on_eof(cx, stream));
            }
            Seg::Rst => {
                let ends = self.core.streams.get_mut(&stream).expect("stream");
                let was_connected = ends[to].connected;
                ends[to].open = false;
                self.core.trace.record(now, 12, stream, 0, || {
                    format!("h{dst} gets RST on stream {stream}")
                });
                if was_connected {
                    self.call(dst, |n, cx| n.on_reset(cx, stream));
                } else {
                    self.call(dst, |n, cx| {
                        n.on_connect_failed(cx, stream, ConnectError::Refused)
                    });
                }
            }
        }
    }

    fn fault(&mut self, action: FaultAction) {
        let now = self.core.now.0;
        let line = format!("fault {action:?}");
        self.core
            .trace
            .record(now, 13, fnv(line.as_bytes()), 0, || line);
        let n = self.nodes.len();
        let valid = |h: &HostId| *h < n;
        match action {
            FaultAction::Partition { from, to, one_way } => {
                for &a in from.iter().filter(|h| valid(h)) {
                    for &b in to.iter().filter(|h| valid(h)) {
                        if a != b {
                            self.core.blocked.insert((a, b));
                            if !one_way {
                                self.core.blocked.insert((b, a));
                            }
                        }
                    }
                }
            }
            FaultAction::Isolate { host } if valid(&host) => {
                for other in (0..n).filter(|&o| o != host) {
                    self.core.blocked.insert((host, other));
                    self.core.blocked.insert((other, host));
                }
            }
            FaultAction::Clog { from, to, ms } if valid(&from) && valid(&to) => {
                let until = self.core.now + Duration::from_millis(ms);
                self.core.clogged.insert((from, to), until);
                self.core.at(until, Ev::Unclog { from, to });
            }
            FaultAction::Crash { host } if valid(&host) && self.core.hosts[host].up => {
                self.crash(host)
            }
            FaultAction::Restart { host } if valid(&host) && !self.core.hosts[host].up => {
                self.restart(host)
            }
            FaultAction::Pause { host, ms } if valid(&host) && !self.core.hosts[host].paused => {
                self.core.hosts[host].paused = true;
                let at = self.core.now + Duration::from_millis(ms);
                self.core.at(at, Ev::Resume { host });
            }
            FaultAction::ClockJump { host, by_s } if valid(&host) => {
                self.core.coverage.hit("clock.jump");
                self.core.hosts[host].clock.wall_jump_s += by_s;
            }
            FaultAction::ResetAll { host } if valid(&host) => {
                let epoch = self.core.hosts[host].epoch;
                let mine: Vec<(StreamId, usize)> = self
                    .core
                    .streams
                    .iter()
                    .flat_map(|(&s, ends)| {
                        (0..2)
                            .filter(move |&i| {
                                ends[i].host == host && ends[i].epoch == epoch && ends[i].open
                            })
                            .map(move |i| (s, i))
                    })
                    .collect();
                for (s, i) in mine {
                    self.core.send_seg(s, i, Seg::Rst);
                    self.core.send_seg(s, 1 - i, Seg::Rst);
                }
            }
            FaultAction::Drain { host }
                if valid(&host) && self.core.hosts[host].up && !self.core.hosts[host].paused =>
            {
                self.core.coverage.hit("node.drain");
                self.call(host, |n, cx| n.on_drain(cx));
            }
            _ => {}
        }
    }

    /// Delivers the segments held on a link, in order, now: a burst as TCP retransmits after
    /// the path opens. (Delivering them now, not re-sending them, keeps them ahead of later
    /// segments of the same streams that are still in flight.)
    fn release(&mut self, from: HostId, to: HostId) {
        if !self.core.link_open(from, to) {
            return;
        }
        if let Some(q) = self.core.held.remove(&(from, to)) {
            self.core.coverage.hit("net.held_segments_released");
            for (s, end, seg) in q {
                self.deliver(s, end, seg);
            }
        }
    }

    fn crash(&mut self, host: HostId) {
        let core = &mut self.core;
        let writing = core.streams.values().any(|ends| {
            ends.iter()
                .any(|e| e.host == host && e.epoch == core.hosts[host].epoch && e.in_flight > 0)
        });
        let h = &mut core.hosts[host];
        let lost_writes = h.disk.crash(&mut core.disk_rng);
        if writing || lost_writes {
            core.coverage.hit("node.crash_during_write");
        }
        core.coverage.hit("node.crash");
        h.up = false;
        h.paused = false;
        h.deferred.clear();
        h.epoch += 1;
        h.timer_at = None;
        h.timer_gen += 1;
        self.nodes[host] = None;
    }

    fn restart(&mut self, host: HostId) {
        let core = &mut self.core;
        let h = &mut core.hosts[host];
        h.up = true;
        h.rng = rng::stream(
            core.seed ^ ((host as u64) << 40) ^ h.epoch as u64,
            rng::NODES,
        );
        let epoch = h.epoch;
        self.nodes[host] = Some((self.factory)(host, &core.hosts[host].disk));
        core.coverage.hit("node.restart");
        core.at(core.now, Ev::Start { host, epoch });
    }

    fn heal(&mut self) {
        let now = self.core.now.0;
        self.core.trace.record(now, 14, 0, 0, || "heal".into());
        self.core.faults_on = false;
        self.core.blocked.clear();
        self.core.clogged.clear();
        for h in self.core.hosts.iter_mut() {
            h.disk.read_error_ppm = 0;
            h.disk.write_error_ppm = 0;
        }
        let links: Vec<(HostId, HostId)> = self.core.held.keys().copied().collect();
        for (a, b) in links {
            self.release(a, b);
        }
        for host in 0..self.nodes.len() {
            if !self.core.hosts[host].up {
                self.restart(host);
            }
            if self.core.hosts[host].paused {
                self.core.at(self.core.now, Ev::Resume { host });
            }
        }
    }

    /// How many streams still have an open end (for quiescence checks).
    pub fn open_streams(&self) -> usize {
        self.core
            .streams
            .values()
            .filter(|ends| {
                ends.iter()
                    .any(|e| e.open && e.epoch == self.core.hosts[e.host].epoch)
            })
            .count()
    }
    pub fn coverage(&self) -> &Coverage {
        &self.core.coverage
    }
    pub fn trace(&self) -> &Trace {
        &self.core.trace
    }
    /// Events still queued.
    pub fn pending(&self) -> usize {
        let segs: usize = self.core.in_flight.values().map(VecDeque::len).sum();
        self.core.queue.len() - self.core.in_flight.len() + segs
    }
}
