//! The backend machine against 50 simulated clients (keep-alive and pipelined connections,
//! byte-by-byte to MTU-sized chunking), over many seeds; every response byte is checked.

use weaprous_net_sim::backend_world::{run, BackendScenario};
use weaprous_net_sim::client::{Action, ClientReq, ConnPlan, Expect, SimClient};

fn seeds() -> std::ops::Range<u64> {
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    0..n
}

#[test]
fn fifty_clients_get_exactly_their_files_over_many_seeds() {
    let mut responses = 0;
    let mut timeouts = 0;
    for seed in seeds() {
        let mut sc = BackendScenario::new(seed);
        // Vary the network per seed: byte-by-byte for some, MTU-sized for others.
        sc.max_chunk = [1, 7, 512, 1500, 65_536][(seed % 5) as usize];
        // Tiny chunks cost an event per byte or so: fewer clients keep those seeds quick.
        sc.clients = match sc.max_chunk {
            1 => 3,
            7 => 10,
            _ => 50,
        };
        let clients = sc.clients;
        match run(sc) {
            Ok(r) => {
                assert!(r.responses > 0);
                responses += r.responses;
                timeouts += r.timeouts;
            }
            Err(f) => {
                let mut sc = BackendScenario::new(seed);
                sc.keep_trace = true;
                sc.max_chunk = [1, 7, 512, 1500, 65_536][(seed % 5) as usize];
                sc.clients = clients;
                let detail = run(sc).err().map(|f| f.to_string()).unwrap_or_default();
                panic!("{f}\nreplay with the trace:\n{detail}");
            }
        }
    }
    assert!(
        responses > 1000,
        "the workload actually ran ({responses} responses)"
    );
    assert!(
        timeouts > 10,
        "stalled clients met the header deadline ({timeouts} answered 408)"
    );
}

#[test]
fn one_seed_twice_gives_the_same_trace() {
    for seed in [1, 2, 99] {
        let a = run(BackendScenario::new(seed)).unwrap();
        let b = run(BackendScenario::new(seed)).unwrap();
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.events, b.events);
    }
    let a = run(BackendScenario::new(1)).unwrap();
    let c = run(BackendScenario::new(2)).unwrap();
    assert_ne!(
        a.trace_hash, c.trace_hash,
        "different seeds explore different schedules"
    );
}

#[test]
fn the_client_oracle_rejects_a_wrong_body() {
    let req = ClientReq {
        method: weaprous_core::http::Method::Get,
        path: "/a".into(),
        range: None,
        expect: Expect {
            status: 200,
            body: Some(b"right".to_vec()),
        },
    };
    let mut c = SimClient::new(
        0,
        vec![ConnPlan {
            reqs: vec![req],
            depth: 1,
            close_header: false,
            stall_after: None,
        }],
    );
    assert_eq!(c.start(), vec![Action::Connect]);
    c.on_connected();
    let err = c
        .on_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwrong")
        .unwrap_err();
    assert!(err.contains("differs"), "{err}");
}
