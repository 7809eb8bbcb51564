//! The contract between a machine and its driver (ARCHITECTURE.md, "The node contract").
//!
//! A **connection machine** owns one TCP connection's protocol state. Its driver (`net-real`
//! on sockets, `net-sim` on simulated streams) owns the socket, the clock and the disk, and
//! runs this loop, which is the whole contract:
//!
//! 1. Deliver one input with [`Connection::handle`]: bytes read, end of input, a reset, the
//!    result of a file operation, a deadline that passed, or how many transmit bytes it wrote.
//!    Every call carries the time ([`Now`]): the machine never reads a clock.
//! 2. Drain [`Connection::poll_output`] until it returns [`ConnOutput::Wait`]; carry out each
//!    output in order. `Wait { deadline }` names the next instant at which `handle` must be
//!    called with [`ConnInput::Timeout`] if nothing else happens first (calls before it are
//!    harmless no-ops). Once drained, `poll_output` keeps returning `Wait` until the next input.
//! 3. Write what [`Connection::transmit`] holds, then the file range of
//!    [`Connection::transmit_file`] if any, and report each write with [`ConnInput::Flushed`].
//!    Read from the socket only while [`Connection::wants_read`] is true: that is backpressure.
//!
//! Only `handle` changes what `poll_output`, `transmit` and `wants_read` return.
//! After [`ConnOutput::Close`] the driver writes the remaining transmit bytes, then closes;
//! after [`ConnOutput::Abort`] it resets at once. Either way the machine is finished, except
//! that after `Close` it still names the send deadline in `Wait`, and answers `Abort` if the
//! peer has not taken the last bytes by then (a peer that stops reading cannot pin the
//! connection forever; the simulator found this).
//!
//! File operations are effects, not calls, so the simulator can inject disk faults and the real
//! driver decides where blocking reads run. A machine has at most one file operation outstanding.
//! Node machines that keep state across restarts use the durable-log effects ([`LogOp`],
//! [`LogReply`]) the same way.
//!
//! A connection machine that belongs to a node ([`machine`]) also talks to it: it emits
//! [`ConnOutput::ToNode`] and receives [`ConnInput::FromNode`], both typed by the machine
//! ([`Connection::ToNode`], [`Connection::FromNode`]; `Infallible` for a machine that needs no
//! node, as the static backend's connection needs none).

pub mod commit;
pub mod direct;
pub mod lines;
pub mod machine;
pub mod record;
pub mod timers;

use crate::time::{Instant, UnixTime};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

/// The two clocks a machine may need: monotonic (deadlines) and wall (`Date` headers).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Now {
    pub mono: Instant,
    pub wall: UnixTime,
}

/// An input to a connection machine; `M` is what its node sends it.
#[derive(Debug)]
pub enum ConnInput<'a, M = Infallible> {
    /// Bytes from the peer, split arbitrarily.
    Data(&'a [u8]),
    /// The peer will send nothing more (FIN).
    Eof,
    /// The connection is gone (RST, or the peer vanished): nothing more can be written.
    Reset,
    /// The result of the outstanding [`FileOp`].
    File(FileReply),
    /// A deadline passed (spurious calls are no-ops).
    Timeout,
    /// The driver wrote this many bytes: from the front of [`Connection::transmit`] while it
    /// holds bytes, else from the front of [`Connection::transmit_file`].
    Flushed(usize),
    /// The server is shutting down: finish the exchange in progress, then close.
    Drain,
    /// A message from the node ([`machine`]).
    FromNode(M),
}

/// An effect a connection machine asks its driver to carry out; `M` is what it sends its node.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnOutput<M = Infallible> {
    /// Carry out a file operation and answer with [`ConnInput::File`].
    File(FileOp),
    /// One access-log record (also what oracles observe).
    Log(AccessLog),
    /// Write the rest of `transmit`, then close the connection.
    Close,
    /// Reset the connection now; unsent bytes are dropped.
    Abort,
    /// A message to the node ([`machine`]), delivered in order after this connection's
    /// earlier ones.
    ToNode(M),
    /// Nothing more until the next input, or until `deadline`.
    Wait { deadline: Option<Instant> },
}

/// A handle to an open file, chosen by the driver.
pub type FileHandle = u64;

/// File operations (a file is opened once and read by handle, so a rename or symlink swap
/// between checking and reading cannot change which file is served).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileOp {
    /// Open `path` for reading and report its metadata.
    Open { path: String },
    /// Read up to `len` bytes at `offset`. Fewer bytes only at end of file.
    Read {
        handle: FileHandle,
        offset: u64,
        len: usize,
    },
    /// Release the handle (no reply).
    Close { handle: FileHandle },
}

/// A range of an open file to send as it is (the driver may use `sendfile`, so the bytes
/// never pass through the machine). Sent only after every byte of `transmit`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSegment {
    pub handle: FileHandle,
    pub offset: u64,
    pub len: u64,
}

/// Metadata of an opened file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub handle: FileHandle,
    pub len: u64,
    /// Last modification, whole seconds since the Unix epoch.
    pub modified: UnixTime,
    pub is_dir: bool,
    /// The path with every symlink resolved (the driver's `realpath`), so the machine can
    /// refuse files whose real location is outside their root.
    pub real_path: String,
}

/// Why a file operation failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsError {
    NotFound,
    PermissionDenied,
    /// Any other I/O failure (EIO and friends).
    Io,
}

/// The driver's answer to a [`FileOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileReply {
    Opened(Result<FileMeta, FsError>),
    Read(Result<Vec<u8>, FsError>),
}

/// A durable-log effect of a node machine (a chat server's channel history, a tracker's
/// state): named append-only logs that survive a restart up to the last successful sync.
///
/// Contract: bytes are durable only once a `Sync` of their log has succeeded; after a crash a
/// log holds every synced byte, and may hold a prefix of the last unsynced append (a torn
/// write), so a reader must frame its records and drop a torn tail. Log names are plain names
/// (no `/`); the driver keeps them in its data directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogOp {
    Append {
        log: String,
        bytes: Vec<u8>,
    },
    Sync {
        log: String,
    },
    /// The whole log as it is now (at start-up: what survived).
    Read {
        log: String,
    },
    /// Cuts the log to its first `len` bytes, durably (the driver syncs the cut): how a node
    /// drops a torn tail it found at start-up before it appends again, so that a new record
    /// never lands after half of an old one.
    Truncate {
        log: String,
        len: u64,
    },
}

impl LogOp {
    /// The log this operation is on.
    pub fn log(&self) -> &str {
        match self {
            LogOp::Append { log, .. }
            | LogOp::Sync { log }
            | LogOp::Read { log }
            | LogOp::Truncate { log, .. } => log,
        }
    }
}

/// The driver's answer to a [`LogOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogReply {
    /// The log's length after the append.
    Appended(Result<u64, FsError>),
    Synced(Result<(), FsError>),
    Contents(Result<Vec<u8>, FsError>),
    Truncated(Result<(), FsError>),
}

/// True for a log name a driver accepts: 1..=64 bytes of `[A-Za-z0-9._-]`, not starting with
/// a dot (so never `..`, never a path).
pub fn valid_log_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One finished (or abandoned) request, as written to the access log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    /// Borrowed for the standard methods, so a log line costs no copy of it.
    pub method: std::borrow::Cow<'static, str>,
    pub target: String,
    pub status: u16,
    /// Body bytes put in the transmit buffer for this response.
    pub bytes: u64,
    /// From the request head's arrival to the response's end, in nanoseconds.
    pub duration_ns: u64,
    /// The response was cut short (disk error mid-body, reset).
    pub aborted: bool,
}

/// A connection machine. See the module docs for the contract.
pub trait Connection {
    /// What this machine sends its node (`Infallible` when it has none).
    type ToNode;
    /// What its node sends it.
    type FromNode;
    fn handle(&mut self, now: Now, input: ConnInput<'_, Self::FromNode>);
    fn poll_output(&mut self) -> ConnOutput<Self::ToNode>;
    fn transmit(&self) -> &[u8];
    /// A file range to send once `transmit` is empty. If reading the file fails, the driver
    /// answers with [`ConnInput::File`] carrying `FileReply::Read(Err(..))`.
    fn transmit_file(&self) -> Option<FileSegment> {
        None
    }
    fn wants_read(&self) -> bool;
    /// Whether a file segment waits behind the bytes of `transmit` (a head before its file
    /// body): the driver may then let the kernel hold a short last packet for the file's first
    /// bytes. A hint for efficiency only.
    fn file_follows(&self) -> bool {
        false
    }
    /// Whether the connection closes once everything queued now is flushed (the response
    /// being written is its last): the driver may then let the kernel hold a short last packet
    /// so that it leaves with the FIN. A hint for efficiency only.
    fn closes_after_flush(&self) -> bool {
        false
    }
    /// After [`ConnOutput::Close`]: whether the peer may have sent bytes this machine will not
    /// read. The driver then half-closes and discards input for a while before closing, so
    /// those bytes do not turn the close into a reset that destroys the last response
    /// (a lingering close); otherwise it closes at once.
    fn may_leave_unread(&self) -> bool {
        true
    }
    /// Cheap internal consistency checks; the simulator calls this after every step.
    fn check_invariants(&self) {}
}

#[cfg(test)]
mod tests {
    use super::valid_log_name;

    #[test]
    fn log_names_are_plain_names() {
        for ok in ["general", "channel-1.log", "a_b", "x"] {
            assert!(valid_log_name(ok), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "../x",
            "a b",
            "é",
            long.as_str(),
        ] {
            assert!(!valid_log_name(bad), "{bad}");
        }
    }
}
