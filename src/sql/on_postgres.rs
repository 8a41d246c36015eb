//! The SQL console on PostgreSQL: read-only, in PostgreSQL's dialect. One
//! `SELECT`, `WITH`, `VALUES` or `TABLE` query runs in a `READ ONLY`
//! transaction on a connection of its own (`db::PgConsole`), under the
//! query time limit; the answer has SQLite's console shape, values as
//! PostgreSQL writes them as text and column types as PostgreSQL names them.
//!
//! Refused before anything runs: writes (the console's write keywords, as
//! on SQLite, which runs them), any other statement (transaction control,
//! `SET`, `COPY`, `DO` …), and functions that reach past the database or
//! the transaction (server files, large objects, other sessions, session
//! settings and locks, SQL run from a string). More than one statement is
//! PostgreSQL's own error (each query is prepared alone).

use super::{MAX_RESULT_BYTES, MAX_ROWS, SqlColumn, SqlError, SqlResult, is_possible_write};
use crate::db::postgres::PgFailure;
use crate::db::{DbError, PgConsole};
use postgres::{SimpleQueryMessage, Transaction};

/// The statements the console runs: queries that only read.
const READING_KEYWORDS: [&str; 4] = ["SELECT", "WITH", "VALUES", "TABLE"];

/// Functions (exact names) the console refuses.
const DENIED_FUNCTIONS: [&str; 22] = [
    "set_config",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_stat_file",
    "pg_notify",
    "pg_log_backend_memory_contexts",
    "pg_import_system_collations",
    "lo_import",
    "lo_export",
    "lo_get",
    "lo_put",
    "lo_open",
    "lo_from_bytea",
    "loread",
    "ts_stat",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "dblink",
];

/// Prefixes of function names the console refuses.
const DENIED_PREFIXES: [&str; 10] = [
    "pg_read_",
    "pg_ls_",
    "pg_advisory",
    "pg_try_advisory",
    "query_to_xml",
    "dblink_",
    "pg_create_",
    "pg_drop_replication",
    "pg_logical_",
    "pg_replication_",
];

/// The cursor the rows are fetched through.
const CURSOR: &str = "fb_console";

/// Runs `query` (trimmed, not empty, within the length limit).
pub(super) async fn run(console: PgConsole, query: String) -> Result<SqlResult, SqlError> {
    refusal(&query).map_or(Ok(()), |why| Err(SqlError::Refused(why)))?;
    console.read(move |tx| read(tx, &query)).await
}

/// Why the console refuses `query` on PostgreSQL, if it does.
fn refusal(query: &str) -> Option<String> {
    if is_possible_write(query) {
        return Some(
            "the SQL console is read-only on PostgreSQL: use psql (or your provider's console) \
             to change data or the schema"
                .into(),
        );
    }
    let head: String = query
        .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    if !READING_KEYWORDS.contains(&head.as_str()) {
        return Some(
            "on PostgreSQL the SQL console runs one SELECT, WITH, VALUES or TABLE query".into(),
        );
    }
    let lower = query.to_ascii_lowercase();
    if lower.contains("u&") {
        return Some("Unicode-escaped names and strings (U&) are not allowed here".into());
    }
    // Names quoted or not, in any case: `"PG_READ_FILE"` calls nothing, but
    // refusing it too keeps the check simple and safe.
    let denied = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .find(|word| {
            DENIED_FUNCTIONS.contains(word) || DENIED_PREFIXES.iter().any(|p| word.starts_with(p))
        })?;
    Some(format!(
        "{denied} is not allowed here: it reaches past the database or the query's transaction"
    ))
}

/// Prepares the query alone (so it is one statement), opens a cursor on it
/// and fetches the first [`MAX_ROWS`] rows as text.
fn read(tx: &mut Transaction<'_>, query: &str) -> Result<SqlResult, SqlError> {
    let statement = tx.prepare(query).map_err(failed)?;
    let columns: Vec<SqlColumn> = statement
        .columns()
        .iter()
        .map(|c| SqlColumn {
            name: c.name().to_owned(),
            decl_type: c.type_().name().to_owned(),
            nullable: true,
        })
        .collect();
    tx.execute(
        &format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR {query}"),
        &[],
    )
    .map_err(failed)?;
    let fetched = tx
        .simple_query(&format!("FETCH FORWARD {MAX_ROWS} FROM {CURSOR}"))
        .map_err(failed)?;
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    for message in fetched {
        let SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let mut values = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let value = row.get(i).map(str::to_owned);
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

/// PostgreSQL's error in its own words (a statement timeout as SQLite's
/// interrupted query).
fn failed(e: postgres::Error) -> SqlError {
    let failure = PgFailure::from(e);
    if failure.is_timeout() {
        return SqlError::Db(DbError::TimedOut);
    }
    SqlError::Failed(failure.message)
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn only_reading_queries_without_reaching_functions_pass() {
        for (query, refused, why) in [
            ("select 1", false, "a select"),
            ("  (select 1)", false, "a parenthesised select"),
            ("WITH x AS (SELECT 1) SELECT * FROM x", false, "a CTE"),
            ("values (1), (2)", false, "values"),
            ("table users", false, "table"),
            ("insert into t values (1)", true, "a write keyword"),
            ("begin", true, "transaction control"),
            ("commit; delete from users", true, "transaction control"),
            ("set statement_timeout = 0", true, "a setting"),
            ("copy users to program 'x'", true, "copy"),
            ("do $$ begin end $$", true, "an anonymous block"),
            ("select pg_read_file('/etc/passwd')", true, "server files"),
            (
                "select \"PG_READ_FILE\"('/etc/passwd')",
                true,
                "quoted, upper case",
            ),
            ("select pg_catalog.pg_ls_dir('.')", true, "schema-qualified"),
            (
                "select set_config('search_path', 'x', false)",
                true,
                "session state",
            ),
            ("select pg_advisory_lock(1)", true, "a session lock"),
            (
                "select query_to_xml('select 1', true, true, '')",
                true,
                "SQL from a string",
            ),
            ("select pg_terminate_backend(1)", true, "another session"),
            ("select U&\"\\0070g_sleep\"(1)", true, "unicode escapes"),
            (
                "-- a comment\nselect 1",
                true,
                "only a query may come first",
            ),
        ] {
            assert_eq!(refusal(query).is_some(), refused, "{why}: {query:?}");
        }
    }
}
