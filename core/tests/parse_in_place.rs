//! Reading in place (`Parser::next_borrowed`): the same messages as the owned events, borrowed
//! from the parser's buffer. That it allocates nothing is tested in
//! `net-sim/tests/allocations.rs`, because counting allocations needs a global allocator,
//! and so `unsafe`, which `core/` never contains.

use weaprous_core::http::parse::{EventRef, Parser};
use weaprous_core::http::{Limits, Method};

const KEEP_ALIVE: &[&[u8]] = &[
    b"GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n",
];

#[test]
fn borrowed_events_carry_the_message() {
    let mut p = Parser::request(Limits::default());
    p.feed(KEEP_ALIVE[0]);
    match p.next_borrowed().unwrap() {
        EventRef::Request(r) => {
            assert_eq!(r.method, Method::Get);
            assert_eq!(r.target.path(), "/a/b");
            assert_eq!(r.target.query(), Some("q=1"));
            assert_eq!(r.headers.get("HOST"), Some(&b"example.com:8080"[..]));
            assert_eq!(r.headers.len(), 3);
            assert_eq!(r.to_head().headers.get("accept"), Some(&b"*/*"[..]));
        }
        other => panic!("expected a request, got {other:?}"),
    }
    assert!(matches!(p.next_borrowed(), Ok(EventRef::End { trailers }) if trailers.is_empty()));

    p.feed(KEEP_ALIVE[1]);
    assert!(matches!(p.next_borrowed(), Ok(EventRef::Request(_))));
    assert!(matches!(p.next_borrowed(), Ok(EventRef::Data(b"abc"))));
    match p.next_borrowed().unwrap() {
        EventRef::End { trailers } => assert_eq!(trailers.get("x-sum"), Some(&b"9"[..])),
        other => panic!("expected the end with trailers, got {other:?}"),
    }

    let mut r = Parser::response(Limits::default());
    r.expect_response_to(Method::Get);
    r.feed(b"HTTP/1.1 404 Not \xffFound\r\nContent-Length: 2\r\n\r\nno");
    match r.next_borrowed().unwrap() {
        EventRef::Response(h) => {
            assert_eq!(h.status.0, 404);
            assert_eq!(h.reason, b"Not \xffFound");
            assert_eq!(h.to_head().reason, "Not \u{fffd}Found");
        }
        other => panic!("expected a response, got {other:?}"),
    }
    assert!(matches!(r.next_borrowed(), Ok(EventRef::Data(b"no"))));
}
