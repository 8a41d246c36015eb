//! What a realtime subscriber may see of a changed record: the topic's rule
//! (the list rule for collection topics, the view rule for single-record
//! topics) and the subscription's own `filter`, checked on a reader
//! connection after the change committed, against the row the write left
//! (or, for a delete, the row as it was just before). The row is what the
//! subscriber is sent, so the check and the content always agree, even when
//! the record changed again (or went away) before the fan-out got to it.

use super::RecordError;
use super::access::{self, Access, Caller};
use super::list::guard_request_macros;
use super::read::{load, serialize};
use super::value::to_sql;
use crate::db::{Db, ident};
use crate::realtime::Change;
use crate::rules::{self, Dialect, SqlFragment, SqlValue};
use crate::schema::{Collection, FieldScope, Snapshot, Trust};
use rusqlite::types::Value as Cell;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The changed record serialised for `caller`, or `None` when the rule or
/// the filter hides it from them (or the record is gone by now).
pub async fn visible(
    db: &Db,
    snapshot: Arc<Snapshot>,
    change: Arc<Change>,
    caller: Caller,
    by_id: bool,
    filter: Option<String>,
) -> Result<Option<Value>, RecordError> {
    let Some(collection) = snapshot.get(&change.collection_id) else {
        return Ok(None);
    };
    let rule = if by_id {
        &collection.rules.view
    } else {
        &collection.rules.list
    };
    let dialect = db.dialect();
    let access = match access::resolve_in(&snapshot, rule, &caller, &collection, dialect) {
        Ok(access) => access,
        Err(RecordError::SuperusersOnly) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut conditions: Vec<SqlFragment> = Vec::new();
    if let Access::Filter(fragment) = access {
        conditions.push(fragment);
    }
    if let Some(filter) = filter.filter(|f| !f.trim().is_empty()) {
        if guard_request_macros(&caller, &filter).is_err() {
            return Ok(None);
        }
        let aliases = std::cell::Cell::new(0);
        let scope = FieldScope::new(
            &snapshot,
            &collection,
            Trust::of_query_by(caller.superuser),
            &caller,
            &aliases,
        )
        .in_dialect(dialect);
        conditions.push(rules::compile(&rules::parse_filter(&filter)?, &scope)?);
        conditions.extend(scope.take_join_guards());
    }
    let row = match &change.row {
        Some(row) => row.clone(),
        None => {
            let (collection, id) = (collection.clone(), change.record_id.clone());
            let current = match dialect {
                Dialect::Postgres => {
                    super::on_postgres::load(db, collection, id, Access::All).await?
                }
                Dialect::Sqlite => {
                    db.read(move |conn| load(conn, &collection, &id, &Access::All))
                        .await?
                }
            };
            let Some(row) = current else {
                return Ok(None);
            };
            row
        }
    };
    if !conditions.is_empty() && dialect == Dialect::Postgres {
        let sql = row_check_sql(&collection, &conditions, dialect);
        let mut params: Vec<SqlValue> = collection
            .fields
            .iter()
            .map(|f| {
                // The row came from the table, so PostgreSQL holds each value.
                match to_sql(f, row.get(f.name.as_str()).unwrap_or(&Value::Null)) {
                    Cell::Integer(i) => SqlValue::Integer(i),
                    Cell::Real(r) => SqlValue::Real(r),
                    Cell::Text(t) => SqlValue::Text(t),
                    Cell::Null | Cell::Blob(_) => SqlValue::Null,
                }
            })
            .collect();
        params.extend(conditions.iter().flat_map(|c| c.params.iter().cloned()));
        let admitted = db
            .read_conn(move |conn| Ok::<_, RecordError>(conn.integer(&sql, &params)? != 0))
            .await?;
        if !admitted {
            return Ok(None);
        }
    } else if !conditions.is_empty() {
        let sql = row_check_sql(&collection, &conditions, dialect);
        let mut params = row_params(&collection, &row);
        params.extend(condition_params(&conditions));
        let admitted = db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let hit: bool = stmt.query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
                Ok::<_, RecordError>(hit)
            })
            .await?;
        if !admitted {
            return Ok(None);
        }
    }
    Ok(Some(serialize(&collection, &row, &caller)))
}

/// `SELECT EXISTS(SELECT 1 FROM (SELECT ? AS "a", …) AS "t" WHERE …)`: the
/// captured row stands in for the table under the table's own name, so the
/// compiled rule applies unchanged, while subqueries of the rule (relations,
/// `@collection`) still read the real tables.
/// On PostgreSQL each placeholder is cast to its column's type (and text
/// to its byte-order collation), so the rule compares as against the table.
fn row_check_sql(collection: &Collection, conditions: &[SqlFragment], dialect: Dialect) -> String {
    let cols: Vec<String> = collection
        .fields
        .iter()
        .map(|f| match dialect {
            Dialect::Sqlite => format!("? AS {}", ident(f.name.as_str())),
            Dialect::Postgres => {
                let def = crate::schema::postgres_column_def(f);
                let ty = [" COLLATE", " DEFAULT", " PRIMARY"]
                    .iter()
                    .filter_map(|cut| def.find(cut))
                    .min()
                    .map_or(def, |end| &def[..end]);
                let collate = if ty == "text" { " COLLATE \"C\"" } else { "" };
                format!("CAST(? AS {ty}){collate} AS {}", ident(f.name.as_str()))
            }
        })
        .collect();
    let wheres: Vec<String> = conditions.iter().map(|c| format!("({})", c.sql)).collect();
    format!(
        "SELECT EXISTS(SELECT 1 FROM (SELECT {}) AS {} WHERE {})",
        cols.join(", "),
        ident(collection.name.as_str()),
        wheres.join(" AND ")
    )
}

fn row_params(collection: &Collection, row: &Map<String, Value>) -> Vec<Cell> {
    collection
        .fields
        .iter()
        .map(|f| to_sql(f, row.get(f.name.as_str()).unwrap_or(&Value::Null)))
        .collect()
}

fn condition_params(conditions: &[SqlFragment]) -> Vec<Cell> {
    conditions
        .iter()
        .flat_map(|c| c.params.iter())
        .map(|v| match v {
            SqlValue::Null => Cell::Null,
            SqlValue::Integer(i) => Cell::Integer(*i),
            SqlValue::Real(f) => Cell::Real(*f),
            SqlValue::Text(s) => Cell::Text(s.clone()),
        })
        .collect()
}
