//! A simulated HTTP/1.1 client host: the workload, and the oracle that checks every response.
//!
//! The client works through a list of connection plans; on each connection it pipelines up to
//! `depth` requests and checks each response, in order, against what was expected for *that*
//! request (status, and every body byte). So a response given to the wrong request, a body
//! truncated but presented as complete, or a corrupted byte fails the run with the client,
//! connection and request named.
//!
//! It behaves like a real client under faults: when a connect fails, the connection is reset
//! or closed early, or nothing arrives for [`PROGRESS_TIMEOUT`], it drops the connection and
//! retries the unanswered requests (all GET or HEAD, so retrying is safe) on a new one after a
//! short backoff. A `500` is accepted (a disk error before the head); the world checks that
//! there were no more of them than injected disk errors. A `408` to a request sent whole is
//! retried too when the scenario has faults (a clog or a paused server delayed the bytes past
//! the server's header deadline); on a healthy network it is a failure. Once the simulator has healed, the
//! client runs one more connection, the **probe**, whose success the liveness oracle demands.

use crate::engine::{ConnectError, Cx, Node, StreamId};
use crate::scenario::HostId;
use std::any::Any;
use std::collections::VecDeque;
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Limits, Method};
use weaprous_core::time::{Duration, Instant};

/// How long a client waits for any byte of an outstanding response before giving up.
pub const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a client that has finished its plans looks whether the faults are over.
const PROBE_POLL: Duration = Duration::from_secs(1);

/// What a request must get back.
#[derive(Clone, Debug)]
pub struct Expect {
    pub status: u16,
    /// The exact body, or `None` when only the status matters (error pages).
    pub body: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct ClientReq {
    pub method: Method,
    pub path: String,
    pub range: Option<(u64, u64)>,
    pub expect: Expect,
}

impl ClientReq {
    /// The request's bytes. A POST's target gets `a=ATTEMPT` appended (the client's
    /// incarnation and connection number), so every time any incarnation of the client sends
    /// it is a distinct target the world can count at the backends.
    fn to_bytes(&self, close: bool, attempt: &str) -> Vec<u8> {
        let target = if self.method == Method::Post {
            let sep = if self.path.contains('?') { '&' } else { '?' };
            format!("{}{sep}a={attempt}", self.path)
        } else {
            self.path.clone()
        };
        let mut s = format!("{} {} HTTP/1.1\r\nHost: sim\r\n", self.method, target);
        if let Some((a, b)) = self.range {
            s.push_str(&format!("Range: bytes={a}-{b}\r\n"));
        }
        if close {
            s.push_str("Connection: close\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
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
    sent: usize,
    answered: usize,
    parser: Parser,
    body: Vec<u8>,
    status: u16,
    /// Give up if no byte arrives by then (while a response is outstanding).
    deadline: Instant,
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
            Some(a) if a.answered < a.sent || !a.connected => Some(a.deadline),
            Some(_) => None,
            None => self.next_try,
        };
        cx.set_timer(t);
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
            parser: Parser::response(Limits::default()),
            body: Vec::new(),
            status: 0,
            deadline: cx.now().mono + PROGRESS_TIMEOUT,
        });
    }

    fn send_more(&mut self, cx: &mut Cx) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if let (Some(n), 0) = (a.plan.stall_after, a.sent) {
            let req = &a.plan.reqs[0];
            a.parser.expect_response_to(req.method.clone());
            let bytes = req.to_bytes(
                false,
                &format!("{:x}-{}", self.incarnation, self.conn_index),
            );
            let part = &bytes[..n.min(bytes.len() - 1)];
            if cx.room(a.stream) >= part.len() {
                cx.write(a.stream, part);
                a.sent = a.plan.reqs.len();
            }
            return;
        }
        while a.sent < a.plan.reqs.len() && a.sent - a.answered < a.plan.depth {
            let last = a.sent + 1 == a.plan.reqs.len();
            let req = &a.plan.reqs[a.sent];
            let attempt = format!("{:x}-{}", self.incarnation, self.conn_index);
            let bytes = req.to_bytes(last && a.plan.close_header, &attempt);
            if cx.room(a.stream) < bytes.len() {
                cx.want_writable(a.stream);
                break;
            }
            a.parser.expect_response_to(req.method.clone());
            let pipelined = a.sent > a.answered;
            let segments = cx.write(a.stream, &bytes);
            if pipelined && segments >= 3 {
                cx.cover("client.pipelined_request_in_3_segments");
            }
            a.sent += 1;
        }
        a.deadline = cx.now().mono + PROGRESS_TIMEOUT;
    }

    /// The connection failed before its plan was done: retry what is unanswered.
    fn failed(&mut self, cx: &mut Cx, why: &str) {
        let Some(a) = self.active.take() else {
            return;
        };
        if !a.body.is_empty() || a.status != 0 {
            cx.cover("client.failure_mid_response");
            if why == "reset" && !a.body.is_empty() {
                cx.cover("client.reset_mid_body");
            }
        }
        self.failed_attempts += 1;
        let id = self.id;
        let n = self.conn_index;
        cx.trace(21, id as u64, n as u64, || {
            format!("client {id} conn {n} failed ({why}); retrying")
        });
        let mut rest = a.plan;
        rest.reqs.drain(..a.answered);
        if !rest.reqs.is_empty() {
            if self.probe.is_none() && self.plans.is_empty() && !self.probe_done {
                // The probe itself failed: run it again.
                self.probe = Some(rest);
            } else {
                self.plans.push_front(rest);
            }
        } else if self.probe.is_none() && self.plans.is_empty() {
            self.probe_done = true;
        }
        let backoff = Duration::from_millis(cx.rng().u64(10..=1_000));
        self.next_try = Some(cx.now().mono + backoff);
    }

    fn read(&mut self, cx: &mut Cx, bytes: &[u8]) {
        let id = self.id;
        let conn = self.conn_index;
        let Some(a) = self.active.as_mut() else {
            return;
        };
        a.deadline = cx.now().mono + PROGRESS_TIMEOUT;
        a.parser.feed(bytes);
        let mut finished_one = false;
        loop {
            match a.parser.next_event() {
                Ok(Event::Response(h)) => {
                    a.status = h.status.0;
                    a.body.clear();
                }
                Ok(Event::Data(d)) => a.body.extend_from_slice(&d),
                Ok(Event::End { .. }) => {
                    let Some(req) = a.plan.reqs.get(a.answered) else {
                        return cx.fail(format!(
                            "client {id} conn {conn}: a response nobody asked for"
                        ));
                    };
                    if a.status == 408 && req.expect.status != 408 && self.tolerate_408 {
                        // Our bytes reached the server too late (a clog, a pause): it gave
                        // up on the request and closes. Retry it on a new connection.
                        cx.cover("client.retry_after_408");
                        self.retried_408 += 1;
                        let stream = a.stream;
                        cx.fin(stream);
                        return self.failed(cx, "408");
                    }
                    if matches!(a.status, 502..=504) && self.tolerate_gateway_errors {
                        cx.cover("client.retry_after_gateway_error");
                        self.gateway_errors += 1;
                        a.status = 0;
                        a.body.clear();
                        let stream = a.stream;
                        cx.fin(stream);
                        return self.failed(cx, "gateway error");
                    }
                    if a.status == 500 && req.expect.status != 500 {
                        self.server_errors += 1;
                    } else if a.status != req.expect.status {
                        return cx.fail(format!(
                            "client {id} conn {conn} req {} {}: status {} (expected {})",
                            a.answered, req.path, a.status, req.expect.status
                        ));
                    } else if let Some(body) = &req.expect.body {
                        if *body != a.body {
                            return cx.fail(format!(
                                "client {id} conn {conn} req {} {}: body of {} bytes differs from the expected {} bytes",
                                a.answered,
                                req.path,
                                a.body.len(),
                                body.len()
                            ));
                        }
                    }
                    if a.status == 408 {
                        self.timeouts_408 += 1;
                    }
                    a.status = 0;
                    a.body.clear();
                    a.answered += 1;
                    self.answered += 1;
                    finished_one = true;
                }
                Ok(Event::NeedData) => break,
                Ok(other) => {
                    return cx.fail(format!("client {id}: unexpected {other:?}"));
                }
                Err(e) => {
                    return cx.fail(format!("client {id} conn {conn}: malformed response: {e}"))
                }
            }
        }
        if finished_one {
            let done = a.answered == a.plan.reqs.len();
            if done {
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

    fn is_mine(&self, s: StreamId) -> bool {
        self.active.as_ref().is_some_and(|a| a.stream == s)
    }
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
            self.failed(cx, &format!("connect {e:?}"));
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
            // Closed before every answer came (an answer that completed closed it properly).
            cx.fin(s);
            self.failed(cx, "server closed early");
        }
        self.arm(cx);
    }
    fn on_reset(&mut self, cx: &mut Cx, s: StreamId) {
        if self.is_mine(s) {
            self.failed(cx, "reset");
        }
        self.arm(cx);
    }
    fn on_writable(&mut self, cx: &mut Cx, s: StreamId) {
        if self.is_mine(s) {
            self.send_more(cx);
        }
        self.arm(cx);
    }
    fn on_timer(&mut self, cx: &mut Cx) {
        let now = cx.now().mono;
        match &self.active {
            Some(a) if (a.answered < a.sent || !a.connected) && now >= a.deadline => {
                cx.cover("client.gave_up_waiting");
                let s = a.stream;
                cx.reset(s);
                self.failed(cx, "no progress");
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
