//! Embedded migrations for the system tables. Pending files are applied in
//! order inside one transaction and recorded in `_migrations`; a failure rolls
//! everything back, and applying twice is a no-op.

use super::{Conn, DbError};
use crate::rules::SqlValue;
use rusqlite::{Connection, TransactionBehavior};

/// One embedded migration: (name, SQL).
pub type Migration = (&'static str, &'static str);

/// Every migration of data.db, in order.
pub const MIGRATIONS: &[Migration] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    (
        "0002_system_collections",
        include_str!("../../migrations/0002_system_collections.sql"),
    ),
];

/// Every migration of auxiliary.db (request logs), in order.
pub const AUX_MIGRATIONS: &[Migration] = &[(
    "0003_aux_logs",
    include_str!("../../migrations/0003_aux_logs.sql"),
)];

/// One migration and whether it has been applied.
#[derive(Debug, Clone)]
pub struct MigrationStatus {
    pub name: &'static str,
    pub applied: Option<String>,
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS _migrations (
    file TEXT PRIMARY KEY NOT NULL,
    applied TEXT NOT NULL
)";

/// Applies the migrations `_migrations` does not record, in one
/// transaction; the names applied, in order.
pub(super) fn apply_pending(
    conn: &mut Connection,
    migrations: &'static [Migration],
) -> Result<Vec<&'static str>, DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(CREATE_LEDGER)?;
    let mut applied = Vec::new();
    for (name, sql) in migrations {
        let done: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM _migrations WHERE file = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|source| DbError::Migration { name, source })?;
        tx.execute(
            "INSERT INTO _migrations (file, applied) VALUES (?1, ?2)",
            [*name, crate::clock::now().as_str()],
        )?;
        applied.push(*name);
    }
    tx.commit()?;
    Ok(applied)
}

/// Whether each embedded migration is recorded in `_migrations`, on either
/// engine (a PostgreSQL database initialised by `crate::dbcopy` carries the
/// rows of the fresh data dir it was copied from).
pub(super) fn status(conn: &mut dyn Conn) -> Result<Vec<MigrationStatus>, DbError> {
    let mut out = Vec::new();
    for (name, _) in MIGRATIONS {
        let row = conn.first_row(
            "SELECT applied FROM _migrations WHERE file = ?1",
            &[SqlValue::Text((*name).to_owned())],
        )?;
        let applied = match row.and_then(|r| r.into_iter().next()) {
            Some(SqlValue::Text(at)) => Some(at),
            _ => None,
        };
        out.push(MigrationStatus { name, applied });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applying_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().expect("open");
        let first = apply_pending(&mut conn, MIGRATIONS).expect("first run");
        let second = apply_pending(&mut conn, MIGRATIONS).expect("second run");
        let names: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(first, names, "every migration, in order");
        assert!(second.is_empty(), "nothing left to apply");
    }

    #[test]
    fn a_failed_migration_leaves_the_database_as_it_was() {
        let mut conn = Connection::open_in_memory().expect("open");
        // Block 0001 by pre-creating one of its tables with a clashing definition.
        conn.execute_batch("CREATE TABLE _collections (x INTEGER);")
            .expect("clash");
        let err = apply_pending(&mut conn, MIGRATIONS).expect_err("must fail");
        assert!(matches!(err, DbError::Migration { .. }), "{err}");
        let ledger: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = '_migrations'",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(ledger, 0, "the ledger table creation was rolled back too");
    }
}
