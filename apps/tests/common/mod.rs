//! Runs the real binaries on loopback and talks raw HTTP to them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Limits, Method, ResponseHead};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "weaprous-{tag}-{}-{}",
            std::process::id(),
            fastrand_u64()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastrand_u64() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A running binary. Its stdout lines arrive on `lines`; it is killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub lines: Receiver<String>,
    /// Lines read while waiting for the startup line (so `wait_line` finds them too).
    early: std::cell::RefCell<Vec<String>>,
}

impl Server {
    /// Starts `bin` with `args` and waits for its `listening on IP:PORT` line.
    pub fn start(bin: &str, args: &[&str]) -> Server {
        Self::start_waiting_for(bin, args, "listening on")
    }

    /// Starts `bin` and waits for a stdout line containing `ready` that ends in `:PORT`.
    pub fn start_waiting_for(bin: &str, args: &[&str], ready: &str) -> Server {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut early = Vec::new();
        let first = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("startup line");
            if line.contains(ready) {
                break line;
            }
            early.push(line);
        };
        let port = first
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        Server {
            child,
            port,
            lines: rx,
            early: std::cell::RefCell::new(early),
        }
    }
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }
    pub fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    }
    /// Peak resident set (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
    /// Waits for the next stdout line containing `needle`.
    pub fn wait_line(&self, needle: &str) -> String {
        let mut early = self.early.borrow_mut();
        if let Some(i) = early.iter().position(|l| l.contains(needle)) {
            return early.remove(i);
        }
        drop(early);
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no line with {needle:?}"));
            if l.contains(needle) {
                return l;
            }
        }
    }
}

/// A loopback port nothing listens on now (for a server that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Worker threads of every server a test starts: explicit and small, so a test behaves the
/// same on a 2-core machine and on a 64-core one.
pub const TEST_THREADS: &str = "2";

/// The real backend on a free loopback port, serving `www` (HTML) and `static_dir`.
pub fn start_backend(www: &Path, static_dir: &Path, access_log: bool) -> Server {
    let (www, st) = (www.to_str().unwrap(), static_dir.to_str().unwrap());
    let mut args = vec![
        "--server-ip",
        "127.0.0.1",
        "--server-port",
        "0",
        "--threads",
        TEST_THREADS,
        "--www",
        www,
        "--static",
        st,
    ];
    if !access_log {
        args.push("--no-access-log");
    }
    Server::start(env!("CARGO_BIN_EXE_backend"), &args)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read off the wire with our own parser.
#[derive(Debug)]
pub struct Resp {
    pub head: ResponseHead,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn status(&self) -> u16 {
        self.head.status.0
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.headers.get_str(name).map(str::to_string)
    }
}

/// Reads `methods.len()` responses from `s` (in order).
pub fn read_responses(s: &mut TcpStream, methods: &[Method]) -> Vec<Resp> {
    let mut p = Parser::response(Limits::default());
    for m in methods {
        p.expect_response_to(m.clone());
    }
    let mut out = Vec::new();
    let mut cur: Option<Resp> = None;
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < methods.len() {
        match p.next_event().expect("valid response") {
            Event::Response(head) => {
                cur = Some(Resp {
                    head,
                    body: Vec::new(),
                })
            }
            Event::Data(d) => cur.as_mut().unwrap().body.extend_from_slice(&d),
            Event::End { .. } => out.push(cur.take().unwrap()),
            Event::NeedData => {
                let n = s.read(&mut buf).expect("read");
                if n == 0 {
                    p.feed_eof();
                } else {
                    p.feed(&buf[..n]);
                }
            }
            e => panic!("unexpected {e:?}"),
        }
    }
    out
}

/// One request on a fresh connection.
pub fn request(port: u16, raw: &str) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let method = if raw.starts_with("HEAD ") {
        Method::Head
    } else {
        Method::Get
    };
    read_responses(&mut s, &[method]).pop().unwrap()
}

/// `GET path` on a fresh connection.
pub fn get(port: u16, path: &str) -> Resp {
    request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

/// Everything the server sends until it closes.
pub fn raw_exchange(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    // Capped, so a server that never stops sending fails the test instead of hanging it.
    let mut out = Vec::new();
    let _ = (&mut s).take(16 << 20).read_to_end(&mut out);
    assert!(out.len() < 16 << 20, "the server kept sending");
    out
}

/// Reads `s` until the peer closes, discarding the bytes; returns how many there were.
pub fn count_until_eof(s: &mut TcpStream) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

// ----- the chat node's API (sampleapp, and backend --data-dir) -----

pub fn post(port: u16, path: &str, extra: &str, body: &str) -> Resp {
    request(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// `attempt` again while the server answers 503 (it is reading its log, or a new data
/// directory waits for the default account's hash), as a client honouring `Retry-After`
/// does, for up to 20 s.
pub fn retrying(attempt: impl Fn() -> Resp) -> Resp {
    let mut r = attempt();
    for _ in 0..400 {
        if r.status() != 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        r = attempt();
    }
    r
}

/// Signs in as the default account.
pub fn login(port: u16) -> String {
    let r = retrying(|| {
        post(
            port,
            "/login",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            "user=admin&password=password",
        )
    });
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(&r.body));
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

pub fn with_cookie(port: u16, path: &str, cookie: &str) -> Resp {
    request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"),
    )
}
