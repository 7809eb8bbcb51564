//! One P2P link as a connection machine: frames in and out, the keepalive, and the deadlines
//! that end a link nobody answers on. The node ([`super::node`]) decides everything about
//! messages; this machine only frames them.
//!
//! # Contract
//! * At its start the machine tells its node [`LinkEvent::Opened`]; the node answers with its
//!   `Hello` ([`LinkCmd::Send`]).
//! * Every frame read goes to the node as [`LinkEvent::Frame`], except `Ping` (answered here
//!   with `Pong`), `Pong` (liveness only) and `Bye` (the link ends).
//! * The link ends with [`LinkEvent::Failed`] (its reason, for the node's users) and a close:
//!   on a malformed frame (after a `Bye` naming the error, so the other side can say why), a
//!   `Bye`, an end of input or a reset, no `Hello` within [`LinkTimers::handshake`], nothing
//!   heard for [`LinkTimers::silence`] (a `Ping` goes out after [`LinkTimers::keepalive`] of
//!   quiet), or more than [`MAX_UNSENT`] bytes the other side has not taken.
//! * [`LinkCmd::Close`] sends `Bye` with its reason and closes.

use super::wire::{Frame, FrameReader, WireError};
use crate::node::{ConnInput, ConnOutput, Connection, Now};
use crate::time::{Duration, Instant};
use std::collections::VecDeque;

/// Unsent bytes a link may hold before it gives up on a peer that does not read.
pub const MAX_UNSENT: usize = 8 * 1024 * 1024;
/// How long a closing link waits for its last bytes to leave.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A link's deadlines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTimers {
    /// The other side's `Hello` must come within this.
    pub handshake: Duration,
    /// A `Ping` goes out after this long without a byte from the other side.
    pub keepalive: Duration,
    /// The link ends after this long without a byte from the other side.
    pub silence: Duration,
}

impl Default for LinkTimers {
    /// Hello within 10 s; ping after 10 s of quiet; give up after 30 s.
    fn default() -> Self {
        LinkTimers {
            handshake: Duration::from_secs(10),
            keepalive: Duration::from_secs(10),
            silence: Duration::from_secs(30),
        }
    }
}

/// What a link tells its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    Opened,
    Frame(Frame),
    /// The link is ending, and why.
    Failed(String),
}

/// What the node tells a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkCmd {
    Send(Frame),
    /// Send `Bye` with this reason, then close.
    Close(String),
}

/// The link machine (module docs).
#[derive(Debug)]
pub struct LinkConn {
    timers: LinkTimers,
    reader: FrameReader,
    tx: Vec<u8>,
    out: VecDeque<ConnOutput<LinkEvent>>,
    opened: Instant,
    last_heard: Instant,
    /// When the last `Ping` went out (one at a time).
    pinged: Option<Instant>,
    nonce: u64,
    hello_seen: bool,
    /// Closing since then: only the grace deadline is left.
    closing: Option<Instant>,
    done: bool,
}

impl LinkConn {
    pub fn new(timers: LinkTimers, now: Now) -> LinkConn {
        let mut out = VecDeque::new();
        out.push_back(ConnOutput::ToNode(LinkEvent::Opened));
        LinkConn {
            timers,
            reader: FrameReader::new(),
            tx: Vec::new(),
            out,
            opened: now.mono,
            last_heard: now.mono,
            pinged: None,
            nonce: 0,
            hello_seen: false,
            closing: None,
            done: false,
        }
    }

    fn send(&mut self, frame: &Frame) {
        frame.encode(&mut self.tx);
    }

    /// Ends the link: the node hears why; `bye` goes out first if given.
    fn fail(&mut self, now: Now, why: String, bye: Option<String>, abort: bool) {
        if self.done || self.closing.is_some() {
            return;
        }
        if let Some(reason) = bye {
            self.send(&Frame::Bye { reason });
        }
        self.out
            .push_back(ConnOutput::ToNode(LinkEvent::Failed(why)));
        if abort {
            self.done = true;
            self.out.push_back(ConnOutput::Abort);
        } else {
            self.closing = Some(now.mono);
            self.out.push_back(ConnOutput::Close);
        }
    }

    fn on_data(&mut self, now: Now, bytes: &[u8]) {
        self.last_heard = now.mono;
        self.pinged = None;
        self.reader.feed(bytes);
        loop {
            match self.reader.next_frame() {
                Ok(None) => return,
                Ok(Some(Frame::Ping { nonce })) => self.send(&Frame::Pong { nonce }),
                Ok(Some(Frame::Pong { .. })) => {}
                Ok(Some(Frame::Bye { reason })) => {
                    return self.fail(
                        now,
                        format!("the peer closed the link: {reason}"),
                        None,
                        false,
                    );
                }
                Ok(Some(frame)) => {
                    if matches!(frame, Frame::Hello(_)) {
                        self.hello_seen = true;
                    } else if !self.hello_seen {
                        let why = "the first frame was not a Hello".to_string();
                        return self.fail(now, why.clone(), Some(why), false);
                    }
                    self.out
                        .push_back(ConnOutput::ToNode(LinkEvent::Frame(frame)));
                }
                Err(e) => {
                    let why = match &e {
                        WireError::Version(_) | WireError::NotAPeer => e.to_string(),
                        _ => format!("a protocol error: {e}"),
                    };
                    return self.fail(now, why.clone(), Some(why), false);
                }
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        if let Some(since) = self.closing {
            return Some(since + CLOSE_GRACE);
        }
        let mut d = self.last_heard + self.timers.silence;
        if self.pinged.is_none() {
            d = d.min(self.last_heard + self.timers.keepalive);
        }
        if !self.hello_seen {
            d = d.min(self.opened + self.timers.handshake);
        }
        Some(d)
    }

    fn on_timeout(&mut self, now: Now) {
        if let Some(since) = self.closing {
            if now.mono >= since + CLOSE_GRACE && !self.done {
                self.done = true;
                self.out.push_back(ConnOutput::Abort);
            }
            return;
        }
        if !self.hello_seen && now.mono >= self.opened + self.timers.handshake {
            let why = format!("no Hello within {:?}", self.timers.handshake);
            return self.fail(now, why, None, true);
        }
        if now.mono >= self.last_heard + self.timers.silence {
            let why = format!("nothing heard for {:?}", self.timers.silence);
            return self.fail(now, why, None, true);
        }
        if self.pinged.is_none() && now.mono >= self.last_heard + self.timers.keepalive {
            self.nonce += 1;
            let nonce = self.nonce;
            self.send(&Frame::Ping { nonce });
            self.pinged = Some(now.mono);
        }
    }
}

impl Connection for LinkConn {
    type ToNode = LinkEvent;
    type FromNode = LinkCmd;

    fn handle(&mut self, now: Now, input: ConnInput<'_, LinkCmd>) {
        if self.done {
            return;
        }
        match input {
            ConnInput::Data(bytes) if self.closing.is_none() => self.on_data(now, bytes),
            ConnInput::Data(_) => {}
            ConnInput::Eof => self.fail(now, "the peer closed the link".into(), None, false),
            ConnInput::Reset => {
                if self.closing.is_none() {
                    self.out.push_back(ConnOutput::ToNode(LinkEvent::Failed(
                        "the link was reset".into(),
                    )));
                }
                self.done = true;
            }
            ConnInput::Timeout => self.on_timeout(now),
            ConnInput::Flushed(n) => {
                self.tx.drain(..n.min(self.tx.len()));
            }
            ConnInput::File(_) => {}
            ConnInput::Drain => self.fail(
                now,
                "shutting down".into(),
                Some("shutting down".into()),
                false,
            ),
            ConnInput::FromNode(LinkCmd::Send(frame)) if self.closing.is_none() => {
                self.send(&frame);
                if self.tx.len() > MAX_UNSENT {
                    let why = "the peer is not reading".to_string();
                    self.fail(now, why, None, true);
                }
            }
            ConnInput::FromNode(LinkCmd::Send(_)) => {}
            ConnInput::FromNode(LinkCmd::Close(reason)) => {
                self.fail(now, reason.clone(), Some(reason), false)
            }
        }
    }

    fn poll_output(&mut self) -> ConnOutput<LinkEvent> {
        self.out.pop_front().unwrap_or(ConnOutput::Wait {
            deadline: self.deadline(),
        })
    }

    fn transmit(&self) -> &[u8] {
        &self.tx
    }

    fn wants_read(&self) -> bool {
        !self.done && self.closing.is_none()
    }

    fn may_leave_unread(&self) -> bool {
        false
    }
}
