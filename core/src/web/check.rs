//! What the request checkers of every WeApRous node share (`chat::check`, `p2p::check`):
//! turning a slice of fuzz input into a request, and what every answer must be.
//!
//! Layout of one request's bytes: byte 0 picks a route template, byte 1 the body's type (JSON,
//! a form, none, another), byte 2 the credentials (the caller's list; past its length, the
//! same list with a foreign `Origin`), byte 3 is the caller's to use (a `Last-Event-ID`, a
//! number in a query); the rest is the body, and also the word put in the template's `{name}`.

use crate::backend::app::{AppReply, AppRequest};
use crate::http::parse::{Event, Kind};
use crate::http::Method;

/// A request made of fuzz input.
pub struct Fuzzed {
    pub route: String,
    pub req: AppRequest,
}

/// Byte `k` of a request's slice (0 past its end).
pub fn pick(part: &[u8], k: usize) -> usize {
    part.get(k).copied().unwrap_or(0) as usize
}

/// Builds the request `part` describes (module docs): `routes` are templates with `{name}`
/// (and whatever `fill` replaces), `auths` the credential head fields to choose from, `host`
/// the `Host`. `None` when the input makes no request a driver would hand the node (a name
/// the request line cannot carry).
pub fn request(
    part: &[u8],
    routes: &[&str],
    auths: &[String],
    host: &str,
    fill: impl FnOnce(String, &str) -> String,
) -> Option<Fuzzed> {
    let body = part.get(4..).unwrap_or(&[]);
    let text = String::from_utf8_lossy(body);
    let word: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() && !"?#%".contains(*c))
        .take(40)
        .collect();
    let word = if word.is_empty() { "general" } else { &word };
    let route = fill(
        routes[pick(part, 0) % routes.len()].replace("{name}", word),
        word,
    );
    let content_type = match pick(part, 1) % 4 {
        0 => "application/json",
        1 => "application/x-www-form-urlencoded",
        2 => "",
        _ => "text/plain",
    };
    let a = pick(part, 2) % (auths.len() * 2);
    let mut head = format!(
        "{route} HTTP/1.1\r\nHost: {host}\r\n{}",
        auths[a % auths.len()]
    );
    if a >= auths.len() {
        head.push_str("Origin: http://evil.example\r\n");
    }
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    let (events, err) = crate::http::split_check::events(Kind::Request, &[head.as_bytes()], false);
    let Some(Event::Request(head)) = events.into_iter().next() else {
        assert!(err.is_some(), "{head:?} parses to nothing without an error");
        return None;
    };
    Some(Fuzzed {
        route,
        req: AppRequest {
            head,
            peer: "192.0.2.9:4000".parse().expect("an address"),
            body: body.to_vec(),
        },
    })
}

/// Panics unless `replies` hold exactly one answer (a stream's head counts), and an error
/// answered as JSON is `{"status":"error","message":...}`.
pub fn assert_one_answer(route: &str, method: &Method, replies: &[AppReply]) {
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
        if head.status.0 >= 400 && json && *method != Method::Head {
            let v: serde_json::Value = serde_json::from_slice(body).expect("an error body is JSON");
            assert_eq!(v["status"], "error", "{route}: {v}");
            assert!(v["message"].is_string(), "{route}: {v}");
        }
        assert!(head.status.0 >= 200, "{route}: a final status");
    }
}

/// The `Set-Cookie` pair (`name=value`) of a sign-in answer.
pub fn session_cookie(reply: Option<&AppReply>) -> String {
    let Some(AppReply::Respond { head, .. }) = reply else {
        panic!("a sign-in answer: {reply:?}");
    };
    let set = head
        .headers
        .get_str("set-cookie")
        .expect("a session cookie");
    set.split(';').next().unwrap_or("").to_string()
}

/// A request parsed from `head` (the request line and fields, no final blank line) with `body`.
pub fn parsed(head: &str, body: &[u8]) -> AppRequest {
    let raw = format!("{head}\r\n\r\n");
    let (events, _) = crate::http::split_check::events(Kind::Request, &[raw.as_bytes()], false);
    let Some(Event::Request(head)) = events.into_iter().next() else {
        panic!("{raw:?} parses");
    };
    AppRequest {
        head,
        peer: "192.0.2.9:4000".parse().expect("an address"),
        body: body.to_vec(),
    }
}
