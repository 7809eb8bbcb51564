//! The P2P world: the chat server as the tracker (`ChatNode`, host 0) and peer nodes
//! (`weaprous_core::p2p::node::PeerNode`, hosts 1..=N) whose users send direct messages and
//! broadcasts, under swarm-chosen faults: crashes and restarts of peers and of the tracker,
//! graceful restarts, pauses, resets, partitions (one-way too), isolated peers, clock jumps
//! and disk errors (a peer whose log fails stops, and its service manager starts it again).
//!
//! Every peer has an account on the server (its log is prepared with them); the tracker asks
//! for a heartbeat every second (TTL 3 s), and messages expire after [`MESSAGE_TTL_S`] (or,
//! for some seeds, after a few seconds, so that failures happen).
//!
//! # Oracles
//! As events happen (the observers of every host):
//! * **Exactly once** (D1, B2): no peer takes the same message twice, across its restarts.
//! * **In order** (D4, B3): from each sender, a peer takes messages in the sender's order.
//! * **No hole**: a peer never takes a message whose chain says an earlier one is missing.
//! * **Valid** (B1): every message taken was sent by its origin, to that peer.
//! * **Acknowledged means taken** (D2): a sender learns "delivered" only for what the
//!   recipient durably took.
//!
//! At the end, after the heal and within the bound:
//! * **Delivered or failed** (D3, B5): every message sent is taken by each recipient or
//!   reported failed to its sender for that recipient; no peer still waits on anything.
//! * **The tracker** (T1, T4, T6): it lists every peer once, under its current id, at its
//!   address, and every peer's view of the list holds every other peer.
//! * **Bounded messages per broadcast** (B6): one copy per recipient, the recipients being at
//!   most the other peers.

use crate::chat_browser::{PORT, SERVER};
use crate::disk::Disk;
use crate::engine::{host_addr, Cx, Node, Sim};
use crate::host::{MachineHost, Observer};
use crate::rng;
use crate::scenario::{FaultAction, HostId, NetConfig, Phases, RandomFaults, Timed};
use crate::trace::Keep;
use crate::world::{self, fault_hosts, FaultsMut, World};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use weaprous_core::backend::BackendConfig;
use weaprous_core::chat::node::{AppRecord, ChatConfig, ChatNode, LOG as CHAT_LOG};
use weaprous_core::chat::tracker::TrackerPolicy;
use weaprous_core::node::record;
use weaprous_core::p2p::link::LinkTimers;
use weaprous_core::p2p::node::{PeerCommand, PeerConfig, PeerEvent, PeerNode};
use weaprous_core::p2p::wire::{Kind, MsgId};
use weaprous_core::time::{Duration, Instant};
use weaprous_core::web::accounts::{AccountRecord, PasswordHasher, StandInHasher};

/// The "sometimes" counters a sweep of this world must reach.
pub const P2P_COVERAGE: &[&str] = &[
    "p2p.sent",
    "p2p.broadcast_sent",
    "p2p.taken",
    "p2p.delivered",
    "p2p.failed",
    "p2p.link_up",
    "p2p.link_down",
    "p2p.duplicate_link_replaced",
    "p2p.duplicate_link_refused",
    "p2p.crossed_dials",
    "p2p.registered",
    "p2p.tracker_trouble",
    "p2p.forgotten_registered_again",
    "p2p.skipped",
    "p2p.peer_expired",
    "host.exit_restarted",
    "node.crash",
];

/// Where a peer listens for links.
pub const P2P_PORT: u16 = 7101;
/// Where its UI listens.
pub const UI_PORT: u16 = 8101;
/// How long a message waits for its recipient, unless the seed says less.
pub const MESSAGE_TTL_S: u64 = 60;

/// A peer's account name.
pub fn user(host: HostId) -> String {
    format!("peer{host}")
}

fn password(host: HostId) -> String {
    format!("password of peer {host}")
}

/// What the world's observers saw, for the oracles.
#[derive(Default, Debug)]
pub struct Ledger {
    /// Each peer host's id, and back.
    pub ids: BTreeMap<HostId, String>,
    pub hosts: BTreeMap<String, HostId>,
    /// Every message sent: (origin, id) → (kind, recipients).
    pub sent: BTreeMap<(String, MsgId), (Kind, Vec<String>)>,
    /// Per (receiver host, origin): the ids taken, in order.
    pub taken: BTreeMap<(HostId, String), Vec<MsgId>>,
    /// (origin, recipient, id) reported delivered or failed.
    pub delivered: BTreeSet<(String, String, MsgId)>,
    pub failed: BTreeSet<(String, String, MsgId)>,
    /// Which of two links to the same peer a side kept, by the pair of streams.
    pub link_choices: BTreeMap<(u64, u64), u64>,
}

type Shared = Rc<RefCell<Ledger>>;

/// Watches one peer.
struct PeerWatch {
    host: HostId,
    ledger: Shared,
}

impl Observer<PeerNode> for PeerWatch {
    fn event(&mut self, cx: &mut Cx, ev: &PeerEvent) {
        let mut l = self.ledger.borrow_mut();
        let me = l.ids.get(&self.host).cloned().unwrap_or_default();
        match ev {
            PeerEvent::Ready { id, .. } => {
                if !me.is_empty() && me != *id {
                    cx.fail(format!(
                        "peer {} changed its id from {me} to {id}",
                        self.host
                    ));
                }
                l.ids.insert(self.host, id.clone());
                l.hosts.insert(id.clone(), self.host);
            }
            PeerEvent::Sent { id, kind, to } => {
                cx.cover(if *kind == Kind::Broadcast {
                    "p2p.broadcast_sent"
                } else {
                    "p2p.sent"
                });
                if to.contains(&me) {
                    cx.fail(format!("{me} sent {id} to itself"));
                }
                if l.sent
                    .insert((me.clone(), *id), (*kind, to.clone()))
                    .is_some()
                {
                    cx.fail(format!("{me} minted {id} twice"));
                }
            }
            PeerEvent::Replayed { id, kind, to } => {
                if me.is_empty() {
                    // The identity record comes first; its Ready follows the replay.
                    return;
                }
                let known = l
                    .sent
                    .entry((me.clone(), *id))
                    .or_insert((*kind, to.clone()));
                if known.1 != *to {
                    cx.fail(format!(
                        "{me} read back {id} to {to:?}, sent to {:?}",
                        known.1
                    ));
                }
            }
            PeerEvent::Recalled { from, id } => {
                let seen = l.taken.entry((self.host, from.clone())).or_default();
                if !seen.contains(id) {
                    // Taken durably in a life that ended before it said so.
                    cx.cover("p2p.taken_silently");
                    if seen.last().is_some_and(|last| last > id) {
                        cx.fail(format!("{me} holds {id} from {from} after {seen:?}"));
                    }
                    seen.push(*id);
                }
            }
            PeerEvent::Taken { from, id, hole, .. } => {
                cx.cover("p2p.taken");
                if *hole {
                    cx.fail(format!(
                        "{me} took {id} from {from} across a hole in its chain"
                    ));
                }
                match l.sent.get(&(from.clone(), *id)) {
                    Some((_, to)) if to.contains(&me) => {}
                    other => cx.fail(format!(
                        "{me} took {id} from {from}, which sent it to {other:?}"
                    )),
                }
                let seen = l.taken.entry((self.host, from.clone())).or_default();
                if let Some(last) = seen.last() {
                    if *last >= *id {
                        cx.fail(format!(
                            "{me} took {id} from {from} after {last} (a duplicate or out of order)"
                        ));
                    }
                }
                seen.push(*id);
            }
            PeerEvent::Skipped { .. } => cx.cover("p2p.skipped"),
            PeerEvent::Delivered { to, id } => {
                cx.cover("p2p.delivered");
                let took = l.hosts.get(to).is_some_and(|&h| {
                    l.taken
                        .get(&(h, me.clone()))
                        .is_some_and(|t| t.contains(id))
                });
                if !took {
                    cx.fail(format!("{me} was told {to} took {id}, which it has not"));
                }
                l.delivered.insert((me.clone(), to.clone(), *id));
            }
            PeerEvent::Failed { to, id } => {
                cx.cover("p2p.failed");
                l.failed.insert((me.clone(), to.clone(), *id));
            }
            PeerEvent::LinkUp { .. } => cx.cover("p2p.link_up"),
            PeerEvent::LinkDown { .. } => cx.cover("p2p.link_down"),
            PeerEvent::DuplicateLink {
                kept,
                closed,
                kept_newer,
                crossed,
                ..
            } => {
                if *crossed {
                    cx.cover("p2p.crossed_dials");
                }
                cx.cover(if *kept_newer {
                    "p2p.duplicate_link_replaced"
                } else {
                    "p2p.duplicate_link_refused"
                });
                // (A simulated stream has one id at both ends.)
                let pair = ((*kept).min(*closed), (*kept).max(*closed));
                match l.link_choices.insert(pair, *kept) {
                    Some(other) if other != *kept => cx.fail(format!(
                        "one link per pair: {me} kept stream {kept} of {pair:?}, its peer kept {other}"
                    )),
                    _ => {}
                }
            }
            PeerEvent::Registered { .. } => cx.cover("p2p.registered"),
            PeerEvent::Forgotten => cx.cover("p2p.forgotten_registered_again"),
            PeerEvent::TrackerTrouble(_) => cx.cover("p2p.tracker_trouble"),
            PeerEvent::Refused { .. } => cx.cover("p2p.command_refused"),
            _ => {}
        }
    }
}

/// Watches the tracker.
struct TrackerWatch;

impl Observer<ChatNode> for TrackerWatch {
    fn event(&mut self, cx: &mut Cx, ev: &weaprous_core::chat::node::ChatEvent) {
        use weaprous_core::chat::node::ChatEvent;
        match ev {
            ChatEvent::PeerExpired { .. } => cx.cover("p2p.peer_expired"),
            ChatEvent::PeerLeft { .. } => cx.cover("p2p.peer_left"),
            _ => {}
        }
    }
}

/// One user action: at `at_ms`, a direct message to peer host `to`, or a broadcast.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Action {
    pub at_ms: u64,
    pub to: Option<HostId>,
}

/// A P2P-world run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct P2pScenario {
    pub seed: u64,
    pub peers: usize,
    /// Per peer host (1..=peers), what its user does.
    pub plan: BTreeMap<HostId, Vec<Action>>,
    /// How long a message waits for its recipient (seconds).
    pub message_ttl_s: u64,
    pub net: NetConfig,
    pub random: RandomFaults,
    pub faults: Vec<Timed>,
    pub phases: Phases,
}

impl P2pScenario {
    /// Swarm testing: the seed picks the fault families, a timeline in the first 30 s, and
    /// each user's messages.
    pub fn generate(seed: u64) -> Self {
        Self::with_peers(seed, 50)
    }

    /// `peers` peers and their messages on a healthy network.
    pub fn quiet(seed: u64, peers: usize) -> Self {
        let mut sc = Self::with_peers(seed, peers);
        sc.random = RandomFaults::default();
        sc.faults.clear();
        sc.net = NetConfig::default();
        sc
    }

    pub fn with_peers(seed: u64, peers: usize) -> Self {
        let mut r = rng::stream(seed, rng::PLAN);
        let heal_at_ms = 30_000;
        let random = RandomFaults::swarm(&mut r, 2_000);
        let mut faults = Vec::new();
        let n = if r.bool() { r.usize(1..=8) } else { 0 };
        let peer = |r: &mut fastrand::Rng| 1 + r.usize(..peers);
        for _ in 0..n {
            let at_ms = r.u64(0..heal_at_ms);
            let action = match r.u8(..9) {
                0 => FaultAction::Crash { host: peer(&mut r) },
                1 => FaultAction::Crash { host: SERVER },
                2 => FaultAction::Restart { host: peer(&mut r) },
                3 => FaultAction::Drain {
                    host: if r.bool() { SERVER } else { peer(&mut r) },
                },
                4 => FaultAction::Pause {
                    host: peer(&mut r),
                    ms: r.u64(100..=8_000),
                },
                5 => FaultAction::ResetAll { host: peer(&mut r) },
                6 => FaultAction::Partition {
                    from: (0..r.usize(1..=peers.min(10)))
                        .map(|_| peer(&mut r))
                        .collect(),
                    to: (0..r.usize(1..=peers.min(10)))
                        .map(|_| peer(&mut r))
                        .collect(),
                    one_way: r.bool(),
                },
                7 => FaultAction::Isolate { host: peer(&mut r) },
                _ => FaultAction::ClockJump {
                    host: peer(&mut r),
                    by_s: r.i64(-20..=20),
                },
            };
            faults.push(Timed { at_ms, action });
        }
        faults.sort_by_key(|t| t.at_ms);
        let mut plan = BTreeMap::new();
        for h in 1..=peers {
            let mut w = rng::stream(seed ^ ((h as u64) << 32), rng::WORKLOAD);
            let mut acts = Vec::new();
            for _ in 0..w.usize(0..=6) {
                let mut to = 1 + w.usize(..peers);
                if to == h {
                    to = 1 + (to % peers);
                }
                if to != h {
                    acts.push(Action {
                        at_ms: w.u64(3_000..25_000),
                        to: Some(to),
                    });
                }
            }
            if w.u8(..4) == 0 {
                acts.push(Action {
                    at_ms: w.u64(3_000..25_000),
                    to: None,
                });
            }
            plan.insert(h, acts);
        }
        // Some messages cross: the recipient writes back at the same moment, so both sides
        // dial each other at once (one link per pair must still come of it).
        let mut crossing = Vec::new();
        for (&h, acts) in &plan {
            for a in acts {
                if let Some(to) = a.to {
                    if r.u8(..4) == 0 {
                        crossing.push((
                            to,
                            Action {
                                at_ms: a.at_ms,
                                to: Some(h),
                            },
                        ));
                    }
                }
            }
        }
        for (h, a) in crossing {
            plan.entry(h).or_default().push(a);
        }
        for acts in plan.values_mut() {
            acts.sort_by_key(|a| a.at_ms);
        }
        let mut net = NetConfig::default();
        if r.u8(..4) == 0 {
            net.max_chunk = [1, 7, 100][r.usize(..3)];
        }
        // Mostly long enough to outlast every fault; sometimes short, so that messages to a
        // peer that is down or cut off fail, and their receivers are told.
        let message_ttl_s = [MESSAGE_TTL_S, MESSAGE_TTL_S, 4, 12][r.usize(..4)];
        P2pScenario {
            seed,
            peers,
            plan,
            message_ttl_s,
            net,
            random,
            faults,
            phases: Phases {
                heal_at_ms,
                converge_within_ms: 150_000,
            },
        }
    }
}

/// A peer host.
pub type PeerHost = MachineHost<PeerNode>;
/// The server host.
pub type ServerHost = MachineHost<ChatNode>;

fn server_config() -> ChatConfig {
    ChatConfig {
        tracker: TrackerPolicy::every(Duration::from_secs(1)),
        ..ChatConfig::new(
            host_addr(SERVER, PORT),
            BackendConfig::new("/www", "/static"),
            Arc::new(StandInHasher),
        )
    }
}

/// The server's log with every peer's account.
fn accounts(peers: usize) -> Vec<u8> {
    let mut log = Vec::new();
    for h in 1..=peers {
        let hash = StandInHasher.hash(&password(h), &[h as u8; 16]);
        let rec = AppRecord::Account(AccountRecord::Created {
            user: user(h),
            hash,
        });
        let payload = serde_json::to_vec(&rec).expect("a record");
        record::encode(&payload, &mut log);
    }
    log
}

fn peer_config(host: HostId, message_ttl_s: u64) -> PeerConfig {
    let mut cfg = PeerConfig::new(
        host_addr(host, UI_PORT),
        host_addr(host, P2P_PORT),
        host_addr(SERVER, PORT),
        &user(host),
        &password(host),
        BackendConfig::new("/www", "/static"),
    );
    cfg.message_ttl = Duration::from_secs(message_ttl_s);
    cfg.connect_timeout = Duration::from_secs(3);
    cfg.link = LinkTimers {
        handshake: Duration::from_secs(5),
        keepalive: Duration::from_secs(3),
        silence: Duration::from_secs(10),
    };
    cfg
}

fn build(sc: &P2pScenario, keep: Keep) -> (Sim, Shared) {
    let ledger: Shared = Rc::default();
    let sc2 = sc.clone();
    let shared = ledger.clone();
    let factory = Box::new(move |host: HostId, _disk: &Disk| -> Box<dyn Node> {
        if host == SERVER {
            let node = ChatNode::new(server_config());
            return Box::new(MachineHost::new(node, sc2.seed, Box::new(TrackerWatch)));
        }
        let watch = PeerWatch {
            host,
            ledger: shared.clone(),
        };
        let seed = sc2.seed ^ ((host as u64) << 20);
        let mut h = MachineHost::new(
            PeerNode::new(peer_config(host, sc2.message_ttl_s)),
            seed,
            Box::new(watch),
        )
        .supervised();
        for (i, a) in sc2.plan.get(&host).into_iter().flatten().enumerate() {
            let at = Instant::ZERO + Duration::from_millis(a.at_ms);
            let text = format!(
                "{} #{i} from {}",
                if a.to.is_some() { "hello" } else { "all" },
                user(host)
            );
            let cmd = match a.to {
                Some(to) => PeerCommand::Send {
                    peer: user(to),
                    text,
                },
                None => PeerCommand::Broadcast { text },
            };
            h.schedule_command(at, cmd);
        }
        Box::new(h)
    });
    let mut disks: Vec<Disk> = (0..=sc.peers).map(|_| Disk::default()).collect();
    disks[SERVER].seed_log(CHAT_LOG, &accounts(sc.peers));
    let mut sim = Sim::new(
        sc.seed,
        sc.net.clone(),
        sc.random.clone(),
        disks,
        keep,
        factory,
    );
    sim.schedule(&sc.faults, &sc.phases);
    (sim, ledger)
}

fn peer(sim: &Sim, h: HostId) -> Option<&PeerHost> {
    sim.node(h)
        .and_then(|n| n.as_any().downcast_ref::<PeerHost>())
}

fn server(sim: &Sim) -> Option<&ChatNode> {
    sim.node(SERVER)
        .and_then(|n| n.as_any().downcast_ref::<ServerHost>())
        .map(ServerHost::node)
}

/// Why peer `h` is not done, if it is not.
fn peer_unsettled(sim: &Sim, sc: &P2pScenario, h: HostId) -> Option<String> {
    let Some(p) = peer(sim, h) else {
        return Some(format!("peer {h} is down"));
    };
    let n = p.node();
    if !n.is_ready() {
        return Some(format!("peer {h} is not ready"));
    }
    if !n.registered() {
        return Some(format!("peer {h} is not registered"));
    }
    if p.commands_left() > 0 {
        return Some(format!("peer {h} has {} actions to do", p.commands_left()));
    }
    if let Some(to) = n.state().outbox.recipients().next() {
        return Some(format!(
            "peer {h} still waits on {to} ({} entries)",
            n.waiting_for(to)
        ));
    }
    if n.listed().len() != sc.peers - 1 {
        return Some(format!("peer {h} sees {} peers listed", n.listed().len()));
    }
    None
}

fn tracker_unsettled(sim: &Sim, sc: &P2pScenario) -> Option<String> {
    let s = server(sim)?;
    let listed = s.tracker().len();
    (listed != sc.peers).then(|| format!("the tracker lists {listed} peers"))
}

/// The P2P world, for the shared harness ([`crate::world`]).
pub struct P2pWorld;

impl World for P2pWorld {
    type Scenario = P2pScenario;
    type State = Shared;
    const NAME: &'static str = "p2p";
    const COVERAGE: &'static [&'static str] = P2P_COVERAGE;

    fn seed(sc: &P2pScenario) -> u64 {
        sc.seed
    }
    fn faults_mut(sc: &mut P2pScenario) -> FaultsMut<'_> {
        FaultsMut {
            net: &mut sc.net,
            random: &mut sc.random,
            faults: &mut sc.faults,
            phases: &mut sc.phases,
        }
    }
    fn build(sc: &P2pScenario, keep: Keep) -> (Sim, Shared) {
        build(sc, keep)
    }
    fn settled(sim: &Sim, _: &Shared) -> bool {
        let peers = sim.hosts() - 1;
        let sc_peers = peers;
        server(sim).is_some_and(|s| s.tracker().len() == sc_peers)
            && (1..=peers).all(|h| {
                peer(sim, h).is_some_and(|p| {
                    let n = p.node();
                    n.is_ready()
                        && n.registered()
                        && p.commands_left() == 0
                        && n.state().outbox.recipients().next().is_none()
                        && n.listed().len() == sc_peers - 1
                })
            })
    }
    fn unsettled(sc: &P2pScenario, sim: &Sim, _: &Shared) -> String {
        let mut why: Vec<String> = tracker_unsettled(sim, sc).into_iter().collect();
        why.extend(
            (1..=sc.peers)
                .filter_map(|h| peer_unsettled(sim, sc, h))
                .take(5),
        );
        format!(
            "convergence: {} ms after the heal: {}",
            sc.phases.converge_within_ms,
            why.join("; ")
        )
    }
    fn check_end(sc: &P2pScenario, sim: &Sim, ledger: &Shared) -> Result<(), String> {
        let l = ledger.borrow();
        for ((origin, id), (kind, to)) in &l.sent {
            if *kind == Kind::Broadcast && to.len() > sc.peers - 1 {
                return Err(format!(
                    "bounded: broadcast {origin}/{id} went to {} peers",
                    to.len()
                ));
            }
            for r in to {
                let Some(&rh) = l.hosts.get(r) else {
                    return Err(format!(
                        "valid: {origin}/{id} went to {r}, no peer of this world"
                    ));
                };
                let taken = l
                    .taken
                    .get(&(rh, origin.clone()))
                    .is_some_and(|t| t.contains(id));
                let failed = l.failed.contains(&(origin.clone(), r.clone(), *id));
                if !taken && !failed {
                    return Err(format!(
                        "delivered or failed: {origin}/{id} ({kind:?}) to {r} (host {rh}) was neither taken nor reported failed; {r} took {:?} from {origin}; reported delivered: {}",
                        l.taken.get(&(rh, origin.clone())),
                        l.delivered.contains(&(origin.clone(), r.clone(), *id)),
                    ) + &format!("; at its origin: {:?}; the recipient's mark for it: {:?}",
                        l.hosts.get(origin).and_then(|&oh| peer(sim, oh)).map(|p| p.node().state().sent_entry(*id).map(|e| e.fates.clone())),
                        peer(sim, rh).map(|p| p.node().state().marks.get(origin).copied())));
                }
            }
        }
        let s = server(sim).ok_or("the tracker is down at the end")?;
        let now = sim.now();
        let entries: Vec<_> = s.tracker().peers(now).collect();
        if entries.len() != sc.peers {
            return Err(format!(
                "tracker: {} entries for {} peers",
                entries.len(),
                sc.peers
            ));
        }
        for e in entries {
            let h: HostId = e
                .name
                .strip_prefix("peer")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("tracker: an entry for {}", e.name))?;
            if l.ids.get(&h) != Some(&e.id) {
                return Err(format!(
                    "tracker: {} is listed as {}, its id is {:?}",
                    e.name,
                    e.id,
                    l.ids.get(&h)
                ));
            }
            if std::net::SocketAddr::new(e.ip, e.port) != host_addr(h, P2P_PORT) {
                return Err(format!("tracker: {} at {}:{}", e.name, e.ip, e.port));
            }
        }
        for h in 1..=sc.peers {
            if let Some(why) = peer_unsettled(sim, sc, h) {
                return Err(format!("convergence: {why}"));
            }
        }
        // One link per pair: where both ends hold a link to each other, it is the same one.
        let me_of = |h: HostId| l.ids.get(&h).cloned().unwrap_or_default();
        for a in 1..=sc.peers {
            let Some(pa) = peer(sim, a) else { continue };
            for (b_id, conn) in pa.node().linked() {
                let Some(&b) = l.hosts.get(b_id) else {
                    continue;
                };
                let Some(pb) = peer(sim, b) else { continue };
                let back = pb
                    .node()
                    .linked()
                    .find(|(p, _)| *p == me_of(a))
                    .map(|(_, c)| c);
                if back.is_some_and(|c| c != conn) {
                    return Err(format!(
                        "one link per pair: {} keeps stream {conn} to {b_id}, which keeps stream {back:?}",
                        me_of(a)
                    ));
                }
            }
        }
        Ok(())
    }
    fn answered(_sim: &Sim) -> usize {
        0
    }
    fn smaller(sc: &P2pScenario) -> Vec<P2pScenario> {
        let mut out = Vec::new();
        for peers in [sc.peers / 2, 2] {
            if peers >= 2 && peers < sc.peers {
                let mut c = sc.clone();
                c.peers = peers;
                c.plan.retain(|&h, _| h <= peers);
                for acts in c.plan.values_mut() {
                    acts.retain(|a| a.to.is_none_or(|t| t <= peers));
                }
                c.faults
                    .retain(|t| fault_hosts(&t.action).iter().all(|&h| h <= peers));
                out.push(c);
            }
        }
        let mut fewer = sc.clone();
        for acts in fewer.plan.values_mut() {
            acts.truncate(acts.len() / 2);
        }
        if fewer != *sc {
            out.push(fewer);
        }
        out
    }
}

/// Runs `sc` with every oracle; `Ok` carries the coverage.
pub fn run(sc: &P2pScenario, keep: Keep) -> Result<crate::coverage::Coverage, String> {
    world::run::<P2pWorld>(sc, keep)
        .map(|s| s.coverage)
        .map_err(|f| format!("seed {}: {}", f.seed, f.message))
}
