//! `stack`: starts every weaprous process as a child, prints the URLs, and stops them all on
//! Ctrl-C (SIGINT) or SIGTERM. Today that is the `backend` and the `proxy` (routing by
//! `config/proxy.conf`); the chat app joins them with its issue.
//!
//! Each child is this same executable run as `stack child NAME ARGS...`, so `cargo run --bin
//! stack` needs no other binary to have been built.

use clap::Parser;
use std::process::{Child, Command};

#[derive(Parser, Debug)]
#[command(version, about = "start the whole weaprous system")]
struct Args {
    /// Address every process listens on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: String,
    /// Port of the static-file backend.
    #[arg(long, default_value_t = 9000)]
    backend_port: u16,
    #[arg(long, default_value = "www")]
    www: String,
    #[arg(long = "static", default_value = "static")]
    static_dir: String,
    /// Port of the reverse proxy.
    #[arg(long, default_value_t = 8080)]
    proxy_port: u16,
    /// The proxy's routes.
    #[arg(long, default_value = "config/proxy.conf")]
    config: String,
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "child") {
        match argv.get(2).and_then(|n| n.to_str()) {
            Some("backend") => weaprous_apps::cmd::backend::main_with(argv[2..].iter().cloned()),
            Some("proxy") => weaprous_apps::cmd::proxy::main_with(argv[2..].iter().cloned()),
            other => {
                eprintln!("stack: unknown child {other:?}");
                std::process::exit(2);
            }
        }
    }
    let args = Args::parse();
    // Watched before anything starts, so Ctrl-C at any point stops the children too.
    let terminate = weaprous_net_real::shutdown::terminate_signal();
    let me = std::env::current_exe().unwrap_or_else(|_| "stack".into());
    let mut children: Vec<(&str, Child)> = Vec::new();
    let backend = Command::new(&me)
        .args(["child", "backend"])
        .args([
            "--server-ip",
            &args.ip,
            "--server-port",
            &args.backend_port.to_string(),
        ])
        .args(["--www", &args.www, "--static", &args.static_dir])
        .spawn();
    match backend {
        Ok(c) => children.push(("backend", c)),
        Err(e) => {
            eprintln!("stack: cannot start backend ({e})");
            std::process::exit(1);
        }
    }
    let proxy = Command::new(&me)
        .args(["child", "proxy"])
        .args([
            "--server-ip",
            &args.ip,
            "--server-port",
            &args.proxy_port.to_string(),
        ])
        .args(["--config", &args.config])
        .spawn();
    match proxy {
        Ok(c) => children.push(("proxy", c)),
        Err(e) => eprintln!("stack: cannot start the proxy ({e}); the backend runs alone"),
    }
    println!(
        "stack: backend (static files)  http://{}:{}/",
        args.ip, args.backend_port
    );
    println!(
        "stack: proxy (routes in {})  http://{}:{}/  e.g. curl -H 'Host: app1.local' http://{}:{}/",
        args.config, args.ip, args.proxy_port, args.ip, args.proxy_port
    );
    println!("stack: Ctrl-C stops everything");
    let watch = smol::block_on(async {
        futures_lite::future::or(
            async {
                match terminate {
                    Ok(t) => t.recv().await.map(|_| None),
                    Err(e) => Err(e),
                }
            },
            async {
                // A child that dies on its own ends the stack too.
                loop {
                    for (name, c) in children.iter_mut() {
                        if let Ok(Some(status)) = c.try_wait() {
                            return Ok(Some((name.to_string(), status)));
                        }
                    }
                    async_io::Timer::after(std::time::Duration::from_millis(200)).await;
                }
            },
        )
        .await
    });
    if let Ok(Some((name, status))) = &watch {
        eprintln!("stack: {name} exited ({status}); stopping the rest");
    }
    for (_, c) in children.iter_mut() {
        // SIGTERM so each child drains its connections; std only offers SIGKILL.
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
    }
    for (name, mut c) in children {
        match c.wait() {
            Ok(s) => println!("stack: {name} stopped ({s})"),
            Err(e) => eprintln!("stack: {name}: {e}"),
        }
    }
}
