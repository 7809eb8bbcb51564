//! The parser reads a keep-alive connection's requests in place (`Parser::next_borrowed`)
//! without allocating. It lives here, not in `core/tests`, because counting allocations needs
//! a global allocator, and so `unsafe`, which `core/` never contains.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use weaprous_core::http::parse::{EventRef, Parser};
use weaprous_core::http::Limits;

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
