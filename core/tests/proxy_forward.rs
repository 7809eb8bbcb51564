//! The heads the proxy forwards (RFC 9110 §7.6: hop-by-hop fields, Via, Max-Forwards; §7.8 Upgrade).

use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Limits, RequestHead, ResponseHead, Status};
use weaprous_core::proxy::config::Config;
use weaprous_core::proxy::forward::{downstream_response, upstream_request, Forward, ForwardCtx};

const CX: ForwardCtx = ForwardCtx {
    client_ip: "192.0.2.9",
    scheme: "http",
    request_id: "r-17",
};

fn request(raw: &str) -> RequestHead {
    let mut p = Parser::request(Limits::default());
    p.feed(raw.as_bytes());
    match p.next_event().unwrap() {
        Event::Request(h) => h,
        e => panic!("{e:?}"),
    }
}

fn response(raw: &str) -> ResponseHead {
    let mut p = Parser::response(Limits::default());
    p.feed(raw.as_bytes());
    match p.next_event().unwrap() {
        Event::Response(h) => h,
        e => panic!("{e:?}"),
    }
}

fn forward(raw: &str, conf: &str) -> RequestHead {
    let c = Config::parse(&format!("host a {{ proxy_pass http://x:1; {conf} }}")).unwrap();
    let set = &c.hosts[0].locations[0].set_headers;
    match upstream_request(&request(raw), set, &CX) {
        Forward::Upstream(h) => h,
        other => panic!("{other:?}"),
    }
}

fn names(h: &RequestHead) -> Vec<String> {
    h.headers
        .iter()
        .map(|(n, _)| String::from_utf8_lossy(n).to_ascii_lowercase())
        .collect()
}

#[test]
fn hop_by_hop_fields_and_those_named_in_connection_go() {
    let h = forward(
        "GET /p?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: 5\r\n\
         Proxy-Connection: x\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Keep: 2\r\n\r\n",
        "",
    );
    let n = names(&h);
    for gone in [
        "connection",
        "x-foo",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
    ] {
        assert!(!n.contains(&gone.to_string()), "{gone} in {n:?}");
    }
    assert_eq!(h.headers.get_str("x-keep"), Some("2"));
    assert_eq!(h.headers.get_str("host"), Some("a"), "Host is the client's");
    assert_eq!(
        h.target.as_str(),
        "/p?q=1",
        "the target goes on byte for byte"
    );
}

#[test]
fn the_proxy_adds_its_fields_after_stripping() {
    let h = forward(
        "GET / HTTP/1.1\r\nHost: a:8080\r\nConnection: X-Forwarded-For, Via, Host, Content-Length\r\n\
         X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nVia: 1.0 other\r\n\r\n",
        "",
    );
    assert_eq!(
        h.headers.get_str("x-forwarded-for"),
        Some("192.0.2.9"),
        "named in Connection: gone, then ours"
    );
    assert_eq!(h.headers.get_str("x-forwarded-proto"), Some("http"));
    assert_eq!(h.headers.get_str("x-forwarded-host"), Some("a:8080"));
    assert_eq!(h.headers.get_str("via"), Some("1.1 weaprous"));
    assert_eq!(
        h.headers.get_str("host"),
        Some("a:8080"),
        "Connection may not remove Host"
    );

    let h = forward(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nVia: 1.0 other\r\n\r\n",
        "",
    );
    assert_eq!(
        h.headers.get_str("x-forwarded-for"),
        Some("1.2.3.4, 192.0.2.9"),
        "appended"
    );
    assert_eq!(h.headers.get_str("via"), Some("1.0 other, 1.1 weaprous"));
}

#[test]
fn proxy_set_header_replaces_removes_and_fills_variables() {
    let h = forward(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\nX-Real-IP: spoofed\r\n\r\n",
        "proxy_set_header Host backend.internal; proxy_set_header X-Drop \"\";\
         proxy_set_header X-Real-IP $remote_addr; proxy_set_header X-Req \"$request_id/$scheme/$host\";",
    );
    assert_eq!(h.headers.get_str("host"), Some("backend.internal"));
    assert!(!h.headers.contains("x-drop"));
    assert_eq!(h.headers.get_str("x-real-ip"), Some("192.0.2.9"));
    assert_eq!(h.headers.get_str("x-req"), Some("r-17/http/a"));
    assert_eq!(h.headers.count("host"), 1);
}

#[test]
fn an_upgrade_keeps_upgrade_and_connection() {
    let h = forward(
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "",
    );
    assert_eq!(h.headers.get_str("upgrade"), Some("websocket"));
    assert_eq!(h.headers.get_str("connection"), Some("upgrade"));
    assert!(h.headers.contains("sec-websocket-key"));
    let r = downstream_response(&response(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ));
    assert_eq!(r.headers.get_str("upgrade"), Some("websocket"));
    assert_eq!(r.headers.get_str("connection"), Some("upgrade"));
}

#[test]
fn responses_lose_hop_by_hop_fields_and_keep_their_status() {
    let r = downstream_response(&response(
        "HTTP/1.1 404 Not Found\r\nConnection: close, X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n\
         Transfer-Encoding: chunked\r\nUpgrade: h2c\r\nContent-Type: text/plain\r\n\r\n",
    ));
    assert_eq!(
        r.status,
        Status::NOT_FOUND,
        "a genuine 404 is relayed as a 404"
    );
    let n: Vec<String> = r
        .headers
        .iter()
        .map(|(n, _)| String::from_utf8_lossy(n).to_ascii_lowercase())
        .collect();
    assert_eq!(n, ["content-type", "via"]);
}

#[test]
fn max_forwards_is_decremented_and_zero_is_answered_here() {
    let c = Config::parse("host a { proxy_pass http://x:1; }").unwrap();
    let set = &c.hosts[0].locations[0].set_headers;
    let r = request("OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n");
    assert_eq!(
        upstream_request(&r, set, &CX),
        Forward::AnswerHere(Status::OK)
    );
    let r = request("TRACE / HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n");
    assert_eq!(
        upstream_request(&r, set, &CX),
        Forward::AnswerHere(Status::METHOD_NOT_ALLOWED)
    );
    let h = forward(
        "OPTIONS / HTTP/1.1\r\nHost: a\r\nMax-Forwards: 3\r\n\r\n",
        "",
    );
    assert_eq!(h.headers.get_str("max-forwards"), Some("2"));
    let h = forward("GET / HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n", "");
    assert_eq!(
        h.headers.get_str("max-forwards"),
        Some("0"),
        "ignored on other methods"
    );
}

#[test]
fn absolute_form_becomes_origin_form_and_the_version_is_11() {
    let h = forward("GET http://a/x/y?z=1 HTTP/1.0\r\nHost: a\r\n\r\n", "");
    assert_eq!(h.target.as_str(), "/x/y?z=1");
    assert_eq!(h.version.minor, 1);
    let h = forward("GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", "");
    assert_eq!(h.target.as_str(), "/");
}
