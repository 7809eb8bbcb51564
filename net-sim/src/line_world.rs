//! The line world: the node contract's demonstration node (`weaprous_core::node::lines`) on a
//! [`MachineHost`], and clients that log, publish, subscribe, set timers and hash through it,
//! under swarm-chosen faults. It is what a world on the generic host takes: a topology, a
//! workload, faults and oracles, and no driver loop of its own.
//!
//! # Oracles
//! * **Answers** (after every event): each request line gets the answer of its kind, in order
//!   on its connection (`LOG` → `LOGGED n` or `LOGFAIL`, `PUB` → `PUBLISHED n`, `HASH x` →
//!   the hash of `x`, `AFTER ms` → `TICK` no sooner than `ms` after it was sent, allowing for
//!   clock drift).
//! * **Order** (after every event): a subscriber sees each publisher's messages in the order
//!   they were published, never one twice.
//! * **Durability** (at the end): every record answered `LOGGED` is in the node's log as a
//!   whole line, whatever crashed in between.
//! * **Liveness** (after the heal): every client's probe, an append on a fresh connection,
//!   is answered `LOGGED` within the bound.

use crate::disk::Disk;
use crate::engine::{host_addr, Node, Sim, StreamId};
use crate::host::{MachineHost, Unobserved};
use crate::rng;
use crate::scenario::{FaultAction, HostId, NetConfig, Phases, RandomFaults, Timed};
use crate::stream_client::{Ended, Io, Script, StreamClient};
use crate::trace::Keep;
use crate::world::{self, fault_hosts, FaultsMut, World};
use std::collections::{BTreeMap, VecDeque};
use weaprous_core::node::lines::{self, LineNode};
use weaprous_core::node::machine::NodeMachine;
use weaprous_core::time::{Duration, Instant};

const NODE: HostId = 0;

/// The "sometimes" counters a sweep of this world must reach.
pub const LINE_COVERAGE: &[&str] = &[
    "line.append_answered",
    "line.append_failed",
    "line.msg_in_order",
    "line.timer_fired",
    "line.answer_overdue",
    "host.message_to_node",
    "host.message_to_conn",
    "host.job_done",
    "host.node_timer",
    "host.drain",
    "host.drained",
    "node.graceful_restart",
    "node.crash",
    "node.crash_during_write",
];
const PORTS: [u16; 2] = [7000, 7001];
/// How long a client waits for an answer before it gives the connection up (as any real
/// client does: a node that crashed after reading a request never answers, and with nothing
/// more to send the client would never hear a reset). Longer than the longest `AFTER`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A line-world run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineScenario {
    pub seed: u64,
    pub clients: usize,
    pub net: NetConfig,
    pub random: RandomFaults,
    pub faults: Vec<Timed>,
    pub phases: Phases,
}

impl LineScenario {
    /// Swarm testing: the seed picks the fault families and a timeline in the first 30 s.
    pub fn generate(seed: u64) -> Self {
        let mut r = rng::stream(seed, rng::PLAN);
        let clients = 6;
        let heal_at_ms = 30_000;
        let random = RandomFaults::swarm(&mut r, 3_000);
        let mut faults = Vec::new();
        let n = if r.bool() { r.usize(1..=6) } else { 0 };
        for _ in 0..n {
            let at_ms = r.u64(0..heal_at_ms);
            let action = match r.u8(..5) {
                0 => FaultAction::Crash { host: NODE },
                1 => FaultAction::Restart { host: NODE },
                2 => FaultAction::Drain { host: NODE },
                3 => FaultAction::Pause {
                    host: r.usize(..=clients),
                    ms: r.u64(100..=5_000),
                },
                _ => FaultAction::ResetAll { host: NODE },
            };
            faults.push(Timed { at_ms, action });
        }
        faults.sort_by_key(|t| t.at_ms);
        let mut net = NetConfig::default();
        if r.bool() {
            net.max_chunk = [1, 7, 100][r.usize(..3)];
        }
        LineScenario {
            seed,
            clients,
            net,
            random,
            faults,
            phases: Phases {
                heal_at_ms,
                converge_within_ms: 120_000,
            },
        }
    }
}

/// What one connection of a client does: lines sent in lockstep, one per answer.
#[derive(Clone, Debug)]
struct Plan {
    port: u16,
    open_at: Duration,
    lines: Vec<String>,
    subscribe: bool,
    probe: bool,
}

/// One open connection of a client.
#[derive(Default, Debug)]
struct Conn {
    plan: usize,
    buf: Vec<u8>,
    /// Lines still to send, and the one awaiting its answer (with when it was sent).
    todo: VecDeque<String>,
    waiting: Option<(String, Instant)>,
    /// When the connection was opened, until its greeting arrives (a connection accepted by
    /// a node that then crashed never greets).
    greet_from: Option<Instant>,
}

impl Conn {
    /// Since when the connection waits for a line from the node (an answer or the greeting).
    fn waiting_since(&self) -> Option<Instant> {
        self.waiting
            .as_ref()
            .map(|(_, sent)| *sent)
            .or(self.greet_from)
    }
}

/// A client host: [`LineScript`] on the shared streaming client.
pub type LineClient = StreamClient<LineScript>;

/// What a line-world client does and checks (see the module docs' oracles).
pub struct LineScript {
    host: HostId,
    plans: Vec<Plan>,
    opened: usize,
    conns: BTreeMap<StreamId, Conn>,
    /// Records answered `LOGGED`.
    pub acked: Vec<String>,
    /// Per subscriber connection and publisher, the last sequence seen.
    seen: BTreeMap<(StreamId, String), u64>,
    pub probe_done: bool,
    probe_at: Option<Instant>,
    /// Lines answered as they must be.
    pub answered: usize,
}

impl LineScript {
    fn new(sc: &LineScenario, host: HostId) -> Self {
        let mut r = rng::stream(sc.seed ^ ((host as u64) << 32), rng::WORKLOAD);
        let mut plans = Vec::new();
        for c in 0..4 {
            let port = PORTS[r.usize(..2)];
            let open_at = Duration::from_millis(r.u64(0..20_000));
            let n = r.usize(5..=30);
            let (lines, subscribe) = match r.u8(..4) {
                0 => (
                    (0..n).map(|i| format!("LOG h{host}c{c}r{i}")).collect(),
                    false,
                ),
                1 => (
                    (0..n).map(|i| format!("PUB h{host}c{c} {i}")).collect(),
                    false,
                ),
                2 => (
                    (0..n)
                        .map(|i| {
                            if i % 2 == 0 {
                                format!("AFTER {}", r.u64(0..2_000))
                            } else {
                                format!("HASH h{host}c{c}x{i}")
                            }
                        })
                        .collect(),
                    false,
                ),
                _ => (Vec::new(), true),
            };
            plans.push(Plan {
                port,
                open_at,
                lines,
                subscribe,
                probe: false,
            });
        }
        LineScript {
            host,
            plans,
            opened: 0,
            conns: BTreeMap::new(),
            acked: Vec::new(),
            seen: BTreeMap::new(),
            probe_done: false,
            // At the heal: one more connection that must get an append through.
            probe_at: Some(Instant::ZERO + Duration::from_millis(sc.phases.heal_at_ms)),
            answered: 0,
        }
    }

    fn arm(&self, io: &mut Io) {
        let next = self
            .plans
            .get(self.opened)
            .map(|p| Instant::ZERO + p.open_at);
        let probe = if self.probe_done { None } else { self.probe_at };
        let answer = self
            .conns
            .values()
            .filter_map(Conn::waiting_since)
            .map(|since| since + ANSWER_TIMEOUT)
            .min();
        if let Some(at) = [next, probe, answer].into_iter().flatten().min() {
            io.wake_at(at);
        }
    }

    /// Gives up the connections whose answer is overdue (a probe tries again).
    fn give_up_overdue(&mut self, io: &mut Io) {
        let now = io.now();
        let overdue: Vec<StreamId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.waiting_since().is_some_and(|t| now >= t + ANSWER_TIMEOUT))
            .map(|(&s, _)| s)
            .collect();
        for s in overdue {
            io.cover("line.answer_overdue");
            io.close(s);
            self.ended(io, s, Ended::Closed);
        }
    }

    fn open(&mut self, io: &mut Io, plan: usize) {
        let p = &self.plans[plan];
        let s = io.connect(NODE, p.port);
        let mut todo: VecDeque<String> = p.lines.iter().cloned().collect();
        if p.subscribe {
            todo.push_front("SUB".into());
        }
        self.conns.insert(
            s,
            Conn {
                plan,
                todo,
                greet_from: Some(io.now()),
                ..Conn::default()
            },
        );
    }

    /// Sends the connection's next line, if it has one.
    fn next(io: &mut Io, s: StreamId, c: &mut Conn, now: Instant) {
        if let Some(l) = c.todo.pop_front() {
            io.send(s, format!("{l}\n").as_bytes());
            c.waiting = Some((l, now));
        }
    }

    /// Checks one received line against what its connection waits for.
    fn answer(&mut self, io: &mut Io, s: StreamId, line: String) -> Result<(), String> {
        let now = io.now();
        if let Some(rest) = line.strip_prefix("MSG ") {
            let (publisher, seq) = rest.rsplit_once(' ').ok_or("a MSG without a sequence")?;
            let seq: u64 = seq.parse().map_err(|_| format!("bad MSG {line}"))?;
            let key = (s, publisher.to_string());
            if let Some(&last) = self.seen.get(&key) {
                if seq <= last {
                    return Err(format!("stream {s}: {line} after {publisher} {last}"));
                }
            }
            self.seen.insert(key, seq);
            io.cover("line.msg_in_order");
            return Ok(());
        }
        let Some(c) = self.conns.get_mut(&s) else {
            return Ok(());
        };
        if line.starts_with("HELLO") {
            c.greet_from = None;
            Self::next(io, s, c, now);
            return Ok(());
        }
        let Some((asked, sent)) = c.waiting.take() else {
            return Err(format!("stream {s}: {line:?} answers nothing"));
        };
        let (word, arg) = asked.split_once(' ').unwrap_or((&asked, ""));
        let ok = match word {
            "SUB" => line == "SUBSCRIBED",
            "LOG" if line == "LOGFAIL" => {
                io.cover("line.append_failed");
                if self.plans[c.plan].probe {
                    // The probe may start before the heal (clocks differ): it tries again.
                    c.todo.push_front(asked.clone());
                }
                true
            }
            "LOG" => {
                let good = line.starts_with("LOGGED ");
                if good {
                    io.cover("line.append_answered");
                    self.acked.push(arg.to_string());
                    if self.plans[c.plan].probe {
                        self.probe_done = true;
                    }
                }
                good
            }
            "PUB" => line.starts_with("PUBLISHED "),
            "HASH" => line == format!("HASHED {:016x}", LineNode::run_job(arg.to_string())),
            "AFTER" => {
                let ms: u64 = arg.parse().unwrap_or(0);
                // The node's clock and ours may drift apart by 0.1% at most.
                let least = Duration::from_micros(ms * 1000 * 998 / 1000);
                let good = line == "TICK" && now.since(sent) >= least;
                if good {
                    io.cover("line.timer_fired");
                }
                good
            }
            _ => false,
        };
        if !ok {
            return Err(format!("stream {s}: {asked:?} answered {line:?}"));
        }
        self.answered += 1;
        Self::next(io, s, c, now);
        Ok(())
    }
}

impl Script for LineScript {
    fn wake(&mut self, io: &mut Io) {
        self.give_up_overdue(io);
        let now = io.now();
        while self.opened < self.plans.len()
            && Instant::ZERO + self.plans[self.opened].open_at <= now
        {
            self.opened += 1;
            self.open(io, self.opened - 1);
        }
        if self.probe_at.is_some_and(|at| at <= now) && !self.probe_done {
            self.probe_at = None;
            let host = self.host;
            self.plans.push(Plan {
                port: PORTS[0],
                open_at: Duration::ZERO,
                lines: vec![format!("LOG probe-h{host}")],
                subscribe: false,
                probe: true,
            });
            self.opened = self.plans.len();
            self.open(io, self.plans.len() - 1);
        }
        self.arm(io);
    }

    fn received(&mut self, io: &mut Io, s: StreamId, bytes: &[u8]) -> Result<(), String> {
        let lines: Vec<String> = {
            let Some(c) = self.conns.get_mut(&s) else {
                return Ok(());
            };
            c.buf.extend_from_slice(bytes);
            let mut out = Vec::new();
            while let Some(end) = c.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = c.buf.drain(..=end).collect();
                out.push(String::from_utf8_lossy(&line[..end]).to_string());
            }
            out
        };
        for l in lines {
            io.trace(s, l.len() as u64, || format!("stream {s} got {l:?}"));
            self.answer(io, s, l)?;
        }
        self.arm(io);
        Ok(())
    }

    /// A connection ended: a probe that did not get through tries again a second later.
    fn ended(&mut self, io: &mut Io, s: StreamId, _how: Ended) {
        if let Some(c) = self.conns.remove(&s) {
            if self.plans[c.plan].probe && !self.probe_done {
                io.cover("line.probe_retried");
                self.probe_at = Some(io.now() + Duration::from_secs(1));
                self.arm(io);
            }
        }
    }

    fn describe(&self) -> String {
        let conns: Vec<String> = self
            .conns
            .iter()
            .map(|(s, c)| {
                format!(
                    "stream {s} plan {} probe {} waiting {:?} todo {}",
                    c.plan,
                    self.plans[c.plan].probe,
                    c.waiting,
                    c.todo.len(),
                )
            })
            .collect();
        format!(
            "h{}: probe_at {:?}, opened {}/{}, {}",
            self.host,
            self.probe_at,
            self.opened,
            self.plans.len(),
            conns.join(", ")
        )
    }
}

fn build(sc: &LineScenario, keep: Keep) -> Sim {
    let sc2 = sc.clone();
    let factory = Box::new(move |host: HostId, _disk: &Disk| -> Box<dyn Node> {
        if host == NODE {
            let addrs = PORTS.iter().map(|&p| host_addr(NODE, p)).collect();
            let node = LineNode::new(addrs, sc2.seed);
            Box::new(MachineHost::new(node, sc2.seed, Box::new(Unobserved)))
        } else {
            Box::new(LineClient::new(LineScript::new(&sc2, host)))
        }
    });
    let disks = (0..=sc.clients).map(|_| Disk::default()).collect();
    let mut sim = Sim::new(
        sc.seed,
        sc.net.clone(),
        sc.random.clone(),
        disks,
        keep,
        factory,
    );
    sim.schedule(&sc.faults, &sc.phases);
    sim
}

fn client(sim: &Sim, h: HostId) -> Option<&LineScript> {
    sim.node(h)
        .and_then(|n| n.as_any().downcast_ref::<LineClient>())
        .map(LineClient::script)
}

/// The line world, for the shared harness ([`crate::world`]).
pub struct LineWorld;

impl World for LineWorld {
    type Scenario = LineScenario;
    type State = ();
    const NAME: &'static str = "line";
    const COVERAGE: &'static [&'static str] = LINE_COVERAGE;

    fn seed(sc: &LineScenario) -> u64 {
        sc.seed
    }
    fn faults_mut(sc: &mut LineScenario) -> FaultsMut<'_> {
        FaultsMut {
            net: &mut sc.net,
            random: &mut sc.random,
            faults: &mut sc.faults,
            phases: &mut sc.phases,
        }
    }
    fn build(sc: &LineScenario, keep: Keep) -> (Sim, ()) {
        (build(sc, keep), ())
    }
    /// Every client's probe was answered (subscribers stay connected: long-lived streams).
    fn settled(sim: &Sim, _: &()) -> bool {
        clients(sim).all(|c| c.is_some_and(|c| c.probe_done))
    }
    fn unsettled(sc: &LineScenario, sim: &Sim, _: &()) -> String {
        let stuck: Vec<HostId> = (1..=sc.clients)
            .filter(|&h| !client(sim, h).is_some_and(|c| c.probe_done))
            .collect();
        let detail: Vec<String> = stuck
            .iter()
            .filter_map(|&h| client(sim, h))
            .map(Script::describe)
            .collect();
        format!(
            "liveness: the probes of clients {stuck:?} not answered {} ms after the heal: {}",
            sc.phases.converge_within_ms,
            detail.join("; ")
        )
    }
    fn check_end(_: &LineScenario, sim: &Sim, _: &()) -> Result<(), String> {
        let log = String::from_utf8_lossy(sim.disk(NODE).read_log(lines::LOG)).to_string();
        let whole = log.rfind('\n').map_or("", |end| &log[..end]);
        let on_disk: std::collections::BTreeSet<&str> = whole.lines().collect();
        for c in clients(sim).flatten() {
            if let Some(rec) = c.acked.iter().find(|r| !on_disk.contains(r.as_str())) {
                return Err(format!(
                    "durability: {rec:?} was answered LOGGED but is not in the log"
                ));
            }
        }
        Ok(())
    }
    fn answered(sim: &Sim) -> usize {
        clients(sim).flatten().map(|c| c.answered).sum()
    }
    fn smaller(sc: &LineScenario) -> Vec<LineScenario> {
        (1..sc.clients)
            .rev()
            .take(1)
            .chain([1])
            .filter(|&n| n < sc.clients)
            .map(|clients| {
                let mut c = sc.clone();
                c.clients = clients;
                c.faults
                    .retain(|t| fault_hosts(&t.action).iter().all(|&h| h <= clients));
                c
            })
            .collect()
    }
}

fn clients(sim: &Sim) -> impl Iterator<Item = Option<&LineScript>> + '_ {
    (1..sim.hosts()).map(|h| client(sim, h))
}

/// Runs `sc` with every oracle; `Ok` carries the coverage.
pub fn run(sc: &LineScenario, keep: Keep) -> Result<crate::coverage::Coverage, String> {
    world::run::<LineWorld>(sc, keep)
        .map(|s| s.coverage)
        .map_err(|f| format!("seed {}: {}", f.seed, f.message))
}
