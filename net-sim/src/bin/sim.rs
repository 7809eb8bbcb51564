//! `sim`: sweeps seeds of a scenario in parallel, or replays one saved scenario.
//!
//! ```text
//! sim --list
//! sim --scenario backend-faults --seeds 0..1000 --jobs 2
//! sim --replay target/net-sim/fail-backend-faults-42.json
//! sim --determinism --scenario backend-faults --seeds 0..20
//! sim --write-scenarios --scenario backend-faults --seeds 5..6 --out net-sim/regressions
//! sim --shrink target/net-sim/fail-backend-faults-42.json   # writes ...-42.min.json
//! sim --scenario line-faults --seeds 0..10000                # the node contract's world
//! sim --world line --replay target/net-sim/fail-line-faults-7.json
//! ```
//! A failing seed prints its error, writes the scenario (JSON) and the trace tail next to it,
//! and prints the one command that replays it. A sweep also fails when a listed "sometimes"
//! counter never fired (use `--no-coverage-gate` for short sweeps).

use clap::Parser;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use weaprous_net_sim::backend::BackendScenario;
use weaprous_net_sim::check::{
    determinism_in, replay_in, save_failure, shrink, World, BACKEND_COVERAGE, PROXY_COVERAGE,
};
use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::trace::Keep;

#[derive(Parser, Debug)]
#[command(version, about = "deterministic simulation of weaprous nodes")]
struct Args {
    /// List the scenarios.
    #[arg(long)]
    list: bool,
    /// Scenario to sweep.
    #[arg(long, default_value = "backend-faults")]
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
    /// The world a replayed or shrunk file runs in: backend or proxy.
    #[arg(long, default_value = "backend")]
    world: String,
    /// Shrink a saved failing scenario: write the smallest variant that still fails the same
    /// way next to it (`.min.json`).
    #[arg(long)]
    shrink: Option<String>,
    /// Run each seed twice and compare traces instead of sweeping.
    #[arg(long)]
    determinism: bool,
    /// Write the scenarios of the seed range as JSON files into --out instead of running them.
    #[arg(long)]
    write_scenarios: bool,
    /// Do not fail the sweep when a "sometimes" counter never fired.
    #[arg(long)]
    no_coverage_gate: bool,
    /// Where failing scenarios are written.
    #[arg(long, default_value = "target/net-sim")]
    out: String,
}

const SCENARIOS: &[(&str, &str)] = &[
    (
        "backend-quiet",
        "the static backend and 50 clients on a healthy network, every request family on",
    ),
    (
        "backend-faults",
        "the static backend and 100 clients under swarm-chosen faults and request families",
    ),
    (
        "proxy-quiet",
        "the proxy before three backends and three scripted origins, 20 clients, healthy",
    ),
    (
        "line-faults",
        "the node contract's line node and 6 clients under swarm-chosen faults",
    ),
    (
        "proxy-faults",
        "the proxy, backends, origins and 30 clients under swarm-chosen faults and families",
    ),
];

/// The world and scenario `name` for `seed`.
fn scenario(name: &str, seed: u64) -> Option<(World, BackendScenario)> {
    match name {
        "backend-quiet" => Some((World::Backend, BackendScenario::quiet(seed))),
        "backend-faults" => Some((World::Backend, BackendScenario::generate(seed, 100))),
        "proxy-quiet" => {
            let mut sc = BackendScenario::quiet(seed);
            sc.clients = 20;
            Some((World::Proxy, sc))
        }
        "proxy-faults" => Some((World::Proxy, BackendScenario::generate(seed, 30))),
        _ => None,
    }
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
        for (name, what) in SCENARIOS {
            println!("{name:<16} {what}");
        }
        return;
    }
    if let Some(file) = &args.shrink {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        let sc: BackendScenario =
            serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        if args.world != "backend" {
            die("--shrink works on backend scenarios for now");
        }
        let min = shrink(&sc, |step| eprintln!("shrink: {step}"));
        let out = format!("{}.min.json", file.trim_end_matches(".json"));
        let text = serde_json::to_string_pretty(&min).unwrap_or_default();
        std::fs::write(&out, text).unwrap_or_else(|e| die(&format!("{out}: {e}")));
        println!("{out}");
        return;
    }
    if args.scenario == "line-faults" || args.world == "line" {
        line(&args);
    }
    if let Some(file) = &args.replay {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        let sc: BackendScenario =
            serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        let world = World::parse(&args.world)
            .unwrap_or_else(|| die(&format!("unknown world {:?}", args.world)));
        match replay_in(world, &sc) {
            Ok(line) => println!("{line}"),
            Err(f) => {
                eprint!("{f}");
                std::process::exit(1);
            }
        }
        return;
    }
    if scenario(&args.scenario, 0).is_none() {
        die(&format!(
            "unknown scenario {:?} (try --list)",
            args.scenario
        ));
    }
    let (a, b) = parse_range(&args.seeds).unwrap_or_else(|e| die(&e));
    if args.write_scenarios {
        let _ = std::fs::create_dir_all(&args.out);
        for seed in a..b {
            let (_, sc) = scenario(&args.scenario, seed).expect("scenario");
            let path = format!("{}/{}-{seed}.json", args.out, args.scenario);
            let text = serde_json::to_string_pretty(&sc).unwrap_or_default();
            std::fs::write(&path, text).unwrap_or_else(|e| die(&format!("{path}: {e}")));
            println!("{path}");
        }
        return;
    }
    let next = Arc::new(AtomicU64::new(a));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let coverage = Arc::new(Mutex::new(Coverage::default()));
    let events = Arc::new(AtomicU64::new(0));
    let passed = Arc::new(AtomicUsize::new(0));
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..args.jobs.max(1))
        .map(|_| {
            let (next, failures, coverage, events, passed) = (
                next.clone(),
                failures.clone(),
                coverage.clone(),
                events.clone(),
                passed.clone(),
            );
            let name = args.scenario.clone();
            let det = args.determinism;
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= b {
                    break;
                }
                let Some((world, sc)) = scenario(&name, seed) else {
                    break;
                };
                if det {
                    match determinism_in(world, &sc) {
                        Ok(_) => {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push((seed, e)),
                    }
                    continue;
                }
                match world.run(&sc, Keep::default()) {
                    Ok(r) => {
                        events.fetch_add(r.events, Ordering::Relaxed);
                        passed.fetch_add(1, Ordering::Relaxed);
                        coverage.lock().unwrap().merge(&r.coverage);
                    }
                    Err(f) => failures.lock().unwrap().push((seed, f.message)),
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
    if args.determinism {
        println!(
            "{} seeds {a}..{b}: {} ran twice with identical traces, {} diverged ({:.1}s)",
            args.scenario,
            passed.load(Ordering::Relaxed),
            failures.len(),
            el
        );
    } else {
        println!(
            "{} seeds {a}..{b}: {} passed, {} failed; {} events in {:.1}s ({:.0} events/s)",
            args.scenario,
            passed.load(Ordering::Relaxed),
            failures.len(),
            ev,
            el,
            ev as f64 / el
        );
    }
    let coverage = coverage.lock().unwrap();
    let missing = coverage.missing(if args.scenario.starts_with("proxy") {
        PROXY_COVERAGE
    } else {
        BACKEND_COVERAGE
    });
    if !args.determinism {
        for (name, n) in coverage.iter() {
            println!("  sometimes {name:<44} {n}");
        }
    }
    let mut failed = !failures.is_empty();
    if !args.determinism
        && !args.no_coverage_gate
        && args.scenario.ends_with("-faults")
        && !missing.is_empty()
    {
        eprintln!("FAIL coverage: never fired: {}", missing.join(", "));
        failed = true;
    }
    if failures.is_empty() {
        std::process::exit(i32::from(failed));
    }
    for (seed, message) in failures.iter() {
        let (world, sc) = scenario(&args.scenario, *seed).expect("scenario");
        let replay = save_failure(&args.out, &args.scenario, world, &sc);
        eprintln!("FAIL seed {seed}: {message}");
        eprintln!("  replay: {replay}");
    }
    std::process::exit(1);
}

/// The line world, whose scenarios are its own: a sweep or a replay.
fn line(args: &Args) -> ! {
    use weaprous_net_sim::line_world::{run, LineScenario, LINE_COVERAGE};
    if let Some(file) = &args.replay {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        let sc: LineScenario =
            serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        match run(&sc, Keep::default()) {
            Ok(_) => {
                println!("passed");
                std::process::exit(0)
            }
            Err(e) => die(&e),
        }
    }
    let (a, b) = parse_range(&args.seeds).unwrap_or_else(|e| die(&e));
    let next = Arc::new(AtomicU64::new(a));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let coverage = Arc::new(Mutex::new(Coverage::default()));
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..args.jobs.max(1))
        .map(|_| {
            let (next, failures, coverage) = (next.clone(), failures.clone(), coverage.clone());
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= b {
                    break;
                }
                let sc = LineScenario::generate(seed);
                match run(&sc, Keep::default()) {
                    Ok(c) => coverage.lock().unwrap().merge(&c),
                    Err(e) => failures.lock().unwrap().push((sc, e)),
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let failures = failures.lock().unwrap();
    println!(
        "line-faults seeds {a}..{b}: {} passed, {} failed ({:.1}s)",
        (b - a) as usize - failures.len(),
        failures.len(),
        start.elapsed().as_secs_f64()
    );
    let coverage = coverage.lock().unwrap();
    for (name, n) in coverage.iter() {
        println!("  sometimes {name:<44} {n}");
    }
    let missing = coverage.missing(LINE_COVERAGE);
    let mut failed = !failures.is_empty();
    if !args.no_coverage_gate && !missing.is_empty() {
        eprintln!("FAIL coverage: never fired: {}", missing.join(", "));
        failed = true;
    }
    let _ = std::fs::create_dir_all(&args.out);
    for (sc, e) in failures.iter() {
        let path = format!("{}/fail-line-faults-{}.json", args.out, sc.seed);
        let _ = std::fs::write(&path, serde_json::to_string_pretty(sc).unwrap_or_default());
        eprintln!("FAIL {e}");
        eprintln!("  replay: cargo run --release -p weaprous-net-sim --bin sim -- --world line --replay {path}");
    }
    std::process::exit(i32::from(failed))
}

fn die(msg: &str) -> ! {
    eprintln!("sim: {msg}");
    std::process::exit(2);
}
