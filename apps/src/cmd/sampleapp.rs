//! `sampleapp`: the chat server (see `weaprous_core::chat::node`).
//!
//! Serves the chat's pages from `--www` and `--static` (the login page and assets without a
//! session, the chat page with one), its API and event stream, and keeps accounts, sessions,
//! channels and messages in `--data-dir` (created `0700`: it holds session tokens and
//! password hashes). Prints `sampleapp listening on ADDR`, one access-log line per request,
//! and notices (the default account, a log cut at start) on standard error.
//! SIGINT/SIGTERM: event streams get a last event and end, in-flight requests finish, exit.
//!
//! It is also the peer tracker (`/submit-info`, `/add-list`, `/get-list`, `/remove-list`):
//! `--peer-heartbeat` is the interval its replies ask peers to follow, `--peer-ttl` how long a
//! silent peer stays listed (3 heartbeats unless set).

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use weaprous_core::backend::BackendConfig;
use weaprous_core::chat::node::{ChatConfig, ChatNode};
use weaprous_core::chat::tracker::TrackerPolicy;
use weaprous_net_real::node::serve_node;
use weaprous_net_real::server::ServeOptions;

#[derive(Parser, Debug)]
#[command(name = "sampleapp", version, about = "weaprous chat server")]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    server_ip: String,
    /// Port to listen on (0 picks a free one; the startup line tells which).
    #[arg(long, default_value_t = 8000)]
    server_port: u16,
    /// Where accounts, sessions and messages are kept.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Root for HTML pages.
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// Root for every other file (css, js, images, ...).
    #[arg(long = "static", default_value = "static")]
    static_dir: PathBuf,
    /// A proxy whose `X-Forwarded-For` is believed for rate limits (repeatable).
    #[arg(long = "trusted-proxy")]
    trusted_proxy: Vec<IpAddr>,
    /// Worker threads, each an event loop with its own listening socket (default: one per
    /// core).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not print an access-log line per request.
    #[arg(long)]
    no_access_log: bool,
    /// Refuse `POST /register` (403): accounts are made some other way.
    #[arg(long)]
    no_register: bool,
    /// How often the peer tracker asks peers to heartbeat (`/add-list`): 500ms, 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = crate::duration)]
    peer_heartbeat: std::time::Duration,
    /// How long a silent peer stays on the tracker's list (default: 3 heartbeats, so two
    /// lost ones are tolerated).
    #[arg(long, value_parser = crate::duration)]
    peer_ttl: Option<std::time::Duration>,
    /// Hand out the `ip` a peer announces even when it differs from the address it connects
    /// from (by default only peers on this host may name another address).
    #[arg(long)]
    accept_announced_ip: bool,
}

/// Parses `args` (the first is the program name) and runs the chat server until
/// SIGINT/SIGTERM.
pub fn main_with<I, T>(args: I) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    crate::exit_with("sampleapp", run(Args::parse_from(args)))
}

fn run(args: Args) -> Result<(), String> {
    let addr = crate::socket_addr(&args.server_ip, args.server_port)?;
    let www = crate::root_dir("--www", &args.www)?;
    let static_root = crate::root_dir("--static", &args.static_dir)?;
    crate::private_dir(&args.data_dir)?;
    let site = BackendConfig::new(www, static_root);
    let mut tracker = TrackerPolicy::every(args.peer_heartbeat);
    if let Some(ttl) = args.peer_ttl {
        if ttl < args.peer_heartbeat {
            return Err("--peer-ttl must be at least --peer-heartbeat".into());
        }
        tracker.ttl = ttl;
    }
    tracker.accept_announced_ip = args.accept_announced_ip;
    let cfg = ChatConfig {
        trusted_proxies: args.trusted_proxy,
        registration: !args.no_register,
        tracker,
        ..ChatConfig::new(addr, site, Arc::new(crate::password::Argon2Hasher))
    };
    let mut opts = ServeOptions::new("sampleapp", addr);
    if let Some(t) = args.threads {
        opts.threads = t;
    }
    opts.access_log = !args.no_access_log;
    serve_node(opts, Some(args.data_dir), move |_| {
        ChatNode::new(cfg.clone())
    })
    .map_err(|e| e.to_string())
}
