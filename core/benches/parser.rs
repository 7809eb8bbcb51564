//! Parser throughput beside httparse on the same inputs.
//!
//! `cargo bench -p weaprous-core --bench parser`; `PARSER_PROFILE=POST` (any input's name) runs
//! only ours on that input for a while, for `perf record` (`PARSER_PROFILE_ITERS` messages,
//! 100 million unless set: fewer for `valgrind --tool=callgrind`).
//!
//! httparse parses a head in place and returns borrowed slices; it does not frame bodies,
//! validate Host, Content-Length or Transfer-Encoding, or decode chunks. Ours does all of that,
//! with the parser reused across messages as a keep-alive connection reuses it, and the bytes
//! copied into it with `feed` as a driver does. "ours" reads events in place
//! (`Parser::next_borrowed`, like httparse's slices); "owned" is `Parser::next_event`, which
//! copies each head into an owned `RequestHead`. The ratio is ours / httparse.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a benchmark reads the clock

use std::hint::black_box;
use std::time::Instant;
use weaprous_core::http::parse::{Event, EventRef, Parser};
use weaprous_core::http::Limits;

const BROWSER_GET: &[u8] = b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n\
Referer: http://www.kittyhell.com/\r\n\r\n";

const SMALL_POST: &[u8] = b"POST /channel/general/message HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Content-Type: application/x-www-form-urlencoded\r\n\
Content-Length: 37\r\n\
Cookie: session=3f2a9c1d7e6b5a4c3d2e1f0a9b8c7d6e\r\n\r\n\
username=alice&message=Hello%20World!";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Wed, 25 Nov 2026 22:00:00 GMT\r\n\
Server: weaprous\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Last-Modified: Wed, 25 Nov 2026 21:00:00 GMT\r\n\
ETag: \"6b075aab-1ed\"\r\n\
Accept-Ranges: bytes\r\n\
Content-Length: 12\r\n\r\n\
<h1>hi</h1>\n";

fn time<F: FnMut()>(iters: u64, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / iters as f64);
    }
    best
}

// Each side consumes what it parsed as a caller would, folding the parts it reads into a
// checksum that is `black_box`ed once per message: the method, the target's length, every
// field's name and value length and (ours) the body's length. Passing each event to
// `black_box` instead would force it through memory and time the store-forwarding stall of
// re-reading it, which no real caller pays.

fn fields_sum<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> usize {
    fields.fold(0, |sum, (n, v)| sum + n.len() + v.len())
}

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

fn parser_for(is_response: bool) -> Parser {
    if is_response {
        Parser::response(Limits::default())
    } else {
        Parser::request(Limits::default())
    }
}

fn main() {
    let iters = 300_000;
    println!(
        "{:<14} {:>9} {:>9} {:>12} {:>10} {:>14} {:>7} {:>12}",
        "input",
        "ours ns",
        "owned ns",
        "httparse ns",
        "ours MB/s",
        "httparse MB/s",
        "ratio",
        "owned ratio"
    );
    let cases: [(&str, &[u8], bool); 3] = [
        ("browser GET", BROWSER_GET, false),
        ("small POST", SMALL_POST, false),
        ("response", RESPONSE, true),
    ];
    // For a profiler: `PARSER_PROFILE=POST` runs only ours on the input named so, for a while.
    if let Ok(only) = std::env::var("PARSER_PROFILE") {
        let Some(&(_, msg, is_response)) = cases.iter().find(|c| c.0.contains(only.as_str()))
        else {
            panic!("PARSER_PROFILE names none of the inputs");
        };
        let mut p = parser_for(is_response);
        let iters = std::env::var("PARSER_PROFILE_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000_000u64);
        for _ in 0..iters {
            ours(&mut p, msg);
        }
        return;
    }
    for (name, msg, is_response) in cases {
        let mut p = parser_for(is_response);
        let ours_s = time(iters, || ours(&mut p, msg));
        let owned_s = time(iters, || owned(&mut p, msg));
        let theirs_s = if is_response {
            time(iters, || theirs_response(msg))
        } else {
            time(iters, || theirs_request(msg))
        };
        let mb = |s: f64| msg.len() as f64 / s / 1e6;
        println!(
            "{:<14} {:>9.1} {:>9.1} {:>12.1} {:>10.0} {:>14.0} {:>7.2} {:>12.2}",
            name,
            ours_s * 1e9,
            owned_s * 1e9,
            theirs_s * 1e9,
            mb(ours_s),
            mb(theirs_s),
            theirs_s / ours_s,
            theirs_s / owned_s
        );
    }
    println!("ratio = ours throughput / httparse throughput (>1 means we are faster)");
    println!("owned ratio = the same with owned events (next_event)");
}
