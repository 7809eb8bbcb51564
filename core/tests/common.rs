//! Helpers shared by the parser tests.
#![allow(dead_code)]

use weaprous_core::http::parse::{Event, Kind, ParseError, Parser};
use weaprous_core::http::Limits;

/// Every event until the parser needs data, pauses, upgrades, closes or fails. Adjacent `Data`
/// events are merged, since their boundaries legitimately depend on the input split.
pub fn run(kind: Kind, chunks: &[&[u8]], eof: bool) -> (Vec<Event>, Option<ParseError>) {
    let mut p = Parser::new(kind, Limits::default());
    let mut events = Vec::new();
    let mut error = None;
    let n = chunks.len();
    for (i, c) in chunks.iter().enumerate() {
        p.feed(c);
        if eof && i + 1 == n {
            p.feed_eof();
        }
        if let Err(e) = drain(&mut p, &mut events) {
            error = Some(e);
            break;
        }
    }
    if n == 0 && eof {
        p.feed_eof();
        if let Err(e) = drain(&mut p, &mut events) {
            error = Some(e);
        }
    }
    (merge_data(events), error)
}

fn drain(p: &mut Parser, events: &mut Vec<Event>) -> Result<(), ParseError> {
    loop {
        match p.next_event()? {
            Event::NeedData => return Ok(()),
            e @ (Event::Paused | Event::Upgrade | Event::Closed) => {
                if events.last() != Some(&e) {
                    events.push(e);
                }
                return Ok(());
            }
            e => events.push(e),
        }
    }
}

pub fn merge_data(events: Vec<Event>) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for e in events {
        match (out.last_mut(), e) {
            (Some(Event::Data(a)), Event::Data(b)) => a.extend_from_slice(&b),
            (_, Event::Data(b)) if b.is_empty() => {}
            (_, e) => out.push(e),
        }
    }
    out
}
