//! The peer node: one user's end of peer-to-peer messaging. It keeps links to other peers,
//! registers and heartbeats with the tracker, and serves its user a local web UI and API
//! ([`super::api`]).
//!
//! # Start
//! 1. It listens for its UI (requests get `503` until it is ready) and reads its log
//!    ([`super::history::LOG`]), cutting a torn tail.
//! 2. On a first start it makes its peer id (64 bits of the driver's entropy, as hex); on
//!    every start it writes one more incarnation. Once that is synced it is ready: message ids
//!    it mints from now on can never repeat one minted before a crash.
//! 3. It registers with the tracker and starts sending what its outbox holds. (It listens
//!    for links from the start, as drivers bind listeners then; a link that comes earlier is
//!    closed with `Bye` "not ready".)
//!
//! # The tracker
//! One kept-alive HTTP connection ([`crate::http::fetch`]) carries, one at a time:
//! `POST /submit-info` (its name, P2P port and id, with `Authorization: Basic` of its
//! account), then every interval the tracker states: `POST /add-list` and `GET /get-list`. A
//! heartbeat answered `404` (the tracker forgot it: it restarted, or the entry expired)
//! registers again at once. A tracker that cannot be reached, or answers `5xx`, is tried
//! again after a backoff with jitter (from [`TRACKER_RETRY`] doubling to [`TRACKER_RETRY_MAX`]).
//! The UI's requests for the chat server's channels ride the same connection.
//!
//! # Links
//! A link is dialed when the outbox holds something for a peer that has none, or when the
//! user asks (`/connect-peer`); failed dials back off with jitter (from [`REDIAL`] doubling to
//! [`REDIAL_MAX`]). Both sides send `Hello`; then each sends `Sync` with the last message it
//! durably took from the other, and starts sending once it has the other's `Sync`.
//!
//! **One link per pair.** When a second link to the same peer completes its handshake, both
//! sides keep the same one, by facts both ends know alike: the one of the newer incarnation
//! of the peer (only one end can hold a link of a life that ended); between two of the same
//! incarnations, the one dialed by the smaller peer id; between two dialed by the same side,
//! the one with the larger dial number (its `Hello` says it). Not "the one whose handshake
//! ended last": the two ends may see the handshakes end in either order (the P2P world found
//! that). The other is closed with `Bye`; its messages go again on the one kept.
//!
//! # Durability
//! Fail-stop: every record is appended to the log; what is answered to the user (a message
//! sent) or acknowledged to a peer (a message taken) waits for the sync that covers it. If an
//! append or a sync fails the node stops ([`NodeOutput::Exit`]) rather than run on state its
//! log may not hold; its next start reads what the log holds. Two consequences, both handled
//! at start:
//! * Records after a failed append may be in the file (a sync already asked for completes
//!   after the node stopped), with the failed one missing: a message taken from a peer after
//!   a hole in what was taken from it. Nothing after the failure was answered, so the log
//!   ends at the first record that does not follow ([`State::follows`]) and is cut there.
//! * Records whose sync failed may be in the file (the page cache keeps them) without being
//!   durable. The node is ready only after the sync of its new incarnation, which covers the
//!   whole file: nothing read back is acknowledged before it is durable.
//!
//! "Delivered" is applied at once and written without waiting: losing it in a crash only
//! sends a message again, and its receiver drops the copy. "Failed" is written first and
//! applied once durable, and only then does the `Gone` in the message's place go out: a
//! receiver that skipped a message must never meet it again as waiting, which a failure lost
//! in a crash (and a clock set back past the expiry) would make it.

use super::conn::{Down, PeerConn, Spawn, Up};
use super::delivery::{Inbox, Taken, MAX_CHAIN};
use super::history::{Change, Fate, PeerRecord, State, LOG, MAX_RECORD};
use super::link::{LinkCmd, LinkEvent, LinkTimers};
use super::wire::{Frame, Hello, Kind, MsgId};
use crate::backend::app::AppReply;
use crate::backend::BackendConfig;
use crate::chat::tracker;
use crate::http::client::ClientTimeouts;
use crate::http::fetch::{Fetch, Fetched};
use crate::http::Method;
use crate::node::commit::GroupCommit;
use crate::node::machine::{
    ConnId, Entropy, NewConn, NodeInput, NodeMachine, NodeOutput, Scope, Token,
};
use crate::node::record;
use crate::node::timers::Timers;
use crate::node::{LogOp, LogReply, Now};
use crate::time::{Duration, Instant};
use crate::web::limit::Limiter;
use crate::web::router::Router;
use crate::web::session::{SessionPolicy, Sessions};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
// `core::net` holds address values only (no sockets).
use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The first wait before the tracker is tried again.
pub const TRACKER_RETRY: Duration = Duration::from_millis(500);
/// The longest.
pub const TRACKER_RETRY_MAX: Duration = Duration::from_secs(30);
/// The first wait before a peer is dialed again.
pub const REDIAL: Duration = Duration::from_millis(500);
/// The longest.
pub const REDIAL_MAX: Duration = Duration::from_secs(30);
/// The heartbeat interval assumed until the tracker states one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The longest message, in bytes of UTF-8.
pub const MAX_TEXT: usize = 16 * 1024;
/// The most characters of a message.
pub const MAX_CHARS: usize = 4000;
/// A comment on every idle event stream this often.
pub const SSE_HEARTBEAT: Duration = Duration::from_secs(15);

/// How a peer node runs.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// The user's web UI and API (127.0.0.1 by default in the binary).
    pub ui_addr: SocketAddr,
    /// Where other peers dial.
    pub p2p_addr: SocketAddr,
    /// The tracker (the chat server) and the `Host` to name it by.
    pub tracker: SocketAddr,
    pub tracker_host: String,
    /// The account: the tracker's sign-in, the name on its list, and this UI's login.
    pub user: String,
    pub password: String,
    /// The UI's pages and assets; [`BackendConfig::app`] must be set.
    pub site: Arc<BackendConfig>,
    /// The address to announce to the tracker instead of the one it observes.
    pub announce_ip: Option<IpAddr>,
    /// How long a message may wait for its recipient before it fails.
    pub message_ttl: Duration,
    /// How long a dial may take.
    pub connect_timeout: Duration,
    pub link: LinkTimers,
    pub fetch: ClientTimeouts,
    pub sessions: SessionPolicy,
}

impl PeerConfig {
    /// A peer with the default timers: messages expire after an hour, dials after 5 s.
    pub fn new(
        ui_addr: SocketAddr,
        p2p_addr: SocketAddr,
        tracker: SocketAddr,
        user: &str,
        password: &str,
        mut site: BackendConfig,
    ) -> PeerConfig {
        if site.app.is_none() {
            site.app = Some(crate::backend::app::AppRules::default());
        }
        PeerConfig {
            ui_addr,
            p2p_addr,
            tracker,
            tracker_host: tracker.to_string(),
            user: user.to_string(),
            password: password.to_string(),
            site: Arc::new(site),
            announce_ip: None,
            message_ttl: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(5),
            // A listener that accepts but never says Hello fails a dial as late as one that
            // does not answer at all: `/connect-peer` answers within the connect timeout.
            link: LinkTimers {
                handshake: Duration::from_secs(5),
                ..LinkTimers::default()
            },
            fetch: ClientTimeouts {
                read: Duration::from_secs(10),
                send: Duration::from_secs(10),
            },
            sessions: SessionPolicy::default(),
        }
    }
}

/// What a workload (the simulator's users) asks of a peer node: what the API's
/// `/send-peer` and `/broadcast-peer` do, without a connection to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCommand {
    Send { peer: String, text: String },
    Broadcast { text: String },
}

/// What observers (and oracles) see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    Listening(SocketAddr),
    /// The log is read and this start's incarnation is durable.
    Ready {
        id: String,
        incarnation: u64,
        records: u64,
        cut: u64,
    },
    P2pListening(SocketAddr),
    /// The tracker took the registration; it asks for a heartbeat every `interval_ms`.
    Registered {
        interval_ms: u64,
    },
    /// A heartbeat was answered "not registered" (the tracker restarted, or the entry
    /// expired): the node registers again at once.
    Forgotten,
    /// The tracker could not be reached or refused (retried after a backoff).
    TrackerTrouble(String),
    LinkUp {
        peer: String,
        name: String,
    },
    LinkDown {
        peer: String,
        why: String,
    },
    /// A second link to `peer` completed its handshake: `kept` stays, `closed` goes (both
    /// sides must choose alike).
    DuplicateLink {
        peer: String,
        kept: ConnId,
        closed: ConnId,
        kept_newer: bool,
        /// The two were dialed from opposite sides (both dialed at once).
        crossed: bool,
    },
    /// A message is durable and was answered to the user: its id and recipients.
    Sent {
        id: MsgId,
        kind: Kind,
        to: Vec<String>,
    },
    /// A sent message read back from the log at start (whether or not its sender was told).
    Replayed {
        id: MsgId,
        kind: Kind,
        to: Vec<String>,
    },
    /// A message taken from `from`, read back from the log at start.
    Recalled {
        from: String,
        id: MsgId,
    },
    Delivered {
        to: String,
        id: MsgId,
    },
    /// `id` failed for `to` (also said again for each failure read back at start).
    Failed {
        to: String,
        id: MsgId,
    },
    /// A message from `from` is durable, shown, and acknowledged.
    Taken {
        from: String,
        id: MsgId,
        kind: Kind,
        hole: bool,
    },
    /// `from`'s messages up to `through` will not come.
    Skipped {
        from: String,
        through: MsgId,
    },
    /// A command was refused (the API would have answered `status`).
    Refused {
        status: u16,
        why: String,
    },
    /// The log failed: the node stops.
    LogFailed(String),
    Draining,
}

/// What a tracker request was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum For {
    Register,
    Heartbeat,
    List,
    Leave,
    /// A UI request relayed to the chat server: its answer goes to `conn`.
    Relay(ConnId),
}

/// What a synced record answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Then {
    Nothing,
    Ready,
    /// A message the user sent (answered on the connection, if any).
    Sent(Option<ConnId>),
    /// Something taken from `from`: acknowledge it.
    Taken(String),
    /// A failure is durable: tell its recipient (its `Gone`) and the user.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Expire,
    Redial,
    TrackerHeartbeat,
    TrackerRetry,
    SseHeartbeat,
}

/// One link, from open to close.
#[derive(Clone, Debug, Default)]
pub(super) struct Link {
    /// This node dialed it.
    pub dialed: bool,
    /// Who it was dialed for (a dial by address names nobody).
    pub want: Option<String>,
    /// The address dialed.
    pub addr: Option<SocketAddr>,
    /// The dialer's number for it (this node's, or the other side's from its `Hello`).
    pub dial: u64,
    /// Who the other side is, once its `Hello` came.
    pub peer: Option<String>,
    pub incarnation: u64,
    /// This is the peer's link (the one kept).
    pub live: bool,
    /// Its `Sync` came: messages flow.
    pub synced: bool,
    /// UI requests waiting for it to come up (`/connect-peer`).
    pub waiters: Vec<ConnId>,
}

/// A dial in flight.
#[derive(Clone, Debug)]
pub(super) struct Dial {
    pub want: Option<String>,
    pub addr: SocketAddr,
    pub waiters: Vec<ConnId>,
}

/// The tracker connection and what waits for it.
#[derive(Debug, Default)]
pub(super) struct TrackerLink {
    pub conn: Option<ConnId>,
    pub dialing: Option<Token>,
    /// Not yet handed to a connection.
    pub queue: VecDeque<(Fetch, For)>,
    /// Handed to `conn`, answered in this order.
    pub asked: VecDeque<For>,
    pub registered: bool,
    pub interval: Option<Duration>,
    pub failures: u32,
    /// The last trouble, for the UI.
    pub trouble: Option<String>,
}

/// The peer node (module docs).
pub struct PeerNode {
    pub(super) cfg: PeerConfig,
    pub(super) router: Router<super::api::Route>,
    pub(super) out: VecDeque<NodeOutput<PeerNode>>,
    pub(super) timers: Timers<Timer>,
    pub(super) rng: fastrand::Rng,
    pub(super) state: State,
    pub(super) inbox: Inbox,
    pub(super) ready: bool,
    pub(super) next_token: Token,
    pub(super) next_seq: u64,
    pub(super) commit: GroupCommit<Token>,
    pub(super) appends: BTreeMap<Token, (PeerRecord, Then)>,
    pub(super) read_token: Option<Token>,
    pub(super) cut_token: Option<Token>,
    pub(super) recovered: (u64, u64),
    pub(super) p2p_port: u16,
    pub(super) links: BTreeMap<ConnId, Link>,
    /// Each peer's live link.
    pub(super) up: BTreeMap<String, ConnId>,
    pub(super) dials: BTreeMap<Token, Dial>,
    /// Per peer: failed attempts in a row, and not before when to dial again.
    pub(super) backoff: BTreeMap<String, (u32, Instant)>,
    /// The tracker's last list: id → address.
    pub(super) listed: BTreeMap<String, SocketAddr>,
    pub(super) tracker: TrackerLink,
    pub(super) sessions: Sessions,
    pub(super) limiter: Limiter,
    pub(super) subscribers: BTreeSet<ConnId>,
    pub(super) draining: bool,
    pub(super) stopped: bool,
    /// Expired messages whose failure record waits for its sync.
    pub(super) failing: BTreeSet<(String, MsgId)>,
    /// The last dial's number.
    pub(super) next_dial: u64,
}

impl PeerNode {
    pub fn new(cfg: PeerConfig) -> PeerNode {
        let sessions = Sessions::new(cfg.sessions.clone());
        PeerNode {
            router: super::api::router(),
            cfg,
            out: VecDeque::new(),
            timers: Timers::default(),
            rng: fastrand::Rng::with_seed(0),
            state: State::new(),
            inbox: Inbox::new(),
            ready: false,
            next_token: 0,
            next_seq: 0,
            commit: GroupCommit::new(LOG),
            appends: BTreeMap::new(),
            read_token: None,
            cut_token: None,
            recovered: (0, 0),
            p2p_port: 0,
            links: BTreeMap::new(),
            up: BTreeMap::new(),
            dials: BTreeMap::new(),
            backoff: BTreeMap::new(),
            listed: BTreeMap::new(),
            tracker: TrackerLink::default(),
            sessions,
            limiter: Limiter::new(5, 60, 10_000),
            subscribers: BTreeSet::new(),
            draining: false,
            stopped: false,
            failing: BTreeSet::new(),
            next_dial: 0,
        }
    }

    /// The durable state (for tests and oracles).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// This node's peer id, once it has one.
    pub fn id(&self) -> Option<&str> {
        self.state.id.as_deref()
    }

    /// Ready: the log is read and this start's incarnation is durable.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The tracker took this node's registration (and no heartbeat failed since).
    pub fn registered(&self) -> bool {
        self.tracker.registered
    }

    /// The tracker's last list, as this node saw it: id → address.
    pub fn listed(&self) -> &BTreeMap<String, SocketAddr> {
        &self.listed
    }

    /// Peers with a live link, and its connection.
    pub fn linked(&self) -> impl Iterator<Item = (&str, ConnId)> {
        self.up.iter().map(|(p, c)| (p.as_str(), *c))
    }

    pub(super) fn token(&mut self) -> Token {
        self.next_token += 1;
        self.next_token
    }

    pub(super) fn event(&mut self, e: PeerEvent) {
        self.out.push_back(NodeOutput::Event(e));
    }

    pub(super) fn tell(&mut self, conn: ConnId, msg: Down) {
        self.out.push_back(NodeOutput::ToConn { conn, msg });
    }

    pub(super) fn reply(&mut self, conn: ConnId, msg: AppReply) {
        self.tell(conn, Down::Ui(msg));
    }

    fn send_frame(&mut self, conn: ConnId, frame: Frame) {
        self.tell(conn, Down::Link(LinkCmd::Send(frame)));
    }

    pub(super) fn now_ms(now: Now) -> u64 {
        now.wall.0.saturating_mul(1000)
    }

    /// A wait of `base` doubled per failure up to `max`, between half and all of it.
    fn backoff_delay(&mut self, failures: u32, base: Duration, max: Duration) -> Duration {
        let full = base
            .saturating_mul(1 << failures.min(16))
            .min(max)
            .as_micros() as u64;
        Duration::from_micros(self.rng.u64(full / 2..=full.max(1)))
    }

    // ----- the log -----

    pub(super) fn append(&mut self, record: PeerRecord, then: Then) {
        let token = self.token();
        let payload = serde_json::to_vec(&record).unwrap_or_default();
        let mut bytes = Vec::with_capacity(payload.len() + record::HEADER);
        record::encode(&payload, &mut bytes);
        self.appends.insert(token, (record, then));
        self.out.push_back(NodeOutput::Log {
            token,
            op: LogOp::Append {
                log: LOG.into(),
                bytes,
            },
        });
        if let Some(op) = self.commit.commit(token) {
            self.out.push_back(NodeOutput::Log { token: 0, op });
        }
    }

    /// Fail-stop (module docs).
    fn log_failed(&mut self, what: &str) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let reason =
            format!("the log failed ({what}); stopping so that a restart reads what it holds");
        self.event(PeerEvent::LogFailed(reason.clone()));
        self.out.push_back(NodeOutput::Exit { reason });
    }

    fn on_contents(&mut self, now: Now, bytes: &[u8], entropy: &mut dyn Entropy) {
        let scan = record::scan(bytes, MAX_RECORD);
        let mut records = 0;
        let mut valid_len = scan.valid_len;
        for range in &scan.records {
            match serde_json::from_slice::<PeerRecord>(&bytes[range.clone()]) {
                Ok(r) if !self.state.follows(&r) => {
                    // After a hole: the log ends before it.
                    valid_len = range.start - record::HEADER;
                    break;
                }
                Ok(r) => {
                    self.state.apply(&r);
                    // Durable, though perhaps never answered (a crash, or a failed log, between
                    // its sync and the answer): it counts all the same.
                    match &r {
                        PeerRecord::Sent { id, kind, to, .. } => self.event(PeerEvent::Replayed {
                            id: *id,
                            kind: *kind,
                            to: to.clone(),
                        }),
                        PeerRecord::Received { from, id, .. } => self.event(PeerEvent::Recalled {
                            from: from.clone(),
                            id: *id,
                        }),
                        PeerRecord::Failed { to, id } => self.event(PeerEvent::Failed {
                            to: to.clone(),
                            id: *id,
                        }),
                        _ => {}
                    }
                    records += 1;
                }
                Err(_) => {
                    // A record that checks out but does not parse: a log written by a newer
                    // version, or damage the checksum missed. The log ends before it.
                    valid_len = range.start - record::HEADER;
                    break;
                }
            }
        }
        let cut = (bytes.len() - valid_len) as u64;
        self.recovered = (records, cut);
        if cut > 0 {
            let token = self.token();
            self.cut_token = Some(token);
            self.out.push_back(NodeOutput::Log {
                token,
                op: LogOp::Truncate {
                    log: LOG.into(),
                    len: valid_len as u64,
                },
            });
        } else {
            self.begin(now, entropy);
        }
    }

    /// After the log is read (and cut): this start's identity and incarnation.
    fn begin(&mut self, _now: Now, entropy: &mut dyn Entropy) {
        for (peer, mark) in self.state.marks.clone() {
            self.inbox.set_mark(&peer, mark);
        }
        if self.state.id.is_none() {
            let mut raw = [0u8; 8];
            entropy.fill(&mut raw);
            let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            self.append(PeerRecord::Identity { id }, Then::Nothing);
        }
        let inc = self.state.incarnation + 1;
        self.append(PeerRecord::Incarnation { inc }, Then::Ready);
    }

    fn log_reply(&mut self, now: Now, token: Token, reply: LogReply, entropy: &mut dyn Entropy) {
        if Some(token) == self.read_token {
            self.read_token = None;
            return match reply {
                LogReply::Contents(Ok(bytes)) => self.on_contents(now, &bytes, entropy),
                LogReply::Contents(Err(crate::node::FsError::NotFound)) => {
                    self.on_contents(now, &[], entropy)
                }
                _ => self.log_failed("reading it"),
            };
        }
        if Some(token) == self.cut_token {
            self.cut_token = None;
            return match reply {
                LogReply::Truncated(Ok(())) => self.begin(now, entropy),
                _ => self.log_failed("cutting its torn tail"),
            };
        }
        match reply {
            LogReply::Appended(result) => {
                if result.is_err() {
                    return self.log_failed("an append");
                }
                self.commit.appended(token, result);
            }
            LogReply::Synced(result) => {
                if result.is_err() {
                    return self.log_failed("a sync");
                }
                let (settled, next) = self.commit.synced(result);
                if let Some(op) = next {
                    self.out.push_back(NodeOutput::Log { token: 0, op });
                }
                for (t, r) in settled {
                    if r.is_err() {
                        return self.log_failed("an append");
                    }
                    if let Some((rec, then)) = self.appends.remove(&t) {
                        self.committed(now, rec, then);
                    }
                }
            }
            _ => {}
        }
    }

    /// A record is durable: it becomes state, and what waited on it is answered.
    fn committed(&mut self, now: Now, rec: PeerRecord, then: Then) {
        let change = self.state.apply(&rec);
        match (&rec, then) {
            (PeerRecord::Incarnation { inc }, Then::Ready) => {
                self.ready = true;
                self.next_seq = 0;
                let (records, cut) = self.recovered;
                let id = self.state.id.clone().unwrap_or_default();
                self.event(PeerEvent::Ready {
                    id,
                    incarnation: *inc,
                    records,
                    cut,
                });
                if self.p2p_port != 0 {
                    self.register();
                }
                self.expire(now);
            }
            (PeerRecord::Sent { id, kind, to, .. }, Then::Sent(conn)) => {
                self.event(PeerEvent::Sent {
                    id: *id,
                    kind: *kind,
                    to: to.clone(),
                });
                if let Change::Entry(i) = change {
                    let json = self.state.entry_json(&self.state.entries[i]);
                    if let Some(conn) = conn {
                        let created = crate::http::Status(201);
                        self.reply(
                            conn,
                            crate::web::reply::json(created, &[], json.to_string()),
                        );
                    }
                    self.publish("message", json.to_string());
                }
                for peer in to.clone() {
                    let fate = self
                        .state
                        .sent_entry(*id)
                        .and_then(|e| e.fates.get(&peer).copied());
                    if fate == Some(Fate::Failed) {
                        self.event(PeerEvent::Failed {
                            to: peer.clone(),
                            id: *id,
                        });
                    }
                    self.flush(&peer);
                }
                self.expire(now);
            }
            (
                PeerRecord::Received {
                    from,
                    id,
                    kind,
                    hole,
                    ..
                },
                Then::Taken(peer),
            ) => {
                self.event(PeerEvent::Taken {
                    from: from.clone(),
                    id: *id,
                    kind: *kind,
                    hole: *hole,
                });
                if let Change::Entry(i) = change {
                    let json = self.state.entry_json(&self.state.entries[i]);
                    self.publish("message", json.to_string());
                }
                // Its unread count changed.
                self.publish_peers();
                self.ack(&peer);
            }
            (PeerRecord::Failed { to, id }, Then::Failed) => {
                self.failing.remove(&(to.clone(), *id));
                if let Change::Fates { .. } = change {
                    self.event(PeerEvent::Failed {
                        to: to.clone(),
                        id: *id,
                    });
                    let status =
                        serde_json::json!({ "id": id.to_string(), "peer": to, "fate": "failed" });
                    self.publish("status", status.to_string());
                }
                self.flush(&to.clone());
            }
            (PeerRecord::Skipped { from, through, .. }, Then::Taken(peer)) => {
                self.event(PeerEvent::Skipped {
                    from: from.clone(),
                    through: *through,
                });
                self.ack(&peer);
            }
            _ => {}
        }
    }

    /// Tells `peer` the last entry durably taken from it.
    fn ack(&mut self, peer: &str) {
        let id = self.state.marks.get(peer).copied().unwrap_or(MsgId::NONE);
        if let Some(&conn) = self.up.get(peer) {
            self.send_frame(conn, Frame::Ack { id });
        }
    }

    // ----- sending -----

    /// Mints the next id (only once ready: the incarnation is durable).
    pub(super) fn mint(&mut self) -> MsgId {
        self.next_seq += 1;
        MsgId {
            inc: self.state.incarnation,
            seq: self.next_seq,
        }
    }

    /// Writes what `peer`'s chain has unsent, if its link is synced.
    fn flush(&mut self, peer: &str) {
        let Some(&conn) = self.up.get(peer) else {
            return;
        };
        if !self.links.get(&conn).is_some_and(|l| l.synced) {
            return;
        }
        for f in self.state.outbox.unsent(peer) {
            self.send_frame(conn, f);
        }
    }

    /// Writes the failure of what expired (module docs: applied once durable), and re-arms
    /// the timer for the next expiry.
    fn expire(&mut self, now: Now) {
        for (to, id) in self.state.outbox.expired(Self::now_ms(now)) {
            if self.failing.insert((to.clone(), id)) {
                self.append(PeerRecord::Failed { to, id }, Then::Failed);
            }
        }
        match self.state.outbox.next_expiry_after(Self::now_ms(now)) {
            Some(at_ms) => {
                let wait = Duration::from_millis(at_ms.saturating_sub(Self::now_ms(now)));
                self.timers.set(Timer::Expire, now.mono + wait);
            }
            None => {
                self.timers.cancel(&Timer::Expire);
            }
        }
    }

    /// Settles what `to` acknowledged.
    fn on_ack(&mut self, to: &str, upto: MsgId) {
        let rec = PeerRecord::Delivered {
            to: to.to_string(),
            upto,
        };
        if let Change::Fates { ids, .. } = self.state.apply(&rec) {
            for id in ids {
                self.event(PeerEvent::Delivered {
                    to: to.to_string(),
                    id,
                });
                let status =
                    serde_json::json!({ "id": id.to_string(), "peer": to, "fate": "delivered" });
                self.publish("status", status.to_string());
            }
            self.append(rec, Then::Nothing);
        }
    }

    // ----- links -----

    /// This node's `Hello` on a link it dialed as number `dial` (0: a link it accepted).
    fn hello(&self, dial: u64) -> Frame {
        Frame::Hello(Hello {
            id: self.state.id.clone().unwrap_or_default(),
            name: self.cfg.user.clone(),
            incarnation: self.state.incarnation,
            port: self.p2p_port,
            dial,
        })
    }

    /// Dials `addr` (for `want`, if known), answering `waiters` once it is up or failed.
    pub(super) fn dial(
        &mut self,
        now: Now,
        want: Option<String>,
        addr: SocketAddr,
        waiters: Vec<ConnId>,
    ) {
        let token = self.token();
        if let Some(p) = &want {
            let (fails, _) = self.backoff.get(p).copied().unwrap_or((0, now.mono));
            self.backoff.insert(p.clone(), (fails, Instant::MAX));
        }
        self.dials.insert(
            token,
            Dial {
                want,
                addr,
                waiters,
            },
        );
        self.out.push_back(NodeOutput::Connect {
            token,
            addr,
            timeout: self.cfg.connect_timeout,
            spawn: Spawn::Link(self.cfg.link.clone()),
        });
    }

    /// Where `peer` can be dialed: the tracker's list, else where it was last reached.
    pub(super) fn addr_of(&self, peer: &str) -> Option<SocketAddr> {
        self.listed.get(peer).copied().or_else(|| {
            self.state
                .peers
                .get(peer)
                .and_then(|k| k.addr.as_deref())
                .and_then(|a| a.parse().ok())
        })
    }

    /// A dial failed (or its link ended before its handshake): back off.
    fn dial_failed(&mut self, now: Now, want: Option<String>) {
        if let Some(p) = want {
            let fails = self.backoff.get(&p).map_or(0, |b| b.0) + 1;
            let wait = self.backoff_delay(fails - 1, REDIAL, REDIAL_MAX);
            self.backoff.insert(p, (fails, now.mono + wait));
        }
    }

    /// Dials every peer the outbox waits on that has no link and may be dialed now.
    fn maintain(&mut self, now: Now) {
        if !self.ready || self.draining || self.p2p_port == 0 {
            return;
        }
        let waiting: Vec<String> = self.state.outbox.recipients().map(str::to_string).collect();
        let mut next: Option<Instant> = None;
        for p in waiting {
            if self.up.contains_key(&p) {
                continue;
            }
            let not_before = self.backoff.get(&p).map_or(Instant::ZERO, |b| b.1);
            if not_before == Instant::MAX {
                continue; // a dial is in flight
            }
            if not_before > now.mono {
                next = Some(next.map_or(not_before, |n: Instant| n.min(not_before)));
                continue;
            }
            if let Some(addr) = self.addr_of(&p) {
                self.dial(now, Some(p), addr, Vec::new());
            }
        }
        match next {
            Some(at) => self.timers.set(Timer::Redial, at),
            None => {
                self.timers.cancel(&Timer::Redial);
            }
        }
    }

    fn on_link(&mut self, now: Now, conn: ConnId, ev: LinkEvent) {
        match ev {
            LinkEvent::Opened => {
                // A dialed link's `Connected` comes before its first message (both drivers
                // deliver it first), so its number is known here.
                let dial = self.links.entry(conn).or_default().dial;
                if self.ready && !self.draining {
                    let hello = self.hello(dial);
                    self.send_frame(conn, hello);
                } else {
                    self.tell(conn, Down::Link(LinkCmd::Close("not ready".into())));
                }
            }
            LinkEvent::Frame(Frame::Hello(h)) => self.on_hello(now, conn, h),
            LinkEvent::Frame(frame) => {
                let Some(peer) = self
                    .links
                    .get(&conn)
                    .filter(|l| l.live)
                    .and_then(|l| l.peer.clone())
                else {
                    return;
                };
                self.on_frame(now, conn, &peer, frame);
            }
            LinkEvent::Failed(why) => self.link_gone(now, conn, why),
        }
    }

    fn on_hello(&mut self, now: Now, conn: ConnId, h: Hello) {
        let me = self.state.id.clone().unwrap_or_default();
        let link = self.links.entry(conn).or_default().clone();
        let refuse = if h.id == me {
            Some("that address is this peer itself".to_string())
        } else if !tracker::id_ok(&h.id) || h.name.is_empty() {
            Some("a Hello without a valid peer id or name".to_string())
        } else if !self.state.peers.contains_key(&h.id)
            && self.state.peers.len() >= super::history::MAX_PEERS
        {
            // Every peer met costs a mark and a directory entry: a limit on both.
            Some("this peer knows too many peers already".to_string())
        } else if link.want.as_ref().is_some_and(|w| *w != h.id) {
            Some(format!(
                "expected peer {} but {} answered",
                link.want.clone().unwrap_or_default(),
                h.id
            ))
        } else {
            None
        };
        if let Some(why) = refuse {
            self.tell(conn, Down::Link(LinkCmd::Close(why.clone())));
            return self.link_gone(now, conn, why);
        }
        // One link per pair (module docs).
        if let Some(&other) = self.up.get(&h.id) {
            if other != conn {
                let o = self.links.get(&other).cloned().unwrap_or_default();
                let new_dial = if link.dialed { link.dial } else { h.dial };
                let keep_new = if o.incarnation != h.incarnation {
                    h.incarnation > o.incarnation
                } else if o.dialed != link.dialed {
                    let new_dialer = if link.dialed {
                        me.as_str()
                    } else {
                        h.id.as_str()
                    };
                    new_dialer == me.as_str().min(h.id.as_str())
                } else {
                    // Both dialed by the same side: the later dial, by the dialer's number,
                    // which both ends read alike (the order Hellos arrive in may differ).
                    new_dial > o.dial
                };
                let (kept, closed) = if keep_new {
                    (conn, other)
                } else {
                    (other, conn)
                };
                self.event(PeerEvent::DuplicateLink {
                    peer: h.id.clone(),
                    kept,
                    closed,
                    kept_newer: keep_new,
                    crossed: o.incarnation == h.incarnation && o.dialed != link.dialed,
                });
                if keep_new {
                    if let Some(l) = self.links.get_mut(&other) {
                        l.live = false;
                        l.peer = None;
                    }
                    self.tell(
                        other,
                        Down::Link(LinkCmd::Close(
                            "a newer link to this peer replaces it".into(),
                        )),
                    );
                    self.up.remove(&h.id);
                    self.state.outbox.link_down(&h.id);
                } else {
                    let waiters = self
                        .links
                        .get_mut(&conn)
                        .map(|l| std::mem::take(&mut l.waiters))
                        .unwrap_or_default();
                    self.links.remove(&conn);
                    self.tell(conn, Down::Link(LinkCmd::Close("duplicate link".into())));
                    for w in waiters {
                        self.connected_reply(w, &h.id);
                    }
                    return;
                }
            }
        }
        let Some(l) = self.links.get_mut(&conn) else {
            return;
        };
        l.peer = Some(h.id.clone());
        l.incarnation = h.incarnation;
        l.live = true;
        if !l.dialed {
            l.dial = h.dial;
        }
        let waiters = std::mem::take(&mut l.waiters);
        let dialed_addr = l.addr.filter(|_| l.dialed);
        self.up.insert(h.id.clone(), conn);
        self.backoff.remove(&h.id);
        // Remember who it is (and where it listens, when this side dialed it).
        let addr = dialed_addr
            .map(|a| SocketAddr::new(a.ip(), h.port).to_string())
            .or_else(|| self.state.peers.get(&h.id).and_then(|k| k.addr.clone()));
        let known = self.state.peers.get(&h.id);
        if known.is_none_or(|k| k.name != h.name || k.addr != addr) {
            let rec = PeerRecord::Peer {
                id: h.id.clone(),
                name: h.name.clone(),
                addr,
            };
            self.state.apply(&rec);
            self.append(rec, Then::Nothing);
        }
        let have = self.state.marks.get(&h.id).copied().unwrap_or(MsgId::NONE);
        self.send_frame(conn, Frame::Sync { have });
        self.event(PeerEvent::LinkUp {
            peer: h.id.clone(),
            name: h.name.clone(),
        });
        for w in waiters {
            self.connected_reply(w, &h.id);
        }
        self.publish_peers();
    }

    fn on_frame(&mut self, now: Now, _conn: ConnId, peer: &str, frame: Frame) {
        match frame {
            Frame::Sync { have } => {
                if let Some(l) = self.up.get(peer).and_then(|c| self.links.get_mut(c)) {
                    l.synced = true;
                }
                // The sync point settles what it covers first, so their fates change.
                self.on_ack(peer, have);
                let (_, frames) = self.state.outbox.link_up(peer, have);
                if let Some(&conn) = self.up.get(peer) {
                    for f in frames {
                        self.send_frame(conn, f);
                    }
                }
            }
            Frame::Ack { id } => self.on_ack(peer, id),
            Frame::Msg {
                id,
                prev,
                kind,
                sent_ms,
                text,
            } => match self.inbox.take_msg(peer, id, prev) {
                Taken::Duplicate => self.ack(peer),
                taken => {
                    let rec = PeerRecord::Received {
                        from: peer.to_string(),
                        id,
                        prev,
                        kind,
                        sent_ms,
                        text,
                        at_ms: Self::now_ms(now),
                        hole: taken == Taken::Hole,
                    };
                    self.append(rec, Then::Taken(peer.to_string()));
                }
            },
            Frame::Gone { prev, through } => match self.inbox.take_gone(peer, prev, through) {
                Taken::Duplicate => self.ack(peer),
                _ => {
                    let rec = PeerRecord::Skipped {
                        from: peer.to_string(),
                        prev,
                        through,
                    };
                    self.append(rec, Then::Taken(peer.to_string()));
                }
            },
            Frame::Hello(_) | Frame::Ping { .. } | Frame::Pong { .. } | Frame::Bye { .. } => {}
        }
    }

    /// A link ended (or was refused): forget it, and dial again if messages wait.
    fn link_gone(&mut self, now: Now, conn: ConnId, why: String) {
        let Some(link) = self.links.remove(&conn) else {
            return;
        };
        for w in link.waiters {
            self.reply(
                w,
                crate::web::reply::error(502, &format!("could not connect: {why}")),
            );
        }
        match link.peer.filter(|_| link.live) {
            Some(p) if self.up.get(&p) == Some(&conn) => {
                self.up.remove(&p);
                self.state.outbox.link_down(&p);
                self.event(PeerEvent::LinkDown {
                    peer: p.clone(),
                    why,
                });
                self.dial_failed(now, Some(p));
                self.publish_peers();
            }
            _ => {
                // (A link closed because another to the same peer was kept failed nothing.)
                let linked = link.want.as_ref().is_some_and(|w| self.up.contains_key(w));
                if link.dialed && !linked {
                    self.dial_failed(now, link.want);
                }
            }
        }
    }

    pub(super) fn connected_reply(&mut self, conn: ConnId, peer: &str) {
        let body = serde_json::json!({
            "status": "ok",
            "peer": peer,
            "name": self.state.name_of(peer),
        });
        self.reply(
            conn,
            crate::web::reply::json(crate::http::Status::OK, &[], body.to_string()),
        );
    }

    // ----- the tracker -----

    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.cfg.user, self.cfg.password);
        format!("Basic {}", crate::web::base64::encode(raw.as_bytes()))
    }

    /// A request to the tracker (the chat server), with the account's credentials.
    pub(super) fn tracker_fetch(
        &mut self,
        method: Method,
        target: &str,
        body: Option<String>,
        what: For,
    ) {
        let mut headers = vec![
            ("Host".to_string(), self.cfg.tracker_host.clone()),
            ("Authorization".to_string(), self.basic()),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        if body.is_some() {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        let fetch = Fetch {
            method,
            target: target.to_string(),
            headers,
            body: body.map(String::into_bytes).unwrap_or_default(),
        };
        self.tracker.queue.push_back((fetch, what));
        self.tracker_pump();
    }

    fn tracker_pump(&mut self) {
        match self.tracker.conn {
            Some(conn) => {
                while let Some((fetch, what)) = self.tracker.queue.pop_front() {
                    self.tracker.asked.push_back(what);
                    self.tell(conn, Down::Fetch(fetch));
                }
            }
            None if self.tracker.dialing.is_none() && !self.tracker.queue.is_empty() => {
                let token = self.token();
                self.tracker.dialing = Some(token);
                self.out.push_back(NodeOutput::Connect {
                    token,
                    addr: self.cfg.tracker,
                    timeout: self.cfg.connect_timeout,
                    spawn: Spawn::Fetch(self.cfg.fetch.clone()),
                });
            }
            None => {}
        }
    }

    fn register(&mut self) {
        let mut body = serde_json::json!({
            "name": self.cfg.user,
            "port": self.p2p_port,
            "id": self.state.id.clone().unwrap_or_default(),
        });
        if let Some(ip) = self.cfg.announce_ip {
            body["ip"] = ip.to_string().into();
        }
        self.tracker_fetch(
            Method::Post,
            "/submit-info",
            Some(body.to_string()),
            For::Register,
        );
    }

    /// The tracker could not be reached or refused: register again after a backoff.
    fn tracker_failed(&mut self, now: Now, why: String) {
        self.tracker.registered = false;
        self.tracker.failures += 1;
        if self.tracker.trouble.as_deref() != Some(why.as_str()) {
            self.event(PeerEvent::TrackerTrouble(why.clone()));
        }
        self.tracker.trouble = Some(why);
        self.timers.cancel(&Timer::TrackerHeartbeat);
        if !self.draining {
            let wait =
                self.backoff_delay(self.tracker.failures - 1, TRACKER_RETRY, TRACKER_RETRY_MAX);
            self.timers.set(Timer::TrackerRetry, now.mono + wait);
        }
        self.publish_peers();
    }

    fn on_fetched(&mut self, now: Now, what: For, fetched: Fetched) {
        let (status, body) = match fetched {
            Fetched::Response { status, body, .. } => (status, body),
            Fetched::Failed(why) => {
                return match what {
                    For::Relay(conn) => self.reply(
                        conn,
                        crate::web::reply::error(
                            502,
                            &format!("the chat server did not answer: {why}"),
                        ),
                    ),
                    For::Leave => {}
                    _ => self.tracker_failed(now, format!("the tracker did not answer: {why}")),
                };
            }
            Fetched::Closed => return,
        };
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match what {
            For::Register if status == 200 || status == 201 => {
                let interval = json["interval_ms"]
                    .as_u64()
                    .filter(|&ms| ms > 0)
                    .map_or(DEFAULT_INTERVAL, Duration::from_millis);
                self.tracker.interval = Some(interval);
                self.tracker.registered = true;
                self.tracker.failures = 0;
                self.tracker.trouble = None;
                self.timers.cancel(&Timer::TrackerRetry);
                self.timers
                    .set(Timer::TrackerHeartbeat, now.mono + interval);
                self.event(PeerEvent::Registered {
                    interval_ms: interval.as_millis() as u64,
                });
                self.tracker_fetch(Method::Get, "/get-list", None, For::List);
            }
            For::Heartbeat if status == 200 => {}
            For::Heartbeat if status == 404 => {
                self.tracker.registered = false;
                self.event(PeerEvent::Forgotten);
                self.register();
            }
            For::List if status == 200 => self.on_list(now, &json),
            For::Relay(conn) => {
                let reply = crate::web::reply::json(
                    crate::http::Status(status),
                    &[],
                    String::from_utf8_lossy(&body).into_owned(),
                );
                self.reply(conn, reply);
            }
            For::Leave => {}
            _ => {
                let msg = json["message"].as_str().unwrap_or("");
                self.tracker_failed(now, format!("the tracker answered {status} {msg}"));
            }
        }
    }

    fn on_list(&mut self, now: Now, json: &serde_json::Value) {
        let me = self.state.id.clone().unwrap_or_default();
        let mut listed = BTreeMap::new();
        for p in json["peers"].as_array().map_or(&[][..], Vec::as_slice) {
            let (Some(id), Some(name), Some(ip), Some(port)) = (
                p["id"].as_str(),
                p["name"].as_str(),
                p["ip"].as_str().and_then(|i| i.parse::<IpAddr>().ok()),
                p["port"].as_u64().and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            if id == me || !tracker::id_ok(id) || listed.len() >= super::history::MAX_PEERS {
                continue;
            }
            let addr = SocketAddr::new(ip, port);
            listed.insert(id.to_string(), addr);
            let known = self.state.peers.get(id);
            let addr_text = Some(addr.to_string());
            if known.is_none_or(|k| k.name != name || k.addr != addr_text) {
                let rec = PeerRecord::Peer {
                    id: id.to_string(),
                    name: name.to_string(),
                    addr: addr_text,
                };
                self.state.apply(&rec);
                self.append(rec, Then::Nothing);
            }
        }
        if listed != self.listed {
            self.listed = listed;
            self.publish_peers();
        }
        self.maintain(now);
    }

    fn on_tracker_closed(&mut self, now: Now) {
        self.tracker.conn = None;
        let asked = std::mem::take(&mut self.tracker.asked);
        for what in asked {
            self.on_fetched(now, what, Fetched::Failed("the connection closed".into()));
        }
        self.tracker_pump();
    }

    // ----- observers -----

    /// An event to every open event stream.
    pub(super) fn publish(&mut self, event: &str, data: String) {
        let mut bytes = Vec::new();
        crate::web::sse::Event {
            id: None,
            event: Some(event.into()),
            data,
        }
        .encode(&mut bytes);
        let subs: Vec<ConnId> = self.subscribers.iter().copied().collect();
        for conn in subs {
            self.reply(conn, AppReply::StreamData(bytes.clone()));
        }
    }

    pub(super) fn publish_peers(&mut self) {
        if self.subscribers.is_empty() {
            return;
        }
        let list = self.peers_json();
        self.publish("peers", list.to_string());
    }

    /// Every peer known, listed or linked: `{id, name, addr, listed, online, waiting, unread}`.
    pub(super) fn peers_json(&self) -> serde_json::Value {
        let mut ids: BTreeSet<&String> = self.state.peers.keys().collect();
        ids.extend(self.listed.keys());
        ids.extend(self.up.keys());
        let peers: Vec<serde_json::Value> = ids
            .into_iter()
            .map(|id| {
                let conv = super::history::conversation(Kind::Direct, id);
                serde_json::json!({
                    "id": id,
                    "name": self.state.name_of(id),
                    "addr": self.addr_of(id).map(|a| a.to_string()),
                    "listed": self.listed.contains_key(id),
                    "online": self.up.contains_key(id),
                    "waiting": self.state.outbox.waiting_ids(id).len(),
                    "unread": self.state.unread(&conv),
                })
            })
            .collect();
        serde_json::json!({
            "me": {
                "id": self.state.id,
                "name": self.cfg.user,
                "p2p_port": self.p2p_port,
                "registered": self.tracker.registered,
                "trouble": self.tracker.trouble,
            },
            "peers": peers,
            "broadcast_unread": self.state.unread("broadcast"),
        })
    }

    fn drain(&mut self) {
        self.draining = true;
        self.event(PeerEvent::Draining);
        if self.tracker.registered {
            self.tracker_fetch(Method::Post, "/remove-list", Some("{}".into()), For::Leave);
        }
        let links: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in links {
            self.tell(conn, Down::Link(LinkCmd::Close("shutting down".into())));
        }
        let subs: Vec<ConnId> = std::mem::take(&mut self.subscribers).into_iter().collect();
        for conn in subs {
            self.reply(conn, AppReply::StreamEnd);
        }
        self.timers.cancel(&Timer::TrackerHeartbeat);
        self.timers.cancel(&Timer::TrackerRetry);
        self.timers.cancel(&Timer::Redial);
    }

    /// Requests this node sends its outbox's peers, for tests: how many entries wait.
    pub fn waiting_for(&self, peer: &str) -> usize {
        self.state.outbox.waiting(peer)
    }

    /// Whether the chain to `peer` can take one more message.
    pub(super) fn room_for(&self, peer: &str) -> bool {
        self.state.outbox.waiting(peer) < MAX_CHAIN
    }
}

impl NodeMachine for PeerNode {
    type Conn = PeerConn;
    type Spawn = Spawn;
    type Job = std::convert::Infallible;
    type JobDone = std::convert::Infallible;
    type Command = PeerCommand;
    type Event = PeerEvent;

    const SCOPE: Scope = Scope::Process;

    fn spawn(spawn: &Spawn, now: Now, conn: NewConn) -> PeerConn {
        PeerConn::spawn(spawn, now, conn)
    }

    fn run_job(job: Self::Job) -> Self::JobDone {
        match job {}
    }

    fn handle(&mut self, now: Now, input: NodeInput<Self>, entropy: &mut dyn Entropy) {
        if self.stopped {
            return;
        }
        match input {
            NodeInput::Start => {
                let mut seed = [0u8; 8];
                entropy.fill(&mut seed);
                self.rng = fastrand::Rng::with_seed(u64::from_le_bytes(seed));
                self.out.push_back(NodeOutput::Listen {
                    listener: 0,
                    addr: self.cfg.ui_addr,
                    spawn: Spawn::Ui(self.cfg.site.clone()),
                });
                // Links that come before the node is ready are told so and closed.
                self.out.push_back(NodeOutput::Listen {
                    listener: 1,
                    addr: self.cfg.p2p_addr,
                    spawn: Spawn::Link(self.cfg.link.clone()),
                });
                let token = self.token();
                self.read_token = Some(token);
                self.out.push_back(NodeOutput::Log {
                    token,
                    op: LogOp::Read { log: LOG.into() },
                });
            }
            NodeInput::Listening { listener, result } => match (listener, result) {
                (0, Ok(addr)) => self.event(PeerEvent::Listening(addr)),
                (_, Ok(addr)) => {
                    self.p2p_port = addr.port();
                    self.event(PeerEvent::P2pListening(addr));
                    if self.ready {
                        self.register();
                    }
                }
                (l, Err(e)) => {
                    let which = if l == 0 {
                        self.cfg.ui_addr
                    } else {
                        self.cfg.p2p_addr
                    };
                    self.stopped = true;
                    self.out.push_back(NodeOutput::Exit {
                        reason: format!("cannot listen on {which}: {}", e.0),
                    });
                    return;
                }
            },
            NodeInput::FromConn { conn, msg } => match msg {
                Up::Ui(req) => self.on_request(now, conn, req, entropy),
                Up::Link(ev) => self.on_link(now, conn, ev),
                Up::Fetch(f) => {
                    if self.tracker.conn == Some(conn) {
                        if f == Fetched::Closed {
                            self.on_tracker_closed(now);
                        } else if let Some(what) = self.tracker.asked.pop_front() {
                            self.on_fetched(now, what, f);
                        }
                    }
                }
            },
            NodeInput::Closed { conn } => {
                if self.tracker.conn == Some(conn) {
                    self.on_tracker_closed(now);
                } else if self.links.contains_key(&conn) {
                    self.link_gone(now, conn, "the link closed".into());
                } else if self.subscribers.remove(&conn) {
                    // An event stream ended.
                }
            }
            NodeInput::Connected { token, conn } => {
                if self.tracker.dialing == Some(token) {
                    self.tracker.dialing = None;
                    self.tracker.conn = Some(conn);
                    self.tracker_pump();
                } else if let Some(d) = self.dials.remove(&token) {
                    self.next_dial += 1;
                    let dial = self.next_dial;
                    let l = self.links.entry(conn).or_default();
                    l.dialed = true;
                    l.dial = dial;
                    l.want = d.want;
                    l.addr = Some(d.addr);
                    l.waiters.extend(d.waiters);
                }
            }
            NodeInput::ConnectFailed { token, error } => {
                if self.tracker.dialing == Some(token) {
                    self.tracker.dialing = None;
                    let queued: Vec<For> = self.tracker.queue.drain(..).map(|(_, w)| w).collect();
                    for what in queued {
                        self.on_fetched(
                            now,
                            what,
                            Fetched::Failed(format!("cannot connect: {error:?}")),
                        );
                    }
                } else if let Some(d) = self.dials.remove(&token) {
                    let (status, text) = match error {
                        crate::node::machine::ConnectError::TimedOut => (504, "timed out"),
                        crate::node::machine::ConnectError::Refused => (502, "refused"),
                        crate::node::machine::ConnectError::Other => (502, "failed"),
                    };
                    for w in d.waiters {
                        let msg = format!("could not connect to {}: {text}", d.addr);
                        self.reply(w, crate::web::reply::error(status, &msg));
                    }
                    self.dial_failed(now, d.want);
                }
            }
            NodeInput::Log { token, reply } => self.log_reply(now, token, reply, entropy),
            NodeInput::JobDone { done, .. } => match done {},
            NodeInput::Timeout => {
                while let Some(t) = self.timers.pop_due(now.mono) {
                    match t {
                        Timer::Expire => self.expire(now),
                        Timer::Redial => {}
                        Timer::TrackerRetry => self.register(),
                        Timer::TrackerHeartbeat => {
                            let interval = self.tracker.interval.unwrap_or(DEFAULT_INTERVAL);
                            self.timers
                                .set(Timer::TrackerHeartbeat, now.mono + interval);
                            self.tracker_fetch(
                                Method::Post,
                                "/add-list",
                                Some("{}".into()),
                                For::Heartbeat,
                            );
                            self.tracker_fetch(Method::Get, "/get-list", None, For::List);
                        }
                        Timer::SseHeartbeat => {
                            let mut ping = Vec::new();
                            crate::web::sse::comment("", &mut ping);
                            let subs: Vec<ConnId> = self.subscribers.iter().copied().collect();
                            for conn in subs {
                                self.reply(conn, AppReply::StreamData(ping.clone()));
                            }
                        }
                    }
                }
            }
            NodeInput::Command(cmd) => {
                let (kind, peer, text) = match &cmd {
                    PeerCommand::Send { peer, text } => (Kind::Direct, Some(peer.as_str()), text),
                    PeerCommand::Broadcast { text } => (Kind::Broadcast, None, text),
                };
                if let Err((status, why)) = self.send_message(now, None, kind, peer, text) {
                    self.event(PeerEvent::Refused { status, why });
                }
            }
            NodeInput::Drain => self.drain(),
        }
        self.maintain(now);
        if self.subscribers.is_empty() {
            self.timers.cancel(&Timer::SseHeartbeat);
        } else if self.timers.get(&Timer::SseHeartbeat).is_none() {
            self.timers
                .set(Timer::SseHeartbeat, now.mono + SSE_HEARTBEAT);
        }
    }

    fn poll_output(&mut self) -> NodeOutput<Self> {
        self.out.pop_front().unwrap_or(NodeOutput::Wait {
            deadline: if self.stopped {
                None
            } else {
                self.timers.next()
            },
        })
    }

    fn notice(event: &PeerEvent) -> Option<String> {
        match event {
            PeerEvent::Ready {
                id,
                incarnation,
                records,
                cut,
            } => Some(format!(
                "peer {id}, start {incarnation}: read {records} records{}",
                if *cut > 0 {
                    format!(", cut {cut} bytes of a torn tail")
                } else {
                    String::new()
                }
            )),
            PeerEvent::Registered { interval_ms } => Some(format!(
                "registered with the tracker; heartbeat every {interval_ms} ms"
            )),
            PeerEvent::TrackerTrouble(why) => Some(why.clone()),
            PeerEvent::LinkUp { peer, name } => Some(format!("linked to {name} ({peer})")),
            PeerEvent::LinkDown { peer, why } => Some(format!("link to {peer} ended: {why}")),
            PeerEvent::LogFailed(why) => Some(why.clone()),
            _ => None,
        }
    }

    fn check_invariants(&self) {
        self.timers.check_invariants();
        self.state.outbox.check_invariants();
        assert_eq!(
            self.commit.waiting(),
            self.appends.len(),
            "every waiting append has its record"
        );
        for (peer, conn) in &self.up {
            let l = self.links.get(conn).expect("a live link is a link");
            assert!(l.live && l.peer.as_deref() == Some(peer.as_str()));
        }
    }
}
