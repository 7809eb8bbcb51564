//! The parser's result never depends on how the input was split (h11's test_chunk_boundaries,
//! as a property): every case is fed whole, byte by byte and cut at random points, and the
//! events (adjacent Data merged) and the final error must be identical.

mod common;

use common::run;
use proptest::prelude::*;
use weaprous_core::http::parse::Kind;
use weaprous_core::http::split_check::assert_split_invariant;

const SEEDS: &[&str] = &[
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "\r\nGET /x?y=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=\"q\"\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.1\nHost: a\n\n",
    "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n",
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nraw bytes",
    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    // A bare LF as the first byte of a trailer section (the fuzz corpus caught a resume bug
    // that missed it when the section's first scan saw no bytes).
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
];

const RESPONSE_SEEDS: &[&str] = &[
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "HTTP/1.0 200 OK\r\n\r\nuntil close",
    "HTTP/1.1 101 Switching Protocols\r\n\r\ntunnel",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
];

/// A seed, optionally mutated at a few positions (so invalid inputs of every shape appear).
fn input(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let pick = prop::sample::select(seeds);
    let alphabet = prop::sample::select(vec![
        b'\r', b'\n', b' ', b'\t', b':', b'0', b'a', b';', b'"', 0u8, 0x80,
    ]);
    (
        pick,
        prop::collection::vec((any::<prop::sample::Index>(), alphabet), 0..3),
        1usize..3,
    )
        .prop_map(|(s, muts, reps)| {
            let mut v = s.as_bytes().repeat(reps);
            for (i, b) in muts {
                let at = i.index(v.len());
                v[at] = b;
            }
            v
        })
}

fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=len, 0..8).prop_map(|mut c| {
        c.sort_unstable();
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn requests_are_split_invariant((v, c) in input(SEEDS).prop_flat_map(|v| { let n = v.len(); (Just(v), cuts(n)) }), eof in any::<bool>()) {
        assert_split_invariant(Kind::Request, &v, &c, eof);
    }

    #[test]
    fn responses_are_split_invariant((v, c) in input(RESPONSE_SEEDS).prop_flat_map(|v| { let n = v.len(); (Just(v), cuts(n)) }), eof in any::<bool>()) {
        assert_split_invariant(Kind::Response, &v, &c, eof);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_split_invariant(v in prop::collection::vec(any::<u8>(), 0..200), c in cuts(200)) {
        let c: Vec<usize> = c.into_iter().map(|x| x.min(v.len())).collect();
        assert_split_invariant(Kind::Request, &v, &c, false);
        assert_split_invariant(Kind::Response, &v, &c, true);
    }
}

#[test]
fn every_seed_whole_equals_bytewise() {
    for s in SEEDS {
        for eof in [false, true] {
            let v = s.as_bytes();
            let bytes: Vec<&[u8]> = v.chunks(1).collect();
            assert_eq!(
                run(Kind::Request, &[v], eof),
                run(Kind::Request, &bytes, eof),
                "{s:?}"
            );
        }
    }
}

#[test]
fn limits_are_split_invariant() {
    let long = [
        &b"GET /"[..],
        &vec![b'a'; 9000],
        b" HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    .concat();
    let many: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").into_bytes();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(40_000)
    )
    .into_bytes();
    for v in [long, many, big] {
        let bytes: Vec<&[u8]> = v.chunks(1).collect();
        let whole = run(Kind::Request, &[&v], false);
        assert!(whole.1.is_some());
        assert_eq!(whole, run(Kind::Request, &bytes, false));
        assert_eq!(
            whole,
            run(Kind::Request, &v.chunks(777).collect::<Vec<_>>(), false)
        );
    }
}
