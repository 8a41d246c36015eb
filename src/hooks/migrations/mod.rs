//! JavaScript schema migrations (PocketBase's `pb_migrations/*.js`): each
//! file calls `migrate((app) => {...}, (app) => {...})`. Pending files run
//! in file-name order on start and with `migrate up`, each in ONE
//! transaction together with its row in `_migrations` (the table Ferrobase's
//! own embedded migrations use too: those rows are named `0001_init` …,
//! user rows are file names ending in `.js`, and only the latter are ever
//! reverted or synced here). A failure rolls its file back entirely, names
//! the file, and stops: later files do not run. The same on SQLite and on
//! PostgreSQL (`runner` holds the transaction, `host` answers the script's
//! calls, `raw_sql` runs `app.db().newQuery` in the engine's dialect).
//!
//! Also here: the templates `migrate create` and `migrate collections`
//! write, and automigrate, which writes a file (already applied) for every
//! collection changed through the API.

mod host;
mod raw_sql;
mod runner;
pub mod templates;

use crate::db::{Db, DbError};
use crate::rules::SqlValue;
use crate::schema::Snapshot;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest migration file read; a bigger one is refused.
pub const MAX_MIGRATION_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Longest name `migrate create` accepts.
const MAX_NAME_CHARS: usize = 100;

/// Where migration files live and the limits each runs under.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// Wall-clock limit of one file: its JavaScript and its SQL together.
    pub timeout: Duration,
    pub memory_bytes: usize,
}

impl Options {
    /// The directory and limits `config` sets (the memory limit is the
    /// hooks' one).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            dir: config.migrations_dir(),
            timeout: Duration::from_millis(config.migrations.timeout_ms),
            memory_bytes: config.hooks.memory_limit_mb.saturating_mul(1024 * 1024),
        }
    }
}

/// Which function of a file to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Why migrations could not run.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration {file} failed: {message}")]
    Failed { file: String, message: String },
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// One migration file: its name (the ledger key) and its text.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub name: String,
    pub source: String,
}

/// The `*.js` files directly in `dir`, in name order (empty when `dir` is missing).
pub fn load(dir: &Path) -> Result<Vec<MigrationFile>, MigrateError> {
    let io = |e: std::io::Error| MigrateError::Io(format!("cannot read {}: {e}", dir.display()));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".js") || name.starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(entry.path()).map_err(io)?;
        if !meta.is_file() {
            continue;
        }
        if meta.len() > MAX_MIGRATION_FILE_BYTES {
            return Err(MigrateError::Io(format!(
                "{name}: larger than {MAX_MIGRATION_FILE_BYTES} bytes"
            )));
        }
        let source = std::fs::read_to_string(entry.path()).map_err(io)?;
        files.push(MigrationFile { name, source });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

fn is_user_name(name: &str) -> bool {
    name.ends_with(".js")
}

/// The applied user migrations, oldest first: (file, applied at). Runs on
/// either engine (`migrate status` on PostgreSQL).
pub async fn applied(db: &Db) -> Result<Vec<(String, String)>, MigrateError> {
    let rows = db
        .read_conn(|conn| {
            conn.rows(
                "SELECT file, applied FROM _migrations WHERE file LIKE '%.js' ORDER BY applied, file",
                &[],
            )
        })
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut cells = row.into_iter();
        match (cells.next(), cells.next()) {
            (Some(SqlValue::Text(file)), Some(SqlValue::Text(at))) => out.push((file, at)),
            other => {
                return Err(MigrateError::Io(format!(
                    "_migrations holds a row that is not (file, applied): {other:?}"
                )));
            }
        }
    }
    Ok(out.into_iter().filter(|(f, _)| is_user_name(f)).collect())
}

/// Runs every pending file's up function; the names applied, in order.
pub async fn up(db: &Db, options: &Options) -> Result<Vec<String>, MigrateError> {
    let files = load(&options.dir)?;
    let done: std::collections::HashSet<String> =
        applied(db).await?.into_iter().map(|(f, _)| f).collect();
    let mut ran = Vec::new();
    for file in files.iter().filter(|f| !done.contains(&f.name)) {
        match runner::run(db, options, file, Direction::Up).await? {
            runner::Ran::Done => {
                tracing::info!(migration = %file.name, "applied migration");
                ran.push(file.name.clone());
            }
            runner::Ran::AlreadyDone => {
                tracing::info!(migration = %file.name, "migration applied meanwhile by another process");
            }
        }
    }
    Ok(ran)
}

/// Reverts the last `count` applied user migrations, newest first, with
/// their down functions; the names reverted.
pub async fn down(db: &Db, options: &Options, count: usize) -> Result<Vec<String>, MigrateError> {
    let files = load(&options.dir)?;
    let mut applied = applied(db).await?;
    applied.reverse();
    let mut reverted = Vec::new();
    for (name, _) in applied.into_iter().take(count) {
        let file = files.iter().find(|f| f.name == name).ok_or_else(|| {
            MigrateError::Io(format!(
                "cannot revert {name}: the file is missing (see `migrate history-sync`)"
            ))
        })?;
        match runner::run(db, options, file, Direction::Down).await? {
            runner::Ran::Done => {
                tracing::info!(migration = %name, "reverted migration");
                reverted.push(name);
            }
            runner::Ran::AlreadyDone => {
                tracing::info!(migration = %name, "migration reverted meanwhile by another process");
            }
        }
    }
    Ok(reverted)
}

/// Forgets applied user migrations whose file no longer exists; the names dropped.
pub async fn history_sync(db: &Db, options: &Options) -> Result<Vec<String>, MigrateError> {
    let present: std::collections::HashSet<String> =
        load(&options.dir)?.into_iter().map(|f| f.name).collect();
    let missing: Vec<String> = applied(db)
        .await?
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| !present.contains(f))
        .collect();
    let gone = missing.clone();
    db.write_conn(move |conn| {
        for name in &gone {
            conn.execute(
                "DELETE FROM _migrations WHERE file = ?1",
                &[SqlValue::Text(name.clone())],
            )?;
        }
        Ok::<_, DbError>(())
    })
    .await?;
    Ok(missing)
}

/// The files of `dir` and the applied rows without a file: (name, applied at).
pub async fn status(
    db: &Db,
    options: &Options,
) -> Result<Vec<(String, Option<String>)>, MigrateError> {
    let applied = applied(db).await?;
    let mut out: Vec<(String, Option<String>)> = load(&options.dir)?
        .into_iter()
        .map(|f| {
            let at = applied
                .iter()
                .find(|(n, _)| *n == f.name)
                .map(|(_, a)| a.clone());
            (f.name, at)
        })
        .collect();
    for (name, at) in applied {
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, Some(at)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// PocketBase's file name normalisation (`inflector.Snakecase`), refusing
/// anything that is not letters, digits, spaces, `_` and `-` (no path parts).
pub fn file_stem(name: &str) -> Result<String, MigrateError> {
    let name = name.trim();
    let refused = || {
        MigrateError::Io(format!(
            "invalid migration name {name:?}: use letters, digits, spaces, '_' and '-' (at most {MAX_NAME_CHARS})"
        ))
    };
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-'))
    {
        return Err(refused());
    }
    let out = crate::files::snake_case(name);
    if out.is_empty() {
        return Err(refused());
    }
    Ok(out)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Writes `<unix-ts>_<stem>.js` into `dir` (never over an existing file);
/// returns its name. A later file in the same second gets a higher stamp,
/// so file-name order stays the order they were written in.
fn write_file(dir: &Path, stem: &str, text: &str) -> Result<String, MigrateError> {
    use std::io::Write;
    std::fs::create_dir_all(dir)
        .map_err(|e| MigrateError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let latest = load(dir)?
        .iter()
        .filter_map(|f| f.name.split('_').next().and_then(|s| s.parse::<u64>().ok()))
        .max();
    let mut stamp = unix_now().max(latest.map_or(0, |l| l.saturating_add(1)));
    loop {
        let name = format!("{stamp}_{stem}.js");
        let path = dir.join(&name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(text.as_bytes()).map_err(|e| {
                    MigrateError::Io(format!("cannot write {}: {e}", path.display()))
                })?;
                return Ok(name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => stamp += 1,
            Err(e) => {
                return Err(MigrateError::Io(format!(
                    "cannot write {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

/// `migrate create NAME`: a blank migration; returns the file name.
pub fn create(dir: &Path, name: &str) -> Result<String, MigrateError> {
    write_file(dir, &file_stem(name)?, &templates::blank())
}

/// `migrate collections`: a snapshot of every non-system collection.
pub async fn snapshot(db: &Db, dir: &Path) -> Result<String, MigrateError> {
    let schema = db
        .read_conn(|conn| crate::schema::read_snapshot(conn))
        .await
        .map_err(|e| MigrateError::Io(e.to_string()))?;
    let list: Vec<Value> = schema
        .all()
        .iter()
        .filter(|c| !c.system)
        .map(|c| c.to_json())
        .collect();
    write_file(dir, "collections_snapshot", &templates::snapshot(&list))
}

/// Automigrate: one file per collection that differs between `before` and
/// `after` (created, updated or deleted), recorded as applied. Returns the
/// names written.
pub async fn automigrate(
    db: &Db,
    dir: &Path,
    before: &Snapshot,
    after: &Snapshot,
) -> Result<Vec<String>, MigrateError> {
    let mut written = Vec::new();
    let normalize = |name: &str| {
        if name.to_ascii_lowercase().ends_with("test") {
            format!("{name}_")
        } else {
            name.to_owned()
        }
    };
    let mut files: Vec<(String, String)> = Vec::new();
    for old in before.all() {
        if after.get(&old.id).is_none_or(|n| n.id != old.id) {
            files.push((
                format!("deleted_{}", normalize(old.name.as_str())),
                templates::delete(&old.to_json()),
            ));
        }
    }
    for new in after.all() {
        match before.get(&new.id).filter(|o| o.id == new.id) {
            None => files.push((
                format!("created_{}", normalize(new.name.as_str())),
                templates::create(&new.to_json()),
            )),
            Some(old) => {
                if let Some(text) = templates::update(&old.to_json(), &new.to_json()) {
                    files.push((format!("updated_{}", normalize(old.name.as_str())), text));
                }
            }
        }
    }
    for (stem, text) in files {
        let name = write_file(dir, &stem, &text)?;
        let row = name.clone();
        // Either engine: on PostgreSQL a change's file is recorded too, so
        // the next start does not take it for a pending migration.
        let applied = crate::clock::now();
        db.write_conn(move |conn| {
            conn.execute(
                "INSERT INTO _migrations (file, applied) VALUES (?1, ?2) \
                 ON CONFLICT (file) DO UPDATE SET applied = excluded.applied",
                &[SqlValue::Text(row.clone()), SqlValue::Text(applied.clone())],
            )?;
            Ok::<_, DbError>(())
        })
        .await?;
        written.push(name);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_names_are_snake_cased_and_path_parts_refused() {
        let cases = [
            ("add posts", Some("add_posts")),
            ("AddPosts", Some("add_posts")),
            ("seed-data_2", Some("seed_data_2")),
            ("../evil", None),
            ("a/b", None),
            ("a\\b", None),
            ("", None),
            ("..", None),
            ("name\0", None),
        ];
        for (input, expected) in cases {
            assert_eq!(file_stem(input).ok().as_deref(), expected, "{input:?}");
        }
    }
}
