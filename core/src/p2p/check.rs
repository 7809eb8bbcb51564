//! What any sequence of requests does to a peer node's API: the fuzz target `peer_requests`
//! and a property test (`core/tests/p2p_api.rs`) both run [`check_requests`] on arbitrary
//! bytes. The node runs on [`Direct`]: its log in memory, every connect refused (so dials and
//! the tracker fail at once, as an unreachable network does).
//!
//! Input layout: requests separated by a NUL byte, at most [`MAX_REQUESTS`], each laid out as
//! [`crate::web::check`] says: a route (every route, and a few that are none), the body's
//! type, the credentials (the session cookie, a forged cookie, Basic, wrong Basic, none) with
//! or without a foreign `Origin`; the rest is the body, and also the peer or channel name.
//!
//! What must hold: no panic, the node's own invariants after every step, exactly one answer
//! per request (a stream's head counts), and every error answered as JSON
//! `{"status":"error","message":...}` with a 4xx or 5xx status.

use super::conn::{Down, Up};
use super::node::{PeerConfig, PeerNode};
use crate::backend::app::AppReply;
use crate::backend::BackendConfig;
use crate::node::direct::Direct;
use crate::node::machine::NodeInput;
use crate::node::Now;
use crate::time::{Instant, UnixTime};
use crate::web::check;

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
    let basic = |pw: &str| {
        format!(
            "Authorization: {}\r\n",
            crate::web::basic::authorization(USER, pw)
        )
    };
    let auths = [
        format!("Cookie: {cookie}\r\n"),
        "Cookie: psid8101=0000\r\n".to_string(),
        basic(PASSWORD),
        basic("wrong"),
        String::new(),
    ];
    for (i, part) in data.split(|&b| b == 0).take(MAX_REQUESTS).enumerate() {
        let conn = 100 + i as u64;
        let Some(f) = check::request(part, ROUTES, &auths, "127.0.0.1:8101", |r, _| r) else {
            continue;
        };
        let method = f.req.head.method.clone();
        d.input(NodeInput::FromConn {
            conn,
            msg: Up::Ui(f.req),
        });
        let replies: Vec<AppReply> = d
            .take(conn)
            .into_iter()
            .filter_map(|m| match m {
                Down::Ui(r) => Some(r),
                _ => None,
            })
            .collect();
        check::assert_one_answer(&f.route, &method, &replies);
        d.input(NodeInput::Closed { conn });
    }
}

/// Signs in with the node's account; the `psid8101=...` cookie pair.
fn sign_in(d: &mut Direct<PeerNode>) -> String {
    let body = serde_json::json!({ "user": USER, "password": PASSWORD }).to_string();
    let req = check::parsed(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1:8101\r\nContent-Type: application/json",
        body.as_bytes(),
    );
    d.input(NodeInput::FromConn {
        conn: 1,
        msg: Up::Ui(req),
    });
    let replies = d.take(1);
    check::session_cookie(replies.first().and_then(|m| match m {
        Down::Ui(r) => Some(r),
        _ => None,
    }))
}
