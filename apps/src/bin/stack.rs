//! `stack`: starts every weaprous process as a child, prints the URLs once they all listen,
//! and stops them all on Ctrl-C (SIGINT) or SIGTERM: the static `backend`, the chat server
//! `sampleapp` and the `proxy` in front of them.
//!
//! Decisions (foreman's, where it has one):
//! * Each child's output comes through stack, every line prefixed with the child's name
//!   (`backend | ...`), so one terminal shows who said what.
//! * The URLs and "Ctrl-C stops everything" are printed only once every child has said it is
//!   listening.
//! * A child that fails to start or dies stops the others: stack prints (on stdout, with the
//!   rest of the log) which child and its exit status, and exits 1. Ctrl-C or SIGTERM stop them all and stack exits 0 when they
//!   stopped cleanly.
//! * Without `--config`, the proxy's routes are written from stack's own flags, so they point
//!   at the processes it started whatever their ports: `app1.local` reaches the backend and
//!   every other host (`localhost`, `127.0.0.1`, ...) the chat, which is what a person opening
//!   the site sees. A `--config` given is used as it is. The chat server believes the
//!   proxy's `X-Forwarded-For` (its rate limits are per client, not per proxy).
//!
//! Each child is this same executable run as `stack child NAME ARGS...`, so `cargo run --bin
//! stack` needs no other binary to have been built.

use clap::Parser;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(version, about = "start the whole weaprous system")]
struct Args {
    /// Address every process listens on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: String,
    /// Port of the static-file backend.
    #[arg(long, default_value_t = 9000)]
    backend_port: u16,
    /// Root for HTML pages.
    #[arg(long, default_value = "www")]
    www: String,
    /// Root for every other file.
    #[arg(long = "static", default_value = "static")]
    static_dir: String,
    /// Port of the reverse proxy.
    #[arg(long, default_value_t = 8080)]
    proxy_port: u16,
    /// Port of the chat server.
    #[arg(long, default_value_t = 8000)]
    app_port: u16,
    /// Where the chat server keeps accounts, sessions and messages.
    #[arg(long, default_value = "data")]
    data_dir: String,
    /// The proxy's routes, used as they are (default: routes written from these flags, every
    /// host to the backend started here).
    #[arg(long)]
    config: Option<String>,
}

/// What the children's output threads report.
enum Said {
    /// A line the child printed (stdout or stderr).
    Line(&'static str, String),
    /// The child said it listens.
    Listening(&'static str),
    /// One of the child's output streams ended: everything it wrote there has been sent.
    Closed(&'static str),
}

/// Forwards `from`'s lines to stack's stdout as `NAME | line`, and tells `tx` about them.
fn relay(name: &'static str, from: impl Read + Send + 'static, tx: Sender<Said>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let listening = line.starts_with(&format!("{name} listening on "));
            if tx.send(Said::Line(name, line)).is_err() {
                break;
            }
            if listening {
                let _ = tx.send(Said::Listening(name));
            }
        }
        let _ = tx.send(Said::Closed(name));
    });
}

struct Proc {
    name: &'static str,
    child: Child,
    listening: bool,
    /// Output streams not yet at their end (stdout and stderr).
    open_streams: u8,
}

fn spawn(name: &'static str, args: &[String], tx: &Sender<Said>) -> Result<Proc, String> {
    let me = std::env::current_exe().unwrap_or_else(|_| "stack".into());
    let mut child = Command::new(me)
        .args(["child", name])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    if let Some(out) = child.stdout.take() {
        relay(name, out, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        relay(name, err, tx.clone());
    }
    Ok(Proc {
        name,
        child,
        listening: false,
        open_streams: 2,
    })
}

/// The proxy's routes when none were given: `app1.local` to the backend, every other host
/// to the chat server.
fn generated_config(backend: &str, app: &str) -> String {
    format!(
        "# Written by stack from its flags: app1.local reaches the backend it started, every\n\
         # other host the chat server.\n\
         proxy_connect_timeout 5s;\n\
         proxy_read_timeout 60s;\n\
         host \"app1.local\" {{ proxy_pass http://{backend}; }}\n\
         default {{ proxy_pass http://{app}; }}\n"
    )
}

/// The first child that has exited, with its status.
fn exited(procs: &mut [Proc]) -> Option<(&'static str, ExitStatus)> {
    procs.iter_mut().find_map(|p| match p.child.try_wait() {
        Ok(Some(status)) => Some((p.name, status)),
        _ => None,
    })
}

/// Asks every child still running to stop, and waits for each.
fn stop_all(procs: &mut [Proc]) -> bool {
    for p in procs.iter_mut() {
        if matches!(p.child.try_wait(), Ok(None)) {
            // SIGTERM, so each child drains its connections.
            let _ = weaprous_net_real::shutdown::ask_to_stop(p.child.id());
        }
    }
    let mut clean = true;
    for p in procs.iter_mut() {
        match p.child.wait() {
            Ok(s) => {
                println!("stack: {} stopped ({s})", p.name);
                clean &= s.success();
            }
            Err(e) => {
                eprintln!("stack: {}: {e}", p.name);
                clean = false;
            }
        }
    }
    clean
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "child") {
        // A stack that dies, even by SIGKILL, takes its children with it.
        weaprous_net_real::shutdown::stop_with_parent();
        match argv.get(2).and_then(|n| n.to_str()) {
            Some("backend") => weaprous_apps::cmd::backend::main_with(argv[2..].iter().cloned()),
            Some("proxy") => weaprous_apps::cmd::proxy::main_with(argv[2..].iter().cloned()),
            Some("sampleapp") => {
                weaprous_apps::cmd::sampleapp::main_with(argv[2..].iter().cloned())
            }
            other => {
                eprintln!("stack: unknown child {other:?}");
                std::process::exit(2);
            }
        }
    }
    let args = Args::parse();
    std::process::exit(run(args));
}

fn run(args: Args) -> i32 {
    // Watched before anything starts, so Ctrl-C at any point stops the children too.
    let terminate = weaprous_net_real::shutdown::terminate_signal();
    let (tx, rx) = channel();
    let upstream_ip = match args.ip.as_str() {
        "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        ip => ip,
    };
    let at = |port: u16| {
        if upstream_ip.contains(':') {
            format!("[{upstream_ip}]:{port}")
        } else {
            format!("{upstream_ip}:{port}")
        }
    };
    let (backend, app) = (at(args.backend_port), at(args.app_port));
    let generated =
        std::env::temp_dir().join(format!("weaprous-stack-{}.conf", std::process::id()));
    let config = match &args.config {
        Some(c) => c.clone(),
        None => {
            if let Err(e) = std::fs::write(&generated, generated_config(&backend, &app)) {
                eprintln!(
                    "stack: cannot write the proxy's routes to {}: {e}",
                    generated.display()
                );
                return 1;
            }
            generated.to_string_lossy().into_owned()
        }
    };
    let children: [(&'static str, Vec<String>); 3] = [
        (
            "backend",
            vec![
                "--server-ip".into(),
                args.ip.clone(),
                "--server-port".into(),
                args.backend_port.to_string(),
                "--www".into(),
                args.www.clone(),
                "--static".into(),
                args.static_dir.clone(),
            ],
        ),
        (
            "sampleapp",
            vec![
                "--server-ip".into(),
                args.ip.clone(),
                "--server-port".into(),
                args.app_port.to_string(),
                "--www".into(),
                args.www.clone(),
                "--static".into(),
                args.static_dir.clone(),
                "--data-dir".into(),
                args.data_dir.clone(),
                "--trusted-proxy".into(),
                upstream_ip.to_string(),
            ],
        ),
        (
            "proxy",
            vec![
                "--server-ip".into(),
                args.ip.clone(),
                "--server-port".into(),
                args.proxy_port.to_string(),
                "--config".into(),
                config.clone(),
            ],
        ),
    ];
    let mut procs = Vec::new();
    for (name, child_args) in &children {
        match spawn(name, child_args, &tx) {
            Ok(p) => procs.push(p),
            Err(e) => {
                println!("stack: {e}; stopping the others");
                stop_all(&mut procs);
                return 1;
            }
        }
    }
    drop(tx);
    // The signal, watched on a thread of its own, becomes one more message.
    let (sig_tx, sig_rx) = channel();
    std::thread::spawn(move || {
        let got = smol::block_on(async {
            match terminate {
                Ok(t) => t.recv().await.is_ok(),
                Err(_) => false,
            }
        });
        if got {
            let _ = sig_tx.send(());
        }
    });
    let mut announced = false;
    let code = loop {
        // A child's lines, a child's exit, or the signal: whichever comes first.
        if let Ok(said) = rx.recv_timeout(Duration::from_millis(100)) {
            heard(said, &mut procs, &mut announced, &args, &config);
        }
        if sig_rx.try_recv().is_ok() {
            println!("stack: stopping everything");
            break if stop_all(&mut procs) { 0 } else { 1 };
        }
        if let Some((name, status)) = exited(&mut procs) {
            // Its last words first: everything it wrote before its streams ended. The
            // deadline only guards against a grandchild that kept a stream open.
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while procs.iter().any(|p| p.name == name && p.open_streams > 0) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(said) => heard(said, &mut procs, &mut announced, &args, &config),
                    Err(_) => break,
                }
            }
            let when = if announced {
                ""
            } else {
                " before it was listening"
            };
            println!("stack: {name} exited ({status}){when}; stopping the others");
            stop_all(&mut procs);
            break 1;
        }
    };
    if args.config.is_none() {
        let _ = std::fs::remove_file(&generated);
    }
    code
}

/// Acts on one report of the output threads: prints a line, notes a listener (announcing the
/// URLs once all listen), or counts a stream's end.
fn heard(said: Said, procs: &mut [Proc], announced: &mut bool, args: &Args, config: &str) {
    match said {
        Said::Line(name, line) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{name:<9} | {line}");
        }
        Said::Listening(name) => {
            if let Some(p) = procs.iter_mut().find(|p| p.name == name) {
                p.listening = true;
            }
            if !*announced && procs.iter().all(|p| p.listening) {
                *announced = true;
                announce(args, config);
            }
        }
        Said::Closed(name) => {
            if let Some(p) = procs.iter_mut().find(|p| p.name == name) {
                p.open_streams = p.open_streams.saturating_sub(1);
            }
        }
    }
}

/// The URLs, once every child listens.
fn announce(args: &Args, config: &str) {
    let host = match args.ip.as_str() {
        "0.0.0.0" | "127.0.0.1" => "localhost",
        ip => ip,
    };
    println!(
        "stack: the chat, through the proxy     http://{host}:{}/  (admin / password on a new --data-dir)",
        args.proxy_port
    );
    println!(
        "stack: proxy routes in {config}; a named host: curl -H 'Host: app1.local' http://{host}:{}/",
        args.proxy_port
    );
    println!(
        "stack: the chat server alone           http://{host}:{}/",
        args.app_port
    );
    println!(
        "stack: backend (static files) alone    http://{host}:{}/",
        args.backend_port
    );
    println!("stack: Ctrl-C stops everything");
}
