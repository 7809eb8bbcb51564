//! Scripted origins for the proxy world: HTTP/1.1 servers whose answer to each request is
//! spelled in the request's target ([`Spec`]), so a client knows exactly what must come back
//! through the proxy, and which answer in every way the static backend never does:
//! `Content-Length`, chunked and close-delimited bodies, interim `1xx` heads, 204, 304 and
//! HEAD answers, answers sent before the request body was read, and malformed answers.
//!
//! Every answer carries what the origin saw: `X-Req-Digest`, the FNV-1a of the request body
//! it read (when it read it before answering), and `X-Host`, the `Host` it was sent. The body
//! is [`body_of`] the spec's seed and length. So a client checks, through the proxy, every
//! byte both ways and where the proxy routed it.
//!
//! A connection is kept alive between requests (also after an early answer: the origin reads
//! the rest of the body and goes on) and closed when nothing moved on it for [`IDLE`], after a
//! close-delimited body, or when a request is malformed.

use crate::client::{ClientReq, ConnPlan, Expect};
use crate::deadlines::Deadlines;
use crate::engine::{Cx, Node, StreamId};
use crate::trace::fnv;
use crate::workload::Mix;
use std::any::Any;
use std::collections::BTreeMap;
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Limits, Method};
use weaprous_core::time::{Duration, Instant};

/// How long an origin keeps a connection on which nothing moves (the static backend's idle
/// keep-alive time).
pub const IDLE: Duration = Duration::from_secs(60);

/// How the body of an answer is framed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    Length,
    Chunked,
    /// Neither: the body ends when the origin closes.
    Close,
}

/// A malformed answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Bad {
    /// `HTTP/1.1 2000 OK`: no valid status line (nothing of it may reach a client).
    StatusLine,
    /// Both `Content-Length` and `Transfer-Encoding` (ambiguous framing: refused whole).
    LengthAndChunked,
    /// A valid chunked head, then a chunk-size line that is no size (after the head went on).
    ChunkSize,
    /// `Content-Length: n`, then half the body and the close (whatever the spec's framing).
    ShortBody,
}

/// What an origin answers to one request (encoded in its target's query).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub status: u16,
    pub framing: Framing,
    pub len: usize,
    pub seed: u64,
    /// `1xx` heads before the final one (`100 Continue`, `103 Early Hints`).
    pub interim: u8,
    /// Answer as soon as the head arrives, before reading the body.
    pub early: bool,
    pub bad: Option<Bad>,
}

impl Spec {
    /// The query string that carries the spec.
    pub fn query(&self) -> String {
        let f = match self.framing {
            Framing::Length => 'l',
            Framing::Chunked => 'c',
            Framing::Close => 'e',
        };
        let b = match self.bad {
            None => '-',
            Some(Bad::StatusLine) => 's',
            Some(Bad::LengthAndChunked) => 't',
            Some(Bad::ChunkSize) => 'k',
            Some(Bad::ShortBody) => 'h',
        };
        format!(
            "s={}&f={f}&n={}&x={}&i={}&e={}&b={b}",
            self.status,
            self.len,
            self.seed,
            self.interim,
            u8::from(self.early)
        )
    }

    /// The spec in `target`'s query; a target without one gets a plain answer derived from
    /// its path (so a request routed here by mistake is told apart by its body).
    pub fn of_target(target: &str) -> Spec {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut spec = Spec {
            status: 200,
            framing: Framing::Length,
            len: 64,
            seed: fnv(path.as_bytes()),
            interim: 0,
            early: false,
            bad: None,
        };
        for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
            match k {
                "s" => spec.status = v.parse().unwrap_or(200),
                "f" => {
                    spec.framing = match v {
                        "c" => Framing::Chunked,
                        "e" => Framing::Close,
                        _ => Framing::Length,
                    }
                }
                "n" => spec.len = v.parse().unwrap_or(0),
                "x" => spec.seed = v.parse().unwrap_or(0),
                "i" => spec.interim = v.parse().unwrap_or(0),
                "e" => spec.early = v == "1",
                "b" => {
                    spec.bad = match v {
                        "s" => Some(Bad::StatusLine),
                        "t" => Some(Bad::LengthAndChunked),
                        "k" => Some(Bad::ChunkSize),
                        "h" => Some(Bad::ShortBody),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        spec
    }

    /// Whether the answer to `method` carries no body.
    pub fn bodiless(&self, method: &Method) -> bool {
        *method == Method::Head || matches!(self.status, 204 | 304)
    }
}

/// The body of an answer: `len` bytes drawn from `seed`.
pub fn body_of(seed: u64, len: usize) -> Vec<u8> {
    let mut r = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| r.u8(..)).collect()
}

/// The request being read on a connection.
struct Current {
    spec: Spec,
    method: Method,
    host: String,
    target: String,
    digest: u64,
    answered: bool,
}

struct Conn {
    parser: Parser,
    current: Option<Current>,
    /// Close once `out` is written.
    closing: bool,
    out: Vec<u8>,
}

/// How often each request that must arrive at most once reached an origin (and the backends).
pub type Ledger = crate::backend::PostLedger;

/// An origin host. See the module docs.
pub struct OriginHost {
    conns: BTreeMap<StreamId, Conn>,
    deadlines: Deadlines,
    ledger: Ledger,
}

impl OriginHost {
    pub fn new(ledger: Ledger) -> Self {
        OriginHost {
            conns: BTreeMap::new(),
            deadlines: Deadlines::default(),
            ledger,
        }
    }
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn drive(&mut self, cx: &mut Cx, s: StreamId) {
        let now = cx.now().mono;
        let Some(c) = self.conns.get_mut(&s) else {
            return;
        };
        if !c.closing {
            loop {
                match c.parser.next_event() {
                    Ok(Event::Request(head)) => {
                        let target = head.target.as_str().to_string();
                        if crate::workload::is_once(&target) {
                            *self.ledger.borrow_mut().entry(target.clone()).or_default() += 1;
                        }
                        let spec = Spec::of_target(&target);
                        let host = head.headers.get_str("host").unwrap_or("").to_string();
                        let mut cur = Current {
                            spec,
                            method: head.method,
                            host,
                            target,
                            digest: 0xcbf2_9ce4_8422_2325,
                            answered: false,
                        };
                        if cur.spec.early {
                            cx.cover("origin.answered_before_the_body");
                            answer(cx, c, &mut cur, None);
                        }
                        c.current = Some(cur);
                    }
                    Ok(Event::Data(d)) => {
                        if let Some(cur) = c.current.as_mut() {
                            for &b in d.iter() {
                                cur.digest ^= b as u64;
                                cur.digest = cur.digest.wrapping_mul(0x0100_0000_01b3);
                            }
                        }
                    }
                    Ok(Event::End { .. }) => {
                        if let Some(mut cur) = c.current.take() {
                            if !cur.answered {
                                let digest = cur.digest;
                                answer(cx, c, &mut cur, Some(digest));
                            }
                        }
                        if c.closing {
                            break;
                        }
                    }
                    Ok(Event::NeedData) => break,
                    Ok(_) | Err(_) => {
                        // A malformed request, or the peer's close: nothing more to read.
                        c.closing = true;
                        break;
                    }
                }
            }
        }
        // Write what the window takes.
        if !c.out.is_empty() {
            let n = cx.room(s).min(c.out.len());
            if n > 0 {
                cx.write(s, &c.out[..n]);
                c.out.drain(..n);
            }
            if !c.out.is_empty() {
                cx.want_writable(s);
            }
        }
        if c.out.is_empty() && c.closing {
            cx.fin(s);
            self.conns.remove(&s);
            self.deadlines.set(s, None);
            return;
        }
        // Idle or stalled (a request half sent, an answer not taken) alike: a peer that went
        // away without a word (a crash) must not hold the connection forever.
        self.deadlines.set(s, Some(now + IDLE));
    }
}

/// Queues the answer to `cur` on `c` (see [`Spec`]); `digest` is the request body's, if read.
fn answer(cx: &mut Cx, c: &mut Conn, cur: &mut Current, digest: Option<u64>) {
    cur.answered = true;
    let spec = &cur.spec;
    cx.trace(50, spec.status as u64, spec.len as u64, || {
        format!("origin answers {} {} with {spec:?}", cur.method, cur.target)
    });
    let out = &mut c.out;
    for i in 0..spec.interim {
        cx.cover("origin.interim_head");
        if i % 2 == 0 {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        } else {
            out.extend_from_slice(
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
            );
        }
    }
    if spec.bad == Some(Bad::StatusLine) {
        cx.cover("origin.malformed_answer");
        out.extend_from_slice(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n");
        c.closing = true;
        return;
    }
    let bodiless = spec.bodiless(&cur.method);
    let body = body_of(spec.seed, spec.len);
    let mut head = format!(
        "HTTP/1.1 {} Scripted\r\nX-Host: {}\r\n",
        spec.status, cur.host
    );
    if let Some(d) = digest {
        head.push_str(&format!("X-Req-Digest: {d:016x}\r\n"));
    }
    // The malformed bodies come with the framing that makes them so (a close-delimited body
    // cut short is merely shorter).
    let framing = match spec.bad {
        Some(Bad::ChunkSize) => Framing::Chunked,
        Some(Bad::ShortBody) => Framing::Length,
        _ => spec.framing,
    };
    match framing {
        _ if matches!(spec.status, 204 | 304) => {}
        Framing::Length => head.push_str(&format!("Content-Length: {}\r\n", body.len())),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
        Framing::Close => head.push_str("Connection: close\r\n"),
    }
    if spec.bad == Some(Bad::LengthAndChunked) {
        cx.cover("origin.malformed_answer");
        head.push_str("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    if bodiless {
        if framing == Framing::Close && !matches!(spec.status, 204 | 304) {
            c.closing = true;
        }
        return;
    }
    match (framing, spec.bad) {
        (_, Some(Bad::ShortBody)) => {
            cx.cover("origin.short_body");
            out.extend_from_slice(&body[..body.len() / 2]);
            c.closing = true;
        }
        (_, Some(Bad::ChunkSize)) => {
            cx.cover("origin.broken_chunk");
            out.extend_from_slice(b"1\r\nx\r\nzz\r\n");
            c.closing = true;
        }
        (Framing::Length, _) => out.extend_from_slice(&body),
        (Framing::Chunked, _) => {
            cx.cover("origin.chunked_answer");
            let mut r = fastrand::Rng::with_seed(spec.seed ^ 1);
            let mut rest = &body[..];
            while !rest.is_empty() {
                let n = r.usize(1..=rest.len().min(5_000));
                out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                out.extend_from_slice(&rest[..n]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
        (Framing::Close, _) => {
            cx.cover("origin.close_delimited_answer");
            out.extend_from_slice(&body);
            c.closing = true;
        }
    }
}

impl Node for OriginHost {
    fn accepts(&self) -> bool {
        true
    }
    fn on_accept(&mut self, cx: &mut Cx, s: StreamId) {
        self.conns.insert(
            s,
            Conn {
                parser: Parser::request(Limits::default()),
                current: None,
                closing: false,
                out: Vec::new(),
            },
        );
        self.drive(cx, s);
        cx.set_timer(self.deadlines.first());
    }
    fn on_data(&mut self, cx: &mut Cx, s: StreamId, bytes: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&s) {
            c.parser.feed(&bytes);
            self.drive(cx, s);
        }
        cx.set_timer(self.deadlines.first());
    }
    fn on_eof(&mut self, cx: &mut Cx, s: StreamId) {
        if let Some(c) = self.conns.get_mut(&s) {
            c.parser.feed_eof();
            self.drive(cx, s);
        }
        cx.set_timer(self.deadlines.first());
    }
    fn on_reset(&mut self, cx: &mut Cx, s: StreamId) {
        self.conns.remove(&s);
        self.deadlines.set(s, None);
        cx.set_timer(self.deadlines.first());
    }
    fn on_writable(&mut self, cx: &mut Cx, s: StreamId) {
        self.drive(cx, s);
        cx.set_timer(self.deadlines.first());
    }
    fn on_timer(&mut self, cx: &mut Cx) {
        let now: Instant = cx.now().mono;
        for s in self.deadlines.due(now) {
            if self.conns.remove(&s).is_some() {
                cx.cover("origin.idle_close");
                cx.fin(s);
            }
            self.deadlines.set(s, None);
        }
        cx.set_timer(self.deadlines.first());
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Requests for the origins, put in place of some of a proxy-world client's requests (a stream
/// of their own, so they change nothing else of the workload): answers of every shape to
/// `/o/`, malformed ones to `/bad/` (an origin of its own, so its ejection for them touches
/// nothing else), and absolute-form targets for `alt.example`, which only the target's
/// authority routes to the origins (RFC 9112 §3.2.2: the `Host: sim` they carry would route
/// them to the backends).
pub fn sprinkle(plans: &mut [ConnPlan], mix: &Mix, seed: u64) {
    let mut r = crate::rng::stream(seed, crate::rng::ORIGINS);
    let mut n = 0;
    for req in plans
        .iter_mut()
        .filter(|p| p.stall_after.is_none())
        .flat_map(|p| p.reqs.iter_mut())
    {
        if r.u8(..3) == 0 {
            n += 1;
            *req = request(&mut r, mix, n);
        }
    }
}

/// One request for the origins (see [`sprinkle`]), with what must come back.
pub fn request(r: &mut fastrand::Rng, mix: &Mix, n: usize) -> ClientReq {
    let method = if mix.methods && r.u8(..3) == 0 {
        [
            Method::Post,
            Method::Put,
            Method::Delete,
            Method::Patch,
            Method::Options,
        ][r.usize(..5)]
        .clone()
    } else if r.u8(..4) == 0 {
        Method::Head
    } else {
        Method::Get
    };
    let bad = (r.u8(..8) == 0).then(|| {
        [
            Bad::StatusLine,
            Bad::LengthAndChunked,
            Bad::ChunkSize,
            Bad::ShortBody,
        ][r.usize(..4)]
    });
    let len = [0, 1, 100, 5_000, 70_000][r.usize(..5)];
    let spec = Spec {
        status: [200, 200, 200, 201, 204, 304, 404, 500][r.usize(..8)],
        framing: [Framing::Length, Framing::Chunked, Framing::Close][r.usize(..3)],
        // (A short body needs a body to be short of.)
        len: if bad == Some(Bad::ShortBody) {
            len.max(2)
        } else {
            len
        },
        seed: r.u64(..),
        interim: [0, 0, 0, 1, 2][r.usize(..5)],
        early: r.u8(..4) == 0,
        bad,
    };
    let target = if bad.is_some() {
        format!("/bad/r{n}?{}", spec.query())
    } else if r.u8(..6) == 0 {
        format!("http://alt.example/a{n}")
    } else {
        format!("/o/r{n}?{}", spec.query())
    };
    let mut req = ClientReq::new(method, target, Expect::default());
    if mix.bodies && r.u8(..3) == 0 {
        req.body = Some(crate::workload::body(r));
    }
    if mix.malformed && bad.is_none() && r.u8(..8) == 0 {
        let mut b = req.body.take().unwrap_or_else(|| crate::workload::body(r));
        b.data.push(b'x');
        b.framing = crate::client::Framing::Chunked {
            sizes: vec![r.usize(1..200)],
            ext: r.bool(),
            trailers: false,
        };
        req.body = Some(b);
        req.brk = Some(crate::client::Break::ChunkSize {
            at: r.usize(..3),
            how: r.usize(..crate::client::BAD_CHUNK_SIZES.len()),
        });
    }
    if mix.expect_continue && req.body.is_some() && req.brk.is_none() && r.bool() {
        req.expect_continue = true;
    }
    req.once = !matches!(
        req.method,
        Method::Get | Method::Head | Method::Put | Method::Delete | Method::Options
    ) || req.body.is_some();
    req.expect = expect(&req);
    req
}

/// What a client must get back through the proxy for `req` to an origin.
pub fn expect(req: &ClientReq) -> Expect {
    let (host, path_query) = match req.target.strip_prefix("http://") {
        Some(rest) => match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        },
        None => ("sim", req.target.as_str()),
    };
    let spec = Spec::of_target(path_query);
    let bodiless = spec.bodiless(&req.method);
    let mut e = match spec.bad {
        // Refused whole by the proxy. (A bodiless answer's framing fields say nothing about
        // its length: with both of them it is still a whole answer.)
        Some(Bad::StatusLine) => Expect::status(502),
        Some(Bad::LengthAndChunked) if !bodiless => Expect::status(502),
        // The head went on to the client before the body broke: the client's connection is
        // aborted, never handed a short body as whole (a 502 once the origin is ejected).
        Some(Bad::ChunkSize | Bad::ShortBody) if !bodiless => Expect {
            may_abort: true,
            ..Expect::status(502)
        },
        _ => {
            let body = if bodiless {
                Vec::new()
            } else {
                body_of(spec.seed, spec.len)
            };
            let mut e = Expect::exact(spec.status, body);
            e.fields.push(("x-host", host.to_string()));
            if !spec.early {
                let sent = req.body.as_ref().map_or(&[][..], |b| &b.data[..]);
                e.fields
                    .push(("x-req-digest", format!("{:016x}", fnv(sent))));
            }
            if spec.bad.is_some() {
                // The origin of malformed answers is ejected by them now and then: its
                // well-formed answers may meet the proxy's 502 instead.
                e.or_status = Some(502);
            }
            e
        }
    };
    if req.brk.is_some() {
        // Exactly one answer: the proxy's own 400 if no answer reached the client yet (the
        // origin waits for the whole body unless it answers early), else the close, or the
        // abort of an answer under way.
        e.closes = true;
        e.may_abort = true;
        e.fields.clear();
        if e.status != 400 {
            e.or_status = Some(400);
        }
    }
    e
}
