//! `$app.db().newQuery(sql).bind({...}).all()/one()/execute()`: raw SQL
//! for hook code (PocketBase's dbx), with values always bound: `{:name}`
//! placeholders become numbered parameters (`?N`, on PostgreSQL `$N`:
//! [`crate::db::named`]), never text. The SQL is the configured database's
//! own dialect, as the SQL console's. Queries that only read run on a
//! reader (on PostgreSQL a `READ ONLY` transaction, so a write through
//! `all()` is refused as on SQLite); `execute()` runs on the writer, inside
//! the current write session when a model hook or `runInTransaction` has
//! one (on PostgreSQL under the query time limit). Rows come back in
//! SQLite's JSON shapes. Like PocketBase's, it is superuser power: no
//! rules, no validation, no realtime events.

use crate::db::named::{self, Named};
use crate::db::{Conn, DbError};
use crate::hooks::HookError;
use crate::records::{RecordError, session};
use crate::rules::{Dialect, SqlValue};
use base64::Engine;
use rusqlite::types::ValueRef;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Most rows `all()` answers.
pub const MAX_QUERY_ROWS: usize = 10_000;

#[derive(Deserialize)]
pub(super) struct QueryArgs {
    sql: String,
    #[serde(default)]
    params: Map<String, Value>,
    mode: String,
}

/// The hook's placeholders in `dialect`'s form (see [`named`]).
fn placeholders(sql: &str, dialect: Dialect) -> Result<Named, HookError> {
    named::to_positional(sql, dialect).map_err(|e| HookError::bad_request(e.to_string()))
}

/// The values for `names`, in order; a name the hook did not bind is NULL
/// (as an unbound SQLite parameter).
fn values(names: &[String], params: &Map<String, Value>) -> Vec<SqlValue> {
    names
        .iter()
        .map(|n| params.get(n).map_or(SqlValue::Null, named::bound))
        .collect()
}

fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

/// Runs one statement on `conn`: rows (read) or rows changed (execute).
fn run(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[SqlValue],
    mode: &str,
) -> Result<Value, RecordError> {
    // Inside a write session the index writes of the group so far are held
    // (`search::held`): a query may read the index, so they go in first.
    crate::search::held::apply(conn).map_err(opaque)?;
    let mut stmt = conn.prepare(sql).map_err(opaque)?;
    let bound = rusqlite::params_from_iter(params);
    if mode == "execute" {
        let changed = stmt.execute(bound).map_err(opaque)?;
        if changed > 0 {
            crate::search::catch_up::catch_up(conn, sql).map_err(|e| {
                tracing::warn!(target: "ferrobase::hooks", error = %e, "search catch-up failed");
                opaque(rusqlite::Error::InvalidQuery)
            })?;
        }
        return Ok(json!(changed));
    }
    if !stmt.readonly() {
        return Err(RecordError::Hook {
            status: 400,
            message: "A query that writes must use execute().".into(),
            data: json!({}),
        });
    }
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query(bound).map_err(opaque)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(opaque)? {
        if out.len() == MAX_QUERY_ROWS {
            break;
        }
        let mut item = Map::new();
        for (i, name) in names.iter().enumerate() {
            item.insert(name.clone(), to_json(row.get_ref(i).map_err(opaque)?));
        }
        out.push(Value::Object(item));
        if mode == "one" {
            break;
        }
    }
    Ok(Value::Array(out))
}

/// A statement ready to run: the hook's text and values by name, and the
/// mode; placeholders are converted once the engine is known.
pub(super) struct Prepared {
    sql: String,
    params: Map<String, Value>,
    mode: String,
}

/// Checks the statement's placeholders and keeps it for [`query`].
pub(super) fn prepare(args: QueryArgs) -> Result<Prepared, HookError> {
    placeholders(&args.sql, Dialect::Sqlite)?;
    Ok(Prepared {
        sql: args.sql,
        params: args.params,
        mode: args.mode,
    })
}

/// A failed `newQuery` or `recordQuery`: the client (of a custom route,
/// usually) sees only that it failed, as PocketBase answers, never the
/// database's text (table, column and constraint names); the log has the
/// detail.
fn opaque(e: impl std::fmt::Display) -> RecordError {
    tracing::warn!(target: "ferrobase::hooks", error = %e, "hook query failed");
    RecordError::Hook {
        status: 400,
        message: "The query failed.".into(),
        data: json!({}),
    }
}

fn writes_refused() -> RecordError {
    RecordError::Hook {
        status: 400,
        message: "A query that writes must use execute().".into(),
        data: json!({}),
    }
}

/// A PostgreSQL failure as the hook sees it: a write in a read-only
/// transaction is SQLite's "use execute()", the time limit stays itself,
/// anything else is opaque.
fn pg_failed(e: DbError) -> RecordError {
    match e {
        DbError::TimedOut => RecordError::Db(DbError::TimedOut),
        DbError::Postgres(f)
            if f.state == Some(::postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) =>
        {
            writes_refused()
        }
        other => opaque(other),
    }
}

/// A read-only statement with its values bound (`recordQuery`).
pub(super) struct ReadQuery {
    sql: String,
    params: Vec<SqlValue>,
}

/// Prepares `sql` (with `{:name}` placeholders) for [`ReadQuery::rows`].
pub(super) fn prepare_read(
    sql: &str,
    params: &Map<String, Value>,
    dialect: Dialect,
) -> Result<ReadQuery, HookError> {
    let Named { sql, names } = placeholders(sql, dialect)?;
    Ok(ReadQuery {
        params: values(&names, params),
        sql,
    })
}

impl ReadQuery {
    /// Runs the statement on a read connection of either engine (refusing
    /// one that writes) and maps each row's values, stopping one row past
    /// [`MAX_QUERY_ROWS`] so the caller can tell.
    pub(super) async fn rows(
        self,
        db: &crate::db::Db,
        map: impl Fn(Vec<SqlValue>) -> Value + Send + 'static,
    ) -> Result<Value, RecordError> {
        let ReadQuery { sql, params } = self;
        db.read_conn(move |conn: &mut dyn Conn| {
            if let Some(lite) = conn.sqlite()
                && !lite.prepare(&sql).map_err(opaque)?.readonly()
            {
                return Err(writes_refused());
            }
            let (_, rows) = conn
                .query_as_written(&sql, &params, MAX_QUERY_ROWS + 1)
                .map_err(pg_failed)?;
            Ok(Value::Array(rows.into_iter().map(&map).collect()))
        })
        .await
    }
}

/// Runs the query where it belongs (see the module doc).
pub(super) async fn query(db: &crate::db::Db, prepared: Prepared) -> Result<Value, RecordError> {
    let dialect = db.dialect();
    let Prepared { sql, params, mode } = prepared;
    let Named { sql, names } =
        named::to_positional(&sql, dialect).map_err(|e| RecordError::Hook {
            status: 400,
            message: e.to_string(),
            data: json!({}),
        })?;
    let params = values(&names, &params);
    if dialect == Dialect::Postgres {
        return on_postgres(db, sql, params, mode).await;
    }
    if mode == "execute" {
        if let Some(s) = session::current() {
            return s.run(move |tx, _| run(tx, &sql, &params, &mode)).await;
        }
        return db
            .write_grouped(move |tx| run(tx, &sql, &params, &mode))
            .await;
    }
    db.read(move |conn| run(conn, &sql, &params, &mode)).await
}

/// PostgreSQL: reads in the read-only transaction of a read, `execute()`
/// in the hook's write session or a write of its own, under the query
/// time limit.
async fn on_postgres(
    db: &crate::db::Db,
    sql: String,
    params: Vec<SqlValue>,
    mode: String,
) -> Result<Value, RecordError> {
    if mode != "execute" {
        let max = if mode == "one" { 1 } else { MAX_QUERY_ROWS };
        let (names, rows) = db
            .read_conn(move |conn: &mut dyn Conn| conn.query_as_written(&sql, &params, max))
            .await
            .map_err(pg_failed)?;
        return Ok(Value::Array(
            rows.into_iter().map(|r| row_json(&names, r)).collect(),
        ));
    }
    let timeout = db.query_timeout();
    let run = move |conn: &mut dyn Conn| -> Result<Value, DbError> {
        let before = limit_statements(conn, timeout)?;
        let changed = conn.execute_as_written(&sql, &params)?;
        if let Some(before) = before {
            conn.execute(
                "SELECT set_config('statement_timeout', ?1, true)",
                &[before],
            )?;
        }
        Ok(json!(changed))
    };
    if let Some(s) = session::current() {
        return s
            .run_conn(move |conn, _| run(conn).map_err(pg_failed))
            .await;
    }
    db.write_conn(run).await.map_err(pg_failed)
}

/// Sets the transaction's `statement_timeout` to the query time limit and
/// answers the setting it replaced (to put back inside a write session).
fn limit_statements(
    conn: &mut dyn Conn,
    timeout: std::time::Duration,
) -> Result<Option<SqlValue>, DbError> {
    if timeout.is_zero() {
        return Ok(None);
    }
    let ms = timeout.as_millis().max(1).to_string();
    let row = conn.first_row(
        "SELECT current_setting('statement_timeout'), set_config('statement_timeout', ?1, true)",
        &[SqlValue::Text(ms)],
    )?;
    Ok(row.and_then(|r| r.into_iter().next()))
}

/// One row as `{column: value}`, values as SQLite's would show.
fn row_json(names: &[String], row: Vec<SqlValue>) -> Value {
    let mut item = Map::new();
    for (name, value) in names.iter().zip(row) {
        item.insert(name.clone(), cell_json(value));
    }
    Value::Object(item)
}

/// A value as JSON: numbers as numbers, text as text, NULL as null.
pub(super) fn cell_json(value: SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => json!(i),
        SqlValue::Real(f) => json!(f),
        SqlValue::Text(t) => json!(t),
    }
}
