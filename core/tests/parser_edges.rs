//! The parser at its edges: every limit at its value and one past it, multi-digit chunk sizes,
//! the chunk-extension grammar, error offsets (after the buffer was compacted too), and the
//! small public queries. Written where mutation testing found the tests silent.

mod common;

use common::run;
use weaprous_core::http::parse::{ErrorKind, Event, Kind, ParseError, Parser};
use weaprous_core::http::Limits;

const CHUNKED: &str = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

/// The body of one chunked request whose body part is `rest`, or the error.
fn chunked_body(limits: &Limits, rest: &str) -> Result<Vec<u8>, ParseError> {
    let mut p = Parser::request(limits.clone());
    p.feed(CHUNKED.as_bytes());
    p.feed(rest.as_bytes());
    let mut body = Vec::new();
    loop {
        match p.next_event()? {
            Event::Request(_) => {}
            Event::Data(d) => body.extend_from_slice(&d),
            Event::End { .. } => return Ok(body),
            e => panic!("unexpected {e:?} for {rest:?}"),
        }
    }
}

fn kind(r: Result<Vec<u8>, ParseError>) -> Result<Vec<u8>, ErrorKind> {
    r.map_err(|e| e.kind)
}

#[test]
fn chunk_sizes_of_several_hex_digits() {
    let l = Limits::default();
    let data = "x".repeat(0x1f);
    assert_eq!(
        kind(chunked_body(&l, &format!("1f\r\n{data}\r\n0\r\n\r\n"))),
        Ok(data.clone().into_bytes())
    );
    assert_eq!(
        kind(chunked_body(
            &l,
            &format!("10\r\n{}\r\n0\r\n\r\n", &data[..16])
        )),
        Ok(data.as_bytes()[..16].to_vec())
    );
    assert_eq!(
        kind(chunked_body(
            &l,
            "0000000000000000005\r\nhello\r\n0\r\n\r\n"
        )),
        Ok(b"hello".to_vec()),
        "leading zeros do not count toward the size's length"
    );
    // Fifteen significant digits are a size (too large for the body limit); sixteen are not.
    assert_eq!(
        kind(chunked_body(&l, "fffffffffffffff\r\n")),
        Err(ErrorKind::BodyTooLarge)
    );
    assert_eq!(
        kind(chunked_body(&l, "1000000000000000\r\n")),
        Err(ErrorKind::BadChunkSize)
    );
}

#[test]
fn chunk_extensions_follow_their_grammar() {
    let l = Limits::default();
    // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val a token or a
    // quoted-string.
    for ext in [
        ";a",
        " ;a",
        "; a",
        ";a=b",
        ";a = b",
        ";a\t=\tb",
        ";a=\"\"",
        ";a=\"x y\"",
        ";a=\"x\\\"y\"",
        ";a=\"x\\\\\"",
        ";a;b;c=d",
        ";a=\"q;r\";s",
    ] {
        assert_eq!(
            kind(chunked_body(&l, &format!("5{ext}\r\nhello\r\n0\r\n\r\n"))),
            Ok(b"hello".to_vec()),
            "{ext:?}"
        );
    }
    for ext in [
        ";",
        "; ",
        ";=b",
        ";a=",
        ";a=\"x",
        ";a=\"x\\",
        ";a=\"x\u{1}\"",
        ";a=\"x\\\u{1}\"",
        ";a=b c",
        ";a b",
        ";a=\"x\"y",
        "x",
        " ",
        "\t",
    ] {
        assert!(
            chunked_body(&l, &format!("5{ext}\r\nhello\r\n0\r\n\r\n")).is_err(),
            "{ext:?}"
        );
    }
}

#[test]
fn chunk_size_lines_are_limited_to_their_length() {
    let l = Limits {
        max_chunk_line: 16,
        ..Limits::default()
    };
    let line = |len: usize| format!("5;{}", "a".repeat(len - 2));
    assert_eq!(
        kind(chunked_body(
            &l,
            &format!("{}\r\nhello\r\n0\r\n\r\n", line(16))
        )),
        Ok(b"hello".to_vec()),
        "exactly the limit"
    );
    let e = chunked_body(&l, &format!("{}\r\nhello\r\n0\r\n\r\n", line(17))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ChunkLineTooLong);
    assert_eq!(
        e.offset,
        (CHUNKED.len() + 17) as u64,
        "the byte past the limit"
    );
    // Without its LF yet: the limit and its CR wait for more; one byte past it is refused.
    let mut p = Parser::request(l.clone());
    p.feed(CHUNKED.as_bytes());
    p.feed(format!("{}\r", line(16)).as_bytes());
    assert!(matches!(p.next_event(), Ok(Event::Request(_))));
    assert!(matches!(p.next_event(), Ok(Event::NeedData)));
    p.feed(b"x");
    let e = p.next_event().unwrap_err();
    assert_eq!(e.kind, ErrorKind::ChunkLineTooLong);
    assert_eq!(e.offset, (CHUNKED.len() + 17) as u64);
}

#[test]
fn body_limits_hold_at_their_value_and_refuse_one_byte_more() {
    let l = Limits {
        max_body: 10,
        ..Limits::default()
    };
    assert_eq!(
        kind(chunked_body(&l, "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")).map(|b| b.len()),
        Ok(10)
    );
    assert_eq!(
        kind(chunked_body(&l, "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n")),
        Err(ErrorKind::BodyTooLarge)
    );
    let cl = |n: u64| {
        let mut p = Parser::request(l.clone());
        p.feed(format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n").as_bytes());
        p.next_event().map(|_| ()).map_err(|e| e.kind)
    };
    assert_eq!(cl(10), Ok(()));
    assert_eq!(cl(11), Err(ErrorKind::BodyTooLarge));
    // Responses are streamed: the limit is the request's.
    let mut p = Parser::response(l.clone());
    p.expect_response_to(weaprous_core::http::Method::Get);
    p.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r\nhello world!\r\n0\r\n\r\n");
    let mut n = 0;
    loop {
        match p.next_event().expect("a response body has no limit") {
            Event::Data(d) => n += d.len(),
            Event::End { .. } => break,
            _ => {}
        }
    }
    assert_eq!(n, 12);
}

#[test]
fn content_length_takes_up_to_eighteen_digits() {
    let l = Limits {
        max_body: u64::MAX,
        ..Limits::default()
    };
    let cl = |v: &str| {
        let mut p = Parser::request(l.clone());
        p.feed(format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n").as_bytes());
        p.next_event().map(|_| ()).map_err(|e| e.kind)
    };
    assert_eq!(cl("999999999999999999"), Ok(()));
    assert_eq!(cl("1000000000000000000"), Err(ErrorKind::BadContentLength));
}

#[test]
fn leading_empty_lines_before_a_request_only_and_only_so_many() {
    let l = Limits::default();
    let n = l.max_leading_empty_lines;
    let req = |k: usize| format!("{}GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n".repeat(k));
    let (ev, err) = run(Kind::Request, &[req(n).as_bytes()], false);
    assert!(
        err.is_none() && matches!(ev[0], Event::Request(_)),
        "{n} are skipped"
    );
    let (_, err) = run(Kind::Request, &[req(n + 1).as_bytes()], false);
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::TooManyEmptyLines));
    // A response has no such tolerance.
    let (_, err) = run(
        Kind::Response,
        &[b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
        false,
    );
    assert!(err.is_some());
}

#[test]
fn only_connection_upgrade_with_an_upgrade_field_pauses_a_request() {
    let events = |head: &str| {
        let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{head}\r\n");
        run(Kind::Request, &[req.as_bytes()], false).0
    };
    let paused = |head: &str| events(head).iter().any(|e| matches!(e, Event::Paused));
    assert!(paused("Connection: upgrade\r\nUpgrade: websocket\r\n"));
    assert!(!paused("Connection: upgrade\r\n"), "no protocol named");
    assert!(
        !paused("Upgrade: websocket\r\n"),
        "not asked for in Connection"
    );
    assert!(!paused("Connection: keep-alive\r\nUpgrade: websocket\r\n"));
    assert!(!paused("Connection: keep-alive\r\n"));
}

#[test]
fn error_offsets_count_from_the_start_of_the_stream() {
    // Far enough into the stream that the buffer has been compacted (consumed bytes dropped).
    let ok = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut p = Parser::request(Limits::default());
    let mut fed = 0u64;
    for _ in 0..400 {
        p.feed(ok.as_bytes());
        fed += ok.len() as u64;
        while let Ok(e) = p.next_event() {
            if matches!(e, Event::NeedData) {
                break;
            }
        }
    }
    let bad = b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n";
    let mut fresh = Parser::request(Limits::default());
    fresh.feed(bad);
    let at = fresh.next_event().unwrap_err().offset;
    p.feed(bad);
    let e = p.next_event().unwrap_err();
    assert_eq!(e.kind, ErrorKind::WhitespaceBeforeColon);
    assert_eq!(
        e.offset,
        fed + at,
        "where a fresh parser puts it, shifted by the stream"
    );
    // A chunk's missing CRLF is named where it should have been.
    let e = chunked_body(&Limits::default(), "5\r\nhello\rX").unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadChunkTerminator);
    assert_eq!(e.offset, (CHUNKED.len() + 3 + 5 + 1) as u64, "at the X");
    let e = chunked_body(&Limits::default(), "5\r\nhelloXY").unwrap_err();
    assert_eq!(e.offset, (CHUNKED.len() + 3 + 5) as u64, "at the X");
}

#[test]
fn errors_name_themselves_for_logs_and_tools() {
    let e = chunked_body(&Limits::default(), "zz\r\n").unwrap_err();
    assert_eq!(e.kind.name(), "bad_chunk_size");
    assert_eq!(
        e.to_string(),
        format!("bad_chunk_size at byte {}", CHUNKED.len())
    );
    assert_eq!(
        ErrorKind::TransferEncodingWithContentLength.name(),
        "transfer_encoding_with_content_length"
    );
    assert_eq!(ErrorKind::Truncated.name(), "truncated");
}

#[test]
fn idle_means_between_messages_with_nothing_buffered() {
    let mut p = Parser::request(Limits::default());
    assert!(p.is_idle());
    p.feed(b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert!(!p.is_idle(), "half a head");
    p.feed(b"\r\n");
    assert!(matches!(p.next_event(), Ok(Event::Request(_))));
    assert!(matches!(p.next_event(), Ok(Event::End { .. })));
    assert!(matches!(p.next_event(), Ok(Event::NeedData)));
    assert!(p.is_idle());
    p.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n");
    assert!(matches!(p.next_event(), Ok(Event::Request(_))));
    assert!(matches!(p.next_event(), Ok(Event::NeedData)));
    assert!(!p.is_idle(), "a body is owed");
}

#[test]
fn error_offsets_hold_when_consumed_bytes_are_dropped_with_some_still_unread() {
    // Many requests with the start of a bad one behind them: reading them consumes most of
    // the buffer while some of it is still unread, so the next feed compacts around it.
    let ok = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let bad = "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n";
    let mut fresh = Parser::request(Limits::default());
    fresh.feed(bad.as_bytes());
    let at = fresh.next_event().unwrap_err().offset;
    let mut p = Parser::request(Limits::default());
    let batch = ok.repeat(200);
    p.feed(batch.as_bytes());
    p.feed(&bad.as_bytes()[..10]);
    while !matches!(p.next_event(), Ok(Event::NeedData)) {}
    p.feed(&bad.as_bytes()[10..]);
    let e = p.next_event().unwrap_err();
    assert_eq!(e.offset, batch.len() as u64 + at);
}

#[test]
fn a_bad_byte_after_a_chunk_size_names_the_part_it_broke() {
    let l = Limits::default();
    let k = |ext: &str| {
        chunked_body(&l, &format!("5{ext}\r\nhello\r\n0\r\n\r\n"))
            .unwrap_err()
            .kind
    };
    assert_eq!(k("x"), ErrorKind::BadChunkSize);
    assert_eq!(k(";a b"), ErrorKind::BadChunkExtension);
    assert_eq!(k(";a=\"x\"y"), ErrorKind::BadChunkExtension);
}
