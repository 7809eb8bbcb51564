//! The peer-to-peer wire protocol: length-prefixed binary frames.
//!
//! # Framing
//! Every frame is a 4-byte big-endian length, then that many bytes: a 1-byte type and its
//! fields. The length is at most [`MAX_FRAME`]; a larger one is an error before a byte of the
//! frame is buffered, so a peer (or an HTTP client dialing the wrong port: `GET ` reads as a
//! length of 1.1 GB) costs at most one frame of memory. Integers are big-endian; a string is
//! a 2-byte length and UTF-8. A frame whose fields do not fill it exactly, an unknown type,
//! and a string that is not UTF-8 or too long are errors: the link is closed, never guessed at.
//!
//! # Frames
//! | type | frame | fields |
//! |---|---|---|
//! | 1 | [`Hello`] | magic `wp2p`, version (u16), peer id, name, incarnation (u64), P2P port (u16), dial number (u64) |
//! | 2 | [`Frame::Sync`] | have: the last of the receiver's messages the sender took ([`MsgId`]) |
//! | 3 | [`Frame::Msg`] | id, prev (the id of the sender's previous message to this peer), kind (0 direct, 1 broadcast), sent at (Unix ms), text |
//! | 4 | [`Frame::Ack`] | id: every message to this peer up to it is taken |
//! | 5 | [`Frame::Gone`] | prev, through: the messages after `prev` up to `through` expired undelivered |
//! | 6 | [`Frame::Ping`] | nonce |
//! | 7 | [`Frame::Pong`] | nonce |
//! | 8 | [`Frame::Bye`] | reason: why the sender closes (a version mismatch, a duplicate link) |
//!
//! # The handshake
//! Both sides send `Hello` as soon as the link opens. Once each knows who the other is, it
//! sends `Sync` with the last message it durably took from that peer; a side starts sending
//! its messages only once it has the other's `Sync`, from that point on. That is the sync
//! exchange that repairs whatever a broken link lost.
//!
//! The version is the second field of the first frame and is read before anything after it,
//! so a peer speaking another version gets a clear error ([`WireError::Version`]) rather than
//! a decoding failure. Message ids and the delivery rules that use `prev`, `Ack` and `Gone` are
//! [`super::delivery`]'s.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The version this code speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// The first bytes of every `Hello`'s fields.
pub const MAGIC: [u8; 4] = *b"wp2p";
/// The largest frame (type and fields), in bytes.
pub const MAX_FRAME: usize = 64 * 1024;
/// The longest message text, in bytes of UTF-8 (4,000 characters of most scripts).
pub const MAX_TEXT: usize = 16 * 1024;
/// The longest peer id or name.
pub const MAX_NAME: usize = 64;
/// The longest `Bye` reason.
pub const MAX_REASON: usize = 256;

/// A message's identity among its origin's messages: the origin's incarnation (one more at
/// every start, durably, so ids lost with an unsynced counter are never reused), then a
/// sequence within it. Ordered by incarnation, then sequence; [`MsgId::NONE`] comes first.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct MsgId {
    pub inc: u64,
    pub seq: u64,
}

impl MsgId {
    /// Before every message.
    pub const NONE: MsgId = MsgId { inc: 0, seq: 0 };
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.inc, self.seq)
    }
}

/// Direct (to one peer) or broadcast (to every active peer).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Direct,
    Broadcast,
}

/// The first frame each side sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub id: String,
    pub name: String,
    pub incarnation: u64,
    /// Where the sender accepts links (what the tracker lists for it).
    pub port: u16,
    /// The dialer's number for this link (larger for a later dial; 0 from the side that
    /// accepted it): with the dialer's id, what names a link alike at both ends.
    pub dial: u64,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Sync {
        have: MsgId,
    },
    Msg {
        id: MsgId,
        prev: MsgId,
        kind: Kind,
        sent_ms: u64,
        text: String,
    },
    Ack {
        id: MsgId,
    },
    Gone {
        prev: MsgId,
        through: MsgId,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Bye {
        reason: String,
    },
}

/// Why bytes are not frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// A length over [`MAX_FRAME`] (or zero).
    Length(usize),
    /// A `Hello` without the magic: not a weaprous peer.
    NotAPeer,
    /// A `Hello` of another protocol version.
    Version(u16),
    /// A frame that does not decode: its type and what is wrong.
    Malformed(u8, &'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Length(n) => write!(f, "a frame of {n} bytes (the limit is {MAX_FRAME})"),
            WireError::NotAPeer => {
                write!(f, "the other side does not speak the weaprous P2P protocol")
            }
            WireError::Version(v) => write!(
                f,
                "the peer speaks protocol version {v}; this one speaks {PROTOCOL_VERSION}"
            ),
            WireError::Malformed(t, what) => write!(f, "a malformed frame of type {t}: {what}"),
        }
    }
}

impl Frame {
    /// Appends the frame, length first, to `out`. Fields over their limits are the caller's
    /// bug: they are cut to the limit (at a character boundary) rather than sent unreadable.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Frame::Hello(h) => {
                out.push(1);
                out.extend_from_slice(&MAGIC);
                out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
                put_str(out, &h.id, MAX_NAME);
                put_str(out, &h.name, MAX_NAME);
                out.extend_from_slice(&h.incarnation.to_be_bytes());
                out.extend_from_slice(&h.port.to_be_bytes());
                out.extend_from_slice(&h.dial.to_be_bytes());
            }
            Frame::Sync { have } => {
                out.push(2);
                put_id(out, *have);
            }
            Frame::Msg {
                id,
                prev,
                kind,
                sent_ms,
                text,
            } => {
                out.push(3);
                put_id(out, *id);
                put_id(out, *prev);
                out.push(match kind {
                    Kind::Direct => 0,
                    Kind::Broadcast => 1,
                });
                out.extend_from_slice(&sent_ms.to_be_bytes());
                put_str(out, text, MAX_TEXT);
            }
            Frame::Ack { id } => {
                out.push(4);
                put_id(out, *id);
            }
            Frame::Gone { prev, through } => {
                out.push(5);
                put_id(out, *prev);
                put_id(out, *through);
            }
            Frame::Ping { nonce } => {
                out.push(6);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Frame::Pong { nonce } => {
                out.push(7);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Frame::Bye { reason } => {
                out.push(8);
                put_str(out, reason, MAX_REASON);
            }
        }
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Decodes one frame's type and fields (without its length).
    pub fn decode(body: &[u8]) -> Result<Frame, WireError> {
        let (&ty, rest) = body.split_first().ok_or(WireError::Length(0))?;
        let mut r = Reader { b: rest, ty };
        let frame = match ty {
            1 => {
                if r.take(4)? != MAGIC {
                    return Err(WireError::NotAPeer);
                }
                let version = r.u16()?;
                if version != PROTOCOL_VERSION {
                    return Err(WireError::Version(version));
                }
                Frame::Hello(Hello {
                    id: r.str(MAX_NAME)?,
                    name: r.str(MAX_NAME)?,
                    incarnation: r.u64()?,
                    port: r.u16()?,
                    dial: r.u64()?,
                })
            }
            2 => Frame::Sync { have: r.id()? },
            3 => Frame::Msg {
                id: r.id()?,
                prev: r.id()?,
                kind: match r.take(1)?[0] {
                    0 => Kind::Direct,
                    1 => Kind::Broadcast,
                    _ => return Err(WireError::Malformed(ty, "an unknown message kind")),
                },
                sent_ms: r.u64()?,
                text: r.str(MAX_TEXT)?,
            },
            4 => Frame::Ack { id: r.id()? },
            5 => Frame::Gone {
                prev: r.id()?,
                through: r.id()?,
            },
            6 => Frame::Ping { nonce: r.u64()? },
            7 => Frame::Pong { nonce: r.u64()? },
            8 => Frame::Bye {
                reason: r.str(MAX_REASON)?,
            },
            _ => return Err(WireError::Malformed(ty, "an unknown frame type")),
        };
        if !r.b.is_empty() {
            return Err(WireError::Malformed(ty, "bytes after the last field"));
        }
        Ok(frame)
    }
}

fn put_id(out: &mut Vec<u8>, id: MsgId) {
    out.extend_from_slice(&id.inc.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str, max: usize) {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

struct Reader<'a> {
    b: &'a [u8],
    ty: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.b.len() < n {
            return Err(WireError::Malformed(
                self.ty,
                "the frame ends inside a field",
            ));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn id(&mut self) -> Result<MsgId, WireError> {
        Ok(MsgId {
            inc: self.u64()?,
            seq: self.u64()?,
        })
    }
    fn str(&mut self, max: usize) -> Result<String, WireError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(WireError::Malformed(self.ty, "a string over its limit"));
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| WireError::Malformed(self.ty, "a string that is not UTF-8"))
    }
}

/// Splits a byte stream into frames, buffering at most one frame.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Consumed bytes at the front of `buf`, dropped on the next feed.
    start: usize,
    failed: bool,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Takes bytes as they arrived, split anywhere.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` until one is whole, or the error that ends the stream
    /// (after which it returns the same error class again: `Length(0)`).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if self.failed {
            return Err(WireError::Length(0));
        }
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len == 0 || len > MAX_FRAME {
            self.failed = true;
            return Err(WireError::Length(len));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let frame = Frame::decode(&avail[4..4 + len]);
        self.start += 4 + len;
        if frame.is_err() {
            self.failed = true;
        }
        frame.map(Some)
    }

    /// Bytes held: at most one frame and its length.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether a frame has started and not ended (an end of input now cuts it).
    pub fn partial(&self) -> bool {
        self.buffered() > 0
    }
}

/// What any bytes do to the reader, split at every place the input names: the `p2p_frames`
/// fuzz target's and a property test's body. Input: byte 0 picks a split length (1 to 256);
/// the rest is the stream. Must hold: no panic; the frames and the error are the same for
/// every split; every frame read encodes back to bytes that read as the same frame.
pub fn check_frames(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let whole = read_all(stream, stream.len().max(1));
    let pieces = read_all(stream, usize::from(split) + 1);
    assert_eq!(whole, pieces, "the split changed what was read");
    for frame in &whole.0 {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let mut r = FrameReader::new();
        r.feed(&bytes);
        assert_eq!(
            r.next_frame().as_ref(),
            Ok(&Some(frame.clone())),
            "round trip"
        );
        assert!(!r.partial());
    }
}

fn read_all(stream: &[u8], piece: usize) -> (Vec<Frame>, Option<WireError>) {
    let mut r = FrameReader::new();
    let mut frames = Vec::new();
    for chunk in stream.chunks(piece) {
        r.feed(chunk);
        loop {
            match r.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
        assert!(r.buffered() <= 4 + MAX_FRAME + piece, "one frame at most");
    }
    (frames, None)
}
