//! The peer tracker: who is online for peer-to-peer messaging, and where to reach them, as a
//! pure value the chat node keeps ([`super::node`] routes `/submit-info`, `/add-list`,
//! `/get-list` and `/remove-list` to it).
//!
//! # Model (BitTorrent's announce, on a LAN)
//! * One entry per **account**: a peer registers as the user it is signed in as, so a
//!   re-registration (a restarted peer with a new port, or a new peer id) replaces the old
//!   entry. No ghosts: the list never holds two entries for one user.
//! * A peer heartbeats every [`TrackerPolicy::heartbeat`]; an entry not heard from for
//!   [`TrackerPolicy::ttl`] (3 heartbeats by default, so two lost ones are tolerated) expires.
//!   Expiry is driven by the node's timer at [`Tracker::next_expiry`], not by reads of the
//!   list: a silent peer is gone from every list read after its expiry. Leaving removes at
//!   once.
//! * The address handed out is the one the tracker observed, with the registered port. An
//!   announced `ip` that differs is believed only when [`TrackerPolicy::accept_announced_ip`]
//!   is set, or when the peer connects from loopback (a peer on the tracker's own host names
//!   the address others reach it at). Behind the proxy, "observed" follows the chat node's
//!   `X-Forwarded-For` rule (trusted proxies only).
//! * The state is soft: it lives in memory only. A restarted tracker knows nobody; a peer whose
//!   heartbeat is answered "not registered" registers again, so the list refills within one
//!   heartbeat.
//! * A limit on everything: at most [`TrackerPolicy::max_peers`] entries (then `503`), peer ids
//!   of at most [`MAX_ID`] bytes.

use crate::node::Now;
use crate::time::{Duration, Instant};
// `core::net` holds address values only (no sockets).
use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

/// The longest peer id.
pub const MAX_ID: usize = 64;

/// How often peers heartbeat and when silent ones expire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerPolicy {
    /// The heartbeat interval every reply tells peers to follow.
    pub heartbeat: Duration,
    /// How long an entry lives after its last heartbeat.
    pub ttl: Duration,
    /// The most entries (one per user).
    pub max_peers: usize,
    /// Believe an announced `ip` that differs from the observed address.
    pub accept_announced_ip: bool,
}

impl TrackerPolicy {
    /// Heartbeats every `heartbeat`, entries live 3 heartbeats.
    pub fn every(heartbeat: Duration) -> TrackerPolicy {
        TrackerPolicy {
            heartbeat,
            ttl: heartbeat * 3,
            max_peers: 10_000,
            accept_announced_ip: false,
        }
    }
}

impl Default for TrackerPolicy {
    /// Heartbeats every 10 s, entries live 30 s.
    fn default() -> Self {
        TrackerPolicy::every(Duration::from_secs(10))
    }
}

/// One registered peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEntry {
    /// The peer's own id (it keeps it across restarts); the user name when it gave none.
    pub id: String,
    /// The account it registered as: its name on the list.
    pub name: String,
    pub ip: IpAddr,
    pub port: u16,
    /// The wall time of its last registration or heartbeat (Unix seconds).
    pub last_seen: u64,
    /// When it expires unless heard from again.
    pub expires: Instant,
}

impl PeerEntry {
    /// `{id, name, ip, port, last_seen}`: what `/get-list` shows of it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "ip": self.ip.to_string(),
            "port": self.port,
            "last_seen": self.last_seen,
        })
    }
}

/// What a registration did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// A user with no entry got one.
    New,
    /// The user's entry changed (another id or address): the old one is gone.
    Replaced,
    /// The same id and address again: a heartbeat.
    Refreshed,
}

/// Why the tracker refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerError {
    /// A heartbeat from a user with no entry (it expired, left, or the tracker restarted).
    NotRegistered,
    /// [`TrackerPolicy::max_peers`] entries already.
    Full,
}

/// The tracker (module docs).
#[derive(Clone, Debug)]
pub struct Tracker {
    policy: TrackerPolicy,
    by_user: BTreeMap<String, PeerEntry>,
    by_expiry: BTreeSet<(Instant, String)>,
}

impl Tracker {
    pub fn new(policy: TrackerPolicy) -> Tracker {
        Tracker {
            policy,
            by_user: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    pub fn policy(&self) -> &TrackerPolicy {
        &self.policy
    }

    /// Registers `user` as peer `id` at `ip:port`, replacing any entry it had.
    pub fn submit(
        &mut self,
        user: &str,
        id: &str,
        ip: IpAddr,
        port: u16,
        now: Now,
    ) -> Result<Submitted, TrackerError> {
        let fresh = PeerEntry {
            id: id.to_string(),
            name: user.to_string(),
            ip,
            port,
            last_seen: now.wall.0,
            expires: now.mono + self.policy.ttl,
        };
        let outcome = match self.by_user.get(user) {
            None if self.by_user.len() >= self.policy.max_peers => {
                return Err(TrackerError::Full);
            }
            None => Submitted::New,
            Some(old) if old.id == id && old.ip == ip && old.port == port => Submitted::Refreshed,
            Some(_) => Submitted::Replaced,
        };
        self.put(fresh);
        Ok(outcome)
    }

    /// A heartbeat: `user`'s entry lives another TTL.
    pub fn heartbeat(&mut self, user: &str, now: Now) -> Result<&PeerEntry, TrackerError> {
        let mut entry = self
            .by_user
            .get(user)
            .cloned()
            .ok_or(TrackerError::NotRegistered)?;
        entry.last_seen = now.wall.0;
        entry.expires = now.mono + self.policy.ttl;
        self.put(entry);
        Ok(&self.by_user[user])
    }

    /// `user` leaves: its entry, if it had one.
    pub fn remove(&mut self, user: &str) -> Option<PeerEntry> {
        let old = self.by_user.remove(user)?;
        self.by_expiry.remove(&(old.expires, old.name.clone()));
        Some(old)
    }

    /// The entries alive at `now`, by name.
    pub fn peers(&self, now: Instant) -> impl Iterator<Item = &PeerEntry> {
        self.by_user.values().filter(move |e| e.expires > now)
    }

    /// `user`'s entry, alive or not yet swept.
    pub fn get(&self, user: &str) -> Option<&PeerEntry> {
        self.by_user.get(user)
    }

    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// Removes and returns every entry expired at `now`, earliest first.
    pub fn sweep(&mut self, now: Instant) -> Vec<PeerEntry> {
        let mut gone = Vec::new();
        while let Some((at, _)) = self.by_expiry.first() {
            if *at > now {
                break;
            }
            let Some((_, user)) = self.by_expiry.pop_first() else {
                break;
            };
            if let Some(e) = self.by_user.remove(&user) {
                gone.push(e);
            }
        }
        gone
    }

    /// When the next entry expires: the node's sweep timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    /// Panics unless both indexes name the same entries.
    pub fn check_invariants(&self) {
        assert_eq!(
            self.by_user.len(),
            self.by_expiry.len(),
            "one expiry per entry"
        );
        for (at, user) in &self.by_expiry {
            assert_eq!(self.by_user.get(user).map(|e| e.expires), Some(*at));
        }
    }

    fn put(&mut self, entry: PeerEntry) {
        if let Some(old) = self.by_user.get(&entry.name) {
            self.by_expiry.remove(&(old.expires, old.name.clone()));
        }
        self.by_expiry.insert((entry.expires, entry.name.clone()));
        self.by_user.insert(entry.name.clone(), entry);
    }
}

/// Whether `id` may be a peer id: 1 to [`MAX_ID`] of `A-Z a-z 0-9 - _ .`.
pub fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether an announced `ip` is handed out instead of the `observed` one (module docs).
pub fn announced_ip_allowed(announced: IpAddr, observed: IpAddr, policy: &TrackerPolicy) -> bool {
    announced == observed || policy.accept_announced_ip || observed.is_loopback()
}

/// How long until a heartbeat is due again, as replies state it.
pub fn interval_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
