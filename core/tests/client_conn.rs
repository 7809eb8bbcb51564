//! The upstream side: one exchange at a time, reuse only when both sides allow it, every
//! failure reported as the proxy needs it.

use weaprous_core::http::client::{ClientConn, ClientError, ClientEvent, ClientTimeouts};
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::serialize::BodyFraming;
use weaprous_core::http::{Limits, RequestHead, Status};
use weaprous_core::node::Now;
use weaprous_core::time::{Duration, Instant, UnixTime};

fn at(secs: u64) -> Now {
    Now {
        mono: Instant::ZERO + Duration::from_secs(secs),
        wall: UnixTime(1_700_000_000 + secs),
    }
}

fn head(raw: &str) -> RequestHead {
    let mut p = Parser::request(Limits::default());
    p.feed(raw.as_bytes());
    match p.next_event().unwrap() {
        Event::Request(h) => h,
        e => panic!("{e:?}"),
    }
}

fn conn() -> ClientConn {
    ClientConn::new(at(0), Limits::default(), ClientTimeouts::default())
}

/// Sends `req` without a body and flushes it.
fn ask(c: &mut ClientConn, req: &str) -> String {
    assert!(c.send_head(at(0), &head(req), BodyFraming::None));
    let sent = String::from_utf8_lossy(c.transmit()).into_owned();
    let n = c.transmit().len();
    c.flushed(at(0), n);
    sent
}

/// Feeds `bytes` and collects events until none is left.
fn answer(c: &mut ClientConn, bytes: &[u8]) -> Vec<ClientEvent> {
    c.feed(at(1), bytes);
    std::iter::from_fn(|| c.poll_event(at(1))).collect()
}

fn statuses(events: &[ClientEvent]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Response(h) => Some(h.status.0),
            _ => None,
        })
        .collect()
}

#[test]
fn an_exchange_then_reuse() {
    let mut c = conn();
    let sent = ask(&mut c, "GET /a HTTP/1.1\r\nHost: b\r\n\r\n");
    assert!(sent.starts_with("GET /a HTTP/1.1\r\nHost: b\r\n"), "{sent}");
    assert!(!c.is_idle());
    let ev = answer(&mut c, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(statuses(&ev), [200]);
    assert_eq!(
        ev[1..],
        [ClientEvent::Data(b"hi".to_vec()), ClientEvent::End]
    );
    assert!(c.reusable(), "keep-alive, length-framed, nothing unread");
    ask(&mut c, "GET /b HTTP/1.1\r\nHost: b\r\n\r\n");
    let ev = answer(
        &mut c,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(statuses(&ev), [404], "a genuine 404 is just a response");
    assert!(c.reusable());
}

#[test]
fn reuse_is_refused_whenever_a_side_wants_to_close() {
    let cases: &[(&str, &[u8])] = &[
        (
            "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "GET / HTTP/1.1\r\nHost: b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "GET / HTTP/1.1\r\nHost: b\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
    ];
    for (req, resp) in cases {
        let mut c = conn();
        ask(&mut c, req);
        let ev = answer(&mut c, resp);
        assert_eq!(ev.last(), Some(&ClientEvent::End), "{req:?}");
        assert!(
            !c.reusable(),
            "{req:?} / {:?}",
            String::from_utf8_lossy(resp)
        );
    }
    // Close-delimited: the body ends only with the upstream's FIN, and then it is gone.
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    let ev = answer(&mut c, b"HTTP/1.1 200 OK\r\n\r\nuntil clo");
    assert_eq!(ev[1..], [ClientEvent::Data(b"until clo".to_vec())]);
    c.feed_eof();
    let rest: Vec<_> = std::iter::from_fn(|| c.poll_event(at(2))).collect();
    assert_eq!(rest, [ClientEvent::End]);
    assert!(!c.reusable());
}

#[test]
fn request_bodies_are_framed_as_asked() {
    let mut c = conn();
    c.send_head(
        at(0),
        &head("POST /u HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\n"),
        BodyFraming::Length(5),
    );
    c.send_data(at(0), b"hel");
    c.send_data(at(0), b"lo and more");
    c.end_request(at(0));
    let wire = String::from_utf8_lossy(c.transmit()).into_owned();
    assert!(wire.ends_with("Content-Length: 5\r\n\r\nhello"), "{wire}");
    let mut c = conn();
    c.send_head(
        at(0),
        &head("POST /u HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"),
        BodyFraming::Chunked,
    );
    c.send_data(at(0), b"abc");
    c.end_request(at(0));
    let wire = String::from_utf8_lossy(c.transmit()).into_owned();
    assert!(
        wire.ends_with("Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        "{wire}"
    );
    assert_eq!(c.request_bytes_flushed(), 0);
    let n = c.transmit().len();
    c.flushed(at(0), n);
    assert_eq!(c.request_bytes_flushed(), n as u64);
}

#[test]
fn malformed_and_ambiguous_responses_fail_and_kill_the_connection() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"garbage\r\n\r\n",
    ] {
        let mut c = conn();
        ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
        let ev = answer(&mut c, bad);
        assert!(
            matches!(
                ev.last(),
                Some(ClientEvent::Failed(ClientError::Malformed(_)))
            ),
            "{:?}: {ev:?}",
            String::from_utf8_lossy(bad)
        );
        assert!(statuses(&ev).is_empty(), "nothing of it is forwarded");
        assert!(!c.reusable() && c.is_dead());
    }
}

#[test]
fn an_upstream_that_closes_early_is_a_failure_and_says_whether_it_answered() {
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    c.feed_eof();
    assert_eq!(
        c.poll_event(at(1)),
        Some(ClientEvent::Failed(ClientError::Closed))
    );
    assert!(
        !c.response_started(),
        "no response byte: safe to retry elsewhere"
    );

    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    let ev = answer(&mut c, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(statuses(&ev), [200]);
    c.feed_eof();
    assert_eq!(
        c.poll_event(at(1)),
        Some(ClientEvent::Failed(ClientError::Closed))
    );
    assert!(c.response_started());

    // A pooled connection the upstream closed while idle.
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    answer(&mut c, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert!(c.reusable());
    c.feed_eof();
    assert_eq!(c.poll_event(at(5)), Some(ClientEvent::Closed));
    assert!(!c.reusable());
}

#[test]
fn the_read_timeout_runs_while_a_response_is_awaited() {
    let mut c = conn();
    assert_eq!(c.deadline(), None, "idle: the pool's business");
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    assert_eq!(c.deadline(), Some(Instant::ZERO + Duration::from_secs(60)));
    c.feed(at(30), b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
    while c.poll_event(at(30)).is_some() {}
    assert_eq!(
        c.deadline(),
        Some(Instant::ZERO + Duration::from_secs(90)),
        "between bytes"
    );
    assert_eq!(c.on_timeout(at(89)), None);
    assert_eq!(
        c.on_timeout(at(90)),
        Some(ClientEvent::Failed(ClientError::TimedOut))
    );
    assert!(c.is_dead());
}

#[test]
fn interim_responses_come_before_the_final_one_and_head_has_no_body() {
    let mut c = conn();
    ask(&mut c, "HEAD / HTTP/1.1\r\nHost: b\r\n\r\n");
    let ev = answer(
        &mut c,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
    );
    assert_eq!(statuses(&ev), [100, 103, 200]);
    assert_eq!(
        ev.last(),
        Some(&ClientEvent::End),
        "HEAD: no body despite the length"
    );
    assert!(c.reusable());
}

#[test]
fn a_101_turns_the_connection_into_a_tunnel() {
    let mut c = conn();
    ask(
        &mut c,
        "GET /ws HTTP/1.1\r\nHost: b\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    let ev = answer(&mut c, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x02hi");
    assert_eq!(statuses(&ev), [101]);
    assert_eq!(
        ev.last(),
        Some(&ClientEvent::Upgrade(b"\x81\x02hi".to_vec()))
    );
    assert!(!c.reusable());
    assert_eq!(
        ev.iter()
            .filter(
                |e| matches!(e, ClientEvent::Response(h) if h.status == Status::SWITCHING_PROTOCOLS)
            )
            .count(),
        1
    );
}

#[test]
fn an_early_answer_ends_the_exchange_but_not_the_reuse_question() {
    // The upstream refuses a large upload before reading it: the response is forwarded, and
    // the connection cannot be reused (the rest of the body would be read as a request).
    let mut c = conn();
    c.send_head(
        at(0),
        &head("POST /u HTTP/1.1\r\nHost: b\r\nContent-Length: 1000\r\n\r\n"),
        BodyFraming::Length(1000),
    );
    let ev = answer(
        &mut c,
        b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(statuses(&ev), [413]);
    assert_eq!(ev.last(), Some(&ClientEvent::End));
    assert!(!c.reusable());
}

/// A request none of which was written moves to another connection whole, body bytes
/// included, and the exchange goes on there as if it had started there; once a byte went out
/// it stays where it is.
#[test]
fn an_unsent_request_moves_to_another_connection() {
    let post = head("POST /m HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\n");
    let mut stale = conn();
    assert!(stale.send_head(at(0), &post, BodyFraming::Length(5)));
    stale.send_data(at(0), b"hel");
    let queued = stale.transmit().to_vec();
    stale.feed_eof();
    let events: Vec<_> = std::iter::from_fn(|| stale.poll_event(at(0))).collect();
    assert_eq!(events, [ClientEvent::Failed(ClientError::Closed)]);
    let unsent = stale.take_unsent().expect("nothing of it was written");
    assert!(stale.take_unsent().is_none(), "taken once");

    let mut fresh = conn();
    assert!(fresh.resume(at(1), unsent));
    assert_eq!(fresh.transmit(), &queued[..], "the same bytes, in order");
    fresh.send_data(at(1), b"lo");
    fresh.end_request(at(1));
    let n = fresh.transmit().len();
    fresh.flushed(at(1), n);
    let events = answer(
        &mut fresh,
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(statuses(&events), [201]);
    assert!(fresh.reusable(), "the body went out whole");

    // One byte written: the peer may have acted on it.
    let mut c = conn();
    c.send_head(at(0), &post, BodyFraming::Length(5));
    c.flushed(at(0), 1);
    assert!(c.take_unsent().is_none());
    // An answer begun: not either.
    let mut c = conn();
    c.send_head(at(0), &post, BodyFraming::Length(5));
    c.feed(at(0), b"HTTP/1.1 4");
    assert!(c.take_unsent().is_none());
}

/// A `Content-Length: 0` request is whole once its head is queued: its answer leaves the
/// connection reusable without an `end_request`.
#[test]
fn a_zero_length_body_is_complete_with_its_head() {
    let mut c = conn();
    let post = head("POST /m HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n");
    assert!(c.send_head(at(0), &post, BodyFraming::Length(0)));
    let n = c.transmit().len();
    c.flushed(at(0), n);
    let events = answer(&mut c, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(statuses(&events), [204]);
    assert!(c.reusable());
}

#[test]
fn the_read_timeout_starts_once_the_request_has_been_sent() {
    // As nginx arms proxy_read_timeout: a slow upload that keeps moving is not a 504 (the
    // simulator's proxy world found a 70 KB body over a slow network answered 504 forever).
    let timeouts = ClientTimeouts {
        read: Duration::from_secs(10),
        send: Duration::from_secs(100),
    };
    let mut c = ClientConn::new(at(0), Limits::default(), timeouts);
    let post = head("POST /up HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send_head(at(0), &post, BodyFraming::Chunked);
    for t in 0..30 {
        c.send_data(at(t), b"x");
        let n = c.transmit().len();
        c.flushed(at(t), n);
    }
    assert_eq!(
        c.on_timeout(at(30)),
        None,
        "still sending: nothing is awaited yet"
    );
    c.end_request(at(40));
    assert_eq!(
        c.deadline(),
        Some(at(140).mono),
        "the last chunk waits to be sent"
    );
    let n = c.transmit().len();
    c.flushed(at(41), n);
    assert_eq!(
        c.deadline(),
        Some(at(51).mono),
        "the wait for the answer starts when the request has left"
    );
    assert_eq!(
        c.on_timeout(at(51)),
        Some(ClientEvent::Failed(ClientError::TimedOut))
    );
}

#[test]
fn an_early_answer_is_read_with_its_timeout_while_the_body_still_goes() {
    let timeouts = ClientTimeouts {
        read: Duration::from_secs(10),
        send: Duration::from_secs(100),
    };
    let mut c = ClientConn::new(at(0), Limits::default(), timeouts);
    let post = head("POST /up HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\n\r\n");
    c.send_head(at(0), &post, BodyFraming::Length(10));
    let n = c.transmit().len();
    c.flushed(at(0), n);
    c.feed(
        at(5),
        b"HTTP/1.1 413 Too Large\r\nContent-Length: 4\r\n\r\nab",
    );
    while c.poll_event(at(5)).is_some() {}
    assert_eq!(c.deadline(), Some(at(15).mono), "between response bytes");
}

#[test]
fn the_send_deadline_moves_only_with_bytes_written() {
    let timeouts = ClientTimeouts {
        read: Duration::from_secs(100),
        send: Duration::from_secs(10),
    };
    let mut c = ClientConn::new(at(0), Limits::default(), timeouts);
    let post = head("POST /m HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\n\r\n");
    c.send_head(at(0), &post, BodyFraming::Length(4));
    c.send_data(at(0), b"abcd");
    assert_eq!(c.deadline(), Some(at(10).mono));
    c.flushed(at(5), 3);
    assert_eq!(c.deadline(), Some(at(15).mono), "progress");
    c.flushed(at(8), 0);
    assert_eq!(c.deadline(), Some(at(15).mono), "no progress");
}

#[test]
fn a_dead_connection_is_not_read_and_unread_bytes_are_counted() {
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    assert!(c.wants_read());
    c.feed(at(1), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe");
    assert_eq!(c.buffered_input(), 40, "nothing taken out yet");
    assert!(matches!(
        c.poll_event(at(1)),
        Some(ClientEvent::Response(_))
    ));
    assert_eq!(c.buffered_input(), 2, "the head was");
    // A malformed answer kills the connection: nothing more is read from it.
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    let events = answer(&mut c, b"HTTP/1.1 2000 OK\r\n\r\n");
    assert!(matches!(
        events.last(),
        Some(ClientEvent::Failed(ClientError::Malformed(_)))
    ));
    assert!(!c.wants_read());
}

#[test]
fn an_idle_live_connection_is_still_read_to_hear_its_close() {
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    answer(&mut c, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(
        c.is_idle() && c.wants_read(),
        "idle: what comes is the upstream's close"
    );
    c.feed_eof();
    assert_eq!(c.poll_event(at(2)), Some(ClientEvent::Closed));
    assert!(!c.wants_read());
}

#[test]
fn a_reset_fails_a_close_delimited_answer_and_a_close_ends_it() {
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    c.feed(at(1), b"HTTP/1.1 200 OK\r\n\r\nhalf");
    c.feed_reset();
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event(at(1))).collect();
    assert!(
        matches!(
            events.last(),
            Some(ClientEvent::Failed(ClientError::Closed))
        ),
        "{events:?}"
    );
    assert!(!events.contains(&ClientEvent::End));
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    c.feed(at(1), b"HTTP/1.1 200 OK\r\n\r\nall");
    c.feed_eof();
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event(at(1))).collect();
    assert_eq!(events.last(), Some(&ClientEvent::End));
    // Bytes that arrived before a reset still count: a whole answer stays whole.
    let mut c = conn();
    ask(&mut c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    c.feed(at(1), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    c.feed_reset();
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event(at(1))).collect();
    assert!(events.contains(&ClientEvent::End), "{events:?}");
}
