//! `PUT /api/collections/import`: replaces the schema with a list of
//! collection definitions in one transaction, as PocketBase's
//! `ImportCollections` does. Each entry is matched to an existing
//! collection by `id` (or, without one, by name) and applied on top of it as
//! an update; unmatched entries are created. With `deleteMissing`, every
//! non-system collection left out is deleted with its records, and the
//! fields a matched entry leaves out are dropped.
//!
//! Every step goes through `store`'s own create, update and delete steps
//! (`create_in`, `update_in`, `delete_in`) inside one `IMMEDIATE`
//! transaction, so an import can do nothing a sequence of single changes
//! could not, and a failure anywhere leaves nothing changed. Views are
//! handled last: the views being replaced or deleted are dropped first,
//! tables are changed, then imported views are re-created against the new
//! tables. The registry is reloaded once, after the commit. On PostgreSQL
//! the same plan runs through `store::postgres`'s steps under the schema
//! lock (`Steps` is the seam), as do JavaScript migrations' steps
//! ([`import_in`], [`delete_in_tx`]) inside the migration's transaction.

use super::collection::{Collection, CollectionInputError, CollectionType};
use super::registry::{Registry, Snapshot};
use super::store::{
    self, create_in, delete_in, load_all, load_snapshot, read_all, read_snapshot, update_in,
};
use super::{SchemaError, view};
use crate::db::{Conn, Db, LockKey};
use crate::rules::Dialect;
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::{Connection, TransactionBehavior};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Most collections one import may hold.
pub const MAX_IMPORT_COLLECTIONS: usize = 1000;

/// Why an import was refused. Nothing was changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The list is empty (PocketBase refuses it so that `deleteMissing`
    /// cannot wipe every collection by accident).
    #[error("no collections to import")]
    Empty,
    /// One collection could not be applied; the message names it.
    #[error("import failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// One import entry resolved against the current schema.
#[derive(Clone)]
struct Planned {
    /// The stored definition this entry updates (None: a new collection).
    existing: Option<Collection>,
    new: Collection,
}

/// Applies `items` (see the module doc). Returns the ids of the collections
/// deleted, whose stored files the caller removes after the commit.
pub async fn import(
    db: &Db,
    registry: &Registry,
    items: Vec<Map<String, Value>>,
    delete_missing: bool,
) -> Result<Vec<String>, ImportError> {
    if items.is_empty() {
        return Err(ImportError::Empty);
    }
    if items.len() > MAX_IMPORT_COLLECTIONS {
        return Err(ImportError::Failed(format!(
            "An import may hold at most {MAX_IMPORT_COLLECTIONS} collections."
        )));
    }
    let plan = plan(&registry.snapshot(), items, delete_missing)?;
    if db.dialect() == Dialect::Postgres {
        let (generation, snapshot, deleted) = db
            .write_conn(move |conn| {
                conn.lock(LockKey::Schema)?;
                let generation = super::registry::next_generation();
                let mut steps = PostgresSteps(conn);
                let deleted = apply(&mut steps, plan.clone(), delete_missing)?;
                let snapshot = check_final(&mut steps)?;
                // The other nodes reload their registry once this commits.
                crate::db::notify::announce(steps.0, crate::db::notify::Cache::Schema)
                    .map_err(SchemaError::from)?;
                Ok::<_, ImportError>((generation, snapshot, deleted))
            })
            .await?;
        registry.install(generation, snapshot);
        return Ok(deleted);
    }
    let (generation, snapshot, deleted) = db
        .write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(SchemaError::from)?;
            let deleted = apply(&mut SqliteSteps(&tx), plan, delete_missing)?;
            let snapshot = check_final(&mut SqliteSteps(&tx))?;
            tx.commit().map_err(SchemaError::from)?;
            // On the one writer thread: generations follow commits.
            Ok::<_, ImportError>((super::registry::next_generation(), snapshot, deleted))
        })
        .await?;
    registry.install(generation, snapshot);
    Ok(deleted)
}

/// The import steps inside a transaction the caller holds, on either
/// engine (JavaScript migrations: `app.save(collection)` and
/// `app.importCollections`). With `exact_fields` the fields of an updated
/// collection are exactly those listed (a saved collection object holds all
/// of them). On PostgreSQL the transaction takes the schema lock and
/// announces the change to the other nodes (at its commit). Returns the
/// schema as the transaction now has it, checked as a whole.
pub fn import_in(
    conn: &mut dyn Conn,
    items: Vec<Map<String, Value>>,
    delete_missing: bool,
    exact_fields: bool,
) -> Result<Snapshot, ImportError> {
    if items.len() > MAX_IMPORT_COLLECTIONS {
        return Err(ImportError::Failed(format!(
            "An import may hold at most {MAX_IMPORT_COLLECTIONS} collections."
        )));
    }
    conn.lock(LockKey::Schema)?;
    let plan = plan(&read_snapshot(conn)?, items, exact_fields)?;
    let snapshot = match conn.sqlite() {
        Some(tx) => {
            let mut steps = SqliteSteps(tx);
            apply(&mut steps, plan, delete_missing)?;
            check_final(&mut steps)?
        }
        None => {
            let mut steps = PostgresSteps(conn);
            apply(&mut steps, plan, delete_missing)?;
            check_final(&mut steps)?
        }
    };
    crate::db::notify::announce(conn, crate::db::notify::Cache::Schema)?;
    Ok(snapshot)
}

/// The store's steps an import is made of, on one engine.
trait Steps {
    fn load_all(&mut self) -> Result<Vec<Collection>, SchemaError>;
    fn create(&mut self, new: &Collection) -> Result<(), SchemaError>;
    fn update(&mut self, old: &Collection, new: &Collection) -> Result<(), SchemaError>;
    fn delete(&mut self, def: &Collection) -> Result<(), SchemaError>;
    /// Sets a view's fields from its query against the tables as they are now.
    fn infer_view(&mut self, c: &mut Collection) -> Result<(), SchemaError>;
    /// The schema as the transaction now has it, compiled.
    fn snapshot(&mut self) -> Result<Snapshot, SchemaError>;
}

struct SqliteSteps<'a>(&'a Connection);

impl Steps for SqliteSteps<'_> {
    fn load_all(&mut self) -> Result<Vec<Collection>, SchemaError> {
        load_all(self.0)
    }
    fn create(&mut self, new: &Collection) -> Result<(), SchemaError> {
        create_in(self.0, new)
    }
    fn update(&mut self, old: &Collection, new: &Collection) -> Result<(), SchemaError> {
        update_in(self.0, &load_all(self.0)?, old, new)
    }
    fn delete(&mut self, def: &Collection) -> Result<(), SchemaError> {
        delete_in(self.0, &load_all(self.0)?, def)
    }
    fn infer_view(&mut self, c: &mut Collection) -> Result<(), SchemaError> {
        infer_view_in(self.0, c)
    }
    fn snapshot(&mut self) -> Result<Snapshot, SchemaError> {
        load_snapshot(self.0)
    }
}

struct PostgresSteps<'a, 'c>(&'a mut (dyn Conn + 'c));

impl Steps for PostgresSteps<'_, '_> {
    fn load_all(&mut self) -> Result<Vec<Collection>, SchemaError> {
        read_all(self.0)
    }
    fn create(&mut self, new: &Collection) -> Result<(), SchemaError> {
        store::postgres::create_in(self.0, new)
    }
    fn update(&mut self, _old: &Collection, new: &Collection) -> Result<(), SchemaError> {
        let before = read_all(self.0)?;
        store::postgres::update_in(self.0, &before, new)
    }
    fn delete(&mut self, def: &Collection) -> Result<(), SchemaError> {
        let before = read_all(self.0)?;
        store::postgres::delete_in(self.0, &before, def)
    }
    fn infer_view(&mut self, c: &mut Collection) -> Result<(), SchemaError> {
        require_view_query(c)?;
        let others: Vec<Collection> = read_all(self.0)?
            .into_iter()
            .filter(|o| o.id != c.id)
            .collect();
        store::postgres::infer_view(&others, c)
    }
    fn snapshot(&mut self) -> Result<Snapshot, SchemaError> {
        Snapshot::build(read_all(self.0)?).map_err(SchemaError::Corrupt)
    }
}

/// Deletes collection `id_or_name` inside a transaction the caller holds,
/// on either engine, refused as the API refuses it (system collections,
/// collections others still refer to). On PostgreSQL under the schema lock,
/// announced to the other nodes at the commit.
pub fn delete_in_tx(conn: &mut dyn Conn, id_or_name: &str) -> Result<(), SchemaError> {
    conn.lock(LockKey::Schema)?;
    let before = read_all(conn)?;
    let def = before
        .iter()
        .find(|c| c.id == id_or_name || c.name.as_str().eq_ignore_ascii_case(id_or_name))
        .ok_or(SchemaError::NotFound)?;
    if def.system {
        return Err(SchemaError::System);
    }
    if let Some(referrer) = before.iter().find(|other| {
        other.id != def.id
            && other.fields.iter().any(|f| {
                matches!(&f.kind, super::FieldKind::Relation { collection_id, .. } if collection_id == &def.id)
            })
    }) {
        return Err(SchemaError::Referenced(referrer.name.to_string()));
    }
    match conn.sqlite() {
        Some(tx) => delete_in(tx, &before, def)?,
        None => store::postgres::delete_in(conn, &before, def)?,
    }
    crate::db::notify::announce(conn, crate::db::notify::Cache::Schema)?;
    Ok(())
}

impl From<crate::db::DbError> for ImportError {
    fn from(e: crate::db::DbError) -> Self {
        ImportError::Schema(SchemaError::Db(e))
    }
}

/// Resolves every entry against `snapshot` and parses it, refusing an entry
/// that names the same collection as an earlier one.
fn plan(
    snapshot: &Snapshot,
    items: Vec<Map<String, Value>>,
    exact_fields: bool,
) -> Result<Vec<Planned>, ImportError> {
    let now = crate::clock::now();
    let mut planned: Vec<Planned> = Vec::with_capacity(items.len());
    for mut item in items {
        let raw_id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        let raw_name = item.get("name").and_then(Value::as_str).unwrap_or_default();
        let label = (raw_name.to_owned(), raw_id.to_owned());
        let existing = if raw_id.is_empty() {
            snapshot
                .get(raw_name)
                .filter(|c| c.name.as_str().eq_ignore_ascii_case(raw_name))
        } else {
            snapshot.get(raw_id).filter(|c| c.id == raw_id)
        };
        let result = match &existing {
            Some(existing) => {
                merge_fields(existing, &mut item, exact_fields);
                let mut new = existing.def.clone();
                new.apply(&item).map(|()| new)
            }
            None => Collection::from_create(&Value::Object(item)),
        };
        let mut new = result.map_err(|e| match e {
            CollectionInputError::Invalid(errors) => failed(&label.0, &label.1, &errors),
            CollectionInputError::Format(reason) => ImportError::Failed(format!(
                "Failed to load the data of collection {:?}: {reason}.",
                label.0
            )),
        })?;
        if existing.is_none() {
            new.created = now.clone();
        }
        new.updated = now.clone();
        if planned.iter().any(|p| {
            p.new.id == new.id || p.new.name.as_str().eq_ignore_ascii_case(new.name.as_str())
        }) {
            return Err(ImportError::Failed(format!(
                "Collection {:?} ({}) is listed more than once.",
                new.name.as_str(),
                new.id
            )));
        }
        planned.push(Planned {
            existing: existing.map(|c| c.def.clone()),
            new,
        });
    }
    Ok(planned)
}

/// Prepares the `fields` of an entry that updates `existing`, as PocketBase
/// does: a field sent without its id but with the name and type of an
/// existing one keeps that field's id (its column and data stay); without
/// `deleteMissing` the existing fields left out are kept, with it they go
/// (system fields always stay, `Collection::apply` re-adds them).
fn merge_fields(existing: &Collection, item: &mut Map<String, Value>, delete_missing: bool) {
    if existing.kind == CollectionType::View {
        return; // a view's fields come from its query
    }
    let Some(Value::Array(fields)) = item.get_mut("fields") else {
        if delete_missing {
            item.insert("fields".into(), Value::Array(Vec::new()));
        }
        return;
    };
    for field in fields.iter_mut() {
        let Value::Object(f) = field else { continue };
        let id = f.get("id").and_then(Value::as_str).unwrap_or_default();
        if existing.fields.iter().any(|e| e.id == id) {
            continue;
        }
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let kind = f.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Some(same) = existing
            .fields
            .iter()
            .find(|e| e.name.as_str() == name && e.kind.type_name() == kind)
        {
            f.insert("id".into(), Value::String(same.id.clone()));
        }
    }
    if !delete_missing {
        let sent: HashSet<String> = fields
            .iter()
            .filter_map(|f| f.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        // System fields are left to `Collection::apply`, which re-adds them in place.
        for old in existing
            .fields
            .iter()
            .filter(|f| !f.system && !sent.contains(&f.id))
        {
            fields.push(old.to_json());
        }
    }
}

/// Runs the plan inside `tx`: views to be replaced or deleted go first,
/// then the other collections left out (with `deleteMissing`), then tables
/// are created or updated, then the imported views are created.
fn apply(
    steps: &mut dyn Steps,
    plan: Vec<Planned>,
    delete_missing: bool,
) -> Result<Vec<String>, ImportError> {
    let before = steps.load_all()?;
    let imported: HashSet<&str> = plan.iter().map(|p| p.new.id.as_str()).collect();
    let left_out =
        |c: &&Collection| delete_missing && !c.system && !imported.contains(c.id.as_str());
    let replaced_view =
        |c: &&Collection| c.kind == CollectionType::View && imported.contains(c.id.as_str());
    // Later views may read earlier ones: drop them newest first.
    let views: Vec<&Collection> = before
        .iter()
        .rev()
        .filter(|c| c.kind == CollectionType::View && (left_out(c) || replaced_view(c)))
        .collect();
    let tables: Vec<&Collection> = before
        .iter()
        .filter(|c| c.kind != CollectionType::View && left_out(c))
        .collect();
    let mut deleted = Vec::new();
    for def in views.into_iter().chain(tables) {
        steps.delete(def).map_err(|e| step_failed(def, e))?;
        if !imported.contains(def.id.as_str()) {
            deleted.push(def.id.clone());
        }
    }
    let (views, tables): (Vec<Planned>, Vec<Planned>) = plan
        .into_iter()
        .partition(|p| p.new.kind == CollectionType::View);
    for p in tables {
        let result = match &p.existing {
            Some(old) => steps.update(old, &p.new),
            None => steps.create(&p.new),
        };
        result.map_err(|e| step_failed(&p.new, e))?;
    }
    for mut p in views {
        steps
            .infer_view(&mut p.new)
            .map_err(|e| step_failed(&p.new, e))?;
        steps.create(&p.new).map_err(|e| step_failed(&p.new, e))?;
    }
    Ok(deleted)
}

/// Infers a view's fields from its query against the tables as they are
/// inside the import's transaction.
fn infer_view_in(tx: &Connection, c: &mut Collection) -> Result<(), SchemaError> {
    require_view_query(c)?;
    let others: Vec<Collection> = load_all(tx)?.into_iter().filter(|o| o.id != c.id).collect();
    let checked = view::check(tx, c.view_query(), &store::table_lookup(&others), &c.fields)
        .map_err(|reason| store::invalid_view_query(&reason))?;
    c.fields = checked.fields;
    Ok(())
}

/// Refuses a view without a query.
fn require_view_query(c: &Collection) -> Result<(), SchemaError> {
    if view::normalize(c.view_query()).is_empty() {
        let mut e = ValidationErrors::new();
        e.add(
            view::QUERY_KEY,
            FieldError::new("validation_required", "Cannot be blank."),
        );
        return Err(SchemaError::Invalid(e));
    }
    Ok(())
}

/// Compiles the schema as the import leaves it and checks what needs the
/// other collections: relation targets and rules.
fn check_final(steps: &mut dyn Steps) -> Result<Snapshot, ImportError> {
    let snapshot = steps.snapshot()?;
    for c in snapshot.all() {
        store::check_relations(c, &snapshot).map_err(|e| step_failed(c, e))?;
        super::collection::check_rules(c, &snapshot)
            .map_err(|e| step_failed(c, SchemaError::Invalid(e)))?;
    }
    Ok(snapshot)
}

/// PocketBase's wording for a collection that failed validation.
fn failed(name: &str, id: &str, errors: &ValidationErrors) -> ImportError {
    let detail =
        serde_json::to_string_pretty(&errors.to_json()).unwrap_or_else(|_| errors.to_string());
    ImportError::Failed(format!(
        "Data validations failed for collection {name:?} ({id}):\n{detail}"
    ))
}

fn step_failed(c: &Collection, e: SchemaError) -> ImportError {
    match e {
        SchemaError::Invalid(errors) => failed(c.name.as_str(), &c.id, &errors),
        SchemaError::ViewDependency { view, .. } => ImportError::Failed(format!(
            "Failed to save collection {:?}: the view collection {view} depends on it.",
            c.name.as_str()
        )),
        SchemaError::Referenced(by) => ImportError::Failed(format!(
            "Failed to delete collection {:?}: {by} refers to it.",
            c.name.as_str()
        )),
        other => ImportError::Schema(other),
    }
}
