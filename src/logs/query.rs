//! Reading the logs: a page with `filter`/`sort` in the rule language
//! (on `id`, `created`, `level`, `message` and `data.*`), one entry, hourly
//! counts, truncation, and the retention cleanup.

use crate::db::{Db, DbError, ident};
use crate::rules::{self, ColumnRef, Path, RuleError, Scope, SqlValue};
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Row};
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

struct LogsScope;

impl Scope for LogsScope {
    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let unresolved = |reason: &str| RuleError::Unresolved {
            name: path.segments.join("."),
            reason: reason.into(),
        };
        match path.segments.as_slice() {
            [name] if COLUMNS.contains(&name.as_str()) => {
                Ok(ColumnRef::single(format!("_logs.{}", ident(name))))
            }
            [data, rest @ ..] if data == "data" && !rest.is_empty() => {
                let mut json_path = String::from("$");
                for seg in rest {
                    if seg.is_empty() || !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(unresolved("bad JSON path segment"));
                    }
                    json_path.push('.');
                    json_path.push_str(seg);
                }
                // The path is validated above (letters, digits, `_` only).
                Ok(ColumnRef::single(format!(
                    "json_extract(_logs.data, '{json_path}')"
                )))
            }
            _ => Err(unresolved("not filterable on logs")),
        }
    }

    fn request_value(&self, _path: &Path) -> Result<Option<SqlValue>, RuleError> {
        Ok(None)
    }
}

fn where_clause(filter: &str) -> Result<(String, Vec<Sql>), LogsError> {
    if filter.trim().is_empty() {
        return Ok(("1".into(), Vec::new()));
    }
    let fragment = rules::compile(&rules::parse_filter(filter)?, &LogsScope)?;
    Ok((fragment.sql, crate::schema::bind_values(fragment.params)))
}

fn entry(row: &Row<'_>) -> rusqlite::Result<Value> {
    let data: String = row.get(3)?;
    Ok(json!({
        "id": row.get::<_, String>(0)?,
        "created": row.get::<_, String>(4)?,
        "data": serde_json::from_str::<Value>(&data).unwrap_or_else(|_| json!({})),
        "message": row.get::<_, String>(2)?,
        "level": row.get::<_, i64>(1)?,
    }))
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
    let (where_sql, params) = where_clause(filter)?;
    let order = rules::compile_sort(&rules::parse_sort(sort)?, &LogsScope)?;
    let order = if order.is_empty() {
        "_logs.rowid DESC".to_owned()
    } else {
        format!("{order}, _logs.rowid DESC")
    };
    let offset = (page - 1).saturating_mul(per_page);
    aux.read(move |conn| -> Result<_, LogsError> {
        let sql = format!(
            "SELECT id, level, message, data, created FROM _logs WHERE {where_sql} \
             ORDER BY {order} LIMIT ?{} OFFSET ?{}",
            params.len() + 1,
            params.len() + 2
        );
        let mut bound = params.clone();
        bound.push(per_page.into());
        bound.push(offset.into());
        let mut stmt = conn.prepare(&sql)?;
        let items = stmt
            .query_map(rusqlite::params_from_iter(bound), entry)?
            .collect::<Result<Vec<_>, _>>()?;
        let total = if skip_total {
            None
        } else {
            Some(conn.query_row(
                &format!("SELECT COUNT(*) FROM _logs WHERE {where_sql}"),
                rusqlite::params_from_iter(params),
                |r| r.get(0),
            )?)
        };
        Ok((items, total))
    })
    .await
}

/// One entry by id.
pub async fn view(aux: &Db, id: String) -> Result<Option<Value>, LogsError> {
    aux.read(move |conn| -> Result<_, LogsError> {
        Ok(conn
            .query_row(
                "SELECT id, level, message, data, created FROM _logs WHERE id = ?1",
                [id],
                entry,
            )
            .optional()?)
    })
    .await
}

/// Entries per hour matching `filter`: `[{"date", "total"}]`, oldest first.
pub async fn stats(aux: &Db, filter: &str) -> Result<Vec<Value>, LogsError> {
    let (where_sql, params) = where_clause(filter)?;
    aux.read(move |conn| -> Result<_, LogsError> {
        let sql = format!(
            "SELECT strftime('%Y-%m-%d %H:00:00', created) AS hour, COUNT(*) FROM _logs \
             WHERE {where_sql} GROUP BY hour ORDER BY hour"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
            Ok(json!({
                "date": format!("{}.000Z", r.get::<_, String>(0)?),
                "total": r.get::<_, i64>(1)?,
            }))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
}

/// Deletes every entry.
pub async fn delete_all(aux: &Db) -> Result<(), LogsError> {
    aux.write(|conn| -> Result<(), LogsError> {
        conn.execute("DELETE FROM _logs", [])?;
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
    aux.write(move |conn| -> Result<usize, LogsError> {
        Ok(conn.execute("DELETE FROM _logs WHERE created < ?1", [cutoff])?)
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
                .and_then(|ast| Ok(rules::compile(&ast, &LogsScope)?))
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
