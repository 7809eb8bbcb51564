//! `proxy`: the Host-routing reverse proxy (issue in progress: today `--check` validates a
//! configuration and prints its routing table, as `nginx -t` does; serving comes next).
//!
//! `proxy --check --config FILE` prints every warning as `FILE:LINE:COL: warning: ...`, the
//! routing table, and `FILE: syntax is ok`; on an error it prints `FILE:LINE:COL: ...` and exits
//! with status 1.

use clap::Parser;
use std::path::PathBuf;
use weaprous_core::proxy::config::Config;

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
        println!(
            "{}: syntax is ok ({} hosts{})",
            args.config.display(),
            config.hosts.len(),
            if config.default.is_some() {
                " and a default"
            } else {
                ""
            }
        );
        std::process::exit(0);
    }
    let _ = (&args.server_ip, args.server_port);
    eprintln!("proxy: serving is not built yet; only --check works today");
    std::process::exit(2);
}
