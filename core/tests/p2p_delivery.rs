//! Delivery between two peers as a model: a sender's outbox, a receiver's inbox with a durable
//! mark, and a link that drops, carries frames in order, or loses what is in flight; the
//! receiver may crash and lose what it had not synced. Whatever happens, the receiver shows
//! each message at most once and in send order, never finds a hole, and after healing every
//! message is shown or failed at its sender.

use proptest::prelude::*;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use weaprous_core::p2p::delivery::{Inbox, OutMsg, Outbox, Refused, Taken, MAX_CHAIN};
use weaprous_core::p2p::wire::{Frame, Kind, MsgId};

const B: &str = "bob";
const A: &str = "alice";

#[derive(Default)]
struct World {
    outbox: Outbox,
    inbox: Inbox,
    durable_mark: MsgId,
    /// What bob shows: synced, and taken but not yet synced.
    shown: Vec<MsgId>,
    shown_durable: usize,
    link: bool,
    to_bob: VecDeque<Frame>,
    to_alice: VecDeque<Frame>,
    next_seq: u64,
    inc: u64,
    now_ms: u64,
    pushed: Vec<MsgId>,
    delivered: BTreeSet<MsgId>,
    failed: BTreeSet<MsgId>,
}

impl World {
    fn new() -> World {
        World {
            inc: 1,
            ..World::default()
        }
    }
    fn push(&mut self, ttl_ms: u64) {
        self.next_seq += 1;
        let id = MsgId {
            inc: self.inc,
            seq: self.next_seq,
        };
        let msg = OutMsg {
            id,
            kind: Kind::Direct,
            sent_ms: self.now_ms,
            expires_ms: self.now_ms + ttl_ms,
            text: Arc::from(format!("m{}", id)),
        };
        match self.outbox.push(B, msg) {
            Ok(()) => self.pushed.push(id),
            Err(Refused::Full) => return,
        }
        self.flush();
    }
    /// Alice's restart: a new incarnation (her outbox is durable).
    fn alice_restarts(&mut self) {
        self.link_down();
        self.inc += 1;
        self.next_seq = 0;
    }
    fn flush(&mut self) {
        if self.link {
            let frames = self.outbox.unsent(B);
            self.to_bob.extend(frames);
        }
    }
    fn link_up(&mut self) {
        if self.link {
            return;
        }
        self.link = true;
        let (acked, frames) = self.outbox.link_up(B, self.durable_mark);
        self.delivered_now(acked.delivered);
        self.to_bob.extend(frames);
    }
    fn link_down(&mut self) {
        self.link = false;
        self.to_bob.clear();
        self.to_alice.clear();
        self.outbox.link_down(B);
    }
    fn delivered_now(&mut self, ids: Vec<MsgId>) {
        for id in ids {
            assert!(
                self.shown[..self.shown_durable].contains(&id),
                "{id} acknowledged before bob holds it durably"
            );
            assert!(!self.failed.contains(&id), "{id} failed and delivered");
            assert!(self.delivered.insert(id), "{id} delivered twice");
        }
    }
    fn bob_reads(&mut self, n: usize) {
        for _ in 0..n {
            let Some(f) = self.to_bob.pop_front() else {
                return;
            };
            match f {
                Frame::Msg { id, prev, .. } => match self.inbox.take_msg(A, id, prev) {
                    Taken::Next => self.shown.push(id),
                    Taken::Duplicate => self.to_alice.push_back(Frame::Ack {
                        id: self.durable_mark,
                    }),
                    Taken::Hole => panic!("a hole before {id} (prev {prev})"),
                },
                Frame::Gone { prev, through } => {
                    let t = self.inbox.take_gone(A, prev, through);
                    assert_ne!(t, Taken::Hole, "a hole before gone {prev}..{through}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
    fn bob_syncs(&mut self) {
        self.durable_mark = self.inbox.mark(A);
        self.shown_durable = self.shown.len();
        if self.link {
            self.to_alice.push_back(Frame::Ack {
                id: self.durable_mark,
            });
        }
    }
    fn bob_crashes(&mut self) {
        self.link_down();
        self.shown.truncate(self.shown_durable);
        self.inbox = Inbox::new();
        self.inbox.set_mark(A, self.durable_mark);
    }
    fn alice_reads(&mut self, n: usize) {
        for _ in 0..n {
            let Some(Frame::Ack { id }) = self.to_alice.pop_front() else {
                return;
            };
            let acked = self.outbox.ack(B, id);
            self.delivered_now(acked.delivered);
        }
    }
    fn tick(&mut self, ms: u64) {
        self.now_ms += ms;
        for (peer, id) in self.outbox.expire(self.now_ms) {
            assert_eq!(peer, B);
            assert!(!self.delivered.contains(&id));
            assert!(self.failed.insert(id), "{id} failed twice");
        }
        self.flush();
    }
    fn check(&self) {
        self.outbox.check_invariants();
        let mut sorted = self.shown.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, self.shown, "bob shows in send order, once each");
        assert!(self.outbox.waiting(B) <= MAX_CHAIN + 1);
    }
    /// Heal: link up, exchange until quiet, then every message is shown or failed.
    fn heal(&mut self) {
        self.link_up();
        for _ in 0..10_000 {
            if self.to_bob.is_empty() && self.to_alice.is_empty() {
                self.bob_syncs();
                self.alice_reads(usize::MAX);
                if self.to_alice.is_empty() && self.to_bob.is_empty() {
                    break;
                }
            }
            self.bob_reads(1);
            self.alice_reads(1);
            self.check();
        }
        self.check();
        assert!(self.outbox.waiting_ids(B).is_empty(), "still waiting");
        for id in &self.pushed {
            let shown = self.shown.contains(id);
            let failed = self.failed.contains(id);
            assert!(shown || failed, "{id} neither shown nor failed");
            if self.delivered.contains(id) {
                assert!(shown);
            }
            if !failed {
                assert!(
                    self.delivered.contains(id),
                    "{id} shown but never acknowledged"
                );
            }
        }
    }
}

fn run(ops: &[(u8, u8)]) {
    let mut w = World::new();
    for &(op, arg) in ops {
        match op % 10 {
            0 | 1 => w.push(u64::from(arg) * 20 + 1),
            2 => w.link_up(),
            3 => w.link_down(),
            4 | 5 => w.bob_reads(usize::from(arg % 4) + 1),
            6 => w.alice_reads(usize::from(arg % 4) + 1),
            7 => w.bob_syncs(),
            8 => {
                if arg % 4 == 0 {
                    w.bob_crashes()
                } else if arg % 4 == 1 {
                    w.alice_restarts()
                } else {
                    w.tick(u64::from(arg))
                }
            }
            _ => w.tick(u64::from(arg) * 3),
        }
        w.check();
    }
    w.heal();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..Default::default() })]
    #[test]
    fn two_peers_deliver_exactly_once_in_order_or_fail_whatever_the_link_does(
        ops in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..200)
    ) {
        run(&ops);
    }
}

#[test]
fn a_failed_message_becomes_a_gone_that_lets_later_messages_through() {
    let mut w = World::new();
    w.push(10); // expires at 10
    w.push(1000);
    w.push(10);
    w.push(10);
    w.push(1000);
    w.tick(10);
    assert_eq!(w.failed.len(), 3);
    w.link_up();
    // Gone, m2, Gone (the two failures merged), m5.
    let kinds: Vec<&str> = w
        .to_bob
        .iter()
        .map(|f| match f {
            Frame::Gone { .. } => "gone",
            Frame::Msg { .. } => "msg",
            _ => "?",
        })
        .collect();
    assert_eq!(kinds, ["gone", "msg", "gone", "msg"]);
    w.heal();
    assert_eq!(w.shown.len(), 2);
}

#[test]
fn a_full_chain_refuses_and_a_broadcast_fails_for_that_recipient_alone() {
    let mut o = Outbox::new();
    let msg = |seq| OutMsg {
        id: MsgId { inc: 1, seq },
        kind: Kind::Broadcast,
        sent_ms: 0,
        expires_ms: 1_000,
        text: Arc::from("x"),
    };
    for seq in 1..=MAX_CHAIN as u64 {
        o.push(B, msg(seq)).unwrap();
    }
    let next = MAX_CHAIN as u64 + 1;
    assert_eq!(o.push(B, msg(next)), Err(Refused::Full));
    o.push_failed(B, msg(next).id);
    o.push(A, msg(next)).unwrap();
    o.check_invariants();
    assert_eq!(o.waiting(A), 1);
    // Bob's link carries the failure as a Gone after the thousand.
    let (_, frames) = o.link_up(B, MsgId::NONE);
    assert_eq!(frames.len(), MAX_CHAIN + 1);
    assert!(matches!(frames.last(), Some(Frame::Gone { through, .. }) if through.seq == next));
}

#[test]
fn the_receiver_takes_a_gone_whose_range_holds_its_mark() {
    let mut inbox = Inbox::new();
    let id = |seq| MsgId { inc: 1, seq };
    assert_eq!(inbox.take_msg(A, id(1), MsgId::NONE), Taken::Next);
    assert_eq!(inbox.take_msg(A, id(1), MsgId::NONE), Taken::Duplicate);
    // m2 was on the wire when it failed, and arrived: the merged Gone{1..3} still applies.
    assert_eq!(inbox.take_msg(A, id(2), id(1)), Taken::Next);
    assert_eq!(inbox.take_gone(A, id(1), id(3)), Taken::Next);
    assert_eq!(inbox.mark(A), id(3));
    assert_eq!(inbox.take_gone(A, id(1), id(3)), Taken::Duplicate);
    assert_eq!(inbox.take_msg(A, id(4), id(3)), Taken::Next);
    // A message whose prev never came is a hole, taken and reported.
    assert_eq!(inbox.take_msg(A, id(9), id(7)), Taken::Hole);
    assert_eq!(inbox.mark(A), id(9));
}
