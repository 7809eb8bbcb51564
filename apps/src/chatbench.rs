//! The chat server's benchmark clients (run by `bench/chat.sh` through `httptool`): plain
//! blocking sockets and threads, so that what they measure is the server, and the client's
//! own share is easy to see (it is on the same two cores).
//!
//! * [`load`]: `clients` connections post messages as fast as their answers come, each a
//!   durable write (the server answers only after its sync); prints messages/s and the
//!   answer latency.
//! * [`fanout`]: `subscribers` event streams, then per round one post and, for each
//!   subscriber, the time until its copy of the event arrived (one thread per subscriber, so a
//!   slow reader does not delay the others' figures); prints p50/p99/max.
//! * [`hold`]: `conns` connections that each make one request and then stay open, idle, until
//!   standard input closes (the script measures the server's memory meanwhile).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Limits, Method};
use weaprous_core::web::base64;

/// Who the benchmark clients are: HTTP Basic credentials (the server caches a verified value,
/// so only the first request of a run costs a password hash).
pub(crate) fn authorization(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::encode(format!("{user}:{password}").as_bytes())
    )
}

/// One blocking HTTP/1.1 connection; answers are read with the core parser.
pub(crate) struct Conn {
    out: TcpStream,
    parser: Parser,
}

impl Conn {
    pub(crate) fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Conn {
            out: s,
            parser: Parser::response(Limits::default()),
        })
    }

    /// Sends one request and reads its answer: (status, body).
    pub(crate) fn call(&mut self, req: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        self.out.write_all(req)?;
        let method = if req.starts_with(b"GET ") {
            Method::Get
        } else {
            Method::Post
        };
        self.parser.expect_response_to(method);
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let (mut status, mut body) = (0, Vec::new());
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self
                .parser
                .next_event()
                .map_err(|e| bad(format!("{e:?}")))?
            {
                Event::Response(head) => status = head.status.0,
                Event::Data(d) => body.extend_from_slice(&d),
                Event::End { .. } => return Ok((status, body)),
                Event::NeedData => {
                    let n = self.out.read(&mut buf)?;
                    if n == 0 {
                        return Err(bad("the server closed mid-answer".into()));
                    }
                    self.parser.feed(&buf[..n]);
                }
                other => return Err(bad(format!("unexpected {other:?}"))),
            }
        }
    }
}

pub(crate) fn post(target: &str, auth: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {target} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The quantile `q` of sorted `v`.
pub(crate) fn pick(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Makes `channel` (an existing one is fine).
fn ensure_channel(addr: SocketAddr, auth: &str, channel: &str) -> Result<(), String> {
    let mut c = Conn::open(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let (status, body) = c
        .call(&post(
            "/channels",
            auth,
            &format!(r#"{{"name":"{channel}"}}"#),
        ))
        .map_err(|e| e.to_string())?;
    match status {
        201 | 409 => Ok(()),
        _ => Err(format!(
            "creating {channel}: {status} {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

/// `clients` connections to `addr`, each sending `request(client, n)` as fast as the answers
/// come, from `start` until `end`, after one warm-up request each (the first verifies the
/// password); every answer must be `want`. The answer latencies, in ms, sorted.
pub(crate) fn timed_requests<F>(
    addr: SocketAddr,
    clients: usize,
    (start, end): (Instant, Instant),
    request: F,
    want: u16,
) -> Result<Vec<f64>, String>
where
    F: Fn(usize, u64) -> Vec<u8> + Send + Sync + 'static,
{
    let request = std::sync::Arc::new(request);
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let request = request.clone();
            std::thread::spawn(move || -> Result<Vec<f64>, String> {
                let mut c = Conn::open(addr).map_err(|e| e.to_string())?;
                let check = |(status, body): (u16, Vec<u8>)| {
                    if status == want {
                        Ok(())
                    } else {
                        Err(format!("{status} {}", String::from_utf8_lossy(&body)))
                    }
                };
                check(c.call(&request(i, u64::MAX)).map_err(|e| e.to_string())?)?;
                while Instant::now() < start {
                    std::thread::yield_now();
                }
                let mut lat = Vec::new();
                let mut n = 0u64;
                while Instant::now() < end {
                    let t = Instant::now();
                    check(c.call(&request(i, n)).map_err(|e| e.to_string())?)?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    n += 1;
                }
                Ok(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.join().map_err(|_| "a client panicked")??);
    }
    lat.sort_by(f64::total_cmp);
    if lat.is_empty() {
        return Err("no request was answered".into());
    }
    Ok(lat)
}

/// Durable posts from `clients` connections for `seconds` (module docs).
pub fn load(
    addr: SocketAddr,
    user: &str,
    password: &str,
    clients: usize,
    seconds: f64,
) -> Result<(), String> {
    let auth = authorization(user, password);
    ensure_channel(addr, &auth, "bench")?;
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(seconds);
    let request = move |i: usize, n: u64| {
        let text = format!(r#"{{"text":"client {i} message {n}"}}"#);
        post("/channel/bench/message", &auth, &text)
    };
    let lat = timed_requests(addr, clients, (start, end), request, 201)?;
    println!(
        "clients {clients} messages {} per_second {:.0} latency_ms p50 {:.2} p99 {:.2}",
        lat.len(),
        lat.len() as f64 / seconds,
        pick(&lat, 0.5),
        pick(&lat, 0.99)
    );
    Ok(())
}

/// Opens an event stream and reads its head and first events.
pub(crate) fn subscribe(addr: SocketAddr, auth: &str) -> std::io::Result<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.write_all(
        format!("GET /events HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if !line.contains(" 200 ") {
        return Err(std::io::Error::other(format!(
            "the stream answered {line:?}"
        )));
    }
    Ok(r)
}

/// One post to `subscribers` streams, `rounds` times (module docs).
pub fn fanout(
    addr: SocketAddr,
    user: &str,
    password: &str,
    subscribers: usize,
    rounds: usize,
) -> Result<(), String> {
    let auth = authorization(user, password);
    ensure_channel(addr, &auth, "fanout")?;
    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    for _ in 0..subscribers {
        let (tx, ready_tx, auth) = (tx.clone(), ready_tx.clone(), auth.clone());
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut r = match subscribe(addr, &auth) {
                    Ok(r) => {
                        let _ = ready_tx.send(Ok(()));
                        r
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    // `data: {"channel":"fanout",...,"text":"round N"}`
                    if let Some(i) = line.find("\"text\":\"round ") {
                        let rest = &line[i + 14..];
                        let n: usize = rest
                            .split('"')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(usize::MAX);
                        if tx.send((n, Instant::now())).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| format!("a subscriber thread: {e}"))?;
    }
    drop(tx);
    for _ in 0..subscribers {
        ready_rx
            .recv()
            .map_err(|_| "a subscriber vanished")?
            .map_err(|e| format!("a subscriber: {e}"))?;
    }
    let mut poster = Conn::open(addr).map_err(|e| e.to_string())?;
    let mut lat = Vec::with_capacity(subscribers * rounds);
    for round in 0..rounds {
        let body = format!(r#"{{"text":"round {round}"}}"#);
        let req = post("/channel/fanout/message", &auth, &body);
        let sent = Instant::now();
        let (status, _) = poster.call(&req).map_err(|e| e.to_string())?;
        if status != 201 {
            return Err(format!("the post answered {status}"));
        }
        let mut got = 0;
        while got < subscribers {
            let (n, at) = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| format!("round {round}: {got} of {subscribers} got the event"))?;
            if n == round {
                lat.push(at.duration_since(sent).as_secs_f64() * 1e3);
                got += 1;
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "subscribers {subscribers} rounds {rounds} post_to_event_ms p50 {:.2} p99 {:.2} max {:.2}",
        pick(&lat, 0.5),
        pick(&lat, 0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}

/// `conns` connections, each one request (`path`, with the credentials if any), then held
/// open and idle until standard input closes (module docs).
pub fn hold(
    addr: SocketAddr,
    path: &str,
    credentials: Option<(&str, &str)>,
    conns: usize,
) -> Result<(), String> {
    let auth = credentials
        .map(|(u, p)| format!("Authorization: {}\r\n", authorization(u, p)))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n");
    let mut held = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("connection {i}: {e}"))?;
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        // The answer's first bytes: a whole small file, or an event stream's head.
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if !buf[..n].starts_with(b"HTTP/1.1 200") {
            return Err(format!(
                "connection {i} answered {:?}",
                String::from_utf8_lossy(&buf[..n.min(80)])
            ));
        }
        held.push(s);
    }
    println!("holding {conns}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(held);
    Ok(())
}

/// Writes a chat log of `messages` messages over `channels` channels (`general` and
/// `c1`...) to `path`, in the chat server's format, as a server that took them would have
/// (for the restart-time benchmark), then `superseded` records a snapshot would drop (one
/// session seen again and again), which make the server take one as soon as it starts. No
/// account: the server makes `admin` when it starts.
pub fn write_log(
    path: &std::path::Path,
    messages: u64,
    channels: u64,
    superseded: u64,
) -> Result<(), String> {
    use weaprous_core::chat::channels::{Message, Record};
    use weaprous_core::chat::node::AppRecord;
    use weaprous_core::node::record;
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut frame = Vec::new();
    let mut put = |rec: &AppRecord, out: &mut std::io::BufWriter<std::fs::File>| {
        frame.clear();
        let payload = serde_json::to_vec(rec).map_err(|e| e.to_string())?;
        record::encode(&payload, &mut frame);
        out.write_all(&frame).map_err(|e| e.to_string())
    };
    let names: Vec<String> = (0..channels.max(1))
        .map(|i| {
            if i == 0 {
                "general".into()
            } else {
                format!("c{i}")
            }
        })
        .collect();
    let ts = 1_800_000_000_000u64;
    for name in &names {
        let rec = Record::Channel {
            name: name.clone(),
            by: "admin".into(),
            ts_ms: ts,
        };
        put(&AppRecord::Chat(rec), &mut out)?;
    }
    let mut seqs = vec![0u64; names.len()];
    for pos in 1..=messages {
        let c = (pos % names.len() as u64) as usize;
        seqs[c] += 1;
        let m = Message {
            channel: names[c].clone(),
            seq: seqs[c],
            pos,
            author: format!("user{}", pos % 97),
            text: format!(
                "message number {pos}, a line of about the length people write in a chat"
            ),
            ts_ms: ts + pos,
            txn: Some(format!("t{pos}")),
        };
        put(&AppRecord::Chat(Record::Message(m)), &mut out)?;
    }
    if superseded > 0 {
        let token = "bench-session".to_string();
        let created = ts / 1000;
        let user = "bench".to_string();
        put(
            &AppRecord::SessionStarted {
                token: token.clone(),
                user,
                created,
            },
            &mut out,
        )?;
        for i in 1..=superseded {
            put(
                &AppRecord::SessionSeen {
                    token: token.clone(),
                    at: created + i,
                },
                &mut out,
            )?;
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    out.get_ref().sync_all().map_err(|e| e.to_string())
}
