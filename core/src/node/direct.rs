//! A node machine driven in memory, with nothing in between: logs are byte vectors whose
//! operations all succeed at once, jobs run inline, listeners bind where asked, connects are
//! refused. For fuzz targets, benchmarks and quick tests of what a node answers; the
//! simulator is the driver for faults, time and many hosts.

use super::machine::{
    ConnId, Entropy, FromNode, NodeInput, NodeMachine, NodeOutput, SeededEntropy,
};
use super::{LogOp, LogReply, Now};
use crate::node::machine::ConnectError;
use std::collections::BTreeMap;

/// `N` and what it asked for (module docs).
pub struct Direct<N: NodeMachine> {
    pub node: N,
    pub now: Now,
    /// Every log by name, as written.
    pub logs: BTreeMap<String, Vec<u8>>,
    /// What each connection was sent, in order, until taken.
    pub replies: BTreeMap<ConnId, Vec<FromNode<N>>>,
    pub events: Vec<N::Event>,
    /// Why the node asked to exit, if it did.
    pub exit: Option<String>,
    /// Syncs carried out (appends per sync shows group commit).
    pub syncs: u64,
    entropy: SeededEntropy,
}

impl<N: NodeMachine> Direct<N> {
    /// Starts `node` at `now`; its secrets come from a stream seeded with `seed` (not secret).
    pub fn start(node: N, now: Now, seed: u64) -> Direct<N> {
        Self::start_with_logs(node, now, seed, BTreeMap::new())
    }

    /// Starts `node` on logs as a previous run (or a crash) left them.
    pub fn start_with_logs(
        node: N,
        now: Now,
        seed: u64,
        logs: BTreeMap<String, Vec<u8>>,
    ) -> Direct<N> {
        let mut d = Direct {
            node,
            now,
            logs,
            replies: BTreeMap::new(),
            events: Vec::new(),
            exit: None,
            syncs: 0,
            entropy: SeededEntropy(fastrand::Rng::with_seed(seed)),
        };
        d.input(NodeInput::Start);
        d
    }

    /// Delivers `input` and carries out everything the node asks until it waits.
    pub fn input(&mut self, input: NodeInput<N>) {
        // First in, first out: the answers to log operations come in the order they were
        // asked for, as the contract requires.
        let mut queue = std::collections::VecDeque::from([input]);
        // A bound, so a node that never waits fails loudly instead of hanging its caller.
        for _ in 0..1_000_000 {
            let Some(input) = queue.pop_front() else {
                return;
            };
            self.node
                .handle(self.now, input, &mut self.entropy as &mut dyn Entropy);
            self.node.check_invariants();
            let mut answers = Vec::new();
            loop {
                match self.node.poll_output() {
                    NodeOutput::Wait { .. } => break,
                    NodeOutput::Listen { listener, addr, .. } => {
                        answers.push(NodeInput::Listening {
                            listener,
                            result: Ok(addr),
                        })
                    }
                    NodeOutput::Connect { token, .. } => answers.push(NodeInput::ConnectFailed {
                        token,
                        error: ConnectError::Refused,
                    }),
                    NodeOutput::ToConn { conn, msg } => {
                        self.replies.entry(conn).or_default().push(msg)
                    }
                    NodeOutput::Log { token, op } => {
                        let reply = self.log(op);
                        answers.push(NodeInput::Log { token, reply });
                    }
                    NodeOutput::Job { token, job } => answers.push(NodeInput::JobDone {
                        token,
                        done: N::run_job(job),
                    }),
                    NodeOutput::Event(e) => self.events.push(e),
                    NodeOutput::Exit { reason } => self.exit = Some(reason),
                }
            }
            queue.extend(answers);
        }
        panic!("the node never settled");
    }

    /// What `conn` was sent since the last call.
    pub fn take(&mut self, conn: ConnId) -> Vec<FromNode<N>> {
        self.replies.remove(&conn).unwrap_or_default()
    }

    fn log(&mut self, op: LogOp) -> LogReply {
        let log = self.logs.entry(op.log().to_string()).or_default();
        match op {
            LogOp::Append { bytes, .. } => {
                log.extend_from_slice(&bytes);
                LogReply::Appended(Ok(log.len() as u64))
            }
            LogOp::Sync { .. } => {
                self.syncs += 1;
                LogReply::Synced(Ok(()))
            }
            LogOp::Read { .. } => LogReply::Contents(Ok(log.clone())),
            LogOp::Truncate { len, .. } => {
                log.truncate(len as usize);
                LogReply::Truncated(Ok(()))
            }
        }
    }
}
