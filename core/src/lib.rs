//! # weaprous-core
//!
//! Every protocol decision of weaprous, as pure state machines: bytes, time and randomness go in;
//! bytes, timers and effects come out. This crate does no I/O, reads no clock, spawns nothing, owns
//! no global randomness and iterates no hash maps (enforced by `core/clippy.toml` and by
//! `tests/sans_io_rules.rs`), so the same inputs always give the same outputs. That is what lets
//! `weaprous-net-sim` replay a whole network from one seed, and `weaprous-net-real` run the very
//! same machines on real sockets.
//!
//! * [`http`]: HTTP/1.1 message types, the incremental parser, the serializer, request-target
//!   handling and the server connection machine.
//! * [`node`]: the contract between a machine and its driver.
//! * [`backend`]: the static-file server (`backend` binary) as a connection machine.
//! * [`chat`]: the chat server's state: channels, messages, idempotent posts, the peer tracker.
//! * [`p2p`]: peer-to-peer messaging: the wire protocol and delivery between peers.
//! * [`time`]: the crate's own clock type.
//! * [`web`]: WeApRous, the web framework's pure pieces (forms, cookies, the cookie jar, Basic
//!   authentication).

#![forbid(unsafe_code)]

pub mod backend;
pub mod buggify;
pub mod chat;
pub mod http;
pub mod node;
pub mod p2p;
pub mod proxy;
pub mod time;
pub mod web;
