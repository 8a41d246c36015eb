//! The list action: pagination, `filter` and `sort` compiled through the
//! rules engine, the list rule ANDed in, and an optional total count.
//! A full-text `search` (see `crate::search`) is one more ANDed condition in
//! the same rule-checked WHERE, and `sort=@rank` orders by its BM25 score.

use super::access::{self, Access, Caller};
use super::list_json::{ItemSink, JsonItems};
use super::searched::{Searched, search_error, searched, split_rank};
use super::{DEFAULT_PER_PAGE, MAX_PER_PAGE, RecordError};
use crate::db::Db;
use crate::rules::{self, Dialect, SqlValue};
use crate::schema::{CollectionType, CompiledCollection, FieldScope, Snapshot, Trust};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

/// Parsed list parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub page: i64,
    pub per_page: i64,
    pub sort: String,
    pub filter: String,
    pub skip_total: bool,
}

/// One page of results in PocketBase's shape; `items` as `Value`s, or
/// already serialised ([`JsonItems`]).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<I = Vec<Value>> {
    pub page: i64,
    pub per_page: i64,
    pub total_items: i64,
    pub total_pages: i64,
    pub items: I,
}

impl<I> ListPage<I> {
    /// Builds a page, deriving `totalPages` (-1 when the total was skipped).
    pub fn new(query: &ListQuery, total: Option<i64>, items: I) -> Self {
        let (total_items, total_pages) = match total {
            Some(t) => (t, (t + query.per_page - 1) / query.per_page),
            None => (-1, -1),
        };
        Self {
            page: query.page,
            per_page: query.per_page,
            total_items,
            total_pages,
            items,
        }
    }
}

impl ListPage {
    /// The page as JSON, its items moved rather than copied (what
    /// `serde_json::to_value` of the page gives, without the deep copy).
    pub fn into_value(self) -> Value {
        let mut out = Map::new();
        out.insert("page".into(), Value::from(self.page));
        out.insert("perPage".into(), Value::from(self.per_page));
        out.insert("totalItems".into(), Value::from(self.total_items));
        out.insert("totalPages".into(), Value::from(self.total_pages));
        out.insert("items".into(), Value::Array(self.items));
        Value::Object(out)
    }
}

impl ListPage<JsonItems> {
    /// The page as the JSON bytes [`ListPage::into_value`] serialises to
    /// (keys in the same, sorted, order).
    pub fn into_json(self) -> Vec<u8> {
        let mut out = self.items.into_opened_page();
        out.extend_from_slice(
            format!(
                ",\"page\":{},\"perPage\":{},\"totalItems\":{},\"totalPages\":{}}}",
                self.page, self.per_page, self.total_items, self.total_pages
            )
            .as_bytes(),
        );
        out
    }
}

/// Reads `page`, `perPage`, `sort`, `filter` and `skipTotal` (400 when one
/// does not parse); unknown keys are ignored.
pub fn parse_list_query(params: &HashMap<String, String>) -> Result<ListQuery, RecordError> {
    let int = |key: &str, default: i64| -> Result<i64, RecordError> {
        match params.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<i64>()
                .map_err(|_| RecordError::BadQuery(format!("{key} must be an integer"))),
        }
    };
    let page = int("page", 1)?.max(1);
    let per_page = match int("perPage", DEFAULT_PER_PAGE)? {
        n if n <= 0 => DEFAULT_PER_PAGE,
        n => n.min(MAX_PER_PAGE),
    };
    // The spellings Go's strconv.ParseBool accepts (PocketBase), nothing else.
    let skip_total = match params.get("skipTotal").map(String::as_str) {
        None | Some("") => false,
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => false,
        Some(_) => {
            return Err(RecordError::BadQuery("skipTotal must be a boolean".into()));
        }
    };
    Ok(ListQuery {
        page,
        per_page,
        sort: params.get("sort").cloned().unwrap_or_default(),
        filter: params.get("filter").cloned().unwrap_or_default(),
        skip_total,
    })
}

/// Non-superusers may not reach `@request.*` / `@collection.*` through query parameters.
pub(crate) fn guard_request_macros(caller: &Caller, text: &str) -> Result<(), RecordError> {
    if caller.superuser {
        return Ok(());
    }
    for marker in ["@collection.", "@request."] {
        if text.contains(marker) {
            return Err(RecordError::SuperusersOnlyFilter(marker));
        }
    }
    Ok(())
}

/// The list action.
pub async fn list(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    query: ListQuery,
) -> Result<ListPage, RecordError> {
    list_with_params(db, snapshot, collection, caller, query, &Map::new()).await
}

/// The list action with `{:name}` placeholders in the filter bound to
/// `params` (server-side hooks' `findRecordsByFilter`).
pub async fn list_with_params(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    query: ListQuery,
    bound: &Map<String, Value>,
) -> Result<ListPage, RecordError> {
    if db.dialect() == Dialect::Postgres {
        return super::on_postgres::list(db, snapshot, collection, caller, query, bound).await;
    }
    list_inner(db, snapshot, collection, caller, query, bound, "").await
}

/// The list action with a full-text `search` (empty: none).
pub async fn list_searched(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    query: ListQuery,
    search: &str,
) -> Result<ListPage, RecordError> {
    if db.dialect() == Dialect::Postgres {
        super::on_postgres::refuse_search(search)?;
        return list_with_params(db, snapshot, collection, caller, query, &Map::new()).await;
    }
    list_inner(db, snapshot, collection, caller, query, &Map::new(), search).await
}

/// The list action with its items written straight into JSON: for a
/// response that nothing reshapes (no expansion, field selection, search
/// marks or hooks).
pub async fn list_json(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    query: ListQuery,
    search: &str,
) -> Result<ListPage<JsonItems>, RecordError> {
    if db.dialect() == Dialect::Postgres {
        // The direct writer reads SQLite rows; PostgreSQL takes the value path.
        let page = list_searched(db, snapshot, collection, caller, query, search).await?;
        return Ok(ListPage {
            page: page.page,
            per_page: page.per_page,
            total_items: page.total_items,
            total_pages: page.total_pages,
            items: JsonItems::from_values(&page.items),
        });
    }
    list_inner(db, snapshot, collection, caller, query, &Map::new(), search).await
}

/// The rule-checked WHERE of a list (or aggregate) request: the caller's
/// filter, the search, the list rule, and the join guards of whatever
/// `with_scope` (the sort) compiled, ANDed together.
pub(super) struct Selection {
    pub conditions: Vec<String>,
    pub params: Vec<SqlValue>,
}

impl Selection {
    pub(super) fn where_sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// Builds the [`Selection`]; `with_scope` runs with the request's field
/// scope before the join guards are collected (the sort compiles there).
pub(super) fn select<T>(
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    caller: &Caller,
    filter: &str,
    bound: &Map<String, Value>,
    search: Option<&Searched>,
    with_scope: impl FnOnce(&FieldScope) -> Result<T, RecordError>,
) -> Result<(Selection, T), RecordError> {
    let request = Request {
        caller,
        filter,
        bound,
        dialect: Dialect::Sqlite,
    };
    select_in(snapshot, collection, &request, search, with_scope)
}

/// Who asks for which rows of a list, and in which engine's SQL.
pub(super) struct Request<'a> {
    pub caller: &'a Caller,
    pub filter: &'a str,
    pub bound: &'a Map<String, Value>,
    pub dialect: Dialect,
}

/// [`select`] in the SQL of `request.dialect`.
pub(super) fn select_in<T>(
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    request: &Request<'_>,
    search: Option<&Searched>,
    with_scope: impl FnOnce(&FieldScope) -> Result<T, RecordError>,
) -> Result<(Selection, T), RecordError> {
    let Request {
        caller,
        filter,
        bound,
        dialect,
    } = *request;
    guard_request_macros(caller, filter)?;
    let access = access::resolve_in(
        snapshot,
        &collection.rules.list,
        caller,
        collection,
        dialect,
    )?;
    let aliases = Cell::new(0);
    let scope = FieldScope::new(
        snapshot,
        collection,
        Trust::of_query_by(caller.superuser),
        caller,
        &aliases,
    )
    .in_dialect(dialect);
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    if !filter.trim().is_empty() {
        let expr = rules::parse_filter_with_params(filter, bound)?;
        let fragment = rules::compile(&expr, &scope)?;
        conditions.push(format!("({})", fragment.sql));
        params.extend(fragment.params);
    }
    if let Some(searched) = search {
        conditions.push(searched.condition.clone());
        params.push(SqlValue::Text(searched.matched.clone()));
    }
    if let Access::Filter(fragment) = access {
        conditions.push(format!("({})", fragment.sql));
        params.extend(fragment.params);
    }
    let out = with_scope(&scope)?;
    // Related rows the filter or sort joined must be listable (rule_scope docs).
    for guard in scope.take_join_guards() {
        conditions.push(format!("({})", guard.sql));
        params.extend(guard.params);
    }
    Ok((Selection { conditions, params }, out))
}

#[allow(clippy::too_many_arguments)]
async fn list_inner<S: ItemSink>(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    query: ListQuery,
    bound: &Map<String, Value>,
    search: &str,
) -> Result<ListPage<S>, RecordError> {
    guard_request_macros(&caller, &query.sort)?;
    let (sort, rank) = split_rank(&query.sort);
    let search = searched(&collection, &caller, search)?;
    let rank = match (rank, &search) {
        (None, _) => None,
        (Some(desc), Some(s)) => Some((desc, s)),
        (Some(_), None) => {
            return Err(search_error("sort=@rank needs a search text.".into()));
        }
    };
    let (selection, mut order) = select(
        &snapshot,
        &collection,
        &caller,
        &query.filter,
        bound,
        search.as_ref(),
        |scope| Ok(rules::compile_order(&rules::parse_sort(&sort)?, scope)?),
    )?;
    let mut join_sql = String::new();
    let mut join_params: Vec<SqlValue> = Vec::new();
    if let Some((desc, s)) = rank {
        // BM25 is lower for better matches: ascending is best first.
        let dir = if desc { "DESC" } else { "ASC" };
        let rest = std::mem::take(&mut order.sql);
        order.sql = format!("_rank._rank_score {dir}");
        if !rest.is_empty() {
            order.sql = format!("{}, {rest}", order.sql);
        }
        join_sql = s.rank_join.clone();
        join_params = s.weights.iter().map(|w| SqlValue::Real(*w)).collect();
        join_params.push(SqlValue::Text(s.matched.clone()));
    }
    let where_sql = selection.where_sql();
    let params = selection.params;
    let order_sql = if order.sql.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.sql)
    };
    let table = crate::db::ident(collection.name.as_str());
    let select = format!(
        "{}{join_sql}{where_sql}{order_sql} LIMIT ? OFFSET ?",
        collection.select_sql
    );
    // A sorted page that SQLite can only get by sorting every match (no index
    // gives the order) carries each matching row, all its columns, through
    // its sorter. Sorting only the rowids, then reading the page's rows,
    // returns the same page for much less. Views have no rowid. A ranked
    // page reads its scores from the join, so it keeps the plain form.
    let rowid_sort =
        (join_sql.is_empty() && !order_sql.is_empty() && collection.kind != CollectionType::View)
            .then(|| {
                format!(
                    "{} WHERE {table}.rowid IN (SELECT {table}.rowid FROM {table}{where_sql}\
                 {order_sql} LIMIT ? OFFSET ?){order_sql}",
                    collection.select_sql
                )
            });
    let count = format!("SELECT count(*) FROM {table}{where_sql}");
    let counts = db.counts();
    db.read(move |conn| {
        // One snapshot for the page, the total and the data version the
        // total may be memoised under (readers.rs rolls back an unfinished one).
        conn.prepare_cached("BEGIN")?.execute([])?;
        // JOIN, WHERE, then ORDER BY, then LIMIT/OFFSET: the placeholders' order.
        let mut bound = join_params;
        bound.extend(params.iter().cloned());
        bound.extend(order.params.iter().cloned());
        bound.push(SqlValue::Integer(query.per_page));
        bound.push(SqlValue::Integer(
            (query.page - 1).saturating_mul(query.per_page),
        ));
        let select = match rowid_sort {
            Some(rowid_sort) if sorts_every_match(conn, &select)? => {
                // The outer ORDER BY repeats the inner one's placeholders.
                bound.extend(order.params);
                rowid_sort
            }
            _ => select,
        };
        let mut stmt = conn.prepare_cached(&select)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(bound.iter()))?;
        let mut items = S::start(&collection, &caller);
        while let Some(row) = rows.next()? {
            items.push(&collection, &caller, row)?;
        }
        drop(rows);
        let total = if query.skip_total {
            None
        } else {
            // Exact: the key is the statement and every bound value (the
            // rule's caller-dependent ones included), and the memo holds
            // it only until the next commit (db/memo.rs).
            // A view's query may read the clock or `random()`, which no
            // commit announces: its totals are always counted afresh.
            let fresh = || {
                conn.prepare_cached(&count)?
                    .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))
            };
            Some(if collection.kind == CollectionType::View {
                fresh()?
            } else {
                counts.get_or_compute(conn, count_key(&count, &params), fresh)?
            })
        };
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(ListPage::new(&query, total, items))
    })
    .await
}

/// Whether SQLite answers `select` by sorting every matching row (its plan
/// has a temporary B-tree for the whole ORDER BY, not only for its right
/// part after an index). Asked once per statement text (the answer only
/// picks between two forms of the same query, so a stale one costs speed,
/// never correctness).
fn sorts_every_match(conn: &rusqlite::Connection, select: &str) -> rusqlite::Result<bool> {
    static PLANS: std::sync::OnceLock<std::sync::Mutex<HashMap<String, bool>>> =
        std::sync::OnceLock::new();
    let plans = PLANS.get_or_init(Default::default);
    let known = plans
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(select)
        .copied();
    if let Some(known) = known {
        return Ok(known);
    }
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {select}"))?;
    // Unbound placeholders read as NULL: the plan does not run the query.
    let mut rows = stmt.raw_query();
    let mut full_sort = false;
    while let Some(row) = rows.next()? {
        let detail: String = row.get(3)?;
        full_sort |= detail == "USE TEMP B-TREE FOR ORDER BY";
    }
    let mut plans = plans.lock().unwrap_or_else(|p| p.into_inner());
    if plans.len() >= 1024 {
        plans.clear();
    }
    plans.insert(select.to_owned(), full_sort);
    Ok(full_sort)
}

/// The memo key of a count: its SQL and each bound value, typed and
/// length-prefixed so that no two different statements share a key.
fn count_key(sql: &str, params: &[SqlValue]) -> String {
    use std::fmt::Write;
    let mut key = String::with_capacity(sql.len() + 16 * params.len());
    key.push_str(sql);
    for p in params {
        // Writing to a String cannot fail.
        let _ = match p {
            SqlValue::Null => write!(key, "\0n"),
            SqlValue::Integer(i) => write!(key, "\0i{i}"),
            SqlValue::Real(f) => write!(key, "\0r{:x}", f.to_bits()),
            SqlValue::Text(t) => write!(key, "\0t{}:{t}", t.len()),
        };
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, RecordError> {
        parse_list_query(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn per_page_is_clamped_like_pocketbase() {
        assert_eq!(q(&[]).expect("ok").per_page, 30);
        assert_eq!(q(&[("perPage", "0")]).expect("ok").per_page, 30);
        assert_eq!(q(&[("perPage", "-4")]).expect("ok").per_page, 30);
        assert_eq!(q(&[("perPage", "5000")]).expect("ok").per_page, 1000);
        assert!(q(&[("page", "abc")]).is_err(), "non-integer page is a 400");
        assert!(q(&[("skipTotal", "1")]).expect("ok").skip_total);
    }
}
