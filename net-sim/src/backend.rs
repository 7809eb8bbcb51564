//! The backend world: the real backend machine ([`BackendConn`], one per connection, driven as
//! `net-real` drives it) on host 0, and simulated HTTP clients on hosts 1..=N, under every fault
//! of [`crate::engine`].
//!
//! The clients' requests are [`crate::workload`]'s: GET and HEAD of the site, and, as the
//! scenario's [`Mix`] says, bodies, `Expect`, every method, respelled targets, symbolic links
//! and broken framing.
//!
//! # Oracles
//! * **Safety, after every event**: every completed response is exactly what the request must
//!   get ([`crate::workload::backend_expect`]: the file or range, or the exact status) for the
//!   request it answers, in order on its connection, one per request, with the close where
//!   the answer must be the connection's last ([`crate::client`]); a `500` is allowed only as
//!   the answer to a disk read error, and a read
//!   error after the head must abort the connection, so a truncated body is never complete;
//!   each machine's `check_invariants` holds; a deadline is never still due after its timeout.
//! * **Liveness, after the heal**: within `converge_within_ms` every client has finished its
//!   plans and its probe (a connection opened after the heal), so a stalled, slow or crashed
//!   client never stopped the others and the server came back.
//! * **Quiescence**: at the end, no 500 more than disk read errors injected, and no file handle
//!   left open once the server has closed every connection.

use crate::client::{ClientHost, ClientReq, ConnPlan, Expect};
use crate::coverage::Coverage;
use crate::disk::Disk;
use crate::engine::{host_addr, Cx, Node, Sim, StreamId, DEFAULT_PORT};
use crate::host::{MachineHost, Observer};
use crate::rng;
use crate::scenario::{FaultAction, HostId, Latency, NetConfig, Phases, RandomFaults, Timed};
use crate::trace::Keep;
use crate::workload::{self, Mix};
use crate::world::{self, fault_hosts, FaultsMut, World};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use weaprous_core::backend::node::BackendNode;
use weaprous_core::backend::{BackendConfig, BackendConn};
use weaprous_core::http::Method;
use weaprous_core::node::AccessLog;
use weaprous_core::time::{Duration, Instant};

const SERVER: HostId = 0;

/// The "sometimes" counters a backend sweep must reach at least once.
pub const BACKEND_COVERAGE: &[&str] = &[
    "net.random_reset",
    "net.connect_refused",
    "net.connect_timed_out",
    "net.segment_held",
    "net.segment_to_crashed_host",
    "node.crash",
    "node.crash_during_write",
    "node.restart",
    "node.stale_timer_ignored",
    "node.resumed_with_backlog",
    "clock.jump",
    "client.failure_mid_response",
    "client.reset_mid_body",
    "client.pipelined_request_in_3_segments",
    "client.gave_up_waiting",
    "host.deadline_fired",
    "backend.answered_500",
    "host.read_error_after_head",
    "backend.aborted_response",
    "host.peer_reset",
    "buggify.backend.tiny_first_read",
    // The workload's request families (workload::Mix), each answered and checked.
    "client.body_content_length",
    "client.body_chunked",
    "client.body_chunk_extensions",
    "client.body_trailers",
    "client.body_over_the_backend_limit",
    "client.body_too_large_413",
    "client.pipelined_request_with_body",
    "client.continue_wait_over",
    "client.expect_answered_before_body",
    "client.malformed_head_refused",
    "client.broken_chunk_size_answered_once",
    "client.broken_chunk_end_answered_once",
    "client.server_closed_after_last_answer",
    "client.absolute_form_target",
    "client.revalidated_304",
    "client.stale_validator_full_answer",
    "client.encoded_dot_segment",
    "client.percent_encoded_target",
    "client.dot_segment",
    "client.target_refused_400",
    "client.outside_the_root_403",
    "client.folder_redirect_301",
    "client.unknown_method_501",
    "client.method_not_allowed_405",
    "client.options_asterisk",
];

/// A backend run: topology and workload, network, faults, phases.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackendScenario {
    pub seed: u64,
    pub clients: usize,
    /// Connections per client (each runs 1..=max_requests requests).
    pub conns_per_client: usize,
    pub max_requests: usize,
    pub max_depth: usize,
    /// Hosts that do nothing (to show that idle hosts cost nothing).
    #[serde(default)]
    pub idle_hosts: usize,
    /// Some requests are POSTs with unique targets, so a world can check that each reached a
    /// backend at most once (the static backend answers them 405).
    #[serde(default)]
    pub posts: bool,
    /// Files of at most a few KiB (for byte-by-byte networks, where every byte is an event).
    pub small_site: bool,
    /// Which request families the clients send besides GET and HEAD (all off in scenarios
    /// saved before the mix existed).
    #[serde(default)]
    pub mix: Mix,
    pub net: NetConfig,
    pub random: RandomFaults,
    pub faults: Vec<Timed>,
    pub phases: Phases,
}

impl BackendScenario {
    /// No faults: a healthy network with the given seed.
    pub fn quiet(seed: u64) -> Self {
        BackendScenario {
            seed,
            clients: 50,
            conns_per_client: 2,
            max_requests: 6,
            max_depth: 3,
            idle_hosts: 0,
            posts: false,
            small_site: false,
            mix: Mix::all(),
            net: NetConfig::default(),
            random: RandomFaults::default(),
            faults: Vec::new(),
            phases: Phases {
                heal_at_ms: 0,
                converge_within_ms: 600_000,
            },
        }
    }

    /// Swarm testing: the seed picks which fault families are on (each with probability 1/2),
    /// their rates, and a timeline of faults in the first `heal_at_ms`.
    pub fn generate(seed: u64, clients: usize) -> Self {
        let clients = clients.max(1);
        let mut r = rng::stream(seed, rng::PLAN);
        let heal_at_ms = 60_000;
        let mut on = || r.bool();
        let families: [bool; 8] = std::array::from_fn(|_| on());
        let mut random = RandomFaults {
            max_drift_ppm: 500,
            ..RandomFaults::default()
        };
        if families[0] {
            random.reset_ppm = r.u32(100..=3_000);
        }
        if families[1] {
            random.refuse_ppm = r.u32(1_000..=50_000);
            random.connect_timeout_ppm = r.u32(1_000..=20_000);
        }
        if families[2] {
            random.clog_ppm = r.u32(100..=2_000);
            random.clog_ms = r.u64(10..=5_000);
        }
        if families[3] {
            random.disk_read_error_ppm = r.u32(1_000..=30_000);
            random.disk_write_error_ppm = r.u32(1_000..=30_000);
        }
        if families[4] {
            random.buggify_activate_ppm = 250_000;
            random.buggify_fire_ppm = 250_000;
        }
        let mut faults = Vec::new();
        let host = |r: &mut fastrand::Rng| {
            if r.bool() {
                SERVER
            } else {
                r.usize(1..=clients)
            }
        };
        let n = if families[5] { r.usize(1..=8) } else { 0 };
        for _ in 0..n {
            let at_ms = r.u64(0..heal_at_ms);
            let action = match r.u8(..9) {
                0 => FaultAction::Crash { host: host(&mut r) },
                1 => FaultAction::Isolate { host: host(&mut r) },
                2 => {
                    let k = r.usize(1..=clients.min(10));
                    FaultAction::Partition {
                        from: vec![SERVER],
                        to: (0..k).map(|_| r.usize(1..=clients)).collect(),
                        one_way: r.bool(),
                    }
                }
                3 => FaultAction::Clog {
                    from: SERVER,
                    to: r.usize(1..=clients),
                    ms: r.u64(100..=20_000),
                },
                4 => FaultAction::Pause {
                    host: host(&mut r),
                    ms: r.u64(100..=20_000),
                },
                5 => FaultAction::ClockJump {
                    host: host(&mut r),
                    by_s: r.i64(-7200..=7200),
                },
                6 => FaultAction::ResetAll { host: SERVER },
                7 => FaultAction::Drain { host: host(&mut r) },
                _ => FaultAction::Restart { host: host(&mut r) },
            };
            faults.push(Timed { at_ms, action });
        }
        faults.sort_by_key(|t| t.at_ms);
        let mut net = NetConfig::default();
        if families[6] {
            net.max_chunk = [1, 7, 100, 1500, 65_536][r.usize(..5)];
        }
        if families[7] {
            net.latency = Latency {
                min_us: 100,
                mean_us: 20_000,
                tail_ppm: 50_000,
                tail_doublings: 6,
                max_us: 3_000_000,
            };
        }
        BackendScenario {
            seed,
            clients,
            conns_per_client: 2,
            max_requests: 5,
            max_depth: 3,
            idle_hosts: 0,
            posts: false,
            small_site: net.max_chunk < 100,
            mix: Mix::generate(seed),
            net,
            random,
            faults,
            phases: Phases {
                heal_at_ms,
                converge_within_ms: 240_000,
            },
        }
    }
}

impl BackendScenario {
    /// The faults half, for the shared harness and shrinker.
    pub fn faults_mut(&mut self) -> FaultsMut<'_> {
        FaultsMut {
            net: &mut self.net,
            random: &mut self.random,
            faults: &mut self.faults,
            phases: &mut self.phases,
        }
    }

    /// One-step simplifications of the workload: fewer request families, clients,
    /// connections, requests and pipelining. `names(clients, host)` says whether a fault's
    /// host still exists with that many clients (faults that name a removed host go too).
    pub fn smaller_workload(&self, names: impl Fn(usize, HostId) -> bool) -> Vec<Self> {
        let mut out = Vec::new();
        let m = &self.mix;
        type Off = fn(&mut Mix);
        let families: [(bool, Off); 6] = [
            (m.bodies, |m| m.bodies = false),
            (m.expect_continue, |m| m.expect_continue = false),
            (m.methods, |m| m.methods = false),
            (m.targets, |m| m.targets = false),
            (m.malformed, |m| m.malformed = false),
            (m.conditional, |m| m.conditional = false),
        ];
        for (on, off) in families {
            if on {
                let mut c = self.clone();
                off(&mut c.mix);
                out.push(c);
            }
        }
        for clients in [1, self.clients / 2, self.clients - 1] {
            if clients >= 1 && clients < self.clients {
                let mut c = self.clone();
                c.clients = clients;
                c.faults
                    .retain(|t| fault_hosts(&t.action).iter().all(|&h| names(clients, h)));
                out.push(c);
            }
        }
        if self.conns_per_client > 1 {
            let mut c = self.clone();
            c.conns_per_client -= 1;
            out.push(c);
        }
        if self.max_requests > 1 {
            let mut c = self.clone();
            c.max_requests -= 1;
            out.push(c);
        }
        if self.max_depth > 1 {
            let mut c = self.clone();
            c.max_depth = 1;
            out.push(c);
        }
        out
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Report {
    pub trace_hash: u64,
    pub events: u64,
    pub responses: usize,
    /// Requests answered 408 (stalled clients), so a test can tell the deadline path ran.
    pub timeouts: usize,
    pub server_errors: usize,
    pub coverage: Coverage,
    pub sim_time: Duration,
}

pub use crate::world::Failure;

/// Host 0: the backend node ([`BackendNode`]) on the generic host, one [`BackendConn`] per
/// accepted stream.
pub type BackendHost = MachineHost<BackendNode>;

/// How often each POST target reached a backend (shared by the world's backends).
pub type PostLedger = std::rc::Rc<std::cell::RefCell<BTreeMap<String, u32>>>;

/// A backend node on `host`, listening on the engine's default port; the POST targets it
/// receives go to `ledger` when there is one.
pub fn backend_host(host: HostId, seed: u64, ledger: Option<PostLedger>) -> BackendHost {
    let mut cfg = BackendConfig::new("/www", "/static");
    cfg.limits.max_body = workload::BODY_LIMIT;
    let node = BackendNode::new(host_addr(host, DEFAULT_PORT), Arc::new(cfg));
    MachineHost::new(
        node,
        seed ^ host as u64,
        Box::new(BackendWatch { posts: ledger }),
    )
}

/// What the backend world watches of its backends.
struct BackendWatch {
    /// Counts the POST targets that reached a backend, shared with the world so the count
    /// survives a crash of the host.
    posts: Option<PostLedger>,
}

impl Observer<BackendNode> for BackendWatch {
    fn access(&mut self, cx: &mut Cx, s: StreamId, l: &AccessLog) {
        if let (Some(ledger), true) = (&self.posts, workload::is_once(&l.target)) {
            *ledger.borrow_mut().entry(l.target.clone()).or_default() += 1;
        }
        let (status, bytes, aborted) = (l.status, l.bytes, l.aborted);
        if status == 500 {
            cx.cover("backend.answered_500");
        }
        if aborted {
            cx.cover("backend.aborted_response");
        }
        cx.trace(30, s, status as u64, || {
            format!("stream {s} log {} {} {status} {bytes}", l.method, l.target)
        });
    }
    fn stepped(&mut self, cx: &mut Cx, _s: StreamId, conn: &BackendConn) {
        if conn
            .buggify()
            .fired()
            .iter()
            .any(|(site, _)| *site == "backend.tiny_first_read")
        {
            cx.cover("buggify.backend.tiny_first_read");
        }
    }
}

fn client(sc: &BackendScenario, disk: &Disk, paths: &[String], host: HostId) -> ClientHost {
    client_for(sc, disk, paths, host, SERVER)
}

/// The simulated client on `host` of scenario `sc`, talking to `server`.
pub fn client_for(
    sc: &BackendScenario,
    disk: &Disk,
    paths: &[String],
    host: HostId,
    server: HostId,
) -> ClientHost {
    let (plans, probe) = plans_for(sc, disk, paths, host);
    let mut c = ClientHost::new(host, server, plans, probe);
    c.tolerate_408 = !sc.faults.is_empty() || sc.random != RandomFaults::default();
    c
}

/// The connection plans, and the probe, of the client on `host` of scenario `sc`, with what
/// the static backend must answer.
pub fn plans_for(
    sc: &BackendScenario,
    disk: &Disk,
    paths: &[String],
    host: HostId,
) -> (Vec<ConnPlan>, ConnPlan) {
    let mut r = rng::stream(sc.seed ^ ((host as u64) << 32), rng::WORKLOAD);
    let plan = |r: &mut fastrand::Rng| {
        workload::plan(r, &sc.mix, sc.max_requests, sc.max_depth, disk, paths)
    };
    let mut plans: Vec<ConnPlan> = (0..sc.conns_per_client).map(|_| plan(&mut r)).collect();
    if sc.posts {
        // A stream of its own, so switching POSTs on changes nothing else of the workload.
        let mut p = rng::stream(sc.seed ^ ((host as u64) << 32), rng::POSTS);
        let mut k = 0;
        for req in plans
            .iter_mut()
            .filter(|c| c.stall_after.is_none())
            .flat_map(|c| c.reqs.iter_mut())
        {
            if p.u8(..4) == 0 {
                k += 1;
                *req = ClientReq::new(
                    Method::Post,
                    format!("/post/{host}/{k}"),
                    Expect::status(405),
                );
                req.once = true;
            }
        }
    }
    let mut probe = plan(&mut r);
    probe.stall_after = None;
    probe.reqs.retain(|q| q.expect.status != 408);
    if probe.reqs.is_empty() {
        let mut req = ClientReq::new(Method::Get, "/", Expect::default());
        req.expect = workload::backend_expect(disk, &req);
        probe.reqs.push(req);
    }
    (plans, probe)
}

/// Builds the simulator for `sc` (with the faults scheduled).
pub fn build(sc: &BackendScenario, keep: Keep) -> Sim {
    let (site, paths) = workload::site(sc.seed, sc.small_site);
    let mut disks = vec![site.clone()];
    disks.extend((0..sc.clients + sc.idle_hosts).map(|_| Disk::default()));
    let sc2 = sc.clone();
    let factory = Box::new(move |host: HostId, _disk: &Disk| -> Box<dyn Node> {
        if host == SERVER {
            Box::new(backend_host(SERVER, sc2.seed, None))
        } else if host <= sc2.clients {
            Box::new(client(&sc2, &site, &paths, host))
        } else {
            Box::new(Idle)
        }
    });
    let mut sim = Sim::new(
        sc.seed,
        sc.net.clone(),
        sc.random.clone(),
        disks,
        keep,
        factory,
    );
    sim.set_idle_hosts(sc.idle_hosts);
    sim.schedule(&sc.faults, &sc.phases);
    sim
}

/// A host that does nothing.
struct Idle;
impl Node for Idle {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn clients(sim: &Sim) -> impl Iterator<Item = Option<&ClientHost>> + '_ {
    let n = sim.hosts().saturating_sub(1 + sim.idle_hosts());
    (1..=n).map(|h| {
        sim.node(h)
            .and_then(|n| n.as_any().downcast_ref::<ClientHost>())
    })
}

fn server(sim: &Sim) -> Option<&BackendHost> {
    sim.node(SERVER)
        .and_then(|n| n.as_any().downcast_ref::<BackendHost>())
}

/// The backend world, for the shared harness ([`crate::world`]).
pub struct BackendWorld;

impl World for BackendWorld {
    type Scenario = BackendScenario;
    type State = ();
    const NAME: &'static str = "backend";
    const COVERAGE: &'static [&'static str] = BACKEND_COVERAGE;

    fn seed(sc: &BackendScenario) -> u64 {
        sc.seed
    }
    fn faults_mut(sc: &mut BackendScenario) -> FaultsMut<'_> {
        sc.faults_mut()
    }
    fn build(sc: &BackendScenario, keep: Keep) -> (Sim, ()) {
        (build(sc, keep), ())
    }
    fn settled(sim: &Sim, _: &()) -> bool {
        clients(sim).all(|c| c.is_some_and(ClientHost::finished))
            && server(sim).is_some_and(|s| s.connections() == 0)
    }
    fn unsettled(sc: &BackendScenario, sim: &Sim, _: &()) -> String {
        let unfinished: Vec<usize> = clients(sim)
            .enumerate()
            .filter(|(_, c)| !c.is_some_and(ClientHost::finished))
            .map(|(i, _)| i + 1)
            .collect();
        if !unfinished.is_empty() {
            return format!(
                "liveness: clients {unfinished:?} not finished {} ms after the heal",
                sc.phases.converge_within_ms
            );
        }
        format!(
            "{} server connections still open {} ms after the heal: {}",
            server(sim).map_or(0, BackendHost::connections),
            sc.phases.converge_within_ms,
            server(sim).map(BackendHost::describe).unwrap_or_default()
        )
    }
    fn check_end(_: &BackendScenario, sim: &Sim, _: &()) -> Result<(), String> {
        let disk = sim.disk(SERVER);
        if disk.open_handles() > 0 {
            return Err(format!("{} file handles left open", disk.open_handles()));
        }
        let errors: usize = clients(sim).flatten().map(|c| c.server_errors).sum();
        if errors as u64 > disk.read_errors {
            return Err(format!(
                "{errors} answers of 500 but only {} disk read errors injected",
                disk.read_errors
            ));
        }
        Ok(())
    }
    fn answered(sim: &Sim) -> usize {
        clients(sim).flatten().map(|c| c.answered).sum()
    }
    fn smaller(sc: &BackendScenario) -> Vec<BackendScenario> {
        // Host numbers in the faults above a smaller client count would name nobody.
        sc.smaller_workload(|c, h| h <= c)
    }
}

/// Runs `sc`; see the module docs for the oracles.
pub fn run(sc: &BackendScenario, keep: Keep) -> Result<Report, Failure> {
    let f = world::run_full::<BackendWorld>(sc, keep);
    let cs: Vec<&ClientHost> = clients(&f.sim).flatten().collect();
    match f.result {
        Ok(()) => Ok(Report {
            trace_hash: f.sim.trace().hash(),
            events: f.sim.trace().events(),
            responses: cs.iter().map(|c| c.answered).sum(),
            timeouts: cs.iter().map(|c| c.timeouts_408).sum(),
            server_errors: cs.iter().map(|c| c.server_errors).sum(),
            coverage: f.sim.coverage().clone(),
            sim_time: f.sim.now().since(Instant::ZERO),
        }),
        Err(message) => Err(Failure {
            seed: sc.seed,
            message,
            trace_tail: f.sim.trace().tail(),
        }),
    }
}
