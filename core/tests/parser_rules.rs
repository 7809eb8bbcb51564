//! RFC 9112's message rules, one input each, fed whole: A the start line, B the fields, C the
//! framing, D chunked bodies, E the connection (the letters label the cases).

mod common;

use common::run;
use weaprous_core::http::parse::{ErrorKind, Event, Kind};

/// The status a server answers a request stream with: 200 if every message parsed.
fn status(input: &[u8]) -> u16 {
    match run(Kind::Request, &[input], false) {
        (_, Some(e)) => e.kind.status().0,
        (_, None) => 200,
    }
}

fn error(input: &[u8]) -> Option<ErrorKind> {
    run(Kind::Request, &[input], false).1.map(|e| e.kind)
}

fn requests(input: &[u8]) -> Vec<(String, String)> {
    run(Kind::Request, &[input], false)
        .0
        .into_iter()
        .filter_map(|e| match e {
            Event::Request(h) => Some((h.method.to_string(), h.target.as_str().to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_start_line() {
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 200, "A1");
    assert_eq!(
        requests(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").len(),
        1,
        "A2"
    );
    assert_eq!(status(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400, "A3");
    assert_eq!(status(b"GET  /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "A4");
    assert_eq!(status(b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "A4 tab");
    for m in [&b"G(T"[..], b":GET", b"G\0T", b"G\tT"] {
        let mut req = m.to_vec();
        req.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            error(&req),
            Some(ErrorKind::BadMethod),
            "A5 {:?}",
            String::from_utf8_lossy(m)
        );
    }
    assert_eq!(
        requests(b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n")[0].0,
        "FOO",
        "A6 parses"
    );
    assert_eq!(
        requests(b"get / HTTP/1.1\r\nHost: a\r\n\r\n")[0].0,
        "get",
        "A7 is not GET"
    );
    assert_eq!(status(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 200, "A8");
    assert_eq!(status(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505, "A9");
    assert_eq!(status(b"GET / HTTP/3.0\r\nHost: a\r\n\r\n"), 505, "A9");
    for v in [&b"HTTP/1.10"[..], b"HTTP/01.1", b"http/1.1", b"HTTP/1."] {
        let mut req = b"GET / ".to_vec();
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        assert_eq!(
            error(&req),
            Some(ErrorKind::BadVersion),
            "A10 {:?}",
            String::from_utf8_lossy(v)
        );
    }
    assert_eq!(status(b"GET /\r\n\r\n"), 400, "A11");
    assert_eq!(status(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "A12");
    for c in [b'\t', 0x0c, 0x7f, 0] {
        let req = [&b"GET /a"[..], &[c], b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
        assert_eq!(status(&req), 400, "A12 byte {c:#x}");
    }
    let long = [
        &b"GET /"[..],
        &vec![b'a'; 9000],
        b" HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    .concat();
    assert_eq!(status(&long), 414, "A13");
    assert_eq!(
        status(&long[..5000]),
        200,
        "A13: not yet over the limit, no error"
    );
    assert_eq!(
        status(&long[..8300]),
        414,
        "A13: detected before the line ends"
    );
    assert_eq!(status(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "A14");
    assert_eq!(status(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 200, "A14");
    assert_eq!(
        status(b"OPTIONS */x HTTP/1.1\r\nHost: a\r\n\r\n"),
        400,
        "A14"
    );
    assert_eq!(status(b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "A14");
    assert_eq!(
        status(b"GET a.b:80 HTTP/1.1\r\nHost: a\r\n\r\n"),
        400,
        "A14"
    );
    assert_eq!(
        requests(b"GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n")[0].1,
        "http://b.example/x",
        "A15"
    );
}

#[test]
fn a_status_line() {
    let resp = |b: &[u8]| run(Kind::Response, &[b], true);
    let (ev, err) = resp(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
    assert!(err.is_none(), "A17");
    assert!(matches!(&ev[0], Event::Response(h) if h.status.0 == 200 && h.reason.is_empty()));
    for bad in [
        &b"HTTP/1.1 20 OK\r\n\r\n"[..],
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
    ] {
        assert_eq!(
            resp(bad).1.map(|e| e.kind),
            Some(ErrorKind::BadStatus),
            "A18 {:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn b_header_fields() {
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
        Some(ErrorKind::MissingHost),
        "B1"
    );
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        Some(ErrorKind::DuplicateHost),
        "B2"
    );
    for h in ["a b", "a/b", "a:99999", "a:1:2", "."] {
        let req = format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n");
        assert_eq!(error(req.as_bytes()), Some(ErrorKind::BadHost), "B3 {h}");
    }
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: Example.COM.:8080\r\n\r\n"),
        200,
        "B4"
    );
    assert_eq!(status(b"GET / HTTP/1.0\r\n\r\n"), 200, "B5");
    assert_eq!(
        error(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello"),
        Some(ErrorKind::WhitespaceBeforeColon),
        "B6"
    );
    for line in [&b": x"[..], b"X[]: y", b"X y: z", b"X\x80: y", b"X\0: y"] {
        let req = [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], line, b"\r\n\r\n"].concat();
        assert_eq!(status(&req), 400, "B7 {:?}", String::from_utf8_lossy(line));
    }
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nFoo bar\r\n\r\n"),
        Some(ErrorKind::MissingColon),
        "B8"
    );
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"),
        Some(ErrorKind::ObsFold),
        "B9"
    );
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"),
        Some(ErrorKind::BadHeaderValue),
        "B10 NUL"
    );
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
        Some(ErrorKind::BareCr),
        "B10 CR"
    );
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nX: test\x07\r\n\r\n"),
        Some(ErrorKind::BadHeaderValue),
        "B11"
    );
    let (ev, err) = run(Kind::Request, &[b"GET / HTTP/1.1\r\nHost: a\r\nTest: D\xc3\xbcsseldorf\r\nX: \xffV\r\nY: \t v \t\r\nX-Empty:\r\n\r\n"], false);
    assert!(err.is_none(), "B12-B14");
    let Event::Request(h) = &ev[0] else { panic!() };
    assert_eq!(
        h.headers.get("test"),
        Some(&b"D\xc3\xbcsseldorf"[..]),
        "B12"
    );
    assert_eq!(h.headers.get("y"), Some(&b"v"[..]), "B13");
    assert_eq!(h.headers.get("x-empty"), Some(&b""[..]), "B14");
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nhoSt:\texample.com\r\n\r\n"),
        200,
        "B14 tab OWS"
    );
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nX: \xa0v\xa0\r\n\r\n"),
        None,
        "B13: NBSP is not OWS but is obs-text"
    );
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        status(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()),
        431,
        "B15 count"
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(40_000)
    );
    assert_eq!(status(big.as_bytes()), 431, "B15 size");
    assert_eq!(
        error(b"GET / HTTP/1.1\nHost: a\n\n"),
        Some(ErrorKind::BareLf),
        "B16"
    );
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
        Some(ErrorKind::BareCr),
        "B17"
    );
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: a\r\n\rX: b\r\n\r\n"),
        400,
        "B17 CR at line start"
    );
}

fn body(input: &[u8]) -> Result<Vec<u8>, ErrorKind> {
    let (ev, err) = run(Kind::Request, &[input], false);
    if let Some(e) = err {
        return Err(e.kind);
    }
    assert!(
        ev.iter().any(|e| matches!(e, Event::End { .. })),
        "message did not complete: {ev:?}"
    );
    Ok(ev
        .into_iter()
        .find_map(|e| {
            if let Event::Data(d) = e {
                Some(d)
            } else {
                None
            }
        })
        .unwrap_or_default())
}

const POST: &str = "POST / HTTP/1.1\r\nHost: a\r\n";

fn post(headers: &str, rest: &str) -> Vec<u8> {
    format!("{POST}{headers}\r\n{rest}").into_bytes()
}

#[test]
fn c_framing() {
    assert_eq!(
        body(&post("Content-Length: 5\r\n", "hello")),
        Ok(b"hello".to_vec()),
        "C1"
    );
    assert_eq!(
        body(&post("Content-Length: 003\r\n", "abc")),
        Ok(b"abc".to_vec()),
        "C2"
    );
    for v in ["abc", "-1", "+5", "0x5", "5 5", "1_0", ""] {
        assert_eq!(
            status(&post(&format!("Content-Length: {v}\r\n"), "hello")),
            400,
            "C3 {v:?}"
        );
    }
    assert_eq!(
        status(&post("Content-Length: 1000000000000000000000\r\n", "")),
        400,
        "C4"
    );
    assert_eq!(
        error(&post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello")),
        Some(ErrorKind::DuplicateContentLength),
        "C5"
    );
    assert_eq!(
        status(&post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello")),
        400,
        "C6"
    );
    assert_eq!(
        status(&post("Content-Length: 5, 5\r\n", "hello")),
        400,
        "C6 list"
    );
    assert_eq!(
        error(&post(
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "0\r\n\r\n"
        )),
        Some(ErrorKind::TransferEncodingWithContentLength),
        "C7"
    );
    assert_eq!(
        status(&post("Transfer-Encoding: chunked, gzip\r\n", "")),
        400,
        "C9"
    );
    assert_eq!(status(&post("Transfer-Encoding: gzip\r\n", "")), 400, "C10");
    assert_eq!(
        status(&post("Transfer-Encoding: gzip, chunked\r\n", "")),
        501,
        "C11"
    );
    assert_eq!(
        status(&post("Transfer-Encoding: chunked, chunked\r\n", "")),
        400,
        "C12"
    );
    assert_eq!(
        status(&post(
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            ""
        )),
        400,
        "C12 two fields"
    );
    assert_eq!(
        status(&post(
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            ""
        )),
        400,
        "C13"
    );
    for te in [
        "xchunked",
        "chunkedchunked",
        "\"chunked\"",
        "'chunked'",
        "chunk",
        "chunked\x0b",
        ",chunked",
    ] {
        let s = status(&post(&format!("Transfer-Encoding: {te}\r\n"), "0\r\n\r\n"));
        assert!(s == 400 || s == 501, "C14 {te:?} gave {s}");
    }
    // An unknown field name is just a field: framing is by Content-Length, and the chunk-looking
    // bytes are the next request (which is then malformed).
    let smug = post(
        "Transfer_Encoding: chunked\r\nContent-Length: 3\r\n",
        "0\r\n\r\n",
    );
    let (ev, _) = run(Kind::Request, &[&smug], false);
    assert!(
        matches!(&ev[1], Event::Data(d) if d == b"0\r\n"),
        "C14 underscore name: framed by CL"
    );
    assert_eq!(
        body(&post(
            "transfer-encoding: CHUNKED\r\n",
            "5\r\nhello\r\n0\r\n\r\n"
        )),
        Ok(b"hello".to_vec()),
        "C15"
    );
    assert_eq!(
        error(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Some(ErrorKind::TransferEncodingInHttp10),
        "C16"
    );
    let two = requests(format!("{POST}\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    assert_eq!(
        two.len(),
        2,
        "C17: no body, the next bytes are the next request"
    );
    assert_eq!(
        status(&post("Content-Length: 2000000000\r\n", "")),
        413,
        "body limit"
    );
}

#[test]
fn c_response_framing() {
    use weaprous_core::http::Method;
    let mut p = weaprous_core::http::Parser::response(Default::default());
    p.expect_response_to(Method::Head);
    p.expect_response_to(Method::Get);
    p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest");
    assert!(
        matches!(p.next_event(), Ok(Event::Response(h)) if h.status.0 == 200),
        "C20 HEAD"
    );
    assert!(
        matches!(p.next_event(), Ok(Event::End { .. })),
        "C20: no body read for HEAD"
    );
    assert!(
        matches!(p.next_event(), Ok(Event::Response(h)) if h.status.0 == 204),
        "C20 204"
    );
    assert!(matches!(p.next_event(), Ok(Event::End { .. })));
    assert!(matches!(p.next_event(), Ok(Event::Response(_))), "C21");
    assert_eq!(p.next_event(), Ok(Event::Data(b"rest".to_vec())));
    assert_eq!(
        p.next_event(),
        Ok(Event::NeedData),
        "C21: close-delimited waits for EOF"
    );
    p.feed_eof();
    assert!(matches!(p.next_event(), Ok(Event::End { .. })));

    let resp = |b: &str| run(Kind::Response, &[b.as_bytes()], true).1.map(|e| e.kind);
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"),
        Some(ErrorKind::DuplicateContentLength),
        "C5 upstream"
    );
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
        Some(ErrorKind::TransferEncodingWithContentLength),
        "C8"
    );
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
        Some(ErrorKind::Truncated),
        "C23"
    );
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        Some(ErrorKind::BadTransferEncoding),
        "C24"
    );
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
        Some(ErrorKind::BadTransferEncoding),
        "C24"
    );
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
        Some(ErrorKind::Truncated),
        "C23 chunked"
    );
    // C22: exactly CL bytes belong to the body; the rest is the next response.
    let (ev, _) = run(
        Kind::Response,
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"],
        false,
    );
    assert_eq!(ev[1], Event::Data(b"ok".to_vec()), "C22");
}

const CHUNKED: &str = "Transfer-Encoding: chunked\r\n";

#[test]
fn d_chunked() {
    let c = |rest: &str| body(&post(CHUNKED, rest));
    assert_eq!(c("5\r\nhello\r\n0\r\n\r\n"), Ok(b"hello".to_vec()), "D1");
    assert_eq!(
        c("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n").map(|b| b.len()),
        Ok(20),
        "D1 hex case"
    );
    assert_eq!(c("000\r\n\r\n"), Ok(vec![]), "D2");
    for size in ["0x5", "+5", "-5", " 5", "5 ", "5_0", "", "1x"] {
        assert!(
            c(&format!("{size}\r\nhello\r\n0\r\n\r\n")).is_err(),
            "D3 {size:?}"
        );
    }
    assert_eq!(
        c("fffffffffffffffff\r\n"),
        Err(ErrorKind::BadChunkSize),
        "D4"
    );
    for ext in ["5;name=value", "5;a;b=\"x;y\"", "5 ;a"] {
        assert_eq!(
            c(&format!("{ext}\r\nhello\r\n0\r\n\r\n")),
            Ok(b"hello".to_vec()),
            "D5 {ext:?}"
        );
    }
    let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(5000));
    assert_eq!(c(&long_ext), Err(ErrorKind::ChunkLineTooLong), "D5 cap");
    for ext in ["5;", "5;a=\"x"] {
        assert_eq!(
            c(&format!("{ext}\r\nhello\r\n0\r\n\r\n")),
            Err(ErrorKind::BadChunkExtension),
            "D6 {ext:?}"
        );
    }
    assert_eq!(
        c("5\r\nhelloX\r\n0\r\n\r\n"),
        Err(ErrorKind::BadChunkTerminator),
        "D7"
    );
    assert_eq!(
        c("5\r\nhello\n0\r\n\r\n"),
        Err(ErrorKind::BadChunkTerminator),
        "D7 bare LF"
    );
    assert_eq!(
        c("5\nhello\r\n0\r\n\r\n"),
        Err(ErrorKind::BareLf),
        "D7 bare LF after size"
    );
    let (ev, err) = run(
        Kind::Request,
        &[&post(CHUNKED, "5\r\nhello\r\n0\r\nX-T: v\r\n\r\n")],
        false,
    );
    assert!(err.is_none());
    assert!(
        matches!(&ev[2], Event::End { trailers } if trailers.get("x-t") == Some(&b"v"[..])),
        "D8"
    );
    assert_eq!(
        c("5\r\nhello\r\nGET / HTTP/1.1\r\n"),
        Err(ErrorKind::BadChunkSize),
        "D9"
    );
    let two = requests(&post(
        CHUNKED,
        "5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ));
    assert_eq!(
        two,
        vec![
            ("POST".into(), "/".into()),
            ("GET".into(), "/smuggled".into())
        ],
        "D10"
    );
}

#[test]
fn e_connection() {
    let two = requests(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(two.len(), 2, "E1");
    assert_eq!(
        status(b"GET /hello HTTP/1.1\r\nHos"),
        200,
        "E5: partial, no answer yet"
    );
    let (ev, err) = run(Kind::Request, &[b"GET /hello HTTP/1.1\r\nHos"], true);
    assert!(ev.is_empty());
    assert_eq!(
        err.map(|e| e.kind),
        Some(ErrorKind::Truncated),
        "E5 then EOF"
    );
    let (ev, err) = run(Kind::Request, &[b""], true);
    assert_eq!(
        (ev, err),
        (vec![Event::Closed], None),
        "clean close between messages"
    );
}

#[test]
fn upgrade_requests_pause_the_parser() {
    let (ev, _) = run(Kind::Request, &[b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00"], false);
    assert_eq!(ev.last(), Some(&Event::Paused));
    let (ev, _) = run(
        Kind::Response,
        &[b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00"],
        false,
    );
    assert_eq!(ev.last(), Some(&Event::Upgrade));
    let (ev, err) = run(Kind::Response, &[b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"], false);
    assert!(err.is_none());
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Response(_)))
            .count(),
        2,
        "F11: interim then final"
    );
}
