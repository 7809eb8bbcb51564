//! The client side of one HTTP/1.1 connection: what the proxy speaks to an upstream.
//!
//! # Theory of operation
//! One exchange at a time (no pipelining to upstreams: a failed pipelined exchange could not
//! tell which requests the upstream acted on). The owner sends a request with
//! [`ClientConn::send_head`], [`ClientConn::send_data`] and [`ClientConn::end_request`], feeds
//! what the upstream sends, and takes [`ClientEvent`]s from [`ClientConn::poll_event`]: interim
//! `1xx` heads, the final head, body data, the end. The response may start before the request
//! has been sent whole (an upstream may answer early, e.g. 413); the exchange ends when both
//! are done.
//!
//! | situation | event | reusable afterwards |
//! |---|---|---|
//! | complete response, keep-alive on both sides, length-framed | `End` | yes |
//! | `Connection: close` (either side), HTTP/1.0 without keep-alive, close-delimited body | `End` | no |
//! | malformed or ambiguous response (the smuggling vectors, in the response direction) | `Failed(Malformed)` | no |
//! | the upstream closes or resets before the response ended (a reset ends nothing, not even a close-delimited body) | `Failed(Closed)` | no |
//! | no response byte for the read timeout while one is awaited (from the moment the request was sent whole, as nginx's `proxy_read_timeout`) | `Failed(TimedOut)` (from `on_timeout`) | no |
//! | `101` to a request that asked to upgrade | `Response`, then `Upgrade(rest)` | no (a tunnel now) |
//!
//! For the proxy's retry rules the connection tells how much of the current request was
//! written ([`ClientConn::request_bytes_flushed`]) and whether any response byte arrived
//! ([`ClientConn::response_started`]); a request none of which was written can be moved,
//! body bytes included, to another connection ([`ClientConn::take_unsent`],
//! [`ClientConn::resume`]), so a stale pooled connection costs no request its retry. Deadlines are values, as in the server connection.

use super::parse::{ErrorKind, Event, ParseError, Parser};
use super::serialize::{write_chunk, write_last_chunk, write_request_head, BodyFraming};
use super::{Headers, Limits, RequestHead, ResponseHead, Status, Version};
use crate::node::Now;
use crate::time::{Duration, Instant};

/// The upstream hop's deadlines (`proxy_read_timeout`, `proxy_send_timeout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// Longest wait for the next response byte while a response is awaited.
    pub read: Duration,
    /// Longest time request bytes may wait unsent.
    pub send: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            read: Duration::from_secs(60),
            send: Duration::from_secs(60),
        }
    }
}

/// Why an exchange failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The response broke HTTP/1.1 framing or syntax: never forward it.
    Malformed(ParseError),
    /// The upstream closed (or reset) before the response ended.
    Closed,
    TimedOut,
}

/// What the owner learns from the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response head: 1xx interim heads come before the final one.
    Response(ResponseHead),
    Data(Vec<u8>),
    /// The response is complete.
    End,
    /// After a 101: the bytes that followed its head; from here the connection is a tunnel.
    Upgrade(Vec<u8>),
    Failed(ClientError),
    /// The upstream closed an idle connection (it must leave the pool).
    Closed,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Req {
    Idle,
    /// Sending a body: `Some(n)` bytes of Content-Length left, `None` for chunked.
    Body(Option<u64>),
    Done,
}

/// A request none of which was written, taken off a connection that failed before it could
/// send it ([`ClientConn::take_unsent`]), to be sent on another ([`ClientConn::resume`]).
#[derive(Debug)]
pub struct Unsent {
    out: Vec<u8>,
    req: Req,
    method: crate::http::Method,
}

/// See the module docs.
#[derive(Debug)]
pub struct ClientConn {
    parser: Parser,
    timeouts: ClientTimeouts,
    out: Vec<u8>,
    req: Req,
    /// An exchange is in progress (from `send_head` until its response ended).
    in_exchange: bool,
    response_done: bool,
    response_started: bool,
    /// Neither side asked to close, and the framing allows reuse.
    keep_alive: bool,
    /// The connection can carry nothing more (failed, closed, upgraded).
    dead: bool,
    /// The connection was reset: once the bytes before it are read, it is gone.
    reset: bool,
    request_flushed: u64,
    /// When the last response byte arrived, or the wait for one began.
    read_since: Instant,
    send_since: Instant,
}

impl ClientConn {
    pub fn new(now: Now, limits: Limits, timeouts: ClientTimeouts) -> Self {
        ClientConn {
            parser: Parser::response(limits),
            timeouts,
            out: Vec::new(),
            req: Req::Idle,
            in_exchange: false,
            response_done: false,
            response_started: false,
            keep_alive: true,
            dead: false,
            reset: false,
            request_flushed: 0,
            read_since: now.mono,
            send_since: now.mono,
        }
    }

    /// Starts an exchange. Only on an idle, live connection (the owner checks
    /// [`ClientConn::is_idle`]); otherwise nothing happens and `false` is returned.
    pub fn send_head(&mut self, now: Now, head: &RequestHead, framing: BodyFraming) -> bool {
        if !self.is_idle() {
            return false;
        }
        if head.headers.has_token("connection", "close") {
            self.keep_alive = false;
        }
        write_request_head(
            &head.method,
            head.target.as_str(),
            Version::HTTP_11,
            &head.headers,
            framing,
            &mut self.out,
        );
        self.parser.expect_response_to(head.method.clone());
        self.req = match framing {
            BodyFraming::Length(n) if n > 0 => Req::Body(Some(n)),
            BodyFraming::Chunked => Req::Body(None),
            _ => Req::Done,
        };
        self.in_exchange = true;
        self.response_done = false;
        self.response_started = false;
        self.request_flushed = 0;
        self.read_since = now.mono;
        self.send_since = now.mono;
        true
    }

    /// Takes back the current request when none of it was written and no answer began: the
    /// bytes queued so far (head and body, framed) and where the request stands, so that
    /// [`ClientConn::resume`] on another connection sends it as if it had started there. The
    /// connection is dead afterwards. `None` once a byte went out (the peer may have acted
    /// on it) or a response byte came.
    pub fn take_unsent(&mut self) -> Option<Unsent> {
        // (The exchange may already be over as a failure: the bytes are still the request's.)
        if self.out.is_empty() || self.request_flushed > 0 || self.response_started {
            return None;
        }
        let method = self.parser.pending_method()?;
        self.in_exchange = false;
        self.fail();
        Some(Unsent {
            out: std::mem::take(&mut self.out),
            req: self.req,
            method,
        })
    }

    /// Starts an exchange with a request taken from another connection by
    /// [`ClientConn::take_unsent`]. Only on an idle, live connection; otherwise nothing
    /// happens and `false` is returned.
    pub fn resume(&mut self, now: Now, unsent: Unsent) -> bool {
        if !self.is_idle() {
            return false;
        }
        self.out = unsent.out;
        self.req = unsent.req;
        self.parser.expect_response_to(unsent.method);
        self.in_exchange = true;
        self.response_done = false;
        self.response_started = false;
        self.request_flushed = 0;
        self.read_since = now.mono;
        self.send_since = now.mono;
        true
    }

    /// Request body bytes (at most what Content-Length has left; the rest is dropped).
    pub fn send_data(&mut self, now: Now, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.out.is_empty() {
            self.send_since = now.mono;
        }
        match &mut self.req {
            Req::Body(Some(left)) => {
                let n = (data.len() as u64).min(*left) as usize;
                self.out.extend_from_slice(&data[..n]);
                *left -= n as u64;
                if *left == 0 {
                    self.req = Req::Done;
                }
            }
            Req::Body(None) => write_chunk(data, &mut self.out),
            Req::Idle | Req::Done => {}
        }
    }

    /// The request body is complete (writes the last chunk of a chunked body).
    pub fn end_request(&mut self, now: Now) {
        if self.req == Req::Body(None) {
            if self.out.is_empty() {
                self.send_since = now.mono;
            }
            write_last_chunk(&Headers::new(), &mut self.out);
        }
        if let Req::Body(Some(1..)) = self.req {
            // A Content-Length body that ended early: the upstream would wait for the rest.
            self.fail();
            return;
        }
        self.req = Req::Done;
        self.read_since = now.mono;
    }

    /// The upstream is gone (closed, or reset once what came before was read): an exchange in
    /// progress failed, else the idle connection closed.
    fn gone(&mut self) -> ClientEvent {
        self.dead = true;
        if std::mem::take(&mut self.in_exchange) {
            ClientEvent::Failed(ClientError::Closed)
        } else {
            ClientEvent::Closed
        }
    }

    fn fail(&mut self) {
        self.dead = true;
        self.keep_alive = false;
    }

    pub fn feed(&mut self, now: Now, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.read_since = now.mono;
            if self.in_exchange {
                self.response_started = true;
            }
        }
        self.parser.feed(bytes);
    }
    /// The upstream closed its side cleanly (FIN): the end of a close-delimited body.
    pub fn feed_eof(&mut self) {
        self.parser.feed_eof();
    }
    /// The connection was reset (RST): what arrived before still counts, but nothing is
    /// complete for want of more bytes, not even a close-delimited body, which only a clean
    /// close ends (a reset may have cut it anywhere).
    pub fn feed_reset(&mut self) {
        self.reset = true;
    }

    /// The next event, if any. See the module docs.
    pub fn poll_event(&mut self, now: Now) -> Option<ClientEvent> {
        if self.dead && !self.in_exchange {
            return None;
        }
        match self.parser.next_event() {
            Ok(Event::Response(head)) => {
                if head.status == Status::SWITCHING_PROTOCOLS {
                    self.keep_alive = false;
                    return Some(ClientEvent::Response(head));
                }
                if !head.status.is_informational() {
                    let h = &head.headers;
                    let close = h.has_token("connection", "close")
                        || (head.version == Version::HTTP_10
                            && !h.has_token("connection", "keep-alive"))
                        || self.parser.in_close_delimited_body();
                    if close {
                        self.keep_alive = false;
                    }
                }
                Some(ClientEvent::Response(head))
            }
            Ok(Event::Data(d)) => Some(ClientEvent::Data(d)),
            Ok(Event::End { .. }) => {
                self.response_done = true;
                if self.req == Req::Done {
                    self.in_exchange = false;
                } else {
                    // The upstream answered before the request was sent whole: the rest of the
                    // request cannot be told apart from garbage any more, so no reuse.
                    self.keep_alive = false;
                    self.in_exchange = false;
                }
                if !self.keep_alive {
                    self.dead = true;
                }
                self.read_since = now.mono;
                Some(ClientEvent::End)
            }
            Ok(Event::Upgrade) => {
                self.dead = true;
                self.in_exchange = false;
                Some(ClientEvent::Upgrade(self.parser.take_rest()))
            }
            Ok(Event::Closed) => Some(self.gone()),
            // A response parser yields no requests and never pauses.
            // Everything that arrived before a reset is read; then the connection is gone.
            Ok(Event::NeedData) if self.reset => Some(self.gone()),
            Ok(Event::NeedData | Event::Paused | Event::Request(_)) => None,
            Err(e) => {
                let was = self.in_exchange;
                self.in_exchange = false;
                self.fail();
                if e.kind == ErrorKind::Truncated {
                    was.then_some(ClientEvent::Failed(ClientError::Closed))
                        .or(Some(ClientEvent::Closed))
                } else {
                    Some(ClientEvent::Failed(ClientError::Malformed(e)))
                }
            }
        }
    }

    /// A deadline passed: the wait for the response, or for the request to leave, is over.
    pub fn on_timeout(&mut self, now: Now) -> Option<ClientEvent> {
        let d = self.deadline()?;
        if now.mono < d {
            return None;
        }
        let was = self.in_exchange;
        self.in_exchange = false;
        self.fail();
        was.then_some(ClientEvent::Failed(ClientError::TimedOut))
    }

    /// The earliest instant at which [`ClientConn::on_timeout`] must be called.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.in_exchange {
            return None;
        }
        let send = (!self.out.is_empty()).then(|| self.send_since + self.timeouts.send);
        // As nginx arms proxy_read_timeout: once the request has been sent whole (a slow
        // upload that keeps moving is the send timeout's business), or between the bytes of
        // an answer that has begun (an early one included).
        let sent_whole = self.req == Req::Done && self.out.is_empty();
        let awaiting = !self.response_done && (self.response_started || sent_whole);
        let read = awaiting.then(|| self.read_since + self.timeouts.read);
        match (send, read) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn transmit(&self) -> &[u8] {
        &self.out
    }
    /// The driver wrote `n` bytes from the front of [`ClientConn::transmit`].
    pub fn flushed(&mut self, now: Now, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
        self.request_flushed += n as u64;
        if n > 0 {
            self.send_since = now.mono;
            if self.out.is_empty() && self.req == Req::Done && !self.response_started {
                // The request has left: the wait for its answer starts now.
                self.read_since = now.mono;
            }
        }
    }

    /// No exchange in progress and the connection can carry another.
    pub fn is_idle(&self) -> bool {
        !self.in_exchange && !self.dead && self.out.is_empty()
    }
    /// May go back to the pool: idle, keep-alive on both sides, nothing unread.
    pub fn reusable(&self) -> bool {
        self.is_idle() && self.keep_alive && self.parser.buffered() == 0
    }
    /// Whether the owner should read from the upstream now.
    pub fn wants_read(&self) -> bool {
        !self.dead || self.in_exchange
    }
    /// Bytes read from the upstream and not yet taken out as events.
    pub fn buffered_input(&self) -> usize {
        self.parser.buffered()
    }
    /// Bytes of the current request written to the upstream so far.
    pub fn request_bytes_flushed(&self) -> u64 {
        self.request_flushed
    }
    /// Whether any byte of the current response has arrived.
    pub fn response_started(&self) -> bool {
        self.response_started
    }
    pub fn is_dead(&self) -> bool {
        self.dead
    }
}
