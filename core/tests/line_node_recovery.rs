//! The demonstration node's recovery of its log at start, through the node contract: a disk
//! that fails the first reads makes appends fail for a while, never for good.

use weaprous_core::node::lines::{LineNode, Up, RECOVERY_ATTEMPTS};
use weaprous_core::node::machine::{NodeInput, NodeMachine, NodeOutput, SeededEntropy};
use weaprous_core::node::{FsError, LogOp, LogReply, Now};
use weaprous_core::time::{Duration, Instant};

struct Harness {
    node: LineNode,
    now: Now,
    entropy: SeededEntropy,
    /// The pending log read's token, if one was asked for.
    read: Option<u64>,
    /// Log appends asked for.
    appends: usize,
    told: Vec<String>,
    wake: Option<Instant>,
}

impl Harness {
    fn new() -> Harness {
        let mut h = Harness {
            node: LineNode::new(vec![], 1),
            now: Now::default(),
            entropy: SeededEntropy(fastrand::Rng::with_seed(1)),
            read: None,
            appends: 0,
            told: Vec::new(),
            wake: None,
        };
        h.input(NodeInput::Start);
        h
    }

    fn input(&mut self, input: NodeInput<LineNode>) {
        self.node.handle(self.now, input, &mut self.entropy);
        loop {
            match self.node.poll_output() {
                NodeOutput::Wait { deadline } => {
                    self.wake = deadline;
                    return;
                }
                NodeOutput::Log { token, op } => match op {
                    LogOp::Read { .. } => self.read = Some(token),
                    LogOp::Append { .. } => self.appends += 1,
                    _ => {}
                },
                NodeOutput::ToConn { msg, .. } => self.told.push(msg.to_string()),
                _ => {}
            }
        }
    }

    /// Answers the pending read.
    fn read_reply(&mut self, reply: Result<Vec<u8>, FsError>) {
        let token = self.read.take().expect("a read was asked for");
        self.input(NodeInput::Log {
            token,
            reply: LogReply::Contents(reply),
        });
    }

    /// Lets time run to the node's next timer.
    fn run_to_timer(&mut self) {
        let at = self.wake.expect("a timer is set");
        self.now.mono = at;
        self.input(NodeInput::Timeout);
    }

    fn log(&mut self, conn: u64, text: &str) -> Option<String> {
        let before = self.told.len();
        self.input(NodeInput::FromConn {
            conn,
            msg: Up::Log(text.into()),
        });
        self.told.get(before).cloned()
    }
}

#[test]
fn a_disk_that_recovers_makes_the_log_usable_again() {
    let mut h = Harness::new();
    for _ in 0..RECOVERY_ATTEMPTS {
        h.read_reply(Err(FsError::Io));
        if h.read.is_none() {
            h.run_to_timer();
        }
    }
    // After the fast attempts, appends fail at once rather than wait...
    assert_eq!(h.log(7, "a").as_deref(), Some("LOGFAIL"));
    // ...but the node keeps trying, further apart, and the log comes back.
    let mut waits = Vec::new();
    for _ in 0..6 {
        let before = h.now.mono;
        if h.read.is_none() {
            h.run_to_timer();
        }
        waits.push(h.now.mono.since(before));
        h.read_reply(Err(FsError::Io));
    }
    assert!(
        waits.windows(2).all(|w| w[1] >= w[0]),
        "backoff grows: {waits:?}"
    );
    assert!(
        waits.iter().all(|w| *w <= Duration::from_secs(5)),
        "and is capped: {waits:?}"
    );
    h.run_to_timer();
    h.read_reply(Ok(b"old record\n".to_vec()));
    let appends = h.appends;
    assert_eq!(h.log(7, "b"), None, "an append waits for its sync now");
    assert_eq!(h.appends, appends + 1, "the append went to the log");
}
