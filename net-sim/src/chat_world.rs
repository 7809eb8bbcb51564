//! The chat world: the chat server's node (`weaprous_core::chat::node::ChatNode`, with its
//! connections in app mode) on a [`MachineHost`], and fifty simulated browsers
//! ([`crate::chat_browser`]) that register, sign in, hold an event stream and post, under
//! swarm-chosen faults: crashes and restarts of the server (its disk keeps only what was
//! synced), graceful restarts, pauses, resets, partitions (one-way too), clogs, clock jumps
//! and disk errors on the log.
//!
//! # Oracles
//! The browsers check what a client can as answers arrive (see [`crate::chat_browser`]: who a
//! session opens, one order, no duplicate and no hidden gap on a stream, presence). At the end
//! the world checks:
//! * **Durability**: every message a post was answered with is in the server's log on disk,
//!   at the (channel, seq) its answer named, with its author and text.
//! * **One order, on disk**: every message any browser saw is on disk as it saw it; each
//!   channel's seqs and the server's positions are dense.
//! * **Nothing forged**: no message sent from a foreign `Origin` is stored.
//! * **Convergence** (liveness): after the heal, within the bound, every browser has done its
//!   work and shows every message the server holds.
//!
//! The password hasher is [`StandInHasher`]: the world tests the protocol around hashing (jobs
//! off the loop, answered in any order), not argon2.

use crate::chat_browser::{Browser, Ledger, PORT, SERVER};
use crate::disk::Disk;
use crate::engine::Cx;
use crate::engine::{host_addr, Node, Sim};
use crate::host::{MachineHost, Observer};
use crate::rng;
use crate::scenario::{FaultAction, HostId, NetConfig, Phases, RandomFaults, Timed};
use crate::stream_client::{Script, StreamClient};
use crate::trace::Keep;
use crate::world::{self, fault_hosts, FaultsMut, World};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use weaprous_core::backend::BackendConfig;
use weaprous_core::chat::channels::Record;
use weaprous_core::chat::node::{AppRecord, ChatConfig, ChatEvent, ChatNode, MAX_RECORD};
use weaprous_core::chat::snapshot;
use weaprous_core::web::accounts::StandInHasher;

/// The "sometimes" counters a sweep of this world must reach.
pub const CHAT_COVERAGE: &[&str] = &[
    "chat.post_acked",
    "chat.event_in_order",
    "chat.presence_seen",
    "chat.forged_session_refused",
    "chat.cross_origin_refused",
    "chat.stream_resumed",
    "chat.stream_silent",
    "chat.unavailable_retried",
    "chat.retried_post_got_original",
    "chat.answer_overdue",
    "chat.shutdown_event",
    "chat.reset_announced",
    "chat.reset_backfilled",
    "chat.register_retry_found_taken",
    "chat.password_changed",
    "chat.snapshot_done",
    "chat.snapshot_failed",
    "host.job_done",
    "host.drain",
    "node.crash",
    "node.crash_during_write",
];

/// Records appended between two snapshots of the server's log.
pub const SNAPSHOT_EVERY: u64 = 100;

/// Counts what the server does that the browsers cannot see.
struct ServerWatch;

impl Observer<ChatNode> for ServerWatch {
    fn event(&mut self, cx: &mut Cx, ev: &ChatEvent) {
        match ev {
            ChatEvent::Compacting(_) if cx.faults_on() => {
                cx.cover("chat.snapshot_started_under_faults")
            }
            ChatEvent::Compacting(_) => cx.cover("chat.snapshot_started"),
            ChatEvent::Compacted { .. } => cx.cover("chat.snapshot_done"),
            ChatEvent::CompactionFailed => cx.cover("chat.snapshot_failed"),
            ChatEvent::Recovered { cut, .. } if *cut > 0 => cx.cover("chat.torn_tail_cut"),
            ChatEvent::LogFailed => cx.cover("chat.log_failed"),
            _ => {}
        }
    }
}

/// A chat-world run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatScenario {
    pub seed: u64,
    pub browsers: usize,
    /// Each browser posts up to this many messages (the seed says how many).
    pub max_posts: usize,
    pub net: NetConfig,
    pub random: RandomFaults,
    pub faults: Vec<Timed>,
    pub phases: Phases,
}

impl ChatScenario {
    /// Swarm testing: the seed picks the fault families and a timeline in the first 30 s.
    pub fn generate(seed: u64) -> Self {
        let mut r = rng::stream(seed, rng::PLAN);
        let browsers = 50;
        let heal_at_ms = 30_000;
        let random = RandomFaults::swarm(&mut r, 2_000);
        let mut faults = Vec::new();
        let n = if r.bool() { r.usize(1..=6) } else { 0 };
        for _ in 0..n {
            let at_ms = r.u64(0..heal_at_ms);
            let browser = 1 + r.usize(..browsers);
            let action = match r.u8(..8) {
                0 => FaultAction::Crash { host: SERVER },
                1 => FaultAction::Restart { host: SERVER },
                2 => FaultAction::Drain { host: SERVER },
                3 => FaultAction::Pause {
                    host: if r.bool() { SERVER } else { browser },
                    ms: r.u64(100..=5_000),
                },
                4 => FaultAction::ResetAll { host: SERVER },
                5 => FaultAction::Partition {
                    from: (0..r.usize(1..=10))
                        .map(|_| 1 + r.usize(..browsers))
                        .collect(),
                    to: vec![SERVER],
                    one_way: r.bool(),
                },
                6 => FaultAction::Isolate { host: browser },
                // Well inside a session's idle expiry (14 days).
                _ => FaultAction::ClockJump {
                    host: if r.bool() { SERVER } else { browser },
                    by_s: r.i64(-3_600..=3_600),
                },
            };
            faults.push(Timed { at_ms, action });
        }
        faults.sort_by_key(|t| t.at_ms);
        let mut net = NetConfig::default();
        if r.u8(..4) == 0 {
            net.max_chunk = [1, 7, 100][r.usize(..3)];
        }
        ChatScenario {
            seed,
            browsers,
            max_posts: 40,
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

/// A browser host.
pub type BrowserHost = StreamClient<Browser>;
/// The server host.
pub type ServerHost = MachineHost<ChatNode>;

fn config() -> ChatConfig {
    let site = BackendConfig::new("/www", "/static");
    ChatConfig {
        // Snapshots every hundred records, so that crashes and disk errors meet them.
        snapshots: snapshot::Policy {
            every: Some(SNAPSHOT_EVERY),
            ..snapshot::Policy::default()
        },
        ..ChatConfig::new(host_addr(SERVER, PORT), site, Arc::new(StandInHasher))
    }
}

fn build(sc: &ChatScenario, keep: Keep) -> (Sim, Ledger) {
    let ledger = Ledger::default();
    let sc2 = sc.clone();
    let shared = ledger.clone();
    let factory = Box::new(move |host: HostId, _disk: &Disk| -> Box<dyn Node> {
        if host == SERVER {
            let node = ChatNode::new(config());
            Box::new(MachineHost::new(node, sc2.seed, Box::new(ServerWatch)))
        } else {
            let mut r = rng::stream(sc2.seed ^ ((host as u64) << 32), rng::WORKLOAD);
            let posts = r.usize(sc2.max_posts.min(5)..=sc2.max_posts);
            let start_ms = r.u64(0..15_000);
            Box::new(BrowserHost::new(Browser::new(
                sc2.seed,
                host,
                shared.clone(),
                posts,
                start_ms,
            )))
        }
    });
    let disks = (0..=sc.browsers).map(|_| Disk::default()).collect();
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

fn browser(sim: &Sim, h: HostId) -> Option<&Browser> {
    sim.node(h)
        .and_then(|n| n.as_any().downcast_ref::<BrowserHost>())
        .map(BrowserHost::script)
}

fn server(sim: &Sim) -> Option<&ChatNode> {
    sim.node(SERVER)
        .and_then(|n| n.as_any().downcast_ref::<ServerHost>())
        .map(ServerHost::node)
}

fn browsers(sim: &Sim) -> impl Iterator<Item = Option<&Browser>> + '_ {
    (1..sim.hosts()).map(|h| browser(sim, h))
}

/// The messages in the log on disk: (channel, seq) → (pos, author, text).
type Stored = BTreeMap<(String, u64), (u64, String, String)>;

/// What the slot the server would start from holds.
fn stored(disk: &Disk) -> Result<Stored, String> {
    let slots = [snapshot::SLOTS[0], snapshot::SLOTS[1]].map(|s| disk.read_log(s));
    let records = snapshot::active_records(slots, MAX_RECORD)
        .map_err(|e| format!("durability: a log record that is not one: {e}"))?
        .map(|(_, r)| r)
        .unwrap_or_default();
    let mut out = Stored::new();
    for rec in records {
        if let AppRecord::Chat(Record::Message(m)) = rec {
            out.insert((m.channel, m.seq), (m.pos, m.author, m.text));
        }
    }
    Ok(out)
}

/// The chat world, for the shared harness ([`crate::world`]).
pub struct ChatWorld;

impl World for ChatWorld {
    type Scenario = ChatScenario;
    type State = Ledger;
    const NAME: &'static str = "chat";
    const COVERAGE: &'static [&'static str] = CHAT_COVERAGE;

    fn seed(sc: &ChatScenario) -> u64 {
        sc.seed
    }
    fn faults_mut(sc: &mut ChatScenario) -> FaultsMut<'_> {
        FaultsMut {
            net: &mut sc.net,
            random: &mut sc.random,
            faults: &mut sc.faults,
            phases: &mut sc.phases,
        }
    }
    fn build(sc: &ChatScenario, keep: Keep) -> (Sim, Ledger) {
        build(sc, keep)
    }
    /// Every browser is done and shows as many messages as the server holds, on an open stream.
    fn settled(sim: &Sim, _: &Ledger) -> bool {
        let Some(total) = server(sim).map(|n| n.chat().applied_pos()) else {
            return false;
        };
        browsers(sim)
            .all(|b| b.is_some_and(|b| b.done() && b.streaming() && b.shown.len() as u64 == total))
    }
    fn unsettled(sc: &ChatScenario, sim: &Sim, _: &Ledger) -> String {
        let total = server(sim).map(|n| n.chat().applied_pos());
        let stuck: Vec<String> = browsers(sim)
            .flatten()
            .filter(|b| !(b.done() && b.streaming() && Some(b.shown.len() as u64) == total))
            .take(5)
            .map(Script::describe)
            .collect();
        format!(
            "convergence: {} ms after the heal the server holds {total:?} messages, and: {}",
            sc.phases.converge_within_ms,
            stuck.join("; ")
        )
    }
    fn check_end(_: &ChatScenario, sim: &Sim, ledger: &Ledger) -> Result<(), String> {
        let disk = stored(sim.disk(SERVER))?;
        let seen = ledger.borrow();
        for (channel, seq, author, text) in &seen.acked {
            match disk.get(&(channel.clone(), *seq)) {
                Some((_, a, t)) if a == author && t == text => {}
                other => {
                    return Err(format!(
                        "durability: {channel}#{seq} by {author} {text:?} was acknowledged, the log holds {other:?}"
                    ))
                }
            }
        }
        for (key, val) in &seen.by_seq {
            if disk.get(key) != Some(val) {
                return Err(format!(
                    "one order: {key:?} was seen as {val:?}, the log holds {:?}",
                    disk.get(key)
                ));
            }
        }
        let mut per_channel: BTreeMap<&str, u64> = BTreeMap::new();
        let mut positions = BTreeSet::new();
        for ((channel, seq), (pos, _, text)) in &disk {
            let last = per_channel.entry(channel).or_default();
            if *seq != *last + 1 {
                return Err(format!("one order: {channel} holds seq {seq} after {last}"));
            }
            *last = *seq;
            positions.insert(*pos);
            if text.starts_with("forged by evil") {
                return Err(format!(
                    "nothing forged: {channel}#{seq} {text:?} is stored"
                ));
            }
        }
        let n = positions.len() as u64;
        if positions.iter().copied().ne(1..=n) {
            return Err(format!("one order: the log's positions are not 1..={n}"));
        }
        for b in browsers(sim).flatten() {
            if b.shown.len() as u64 != n || b.shown.keys().copied().ne(1..=n) {
                return Err(format!(
                    "convergence: {} shows {} messages, the log holds {n}",
                    b.user,
                    b.shown.len()
                ));
            }
        }
        Ok(())
    }
    fn answered(sim: &Sim) -> usize {
        browsers(sim).flatten().map(|b| b.answered).sum()
    }
    fn smaller(sc: &ChatScenario) -> Vec<ChatScenario> {
        let mut out = Vec::new();
        for browsers in [sc.browsers / 2, 1] {
            if browsers >= 1 && browsers < sc.browsers {
                let mut c = sc.clone();
                c.browsers = browsers;
                c.faults
                    .retain(|t| fault_hosts(&t.action).iter().all(|&h| h <= browsers));
                out.push(c);
            }
        }
        for max_posts in [sc.max_posts / 2, 1] {
            if max_posts >= 1 && max_posts < sc.max_posts {
                let mut c = sc.clone();
                c.max_posts = max_posts;
                out.push(c);
            }
        }
        out
    }
}

/// Runs `sc` with every oracle; `Ok` carries the coverage.
pub fn run(sc: &ChatScenario, keep: Keep) -> Result<crate::coverage::Coverage, String> {
    world::run::<ChatWorld>(sc, keep)
        .map(|s| s.coverage)
        .map_err(|f| format!("seed {}: {}", f.seed, f.message))
}
