//! Backups: zip archives in `DATA_DIR/backups/` holding a consistent
//! snapshot of `data.db` (taken with `VACUUM INTO` while the server keeps
//! serving) and the uploaded files under `storage/`. Request logs
//! (`auxiliary.db`) are not included. With `backups.s3` enabled the
//! archives live in that bucket instead ([`Store`]); they are still built
//! in, and restored from, a local temp file.
//!
//! Restoring is two steps so that nothing is touched until the archive is
//! known to be good: [`stage_restore`] checks the archive (entry names,
//! SQLite integrity, Ferrobase's system tables) and unpacks it into
//! `DATA_DIR/.restore/`, marking it complete last; then, with the server
//! stopped, [`apply_staged_restore`] swaps it in by renames, moving the
//! replaced files to `DATA_DIR/.pre-restore-<time>/`. A crash in between
//! leaves either the old data or a complete staged restore that is applied
//! at the next start.

mod active;
mod store;

pub use store::{Download, LocalArchive, Store};

use crate::db::{Db, DbError};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek};
use std::path::{Component, Path, PathBuf};
use zip::write::SimpleFileOptions;

/// Name of the database file inside an archive and the data dir.
const DB_FILE: &str = "data.db";
/// Uploaded files, inside an archive and the data dir.
const STORAGE_DIR: &str = "storage";
const STAGING_DIR: &str = ".restore";
const STAGED_MARKER: &str = "READY";
/// Largest archive entry unpacked (guards against zip bombs).
const MAX_ENTRY_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// Why a backup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("invalid backup name; expected [a-z0-9_-]+.zip")]
    InvalidName,
    #[error("backup not found")]
    NotFound,
    #[error("a backup with this name already exists")]
    Exists,
    #[error("not a valid backup archive: {0}")]
    InvalidArchive(String),
    /// Another backup or restore is running on this data dir.
    #[error("another backup or restore is running")]
    Busy,
    /// The archive is being written or restored.
    #[error("the backup is in use")]
    InUse,
    /// The bucket of `backups.s3` refused or could not be reached.
    #[error("{0}")]
    Remote(String),
    #[error("backup i/o: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<zip::result::ZipError> for BackupError {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(e) => BackupError::Io(e),
            other => BackupError::InvalidArchive(other.to_string()),
        }
    }
}

/// One stored backup, as `GET /api/backups` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupInfo {
    pub key: String,
    pub size: u64,
    pub modified: String,
}

/// Reports progress as (done, total) units of work.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Where the archives live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// Whether `key` is an acceptable archive name (`[a-z0-9_-]+\.zip`).
pub fn valid_key(key: &str) -> bool {
    key.len() <= 150
        && key.strip_suffix(".zip").is_some_and(|stem| {
            !stem.is_empty()
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

/// A fresh name as PocketBase makes them: `{prefix}{app}_{UTC time}.zip`,
/// `app` being the application name in snake case (at most 50 characters;
/// left out when empty), e.g. `pb_backup_acme_20261122030405.zip`.
pub fn default_key(prefix: &str, app_name: &str) -> String {
    let app: String = crate::files::snake_case(app_name)
        .chars()
        .take(50)
        .collect();
    let time = chrono::Utc::now().format("%Y%m%d%H%M%S");
    if app.is_empty() {
        format!("{prefix}{time}.zip")
    } else {
        format!("{prefix}{app}_{time}.zip")
    }
}

fn info(path: &Path) -> Option<BackupInfo> {
    let meta = fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?;
    Some(BackupInfo {
        key: path.file_name()?.to_str()?.to_owned(),
        size: meta.len(),
        modified: crate::clock::format(modified.into()),
    })
}

/// The archives in a local dir, in no order.
fn list_dir(dir: &Path) -> Result<Vec<BackupInfo>, BackupError> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.to_str().is_some_and(valid_key)
                    && let Some(i) = info(&entry.path())
                {
                    out.push(i);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(out)
}

/// Deletes `key` from `store` unless it is being written or restored.
pub fn delete(data_dir: &Path, store: &Store, key: &str) -> Result<(), BackupError> {
    active::ensure_idle(data_dir, key)?;
    store.delete(key)
}

/// Keeps the newest `keep` archives of `store` whose names start with
/// `prefix`; returns how many were deleted.
pub fn prune(store: &Store, prefix: &str, keep: usize) -> Result<usize, BackupError> {
    let old: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|b| b.key.starts_with(prefix))
        .skip(keep)
        .collect();
    for backup in &old {
        store.delete(&backup.key)?;
    }
    Ok(old.len())
}

fn random_suffix() -> String {
    crate::schema::autogen::random_string(crate::schema::autogen::LOWER_ALPHANUMERIC, 10)
}

/// Creates `key` in the local dir from a snapshot of the database and the
/// stored files.
pub async fn create(
    db: &Db,
    data_dir: &Path,
    key: &str,
    progress: Option<Progress<'static>>,
) -> Result<BackupInfo, BackupError> {
    create_in(db, data_dir, &Store::local(data_dir), key, progress).await
}

/// Creates `key` in `store`: the archive is written to a temp file under
/// the local backups dir and then moved (or uploaded) into place; on any
/// failure the temp file goes and the store is left as it was.
pub async fn create_in(
    db: &Db,
    data_dir: &Path,
    store: &Store,
    key: &str,
    progress: Option<Progress<'static>>,
) -> Result<BackupInfo, BackupError> {
    if !valid_key(key) {
        return Err(BackupError::InvalidName);
    }
    let _active = active::begin(data_dir, key)?;
    let exists = {
        let (store, key) = (store.clone(), key.to_owned());
        blocking(move || store.exists(&key)).await?
    };
    if exists {
        return Err(BackupError::Exists);
    }
    let backups = dir(data_dir);
    fs::create_dir_all(&backups)?;
    let work = backups.join(format!(".tmp-{}", random_suffix()));
    fs::create_dir_all(&work)?;
    let snapshot = work.join(DB_FILE);
    let result = async {
        db.snapshot_to(snapshot.clone()).await?;
        let (data_dir, work_dir) = (data_dir.to_path_buf(), work.clone());
        let (store, key) = (store.clone(), key.to_owned());
        blocking(move || {
            let archive = write_archive(&snapshot, &data_dir, &work_dir, progress)?;
            store.put(&key, &archive, true)?;
            store.info(&key)
        })
        .await
    }
    .await;
    let _ = fs::remove_dir_all(&work);
    result
}

/// The scheduled backup: creates `key` in `store`, then keeps the newest
/// `keep` archives named `prefix…`. A failed prune is only logged: the new
/// archive is in place.
pub async fn create_and_prune(
    db: &Db,
    data_dir: &Path,
    store: Store,
    key: &str,
    prefix: &'static str,
    keep: usize,
) -> Result<BackupInfo, BackupError> {
    let created = create_in(db, data_dir, &store, key, None).await?;
    if let Err(e) = blocking(move || prune(&store, prefix, keep)).await {
        tracing::warn!(error = %e, "could not prune old backups");
    }
    Ok(created)
}

/// Runs blocking backup work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackupError::Io(io::Error::other(e)))?
}

/// Every regular file under `root`, as paths relative to it.
fn files_under(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let entries = match fs::read_dir(root.join(&rel)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = rel.join(entry.file_name());
            if kind.is_dir() {
                // Upload staging (storage/.tmp) holds nothing committed.
                if rel.as_os_str().is_empty() && entry.file_name() == ".tmp" {
                    continue;
                }
                pending.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes the archive into `work/archive.zip` (synced) and returns its path.
fn write_archive(
    snapshot: &Path,
    data_dir: &Path,
    work: &Path,
    progress: Option<Progress<'_>>,
) -> Result<PathBuf, BackupError> {
    let storage = data_dir.join(STORAGE_DIR);
    let files = files_under(&storage)?;
    let total = files.len() as u64 + 1;
    let partial = work.join("archive.zip");
    let mut zip = zip::ZipWriter::new(BufWriter::new(File::create(&partial)?));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file(DB_FILE, options)?;
    io::copy(&mut BufReader::new(File::open(snapshot)?), &mut zip)?;
    if let Some(report) = progress {
        report(1, total);
    }
    for (i, rel) in files.iter().enumerate() {
        let Some(name) = rel.to_str() else { continue };
        // A file deleted since the snapshot was taken is simply skipped.
        let Ok(source) = File::open(storage.join(rel)) else {
            continue;
        };
        zip.start_file(format!("{STORAGE_DIR}/{name}"), options)?;
        io::copy(&mut BufReader::new(source), &mut zip)?;
        if let Some(report) = progress {
            report(i as u64 + 2, total);
        }
    }
    let file = zip.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(partial)
}

/// Stores an uploaded archive as `key` in `store` after checking it like
/// a restore would; a bad archive is refused and nothing is stored.
pub fn import(
    data_dir: &Path,
    store: &Store,
    key: &str,
    uploaded: &Path,
) -> Result<BackupInfo, BackupError> {
    if !valid_key(key) {
        return Err(BackupError::InvalidName);
    }
    if store.exists(key)? {
        return Err(BackupError::Exists);
    }
    validate_archive(uploaded, &scratch_dir(data_dir))?;
    store.put(key, uploaded, false)?;
    store.info(key)
}

/// Local scratch space for archive checks and fetched archives.
pub fn scratch_dir(data_dir: &Path) -> PathBuf {
    dir(data_dir).join(".scratch")
}

/// Fetches `key` from `store` (a temp copy when it is remote) and stages
/// it like a local archive: the same checks run before anything is
/// unpacked, and nothing live is touched.
pub fn stage_restore_from(
    data_dir: &Path,
    store: &Store,
    key: &str,
    progress: Option<Progress<'_>>,
) -> Result<(), BackupError> {
    let _active = active::begin(data_dir, key)?;
    let archive = store.fetch(key, &scratch_dir(data_dir))?;
    stage_restore(data_dir, archive.path(), progress)
}

/// Where an archive entry may go: `data.db` or a plain relative path under
/// `storage/`; anything else (absolute, `..`, other files) is refused.
fn safe_entry_path(name: &str) -> Option<PathBuf> {
    if name == DB_FILE {
        return Some(PathBuf::from(DB_FILE));
    }
    if name.ends_with('/') {
        return None;
    }
    let path = Path::new(name);
    let mut components = path.components();
    if components.next() != Some(Component::Normal(STORAGE_DIR.as_ref())) {
        return None;
    }
    components
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
}

/// Checks an archive without unpacking the files: names, sizes, and that
/// its `data.db` is a sound Ferrobase database.
pub fn validate_archive(path: &Path, scratch: &Path) -> Result<(), BackupError> {
    let mut zip = zip::ZipArchive::new(BufReader::new(File::open(path)?))?;
    let mut has_db = false;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i)?;
        let name = entry.name()?.into_owned();
        if entry.is_dir() {
            continue;
        }
        if safe_entry_path(&name).is_none() {
            return Err(BackupError::InvalidArchive(format!(
                "unexpected entry {name:?}"
            )));
        }
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(BackupError::InvalidArchive(format!(
                "{name:?} is too large"
            )));
        }
        has_db |= name == DB_FILE;
    }
    if !has_db {
        return Err(BackupError::InvalidArchive("no data.db inside".into()));
    }
    fs::create_dir_all(scratch)?;
    let probe = scratch.join(format!("probe-{}.db", random_suffix()));
    let checked = (|| -> Result<(), BackupError> {
        extract_entry(&mut zip, DB_FILE, &probe)?;
        let findings = Db::check_file(&probe)?;
        if findings != ["ok"] {
            return Err(BackupError::InvalidArchive(findings.join("; ")));
        }
        Ok(())
    })();
    let _ = fs::remove_file(&probe);
    checked
}

fn extract_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    to: &Path,
) -> Result<(), BackupError> {
    let mut entry = zip.by_name(name)?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut out = BufWriter::new(File::create(to)?);
    let copied = io::copy(&mut (&mut entry).take(MAX_ENTRY_BYTES + 1), &mut out)?;
    if copied > MAX_ENTRY_BYTES {
        return Err(BackupError::InvalidArchive(format!(
            "{name:?} is too large"
        )));
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Validates `archive` and unpacks it into the staging dir, marking it
/// complete last. Nothing in the live data dir is touched.
pub fn stage_restore(
    data_dir: &Path,
    archive: &Path,
    progress: Option<Progress<'_>>,
) -> Result<(), BackupError> {
    let staging = data_dir.join(STAGING_DIR);
    let _ = fs::remove_dir_all(&staging);
    validate_archive(archive, &scratch_dir(data_dir))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(File::open(archive)?))?;
    let mut names = Vec::new();
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i)?;
        if !entry.is_dir() {
            names.push(entry.name()?.into_owned());
        }
    }
    let total = names.len() as u64;
    let unpacked = names.iter().enumerate().try_for_each(|(i, name)| {
        let rel = safe_entry_path(name)
            .ok_or_else(|| BackupError::InvalidArchive(format!("unexpected entry {name:?}")))?;
        extract_entry(&mut zip, name, &staging.join(rel))?;
        if let Some(report) = progress {
            report(i as u64 + 1, total);
        }
        Ok::<(), BackupError>(())
    });
    if let Err(e) = unpacked {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    File::create(staging.join(STAGED_MARKER))?.sync_all()?;
    File::open(&staging)?.sync_all()?;
    Ok(())
}

/// With the server stopped: swaps a complete staged restore into the data
/// dir. Returns whether there was one. Replaced files are kept in
/// `.pre-restore-<time>/`.
pub fn apply_staged_restore(data_dir: &Path) -> Result<bool, BackupError> {
    let staging = data_dir.join(STAGING_DIR);
    if !staging.join(STAGED_MARKER).is_file() {
        let _ = fs::remove_dir_all(&staging);
        return Ok(false);
    }
    let aside = data_dir.join(format!(
        ".pre-restore-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S%3f")
    ));
    fs::create_dir_all(&aside)?;
    for name in [DB_FILE, "data.db-wal", "data.db-shm", STORAGE_DIR] {
        let live = data_dir.join(name);
        if live.exists() {
            fs::rename(&live, aside.join(name))?;
        }
    }
    for name in [DB_FILE, STORAGE_DIR] {
        let staged = staging.join(name);
        if staged.exists() {
            fs::rename(&staged, data_dir.join(name))?;
        }
    }
    fs::remove_dir_all(&staging)?;
    File::open(data_dir)?.sync_all()?;
    tracing::info!(kept = %aside.display(), "restored a backup; the replaced data is kept aside");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_lowercase_zip_names() {
        assert!(valid_key("pb_backup_20261122.zip"));
        assert!(valid_key("a-b_c.zip"));
        assert!(!valid_key(".zip"));
        assert!(!valid_key("A.zip"));
        assert!(!valid_key("../x.zip"));
        assert!(!valid_key("x.tar"));
        assert!(valid_key(&default_key("pb_backup_", "")));
        for (app, part) in [
            ("Acme", "acme_"),
            ("My App", "my_app_"),
            ("MyApp 2.0!", "my_app_2_0_"),
            ("Ünïcode", "n_code_"),
            ("", ""),
        ] {
            let key = default_key("pb_backup_", app);
            assert!(valid_key(&key), "{app:?}: {key}");
            assert!(
                key.starts_with(&format!("pb_backup_{part}")),
                "{app:?}: {key}"
            );
        }
    }

    #[test]
    fn only_the_database_and_storage_files_may_be_unpacked() {
        assert_eq!(safe_entry_path("data.db"), Some(PathBuf::from("data.db")));
        assert!(safe_entry_path("storage/c1/r1/a.png").is_some());
        assert!(safe_entry_path("storage/../data.db").is_none());
        assert!(safe_entry_path("/etc/passwd").is_none());
        assert!(safe_entry_path("other.db").is_none());
        assert!(safe_entry_path("storage/").is_none());
    }
}
