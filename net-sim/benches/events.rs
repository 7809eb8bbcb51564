//! Simulated events per wall-second with the real HTTP state machines, and the cost of idle
//! hosts. `cargo bench -p weaprous-net-sim --bench events`
//!
//! * A sweep of the `backend-faults` scenario (100 clients, swarm faults), one thread.
//! * A two-host exchange (the backend and one client) alone, then beside 1,000 idle hosts: the
//!   same events must take about the same wall time (the event heap skips idle hosts).

use std::time::Instant;
use weaprous_net_sim::backend::{run, BackendScenario};
use weaprous_net_sim::trace::Keep;

fn main() {
    let t = Instant::now();
    let mut events = 0;
    for seed in 0..100 {
        let r = run(&BackendScenario::generate(seed, 100), Keep::default()).expect("passes");
        events += r.events;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "backend-faults, 100 seeds, 1 thread: {events} events in {s:.2}s = {:.0} events/s (goal 1,000,000)",
        events as f64 / s
    );
    let pair = |idle: usize| {
        let mut sc = BackendScenario::quiet(7);
        sc.clients = 1;
        sc.conns_per_client = 200;
        sc.idle_hosts = idle;
        let t = Instant::now();
        let r = run(&sc, Keep::default()).expect("passes");
        (r.events, t.elapsed().as_secs_f64())
    };
    let (e0, s0) = pair(0);
    let (e1, s1) = pair(1000);
    println!(
        "two hosts: {e0} events in {:.1} ms ({:.0} events/s); beside 1000 idle hosts: {e1} events in {:.1} ms ({:.0} events/s); ratio {:.2}",
        s0 * 1e3,
        e0 as f64 / s0,
        s1 * 1e3,
        e1 as f64 / s1,
        (e1 as f64 / s1) / (e0 as f64 / s0)
    );
}
