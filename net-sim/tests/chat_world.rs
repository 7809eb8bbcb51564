//! The chat world under swarm-chosen faults (`weaprous_net_sim::chat_world`): the chat node and
//! fifty simulated browsers, checked by the browsers' and the world's oracles, with every
//! "sometimes" counter reached somewhere in the sweep.

use weaprous_net_sim::chat_world::{run, ChatScenario, CHAT_COVERAGE};
use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::trace::Keep;

#[test]
fn chat_world_24_seeds_under_faults() {
    let mut cov = Coverage::default();
    let mut failures = Vec::new();
    for seed in 0..24 {
        match run(&ChatScenario::generate(seed), Keep::default()) {
            Ok(c) => cov.merge(&c),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let missing = cov.missing(CHAT_COVERAGE);
    assert!(missing.is_empty(), "never fired: {missing:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    use weaprous_net_sim::chat_world::ChatWorld;
    use weaprous_net_sim::world::determinism;
    determinism::<ChatWorld>(&ChatScenario::generate(5)).expect("identical traces");
}
