//! `ferrobase restore --from REPLICA [--timestamp T] [--force]`: rebuilds a
//! data dir from a Litestream replica. Restores into a fresh sibling dir,
//! checks `data.db` with `PRAGMA integrity_check`, and only then moves it
//! into place, so a failed restore leaves the data dir as it was. A
//! replaced data dir is kept beside it as `DIR.pre-restore-<time>`.
//! `storage/` (uploaded files) is not in the database and is not restored.

use super::{AUXILIARY_DB, DATA_DB, ReplicationError, last_line, replica_url};
use std::path::{Path, PathBuf};

/// What to restore, from the command line.
pub struct Request<'a> {
    pub litestream: &'a Path,
    pub replica: &'a str,
    /// RFC 3339; `None` = the latest state.
    pub timestamp: Option<&'a str>,
    pub data_dir: &'a Path,
    pub force: bool,
}

/// What was restored.
#[derive(Debug)]
pub struct Restored {
    pub auxiliary: bool,
    /// Where the replaced data dir went (with `--force`).
    pub previous: Option<PathBuf>,
}

fn fail(message: impl Into<String>) -> ReplicationError {
    ReplicationError::Restore(message.into())
}

/// Restores `data.db` (and `auxiliary.db` when the replica has it) into `data_dir`.
pub async fn run(request: Request<'_>) -> Result<Restored, ReplicationError> {
    let program = super::locate(request.litestream)?;
    if let Some(t) = request.timestamp {
        chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
            fail(format!(
                "--timestamp {t:?} is not an RFC 3339 time such as 2026-01-02T15:04:05Z: {e}"
            ))
        })?;
    }
    if !request.replica.contains("://") {
        return Err(fail(format!(
            "--from {:?} must be a replica URL such as file:///var/replica or s3://bucket/path",
            request.replica
        )));
    }
    let occupied = is_occupied(request.data_dir)?;
    if occupied && !request.force {
        return Err(fail(format!(
            "data dir {} is not empty; stop the server and add --force to replace it (it is kept as {}.pre-restore-<time>)",
            request.data_dir.display(),
            request.data_dir.display()
        )));
    }
    if occupied {
        // A running server holds the data dir's lock: never swap under it.
        drop(
            crate::db::DataDirLock::acquire(request.data_dir, std::time::Duration::ZERO)
                .await
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    let staging = sibling(request.data_dir, "restoring")?;
    let outcome = restore_into(&program, &request, &staging).await;
    let auxiliary = match outcome {
        Ok(auxiliary) => auxiliary,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let previous = swap_in(&staging, request.data_dir, occupied)?;
    Ok(Restored {
        auxiliary,
        previous,
    })
}

/// Restores both databases into `staging` and checks `data.db`. Returns
/// whether the replica held an `auxiliary.db`.
async fn restore_into(
    program: &Path,
    request: &Request<'_>,
    staging: &Path,
) -> Result<bool, ReplicationError> {
    std::fs::create_dir_all(staging).map_err(|source| ReplicationError::DataDir {
        path: staging.to_path_buf(),
        source,
    })?;
    litestream_restore(program, request, staging, DATA_DB, false).await?;
    let auxiliary = litestream_restore(program, request, staging, AUXILIARY_DB, true).await?;
    let db = staging.join(DATA_DB);
    let findings = tokio::task::spawn_blocking(move || crate::db::Db::check_file(&db))
        .await
        .map_err(|e| fail(format!("integrity check did not finish: {e}")))?
        .map_err(|e| fail(format!("integrity check failed: {e}")))?;
    if findings != ["ok"] {
        return Err(fail(format!(
            "the restored data.db failed its integrity check: {}",
            findings.join("; ")
        )));
    }
    Ok(auxiliary)
}

/// Runs `litestream restore` for one database. With `optional`, a replica
/// without that database is not an error; returns whether a file was written.
async fn litestream_restore(
    program: &Path,
    request: &Request<'_>,
    staging: &Path,
    database: &str,
    optional: bool,
) -> Result<bool, ReplicationError> {
    let output_path = staging.join(database);
    let mut command = tokio::process::Command::new(program);
    command.arg("restore").arg("-o").arg(&output_path);
    if let Some(t) = request.timestamp {
        command.arg("-timestamp").arg(t);
    }
    if optional {
        command.arg("-if-replica-exists");
    }
    let output = command
        .arg(replica_url(request.replica, database))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ReplicationError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        let mut both = output.stdout;
        both.extend_from_slice(&output.stderr);
        return Err(fail(format!(
            "litestream could not restore {database} from {}: {}",
            request.replica,
            last_line(&both)
        )));
    }
    Ok(output_path.exists())
}

/// Whether `dir` exists with anything in it.
fn is_occupied(dir: &Path) -> Result<bool, ReplicationError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ReplicationError::DataDir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// `DIR.<what>-<unix time>-<pid>` beside `dir` (same file system, so renames are atomic).
fn sibling(dir: &Path, what: &str) -> Result<PathBuf, ReplicationError> {
    let Some(name) = dir.file_name() else {
        return Err(fail(format!(
            "data dir {} has no name to restore beside",
            dir.display()
        )));
    };
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let mut sibling = name.to_os_string();
    sibling.push(format!(".{what}-{stamp}-{}", std::process::id()));
    Ok(dir.with_file_name(sibling))
}

/// Moves `staging` to `data_dir`, first moving an occupied data dir aside
/// (or removing an empty one).
fn swap_in(
    staging: &Path,
    data_dir: &Path,
    occupied: bool,
) -> Result<Option<PathBuf>, ReplicationError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReplicationError::DataDir { path, source }
    };
    let previous = if occupied {
        let aside = sibling(data_dir, "pre-restore")?;
        std::fs::rename(data_dir, &aside).map_err(io(data_dir))?;
        Some(aside)
    } else {
        if data_dir.exists() {
            std::fs::remove_dir(data_dir).map_err(io(data_dir))?;
        }
        None
    };
    std::fs::rename(staging, data_dir).map_err(io(data_dir))?;
    Ok(previous)
}
