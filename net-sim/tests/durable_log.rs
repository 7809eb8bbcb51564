//! The engine's crash model with the durable-log effects: a journal node appends framed
//! records, syncs every few, and crashes at random; after each restart what it reads back must
//! hold every record whose sync succeeded, in order, and at most a torn tail after them.
//! (This is also the smallest example of a world built on `engine::Sim`.)

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use weaprous_core::node::{LogOp, LogReply};
use weaprous_core::time::{Duration, Instant};
use weaprous_net_sim::disk::Disk;
use weaprous_net_sim::engine::{Cx, Node, Sim};
use weaprous_net_sim::scenario::{FaultAction, NetConfig, RandomFaults};
use weaprous_net_sim::trace::Keep;

/// What the journal promised: ids whose sync succeeded (kept outside the node, which forgets).
#[derive(Default)]
struct Promises {
    synced: Vec<u64>,
    recoveries: usize,
    torn_tails: usize,
}

struct Journal {
    promises: Rc<RefCell<Promises>>,
    next_id: u64,
    /// Ids whose append succeeded since the last sync began (a failed append is never
    /// promised: the reply, not the request, says whether it was written).
    unsynced: Vec<u64>,
    /// Ids covered by the sync in flight.
    syncing: Vec<u64>,
    recovered: bool,
}

const TICK: Duration = Duration::from_millis(100);
// Tags: the kind in the low two bits, the record id above them.
const READ: u64 = 0;
const APPEND: u64 = 1;
const SYNC: u64 = 2;

fn frame(id: u64) -> Vec<u8> {
    let body = format!("record {id} {}", "x".repeat((id % 13) as usize));
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(body.as_bytes());
    v
}

/// The ids of the whole records in `log`, and whether bytes were left over (a torn tail).
fn parse(mut log: &[u8]) -> Result<(Vec<u64>, bool), String> {
    let mut ids = Vec::new();
    while log.len() >= 4 {
        let len = u32::from_le_bytes([log[0], log[1], log[2], log[3]]) as usize;
        if log.len() < 4 + len {
            break;
        }
        let body = std::str::from_utf8(&log[4..4 + len]).map_err(|e| e.to_string())?;
        let id = body
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("garbage record {body:?}"))?;
        if frame(id)[4..] != log[4..4 + len] {
            return Err(format!("record {id} corrupted: {body:?}"));
        }
        ids.push(id);
        log = &log[4 + len..];
    }
    Ok((ids, !log.is_empty()))
}

impl Node for Journal {
    fn start(&mut self, cx: &mut Cx) {
        cx.log(
            READ,
            LogOp::Read {
                log: "journal".into(),
            },
        );
    }
    fn on_log(&mut self, cx: &mut Cx, tag: u64, reply: LogReply) {
        let id = tag >> 2;
        match (tag & 3, reply) {
            (READ, LogReply::Contents(Ok(bytes))) => {
                let (ids, torn) = match parse(&bytes) {
                    Ok(x) => x,
                    Err(e) => return cx.fail(e),
                };
                let mut p = self.promises.borrow_mut();
                if let Some(lost) = p.synced.iter().find(|id| !ids.contains(id)) {
                    return cx.fail(format!("synced record {lost} lost in a crash"));
                }
                if ids.windows(2).any(|w| w[0] >= w[1]) {
                    return cx.fail(format!("records out of order: {ids:?}"));
                }
                p.recoveries += 1;
                p.torn_tails += usize::from(torn);
                // A torn tail would make every later record unreadable: a real journal
                // truncates it; here we simply start ids after what survived and never
                // append after a torn tail (the next sync covers a fresh log name).
                self.next_id = ids.last().map_or(0, |l| l + 1).max(self.next_id);
                self.recovered = !torn;
                cx.set_timer(Some(cx.now().mono + TICK));
            }
            (APPEND, LogReply::Appended(Ok(_))) => self.unsynced.push(id),
            // The append wrote nothing: it is never promised.
            (APPEND, LogReply::Appended(Err(_))) => {}
            (SYNC, LogReply::Synced(result)) => {
                let covered = std::mem::take(&mut self.syncing);
                if result.is_ok() {
                    self.promises.borrow_mut().synced.extend(covered);
                } else {
                    self.unsynced.splice(0..0, covered);
                }
            }
            (_, other) => cx.fail(format!("unexpected reply {other:?}")),
        }
    }
    fn on_timer(&mut self, cx: &mut Cx) {
        if !self.recovered {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        cx.log(
            id << 2 | APPEND,
            LogOp::Append {
                log: "journal".into(),
                bytes: frame(id),
            },
        );
        if id % 3 == 2 && self.syncing.is_empty() {
            self.syncing = std::mem::take(&mut self.unsynced);
            cx.log(
                SYNC,
                LogOp::Sync {
                    log: "journal".into(),
                },
            );
        }
        cx.set_timer(Some(cx.now().mono + TICK));
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn run(seed: u64) -> Rc<RefCell<Promises>> {
    let promises = Rc::new(RefCell::new(Promises::default()));
    let p = promises.clone();
    let factory = Box::new(move |_host, _disk: &Disk| -> Box<dyn Node> {
        Box::new(Journal {
            promises: p.clone(),
            next_id: 0,
            unsynced: Vec::new(),
            syncing: Vec::new(),
            recovered: false,
        })
    });
    let random = RandomFaults {
        disk_write_error_ppm: 50_000,
        ..RandomFaults::default()
    };
    let mut sim = Sim::new(
        seed,
        NetConfig::default(),
        random,
        vec![Disk::default()],
        Keep::default(),
        factory,
    );
    let mut r = fastrand::Rng::with_seed(seed);
    for i in 0..5 {
        let at = Instant::ZERO + Duration::from_millis(i * 4_000 + r.u64(100..3_000));
        sim.fault_at(at, FaultAction::Crash { host: 0 });
        sim.fault_at(
            at + Duration::from_millis(500),
            FaultAction::Restart { host: 0 },
        );
    }
    sim.heal_at(Instant::ZERO + Duration::from_secs(25));
    let end = Instant::ZERO + Duration::from_secs(30);
    sim.run_until(end, |_| false)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert!(sim.coverage().count("node.crash") >= 5);
    promises
}

#[test]
fn synced_records_survive_every_crash_and_torn_tails_occur() {
    let (mut recoveries, mut torn, mut synced) = (0, 0, 0);
    for seed in 0..60 {
        let p = run(seed);
        let p = p.borrow();
        recoveries += p.recoveries;
        torn += p.torn_tails;
        synced += p.synced.len();
    }
    assert!(
        recoveries >= 60 * 6,
        "every boot read the journal ({recoveries})"
    );
    assert!(synced > 1000, "records were promised ({synced})");
    assert!(torn > 0, "some crash tore the last append ({torn})");
}
