//! Whole HTTP exchanges for a node, as a connection machine: the node hands it requests
//! ([`Fetch`]) and gets back whole responses ([`Fetched`]), in order, over one kept-alive
//! connection ([`super::client::ClientConn`] does the protocol). A peer node talks to its
//! tracker this way.
//!
//! # Contract
//! * Requests queue and go one at a time; each gets exactly one [`Fetched`], in the order
//!   they were given.
//! * A response body over [`MAX_RESPONSE`] bytes, a malformed response, a timeout or a closed
//!   connection fails the request in progress and every one queued behind it
//!   ([`Fetched::Failed`]); the connection then closes. The node dials a new one for what
//!   comes next.
//! * A connection the server closes while idle tells the node [`Fetched::Closed`] and closes.

use super::client::{ClientConn, ClientEvent, ClientTimeouts};
use super::serialize::BodyFraming;
use super::target::Target;
use super::{Headers, Limits, Method, RequestHead, Status, Version};
use crate::node::{ConnInput, ConnOutput, Connection, Now};
use std::collections::VecDeque;

/// The largest response body taken.
pub const MAX_RESPONSE: usize = 8 * 1024 * 1024;

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    pub method: Method,
    /// Origin form: `/get-list?x=1`.
    pub target: String,
    /// Every field but the framing (`Content-Length` is added for a body).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    Response {
        status: u16,
        /// Names in lower case.
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The request got no whole response, and why.
    Failed(String),
    /// The server closed the idle connection.
    Closed,
}

/// The connection machine (module docs).
#[derive(Debug)]
pub struct FetchConn {
    client: ClientConn,
    queue: VecDeque<Fetch>,
    in_flight: bool,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    out: VecDeque<ConnOutput<Fetched>>,
    done: bool,
}

impl FetchConn {
    pub fn new(now: Now, timeouts: ClientTimeouts) -> FetchConn {
        FetchConn {
            client: ClientConn::new(now, Limits::default(), timeouts),
            queue: VecDeque::new(),
            in_flight: false,
            status: None,
            headers: Vec::new(),
            body: Vec::new(),
            out: VecDeque::new(),
            done: false,
        }
    }

    fn start_next(&mut self, now: Now) {
        if self.in_flight || self.done || !self.client.is_idle() {
            return;
        }
        let Some(f) = self.queue.pop_front() else {
            return;
        };
        let Ok(target) = Target::parse(f.target.as_bytes(), &f.method) else {
            self.out
                .push_back(ConnOutput::ToNode(Fetched::Failed(format!(
                    "bad target {:?}",
                    f.target
                ))));
            return self.start_next(now);
        };
        let mut headers = Headers::new();
        for (n, v) in &f.headers {
            headers.append(n, v);
        }
        let head = RequestHead {
            method: f.method,
            target,
            version: Version::HTTP_11,
            headers,
        };
        let framing = if f.body.is_empty() && matches!(head.method, Method::Get | Method::Head) {
            BodyFraming::None
        } else {
            BodyFraming::Length(f.body.len() as u64)
        };
        self.client.send_head(now, &head, framing);
        self.client.send_data(now, &f.body);
        self.client.end_request(now);
        self.in_flight = true;
        self.status = None;
        self.headers.clear();
        self.body.clear();
    }

    /// Fails what is in flight and queued, and closes.
    fn fail_all(&mut self, why: &str) {
        if self.done {
            return;
        }
        if std::mem::take(&mut self.in_flight) {
            self.out
                .push_back(ConnOutput::ToNode(Fetched::Failed(why.to_string())));
        }
        for _ in self.queue.drain(..) {
            self.out
                .push_back(ConnOutput::ToNode(Fetched::Failed(why.to_string())));
        }
        self.done = true;
        self.out.push_back(ConnOutput::Close);
    }

    fn pump(&mut self, now: Now) {
        while let Some(ev) = self.client.poll_event(now) {
            self.on_event(ev);
            if self.done {
                return;
            }
        }
        if self.client.is_dead() && !self.done {
            if self.in_flight || !self.queue.is_empty() {
                self.fail_all("the connection closed");
            } else {
                self.done = true;
                self.out.push_back(ConnOutput::ToNode(Fetched::Closed));
                self.out.push_back(ConnOutput::Close);
            }
            return;
        }
        self.start_next(now);
    }

    fn on_event(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Response(head) => {
                if head.status.is_informational() {
                    return;
                }
                self.status = Some(head.status.0);
                self.headers = head
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            String::from_utf8_lossy(n).to_ascii_lowercase(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect();
            }
            ClientEvent::Data(d) => {
                if self.body.len() + d.len() > MAX_RESPONSE {
                    return self.fail_all("the response is too large");
                }
                self.body.extend_from_slice(&d);
            }
            ClientEvent::End => {
                self.in_flight = false;
                let status = self.status.take().unwrap_or(Status::BAD_GATEWAY.0);
                self.out.push_back(ConnOutput::ToNode(Fetched::Response {
                    status,
                    headers: std::mem::take(&mut self.headers),
                    body: std::mem::take(&mut self.body),
                }));
            }
            ClientEvent::Upgrade(_) => self.fail_all("the server switched protocols"),
            ClientEvent::Failed(e) => self.fail_all(&format!("{e:?}")),
            ClientEvent::Closed => {}
        }
    }
}

impl Connection for FetchConn {
    type ToNode = Fetched;
    type FromNode = Fetch;

    fn handle(&mut self, now: Now, input: ConnInput<'_, Fetch>) {
        if self.done {
            return;
        }
        match input {
            ConnInput::Data(b) => self.client.feed(now, b),
            ConnInput::Eof => self.client.feed_eof(),
            ConnInput::Reset => self.client.feed_reset(),
            ConnInput::Timeout => {
                if let Some(ev) = self.client.on_timeout(now) {
                    self.on_event(ev);
                }
            }
            ConnInput::Flushed(n) => self.client.flushed(now, n),
            ConnInput::File(_) => {}
            ConnInput::Drain => {}
            ConnInput::FromNode(f) => self.queue.push_back(f),
        }
        if !self.done {
            self.pump(now);
        }
    }

    fn poll_output(&mut self) -> ConnOutput<Fetched> {
        self.out.pop_front().unwrap_or(ConnOutput::Wait {
            deadline: if self.done {
                None
            } else {
                self.client.deadline()
            },
        })
    }

    fn transmit(&self) -> &[u8] {
        self.client.transmit()
    }

    fn wants_read(&self) -> bool {
        !self.done && self.client.wants_read()
    }

    fn may_leave_unread(&self) -> bool {
        false
    }
}
