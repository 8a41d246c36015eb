//! `db check` on PostgreSQL: the system tables, the rules' `fb_*` functions,
//! the views' `total` aggregate and every collection's table (or view) with
//! its columns and indexes are there. What
//! SQLite's `PRAGMA integrity_check` does for pages, PostgreSQL does itself;
//! this checks what Ferrobase needs to find. Reads only.

use crate::db::{Conn, Db, DbError};
use crate::rules::SqlValue;
use crate::schema::{Collection, CollectionType, SchemaError};

/// The tables every Ferrobase database on PostgreSQL has.
const SYSTEM_TABLES: [&str; 4] = ["_migrations", "_collections", "_params", "_logs"];

/// What went wrong while checking (not a finding: the check did not finish).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("reading the collections: {0}")]
    Schema(#[from] SchemaError),
}

/// The problems found, one line each; empty when everything is there.
pub async fn postgres(db: &Db) -> Result<Vec<String>, CheckError> {
    db.read_conn(|c| {
        let mut problems = Vec::new();
        for table in SYSTEM_TABLES {
            if columns(c, table)?.is_empty() {
                problems.push(format!("system table {table} is missing"));
            }
        }
        if problems.iter().any(|p| p.contains("_collections")) {
            problems.push("not a Ferrobase database: _collections is missing".into());
            return Ok(problems);
        }
        let present = functions(c)?;
        for name in expected_functions() {
            if !present.iter().any(|p| p == name) {
                problems.push(format!(
                    "function {name} (used by rules and filters) is missing"
                ));
            }
        }
        if !has_total_aggregate(c)? {
            problems.push(
                "aggregate total(double precision) (SQLite's, for view queries) is missing".into(),
            );
        }
        for collection in crate::schema::read_all(c)? {
            problems.extend(check_collection(c, &collection)?);
        }
        Ok(problems)
    })
    .await
}

/// A collection's table (a view for a view collection) and its columns.
fn check_collection(c: &mut dyn Conn, collection: &Collection) -> Result<Vec<String>, DbError> {
    let name = collection.name.as_str();
    let found = columns(c, name)?;
    let what = if collection.kind == CollectionType::View {
        "view"
    } else {
        "table"
    };
    if found.is_empty() {
        return Ok(vec![format!("collection {name}: its {what} is missing")]);
    }
    let mut wanted: Vec<&str> = collection.fields.iter().map(|f| f.name.as_str()).collect();
    if collection.kind != CollectionType::View {
        wanted.push(crate::rules::postgres::ROWID_COLUMN);
    }
    let mut problems: Vec<String> = wanted
        .into_iter()
        .filter(|w| !found.iter().any(|f| f == w))
        .map(|w| format!("collection {name}: column {w} is missing from its {what}"))
        .collect();
    for index in &collection.indexes {
        let on_table = c.integer(
            "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass(quote_ident(?1)) \
             AND indrelid = to_regclass(quote_ident(?2))",
            &[
                SqlValue::Text(index.name.clone()),
                SqlValue::Text(name.to_owned()),
            ],
        )?;
        if on_table == 0 {
            problems.push(format!(
                "collection {name}: index {} is missing from its table",
                index.name
            ));
        }
    }
    Ok(problems)
}

/// The columns of the table or view `name` on the search path (none when
/// there is no such relation).
fn columns(c: &mut dyn Conn, name: &str) -> Result<Vec<String>, DbError> {
    let rows = c.rows(
        "SELECT attname::text FROM pg_attribute \
         WHERE attrelid = to_regclass(quote_ident(?1)) AND attnum > 0 AND NOT attisdropped",
        &[SqlValue::Text(name.to_owned())],
    )?;
    Ok(texts(rows))
}

/// The `fb_*` functions visible on the search path.
fn functions(c: &mut dyn Conn) -> Result<Vec<String>, DbError> {
    let rows = c.rows(
        "SELECT DISTINCT proname::text FROM pg_proc \
         WHERE proname LIKE 'fb\\_%' AND pg_function_is_visible(oid)",
        &[],
    )?;
    Ok(texts(rows))
}

/// Whether the `total` aggregate of `schema/view_postgres.sql` is visible.
fn has_total_aggregate(c: &mut dyn Conn) -> Result<bool, DbError> {
    let found = c.integer(
        "SELECT count(*) FROM pg_proc \
         WHERE proname = 'total' AND prokind = 'a' AND pg_function_is_visible(oid)",
        &[],
    )?;
    Ok(found > 0)
}

fn texts(rows: Vec<Vec<SqlValue>>) -> Vec<String> {
    rows.into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(SqlValue::Text(t)) => Some(t),
            _ => None,
        })
        .collect()
}

/// The names `rules/postgres.sql` creates (`CREATE OR REPLACE FUNCTION fb_x(`).
fn expected_functions() -> Vec<&'static str> {
    let mut names: Vec<&str> = crate::rules::postgres::FUNCTIONS
        .split("FUNCTION ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .map(str::trim)
        .filter(|name| name.starts_with("fb_"))
        .collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_function_of_the_rules_sql_is_expected() {
        let names = super::expected_functions();
        assert!(names.contains(&"fb_cmp"), "{names:?}");
        assert!(names.contains(&"fb_strftime"), "{names:?}");
        assert!(names.len() >= 20, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        );
    }
}
