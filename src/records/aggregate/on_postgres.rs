//! The aggregate action's SQL on PostgreSQL, written to give SQLite's
//! answer: text groups and extremes in byte order, lists (`jsonb`) as
//! SQLite's JSON text, booleans as 0/1. A value inside JSON has no single
//! PostgreSQL type to group by, so grouping by one is refused with a 400.
//! The statement shape and the selection are the caller's
//! (`super::statement`, `list::select_in`).

use super::{Rows, invalid};
use crate::db::{Conn, Db};
use crate::records::RecordError;
use crate::rules::{self, SqlFragment, SqlValue, ValueType};
use crate::schema::{Field, postgres_column_def};
use crate::search::aggregate::{AggFn, AggSpec, GroupSpec};
use rusqlite::types::ValueRef;
use serde_json::Value;

/// `value` wrapped as `open value close`, its bound values kept.
fn wrap(open: &str, value: &SqlFragment, close: &str) -> SqlFragment {
    SqlFragment {
        sql: format!("{open}{}{close}", value.sql),
        params: value.params.clone(),
    }
}

/// The refusal of an answer PostgreSQL cannot give as SQLite does.
fn sqlite_only(param: &'static str, what: String) -> RecordError {
    invalid(
        param,
        format!("{what} is SQLite-only for now (not available on PostgreSQL)."),
    )
}

/// Refuses grouping by, or taking extremes or distinct counts of, a `json`
/// or `geoPoint` field: PostgreSQL keeps them as `jsonb`, which orders
/// object keys its own way, so their text (and its order) differs from
/// SQLite's. Multi-value fields are lists of strings and read alike.
pub(super) fn refuse_json_fields(
    groups: &[GroupSpec],
    aggs: &[AggSpec],
) -> Result<(), RecordError> {
    let object =
        |field: &Field| !field.is_multi() && postgres_column_def(field).starts_with("jsonb");
    if let Some(g) = groups.iter().find(|g| g.field.as_ref().is_some_and(object)) {
        return Err(sqlite_only(
            "groupBy",
            format!("Grouping by the JSON field {:?}", g.path),
        ));
    }
    let ordered = |a: &&AggSpec| !matches!(a.func, AggFn::Count | AggFn::Sum | AggFn::Avg);
    if let Some(a) = aggs
        .iter()
        .filter(ordered)
        .find(|a| a.field.as_ref().is_some_and(object))
    {
        return Err(sqlite_only(
            "aggregate",
            format!("{:?} of a JSON field", a.key),
        ));
    }
    Ok(())
}

/// A group column as SQLite would group and order it.
pub(super) fn group_column(
    value: SqlFragment,
    ty: ValueType,
    path: &str,
) -> Result<SqlFragment, RecordError> {
    match ty {
        ValueType::Text | ValueType::ComputedText => Ok(wrap("(", &value, ") COLLATE \"C\"")),
        ValueType::Number
        | ValueType::Bool
        | ValueType::ComputedNumber
        | ValueType::ComputedReal => Ok(value),
        // A multi-value field of this collection (JSON fields are refused
        // before): its list as SQLite's text.
        ValueType::Document if !path.contains('.') => {
            Ok(wrap("fb_json_text(", &value, ") COLLATE \"C\""))
        }
        ValueType::Document | ValueType::Json | ValueType::Element => Err(sqlite_only(
            "groupBy",
            format!("Grouping by {path:?}, a value read from JSON,"),
        )),
    }
}

/// One aggregate over `value` (see `super::agg_sql` for what each means).
/// Sums and averages read only number fields (`double precision`) and sum
/// as SQLite does (`fb_sum`, `fb_avg`), in `order` (the rows' insertion
/// order, SQLite's scan order) when there is one; a sum is `numeric`
/// (the exact integer, or exactly the double).
pub(super) fn aggregate_column(
    func: AggFn,
    value: &SqlFragment,
    ty: ValueType,
    order: Option<&str>,
) -> SqlFragment {
    let order = order.map(|o| format!(" ORDER BY {o}")).unwrap_or_default();
    let json = matches!(
        ty,
        ValueType::Document | ValueType::Json | ValueType::Element
    );
    let text = matches!(ty, ValueType::Text | ValueType::ComputedText);
    let v = &value.sql;
    let sql = match func {
        AggFn::Count if text => {
            format!("count(CASE WHEN {v} IS NULL OR {v} = '' OR {v} = '[]' THEN NULL ELSE 1 END)")
        }
        AggFn::Count if json => {
            format!("count(CASE WHEN {v} IS NULL OR {v} = '[]'::jsonb THEN NULL ELSE 1 END)")
        }
        AggFn::Count => format!("count({v})"),
        AggFn::CountDistinct if json => format!("count(DISTINCT fb_json_text({v}))"),
        AggFn::CountDistinct => format!("count(DISTINCT {v})"),
        AggFn::Sum => format!("coalesce(fb_sum({v}{order}), 0)"),
        AggFn::Avg => format!("fb_avg({v}{order})"),
        AggFn::Min | AggFn::Max => {
            let name = if func == AggFn::Min { "min" } else { "max" };
            match ty {
                ValueType::Bool => format!("{name}(({v})::int)"),
                _ if json => format!("{name}(fb_json_text({v}) COLLATE \"C\")"),
                _ if text => format!("{name}(({v}) COLLATE \"C\")"),
                _ => format!("{name}({v})"),
            }
        }
    };
    SqlFragment {
        sql,
        params: value.params.clone(),
    }
}

/// A PostgreSQL cell as the SQLite cell it stands for.
fn cell(value: &SqlValue) -> ValueRef<'_> {
    match value {
        SqlValue::Null => ValueRef::Null,
        SqlValue::Integer(i) => ValueRef::Integer(*i),
        SqlValue::Real(f) => ValueRef::Real(*f),
        SqlValue::Text(t) => ValueRef::Text(t.as_bytes()),
    }
}

/// Runs the statement (with `?` placeholders) in a read transaction.
pub(super) async fn run(
    db: &Db,
    (sql, params): (String, Vec<SqlValue>),
    rows: Rows,
) -> Result<Vec<Value>, RecordError> {
    let sql = rules::postgres::numbered(&SqlFragment {
        sql,
        params: params.clone(),
    });
    db.read_conn(move |conn: &mut dyn Conn| {
        let found = conn.rows(&sql, &params)?;
        Ok(found
            .iter()
            .map(|row| rows.item(row.iter().map(cell).collect()))
            .collect())
    })
    .await
}
