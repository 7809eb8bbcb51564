//! `httptool`: the core parser as a command, for checking any corpus against it.
//!
//! `httptool parse [--response] [--eof] < bytes` prints one JSON line:
//! `{"outcome": "accept"|"reject"|"incomplete"|"upgrade", "messages": [...], "error": {"kind", "offset"} | null}`.
//!
//! `httptool linenode --listen ADDR [--listen ADDR ...] [--data-dir DIR] [--threads N]` runs
//! the node contract's demonstration node (`weaprous_core::node::lines`) on real sockets, for
//! the driver's tests: it prints `linenode listening on ADDR` for each listener.
//!
//! `httptool cookies < lines` runs the user agent's cookie jar (`weaprous_core::web::jar`) for
//! conformance checks: each input line is a JSON object `{"now": RFC3339, "set_url": URL,
//! "set_cookie": [values], "request_url": URL}`; for each, a fresh jar takes every value as
//! received from `set_url` at `now`, and one line `{"cookie": "a=b; c=d"}` is printed: what it
//! sends to `request_url` at `now` (`""` when nothing). A line that cannot be read prints
//! `{"error": "..."}` and the tool goes on; the exit status is 1 if any line was unreadable.
//!
//! `httptool chat-load`, `httptool chat-fanout` and `httptool hold` are the chat server's and
//! the idle-connection benchmarks' clients (`weaprous_apps::chatbench`, run by bench/chat.sh).
//!
//! `httptool p2p-direct` and `httptool p2p-broadcast` are the peer-to-peer benchmarks' clients
//! (`weaprous_apps::p2pbench`, run by bench/p2p.sh).
//!
//! `httptool fanout --addr ADDR [--conns 1000] [--rounds 50]` measures a line node's fan-out
//! (bench/fanout.sh): `--conns` subscribers, then per round one `PUB` and the time until every
//! subscriber has its `MSG` (read in order, so the figure includes the client's own reads).

use clap::{Parser as ClapParser, Subcommand};
use serde_json::{json, Value};
use std::io::Read;
use weaprous_apps::chatbench;
use weaprous_apps::p2pbench::{self, Peer};
use weaprous_core::http::parse::{ErrorKind, Event, Kind, Parser};
use weaprous_core::http::{Headers, Limits};
use weaprous_core::web::base64;

#[derive(ClapParser, Debug)]
#[command(version, about = "HTTP conformance tools")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Parse raw bytes from stdin (one or more pipelined messages) and print the result as JSON.
    Parse {
        /// Parse responses instead of requests (each read as the answer to a GET).
        #[arg(long)]
        response: bool,
        /// The input ends because the peer closed (completes a close-delimited response).
        #[arg(long)]
        eof: bool,
    },
    /// Run the user agent's cookie jar over JSON lines from stdin (see the module docs).
    Cookies,
    /// Measure a line node's fan-out: the time from one PUB to its MSG on every subscriber.
    Fanout {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// Durable chat posts from many connections: messages/s and latency (bench/chat.sh).
    ChatLoad {
        #[command(flatten)]
        to: ChatTarget,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// The time from one chat post to its event on every subscriber (bench/chat.sh).
    ChatFanout {
        #[command(flatten)]
        to: ChatTarget,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
    /// Write a chat server log of many messages (for the restart-time benchmark).
    ChatLog {
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 10)]
        channels: u64,
        /// Records a snapshot would drop, after the messages.
        #[arg(long, default_value_t = 0)]
        superseded: u64,
    },
    /// Hold connections open and idle after one request each, until stdin closes.
    Hold {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value = "/")]
        path: String,
        /// `user:password` for HTTP Basic.
        #[arg(long)]
        basic: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
    },
    /// Direct messages between two peer nodes: sent/s and delivered/s (bench/p2p.sh).
    P2pDirect {
        /// The sending peer: `ADDR USER PASSWORD`.
        #[arg(long)]
        from: String,
        /// The recipient's name.
        #[arg(long)]
        to: String,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// One broadcast timed to every recipient (bench/p2p.sh); recipients as `ADDR USER
    /// PASSWORD` lines on standard input.
    P2pBroadcast {
        /// The broadcasting peer: `ADDR USER PASSWORD`.
        #[arg(long)]
        from: String,
        #[arg(long, default_value_t = 21)]
        rounds: usize,
    },
    /// Run the line-protocol test node (every capability of the node contract) on real sockets.
    Linenode {
        /// An address to listen on (repeat for more listeners; port 0 picks a free one).
        #[arg(long, required = true)]
        listen: Vec<std::net::SocketAddr>,
        /// Where its log lives (none: log operations fail).
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
    },
}

/// A chat server and the account the benchmark clients use (HTTP Basic).
#[derive(clap::Args, Debug)]
struct ChatTarget {
    #[arg(long)]
    addr: std::net::SocketAddr,
    #[arg(long, default_value = "admin")]
    user: String,
    #[arg(long, default_value = "password")]
    password: String,
}

fn headers_json(h: &Headers) -> Value {
    Value::Array(
        h.iter()
            .map(|(n, v)| json!([String::from_utf8_lossy(n), String::from_utf8_lossy(v)]))
            .collect(),
    )
}

fn main() {
    let (response, eof) = match Args::parse().cmd {
        Cmd::Parse { response, eof } => (response, eof),
        Cmd::Linenode {
            listen,
            data_dir,
            threads,
        } => linenode(listen, data_dir, threads),
        Cmd::Fanout {
            addr,
            conns,
            rounds,
        } => fanout(addr, conns, rounds),
        Cmd::Cookies => cookies(),
        Cmd::ChatLoad {
            to,
            clients,
            seconds,
        } => weaprous_apps::exit_with(
            "chat-load",
            chatbench::load(to.addr, &to.user, &to.password, clients, seconds),
        ),
        Cmd::ChatFanout {
            to,
            subscribers,
            rounds,
        } => weaprous_apps::exit_with(
            "chat-fanout",
            chatbench::fanout(to.addr, &to.user, &to.password, subscribers, rounds),
        ),
        Cmd::ChatLog {
            out,
            messages,
            channels,
            superseded,
        } => weaprous_apps::exit_with(
            "chat-log",
            chatbench::write_log(&out, messages, channels, superseded),
        ),
        Cmd::P2pDirect {
            from,
            to,
            clients,
            seconds,
        } => weaprous_apps::exit_with(
            "p2p-direct",
            Peer::parse(&from).and_then(|p| p2pbench::direct(&p, &to, clients, seconds)),
        ),
        Cmd::P2pBroadcast { from, rounds } => {
            let recipients: Result<Vec<Peer>, String> = std::io::stdin()
                .lines()
                .map_while(Result::ok)
                .filter(|l| !l.trim().is_empty())
                .map(|l| Peer::parse(&l))
                .collect();
            weaprous_apps::exit_with(
                "p2p-broadcast",
                Peer::parse(&from).and_then(|p| p2pbench::broadcast(&p, &recipients?, rounds)),
            )
        }
        Cmd::Hold {
            addr,
            path,
            basic,
            conns,
        } => {
            let creds = basic.as_deref().and_then(|b| b.split_once(':'));
            weaprous_apps::exit_with("hold", chatbench::hold(addr, &path, creds, conns))
        }
    };
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("httptool: reading stdin: {e}");
        std::process::exit(2);
    }
    println!("{}", parse(&input, response, eof));
}

fn cookies() -> ! {
    use std::io::BufRead;
    let mut bad = false;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else {
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        let out = match cookie_case(&line) {
            Ok(cookie) => json!({ "cookie": cookie }),
            Err(e) => {
                bad = true;
                json!({ "error": e })
            }
        };
        println!("{out}");
    }
    std::process::exit(i32::from(bad))
}

/// One line of `httptool cookies`: what a fresh jar sends after the line's `Set-Cookie`s.
fn cookie_case(line: &str) -> Result<String, String> {
    use weaprous_core::http::date::parse_rfc3339;
    use weaprous_core::web::jar::Jar;
    use weaprous_core::web::url::Url;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let field = |name: &str| {
        v[name]
            .as_str()
            .ok_or_else(|| format!("{name}: a string is needed"))
    };
    let now = parse_rfc3339(field("now")?).ok_or("now: not an RFC 3339 time")?;
    let set_url = Url::parse(field("set_url")?).ok_or("set_url: not an http(s) URL")?;
    let request_url = Url::parse(field("request_url")?).ok_or("request_url: not an http(s) URL")?;
    let values = v["set_cookie"]
        .as_array()
        .ok_or("set_cookie: a list of strings is needed")?;
    let mut jar = Jar::new();
    for value in values {
        jar.set(
            now,
            &set_url,
            value.as_str().ok_or("set_cookie: strings only")?,
        );
    }
    Ok(jar.header(now, &request_url))
}

fn linenode(
    listen: Vec<std::net::SocketAddr>,
    data_dir: Option<std::path::PathBuf>,
    threads: Option<usize>,
) -> ! {
    use weaprous_core::node::lines::LineNode;
    use weaprous_net_real::server::ServeOptions;
    let mut opts = ServeOptions::new("linenode", listen[0]);
    if let Some(t) = threads {
        opts.threads = t;
    }
    let seed = std::process::id() as u64;
    let result = weaprous_net_real::node::serve_node(opts, data_dir, move |_| {
        LineNode::new(listen.clone(), seed)
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("linenode: {e}");
            std::process::exit(1);
        }
    }
}

fn fanout(addr: std::net::SocketAddr, conns: usize, rounds: usize) -> ! {
    use std::io::{BufRead, BufReader, Write};
    // Connect every socket before reading any greeting: listeners defer accepting until a
    // client's first bytes (or about a second), so greetings are awaited all at once.
    let open =
        |n: usize| -> std::io::Result<Vec<(std::net::TcpStream, BufReader<std::net::TcpStream>)>> {
            let mut socks = Vec::with_capacity(n);
            for _ in 0..n {
                let s = std::net::TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                let r = BufReader::new(s.try_clone()?);
                socks.push((s, r));
            }
            for (_, r) in socks.iter_mut() {
                let mut hello = String::new();
                r.read_line(&mut hello)?;
            }
            Ok(socks)
        };
    let run = || -> std::io::Result<Vec<f64>> {
        let mut subs = Vec::with_capacity(conns);
        for (mut s, r) in open(conns)? {
            s.write_all(b"SUB\n")?;
            subs.push(r);
        }
        for r in subs.iter_mut() {
            let mut l = String::new();
            r.read_line(&mut l)?;
        }
        let (mut publisher, mut answers) = open(1)?.pop().expect("one connection");
        let mut times = Vec::with_capacity(rounds);
        let mut line = String::new();
        for round in 0..rounds {
            let start = std::time::Instant::now();
            publisher.write_all(format!("PUB {round}\n").as_bytes())?;
            for r in subs.iter_mut() {
                line.clear();
                r.read_line(&mut line)?;
            }
            times.push(start.elapsed().as_secs_f64() * 1e3);
            line.clear();
            answers.read_line(&mut line)?;
        }
        Ok(times)
    };
    match run() {
        Ok(mut t) => {
            t.sort_by(f64::total_cmp);
            let pick = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
            println!(
                "fan-out to {conns} connections: median {:.3} ms, p90 {:.3} ms, min {:.3} ms ({rounds} rounds)",
                pick(0.5),
                pick(0.9),
                t[0]
            );
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("fanout: {e}");
            std::process::exit(1)
        }
    }
}

fn parse(input: &[u8], response: bool, eof: bool) -> Value {
    let mut p = Parser::new(
        if response {
            Kind::Response
        } else {
            Kind::Request
        },
        Limits::default(),
    );
    p.feed(input);
    if eof {
        p.feed_eof();
    }
    let mut messages: Vec<Value> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let (outcome, error) = loop {
        match p.next_event() {
            Ok(Event::Request(h)) => {
                body.clear();
                messages.push(json!({
                    "method": h.method.as_str(), "target": h.target.as_str(), "version": h.version.to_string(),
                    "status": null, "reason": null, "headers": headers_json(&h.headers),
                    "body_base64": "", "trailers": [], "complete": false,
                }));
            }
            Ok(Event::Response(h)) => {
                body.clear();
                messages.push(json!({
                    "method": null, "target": null, "version": h.version.to_string(),
                    "status": h.status.0, "reason": h.reason, "headers": headers_json(&h.headers),
                    "body_base64": "", "trailers": [], "complete": h.status.is_informational(),
                }));
            }
            Ok(Event::Data(d)) => {
                body.extend_from_slice(&d);
                if let Some(m) = messages.last_mut() {
                    m["body_base64"] = json!(base64::encode(&body));
                }
            }
            Ok(Event::End { trailers }) => {
                if let Some(m) = messages.last_mut() {
                    m["complete"] = json!(true);
                    m["trailers"] = headers_json(&trailers);
                }
            }
            Ok(Event::NeedData) => {
                let partial = p.buffered() > 0
                    || messages
                        .last()
                        .is_some_and(|m| m["complete"] == json!(false));
                break (if partial { "incomplete" } else { "accept" }, Value::Null);
            }
            Ok(Event::Closed) => break ("accept", Value::Null),
            Ok(Event::Paused | Event::Upgrade) => {
                // A 101 head is complete: what follows is not HTTP.
                if let Some(m) = messages.last_mut() {
                    m["complete"] = json!(true);
                }
                break ("upgrade", Value::Null);
            }
            Err(e) if e.kind == ErrorKind::Truncated => {
                break (
                    "incomplete",
                    json!({"kind": e.kind.name(), "offset": e.offset}),
                )
            }
            Err(e) => break ("reject", json!({"kind": e.kind.name(), "offset": e.offset})),
        }
    };
    json!({"outcome": outcome, "messages": messages, "error": error})
}
