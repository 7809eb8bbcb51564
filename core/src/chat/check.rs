//! What any sequence of requests does to the chat node: the fuzz target `chat_requests` and a
//! property test (`core/tests/chat_node.rs`) both run [`check_requests`] on arbitrary bytes.
//!
//! Input layout: requests separated by a NUL byte, at most [`MAX_REQUESTS`]. In each, byte 0
//! picks a route (a table of every route and a few that are none), byte 1 the body's type
//! (JSON, a form, none, another), byte 2 whether the signed-in cookie, a stranger's cookie,
//! Basic credentials or nothing goes with it, byte 3 a `Last-Event-ID`; the rest is the body,
//! and also the channel name and query, so the handlers see odd ones.
//!
//! What must hold: no panic, the node's own invariants after every step, exactly one answer
//! per request (a stream's head counts as its answer), and every error answered to an API
//! client as JSON `{"status":"error","message":...}` with a 4xx or 5xx status.

use super::node::{ChatConfig, ChatNode};
use crate::backend::app::{AppReply, AppRequest};
use crate::backend::BackendConfig;
use crate::http::parse::{Event, Kind};
use crate::node::direct::Direct;
use crate::node::machine::NodeInput;
use crate::node::Now;
use crate::time::{Instant, UnixTime};
use crate::web::accounts::StandInHasher;
use std::sync::Arc;

/// The most requests one input sends.
pub const MAX_REQUESTS: usize = 32;

const ROUTES: &[&str] = &[
    "POST /login",
    "POST /logout",
    "POST /register",
    "POST /password",
    "GET /",
    "GET /me",
    "GET /channels",
    "POST /channels",
    "GET /channel/{name}/messages?{query}",
    "POST /channel/{name}/message",
    "GET /events?{query}",
    "HEAD /events",
    "DELETE /channels",
    "PUT /channel/{name}/message",
    "GET /nothing/{name}",
    "POST /submit-info",
    "POST /add-list",
    "GET /get-list",
    "POST /remove-list",
];

/// Runs `data` (module docs) against a fresh chat node; panics when something that must hold
/// does not.
pub fn check_requests(data: &[u8]) {
    let cfg = ChatConfig::new(
        "127.0.0.1:8000".parse().expect("an address"),
        BackendConfig::new("/www", "/static"),
        Arc::new(StandInHasher),
    );
    let now = Now {
        mono: Instant::ZERO,
        wall: UnixTime(1_800_000_000),
    };
    let mut d = Direct::start(ChatNode::new(cfg), now, 1);
    let sid = sign_in(&mut d);
    for (i, part) in data.split(|&b| b == 0).take(MAX_REQUESTS).enumerate() {
        let conn = 100 + i as u64;
        let pick = |k: usize| part.get(k).copied().unwrap_or(0) as usize;
        let body = part.get(4..).unwrap_or(&[]);
        let text = String::from_utf8_lossy(body);
        // Channel names and queries from the body: only what a request line may hold.
        let word: String = text
            .chars()
            .filter(|c| c.is_ascii_graphic() && !"?#%".contains(*c))
            .take(40)
            .collect();
        let word = if word.is_empty() { "general" } else { &word };
        let route = ROUTES[pick(0) % ROUTES.len()]
            .replace("{name}", word)
            .replace(
                "{query}",
                &format!("after={}&limit={}&channel={word}", pick(3), pick(2)),
            );
        let content_type = match pick(1) % 4 {
            0 => "application/json",
            1 => "application/x-www-form-urlencoded",
            2 => "",
            _ => "text/plain",
        };
        let auth = match pick(2) % 4 {
            0 => format!("Cookie: {sid}\r\n"),
            1 => "Cookie: sid=0000; auth=true\r\n".to_string(),
            2 => format!(
                "Authorization: {}\r\n",
                crate::web::basic::authorization("admin", "password")
            ),
            _ => String::new(),
        };
        let mut head = format!("{route} HTTP/1.1\r\nHost: chat\r\n{auth}");
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if pick(3) % 3 == 0 {
            head.push_str(&format!("Last-Event-ID: {}\r\n", pick(3)));
        }
        head.push_str("\r\n");
        let (events, err) =
            crate::http::split_check::events(Kind::Request, &[head.as_bytes()], false);
        let Some(Event::Request(head)) = events.into_iter().next() else {
            // A name the request line cannot carry: not a request the node would see.
            assert!(err.is_some() || head.is_empty());
            continue;
        };
        let is_head = head.method == crate::http::Method::Head;
        let req = AppRequest {
            head,
            peer: "192.0.2.9:4000".parse().expect("an address"),
            body: body.to_vec(),
        };
        d.input(NodeInput::FromConn { conn, msg: req });
        let replies = d.take(conn);
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
            assert!(head.status.0 >= 200, "{route}: a final status");
        }
        // Streams end with the connection: let the node know, as a driver would.
        d.input(NodeInput::Closed { conn });
    }
}

/// Signs in as the default account; the `sid=...` cookie pair.
fn sign_in(d: &mut Direct<ChatNode>) -> String {
    let head = "POST /login HTTP/1.1\r\nHost: chat\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n";
    let (events, _) = crate::http::split_check::events(Kind::Request, &[head.as_bytes()], false);
    let Some(Event::Request(head)) = events.into_iter().next() else {
        panic!("the sign-in head parses");
    };
    let req = AppRequest {
        head,
        peer: "192.0.2.9:4000".parse().expect("an address"),
        body: b"user=admin&password=password".to_vec(),
    };
    d.input(NodeInput::FromConn { conn: 1, msg: req });
    let replies = d.take(1);
    let Some(AppReply::Respond { head, .. }) = replies.first() else {
        panic!("a sign-in answer: {replies:?}");
    };
    let set = head
        .headers
        .get_str("set-cookie")
        .expect("a session cookie");
    set.split(';').next().unwrap_or("").to_string()
}
