//! Stored files: upload limits and MIME checks, server-generated stored
//! names, staging of uploads in temp files, storage behind the [`Storage`]
//! trait (local disk or an S3-compatible bucket, switched live by a
//! [`Switch`]) and thumbnails. Knows nothing of HTTP, the
//! database or the schema: callers pass the limits of the field in question.

mod migrate;
mod names;
pub(crate) mod s3;
mod sniff;
mod staging;
mod storage;
mod switch;
mod thumb;

pub use migrate::{Copied, copy_all};
pub use names::{snake_case, stored_name};
pub use s3::{S3Config, S3Error, S3Storage};
pub use sniff::sniff;
pub use staging::{Staged, StagingFile};
pub use storage::{
    BlobKey, ByteStream, LocalCopy, LocalStorage, ObjectInfo, Opened, Storage, read_chunks,
};
pub use switch::Switch;
pub use thumb::{ThumbSize, is_thumbable, thumb_key};

use std::sync::Arc;

/// A file field's `maxSize` when it is 0.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// How much of the start of a file content sniffing looks at.
pub const SNIFF_BYTES: usize = 8 * 1024;
/// The thumb size every image field allows besides its `thumbs` list.
pub const DEFAULT_THUMB: &str = "100x100";

/// The storage backend the application runs with.
pub type Store = Arc<dyn Storage>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("invalid storage key")]
    BadKey,
    #[error("file not found")]
    NotFound,
    #[error("image processing failed: {0}")]
    Image(String),
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("background task failed: {0}")]
    Task(String),
    /// Files copied to another backend are not all there afterwards.
    #[error("copy not verified: {0}")]
    Verify(String),
    /// The object store failed or could not be reached.
    #[error("object storage: {0}")]
    Remote(String),
}

/// Why an upload is refused for a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// Larger than the field's `maxSize` (the effective limit in bytes).
    TooLarge { file: String, max_size: u64 },
    /// Sniffed type not in the field's `mimeTypes`.
    MimeType { file: String, allowed: Vec<String> },
}

/// Checks one staged upload against a field's `maxSize` (0 → 5 MiB) and
/// `mimeTypes` (empty → any). The type is the sniffed one, never the client's.
pub fn check(max_size: u64, mime_types: &[String], staged: &Staged) -> Result<(), Rejection> {
    let limit = effective_max_size(max_size);
    if staged.size > limit {
        return Err(Rejection::TooLarge {
            file: staged.original_name.clone(),
            max_size: limit,
        });
    }
    if !mime_types.is_empty() {
        let base = staged.mime.split(';').next().unwrap_or("").trim();
        if !mime_types
            .iter()
            .any(|m| m.trim().eq_ignore_ascii_case(base))
        {
            return Err(Rejection::MimeType {
                file: staged.name.clone(),
                allowed: mime_types.to_vec(),
            });
        }
    }
    Ok(())
}

/// `maxSize` with 0 meaning the 5 MiB default.
pub fn effective_max_size(max_size: u64) -> u64 {
    if max_size == 0 {
        DEFAULT_MAX_FILE_BYTES
    } else {
        max_size
    }
}

/// Moves staged uploads to their keys (durably) off the executor. On error the
/// ones already placed are removed again, so the caller has nothing to undo.
pub async fn place(
    store: &Store,
    files: Vec<(Staged, BlobKey)>,
) -> Result<Vec<BlobKey>, FilesError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let store = store.clone();
    run_blocking(move || {
        let mut placed = Vec::with_capacity(files.len());
        for (staged, key) in files {
            if let Err(e) = store.put(staged, &key) {
                for done in &placed {
                    remove_logged(store.as_ref(), done);
                }
                return Err(e);
            }
            placed.push(key);
        }
        Ok(placed)
    })
    .await
}

/// Best-effort removal after a commit (or a rollback); failures are logged.
pub async fn remove(store: &Store, blobs: Vec<BlobKey>, records: Vec<(String, String)>) {
    if blobs.is_empty() && records.is_empty() {
        return;
    }
    let store = store.clone();
    let outcome = run_blocking(move || {
        for key in &blobs {
            remove_logged(store.as_ref(), key);
        }
        for (collection_id, record_id) in &records {
            if let Err(e) = store.delete_record(collection_id, record_id) {
                tracing::warn!(%collection_id, %record_id, error = %e, "could not remove record files");
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "file cleanup task failed");
    }
}

/// Removes every file of a collection (after the collection is gone).
pub async fn remove_collection(store: &Store, collection_id: String) {
    let store = store.clone();
    let outcome = run_blocking(move || store.delete_collection(&collection_id)).await;
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not remove collection files");
    }
}

fn remove_logged(store: &dyn Storage, key: &BlobKey) {
    if let Err(e) = store.delete(key) {
        tracing::warn!(key = %key, error = %e, "could not remove stored file");
    }
}

/// Thumbs made at once; more requests wait (decoding is CPU- and memory-heavy).
const THUMB_WORKERS: usize = 2;
static THUMB_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(THUMB_WORKERS);

/// The key of `key`'s thumb of `size`, made on first use (at most
/// [`THUMB_WORKERS`] at a time).
pub async fn thumb(store: &Store, key: BlobKey, size: ThumbSize) -> Result<BlobKey, FilesError> {
    let _slot = THUMB_SLOTS
        .acquire()
        .await
        .map_err(|e| FilesError::Task(e.to_string()))?;
    let store = store.clone();
    run_blocking(move || thumb_key(store.as_ref(), &key, &size)).await
}

/// Runs blocking storage work on the blocking pool.
pub async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FilesError::Task(e.to_string()))?
}
