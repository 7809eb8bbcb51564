//! "Sometimes" counters: rare paths a run reached (a reset mid-body, a timeout fired, a crash
//! during a write). A single run reaches few of them; a sweep must reach every listed one, or
//! the faults are not doing their job and the sweep fails.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    counts: BTreeMap<&'static str, u64>,
}

impl Coverage {
    pub fn hit(&mut self, name: &'static str) {
        *self.counts.entry(name).or_default() += 1;
    }
    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }
    pub fn merge(&mut self, other: &Coverage) {
        for (k, v) in &other.counts {
            *self.counts.entry(k).or_default() += v;
        }
    }
    /// The listed counters that never fired.
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required
            .iter()
            .copied()
            .filter(|n| self.count(n) == 0)
            .collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }
}
