//! The backend world: the real backend machine ([`BackendConn`]) serving simulated clients.
//!
//! # Model
//! * Time is virtual and jumps to the next event; events are ordered by (time, insertion
//!   sequence), so equal times never race.
//! * A connection is two one-way pipes. A write is cut into chunks of 1..=`max_chunk` bytes
//!   (down to one byte) and each chunk arrives after a latency drawn from the network stream;
//!   arrivals on one pipe never overtake each other (TCP keeps order).
//! * Flow control: at most `window` bytes are in flight from the server to a client; the server
//!   machine's transmit is taken (and `Flushed` reported) only as the window allows.
//!   Bytes for a server machine that does not `wants_read` wait in its receive buffer.
//! * Disk operations complete after a sampled latency.
//!
//! # Oracles
//! Every response is checked byte for byte by its [`SimClient`]; `check_invariants` runs on the
//! machine after every step; at the end every client must have had every answer (liveness), and
//! no file handle may be left open.

use crate::client::{Action, ClientReq, ConnPlan, Expect, SimClient};
use crate::disk::Disk;
use crate::rng;
use crate::trace::{fnv, Trace};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use weaprous_core::backend::{BackendConfig, BackendConn};
use weaprous_core::http::Method;
use weaprous_core::node::{ConnInput, ConnOutput, Connection, FileOp, FileReply, FsError, Now};
use weaprous_core::time::{Duration, Instant, UnixTime};

/// The knobs of one run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BackendScenario {
    pub seed: u64,
    pub clients: usize,
    /// Connections per client (each runs 1..=max_requests requests).
    pub conns_per_client: usize,
    pub max_requests: usize,
    pub max_depth: usize,
    /// Largest network chunk (1 = byte by byte).
    pub max_chunk: usize,
    pub latency_min_us: u64,
    pub latency_max_us: u64,
    pub window: usize,
    /// Simulated time after which the run is declared stuck.
    pub time_limit_s: u64,
    /// Keep a readable trace tail (for failure reports).
    pub keep_trace: bool,
}

impl BackendScenario {
    pub fn new(seed: u64) -> Self {
        BackendScenario {
            seed,
            clients: 50,
            conns_per_client: 2,
            max_requests: 6,
            max_depth: 3,
            max_chunk: 1500,
            latency_min_us: 50,
            latency_max_us: 5_000,
            window: 64 * 1024,
            time_limit_s: 600,
            keep_trace: false,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Report {
    pub trace_hash: u64,
    pub events: u64,
    pub responses: usize,
    /// Requests the server answered with 408 (stalled clients), so a test can tell the
    /// deadline path ran.
    pub timeouts: usize,
    pub sim_time: Duration,
}

/// A failed run: what broke, and the end of the trace.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub message: String,
    pub trace_tail: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {}: {}", self.seed, self.message)?;
        for l in &self.trace_tail {
            writeln!(f, "  {l}")?;
        }
        Ok(())
    }
}

type ConnId = u64;

#[derive(Debug)]
enum Ev {
    Accept { conn: ConnId },
    Connected { conn: ConnId },
    ToServer { conn: ConnId, bytes: Vec<u8> },
    ToClient { conn: ConnId, bytes: Vec<u8> },
    FinToServer { conn: ConnId },
    FinToClient { conn: ConnId },
    ResetToClient { conn: ConnId },
    Timer { conn: ConnId, gen: u64 },
    Disk { conn: ConnId, reply: FileReply },
}

struct Queued {
    at: Instant,
    seq: u64,
    ev: Ev,
}
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

/// The server end of one connection.
struct ServerSide {
    machine: BackendConn,
    rx: VecDeque<Vec<u8>>,
    rx_eof: bool,
    close_after_flush: bool,
    done: bool,
    timer_gen: u64,
    armed: Option<Instant>,
}

struct Link {
    client: usize,
    /// Bytes from the server not yet delivered to the client.
    in_flight: usize,
    /// Arrival time of the last chunk per direction (FIFO).
    last_to_server: Instant,
    last_to_client: Instant,
    client_done: bool,
}

pub struct World {
    sc: BackendScenario,
    now: Instant,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    net: fastrand::Rng,
    chunks: fastrand::Rng,
    disk_rng: fastrand::Rng,
    disk: Disk,
    cfg: Arc<BackendConfig>,
    servers: BTreeMap<ConnId, ServerSide>,
    links: BTreeMap<ConnId, Link>,
    clients: Vec<SimClient>,
    current: Vec<Option<ConnId>>,
    next_conn: ConnId,
    trace: Trace,
    timeouts: usize,
}

const WALL_EPOCH: u64 = 1_764_000_000;

/// The files of the simulated site (sizes cover empty, tiny, one chunk and many chunks).
fn build_site(seed: u64) -> (Disk, Vec<String>) {
    let mut r = rng::stream(seed, rng::FILES);
    let mut disk = Disk::default();
    let sizes = [
        0usize,
        1,
        700,
        4096,
        65_536,
        65_537,
        200_000 + r.usize(..100_000),
    ];
    let mut paths = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|_| r.u8(..)).collect();
        let (disk_path, url) = if i % 3 == 0 {
            (format!("/www/p{i}.html"), format!("/p{i}.html"))
        } else {
            (format!("/static/d{i}/f{i}.bin"), format!("/d{i}/f{i}.bin"))
        };
        disk.add_file(&disk_path, data, UnixTime(WALL_EPOCH - 1000 * i as u64));
        paths.push(url);
    }
    disk.add_file(
        "/www/index.html",
        b"<h1>sim</h1>".to_vec(),
        UnixTime(WALL_EPOCH - 5),
    );
    paths.push("/".into());
    (disk, paths)
}

/// What the backend must answer for `path` (the mapping of `weaprous_core::backend`).
fn expected(disk: &Disk, method: &Method, path: &str, range: Option<(u64, u64)>) -> Expect {
    let file = if path == "/" {
        "/www/index.html".to_string()
    } else if path.ends_with(".html") {
        format!("/www{path}")
    } else {
        format!("/static{path}")
    };
    let Some(data) = disk.file(&file) else {
        return Expect {
            status: 404,
            body: None,
        };
    };
    let head = *method == Method::Head;
    match range {
        Some((a, _)) if a >= data.len() as u64 => Expect {
            status: 416,
            body: None,
        },
        Some((a, b)) => {
            let end = (b as usize).min(data.len() - 1);
            Expect {
                status: 206,
                body: Some(if head {
                    vec![]
                } else {
                    data[a as usize..=end].to_vec()
                }),
            }
        }
        None => Expect {
            status: 200,
            body: Some(if head { vec![] } else { data.to_vec() }),
        },
    }
}

fn plans(
    seed: u64,
    sc: &BackendScenario,
    disk: &Disk,
    paths: &[String],
    client: usize,
) -> Vec<ConnPlan> {
    let mut r = rng::stream(seed ^ (client as u64) << 32, rng::WORKLOAD);
    (0..sc.conns_per_client)
        .map(|_| {
            let n = r.usize(1..=sc.max_requests);
            let reqs = (0..n)
                .map(|_| {
                    let path = if r.u8(..10) == 0 {
                        format!("/missing{}.css", r.u8(..))
                    } else {
                        paths[r.usize(..paths.len())].clone()
                    };
                    let method = if r.u8(..5) == 0 {
                        Method::Head
                    } else {
                        Method::Get
                    };
                    let range = (r.u8(..6) == 0).then(|| {
                        let a = r.u64(..70_000);
                        (a, a + r.u64(..70_000))
                    });
                    let expect = expected(disk, &method, &path, range);
                    ClientReq {
                        method,
                        path,
                        range,
                        expect,
                    }
                })
                .collect();
            let mut plan = ConnPlan {
                reqs,
                depth: r.usize(1..=sc.max_depth),
                close_header: r.bool(),
                stall_after: None,
            };
            if r.u8(..25) == 0 {
                // A stalled client: part of a head, then silence; the answer is a 408.
                // (As a GET: the server never learns the method of a head it never got, so
                // it answers as to a GET, with a body.)
                plan.reqs.truncate(1);
                plan.reqs[0].method = Method::Get;
                plan.reqs[0].expect = Expect {
                    status: 408,
                    body: None,
                };
                plan.stall_after = Some(r.usize(1..20));
            }
            plan
        })
        .collect()
}

impl World {
    pub fn new(sc: BackendScenario) -> Self {
        let (disk, paths) = build_site(sc.seed);
        let clients = (0..sc.clients)
            .map(|i| SimClient::new(i, plans(sc.seed, &sc, &disk, &paths, i)))
            .collect();
        let cfg = Arc::new(BackendConfig::new("/www", "/static"));
        World {
            net: rng::stream(sc.seed, rng::NET),
            chunks: rng::stream(sc.seed, rng::CHUNKS),
            disk_rng: rng::stream(sc.seed, rng::DISK),
            trace: Trace::new(sc.keep_trace),
            current: vec![None; sc.clients],
            sc,
            now: Instant::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            disk,
            cfg,
            servers: BTreeMap::new(),
            links: BTreeMap::new(),
            clients,
            next_conn: 0,
            timeouts: 0,
        }
    }

    fn at(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            ev,
        }));
    }
    fn latency(&mut self) -> Duration {
        Duration::from_micros(
            self.net
                .u64(self.sc.latency_min_us..=self.sc.latency_max_us),
        )
    }
    fn now_for_node(&self) -> Now {
        Now {
            mono: self.now,
            wall: UnixTime(WALL_EPOCH + self.now.0 / 1_000_000_000),
        }
    }

    /// Sends `bytes` down one pipe, cut into random chunks that arrive in order.
    fn send(&mut self, conn: ConnId, to_server: bool, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self
                .chunks
                .usize(1..=self.sc.max_chunk.max(1))
                .min(rest.len());
            let arrive = self.arrival(conn, to_server);
            let chunk = rest[..n].to_vec();
            rest = &rest[n..];
            let ev = if to_server {
                Ev::ToServer { conn, bytes: chunk }
            } else {
                Ev::ToClient { conn, bytes: chunk }
            };
            self.at(arrive, ev);
        }
    }
    /// When something sent now on one pipe arrives: after a sampled latency, never before what
    /// was sent on that pipe earlier (TCP keeps order).
    fn arrival(&mut self, conn: ConnId, to_server: bool) -> Instant {
        let lat = self.latency();
        let link = self.links.get_mut(&conn).expect("link");
        let last = if to_server {
            &mut link.last_to_server
        } else {
            &mut link.last_to_client
        };
        let arrive = (self.now + lat).max(*last);
        *last = arrive;
        arrive
    }
    fn send_fin(&mut self, conn: ConnId, to_server: bool) {
        let arrive = self.arrival(conn, to_server);
        self.at(
            arrive,
            if to_server {
                Ev::FinToServer { conn }
            } else {
                Ev::FinToClient { conn }
            },
        );
    }

    fn client_actions(&mut self, client: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Connect => {
                    self.next_conn += 1;
                    let conn = self.next_conn;
                    self.links.insert(
                        conn,
                        Link {
                            client,
                            in_flight: 0,
                            last_to_server: self.now,
                            last_to_client: self.now,
                            client_done: false,
                        },
                    );
                    self.current[client] = Some(conn);
                    let lat = self.latency();
                    self.at(self.now + lat, Ev::Accept { conn });
                }
                Action::Write(bytes) => {
                    let conn = self.current[client].expect("a connection to write on");
                    self.send(conn, true, &bytes);
                }
                Action::Fin => {
                    let conn = self.current[client].take().expect("a connection to finish");
                    if let Some(l) = self.links.get_mut(&conn) {
                        l.client_done = true;
                    }
                    self.send_fin(conn, true);
                }
            }
        }
    }

    /// Feeds waiting bytes, drains outputs, and moves transmit bytes into the network.
    fn drive_server(&mut self, conn: ConnId) -> Result<(), String> {
        loop {
            let now = self.now_for_node();
            let Some(side) = self.servers.get_mut(&conn) else {
                return Ok(());
            };
            if side.done {
                return Ok(());
            }
            if side.machine.wants_read() {
                if let Some(bytes) = side.rx.pop_front() {
                    side.machine.handle(now, ConnInput::Data(&bytes));
                    continue;
                }
                if side.rx_eof {
                    side.rx_eof = false;
                    side.machine.handle(now, ConnInput::Eof);
                    continue;
                }
            }
            let mut disk_ops = Vec::new();
            let deadline = loop {
                match side.machine.poll_output() {
                    ConnOutput::File(op) => disk_ops.push(op),
                    ConnOutput::Log(l) => {
                        let (status, bytes) = (l.status, l.bytes);
                        if status == 408 {
                            self.timeouts += 1;
                        }
                        self.trace.record(self.now.0, 9, conn, status as u64, || {
                            format!("conn {conn} log {} {} {status} {bytes}", l.method, l.target)
                        });
                    }
                    ConnOutput::Close => side.close_after_flush = true,
                    ConnOutput::Abort => {
                        side.done = true;
                        let lat = Duration::from_micros(
                            self.net
                                .u64(self.sc.latency_min_us..=self.sc.latency_max_us),
                        );
                        let arrive = self.now + lat;
                        self.seq += 1;
                        self.queue.push(Reverse(Queued {
                            at: arrive,
                            seq: self.seq,
                            ev: Ev::ResetToClient { conn },
                        }));
                        return Ok(());
                    }
                    ConnOutput::Wait { deadline } => break deadline,
                }
            };
            side.machine.check_invariants();
            for op in disk_ops {
                if let Some(reply) = self.disk.run(&op) {
                    let lat = Duration::from_micros(self.disk_rng.u64(1..=200));
                    self.at(self.now + lat, Ev::Disk { conn, reply });
                }
            }
            let side = self.servers.get_mut(&conn).expect("server side");
            if deadline != side.armed {
                side.armed = deadline;
                side.timer_gen += 1;
                if let Some(d) = deadline {
                    let gen = side.timer_gen;
                    self.at(d.max(self.now), Ev::Timer { conn, gen });
                }
            }
            let side = self.servers.get_mut(&conn).expect("server side");
            let in_flight = self.links.get(&conn).map_or(0, |l| l.in_flight);
            let room = self.sc.window.saturating_sub(in_flight);
            let pending = side.machine.transmit().len();
            // File segments are "sent from the disk" like sendfile: read, then put on the wire.
            let from_file = match side.machine.transmit_file() {
                Some(seg) if pending == 0 && room > 0 => {
                    let len = (seg.len as usize).min(room);
                    let op = FileOp::Read {
                        handle: seg.handle,
                        offset: seg.offset,
                        len,
                    };
                    match self.disk.run(&op) {
                        Some(FileReply::Read(Ok(bytes))) if !bytes.is_empty() => Some(bytes),
                        _ => {
                            side.machine
                                .handle(now, ConnInput::File(FileReply::Read(Err(FsError::Io))));
                            continue;
                        }
                    }
                }
                _ => None,
            };
            if from_file.is_some() || (pending > 0 && room > 0) {
                let bytes = from_file
                    .unwrap_or_else(|| side.machine.transmit()[..pending.min(room)].to_vec());
                let n = bytes.len();
                side.machine.handle(now, ConnInput::Flushed(n));
                if let Some(l) = self.links.get_mut(&conn) {
                    l.in_flight += n;
                }
                self.trace.record(self.now.0, 2, conn, fnv(&bytes), || {
                    format!("conn {conn} server writes {n} bytes")
                });
                self.send(conn, false, &bytes);
                continue;
            }
            if pending == 0 && side.machine.transmit_file().is_none() && side.close_after_flush {
                side.done = true;
                self.send_fin(conn, false);
            }
            return Ok(());
        }
    }

    fn step(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Accept { conn } => {
                let machine = BackendConn::new(self.cfg.clone(), self.now_for_node());
                self.servers.insert(
                    conn,
                    ServerSide {
                        machine,
                        rx: VecDeque::new(),
                        rx_eof: false,
                        close_after_flush: false,
                        done: false,
                        timer_gen: 0,
                        armed: None,
                    },
                );
                self.trace
                    .record(self.now.0, 1, conn, 0, || format!("conn {conn} accepted"));
                let lat = self.latency();
                self.at(self.now + lat, Ev::Connected { conn });
                self.drive_server(conn)
            }
            Ev::Connected { conn } => {
                let client = self.links[&conn].client;
                let actions = self.clients[client].on_connected();
                self.client_actions(client, actions);
                Ok(())
            }
            Ev::ToServer { conn, bytes } => {
                self.trace.record(self.now.0, 3, conn, fnv(&bytes), || {
                    format!("conn {conn} -> server {} bytes", bytes.len())
                });
                if let Some(side) = self.servers.get_mut(&conn) {
                    side.rx.push_back(bytes);
                }
                self.drive_server(conn)
            }
            Ev::FinToServer { conn } => {
                self.trace.record(self.now.0, 4, conn, 0, || {
                    format!("conn {conn} -> server FIN")
                });
                if let Some(side) = self.servers.get_mut(&conn) {
                    side.rx_eof = true;
                }
                self.drive_server(conn)
            }
            Ev::ToClient { conn, bytes } => {
                self.trace.record(self.now.0, 5, conn, fnv(&bytes), || {
                    format!("conn {conn} -> client {} bytes", bytes.len())
                });
                let link = self.links.get_mut(&conn).expect("link");
                link.in_flight -= bytes.len();
                let (client, client_done) = (link.client, link.client_done);
                if client_done {
                    return Err(format!(
                        "conn {conn}: {} bytes after the client's last response",
                        bytes.len()
                    ));
                }
                let actions = self.clients[client].on_data(&bytes)?;
                self.client_actions(client, actions);
                self.drive_server(conn)
            }
            Ev::FinToClient { conn } => {
                self.trace.record(self.now.0, 6, conn, 0, || {
                    format!("conn {conn} -> client FIN")
                });
                let link = &self.links[&conn];
                if !link.client_done {
                    let client = link.client;
                    let actions = self.clients[client].on_server_fin()?;
                    self.client_actions(client, actions);
                }
                Ok(())
            }
            Ev::ResetToClient { conn } => {
                Err(format!("conn {conn}: the server reset the connection"))
            }
            Ev::Timer { conn, gen } => {
                let now = self.now_for_node();
                let Some(side) = self.servers.get_mut(&conn) else {
                    return Ok(());
                };
                if side.timer_gen != gen || side.done {
                    return Ok(());
                }
                side.armed = None;
                self.trace
                    .record(self.now.0, 7, conn, 0, || format!("conn {conn} timer"));
                side.machine.handle(now, ConnInput::Timeout);
                self.drive_server(conn)?;
                // A deadline that is still due after its timeout was handled would make every
                // driver spin: the machine must move it or act.
                match self.servers.get(&conn) {
                    Some(side) if !side.done && side.armed.is_some_and(|d| d <= self.now) => Err(
                        format!("conn {conn}: deadline still due after its timeout (a spin)"),
                    ),
                    _ => Ok(()),
                }
            }
            Ev::Disk { conn, reply } => {
                let now = self.now_for_node();
                self.trace
                    .record(self.now.0, 8, conn, 0, || format!("conn {conn} disk reply"));
                if let Some(side) = self.servers.get_mut(&conn) {
                    side.machine.handle(now, ConnInput::File(reply));
                }
                self.drive_server(conn)
            }
        }
    }

    /// Runs to completion: `Ok` when every client got every answer and nothing leaked.
    pub fn run(mut self) -> Result<Report, Failure> {
        for c in 0..self.clients.len() {
            let actions = self.clients[c].start();
            self.client_actions(c, actions);
        }
        let limit = Instant::ZERO + Duration::from_secs(self.sc.time_limit_s);
        let result = (|| {
            while let Some(Reverse(q)) = self.queue.pop() {
                if q.at > limit {
                    return Err(format!(
                        "still running after {} simulated seconds",
                        self.sc.time_limit_s
                    ));
                }
                self.now = q.at;
                self.step(q.ev)?;
                if self.clients.iter().all(SimClient::finished)
                    && self.servers.values().all(|s| s.done)
                {
                    break;
                }
            }
            let unfinished: Vec<usize> = self
                .clients
                .iter()
                .filter(|c| !c.finished())
                .map(|c| c.id)
                .collect();
            if !unfinished.is_empty() {
                return Err(format!(
                    "clients {unfinished:?} never got all their answers"
                ));
            }
            if self.disk.open_handles() > 0 {
                return Err(format!(
                    "{} file handles left open",
                    self.disk.open_handles()
                ));
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(Report {
                trace_hash: self.trace.hash(),
                events: self.trace.events(),
                responses: self.clients.iter().map(|c| c.answered).sum(),
                timeouts: self.timeouts,
                sim_time: self.now.since(Instant::ZERO),
            }),
            Err(message) => Err(Failure {
                seed: self.sc.seed,
                message,
                trace_tail: self.trace.tail(),
            }),
        }
    }
}

/// Runs one scenario.
pub fn run(sc: BackendScenario) -> Result<Report, Failure> {
    World::new(sc).run()
}
