//! # weaprous-net-sim
//!
//! Runs weaprous machines on a simulated network and disk, in one thread, deterministically
//! from one seed: the same scenario always produces the same trace (and trace hash).
//!
//! * [`engine`]: the event loop, hosts, simulated TCP streams and the fault model; worlds
//!   implement [`engine::Node`] for their hosts.
//! * [`scenario`]: faults, rates and phases as serializable values.
//! * [`clock`]: each host's skewed, drifting clock.
//! * [`disk`]: the simulated disk and its fault model.
//! * [`rng`]: independent seeded random streams.
//! * [`trace`]: the trace hash, its readable tail, and divergence search.
//! * [`coverage`]: "sometimes" counters.
//! * [`host`]: the generic host: a node machine and its connection machines, driven as the
//!   node contract says; worlds observe it.
//! * [`deadlines`]: a host's connection deadlines behind its one timer, and the spin check.
//! * [`stream_client`]: a client host for any world: connection I/O here, decisions and
//!   checks in a script.
//! * [`client`]: the simulated HTTP client (requests, and the oracle that checks answers).
//! * [`workload`]: what the clients send to the static backend, and what it must answer.
//! * [`backend`]: the backend world (the real backend machine and 100 clients).
//! * [`line_world`]: the node contract's demonstration node and clients under faults (a world
//!   built on [`host`] alone).
//! * [`chat_browser`]: a simulated browser of the chat server, and the oracles a client
//!   states.
//! * [`chat_world`]: the chat world (the chat node and 50 browsers under faults).
//! * [`p2p_world`]: the P2P world (the tracker and 50 peer nodes under faults).
//! * [`origin`]: scripted origins that answer in every shape HTTP allows, and malformed.
//! * [`proxy_world`]: the proxy world (the real proxy machines, three backends, clients).
//! * [`world`]: the [`world::World`] trait (a world is its topology, workload, faults and
//!   oracles) and the one harness every world runs in: heal and liveness, determinism,
//!   replay and shrinking.

pub mod backend;
pub mod chat_browser;
pub mod chat_world;
pub mod client;
pub mod clock;
pub mod coverage;
pub mod deadlines;
pub mod disk;
pub mod engine;
pub mod host;
pub mod line_world;
pub mod origin;
pub mod p2p_world;
pub mod proxy_world;
pub mod rng;
pub mod scenario;
pub mod stream_client;
pub mod trace;
pub mod workload;
pub mod world;
