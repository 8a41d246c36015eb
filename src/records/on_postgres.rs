//! The read actions (view and list) on PostgreSQL. The rule-checked
//! selection is SQLite's (`list::select_in`, `access::resolve_in`), written
//! in PostgreSQL's dialect and run through [`Conn`]; each row comes back as
//! plain values, converted by the same `from_sql` as SQLite's cells and
//! shown through `read::serialize`. SQLite's faster paths (the direct JSON
//! writer, the count memo, the rowid sort) stay SQLite-only. Full-text
//! search is refused with a 400 (not yet ported). A view's files and its
//! query's sample rows are read here too.

use super::RecordError;
use super::access::{self, Access, Caller};
use super::list::{ListPage, ListQuery, Request, guard_request_macros, select_in};
use super::read::serialize;
use super::searched::{search_error, split_rank};
use super::value::from_sql;
use crate::db::{Conn, Db, DbError, ident};
use crate::rules::{self, Dialect, SqlFragment, SqlValue};
use crate::schema::{Collection, CollectionType, CompiledCollection, Field, SchemaError, Snapshot};
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A `search` on PostgreSQL: refused (the full-text index is SQLite's FTS5).
pub(super) fn refuse_search(search: &str) -> Result<(), RecordError> {
    if search.trim().is_empty() {
        return Ok(());
    }
    Err(search_error(
        "Full-text search is SQLite-only for now (not available on PostgreSQL).".into(),
    ))
}

/// The view action: 403 for a `null` rule, 404 when missing or hidden by the rule.
pub(super) async fn view(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
) -> Result<Value, RecordError> {
    let access = access::resolve_in(
        &snapshot,
        &collection.rules.view,
        &caller,
        &collection,
        Dialect::Postgres,
    )?;
    let values = load(db, collection.clone(), id, access)
        .await?
        .ok_or(RecordError::NotFound)?;
    Ok(serialize(&collection, &values, &caller))
}

/// Record `id`'s field values if it exists and passes `access`.
pub(super) async fn load(
    db: &Db,
    collection: Arc<CompiledCollection>,
    id: String,
    access: Access,
) -> Result<Option<Map<String, Value>>, RecordError> {
    db.read_conn(move |conn: &mut dyn Conn| load_in(conn, &collection, &id, &access))
        .await
}

/// Record `id`'s field values if it exists and passes `access`, read on
/// `conn` (a read, or a write transaction's own connection).
pub(super) fn load_in(
    conn: &mut dyn Conn,
    collection: &CompiledCollection,
    id: &str,
    access: &Access,
) -> Result<Option<Map<String, Value>>, RecordError> {
    // PostgreSQL text cannot hold NUL, so no stored id has one: not found,
    // rather than an error binding it.
    if id.contains('\0') {
        return Ok(None);
    }
    let mut query = SqlFragment {
        sql: collection.select_by_id_sql.clone(),
        params: vec![SqlValue::Text(id.to_owned())],
    };
    if let Access::Filter(rule) = access {
        query.sql = format!("{} AND ({})", query.sql, rule.sql);
        query.params.extend(rule.params.iter().cloned());
    }
    let sql = rules::postgres::numbered(&query);
    let row = conn.first_row(&sql, &query.params)?;
    Ok(row.map(|row| values(collection, row)))
}

/// The list action (filter, sort, page, totals, the list rule ANDed in).
pub(super) async fn list(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    query: ListQuery,
    bound: &Map<String, Value>,
) -> Result<ListPage, RecordError> {
    guard_request_macros(&caller, &query.sort)?;
    let (sort, rank) = split_rank(&query.sort);
    if rank.is_some() {
        // SQLite's answer without a search (and there is none here).
        return Err(search_error("sort=@rank needs a search text.".into()));
    }
    let request = Request {
        caller: &caller,
        filter: &query.filter,
        bound,
        dialect: Dialect::Postgres,
    };
    let (selection, order) = select_in(&snapshot, &collection, &request, None, |scope| {
        Ok(rules::compile_order(&rules::parse_sort(&sort)?, scope)?)
    })?;
    let table = ident(collection.name.as_str());
    let where_sql = selection.where_sql();
    let order_sql = order_by(&collection, &table, &order.sql);
    let mut page = SqlFragment {
        sql: format!(
            "{}{where_sql}{order_sql} LIMIT ? OFFSET ?",
            collection.select_sql
        ),
        params: selection.params.clone(),
    };
    page.params.extend(order.params);
    page.params.push(SqlValue::Integer(query.per_page));
    page.params.push(SqlValue::Integer(
        (query.page - 1).saturating_mul(query.per_page),
    ));
    let count = SqlFragment {
        sql: format!("SELECT count(*) FROM {table}{where_sql}"),
        params: selection.params,
    };
    let (page_sql, count_sql) = (
        rules::postgres::numbered(&page),
        rules::postgres::numbered(&count),
    );
    db.read_conn(move |conn: &mut dyn Conn| {
        // One REPEATABLE READ transaction: the page and its total agree.
        let items = conn
            .rows(&page_sql, &page.params)?
            .into_iter()
            .map(|row| serialize(&collection, &values(&collection, row), &caller))
            .collect();
        let total = if query.skip_total {
            None
        } else {
            Some(conn.integer(&count_sql, &count.params)?)
        };
        Ok(ListPage::new(&query, total, items))
    })
    .await
}

/// The rows of `sql` (with `?` placeholders) on `target` as `caller` sees
/// them (expansion's related records).
pub(super) fn records(
    conn: &mut dyn Conn,
    target: &CompiledCollection,
    caller: &Caller,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<Map<String, Value>>, RecordError> {
    let query = SqlFragment {
        sql: sql.to_owned(),
        params: params.to_vec(),
    };
    let sql = rules::postgres::numbered(&query);
    Ok(conn
        .rows(&sql, params)?
        .into_iter()
        .filter_map(
            |row| match serialize(target, &values(target, row), caller) {
                Value::Object(m) => Some(m),
                _ => None,
            },
        )
        .collect())
}

/// The `ORDER BY`: the requested sort, then insertion order (SQLite's rowid
/// order, which its scans give ties and unsorted lists). A view has no
/// insertion order: its rows come as its query gives them.
fn order_by(collection: &Collection, table: &str, sort: &str) -> String {
    let rowid = (collection.kind != CollectionType::View).then(|| format!("{table}._fb_rowid"));
    let keys: Vec<&str> = [Some(sort).filter(|s| !s.is_empty()), rowid.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if keys.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", keys.join(", "))
    }
}

/// A row selected with the collection's `select_sql`, as field values
/// (converted exactly as SQLite's cells are), on either engine.
pub(crate) fn values(collection: &Collection, row: Vec<SqlValue>) -> Map<String, Value> {
    let mut map = Map::new();
    for (field, cell) in collection.fields.iter().zip(row.iter()) {
        let raw = match cell {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Integer(i) => ValueRef::Integer(*i),
            SqlValue::Real(f) => ValueRef::Real(*f),
            SqlValue::Text(t) => ValueRef::Text(t.as_bytes()),
        };
        map.insert(field.name.to_string(), from_sql(field, raw));
    }
    map
}

/// The first `limit` rows of an unsaved view collection (the dry run's
/// sample), or PostgreSQL's reason for refusing its query (the query is
/// SQLite's SQL; PostgreSQL refuses what it does not understand, and a
/// column type with no SQLite counterpart).
pub(super) async fn view_sample_rows(
    db: &Db,
    view: Collection,
    limit: i64,
) -> Result<Result<Vec<Map<String, Value>>, String>, RecordError> {
    // Our own integer: the user's query is not given placeholders.
    let sql = format!(
        "{} AS fb_view LIMIT {limit}",
        crate::schema::view::select_sql(&view)
    );
    db.read_conn(move |conn: &mut dyn Conn| match conn.rows(&sql, &[]) {
        Ok(rows) => Ok(Ok(rows.into_iter().map(|r| values(&view, r)).collect())),
        Err(DbError::Postgres(failure)) => Ok(Err(failure.message)),
        Err(e) => Err(e.into()),
    })
    .await
}

/// The (collection id, record id) holding a file a view's file field
/// shows: the table and column come from SQLite's metadata of the view's
/// query (`schema::view_column_origin`), the record is the one whose
/// column holds `filename`. `None` when that cannot be told.
pub(super) fn view_file_source(
    conn: &mut dyn Conn,
    view: &Collection,
    field: &Field,
    filename: &str,
) -> Result<Option<(String, String)>, RecordError> {
    let collections = match crate::schema::read_all(conn) {
        Ok(c) => c,
        Err(SchemaError::Db(e)) => return Err(e.into()),
        Err(_) => return Ok(None),
    };
    let Ok(Some((table, column))) =
        crate::schema::view_column_origin(&collections, view, field.name.as_str())
    else {
        return Ok(None);
    };
    let Some(source) = collections
        .iter()
        .find(|c| c.kind != CollectionType::View && c.name.as_str().eq_ignore_ascii_case(&table))
    else {
        return Ok(None);
    };
    let Some(source_field) = source
        .fields
        .iter()
        .find(|f| f.name.as_str().eq_ignore_ascii_case(&column))
    else {
        return Ok(None);
    };
    let (t, c) = (
        ident(source.name.as_str()),
        ident(source_field.name.as_str()),
    );
    let sql = if source_field.is_multi() {
        format!("SELECT {t}.\"id\" FROM {t} WHERE jsonb_exists({t}.{c}, ?1) LIMIT 1")
    } else {
        format!("SELECT {t}.\"id\" FROM {t} WHERE {t}.{c} = ?1 LIMIT 1")
    };
    let row = conn.first_row(&sql, &[SqlValue::Text(filename.to_owned())])?;
    Ok(match row.and_then(|r| r.into_iter().next()) {
        Some(SqlValue::Text(record)) => Some((source.id.clone(), record)),
        _ => None,
    })
}
