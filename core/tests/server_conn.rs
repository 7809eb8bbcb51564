//! The HTTP server connection driven directly: what it buffers while a client reads slowly,
//! and what it tells the driver about the end of the connection.

use weaprous_core::http::serialize::BodyFraming;
use weaprous_core::http::server::{ServerConn, ServerEvent, Timeouts};
use weaprous_core::http::{Limits, ResponseHead, Status};
use weaprous_core::node::Now;
use weaprous_core::time::{Instant, UnixTime};

const NOW: Now = Now {
    mono: Instant::ZERO,
    wall: UnixTime(1_700_000_000),
};
const KEEP_ALIVE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/// A connection that has read `request` and handed it out, its response not started.
fn requested(request: &[u8]) -> ServerConn {
    let mut s = ServerConn::new(NOW, Limits::default(), Timeouts::default());
    s.feed(NOW, request);
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::Request(_))));
    s
}

#[test]
fn a_client_that_always_takes_part_keeps_the_buffer_bounded() {
    // A proxy relays a long body to a client whose socket takes most, never all, of what waits,
    // while the upstream keeps appending: the written prefix must not pile up in front.
    let now = NOW;
    let mut s = requested(KEEP_ALIVE);
    s.send_head(now, ResponseHead::new(Status::OK), BodyFraming::Chunked);
    let chunk = vec![b'x'; 16 * 1024];
    let mut most_pending = 0;
    for _ in 0..10_000 {
        s.send_data(now, &chunk);
        let pending = s.transmit().len();
        s.flushed(now, pending - pending.min(100));
        s.check_invariants();
        most_pending = most_pending.max(s.transmit().len());
    }
    assert!(most_pending <= 200, "{most_pending}");
}

#[test]
fn closes_after_flush_only_once_the_last_response_is_all_queued() {
    let now = NOW;
    let mut s = requested(CLOSE);
    assert!(!s.closes_after_flush(), "nothing queued yet");
    // A stream: the driver must not hold its bytes back for a FIN that is not coming yet.
    s.send_head(now, ResponseHead::new(Status::OK), BodyFraming::Chunked);
    s.send_data(now, b"first");
    assert!(!s.closes_after_flush());
    while s.poll_event(now).is_some() {}
    s.end_response(now);
    assert!(s.closes_after_flush(), "the last chunk is queued");

    // A Content-Length body queued whole is complete before end_response.
    let mut s = requested(CLOSE);
    s.send_head(now, ResponseHead::new(Status::OK), BodyFraming::Length(5));
    s.send_data(now, b"hel");
    assert!(!s.closes_after_flush());
    s.send_data(now, b"lo");
    assert!(s.closes_after_flush());

    // Keep-alive: never.
    let mut s = requested(KEEP_ALIVE);
    s.send_head(now, ResponseHead::new(Status::OK), BodyFraming::Length(2));
    s.send_data(now, b"ok");
    s.end_response(now);
    assert!(!s.closes_after_flush());
}

/// A POST answered from its head (as a static backend answers 405) whose chunked body then
/// turns out malformed, with a GET pipelined behind it.
const EARLY_ANSWERED_BAD_BODY: &[u8] = b"POST /index.html HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// Pulls every event the connection has now.
fn events(s: &mut ServerConn) -> Vec<ServerEvent> {
    std::iter::from_fn(|| s.poll_event(NOW)).collect()
}

#[test]
fn an_error_in_a_body_already_answered_closes_without_a_second_response() {
    let mut s = requested(EARLY_ANSWERED_BAD_BODY);
    s.send_page(NOW, Status(405), "t", &[("Allow", "GET, HEAD")]);
    let later = events(&mut s);
    assert!(
        !later
            .iter()
            .any(|e| matches!(e, ServerEvent::Request(_) | ServerEvent::Rejected { .. })),
        "nothing after the bad body is read or answered: {later:?}"
    );
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
    assert_eq!(
        s.closing(),
        weaprous_core::http::server::Closing::AfterFlush
    );
    assert!(!s.wants_read());
}

#[test]
fn a_body_over_the_limit_after_an_early_answer_closes_without_a_second_response() {
    let limits = Limits {
        max_body: 4,
        ..Limits::default()
    };
    let mut s = ServerConn::new(NOW, limits, Timeouts::default());
    s.feed(
        NOW,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
    );
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::Request(_))));
    s.send_page(NOW, Status(405), "t", &[]);
    let later = events(&mut s);
    assert!(
        !later
            .iter()
            .any(|e| matches!(e, ServerEvent::Rejected { .. })),
        "{later:?}"
    );
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert_eq!(
        s.closing(),
        weaprous_core::http::server::Closing::AfterFlush
    );
}

#[test]
fn an_error_in_a_body_whose_answer_is_under_way_aborts() {
    let mut s = requested(EARLY_ANSWERED_BAD_BODY);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(10));
    s.send_data(NOW, b"part");
    let later = events(&mut s);
    assert!(
        !later
            .iter()
            .any(|e| matches!(e, ServerEvent::Request(_) | ServerEvent::Rejected { .. })),
        "{later:?}"
    );
    assert_eq!(s.closing(), weaprous_core::http::server::Closing::Abort);
}

#[test]
fn an_error_in_a_body_not_yet_answered_is_answered_once() {
    let mut s = requested(EARLY_ANSWERED_BAD_BODY);
    let later = events(&mut s);
    assert!(
        matches!(
            later.as_slice(),
            [ServerEvent::Rejected {
                status: Status(400),
                ..
            }]
        ),
        "{later:?}"
    );
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
}

/// The error page answering a HEAD has no body (RFC 9110 §9.3.2), whether the head itself was
/// refused or its body broke before any answer: a client reads the answer as bodiless, so
/// page bytes would be taken for the next response.
#[test]
fn an_error_answer_to_a_head_request_has_no_body() {
    for request in [
        &b"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n"[..],
        b"HEAD / HTTP/1.1\r\nHost: a\r\nX: y\r\n folded\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut s = ServerConn::new(NOW, Limits::default(), Timeouts::default());
        s.feed(NOW, request);
        let got = events(&mut s);
        assert!(
            got.iter().any(|e| matches!(
                e,
                ServerEvent::Rejected {
                    status: Status(400),
                    ..
                }
            )),
            "{got:?}"
        );
        let out = String::from_utf8_lossy(s.transmit()).into_owned();
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "no body after the head: {out:?}");
        assert!(out.contains("Content-Length: "), "{out}");
    }
    // A GET's error page keeps its body.
    let mut s = ServerConn::new(NOW, Limits::default(), Timeouts::default());
    s.feed(
        NOW,
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n",
    );
    events(&mut s);
    assert!(String::from_utf8_lossy(s.transmit()).ends_with("400 Bad Request\n"));
}

/// A final answer to an `Expect: 100-continue` request whose body was never asked for says
/// `Connection: close`; the client then never sends the body, so the server must not wait
/// for it (the body deadline would hold the connection for nothing): it closes once the
/// answer is out, lingering for any body bytes the client sent anyway.
#[test]
fn an_answer_that_closes_before_the_body_was_read_does_not_wait_for_it() {
    let mut s = requested(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    s.send_page(NOW, Status(405), "t", &[]);
    assert!(events(&mut s).is_empty());
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(!out.contains("100 Continue"), "{out}");
    assert_eq!(
        s.closing(),
        weaprous_core::http::server::Closing::AfterFlush
    );
    assert!(s.may_leave_unread(), "a lingering close");

    // The same for any last answer given before its body was read.
    let mut s = requested(
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 5\r\n\r\nab",
    );
    s.send_page(NOW, Status(405), "t", &[]);
    assert!(matches!(events(&mut s).as_slice(), [ServerEvent::Body(_)]));
    assert_eq!(
        s.closing(),
        weaprous_core::http::server::Closing::AfterFlush
    );

    // A kept-alive connection still reads the body to its end, then the next request.
    let mut s = requested(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
    s.send_page(NOW, Status(405), "t", &[]);
    events(&mut s);
    assert_eq!(s.closing(), weaprous_core::http::server::Closing::Open);
}

/// An answer that starts before a chunked body was read says `Connection: close`: the body's
/// length is unknown, reading it may yet fail (over the limit, broken framing) and end the
/// connection, and a proxy that pooled it as kept alive would then lose the next request on
/// it. A `Content-Length` body is bounded and checked against the limit up front: that
/// connection stays open.
#[test]
fn an_answer_before_a_chunked_body_was_read_closes_the_connection() {
    let mut s =
        requested(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    s.send_page(NOW, Status(405), "t", &[]);
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(out.contains("Connection: close\r\n"), "{out}");

    let mut s = requested(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab");
    s.send_page(NOW, Status(405), "t", &[]);
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(!out.contains("Connection: close"), "{out}");

    // Read whole first: kept alive.
    let mut s = requested(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    while s.poll_event(NOW).is_some() {}
    s.send_page(NOW, Status(405), "t", &[]);
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(!out.contains("Connection: close"), "{out}");
}
