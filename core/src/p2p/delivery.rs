//! Delivery between peers: at least once on the wire, exactly once to the user, in each
//! sender's order, and never a message that silently vanishes. Pure values; the peer node
//! ([`super::node`]) persists what they decide.
//!
//! # Chains
//! Every message has an id ([`MsgId`]: the origin's incarnation and a sequence). For each
//! recipient, the origin keeps a **chain**: every message it addressed to that recipient, each
//! naming the one before it (`prev`). A direct message joins one chain; a broadcast joins the
//! chain of every recipient (the active peers when it was sent), under one id.
//!
//! * The sender ([`Outbox`]) sends a chain's entries in order and sends them again on every new
//!   link, from the receiver's sync point (`Hello.have`), until a cumulative `Ack` covers them.
//! * The receiver ([`Inbox`]) keeps one **mark** per origin: the last entry it took. It takes a
//!   message only when its `prev` is the mark, so it never shows one twice and shows them in
//!   the sender's order; anything at or below the mark is a duplicate, answered with the mark
//!   again. It acknowledges the mark only once what it took is durable, and a new link's
//!   `Hello` carries its durable mark: that is the sync exchange that repairs what a broken
//!   link lost.
//! * A message not acknowledged by its expiry **fails**: the sender shows it failed and, in
//!   its place in the chain, sends `Gone{prev, through}`: "what follows `prev` up to `through`
//!   will not come". Consecutive failures merge into one `Gone`, so a peer that stays away
//!   costs one entry, not one per message. A receiver whose mark lies in `[prev, through)`
//!   moves it to `through`, so a failed message never holds back the sender's later ones.
//!   "Failed" means "not acknowledged before its expiry": a copy already on the wire may
//!   still arrive (its receiver then shows it once), and an `Ack` cannot tell the sender
//!   whether it covers the message or the `Gone` in its place, so failed stays failed.
//! * A `prev` that is not the mark is a **hole**: a message the chain says was sent never came.
//!   Correct peers never make one (entries leave the outbox only when acknowledged, and a
//!   `Gone` takes a failed message's place). The receiver takes the message anyway and says
//!   so ([`Taken::Hole`]), rather than hold the sender's messages back for good.
//!
//! # Limits
//! At most [`MAX_CHAIN`] entries wait per recipient: a direct message to a peer whose chain is
//! full is refused (the user is told at once), and a broadcast fails at once for that
//! recipient alone, so one peer that never comes back cannot block the others. Marks are one
//! id per origin.

use super::wire::{Frame, Kind, MsgId};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// The most entries waiting in one recipient's chain.
pub const MAX_CHAIN: usize = 1000;

/// A peer, by its id.
pub type PeerId = String;

/// A message as its origin holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMsg {
    pub id: MsgId,
    pub kind: Kind,
    pub sent_ms: u64,
    /// After this (the origin's Unix ms) it fails.
    pub expires_ms: u64,
    pub text: Arc<str>,
}

/// One entry of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Msg { msg: OutMsg, prev: MsgId },
    Gone { prev: MsgId, through: MsgId },
}

impl Entry {
    /// Where the entry ends in the chain: what an `Ack` must reach to cover it.
    fn key(&self) -> MsgId {
        match self {
            Entry::Msg { msg, .. } => msg.id,
            Entry::Gone { through, .. } => *through,
        }
    }
    fn frame(&self) -> Frame {
        match self {
            Entry::Msg { msg, prev } => Frame::Msg {
                id: msg.id,
                prev: *prev,
                kind: msg.kind,
                sent_ms: msg.sent_ms,
                text: msg.text.to_string(),
            },
            Entry::Gone { prev, through } => Frame::Gone {
                prev: *prev,
                through: *through,
            },
        }
    }
}

/// One recipient's chain (module docs).
#[derive(Clone, Debug, Default)]
struct Chain {
    /// The last entry ever added: the next one's `prev`.
    last: MsgId,
    queue: VecDeque<Entry>,
    /// While a link is up: the key of the last entry written on it.
    sent: Option<MsgId>,
}

/// What an acknowledgement settled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acked {
    /// Messages now known delivered.
    pub delivered: Vec<MsgId>,
}

/// Why a message was not queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// [`MAX_CHAIN`] entries already wait for that peer.
    Full,
}

/// The sender's side: every recipient's chain. After any change, [`Outbox::unsent`] gives
/// the frames a live link to that recipient must carry next.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    chains: BTreeMap<PeerId, Chain>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Adds `msg` to `to`'s chain.
    pub fn push(&mut self, to: &str, msg: OutMsg) -> Result<(), Refused> {
        let chain = self.chains.entry(to.to_string()).or_default();
        if chain.queue.len() >= MAX_CHAIN {
            return Err(Refused::Full);
        }
        let entry = Entry::Msg {
            prev: chain.last,
            msg,
        };
        chain.last = entry.key();
        chain.queue.push_back(entry);
        Ok(())
    }

    /// Adds `msg` to `to`'s chain as failed at once (a broadcast to a peer whose chain is
    /// full): the chain carries a `Gone` for it.
    pub fn push_failed(&mut self, to: &str, id: MsgId) {
        let chain = self.chains.entry(to.to_string()).or_default();
        let prev = chain.last;
        chain.last = id;
        push_gone(chain, prev, id);
    }

    /// A link to `to` is up and its `Hello` says it took everything up to `have`: what that
    /// settles, and every frame to (re)send, in order.
    pub fn link_up(&mut self, to: &str, have: MsgId) -> (Acked, Vec<Frame>) {
        let acked = self.ack(to, have);
        self.chains.entry(to.to_string()).or_default().sent = Some(have);
        (acked, self.unsent(to))
    }

    /// The link to `to` is gone: its unacknowledged entries go again on the next one.
    pub fn link_down(&mut self, to: &str) {
        if let Some(c) = self.chains.get_mut(to) {
            c.sent = None;
        }
    }

    /// `to` took everything up to `upto`.
    pub fn ack(&mut self, to: &str, upto: MsgId) -> Acked {
        let mut acked = Acked::default();
        if let Some(chain) = self.chains.get_mut(to) {
            while chain.queue.front().is_some_and(|e| e.key() <= upto) {
                if let Some(Entry::Msg { msg, .. }) = chain.queue.pop_front() {
                    acked.delivered.push(msg.id);
                }
            }
        }
        acked
    }

    /// Fails every message whose expiry is at or before `now_ms`: `(recipient, id)` for each,
    /// each recipient's in chain order.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(PeerId, MsgId)> {
        let mut failed = Vec::new();
        for (peer, chain) in &mut self.chains {
            let due = chain
                .queue
                .iter()
                .any(|e| matches!(e, Entry::Msg { msg, .. } if msg.expires_ms <= now_ms));
            if !due {
                continue;
            }
            let old = std::mem::take(&mut chain.queue);
            for entry in old {
                match entry {
                    Entry::Msg { msg, prev } if msg.expires_ms <= now_ms => {
                        failed.push((peer.clone(), msg.id));
                        push_gone(chain, prev, msg.id);
                    }
                    Entry::Gone { prev, through } => push_gone(chain, prev, through),
                    other => chain.queue.push_back(other),
                }
            }
        }
        failed
    }

    /// Messages whose expiry is at or before `now_ms`, still waiting, `(recipient, id)`: what
    /// a node fails durably before it tells anyone ([`Outbox::fail`] then, on the record's
    /// replay too).
    pub fn expired(&self, now_ms: u64) -> Vec<(PeerId, MsgId)> {
        let mut out = Vec::new();
        for (peer, chain) in &self.chains {
            for e in &chain.queue {
                if let Entry::Msg { msg, .. } = e {
                    if msg.expires_ms <= now_ms {
                        out.push((peer.clone(), msg.id));
                    }
                }
            }
        }
        out
    }

    /// The earliest expiry after `now_ms` of a waiting message.
    pub fn next_expiry_after(&self, now_ms: u64) -> Option<u64> {
        self.chains
            .values()
            .flat_map(|c| c.queue.iter())
            .filter_map(|e| match e {
                Entry::Msg { msg, .. } if msg.expires_ms > now_ms => Some(msg.expires_ms),
                _ => None,
            })
            .min()
    }

    /// Fails `id` in `to`'s chain if it still waits there (replaying a failure the log
    /// holds); whether it did.
    pub fn fail(&mut self, to: &str, id: MsgId) -> bool {
        let Some(chain) = self.chains.get_mut(to) else {
            return false;
        };
        let waits = chain
            .queue
            .iter()
            .any(|e| matches!(e, Entry::Msg { msg, .. } if msg.id == id));
        if !waits {
            return false;
        }
        let old = std::mem::take(&mut chain.queue);
        for entry in old {
            match entry {
                Entry::Msg { msg, prev } if msg.id == id => push_gone(chain, prev, msg.id),
                Entry::Gone { prev, through } => push_gone(chain, prev, through),
                other => chain.queue.push_back(other),
            }
        }
        true
    }

    /// The frames a live link to `to` carries next: every entry past what it has written (a
    /// `Gone` merged from written and unwritten entries goes out whole: its receiver's mark
    /// lies inside it). Nothing while no link is up.
    pub fn unsent(&mut self, to: &str) -> Vec<Frame> {
        let Some(chain) = self.chains.get_mut(to) else {
            return Vec::new();
        };
        let Some(sent) = chain.sent else {
            return Vec::new();
        };
        let frames: Vec<Frame> = chain
            .queue
            .iter()
            .filter(|e| e.key() > sent)
            .map(Entry::frame)
            .collect();
        if let Some(back) = chain.queue.back() {
            chain.sent = Some(back.key().max(sent));
        }
        frames
    }

    /// The earliest expiry of a waiting message (origin Unix ms).
    pub fn next_expiry(&self) -> Option<u64> {
        self.chains
            .values()
            .flat_map(|c| c.queue.iter())
            .filter_map(|e| match e {
                Entry::Msg { msg, .. } => Some(msg.expires_ms),
                Entry::Gone { .. } => None,
            })
            .min()
    }

    /// Entries waiting for `to` (messages and `Gone`s).
    pub fn waiting(&self, to: &str) -> usize {
        self.chains.get(to).map_or(0, |c| c.queue.len())
    }

    /// Messages waiting for `to`, in order.
    pub fn waiting_ids(&self, to: &str) -> Vec<MsgId> {
        self.chains.get(to).map_or_else(Vec::new, |c| {
            c.queue
                .iter()
                .filter_map(|e| match e {
                    Entry::Msg { msg, .. } => Some(msg.id),
                    Entry::Gone { .. } => None,
                })
                .collect()
        })
    }

    /// Recipients with entries waiting.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.chains
            .iter()
            .filter(|(_, c)| !c.queue.is_empty())
            .map(|(p, _)| p.as_str())
    }

    /// Panics unless every chain is in order and links each entry to the one before.
    pub fn check_invariants(&self) {
        for (peer, chain) in &self.chains {
            assert!(
                chain.queue.len() <= MAX_CHAIN + 1,
                "{peer}: chain over its limit"
            );
            let mut prev_key: Option<MsgId> = None;
            for e in &chain.queue {
                let (prev, key) = match e {
                    Entry::Msg { msg, prev } => (*prev, msg.id),
                    Entry::Gone { prev, through } => (*prev, *through),
                };
                assert!(prev < key, "{peer}: an entry before its prev");
                if let Some(k) = prev_key {
                    assert_eq!(prev, k, "{peer}: a chain with a hole");
                }
                prev_key = Some(key);
            }
            if let Some(back) = chain.queue.back() {
                assert_eq!(back.key(), chain.last, "{peer}: the chain's end");
            }
        }
    }
}

/// Appends a `Gone{prev, through}`, merged with a `Gone` it continues.
fn push_gone(chain: &mut Chain, prev: MsgId, through: MsgId) {
    if let Some(Entry::Gone { through: t, .. }) = chain.queue.back_mut() {
        if *t == prev {
            *t = through;
            return;
        }
    }
    chain.queue.push_back(Entry::Gone { prev, through });
}

/// What the receiver made of an entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    /// It follows the mark: show it (a `Gone`: nothing to show); the mark moved to it.
    Next,
    /// At or below the mark: seen already. Answer the mark again.
    Duplicate,
    /// It does not follow the mark (module docs): taken anyway, the mark moved, and the gap
    /// is reported.
    Hole,
}

/// The receiver's side: one mark per origin.
#[derive(Clone, Debug, Default)]
pub struct Inbox {
    marks: BTreeMap<PeerId, MsgId>,
}

impl Inbox {
    pub fn new() -> Inbox {
        Inbox::default()
    }

    /// The last entry taken from `from`.
    pub fn mark(&self, from: &str) -> MsgId {
        self.marks.get(from).copied().unwrap_or(MsgId::NONE)
    }

    /// A message `id` from `from` whose chain names `prev` before it.
    pub fn take_msg(&mut self, from: &str, id: MsgId, prev: MsgId) -> Taken {
        let mark = self.mark(from);
        if id <= mark {
            return Taken::Duplicate;
        }
        self.marks.insert(from.to_string(), id);
        if prev == mark {
            Taken::Next
        } else {
            Taken::Hole
        }
    }

    /// `Gone{prev, through}` from `from`.
    pub fn take_gone(&mut self, from: &str, prev: MsgId, through: MsgId) -> Taken {
        let mark = self.mark(from);
        if through <= mark {
            return Taken::Duplicate;
        }
        self.marks.insert(from.to_string(), through);
        if prev <= mark {
            Taken::Next
        } else {
            Taken::Hole
        }
    }

    /// Sets `from`'s mark (replaying the log).
    pub fn set_mark(&mut self, from: &str, mark: MsgId) {
        self.marks.insert(from.to_string(), mark);
    }

    pub fn origins(&self) -> usize {
        self.marks.len()
    }
}
