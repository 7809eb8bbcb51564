//! The server side of one HTTP/1.1 connection: framing, keep-alive, pipelining and deadlines.
//!
//! # Theory of operation
//! One exchange at a time, as h11 does. A request head comes out of [`ServerConn::poll_event`];
//! the application answers with [`ServerConn::send_head`], [`ServerConn::send_data`] and
//! [`ServerConn::end_response`]. The next pipelined request is parsed only once the current
//! response has ended and the current request's body has been read (an unread body is drained,
//! never parsed as a request), so responses always go out in request order. Pipelined bytes
//! wait in the parser, up to [`Timeouts::max_pipelined`] bytes; past it, reading stops.
//!
//! | situation | what the connection does |
//! |---|---|
//! | malformed request, no response begun | the RFC status (400/413/414/431/501/505), `Connection: close`, close |
//! | malformed body (or one over the limit) after its response was queued whole | close behind that response; no second response |
//! | malformed body while its response is still being produced | abort (a truncated response must never look complete) |
//! | `Connection: close`, or HTTP/1.0 without `keep-alive` | answer, then close |
//! | `Expect: 100-continue` | `100 Continue` when the application calls [`ServerConn::accept_body`]; an unknown expectation is 417 |
//! | an answer starts before a chunked body was read | `Connection: close` (the rest may yet fail and end the connection: a pool must not count on it) |
//! | the last answer (`Connection: close`) ends before its request's body was read | read what has arrived of the body, then close once the answer is written (lingering); the rest is not waited for |
//! | peer closes between requests | close |
//! | peer closes mid-head | close without answering |
//!
//! **Exactly one response per request.** Once a response to a request has been started or
//! queued, nothing found later in that request (bad body framing, a body over the limit, a
//! stalled body) produces a second one: the connection closes behind the response already
//! queued, or aborts if that response is still being produced, and nothing that follows on the
//! connection is read or answered. A second response would be taken by the client (or by a
//! proxy's pooled connection) as the answer to its *next* request: response-queue poisoning.
//!
//! Deadlines are values, never clock reads: [`ServerConn::deadline`] is the earliest of
//! * header: from a request's first byte until its head is complete (slow-loris), then 408;
//! * idle: between requests on a kept-alive connection, then a silent close;
//! * body: no body byte for this long while one is expected, then 408 (or abort);
//! * send: no transmit progress for this long while bytes wait, then abort.

use super::parse::{ErrorKind, Event, ParseError, Parser};
use super::serialize::{write_chunk, write_last_chunk, write_response_head, BodyFraming};
use super::{date, Headers, Limits, Method, RequestHead, ResponseHead, Status, Version};
use crate::node::{FileSegment, Now};
use crate::time::{Duration, Instant};

/// Deadlines and the pipelining buffer limit of a server connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub body: Duration,
    pub send: Duration,
    /// Most bytes of pipelined requests held while a response is in progress.
    pub max_pipelined: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(30),
            send: Duration::from_secs(60),
            max_pipelined: 64 * 1024,
        }
    }
}

/// What the application learns from the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerEvent {
    Request(RequestHead),
    Body(Vec<u8>),
    BodyEnd,
    /// The connection answered a malformed request by itself (already written; it closes next).
    Rejected {
        error: ParseError,
        status: Status,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Req {
    /// Waiting for a head (`started` = first byte seen).
    Idle,
    Body,
    Done,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Resp {
    NotStarted,
    Body {
        chunked: bool,
        remaining: Option<u64>,
        send_body: bool,
    },
    Done,
}

/// Whether and how the connection ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Closing {
    Open,
    /// Close once the transmit buffer is written.
    AfterFlush,
    Abort,
}

/// The server side of one connection. See the module docs.
#[derive(Debug)]
pub struct ServerConn {
    parser: Parser,
    timeouts: Timeouts,
    out: Vec<u8>,
    out_pos: usize,
    req: Req,
    resp: Resp,
    keep_alive: bool,
    /// The current request said it is the client's last (`Connection: close`, or 1.0 without
    /// keep-alive).
    client_done: bool,
    method: Method,
    version: Version,
    expect_continue: bool,
    /// The current request's body is chunked (its length is unknown until it ends).
    chunked_body: bool,
    /// A graceful shutdown began: the exchange in progress is the last.
    draining: bool,
    head_done_at: Instant,
    /// When the current wait began (header/idle/body) and when transmit last progressed.
    wait_since: Instant,
    send_since: Instant,
    /// A request's first byte has arrived but not its whole head.
    head_started: bool,
    peer_eof: bool,
    closing: Closing,
    /// Body bytes of the current response (for the access log).
    body_sent: u64,
    status: Status,
    /// The last `Date` value and the second it is for (formatting costs more than a lookup);
    /// formatted on first use, so a connection that never answers never formats one.
    date: Option<(crate::time::UnixTime, String)>,
    /// File bytes to send after `out` (the rest of the current body).
    file: Option<FileSegment>,
    /// Protocols were switched: HTTP is over, `out` carries raw bytes (see
    /// [`ServerConn::switch_protocols`]).
    tunnel: bool,
}

impl ServerConn {
    pub fn new(now: Now, limits: Limits, timeouts: Timeouts) -> Self {
        ServerConn {
            parser: Parser::request(limits),
            timeouts,
            out: Vec::new(),
            out_pos: 0,
            req: Req::Idle,
            resp: Resp::NotStarted,
            keep_alive: true,
            client_done: false,
            method: Method::Get,
            version: Version::HTTP_11,
            expect_continue: false,
            chunked_body: false,
            draining: false,
            head_done_at: now.mono,
            wait_since: now.mono,
            send_since: now.mono,
            head_started: false,
            peer_eof: false,
            closing: Closing::Open,
            body_sent: 0,
            status: Status::OK,
            date: None,
            file: None,
            tunnel: false,
        }
    }

    // ----- inputs -----

    /// Bytes from the client.
    pub fn feed(&mut self, now: Now, bytes: &[u8]) {
        if self.closing != Closing::Open || bytes.is_empty() {
            return;
        }
        if self.req == Req::Idle && !self.head_started {
            self.head_started = true;
            self.wait_since = now.mono;
        } else if self.req == Req::Body {
            self.wait_since = now.mono;
        }
        self.parser.feed(bytes);
    }
    /// The client half-closed.
    pub fn feed_eof(&mut self) {
        self.peer_eof = true;
        self.parser.feed_eof();
    }
    /// Graceful shutdown: the exchange in progress finishes, no further request is read.
    pub fn drain(&mut self) {
        self.draining = true;
        self.keep_alive = false;
        let between_requests = self.req == Req::Idle && !self.head_started && !self.responding();
        if between_requests && self.closing == Closing::Open {
            self.closing = Closing::AfterFlush;
        }
    }
    /// The driver wrote `n` bytes of [`Self::transmit`], or, once that is empty, of
    /// [`Self::transmit_file`].
    pub fn flushed(&mut self, now: Now, n: usize) {
        if self.transmit_len() > 0 {
            self.out_pos += n;
            debug_assert!(self.out_pos <= self.out.len());
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
            } else if self.out_pos >= self.out.len() - self.out_pos {
                // A client that always takes part of what waits, while more is appended
                // behind it, would otherwise grow the buffer without bound: drop the written
                // prefix once it is no smaller than what remains (amortised O(1) a byte).
                self.out.drain(..self.out_pos);
                self.out_pos = 0;
            }
        } else if let Some(f) = &mut self.file {
            debug_assert!(n as u64 <= f.len);
            f.offset += n as u64;
            f.len -= (n as u64).min(f.len);
            if f.len == 0 {
                self.file = None;
            }
        }
        if n > 0 {
            self.send_since = now.mono;
        }
    }
    /// A deadline may have passed. Returns the rejection it caused, if any.
    pub fn on_timeout(&mut self, now: Now) -> Option<ServerEvent> {
        if self.closing == Closing::Abort {
            return None;
        }
        if self.pending_len() > 0 && now.mono >= self.send_since + self.timeouts.send {
            self.closing = Closing::Abort;
            return None;
        }
        if self.closing != Closing::Open {
            return None;
        }
        // The client owes us bytes only before its request is complete; once the request has
        // been read, only the send deadline runs.
        if self.req == Req::Done {
            return None;
        }
        let limit = match (self.req, self.head_started) {
            (Req::Idle, false) => self.timeouts.idle,
            (Req::Idle, true) => self.timeouts.header,
            _ => self.timeouts.body,
        };
        if now.mono < self.wait_since + limit {
            return None;
        }
        match (self.req, self.head_started, self.resp) {
            // Idle keep-alive: nothing to answer.
            (Req::Idle, false, _) => self.closing = Closing::AfterFlush,
            // A stalled body after the answer went out: a second answer is impossible; close.
            (Req::Body, _, Resp::Done) => self.closing = Closing::AfterFlush,
            // A stalled body while the answer is being written: the send deadline governs.
            (Req::Body, _, Resp::Body { .. }) => {}
            _ => {
                let error = ParseError {
                    kind: ErrorKind::Truncated,
                    offset: 0,
                };
                return Some(self.reject(now, error, Status::REQUEST_TIMEOUT));
            }
        }
        None
    }

    /// The next event for the application, or `None` when it must wait (more bytes needed, or
    /// the current response must end before the next request is read).
    pub fn poll_event(&mut self, now: Now) -> Option<ServerEvent> {
        if self.closing != Closing::Open {
            return None;
        }
        // A request read whole waits for its answer: the next one is read only from the next
        // cycle, which the answer's end (or the body's, after an early answer) starts.
        if self.req == Req::Done {
            return None;
        }
        let ev = match self.parser.next_event() {
            Ok(ev) => ev,
            Err(e) => return self.on_parse_error(now, e),
        };
        match ev {
            Event::Request(head) => {
                self.req = Req::Body;
                self.head_started = false;
                self.head_done_at = now.mono;
                self.wait_since = now.mono;
                self.method = head.method.clone();
                self.version = head.version;
                // A head that completes after a drain began is answered as the last.
                self.keep_alive = wants_keep_alive(&head) && !self.draining;
                self.client_done = !self.keep_alive;
                self.body_sent = 0;
                self.status = Status::OK;
                self.expect_continue = false;
                self.chunked_body = head.headers.contains("transfer-encoding");
                if let Some(expect) = head.headers.get("expect") {
                    if head.version.at_least_11() {
                        if expect.eq_ignore_ascii_case(b"100-continue") {
                            self.expect_continue = true;
                        } else {
                            return Some(self.reject(
                                now,
                                ParseError {
                                    kind: ErrorKind::BadHeaderValue,
                                    offset: 0,
                                },
                                Status::EXPECTATION_FAILED,
                            ));
                        }
                    }
                }
                Some(ServerEvent::Request(head))
            }
            Event::Data(d) => {
                self.wait_since = now.mono;
                Some(ServerEvent::Body(d))
            }
            Event::End { .. } => {
                self.req = Req::Done;
                if self.resp == Resp::Done {
                    self.start_next_cycle(now);
                }
                Some(ServerEvent::BodyEnd)
            }
            Event::Paused => {
                // We never switch protocols: decline and go on reading HTTP.
                self.parser.resume();
                self.poll_event(now)
            }
            // (Only between requests: no answer is under way.)
            Event::Closed => {
                self.closing = Closing::AfterFlush;
                None
            }
            Event::NeedData => {
                if self.req == Req::Body && self.resp == Resp::Done && !self.keep_alive {
                    // The last answer is out and what has arrived of its body is read: waiting
                    // for the rest would only delay the close (a client told
                    // `Connection: close` before sending a body it held back for
                    // `100 Continue` never sends it). The close lingers for what still comes.
                    self.closing = Closing::AfterFlush;
                }
                None
            }
            Event::Response(_) | Event::Upgrade => {
                debug_assert!(false, "a request parser never yields these");
                self.closing = Closing::Abort;
                None
            }
        }
    }

    /// One response per request: a request already answered (or being answered) never gets
    /// a second one for an error found later in its body. See the module docs.
    fn on_parse_error(&mut self, now: Now, error: ParseError) -> Option<ServerEvent> {
        match (error.kind, self.resp) {
            // The client went away mid-message: nobody to answer.
            (ErrorKind::Truncated, Resp::NotStarted) => {
                self.closing = Closing::AfterFlush;
                None
            }
            (_, Resp::NotStarted) => Some(self.reject(now, error, error.kind.status())),
            // The answer is out whole: the connection ends behind it, unanswered from here.
            (_, Resp::Done) => {
                self.keep_alive = false;
                self.closing = Closing::AfterFlush;
                None
            }
            // The answer is under way and could not be told apart from a complete one if it
            // were cut short later: abort.
            (_, Resp::Body { .. }) => {
                self.closing = Closing::Abort;
                None
            }
        }
    }

    /// Answers with an error page and closes.
    fn reject(&mut self, now: Now, error: ParseError, status: Status) -> ServerEvent {
        self.keep_alive = false;
        // The answer to a HEAD has no body, even an error page (a client reading it as the
        // answer to its HEAD would take the page for the next response). The method is known
        // once the head was read, or when it failed after its request line.
        let head_request = match self.req {
            Req::Body => self.method == Method::Head,
            _ => self.parser.failed_method() == Some(&Method::Head),
        };
        self.method = if head_request {
            Method::Head
        } else {
            Method::Get
        };
        // Plain text: a request that broke the protocol is no browser's.
        let mut head = ResponseHead::new(status);
        let (content_type, body) = super::page::page(status, false);
        head.headers.append("Content-Type", content_type);
        self.send_head(now, head, BodyFraming::Length(body.len() as u64));
        self.send_data(now, body.as_bytes());
        self.end_response(now);
        self.closing = Closing::AfterFlush;
        ServerEvent::Rejected { error, status }
    }

    fn start_next_cycle(&mut self, now: Now) {
        debug_assert!(self.req == Req::Done && self.resp == Resp::Done);
        self.req = Req::Idle;
        self.resp = Resp::NotStarted;
        self.wait_since = now.mono;
        self.head_started = self.parser.buffered() > 0;
        if !self.keep_alive || (self.peer_eof && self.parser.buffered() == 0) {
            self.closing = Closing::AfterFlush;
        }
    }

    // ----- the application's response -----

    /// Sends `100 Continue` if the client waits for it. Call before reading a body you want.
    pub fn accept_body(&mut self) {
        if self.expect_continue && self.resp == Resp::NotStarted {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.expect_continue = false;
        }
    }

    /// Starts the response. Adds `Date`, `Connection` and the framing header. For HEAD, and for
    /// 204/304, no body is sent whatever `framing` says (`Content-Length` is still announced for
    /// HEAD, as GET would). `BodyFraming::Chunked` to an HTTP/1.0 client becomes close-delimited.
    pub fn send_head(&mut self, now: Now, mut head: ResponseHead, framing: BodyFraming) {
        debug_assert_eq!(self.resp, Resp::NotStarted, "one response per request");
        if head.headers.has_token("connection", "close") || self.closing != Closing::Open {
            self.keep_alive = false;
        }
        // A client that is still to send a body we never asked for: close rather than guess.
        if self.expect_continue && self.req == Req::Body {
            self.keep_alive = false;
        }
        // Answering before a body of unknown length was read: reading the rest may still fail
        // (over the limit, broken framing) and end the connection, which a peer told it stays
        // open (a proxy's pool) would find out only with its next request. Say so now.
        if self.chunked_body && self.req == Req::Body {
            self.keep_alive = false;
        }
        let bodiless = head.status.forbids_body();
        let send_body = !bodiless && self.method != Method::Head;
        let mut framing = if bodiless { BodyFraming::None } else { framing };
        if framing == BodyFraming::Chunked && !self.version.at_least_11() {
            framing = BodyFraming::Close;
        }
        if framing == BodyFraming::Close {
            self.keep_alive = false;
        }
        head.headers.remove("connection");
        if !self.keep_alive {
            head.headers.append("Connection", "close");
        } else if !self.version.at_least_11() {
            head.headers.append("Connection", "keep-alive");
        }
        if !head.headers.contains("date") {
            let (_, value) = match &mut self.date {
                Some(d) if d.0 == now.wall => d,
                d => d.insert((now.wall, date::format(now.wall))),
            };
            head.headers.append("Date", value.as_str());
        }
        self.status = head.status;
        write_response_head(&head, framing, &mut self.out);
        let (chunked, remaining) = match framing {
            BodyFraming::Length(n) => (false, Some(n)),
            BodyFraming::Chunked => (true, None),
            BodyFraming::None => (false, Some(0)),
            BodyFraming::Close => (false, None),
        };
        self.resp = Resp::Body {
            chunked,
            remaining,
            send_body,
        };
        if self.out.len() > self.out_pos {
            self.send_since = now.mono;
        }
    }

    /// Appends body bytes (dropped for HEAD/204/304). Writing more than a `Content-Length`
    /// announced is a bug in the caller: the excess is dropped.
    pub fn send_data(&mut self, now: Now, data: &[u8]) {
        debug_assert!(
            self.file.is_none(),
            "bytes after a file segment would overtake it"
        );
        let was_empty = self.transmit_len() == 0;
        let Resp::Body {
            chunked,
            remaining,
            send_body,
        } = &mut self.resp
        else {
            debug_assert!(false, "send_data without send_head");
            return;
        };
        let mut data = data;
        if let Some(rem) = remaining {
            let n = (*rem).min(data.len() as u64) as usize;
            debug_assert_eq!(n, data.len(), "body longer than its Content-Length");
            data = &data[..n];
            *rem -= n as u64;
        }
        if data.is_empty() || !*send_body {
            return;
        }
        if was_empty {
            self.send_since = now.mono;
        }
        if *chunked {
            write_chunk(data, &mut self.out);
        } else {
            self.out.extend_from_slice(data);
        }
        self.body_sent += data.len() as u64;
    }

    /// Appends a file range to the body (plain `Content-Length` bodies only). Nothing may be
    /// sent after it until it is written. Returns false, and sends nothing, when the body is
    /// chunked, bodiless or shorter than the segment.
    pub fn send_file(&mut self, now: Now, segment: FileSegment) -> bool {
        let Resp::Body {
            chunked: false,
            send_body: true,
            remaining: Some(r),
        } = &mut self.resp
        else {
            return false;
        };
        if *r < segment.len || self.file.is_some() || segment.len == 0 {
            return false;
        }
        *r -= segment.len;
        if self.pending_len() == 0 {
            self.send_since = now.mono;
        }
        self.body_sent += segment.len;
        self.file = Some(segment);
        true
    }

    /// Ends the response. If a `Content-Length` was not met the connection is aborted, so the
    /// client can never take a short body for a whole one.
    pub fn end_response(&mut self, now: Now) {
        let Resp::Body {
            chunked,
            remaining,
            send_body,
        } = self.resp
        else {
            debug_assert!(false, "end_response without send_head");
            return;
        };
        if send_body && chunked {
            write_last_chunk(&Headers::new(), &mut self.out);
        }
        self.resp = Resp::Done;
        match remaining {
            Some(n) if n > 0 && send_body => self.closing = Closing::Abort,
            None if !chunked => self.closing = Closing::AfterFlush,
            _ => {}
        }
        if self.req == Req::Done {
            self.start_next_cycle(now);
        }
    }

    /// Gives up on the current response (e.g. a disk error after the head went out).
    pub fn abort(&mut self) {
        self.closing = Closing::Abort;
        self.file = None;
    }

    /// Answers the current request with a short page for `status` (errors, redirects): HTML
    /// when `html` (a browser asked: [`super::page::wants_html`]), plain text otherwise, with
    /// `Server` and the `extra` fields, and ends the response.
    pub fn send_page(
        &mut self,
        now: Now,
        status: Status,
        server: &str,
        extra: &[(&str, &str)],
        html: bool,
    ) {
        let mut head = ResponseHead::new(status);
        head.headers.append("Server", server);
        let (content_type, body) = super::page::page(status, html);
        head.headers.append("Content-Type", content_type);
        for (n, v) in extra {
            head.headers.append(n, v);
        }
        self.send_head(now, head, BodyFraming::Length(body.len() as u64));
        self.send_data(now, body.as_bytes());
        self.end_response(now);
    }

    /// Ends HTTP on this connection after the current request, which asked to switch
    /// protocols (`Upgrade`): writes `head` (a 101) and returns the bytes the client sent after
    /// its request. From here on the owner moves bytes itself: [`Self::send_raw`] to the
    /// client, [`Self::flushed`] as they go; `feed` and `poll_event` are no longer used, and
    /// [`Self::deadline`] is only the send deadline.
    pub fn switch_protocols(&mut self, now: Now, head: ResponseHead) -> Vec<u8> {
        if self.transmit_len() == 0 {
            self.send_since = now.mono;
        }
        write_response_head(&head, BodyFraming::None, &mut self.out);
        self.status = head.status;
        self.req = Req::Done;
        self.resp = Resp::Done;
        self.tunnel = true;
        self.parser.take_rest()
    }
    /// Raw bytes for the client after [`Self::switch_protocols`].
    pub fn send_raw(&mut self, now: Now, bytes: &[u8]) {
        if !self.tunnel || bytes.is_empty() {
            return;
        }
        if self.transmit_len() == 0 {
            self.send_since = now.mono;
        }
        self.out.extend_from_slice(bytes);
    }
    pub fn is_tunnel(&self) -> bool {
        self.tunnel
    }

    // ----- outputs -----

    pub fn transmit(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }
    pub fn transmit_len(&self) -> usize {
        self.out.len() - self.out_pos
    }
    /// The file range to send once [`Self::transmit`] is empty.
    pub fn transmit_file(&self) -> Option<FileSegment> {
        if self.transmit_len() == 0 && self.closing != Closing::Abort {
            self.file
        } else {
            None
        }
    }
    /// Whether a file segment waits behind the transmit bytes.
    pub fn file_follows(&self) -> bool {
        self.file.is_some() && self.closing != Closing::Abort
    }
    /// Whether the connection closes once what is queued now is flushed: it is closing, or the
    /// response is the last (the client or the response asked to close) and all of it is
    /// queued. A response still being produced (a stream) is not: more bytes will follow.
    pub fn closes_after_flush(&self) -> bool {
        let all_queued = matches!(
            self.resp,
            Resp::Done
                | Resp::Body {
                    remaining: Some(0),
                    ..
                }
        );
        self.closing != Closing::Open || (!self.keep_alive && all_queued)
    }
    /// Everything still to be written: transmit bytes and file bytes.
    pub fn pending_len(&self) -> u64 {
        self.transmit_len() as u64 + self.file.map_or(0, |f| f.len)
    }
    pub fn closing(&self) -> Closing {
        self.closing
    }
    /// Bytes read from the client and not yet taken out as events (a body the application has
    /// not pulled yet, pipelined requests).
    pub fn buffered_input(&self) -> usize {
        self.parser.buffered()
    }
    /// Whether closing now could leave bytes the client sent unread (the reason for a lingering
    /// close). False only when everything the client sent was read and it will send nothing
    /// more: its request said it was the last (`Connection: close`) or it half-closed. That is
    /// the plain `Connection: close` exchange, which then closes at once.
    pub fn may_leave_unread(&self) -> bool {
        let all_read = self.req != Req::Body && self.parser.buffered() == 0;
        !(all_read && (self.client_done || self.peer_eof))
    }
    /// Read more from the socket? False while closing, and while pipelined bytes pile up
    /// behind a response in progress.
    pub fn wants_read(&self) -> bool {
        !self.tunnel
            && self.closing == Closing::Open
            && !self.peer_eof
            && (self.req != Req::Done || self.parser.buffered() < self.timeouts.max_pipelined)
    }
    /// The earliest instant at which [`Self::on_timeout`] has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        let send = (self.pending_len() > 0).then(|| self.send_since + self.timeouts.send);
        match self.closing {
            // The last bytes must still leave within the send timeout, or the connection is
            // aborted: a peer that stops reading cannot hold it open forever.
            Closing::AfterFlush => return send,
            Closing::Abort => return None,
            // (After a switch of protocols both request and answer are done: only the send
            // deadline remains, below.)
            Closing::Open => {}
        }
        let client = match (self.req, self.head_started) {
            (Req::Done, _) => None,
            (Req::Idle, false) => Some(self.wait_since + self.timeouts.idle),
            (Req::Idle, true) => Some(self.wait_since + self.timeouts.header),
            // While the answer is being written the send deadline governs (see on_timeout).
            (Req::Body, _) if self.responding() => None,
            (Req::Body, _) => Some(self.wait_since + self.timeouts.body),
        };
        match (send, client) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// True while a response has begun and not ended.
    pub fn responding(&self) -> bool {
        matches!(self.resp, Resp::Body { .. })
    }
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn body_sent(&self) -> u64 {
        self.body_sent
    }
    pub fn request_started_at(&self) -> Instant {
        self.head_done_at
    }
    pub fn check_invariants(&self) {
        assert!(self.out_pos <= self.out.len());
        assert!(
            self.out_pos == 0 || self.out_pos < self.out.len() - self.out_pos,
            "written bytes are dropped before they outweigh the unwritten ones"
        );
        if self.file.is_some() {
            assert!(
                self.responding(),
                "file bytes belong to the response in progress"
            );
        }
        if self.req == Req::Idle {
            assert!(
                !matches!(self.resp, Resp::Body { .. }),
                "a response without a request"
            );
        }
    }
}

/// RFC 9112 §9.3: persistent by default from 1.1, opt-in for 1.0.
fn wants_keep_alive(head: &RequestHead) -> bool {
    if head.headers.has_token("connection", "close") {
        return false;
    }
    head.version.at_least_11() || head.headers.has_token("connection", "keep-alive")
}
