//! Carries out [`FileOp`]s on the real file system for one connection.
//!
//! Decision: operations run inline on the executor thread. The files a web server serves are
//! almost always in the page cache, where `open`/`fstat`/`pread` of one 64 KiB chunk take a few
//! microseconds, while a hop to a blocking thread pool costs more than that twice over (nginx
//! makes the same choice without `aio`). DESIGN.md §5 asks for file reads off the executor;
//! we measured the hop (see the README's benchmark section) and keep it for durable-log syncs,
//! which are slow by nature. Reads are bounded by the machine's chunk size, so one connection
//! can never hold a thread for long on a warm cache.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::time::UNIX_EPOCH;
use weaprous_core::node::{FileHandle, FileMeta, FileOp, FileReply, FsError};
use weaprous_core::time::UnixTime;

/// The open files of one connection (a machine holds at most a couple at a time).
#[derive(Default)]
pub struct Files {
    open: Vec<(FileHandle, File)>,
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
        let file = File::open(path).map_err(fs_error)?;
        let meta = file.metadata().map_err(fs_error)?;
        // The real path of the file we hold, not of the name we opened: no window for a swap.
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .or_else(|_| std::fs::canonicalize(path))
            .map_err(fs_error)?;
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
            real_path: real.to_string_lossy().into_owned(),
        })
    }

    fn read(&mut self, handle: FileHandle, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let file = &self
            .open
            .iter()
            .find(|(h, _)| *h == handle)
            .ok_or(FsError::Io)?
            .1;
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
