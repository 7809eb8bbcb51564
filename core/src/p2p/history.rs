//! A peer node's durable state: its identity, the peers it knows, every message it sent and
//! took, and each sent message's fate per recipient. The node's log holds [`PeerRecord`]s;
//! [`State::apply`] turns each into state, the same way when the log is read at start and
//! when a record is new.
//!
//! Which records are applied before they are durable, and which after, is the node's rule
//! ([`super::node`]): what a user or a peer is told (a message sent, a message taken) is
//! applied after its sync; what only settles an outcome (delivered, failed) is applied at
//! once and written lazily, because losing it in a crash only makes a message go again, and
//! its receiver drops the copy.

use super::delivery::{OutMsg, Outbox, PeerId, Refused};
use super::wire::{Kind, MsgId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The log a peer node keeps.
pub const LOG: &str = "p2p";
/// The largest record.
pub const MAX_RECORD: usize = 64 * 1024;
/// The most peers a node keeps in its directory.
pub const MAX_PEERS: usize = 1024;

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRecord {
    /// The node's peer id, made on its first start.
    Identity { id: String },
    /// A start: ids minted from now on carry this incarnation.
    Incarnation { inc: u64 },
    /// A peer's name and where it was last reached.
    Peer {
        id: String,
        name: String,
        addr: Option<String>,
    },
    /// A message this node sent, to `to` (one peer, or every recipient of a broadcast).
    Sent {
        id: MsgId,
        kind: Kind,
        to: Vec<String>,
        text: String,
        sent_ms: u64,
        expires_ms: u64,
    },
    /// `to` took everything this node sent it up to `upto`.
    Delivered { to: String, upto: MsgId },
    /// `id` was not acknowledged by `to` before it expired.
    Failed { to: String, id: MsgId },
    /// A message taken from `from`.
    Received {
        from: String,
        id: MsgId,
        prev: MsgId,
        kind: Kind,
        sent_ms: u64,
        text: String,
        /// This node's wall clock when it took it (Unix ms).
        at_ms: u64,
        /// Its `prev` was not the mark: something before it never came.
        hole: bool,
    },
    /// `from` said its messages after `prev` up to `through` will not come.
    Skipped {
        from: String,
        prev: MsgId,
        through: MsgId,
    },
    /// The user read conversation `conv` up to entry `upto`.
    Read { conv: String, upto: u64 },
}

/// What became of a sent message, for one recipient.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    Pending,
    Delivered,
    Failed,
}

/// One message in the history, sent or taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its place in this node's history (from 1).
    pub n: u64,
    /// Who wrote it: this node's id, or the peer's.
    pub origin: String,
    pub id: MsgId,
    pub kind: Kind,
    pub text: Arc<str>,
    pub sent_ms: u64,
    /// For a sent message: its fate per recipient.
    pub fates: BTreeMap<String, Fate>,
    pub hole: bool,
}

/// A peer this node knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub addr: Option<String>,
}

/// The conversation a message belongs to: `peer:ID` for direct messages, `broadcast`.
pub fn conversation(kind: Kind, other: &str) -> String {
    match kind {
        Kind::Direct => format!("peer:{other}"),
        Kind::Broadcast => "broadcast".to_string(),
    }
}

/// The node's durable state (module docs).
#[derive(Clone, Debug, Default)]
pub struct State {
    pub id: Option<String>,
    pub incarnation: u64,
    pub peers: BTreeMap<PeerId, Known>,
    pub outbox: Outbox,
    /// The last entry taken from each peer, as the log holds it.
    pub marks: BTreeMap<PeerId, MsgId>,
    pub entries: Vec<Entry>,
    /// Sent messages by id: their index in `entries`.
    sent: BTreeMap<MsgId, usize>,
    /// Read markers by conversation.
    pub read: BTreeMap<String, u64>,
    /// The places (`n`) of the messages taken from others, by conversation, in order: an
    /// unread count is a search, not a walk of the whole history (it is asked for on every
    /// message taken).
    taken_in: BTreeMap<String, Vec<u64>>,
    /// Records applied.
    pub records: u64,
}

/// What applying a record changed that observers see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// A new history entry (its index).
    Entry(usize),
    /// Sent messages whose fate for `to` changed.
    Fates {
        to: String,
        ids: Vec<MsgId>,
        fate: Fate,
    },
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    fn push_entry(&mut self, mut e: Entry) -> usize {
        e.n = self.entries.len() as u64 + 1;
        if self.id.as_deref() != Some(e.origin.as_str()) {
            let conv = self.conversation_of(&e);
            self.taken_in.entry(conv).or_default().push(e.n);
        }
        self.entries.push(e);
        self.entries.len() - 1
    }

    /// Makes `record` state.
    pub fn apply(&mut self, record: &PeerRecord) -> Change {
        self.records += 1;
        match record {
            PeerRecord::Identity { id } => {
                self.id = Some(id.clone());
                Change::None
            }
            PeerRecord::Incarnation { inc } => {
                self.incarnation = self.incarnation.max(*inc);
                Change::None
            }
            PeerRecord::Peer { id, name, addr } => {
                if self.peers.len() < MAX_PEERS || self.peers.contains_key(id) {
                    self.peers.insert(
                        id.clone(),
                        Known {
                            name: name.clone(),
                            addr: addr.clone(),
                        },
                    );
                }
                Change::None
            }
            PeerRecord::Sent {
                id,
                kind,
                to,
                text,
                sent_ms,
                expires_ms,
            } => {
                let text: Arc<str> = Arc::from(text.as_str());
                let mut fates = BTreeMap::new();
                for peer in to {
                    let msg = OutMsg {
                        id: *id,
                        kind: *kind,
                        sent_ms: *sent_ms,
                        expires_ms: *expires_ms,
                        text: text.clone(),
                    };
                    let fate = match self.outbox.push(peer, msg) {
                        Ok(()) => Fate::Pending,
                        Err(Refused::Full) => {
                            self.outbox.push_failed(peer, *id);
                            Fate::Failed
                        }
                    };
                    fates.insert(peer.clone(), fate);
                }
                let origin = self.id.clone().unwrap_or_default();
                let i = self.push_entry(Entry {
                    n: 0,
                    origin,
                    id: *id,
                    kind: *kind,
                    text,
                    sent_ms: *sent_ms,
                    fates,
                    hole: false,
                });
                self.sent.insert(*id, i);
                Change::Entry(i)
            }
            PeerRecord::Delivered { to, upto } => {
                let ids = self.outbox.ack(to, *upto).delivered;
                self.set_fates(to, &ids, Fate::Delivered)
            }
            PeerRecord::Failed { to, id } => {
                self.outbox.fail(to, *id);
                self.set_fates(to, &[*id], Fate::Failed)
            }
            PeerRecord::Received {
                from,
                id,
                kind,
                sent_ms,
                text,
                hole,
                ..
            } => {
                self.marks.insert(from.clone(), *id);
                let i = self.push_entry(Entry {
                    n: 0,
                    origin: from.clone(),
                    id: *id,
                    kind: *kind,
                    text: Arc::from(text.as_str()),
                    sent_ms: *sent_ms,
                    fates: BTreeMap::new(),
                    hole: *hole,
                });
                Change::Entry(i)
            }
            PeerRecord::Skipped { from, through, .. } => {
                let mark = self.marks.entry(from.clone()).or_default();
                *mark = (*mark).max(*through);
                Change::None
            }
            PeerRecord::Read { conv, upto } => {
                let r = self.read.entry(conv.clone()).or_default();
                *r = (*r).max(*upto);
                Change::None
            }
        }
    }

    /// Whether `record` can come next in the log: a message taken follows the last one taken
    /// from its sender (or says it did not), and a skip covers that point. One that does not
    /// follow was appended after an append that failed: the node stopped at that failure
    /// before anything after it was answered, and the log ends before it (module docs of
    /// [`super::node`]).
    pub fn follows(&self, record: &PeerRecord) -> bool {
        match record {
            PeerRecord::Received {
                from, prev, hole, ..
            } => *hole || self.marks.get(from).copied().unwrap_or_default() == *prev,
            PeerRecord::Skipped {
                from,
                prev,
                through,
            } => {
                let mark = self.marks.get(from).copied().unwrap_or_default();
                *prev <= mark && mark < *through
            }
            _ => true,
        }
    }

    fn set_fates(&mut self, to: &str, ids: &[MsgId], fate: Fate) -> Change {
        let mut changed = Vec::new();
        for id in ids {
            if let Some(e) = self.sent.get(id).and_then(|&i| self.entries.get_mut(i)) {
                if let Some(f) = e.fates.get_mut(to) {
                    if *f == Fate::Pending {
                        *f = fate;
                        changed.push(*id);
                    }
                }
            }
        }
        if changed.is_empty() {
            return Change::None;
        }
        Change::Fates {
            to: to.to_string(),
            ids: changed,
            fate,
        }
    }

    /// A sent message's entry.
    pub fn sent_entry(&self, id: MsgId) -> Option<&Entry> {
        self.sent.get(&id).and_then(|&i| self.entries.get(i))
    }

    /// The conversation an entry belongs to, seen from this node.
    pub fn conversation_of(&self, e: &Entry) -> String {
        let me = self.id.as_deref().unwrap_or("");
        let other = if e.origin == me {
            e.fates.keys().next().map_or("", String::as_str)
        } else {
            e.origin.as_str()
        };
        conversation(e.kind, other)
    }

    /// Entries taken from others in `conv` after its read marker.
    pub fn unread(&self, conv: &str) -> usize {
        let read = self.read.get(conv).copied().unwrap_or(0);
        self.taken_in
            .get(conv)
            .map_or(0, |ns| ns.len() - ns.partition_point(|&n| n <= read))
    }

    /// A name for `peer`: its known name, else its id.
    pub fn name_of(&self, peer: &str) -> String {
        self.peers
            .get(peer)
            .map_or_else(|| peer.to_string(), |k| k.name.clone())
    }

    /// An entry as the API shows it.
    pub fn entry_json(&self, e: &Entry) -> serde_json::Value {
        let fates: serde_json::Map<String, serde_json::Value> = e
            .fates
            .iter()
            .map(|(p, f)| (p.clone(), serde_json::to_value(f).unwrap_or_default()))
            .collect();
        serde_json::json!({
            "n": e.n,
            "id": e.id.to_string(),
            "from": e.origin,
            "from_name": if Some(e.origin.as_str()) == self.id.as_deref() { "me".to_string() } else { self.name_of(&e.origin) },
            "kind": e.kind,
            "conversation": self.conversation_of(e),
            "text": &*e.text,
            "sent_ms": e.sent_ms,
            "fates": fates,
            "hole": e.hole,
        })
    }
}
