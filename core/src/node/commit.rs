//! Group commit for one durable log: each append is answered only after a sync that covers
//! it, and one sync covers every append written while the previous sync ran.
//!
//! The node writes each record with [`LogOp::Append`] as it comes and tells the group
//! ([`GroupCommit::commit`]); when no sync is in flight the group asks for one at once. Appends
//! that arrive while a sync runs wait for the next, which starts when the running one is
//! answered: under load one `fdatasync` covers a whole batch, and when idle an append waits for
//! exactly one. This is the policy of every database's write-ahead log (PostgreSQL's
//! `commit_delay` aside), kept in core so that both drivers only carry out operations in
//! order, and the simulator can crash a host between an append and its sync.
//!
//! Requires of the driver: the operations of one log complete in the order they were issued
//! (a sync covers every append issued before it).
//!
//! A failed append fails its waiter; a failed sync fails every waiter it covered (after a
//! failed `fsync` nothing it covered may be called durable, as PostgreSQL learned).

use super::{FsError, LogOp};
use std::collections::BTreeSet;

/// What a sync's reply settles: each waiter it covered with its outcome, and the next sync to
/// issue, if any.
pub type Settled<T> = (Vec<(T, Result<(), FsError>)>, Option<LogOp>);

/// The appends of one log waiting for durability, by waiter `T` (a request, a message id).
#[derive(Clone, Debug)]
pub struct GroupCommit<T: Ord + Clone> {
    log: String,
    /// Written, waiting for the next sync to start.
    pending: Vec<T>,
    /// Covered by the sync in flight.
    covered: Vec<T>,
    sync_in_flight: bool,
    /// Waiters whose append itself failed.
    failed: BTreeSet<T>,
    /// Syncs issued so far (for tests and benchmarks: appends per sync).
    pub syncs: u64,
}

impl<T: Ord + Clone> GroupCommit<T> {
    pub fn new(log: impl Into<String>) -> Self {
        GroupCommit {
            log: log.into(),
            pending: Vec::new(),
            covered: Vec::new(),
            sync_in_flight: false,
            failed: BTreeSet::new(),
            syncs: 0,
        }
    }

    /// Forgets every waiter and any sync in flight (the log failed, or the state moved to
    /// another `log`); the count of syncs issued goes on.
    pub fn reset(&mut self, log: impl Into<String>) {
        let syncs = self.syncs;
        *self = GroupCommit::new(log);
        self.syncs = syncs;
    }

    /// `waiter`'s append has just been issued: the sync to issue after it, if one must start.
    pub fn commit(&mut self, waiter: T) -> Option<LogOp> {
        self.pending.push(waiter);
        self.start_sync()
    }

    /// The reply to `waiter`'s append: an error fails that waiter when its sync is answered.
    pub fn appended(&mut self, waiter: T, result: Result<u64, FsError>) {
        if result.is_err() {
            self.failed.insert(waiter);
        }
    }

    /// The reply to the sync in flight: every waiter it covered with its outcome, and the
    /// next sync to issue if appends came meanwhile.
    pub fn synced(&mut self, result: Result<(), FsError>) -> Settled<T> {
        self.sync_in_flight = false;
        let answered = std::mem::take(&mut self.covered)
            .into_iter()
            .map(|w| {
                let own = if self.failed.remove(&w) {
                    Err(FsError::Io)
                } else {
                    result
                };
                (w, own)
            })
            .collect();
        (answered, self.start_sync())
    }

    /// Appends not yet answered.
    pub fn waiting(&self) -> usize {
        self.pending.len() + self.covered.len()
    }

    fn start_sync(&mut self) -> Option<LogOp> {
        if self.sync_in_flight || self.pending.is_empty() {
            return None;
        }
        self.sync_in_flight = true;
        self.syncs += 1;
        self.covered = std::mem::take(&mut self.pending);
        Some(LogOp::Sync {
            log: self.log.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_during_a_sync_share_the_next_one() {
        let mut g = GroupCommit::new("chat");
        assert!(g.commit(1).is_some(), "an idle log syncs at once");
        assert!(g.commit(2).is_none(), "one sync at a time");
        assert!(g.commit(3).is_none());
        g.appended(1, Ok(10));
        g.appended(2, Ok(20));
        g.appended(3, Ok(30));
        let (done, next) = g.synced(Ok(()));
        assert_eq!(done, [(1, Ok(()))], "only what the sync covered");
        assert!(
            next.is_some(),
            "the waiting appends get a sync of their own"
        );
        let (done, next) = g.synced(Ok(()));
        assert_eq!(done, [(2, Ok(())), (3, Ok(()))]);
        assert!(next.is_none());
        assert_eq!(g.syncs, 2);
        assert_eq!(g.waiting(), 0);
    }

    #[test]
    fn failures_fail_what_they_cover() {
        let mut g = GroupCommit::new("chat");
        g.commit(1);
        g.commit(2);
        g.appended(1, Ok(1));
        let _ = g.synced(Ok(()));
        g.appended(2, Err(FsError::Io));
        g.commit(3);
        g.appended(3, Ok(3));
        let (done, next) = g.synced(Ok(()));
        assert_eq!(done, [(2, Err(FsError::Io))], "its own append failed");
        assert!(next.is_some());
        let (done, _) = g.synced(Err(FsError::Io));
        assert_eq!(
            done,
            [(3, Err(FsError::Io))],
            "the sync that covered it failed"
        );
        g.commit(4);
        g.appended(4, Ok(4));
        assert_eq!(g.synced(Ok(())).0, [(4, Ok(()))], "a failure is not sticky");
    }
}
