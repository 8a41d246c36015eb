//! Persistence of collection definitions in `_collections`, and the schema
//! changes themselves: each create, update or delete writes the definition
//! and alters the table in one `IMMEDIATE` transaction on the writer, then
//! reloads the registry. On PostgreSQL the same steps run through `Conn`
//! under the schema lock (`store/postgres.rs`, DDL in `ddl/postgres.rs`);
//! `import` has its PostgreSQL steps in `import.rs` over the same functions.

use super::collection::{Collection, CollectionInputError, CollectionType, Rules};
use super::field::{Field, FieldInputError, FieldKind};
use super::index::IndexDef;
use super::names::CollectionName;
use super::registry::{CompiledCollection, Registry, Snapshot};
use super::{SchemaError, ddl, view};
use crate::db::{Conn, Db, SqliteConn, ident};
use crate::rules::{Dialect, SqlValue};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;
use std::sync::Arc;

#[cfg(test)]
mod backends;
pub(super) mod postgres;
pub use postgres::view_column_origin;

/// Every collection definition in creation order (`rowid`, PostgreSQL's
/// `_fb_rowid`).
/// Mixed-case names are quoted: PostgreSQL folds the others to lower case.
const SELECT_ALL: &str = "SELECT id, name, type, system, fields, indexes, \"listRule\", \"viewRule\", \
     \"createRule\", \"updateRule\", \"deleteRule\", options, created, updated FROM _collections ORDER BY ";

/// Reads every collection definition.
pub fn load_all(conn: &Connection) -> Result<Vec<Collection>, SchemaError> {
    read_all(&mut SqliteConn(conn))
}

/// Reads every collection definition, on either engine.
pub fn read_all(conn: &mut dyn Conn) -> Result<Vec<Collection>, SchemaError> {
    let order = match conn.dialect() {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => crate::rules::postgres::ROWID_COLUMN,
    };
    let rows = conn.rows(&format!("{SELECT_ALL}{order}"), &[])?;
    rows.into_iter().map(collection_from_row).collect()
}

/// The cells of one stored row, taken in order, each as the type it must be.
struct Cells(std::vec::IntoIter<SqlValue>);

impl Cells {
    fn corrupt(what: &str) -> SchemaError {
        SchemaError::Corrupt(format!("_collections: {what}"))
    }

    fn optional_text(&mut self, what: &str) -> Result<Option<String>, SchemaError> {
        match self.0.next() {
            Some(SqlValue::Text(t)) => Ok(Some(t)),
            Some(SqlValue::Null) => Ok(None),
            _ => Err(Self::corrupt(what)),
        }
    }

    fn text(&mut self, what: &str) -> Result<String, SchemaError> {
        self.optional_text(what)?.ok_or_else(|| Self::corrupt(what))
    }

    /// A bool as both engines give it: 0 or 1.
    fn bool(&mut self, what: &str) -> Result<bool, SchemaError> {
        match self.0.next() {
            Some(SqlValue::Integer(i)) => Ok(i != 0),
            _ => Err(Self::corrupt(what)),
        }
    }
}

/// One `_collections` row, in [`SELECT_ALL`]'s column order.
fn collection_from_row(row: Vec<SqlValue>) -> Result<Collection, SchemaError> {
    let mut cells = Cells(row.into_iter());
    let id = cells.text("id")?;
    let name = cells.text("name")?;
    let kind = cells.text("type")?;
    let system = cells.bool("system")?;
    let fields = cells.text("fields")?;
    let indexes = cells.text("indexes")?;
    let [list, view, create, update, delete] = [
        cells.optional_text("listRule")?,
        cells.optional_text("viewRule")?,
        cells.optional_text("createRule")?,
        cells.optional_text("updateRule")?,
        cells.optional_text("deleteRule")?,
    ];
    let options = cells.text("options")?;
    let created = cells.text("created")?;
    let updated = cells.text("updated")?;
    Ok(Collection {
        kind: match kind.as_str() {
            "auth" => CollectionType::Auth,
            "view" => CollectionType::View,
            _ => CollectionType::Base,
        },
        name: CollectionName::trusted(name),
        system,
        fields: parse_stored_fields(&id, &fields)?,
        indexes: parse_stored_indexes(&id, &indexes)?,
        rules: Rules {
            list,
            view,
            create,
            update,
            delete,
        },
        options: serde_json::from_str(&options)
            .map_err(|e| SchemaError::Corrupt(format!("{id}: options: {e}")))?,
        id,
        created,
        updated,
    })
}

fn parse_stored_fields(id: &str, text: &str) -> Result<Vec<Field>, SchemaError> {
    let values: Vec<Value> = serde_json::from_str(text)
        .map_err(|e| SchemaError::Corrupt(format!("{id}: fields: {e}")))?;
    values
        .iter()
        .map(|v| {
            Field::from_json(v).map_err(|e| match e {
                FieldInputError::Format(m) => SchemaError::Corrupt(format!("{id}: field: {m}")),
                FieldInputError::Invalid(e) => SchemaError::Corrupt(format!("{id}: field: {e}")),
            })
        })
        .collect()
}

fn parse_stored_indexes(id: &str, text: &str) -> Result<Vec<IndexDef>, SchemaError> {
    let values: Vec<String> = serde_json::from_str(text)
        .map_err(|e| SchemaError::Corrupt(format!("{id}: indexes: {e}")))?;
    values
        .iter()
        .map(|sql| IndexDef::parse(sql).map_err(|e| SchemaError::Corrupt(format!("{id}: {e}"))))
        .collect()
}

/// Loads all collections into a fresh registry snapshot.
pub fn load_snapshot(conn: &Connection) -> Result<Snapshot, SchemaError> {
    read_snapshot(&mut SqliteConn(conn))
}

/// [`load_snapshot`] on either engine.
pub fn read_snapshot(conn: &mut dyn Conn) -> Result<Snapshot, SchemaError> {
    Snapshot::build(read_all(conn)?).map_err(SchemaError::Corrupt)
}

/// Stores a definition (insert, or update of an existing id), on either
/// engine: mixed-case columns quoted, JSON columns fed JSON text.
pub(super) fn save(conn: &mut dyn Conn, c: &Collection) -> Result<(), SchemaError> {
    let fields = Value::Array(c.fields.iter().map(Field::to_json).collect()).to_string();
    let indexes = Value::Array(
        c.indexes
            .iter()
            .map(|i| Value::String(i.to_pb_sql(&c.name)))
            .collect(),
    )
    .to_string();
    let options = Value::Object(c.options.clone()).to_string();
    let text = |s: &str| SqlValue::Text(s.to_owned());
    let rule = |r: &Option<String>| r.as_deref().map_or(SqlValue::Null, text);
    conn.execute(
        "INSERT INTO _collections (id, name, type, system, fields, indexes, \"listRule\", \"viewRule\", \"createRule\", \
         \"updateRule\", \"deleteRule\", options, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, fields = excluded.fields, indexes = excluded.indexes, \
         \"listRule\" = excluded.\"listRule\", \"viewRule\" = excluded.\"viewRule\", \"createRule\" = excluded.\"createRule\", \
         \"updateRule\" = excluded.\"updateRule\", \"deleteRule\" = excluded.\"deleteRule\", options = excluded.options, \
         updated = excluded.updated",
        &[
            text(&c.id),
            text(c.name.as_str()),
            text(c.kind.as_str()),
            SqlValue::Integer(i64::from(c.system)),
            SqlValue::Text(fields),
            SqlValue::Text(indexes),
            rule(&c.rules.list),
            rule(&c.rules.view),
            rule(&c.rules.create),
            rule(&c.rules.update),
            rule(&c.rules.delete),
            SqlValue::Text(options),
            text(&c.created),
            text(&c.updated),
        ],
    )?;
    Ok(())
}

fn ensure_unique_name(tx: &Connection, c: &Collection) -> Result<(), SchemaError> {
    ensure_name_free(tx, c, &c.id)
}

/// Refuses `c`'s name when a collection other than `own_id` (or another
/// table or index) has it; a create passes "" so that every holder counts.
fn ensure_name_free(tx: &Connection, c: &Collection, own_id: &str) -> Result<(), SchemaError> {
    let clash: Option<String> = tx
        .query_row(
            "SELECT id FROM _collections WHERE name = ?1 COLLATE NOCASE AND id != ?2",
            params![c.name.as_str(), own_id],
            |r| r.get(0),
        )
        .optional()?;
    let table_clash: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name = ?1 COLLATE NOCASE AND tbl_name != ?2 COLLATE NOCASE)",
        params![c.name.as_str(), c.name.as_str()],
        |r| r.get(0),
    )?;
    if clash.is_some() || table_clash {
        return Err(name_taken());
    }
    Ok(())
}

/// The refusal of a collection name already taken (case-insensitively).
pub(super) fn name_taken() -> SchemaError {
    let mut e = ValidationErrors::new();
    e.add(
        "name",
        FieldError::new(
            "validation_collection_name_exists",
            "Collection name must be unique (case insensitive).",
        ),
    );
    SchemaError::Invalid(e)
}

/// The refusal of a collection id already taken.
pub(super) fn id_taken() -> SchemaError {
    let mut e = ValidationErrors::new();
    e.add(
        "id",
        FieldError::new("validation_not_unique", "Value must be unique."),
    );
    SchemaError::Invalid(e)
}

/// The field error of an index name used by another table or index.
pub(super) fn index_name_taken() -> FieldError {
    FieldError::new(
        "validation_duplicated_index_name",
        "The index name is already used by another table or index.",
    )
}

/// Index names share SQLite's namespace with every table and index: refuse
/// names taken by anything other than this collection's own (old) indexes.
fn ensure_free_index_names(
    tx: &Connection,
    c: &Collection,
    old_table: Option<&str>,
) -> Result<(), SchemaError> {
    let mut errors = ValidationErrors::new();
    for (i, def) in c.indexes.iter().enumerate() {
        let owner: Option<(String, String)> = tx
            .query_row(
                "SELECT type, tbl_name FROM sqlite_master WHERE name = ?1 COLLATE NOCASE",
                [&def.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let ours = matches!((&owner, old_table), (Some((kind, table)), Some(old)) if kind == "index" && table.eq_ignore_ascii_case(old));
        if owner.is_some() && !ours {
            errors.add(i.to_string(), index_name_taken());
        }
    }
    let mut outer = ValidationErrors::new();
    outer.nest("indexes", errors);
    outer.into_result().map_err(SchemaError::Invalid)
}

/// A DDL statement built from a validated definition failed anyway (a clash
/// SQLite knows about and we did not foresee): report it as a 400, not a 500.
fn ddl_failed(e: rusqlite::Error) -> SchemaError {
    schema_refused("SQLite", &e.to_string())
}

/// The 400 for a DDL statement `engine` refused, with its reason.
fn schema_refused(engine: &str, reason: &str) -> SchemaError {
    tracing::warn!(error = %reason, "schema change refused by {engine}");
    let mut errors = ValidationErrors::new();
    errors.add(
        "fields",
        FieldError::new(
            "validation_invalid_schema",
            format!("The schema change could not be applied: {reason}."),
        ),
    );
    SchemaError::Invalid(errors)
}

/// Checks what needs the other collections: relation targets exist.
pub(super) fn check_relations(c: &Collection, snapshot: &Snapshot) -> Result<(), SchemaError> {
    let mut errors = ValidationErrors::new();
    for (i, field) in c.fields.iter().enumerate() {
        if let FieldKind::Relation { collection_id, .. } = &field.kind
            && collection_id != &c.id
            && snapshot
                .get(collection_id)
                .is_none_or(|t| &t.id != collection_id)
        {
            let mut inner = ValidationErrors::new();
            inner.add(
                "collectionId",
                FieldError::new(
                    "validation_missing_collection",
                    "The related collection doesn't exist.",
                ),
            );
            errors.nest(i.to_string(), inner);
        }
    }
    let mut outer = ValidationErrors::new();
    outer.nest("fields", errors);
    outer.into_result().map_err(SchemaError::Invalid)
}

fn input_error(e: CollectionInputError) -> SchemaError {
    match e {
        CollectionInputError::Format(m) => SchemaError::Format(m),
        CollectionInputError::Invalid(e) => SchemaError::Invalid(e),
    }
}

/// Creates a collection and its table.
pub async fn create(
    db: &Db,
    registry: &Registry,
    input: Value,
) -> Result<Arc<CompiledCollection>, SchemaError> {
    let mut collection = Collection::from_create(&input).map_err(input_error)?;
    infer_view(db, registry, &mut collection).await?;
    check_relations(&collection, &registry.snapshot())?;
    super::collection::check_rules(&collection, &registry.snapshot())
        .map_err(SchemaError::Invalid)?;
    let now = crate::clock::now();
    collection.created = now.clone();
    collection.updated = now;
    let id = collection.id.clone();
    if db.dialect() == Dialect::Postgres {
        let snapshot = postgres::commit(db, registry, move |conn, _| {
            postgres::create_in(conn, &collection)
        })
        .await?;
        return saved(&snapshot, &id);
    }
    let snapshot = commit_change(db, registry, move |tx| create_in(tx, &collection)).await?;
    saved(&snapshot, &id)
}

/// The create step inside an open transaction: the id and name must be
/// free, then the definition is stored and its table (or view) created.
pub(super) fn create_in(tx: &Connection, collection: &Collection) -> Result<(), SchemaError> {
    // The name first, as PocketBase: a default id derives from the name, so
    // a taken name would otherwise surface as a puzzling taken `id`.
    ensure_name_free(tx, collection, "")?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM _collections WHERE id = ?1)",
        [&collection.id],
        |r| r.get(0),
    )?;
    if exists {
        return Err(id_taken());
    }
    ensure_free_index_names(tx, collection, None)?;
    save(&mut SqliteConn(tx), collection)?;
    ddl::create(tx, collection).map_err(|e| view_or_ddl_failed(collection, e))?;
    Ok(())
}

/// Applies a partial update to a collection, altering its table to match.
pub async fn update(
    db: &Db,
    registry: &Registry,
    existing: Arc<CompiledCollection>,
    input: Value,
) -> Result<Arc<CompiledCollection>, SchemaError> {
    let Value::Object(obj) = input else {
        return Err(SchemaError::Format("expected an object".into()));
    };
    let old = existing.def.clone();
    let mut new = old.clone();
    new.apply(&obj).map_err(input_error)?;
    infer_view(db, registry, &mut new).await?;
    check_relations(&new, &registry.snapshot())?;
    super::collection::check_rules(&new, &registry.snapshot()).map_err(SchemaError::Invalid)?;
    new.updated = crate::clock::now();
    let id = new.id.clone();
    if db.dialect() == Dialect::Postgres {
        let snapshot = postgres::commit(db, registry, move |conn, before| {
            postgres::update_in(conn, before, &new)
        })
        .await?;
        return saved(&snapshot, &id);
    }
    let before = defs_of(&registry.snapshot());
    let snapshot =
        commit_change(db, registry, move |tx| update_in(tx, &before, &old, &new)).await?;
    saved(&snapshot, &id)
}

/// The update step inside an open transaction. `before` holds every
/// definition as stored before this step; the other views are dropped and
/// re-checked around the table change.
pub(super) fn update_in(
    tx: &Connection,
    before: &[Collection],
    old: &Collection,
    new: &Collection,
) -> Result<(), SchemaError> {
    ensure_unique_name(tx, new)?;
    ensure_free_index_names(tx, new, Some(old.name.as_str()))?;
    let views = drop_other_views(tx, before, &new.id)?;
    save(&mut SqliteConn(tx), new)?;
    ddl::alter(tx, old, new).map_err(|e| view_or_ddl_failed(new, e))?;
    recreate_views(tx, before, Some(new), &new.id, views, false)?;
    Ok(())
}

/// Every definition in a snapshot, in creation order.
pub(super) fn defs_of(snapshot: &Snapshot) -> Vec<Collection> {
    snapshot.all().iter().map(|c| c.def.clone()).collect()
}

/// Checks a create (`existing` = None) or an update of `existing` exactly as
/// [`create`] / [`update`] would, DDL included, then rolls everything back.
/// The admin panel calls this as the user types a rule or edits fields.
pub async fn validate(
    db: &Db,
    registry: &Registry,
    existing: Option<Arc<CompiledCollection>>,
    input: Value,
) -> Result<(), SchemaError> {
    let (old, new) = match existing {
        None => (None, Collection::from_create(&input).map_err(input_error)?),
        Some(existing) => {
            let Value::Object(obj) = input else {
                return Err(SchemaError::Format("expected an object".into()));
            };
            let old = existing.def.clone();
            let mut new = old.clone();
            new.apply(&obj).map_err(input_error)?;
            (Some(old), new)
        }
    };
    let mut new = new;
    infer_view(db, registry, &mut new).await?;
    let before = defs_of(&registry.snapshot());
    check_relations(&new, &registry.snapshot())?;
    super::collection::check_rules(&new, &registry.snapshot()).map_err(SchemaError::Invalid)?;
    if db.dialect() == Dialect::Postgres {
        return postgres::validate(db, old.is_some(), new).await;
    }
    db.write(move |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The very steps a create or update runs (a taken name included).
        match &old {
            None => create_in(&tx, &new)?,
            Some(old) => update_in(&tx, &before, old, &new)?,
        }
        load_snapshot(&tx)?;
        // Dropping the transaction rolls it back: nothing is stored.
        drop(tx);
        Ok::<_, SchemaError>(())
    })
    .await
}

/// The system tables holding per-record auth state (OAuth2 links, MFA and
/// OTP rows, login origins), each keyed by `collectionRef` and `recordRef`.
pub const AUTH_STATE_TABLES: [&str; 4] = ["_externalAuths", "_mfas", "_otps", "_authOrigins"];

/// Deletes a collection and its table, with the auth state of its records
/// (else a later collection reusing its id would inherit links and codes).
/// Refused for system collections and for collections other collections
/// still point at.
pub async fn delete(
    db: &Db,
    registry: &Registry,
    collection: Arc<CompiledCollection>,
) -> Result<(), SchemaError> {
    if collection.system {
        return Err(SchemaError::System);
    }
    let snapshot = registry.snapshot();
    if let Some(referrer) = snapshot.all().iter().find(|other| {
        other.id != collection.id
            && other.fields.iter().any(|f| matches!(&f.kind, FieldKind::Relation { collection_id, .. } if collection_id == &collection.id))
    }) {
        return Err(SchemaError::Referenced(referrer.name.to_string()));
    }
    let def = collection.def.clone();
    if db.dialect() == Dialect::Postgres {
        postgres::commit(db, registry, move |conn, before| {
            postgres::delete_in(conn, before, &def)
        })
        .await?;
        return Ok(());
    }
    let before = defs_of(&snapshot);
    commit_change(db, registry, move |tx| delete_in(tx, &before, &def)).await?;
    Ok(())
}

/// The delete step inside an open transaction: the definition, the auth
/// state of its records and its table go; the other views are re-checked.
pub(super) fn delete_in(
    tx: &Connection,
    before: &[Collection],
    def: &Collection,
) -> Result<(), SchemaError> {
    let views = drop_other_views(tx, before, &def.id)?;
    tx.execute("DELETE FROM _collections WHERE id = ?1", [&def.id])?;
    for table in AUTH_STATE_TABLES {
        tx.execute(
            &format!("DELETE FROM {} WHERE collectionRef = ?1", ident(table)),
            [&def.id],
        )?;
    }
    ddl::drop(tx, def)?;
    recreate_views(tx, before, None, &def.id, views, true)?;
    Ok(())
}

/// For a view collection: checks its query on a read-only reader and sets
/// the fields inferred from it (`schema::view`). Other collections pass.
async fn infer_view(
    db: &Db,
    registry: &Registry,
    collection: &mut Collection,
) -> Result<(), SchemaError> {
    if collection.kind != CollectionType::View {
        return Ok(());
    }
    let query = collection.view_query().to_owned();
    if view::normalize(&query).is_empty() {
        let mut e = ValidationErrors::new();
        e.add(
            view::QUERY_KEY,
            FieldError::new("validation_required", "Cannot be blank."),
        );
        return Err(SchemaError::Invalid(e));
    }
    match check_view_query(db, registry, collection).await? {
        Ok(fields) => {
            collection.fields = fields;
            Ok(())
        }
        Err(reason) => Err(invalid_view_query(&reason)),
    }
}

/// Runs `view::check` for `collection`'s query on a read-only reader: the
/// inferred fields, or why the query was refused.
async fn check_view_query(
    db: &Db,
    registry: &Registry,
    collection: &Collection,
) -> Result<Result<Vec<Field>, String>, SchemaError> {
    if db.dialect() == Dialect::Postgres {
        return postgres::check_view_query(registry, collection).await;
    }
    let query = collection.view_query().to_owned();
    let snapshot = registry.snapshot();
    let previous = collection.fields.clone();
    let own_id = collection.id.clone();
    db.read(move |conn| {
        let collections = defs_after(&defs_of(&snapshot), None, &own_id);
        Ok::<_, SchemaError>(
            view::check(conn, &query, &table_lookup(&collections), &previous)
                .map(|checked| checked.fields),
        )
    })
    .await
}

/// `POST /api/collections/meta/dry-run-view`: checks `query` exactly as a
/// view collection's and returns an unsaved view collection (named
/// `temp_view_…`) with the inferred fields, or why the query was refused.
/// Nothing is written.
pub async fn dry_run_view(
    db: &Db,
    registry: &Registry,
    query: &str,
) -> Result<Result<Collection, String>, SchemaError> {
    let name = format!(
        "temp_view_{}",
        super::autogen::random_string("abcdefghijklmnopqrstuvwxyz0123456789", 5)
    );
    let mut temp = Collection::from_create(&serde_json::json!({
        "name": name, "type": "view", "viewQuery": query,
    }))
    .map_err(input_error)?;
    Ok(match check_view_query(db, registry, &temp).await? {
        Ok(fields) => {
            temp.fields = fields;
            Ok(temp)
        }
        Err(reason) => Err(reason),
    })
}

pub(super) fn invalid_view_query(reason: &str) -> SchemaError {
    // As PocketBase: the raw reason, cut to 500 bytes at a char boundary.
    let mut end = reason.len().min(500);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut e = ValidationErrors::new();
    e.add(
        view::QUERY_KEY,
        FieldError::new(
            "validation_invalid_view_query",
            // PocketBase's messages end in a full stop.
            format!("Invalid query - {}.", reason[..end].trim_end_matches('.')),
        ),
    );
    SchemaError::Invalid(e)
}

/// A view's `CREATE VIEW` failing is a bad query; anything else is [`ddl_failed`].
fn view_or_ddl_failed(c: &Collection, e: rusqlite::Error) -> SchemaError {
    if c.kind == CollectionType::View {
        invalid_view_query(&e.to_string())
    } else {
        ddl_failed(e)
    }
}

/// Every definition as it will be once `changed` (None: deleted) replaces
/// the collection `id`.
fn defs_after(before: &[Collection], changed: Option<&Collection>, id: &str) -> Vec<Collection> {
    let mut out: Vec<Collection> = before.iter().filter(|c| c.id != id).cloned().collect();
    out.extend(changed.cloned());
    out
}

/// The collection stored in a table (views are traced to their tables by SQLite).
pub(super) fn table_lookup(collections: &[Collection]) -> impl Fn(&str) -> Option<Collection> + '_ {
    move |table| {
        collections
            .iter()
            .find(|c| c.kind != CollectionType::View && c.name.as_str().eq_ignore_ascii_case(table))
            .cloned()
    }
}

/// Drops the SQL view of every view collection other than `id`, so a table
/// rebuild or drop never trips over a view that names it; [`recreate_views`]
/// brings them back. Returns them in creation order (a view may use an
/// earlier one).
fn drop_other_views(
    tx: &Connection,
    before: &[Collection],
    id: &str,
) -> Result<Vec<Collection>, SchemaError> {
    let views: Vec<Collection> = before
        .iter()
        .filter(|c| c.kind == CollectionType::View && c.id != id)
        .cloned()
        .collect();
    for v in &views {
        tx.execute(&view::drop_sql(v.name.as_str()), [])?;
    }
    Ok(views)
}

/// Re-checks and re-creates each dropped view against the changed schema,
/// storing re-inferred fields. A view the change would break refuses the
/// whole change (PocketBase refuses such a delete; for an update it saves
/// and leaves the view broken, which we do not).
fn recreate_views(
    tx: &Connection,
    before: &[Collection],
    changed: Option<&Collection>,
    id: &str,
    views: Vec<Collection>,
    deleting: bool,
) -> Result<(), SchemaError> {
    let mut collections = defs_after(before, changed, id);
    for mut v in views {
        let broken = |reason: String| {
            tracing::info!(view = %v.name, %reason, "schema change refused: a view depends on it");
            SchemaError::ViewDependency {
                view: v.name.to_string(),
                deleting,
            }
        };
        let checked = view::check(tx, v.view_query(), &table_lookup(&collections), &v.fields)
            .map_err(&broken)?;
        if checked.fields != v.fields {
            v.fields = checked.fields;
            save(&mut SqliteConn(tx), &v)?;
        }
        ddl::create(tx, &v).map_err(|e| broken(e.to_string()))?;
        if let Some(slot) = collections.iter_mut().find(|c| c.id == v.id) {
            *slot = v;
        }
    }
    Ok(())
}

/// Runs `change` in an IMMEDIATE transaction on the writer, commits, and installs
/// the reloaded registry snapshot (unless a later change's is already in),
/// returning the registry's current one.
async fn commit_change(
    db: &Db,
    registry: &Registry,
    change: impl FnOnce(&Transaction) -> Result<(), SchemaError> + Send + 'static,
) -> Result<Arc<Snapshot>, SchemaError> {
    let (generation, snapshot) = db
        .write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            change(&tx)?;
            // Compile before committing: a definition that cannot compile is never stored.
            let snapshot = load_snapshot(&tx)?;
            tx.commit()?;
            // On the one writer thread: generations follow commits, so two
            // changes coming back in either order install the later one.
            Ok::<_, SchemaError>((super::registry::next_generation(), snapshot))
        })
        .await?;
    registry.install(generation, snapshot);
    Ok(registry.snapshot())
}

fn saved(snapshot: &Snapshot, id: &str) -> Result<Arc<CompiledCollection>, SchemaError> {
    snapshot.get(id).ok_or(SchemaError::NotFound)
}

/// Keys the collection list may filter and sort on.
pub const LISTABLE_COLUMNS: [&str; 6] = ["id", "created", "updated", "name", "system", "type"];

/// Ids of the collections matching an already compiled WHERE clause, in `order`.
pub fn query_ids(
    conn: &mut dyn Conn,
    where_sql: &str,
    order_sql: &str,
    params: &[SqlValue],
    limit: i64,
    offset: i64,
) -> Result<(Vec<String>, i64), SchemaError> {
    let sql = format!(
        "SELECT id FROM _collections WHERE {where_sql} ORDER BY {order_sql} LIMIT ? OFFSET ?"
    );
    let mut bound = params.to_vec();
    bound.push(SqlValue::Integer(limit));
    bound.push(SqlValue::Integer(offset));
    let mut ids = Vec::new();
    for row in conn.rows(&sql, &bound)? {
        match row.into_iter().next() {
            Some(SqlValue::Text(id)) => ids.push(id),
            other => {
                return Err(SchemaError::Corrupt(format!(
                    "_collections holds an id that is not text: {other:?}"
                )));
            }
        }
    }
    let count_sql = format!("SELECT count(*) FROM _collections WHERE {where_sql}");
    let total = conn.integer(&count_sql, params)?;
    Ok((ids, total))
}
