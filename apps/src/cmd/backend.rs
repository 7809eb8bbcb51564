//! `backend`: the static-file server, with sign-in when given a data directory.
//!
//! Serves `--www` for HTML pages and `--static` for everything else, as the seed maps them
//! (see `weaprous_core::backend`). Prints `backend listening on ADDR`, then one access-log line
//! per request. SIGINT/SIGTERM: stop accepting, finish in-flight requests, exit.
//!
//! With `--data-dir` it keeps accounts and sessions there, in the chat server's format (it
//! runs the chat node with the chat API off: `weaprous_core::chat::node`, `ChatConfig::chat`):
//! `POST /login`, `POST /logout`, `POST /register`, `POST /password` and `GET /me` answer,
//! and `/` and `/index.html` need a session (a page linking to the sign-in form otherwise);
//! `login.html` and assets stay public. Without it, every file is public, as a plain static
//! server's are (what the benchmarks measure against nginx).

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use weaprous_core::backend::node::BackendNode;
use weaprous_core::backend::BackendConfig;
use weaprous_core::chat::node::{ChatConfig, ChatNode};
use weaprous_net_real::node::serve_node;
use weaprous_net_real::server::ServeOptions;

#[derive(Parser, Debug)]
#[command(name = "backend", version, about = "weaprous static-file backend")]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    server_ip: String,
    /// Port to listen on (0 picks a free one; the startup line tells which).
    #[arg(long, default_value_t = 9000)]
    server_port: u16,
    /// Root for HTML pages.
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// Root for every other file (css, js, images, ...).
    #[arg(long = "static", default_value = "static")]
    static_dir: PathBuf,
    /// Worker threads, each an event loop with its own listening socket (default: one per
    /// core).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not print an access-log line per request.
    #[arg(long)]
    no_access_log: bool,
    /// Keep accounts and sessions here and require a session for `/` (module docs).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A proxy whose `X-Forwarded-For` is believed for rate limits (repeatable).
    #[arg(long = "trusted-proxy")]
    trusted_proxy: Vec<std::net::IpAddr>,
    /// Refuse `POST /register` (403).
    #[arg(long)]
    no_register: bool,
}

/// Parses `args` (the first is the program name) and runs the backend until SIGINT/SIGTERM.
pub fn main_with<I, T>(args: I) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    crate::exit_with("backend", run(Args::parse_from(args)))
}

fn run(args: Args) -> Result<(), String> {
    let addr = crate::socket_addr(&args.server_ip, args.server_port)?;
    let www = crate::root_dir("--www", &args.www)?;
    let static_root = crate::root_dir("--static", &args.static_dir)?;
    let site = BackendConfig::new(www, static_root);
    let mut opts = ServeOptions::new("backend", addr);
    if let Some(t) = args.threads {
        opts.threads = t;
    }
    opts.access_log = !args.no_access_log;
    let Some(data_dir) = args.data_dir else {
        let cfg = Arc::new(site);
        return serve_node(opts, None, move |_| BackendNode::new(addr, cfg.clone()))
            .map_err(|e| e.to_string());
    };
    crate::private_dir(&data_dir)?;
    let cfg = ChatConfig {
        trusted_proxies: args.trusted_proxy,
        registration: !args.no_register,
        chat: false,
        ..ChatConfig::new(addr, site, Arc::new(crate::password::Argon2Hasher))
    };
    serve_node(opts, Some(data_dir), move |_| ChatNode::new(cfg.clone())).map_err(|e| e.to_string())
}
