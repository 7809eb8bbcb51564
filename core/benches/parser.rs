//! Our parser's time per message on the inputs of `common`; `bench/parser.sh` prints it beside
//! httparse's (`parser_anchor`, a separate binary: see `common`).
//!
//! `cargo bench -p weaprous-core --bench parser` prints ours alone. `PARSER_PROFILE=POST` (any
//! input's name) runs only the in-place parse of that input for a while, for `perf record`
//! (`PARSER_PROFILE_ITERS` messages, 100 million unless set: fewer for
//! `valgrind --tool=callgrind`).
//!
//! httparse parses a head in place and returns borrowed slices; it does not frame bodies,
//! validate Host, Content-Length or Transfer-Encoding, or decode chunks. Ours does all of that,
//! with the parser reused across messages as a keep-alive connection reuses it, and the bytes
//! copied into it with `feed` as a driver does. "ours" reads events in place
//! (`Parser::next_borrowed`, like httparse's slices); "owned" is `Parser::next_event`, which
//! copies each head into an owned `RequestHead`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a benchmark reads the clock

mod common;

use common::{fields_sum, profile_case, time, CASES, ITERS};
use std::hint::black_box;
use weaprous_core::http::parse::{Event, EventRef, Parser};
use weaprous_core::http::Limits;

fn ours(p: &mut Parser, msg: &[u8]) {
    p.feed(msg);
    let mut sum = 0usize;
    loop {
        match p.next_borrowed() {
            Ok(EventRef::End { trailers }) => {
                black_box(sum + trailers.len());
                return;
            }
            Ok(EventRef::Request(r)) => {
                sum += r.method.as_str().len() + r.target.as_str().len();
                sum += fields_sum(r.headers.iter());
            }
            Ok(EventRef::Response(r)) => {
                sum += r.status.0 as usize + r.reason.len();
                sum += fields_sum(r.headers.iter());
            }
            Ok(EventRef::Data(d)) => sum += d.len(),
            Ok(_) | Err(_) => panic!("benchmark input must parse"),
        }
    }
}

fn owned(p: &mut Parser, msg: &[u8]) {
    p.feed(msg);
    let mut sum = 0usize;
    loop {
        match p.next_event() {
            Ok(Event::End { trailers }) => {
                black_box(sum + trailers.len());
                return;
            }
            Ok(Event::Request(r)) => {
                sum += r.method.as_str().len() + r.target.as_str().len();
                sum += fields_sum(r.headers.iter());
            }
            Ok(Event::Response(r)) => {
                sum += r.status.0 as usize + r.reason.len();
                sum += fields_sum(r.headers.iter());
            }
            Ok(Event::Data(d)) => sum += d.len(),
            Ok(_) | Err(_) => panic!("benchmark input must parse"),
        }
    }
}

fn parser_for(is_response: bool) -> Parser {
    if is_response {
        Parser::response(Limits::default())
    } else {
        Parser::request(Limits::default())
    }
}

fn main() {
    // For a profiler: `PARSER_PROFILE=POST` runs only ours on the input named so, for a while.
    if let Some((msg, is_response, iters)) = profile_case() {
        let mut p = parser_for(is_response);
        for _ in 0..iters {
            ours(&mut p, msg);
        }
        return;
    }
    println!(
        "{:<12} {:>6} {:>9} {:>9}",
        "input", "bytes", "ours ns", "owned ns"
    );
    for (name, msg, is_response) in CASES {
        let mut p = parser_for(is_response);
        let ours_s = time(ITERS, || ours(&mut p, msg));
        let owned_s = time(ITERS, || owned(&mut p, msg));
        println!(
            "{:<12} {:>6} {:>9.1} {:>9.1}",
            name,
            msg.len(),
            ours_s * 1e9,
            owned_s * 1e9
        );
    }
}
