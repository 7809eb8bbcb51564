//! Peer-to-peer messaging with the real binaries on loopback: the chat server as the tracker
//! and three peer nodes (`sampleapp --tracker ...`), each with its own data directory.

mod common;

use common::{free_port, post, request, Resp, Server, TempDir, TEST_THREADS};
use std::path::Path;
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn basic(user: &str) -> String {
    use weaprous_core::web::base64;
    let raw = format!("{user}:password of {user}");
    format!(
        "Authorization: Basic {}\r\n",
        base64::encode(raw.as_bytes())
    )
}

fn get_as(port: u16, user: &str, path: &str) -> Resp {
    request(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{}\r\n",
            basic(user)
        ),
    )
}

fn post_as(port: u16, user: &str, path: &str, json: &str) -> Resp {
    let extra = format!("{}Content-Type: application/json\r\n", basic(user));
    post(port, path, &extra, json)
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.body)))
}

/// Polls `cond` until it holds, for up to 30 s (a loaded machine; the things waited for are
/// heartbeats and reconnect backoffs).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Peer {
    name: &'static str,
    ui: u16,
    server: Option<Server>,
}

impl Peer {
    fn start(dir: &Path, tracker: u16, name: &'static str, ui: u16, p2p: u16) -> Peer {
        let pw = dir.join(format!("{name}.pw"));
        std::fs::write(&pw, format!("password of {name}\n")).unwrap();
        let data = dir.join(format!("data-{name}"));
        let tracker = format!("http://127.0.0.1:{tracker}");
        let (ui_s, p2p_s) = (ui.to_string(), p2p.to_string());
        let www = repo().join("www/peer");
        let st = repo().join("static");
        let server = Server::start(
            env!("CARGO_BIN_EXE_sampleapp"),
            &[
                "--tracker",
                &tracker,
                "--name",
                name,
                "--password-file",
                pw.to_str().unwrap(),
                "--server-port",
                &ui_s,
                "--p2p-ip",
                "127.0.0.1",
                "--p2p-port",
                &p2p_s,
                "--www",
                www.to_str().unwrap(),
                "--static",
                st.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
                "--message-ttl",
                "5m",
                "--no-access-log",
            ],
        );
        let p = Peer {
            name,
            ui,
            server: Some(server),
        };
        eventually(&format!("{name} registered"), || {
            let r = get_as(ui, name, "/me");
            r.status() == 200 && json(&r)["registered"] == true
        });
        p
    }
    fn get(&self, path: &str) -> Resp {
        get_as(self.ui, self.name, path)
    }
    fn post(&self, path: &str, body: &str) -> Resp {
        post_as(self.ui, self.name, path, body)
    }
    fn messages(&self) -> Vec<serde_json::Value> {
        let r = self.get("/messages");
        assert_eq!(r.status(), 200);
        json(&r)["messages"].as_array().unwrap().clone()
    }
    fn texts(&self) -> Vec<String> {
        self.messages()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    }
    fn id(&self) -> String {
        json(&self.get("/me"))["id"].as_str().unwrap().to_string()
    }
    fn fate(&self, text: &str, peer: &str) -> Option<String> {
        self.messages()
            .into_iter()
            .find(|m| m["text"] == text)
            .and_then(|m| m["fates"][peer].as_str().map(str::to_string))
    }
}

fn start_tracker(dir: &Path) -> Server {
    let data = dir.join("chat");
    let www = repo().join("www");
    let st = repo().join("static");
    let server = Server::start(
        env!("CARGO_BIN_EXE_sampleapp"),
        &[
            "--server-ip",
            "127.0.0.1",
            "--server-port",
            "0",
            "--threads",
            TEST_THREADS,
            "--www",
            www.to_str().unwrap(),
            "--static",
            st.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--no-access-log",
            "--peer-heartbeat",
            "200ms",
            "--peer-ttl",
            "600ms",
        ],
    );
    for name in ["alice", "bob", "carol"] {
        let body = format!(r#"{{"user":"{name}","password":"password of {name}"}}"#);
        let r = common::retrying(|| {
            post(
                server.port,
                "/register",
                "Content-Type: application/json\r\n",
                &body,
            )
        });
        assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&r.body));
    }
    server
}

fn listed(tracker: u16) -> Vec<String> {
    let r = get_as(tracker, "alice", "/get-list");
    assert_eq!(r.status(), 200);
    json(&r)["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn three_peers_message_directly_and_by_broadcast_across_a_kill_and_a_silent_exit() {
    let dir = TempDir::new("p2p");
    let tracker = start_tracker(dir.path());
    let t = tracker.port;
    let (ua, ub, uc) = (free_port(), free_port(), free_port());
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = Peer::start(dir.path(), t, "alice", ua, pa);
    let mut b = Peer::start(dir.path(), t, "bob", ub, pb);
    let mut c = Peer::start(dir.path(), t, "carol", uc, pc);
    eventually("the tracker lists all three", || listed(t).len() == 3);
    let (bob, carol) = (b.id(), c.id());

    // A connects to B, and sends it a direct message.
    eventually("alice knows bob", || {
        a.get("/peers").body.windows(3).any(|w| w == b"bob")
    });
    let r = a.post("/connect-peer", r#"{"peer":"bob"}"#);
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["name"], "bob");
    let r = a.post("/send-peer", r#"{"peer":"bob","message":"hello bob"}"#);
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&r.body));
    eventually("bob has it", || b.texts() == ["hello bob"]);
    eventually("alice sees it delivered", || {
        a.fate("hello bob", &bob).as_deref() == Some("delivered")
    });

    // A broadcasts: B and C get it once.
    let r = a.post("/broadcast-peer", r#"{"message":"hello everyone"}"#);
    assert_eq!(r.status(), 201);
    assert_eq!(
        json(&r)["fates"].as_object().unwrap().len(),
        2,
        "two recipients"
    );
    eventually("bob has the broadcast", || b.texts().len() == 2);
    eventually("carol has the broadcast", || {
        c.texts() == ["hello everyone"]
    });

    // B is killed; what A sends meanwhile waits, and arrives once B is back.
    drop(b.server.take());
    let r = a.post(
        "/send-peer",
        r#"{"peer":"bob","message":"while you were away"}"#,
    );
    assert_eq!(r.status(), 201);
    assert_eq!(
        a.fate("while you were away", &bob).as_deref(),
        Some("pending")
    );
    b = Peer::start(dir.path(), t, "bob", ub, pb);
    assert_eq!(b.id(), bob, "the same peer id after a restart");
    eventually("bob receives what was queued", || b.texts().len() == 3);
    assert_eq!(
        b.texts(),
        ["hello bob", "hello everyone", "while you were away"],
        "history survived the kill, each message once, in order"
    );
    eventually("alice sees it delivered", || {
        a.fate("while you were away", &bob).as_deref() == Some("delivered")
    });

    // The local API refuses strangers and other sites.
    let r = post(
        ua,
        "/send-peer",
        "Content-Type: application/json\r\n",
        r#"{"peer":"bob","message":"x"}"#,
    );
    assert_eq!(r.status(), 401, "no sign-in");
    let r = a.post("/send-peer", r#"{"peer":"nobody","message":"x"}"#);
    assert_eq!(r.status(), 404, "an unknown peer");
    let r = a.post(
        "/connect-peer",
        &format!(r#"{{"ip":"127.0.0.1","port":"{}"}}"#, free_port()),
    );
    assert_eq!(r.status(), 502, "nothing listens there");

    // C stops without a word: the tracker forgets it after its TTL.
    c.server.take().unwrap().signal("-KILL");
    eventually("carol left the tracker's list", || {
        listed(t) == ["alice", "bob"]
    });
    eventually("alice sees carol offline", || {
        let peers = json(&a.get("/peers"));
        peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == carol.as_str() && p["listed"] == false && p["online"] == false)
    });
    drop(c);
    drop(tracker);
}

#[test]
fn the_peer_ui_needs_its_own_login_and_refuses_other_sites() {
    let dir = TempDir::new("p2p-ui");
    let tracker = start_tracker(dir.path());
    let ui = free_port();
    let a = Peer::start(dir.path(), tracker.port, "alice", ui, free_port());
    // The page needs a session; the login page does not.
    assert_eq!(common::get(ui, "/").status(), 401);
    assert_eq!(common::get(ui, "/login.html").status(), 200);
    let bad = post(
        ui,
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "user=alice&password=wrong",
    );
    assert_eq!(bad.status(), 401);
    let r = post(
        ui,
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "user=alice&password=password%20of%20alice",
    );
    assert_eq!(r.status(), 200);
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with(&format!("psid{ui}=")), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let sid = cookie.split(';').next().unwrap().to_string();
    let page = common::with_cookie(ui, "/", &sid);
    assert_eq!(page.status(), 200);
    // A change by cookie from another site is refused.
    let r = post(
        ui,
        "/broadcast-peer",
        &format!(
            "Cookie: {sid}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\n"
        ),
        r#"{"message":"sent by a stranger's page"}"#,
    );
    assert_eq!(r.status(), 403);
    assert!(a.messages().is_empty(), "nothing was sent");
    let r = post(
        ui,
        "/broadcast-peer",
        &format!("Cookie: {sid}\r\nOrigin: http://127.0.0.1\r\nContent-Type: application/json\r\n"),
        r#"{"message":"mine"}"#,
    );
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(&r.body));
    // The server's channels, relayed from the node's own origin.
    let r = common::with_cookie(ui, "/channels", &sid);
    assert_eq!(r.status(), 200);
    assert_eq!(json(&r)[0]["name"], "general");
}
