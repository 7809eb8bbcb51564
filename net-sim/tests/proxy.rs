//! The real proxy machines in front of three real backends, with clients, over many seeds:
//! a healthy network, then swarm-chosen faults (backend crashes, partitions, slow and stalled
//! backends and clients), heal, liveness.

mod common;

use common::seeds;

use weaprous_net_sim::backend::BackendScenario;
use weaprous_net_sim::check::{determinism_in, save_failure, World, PROXY_COVERAGE};
use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::proxy_world::run;
use weaprous_net_sim::trace::Keep;

/// Saves the failing scenario (and its trace) under target/net-sim and panics with the
/// command that replays it.
fn fail(sc: &BackendScenario, f: impl std::fmt::Display) -> ! {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/net-sim");
    let replay = save_failure(dir, "proxy-test", World::Proxy, sc);
    panic!("{f}\nreplay: {replay}");
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
    let missing = coverage.missing(PROXY_COVERAGE);
    assert!(missing.is_empty(), "never fired: {missing:?}");
}

#[test]
fn the_proxy_world_is_deterministic() {
    for seed in 0..3 {
        determinism_in(World::Proxy, &BackendScenario::generate(seed, 30))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
