//! `httptool parse` as a user runs it: bytes on stdin, one JSON line out.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn parse(args: &[&str], input: &[u8]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httptool"))
        .arg("parse")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn accepts_pipelined_requests_with_bodies() {
    let v = parse(
        &[],
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b?q HTTP/1.0\r\n\r\n",
    );
    assert_eq!(v["outcome"], "accept");
    assert_eq!(v["error"], Value::Null);
    let m = v["messages"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(
        (
            m[0]["method"].as_str(),
            m[0]["target"].as_str(),
            m[0]["body_base64"].as_str()
        ),
        (Some("POST"), Some("/a"), Some("YWJj"))
    );
    assert_eq!(m[0]["headers"][0], serde_json::json!(["Host", "x"]));
    assert_eq!(
        (m[1]["version"].as_str(), m[1]["complete"].as_bool()),
        (Some("HTTP/1.0"), Some(true))
    );
}

#[test]
fn rejects_with_kind_and_offset() {
    let v = parse(&[], b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(v["outcome"], "reject");
    assert_eq!(v["error"]["kind"], "duplicate_content_length");
    assert_eq!(
        v["error"]["offset"], 27,
        "the second message starts at byte 27"
    );
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
}

#[test]
fn incomplete_and_upgrade_and_responses() {
    assert_eq!(
        parse(&[], b"GET / HTTP/1.1\r\nHos")["outcome"],
        "incomplete"
    );
    assert_eq!(
        parse(
            &["--eof"],
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc"
        )["outcome"],
        "incomplete"
    );
    assert_eq!(
        parse(&[], b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")["outcome"],
        "upgrade"
    );
    let v = parse(
        &["--response", "--eof"],
        b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil close",
    );
    assert_eq!(v["outcome"], "accept");
    assert_eq!(
        (
            v["messages"][0]["status"].as_u64(),
            v["messages"][0]["complete"].as_bool()
        ),
        (Some(200), Some(true))
    );
    let v = parse(&["--response"], b"HTTP/1.1 200 OK\r\n\r\nuntil close");
    assert_eq!(
        v["outcome"], "incomplete",
        "without --eof a close-delimited body is not complete"
    );
    let v = parse(
        &["--response"],
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    );
    assert_eq!(v["outcome"], "upgrade");
}

/// `httptool cookies`: JSON lines in, one `{"cookie": ...}` line out for each.
fn cookies(input: &str) -> (bool, Vec<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httptool"))
        .arg("cookies")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.success(), lines)
}

#[test]
fn cookies_runs_a_fresh_jar_per_line() {
    let input = [
        r#"{"now": "2026-12-07T08:10:00Z", "set_url": "http://localhost:8080/login", "set_cookie": ["sid=abc; Path=/; HttpOnly", "theme=dark; Max-Age=60"], "request_url": "http://localhost:8080/channel/general"}"#,
        r#"{"now": "2026-12-07T08:10:00Z", "set_url": "http://a.example/x/y", "set_cookie": ["p=1", "q=2; Path=/"], "request_url": "http://a.example/x/z"}"#,
        r#"{"now": "2026-12-07T08:10:00Z", "set_url": "http://a.example/", "set_cookie": ["old=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT"], "request_url": "http://a.example/"}"#,
        // The jar is new on every line: nothing from the first line's cookies comes back.
        r#"{"now": "2026-12-07T08:10:00Z", "set_url": "http://localhost:8080/", "set_cookie": [], "request_url": "http://localhost:8080/"}"#,
    ]
    .join("\n");
    let (ok, lines) = cookies(&input);
    assert!(ok);
    let got: Vec<&str> = lines
        .iter()
        .map(|v| v["cookie"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["sid=abc; theme=dark", "p=1; q=2", "", ""]);
}

#[test]
fn cookies_reports_an_unreadable_line_and_goes_on() {
    let input = "not json\n{\"now\": \"yesterday\", \"set_url\": \"http://h/\", \"set_cookie\": [], \"request_url\": \"http://h/\"}\n{\"now\": \"2026-12-07T08:10:00Z\", \"set_url\": \"http://h/\", \"set_cookie\": [\"a=1\"], \"request_url\": \"http://h/\"}\n";
    let (ok, lines) = cookies(input);
    assert!(!ok, "the exit status says a line was bad");
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["error"].as_str().unwrap().contains("JSON"));
    assert!(lines[1]["error"].as_str().unwrap().contains("now"));
    assert_eq!(lines[2]["cookie"], "a=1");
}
