//! The chat server's state, as pure values: channels, their messages and what a post may be.
//! The node that owns it (with sessions, the durable log and the event streams) comes next.
//!
//! * [`channels`]: channels, dense per-channel sequence numbers, server-wide positions (the
//!   event ids of the live stream), idempotent posts by transaction id, history queries.

pub mod channels;
