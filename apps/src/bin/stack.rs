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
//! * `--peers N` also starts N peer nodes (`sampleapp --tracker`), named alice, bob, carol,
//!   ... (then `peerK`). Once the chat server listens, stack makes each one's account on it
//!   with a random password kept in `DATA_DIR/peers/NAME.pw` (`0600`; the next run reuses it),
//!   and gives each its own data directory (`DATA_DIR/peer-NAME`), UI port (8101, 8102, ...)
//!   and P2P port (7101, 7102, ...). The URLs it prints include each peer's sign-in.
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
    /// Also start this many peer nodes, registered with the chat server's tracker.
    #[arg(long, default_value_t = 0)]
    peers: usize,
    /// The first peer's UI port (the next ones follow).
    #[arg(long, default_value_t = 8101)]
    peer_ui_port: u16,
    /// The first peer's P2P port (the next ones follow).
    #[arg(long, default_value_t = 7101)]
    peer_p2p_port: u16,
    /// How often peers heartbeat with the tracker (the chat server's `--peer-heartbeat`).
    #[arg(long, default_value = "10s")]
    peer_heartbeat: String,
}

/// Peer names, in order (then `peerK`).
const PEER_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
];

/// The `i`th peer's account name.
fn peer_name(i: usize) -> String {
    PEER_NAMES
        .get(i)
        .map_or_else(|| format!("peer{}", i + 1), |n| n.to_string())
}

/// A peer's password: the one kept from an earlier run, or a new random one (kept `0600`).
fn peer_password(dir: &std::path::Path, name: &str) -> Result<(String, bool), String> {
    let file = dir.join(format!("{name}.pw"));
    if let Ok(text) = std::fs::read_to_string(&file) {
        return Ok((text.trim().to_string(), false));
    }
    let mut raw = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| format!("no randomness for a password: {e}"))?;
    let pw: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    weaprous_apps::private_dir(dir)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(&file)
        .and_then(|mut f| writeln!(f, "{pw}"))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((pw, true))
}

/// `POST /register` on the chat server at `addr`, retrying while it starts (503): the status.
fn register(addr: &str, name: &str, password: &str) -> Result<u16, String> {
    let body = format!("user={name}&password={password}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = (|| -> std::io::Result<u16> {
            let mut s = std::net::TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(
                s,
                "POST /register HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            let mut answer = String::new();
            s.read_to_string(&mut answer)?;
            Ok(answer
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0))
        })();
        match status {
            Ok(503) | Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Ok(code) => return Ok(code),
            Err(e) => return Err(format!("cannot reach the chat server at {addr}: {e}")),
        }
    }
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
    /// A peer's sign-in, for the URLs.
    login: Option<(String, String, u16)>,
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
        login: None,
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
            Some(n) if n == "sampleapp" || n.starts_with("peer-") => {
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
                "--peer-heartbeat".into(),
                args.peer_heartbeat.clone(),
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
    let peer_tx = tx.clone();
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
    let mut peers_started = args.peers == 0;
    let code = loop {
        // Once the chat server listens, the peers get their accounts and start.
        if !peers_started && procs.iter().any(|p| p.name == "sampleapp" && p.listening) {
            peers_started = true;
            if let Err(e) = start_peers(&args, &app, &mut procs, &peer_tx) {
                println!("stack: {e}; stopping the others");
                stop_all(&mut procs);
                break 1;
            }
        }
        // A child's lines, a child's exit, or the signal: whichever comes first.
        if let Ok(said) = rx.recv_timeout(Duration::from_millis(100)) {
            heard(said, &mut procs, &mut announced, &args, &config);
        }
        if sig_rx.try_recv().is_ok() {
            drop(peer_tx);
            println!("stack: stopping everything");
            break if stop_all(&mut procs) { 0 } else { 1 };
        }
        if let Some((name, status)) = exited(&mut procs) {
            drop(peer_tx);
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

/// Makes each peer's account on the chat server at `app` and starts the peers.
fn start_peers(
    args: &Args,
    app: &str,
    procs: &mut Vec<Proc>,
    tx: &Sender<Said>,
) -> Result<(), String> {
    let dir = std::path::Path::new(&args.data_dir).join("peers");
    for i in 0..args.peers {
        let name = peer_name(i);
        let (password, new) = peer_password(&dir, &name)?;
        match register(app, &name, &password)? {
            201 | 303 => {}
            409 if !new => {}
            409 => {
                return Err(format!(
                    "the chat server already has an account {name} whose password stack does not know ({}/{name}.pw is missing)",
                    dir.display()
                ))
            }
            code => return Err(format!("the chat server answered {code} to making {name}'s account")),
        }
        let ui = args.peer_ui_port + i as u16;
        let child_args = vec![
            "--tracker".to_string(),
            format!("http://{app}"),
            "--name".into(),
            name.clone(),
            "--password-file".into(),
            dir.join(format!("{name}.pw"))
                .to_string_lossy()
                .into_owned(),
            "--server-ip".into(),
            args.ip.clone(),
            "--server-port".into(),
            ui.to_string(),
            "--p2p-ip".into(),
            args.ip.clone(),
            "--p2p-port".into(),
            (args.peer_p2p_port + i as u16).to_string(),
            "--www".into(),
            format!("{}/peer", args.www),
            "--static".into(),
            args.static_dir.clone(),
            "--data-dir".into(),
            std::path::Path::new(&args.data_dir)
                .join(format!("peer-{name}"))
                .to_string_lossy()
                .into_owned(),
        ];
        // A launcher's handful of names, kept for its whole life.
        let label: &'static str = Box::leak(format!("peer-{name}").into_boxed_str());
        let mut p = spawn(label, &child_args, tx)?;
        p.login = Some((name, password, ui));
        procs.push(p);
    }
    Ok(())
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
            let all = procs.iter().all(|p| p.listening)
                && procs.iter().filter(|p| p.login.is_some()).count() == args.peers;
            if !*announced && all {
                *announced = true;
                announce(args, config, procs);
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
fn announce(args: &Args, config: &str, procs: &[Proc]) {
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
    for (name, password, ui) in procs.iter().filter_map(|p| p.login.as_ref()) {
        println!("stack: peer {name:<8} http://{host}:{ui}/  (sign in: {name} / {password})");
    }
    println!("stack: Ctrl-C stops everything");
}
