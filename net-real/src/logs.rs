//! Durable logs on the real file system: the [`LogOp`] effects of node machines.
//!
//! One file per log in a data directory. `Append` is one `write` to a file opened with
//! `O_APPEND` (the kernel appends it whole, or reports the error); `Sync` is `fdatasync`;
//! `Read` reads the whole file. Names that are not plain names are refused
//! ([`valid_log_name`]), so a log can never be a path outside the directory.
//!
//! Decision: these calls block (an `fdatasync` can take milliseconds on a real disk), so a
//! node task runs them with [`LogStore::run_async`], which hands them to `smol::unblock`'s
//! thread pool; static-file reads stay inline (see [`crate::files`]) because they hit the
//! page cache.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weaprous_core::node::{valid_log_name, FsError, LogOp, LogReply};

/// The logs of one node, in `dir`.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    open: Arc<Mutex<BTreeMap<String, Arc<File>>>>,
}

fn fs_error(e: std::io::Error) -> FsError {
    match e.kind() {
        std::io::ErrorKind::NotFound => FsError::NotFound,
        std::io::ErrorKind::PermissionDenied => FsError::PermissionDenied,
        _ => FsError::Io,
    }
}

impl LogStore {
    /// Logs kept in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<LogStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(LogStore {
            dir,
            open: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    fn file(&self, log: &str) -> Result<Arc<File>, FsError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = open.get(log) {
            return Ok(f.clone());
        }
        let path = self.dir.join(log);
        let existed = path.exists();
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(fs_error)?;
        if !existed {
            // A new file's name is durable only once its directory is synced: a crash could
            // otherwise lose the whole file, synced records and all (the chat node's second
            // slot is created by its first snapshot, and then holds everything).
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(fs_error)?;
        }
        let f = Arc::new(f);
        open.insert(log.to_string(), f.clone());
        Ok(f)
    }

    /// Carries out `op` now (blocking).
    pub fn run(&self, op: LogOp) -> LogReply {
        let refused = !valid_log_name(op.log());
        match op {
            LogOp::Append { log, bytes } => LogReply::Appended(if refused {
                Err(FsError::PermissionDenied)
            } else {
                self.file(&log).and_then(|f| {
                    (&*f).write_all(&bytes).map_err(fs_error)?;
                    f.metadata().map(|m| m.len()).map_err(fs_error)
                })
            }),
            LogOp::Sync { log } => LogReply::Synced(if refused {
                Err(FsError::PermissionDenied)
            } else {
                self.file(&log)
                    .and_then(|f| f.sync_data().map_err(fs_error))
            }),
            LogOp::Truncate { log, len } => LogReply::Truncated(if refused {
                Err(FsError::PermissionDenied)
            } else {
                self.file(&log).and_then(|f| {
                    f.set_len(len).map_err(fs_error)?;
                    f.sync_data().map_err(fs_error)
                })
            }),
            LogOp::Read { log } => LogReply::Contents(if refused {
                Err(FsError::PermissionDenied)
            } else {
                match std::fs::read(self.dir.join(&log)) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                    other => other.map_err(fs_error),
                }
            }),
        }
    }

    /// Carries out `op` on the blocking thread pool.
    pub async fn run_async(&self, op: LogOp) -> LogReply {
        let store = self.clone();
        smol::unblock(move || store.run(op)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("weaprous-logs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn appends_sync_and_read_back_after_reopening() {
        let dir = temp_dir("roundtrip");
        let store = LogStore::open(&dir).unwrap();
        let append = |s: &LogStore, b: &[u8]| {
            s.run(LogOp::Append {
                log: "general".into(),
                bytes: b.to_vec(),
            })
        };
        assert_eq!(append(&store, b"one,"), LogReply::Appended(Ok(4)));
        assert_eq!(append(&store, b"two"), LogReply::Appended(Ok(7)));
        assert_eq!(
            smol::block_on(store.run_async(LogOp::Sync {
                log: "general".into()
            })),
            LogReply::Synced(Ok(()))
        );
        let again = LogStore::open(&dir).unwrap();
        assert_eq!(
            again.run(LogOp::Read {
                log: "general".into()
            }),
            LogReply::Contents(Ok(b"one,two".to_vec()))
        );
        assert_eq!(
            again.run(LogOp::Read {
                log: "never-written".into()
            }),
            LogReply::Contents(Ok(Vec::new())),
            "a log that was never written is empty"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_next_append_follows_the_whole_records() {
        let dir = temp_dir("truncate");
        let store = LogStore::open(&dir).unwrap();
        let log = || "general".to_string();
        store.run(LogOp::Append {
            log: log(),
            bytes: b"one\ntw".to_vec(),
        });
        assert_eq!(
            store.run(LogOp::Truncate { log: log(), len: 4 }),
            LogReply::Truncated(Ok(()))
        );
        // The file is opened for appending: the next record lands at the new end.
        assert_eq!(
            store.run(LogOp::Append {
                log: log(),
                bytes: b"two\n".to_vec()
            }),
            LogReply::Appended(Ok(8))
        );
        let again = LogStore::open(&dir).unwrap();
        assert_eq!(
            again.run(LogOp::Read { log: log() }),
            LogReply::Contents(Ok(b"one\ntwo\n".to_vec()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_that_are_paths_are_refused() {
        let dir = temp_dir("names");
        let store = LogStore::open(&dir).unwrap();
        for bad in ["../escape", "/etc/passwd", "a/b", "..", ""] {
            assert_eq!(
                store.run(LogOp::Append {
                    log: bad.into(),
                    bytes: b"x".to_vec()
                }),
                LogReply::Appended(Err(FsError::PermissionDenied)),
                "{bad}"
            );
        }
        assert!(!dir.parent().unwrap().join("escape").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
