//! The deadlines of one host's connections, earliest first: a host keeps one engine timer,
//! armed for the earliest of them.

use crate::engine::StreamId;
use std::collections::{BTreeMap, BTreeSet};
use weaprous_core::time::Instant;

#[derive(Debug, Default)]
pub struct Deadlines {
    order: BTreeSet<(Instant, StreamId)>,
    of: BTreeMap<StreamId, Instant>,
}

impl Deadlines {
    /// `s`'s deadline is now `d` (none: forget it).
    pub fn set(&mut self, s: StreamId, d: Option<Instant>) {
        if let Some(old) = self.of.remove(&s) {
            self.order.remove(&(old, s));
        }
        if let Some(d) = d {
            self.order.insert((d, s));
            self.of.insert(s, d);
        }
    }
    pub fn get(&self, s: StreamId) -> Option<Instant> {
        self.of.get(&s).copied()
    }
    /// The earliest deadline (what the host's timer is armed for).
    pub fn first(&self) -> Option<Instant> {
        self.order.first().map(|&(d, _)| d)
    }
    /// The streams whose deadline has passed at `now`, earliest first.
    pub fn due(&self, now: Instant) -> Vec<StreamId> {
        self.order
            .iter()
            .take_while(|(d, _)| *d <= now)
            .map(|&(_, s)| s)
            .collect()
    }
    /// The spin check every driver owes the node contract: after a `Timeout`, a deadline may
    /// not still be due (a real driver would wake up at once, forever).
    pub fn still_due(&self, s: StreamId, now: Instant) -> Option<String> {
        self.get(s).filter(|&d| d <= now).map(|d| {
            format!("stream {s}: deadline {d:?} still due at {now:?} after its timeout (a spin)")
        })
    }
}
