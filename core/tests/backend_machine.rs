//! The backend connection machine driven directly (no driver): deadlines, disk errors,
//! keep-alive rules and the effects it asks for.

use std::sync::Arc;
use weaprous_core::backend::app::{AppReply, AppRequest};
use weaprous_core::backend::{BackendConfig, BackendConn};
use weaprous_core::node::{
    ConnInput, ConnOutput, Connection, FileMeta, FileOp, FileReply, FsError, Now,
};
use weaprous_core::time::{Duration, Instant, UnixTime};

const FILE: &[u8] = b"0123456789abcdef";

/// A tiny driver: a fake disk with one file, a clock we move by hand, and everything the
/// machine wrote.
struct Harness {
    conn: BackendConn,
    now: Now,
    wire: Vec<u8>,
    closed: Option<ConnOutput<AppRequest>>,
    deadline: Option<Instant>,
    fail_reads_after: Option<usize>,
    reads: usize,
    chunk: usize,
    /// The client takes no bytes at all (its window is full).
    not_reading: bool,
    /// Files opened and not yet closed.
    open_files: i64,
    /// The length of every `FileOp::Read` asked for, in order.
    read_lens: Vec<usize>,
}

impl Harness {
    fn new(chunk: usize) -> Self {
        let mut cfg = BackendConfig::new("/www", "/static");
        cfg.read_chunk = chunk;
        let now = Now {
            mono: Instant::ZERO,
            wall: UnixTime(1_700_000_000),
        };
        Harness {
            conn: BackendConn::new(Arc::new(cfg), now),
            now,
            wire: Vec::new(),
            closed: None,
            deadline: None,
            fail_reads_after: None,
            reads: 0,
            chunk,
            not_reading: false,
            open_files: 0,
            read_lens: Vec::new(),
        }
    }
    fn input(&mut self, input: ConnInput<'_, AppReply>) {
        self.conn.handle(self.now, input);
        self.pump();
    }
    fn pump(&mut self) {
        for _ in 0..100_000 {
            let out = self.conn.poll_output();
            self.conn.check_invariants();
            match out {
                ConnOutput::File(op) => {
                    let reply = match op {
                        FileOp::Open { path } if path == "/static/f.txt" => {
                            self.open_files += 1;
                            FileReply::Opened(Ok(FileMeta {
                                handle: 1,
                                len: FILE.len() as u64,
                                modified: UnixTime(1_600_000_000),
                                is_dir: false,
                                real_path: path,
                            }))
                        }
                        FileOp::Open { .. } => FileReply::Opened(Err(FsError::NotFound)),
                        FileOp::Read { offset, len, .. } => {
                            self.reads += 1;
                            self.read_lens.push(len);
                            if self.fail_reads_after.is_some_and(|n| self.reads > n) {
                                FileReply::Read(Err(FsError::Io))
                            } else {
                                let s = offset as usize;
                                FileReply::Read(Ok(FILE[s..(s + len).min(FILE.len())].to_vec()))
                            }
                        }
                        FileOp::Close { .. } => {
                            self.open_files -= 1;
                            continue;
                        }
                    };
                    self.conn.handle(self.now, ConnInput::File(reply));
                }
                ConnOutput::Log(_) => {}
                ConnOutput::ToNode(_) => panic!("a file-only backend talks to no node"),
                c @ (ConnOutput::Close | ConnOutput::Abort) => self.closed = Some(c),
                ConnOutput::Wait { deadline } => {
                    self.deadline = deadline;
                    if self.not_reading {
                        return;
                    }
                    let t = self.conn.transmit().to_vec();
                    if t.is_empty() {
                        // What a sendfile-capable driver does with a file segment.
                        let Some(seg) = self.conn.transmit_file() else {
                            return;
                        };
                        self.reads += 1;
                        if self.fail_reads_after.is_some_and(|n| self.reads > n) {
                            self.conn.handle(
                                self.now,
                                ConnInput::File(FileReply::Read(Err(FsError::Io))),
                            );
                            continue;
                        }
                        let s = seg.offset as usize;
                        let n = (seg.len as usize).min(self.chunk * 2);
                        self.wire.extend_from_slice(&FILE[s..s + n]);
                        self.conn.handle(self.now, ConnInput::Flushed(n));
                        continue;
                    }
                    // A slow client: take at most one chunk's worth per round.
                    let n = t.len().min(self.chunk * 2);
                    self.wire.extend_from_slice(&t[..n]);
                    self.conn.handle(self.now, ConnInput::Flushed(n));
                }
            }
        }
        panic!("the machine never settled: it keeps asking for work");
    }

    fn send(&mut self, bytes: &[u8]) {
        self.input(ConnInput::Data(bytes));
    }
    fn advance_to_deadline(&mut self) {
        self.now.mono = self.deadline.expect("a deadline is armed");
        self.input(ConnInput::Timeout);
    }
    fn wire(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }
}

#[test]
fn serves_and_keeps_alive_then_idles_out() {
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(h.wire().starts_with("HTTP/1.1 200 OK\r\n") && h.wire().ends_with("0123456789abcdef"));
    assert!(h.closed.is_none(), "1.1 keeps the connection");
    let idle = h.deadline.expect("idle deadline");
    assert_eq!(idle, Instant::ZERO + Duration::from_secs(60));
    h.advance_to_deadline();
    assert_eq!(
        h.closed,
        Some(ConnOutput::Close),
        "idle keep-alive ends in a silent close"
    );
    assert_eq!(
        h.wire().matches("HTTP/1.1").count(),
        1,
        "no response to an idle timeout"
    );
}

#[test]
fn slow_header_gets_408_at_the_header_deadline() {
    let mut h = Harness::new(64 * 1024);
    h.now.mono = Instant::ZERO + Duration::from_secs(5);
    h.send(b"GET /f.txt HTTP/1.1\r\nHo");
    assert_eq!(
        h.deadline,
        Some(Instant::ZERO + Duration::from_secs(15)),
        "header deadline runs from the first byte"
    );
    h.advance_to_deadline();
    assert!(h.wire().starts_with("HTTP/1.1 408 "), "{}", h.wire());
    assert_eq!(h.closed, Some(ConnOutput::Close));
}

#[test]
fn http10_closes_and_connection_close_is_honoured() {
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.0\r\n\r\n");
    assert!(h.wire().contains("Connection: close\r\n"));
    assert_eq!(h.closed, Some(ConnOutput::Close));
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(h.wire().contains("Connection: keep-alive\r\n") && h.closed.is_none());
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        h.wire().matches("HTTP/1.1 200").count(),
        1,
        "nothing after Connection: close is read (E7)"
    );
    assert_eq!(h.closed, Some(ConnOutput::Close));
}

#[test]
fn a_close_lingers_only_when_client_bytes_may_be_unread() {
    let closes_at_once = |request: &[u8]| {
        let mut h = Harness::new(64 * 1024);
        h.send(request);
        assert_eq!(h.closed, Some(ConnOutput::Close), "{}", h.wire());
        !h.conn.may_leave_unread()
    };
    // The client said this request is its last and it was read whole: nothing can be unread.
    assert!(closes_at_once(
        b"GET /f.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(closes_at_once(b"GET /f.txt HTTP/1.0\r\n\r\n"));
    assert!(closes_at_once(
        b"POST /f.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"
    ));
    // Bytes behind the last request, a rejected request, a body not read to its end.
    assert!(!closes_at_once(
        b"GET /f.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n"
    ));
    assert!(!closes_at_once(b"GET /f.txt HTTP/1.1\r\n\r\n"));
    assert!(!closes_at_once(
        b"GET /f.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 99999999999\r\n\r\nab"
    ));
}

/// A machine with `small_file` as its small-file size, its response to `request` queued and
/// not yet taken by the (stalled) client.
fn queued_response(small_file: usize, request: &[u8]) -> Harness {
    let mut h = Harness::new(small_file);
    h.not_reading = true;
    h.send(request);
    assert!(!h.conn.transmit().is_empty(), "{}", h.wire());
    h
}

const KEEP_ALIVE: &[u8] = b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n";
const CLOSE: &[u8] = b"GET /f.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

#[test]
fn a_head_says_when_a_file_segment_follows_it() {
    // A file larger than the small-file size goes out as a file segment behind its head.
    assert!(queued_response(4, KEEP_ALIVE).conn.file_follows());
    // The whole file read with the head: nothing follows.
    assert!(!queued_response(64 * 1024, KEEP_ALIVE).conn.file_follows());
}

#[test]
fn a_head_says_whether_the_connection_closes_after_its_response() {
    let before_a_file = |request: &[u8]| {
        let h = queued_response(4, request);
        assert!(h.conn.file_follows(), "{}", h.wire());
        h.conn.closes_after_flush()
    };
    assert!(before_a_file(CLOSE));
    assert!(before_a_file(b"GET /f.txt HTTP/1.0\r\n\r\n"));
    assert!(!before_a_file(KEEP_ALIVE));
    assert!(!before_a_file(
        b"GET /f.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    ));
    // A small file goes out with its head: the whole response is queued at once.
    assert!(queued_response(64 * 1024, CLOSE).conn.closes_after_flush());
    assert!(!queued_response(64 * 1024, KEEP_ALIVE)
        .conn
        .closes_after_flush());
}

#[test]
fn a_small_file_is_read_with_its_head_a_large_one_sent_whole_behind_it() {
    // 16 bytes with a 64 KiB small-file size: one read of the whole file, nothing follows.
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.read_lens, vec![FILE.len()]);
    assert!(h.wire().ends_with("0123456789abcdef"), "{}", h.wire());
    // 16 bytes with a 4-byte small-file size: no read at all, the driver sends it all.
    let mut h = Harness::new(4);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.read_lens, Vec::<usize>::new());
    assert!(
        h.wire().ends_with("\r\n\r\n0123456789abcdef"),
        "{}",
        h.wire()
    );
    assert_eq!(h.open_files, 0, "the file is closed once sent");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut h = Harness::new(4);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nHEAD /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let w = h.wire();
    let a = w.find("200 OK").unwrap();
    let b = w.find("404 Not Found").unwrap();
    let c = w.rfind("200 OK").unwrap();
    assert!(a < b && b < c, "{w}");
    assert!(
        w[..b].contains("0123456789abcdef"),
        "the first body is whole before the second head"
    );
}

#[test]
fn disk_error_before_the_head_is_500_after_it_an_abort() {
    // A small file is read before its head: the failed read is a clean 500.
    let mut h = Harness::new(64 * 1024);
    h.fail_reads_after = Some(0);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(h.wire().starts_with("HTTP/1.1 500 "), "{}", h.wire());
    assert!(h.closed.is_none(), "a clean 500 keeps the connection");

    // A large one is sent by the driver behind its head: a failure there is an abort.
    let mut h = Harness::new(4);
    h.fail_reads_after = Some(1);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(h.wire().starts_with("HTTP/1.1 200 "));
    assert_eq!(
        h.closed,
        Some(ConnOutput::Abort),
        "a short body is never presented as complete"
    );
    assert!(!h.wire().ends_with("0123456789abcdef"));
}

#[test]
fn unread_body_is_drained_not_parsed_as_a_request() {
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 29\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n");
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.wire().matches("200 OK").count(), 2, "E6: {}", h.wire());
    assert!(!h.wire().contains("404"));
}

#[test]
fn a_stalled_body_after_the_answer_closes_without_a_second_answer() {
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(h.wire().matches("HTTP/1.1 ").count(), 1);
    assert_eq!(
        h.deadline,
        Some(Instant::ZERO + Duration::from_secs(30)),
        "the body deadline runs"
    );
    h.advance_to_deadline();
    assert_eq!(h.closed, Some(ConnOutput::Close));
    assert_eq!(
        h.wire().matches("HTTP/1.1 ").count(),
        1,
        "never two answers to one request"
    );
}

#[test]
fn a_stalled_body_before_any_answer_gets_408() {
    use weaprous_core::http::server::{ServerConn, ServerEvent, Timeouts};
    let now = Now {
        mono: Instant::ZERO,
        wall: UnixTime(0),
    };
    let mut c = ServerConn::new(now, Default::default(), Timeouts::default());
    c.feed(
        now,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
    );
    assert!(matches!(c.poll_event(now), Some(ServerEvent::Request(_))));
    assert!(matches!(c.poll_event(now), Some(ServerEvent::Body(_))));
    assert_eq!(c.poll_event(now), None);
    let at = c.deadline().expect("body deadline");
    assert_eq!(at, Instant::ZERO + Duration::from_secs(30));
    let later = Now {
        mono: at,
        wall: UnixTime(30),
    };
    assert!(
        matches!(c.on_timeout(later), Some(ServerEvent::Rejected { status, .. }) if status.0 == 408)
    );
    assert!(String::from_utf8_lossy(c.transmit()).starts_with("HTTP/1.1 408 "));
    assert_eq!(
        c.deadline().filter(|d| *d <= at),
        None,
        "no deadline left in the past (no spin)"
    );
}

#[test]
fn a_client_that_stops_reading_mid_file_is_aborted_and_the_file_closed() {
    let mut h = Harness::new(4);
    h.not_reading = true;
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.open_files, 1, "the body is being sent from the open file");
    h.advance_to_deadline();
    assert_eq!(
        h.closed,
        Some(ConnOutput::Abort),
        "the send deadline aborts"
    );
    assert_eq!(
        h.open_files, 0,
        "and the file is closed (found by the simulator)"
    );
}

#[test]
fn bytes_left_after_close_still_have_a_send_deadline() {
    let mut h = Harness::new(4096);
    h.not_reading = true;
    h.send(b"GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(h.closed, Some(ConnOutput::Close));
    assert!(!h.conn.transmit().is_empty(), "the 404 has not been taken");
    let d = h
        .deadline
        .expect("a send deadline runs after Close (found by the simulator)");
    assert_eq!(d, Instant::ZERO + Duration::from_secs(60));
    h.advance_to_deadline();
    assert_eq!(h.closed, Some(ConnOutput::Abort));
    assert_eq!(h.deadline, None, "nothing more after Abort");
}

/// The response-queue poisoning of a pipelined request behind a malformed body: the POST is
/// answered 405 from its head, its chunked body then breaks (`0x5` is no chunk size), and the
/// GET behind it must get nothing, not the 400 a client would take for its answer.
#[test]
fn a_malformed_body_after_an_early_answer_gets_no_second_response() {
    let mut h = Harness::new(64 * 1024);
    h.send(b"POST /f.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\nGET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let wire = h.wire();
    assert!(wire.starts_with("HTTP/1.1 405 "), "{wire}");
    assert_eq!(wire.matches("HTTP/1.1 ").count(), 1, "{wire}");
    assert_eq!(h.closed, Some(ConnOutput::Close));

    // The same with the body arriving after the answer went out.
    let mut h = Harness::new(64 * 1024);
    h.send(b"POST /f.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(h.wire().starts_with("HTTP/1.1 405 "), "{}", h.wire());
    assert!(
        h.wire().contains("Connection: close\r\n"),
        "answered before a chunked body was read: {}",
        h.wire()
    );
    h.send(b"5\r\nhello\r\nzz\r\n");
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.wire().matches("HTTP/1.1 ").count(), 1, "{}", h.wire());
    assert_eq!(h.closed, Some(ConnOutput::Close));
}

#[test]
fn a_stalled_body_after_an_early_answer_closes_silently() {
    let mut h = Harness::new(64 * 1024);
    h.send(b"POST /f.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
    assert!(h.wire().starts_with("HTTP/1.1 405 "), "{}", h.wire());
    h.advance_to_deadline();
    assert_eq!(h.wire().matches("HTTP/1.1 ").count(), 1, "{}", h.wire());
    assert_eq!(h.closed, Some(ConnOutput::Close));
}

#[test]
fn error_pages_are_html_for_a_browser_and_text_otherwise() {
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /nope.txt HTTP/1.1\r\nHost: a\r\nAccept: text/html,*/*;q=0.8\r\n\r\n");
    let w = h.wire();
    assert!(w.starts_with("HTTP/1.1 404 "), "{w}");
    assert!(
        w.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{w}"
    );
    assert!(w.contains("<h1>404 Not Found</h1>"), "{w}");
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /nope.txt HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
    let w = h.wire();
    assert!(
        w.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{w}"
    );
    assert!(
        w.ends_with("\r\n\r\n404 Not Found\nThere is no page at this address.\n"),
        "{w}"
    );
}

#[test]
fn a_304_ends_its_response_so_the_next_request_on_the_connection_is_answered() {
    // A browser revalidates a page and then asks for the next thing on the same connection:
    // the 304 must leave the connection ready for it (it once hung here forever).
    let mut h = Harness::new(64 * 1024);
    h.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let etag = h
        .wire()
        .lines()
        .find_map(|l| l.strip_prefix("ETag: ").map(str::to_string))
        .expect("an ETag");
    h.wire.clear();
    h.send(
        format!(
            "GET /f.txt HTTP/1.1\r\nHost: a\r\nIf-None-Match: {etag}\r\n\r\nGET /f.txt HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        .as_bytes(),
    );
    let w = h.wire();
    assert!(w.starts_with("HTTP/1.1 304 "), "{w}");
    assert!(
        w.contains("HTTP/1.1 200 OK"),
        "the request after the 304 is answered: {w}"
    );
    assert!(w.ends_with("0123456789abcdef"), "{w}");
    assert!(h.closed.is_none());
    assert_eq!(h.open_files, 0);
}
