//! The trace: a rolling hash of every event (the determinism fingerprint), the last lines in
//! readable form (printed when a run fails), and, for the determinism check, the hash after
//! every event and the line of one chosen event.

use std::collections::VecDeque;

/// Lines kept in the readable tail; `WEAPROUS_SIM_TAIL` sets another count for a replay
/// that needs more history.
fn tail_len() -> usize {
    std::env::var("WEAPROUS_SIM_TAIL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// What to keep beside the hash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// The last lines, readable.
    pub tail: bool,
    /// The hash after every event (to find where two runs diverge).
    pub hashes: bool,
    /// The readable line of event number `n` (0-based).
    pub line_of: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Trace {
    hash: u64,
    events: u64,
    tail: VecDeque<String>,
    tail_len: usize,
    keep: Keep,
    hashes: Vec<u64>,
    line: Option<String>,
}

impl Trace {
    pub fn new(keep: Keep) -> Self {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
            tail: VecDeque::new(),
            tail_len: if keep.tail { tail_len() } else { 0 },
            keep,
            hashes: Vec::new(),
            line: None,
        }
    }
    /// Records one event; `line` is only built when it is kept.
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
        let n = self.events;
        self.events += 1;
        if self.keep.hashes {
            self.hashes.push(self.hash);
        }
        let want_line = self.keep.line_of == Some(n);
        if self.keep.tail || want_line {
            let l = format!("#{n} {:>12.6}s {}", time_ns as f64 / 1e9, line());
            if want_line {
                self.line = Some(l.clone());
            }
            if self.keep.tail {
                if self.tail.len() >= self.tail_len {
                    self.tail.pop_front();
                }
                self.tail.push_back(l);
            }
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
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }
    pub fn chosen_line(&self) -> Option<&str> {
        self.line.as_deref()
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

/// The index of the first event at which two hash sequences differ (or where one ends).
pub fn first_divergence(a: &[u64], b: &[u64]) -> Option<usize> {
    let n = a.len().min(b.len());
    (0..n)
        .find(|&i| a[i] != b[i])
        .or((a.len() != b.len()).then_some(n))
}
