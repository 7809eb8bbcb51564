//! The chat server (`sampleapp`) as a real process on loopback: sign-in, a post seen live on
//! an event stream, and what survives `SIGKILL`.

mod common;

use common::{request, Server, TempDir, TEST_THREADS};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

fn site(dir: &Path) -> (String, String) {
    let www = dir.join("www");
    let st = dir.join("static/css");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&st).unwrap();
    std::fs::write(www.join("index.html"), "<h1>chat</h1>").unwrap();
    std::fs::write(www.join("login.html"), "<form>login</form>").unwrap();
    std::fs::write(st.join("app.css"), "body{}").unwrap();
    (
        www.to_str().unwrap().to_string(),
        dir.join("static").to_str().unwrap().to_string(),
    )
}

fn start(dir: &Path) -> Server {
    let (www, st) = site(dir);
    let data = dir.join("data");
    Server::start(
        env!("CARGO_BIN_EXE_sampleapp"),
        &[
            "--server-ip",
            "127.0.0.1",
            "--server-port",
            "0",
            "--threads",
            TEST_THREADS,
            "--www",
            &www,
            "--static",
            &st,
            "--data-dir",
            data.to_str().unwrap(),
        ],
    )
}

fn post(port: u16, path: &str, extra: &str, body: &str) -> common::Resp {
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
fn retrying(attempt: impl Fn() -> common::Resp) -> common::Resp {
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
fn login(port: u16) -> String {
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

fn with_cookie(port: u16, path: &str, cookie: &str) -> common::Resp {
    request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"),
    )
}

/// Reads `s` into `seen` until it holds `needle`; fails after 20 s (heartbeats keep an
/// event stream busy, so a read timeout alone would never fire).
fn read_until(s: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in {:?}",
            String::from_utf8_lossy(seen)
        );
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream closed before {needle:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn sign_in_post_and_see_it_live_then_survive_a_kill() {
    let dir = TempDir::new("sampleapp");
    let server = start(dir.path());
    let port = server.port;

    assert_eq!(
        common::get(port, "/css/app.css").status(),
        200,
        "assets are public"
    );
    assert_eq!(
        common::get(port, "/login.html").status(),
        200,
        "the login page is public"
    );
    let sid = login(port);
    assert_eq!(
        common::get(port, "/").status(),
        401,
        "the chat page needs a session"
    );
    let forged = with_cookie(port, "/", "auth=true");
    assert_eq!(forged.status(), 401, "a hand-made cookie opens nothing");

    let page = with_cookie(port, "/", &sid);
    assert_eq!(
        (page.status(), page.body.as_slice()),
        (200, &b"<h1>chat</h1>"[..])
    );

    // An event stream, open before the post.
    let mut events = TcpStream::connect(("127.0.0.1", port)).unwrap();
    events
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        events,
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {sid}\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    read_until(&mut events, &mut seen, "welcome");

    let mut acked = Vec::new();
    for i in 0..20 {
        let body = format!(r#"{{"text":"message {i}","txn":"t{i}"}}"#);
        let r = post(
            port,
            "/channel/general/message",
            &format!("Content-Type: application/json\r\nCookie: {sid}\r\n"),
            &body,
        );
        assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&r.body));
        acked.push(format!("message {i}"));
    }
    read_until(&mut events, &mut seen, "message 19");
    let live = String::from_utf8_lossy(&seen).into_owned();
    assert!(live.contains("text/event-stream"), "{live}");
    assert_eq!(
        live.matches("event: message").count(),
        20,
        "each once: {live}"
    );

    // SIGKILL: nothing is flushed on the way out; what was acknowledged was synced.
    server.signal("-KILL");
    drop(server);
    let server = start(dir.path());
    let port = server.port;
    let r = retrying(|| with_cookie(port, "/channel/general/messages?limit=200", &sid));
    assert_eq!(r.status(), 200, "the session survived the restart");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let texts: Vec<String> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, acked, "every acknowledged message, once, in order");
    // A retry of an acknowledged post after the restart is the original, not a copy.
    let r = post(
        port,
        "/channel/general/message",
        &format!("Content-Type: application/json\r\nCookie: {sid}\r\n"),
        r#"{"text":"message 3","txn":"t3"}"#,
    );
    assert_eq!(r.status(), 200);
}
