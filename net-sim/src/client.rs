//! A simulated HTTP/1.1 client: the workload, and the oracle that checks every response.
//!
//! Each client runs a list of connections; on each it pipelines up to `depth` requests and
//! checks each response, in order, against what was expected for *that* request (status, and
//! every body byte), so a response given to the wrong request, a truncated body presented as
//! complete, or a corrupted byte is a failure with the client, connection and request named.

use std::collections::VecDeque;
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Limits, Method};

/// What a request must get back.
#[derive(Clone, Debug)]
pub struct Expect {
    pub status: u16,
    /// The exact body, or `None` when only the status matters (error pages).
    pub body: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct ClientReq {
    pub method: Method,
    pub path: String,
    pub range: Option<(u64, u64)>,
    pub expect: Expect,
}

impl ClientReq {
    fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut s = format!("{} {} HTTP/1.1\r\nHost: sim\r\n", self.method, self.path);
        if let Some((a, b)) = self.range {
            s.push_str(&format!("Range: bytes={a}-{b}\r\n"));
        }
        if close {
            s.push_str("Connection: close\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

/// One connection's worth of work.
#[derive(Clone, Debug)]
pub struct ConnPlan {
    pub reqs: Vec<ClientReq>,
    /// Most requests in flight at once (1 = no pipelining).
    pub depth: usize,
    /// Ask the server to close after the last response (else the client closes).
    pub close_header: bool,
    /// A stalled client: send only this many bytes of the first request, then nothing (the
    /// server must answer 408 at its header deadline and close; nobody else may notice).
    pub stall_after: Option<usize>,
}

/// What the client asks the network to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Connect,
    Write(Vec<u8>),
    /// Half-close our side; the connection is finished for us.
    Fin,
}

struct Active {
    plan: ConnPlan,
    sent: usize,
    answered: usize,
    parser: Parser,
    body: Vec<u8>,
    status: u16,
}

pub struct SimClient {
    pub id: usize,
    plans: VecDeque<ConnPlan>,
    active: Option<Active>,
    pub answered: usize,
    pub total: usize,
    conn_index: usize,
}

impl SimClient {
    pub fn new(id: usize, plans: Vec<ConnPlan>) -> Self {
        let total = plans.iter().map(|p| p.reqs.len()).sum();
        SimClient {
            id,
            plans: plans.into(),
            active: None,
            answered: 0,
            total,
            conn_index: 0,
        }
    }
    pub fn finished(&self) -> bool {
        self.active.is_none() && self.plans.is_empty()
    }

    /// Starts the next connection, if any.
    pub fn start(&mut self) -> Vec<Action> {
        if self.active.is_none() && !self.plans.is_empty() {
            vec![Action::Connect]
        } else {
            vec![]
        }
    }

    pub fn on_connected(&mut self) -> Vec<Action> {
        let plan = self.plans.pop_front().expect("a plan for this connection");
        self.conn_index += 1;
        self.active = Some(Active {
            plan,
            sent: 0,
            answered: 0,
            parser: Parser::response(Limits::default()),
            body: Vec::new(),
            status: 0,
        });
        self.send_more()
    }

    fn send_more(&mut self) -> Vec<Action> {
        let Some(a) = self.active.as_mut() else {
            return vec![];
        };
        let mut out = Vec::new();
        if let (Some(n), 0) = (a.plan.stall_after, a.sent) {
            let req = &a.plan.reqs[0];
            a.parser.expect_response_to(req.method.clone());
            let bytes = req.to_bytes(false);
            out.push(Action::Write(bytes[..n.min(bytes.len() - 1)].to_vec()));
            a.sent = a.plan.reqs.len();
            return out;
        }
        while a.sent < a.plan.reqs.len() && a.sent - a.answered < a.plan.depth {
            let last = a.sent + 1 == a.plan.reqs.len();
            let req = &a.plan.reqs[a.sent];
            a.parser.expect_response_to(req.method.clone());
            out.push(Action::Write(req.to_bytes(last && a.plan.close_header)));
            a.sent += 1;
        }
        out
    }

    /// Bytes from the server. `Err` describes a wrong response.
    pub fn on_data(&mut self, bytes: &[u8]) -> Result<Vec<Action>, String> {
        let id = self.id;
        let conn = self.conn_index;
        let Some(a) = self.active.as_mut() else {
            return if bytes.is_empty() {
                Ok(vec![])
            } else {
                Err(format!("client {id}: bytes after its last response"))
            };
        };
        a.parser.feed(bytes);
        let mut finished_one = false;
        loop {
            match a.parser.next_event() {
                Ok(Event::Response(h)) => {
                    a.status = h.status.0;
                    a.body.clear();
                }
                Ok(Event::Data(d)) => a.body.extend_from_slice(&d),
                Ok(Event::End { .. }) => {
                    let req = a.plan.reqs.get(a.answered).ok_or_else(|| {
                        format!("client {id} conn {conn}: a response nobody asked for")
                    })?;
                    if a.status != req.expect.status {
                        return Err(format!(
                            "client {id} conn {conn} req {} {}: status {} (expected {})",
                            a.answered, req.path, a.status, req.expect.status
                        ));
                    }
                    if let Some(body) = &req.expect.body {
                        if *body != a.body {
                            return Err(format!(
                                "client {id} conn {conn} req {} {}: body of {} bytes differs from the expected {} bytes",
                                a.answered,
                                req.path,
                                a.body.len(),
                                body.len()
                            ));
                        }
                    }
                    a.answered += 1;
                    self.answered += 1;
                    finished_one = true;
                }
                Ok(Event::NeedData) => break,
                Ok(other) => return Err(format!("client {id}: unexpected {other:?}")),
                Err(e) => return Err(format!("client {id} conn {conn}: malformed response: {e}")),
            }
        }
        let mut out = Vec::new();
        if finished_one {
            let a = self.active.as_ref().expect("active");
            if a.answered == a.plan.reqs.len() {
                self.active = None;
                out.push(Action::Fin);
                out.extend(self.start());
            } else {
                out.extend(self.send_more());
            }
        }
        Ok(out)
    }

    /// The server closed (FIN). Fine after the last response; otherwise the server dropped work.
    pub fn on_server_fin(&mut self) -> Result<Vec<Action>, String> {
        match &self.active {
            None => Ok(vec![]),
            Some(a) => Err(format!(
                "client {}: server closed with {} of {} responses outstanding",
                self.id,
                a.plan.reqs.len() - a.answered,
                a.plan.reqs.len()
            )),
        }
    }
}
