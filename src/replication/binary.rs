//! Finding the `litestream` program: `replication.litestream` when set,
//! else the first executable `litestream` on PATH.

use super::ReplicationError;
use std::path::{Path, PathBuf};

/// The program's file name on PATH.
const PROGRAM: &str = "litestream";

/// The litestream program to run, or why there is none.
pub fn locate(configured: &Path) -> Result<PathBuf, ReplicationError> {
    if !configured.as_os_str().is_empty() {
        return if is_executable(configured) {
            Ok(configured.to_path_buf())
        } else {
            Err(ReplicationError::NotExecutable(configured.to_path_buf()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(PROGRAM))
        .find(|candidate| is_executable(candidate))
        .ok_or(ReplicationError::NotOnPath)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_that_is_not_an_executable_file_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "x").expect("write");
        for (path, why) in [
            (dir.path().join("missing"), "missing"),
            (dir.path().to_path_buf(), "a directory"),
            (plain, "not executable"),
        ] {
            assert!(
                matches!(locate(&path), Err(ReplicationError::NotExecutable(_))),
                "{why}"
            );
        }
    }
}
