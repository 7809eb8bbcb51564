//! A simulated HTTP/1.1 client host: the workload, and the oracle that checks every response.
//!
//! The client works through a list of connection plans; on each connection it pipelines up to
//! `depth` requests and checks each response, in order, against what was expected for *that*
//! request (status, named fields, and every body byte). So a response given to the wrong
//! request, a second response to one request, a body truncated but presented as complete, or a
//! corrupted byte fails the run with the client, connection and request named.
//!
//! # What it sends
//! Whatever a [`ClientReq`] says: any method, a target as written (origin or absolute form,
//! percent-encoded, with dot segments), raw extra header lines (malformed heads too), a body
//! framed by `Content-Length` or chunked (chunk sizes, extensions, trailers), `Expect:
//! 100-continue` (the body waits for the `100`, or for [`CONTINUE_WAIT`] as curl waits), and a
//! framing error planted mid-body ([`Break`]). Bytes go out as the stream's window allows, so
//! bodies of any size stream.
//!
//! # Exactly one response per request
//! A request whose framing breaks, or whose `Expect` was answered before its body went, is the
//! last the server may answer on that connection ([`Expect::closes`]): once its answer has
//! arrived, any further byte fails the run (a second response would be taken for the answer to
//! the next request), and the server must close. On a healthy network a server that neither
//! closes nor sends within [`PROGRESS_TIMEOUT`] fails the run too; under faults that is only
//! counted. A request marked [`Expect::may_abort`] may get no answer at all (the connection is
//! reset or closed before it completes): it is then done, not retried.
//!
//! # Under faults
//! It behaves like a real client: when a connect fails, the connection is reset or closed
//! early, or nothing arrives for [`PROGRESS_TIMEOUT`], it drops the connection and retries the
//! unanswered requests on a new one after a short backoff (requests that must reach a server at
//! most once carry their attempt in the target, so a retry is a new request to the world's
//! ledger). A `500` is accepted (a disk error before the head); the world checks that there
//! were no more of them than injected disk errors. A `408` to a request sent whole is retried
//! too when the scenario has faults (a clog or a paused server delayed the bytes past the
//! server's header deadline); on a healthy network it is a failure. Once the simulator has
//! healed, the client runs one more connection, the **probe**, whose success the liveness
//! oracle demands.

use crate::engine::{ConnectError, Cx, Node, StreamId};
use crate::scenario::HostId;
use std::any::Any;
use std::collections::VecDeque;
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Headers, Limits, Method};
use weaprous_core::time::{Duration, Instant};

/// How long a client waits for any byte of an outstanding response before giving up.
pub const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client that sent `Expect: 100-continue` waits for the `100` before it sends the
/// body anyway (curl's default).
pub const CONTINUE_WAIT: Duration = Duration::from_secs(1);
/// How often a client that has finished its plans looks whether the faults are over.
const PROBE_POLL: Duration = Duration::from_secs(1);

/// What a request must get back.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub status: u16,
    /// Another status that is as right: a race the workload cannot rule out (the proxy's own
    /// 400 for a broken body, or the upstream's answer to its head that got out first).
    pub or_status: Option<u16>,
    /// The exact body, or `None` when only the status matters (error pages).
    pub body: Option<Vec<u8>>,
    /// Fields the response must carry with exactly these values (lower-case names).
    pub fields: Vec<(&'static str, String)>,
    /// This answer ends the connection: nothing may follow it, and the server must close.
    pub closes: bool,
    /// The connection may end without this answer (it broke while the answer could be under
    /// way); the request then counts as done.
    pub may_abort: bool,
}

impl Expect {
    /// Only the status matters.
    pub fn status(status: u16) -> Expect {
        Expect {
            status,
            ..Expect::default()
        }
    }
    /// The status and the exact body.
    pub fn exact(status: u16, body: Vec<u8>) -> Expect {
        Expect {
            status,
            body: Some(body),
            ..Expect::default()
        }
    }
    fn accepts(&self, status: u16) -> bool {
        status == self.status || self.or_status == Some(status)
    }
}

/// How a request body is framed on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    Length,
    /// `Transfer-Encoding: chunked`, in chunks of these sizes taken in turn (at least one),
    /// each with a chunk extension when `ext`, and a trailer section when `trailers`.
    Chunked {
        sizes: Vec<usize>,
        ext: bool,
        trailers: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Body {
    pub data: Vec<u8>,
    pub framing: Framing,
}

/// A framing error planted in a chunked body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// The size line of chunk `at` (or of the last chunk, if there are fewer) is no chunk size:
    /// one of [`BAD_CHUNK_SIZES`], by `how`.
    ChunkSize { at: usize, how: usize },
    /// Chunk `at`'s data is not followed by CRLF.
    ChunkEnd { at: usize },
}

/// Chunk-size lines a server must refuse (RFC 9112 §7.1: `chunk-size = 1*HEXDIG`).
pub const BAD_CHUNK_SIZES: &[&str] = &["0x5", "-1", "zz", "5 5", "+5", "99999999999999999999"];

#[derive(Clone, Debug)]
pub struct ClientReq {
    pub method: Method,
    /// The request-target exactly as sent.
    pub target: String,
    pub range: Option<(u64, u64)>,
    /// Extra header lines sent as they are (without CRLF): malformed heads, extensions.
    pub raw_headers: Vec<String>,
    pub body: Option<Body>,
    pub expect_continue: bool,
    pub brk: Option<Break>,
    /// Must reach a server at most once: the target gets `a=ATTEMPT` appended (the client's
    /// incarnation, connection number and place on it), so every attempt is a distinct target the world
    /// can count at its servers.
    pub once: bool,
    /// A revalidation (a conditional field among `raw_headers`): `Some(true)` when the
    /// validator is current (a 304 is due), `Some(false)` when it is stale.
    pub not_modified: Option<bool>,
    pub expect: Expect,
}

impl ClientReq {
    /// A bodiless request for `target`.
    pub fn new(method: Method, target: impl Into<String>, expect: Expect) -> ClientReq {
        ClientReq {
            method,
            target: target.into(),
            range: None,
            raw_headers: Vec::new(),
            body: None,
            expect_continue: false,
            brk: None,
            once: false,
            not_modified: None,
            expect,
        }
    }

    /// The request in a line, for failure reports.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.method, self.target);
        if let Some(b) = &self.body {
            s.push_str(&format!(" body {} {:?}", b.data.len(), b.framing));
        }
        if let Some(b) = &self.brk {
            s.push_str(&format!(" broken {b:?}"));
        }
        if self.expect_continue {
            s.push_str(" expect-continue");
        }
        if !self.raw_headers.is_empty() {
            s.push_str(&format!(" fields {:?}", self.raw_headers));
        }
        s
    }

    /// The target as sent on attempt `attempt`.
    pub fn wire_target(&self, attempt: &str) -> String {
        if self.once {
            let sep = if self.target.contains('?') { '&' } else { '?' };
            format!("{}{sep}a={attempt}", self.target)
        } else {
            self.target.clone()
        }
    }

    /// The request's head.
    pub fn head_bytes(&self, close: bool, attempt: &str) -> Vec<u8> {
        let mut s = format!(
            "{} {} HTTP/1.1\r\nHost: sim\r\n",
            self.method,
            self.wire_target(attempt)
        );
        if let Some((a, b)) = self.range {
            s.push_str(&format!("Range: bytes={a}-{b}\r\n"));
        }
        for h in &self.raw_headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        match self.body.as_ref().map(|b| &b.framing) {
            Some(Framing::Length) => {
                let n = self.body.as_ref().map_or(0, |b| b.data.len());
                s.push_str(&format!("Content-Length: {n}\r\n"));
            }
            Some(Framing::Chunked { .. }) => s.push_str("Transfer-Encoding: chunked\r\n"),
            None => {}
        }
        if self.expect_continue {
            s.push_str("Expect: 100-continue\r\n");
        }
        if close {
            s.push_str("Connection: close\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    /// The body as framed on the wire, with the planted framing error if any.
    pub fn body_bytes(&self) -> Vec<u8> {
        let Some(body) = &self.body else {
            return Vec::new();
        };
        let (sizes, ext, trailers) = match &body.framing {
            Framing::Length => return body.data.clone(),
            Framing::Chunked {
                sizes,
                ext,
                trailers,
            } => (sizes, *ext, *trailers),
        };
        let mut out = Vec::with_capacity(body.data.len() + 64);
        let mut rest = &body.data[..];
        let mut i = 0;
        loop {
            let last = rest.is_empty();
            match self.brk {
                Some(Break::ChunkSize { at, how }) if at == i || (last && at > i) => {
                    let bad = BAD_CHUNK_SIZES[how % BAD_CHUNK_SIZES.len()];
                    out.extend_from_slice(format!("{bad}\r\n").as_bytes());
                    out.extend_from_slice(rest);
                    return out;
                }
                _ => {}
            }
            if last {
                break;
            }
            let n = sizes[i % sizes.len()].clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            out.extend_from_slice(format!("{n:x}").as_bytes());
            if ext {
                out.extend_from_slice(if i % 2 == 0 { b";x" } else { b";name=\"v;1\"" });
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(chunk);
            match self.brk {
                Some(Break::ChunkEnd { at }) if at == i || (tail.is_empty() && at > i) => {
                    out.extend_from_slice(b"XY");
                    out.extend_from_slice(tail);
                    return out;
                }
                _ => out.extend_from_slice(b"\r\n"),
            }
            rest = tail;
            i += 1;
        }
        out.extend_from_slice(b"0");
        if ext {
            out.extend_from_slice(b";last");
        }
        out.extend_from_slice(b"\r\n");
        if trailers {
            out.extend_from_slice(b"X-Trailer: t\r\nX-Sum: 1\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// One connection's worth of work.
#[derive(Clone, Debug)]
pub struct ConnPlan {
    pub reqs: Vec<ClientReq>,
    /// Most requests in flight at once (1 = no pipelining).
    pub depth: usize,
    /// Ask the server to close after the last response (else the client closes).
    pub close_header: bool,
    /// A stalled client: send only this many bytes of the first request, then nothing (the
    /// server must answer 408 at its header deadline and close; nobody else may notice).
    pub stall_after: Option<usize>,
}

struct Active {
    stream: StreamId,
    connected: bool,
    plan: ConnPlan,
    /// Requests whose bytes were queued.
    sent: usize,
    answered: usize,
    /// Bytes queued and not yet written.
    out: Vec<u8>,
    /// The body of the last request sent, held back until its `100 Continue` or the deadline.
    held_body: Option<(Vec<u8>, Instant)>,
    /// Nothing more is sent on this connection (the server is closing it).
    no_more: bool,
    /// The answer that ends the connection arrived: from now on only the close may come.
    ended: bool,
    parser: Parser,
    body: Vec<u8>,
    status: u16,
    fields: Headers,
    /// Give up if no byte arrives by then (while a response is outstanding).
    deadline: Instant,
}

impl Active {
    /// Whether the client waits for the server: a response, the close, or the connect.
    fn awaiting(&self) -> bool {
        self.answered < self.sent || !self.connected || self.ended
    }
}

/// A client host. See the module docs.
pub struct ClientHost {
    pub id: usize,
    server: HostId,
    plans: VecDeque<ConnPlan>,
    probe: Option<ConnPlan>,
    active: Option<Active>,
    /// Connect or retry at this time (our clock).
    next_try: Option<Instant>,
    conn_index: usize,
    /// Drawn at start: a restarted client is another incarnation.
    incarnation: u64,
    pub answered: usize,
    pub server_errors: usize,
    pub timeouts_408: usize,
    /// Whether a `408` to a request we sent whole is a legitimate outcome (the network or a
    /// paused server delayed our bytes past the server's header deadline) to retry, rather
    /// than a failure. Off on a healthy network.
    pub tolerate_408: bool,
    pub retried_408: usize,
    /// Answers a proxy gives when its upstreams fail (502, 503, 504) are retried, as a
    /// browser's user would, rather than failures (set for clients behind a proxy under faults).
    pub tolerate_gateway_errors: bool,
    pub gateway_errors: usize,
    pub failed_attempts: usize,
    /// The probe (run after the heal) got all its answers.
    pub probe_done: bool,
}

impl ClientHost {
    pub fn new(id: usize, server: HostId, plans: Vec<ConnPlan>, probe: ConnPlan) -> Self {
        ClientHost {
            id,
            server,
            plans: plans.into(),
            probe: Some(probe),
            active: None,
            next_try: None,
            conn_index: 0,
            incarnation: 0,
            answered: 0,
            server_errors: 0,
            timeouts_408: 0,
            tolerate_408: false,
            retried_408: 0,
            tolerate_gateway_errors: false,
            gateway_errors: 0,
            failed_attempts: 0,
            probe_done: false,
        }
    }
    pub fn finished(&self) -> bool {
        self.probe_done && self.active.is_none() && self.plans.is_empty()
    }

    fn arm(&mut self, cx: &mut Cx) {
        let t = match &self.active {
            Some(a) => {
                let held = a.held_body.as_ref().map(|(_, t)| *t);
                let progress = a.awaiting().then_some(a.deadline);
                match (held, progress) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                }
            }
            None => self.next_try,
        };
        cx.set_timer(t);
    }

    fn attempt(&self) -> String {
        format!("{:x}-{}", self.incarnation, self.conn_index)
    }

    fn connect_next(&mut self, cx: &mut Cx) {
        self.next_try = None;
        let plan = match self.plans.pop_front() {
            Some(p) => p,
            None if !cx.faults_on() => match self.probe.take() {
                Some(p) => p,
                None => return,
            },
            None => {
                // Wait for the heal before the probe.
                self.next_try = Some(cx.now().mono + PROBE_POLL);
                return;
            }
        };
        let stream = cx.connect(self.server);
        self.conn_index += 1;
        let id = self.id;
        let n = self.conn_index;
        cx.trace(20, id as u64, n as u64, || {
            format!("client {id} opens conn {n}")
        });
        self.active = Some(Active {
            stream,
            connected: false,
            plan,
            sent: 0,
            answered: 0,
            out: Vec::new(),
            held_body: None,
            no_more: false,
            ended: false,
            parser: Parser::response(Limits::default()),
            body: Vec::new(),
            status: 0,
            fields: Headers::new(),
            deadline: cx.now().mono + PROGRESS_TIMEOUT,
        });
    }

    /// Queues every request the plan and the pipelining depth allow, then writes.
    fn send_more(&mut self, cx: &mut Cx) {
        let attempt = self.attempt();
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if let (Some(n), 0) = (a.plan.stall_after, a.sent) {
            let req = &a.plan.reqs[0];
            a.parser.expect_response_to(req.method.clone());
            let bytes = req.head_bytes(false, &attempt);
            a.out.extend_from_slice(&bytes[..n.min(bytes.len() - 1)]);
            a.sent = a.plan.reqs.len();
            a.no_more = true;
        }
        let now = cx.now().mono;
        while !a.no_more
            && a.held_body.is_none()
            && a.sent < a.plan.reqs.len()
            && a.sent - a.answered < a.plan.depth
        {
            let last = a.sent + 1 == a.plan.reqs.len();
            let req = &a.plan.reqs[a.sent];
            a.parser.expect_response_to(req.method.clone());
            // The request's place on the connection makes its attempt unique.
            let attempt = format!("{attempt}-{}", a.sent);
            a.out
                .extend_from_slice(&req.head_bytes(last && a.plan.close_header, &attempt));
            let body = req.body_bytes();
            if req.expect_continue && !body.is_empty() {
                a.held_body = Some((body, now + CONTINUE_WAIT));
            } else {
                if req.body.is_some() && a.sent > a.answered {
                    cx.cover("client.pipelined_request_with_body");
                }
                a.out.extend_from_slice(&body);
            }
            a.sent += 1;
        }
        a.deadline = now + PROGRESS_TIMEOUT;
        self.flush(cx);
    }

    /// Writes what is queued as the window allows.
    fn flush(&mut self, cx: &mut Cx) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if !a.connected || a.out.is_empty() {
            return;
        }
        let room = cx.room(a.stream);
        if room == 0 {
            cx.want_writable(a.stream);
            return;
        }
        let n = room.min(a.out.len());
        let segments = cx.write(a.stream, &a.out[..n]);
        a.out.drain(..n);
        // An upload that moves is progress, as for any real client.
        a.deadline = cx.now().mono + PROGRESS_TIMEOUT;
        if segments >= 3 && a.sent > a.answered + 1 {
            cx.cover("client.pipelined_request_in_3_segments");
        }
        if !a.out.is_empty() {
            cx.want_writable(a.stream);
        }
    }

    /// The held body goes now (its `100 Continue` came, or the wait is over).
    fn release_body(&mut self, cx: &mut Cx) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if let Some((body, _)) = a.held_body.take() {
            a.out.extend_from_slice(&body);
            self.send_more(cx);
        }
    }

    /// The connection ended before its plan was done: retry what is unanswered. `failure`
    /// says whether it counts as a failed attempt (else the server closed as it had to).
    fn requeue(&mut self, cx: &mut Cx, why: &str, failure: bool) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        // A request that was allowed to go unanswered is done.
        if a.sent > a.answered && a.plan.reqs[a.answered].expect.may_abort && !a.ended {
            cx.cover("client.request_aborted_as_allowed");
            a.answered += 1;
            self.answered += 1;
            a.status = 0;
            a.body.clear();
        }
        if failure {
            if !a.body.is_empty() || a.status != 0 {
                cx.cover("client.failure_mid_response");
                if why == "reset" && !a.body.is_empty() {
                    cx.cover("client.reset_mid_body");
                }
            }
            self.failed_attempts += 1;
        }
        let id = self.id;
        let n = self.conn_index;
        cx.trace(21, id as u64, n as u64, || {
            format!("client {id} conn {n} ended ({why}); retrying the rest")
        });
        let mut rest = a.plan;
        rest.reqs.drain(..a.answered.min(rest.reqs.len()));
        if !rest.reqs.is_empty() {
            if self.probe.is_none() && self.plans.is_empty() && !self.probe_done {
                // The probe itself did not finish: run it again.
                self.probe = Some(rest);
            } else {
                self.plans.push_front(rest);
            }
        } else if self.probe.is_none() && self.plans.is_empty() {
            self.probe_done = true;
        }
        let backoff = if failure {
            Duration::from_millis(cx.rng().u64(10..=1_000))
        } else {
            Duration::from_millis(cx.rng().u64(0..=50))
        };
        self.next_try = Some(cx.now().mono + backoff);
    }

    fn read(&mut self, cx: &mut Cx, bytes: &[u8]) {
        let id = self.id;
        let conn = self.conn_index;
        let tolerate_408 = self.tolerate_408;
        let tolerate_gateway = self.tolerate_gateway_errors;
        let Some(a) = self.active.as_mut() else {
            return;
        };
        a.deadline = cx.now().mono + PROGRESS_TIMEOUT;
        if a.ended && !bytes.is_empty() {
            return cx.fail(format!(
                "client {id} conn {conn}: {} bytes after the answer to req {} {} that ended the connection (a second response?): {:?}",
                bytes.len(),
                a.answered - 1,
                a.plan.reqs[a.answered - 1].describe(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
            ));
        }
        a.parser.feed(bytes);
        let mut finished_one = false;
        let mut continue_now = false;
        loop {
            match a.parser.next_event() {
                Ok(Event::Response(h)) if h.status.is_informational() => {
                    if h.status.0 == 100 && a.answered + 1 == a.sent {
                        // The body goes now, before the events behind the 100 (the final
                        // answer may already be in the same read).
                        if let Some((body, _)) = a.held_body.take() {
                            cx.cover("client.continue_then_body");
                            a.out.extend_from_slice(&body);
                            continue_now = true;
                        }
                    }
                }
                Ok(Event::Response(h)) => {
                    if a.held_body.is_some() && a.answered + 1 == a.sent {
                        // Answered before the body went: the body is never sent, and a server
                        // that did not read it closes after this answer.
                        cx.cover("client.expect_answered_before_body");
                        a.held_body = None;
                        a.no_more = true;
                    }
                    a.status = h.status.0;
                    a.fields = h.headers;
                    a.body.clear();
                }
                Ok(Event::Data(d)) => a.body.extend_from_slice(&d),
                Ok(Event::End { .. }) => {
                    let Some(req) = a.plan.reqs.get(a.answered) else {
                        return cx.fail(format!(
                            "client {id} conn {conn}: a response nobody asked for"
                        ));
                    };
                    if a.status == 408 && req.expect.status != 408 && tolerate_408 {
                        // Our bytes reached the server too late (a clog, a pause): it gave
                        // up on the request and closes. Retry it on a new connection.
                        cx.cover("client.retry_after_408");
                        self.retried_408 += 1;
                        let stream = a.stream;
                        cx.fin(stream);
                        return self.requeue(cx, "408", true);
                    }
                    if matches!(a.status, 502..=504)
                        && tolerate_gateway
                        && !req.expect.accepts(a.status)
                    {
                        cx.cover("client.retry_after_gateway_error");
                        self.gateway_errors += 1;
                        a.status = 0;
                        a.body.clear();
                        let stream = a.stream;
                        cx.fin(stream);
                        return self.requeue(cx, "gateway error", true);
                    }
                    if a.status == 500 && !req.expect.accepts(500) {
                        self.server_errors += 1;
                    } else if let Err(why) = check(req, a.status, &a.fields, &a.body) {
                        return cx.fail(format!(
                            "client {id} conn {conn} req {} {}: {why}",
                            a.answered,
                            req.describe()
                        ));
                    }
                    if a.status == 408 {
                        self.timeouts_408 += 1;
                    }
                    for name in kinds(req, a.status) {
                        cx.cover(name);
                    }
                    if req.expect.closes || (a.no_more && a.answered + 1 == a.sent) {
                        // Nothing may follow this answer: wait for the close.
                        if req.brk.is_some() {
                            cx.cover("client.broken_body_answered_once");
                        }
                        // What is queued still goes, as a real client keeps sending a body
                        // after an early answer until the server closes.
                        a.ended = true;
                        a.no_more = true;
                    }
                    a.status = 0;
                    a.body.clear();
                    a.answered += 1;
                    self.answered += 1;
                    finished_one = true;
                    if a.ended {
                        if a.parser.buffered() > 0 {
                            let rest = a.parser.take_rest();
                            return cx.fail(format!(
                                "client {id} conn {conn}: bytes after the answer to req {} {} that ended the connection (a second response?): {:?}",
                                a.answered - 1,
                                a.plan.reqs[a.answered - 1].describe(),
                                String::from_utf8_lossy(&rest[..rest.len().min(80)])
                            ));
                        }
                        break;
                    }
                }
                Ok(Event::NeedData) => break,
                Ok(Event::Closed) => break,
                Ok(other) => {
                    return cx.fail(format!("client {id}: unexpected {other:?}"));
                }
                Err(e) => {
                    return cx.fail(format!("client {id} conn {conn}: malformed response: {e}"))
                }
            }
        }
        if continue_now {
            self.send_more(cx);
        }
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if finished_one && !a.ended {
            if a.answered == a.plan.reqs.len() {
                let stream = a.stream;
                self.active = None;
                cx.fin(stream);
                if self.plans.is_empty() && self.probe.is_none() {
                    self.probe_done = true;
                }
                let gap = Duration::from_millis(cx.rng().u64(0..=50));
                self.next_try = Some(cx.now().mono + gap);
            } else {
                self.send_more(cx);
            }
        }
    }

    /// The server closed its side (or reset).
    fn closed(&mut self, cx: &mut Cx, s: StreamId, reset: bool) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if !reset {
            // The end of a close-delimited body completes it.
            a.parser.feed_eof();
            self.read(cx, &[]);
            if !self.is_mine(s) {
                return;
            }
        }
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if a.ended {
            cx.cover("client.server_closed_after_last_answer");
            if !reset {
                cx.fin(s);
            }
            return self.requeue(cx, "closed after the last answer", false);
        }
        if !reset {
            // Closed before every answer came (an answer that completed closed it properly).
            cx.fin(s);
        }
        self.requeue(
            cx,
            if reset {
                "reset"
            } else {
                "server closed early"
            },
            true,
        );
    }

    fn is_mine(&self, s: StreamId) -> bool {
        self.active.as_ref().is_some_and(|a| a.stream == s)
    }
}

/// The coverage counters an answered request counts toward: what kind of request reached the
/// server and got its checked answer.
fn kinds(req: &ClientReq, status: u16) -> Vec<&'static str> {
    let mut k = Vec::new();
    let t = req.target.as_str();
    match req.body.as_ref().map(|b| &b.framing) {
        Some(Framing::Length) => k.push("client.body_content_length"),
        Some(Framing::Chunked { ext, trailers, .. }) => {
            k.push("client.body_chunked");
            if *ext {
                k.push("client.body_chunk_extensions");
            }
            if *trailers {
                k.push("client.body_trailers");
            }
        }
        None => {}
    }
    if req
        .body
        .as_ref()
        .is_some_and(|b| b.data.len() as u64 > crate::workload::BODY_LIMIT)
    {
        k.push("client.body_over_the_backend_limit");
    }
    if req.raw_headers.iter().any(|h| {
        h.contains("Content-Length") || h.contains("Transfer-Encoding") || h.contains("\r\n ")
    }) && matches!(status, 400 | 501)
    {
        k.push("client.malformed_head_refused");
    }
    if let Some(b) = req.brk {
        k.push(match b {
            Break::ChunkSize { .. } => "client.broken_chunk_size_answered_once",
            Break::ChunkEnd { .. } => "client.broken_chunk_end_answered_once",
        });
    }
    if t.starts_with("http://") {
        k.push("client.absolute_form_target");
    }
    match (req.not_modified, status) {
        (Some(true), 304) => k.push("client.revalidated_304"),
        (Some(false), 200 | 206) => k.push("client.stale_validator_full_answer"),
        _ => {}
    }
    let path = t.split('?').next().unwrap_or("");
    if path.contains("%2e") || path.contains("%2E") {
        k.push("client.encoded_dot_segment");
    } else if path.contains('%') {
        k.push("client.percent_encoded_target");
    }
    if path.contains("/../")
        || path.contains("/./")
        || path.ends_with("/..")
        || path.ends_with("/.")
    {
        k.push("client.dot_segment");
    }
    match (&req.method, status) {
        (Method::Get | Method::Head, 400) if !t.starts_with("/bad/") => {
            k.push("client.target_refused_400")
        }
        (Method::Get | Method::Head, 403) => k.push("client.outside_the_root_403"),
        (Method::Get | Method::Head, 301) => k.push("client.folder_redirect_301"),
        (Method::Other(_), 501) => k.push("client.unknown_method_501"),
        (Method::Post | Method::Put | Method::Delete | Method::Patch | Method::Trace, 405) => {
            k.push("client.method_not_allowed_405")
        }
        (_, 413) => k.push("client.body_too_large_413"),
        _ => {}
    }
    if req.method == Method::Options && t == "*" {
        k.push("client.options_asterisk");
    }
    k
}

/// Whether a response matches what `req` expects.
fn check(req: &ClientReq, status: u16, fields: &Headers, body: &[u8]) -> Result<(), String> {
    let e = &req.expect;
    if !e.accepts(status) {
        let or = e.or_status.map(|s| format!(" or {s}")).unwrap_or_default();
        return Err(format!("status {status} (expected {}{or})", e.status));
    }
    if let Some(want) = &e.body {
        // An error page of the other acceptable status has a body of its own.
        if status == e.status && *want != body {
            return Err(format!(
                "body of {} bytes differs from the expected {} bytes",
                body.len(),
                want.len()
            ));
        }
    }
    if status == e.status {
        for (name, want) in &e.fields {
            let got = fields.get_str(name);
            if got != Some(want.as_str()) {
                return Err(format!("field {name}: {got:?}, expected {want:?}"));
            }
        }
    }
    Ok(())
}

impl Node for ClientHost {
    fn start(&mut self, cx: &mut Cx) {
        self.incarnation = cx.rng().u64(..);
        let stagger = Duration::from_millis(cx.rng().u64(0..=100));
        self.next_try = Some(cx.now().mono + stagger);
        self.arm(cx);
    }
    fn on_connected(&mut self, cx: &mut Cx, s: StreamId) {
        if let Some(a) = self.active.as_mut().filter(|a| a.stream == s) {
            a.connected = true;
            self.send_more(cx);
        }
        self.arm(cx);
    }
    fn on_connect_failed(&mut self, cx: &mut Cx, s: StreamId, e: ConnectError) {
        if self.is_mine(s) {
            self.requeue(cx, &format!("connect {e:?}"), true);
        }
        self.arm(cx);
    }
    fn on_data(&mut self, cx: &mut Cx, s: StreamId, bytes: Vec<u8>) {
        if self.is_mine(s) {
            self.read(cx, &bytes);
        }
        self.arm(cx);
    }
    fn on_eof(&mut self, cx: &mut Cx, s: StreamId) {
        if self.is_mine(s) {
            self.closed(cx, s, false);
        }
        self.arm(cx);
    }
    fn on_reset(&mut self, cx: &mut Cx, s: StreamId) {
        if self.is_mine(s) {
            self.closed(cx, s, true);
        }
        self.arm(cx);
    }
    fn on_writable(&mut self, cx: &mut Cx, s: StreamId) {
        if self.is_mine(s) {
            self.flush(cx);
        }
        self.arm(cx);
    }
    fn on_timer(&mut self, cx: &mut Cx) {
        let now = cx.now().mono;
        let faults = self.tolerate_408;
        let id = self.id;
        let conn = self.conn_index;
        match &self.active {
            Some(a) if a.held_body.as_ref().is_some_and(|(_, t)| now >= *t) => {
                cx.cover("client.continue_wait_over");
                self.release_body(cx);
            }
            Some(a) if a.awaiting() && now >= a.deadline => {
                if a.ended && !faults {
                    return cx.fail(format!(
                        "client {id} conn {conn}: the server neither closed nor sent anything for {PROGRESS_TIMEOUT:?} after the answer to req {} {} that ended the connection",
                        a.answered - 1,
                        a.plan.reqs[a.answered - 1].describe(),
                    ));
                }
                cx.cover("client.gave_up_waiting");
                let s = a.stream;
                cx.reset(s);
                self.requeue(cx, "no progress", true);
            }
            None if self.next_try.is_some_and(|t| now >= t) => self.connect_next(cx),
            _ => {}
        }
        self.arm(cx);
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaprous_core::http::parse::{ErrorKind, Event, Parser};

    fn chunked(data: &[u8], sizes: Vec<usize>, brk: Option<Break>) -> ClientReq {
        let mut r = ClientReq::new(Method::Post, "/x", Expect::status(200));
        r.body = Some(Body {
            data: data.to_vec(),
            framing: Framing::Chunked {
                sizes,
                ext: true,
                trailers: true,
            },
        });
        r.brk = brk;
        r
    }

    /// The body the server's parser reads from `req`'s bytes, or its error.
    fn server_reads(req: &ClientReq) -> Result<Vec<u8>, ErrorKind> {
        let mut p = Parser::request(Limits::default());
        p.feed(&req.head_bytes(false, "1"));
        p.feed(&req.body_bytes());
        let mut body = Vec::new();
        loop {
            match p.next_event() {
                Ok(Event::Request(_)) => {}
                Ok(Event::Data(d)) => body.extend_from_slice(&d),
                Ok(Event::End { .. }) => return Ok(body),
                Ok(e) => panic!("{e:?}"),
                Err(e) => return Err(e.kind),
            }
        }
    }

    #[test]
    fn chunked_bodies_read_back_whole_and_planted_breaks_are_refused() {
        let data: Vec<u8> = (0..100u8).collect();
        for sizes in [vec![1], vec![7, 30], vec![100], vec![500]] {
            assert_eq!(
                server_reads(&chunked(&data, sizes.clone(), None)),
                Ok(data.clone())
            );
            for at in 0..4 {
                for how in 0..BAD_CHUNK_SIZES.len() {
                    let brk = Some(Break::ChunkSize { at, how });
                    assert!(
                        server_reads(&chunked(&data, sizes.clone(), brk)).is_err(),
                        "{sizes:?} {brk:?}"
                    );
                }
                let brk = Some(Break::ChunkEnd { at });
                assert!(server_reads(&chunked(&data, sizes.clone(), brk)).is_err());
            }
        }
        let empty = chunked(b"", vec![3], Some(Break::ChunkSize { at: 0, how: 0 }));
        assert!(server_reads(&empty).is_err(), "an empty body breaks too");
    }
}
