//! The simulated file system behind [`FileOp`]s: files in memory, opened by handle.
//!
//! Fault model (this version): none; every operation succeeds after a sampled latency. Read
//! errors, write errors, lost unsynced writes and torn writes come with the simulator issue.

use std::collections::BTreeMap;
use weaprous_core::node::{FileHandle, FileMeta, FileOp, FileReply, FsError};
use weaprous_core::time::UnixTime;

#[derive(Debug, Default, Clone)]
pub struct Disk {
    files: BTreeMap<String, (Vec<u8>, UnixTime)>,
    dirs: Vec<String>,
    open: BTreeMap<FileHandle, String>,
    next: FileHandle,
}

impl Disk {
    pub fn add_file(&mut self, path: &str, data: Vec<u8>, modified: UnixTime) {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !parent.is_empty() && !self.dirs.iter().any(|d| d == parent) {
                self.dirs.push(parent.to_string());
            }
            p = parent;
        }
        self.files.insert(path.to_string(), (data, modified));
    }
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|(d, _)| d.as_slice())
    }
    pub fn open_handles(&self) -> usize {
        self.open.len()
    }

    /// Carries out `op`; `None` for operations without a reply.
    pub fn run(&mut self, op: &FileOp) -> Option<FileReply> {
        match op {
            FileOp::Open { path } => {
                let meta = if let Some((data, modified)) = self.files.get(path) {
                    Ok((data.len() as u64, *modified, false))
                } else if self.dirs.iter().any(|d| d == path) {
                    Ok((0, UnixTime(0), true))
                } else {
                    Err(FsError::NotFound)
                };
                Some(FileReply::Opened(meta.map(|(len, modified, is_dir)| {
                    self.next += 1;
                    self.open.insert(self.next, path.clone());
                    FileMeta {
                        handle: self.next,
                        len,
                        modified,
                        is_dir,
                        real_path: path.clone(),
                    }
                })))
            }
            FileOp::Read {
                handle,
                offset,
                len,
            } => {
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
}
