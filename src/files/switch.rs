//! The storage the application runs with, replaceable while it runs: the
//! `s3` settings pick local disk or a bucket, and saving them swaps the
//! backend (as PocketBase builds its filesystem from the current settings
//! on every use). Each call goes to the backend current at that moment; a
//! call already running finishes on the one it started with. Files are
//! not copied across by a switch: records whose files are in the other
//! place answer 404 for them until they are copied.

use super::storage::{BlobKey, ByteStream, LocalCopy, LocalStorage, Opened, Storage};
use super::{FilesError, S3Storage, Staged};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// Local disk or a bucket, behind one [`Storage`].
pub struct Switch {
    staging: PathBuf,
    local: Arc<LocalStorage>,
    current: RwLock<Current>,
}

#[derive(Clone)]
struct Current {
    store: Arc<dyn Storage>,
    remote: bool,
}

impl Switch {
    /// Starts on `local`; both backends stage uploads in its staging directory.
    pub fn new(local: LocalStorage) -> Self {
        let local = Arc::new(local);
        Self {
            staging: local.staging_dir().to_path_buf(),
            current: RwLock::new(Current {
                store: local.clone(),
                remote: false,
            }),
            local,
        }
    }

    /// Where uploads are staged (the same for every backend).
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The backend in use now (a request that makes several calls pins it).
    pub fn current(&self) -> Arc<dyn Storage> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .store
            .clone()
    }

    fn set(&self, next: Current) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// Files go to `s3` from now on.
    pub fn use_s3(&self, s3: S3Storage) {
        tracing::info!(bucket = s3.bucket(), "file storage: S3");
        self.set(Current {
            store: Arc::new(s3),
            remote: true,
        });
    }

    /// Files go to the local disk from now on.
    pub fn use_local(&self) {
        if self.is_s3() {
            tracing::info!("file storage: local disk");
        }
        self.set(Current {
            store: self.local.clone(),
            remote: false,
        });
    }

    /// Whether files currently go to a bucket.
    pub fn is_s3(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .remote
    }
}

impl Storage for Switch {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn put(&self, staged: Staged, key: &BlobKey) -> Result<(), FilesError> {
        self.current().put(staged, key)
    }

    fn open(&self, key: &BlobKey) -> Result<Opened, FilesError> {
        self.current().open(key)
    }

    fn read(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, FilesError> {
        self.current().read(key, range)
    }

    fn local_copy(&self, key: &BlobKey) -> Result<LocalCopy, FilesError> {
        self.current().local_copy(key)
    }

    fn list(&self) -> Result<Vec<(BlobKey, u64)>, FilesError> {
        self.current().list()
    }

    fn delete(&self, key: &BlobKey) -> Result<(), FilesError> {
        self.current().delete(key)
    }

    fn delete_record(&self, collection_id: &str, record_id: &str) -> Result<(), FilesError> {
        self.current().delete_record(collection_id, record_id)
    }

    fn delete_collection(&self, collection_id: &str) -> Result<(), FilesError> {
        self.current().delete_collection(collection_id)
    }
}
