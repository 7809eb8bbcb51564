//! # weaprous-net-real
//!
//! Runs `weaprous-core` connection machines on real sockets with smol. This crate makes no
//! protocol decision: it moves bytes, time, file results and signals into machines and carries
//! out what they ask (DESIGN.md §5).
//!
//! * [`clock`]: the real clocks mapped onto core's [`weaprous_core::node::Now`].
//! * [`evloop`]: the server's data path, one edge-triggered epoll loop per thread.
//! * [`files`]: carries out file effects on the real file system.
//! * [`logs`]: carries out durable-log effects (append, sync, read) in a data directory.
//! * [`proxy`]: the proxy's connection task (client socket, upstream socket, pool).
//! * [`server`]: the accept loop and the per-connection task that calls its machine inline.
//! * [`shutdown`]: SIGINT/SIGTERM (and the drain signal every connection listens to).

pub mod clock;
pub mod evloop;
pub mod files;
pub mod logs;
pub mod proxy;
pub mod server;
pub mod shutdown;
