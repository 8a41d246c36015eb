//! Listing collections for the collections API: `filter` and `sort` on the
//! columns PocketBase allows there (id, created, updated, name, system,
//! type), compiled by the rules engine against `_collections`.

use super::registry::{CompiledCollection, Registry};
use super::{SchemaError, store};
use crate::db::{Db, ident};
use crate::rules::{self, ColumnRef, Dialect, Path, RuleError, Scope, SqlValue, ValueType};
use std::sync::Arc;

/// `_collections`' listable columns, in the SQL of `dialect`.
struct CollectionsScope {
    dialect: Dialect,
}

impl Scope for CollectionsScope {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        match path.segments.as_slice() {
            [name] if store::LISTABLE_COLUMNS.contains(&name.as_str()) => {
                // `system` is PostgreSQL's boolean; the others are text.
                let ty = if name == "system" {
                    ValueType::Bool
                } else {
                    ValueType::Text
                };
                Ok(
                    ColumnRef::single(format!("{}.{}", ident("_collections"), ident(name)))
                        .with_type(ty),
                )
            }
            _ => Err(RuleError::Unresolved {
                name: path.segments.join("."),
                reason: "not filterable on collections".into(),
            }),
        }
    }

    fn request_value(&self, _path: &Path) -> Result<Option<SqlValue>, RuleError> {
        Ok(None)
    }
}

/// Why a collection list query failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// One page of collections and the total (when asked for).
pub async fn list(
    db: &Db,
    registry: &Registry,
    filter: &str,
    sort: &str,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Arc<CompiledCollection>>, i64), ListError> {
    let scope = CollectionsScope {
        dialect: db.dialect(),
    };
    let (where_sql, params) = if filter.trim().is_empty() {
        ("1 = 1".to_owned(), Vec::new())
    } else {
        let fragment = rules::compile(&rules::parse_filter(filter)?, &scope)?;
        (fragment.sql, fragment.params)
    };
    let order = rules::compile_sort(&rules::parse_sort(sort)?, &scope)?;
    // Insertion order last, as SQLite's rowid (PostgreSQL's identity column).
    let rowid = match scope.dialect {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => "_fb_rowid",
    };
    let order = if order.is_empty() {
        rowid.to_owned()
    } else {
        format!("{order}, {rowid}")
    };
    let offset = (page - 1).saturating_mul(per_page);
    let (ids, total) = db
        .read_conn(move |conn| {
            store::query_ids(conn, &where_sql, &order, &params, per_page, offset)
        })
        .await?;
    let snapshot = registry.snapshot();
    Ok((
        ids.iter().filter_map(|id| snapshot.get(id)).collect(),
        total,
    ))
}
