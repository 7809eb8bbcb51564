//! What a run is made of, as plain serializable values: the network's knobs, the random fault
//! rates, and a timeline of faults. A world (such as [`crate::backend`]) adds its topology and
//! workload; together they are a scenario that `sim --replay` reads back and proptest shrinks.
//!
//! Times are milliseconds of simulated time; probabilities are parts per million, so a scenario
//! holds integers only and replays bit for bit.

use serde::{Deserialize, Serialize};

/// A host, by index (the world says which index is which node).
pub type HostId = usize;

/// One-way latency of a link, sampled per segment: `min + uniform(0..=2*mean)`, and with
/// probability `tail_ppm` that value doubled 1..=`tail_doublings` times (a heavy tail: a
/// retransmission, a congested queue), capped at `max`. Each ordered pair of hosts also gets a
/// stable extra delay in `0..=mean` (some paths are simply longer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub min_us: u64,
    pub mean_us: u64,
    pub tail_ppm: u32,
    pub tail_doublings: u32,
    pub max_us: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            min_us: 50,
            mean_us: 1_000,
            tail_ppm: 20_000,
            tail_doublings: 8,
            max_us: 2_000_000,
        }
    }
}

/// The network's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    pub latency: Latency,
    /// Largest segment a write is cut into (1 = byte by byte).
    pub max_chunk: usize,
    /// Bytes a sender may have in flight on one stream (the receive window).
    pub window: usize,
    /// How long a connect to an unreachable host takes to fail (SYN retries give up).
    pub syn_timeout_ms: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency: Latency::default(),
            max_chunk: 1500,
            window: 64 * 1024,
            syn_timeout_ms: 10_000,
        }
    }
}

/// Fault rates that apply during the fault window (all off after the heal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomFaults {
    /// Per segment sent: the stream is reset (both ends get RST).
    pub reset_ppm: u32,
    /// Per connect: refused at once.
    pub refuse_ppm: u32,
    /// Per connect: no answer until `syn_timeout_ms`.
    pub connect_timeout_ppm: u32,
    /// Per segment: the link it travels is clogged (held) for up to `clog_ms`.
    pub clog_ppm: u32,
    pub clog_ms: u64,
    /// Per file read: EIO.
    pub disk_read_error_ppm: u32,
    /// Per log append or sync: EIO.
    pub disk_write_error_ppm: u32,
    /// Each host's clock drifts by up to this much (ppm, either way).
    pub max_drift_ppm: i64,
    /// BUGGIFY: sites activate with this probability per run (0 = off) and then fire with
    /// `buggify_fire_ppm` per call.
    pub buggify_activate_ppm: u32,
    pub buggify_fire_ppm: u32,
}

impl RandomFaults {
    /// Swarm testing's choice of random faults for a world of one node and its clients: each
    /// family (resets of up to `max_reset_ppm`, clogs, disk errors) on or off as `r` says,
    /// clocks drifting by up to 500 ppm.
    pub fn swarm(r: &mut fastrand::Rng, max_reset_ppm: u32) -> RandomFaults {
        let mut random = RandomFaults {
            max_drift_ppm: 500,
            ..RandomFaults::default()
        };
        if r.bool() {
            random.reset_ppm = r.u32(100..=max_reset_ppm);
        }
        if r.bool() {
            random.clog_ppm = r.u32(100..=2_000);
            random.clog_ms = r.u64(10..=3_000);
        }
        if r.bool() {
            random.disk_write_error_ppm = r.u32(1_000..=50_000);
            // A log read at start fails too, now and then (the node retries later).
            random.disk_read_error_ppm = r.u32(50_000..=300_000);
        }
        random
    }
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultAction {
    /// Nothing from `from` reaches `to` (and, unless `one_way`, nothing from `to` reaches
    /// `from`). Segments wait (TCP retransmits them) until the partition heals.
    Partition {
        from: Vec<HostId>,
        to: Vec<HostId>,
        one_way: bool,
    },
    /// The host can reach nobody and nobody can reach it.
    Isolate { host: HostId },
    /// Segments from `from` to `to` are held for `ms`, then released in order.
    Clog { from: HostId, to: HostId, ms: u64 },
    /// The host loses power: memory and unsynced writes are gone, peers hear nothing.
    Crash { host: HostId },
    /// A crashed host comes back with a new epoch (its old timers never fire).
    Restart { host: HostId },
    /// The host stops processing for `ms` (a GC pause, a stopped VM), then catches up.
    Pause { host: HostId, ms: u64 },
    /// The host's wall clock steps by `by_s` seconds (either way).
    ClockJump { host: HostId, by_s: i64 },
    /// Every stream with an end at the host is reset.
    ResetAll { host: HostId },
    /// A graceful restart (SIGTERM, then the service manager starts it again): the host stops
    /// accepting, its machines get `Drain`, and once its connections are done (or a grace
    /// period passed) it restarts with its disk intact.
    Drain { host: HostId },
}

/// A fault at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    pub at_ms: u64,
    pub action: FaultAction,
}

/// The phases of a run: faults until `heal_at_ms`, then everything is repaired (partitions and
/// clogs lifted, crashed hosts restarted, paused hosts resumed, random faults off) and the
/// world's liveness oracles must pass within `converge_within_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    pub heal_at_ms: u64,
    pub converge_within_ms: u64,
}
