//! The real proxy machines in front of three real backends, with clients, over many seeds:
//! a healthy network, then swarm-chosen faults (backend crashes, partitions, slow and stalled
//! backends and clients), heal, liveness.

mod common;

use common::seeds;

use weaprous_net_sim::backend::BackendScenario;
use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::proxy_world::{run, ProxyWorld, PROXY_COVERAGE};
use weaprous_net_sim::trace::Keep;
use weaprous_net_sim::world::{determinism, save_failure};

/// Saves the failing scenario (and its trace) under target/net-sim and panics with the
/// command that replays it.
fn fail(sc: &BackendScenario, f: impl std::fmt::Display) -> ! {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/net-sim");
    let replay = save_failure::<ProxyWorld>(dir, "proxy-test", sc);
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
        determinism::<ProxyWorld>(&BackendScenario::generate(seed, 30))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_shared_shrinker_works_in_the_proxy_world() {
    use weaprous_net_sim::scenario::{FaultAction, Timed};
    use weaprous_net_sim::world::shrink;
    let mut sc = BackendScenario::generate(5, 6);
    sc.faults.push(Timed {
        at_ms: 10,
        action: FaultAction::Crash { host: 1 },
    });
    sc.random.clog_ppm = 1_000;
    sc.random.clog_ms = 100;
    sc.phases.heal_at_ms = 1_000;
    sc.phases.converge_within_ms = 1;
    let min = shrink::<ProxyWorld>(&sc, |_| {});
    let err = run(&min, Keep::default()).expect_err("still fails");
    assert!(err.message.starts_with("liveness"), "{err}");
    assert!(min.faults.is_empty(), "{:?}", min.faults);
    assert_eq!(min.random.clog_ppm, 0);
    assert_eq!(min.clients, 1);
    assert_eq!(min.max_requests, 1);
}
