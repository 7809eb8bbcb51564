//! The chat server.
//!
//! * [`channels`]: channels, dense per-channel sequence numbers, server-wide positions (the
//!   event ids of the live stream), idempotent posts by transaction id, history queries, as
//!   pure values.
//! * [`node`]: the node that owns them, with accounts, sessions, the durable log, the routes
//!   and the event streams.
//! * [`snapshot`]: the log's two slots and the snapshots that keep it from growing with
//!   superseded records.
//! * [`tracker`]: the peer tracker (who is online for peer-to-peer messaging, and where).
//! * [`check`]: what any sequence of requests must do to the node (the fuzz target's and a
//!   property test's body).

pub mod channels;
pub mod check;
pub mod node;
pub mod snapshot;
pub mod tracker;
