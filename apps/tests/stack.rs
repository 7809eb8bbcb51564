//! `stack` as a person runs it: it starts the processes, says so once they listen, wires the
//! proxy to them whatever the ports, stops everything on SIGTERM, and when a child fails or
//! dies stops the rest and says which.

mod common;

use common::{get, request, Server};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// stack's arguments: the backend's and the proxy's ports, a free port for the chat server,
/// the repository's site, a data directory of its own (removed when the returned guard
/// drops), and `extra`.
fn stack_args(port: u16, proxy_port: u16, extra: &[&str]) -> (Vec<String>, common::TempDir) {
    let root = env!("CARGO_MANIFEST_DIR");
    let data = common::TempDir::new("stack-data");
    let mut args = vec![
        "--backend-port".into(),
        port.to_string(),
        "--proxy-port".into(),
        proxy_port.to_string(),
        "--app-port".into(),
        common::free_port().to_string(),
        "--data-dir".into(),
        data.path().to_string_lossy().into_owned(),
        "--www".into(),
        format!("{root}/../www"),
        "--static".into(),
        format!("{root}/../static"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    (args, data)
}

/// The process ids of `pid`'s children.
fn children_of(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Starts stack with `args` and waits for its "Ctrl-C stops everything" line; every line it
/// printed before is returned too, in order.
fn start(args: &[String]) -> (Server, Vec<String>) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stack =
        Server::start_waiting_for(env!("CARGO_BIN_EXE_stack"), &args, "backend listening on");
    let mut seen = vec![stack.wait_line("proxy listening on")];
    loop {
        let l = stack
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("stack announces itself");
        let done = l.contains("Ctrl-C stops everything");
        seen.push(l);
        if done {
            return (stack, seen);
        }
    }
}

#[test]
fn stack_starts_the_backend_and_the_proxy_and_stops_everything_on_sigterm() {
    let (port, proxy_port) = (common::free_port(), common::free_port());
    let dir = common::TempDir::new("stack");
    let conf = dir.path().join("proxy.conf");
    std::fs::write(
        &conf,
        format!("host \"app1.local\" {{ proxy_pass http://127.0.0.1:{port}; }}\n"),
    )
    .unwrap();
    let (args, _data) = stack_args(
        port,
        proxy_port,
        &["--ip", "127.0.0.1", "--config", conf.to_str().unwrap()],
    );
    let (mut stack, _) = start(&args);
    let r = get(port, "/");
    assert_eq!(r.status(), 200);
    assert!(String::from_utf8_lossy(&r.body).contains("weaprous"));
    let via = request(
        proxy_port,
        "GET /css/styles.css HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        via.status(),
        200,
        "the proxy routes app1.local to the backend"
    );
    assert_eq!(via.header("via").as_deref(), Some("1.1 weaprous"));
    // The given configuration is used as it is: it routes nothing else.
    let other = request(
        proxy_port,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(other.status(), 404);
    // Each child's lines come through, named.
    let log = stack.wait_line("\"GET /css/styles.css\"");
    assert!(
        log.starts_with("backend   | 20") || log.starts_with("proxy     | 20"),
        "{log}"
    );
    stack.signal("-TERM");
    let status = stack.child.wait().unwrap();
    assert!(status.success(), "stack exit {status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the backend stopped too"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err(),
        "the proxy stopped too"
    );
}

#[test]
fn without_a_config_the_proxy_reaches_the_backend_stack_started_on_any_port() {
    let (port, proxy_port) = (common::free_port(), common::free_port());
    let (args, _data) = stack_args(port, proxy_port, &[]);
    let (stack, seen) = start(&args);
    // The URLs come after both children listen.
    let listening = seen
        .iter()
        .rposition(|l| l.contains("listening on"))
        .unwrap();
    let url = seen
        .iter()
        .position(|l| l.starts_with("stack: the chat, through the proxy"))
        .unwrap();
    assert!(url > listening, "{seen:?}");
    assert!(
        seen[url].contains(&format!("http://localhost:{proxy_port}/")),
        "{seen:?}"
    );
    // A person's hosts reach the chat: its page needs a session, its login page does not.
    for host in ["localhost", &format!("localhost:{proxy_port}"), "127.0.0.1"] {
        // Retried while the chat answers 503 (a new data directory waits for the default
        // account's hash), as its page does by itself.
        let page = |path: &str| {
            let get = || {
                request(
                    proxy_port,
                    &format!(
                        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
                    ),
                )
            };
            let mut r = get();
            for _ in 0..400 {
                if r.status() != 503 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                r = get();
            }
            r
        };
        let r = page("/");
        assert_eq!(r.status(), 401, "{host}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("/login.html"),
            "{host}"
        );
        let r = page("/login.html");
        assert_eq!(r.status(), 200, "{host}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("Sign in"),
            "{host}"
        );
    }
    // app1.local reaches the static backend.
    let r = request(
        proxy_port,
        "GET / HTTP/1.1\r\nHost: app1.local\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 200);
    assert!(String::from_utf8_lossy(&r.body).contains("weaprous"));
    // Killed outright, stack still takes its children with it.
    let children = children_of(stack.child.id());
    drop(stack);
    for c in children {
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::read_to_string(format!("/proc/{c}/stat")).map_or(true, |s| {
                s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z'))
            })
        });
        assert!(gone, "child {c} outlived its stack");
    }
}

/// Runs stack to its end (it must end by itself within the timeout): its exit status and
/// every line it wrote on stdout and stderr.
fn run_to_end(args: &[String]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for r in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
    }
    drop(tx);
    let mut out = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(20)) {
        out.push_str(&l);
        out.push('\n');
    }
    let status = child.wait().unwrap();
    (status, out)
}

#[test]
fn a_child_that_cannot_start_stops_the_stack_with_its_name_and_status() {
    // The backend's port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let proxy_port = common::free_port();
    let (args, _data) = stack_args(port, proxy_port, &[]);
    let (status, out) = run_to_end(&args);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("stack: backend exited (exit status: 1) before it was listening"),
        "{out}"
    );
    assert!(
        !out.contains("Ctrl-C stops everything"),
        "never announced: {out}"
    );
    assert!(!out.contains("No such process"), "{out}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err(),
        "the proxy was stopped"
    );
    // The proxy's configuration does not parse.
    let dir = common::TempDir::new("stack-bad");
    let conf = dir.path().join("proxy.conf");
    std::fs::write(&conf, "host {").unwrap();
    let (args, _data) = stack_args(
        common::free_port(),
        common::free_port(),
        &["--config", conf.to_str().unwrap()],
    );
    let (status, out) = run_to_end(&args);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("stack: proxy exited (exit status: 1)"),
        "{out}"
    );
    assert!(
        out.contains("proxy     | proxy: "),
        "the proxy's own words: {out}"
    );
}

#[test]
fn a_child_that_dies_stops_the_stack_with_its_name_and_status() {
    let (port, proxy_port) = (common::free_port(), common::free_port());
    let (args, _data) = stack_args(port, proxy_port, &[]);
    let (mut stack, _) = start(&args);
    // The children are the stack process's children; kill the backend outright.
    let backend = children_of(stack.child.id())
        .into_iter()
        .find(|c| {
            std::fs::read_to_string(format!("/proc/{c}/cmdline"))
                .is_ok_and(|cmd| cmd.contains("backend"))
        })
        .expect("the backend child");
    assert!(Command::new("kill")
        .args(["-KILL", &backend])
        .status()
        .unwrap()
        .success());
    let line = stack.wait_line("stack: backend exited");
    assert!(line.contains("signal: 9"), "{line}");
    let status = stack.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err(),
        "the proxy was stopped"
    );
}
