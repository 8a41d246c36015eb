//! Create, update, delete and truncate. Input is normalised and validated,
//! passwords hashed off the writer, then each write runs in one `IMMEDIATE`
//! transaction on the single writer: rule checks, relation checks, the
//! statement itself, and reference handling all commit or roll back together.
//! Each write notes its [`Change`]s inside the transaction; they are handed
//! to the realtime hub only after the commit returned, so a rolled-back write
//! publishes nothing.

use super::RecordError;
use super::access::{self, Access, Caller};
use super::files::{self as record_files, Cleanup, NewFile, Upload};
use super::read::{Bind, load, serialize};
use super::refs;
use super::validate::{self, check_password};
use super::value::{normalize, number_json, to_sql};
use crate::auth::password;
use crate::db::{Db, ident};
use crate::files::{self, BlobKey, Store};
use crate::realtime::{Action, Change, Changes, Hub};
use crate::rules::SqlValue;
use crate::schema::{Collection, CollectionType, CompiledCollection, FieldKind, Snapshot, autogen};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::{Connection, TransactionBehavior};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;

const CREATE_FAILED: &str = "Failed to create record.";
const UPDATE_FAILED: &str = "Failed to update record.";

/// A record being built from input, with plaintext passwords still to hash.
struct Draft {
    values: Map<String, Value>,
    passwords: Vec<(String, String)>,
    errors: ValidationErrors,
}

fn invalid(message: &'static str, errors: ValidationErrors) -> RecordError {
    RecordError::Invalid { message, errors }
}

/// A create whose input is validated and whose passwords are hashed: what
/// remains happens inside a write transaction ([`PreparedCreate::apply`]).
pub struct PreparedCreate {
    collection: Arc<CompiledCollection>,
    caller: Caller,
    access: Access,
    id: String,
    values: Map<String, Value>,
    uploads: Vec<NewFile>,
}

/// A committed-to-be write: the record as the caller sees it, and the blobs
/// to remove once the transaction has committed.
pub struct Applied {
    pub record: Value,
    pub cleanup: Cleanup,
}

/// An update with its new passwords hashed; merging with the stored record
/// happens inside the write transaction ([`PreparedUpdate::apply`]).
pub struct PreparedUpdate {
    collection: Arc<CompiledCollection>,
    caller: Caller,
    access: Access,
    id: String,
    body: Map<String, Value>,
    hashed: Vec<(String, String)>,
    uploads: Vec<NewFile>,
}

/// A delete with its rule resolved ([`PreparedDelete::apply`]).
pub struct PreparedDelete {
    collection: Arc<CompiledCollection>,
    access: Access,
    id: String,
}

/// Validates a create and hashes its passwords (no database access).
pub async fn prepare_create(
    snapshot: &Snapshot,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    body: Map<String, Value>,
    uploads: &[Upload],
) -> Result<PreparedCreate, RecordError> {
    let caller = Caller {
        body: Some(record_files::rule_body(&collection, &body, uploads)),
        ..caller
    };
    let access = access::resolve(snapshot, &collection.rules.create, &caller, &collection)?;
    let mut values = Map::new();
    for field in &collection.fields {
        values.insert(field.name.to_string(), field.zero_value());
    }
    let id = match body.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => autogen::record_id(),
        Some(_) => String::new(),
    };
    values.insert("id".into(), json!(id));
    let mut draft = Draft {
        values,
        passwords: Vec::new(),
        errors: ValidationErrors::new(),
    };
    let accepted = record_files::accept_uploads(&collection, &caller, uploads, &mut draft.errors);
    apply_input(&collection, &caller, &mut draft, &body, &accepted, true);
    let now = crate::clock::now();
    stamp_autodates(&collection, &mut draft.values, &now, true);
    if collection.kind == CollectionType::Auth {
        draft
            .values
            .insert("tokenKey".into(), json!(autogen::token_key()));
        check_password_confirm(&body, &mut draft, true);
    }
    finish_validation(&collection, &mut draft, CREATE_FAILED)?;
    let values = hash_passwords(draft).await?;
    Ok(PreparedCreate {
        collection,
        caller,
        access,
        id,
        values,
        uploads: accepted,
    })
}

impl PreparedCreate {
    /// The record id being created.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Pairs the accepted uploads with their storage keys (the rest are dropped).
    pub fn stage(
        &self,
        uploads: Vec<Upload>,
    ) -> Result<Vec<(files::Staged, BlobKey)>, RecordError> {
        Ok(record_files::keys_for(
            &self.collection.id,
            &self.id,
            uploads,
            &self.uploads,
        )?)
    }

    /// Inserts the record inside `tx` and checks the create rule against it.
    pub fn apply(
        &self,
        tx: &Connection,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        let collection = &self.collection;
        check_relations(tx, snapshot, collection, &self.values, CREATE_FAILED)?;
        super::auth_records::check_unique_auth_id(
            tx,
            snapshot,
            collection,
            &self.id,
            CREATE_FAILED,
        )?;
        insert(tx, collection, &self.values).map_err(|e| unique_violation(e, CREATE_FAILED))?;
        if let Access::Filter(rule) = &self.access
            && !row_matches(tx, collection, &self.id, rule)?
        {
            return Err(RecordError::CreateRuleFailed);
        }
        let written = Written {
            collection,
            id: &self.id,
            caller: &self.caller,
            uploads: &self.uploads,
        };
        written.finish(tx, &Map::new(), Action::Create, changes)
    }
}

/// A record just inserted or updated inside the transaction.
struct Written<'a> {
    collection: &'a CompiledCollection,
    id: &'a str,
    caller: &'a Caller,
    uploads: &'a [record_files::NewFile],
}

impl Written<'_> {
    /// Reads the saved row back and returns it as the caller sees it, with
    /// the files `before` held that it no longer does (removed after the
    /// commit) and the change for realtime subscribers.
    fn finish(
        &self,
        tx: &Connection,
        before: &Map<String, Value>,
        action: Action,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        let saved =
            load(tx, self.collection, self.id, &Access::All)?.ok_or(RecordError::NotFound)?;
        let blobs = record_files::stale(self.collection, self.id, before, &saved, self.uploads);
        let record = serialize(self.collection, &saved, self.caller);
        changes.push(change(self.collection, self.id, action, Some(saved)));
        Ok(Applied {
            record,
            cleanup: Cleanup {
                blobs,
                records: Vec::new(),
            },
        })
    }
}

/// Where a write goes: the database, the file store, and the realtime hub
/// that hears about it once it committed.
#[derive(Clone, Copy)]
pub struct Backend<'a> {
    pub db: &'a Db,
    pub store: &'a Store,
    pub hub: &'a Hub,
}

/// A change to record `id` of `collection`, for realtime subscribers.
pub(crate) fn change(
    collection: &Collection,
    id: &str,
    action: Action,
    row: Option<Map<String, Value>>,
) -> Change {
    Change::new(&collection.id, collection.name.as_str(), id, action, row)
}

/// Runs one write in the shared group transaction and, once it committed,
/// publishes its changes.
async fn write_and_publish<T: Send + 'static>(
    db: &Db,
    hub: &Hub,
    f: impl FnOnce(&Connection, &mut Changes) -> Result<T, RecordError> + Send + 'static,
) -> Result<T, RecordError> {
    let (out, changes) = in_transaction(db, move |tx| {
        let mut changes = Changes::default();
        let out = f(tx, &mut changes)?;
        Ok((out, changes))
    })
    .await?;
    hub.publish(changes);
    Ok(out)
}

/// Creates a record with its uploads. Returns it as the caller may see it.
pub async fn create(
    backend: Backend<'_>,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    body: Map<String, Value>,
    uploads: Vec<Upload>,
) -> Result<Value, RecordError> {
    let Backend { db, store, hub } = backend;
    let prepared = prepare_create(&snapshot, collection, caller, body, &uploads).await?;
    let placed = files::place(store, prepared.stage(uploads)?).await?;
    let outcome = write_and_publish(db, hub, move |tx, changes| {
        prepared.apply(tx, &snapshot, changes)
    })
    .await;
    settle(store, placed, outcome).await
}

/// After the transaction: removes stale blobs on success, or the blobs this
/// write had placed on failure.
pub async fn settle(
    store: &Store,
    placed: Vec<BlobKey>,
    outcome: Result<Applied, RecordError>,
) -> Result<Value, RecordError> {
    match outcome {
        Ok(applied) => {
            applied.cleanup.run(store).await;
            Ok(applied.record)
        }
        Err(e) => {
            files::remove(store, placed, Vec::new()).await;
            Err(e)
        }
    }
}

/// Resolves the update rule and hashes new passwords (the old password is
/// checked here for owners changing their own).
pub async fn prepare_update(
    db: &Db,
    snapshot: &Snapshot,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
    body: Map<String, Value>,
    uploads: &[Upload],
) -> Result<PreparedUpdate, RecordError> {
    let caller = Caller {
        body: Some(record_files::rule_body(&collection, &body, uploads)),
        ..caller
    };
    let access = access::resolve(snapshot, &collection.rules.update, &caller, &collection)?;
    let mut plan = Draft {
        values: Map::new(),
        passwords: Vec::new(),
        errors: ValidationErrors::new(),
    };
    collect_passwords(&collection, &caller, &body, &mut plan);
    let accepted = record_files::accept_uploads(&collection, &caller, uploads, &mut plan.errors);
    if collection.kind == CollectionType::Auth && body.contains_key("password") {
        check_password_confirm(&body, &mut plan, false);
        if !caller.superuser {
            verify_old_password(db, &collection, &id, &body, &mut plan.errors).await?;
        }
    }
    if !plan.errors.is_empty() {
        return Err(invalid(UPDATE_FAILED, plan.errors));
    }
    let mut hashed = Vec::new();
    for (name, plain) in plan.passwords {
        hashed.push((name, password::hash(plain).await?));
    }
    Ok(PreparedUpdate {
        collection,
        caller,
        access,
        id,
        body,
        hashed,
        uploads: accepted,
    })
}

impl PreparedUpdate {
    /// Pairs the accepted uploads with their storage keys (the rest are dropped).
    pub fn stage(
        &self,
        uploads: Vec<Upload>,
    ) -> Result<Vec<(files::Staged, BlobKey)>, RecordError> {
        Ok(record_files::keys_for(
            &self.collection.id,
            &self.id,
            uploads,
            &self.uploads,
        )?)
    }

    /// Merges the input with the stored record inside `tx`, validates and saves.
    pub fn apply(
        &self,
        tx: &Connection,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        let collection = &self.collection;
        let current = load(tx, collection, &self.id, &self.access)?.ok_or(RecordError::NotFound)?;
        let mut draft = Draft {
            values: current.clone(),
            passwords: Vec::new(),
            errors: ValidationErrors::new(),
        };
        apply_input(
            collection,
            &self.caller,
            &mut draft,
            &self.body,
            &self.uploads,
            false,
        );
        stamp_autodates(collection, &mut draft.values, &crate::clock::now(), false);
        for (name, hash) in &self.hashed {
            draft.values.insert(name.clone(), json!(hash));
        }
        draft.passwords.clear();
        if collection.kind == CollectionType::Auth
            && (!self.hashed.is_empty() || draft.values.get("email") != current.get("email"))
        {
            draft
                .values
                .insert("tokenKey".into(), json!(autogen::token_key()));
        }
        finish_validation(collection, &mut draft, UPDATE_FAILED)?;
        check_relations(tx, snapshot, collection, &draft.values, UPDATE_FAILED)?;
        write_update(tx, collection, &self.id, &draft.values)
            .map_err(|e| unique_violation(e, UPDATE_FAILED))?;
        let written = Written {
            collection,
            id: &self.id,
            caller: &self.caller,
            uploads: &self.uploads,
        };
        written.finish(tx, &current, Action::Update, changes)
    }
}

/// Applies a partial update with its uploads. Missing record and failing rule are both 404.
pub async fn update(
    backend: Backend<'_>,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
    body: Map<String, Value>,
    uploads: Vec<Upload>,
) -> Result<Value, RecordError> {
    let Backend { db, store, hub } = backend;
    let prepared = prepare_update(db, &snapshot, collection, caller, id, body, &uploads).await?;
    let placed = files::place(store, prepared.stage(uploads)?).await?;
    let outcome = write_and_publish(db, hub, move |tx, changes| {
        prepared.apply(tx, &snapshot, changes)
    })
    .await;
    settle(store, placed, outcome).await
}

/// Resolves the delete rule; refuses to delete the last superuser.
pub async fn prepare_delete(
    db: &Db,
    snapshot: &Snapshot,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
) -> Result<PreparedDelete, RecordError> {
    let access = access::resolve(snapshot, &collection.rules.delete, &caller, &collection)?;
    if collection.is_superusers() {
        let count: i64 = db
            .read(|c| {
                c.query_row("SELECT count(*) FROM _superusers", [], |r| r.get(0))
                    .map_err(RecordError::from)
            })
            .await?;
        if count <= 1 {
            return Err(RecordError::BadQuery(
                "You can't delete the only existing superuser.".into(),
            ));
        }
    }
    Ok(PreparedDelete {
        collection,
        access,
        id,
    })
}

impl PreparedDelete {
    /// Deletes the record inside `tx`, handling references to it. The
    /// cleanup lists every deleted record (cascades included) for their files.
    pub fn apply(
        &self,
        tx: &Connection,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Cleanup, RecordError> {
        load(tx, &self.collection, &self.id, &self.access)?.ok_or(RecordError::NotFound)?;
        let mut visited = HashSet::new();
        refs::delete_with_references(
            tx,
            snapshot,
            &self.collection,
            &self.id,
            &mut visited,
            changes,
        )?;
        Ok(Cleanup {
            blobs: Vec::new(),
            records: visited.into_iter().collect(),
        })
    }
}

/// Deletes a record, handling references to it (cascade, clear or refuse);
/// the files of every deleted record are removed after the commit.
pub async fn delete(
    backend: Backend<'_>,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
) -> Result<(), RecordError> {
    let Backend { db, store, hub } = backend;
    let prepared = prepare_delete(db, &snapshot, collection, caller, id).await?;
    let cleanup = write_and_publish(db, hub, move |tx, changes| {
        prepared.apply(tx, &snapshot, changes)
    })
    .await?;
    cleanup.run(store).await;
    Ok(())
}

/// Runs `f` on the writer inside a transaction it shares with other
/// concurrent writes (one commit and one sync for the group); `f`'s changes
/// are rolled back alone when it fails. Returns after the commit.
pub async fn in_transaction<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&Connection) -> Result<T, RecordError> + Send + 'static,
) -> Result<T, RecordError> {
    db.write_grouped(f).await
}

/// Deletes every record of a collection (with reference handling), in one transaction.
pub async fn truncate(
    backend: Backend<'_>,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
) -> Result<(), RecordError> {
    let Backend { db, store, hub } = backend;
    if collection.is_superusers() {
        return Err(RecordError::Unsupported);
    }
    // Reading every row for delete events is only worth it when someone listens.
    let announce = hub.has_clients();
    let (cleanup, changes) = db
        .write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let table = ident(collection.name.as_str());
            let mut visited = HashSet::new();
            let mut changes = Changes::default();
            if refs::is_referenced(&snapshot, &collection) {
                let ids: Vec<String> = {
                    let mut stmt = tx.prepare(&format!("SELECT id FROM {table}"))?;
                    let rows = stmt.query_map([], |r| r.get(0))?;
                    rows.collect::<Result<_, _>>()?
                };
                for id in ids {
                    refs::delete_with_references(
                        &tx,
                        &snapshot,
                        &collection,
                        &id,
                        &mut visited,
                        &mut changes,
                    )?;
                }
            } else {
                if announce {
                    // Every row goes out as a delete event, so read them before they go.
                    let rows: Vec<Map<String, Value>> = {
                        let mut stmt = tx.prepare(&super::read::select_sql(&collection))?;
                        let rows =
                            stmt.query_map([], |r| super::read::row_values(&collection, r))?;
                        rows.collect::<Result<_, _>>()?
                    };
                    for row in rows {
                        let id = row
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        changes.push(change(&collection, &id, Action::Delete, Some(row)));
                    }
                }
                if has_file_fields(&collection) {
                    // Per-record removal (not the whole collection folder): a
                    // create racing with this truncate keeps its files.
                    let mut stmt = tx.prepare(&format!("SELECT id FROM {table}"))?;
                    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                    for id in rows {
                        visited.insert((collection.id.clone(), id?));
                    }
                }
                tx.execute(&format!("DELETE FROM {table}"), [])?;
                super::auth_records::delete_all_auth_state(&tx, &collection)?;
            }
            tx.commit()?;
            Ok::<_, RecordError>((
                Cleanup {
                    blobs: Vec::new(),
                    records: visited.into_iter().collect(),
                },
                changes,
            ))
        })
        .await?;
    hub.publish(changes);
    cleanup.run(store).await;
    Ok(())
}

fn has_file_fields(collection: &Collection) -> bool {
    collection
        .fields
        .iter()
        .any(|f| matches!(f.kind, FieldKind::File { .. }))
}

/// Splits a key into (field name, modifier): `views+` → ("views", "+"), `+tags` → ("tags", "^").
fn split_modifier(key: &str) -> (&str, Option<char>) {
    if let Some(name) = key.strip_suffix('+') {
        (name, Some('+'))
    } else if let Some(name) = key.strip_suffix('-') {
        (name, Some('-'))
    } else if let Some(name) = key.strip_prefix('+') {
        (name, Some('^'))
    } else {
        (key, None)
    }
}

/// Whether the caller may write this field at all (others are silently ignored).
fn writable(collection: &Collection, caller: &Caller, name: &str) -> bool {
    let Some(field) = collection.field(name) else {
        return false;
    };
    if matches!(field.kind, FieldKind::Autodate { .. }) || name == "tokenKey" {
        return false;
    }
    let auth_password = collection.kind == CollectionType::Auth && name == "password";
    !field.hidden || caller.superuser || auth_password
}

fn collect_passwords(
    collection: &Collection,
    caller: &Caller,
    body: &Map<String, Value>,
    draft: &mut Draft,
) {
    for field in &collection.fields {
        let name = field.name.as_str();
        if !matches!(field.kind, FieldKind::Password { .. }) || !writable(collection, caller, name)
        {
            continue;
        }
        match body.get(name) {
            Some(Value::String(plain)) if !plain.is_empty() => match check_password(field, plain) {
                Some(e) => draft.errors.add(name, e),
                None => draft.passwords.push((name.to_owned(), plain.clone())),
            },
            Some(Value::String(_)) | Some(Value::Null) | None => {}
            Some(_) => draft.errors.add(
                name,
                FieldError::new("validation_invalid_value", "Must be a string."),
            ),
        }
    }
}

/// Applies plain keys, then modifiers, of `body` to `draft.values`.
fn apply_input(
    collection: &Collection,
    caller: &Caller,
    draft: &mut Draft,
    body: &Map<String, Value>,
    uploads: &[NewFile],
    creating: bool,
) {
    if creating {
        collect_passwords(collection, caller, body, draft);
        for (name, plain) in &draft.passwords {
            // Placeholder so blank checks see a value; replaced by the hash before storing.
            draft.values.insert(name.clone(), json!(plain));
        }
    }
    for (key, raw) in body {
        let (name, modifier) = split_modifier(key);
        if modifier.is_some() || name == "id" {
            continue;
        }
        if !writable(collection, caller, name) {
            continue;
        }
        let Some(field) = collection.field(name) else {
            continue;
        };
        match &field.kind {
            FieldKind::Password { .. } => continue,
            // File keys (with their uploads) are applied together below.
            FieldKind::File { .. } => continue,
            _ => {}
        }
        if name == "verified" && !caller.superuser && draft.values.get(name) != Some(raw) {
            draft.errors.add(
                name,
                FieldError::new(
                    "validation_values_mismatch",
                    "Only superusers and managers can change the verified state.",
                ),
            );
            continue;
        }
        match normalize(field, raw) {
            Ok(v) => {
                draft.values.insert(name.to_owned(), v);
            }
            Err(e) => draft.errors.add(name, e),
        }
    }
    if !creating
        && let Some(new_id) = body.get("id")
        && Some(new_id) != draft.values.get("id")
    {
        draft.errors.add(
            "id",
            FieldError::new(
                "validation_pk_change",
                "The record primary key cannot be changed.",
            ),
        );
    }
    for (key, raw) in body {
        let (name, modifier) = split_modifier(key);
        let Some(modifier) = modifier else { continue };
        if !writable(collection, caller, name) {
            continue;
        }
        let Some(field) = collection.field(name) else {
            continue;
        };
        apply_modifier(field, modifier, raw, draft);
    }
    record_files::apply(
        collection,
        caller,
        &mut draft.values,
        &mut draft.errors,
        body,
        uploads,
    );
}

fn apply_modifier(field: &crate::schema::Field, modifier: char, raw: &Value, draft: &mut Draft) {
    let name = field.name.as_str();
    let current = draft
        .values
        .get(name)
        .cloned()
        .unwrap_or_else(|| field.zero_value());
    let updated = match (&field.kind, modifier) {
        (FieldKind::Number { .. }, '+' | '-') => match normalize(field, raw) {
            Ok(delta) => {
                let (a, b) = (
                    current.as_f64().unwrap_or(0.0),
                    delta.as_f64().unwrap_or(0.0),
                );
                number_json(if modifier == '+' { a + b } else { a - b })
            }
            Err(e) => return draft.errors.add(name, e),
        },
        (FieldKind::Select { .. } | FieldKind::Relation { .. }, _) if field.is_multi() => {
            let given = match normalize(field, raw) {
                Ok(Value::Array(items)) => items,
                Ok(_) => Vec::new(),
                Err(e) => return draft.errors.add(name, e),
            };
            let mut items = current.as_array().cloned().unwrap_or_default();
            match modifier {
                '-' => items.retain(|v| !given.contains(v)),
                '^' => {
                    let mut merged: Vec<Value> =
                        given.into_iter().filter(|v| !items.contains(v)).collect();
                    merged.extend(items);
                    items = merged;
                }
                _ => items.extend(
                    given
                        .into_iter()
                        .filter(|v| !current.as_array().is_some_and(|c| c.contains(v))),
                ),
            }
            Value::Array(items)
        }
        (FieldKind::Select { .. } | FieldKind::Relation { .. }, '-') => {
            let given = normalize(field, raw).unwrap_or_default();
            if given == current { json!("") } else { current }
        }
        _ => return,
    };
    draft.values.insert(name.to_owned(), updated);
}

fn check_password_confirm(body: &Map<String, Value>, draft: &mut Draft, creating: bool) {
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let confirm = body
        .get("passwordConfirm")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if (creating || !password.is_empty()) && password != confirm {
        let e = if confirm.is_empty() {
            FieldError::required()
        } else {
            FieldError::new("validation_values_mismatch", "Values don't match.")
        };
        draft.errors.add("passwordConfirm", e);
    }
}

async fn verify_old_password(
    db: &Db,
    collection: &Arc<CompiledCollection>,
    id: &str,
    body: &Map<String, Value>,
    errors: &mut ValidationErrors,
) -> Result<(), RecordError> {
    let old = body
        .get("oldPassword")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if old.is_empty() {
        errors.add("oldPassword", FieldError::required());
        return Ok(());
    }
    let sql = format!(
        "SELECT password FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let id = id.to_owned();
    let stored: Option<String> = db
        .read(move |c| {
            use rusqlite::OptionalExtension;
            c.query_row(&sql, [id], |r| r.get(0))
                .optional()
                .map_err(RecordError::from)
        })
        .await?;
    if !password::verify(old, stored.unwrap_or_default()).await {
        errors.add(
            "oldPassword",
            FieldError::new(
                "validation_invalid_old_password",
                "Missing or invalid old password.",
            ),
        );
    }
    Ok(())
}

fn stamp_autodates(
    collection: &Collection,
    values: &mut Map<String, Value>,
    now: &str,
    creating: bool,
) {
    for field in &collection.fields {
        if let FieldKind::Autodate {
            on_create,
            on_update,
        } = field.kind
            && ((creating && on_create) || (!creating && on_update))
        {
            values.insert(field.name.to_string(), json!(now));
        }
    }
}

fn finish_validation(
    collection: &CompiledCollection,
    draft: &mut Draft,
    message: &'static str,
) -> Result<(), RecordError> {
    let mut errors = std::mem::take(&mut draft.errors);
    errors.absorb(validate::check(collection, &draft.values));
    errors.into_result().map_err(|e| invalid(message, e))
}

async fn hash_passwords(draft: Draft) -> Result<Map<String, Value>, RecordError> {
    let mut values = draft.values;
    for (name, plain) in draft.passwords {
        values.insert(name, json!(password::hash(plain).await?));
    }
    Ok(values)
}

fn check_relations(
    tx: &Connection,
    snapshot: &Snapshot,
    collection: &Collection,
    values: &Map<String, Value>,
    message: &'static str,
) -> Result<(), RecordError> {
    let mut errors = ValidationErrors::new();
    for field in &collection.fields {
        let FieldKind::Relation { collection_id, .. } = &field.kind else {
            continue;
        };
        let ids: Vec<&str> = match values.get(field.name.as_str()) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.as_str()],
            _ => continue,
        };
        let Some(target) = snapshot.get(collection_id).or_else(|| {
            (collection_id == &collection.id)
                .then(|| snapshot.get(&collection.id))
                .flatten()
        }) else {
            errors.add(
                field.name.as_str(),
                FieldError::new(
                    "validation_missing_rel_records",
                    "Failed to find all relation records with the provided ids.",
                ),
            );
            continue;
        };
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM {} WHERE id = ?1)",
            ident(target.name.as_str())
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        for id in ids {
            let exists: bool = stmt.query_row([id], |r| r.get(0))?;
            if !exists {
                errors.add(
                    field.name.as_str(),
                    FieldError::new(
                        "validation_missing_rel_records",
                        "Failed to find all relation records with the provided ids.",
                    ),
                );
                break;
            }
        }
    }
    errors.into_result().map_err(|e| invalid(message, e))
}

fn insert(
    tx: &Connection,
    collection: &Collection,
    values: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let cols: Vec<String> = collection
        .fields
        .iter()
        .map(|f| ident(f.name.as_str()))
        .collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        ident(collection.name.as_str()),
        cols.join(", "),
        marks.join(", ")
    );
    let params: Vec<rusqlite::types::Value> = collection
        .fields
        .iter()
        .map(|f| to_sql(f, values.get(f.name.as_str()).unwrap_or(&Value::Null)))
        .collect();
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(params))?;
    Ok(())
}

fn write_update(
    tx: &Connection,
    collection: &Collection,
    id: &str,
    values: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let sets: Vec<String> = collection
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = ?{}", ident(f.name.as_str()), i + 1))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} WHERE id = ?{}",
        ident(collection.name.as_str()),
        sets.join(", "),
        sets.len() + 1
    );
    let mut params: Vec<rusqlite::types::Value> = collection
        .fields
        .iter()
        .map(|f| to_sql(f, values.get(f.name.as_str()).unwrap_or(&Value::Null)))
        .collect();
    params.push(rusqlite::types::Value::Text(id.to_owned()));
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(params))?;
    Ok(())
}

fn row_matches(
    tx: &Connection,
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
    let found: bool = tx.query_row(
        &sql,
        rusqlite::params_from_iter(params.iter().map(Bind)),
        |r| r.get(0),
    )?;
    Ok(found)
}

/// Maps a UNIQUE constraint failure to `validation_not_unique` on its columns.
fn unique_violation(e: rusqlite::Error, message: &'static str) -> RecordError {
    if let rusqlite::Error::SqliteFailure(code, Some(text)) = &e
        && code.code == rusqlite::ErrorCode::ConstraintViolation
        && let Some(cols) = text.strip_prefix("UNIQUE constraint failed: ")
    {
        let mut errors = ValidationErrors::new();
        for col in cols.split(", ") {
            let name = col.rsplit('.').next().unwrap_or(col);
            errors.add(
                name,
                FieldError::new("validation_not_unique", "Value must be unique."),
            );
        }
        return invalid(message, errors);
    }
    RecordError::from(e)
}
