//! The reverse proxy's protocol logic.
//!
//! * [`lex`]: the tokens of `proxy.conf`.
//! * [`config`]: its grammar, meaning and routing (host, then longest location prefix).

pub mod config;
pub mod lex;
