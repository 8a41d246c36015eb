//! Opening connections: the writer (read-write, creates the file, sets WAL)
//! and the read-only connections of the r2d2 pool, each with our pragmas,
//! SQL functions and the query-limit progress handler.

use super::DbError;
use crate::config::{DatabaseConfig, WalCheckpoints};
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::time::Duration;

/// Statements each connection keeps prepared.
const STATEMENT_CACHE_CAPACITY: usize = 256;

pub(super) fn open_writer(
    path: &std::path::Path,
    options: &DatabaseConfig,
) -> Result<Connection, DbError> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    apply_common(&mut conn, options)?;
    conn.pragma_update(None, "synchronous", options.synchronous.to_uppercase())?;
    // Keep the WAL from growing without bound between checkpoints.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(conn)
}

fn apply_common(conn: &mut Connection, options: &DatabaseConfig) -> Result<(), DbError> {
    conn.busy_timeout(Duration::from_millis(options.busy_timeout_ms))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -i64::from(options.cache_size_kib))?;
    conn.pragma_update(
        None,
        "mmap_size",
        i64::try_from(options.mmap_size_bytes).unwrap_or(i64::MAX),
    )?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if options.wal_checkpoints == WalCheckpoints::Off {
        // Another program (Litestream) checkpoints; SQLite's automatic
        // checkpoint after a commit would race it, and so would the one
        // SQLite runs when the last connection closes.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    // The query planner stability guarantee: a plan never depends on bound
    // values. Without it SQLite marks a statement with `LIMIT ?` or
    // `OFFSET ?` (every list page) to be re-prepared when its bindings
    // change, and rusqlite clears the bindings of each statement it caches,
    // so every cached list statement was parsed and planned again on every
    // use (6 % of the list_rule benchmark's CPU).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    register_functions(conn)?;
    // Inert until a job sets a watch on the thread using the connection.
    super::limit::install(conn)?;
    if options.log_statements {
        log_statements(conn)?;
    }
    Ok(())
}

/// SQL functions the rules compiler emits that SQLite lacks: `fb_geo_distance`
/// (the bundled SQLite is built without its optional math functions).
fn register_functions(conn: &Connection) -> Result<(), DbError> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    let number = |v: ValueRef<'_>| match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        _ => None,
    };
    conn.create_scalar_function(
        crate::rules::GEO_DISTANCE_SQL_FUNCTION,
        4,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let args: Option<Vec<f64>> = (0..4).map(|i| number(ctx.get_raw(i))).collect();
            Ok(args.map(|a| crate::rules::haversine_km(a[0], a[1], a[2], a[3])))
        },
    )?;
    Ok(())
}

/// r2d2 manager for read-only connections to one database file.
pub(super) struct ReadOnlyManager {
    path: PathBuf,
    options: DatabaseConfig,
}

impl ReadOnlyManager {
    pub(super) fn new(path: PathBuf, options: &DatabaseConfig) -> Self {
        Self {
            path,
            options: options.clone(),
        }
    }
}

impl r2d2::ManageConnection for ReadOnlyManager {
    type Connection = Connection;
    type Error = DbError;

    fn connect(&self) -> Result<Connection, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut conn = Connection::open_with_flags(&self.path, flags)?;
        apply_common(&mut conn, &self.options)?;
        // Tells this connection apart in the memo of list totals (memo.rs).
        let serial = super::memo::next_serial();
        conn.create_scalar_function(
            super::memo::SERIAL_FUNCTION,
            0,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            move |_| Ok(serial),
        )?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), DbError> {
        conn.execute_batch("").map_err(DbError::from)
    }

    fn has_broken(&self, _conn: &mut Connection) -> bool {
        false
    }
}

/// `--dev`: logs each statement's SQL text (placeholders, not the bound
/// values, which can be password hashes or tokens) and its run time.
fn log_statements(conn: &mut Connection) -> Result<(), DbError> {
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_PROFILE,
        Some(|event: TraceEvent<'_>| {
            if let TraceEvent::Profile(stmt, took) = event {
                tracing::info!(target: "ferrobase::sql", took_ms = took.as_secs_f64() * 1000.0, "{}", stmt.sql());
            }
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    #[test]
    fn a_cached_page_statement_is_not_prepared_again_for_new_bindings() {
        let dir = tempfile::tempdir().expect("dir");
        let conn =
            open_writer(&dir.path().join("data.db"), &DatabaseConfig::default()).expect("open");
        conn.execute_batch(
            "CREATE TABLE t(x INTEGER, owner TEXT); CREATE INDEX t_owner ON t(owner);
             INSERT INTO t VALUES (1, 'a'), (2, 'a'), (3, 'b');",
        )
        .expect("setup");
        let sql = "SELECT x FROM t WHERE owner = ? ORDER BY x LIMIT ? OFFSET ?";
        for (owner, limit, offset) in [("a", 1, 0), ("a", 1, 1), ("b", 50, 0), ("a", 2, 0)] {
            let mut stmt = conn.prepare_cached(sql).expect("prepare");
            let rows: Vec<i64> = stmt
                .query_map(rusqlite::params![owner, limit, offset], |r| r.get(0))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert!(!rows.is_empty(), "{owner} {limit} {offset}");
            assert_eq!(
                stmt.get_status(StatementStatus::RePrepare),
                0,
                "re-prepared for {owner} {limit} {offset}"
            );
        }
    }
}
