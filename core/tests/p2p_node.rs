//! A peer node driven in memory (`weaprous_core::node::direct`): what it reads back from its
//! log at start.

use std::collections::BTreeMap;
use weaprous_core::backend::BackendConfig;
use weaprous_core::node::direct::Direct;
use weaprous_core::node::record;
use weaprous_core::node::Now;
use weaprous_core::p2p::history::{PeerRecord, LOG};
use weaprous_core::p2p::node::{PeerConfig, PeerEvent, PeerNode};
use weaprous_core::p2p::wire::{Kind, MsgId};
use weaprous_core::time::{Instant, UnixTime};

fn node() -> PeerNode {
    PeerNode::new(PeerConfig::new(
        "127.0.0.1:8101".parse().unwrap(),
        "127.0.0.1:7101".parse().unwrap(),
        "127.0.0.1:8000".parse().unwrap(),
        "alice",
        "alice's password",
        BackendConfig::new("/www", "/static"),
    ))
}

fn log_of(records: &[PeerRecord]) -> Vec<u8> {
    let mut log = Vec::new();
    for r in records {
        record::encode(&serde_json::to_vec(r).unwrap(), &mut log);
    }
    log
}

/// Message `seq` of bob's first start (0: none).
fn id(seq: u64) -> MsgId {
    if seq == 0 {
        return MsgId::NONE;
    }
    MsgId { inc: 1, seq }
}

fn received(seq: u64, prev: u64) -> PeerRecord {
    PeerRecord::Received {
        from: "b0b".into(),
        id: id(seq),
        prev: id(prev),
        kind: Kind::Direct,
        sent_ms: 0,
        text: format!("m{seq}"),
        at_ms: 0,
        hole: false,
    }
}

#[test]
fn a_log_ends_before_a_message_taken_after_a_hole() {
    let now = Now {
        mono: Instant::ZERO,
        wall: UnixTime(1_800_000_000),
    };
    // m2's append failed and the node stopped; m3's, queued behind it, reached the file.
    let good = log_of(&[
        PeerRecord::Identity { id: "a11ce".into() },
        PeerRecord::Incarnation { inc: 1 },
        received(1, 0),
    ]);
    let mut log = good.clone();
    log.extend_from_slice(&log_of(&[received(3, 2), received(4, 3)]));
    let d = Direct::start_with_logs(node(), now, 1, BTreeMap::from([(LOG.to_string(), log)]));
    assert_eq!(
        d.node.state().marks.get("b0b"),
        Some(&id(1)),
        "m3 and m4 are not taken"
    );
    let texts: Vec<&str> = d.node.state().entries.iter().map(|e| &*e.text).collect();
    assert_eq!(texts, ["m1"]);
    let cut = d.events.iter().find_map(|e| match e {
        PeerEvent::Ready { cut, records, .. } => Some((*records, *cut)),
        _ => None,
    });
    assert_eq!(cut.map(|(r, _)| r), Some(3));
    assert!(
        cut.is_some_and(|(_, c)| c > 0),
        "the tail after the hole is cut"
    );
    // What the file holds now: the records before the hole, then this start's.
    assert!(d.logs[LOG].starts_with(&good));
    // A skip that covers the mark follows; one that starts past it does not.
    let skip = |prev, through| PeerRecord::Skipped {
        from: "b0b".into(),
        prev: id(prev),
        through: id(through),
    };
    assert!(d.node.state().follows(&skip(0, 3)));
    assert!(!d.node.state().follows(&skip(2, 3)));
    assert!(!d.node.state().follows(&skip(0, 1)), "already past it");
}

#[test]
fn unread_counts_follow_messages_taken_and_read_markers() {
    use weaprous_core::p2p::history::State;
    let mut s = State::new();
    s.apply(&PeerRecord::Identity { id: "a11ce".into() });
    for seq in 1..=3 {
        s.apply(&received(seq, seq - 1));
    }
    s.apply(&PeerRecord::Sent {
        id: MsgId { inc: 1, seq: 1 },
        kind: Kind::Direct,
        to: vec!["b0b".into()],
        text: "mine".into(),
        sent_ms: 0,
        expires_ms: 1,
    });
    assert_eq!(s.unread("peer:b0b"), 3, "my own message is not unread");
    s.apply(&PeerRecord::Read {
        conv: "peer:b0b".into(),
        upto: 2,
    });
    assert_eq!(s.unread("peer:b0b"), 1);
    assert_eq!(s.unread("broadcast"), 0);
    s.apply(&PeerRecord::Read {
        conv: "peer:b0b".into(),
        upto: 1,
    });
    assert_eq!(s.unread("peer:b0b"), 1, "a read marker never goes back");
}
