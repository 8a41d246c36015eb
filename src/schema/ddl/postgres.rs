//! DDL from collection definitions on PostgreSQL, through [`Conn`]: create
//! and drop a table (or view), and bring a table to a changed definition
//! with `ALTER TABLE` (rename the table, drop, rename and add columns,
//! recreate the indexes) instead of SQLite's rebuild. A field's column type
//! changes only where the stored values convert exactly; [`check_alter`]
//! refuses the others before anything runs. Full-text search stays on
//! SQLite (`crate::search` is FTS5): `store` refuses searchable fields here.

use super::super::collection::{Collection, CollectionType};
use super::super::field::Field;
use super::super::view;
use super::{postgres_column_def, postgres_create_sql, postgres_index_sql};
use crate::db::{Conn, DbError, ident};
use crate::validation::{FieldError, ValidationErrors};

/// Creates the table and indexes of a new collection, or the view of a view
/// collection.
pub fn create(conn: &mut dyn Conn, collection: &Collection) -> Result<(), DbError> {
    if collection.kind == CollectionType::View {
        conn.execute(&view::postgres_create_sql(collection), &[])?;
        return Ok(());
    }
    for sql in postgres_create_sql(collection) {
        conn.execute(&sql, &[])?;
    }
    Ok(())
}

/// Drops the table (or view) of a deleted collection.
pub fn drop(conn: &mut dyn Conn, collection: &Collection) -> Result<(), DbError> {
    let sql = if collection.kind == CollectionType::View {
        view::drop_sql(collection.name.as_str())
    } else {
        format!("DROP TABLE IF EXISTS {}", ident(collection.name.as_str()))
    };
    conn.execute(&sql, &[])?;
    Ok(())
}

/// How a kept field's column changes.
#[derive(Debug, PartialEq, Eq)]
enum Retype {
    /// Same PostgreSQL column (e.g. text to email): the values stay as they are.
    Keep,
    /// A single text value becomes a one-element list, as SQLite's rebuild
    /// writes it (`''` becomes `[]`).
    TextToList,
}

/// How `prev`'s column becomes `field`'s, or `None` where PostgreSQL cannot
/// give exactly the values SQLite's rebuild would (numbers written as text
/// with other digits, booleans as text, a list cut to its last element …).
fn retype(prev: &Field, field: &Field) -> Option<Retype> {
    let (from, to) = (postgres_column_def(prev), postgres_column_def(field));
    if from == to {
        Some(Retype::Keep)
    } else if field.is_multi() && !prev.is_multi() && from.starts_with("text") {
        Some(Retype::TextToList)
    } else {
        None
    }
}

/// Refuses, before anything changes, a field retype PostgreSQL cannot do
/// exactly (`fields.N.type`).
pub fn check_alter(old: &Collection, new: &Collection) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if new.kind != CollectionType::View {
        for (i, field) in new.fields.iter().enumerate() {
            let Some(prev) = old.fields.iter().find(|f| f.id == field.id) else {
                continue;
            };
            if retype(prev, field).is_none() {
                let mut e = ValidationErrors::new();
                e.add(
                    "type",
                    FieldError::new(
                        "validation_field_type_change_postgres",
                        format!(
                            "Changing the field type from {} to {} cannot be done exactly on PostgreSQL; \
                             add a new field instead.",
                            prev.kind.type_name(),
                            field.kind.type_name()
                        ),
                    ),
                );
                errors.nest(i.to_string(), e);
            }
        }
    }
    let mut outer = ValidationErrors::new();
    outer.nest("fields", errors);
    outer.into_result()
}

/// Brings the table of `old` to the shape of `new` (checked by
/// [`check_alter`]); a view collection's view is dropped and created again.
pub fn alter(conn: &mut dyn Conn, old: &Collection, new: &Collection) -> Result<(), DbError> {
    if new.kind == CollectionType::View {
        conn.execute(&view::drop_sql(old.name.as_str()), &[])?;
        return create(conn, new);
    }
    for def in &old.indexes {
        conn.execute(&format!("DROP INDEX IF EXISTS {}", ident(&def.name)), &[])?;
    }
    if old.name != new.name {
        let sql = format!(
            "ALTER TABLE {} RENAME TO {}",
            ident(old.name.as_str()),
            ident(new.name.as_str())
        );
        conn.execute(&sql, &[])?;
    }
    let table = ident(new.name.as_str());
    let alter = |conn: &mut dyn Conn, what: String| -> Result<(), DbError> {
        conn.execute(&format!("ALTER TABLE {table} {what}"), &[])?;
        Ok(())
    };
    for gone in old
        .fields
        .iter()
        .filter(|f| !new.fields.iter().any(|n| n.id == f.id))
    {
        alter(conn, format!("DROP COLUMN {}", ident(gone.name.as_str())))?;
    }
    let kept: Vec<(&Field, &Field)> = new
        .fields
        .iter()
        .filter_map(|f| Some((old.fields.iter().find(|p| p.id == f.id)?, f)))
        .collect();
    // Renames go through temporary names, so swapping two names works.
    let renamed: Vec<_> = kept.iter().filter(|(p, f)| p.name != f.name).collect();
    for (prev, field) in &renamed {
        let temp = ident(&format!("_fb_rename_{}", field.id));
        alter(
            conn,
            format!("RENAME COLUMN {} TO {temp}", ident(prev.name.as_str())),
        )?;
    }
    for (_, field) in &renamed {
        let temp = ident(&format!("_fb_rename_{}", field.id));
        alter(
            conn,
            format!("RENAME COLUMN {temp} TO {}", ident(field.name.as_str())),
        )?;
    }
    for (prev, field) in &kept {
        if retype(prev, field) == Some(Retype::TextToList) {
            let col = ident(field.name.as_str());
            alter(
                conn,
                format!(
                    "ALTER COLUMN {col} DROP DEFAULT, ALTER COLUMN {col} TYPE jsonb USING \
                     (CASE WHEN {col} IS NULL OR {col} = '' THEN '[]'::jsonb ELSE jsonb_build_array({col}) END), \
                     ALTER COLUMN {col} SET DEFAULT '[]'"
                ),
            )?;
        }
    }
    for added in new
        .fields
        .iter()
        .filter(|f| !old.fields.iter().any(|p| p.id == f.id))
    {
        alter(
            conn,
            format!(
                "ADD COLUMN {} {}",
                ident(added.name.as_str()),
                postgres_column_def(added)
            ),
        )?;
    }
    for sql in postgres_index_sql(new) {
        conn.execute(&sql, &[])?;
    }
    Ok(())
}
