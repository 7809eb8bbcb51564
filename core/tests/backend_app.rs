//! The backend connection in app mode ([`weaprous_core::backend::app`]): which requests it
//! answers itself, which it hands to its node with their bodies, and how it carries out the
//! node's replies (a response, the static file, an event stream).

use std::net::SocketAddr;
use std::sync::Arc;
use weaprous_core::backend::app::{AppReply, AppRequest, AppRules};
use weaprous_core::backend::{BackendConfig, BackendConn};
use weaprous_core::http::{ResponseHead, Status};
use weaprous_core::node::{
    ConnInput, ConnOutput, Connection, FileMeta, FileOp, FileReply, FsError, Now,
};
use weaprous_core::time::{Instant, UnixTime};

const CSS: &[u8] = b"body{}";
const INDEX: &[u8] = b"<h1>chat</h1>";

fn peer() -> SocketAddr {
    "192.0.2.7:40000".parse().unwrap()
}

/// A tiny driver: a fake disk, the bytes written, and what the machine told its node.
struct Harness {
    conn: BackendConn,
    now: Now,
    wire: Vec<u8>,
    closed: Option<ConnOutput<AppRequest>>,
    to_node: Vec<AppRequest>,
    /// The client takes no bytes (its window is full).
    not_reading: bool,
    open_files: i64,
}

impl Harness {
    fn new() -> Self {
        let mut cfg = BackendConfig::new("/www", "/static");
        cfg.app = Some(AppRules {
            public_pages: vec!["/login.html".into()],
            max_body: 64,
            max_stream_backlog: 1024,
            max_response: 4096,
        });
        let now = Now {
            mono: Instant::ZERO,
            wall: UnixTime(1_700_000_000),
        };
        Harness {
            conn: BackendConn::new(Arc::new(cfg), now).with_peer(peer()),
            now,
            wire: Vec::new(),
            closed: None,
            to_node: Vec::new(),
            not_reading: false,
            open_files: 0,
        }
    }
    fn input(&mut self, input: ConnInput<'_, AppReply>) {
        self.conn.handle(self.now, input);
        self.pump();
    }
    fn reply(&mut self, reply: AppReply) {
        self.input(ConnInput::FromNode(reply));
    }
    fn send(&mut self, bytes: &[u8]) {
        self.input(ConnInput::Data(bytes));
    }
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let out = self.conn.poll_output();
            self.conn.check_invariants();
            match out {
                ConnOutput::File(op) => {
                    let reply = match op {
                        FileOp::Open { path } => {
                            let (handle, len) = match path.as_str() {
                                "/static/css/app.css" => (1, CSS.len()),
                                "/www/index.html" | "/www/login.html" => (2, INDEX.len()),
                                _ => {
                                    self.conn.handle(
                                        self.now,
                                        ConnInput::File(FileReply::Opened(Err(FsError::NotFound))),
                                    );
                                    continue;
                                }
                            };
                            self.open_files += 1;
                            FileReply::Opened(Ok(FileMeta {
                                handle,
                                len: len as u64,
                                modified: UnixTime(1_600_000_000),
                                is_dir: false,
                                real_path: path,
                            }))
                        }
                        FileOp::Read {
                            handle,
                            offset,
                            len,
                        } => {
                            let data = if handle == 1 { CSS } else { INDEX };
                            let s = offset as usize;
                            FileReply::Read(Ok(data[s..(s + len).min(data.len())].to_vec()))
                        }
                        FileOp::Close { .. } => {
                            self.open_files -= 1;
                            continue;
                        }
                    };
                    self.conn.handle(self.now, ConnInput::File(reply));
                }
                ConnOutput::ToNode(req) => self.to_node.push(req),
                ConnOutput::Log(_) => {}
                c @ (ConnOutput::Close | ConnOutput::Abort) => self.closed = Some(c),
                ConnOutput::Wait { .. } => {
                    if self.not_reading {
                        return;
                    }
                    let t = self.conn.transmit().to_vec();
                    if t.is_empty() {
                        return;
                    }
                    self.wire.extend_from_slice(&t);
                    self.conn.handle(self.now, ConnInput::Flushed(t.len()));
                }
            }
        }
        panic!("the machine never settled");
    }
    fn wire(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }
    fn take_request(&mut self) -> AppRequest {
        assert_eq!(self.to_node.len(), 1, "one request handed to the node");
        self.to_node.remove(0)
    }
}

fn response(status: Status, body: &str) -> AppReply {
    let mut head = ResponseHead::new(status);
    head.headers.append("Content-Type", "application/json");
    AppReply::Respond {
        head,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn public_assets_and_pages_are_served_without_the_node() {
    let mut h = Harness::new();
    h.send(
        b"GET /css/app.css HTTP/1.1\r\nHost: a\r\n\r\nGET /login.html HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert!(h.to_node.is_empty(), "{:?}", h.to_node);
    assert_eq!(
        h.wire().matches("HTTP/1.1 200 OK").count(),
        2,
        "{}",
        h.wire()
    );
    assert!(h.wire().contains("body{}") && h.wire().contains("<h1>chat</h1>"));
    assert_eq!(h.open_files, 0);
}

#[test]
fn a_page_that_is_not_public_waits_for_the_node_then_its_answer_is_sent() {
    let mut h = Harness::new();
    h.send(b"GET / HTTP/1.1\r\nHost: a\r\nCookie: sid=x\r\n\r\n");
    assert!(h.wire.is_empty(), "nothing is answered before the node");
    let req = h.take_request();
    assert_eq!(req.head.target.path(), "/");
    assert_eq!(req.head.headers.get_str("cookie"), Some("sid=x"));
    assert_eq!(req.peer, peer());
    assert!(req.body.is_empty());
    h.reply(response(Status(401), r#"{"status":"error"}"#));
    assert!(h.wire().starts_with("HTTP/1.1 401 "), "{}", h.wire());
    assert!(h.wire().ends_with(r#"{"status":"error"}"#), "{}", h.wire());
    assert!(h.wire().contains("Content-Length: 18\r\n"), "{}", h.wire());
    assert!(h.closed.is_none(), "the connection stays open");
}

#[test]
fn the_node_may_answer_with_the_static_file_the_request_names() {
    let mut h = Harness::new();
    h.send(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_request();
    h.reply(AppReply::Static { private: true });
    assert!(h.wire().starts_with("HTTP/1.1 200 OK"), "{}", h.wire());
    assert!(
        h.wire().contains("Cache-Control: private, no-cache\r\n"),
        "a page that depends on who asks is revalidated every time: {}",
        h.wire()
    );
    assert!(h.wire().ends_with("<h1>chat</h1>"), "{}", h.wire());
    assert_eq!(h.open_files, 0);
}

#[test]
fn a_body_is_handed_over_whole_whatever_its_framing() {
    let mut h = Harness::new();
    h.send(b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nu=a&");
    assert!(h.to_node.is_empty(), "not before the body is whole");
    h.send(b"p=b");
    assert_eq!(h.take_request().body, b"u=a&p=b");
    h.reply(response(Status::OK, "{}"));
    h.send(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n");
    assert_eq!(h.take_request().body, b"abcde");
}

#[test]
fn expect_continue_is_answered_before_the_body_is_gathered() {
    let mut h = Harness::new();
    h.send(b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert!(
        h.wire().starts_with("HTTP/1.1 100 Continue\r\n\r\n"),
        "{}",
        h.wire()
    );
    h.send(b"u=a");
    assert_eq!(h.take_request().body, b"u=a");
}

#[test]
fn a_body_over_the_limit_is_413_and_never_reaches_the_node() {
    let mut h = Harness::new();
    h.send(b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n");
    assert!(h.wire().starts_with("HTTP/1.1 413 "), "{}", h.wire());
    assert!(h.to_node.is_empty());

    let mut h = Harness::new();
    h.send(b"POST /login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n");
    h.send(&[b'x'; 64]);
    assert!(h.wire.is_empty(), "64 bytes are allowed");
    h.send(b"\r\n1\r\ny\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(h.wire().starts_with("HTTP/1.1 413 "), "{}", h.wire());
    assert_eq!(h.wire().matches("HTTP/1.1").count(), 1, "{}", h.wire());
    assert!(h.to_node.is_empty(), "{:?}", h.to_node);
    assert_eq!(h.closed, Some(ConnOutput::Close));
}

#[test]
fn pipelined_requests_reach_the_node_one_at_a_time_in_order() {
    let mut h = Harness::new();
    h.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.take_request().head.target.path(), "/a");
    h.reply(response(Status::OK, "a"));
    assert_eq!(h.take_request().head.target.path(), "/b");
    h.reply(response(Status::OK, "b"));
    let w = h.wire();
    assert!(
        w.find("\r\n\r\na").unwrap() < w.find("\r\n\r\nb").unwrap(),
        "{w}"
    );
}

#[test]
fn an_event_stream_is_chunked_and_the_connection_goes_on_after_it() {
    let mut h = Harness::new();
    h.send(b"GET /events HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_request();
    let mut head = ResponseHead::new(Status::OK);
    head.headers.append("Content-Type", "text/event-stream");
    h.reply(AppReply::Stream { head });
    assert!(
        h.wire().contains("Transfer-Encoding: chunked\r\n"),
        "{}",
        h.wire()
    );
    h.reply(AppReply::StreamData(b"data: hi\n\n".to_vec()));
    assert!(
        h.wire().ends_with("a\r\ndata: hi\n\n\r\n"),
        "{:?}",
        h.wire()
    );
    assert!(
        h.to_node.is_empty(),
        "the next request waits for the stream's end"
    );
    h.reply(AppReply::StreamEnd);
    assert!(h.wire().contains("0\r\n\r\n"));
    assert_eq!(h.take_request().head.target.path(), "/after");
}

#[test]
fn a_stream_reader_that_falls_too_far_behind_is_cut_off() {
    let mut h = Harness::new();
    h.send(b"GET /events HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_request();
    h.reply(AppReply::Stream {
        head: ResponseHead::new(Status::OK),
    });
    h.not_reading = true;
    // Each chunk is 106 bytes with its framing.
    for _ in 0..9 {
        h.reply(AppReply::StreamData(vec![b'x'; 100]));
    }
    assert!(h.closed.is_none(), "954 bytes behind is within the backlog");
    h.reply(AppReply::StreamData(vec![b'x'; 100]));
    assert_eq!(
        h.closed,
        Some(ConnOutput::Abort),
        "it resumes from the log on a new stream"
    );
}

#[test]
fn replies_after_the_connection_is_gone_are_ignored() {
    let mut h = Harness::new();
    h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_request();
    h.input(ConnInput::Reset);
    assert_eq!(h.closed, Some(ConnOutput::Abort));
    h.reply(response(Status::OK, "late"));
    h.reply(AppReply::StreamData(b"late".to_vec()));
    assert!(h.wire.is_empty());
}

#[test]
fn a_backend_without_app_rules_never_talks_to_a_node() {
    let now = Now::default();
    let mut conn = BackendConn::new(Arc::new(BackendConfig::new("/www", "/static")), now);
    conn.handle(
        now,
        ConnInput::Data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"),
    );
    let mut outs = Vec::new();
    loop {
        match conn.poll_output() {
            ConnOutput::Wait { .. } => break,
            o => outs.push(o),
        }
    }
    assert!(
        !outs.iter().any(|o| matches!(o, ConnOutput::ToNode(_))),
        "{outs:?}"
    );
    assert!(String::from_utf8_lossy(conn.transmit()).starts_with("HTTP/1.1 405 "));
}

#[test]
fn a_body_whose_framing_breaks_is_answered_400_once_and_never_reaches_the_node() {
    let mut h = Harness::new();
    h.send(b"POST /channels HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0x5\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(h.wire().starts_with("HTTP/1.1 400 "), "{}", h.wire());
    assert_eq!(h.wire().matches("HTTP/1.1").count(), 1, "{}", h.wire());
    assert!(h.to_node.is_empty(), "{:?}", h.to_node);
    assert_eq!(h.closed, Some(ConnOutput::Close));
}

#[test]
fn the_answer_to_a_head_request_is_its_head_alone() {
    let mut h = Harness::new();
    h.send(b"HEAD /channels HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_request();
    h.reply(response(Status::OK, "[1,2]"));
    assert!(h.wire().contains("Content-Length: 5\r\n"), "{}", h.wire());
    assert!(h.wire().ends_with("\r\n\r\n"), "{}", h.wire());
    assert!(h.closed.is_none());
}
