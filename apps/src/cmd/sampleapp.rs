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
//!
//! With `--tracker URL` it runs a **peer node** instead (`weaprous_core::p2p`): it listens for
//! other peers on `--p2p-ip`:`--p2p-port`, registers with the tracker at URL as `--name`
//! (whose password comes from `--password-file` or the `WEAPROUS_PASSWORD` environment
//! variable, never from a default), and serves its user's UI and API on `--server-ip`
//! (127.0.0.1 unless given) and `--server-port` (8101 unless given), from `--www` (`www/peer`
//! unless given). Its messages and outbox live in `--data-dir` (`data-peer-NAME` unless
//! given).

use clap::Parser;
use std::net::IpAddr;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use weaprous_core::backend::BackendConfig;
use weaprous_core::chat::node::{ChatConfig, ChatNode};
use weaprous_core::chat::tracker::TrackerPolicy;
use weaprous_core::p2p::node::{PeerConfig, PeerNode};
use weaprous_core::web::url::Url;
use weaprous_net_real::node::serve_node;
use weaprous_net_real::server::ServeOptions;

#[derive(Parser, Debug)]
#[command(name = "sampleapp", version, about = "weaprous chat server")]
pub struct Args {
    /// Address to listen on (default 0.0.0.0; a peer node's UI: 127.0.0.1).
    #[arg(long)]
    server_ip: Option<String>,
    /// Port to listen on (0 picks a free one; the startup line tells which). Default 8000; a
    /// peer node's UI: 8101.
    #[arg(long)]
    server_port: Option<u16>,
    /// Where accounts, sessions and messages are kept (default `data`; a peer node's:
    /// `data-peer-NAME`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Root for HTML pages (default `www`; a peer node's: `www/peer`).
    #[arg(long)]
    www: Option<PathBuf>,
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
    /// Run as a peer node of the tracker (the chat server) at this URL: `http://HOST:PORT`.
    #[arg(long)]
    tracker: Option<String>,
    /// A peer node's account on the tracker (and its UI's sign-in).
    #[arg(long)]
    name: Option<String>,
    /// A file whose first line is the account's password (else `WEAPROUS_PASSWORD`).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Where a peer node accepts links from other peers.
    #[arg(long, default_value = "0.0.0.0")]
    p2p_ip: String,
    #[arg(long, default_value_t = 7101)]
    p2p_port: u16,
    /// The address a peer node asks the tracker to hand out instead of the one it sees.
    #[arg(long)]
    announce_ip: Option<IpAddr>,
    /// How long a peer's message waits for its recipient before it is reported failed.
    #[arg(long, default_value = "1h", value_parser = crate::duration)]
    message_ttl: std::time::Duration,
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
    if args.tracker.is_some() {
        return run_peer(args);
    }
    let addr = crate::socket_addr(
        args.server_ip.as_deref().unwrap_or("0.0.0.0"),
        args.server_port.unwrap_or(8000),
    )?;
    let www = crate::root_dir("--www", args.www.as_deref().unwrap_or("www".as_ref()))?;
    let static_root = crate::root_dir("--static", &args.static_dir)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| "data".into());
    crate::private_dir(&data_dir)?;
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
    serve_node(opts, Some(data_dir), move |_| ChatNode::new(cfg.clone())).map_err(|e| e.to_string())
}

/// The peer node (module docs).
fn run_peer(args: Args) -> Result<(), String> {
    let url = args.tracker.as_deref().unwrap_or_default();
    let parsed = Url::parse(url)
        .filter(|u| !u.secure())
        .ok_or_else(|| format!("--tracker {url:?}: give an http://HOST:PORT URL"))?;
    let tracker = (parsed.host.trim_matches(['[', ']']), parsed.port)
        .to_socket_addrs()
        .map_err(|e| format!("--tracker {url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("--tracker {url:?}: the name has no address"))?;
    let name = args
        .name
        .clone()
        .ok_or("a peer node needs --name (its account)")?;
    let password = match &args.password_file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| format!("--password-file {}: {e}", f.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        None => std::env::var("WEAPROUS_PASSWORD").map_err(|_| {
            "a peer node needs its account's password: --password-file FILE or WEAPROUS_PASSWORD"
                .to_string()
        })?,
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    let ui = crate::socket_addr(
        args.server_ip.as_deref().unwrap_or("127.0.0.1"),
        args.server_port.unwrap_or(8101),
    )?;
    let p2p = crate::socket_addr(&args.p2p_ip, args.p2p_port)
        .map_err(|e| e.replace("--server-ip", "--p2p-ip"))?;
    let www = crate::root_dir("--www", args.www.as_deref().unwrap_or("www/peer".as_ref()))?;
    let static_root = crate::root_dir("--static", &args.static_dir)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| format!("data-peer-{name}").into());
    crate::private_dir(&data_dir)?;
    let mut cfg = PeerConfig::new(
        ui,
        p2p,
        tracker,
        &name,
        &password,
        BackendConfig::new(www, static_root),
    );
    cfg.tracker_host = format!("{}:{}", parsed.host, parsed.port);
    cfg.announce_ip = args.announce_ip;
    cfg.message_ttl = args.message_ttl;
    // `peer-NAME listening on ...`: what `stack` waits for.
    let mut opts = ServeOptions::new(&format!("peer-{name}"), ui);
    // One loop: a peer serves one user.
    opts.threads = args.threads.unwrap_or(1);
    opts.access_log = !args.no_access_log;
    serve_node(opts, Some(data_dir), move |_| PeerNode::new(cfg.clone())).map_err(|e| e.to_string())
}
