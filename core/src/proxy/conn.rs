//! One client connection of the reverse proxy, with the upstream connection of its current
//! exchange: the proxy's connection machine.
//!
//! # Contract
//! The machine has two sockets, so its inputs and outputs name the side:
//! * [`ProxyInput::Client`] carries the usual [`ConnInput`]s of the client socket;
//!   [`ProxyInput::Up`] those of the upstream socket, plus the outcome of a connect.
//! * [`ProxyOutput::Choose`] asks the node (the balancers, shared by every connection) which
//!   upstream of a route to use; the driver answers at once with [`ProxyInput::Chosen`].
//!   [`ProxyOutput::Report`] tells the node how an exchange with an upstream went.
//! * [`ProxyOutput::Connect`] asks for a connection to an address (the driver may hand over an
//!   idle pooled one and says so in `Connected { reused }`); [`ProxyOutput::Release`] ends the
//!   machine's use of it: back to the pool when `reuse`, else closed. At most one upstream
//!   connection exists at a time.
//! * The driver writes [`ProxyConn::client_transmit`] and [`ProxyConn::up_transmit`], reports
//!   each write with `Flushed`, and reads a side only while its `wants_read_*` is true.
//! * `Wait { deadline }`, `CloseClient` and `AbortClient` mean what they mean in
//!   [`crate::node`]. Only `handle` changes what the other methods return.
//!
//! # Decisions
//! * Routing: the request's host through [`Config::route`], then the longest location prefix.
//!   The host is an absolute-form target's authority when there is one (RFC 9112 §3.2.2: it
//!   overrides `Host`, and goes upstream as `Host`), else the `Host` field. No route → 404; an
//!   HTTP/1.1 request without Host, or with an authority that is no valid host (userinfo
//!   included), never gets here (400 from the parser).
//! * A connect that fails or takes longer than `proxy_connect_timeout` tries the next upstream
//!   the balancer offers; when none is left the answer is 502 at once.
//! * The upstream's own answer, 4xx and 5xx included, is relayed unchanged. A malformed or
//!   ambiguous response, or an upstream that closes before answering, is 502; no response
//!   within `proxy_read_timeout` is 504 (after the other upstreams, when the request may be
//!   retried). Nothing of a refused response reaches the client.
//! * Retries: an attempt that failed before any response byte is retried on another upstream
//!   when no byte of the request was written, or when the request is idempotent and has no
//!   body. A reused pooled connection that closes before any response byte was stale: no
//!   verdict on its upstream, which may take the retry on a fresh connection. So a POST
//!   reaches a backend at most once unless none of it was sent. Body
//!   bytes already pulled from the client for an attempt that wrote nothing move to the next
//!   attempt with the request ([`ClientConn::take_unsent`]), so a stale pooled connection
//!   does not turn a POST into a 502.
//! * Once the response head went to the client, an upstream failure aborts the client
//!   connection: a truncated body is never presented as complete.
//! * Exactly one response per request (the rule of [`crate::http::server`]). A client-side
//!   error after the head was forwarded (bad body framing, a body over the limit, a stalled
//!   body) abandons the upstream exchange (its connection is closed, never pooled: it is
//!   owed the rest of a body) and the client gets at most one response: the proxy's own 400
//!   (413, 408) if no upstream head has reached it yet, else an abort, or, when the upstream's
//!   answer already went out whole, a close behind it. Nothing later on that connection is
//!   read or forwarded.
//! * Bodies stream both ways: a side is read only while the other side's unsent bytes are
//!   below [`HIGH_WATER`], so the proxy holds at most a few chunks per exchange.
//! * Protocol upgrades (WebSocket): the request goes upstream with its `Upgrade` and
//!   `Connection: upgrade`; a 101 turns the connection into a byte tunnel both ways (with
//!   backpressure), idle-limited by `proxy_read_timeout`, ended by either side closing. Any
//!   other answer stays HTTP. A 101 the client did not ask for is refused (502).

use super::balance::Balancer;
use super::config::{Config, Location, Part, Var};
use super::forward::{
    downstream_response, request_host, upstream_request, wants_upgrade, Forward, ForwardCtx,
};
use crate::http::client::{ClientConn, ClientError, ClientEvent, ClientTimeouts, Unsent};
use crate::http::serialize::BodyFraming;
use crate::http::server::{Closing, ServerConn, ServerEvent, Timeouts};
use crate::http::{Limits, Method, RequestHead, ResponseHead, Status};
use crate::node::{ConnInput, Now};
use crate::time::{Duration, Instant};
use std::collections::VecDeque;
use std::sync::Arc;

/// Most unsent bytes on one side before the other side is no longer read.
pub const HIGH_WATER: usize = 64 * 1024;

/// A route: (host block, location) indices into the configuration; the default block is
/// `usize::MAX`.
pub type RouteId = (usize, usize);

/// What every connection of one proxy shares and only reads.
#[derive(Debug)]
pub struct ProxyShared {
    pub config: Config,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// Emit [`ProxyOutput::Log`] records (off saves four allocations per request).
    pub access_log: bool,
}

impl ProxyShared {
    pub fn new(config: Config) -> Self {
        ProxyShared {
            config,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            access_log: true,
        }
    }
    pub fn location(&self, route: RouteId) -> Option<&Location> {
        self.config.host(route.0)?.locations.get(route.1)
    }
    fn route(&self, host_header: &str, path: &str) -> Option<RouteId> {
        let h = self.config.route_index(host_header)?;
        Some((h, self.config.host(h)?.location_index(path)))
    }
}

/// The state many connections share and change: one balancer per route.
#[derive(Debug)]
pub struct ProxyNode {
    balancers: Vec<((usize, usize), Balancer)>,
}

impl ProxyNode {
    pub fn new(shared: &ProxyShared, seed: u64) -> Self {
        let mut balancers = Vec::new();
        let hosts = shared
            .config
            .hosts
            .iter()
            .enumerate()
            .chain(shared.config.default.iter().map(|d| (usize::MAX, d)));
        for (h, v) in hosts {
            for (l, loc) in v.locations.iter().enumerate() {
                let b = Balancer::new(
                    loc.policy,
                    &loc.upstreams,
                    seed ^ (h as u64) << 20 ^ l as u64,
                );
                balancers.push(((h, l), b));
            }
        }
        ProxyNode { balancers }
    }
    fn balancer(&mut self, route: RouteId) -> Option<&mut Balancer> {
        self.balancers
            .iter_mut()
            .find(|(r, _)| *r == route)
            .map(|(_, b)| b)
    }
    /// Answers [`ProxyOutput::Choose`]: an upstream index and its address, or none.
    pub fn choose(
        &mut self,
        shared: &ProxyShared,
        route: RouteId,
        now: Instant,
        client: &str,
        tried: &[usize],
    ) -> Option<(usize, String)> {
        let b = self.balancer(route)?;
        let i = b.pick(now, client.as_bytes(), tried)?;
        b.started(i, now);
        let addr = shared.location(route)?.upstreams.get(i)?.addr();
        Some((i, addr))
    }
    /// Carries out [`ProxyOutput::Report`].
    pub fn report(&mut self, route: RouteId, upstream: usize, outcome: Outcome, now: Instant) {
        if let Some(b) = self.balancer(route) {
            match outcome {
                Outcome::Ok => b.succeeded(upstream),
                Outcome::Failed => b.failed(upstream, now),
                Outcome::Abandoned => b.abandoned(upstream),
            }
        }
    }
    /// Exchanges in flight with each upstream of `route` (for the simulator's accounting check).
    pub fn in_flight(&self, route: RouteId) -> Vec<u32> {
        self.balancer_for(route)
            .map(|b| (0..b.len()).map(|i| b.in_flight(i)).collect())
            .unwrap_or_default()
    }
    pub fn balancer_for(&self, route: RouteId) -> Option<&Balancer> {
        self.balancers
            .iter()
            .find(|(r, _)| *r == route)
            .map(|(_, b)| b)
    }
}

/// Inputs of the upstream socket.
#[derive(Debug)]
pub enum UpInput<'a> {
    Connected { reused: bool },
    ConnectFailed,
    Data(&'a [u8]),
    Eof,
    Reset,
    Flushed(usize),
}

#[derive(Debug)]
pub enum ProxyInput<'a> {
    Client(ConnInput<'a>),
    Up(UpInput<'a>),
    /// The node's answer to `Choose`.
    Chosen(Option<(usize, String)>),
}

/// How an attempt with an upstream ended, for its health.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It answered (any status).
    Ok,
    /// Connect refused or timed out, a malformed answer, a close or a timeout.
    Failed,
    /// The attempt ended for reasons not the upstream's (the client went away, a stale pooled
    /// connection): no verdict on its health.
    Abandoned,
}

/// One access-log record of the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyLog {
    pub method: String,
    pub target: String,
    pub host: String,
    pub status: u16,
    pub bytes: u64,
    /// The upstream that answered (or was tried last), `-` when none.
    pub upstream: String,
    pub attempts: u32,
    pub connect_ns: u64,
    pub first_byte_ns: u64,
    pub duration_ns: u64,
    pub aborted: bool,
    /// Why the last failed attempt with an upstream failed, if one did: for a 502 or 504, why
    /// there is no answer; for an answer that came on a later attempt, why it took more.
    pub error: Option<String>,
}

impl ProxyLog {
    /// A request the proxy answered itself, without any upstream.
    fn local(method: &str, target: &str, host: &str, status: Status, bytes: u64) -> Self {
        ProxyLog {
            method: method.into(),
            target: target.into(),
            host: host.into(),
            status: status.0,
            bytes,
            upstream: "-".into(),
            attempts: 0,
            connect_ns: 0,
            first_byte_ns: 0,
            duration_ns: 0,
            aborted: false,
            error: None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ProxyOutput {
    Log(ProxyLog),
    Choose {
        route: RouteId,
        tried: Vec<usize>,
        /// Shared with the connection (a count, not a copy, per request).
        client: Arc<str>,
    },
    /// Every upstream `Choose` handed out is reported exactly once.
    Report {
        route: RouteId,
        upstream: usize,
        outcome: Outcome,
    },
    Connect {
        addr: String,
    },
    Release {
        reuse: bool,
    },
    CloseClient,
    AbortClient,
    Wait {
        deadline: Option<Instant>,
    },
}

#[derive(Debug)]
enum Up {
    None,
    Choosing,
    Connecting {
        route: RouteId,
        idx: usize,
        since: Instant,
    },
    Active {
        route: RouteId,
        idx: usize,
        // Boxed: the connection is large next to the other states.
        conn: Box<ClientConn>,
        reused: bool,
    },
}

#[derive(Debug)]
struct Exchange {
    route: RouteId,
    method: Method,
    target: String,
    host: String,
    up_head: RequestHead,
    framing: BodyFraming,
    /// No request body bytes are pulled from the client until an upstream is connected, so
    /// every attempt before that can start over.
    body_pulled: bool,
    /// The request as queued on a connection that failed before writing any of it: what the
    /// next attempt sends.
    unsent: Option<Unsent>,
    body_done: bool,
    tried: Vec<usize>,
    attempts: u32,
    response_started: bool,
    started: Instant,
    connect_ns: u64,
    first_byte_ns: u64,
    upstream: String,
    status: u16,
    /// What a 5xx of our own says when no upstream is left: 504 after a timeout, else 502.
    gave_up: Status,
    /// The client asked to switch protocols (a 101 from the upstream is then a tunnel).
    upgrade: bool,
    /// Why the last attempt failed, for the log.
    error: Option<String>,
}

/// See the module docs.
#[derive(Debug)]
pub struct ProxyConn {
    shared: Arc<ProxyShared>,
    client_ip: Arc<str>,
    conn_id: u64,
    requests: u64,
    http: ServerConn,
    exchange: Option<Exchange>,
    up: Up,
    out: VecDeque<ProxyOutput>,
    finished: bool,
    /// AbortClient was given (nothing more will be).
    aborted: bool,
    /// After a 101: bytes move both ways untouched.
    tunnel: Option<Tunnel>,
    /// The exchange that became the tunnel (logged when it ends).
    tunnel_exchange: Option<Exchange>,
    /// The route of the `Choose` awaiting its answer.
    choosing: Option<RouteId>,
    /// The current request is a browser's: the proxy's own pages for it are HTML.
    browser: bool,
}

/// A switched connection: client bytes for the upstream wait here; upstream bytes go to the
/// client through [`ServerConn::send_raw`].
#[derive(Debug)]
struct Tunnel {
    up_out: Vec<u8>,
    last_active: Instant,
    idle: Duration,
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        m,
        Method::Get | Method::Head | Method::Options | Method::Trace | Method::Put | Method::Delete
    )
}

impl ProxyConn {
    pub fn new(shared: Arc<ProxyShared>, now: Now, client_ip: &str, conn_id: u64) -> Self {
        let http = ServerConn::new(now, shared.limits.clone(), shared.timeouts.clone());
        ProxyConn {
            shared,
            client_ip: Arc::from(client_ip),
            conn_id,
            requests: 0,
            http,
            exchange: None,
            up: Up::None,
            out: VecDeque::new(),
            finished: false,
            aborted: false,
            tunnel: None,
            tunnel_exchange: None,
            choosing: None,
            browser: false,
        }
    }

    pub fn handle(&mut self, now: Now, input: ProxyInput<'_>) {
        // A choice is always answered, even by a finished connection, so the node's count of
        // exchanges in flight stays exact.
        if let ProxyInput::Chosen(c) = input {
            self.on_chosen(now, c);
            if !self.finished {
                self.drive(now);
            }
            return;
        }
        if self.finished {
            // Only the last bytes to the client still matter, and their send deadline.
            match input {
                ProxyInput::Client(ConnInput::Flushed(n)) => self.http.flushed(now, n),
                // The client went away before taking the last bytes (found by the benchmark:
                // ignoring this made the driver retry a broken socket forever).
                ProxyInput::Client(ConnInput::Reset) if !self.aborted => {
                    self.http.abort();
                    self.aborted = true;
                    self.out.push_back(ProxyOutput::AbortClient);
                }
                ProxyInput::Client(ConnInput::Timeout) => {
                    self.http.on_timeout(now);
                    if self.http.closing() == Closing::Abort && !self.aborted {
                        self.aborted = true;
                        self.out.push_back(ProxyOutput::AbortClient);
                    }
                }
                _ => {}
            }
            return;
        }
        if self.tunnel.is_some() {
            self.tunnel_input(now, input);
            return;
        }
        match input {
            ProxyInput::Client(i) => match i {
                ConnInput::Data(b) => self.http.feed(now, b),
                ConnInput::Eof => self.http.feed_eof(),
                ConnInput::Reset => {
                    self.http.abort();
                    self.drop_upstream(false);
                    if let Some(x) = self.exchange.take() {
                        self.log(now, &x, 499, true);
                    }
                }
                ConnInput::Flushed(n) => self.http.flushed(now, n),
                ConnInput::Drain => self.http.drain(),
                ConnInput::Timeout => self.on_timeout(now),
                ConnInput::File(_) => {}
            },
            ProxyInput::Chosen(c) => self.on_chosen(now, c),
            ProxyInput::Up(u) => self.on_up(now, u),
        }
        self.drive(now);
    }

    /// Every deadline that is due is handled, not just the first (the simulator found a due
    /// client deadline left behind by an upstream one in the same instant).
    fn on_timeout(&mut self, now: Now) {
        if let Up::Connecting { since, .. } = self.up {
            let limit = self
                .timeouts_of_exchange()
                .map(|t| t.0)
                .unwrap_or(Duration::from_secs(5));
            if now.mono >= since + limit {
                self.attempt_failed(now, Failure::ConnectTimedOut);
            }
        }
        if let Up::Active { conn, .. } = &mut self.up {
            if let Some(ClientEvent::Failed(e)) = conn.on_timeout(now) {
                self.attempt_failed(now, Failure::Upstream(e));
            }
        }
        if let Some(ServerEvent::Rejected { status, .. }) = self.http.on_timeout(now) {
            // The client stalled (mid-body, say) and its connection answered 408 by itself:
            // the exchange is over, whatever the upstream was doing.
            if let Some(x) = self.exchange.take() {
                self.drop_upstream(false);
                self.log(now, &x, status.0, false);
                return;
            }
            self.log_rejected(status);
        }
    }

    /// (connect, read, send) timeouts of the current exchange's location.
    fn timeouts_of_exchange(&self) -> Option<(Duration, Duration, Duration)> {
        let x = self.exchange.as_ref()?;
        let t = self.shared.location(x.route)?.timeouts;
        Some((t.connect, t.read, t.send))
    }

    fn on_chosen(&mut self, now: Now, chosen: Option<(usize, String)>) {
        let route = self.choosing.take();
        if !matches!(self.up, Up::Choosing) || self.exchange.is_none() {
            // The exchange ended while the node chose (found by the simulator: the choice was
            // counted in flight forever): hand the upstream straight back.
            if let (Some(route), Some((idx, _))) = (route, chosen) {
                self.out.push_back(ProxyOutput::Report {
                    route,
                    upstream: idx,
                    outcome: Outcome::Abandoned,
                });
            }
            return;
        }
        match chosen {
            Some((idx, addr)) => {
                let Some(x) = self.exchange.as_mut() else {
                    self.up = Up::None;
                    return;
                };
                x.attempts += 1;
                x.upstream = addr.clone();
                let route = x.route;
                self.out.push_back(ProxyOutput::Connect { addr });
                self.up = Up::Connecting {
                    route,
                    idx,
                    since: now.mono,
                };
            }
            None => {
                self.up = Up::None;
                let status = match self.exchange.as_mut() {
                    Some(x) => {
                        if x.error.is_none() {
                            // Every upstream was out of rotation before any attempt.
                            x.error = Some("no live upstream".into());
                        }
                        x.gave_up
                    }
                    None => Status::BAD_GATEWAY,
                };
                self.synthesize(now, status);
            }
        }
    }

    fn on_up(&mut self, now: Now, input: UpInput<'_>) {
        match input {
            UpInput::Connected { reused } => {
                let Up::Connecting { route, idx, .. } = self.up else {
                    return;
                };
                let Some((_, read, send)) = self.timeouts_of_exchange() else {
                    self.drop_upstream(false);
                    return;
                };
                let mut conn = ClientConn::new(
                    now,
                    self.shared.limits.clone(),
                    ClientTimeouts { read, send },
                );
                let Some(x) = self.exchange.as_mut() else {
                    self.drop_upstream(reused);
                    return;
                };
                x.connect_ns = now.mono.since(x.started).as_nanos() as u64;
                match x.unsent.take() {
                    Some(unsent) => {
                        conn.resume(now, unsent);
                    }
                    None => {
                        conn.send_head(now, &x.up_head, x.framing);
                    }
                }
                if x.framing == BodyFraming::None {
                    x.body_done = true;
                } else {
                    self.http.accept_body();
                }
                self.up = Up::Active {
                    route,
                    idx,
                    conn: Box::new(conn),
                    reused,
                };
            }
            UpInput::ConnectFailed => {
                if matches!(self.up, Up::Connecting { .. }) {
                    self.attempt_failed(now, Failure::ConnectRefused);
                }
            }
            UpInput::Data(b) => {
                if let Up::Active { conn, .. } = &mut self.up {
                    conn.feed(now, b);
                }
            }
            UpInput::Eof => {
                if let Up::Active { conn, .. } = &mut self.up {
                    conn.feed_eof();
                }
            }
            UpInput::Reset => {
                if let Up::Active { conn, .. } = &mut self.up {
                    conn.feed_reset();
                }
            }
            UpInput::Flushed(n) => {
                if let Up::Active { conn, .. } = &mut self.up {
                    conn.flushed(now, n);
                }
            }
        }
    }

    /// Makes every step that inputs so far allow.
    fn drive(&mut self, now: Now) {
        for _ in 0..1_000_000 {
            if !self.step(now) {
                break;
            }
        }
        // (No exchange means no upstream either, `check_invariants` holds it; a tunnel, whose
        // upstream outlives its exchange, never comes here.)
        if !self.finished && self.exchange.is_none() {
            match self.http.closing() {
                Closing::AfterFlush => {
                    self.finished = true;
                    self.out.push_back(ProxyOutput::CloseClient);
                }
                Closing::Abort => {
                    self.finished = true;
                    self.aborted = true;
                    self.out.push_back(ProxyOutput::AbortClient);
                }
                Closing::Open => {}
            }
        } else if self.http.closing() == Closing::Abort && !self.finished {
            // The client connection gave up mid-exchange (its body broke while the answer
            // was being relayed, a send deadline): the upstream exchange goes with it.
            self.drop_upstream(false);
            if let Some(x) = self.exchange.take() {
                let status = x.status;
                self.log(now, &x, status, true);
            }
            self.finished = true;
            self.aborted = true;
            self.out.push_back(ProxyOutput::AbortClient);
        }
    }

    /// One step; false when nothing could move.
    fn step(&mut self, now: Now) -> bool {
        if self.tunnel.is_some() {
            return false;
        }
        if self.exchange.is_none() {
            if self.http.transmit_len() >= HIGH_WATER {
                return false;
            }
            return match self.http.poll_event(now) {
                Some(ServerEvent::Request(head)) => {
                    self.start(now, head);
                    true
                }
                Some(ServerEvent::Rejected { status, .. }) => {
                    self.log_rejected(status);
                    true
                }
                Some(ServerEvent::Body(_) | ServerEvent::BodyEnd) => true,
                None => false,
            };
        }
        let Up::Active { conn, .. } = &mut self.up else {
            return false;
        };
        let Some(x) = self.exchange.as_mut() else {
            return false;
        };
        // Request body: client → upstream, while the upstream takes it.
        if !x.body_done && conn.transmit().len() < HIGH_WATER && !conn.is_dead() {
            match self.http.poll_event(now) {
                Some(ServerEvent::Body(b)) => {
                    x.body_pulled = true;
                    conn.send_data(now, &b);
                    return true;
                }
                Some(ServerEvent::BodyEnd) => {
                    x.body_done = true;
                    conn.end_request(now);
                    return true;
                }
                Some(ServerEvent::Rejected { status, .. }) => {
                    // The client's body broke before any upstream head reached it: the
                    // server connection's own error page is the one response. The upstream
                    // is owed the rest of a body it will never get: abandon it, unpooled.
                    self.drop_upstream(false);
                    if let Some(x) = self.exchange.take() {
                        self.log(now, &x, status.0, false);
                    }
                    return true;
                }
                Some(ServerEvent::Request(_)) | None => {}
            }
        }
        // Response: upstream → client, while the client takes it.
        if x.response_started && self.http.transmit_len() >= HIGH_WATER {
            return false;
        }
        let Some(ev) = conn.poll_event(now) else {
            return false;
        };
        match ev {
            ClientEvent::Response(head) => self.on_response_head(now, head),
            ClientEvent::Data(d) => {
                self.http.send_data(now, &d);
            }
            ClientEvent::End => self.on_response_end(now),
            ClientEvent::Failed(e) => self.attempt_failed(now, Failure::Upstream(e)),
            // (After a 101 the tunnel takes the upstream's bytes: `step` never runs again, so an
            // upgrade seen here is one nobody asked for.)
            ClientEvent::Closed | ClientEvent::Upgrade(_) => {
                self.attempt_failed(now, Failure::Upstream(ClientError::Closed))
            }
        }
        true
    }

    fn start(&mut self, now: Now, head: RequestHead) {
        self.requests += 1;
        self.browser = crate::http::page::wants_html(&head.headers);
        let host = request_host(&head).to_string();
        let method = head.method.clone();
        let target = head.target.as_str().to_string();
        let Some(route) = self.shared.route(&host, head.target.path()) else {
            self.simple_local(now, &method, &target, &host, Status::NOT_FOUND);
            return;
        };
        let Some(loc) = self.shared.location(route) else {
            self.simple_local(now, &method, &target, &host, Status::NOT_FOUND);
            return;
        };
        // Formatted only where a proxy_set_header asks for it.
        let wants_id = loc
            .set_headers
            .iter()
            .any(|h| h.value.contains(&Part::Var(Var::RequestId)));
        let request_id = if wants_id {
            format!("{:x}-{:x}", self.conn_id, self.requests)
        } else {
            String::new()
        };
        let cx = ForwardCtx {
            client_ip: &self.client_ip,
            scheme: "http",
            request_id: &request_id,
        };
        let upgrade = wants_upgrade(&head);
        let mut up_head = match upstream_request(&head, &loc.set_headers, &cx) {
            Forward::Upstream(h) => h,
            Forward::AnswerHere(status) => {
                self.simple_local(now, &method, &target, &host, status);
                return;
            }
        };
        // Request framing toward the upstream mirrors the client's.
        let framing = if let Some(n) = head
            .headers
            .get_str("content-length")
            .and_then(|v| v.parse().ok())
        {
            BodyFraming::Length(n)
        } else if head.headers.contains("transfer-encoding") {
            BodyFraming::Chunked
        } else {
            BodyFraming::None
        };
        up_head.headers.remove("content-length");
        self.exchange = Some(Exchange {
            route,
            method,
            target,
            host,
            up_head,
            framing,
            body_pulled: false,
            unsent: None,
            body_done: false,
            tried: Vec::new(),
            attempts: 0,
            response_started: false,
            started: now.mono,
            connect_ns: 0,
            first_byte_ns: 0,
            upstream: "-".into(),
            status: 0,
            gave_up: Status::BAD_GATEWAY,
            upgrade,
            error: None,
        });
        self.choose();
    }

    fn choose(&mut self) {
        let Some(x) = &self.exchange else {
            return;
        };
        self.up = Up::Choosing;
        self.choosing = Some(x.route);
        self.out.push_back(ProxyOutput::Choose {
            route: x.route,
            tried: x.tried.clone(),
            client: self.client_ip.clone(),
        });
    }

    fn on_response_head(&mut self, now: Now, head: ResponseHead) {
        if head.status == Status::SWITCHING_PROTOCOLS {
            self.on_switch(now, head);
            return;
        }
        if head.status.is_informational() {
            // 100 Continue is the proxy's own business with the client; other interim
            // responses (103) are not relayed yet.
            return;
        }
        let Some(x) = self.exchange.as_mut() else {
            return;
        };
        x.response_started = true;
        x.status = head.status.0;
        x.first_byte_ns = now.mono.since(x.started).as_nanos() as u64;
        let out = downstream_response(&head);
        let framing = match head
            .headers
            .get_str("content-length")
            .and_then(|v| v.parse().ok())
        {
            Some(n) => BodyFraming::Length(n),
            None if head.status.forbids_body() || x.method == Method::Head => BodyFraming::None,
            None => BodyFraming::Chunked,
        };
        self.http.send_head(now, out, framing);
    }

    fn on_response_end(&mut self, now: Now) {
        let Up::Active {
            route, idx, conn, ..
        } = std::mem::replace(&mut self.up, Up::None)
        else {
            return;
        };
        let reuse = conn.reusable();
        self.out.push_back(ProxyOutput::Release { reuse });
        self.out.push_back(ProxyOutput::Report {
            route,
            upstream: idx,
            outcome: Outcome::Ok,
        });
        let Some(x) = self.exchange.take() else {
            return;
        };
        // An upstream may answer before the request body was read: the client's remaining
        // body bytes are then drained by the server connection, never parsed as a request.
        self.http.end_response(now);
        let status = x.status;
        self.log(now, &x, status, false);
    }

    /// The current attempt failed; retry when allowed, else answer or abort.
    fn attempt_failed(&mut self, now: Now, why: Failure) {
        let mut unsent = None;
        let (chosen, reused, flushed, response_started) =
            match std::mem::replace(&mut self.up, Up::None) {
                Up::Active {
                    route,
                    idx,
                    mut conn,
                    reused,
                } => {
                    unsent = conn.take_unsent();
                    (
                        Some((route, idx)),
                        reused,
                        conn.request_bytes_flushed(),
                        conn.response_started(),
                    )
                }
                Up::Connecting { route, idx, .. } => (Some((route, idx)), false, 0, false),
                Up::Choosing | Up::None => (None, false, 0, false),
            };
        if let Some((route, i)) = chosen {
            self.out.push_back(ProxyOutput::Release { reuse: false });
            // A stale pooled connection says nothing about the upstream's health.
            let stale = reused
                && !response_started
                && matches!(why, Failure::Upstream(ClientError::Closed));
            self.out.push_back(ProxyOutput::Report {
                route,
                upstream: i,
                outcome: if stale {
                    Outcome::Abandoned
                } else {
                    Outcome::Failed
                },
            });
            if let Some(x) = self.exchange.as_mut() {
                if !stale {
                    x.tried.push(i);
                }
            }
        }
        let Some(x) = self.exchange.as_mut() else {
            return;
        };
        x.gave_up = match why {
            Failure::Upstream(ClientError::TimedOut) => Status::GATEWAY_TIMEOUT,
            _ => Status::BAD_GATEWAY,
        };
        x.error = Some(why.describe());
        if x.response_started {
            // Part of the answer already went out: it must not look complete.
            self.http.abort();
            if let Some(x) = self.exchange.take() {
                self.log(now, &x, x.status, true);
            }
            return;
        }
        // Body bytes pulled from the client and not written are not lost: they travel with
        // the unsent request to the next attempt.
        let nothing_sent = flushed == 0 && (!x.body_pulled || unsent.is_some());
        x.unsent = unsent;
        let replayable = is_idempotent(&x.method) && x.framing == BodyFraming::None;
        // (A stale pooled connection is no failure of its upstream: it was not added to
        // `tried`, so a replayable request may go to the same upstream on a fresh connection.)
        let retry = !response_started && (nothing_sent || replayable);
        if retry {
            self.choose();
        } else {
            let status = x.gave_up;
            self.synthesize(now, status);
        }
    }

    /// Answers the current exchange with an error page of the proxy's own.
    fn synthesize(&mut self, now: Now, status: Status) {
        let Some(mut x) = self.exchange.take() else {
            return;
        };
        x.status = status.0;
        self.error_page(now, status);
        self.log(now, &x, status.0, false);
    }

    /// Answers a request the proxy settles itself (no route, `Max-Forwards: 0`).
    fn simple_local(
        &mut self,
        now: Now,
        method: &Method,
        target: &str,
        host: &str,
        status: Status,
    ) {
        self.error_page(now, status);
        if self.shared.access_log {
            let bytes = self.http.body_sent();
            let log = ProxyLog::local(method.as_str(), target, host, status, bytes);
            self.out.push_back(ProxyOutput::Log(log));
        }
    }

    fn error_page(&mut self, now: Now, status: Status) {
        self.http
            .send_page(now, status, "weaprous", &[], self.browser);
    }

    /// Lets go of the upstream without a verdict on its health (the exchange ended for
    /// reasons of the client's or ours).
    fn drop_upstream(&mut self, reuse: bool) {
        match std::mem::replace(&mut self.up, Up::None) {
            Up::Connecting { route, idx, .. } | Up::Active { route, idx, .. } => {
                self.out.push_back(ProxyOutput::Release { reuse });
                self.out.push_back(ProxyOutput::Report {
                    route,
                    upstream: idx,
                    outcome: Outcome::Abandoned,
                });
            }
            Up::Choosing | Up::None => {}
        }
    }

    /// The log record of a request the client connection refused by itself (400, 408, ...).
    fn log_rejected(&mut self, status: Status) {
        if self.shared.access_log {
            let log = ProxyLog::local("-", "-", "-", status, 0);
            self.out.push_back(ProxyOutput::Log(log));
        }
    }

    fn log(&mut self, now: Now, x: &Exchange, status: u16, aborted: bool) {
        if !self.shared.access_log {
            return;
        }
        self.out.push_back(ProxyOutput::Log(ProxyLog {
            method: x.method.to_string(),
            target: x.target.clone(),
            host: x.host.clone(),
            status,
            bytes: self.http.body_sent(),
            upstream: x.upstream.clone(),
            attempts: x.attempts,
            connect_ns: x.connect_ns,
            first_byte_ns: x.first_byte_ns,
            duration_ns: now.mono.since(x.started).as_nanos() as u64,
            aborted,
            error: x.error.clone(),
        }));
    }

    /// A 101 from the upstream: a tunnel if the client asked for it, else a refused answer.
    fn on_switch(&mut self, now: Now, head: ResponseHead) {
        let Some(x) = self.exchange.as_mut() else {
            return;
        };
        if !x.upgrade {
            // A 101 the client did not ask for (RFC 9110 §7.8: only an Upgrade request may get one).
            self.attempt_failed(now, Failure::UnaskedUpgrade);
            return;
        }
        x.status = 101;
        x.response_started = true;
        x.first_byte_ns = now.mono.since(x.started).as_nanos() as u64;
        let idle = self
            .timeouts_of_exchange()
            .map_or(Duration::from_secs(60), |t| t.1);
        let early = self.http.switch_protocols(now, downstream_response(&head));
        if let Up::Active { route, idx, .. } = &self.up {
            self.out.push_back(ProxyOutput::Report {
                route: *route,
                upstream: *idx,
                outcome: Outcome::Ok,
            });
        }
        self.tunnel = Some(Tunnel {
            up_out: early,
            last_active: now.mono,
            idle,
        });
        // What the upstream sent after its 101 head is already the other protocol.
        if let Up::Active { conn, .. } = &mut self.up {
            while let Some(ev) = conn.poll_event(now) {
                if let ClientEvent::Upgrade(rest) = ev {
                    self.http.send_raw(now, &rest);
                }
            }
        }
        if let Some(x) = self.exchange.take() {
            self.tunnel_exchange = Some(x);
        }
    }

    fn tunnel_input(&mut self, now: Now, input: ProxyInput<'_>) {
        let Some(t) = self.tunnel.as_mut() else {
            return;
        };
        let mut end = false;
        match input {
            ProxyInput::Client(ConnInput::Data(b)) => {
                t.up_out.extend_from_slice(b);
                t.last_active = now.mono;
            }
            ProxyInput::Client(ConnInput::Flushed(n)) => self.http.flushed(now, n),
            ProxyInput::Up(UpInput::Data(b)) => {
                self.http.send_raw(now, b);
                t.last_active = now.mono;
            }
            ProxyInput::Up(UpInput::Flushed(n)) => {
                let n = n.min(t.up_out.len());
                t.up_out.drain(..n);
                t.last_active = now.mono;
            }
            ProxyInput::Client(ConnInput::Eof | ConnInput::Reset)
            | ProxyInput::Up(UpInput::Eof | UpInput::Reset | UpInput::ConnectFailed) => end = true,
            ProxyInput::Client(ConnInput::Timeout) => {
                self.http.on_timeout(now);
                end = now.mono >= t.last_active + t.idle || self.http.closing() == Closing::Abort;
            }
            ProxyInput::Client(ConnInput::Drain | ConnInput::File(_))
            | ProxyInput::Up(UpInput::Connected { .. })
            | ProxyInput::Chosen(_) => {}
        }
        if end {
            // Either side closing ends the tunnel (WebSocket closes with a close frame first,
            // so nothing of value is lost): the upstream goes, the client gets what is left.
            self.tunnel = None;
            self.up = Up::None;
            self.out.push_back(ProxyOutput::Release { reuse: false });
            if let Some(x) = self.tunnel_exchange.take() {
                self.log(now, &x, 101, false);
            }
            self.finished = true;
            self.out.push_back(ProxyOutput::CloseClient);
        }
    }

    /// The next output; `Wait` once drained (see the module docs).
    pub fn poll_output(&mut self) -> ProxyOutput {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        if self.finished {
            let deadline = if self.aborted {
                None
            } else {
                self.http.deadline()
            };
            return ProxyOutput::Wait { deadline };
        }
        if let Some(t) = &self.tunnel {
            let idle = t.last_active + t.idle;
            let deadline = self.http.deadline().map_or(idle, |d| d.min(idle));
            return ProxyOutput::Wait {
                deadline: Some(deadline),
            };
        }
        let up = match &self.up {
            Up::Connecting { since, .. } => self.timeouts_of_exchange().map(|t| *since + t.0),
            Up::Active { conn, .. } => conn.deadline(),
            Up::None | Up::Choosing => None,
        };
        let deadline = match (self.http.deadline(), up) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ProxyOutput::Wait { deadline }
    }

    pub fn client_transmit(&self) -> &[u8] {
        self.http.transmit()
    }
    pub fn up_transmit(&self) -> &[u8] {
        if let Some(t) = &self.tunnel {
            return &t.up_out;
        }
        match &self.up {
            Up::Active { conn, .. } => conn.transmit(),
            _ => &[],
        }
    }
    /// Read the client? Not while a tunnel's upstream side is full, nor while what was read
    /// and not yet passed on (a request body waiting for a slow upstream) reaches the
    /// high-water mark.
    pub fn wants_read_client(&self) -> bool {
        if let Some(t) = &self.tunnel {
            return t.up_out.len() < HIGH_WATER;
        }
        !self.finished && self.http.wants_read() && self.http.buffered_input() < self.input_cap()
    }
    /// Read the upstream? Not while the client side is full, nor while what was read and not
    /// yet passed on reaches the high-water mark.
    pub fn wants_read_up(&self) -> bool {
        if self.tunnel.is_some() {
            return self.http.transmit_len() < HIGH_WATER;
        }
        match &self.up {
            Up::Active { conn, .. } => {
                conn.wants_read()
                    && conn.buffered_input() < self.input_cap()
                    && self.http.transmit_len() < HIGH_WATER
            }
            _ => false,
        }
    }
    /// Unparsed input held per side: the high-water mark, or room for a whole head when heads
    /// may be larger (a head is only taken out once complete).
    fn input_cap(&self) -> usize {
        HIGH_WATER.max(self.shared.limits.max_head + 1)
    }
    /// Whether an upstream connection is in use (for the driver's bookkeeping).
    pub fn has_upstream(&self) -> bool {
        matches!(self.up, Up::Connecting { .. } | Up::Active { .. })
    }

    /// Bounded state (checked by the simulator after every step).
    pub fn check_invariants(&self) {
        self.http.check_invariants();
        assert!(
            self.http.transmit_len() <= 2 * HIGH_WATER + 64 * 1024,
            "client bytes are bounded by backpressure"
        );
        assert!(
            self.up_transmit().len() <= 2 * HIGH_WATER + 64 * 1024,
            "upstream bytes are bounded by backpressure"
        );
        // Input is read only below the cap, one read (at most 64 KiB) at a time.
        let most_input = self.input_cap() + 64 * 1024;
        assert!(
            self.http.buffered_input() <= most_input,
            "unparsed client bytes are bounded by backpressure"
        );
        if let Up::Active { conn, .. } = &self.up {
            assert!(
                conn.buffered_input() <= most_input,
                "unparsed upstream bytes are bounded by backpressure"
            );
        }
        if self.exchange.is_none() && self.tunnel.is_none() {
            assert!(
                !matches!(self.up, Up::Active { .. } | Up::Connecting { .. }),
                "no upstream without an exchange"
            );
        }
    }
}

#[derive(Copy, Clone, Debug)]
enum Failure {
    ConnectRefused,
    ConnectTimedOut,
    Upstream(ClientError),
    UnaskedUpgrade,
}

impl Failure {
    /// What an access-log line says of it.
    fn describe(self) -> String {
        match self {
            Failure::ConnectRefused => "connect refused".into(),
            Failure::ConnectTimedOut => "connect timed out".into(),
            Failure::Upstream(ClientError::TimedOut) => "timed out".into(),
            Failure::Upstream(ClientError::Closed) => "closed or reset".into(),
            Failure::Upstream(ClientError::Malformed(e)) => {
                format!("malformed response ({})", e.kind.name())
            }
            Failure::UnaskedUpgrade => "malformed response (unasked 101)".into(),
        }
    }
}
