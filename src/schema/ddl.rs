//! DDL from collection definitions: `CREATE TABLE`, the table rebuild that
//! applies any field change (add, rename, retype, remove) in one transaction
//! while keeping the data of the other columns, and index (re)creation.
//! The full-text index of a collection (`crate::search::index`) is created,
//! dropped and rebuilt here too, inside the same transaction, because a
//! table rebuild renumbers the rowids it is keyed on.

use super::collection::{Collection, CollectionType};
use super::field::{Field, FieldKind};
use crate::db::ident;
use rusqlite::Connection;

pub(super) mod postgres;

/// Column type and constraints of a field.
pub fn column_def(field: &Field) -> String {
    if field.name.as_str() == "id" {
        return "TEXT PRIMARY KEY NOT NULL".to_owned();
    }
    if field.is_multi() {
        return "JSON DEFAULT '[]' NOT NULL".to_owned();
    }
    match &field.kind {
        FieldKind::Number { .. } => "NUMERIC DEFAULT 0 NOT NULL",
        FieldKind::Bool => "BOOLEAN DEFAULT FALSE NOT NULL",
        FieldKind::Json { .. } => "JSON DEFAULT NULL",
        FieldKind::GeoPoint => "JSON DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL",
        _ => "TEXT DEFAULT '' NOT NULL",
    }
    .to_owned()
}

/// Column type and constraints of a field in a PostgreSQL table: text in
/// byte order (`COLLATE "C"`, as SQLite's BINARY), `double precision`,
/// `boolean`, and `jsonb` for JSON, geo points and every multi value.
pub fn postgres_column_def(field: &Field) -> &'static str {
    if field.name.as_str() == "id" {
        return "text COLLATE \"C\" PRIMARY KEY NOT NULL";
    }
    if field.is_multi() {
        return "jsonb DEFAULT '[]' NOT NULL";
    }
    match &field.kind {
        FieldKind::Number { .. } => "double precision DEFAULT 0 NOT NULL",
        FieldKind::Bool => "boolean DEFAULT FALSE NOT NULL",
        FieldKind::Json { .. } => "jsonb DEFAULT NULL",
        FieldKind::GeoPoint => "jsonb DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL",
        _ => "text COLLATE \"C\" DEFAULT '' NOT NULL",
    }
}

/// The hidden identity column of a PostgreSQL collection table, which keeps
/// SQLite's insertion order (its rowid) for default order and `@rowid`.
pub const POSTGRES_ROWID: &str = crate::rules::postgres::ROWID_COLUMN;

/// Every statement creating a base or auth collection on PostgreSQL: its
/// table, then its indexes.
pub fn postgres_create_sql(collection: &Collection) -> Vec<String> {
    let mut statements = vec![postgres_create_table_sql(collection)];
    statements.extend(postgres_index_sql(collection));
    statements
}

/// `CREATE INDEX` for each of a collection's indexes on PostgreSQL.
pub fn postgres_index_sql(collection: &Collection) -> Vec<String> {
    let jsonb = |name: &str| {
        collection
            .field(name)
            .is_some_and(|f| postgres_column_def(f).starts_with("jsonb"))
    };
    collection
        .indexes
        .iter()
        .map(|def| def.to_postgres_sql(&collection.name, jsonb))
        .collect()
}

/// `CREATE TABLE` for a base or auth collection on PostgreSQL.
pub fn postgres_create_table_sql(collection: &Collection) -> String {
    let mut cols = vec![format!(
        "{} bigint GENERATED ALWAYS AS IDENTITY",
        ident(POSTGRES_ROWID)
    )];
    cols.extend(
        collection
            .fields
            .iter()
            .map(|f| format!("{} {}", ident(f.name.as_str()), postgres_column_def(f))),
    );
    format!(
        "CREATE TABLE {} ({})",
        ident(collection.name.as_str()),
        cols.join(", ")
    )
}

pub(super) fn create_table_sql(table: &str, collection: &Collection) -> String {
    let cols: Vec<String> = collection
        .fields
        .iter()
        .map(|f| format!("{} {}", ident(f.name.as_str()), column_def(f)))
        .collect();
    format!("CREATE TABLE {} ({})", ident(table), cols.join(", "))
}

/// Creates the table and indexes of a new collection (or the SQL view of a
/// view collection, whose query `schema::view::check` has accepted).
pub fn create(tx: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    if collection.kind == CollectionType::View {
        // `execute` refuses a second statement; the query was checked anyway.
        tx.execute(&super::view::create_sql(collection), [])?;
        // SQLite only resolves a view's tables and columns when it is used.
        tx.prepare(&format!(
            "SELECT * FROM {} LIMIT 0",
            ident(collection.name.as_str())
        ))?;
        return Ok(());
    }
    tx.execute_batch(&create_table_sql(collection.name.as_str(), collection))?;
    create_indexes(tx, collection)?;
    crate::search::index::create(tx, collection)
}

/// Brings the table of `old` to the shape of `new`: a rename when only the
/// name changed, otherwise a rebuild that copies (and converts) kept columns.
pub fn alter(tx: &Connection, old: &Collection, new: &Collection) -> rusqlite::Result<()> {
    if new.kind == CollectionType::View {
        tx.execute(&super::view::drop_sql(old.name.as_str()), [])?;
        return create(tx, new);
    }
    drop_indexes(tx, old)?;
    let same_columns = old.fields.len() == new.fields.len()
        && old
            .fields
            .iter()
            .zip(&new.fields)
            .all(|(a, b)| a.name == b.name && column_def(a) == column_def(b));
    if same_columns && old.name != new.name {
        // Through a temporary name: SQLite refuses a rename that only changes case.
        let temp = format!("_fb_rename_{}", new.id);
        tx.execute_batch(&format!(
            "ALTER TABLE {} RENAME TO {}; ALTER TABLE {} RENAME TO {};",
            ident(old.name.as_str()),
            ident(&temp),
            ident(&temp),
            ident(new.name.as_str())
        ))?;
    }
    // Kept only when neither the table nor the indexed columns change.
    let keep_search = same_columns && crate::search::index::unchanged(old, new);
    if !keep_search {
        crate::search::index::drop(tx, old)?;
    }
    if !same_columns {
        rebuild(tx, old, new)?;
    }
    create_indexes(tx, new)?;
    if !keep_search {
        crate::search::index::create(tx, new)?;
    }
    Ok(())
}

fn rebuild(tx: &Connection, old: &Collection, new: &Collection) -> rusqlite::Result<()> {
    let temp = format!("_fb_rebuild_{}", new.id);
    tx.execute_batch(&create_table_sql(&temp, new))?;
    let mut targets = Vec::new();
    let mut sources = Vec::new();
    for field in &new.fields {
        if let Some(prev) = old.fields.iter().find(|f| f.id == field.id) {
            targets.push(ident(field.name.as_str()));
            sources.push(convert(prev, field));
        }
    }
    if !targets.is_empty() {
        tx.execute_batch(&format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            ident(&temp),
            targets.join(", "),
            sources.join(", "),
            ident(old.name.as_str())
        ))?;
    }
    tx.execute_batch(&format!(
        "DROP TABLE {}; ALTER TABLE {} RENAME TO {};",
        ident(old.name.as_str()),
        ident(&temp),
        ident(new.name.as_str())
    ))
}

/// SQL expression turning the old column's value into the new field's storage form.
fn convert(old: &Field, new: &Field) -> String {
    let col = ident(old.name.as_str());
    if column_def(old) == column_def(new) && old.is_multi() == new.is_multi() {
        return col;
    }
    if new.is_multi() {
        return if old.is_multi() {
            col
        } else {
            format!("CASE WHEN {col} IS NULL OR {col} = '' THEN '[]' ELSE json_array({col}) END")
        };
    }
    let scalar = if old.is_multi() {
        format!("COALESCE(json_extract({col}, '$[#-1]'), '')")
    } else {
        col
    };
    match &new.kind {
        FieldKind::Number { .. } => format!("COALESCE(CAST({scalar} AS NUMERIC), 0)"),
        FieldKind::Bool => {
            format!("(COALESCE(CAST({scalar} AS NUMERIC), 0) != 0 OR lower({scalar}) = 'true')")
        }
        FieldKind::Json { .. } => format!(
            "CASE WHEN {scalar} IS NULL THEN NULL WHEN json_valid({scalar}) THEN {scalar} ELSE json_quote({scalar}) END"
        ),
        FieldKind::GeoPoint => format!(
            "CASE WHEN json_valid({scalar}) AND json_type({scalar}, '$.lon') IN ('integer','real') AND json_type({scalar}, '$.lat') IN ('integer','real') THEN {scalar} ELSE '{{\"lon\":0,\"lat\":0}}' END"
        ),
        _ => format!("COALESCE(CAST({scalar} AS TEXT), '')"),
    }
}

/// Drops the table of a deleted collection.
pub fn drop(tx: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    if collection.kind == CollectionType::View {
        return tx.execute_batch(&super::view::drop_sql(collection.name.as_str()));
    }
    crate::search::index::drop(tx, collection)?;
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS {}",
        ident(collection.name.as_str())
    ))
}

fn create_indexes(tx: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    for def in &collection.indexes {
        tx.execute_batch(&def.to_sql(&collection.name))?;
    }
    Ok(())
}

fn drop_indexes(tx: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    let names: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
        )?;
        let rows = stmt.query_map([collection.name.as_str()], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for name in names {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {}", ident(&name)))?;
    }
    Ok(())
}
