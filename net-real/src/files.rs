//! Carries out [`FileOp`]s and file segments on the real file system for one connection.
//!
//! Decision: operations run inline on the executor thread, as nginx does without `aio`. The
//! files a web server serves are almost always in the page cache, where `stat`/`pread` of one
//! 64 KiB chunk or a 1 MiB `sendfile` take microseconds, while a hop to `smol::unblock`'s
//! thread pool adds two thread handoffs per operation. The design first put file reads off the
//! executor; this deviates for static files (the hop has not been measured here yet; a cold
//! disk would stall one executor thread per read) and keeps `unblock` for what is slow by
//! nature, such as durable-log syncs. Every operation is bounded (a chunk, or 1 MiB of
//! `sendfile`), so one connection never holds a thread for long on a warm cache.
//!
//! Two per-thread caches keep the per-request system calls to nginx's level: open descriptors
//! by path (reused while `stat` shows the same file) and the real path of each (name, inode).

use crate::platform;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;
use weaprous_core::node::{FileHandle, FileMeta, FileOp, FileReply, FsError};
use weaprous_core::time::UnixTime;

/// Most paths whose real location one thread remembers.
const REAL_PATHS: usize = 4096;

thread_local! {
    /// path → (device, inode, real path) of the file last opened under that name. Asking the
    /// kernel for the real path of an open descriptor ([`platform::real_path`]) costs a quarter
    /// of a small request, so it is asked once per (name, file) pair: when the name now opens a
    /// different file (a symlink was swapped, a file replaced), the inode differs and the real
    /// path is asked again. A file moved out of the root while keeping its inode and name is
    /// the one case this cannot see; whoever can do that already controls the server's disk.
    static REAL: RefCell<HashMap<String, (u64, u64, String)>> = RefCell::new(HashMap::new());
}

/// The real path of `file`, opened as `path`.
fn real_path(path: &str, file: &File, meta: &std::fs::Metadata) -> Result<String, FsError> {
    let key = (meta.dev(), meta.ino());
    let cached = REAL.with(|m| {
        m.borrow()
            .get(path)
            .filter(|(d, i, _)| (*d, *i) == key)
            .map(|(_, _, r)| r.clone())
    });
    if let Some(real) = cached {
        return Ok(real);
    }
    let real = match platform::real_path(file) {
        Some(real) => real,
        None => {
            // The system cannot name an open file: resolve the name, and refuse the answer
            // unless it still leads to the file we hold (a swap in between is caught).
            let real = std::fs::canonicalize(path).map_err(fs_error)?;
            let now = std::fs::metadata(&real).map_err(fs_error)?;
            if (now.dev(), now.ino()) != key {
                return Err(FsError::NotFound);
            }
            real
        }
    }
    .to_string_lossy()
    .into_owned();
    REAL.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= REAL_PATHS {
            m.clear();
        }
        m.insert(path.to_string(), (key.0, key.1, real.clone()));
    });
    Ok(real)
}

/// Most descriptors one thread keeps open for reuse.
const OPEN_FILES: usize = 1024;

/// An open file and the identity it had when opened.
struct Cached {
    file: Arc<File>,
    meta: (u64, u64, i64, i64, u64),
    real: String,
}

thread_local! {
    /// Open descriptors by path, reused while `stat(path)` still shows the same file (device,
    /// inode, modification time, size): one `stat` replaces `open` + `fstat` + `close` for
    /// every request after the first, as nginx's `open_file_cache` does. A changed or replaced
    /// file has a different identity and is opened afresh.
    static OPEN: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

fn identity(m: &std::fs::Metadata) -> (u64, u64, i64, i64, u64) {
    (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.len())
}

/// The open files of one connection (a machine holds at most a couple at a time).
#[derive(Default)]
pub struct Files {
    open: Vec<(FileHandle, Arc<File>)>,
    next: FileHandle,
}

fn fs_error(e: std::io::Error) -> FsError {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::InvalidInput => {
            FsError::NotFound
        }
        ErrorKind::PermissionDenied => FsError::PermissionDenied,
        _ if e.raw_os_error() == Some(36) => FsError::NotFound, // ENAMETOOLONG
        _ => FsError::Io,
    }
}

impl Files {
    /// Carries out `op`; `None` for operations without a reply (close).
    pub fn run(&mut self, op: FileOp) -> Option<FileReply> {
        match op {
            FileOp::Open { path } => Some(FileReply::Opened(self.open(&path))),
            FileOp::Read {
                handle,
                offset,
                len,
            } => Some(FileReply::Read(self.read(handle, offset, len))),
            FileOp::Close { handle } => {
                self.open.retain(|(h, _)| *h != handle);
                None
            }
        }
    }

    fn open(&mut self, path: &str) -> Result<FileMeta, FsError> {
        let meta = std::fs::metadata(path).map_err(fs_error)?;
        let hit = OPEN.with(|m| {
            m.borrow()
                .get(path)
                .filter(|c| c.meta == identity(&meta))
                .map(|c| (c.file.clone(), c.real.clone()))
        });
        let (file, real) = match hit {
            Some(hit) => hit,
            None => {
                let file = File::open(path).map_err(fs_error)?;
                let meta = file.metadata().map_err(fs_error)?;
                // The real path of the file we hold, not of the name we opened: no window for a swap.
                let real = real_path(path, &file, &meta)?;
                let file = Arc::new(file);
                if !meta.is_dir() {
                    OPEN.with(|m| {
                        let mut m = m.borrow_mut();
                        if m.len() >= OPEN_FILES {
                            m.clear();
                        }
                        m.insert(
                            path.to_string(),
                            Cached {
                                file: file.clone(),
                                meta: identity(&meta),
                                real: real.clone(),
                            },
                        );
                    });
                }
                (file, real)
            }
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        self.next += 1;
        let handle = self.next;
        self.open.push((handle, file));
        Ok(FileMeta {
            handle,
            len: meta.len(),
            modified: UnixTime(modified),
            is_dir: meta.is_dir(),
            real_path: real,
        })
    }

    /// Sends up to `len` bytes of `handle` from `offset` into `socket` (by `sendfile` where
    /// the platform has it, the bytes never entering user space; else through `scratch`).
    /// `Ok(0)` at end of file.
    pub fn send_to(
        &self,
        socket: &std::net::TcpStream,
        handle: FileHandle,
        offset: u64,
        len: u64,
        scratch: &mut [u8],
    ) -> std::io::Result<usize> {
        let file = self.file(handle).ok_or(ErrorKind::NotFound)?;
        // Bounded, so one large file cannot hold the thread for long.
        let count = len.min(1 << 20) as usize;
        platform::send_file(socket, file, offset, count, scratch)
    }

    fn file(&self, handle: FileHandle) -> Option<&Arc<File>> {
        self.open.iter().find(|(h, _)| *h == handle).map(|(_, f)| f)
    }

    fn read(&mut self, handle: FileHandle, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let file = self.file(handle).ok_or(FsError::Io)?;
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(fs_error(e)),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }
}
