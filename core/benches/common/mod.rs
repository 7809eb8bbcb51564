//! What both parser benchmarks share: the inputs, the timer and the way a caller reads what
//! was parsed. `parser` (ours) and `parser_anchor` (httparse) are separate binaries so that a
//! change to our code cannot move httparse's figure through code layout: in one binary it moved
//! by up to 25% on the response between builds that did not touch it. The machine drifts too
//! (a binary of httparse alone measured 79 and 95 ns on the response half an hour apart), so
//! `bench/parser.sh` runs the two alternately and keeps each side's lowest figure; it also links
//! each in several function orders, since the order alone moved httparse's response by a fifth.
#![allow(dead_code)] // each binary uses its own part
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a benchmark reads the clock

use std::time::Instant;

pub const BROWSER_GET: &[u8] = b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
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

pub const SMALL_POST: &[u8] = b"POST /channel/general/message HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Content-Type: application/x-www-form-urlencoded\r\n\
Content-Length: 37\r\n\
Cookie: session=3f2a9c1d7e6b5a4c3d2e1f0a9b8c7d6e\r\n\r\n\
username=alice&message=Hello%20World!";

pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Wed, 25 Nov 2026 22:00:00 GMT\r\n\
Server: weaprous\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Last-Modified: Wed, 25 Nov 2026 21:00:00 GMT\r\n\
ETag: \"6b075aab-1ed\"\r\n\
Accept-Ranges: bytes\r\n\
Content-Length: 12\r\n\r\n\
<h1>hi</h1>\n";

/// The best of five timed runs of `iters` calls (after a warm-up), in seconds per call.
pub fn time<F: FnMut()>(iters: u64, mut f: F) -> f64 {
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

/// The checksum of a head's fields.
pub fn fields_sum<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> usize {
    fields.fold(0, |sum, (n, v)| sum + n.len() + v.len())
}

/// The inputs: name (no spaces, for `bench/parser.sh`), bytes, and whether it is a response.
pub const CASES: [(&str, &[u8], bool); 3] = [
    ("browser-GET", BROWSER_GET, false),
    ("small-POST", SMALL_POST, false),
    ("response", RESPONSE, true),
];

/// For a profiler: with `PARSER_PROFILE` set (any input's name, or part of it), the input it
/// names, whether that is a response, and how many messages to parse (`PARSER_PROFILE_ITERS`,
/// 100 million unless set). `None` when it is not set.
pub fn profile_case() -> Option<(&'static [u8], bool, u64)> {
    let only = std::env::var("PARSER_PROFILE").ok()?;
    let Some(&(_, msg, is_response)) = CASES.iter().find(|c| c.0.contains(only.as_str())) else {
        panic!("PARSER_PROFILE names none of the inputs");
    };
    let iters = std::env::var("PARSER_PROFILE_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000_000);
    Some((msg, is_response, iters))
}

/// Messages per timed run.
pub const ITERS: u64 = 300_000;
