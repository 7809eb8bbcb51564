//! What the core allocates: the parser reads a keep-alive connection's requests in place
//! (`Parser::next_borrowed`) without allocating, and the backend serves a file within a fixed
//! budget of allocations per request and per connection. These live here, not in
//! `core/tests`, because counting allocations needs a global allocator, and so `unsafe`, which
//! `core/` never contains.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use weaprous_core::backend::{BackendConfig, BackendConn};
use weaprous_core::http::parse::{EventRef, Parser};
use weaprous_core::http::Limits;
use weaprous_core::node::{ConnInput, ConnOutput, Connection, FileMeta, FileOp, FileReply, Now};
use weaprous_core::time::{Instant, UnixTime};

/// Counts the allocations made by the current thread (the test harness runs other tests on
/// other threads, which must not be counted).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

const KEEP_ALIVE: &[&[u8]] = &[
    b"GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    b"POST /m HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nCookie: s=1\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n",
];

/// Feeds `msg` and reads it to its end in place; returns what the events said, in a form that
/// does not allocate (counts and a checksum of the bytes seen).
fn read_in_place(p: &mut Parser, msg: &[u8]) -> (usize, u64) {
    p.feed(msg);
    let mut events = 0;
    let mut sum = 0u64;
    loop {
        events += 1;
        match p.next_borrowed().expect("valid input") {
            EventRef::Request(r) => {
                sum += r.target.as_str().len() as u64 + r.headers.len() as u64;
                sum += r.headers.get("host").map_or(0, |h| h.len() as u64);
            }
            EventRef::Data(d) => sum += d.iter().map(|&b| b as u64).sum::<u64>(),
            EventRef::End { trailers } => {
                sum += trailers.len() as u64;
                return (events, sum);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_keep_alive_connection_reads_requests_in_place_without_allocating() {
    let mut p = Parser::request(Limits::default());
    // The first round grows the buffers (the input buffer, the field list) to fit.
    for msg in KEEP_ALIVE {
        read_in_place(&mut p, msg);
    }
    let before = allocations();
    for _ in 0..10 {
        for msg in KEEP_ALIVE {
            read_in_place(&mut p, msg);
        }
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations while reading in place"
    );
    // The owned events copy every head, body chunk and trailer section.
    let before = allocations();
    p.feed(KEEP_ALIVE[1]);
    while !matches!(p.next_event(), Ok(weaprous_core::http::Event::End { .. })) {}
    assert!(allocations() - before >= 3, "owned events copy the head");
}

/// Serves one request on `conn` as a sendfile-capable driver would, answering the open of
/// any path with a file of `len` bytes (a segment the driver sends itself: no file bytes pass
/// through the machine, so whatever allocates here is the machine's own doing). Returns the
/// response head's bytes and whether the connection asked to close.
fn serve(conn: &mut BackendConn, now: Now, request: &[u8], len: u64) -> (usize, bool) {
    conn.handle(now, ConnInput::Data(request));
    let mut head = 0;
    for _ in 0..1000 {
        match conn.poll_output() {
            ConnOutput::File(FileOp::Open { path }) => {
                let meta = FileMeta {
                    handle: 7,
                    len,
                    modified: UnixTime(1_600_000_000),
                    is_dir: false,
                    real_path: path,
                };
                conn.handle(now, ConnInput::File(FileReply::Opened(Ok(meta))));
            }
            ConnOutput::File(FileOp::Read { .. }) => panic!("a large file is not read"),
            ConnOutput::ToNode(_) => panic!("a file-only backend talks to no node"),
            ConnOutput::File(FileOp::Close { .. }) | ConnOutput::Log(_) => {}
            ConnOutput::Close | ConnOutput::Abort => return (head, true),
            ConnOutput::Wait { .. } => {
                let t = conn.transmit().len();
                if t > 0 {
                    head += t;
                    conn.handle(now, ConnInput::Flushed(t));
                } else if let Some(segment) = conn.transmit_file() {
                    conn.handle(now, ConnInput::Flushed(segment.len as usize));
                } else {
                    return (head, false);
                }
            }
        }
    }
    panic!("the connection never settled");
}

const NOW: Now = Now {
    mono: Instant::ZERO,
    wall: UnixTime(1_700_000_000),
};
const BROWSER_GET: &[u8] = b"GET /big.bin HTTP/1.1\r\nHost: localhost:9000\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n\
Connection: keep-alive\r\n\r\n";
const BIG: u64 = 1 << 20;

#[test]
fn a_keep_alive_request_for_a_file_costs_a_bounded_number_of_allocations() {
    let cfg = Arc::new(BackendConfig::new("/www", "/static"));
    let mut conn = BackendConn::new(cfg, NOW);
    // The first request grows the connection's buffers.
    let (head, closes) = serve(&mut conn, NOW, BROWSER_GET, BIG);
    assert!(head > 100 && !closes);
    let before = allocations();
    for _ in 0..10 {
        serve(&mut conn, NOW, BROWSER_GET, BIG);
    }
    let per_request = (allocations() - before) / 10;
    assert!(
        per_request <= KEEP_ALIVE_BUDGET,
        "{per_request} allocations per keep-alive request (budget {KEEP_ALIVE_BUDGET})"
    );
}

#[test]
fn a_new_connection_for_a_file_costs_a_bounded_number_of_allocations() {
    let cfg = Arc::new(BackendConfig::new("/www", "/static"));
    let close = b"GET /big.bin HTTP/1.1\r\nHost: localhost:9000\r\nConnection: close\r\n\r\n";
    let before = allocations();
    for _ in 0..10 {
        let mut conn = BackendConn::new(cfg.clone(), NOW);
        let (head, closes) = serve(&mut conn, NOW, close, BIG);
        assert!(head > 100 && closes);
    }
    let per_connection = (allocations() - before) / 10;
    assert!(
        per_connection <= NEW_CONNECTION_BUDGET,
        "{per_connection} allocations per connection (budget {NEW_CONNECTION_BUDGET})"
    );
}

/// A keep-alive request for a file: the owned request head (target, field bytes, field list:
/// 3), the normalised path (1), the file's path (1), the ETag and `Last-Modified` values (2) and
/// the response head (field bytes and list: 2). It was 31 before every one of those was built in
/// a single allocation (`format!`, growing vectors, a string per path segment, lowering a copy
/// of the extension, copying the method and target into the log record).
const KEEP_ALIVE_BUDGET: usize = 9;
/// A connection's first request: the above, plus the connection's buffers (input, field list,
/// transmit buffer, effect queue) and its `Date` value, which later requests of the same
/// second reuse. It was 43.
const NEW_CONNECTION_BUDGET: usize = 14;
