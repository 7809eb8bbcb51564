//! The three kinds of connection a peer node has, as one connection type (the node contract
//! names one): its user's web UI and API ([`BackendConn`] in app mode), links to other peers
//! ([`LinkConn`]), and its client connection to the tracker ([`FetchConn`]). Each message is
//! tagged with its kind; a message of the wrong kind for a connection is dropped (it cannot
//! happen: the node sends each connection only its own kind).

use super::link::{LinkCmd, LinkConn, LinkEvent, LinkTimers};
use crate::backend::app::{AppReply, AppRequest};
use crate::backend::{BackendConfig, BackendConn};
use crate::http::client::ClientTimeouts;
use crate::http::fetch::{Fetch, FetchConn, Fetched};
use crate::node::machine::NewConn;
use crate::node::{ConnInput, ConnOutput, Connection, FileSegment, Now};
use std::sync::Arc;

/// How a connection is made.
#[derive(Clone, Debug)]
pub enum Spawn {
    Ui(Arc<BackendConfig>),
    Link(LinkTimers),
    Fetch(ClientTimeouts),
}

/// What a connection tells the node.
#[derive(Debug)]
pub enum Up {
    Ui(AppRequest),
    Link(LinkEvent),
    Fetch(Fetched),
}

/// What the node tells a connection.
#[derive(Debug)]
pub enum Down {
    Ui(AppReply),
    Link(LinkCmd),
    Fetch(Fetch),
}

/// One connection of a peer node.
#[derive(Debug)]
pub enum PeerConn {
    Ui(Box<BackendConn>),
    Link(LinkConn),
    Fetch(Box<FetchConn>),
}

impl PeerConn {
    pub fn spawn(spawn: &Spawn, now: Now, conn: NewConn) -> PeerConn {
        match spawn {
            Spawn::Ui(cfg) => PeerConn::Ui(Box::new(
                BackendConn::with_buggify(cfg.clone(), now, conn.buggify).with_peer(conn.peer),
            )),
            Spawn::Link(t) => PeerConn::Link(LinkConn::new(t.clone(), now)),
            Spawn::Fetch(t) => PeerConn::Fetch(Box::new(FetchConn::new(now, t.clone()))),
        }
    }
}

/// `input` for a connection whose messages are `M`, or `None` if it carries a message of
/// another kind.
fn retag<'a, M>(
    input: ConnInput<'a, Down>,
    pick: impl FnOnce(Down) -> Option<M>,
) -> Option<ConnInput<'a, M>> {
    Some(match input {
        ConnInput::Data(d) => ConnInput::Data(d),
        ConnInput::Eof => ConnInput::Eof,
        ConnInput::Reset => ConnInput::Reset,
        ConnInput::File(f) => ConnInput::File(f),
        ConnInput::Timeout => ConnInput::Timeout,
        ConnInput::Flushed(n) => ConnInput::Flushed(n),
        ConnInput::Drain => ConnInput::Drain,
        ConnInput::FromNode(m) => ConnInput::FromNode(pick(m)?),
    })
}

fn up<M>(out: ConnOutput<M>, tag: impl FnOnce(M) -> Up) -> ConnOutput<Up> {
    match out {
        ConnOutput::ToNode(m) => ConnOutput::ToNode(tag(m)),
        ConnOutput::File(f) => ConnOutput::File(f),
        ConnOutput::Log(l) => ConnOutput::Log(l),
        ConnOutput::Close => ConnOutput::Close,
        ConnOutput::Abort => ConnOutput::Abort,
        ConnOutput::Wait { deadline } => ConnOutput::Wait { deadline },
    }
}

impl Connection for PeerConn {
    type ToNode = Up;
    type FromNode = Down;

    fn handle(&mut self, now: Now, input: ConnInput<'_, Down>) {
        match self {
            PeerConn::Ui(c) => {
                if let Some(i) = retag(input, |m| match m {
                    Down::Ui(r) => Some(r),
                    _ => None,
                }) {
                    c.handle(now, i)
                }
            }
            PeerConn::Link(c) => {
                if let Some(i) = retag(input, |m| match m {
                    Down::Link(r) => Some(r),
                    _ => None,
                }) {
                    c.handle(now, i)
                }
            }
            PeerConn::Fetch(c) => {
                if let Some(i) = retag(input, |m| match m {
                    Down::Fetch(r) => Some(r),
                    _ => None,
                }) {
                    c.handle(now, i)
                }
            }
        }
    }

    fn poll_output(&mut self) -> ConnOutput<Up> {
        match self {
            PeerConn::Ui(c) => up(c.poll_output(), Up::Ui),
            PeerConn::Link(c) => up(c.poll_output(), Up::Link),
            PeerConn::Fetch(c) => up(c.poll_output(), Up::Fetch),
        }
    }

    fn transmit(&self) -> &[u8] {
        match self {
            PeerConn::Ui(c) => c.transmit(),
            PeerConn::Link(c) => c.transmit(),
            PeerConn::Fetch(c) => c.transmit(),
        }
    }

    fn transmit_file(&self) -> Option<FileSegment> {
        match self {
            PeerConn::Ui(c) => c.transmit_file(),
            _ => None,
        }
    }

    fn wants_read(&self) -> bool {
        match self {
            PeerConn::Ui(c) => c.wants_read(),
            PeerConn::Link(c) => c.wants_read(),
            PeerConn::Fetch(c) => c.wants_read(),
        }
    }

    fn file_follows(&self) -> bool {
        match self {
            PeerConn::Ui(c) => c.file_follows(),
            _ => false,
        }
    }

    fn closes_after_flush(&self) -> bool {
        match self {
            PeerConn::Ui(c) => c.closes_after_flush(),
            _ => false,
        }
    }

    fn may_leave_unread(&self) -> bool {
        match self {
            PeerConn::Ui(c) => c.may_leave_unread(),
            PeerConn::Link(c) => c.may_leave_unread(),
            PeerConn::Fetch(c) => c.may_leave_unread(),
        }
    }

    fn check_invariants(&self) {
        match self {
            PeerConn::Ui(c) => c.check_invariants(),
            PeerConn::Link(c) => c.check_invariants(),
            PeerConn::Fetch(c) => c.check_invariants(),
        }
    }
}
