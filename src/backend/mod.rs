//! Which database a command runs on, opened one way for every command: the
//! embedded SQLite in the data dir, or PostgreSQL when `database.url` is set
//! (issue 21, in progress). An empty PostgreSQL database is given the system
//! tables and system collections on first use, as a first start creates
//! `data.db`; commands that only read refuse an empty one instead. The
//! commands that cannot run on PostgreSQL yet are named in [`Unported`],
//! and `db check`'s PostgreSQL side lives in [`check`].

pub mod check;
mod unported;

pub use unported::Unported;

use crate::config::Config;
use crate::db::{Db, DbError};
use std::path::PathBuf;

/// PostgreSQL read connections of a command (`serve` opens `database.readers()`).
const COMMAND_READERS: u32 = 1;

/// What opening does with a database that has no Ferrobase tables yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEmpty {
    /// Create them (the system tables and collections of a fresh data dir).
    Initialise,
    /// Refuse: the command only reads (`typegen`, `db check`).
    Refuse,
}

/// Why the configured database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Connect(#[from] crate::db::postgres::PgConnectError),
    #[error("initialising the PostgreSQL database: {0}")]
    Initialise(crate::dbcopy::CopyError),
    #[error("no Ferrobase database in {0} (data.db is missing): pass the data dir with --dir")]
    NoDataDir(PathBuf),
    #[error(
        "the PostgreSQL database {0} has no Ferrobase tables yet: `ferrobase superuser upsert` \
         creates them, `ferrobase db copy` fills them from a data dir"
    )]
    EmptyPostgres(String),
    #[error("{0}")]
    NotOnPostgres(Unported),
    #[error("opening the database stopped: {0}")]
    Stopped(String),
}

/// Whether `config` points at PostgreSQL.
pub fn is_postgres(config: &Config) -> bool {
    config.database.url.postgres().is_some()
}

/// Refuses `command` when the configured database is PostgreSQL.
pub fn refuse_on_postgres(config: &Config, command: Unported) -> Result<(), OpenError> {
    if is_postgres(config) {
        return Err(OpenError::NotOnPostgres(command));
    }
    Ok(())
}

/// Opens the configured database: `data_dir/data.db` (created and migrated
/// as on every start, unless `on_empty` refuses a missing one), or the
/// PostgreSQL database of `database.url`.
pub async fn open(config: &Config, on_empty: OnEmpty) -> Result<Db, OpenError> {
    open_with_readers(config, on_empty, COMMAND_READERS).await
}

/// [`open`] for `serve`: an empty database is initialised, and PostgreSQL
/// gets the server's pool of `database.reader_pool_size` readers.
pub async fn open_for_server(config: &Config) -> Result<Db, OpenError> {
    open_with_readers(config, OnEmpty::Initialise, config.database.readers()).await
}

async fn open_with_readers(
    config: &Config,
    on_empty: OnEmpty,
    readers: u32,
) -> Result<Db, OpenError> {
    let Some(url) = config.database.url.postgres() else {
        let dir = config.storage.data_dir.clone();
        if on_empty == OnEmpty::Refuse && !dir.join("data.db").is_file() {
            return Err(OpenError::NoDataDir(dir));
        }
        let options = config.database.clone();
        return blocking(move || Db::open(&dir, &options).map_err(OpenError::from)).await;
    };
    if on_empty == OnEmpty::Initialise {
        let target = url.to_owned();
        // Under the bootstrap lock: of two commands racing, one creates them.
        let created = blocking(move || {
            crate::dbcopy::initialise(&target).map_err(|e| match e {
                crate::dbcopy::CopyError::Connect(e) => OpenError::Connect(e),
                other => OpenError::Initialise(other),
            })
        })
        .await?;
        if created {
            tracing::info!(
                database = %config.database.url.redacted(),
                "gave the empty PostgreSQL database Ferrobase's system tables and collections"
            );
        }
    }
    // A command runs one job at a time: one reader (plus the two write
    // connections) rather than a server's pool.
    let options = crate::config::DatabaseConfig {
        reader_pool_size: readers,
        ..config.database.clone()
    };
    let target = url.to_owned();
    let db = blocking(move || Ok(Db::open_postgres(&target, &options)?)).await?;
    if on_empty == OnEmpty::Refuse && !has_system_tables(&db).await? {
        return Err(OpenError::EmptyPostgres(config.database.url.redacted()));
    }
    Ok(db)
}

/// Whether `_collections` exists (on the search path).
pub async fn has_system_tables(db: &Db) -> Result<bool, DbError> {
    let found = db
        .read_conn(|c| c.integer("SELECT count(to_regclass('_collections'))", &[]))
        .await?;
    Ok(found > 0)
}

/// Runs `f` on the blocking pool: opening connects and may wait on locks.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpenError> + Send + 'static,
) -> Result<T, OpenError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OpenError::Stopped(e.to_string()))?
}
