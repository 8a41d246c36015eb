//! Reading the logs: a page with `filter`/`sort` in the rule language
//! (on `id`, `created`, `level`, `message` and `data.*`), one entry, hourly
//! counts, truncation, and the retention cleanup. The same statements run
//! on SQLite (`auxiliary.db`) and on PostgreSQL.

use crate::db::{Conn, Db, DbError, ident};
use crate::rules::{self, ColumnRef, Dialect, Path, RuleError, Scope, SqlValue, ValueType};
use serde_json::{Value, json};

/// Why a logs query failed.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for LogsError {
    fn from(e: rusqlite::Error) -> Self {
        LogsError::Db(DbError::Sqlite(e))
    }
}

const COLUMNS: [&str; 4] = ["id", "created", "level", "message"];

/// The log table's filterable columns, in the SQL of `dialect`.
struct LogsScope(Dialect);

impl Scope for LogsScope {
    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let unresolved = |reason: &str| RuleError::Unresolved {
            name: path.segments.join("."),
            reason: reason.into(),
        };
        match path.segments.as_slice() {
            [name] if COLUMNS.contains(&name.as_str()) => {
                let ty = if name == "level" {
                    ValueType::Number
                } else {
                    ValueType::Text
                };
                Ok(ColumnRef::single(format!("_logs.{}", ident(name))).with_type(ty))
            }
            [data, rest @ ..] if data == "data" && !rest.is_empty() => {
                if rest.iter().any(|seg| {
                    seg.is_empty() || !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }) {
                    return Err(unresolved("bad JSON path segment"));
                }
                // The path is validated above (letters, digits, `_` only).
                let sql = match self.0 {
                    Dialect::Sqlite => {
                        format!("json_extract(_logs.data, '$.{}')", rest.join("."))
                    }
                    Dialect::Postgres => {
                        let steps: String = rest.iter().map(|seg| format!(" -> '{seg}'")).collect();
                        format!("fb_sqlite(_logs.data{steps})")
                    }
                };
                Ok(ColumnRef::single(sql).with_type(ValueType::Json))
            }
            _ => Err(unresolved("not filterable on logs")),
        }
    }

    fn request_value(&self, _path: &Path) -> Result<Option<SqlValue>, RuleError> {
        Ok(None)
    }

    fn dialect(&self) -> Dialect {
        self.0
    }
}

fn where_clause(filter: &str, dialect: Dialect) -> Result<(String, Vec<SqlValue>), LogsError> {
    if filter.trim().is_empty() {
        return Ok(("TRUE".into(), Vec::new()));
    }
    let fragment = rules::compile(&rules::parse_filter(filter)?, &LogsScope(dialect))?;
    let sql = match dialect {
        Dialect::Sqlite => fragment.sql,
        Dialect::Postgres => rules::postgres::numbered(&fragment),
    };
    Ok((sql, fragment.params))
}

/// The insertion order column: SQLite's rowid, PostgreSQL's identity.
fn rowid(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "_logs.rowid",
        Dialect::Postgres => "_logs._fb_rowid",
    }
}

const SELECT_ENTRY: &str = "SELECT id, level, message, data, created FROM _logs";

/// One entry from a row of [`SELECT_ENTRY`].
fn entry(row: Vec<SqlValue>) -> Value {
    let mut cells = row.into_iter();
    let mut next = || cells.next().unwrap_or(SqlValue::Null);
    let text = |v: SqlValue| match v {
        SqlValue::Text(t) => t,
        _ => String::new(),
    };
    let id = text(next());
    let level = match next() {
        SqlValue::Integer(i) => i,
        _ => 0,
    };
    let message = text(next());
    let data = serde_json::from_str::<Value>(&text(next())).unwrap_or_else(|_| json!({}));
    let created = text(next());
    json!({
        "id": id,
        "created": created,
        "data": data,
        "message": message,
        "level": level,
    })
}

/// One page of entries and the total (unless skipped).
pub async fn list(
    aux: &Db,
    filter: &str,
    sort: &str,
    page: i64,
    per_page: i64,
    skip_total: bool,
) -> Result<(Vec<Value>, Option<i64>), LogsError> {
    let dialect = aux.dialect();
    let (where_sql, params) = where_clause(filter, dialect)?;
    let order = rules::compile_sort(&rules::parse_sort(sort)?, &LogsScope(dialect))?;
    let order = if order.is_empty() {
        format!("{} DESC", rowid(dialect))
    } else {
        format!("{order}, {} DESC", rowid(dialect))
    };
    let offset = (page - 1).saturating_mul(per_page);
    aux.read_conn(move |conn: &mut dyn Conn| -> Result<_, LogsError> {
        let sql = format!(
            "{SELECT_ENTRY} WHERE {where_sql} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
            params.len() + 1,
            params.len() + 2
        );
        let mut bound = params.clone();
        bound.push(SqlValue::Integer(per_page));
        bound.push(SqlValue::Integer(offset));
        let items = conn.rows(&sql, &bound)?.into_iter().map(entry).collect();
        let total = if skip_total {
            None
        } else {
            Some(conn.integer(
                &format!("SELECT COUNT(*) FROM _logs WHERE {where_sql}"),
                &params,
            )?)
        };
        Ok((items, total))
    })
    .await
}

/// One entry by id.
pub async fn view(aux: &Db, id: String) -> Result<Option<Value>, LogsError> {
    aux.read_conn(move |conn: &mut dyn Conn| -> Result<_, LogsError> {
        let row = conn.first_row(
            &format!("{SELECT_ENTRY} WHERE id = ?1"),
            &[SqlValue::Text(id)],
        )?;
        Ok(row.map(entry))
    })
    .await
}

/// Entries per hour matching `filter`: `[{"date", "total"}]`, oldest first.
/// `created` is always `YYYY-MM-DD HH:MM:SS.mmmZ`, so its first 13
/// characters are the hour on either engine.
pub async fn stats(aux: &Db, filter: &str) -> Result<Vec<Value>, LogsError> {
    let (where_sql, params) = where_clause(filter, aux.dialect())?;
    aux.read_conn(move |conn: &mut dyn Conn| -> Result<_, LogsError> {
        let sql = format!(
            "SELECT substr(created, 1, 13) AS hour, COUNT(*) FROM _logs \
             WHERE {where_sql} GROUP BY hour ORDER BY hour"
        );
        Ok(conn
            .rows(&sql, &params)?
            .into_iter()
            .map(|row| {
                let mut cells = row.into_iter();
                let hour = match cells.next() {
                    Some(SqlValue::Text(h)) => h,
                    _ => String::new(),
                };
                let total = match cells.next() {
                    Some(SqlValue::Integer(n)) => n,
                    _ => 0,
                };
                json!({"date": format!("{hour}:00:00.000Z"), "total": total})
            })
            .collect())
    })
    .await
}

/// Deletes every entry.
pub async fn delete_all(aux: &Db) -> Result<(), LogsError> {
    aux.write_conn(|conn: &mut dyn Conn| -> Result<(), LogsError> {
        conn.execute("DELETE FROM _logs", &[])?;
        Ok(())
    })
    .await
}

/// Deletes entries older than `max_days` (all of them when 0). Returns how many.
/// A retention reaching past the calendar's range (`logs.maxDays` may be up
/// to 2^53 - 1) keeps everything instead of overflowing.
pub async fn cleanup(aux: &Db, max_days: u64) -> Result<usize, LogsError> {
    let cutoff = i64::try_from(max_days)
        .ok()
        .and_then(chrono::Duration::try_days)
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age));
    let Some(cutoff) = cutoff else {
        return Ok(0);
    };
    let cutoff = crate::clock::format(cutoff);
    aux.write_conn(move |conn: &mut dyn Conn| -> Result<usize, LogsError> {
        let deleted = conn.execute(
            "DELETE FROM _logs WHERE created < ?1",
            &[SqlValue::Text(cutoff.clone())],
        )?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_are_validated_and_columns_quoted() {
        let compile = |f: &str| {
            rules::parse_filter(f)
                .map_err(LogsError::from)
                .and_then(|ast| Ok(rules::compile(&ast, &LogsScope(Dialect::Sqlite))?))
        };
        let ok = compile("data.status >= 400 && level = 8").expect("compiles");
        assert!(
            ok.sql.contains("json_extract(_logs.data, '$.status')"),
            "{}",
            ok.sql
        );
        assert!(compile("secret = 1").is_err());
        assert!(compile("data = 1").is_err());
    }
}
