//! The real proxy machines in front of three real backends, with clients, over many seeds:
//! a healthy network, then swarm-chosen faults (backend crashes, partitions, slow and stalled
//! backends and clients), heal, liveness.

use weaprous_net_sim::backend::BackendScenario;
use weaprous_net_sim::check::save_failure;
use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::proxy_world::run;
use weaprous_net_sim::trace::Keep;

fn seeds(default: u64) -> std::ops::Range<u64> {
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    0..n
}

fn fail(sc: &BackendScenario, f: impl std::fmt::Display) -> ! {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/net-sim");
    let _ = std::fs::create_dir_all(dir);
    let path = format!("{dir}/fail-proxy-test-{}.json", sc.seed);
    let _ = std::fs::write(&path, serde_json::to_string_pretty(sc).unwrap_or_default());
    let keep = Keep {
        tail: true,
        ..Keep::default()
    };
    let detail = run(sc, keep)
        .err()
        .map(|f| f.to_string())
        .unwrap_or_default();
    let _ = save_failure;
    panic!("{f}\nreplay: cargo run --release -p weaprous-net-sim --bin sim -- --world proxy --replay {path}\n{detail}");
}

#[test]
fn proxy_quiet_200_seeds() {
    let mut responses = 0;
    for seed in seeds(200) {
        let mut sc = BackendScenario::quiet(seed);
        sc.clients = 20;
        sc.net.max_chunk = [7, 512, 1500, 65_536][(seed % 4) as usize];
        sc.small_site = sc.net.max_chunk < 100;
        match run(&sc, Keep::default()) {
            Ok(r) => responses += r.responses,
            Err(f) => fail(&sc, f),
        }
    }
    assert!(responses > 2000, "{responses}");
}

#[test]
fn proxy_under_faults_200_seeds() {
    let mut coverage = Coverage::default();
    let mut responses = 0;
    for seed in seeds(200) {
        let sc = BackendScenario::generate(seed, 30);
        match run(&sc, Keep::default()) {
            Ok(r) => {
                responses += r.responses;
                coverage.merge(&r.coverage);
            }
            Err(f) => fail(&sc, f),
        }
    }
    assert!(responses > 5000, "{responses}");
    let missing = coverage.missing(&[
        "proxy.pooled_connection_reused",
        "proxy.connect_failed",
        "proxy.retried_on_another_upstream",
        "proxy.answered_gateway_error",
        "proxy.upstream_failure_reported",
        "proxy.deadline_fired",
        "client.retry_after_gateway_error",
        "node.crash",
    ]);
    assert!(missing.is_empty(), "never fired: {missing:?}");
}
