//! The chat server (`sampleapp`) as a real process on loopback: sign-in, a post seen live on
//! an event stream, and what survives `SIGKILL`.

mod common;

use common::{login, post, retrying, with_cookie, Server, TempDir, TEST_THREADS};
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
    start_on(dir, 0)
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

/// One request on a fresh connection, or `None` when the server is not there (killed, or
/// restarting): status and body.
fn try_request(port: u16, raw: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(raw.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let at = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((status, out[at..].to_vec()))
}

/// `sampleapp` on `port` (0: a free one), serving `dir`'s site, keeping its data there.
fn start_on(dir: &Path, port: u16) -> Server {
    start_with(dir, port, &[])
}

/// [`start_on`] with `extra` flags.
fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Server {
    let (www, st) = site(dir);
    let data = dir.join("data");
    let port = port.to_string();
    let mut args = vec![
        "--server-ip",
        "127.0.0.1",
        "--server-port",
        &port,
        "--threads",
        TEST_THREADS,
        "--www",
        &www,
        "--static",
        &st,
        "--data-dir",
        data.to_str().unwrap(),
        "--no-access-log",
    ];
    args.extend_from_slice(extra);
    Server::start(env!("CARGO_BIN_EXE_sampleapp"), &args)
}

#[test]
fn the_tracker_lists_a_registered_peer_and_drops_it_after_the_ttl_the_flags_set() {
    let dir = TempDir::new("tracker");
    let server = start_with(
        dir.path(),
        0,
        &["--peer-heartbeat", "100ms", "--peer-ttl", "300ms"],
    );
    let port = server.port;
    let sid = login(port);
    let json = "Content-Type: application/json\r\n";
    let cookie = format!("Cookie: {sid}\r\n{json}");
    let r = post(
        port,
        "/submit-info",
        &cookie,
        r#"{"name":"admin","port":"7101","id":"alice-1"}"#,
    );
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&r.body));
    let reply: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (reply["interval_ms"].as_u64(), reply["ttl_ms"].as_u64()),
        (Some(100), Some(300))
    );
    let list = |port| -> Vec<serde_json::Value> {
        let r = with_cookie(port, "/get-list", &sid);
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["peers"].as_array().unwrap().clone()
    };
    let peers = list(port);
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["ip"], "127.0.0.1");
    assert_eq!(peers[0]["port"], 7101);
    assert_eq!(
        post(
            port,
            "/submit-info",
            &cookie,
            r#"{"name":"admin","port":"x"}"#
        )
        .status(),
        400
    );
    // Silent now: gone within the TTL plus a generous margin for a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !list(port).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent peer never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        post(port, "/add-list", &cookie, "{}").status(),
        404,
        "expired: register again"
    );
}

#[test]
fn every_acknowledged_message_survives_sigkill_exactly_once_in_one_order() {
    const CLIENTS: usize = 20;
    const EACH: usize = 100;
    let dir = TempDir::new("sampleapp-crash");
    let port = common::free_port();
    let server = std::sync::Arc::new(std::sync::Mutex::new(Some(start_on(dir.path(), port))));
    let sid = login(port);
    // Every acknowledgement is counted here, so the kills land while posts are under way.
    let (acks, acked_rx) = std::sync::mpsc::channel::<()>();
    // Each client posts its messages in order, each retried under its transaction id until a
    // 2xx says it is durable.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (sid, acks) = (sid.clone(), acks.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for m in 0..EACH {
                    let body = format!(r#"{{"text":"c{c} m{m}","txn":"c{c}-m{m}"}}"#);
                    let raw = format!(
                        "POST /channel/general/message HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nCookie: {sid}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let deadline = std::time::Instant::now() + Duration::from_secs(120);
                    loop {
                        assert!(std::time::Instant::now() < deadline, "c{c} m{m} never acknowledged");
                        match try_request(port, &raw) {
                            Some((200 | 201, b)) => {
                                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                                acked.push(v["seq"].as_u64().unwrap());
                                let _ = acks.send(());
                                break;
                            }
                            Some((503 | 409, _)) | None => {
                                std::thread::sleep(Duration::from_millis(20))
                            }
                            Some((status, b)) => panic!(
                                "c{c} m{m}: {status} {}",
                                String::from_utf8_lossy(&b)
                            ),
                        }
                    }
                }
                acked
            })
        })
        .collect();
    drop(acks);
    // Meanwhile: 8 SIGKILLs, the k-th after a random count of acknowledgements between
    // 200k and 200k + 150 (all before the 2,000th), each followed by a restart on the port.
    let mut kills = 0;
    let mut rng = fastrand::Rng::new();
    let mut seen = 0;
    while kills < 8 {
        let at = (kills + 1) * 200 + rng.usize(0..150);
        while seen < at {
            acked_rx
                .recv()
                .expect("the clients stopped before every kill");
            seen += 1;
        }
        let mut slot = server.lock().unwrap();
        if let Some(s) = slot.as_mut() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        kills += 1;
        *slot = Some(start_on(dir.path(), port));
    }
    let acked: Vec<Vec<u64>> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(kills, 8);

    // Restart once more and read the whole channel back.
    {
        let mut slot = server.lock().unwrap();
        if let Some(s) = slot.as_mut() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        *slot = Some(start_on(dir.path(), port));
    }
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let r = retrying(|| {
            with_cookie(
                port,
                &format!("/channel/general/messages?after={after}&limit=200"),
                &sid,
            )
        });
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let page = v["messages"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap()["seq"].as_u64().unwrap();
        history.extend(page);
    }
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "one dense order"
    );
    let mut txns: Vec<&str> = history.iter().map(|m| m["txn"].as_str().unwrap()).collect();
    txns.sort();
    let before = txns.len();
    txns.dedup();
    assert_eq!(txns.len(), before, "no message twice");
    for (c, seqs_of_c) in acked.iter().enumerate() {
        assert_eq!(seqs_of_c.len(), EACH);
        for (m, seq) in seqs_of_c.iter().enumerate() {
            let stored = &history[*seq as usize - 1];
            assert_eq!(
                stored["txn"].as_str(),
                Some(format!("c{c}-m{m}").as_str()),
                "acknowledged as seq {seq}, stored there"
            );
        }
        assert!(
            seqs_of_c.windows(2).all(|w| w[0] < w[1]),
            "c{c}'s messages in its order"
        );
    }
    assert_eq!(
        history.len(),
        CLIENTS * EACH,
        "every message, acknowledged, is there"
    );
    println!(
        "crash test: {kills} SIGKILLs, {} messages, all there once",
        history.len()
    );
}
