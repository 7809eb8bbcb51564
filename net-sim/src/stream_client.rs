//! A streaming client host that any world can use: the connection I/O is here, every decision
//! and check is in a [`Script`].
//!
//! The host owns the plumbing every simulated client repeats: opening connections to any host
//! and port, an outbound queue per connection written as the stream's window allows (so
//! uploads of any size stream), handing each received segment to the script as it arrives (so
//! a long-lived stream, such as a subscription or an HTTP event stream, is read while it is
//! open, not when it ends), closing its end when the peer's ends, and one timer. The script
//! says what to open and send, checks what comes back (an `Err` is an oracle failure that stops
//! the run with the client named), and keeps whatever the world's end checks read.
//!
//! # The contract
//! * [`Script::wake`] is called at start and whenever the time last asked for with
//!   [`Io::wake_at`] arrives (the earliest of the times asked since the last wake-up).
//! * [`Script::received`] gets the bytes of one segment of `conn`, in order.
//! * [`Script::ended`] is called once per connection that the peer closed or reset, or whose
//!   connect failed; the host has already closed its end. A connection the script closes itself
//!   ([`Io::close`]) gets no `ended`.
//! * Bytes queued with [`Io::send`] go out after the callback returns, as the window allows.

use crate::engine::{ConnectError, Cx, Node, StreamId};
use crate::scenario::HostId;
use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use weaprous_core::time::Instant;

/// How a connection ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The peer closed its end (FIN).
    Closed,
    /// The stream was reset.
    Reset,
    /// The connect failed.
    Refused,
}

/// What a streaming client does; see the module docs for when each call comes.
pub trait Script: 'static {
    /// Start, or a wake-up time asked for has come: open connections, send.
    fn wake(&mut self, io: &mut Io);
    /// `conn` is connected.
    fn connected(&mut self, _io: &mut Io, _conn: StreamId) {}
    /// Bytes of `conn`, in order; an `Err` fails the run.
    fn received(&mut self, io: &mut Io, conn: StreamId, bytes: &[u8]) -> Result<(), String>;
    /// `conn` ended without the script closing it.
    fn ended(&mut self, io: &mut Io, conn: StreamId, how: Ended);
    /// What the script still waits for, for failure reports.
    fn describe(&self) -> String;
}

/// The script's handle on its host during one call.
pub struct Io<'a, 'b> {
    cx: &'a mut Cx<'b>,
    out: &'a mut BTreeMap<StreamId, VecDeque<u8>>,
    wake: &'a mut Option<Instant>,
}

impl Io<'_, '_> {
    /// This host's monotonic clock.
    pub fn now(&self) -> Instant {
        self.cx.now().mono
    }
    /// This host's wall clock (skewed, and it may jump).
    pub fn wall(&self) -> weaprous_core::time::UnixTime {
        self.cx.now().wall
    }
    pub fn host(&self) -> HostId {
        self.cx.host()
    }
    /// Opens a connection to `port` of `host`.
    pub fn connect(&mut self, host: HostId, port: u16) -> StreamId {
        let s = self.cx.connect_port(host, port);
        self.out.insert(s, VecDeque::new());
        s
    }
    /// Queues `bytes` on `conn` (ignored once it ended).
    pub fn send(&mut self, conn: StreamId, bytes: &[u8]) {
        if let Some(q) = self.out.get_mut(&conn) {
            q.extend(bytes);
        }
    }
    /// Closes `conn`: a FIN goes now, and bytes still queued on it are dropped.
    pub fn close(&mut self, conn: StreamId) {
        if self.out.remove(&conn).is_some() {
            self.cx.fin(conn);
        }
    }
    /// Whether `conn` is open.
    pub fn is_open(&self, conn: StreamId) -> bool {
        self.out.contains_key(&conn)
    }
    /// Asks for [`Script::wake`] at `at` (the earliest time asked wins).
    pub fn wake_at(&mut self, at: Instant) {
        *self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }
    pub fn cover(&mut self, name: &'static str) {
        self.cx.cover(name);
    }
    /// A line in the run's trace about `conn`.
    pub fn trace(&mut self, conn: StreamId, n: u64, line: impl FnOnce() -> String) {
        self.cx.trace(40, conn, n, line);
    }
}

/// A client host running a [`Script`].
pub struct StreamClient<S: Script> {
    script: S,
    out: BTreeMap<StreamId, VecDeque<u8>>,
    wake: Option<Instant>,
}

impl<S: Script> StreamClient<S> {
    pub fn new(script: S) -> Self {
        StreamClient {
            script,
            out: BTreeMap::new(),
            wake: None,
        }
    }
    /// The script, for the world's end checks.
    pub fn script(&self) -> &S {
        &self.script
    }

    /// Runs `f` on the script, then writes what it queued and sets the timer it asked for.
    fn call(&mut self, cx: &mut Cx, f: impl FnOnce(&mut S, &mut Io) -> Result<(), String>) {
        let mut io = Io {
            cx,
            out: &mut self.out,
            wake: &mut self.wake,
        };
        if let Err(e) = f(&mut self.script, &mut io) {
            let host = cx.host();
            cx.fail(format!("h{host}: {e}"));
            return;
        }
        let queued: Vec<StreamId> = self
            .out
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(&s, _)| s)
            .collect();
        for s in queued {
            self.flush(cx, s);
        }
        cx.set_timer(self.wake);
    }

    fn flush(&mut self, cx: &mut Cx, s: StreamId) {
        let Some(q) = self.out.get_mut(&s) else {
            return;
        };
        let n = cx.room(s).min(q.len());
        if n > 0 {
            let bytes: Vec<u8> = q.drain(..n).collect();
            cx.write(s, &bytes);
        }
        if !q.is_empty() {
            cx.want_writable(s);
        }
    }

    fn end(&mut self, cx: &mut Cx, s: StreamId, how: Ended) {
        if self.out.remove(&s).is_some() {
            cx.fin(s);
            self.call(cx, |sc, io| {
                sc.ended(io, s, how);
                Ok(())
            });
        }
    }
}

impl<S: Script> Node for StreamClient<S> {
    fn start(&mut self, cx: &mut Cx) {
        self.call(cx, |sc, io| {
            sc.wake(io);
            Ok(())
        });
    }
    fn on_timer(&mut self, cx: &mut Cx) {
        if self.wake.is_some_and(|w| w <= cx.now().mono) {
            self.wake = None;
            self.call(cx, |sc, io| {
                sc.wake(io);
                Ok(())
            });
        } else {
            cx.set_timer(self.wake);
        }
    }
    fn on_connected(&mut self, cx: &mut Cx, s: StreamId) {
        if self.out.contains_key(&s) {
            self.call(cx, |sc, io| {
                sc.connected(io, s);
                Ok(())
            });
        }
    }
    fn on_data(&mut self, cx: &mut Cx, s: StreamId, bytes: Vec<u8>) {
        if self.out.contains_key(&s) {
            self.call(cx, |sc, io| sc.received(io, s, &bytes));
        }
    }
    fn on_writable(&mut self, cx: &mut Cx, s: StreamId) {
        self.flush(cx, s);
    }
    fn on_eof(&mut self, cx: &mut Cx, s: StreamId) {
        self.end(cx, s, Ended::Closed);
    }
    fn on_reset(&mut self, cx: &mut Cx, s: StreamId) {
        self.end(cx, s, Ended::Reset);
    }
    fn on_connect_failed(&mut self, cx: &mut Cx, s: StreamId, _e: ConnectError) {
        self.end(cx, s, Ended::Refused);
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
