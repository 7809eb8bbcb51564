//! The reverse proxy's protocol logic.
//!
//! * [`lex`]: the tokens of `proxy.conf`.
//! * [`config`]: its grammar, meaning and routing (host, then longest location prefix).
//! * [`balance`]: choosing an upstream (the five policies, backups, passive health).
//! * [`conn`]: one client connection and its upstream exchange (the proxy's connection machine).
//! * [`forward`]: what changes in the heads the proxy forwards (hop-by-hop, X-Forwarded-*, Via).

pub mod balance;
pub mod config;
pub mod conn;
pub mod forward;
pub mod lex;
