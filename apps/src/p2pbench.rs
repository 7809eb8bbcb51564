//! Peer-to-peer benchmark clients (run by `bench/p2p.sh` through `httptool`), on the peer
//! nodes' own APIs, with blocking sockets and threads as in [`crate::chatbench`].
//!
//! * [`direct`]: `clients` connections to peer A send direct messages to one peer as fast as
//!   A answers (each answer: the message is durable at A); then the time until A's outbox is
//!   empty (every message acknowledged by the recipient, which acknowledges only what it
//!   durably took). Prints sent/s, delivered/s and the send latency.
//! * [`broadcast`]: event streams on every recipient, then per round one broadcast from A and
//!   the time until each recipient's page would show it. Round 0 also opens the links (it is
//!   reported apart); the rest give p50/p99 of the time to reach all, and per recipient.

use crate::chatbench::{authorization, pick, post, subscribe, timed_requests, Conn};
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A peer node's API and its account.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
}

impl Peer {
    /// `ADDR USER PASSWORD`.
    pub fn parse(line: &str) -> Result<Peer, String> {
        let mut w = line.split_whitespace();
        let (Some(a), Some(u), Some(p)) = (w.next(), w.next(), w.next()) else {
            return Err(format!("{line:?}: want ADDR USER PASSWORD"));
        };
        Ok(Peer {
            addr: a.parse().map_err(|e| format!("{a}: {e}"))?,
            user: u.into(),
            password: p.into(),
        })
    }
    fn auth(&self) -> String {
        authorization(&self.user, &self.password)
    }
}

fn get(addr: SocketAddr, auth: &str, target: &str) -> Result<serde_json::Value, String> {
    let mut c = Conn::open(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let req = format!("GET {target} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\n\r\n");
    let (status, body) = c.call(req.as_bytes()).map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("GET {target}: {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// How many messages `from` still holds for `to` (by name).
fn waiting(from: &Peer, to: &str) -> Result<u64, String> {
    let peers = get(from.addr, &from.auth(), "/peers")?;
    Ok(peers["peers"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == to))
        .and_then(|p| p["waiting"].as_u64())
        .unwrap_or(0))
}

/// Direct messages from `from` to the peer named `to` (module docs).
pub fn direct(from: &Peer, to: &str, clients: usize, seconds: f64) -> Result<(), String> {
    let auth = from.auth();
    let mut c = Conn::open(from.addr).map_err(|e| e.to_string())?;
    let (status, body) = c
        .call(&post(
            "/connect-peer",
            &auth,
            &format!(r#"{{"peer":"{to}"}}"#),
        ))
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "connect-peer {to}: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(seconds);
    let to_peer = to.to_string();
    let request = move |i: usize, n: u64| {
        let body = format!(r#"{{"peer":"{to_peer}","message":"client {i} message {n}"}}"#);
        post("/send-peer", &auth, &body)
    };
    let lat = timed_requests(from.addr, clients, (start, end), request, 201)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while waiting(from, to)? > 0 {
        if Instant::now() > deadline {
            return Err("the messages were not all delivered within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered_in = start.elapsed().as_secs_f64();
    println!(
        "clients {clients} sent {} sent_per_second {:.0} delivered_per_second {:.0} send_ms p50 {:.2} p99 {:.2}",
        lat.len(),
        lat.len() as f64 / seconds,
        lat.len() as f64 / delivered_in,
        pick(&lat, 0.5),
        pick(&lat, 0.99)
    );
    Ok(())
}

/// Broadcasts from `from`, timed to each of `recipients` (module docs).
pub fn broadcast(from: &Peer, recipients: &[Peer], rounds: usize) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    for r in recipients {
        let (tx, ready_tx, r) = (tx.clone(), ready_tx.clone(), r.clone());
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut s = match subscribe(r.addr, &r.auth()) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{}: {e}", r.user)));
                        return;
                    }
                };
                let mut line = String::new();
                loop {
                    line.clear();
                    match s.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if let Some(i) = line.find("\"text\":\"broadcast ") {
                        let n = line[i + 18..]
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
    for _ in recipients {
        ready_rx.recv().map_err(|_| "a subscriber vanished")??;
    }
    let auth = from.auth();
    let mut c = Conn::open(from.addr).map_err(|e| e.to_string())?;
    let (mut to_all, mut each, mut cold, mut per_broadcast) = (Vec::new(), Vec::new(), 0.0, 0);
    for round in 0..rounds {
        let body = format!(r#"{{"message":"broadcast {round}"}}"#);
        let sent = Instant::now();
        let (status, answer) = c
            .call(&post("/broadcast-peer", &auth, &body))
            .map_err(|e| e.to_string())?;
        if status != 201 {
            return Err(format!(
                "broadcast: {status} {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        per_broadcast = v["fates"].as_object().map_or(0, |f| f.len());
        let mut got = 0;
        let mut last = 0.0;
        while got < recipients.len() {
            let (n, at) = rx
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| format!("round {round}: {got} of {} got it", recipients.len()))?;
            if n == round {
                let ms = at.duration_since(sent).as_secs_f64() * 1e3;
                if round > 0 {
                    each.push(ms);
                }
                last = ms;
                got += 1;
            }
        }
        if round == 0 {
            cold = last;
        } else {
            to_all.push(last);
        }
    }
    to_all.sort_by(f64::total_cmp);
    each.sort_by(f64::total_cmp);
    if to_all.is_empty() {
        return Err("give at least 2 rounds".into());
    }
    println!(
        "peers {} rounds {} messages_per_broadcast {per_broadcast} first_with_dials_ms {cold:.2} to_all_ms p50 {:.2} p99 {:.2} per_recipient_ms p50 {:.2} p99 {:.2}",
        recipients.len() + 1,
        rounds - 1,
        pick(&to_all, 0.5),
        pick(&to_all, 0.99),
        pick(&each, 0.5),
        pick(&each, 0.99)
    );
    Ok(())
}
