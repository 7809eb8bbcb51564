//! A small line-protocol node that exercises every capability of the node contract, for the
//! drivers' tests (the simulator's and the real sockets'): two or more listeners, messages
//! from connections to the node and fanned out from the node to many connections, node
//! timers, outgoing connections that retry with backoff, off-loop work, entropy, and
//! durable-log appends answered only after the sync that covers them (group commit).
//!
//! # Protocol
//! Every line ends in `\n` and is at most [`MAX_LINE`] bytes (a longer one closes the
//! connection). On a new connection the node's machine first says `HELLO <listener>` (or
//! `HELLO dial` on a connection the node opened). Then, one answer line per request line:
//!
//! | request | answer |
//! |---|---|
//! | `SUB` | `SUBSCRIBED`; every later `PUB` reaches this connection as `MSG <text>` |
//! | `PUB <text>` | `PUBLISHED <n>`, after `MSG <text>` went to the `n` subscribers |
//! | `AFTER <ms>` | `TICK`, once a node timer `ms` later fired |
//! | `HASH <text>` | `HASHED <hex>`, computed off the loop ([`NodeMachine::run_job`]) |
//! | `TOKEN` | `TOKEN <32 hex digits>` from the driver's entropy |
//! | `LOG <text>` | `LOGGED <n>` once the record is synced (`n`: records committed so far), or `LOGFAIL` |
//! | `DIAL <addr>` | `RETRY <n>` after each failed attempt that will be retried (with backoff), then `DIALED <attempts>` once a connection to `addr` opened, or `GAVEUP <attempts>` |
//! | anything else | `ERR unknown` |
//!
//! At start the node reads its log and cuts a record a crash tore (no newline at its end)
//! before it appends again; `LOG` lines that come meanwhile wait (up to [`MAX_HELD`]).
//!
//! A subscriber that does not read is closed by the driver once its unsent bytes pass the
//! driver's limit (and by itself past [`MAX_QUEUED`]): the node never waits on a slow
//! connection.

use super::commit::GroupCommit;
use super::machine::{
    ConnId, Entropy, ListenerId, NewConn, NodeInput, NodeMachine, NodeOutput, Scope, Token,
};
use super::timers::Timers;
use super::{ConnInput, ConnOutput, Connection, LogOp, LogReply, Now};
use crate::time::Duration;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
// `core::net` holds address values only (no sockets): where to listen and to connect.
use core::net::SocketAddr;
use std::sync::Arc;

/// The longest request line.
pub const MAX_LINE: usize = 1024;
/// Unsent bytes a connection may hold before it closes itself: far above the drivers' own
/// cut-off for a connection that does not read its node's messages (4 MiB), so that a slow
/// reader meets the drivers' limit, which is what the drivers' tests check.
pub const MAX_QUEUED: usize = 64 * 1024 * 1024;
/// The log the node appends to.
pub const LOG: &str = "lines";
/// Appends held while the log is recovered at start, before `LOGFAIL`.
pub const MAX_HELD: usize = 1024;
/// Attempts at reading (and cutting) the log at start while appends wait; after them appends
/// fail at once (`LOGFAIL`) until an attempt succeeds.
pub const RECOVERY_ATTEMPTS: u32 = 5;
/// The wait before the next attempt; it doubles with each failure, up to
/// [`RECOVERY_RETRY_MAX`]. The node never stops trying: a disk that fails for a while (an
/// exhausted volume, a transient EIO) must not leave a running server without its log for good.
pub const RECOVERY_RETRY: Duration = Duration::from_millis(200);
/// The longest wait between attempts.
pub const RECOVERY_RETRY_MAX: Duration = Duration::from_secs(5);
/// Connect attempts before `GAVEUP`.
pub const DIAL_ATTEMPTS: u32 = 5;
/// The first retry's delay; each later one doubles, plus up to half again of jitter.
pub const DIAL_BACKOFF: Duration = Duration::from_millis(100);
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// What a connection tells the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Up {
    Subscribe,
    Publish(String),
    After(u64),
    Hash(String),
    Token,
    Log(String),
    Dial(String),
}

/// What the node tells a connection: one line to send.
pub type Down = Arc<str>;

/// How a connection's machine starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spawn {
    Accepted(ListenerId),
    Dialed,
}

/// What observers see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Listening(ListenerId, SocketAddr),
    /// Records found in the log at start (once a torn tail, if any, was cut).
    Recovered(u64),
    /// A crash had torn the log's last record: this many bytes were cut at start.
    TornTailCut {
        bytes: u64,
    },
    Published {
        subscribers: usize,
    },
    Dialed {
        attempts: u32,
    },
    GaveUp {
        attempts: u32,
    },
    /// A record was answered as durable.
    Committed {
        record: u64,
    },
}

/// One connection of the line protocol.
pub struct LineConn {
    inbuf: Vec<u8>,
    transmit: Vec<u8>,
    out: VecDeque<ConnOutput<Up>>,
    /// Close once `transmit` is flushed (the peer closed its side).
    closing: bool,
    finished: bool,
}

impl LineConn {
    pub fn new(spawn: &Spawn) -> Self {
        let hello = match spawn {
            Spawn::Accepted(l) => format!("HELLO {l}\n"),
            Spawn::Dialed => "HELLO dial\n".to_string(),
        };
        LineConn {
            inbuf: Vec::new(),
            transmit: hello.into_bytes(),
            out: VecDeque::new(),
            closing: false,
            finished: false,
        }
    }

    fn say(&mut self, line: &str) {
        if self.finished {
            return;
        }
        if self.transmit.len() + line.len() + 1 > MAX_QUEUED {
            // A peer that does not read: close it rather than hold its answers.
            self.finished = true;
            self.transmit.clear();
            self.out.push_back(ConnOutput::Abort);
            return;
        }
        self.transmit.extend_from_slice(line.as_bytes());
        self.transmit.push(b'\n');
    }

    fn request(&mut self, line: &str) {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let up = match word {
            "SUB" => Up::Subscribe,
            "PUB" => Up::Publish(rest.to_string()),
            "AFTER" => match rest.parse() {
                Ok(ms) => Up::After(ms),
                Err(_) => return self.say("ERR bad number"),
            },
            "HASH" => Up::Hash(rest.to_string()),
            "TOKEN" => Up::Token,
            "LOG" => Up::Log(rest.to_string()),
            "DIAL" => Up::Dial(rest.to_string()),
            _ => return self.say("ERR unknown"),
        };
        self.out.push_back(ConnOutput::ToNode(up));
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
        while let Some(end) = self.inbuf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.inbuf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).trim_end().to_string();
            self.request(&text);
            if self.finished {
                return;
            }
        }
        if self.inbuf.len() > MAX_LINE {
            self.say("ERR line too long");
            self.inbuf.clear();
            self.closing = true;
        }
    }
}

impl Connection for LineConn {
    type ToNode = Up;
    type FromNode = Down;

    fn handle(&mut self, _now: Now, input: ConnInput<'_, Down>) {
        match input {
            ConnInput::Data(b) if !self.finished && !self.closing => self.feed(b),
            ConnInput::Eof => self.closing = true,
            ConnInput::Reset => {
                self.finished = true;
                self.transmit.clear();
            }
            ConnInput::Drain => self.closing = true,
            ConnInput::Flushed(n) => {
                self.transmit.drain(..n.min(self.transmit.len()));
            }
            ConnInput::FromNode(line) => self.say(&line),
            _ => {}
        }
    }

    fn poll_output(&mut self) -> ConnOutput<Up> {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        if self.closing && !self.finished && self.transmit.is_empty() {
            self.finished = true;
            return ConnOutput::Close;
        }
        ConnOutput::Wait { deadline: None }
    }

    fn transmit(&self) -> &[u8] {
        &self.transmit
    }

    fn wants_read(&self) -> bool {
        !self.finished && !self.closing
    }

    fn may_leave_unread(&self) -> bool {
        false
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// `AFTER` of connection `conn`, its `n`th.
    After { conn: ConnId, n: u64 },
    /// The next attempt of dial `token`.
    Redial(Token),
    /// Reading or cutting the log again after it failed.
    RetryRecovery,
}

struct Dial {
    conn: ConnId,
    addr: SocketAddr,
    attempts: u32,
}

/// The node of the line protocol (module docs).
pub struct LineNode {
    addrs: Vec<SocketAddr>,
    rng: fastrand::Rng,
    out: VecDeque<NodeOutput<LineNode>>,
    timers: Timers<Timer>,
    subscribers: BTreeSet<ConnId>,
    next_token: Token,
    next_after: u64,
    jobs: BTreeMap<Token, ConnId>,
    dials: BTreeMap<Token, Dial>,
    /// Log appends by token, waiting for their sync.
    commit: GroupCommit<Token>,
    appends: BTreeMap<Token, ConnId>,
    read_token: Option<Token>,
    records: u64,
    /// Until the log has been read (and a torn tail cut), appends wait in `held`.
    recovering: bool,
    held: VecDeque<(ConnId, String)>,
    /// The length of the log's whole records, as read at start.
    whole_len: u64,
    recovery_failures: u32,
    /// Recovery gave up: the log cannot be used.
    log_broken: bool,
    draining: bool,
}

impl LineNode {
    /// A node listening on each of `addrs` (listener ids are their indexes).
    pub fn new(addrs: Vec<SocketAddr>, seed: u64) -> Self {
        LineNode {
            addrs,
            rng: fastrand::Rng::with_seed(seed),
            out: VecDeque::new(),
            timers: Timers::default(),
            subscribers: BTreeSet::new(),
            next_token: 0,
            next_after: 0,
            jobs: BTreeMap::new(),
            dials: BTreeMap::new(),
            commit: GroupCommit::new(LOG),
            appends: BTreeMap::new(),
            read_token: None,
            records: 0,
            recovering: true,
            held: VecDeque::new(),
            whole_len: 0,
            recovery_failures: 0,
            log_broken: false,
            draining: false,
        }
    }

    /// Syncs issued so far (appends per sync shows the group commit at work).
    pub fn syncs(&self) -> u64 {
        self.commit.syncs
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        self.next_token
    }

    fn tell(&mut self, conn: ConnId, line: impl Into<Arc<str>>) {
        self.out.push_back(NodeOutput::ToConn {
            conn,
            msg: line.into(),
        });
    }

    fn dial(&mut self, token: Token) {
        if let Some(d) = self.dials.get_mut(&token) {
            d.attempts += 1;
            let addr = d.addr;
            self.out.push_back(NodeOutput::Connect {
                token,
                addr,
                timeout: DIAL_TIMEOUT,
                spawn: Spawn::Dialed,
            });
        }
    }

    fn on_message(&mut self, now: Now, conn: ConnId, up: Up, entropy: &mut dyn Entropy) {
        match up {
            Up::Subscribe => {
                self.subscribers.insert(conn);
                self.tell(conn, "SUBSCRIBED");
            }
            Up::Publish(text) => {
                let line: Arc<str> = format!("MSG {text}").into();
                for &s in &self.subscribers {
                    self.out.push_back(NodeOutput::ToConn {
                        conn: s,
                        msg: line.clone(),
                    });
                }
                let n = self.subscribers.len();
                self.out
                    .push_back(NodeOutput::Event(Event::Published { subscribers: n }));
                self.tell(conn, format!("PUBLISHED {n}"));
            }
            Up::After(ms) => {
                self.next_after += 1;
                let key = Timer::After {
                    conn,
                    n: self.next_after,
                };
                self.timers.set(key, now.mono + Duration::from_millis(ms));
            }
            Up::Hash(text) => {
                let token = self.token();
                self.jobs.insert(token, conn);
                self.out.push_back(NodeOutput::Job { token, job: text });
            }
            Up::Token => {
                let mut secret = [0u8; 16];
                entropy.fill(&mut secret);
                let hex = crate::web::hex(&secret);
                self.tell(conn, format!("TOKEN {hex}"));
            }
            Up::Log(text) => {
                if self.draining || self.log_broken {
                    return self.tell(conn, "LOGFAIL");
                }
                if self.recovering {
                    if self.held.len() >= MAX_HELD {
                        return self.tell(conn, "LOGFAIL");
                    }
                    self.held.push_back((conn, text));
                    return;
                }
                self.append(conn, text);
            }
            Up::Dial(addr) => match addr.parse() {
                Ok(addr) => {
                    let token = self.token();
                    self.dials.insert(
                        token,
                        Dial {
                            conn,
                            addr,
                            attempts: 0,
                        },
                    );
                    self.dial(token);
                }
                Err(_) => self.tell(conn, "ERR bad address"),
            },
        }
    }

    /// Appends one record, answered once a sync covers it.
    fn append(&mut self, conn: ConnId, text: String) {
        let token = self.token();
        self.appends.insert(token, conn);
        let mut record = text.into_bytes();
        record.push(b'\n');
        self.out.push_back(NodeOutput::Log {
            token,
            op: LogOp::Append {
                log: LOG.into(),
                bytes: record,
            },
        });
        if let Some(op) = self.commit.commit(token) {
            self.out.push_back(NodeOutput::Log { token: 0, op });
        }
    }

    /// Asks for the log as a crash left it (again, after a failed read).
    fn read_log(&mut self) {
        let token = self.token();
        self.read_token = Some(token);
        self.out.push_back(NodeOutput::Log {
            token,
            op: LogOp::Read { log: LOG.into() },
        });
    }

    /// Cuts a torn last record (again, after a failed cut).
    fn cut_log(&mut self) {
        self.out.push_back(NodeOutput::Log {
            token: 0,
            op: LogOp::Truncate {
                log: LOG.into(),
                len: self.whole_len,
            },
        });
    }

    /// The log is whole: appends held during recovery go out, in the order they came.
    fn recovered(&mut self) {
        self.recovering = false;
        self.log_broken = false;
        self.recovery_failures = 0;
        self.out
            .push_back(NodeOutput::Event(Event::Recovered(self.records)));
        while let Some((conn, text)) = self.held.pop_front() {
            self.append(conn, text);
        }
    }

    /// Reading or cutting the log failed: try again later (never at once, which on a disk
    /// that fails every time would be a busy loop), further apart each time. After
    /// [`RECOVERY_ATTEMPTS`] the appends held so far fail, and new ones fail at once, until
    /// an attempt succeeds.
    fn recovery_failed(&mut self, now: Now) {
        self.recovery_failures += 1;
        if self.recovery_failures >= RECOVERY_ATTEMPTS && !self.log_broken {
            self.log_broken = true;
            while let Some((conn, _)) = self.held.pop_front() {
                self.tell(conn, "LOGFAIL");
            }
        }
        let doublings = (self.recovery_failures - 1).min(16);
        let wait = RECOVERY_RETRY
            .saturating_mul(1 << doublings)
            .min(RECOVERY_RETRY_MAX);
        self.timers.set(Timer::RetryRecovery, now.mono + wait);
    }

    fn log_reply(&mut self, now: Now, token: Token, reply: LogReply) {
        match reply {
            LogReply::Contents(Ok(bytes)) if Some(token) == self.read_token => {
                // Whole records end in a newline; anything after the last one is a record a
                // crash tore, which the next append must not continue.
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                self.records = bytes[..whole].iter().filter(|&&b| b == b'\n').count() as u64;
                self.whole_len = whole as u64;
                if whole < bytes.len() {
                    self.out.push_back(NodeOutput::Event(Event::TornTailCut {
                        bytes: (bytes.len() - whole) as u64,
                    }));
                    self.cut_log();
                } else {
                    self.recovered();
                }
            }
            LogReply::Contents(Err(_)) if Some(token) == self.read_token => {
                self.recovery_failed(now)
            }
            LogReply::Contents(_) => {}
            LogReply::Truncated(Ok(())) => self.recovered(),
            LogReply::Truncated(Err(_)) => self.recovery_failed(now),
            LogReply::Appended(result) => self.commit.appended(token, result),
            LogReply::Synced(result) => {
                let (done, next) = self.commit.synced(result);
                if let Some(op) = next {
                    self.out.push_back(NodeOutput::Log { token: 0, op });
                }
                for (waiter, result) in done {
                    let Some(conn) = self.appends.remove(&waiter) else {
                        continue;
                    };
                    match result {
                        Ok(()) => {
                            self.records += 1;
                            let record = self.records;
                            self.out
                                .push_back(NodeOutput::Event(Event::Committed { record }));
                            self.tell(conn, format!("LOGGED {record}"));
                        }
                        Err(_) => self.tell(conn, "LOGFAIL"),
                    }
                }
            }
        }
    }
}

impl NodeMachine for LineNode {
    type Conn = LineConn;
    type Spawn = Spawn;
    type Job = String;
    type JobDone = u64;
    type Command = ();
    type Event = Event;

    const SCOPE: Scope = Scope::Process;

    fn spawn(spawn: &Spawn, _now: Now, _conn: NewConn) -> LineConn {
        LineConn::new(spawn)
    }

    /// A deliberately slow hash (FNV-1a, many rounds), standing in for a password hash.
    fn run_job(text: String) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for _ in 0..10_000 {
            for &b in text.as_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
            h = h.rotate_left(5);
        }
        h
    }

    fn handle(&mut self, now: Now, input: NodeInput<Self>, entropy: &mut dyn Entropy) {
        match input {
            NodeInput::Start => {
                for (i, addr) in self.addrs.clone().into_iter().enumerate() {
                    let listener = i as ListenerId;
                    self.out.push_back(NodeOutput::Listen {
                        listener,
                        addr,
                        spawn: Spawn::Accepted(listener),
                    });
                }
                self.read_log();
            }
            NodeInput::Listening { listener, result } => match result {
                Ok(addr) => self
                    .out
                    .push_back(NodeOutput::Event(Event::Listening(listener, addr))),
                Err(e) => self.out.push_back(NodeOutput::Exit {
                    reason: format!(
                        "cannot listen on {}: {}",
                        self.addrs[listener as usize], e.0
                    ),
                }),
            },
            NodeInput::FromConn { conn, msg } => self.on_message(now, conn, msg, entropy),
            NodeInput::Closed { conn } => {
                self.subscribers.remove(&conn);
            }
            NodeInput::Connected { token, .. } => {
                if let Some(d) = self.dials.remove(&token) {
                    let attempts = d.attempts;
                    self.out
                        .push_back(NodeOutput::Event(Event::Dialed { attempts }));
                    self.tell(d.conn, format!("DIALED {attempts}"));
                }
            }
            NodeInput::ConnectFailed { token, error: _e } => {
                let Some(d) = self.dials.get(&token) else {
                    return;
                };
                if d.attempts >= DIAL_ATTEMPTS || self.draining {
                    let (conn, attempts) = (d.conn, d.attempts);
                    self.dials.remove(&token);
                    self.out
                        .push_back(NodeOutput::Event(Event::GaveUp { attempts }));
                    self.tell(conn, format!("GAVEUP {attempts}"));
                    return;
                }
                let (conn, attempts) = (d.conn, d.attempts);
                let base = DIAL_BACKOFF * 2u32.pow(attempts - 1);
                let jitter = self.rng.u64(..=base.as_millis() as u64 / 2);
                let at = now.mono + base + Duration::from_millis(jitter);
                self.timers.set(Timer::Redial(token), at);
                self.tell(conn, format!("RETRY {attempts}"));
            }
            NodeInput::Log { token, reply } => self.log_reply(now, token, reply),
            NodeInput::JobDone { token, done } => {
                if let Some(conn) = self.jobs.remove(&token) {
                    self.tell(conn, format!("HASHED {done:016x}"));
                }
            }
            NodeInput::Timeout => {
                while let Some(t) = self.timers.pop_due(now.mono) {
                    match t {
                        Timer::After { conn, .. } => self.tell(conn, "TICK"),
                        Timer::Redial(token) => self.dial(token),
                        // Read again: a torn tail found then is cut as at start.
                        Timer::RetryRecovery => self.read_log(),
                    }
                }
            }
            NodeInput::Command(()) => {}
            NodeInput::Drain => self.draining = true,
        }
    }

    fn poll_output(&mut self) -> NodeOutput<Self> {
        self.out.pop_front().unwrap_or(NodeOutput::Wait {
            deadline: self.timers.next(),
        })
    }

    fn check_invariants(&self) {
        self.timers.check_invariants();
        assert!(
            self.commit.waiting() == self.appends.len(),
            "every waiting append belongs to a connection"
        );
    }
}
