//! The proxy's connection machine driven by a scripted driver: routing, balancing, failover,
//! retries, timeouts, relaying, backpressure.

use std::sync::Arc;
use weaprous_core::node::{ConnInput, Now};
use weaprous_core::proxy::balance::Health;
use weaprous_core::proxy::config::Config;
use weaprous_core::proxy::conn::{
    Outcome, ProxyConn, ProxyInput, ProxyLog, ProxyNode, ProxyOutput, ProxyShared, UpInput,
    HIGH_WATER,
};
use weaprous_core::time::{Duration, Instant, UnixTime};

const CONF: &str = r#"
proxy_connect_timeout 2s;
proxy_read_timeout 10s;
host "app1.local" { proxy_pass http://127.0.0.1:9000; }
host "app2.local" {
    proxy_pass http://127.0.0.1:9001;
    proxy_pass http://127.0.0.1:9002;
    dist_policy round-robin;
}
"#;

/// A driver that does what the machine asks, with the upstream's behaviour scripted by the test.
struct Harness {
    shared: Arc<ProxyShared>,
    node: ProxyNode,
    conn: ProxyConn,
    now: Now,
    to_client: Vec<u8>,
    to_upstream: Vec<u8>,
    connects: Vec<String>,
    releases: Vec<bool>,
    logs: Vec<ProxyLog>,
    /// Every health verdict reported to the node, in order.
    reports: Vec<Outcome>,
    /// How many AbortClient outputs were given (at most one may be).
    aborts: usize,
    closed: Option<ProxyOutput>,
    deadline: Option<Instant>,
    /// The client stops reading.
    client_stalled: bool,
    /// The upstream stops reading.
    upstream_stalled: bool,
}

impl Harness {
    fn new(conf: &str) -> Harness {
        let shared = Arc::new(ProxyShared::new(Config::parse(conf).unwrap()));
        let now = Now {
            mono: Instant::ZERO,
            wall: UnixTime(1_700_000_000),
        };
        Harness {
            node: ProxyNode::new(&shared, 1),
            conn: ProxyConn::new(shared.clone(), now, "192.0.2.9", 7),
            shared,
            now,
            to_client: Vec::new(),
            to_upstream: Vec::new(),
            connects: Vec::new(),
            releases: Vec::new(),
            logs: Vec::new(),
            reports: Vec::new(),
            aborts: 0,
            closed: None,
            deadline: None,
            client_stalled: false,
            upstream_stalled: false,
        }
    }
    fn input(&mut self, i: ProxyInput<'_>) {
        self.conn.handle(self.now, i);
        self.pump();
    }
    fn pump(&mut self) {
        for _ in 0..10_000 {
            self.conn.check_invariants();
            match self.conn.poll_output() {
                ProxyOutput::Choose {
                    route,
                    tried,
                    client,
                } => {
                    let c = self
                        .node
                        .choose(&self.shared, route, self.now.mono, &client, &tried);
                    self.conn.handle(self.now, ProxyInput::Chosen(c));
                }
                ProxyOutput::Report {
                    route,
                    upstream,
                    outcome,
                } => {
                    self.reports.push(outcome);
                    self.node.report(route, upstream, outcome, self.now.mono)
                }
                ProxyOutput::Connect { addr } => self.connects.push(addr),
                ProxyOutput::Release { reuse } => self.releases.push(reuse),
                ProxyOutput::Log(l) => self.logs.push(l),
                c @ (ProxyOutput::CloseClient | ProxyOutput::AbortClient) => {
                    self.aborts += usize::from(c == ProxyOutput::AbortClient);
                    self.closed = Some(c)
                }
                ProxyOutput::Wait { deadline } => {
                    self.deadline = deadline;
                    let up = self.conn.up_transmit().len();
                    if up > 0 && !self.upstream_stalled {
                        self.to_upstream.extend_from_slice(self.conn.up_transmit());
                        self.conn
                            .handle(self.now, ProxyInput::Up(UpInput::Flushed(up)));
                        continue;
                    }
                    let down = self.conn.client_transmit().len();
                    if down > 0 && !self.client_stalled {
                        self.to_client
                            .extend_from_slice(self.conn.client_transmit());
                        self.conn
                            .handle(self.now, ProxyInput::Client(ConnInput::Flushed(down)));
                        continue;
                    }
                    return;
                }
            }
        }
        panic!("the machine never settled");
    }
    fn client(&mut self, bytes: &str) {
        self.input(ProxyInput::Client(ConnInput::Data(bytes.as_bytes())));
    }
    fn connected(&mut self) {
        self.input(ProxyInput::Up(UpInput::Connected { reused: false }));
    }
    fn upstream(&mut self, bytes: &[u8]) {
        self.input(ProxyInput::Up(UpInput::Data(bytes)));
    }
    fn advance(&mut self, d: Duration) {
        self.now.mono = self.now.mono + d;
        self.input(ProxyInput::Client(ConnInput::Timeout));
    }
    fn got(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.to_client)).into_owned()
    }
    fn sent_up(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.to_upstream)).into_owned()
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

#[test]
fn routes_by_host_forwards_and_relays() {
    let mut h = Harness::new(CONF);
    h.client("GET /x?y=1 HTTP/1.1\r\nHost: APP1.local\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(h.connects, ["127.0.0.1:9000"]);
    h.connected();
    let up = h.sent_up();
    assert!(up.starts_with("GET /x?y=1 HTTP/1.1\r\n"), "{up}");
    assert!(up.contains("Host: APP1.local\r\n"), "Host preserved: {up}");
    assert!(up.contains("X-Forwarded-For: 192.0.2.9\r\n") && up.contains("Via: 1.1 weaprous\r\n"));
    assert!(
        !up.to_ascii_lowercase().contains("keep-alive"),
        "hop-by-hop stripped: {up}"
    );
    h.upstream(OK);
    let got = h.got();
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("\r\n\r\nhi"),
        "{got}"
    );
    assert_eq!(h.releases, [true], "pooled for the next request");
    let log = &h.logs[0];
    assert_eq!(
        (log.status, log.upstream.as_str(), log.attempts),
        (200, "127.0.0.1:9000", 1)
    );
    assert!(h.closed.is_none(), "keep-alive with the client");
}

#[test]
fn round_robin_over_two_backends_on_one_client_connection() {
    let mut h = Harness::new(CONF);
    for _ in 0..4 {
        h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
        h.connected();
        h.upstream(OK);
    }
    assert_eq!(
        h.connects,
        [
            "127.0.0.1:9001",
            "127.0.0.1:9002",
            "127.0.0.1:9001",
            "127.0.0.1:9002"
        ]
    );
    assert_eq!(h.got().matches("200 OK").count(), 4);
}

#[test]
fn an_unknown_host_is_a_404_without_touching_any_upstream() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: nobody.example\r\n\r\n");
    assert!(h.got().starts_with("HTTP/1.1 404 "));
    assert!(h.connects.is_empty());
    h.client("GET / HTTP/1.1\r\n\r\n");
    assert!(
        h.got().starts_with("HTTP/1.1 400 "),
        "a 1.1 request without Host"
    );
}

#[test]
fn a_refused_connect_fails_over_then_all_down_is_502_at_once() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    assert_eq!(h.connects, ["127.0.0.1:9001", "127.0.0.1:9002"]);
    h.connected();
    h.upstream(OK);
    assert!(h.got().starts_with("HTTP/1.1 200 "));
    assert_eq!(h.logs[0].attempts, 2);

    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    assert_eq!(h.connects.len(), 2, "no third attempt");
    assert!(h.got().starts_with("HTTP/1.1 502 "));
}

#[test]
fn a_slow_connect_times_out_to_the_next_backend_and_a_silent_one_is_504() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    assert_eq!(
        h.deadline,
        Some(Instant::ZERO + Duration::from_secs(2)),
        "connect timeout"
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(h.connects.len(), 2);
    h.connected();
    assert_eq!(
        h.deadline,
        Some(Instant::ZERO + Duration::from_secs(12)),
        "read timeout"
    );
    h.advance(Duration::from_secs(10));
    assert!(
        h.got().starts_with("HTTP/1.1 504 "),
        "a read timeout is a 504"
    );
}

#[test]
fn a_malformed_upstream_response_is_a_502_and_nothing_of_it_leaks() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    let got = h.got();
    assert!(got.starts_with("HTTP/1.1 502 "), "{got}");
    assert!(!got.contains("200 OK"));
    assert_eq!(h.releases, [false], "that upstream connection is closed");
}

#[test]
fn an_upstream_error_status_is_relayed_unchanged() {
    let mut h = Harness::new(CONF);
    h.client("GET /missing HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnot");
    let got = h.got();
    assert!(
        got.starts_with("HTTP/1.1 404 Not Found\r\n") && got.ends_with("not"),
        "{got}"
    );
    assert_eq!(h.connects.len(), 1, "a 404 is an answer, not a failure");
}

#[test]
fn a_post_reaches_a_backend_at_most_once() {
    // The body was sent, then the upstream vanished before answering: 502, no second attempt.
    let mut h = Harness::new(CONF);
    h.client("POST /m HTTP/1.1\r\nHost: app2.local\r\nContent-Length: 5\r\n\r\nhello");
    h.connected();
    assert!(h.sent_up().ends_with("\r\n\r\nhello"));
    h.input(ProxyInput::Up(UpInput::Eof));
    assert!(h.got().starts_with("HTTP/1.1 502 "));
    assert_eq!(h.connects.len(), 1);

    // Nothing of it was sent (the connect failed): it may go to the next backend.
    let mut h = Harness::new(CONF);
    h.client("POST /m HTTP/1.1\r\nHost: app2.local\r\nContent-Length: 5\r\n\r\nhello");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    h.connected();
    assert!(h.sent_up().ends_with("hello"));
    h.upstream(OK);
    assert!(h.got().starts_with("HTTP/1.1 200 "));
}

#[test]
fn a_stale_pooled_connection_is_retried_once_on_a_fresh_one() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::Connected { reused: true }));
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(h.connects.len(), 2, "retried");
    h.connected();
    h.upstream(OK);
    assert!(h.got().starts_with("HTTP/1.1 200 "));
    let route_health = h.node.balancer_for((0, 0)).unwrap().health(0);
    assert_eq!(
        route_health,
        Health::Up,
        "a stale pooled connection is not the backend's fault"
    );
}

#[test]
fn a_failure_after_the_head_went_out_aborts_the_client() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(
        h.closed,
        Some(ProxyOutput::AbortClient),
        "never a truncated body as complete"
    );
    assert!(h.logs.last().unwrap().aborted);
}

#[test]
fn three_failures_eject_a_backend_from_rotation() {
    let mut h = Harness::new(CONF);
    for _ in 0..6 {
        h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
        // 9001 refuses, 9002 answers.
        if h.connects.last().map(String::as_str) == Some("127.0.0.1:9001") {
            h.input(ProxyInput::Up(UpInput::ConnectFailed));
        }
        h.connected();
        h.upstream(OK);
    }
    let tries_9001 = h.connects.iter().filter(|a| a.ends_with(":9001")).count();
    assert_eq!(
        tries_9001, 3,
        "ejected after three failures: {:?}",
        h.connects
    );
    assert!(matches!(
        h.node.balancer_for((1, 0)).unwrap().health(0),
        Health::Ejected { .. }
    ));
}

#[test]
fn a_client_that_stops_reading_stops_the_upstream_being_read() {
    let mut h = Harness::new(CONF);
    h.client_stalled = true;
    h.client("GET /big HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    let size = 4 * HIGH_WATER;
    h.upstream(format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").as_bytes());
    let chunk = vec![b'x'; 16 * 1024];
    let mut fed = 0;
    while h.conn.wants_read_up() && fed < size {
        h.upstream(&chunk);
        fed += chunk.len();
    }
    assert!(fed < size, "reading the upstream stopped");
    assert!(
        h.conn.client_transmit().len() <= 2 * HIGH_WATER,
        "memory per exchange stays bounded"
    );
    h.client_stalled = false;
    h.input(ProxyInput::Client(ConnInput::Flushed(0)));
    assert!(h.conn.wants_read_up(), "resumes once the client reads");
}

#[test]
fn an_upstream_that_stops_reading_stops_the_client_being_read() {
    let mut h = Harness::new(CONF);
    h.upstream_stalled = true;
    let size = 8 * HIGH_WATER;
    h.client(&format!(
        "POST /up HTTP/1.1\r\nHost: app1.local\r\nContent-Length: {size}\r\n\r\n"
    ));
    h.connected();
    let chunk = "x".repeat(16 * 1024);
    let mut fed = 0;
    while h.conn.wants_read_client() && fed < size {
        h.client(&chunk);
        fed += chunk.len();
    }
    assert!(fed < size, "reading the client stopped");
    h.upstream_stalled = false;
    h.input(ProxyInput::Up(UpInput::Flushed(0)));
    assert!(
        h.conn.wants_read_client(),
        "resumes once the upstream reads"
    );
}

#[test]
fn a_client_that_stalls_mid_body_gets_one_408_and_the_exchange_ends() {
    // A read timeout longer than the body timeout, so the client's stall is what fires.
    let mut h = Harness::new(
        "proxy_read_timeout 120s; host \"app1.local\" { proxy_pass http://127.0.0.1:9000; }",
    );
    h.client("POST /m HTTP/1.1\r\nHost: app1.local\r\nContent-Length: 100\r\n\r\nonly some");
    h.connected();
    let d = h.deadline.expect("the body deadline runs");
    h.advance(d.since(h.now.mono));
    let got = h.got();
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert_eq!(h.releases, [false], "the upstream connection is dropped");
    // A late upstream answer must not produce a second response.
    h.upstream(OK);
    assert_eq!(h.got(), "");
}

/// A `Connection: close` exchange answered in full, to a client that reads nothing: the proxy
/// has said CloseClient and the last bytes wait to be sent.
fn answered_and_closing_to_a_stalled_client() -> Harness {
    let mut h = Harness::new(CONF);
    h.client_stalled = true;
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n");
    h.connected();
    h.upstream(OK);
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
    h
}

#[test]
fn the_last_bytes_after_close_have_a_send_deadline() {
    let mut h = answered_and_closing_to_a_stalled_client();
    let d = h
        .deadline
        .expect("found by the simulator: a send deadline after CloseClient");
    h.advance(d.since(h.now.mono));
    assert_eq!(h.closed, Some(ProxyOutput::AbortClient));
    assert_eq!(h.deadline, None);
}

#[test]
fn every_upstream_handed_out_is_given_back() {
    // Found by the simulator: attempts that ended without a verdict (the client left, a stale
    // pooled connection) kept counting as in flight, so an ejected backend was never probed
    // again and the proxy answered 502 forever.
    let in_flight = |h: &Harness| -> u32 { h.node.in_flight((1, 0)).iter().sum() };
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.connected();
    assert_eq!(in_flight(&h), 1);
    h.input(ProxyInput::Client(ConnInput::Reset));
    assert_eq!(in_flight(&h), 0, "the client went away");

    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::Connected { reused: true }));
    h.input(ProxyInput::Up(UpInput::Eof));
    h.connected();
    h.upstream(OK);
    assert_eq!(
        in_flight(&h),
        0,
        "a stale pooled connection, then a fresh one"
    );

    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    assert_eq!(in_flight(&h), 0, "both refused");
}

#[test]
fn a_websocket_upgrade_becomes_a_tunnel_both_ways() {
    let mut h = Harness::new(CONF);
    h.client(
        "GET /chat HTTP/1.1\r\nHost: app1.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nEARLY",
    );
    h.connected();
    let up = h.sent_up();
    assert!(
        up.contains("Upgrade: websocket\r\n") && up.contains("Connection: upgrade\r\n"),
        "{up}"
    );
    h.upstream(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nFROM-UP");
    let got = h.got();
    assert!(
        got.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{got}"
    );
    assert!(
        got.ends_with("\r\n\r\nFROM-UP"),
        "bytes after the 101 pass: {got}"
    );
    assert_eq!(
        h.sent_up(),
        "EARLY",
        "bytes the client sent after its request pass"
    );
    h.client("\u{81}\u{2}hi");
    assert_eq!(h.sent_up(), "\u{81}\u{2}hi");
    h.upstream(b"more");
    assert_eq!(h.got(), "more");
    assert_eq!(
        h.node.in_flight((0, 0)),
        [0],
        "the upstream was reported once"
    );
    h.input(ProxyInput::Client(ConnInput::Eof));
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
    assert_eq!(h.releases, [false]);
    assert_eq!(h.logs.last().map(|l| l.status), Some(101));
}

#[test]
fn a_declined_upgrade_stays_http_and_an_unasked_101_is_refused() {
    let mut h = Harness::new(CONF);
    h.client("GET /chat HTTP/1.1\r\nHost: app1.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    h.connected();
    h.upstream(OK);
    assert!(h.got().starts_with("HTTP/1.1 200 "));
    h.client("GET /next HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(OK);
    assert!(
        h.got().starts_with("HTTP/1.1 200 "),
        "the connection goes on as HTTP"
    );

    let mut h = Harness::new("host \"app1.local\" { proxy_pass http://127.0.0.1:9000; }");
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    // Refused; the GET is retried (idempotent), and with one upstream it ends as 502.
    let got = h.got();
    assert!(
        got.starts_with("HTTP/1.1 502 ") && !got.contains("101"),
        "{got}"
    );
}

#[test]
fn an_idle_tunnel_closes_at_the_read_timeout() {
    let mut h = Harness::new(CONF);
    h.client("GET /chat HTTP/1.1\r\nHost: app1.local\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    h.connected();
    h.upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    );
    let d = h.deadline.expect("an idle deadline");
    assert_eq!(
        d,
        h.now.mono + Duration::from_secs(10),
        "proxy_read_timeout"
    );
    h.advance(Duration::from_secs(10));
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
}

#[test]
fn a_client_gone_while_its_last_bytes_wait_ends_the_connection() {
    // Found by the benchmark: after CloseClient, a reset was ignored and the driver kept
    // writing to the broken socket.
    let mut h = answered_and_closing_to_a_stalled_client();
    h.input(ProxyInput::Client(ConnInput::Reset));
    assert_eq!(h.closed, Some(ProxyOutput::AbortClient));
}

#[test]
fn every_deadline_due_at_once_is_handled_and_a_late_choice_is_given_back() {
    // Found by the simulator: when an upstream deadline and the client's body deadline fell
    // due together, only the first was handled (a spin); and a choice answered after the
    // exchange had ended was counted in flight forever.
    let mut h = Harness::new(
        "proxy_connect_timeout 30s; host \"app1.local\" { proxy_pass http://127.0.0.1:9000; proxy_pass http://127.0.0.1:9001; }",
    );
    h.client("POST /m HTTP/1.1\r\nHost: app1.local\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(h.connects.len(), 1);
    let d = h.deadline.unwrap();
    assert_eq!(
        d,
        h.now.mono + Duration::from_secs(30),
        "connect and body deadlines coincide"
    );
    h.advance(Duration::from_secs(30));
    assert!(
        h.got().starts_with("HTTP/1.1 408 "),
        "the client's deadline was handled too"
    );
    assert!(
        h.deadline.is_none_or(|d| d > h.now.mono),
        "nothing left due"
    );
    assert_eq!(h.node.in_flight((0, 0)), [0, 0], "every choice given back");
}

/// A POST whose chunked body breaks (`0x5` is no chunk size), with a GET pipelined behind it.
const BAD_BODY_THEN_GET: &str = "POST /login HTTP/1.1\r\nHost: app1.local\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: app1.local\r\n\r\n";
const METHOD_NOT_ALLOWED: &[u8] =
    b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 4\r\n\r\nnope";

fn in_flight(h: &Harness) -> u32 {
    h.node.in_flight((0, 0)).iter().sum()
}

#[test]
fn a_body_that_breaks_before_any_answer_gets_the_proxys_400_and_nothing_else() {
    let (head, rest) = BAD_BODY_THEN_GET.split_at(BAD_BODY_THEN_GET.find("\r\n\r\n").unwrap() + 4);
    let mut h = Harness::new(CONF);
    h.client(head);
    h.connected();
    let up = h.sent_up();
    assert!(
        up.starts_with("POST /login "),
        "the head went upstream: {up}"
    );
    h.client(rest);
    let got = h.got();
    assert!(got.starts_with("HTTP/1.1 400 "), "{got}");
    assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{got}");
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
    assert_eq!(h.releases, [false], "the upstream exchange is abandoned");
    assert_eq!(in_flight(&h), 0, "the attempt was reported back");
    assert_eq!(h.connects.len(), 1, "the GET behind it is never forwarded");
    // The upstream's late answer goes nowhere.
    h.upstream(METHOD_NOT_ALLOWED);
    assert_eq!(h.got(), "");
    assert_eq!(h.logs.len(), 1, "{:?}", h.logs);
    assert_eq!(h.logs[0].status, 400);
}

#[test]
fn a_body_that_breaks_before_the_upstream_is_connected_is_answered_400_once() {
    let mut h = Harness::new(CONF);
    h.client(BAD_BODY_THEN_GET);
    h.connected();
    let got = h.got();
    assert!(got.starts_with("HTTP/1.1 400 "), "{got}");
    assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{got}");
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
    assert_eq!((h.releases.as_slice(), in_flight(&h)), (&[false][..], 0));
    h.upstream(METHOD_NOT_ALLOWED);
    assert_eq!(h.got(), "");
}

#[test]
fn a_body_that_breaks_after_the_upstream_answered_closes_without_a_second_response() {
    let mut h = Harness::new(CONF);
    h.client("POST /login HTTP/1.1\r\nHost: app1.local\r\nTransfer-Encoding: chunked\r\n\r\n");
    h.connected();
    h.upstream(METHOD_NOT_ALLOWED);
    let got = h.got();
    assert!(got.starts_with("HTTP/1.1 405 "), "{got}");
    assert_eq!(
        h.releases,
        [false],
        "request bytes are still owed: never pooled"
    );
    h.client("0x5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    assert_eq!(h.got(), "", "no second response");
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
    assert_eq!(h.connects.len(), 1, "the GET behind it is never forwarded");
}

#[test]
fn a_body_that_breaks_while_the_answer_is_relayed_aborts_the_client() {
    let mut h = Harness::new(CONF);
    h.client("POST /login HTTP/1.1\r\nHost: app1.local\r\nTransfer-Encoding: chunked\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 10\r\n\r\nno");
    assert!(h.got().starts_with("HTTP/1.1 405 "));
    h.client("0x5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    assert_eq!(h.closed, Some(ProxyOutput::AbortClient));
    assert_eq!(h.releases, [false]);
    assert_eq!(in_flight(&h), 0);
    h.upstream(b"tail");
    assert_eq!(h.got(), "", "nothing after the abort");
}

/// RFC 9112 §3.2.2: an absolute-form target's authority decides, whatever Host says.
#[test]
fn an_absolute_form_target_is_routed_by_its_authority_not_by_host() {
    let mut h = Harness::new(CONF);
    h.client("GET http://app2.local/x?q=1 HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    assert_eq!(
        h.connects,
        ["127.0.0.1:9001"],
        "app2's upstream, not app1's"
    );
    h.connected();
    let up = h.sent_up();
    assert!(up.starts_with("GET /x?q=1 HTTP/1.1\r\n"), "{up}");
    assert!(up.contains("\r\nHost: app2.local\r\n"), "{up}");
    assert!(
        !up.contains("app1.local"),
        "the Host field is ignored: {up}"
    );
    assert!(up.contains("X-Forwarded-Host: app2.local\r\n"), "{up}");
    h.upstream(OK);
    assert!(h.got().starts_with("HTTP/1.1 200 "));
    assert_eq!(h.logs[0].host, "app2.local");

    // With a port: the name routes as it would in Host; the authority goes up as it came.
    let mut h = Harness::new(CONF);
    h.client("GET http://APP1.local:8080/y HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    assert_eq!(h.connects, ["127.0.0.1:9000"]);
    h.connected();
    let up = h.sent_up();
    assert!(up.starts_with("GET /y HTTP/1.1\r\n"), "{up}");
    assert!(up.contains("\r\nHost: APP1.local:8080\r\n"), "{up}");

    // An authority no block serves is a 404, even with a Host that one would.
    let mut h = Harness::new(CONF);
    h.client("GET http://nobody.local/ HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    assert!(h.got().starts_with("HTTP/1.1 404 "));
    assert!(h.connects.is_empty());
}

#[test]
fn an_absolute_form_target_with_userinfo_or_a_bad_authority_is_a_400() {
    for target in [
        "http://user@app1.local/",
        "http://user:pw@app1.local/",
        "http://app1.local:99999/",
        "http://a b/",
    ] {
        let mut h = Harness::new(CONF);
        h.client(&format!(
            "GET {target} HTTP/1.1\r\nHost: app1.local\r\n\r\n"
        ));
        let got = h.got();
        assert!(got.starts_with("HTTP/1.1 400 "), "{target}: {got}");
        assert!(h.connects.is_empty(), "{target}");
    }
}

/// A client that resets mid-exchange: the upstream connection is closed, never pooled (its
/// response is still coming, or its request was cut short), and the attempt is handed back.
#[test]
fn a_client_reset_releases_the_upstream_unpooled() {
    // While the answer is being relayed.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    h.input(ProxyInput::Client(ConnInput::Reset));
    assert_eq!((h.releases.as_slice(), in_flight(&h)), (&[false][..], 0));
    // While the request body is still being sent.
    let mut h = Harness::new(CONF);
    h.client("POST / HTTP/1.1\r\nHost: app1.local\r\nContent-Length: 10\r\n\r\nabc");
    h.connected();
    h.input(ProxyInput::Client(ConnInput::Reset));
    assert_eq!((h.releases.as_slice(), in_flight(&h)), (&[false][..], 0));
    // After a whole exchange: the connection went back to the pool then, and the reset
    // finds nothing to release.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(OK);
    h.input(ProxyInput::Client(ConnInput::Reset));
    assert_eq!(h.releases, [true]);
    assert_eq!(h.closed, Some(ProxyOutput::AbortClient));
}

/// A non-idempotent request on a pooled connection that turns out closed: retried on a fresh
/// one only if none of it was written (the upstream cannot have acted on it); once its bytes
/// went out, the upstream may have acted on them, so it is a 502.
#[test]
fn a_post_on_a_stale_pooled_connection_is_retried_only_if_none_of_it_was_sent() {
    let post = "POST /m HTTP/1.1\r\nHost: app1.local\r\nContent-Length: 5\r\n\r\nhello";
    // Nothing written yet: the stale connection closed before the driver could write.
    let mut h = Harness::new(CONF);
    h.upstream_stalled = true;
    h.client(post);
    h.input(ProxyInput::Up(UpInput::Connected { reused: true }));
    assert_eq!(h.sent_up(), "");
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(h.connects.len(), 2, "retried on a fresh connection");
    h.upstream_stalled = false;
    h.connected();
    assert!(h.sent_up().ends_with("\r\n\r\nhello"));
    h.upstream(OK);
    assert!(h.got().starts_with("HTTP/1.1 200 "));

    // Written: the upstream may have it. No second attempt.
    let mut h = Harness::new(CONF);
    h.client(post);
    h.input(ProxyInput::Up(UpInput::Connected { reused: true }));
    assert!(h.sent_up().ends_with("hello"));
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(h.connects.len(), 1, "not retried");
    assert!(h.got().starts_with("HTTP/1.1 502 "));
    assert_eq!(h.releases, [false]);
}

/// An upstream that answers once the request head is out and before its body: the connection
/// is owed the rest of the body, which no other request may follow. Never pooled. With the
/// body out in full before the answer, it goes back to the pool.
#[test]
fn an_early_answer_to_a_head_already_sent_is_not_pooled() {
    let mut h = Harness::new(CONF);
    h.client("POST /m HTTP/1.1\r\nHost: app1.local\r\nContent-Length: 10\r\n\r\n");
    h.connected();
    assert!(h.sent_up().ends_with("\r\n\r\n"), "the head went out");
    h.upstream(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
    assert!(h.got().starts_with("HTTP/1.1 413 "));
    assert_eq!(h.releases, [false], "ten body bytes are still owed");
    assert_eq!(in_flight(&h), 0);
    // The client's body is drained, not forwarded; the next request is served.
    h.client("0123456789GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    assert_eq!(h.sent_up(), "", "the body stays with the proxy");
    assert_eq!(h.connects.len(), 2, "the GET on a new connection");
    h.connected();
    assert!(h.sent_up().starts_with("GET / "));

    // The body went out whole before the answer: reusable.
    let mut h = Harness::new(CONF);
    h.client("POST /m HTTP/1.1\r\nHost: app1.local\r\nContent-Length: 3\r\n\r\nabc");
    h.connected();
    assert!(h.sent_up().ends_with("abc"));
    h.upstream(OK);
    assert_eq!(h.releases, [true]);
}

#[test]
fn a_bodiless_post_that_went_out_is_not_sent_again() {
    let mut h = Harness::new(CONF);
    h.client("POST /m HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.connected();
    assert!(h.sent_up().starts_with("POST /m "));
    h.input(ProxyInput::Up(UpInput::Eof));
    assert!(h.got().starts_with("HTTP/1.1 502 "));
    assert_eq!(h.connects.len(), 1, "not idempotent: no second attempt");
    // The same as a PUT (idempotent, bodiless) goes to the next backend.
    let mut h = Harness::new(CONF);
    h.client("PUT /m HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.connected();
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(h.connects.len(), 2);
}

#[test]
fn a_last_request_whose_upstreams_are_all_down_gets_a_502_and_the_close() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    assert!(h.got().starts_with("HTTP/1.1 502 "));
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
}

#[test]
fn a_last_request_closes_only_once_its_answer_is_relayed() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n");
    h.connected();
    assert_eq!(h.closed, None, "the answer is still to come");
    h.upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
    assert_eq!(h.closed, None, "half of it is relayed");
    h.upstream(b"cd");
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
    assert!(h.got().ends_with("abcd"));
}

#[test]
fn an_aborted_connection_is_aborted_once() {
    let mut h = answered_and_closing_to_a_stalled_client();
    let d = h.deadline.expect("a send deadline");
    h.advance(d.since(h.now.mono));
    assert_eq!(h.closed, Some(ProxyOutput::AbortClient));
    assert_eq!(h.aborts, 1);
    h.input(ProxyInput::Client(ConnInput::Reset));
    h.advance(Duration::from_secs(100));
    assert_eq!(h.aborts, 1, "nothing more after the abort");
    // Reset by the client while its last bytes wait: one abort too.
    let mut h = answered_and_closing_to_a_stalled_client();
    h.input(ProxyInput::Client(ConnInput::Reset));
    h.input(ProxyInput::Client(ConnInput::Reset));
    assert_eq!(h.aborts, 1);
}

#[test]
fn a_chunked_request_body_goes_up_whole_with_its_last_chunk() {
    let mut h = Harness::new(CONF);
    h.client("POST /m HTTP/1.1\r\nHost: app1.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    h.connected();
    let up = h.sent_up();
    assert!(up.contains("Transfer-Encoding: chunked\r\n"), "{up}");
    assert!(up.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "{up}");
    h.upstream(OK);
    assert_eq!(h.releases, [true], "all of it went: reusable");
}

#[test]
fn each_request_gets_its_own_request_id() {
    let conf = "host \"a\" { proxy_set_header X-Request-Id $request_id; proxy_pass http://127.0.0.1:9000; }";
    let mut h = Harness::new(conf);
    let mut ids = Vec::new();
    for _ in 0..2 {
        h.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        h.connected();
        let up = h.sent_up();
        ids.push(
            up.split("X-Request-Id: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap()
                .to_string(),
        );
        h.upstream(OK);
    }
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn answers_are_reframed_for_the_client_as_their_status_and_method_allow() {
    // Close-delimited upstream answer: chunked to the client, every byte.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome bytes");
    h.input(ProxyInput::Up(UpInput::Eof));
    let got = h.got();
    assert!(got.contains("Transfer-Encoding: chunked\r\n"), "{got}");
    assert!(got.ends_with("a\r\nsome bytes\r\n0\r\n\r\n"), "{got}");
    assert!(h.closed.is_none(), "the client's connection stays");
    // 204 and the answer to HEAD: no body, and no framing that promises one.
    for (req, answer) in [
        ("GET", &b"HTTP/1.1 204 No Content\r\n\r\n"[..]),
        ("HEAD", b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n"),
    ] {
        let mut h = Harness::new(CONF);
        h.client(&format!("{req} / HTTP/1.1\r\nHost: app1.local\r\n\r\n"));
        h.connected();
        h.upstream(answer);
        let got = h.got();
        assert!(!got.contains("Transfer-Encoding"), "{req}: {got}");
        assert!(got.ends_with("\r\n\r\n"), "{req}: {got}");
        assert_eq!(h.releases, [true], "{req}");
    }
}

#[test]
fn health_verdicts_blame_an_upstream_only_for_its_own_failures() {
    // A pooled connection that closes before any answer byte: stale, no verdict.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::Connected { reused: true }));
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(h.reports, [Outcome::Abandoned]);
    // A pooled connection that closes mid-answer: the upstream's failure.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::Connected { reused: true }));
    h.upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc");
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(h.reports, [Outcome::Failed]);
    // A pooled connection that never answers: a timeout is the upstream's failure.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::Connected { reused: true }));
    h.advance(Duration::from_secs(10));
    assert_eq!(h.reports.first(), Some(&Outcome::Failed));
    // A fresh connection that closes before answering: a failure.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.input(ProxyInput::Up(UpInput::Eof));
    assert_eq!(h.reports.first(), Some(&Outcome::Failed));
}

#[test]
fn an_answer_that_began_is_not_asked_for_again() {
    // Part of a head, then the close: some of an answer came, so it may have been acted on.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app2.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 2");
    h.input(ProxyInput::Up(UpInput::Eof));
    assert!(h.got().starts_with("HTTP/1.1 502 "));
    assert_eq!(h.connects.len(), 1);
}

#[test]
fn a_malformed_request_is_logged() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\nContent-Length: 1, 2\r\n\r\n");
    assert!(h.got().starts_with("HTTP/1.1 400 "));
    let log = h.logs.last().expect("a log record");
    assert_eq!((log.status, log.method.as_str()), (400, "-"));
}

fn tunnel() -> Harness {
    let mut h = Harness::new(CONF);
    h.client("GET /chat HTTP/1.1\r\nHost: app1.local\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    h.connected();
    h.upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    );
    assert!(h.got().starts_with("HTTP/1.1 101 "));
    h
}

#[test]
fn a_tunnel_lives_until_idle_and_reads_each_side_only_while_the_other_takes() {
    let mut h = tunnel();
    assert!(h.conn.wants_read_client() && h.conn.wants_read_up());
    h.advance(Duration::from_secs(5));
    assert_eq!(
        h.closed, None,
        "a timeout before the idle limit changes nothing"
    );
    // The upstream stops reading: the client is read until its bytes reach the mark.
    h.upstream_stalled = true;
    h.input(ProxyInput::Client(ConnInput::Data(&vec![
        b'c';
        HIGH_WATER - 1
    ])));
    assert!(h.conn.wants_read_client());
    h.input(ProxyInput::Client(ConnInput::Data(b"c")));
    assert!(!h.conn.wants_read_client());
    // And the other way.
    let mut h = tunnel();
    h.client_stalled = true;
    h.upstream(&vec![b'u'; HIGH_WATER - 1]);
    assert!(h.conn.wants_read_up());
    h.upstream(b"u");
    assert!(!h.conn.wants_read_up());
    // A client that takes nothing: the send deadline ends the tunnel.
    let d = h.deadline.expect("a deadline");
    h.advance(d.since(h.now.mono));
    assert!(h.closed.is_some());
}

#[test]
fn a_head_arriving_in_pieces_is_read_to_its_end() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.l");
    assert!(h.conn.wants_read_client(), "part of a head: read on");
    assert!(!h.conn.has_upstream());
    h.client("ocal\r\n\r\n");
    assert_eq!(h.connects.len(), 1);
    assert!(h.conn.has_upstream());
    h.connected();
    h.upstream(OK);
    assert!(!h.conn.has_upstream(), "given back with its exchange");
    // A head larger than the high-water mark, where the head limit allows it.
    let mut shared = ProxyShared::new(Config::parse(CONF).unwrap());
    shared.limits.max_head = 2 * HIGH_WATER;
    let shared = Arc::new(shared);
    let mut conn = ProxyConn::new(shared, h.now, "192.0.2.9", 8);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: app1.local\r\nX-Big: {}\r\n",
        "b".repeat(HIGH_WATER)
    );
    conn.handle(h.now, ProxyInput::Client(ConnInput::Data(big.as_bytes())));
    assert!(conn.wants_read_client(), "the head is not whole yet");
}

#[test]
fn the_proxys_own_pages_are_html_for_a_browser_and_text_otherwise() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\nAccept: text/html\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    let got = h.got();
    assert!(
        got.starts_with("HTTP/1.1 502 ") && got.contains("text/html"),
        "{got}"
    );
    h.client("GET / HTTP/1.1\r\nHost: nobody.local\r\n\r\n");
    let got = h.got();
    assert!(
        got.starts_with("HTTP/1.1 404 ") && got.contains("text/plain"),
        "{got}"
    );
}

#[test]
fn a_gateway_error_says_why_in_its_log_record() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    assert_eq!(h.logs[0].status, 502);
    assert_eq!(h.logs[0].error.as_deref(), Some("connect refused"));
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 2000 OK\r\n\r\n");
    assert_eq!(
        h.logs[0].error.as_deref(),
        Some("malformed response (bad_status)")
    );
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.advance(Duration::from_secs(10));
    assert_eq!(h.logs[0].status, 504);
    assert_eq!(h.logs[0].error.as_deref(), Some("timed out"));
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.logs[0].error.as_deref(), Some("connect timed out"));
    // An answer relayed whole has none.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(OK);
    assert_eq!(h.logs[0].error, None);
}

#[test]
fn a_last_request_answered_by_the_proxy_says_close_at_once() {
    // The client is not reading: the close is known as soon as the 502 is queued, not only
    // when its bytes leave.
    let mut h = Harness::new(CONF);
    h.client_stalled = true;
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n");
    h.input(ProxyInput::Up(UpInput::ConnectFailed));
    assert!(h.conn.client_transmit().starts_with(b"HTTP/1.1 502 "));
    assert_eq!(h.closed, Some(ProxyOutput::CloseClient));
}

/// Found by the simulator (proxy-faults, seed 33): a reset cut a close-delimited answer short
/// and the proxy took it for the answer's end, giving the client a short body as whole. Only a
/// clean close ends such a body; a reset aborts the client.
#[test]
fn a_reset_is_no_end_of_a_close_delimited_answer() {
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome of it");
    assert!(h.got().contains("some of it"));
    h.input(ProxyInput::Up(UpInput::Reset));
    assert_eq!(h.closed, Some(ProxyOutput::AbortClient));
    assert!(!h.got().contains("0\r\n\r\n"), "no last chunk");
    assert!(h.logs.last().unwrap().aborted);
    // A clean close ends it.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it");
    h.input(ProxyInput::Up(UpInput::Eof));
    assert!(h.got().ends_with("all of it\r\n0\r\n\r\n"));
    assert_eq!(h.closed, None);
    // A reset after a whole answer with a length changes nothing.
    let mut h = Harness::new(CONF);
    h.client("GET / HTTP/1.1\r\nHost: app1.local\r\n\r\n");
    h.connected();
    h.upstream(OK);
    h.input(ProxyInput::Up(UpInput::Reset));
    assert!(h.got().ends_with("hi"));
    assert_eq!(h.closed, None);
}
