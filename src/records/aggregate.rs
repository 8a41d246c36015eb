//! The aggregate action (`GET /api/collections/{c}/aggregate`): groups and
//! aggregates over exactly the records the caller could list. The WHERE is
//! the list's own rule-checked [`Selection`] (filter, search, list rule, join
//! guards), so a caller never counts a record they could not fetch; group
//! paths and aggregated fields are read through the same field scope as a
//! sort. Parsing `groupBy`/`aggregate` is `crate::search::aggregate`'s job.

use super::RecordError;
use super::access::Caller;
use super::list::{Request, Selection, guard_request_macros, select_in};
use super::searched::searched;
use super::value::from_sql;
use crate::db::Db;
use crate::rules::{self, Dialect, SqlFragment, SqlValue, ValueType};
use crate::schema::{CollectionType, CompiledCollection, Field, Snapshot, number_json};
use crate::search::aggregate::{self as spec, AggFn, AggSpec, GroupSpec};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::types::ValueRef;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

mod on_postgres;

/// Most groups one answer carries (`limit` is clamped to it).
pub const MAX_AGGREGATE_GROUPS: i64 = 1000;

/// Parsed aggregate parameters (raw text; checked against the schema later).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateQuery {
    pub group_by: String,
    pub aggregate: String,
    pub filter: String,
    pub search: String,
    pub sort: String,
    pub limit: i64,
}

fn invalid(field: &'static str, message: String) -> RecordError {
    let mut errors = ValidationErrors::new();
    errors.add(field, FieldError::new("validation_invalid_value", message));
    RecordError::Invalid {
        message: "Invalid aggregate query.",
        errors,
    }
}

/// Reads `groupBy`, `aggregate`, `filter`, `search`, `sort` and `limit`.
pub fn parse_aggregate_query(
    params: &HashMap<String, String>,
) -> Result<AggregateQuery, RecordError> {
    let text = |key: &str| params.get(key).cloned().unwrap_or_default();
    let limit = match params
        .get("limit")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => MAX_AGGREGATE_GROUPS,
        Some(raw) => raw
            .parse::<i64>()
            .map_err(|_| invalid("limit", "limit must be an integer.".into()))?
            .clamp(1, MAX_AGGREGATE_GROUPS),
    };
    Ok(AggregateQuery {
        group_by: text("groupBy"),
        aggregate: text("aggregate"),
        filter: text("filter"),
        search: text("search"),
        sort: text("sort"),
        limit,
    })
}

/// The SQL of one group column (a date bucket cuts the stored UTC text).
fn group_sql(group: &GroupSpec, scope: &dyn rules::Scope) -> Result<SqlFragment, RecordError> {
    let (mut value, ty) = rules::compile_typed_value(&group.path, scope)?;
    if let Some(bucket) = group.bucket {
        value.sql = format!("substr({}, 1, {})", value.sql, bucket.prefix_len());
    }
    match scope.dialect() {
        Dialect::Sqlite => Ok(value),
        Dialect::Postgres => on_postgres::group_column(value, ty, &group.path),
    }
}

/// The SQL value an aggregate reads and its type (`None` for `count()`).
fn agg_value(agg: &AggSpec, scope: &dyn rules::Scope) -> Result<Option<Typed>, RecordError> {
    match &agg.field {
        None => Ok(None),
        Some(field) => Ok(Some(rules::compile_typed_value(
            field.name.as_str(),
            scope,
        )?)),
    }
}

/// A compiled value and its type.
type Typed = (SqlFragment, ValueType);

/// Which SQL the aggregates are written in; on PostgreSQL, the order in
/// which rows are summed (SQLite's: insertion order; none for a view).
enum Engine {
    Sqlite,
    Postgres { order: Option<String> },
}

/// The SQL of one aggregate over `value`. `count(field)` counts non-empty
/// values; `sum` of no rows is 0 (SQLite's NULL would read as "no data").
/// `exact`: `sum()` keeps integers exact but fails past 64 bits; the
/// fallback `total()` sums in floating point.
fn agg_sql(func: AggFn, value: Option<&Typed>, exact: bool, engine: &Engine) -> SqlFragment {
    let Some((value, ty)) = value else {
        return SqlFragment::raw("count(*)");
    };
    if let Engine::Postgres { order } = engine {
        return on_postgres::aggregate_column(func, value, *ty, order.as_deref());
    }
    let v = &value.sql;
    let sql = match func {
        AggFn::Count => {
            format!("count(CASE WHEN {v} IS NULL OR {v} = '' OR {v} = '[]' THEN NULL ELSE 1 END)")
        }
        AggFn::CountDistinct => format!("count(DISTINCT {v})"),
        AggFn::Sum if exact => format!("coalesce(sum({v}), 0)"),
        AggFn::Sum => format!("total({v})"),
        AggFn::Avg => format!("avg({v})"),
        AggFn::Min => format!("min({v})"),
        AggFn::Max => format!("max({v})"),
    };
    SqlFragment {
        sql,
        params: value.params.clone(),
    }
}

/// A plain SQL value as JSON: integral reals as integers (PocketBase writes
/// numbers from float64, so `340.0` is `340`).
fn plain_json(raw: ValueRef<'_>) -> Value {
    match raw {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => number_json(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => Value::Null,
    }
}

/// How a result column reads back: through its field when it is one of this
/// collection's fields read whole (so a bool is `true`, a multi-select an
/// array), otherwise as a plain value.
fn decoder(field: Option<&Field>) -> impl Fn(ValueRef<'_>) -> Value + Send + 'static {
    let field = field.cloned();
    move |raw| match (&field, raw) {
        (_, ValueRef::Null) => Value::Null,
        (Some(f), raw) => from_sql(f, raw),
        (None, raw) => plain_json(raw),
    }
}

type Decoder = Box<dyn Fn(ValueRef<'_>) -> Value + Send>;

/// The aggregate action: one object per group, keyed by the group paths
/// and the aggregate keys.
pub async fn aggregate(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    query: AggregateQuery,
) -> Result<Vec<Value>, RecordError> {
    let dialect = db.dialect();
    guard_request_macros(&caller, &query.group_by)?;
    let groups = spec::parse_group_by(&query.group_by, &collection.def, caller.superuser)
        .map_err(|e| invalid("groupBy", e))?;
    let aggs = spec::parse_aggs(&query.aggregate, &collection.def, caller.superuser)
        .map_err(|e| invalid("aggregate", e))?;
    let keys: Vec<String> = groups
        .iter()
        .map(|g| g.key.clone())
        .chain(aggs.iter().map(|a| a.key.clone()))
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let sort = spec::parse_sort(&query.sort, &key_refs).map_err(|e| invalid("sort", e))?;
    let search = match dialect {
        Dialect::Sqlite => searched(&collection, &caller, &query.search)?,
        Dialect::Postgres => {
            on_postgres::refuse_json_fields(&groups, &aggs)?;
            super::on_postgres::refuse_search(&query.search)?;
            None
        }
    };
    let request = Request {
        caller: &caller,
        filter: &query.filter,
        bound: &Map::new(),
        dialect,
    };
    let (selection, columns) =
        select_in(&snapshot, &collection, &request, search.as_ref(), |scope| {
            let mut grouped = Vec::new();
            for g in &groups {
                grouped.push(group_sql(g, scope)?);
            }
            let mut values = Vec::new();
            for a in &aggs {
                values.push(agg_value(a, scope)?);
            }
            Ok((grouped, values))
        })?;
    let (grouped, values) = columns;
    let shape = Shape {
        groups: groups.len(),
        sort: &sort,
        limit: query.limit,
        dialect,
    };
    let engine = match dialect {
        Dialect::Sqlite => Engine::Sqlite,
        Dialect::Postgres => Engine::Postgres {
            order: (collection.kind != CollectionType::View).then(|| {
                let table = crate::db::ident(collection.name.as_str());
                format!("{table}.{}", rules::postgres::ROWID_COLUMN)
            }),
        },
    };
    let statement_with = |exact: bool| {
        let aggregated = aggs
            .iter()
            .zip(&values)
            .map(|(a, v)| agg_sql(a.func, v.as_ref(), exact, &engine));
        let columns: Vec<SqlFragment> = grouped.iter().cloned().chain(aggregated).collect();
        statement(&collection, &selection, &columns, &shape)
    };
    let decoders: Vec<Decoder> = groups
        .iter()
        .map(|g| Box::new(decoder(g.field.as_ref().filter(|_| g.bucket.is_none()))) as Decoder)
        .chain(aggs.iter().map(|a| {
            // min/max keep their field's type; counts, sums and averages are numbers.
            let field = a
                .field
                .as_ref()
                .filter(|_| matches!(a.func, AggFn::Min | AggFn::Max));
            Box::new(decoder(field)) as Decoder
        }))
        .collect();
    let rows = Rows { keys, decoders };
    if dialect == Dialect::Postgres {
        return on_postgres::run(db, statement_with(true), rows).await;
    }
    let (exact_sql, exact_params) = statement_with(true);
    let (float_sql, float_params) = statement_with(false);
    db.read(move |conn| {
        let run = |sql: &str, params: &[SqlValue]| -> rusqlite::Result<Vec<Value>> {
            let mut stmt = conn.prepare_cached(sql)?;
            let mut out = stmt.query(rusqlite::params_from_iter(params.iter()))?;
            let mut items = Vec::new();
            while let Some(row) = out.next()? {
                let cells = (0..rows.keys.len()).map(|i| row.get_ref(i));
                items.push(rows.item(cells.collect::<Result<Vec<_>, _>>()?));
            }
            Ok(items)
        };
        match run(&exact_sql, &exact_params) {
            Err(rusqlite::Error::SqliteFailure(_, Some(message)))
                if message.contains("integer overflow") =>
            {
                Ok(run(&float_sql, &float_params)?)
            }
            other => Ok::<_, RecordError>(other?),
        }
    })
    .await
}

/// The output keys of an aggregate answer and how each column reads back.
pub(super) struct Rows {
    keys: Vec<String>,
    decoders: Vec<Decoder>,
}

impl Rows {
    /// One result row (its cells in column order) as an answer object.
    pub(super) fn item(&self, cells: Vec<ValueRef<'_>>) -> Value {
        let mut item = Map::new();
        for ((key, decode), cell) in self.keys.iter().zip(&self.decoders).zip(cells) {
            item.insert(key.clone(), decode(cell));
        }
        Value::Object(item)
    }
}

/// The parts of the statement that are not columns or the WHERE.
struct Shape<'a> {
    groups: usize,
    sort: &'a [(usize, bool)],
    limit: i64,
    dialect: Dialect,
}

/// `SELECT groups, aggregates FROM table WHERE selection GROUP BY groups
/// ORDER BY sort LIMIT ?` and its bound values in placeholder order.
fn statement(
    collection: &CompiledCollection,
    selection: &Selection,
    columns: &[SqlFragment],
    shape: &Shape<'_>,
) -> (String, Vec<SqlValue>) {
    let table = crate::db::ident(collection.name.as_str());
    let select_list: Vec<&str> = columns.iter().map(|c| c.sql.as_str()).collect();
    let mut sql = format!(
        "SELECT {} FROM {table}{}",
        select_list.join(", "),
        selection.where_sql()
    );
    // Result columns by position: the group expressions are not repeated.
    let positions = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
    if shape.groups > 0 {
        sql.push_str(&format!(" GROUP BY {}", positions(shape.groups).join(", ")));
    }
    // SQLite puts NULL first in ascending order; PostgreSQL must be told.
    let direction = |desc: bool| match (shape.dialect, desc) {
        (Dialect::Sqlite, true) => "DESC",
        (Dialect::Sqlite, false) => "ASC",
        (Dialect::Postgres, true) => "DESC NULLS LAST",
        (Dialect::Postgres, false) => "ASC NULLS FIRST",
    };
    let mut order: Vec<String> = shape
        .sort
        .iter()
        .map(|(i, desc)| format!("{} {}", i + 1, direction(*desc)))
        .collect();
    // Ties break by the group columns, so both engines list tied groups alike.
    for i in 0..shape.groups {
        if !shape.sort.iter().any(|(s, _)| *s == i) {
            order.push(format!("{} {}", i + 1, direction(false)));
        }
    }
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    sql.push_str(" LIMIT ?");
    let mut params: Vec<SqlValue> = columns.iter().flat_map(|c| c.params.clone()).collect();
    params.extend(selection.params.iter().cloned());
    params.push(SqlValue::Integer(shape.limit));
    (sql, params)
}
