//! `sim`: sweeps seeds of a scenario in parallel, or replays one saved scenario.
//!
//! ```text
//! sim --list
//! sim --scenario backend --seeds 0..1000 --jobs 2
//! sim --replay target/net-sim/fail-backend-42.json
//! ```
//! A failing seed prints its error, writes the scenario (JSON) and the trace tail next to it,
//! and prints the replay command.

use clap::Parser;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use weaprous_net_sim::backend_world::{run, BackendScenario};

#[derive(Parser, Debug)]
#[command(version, about = "deterministic simulation of weaprous nodes")]
struct Args {
    /// List the scenarios.
    #[arg(long)]
    list: bool,
    /// Scenario to sweep.
    #[arg(long, default_value = "backend")]
    scenario: String,
    /// Seed range A..B (B excluded).
    #[arg(long, default_value = "0..100")]
    seeds: String,
    /// Parallel simulations (each is single-threaded).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Replay a saved scenario file.
    #[arg(long)]
    replay: Option<String>,
    /// Where failing scenarios are written.
    #[arg(long, default_value = "target/net-sim")]
    out: String,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or("--seeds wants A..B")?;
    let a = a.parse().map_err(|_| format!("bad seed {a:?}"))?;
    let b = b.parse().map_err(|_| format!("bad seed {b:?}"))?;
    Ok((a, b))
}

fn main() {
    let args = Args::parse();
    if args.list {
        println!("backend  the static backend serving 50 simulated clients (keep-alive, pipelining, random chunking)");
        return;
    }
    if let Some(file) = &args.replay {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        let mut sc: BackendScenario =
            serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        sc.keep_trace = true;
        match run(sc) {
            Ok(r) => println!(
                "passed: {} responses, {} events, trace {:016x}",
                r.responses, r.events, r.trace_hash
            ),
            Err(f) => {
                eprint!("{f}");
                std::process::exit(1);
            }
        }
        return;
    }
    if args.scenario != "backend" {
        die(&format!(
            "unknown scenario {:?} (try --list)",
            args.scenario
        ));
    }
    let (a, b) = parse_range(&args.seeds).unwrap_or_else(|e| die(&e));
    let next = Arc::new(AtomicU64::new(a));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::new(AtomicU64::new(0));
    let passed = Arc::new(AtomicUsize::new(0));
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..args.jobs.max(1))
        .map(|_| {
            let (next, failures, events, passed) = (
                next.clone(),
                failures.clone(),
                events.clone(),
                passed.clone(),
            );
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= b {
                    break;
                }
                match run(BackendScenario::new(seed)) {
                    Ok(r) => {
                        events.fetch_add(r.events, Ordering::Relaxed);
                        passed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(f) => failures.lock().unwrap().push(f),
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let el = start.elapsed().as_secs_f64();
    let failures = failures.lock().unwrap();
    let ev = events.load(Ordering::Relaxed);
    println!(
        "{} seeds {a}..{b}: {} passed, {} failed; {} events in {:.1}s ({:.0} events/s)",
        args.scenario,
        passed.load(Ordering::Relaxed),
        failures.len(),
        ev,
        el,
        ev as f64 / el
    );
    if failures.is_empty() {
        return;
    }
    let _ = std::fs::create_dir_all(&args.out);
    for f in failures.iter() {
        let path = format!("{}/fail-{}-{}.json", args.out, args.scenario, f.seed);
        let sc = BackendScenario::new(f.seed);
        let _ = std::fs::write(&path, serde_json::to_string_pretty(&sc).unwrap_or_default());
        let mut replay = BackendScenario::new(f.seed);
        replay.keep_trace = true;
        let detail = run(replay)
            .err()
            .map(|f| f.to_string())
            .unwrap_or_else(|| f.to_string());
        let _ = std::fs::write(format!("{path}.trace"), &detail);
        eprintln!("FAIL seed {}: {}", f.seed, f.message);
        eprintln!("  replay: cargo run --release -p weaprous-net-sim --bin sim -- --replay {path}");
    }
    std::process::exit(1);
}

fn die(msg: &str) -> ! {
    eprintln!("sim: {msg}");
    std::process::exit(2);
}
