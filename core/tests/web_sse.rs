//! Server-Sent Events: what the encoder writes, the reader reads back, however it is split.

use proptest::prelude::*;
use weaprous_core::web::sse::{comment, Event, Reader, StreamError, MAX_LINE};

fn encode(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        e.encode(&mut out);
    }
    out
}

#[test]
fn the_wire_form() {
    let e = Event {
        id: Some("42".into()),
        event: Some("message".into()),
        data: "{\"text\":\"hi\"}".into(),
    };
    assert_eq!(
        encode(&[e]),
        b"id: 42\nevent: message\ndata: {\"text\":\"hi\"}\n\n".to_vec()
    );
    let mut hb = Vec::new();
    comment("keepalive", &mut hb);
    assert_eq!(hb, b": keepalive\n");
}

#[test]
fn user_text_cannot_end_an_event_or_inject_a_field() {
    let evil = Event {
        id: Some("7".into()),
        event: None,
        data: "a\n\nid: 999\r\nevent: admin\rdata: x".into(),
    };
    let mut r = Reader::new();
    let got = r.feed(&encode(&[evil])).unwrap();
    assert_eq!(got.len(), 1, "one event, not two");
    assert_eq!(got[0].data, "a\n\nid: 999\nevent: admin\ndata: x");
    assert_eq!(got[0].event, None);
    assert_eq!(r.last_id.as_deref(), Some("7"));
}

#[test]
fn the_reader_follows_the_standard() {
    let mut r = Reader::new();
    let stream = "\u{feff}: hello\r\nretry: 3000\r\nid: 1\r\ndata: one\r\n\r\nevent: ping\ndata\n\nid: 2\rdata:two\rdata:  three\r\r: only a comment\n\nid: x\0y\nretry: 12ms\ndata: keeps 2\n\n";
    let got = r.feed(stream.as_bytes()).unwrap();
    let shape: Vec<(Option<&str>, Option<&str>, &str)> = got
        .iter()
        .map(|e| (e.id.as_deref(), e.event.as_deref(), e.data.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            (Some("1"), None, "one"),
            (Some("1"), Some("ping"), ""),
            (Some("2"), None, "two\n three"),
            (Some("2"), None, "keeps 2"),
        ]
    );
    assert_eq!(r.retry_ms, Some(3000), "retry with a non-digit is ignored");
}

#[test]
fn an_event_without_data_is_not_dispatched() {
    let mut r = Reader::new();
    assert_eq!(r.feed(b"event: x\nid: 5\n\n").unwrap(), vec![]);
    assert_eq!(r.last_id.as_deref(), Some("5"));
    let got = r.feed(b"data: y\n\n").unwrap();
    assert_eq!(got[0].event, None, "the type does not carry over");
}

#[test]
fn a_cr_at_the_end_of_a_chunk_waits_for_the_next() {
    let mut r = Reader::new();
    assert_eq!(r.feed(b"data: a\r").unwrap(), vec![]);
    let got = r.feed(b"\ndata: b\r\n\r\n").unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].data, "a\nb",
        "CRLF split over two chunks is one line end"
    );
}

#[test]
fn a_line_without_end_is_bounded() {
    let mut r = Reader::new();
    assert!(r.feed(&vec![b'x'; MAX_LINE]).is_ok());
    assert_eq!(r.feed(b"x"), Err(StreamError));
}

proptest! {
    /// Any events, encoded and split anywhere, read back as they were (line breaks as LF).
    #[test]
    fn encode_then_read_in_any_chunks(
        datas in proptest::collection::vec("[a-z \r\n:]{0,20}", 1..6),
        cuts in proptest::collection::vec(0usize..200, 0..8),
    ) {
        let events: Vec<Event> = datas
            .iter()
            .enumerate()
            .map(|(i, d)| Event { id: Some(i.to_string()), event: None, data: d.clone() })
            .collect();
        let wire = encode(&events);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(wire.len())).collect();
        cuts.sort();
        let mut r = Reader::new();
        let mut got = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([wire.len()]) {
            got.extend(r.feed(&wire[at..c]).unwrap());
            at = c;
        }
        let want: Vec<String> = datas
            .iter()
            .map(|d| d.replace("\r\n", "\n").replace('\r', "\n"))
            .collect();
        let data: Vec<String> = got.iter().map(|e| e.data.clone()).collect();
        prop_assert_eq!(data, want);
    }
}

proptest! {
    /// Arbitrary bytes (what `fuzz/fuzz_targets/sse_reader.rs` feeds) read the same however
    /// they are split.
    #[test]
    fn any_bytes_read_the_same_in_any_split(
        stream in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b'd'), Just(b'a'), Just(b't'), any::<u8>()], 0..300),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(stream.len() + 1);
        let mut whole = Reader::new();
        let all = whole.feed(&stream).unwrap();
        let mut split = Reader::new();
        let mut parts = split.feed(&stream[..cut]).unwrap();
        parts.extend(split.feed(&stream[cut..]).unwrap());
        prop_assert_eq!(all, parts);
        prop_assert_eq!(whole.last_id, split.last_id);
    }
}
