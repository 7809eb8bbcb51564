//! Rate limits for guesses: a token bucket per key (a client address, a user name).
//!
//! Each key may fail [`Limiter::burst`] times at once, then once per [`Limiter::refill_secs`]:
//! a failure takes a token; with none left the answer is 429 with `Retry-After` of the seconds
//! until the next token. A success clears the key. The table is bounded ([`Limiter::max_keys`]):
//! when full, the key that was refilled longest ago goes (it is the one closest to full again).
//!
//! Time is wall-clock seconds from the caller; a clock that steps back never refills.

use crate::time::UnixTime;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Bucket {
    tokens: u32,
    /// When the tokens were last counted.
    at: u64,
}

/// Failure limits over a bounded table of keys.
#[derive(Clone, Debug)]
pub struct Limiter {
    pub burst: u32,
    pub refill_secs: u64,
    pub max_keys: usize,
    buckets: BTreeMap<String, Bucket>,
}

impl Limiter {
    pub fn new(burst: u32, refill_secs: u64, max_keys: usize) -> Limiter {
        Limiter {
            burst: burst.max(1),
            refill_secs: refill_secs.max(1),
            max_keys: max_keys.max(1),
            buckets: BTreeMap::new(),
        }
    }

    /// Tokens of `key` at `now` (refilled).
    fn refill(&mut self, key: &str, now: UnixTime) -> Option<&mut Bucket> {
        let (burst, every) = (self.burst, self.refill_secs);
        let b = self.buckets.get_mut(key)?;
        if now.0 > b.at {
            let gained = (now.0 - b.at) / every;
            if gained > 0 {
                b.tokens = (u64::from(b.tokens) + gained).min(u64::from(burst)) as u32;
                b.at += gained * every;
            }
        }
        Some(b)
    }

    /// `Err(seconds)` when `key` may not try now: the `Retry-After` to send.
    pub fn check(&mut self, key: &str, now: UnixTime) -> Result<(), u64> {
        let every = self.refill_secs;
        match self.refill(key, now) {
            Some(b) if b.tokens == 0 => Err((b.at + every).saturating_sub(now.0).max(1)),
            _ => Ok(()),
        }
    }

    /// Records a failure of `key`.
    pub fn failed(&mut self, key: &str, now: UnixTime) {
        if self.refill(key, now).is_none() {
            if self.buckets.len() >= self.max_keys {
                super::evict_oldest(&mut self.buckets, |b| b.at);
            }
            self.buckets.insert(
                key.to_string(),
                Bucket {
                    tokens: self.burst,
                    at: now.0,
                },
            );
        }
        if let Some(b) = self.buckets.get_mut(key) {
            b.tokens = b.tokens.saturating_sub(1);
        }
    }

    /// Clears `key` (a success).
    pub fn succeeded(&mut self, key: &str) {
        self.buckets.remove(key);
    }

    pub fn keys(&self) -> usize {
        self.buckets.len()
    }
}
