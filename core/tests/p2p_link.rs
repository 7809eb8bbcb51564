//! One P2P link machine: the handshake's first frame, the version check, keepalive pings,
//! and the deadlines that end a link nobody answers on.

use std::time::Duration;
use weaprous_core::node::{ConnInput, ConnOutput, Connection, Now};
use weaprous_core::p2p::link::{LinkCmd, LinkConn, LinkEvent, LinkTimers};
use weaprous_core::p2p::wire::{Frame, FrameReader, Hello, MAGIC};
use weaprous_core::time::{Instant, UnixTime};

fn at(ms: u64) -> Now {
    Now {
        mono: Instant::ZERO + Duration::from_millis(ms),
        wall: UnixTime(1_800_000_000),
    }
}

fn timers() -> LinkTimers {
    LinkTimers {
        handshake: Duration::from_secs(5),
        keepalive: Duration::from_secs(10),
        silence: Duration::from_secs(30),
    }
}

/// Every output until `Wait`, and that deadline.
fn drain(c: &mut LinkConn) -> (Vec<ConnOutput<LinkEvent>>, Option<Instant>) {
    let mut out = Vec::new();
    loop {
        match c.poll_output() {
            ConnOutput::Wait { deadline } => return (out, deadline),
            o => out.push(o),
        }
    }
}

/// The frames written so far (and marks them flushed).
fn written(c: &mut LinkConn, now: Now) -> Vec<Frame> {
    let bytes = c.transmit().to_vec();
    c.handle(now, ConnInput::Flushed(bytes.len()));
    let mut r = FrameReader::new();
    r.feed(&bytes);
    let mut frames = Vec::new();
    while let Ok(Some(f)) = r.next_frame() {
        frames.push(f);
    }
    frames
}

fn hello_bytes() -> Vec<u8> {
    let mut b = Vec::new();
    Frame::Hello(Hello {
        id: "b0b".into(),
        name: "bob".into(),
        incarnation: 1,
        port: 7102,
        dial: 0,
    })
    .encode(&mut b);
    b
}

#[test]
fn a_link_says_opened_then_passes_frames_and_answers_pings_itself() {
    let mut c = LinkConn::new(timers(), at(0));
    let (out, _) = drain(&mut c);
    assert_eq!(out, [ConnOutput::ToNode(LinkEvent::Opened)]);
    let mut bytes = hello_bytes();
    Frame::Ping { nonce: 9 }.encode(&mut bytes);
    Frame::Ack {
        id: Default::default(),
    }
    .encode(&mut bytes);
    c.handle(at(1), ConnInput::Data(&bytes));
    let (out, _) = drain(&mut c);
    assert!(
        matches!(&out[0], ConnOutput::ToNode(LinkEvent::Frame(Frame::Hello(h))) if h.name == "bob")
    );
    assert!(matches!(
        &out[1],
        ConnOutput::ToNode(LinkEvent::Frame(Frame::Ack { .. }))
    ));
    assert_eq!(out.len(), 2, "the ping is not the node's business");
    assert_eq!(written(&mut c, at(1)), [Frame::Pong { nonce: 9 }]);
}

#[test]
fn another_version_gets_a_bye_naming_it_and_the_node_hears_why() {
    let mut c = LinkConn::new(timers(), at(0));
    drain(&mut c);
    let mut body = vec![1];
    body.extend_from_slice(&MAGIC);
    body.extend_from_slice(&7u16.to_be_bytes());
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&body);
    c.handle(at(1), ConnInput::Data(&bytes));
    let (out, _) = drain(&mut c);
    let why = "the peer speaks protocol version 7; this one speaks 1".to_string();
    assert_eq!(
        out,
        [
            ConnOutput::ToNode(LinkEvent::Failed(why.clone())),
            ConnOutput::Close
        ]
    );
    assert_eq!(written(&mut c, at(1)), [Frame::Bye { reason: why }]);
}

#[test]
fn a_first_frame_that_is_not_a_hello_ends_the_link() {
    let mut c = LinkConn::new(timers(), at(0));
    drain(&mut c);
    let mut bytes = Vec::new();
    Frame::Ack {
        id: Default::default(),
    }
    .encode(&mut bytes);
    c.handle(at(1), ConnInput::Data(&bytes));
    let (out, _) = drain(&mut c);
    assert!(
        matches!(&out[0], ConnOutput::ToNode(LinkEvent::Failed(w)) if w.contains("not a Hello"))
    );
}

#[test]
fn no_hello_within_the_handshake_deadline_aborts() {
    let mut c = LinkConn::new(timers(), at(0));
    let (_, deadline) = drain(&mut c);
    assert_eq!(deadline, Some(at(5_000).mono));
    c.handle(at(4_999), ConnInput::Timeout);
    assert!(drain(&mut c).0.is_empty(), "not yet");
    c.handle(at(5_000), ConnInput::Timeout);
    let (out, _) = drain(&mut c);
    assert!(matches!(&out[0], ConnOutput::ToNode(LinkEvent::Failed(w)) if w.contains("no Hello")));
    assert_eq!(out[1], ConnOutput::Abort);
}

#[test]
fn a_quiet_link_is_pinged_and_a_silent_one_ends() {
    let mut c = LinkConn::new(timers(), at(0));
    drain(&mut c);
    c.handle(at(0), ConnInput::Data(&hello_bytes()));
    let (_, deadline) = drain(&mut c);
    assert_eq!(
        deadline,
        Some(at(10_000).mono),
        "a ping after 10 s of quiet"
    );
    c.handle(at(10_000), ConnInput::Timeout);
    assert!(matches!(
        written(&mut c, at(10_000))[..],
        [Frame::Ping { .. }]
    ));
    // An answer keeps it alive and moves the deadlines.
    let mut pong = Vec::new();
    Frame::Pong { nonce: 1 }.encode(&mut pong);
    c.handle(at(12_000), ConnInput::Data(&pong));
    let (_, deadline) = drain(&mut c);
    assert_eq!(deadline, Some(at(22_000).mono));
    // Then nothing for 30 s: the link ends.
    c.handle(at(22_000), ConnInput::Timeout);
    drain(&mut c);
    c.handle(at(42_000), ConnInput::Timeout);
    let (out, _) = drain(&mut c);
    assert!(
        matches!(&out[0], ConnOutput::ToNode(LinkEvent::Failed(w)) if w.contains("nothing heard"))
    );
    assert_eq!(out[1], ConnOutput::Abort);
}

#[test]
fn closing_sends_bye_and_a_peer_that_does_not_read_is_cut_off() {
    let mut c = LinkConn::new(timers(), at(0));
    drain(&mut c);
    c.handle(at(0), ConnInput::Data(&hello_bytes()));
    c.handle(
        at(1),
        ConnInput::FromNode(LinkCmd::Close("duplicate link".into())),
    );
    let (out, _) = drain(&mut c);
    assert_eq!(out.last(), Some(&ConnOutput::Close));
    assert_eq!(
        written(&mut c, at(1)),
        [Frame::Bye {
            reason: "duplicate link".into()
        }]
    );

    let mut c = LinkConn::new(timers(), at(0));
    drain(&mut c);
    let text = "x".repeat(16 * 1024);
    let mut cut = false;
    for seq in 1..=1000u64 {
        let id = weaprous_core::p2p::wire::MsgId { inc: 1, seq };
        let frame = Frame::Msg {
            id,
            prev: Default::default(),
            kind: weaprous_core::p2p::wire::Kind::Direct,
            sent_ms: 0,
            text: text.clone(),
        };
        c.handle(at(1), ConnInput::FromNode(LinkCmd::Send(frame)));
        let (out, _) = drain(&mut c);
        if out.contains(&ConnOutput::Abort) {
            cut = true;
            break;
        }
    }
    assert!(cut, "8 MiB unsent ends the link");
}
