//! Helpers shared by the parser tests.
#![allow(dead_code)]

use weaprous_core::http::parse::{Event, Kind, ParseError};

/// Every event until the parser needs data, pauses, upgrades, closes or fails (adjacent `Data`
/// merged, since their boundaries legitimately depend on the input split).
pub fn run(kind: Kind, chunks: &[&[u8]], eof: bool) -> (Vec<Event>, Option<ParseError>) {
    weaprous_core::http::split_check::events(kind, chunks, eof)
}
