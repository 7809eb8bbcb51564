//! A node's timers: a small table keyed by what each timer is for, so that setting,
//! replacing and cancelling one costs a log-time update and the next deadline is read, not
//! recomputed from the node's state on every call.
//!
//! A key holds at most one deadline: setting it again moves it. Among timers due at the same
//! instant, the smaller key fires first, so firing order never depends on insertion history.

use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// Timers keyed by `K` (for example an enum of "expire peer 7", "heartbeat").
#[derive(Clone, Debug)]
pub struct Timers<K: Ord + Clone> {
    by_key: BTreeMap<K, Instant>,
    by_time: BTreeSet<(Instant, K)>,
}

impl<K: Ord + Clone> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            by_key: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> Timers<K> {
    /// Sets (or moves) `key`'s deadline to `at`.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    /// Cancels `key`'s timer; whether it was set.
    pub fn cancel(&mut self, key: &K) -> bool {
        match self.by_key.remove(key) {
            Some(at) => self.by_time.remove(&(at, key.clone())),
            None => false,
        }
    }

    /// When `key` fires, if it is set.
    pub fn get(&self, key: &K) -> Option<Instant> {
        self.by_key.get(key).copied()
    }

    /// The earliest deadline: what the node names in its `Wait`.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns one timer due at `now` (earliest first), or `None`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (at, _) = self.by_time.first()?;
        if *at > now {
            return None;
        }
        let (_, key) = self.by_time.pop_first()?;
        self.by_key.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The two indexes agree.
    pub fn check_invariants(&self) {
        assert_eq!(
            self.by_key.len(),
            self.by_time.len(),
            "timer indexes differ"
        );
        for (at, k) in &self.by_time {
            assert_eq!(self.by_key.get(k), Some(at), "timer indexes differ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_a_key_again_moves_its_deadline() {
        let mut t = Timers::default();
        t.set("a", Instant(10));
        t.set("b", Instant(20));
        t.set("a", Instant(30));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), Some(Instant(20)));
        assert_eq!(t.pop_due(Instant(25)), Some("b"));
        assert_eq!(t.pop_due(Instant(25)), None);
        assert_eq!(t.pop_due(Instant(30)), Some("a"));
        assert!(t.is_empty());
        t.check_invariants();
    }

    #[test]
    fn due_timers_fire_earliest_first_then_by_key() {
        let mut t = Timers::default();
        t.set(3, Instant(5));
        t.set(1, Instant(5));
        t.set(2, Instant(4));
        t.set(9, Instant(6));
        let fired: Vec<_> = std::iter::from_fn(|| t.pop_due(Instant(5))).collect();
        assert_eq!(fired, [2, 1, 3]);
        assert_eq!(t.get(&9), Some(Instant(6)));
        assert!(t.cancel(&9));
        assert!(!t.cancel(&9));
        assert_eq!(t.next(), None);
    }
}
