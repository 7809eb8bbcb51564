//! # weaprous-net-real
//!
//! Runs `weaprous-core` connection machines on real sockets. This crate makes no
//! protocol decision: it moves bytes, time, file results and signals into machines and carries
//! out what they ask (ARCHITECTURE.md, "The real driver").
//!
//! * [`clock`]: the real clocks mapped onto core's [`weaprous_core::node::Now`].
//! * [`evloop`]: the server's data path, one edge-triggered event loop per thread.
//! * [`files`]: carries out file effects on the real file system.
//! * [`logs`]: carries out durable-log effects (append, sync, read) in a data directory.
//! * [`platform`]: every OS call beyond `std`'s portable surface (epoll on Linux, the `polling`
//!   crate elsewhere, or on Linux with the `portable` feature).
//! * [`node`]: node machines on the event loops: mailboxes, listeners, connects, jobs, logs.
//! * [`proxy`]: the proxy's handler on the event loop (client sockets, upstream sockets, pool).
//! * [`server`]: how a server is run, and `serve` for single-socket machines.
//! * [`shutdown`]: SIGINT/SIGTERM (graceful shutdown) and SIGHUP (reload).

pub mod clock;
pub mod evloop;
pub mod files;
pub mod logs;
pub mod node;
pub mod platform;
pub mod proxy;
pub mod server;
pub mod shutdown;
