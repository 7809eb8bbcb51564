//! What any sequence of requests does to a peer node's API: the fuzz target `peer_requests`
//! and a property test (`core/tests/p2p_api.rs`) both run [`check_requests`] on arbitrary
//! bytes. The node runs on [`Direct`]: its log in memory, every connect refused (so dials and
//! the tracker fail at once, as an unreachable network does).
//!
//! Input layout: requests separated by a NUL byte, at most [`MAX_REQUESTS`]. In each, byte 0
//! picks a route (every route, and a few that are none), byte 1 the body's type, byte 2 the
//! credentials (the session cookie, a forged cookie, Basic, wrong Basic, none) and whether a
//! foreign `Origin` goes with them; the rest is the body, and also the peer or channel name.
//!
//! What must hold: no panic, the node's own invariants after every step, exactly one answer
//! per request (a stream's head counts), and every error answered as JSON
//! `{"status":"error","message":...}` with a 4xx or 5xx status.

use super::conn::{Down, Up};
use super::node::{PeerConfig, PeerNode};
use crate::backend::app::{AppReply, AppRequest};
use crate::backend::BackendConfig;
use crate::http::parse::{Event, Kind};
use crate::node::direct::Direct;
use crate::node::machine::NodeInput;
use crate::node::Now;
use crate::time::{Instant, UnixTime};

/// The most requests one input sends.
pub const MAX_REQUESTS: usize = 32;

const ROUTES: &[&str] = &[
    "POST /login",
    "POST /logout",
    "GET /",
    "GET /me",
    "GET /peers",
    "POST /connect-peer",
    "POST /send-peer",
    "POST /broadcast-peer",
    "GET /messages?conversation={name}&after=1",
    "POST /read",
    "GET /events",
    "HEAD /events",
    "GET /channels",
    "GET /channel/{name}/messages?limit=5",
    "POST /channel/{name}/message",
    "DELETE /peers",
    "PUT /send-peer",
    "GET /nothing/{name}",
];

const USER: &str = "alice";
const PASSWORD: &str = "alice's password";

/// Runs `data` (module docs) against a fresh peer node; panics when something that must hold
/// does not.
pub fn check_requests(data: &[u8]) {
    let cfg = PeerConfig::new(
        "127.0.0.1:8101".parse().expect("an address"),
        "127.0.0.1:7101".parse().expect("an address"),
        "127.0.0.1:8000".parse().expect("an address"),
        USER,
        PASSWORD,
        BackendConfig::new("/www", "/static"),
    );
    let now = Now {
        mono: Instant::ZERO,
        wall: UnixTime(1_800_000_000),
    };
    let mut d = Direct::start(PeerNode::new(cfg), now, 1);
    let cookie = sign_in(&mut d);
    for (i, part) in data.split(|&b| b == 0).take(MAX_REQUESTS).enumerate() {
        let conn = 100 + i as u64;
        let pick = |k: usize| part.get(k).copied().unwrap_or(0) as usize;
        let body = part.get(3..).unwrap_or(&[]);
        let text = String::from_utf8_lossy(body);
        let word: String = text
            .chars()
            .filter(|c| c.is_ascii_graphic() && !"?#%".contains(*c))
            .take(40)
            .collect();
        let word = if word.is_empty() { "bob" } else { &word };
        let route = ROUTES[pick(0) % ROUTES.len()].replace("{name}", word);
        let content_type = match pick(1) % 4 {
            0 => "application/json",
            1 => "application/x-www-form-urlencoded",
            2 => "",
            _ => "text/plain",
        };
        let auth = match pick(2) % 5 {
            0 => format!("Cookie: {cookie}\r\n"),
            1 => "Cookie: psid8101=0000\r\n".to_string(),
            2 => format!(
                "Authorization: {}\r\n",
                crate::web::basic::authorization(USER, PASSWORD)
            ),
            3 => format!(
                "Authorization: {}\r\n",
                crate::web::basic::authorization(USER, "wrong")
            ),
            _ => String::new(),
        };
        let mut head = format!("{route} HTTP/1.1\r\nHost: 127.0.0.1:8101\r\n{auth}");
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if pick(2) / 5 % 2 == 1 {
            head.push_str("Origin: http://evil.example\r\n");
        }
        head.push_str("\r\n");
        let (events, err) =
            crate::http::split_check::events(Kind::Request, &[head.as_bytes()], false);
        let Some(Event::Request(head)) = events.into_iter().next() else {
            assert!(err.is_some() || head.is_empty());
            continue;
        };
        let is_head = head.method == crate::http::Method::Head;
        let req = AppRequest {
            head,
            peer: "127.0.0.1:40000".parse().expect("an address"),
            body: body.to_vec(),
        };
        d.input(NodeInput::FromConn {
            conn,
            msg: Up::Ui(req),
        });
        let replies: Vec<AppReply> = d
            .take(conn)
            .into_iter()
            .filter_map(|m| match m {
                Down::Ui(r) => Some(r),
                _ => None,
            })
            .collect();
        let answers = replies
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    AppReply::Respond { .. } | AppReply::Static { .. } | AppReply::Stream { .. }
                )
            })
            .count();
        assert_eq!(answers, 1, "{route}: one answer, got {replies:?}");
        if let Some(AppReply::Respond { head, body }) = replies.first() {
            let json = head.headers.get_str("content-type") == Some("application/json");
            if head.status.0 >= 400 && json && !is_head {
                let v: serde_json::Value =
                    serde_json::from_slice(body).expect("an error body is JSON");
                assert_eq!(v["status"], "error", "{route}: {v}");
                assert!(v["message"].is_string(), "{route}: {v}");
            }
        }
        d.input(NodeInput::Closed { conn });
    }
}

/// Signs in with the node's account; the `psid8101=...` cookie pair.
fn sign_in(d: &mut Direct<PeerNode>) -> String {
    let head =
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1:8101\r\nContent-Type: application/json\r\n\r\n";
    let (events, _) = crate::http::split_check::events(Kind::Request, &[head.as_bytes()], false);
    let Some(Event::Request(head)) = events.into_iter().next() else {
        panic!("the sign-in head parses");
    };
    let body = serde_json::json!({ "user": USER, "password": PASSWORD }).to_string();
    let req = AppRequest {
        head,
        peer: "127.0.0.1:40000".parse().expect("an address"),
        body: body.into_bytes(),
    };
    d.input(NodeInput::FromConn {
        conn: 1,
        msg: Up::Ui(req),
    });
    let replies = d.take(1);
    let Some(Down::Ui(AppReply::Respond { head, .. })) = replies.first() else {
        panic!("a sign-in answer: {replies:?}");
    };
    let set = head
        .headers
        .get_str("set-cookie")
        .expect("a session cookie");
    set.split(';').next().unwrap_or("").to_string()
}
