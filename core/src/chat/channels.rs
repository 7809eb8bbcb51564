//! Channels and messages.
//!
//! # Order and ids
//! Every message has a **sequence number** dense within its channel (1, 2, 3, ...) and a
//! **position** dense across the server (the id of its event on the live stream, so one
//! `Last-Event-ID` resumes every channel at once). Both are assigned when a post is accepted
//! ([`Chat::post`]) and become history when its log record is applied ([`Chat::apply`]), after
//! the sync that makes it durable. Records apply in the order they were assigned; replaying the
//! log at start applies the same records the same way, so a restart rebuilds the same state.
//! If an append fails, the owner rebuilds from the log ([`Chat::new`] plus `apply` for each
//! record): numbers handed out for posts that never became durable are then handed out again,
//! and since those posts were never acknowledged, nobody saw them.
//!
//! # Idempotent posts
//! A client may name a transaction id. A post repeating an (author, id) pair that is already
//! history gets the original message back ([`Posted::Duplicate`]); one repeating a pair still
//! waiting for its sync is told so ([`Posted::InFlight`]) and answered when that one is. The
//! table of ids remembers the last [`MAX_TXNS`] (older retries are new posts: a client retries
//! within seconds, not after a hundred thousand messages).
//!
//! # What a post may be
//! Text of 1 to [`MAX_TEXT_CHARS`] characters that is not only whitespace, with no control
//! characters but line feed and tab (a carriage return is dropped, so CRLF from a textarea
//! reads as LF). Longer text is refused ([`ChatError::TooLong`], 413), never cut. Channel
//! names are 1 to [`MAX_NAME`] of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit;
//! they are compared after lowercasing, so `General` is `general`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The longest message, in characters (Unicode scalar values).
pub const MAX_TEXT_CHARS: usize = 4000;
/// The longest channel name.
pub const MAX_NAME: usize = 64;
/// Transaction ids remembered for deduplication.
pub const MAX_TXNS: usize = 100_000;
/// The longest transaction id.
pub const MAX_TXN_LEN: usize = 128;
/// The most channels a server holds.
pub const MAX_CHANNELS: usize = 10_000;

/// One message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub channel: String,
    pub seq: u64,
    pub pos: u64,
    pub author: String,
    pub text: String,
    /// Server time, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
}

/// What the durable log holds, one per record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Channel {
        name: String,
        by: String,
        ts_ms: u64,
    },
    Message(Message),
}

/// Why a request was refused, with its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatError {
    NoChannel,
    Exists,
    /// Another request's creation of that name waits for its sync (it may yet fail): retry.
    BeingCreated,
    BadName,
    Empty,
    TooLong,
    ControlCharacter,
    BadTxn,
    TooManyChannels,
}

impl ChatError {
    pub fn status(&self) -> u16 {
        match self {
            ChatError::NoChannel => 404,
            ChatError::Exists | ChatError::BeingCreated => 409,
            ChatError::TooLong => 413,
            ChatError::TooManyChannels => 507,
            _ => 400,
        }
    }
    pub fn message(&self) -> String {
        match self {
            ChatError::NoChannel => "no such channel".into(),
            ChatError::Exists => "a channel with that name exists".into(),
            ChatError::BeingCreated => "a channel with that name is being created; retry".into(),
            ChatError::BadName => format!(
                "a channel name is 1 to {MAX_NAME} of a-z, 0-9, - and _, starting with a letter or digit"
            ),
            ChatError::Empty => "the message is empty".into(),
            ChatError::TooLong => format!("a message holds at most {MAX_TEXT_CHARS} characters"),
            ChatError::ControlCharacter => "the message holds a control character".into(),
            ChatError::BadTxn => format!("a transaction id is 1 to {MAX_TXN_LEN} visible ASCII characters"),
            ChatError::TooManyChannels => "the server holds as many channels as it may".into(),
        }
    }
}

/// The answer to [`Chat::post`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Posted {
    /// Accepted: append this record; the post is answered once it is applied.
    New(Record),
    /// Already history: answer with the original.
    Duplicate(Message),
    /// The same transaction waits for its sync: answer when (channel, seq) is applied.
    InFlight { channel: String, seq: u64 },
}

#[derive(Clone, Debug, Default)]
struct Channel {
    /// Who made it and when (kept for snapshots).
    by: String,
    ts_ms: u64,
    messages: Vec<Message>,
    /// The next sequence number to hand out (history plus posts waiting for their sync).
    next_seq: u64,
}

/// The chat state.
#[derive(Clone, Debug)]
pub struct Chat {
    channels: BTreeMap<String, Channel>,
    /// Names accepted but not yet applied.
    pending_channels: Vec<String>,
    next_pos: u64,
    applied_pos: u64,
    txns: BTreeMap<(String, String), (String, u64)>,
    txn_order: VecDeque<(String, String)>,
    in_flight: BTreeMap<(String, String), (String, u64)>,
}

/// A channel name, lowercased, if valid.
pub fn channel_name(raw: &str) -> Result<String, ChatError> {
    let name = raw.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(ChatError::BadName)
    }
}

/// The text of a post as stored, if valid.
pub fn message_text(raw: &str) -> Result<String, ChatError> {
    let text: String = raw.chars().filter(|&c| c != '\r').collect();
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ChatError::ControlCharacter);
    }
    if text.trim().is_empty() {
        return Err(ChatError::Empty);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ChatError::TooLong);
    }
    Ok(text)
}

impl Default for Chat {
    fn default() -> Self {
        Chat::new()
    }
}

impl Chat {
    /// An empty server (no channel yet: the owner creates `general` on first start).
    pub fn new() -> Chat {
        Chat {
            channels: BTreeMap::new(),
            pending_channels: Vec::new(),
            next_pos: 1,
            applied_pos: 0,
            txns: BTreeMap::new(),
            txn_order: VecDeque::new(),
            in_flight: BTreeMap::new(),
        }
    }

    /// Accepts a new channel: the record to append.
    pub fn create_channel(&mut self, raw: &str, by: &str, ts_ms: u64) -> Result<Record, ChatError> {
        let name = channel_name(raw)?;
        if self.channels.contains_key(&name) {
            return Err(ChatError::Exists);
        }
        if self.pending_channels.contains(&name) {
            return Err(ChatError::BeingCreated);
        }
        if self.channels.len() + self.pending_channels.len() >= MAX_CHANNELS {
            return Err(ChatError::TooManyChannels);
        }
        self.pending_channels.push(name.clone());
        Ok(Record::Channel {
            name,
            by: by.into(),
            ts_ms,
        })
    }

    /// Accepts a post by `author` (the authenticated user, never a field of the body).
    pub fn post(
        &mut self,
        author: &str,
        raw_channel: &str,
        raw_text: &str,
        txn: Option<&str>,
        ts_ms: u64,
    ) -> Result<Posted, ChatError> {
        let name = channel_name(raw_channel).map_err(|_| ChatError::NoChannel)?;
        if let Some(t) = txn {
            let visible = t.bytes().all(|b| (0x21..0x7f).contains(&b));
            if t.is_empty() || t.len() > MAX_TXN_LEN || !visible {
                return Err(ChatError::BadTxn);
            }
            let key = (author.to_string(), t.to_string());
            if let Some((ch, seq)) = self.txns.get(&key) {
                if let Some(m) = self.message(ch, *seq) {
                    return Ok(Posted::Duplicate(m.clone()));
                }
            }
            if let Some((channel, seq)) = self.in_flight.get(&key) {
                return Ok(Posted::InFlight {
                    channel: channel.clone(),
                    seq: *seq,
                });
            }
        }
        let text = message_text(raw_text)?;
        let ch = self.channels.get_mut(&name).ok_or(ChatError::NoChannel)?;
        let seq = ch.next_seq + 1;
        ch.next_seq = seq;
        let pos = self.next_pos;
        self.next_pos += 1;
        if let Some(t) = txn {
            self.in_flight
                .insert((author.into(), t.into()), (name.clone(), seq));
        }
        Ok(Posted::New(Record::Message(Message {
            channel: name,
            seq,
            pos,
            author: author.into(),
            text,
            ts_ms,
            txn: txn.map(String::from),
        })))
    }

    /// Makes a durable record history (after its sync, or while replaying the log at start).
    /// `Err` names a record that does not follow the history (a log written by something else):
    /// the owner reports it and stops replaying there.
    pub fn apply(&mut self, record: &Record) -> Result<(), String> {
        match record {
            Record::Channel { name, by, ts_ms } => {
                self.pending_channels.retain(|n| n != name);
                if self.channels.contains_key(name) {
                    return Err(format!("channel {name} created twice"));
                }
                let ch = Channel {
                    by: by.clone(),
                    ts_ms: *ts_ms,
                    ..Channel::default()
                };
                self.channels.insert(name.clone(), ch);
            }
            Record::Message(m) => {
                let applied_pos = self.applied_pos;
                let ch = self
                    .channels
                    .get_mut(&m.channel)
                    .ok_or_else(|| format!("message {} in unknown channel {}", m.pos, m.channel))?;
                let want_seq = ch.messages.len() as u64 + 1;
                // Positions are dense too: a hole means the record followed a failed append
                // (never acknowledged), and the log ends before it.
                if m.seq != want_seq || m.pos != applied_pos + 1 {
                    return Err(format!(
                        "message {}/{} out of order (expected seq {want_seq}, position {})",
                        m.channel,
                        m.seq,
                        applied_pos + 1
                    ));
                }
                ch.next_seq = ch.next_seq.max(m.seq);
                ch.messages.push(m.clone());
                self.applied_pos = m.pos;
                self.next_pos = self.next_pos.max(m.pos + 1);
                if let Some(t) = &m.txn {
                    let key = (m.author.clone(), t.clone());
                    self.in_flight.remove(&key);
                    self.remember_txn(key, m.channel.clone(), m.seq);
                }
            }
        }
        Ok(())
    }

    fn remember_txn(&mut self, key: (String, String), channel: String, seq: u64) {
        if self.txns.insert(key.clone(), (channel, seq)).is_none() {
            self.txn_order.push_back(key);
            if self.txn_order.len() > MAX_TXNS {
                if let Some(old) = self.txn_order.pop_front() {
                    self.txns.remove(&old);
                }
            }
        }
    }

    /// The channel names, in order.
    pub fn channels(&self) -> impl Iterator<Item = (&str, u64)> {
        self.channels
            .iter()
            .map(|(n, c)| (n.as_str(), c.messages.len() as u64))
    }

    pub fn has_channel(&self, name: &str) -> bool {
        self.channels.contains_key(name)
    }

    /// The message `seq` of `channel`, if history.
    pub fn message(&self, channel: &str, seq: u64) -> Option<&Message> {
        let ch = self.channels.get(channel)?;
        ch.messages.get(usize::try_from(seq.checked_sub(1)?).ok()?)
    }

    /// History of `channel`: messages with `after < seq < before`, the last `limit` of them
    /// when only `before` (or nothing) is given, the first `limit` after `after` otherwise.
    pub fn history(
        &self,
        channel: &str,
        after: Option<u64>,
        before: Option<u64>,
        limit: usize,
    ) -> Option<&[Message]> {
        let msgs = &self.channels.get(channel)?.messages;
        let lo = after.map_or(0, |a| {
            usize::try_from(a).unwrap_or(usize::MAX).min(msgs.len())
        });
        let hi = before.map_or(msgs.len(), |b| {
            usize::try_from(b.saturating_sub(1))
                .unwrap_or(usize::MAX)
                .min(msgs.len())
        });
        if lo >= hi {
            return Some(&[]);
        }
        let slice = &msgs[lo..hi];
        Some(if after.is_some() {
            &slice[..limit.min(slice.len())]
        } else {
            &slice[slice.len().saturating_sub(limit)..]
        })
    }

    /// Every message with a position after `pos`, in position order (a resuming stream), or
    /// `None` when more than `max` would come: the client must backfill by history instead.
    pub fn since(&self, pos: u64, max: usize) -> Option<Vec<&Message>> {
        let count = self.applied_pos.saturating_sub(pos);
        if count > max as u64 {
            return None;
        }
        let mut out: Vec<&Message> = self
            .channels
            .values()
            .flat_map(|c| {
                let start = c.messages.partition_point(|m| m.pos <= pos);
                &c.messages[start..]
            })
            .collect();
        out.sort_by_key(|m| m.pos);
        Some(out)
    }

    /// The records that make this history again: every channel, then every message in
    /// position order from `after_pos`, at most `limit` messages (a snapshot writes them in
    /// batches). Channels come only with `after_pos == 0`.
    pub fn records(&self, after_pos: u64, limit: usize) -> Vec<Record> {
        let mut out = Vec::new();
        if after_pos == 0 {
            for (name, c) in &self.channels {
                out.push(Record::Channel {
                    name: name.clone(),
                    by: c.by.clone(),
                    ts_ms: c.ts_ms,
                });
            }
        }
        // A merge of the channels' histories by position (each is in position order).
        let mut heads: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize, usize)>> =
            Default::default();
        let chans: Vec<&Channel> = self.channels.values().collect();
        for (i, c) in chans.iter().enumerate() {
            let at = c.messages.partition_point(|m| m.pos <= after_pos);
            if let Some(m) = c.messages.get(at) {
                heads.push(std::cmp::Reverse((m.pos, i, at)));
            }
        }
        let mut n = 0;
        while let Some(std::cmp::Reverse((_, i, at))) = heads.pop() {
            if n == limit {
                break;
            }
            out.push(Record::Message(chans[i].messages[at].clone()));
            n += 1;
            if let Some(m) = chans[i].messages.get(at + 1) {
                heads.push(std::cmp::Reverse((m.pos, i, at + 1)));
            }
        }
        out
    }

    /// How many channels and messages are history.
    pub fn size(&self) -> (u64, u64) {
        let messages = self
            .channels
            .values()
            .map(|c| c.messages.len() as u64)
            .sum();
        (self.channels.len() as u64, messages)
    }

    /// The position of the last message made history (0 before any).
    pub fn applied_pos(&self) -> u64 {
        self.applied_pos
    }
}
