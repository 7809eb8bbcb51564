//! The peer node's local web UI and API, for its own user only.
//!
//! # Routes
//! | route | what it does |
//! |---|---|
//! | `POST /login` | `user`, `password`: the node's own account; a session cookie `psid<port>` (the UI's port: two nodes on one host keep apart), then `303 /` for a browser or JSON |
//! | `POST /logout` | ends the session |
//! | `GET /`, `GET /index.html` | the peer UI for a session, else `401` (a browser is sent to `/login.html`) |
//! | `GET /me` | `{user, id, p2p_port, registered}` |
//! | `GET /peers` | `{me, peers: [{id, name, addr, listed, online, waiting, unread}], broadcast_unread}` |
//! | `POST /connect-peer` | `peer` (an id or a name), or `ip` and `port`: `200` once the link is up; `502` refused or a failed handshake, `504` no answer within the connect timeout; `404` an unknown peer |
//! | `POST /send-peer` | `peer`, `message`: `201` with the message once it is durable (`fates` say pending, delivered or failed per recipient); `404` an unknown peer; `503` its outbox is full |
//! | `POST /broadcast-peer` | `message`: `201`; every active peer (listed by the tracker, or linked) is a recipient |
//! | `GET /messages` | `?conversation=peer:ID` or `broadcast`, `?after=N`: the history, oldest first |
//! | `POST /read` | `conversation`, `upto`: moves its read marker (unread counts) |
//! | `GET /events` | Server-Sent Events: `message`, `status` (a fate changed), `peers` (the list changed). A reconnecting page loads `/messages` again: events carry no ids |
//! | `GET /channels`, `GET /channel/{name}/messages`, `POST /channel/{name}/message` | relayed to the chat server with the account's credentials, so the UI shows the server's channels from its own origin |
//!
//! Every route but `/login` needs the session cookie or `Authorization: Basic` with the node's
//! account. A change authenticated by cookie whose `Origin` is another site is refused
//! (`403`): the seed's peer UI let any web page send messages as its user. Wrong passwords
//! are limited per client (5, then one a minute: `429`).

use super::history::PeerRecord;
use super::node::{For, PeerNode, Then};
use super::wire::Kind;
use crate::backend::app::{AppReply, AppRequest};
use crate::http::{Method, Status};
use crate::node::machine::{ConnId, Entropy};
use crate::node::Now;
use crate::web::cookie::{cookie, SameSite, SetCookie};
use crate::web::reply;
use crate::web::request::{fields, origin_allowed, wants_html};
use crate::web::router::{Params, Router};
use crate::web::session::{new_token, Check};
use core::net::SocketAddr;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Login,
    Logout,
    Page,
    Me,
    Peers,
    Connect,
    Send,
    Broadcast,
    Messages,
    Read,
    Events,
    Channels,
    History,
    Post,
}

pub(super) fn router() -> Router<Route> {
    let mut r = Router::new();
    r.route(&[Method::Post], "/login", Route::Login)
        .route(&[Method::Post], "/logout", Route::Logout)
        .route(&[Method::Get], "/", Route::Page)
        .route(&[Method::Get], "/index.html", Route::Page)
        .route(&[Method::Get], "/me", Route::Me)
        .route(&[Method::Get], "/peers", Route::Peers)
        .route(&[Method::Post], "/connect-peer", Route::Connect)
        .route(&[Method::Post], "/send-peer", Route::Send)
        .route(&[Method::Post], "/broadcast-peer", Route::Broadcast)
        .route(&[Method::Get], "/messages", Route::Messages)
        .route(&[Method::Post], "/read", Route::Read)
        .route(&[Method::Get], "/events", Route::Events)
        .route(&[Method::Get], "/channels", Route::Channels)
        .route(&[Method::Get], "/channel/{name}/messages", Route::History)
        .route(&[Method::Post], "/channel/{name}/message", Route::Post);
    r
}

fn header<'a>(req: &'a AppRequest, name: &str) -> Option<&'a str> {
    req.head.headers.get_str(name)
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl PeerNode {
    fn cookie_name(&self) -> String {
        format!("psid{}", self.cfg.ui_addr.port())
    }

    fn error(&mut self, conn: ConnId, status: u16, message: &str) {
        self.reply(conn, reply::error(status, message));
    }

    fn ok_json(&mut self, conn: ConnId, status: u16, body: serde_json::Value) {
        self.reply(conn, reply::json(Status(status), &[], body.to_string()));
    }

    pub(super) fn on_request(
        &mut self,
        now: Now,
        conn: ConnId,
        req: AppRequest,
        entropy: &mut dyn Entropy,
    ) {
        let browser = wants_html(header(&req, "accept"));
        let (route, params) = match reply::route(&self.router, &req) {
            Ok(found) => found,
            Err(answer) => return self.reply(conn, answer),
        };
        if self.draining {
            return self.error(conn, 503, "the peer is shutting down");
        }
        if !self.ready {
            if browser && req.head.method == Method::Get {
                return self.reply(conn, reply::starting_page("The peer"));
            }
            return self.reply(
                conn,
                reply::json(
                    Status::SERVICE_UNAVAILABLE,
                    &[("Retry-After", "1")],
                    crate::web::request::error_json("the peer is starting; try again"),
                ),
            );
        }
        let client = req.peer.ip().to_string();
        if route == Route::Login {
            return self.login(now, conn, &req, &client, browser, entropy);
        }
        let by_cookie = header(&req, "cookie")
            .and_then(|c| cookie(c, &self.cookie_name()))
            .map(str::to_string);
        let mut session = None;
        if let Some(token) = by_cookie {
            if let Check::Valid { .. } = self.sessions.check(&token, now.wall) {
                session = Some(token);
            }
        }
        if session.is_none() {
            let basic = header(&req, "authorization").and_then(crate::web::basic::credentials);
            match basic {
                Some((user, password)) if self.account_ok(&user, &password) => {}
                Some(_) => {
                    self.limiter.failed(&format!("ip:{client}"), now.wall);
                    return self.reply(conn, reply::unauthorized(browser));
                }
                None => return self.reply(conn, reply::unauthorized(browser)),
            }
        }
        if req.head.method == Method::Post
            && session.is_some()
            && !origin_allowed(header(&req, "origin"), header(&req, "host"))
        {
            return self.error(conn, 403, "a change from another site was refused");
        }
        self.dispatch(now, conn, route, params, req, session, browser);
    }

    fn account_ok(&self, user: &str, password: &str) -> bool {
        // Both compared whole, so the time taken does not say which was wrong.
        same(user, &self.cfg.user) & same(password, &self.cfg.password)
    }

    fn login(
        &mut self,
        now: Now,
        conn: ConnId,
        req: &AppRequest,
        client: &str,
        browser: bool,
        entropy: &mut dyn Entropy,
    ) {
        let key = format!("ip:{client}");
        if let Err(wait) = self.limiter.check(&key, now.wall) {
            let wait = wait.max(1).to_string();
            return self.reply(
                conn,
                reply::json(
                    Status(429),
                    &[("Retry-After", &wait)],
                    crate::web::request::error_json("too many wrong passwords; wait and try again"),
                ),
            );
        }
        let mut f = match fields(header(req, "content-type"), &req.body) {
            Ok(f) => f,
            Err((status, msg)) => return self.error(conn, status, &msg),
        };
        let user = f
            .remove("user")
            .or(f.remove("username"))
            .unwrap_or_default();
        let password = f.remove("password").unwrap_or_default();
        if !self.account_ok(&user, &password) {
            self.limiter.failed(&key, now.wall);
            if browser {
                return self.reply(conn, reply::redirect("/login.html?failed=1", None));
            }
            return self.reply(conn, reply::unauthorized(false));
        }
        self.limiter.succeeded(&key);
        let mut secret = [0u8; 32];
        entropy.fill(&mut secret);
        let token = new_token(secret);
        self.sessions.create(token.clone(), &user, now.wall);
        let mut c = SetCookie::new(&self.cookie_name(), &token);
        if let Some(c) = c.as_mut() {
            c.path = Some("/".into());
            c.http_only = true;
            c.same_site = Some(SameSite::Strict);
            c.max_age = Some(self.cfg.sessions.absolute_secs as i64);
        }
        if browser {
            return self.reply(conn, reply::redirect("/", c.as_ref()));
        }
        let set = c.map(|c| c.to_string()).unwrap_or_default();
        let body = serde_json::json!({ "status": "ok", "user": user }).to_string();
        self.reply(conn, reply::json(Status::OK, &[("Set-Cookie", &set)], body));
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        now: Now,
        conn: ConnId,
        route: Route,
        params: Params,
        req: AppRequest,
        session: Option<String>,
        browser: bool,
    ) {
        let query = crate::web::form::Form::parse(req.head.target.query().unwrap_or("").as_bytes())
            .unwrap_or_default();
        match route {
            Route::Login => {}
            Route::Logout => {
                if let Some(t) = session {
                    self.sessions.end(&t);
                }
                let removal = SetCookie::removal(&self.cookie_name(), "/");
                if browser {
                    return self.reply(conn, reply::redirect("/login.html", removal.as_ref()));
                }
                let c = removal.map(|c| c.to_string()).unwrap_or_default();
                self.reply(
                    conn,
                    reply::json(
                        Status::OK,
                        &[("Set-Cookie", &c)],
                        r#"{"status":"ok"}"#.into(),
                    ),
                );
            }
            Route::Page => self.reply(conn, AppReply::Static { private: true }),
            Route::Me => {
                let body = serde_json::json!({
                    "user": self.cfg.user,
                    "id": self.state.id,
                    "p2p_port": self.p2p_port,
                    "registered": self.tracker.registered,
                });
                self.ok_json(conn, 200, body);
            }
            Route::Peers => {
                let body = self.peers_json();
                self.ok_json(conn, 200, body);
            }
            Route::Connect => self.connect_peer(now, conn, &req),
            Route::Send => self.send(now, conn, &req, Kind::Direct),
            Route::Broadcast => self.send(now, conn, &req, Kind::Broadcast),
            Route::Messages => {
                let conv = query.get("conversation").map(str::to_string);
                let after: u64 = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
                let list: Vec<serde_json::Value> = self
                    .state
                    .entries
                    .iter()
                    .filter(|e| e.n > after)
                    .filter(|e| {
                        conv.as_deref()
                            .is_none_or(|c| self.state.conversation_of(e) == c)
                    })
                    .map(|e| self.state.entry_json(e))
                    .collect();
                self.ok_json(conn, 200, serde_json::json!({ "messages": list }));
            }
            Route::Read => {
                let f = match fields(header(&req, "content-type"), &req.body) {
                    Ok(f) => f,
                    Err((status, msg)) => return self.error(conn, status, &msg),
                };
                let (Some(conv), Some(upto)) = (
                    f.get("conversation").cloned(),
                    f.get("upto").and_then(|u| u.parse::<u64>().ok()),
                ) else {
                    return self.error(conn, 400, "conversation and a numeric upto are required");
                };
                let upto = upto.min(self.state.entries.len() as u64);
                let rec = PeerRecord::Read { conv, upto };
                self.state.apply(&rec);
                self.append(rec, Then::Nothing);
                self.ok_json(conn, 200, serde_json::json!({ "status": "ok" }));
                self.publish_peers();
            }
            Route::Events => {
                self.reply(conn, reply::event_stream(&req.head.method));
                if req.head.method == Method::Head {
                    return;
                }
                let mut first = Vec::new();
                crate::web::sse::Event {
                    id: None,
                    event: Some("peers".into()),
                    data: self.peers_json().to_string(),
                }
                .encode(&mut first);
                self.reply(conn, AppReply::StreamData(first));
                self.subscribers.insert(conn);
            }
            Route::Channels => self.relay(conn, Method::Get, "/channels".into(), None),
            Route::History => {
                let name = params.get("name").unwrap_or("");
                let mut target = format!("/channel/{}/messages", pct(name));
                if let Some(q) = req.head.target.query() {
                    target.push('?');
                    target.push_str(q);
                }
                self.relay(conn, Method::Get, target, None);
            }
            Route::Post => {
                let f = match fields(header(&req, "content-type"), &req.body) {
                    Ok(f) => f,
                    Err((status, msg)) => return self.error(conn, status, &msg),
                };
                let name = params.get("name").unwrap_or("");
                let body = serde_json::to_string(&f).unwrap_or_default();
                self.relay(
                    conn,
                    Method::Post,
                    format!("/channel/{}/message", pct(name)),
                    Some(body),
                );
            }
        }
    }

    fn relay(&mut self, conn: ConnId, method: Method, target: String, body: Option<String>) {
        self.tracker_fetch(method, &target, body, For::Relay(conn));
    }

    /// The peer a request names (`peer`: an id, or a known name).
    fn resolve(&self, name_or_id: &str) -> Option<String> {
        if self.state.peers.contains_key(name_or_id)
            || self.listed.contains_key(name_or_id)
            || self.up.contains_key(name_or_id)
        {
            return Some(name_or_id.to_string());
        }
        self.state
            .peers
            .iter()
            .find(|(_, k)| k.name == name_or_id)
            .map(|(id, _)| id.clone())
    }

    fn connect_peer(&mut self, now: Now, conn: ConnId, req: &AppRequest) {
        let f = match fields(header(req, "content-type"), &req.body) {
            Ok(f) => f,
            Err((status, msg)) => return self.error(conn, status, &msg),
        };
        if let Some(p) = f.get("peer").filter(|p| !p.is_empty()) {
            let Some(id) = self.resolve(p) else {
                return self.error(conn, 404, "no such peer");
            };
            if self.up.contains_key(&id) {
                return self.connected_reply(conn, &id);
            }
            let Some(addr) = self.addr_of(&id) else {
                return self.error(
                    conn,
                    404,
                    "that peer's address is not known (it is not on the tracker's list)",
                );
            };
            return self.dial(now, Some(id), addr, vec![conn]);
        }
        let (Some(ip), Some(port)) = (f.get("ip"), f.get("port")) else {
            return self.error(conn, 400, "give peer, or ip and port");
        };
        let (Ok(ip), Ok(port)) = (
            ip.trim().parse::<core::net::IpAddr>(),
            port.trim().parse::<u16>(),
        ) else {
            return self.error(
                conn,
                400,
                "ip must be an IP address and port a number from 1 to 65535",
            );
        };
        if port == 0 || ip.is_unspecified() {
            return self.error(
                conn,
                400,
                "ip must be an IP address and port a number from 1 to 65535",
            );
        }
        self.dial(now, None, SocketAddr::new(ip, port), vec![conn]);
    }

    fn send(&mut self, now: Now, conn: ConnId, req: &AppRequest, kind: Kind) {
        let f = match fields(header(req, "content-type"), &req.body) {
            Ok(f) => f,
            Err((status, msg)) => return self.error(conn, status, &msg),
        };
        let text = f
            .get("message")
            .or(f.get("text"))
            .map_or("", String::as_str);
        let peer = f.get("peer").map(String::as_str);
        if let Err((status, msg)) = self.send_message(now, Some(conn), kind, peer, text) {
            let retry: &[(&str, &str)] = if status == 503 {
                &[("Retry-After", "10")]
            } else {
                &[]
            };
            self.reply(
                conn,
                reply::json(Status(status), retry, crate::web::request::error_json(&msg)),
            );
        }
    }

    /// Sends `text` to `peer` (an id or a name; a broadcast names nobody): the message is
    /// answered to `reply_to`, if any, once durable. Refused with a status and why.
    pub(super) fn send_message(
        &mut self,
        now: Now,
        reply_to: Option<ConnId>,
        kind: Kind,
        peer: Option<&str>,
        text: &str,
    ) -> Result<(), (u16, String)> {
        if !self.ready || self.draining {
            return Err((503, "the peer is not running".into()));
        }
        let text = text.trim();
        if text.is_empty() {
            return Err((400, "message is required".into()));
        }
        if text.len() > super::node::MAX_TEXT || text.chars().count() > super::node::MAX_CHARS {
            return Err((413, "a message is at most 4000 characters".into()));
        }
        let to: Vec<String> = match kind {
            Kind::Direct => {
                let Some(p) = peer.filter(|p| !p.is_empty()) else {
                    return Err((400, "peer is required".into()));
                };
                let Some(id) = self.resolve(p) else {
                    return Err((404, "no such peer".into()));
                };
                if Some(id.as_str()) == self.state.id.as_deref() {
                    return Err((400, "that is you".into()));
                }
                if !self.room_for(&id) {
                    return Err((
                        503,
                        "too many messages wait for that peer; try later".into(),
                    ));
                }
                vec![id]
            }
            Kind::Broadcast => {
                let mut all: std::collections::BTreeSet<String> =
                    self.listed.keys().cloned().collect();
                all.extend(self.up.keys().cloned());
                all.into_iter().collect()
            }
        };
        let id = self.mint();
        let sent_ms = Self::now_ms(now);
        let expires_ms = sent_ms.saturating_add(self.cfg.message_ttl.as_millis() as u64);
        let rec = PeerRecord::Sent {
            id,
            kind,
            to,
            text: text.to_string(),
            sent_ms,
            expires_ms,
        };
        self.append(rec, Then::Sent(reply_to));
        Ok(())
    }
}

/// A channel name for a path segment (names are letters, digits, `-` and `_`; anything else
/// is escaped, so it cannot change the path).
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
