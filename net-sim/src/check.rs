//! Checks over whole runs: determinism (run twice, compare, name the first divergent event)
//! and the sweep-level coverage gate.

use crate::backend::{run, BackendScenario, Failure};
use crate::coverage::Coverage;
use crate::engine::Sim;
use crate::trace::{first_divergence, Keep};

/// Which world a scenario runs in (the same scenario type drives both).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum World {
    /// The static backend and its clients.
    Backend,
    /// The proxy in front of three backends, and clients.
    Proxy,
}

/// What every world's run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    pub responses: usize,
    pub events: u64,
    pub trace_hash: u64,
    pub coverage: Coverage,
}

impl World {
    pub fn parse(s: &str) -> Option<World> {
        match s {
            "backend" => Some(World::Backend),
            "proxy" => Some(World::Proxy),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            World::Backend => "backend",
            World::Proxy => "proxy",
        }
    }
    /// Builds the simulator with the scenario's faults scheduled.
    pub fn build(self, sc: &BackendScenario, keep: Keep) -> Sim {
        match self {
            World::Backend => crate::backend::build(sc, keep),
            World::Proxy => crate::proxy_world::build(sc, keep),
        }
    }
    /// Runs the scenario with every oracle of the world.
    pub fn run(self, sc: &BackendScenario, keep: Keep) -> Result<Summary, Failure> {
        match self {
            World::Backend => run(sc, keep).map(|r| Summary {
                responses: r.responses,
                events: r.events,
                trace_hash: r.trace_hash,
                coverage: r.coverage,
            }),
            World::Proxy => crate::proxy_world::run(sc, keep).map(|r| Summary {
                responses: r.responses,
                events: r.events,
                trace_hash: r.trace_hash,
                coverage: r.coverage,
            }),
        }
    }
}

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

/// The "sometimes" counters a proxy sweep must reach at least once.
pub const PROXY_COVERAGE: &[&str] = &[
    "proxy.pooled_connection_reused",
    "proxy.connect_failed",
    "proxy.retried_on_another_upstream",
    "proxy.answered_gateway_error",
    "proxy.upstream_failure_reported",
    "proxy.deadline_fired",
    "client.retry_after_gateway_error",
    "node.crash",
    // What the proxy world's workload adds: bodies both ways, every answer shape, one
    // answer per request, pooling with nothing owed.
    "client.body_chunked",
    "client.body_content_length",
    "client.pipelined_request_with_body",
    "client.continue_then_body",
    "client.broken_chunk_size_answered_once",
    "client.request_aborted_as_allowed",
    "client.absolute_form_target",
    "client.malformed_head_refused",
    "origin.answered_before_the_body",
    "origin.interim_head",
    "origin.chunked_answer",
    "origin.close_delimited_answer",
    "origin.malformed_answer",
    "origin.short_body",
    "origin.broken_chunk",
    "proxy.pooled_with_nothing_owed",
    "proxy.pooled_connection_idled_out",
];

/// Runs `sc` twice. `Ok` if the traces are identical; else the first event at which they
/// differ, with that event's line from each run.
pub fn determinism(sc: &BackendScenario) -> Result<u64, String> {
    compare(sc, sc)
}

/// [`determinism`] in any world.
pub fn determinism_in(world: World, sc: &BackendScenario) -> Result<u64, String> {
    compare_in(world, sc, sc)
}

/// Runs `a` and `b` and compares their traces event by event: `Ok(hash)` when identical, else
/// the first event at which they differ, with that event's line from each run.
pub fn compare(a: &BackendScenario, b: &BackendScenario) -> Result<u64, String> {
    compare_in(World::Backend, a, b)
}

/// [`compare`] in any world.
pub fn compare_in(world: World, a: &BackendScenario, b: &BackendScenario) -> Result<u64, String> {
    let keep = Keep {
        hashes: true,
        ..Keep::default()
    };
    let (ha, hb) = (trace_hashes(world, a, keep), trace_hashes(world, b, keep));
    match first_divergence(&ha, &hb) {
        None => Ok(ha.last().copied().unwrap_or(0)),
        Some(i) => {
            let line = |sc: &BackendScenario| {
                let keep = Keep {
                    line_of: Some(i as u64),
                    ..Keep::default()
                };
                let mut sim = world.build(sc, keep);
                let _ = drive(&mut sim, sc);
                sim.trace()
                    .chosen_line()
                    .unwrap_or("(run ended before it)")
                    .to_string()
            };
            Err(format!(
                "seed {}: runs diverge at event #{i}:\n  first run:  {}\n  second run: {}",
                a.seed,
                line(a),
                line(b)
            ))
        }
    }
}

fn drive(sim: &mut Sim, sc: &BackendScenario) -> Result<(), String> {
    use weaprous_core::time::{Duration, Instant};
    let end =
        Instant::ZERO + Duration::from_millis(sc.phases.heal_at_ms + sc.phases.converge_within_ms);
    sim.run_until(end, |_| false)
}

fn trace_hashes(world: World, sc: &BackendScenario, keep: Keep) -> Vec<u64> {
    let mut sim = world.build(sc, keep);
    let _ = drive(&mut sim, sc);
    sim.trace().hashes().to_vec()
}

/// Writes `sc` as `DIR/fail-NAME-SEED.json` and its trace tail beside it; returns the one
/// command that replays it.
pub fn save_failure(dir: &str, name: &str, world: World, sc: &BackendScenario) -> String {
    let _ = std::fs::create_dir_all(dir);
    let path = format!("{dir}/fail-{name}-{}.json", sc.seed);
    let _ = std::fs::write(&path, serde_json::to_string_pretty(sc).unwrap_or_default());
    let detail = replay_in(world, sc)
        .err()
        .unwrap_or_else(|| "(passed on replay)".into());
    let _ = std::fs::write(format!("{path}.trace"), detail);
    format!(
        "cargo run --release -p weaprous-net-sim --bin sim -- --world {} --replay {path}",
        world.name()
    )
}

/// Runs a scenario in the backend world and reports like the sweeps do.
pub fn replay(sc: &BackendScenario) -> Result<String, String> {
    replay_in(World::Backend, sc)
}

/// Runs a scenario in `world` with its trace tail kept (for replays of saved files).
pub fn replay_in(world: World, sc: &BackendScenario) -> Result<String, String> {
    let keep = Keep {
        tail: true,
        ..Keep::default()
    };
    match world.run(sc, keep) {
        Ok(r) => Ok(format!(
            "passed: {} responses, {} events, trace {:016x}",
            r.responses, r.events, r.trace_hash
        )),
        Err(f) => Err(f.to_string()),
    }
}

/// Greedy shrinking of a saved failing scenario (delta debugging): tries, in turn, dropping
/// each timed fault, switching off each random fault rate and request family, and making the
/// workload and network
/// smaller, keeping every change after which the run still fails with an error that starts
/// the same way (the same oracle). Stops when no single change keeps it failing. `log` hears
/// each accepted step.
pub fn shrink(sc: &BackendScenario, mut log: impl FnMut(&str)) -> BackendScenario {
    let key = |m: &str| m.split(':').next().unwrap_or(m).to_string();
    let Err(first) = run(sc, Keep::default()) else {
        log("the scenario passes: nothing to shrink");
        return sc.clone();
    };
    let want = key(&first.message);
    let fails =
        |c: &BackendScenario| matches!(run(c, Keep::default()), Err(f) if key(&f.message) == want);
    let mut best = sc.clone();
    loop {
        let mut changed = false;
        for cand in candidates(&best) {
            if fails(&cand) {
                best = cand;
                changed = true;
                log(&format!(
                    "still fails with {} clients, {} faults",
                    best.clients,
                    best.faults.len()
                ));
            }
        }
        if !changed {
            return best;
        }
    }
}

/// Every one-step simplification of `sc`.
fn candidates(sc: &BackendScenario) -> Vec<BackendScenario> {
    let mut out = Vec::new();
    for i in 0..sc.faults.len() {
        let mut c = sc.clone();
        c.faults.remove(i);
        out.push(c);
    }
    let r = &sc.random;
    let rates: [(&str, bool); 8] = [
        ("reset", r.reset_ppm > 0),
        ("refuse", r.refuse_ppm > 0),
        ("connect_timeout", r.connect_timeout_ppm > 0),
        ("clog", r.clog_ppm > 0),
        ("disk_read", r.disk_read_error_ppm > 0),
        ("disk_write", r.disk_write_error_ppm > 0),
        ("buggify", r.buggify_activate_ppm > 0),
        ("drift", r.max_drift_ppm != 0),
    ];
    for (name, on) in rates {
        if !on {
            continue;
        }
        let mut c = sc.clone();
        let r = &mut c.random;
        match name {
            "reset" => r.reset_ppm = 0,
            "refuse" => r.refuse_ppm = 0,
            "connect_timeout" => r.connect_timeout_ppm = 0,
            "clog" => r.clog_ppm = 0,
            "disk_read" => r.disk_read_error_ppm = 0,
            "disk_write" => r.disk_write_error_ppm = 0,
            "buggify" => r.buggify_activate_ppm = 0,
            _ => r.max_drift_ppm = 0,
        }
        out.push(c);
    }
    // Fewer request families.
    let m = &sc.mix;
    for (on, off) in [
        (m.bodies, 0),
        (m.expect_continue, 1),
        (m.methods, 2),
        (m.targets, 3),
        (m.malformed, 4),
    ] {
        if on {
            let mut c = sc.clone();
            match off {
                0 => c.mix.bodies = false,
                1 => c.mix.expect_continue = false,
                2 => c.mix.methods = false,
                3 => c.mix.targets = false,
                _ => c.mix.malformed = false,
            }
            out.push(c);
        }
    }
    // Fewer clients: host numbers in the faults above the new count would name nobody, so
    // faults that do are dropped with them.
    for clients in [1, sc.clients / 2, sc.clients - 1] {
        if clients >= 1 && clients < sc.clients {
            let mut c = sc.clone();
            c.clients = clients;
            c.faults
                .retain(|t| hosts_of(&t.action).iter().all(|&h| h <= clients));
            out.push(c);
        }
    }
    if sc.conns_per_client > 1 {
        let mut c = sc.clone();
        c.conns_per_client -= 1;
        out.push(c);
    }
    if sc.max_requests > 1 {
        let mut c = sc.clone();
        c.max_requests -= 1;
        out.push(c);
    }
    if sc.max_depth > 1 {
        let mut c = sc.clone();
        c.max_depth = 1;
        out.push(c);
    }
    let plain = crate::scenario::NetConfig::default();
    if sc.net.latency != plain.latency {
        let mut c = sc.clone();
        c.net.latency = plain.latency.clone();
        out.push(c);
    }
    if sc.net.max_chunk != plain.max_chunk {
        let mut c = sc.clone();
        c.net.max_chunk = plain.max_chunk;
        out.push(c);
    }
    out
}

fn hosts_of(a: &crate::scenario::FaultAction) -> Vec<usize> {
    use crate::scenario::FaultAction::*;
    match a {
        Partition { from, to, .. } => from.iter().chain(to).copied().collect(),
        Isolate { host } | Crash { host } | Restart { host } | Pause { host, .. } => vec![*host],
        ClockJump { host, .. } | ResetAll { host } | Drain { host } => vec![*host],
        Clog { from, to, .. } => vec![*from, *to],
    }
}
