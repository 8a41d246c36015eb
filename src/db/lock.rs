//! One server per data dir: `serve` holds an exclusive advisory lock on
//! `DATA_DIR/.lock` for as long as it runs. The kernel drops the lock when
//! the process dies (even on kill -9), so a stale lock file never blocks a
//! restart. CLI maintenance commands do not take it; SQLite's own locking
//! keeps them safe next to a running server.

use super::DbError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a starting server waits for a stopping one to let go.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// Holds the data dir's lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock, or fails at once with [`DbError::Locked`].
    pub fn try_acquire(data_dir: &Path) -> Result<Self, DbError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DbError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(".lock");
        let io_error = |source| DbError::DataDir {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(DbError::Locked {
                path: data_dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(io_error(source)),
        }
    }

    /// Takes the lock, waiting (without blocking the executor) up to `wait`
    /// for a stopping server on the same dir to let go.
    pub async fn acquire(data_dir: &Path, wait: Duration) -> Result<Self, DbError> {
        let deadline = Instant::now() + wait;
        loop {
            match Self::try_acquire(data_dir) {
                Err(DbError::Locked { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = DataDirLock::try_acquire(dir.path()).expect("first lock");
        let second = DataDirLock::try_acquire(dir.path());
        assert!(matches!(second, Err(DbError::Locked { .. })));
        drop(first);
        assert!(DataDirLock::try_acquire(dir.path()).is_ok());
    }
}
