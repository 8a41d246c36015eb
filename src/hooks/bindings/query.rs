//! `$app.db().newQuery(sql).bind({...}).all()/one()/execute()`: raw SQL
//! for hook code (PocketBase's dbx), with values always bound: `{:name}`
//! placeholders become SQLite named parameters, never text. Queries that
//! only read run on a reader; `execute()` runs on the writer (inside the
//! current write session when a model hook or `runInTransaction` has one).
//! Like PocketBase's, it is superuser power: no rules, no validation, no
//! realtime events. SQLite only: on PostgreSQL both answer a 400 naming
//! what is refused ([`refuse_on_postgres`]), since a hook's SQL text is
//! written in SQLite's dialect.

use crate::hooks::HookError;
use crate::records::{RecordError, session};
use base64::Engine;
use rusqlite::types::{Value as Sql, ValueRef};
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

/// `{:name}` → `:name` (names of letters, digits and `_` only).
fn placeholders(sql: &str) -> Result<String, HookError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(open) = rest.find("{:") {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| HookError::bad_request("An unclosed {: placeholder."))?
            + open;
        let name = &rest[open + 2..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(HookError::bad_request(format!(
                "Invalid placeholder {{:{name}}}."
            )));
        }
        out.push(':');
        out.push_str(name);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn to_sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(Sql::Integer)
            .unwrap_or_else(|| Sql::Real(n.as_f64().unwrap_or_default())),
        Value::String(s) => Sql::Text(s.clone()),
        other => Sql::Text(other.to_string()),
    }
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
    params: &[(String, Sql)],
    mode: &str,
) -> Result<Value, RecordError> {
    // Inside a write session the index writes of the group so far are held
    // (`search::held`): a query may read the index, so they go in first.
    crate::search::held::apply(conn).map_err(opaque)?;
    let mut stmt = conn.prepare(sql).map_err(opaque)?;
    let mut bound: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::with_capacity(params.len());
    for (name, value) in params {
        if stmt.parameter_index(name).map_err(opaque)?.is_some() {
            bound.push((name.as_str(), value));
        }
    }
    if mode == "execute" {
        let changed = stmt.execute(bound.as_slice()).map_err(opaque)?;
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
    let mut rows = stmt.query(bound.as_slice()).map_err(opaque)?;
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

/// A statement ready to run: SQLite text, named values, and the mode.
pub(super) struct Prepared {
    sql: String,
    params: Vec<(String, Sql)>,
    mode: String,
}

/// Prepares the statement's text and parameters for [`query`].
pub(super) fn prepare(args: QueryArgs) -> Result<Prepared, HookError> {
    let sql = placeholders(&args.sql)?;
    let params = args
        .params
        .iter()
        .map(|(k, v)| (format!(":{k}"), to_sql(v)))
        .collect();
    Ok(Prepared {
        sql,
        params,
        mode: args.mode,
    })
}

/// A failed `newQuery` or `recordQuery`: the client (of a custom route,
/// usually) sees only that it failed, as PocketBase answers, never SQLite's
/// text (table, column and constraint names); the log has the detail.
fn opaque(e: rusqlite::Error) -> RecordError {
    tracing::warn!(target: "ferrobase::hooks", error = %e, "hook query failed");
    RecordError::Hook {
        status: 400,
        message: "The query failed.".into(),
        data: json!({}),
    }
}

/// A read-only statement with its values bound by name (`recordQuery`).
pub(super) struct ReadQuery {
    sql: String,
    params: Vec<(String, Sql)>,
}

/// Prepares `sql` (with `{:name}` placeholders) for [`ReadQuery::rows`].
pub(super) fn prepare_read(sql: &str, params: &Map<String, Value>) -> Result<ReadQuery, HookError> {
    Ok(ReadQuery {
        sql: placeholders(sql)?,
        params: params
            .iter()
            .map(|(k, v)| (format!(":{k}"), to_sql(v)))
            .collect(),
    })
}

impl ReadQuery {
    /// Runs the statement (refusing one that writes) and maps each row,
    /// stopping one row past [`MAX_QUERY_ROWS`] so the caller can tell.
    pub(super) fn rows(
        &self,
        conn: &rusqlite::Connection,
        mut map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<Value>,
    ) -> Result<Value, RecordError> {
        let mut stmt = conn.prepare(&self.sql).map_err(opaque)?;
        if !stmt.readonly() {
            return Err(RecordError::Hook {
                status: 400,
                message: "A query that writes must use execute().".into(),
                data: json!({}),
            });
        }
        let mut bound: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::with_capacity(self.params.len());
        for (name, value) in &self.params {
            if stmt.parameter_index(name).map_err(opaque)?.is_some() {
                bound.push((name.as_str(), value));
            }
        }
        let mut rows = stmt.query(bound.as_slice()).map_err(opaque)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(opaque)? {
            out.push(map(row).map_err(opaque)?);
            if out.len() > MAX_QUERY_ROWS {
                break;
            }
        }
        Ok(Value::Array(out))
    }
}

/// Raw SQL from a hook (`what`) is SQLite's: refused on PostgreSQL.
pub(super) fn refuse_on_postgres(
    db: &crate::db::Db,
    what: &'static str,
) -> Result<(), RecordError> {
    match db.dialect() {
        crate::rules::Dialect::Sqlite => Ok(()),
        crate::rules::Dialect::Postgres => Err(crate::db::DbError::NotOnPostgres(what).into()),
    }
}

/// Runs the query where it belongs (see the module doc).
pub(super) async fn query(db: &crate::db::Db, prepared: Prepared) -> Result<Value, RecordError> {
    refuse_on_postgres(db, "$app.db().newQuery() (raw SQL from hooks)")?;
    let Prepared { sql, params, mode } = prepared;
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

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_become_named_parameters_and_odd_names_are_refused() {
        for (sql, expected, why) in [
            ("SELECT {:a}", Some("SELECT :a"), "one"),
            (
                "x = {:a_1} AND y = {:b}",
                Some("x = :a_1 AND y = :b"),
                "two",
            ),
            ("SELECT '{:a' ", None, "unclosed"),
            ("SELECT {:a;drop}", None, "not a name"),
            ("SELECT {:}", None, "empty"),
        ] {
            assert_eq!(placeholders(sql).ok().as_deref(), expected, "{why}: {sql}");
        }
    }
}
