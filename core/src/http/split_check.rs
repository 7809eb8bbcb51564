//! The split-invariance check as a library function, shared by the fuzz target
//! (`fuzz/fuzz_targets/request_parser.rs`), the corpus replay test and the proptests.

use super::parse::{Event, Kind, ParseError, Parser};
use super::Limits;

/// Every event of `chunks` fed in order (adjacent `Data` merged), until the parser needs data,
/// pauses, upgrades, closes or fails; then the error, if any.
pub fn events(kind: Kind, chunks: &[&[u8]], eof: bool) -> (Vec<Event>, Option<ParseError>) {
    let mut p = Parser::new(kind, Limits::default());
    let mut events: Vec<Event> = Vec::new();
    let n = chunks.len();
    let mut error = None;
    let mut feed_and_drain =
        |p: &mut Parser, chunk: Option<&[u8]>, last: bool| -> Result<(), ParseError> {
            if let Some(c) = chunk {
                p.feed(c);
            }
            if eof && last {
                p.feed_eof();
            }
            loop {
                match p.next_event()? {
                    Event::NeedData => return Ok(()),
                    e @ (Event::Paused | Event::Upgrade | Event::Closed) => {
                        if events.last() != Some(&e) {
                            events.push(e);
                        }
                        return Ok(());
                    }
                    Event::Data(d) => match events.last_mut() {
                        Some(Event::Data(prev)) => prev.extend_from_slice(&d),
                        _ if d.is_empty() => {}
                        _ => events.push(Event::Data(d)),
                    },
                    e => events.push(e),
                }
            }
        };
    if n == 0 {
        if let Err(e) = feed_and_drain(&mut p, None, true) {
            error = Some(e);
        }
    }
    for (i, c) in chunks.iter().enumerate() {
        if let Err(e) = feed_and_drain(&mut p, Some(c), i + 1 == n) {
            error = Some(e);
            break;
        }
    }
    (events, error)
}

/// Splits `data` at `cuts` (positions, any order, clamped) and panics if the parse differs
/// from feeding it whole or byte by byte. Used by the fuzzer: a panic is a finding.
pub fn assert_split_invariant(kind: Kind, data: &[u8], cuts: &[usize], eof: bool) {
    let whole = events(kind, &[data], eof);
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    cuts.sort_unstable();
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for c in cuts {
        parts.push(&data[prev..c]);
        prev = c;
    }
    parts.push(&data[prev..]);
    let split = events(kind, &parts, eof);
    assert_eq!(whole, split, "split parse differs from whole parse");
    if data.len() <= 4096 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(
            whole,
            events(kind, &bytes, eof),
            "byte-by-byte parse differs from whole parse"
        );
    }
}

/// The fuzz targets' input layout: byte 0 = how many cut points (0..=7), two bytes per cut
/// point (position, little-endian), one flag byte (bit 0: the peer closed), then the payload.
/// Checks split invariance of that payload for a parser of `kind` (used by the fuzz targets
/// and by the corpus replay test, so both read inputs the same way).
pub fn check_fuzz_input(kind: Kind, data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n % 8) as usize;
    if rest.len() < 2 * n + 1 {
        return;
    }
    let cuts: Vec<usize> = rest[..2 * n]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize)
        .collect();
    let eof = rest[2 * n] & 1 == 1;
    assert_split_invariant(kind, &rest[2 * n + 1..], &cuts, eof);
}
