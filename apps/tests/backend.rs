//! The real `backend` binary on loopback, with real files.

mod common;

use common::{count_until_eof, get, raw_exchange, read_responses, request, Server, TempDir};
use std::io::{Read, Write};
use weaprous_core::http::Method;

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// A site: www/, static/, and a secret next to them that must never be served.
fn site() -> TempDir {
    let t = TempDir::new("site");
    let p = t.path();
    for d in [
        "www/sub",
        "static/css",
        "static/images",
        "static/js",
        "static/dir",
    ] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("www/index.html"), "<h1>index</h1>").unwrap();
    std::fs::write(p.join("www/login.html"), "<form>login</form>").unwrap();
    std::fs::write(p.join("www/sub/index.html"), "<p>sub</p>").unwrap();
    std::fs::write(p.join("static/css/styles.css"), "body{}").unwrap();
    std::fs::write(
        p.join("static/images/welcome.png"),
        b"\x89PNG\r\n\x1a\nfake",
    )
    .unwrap();
    std::fs::write(p.join("static/js/app.js"), "console.log(1)").unwrap();
    std::fs::write(p.join("static/favicon.ico"), b"\0\0\x01\0").unwrap();
    std::fs::write(p.join("static/data.bin"), (0..=255u8).collect::<Vec<_>>()).unwrap();
    std::fs::write(p.join("secret.txt"), SECRET).unwrap();
    std::fs::write(p.join("www/secret.html"), "").unwrap();
    std::fs::remove_file(p.join("www/secret.html")).unwrap();
    std::os::unix::fs::symlink(p.join("secret.txt"), p.join("static/leak.txt")).unwrap();
    std::os::unix::fs::symlink(p.join("secret.txt"), p.join("www/leak.html")).unwrap();
    std::os::unix::fs::symlink(p, p.join("static/up")).unwrap();
    t
}

fn start(site: &TempDir) -> Server {
    common::start_backend(&site.path().join("www"), &site.path().join("static"), true)
}

#[test]
fn serves_the_seed_mapping_with_types() {
    let site = site();
    let b = start(&site);
    let cases = [
        ("/", "text/html; charset=utf-8", &b"<h1>index</h1>"[..]),
        ("/index.html", "text/html; charset=utf-8", b"<h1>index</h1>"),
        (
            "/login.html",
            "text/html; charset=utf-8",
            b"<form>login</form>",
        ),
        ("/sub/", "text/html; charset=utf-8", b"<p>sub</p>"),
        ("/css/styles.css", "text/css; charset=utf-8", b"body{}"),
        ("/images/welcome.png", "image/png", b"\x89PNG\r\n\x1a\nfake"),
        (
            "/js/app.js",
            "text/javascript; charset=utf-8",
            b"console.log(1)",
        ),
        ("/favicon.ico", "image/vnd.microsoft.icon", b"\0\0\x01\0"),
        (
            "/js/app.js?v=3&x=..%2f",
            "text/javascript; charset=utf-8",
            b"console.log(1)",
        ),
    ];
    for (path, ty, body) in cases {
        let r = get(b.port, path);
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.header("content-type").as_deref(), Some(ty), "{path}");
        assert_eq!(r.body, body, "{path}");
        assert!(
            r.header("etag").is_some()
                && r.header("last-modified").is_some()
                && r.header("date").is_some()
        );
    }
    let log = b.wait_line("\"GET /css/styles.css\"");
    // `2026-12-07T08:10:00.123Z 127.0.0.1:PORT "GET /css/styles.css" 200 6 0.123ms`
    let fields: Vec<&str> = log.split(' ').collect();
    assert!(is_rfc3339_utc(fields[0]), "a timestamp first: {log}");
    assert!(
        fields[1].starts_with("127.0.0.1:") && log.contains("\" 200 6 "),
        "access log line: {log}"
    );
}

#[test]
fn methods_errors_and_redirects() {
    let site = site();
    let b = start(&site);
    let r = request(
        b.port,
        "HEAD /css/styles.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (
            r.status(),
            r.header("content-length").as_deref(),
            r.body.len()
        ),
        (200, Some("6"), 0),
        "H2"
    );
    let r = request(b.port, "POST /css/styles.css HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
    assert_eq!(
        (r.status(), r.header("allow").as_deref()),
        (405, Some("GET, HEAD")),
        "H6"
    );
    assert_eq!(
        request(
            b.port,
            "BREW / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .status(),
        501
    );
    assert_eq!(
        request(
            b.port,
            "get / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .status(),
        501,
        "A7"
    );
    assert_eq!(get(b.port, "/missing.css").status(), 404);
    let r = get(b.port, "/dir?x=1");
    assert_eq!(
        (r.status(), r.header("location").as_deref()),
        (301, Some("/dir/?x=1")),
        "H5"
    );
    let out = raw_exchange(b.port, b"GET / HTTP/1.1\r\n\r\n");
    assert!(
        out.starts_with(b"HTTP/1.1 400 "),
        "B1 no Host: {}",
        String::from_utf8_lossy(&out)
    );
    let out = raw_exchange(b.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert!(
        out.starts_with(b"HTTP/1.1 400 ")
            && String::from_utf8_lossy(&out).contains("Connection: close"),
        "C7"
    );
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(10_000));
    assert!(
        raw_exchange(b.port, long.as_bytes()).starts_with(b"HTTP/1.1 414 "),
        "A13"
    );
    assert!(
        raw_exchange(b.port, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n").starts_with(b"HTTP/1.1 505 "),
        "A9"
    );
    // The server is still serving after all of that.
    assert_eq!(get(b.port, "/").status(), 200);
}

#[test]
fn conditional_and_range_requests() {
    let site = site();
    let b = start(&site);
    let full = get(b.port, "/data.bin");
    let etag = full.header("etag").unwrap();
    let lm = full.header("last-modified").unwrap();
    let r = request(b.port, &format!("GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"));
    assert_eq!((r.status(), r.body.len()), (304, 0), "H4 INM");
    let r = request(b.port, &format!("GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: {lm}\r\nConnection: close\r\n\r\n"));
    assert_eq!(r.status(), 304, "H4 IMS");
    let r = request(
        b.port,
        "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-4\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (
            r.status(),
            r.header("content-range").as_deref(),
            &r.body[..]
        ),
        (206, Some("bytes 0-4/256"), &[0u8, 1, 2, 3, 4][..])
    );
    let r = request(
        b.port,
        "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-5\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(&r.body[..], &[251u8, 252, 253, 254, 255][..]);
    let r = request(
        b.port,
        "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=999999-\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (r.status(), r.header("content-range").as_deref()),
        (416, Some("bytes */256"))
    );
    let r = request(
        b.port,
        "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=zz\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (r.status(), r.body.len()),
        (200, 256),
        "malformed Range is ignored"
    );
}

#[test]
fn paths_never_escape_their_root() {
    let site = site();
    let b = start(&site);
    let attacks = [
        "/../secret.txt",
        "/../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/css/../../secret.txt",
        "/css/%2e%2e/%2e%2e/secret.txt",
        "/a/%2F..%2F..%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/css\\..\\..\\secret.txt",
        "/secret.txt%00.css",
        "/%00",
        "/leak.txt",
        "/leak.html",
        "/up/secret.txt",
        "/up/www/index.html",
        "//etc/passwd",
        "/./../secret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/css/..%c0%af../secret.txt",
        "/etc/passwd",
        "/secret.txt",
        "/",
    ];
    for path in attacks {
        let out = raw_exchange(
            b.port,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains(SECRET), "{path} leaked the secret");
        assert!(!text.contains("root:"), "{path} leaked /etc/passwd");
        if path != "/" {
            let code = &text[9..12];
            assert!(["400", "403", "404"].contains(&code), "{path} gave {code}");
        }
    }
    let abs = raw_exchange(
        b.port,
        b"GET /etc/passwd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        abs.starts_with(b"HTTP/1.1 404"),
        "an absolute path is looked up inside the root"
    );
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let site = site();
    let b = start(&site);
    let mut s = b.connect();
    s.write_all(b"GET /css/styles.css HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /js/app.js HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let rs = read_responses(&mut s, &[Method::Get, Method::Head, Method::Get]);
    assert_eq!(rs[0].body, b"body{}");
    assert_eq!((rs[1].status(), rs[1].body.len()), (200, 0));
    assert_eq!(rs[2].body, b"console.log(1)");
    // Still open: a fourth request on the same connection.
    s.write_all(b"GET /favicon.ico HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_responses(&mut s, &[Method::Get]);
    assert_eq!(r[0].header("connection").as_deref(), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "closed after Connection: close"
    );
    // HTTP/1.0 without keep-alive closes.
    let out = raw_exchange(b.port, b"GET / HTTP/1.0\r\n\r\n");
    assert!(out.starts_with(b"HTTP/1.1 200") && out.ends_with(b"<h1>index</h1>"));
}

#[test]
fn a_refused_upload_is_answered_not_reset() {
    // A body over the limit is answered 413 after the head, and the connection closes without
    // reading it. Closing on unread bytes would send a reset that fails the client's upload
    // before it ever reads the answer; the lingering close discards the bytes instead.
    let site = site();
    let b = start(&site);
    let body = vec![b'x'; 16 << 20];
    let mut s = b.connect();
    s.write_all(
        format!(
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            1u64 << 40
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(&body)
        .expect("the upload is not reset while the server closes");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn a_second_server_on_a_taken_port_fails_instead_of_sharing_it() {
    // Each worker listens on its own SO_REUSEPORT socket; a second process of the same user
    // could join that group and take half the connections, unless binding checks first.
    let site = site();
    let first = start(&site);
    let www = site.path().join("www");
    let st = site.path().join("static");
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_backend"))
        .args([
            "--server-ip",
            "127.0.0.1",
            "--threads",
            common::TEST_THREADS,
        ])
        .arg("--server-port")
        .arg(first.port.to_string())
        .arg("--www")
        .arg(&www)
        .arg("--static")
        .arg(&st)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its first line says it listens, or its stdout ends because it exited.
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(second.stdout.take().unwrap()),
        &mut first_line,
    )
    .unwrap();
    if first_line.contains("listening") {
        let _ = second.kill();
        let _ = second.wait();
        panic!("a second server started on a taken port: {first_line}");
    }
    let out = second.wait_with_output().unwrap();
    assert!(!out.status.success(), "the second server must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "{err}");
    assert_eq!(get(first.port, "/css/styles.css").status(), 200);
}

#[test]
fn a_stalled_client_does_not_stop_others() {
    let site = site();
    let b = start(&site);
    let mut slow = b.connect();
    slow.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let mut half = b.connect();
    half.write_all(b"GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap(); // never reads
    for _ in 0..20 {
        assert_eq!(get(b.port, "/css/styles.css").status(), 200);
    }
}

#[test]
fn a_gibibyte_streams_with_bounded_memory() {
    let site = site();
    let big = site.path().join("static/big.bin");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(1 << 30).unwrap(); // sparse: reads as zeros, costs no disk
    drop(f);
    let b = start(&site);
    let mut s = b.connect();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let total = count_until_eof(&mut s);
    let head_len = total - (1 << 30);
    assert!(
        head_len > 100 && head_len < 1000,
        "whole body received (head {head_len} bytes)"
    );
    let rss = b.peak_rss_kib();
    assert!(rss < 64 * 1024, "peak RSS {rss} KiB while serving 1 GiB");
}

#[test]
fn a_sigterm_as_soon_as_it_listens_is_a_graceful_exit() {
    // "listening" is the promise that a signal from then on drains instead of killing: the
    // handler must be in place before the line is printed (a test that signalled right after
    // it once lost the end of an in-flight response to the default action).
    // The race shows when the server's main thread is slow to be scheduled: threads that
    // keep both cores busy make it so on any machine.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let site = site();
    let statuses: Vec<_> = (0..20)
        .map(|_| {
            let mut b = start(&site);
            b.signal("-TERM");
            b.child.wait().unwrap()
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
    for status in statuses {
        assert!(status.success(), "exit status {status}");
    }
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits() {
    let site = site();
    let big = site.path().join("static/big.bin");
    std::fs::write(&big, vec![7u8; 32 << 20]).unwrap();
    let mut b = start(&site);
    let mut s = b.connect();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let first = s.read(&mut buf).unwrap();
    assert!(first > 0);
    b.signal("-TERM");
    let total = first as u64 + count_until_eof(&mut s);
    assert!(
        total > 32 << 20,
        "the in-flight response completed ({total} bytes)"
    );
    let status = b.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", b.port)).is_err(),
        "no longer accepting"
    );
}

/// A POST answered 405 from its head whose chunked body then breaks, and a GET pipelined
/// behind it: exactly one response (the 405), then the close. A second one (the 400 the body
/// earned) would be read by the client as the GET's answer.
pub const EARLY_ANSWER_BAD_BODY: &[u8] = b"POST /index.html HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn a_request_whose_body_breaks_after_its_answer_gets_exactly_one_response() {
    let site = site();
    let b = start(&site);
    let out = String::from_utf8_lossy(&raw_exchange(b.port, EARLY_ANSWER_BAD_BODY)).into_owned();
    assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    // The server is fine for the next client.
    assert_eq!(get(b.port, "/").status(), 200);
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn error_pages_are_html_for_browsers_and_text_for_the_rest() {
    let site = site();
    let b = start(&site);
    let r = request(
        b.port,
        "GET /nope.html HTTP/1.1\r\nHost: t\r\nAccept: text/html,*/*\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&r.body).contains("<h1>404 Not Found</h1>"));
    let r = get(b.port, "/nope.html");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(r.body.starts_with(b"404 Not Found\n"));
}

/// With `--data-dir` the backend keeps accounts and sessions (the chat server's format) and
/// protects its pages: `/` and `/index.html` need a session, the sign-in page and assets stay
/// public, the chat API is not there, and a session survives a restart.
#[test]
fn with_a_data_dir_pages_need_a_session_and_sessions_survive_a_restart() {
    use common::{login, post, retrying, with_cookie};
    let site = site();
    let data = site.path().join("data");
    let (www, st) = (site.path().join("www"), site.path().join("static"));
    let args = |data: &std::path::Path| {
        vec![
            "--server-ip".to_string(),
            "127.0.0.1".into(),
            "--server-port".into(),
            "0".into(),
            "--threads".into(),
            common::TEST_THREADS.into(),
            "--www".into(),
            www.to_str().unwrap().into(),
            "--static".into(),
            st.to_str().unwrap().into(),
            "--data-dir".into(),
            data.to_str().unwrap().into(),
        ]
    };
    let start = || {
        let a = args(&data);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        Server::start(env!("CARGO_BIN_EXE_backend"), &a)
    };
    let b = start();
    let port = b.port;
    let page = retrying(|| {
        request(
            port,
            "GET / HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
        )
    });
    assert_eq!(page.status(), 401, "the page needs a session");
    assert!(String::from_utf8_lossy(&page.body).contains("login.html"));
    assert_eq!(get(port, "/login.html").status(), 200);
    assert_eq!(get(port, "/css/styles.css").status(), 200);
    assert_eq!(
        with_cookie(port, "/", "auth=true").status(),
        401,
        "a forged cookie"
    );

    let sid = login(port);
    let page = with_cookie(port, "/index.html", &sid);
    assert_eq!(page.status(), 200);
    assert_eq!(page.body, b"<h1>index</h1>");
    assert_eq!(
        with_cookie(port, "/channels", &sid).status(),
        404,
        "no chat API on the backend"
    );
    assert!(
        data.join("chat").exists(),
        "the log is in the data directory"
    );

    drop(b);
    let b = start();
    let port = b.port;
    let page = retrying(|| with_cookie(port, "/", &sid));
    assert_eq!(page.status(), 200, "the session survived the restart");
    let r = post(port, "/logout", &format!("Cookie: {sid}\r\n"), "");
    assert_eq!(r.status(), 200);
    assert_eq!(with_cookie(port, "/", &sid).status(), 401, "signed out");
}
