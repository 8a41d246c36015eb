//! Reading records: one row to JSON, and the view action.

use super::RecordError;
use super::access::{self, Access, Caller};
use super::value::from_sql;
use crate::db::{Db, ident};
use crate::rules::SqlValue;
use crate::schema::{Collection, CollectionType, CompiledCollection, Snapshot};
use rusqlite::{OptionalExtension, Row};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// `SELECT "a", "b", … FROM "table"` for every field of the collection
/// (built once per schema version: see [`CompiledCollection::select_sql`]).
pub fn select_sql(collection: &Collection) -> String {
    let cols: Vec<String> = collection
        .fields
        .iter()
        .map(|f| {
            format!(
                "{}.{}",
                ident(collection.name.as_str()),
                ident(f.name.as_str())
            )
        })
        .collect();
    format!(
        "SELECT {} FROM {}",
        cols.join(", "),
        ident(collection.name.as_str())
    )
}

/// Reads a row selected with [`select_sql`] into field values.
pub(crate) fn row_values(
    collection: &Collection,
    row: &Row<'_>,
) -> rusqlite::Result<Map<String, Value>> {
    let mut map = Map::new();
    for (i, field) in collection.fields.iter().enumerate() {
        map.insert(field.name.to_string(), from_sql(field, row.get_ref(i)?));
    }
    Ok(map)
}

/// The record as the caller may see it: hidden fields, `password`,
/// `tokenKey` and (unless visible) `email` removed; `collectionId` and
/// `collectionName` added.
pub fn serialize(collection: &Collection, values: &Map<String, Value>, caller: &Caller) -> Value {
    let mut out = Map::new();
    out.insert("collectionId".into(), json!(collection.id));
    out.insert("collectionName".into(), json!(collection.name.as_str()));
    let is_auth = collection.kind == CollectionType::Auth;
    let id = values.get("id").and_then(Value::as_str).unwrap_or_default();
    let email_visible = caller.superuser
        || caller.is_record(&collection.id, id)
        || values
            .get("emailVisibility")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    for field in &collection.fields {
        let name = field.name.as_str();
        if is_auth && (name == "password" || name == "tokenKey") {
            continue;
        }
        if is_auth && name == "email" && !email_visible {
            continue;
        }
        if field.hidden && !caller.superuser {
            continue;
        }
        let value = match &field.kind {
            crate::schema::FieldKind::Password { .. } => json!(""),
            _ => values
                .get(name)
                .cloned()
                .unwrap_or_else(|| field.zero_value()),
        };
        out.insert(name.to_owned(), value);
    }
    Value::Object(out)
}

/// [`serialize`] of [`row_values`] in one pass: the row goes straight into
/// the caller's view, without the intermediate map of every field.
pub(crate) fn row_record(
    collection: &Collection,
    row: &Row<'_>,
    caller: &Caller,
) -> rusqlite::Result<Value> {
    let mut out = Map::new();
    out.insert("collectionId".into(), json!(collection.id));
    out.insert("collectionName".into(), json!(collection.name.as_str()));
    let is_auth = collection.kind == CollectionType::Auth;
    let mut email_visible = caller.superuser;
    let mut email = None;
    for (i, field) in collection.fields.iter().enumerate() {
        let name = field.name.as_str();
        if is_auth && (name == "password" || name == "tokenKey") {
            continue;
        }
        let value = from_sql(field, row.get_ref(i)?);
        // The same test as `serialize`, on the row's own id and flag.
        if is_auth && name == "id" {
            email_visible |= caller.is_record(&collection.id, value.as_str().unwrap_or_default());
        }
        if is_auth && name == "emailVisibility" {
            email_visible |= value.as_bool().unwrap_or(false);
        }
        if is_auth && name == "email" {
            email = Some(value);
            continue;
        }
        if field.hidden && !caller.superuser {
            continue;
        }
        let value = match &field.kind {
            crate::schema::FieldKind::Password { .. } => json!(""),
            _ => value,
        };
        out.insert(name.to_owned(), value);
    }
    if let Some(email) = email {
        let hidden = collection.field("email").is_some_and(|f| f.hidden);
        if email_visible && (caller.superuser || !hidden) {
            out.insert("email".to_owned(), email);
        }
    }
    Ok(Value::Object(out))
}

/// The first `limit` rows of an unsaved view collection, as a superuser sees
/// them (the dry run's sample), or why they are unusable as records: an
/// empty or repeated id (PocketBase warns the same way; it is a hint, not a
/// guarantee, since only the sample is read).
pub async fn view_sample(
    db: &crate::db::Db,
    view: Collection,
    limit: i64,
) -> Result<Result<Vec<Value>, String>, RecordError> {
    if db.dialect() == crate::rules::Dialect::Postgres {
        let rows = super::on_postgres::view_sample_rows(db, view.clone(), limit).await?;
        return Ok(rows.and_then(|rows| sample(&view, rows)));
    }
    let sql = format!("{} LIMIT ?", crate::schema::view::select_sql(&view));
    db.read(move |conn| {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map([limit], |r| row_values(&view, r))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(sample(&view, rows))
    })
    .await
}

/// Sample rows as a superuser sees them, or why they are unusable as records.
fn sample(view: &Collection, rows: Vec<Map<String, Value>>) -> Result<Vec<Value>, String> {
    let caller = Caller::superuser();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for row in rows {
        let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() {
            return Err("the query could return records with empty or invalid ids".into());
        }
        if !seen.insert(id.to_owned()) {
            return Err("the query could return records with non-unique ids".into());
        }
        out.push(serialize(view, &row, &caller));
    }
    Ok(out)
}

/// One record as the superuser sees it, read on `conn` (inside a
/// transaction the caller holds: JavaScript migrations); `None` if missing.
pub fn view_in(
    conn: &rusqlite::Connection,
    collection: &CompiledCollection,
    id: &str,
) -> Result<Option<Value>, RecordError> {
    Ok(load(conn, collection, id, &Access::All)?
        .map(|values| serialize(collection, &values, &Caller::superuser())))
}

/// [`load`] on either engine's connection (`access` in its dialect).
pub(crate) fn load_conn(
    conn: &mut dyn crate::db::Conn,
    collection: &CompiledCollection,
    id: &str,
    access: &Access,
) -> Result<Option<Map<String, Value>>, RecordError> {
    match conn.sqlite() {
        Some(c) => load(c, collection, id, access),
        None => super::on_postgres::load_in(conn, collection, id, access),
    }
}

/// [`view_in`] on either engine's connection.
pub fn view_conn(
    conn: &mut dyn crate::db::Conn,
    collection: &CompiledCollection,
    id: &str,
) -> Result<Option<Value>, RecordError> {
    Ok(load_conn(conn, collection, id, &Access::All)?
        .map(|values| serialize(collection, &values, &Caller::superuser())))
}

/// Loads one row by id, optionally restricted by a rule condition.
pub(crate) fn load(
    conn: &rusqlite::Connection,
    collection: &CompiledCollection,
    id: &str,
    access: &Access,
) -> Result<Option<Map<String, Value>>, RecordError> {
    let filtered;
    let mut params: Vec<SqlValue> = vec![SqlValue::Text(id.to_owned())];
    let sql = match access {
        Access::Filter(fragment) => {
            filtered = format!("{} AND ({})", collection.select_by_id_sql, fragment.sql);
            params.extend(fragment.params.iter().cloned());
            filtered.as_str()
        }
        Access::All => collection.select_by_id_sql.as_str(),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let row = stmt
        .query_row(rusqlite::params_from_iter(params.iter()), |r| {
            row_values(collection, r)
        })
        .optional()?;
    Ok(row)
}

/// Whether row `id` of `collection` matches a rule condition.
pub(super) fn row_matches(
    tx: &rusqlite::Connection,
    collection: &Collection,
    id: &str,
    rule: &crate::rules::SqlFragment,
) -> Result<bool, RecordError> {
    let table = ident(collection.name.as_str());
    let sql = format!(
        "SELECT EXISTS(SELECT 1 FROM {table} WHERE {table}.\"id\" = ? AND ({}))",
        rule.sql
    );
    let mut params = vec![SqlValue::Text(id.to_owned())];
    params.extend(rule.params.iter().cloned());
    let found: bool = tx.query_row(&sql, rusqlite::params_from_iter(params.iter()), |r| {
        r.get(0)
    })?;
    Ok(found)
}

/// The view action: 403 for a `null` rule, 404 when missing or hidden by the rule.
pub async fn view(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
) -> Result<Value, RecordError> {
    if db.dialect() == crate::rules::Dialect::Postgres {
        return super::on_postgres::view(db, snapshot, collection, caller, id).await;
    }
    let access = access::resolve(&snapshot, &collection.rules.view, &caller, &collection)?;
    db.read(move |conn| {
        let values = load(conn, &collection, &id, &access)?.ok_or(RecordError::NotFound)?;
        Ok(serialize(&collection, &values, &caller))
    })
    .await
}

/// Where a stored file lives: the file field of record `id` holding `filename`.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Where the file is stored: the source collection and record (for a
    /// view, those its file field comes from).
    pub collection_id: String,
    pub record_id: String,
    /// The record of the requested collection, whose view rule decides
    /// access to a protected file (for a view, the view's own row).
    pub requested_id: String,
    pub name: String,
    pub protected: bool,
    pub thumbs: Vec<String>,
}

/// Finds `filename` among the file fields of record `id` (no rule applied).
/// Only names the record actually holds are returned, so the caller never
/// builds a storage path from a name the client made up.
pub async fn find_file(
    db: &Db,
    collection: Arc<CompiledCollection>,
    id: String,
    filename: String,
) -> Result<Option<StoredFile>, RecordError> {
    db.read_conn(move |conn: &mut dyn crate::db::Conn| {
        let Some(values) = load_conn(conn, &collection, &id, &Access::All)? else {
            return Ok(None);
        };
        let Some(field) = holding_field(&collection, &values, &filename) else {
            return Ok(None);
        };
        let record_id = stored_id(&values, &id);
        // A view stores no files: they live with the source record.
        let source = if collection.kind == CollectionType::View {
            let found = match conn.sqlite() {
                Some(c) => view_file_source(c, &collection, field, &filename)?,
                None => super::on_postgres::view_file_source(conn, &collection, field, &filename)?,
            };
            match found {
                Some(source) => source,
                None => return Ok(None),
            }
        } else {
            (collection.id.clone(), record_id.clone())
        };
        Ok(Some(stored_file(field, source, record_id, filename)))
    })
    .await
}

/// The first file field of a record holding `filename`.
fn holding_field<'a>(
    collection: &'a Collection,
    values: &Map<String, Value>,
    filename: &str,
) -> Option<&'a crate::schema::Field> {
    collection.fields.iter().find(|field| {
        matches!(field.kind, crate::schema::FieldKind::File { .. })
            && super::files::names_of(values.get(field.name.as_str()))
                .iter()
                .any(|name| name == filename)
    })
}

/// The stored id of a loaded record (`requested` when it has none).
fn stored_id(values: &Map<String, Value>, requested: &str) -> String {
    values
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(requested)
        .to_owned()
}

/// `filename` of `field`, stored under `(collection id, record id)`.
fn stored_file(
    field: &crate::schema::Field,
    (collection_id, record_id): (String, String),
    requested_id: String,
    name: String,
) -> StoredFile {
    let (protected, thumbs) = match &field.kind {
        crate::schema::FieldKind::File {
            protected, thumbs, ..
        } => (*protected, thumbs.clone()),
        _ => (false, Vec::new()),
    };
    StoredFile {
        collection_id,
        record_id,
        requested_id,
        name,
        protected,
        thumbs,
    }
}

/// The (collection id, record id) holding a file a view's file field shows:
/// SQLite names the table and column the view's column comes from, and the
/// record is the one whose column holds `filename`.
fn view_file_source(
    conn: &rusqlite::Connection,
    view: &Collection,
    field: &crate::schema::Field,
    filename: &str,
) -> Result<Option<(String, String)>, RecordError> {
    let query = crate::schema::view::normalize(view.view_query());
    let stmt = conn.prepare(query)?;
    let Some((table, column)) = stmt
        .columns_with_metadata()
        .find(|c| c.name() == field.name.as_str())
        .and_then(|c| Some((c.table_name()?.to_owned(), c.origin_name()?.to_owned())))
    else {
        return Ok(None);
    };
    let source: Option<String> = conn
        .query_row(
            "SELECT id FROM _collections WHERE name = ?1 COLLATE NOCASE AND type != 'view'",
            [&table],
            |r| r.get(0),
        )
        .optional()?;
    let Some(source) = source else {
        return Ok(None);
    };
    let (table, column) = (ident(&table), ident(&column));
    let sql = if field.is_multi() {
        format!(
            "SELECT {table}.\"id\" FROM {table}, json_each({table}.{column}) AS je \
             WHERE je.value = ?1 LIMIT 1"
        )
    } else {
        format!("SELECT \"id\" FROM {table} WHERE {column} = ?1 LIMIT 1")
    };
    let record: Option<String> = conn.query_row(&sql, [filename], |r| r.get(0)).optional()?;
    Ok(record.map(|record| (source, record)))
}

/// Reads a record without applying the view rule (auth responses show the
/// authenticated record to its owner), serialised for `caller`.
pub async fn view_as_owner(
    db: &Db,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
) -> Result<Value, RecordError> {
    if db.dialect() == crate::rules::Dialect::Postgres {
        let values = super::on_postgres::load(db, collection.clone(), id, Access::All)
            .await?
            .ok_or(RecordError::NotFound)?;
        return Ok(serialize(&collection, &values, &caller));
    }
    db.read(move |conn| {
        let values = load(conn, &collection, &id, &Access::All)?.ok_or(RecordError::NotFound)?;
        Ok(serialize(&collection, &values, &caller))
    })
    .await
}

/// Whether record `id` satisfies `rule` for `caller` (e.g. an MFA rule).
pub async fn matches_rule(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
    rule: String,
) -> Result<bool, RecordError> {
    if db.dialect() == crate::rules::Dialect::Postgres {
        let access = access::resolve_in(
            &snapshot,
            &Some(rule),
            &caller,
            &collection,
            crate::rules::Dialect::Postgres,
        )?;
        return Ok(super::on_postgres::load(db, collection, id, access)
            .await?
            .is_some());
    }
    let access = access::resolve(&snapshot, &Some(rule), &caller, &collection)?;
    db.read(move |conn| Ok(load(conn, &collection, &id, &access)?.is_some()))
        .await
}
