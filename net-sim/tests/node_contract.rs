//! The node contract in the simulator: the line node (`weaprous_core::node::lines`) on a
//! [`MachineHost`], driven by scripted clients, shows each capability: two listeners, one
//! message fanned out to 1,000 connections, node timers, off-loop work, entropy, outgoing
//! connections that retry with backoff, and log appends answered only after their sync, where
//! a crash in between loses only unanswered appends.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use weaprous_core::node::lines::{self, Event, LineNode};
use weaprous_core::node::machine::NodeMachine;
use weaprous_core::time::{Duration, Instant};
use weaprous_net_sim::disk::Disk;
use weaprous_net_sim::engine::{host_addr, Cx, Node, Sim, StreamId};
use weaprous_net_sim::host::{MachineHost, Observer};
use weaprous_net_sim::scenario::{FaultAction, HostId, NetConfig, RandomFaults};
use weaprous_net_sim::trace::Keep;

const NODE: HostId = 0;
const PORT_A: u16 = 7000;
const PORT_B: u16 = 7001;

type Events = Rc<RefCell<Vec<(Instant, Event)>>>;

struct Watch(Events);
impl Observer<LineNode> for Watch {
    fn event(&mut self, cx: &mut Cx, ev: &Event) {
        self.0.borrow_mut().push((cx.now().mono, ev.clone()));
    }
}

/// One scripted connection: opened at `open_at`, it sends `lines` once greeted and keeps
/// every line it receives with the time it arrived.
#[derive(Clone, Default)]
struct Script {
    to: HostId,
    port: u16,
    open_at: Duration,
    lines: Vec<String>,
    /// Send one line, then the next only once an answer arrived (else all at once).
    lockstep: bool,
}

#[derive(Default)]
struct Conn {
    /// Lines not yet sent (lockstep scripts).
    queue: VecDeque<String>,
    buf: Vec<u8>,
    unsent: VecDeque<u8>,
    got: Vec<(Instant, String)>,
}

/// A host that runs scripts; what they received is shared with the test.
struct Client {
    scripts: Vec<Script>,
    opened: usize,
    conns: BTreeMap<StreamId, usize>,
    state: Rc<RefCell<Vec<Conn>>>,
}

impl Client {
    fn new(mut scripts: Vec<Script>, state: Rc<RefCell<Vec<Conn>>>) -> Self {
        scripts.sort_by_key(|s| s.open_at);
        state
            .borrow_mut()
            .extend((0..scripts.len()).map(|_| Conn::default()));
        Client {
            scripts,
            opened: 0,
            conns: BTreeMap::new(),
            state,
        }
    }
    fn flush(&mut self, cx: &mut Cx, s: StreamId) {
        let i = self.conns[&s];
        let mut st = self.state.borrow_mut();
        let c = &mut st[i];
        let n = cx.room(s).min(c.unsent.len());
        if n > 0 {
            let bytes: Vec<u8> = c.unsent.drain(..n).collect();
            cx.write(s, &bytes);
        }
        if !c.unsent.is_empty() {
            cx.want_writable(s);
        }
    }
    fn arm(&self, cx: &mut Cx) {
        let next = self
            .scripts
            .get(self.opened)
            .map(|s| Instant::ZERO + s.open_at);
        cx.set_timer(next);
    }
}

impl Node for Client {
    fn start(&mut self, cx: &mut Cx) {
        self.arm(cx);
    }
    fn on_timer(&mut self, cx: &mut Cx) {
        while let Some(sc) = self.scripts.get(self.opened) {
            if Instant::ZERO + sc.open_at > cx.now().mono {
                break;
            }
            let s = cx.connect_port(sc.to, sc.port);
            self.conns.insert(s, self.opened);
            self.opened += 1;
        }
        self.arm(cx);
    }
    fn on_data(&mut self, cx: &mut Cx, s: StreamId, bytes: Vec<u8>) {
        let Some(&i) = self.conns.get(&s) else {
            return;
        };
        let greeted = {
            let mut st = self.state.borrow_mut();
            let c = &mut st[i];
            c.buf.extend_from_slice(&bytes);
            let mut send = false;
            let lockstep = self.scripts[i].lockstep;
            while let Some(end) = c.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = c.buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).to_string();
                if line.starts_with("HELLO") {
                    c.queue = self.scripts[i].lines.iter().cloned().collect();
                }
                c.got.push((cx.now().mono, line));
                let n = if lockstep { 1 } else { c.queue.len() };
                for l in c.queue.drain(..n.min(c.queue.len())) {
                    c.unsent.extend(l.as_bytes());
                    c.unsent.push_back(b'\n');
                    send = true;
                }
            }
            send
        };
        if greeted {
            self.flush(cx, s);
        }
    }
    fn on_writable(&mut self, cx: &mut Cx, s: StreamId) {
        if self.conns.contains_key(&s) {
            self.flush(cx, s);
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A host that refuses every connection until `from`, then accepts them and says nothing.
struct LateListener {
    from: Option<Duration>,
    open: bool,
}
impl Node for LateListener {
    fn start(&mut self, cx: &mut Cx) {
        cx.set_timer(self.from.map(|d| Instant::ZERO + d));
    }
    fn on_timer(&mut self, _cx: &mut Cx) {
        self.open = true;
    }
    fn accepts(&self) -> bool {
        self.open
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct World {
    sim: Sim,
    events: Events,
    got: Rc<RefCell<Vec<Conn>>>,
}

/// Host 0 runs the line node on two ports; host 1 runs `scripts`; host 2 listens from `late`.
fn world(seed: u64, scripts: Vec<Script>, late: Option<Duration>) -> World {
    let events: Events = Rc::default();
    let got: Rc<RefCell<Vec<Conn>>> = Rc::default();
    let (ev, st) = (events.clone(), got.clone());
    let mut scripts = Some(scripts);
    let factory = Box::new(move |host: HostId, _disk: &Disk| -> Box<dyn Node> {
        match host {
            NODE => {
                let addrs = vec![host_addr(NODE, PORT_A), host_addr(NODE, PORT_B)];
                let node = LineNode::new(addrs, seed);
                Box::new(MachineHost::new(node, seed, Box::new(Watch(ev.clone()))))
            }
            1 => Box::new(Client::new(scripts.take().unwrap_or_default(), st.clone())),
            _ => Box::new(LateListener {
                from: late,
                open: false,
            }),
        }
    });
    let disks = (0..3).map(|_| Disk::default()).collect();
    let sim = Sim::new(
        seed,
        NetConfig::default(),
        RandomFaults::default(),
        disks,
        Keep::default(),
        factory,
    );
    World { sim, events, got }
}

fn script(port: u16, open_ms: u64, lines: &[&str]) -> Script {
    Script {
        to: NODE,
        port,
        open_at: Duration::from_millis(open_ms),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        lockstep: false,
    }
}

fn run(w: &mut World, secs: u64) {
    let until = Instant::ZERO + Duration::from_secs(secs);
    w.sim.run_until(until, |_| false).expect("no oracle failed");
}

fn lines_of(w: &World, i: usize) -> Vec<String> {
    w.got.borrow()[i]
        .got
        .iter()
        .map(|(_, l)| l.clone())
        .collect()
}

#[test]
fn each_listener_greets_with_its_own_id() {
    let mut w = world(
        1,
        vec![script(PORT_A, 1, &[]), script(PORT_B, 1, &[])],
        None,
    );
    run(&mut w, 5);
    assert_eq!(lines_of(&w, 0), ["HELLO 0"]);
    assert_eq!(lines_of(&w, 1), ["HELLO 1"]);
    let listening = w
        .events
        .borrow()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Listening(..)))
        .count();
    assert_eq!(listening, 2);
}

#[test]
fn one_message_reaches_a_thousand_subscribers() {
    let mut scripts: Vec<Script> = (0..1000)
        .map(|i| script(if i % 2 == 0 { PORT_A } else { PORT_B }, 1, &["SUB"]))
        .collect();
    // The publisher comes once every subscriber has had time to subscribe.
    scripts.push(script(PORT_A, 5_000, &["PUB hello"]));
    let mut w = world(2, scripts, None);
    run(&mut w, 10);
    for i in 0..1000 {
        assert_eq!(
            lines_of(&w, i)[1..],
            ["SUBSCRIBED", "MSG hello"],
            "subscriber {i}"
        );
    }
    assert_eq!(lines_of(&w, 1000)[1..], ["PUBLISHED 1000"]);
}

#[test]
fn messages_keep_their_order_between_each_connection_and_the_node() {
    let pubs: Vec<String> = (0..50).map(|i| format!("PUB {i}")).collect();
    let pubs: Vec<&str> = pubs.iter().map(String::as_str).collect();
    let mut w = world(
        11,
        vec![script(PORT_A, 1, &["SUB"]), script(PORT_B, 1_000, &pubs)],
        None,
    );
    run(&mut w, 10);
    let want: Vec<String> = (0..50).map(|i| format!("MSG {i}")).collect();
    assert_eq!(lines_of(&w, 0)[2..], want[..], "the subscriber's order");
    let published: Vec<String> = (0..50).map(|_| "PUBLISHED 1".to_string()).collect();
    assert_eq!(lines_of(&w, 1)[1..], published[..]);
}

#[test]
fn a_node_timer_fires_after_its_delay() {
    let mut w = world(
        3,
        vec![script(PORT_A, 1, &["AFTER 700", "AFTER 200"])],
        None,
    );
    run(&mut w, 5);
    let got = &w.got.borrow()[0].got;
    let hello = got[0].0;
    let ticks: Vec<Instant> = got
        .iter()
        .filter(|(_, l)| l == "TICK")
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(ticks.len(), 2, "{got:?}");
    assert!(ticks[0].since(hello) >= Duration::from_millis(200));
    assert!(ticks[1].since(hello) >= Duration::from_millis(700));
    assert!(ticks[1].since(hello) < Duration::from_millis(900));
}

#[test]
fn off_loop_work_answers_with_the_jobs_result() {
    let mut w = world(
        4,
        vec![script(PORT_A, 1, &["HASH secret", "HASH other"])],
        None,
    );
    run(&mut w, 5);
    let want: Vec<String> = ["secret", "other"]
        .iter()
        .map(|t| format!("HASHED {:016x}", LineNode::run_job(t.to_string())))
        .collect();
    let mut got = lines_of(&w, 0)[1..].to_vec();
    // Jobs finish in any order.
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn tokens_come_from_entropy_and_differ() {
    let mut w = world(5, vec![script(PORT_A, 1, &["TOKEN", "TOKEN"])], None);
    run(&mut w, 5);
    let got = lines_of(&w, 0);
    assert_eq!(got.len(), 3);
    for t in &got[1..] {
        let hex = t.strip_prefix("TOKEN ").expect("a token");
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(got[1], got[2]);
}

#[test]
fn a_refused_connect_retries_with_growing_backoff_until_it_opens() {
    let target = host_addr(2, 80);
    let dial = format!("DIAL {target}");
    let mut w = world(
        6,
        vec![script(PORT_A, 1, &[&dial])],
        Some(Duration::from_millis(900)),
    );
    run(&mut w, 10);
    let got = lines_of(&w, 0);
    let retries: Vec<String> = (1..got.len() - 1).map(|n| format!("RETRY {n}")).collect();
    assert_eq!(got[1..got.len() - 1], retries[..]);
    let attempts: u32 = got[got.len() - 1]
        .strip_prefix("DIALED ")
        .unwrap_or_else(|| panic!("{got:?}"))
        .parse()
        .unwrap();
    // 100 ms, then 200, then 400 (plus jitter) pass before the listener opens at 900 ms.
    assert!((3..=5).contains(&attempts), "{got:?}");
}

#[test]
fn a_connect_that_never_opens_gives_up() {
    let dial = format!("DIAL {}", host_addr(2, 80));
    let mut w = world(7, vec![script(PORT_A, 1, &[&dial])], None);
    run(&mut w, 60);
    let mut want: Vec<String> = (1..lines::DIAL_ATTEMPTS)
        .map(|n| format!("RETRY {n}"))
        .collect();
    want.push(format!("GAVEUP {}", lines::DIAL_ATTEMPTS));
    assert_eq!(lines_of(&w, 0)[1..], want[..]);
}

#[test]
fn appends_are_answered_after_their_sync_and_a_crash_loses_only_unanswered_ones() {
    // Four connections append records one after another; the host crashes at a different
    // moment in each run, and comes back.
    let recs: Vec<Vec<String>> = (0..4)
        .map(|c| (0..400).map(|i| format!("LOG c{c}r{i}")).collect())
        .collect();
    let mut lost_in_flight = 0;
    for run_no in 0..20u64 {
        let scripts = recs
            .iter()
            .map(|r| {
                let lines: Vec<&str> = r.iter().map(String::as_str).collect();
                Script {
                    lockstep: true,
                    ..script(PORT_A, 1, &lines)
                }
            })
            .collect();
        let mut w = world(100 + run_no, scripts, None);
        let crash_at = Duration::from_millis(40 + 13 * run_no);
        w.sim
            .fault_at(Instant::ZERO + crash_at, FaultAction::Crash { host: NODE });
        w.sim.fault_at(
            Instant::ZERO + crash_at + Duration::from_secs(1),
            FaultAction::Restart { host: NODE },
        );
        run(&mut w, 5);
        let log = String::from_utf8_lossy(w.sim.disk(NODE).read_log(lines::LOG)).to_string();
        // Whole records only: a crash may leave the last one torn (no newline).
        let whole = log.rfind('\n').map_or("", |end| &log[..end]);
        let on_disk: Vec<&str> = whole.lines().collect();
        let mut answered = 0;
        for (c, r) in recs.iter().enumerate() {
            let acked = lines_of(&w, c)
                .iter()
                .filter(|l| l.starts_with("LOGGED"))
                .count();
            answered += acked;
            let survived: Vec<&str> = on_disk
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("c{c}r")))
                .collect();
            // Every answered record survived; what survived is a prefix of the connection's
            // records (nothing out of order, nothing invented); at most the one append
            // in flight survived unanswered.
            assert!(survived.len() >= acked, "run {run_no} connection {c}");
            assert!(survived.len() <= acked + 1, "run {run_no} connection {c}");
            lost_in_flight += usize::from(survived.len() == acked);
            for (i, l) in survived.iter().enumerate() {
                assert_eq!(*l, &r[i][4..], "run {run_no} connection {c}");
            }
        }
        assert!(answered > 0 && answered < 1600, "run {run_no}: {answered}");
        let recovered: Vec<u64> = w
            .events
            .borrow()
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Recovered(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(
            recovered,
            [0, on_disk.len() as u64],
            "run {run_no}: read at both starts"
        );
    }
    assert!(
        lost_in_flight > 0,
        "no crash ever came between an append and its answer"
    );
}

#[test]
fn appends_share_syncs_under_load() {
    let lines: Vec<String> = (0..100).map(|i| format!("LOG r{i}")).collect();
    let scripts = (0..10)
        .map(|_| {
            let l: Vec<&str> = lines.iter().map(String::as_str).collect();
            script(PORT_A, 1, &l)
        })
        .collect();
    let mut w = world(9, scripts, None);
    run(&mut w, 30);
    let node = w
        .sim
        .node(NODE)
        .and_then(|n| n.as_any().downcast_ref::<MachineHost<LineNode>>())
        .expect("node");
    let committed = w
        .events
        .borrow()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Committed { .. }))
        .count();
    assert_eq!(committed, 1000);
    let syncs = node.node().syncs();
    assert!(
        syncs * 4 <= committed as u64,
        "{syncs} syncs for {committed} appends: no group commit"
    );
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let scripts = || {
        vec![
            script(PORT_A, 1, &["SUB", "HASH a", "LOG x", "AFTER 10", "TOKEN"]),
            script(PORT_B, 2, &["PUB m", "LOG y"]),
        ]
    };
    let mut a = world(10, scripts(), None);
    let mut b = world(10, scripts(), None);
    run(&mut a, 5);
    run(&mut b, 5);
    assert_eq!(a.sim.trace().hash(), b.sim.trace().hash());
    assert_eq!(lines_of(&a, 0), lines_of(&b, 0));
}
