//! The schema changes on PostgreSQL: the same steps as the SQLite ones in
//! `store` (names free, definition saved, DDL, the other views re-checked),
//! through [`Conn`] in one transaction that holds [`LockKey::Schema`], so
//! two changes never read the same "before". View queries are checked and
//! their fields inferred by SQLite itself, on an empty in-memory copy of the
//! tables, then PostgreSQL must accept the `CREATE VIEW` as well.

use std::sync::Arc;

use rusqlite::Connection;

use super::super::collection::{Collection, CollectionType};
use super::super::field::Field;
use super::super::registry::{Registry, Snapshot};
use super::super::{SchemaError, ddl, view};
use super::{
    AUTH_STATE_TABLES, defs_after, defs_of, invalid_view_query, read_all, save, schema_refused,
    table_lookup,
};
use crate::db::{Conn, Db, DbError, LockKey, ident};
use crate::rules::SqlValue;
use crate::validation::{FieldError, ValidationErrors};

/// Runs `change` under the schema lock with every definition as stored,
/// commits, and installs the reloaded snapshot, which it returns.
pub(in crate::schema) async fn commit(
    db: &Db,
    registry: &Registry,
    change: impl Fn(&mut dyn Conn, &[Collection]) -> Result<(), SchemaError> + Send + 'static,
) -> Result<Arc<Snapshot>, SchemaError> {
    let (generation, snapshot) = db
        .write_conn(move |conn| {
            conn.lock(LockKey::Schema)?;
            let generation = super::super::registry::next_generation();
            let before = read_all(conn)?;
            change(conn, &before)?;
            // Compile before committing: a definition that cannot compile is never stored.
            let snapshot = Snapshot::build(read_all(conn)?).map_err(SchemaError::Corrupt)?;
            // The other nodes reload their registry once this commits.
            crate::db::notify::announce(conn, crate::db::notify::Cache::Schema)?;
            Ok::<_, SchemaError>((generation, snapshot))
        })
        .await?;
    registry.install(generation, snapshot);
    Ok(registry.snapshot())
}

/// Runs the create (`updating` false) or update step of `new` under the
/// schema lock, compiles the result, and rolls it all back (to a savepoint,
/// so a refused statement leaves the transaction usable): `store::validate`.
pub(super) async fn validate(db: &Db, updating: bool, new: Collection) -> Result<(), SchemaError> {
    db.write_conn(move |conn| {
        conn.lock(LockKey::Schema)?;
        let before = read_all(conn)?;
        conn.execute("SAVEPOINT fb_validate", &[])?;
        let checked = if updating {
            update_in(conn, &before, &new)
        } else {
            create_in(conn, &new)
        }
        .and_then(|()| {
            Snapshot::build(read_all(conn)?)
                .map(|_| ())
                .map_err(SchemaError::Corrupt)
        });
        conn.execute("ROLLBACK TO SAVEPOINT fb_validate", &[])?;
        checked
    })
    .await
}

/// The create step: id, name and index names free, then the definition and
/// its table (or view).
pub(in crate::schema) fn create_in(
    conn: &mut dyn Conn,
    collection: &Collection,
) -> Result<(), SchemaError> {
    refuse_searchable(collection)?;
    ensure_name_free(conn, collection, "")?;
    let exists = conn
        .first_row(
            "SELECT 1 FROM _collections WHERE id = ?1",
            &[SqlValue::Text(collection.id.clone())],
        )?
        .is_some();
    if exists {
        return Err(super::id_taken());
    }
    ensure_free_index_names(conn, collection, None)?;
    save(conn, collection)?;
    ddl::postgres::create(conn, collection).map_err(|e| ddl_failed(collection, e))
}

/// The update step; `new` replaces the stored definition with its id.
pub(in crate::schema) fn update_in(
    conn: &mut dyn Conn,
    before: &[Collection],
    new: &Collection,
) -> Result<(), SchemaError> {
    let Some(old) = before.iter().find(|c| c.id == new.id) else {
        return Err(SchemaError::NotFound);
    };
    refuse_searchable(new)?;
    ddl::postgres::check_alter(old, new).map_err(SchemaError::Invalid)?;
    ensure_name_free(conn, new, &new.id)?;
    ensure_free_index_names(conn, new, Some(old.name.as_str()))?;
    let views = drop_other_views(conn, before, &new.id)?;
    save(conn, new)?;
    ddl::postgres::alter(conn, old, new).map_err(|e| ddl_failed(new, e))?;
    recreate_views(conn, before, Some(new), &new.id, views, false)
}

/// The delete step: the definition, its records' auth state and its table.
pub(in crate::schema) fn delete_in(
    conn: &mut dyn Conn,
    before: &[Collection],
    def: &Collection,
) -> Result<(), SchemaError> {
    let views = drop_other_views(conn, before, &def.id)?;
    let id = [SqlValue::Text(def.id.clone())];
    conn.execute("DELETE FROM _collections WHERE id = ?1", &id)?;
    // The auth state tables are system collections: present in a copied data dir.
    for table in AUTH_STATE_TABLES
        .into_iter()
        .filter(|t| before.iter().any(|c| c.name.as_str() == *t))
    {
        let sql = format!(
            "DELETE FROM {} WHERE {} = ?1",
            ident(table),
            ident("collectionRef")
        );
        conn.execute(&sql, &id)?;
    }
    ddl::postgres::drop(conn, def)?;
    recreate_views(conn, before, None, &def.id, views, true)
}

/// Full-text search is SQLite's FTS5: a searchable field is refused here
/// rather than stored without its index.
fn refuse_searchable(c: &Collection) -> Result<(), SchemaError> {
    let mut errors = ValidationErrors::new();
    for (i, _) in c
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.search.is_some())
    {
        let mut e = ValidationErrors::new();
        e.add(
            "searchable",
            FieldError::new(
                "validation_searchable_postgres",
                "Full-text search (searchable fields) is not available on PostgreSQL yet.",
            ),
        );
        errors.nest(i.to_string(), e);
    }
    let mut outer = ValidationErrors::new();
    outer.nest("fields", errors);
    outer.into_result().map_err(SchemaError::Invalid)
}

/// Relations of the current schema whose lower-cased name is `?1`; `?1`
/// binds a name.
const RELATIONS_NAMED: &str = "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND lower(c.relname::text) = lower(?1)";

/// [`RELATIONS_NAMED`] with each index's table (`t`), if it is an index.
const RELATIONS_NAMED_JOINED: &str = "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_index x ON x.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = x.indrelid \
     WHERE n.nspname = current_schema() AND lower(c.relname::text) = lower(?1)";

/// Refuses `c`'s name when another collection has it, or a table, view or
/// index of the schema that is not a collection's table.
fn ensure_name_free(conn: &mut dyn Conn, c: &Collection, own_id: &str) -> Result<(), SchemaError> {
    let name = SqlValue::Text(c.name.as_str().to_owned());
    let clash = conn
        .first_row(
            "SELECT 1 FROM _collections WHERE lower(name) = lower(?1) AND id != ?2",
            &[name.clone(), SqlValue::Text(own_id.to_owned())],
        )?
        .is_some();
    let other = conn
        .first_row(
            &format!(
                "SELECT 1 {RELATIONS_NAMED} AND lower(c.relname::text) \
                 NOT IN (SELECT lower(name) FROM _collections)"
            ),
            &[name],
        )?
        .is_some();
    if clash || other {
        return Err(super::name_taken());
    }
    Ok(())
}

/// Index names share the schema's namespace with tables and views: refuse
/// names taken by anything other than this collection's own (old) indexes.
fn ensure_free_index_names(
    conn: &mut dyn Conn,
    c: &Collection,
    old_table: Option<&str>,
) -> Result<(), SchemaError> {
    let mut errors = ValidationErrors::new();
    for (i, def) in c.indexes.iter().enumerate() {
        let owner = conn.first_row(
            &format!(
                "SELECT c.relkind::text, COALESCE(t.relname::text, '') {RELATIONS_NAMED_JOINED}"
            ),
            &[SqlValue::Text(def.name.clone())],
        )?;
        let ours = match (&owner, old_table) {
            (Some(row), Some(old)) => matches!(
                row.as_slice(),
                [SqlValue::Text(kind), SqlValue::Text(table)]
                    if kind == "i" && table.eq_ignore_ascii_case(old)
            ),
            _ => false,
        };
        if owner.is_some() && !ours {
            errors.add(i.to_string(), super::index_name_taken());
        }
    }
    let mut outer = ValidationErrors::new();
    outer.nest("indexes", errors);
    outer.into_result().map_err(SchemaError::Invalid)
}

/// A statement built from a checked definition that PostgreSQL refused (a
/// unique index the rows break, a view query it cannot run): a 400. A
/// deadlock stays a database error, so the transaction is run again.
fn ddl_failed(c: &Collection, e: DbError) -> SchemaError {
    match e {
        DbError::Postgres(f) if !f.is_retryable() => {
            if c.kind == CollectionType::View {
                invalid_view_query(&format!("PostgreSQL cannot run it: {}", f.message))
            } else {
                schema_refused("PostgreSQL", &f.message)
            }
        }
        other => SchemaError::Db(other),
    }
}

/// Drops the view of every view collection, latest first (PostgreSQL
/// refuses to drop a view another one uses); returns those other than `id`,
/// to be re-created.
fn drop_other_views(
    conn: &mut dyn Conn,
    before: &[Collection],
    id: &str,
) -> Result<Vec<Collection>, SchemaError> {
    // Newest first, the changed view included: PostgreSQL refuses to drop a
    // view another one still reads (deleting `vv`, which reads `v`, dropped
    // `v` first: a 500). Its own step drops it again `IF EXISTS`.
    for v in before
        .iter()
        .filter(|c| c.kind == CollectionType::View)
        .rev()
    {
        conn.execute(&view::drop_sql(v.name.as_str()), &[])?;
    }
    Ok(before
        .iter()
        .filter(|c| c.kind == CollectionType::View && c.id != id)
        .cloned()
        .collect())
}

/// Re-checks and re-creates each dropped view against the changed schema,
/// as `store::recreate_views` does on SQLite.
fn recreate_views(
    conn: &mut dyn Conn,
    before: &[Collection],
    changed: Option<&Collection>,
    id: &str,
    views: Vec<Collection>,
    deleting: bool,
) -> Result<(), SchemaError> {
    if views.is_empty() {
        return Ok(());
    }
    let mut collections = defs_after(before, changed, id);
    let scratch = scratch(
        &collections,
        changed.filter(|c| c.kind == CollectionType::View),
    )?;
    for mut v in views {
        let broken = |reason: String| {
            tracing::info!(view = %v.name, %reason, "schema change refused: a view depends on it");
            SchemaError::ViewDependency {
                view: v.name.to_string(),
                deleting,
            }
        };
        let checked = view::check(
            &scratch,
            v.view_query(),
            &table_lookup(&collections),
            &v.fields,
        )
        .map_err(&broken)?;
        scratch
            .execute_batch(&view::create_sql(&v))
            .map_err(|e| broken(e.to_string()))?;
        if checked.fields != v.fields {
            v.fields = checked.fields;
            save(conn, &v)?;
        }
        ddl::postgres::create(conn, &v).map_err(|e| broken(e.to_string()))?;
        if let Some(slot) = collections.iter_mut().find(|c| c.id == v.id) {
            *slot = v;
        }
    }
    Ok(())
}

/// An empty in-memory SQLite database with the tables of `collections`
/// and the given views, for [`view::check`] (which reads SQLite's column
/// metadata).
fn scratch<'a>(
    collections: &[Collection],
    views: impl IntoIterator<Item = &'a Collection>,
) -> Result<Connection, SchemaError> {
    let conn = Connection::open_in_memory()?;
    for c in collections
        .iter()
        .filter(|c| c.kind != CollectionType::View)
    {
        conn.execute_batch(&ddl::create_table_sql(c.name.as_str(), c))?;
    }
    for v in views {
        conn.execute_batch(&view::create_sql(v))?;
    }
    Ok(conn)
}

/// The table and column a view's result column `name` comes from, or
/// `None` for a computed one. PostgreSQL keeps no such metadata for a
/// query, so this asks SQLite's on a scratch database of `collections` (the
/// view's query is SQLite's SQL in any case).
pub fn view_column_origin(
    collections: &[Collection],
    view: &Collection,
    name: &str,
) -> Result<Option<(String, String)>, SchemaError> {
    let views = collections
        .iter()
        .filter(|c| c.kind == CollectionType::View && c.id != view.id);
    let conn = scratch(collections, views)?;
    let stmt = conn.prepare(view::normalize(view.view_query()))?;
    Ok(stmt
        .columns_with_metadata()
        .find(|c| c.name() == name)
        .and_then(|c| Some((c.table_name()?.to_owned(), c.origin_name()?.to_owned()))))
}

/// Infers a view's fields from its query against `collections` (the
/// definitions as the current transaction has them, other than the view).
pub(in crate::schema) fn infer_view(
    collections: &[Collection],
    c: &mut Collection,
) -> Result<(), SchemaError> {
    let views: Vec<&Collection> = collections
        .iter()
        .filter(|o| o.kind == CollectionType::View)
        .collect();
    let conn = scratch(collections, views)?;
    let checked = view::check(&conn, c.view_query(), &table_lookup(collections), &c.fields)
        .map_err(|reason| invalid_view_query(&reason))?;
    c.fields = checked.fields;
    Ok(())
}

/// Checks a view collection's query against the current schema, as
/// `store::check_view_query` does on a SQLite reader: the inferred fields,
/// or why the query was refused.
pub(super) async fn check_view_query(
    registry: &Registry,
    collection: &Collection,
) -> Result<Result<Vec<Field>, String>, SchemaError> {
    let query = collection.view_query().to_owned();
    let previous = collection.fields.clone();
    let own_id = collection.id.clone();
    let before = defs_of(&registry.snapshot());
    tokio::task::spawn_blocking(move || {
        let collections = defs_after(&before, None, &own_id);
        let views: Vec<&Collection> = collections
            .iter()
            .filter(|c| c.kind == CollectionType::View)
            .collect();
        let conn = scratch(&collections, views)?;
        Ok(
            view::check(&conn, &query, &table_lookup(&collections), &previous)
                .map(|checked| checked.fields),
        )
    })
    .await
    .map_err(|_| SchemaError::Db(DbError::ReaderGone))?
}
