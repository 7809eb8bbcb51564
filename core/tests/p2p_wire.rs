//! The P2P frame codec: every frame round-trips, splits do not matter, and every malformed
//! input is a named error.

use weaprous_core::p2p::wire::{
    check_frames, Frame, FrameReader, Hello, Kind, MsgId, WireError, MAGIC, MAX_FRAME, MAX_TEXT,
};

fn id(inc: u64, seq: u64) -> MsgId {
    MsgId { inc, seq }
}

fn every_frame() -> Vec<Frame> {
    vec![
        Frame::Hello(Hello {
            id: "p-7f3a".into(),
            name: "alice".into(),
            incarnation: 3,
            port: 7101,
            dial: 4,
        }),
        Frame::Sync { have: id(2, 41) },
        Frame::Msg {
            id: id(3, 1),
            prev: id(2, 40),
            kind: Kind::Direct,
            sent_ms: 1_800_000_000_123,
            text: "héllo, bob ✓".into(),
        },
        Frame::Msg {
            id: id(3, 2),
            prev: id(3, 1),
            kind: Kind::Broadcast,
            sent_ms: 0,
            text: String::new(),
        },
        Frame::Ack { id: id(3, 2) },
        Frame::Gone {
            prev: id(3, 2),
            through: id(3, 9),
        },
        Frame::Ping { nonce: u64::MAX },
        Frame::Pong { nonce: 1 },
        Frame::Bye {
            reason: "duplicate link".into(),
        },
    ]
}

fn read(bytes: &[u8]) -> (Vec<Frame>, Option<WireError>) {
    let mut r = FrameReader::new();
    r.feed(bytes);
    let mut frames = Vec::new();
    loop {
        match r.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

#[test]
fn every_frame_round_trips_and_byte_by_byte_reads_the_same() {
    let mut bytes = Vec::new();
    for f in every_frame() {
        f.encode(&mut bytes);
    }
    assert_eq!(read(&bytes), (every_frame(), None));
    let mut r = FrameReader::new();
    let mut frames = Vec::new();
    for b in &bytes {
        r.feed(std::slice::from_ref(b));
        while let Some(f) = r.next_frame().unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(frames, every_frame());
    assert!(!r.partial());
}

#[test]
fn a_length_over_the_limit_is_refused_before_the_frame_is_buffered() {
    let (_, err) = read(&((MAX_FRAME as u32) + 1).to_be_bytes());
    assert_eq!(err, Some(WireError::Length(MAX_FRAME + 1)));
    // An HTTP client on the P2P port.
    let (_, err) = read(b"GET / HTTP/1.1\r\n");
    assert!(
        matches!(err, Some(WireError::Length(n)) if n > MAX_FRAME),
        "{err:?}"
    );
    let (_, err) = read(&[0, 0, 0, 0]);
    assert_eq!(err, Some(WireError::Length(0)));
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[test]
fn another_protocol_version_is_a_clear_error_read_before_the_rest() {
    let mut body = vec![1];
    body.extend_from_slice(&MAGIC);
    body.extend_from_slice(&2u16.to_be_bytes());
    body.extend_from_slice(b"whatever version 2 sends next");
    let (_, err) = read(&framed(&body));
    let err = err.expect("an error");
    assert_eq!(err, WireError::Version(2));
    assert_eq!(
        err.to_string(),
        "the peer speaks protocol version 2; this one speaks 1"
    );
    let (_, err) = read(&framed(b"\x01nope\x00\x01"));
    assert_eq!(err, Some(WireError::NotAPeer));
}

#[test]
fn malformed_frames_are_named_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"\x09", "an unknown frame type"),
        (b"\x04\x00\x00", "the frame ends inside a field"),
        (
            b"\x06\x00\x00\x00\x00\x00\x00\x00\x01\xff",
            "bytes after the last field",
        ),
        (b"\x08\x00\x02\xff\xfe", "a string that is not UTF-8"),
        (b"\x08\x01\x01", "a string over its limit"),
    ];
    for (body, what) in cases {
        let (frames, err) = read(&framed(body));
        assert!(frames.is_empty());
        assert_eq!(err, Some(WireError::Malformed(body[0], what)), "{body:?}");
    }
    // A message of an unknown kind.
    let mut body = vec![3];
    body.extend_from_slice(&[0; 32]);
    body.push(7);
    body.extend_from_slice(&[0; 10]);
    let (_, err) = read(&framed(&body));
    assert_eq!(
        err,
        Some(WireError::Malformed(3, "an unknown message kind"))
    );
    // After an error the reader stays failed.
    let mut r = FrameReader::new();
    r.feed(&framed(b"\x09"));
    assert!(r.next_frame().is_err());
    let mut ok = Vec::new();
    Frame::Ping { nonce: 1 }.encode(&mut ok);
    r.feed(&ok);
    assert!(r.next_frame().is_err());
}

#[test]
fn text_over_the_limit_is_cut_at_a_character_boundary_when_encoded() {
    let text = "é".repeat(MAX_TEXT); // 2 bytes each
    let mut bytes = Vec::new();
    Frame::Msg {
        id: id(1, 1),
        prev: MsgId::NONE,
        kind: Kind::Direct,
        sent_ms: 0,
        text,
    }
    .encode(&mut bytes);
    let (frames, err) = read(&bytes);
    assert_eq!(err, None);
    let Frame::Msg { text, .. } = &frames[0] else {
        panic!("{frames:?}")
    };
    assert_eq!(text.len(), MAX_TEXT);
    assert!(bytes.len() <= 4 + MAX_FRAME);
}

#[test]
fn the_fuzz_checker_runs_on_a_stream_of_every_frame() {
    let mut data = vec![2];
    for f in every_frame() {
        f.encode(&mut data);
    }
    data.extend_from_slice(b"\x00\x00\x00\x01\x09");
    check_frames(&data);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]
    /// Arbitrary bytes at arbitrary splits (the `p2p_frames` fuzz target's layout).
    #[test]
    fn any_bytes_read_the_same_at_any_split(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        check_frames(&data);
    }
}
