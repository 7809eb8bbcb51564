//! The anchor: httparse's time per message on the inputs of `common`, in a binary of its own
//! so that changes to our code cannot move it (see `common`). `bench/parser.sh` prints it
//! beside ours; `cargo bench -p weaprous-core --bench parser_anchor` prints it alone.
//! httparse is a dev-dependency used only here. `PARSER_PROFILE` and `PARSER_PROFILE_ITERS`
//! work as in `parser`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a benchmark reads the clock

mod common;

use common::{fields_sum, profile_case, time, CASES, ITERS};
use std::hint::black_box;

fn theirs_fields(headers: &[httparse::Header<'_>]) -> usize {
    fields_sum(headers.iter().map(|h| (h.name.as_bytes(), h.value)))
}

fn theirs_request(msg: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let status = req.parse(black_box(msg)).expect("parses");
    assert!(status.is_complete(), "benchmark input must parse");
    let sum = req.method.map_or(0, str::len) + req.path.map_or(0, str::len);
    black_box(sum + theirs_fields(req.headers));
}

fn theirs_response(msg: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let status = resp.parse(black_box(msg)).expect("parses");
    assert!(status.is_complete(), "benchmark input must parse");
    let sum = resp.code.map_or(0, usize::from) + resp.reason.map_or(0, str::len);
    black_box(sum + theirs_fields(resp.headers));
}

fn main() {
    // As in `parser`: `PARSER_PROFILE=POST` runs only httparse on that input, for a profiler.
    if let Some((msg, is_response, iters)) = profile_case() {
        for _ in 0..iters {
            if is_response {
                theirs_response(msg);
            } else {
                theirs_request(msg);
            }
        }
        return;
    }
    println!("{:<12} {:>6} {:>12}", "input", "bytes", "httparse ns");
    for (name, msg, is_response) in CASES {
        let s = if is_response {
            time(ITERS, || theirs_response(msg))
        } else {
            time(ITERS, || theirs_request(msg))
        };
        println!("{:<12} {:>6} {:>12.1}", name, msg.len(), s * 1e9);
    }
}
