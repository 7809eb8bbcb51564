//! Framing for durable logs: records that a reader can tell whole from torn or corrupt.
//!
//! Each record is `length (u32, little-endian) | CRC-32C of the payload (u32, LE) | payload`.
//! [`scan`] reads a log from its start and stops at the first record that is not whole and
//! intact, saying why ([`Tail`]):
//! * **torn**: the log ends inside a header or a payload. A crash during an append leaves
//!   this; only unacknowledged bytes are in it (an append is answered after its sync), so the
//!   owner cuts the log there ([`crate::node::LogOp::Truncate`]) and goes on.
//! * **corrupt**: a whole record whose checksum does not match, or a length over the limit.
//!   Bytes that were synced have changed, or a torn write left garbage that happens to look
//!   whole. Nothing after it can be trusted to start a record, so the owner cuts there too,
//!   and reports how many bytes it dropped: unlike a torn tail, this may lose acknowledged
//!   data, and an operator must hear of it.
//!
//! The length comes first so a reader knows where a record ends before it checks it; the
//! checksum covers the payload only, since a bad length is caught either way (it runs past
//! the end, exceeds the limit, or moves the checksum onto bytes that do not match).

use std::ops::Range;

/// Bytes before each payload.
pub const HEADER: usize = 8;

/// CRC-32C (Castagnoli), reflected, as iSCSI, ext4 and most logs use it.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Appends one framed record holding `payload` to `out`.
///
/// # Panics
/// On a payload of 4 GiB or more: callers bound their records far below that (and [`scan`]
/// refuses anything over their own limit).
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("a record under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// How a log ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belongs to a whole, intact record.
    Clean,
    /// The log ends inside a record that starts at `valid_len`.
    Torn,
    /// The record at `valid_len` is whole but fails its checksum or the length limit.
    Corrupt,
}

/// What [`scan`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// The payloads of the intact records, as ranges of the log, in order.
    pub records: Vec<Range<usize>>,
    /// Where the intact prefix ends: the length to cut the log to.
    pub valid_len: usize,
    pub tail: Tail,
}

impl Scan {
    /// Bytes after the intact prefix (what a cut drops).
    pub fn dropped(&self, log_len: usize) -> usize {
        log_len - self.valid_len
    }
}

/// Reads `log` from its start; a record longer than `max_payload` counts as corrupt.
pub fn scan(log: &[u8], max_payload: usize) -> Scan {
    let mut records = Vec::new();
    let mut at = 0;
    let tail = loop {
        let rest = &log[at..];
        if rest.is_empty() {
            break Tail::Clean;
        }
        if rest.len() < HEADER {
            break Tail::Torn;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > max_payload {
            break Tail::Corrupt;
        }
        if rest.len() - HEADER < len {
            break Tail::Torn;
        }
        let payload = &rest[HEADER..HEADER + len];
        if crc32c(payload) != crc {
            break Tail::Corrupt;
        }
        records.push(at + HEADER..at + HEADER + len);
        at += HEADER + len;
    };
    Scan {
        records,
        valid_len: at,
        tail,
    }
}
