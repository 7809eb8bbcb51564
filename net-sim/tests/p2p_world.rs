//! The P2P world under swarm-chosen faults (`weaprous_net_sim::p2p_world`): the tracker and
//! fifty peer nodes, checked by the world's oracles, with every "sometimes" counter reached
//! somewhere in the sweep.

use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::p2p_world::{run, P2pScenario, P2P_COVERAGE};
use weaprous_net_sim::trace::Keep;

#[test]
fn p2p_world_24_seeds_under_faults() {
    let mut cov = Coverage::default();
    let mut failures = Vec::new();
    for seed in 0..24 {
        match run(&P2pScenario::generate(seed), Keep::default()) {
            Ok(c) => cov.merge(&c),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let missing = cov.missing(P2P_COVERAGE);
    assert!(missing.is_empty(), "never fired: {missing:?}");
}

#[test]
fn five_quiet_peers_deliver_every_message() {
    for seed in 0..4 {
        let sc = P2pScenario::quiet(seed, 5);
        let cov = run(&sc, Keep::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(cov.count("p2p.taken") > 0, "{cov:?}");
        assert_eq!(
            cov.count("p2p.failed"),
            0,
            "nothing fails on a quiet network"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    use weaprous_net_sim::p2p_world::P2pWorld;
    use weaprous_net_sim::world::determinism;
    determinism::<P2pWorld>(&P2pScenario::generate(5)).expect("identical traces");
}
