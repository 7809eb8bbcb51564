//! The static backend as a node: [`BackendNode`] listens on one address and makes a
//! [`BackendConn`] for every connection. Static files need no shared state, so the node is
//! per worker ([`Scope::Worker`]) and no message ever passes between it and its connections.

use super::{BackendConfig, BackendConn};
use crate::node::machine::{Entropy, NewConn, NodeInput, NodeMachine, NodeOutput, Scope};
use crate::node::Now;
use std::collections::VecDeque;
use std::convert::Infallible;
// `core::net` holds address values only (no sockets): where to listen and to connect.
use core::net::SocketAddr;
use std::sync::Arc;

/// What observers see of a backend node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendEvent {
    Listening(SocketAddr),
}

/// The backend's node (module docs).
pub struct BackendNode {
    addr: SocketAddr,
    cfg: Arc<BackendConfig>,
    out: VecDeque<NodeOutput<BackendNode>>,
}

impl BackendNode {
    pub fn new(addr: SocketAddr, cfg: Arc<BackendConfig>) -> Self {
        BackendNode {
            addr,
            cfg,
            out: VecDeque::new(),
        }
    }
}

impl NodeMachine for BackendNode {
    type Conn = BackendConn;
    type Spawn = Arc<BackendConfig>;
    type Job = Infallible;
    type JobDone = Infallible;
    type Command = Infallible;
    type Event = BackendEvent;

    const SCOPE: Scope = Scope::Worker;

    fn spawn(cfg: &Arc<BackendConfig>, now: Now, conn: NewConn) -> BackendConn {
        BackendConn::with_buggify(cfg.clone(), now, conn.buggify)
    }

    fn run_job(job: Infallible) -> Infallible {
        job
    }

    fn handle(&mut self, _now: Now, input: NodeInput<Self>, _entropy: &mut dyn Entropy) {
        match input {
            NodeInput::Start => self.out.push_back(NodeOutput::Listen {
                listener: 0,
                addr: self.addr,
                spawn: self.cfg.clone(),
            }),
            NodeInput::Listening { result, .. } => self.out.push_back(match result {
                Ok(addr) => NodeOutput::Event(BackendEvent::Listening(addr)),
                Err(e) => NodeOutput::Exit {
                    reason: format!("cannot listen on {}: {}", self.addr, e.0),
                },
            }),
            // Its connections never write to it, and it connects nowhere.
            _ => {}
        }
    }

    fn poll_output(&mut self) -> NodeOutput<Self> {
        self.out
            .pop_front()
            .unwrap_or(NodeOutput::Wait { deadline: None })
    }
}
