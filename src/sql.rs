//! The superuser SQL console behind `POST /api/sql`: runs the SQL text a
//! superuser typed and shapes the answer as PocketBase does
//! (`{execTime, affectedRows, columns, rows}`, every value a string or null,
//! at most [`MAX_ROWS`] rows of the last statement).
//!
//! Like PocketBase, a query that starts with a write keyword (`INSERT`,
//! `CREATE`, `UPDATE`, …) runs on the writer inside one transaction (all its
//! statements commit or none does); anything else runs on a throwaway
//! read-only connection. Both run under the query time limit.
//!
//! Safer than PocketBase: an SQLite authorizer refuses, while the console's
//! statements are prepared, what would reach past the database or past the
//! transaction: `ATTACH`/`DETACH` (and with it `VACUUM INTO`, which attaches
//! its target file), `BEGIN`/`COMMIT`/`SAVEPOINT`, temporary schema objects
//! (they would live on in the shared writer connection), `load_extension`,
//! and every `PRAGMA` except reading a known setting or an introspection
//! pragma. Authorization, the HTTP shape and the envelope are `api::sql`'s.
//!
//! On PostgreSQL the console is read-only and speaks PostgreSQL's dialect
//! (`on_postgres`).

use crate::db::{Db, DbError};
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Batch, Connection, Statement};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod on_postgres;

/// Longest accepted query, in characters (PocketBase's limit).
pub const MAX_QUERY_CHARS: usize = 5000;
/// Most rows returned (PocketBase's cap; the rest are not read).
pub const MAX_ROWS: usize = 1000;
/// Most bytes of values returned. PocketBase has no such bound; 1000 rows of
/// large blobs would otherwise be held in memory several times over.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

/// Statement prefixes PocketBase treats as writes (case-insensitive).
const WRITE_PREFIXES: [&str; 8] = [
    "INSERT", "CREATE", "UPDATE", "DELETE", "DROP", "DETACH", "ALTER", "REPLACE",
];

/// Pragmas that only describe the schema or the database: any argument.
const INTROSPECTION_PRAGMAS: [&str; 17] = [
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "collation_list",
    "function_list",
    "module_list",
    "pragma_list",
    "compile_options",
    "database_list",
    "data_version",
];

/// Settings a pragma may read (without a value; with one it would set them).
const READABLE_PRAGMAS: [&str; 21] = [
    "application_id",
    "auto_vacuum",
    "automatic_index",
    "busy_timeout",
    "cache_size",
    "encoding",
    "foreign_keys",
    "freelist_count",
    "journal_mode",
    "journal_size_limit",
    "max_page_count",
    "mmap_size",
    "page_count",
    "page_size",
    "query_only",
    "recursive_triggers",
    "schema_version",
    "secure_delete",
    "synchronous",
    "temp_store",
    "user_version",
];

/// The answer, in PocketBase's shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqlResult {
    pub exec_time: u64,
    pub affected_rows: u64,
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// One result column: its name, declared type ("" for expressions) and
/// whether it may be null (always true: SQLite cannot say).
#[derive(Debug, Serialize)]
pub struct SqlColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub decl_type: String,
    pub nullable: bool,
}

/// Why a query was not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Blank after trimming.
    #[error("empty query")]
    Empty,
    /// Refused by the console's authorizer.
    #[error("{0}")]
    Refused(String),
    /// SQLite's own error, in the form PocketBase's driver words it.
    #[error("{0}")]
    Failed(String),
    /// The values passed [`MAX_RESULT_BYTES`].
    #[error("the result is larger than {MAX_RESULT_BYTES} bytes; select fewer rows or columns")]
    TooLarge,
    /// The database layer (time limit, writer gone, …).
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Runs `query` and returns PocketBase's answer shape.
pub async fn run(db: &Db, query: &str) -> Result<SqlResult, SqlError> {
    let query = query.trim().to_owned();
    if query.is_empty() {
        return Err(SqlError::Empty);
    }
    let started = Instant::now();
    let mut result = if let Some(console) = db.console_postgres() {
        on_postgres::run(console, query).await?
    } else if is_possible_write(&query) {
        let affected_rows = db.console_write(move |conn| write(conn, &query)).await?;
        SqlResult {
            exec_time: 0,
            affected_rows,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    } else {
        db.console_read(move |conn| read(conn, &query)).await?
    };
    result.exec_time = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(result)
}

/// PocketBase's loose check: a known write keyword at the start.
fn is_possible_write(query: &str) -> bool {
    let head: String = query
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_uppercase();
    !head.starts_with("SELECT") && WRITE_PREFIXES.iter().any(|p| head.starts_with(p))
}

/// Every statement in one `IMMEDIATE` transaction. The answer is what
/// PocketBase's driver reports, `sqlite3_changes()` after the batch: the
/// rows changed by the last statement that changed any (a later `UPDATE`
/// that matched nothing is not told apart from a `CREATE`).
fn write(conn: &mut Connection, query: &str) -> Result<u64, SqlError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
    let mut affected = 0;
    let outcome = {
        let guarded = Guarded::install(conn)?;
        let shared: &Connection = guarded.conn;
        let outcome = each_statement(shared, query, |stmt| {
            let before = shared.total_changes();
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            if shared.total_changes() != before {
                affected = shared.changes();
            }
            Ok(())
        });
        guarded.finish(outcome)
    };
    // Raw writes bypass `records`, which keeps the search indexes.
    let outcome = outcome.and_then(|()| {
        crate::search::catch_up::catch_up(conn, query).map_err(|e| SqlError::Failed(e.to_string()))
    });
    match outcome.and_then(|()| conn.execute_batch("COMMIT").map_err(failed)) {
        Ok(()) => Ok(affected),
        Err(e) => {
            // Already rolled back when SQLite aborted the transaction itself.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

/// The columns and first rows of the last statement (earlier ones run too).
fn read(conn: &mut Connection, query: &str) -> Result<SqlResult, SqlError> {
    let guarded = Guarded::install(conn)?;
    let mut last = None;
    let outcome = each_statement(guarded.conn, query, |stmt| {
        last = Some(collect(stmt));
        Ok(())
    });
    guarded.finish(outcome)?;
    last.unwrap_or_else(|| {
        Ok(SqlResult {
            exec_time: 0,
            affected_rows: 0,
            columns: Vec::new(),
            rows: Vec::new(),
        })
    })
}

/// Prepares and hands over each statement of `query` in turn.
fn each_statement(
    conn: &Connection,
    query: &str,
    mut f: impl FnMut(&mut Statement<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut batch = Batch::new(conn, query);
    while let Some(mut stmt) = batch.next()? {
        f(&mut stmt)?;
    }
    Ok(())
}

fn collect(stmt: &mut Statement<'_>) -> Result<SqlResult, SqlError> {
    let columns: Vec<SqlColumn> = stmt
        .columns()
        .map(|c| SqlColumn {
            name: c.name().to_owned(),
            decl_type: c.decl_type().unwrap_or_default().to_owned(),
            nullable: true,
        })
        .collect();
    let width = columns.len();
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut cursor = stmt.raw_query();
    while rows.len() < MAX_ROWS {
        let Some(row) = cursor.next().map_err(failed)? else {
            break;
        };
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let value = text(row.get_ref(i).map_err(failed)?);
            bytes += value.as_ref().map_or(4, String::len);
            if bytes > MAX_RESULT_BYTES {
                return Err(SqlError::TooLarge);
            }
            values.push(value);
        }
        rows.push(values);
    }
    Ok(SqlResult {
        exec_time: 0,
        affected_rows: 0,
        columns,
        rows,
    })
}

/// A value as PocketBase's driver scans it into a string: numbers in Go's
/// shortest form, text and blobs as (lossy) UTF-8 text, NULL as null.
fn text(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(go_float(f)),
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits that round
/// trip, in exponent form when the exponent is below -4 or at least 6
/// (Go's rule for the shortest form: 1e6 is "1e+06").
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the same shortest digits: "1.5e-7", "-1e21".
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Installs the console's authorizer on a connection and removes it again
/// (also on early return), remembering the first refusal.
struct Guarded<'c> {
    conn: &'c mut Connection,
    refused: Arc<Mutex<Option<String>>>,
}

impl<'c> Guarded<'c> {
    fn install(conn: &'c mut Connection) -> Result<Self, SqlError> {
        let refused = Arc::new(Mutex::new(None));
        let seen = refused.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            match refusal(&ctx.action) {
                None => Authorization::Allow,
                Some(reason) => {
                    if let Ok(mut first) = seen.lock() {
                        first.get_or_insert(reason);
                    }
                    Authorization::Deny
                }
            }
        }))
        .map_err(failed)?;
        Ok(Self { conn, refused })
    }

    /// Turns the statements' outcome into the console's error, preferring
    /// the authorizer's reason over SQLite's "not authorized".
    fn finish(self, outcome: rusqlite::Result<()>) -> Result<(), SqlError> {
        let refused = self.refused.lock().ok().and_then(|mut r| r.take());
        match (outcome, refused) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(reason)) => Err(SqlError::Refused(reason)),
            (Err(e), None) => Err(failed(e)),
        }
    }
}

impl Drop for Guarded<'_> {
    fn drop(&mut self) {
        let none: Option<fn(AuthContext<'_>) -> Authorization> = None;
        if let Err(e) = self.conn.authorizer(none) {
            tracing::error!(error = %e, "cannot remove the SQL console's authorizer");
        }
    }
}

/// Why the console refuses an action, or `None` to allow it.
fn refusal(action: &AuthAction<'_>) -> Option<String> {
    let reason = match action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            "ATTACH, DETACH and VACUUM INTO are not allowed: the console works on data.db only"
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed: each query already runs in its own transaction"
        }
        AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => {
            "TEMP tables, indexes, triggers and views are not allowed"
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            "load_extension() is not allowed"
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let reads = INTROSPECTION_PRAGMAS.contains(&name.as_str())
                || (pragma_value.is_none() && READABLE_PRAGMAS.contains(&name.as_str()));
            if reads {
                return None;
            }
            return Some(format!(
                "PRAGMA {pragma_name} is not allowed here: only reading a setting or the schema is"
            ));
        }
        _ => return None,
    };
    Some(reason.to_owned())
}

/// SQLite's error as PocketBase's driver words it: "SQL logic error: near
/// \"x\": syntax error (1)".
fn failed(e: rusqlite::Error) -> SqlError {
    let (code, message) = match e {
        rusqlite::Error::SqliteFailure(code, message) => (code, message),
        // A statement that did not prepare (a syntax error in the batch).
        rusqlite::Error::SqlInputError { error, msg, .. } => (error, Some(msg)),
        other => return SqlError::Failed(other.to_string()),
    };
    let primary = code.extended_code & 0xff;
    let kind = primary_error_text(primary);
    SqlError::Failed(match message {
        Some(m) if m != kind => format!("{kind}: {m} ({primary})"),
        _ => format!("{kind} ({primary})"),
    })
}

/// `sqlite3_errstr` for the primary result codes.
fn primary_error_text(code: i32) -> &'static str {
    match code {
        1 => "SQL logic error",
        2 => "internal logic error",
        3 => "access permission denied",
        4 => "query aborted",
        5 => "database is locked",
        6 => "database table is locked",
        7 => "out of memory",
        8 => "attempt to write a readonly database",
        9 => "interrupted",
        10 => "disk I/O error",
        11 => "database disk image is malformed",
        13 => "database or disk is full",
        14 => "unable to open database file",
        17 => "database schema has changed",
        18 => "string or blob too big",
        19 => "constraint failed",
        20 => "datatype mismatch",
        21 => "bad parameter or other API misuse",
        23 => "authorization denied",
        25 => "column index out of range",
        26 => "file is not a database",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_writes_them() {
        for (value, expected) in [
            (1.5, "1.5"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1234567.5, "1.2345675e+06"),
            (1e21, "1e+21"),
            (1.25e-5, "1.25e-05"),
            (0.0001, "0.0001"),
            (-2.5e-300, "-2.5e-300"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_float(value), expected, "{value:?}");
        }
    }

    #[test]
    fn only_pocketbases_write_keywords_send_a_query_to_the_writer() {
        for (query, write, why) in [
            ("select 1", false, "a select"),
            ("insert into t values (1)", true, "lower-case insert"),
            (
                "  CREATE TABLE t(x)",
                false,
                "leading space is trimmed by run(), not here",
            ),
            ("Replace into t values (1)", true, "replace"),
            (
                "with x as (select 1) delete from t",
                false,
                "a CTE goes to the read-only side",
            ),
            ("vacuum", false, "vacuum is not a write keyword"),
            ("pragma user_version = 3", false, "pragma"),
        ] {
            assert_eq!(is_possible_write(query), write, "{why}: {query:?}");
        }
    }
}
