//! # weaprous-net-sim
//!
//! Runs weaprous machines on a simulated network and disk, in one thread, deterministically
//! from one seed: the same seed always produces the same trace (and trace hash).
//!
//! This is the first version (the foundation issue): virtual time that jumps to the next event,
//! simulated TCP streams with sampled latency and arbitrary chunking, flow control, a simulated
//! disk, and one world, [`backend_world`], in which the real backend machine serves many
//! simulated HTTP clients whose every response byte is checked. The fault model (partitions,
//! crashes, disk errors, ...) and scenario shrinking come with the simulator issue.
//!
//! * [`rng`]: independent seeded random streams.
//! * [`trace`]: the trace hash and its readable tail.
//! * [`disk`]: the simulated file system behind file effects.
//! * [`client`]: the simulated HTTP client (workload and oracle).
//! * [`backend_world`]: backend + clients, the event loop.

pub mod backend_world;
pub mod client;
pub mod disk;
pub mod rng;
pub mod trace;
