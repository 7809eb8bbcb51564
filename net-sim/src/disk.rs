//! The simulated disk of one host: files served by [`FileOp`]s, and append-only durable logs.
//!
//! # Fault model
//! What a node must survive, and nothing more (TigerBeetle's `storage.zig` states its model the
//! same way, up front):
//! * **Read errors**: while faults are on, each `Read` fails with `EIO` with probability
//!   `read_error_p`. Opens never fail spuriously (a missing file is a 404, not a fault).
//! * **Write errors**: each log append or sync fails with probability `write_error_p`; a failed
//!   append writes nothing, a failed sync makes nothing newly durable.
//! * **Crash**: every byte appended since the log's last successful sync is lost, except that
//!   an unsynced append that is the only one since the sync may survive **torn**: a prefix of
//!   it (possibly empty, possibly all) stays. Synced bytes always survive. Open handles are gone.
//! * Paths resolve as the real file system resolves them: symbolic links are followed
//!   wherever they appear in a path, and an open reports the **real path** of what it opened
//!   (the driver's `realpath`), so a machine's "stays inside its root" check sees in the
//!   simulator what it sees on a real disk. A file used as a folder (`/a.txt/x`), a missing
//!   name and a dangling link are all "not found"; a link loop is an I/O error (ELOOP).
//! * No corruption of synced data, no misdirected writes: the nodes we simulate keep no
//!   checksummed storage yet, so those faults would only test the simulator.
//!
//! Latency is the caller's business (the engine delays replies); this module is the state.

use std::collections::BTreeMap;
use weaprous_core::node::{
    valid_log_name, FileHandle, FileMeta, FileOp, FileReply, FsError, LogOp, LogReply,
};
use weaprous_core::time::UnixTime;

/// One durable log: `data[..synced]` survives a crash.
#[derive(Debug, Default, Clone)]
struct Log {
    data: Vec<u8>,
    synced: usize,
    /// Where the last append began (it is the one that can be torn).
    last_append: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Disk {
    files: BTreeMap<String, (Vec<u8>, UnixTime)>,
    dirs: Vec<String>,
    /// Symbolic links: path → absolute, normalised target.
    links: BTreeMap<String, String>,
    open: BTreeMap<FileHandle, String>,
    next: FileHandle,
    logs: BTreeMap<String, Log>,
    /// Probability in parts per million that a read fails (faults on).
    pub read_error_ppm: u32,
    /// Probability in parts per million that an append or sync fails (faults on).
    pub write_error_ppm: u32,
    /// Read errors injected so far (oracles compare answers of 500 against this).
    pub read_errors: u64,
    pub write_errors: u64,
}

/// What a path resolves to, by its real path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File(String),
    Dir(String),
}

fn hit(rng: &mut fastrand::Rng, ppm: u32) -> bool {
    ppm > 0 && rng.u32(..1_000_000) < ppm
}

impl Disk {
    pub fn add_file(&mut self, path: &str, data: Vec<u8>, modified: UnixTime) {
        self.add_parents(path);
        self.files.insert(path.to_string(), (data, modified));
    }
    /// Makes every folder above `path` exist.
    fn add_parents(&mut self, path: &str) {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !parent.is_empty() && !self.dirs.iter().any(|d| d == parent) {
                self.dirs.push(parent.to_string());
            }
            p = parent;
        }
    }
    /// Adds a symbolic link at `path` to `target` (absolute and normalised; it need not exist).
    pub fn add_symlink(&mut self, path: &str, target: &str) {
        self.add_parents(path);
        self.links.insert(path.to_string(), target.to_string());
    }
    /// The contents of the file at `path`, links followed.
    /// The length and modification time of the file at real path `real`.
    pub fn meta(&self, real: &str) -> Option<(u64, UnixTime)> {
        self.files.get(real).map(|(d, m)| (d.len() as u64, *m))
    }
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.resolve(path) {
            Ok(Node::File(real)) => self.files.get(&real).map(|(d, _)| d.as_slice()),
            _ => None,
        }
    }
    /// What `path` names once every link in it is followed, and its real path.
    pub fn resolve(&self, path: &str) -> Result<Node, FsError> {
        let mut pending: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut real = String::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            let next = format!("{real}/{c}");
            if let Some(target) = self.links.get(&next) {
                hops += 1;
                if hops > 40 {
                    return Err(FsError::Io);
                }
                // An absolute target replaces everything resolved so far.
                real.clear();
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(str::to_string),
                );
                continue;
            }
            if self.files.contains_key(&next) {
                if !pending.is_empty() {
                    return Err(FsError::NotFound);
                }
                return Ok(Node::File(next));
            }
            if !self.dirs.contains(&next) {
                return Err(FsError::NotFound);
            }
            real = next;
        }
        Ok(Node::Dir(if real.is_empty() { "/".into() } else { real }))
    }
    pub fn open_handles(&self) -> usize {
        self.open.len()
    }

    /// Carries out `op`, drawing faults from `rng`; `None` for operations without a reply.
    pub fn run(&mut self, op: &FileOp, rng: &mut fastrand::Rng) -> Option<FileReply> {
        match op {
            FileOp::Open { path } => {
                let meta = match self.resolve(path) {
                    Ok(Node::File(real)) => {
                        let (data, modified) = &self.files[&real];
                        Ok((data.len() as u64, *modified, false, real))
                    }
                    Ok(Node::Dir(real)) => Ok((0, UnixTime(0), true, real)),
                    Err(e) => Err(e),
                };
                Some(FileReply::Opened(meta.map(
                    |(len, modified, is_dir, real)| {
                        self.next += 1;
                        self.open.insert(self.next, real.clone());
                        FileMeta {
                            handle: self.next,
                            len,
                            modified,
                            is_dir,
                            real_path: real,
                        }
                    },
                )))
            }
            FileOp::Read {
                handle,
                offset,
                len,
            } => {
                if hit(rng, self.read_error_ppm) {
                    self.read_errors += 1;
                    return Some(FileReply::Read(Err(FsError::Io)));
                }
                let data = self
                    .open
                    .get(handle)
                    .and_then(|p| self.files.get(p))
                    .map(|(d, _)| {
                        let start = (*offset).min(d.len() as u64) as usize;
                        let end = (start + len).min(d.len());
                        d[start..end].to_vec()
                    });
                Some(FileReply::Read(data.ok_or(FsError::Io)))
            }
            FileOp::Close { handle } => {
                self.open.remove(handle);
                None
            }
        }
    }

    /// Puts `bytes` in `log`, durably, before a run starts (a data directory prepared
    /// beforehand).
    pub fn seed_log(&mut self, log: &str, bytes: &[u8]) {
        let l = self.logs.entry(log.to_string()).or_default();
        l.data.extend_from_slice(bytes);
        l.synced = l.data.len();
        l.last_append = l.synced;
    }

    /// Appends to `log` (not yet durable). Returns the log's new length.
    pub fn append(
        &mut self,
        log: &str,
        bytes: &[u8],
        rng: &mut fastrand::Rng,
    ) -> Result<u64, FsError> {
        if hit(rng, self.write_error_ppm) {
            self.write_errors += 1;
            return Err(FsError::Io);
        }
        let l = self.logs.entry(log.to_string()).or_default();
        l.last_append = l.data.len();
        l.data.extend_from_slice(bytes);
        Ok(l.data.len() as u64)
    }
    /// Makes everything appended to `log` so far durable.
    pub fn sync(&mut self, log: &str, rng: &mut fastrand::Rng) -> Result<(), FsError> {
        if hit(rng, self.write_error_ppm) {
            self.write_errors += 1;
            return Err(FsError::Io);
        }
        let l = self.logs.entry(log.to_string()).or_default();
        l.synced = l.data.len();
        l.last_append = l.synced;
        Ok(())
    }
    /// Cuts `log` to `len` bytes, durably (with the write faults above).
    pub fn truncate(
        &mut self,
        log: &str,
        len: u64,
        rng: &mut fastrand::Rng,
    ) -> Result<(), FsError> {
        if hit(rng, self.write_error_ppm) {
            self.write_errors += 1;
            return Err(FsError::Io);
        }
        let l = self.logs.entry(log.to_string()).or_default();
        l.data.truncate(len as usize);
        l.synced = l.data.len();
        l.last_append = l.synced;
        Ok(())
    }
    /// Carries out a durable-log effect (see [`LogOp`]), with the write faults above.
    pub fn run_log(&mut self, op: &LogOp, rng: &mut fastrand::Rng) -> LogReply {
        let refused = !valid_log_name(op.log());
        match op {
            _ if refused && matches!(op, LogOp::Append { .. }) => {
                LogReply::Appended(Err(FsError::PermissionDenied))
            }
            _ if refused && matches!(op, LogOp::Sync { .. }) => {
                LogReply::Synced(Err(FsError::PermissionDenied))
            }
            _ if refused && matches!(op, LogOp::Truncate { .. }) => {
                LogReply::Truncated(Err(FsError::PermissionDenied))
            }
            _ if refused => LogReply::Contents(Err(FsError::PermissionDenied)),
            LogOp::Truncate { log, len } => LogReply::Truncated(self.truncate(log, *len, rng)),
            LogOp::Append { log, bytes } => LogReply::Appended(self.append(log, bytes, rng)),
            LogOp::Sync { log } => LogReply::Synced(self.sync(log, rng)),
            LogOp::Read { log } => LogReply::Contents(if hit(rng, self.read_error_ppm) {
                self.read_errors += 1;
                Err(FsError::Io)
            } else {
                Ok(self.read_log(log).to_vec())
            }),
        }
    }

    /// The log as a reader (after a restart: a recovering node) sees it.
    pub fn read_log(&self, log: &str) -> &[u8] {
        self.logs.get(log).map_or(&[], |l| l.data.as_slice())
    }

    /// The process exited (a graceful restart): its open handles close, every byte written
    /// stays (the kernel still holds what was not synced).
    pub fn close_all(&mut self) {
        self.open.clear();
    }

    /// The host lost power: unsynced appends go (the last one possibly torn), handles close.
    /// Returns true when some unsynced byte existed (a crash "during a write").
    pub fn crash(&mut self, rng: &mut fastrand::Rng) -> bool {
        self.open.clear();
        let mut lost = false;
        for l in self.logs.values_mut() {
            if l.data.len() > l.synced {
                lost = true;
                // A lone unsynced append can be torn; with several, the file keeps none of them
                // (a prefix of a later one would leave a hole where an earlier one was).
                let keep = if l.last_append == l.synced {
                    rng.usize(..=l.data.len() - l.synced)
                } else {
                    0
                };
                l.data.truncate(l.synced + keep);
            }
            l.synced = l.data.len();
            l.last_append = l.synced;
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_bytes_survive_a_crash_and_unsynced_ones_do_not() {
        let mut r = fastrand::Rng::with_seed(1);
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut d = Disk::default();
            d.append("log", b"one,", &mut r).unwrap();
            d.sync("log", &mut r).unwrap();
            d.append("log", b"two,", &mut r).unwrap();
            d.append("log", b"three,", &mut r).unwrap();
            d.crash(&mut rng);
            // Two unsynced appends: the last one is not the first after the sync, so both go.
            assert_eq!(d.read_log("log"), b"one,");
        }
    }

    #[test]
    fn the_last_write_can_be_torn_to_any_prefix() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..500 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut d = Disk::default();
            d.append("log", b"head|", &mut rng).unwrap();
            d.sync("log", &mut rng).unwrap();
            d.append("log", b"tail", &mut rng).unwrap();
            assert!(d.crash(&mut rng));
            let after = d.read_log("log").to_vec();
            assert!(after.starts_with(b"head|"));
            assert!(b"head|tail".starts_with(&after));
            seen.insert(after.len());
        }
        assert_eq!(
            seen.len(),
            5,
            "every prefix length 0..=4 of the torn write occurs"
        );
    }

    #[test]
    fn links_resolve_anywhere_in_a_path_and_opens_report_the_real_path() {
        let mut d = Disk::default();
        d.add_file("/root/a/f.txt", b"f".to_vec(), UnixTime(0));
        d.add_file("/secret", b"s".to_vec(), UnixTime(0));
        d.add_symlink("/root/to-f", "/root/a/f.txt");
        d.add_symlink("/root/to-a", "/root/a");
        d.add_symlink("/root/up", "/");
        d.add_symlink("/root/out", "/secret");
        d.add_symlink("/root/dangling", "/nowhere");
        d.add_symlink("/root/loop", "/root/loop");
        let f = |p: &str| Node::File(p.to_string());
        assert_eq!(d.resolve("/root/to-f"), Ok(f("/root/a/f.txt")));
        assert_eq!(d.resolve("/root/to-a/f.txt"), Ok(f("/root/a/f.txt")));
        assert_eq!(
            d.resolve("/root/up/root/to-a"),
            Ok(Node::Dir("/root/a".into()))
        );
        assert_eq!(d.resolve("/root/up"), Ok(Node::Dir("/".into())));
        assert_eq!(d.resolve("/root/out"), Ok(f("/secret")));
        assert_eq!(d.resolve("/root/dangling"), Err(FsError::NotFound));
        assert_eq!(d.resolve("/root/a/f.txt/x"), Err(FsError::NotFound));
        assert_eq!(d.resolve("/root/loop"), Err(FsError::Io));
        let mut rng = fastrand::Rng::with_seed(1);
        let Some(FileReply::Opened(Ok(meta))) = d.run(
            &FileOp::Open {
                path: "/root/up/secret".into(),
            },
            &mut rng,
        ) else {
            panic!("open")
        };
        assert_eq!(meta.real_path, "/secret");
        assert_eq!(d.file("/root/to-a/f.txt"), Some(&b"f"[..]));
    }

    #[test]
    fn write_and_read_errors_happen_at_their_rate_and_change_nothing() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut d = Disk {
            write_error_ppm: 500_000,
            read_error_ppm: 500_000,
            ..Disk::default()
        };
        let mut ok = 0;
        for _ in 0..1000 {
            if d.append("log", b"x", &mut rng).is_ok() {
                ok += 1;
            }
        }
        assert_eq!(d.read_log("log").len(), ok);
        assert!((400..600).contains(&ok), "{ok}");
        d.add_file("/f", b"abc".to_vec(), UnixTime(0));
        let Some(FileReply::Opened(Ok(meta))) =
            d.run(&FileOp::Open { path: "/f".into() }, &mut rng)
        else {
            panic!("open")
        };
        let errors = (0..1000)
            .filter(|_| {
                matches!(
                    d.run(
                        &FileOp::Read {
                            handle: meta.handle,
                            offset: 0,
                            len: 3
                        },
                        &mut rng
                    ),
                    Some(FileReply::Read(Err(_)))
                )
            })
            .count();
        assert!((400..600).contains(&errors), "{errors}");
        assert_eq!(d.read_errors, errors as u64);
    }
}
