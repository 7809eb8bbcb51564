//! `sim`: sweeps seeds of a scenario in parallel, or replays, shrinks or checks one.
//!
//! ```text
//! sim --list
//! sim --scenario backend-faults --seeds 0..1000 --jobs 2
//! sim --replay target/net-sim/fail-backend-faults-42.json   # the world from the file's name
//! sim --determinism --scenario backend-faults --seeds 0..20
//! sim --write-scenarios --scenario backend-faults --seeds 5..6 --out net-sim/regressions
//! sim --shrink target/net-sim/fail-proxy-faults-42.json     # writes ...-42.min.json
//! sim --scenario line-faults --seeds 0..10000                # the node contract's world
//! sim --world line --replay some-scenario.json
//! ```
//! A failing seed prints its error, writes the scenario (JSON) and the trace tail next to it,
//! and prints the one command that replays it. A sweep also fails when one of its world's
//! "sometimes" counters never fired (use `--no-coverage-gate` for short sweeps). Every world
//! runs through the same harness (`weaprous_net_sim::world`), so every command works in every
//! world.

use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use weaprous_net_sim::backend::{BackendScenario, BackendWorld};
use weaprous_net_sim::chat_world::{ChatScenario, ChatWorld};
use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::line_world::{LineScenario, LineWorld};
use weaprous_net_sim::p2p_world::{P2pScenario, P2pWorld};
use weaprous_net_sim::proxy_world::ProxyWorld;
use weaprous_net_sim::trace::Keep;
use weaprous_net_sim::world::{self, World};

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
    /// The world a replayed or shrunk file runs in: backend, proxy or line (by default the
    /// one its file name starts with, as `sim` names saved failures: `fail-proxy-...`).
    #[arg(long)]
    world: Option<String>,
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
        "chat-faults",
        "the chat server and 50 browsers under swarm-chosen faults",
    ),
    (
        "p2p-faults",
        "the tracker and 50 peer nodes sending direct messages and broadcasts under faults",
    ),
    (
        "proxy-faults",
        "the proxy, backends, origins and 30 clients under swarm-chosen faults and families",
    ),
];

/// Runs `$body` with `W` bound to the world named `$name` (or dies).
macro_rules! in_world {
    ($name:expr, $w:ident => $body:expr) => {
        match $name {
            "backend" => {
                type $w = BackendWorld;
                $body
            }
            "proxy" => {
                type $w = ProxyWorld;
                $body
            }
            "line" => {
                type $w = LineWorld;
                $body
            }
            "chat" => {
                type $w = ChatWorld;
                $body
            }
            "p2p" => {
                type $w = P2pWorld;
                $body
            }
            other => die(&format!(
                "unknown world {other:?} (backend, proxy, line, chat or p2p)"
            )),
        }
    };
}

/// The world of scenario `name`.
fn world_of(name: &str) -> Option<&'static str> {
    match name {
        "backend-quiet" | "backend-faults" => Some("backend"),
        "proxy-quiet" | "proxy-faults" => Some("proxy"),
        "line-faults" => Some("line"),
        "chat-faults" => Some("chat"),
        "p2p-faults" => Some("p2p"),
        _ => None,
    }
}

/// The backend-world scenario `name` for `seed` (the backend and proxy worlds share one
/// scenario type).
fn http_scenario(name: &str, seed: u64) -> BackendScenario {
    match name {
        "backend-quiet" => BackendScenario::quiet(seed),
        "backend-faults" => BackendScenario::generate(seed, 100),
        "proxy-quiet" => {
            let mut sc = BackendScenario::quiet(seed);
            sc.clients = 20;
            sc
        }
        _ => BackendScenario::generate(seed, 30),
    }
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or("--seeds wants A..B")?;
    let a = a.parse().map_err(|_| format!("bad seed {a:?}"))?;
    let b = b.parse().map_err(|_| format!("bad seed {b:?}"))?;
    Ok((a, b))
}

/// The world a saved file runs in: `--world`, else the one its name starts with.
fn world_for_file(args: &Args, file: &str) -> String {
    if let Some(w) = &args.world {
        return w.clone();
    }
    let name = std::path::Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let name = name.strip_prefix("fail-").unwrap_or(name);
    ["proxy", "line", "chat", "p2p"]
        .into_iter()
        .find(|w| name.starts_with(&format!("{w}-")))
        .unwrap_or("backend")
        .to_string()
}

fn read<W: World>(file: &str) -> W::Scenario {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
    serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{file}: {e}")))
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
        in_world!(world_for_file(&args, file).as_str(), W => shrink_file::<W>(file));
        return;
    }
    if let Some(file) = &args.replay {
        in_world!(world_for_file(&args, file).as_str(), W => replay_file::<W>(file));
        return;
    }
    let world = world_of(&args.scenario).unwrap_or_else(|| {
        die(&format!(
            "unknown scenario {:?} (try --list)",
            args.scenario
        ))
    });
    let (a, b) = parse_range(&args.seeds).unwrap_or_else(|e| die(&e));
    let name = args.scenario.clone();
    let make = move |seed| http_scenario(&name, seed);
    match world {
        "line" => sweep::<LineWorld>(&args, (a, b), LineScenario::generate),
        "chat" => sweep::<ChatWorld>(&args, (a, b), ChatScenario::generate),
        "p2p" => sweep::<P2pWorld>(&args, (a, b), P2pScenario::generate),
        "proxy" => sweep::<ProxyWorld>(&args, (a, b), make),
        _ => sweep::<BackendWorld>(&args, (a, b), make),
    }
}

fn shrink_file<W: World>(file: &str) {
    let sc = read::<W>(file);
    let min = world::shrink::<W>(&sc, |step| eprintln!("shrink: {step}"));
    let out = format!("{}.min.json", file.trim_end_matches(".json"));
    let text = serde_json::to_string_pretty(&min).unwrap_or_default();
    std::fs::write(&out, text).unwrap_or_else(|e| die(&format!("{out}: {e}")));
    println!("{out}");
}

fn replay_file<W: World>(file: &str) {
    match world::replay::<W>(&read::<W>(file)) {
        Ok(line) => println!("{line}"),
        Err(f) => {
            eprint!("{f}");
            std::process::exit(1);
        }
    }
}

/// Sweeps (or, with `--determinism`, runs twice and compares) the seeds `a..b` of the
/// scenario `make` builds, in `W`; writes failures and exits.
fn sweep<W: World + 'static>(
    args: &Args,
    (a, b): (u64, u64),
    make: impl Fn(u64) -> W::Scenario + Clone + Send + 'static,
) {
    if args.write_scenarios {
        let _ = std::fs::create_dir_all(&args.out);
        for seed in a..b {
            let path = format!("{}/{}-{seed}.json", args.out, args.scenario);
            let text = serde_json::to_string_pretty(&make(seed)).unwrap_or_default();
            std::fs::write(&path, text).unwrap_or_else(|e| die(&format!("{path}: {e}")));
            println!("{path}");
        }
        return;
    }
    let next = Arc::new(AtomicU64::new(a));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let coverage = Arc::new(Mutex::new(Coverage::default()));
    let events = Arc::new(AtomicU64::new(0));
    let passed = Arc::new(AtomicU64::new(0));
    // Seeds finished, for the progress line a long sweep prints every PROGRESS_EVERY seeds
    // (so a sweep cut short still tells how far it got).
    let done = Arc::new(AtomicU64::new(0));
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..args.jobs.max(1))
        .map(|_| {
            let (next, failures, coverage, events, done, passed) = (
                next.clone(),
                failures.clone(),
                coverage.clone(),
                events.clone(),
                done.clone(),
                passed.clone(),
            );
            let name = args.scenario.clone();
            let make = make.clone();
            let det = args.determinism;
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= b {
                    break;
                }
                let sc = make(seed);
                report_progress(&name, &done, &failures, b - a, start);
                if det {
                    match world::determinism::<W>(&sc) {
                        Ok(_) => {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push((seed, e)),
                    }
                    continue;
                }
                // A panic is a failure of its seed, never a seed that silently did not run.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    world::run::<W>(&sc, Keep::default())
                }))
                .unwrap_or_else(|p| {
                    let what = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(world::Failure {
                        seed,
                        message: format!("panic: {what}"),
                        trace_tail: Vec::new(),
                    })
                });
                match run {
                    Ok(r) => {
                        passed.fetch_add(1, Ordering::Relaxed);
                        events.fetch_add(r.events, Ordering::Relaxed);
                        coverage.lock().unwrap().merge(&r.coverage);
                    }
                    Err(f) => {
                        // Said at once too, so a long sweep's failures can be replayed
                        // before it ends.
                        eprintln!("{name}: seed {seed} failed: {}", f.message);
                        failures.lock().unwrap().push((seed, f.message));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let el = start.elapsed().as_secs_f64();
    let failures = failures.lock().unwrap();
    let passed = passed.load(Ordering::Relaxed);
    let mut failed = !failures.is_empty();
    if passed + failures.len() as u64 != b - a {
        eprintln!(
            "FAIL: {} of {} seeds neither passed nor failed",
            b - a - passed - failures.len() as u64,
            b - a
        );
        failed = true;
    }
    let ev = events.load(Ordering::Relaxed);
    if args.determinism {
        println!(
            "{} seeds {a}..{b}: {passed} ran twice with identical traces, {} diverged ({el:.1}s)",
            args.scenario,
            failures.len(),
        );
    } else {
        println!(
            "{} seeds {a}..{b}: {passed} passed, {} failed; {ev} events in {el:.1}s ({:.0} events/s)",
            args.scenario,
            failures.len(),
            ev as f64 / el
        );
    }
    let coverage = coverage.lock().unwrap();
    let missing = coverage.missing(W::COVERAGE);
    if !args.determinism {
        for (name, n) in coverage.iter() {
            println!("  sometimes {name:<44} {n}");
        }
    }
    if !args.determinism
        && !args.no_coverage_gate
        && args.scenario.ends_with("-faults")
        && !missing.is_empty()
    {
        eprintln!("FAIL coverage: never fired: {}", missing.join(", "));
        failed = true;
    }
    for (seed, message) in failures.iter() {
        let replay = world::save_failure::<W>(&args.out, &args.scenario, &make(*seed));
        eprintln!("FAIL seed {seed}: {message}");
        eprintln!("  replay: {replay}");
    }
    std::process::exit(i32::from(failed));
}

/// How often a sweep says how far it got.
const PROGRESS_EVERY: u64 = 500;

/// Counts one more seed started and, every [`PROGRESS_EVERY`], prints the count so far (on
/// stderr, so the summary on stdout stays one block).
fn report_progress<T>(
    name: &str,
    done: &AtomicU64,
    failures: &Mutex<Vec<T>>,
    total: u64,
    start: std::time::Instant,
) {
    let n = done.fetch_add(1, Ordering::Relaxed);
    if n > 0 && n.is_multiple_of(PROGRESS_EVERY) {
        let failed = failures.lock().map_or(0, |f| f.len());
        eprintln!(
            "{name}: {n}/{total} seeds started, {failed} failed so far ({:.0}s)",
            start.elapsed().as_secs_f64()
        );
    }
}

fn die(msg: &str) -> ! {
    eprintln!("sim: {msg}");
    std::process::exit(2);
}
