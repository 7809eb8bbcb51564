//! What any sequence of requests does to the chat node: the fuzz target `chat_requests` and a
//! property test (`core/tests/chat_node.rs`) both run [`check_requests`] on arbitrary bytes.
//!
//! Input layout: requests separated by a NUL byte, at most [`MAX_REQUESTS`], each laid out as
//! [`crate::web::check`] says: a route (a table of every route and a few that are none), the
//! body's type, the signed-in cookie, a stranger's cookie, Basic credentials or nothing (with
//! or without a foreign `Origin`), and byte 3 a `Last-Event-ID` and a query's numbers; the
//! rest is the body, and also the channel name, so the handlers see odd ones.
//!
//! What must hold: no panic, the node's own invariants after every step, exactly one answer
//! per request (a stream's head counts as its answer), and every error answered to an API
//! client as JSON `{"status":"error","message":...}` with a 4xx or 5xx status.

use super::node::{ChatConfig, ChatNode};
use crate::backend::BackendConfig;
use crate::node::direct::Direct;
use crate::node::machine::NodeInput;
use crate::node::Now;
use crate::time::{Instant, UnixTime};
use crate::web::accounts::StandInHasher;
use crate::web::check;
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
    let auths = [
        format!("Cookie: {sid}\r\n"),
        "Cookie: sid=0000; auth=true\r\n".to_string(),
        format!(
            "Authorization: {}\r\n",
            crate::web::basic::authorization("admin", "password")
        ),
        String::new(),
    ];
    for (i, part) in data.split(|&b| b == 0).take(MAX_REQUESTS).enumerate() {
        let conn = 100 + i as u64;
        let n = check::pick(part, 3);
        let fill = |route: String, word: &str| {
            route.replace(
                "{query}",
                &format!("after={n}&limit={}&channel={word}", check::pick(part, 2)),
            )
        };
        let Some(mut f) = check::request(part, ROUTES, &auths, "chat", fill) else {
            continue;
        };
        if n.is_multiple_of(3) {
            f.req.head.headers.append("Last-Event-ID", n.to_string());
        }
        let method = f.req.head.method.clone();
        d.input(NodeInput::FromConn { conn, msg: f.req });
        check::assert_one_answer(&f.route, &method, &d.take(conn));
        // Streams end with the connection: let the node know, as a driver would.
        d.input(NodeInput::Closed { conn });
    }
}

/// Signs in as the default account; the `sid=...` cookie pair.
fn sign_in(d: &mut Direct<ChatNode>) -> String {
    let req = check::parsed(
        "POST /login HTTP/1.1\r\nHost: chat\r\nContent-Type: application/x-www-form-urlencoded",
        b"user=admin&password=password",
    );
    d.input(NodeInput::FromConn { conn: 1, msg: req });
    check::session_cookie(d.take(1).first())
}
