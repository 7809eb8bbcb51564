//! The chat server's node: accounts, sessions, channels and their messages behind the
//! WeApRous routes, on one durable log.
//!
//! Its connections are [`BackendConn`]s in app mode ([`crate::backend::app`]): they serve
//! static assets and the login page alone and hand the node every other request, body and
//! all; the node answers each with one [`AppReply`]. One node per process
//! ([`Scope::Process`]): channels must be one.
//!
//! # Routes
//! | route | what it does |
//! |---|---|
//! | `POST /login` | form or JSON `user`, `password`; a session cookie, then `303 /` for a browser or JSON |
//! | `POST /logout` | ends the session on the server; `303 /login.html` or JSON |
//! | `GET /`, `GET /index.html` | the chat page for a session, else `401` (a page linking to the login form for a browser) |
//! | `GET /channels` | `[{"name", "messages"}]` |
//! | `POST /channels` | `name`: `201` with the channel, `409` if it exists |
//! | `GET /channel/{name}/messages` | `?after=SEQ`, `?before=SEQ`, `?limit=N` (≤ [`MAX_PAGE`]) |
//! | `POST /channel/{name}/message` | `text`, optional `txn`: `201` with the message (a retried `txn` gets the original, `200`) |
//! | `GET /events` | Server-Sent Events: every new message (`?channel=` filters), resumable by `Last-Event-ID`, and who is online |
//! | `GET /me` | `{"user"}`: who the session belongs to |
//! | `POST /password` | `current`, `password` (the new one): `200`; `403` if `current` is wrong (a guess, limited as sign-ins are); every other session of the user ends, with its event streams, and verified Basic credentials are forgotten |
//! | `POST /submit-info` | `name` (the signed-in user), `port`, optional `id` and `ip`: registers (or replaces) the user's peer entry with the tracker ([`tracker`]); `201` new, `200` again |
//! | `POST /add-list` | a heartbeat: the entry lives another TTL; `404` when the tracker does not know the user (register again) |
//! | `GET /get-list` | `{"peers": [{id, name, ip, port, last_seen}], ...}`: every live peer |
//! | `POST /remove-list` | the user's peer entry goes at once (`200` whether or not it was there) |
//! | `POST /register` | `user`, `password` (8 to 256 characters): `201`, or `303 /login.html?registered=1` for a browser; `409` if taken; `403` when [`ChatConfig::registration`] is off |
//! | anything else | `GET`/`HEAD`: the static-file rules; other methods: `404` |
//!
//! Every API route needs a session cookie or `Authorization: Basic`; the author of a message is
//! the authenticated user, never a field of the body. Errors are JSON
//! `{"status":"error","message":...}` with their status; a `401` to an API client carries
//! `WWW-Authenticate: Basic`; to a browser (its `Accept` names `text/html`) a challenge of a
//! scheme browsers do not prompt for, so no password dialog opens. A change authenticated by
//! cookie whose `Origin` names another site is refused (`403`).
//!
//! # Durability
//! Every change is a record on the log [`LOG`] ([`AppRecord`], JSON in a checksummed frame,
//! [`crate::node::record`]). A change is answered only after a sync covers its record (group
//! commit), and only then does it become state: what a client was told happened survives a
//! crash. At start the node reads the log, applies every intact record and cuts a torn or
//! corrupt tail before it appends. While it does, and whenever the log has failed (an append
//! or a sync that failed leaves state the log may not hold), requests are answered `503` with
//! `Retry-After` and the node rebuilds its state from the log; it never gives the log up.
//!
//! # Presence
//! Who is online is who has an event stream open: every new stream starts with a `presence`
//! event naming them, and every stream gets one whenever the set changes. Presence events
//! carry no id (ids are message positions, what a reconnect resumes from).
//!
//! # Passwords
//! Hashing and verifying run off the loop ([`NodeOutput::Job`]) with the configured
//! [`PasswordHasher`] (argon2 in the binaries, a cheap stand-in in the simulator). An empty
//! log gets the account `admin` / `password` and an event saying to change it. Wrong passwords
//! are limited per client address and per user ([`Limiter`]: 5 at once, then one a minute),
//! answered `429` with `Retry-After`. Behind a proxy the client address is taken from
//! `X-Forwarded-For` only when the peer is one of [`ChatConfig::trusted_proxies`].
//!
//! An API client sending `Authorization: Basic` on every call would cost a hash per call, so a
//! verified header value is believed for [`BASIC_CACHE_TTL`] (60 s; at most
//! [`BASIC_CACHE_MAX`] remembered, in memory only, the oldest dropped first). A wrong password
//! is never cached: each one costs a hash and counts against the guess limits.
//!
//! # Sessions
//! A token is 256 bits of the driver's entropy, as `sid` (`HttpOnly; SameSite=Lax; Path=/`,
//! `Max-Age` the absolute lifetime); expiry and limits are [`SessionPolicy`]'s. The log holds
//! the token itself, so the data directory is as secret as the sessions it holds (the
//! binaries create it `0700`).

use super::channels::{Chat, ChatError, Message, Posted, Record};
use super::snapshot;
use super::tracker::{self, Submitted, Tracker, TrackerError, TrackerPolicy};
use crate::backend::app::{AppReply, AppRequest};
use crate::backend::{BackendConfig, BackendConn};
use crate::http::target::normalize_path;
use crate::http::{Method, Status};
use crate::node::commit::GroupCommit;
use crate::node::machine::{
    ConnId, Entropy, NewConn, NodeInput, NodeMachine, NodeOutput, Scope, Token,
};
use crate::node::record;
use crate::node::timers::Timers;
use crate::node::{LogOp, LogReply, Now};
use crate::time::Duration;
use crate::web::accounts::{
    password_ok, user_name, AccountError, AccountRecord, Accounts, PasswordHasher,
};
use crate::web::cookie::{cookie, SameSite, SetCookie};
use crate::web::form::Form;
use crate::web::limit::Limiter;
use crate::web::reply;
use crate::web::request::{client_addr, error_json, origin_allowed, wants_html};
use crate::web::router::{Lookup, Params, Router};
use crate::web::session::{new_token, Check, SessionPolicy, Sessions};
use crate::web::sse;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
// `core::net` holds address values only (no sockets).
use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The log every change goes to.
pub const LOG: &str = "chat";
/// The largest record (a message of 4,000 characters is at most 16 KB of UTF-8).
pub const MAX_RECORD: usize = 64 * 1024;
/// The most messages one history page holds.
pub const MAX_PAGE: usize = 200;
/// The most missed events a resuming stream is sent; past it the stream says `reset` and the
/// client reloads history.
pub const MAX_REPLAY: usize = 1000;
/// A comment on every idle event stream this often, so proxies keep it open.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How many tokens a sign-in draws before it gives up on a source whose draws all collide.
pub const MINT_TRIES: usize = 4;
/// The session cookie.
pub const SESSION_COOKIE: &str = "sid";
/// How long verified Basic credentials are believed without hashing them again.
pub const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);
/// The most verified Basic credentials remembered (the oldest goes first).
pub const BASIC_CACHE_MAX: usize = 1024;
/// How long to wait before retrying a log that failed.
pub const RECOVERY_RETRY: Duration = Duration::from_millis(200);
/// The longest wait between recovery attempts.
pub const RECOVERY_RETRY_MAX: Duration = Duration::from_secs(5);
pub use crate::web::reply::BROWSER_CHALLENGE;

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppRecord {
    Account(AccountRecord),
    SessionStarted {
        token: String,
        user: String,
        created: u64,
    },
    SessionEnded {
        token: String,
    },
    /// The session was used at `at` (written every [`SessionPolicy::persist_every`], so a
    /// restart loses at most that much of its idle clock).
    SessionSeen {
        token: String,
        at: u64,
    },
    Chat(Record),
    /// The first record of a snapshot's slot ([`snapshot`]).
    Begin {
        generation: u64,
    },
    /// The snapshot before it is whole.
    SnapshotEnd {
        generation: u64,
    },
    /// `user`'s password changed: every session of theirs but `kept` (the one that changed
    /// it) ends with it.
    PasswordChanged {
        user: String,
        hash: String,
        kept: Option<String>,
    },
}

/// How the chat node runs.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    pub addr: SocketAddr,
    /// What its connections serve alone; [`BackendConfig::app`] must be set.
    pub site: Arc<BackendConfig>,
    pub hasher: Arc<dyn PasswordHasher>,
    /// Peers whose `X-Forwarded-For` is believed (the proxy's address).
    pub trusted_proxies: Vec<IpAddr>,
    pub sessions: SessionPolicy,
    /// `POST /register` makes accounts (else it is 403).
    pub registration: bool,
    /// The chat API (channels, messages, event streams). Off, the node keeps accounts and
    /// sessions and protects the pages only: what the `backend` binary runs with a data
    /// directory.
    pub chat: bool,
    /// When the log is compacted by a snapshot.
    pub snapshots: snapshot::Policy,
    /// The peer tracker's heartbeat and expiry (its routes come with the chat API).
    pub tracker: TrackerPolicy,
}

impl ChatConfig {
    /// The chat server on `addr` with `site`'s static rules (app mode is set) and `hasher`:
    /// no trusted proxy, the default session policy and snapshots, registration and the chat
    /// API on.
    pub fn new(addr: SocketAddr, mut site: BackendConfig, hasher: Arc<dyn PasswordHasher>) -> Self {
        if site.app.is_none() {
            site.app = Some(crate::backend::app::AppRules::default());
        }
        ChatConfig {
            addr,
            site: Arc::new(site),
            hasher,
            trusted_proxies: Vec::new(),
            sessions: SessionPolicy::default(),
            registration: true,
            chat: true,
            snapshots: snapshot::Policy::default(),
            tracker: TrackerPolicy::default(),
        }
    }
}

/// Off-loop work: hashing and checking passwords.
#[derive(Clone, Debug)]
pub enum Job {
    Verify {
        hasher: Arc<dyn PasswordHasher>,
        password: String,
        hash: String,
    },
    Hash {
        hasher: Arc<dyn PasswordHasher>,
        password: String,
        salt: [u8; 16],
    },
}

/// What a [`Job`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobDone {
    Verified(bool),
    Hashed(String),
}

/// What observers (and oracles) see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatEvent {
    Listening(SocketAddr),
    /// The log was read: records applied, bytes of a torn or corrupt tail cut.
    Recovered {
        records: u64,
        cut: u64,
    },
    /// The log failed; state is rebuilt from it.
    LogFailed,
    /// An empty log got `admin` / `password`: change it.
    DefaultAdminCreated,
    /// A message became durable (and was answered).
    Committed(Message),
    /// A snapshot began (its generation).
    Compacting(u64),
    /// A snapshot is whole: its generation's slot holds the state now, in `records` records.
    Compacted {
        generation: u64,
        records: u64,
    },
    /// A snapshot failed (a disk error); the log it would have replaced goes on.
    CompactionFailed,
    /// The tracker registered `name` as peer `id` at `addr` (new, or replacing its old entry).
    PeerRegistered {
        name: String,
        id: String,
        addr: SocketAddr,
    },
    /// `name` left the tracker's list.
    PeerLeft {
        name: String,
    },
    /// `name` was not heard from for the TTL and expired.
    PeerExpired {
        name: String,
    },
    /// A drain began: records appended and syncs issued in this life (records per sync is
    /// what group commit buys).
    Draining {
        appended: u64,
        syncs: u64,
    },
}

/// Who a request is from, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Auth {
    user: String,
    /// By session cookie (its token), not by Basic credentials: changes then need a matching
    /// `Origin`.
    session: Option<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Route {
    Login,
    Logout,
    Page,
    Channels,
    CreateChannel,
    History,
    Post,
    Events,
    Me,
    Register,
    Password,
    SubmitInfo,
    AddList,
    GetList,
    RemoveList,
}

/// What a finished job continues with.
enum AfterJob {
    /// A login: on success, a session for `user`.
    Login {
        conn: ConnId,
        user: String,
        browser: bool,
        client: String,
    },
    /// A request with Basic credentials, to run once they check out.
    Basic {
        conn: ConnId,
        user: String,
        client: String,
        req: AppRequest,
    },
    /// A password change: the current password checked out (or not).
    PasswordChecked {
        conn: ConnId,
        user: String,
        client: String,
        new: String,
        keep: Option<String>,
    },
    /// A password change: the new hash.
    PasswordHashed {
        conn: ConnId,
        user: String,
        keep: Option<String>,
    },
    /// The default account's hash.
    DefaultAdmin,
    /// A new account's hash.
    Register {
        conn: ConnId,
        user: String,
        browser: bool,
    },
}

/// What a durable record answers once synced.
enum AfterSync {
    Nothing,
    /// The default account is durable: requests are served.
    AdminReady,
    Login {
        conn: ConnId,
        token: String,
        browser: bool,
    },
    Logout {
        conn: ConnId,
        browser: bool,
    },
    Created {
        conn: ConnId,
    },
    Posted {
        conn: ConnId,
    },
    Registered {
        conn: ConnId,
        user: String,
        browser: bool,
    },
    PasswordChanged {
        conn: ConnId,
        user: String,
        keep: Option<String>,
    },
}

/// An append waiting for its sync: the record, what to answer, the log's length after it.
struct Pending {
    record: AppRecord,
    then: AfterSync,
    len: Option<u64>,
}

/// What a cut of the log is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum AfterCut {
    /// A torn or corrupt tail found at read: the state is whole once it is cut.
    Recovered,
    /// Unsynced records after a failure: the log is read again once they are cut.
    Read,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Heartbeat,
    RetryRecovery,
    TrackerSweep,
}

/// A snapshot being written (see [`snapshot`]).
struct Compacting {
    generation: u64,
    /// The log operation in flight.
    token: Token,
    stage: Stage,
    /// Accounts, sessions and channels are written (the first batch).
    header_done: bool,
    /// The position of the last message written.
    cursor: u64,
    records: u64,
    len: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// The new slot is emptied.
    Emptying,
    /// A batch is appended; more follow.
    Writing,
    /// The last batch (with `SnapshotEnd`) is appended.
    Ending,
    Syncing,
    /// It failed: the new slot is emptied again, so a snapshot that reached the disk after
    /// all cannot win over the records appended to the old slot from now on.
    Scrapping,
}

/// An open event stream.
struct Subscriber {
    channel: Option<String>,
    user: String,
    /// The session it was opened with (`None`: Basic credentials).
    session: Option<String>,
}

/// The chat node (module docs).
pub struct ChatNode {
    cfg: ChatConfig,
    router: Router<Route>,
    out: VecDeque<NodeOutput<ChatNode>>,
    timers: Timers<Timer>,
    accounts: Accounts,
    sessions: Sessions,
    chat: Chat,
    tracker: Tracker,
    limiter: Limiter,
    next_token: Token,
    jobs: BTreeMap<Token, AfterJob>,
    commit: GroupCommit<Token>,
    appends: BTreeMap<Token, Pending>,
    /// Until the log is read (again, after a failure), requests get 503.
    recovering: bool,
    /// A new log waits for its default account (whose hash takes a while): 503 meanwhile, so
    /// nobody is told `admin` does not exist.
    awaiting_admin: bool,
    /// The reads of both slots in flight, and what came back.
    read_tokens: [Option<Token>; 2],
    read_slots: [Option<Vec<u8>>; 2],
    /// The generation whose slot holds the state ([`snapshot`]).
    generation: u64,
    /// Records appended since the last snapshot.
    since_snapshot: u64,
    compaction: Option<Compacting>,
    /// Changes waiting for a snapshot to finish, in order.
    held: VecDeque<(AppRecord, AfterSync)>,
    compaction_failures: u32,
    compact_not_before: crate::time::Instant,
    /// The cut in flight, and what follows it.
    cut: Option<(Token, AfterCut)>,
    /// The log's length as the last successful sync left it (what was answered as durable).
    durable_len: u64,
    /// After a failed append or sync: the log is cut back to this before it is read again,
    /// so records nobody was told are durable do not come back as history.
    unsynced_cut: Option<u64>,
    recovery_failures: u32,
    records: u64,
    /// Records appended in this life.
    appended: u64,
    subscribers: BTreeMap<ConnId, Subscriber>,
    /// Names whose account is being made.
    registering: BTreeSet<String>,
    /// Verified `Authorization: Basic` values: the user and when (module docs).
    basic_ok: BTreeMap<String, (String, crate::time::Instant)>,
    draining: bool,
}

impl ChatNode {
    pub fn new(cfg: ChatConfig) -> ChatNode {
        let mut router = Router::new();
        router
            .route(&[Method::Post], "/login", Route::Login)
            .route(&[Method::Post], "/logout", Route::Logout)
            .route(&[Method::Get], "/", Route::Page)
            .route(&[Method::Get], "/index.html", Route::Page)
            .route(&[Method::Get], "/me", Route::Me)
            .route(&[Method::Post], "/register", Route::Register)
            .route(&[Method::Post], "/password", Route::Password);
        if cfg.chat {
            router
                .route(&[Method::Get], "/channels", Route::Channels)
                .route(&[Method::Post], "/channels", Route::CreateChannel)
                .route(&[Method::Get], "/channel/{name}/messages", Route::History)
                .route(&[Method::Post], "/channel/{name}/message", Route::Post)
                .route(&[Method::Get], "/events", Route::Events)
                .route(&[Method::Post], "/submit-info", Route::SubmitInfo)
                .route(&[Method::Post], "/add-list", Route::AddList)
                .route(&[Method::Get], "/get-list", Route::GetList)
                .route(&[Method::Post], "/remove-list", Route::RemoveList);
        }
        let tracker = Tracker::new(cfg.tracker.clone());
        let sessions = Sessions::new(cfg.sessions.clone());
        ChatNode {
            cfg,
            router,
            out: VecDeque::new(),
            timers: Timers::default(),
            accounts: Accounts::new(),
            sessions,
            chat: Chat::new(),
            tracker,
            limiter: Limiter::new(5, 60, 100_000),
            next_token: 0,
            jobs: BTreeMap::new(),
            commit: GroupCommit::new(snapshot::slot(0)),
            appends: BTreeMap::new(),
            recovering: true,
            awaiting_admin: false,
            read_tokens: [None, None],
            read_slots: [None, None],
            generation: 0,
            since_snapshot: 0,
            compaction: None,
            held: VecDeque::new(),
            compaction_failures: 0,
            compact_not_before: crate::time::Instant::ZERO,
            cut: None,
            durable_len: 0,
            unsynced_cut: None,
            recovery_failures: 0,
            records: 0,
            appended: 0,
            subscribers: BTreeMap::new(),
            registering: BTreeSet::new(),
            basic_ok: BTreeMap::new(),
            draining: false,
        }
    }

    /// The chat state (for tests and oracles).
    pub fn chat(&self) -> &Chat {
        &self.chat
    }

    /// The peer tracker (for tests and oracles).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Syncs issued so far.
    pub fn syncs(&self) -> u64 {
        self.commit.syncs
    }

    /// A session token that no live or pending session holds. Entropy that repeats (a cloned
    /// machine's, a broken source's) must not hand one user's session to another; after
    /// [`MINT_TRIES`] draws that all collide the source is broken and the sign-in gets 503.
    fn mint_token(&self, entropy: &mut dyn Entropy) -> Option<String> {
        (0..MINT_TRIES).find_map(|_| {
            let mut secret = [0u8; 32];
            entropy.fill(&mut secret);
            let token = new_token(secret);
            let pending = self.appends.values().any(
                |p| matches!(&p.record, AppRecord::SessionStarted { token: t, .. } if *t == token),
            );
            (self.sessions.get(&token).is_none() && !pending).then_some(token)
        })
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        self.next_token
    }

    fn reply(&mut self, conn: ConnId, msg: AppReply) {
        self.out.push_back(NodeOutput::ToConn { conn, msg });
    }

    fn respond(&mut self, conn: ConnId, status: Status, headers: &[(&str, &str)], json: String) {
        self.reply(conn, reply::json(status, headers, json));
    }

    fn error(&mut self, conn: ConnId, status: u16, message: &str) {
        self.reply(conn, reply::error(status, message));
    }

    fn redirect(&mut self, conn: ConnId, location: &str, cookie: Option<&SetCookie>) {
        self.reply(conn, reply::redirect(location, cookie));
    }

    /// A 401: a page that links to the login form for a browser, JSON and a Basic challenge
    /// for an API client.
    fn unauthorized(&mut self, conn: ConnId, browser: bool) {
        self.reply(conn, reply::unauthorized(browser));
    }

    fn unavailable(&mut self, conn: ConnId) {
        self.respond(
            conn,
            Status::SERVICE_UNAVAILABLE,
            &[("Retry-After", "1")],
            error_json("the server is starting or recovering its log; try again"),
        );
    }

    /// A 503 for a browser: a page that reloads itself a second later.
    fn starting_page(&mut self, conn: ConnId) {
        self.reply(conn, reply::starting_page("The chat"));
    }

    // ----- requests -----

    fn on_request(&mut self, now: Now, conn: ConnId, req: AppRequest, entropy: &mut dyn Entropy) {
        let (route, params) = match reply::route(&self.router, &req) {
            Ok(found) => found,
            Err(answer) => return self.reply(conn, answer),
        };
        if self.recovering || self.awaiting_admin {
            // (A page that reloads itself only for a GET: reloading a form's POST would
            // send a GET to its action.)
            if browser(&req) && matches!(req.head.method, Method::Get | Method::Head) {
                return self.starting_page(conn);
            }
            return self.unavailable(conn);
        }
        let client = self.client(&req);
        if route == Route::Login {
            return self.login(now, conn, &req, client);
        }
        if route == Route::Register {
            return self.register(conn, &req, entropy);
        }
        // Everything else needs to know who asks.
        if let Some(token) = header(&req, "cookie").and_then(|c| cookie(c, SESSION_COOKIE)) {
            if let Check::Valid { user, persist } = self.sessions.check(token, now.wall) {
                let auth = Auth {
                    user,
                    session: Some(token.to_string()),
                };
                if persist {
                    let token = token.to_string();
                    let at = now.wall.0;
                    self.append(AppRecord::SessionSeen { token, at }, AfterSync::Nothing);
                }
                return self.dispatch(now, conn, route, params, req, auth);
            }
        }
        if let Some((raw_user, password)) =
            header(&req, "authorization").and_then(crate::web::basic::credentials)
        {
            let key = header(&req, "authorization").unwrap_or("");
            if let Some((user, at)) = self.basic_ok.get(key) {
                if now.mono < *at + BASIC_CACHE_TTL && self.accounts.hash_of(user).is_some() {
                    let auth = Auth {
                        user: user.clone(),
                        session: None,
                    };
                    return self.dispatch(now, conn, route, params, req, auth);
                }
            }
            let user = user_name(&raw_user).unwrap_or_default();
            let then = AfterJob::Basic {
                conn,
                user: user.clone(),
                client: client.clone(),
                req,
            };
            return self.verify(now, (conn, &client, &user), password, then);
        }
        self.unauthorized(conn, browser(&req));
    }

    /// A new account: its name and password checked now, its hash made off the loop, its
    /// record answered once synced. A name being registered is taken until that ends.
    fn register(&mut self, conn: ConnId, req: &AppRequest, entropy: &mut dyn Entropy) {
        if !self.cfg.registration {
            return self.error(conn, 403, "registration is off on this server");
        }
        let (raw_user, password) = match credentials(req) {
            Ok(c) => c,
            Err((status, msg)) => return self.error(conn, status, &msg),
        };
        let (raw_user, password) = (&raw_user, &password);
        let user = match self.accounts.may_create(raw_user, password) {
            Ok(u) if self.registering.contains(&u) => {
                return self.error(conn, 409, &AccountError::Taken.message())
            }
            Ok(u) => u,
            Err(e) => return self.error(conn, e.status(), &e.message()),
        };
        self.registering.insert(user.clone());
        let mut salt = [0u8; 16];
        entropy.fill(&mut salt);
        let token = self.token();
        self.jobs.insert(
            token,
            AfterJob::Register {
                conn,
                user,
                browser: browser(req),
            },
        );
        let job = Job::Hash {
            hasher: self.cfg.hasher.clone(),
            password: password.clone(),
            salt,
        };
        self.out.push_back(NodeOutput::Job { token, job });
    }

    /// A change that will not be made (its log failed): 503, and what it held is let go.
    fn abandon(&mut self, then: AfterSync) {
        if let AfterSync::Registered { user, .. } = &then {
            self.registering.remove(user);
        }
        if let Some(conn) = then.conn() {
            self.unavailable(conn);
        }
    }

    /// The client's address, for rate limits.
    fn client(&self, req: &AppRequest) -> String {
        self.client_ip(req).to_string()
    }

    /// The address a request came from: the peer, or what a trusted proxy says it forwarded.
    fn client_ip(&self, req: &AppRequest) -> IpAddr {
        client_addr(
            req.peer.ip(),
            header(req, "x-forwarded-for"),
            &self.cfg.trusted_proxies,
        )
    }

    fn allowed(&mut self, client: &str, user: &str, now: Now) -> Result<(), u64> {
        let by_client = self.limiter.check(&format!("ip:{client}"), now.wall);
        let by_user = self.limiter.check(&format!("user:{user}"), now.wall);
        match (by_client, by_user) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(a), _) | (_, Err(a)) => Err(a),
        }
    }

    /// A wrong password counts against the client and the user alike.
    fn wrong_guess(&mut self, client: &str, user: &str, now: Now) {
        self.limiter.failed(&format!("ip:{client}"), now.wall);
        self.limiter.failed(&format!("user:{user}"), now.wall);
    }

    fn too_many(&mut self, conn: ConnId, wait: u64) {
        let wait = wait.max(1).to_string();
        self.respond(
            conn,
            Status(429),
            &[("Retry-After", &wait)],
            error_json("too many wrong passwords; wait and try again"),
        );
    }

    fn login(&mut self, now: Now, conn: ConnId, req: &AppRequest, client: String) {
        let (raw_user, password) = match credentials(req) {
            Ok(c) => c,
            Err((status, msg)) => return self.error(conn, status, &msg),
        };
        let (raw_user, password) = (&raw_user, &password);
        let user = user_name(raw_user).unwrap_or_default();
        let then = AfterJob::Login {
            conn,
            user: user.clone(),
            browser: browser(req),
            client: client.clone(),
        };
        self.verify(now, (conn, &client, &user), password.clone(), then);
    }

    /// Checks `password` for `user` off the loop, once the guess limits allow (checked
    /// before the hash, so guesses cannot even burn our CPU); an unknown user's empty hash
    /// never matches. `then` continues with the verdict.
    fn verify(
        &mut self,
        now: Now,
        (conn, client, user): (ConnId, &str, &str),
        password: String,
        then: AfterJob,
    ) {
        if let Err(wait) = self.allowed(client, user, now) {
            return self.too_many(conn, wait);
        }
        let hash = self.accounts.hash_of(user).unwrap_or("").to_string();
        let token = self.token();
        self.jobs.insert(token, then);
        let job = Job::Verify {
            hasher: self.cfg.hasher.clone(),
            password,
            hash,
        };
        self.out.push_back(NodeOutput::Job { token, job });
    }

    fn dispatch(
        &mut self,
        now: Now,
        conn: ConnId,
        route: Route,
        params: Params,
        req: AppRequest,
        auth: Auth,
    ) {
        let changes = req.head.method == Method::Post;
        if changes
            && auth.session.is_some()
            && !origin_allowed(header(&req, "origin"), header(&req, "host"))
        {
            return self.error(conn, 403, "a change from another site was refused");
        }
        let ts_ms = now.wall.0.saturating_mul(1000);
        match route {
            // Answered before anyone is known (`on_request`).
            Route::Login | Route::Register => {}
            Route::Page => self.reply(conn, AppReply::Static { private: true }),
            Route::Logout => {
                let browser = browser(&req);
                match auth.session {
                    Some(token) => self.append(
                        AppRecord::SessionEnded { token },
                        AfterSync::Logout { conn, browser },
                    ),
                    None => self.logged_out(conn, browser),
                }
            }
            Route::Channels => {
                let list: Vec<serde_json::Value> = self
                    .chat
                    .channels()
                    .map(|(name, n)| serde_json::json!({ "name": name, "messages": n }))
                    .collect();
                self.respond(
                    conn,
                    Status::OK,
                    &[],
                    serde_json::Value::from(list).to_string(),
                );
            }
            Route::CreateChannel => {
                let fields = match fields(&req) {
                    Ok(f) => f,
                    Err((status, msg)) => return self.error(conn, status, &msg),
                };
                let name = fields.get("name").map_or("", String::as_str);
                match self.chat.create_channel(name, &auth.user, ts_ms) {
                    Ok(record) => self.append(AppRecord::Chat(record), AfterSync::Created { conn }),
                    Err(e) => self.chat_error(conn, &e),
                }
            }
            Route::History => {
                let name = params.get("name").unwrap_or("").to_ascii_lowercase();
                let query = Form::parse(req.head.target.query().unwrap_or("").as_bytes())
                    .unwrap_or_default();
                let number = |k: &str| query.get(k).and_then(|v| v.parse::<u64>().ok());
                let limit = number("limit").map_or(50, |l| (l as usize).clamp(1, MAX_PAGE));
                match self
                    .chat
                    .history(&name, number("after"), number("before"), limit)
                {
                    Some(msgs) => {
                        let body = serde_json::json!({ "channel": name, "messages": msgs });
                        self.respond(conn, Status::OK, &[], body.to_string());
                    }
                    None => self.chat_error(conn, &ChatError::NoChannel),
                }
            }
            Route::Post => {
                let fields = match fields(&req) {
                    Ok(f) => f,
                    Err((status, msg)) => return self.error(conn, status, &msg),
                };
                let channel = params.get("name").unwrap_or("");
                let text = fields.get("text").or(fields.get("message"));
                let txn = fields.get("txn").map(String::as_str);
                let posted = self.chat.post(
                    &auth.user,
                    channel,
                    text.map_or("", String::as_str),
                    txn,
                    ts_ms,
                );
                match posted {
                    Ok(Posted::New(record)) => {
                        self.append(AppRecord::Chat(record), AfterSync::Posted { conn })
                    }
                    Ok(Posted::Duplicate(m)) => {
                        self.respond(conn, Status::OK, &[], message_json(&m))
                    }
                    // The same post waits for its sync: this retry is answered as the
                    // original will be, once durable (it may yet fail: then retry again).
                    Ok(Posted::InFlight { .. }) => self.respond(
                        conn,
                        Status(409),
                        &[("Retry-After", "1")],
                        error_json("that transaction is still being saved; retry"),
                    ),
                    Err(e) => self.chat_error(conn, &e),
                }
            }
            Route::Events if req.head.method == Method::Head => {
                self.reply(conn, reply::event_stream(&Method::Head))
            }
            Route::Events => self.subscribe(conn, &req, auth),
            Route::Password => self.change_password(now, conn, &req, auth),
            Route::Me => {
                let body = serde_json::json!({ "user": auth.user }).to_string();
                self.respond(conn, Status::OK, &[], body);
            }
            Route::SubmitInfo => self.submit_info(now, conn, &req, &auth.user),
            Route::AddList => match self.tracker.heartbeat(&auth.user, now) {
                Ok(entry) => {
                    let entry = entry.json();
                    let body = self.tracker_reply(Some(entry));
                    self.respond(conn, Status::OK, &[], body);
                }
                Err(_) => self.error(
                    conn,
                    404,
                    "not registered with the tracker: submit-info again",
                ),
            },
            Route::GetList => {
                let peers: Vec<serde_json::Value> =
                    self.tracker.peers(now.mono).map(|e| e.json()).collect();
                let mut body = self.tracker_json();
                body["peers"] = peers.into();
                self.respond(conn, Status::OK, &[], body.to_string());
            }
            Route::RemoveList => {
                let removed = self.tracker.remove(&auth.user).is_some();
                if removed {
                    let name = auth.user.clone();
                    self.out
                        .push_back(NodeOutput::Event(ChatEvent::PeerLeft { name }));
                }
                let body = serde_json::json!({ "status": "ok", "removed": removed });
                self.respond(conn, Status::OK, &[], body.to_string());
            }
        }
    }

    // ----- the tracker -----

    /// `POST /submit-info` (module docs, [`tracker`]).
    fn submit_info(&mut self, now: Now, conn: ConnId, req: &AppRequest, user: &str) {
        let f = match fields(req) {
            Ok(f) => f,
            Err((status, msg)) => return self.error(conn, status, &msg),
        };
        let (Some(name), Some(port)) = (f.get("name"), f.get("port")) else {
            return self.error(conn, 400, "name and port are required");
        };
        if name != user {
            return self.error(conn, 403, "name must be the account you are signed in as");
        }
        let port = match port.trim().parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return self.error(conn, 400, "port must be a number from 1 to 65535"),
        };
        let id = f.get("id").map_or(user, String::as_str);
        if !tracker::id_ok(id) {
            return self.error(
                conn,
                400,
                "id must be 1 to 64 letters, digits, '-', '_' or '.'",
            );
        }
        let observed = self.client_ip(req);
        let ip = match f.get("ip").filter(|ip| !ip.is_empty()) {
            None => observed,
            Some(text) => match text.trim().parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                    return self.error(conn, 400, "ip must be an address a peer can dial");
                }
                Ok(ip) if tracker::announced_ip_allowed(ip, observed, self.tracker.policy()) => ip,
                Ok(_) => {
                    return self.error(
                        conn,
                        403,
                        "ip must be the address you connect from (this tracker does not take announced addresses)",
                    );
                }
                Err(_) => return self.error(conn, 400, "ip is not an IP address"),
            },
        };
        match self.tracker.submit(user, id, ip, port, now) {
            Ok(outcome) => {
                if outcome != Submitted::Refreshed {
                    self.out
                        .push_back(NodeOutput::Event(ChatEvent::PeerRegistered {
                            name: user.to_string(),
                            id: id.to_string(),
                            addr: SocketAddr::new(ip, port),
                        }));
                }
                let status = if outcome == Submitted::New {
                    Status(201)
                } else {
                    Status::OK
                };
                let entry = self.tracker.get(user).map(|e| e.json());
                let body = self.tracker_reply(entry);
                self.respond(conn, status, &[], body);
            }
            Err(TrackerError::Full) => self.respond(
                conn,
                Status::SERVICE_UNAVAILABLE,
                &[("Retry-After", "10")],
                error_json("the tracker is full"),
            ),
            Err(TrackerError::NotRegistered) => self.error(conn, 404, "not registered"),
        }
    }

    /// The heartbeat interval and TTL every tracker reply carries.
    fn tracker_json(&self) -> serde_json::Value {
        let p = self.tracker.policy();
        serde_json::json!({
            "status": "ok",
            "interval_ms": tracker::interval_ms(p.heartbeat),
            "ttl_ms": tracker::interval_ms(p.ttl),
        })
    }

    fn tracker_reply(&self, peer: Option<serde_json::Value>) -> String {
        let mut body = self.tracker_json();
        if let Some(peer) = peer {
            body["peer"] = peer;
        }
        body.to_string()
    }

    fn chat_error(&mut self, conn: ConnId, e: &ChatError) {
        let retry: &[(&str, &str)] = match e {
            ChatError::BeingCreated => &[("Retry-After", "1")],
            _ => &[],
        };
        self.respond(conn, Status(e.status()), retry, error_json(&e.message()));
    }

    fn logged_out(&mut self, conn: ConnId, browser: bool) {
        let removal = SetCookie::removal(SESSION_COOKIE, "/");
        if browser {
            return self.redirect(conn, "/login.html", removal.as_ref());
        }
        let c = removal.map(|c| c.to_string()).unwrap_or_default();
        self.respond(
            conn,
            Status::OK,
            &[("Set-Cookie", &c)],
            r#"{"status":"ok"}"#.into(),
        );
    }

    /// `current` and `password` (the new one, checked as at registration): the current one
    /// is verified off the loop (a wrong one counts against the guess limits, `403`), the new
    /// one hashed, and the change answered once durable. It ends every other session of the
    /// user and their event streams, and forgets their verified Basic credentials.
    fn change_password(&mut self, now: Now, conn: ConnId, req: &AppRequest, auth: Auth) {
        let mut f = match fields(req) {
            Ok(f) => f,
            Err((status, msg)) => return self.error(conn, status, &msg),
        };
        let (Some(current), Some(new)) = (f.remove("current"), f.remove("password")) else {
            return self.error(conn, 400, "current and password are required");
        };
        if let Err(e) = password_ok(&new) {
            return self.error(conn, e.status(), &e.message());
        }
        let client = self.client(req);
        let then = AfterJob::PasswordChecked {
            conn,
            user: auth.user.clone(),
            client: client.clone(),
            new,
            keep: auth.session,
        };
        self.verify(now, (conn, &client, &auth.user), current, then);
    }

    // ----- event streams -----

    fn subscribe(&mut self, conn: ConnId, req: &AppRequest, auth: Auth) {
        let Auth { user, session } = auth;
        let query =
            Form::parse(req.head.target.query().unwrap_or("").as_bytes()).unwrap_or_default();
        let channel = query.get("channel").map(str::to_ascii_lowercase);
        let resume = header(req, "last-event-id")
            .or(query.get("after"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        self.reply(conn, reply::event_stream(&Method::Get));
        let mut first = Vec::new();
        sse::comment("welcome", &mut first);
        let after = resume.unwrap_or(self.chat.applied_pos());
        match self.chat.since(after, MAX_REPLAY) {
            Some(missed) => {
                for m in missed {
                    if channel.as_deref().is_none_or(|c| c == m.channel) {
                        event_of(m).encode(&mut first);
                    }
                }
            }
            None => {
                // Too much was missed to replay: the client reloads history.
                sse::Event {
                    id: Some(self.chat.applied_pos().to_string()),
                    event: Some("reset".into()),
                    data: "{}".into(),
                }
                .encode(&mut first);
            }
        }
        // The first stream starts the heartbeat; it stops when the last one goes (`handle`).
        let before = self.online();
        self.subscribers.insert(
            conn,
            Subscriber {
                channel,
                user,
                session,
            },
        );
        let after = self.online();
        presence_event(&after, &mut first);
        self.reply(conn, AppReply::StreamData(first));
        if after != before {
            self.tell_presence(Some(conn));
        }
    }

    /// Who is online: the users with an open event stream, sorted, once each.
    fn online(&self) -> Vec<String> {
        let mut users: Vec<String> = self.subscribers.values().map(|s| s.user.clone()).collect();
        users.sort();
        users.dedup();
        users
    }

    /// Sends who is online to every stream but `except`.
    fn tell_presence(&mut self, except: Option<ConnId>) {
        let mut bytes = Vec::new();
        presence_event(&self.online(), &mut bytes);
        let to: Vec<ConnId> = self
            .subscribers
            .keys()
            .copied()
            .filter(|&c| Some(c) != except)
            .collect();
        for conn in to {
            self.reply(conn, AppReply::StreamData(bytes.clone()));
        }
    }

    fn publish(&mut self, m: &Message) {
        let mut bytes = Vec::new();
        event_of(m).encode(&mut bytes);
        let to: Vec<ConnId> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.channel.as_deref().is_none_or(|c| c == m.channel))
            .map(|(&c, _)| c)
            .collect();
        for conn in to {
            self.reply(conn, AppReply::StreamData(bytes.clone()));
        }
    }

    // ----- the log -----

    fn append(&mut self, record: AppRecord, then: AfterSync) {
        if self.compaction.is_some() {
            self.held.push_back((record, then));
            return;
        }
        self.appended += 1;
        self.since_snapshot += 1;
        let token = self.token();
        let payload = serde_json::to_vec(&record).unwrap_or_default();
        let mut bytes = Vec::with_capacity(payload.len() + record::HEADER);
        record::encode(&payload, &mut bytes);
        self.appends.insert(
            token,
            Pending {
                record,
                then,
                len: None,
            },
        );
        self.out.push_back(NodeOutput::Log {
            token,
            op: LogOp::Append {
                log: self.log().into(),
                bytes,
            },
        });
        if let Some(op) = self.commit.commit(token) {
            self.out.push_back(NodeOutput::Log { token: 0, op });
        }
    }

    /// Makes a durable record state (after its sync, or replaying the log).
    fn apply(&mut self, record: &AppRecord) -> Result<(), String> {
        match record {
            AppRecord::Account(a) => self.accounts.apply(a),
            AppRecord::SessionStarted {
                token,
                user,
                created,
            } => {
                self.sessions
                    .create(token.clone(), user, crate::time::UnixTime(*created));
                Ok(())
            }
            AppRecord::SessionEnded { token } => {
                self.sessions.end(token);
                Ok(())
            }
            AppRecord::SessionSeen { token, at } => {
                self.sessions.seen(token, crate::time::UnixTime(*at));
                Ok(())
            }
            AppRecord::Chat(r) => self.chat.apply(r),
            AppRecord::Begin { .. } | AppRecord::SnapshotEnd { .. } => Ok(()),
            AppRecord::PasswordChanged { user, hash, kept } => {
                self.accounts.apply(&AccountRecord::PasswordChanged {
                    user: user.clone(),
                    hash: hash.clone(),
                })?;
                self.sessions.end_user(user, kept.as_deref());
                self.basic_ok.retain(|_, (u, _)| u != user);
                Ok(())
            }
        }
    }

    fn cut_log(&mut self, len: u64, then: AfterCut) {
        let token = self.token();
        self.cut = Some((token, then));
        self.out.push_back(NodeOutput::Log {
            token,
            op: LogOp::Truncate {
                log: self.log().into(),
                len,
            },
        });
    }

    /// The next step of recovery: cut what a failure left unsynced, else read.
    fn recover(&mut self) {
        match self.unsynced_cut {
            Some(len) => self.cut_log(len, AfterCut::Read),
            None => self.read_log(),
        }
    }

    /// The log the state lives in now.
    fn log(&self) -> &'static str {
        snapshot::slot(self.generation)
    }

    /// Reads both slots; [`Self::on_slots`] takes it from there.
    fn read_log(&mut self) {
        self.read_slots = [None, None];
        for (i, name) in snapshot::SLOTS.iter().enumerate() {
            let token = self.token();
            self.read_tokens[i] = Some(token);
            self.out.push_back(NodeOutput::Log {
                token,
                op: LogOp::Read {
                    log: (*name).into(),
                },
            });
        }
    }

    /// Both slots are read: the state comes from the one [`snapshot::choose`] picks.
    fn on_slots(&mut self, now: Now, entropy: &mut dyn Entropy) {
        if self.read_slots.iter().any(Option::is_none) {
            return;
        }
        let [Some(a), Some(b)] = std::mem::take(&mut self.read_slots) else {
            return;
        };
        self.read_tokens = [None, None];
        let states = [
            snapshot::inspect(&a, MAX_RECORD),
            snapshot::inspect(&b, MAX_RECORD),
        ];
        // Nothing whole yet: a new node, in slot 0 (emptied of an unfinished start).
        let (generation, bytes, extra) = match snapshot::choose(&states) {
            Some((0, generation)) => (generation, &a[..], 0),
            Some((_, generation)) => (generation, &b[..], 0),
            None => (0, &[][..], a.len()),
        };
        self.generation = generation;
        self.commit.reset(self.log());
        self.on_contents(now, bytes, extra, entropy);
    }

    /// The log failed (or recovery did): every waiter is answered 503, and after a wait that
    /// doubles with each failure the unsynced tail is cut and the state rebuilt from the log.
    fn log_failed(&mut self, now: Now) {
        self.out.push_back(NodeOutput::Event(ChatEvent::LogFailed));
        self.recovering = true;
        self.recovery_failures += 1;
        self.read_tokens = [None, None];
        self.read_slots = [None, None];
        self.cut = None;
        if !self.appends.is_empty() {
            let to = self
                .unsynced_cut
                .map_or(self.durable_len, |c| c.min(self.durable_len));
            self.unsynced_cut = Some(to);
        }
        let waiting: Vec<Pending> = std::mem::take(&mut self.appends).into_values().collect();
        self.commit.reset(self.log());
        for p in waiting {
            self.abandon(p.then);
        }
        let doublings = (self.recovery_failures - 1).min(16);
        let wait = RECOVERY_RETRY
            .saturating_mul(1 << doublings)
            .min(RECOVERY_RETRY_MAX);
        self.timers.set(Timer::RetryRecovery, now.mono + wait);
    }

    /// Rebuilds the state from `bytes`, the chosen slot (or nothing, when the slot holds
    /// `extra` bytes of no whole state, all cut).
    fn on_contents(&mut self, now: Now, bytes: &[u8], extra: usize, entropy: &mut dyn Entropy) {
        self.accounts = Accounts::new();
        self.sessions = Sessions::new(self.cfg.sessions.clone());
        self.chat = Chat::new();
        let scan = record::scan(bytes, MAX_RECORD);
        let mut applied = 0u64;
        let mut snapshot_records = 0u64;
        let mut valid_len = scan.valid_len;
        for range in &scan.records {
            let parsed = serde_json::from_slice::<AppRecord>(&bytes[range.clone()])
                .map_err(|e| e.to_string())
                .and_then(|r| self.apply(&r).map(|()| r));
            let Ok(r) = parsed else {
                // A record that does not follow the history: the log ends before it.
                valid_len = range.start - record::HEADER;
                break;
            };
            applied += 1;
            if matches!(r, AppRecord::SnapshotEnd { .. }) {
                snapshot_records = applied;
            }
        }
        self.records = applied;
        self.since_snapshot = applied - snapshot_records;
        self.durable_len = valid_len as u64;
        let cut = (bytes.len() + extra - valid_len) as u64;
        if cut > 0 {
            self.cut_log(valid_len as u64, AfterCut::Recovered);
        }
        self.out.push_back(NodeOutput::Event(ChatEvent::Recovered {
            records: applied,
            cut,
        }));
        if cut == 0 {
            self.recovered(now, entropy);
        }
    }

    /// The log is whole again: requests are served; a new log gets `general` and `admin`.
    fn recovered(&mut self, now: Now, entropy: &mut dyn Entropy) {
        self.recovering = false;
        self.recovery_failures = 0;
        if self.cfg.chat && !self.chat.has_channel("general") {
            let ts_ms = now.wall.0.saturating_mul(1000);
            if let Ok(r) = self.chat.create_channel("general", "admin", ts_ms) {
                self.append(AppRecord::Chat(r), AfterSync::Nothing);
            }
        }
        self.awaiting_admin = self.accounts.is_empty();
        let hashing = self
            .jobs
            .values()
            .any(|j| matches!(j, AfterJob::DefaultAdmin));
        if self.awaiting_admin && !hashing {
            let token = self.token();
            self.jobs.insert(token, AfterJob::DefaultAdmin);
            let mut salt = [0u8; 16];
            entropy.fill(&mut salt);
            let job = Job::Hash {
                hasher: self.cfg.hasher.clone(),
                password: "password".into(),
                salt,
            };
            self.out.push_back(NodeOutput::Job { token, job });
        }
    }

    fn log_reply(&mut self, now: Now, token: Token, reply: LogReply, entropy: &mut dyn Entropy) {
        if self.compaction.as_ref().is_some_and(|c| c.token == token) {
            return self.compaction_reply(now, reply);
        }
        match reply {
            LogReply::Contents(result) => {
                let Some(i) = self.read_tokens.iter().position(|t| *t == Some(token)) else {
                    return;
                };
                match result {
                    Ok(bytes) => {
                        self.read_slots[i] = Some(bytes);
                        self.on_slots(now, entropy);
                    }
                    Err(_) => self.log_failed(now),
                }
            }
            LogReply::Truncated(result) => {
                let Some((t, then)) = self.cut else {
                    return;
                };
                if t != token {
                    return;
                }
                self.cut = None;
                match (result, then) {
                    (Err(_), _) => self.log_failed(now),
                    (Ok(()), AfterCut::Recovered) => self.recovered(now, entropy),
                    (Ok(()), AfterCut::Read) => {
                        self.unsynced_cut = None;
                        self.read_log();
                    }
                }
            }
            LogReply::Appended(result) => {
                if let Some(p) = self.appends.get_mut(&token) {
                    p.len = result.ok();
                    self.commit.appended(token, result);
                }
            }
            LogReply::Synced(result) => {
                let (done, next) = self.commit.synced(result);
                // After a failure the log is cut back before anything more is made durable:
                // the next sync would cover appends that follow the failed one.
                if let Some(op) = next.filter(|_| done.iter().all(|(_, r)| r.is_ok())) {
                    self.out.push_back(NodeOutput::Log { token: 0, op });
                }
                let mut failed = false;
                for (waiter, result) in done {
                    let Some(p) = self.appends.remove(&waiter) else {
                        continue;
                    };
                    if result.is_err() || failed {
                        if !failed {
                            self.unsynced_cut = Some(self.durable_len);
                        }
                        failed = true;
                        self.abandon(p.then);
                        continue;
                    }
                    if let Some(len) = p.len {
                        self.durable_len = self.durable_len.max(len);
                    }
                    self.committed(p.record, p.then);
                }
                if failed {
                    // State may hold what the log does not: rebuild it from the log.
                    self.log_failed(now);
                } else {
                    self.maybe_compact(now);
                }
            }
        }
    }

    // ----- snapshots -----

    /// Starts a snapshot if the policy says so and nothing is in flight (module docs of
    /// [`snapshot`]).
    fn maybe_compact(&mut self, now: Now) {
        let quiet = !self.recovering
            && !self.draining
            && self.compaction.is_none()
            && self.appends.is_empty()
            && self.cut.is_none()
            && self.unsynced_cut.is_none()
            && now.mono >= self.compact_not_before;
        if !quiet {
            return;
        }
        let (channels, messages) = self.chat.size();
        let live =
            2 + self.accounts.len() as u64 + 2 * self.sessions.len() as u64 + channels + messages;
        if !self
            .cfg
            .snapshots
            .due(self.records, live, self.since_snapshot)
        {
            return;
        }
        let generation = self.generation + 1;
        self.compaction = Some(Compacting {
            generation,
            token: 0,
            stage: Stage::Emptying,
            header_done: false,
            cursor: 0,
            records: 0,
            len: 0,
        });
        self.out
            .push_back(NodeOutput::Event(ChatEvent::Compacting(generation)));
        self.compaction_step(Stage::Emptying, |log| LogOp::Truncate { log, len: 0 });
    }

    /// Moves the snapshot to `stage` and issues `op` on its slot (the one operation in flight).
    fn compaction_step(&mut self, stage: Stage, op: impl FnOnce(String) -> LogOp) {
        let token = self.token();
        let Some(c) = self.compaction.as_mut() else {
            return;
        };
        c.stage = stage;
        c.token = token;
        let op = op(snapshot::slot(c.generation).into());
        self.out.push_back(NodeOutput::Log { token, op });
    }

    fn compaction_reply(&mut self, now: Now, reply: LogReply) {
        let Some(stage) = self.compaction.as_ref().map(|c| c.stage) else {
            return;
        };
        match (stage, reply) {
            (Stage::Emptying, LogReply::Truncated(Ok(()))) => self.write_batch(),
            (Stage::Writing, LogReply::Appended(Ok(len))) => {
                if let Some(c) = self.compaction.as_mut() {
                    c.len = len;
                }
                self.write_batch();
            }
            (Stage::Ending, LogReply::Appended(Ok(len))) => {
                if let Some(c) = self.compaction.as_mut() {
                    c.len = len;
                }
                self.compaction_step(Stage::Syncing, |log| LogOp::Sync { log });
            }
            (Stage::Syncing, LogReply::Synced(Ok(()))) => self.switch_slot(),
            (Stage::Scrapping, LogReply::Truncated(Ok(()))) => {
                self.compaction = None;
                self.release_held();
            }
            (Stage::Scrapping, _) => {
                // Neither written nor undone: what the disk holds is unknown, so the state is
                // rebuilt from whatever slot it now says is whole.
                self.compaction = None;
                for (_, then) in std::mem::take(&mut self.held) {
                    self.abandon(then);
                }
                self.log_failed(now);
            }
            (_, _) => {
                self.out
                    .push_back(NodeOutput::Event(ChatEvent::CompactionFailed));
                self.compaction_failures += 1;
                let doublings = (self.compaction_failures - 1).min(8);
                self.compact_not_before = now.mono
                    + RECOVERY_RETRY
                        .saturating_mul(1 << doublings)
                        .min(Duration::from_secs(60));
                self.compaction_step(Stage::Scrapping, |log| LogOp::Truncate { log, len: 0 });
            }
        }
    }

    /// Appends the next batch of the snapshot (the last one ends it).
    fn write_batch(&mut self) {
        let Some(c) = self.compaction.as_ref() else {
            return;
        };
        let (generation, header_done, cursor) = (c.generation, c.header_done, c.cursor);
        let mut recs = Vec::new();
        if !header_done {
            recs.push(AppRecord::Begin { generation });
            for (user, hash) in self.accounts.iter() {
                recs.push(AppRecord::Account(AccountRecord::Created {
                    user: user.into(),
                    hash: hash.into(),
                }));
            }
            for (token, s) in self.sessions.iter() {
                recs.push(AppRecord::SessionStarted {
                    token: token.into(),
                    user: s.user.clone(),
                    created: s.created,
                });
                if s.last_seen > s.created {
                    recs.push(AppRecord::SessionSeen {
                        token: token.into(),
                        at: s.last_seen,
                    });
                }
            }
        }
        let mut cursor_after = cursor;
        for r in self.chat.records(cursor, snapshot::BATCH) {
            if let Record::Message(m) = &r {
                cursor_after = m.pos;
            }
            recs.push(AppRecord::Chat(r));
        }
        let last = cursor_after >= self.chat.applied_pos();
        if last {
            recs.push(AppRecord::SnapshotEnd { generation });
        }
        let mut bytes = Vec::new();
        for r in &recs {
            record::encode(&serde_json::to_vec(r).unwrap_or_default(), &mut bytes);
        }
        let Some(c) = self.compaction.as_mut() else {
            return;
        };
        c.header_done = true;
        c.cursor = cursor_after;
        c.records += recs.len() as u64;
        let stage = if last { Stage::Ending } else { Stage::Writing };
        self.compaction_step(stage, |log| LogOp::Append { log, bytes });
    }

    /// The snapshot is whole and synced: its slot holds the state from now on.
    fn switch_slot(&mut self) {
        let Some(c) = self.compaction.take() else {
            return;
        };
        self.generation = c.generation;
        self.commit.reset(self.log());
        // The snapshot's own sync.
        self.commit.syncs += 1;
        self.durable_len = c.len;
        self.records = c.records;
        self.since_snapshot = 0;
        self.compaction_failures = 0;
        self.out.push_back(NodeOutput::Event(ChatEvent::Compacted {
            generation: c.generation,
            records: c.records,
        }));
        self.release_held();
    }

    /// Appends the changes that waited for a snapshot, in order.
    fn release_held(&mut self) {
        for (record, then) in std::mem::take(&mut self.held) {
            self.append(record, then);
        }
    }

    /// A record is durable: it becomes state, and its request is answered.
    fn committed(&mut self, record: AppRecord, then: AfterSync) {
        if let Err(e) = self.apply(&record) {
            debug_assert!(false, "a committed record did not apply: {e}");
        }
        self.records += 1;
        match (then, &record) {
            (
                AfterSync::Login {
                    conn,
                    token,
                    browser,
                },
                _,
            ) => {
                let mut c = SetCookie::new(SESSION_COOKIE, &token);
                if let Some(c) = c.as_mut() {
                    c.path = Some("/".into());
                    c.http_only = true;
                    c.same_site = Some(SameSite::Lax);
                    c.max_age = Some(self.cfg.sessions.absolute_secs as i64);
                }
                if browser {
                    return self.redirect(conn, "/", c.as_ref());
                }
                let user = self
                    .sessions
                    .get(&token)
                    .map(|s| s.user.clone())
                    .unwrap_or_default();
                let set = c.map(|c| c.to_string()).unwrap_or_default();
                let body = serde_json::json!({ "status": "ok", "user": user }).to_string();
                self.respond(conn, Status::OK, &[("Set-Cookie", &set)], body);
            }
            (AfterSync::Logout { conn, browser }, _) => self.logged_out(conn, browser),
            (AfterSync::AdminReady, _) => self.awaiting_admin = false,
            (
                AfterSync::Registered {
                    conn,
                    user,
                    browser,
                },
                _,
            ) => {
                self.registering.remove(&user);
                if browser {
                    return self.redirect(conn, "/login.html?registered=1", None);
                }
                let body = serde_json::json!({ "status": "ok", "user": user }).to_string();
                self.respond(conn, Status(201), &[], body);
            }
            (AfterSync::PasswordChanged { conn, user, keep }, _) => {
                let ended: Vec<ConnId> = self
                    .subscribers
                    .iter()
                    .filter(|(_, s)| s.user == user && s.session != keep)
                    .map(|(&c, _)| c)
                    .collect();
                if !ended.is_empty() {
                    let before = self.online();
                    for c in ended {
                        self.subscribers.remove(&c);
                        self.reply(c, AppReply::StreamEnd);
                    }
                    if self.online() != before {
                        self.tell_presence(None);
                    }
                }
                self.respond(conn, Status::OK, &[], r#"{"status":"ok"}"#.into());
            }
            (AfterSync::Created { conn }, AppRecord::Chat(Record::Channel { name, .. })) => {
                let body = serde_json::json!({ "name": name, "messages": 0 }).to_string();
                self.respond(conn, Status(201), &[], body);
            }
            (AfterSync::Posted { conn }, AppRecord::Chat(Record::Message(m))) => {
                self.respond(conn, Status(201), &[], message_json(m));
                self.publish(m);
                self.out
                    .push_back(NodeOutput::Event(ChatEvent::Committed(m.clone())));
            }
            _ => {}
        }
    }

    fn job_done(&mut self, now: Now, token: Token, done: JobDone, entropy: &mut dyn Entropy) {
        let Some(after) = self.jobs.remove(&token) else {
            return;
        };
        match (after, done) {
            (
                AfterJob::Login {
                    conn,
                    user,
                    browser,
                    client,
                },
                JobDone::Verified(ok),
            ) => {
                if self.recovering {
                    return self.unavailable(conn);
                }
                if !ok {
                    self.wrong_guess(&client, &user, now);
                    if browser {
                        return self.redirect(conn, "/login.html?failed=1", None);
                    }
                    return self.error(conn, 401, "wrong user name or password");
                }
                self.limiter.succeeded(&format!("user:{user}"));
                let Some(token) = self.mint_token(entropy) else {
                    return self.unavailable(conn);
                };
                self.append(
                    AppRecord::SessionStarted {
                        token: token.clone(),
                        user,
                        created: now.wall.0,
                    },
                    AfterSync::Login {
                        conn,
                        token,
                        browser,
                    },
                );
            }
            (
                AfterJob::Basic {
                    conn,
                    user,
                    client,
                    req,
                },
                JobDone::Verified(ok),
            ) => {
                if !ok {
                    self.wrong_guess(&client, &user, now);
                    return self.unauthorized(conn, browser(&req));
                }
                self.limiter.succeeded(&format!("user:{user}"));
                if self.basic_ok.len() >= BASIC_CACHE_MAX {
                    let oldest = self.basic_ok.iter().min_by_key(|(_, (_, at))| *at);
                    if let Some(k) = oldest.map(|(k, _)| k.clone()) {
                        self.basic_ok.remove(&k);
                    }
                }
                let key = header(&req, "authorization").unwrap_or("").to_string();
                self.basic_ok.insert(key, (user.clone(), now.mono));
                let Ok(path) = normalize_path(req.head.target.path()) else {
                    return self.error(conn, 400, "bad path");
                };
                let found = match self.router.lookup(&req.head.method, &path) {
                    Lookup::Found { handler, params } => Some((*handler, params)),
                    _ => None,
                };
                match found {
                    Some((route, params)) => {
                        let auth = Auth {
                            user,
                            session: None,
                        };
                        self.dispatch(now, conn, route, params, req, auth);
                    }
                    // (It was routed before the hash; a request is answered whatever happens.)
                    None => self.error(conn, 404, "no such route"),
                }
            }
            // (A hash that comes while the log is being recovered again is dropped: the
            // recovery's end asks for a new one if the account is still missing.)
            (AfterJob::DefaultAdmin, JobDone::Hashed(hash))
                if self.accounts.is_empty() && !self.recovering =>
            {
                self.out
                    .push_back(NodeOutput::Event(ChatEvent::DefaultAdminCreated));
                self.append(
                    AppRecord::Account(AccountRecord::Created {
                        user: "admin".into(),
                        hash,
                    }),
                    AfterSync::AdminReady,
                );
            }
            (
                AfterJob::PasswordChecked {
                    conn,
                    user,
                    client,
                    new,
                    keep,
                },
                JobDone::Verified(ok),
            ) => {
                if self.recovering {
                    return self.unavailable(conn);
                }
                if !ok {
                    self.wrong_guess(&client, &user, now);
                    return self.error(conn, 403, "the current password is wrong");
                }
                let mut salt = [0u8; 16];
                entropy.fill(&mut salt);
                let token = self.token();
                self.jobs
                    .insert(token, AfterJob::PasswordHashed { conn, user, keep });
                let job = Job::Hash {
                    hasher: self.cfg.hasher.clone(),
                    password: new,
                    salt,
                };
                self.out.push_back(NodeOutput::Job { token, job });
            }
            (AfterJob::PasswordHashed { conn, user, keep }, JobDone::Hashed(hash)) => {
                if self.recovering {
                    return self.unavailable(conn);
                }
                self.append(
                    AppRecord::PasswordChanged {
                        user: user.clone(),
                        hash,
                        kept: keep.clone(),
                    },
                    AfterSync::PasswordChanged { conn, user, keep },
                );
            }
            (
                AfterJob::Register {
                    conn,
                    user,
                    browser,
                },
                JobDone::Hashed(hash),
            ) => {
                if self.recovering {
                    self.registering.remove(&user);
                    return self.unavailable(conn);
                }
                self.append(
                    AppRecord::Account(AccountRecord::Created {
                        user: user.clone(),
                        hash,
                    }),
                    AfterSync::Registered {
                        conn,
                        user,
                        browser,
                    },
                );
            }
            _ => {}
        }
    }
}

impl AfterSync {
    fn conn(&self) -> Option<ConnId> {
        match self {
            AfterSync::Nothing | AfterSync::AdminReady => None,
            AfterSync::Login { conn, .. }
            | AfterSync::Logout { conn, .. }
            | AfterSync::Created { conn }
            | AfterSync::Posted { conn }
            | AfterSync::Registered { conn, .. }
            | AfterSync::PasswordChanged { conn, .. } => Some(*conn),
        }
    }
}

fn header<'a>(req: &'a AppRequest, name: &str) -> Option<&'a str> {
    req.head.headers.get_str(name)
}

fn browser(req: &AppRequest) -> bool {
    wants_html(header(req, "accept"))
}

/// A body's fields ([`crate::web::request::fields`]).
fn fields(req: &AppRequest) -> Result<BTreeMap<String, String>, (u16, String)> {
    crate::web::request::fields(header(req, "content-type"), &req.body)
}

/// A sign-in or registration body's user name and password (`username` is the seed's form
/// field).
fn credentials(req: &AppRequest) -> Result<(String, String), (u16, String)> {
    let mut f = fields(req)?;
    let user = f.remove("user").or(f.remove("username"));
    match (user, f.remove("password")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err((400, "user and password are required".to_string())),
    }
}

fn message_json(m: &Message) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

/// Who is online, as an event without an id (ids are message positions, what a reconnect
/// resumes from; presence is sent whole to every new stream instead).
fn presence_event(online: &[String], out: &mut Vec<u8>) {
    sse::Event {
        id: None,
        event: Some("presence".into()),
        data: serde_json::json!({ "online": online }).to_string(),
    }
    .encode(out);
}

fn event_of(m: &Message) -> sse::Event {
    sse::Event {
        id: Some(m.pos.to_string()),
        event: Some("message".into()),
        data: message_json(m),
    }
}

impl NodeMachine for ChatNode {
    type Conn = BackendConn;
    type Spawn = Arc<BackendConfig>;
    type Job = Job;
    type JobDone = JobDone;
    type Command = std::convert::Infallible;
    type Event = ChatEvent;

    const SCOPE: Scope = Scope::Process;

    fn spawn(cfg: &Arc<BackendConfig>, now: Now, conn: NewConn) -> BackendConn {
        BackendConn::with_buggify(cfg.clone(), now, conn.buggify).with_peer(conn.peer)
    }

    fn run_job(job: Job) -> JobDone {
        match job {
            Job::Verify {
                hasher,
                password,
                hash,
            } => JobDone::Verified(!hash.is_empty() && hasher.verify(&password, &hash)),
            Job::Hash {
                hasher,
                password,
                salt,
            } => JobDone::Hashed(hasher.hash(&password, &salt)),
        }
    }

    fn handle(&mut self, now: Now, input: NodeInput<Self>, entropy: &mut dyn Entropy) {
        match input {
            NodeInput::Start => {
                self.out.push_back(NodeOutput::Listen {
                    listener: 0,
                    addr: self.cfg.addr,
                    spawn: self.cfg.site.clone(),
                });
                self.read_log();
            }
            NodeInput::Listening { result, .. } => self.out.push_back(match result {
                Ok(addr) => NodeOutput::Event(ChatEvent::Listening(addr)),
                Err(e) => NodeOutput::Exit {
                    reason: format!("cannot listen on {}: {}", self.cfg.addr, e.0),
                },
            }),
            NodeInput::FromConn { conn, msg } => {
                if self.draining {
                    return self.unavailable(conn);
                }
                self.on_request(now, conn, msg, entropy)
            }
            NodeInput::Closed { conn } => {
                let before = self.online();
                self.subscribers.remove(&conn);
                if self.online() != before {
                    self.tell_presence(None);
                }
            }
            NodeInput::Connected { .. } | NodeInput::ConnectFailed { .. } => {}
            NodeInput::Log { token, reply } => self.log_reply(now, token, reply, entropy),
            NodeInput::JobDone { token, done } => self.job_done(now, token, done, entropy),
            NodeInput::Timeout => {
                while let Some(t) = self.timers.pop_due(now.mono) {
                    match t {
                        Timer::RetryRecovery => self.recover(),
                        Timer::TrackerSweep => {
                            for gone in self.tracker.sweep(now.mono) {
                                let name = gone.name;
                                self.out
                                    .push_back(NodeOutput::Event(ChatEvent::PeerExpired { name }));
                            }
                        }
                        Timer::Heartbeat => {
                            let mut ping = Vec::new();
                            sse::comment("", &mut ping);
                            let conns: Vec<ConnId> = self.subscribers.keys().copied().collect();
                            for conn in conns {
                                self.reply(conn, AppReply::StreamData(ping.clone()));
                            }
                        }
                    }
                }
            }
            NodeInput::Command(never) => match never {},
            NodeInput::Drain => {
                self.draining = true;
                self.out.push_back(NodeOutput::Event(ChatEvent::Draining {
                    appended: self.appended,
                    syncs: self.commit.syncs,
                }));
                let conns: Vec<ConnId> =
                    std::mem::take(&mut self.subscribers).into_keys().collect();
                for conn in conns {
                    let mut bye = Vec::new();
                    sse::Event {
                        id: None,
                        event: Some("shutdown".into()),
                        data: "{}".into(),
                    }
                    .encode(&mut bye);
                    self.reply(conn, AppReply::StreamData(bye));
                    self.reply(conn, AppReply::StreamEnd);
                }
            }
        }
        if !self.subscribers.is_empty() && self.timers.get(&Timer::Heartbeat).is_none() {
            self.timers.set(Timer::Heartbeat, now.mono + HEARTBEAT);
        }
        if self.subscribers.is_empty() {
            self.timers.cancel(&Timer::Heartbeat);
        }
        match self.tracker.next_expiry() {
            Some(at) => self.timers.set(Timer::TrackerSweep, at),
            None => {
                self.timers.cancel(&Timer::TrackerSweep);
            }
        }
    }

    fn poll_output(&mut self) -> NodeOutput<Self> {
        self.out.pop_front().unwrap_or(NodeOutput::Wait {
            deadline: self.timers.next(),
        })
    }

    fn notice(event: &ChatEvent) -> Option<String> {
        match event {
            ChatEvent::DefaultAdminCreated => Some(
                "created the account admin with the password \"password\": sign in and change it"
                    .into(),
            ),
            ChatEvent::Recovered { records, cut } if *cut > 0 => Some(format!(
                "read {records} records from the log and cut {cut} bytes of a torn or corrupt tail"
            )),
            ChatEvent::LogFailed => Some("the log failed; rebuilding the state from it".into()),
            ChatEvent::Compacted {
                generation,
                records,
            } => Some(format!(
                "snapshot {generation} written: the log holds {records} records now"
            )),
            ChatEvent::CompactionFailed => {
                Some("a snapshot failed; the log it would have replaced goes on".into())
            }
            ChatEvent::Draining { appended, syncs } => Some(format!(
                "stopping: appended {appended} records in {syncs} syncs since start"
            )),
            _ => None,
        }
    }

    fn check_invariants(&self) {
        self.timers.check_invariants();
        self.tracker.check_invariants();
        // A silent peer leaves the list at its TTL because this timer is always armed for
        // the next expiry (the node's `Wait` names it), not because someone reads the list.
        assert_eq!(
            self.timers.get(&Timer::TrackerSweep),
            self.tracker.next_expiry(),
            "the sweep timer is armed for the next expiry"
        );
        assert_eq!(
            self.commit.waiting(),
            self.appends.len(),
            "every waiting append has its record"
        );
    }
}
