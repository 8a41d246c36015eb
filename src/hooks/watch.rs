//! `--hooksWatch` (PocketBase's flag, on by default): when a file in the
//! hooks directory changes, the new files are loaded on a throwaway runtime
//! first; if they evaluate, the server restarts itself (same address, same
//! process) with them, else the error (file and line) is logged and the
//! running hooks stay — a typo never takes the server down.

use super::{Hooks, Host, Limits};
use crate::lifecycle::Lifecycle;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the directory is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Files looked at, at most (a hooks dir is small; this bounds a mistake).
const MAX_FILES: usize = 10_000;

/// What the directory looks like: each file's path, size and mtime.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// A running watcher; dropping it stops the watch.
pub struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches `dir` while the returned [`Watcher`] lives.
pub fn spawn(dir: PathBuf, limits: Limits, host: Host, lifecycle: Lifecycle) -> Watcher {
    Watcher(tokio::spawn(async move {
        let mut seen = fingerprint_of(dir.clone()).await;
        loop {
            tokio::time::sleep(POLL).await;
            let now = fingerprint_of(dir.clone()).await;
            if now == seen {
                continue;
            }
            seen = now;
            match Hooks::start(&dir, limits, 1, host.clone()).await {
                Ok(_) => {
                    tracing::info!(target: "ferrobase::hooks", dir = %dir.display(), "hook files changed: restarting with them");
                    lifecycle.request_restart();
                    return;
                }
                Err(e) => {
                    tracing::error!(target: "ferrobase::hooks", error = %e, "hook files changed but do not load; the running hooks stay");
                }
            }
        }
    }))
}

async fn fingerprint_of(dir: PathBuf) -> Fingerprint {
    tokio::task::spawn_blocking(move || fingerprint(&dir))
        .await
        .unwrap_or_default()
}

/// Every file under `dir` (recursively, bounded), sorted.
fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            if files.len() >= MAX_FILES {
                break;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                files.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_a_file_added_changed_or_removed() {
        let dir = tempfile::tempdir().expect("tmp");
        let empty = fingerprint(dir.path());
        std::fs::write(dir.path().join("a.pb.js"), "// a").expect("write");
        let one = fingerprint(dir.path());
        assert_ne!(empty, one, "added");
        std::fs::write(dir.path().join("a.pb.js"), "// a, longer").expect("write");
        let changed = fingerprint(dir.path());
        assert_ne!(one, changed, "changed size");
        std::fs::create_dir(dir.path().join("lib")).expect("mkdir");
        std::fs::write(dir.path().join("lib/x.js"), "").expect("write");
        let nested = fingerprint(dir.path());
        assert_ne!(changed, nested, "a file in a subfolder");
        std::fs::remove_file(dir.path().join("a.pb.js")).expect("rm");
        assert_ne!(nested, fingerprint(dir.path()), "removed");
        assert!(fingerprint(&dir.path().join("missing")).is_empty());
    }
}
