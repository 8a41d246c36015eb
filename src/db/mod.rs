//! The database handle. One writer connection owned by a dedicated thread
//! (SQLite admits one writer; funnelling every write through one queue is also
//! where commits can later be grouped), and an r2d2 pool of read-only
//! connections. Both run off the async executor: reads on tokio's blocking
//! pool, writes on the writer thread. Only this module opens connections.

mod ident;
mod migrate;
mod pool;
mod writer;

pub use ident::ident;
pub use migrate::{MIGRATIONS, MigrationStatus};

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
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("the writer thread has stopped")]
    WriterGone,
    #[error("migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Shared handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    readers: r2d2::Pool<pool::ReadOnlyManager>,
    writer: Arc<writer::Writer>,
}

impl Db {
    /// Opens (creating if needed) `data_dir/data.db`, applies pragmas and pending migrations,
    /// starts the writer thread and the reader pool.
    pub fn open(data_dir: &Path, options: &DatabaseConfig) -> Result<Self, DbError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DbError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("data.db");
        let mut conn = pool::open_writer(&path, options)?;
        migrate::apply_pending(&mut conn)?;
        let writer = Arc::new(writer::Writer::start(conn));
        let readers = r2d2::Pool::builder()
            .max_size(options.reader_pool_size)
            .min_idle(Some(1))
            .build(pool::ReadOnlyManager::new(path, options))?;
        Ok(Self { readers, writer })
    }

    /// Runs `f` on a pooled read-only connection, on the blocking pool.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(DbError::from)?;
            f(&conn)
        })
        .await
        .map_err(DbError::from)?
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

    /// Migration state, for `ferrobase migrate status`.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, DbError> {
        self.read(migrate::status).await
    }
}
