//! The backend machine under the simulator: a healthy network with many chunkings, then 100
//! clients under swarm-chosen faults with a heal and liveness bound; determinism; shrinking.

mod common;

use common::seeds;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use weaprous_net_sim::backend::{run, BackendScenario, BackendWorld, BACKEND_COVERAGE};
use weaprous_net_sim::coverage::Coverage;
use weaprous_net_sim::scenario::{FaultAction, Timed};
use weaprous_net_sim::trace::Keep;
use weaprous_net_sim::workload::Mix;
use weaprous_net_sim::world::{compare, determinism, save_failure, shrink};

/// Saves the failing scenario (and its trace) under target/net-sim and panics with the
/// command that replays it.
fn fail(sc: &BackendScenario, f: impl std::fmt::Display) -> ! {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/net-sim");
    let replay = save_failure::<BackendWorld>(dir, "test", sc);
    panic!("{f}\nreplay: {replay}");
}

#[test]
fn quiet_network_200_seeds_every_byte_checked() {
    let (mut responses, mut timeouts) = (0, 0);
    for seed in seeds(200) {
        let mut sc = BackendScenario::quiet(seed);
        sc.net.max_chunk = [1, 7, 512, 1500, 65_536][(seed % 5) as usize];
        // Tiny segments cost an event per byte or so: fewer clients keep those seeds quick.
        sc.clients = match sc.net.max_chunk {
            1 => 3,
            7 => 10,
            _ => 50,
        };
        match run(&sc, Keep::default()) {
            Ok(r) => {
                responses += r.responses;
                timeouts += r.timeouts;
            }
            Err(f) => fail(&sc, f),
        }
    }
    assert!(responses > 2000, "the workload ran ({responses} responses)");
    assert!(timeouts > 10, "stalled clients got 408s ({timeouts})");
}

#[test]
fn hundred_clients_under_faults_200_seeds_heal_and_reach_every_rare_path() {
    let mut coverage = Coverage::default();
    let (mut responses, mut errors) = (0, 0);
    for seed in seeds(200) {
        let sc = BackendScenario::generate(seed, 100);
        match run(&sc, Keep::default()) {
            Ok(r) => {
                coverage.merge(&r.coverage);
                responses += r.responses;
                errors += r.server_errors;
            }
            Err(f) => fail(&sc, f),
        }
    }
    assert!(responses > 20_000, "{responses}");
    assert!(errors > 0, "disk errors before the head were answered 500");
    let missing = coverage.missing(BACKEND_COVERAGE);
    assert!(missing.is_empty(), "never fired: {missing:?}");
}

#[test]
fn same_scenario_same_trace_and_divergence_is_named() {
    for seed in 0..4 {
        determinism::<BackendWorld>(&BackendScenario::generate(seed, 100))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let a = BackendScenario::generate(1, 20);
    let mut b = a.clone();
    b.net.latency.min_us += 1;
    let err =
        compare::<BackendWorld>(&a, &b).expect_err("different latencies give different traces");
    assert!(err.contains("diverge at event #"), "{err}");
    assert!(
        err.contains("first run:") && err.contains("second run:"),
        "{err}"
    );
}

fn fault() -> impl Strategy<Value = Timed> {
    let host = prop_oneof![Just(0usize), 1usize..=10];
    (0u64..60_000, 0u8..7, host, 100u64..20_000).prop_map(|(at_ms, kind, host, ms)| {
        let action = match kind {
            0 => FaultAction::Crash { host },
            1 => FaultAction::Isolate { host },
            2 => FaultAction::Clog {
                from: 0,
                to: host.max(1),
                ms,
            },
            3 => FaultAction::Pause { host, ms },
            4 => FaultAction::ClockJump {
                host,
                by_s: ms as i64 - 10_000,
            },
            5 => FaultAction::ResetAll { host },
            _ => FaultAction::Restart { host },
        };
        Timed { at_ms, action }
    })
}

fn scenario() -> impl Strategy<Value = BackendScenario> {
    (0u64..1_000_000, proptest::collection::vec(fault(), 0..12)).prop_map(|(seed, faults)| {
        let mut sc = BackendScenario::generate(seed, 10);
        sc.faults = faults;
        sc
    })
}

proptest! {
    #![proptest_config(Config { cases: 24, failure_persistence: None, ..Config::default() })]
    /// Generated fault timelines: every one passes (a failure would be shrunk by proptest to
    /// the fewest faults that still fail).
    #[test]
    fn generated_fault_timelines_pass(sc in scenario()) {
        if let Err(f) = run(&sc, Keep::default()) {
            fail(&sc, f);
        }
    }
}

#[test]
fn a_failing_scenario_shrinks_to_the_fault_that_matters() {
    // A planted "bug": the run is called failed when the server crashes before the heal.
    // Shrinking must strip every other fault.
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&scenario(), |sc| {
        let crash = sc
            .faults
            .iter()
            .any(|t| t.action == FaultAction::Crash { host: 0 });
        prop_assert!(!crash);
        Ok(())
    });
    match result {
        Err(TestError::Fail(_, minimal)) => {
            assert_eq!(minimal.faults.len(), 1, "{:?}", minimal.faults);
            assert_eq!(minimal.faults[0].action, FaultAction::Crash { host: 0 });
        }
        other => panic!("the planted failure was not found: {other:?}"),
    }
}

#[test]
fn the_shrinker_strips_what_a_failure_does_not_need() {
    // A liveness bound nobody can meet fails every variant, so shrinking must remove every
    // fault and rate and bring the workload to its minimum.
    let mut sc = BackendScenario::generate(3, 8);
    sc.mix = Mix::all();
    sc.faults.push(Timed {
        at_ms: 10,
        action: FaultAction::Crash { host: 0 },
    });
    sc.random.reset_ppm = 1_000;
    sc.phases.heal_at_ms = 1_000;
    sc.phases.converge_within_ms = 1;
    let min = shrink::<BackendWorld>(&sc, |_| {});
    assert!(run(&min, Keep::default()).is_err(), "still fails");
    assert!(min.faults.is_empty(), "{:?}", min.faults);
    assert_eq!(min.random.reset_ppm, 0);
    assert_eq!(min.mix, Mix::default(), "every request family switched off");
    assert_eq!(min.clients, 1);
    assert_eq!(
        (min.conns_per_client, min.max_requests, min.max_depth),
        (1, 1, 1)
    );
}
