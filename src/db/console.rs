//! Connections for the superuser SQL console (`POST /api/sql`). The console
//! runs SQL text a person typed, so it gets its own ways in, both under the
//! query time limit and both handing the job a `&mut Connection` (the job
//! installs an authorizer, which rusqlite only allows on a mutable handle):
//!
//! - reads run on a *throwaway* read-only connection opened for the job, so
//!   nothing the query leaves behind (a temp table, a pragma it managed to
//!   change) reaches the pooled readers that serve the API;
//! - writes run as an exclusive job on the one writer, so they queue behind
//!   record writes and are committed with the same durability.
//!
//! On PostgreSQL the console only reads: [`Db::console_postgres`] hands the
//! job a `READ ONLY` transaction on a connection of its own
//! (`PgDb::console`).
//!
//! What the SQL may do is the job's business (`crate::sql`); this module only
//! supplies the connection and the deadline.

use super::{Db, DbError, limit};
use rusqlite::Connection;

/// The SQL console's way into PostgreSQL (see [`Db::console_postgres`]).
pub struct PgConsole(super::postgres::PgDb);

impl PgConsole {
    /// Runs `f` in a `READ ONLY` transaction on a fresh connection, under
    /// the query time limit; rolled back and closed afterwards.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&mut ::postgres::Transaction<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.0.console(f).await
    }
}

impl Db {
    /// The console's PostgreSQL connections; `None` on SQLite.
    pub fn console_postgres(&self) -> Option<PgConsole> {
        match &self.engine {
            super::Engine::Sqlite(_) => None,
            super::Engine::Postgres(pg) => Some(PgConsole(pg.clone())),
        }
    }

    /// Runs `f` on a fresh read-only connection on the blocking pool; its SQL
    /// is interrupted past `database.query_timeout_ms` (the answer is then
    /// [`DbError::TimedOut`]). The connection is closed afterwards.
    pub async fn console_read<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let manager = match self.sqlite("the SQL console") {
            Ok(s) => s.console.clone(),
            Err(e) => return Err(E::from(e)),
        };
        let timeout = self.query_timeout;
        let job = tokio::task::spawn_blocking(move || {
            let mut conn = r2d2::ManageConnection::connect(&*manager).map_err(E::from)?;
            limit::guarded(limit::deadline_in(timeout), None, || f(&mut conn))
        });
        job.await.map_err(|_| E::from(DbError::ReaderGone))?
    }

    /// Runs `f` as an exclusive job on the writer (it manages its own
    /// transaction), with its SQL interrupted past `database.query_timeout_ms`.
    /// Like every write, it stands once queued, even if the caller leaves.
    pub async fn console_write<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let timeout = self.query_timeout;
        let sqlite = match self.sqlite("the SQL console") {
            Ok(s) => s,
            Err(e) => return Err(E::from(e)),
        };
        sqlite
            .writer
            .run(move |conn| {
                let out = limit::guarded(limit::deadline_in(timeout), None, || f(&mut *conn));
                // The writer is shared: never hand it on inside a transaction
                // the job left open (its own rollback may have been stopped).
                if !conn.is_autocommit()
                    && let Err(e) = conn.execute_batch("ROLLBACK")
                {
                    tracing::error!(error = %e, "cannot roll back a SQL console job");
                }
                out
            })
            .await
    }
}
