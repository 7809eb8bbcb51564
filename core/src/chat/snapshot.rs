//! Snapshots of the chat node's log: how it stops growing with records nobody needs.
//!
//! # The layout
//! The node's state lives in one of two logs, its **slots** ([`SLOTS`]: `chat` and `chat.b`).
//! A slot written by a snapshot of generation `g` (it lives in slot `g % 2`) holds
//! `Begin { g }`, the records that make the state (every account with its current hash,
//! every live session and when it was last seen, every channel, every message in position
//! order), `SnapshotEnd { g }`, and then the records appended since. A log that does not
//! start with `Begin` is generation 0 (the first log, before any snapshot).
//!
//! At start the node reads both slots and takes the **complete** one (generation 0, or a
//! `Begin` whose `SnapshotEnd` follows it) of the highest generation ([`choose`]); a slot
//! whose snapshot never finished is ignored, and overwritten by the next snapshot.
//!
//! # Why a crash at any point is safe
//! While a snapshot is written no record is appended anywhere: changes wait for it (their
//! answers are delayed, never lost). Until the new slot's `SnapshotEnd` is synced, the old
//! slot is the complete one of the highest generation and holds everything; from then on the
//! new slot does, and the old one holds nothing the new one lacks.
//!
//! # When
//! The policy ([`Policy`]) compares the records in the active slot with those a snapshot
//! would write (the live state): when the difference, records superseded (sessions seen again,
//! ended sessions, old password hashes, ...), is at least `max(min_garbage, live × ratio)`, a
//! snapshot is taken at the next moment no append is in flight. With the defaults the log is
//! at most about twice the live state plus 10,000 records, so a restart reads at most that.
//! Messages are state, never garbage: every message is kept (restart time grows with the
//! history; `bench/chat.sh` measures it at a million messages). The price is the wait: with a
//! million messages a post that arrived during a snapshot was answered after 1.7 s
//! (`httptool chat-log --superseded` makes a log that starts one).

use super::node::AppRecord;
use crate::node::record;

/// The two logs the state alternates between.
pub const SLOTS: [&str; 2] = ["chat", "chat.b"];
/// How many records one snapshot append carries (a batch per log operation keeps the node's
/// loop free between them).
pub const BATCH: usize = 5_000;

/// The slot of generation `g`.
pub fn slot(generation: u64) -> &'static str {
    SLOTS[(generation % 2) as usize]
}

/// When to take a snapshot (module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub min_garbage: u64,
    /// Percent of the live records.
    pub garbage_ratio_pct: u64,
    /// Take one whenever this many records were appended since the last, garbage or not (the
    /// simulator and tests use it to take many).
    pub every: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_garbage: 10_000,
            garbage_ratio_pct: 100,
            every: None,
        }
    }
}

impl Policy {
    /// Whether a slot holding `records`, of which `live` would survive a snapshot and
    /// `since` were appended after the last one, should be snapshotted.
    pub fn due(&self, records: u64, live: u64, since: u64) -> bool {
        if self.every.is_some_and(|n| since >= n) {
            return true;
        }
        let garbage = records.saturating_sub(live);
        garbage > 0 && garbage >= self.min_garbage.max(live * self.garbage_ratio_pct / 100)
    }
}

/// What a slot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotState {
    Empty,
    /// A whole state of this generation (0: a log from before any snapshot).
    Complete(u64),
    /// A snapshot that never finished.
    Incomplete(u64),
}

/// Reads what `bytes` (one slot) holds; only the first records are decoded.
pub fn inspect(bytes: &[u8], max_record: usize) -> SlotState {
    let scan = record::scan(bytes, max_record);
    let decode =
        |r: &std::ops::Range<usize>| serde_json::from_slice::<AppRecord>(&bytes[r.clone()]);
    let Some(first) = scan.records.first() else {
        return SlotState::Empty;
    };
    let Ok(AppRecord::Begin { generation }) = decode(first) else {
        return SlotState::Complete(0);
    };
    // The end marker is found by its bytes before anything is decoded (a snapshot holds a
    // million records; decoding each to find it would double the start time).
    let marker = serde_json::to_vec(&AppRecord::SnapshotEnd { generation }).unwrap_or_default();
    let done = scan.records.iter().any(|r| bytes[r.clone()] == marker[..]);
    if done {
        SlotState::Complete(generation)
    } else {
        SlotState::Incomplete(generation)
    }
}

/// Which slot holds the state: the complete one of the highest generation; `None` when
/// neither is complete (a new node: it starts in slot 0, generation 0).
pub fn choose(states: &[SlotState; 2]) -> Option<(usize, u64)> {
    states
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            // Generation 0 lives in slot 0 only.
            SlotState::Complete(g) if (*g % 2) as usize == i => Some((i, *g)),
            _ => None,
        })
        .max_by_key(|&(_, g)| g)
}

/// The records of whichever slot [`choose`] picks, in order, up to a torn or corrupt tail
/// (for oracles and tools that read a node's data without running it).
pub fn active_records(
    slots: [&[u8]; 2],
    max_record: usize,
) -> Result<Option<(u64, Vec<AppRecord>)>, String> {
    let states = [inspect(slots[0], max_record), inspect(slots[1], max_record)];
    let Some((i, generation)) = choose(&states) else {
        return Ok(None);
    };
    let scan = record::scan(slots[i], max_record);
    let records = scan
        .records
        .iter()
        .map(|r| {
            serde_json::from_slice::<AppRecord>(&slots[i][r.clone()]).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((generation, records)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(records: &[AppRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            record::encode(&serde_json::to_vec(r).unwrap(), &mut out);
        }
        out
    }

    #[test]
    fn the_complete_slot_of_the_highest_generation_wins() {
        let seen = AppRecord::SessionEnded { token: "t".into() };
        let legacy = log(std::slice::from_ref(&seen));
        let begun = |g| log(&[AppRecord::Begin { generation: g }, seen.clone()]);
        let done = |g| {
            log(&[
                AppRecord::Begin { generation: g },
                seen.clone(),
                AppRecord::SnapshotEnd { generation: g },
                seen.clone(),
            ])
        };
        let st = |b: &[u8]| inspect(b, 1 << 16);
        assert_eq!(st(&[]), SlotState::Empty);
        assert_eq!(st(&legacy), SlotState::Complete(0));
        assert_eq!(st(&begun(1)), SlotState::Incomplete(1));
        assert_eq!(st(&done(1)), SlotState::Complete(1));
        // A crash while generation 1 was written: generation 0 stays.
        assert_eq!(choose(&[st(&legacy), st(&begun(1))]), Some((0, 0)));
        assert_eq!(choose(&[st(&legacy), st(&done(1))]), Some((1, 1)));
        // Generation 2 overwrites slot 0; torn, generation 1 stays.
        assert_eq!(choose(&[st(&begun(2)), st(&done(1))]), Some((1, 1)));
        assert_eq!(choose(&[st(&done(2)), st(&done(1))]), Some((0, 2)));
        assert_eq!(choose(&[st(&[]), st(&begun(1))]), None);
        // A record cut short after the end marker leaves the slot complete.
        let mut torn = done(3);
        torn.truncate(torn.len() - 2);
        assert_eq!(st(&torn), SlotState::Complete(3));
    }

    #[test]
    fn the_policy_waits_for_enough_garbage() {
        let p = Policy::default();
        assert!(!p.due(15_000, 10_000, 0), "5,000 superseded of 10,000 live");
        assert!(p.due(20_000, 10_000, 0));
        assert!(!p.due(1_000_000, 995_000, 0), "garbage under the live half");
        assert!(p.due(2_000_000, 1_000_000, 0));
        assert!(!p.due(100, 100, 0), "no garbage");
        let every = Policy {
            every: Some(50),
            ..Policy::default()
        };
        assert!(every.due(60, 60, 50));
    }
}
