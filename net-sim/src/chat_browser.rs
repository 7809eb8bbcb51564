//! A simulated browser of the chat server: what the web UI does, over the chat node's HTTP API,
//! with the oracles that only a client can state.
//!
//! # What it does
//! Registers its account (`u{host}`), signs in (the session cookie goes to a real RFC 6265
//! [`Jar`], and every later request carries what the jar says), checks who `/me` says it is,
//! opens one event stream for all channels, maybe creates a channel, and posts its messages
//! one at a time with a transaction id each, retrying a post that got no answer (a reset, a
//! timeout, a `503`, a `409` for a save in flight) with the same id, after a backoff with
//! jitter. Two requests are an attacker's: a forged session (`sid` of its own making, and the
//! seed's `auth=true`) must be `401`, and a post with the session but a foreign `Origin` must
//! be `403`.
//!
//! The stream resumes from the last event id after any break (a reset, a drain's final event,
//! or 45 s without a byte, three missed heartbeats: a crashed server sends nothing). A `reset`
//! event (too much missed to replay) makes it backfill every channel's history by pages.
//!
//! # Oracles (checked as answers arrive)
//! * **Who**: `/me` names this browser's user; every message answered to its post is its own,
//!   with the text, channel and transaction it sent; a forged cookie opens nothing, a foreign
//!   `Origin` changes nothing, a session is never lost (`401` after sign-in).
//! * **One order**: every message seen, by answer, event or history page, agrees with the
//!   world's [`Ledger`] on what sits at its (channel, seq) and at its position; a retried
//!   transaction is answered with the message it first got.
//! * **No duplicate, no hidden gap**: on a stream, each message event's id is its position and
//!   is one more than the last (counting from the resume point); after a `reset` and the
//!   backfill it asks for, every position up to the reset's holds a message.
//! * **Presence**: every presence event on its own open stream names its user.
//!
//! The world checks the rest at the end: what was acknowledged is on the disk, and every
//! browser shows every message the server holds (convergence).

use crate::engine::StreamId;
use crate::scenario::HostId;
use crate::stream_client::{Ended, Io, Script};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use weaprous_core::http::parse::{Event, Parser};
use weaprous_core::http::{Limits, Method, ResponseHead};
use weaprous_core::time::{Duration, Instant};
use weaprous_core::web::jar::Jar;
use weaprous_core::web::sse;
use weaprous_core::web::url::Url;

/// The chat server's host and port.
pub const SERVER: HostId = 0;
pub const PORT: u16 = 8000;
/// The site's name as browsers write it.
const SITE: &str = "chat.sim";
/// How long a request waits for its whole answer before the browser gives the connection up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// A stream silent this long is dead (the server's heartbeat is every 15 s).
const STREAM_SILENCE: Duration = Duration::from_secs(45);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// History page size the browser asks for.
const PAGE: usize = 50;

/// What the browsers saw, shared by all of them: one entry per (channel, seq) and per position.
#[derive(Default, Debug)]
pub struct Seen {
    pub by_seq: BTreeMap<(String, u64), (u64, String, String)>,
    pub by_pos: BTreeMap<u64, (String, u64)>,
    /// Every message a post was answered with: (channel, seq, author, text).
    pub acked: Vec<(String, u64, String, String)>,
}
pub type Ledger = Rc<RefCell<Seen>>;

/// A message as the API writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    channel: String,
    seq: u64,
    pos: u64,
    author: String,
    text: String,
    txn: Option<String>,
}

impl Msg {
    fn from_json(v: &Value) -> Result<Msg, String> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        Ok(Msg {
            channel: s("channel").ok_or_else(|| format!("a message without a channel: {v}"))?,
            seq: n("seq").ok_or_else(|| format!("a message without a seq: {v}"))?,
            pos: n("pos").ok_or_else(|| format!("a message without a pos: {v}"))?,
            author: s("author").ok_or_else(|| format!("a message without an author: {v}"))?,
            text: s("text").ok_or_else(|| format!("a message without text: {v}"))?,
            txn: s("txn"),
        })
    }
}

impl Seen {
    /// Records `m`, or says how it contradicts what was seen before (one order).
    fn witness(&mut self, m: &Msg) -> Result<(), String> {
        let key = (m.channel.clone(), m.seq);
        let val = (m.pos, m.author.clone(), m.text.clone());
        if let Some(old) = self.by_seq.get(&key) {
            if *old != val {
                return Err(format!(
                    "one order: {}#{} was {old:?}, now {val:?}",
                    m.channel, m.seq
                ));
            }
            return Ok(());
        }
        if let Some(old) = self.by_pos.get(&m.pos) {
            return Err(format!(
                "one order: position {} was {old:?}, now {}#{}",
                m.pos, m.channel, m.seq
            ));
        }
        self.by_seq.insert(key.clone(), val);
        self.by_pos.insert(m.pos, key);
        Ok(())
    }
}

/// One thing the browser asks of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Task {
    Register,
    Login,
    Me,
    /// A made-up session and the seed's `auth=true`: must be 401.
    Forged,
    CreateChannel(String),
    /// The post at this index of the plan.
    Post(usize),
    /// A post with the session and a foreign `Origin`: must be 403.
    CrossOrigin,
    /// A new password (then a sign-in with it must work).
    ChangePassword,
    /// Backfill after a `reset`: the channel list, then pages.
    Channels,
    History {
        channel: String,
        after: u64,
    },
}

/// A post of the plan.
#[derive(Clone, Debug)]
struct Post {
    channel: String,
    text: String,
    txn: String,
    /// What its first successful answer said: (seq, pos).
    acked: Option<(u64, u64)>,
}

/// The API connection: one request at a time, kept alive.
struct Api {
    conn: StreamId,
    parser: Parser,
    /// The request awaiting its answer, and since when.
    waiting: Option<(Task, Instant)>,
    head: Option<ResponseHead>,
    body: Vec<u8>,
}

/// The event stream's connection.
struct Stream {
    conn: StreamId,
    parser: Parser,
    reader: sse::Reader,
    last_byte: Instant,
    /// The status line arrived and said 200.
    open: bool,
}

/// What one browser does (module docs).
pub struct Browser {
    host: HostId,
    pub user: String,
    password: String,
    rng: fastrand::Rng,
    jar: Jar,
    ledger: Ledger,
    start_at: Instant,
    tasks: VecDeque<Task>,
    posts: Vec<Post>,
    /// When the next task may go (a think time, or a retry's backoff).
    next_at: Instant,
    failures: u32,
    api: Option<Api>,
    /// `/register` answered 201 once: the account exists.
    registered: bool,
    /// A password change went out and its answer was lost: it may have happened.
    changing: bool,
    signed_in: bool,
    stream: Option<Stream>,
    stream_at: Option<Instant>,
    stream_failures: u32,
    /// The last message position this browser's stream delivered (what it resumes from).
    last_pos: u64,
    /// After a `reset` to this position: once the backfill is done, every position up to it
    /// must be shown.
    backfill_to: Option<u64>,
    /// What the page shows: by position, its (channel, seq).
    pub shown: BTreeMap<u64, (String, u64)>,
    /// Per channel, the seqs shown.
    seqs: BTreeMap<String, BTreeSet<u64>>,
    pub answered: usize,
}

impl Browser {
    /// Browser `host` of a run with `seed`; `channels` are the names it may create and post to
    /// besides `general`.
    pub fn new(seed: u64, host: HostId, ledger: Ledger, posts: usize, start_ms: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ (host as u64).wrapping_mul(0x9e37_79b9));
        let mut tasks = VecDeque::from([Task::Register, Task::Login, Task::Me, Task::Forged]);
        let mine = ["random", "dev", "ops"][rng.usize(..3)].to_string();
        if rng.u8(..5) == 0 {
            tasks.extend([Task::ChangePassword, Task::Login, Task::Me]);
        }
        let own_channel = rng.bool();
        if own_channel {
            tasks.push_back(Task::CreateChannel(mine.clone()));
        }
        let cross_at = rng.usize(..=posts);
        let mut plan = Vec::new();
        for i in 0..posts {
            if i == cross_at {
                tasks.push_back(Task::CrossOrigin);
            }
            let channel = if own_channel && rng.bool() {
                mine.clone()
            } else {
                "general".to_string()
            };
            // Text a page must show as text, and JSON and forms must carry whole.
            let flavour = [
                "",
                " <img src=x onerror=alert(1)>",
                " \"q\" & é ✓",
                "\nline 2",
            ][rng.usize(..4)];
            plan.push(Post {
                channel,
                text: format!("u{host} says {i}{flavour}"),
                txn: format!("t{host}-{i}"),
                acked: None,
            });
            tasks.push_back(Task::Post(i));
        }
        if cross_at == posts {
            tasks.push_back(Task::CrossOrigin);
        }
        Browser {
            host,
            user: format!("u{host}"),
            password: format!("pw-of-u{host}"),
            rng,
            jar: Jar::new(),
            ledger,
            start_at: Instant::ZERO + Duration::from_millis(start_ms),
            tasks,
            posts: plan,
            next_at: Instant::ZERO + Duration::from_millis(start_ms),
            failures: 0,
            api: None,
            registered: false,
            changing: false,
            signed_in: false,
            stream: None,
            stream_at: None,
            stream_failures: 0,
            last_pos: 0,
            backfill_to: None,
            shown: BTreeMap::new(),
            seqs: BTreeMap::new(),
            answered: 0,
        }
    }

    /// Every task is done (every post acknowledged).
    pub fn done(&self) -> bool {
        self.tasks.is_empty() && self.api.as_ref().is_none_or(|a| a.waiting.is_none())
    }

    /// The event stream is open and read.
    pub fn streaming(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.open)
    }

    /// Acknowledged posts: (channel, seq, txn).
    pub fn acked(&self) -> impl Iterator<Item = (&str, u64, &str)> {
        self.posts.iter().filter_map(|p| {
            p.acked
                .map(|(seq, _)| (p.channel.as_str(), seq, p.txn.as_str()))
        })
    }

    fn url(target: &str) -> Url {
        Url::parse(&format!("http://{SITE}{target}")).expect("a valid URL")
    }

    /// A request as the browser writes it: its cookies, and `Origin` on every change.
    fn request(
        &mut self,
        io: &Io,
        method: Method,
        target: &str,
        body: Option<&Value>,
        cookie: Option<String>,
        origin: &str,
    ) -> Vec<u8> {
        let cookie = cookie.unwrap_or_else(|| self.jar.header(io.wall(), &Self::url(target)));
        let mut r = format!(
            "{} {target} HTTP/1.1\r\nHost: {SITE}\r\nAccept: application/json\r\n",
            method.as_str()
        );
        if !cookie.is_empty() {
            r.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if method != Method::Get {
            r.push_str(&format!("Origin: {origin}\r\n"));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        if method == Method::Post {
            r.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        r.push_str("\r\n");
        r.push_str(&body);
        r.into_bytes()
    }

    fn bytes_of(&mut self, io: &Io, task: &Task) -> (Method, Vec<u8>) {
        use serde_json::json;
        let me = format!("http://{SITE}");
        let creds = json!({ "user": self.user, "password": self.password });
        let (method, target, body, cookie, origin) = match task {
            Task::Register => (Method::Post, "/register".into(), Some(creds), None, me),
            Task::Login => (Method::Post, "/login".into(), Some(creds), None, me),
            Task::Me => (Method::Get, "/me".into(), None, None, me),
            Task::ChangePassword => (
                Method::Post,
                "/password".into(),
                Some(
                    json!({ "current": self.password, "password": format!("{}-new", self.password) }),
                ),
                None,
                me,
            ),
            Task::Forged => {
                let forged = format!("sid={:064x}; auth=true", self.rng.u128(..));
                (Method::Get, "/me".into(), None, Some(forged), me)
            }
            Task::CreateChannel(name) => (
                Method::Post,
                "/channels".into(),
                Some(json!({ "name": name })),
                None,
                me,
            ),
            Task::Post(i) => {
                let p = &self.posts[*i];
                (
                    Method::Post,
                    format!("/channel/{}/message", p.channel),
                    Some(json!({ "text": p.text, "txn": p.txn })),
                    None,
                    me,
                )
            }
            Task::CrossOrigin => (
                Method::Post,
                "/channel/general/message".into(),
                Some(json!({ "text": format!("forged by evil for u{}", self.host) })),
                None,
                "http://evil.example".into(),
            ),
            Task::Channels => (Method::Get, "/channels".into(), None, None, me),
            Task::History { channel, after } => (
                Method::Get,
                format!("/channel/{channel}/messages?after={after}&limit={PAGE}"),
                None,
                None,
                me,
            ),
        };
        let bytes = self.request(io, method.clone(), &target, body.as_ref(), cookie, &origin);
        (method, bytes)
    }

    /// Sends the next task if its time has come and nothing is outstanding.
    fn send_next(&mut self, io: &mut Io) {
        let now = io.now();
        if now < self.next_at || self.api.as_ref().is_some_and(|a| a.waiting.is_some()) {
            return;
        }
        let Some(task) = self.tasks.pop_front() else {
            return;
        };
        let (method, bytes) = self.bytes_of(io, &task);
        if self.api.as_ref().is_none_or(|a| !io.is_open(a.conn)) {
            let conn = io.connect(SERVER, PORT);
            self.api = Some(Api {
                conn,
                parser: Parser::response(Limits::default()),
                waiting: None,
                head: None,
                body: Vec::new(),
            });
        }
        let api = self.api.as_mut().expect("just opened");
        api.parser.expect_response_to(method);
        api.waiting = Some((task, now));
        io.send(api.conn, &bytes);
    }

    /// The request failed without an answer that settles it: `task` goes again later.
    fn retry(&mut self, io: &mut Io, task: Task, wait: Option<Duration>) {
        self.tasks.push_front(task);
        self.failures += 1;
        let wait = wait.unwrap_or_else(|| self.backoff(self.failures));
        self.next_at = io.now() + wait;
    }

    fn backoff(&mut self, failures: u32) -> Duration {
        let exp = (BACKOFF_MIN.as_micros() as u64)
            .saturating_mul(1 << failures.min(6))
            .min(BACKOFF_MAX.as_micros() as u64);
        // Full jitter keeps fifty browsers from retrying in step.
        Duration::from_micros(exp / 2 + self.rng.u64(..=exp / 2))
    }

    /// A task is done: the next one goes after a think time.
    fn task_done(&mut self, io: &mut Io) {
        self.failures = 0;
        self.answered += 1;
        self.next_at = io.now() + Duration::from_millis(self.rng.u64(20..=600));
    }

    /// The API connection is gone: its request, if any, is retried.
    fn api_lost(&mut self, io: &mut Io) {
        if let Some(api) = self.api.take() {
            io.close(api.conn);
            if let Some((task, _)) = api.waiting {
                if task == Task::ChangePassword {
                    self.changing = true;
                }
                self.retry(io, task, None);
            }
        }
    }

    fn retry_after(head: &ResponseHead) -> Option<Duration> {
        head.headers
            .get_str("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    /// Judges one whole answer to `task`.
    fn answer(
        &mut self,
        io: &mut Io,
        task: Task,
        head: ResponseHead,
        body: &[u8],
    ) -> Result<(), String> {
        let status = head.status.0;
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let unexpected = |what: &str| {
            format!(
                "{task:?} ({what}) answered {status}: {}",
                String::from_utf8_lossy(body)
            )
        };
        for c in head.headers.get_all("set-cookie") {
            let c = String::from_utf8_lossy(c).into_owned();
            self.jar.set(io.wall(), &Self::url("/"), &c);
        }
        // A server rebuilding its state, or one not ready yet, says so; the task goes again.
        if status == 503 {
            io.cover("chat.unavailable_retried");
            self.retry(io, task, Self::retry_after(&head));
            return Ok(());
        }
        // The head reached the server after its header deadline (held by a clog or a pause):
        // browsers send such a request again. (The backend world holds 408s to account on a
        // healthy network.)
        if status == 408 {
            io.cover("chat.request_timeout_retried");
            self.retry(io, task, None);
            return Ok(());
        }
        if status == 429 {
            io.cover("chat.rate_limited");
            let wait =
                Self::retry_after(&head).ok_or_else(|| unexpected("429 without Retry-After"))?;
            self.retry(io, task, Some(wait));
            return Ok(());
        }
        match &task {
            Task::Register => match status {
                201 => self.registered = true,
                // Taken: by an earlier try of ours whose answer was lost (or still hashing).
                409 => io.cover("chat.register_retry_found_taken"),
                _ => return Err(unexpected("register")),
            },
            Task::Login => match status {
                200 if self.jar.header(io.wall(), &Self::url("/")).contains("sid=") => {
                    self.signed_in = true;
                    if self.stream.is_none() {
                        self.stream_at = Some(io.now());
                    }
                }
                // A register whose answer was lost may not have become durable: register
                // again (a 201 then, or 409 if it had).
                401 if !self.registered => {
                    io.cover("chat.register_again");
                    self.retry(io, Task::Login, None);
                    self.tasks.push_front(Task::Register);
                    return Ok(());
                }
                _ => return Err(unexpected("sign in")),
            },
            Task::Me => {
                let who = json.get("user").and_then(Value::as_str);
                if status != 200 || who != Some(self.user.as_str()) {
                    return Err(format!(
                        "who: the session of {} opened {who:?} ({status})",
                        self.user
                    ));
                }
            }
            Task::Forged => {
                if status != 401 {
                    return Err(format!(
                        "who: a forged session opened something ({status}): {json}"
                    ));
                }
                io.cover("chat.forged_session_refused");
            }
            Task::ChangePassword => match status {
                200 => {
                    io.cover("chat.password_changed");
                    self.password.push_str("-new");
                    self.registered = true;
                }
                // The current password is no longer right: an earlier try whose answer was
                // lost did it (answered only once durable, so the sign-in next proves it).
                403 if self.changing => {
                    io.cover("chat.password_change_found_done");
                    self.password.push_str("-new");
                    self.registered = true;
                }
                _ => return Err(unexpected("change password")),
            },
            // Another browser's creation of that name waits for its sync: ask again.
            Task::CreateChannel(_) if status == 409 && Self::retry_after(&head).is_some() => {
                io.cover("chat.channel_being_created");
                self.retry(io, task.clone(), Self::retry_after(&head));
                return Ok(());
            }
            Task::CreateChannel(_) => {
                if status != 201 && status != 409 {
                    return Err(unexpected("create channel"));
                }
            }
            Task::Post(i) => {
                let i = *i;
                return self.post_answered(io, task, i, status, &head, &json, body);
            }
            Task::CrossOrigin => {
                if status != 403 {
                    return Err(format!(
                        "who: a post from a foreign Origin was answered {status}"
                    ));
                }
                io.cover("chat.cross_origin_refused");
            }
            Task::Channels => {
                if status != 200 {
                    return Err(unexpected("channels"));
                }
                let names: Vec<String> = json
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect();
                for name in names.into_iter().rev() {
                    let after = self.shown_prefix(&name);
                    self.tasks.push_front(Task::History {
                        channel: name,
                        after,
                    });
                }
                self.answered += 1;
                return Ok(());
            }
            Task::History { channel, .. } => {
                if status != 200 {
                    return Err(unexpected("history"));
                }
                let msgs = json.get("messages").and_then(Value::as_array).cloned();
                let msgs = msgs.ok_or_else(|| unexpected("no messages"))?;
                let mut last = None;
                for v in &msgs {
                    let m = Msg::from_json(v)?;
                    if m.channel != *channel {
                        return Err(format!("history of {channel} holds {m:?}"));
                    }
                    self.show(&m)?;
                    last = Some(m.seq);
                }
                if let (Some(after), true) = (last, msgs.len() == PAGE) {
                    self.tasks.push_front(Task::History {
                        channel: channel.clone(),
                        after,
                    });
                }
                self.answered += 1;
                return self.check_backfill(io);
            }
        }
        self.task_done(io);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn post_answered(
        &mut self,
        io: &mut Io,
        task: Task,
        i: usize,
        status: u16,
        head: &ResponseHead,
        json: &Value,
        body: &[u8],
    ) -> Result<(), String> {
        match status {
            200 | 201 => {
                let m = Msg::from_json(json)?;
                let p = &self.posts[i];
                if m.author != self.user
                    || m.text != p.text
                    || m.channel != p.channel
                    || m.txn.as_deref() != Some(p.txn.as_str())
                {
                    return Err(format!("who: post {p:?} by {} answered {m:?}", self.user));
                }
                if let Some(first) = p.acked {
                    if first != (m.seq, m.pos) {
                        return Err(format!(
                            "one order: transaction {} answered {first:?}, then {:?}",
                            p.txn,
                            (m.seq, m.pos)
                        ));
                    }
                }
                if status == 200 {
                    io.cover("chat.retried_post_got_original");
                }
                self.posts[i].acked = Some((m.seq, m.pos));
                let mut ledger = self.ledger.borrow_mut();
                ledger.witness(&m)?;
                ledger
                    .acked
                    .push((m.channel.clone(), m.seq, m.author.clone(), m.text.clone()));
                drop(ledger);
                io.cover("chat.post_acked");
                self.task_done(io);
                Ok(())
            }
            // The same transaction is being saved: ask again when it says.
            409 if Self::retry_after(head).is_some() => {
                io.cover("chat.post_in_flight_retried");
                self.retry(io, task, Self::retry_after(head));
                Ok(())
            }
            401 => Err(format!(
                "who: the session of {} was lost: {}",
                self.user,
                String::from_utf8_lossy(body)
            )),
            _ => Err(format!(
                "post {:?} answered {status}: {}",
                self.posts[i],
                String::from_utf8_lossy(body)
            )),
        }
    }

    /// Puts `m` on the page (once: history and the stream may both bring it).
    fn show(&mut self, m: &Msg) -> Result<(), String> {
        self.ledger.borrow_mut().witness(m)?;
        if let Some(old) = self.shown.get(&m.pos) {
            if *old != (m.channel.clone(), m.seq) {
                return Err(format!(
                    "one order: position {} shown as {old:?} and {m:?}",
                    m.pos
                ));
            }
            return Ok(());
        }
        self.shown.insert(m.pos, (m.channel.clone(), m.seq));
        self.seqs
            .entry(m.channel.clone())
            .or_default()
            .insert(m.seq);
        Ok(())
    }

    /// The last seq of `channel` up to which every message is shown: where a backfill starts
    /// (live events may already have shown later ones).
    fn shown_prefix(&self, channel: &str) -> u64 {
        let Some(seqs) = self.seqs.get(channel) else {
            return 0;
        };
        let mut k = 0;
        for &s in seqs {
            if s != k + 1 {
                break;
            }
            k = s;
        }
        k
    }

    /// After a `reset` to R, once no backfill task is left: every position up to R is shown.
    fn check_backfill(&mut self, io: &mut Io) -> Result<(), String> {
        let Some(to) = self.backfill_to else {
            return Ok(());
        };
        let pending = self
            .tasks
            .iter()
            .any(|t| matches!(t, Task::Channels | Task::History { .. }));
        if pending {
            return Ok(());
        }
        self.backfill_to = None;
        if let Some(missing) = (1..=to).find(|p| !self.shown.contains_key(p)) {
            return Err(format!(
                "hidden gap: after a reset to {to} and its backfill, position {missing} is not shown"
            ));
        }
        io.cover("chat.reset_backfilled");
        self.failures = 0;
        self.next_at = io.now();
        Ok(())
    }

    // ----- the event stream -----

    fn open_stream(&mut self, io: &mut Io) {
        self.stream_at = None;
        let conn = io.connect(SERVER, PORT);
        let mut parser = Parser::response(Limits::default());
        parser.expect_response_to(Method::Get);
        let cookie = self.jar.header(io.wall(), &Self::url("/events"));
        let req = format!(
            "GET /events HTTP/1.1\r\nHost: {SITE}\r\nAccept: text/event-stream\r\n\
             Cookie: {cookie}\r\nLast-Event-ID: {}\r\n\r\n",
            self.last_pos
        );
        io.send(conn, req.as_bytes());
        self.stream = Some(Stream {
            conn,
            parser,
            reader: sse::Reader::new(),
            last_byte: io.now(),
            open: false,
        });
    }

    /// The stream ended or went silent: reconnect after a backoff.
    fn stream_lost(&mut self, io: &mut Io) {
        if let Some(s) = self.stream.take() {
            io.close(s.conn);
            self.stream_failures += 1;
            let wait = self.backoff(self.stream_failures);
            self.stream_at = Some(io.now() + wait);
            io.cover("chat.stream_resumed");
        }
    }

    fn stream_bytes(&mut self, io: &mut Io, bytes: &[u8]) -> Result<(), String> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        s.last_byte = io.now();
        s.parser.feed(bytes);
        let mut events = Vec::new();
        let mut ended = false;
        loop {
            match s.parser.next_event() {
                Ok(Event::Response(head)) => {
                    // Not ready, or the head arrived after the server's header deadline (a
                    // clog or a pause held it): open it again, as a browser does.
                    if matches!(head.status.0, 503 | 408) {
                        ended = true;
                        break;
                    }
                    if head.status.0 != 200 {
                        return Err(format!(
                            "who: the event stream of {} answered {}",
                            self.user, head.status.0
                        ));
                    }
                    s.open = true;
                }
                Ok(Event::Data(d)) => {
                    let got = s
                        .reader
                        .feed(&d)
                        .map_err(|_| "an event line too long".to_string())?;
                    events.extend(got);
                }
                Ok(Event::End { .. }) | Ok(Event::Closed) | Err(_) => {
                    ended = true;
                    break;
                }
                Ok(Event::NeedData) => break,
                Ok(other) => return Err(format!("event stream: {other:?}")),
            }
        }
        for ev in events {
            self.stream_event(io, ev)?;
        }
        if ended {
            self.stream_lost(io);
        }
        Ok(())
    }

    fn stream_event(&mut self, io: &mut Io, ev: sse::Event) -> Result<(), String> {
        let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
        match ev.event.as_deref().unwrap_or("message") {
            "message" => {
                let m = Msg::from_json(&data)?;
                let id: Option<u64> = ev.id.as_deref().and_then(|i| i.parse().ok());
                if id != Some(m.pos) {
                    return Err(format!(
                        "an event's id {:?} is not its position {}",
                        ev.id, m.pos
                    ));
                }
                if m.pos <= self.last_pos {
                    return Err(format!(
                        "duplicate: {} got position {} again (last {})",
                        self.user, m.pos, self.last_pos
                    ));
                }
                if m.pos != self.last_pos + 1 {
                    return Err(format!(
                        "hidden gap: {} got position {} after {}",
                        self.user, m.pos, self.last_pos
                    ));
                }
                self.last_pos = m.pos;
                self.stream_failures = 0;
                io.cover("chat.event_in_order");
                self.show(&m)
            }
            "reset" => {
                let to: u64 = ev
                    .id
                    .as_deref()
                    .and_then(|i| i.parse().ok())
                    .ok_or("a reset without an id")?;
                if to < self.last_pos {
                    return Err(format!(
                        "a reset to {to} behind the last event {}",
                        self.last_pos
                    ));
                }
                io.cover("chat.reset_announced");
                self.last_pos = to;
                self.backfill_to = Some(to);
                if !self.tasks.contains(&Task::Channels) {
                    self.tasks.push_front(Task::Channels);
                }
                Ok(())
            }
            "presence" => {
                let names = data.get("online").and_then(Value::as_array);
                let me = names.is_some_and(|n| n.iter().any(|u| u.as_str() == Some(&self.user)));
                if !me {
                    return Err(format!(
                        "presence on {}'s own stream leaves it out: {data}",
                        self.user
                    ));
                }
                io.cover("chat.presence_seen");
                Ok(())
            }
            "shutdown" => {
                io.cover("chat.shutdown_event");
                Ok(())
            }
            other => Err(format!("an event of unknown type {other:?}")),
        }
    }

    fn arm(&self, io: &mut Io) {
        let api = self
            .api
            .as_ref()
            .and_then(|a| a.waiting.as_ref())
            .map(|(_, since)| *since + ANSWER_TIMEOUT);
        let next = (!self.tasks.is_empty() && api.is_none()).then_some(self.next_at);
        let stream = self.stream.as_ref().map(|s| s.last_byte + STREAM_SILENCE);
        if let Some(at) = [api, next, self.stream_at, stream]
            .into_iter()
            .flatten()
            .min()
        {
            io.wake_at(at);
        }
    }
}

impl Script for Browser {
    fn wake(&mut self, io: &mut Io) {
        let now = io.now();
        if now < self.start_at {
            io.wake_at(self.start_at);
            return;
        }
        if self
            .api
            .as_ref()
            .and_then(|a| a.waiting.as_ref())
            .is_some_and(|(_, since)| now >= *since + ANSWER_TIMEOUT)
        {
            io.cover("chat.answer_overdue");
            self.api_lost(io);
        }
        if self
            .stream
            .as_ref()
            .is_some_and(|s| now >= s.last_byte + STREAM_SILENCE)
        {
            io.cover("chat.stream_silent");
            self.stream_lost(io);
        }
        if self.signed_in && self.stream.is_none() && self.stream_at.is_some_and(|t| t <= now) {
            self.open_stream(io);
        }
        self.send_next(io);
        self.arm(io);
    }

    fn received(&mut self, io: &mut Io, conn: StreamId, bytes: &[u8]) -> Result<(), String> {
        if self.stream.as_ref().is_some_and(|s| s.conn == conn) {
            self.stream_bytes(io, bytes)?;
        } else if let Some(api) = self.api.as_mut().filter(|a| a.conn == conn) {
            api.parser.feed(bytes);
            loop {
                let api = self.api.as_mut().expect("api");
                match api.parser.next_event() {
                    Ok(Event::Response(head)) => api.head = Some(head),
                    Ok(Event::Data(d)) => api.body.extend_from_slice(&d),
                    Ok(Event::End { .. }) => {
                        let head = api.head.take().ok_or("an answer ended without a head")?;
                        let body = std::mem::take(&mut api.body);
                        let (task, _) = api.waiting.take().ok_or("an answer to nothing")?;
                        if head.headers.has_token("connection", "close") {
                            self.api_lost(io);
                        }
                        self.answer(io, task, head, &body)?;
                    }
                    Ok(Event::NeedData) => break,
                    Ok(other) => return Err(format!("api: {other:?}")),
                    Err(_) => {
                        self.api_lost(io);
                        break;
                    }
                }
                if self.api.is_none() {
                    break;
                }
            }
        }
        let now = io.now();
        self.wake_if_due(io, now);
        Ok(())
    }

    fn ended(&mut self, io: &mut Io, conn: StreamId, _how: Ended) {
        if self.stream.as_ref().is_some_and(|s| s.conn == conn) {
            self.stream_lost(io);
        } else if self.api.as_ref().is_some_and(|a| a.conn == conn) {
            self.api_lost(io);
        }
        let now = io.now();
        self.wake_if_due(io, now);
    }

    fn describe(&self) -> String {
        format!(
            "{}: tasks {:?}, waiting {:?}, stream open {}, last pos {}, shown {}, next at {:?}",
            self.user,
            self.tasks.iter().take(3).collect::<Vec<_>>(),
            self.api.as_ref().and_then(|a| a.waiting.clone()),
            self.streaming(),
            self.last_pos,
            self.shown.len(),
            self.next_at,
        )
    }
}

impl Browser {
    /// After an answer or a loss: go on at once if nothing holds the browser back.
    fn wake_if_due(&mut self, io: &mut Io, now: Instant) {
        if now >= self.next_at || self.stream_at.is_some_and(|t| t <= now) {
            self.wake(io);
        } else {
            self.arm(io);
        }
    }
}
