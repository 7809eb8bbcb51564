//! Sessions: which user a session token belongs to, until when.
//!
//! The store is plain state over wall-clock seconds ([`UnixTime`], since sessions outlive a
//! restart): the node that owns it persists what changes and feeds it back at start.
//!
//! # Policy (the defaults of [`SessionPolicy`])
//! * A session ends after **14 days without use** (idle) and **30 days after login** whatever
//!   happens (absolute), as chat products keep people signed in on their own devices while a
//!   stolen token still dies.
//! * At most **32 sessions per user**: a new login beyond that ends the user's least recently
//!   used one. At most [`SessionPolicy::max_total`] in all: the least recently used goes.
//! * Tokens are made by the caller from the node's entropy ([`new_token`]: 32 bytes, 256 bits,
//!   as lowercase hex), never from a seeded generator.
//! * `last_seen` moves on every use; [`Sessions::check`] says when it moved far enough
//!   ([`SessionPolicy::persist_every`]) that the owner should persist it, so a restart loses at
//!   most that much of the idle clock (and a session can then only end sooner, never later).

use crate::time::UnixTime;
use std::collections::BTreeMap;

/// How long sessions live and how many there may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_secs: u64,
    pub absolute_secs: u64,
    pub max_per_user: usize,
    pub max_total: usize,
    /// How far `last_seen` may move before the owner is told to persist it.
    pub persist_every: u64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_secs: 14 * 86_400,
            absolute_secs: 30 * 86_400,
            max_per_user: 32,
            max_total: 100_000,
            persist_every: 3_600,
        }
    }
}

/// One session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub user: String,
    pub created: u64,
    pub last_seen: u64,
    /// `last_seen` as last persisted.
    #[serde(skip)]
    pub persisted_seen: u64,
}

/// The answer of [`Sessions::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Valid, for this user; `persist` when the owner should record the new `last_seen`.
    Valid { user: String, persist: bool },
    /// Unknown, ended or expired (an expired one is removed).
    Invalid,
}

/// The session store.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    by_token: BTreeMap<String, Session>,
    pub policy: SessionPolicy,
}

/// A session token from 32 bytes of entropy: 64 lowercase hex digits.
pub fn new_token(entropy: [u8; 32]) -> String {
    super::hex(&entropy)
}

impl Sessions {
    pub fn new(policy: SessionPolicy) -> Sessions {
        Sessions {
            by_token: BTreeMap::new(),
            policy,
        }
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    fn expired(&self, s: &Session, now: UnixTime) -> bool {
        now.0 >= s.last_seen.saturating_add(self.policy.idle_secs)
            || now.0 >= s.created.saturating_add(self.policy.absolute_secs)
    }

    /// Starts a session for `user`; returns the tokens of sessions it pushed out (the owner
    /// persists their end too).
    pub fn create(&mut self, token: String, user: &str, now: UnixTime) -> Vec<String> {
        let mut ended = Vec::new();
        let mine: Vec<(u64, String)> = self
            .by_token
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(t, s)| (s.last_seen, t.clone()))
            .collect();
        if mine.len() >= self.policy.max_per_user {
            let mut mine = mine;
            mine.sort();
            let over = mine.len() + 1 - self.policy.max_per_user;
            for (_, t) in mine.into_iter().take(over) {
                self.by_token.remove(&t);
                ended.push(t);
            }
        }
        if self.by_token.len() >= self.policy.max_total {
            ended.extend(super::evict_oldest(&mut self.by_token, |s| s.last_seen));
        }
        self.insert(token, Session::new(user, now.0));
        ended
    }

    /// Puts back a session read from the owner's log (at start).
    pub fn insert(&mut self, token: String, session: Session) {
        self.by_token.insert(token, session);
    }

    /// Whose session `token` is at `now`; marks it used.
    pub fn check(&mut self, token: &str, now: UnixTime) -> Check {
        let Some(s) = self.by_token.get(token) else {
            return Check::Invalid;
        };
        if self.expired(s, now) {
            self.by_token.remove(token);
            return Check::Invalid;
        }
        let every = self.policy.persist_every;
        let Some(s) = self.by_token.get_mut(token) else {
            return Check::Invalid;
        };
        s.last_seen = s.last_seen.max(now.0);
        let persist = s.last_seen >= s.persisted_seen.saturating_add(every);
        if persist {
            s.persisted_seen = s.last_seen;
        }
        Check::Valid {
            user: s.user.clone(),
            persist,
        }
    }

    /// Moves the last use of `token` to `at` (never back): what the owner's log recorded.
    pub fn seen(&mut self, token: &str, at: UnixTime) {
        if let Some(s) = self.by_token.get_mut(token) {
            s.last_seen = s.last_seen.max(at.0);
            s.persisted_seen = s.persisted_seen.max(at.0);
        }
    }

    /// Ends one session (logout); `false` when there was none.
    pub fn end(&mut self, token: &str) -> bool {
        self.by_token.remove(token).is_some()
    }

    /// Ends every session of `user` but `except` (a password change keeps the session that
    /// made it); returns the tokens ended.
    pub fn end_user(&mut self, user: &str, except: Option<&str>) -> Vec<String> {
        let gone: Vec<String> = self
            .by_token
            .iter()
            .filter(|(t, s)| s.user == user && Some(t.as_str()) != except)
            .map(|(t, _)| t.clone())
            .collect();
        for t in &gone {
            self.by_token.remove(t);
        }
        gone
    }

    /// Removes every expired session; returns how many (a node timer calls this).
    pub fn sweep(&mut self, now: UnixTime) -> usize {
        let before = self.by_token.len();
        let policy = self.policy.clone();
        self.by_token.retain(|_, s| {
            now.0 < s.last_seen.saturating_add(policy.idle_secs)
                && now.0 < s.created.saturating_add(policy.absolute_secs)
        });
        before - self.by_token.len()
    }

    /// Every stored session, by token (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Session)> {
        self.by_token.iter().map(|(t, s)| (t.as_str(), s))
    }

    /// The session of `token`, if stored (expired or not).
    pub fn get(&self, token: &str) -> Option<&Session> {
        self.by_token.get(token)
    }
}

impl Session {
    pub fn new(user: &str, now: u64) -> Session {
        Session {
            user: user.into(),
            created: now,
            last_seen: now,
            persisted_seen: now,
        }
    }
}
