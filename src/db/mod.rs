//! The database handle. One writer connection owned by a dedicated thread
//! (SQLite admits one writer; funnelling every write through one queue is also
//! where commits are grouped), and an r2d2 pool of read-only connections,
//! each used by its own reader thread. Both run off the async executor:
//! reads on the reader threads, writes on the writer thread. Only this
//! module opens connections.

mod conn;
mod console;
pub use console::PgConsole;
mod ident;
mod limit;
mod lock;
mod memo;
mod migrate;
pub mod named;
pub mod notify;
mod pool;
pub mod postgres;
mod readers;
mod stats;
mod writer;

pub use conn::{Conn, LockKey, PgConn, SqliteConn, dollar};
pub use ident::ident;
pub use lock::{DataDirLock, LOCK_WAIT};
pub use memo::CountMemo;
pub use migrate::{AUX_MIGRATIONS, MIGRATIONS, Migration, MigrationStatus};
pub use stats::{DbStats, DbStatsSnapshot};
pub use writer::{BeforeCommit, before_commit, in_group};

use crate::config::{DatabaseConfig, WalCheckpoints};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A database failure. Domain errors wrap this; the API maps it to 500.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(postgres::PgFailure),
    /// A query expected to answer one integer answered something else.
    #[error("expected one integer, got {0}")]
    NotAnInteger(String),
    /// Code not yet ported to [`Conn`] was asked to run on PostgreSQL.
    #[error("{0} does not run on PostgreSQL yet")]
    NotOnPostgres(&'static str),
    #[error("reader pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("the read did not finish (the reader threads stopped or the read panicked)")]
    ReaderGone,
    #[error("the writer thread has stopped")]
    WriterGone,
    /// The job's SQL ran past `database.query_timeout_ms` and was interrupted;
    /// whatever the job made of the interruption is discarded. The API answers 400.
    #[error("the query ran past the query timeout and was interrupted")]
    TimedOut,
    /// The requester went away (the request future was dropped) and the job
    /// was skipped or interrupted. Nobody receives this answer.
    #[error("the query was abandoned by its requester")]
    Cancelled,
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
    engine: Engine,
    stats: Arc<DbStats>,
    /// `database.query_timeout_ms`, for the SQL console's jobs.
    query_timeout: std::time::Duration,
    /// List totals memoised per reader connection and data version.
    counts: Arc<CountMemo>,
    /// `database.wal_checkpoints`: whether this handle may checkpoint.
    wal_checkpoints: WalCheckpoints,
}

/// The engine behind a [`Db`].
#[derive(Clone)]
enum Engine {
    Sqlite(Arc<Sqlite>),
    /// PostgreSQL (issue 21, in progress): only the code ported to
    /// [`Conn`] runs on it; the rest answers [`DbError::NotOnPostgres`].
    Postgres(postgres::PgDb),
}

/// The embedded database file and its threads.
struct Sqlite {
    readers: readers::Readers,
    writer: writer::Writer,
    path: PathBuf,
    /// Opens the throwaway read-only connections of the SQL console.
    console: Arc<pool::ReadOnlyManager>,
}

impl Sqlite {
    /// Runs `f` in an `IMMEDIATE` transaction of its own on the writer (an
    /// exclusive job) and commits it if `f` succeeds.
    async fn immediate<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.writer
            .run(move |c| {
                let tx = c
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| E::from(e.into()))?;
                let out = f(&mut SqliteConn(&tx))?;
                tx.commit().map_err(|e| E::from(e.into()))?;
                Ok(out)
            })
            .await
    }
}

impl Db {
    /// Opens (creating if needed) `data_dir/data.db`, applies pragmas and pending migrations,
    /// starts the writer thread and the reader pool.
    pub fn open(data_dir: &Path, options: &DatabaseConfig) -> Result<Self, DbError> {
        Self::open_file(data_dir, "data.db", options, MIGRATIONS)
    }

    /// Opens (creating if needed) `data_dir/auxiliary.db` (request logs) the same way, with its
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

    /// A handle on a PostgreSQL database whose system tables exist (see
    /// `crate::dbcopy`), with one connection thread per configured reader
    /// plus two for writes.
    pub fn open_postgres(url: &str, options: &DatabaseConfig) -> Result<Self, DbError> {
        let connections = options.readers() as usize + 2;
        let pg = postgres::PgDb::open(url, connections, options.query_timeout()).map_err(|e| {
            DbError::Postgres(postgres::PgFailure {
                state: None,
                message: e.to_string(),
            })
        })?;
        Ok(Self {
            engine: Engine::Postgres(pg),
            stats: Arc::default(),
            query_timeout: options.query_timeout(),
            counts: Arc::default(),
            wal_checkpoints: WalCheckpoints::Off,
        })
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
        for name in migrate::apply_pending(&mut conn, migrations)? {
            tracing::info!(migration = name, "applied migration");
        }
        let stats = Arc::new(DbStats::default());
        let writer = writer::Writer::start(
            conn,
            stats.clone(),
            options.query_timeout(),
            options.wal_checkpoints,
        );
        // One reader thread per connection: a checkout never waits, so the
        // per-checkout validity test would only cost a round trip.
        let pool = r2d2::Pool::builder()
            .max_size(options.readers())
            .min_idle(Some(1))
            .test_on_check_out(false)
            .build(pool::ReadOnlyManager::new(path.clone(), options))?;
        let console = Arc::new(pool::ReadOnlyManager::new(path.clone(), options));
        let readers = readers::Readers::start(pool, stats.clone(), options.query_timeout());
        Ok(Self {
            engine: Engine::Sqlite(Arc::new(Sqlite {
                readers,
                writer,
                path,
                console,
            })),
            stats,
            query_timeout: options.query_timeout(),
            counts: Arc::default(),
            wal_checkpoints: options.wal_checkpoints,
        })
    }

    /// The SQLite engine, or [`DbError::NotOnPostgres`] naming `what`.
    fn sqlite(&self, what: &'static str) -> Result<&Sqlite, DbError> {
        match &self.engine {
            Engine::Sqlite(s) => Ok(s),
            Engine::Postgres(_) => Err(DbError::NotOnPostgres(what)),
        }
    }

    /// `database.query_timeout_ms` (zero: no limit).
    pub fn query_timeout(&self) -> std::time::Duration {
        self.query_timeout
    }

    /// Which SQL this database speaks.
    pub fn dialect(&self) -> crate::rules::Dialect {
        match self.engine {
            Engine::Sqlite(_) => crate::rules::Dialect::Sqlite,
            Engine::Postgres(_) => crate::rules::Dialect::Postgres,
        }
    }

    /// PostgreSQL's connection counters (pool wait, retries, deadlocks);
    /// `None` on SQLite.
    pub fn postgres_stats(&self) -> Option<postgres::PgStatsSnapshot> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(pg) => Some(pg.stats()),
        }
    }

    /// PostgreSQL: has each connection checked before its next job (see
    /// `PgDb::suspect_connections`); nothing on SQLite.
    pub fn suspect_connections(&self) {
        if let Engine::Postgres(pg) = &self.engine {
            pg.suspect_connections();
        }
    }

    /// PostgreSQL: has each connection prepare its statements again, the
    /// schema having changed on another node; nothing on SQLite.
    pub fn forget_prepared(&self) {
        if let Engine::Postgres(pg) = &self.engine {
            pg.forget_prepared();
        }
    }

    /// PostgreSQL only: one constant statement, one round trip, rows as
    /// text (see `PgDb::simple_rows`); `None` on SQLite.
    pub async fn pg_simple_rows(
        &self,
        sql: &'static str,
    ) -> Option<Result<Vec<Vec<Option<String>>>, DbError>> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(pg) => Some(pg.simple_rows(sql).await),
        }
    }

    /// Runs `f` on a read connection of either engine (see [`Db::read`]
    /// for SQLite's time limit; on PostgreSQL one `REPEATABLE READ`
    /// read-only transaction).
    pub async fn read_conn<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(s) => s.readers.run(move |c| f(&mut SqliteConn(c))).await,
            Engine::Postgres(pg) => pg.read(f).await,
        }
    }

    /// Runs `f` in one write transaction on either engine: on SQLite an
    /// `IMMEDIATE` transaction on the single writer; on PostgreSQL a
    /// transaction of its own, run again after a deadlock or serialization
    /// failure (so `f` must be safe to repeat; invariants take
    /// [`Conn::lock`]s).
    pub async fn write_conn<T, E>(
        &self,
        f: impl FnMut(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(s) => s.immediate(f).await,
            Engine::Postgres(pg) => pg.write(f).await,
        }
    }

    /// The memo of list totals (see [`CountMemo`]), for reads to share.
    pub fn counts(&self) -> Arc<CountMemo> {
        self.counts.clone()
    }

    /// The live counters of this handle (for metrics).
    pub fn stats(&self) -> DbStatsSnapshot {
        self.stats.snapshot()
    }

    /// Sizes in bytes of the database file and its WAL (0 when absent).
    pub fn file_sizes(&self) -> (u64, u64) {
        let Ok(sqlite) = self.sqlite("file sizes") else {
            return (0, 0);
        };
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = sqlite.path.clone().into_os_string();
        wal.push("-wal");
        (size(&sqlite.path), size(Path::new(&wal)))
    }

    /// Who checkpoints this database (`database.wal_checkpoints`).
    pub fn wal_checkpoints(&self) -> WalCheckpoints {
        self.wal_checkpoints
    }

    /// Copies the WAL into the main file and truncates it (on shutdown, so
    /// the data dir is one self-contained file at rest). Does nothing when
    /// checkpoints are left to another program (`wal_checkpoints = "off"`).
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        if self.wal_checkpoints == WalCheckpoints::Off
            || self.dialect() != crate::rules::Dialect::Sqlite
        {
            return Ok(());
        }
        self.write(|conn| -> Result<(), DbError> {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// Writes a consistent copy of the database to `target` with
    /// `VACUUM INTO` on a read connection: one read transaction, so writers
    /// keep going while it runs and the copy is a single point in time.
    /// Not under the query time limit: copying a large database may take
    /// longer, and it is an administrator's action, not a client's query.
    pub async fn snapshot_to(&self, target: PathBuf) -> Result<(), DbError> {
        let target = target.to_string_lossy().into_owned();
        self.sqlite("a snapshot of the database file")?
            .readers
            .run_unlimited(move |conn| -> Result<(), DbError> {
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
        let conn = Self::open_read_only(&path)?;
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

    /// A read-only connection to an existing database file, outside any
    /// pool (for commands that read a data dir without serving it).
    pub fn open_read_only(path: &Path) -> Result<Connection, DbError> {
        Ok(Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?)
    }

    /// A private in-memory database with the system migrations applied:
    /// what a fresh data dir holds (the source of a fresh PostgreSQL
    /// database's system tables and collections).
    pub fn fresh_in_memory() -> Result<Connection, DbError> {
        let mut conn = Connection::open_in_memory()?;
        migrate::apply_pending(&mut conn, MIGRATIONS)?;
        Ok(conn)
    }

    /// Runs `f` on a pooled read-only connection, on a reader thread. Its
    /// SQL is interrupted past `database.query_timeout_ms` (the answer is then
    /// [`DbError::TimedOut`], whatever `f` returned) or when the caller stops
    /// waiting (this future is dropped); a job still queued then never runs.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        match self.sqlite("this read") {
            Ok(s) => s.readers.run(f).await,
            Err(e) => Err(E::from(e)),
        }
    }

    /// Runs `job` (on the calling thread, which holds a connection: an
    /// exclusive writer job) with its SQL interrupted past `deadline`; the
    /// answer is then [`DbError::TimedOut`]. JavaScript migrations run
    /// their whole transaction under one.
    pub fn with_deadline<T, E: From<DbError>>(
        deadline: std::time::Instant,
        job: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        limit::guarded(Some(deadline), None, job)
    }

    /// Runs `f` on the single writer connection. `f` should open its own
    /// `IMMEDIATE` transaction and keep it short. Not under the query time
    /// limit: exclusive jobs are schema changes (which may copy a large
    /// table), maintenance, checkpoints and other server-side work, which
    /// PocketBase does not limit either. A caller going away does not stop
    /// it: a write, once queued, stands.
    pub async fn write<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        match self.sqlite("this write") {
            Ok(s) => s.writer.run(f).await,
            Err(e) => Err(E::from(e)),
        }
    }

    /// Runs `f` inside the writer's shared transaction, under its own
    /// savepoint: concurrent calls are committed together with one sync.
    /// Returns only after the commit; `f` must not open a transaction itself.
    /// `f`'s SQL is interrupted past `database.query_timeout_ms` (these are
    /// the record writes, whose rule checks run user-supplied values): the
    /// answer is then [`DbError::TimedOut`] and its changes are rolled back.
    pub async fn write_grouped<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        match self.sqlite("this write") {
            Ok(s) => s.writer.run_grouped(f).await,
            Err(e) => Err(E::from(e)),
        }
    }

    /// Runs `f` as one held write on either engine: on SQLite inside the
    /// writer's shared transaction ([`Db::write_grouped`]); on PostgreSQL
    /// in one transaction on a connection thread, committed if `f`
    /// succeeds and never run again ([`postgres::PgDb::write_once`]). A
    /// write session serves its operations from inside `f`.
    pub async fn write_held<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(s) => s.writer.run_grouped(move |c| f(&mut SqliteConn(c))).await,
            Engine::Postgres(pg) => pg.write_once(f).await,
        }
    }

    /// Runs `f` as one exclusive, long write on either engine, committed
    /// if `f` succeeds and never run again (`f` may serve calls from
    /// another thread, which cannot be replayed): on SQLite an `IMMEDIATE`
    /// transaction of its own on the writer (an exclusive job, not under the
    /// query time limit); on PostgreSQL [`postgres::PgDb::write_once`].
    /// JavaScript migrations run each file in one.
    pub async fn write_exclusive<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(s) => s.immediate(f).await,
            Engine::Postgres(pg) => pg.write_once(f).await,
        }
    }

    /// Migration state, for `ferrobase migrate status`.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, DbError> {
        self.read_conn(migrate::status).await
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

    /// Writes `rows` rows through the writer (each its own commit).
    async fn write_rows(db: &Db, rows: usize) {
        db.write(|c| -> Result<(), DbError> {
            c.execute_batch("CREATE TABLE IF NOT EXISTS t(x BLOB)")?;
            Ok(())
        })
        .await
        .expect("create");
        for _ in 0..rows {
            db.write(|c| -> Result<(), DbError> {
                c.execute("INSERT INTO t VALUES (randomblob(4000))", [])?;
                Ok(())
            })
            .await
            .expect("insert");
        }
    }

    fn wal_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("data.db-wal")).map_or(0, |m| m.len())
    }

    #[tokio::test]
    async fn with_wal_checkpoints_off_ferrobase_never_checkpoints_and_sqlite_does_not_either() {
        let dir = tempfile::tempdir().expect("tmp");
        let options = DatabaseConfig {
            wal_checkpoints: WalCheckpoints::Off,
            ..DatabaseConfig::default()
        };
        let db = Db::open(dir.path(), &options).expect("open");
        // 1,500 pages of 4 KiB: past SQLite's automatic checkpoint at 1,000.
        write_rows(&db, 1_500).await;
        let auto: i64 = db
            .write(|c| -> Result<i64, DbError> {
                Ok(c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?)
            })
            .await
            .expect("pragma");
        let before = wal_len(dir.path());

        db.checkpoint().await.expect("checkpoint is a no-op");
        drop(db);
        // The writer thread's final checkpoint runs after the last handle goes.
        std::thread::sleep(std::time::Duration::from_millis(300));

        assert_eq!(auto, 0, "SQLite's automatic checkpoint must be off");
        assert!(
            before > 1_500 * 4096,
            "the WAL keeps every frame ({before} bytes): nothing checkpointed and restarted it"
        );
        assert_eq!(
            wal_len(dir.path()),
            before,
            "neither Db::checkpoint nor the writer's last act may checkpoint"
        );
    }

    #[tokio::test]
    async fn with_wal_checkpoints_auto_the_wal_is_truncated_at_checkpoint() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
        write_rows(&db, 50).await;

        db.checkpoint().await.expect("checkpoint");

        assert_eq!(wal_len(dir.path()), 0, "TRUNCATE leaves an empty WAL");
    }

    /// Counts to a billion: minutes of VM steps, all inside one statement.
    const RUNAWAY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                           WHERE x < 1000000000) SELECT count(*) FROM c";
    /// Far longer than any limit below: the old code (no limit) fails instead of hanging.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    fn open_limited(dir: &Path, readers: u32, timeout_ms: u64) -> Db {
        let options = DatabaseConfig {
            reader_pool_size: readers,
            query_timeout_ms: timeout_ms,
            ..DatabaseConfig::default()
        };
        Db::open(dir, &options).expect("open")
    }

    async fn select_one(db: &Db) -> i64 {
        let read = db.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get(0))
                .map_err(DbError::from)
        });
        tokio::time::timeout(PATIENCE, read)
            .await
            .expect("the reader is free again")
            .expect("a plain read succeeds")
    }

    #[tokio::test]
    async fn a_runaway_read_is_interrupted_at_the_query_timeout_and_the_reader_serves_the_next() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = open_limited(dir.path(), 1, 200);

        let started = std::time::Instant::now();
        let runaway = db.read(|c| {
            c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        });
        let outcome = tokio::time::timeout(PATIENCE, runaway)
            .await
            .expect("the runaway read must be stopped, not run for minutes");
        let took = started.elapsed();

        assert!(
            matches!(outcome, Err(DbError::TimedOut)),
            "a typed timeout, not a raw sqlite error: {outcome:?}"
        );
        assert!(
            took >= std::time::Duration::from_millis(200),
            "stopped early: {took:?}"
        );
        assert!(
            took < std::time::Duration::from_secs(3),
            "stopped late: {took:?}"
        );
        for _ in 0..3 {
            assert_eq!(
                select_one(&db).await,
                1,
                "the only reader serves the next reads"
            );
        }
    }

    #[tokio::test]
    async fn a_read_whose_requester_went_away_is_interrupted_and_frees_its_reader() {
        let dir = tempfile::tempdir().expect("tmp");
        // A long limit: only the requester going away can stop the read soon.
        let db = open_limited(dir.path(), 1, 600_000);
        let runaway = db.read(|c| {
            c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        });

        // The requester gives up (a client disconnect drops the request future).
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(100), runaway).await;
        assert!(gave_up.is_err(), "the runaway read cannot have finished");
        let started = std::time::Instant::now();
        assert_eq!(select_one(&db).await, 1);

        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(3),
            "the reader was held for {took:?}"
        );
    }

    #[tokio::test]
    async fn a_queued_read_whose_requester_went_away_never_runs() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = open_limited(dir.path(), 1, 300);
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Occupies the only reader until the limit stops it.
        let busy = tokio::spawn({
            let db = db.clone();
            async move {
                db.read(|c| {
                    c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))
                        .map_err(DbError::from)
                })
                .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        let queued = db.read({
            let ran = ran.clone();
            move |_| {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, DbError>(())
            }
        });
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), queued).await;
        assert!(
            gave_up.is_err(),
            "the queued read waits behind the busy one"
        );
        let busy = tokio::time::timeout(PATIENCE, busy)
            .await
            .expect("limit")
            .expect("join");
        assert!(matches!(busy, Err(DbError::TimedOut)), "{busy:?}");
        assert_eq!(select_one(&db).await, 1);

        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "a read nobody waits for is skipped"
        );
    }

    #[tokio::test]
    async fn a_read_that_swallows_the_interrupt_still_answers_timed_out() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = open_limited(dir.path(), 1, 200);
        // A job that turns any failure into a plausible answer ("no rows").
        let swallowed = db.read(|c| {
            Ok::<_, DbError>(
                c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))
                    .unwrap_or(0),
            )
        });

        let outcome = tokio::time::timeout(PATIENCE, swallowed)
            .await
            .expect("stopped");

        assert!(
            matches!(outcome, Err(DbError::TimedOut)),
            "an interrupted job's own answer is not trusted: {outcome:?}"
        );
    }

    #[tokio::test]
    async fn the_query_timeout_does_not_limit_exclusive_writes() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = open_limited(dir.path(), 1, 1);
        // Long enough to take several 1 ms limits, short enough for a unit test.
        let counted = db
            .write(|c| {
                c.query_row(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                     WHERE x < 200000) SELECT count(*) FROM c",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(DbError::from)
            })
            .await
            .expect("schema changes and maintenance may take their time");
        assert_eq!(counted, 200_000);
    }

    /// Runs three grouped writes queued in this order behind an exclusive
    /// job, so the writer takes them as one group: row 1, `middle`, row 3.
    async fn group_of_three(db: &Db, middle: &'static str) -> [Result<(), DbError>; 3] {
        let hold = db.write(|_| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok::<_, DbError>(())
        });
        let insert = |id: i64| {
            db.write_grouped(move |c| {
                c.execute("INSERT INTO t (id) VALUES (?1)", [id])?;
                Ok::<_, DbError>(())
            })
        };
        let slow = db.write_grouped(move |c| {
            c.execute_batch(middle)?;
            Ok::<_, DbError>(())
        });
        // join polls in order, so the jobs are queued in order.
        let all = futures_util::future::join4(hold, insert(1), slow, insert(3));
        let (held, one, two, three) = tokio::time::timeout(PATIENCE, all)
            .await
            .expect("the runaway grouped write must be stopped");
        held.expect("hold");
        [one, two, three]
    }

    async fn ids(db: &Db) -> Vec<i64> {
        db.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM t ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<Vec<i64>, _>>().map_err(DbError::from)
        })
        .await
        .expect("ids")
    }

    #[tokio::test]
    async fn a_runaway_grouped_write_times_out_and_its_group_reports_only_what_was_committed() {
        for (middle, first_stands, why) in [
            (
                "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL \
                 SELECT x + 1 FROM c WHERE x < 1000000000) SELECT x FROM c)",
                true,
                "a runaway read in the transaction (a rule check) rolls back only itself",
            ),
            (
                "INSERT INTO t (id) WITH RECURSIVE c(x) AS (SELECT 100 UNION ALL \
                 SELECT x + 1 FROM c WHERE x < 1000000000) SELECT x FROM c",
                false,
                "a runaway write makes SQLite roll back the whole group transaction",
            ),
        ] {
            let dir = tempfile::tempdir().expect("tmp");
            let db = open_limited(dir.path(), 1, 200);
            db.write(|c| {
                c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
                    .map_err(DbError::from)
            })
            .await
            .expect("table");

            let [one, two, three] = group_of_three(&db, middle).await;
            let stored = ids(&db).await;

            assert!(matches!(two, Err(DbError::TimedOut)), "{why}: {two:?}");
            assert_eq!(one.is_ok(), first_stands, "{why}: {one:?}");
            assert!(
                three.is_ok(),
                "{why}: a job after the runaway one runs: {three:?}"
            );
            assert_eq!(
                stored.contains(&1),
                one.is_ok(),
                "{why}: job 1 answered {one:?} but the table holds {stored:?}"
            );
            assert!(stored.contains(&3), "{why}: {stored:?}");
            assert!(
                stored.iter().all(|id| *id < 100),
                "{why}: nothing of the runaway: {stored:?}"
            );
            db.write_grouped(|c| {
                c.execute("INSERT INTO t (id) VALUES (4)", [])?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap_or_else(|e| panic!("{why}: the writer goes on: {e}"));
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
