//! The database handle. One writer connection owned by a dedicated thread
//! (SQLite admits one writer; funnelling every write through one queue is also
//! where commits are grouped), and an r2d2 pool of read-only connections,
//! each used by its own reader thread. Both run off the async executor:
//! reads on the reader threads, writes on the writer thread. Only this
//! module opens connections.

mod ident;
mod lock;
mod migrate;
mod pool;
mod readers;
mod stats;
mod writer;

pub use ident::ident;
pub use lock::{DataDirLock, LOCK_WAIT};
pub use migrate::{AUX_MIGRATIONS, MIGRATIONS, Migration, MigrationStatus};
pub use stats::{DbStats, DbStatsSnapshot};

use crate::config::DatabaseConfig;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A database failure. Domain errors wrap this; the API maps it to 500.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("reader pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("the read did not finish (the reader threads stopped or the read panicked)")]
    ReaderGone,
    #[error("the writer thread has stopped")]
    WriterGone,
    #[error("commit failed: {0}")]
    CommitFailed(String),
    #[error("migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "another ferrobase server is already running on the data dir {path} \
         (it holds {path}/.lock); stop it first or use another --dir"
    )]
    Locked { path: PathBuf },
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Shared handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    readers: Arc<readers::Readers>,
    writer: Arc<writer::Writer>,
    stats: Arc<DbStats>,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) `data_dir/data.db`, applies pragmas and pending migrations,
    /// starts the writer thread and the reader pool.
    pub fn open(data_dir: &Path, options: &DatabaseConfig) -> Result<Self, DbError> {
        Self::open_file(data_dir, "data.db", options, MIGRATIONS)
    }

    /// Opens `data_dir/auxiliary.db` (request logs) the same way, with its
    /// own migrations. `synchronous=NORMAL` there: a power cut may lose the
    /// last logs, never data, and logging stays cheap.
    pub fn open_auxiliary(data_dir: &Path, options: &DatabaseConfig) -> Result<Self, DbError> {
        let options = DatabaseConfig {
            synchronous: "NORMAL".into(),
            reader_pool_size: options.readers().min(2),
            // Append-mostly and rarely read: a small cache, no memory map
            // (mapped pages of a growing log file would only inflate RSS).
            cache_size_kib: options.cache_size_kib.min(2048),
            mmap_size_bytes: 0,
            ..options.clone()
        };
        Self::open_file(data_dir, "auxiliary.db", &options, AUX_MIGRATIONS)
    }

    fn open_file(
        data_dir: &Path,
        file: &str,
        options: &DatabaseConfig,
        migrations: &'static [Migration],
    ) -> Result<Self, DbError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DbError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(file);
        let mut conn = pool::open_writer(&path, options)?;
        migrate::apply_pending(&mut conn, migrations)?;
        let stats = Arc::new(DbStats::default());
        let writer = Arc::new(writer::Writer::start(conn, stats.clone()));
        // One reader thread per connection: a checkout never waits, so the
        // per-checkout validity test would only cost a round trip.
        let pool = r2d2::Pool::builder()
            .max_size(options.readers())
            .min_idle(Some(1))
            .test_on_check_out(false)
            .build(pool::ReadOnlyManager::new(path.clone(), options))?;
        let readers = Arc::new(readers::Readers::start(pool, stats.clone()));
        Ok(Self {
            readers,
            writer,
            stats,
            path,
        })
    }

    /// The live counters of this handle (for metrics).
    pub fn stats(&self) -> DbStatsSnapshot {
        self.stats.snapshot()
    }

    /// Sizes in bytes of the database file and its WAL (0 when absent).
    pub fn file_sizes(&self) -> (u64, u64) {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        (size(&self.path), size(Path::new(&wal)))
    }

    /// Copies the WAL into the main file and truncates it (on shutdown, so
    /// the data dir is one self-contained file at rest).
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        self.write(|conn| -> Result<(), DbError> {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// Writes a consistent copy of the database to `target` with
    /// `VACUUM INTO` on a read connection: one read transaction, so writers
    /// keep going while it runs and the copy is a single point in time.
    pub async fn snapshot_to(&self, target: PathBuf) -> Result<(), DbError> {
        let target = target.to_string_lossy().into_owned();
        self.read(move |conn| -> Result<(), DbError> {
            conn.execute("VACUUM INTO ?1", [target])?;
            Ok(())
        })
        .await
    }

    /// Runs `PRAGMA integrity_check` on `data_dir/data.db` through a
    /// read-only connection; returns SQLite's findings (`["ok"]` when sound).
    pub fn integrity_check(data_dir: &Path) -> Result<Vec<String>, DbError> {
        Self::check_file(&data_dir.join("data.db"))
    }

    /// [`Db::integrity_check`] on any database file; also fails unless it
    /// holds Ferrobase's system tables (`_collections`, `_migrations`).
    pub fn check_file(path: &Path) -> Result<Vec<String>, DbError> {
        let path = path.to_path_buf();
        if !path.exists() {
            return Err(DbError::DataDir {
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut findings: Vec<String> = rows.collect::<Result<_, _>>()?;
        let system_tables: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('_collections', '_migrations')",
            [],
            |r| r.get(0),
        )?;
        if system_tables != 2 {
            findings.retain(|f| f != "ok");
            findings
                .push("not a Ferrobase database: _collections or _migrations is missing".into());
        }
        Ok(findings)
    }

    /// Runs `f` on a pooled read-only connection, on a reader thread.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.readers.run(f).await
    }

    /// Runs `f` on the single writer connection. `f` should open its own
    /// `IMMEDIATE` transaction and keep it short.
    pub async fn write<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.writer.run(f).await
    }

    /// Runs `f` inside the writer's shared transaction, under its own
    /// savepoint: concurrent calls are committed together with one sync.
    /// Returns only after the commit; `f` must not open a transaction itself.
    pub async fn write_grouped<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.writer.run_grouped(f).await
    }

    /// Migration state, for `ferrobase migrate status`.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, DbError> {
        self.read(migrate::status).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_read_fails_alone_and_the_readers_go_on() {
        let dir = tempfile::tempdir().expect("tmp");
        let options = DatabaseConfig {
            reader_pool_size: 1,
            ..DatabaseConfig::default()
        };
        let db = Db::open(dir.path(), &options).expect("open");
        let failed = db
            .read(|_| -> Result<(), DbError> { panic!("a bug in a read job") })
            .await;
        assert!(matches!(failed, Err(DbError::ReaderGone)), "{failed:?}");
        // The only reader survived its job's panic and serves the next reads.
        for _ in 0..3 {
            let one: i64 = db
                .read(|c| {
                    c.query_row("SELECT 1", [], |r| r.get(0))
                        .map_err(DbError::from)
                })
                .await
                .expect("read after the panic");
            assert_eq!(one, 1);
        }
    }

    #[tokio::test]
    async fn grouped_writes_commit_together_and_a_failing_one_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
                .map_err(DbError::from)
        })
        .await
        .expect("table");

        let mut tasks = Vec::new();
        for i in 0..40_i64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write_grouped(move |c| {
                    c.execute("INSERT INTO t (id, v) VALUES (?1, 'x')", [i])?;
                    if i == 7 {
                        // A second insert of the same id fails; only this job's rows go.
                        c.execute("INSERT INTO t (id, v) VALUES (?1, 'dup')", [i])?;
                    }
                    Ok::<_, DbError>(i)
                })
                .await
            }));
        }
        let mut failed = Vec::new();
        for task in tasks {
            if let Err(e) = task.await.expect("join") {
                failed.push(e.to_string());
            }
        }
        let (count, has_seven): (i64, bool) = db
            .read(|c| {
                c.query_row(
                    "SELECT count(*), EXISTS(SELECT 1 FROM t WHERE id = 7) FROM t",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(DbError::from)
            })
            .await
            .expect("count");

        assert_eq!(
            failed.len(),
            1,
            "exactly the failing job reports an error: {failed:?}"
        );
        assert_eq!(count, 39, "every other job's row was committed");
        assert!(
            !has_seven,
            "the failing job's first insert was rolled back with it"
        );
        let stats = db.stats();
        assert_eq!(
            stats.writer_queue_depth, 0,
            "every queued job was counted out"
        );
        assert_eq!(stats.grouped_jobs, 40, "{stats:?}");
        assert_eq!(stats.exclusive_jobs, 1, "{stats:?}");
    }
}
