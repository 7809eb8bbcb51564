//! The node contract on real sockets: `httptool linenode` runs the demonstration node
//! (`weaprous_core::node::lines`) on `weaprous_net_real::node`, and these tests use each
//! capability over loopback: two listeners, one message fanned out to 1,000 connections,
//! node timers, off-loop work, outgoing connections that retry with backoff, log appends
//! answered after their sync that survive a kill, and a slow reader that is cut off instead of
//! holding the node back.

mod common;

use common::{Server, TempDir, TEST_THREADS};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use weaprous_core::node::lines::LineNode;
use weaprous_core::node::machine::NodeMachine;

struct Node {
    server: Server,
    ports: Vec<u16>,
}

fn linenode(listeners: usize, data_dir: Option<&std::path::Path>) -> Node {
    let mut args = vec!["linenode", "--threads", TEST_THREADS];
    for _ in 0..listeners {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    let dir;
    if let Some(d) = data_dir {
        dir = d.to_str().unwrap().to_string();
        args.extend(["--data-dir", dir.as_str()]);
    }
    let server = Server::start(env!("CARGO_BIN_EXE_httptool"), &args);
    let mut ports = vec![server.port];
    for _ in 1..listeners {
        let line = server.wait_line("listening on");
        ports.push(line.rsplit(':').next().unwrap().parse().unwrap());
    }
    Node { server, ports }
}

/// One line-protocol connection.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn to(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        Client::over(stream)
    }
    fn over(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }
    fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }
    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.reader.read_line(&mut l).expect("a line");
        assert!(n > 0, "the connection closed");
        l.trim_end().to_string()
    }
}

#[test]
fn two_listeners_each_greet_with_their_id() {
    let node = linenode(2, None);
    assert_ne!(node.ports[0], node.ports[1]);
    assert_eq!(Client::to(node.ports[0]).line(), "HELLO 0");
    assert_eq!(Client::to(node.ports[1]).line(), "HELLO 1");
}

#[test]
fn one_message_reaches_a_thousand_connections() {
    let node = linenode(2, None);
    // Half on each listener, so both workers and the mailboxes between them carry it.
    let mut subs: Vec<Client> = (0..1000).map(|i| Client::to(node.ports[i % 2])).collect();
    for s in &mut subs {
        assert!(s.line().starts_with("HELLO"));
        s.send("SUB");
    }
    for s in &mut subs {
        assert_eq!(s.line(), "SUBSCRIBED");
    }
    let mut publisher = Client::to(node.ports[0]);
    publisher.line();
    publisher.send("PUB news");
    assert_eq!(publisher.line(), "PUBLISHED 1000");
    for (i, s) in subs.iter_mut().enumerate() {
        assert_eq!(s.line(), "MSG news", "subscriber {i}");
    }
}

#[test]
fn messages_of_one_connection_keep_their_order() {
    let node = linenode(2, None);
    let mut sub = Client::to(node.ports[1]);
    sub.line();
    sub.send("SUB");
    assert_eq!(sub.line(), "SUBSCRIBED");
    let mut publisher = Client::to(node.ports[0]);
    publisher.line();
    let burst: String = (0..500).map(|i| format!("PUB {i}\n")).collect();
    publisher.stream.write_all(burst.as_bytes()).unwrap();
    for i in 0..500 {
        assert_eq!(sub.line(), format!("MSG {i}"));
    }
}

#[test]
fn a_node_timer_fires_after_its_delay() {
    let node = linenode(1, None);
    let mut c = Client::to(node.ports[0]);
    c.line();
    let start = Instant::now();
    c.send("AFTER 300");
    assert_eq!(c.line(), "TICK");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn off_loop_work_answers_with_the_jobs_result() {
    let node = linenode(1, None);
    let mut c = Client::to(node.ports[0]);
    c.line();
    c.send("HASH secret");
    c.send("TOKEN");
    let mut got = [c.line(), c.line()];
    got.sort();
    let want = format!("HASHED {:016x}", LineNode::run_job("secret".into()));
    assert_eq!(got[0], want);
    let token = got[1].strip_prefix("TOKEN ").expect("a token");
    assert_eq!(token.len(), 32);
}

#[test]
fn a_refused_connect_retries_with_backoff_until_the_peer_listens() {
    let node = linenode(1, None);
    // A port nothing listens on, until this test listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Client::to(node.ports[0]);
    c.line();
    c.send(&format!("DIAL 127.0.0.1:{port}"));
    assert_eq!(c.line(), "RETRY 1");
    let target = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let last = loop {
        let l = c.line();
        if !l.starts_with("RETRY") {
            break l;
        }
    };
    let attempts: u32 = last
        .strip_prefix("DIALED ")
        .unwrap_or_else(|| panic!("{last}"))
        .parse()
        .unwrap();
    assert!(attempts >= 2);
    let (accepted, _) = target.accept().unwrap();
    assert_eq!(Client::over(accepted).line(), "HELLO dial");
}

#[test]
fn appends_are_answered_after_their_sync_and_survive_a_kill() {
    let dir = TempDir::new("linenode-log");
    let data = dir.path().join("data");
    let node = linenode(1, Some(&data));
    let mut clients: Vec<Client> = (0..3).map(|_| Client::to(node.ports[0])).collect();
    let mut acked = [0usize; 3];
    for c in &mut clients {
        c.line();
    }
    // Lockstep: each connection appends its next record once the last one was answered.
    for i in 0..100 {
        for (k, c) in clients.iter_mut().enumerate() {
            c.send(&format!("LOG c{k}r{i}"));
        }
        for (k, c) in clients.iter_mut().enumerate() {
            assert!(c.line().starts_with("LOGGED"));
            acked[k] += 1;
        }
    }
    for (k, c) in clients.iter_mut().enumerate() {
        c.send(&format!("LOG c{k}unanswered"));
    }
    node.server.signal("-KILL");
    let log = std::fs::read_to_string(data.join(weaprous_core::node::lines::LOG)).unwrap();
    for (k, &acked) in acked.iter().enumerate() {
        let mine: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with(&format!("c{k}r")))
            .collect();
        let want: Vec<String> = (0..acked).map(|i| format!("c{k}r{i}")).collect();
        assert_eq!(
            mine, want,
            "every answered record of connection {k}, in order"
        );
    }
    // A node started on the same directory appends after what is there.
    let node = linenode(1, Some(&data));
    let mut c = Client::to(node.ports[0]);
    c.line();
    c.send("LOG after");
    let n: usize = c.line().strip_prefix("LOGGED ").unwrap().parse().unwrap();
    assert!(n > 300, "records recovered before this one: {n}");
}

#[test]
fn a_subscriber_that_does_not_read_is_cut_off_and_the_others_get_everything() {
    let node = linenode(2, None);
    let mut slow = Client::to(node.ports[0]);
    let mut fast = Client::to(node.ports[1]);
    for c in [&mut slow, &mut fast] {
        c.line();
        c.send("SUB");
        assert_eq!(c.line(), "SUBSCRIBED");
    }
    let mut publisher = Client::to(node.ports[0]);
    publisher.line();
    let text = "x".repeat(1000);
    // More than the kernel's buffers (several MiB each way) and the driver's 4 MiB hold.
    let total = 30_000;
    // The publisher's answers are read on another thread, so that it never stalls itself.
    let mut answers = Client::over(publisher.stream.try_clone().unwrap());
    let reader = std::thread::spawn(move || {
        (0..total)
            .map(|_| answers.line())
            .filter(|l| l.starts_with("PUBLISHED"))
            .count()
    });
    // The reading subscriber tells the publisher how far it got, and the publisher stays at
    // most 1,000 messages (1 MB) ahead of it: a reader that keeps up is never cut off,
    // however the threads are scheduled.
    let (read_tx, read_rx) = std::sync::mpsc::channel::<usize>();
    let fast_reader = std::thread::spawn(move || {
        for i in 0..total {
            let l = fast.line();
            assert!(l.starts_with("MSG "), "message {i}: {l}");
            if i % 100 == 99 {
                let _ = read_tx.send(i + 1);
            }
        }
    });
    let mut fast_got = 0;
    for i in 0..total {
        while i >= fast_got + 1_000 {
            fast_got = read_rx.recv().expect("the reading subscriber goes on");
        }
        publisher.send(&format!("PUB {text}"));
    }
    assert_eq!(reader.join().unwrap(), total);
    fast_reader.join().unwrap();
    // The slow subscriber got a prefix, then the connection ended.
    let mut got = Vec::new();
    let _ = slow.reader.read_to_end(&mut got);
    let msgs = got
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"MSG"))
        .count();
    assert!(
        msgs < total,
        "a reader that never read was served everything"
    );
}
