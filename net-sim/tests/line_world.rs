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

#[test]
fn the_shared_shrinker_works_in_the_line_world() {
    use weaprous_net_sim::line_world::LineWorld;
    use weaprous_net_sim::scenario::{FaultAction, Timed};
    use weaprous_net_sim::world::shrink;
    // The node down until the heal and a 1 ms liveness bound fail every variant that keeps
    // the crash, so shrinking must strip every other fault and rate (the shared steps) and
    // every client but one (the world's own step).
    let mut sc = LineScenario::generate(3);
    let crash = Timed {
        at_ms: 10,
        action: FaultAction::Crash { host: 0 },
    };
    sc.faults.push(crash.clone());
    sc.faults.push(Timed {
        at_ms: 20,
        action: FaultAction::Pause { host: 2, ms: 100 },
    });
    sc.random.reset_ppm = 1_000;
    sc.phases.heal_at_ms = 1_000;
    sc.phases.converge_within_ms = 1;
    let min = shrink::<LineWorld>(&sc, |_| {});
    let err = run(&min, Keep::default()).expect_err("still fails");
    assert!(err.contains("liveness"), "{err}");
    assert_eq!(min.faults, vec![crash]);
    assert_eq!(min.random.reset_ppm, 0);
    assert_eq!(min.clients, 1);
}
