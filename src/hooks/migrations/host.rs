//! The host operations of migrations, run inside the migration's
//! transaction on either engine (SQLite's writer, or one PostgreSQL
//! connection). Collections change through the import steps
//! (`schema::import_in`, `schema::delete_in_tx`), the same path as
//! `PUT /api/collections/import`; records are created through the record
//! API's own prepare-and-apply steps (as the superuser). Every answer is
//! the value or an error message for the script to throw. Raw SQL (`sql`)
//! is `raw_sql`'s.

use crate::db::Conn;
use crate::records::{self, Caller};
use crate::schema::{self, Snapshot};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveCollection {
    data: Map<String, Value>,
    is_new: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Import {
    collections: Vec<Map<String, Value>>,
    delete_missing: bool,
}

#[derive(Deserialize)]
struct RecordRef {
    c: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    data: Map<String, Value>,
}

fn parse<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| format!("invalid arguments: {e}"))
}

pub(super) fn run(
    tx: &mut dyn Conn,
    handle: &tokio::runtime::Handle,
    op: &str,
    args: Value,
) -> Result<Value, String> {
    match op {
        "findCollection" => {
            let name = args.as_str().unwrap_or_default();
            find_collection(&snapshot(tx)?, name).map(|c| c.to_json())
        }
        "saveCollection" => save_collection(tx, parse(args)?),
        "deleteCollection" => {
            let name = args.as_str().unwrap_or_default();
            schema::delete_in_tx(tx, name).map_err(|e| match e {
                schema::SchemaError::NotFound => not_found(name),
                other => other.to_string(),
            })?;
            Ok(Value::Null)
        }
        "importCollections" => {
            let Import {
                collections,
                delete_missing,
            } = parse(args)?;
            if collections.is_empty() {
                return Err("no collections to import".to_owned());
            }
            schema::import_in(tx, collections, delete_missing, delete_missing)
                .map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        "createRecord" => {
            let RecordRef { c, data, .. } = parse(args)?;
            let snapshot = snapshot(tx)?;
            let collection = find_collection(&snapshot, &c)?;
            let prepared = handle
                .block_on(records::prepare_create(
                    &snapshot,
                    collection,
                    Caller::superuser(),
                    data,
                    &[],
                ))
                .map_err(record_error)?;
            let mut changes = crate::realtime::Changes::default();
            // Not published to realtime subscribers, on either engine.
            let applied = prepared
                .apply(tx, &snapshot, &mut changes)
                .map_err(record_error)?;
            Ok(applied.record)
        }
        "findRecord" => {
            let RecordRef { c, id, .. } = parse(args)?;
            let snapshot = snapshot(tx)?;
            let collection = find_collection(&snapshot, &c)?;
            records::view_conn(tx, &collection, &id)
                .map_err(record_error)?
                .ok_or_else(|| "sql: no rows in result set".to_owned())
        }
        "deleteRecord" => Err(
            "deleting records is not supported in migrations yet; use app.db().newQuery()"
                .to_owned(),
        ),
        "sql" => super::raw_sql::run(tx, parse(args)?),
        _ => Err(format!("unknown host operation {op:?}")),
    }
}

fn snapshot(tx: &mut dyn Conn) -> Result<Snapshot, String> {
    schema::read_snapshot(tx).map_err(|e| e.to_string())
}

fn not_found(name: &str) -> String {
    format!("collection {name:?} not found")
}

fn find_collection(
    snapshot: &Snapshot,
    name: &str,
) -> Result<std::sync::Arc<schema::CompiledCollection>, String> {
    snapshot.get(name).ok_or_else(|| not_found(name))
}

fn record_error(e: records::RecordError) -> String {
    match &e {
        records::RecordError::Invalid { errors, .. } => format!("{e}: {}", errors.to_json()),
        _ => e.to_string(),
    }
}

/// `app.save(collection)`: a new collection must not take an existing id
/// or name; a loaded one is updated with exactly the fields it lists.
fn save_collection(tx: &mut dyn Conn, args: SaveCollection) -> Result<Value, String> {
    let SaveCollection { mut data, is_new } = args;
    data.remove("created");
    data.remove("updated");
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = data
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let before = snapshot(tx)?;
    if is_new {
        if !id.is_empty() && before.get(&id).is_some_and(|c| c.id == id) {
            return Err(format!("collection id {id:?} is already taken"));
        }
        if before.get(&name).is_some() {
            return Err(format!("collection name {name:?} is already taken"));
        }
    } else if id.is_empty() {
        return Err("the collection to update has no id".to_owned());
    }
    let after = schema::import_in(tx, vec![data], false, true).map_err(|e| e.to_string())?;
    let key = if id.is_empty() { &name } else { &id };
    find_collection(&after, key).map(|c| c.to_json())
}
