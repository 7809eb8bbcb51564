//! The line world under swarm-chosen faults (`weaprous_net_sim::line_world`): the generic
//! host's messages, jobs, timers, log appends, drains and crashes, checked by the world's
//! oracles, and every capability reached somewhere in the sweep.

use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::line_world::{run, LineScenario, LINE_COVERAGE};
use weaprous_net_sim::trace::Keep;

#[test]
fn line_world_200_seeds_under_faults() {
    let mut cov = Coverage::default();
    let mut failures = Vec::new();
    for seed in 0..200 {
        match run(&LineScenario::generate(seed), Keep::default()) {
            Ok(c) => cov.merge(&c),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let missing = cov.missing(LINE_COVERAGE);
    assert!(missing.is_empty(), "never fired: {missing:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let sc = LineScenario::generate(7);
    let a = run(&sc, Keep::default()).unwrap();
    let b = run(&sc, Keep::default()).unwrap();
    assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
}
