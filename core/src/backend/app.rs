//! App mode: the backend connection as the front of a WeApRous app.
//!
//! With [`BackendConfig::app`](super::BackendConfig::app) set, a [`BackendConn`](super::BackendConn)
//! still parses HTTP, serves files and keeps its deadlines, but the app's node decides what
//! most requests get. The split:
//!
//! * **Answered by the connection alone**: a `GET` or `HEAD` of a static asset (a name with a
//!   known media type that is not a page: stylesheets, scripts, images, fonts) or of one of
//!   [`AppRules::public_pages`] (the login page). These cost no round trip to the node, so the
//!   static path stays as fast as the plain backend's.
//! * **Handed to the node**: everything else. The connection reads the body whole (either
//!   framing, after `100 Continue` if asked) up to [`AppRules::max_body`], then emits one
//!   [`AppRequest`] and waits. A body over the limit is answered `413` by the connection and
//!   never reaches the node. Pipelined requests reach the node one at a time, in order: the
//!   next is read only after the node's reply to this one has ended.
//!
//! The node answers every [`AppRequest`] with exactly one of:
//! * [`AppReply::Respond`]: a whole response (the connection frames it with `Content-Length`;
//!   for `HEAD` it sends the head alone);
//! * [`AppReply::Static`]: serve what the static-file rules give for this request (a protected
//!   page, once the node has checked the session). With `private`, the answer says
//!   `Cache-Control: private, no-cache`: it depends on who asks, so a browser must ask again
//!   each time (a 304 once the session still holds) and never shows it after a sign-out;
//! * [`AppReply::Stream`]: a chunked response that stays open, fed by
//!   [`AppReply::StreamData`] and ended by [`AppReply::StreamEnd`] (Server-Sent Events).
//!
//! # A stream reader that falls behind
//! A stream's bytes are pushed by the node, not pulled by the client, so a client that stops
//! reading would make the connection buffer without bound. Once more than
//! [`AppRules::max_stream_backlog`] bytes wait unsent, the connection is aborted: the client
//! reconnects and resumes from its last event id, replayed from the log, which is cheaper
//! for everyone than holding a slow reader's backlog (the policy of chat servers that keep a
//! replayable log).
//!
//! Replies that come after the connection has gone, or that answer nothing, are ignored: the
//! node learns of the end from its `Closed` input.

use crate::http::{RequestHead, ResponseHead};
// `core::net` holds address values only (no sockets).
use core::net::SocketAddr;

/// Which requests an app's node answers, and the limits of what passes between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRules {
    /// Pages (`/login.html`) served without asking the node, as static assets are.
    pub public_pages: Vec<String>,
    /// The largest request body handed to the node; larger ones are answered `413`.
    pub max_body: usize,
    /// The most bytes of a stream that may wait unsent before the reader is cut off.
    pub max_stream_backlog: usize,
    /// The largest response body, or stream event, the node may hand over in one message
    /// (its pages of history stay under it); a bigger one is the node's bug and gets a 500.
    pub max_response: usize,
}

impl Default for AppRules {
    /// The login page public; 64 KiB bodies (a chat message is at most 4,000 characters, so
    /// 16 KiB of UTF-8 plus its JSON); a 256 KiB stream backlog (hundreds of events); 4 MiB
    /// responses (a page of history).
    fn default() -> Self {
        AppRules {
            public_pages: vec!["/login.html".into()],
            max_body: 64 * 1024,
            max_stream_backlog: 256 * 1024,
            max_response: 4 * 1024 * 1024,
        }
    }
}

impl AppRules {
    /// Whether the connection answers a `GET`/`HEAD` alone: `path` (decoded, `/a/b` form)
    /// is a public page, or its file name has a known media type that is not a page. Routes
    /// have no extension (`/login`, `/channels`), and a name of unknown type might be one, so
    /// those go to the node, which hands back [`AppReply::Static`] for what it does not route.
    pub fn answers_alone(&self, file_name: &str, path: &str) -> bool {
        super::mime::is_asset(file_name) || self.public_pages.iter().any(|p| p == path)
    }
}

/// A request handed to the node: its head, the far end's address and the whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRequest {
    pub head: RequestHead,
    pub peer: SocketAddr,
    pub body: Vec<u8>,
}

/// The node's answer to an [`AppRequest`] (module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppReply {
    Respond { head: ResponseHead, body: Vec<u8> },
    Static { private: bool },
    Stream { head: ResponseHead },
    StreamData(Vec<u8>),
    StreamEnd,
}
