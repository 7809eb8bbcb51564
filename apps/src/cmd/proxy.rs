//! `proxy`: the Host-routing reverse proxy (`weaprous_core::proxy`, driven by
//! `weaprous_net_real::proxy`).
//!
//! `proxy --check --config FILE` prints every warning as `FILE:LINE:COL: warning: ...`, the
//! routing table, and `FILE: syntax is ok`; on an error it prints `FILE:LINE:COL: ...` and exits
//! with status 1. Without `--check` it serves: prints `proxy listening on ADDR`, one access-log
//! line per request (client, request, host, status, bytes, upstream, attempts, timings).
//! SIGHUP reloads the file: new connections use the new routes, connections already open
//! finish on the old ones; an invalid file is reported and the old routes stay (either outcome
//! is one line on stdout: `proxy: reloaded ...` or `proxy: reload refused ...`).
//! SIGINT/SIGTERM: stop accepting, finish in-flight exchanges, exit.

use clap::Parser;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weaprous_core::proxy::config::Config;
use weaprous_core::proxy::conn::{ProxyNode, ProxyShared};
use weaprous_net_real::proxy::{serve_proxy, ProxyContext};
use weaprous_net_real::server::ServeOptions;
use weaprous_net_real::shutdown::on_sighup;

#[derive(Parser, Debug)]
#[command(name = "proxy", version, about = "weaprous reverse proxy")]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    server_ip: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    server_port: u16,
    /// The routing configuration.
    #[arg(long, default_value = "config/proxy.conf")]
    config: PathBuf,
    /// Validate the configuration, print the routing table and exit.
    #[arg(long)]
    check: bool,
    /// Worker threads, each an event loop with its own listening socket (default: one per
    /// core).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not print an access-log line per request.
    #[arg(long)]
    no_access_log: bool,
}

/// Reads and parses the configuration, printing its warnings; `Err` is the message to print.
pub fn load(path: &std::path::Path) -> Result<Config, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let config = Config::parse(&text).map_err(|d| format!("{name}:{d}"))?;
    for w in &config.warnings {
        eprintln!("{name}:{}: warning: {}", w.pos, w.message);
    }
    Ok(config)
}

/// Parses `args` (the first is the program name) and runs.
pub fn main_with<I, T>(args: I) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = Args::parse_from(args);
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("proxy: {e}");
            std::process::exit(1);
        }
    };
    if args.check {
        print!("{}", config.table());
        let n = config.hosts.len();
        println!(
            "{}: syntax is ok ({n} host{}{})",
            args.config.display(),
            if n == 1 { "" } else { "s" },
            if config.default.is_some() {
                " and a default"
            } else {
                ""
            }
        );
        std::process::exit(0);
    }
    if let Err(e) = serve(args, config) {
        eprintln!("proxy: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

fn context(config: Config, access_log: bool) -> Arc<ProxyContext> {
    let mut shared = ProxyShared::new(config);
    shared.access_log = access_log;
    let shared = Arc::new(shared);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    Arc::new(ProxyContext {
        node: Mutex::new(ProxyNode::new(&shared, seed)),
        shared,
        access_log,
    })
}

fn serve(args: Args, config: Config) -> Result<(), String> {
    let addr = crate::socket_addr(&args.server_ip, args.server_port)?;
    let access_log = !args.no_access_log;
    let current = Arc::new(Mutex::new(context(config, access_log)));
    let reload = {
        let current = current.clone();
        let path = args.config.clone();
        move || match load(&path) {
            Ok(config) => {
                let hosts = config.hosts.len();
                *current.lock().unwrap_or_else(|p| p.into_inner()) = context(config, access_log);
                // On stdout, beside the access log, so whoever watches the log sees it.
                let s = if hosts == 1 { "" } else { "s" };
                println!("proxy: reloaded {} ({hosts} host{s})", path.display());
            }
            Err(e) => println!("proxy: reload refused, keeping the running routes: {e}"),
        }
    };
    on_sighup(reload).map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    let mut opts = ServeOptions::new("proxy", addr);
    if let Some(t) = args.threads {
        opts.threads = t;
    }
    opts.access_log = access_log;
    serve_proxy(opts, current).map_err(|e| format!("{addr}: {e}"))
}
