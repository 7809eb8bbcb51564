//! The real `proxy` as a user runs it: `--check`, then serving on loopback in front of the
//! real `backend` and of small test upstreams (a POST echo, an event stream).

mod common;

use common::{count_until_eof, read_responses, request, Server, TempDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;
use weaprous_core::http::Method;

fn check(config: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(["--check", "--config", config])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_conf(name: &str, text: &str) -> String {
    let p = std::env::temp_dir().join(format!("weaprous-{}-{name}.conf", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn the_shipped_config_checks_and_prints_its_routes() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/proxy.conf");
    let (ok, out, err) = check(conf);
    assert!(ok, "{err}");
    assert!(err.is_empty(), "no warnings: {err}");
    assert!(out.contains("syntax is ok (4 hosts)"), "{out}");
    let app2 = out.lines().find(|l| l.starts_with("app2.local")).unwrap();
    assert!(
        app2.contains("round-robin") && app2.contains("127.0.0.1:9001, 127.0.0.1:9002"),
        "{app2}"
    );
}

#[test]
fn a_missing_semicolon_before_a_brace_is_a_warning_with_its_line() {
    let conf = temp_conf("warn", "host a {\n  proxy_pass http://127.0.0.1:1\n}\n");
    let (ok, _, err) = check(&conf);
    assert!(ok);
    assert!(err.contains(&format!("{conf}:3:1: warning:")), "{err}");
}

#[test]
fn an_error_names_file_line_and_column_and_fails() {
    let conf = temp_conf(
        "err",
        "host a {\n  proxy_pass http://127.0.0.1:1;\n  dist_policy sometimes;\n}\n",
    );
    let (ok, out, err) = check(&conf);
    assert!(!ok);
    assert!(out.is_empty());
    assert!(
        err.starts_with(&format!("proxy: {conf}:3:15: unknown dist_policy")),
        "{err}"
    );
    let (ok, _, err) = check("/nonexistent/proxy.conf");
    assert!(!ok);
    assert!(err.contains("/nonexistent/proxy.conf"), "{err}");
}

/// A backend serving a one-line index page that names it.
fn backend(name: &str, dir: &TempDir) -> Server {
    let www = dir.path().join(name);
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), format!("I am {name}")).unwrap();
    common::start_backend(&www, &www, false)
}

fn proxy(conf: &str, dir: &TempDir) -> Server {
    let path = dir.path().join("proxy.conf");
    std::fs::write(&path, conf).unwrap();
    Server::start(
        env!("CARGO_BIN_EXE_proxy"),
        &[
            "--server-ip",
            "127.0.0.1",
            "--server-port",
            "0",
            "--threads",
            common::TEST_THREADS,
            "--config",
            path.to_str().unwrap(),
        ],
    )
}

fn get_host(port: u16, host: &str, path: &str) -> common::Resp {
    request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn routes_by_host_and_balances_round_robin() {
    let dir = TempDir::new("proxy-route");
    let a = backend("A", &dir);
    let b = backend("B", &dir);
    let p = proxy(
        &format!(
            "host \"one.local\" {{ proxy_pass http://127.0.0.1:{}; }}\n\
             host \"two.local\" {{ proxy_pass http://127.0.0.1:{}; proxy_pass http://127.0.0.1:{}; dist_policy round-robin; }}\n",
            a.port, a.port, b.port
        ),
        &dir,
    );
    let r = get_host(p.port, "ONE.local", "/");
    assert_eq!((r.status(), r.body.as_slice()), (200, &b"I am A"[..]));
    assert_eq!(r.header("via").as_deref(), Some("1.1 weaprous"));
    assert_eq!(get_host(p.port, "nobody.local", "/").status(), 404);
    // Four requests on one kept-alive client connection: A, B, A, B.
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: two.local\r\n\r\n")
            .unwrap();
        let r = read_responses(&mut s, &[Method::Get]).pop().unwrap();
        bodies.push(String::from_utf8(r.body).unwrap());
    }
    assert_eq!(bodies, ["I am A", "I am B", "I am A", "I am B"]);
    let log = p.wait_line("host=two.local");
    assert!(
        log.contains("upstream=127.0.0.1:") && log.contains("first_byte="),
        "{log}"
    );
    assert!(
        log.split(' ')
            .next()
            .is_some_and(|t| t.len() == 24 && t.ends_with('Z')),
        "an RFC 3339 UTC timestamp first: {log}"
    );
}

#[test]
fn a_killed_backend_fails_over_then_502() {
    let dir = TempDir::new("proxy-failover");
    let a = backend("A", &dir);
    let mut b = backend("B", &dir);
    let p = proxy(
        &format!(
            "host h {{ proxy_pass http://127.0.0.1:{}; proxy_pass http://127.0.0.1:{}; }}\n",
            b.port, a.port
        ),
        &dir,
    );
    assert_eq!(get_host(p.port, "h", "/").body, b"I am B");
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    for _ in 0..4 {
        let r = get_host(p.port, "h", "/");
        assert_eq!(
            (r.status(), r.body.as_slice()),
            (200, &b"I am A"[..]),
            "failover to A"
        );
    }
    drop(a);
    let r = get_host(p.port, "h", "/");
    assert_eq!(r.status(), 502, "every backend down: 502 at once");
    let log = p.wait_line(" 502 ");
    assert!(
        log.contains("error=\"connect refused\""),
        "why, in the log: {log}"
    );
}

/// Reads a request head line by line: the head, and its Content-Length (0 when absent).
fn read_head(r: &mut BufReader<TcpStream>) -> (String, u64) {
    let mut head = String::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" {
            return (head, len);
        }
    }
}

/// A one-connection test upstream: reads a request with a Content-Length body and answers
/// with the body's length and a checksum.
fn echo_upstream() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s);
        let (head, len) = read_head(&mut r);
        let mut body = vec![0u8; len as usize];
        r.read_exact(&mut body).unwrap();
        let sum: u64 = body.iter().map(|&b| b as u64).sum();
        let answer = format!("{len} {sum}");
        let mut s = r.into_inner();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        head.into_bytes()
    });
    (port, t)
}

#[test]
fn a_64k_post_passes_whole_once() {
    let dir = TempDir::new("proxy-post");
    let (port, upstream) = echo_upstream();
    let p = proxy(
        &format!("host h {{ proxy_pass http://127.0.0.1:{port}; }}\n"),
        &dir,
    );
    let body: Vec<u8> = (0..65_536u32).map(|i| (i * 31 % 251) as u8).collect();
    let sum: u64 = body.iter().map(|&b| b as u64).sum();
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let r = read_responses(&mut s, &[Method::Post]).pop().unwrap();
    assert_eq!(String::from_utf8(r.body).unwrap(), format!("65536 {sum}"));
    let head = String::from_utf8(upstream.join().unwrap()).unwrap();
    assert!(head.starts_with("POST /upload HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("X-Forwarded-For: 127.0.0.1"), "{head}");
}

#[test]
fn server_sent_events_reach_the_client_as_the_upstream_writes_them() {
    let dir = TempDir::new("proxy-sse");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (next_tx, next_rx) = mpsc::channel::<()>();
    let upstream = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        s.write_all(b"d\r\ndata: first\n\n\r\n").unwrap();
        // The second event goes only once the client has seen the first: a proxy that
        // buffered the stream would deadlock this test instead of passing it.
        next_rx.recv().unwrap();
        s.write_all(b"e\r\ndata: second\n\n\r\n0\r\n\r\n").unwrap();
    });
    let p = proxy(
        &format!("host h {{ proxy_pass http://127.0.0.1:{port}; }}\n"),
        &dir,
    );
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data: first") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(!String::from_utf8_lossy(&seen).contains("second"));
    next_tx.send(()).unwrap();
    while !String::from_utf8_lossy(&seen).contains("data: second") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    upstream.join().unwrap();
}

#[test]
fn sighup_reloads_and_an_invalid_file_keeps_the_old_routes() {
    let dir = TempDir::new("proxy-reload");
    let a = backend("A", &dir);
    let b = backend("B", &dir);
    let p = proxy(
        &format!("host h {{ proxy_pass http://127.0.0.1:{}; }}\n", a.port),
        &dir,
    );
    assert_eq!(get_host(p.port, "h", "/").body, b"I am A");
    let conf = dir.path().join("proxy.conf");
    std::fs::write(
        &conf,
        format!("host h {{ proxy_pass http://127.0.0.1:{}; }}\n", b.port),
    )
    .unwrap();
    // A connection opened before the reload keeps its routes for its next request.
    let mut old = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    old.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    old.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(read_responses(&mut old, &[Method::Get])[0].body, b"I am A");
    p.signal("-HUP");
    p.wait_line("proxy: reloaded");
    assert_eq!(
        get_host(p.port, "h", "/").body,
        b"I am B",
        "new connections: new routes"
    );
    old.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(
        read_responses(&mut old, &[Method::Get])[0].body,
        b"I am A",
        "in flight: old routes"
    );
    std::fs::write(&conf, "host h { proxy_pass nonsense; }\n").unwrap();
    p.signal("-HUP");
    let refused = p.wait_line("reload refused");
    assert!(refused.contains("proxy.conf:1:21:"), "{refused}");
    assert_eq!(
        get_host(p.port, "h", "/").body,
        b"I am B",
        "the old routes stay"
    );
}

#[test]
fn a_gibibyte_each_way_passes_with_bounded_memory() {
    let dir = TempDir::new("proxy-gib");
    let www = dir.path().join("big");
    std::fs::create_dir_all(&www).unwrap();
    let f = std::fs::File::create(www.join("big.bin")).unwrap();
    f.set_len(1 << 30).unwrap(); // sparse: reads as zeros, costs no disk
    drop(f);
    let b = common::start_backend(&www, &www, false);
    // The upload goes to a test upstream that counts what it reads.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = l.local_addr().unwrap().port();
    let sink = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s);
        let (_, len) = read_head(&mut r);
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        while got < len {
            let n = r.read(&mut buf).unwrap();
            assert!(n > 0);
            got += n as u64;
        }
        let mut s = r.into_inner();
        let answer = got.to_string();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
    });
    let p = proxy(
        &format!(
            "host down {{ proxy_pass http://127.0.0.1:{}; }}\nhost up {{ proxy_pass http://127.0.0.1:{sink_port}; }}\n",
            b.port
        ),
        &dir,
    );
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: down\r\nConnection: close\r\n\r\n")
        .unwrap();
    let total = count_until_eof(&mut s);
    assert!(
        total > 1 << 30 && total < (1 << 30) + 1000,
        "the whole GiB came through ({total})"
    );
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /sink HTTP/1.1\r\nHost: up\r\nContent-Length: {}\r\n\r\n",
        1u64 << 30
    )
    .unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..1024 {
        s.write_all(&chunk).unwrap();
    }
    let r = read_responses(&mut s, &[Method::Post]).pop().unwrap();
    assert_eq!(r.body, (1u64 << 30).to_string().into_bytes());
    sink.join().unwrap();
    let rss = p.peak_rss_kib();
    eprintln!("proxy peak RSS after a GiB each way: {rss} KiB");
    assert!(
        rss < 64 * 1024,
        "proxy peak RSS {rss} KiB after a GiB each way"
    );
}

#[test]
fn a_websocket_tunnel_carries_bytes_both_ways() {
    let dir = TempDir::new("proxy-ws");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let upstream = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&seen).into_owned();
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .unwrap();
        // Echo everything, upper-cased, until the client closes.
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
        }
        head
    });
    let p = proxy(
        &format!("host h {{ proxy_pass http://127.0.0.1:{port}; }}\n"),
        &dir,
    );
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
    for word in ["hello", "tunnel"] {
        s.write_all(word.as_bytes()).unwrap();
        let mut echo = vec![0u8; word.len()];
        s.read_exact(&mut echo).unwrap();
        assert_eq!(echo, word.to_ascii_uppercase().into_bytes());
    }
    drop(s);
    let head = upstream.join().unwrap();
    assert!(
        head.contains("Upgrade: websocket") && head.contains("Sec-WebSocket-Key"),
        "{head}"
    );
}

/// The backend's one-response case through the proxy: a POST whose chunked body breaks, a GET
/// pipelined behind it. One response (the proxy's 400, or the backend's 405 if it got through
/// first), then the close; never both, and the GET is not answered.
#[test]
fn a_request_whose_body_breaks_gets_exactly_one_response_through_the_proxy() {
    let dir = TempDir::new("proxy-one-response");
    let a = backend("A", &dir);
    let p = proxy(
        &format!("host t {{ proxy_pass http://127.0.0.1:{}; }}\n", a.port),
        &dir,
    );
    for _ in 0..20 {
        let out = String::from_utf8_lossy(&common::raw_exchange(
            p.port,
            b"POST /index.html HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        ))
        .into_owned();
        assert!(
            out.starts_with("HTTP/1.1 400 ") || out.starts_with("HTTP/1.1 405 "),
            "{out}"
        );
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    }
    assert_eq!(get_host(p.port, "t", "/").body, b"I am A");
}

#[test]
fn an_absolute_form_target_is_routed_by_its_authority() {
    let dir = TempDir::new("proxy-absolute");
    let a = backend("A", &dir);
    let b = backend("B", &dir);
    let p = proxy(
        &format!(
            "host \"a.example\" {{ proxy_pass http://127.0.0.1:{}; }}\nhost \"b.example\" {{ proxy_pass http://127.0.0.1:{}; }}\n",
            a.port, b.port
        ),
        &dir,
    );
    let r = request(
        p.port,
        "GET http://a.example:8080/ HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status(), r.body.as_slice()), (200, &b"I am A"[..]));
    let r = request(
        p.port,
        "GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 400, "userinfo in the authority");
}

#[test]
fn check_warns_of_a_file_that_routes_nothing_and_counts_in_english() {
    let conf = temp_conf("empty", "proxy_read_timeout 5s;\n");
    let (ok, out, err) = check(&conf);
    assert!(ok, "a warning, not an error");
    assert!(
        err.contains(&format!(
            "{conf}:1:1: warning: no host block and no default"
        )),
        "{err}"
    );
    assert!(out.contains("syntax is ok (0 hosts)"), "{out}");
    let conf = temp_conf("one", "host a { proxy_pass http://127.0.0.1:1; }\n");
    let (ok, out, err) = check(&conf);
    assert!(ok && err.is_empty(), "{err}");
    assert!(out.contains("syntax is ok (1 host)"), "{out}");
}

/// An upstream whose close-delimited answer is cut short by a reset: the client must not get
/// it framed as whole (the proxy re-chunks it, so whole means its last chunk).
#[test]
fn a_close_delimited_answer_cut_by_a_reset_never_looks_whole() {
    let dir = TempDir::new("proxy-reset");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (relayed, cut) = mpsc::channel::<()>();
    let upstream = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        // Read a byte of the request and leave the rest unread: closing with unread bytes
        // makes the kernel reset the connection instead of closing it cleanly.
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe first part")
            .unwrap();
        // Cut only once the client has the first part (so the proxy read it before the reset).
        let _ = cut.recv_timeout(Duration::from_secs(20));
        drop(s);
    });
    let p = proxy(
        &format!("host h {{ proxy_pass http://127.0.0.1:{port}; }}\n"),
        &dir,
    );
    let mut c = p.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: unread bytes\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut told = false;
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if !told && String::from_utf8_lossy(&got).contains("the first part") {
            told = true;
            relayed.send(()).unwrap();
        }
    }
    upstream.join().unwrap();
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(told, "the first part was relayed: {got:?}");
    assert!(
        !got.ends_with("0\r\n\r\n"),
        "a short body framed as whole: {got:?}"
    );
}
