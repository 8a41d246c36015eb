//! Uploads land in a temp file under the store's staging directory while
//! they are received; the size limit is enforced as bytes arrive (past it we
//! stop writing and only count). A staged file that is never placed is
//! removed when dropped, so a failed request leaves nothing behind.

use super::{FilesError, SNIFF_BYTES, sniff, stored_name};
use rand::Rng;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A path removed on drop unless [`TempPath::disarm`] was called.
#[derive(Debug)]
pub(super) struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    pub(super) fn new(dir: &Path) -> Self {
        let suffix: u64 = rand::rng().random();
        Self {
            path: dir.join(format!("upload-{suffix:016x}.tmp")),
            armed: true,
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The file has been moved away: nothing to remove.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A received upload, on disk in the staging directory.
#[derive(Debug)]
pub struct Staged {
    pub(super) temp: TempPath,
    /// The client's file name (for messages only).
    pub original_name: String,
    /// The server-generated name it will be stored under.
    pub name: String,
    /// Bytes received (may exceed what was written when over the limit).
    pub size: u64,
    /// Sniffed MIME type.
    pub mime: String,
}

impl Staged {
    /// Where the staged bytes are (deleted when this is dropped).
    pub fn path(&self) -> &std::path::Path {
        &self.temp.path
    }

    /// Gives the upload another fresh stored name (batch re-wraps files, as PocketBase does).
    pub fn rename_again(&mut self) {
        self.name = stored_name(&self.name, "");
    }
}

/// An upload being received.
pub struct StagingFile {
    temp: TempPath,
    file: tokio::fs::File,
    original_name: String,
    head: Vec<u8>,
    size: u64,
    /// Stop writing past this many bytes (the rest is only counted).
    limit: u64,
}

impl StagingFile {
    /// Opens a new temp file in `dir` for an upload named `original_name`.
    pub async fn create(dir: &Path, original_name: &str, limit: u64) -> Result<Self, FilesError> {
        let temp = TempPath::new(dir);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp.path())
            .await?;
        Ok(Self {
            temp,
            file,
            original_name: original_name.to_owned(),
            head: Vec::new(),
            size: 0,
            limit,
        })
    }

    /// Appends a chunk (only counted once the limit is passed).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), FilesError> {
        if self.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        let before = self.size;
        self.size += chunk.len() as u64;
        if before < self.limit {
            let room = usize::try_from(self.limit - before).unwrap_or(usize::MAX);
            self.file.write_all(&chunk[..room.min(chunk.len())]).await?;
        }
        Ok(())
    }

    /// Flushes and syncs the bytes (they must be durable before any record
    /// refers to them), sniffs the type and picks the stored name.
    pub async fn finish(mut self) -> Result<Staged, FilesError> {
        self.file.flush().await?;
        if self.size <= self.limit {
            self.file.sync_all().await?;
        }
        let (mime, ext) = sniff(&self.head);
        Ok(Staged {
            name: stored_name(&self.original_name, ext),
            temp: self.temp,
            original_name: self.original_name,
            size: self.size,
            mime,
        })
    }
}
