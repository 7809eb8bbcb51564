//! The trace: a rolling hash of every event (the determinism fingerprint) and the last lines in
//! readable form (printed when a run fails).

use std::collections::VecDeque;

const TAIL: usize = 200;

#[derive(Debug, Clone)]
pub struct Trace {
    hash: u64,
    events: u64,
    tail: VecDeque<String>,
    keep_tail: bool,
}

impl Trace {
    pub fn new(keep_tail: bool) -> Self {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
            tail: VecDeque::new(),
            keep_tail,
        }
    }
    /// Records one event; `line` is only built when a tail is kept.
    pub fn record(
        &mut self,
        time_ns: u64,
        kind: u8,
        a: u64,
        b: u64,
        line: impl FnOnce() -> String,
    ) {
        for x in [time_ns, kind as u64, a, b] {
            for byte in x.to_le_bytes() {
                self.hash ^= byte as u64;
                self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        self.events += 1;
        if self.keep_tail {
            if self.tail.len() == TAIL {
                self.tail.pop_front();
            }
            self.tail
                .push_back(format!("{:>12.6}s {}", time_ns as f64 / 1e9, line()));
        }
    }
    pub fn hash(&self) -> u64 {
        self.hash
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}

/// FNV-1a of a byte string (to fold payloads into the trace cheaply).
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
