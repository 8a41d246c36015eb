//! Create, update, delete and truncate. Input is resolved into field values
//! by `input` (the same values rules see as `@request.body`) and validated,
//! passwords hashed off the writer, then each write runs in one `IMMEDIATE`
//! transaction on the single writer: rule checks, relation checks, the
//! statement itself, and reference handling all commit or roll back together.
//! Each write notes its [`Change`]s inside the transaction; they are handed
//! to the realtime hub only after the commit returned, so a rolled-back write
//! publishes nothing. On PostgreSQL the same steps run in a transaction of
//! their own through [`RecordTx`] (the engine's statements and locks live
//! in `tx.rs`), inside a hook's write session too. Truncate
//! lives in `truncate.rs`.

use super::RecordError;
use super::access::{self, Access, Caller};
use super::files::{self as record_files, Cleanup, NewFile, Upload};
use super::hooked::{self, Plain, WriteHooks};
use super::input::{self, Draft};
use super::read::serialize;
use super::refs;
use super::session;
use super::tx::{PgTx, RecordTx, RowLock, SqliteTx, dialect};
use super::validate;
use super::value::to_sql;
use crate::auth::password;
use crate::db::{Conn, Db, LockKey, ident};
use crate::files::{self, BlobKey, Store};
use crate::realtime::{Action, Change, Changes, Hub};
use crate::rules::{Dialect, SqlValue};
use crate::schema::{Collection, CollectionType, CompiledCollection, FieldKind, Snapshot, autogen};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::Connection;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;

const CREATE_FAILED: &str = "Failed to create record.";
pub(super) const UPDATE_FAILED: &str = "Failed to update record.";

pub(super) fn invalid(message: &'static str, errors: ValidationErrors) -> RecordError {
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
    /// The caller's old password was checked (they do not manage the record).
    old_password_verified: bool,
    id: String,
    body: Map<String, Value>,
    hashed: Vec<(String, String)>,
    uploads: Vec<NewFile>,
}

/// A delete with its rule resolved ([`PreparedDelete::apply`]).
pub struct PreparedDelete {
    collection: Arc<CompiledCollection>,
    access: Access,
    /// Who deletes (for the rule in PostgreSQL's SQL).
    caller: Caller,
    id: String,
}

/// View collections are read-only: their rows belong to other collections.
fn refuse_view(collection: &CompiledCollection) -> Result<(), RecordError> {
    if collection.kind == CollectionType::View {
        return Err(RecordError::Unsupported);
    }
    Ok(())
}

/// Validates a create and hashes its passwords (no database access).
pub async fn prepare_create(
    snapshot: &Snapshot,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    body: Map<String, Value>,
    uploads: &[Upload],
) -> Result<PreparedCreate, RecordError> {
    refuse_view(&collection)?;
    let mut values = Map::new();
    for field in &collection.fields {
        values.insert(field.name.to_string(), field.zero_value());
    }
    let (id, id_error) = match input::create_id(&collection, &body) {
        Ok(id) => (id, None),
        Err(e) => (String::new(), Some(e)),
    };
    values.insert("id".into(), json!(id));
    let original = values.clone();
    let mut draft = Draft::new(values);
    if let Some(e) = id_error {
        draft.errors.add("id", e);
    }
    let accepted = record_files::accept_uploads(&collection, &caller, uploads, &mut draft.errors);
    let rule_body = input::resolve(&collection, &caller, &mut draft, &body, &accepted, true);
    // Only superusers create pre-verified records: a manageRule is not
    // evaluated against a record that does not exist yet.
    input::guard_auth_fields(
        &collection,
        &original,
        &body,
        &mut draft,
        caller.superuser,
        true,
    );
    let caller = Caller {
        body: Some(rule_body),
        ..caller
    };
    let access = access::resolve(snapshot, &collection.rules.create, &caller, &collection)?;
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

    /// Inserts the record inside either engine's transaction `conn` (see
    /// [`Self::apply_in`]); on PostgreSQL through the same step as every
    /// PostgreSQL record write ([`pg_apply`]).
    pub fn apply(
        &self,
        conn: &mut dyn Conn,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        match conn.sqlite() {
            Some(tx) => self.apply_in(&mut SqliteTx::new(tx), snapshot, changes),
            None => pg_apply(conn, &|tx, ch| self.apply_in(tx, snapshot, ch), changes),
        }
    }

    /// Inserts the record inside `tx` and checks the create rule against it.
    pub(super) fn apply_in(
        &self,
        tx: &mut dyn RecordTx,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        let collection = &self.collection;
        refs::check_relations(tx.conn(), snapshot, collection, &self.values, CREATE_FAILED)?;
        super::auth_records::check_unique_auth_id(
            tx.conn(),
            snapshot,
            collection,
            &self.id,
            CREATE_FAILED,
        )?;
        tx.insert(collection, &self.values, CREATE_FAILED)?;
        let in_dialect;
        let access = match dialect(tx) {
            Dialect::Sqlite => &self.access,
            Dialect::Postgres => {
                // Resolved in SQLite's SQL when prepared (for its errors' order).
                let rule = &collection.rules.create;
                in_dialect = access::resolve_in(
                    snapshot,
                    rule,
                    &self.caller,
                    collection,
                    Dialect::Postgres,
                )?;
                &in_dialect
            }
        };
        if let Access::Filter(rule) = access
            && !tx.matches(collection, &self.id, rule)?
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
        tx: &mut dyn RecordTx,
        before: &Map<String, Value>,
        action: Action,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        let saved = tx
            .load(self.collection, self.id, &Access::All, RowLock::None)?
            .ok_or(RecordError::NotFound)?;
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
    /// JavaScript model hooks (`onRecordCreate` …); `None` without hooks.
    pub hooks: Option<&'a dyn WriteHooks>,
    /// The write session the write joins, when its caller holds one
    /// explicitly (a batch with hooks); else the thread's current one.
    pub session: Option<&'a Arc<session::Session>>,
}

impl Backend<'_> {
    /// The session writes join: the explicit one, else the thread's.
    pub(super) fn joined(&self) -> Option<Arc<session::Session>> {
        self.session.cloned().or_else(session::current)
    }
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
pub(super) async fn write_and_publish<T: Send + 'static>(
    db: &Db,
    hub: &Hub,
    joined: Option<Arc<session::Session>>,
    f: impl FnOnce(&Connection, &mut Changes) -> Result<T, RecordError> + Send + 'static,
) -> Result<T, RecordError> {
    if let Some(session) = joined {
        // Inside a hook's write session: its changes are published when it commits.
        return session.run(f).await;
    }
    let (out, changes) = in_transaction(db, move |tx| {
        let mut changes = Changes::default();
        let out = f(tx, &mut changes)?;
        Ok((out, changes))
    })
    .await?;
    hub.publish(changes);
    Ok(out)
}

/// Runs one record write on either engine (on PostgreSQL in a transaction
/// of its own, run again after a deadlock, so `f` rebuilds its changes each
/// time) and, once it committed, publishes its changes (on PostgreSQL
/// through the outbox, to every node).
pub(super) async fn apply_and_publish<T: Send + 'static>(
    db: &Db,
    hub: &Hub,
    joined: Option<Arc<session::Session>>,
    f: impl Fn(&mut dyn RecordTx, &mut Changes) -> Result<T, RecordError> + Send + 'static,
) -> Result<T, RecordError> {
    if db.dialect() == Dialect::Sqlite {
        return write_and_publish(db, hub, joined, move |tx, changes| {
            f(&mut SqliteTx::new(tx), changes)
        })
        .await;
    }
    if let Some(session) = joined {
        // Inside a hook's write session: its transaction; its changes go to
        // the outbox once, just before the session commits (`session.rs`).
        return session
            .run_conn(move |conn, changes| pg_apply(conn, &f, changes))
            .await;
    }
    // The changes go to the outbox in the transaction; every node's
    // listener, this one's included, publishes them (`realtime::outbox`).
    let (out, seq) = db
        .write_conn(move |conn: &mut dyn Conn| {
            let mut changes = Changes::default();
            let out = pg_apply(conn, &f, &mut changes)?;
            let seq = crate::realtime::outbox::append(conn, &changes)?;
            Ok::<_, RecordError>((out, seq))
        })
        .await?;
    if let Some(seq) = seq {
        hub.wait_for_outbox(seq).await;
    }
    Ok(out)
}

/// [`apply_and_publish`] of a write that runs exactly once (a flow's step
/// inside model hooks, whose JavaScript already ran around it): in the
/// write session joined, else in one write of its own (on PostgreSQL a
/// held transaction, never run again).
pub(super) async fn apply_once_and_publish<T: Send + 'static>(
    db: &Db,
    hub: &Hub,
    joined: Option<Arc<session::Session>>,
    f: impl FnOnce(&mut dyn RecordTx, &mut Changes) -> Result<T, RecordError> + Send + 'static,
) -> Result<T, RecordError> {
    if db.dialect() == Dialect::Sqlite {
        return write_and_publish(db, hub, joined, move |tx, changes| {
            f(&mut SqliteTx::new(tx), changes)
        })
        .await;
    }
    if let Some(session) = joined {
        return session
            .run_conn(move |conn, changes| f(&mut PgTx(conn), changes))
            .await;
    }
    let (out, seq) = db
        .write_held(move |conn: &mut dyn Conn| {
            let mut changes = Changes::default();
            let out = f(&mut PgTx(conn), &mut changes)?;
            let seq = crate::realtime::outbox::append(conn, &changes)?;
            Ok::<_, RecordError>((out, seq))
        })
        .await?;
    if let Some(seq) = seq {
        hub.wait_for_outbox(seq).await;
    }
    Ok(out)
}

/// One record write in PostgreSQL transaction `conn` (its own, or a write
/// session's): every PostgreSQL record write passes here.
fn pg_apply<T>(
    conn: &mut dyn Conn,
    f: &impl Fn(&mut dyn RecordTx, &mut Changes) -> Result<T, RecordError>,
    changes: &mut Changes,
) -> Result<T, RecordError> {
    f(&mut PgTx(conn), changes)
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
    if let Some(hooks) = backend.hooks
        && hooked::wanted(hooks, hooked::Stage::Create, &collection)
    {
        let mut record = Map::new();
        for field in &collection.fields {
            if !matches!(field.kind, FieldKind::Password { .. }) {
                record.insert(field.name.to_string(), field.zero_value());
            }
        }
        record.insert("id".into(), json!(""));
        record.extend(body.clone());
        let plain = Plain::Create {
            snapshot,
            caller,
            uploads,
        };
        return hooked::write(
            hooks,
            backend,
            collection,
            Value::Object(record),
            body,
            plain,
        )
        .await;
    }
    let Backend { db, store, hub, .. } = backend;
    let joined = backend.joined();
    let prepared = prepare_create(&snapshot, collection, caller, body, &uploads).await?;
    let placed = files::place(store, prepared.stage(uploads)?).await?;
    let outcome = apply_and_publish(db, hub, joined.clone(), move |tx, changes| {
        prepared.apply_in(tx, &snapshot, changes)
    })
    .await;
    settle(store, placed, joined, outcome).await
}

/// After the transaction: removes stale blobs on success, or the blobs this
/// write had placed on failure.
pub async fn settle(
    store: &Store,
    placed: Vec<BlobKey>,
    joined: Option<Arc<session::Session>>,
    outcome: Result<Applied, RecordError>,
) -> Result<Value, RecordError> {
    match outcome {
        Ok(applied) => {
            match joined {
                // Inside a hook's write session: files wait for its end.
                Some(session) => session.hold_files(placed, applied.cleanup),
                None => applied.cleanup.run(store).await,
            }
            Ok(applied.record)
        }
        Err(e) => {
            files::remove(store, placed, Vec::new()).await;
            Err(e)
        }
    }
}

/// Checks the new passwords and hashes them. When an owner changes their
/// own password the old one is verified here, off the writer, and only once
/// the update rule admitted the caller (so it is no oracle for other users'
/// passwords); callers matching `manageRule` need no old password.
pub async fn prepare_update(
    db: &Db,
    snapshot: Arc<Snapshot>,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
    body: Map<String, Value>,
    uploads: &[Upload],
) -> Result<PreparedUpdate, RecordError> {
    refuse_view(&collection)?;
    if !caller.superuser && collection.rules.update.is_none() {
        return Err(RecordError::SuperusersOnly);
    }
    let mut plan = Draft::new(Map::new());
    input::collect_passwords(&collection, &caller, &body, &mut plan);
    let accepted = record_files::accept_uploads(&collection, &caller, uploads, &mut plan.errors);
    let mut old_password_verified = false;
    if collection.kind == CollectionType::Auth && body.contains_key("password") {
        check_password_confirm(&body, &mut plan, false);
        if !caller.superuser {
            let planned = {
                let (collection, caller, id) = (collection.clone(), caller.clone(), id.clone());
                let (body, accepted) = (body.clone(), accepted.clone());
                let plan = move |tx: &mut dyn RecordTx| {
                    let lock = RowLock::None;
                    plan_update(
                        tx,
                        &snapshot,
                        &collection,
                        &caller,
                        &id,
                        &body,
                        &accepted,
                        lock,
                    )
                };
                match db.dialect() {
                    Dialect::Sqlite => db.read(move |conn| plan(&mut SqliteTx::new(conn))).await?,
                    Dialect::Postgres => db.read_conn(move |conn| plan(&mut PgTx(conn))).await?,
                }
            };
            if !planned.manager {
                verify_old_password(db, &collection, &id, &body, &mut plan.errors).await?;
                old_password_verified = true;
            }
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
        old_password_verified,
        id,
        body,
        hashed,
        uploads: accepted,
    })
}

/// An update resolved against the stored record and admitted by the update rule.
struct PlannedUpdate {
    current: Map<String, Value>,
    draft: Draft,
    /// The caller with `@request.body` as the resolved body.
    caller: Caller,
    /// Superuser, or matching the collection's `manageRule` for this record.
    manager: bool,
}

/// Resolves `body` against record `id` as stored (locked with `lock`, so
/// `views+` and merges are never lost to a concurrent update), then checks
/// the update rule with the resolved body: a missing record and a refusing
/// rule are both [`RecordError::NotFound`]. Input errors stay in the draft,
/// so they are only reported to callers the rule admitted.
#[allow(clippy::too_many_arguments)]
fn plan_update(
    tx: &mut dyn RecordTx,
    snapshot: &Snapshot,
    collection: &CompiledCollection,
    caller: &Caller,
    id: &str,
    body: &Map<String, Value>,
    uploads: &[NewFile],
    lock: RowLock,
) -> Result<PlannedUpdate, RecordError> {
    let current = tx
        .load(collection, id, &Access::All, lock)?
        .ok_or(RecordError::NotFound)?;
    let mut draft = Draft::new(current.clone());
    let rule_body = input::resolve(collection, caller, &mut draft, body, uploads, false);
    let caller = Caller {
        body: Some(rule_body),
        ..caller.clone()
    };
    let d = dialect(tx);
    let access = access::resolve_in(snapshot, &collection.rules.update, &caller, collection, d)?;
    if let Access::Filter(rule) = &access
        && !tx.matches(collection, id, rule)?
    {
        return Err(RecordError::NotFound);
    }
    let manager = caller.superuser
        || match access::manage_filter(snapshot, &caller, collection, d) {
            Some(rule) => tx.matches(collection, id, &rule)?,
            None => false,
        };
    Ok(PlannedUpdate {
        current,
        draft,
        caller,
        manager,
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

    /// Saves the update inside SQLite's `tx` (see [`Self::apply_in`]).
    pub fn apply(
        &self,
        tx: &Connection,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        self.apply_in(&mut SqliteTx::new(tx), snapshot, changes)
    }

    /// Merges the input with the stored record inside `tx`, validates and saves.
    pub(super) fn apply_in(
        &self,
        tx: &mut dyn RecordTx,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Applied, RecordError> {
        let collection = &self.collection;
        let PlannedUpdate {
            current,
            mut draft,
            caller,
            manager,
        } = plan_update(
            tx,
            snapshot,
            collection,
            &self.caller,
            &self.id,
            &self.body,
            &self.uploads,
            RowLock::ForUpdate,
        )?;
        input::guard_auth_fields(collection, &current, &self.body, &mut draft, manager, false);
        if !self.hashed.is_empty() && !manager && !self.old_password_verified {
            // Manager when prepared, no longer now: the old password was never checked.
            draft.errors.add(
                "oldPassword",
                FieldError::new(
                    "validation_invalid_old_password",
                    "Missing or invalid old password.",
                ),
            );
        }
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
        refs::check_relations(
            tx.conn(),
            snapshot,
            collection,
            &draft.values,
            UPDATE_FAILED,
        )?;
        tx.update(collection, &self.id, &draft.values, UPDATE_FAILED)?;
        let written = Written {
            collection,
            id: &self.id,
            caller: &caller,
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
    if let Some(hooks) = backend.hooks
        && hooked::wanted(hooks, hooked::Stage::Update, &collection)
    {
        let mut record = stored(&backend, &collection, &id).await?;
        record.extend(body.clone());
        let plain = Plain::Update {
            snapshot,
            caller,
            id,
            uploads,
        };
        return hooked::write(
            hooks,
            backend,
            collection,
            Value::Object(record),
            body,
            plain,
        )
        .await;
    }
    let Backend { db, store, hub, .. } = backend;
    let joined = backend.joined();
    let prepared =
        prepare_update(db, snapshot.clone(), collection, caller, id, body, &uploads).await?;
    let placed = files::place(store, prepared.stage(uploads)?).await?;
    let outcome = apply_and_publish(db, hub, joined.clone(), move |tx, changes| {
        prepared.apply_in(tx, &snapshot, changes)
    })
    .await;
    settle(store, placed, joined, outcome).await
}

/// Resolves the delete rule (the last superuser is refused inside the
/// transaction: see [`PreparedDelete::apply_in`]).
pub async fn prepare_delete(
    snapshot: &Snapshot,
    collection: Arc<CompiledCollection>,
    caller: Caller,
    id: String,
) -> Result<PreparedDelete, RecordError> {
    refuse_view(&collection)?;
    let access = access::resolve(snapshot, &collection.rules.delete, &caller, &collection)?;
    Ok(PreparedDelete {
        collection,
        access,
        caller,
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
        self.apply_in(&mut SqliteTx::new(tx), snapshot, changes)
    }

    /// [`Self::apply`] on either engine. The superusers are counted here,
    /// inside the transaction (on PostgreSQL under their lock), so two
    /// deletes racing for the last two cannot both pass; the record is
    /// locked before its referrers are looked for.
    pub(super) fn apply_in(
        &self,
        tx: &mut dyn RecordTx,
        snapshot: &Snapshot,
        changes: &mut Changes,
    ) -> Result<Cleanup, RecordError> {
        if self.collection.is_superusers() {
            let conn = tx.conn();
            conn.lock(LockKey::Superusers)?;
            if conn.integer("SELECT count(*) FROM _superusers", &[])? <= 1 {
                return Err(RecordError::BadQuery(
                    "You can't delete the only existing superuser.".into(),
                ));
            }
        }
        let in_dialect;
        let access = match dialect(tx) {
            Dialect::Sqlite => &self.access,
            Dialect::Postgres => {
                let (rule, caller) = (&self.collection.rules.delete, &self.caller);
                in_dialect = access::resolve_in(
                    snapshot,
                    rule,
                    caller,
                    &self.collection,
                    Dialect::Postgres,
                )?;
                &in_dialect
            }
        };
        tx.load(&self.collection, &self.id, access, RowLock::ForUpdate)?
            .ok_or(RecordError::NotFound)?;
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
    if let Some(hooks) = backend.hooks
        && hooked::wanted(hooks, hooked::Stage::Delete, &collection)
    {
        let record = stored(&backend, &collection, &id).await?;
        let plain = Plain::Delete {
            snapshot,
            caller,
            id,
        };
        return hooked::write(
            hooks,
            backend,
            collection,
            Value::Object(record),
            Map::new(),
            plain,
        )
        .await
        .map(|_| ());
    }
    let Backend { db, store, hub, .. } = backend;
    let joined = backend.joined();
    let prepared = prepare_delete(&snapshot, collection, caller, id).await?;
    let cleanup = apply_and_publish(db, hub, joined.clone(), move |tx, changes| {
        prepared.apply_in(tx, &snapshot, changes)
    })
    .await?;
    match joined {
        Some(session) => session.hold_files(Vec::new(), cleanup),
        None => cleanup.run(store).await,
    }
    Ok(())
}

/// The stored record with every field (a hook's `e.record` before an update
/// or delete); a missing record is the write's own 404.
pub(super) async fn stored(
    backend: &Backend<'_>,
    collection: &Arc<CompiledCollection>,
    id: &str,
) -> Result<Map<String, Value>, RecordError> {
    let (c, id) = (collection.clone(), id.to_owned());
    let read = move |conn: &mut dyn Conn| {
        super::read::load_conn(conn, &c, &id, &Access::All)?.ok_or(RecordError::NotFound)
    };
    // Inside a write session (a batch, a hook's) its uncommitted writes count.
    let mut record = match backend.joined() {
        Some(session) => session.run_conn(move |conn, _| read(conn)).await?,
        None => backend.db.read_conn(read).await?,
    };
    // Secrets stay out of hook code's view (PocketBase hides them on export too).
    for field in &collection.fields {
        if matches!(field.kind, FieldKind::Password { .. }) {
            record.remove(field.name.as_str());
        }
    }
    record.remove("tokenKey");
    Ok(record)
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
    let id = SqlValue::Text(id.to_owned());
    let stored: Option<String> = db
        .read_conn(move |c: &mut dyn Conn| {
            Ok::<_, RecordError>(match c.first_row(&sql, &[id])? {
                Some(row) => match row.into_iter().next() {
                    Some(SqlValue::Text(hash)) => Some(hash),
                    _ => None,
                },
                None => None,
            })
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

/// Stamps the collection's autodates for a create or an update: every write,
/// API or system, goes through here.
pub(super) fn stamp_autodates(
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

/// `INSERT` of every field of `collection`, bound as `?1…?N` in field order
/// (the same statement on both engines).
pub(super) fn insert_sql(collection: &Collection) -> String {
    let cols: Vec<String> = collection
        .fields
        .iter()
        .map(|f| ident(f.name.as_str()))
        .collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        ident(collection.name.as_str()),
        cols.join(", "),
        marks.join(", ")
    )
}

/// `UPDATE` of every field of `collection` (`?1…?N` in field order) of the
/// row whose id is bound last, `?N+1`.
pub(super) fn update_sql(collection: &Collection) -> String {
    let sets: Vec<String> = collection
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = ?{}", ident(f.name.as_str()), i + 1))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE id = ?{}",
        ident(collection.name.as_str()),
        sets.join(", "),
        sets.len() + 1
    )
}

/// Inserts a record on SQLite, keeping the full-text index in step.
pub(super) fn insert(
    tx: &Connection,
    collection: &Collection,
    values: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let sql = insert_sql(collection);
    let params: Vec<rusqlite::types::Value> = collection
        .fields
        .iter()
        .map(|f| to_sql(f, values.get(f.name.as_str()).unwrap_or(&Value::Null)))
        .collect();
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(&params))?;
    // Inserts are indexed here, not by a trigger (see `search::index`).
    let rowid = tx.last_insert_rowid();
    crate::search::index::insert_row(tx, collection, rowid, |name| {
        collection
            .fields
            .iter()
            .position(|f| f.name.as_str() == name)
            .map_or(rusqlite::types::Value::Null, |i| params[i].clone())
    })
}

pub(super) fn write_update(
    tx: &Connection,
    collection: &Collection,
    id: &str,
    values: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let sql = update_sql(collection);
    let mut params: Vec<rusqlite::types::Value> = collection
        .fields
        .iter()
        .map(|f| to_sql(f, values.get(f.name.as_str()).unwrap_or(&Value::Null)))
        .collect();
    params.push(rusqlite::types::Value::Text(id.to_owned()));
    let before = crate::search::index::read_before(tx, collection, id)?;
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(&params))?;
    match before {
        Some(before) => crate::search::index::update_row(tx, collection, before, |name| {
            collection
                .fields
                .iter()
                .position(|f| f.name.as_str() == name)
                .map_or(rusqlite::types::Value::Null, |i| params[i].clone())
        }),
        None => Ok(()),
    }
}

/// Maps a UNIQUE constraint failure to `validation_not_unique` on its columns.
pub(super) fn unique_violation(e: rusqlite::Error, message: &'static str) -> RecordError {
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
