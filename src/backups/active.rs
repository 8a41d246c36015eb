//! One backup or restore at a time per data dir, as PocketBase allows: a
//! second one is refused ([`BackupError::Busy`]) rather than queued, and the
//! archive being written or restored cannot be deleted meanwhile. Keyed by
//! data dir so several servers in one process (the tests) do not block each
//! other. Another process (`ferrobase backup create`) is not covered.

use super::BackupError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Data dir → key of the operation running there.
static ACTIVE: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());

fn table() -> MutexGuard<'static, BTreeMap<PathBuf, String>> {
    // The table stays consistent whatever panicked while holding it.
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running operation of one data dir; ends when dropped.
#[derive(Debug)]
pub struct Active {
    data_dir: PathBuf,
}

impl Drop for Active {
    fn drop(&mut self) {
        table().remove(&self.data_dir);
    }
}

/// Starts an operation on `key` in `data_dir`, or refuses while one runs.
pub fn begin(data_dir: &Path, key: &str) -> Result<Active, BackupError> {
    let mut active = table();
    if active.contains_key(data_dir) {
        return Err(BackupError::Busy);
    }
    active.insert(data_dir.to_path_buf(), key.to_owned());
    Ok(Active {
        data_dir: data_dir.to_path_buf(),
    })
}

/// Refuses when `key` is the archive being written or restored.
pub fn ensure_idle(data_dir: &Path, key: &str) -> Result<(), BackupError> {
    if table().get(data_dir).is_some_and(|k| k == key) {
        Err(BackupError::InUse)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_operation_waits_for_the_first_to_end() {
        let dir = Path::new("/tmp/active-test-a");
        let first = begin(dir, "one.zip").expect("first starts");

        let second = begin(dir, "two.zip");
        let elsewhere = begin(Path::new("/tmp/active-test-b"), "one.zip");
        let in_use = ensure_idle(dir, "one.zip");
        let other_key = ensure_idle(dir, "two.zip");
        drop(first);
        let after = begin(dir, "two.zip");

        assert!(matches!(second, Err(BackupError::Busy)));
        assert!(elsewhere.is_ok(), "another data dir is independent");
        assert!(matches!(in_use, Err(BackupError::InUse)));
        assert!(other_key.is_ok());
        assert!(after.is_ok(), "free again once the first ended");
    }
}
