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
    s.send_page(NOW, Status(405), "t", &[("Allow", "GET, HEAD")], false);
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
    s.send_page(NOW, Status(405), "t", &[], false);
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
    assert!(String::from_utf8_lossy(s.transmit()).contains("\r\n\r\n400 Bad Request\n"));
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
    s.send_page(NOW, Status(405), "t", &[], false);
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
    s.send_page(NOW, Status(405), "t", &[], false);
    assert!(matches!(events(&mut s).as_slice(), [ServerEvent::Body(_)]));
    assert_eq!(
        s.closing(),
        weaprous_core::http::server::Closing::AfterFlush
    );

    // A kept-alive connection still reads the body to its end, then the next request.
    let mut s = requested(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
    s.send_page(NOW, Status(405), "t", &[], false);
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
    s.send_page(NOW, Status(405), "t", &[], false);
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(out.contains("Connection: close\r\n"), "{out}");

    let mut s = requested(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab");
    s.send_page(NOW, Status(405), "t", &[], false);
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(!out.contains("Connection: close"), "{out}");

    // Read whole first: kept alive.
    let mut s = requested(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    while s.poll_event(NOW).is_some() {}
    s.send_page(NOW, Status(405), "t", &[], false);
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(!out.contains("Connection: close"), "{out}");
}

fn at(secs: u64) -> Now {
    Now {
        mono: Instant::ZERO + weaprous_core::time::Duration::from_secs(secs),
        wall: UnixTime(1_700_000_000 + secs),
    }
}

fn secs(s: u64) -> Option<Instant> {
    Some(Instant::ZERO + weaprous_core::time::Duration::from_secs(s))
}

fn fresh() -> ServerConn {
    ServerConn::new(NOW, Limits::default(), Timeouts::default())
}

use weaprous_core::http::server::Closing;

#[test]
fn the_header_deadline_runs_from_a_heads_first_byte_and_the_body_one_from_the_last() {
    let mut s = fresh();
    assert_eq!(s.deadline(), secs(60), "idle");
    s.feed(at(1), b"");
    assert_eq!(s.deadline(), secs(60), "no byte: still idle");
    s.feed(at(5), b"POST / HTTP/1.1\r\n");
    assert_eq!(s.deadline(), secs(15), "header: 10 s from the first byte");
    s.feed(at(8), b"Host: a\r\n");
    assert_eq!(s.deadline(), secs(15), "later bytes do not extend it");
    s.feed(at(9), b"Content-Length: 4\r\n\r\n");
    assert!(matches!(s.poll_event(at(9)), Some(ServerEvent::Request(_))));
    assert_eq!(s.deadline(), secs(39), "body: 30 s without a byte");
    s.feed(at(20), b"ab");
    assert!(matches!(s.poll_event(at(20)), Some(ServerEvent::Body(_))));
    assert_eq!(s.deadline(), secs(50), "each body byte restarts it");
}

#[test]
fn an_idle_connection_waits_its_whole_idle_time() {
    let mut s = fresh();
    assert_eq!(s.on_timeout(at(30)), None);
    assert_eq!(
        s.closing(),
        Closing::Open,
        "30 s is the body's limit, not the idle one"
    );
    s.on_timeout(at(60));
    assert_eq!(s.closing(), Closing::AfterFlush);
    assert!(s.transmit().is_empty(), "an idle close says nothing");
}

#[test]
fn a_body_stalled_while_its_answer_streams_gets_no_408() {
    // The application answers (a stream) before the body is in; the client then stalls. The
    // answer under way is the one response: the send deadline governs, not a 408.
    let mut s = requested(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab");
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Chunked);
    s.send_data(NOW, b"part");
    let before = s.transmit().to_vec();
    assert_eq!(s.on_timeout(at(31)), None);
    assert_eq!(s.transmit(), &before[..], "nothing written into the stream");
    assert_eq!(s.closing(), Closing::Open);
}

#[test]
fn a_pipelined_request_waits_for_the_answer_in_progress() {
    let mut s = requested(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    assert_eq!(s.poll_event(NOW), None, "the first is not answered yet");
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(2));
    s.send_data(NOW, b"ok");
    assert_eq!(s.poll_event(NOW), None, "nor ended");
    s.end_response(NOW);
    match s.poll_event(NOW) {
        Some(ServerEvent::Request(h)) => assert_eq!(h.target.as_str(), "/2"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn bytes_behind_an_answer_make_the_next_wait_a_header_wait() {
    let mut s = requested(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTT");
    assert!(matches!(s.poll_event(at(1)), Some(ServerEvent::BodyEnd)));
    s.send_page(at(2), Status::OK, "t", &[], false);
    assert_eq!(
        s.deadline(),
        secs(12),
        "part of a head waits: the header deadline"
    );
    let mut s = requested(KEEP_ALIVE);
    assert!(matches!(s.poll_event(at(1)), Some(ServerEvent::BodyEnd)));
    s.send_page(at(2), Status::OK, "t", &[], false);
    assert_eq!(s.deadline(), secs(62), "nothing waits: idle");
}

#[test]
fn a_client_that_half_closes_is_answered_then_closed() {
    // EOF with its request: the answer is the last, known as soon as it ends.
    let mut s = requested(KEEP_ALIVE);
    s.feed_eof();
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    s.send_page(NOW, Status::OK, "t", &[], false);
    assert_eq!(s.closing(), Closing::AfterFlush, "closes behind the answer");
    // EOF after the answer, between requests.
    let mut s = requested(KEEP_ALIVE);
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    s.send_page(NOW, Status::OK, "t", &[], false);
    assert_eq!(s.closing(), Closing::Open);
    s.feed_eof();
    assert_eq!(s.poll_event(NOW), None);
    assert_eq!(s.closing(), Closing::AfterFlush);
}

#[test]
fn draining_finishes_the_exchange_in_progress_then_closes() {
    // Between requests: at once.
    let mut s = fresh();
    s.drain();
    assert_eq!(s.closing(), Closing::AfterFlush);
    // Part of a head in: that request is still read and answered.
    let mut s = fresh();
    s.feed(NOW, b"GET / HTTP/1.1\r\n");
    s.drain();
    assert_eq!(s.closing(), Closing::Open);
    s.feed(NOW, b"Host: a\r\n\r\n");
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::Request(_))));
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    s.send_page(NOW, Status::OK, "t", &[], false);
    let out = String::from_utf8_lossy(s.transmit()).into_owned();
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert_eq!(s.closing(), Closing::AfterFlush);
    // A request read, its answer not begun: answered, then closed.
    let mut s = requested(KEEP_ALIVE);
    s.drain();
    assert_eq!(s.closing(), Closing::Open);
    // An answer under way: it finishes.
    let mut s = requested(KEEP_ALIVE);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(2));
    s.drain();
    assert_eq!(s.closing(), Closing::Open);
    s.send_data(NOW, b"ok");
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    s.end_response(NOW);
    assert_eq!(s.closing(), Closing::AfterFlush);
    // A closing connection stays closing.
    let mut s = fresh();
    s.feed(NOW, b"GARBAGE\r\n\r\n");
    while s.poll_event(NOW).is_some() {}
    s.drain();
    assert_eq!(s.closing(), Closing::AfterFlush);
}

#[test]
fn the_send_deadline_moves_with_each_write_that_takes_bytes() {
    let mut s = requested(KEEP_ALIVE);
    s.send_head(
        at(0),
        ResponseHead::new(Status::OK),
        BodyFraming::Length(10),
    );
    s.send_data(at(0), b"0123456789");
    assert_eq!(s.deadline(), secs(60), "send: 60 s");
    s.flushed(at(20), 5);
    assert_eq!(s.deadline(), secs(80), "progress restarts it");
    s.flushed(at(30), 0);
    assert_eq!(
        s.deadline(),
        secs(80),
        "a write that took nothing is no progress"
    );
}

#[test]
fn a_hundred_continue_goes_out_only_when_the_body_is_wanted() {
    let req = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let mut s = requested(req);
    assert!(s.transmit().is_empty(), "not before the application asks");
    s.accept_body();
    assert_eq!(s.transmit(), b"HTTP/1.1 100 Continue\r\n\r\n");
    s.accept_body();
    assert_eq!(s.transmit().len(), 25, "once");
    // Not once an answer began, and never to a client that did not ask.
    let mut s = requested(req);
    s.send_page(NOW, Status(413), "t", &[], false);
    let n = s.transmit().len();
    s.accept_body();
    assert_eq!(s.transmit().len(), n);
    let mut s = requested(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n");
    s.accept_body();
    assert!(s.transmit().is_empty());
}

#[test]
fn a_file_segment_counts_toward_the_body_sent() {
    let mut s = requested(KEEP_ALIVE);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(100));
    s.send_data(NOW, b"0123456789");
    let seg = weaprous_core::node::FileSegment {
        handle: 1,
        offset: 10,
        len: 90,
    };
    assert!(s.send_file(NOW, seg));
    assert_eq!(s.body_sent(), 100);
    assert_eq!(s.pending_len(), s.transmit().len() as u64 + 90);
}

fn out(s: &ServerConn) -> String {
    String::from_utf8_lossy(s.transmit()).into_owned()
}

#[test]
fn a_head_answer_and_bodiless_statuses_carry_no_body() {
    let mut s = requested(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(5));
    s.send_data(NOW, b"hello");
    s.end_response(NOW);
    let o = out(&s);
    assert!(
        o.contains("Content-Length: 5\r\n"),
        "announced as GET would: {o}"
    );
    assert!(o.ends_with("\r\n\r\n"), "but not sent: {o}");
    assert_eq!(s.closing(), Closing::Open, "and not short: no abort");
    for status in [204, 304] {
        let mut s = requested(KEEP_ALIVE);
        s.send_head(
            NOW,
            ResponseHead::new(Status(status)),
            BodyFraming::Length(5),
        );
        s.end_response(NOW);
        let o = out(&s);
        assert!(!o.contains("Content-Length") && !o.contains("hello"), "{o}");
        assert_eq!(s.body_sent(), 0);
    }
}

#[test]
fn framing_and_connection_fields_follow_the_clients_version() {
    // 1.1: chunked; kept alive with no Connection field.
    let mut s = requested(KEEP_ALIVE);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Chunked);
    s.send_data(NOW, b"abc");
    s.end_response(NOW);
    let o = out(&s);
    assert!(o.contains("Transfer-Encoding: chunked\r\n"), "{o}");
    assert!(!o.contains("Connection:"), "{o}");
    assert!(o.ends_with("3\r\nabc\r\n0\r\n\r\n"), "{o}");
    assert_eq!(s.closing(), Closing::Open);
    // 1.0 with keep-alive: chunked is not theirs, so the body is close-delimited.
    let mut s = requested(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Chunked);
    s.send_data(NOW, b"abc");
    s.end_response(NOW);
    let o = out(&s);
    assert!(!o.contains("Transfer-Encoding"), "{o}");
    assert!(
        o.contains("Connection: close\r\n") && o.ends_with("\r\n\r\nabc"),
        "{o}"
    );
    assert_eq!(s.closing(), Closing::AfterFlush, "the close ends the body");
    // 1.0 with keep-alive and a length: kept alive, and told so.
    let mut s = requested(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(3));
    s.send_data(NOW, b"abc");
    s.end_response(NOW);
    assert!(out(&s).contains("Connection: keep-alive\r\n"));
    assert_eq!(s.closing(), Closing::Open);
    // The application closing: it says so, and the connection ends behind the answer.
    let mut s = requested(KEEP_ALIVE);
    let mut head = ResponseHead::new(Status::OK);
    head.headers.append("Connection", "close");
    s.send_head(NOW, head, BodyFraming::Length(0));
    s.end_response(NOW);
    assert_eq!(out(&s).matches("Connection: close\r\n").count(), 1);
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    assert_eq!(s.closing(), Closing::AfterFlush);
}

#[test]
fn the_date_field_follows_the_wall_clock() {
    let date = |s: &ServerConn| {
        let o = out(s);
        let d = o
            .split("Date: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap()
            .to_string();
        d
    };
    let mut s = requested(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(matches!(s.poll_event(at(0)), Some(ServerEvent::BodyEnd)));
    s.send_page(at(0), Status::OK, "t", &[], false);
    let first = date(&s);
    let n = s.transmit().len();
    s.flushed(at(0), n);
    assert!(matches!(s.poll_event(at(1)), Some(ServerEvent::Request(_))));
    s.send_page(at(1), Status::OK, "t", &[], false);
    assert_ne!(date(&s), first, "a second later, another Date");
}

#[test]
fn the_send_deadline_starts_when_bytes_begin_to_wait() {
    // Idle for 30 s, then an answer: 60 s from the answer, not from the connection's start.
    let mut s = fresh();
    s.feed(at(30), KEEP_ALIVE);
    assert!(matches!(
        s.poll_event(at(30)),
        Some(ServerEvent::Request(_))
    ));
    assert!(matches!(s.poll_event(at(30)), Some(ServerEvent::BodyEnd)));
    s.send_head(
        at(30),
        ResponseHead::new(Status::OK),
        BodyFraming::Length(4),
    );
    assert_eq!(s.deadline(), secs(90));
    // More bytes behind bytes that wait do not restart it.
    s.send_data(at(40), b"ab");
    assert_eq!(s.deadline(), secs(90));
    let n = s.transmit().len();
    s.flushed(at(45), n);
    s.send_data(at(50), b"cd");
    assert_eq!(
        s.deadline(),
        secs(110),
        "a new wait begins with the next bytes"
    );
    s.end_response(at(50));
    let n = s.transmit().len();
    s.flushed(at(51), n);
    assert_eq!(
        s.deadline(),
        secs(110),
        "nothing waits: idle since the answer ended"
    );
}

#[test]
fn a_file_segment_fits_in_the_body_and_comes_alone() {
    let seg = |offset, len| weaprous_core::node::FileSegment {
        handle: 1,
        offset,
        len,
    };
    let mut s = requested(KEEP_ALIVE);
    s.send_head(
        at(2),
        ResponseHead::new(Status::OK),
        BodyFraming::Length(10),
    );
    assert!(!s.send_file(at(2), seg(0, 11)), "longer than the body");
    assert!(!s.send_file(at(2), seg(0, 0)), "empty");
    assert_eq!(s.transmit_file(), None, "nothing while the head waits");
    assert!(s.send_file(at(2), seg(0, 6)));
    assert!(!s.send_file(at(2), seg(6, 4)), "one segment at a time");
    assert_eq!(s.transmit_file(), None, "the head goes first");
    let n = s.transmit().len();
    s.flushed(at(3), n);
    assert_eq!(s.transmit_file(), Some(seg(0, 6)));
    s.flushed(at(4), 4);
    assert_eq!(s.transmit_file(), Some(seg(4, 2)), "what is left of it");
    assert_eq!(s.transmit_len(), 0);
    s.abort();
    assert_eq!(s.transmit_file(), None, "never after an abort");
    // A chunked body takes no segment (its bytes must be framed).
    let mut s = requested(KEEP_ALIVE);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Chunked);
    assert!(!s.send_file(NOW, seg(0, 4)));
    // A segment is a wait of its own: the send deadline starts with it when nothing else waits.
    let mut s = requested(KEEP_ALIVE);
    s.send_head(at(0), ResponseHead::new(Status::OK), BodyFraming::Length(4));
    let n = s.transmit().len();
    s.flushed(at(0), n);
    assert!(s.send_file(at(10), seg(0, 4)));
    assert_eq!(s.deadline(), secs(70));
}

#[test]
fn a_body_ended_short_aborts_and_a_whole_one_does_not() {
    let mut s = requested(KEEP_ALIVE);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(10));
    s.send_data(NOW, b"short");
    s.end_response(NOW);
    assert_eq!(s.closing(), Closing::Abort, "never presented as whole");
    let mut s = requested(KEEP_ALIVE);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(5));
    s.send_data(NOW, b"whole");
    assert_eq!(s.body_sent(), 5);
    s.end_response(NOW);
    assert_eq!(s.closing(), Closing::Open);
}

#[test]
fn a_switch_of_protocols_carries_raw_bytes_only_after_the_101() {
    let mut s = requested(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nearly",
    );
    s.send_raw(NOW, b"too soon");
    assert!(s.transmit().is_empty(), "no raw bytes before the switch");
    assert!(!s.is_tunnel());
    let mut head = ResponseHead::new(Status::SWITCHING_PROTOCOLS);
    head.headers.append("Upgrade", "websocket");
    let rest = s.switch_protocols(at(5), head);
    assert_eq!(rest, b"early");
    assert!(s.is_tunnel());
    assert!(!s.wants_read(), "the owner moves the bytes now");
    assert_eq!(
        s.deadline(),
        secs(65),
        "only the send deadline: the 101 waits"
    );
    let n = s.transmit().len();
    s.flushed(at(6), n);
    assert_eq!(s.deadline(), None, "nothing waits");
    s.send_raw(at(7), b"frame");
    assert_eq!(s.transmit(), b"frame");
    assert_eq!(s.deadline(), secs(67));
    s.send_raw(at(8), b"");
    assert_eq!(s.transmit(), b"frame");
}

#[test]
fn reading_stops_when_closing_at_eof_and_when_pipelined_bytes_pile_up() {
    let limits = Timeouts {
        max_pipelined: 64,
        ..Timeouts::default()
    };
    let mut s = ServerConn::new(NOW, Limits::default(), limits);
    assert!(s.wants_read());
    s.feed(NOW, KEEP_ALIVE);
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::Request(_))));
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    assert!(
        s.wants_read(),
        "a request in progress may have pipelined ones behind it"
    );
    s.feed(NOW, &[b'x'; 63]);
    assert!(s.wants_read(), "below the limit");
    s.feed(NOW, b"x");
    assert!(!s.wants_read(), "at the limit, until the answer is done");
    let mut s = fresh();
    s.feed_eof();
    assert!(!s.wants_read(), "after EOF");
    let mut s = fresh();
    s.drain();
    assert!(!s.wants_read(), "when closing");
}

#[test]
fn when_the_request_head_completed_is_remembered() {
    let mut s = fresh();
    s.feed(at(3), b"GET / HTTP/1.1\r\n");
    s.feed(at(4), b"Host: a\r\n\r\n");
    assert!(matches!(s.poll_event(at(5)), Some(ServerEvent::Request(_))));
    assert_eq!(s.request_started_at(), at(5).mono);
}

#[test]
fn a_closed_connection_with_nothing_left_to_send_has_no_deadline() {
    let mut s = requested(CLOSE);
    assert!(matches!(s.poll_event(NOW), Some(ServerEvent::BodyEnd)));
    s.send_page(NOW, Status::OK, "t", &[], false);
    assert_eq!(s.closing(), Closing::AfterFlush);
    assert_eq!(
        s.deadline(),
        secs(60),
        "the last bytes have a send deadline"
    );
    let n = s.transmit().len();
    s.flushed(NOW, n);
    assert_eq!(s.deadline(), None);
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn what_waits_to_be_sent_is_counted_after_a_partial_write() {
    let mut s = requested(KEEP_ALIVE);
    s.send_head(NOW, ResponseHead::new(Status::OK), BodyFraming::Length(100));
    s.send_data(NOW, &[b'x'; 100]);
    let total = s.transmit().len();
    s.flushed(NOW, 30);
    assert_eq!(s.transmit_len(), total - 30);
    assert_eq!(s.transmit_len(), s.transmit().len());
}
