//! How a server is run ([`ServeOptions`]), and the access log's line. Node machines run on
//! [`crate::node::serve_node`]; the proxy's two-socket machine has its own handler on the same
//! loop ([`crate::proxy::serve_proxy`]) until it moves onto the node contract.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;
use weaprous_core::node::AccessLog;

/// How to run a server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Worker threads, each with its own event loop (default: one per core).
    pub threads: usize,
    /// How long in-flight exchanges may take to finish after SIGINT/SIGTERM.
    pub grace: Duration,
    /// Print one access-log line per request to stdout.
    pub access_log: bool,
    /// Name printed in the startup line.
    pub name: String,
}

impl ServeOptions {
    pub fn new(name: &str, addr: SocketAddr) -> Self {
        ServeOptions {
            addr,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            grace: Duration::from_secs(30),
            access_log: true,
            name: name.into(),
        }
    }
}

/// The time an access-log line starts with: now, RFC 3339 in UTC with milliseconds
/// (`2026-12-07T08:10:00.123Z`). UTC, so lines from several processes and machines sort
/// together whatever their time zones.
pub(crate) fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    weaprous_core::http::date::rfc3339_utc(now.as_secs(), now.subsec_millis())
}

/// One access-log line: time, client, request, status, bytes, duration.
pub(crate) fn log_line(peer: SocketAddr, l: &AccessLog) {
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{} {} \"{} {}\" {} {} {:.3}ms{}",
        timestamp(),
        peer,
        l.method,
        l.target,
        l.status,
        l.bytes,
        l.duration_ns as f64 / 1e6,
        if l.aborted { " aborted" } else { "" }
    );
}
