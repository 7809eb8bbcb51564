//! Checks over whole runs: determinism (run twice, compare, name the first divergent event)
//! and the sweep-level coverage gate.

use crate::backend::{run, BackendScenario};
use crate::trace::{first_divergence, Keep};

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
    "backend.deadline_fired",
    "backend.answered_500",
    "backend.read_error_after_head",
    "backend.aborted_response",
    "backend.peer_reset",
    "buggify.backend.tiny_first_read",
];

/// Runs `sc` twice. `Ok` if the traces are identical; else the first event at which they
/// differ, with that event's line from each run.
pub fn determinism(sc: &BackendScenario) -> Result<u64, String> {
    compare(sc, sc)
}

/// Runs `a` and `b` and compares their traces event by event: `Ok(hash)` when identical, else
/// the first event at which they differ, with that event's line from each run.
pub fn compare(a: &BackendScenario, b: &BackendScenario) -> Result<u64, String> {
    let keep = Keep {
        hashes: true,
        ..Keep::default()
    };
    let (ha, hb) = (trace_hashes(a, keep), trace_hashes(b, keep));
    match first_divergence(&ha, &hb) {
        None => Ok(ha.last().copied().unwrap_or(0)),
        Some(i) => {
            let line = |sc: &BackendScenario| {
                let keep = Keep {
                    line_of: Some(i as u64),
                    ..Keep::default()
                };
                let mut sim = crate::backend::build(sc, keep);
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

fn drive(sim: &mut crate::engine::Sim, sc: &BackendScenario) -> Result<(), String> {
    use weaprous_core::time::{Duration, Instant};
    let end =
        Instant::ZERO + Duration::from_millis(sc.phases.heal_at_ms + sc.phases.converge_within_ms);
    sim.run_until(end, |_| false)
}

fn trace_hashes(sc: &BackendScenario, keep: Keep) -> Vec<u64> {
    let mut sim = crate::backend::build(sc, keep);
    let _ = drive(&mut sim, sc);
    sim.trace().hashes().to_vec()
}

/// Writes `sc` as `DIR/fail-NAME-SEED.json` and its trace tail beside it; returns the one
/// command that replays it.
pub fn save_failure(dir: &str, name: &str, sc: &BackendScenario) -> String {
    let _ = std::fs::create_dir_all(dir);
    let path = format!("{dir}/fail-{name}-{}.json", sc.seed);
    let _ = std::fs::write(&path, serde_json::to_string_pretty(sc).unwrap_or_default());
    let detail = replay(sc)
        .err()
        .unwrap_or_else(|| "(passed on replay)".into());
    let _ = std::fs::write(format!("{path}.trace"), detail);
    format!("cargo run --release -p weaprous-net-sim --bin sim -- --replay {path}")
}

/// Runs a scenario and reports like the sweeps do (for replays of saved files).
pub fn replay(sc: &BackendScenario) -> Result<String, String> {
    let keep = Keep {
        tail: true,
        ..Keep::default()
    };
    match run(sc, keep) {
        Ok(r) => Ok(format!(
            "passed: {} responses, {} events, trace {:016x}",
            r.responses, r.events, r.trace_hash
        )),
        Err(f) => Err(f.to_string()),
    }
}
