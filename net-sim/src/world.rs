//! What a world is, and the one harness every world runs in.
//!
//! A world is three things a scenario chooses, and its oracles:
//! * **topology and workload**: which node runs on which host and what the clients do
//!   ([`World::build`]);
//! * **faults**: the network's shape, random fault rates, a timeline of faults and the phases
//!   (the same [`crate::scenario`] values in every world, reached through
//!   [`World::faults_mut`]);
//! * **oracles**: safety checks that fail the run from inside the simulator as soon as they
//!   break (clients and observers do that), and the checks at the end that only the world can
//!   state ([`World::settled`], [`World::unsettled`], [`World::check_end`]).
//!
//! # The harness
//! [`run`] is the same for every world: build, run with faults until the heal, then run until
//! the world is settled or the liveness bound (`heal + converge_within_ms`) passes. A world
//! not settled at the bound fails with the world's account of what is unfinished; a settled
//! one (or one that did settle) then passes its end checks. So a new world writes what it is
//! made of and what must hold, never a driver loop or a heal schedule.
//!
//! # Shrinking
//! [`shrink`] works for any world: it tries the fault simplifications every world shares
//! (dropping each timed fault, switching off each random rate, plain latency and segments)
//! and the world's own ([`World::smaller`]: fewer clients, fewer requests), keeping each that
//! still fails with the same oracle.

use crate::coverage::Coverage;
use crate::engine::Sim;
use crate::scenario::{FaultAction, HostId, NetConfig, Phases, RandomFaults, Timed};
use crate::trace::{first_divergence, Keep};
use serde::de::DeserializeOwned;
use serde::Serialize;
use weaprous_core::time::{Duration, Instant};

/// The faults half of a scenario, borrowed from it.
pub struct FaultsMut<'a> {
    pub net: &'a mut NetConfig,
    pub random: &'a mut RandomFaults,
    pub faults: &'a mut Vec<Timed>,
    pub phases: &'a mut Phases,
}

/// A world: its scenario type, how it is built, and what must hold at its end.
pub trait World {
    /// A run of this world as plain serializable values (saved failures are this, as JSON).
    type Scenario: Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + 'static;
    /// What the world keeps beside the simulator for its end checks (a ledger shared with
    /// its hosts, say); `()` when nothing.
    type State;
    /// The world's name, as `sim --world` spells it.
    const NAME: &'static str;
    /// The "sometimes" counters a fault sweep of this world must reach.
    const COVERAGE: &'static [&'static str];

    fn seed(sc: &Self::Scenario) -> u64;
    /// The scenario's faults half.
    fn faults_mut(sc: &mut Self::Scenario) -> FaultsMut<'_>;
    /// The simulator with every host of the topology and its workload, and the scenario's
    /// faults scheduled.
    fn build(sc: &Self::Scenario, keep: Keep) -> (Sim, Self::State);
    /// The workload is over and every connection it opened (save long-lived ones the world
    /// declares) is closed. Asked after every event once healed, so it must be cheap.
    fn settled(sim: &Sim, state: &Self::State) -> bool;
    /// What is unfinished when the bound passed before the world settled (the liveness
    /// failure's message).
    fn unsettled(sc: &Self::Scenario, sim: &Sim, state: &Self::State) -> String;
    /// The checks at the end of a settled run.
    fn check_end(sc: &Self::Scenario, sim: &Sim, state: &Self::State) -> Result<(), String>;
    /// How many answers the clients checked (for reports).
    fn answered(sim: &Sim) -> usize;
    /// One-step simplifications of the topology and workload, for [`shrink`]. A candidate
    /// that removes hosts also drops the faults that name them ([`fault_hosts`]).
    fn smaller(sc: &Self::Scenario) -> Vec<Self::Scenario>;
}

/// What every world's run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    pub responses: usize,
    pub events: u64,
    pub trace_hash: u64,
    pub coverage: Coverage,
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

/// A finished run, with the simulator kept for worlds that report more than [`Summary`].
pub struct Finished<W: World> {
    pub sim: Sim,
    pub state: W::State,
    pub result: Result<(), String>,
}

/// The heal and the liveness bound of `sc`.
fn heal_and_bound<W: World>(sc: &W::Scenario) -> (Instant, Instant) {
    let mut sc = sc.clone();
    let p = W::faults_mut(&mut sc).phases.clone();
    let heal = Instant::ZERO + Duration::from_millis(p.heal_at_ms);
    (heal, heal + Duration::from_millis(p.converge_within_ms))
}

/// Runs `sc` through the harness (see the module docs) and keeps the simulator.
pub fn run_full<W: World>(sc: &W::Scenario, keep: Keep) -> Finished<W> {
    let (mut sim, state) = W::build(sc, keep);
    let (heal, bound) = heal_and_bound::<W>(sc);
    let result = (|| {
        sim.run_until(heal, |_| false)?;
        sim.run_until(bound, |s| W::settled(s, &state))?;
        if !W::settled(&sim, &state) {
            return Err(W::unsettled(sc, &sim, &state));
        }
        W::check_end(sc, &sim, &state)
    })();
    Finished { sim, state, result }
}

/// Runs `sc` with every oracle of its world.
pub fn run<W: World>(sc: &W::Scenario, keep: Keep) -> Result<Summary, Failure> {
    let f = run_full::<W>(sc, keep);
    match f.result {
        Ok(()) => Ok(Summary {
            responses: W::answered(&f.sim),
            events: f.sim.trace().events(),
            trace_hash: f.sim.trace().hash(),
            coverage: f.sim.coverage().clone(),
        }),
        Err(message) => Err(Failure {
            seed: W::seed(sc),
            message,
            trace_tail: f.sim.trace().tail(),
        }),
    }
}

/// Runs `sc` twice. `Ok` if the traces are identical; else the first event at which they
/// differ, with that event's line from each run.
pub fn determinism<W: World>(sc: &W::Scenario) -> Result<u64, String> {
    compare::<W>(sc, sc)
}

/// Runs `a` and `b` and compares their traces event by event: `Ok(hash)` when identical, else
/// the first event at which they differ, with that event's line from each run.
pub fn compare<W: World>(a: &W::Scenario, b: &W::Scenario) -> Result<u64, String> {
    let keep = Keep {
        hashes: true,
        ..Keep::default()
    };
    let (ha, hb) = (trace_hashes::<W>(a, keep), trace_hashes::<W>(b, keep));
    match first_divergence(&ha, &hb) {
        None => Ok(ha.last().copied().unwrap_or(0)),
        Some(i) => {
            let line = |sc: &W::Scenario| {
                let keep = Keep {
                    line_of: Some(i as u64),
                    ..Keep::default()
                };
                let sim = drive::<W>(sc, keep);
                sim.trace()
                    .chosen_line()
                    .unwrap_or("(run ended before it)")
                    .to_string()
            };
            Err(format!(
                "seed {}: runs diverge at event #{i}:\n  first run:  {}\n  second run: {}",
                W::seed(a),
                line(a),
                line(b)
            ))
        }
    }
}

/// The whole run to the bound, oracles aside (a failure stops it where it happened).
fn drive<W: World>(sc: &W::Scenario, keep: Keep) -> Sim {
    let (mut sim, _state) = W::build(sc, keep);
    let (_, bound) = heal_and_bound::<W>(sc);
    let _ = sim.run_until(bound, |_| false);
    sim
}

fn trace_hashes<W: World>(sc: &W::Scenario, keep: Keep) -> Vec<u64> {
    drive::<W>(sc, keep).trace().hashes().to_vec()
}

/// Runs `sc` with its trace tail kept (for replays of saved files), and says how it went.
pub fn replay<W: World>(sc: &W::Scenario) -> Result<String, String> {
    let keep = Keep {
        tail: true,
        ..Keep::default()
    };
    match run::<W>(sc, keep) {
        Ok(r) => Ok(format!(
            "passed: {} responses, {} events, trace {:016x}",
            r.responses, r.events, r.trace_hash
        )),
        Err(f) => Err(f.to_string()),
    }
}

/// Writes `sc` as `DIR/fail-NAME-SEED.json` and its trace tail beside it; returns the one
/// command that replays it.
pub fn save_failure<W: World>(dir: &str, name: &str, sc: &W::Scenario) -> String {
    let _ = std::fs::create_dir_all(dir);
    let path = format!("{dir}/fail-{name}-{}.json", W::seed(sc));
    let _ = std::fs::write(&path, serde_json::to_string_pretty(sc).unwrap_or_default());
    let detail = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| replay::<W>(sc)))
        .map(|r| r.err().unwrap_or_else(|| "(passed on replay)".into()))
        .unwrap_or_else(|_| "(panicked on replay: run the command below)".into());
    let _ = std::fs::write(format!("{path}.trace"), detail);
    format!(
        "cargo run --release -p weaprous-net-sim --bin sim -- --world {} --replay {path}",
        W::NAME
    )
}

/// Greedy shrinking of a failing scenario (delta debugging): tries each one-step
/// simplification in turn (the shared fault ones, then the world's own, then a plainer
/// network), keeping every change after which the run still fails with an error that starts
/// the same way (the same oracle). Stops when no single change keeps it failing. `log` hears
/// each accepted step.
pub fn shrink<W: World>(sc: &W::Scenario, mut log: impl FnMut(&str)) -> W::Scenario {
    let key = |m: &str| m.split(':').next().unwrap_or(m).to_string();
    let Err(first) = run::<W>(sc, Keep::default()) else {
        log("the scenario passes: nothing to shrink");
        return sc.clone();
    };
    let want = key(&first.message);
    let fails =
        |c: &W::Scenario| matches!(run::<W>(c, Keep::default()), Err(f) if key(&f.message) == want);
    let mut best = sc.clone();
    loop {
        let mut changed = false;
        for cand in candidates::<W>(&best) {
            if fails(&cand) {
                best = cand;
                changed = true;
                let mut b = best.clone();
                let n = W::faults_mut(&mut b).faults.len();
                log(&format!("still fails with {n} timed faults"));
            }
        }
        if !changed {
            return best;
        }
    }
}

/// Every one-step simplification of `sc`.
fn candidates<W: World>(sc: &W::Scenario) -> Vec<W::Scenario> {
    let mut out = Vec::new();
    let mut probe = sc.clone();
    let f = W::faults_mut(&mut probe);
    for i in 0..f.faults.len() {
        let mut c = sc.clone();
        W::faults_mut(&mut c).faults.remove(i);
        out.push(c);
    }
    type Rate = fn(&mut RandomFaults) -> bool;
    // Each switches one rate off and says whether it was on.
    let rates: [Rate; 8] = [
        |r| std::mem::take(&mut r.reset_ppm) > 0,
        |r| std::mem::take(&mut r.refuse_ppm) > 0,
        |r| std::mem::take(&mut r.connect_timeout_ppm) > 0,
        |r| std::mem::take(&mut r.clog_ppm) > 0,
        |r| std::mem::take(&mut r.disk_read_error_ppm) > 0,
        |r| std::mem::take(&mut r.disk_write_error_ppm) > 0,
        |r| std::mem::take(&mut r.buggify_activate_ppm) > 0,
        |r| std::mem::take(&mut r.max_drift_ppm) != 0,
    ];
    for off in rates {
        let mut c = sc.clone();
        if off(W::faults_mut(&mut c).random) {
            out.push(c);
        }
    }
    out.extend(W::smaller(sc));
    let plain = NetConfig::default();
    if f.net.latency != plain.latency {
        let mut c = sc.clone();
        W::faults_mut(&mut c).net.latency = plain.latency.clone();
        out.push(c);
    }
    if f.net.max_chunk != plain.max_chunk {
        let mut c = sc.clone();
        W::faults_mut(&mut c).net.max_chunk = plain.max_chunk;
        out.push(c);
    }
    out
}

/// The hosts a fault names (a world that removes hosts drops the faults naming them).
pub fn fault_hosts(a: &FaultAction) -> Vec<HostId> {
    use FaultAction::*;
    match a {
        Partition { from, to, .. } => from.iter().chain(to).copied().collect(),
        Isolate { host } | Crash { host } | Restart { host } | Pause { host, .. } => vec![*host],
        ClockJump { host, .. } | ResetAll { host } | Drain { host } => vec![*host],
        Clog { from, to, .. } => vec![*from, *to],
    }
}
